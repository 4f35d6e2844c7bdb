// Privacy classification and redaction of request text. A classifier holds compiled
// PCRE2 patterns (the defaults: email, phone, api_key, card, us_ssn; plus the policy's
// own); Scan() reports which patterns match, Redact() replaces every match with
// "[REDACTED:<name>]". Card numbers must also pass the Luhn check, which keeps dates and
// order numbers from counting as cards. Matching has a PCRE2 match limit, so hostile
// input cannot make it backtrack for long; a matcher error counts as a match.
// Text is UTF-8 and patterns match on characters (PCRE2_UTF; `\C` is refused): a match
// never begins or ends inside a character, so redaction cannot cut one in half. Invalid
// UTF-8 in the input is first replaced by U+FFFD, exactly as it would be when the text
// is serialised to go out, so the matcher sees what the remote would see and never fails
// on it. `\d`, `\w` and `\b` stay ASCII (no PCRE2_UCP).
// ScanJson()/RedactJson() apply the patterns to a whole JSON request body: every key,
// every string and number on its own, and the string values concatenated in document
// order, so text split across content parts, messages or fields is still found.
// Called by the server for each request before routing and by the Router on every body
// it sends. Thread safety: const methods are safe to call from many threads (each call
// makes its own match data).
#pragma once

#include <nlohmann/json.hpp>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "router/policy.h"

namespace pocket::router {

// The shipped default patterns (see docs/router.md for what each catches).
std::vector<PrivacyPattern> DefaultPrivacyPatterns();

class PrivacyClassifier {
 public:
  // InvalidArgument naming the pattern when a regex does not compile.
  static Result<PrivacyClassifier> Create(const PrivacyRules& rules);
  PrivacyClassifier(PrivacyClassifier&&) noexcept;
  PrivacyClassifier& operator=(PrivacyClassifier&&) noexcept;
  ~PrivacyClassifier();

  // Names of the patterns that match somewhere in `text` (each once, in pattern order).
  std::vector<std::string> Scan(std::string_view text) const;
  // `text` (invalid UTF-8 replaced by U+FFFD) with every match replaced by
  // "[REDACTED:<name>]"; `*count` gets the number of replacements when non-null. The
  // result is always valid UTF-8.
  std::string Redact(std::string_view text, int* count = nullptr) const;

  // Names of the patterns that match anywhere in `body` (each once, in pattern order):
  // in any object key, string value or number (as written) on its own, or in the
  // concatenation of the string values in document order (text split across strings).
  // Also each pair of consecutive string values on its own, up to 1 KiB either side of
  // their boundary (so the text around a pair cannot hide a value split in two). Values of the keys
  // "role", "type", "model" and "name" are scanned on their own but do not join the concatenation,
  // so consecutive messages and content parts are adjacent there. Strings are scanned as
  // SanitizeUtf8() would leave them. Never recurses (any depth).
  std::vector<std::string> ScanJson(const nlohmann::json& body) const;
  // Redacts `*body` in place: every match inside a string value is replaced as Redact()
  // does, and a match that spans consecutive strings has each of its pieces replaced by
  // "[REDACTED:<name>]". Also applies SanitizeUtf8(). Returns false when something still
  // matches afterwards that cannot be replaced safely (a key, a number, a matcher error):
  // the body must then not leave the machine. `*count` gets the number of replacements.
  bool RedactJson(nlohmann::json* body, int* count = nullptr) const;

  struct Compiled;  // one compiled pattern (defined in the .cc)

 private:
  PrivacyClassifier() = default;
  std::vector<std::unique_ptr<Compiled>> patterns_;
};

// The Luhn checksum over the digits of `s` (other characters skipped).
bool LuhnValid(std::string_view s);

// `text` with each ill-formed UTF-8 sequence (overlong forms, surrogates, code points past
// U+10FFFF, a cut-off character) replaced by one U+FFFD per maximal subpart, as TextDecoder
// and the rest of Pocket do (base/utf8.h).
std::string ValidUtf8(std::string_view text);
// Applies ValidUtf8() to every string value and object key of `*body`, so serialising it
// can never throw. Never recurses.
void SanitizeUtf8(nlohmann::json* body);

// The privacy classes a request may ask for, least restrictive first. kPublic: the
// policy's rules apply (patterns decide); kPrivate: the request never leaves the machine.
// When a request states its class more than once (header and body, a repeated header, a
// comma list) the most restrictive one wins.
enum class RequestPrivacy { kPublic = 0, kPrivate = 1 };
// "public" or "private" (any case, surrounding blanks ignored). InvalidArgument naming
// the value and listing the valid ones otherwise.
Result<RequestPrivacy> ParseRequestPrivacy(std::string_view value);
inline RequestPrivacy MostRestrictive(RequestPrivacy a, RequestPrivacy b) {
  return static_cast<int>(a) >= static_cast<int>(b) ? a : b;
}

}  // namespace pocket::router
