// ParseUntrustedJson: nlohmann's DOM builder driven through its SAX interface, with the
// checks in the SAX events: a container past the depth limit or (by default) a key seen
// twice in one object stops the parse at once. Not parser_callback_t: nlohmann's callback
// parser scans the parent container's elements at every closing object (to drop discarded
// ones), so an array of 200,000 small objects took 34 s; the SAX path is linear (0.1 s).
// The parser itself is iterative (its state stack is a std::vector), so the only
// recursion a deep input could cause is in what is done with the value afterwards; a value
// is never built past the limit.
#include "base/json_limits.h"

#include <algorithm>
#include <optional>
#include <string>
#include <unordered_set>
#include <vector>

namespace pocket {

namespace {

// `key` JSON-quoted, cut to at most 64 bytes of the key without splitting a character (the
// parser has checked it is valid UTF-8), so an error message stays short and valid UTF-8.
std::string QuotedKeyPrefix(const std::string& key) {
  constexpr size_t kMaxKeyBytes = 64;
  size_t n = std::min(key.size(), kMaxKeyBytes);
  if (n < key.size())
    while (n > 0 && (static_cast<unsigned char>(key[n]) & 0xC0) == 0x80) --n;
  std::string out = nlohmann::json(key.substr(0, n))
                        .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  if (n < key.size()) out += "...";
  return out;
}

// The DOM builder with the limits. sax_parse is a template over the handler type, so
// these members hide the base's (which are not virtual) and call them once checked.
class LimitedDomBuilder : public nlohmann::detail::json_sax_dom_parser<nlohmann::json> {
  using Base = nlohmann::detail::json_sax_dom_parser<nlohmann::json>;

 public:
  LimitedDomBuilder(nlohmann::json& out, int max_depth, bool refuse_duplicates)
      : Base(out, /*allow_exceptions_=*/false),
        max_depth_(max_depth),
        refuse_duplicates_(refuse_duplicates) {}

  bool start_object(std::size_t n) {
    if (!Enter(true)) return false;
    return Base::start_object(n);
  }
  bool end_object() {
    Leave();
    return Base::end_object();
  }
  bool start_array(std::size_t n) {
    if (!Enter(false)) return false;
    return Base::start_array(n);
  }
  bool end_array() {
    Leave();
    return Base::end_array();
  }
  bool key(std::string& k) {
    if (refuse_duplicates_ && !open_keys_.empty() && !open_keys_.back().insert(k).second) {
      duplicate_ = QuotedKeyPrefix(k);
      return false;
    }
    return Base::key(k);
  }
  template <class Exception>
  bool parse_error(std::size_t byte, const std::string&, const Exception&) {
    syntax_error_at_ = byte;
    return false;
  }

  bool too_deep() const { return too_deep_; }
  const std::string& duplicate() const { return duplicate_; }
  std::optional<std::size_t> syntax_error_at() const { return syntax_error_at_; }

 private:
  bool Enter(bool object) {
    if (++depth_ > max_depth_) {
      too_deep_ = true;
      return false;
    }
    if (refuse_duplicates_) {
      open_is_object_.push_back(object);
      if (object) {
        // Sets are recycled so that a long run of small objects does not allocate a table
        // each.
        if (spare_.empty()) {
          open_keys_.emplace_back();
        } else {
          open_keys_.push_back(std::move(spare_.back()));
          spare_.pop_back();
        }
      }
    }
    return true;
  }
  void Leave() {
    --depth_;
    if (!refuse_duplicates_ || open_is_object_.empty()) return;
    if (open_is_object_.back()) {
      open_keys_.back().clear();
      spare_.push_back(std::move(open_keys_.back()));
      open_keys_.pop_back();
    }
    open_is_object_.pop_back();
  }

  const int max_depth_;
  const bool refuse_duplicates_;
  int depth_ = 0;  // containers open
  bool too_deep_ = false;
  std::string duplicate_;  // the quoted key found twice, once one is
  std::optional<std::size_t> syntax_error_at_;
  // One entry per open container (is it an object?), and the keys seen so far of each
  // open object.
  std::vector<bool> open_is_object_;
  std::vector<std::unordered_set<std::string>> open_keys_;
  std::vector<std::unordered_set<std::string>> spare_;
};

}  // namespace

Result<nlohmann::json> ParseUntrustedJson(std::string_view text, std::string_view what,
                                          int max_depth, DuplicateKeys duplicates) {
  using nlohmann::json;
  json value;
  LimitedDomBuilder builder(value, max_depth, duplicates == DuplicateKeys::kRefuse);
  bool ok = false;
  std::string reason;
  try {
    ok = json::sax_parse(text.begin(), text.end(), &builder, json::input_format_t::json,
                         /*strict=*/true, /*ignore_comments=*/false);
  } catch (const std::exception& e) {
    reason = e.what();
  }
  if (builder.too_deep())
    return Status::InvalidArgument(std::string(what) + " nests deeper than " +
                                   std::to_string(max_depth) + " levels of arrays and objects");
  if (!builder.duplicate().empty())
    return Status::InvalidArgument(std::string(what) + " has the key " + builder.duplicate() +
                                   " twice in one object");
  // The parser's own message quotes the last token read, which may be most of the input:
  // keep the position only.
  if (builder.syntax_error_at())
    reason = "syntax error at byte " + std::to_string(*builder.syntax_error_at());
  if (reason.empty() && (!ok || value.is_discarded())) reason = "parse failed";
  if (!reason.empty())
    return Status::InvalidArgument(std::string(what) + " is not valid JSON (" + reason + ")");
  return value;
}

}  // namespace pocket
