// Training data (data.h): the folder walk, UTF-8 and JSONL checks, the hash split, chat rendering
// with assistant-only targets, packing, the data hash and the shuffled batches. What a token means
// and how text becomes tokens is the tokenizer's business; how a batch is run is the trainer's.
#include "train/data.h"

#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <optional>
#include <set>
#include <utility>

#include "base/file.h"
#include "base/json_limits.h"
#include "base/sha256.h"
#include "base/thread_pool.h"
#include "base/utf8.h"

namespace pocket::train {
namespace {

using tokenizer::ChatMessage;
using tokenizer::kNoToken;

// ---------------------------------------------------------------------------------------
// Files

struct FileEntry {
  std::string rel;      // relative to the root folder, '/'-separated: the sort key
  std::string display;  // the path errors name
  dev_t dev = 0;
  ino_t ino = 0;
};

bool IsChatFile(std::string_view name) {
  if (name.size() < 6) return false;
  std::string ext(name.substr(name.size() - 6));
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return ext == ".jsonl";
}

bool HasDataExtension(std::string_view name) {
  const size_t dot = name.rfind('.');
  if (dot == std::string_view::npos) return false;
  std::string ext(name.substr(dot));
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return std::find(kDataExtensions.begin(), kDataExtensions.end(), ext) != kDataExtensions.end();
}

Status StatError(const std::string& path) {
  const int err = errno;
  if (err == ENOENT) return Status::IOError("data: " + path + ": broken symlink");
  return Status::IOError("data: " + path + ": " + std::strerror(err));
}

// Depth-first walk of a folder. Entries of each folder are visited in byte order so that the first
// error met is the same on every file system; the files found are sorted by their relative paths
// afterwards (that order, not this walk's, is the data's order).
class Walker {
 public:
  std::vector<FileEntry> files;
  size_t skipped = 0;

  Status Walk(const std::string& dir, const std::string& rel, const struct stat& dir_st) {
    for (size_t i = 0; i < ancestors_.size(); ++i) {
      if (ancestors_[i].first == dir_st.st_dev && ancestors_[i].second == dir_st.st_ino) {
        return Status::InvalidArgument("data: " + dir + ": symlink loop (it leads back to " +
                                       ancestor_paths_[i] + ")");
      }
    }
    DIR* d = opendir(dir.c_str());
    if (d == nullptr) {
      return Status::IOError("data: cannot read folder " + dir + ": " + std::strerror(errno));
    }
    std::vector<std::string> names;
    errno = 0;
    while (const dirent* e = readdir(d)) {
      const std::string_view name = e->d_name;
      if (name == "." || name == "..") continue;
      names.emplace_back(name);
    }
    const int read_errno = errno;
    closedir(d);
    if (read_errno != 0) {
      return Status::IOError("data: cannot read folder " + dir + ": " + std::strerror(read_errno));
    }
    std::sort(names.begin(), names.end());
    ancestors_.emplace_back(dir_st.st_dev, dir_st.st_ino);
    ancestor_paths_.push_back(dir);
    for (const std::string& name : names) {
      // Hidden entries (.git, editor swap files, .DS_Store) are never training data.
      if (name[0] == '.') {
        ++skipped;
        continue;
      }
      const std::string full = dir + "/" + name;
      const std::string child_rel = rel.empty() ? name : rel + "/" + name;
      struct stat st;
      if (stat(full.c_str(), &st) != 0) return StatError(full);
      if (S_ISDIR(st.st_mode)) {
        PK_RETURN_IF_ERROR(Walk(full, child_rel, st));
      } else if (S_ISREG(st.st_mode) && HasDataExtension(name)) {
        files.push_back({child_rel, full, st.st_dev, st.st_ino});
      } else {
        ++skipped;
      }
    }
    ancestors_.pop_back();
    ancestor_paths_.pop_back();
    return Status::Ok();
  }

 private:
  std::vector<std::pair<dev_t, ino_t>> ancestors_;
  std::vector<std::string> ancestor_paths_;
};

// The files to read, in data order, and how many a folder walk skipped.
Status ListFiles(const std::string& path, std::vector<FileEntry>& files, size_t& skipped) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return Status::NotFound("data: " + path + " does not exist");
    return StatError(path);
  }
  if (S_ISREG(st.st_mode)) {
    files.push_back({path, path, st.st_dev, st.st_ino});
    return Status::Ok();
  }
  if (!S_ISDIR(st.st_mode)) {
    return Status::InvalidArgument("data: " + path + " is neither a file nor a folder");
  }
  std::string root = path;
  while (root.size() > 1 && root.back() == '/') root.pop_back();
  Walker walker;
  PK_RETURN_IF_ERROR(walker.Walk(root, "", st));
  // std::string orders by char_traits<char>::compare, which compares as unsigned bytes.
  std::sort(walker.files.begin(), walker.files.end(),
            [](const FileEntry& a, const FileEntry& b) { return a.rel < b.rel; });
  std::set<std::pair<dev_t, ino_t>> seen;
  for (FileEntry& f : walker.files) {
    if (!seen.emplace(f.dev, f.ino).second) {
      ++walker.skipped;  // the same file through another symlink: read once
      continue;
    }
    files.push_back(std::move(f));
  }
  skipped = walker.skipped;
  if (files.empty()) {
    std::string exts;
    for (const std::string_view e : kDataExtensions)
      exts += (exts.empty() ? "" : " ") + std::string(e);
    return Status::InvalidArgument("data: " + path + ": no data files (" + exts +
                                   ") in the folder (" + std::to_string(skipped) +
                                   " other entries skipped)");
  }
  return Status::Ok();
}

// Offset of the first byte that does not start or continue a well-formed UTF-8 character (an
// incomplete character at the end counts), or npos.
size_t FindInvalidUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    if (static_cast<unsigned char>(s[i]) < 0x80) {
      ++i;
      continue;
    }
    const Utf8Step step = DecodeUtf8Step(s, i);
    if (step.kind != Utf8Kind::kValid) return i;
    i += step.length;
  }
  return std::string_view::npos;
}

// Cuts `text` into pieces of at most max_bytes (0: no limit): after the last blank line in the
// second half of the window, else the last newline there, else the last character boundary (a
// single character longer than max_bytes stays whole).
std::vector<std::string_view> CutText(std::string_view text, size_t max_bytes) {
  std::vector<std::string_view> pieces;
  size_t start = 0;
  while (max_bytes > 0 && text.size() - start > max_bytes) {
    const std::string_view window = text.substr(start, max_bytes);
    size_t cut = 0;
    const size_t blank = window.rfind("\n\n");
    const size_t newline = window.rfind('\n');
    if (blank != std::string_view::npos && blank >= max_bytes / 2) {
      cut = blank + 2;
    } else if (newline != std::string_view::npos && newline >= max_bytes / 2) {
      cut = newline + 1;
    } else {
      cut = max_bytes;
      // Back up over continuation bytes to the start of the character the window splits.
      while (cut > 0 && (static_cast<unsigned char>(text[start + cut]) & 0xC0) == 0x80) --cut;
      if (cut == 0) cut = DecodeUtf8Step(text, start).length;
    }
    pieces.push_back(text.substr(start, cut));
    start += cut;
  }
  if (start < text.size()) pieces.push_back(text.substr(start));
  return pieces;
}

// ---------------------------------------------------------------------------------------
// Documents

struct RawDocument {
  size_t file = 0;
  size_t line = 0;  // 1-based for a chat record; 0 for text
  std::string_view bytes;
  std::vector<ChatMessage> messages;  // chat records only
  bool validation = false;
};

// The first 8 bytes of SHA-256(bytes), big-endian: where a document falls in [0, 2^64).
uint64_t SplitKey(std::string_view bytes) {
  Sha256 sha;
  sha.Update(bytes);
  const std::array<uint8_t, 32> digest = sha.Finish();
  uint64_t h = 0;
  for (int i = 0; i < 8; ++i) h = (h << 8) | digest[i];
  return h;
}

size_t CommonPrefix(std::string_view a, std::string_view b) {
  const size_t n = std::min(a.size(), b.size());
  size_t i = 0;
  while (i < n && a[i] == b[i]) ++i;
  return i;
}

// Text: [BOS if the tokenizer adds one] + the text's tokens + [EOS]. Every token but the BOS is a
// target, the EOS included: the model learns where a document ends.
TokenizedDocument TokenizeText(std::string_view text, const tokenizer::Tokenizer& tok) {
  TokenizedDocument doc;
  if (tok.add_bos() && tok.bos() != kNoToken) doc.tokens.push_back(tok.bos());
  const std::vector<int32_t> ids = tok.Encode(text, /*add_special=*/false,
                                              /*parse_special=*/false);
  doc.tokens.insert(doc.tokens.end(), ids.begin(), ids.end());
  if (tok.eos() != kNoToken) doc.tokens.push_back(tok.eos());
  doc.is_target.assign(doc.tokens.size(), 1);
  if (tok.add_bos() && tok.bos() != kNoToken) doc.is_target[0] = 0;
  return doc;
}

void AppendPiece(std::string_view piece, bool assistant, const tokenizer::Tokenizer& tok,
                 TokenizedDocument& doc) {
  if (piece.empty()) return;
  const std::vector<int32_t> ids = tok.Encode(piece, /*add_special=*/false,
                                              /*parse_special=*/true);
  bool ended = false;
  for (const int32_t id : ids) {
    doc.tokens.push_back(id);
    // After the end-of-turn token comes template glue (ChatML's "\n") that the model never writes:
    // generation stops at the end-of-turn token.
    doc.is_target.push_back(assistant && !ended ? 1 : 0);
    if (assistant && tok.IsEndOfGeneration(id)) ended = true;
  }
}

// BOS as the runtime adds it to a rendered prompt (unless the template wrote it), and EOS as the
// document separator unless the document already ends generation, perhaps followed by whitespace
// glue (ChatML ends "<|im_end|>\n", and SmolLM2's EOS is <|im_end|>: a second one would teach
// nothing). Neither is a target.
void FinishChatDocument(const tokenizer::Tokenizer& tok, TokenizedDocument& doc) {
  if (tok.add_bos() && tok.bos() != kNoToken &&
      (doc.tokens.empty() || doc.tokens[0] != tok.bos())) {
    doc.tokens.insert(doc.tokens.begin(), tok.bos());
    doc.is_target.insert(doc.is_target.begin(), 0);
  }
  if (tok.eos() == kNoToken) return;
  size_t end = doc.tokens.size();
  while (end > 0) {
    const std::string piece = tok.TokenToPiece(doc.tokens[end - 1]);
    if (piece.empty() || piece.find_first_not_of(" \t\r\n") != std::string::npos) break;
    --end;
  }
  if (end > 0 && tok.IsEndOfGeneration(doc.tokens[end - 1])) return;
  doc.tokens.push_back(tok.eos());
  doc.is_target.push_back(0);
}

// ---------------------------------------------------------------------------------------
// Batches

uint64_t SplitMix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

uint64_t Mix(uint64_t seed, uint64_t epoch, uint64_t k) {
  return SplitMix64(SplitMix64(SplitMix64(seed) ^ epoch) ^ k);
}

void HashU64(Sha256& sha, uint64_t v) {
  char b[8];
  for (int i = 0; i < 8; ++i) b[i] = static_cast<char>(v >> (8 * i));
  sha.Update(std::string_view(b, 8));
}

void HashSplit(Sha256& sha, const PackedSplit& split) {
  HashU64(sha, split.num_tokens());
  std::string buf;
  buf.reserve(split.num_tokens() * 4);
  for (const int32_t t : split.tokens()) {
    const uint32_t u = static_cast<uint32_t>(t);
    for (int i = 0; i < 4; ++i) buf.push_back(static_cast<char>(u >> (8 * i)));
  }
  sha.Update(buf);
  sha.Update(std::string_view(reinterpret_cast<const char*>(split.is_target().data()),
                              split.is_target().size()));
}

}  // namespace

// ---------------------------------------------------------------------------------------
// Chat records

Result<std::vector<ChatMessage>> ParseChatRecord(std::string_view line) {
  PK_ASSIGN_OR_RETURN(nlohmann::json j, ParseUntrustedJson(line, "the record"));
  if (!j.is_object()) return Status::InvalidArgument("the record is not a JSON object");
  const auto it = j.find("messages");
  if (it == j.end()) return Status::InvalidArgument("the record has no \"messages\"");
  if (!it->is_array()) return Status::InvalidArgument("\"messages\" is not an array");
  if (it->empty()) return Status::InvalidArgument("\"messages\" is empty");
  std::vector<ChatMessage> messages;
  messages.reserve(it->size());
  for (size_t i = 0; i < it->size(); ++i) {
    const nlohmann::json& m = (*it)[i];
    const std::string where = "message " + std::to_string(i);
    if (!m.is_object()) return Status::InvalidArgument(where + " is not an object");
    ChatMessage msg;
    for (const auto& [key, value] : m.items()) {
      if (key != "role" && key != "content") {
        // The template only sees role and content: anything else (tool_calls, name) would be
        // silently dropped from what the model is trained on.
        return Status::InvalidArgument(where + " has the key \"" + key +
                                       "\" (only \"role\" and \"content\" are supported)");
      }
      if (!value.is_string()) {
        return Status::InvalidArgument(where + ": \"" + key + "\" is not a string");
      }
      (key == "role" ? msg.role : msg.content) = value.get<std::string>();
    }
    if (!m.contains("role")) return Status::InvalidArgument(where + " has no \"role\"");
    if (!m.contains("content")) return Status::InvalidArgument(where + " has no \"content\"");
    if (msg.role.empty()) return Status::InvalidArgument(where + " has an empty \"role\"");
    messages.push_back(std::move(msg));
  }
  return messages;
}

Result<ChatTokens> TokenizeChatRecord(std::span<const ChatMessage> messages,
                                      const tokenizer::Tokenizer& tok,
                                      const tokenizer::ChatTemplate& chat_template,
                                      const tokenizer::ChatOptions& options) {
  const std::string bos_text = tok.bos() != kNoToken ? tok.TokenToPiece(tok.bos()) : "";
  const std::string eos_text = tok.eos() != kNoToken ? tok.TokenToPiece(tok.eos()) : "";
  const size_t n = messages.size();
  auto render = [&](size_t k, bool generation_prompt) -> Result<std::string> {
    return chat_template.Apply(messages.first(k), generation_prompt, bos_text, eos_text, options);
  };

  // r[k]: the first k messages rendered, or nullopt where the template refuses a prefix (e.g. one
  // that insists on ending with a user turn). The whole conversation must render.
  std::vector<std::optional<std::string>> r(n + 1);
  r[0] = std::string();
  for (size_t k = 1; k < n; ++k) {
    Result<std::string> text = render(k, false);
    if (text.ok()) r[k] = std::move(*text);
  }
  {
    Result<std::string> full = render(n, false);
    if (!full.ok()) {
      return Status::InvalidArgument("the chat template fails: " + full.status().message());
    }
    r[n] = std::move(*full);
  }
  bool stable = true;
  for (size_t k = 0; k < n && stable; ++k) {
    stable = r[k].has_value() && r[k + 1].has_value() && r[k + 1]->starts_with(*r[k]);
  }

  // Each assistant message's span [start, end) in r[k + 1].
  struct Span {
    size_t message, start, end;
  };
  std::vector<Span> spans;
  for (size_t k = 0; k < n; ++k) {
    if (messages[k].role != "assistant") continue;
    const std::string where = "assistant message " + std::to_string(k);
    if (!r[k + 1]) {
      return Status::InvalidArgument("the chat template fails on the first " +
                                     std::to_string(k + 1) + " messages");
    }
    const std::string& turn = *r[k + 1];
    // Where the turns before this one end, when the template is stable up to here.
    const size_t base = r[k] && turn.starts_with(*r[k]) ? r[k]->size() : 0;
    std::optional<size_t> start;
    Result<std::string> prompt = render(k, true);
    if (prompt.ok() && prompt->size() >= base && turn.starts_with(*prompt)) {
      start = prompt->size();  // the usual case: the model writes what follows its prompt
    } else {
      // The generation prompt is not how the template renders the turn (Zephyr-style whitespace, or
      // a preamble such as SmolLM2's default system prompt that only comes with a first message):
      // the turn starts where its content does, searched from where the turn stops agreeing with
      // its prompt, so an earlier user message quoting the answer is not taken for it.
      const size_t from = std::max(base, prompt.ok() ? CommonPrefix(*prompt, turn) : 0);
      const std::string& content = messages[k].content;
      const size_t first = content.find_first_not_of(" \t\r\n");
      if (first != std::string::npos) {
        const size_t last = content.find_last_not_of(" \t\r\n");
        const size_t at =
            turn.find(std::string_view(content).substr(first, last + 1 - first), from);
        if (at != std::string::npos) start = at;
      }
    }
    if (!start) {
      return Status::InvalidArgument("cannot tell where " + where +
                                     " starts: the chat template renders it neither after its "
                                     "generation prompt nor with its content intact");
    }
    if (*start >= turn.size()) {
      return Status::InvalidArgument("the chat template renders " + where + " as nothing");
    }
    spans.push_back({k, *start, turn.size()});
  }

  ChatTokens out;
  if (stable) {
    const std::string& text = *r[n];
    TokenizedDocument doc;
    size_t pos = 0;
    for (const Span& s : spans) {
      AppendPiece(std::string_view(text).substr(pos, s.start - pos), false, tok, doc);
      AppendPiece(std::string_view(text).substr(s.start, s.end - s.start), true, tok, doc);
      pos = s.end;
    }
    AppendPiece(std::string_view(text).substr(pos), false, tok, doc);
    FinishChatDocument(tok, doc);
    out.documents.push_back(std::move(doc));
    return out;
  }
  out.per_turn = true;
  for (const Span& s : spans) {
    const std::string_view text = *r[s.message + 1];
    TokenizedDocument doc;
    AppendPiece(text.substr(0, s.start), false, tok, doc);
    AppendPiece(text.substr(s.start), true, tok, doc);
    FinishChatDocument(tok, doc);
    out.documents.push_back(std::move(doc));
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// PackedSplit

PackedSplit::PackedSplit(std::vector<int32_t> tokens, std::vector<uint8_t> is_target,
                         size_t seq_len, int32_t pad_id)
    : tokens_(std::move(tokens)),
      is_target_(std::move(is_target)),
      seq_len_(seq_len),
      pad_id_(pad_id) {
  PK_CHECK(seq_len_ >= 1 && tokens_.size() == is_target_.size());
  num_sequences_ = tokens_.size() < 2 ? 0 : (tokens_.size() - 1 + seq_len_ - 1) / seq_len_;
  for (size_t j = 1; j < is_target_.size(); ++j) num_loss_tokens_ += is_target_[j] != 0;
}

void PackedSplit::Sequence(size_t index, std::span<int32_t> inputs,
                           std::span<int32_t> targets) const {
  PK_CHECK(index < num_sequences_ && inputs.size() == seq_len_ && targets.size() == seq_len_);
  const size_t n = tokens_.size();
  const size_t base = index * seq_len_;
  for (size_t j = 0; j < seq_len_; ++j) {
    const size_t p = base + j;
    inputs[j] = p < n ? tokens_[p] : pad_id_;
    targets[j] = p + 1 < n && is_target_[p + 1] ? tokens_[p + 1] : -1;
  }
}

void PackedSplit::Sequences(size_t first, size_t count, std::span<int32_t> inputs,
                            std::span<int32_t> targets) const {
  PK_CHECK(first + count <= num_sequences_ && inputs.size() == count * seq_len_ &&
           targets.size() == count * seq_len_);
  for (size_t i = 0; i < count; ++i) {
    Sequence(first + i, inputs.subspan(i * seq_len_, seq_len_),
             targets.subspan(i * seq_len_, seq_len_));
  }
}

// ---------------------------------------------------------------------------------------
// Dataset

Result<Dataset> Dataset::Load(const std::string& path, const tokenizer::Tokenizer& tok,
                              const tokenizer::ChatTemplate* chat_template,
                              const DataOptions& options) {
  if (options.seq_len == 0) return Status::InvalidArgument("data: seq_len must be at least 1");
  if (!(options.validation_fraction >= 0.0 && options.validation_fraction < 1.0)) {
    return Status::InvalidArgument("data: the validation fraction " +
                                   std::to_string(options.validation_fraction) +
                                   " is not in [0, 1)");
  }
  // fraction < 1 keeps the product below 2^64 (at most 2^64 - 2^11), so the cast is exact.
  const uint64_t threshold = static_cast<uint64_t>(std::ldexp(options.validation_fraction, 64));

  Dataset ds;
  DataStats& stats = ds.stats_;
  std::vector<FileEntry> files;
  PK_RETURN_IF_ERROR(ListFiles(path, files, stats.files_skipped));

  // 1-2. Read every file and cut it into documents (views into `contents`).
  std::vector<std::string> contents(files.size());
  std::vector<RawDocument> raw;
  for (size_t f = 0; f < files.size(); ++f) {
    const std::string& name = files[f].display;
    Result<std::string> bytes = ReadFile(name);
    if (!bytes.ok()) return Status::IOError("data: " + bytes.status().message());
    contents[f] = std::move(*bytes);
    ++stats.files_read;
    std::string_view text = contents[f];
    if (text.starts_with("\xEF\xBB\xBF")) text.remove_prefix(3);
    if (const size_t bad = FindInvalidUtf8(text); bad != std::string_view::npos) {
      const size_t offset = bad + (contents[f].size() - text.size());
      const size_t line = 1 + std::count(text.begin(), text.begin() + bad, '\n');
      return Status::InvalidArgument("data: " + name + ": not valid UTF-8 at byte " +
                                     std::to_string(offset) + " (line " + std::to_string(line) +
                                     ")");
    }
    if (!IsChatFile(name)) {
      for (const std::string_view piece : CutText(text, options.max_document_bytes)) {
        raw.push_back({f, 0, piece, {}, false});
        ++stats.text_documents;
      }
      continue;
    }
    size_t line_no = 0;
    size_t pos = 0;
    while (pos < text.size()) {
      size_t end = text.find('\n', pos);
      if (end == std::string_view::npos) end = text.size();
      std::string_view line = text.substr(pos, end - pos);
      pos = end + 1;
      ++line_no;
      if (line.ends_with('\r')) line.remove_suffix(1);
      if (line.find_first_not_of(" \t") == std::string_view::npos) continue;
      const std::string where = "data: " + name + ":" + std::to_string(line_no) + ": ";
      if (chat_template == nullptr) {
        return Status::InvalidArgument(where +
                                       "a chat record needs a chat template, and the model has "
                                       "none (--chat-template names one)");
      }
      Result<std::vector<ChatMessage>> messages = ParseChatRecord(line);
      if (!messages.ok()) return Status::InvalidArgument(where + messages.status().message());
      raw.push_back({f, line_no, line, std::move(*messages), false});
      ++stats.chat_records;
    }
  }

  // 3. The split, by content alone. A small set where no key falls below the threshold still
  // gets one held-out document (the smallest key) so that validation loss exists.
  bool any_validation = false;
  size_t smallest = 0;
  std::vector<uint64_t> keys(raw.size());
  for (size_t i = 0; i < raw.size(); ++i) {
    keys[i] = SplitKey(raw[i].bytes);
    raw[i].validation = keys[i] < threshold;
    any_validation |= raw[i].validation;
    if (keys[i] < keys[smallest]) smallest = i;
  }
  if (threshold > 0 && !any_validation && raw.size() >= 2) raw[smallest].validation = true;

  // 4. Tokens. Each document's tokens depend on that document only, so the pool's split of the work
  // cannot change them; the first error in document order is reported.
  std::vector<std::vector<TokenizedDocument>> tokenized(raw.size());
  std::vector<Status> errors(raw.size());
  std::vector<uint8_t> per_turn(raw.size(), 0);
  auto work = [&](size_t i, size_t /*thread*/) {
    const RawDocument& d = raw[i];
    if (d.line == 0) {
      tokenized[i].push_back(TokenizeText(d.bytes, tok));
      return;
    }
    Result<ChatTokens> chat = TokenizeChatRecord(d.messages, tok, *chat_template, options.chat);
    if (!chat.ok()) {
      errors[i] = Status::InvalidArgument("data: " + files[d.file].display + ":" +
                                          std::to_string(d.line) + ": " + chat.status().message());
      return;
    }
    per_turn[i] = chat->per_turn;
    tokenized[i] = std::move(chat->documents);
  };
  if (options.pool != nullptr) {
    options.pool->ParallelFor(raw.size(), work);
  } else {
    for (size_t i = 0; i < raw.size(); ++i) work(i, 0);
  }
  for (const Status& s : errors) PK_RETURN_IF_ERROR(s);

  // 5. Packing.
  std::vector<int32_t> train_tokens, val_tokens;
  std::vector<uint8_t> train_targets, val_targets;
  for (size_t i = 0; i < raw.size(); ++i) {
    stats.chat_records_per_turn += per_turn[i];
    const bool val = raw[i].validation;
    (val ? stats.validation_documents : stats.train_documents) += 1;
    std::vector<int32_t>& tokens = val ? val_tokens : train_tokens;
    std::vector<uint8_t>& targets = val ? val_targets : train_targets;
    for (const TokenizedDocument& doc : tokenized[i]) {
      tokens.insert(tokens.end(), doc.tokens.begin(), doc.tokens.end());
      targets.insert(targets.end(), doc.is_target.begin(), doc.is_target.end());
    }
    tokenized[i] = {};
  }
  const int32_t pad = tok.eos() != kNoToken ? tok.eos() : 0;
  ds.train_ = PackedSplit(std::move(train_tokens), std::move(train_targets), options.seq_len, pad);
  ds.validation_ = PackedSplit(std::move(val_tokens), std::move(val_targets), options.seq_len, pad);
  stats.train_tokens = ds.train_.num_tokens();
  stats.validation_tokens = ds.validation_.num_tokens();
  stats.train_loss_tokens = ds.train_.num_loss_tokens();
  stats.validation_loss_tokens = ds.validation_.num_loss_tokens();
  if (ds.train_.num_loss_tokens() == 0) {
    return Status::InvalidArgument(
        "data: " + path + ": nothing to train on (" + std::to_string(stats.train_documents) +
        " training documents with " + std::to_string(stats.train_loss_tokens) + " target tokens, " +
        std::to_string(stats.validation_documents) + " held out)");
  }

  Sha256 sha;
  sha.Update("pocket-data-v1\n");
  HashSplit(sha, ds.train_);
  HashSplit(sha, ds.validation_);
  const std::array<uint8_t, 32> digest = sha.Finish();
  ds.data_hash_ = ToHex(digest.data(), digest.size());
  return ds;
}

// ---------------------------------------------------------------------------------------
// BatchIterator

Result<std::vector<std::string>> CorpusTexts(const std::string& path,
                                             const DataOptions& options) {
  std::vector<FileEntry> files;
  size_t skipped = 0;
  PK_RETURN_IF_ERROR(ListFiles(path, files, skipped));
  std::vector<std::string> out;
  for (const FileEntry& file : files) {
    const std::string& name = file.display;
    Result<std::string> bytes = ReadFile(name);
    if (!bytes.ok()) return Status::IOError("data: " + bytes.status().message());
    std::string_view text = *bytes;
    if (text.starts_with("\xEF\xBB\xBF")) text.remove_prefix(3);
    if (const size_t bad = FindInvalidUtf8(text); bad != std::string_view::npos) {
      const size_t offset = bad + (bytes->size() - text.size());
      const size_t line = 1 + std::count(text.begin(), text.begin() + bad, '\n');
      return Status::InvalidArgument("data: " + name + ": not valid UTF-8 at byte " +
                                     std::to_string(offset) + " (line " + std::to_string(line) +
                                     ")");
    }
    if (!IsChatFile(name)) {
      for (const std::string_view piece : CutText(text, options.max_document_bytes)) {
        out.emplace_back(piece);
      }
      continue;
    }
    size_t line_no = 0;
    size_t pos = 0;
    while (pos < text.size()) {
      size_t end = text.find('\n', pos);
      if (end == std::string_view::npos) end = text.size();
      std::string_view line = text.substr(pos, end - pos);
      pos = end + 1;
      ++line_no;
      if (line.ends_with('\r')) line.remove_suffix(1);
      if (line.find_first_not_of(" \t") == std::string_view::npos) continue;
      Result<std::vector<ChatMessage>> messages = ParseChatRecord(line);
      if (!messages.ok()) {
        return Status::InvalidArgument("data: " + name + ":" + std::to_string(line_no) + ": " +
                                       messages.status().message());
      }
      for (ChatMessage& m : *messages) out.push_back(std::move(m.content));
    }
  }
  return out;
}

Result<BatchIterator> BatchIterator::Create(const PackedSplit& split, size_t num_seqs,
                                            uint64_t seed, DataCursor cursor) {
  if (split.num_sequences() == 0) {
    return Status::InvalidArgument("data: the training split has no sequences");
  }
  if (split.num_sequences() > UINT32_MAX) {
    return Status::InvalidArgument("data: more than 2^32 training sequences");
  }
  if (num_seqs == 0) return Status::InvalidArgument("data: a batch needs at least one sequence");
  if (cursor.position >= split.num_sequences()) {
    return Status::InvalidArgument(
        "data: the cursor's position " + std::to_string(cursor.position) + " is past the " +
        std::to_string(split.num_sequences()) +
        " training sequences (a checkpoint made on other data or another "
        "seq_len?)");
  }
  return BatchIterator(split, num_seqs, seed, cursor);
}

BatchIterator::BatchIterator(const PackedSplit& split, size_t num_seqs, uint64_t seed,
                             DataCursor cursor)
    : split_(&split), num_seqs_(num_seqs), seed_(seed), cursor_(cursor) {
  Shuffle();
}

void BatchIterator::Shuffle() {
  const size_t n = split_->num_sequences();
  order_.resize(n);
  for (size_t i = 0; i < n; ++i) order_[i] = static_cast<uint32_t>(i);
  for (size_t k = n - 1; k >= 1; --k) {
    // Lemire's multiply-shift: uniform up to a bias below (k + 1) / 2^64.
    const uint64_t j = static_cast<uint64_t>(
        (static_cast<unsigned __int128>(Mix(seed_, cursor_.epoch, k)) * (k + 1)) >> 64);
    std::swap(order_[k], order_[j]);
  }
}

void BatchIterator::Next(std::span<int32_t> inputs, std::span<int32_t> targets) {
  const size_t seq_len = split_->seq_len();
  PK_CHECK(inputs.size() == num_seqs_ * seq_len && targets.size() == num_seqs_ * seq_len);
  for (size_t s = 0; s < num_seqs_; ++s) {
    split_->Sequence(order_[cursor_.position], inputs.subspan(s * seq_len, seq_len),
                     targets.subspan(s * seq_len, seq_len));
    if (++cursor_.position == order_.size()) {
      ++cursor_.epoch;
      cursor_.position = 0;
      Shuffle();
    }
  }
}

}  // namespace pocket::train
