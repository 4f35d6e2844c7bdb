#include "runtime/text_stream.h"

#include <algorithm>
#include <cstdint>

#include "base/utf8.h"

namespace pocket::runtime {
namespace {

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

// Appends the well-formed rendering of s[0, end) to `out`; returns where an incomplete
// trailing sequence starts (s.size() when there is none).
size_t Render(std::string_view s, std::string* out) {
  size_t i = 0;
  while (i < s.size()) {
    const Utf8Step step = DecodeUtf8Step(s, i);
    if (step.kind == Utf8Kind::kIncomplete) return i;
    if (out) {
      if (step.kind == Utf8Kind::kValid) {
        out->append(s.substr(i, step.length));
      } else {
        out->append(kReplacement);
      }
    }
    i += step.length;
  }
  return s.size();
}

}  // namespace

size_t CompleteUtf8Prefix(std::string_view bytes) { return Render(bytes, nullptr); }

std::string SanitizeUtf8(std::string_view bytes) {
  std::string out;
  const size_t end = Render(bytes, &out);
  if (end < bytes.size()) out.append(kReplacement);
  return out;
}

std::string Utf8Assembler::Push(std::string_view bytes) {
  pending_.append(bytes);
  std::string out;
  const size_t end = Render(pending_, &out);
  pending_.erase(0, end);
  return out;
}

std::string Utf8Assembler::Flush() {
  std::string out = SanitizeUtf8(pending_);
  pending_.clear();
  return out;
}

StopMatcher::StopMatcher(std::vector<std::string> stops) {
  for (auto& s : stops) {
    if (!s.empty()) stops_.push_back(std::move(s));
  }
}

StopMatcher::Output StopMatcher::Push(std::string_view text) {
  Output out;
  if (stopped_) return out;
  pending_.append(text);
  size_t first = std::string::npos;
  for (const auto& stop : stops_) first = std::min(first, pending_.find(stop));
  if (first != std::string::npos) {
    out.text = pending_.substr(0, first);
    out.stopped = stopped_ = true;
    pending_.clear();
    return out;
  }
  // Hold back the longest tail that is a proper prefix of some stop string.
  size_t hold = 0;
  for (const auto& stop : stops_) {
    for (size_t k = std::min(stop.size() - 1, pending_.size()); k > hold; --k) {
      if (std::string_view(pending_).substr(pending_.size() - k) ==
          std::string_view(stop).substr(0, k)) {
        hold = k;
        break;
      }
    }
  }
  out.text = pending_.substr(0, pending_.size() - hold);
  pending_.erase(0, pending_.size() - hold);
  return out;
}

std::string StopMatcher::Flush() {
  std::string out;
  out.swap(pending_);
  return out;
}

}  // namespace pocket::runtime
