// libFuzzer: arbitrary bytes as request text and as a JSON request body for the privacy
// classifier. Scan/Redact/ScanJson/RedactJson must never crash or hang, Redact's output is
// always valid UTF-8, and a body after RedactJson (or SanitizeUtf8) always serialises with
// the strict serialiser (nlohmann's dump throws on invalid UTF-8).
#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "router/privacy.h"

namespace {

const pocket::router::PrivacyClassifier& Classifier() {
  static const auto* c = [] {
    pocket::router::PrivacyRules rules;
    rules.patterns.push_back({"codename", "Codename: .{2}"});
    rules.patterns.push_back({"lookbehind", "(?<=ID:)[^ ]{1,3}"});
    auto made = pocket::router::PrivacyClassifier::Create(rules);
    if (!made.ok()) std::abort();
    return new pocket::router::PrivacyClassifier(std::move(made).value());
  }();
  return *c;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using nlohmann::json;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const auto& c = Classifier();
  (void)c.Scan(text);
  const std::string red = c.Redact(text);
  if (pocket::router::ValidUtf8(red) != red) std::abort();
  json body = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (body.is_discarded()) body = json{{"messages", {{{"role", "user"}, {"content", text}}}}};
  (void)c.ScanJson(body);
  json copy = body;
  pocket::router::SanitizeUtf8(&copy);
  try {
    (void)copy.dump();
    (void)c.RedactJson(&body);
    (void)body.dump();
  } catch (const json::exception&) {
    std::abort();
  }
  return 0;
}
