// UTF-8 encoding and one-step decoding shared by the tokenizer, the text streamer and the
// CRDT string sanitizer, so every layer draws the same line between well-formed and
// ill-formed input (Unicode 15, table 3-7). Thread safety: pure functions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace pocket {

// Appends the UTF-8 encoding of `code_point`. REQUIRES: code_point <= 0x10FFFF.
void AppendUtf8(uint32_t code_point, std::string& out);

enum class Utf8Kind : uint8_t {
  kValid,       // a well-formed character of `length` bytes
  kInvalid,     // an ill-formed sequence: `length` is its maximal subpart (>= 1 byte)
  kIncomplete,  // a well-formed prefix cut off by the end of the input: `length` bytes
};
struct Utf8Step {
  Utf8Kind kind;
  size_t length;
};

// Decodes the sequence starting at s[i]. REQUIRES: i < s.size(). Replacing each kInvalid
// step by one U+FFFD is the W3C/WHATWG "maximal subpart" practice that TextDecoder follows.
Utf8Step DecodeUtf8Step(std::string_view s, size_t i);

}  // namespace pocket
