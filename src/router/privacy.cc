#include "router/privacy.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <utility>

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

// Finds the matches of `c` in `text`, calling on_match(begin, end) for each accepted one.
// A matcher error (such as the match limit) calls on_match(npos, npos): the caller must
// treat the text as sensitive, since it could not prove otherwise.
template <typename F>
void ForEachMatch(const PrivacyClassifier::Compiled& c, std::string_view text, F on_match);

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
void ForEachMatch(const PrivacyClassifier::Compiled& c, std::string_view text, F on_match) {
  pcre2_match_data* md = pcre2_match_data_create_from_pattern(c.code, nullptr);
  if (!md) return;
  size_t offset = 0;
  while (offset <= text.size()) {
    const int rc = pcre2_match(c.code, reinterpret_cast<PCRE2_SPTR>(text.data()), text.size(),
                               offset, 0, md, c.mctx);
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0) {
      on_match(std::string_view::npos, std::string_view::npos);
      break;
    }
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
    const size_t b = ov[0], e = ov[1];
    if (c.name != "card" || LuhnValid(text.substr(b, e - b))) on_match(b, e);
    offset = e > b ? e : b + 1;
  }
  pcre2_match_data_free(md);
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
    c->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(p.regex.data()), p.regex.size(),
                            0, &err, &err_offset, nullptr);
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
  std::vector<std::string> hits;
  for (const auto& c : patterns_) {
    bool hit = false;
    ForEachMatch(*c, text, [&](size_t, size_t) { hit = true; });
    if (hit) hits.push_back(c->name);
  }
  return hits;
}

std::string PrivacyClassifier::Redact(std::string_view text, int* count) const {
  std::string cur(text);
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

}  // namespace pocket::router
