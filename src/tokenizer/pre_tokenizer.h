// Pre-tokenizers for byte-level BPE: split text into the words BPE merges within, by the
// regex list llama.cpp associates with each tokenizer.ggml.pre name (llama-vocab.cpp,
// llm_tokenizer_bpe) — the same splits as the Split / ByteLevel / Digits pre-tokenizers of
// the models' Hugging Face tokenizer.json. Each regex splits every piece the previous one
// produced into its matches and the gaps between them (HF's "isolated" behaviour).
// Regexes run on PCRE2 (UTF + UCP, JIT when available); invalid UTF-8 never matches, so it
// ends up in gap pieces and still round-trips.
// Users: tokenizer.cc only. Thread safety: immutable after Create(); Split is const and
// allocates its own match data, so any number of threads may call it.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace pocket::tokenizer {

class PreTokenizer {
 public:
  // NotSupported naming tokenizer.ggml.pre and the supported names for an unknown `pre`.
  static Result<std::unique_ptr<PreTokenizer>> Create(std::string_view pre);
  // As Create, but from explicit PCRE2 patterns (tests, custom vocabularies).
  static Result<std::unique_ptr<PreTokenizer>> FromPatterns(std::vector<std::string> patterns);
  ~PreTokenizer();

  // Calls `word` for every piece of `text`, in order; the pieces concatenate to `text`.
  void Split(std::string_view text, const std::function<void(std::string_view)>& word) const;
  std::vector<std::string> SplitToVector(std::string_view text) const;

  struct Regex;

 private:
  PreTokenizer() = default;
  std::vector<std::unique_ptr<Regex>> regexes_;
};

std::vector<std::string> PreTokenizerNames();
// The names that select Llama 3's regex (llama.cpp: add_bos and ignore_merges default on).
bool IsLlama3PreTokenizer(std::string_view pre);

}  // namespace pocket::tokenizer
