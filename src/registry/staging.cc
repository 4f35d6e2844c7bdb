// Staging's pure parts (see staging.h): the TTL grammar, RFC 3339 times (civil-date arithmetic, not
// timegm, so no time zone or locale is consulted), staging names and the expiry annotation.
#include "registry/staging.h"

#include <cstdlib>
#include <ctime>
#include <utility>

#include "registry/oci.h"

namespace pocket::registry {
namespace {

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil).
int64_t DaysFromCivil(int64_t y, int64_t m, int64_t d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const int64_t yoe = y - era * 400;
  const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

int DaysInMonth(int64_t y, int64_t m) {
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  const bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  return m == 2 && leap ? 29 : kDays[m - 1];
}

}  // namespace

Result<int64_t> ParseTtl(std::string_view text) {
  auto bad = [&](const std::string& why) {
    return Status::InvalidArgument("--ttl '" + std::string(text.substr(0, 64)) + "' " + why +
                                   " (write e.g. 30m, 24h, 7d or 1h30m; units s, m, h, d)");
  };
  if (text.empty()) return bad("is empty");
  int64_t total = 0;
  size_t i = 0;
  while (i < text.size()) {
    if (!IsDigit(text[i])) {
      if (text[i] == '-' || text[i] == '+') return bad("has a sign");
      return bad("does not start with a number");
    }
    int64_t n = 0;
    size_t digits = 0;
    while (i < text.size() && IsDigit(text[i])) {
      if (++digits > 12) return bad("is too long");
      n = n * 10 + (text[i++] - '0');
    }
    if (i == text.size()) return bad("has no unit after " + std::to_string(n));
    int64_t unit = 0;
    switch (text[i]) {
      case 's':
        unit = 1;
        break;
      case 'm':
        unit = 60;
        break;
      case 'h':
        unit = 3600;
        break;
      case 'd':
        unit = 86400;
        break;
      case '.':
        return bad("has a fraction: use a smaller unit");
      default:
        break;
    }
    // "ms", "us", "ns" and anything else that is not one of the four.
    if (unit == 0 || (i + 1 < text.size() && !IsDigit(text[i + 1]))) {
      size_t end = i;
      while (end < text.size() && !IsDigit(text[end])) ++end;
      return bad("has an unknown unit '" + std::string(text.substr(i, end - i)) + "'");
    }
    ++i;
    total += n * unit;  // n < 10^12, unit <= 86400: no overflow; checked against the cap
    if (total > kMaxTtlSeconds) return bad("is longer than 3650d");
  }
  if (total == 0) return bad("is zero");
  return total;
}

std::string FormatTtl(int64_t seconds) {
  if (seconds <= 0) return "0s";
  std::string out;
  static constexpr std::pair<int64_t, char> kUnits[] = {
      {86400, 'd'}, {3600, 'h'}, {60, 'm'}, {1, 's'}};
  for (const auto& [unit, suffix] : kUnits) {
    if (seconds >= unit) {
      out += std::to_string(seconds / unit) + suffix;
      seconds %= unit;
    }
  }
  return out;
}

std::string FormatRfc3339(int64_t unix_seconds) {
  const std::time_t t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[40];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

Result<int64_t> ParseRfc3339(std::string_view text, std::string_view what) {
  auto bad = [&](const char* why) {
    return Status::InvalidArgument(std::string(what) + " '" + std::string(text.substr(0, 64)) +
                                   "' is not an RFC 3339 time (" + why +
                                   "; e.g. 2026-12-07T21:00:00Z)");
  };
  // Reads `n` digits at `pos`.
  auto num = [&](size_t pos, size_t n, int64_t* out) {
    if (pos + n > text.size()) return false;
    int64_t v = 0;
    for (size_t k = 0; k < n; ++k) {
      if (!IsDigit(text[pos + k])) return false;
      v = v * 10 + (text[pos + k] - '0');
    }
    *out = v;
    return true;
  };
  int64_t y, mo, d, h, mi, s;
  if (!num(0, 4, &y) || text.size() < 19 || text[4] != '-' || !num(5, 2, &mo) || text[7] != '-' ||
      !num(8, 2, &d) || (text[10] != 'T' && text[10] != 't') || !num(11, 2, &h) ||
      text[13] != ':' || !num(14, 2, &mi) || text[16] != ':' || !num(17, 2, &s)) {
    return bad("expected YYYY-MM-DDTHH:MM:SS");
  }
  if (mo < 1 || mo > 12 || d < 1 || d > DaysInMonth(y, mo) || h > 23 || mi > 59 || s > 60) {
    return bad("a field is out of range");
  }
  size_t i = 19;
  if (i < text.size() && text[i] == '.') {
    ++i;
    const size_t start = i;
    while (i < text.size() && IsDigit(text[i])) ++i;
    if (i == start) return bad("empty fraction");
  }
  int64_t offset = 0;
  if (i < text.size() && (text[i] == 'Z' || text[i] == 'z')) {
    ++i;
  } else if (i < text.size() && (text[i] == '+' || text[i] == '-')) {
    int64_t oh, om;
    if (!num(i + 1, 2, &oh) || i + 3 >= text.size() || text[i + 3] != ':' || !num(i + 4, 2, &om) ||
        oh > 23 || om > 59) {
      return bad("bad offset");
    }
    offset = (text[i] == '-' ? -1 : 1) * (oh * 3600 + om * 60);
    i += 6;
  } else {
    return bad("no time zone (Z or +HH:MM)");
  }
  if (i != text.size()) return bad("trailing characters");
  // A leap second (:60) counts as the next second, as POSIX time has none.
  return DaysFromCivil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s - offset;
}

Result<int64_t> CurrentUnixSeconds() {
  if (const char* now = std::getenv(kNowEnv); now && *now) return ParseRfc3339(now, kNowEnv);
  return static_cast<int64_t>(std::time(nullptr));
}

bool IsStagingName(std::string_view name) {
  size_t start = 0;
  while (true) {
    const size_t slash = name.find('/', start);
    if (slash == std::string_view::npos) return false;  // the last component never counts
    if (name.substr(start, slash - start) == kStagingComponent) return true;
    start = slash + 1;
  }
}

Result<ModelRef> StagingRef(const ModelRef& ref) {
  if (IsStagingName(ref.name)) return ref;
  ModelRef out{std::string(kStagingComponent) + "/" + ref.name, ref.tag};
  if (!IsValidName(out.name)) {
    return Status::InvalidArgument("'" + out.ToString() + "' is not a valid model name (at most " +
                                   std::to_string(kMaxNameBytes) + " bytes)");
  }
  return out;
}

std::map<std::string, std::string> StagingAnnotations(int64_t now_s, int64_t ttl_s) {
  return {{kStagingExpiresAnnotation, FormatRfc3339(now_s + ttl_s)},
          {kCreatedAnnotation, FormatRfc3339(now_s)}};
}

Result<std::optional<int64_t>> ExpiryOf(const std::map<std::string, std::string>& annotations) {
  auto it = annotations.find(kStagingExpiresAnnotation);
  if (it == annotations.end()) return std::optional<int64_t>();
  PK_ASSIGN_OR_RETURN(int64_t t, ParseRfc3339(it->second, kStagingExpiresAnnotation));
  return std::optional<int64_t>(t);
}

bool IsExpiredStaging(std::string_view name, const std::map<std::string, std::string>& annotations,
                      int64_t now_s) {
  if (!IsStagingName(name)) return false;
  auto expiry = ExpiryOf(annotations);
  return expiry.ok() && expiry->has_value() && **expiry <= now_s;
}

}  // namespace pocket::registry
