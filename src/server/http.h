// A small HTTP/1.1 server on Boost.Beast/Asio: keep-alive, a request-body limit (413),
// a header-size limit (431), a whole-request read deadline against slow clients (408),
// and responses that a handler completes from any thread, either whole or as a chunked
// stream (Server-Sent Events). While a handler works, the connection watches the socket:
// a client that disconnects marks the exchange cancelled so the handler can stop and
// free what it holds at once.
// Called by server::Server (the OpenAI API). Thread safety: HttpServer::Start/Stop from
// one thread; Exchange methods from any thread.
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

namespace pocket::server {

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
  std::string host = "127.0.0.1";
  uint16_t port = 8080;  // 0: pick a free port (see HttpServer::port())
  int io_threads = 2;
  uint64_t max_body_bytes = 4ull << 20;
  uint32_t max_header_bytes = 16 * 1024;
  // From when the server waits for a request until its body is complete: 408 when some
  // of it arrived, a silent close for an idle keep-alive connection.
  int64_t read_timeout_ms = 15000;
  // A keep-alive connection on which no byte of a next request has arrived is closed after
  // this long (longer than clients' own idle timeouts, so they close first and never reuse
  // a socket the server is closing).
  int64_t idle_timeout_ms = 60000;
  int64_t write_timeout_ms = 60000;  // a client that stops reading the response
  int max_connections = 512;         // more are accepted and answered 503 at once
};

// Error bodies for failures the HTTP layer itself detects (413, 408, 431, 400, 503);
// installed by the API layer so they are OpenAI-style.
using ErrorBodyFn = std::function<std::string(int status, const std::string& message)>;

// Takes over a connection whose request is a WebSocket upgrade (the stream and the
// request, target with the mount prefix removed: "/collab/room" -> "/room").
using UpgradeHandler = std::function<void(
    boost::beast::tcp_stream, boost::beast::http::request<boost::beast::http::string_body>)>;

class HttpServer {
 public:
  HttpServer(HttpOptions options, Handler handler, ErrorBodyFn error_body);
  ~HttpServer();
  // WebSocket upgrades whose path starts with `path_prefix` ("/collab/") go to `handler`.
  // Call before Start().
  void SetUpgradeHandler(std::string path_prefix, UpgradeHandler handler);
  // The I/O context the connections run on (for services that share it).
  boost::asio::io_context& io_context();
  // Binds and starts the I/O threads. IOError naming host:port when binding fails.
  Status Start();
  // Stops accepting, closes connections and joins the threads. Idempotent.
  void Stop();
  uint16_t port() const { return bound_port_; }
  int open_connections() const;

  struct Impl;  // defined in http.cc

 private:
  std::unique_ptr<Impl> impl_;
  uint16_t bound_port_ = 0;
};

}  // namespace pocket::server
