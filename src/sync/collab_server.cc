// CollabServer: `pocket collab serve` as a net::HttpServer on the caller's io_context, with
// the rooms (SyncService) on its WebSocket-upgrade hook and the editor page (with its copied
// npm modules under vendor/, or those of a node_modules override) on net::StaticFileHandler.
// The connection layer (accepting, limits, timeouts, refusals) is all net's; what is
// collab's here is the mapping of URLs to files and the options it gives the listener.
#include "sync/collab_server.h"

#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include <array>
#include <utility>

#include "net/http_server.h"
#include "net/static_files.h"

namespace pocket::sync {

Result<std::string> ResolveStaticPath(std::string_view target, const std::string& web_root,
                                      const std::string& node_modules) {
  std::string_view path = target.substr(0, target.find_first_of("?#"));
  if (!net::IsSafeUrlPath(path)) return Status::NotFound("no such page");
  constexpr std::string_view kVendor = "/vendor/";
  if (path.substr(0, kVendor.size()) == kVendor && !node_modules.empty()) {
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

class CollabServer::Impl {
 public:
  std::shared_ptr<SyncService> service;
  std::unique_ptr<net::HttpServer> http;
};

namespace {

// The listener's settings for collab: its own limits and first-byte deadline; requests are
// small GETs (64 KiB of body is plenty) and get 30 s, also between keep-alive requests;
// refusals and errors are plain text from a server that names itself.
net::HttpOptions ListenerOptions(const CollabServerOptions& o) {
  net::HttpOptions h;
  h.name = "collab";
  h.server_header = "pocket-collab";
  h.error_content_type = "text/plain";
  h.host = o.bind_address;
  h.port = o.port;
  h.max_body_bytes = 64 * 1024;
  h.max_header_bytes = 16 * 1024;
  h.first_byte_timeout_ms = o.first_byte_timeout_ms;
  h.read_timeout_ms = 30000;
  h.idle_timeout_ms = 30000;
  h.write_timeout_ms = 30000;
  h.max_connections = o.limits.max_connections;
  h.max_connections_per_client = o.limits.max_per_client;
  return h;
}

}  // namespace

CollabServer::CollabServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Result<std::unique_ptr<CollabServer>> CollabServer::Start(boost::asio::io_context& io,
                                                          CollabServerOptions options) {
  auto impl = std::make_unique<Impl>();
  auto resolve = [web_root = options.web_root,
                  node_modules = options.node_modules](std::string_view target) {
    return ResolveStaticPath(target, web_root, node_modules);
  };
  impl->http = std::make_unique<net::HttpServer>(
      io, ListenerOptions(options), net::StaticFileHandler(std::move(resolve)),
      [](int, const std::string& message) { return message + "\n"; });
  impl->service = SyncService::Create(io, options.sync);
  // Every path is a room: y-websocket puts the room name in the path.
  impl->http->SetUpgradeHandler(
      "/", [service = impl->service](
               boost::beast::tcp_stream stream,
               boost::beast::http::request<boost::beast::http::string_body> request,
               std::shared_ptr<void> hold) {
        service->HandleUpgrade(std::move(stream), std::move(request), std::move(hold));
      });
  if (Status s = impl->http->Start(); !s.ok()) {
    impl->service->Shutdown();
    if (s.code() == StatusCode::kInvalidArgument)
      return Status::InvalidArgument("collab: bad bind address '" + options.bind_address + "'");
    return Status::IOError("collab: " + s.message());
  }
  return std::unique_ptr<CollabServer>(new CollabServer(std::move(impl)));
}

CollabServer::~CollabServer() = default;
uint16_t CollabServer::port() const { return impl_->http->port(); }
SyncService& CollabServer::service() { return *impl_->service; }

void CollabServer::Stop() {
  impl_->http->Stop();
  impl_->service->Shutdown();
}

int CollabServer::open_connections() const { return impl_->http->open_connections(); }

}  // namespace pocket::sync
