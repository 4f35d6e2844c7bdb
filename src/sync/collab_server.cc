#include "sync/collab_server.h"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket/rfc6455.hpp>

#include <array>
#include <filesystem>

#include "base/file.h"
#include "base/log.h"

namespace pocket::sync {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

std::string_view MimeType(std::string_view path) {
  auto ends = [&](std::string_view ext) {
    return path.size() >= ext.size() && path.substr(path.size() - ext.size()) == ext;
  };
  if (ends(".html")) return "text/html; charset=utf-8";
  if (ends(".js") || ends(".mjs")) return "text/javascript; charset=utf-8";
  if (ends(".css")) return "text/css; charset=utf-8";
  if (ends(".json") || ends(".map")) return "application/json";
  if (ends(".svg")) return "image/svg+xml";
  if (ends(".png")) return "image/png";
  return "application/octet-stream";
}

Result<std::string> ResolveStaticPath(std::string_view target, const std::string& web_root,
                                      const std::string& node_modules) {
  std::string_view path = target.substr(0, target.find_first_of("?#"));
  if (path.empty() || path.front() != '/' || path.find("..") != std::string_view::npos ||
      path.find('\\') != std::string_view::npos || path.find('\0') != std::string_view::npos ||
      path.find("//") != std::string_view::npos) {
    return Status::NotFound("no such page");
  }
  constexpr std::string_view kVendor = "/vendor/";
  if (path.substr(0, kVendor.size()) == kVendor) {
    if (node_modules.empty()) return Status::NotFound("no vendor directory");
    std::string_view rest = path.substr(kVendor.size());
    static constexpr std::array<std::string_view, 4> kPackages = {"yjs/", "y-websocket/",
                                                                  "y-protocols/", "lib0/"};
    for (std::string_view pkg : kPackages) {
      if (rest.substr(0, pkg.size()) == pkg) return node_modules + "/" + std::string(rest);
    }
    return Status::NotFound("not a vendored package");
  }
  if (web_root.empty()) return Status::NotFound("no web root");
  if (path == "/") return web_root + "/index.html";
  return web_root + std::string(path);
}

class CollabServer::Impl : public std::enable_shared_from_this<CollabServer::Impl> {
 public:
  Impl(asio::io_context& io, CollabServerOptions options)
      : io_(io), options_(std::move(options)), acceptor_(io), accept_timer_(io),
        limiter_(options_.limits) {}

  Status Listen() {
    beast::error_code ec;
    auto address = asio::ip::make_address(options_.bind_address, ec);
    if (ec) return Status::InvalidArgument("collab: bad bind address '" + options_.bind_address + "'");
    tcp::endpoint ep(address, options_.port);
    const std::string where = options_.bind_address + ":" + std::to_string(options_.port);
    acceptor_.open(ep.protocol(), ec);
    if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_.bind(ep, ec);
    if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) return Status::IOError("collab: listen on " + where + ": " + ec.message());
    port_ = acceptor_.local_endpoint().port();
    service_ = SyncService::Create(io_, options_.sync);
    Accept();
    return Status::Ok();
  }

  void Accept() {
    acceptor_.async_accept(asio::make_strand(io_), [self = shared_from_this()](
                                                       beast::error_code ec, tcp::socket s) {
      if (!self->acceptor_.is_open() || ec == asio::error::operation_aborted) return;
      if (ec && !IsPerConnectionAcceptError(ec)) return self->OnAcceptError(ec);
      if (self->backoff_.in_episode()) {
        int64_t ms = 0;
        const uint64_t n = self->backoff_.OnSuccess(&ms);
        if (LogEnabled(LogLevel::kWarning))
          Log(LogLevel::kWarning, AcceptBackoff::ResumedMessage("collab", n, ms));
      }
      if (!ec) self->Admit(std::move(s));
      self->Accept();
    });
  }

  // Out of file descriptors (EMFILE/ENFILE), buffers or memory, the pending connection
  // stays queued and accept() fails again at once: retrying at once would spin a core and
  // log without end. Pause with a growing delay; log an episode's start and end only.
  void OnAcceptError(const beast::error_code& ec) {
    bool first = false;
    const int64_t delay_ms = backoff_.OnFailure(&first);
    if (first) {
      if (LogEnabled(LogLevel::kWarning))
        Log(LogLevel::kWarning, AcceptBackoff::PausedMessage("collab", ec, delay_ms));
    }
    accept_timer_.expires_after(std::chrono::milliseconds(delay_ms));
    accept_timer_.async_wait([self = shared_from_this()](beast::error_code tec) {
      if (tec || !self->acceptor_.is_open()) return;
      self->Accept();
    });
  }

  void Admit(tcp::socket socket) {
    beast::error_code ec;
    const auto ep = socket.remote_endpoint(ec);
    if (ec) return;  // already gone
    const std::string address = ep.address().to_string();
    auto admission = limiter_.Admit(ClientKey(address));
    if (admission.verdict == ConnectionLimiter::Verdict::kAdmitted) {
      return Serve(beast::tcp_stream(std::move(socket)), std::move(admission.ticket));
    }
    const bool per_client = admission.verdict == ConnectionLimiter::Verdict::kOverClientLimit;
    const std::string body =
        per_client ? "too many open connections from " + address + ": the limit is " +
                         std::to_string(options_.limits.max_per_client) + " per client\n"
                   : "too many open connections: the server's limit is " +
                         std::to_string(options_.limits.max_connections) + "\n";
    refuser_.Refuse(std::move(socket),
                    std::string(per_client ? "HTTP/1.1 429 Too Many Requests\r\n"
                                           : "HTTP/1.1 503 Service Unavailable\r\n") +
                        "Server: pocket-collab\r\nContent-Type: text/plain\r\nRetry-After: "
                        "1\r\nConnection: close\r\nContent-Length: " +
                        std::to_string(body.size()) + "\r\n\r\n" + body);
  }

  void Serve(beast::tcp_stream stream, std::shared_ptr<void> ticket);

  void Stop() {
    beast::error_code ignored;
    acceptor_.close(ignored);
    accept_timer_.cancel();
    if (service_) service_->Shutdown();
  }

  asio::io_context& io_;
  CollabServerOptions options_;
  tcp::acceptor acceptor_;
  asio::steady_timer accept_timer_;
  AcceptBackoff backoff_;
  ConnectionLimiter limiter_;
  Refuser refuser_;
  uint16_t port_ = 0;
  std::shared_ptr<SyncService> service_;
};

namespace {

// One HTTP connection: reads requests until one is a WebSocket upgrade (handed over) or
// the peer goes away. Static files only; keep-alive supported.
class HttpSession : public std::enable_shared_from_this<HttpSession> {
 public:
  // `ticket`: the connection's place under the limits, kept past a WebSocket upgrade.
  HttpSession(std::shared_ptr<CollabServer::Impl> server, beast::tcp_stream stream,
              std::shared_ptr<void> ticket)
      : server_(std::move(server)), stream_(std::move(stream)), ticket_(std::move(ticket)) {}

  // A new connection first gets first_byte_timeout_ms for its first byte (a connection that
  // never sends one would hold a place for the whole request deadline); then, and for each
  // keep-alive request after it, 30 s for the whole request.
  void Start() {
    stream_.expires_after(std::chrono::milliseconds(server_->options_.first_byte_timeout_ms));
    stream_.async_read_some(buffer_.prepare(4096),
                            [self = shared_from_this()](beast::error_code ec, size_t n) {
                              if (ec) return self->Close();
                              self->buffer_.commit(n);
                              self->Read();
                            });
  }

  void Read() {
    parser_.emplace();
    parser_->body_limit(64 * 1024);
    parser_->header_limit(16 * 1024);
    stream_.expires_after(std::chrono::seconds(30));
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](beast::error_code ec, size_t) {
                       self->OnRead(ec);
                     });
  }

 private:
  void Close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
  }

  void OnRead(beast::error_code ec) {
    if (ec) return Close();
    http::request<http::string_body> req = parser_->release();
    if (beast::websocket::is_upgrade(req)) {
      server_->service_->HandleUpgrade(std::move(stream_), std::move(req), std::move(ticket_));
      return;
    }
    Respond(std::move(req));
  }

  void Respond(http::request<http::string_body> req) {
    auto res = std::make_shared<http::response<http::string_body>>();
    res->version(req.version());
    res->keep_alive(req.keep_alive());
    res->set(http::field::server, "pocket-collab");
    if (req.method() != http::verb::get && req.method() != http::verb::head) {
      res->result(http::status::method_not_allowed);
      res->set(http::field::content_type, "text/plain");
      res->body() = "method not allowed\n";
    } else {
      std::string_view target(req.target().data(), req.target().size());
      auto path = ResolveStaticPath(target, server_->options_.web_root,
                                    server_->options_.node_modules);
      std::error_code fec;
      if (path.ok() && std::filesystem::is_regular_file(*path, fec)) {
        auto body = ReadFile(*path);
        if (body.ok()) {
          res->result(http::status::ok);
          res->set(http::field::content_type, std::string(MimeType(*path)));
          res->set(http::field::cache_control, "no-cache");
          if (req.method() == http::verb::get) res->body() = std::move(body).value();
        } else {
          res->result(http::status::internal_server_error);
        }
      } else {
        res->result(http::status::not_found);
        res->set(http::field::content_type, "text/plain");
        res->body() = "not found\n";
      }
    }
    res->prepare_payload();
    http::async_write(stream_, *res,
                      [self = shared_from_this(), res](beast::error_code ec, size_t) {
                        if (ec || !res->keep_alive()) {
                          beast::error_code ignored;
                          self->stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
                          return;
                        }
                        self->Read();
                      });
  }

  std::shared_ptr<CollabServer::Impl> server_;
  beast::tcp_stream stream_;
  std::shared_ptr<void> ticket_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
};

}  // namespace

void CollabServer::Impl::Serve(beast::tcp_stream stream, std::shared_ptr<void> ticket) {
  std::make_shared<HttpSession>(shared_from_this(), std::move(stream), std::move(ticket))->Start();
}

Result<std::unique_ptr<CollabServer>> CollabServer::Start(asio::io_context& io,
                                                          CollabServerOptions options) {
  auto impl = std::make_shared<Impl>(io, std::move(options));
  PK_RETURN_IF_ERROR(impl->Listen());
  return std::unique_ptr<CollabServer>(new CollabServer(std::move(impl)));
}

CollabServer::~CollabServer() = default;
uint16_t CollabServer::port() const { return impl_->port_; }
SyncService& CollabServer::service() { return *impl_->service_; }
void CollabServer::Stop() { impl_->Stop(); }
int CollabServer::open_connections() const { return impl_->limiter_.open(); }

}  // namespace pocket::sync
