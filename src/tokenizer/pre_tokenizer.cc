#include "tokenizer/pre_tokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <algorithm>
#include <memory>

namespace pocket::tokenizer {
namespace {

// GPT-2 (HF ByteLevel use_regex=True). llama.cpp drops the final `|\s+`; it only ever
// matches what would otherwise be a gap piece, so the split is the same.
constexpr std::string_view kGpt2 =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
// Llama 3 tokenizer.json Split regex: case-insensitive contractions, 1-3 digit groups.
constexpr std::string_view kLlama3 =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
// Qwen2 tokenizer.json: as Llama 3 but single digits.
constexpr std::string_view kQwen2 =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
// SmolLM / StarCoder: Digits(individual_digits) then the GPT-2 ByteLevel regex.
constexpr std::string_view kDigit = R"(\p{N})";
// llama.cpp's "default" list (unknown pre-tokenizers in older files).
constexpr std::string_view kDefault0 = R"([\p{P}\$\+<=>\^~\|]+)";
constexpr std::string_view kDefault2 = R"(\p{N}+)";
constexpr std::string_view kDefault3 = R"([0-9][0-9][0-9])";

struct Named {
  std::string_view name;
  std::vector<std::string_view> patterns;
};

const std::vector<Named>& Table() {
  static const std::vector<Named> table = {
      {"default", {kDefault0, kGpt2, kDefault2, kDefault3}},
      {"gpt-2", {kGpt2}},
      {"gpt2", {kGpt2}},
      {"phi-2", {kGpt2}},
      {"mpt", {kGpt2}},
      {"olmo", {kGpt2}},
      {"llama-bpe", {kLlama3}},
      {"llama3", {kLlama3}},
      {"llama-v3", {kLlama3}},
      {"falcon3", {kLlama3}},
      {"dbrx", {kLlama3}},
      {"smaug-bpe", {kLlama3}},
      {"qwen2", {kQwen2}},
      {"deepseek-r1-qwen", {kQwen2}},
      {"stablelm2", {kQwen2}},
      {"megrez", {kQwen2}},
      {"smollm", {kDigit, kGpt2}},
      {"starcoder", {kDigit, kGpt2}},
      {"refact", {kDigit, kGpt2}},
      {"codeshell", {kDigit, kGpt2}},
  };
  return table;
}

}  // namespace

struct PreTokenizer::Regex {
  pcre2_code* code = nullptr;
  bool jit = false;
  ~Regex() { pcre2_code_free(code); }
};

PreTokenizer::~PreTokenizer() = default;

std::vector<std::string> PreTokenizerNames() {
  std::vector<std::string> names;
  for (const auto& n : Table()) names.emplace_back(n.name);
  return names;
}

bool IsLlama3PreTokenizer(std::string_view pre) {
  return pre == "llama-bpe" || pre == "llama3" || pre == "llama-v3" || pre == "falcon3";
}

Result<std::unique_ptr<PreTokenizer>> PreTokenizer::Create(std::string_view pre) {
  for (const auto& n : Table()) {
    if (n.name == pre) {
      std::vector<std::string> patterns(n.patterns.begin(), n.patterns.end());
      return FromPatterns(std::move(patterns));
    }
  }
  std::string names;
  for (const auto& n : Table()) names += (names.empty() ? "" : ", ") + std::string(n.name);
  return Status::NotSupported("tokenizer.ggml.pre: unknown pre-tokenizer '" + std::string(pre) +
                              "' (supported: " + names + ")");
}

Result<std::unique_ptr<PreTokenizer>> PreTokenizer::FromPatterns(
    std::vector<std::string> patterns) {
  std::unique_ptr<PreTokenizer> p(new PreTokenizer());
  for (const std::string& pattern : patterns) {
    int error = 0;
    PCRE2_SIZE offset = 0;
    pcre2_code* code =
        pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                      PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &error, &offset, nullptr);
    if (code == nullptr) {
      PCRE2_UCHAR message[256];
      pcre2_get_error_message(error, message, sizeof(message));
      return Status::InvalidArgument("tokenizer: pre-tokenizer regex '" + pattern + "' at " +
                                     std::to_string(offset) + ": " +
                                     reinterpret_cast<const char*>(message));
    }
    auto regex = std::make_unique<Regex>();
    regex->code = code;
    // JIT is a speed-up only (about 5x on these patterns); without it matching still works.
    regex->jit = pcre2_jit_compile(code, PCRE2_JIT_COMPLETE) == 0;
    p->regexes_.push_back(std::move(regex));
  }
  return p;
}

namespace {

struct MatchData {
  pcre2_match_data* data;
  explicit MatchData(const pcre2_code* code)
      : data(pcre2_match_data_create_from_pattern(code, nullptr)) {}
  ~MatchData() { pcre2_match_data_free(data); }
  MatchData(const MatchData&) = delete;
  MatchData& operator=(const MatchData&) = delete;
};

// Splits `piece` by `regex` into matches and gaps, calling `emit` for each in order.
template <typename Emit>
void SplitOne(const pcre2_code* code, pcre2_match_data* md, std::string_view piece, Emit&& emit) {
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(piece.data());
  size_t pos = 0;
  size_t gap_start = 0;
  while (pos < piece.size()) {
    int rc = pcre2_match(code, subject, piece.size(), pos, 0, md, nullptr);
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT) {
      // Very long runs can exhaust the JIT's default 32 KiB stack; the interpreter has no
      // such limit (its heap limit is 20 MB by default).
      rc = pcre2_match(code, subject, piece.size(), pos, PCRE2_NO_JIT, md, nullptr);
    }
    if (rc < 0) break;  // no further match (or an error): the rest is one gap
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
    size_t start = ov[0];
    size_t end = ov[1];
    if (end <= start) {
      // Empty match (none of our patterns produce one): step past one byte.
      pos = start + 1;
      continue;
    }
    if (start > gap_start) emit(piece.substr(gap_start, start - gap_start));
    emit(piece.substr(start, end - start));
    pos = gap_start = end;
  }
  if (gap_start < piece.size()) emit(piece.substr(gap_start));
}

}  // namespace

void PreTokenizer::Split(std::string_view text,
                         const std::function<void(std::string_view)>& word) const {
  if (text.empty()) return;
  if (regexes_.empty()) {
    word(text);
    return;
  }
  std::vector<std::unique_ptr<MatchData>> data;
  data.reserve(regexes_.size());
  for (const auto& r : regexes_) data.push_back(std::make_unique<MatchData>(r->code));
  // Depth-first through the regex list keeps pieces as views into `text`, no copies.
  std::function<void(size_t, std::string_view)> run = [&](size_t level, std::string_view piece) {
    if (level == regexes_.size()) {
      word(piece);
      return;
    }
    SplitOne(regexes_[level]->code, data[level]->data, piece,
             [&](std::string_view sub) { run(level + 1, sub); });
  };
  run(0, text);
}

std::vector<std::string> PreTokenizer::SplitToVector(std::string_view text) const {
  std::vector<std::string> out;
  Split(text, [&](std::string_view w) { out.emplace_back(w); });
  return out;
}

}  // namespace pocket::tokenizer
