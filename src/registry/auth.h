// Registry authentication (OCI distribution / Docker token auth): the WWW-Authenticate
// challenge parser (RFC 9110 §11.6.1 auth-params: `Bearer realm="...",service="...",
// scope="..."` or `Basic realm="..."`), the Basic credentials header, and the token
// response reader. The challenge and the token response are untrusted bytes from the
// registry: bounded, every malformed input is InvalidArgument with one line naming the
// registry (fuzzed in auth_fuzz.cc). Called by registry::RegistryClient.
// Thread safety: pure functions.
#pragma once

#include <map>
#include <string>
#include <string_view>

#include "base/status.h"

namespace pocket::registry {

struct Challenge {
  std::string scheme;                         // lower-cased: "bearer", "basic", ...
  std::map<std::string, std::string> params;  // names lower-cased, values unquoted
};

// Parses the first challenge of a WWW-Authenticate value. `what` names the registry in
// errors. InvalidArgument for an empty or malformed value or one over 8 KiB.
Result<Challenge> ParseChallenge(std::string_view header, std::string_view what);

// "Basic " + base64("user:password").
std::string BasicAuthorization(std::string_view user, std::string_view password);

// The token of a token endpoint's JSON reply ({"token": ...} or {"access_token": ...}).
// InvalidArgument naming `what` when neither is a non-empty string.
Result<std::string> ParseTokenResponse(std::string_view body, std::string_view what);

}  // namespace pocket::registry
