// A small HTTP/1.1 server on Boost.Beast/Asio: keep-alive, a request-body limit (413),
// a header-size limit (431), a whole-request read deadline against slow clients (408),
// and responses that a handler completes from any thread, either whole or as a chunked
// stream (Server-Sent Events). While a handler works, the connection watches the socket:
// a client that disconnects marks the exchange cancelled so the handler can stop and
// free what it holds at once. WebSocket upgrades under a path prefix are handed over to an
// UpgradeHandler with the connection's place under the limits.
// Against connection exhaustion (net/listener.h): open connections are capped per client
// address (429 at once beyond) and in all (503 at once beyond), a new connection must send
// its first byte within first_byte_timeout_ms, and accept() errors (EMFILE ...) pause
// accepting with a growing delay instead of a busy retry.
// Called by server::Server (the OpenAI API, with rooms mounted under /collab/) and by
// sync::CollabServer (`pocket collab serve`: rooms and static files, net/static_files.h):
// both listeners are this one, with one accept loop, one limiter and one set of timeouts.
// It runs either on its own I/O threads or on an io_context that the caller runs.
// Thread safety: HttpServer::Start/Stop from one thread (with a caller's io_context: that
// context's thread, or before it runs); Exchange methods and stats() from any thread.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "base/status.h"

namespace pocket::net {

struct HttpRequest {
  std::string method;  // "GET", "POST", ...
  std::string target;  // "/v1/chat/completions?x=y"
  std::string path;    // target without the query
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased
  std::string body;
  std::string remote;  // peer address
  std::string Header(const std::string& lower_name) const;  // "" when absent
};

using Headers = std::vector<std::pair<std::string, std::string>>;

// One request/response exchange. The handler must eventually call Respond(), or
// StartStream() followed by any number of Write() and one End(). Calls after the client
// disconnected are ignored.
class Exchange {
 public:
  virtual ~Exchange() = default;
  virtual void Respond(int status, Headers headers, std::string body) = 0;
  virtual void StartStream(int status, Headers headers) = 0;
  // Returns false once the client has gone (the caller should stop producing).
  virtual bool Write(std::string data) = 0;
  virtual void End() = 0;
  // True once the client disconnected or a write failed.
  virtual bool cancelled() const = 0;
};

using Handler = std::function<void(HttpRequest request, std::shared_ptr<Exchange> exchange)>;

struct HttpOptions {
  // Names the listener in its log lines ("http: accept failed: ...").
  std::string name = "http";
  // Non-empty: sent as the Server header of every response, refusals included.
  std::string server_header;
  // Content-Type of the bodies ErrorBodyFn makes (refusals, 408, 413, 431, 400).
  std::string error_content_type = "application/json";
  std::string host = "127.0.0.1";
  uint16_t port = 8080;  // 0: pick a free port (see HttpServer::port())
  int io_threads = 2;    // with a caller's io_context: unused (the caller runs it)
  uint64_t max_body_bytes = 4ull << 20;
  uint32_t max_header_bytes = 16 * 1024;
  // A new connection that has not sent a byte within this long is closed silently (it
  // holds a place that a real client could use).
  int64_t first_byte_timeout_ms = 5000;
  // From the first byte of a request until its body is complete: 408 when it takes longer.
  int64_t read_timeout_ms = 15000;
  // A keep-alive connection on which no byte of a next request has arrived is closed after
  // this long (longer than clients' own idle timeouts, so they close first and never reuse
  // a socket the server is closing).
  int64_t idle_timeout_ms = 60000;
  int64_t write_timeout_ms = 60000;  // a client that stops reading the response
  // Open connections (WebSocket upgrades included) of all clients together; a connection
  // beyond is answered 503 at once and closed. 0: no limit.
  int max_connections = 512;
  // Open connections of one client (remote address; IPv6 by /64); a connection beyond is
  // answered 429 at once and closed, while other clients are still served. 0: no limit.
  int max_connections_per_client = 64;
  // Stop(): how long handlers get to let go of their (cancelled) exchanges before the I/O
  // threads stop. Unused with a caller's io_context (Stop() does not wait there).
  int64_t shutdown_grace_ms = 2000;
};

// Counters of the connection layer, for /metrics.
struct HttpStats {
  int open_connections = 0;
  uint64_t refused_client_limit = 0;  // answered 429: over max_connections_per_client
  uint64_t refused_global_limit = 0;  // answered 503: over max_connections
  uint64_t first_byte_timeouts = 0;   // closed: no byte within first_byte_timeout_ms
  uint64_t accept_errors = 0;         // failed accept() calls (EMFILE ...)
  uint64_t accept_pauses = 0;         // episodes of failing accepts (each paused, logged once)
};

// Error bodies for failures the HTTP layer itself detects (413, 408, 431, 400, 429, 503);
// installed by the API layer so they are OpenAI-style. Null: the message itself.
using ErrorBodyFn = std::function<std::string(int status, const std::string& message)>;

// Takes over a connection whose request is a WebSocket upgrade (the stream and the
// request, target with the mount prefix removed: "/collab/room" -> "/room"). `hold` keeps
// the connection's place under the connection limits: keep it as long as the socket.
using UpgradeHandler = std::function<void(
    boost::beast::tcp_stream, boost::beast::http::request<boost::beast::http::string_body>,
    std::shared_ptr<void> hold)>;

class HttpServer {
 public:
  // Runs on its own io_context with options.io_threads threads (started by Start()).
  HttpServer(HttpOptions options, Handler handler, ErrorBodyFn error_body);
  // Runs on `io`, which the caller runs (on one thread, or several: the server's state is
  // on strands) and which must outlive the server. Handlers run on that io_context.
  // REQUIRES: destroyed only once no handler of it can run any more: after Stop() and
  // after `io` stopped running (its pending handlers are then destroyed, never invoked).
  HttpServer(boost::asio::io_context& io, HttpOptions options, Handler handler,
             ErrorBodyFn error_body);
  ~HttpServer();
  // WebSocket upgrades whose path starts with `path_prefix` ("/collab/"; "/" takes every
  // one) go to `handler`. Call before Start().
  void SetUpgradeHandler(std::string path_prefix, UpgradeHandler handler);
  // The I/O context the connections run on (for services that share it).
  boost::asio::io_context& io_context();
  // Binds and starts accepting (and, on its own io_context, the I/O threads). IOError
  // naming host:port when binding fails, InvalidArgument for a host that is no address.
  Status Start();
  // Stops accepting and closes every connection (exchanges in progress become cancelled;
  // upgraded connections belong to their handler and are left alone). On its own
  // io_context it then waits up to shutdown_grace_ms for handlers to let go of their
  // exchanges and stops and joins the I/O threads; on a caller's io_context it returns at
  // once, and that context's run() returns once the connections and the upgrade handler's
  // sockets are gone. Idempotent.
  void Stop();
  uint16_t port() const { return bound_port_; }
  int open_connections() const;
  HttpStats stats() const;

  struct Impl;  // defined in http_server.cc

 private:
  std::unique_ptr<Impl> impl_;
  uint16_t bound_port_ = 0;
};

}  // namespace pocket::net
