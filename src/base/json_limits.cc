// ParseUntrustedJson: nlohmann's parser with a callback that refuses containers past the
// depth limit. The parser itself is iterative (its state stack is a std::vector), so the
// only recursion a deep input could cause is in what is done with the value afterwards;
// a value is never built past the limit.
#include "base/json_limits.h"

#include <string>

namespace pocket {
Result<nlohmann::json> ParseUntrustedJson(std::string_view text, std::string_view what,
                                          int max_depth) {
  using nlohmann::json;
  bool too_deep = false;
  // `depth` is the number of containers enclosing the one that starts; once the limit is
  // passed everything else is discarded too, so the rest of the input only gets scanned.
  json::parser_callback_t keep = [&](int depth, json::parse_event_t event, json&) {
    if (too_deep) return false;
    if ((event == json::parse_event_t::object_start || event == json::parse_event_t::array_start) &&
        depth >= max_depth) {
      too_deep = true;
      return false;
    }
    return true;
  };
  json value;
  std::string reason;
  try {
    value = json::parse(text.begin(), text.end(), keep, /*allow_exceptions=*/true,
                        /*ignore_comments=*/false);
  } catch (const json::parse_error& e) {
    // e.what() quotes the last token read, which may be most of the input: keep the
    // position only.
    reason = "syntax error at byte " + std::to_string(e.byte);
  } catch (const std::exception& e) {
    reason = e.what();
  }
  if (too_deep)
    return Status::InvalidArgument(std::string(what) + " nests deeper than " +
                                   std::to_string(max_depth) + " levels of arrays and objects");
  if (!reason.empty())
    return Status::InvalidArgument(std::string(what) + " is not valid JSON (" + reason + ")");
  return value;
}

}  // namespace pocket
