// Streaming text out of a token loop: token pieces are raw bytes, and a multi-byte UTF-8
// character may span two tokens; a stop string may span several. Utf8Assembler holds back
// an incomplete trailing sequence; StopMatcher holds back a tail that could still become a
// stop string, and cuts the text at the first complete one. Session chains them:
//   piece bytes -> Utf8Assembler -> StopMatcher -> on_text.
// Thread safety: values; not thread-safe.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace pocket::runtime {

// Length of the longest prefix of `bytes` that ends on a UTF-8 character boundary,
// treating only an incomplete but so-far-valid sequence at the very end as "not yet".
size_t CompleteUtf8Prefix(std::string_view bytes);

class Utf8Assembler {
 public:
  // Appends raw bytes; returns the complete characters now available. Malformed bytes
  // (a stray continuation byte, a lead byte not followed by enough continuation bytes, an
  // overlong or surrogate form) come out as U+FFFD, so the output is always valid UTF-8.
  std::string Push(std::string_view bytes);
  // Whatever is still held back (an unfinished sequence), as U+FFFD; empties the buffer.
  std::string Flush();

 private:
  std::string pending_;
};

// Replaces every malformed sequence in `bytes` with U+FFFD (one per maximal bad subpart).
std::string SanitizeUtf8(std::string_view bytes);

class StopMatcher {
 public:
  explicit StopMatcher(std::vector<std::string> stops);

  struct Output {
    std::string text;      // safe to emit now
    bool stopped = false;  // a stop string was completed; `text` ends right before it
  };
  // Appends text. Once stopped, further pushes return nothing.
  Output Push(std::string_view text);
  // The held-back tail (a partial match that never completed); empties the buffer.
  std::string Flush();
  bool stopped() const { return stopped_; }

 private:
  std::vector<std::string> stops_;
  std::string pending_;
  bool stopped_ = false;
};

}  // namespace pocket::runtime
