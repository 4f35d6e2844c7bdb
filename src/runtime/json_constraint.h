// JSON mode (OpenAI's response_format {"type": "json_object"}): constrains generation so
// the output is one JSON object (RFC 8259), and says when that object is complete.
//
//  - JsonRecognizer: an incremental recognizer (a pushdown automaton over bytes) for the
//    prefixes of one JSON document whose top level is an object: objects, arrays, strings
//    (escapes, \uXXXX with paired surrogates, UTF-8 validated as RFC 3629), numbers, true,
//    false, null, whitespace. Exact on prefixes: every byte string it accepts can still be
//    completed to a valid document, so constrained generation never paints itself into a
//    corner. Stricter than the RFC in three bounded ways, so that a model cannot loop and
//    every accepted document parses everywhere (nlohmann::json, JSON.parse, Python):
//    at most kJsonMaxWhitespaceRun consecutive whitespace bytes (llama.cpp's json grammar
//    bounds its `ws` the same way), at most kJsonMaxDepth nested containers, and numbers
//    below 1e308 in magnitude (integer digits + positive exponent <= 308; nlohmann rejects
//    a number that overflows a double). Whitespace after the closing brace is accepted.
//  - JsonTokenTable: every token's piece, precomputed once per vocabulary and sorted so
//    that tokens sharing a prefix share the work of checking it.
//  - SampleJsonToken: draws a token and, only when the draw is refused, masks every
//    refused token to -inf and draws again (llama.cpp's grammar sampling trick), so a
//    token costs one check when the model already writes JSON.
//
// Callers: runtime::Session::Generate and runtime::Scheduler (GenerateRequest::
// response_format). Thread safety: JsonRecognizer is a small value (copy it to explore);
// JsonTokenTable is immutable after construction and may be shared by threads.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace pocket::tokenizer {
class Tokenizer;
}  // namespace pocket::tokenizer

namespace pocket::runtime {

class Sampler;

inline constexpr int kJsonMaxDepth = 64;
inline constexpr int kJsonMaxWhitespaceRun = 20;
// Integer digits plus a positive exponent; keeps every number below 1e308 < DBL_MAX.
inline constexpr int kJsonMaxDecimalExponent = 308;

class JsonRecognizer {
 public:
  // Feeds one byte. False when it cannot continue a valid prefix: the recognizer is then
  // dead and every later Push returns false too.
  bool Push(uint8_t byte);
  // Feeds bytes in order; false (dead) at the first refused one.
  bool Push(std::string_view bytes);
  // The top-level object has closed (only whitespace may follow).
  bool complete() const { return mode_ == Mode::kDone; }
  bool dead() const { return mode_ == Mode::kDead; }

 private:
  enum class Mode : uint8_t {
    kStart, kObjectOpen, kObjectKey, kColon, kValue, kArrayOpen, kAfterValue, kDone,
    kString, kEscape, kUnicode, kLowBackslash, kLowU, kUnicodeLow, kUtf8,
    kNumMinus, kNumZero, kNumInt, kNumDot, kNumFrac, kNumExp, kNumExpSign, kNumExpDigits,
    kLiteral, kDead,
  };
  bool Fail();
  bool Whitespace();
  bool StartValue(uint8_t c);
  bool Close(uint8_t c);
  bool AfterValue(uint8_t c);
  bool StringByte(uint8_t c);
  bool EndValue() {
    mode_ = Mode::kAfterValue;
    return true;
  }

  uint64_t stack_ = 0;   // bit d: the container at depth d is an array (else an object)
  uint16_t int_digits_ = 0;
  uint16_t exponent_ = 0;  // saturates above kJsonMaxDecimalExponent
  uint16_t code_ = 0;      // \uXXXX value read so far
  Mode mode_ = Mode::kStart;
  uint8_t depth_ = 0;
  uint8_t ws_run_ = 0;
  uint8_t count_ = 0;      // hex digits read, literal bytes matched, UTF-8 bytes still due
  uint8_t literal_ = 0;    // 0 true, 1 false, 2 null
  uint8_t utf8_lo_ = 0, utf8_hi_ = 0;  // range of the next UTF-8 continuation byte
  bool in_key_ = false;
  bool high_surrogate_ = false;
  bool exp_negative_ = false;
};

class JsonTokenTable {
 public:
  // Pieces of ids [0, vocab_size) (the model's logit count; ids past the tokenizer's
  // vocabulary never pass). Control tokens and empty pieces never pass; end-of-generation
  // tokens pass only once the object is complete. Takes ~O(vocab log vocab), once.
  JsonTokenTable(const tokenizer::Tokenizer& tok, size_t vocab_size);

  size_t vocab_size() const { return kind_.size(); }
  // Whether `token` may come next: its whole piece is accepted from `state`.
  bool Allows(const JsonRecognizer& state, int32_t token) const;
  // Sets logits[t] = -inf for every token that may not come next; returns how many may.
  // REQUIRES: logits.size() == vocab_size().
  size_t Mask(const JsonRecognizer& state, std::span<float> logits) const;

 private:
  enum class Kind : uint8_t { kText, kEndOfGeneration, kNever };
  std::vector<std::string> pieces_;  // by id
  std::vector<Kind> kind_;           // by id
  std::vector<int32_t> order_;       // kText ids sorted by piece
  std::vector<uint32_t> common_;     // common_[i]: shared prefix of order_[i-1], order_[i]
  size_t max_piece_bytes_ = 0;
};

// The next token under the constraint: `sampler` draws from `logits` first; when that
// token is refused, every refused token is masked (into *scratch) and it draws again.
// Deterministic for a given sampler state and logits. Internal when no token of the
// vocabulary may come next (a vocabulary without the bytes JSON needs).
// REQUIRES: logits.size() == table.vocab_size(); !state.dead().
Result<int32_t> SampleJsonToken(Sampler& sampler, const JsonTokenTable& table,
                                const JsonRecognizer& state, std::span<const float> logits,
                                std::span<const int32_t> history, std::vector<float>* scratch);

}  // namespace pocket::runtime
