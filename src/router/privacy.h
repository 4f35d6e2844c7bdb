// Privacy classification and redaction of request text. A classifier holds compiled
// PCRE2 patterns (the defaults: email, phone, api_key, card, us_ssn; plus the policy's
// own); Scan() reports which patterns match, Redact() replaces every match with
// "[REDACTED:<name>]". Card numbers must also pass the Luhn check, which keeps dates and
// order numbers from counting as cards. Matching has a PCRE2 match limit, so hostile
// input cannot make it backtrack for long.
// Byte-oriented (no UTF mode), so invalid UTF-8 cannot make a pattern fail open; a
// matcher error counts as a match.
// Called by the server for each request before routing. Thread safety: const methods are
// safe to call from many threads (each call makes its own match data).
#pragma once

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
  // `text` with every match replaced by "[REDACTED:<name>]"; `*count` gets the number of
  // replacements when non-null.
  std::string Redact(std::string_view text, int* count = nullptr) const;

  struct Compiled;  // one compiled pattern (defined in the .cc)

 private:
  PrivacyClassifier() = default;
  std::vector<std::unique_ptr<Compiled>> patterns_;
};

// The Luhn checksum over the digits of `s` (other characters skipped).
bool LuhnValid(std::string_view s);

}  // namespace pocket::router
