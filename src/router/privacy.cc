// The privacy classifier: PCRE2 in UTF mode over text made valid UTF-8 first, the Luhn
// filter for cards, and the JSON walk that scans and redacts a whole request body (each
// string and the strings joined in order). What counts as private per request (headers,
// body) is the server's; what to do with a hit is decision.cc's.
#include "router/privacy.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <algorithm>
#include <utility>

#include "base/utf8.h"

namespace pocket::router {

struct PrivacyClassifier::Compiled {
  std::string name;
  pcre2_code* code = nullptr;
  pcre2_match_context* mctx = nullptr;
  ~Compiled() {
    if (mctx) pcre2_match_context_free(mctx);
    if (code) pcre2_code_free(code);
  }
};

namespace {

// Enough for every default pattern on megabyte prompts; a pathological custom pattern
// stops matching instead of spinning (the match is then treated as "no match").
constexpr uint32_t kMatchLimit = 1000000;

// Finds the matches of `c` in `text` (valid UTF-8), calling on_match(begin, end) for each
// accepted one; begin and end are character boundaries. A matcher error (such as the
// match limit) calls on_match(npos, npos): the caller must treat the text as sensitive,
// since it could not prove otherwise.
// `md`, when given, is match data for `c` to reuse (a body of many small strings made a
// fresh allocation per call the largest cost).
template <typename F>
void ForEachMatch(const PrivacyClassifier::Compiled& c, std::string_view text, F on_match,
                  pcre2_match_data* md = nullptr);

// Match data for one pattern, freed on scope exit.
struct MatchData {
  explicit MatchData(const pcre2_code* code)
      : md(pcre2_match_data_create_from_pattern(code, nullptr)) {}
  ~MatchData() {
    if (md) pcre2_match_data_free(md);
  }
  MatchData(const MatchData&) = delete;
  MatchData& operator=(const MatchData&) = delete;
  pcre2_match_data* md;
};

bool IsValidUtf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    const Utf8Step step = DecodeUtf8Step(s, i);
    if (step.kind != Utf8Kind::kValid) return false;
    i += step.length;
  }
  return true;
}

// `text` itself when it is valid UTF-8, else ValidUtf8(text) kept in `*storage`.
std::string_view AsValidUtf8(std::string_view text, std::string* storage) {
  if (IsValidUtf8(text)) return text;
  *storage = ValidUtf8(text);
  return *storage;
}

}  // namespace

std::vector<PrivacyPattern> DefaultPrivacyPatterns() {
  return {
      {"email", R"([A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,})"},
      // International or national numbers with separators: +1 415 555 0100, (030) 1234-5678,
      // 415-555-0100. At least 9 digits, so years and small counts do not match.
      {"phone",
       R"((?<![\w+])(?:\+\d{1,3}[ .-]?)?(?:\(\d{2,4}\)[ .-]?|\d{2,4}[ .-])\d{3,4}[ .-]?\d{3,4}(?![\w]))"},
      {"api_key",
       R"((?:\bsk-[A-Za-z0-9_-]{16,}|\bAKIA[0-9A-Z]{16}\b|\bgh[pousr]_[A-Za-z0-9]{30,}|\bxox[abprs]-[A-Za-z0-9-]{10,}|\bAIza[0-9A-Za-z_-]{35}|-----BEGIN [A-Z ]*PRIVATE KEY-----))"},
      {"card", R"((?<![\d-])(?:\d[ -]?){12,18}\d(?![\d-]))"},
      {"us_ssn", R"(\b\d{3}-\d{2}-\d{4}\b)"},
  };
}

bool LuhnValid(std::string_view s) {
  int sum = 0, n = 0;
  for (size_t i = s.size(); i-- > 0;) {
    const char ch = s[i];
    if (ch < '0' || ch > '9') continue;
    int d = ch - '0';
    if (n % 2 == 1) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    ++n;
  }
  return n >= 13 && sum % 10 == 0;
}

namespace {

template <typename F>
void ForEachMatch(const PrivacyClassifier::Compiled& c, std::string_view text, F on_match,
                  pcre2_match_data* shared_md) {
  // Checked once here, so each pcre2_match can skip its own check (PCRE2_NO_UTF_CHECK),
  // which would otherwise rescan the whole subject for every match. Every caller passes
  // valid text; should one ever not, fail closed.
  if (!IsValidUtf8(text)) {
    on_match(std::string_view::npos, std::string_view::npos);
    return;
  }
  pcre2_match_data* md =
      shared_md ? shared_md : pcre2_match_data_create_from_pattern(c.code, nullptr);
  if (!md) {
    on_match(std::string_view::npos, std::string_view::npos);
    return;
  }
  size_t offset = 0;
  while (offset <= text.size()) {
    const int rc = pcre2_match(c.code, reinterpret_cast<PCRE2_SPTR>(text.data()), text.size(),
                               offset, PCRE2_NO_UTF_CHECK, md, c.mctx);
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0) {
      on_match(std::string_view::npos, std::string_view::npos);
      break;
    }
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
    const size_t b = ov[0], e = ov[1];
    // A \K or lookbehind trick can report end < begin; treat the pair as its hull.
    const size_t lo = std::min(b, e), hi = std::max(b, e);
    if (c.name != "card" || LuhnValid(text.substr(lo, hi - lo))) on_match(lo, hi);
    if (hi > lo && hi > offset) {
      offset = hi;
    } else {
      // An empty match: step over one whole character, so the next start offset is a
      // character boundary (UTF mode requires it).
      offset = std::max(offset, lo) + 1;
      while (offset < text.size() && (static_cast<unsigned char>(text[offset]) & 0xC0) == 0x80)
        ++offset;
    }
  }
  if (!shared_md) pcre2_match_data_free(md);
}

}  // namespace

PrivacyClassifier::PrivacyClassifier(PrivacyClassifier&&) noexcept = default;
PrivacyClassifier& PrivacyClassifier::operator=(PrivacyClassifier&&) noexcept = default;
PrivacyClassifier::~PrivacyClassifier() = default;

Result<PrivacyClassifier> PrivacyClassifier::Create(const PrivacyRules& rules) {
  std::vector<PrivacyPattern> all;
  if (rules.default_patterns) all = DefaultPrivacyPatterns();
  all.insert(all.end(), rules.patterns.begin(), rules.patterns.end());
  PrivacyClassifier pc;
  for (const auto& p : all) {
    auto c = std::make_unique<Compiled>();
    c->name = p.name;
    int err = 0;
    PCRE2_SIZE err_offset = 0;
    // UTF: `.` and classes take whole characters, so a match never ends inside one (a
    // redaction that cut "ü" in half left invalid UTF-8 that the serialiser rejected).
    // NEVER_BACKSLASH_C: \C matches one byte even in UTF mode, which would bring the
    // half-character cut back. Not MATCH_INVALID_UTF: subjects are made valid first (as
    // they are sent), and that mode, like the per-call UTF check, costs a pass over the
    // whole subject on every pcre2_match call: quadratic in the number of matches
    // (measured: 16,000 "1234 " took 3.8 s instead of 18 ms).
    c->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(p.regex.data()), p.regex.size(),
                            PCRE2_UTF | PCRE2_NEVER_BACKSLASH_C, &err, &err_offset, nullptr);
    if (!c->code) {
      PCRE2_UCHAR buf[256];
      pcre2_get_error_message(err, buf, sizeof(buf));
      return Status::InvalidArgument("privacy pattern '" + p.name + "' at offset " +
                                     std::to_string(err_offset) + ": " +
                                     reinterpret_cast<const char*>(buf));
    }
    c->mctx = pcre2_match_context_create(nullptr);
    pcre2_set_match_limit(c->mctx, kMatchLimit);
    pcre2_set_depth_limit(c->mctx, 10000);
    pc.patterns_.push_back(std::move(c));
  }
  return pc;
}

std::vector<std::string> PrivacyClassifier::Scan(std::string_view text) const {
  std::string storage;
  const std::string_view valid = AsValidUtf8(text, &storage);
  std::vector<std::string> hits;
  for (const auto& c : patterns_) {
    bool hit = false;
    ForEachMatch(*c, valid, [&](size_t, size_t) { hit = true; });
    if (hit) hits.push_back(c->name);
  }
  return hits;
}

std::string PrivacyClassifier::Redact(std::string_view text, int* count) const {
  std::string cur = ValidUtf8(text);
  int total = 0;
  for (const auto& c : patterns_) {
    std::string next;
    size_t last = 0;
    ForEachMatch(*c, cur, [&](size_t b, size_t e) {
      if (b == std::string_view::npos) return;  // unredactable; a re-Scan still flags it
      next.append(cur, last, b - last);
      next += "[REDACTED:" + c->name + "]";
      last = e;
      ++total;
    });
    next.append(cur, last, std::string::npos);
    cur = std::move(next);
  }
  if (count) *count = total;
  return cur;
}

std::string ValidUtf8(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    const Utf8Step step = DecodeUtf8Step(text, i);
    if (step.kind == Utf8Kind::kValid) {
      out.append(text, i, step.length);
    } else {
      out += "\xEF\xBF\xBD";  // U+FFFD, one per maximal subpart (as TextDecoder)
    }
    i += step.length;
  }
  return out;
}

namespace {

using nlohmann::json;

// Visits every value of `root` in document (serialisation) order without recursion, so a
// body of any depth is safe: visit(key, value) where key is the object key the value sits
// under (nullptr in arrays and for the root). Values are visited before their children;
// a visitor may replace a value's children (SanitizeUtf8 rebuilds objects) but not the
// value itself.
template <typename J, typename F>
void Walk(J& root, F visit) {
  struct Item {
    const std::string* key;
    J* value;
  };
  std::vector<Item> stack{{nullptr, &root}};
  std::vector<Item> children;
  while (!stack.empty()) {
    const Item item = stack.back();
    stack.pop_back();
    visit(item.key, *item.value);
    J& v = *item.value;
    if (!v.is_structured()) continue;
    children.clear();
    for (auto it = v.begin(); it != v.end(); ++it)
      children.push_back({v.is_object() ? &it.key() : nullptr, &it.value()});
    for (size_t i = children.size(); i-- > 0;) stack.push_back(children[i]);
  }
}

// Values under these keys are protocol words ("user", "text", the model id) or a label
// beside the text (a message's or a function's name), not text a model reads as one run:
// they are scanned on their own but left out of the joined text, so the content of
// consecutive messages and parts is adjacent there (a message's keys serialise as
// content, name, role, ...).
bool StructuralKey(const std::string* key) {
  return key && (*key == "role" || *key == "type" || *key == "model" || *key == "name");
}

// Matches of `c` that text split across strings makes: in `joined` (the strings one
// after another, slot i starting at starts[i]) and in each window of two consecutive
// strings on its own. The whole join finds a value cut into any number of pieces; the
// windows find one cut in two whose neighbours would otherwise hide it (a phone number's
// lookbehind or a \b sees the end of the previous string: "notes" + "(030) 12" + "34-5678"),
// since a window starts and ends as a text does. on_match(begin, end) gets offsets into
// `joined`, or (npos, npos) for a matcher error. A match may lie inside one string.
template <typename F>
void ForEachJoinedMatch(const PrivacyClassifier::Compiled& c, const std::string& joined,
                        const std::vector<size_t>& starts, F on_match) {
  MatchData data(c.code);
  ForEachMatch(c, joined, on_match, data.md);
  // A window reaches at most kWindowBytes into each string from their boundary: a split
  // value longer than that on both sides is left to the whole join, and a hostile body of
  // few huge strings costs one more pass over the boundaries only, not over every byte.
  // Window edges move to character boundaries (the text is valid UTF-8).
  constexpr size_t kWindowBytes = 1024;
  auto is_continuation = [&](size_t at) {
    return at < joined.size() && (static_cast<unsigned char>(joined[at]) & 0xC0) == 0x80;
  };
  for (size_t i = 0; i + 1 < starts.size(); ++i) {
    const size_t boundary = starts[i + 1];
    const size_t end_of_next = i + 2 < starts.size() ? starts[i + 2] : joined.size();
    size_t begin = std::max(starts[i], boundary >= kWindowBytes ? boundary - kWindowBytes : 0);
    while (begin < boundary && is_continuation(begin)) ++begin;
    size_t end = std::min(end_of_next, boundary + kWindowBytes);
    while (end > boundary && is_continuation(end)) --end;
    const std::string_view window = std::string_view(joined).substr(begin, end - begin);
    ForEachMatch(
        c, window,
        [&](size_t b, size_t e) {
          if (b == std::string_view::npos)
            on_match(b, e);
          else
            on_match(begin + b, begin + e);
        },
        data.md);
  }
}

}  // namespace

void SanitizeUtf8(nlohmann::json* body) {
  Walk(*body, [](const std::string*, json& v) {
    if (v.is_string()) {
      auto* s = v.get_ptr<std::string*>();
      if (!IsValidUtf8(*s)) *s = ValidUtf8(*s);
    } else if (v.is_object()) {
      bool bad = false;
      for (auto it = v.begin(); it != v.end() && !bad; ++it) bad = !IsValidUtf8(it.key());
      if (!bad) return;
      json fixed = json::object();
      for (auto it = v.begin(); it != v.end(); ++it)
        fixed[ValidUtf8(it.key())] = std::move(it.value());
      v = std::move(fixed);
    }
  });
}

std::vector<std::string> PrivacyClassifier::ScanJson(const nlohmann::json& body) const {
  // Collect first, then run each pattern over everything (stopping at its first hit).
  std::vector<std::string> singles;                 // keys and numbers as written
  std::vector<std::string_view> values;             // string values, into `body` or `owned`
  std::vector<std::unique_ptr<std::string>> owned;  // sanitised copies of invalid UTF-8
  std::string joined;
  std::vector<size_t> starts;
  Walk(body, [&](const std::string* key, const json& v) {
    if (key) singles.push_back(IsValidUtf8(*key) ? *key : ValidUtf8(*key));
    if (v.is_string()) {
      const std::string& s = *v.get_ptr<const std::string*>();
      std::string_view view = s;
      if (!IsValidUtf8(s)) {
        owned.push_back(std::make_unique<std::string>(ValidUtf8(s)));
        view = *owned.back();
      }
      values.push_back(view);
      if (!StructuralKey(key)) {
        starts.push_back(joined.size());
        joined += view;
      }
    } else if (v.is_number()) {
      singles.push_back(v.dump());
    }
  });
  std::vector<std::string> hits;
  for (const auto& c : patterns_) {
    bool hit = false;
    auto mark = [&](size_t, size_t) { hit = true; };
    MatchData data(c->code);
    for (size_t i = 0; i < singles.size() && !hit; ++i) ForEachMatch(*c, singles[i], mark, data.md);
    for (size_t i = 0; i < values.size() && !hit; ++i) ForEachMatch(*c, values[i], mark, data.md);
    if (!hit) ForEachJoinedMatch(*c, joined, starts, mark);
    if (hit) hits.push_back(c->name);
  }
  return hits;
}

bool PrivacyClassifier::RedactJson(nlohmann::json* body, int* count) const {
  SanitizeUtf8(body);
  int total = 0;
  // Each string on its own (Redact only where some pattern matches: most strings are clean,
  // and Redact copies).
  std::vector<std::unique_ptr<MatchData>> data;
  for (const auto& c : patterns_) data.push_back(std::make_unique<MatchData>(c->code));
  Walk(*body, [&](const std::string*, json& v) {
    if (!v.is_string()) return;
    auto* s = v.get_ptr<std::string*>();
    bool any = false;
    for (size_t p = 0; p < patterns_.size() && !any; ++p)
      ForEachMatch(
          *patterns_[p], *s, [&](size_t, size_t) { any = true; }, data[p]->md);
    if (!any) return;
    int n = 0;
    std::string redacted = Redact(*s, &n);
    if (n > 0) *s = std::move(redacted);
    total += n;
  });
  // Then matches in the joined text, which span strings: each piece of such a match, in
  // each string it touches, becomes a placeholder. A replacement could in principle make
  // a new match with its neighbours, so repeat a few times; whatever is left after that
  // is caught by the final scan.
  bool matcher_failed = false;
  for (int round = 0; round < 4 && !matcher_failed; ++round) {
    std::vector<std::string*> slots;
    std::vector<size_t> starts;
    std::string joined;
    Walk(*body, [&](const std::string* key, json& v) {
      if (!v.is_string() || StructuralKey(key)) return;
      slots.push_back(v.get_ptr<std::string*>());
      starts.push_back(joined.size());
      joined += *slots.back();
    });
    struct Span {
      size_t begin, end, pattern;
    };
    std::vector<Span> spans;
    for (size_t p = 0; p < patterns_.size(); ++p) {
      ForEachJoinedMatch(*patterns_[p], joined, starts, [&](size_t b, size_t e) {
        if (b == std::string_view::npos)
          matcher_failed = true;
        else if (e > b)
          spans.push_back({b, e, p});
      });
    }
    if (spans.empty() || matcher_failed) break;
    std::sort(spans.begin(), spans.end(),
              [](const Span& a, const Span& b) { return a.begin < b.begin; });
    std::vector<Span> merged;
    for (const Span& s : spans) {
      if (!merged.empty() && s.begin < merged.back().end)
        merged.back().end = std::max(merged.back().end, s.end);
      else
        merged.push_back(s);
    }
    size_t m = 0;
    for (size_t i = 0; i < slots.size(); ++i) {
      const size_t s0 = starts[i], s1 = s0 + slots[i]->size();
      while (m < merged.size() && merged[m].end <= s0) ++m;
      std::string next;
      size_t last = s0;  // joined offset copied up to
      bool changed = false;
      for (size_t k = m; k < merged.size() && merged[k].begin < s1; ++k) {
        const size_t b = std::max(merged[k].begin, s0), e = std::min(merged[k].end, s1);
        if (e <= b) continue;
        next.append(joined, last, b - last);
        next += "[REDACTED:" + patterns_[merged[k].pattern]->name + "]";
        last = e;
        changed = true;
      }
      if (!changed) continue;
      next.append(joined, last, s1 - last);
      *slots[i] = std::move(next);
    }
    total += static_cast<int>(merged.size());
  }
  if (count) *count = total;
  return !matcher_failed && ScanJson(*body).empty();
}

Result<RequestPrivacy> ParseRequestPrivacy(std::string_view value) {
  size_t b = 0, e = value.size();
  while (b < e && (value[b] == ' ' || value[b] == '\t')) ++b;
  while (e > b && (value[e - 1] == ' ' || value[e - 1] == '\t')) --e;
  std::string v(value.substr(b, e - b));
  std::transform(v.begin(), v.end(), v.begin(), [](unsigned char ch) { return std::tolower(ch); });
  if (v == "private") return RequestPrivacy::kPrivate;
  if (v == "public") return RequestPrivacy::kPublic;
  std::string shown = ValidUtf8(value.substr(0, 64));
  return Status::InvalidArgument("privacy '" + shown + "' is not one of public, private");
}

}  // namespace pocket::router
