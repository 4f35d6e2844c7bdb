#include "sync/collab_server.h"

#include <boost/asio/ip/tcp.hpp>
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
      : io_(io), options_(std::move(options)), acceptor_(io) {}

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
      if (ec) {
        if (ec != asio::error::operation_aborted) {
          PK_LOG(kWarning) << "collab: accept: " << ec.message();
        }
        if (!self->acceptor_.is_open()) return;
      } else {
        self->Serve(beast::tcp_stream(std::move(s)));
      }
      self->Accept();
    });
  }

  void Serve(beast::tcp_stream stream);

  void Stop() {
    beast::error_code ignored;
    acceptor_.close(ignored);
    if (service_) service_->Shutdown();
  }

  asio::io_context& io_;
  CollabServerOptions options_;
  tcp::acceptor acceptor_;
  uint16_t port_ = 0;
  std::shared_ptr<SyncService> service_;
};

namespace {

// One HTTP connection: reads requests until one is a WebSocket upgrade (handed over) or
// the peer goes away. Static files only; keep-alive supported.
class HttpSession : public std::enable_shared_from_this<HttpSession> {
 public:
  HttpSession(std::shared_ptr<CollabServer::Impl> server, beast::tcp_stream stream)
      : server_(std::move(server)), stream_(std::move(stream)) {}

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
  void OnRead(beast::error_code ec) {
    if (ec) {
      beast::error_code ignored;
      stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
      return;
    }
    http::request<http::string_body> req = parser_->release();
    if (beast::websocket::is_upgrade(req)) {
      server_->service_->HandleUpgrade(std::move(stream_), std::move(req));
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
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
};

}  // namespace

void CollabServer::Impl::Serve(beast::tcp_stream stream) {
  std::make_shared<HttpSession>(shared_from_this(), std::move(stream))->Read();
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

}  // namespace pocket::sync
