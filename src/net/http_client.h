// A small blocking HTTP/1.1 client (Boost.Beast): the one every layer uses to call out
// (the router's OpenAI-compatible remote backends, `pocket top`, the registry's pulls).
// http:// over plain TCP, https:// over TLS (Boost.Asio SSL on OpenSSL): TLS 1.2 or newer,
// the peer's certificate chain verified against the system's trust store (or `ca_file`),
// the certificate checked against the URL's host name or IP address, SNI sent for host
// names. Both schemes share one request/response path.
// One deadline covers connect, TLS handshake, write and the whole response, so a slow or
// stalled peer costs at most timeout_ms; an optional idle limit also bounds each step and
// each wait for more of the body (a stream that stalls). HttpFetchStream hands a 2xx
// body on piece by piece as it arrives (Server-Sent Events, chunked or not, or a file).
// Errors are IOError whose message starts with one of "timeout", "unreachable", "reset",
// "bad_response", "tls" (handshake failed: protocol, version, a CA file that does not
// load) or "tls_verify" (the certificate was refused: untrusted chain, wrong host,
// expired); the router uses that word as the fallback reason.
// A stream stopped by its head or body handler, or a call whose `cancelled` predicate
// turned true, is Cancelled.
//
// A download (what the registry does), for example the rest of a partly fetched blob:
//   FetchRequest req;
//   req.url = "https://host/blobs/sha256-...";
//   req.headers = {{"Range", "bytes=" + std::to_string(have) + "-"}};
//   req.timeout_ms = 3600000;       // the whole transfer
//   req.idle_timeout_ms = 30000;    // but no step may stall this long
//   req.max_response_bytes = size;  // the body limit also applies to a streamed body
//   req.cancelled = [&] { return stop.load(); };
//   auto res = HttpFetchStream(req, [&](std::string_view piece) { return Append(piece); },
//                              [&](int status, const auto& headers) {
//                                return status == 206 || status == 200;  // 200: from 0
//                              });
// A 206 is a 2xx and is streamed; other statuses come back whole in FetchResponse::body.
// Redirects are not followed (a 3xx is returned like any other status). A HEAD response is
// read without a body, whatever its Content-Length says.
//
// Thread safety: calls may run on any threads at once; each has its own io_context and
// connection, and TLS contexts (trust stores) are loaded once and shared read-only.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/status.h"

namespace pocket::net {

struct Url {
  bool tls = false;         // https://
  std::string host;         // without brackets for IPv6 literals
  std::string port = "80";  // "443" by default for https
  std::string path = "/";   // path prefix, never empty
};

// Parses "http://host[:port][/path]" and "https://host[:port][/path]" (IPv6 literals as
// [::1]). InvalidArgument naming the URL for anything else.
Result<Url> ParseUrl(const std::string& url);

struct FetchResponse {
  int status = 0;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string Header(const std::string& name) const;  // "" when absent (case-insensitive)
};

struct FetchRequest {
  std::string method = "GET";
  std::string url;                                           // full URL
  std::vector<std::pair<std::string, std::string>> headers;  // Range, Authorization ...
  std::string body;
  int64_t timeout_ms = 30000;
  // > 0: each step (connect, handshake, write) and each read of the response must make
  // progress within this long, on top of timeout_ms for the whole exchange.
  int64_t idle_timeout_ms = 0;
  uint64_t max_response_bytes = 64ull << 20;  // the body, streamed or not: else bad_response
  // https only: a PEM file of CA certificates to trust instead of the system's store.
  // "" = the system's default verify paths, which OpenSSL lets SSL_CERT_FILE and
  // SSL_CERT_DIR override.
  std::string ca_file;
  // Set: polled every kCancelPollMs while the exchange waits; once it returns true the
  // exchange is abandoned (the connection closed) and the call returns Cancelled
  // "cancelled: ...", so a caller that stops (client gone, shutdown) is not held for the
  // rest of timeout_ms. Called on the calling thread only.
  std::function<bool()> cancelled;
};

// How often FetchRequest::cancelled is asked: the most a cancelled call keeps running.
inline constexpr int64_t kCancelPollMs = 50;

// Sends `request` (with Host and User-Agent added; a POST or a body gets Content-Length)
// and reads the whole response, whatever its status, into FetchResponse. IOError as above;
// InvalidArgument for a bad URL or method.
Result<FetchResponse> HttpFetch(const FetchRequest& request);

// Called with each piece of a streamed body, in order, as it arrives (any size, cut
// anywhere); return false to stop reading.
using BodyChunkFn = std::function<bool(std::string_view piece)>;

// Called once with the status and the headers (names as the peer spelt them) of the
// response, before any of its body, whatever the status; return false to stop there.
using ResponseHeadFn = std::function<bool(
    int status, const std::vector<std::pair<std::string, std::string>>& headers)>;

// Like HttpFetch, but the body of a 2xx response goes to `on_body` as it arrives and
// FetchResponse::body stays empty; other statuses are read whole into body, as by
// HttpFetch. `on_head` (may be empty) sees the status and headers first (Content-Length,
// Content-Range, ETag ...). Errors as HttpFetch's, also after some pieces were delivered
// (the caller knows how far it got); Cancelled "cancelled: ..." when `on_head` or `on_body`
// returned false. Both handlers run on the calling thread.
Result<FetchResponse> HttpFetchStream(const FetchRequest& request, const BodyChunkFn& on_body,
                                      const ResponseHeadFn& on_head = nullptr);

// Loads `ca_file` the way an https call would, so a bad path or a file with no PEM
// certificate is reported at start-up rather than as a fallback on every request.
// InvalidArgument "ca_file '<path>': <reason>".
Status CheckCaFile(const std::string& ca_file);

}  // namespace pocket::net
