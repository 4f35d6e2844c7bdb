// Tokenizer implementation. References: llama.cpp src/llama-vocab.cpp (llm_tokenizer_bpe,
// llm_tokenizer_spm, special-token partitioning, token_to_piece) and Hugging Face
// tokenizers (models/bpe, pre_tokenizers/byte_level, normalizers, decoders); the goldens in
// testdata/tokenizer/ come from the latter.
#include "tokenizer/tokenizer.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <queue>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "base/utf8.h"
#include "tokenizer/pre_tokenizer.h"

namespace pocket::tokenizer {
namespace {

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using TokenMap = std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>>;

// GPT-2's reversible byte -> printable code point map (bytes_to_unicode in openai/gpt-2
// encoder.py): printable Latin-1 bytes map to themselves, the other 68 to U+0100 upwards.
std::array<uint32_t, 256> ByteToCodePoint() {
  std::array<uint32_t, 256> map{};
  uint32_t next = 256;
  for (uint32_t b = 0; b < 256; ++b) {
    const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174);
    map[b] = printable ? b : next++;
  }
  return map;
}

// Length of the UTF-8 sequence starting at s[i]; 1 for a byte that does not start a valid
// sequence (so invalid input still advances and round-trips byte by byte).
size_t Utf8Len(std::string_view s, size_t i) {
  const auto c = static_cast<unsigned char>(s[i]);
  size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
  if (n == 0 || i + n > s.size()) return 1;
  for (size_t k = 1; k < n; ++k) {
    if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return 1;
  }
  return n;
}

// Decodes one code point at s[i] (REQUIRES: Utf8Len(s, i) == n > 1 or ASCII).
uint32_t DecodeCodePoint(std::string_view s, size_t i, size_t n) {
  const auto b = [&](size_t k) {
    return static_cast<uint32_t>(static_cast<unsigned char>(s[i + k]));
  };
  switch (n) {
    case 1:
      return b(0);
    case 2:
      return ((b(0) & 0x1F) << 6) | (b(1) & 0x3F);
    case 3:
      return ((b(0) & 0x0F) << 12) | ((b(1) & 0x3F) << 6) | (b(2) & 0x3F);
    default:
      return ((b(0) & 0x07) << 18) | ((b(1) & 0x3F) << 12) | ((b(2) & 0x3F) << 6) | (b(3) & 0x3F);
  }
}

// The byte of a "<0xNN>" token, or -1 (no exceptions: the text is untrusted).
int ParseByteToken(std::string_view text) {
  if (text.size() != 6 || !text.starts_with("<0x") || text[5] != '>') return -1;
  int value = 0;
  for (char c : text.substr(3, 2)) {
    const int digit = c >= '0' && c <= '9'   ? c - '0'
                      : c >= 'A' && c <= 'F' ? c - 'A' + 10
                      : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                             : -1;
    if (digit < 0) return -1;
    value = value * 16 + digit;
  }
  return value;
}

constexpr std::string_view kSpmSpace = "\xE2\x96\x81";  // U+2581 LOWER ONE EIGHTH BLOCK

// Token texts llama.cpp treats as end of generation (llama-vocab.cpp, special_eog_ids).
constexpr std::string_view kEogTexts[] = {
    "<|eot_id|>",      "<|im_end|>",         "<|end|>",    "<end_of_turn>",
    "<|endoftext|>",   "<|eom_id|>",         "<EOT>",      "_<EOT>",
    "<|end_of_text|>", "<end_of_utterance>", "<|return|>", "<|call|>"};
// The subset (in this order) llama.cpp picks the EOT id from when the file names none.
constexpr std::string_view kEotTexts[] = {"<|eot_id|>",    "<|im_end|>",    "<|end|>",
                                          "<end_of_turn>", "<|endoftext|>", "<|end_of_text|>",
                                          "<EOT>",         "_<EOT>",        "<end_of_utterance>"};

}  // namespace

struct Tokenizer::Impl {
  Vocab vocab;
  TokenMap token_to_id;
  std::vector<std::string> pieces;  // decoded bytes of every token
  std::vector<uint8_t> is_control;  // control or unknown: rendered only on request
  std::vector<uint8_t> is_eog;
  // gpt2: token id of each raw byte's byte-level character. llama: id of "<0xNN>".
  std::array<int32_t, 256> byte_token{};
  std::array<uint32_t, 256> byte_to_cp{};
  // gpt2 merges: (left id << 32 | right id) -> (rank, merged id).
  std::unordered_map<uint64_t, std::pair<int32_t, int32_t>> merges;
  // llama: (left id << 32 | right id) -> id of the token spelled left+right, for every way
  // of cutting a token into two tokens. Saves hashing strings for most bigrams (4x faster
  // on the corpus); bigrams involving a character that is not a token look up the text.
  std::unordered_map<uint64_t, int32_t> spm_pairs;
  std::array<int32_t, 128> ascii_token{};  // llama: id of each ASCII character's token
  // llama: every pair of adjacent code points inside some token. No merge can ever join
  // two characters whose pair is absent, so the text is cut there and each chunk merged on
  // its own: same result, small heaps (5x faster on the corpus than one 1 MiB heap).
  std::unordered_set<uint64_t> spm_inner_pairs;
  std::unique_ptr<PreTokenizer> pre;
  // Specials matched whole, bucketed by first byte, longest first within a bucket.
  std::array<std::vector<int32_t>, 256> specials_by_byte;

  void EncodeRaw(std::string_view text, bool prev_special, std::vector<int32_t>& out) const;
  void BpeWord(std::string_view word, std::vector<int32_t>& out) const;
  void SpmFragment(std::string_view text, std::vector<int32_t>& out) const;
  void SpmChunk(std::string_view text, std::vector<int32_t>& out) const;
};

namespace {

// A byte-level BPE symbol: a token id covering a run of the word's bytes.
struct BpeSymbol {
  int32_t id;
  int32_t prev;
  int32_t next;
  bool alive;
};

struct BpeCandidate {
  int32_t rank;
  int32_t left;
  int32_t left_id;
  int32_t right_id;
  int32_t merged_id;
  bool operator>(const BpeCandidate& o) const {
    return rank != o.rank ? rank > o.rank : left > o.left;
  }
};

}  // namespace

void Tokenizer::Impl::BpeWord(std::string_view word, std::vector<int32_t>& out) const {
  if (word.empty()) return;
  if (vocab.ignore_merges) {
    std::string mapped;
    mapped.reserve(word.size() * 2);
    for (unsigned char c : word) AppendUtf8(byte_to_cp[c], mapped);
    if (auto it = token_to_id.find(mapped); it != token_to_id.end()) {
      out.push_back(it->second);
      return;
    }
  }
  if (word.size() == 1) {
    const int32_t id = byte_token[static_cast<unsigned char>(word[0])];
    if (id != kNoToken) out.push_back(id);
    return;
  }
  std::vector<BpeSymbol> symbols(word.size());
  for (size_t i = 0; i < word.size(); ++i) {
    symbols[i] = {byte_token[static_cast<unsigned char>(word[i])], static_cast<int32_t>(i) - 1,
                  i + 1 < word.size() ? static_cast<int32_t>(i + 1) : -1, true};
  }
  // Min-heap on (rank, left position): HF's BPE applies the best-ranked merge first and
  // breaks ties leftmost (models/bpe/word.rs merge_all), as does llama.cpp.
  std::priority_queue<BpeCandidate, std::vector<BpeCandidate>, std::greater<>> queue;
  auto add = [&](int32_t left) {
    if (left < 0) return;
    const int32_t right = symbols[left].next;
    if (right < 0) return;
    const int32_t a = symbols[left].id, b = symbols[right].id;
    if (a < 0 || b < 0) return;
    auto it = merges.find((static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) |
                          static_cast<uint32_t>(b));
    if (it == merges.end()) return;
    queue.push({it->second.first, left, a, b, it->second.second});
  };
  for (int32_t i = 0; i + 1 < static_cast<int32_t>(symbols.size()); ++i) add(i);
  while (!queue.empty()) {
    const BpeCandidate c = queue.top();
    queue.pop();
    BpeSymbol& l = symbols[c.left];
    if (!l.alive || l.id != c.left_id || l.next < 0) continue;
    BpeSymbol& r = symbols[l.next];
    if (r.id != c.right_id) continue;  // stale: a neighbour changed since it was queued
    l.id = c.merged_id;
    r.alive = false;
    l.next = r.next;
    if (r.next >= 0) symbols[r.next].prev = c.left;
    add(l.prev);
    add(c.left);
  }
  for (int32_t i = 0; i >= 0; i = symbols[i].next) {
    // A byte whose character is not in the vocab has no token; HF's BPE without an unk
    // token drops it, and so do we (real byte-level vocabs hold all 256).
    if (symbols[i].id >= 0) out.push_back(symbols[i].id);
  }
}

namespace {

struct SpmSymbol {
  int32_t prev;
  int32_t next;
  uint32_t offset;
  uint32_t size;  // 0 once merged into its left neighbour
  int32_t id;     // token spelled by the symbol, or kNoToken
};

uint64_t PairKey(int32_t a, int32_t b) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
}

struct SpmBigram {
  float score;
  int32_t left;
  int32_t right;
  uint32_t size;
  int32_t id;
  // Max-heap on score, ties to the leftmost pair (llama.cpp llm_bigram_spm::comparator).
  bool operator<(const SpmBigram& o) const {
    return score < o.score || (score == o.score && left > o.left);
  }
};

}  // namespace

namespace {

// Code point at s[i] for pair keys; an invalid byte maps outside Unicode.
uint32_t CodePointKey(std::string_view s, size_t i, size_t n) {
  if (n == 1 && static_cast<unsigned char>(s[i]) >= 0x80) {
    return 0x80000000u | static_cast<unsigned char>(s[i]);
  }
  return DecodeCodePoint(s, i, n);
}

}  // namespace

void Tokenizer::Impl::SpmFragment(std::string_view text, std::vector<int32_t>& out) const {
  size_t chunk_start = 0;
  uint32_t prev = 0;
  for (size_t i = 0; i < text.size();) {
    const size_t n = Utf8Len(text, i);
    const uint32_t cp = CodePointKey(text, i, n);
    if (i > 0 &&
        !spm_inner_pairs.contains(PairKey(static_cast<int32_t>(prev), static_cast<int32_t>(cp)))) {
      SpmChunk(text.substr(chunk_start, i - chunk_start), out);
      chunk_start = i;
    }
    prev = cp;
    i += n;
  }
  SpmChunk(text.substr(chunk_start), out);
}

void Tokenizer::Impl::SpmChunk(std::string_view text, std::vector<int32_t>& out) const {
  if (text.empty()) return;
  std::vector<SpmSymbol> symbols;
  symbols.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    const size_t n = Utf8Len(text, i);
    const auto idx = static_cast<int32_t>(symbols.size());
    int32_t id = kNoToken;
    if (n == 1 && static_cast<unsigned char>(text[i]) < 128) {
      id = ascii_token[static_cast<unsigned char>(text[i])];
    } else if (auto it = token_to_id.find(text.substr(i, n)); it != token_to_id.end()) {
      id = it->second;
    }
    symbols.push_back({idx - 1, i + n < text.size() ? idx + 1 : -1, static_cast<uint32_t>(i),
                       static_cast<uint32_t>(n), id});
    i += n;
  }
  std::priority_queue<SpmBigram> queue;
  auto add = [&](int32_t left, int32_t right) {
    if (left < 0 || right < 0) return;
    const SpmSymbol& l = symbols[left];
    const SpmSymbol& r = symbols[right];
    int32_t merged_id = kNoToken;
    if (l.id != kNoToken && r.id != kNoToken) {
      auto it = spm_pairs.find(PairKey(l.id, r.id));
      if (it == spm_pairs.end()) return;
      merged_id = it->second;
    } else {
      auto it = token_to_id.find(text.substr(l.offset, l.size + r.size));
      if (it == token_to_id.end()) return;
      merged_id = it->second;
    }
    const float score = vocab.scores.empty() ? 0.0f : vocab.scores[merged_id];
    queue.push({score, left, right, l.size + r.size, merged_id});
  };
  for (int32_t i = 1; i < static_cast<int32_t>(symbols.size()); ++i) add(i - 1, i);
  while (!queue.empty()) {
    const SpmBigram b = queue.top();
    queue.pop();
    SpmSymbol& l = symbols[b.left];
    SpmSymbol& r = symbols[b.right];
    if (l.size == 0 || r.size == 0 || l.size + r.size != b.size || l.next != b.right) continue;
    l.size += r.size;
    l.id = b.id;
    r.size = 0;
    l.next = r.next;
    if (r.next >= 0) symbols[r.next].prev = b.left;
    add(l.prev, b.left);
    add(b.left, l.next);
  }
  for (int32_t i = 0; i >= 0; i = symbols[i].next) {
    if (symbols[i].id != kNoToken) {
      out.push_back(symbols[i].id);
      continue;
    }
    const std::string_view piece = text.substr(symbols[i].offset, symbols[i].size);
    // Only single characters can be missing (a merge always makes a token): byte fallback.
    for (unsigned char c : piece) {
      const int32_t id = byte_token[c] != kNoToken ? byte_token[c] : vocab.unk_id;
      if (id != kNoToken) out.push_back(id);
    }
  }
}

void Tokenizer::Impl::EncodeRaw(std::string_view text, bool prev_special,
                                std::vector<int32_t>& out) const {
  if (vocab.model == ModelKind::kLlama) {
    // HF: Prepend("▁") + Replace(" ", "▁") per segment between added tokens; llama.cpp:
    // add_space_prefix when the previous fragment was a special token (or at the start).
    std::string escaped;
    escaped.reserve(text.size() + 8);
    if (vocab.add_space_prefix && prev_special) escaped.append(kSpmSpace);
    for (char c : text) {
      if (c == ' ') {
        escaped.append(kSpmSpace);
      } else {
        escaped.push_back(c);
      }
    }
    SpmFragment(escaped, out);
    return;
  }
  pre->Split(text, [&](std::string_view word) { BpeWord(word, out); });
}

std::vector<int32_t> Tokenizer::Encode(std::string_view text, bool add_special,
                                       bool parse_special) const {
  const Impl& m = *impl_;
  std::vector<int32_t> out;
  out.reserve(text.size() / 3 + 4);
  if (add_special && m.vocab.add_bos && m.vocab.bos_id != kNoToken) out.push_back(m.vocab.bos_id);
  bool prev_special = true;
  size_t raw_start = 0;
  size_t i = 0;
  while (i < text.size()) {
    const auto& candidates = m.specials_by_byte[static_cast<unsigned char>(text[i])];
    int32_t found = kNoToken;
    for (int32_t id : candidates) {
      if (!parse_special && m.is_control[id]) continue;
      const std::string& t = m.vocab.tokens[id];
      if (text.size() - i >= t.size() && std::memcmp(text.data() + i, t.data(), t.size()) == 0) {
        found = id;
        break;
      }
    }
    if (found == kNoToken) {
      ++i;
      continue;
    }
    if (i > raw_start) {
      m.EncodeRaw(text.substr(raw_start, i - raw_start), prev_special, out);
    }
    out.push_back(found);
    prev_special = true;
    i += m.vocab.tokens[found].size();
    raw_start = i;
  }
  if (raw_start < text.size()) m.EncodeRaw(text.substr(raw_start), prev_special, out);
  if (add_special && m.vocab.add_eos && m.vocab.eos_id != kNoToken) out.push_back(m.vocab.eos_id);
  return out;
}

std::string Tokenizer::Decode(std::span<const int32_t> tokens, bool render_special) const {
  const Impl& m = *impl_;
  std::string out;
  bool first = true;
  for (int32_t t : tokens) {
    if (t < 0 || static_cast<size_t>(t) >= m.pieces.size()) continue;
    if (!render_special && m.is_control[t]) continue;
    const std::string& piece = m.pieces[t];
    if (first && m.vocab.model == ModelKind::kLlama && m.vocab.add_space_prefix && !piece.empty() &&
        piece[0] == ' ' && !m.is_control[t]) {
      out.append(piece, 1);
    } else {
      out.append(piece);
    }
    if (!piece.empty()) first = false;
  }
  return out;
}

std::string Tokenizer::TokenToPiece(int32_t token) const {
  if (token < 0 || static_cast<size_t>(token) >= impl_->pieces.size()) return {};
  return impl_->pieces[token];
}

int32_t Tokenizer::bos() const { return impl_->vocab.bos_id; }
int32_t Tokenizer::eos() const { return impl_->vocab.eos_id; }
int32_t Tokenizer::eot() const { return impl_->vocab.eot_id; }
int32_t Tokenizer::unk() const { return impl_->vocab.unk_id; }
bool Tokenizer::add_bos() const { return impl_->vocab.add_bos; }
bool Tokenizer::add_eos() const { return impl_->vocab.add_eos; }
size_t Tokenizer::vocab_size() const { return impl_->vocab.tokens.size(); }
const Vocab& Tokenizer::vocab() const { return impl_->vocab; }

bool Tokenizer::IsEndOfGeneration(int32_t token) const {
  return token >= 0 && static_cast<size_t>(token) < impl_->is_eog.size() && impl_->is_eog[token];
}

bool Tokenizer::IsControl(int32_t token) const {
  return token >= 0 && static_cast<size_t>(token) < impl_->is_control.size() &&
         impl_->is_control[token];
}

int32_t Tokenizer::TokenId(std::string_view text) const {
  auto it = impl_->token_to_id.find(text);
  return it == impl_->token_to_id.end() ? kNoToken : it->second;
}

Tokenizer::Tokenizer(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::Tokenizer(const Tokenizer&) = default;
Tokenizer& Tokenizer::operator=(const Tokenizer&) = default;
Tokenizer::~Tokenizer() = default;

void ApplyLlamaCppDefaults(Vocab& vocab) {
  // llama-vocab.cpp load(): SPM models add BOS and a space prefix; BPE models add neither,
  // except the pre-tokenizers below, which also ignore merges for whole-token words.
  if (vocab.model == ModelKind::kLlama) {
    vocab.add_bos = true;
    vocab.add_eos = false;
    vocab.add_space_prefix = true;
    vocab.ignore_merges = false;
    if (vocab.bos_id == kNoToken) vocab.bos_id = 1;
    if (vocab.eos_id == kNoToken) vocab.eos_id = 2;
    if (vocab.unk_id == kNoToken) vocab.unk_id = 0;
    return;
  }
  vocab.add_space_prefix = false;
  vocab.add_eos = false;
  const bool llama3 = IsLlama3PreTokenizer(vocab.pre);
  vocab.add_bos = llama3;
  vocab.ignore_merges = llama3;
}

std::vector<std::string> SupportedPreTokenizers() { return PreTokenizerNames(); }

Result<Tokenizer> Tokenizer::FromVocab(Vocab vocab) {
  const size_t n = vocab.tokens.size();
  if (n == 0) return Status::InvalidArgument("tokenizer: vocabulary has no tokens");
  if (n > static_cast<size_t>(INT32_MAX)) {
    return Status::InvalidArgument("tokenizer: vocabulary too large");
  }
  if (!vocab.token_types.empty() && vocab.token_types.size() != n) {
    return Status::InvalidArgument("tokenizer: " + std::to_string(vocab.token_types.size()) +
                                   " token types for " + std::to_string(n) + " tokens");
  }
  if (!vocab.scores.empty() && vocab.scores.size() != n) {
    return Status::InvalidArgument("tokenizer: " + std::to_string(vocab.scores.size()) +
                                   " scores for " + std::to_string(n) + " tokens");
  }
  for (auto [name, id] : {std::pair<const char*, int32_t*>{"bos", &vocab.bos_id},
                          {"eos", &vocab.eos_id},
                          {"eot", &vocab.eot_id},
                          {"unk", &vocab.unk_id},
                          {"pad", &vocab.pad_id}}) {
    if (*id != kNoToken && (*id < 0 || static_cast<size_t>(*id) >= n)) {
      return Status::InvalidArgument(std::string("tokenizer: ") + name + " id " +
                                     std::to_string(*id) + " outside the vocabulary of " +
                                     std::to_string(n));
    }
  }
  if (vocab.token_types.empty()) vocab.token_types.assign(n, TokenType::kNormal);

  auto impl = std::make_shared<Impl>();
  if (vocab.model == ModelKind::kGpt2) {
    PK_ASSIGN_OR_RETURN(impl->pre, PreTokenizer::Create(vocab.pre));
  }
  impl->token_to_id.reserve(n);
  for (size_t i = 0; i < n; ++i) impl->token_to_id[vocab.tokens[i]] = static_cast<int32_t>(i);

  if (vocab.eot_id == kNoToken) {
    for (std::string_view t : kEotTexts) {
      if (auto it = impl->token_to_id.find(t); it != impl->token_to_id.end()) {
        vocab.eot_id = it->second;
        break;
      }
    }
  }

  impl->byte_to_cp = ByteToCodePoint();
  std::unordered_map<uint32_t, uint8_t> cp_to_byte;
  for (int b = 0; b < 256; ++b) cp_to_byte[impl->byte_to_cp[b]] = static_cast<uint8_t>(b);
  impl->byte_token.fill(kNoToken);
  for (int b = 0; b < 256; ++b) {
    std::string key;
    if (vocab.model == ModelKind::kGpt2) {
      AppendUtf8(impl->byte_to_cp[b], key);
    } else {
      static constexpr char kHex[] = "0123456789ABCDEF";
      key = std::string("<0x") + kHex[b >> 4] + kHex[b & 15] + ">";
    }
    if (auto it = impl->token_to_id.find(key); it != impl->token_to_id.end()) {
      impl->byte_token[b] = it->second;
    }
  }

  if (vocab.model == ModelKind::kGpt2) {
    impl->merges.reserve(vocab.merges.size());
    for (size_t r = 0; r < vocab.merges.size(); ++r) {
      const std::string& line = vocab.merges[r];
      // Split at the first space after the first character: a merge's left part may itself
      // be a space in vocabularies that are not byte-mapped (llama.cpp does the same).
      const size_t space = line.find(' ', 1);
      if (space == std::string::npos) {
        return Status::InvalidArgument("tokenizer: merge " + std::to_string(r) + " '" + line +
                                       "' has no space");
      }
      const std::string_view left(line.data(), space);
      const std::string_view right(line.data() + space + 1, line.size() - space - 1);
      auto l = impl->token_to_id.find(left);
      auto rt = impl->token_to_id.find(right);
      auto merged = impl->token_to_id.find(std::string(left) + std::string(right));
      // A merge whose parts or result are not tokens can never fire; skip it like HF would
      // never reach it.
      if (l == impl->token_to_id.end() || rt == impl->token_to_id.end() ||
          merged == impl->token_to_id.end()) {
        continue;
      }
      const uint64_t key = (static_cast<uint64_t>(static_cast<uint32_t>(l->second)) << 32) |
                           static_cast<uint32_t>(rt->second);
      impl->merges.emplace(key, std::make_pair(static_cast<int32_t>(r), merged->second));
    }
  }

  if (vocab.model == ModelKind::kLlama) {
    impl->ascii_token.fill(kNoToken);
    for (int c = 0; c < 128; ++c) {
      if (auto it = impl->token_to_id.find(std::string(1, static_cast<char>(c)));
          it != impl->token_to_id.end()) {
        impl->ascii_token[c] = it->second;
      }
    }
    for (size_t i = 0; i < n; ++i) {
      const std::string& t = vocab.tokens[i];
      for (size_t k = 0, prev_len = 0; k < t.size(); k += prev_len) {
        prev_len = Utf8Len(t, k);
        const size_t next = k + prev_len;
        if (next >= t.size()) break;
        impl->spm_inner_pairs.insert(
            PairKey(static_cast<int32_t>(CodePointKey(t, k, prev_len)),
                    static_cast<int32_t>(CodePointKey(t, next, Utf8Len(t, next)))));
      }
      for (size_t cut = Utf8Len(t, 0); cut < t.size(); cut += Utf8Len(t, cut)) {
        auto l = impl->token_to_id.find(std::string_view(t).substr(0, cut));
        if (l == impl->token_to_id.end()) continue;
        auto r = impl->token_to_id.find(std::string_view(t).substr(cut));
        if (r == impl->token_to_id.end()) continue;
        // Duplicate texts resolve like token_to_id (the last id wins).
        impl->spm_pairs[PairKey(l->second, r->second)] = impl->token_to_id.at(t);
      }
    }
  }

  impl->pieces.resize(n);
  impl->is_control.assign(n, 0);
  impl->is_eog.assign(n, 0);
  for (size_t i = 0; i < n; ++i) {
    const std::string& text = vocab.tokens[i];
    const TokenType type = vocab.token_types[i];
    std::string& piece = impl->pieces[i];
    if (type == TokenType::kControl || type == TokenType::kUnknown) {
      impl->is_control[i] = 1;
      piece = text;
    } else if (type == TokenType::kUserDefined) {
      piece = text;
    } else if (vocab.model == ModelKind::kGpt2) {
      // Each character of a byte-level token stands for one byte; a character outside
      // the alphabet (or an invalid byte) is kept as it is.
      for (size_t k = 0; k < text.size();) {
        const size_t len = Utf8Len(text, k);
        const bool valid = len > 1 || static_cast<unsigned char>(text[k]) < 0x80;
        auto it = valid ? cp_to_byte.find(DecodeCodePoint(text, k, len)) : cp_to_byte.end();
        if (it != cp_to_byte.end()) {
          piece.push_back(static_cast<char>(it->second));
        } else {
          piece.append(text, k, len);
        }
        k += len;
      }
    } else if (int byte = ParseByteToken(text); type == TokenType::kByte && byte >= 0) {
      piece.push_back(static_cast<char>(byte));
    } else {
      for (size_t k = 0; k < text.size();) {
        if (text.compare(k, kSpmSpace.size(), kSpmSpace) == 0) {
          piece.push_back(' ');
          k += kSpmSpace.size();
        } else {
          piece.push_back(text[k++]);
        }
      }
    }
    if (type == TokenType::kControl || type == TokenType::kUserDefined ||
        type == TokenType::kUnknown) {
      if (!text.empty()) {
        impl->specials_by_byte[static_cast<unsigned char>(text[0])].push_back(
            static_cast<int32_t>(i));
      }
    }
  }
  for (auto& bucket : impl->specials_by_byte) {
    std::stable_sort(bucket.begin(), bucket.end(), [&](int32_t a, int32_t b) {
      return vocab.tokens[a].size() > vocab.tokens[b].size();
    });
  }
  for (std::string_view t : kEogTexts) {
    if (auto it = impl->token_to_id.find(t); it != impl->token_to_id.end()) {
      impl->is_eog[it->second] = 1;
    }
  }
  if (vocab.eos_id != kNoToken) impl->is_eog[vocab.eos_id] = 1;
  if (vocab.eot_id != kNoToken) impl->is_eog[vocab.eot_id] = 1;

  impl->vocab = std::move(vocab);
  return Tokenizer(std::move(impl));
}

}  // namespace pocket::tokenizer
