// A small blocking HTTP/1.1 client (Boost.Beast) for OpenAI-compatible remote backends
// and for `pocket top`. Plain http:// only: https:// URLs return NotSupported (TLS is
// left out for now; put a TLS-terminating proxy on loopback in front of a cloud API).
// One deadline covers connect, write and the whole response, so a slow or stalled peer
// costs at most timeout_ms. Errors are IOError whose message starts with one of
// "timeout", "unreachable", "reset", "bad_response" (the router uses it as the
// fallback reason). Thread safety: each call is independent (own io_context).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "base/status.h"

namespace pocket::router {

struct Url {
  std::string host;
  std::string port = "80";
  std::string path = "/";  // path prefix, never empty
};

// Parses "http://host[:port][/path]". NotSupported for https, InvalidArgument otherwise.
Result<Url> ParseUrl(const std::string& url);

struct HttpResponse {
  int status = 0;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string Header(const std::string& name) const;  // "" when absent (case-insensitive)
};

struct HttpRequest {
  std::string method = "GET";
  std::string url;  // full URL
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  int64_t timeout_ms = 30000;
  uint64_t max_response_bytes = 64ull << 20;
};

Result<HttpResponse> HttpFetch(const HttpRequest& request);

}  // namespace pocket::router
