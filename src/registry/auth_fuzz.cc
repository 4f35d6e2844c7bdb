// libFuzzer target over what a registry's authentication replies feed us: the
// WWW-Authenticate challenge parser and the token reply reader. Neither may abort; a parsed
// challenge has a non-empty lower-case scheme and lower-case parameter names.
#include <cctype>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "registry/auth.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  if (auto c = pocket::registry::ParseChallenge(bytes, "fuzz"); c.ok()) {
    if (c->scheme.empty()) std::abort();
    for (const auto& [name, value] : c->params) {
      for (char ch : name) {
        if (std::isupper(static_cast<unsigned char>(ch))) std::abort();
      }
    }
  }
  (void)pocket::registry::ParseTokenResponse(bytes, "fuzz");
  return 0;
}
