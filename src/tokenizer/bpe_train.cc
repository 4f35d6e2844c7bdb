// Byte-level BPE training (the contract is in bpe_train.h): the word table AddDocument fills, and
// the merge loop of Train. The loop is the standard incremental one (as in HF tokenizers'
// BpeTrainer and Sennrich et al.'s subword-nmt): count every adjacent pair once, then per merge
// touch only the words that hold the pair, adjusting the counts of the neighbouring pairs, with a
// max-heap of (count, pair) whose stale entries are refreshed when they surface. Encoding the
// result is tokenizer.cc's job.
#include "tokenizer/bpe_train.h"

#include <algorithm>
#include <array>
#include <limits>
#include <queue>
#include <unordered_map>
#include <utility>

#include "base/utf8.h"
#include "tokenizer/pre_tokenizer.h"

namespace pocket::tokenizer {
namespace {

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using WordCounts = std::unordered_map<std::string, int64_t, StringHash, std::equal_to<>>;

constexpr int kNumBytes = 256;

// GPT-2's reversible byte -> printable code point map (bytes_to_unicode in openai/gpt-2 encoder.py;
// the same table tokenizer.cc decodes with).
std::array<uint32_t, kNumBytes> ByteToCodePoint() {
  std::array<uint32_t, kNumBytes> map{};
  uint32_t next = 256;
  for (uint32_t b = 0; b < kNumBytes; ++b) {
    const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174);
    map[b] = printable ? b : next++;
  }
  return map;
}

// A pair of token ids as one key whose integer order is (left, right) lexicographic order, which is
// HF's tie-break order (Merge::cmp compares the Pair tuples).
uint64_t PairKey(int32_t left, int32_t right) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
}
int32_t PairLeft(uint64_t key) { return static_cast<int32_t>(key >> 32); }
int32_t PairRight(uint64_t key) { return static_cast<int32_t>(key & 0xFFFFFFFFu); }

struct PairInfo {
  int64_t count = 0;  // occurrences, weighted by word counts
  // Words that held the pair at some point (may repeat, may be stale: merging a word that no longer
  // holds the pair does nothing). Appended when the pair appears in a word.
  std::vector<uint32_t> words;
  bool merged = false;  // a merged pair is never chosen again (see bpe_train.h)
};

struct HeapEntry {
  int64_t count;
  uint64_t pair;
};
// Max-heap order: higher count first, then the smaller pair key.
struct HeapLess {
  bool operator()(const HeapEntry& a, const HeapEntry& b) const {
    if (a.count != b.count) return a.count < b.count;
    return a.pair > b.pair;
  }
};

// The corpus as symbol sequences: word w is syms[begin[w], begin[w] + len[w]) and occurs count[w]
// times. Merges shrink len[w] in place.
struct Words {
  std::vector<int32_t> syms;
  std::vector<uint32_t> begin;
  std::vector<uint32_t> len;
  std::vector<int64_t> count;
};

}  // namespace

struct BpeTrainer::State {
  BpeTrainOptions options;
  std::unique_ptr<PreTokenizer> pre;
  WordCounts words;

  void CountPiece(std::string_view piece) {
    if (piece.empty()) return;
    auto it = words.find(piece);
    if (it == words.end()) {
      words.emplace(std::string(piece), 1);
    } else {
      ++it->second;
    }
  }

  void CountFragment(std::string_view fragment) {
    if (fragment.empty()) return;
    pre->Split(fragment, [this](std::string_view piece) { CountPiece(piece); });
  }
};

BpeTrainer::BpeTrainer(std::unique_ptr<State> state) : state_(std::move(state)) {}
BpeTrainer::BpeTrainer(BpeTrainer&&) noexcept = default;
BpeTrainer& BpeTrainer::operator=(BpeTrainer&&) noexcept = default;
BpeTrainer::~BpeTrainer() = default;

Result<BpeTrainer> BpeTrainer::Create(BpeTrainOptions options) {
  const auto& specials = options.special_tokens;
  for (size_t i = 0; i < specials.size(); ++i) {
    if (specials[i].empty()) {
      return Status::InvalidArgument("bpe: special_tokens[" + std::to_string(i) + "] is empty");
    }
    for (size_t j = 0; j < i; ++j) {
      if (specials[j] == specials[i]) {
        return Status::InvalidArgument("bpe: special_tokens: '" + specials[i] +
                                       "' is listed twice");
      }
    }
  }
  const size_t min_size = kNumBytes + specials.size();
  if (options.vocab_size < min_size ||
      options.vocab_size > static_cast<size_t>(std::numeric_limits<int32_t>::max())) {
    return Status::InvalidArgument("bpe: vocab_size " + std::to_string(options.vocab_size) +
                                   " must be at least " + std::to_string(min_size) +
                                   " (256 byte tokens + " + std::to_string(specials.size()) +
                                   " special tokens) and below 2^31");
  }
  if (options.min_frequency < 0) {
    return Status::InvalidArgument("bpe: min_frequency " + std::to_string(options.min_frequency) +
                                   " is negative");
  }
  for (const auto& [name, token] :
       {std::pair<const char*, const std::string*>{"bos_token", &options.bos_token},
        {"eos_token", &options.eos_token},
        {"eot_token", &options.eot_token},
        {"pad_token", &options.pad_token}}) {
    if (!token->empty() && std::find(specials.begin(), specials.end(), *token) == specials.end()) {
      return Status::InvalidArgument(std::string("bpe: ") + name + " '" + *token +
                                     "' is not one of special_tokens");
    }
  }
  auto state = std::make_unique<State>();
  PK_ASSIGN_OR_RETURN(state->pre, PreTokenizer::Create(options.pre));
  state->options = std::move(options);
  return BpeTrainer(std::move(state));
}

void BpeTrainer::AddDocument(std::string_view text) {
  // Cut the special tokens out, leftmost first and the longest of those starting at the same byte
  // (the encoder's rule), then pre-tokenize the fragments between them.
  const auto& specials = state_->options.special_tokens;
  std::vector<size_t> next(specials.size());
  for (size_t k = 0; k < specials.size(); ++k) next[k] = text.find(specials[k]);
  size_t from = 0;
  while (true) {
    size_t best = std::string_view::npos;
    size_t best_len = 0;
    for (size_t k = 0; k < specials.size(); ++k) {
      if (next[k] != std::string_view::npos && next[k] < from) {
        next[k] = text.find(specials[k], from);
      }
      if (next[k] < best ||
          (next[k] == best && next[k] != std::string_view::npos && specials[k].size() > best_len)) {
        best = next[k];
        best_len = specials[k].size();
      }
    }
    if (best == std::string_view::npos) break;
    state_->CountFragment(text.substr(from, best - from));
    from = best + best_len;
  }
  state_->CountFragment(text.substr(from));
}

size_t BpeTrainer::num_distinct_words() const { return state_->words.size(); }

Result<BpeTrainResult> BpeTrainer::Train() const {
  const BpeTrainOptions& opt = state_->options;
  BpeTrainResult result;
  result.num_distinct_words = state_->words.size();

  // Token table: text in the vocabulary's (byte-mapped) form, and text -> id to find a merge that
  // rebuilds an existing token (HF looks the merged text up the same way, special tokens included).
  std::vector<std::string> tokens;
  std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>> token_id;
  tokens.reserve(opt.vocab_size);
  token_id.reserve(opt.vocab_size);
  for (const std::string& s : opt.special_tokens) {
    token_id.emplace(s, static_cast<int32_t>(tokens.size()));
    tokens.push_back(s);
  }
  // The byte alphabet in code point order (HF sorts its alphabet by char).
  const std::array<uint32_t, kNumBytes> byte_cp = ByteToCodePoint();
  std::array<uint8_t, kNumBytes> by_cp{};
  for (int b = 0; b < kNumBytes; ++b) by_cp[b] = static_cast<uint8_t>(b);
  std::sort(by_cp.begin(), by_cp.end(),
            [&](uint8_t x, uint8_t y) { return byte_cp[x] < byte_cp[y]; });
  std::array<int32_t, kNumBytes> byte_token{};
  for (uint8_t b : by_cp) {
    std::string text;
    AppendUtf8(byte_cp[b], text);
    // A special token spelled like a byte symbol keeps its id (HF skips texts already in the
    // vocabulary); the byte then encodes as that token.
    auto [it, inserted] = token_id.emplace(text, static_cast<int32_t>(tokens.size()));
    if (inserted) tokens.push_back(std::move(text));
    byte_token[b] = it->second;
  }

  // Words in byte order so every later loop runs in an order independent of the hash table.
  std::vector<std::pair<std::string_view, int64_t>> sorted;
  sorted.reserve(state_->words.size());
  for (const auto& [w, c] : state_->words) {
    if (w.size() >= 2) sorted.emplace_back(w, c);  // one-symbol words hold no pair
  }
  std::sort(sorted.begin(), sorted.end());
  Words words;
  words.begin.reserve(sorted.size());
  words.len.reserve(sorted.size());
  words.count.reserve(sorted.size());
  for (const auto& [w, c] : sorted) {
    words.begin.push_back(static_cast<uint32_t>(words.syms.size()));
    words.len.push_back(static_cast<uint32_t>(w.size()));
    words.count.push_back(c);
    for (unsigned char b : w) words.syms.push_back(byte_token[b]);
  }
  sorted.clear();
  sorted.shrink_to_fit();

  std::unordered_map<uint64_t, PairInfo> pairs;
  for (uint32_t w = 0; w < words.len.size(); ++w) {
    const int32_t* s = &words.syms[words.begin[w]];
    for (uint32_t i = 0; i + 1 < words.len[w]; ++i) {
      PairInfo& p = pairs[PairKey(s[i], s[i + 1])];
      p.count += words.count[w];
      if (p.words.empty() || p.words.back() != w) p.words.push_back(w);
    }
  }
  std::vector<HeapEntry> initial;
  initial.reserve(pairs.size());
  for (const auto& [key, info] : pairs) initial.push_back({info.count, key});
  std::priority_queue<HeapEntry, std::vector<HeapEntry>, HeapLess> heap(HeapLess{},
                                                                        std::move(initial));

  const int64_t threshold = std::max<int64_t>(1, opt.min_frequency);
  // The merge step that last touched each word (a word may be listed twice for a pair).
  std::vector<uint32_t> visited(words.len.size(), 0);
  std::vector<uint64_t> grown;  // pairs that appeared in some word during this step
  uint32_t step = 0;
  result.stop = BpeStopReason::kVocabSize;
  while (tokens.size() < opt.vocab_size) {
    if (heap.empty()) {
      result.stop = BpeStopReason::kNoPairs;
      break;
    }
    const HeapEntry top = heap.top();
    heap.pop();
    auto pit = pairs.find(top.pair);
    PairInfo& info = pit->second;
    if (info.merged) continue;
    if (info.count != top.count) {
      // Stale. A pair's count only rises in a step that also pushes an entry with the new count, so
      // the largest current count always has an entry at least as large, and refreshing entries as
      // they surface keeps the pop order exact.
      if (info.count > 0) heap.push({info.count, top.pair});
      continue;
    }
    if (top.count < threshold) {
      result.stop = BpeStopReason::kNoPairs;
      break;
    }

    const int32_t a = PairLeft(top.pair);
    const int32_t b = PairRight(top.pair);
    std::string merged_text = tokens[a] + tokens[b];
    int32_t t;
    if (auto it = token_id.find(merged_text); it != token_id.end()) {
      t = it->second;
    } else {
      t = static_cast<int32_t>(tokens.size());
      token_id.emplace(merged_text, t);
      tokens.push_back(std::move(merged_text));
    }
    result.vocab.merges.push_back(tokens[a] + " " + tokens[b]);

    ++step;
    std::vector<uint32_t> todo = std::move(info.words);
    info.words = {};
    info.merged = true;
    info.count = 0;
    grown.clear();
    // Adds `delta` occurrences of (l, r) in word w; a pair that appears is indexed and re-queued
    // after the step.
    auto change = [&](int32_t l, int32_t r, int64_t delta, uint32_t w) {
      const uint64_t key = PairKey(l, r);
      PairInfo& p = pairs[key];
      p.count += delta;
      if (delta > 0) {
        if (p.words.empty() || p.words.back() != w) p.words.push_back(w);
        grown.push_back(key);
      }
    };
    for (uint32_t w : todo) {
      if (visited[w] == step) continue;
      visited[w] = step;
      int32_t* s = &words.syms[words.begin[w]];
      const uint32_t n = words.len[w];
      const int64_t c = words.count[w];
      // Left to right, non-overlapping (as HF's Word::merge); `out` trails `i`, so s[i + 2] is
      // still the input symbol while s[out - 1] is the (possibly merged) output one.
      uint32_t out = 0;
      for (uint32_t i = 0; i < n;) {
        if (i + 1 < n && s[i] == a && s[i + 1] == b) {
          if (out > 0) {
            change(s[out - 1], a, -c, w);
            change(s[out - 1], t, c, w);
          }
          if (i + 2 < n) {
            change(b, s[i + 2], -c, w);
            change(t, s[i + 2], c, w);
          }
          s[out++] = t;
          i += 2;
        } else {
          s[out++] = s[i++];
        }
      }
      words.len[w] = out;
    }
    std::sort(grown.begin(), grown.end());
    grown.erase(std::unique(grown.begin(), grown.end()), grown.end());
    for (uint64_t key : grown) {
      const PairInfo& p = pairs[key];
      if (!p.merged && p.count > 0) heap.push({p.count, key});
    }
  }

  Vocab& vocab = result.vocab;
  vocab.model = ModelKind::kGpt2;
  vocab.pre = opt.pre;
  ApplyLlamaCppDefaults(vocab);
  vocab.token_types.assign(tokens.size(), TokenType::kNormal);
  for (size_t i = 0; i < opt.special_tokens.size(); ++i) {
    vocab.token_types[token_id.at(opt.special_tokens[i])] = TokenType::kControl;
  }
  vocab.tokens = std::move(tokens);
  for (const auto& [name, field] :
       {std::pair<const std::string*, int32_t Vocab::*>{&opt.bos_token, &Vocab::bos_id},
        {&opt.eos_token, &Vocab::eos_id},
        {&opt.eot_token, &Vocab::eot_id},
        {&opt.pad_token, &Vocab::pad_id}}) {
    if (!name->empty()) vocab.*field = token_id.at(*name);
  }
  return result;
}

Result<BpeTrainResult> TrainByteLevelBpe(std::span<const std::string> documents,
                                         const BpeTrainOptions& options) {
  PK_ASSIGN_OR_RETURN(BpeTrainer trainer, BpeTrainer::Create(options));
  for (const std::string& d : documents) trainer.AddDocument(d);
  return trainer.Train();
}

}  // namespace pocket::tokenizer
