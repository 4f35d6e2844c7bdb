// CollabServer: what `pocket collab serve` runs. One net::HttpServer listener that serves
//   * WebSocket upgrades on any path: y-websocket rooms (handed to SyncService), and
//   * GET/HEAD of static files (net/static_files.h): the editor page from `web_root` (the
//     build's or install's share/pocket/web/collab/, docs/web.md), whose vendor/ folder
//     holds the npm modules the page imports through its import map (yjs, y-websocket,
//     y-protocols, lib0); with `node_modules` set, /vendor/<package>/<file> of those four
//     packages comes from there instead.
// Binds 127.0.0.1 unless told otherwise. The connection layer is net::HttpServer's, the same
// as `pocket serve`'s: connections are capped per client address and in all (answered 429 /
// 503 at once beyond, net/listener.h), a new connection must send its first byte within
// first_byte_timeout_ms, and failing accepts (EMFILE ...) pause with back-off, logged once
// per episode. Thread safety: Start() and Stop() from the thread that runs the io_context
// (or before it runs); the io_context is meant to run on one thread.
#pragma once

#include <boost/asio/io_context.hpp>

#include <cstdint>
#include <memory>
#include <string>

#include "base/status.h"
#include "net/listener.h"
#include "sync/sync_service.h"

namespace pocket::sync {

struct CollabServerOptions {
  std::string bind_address = "127.0.0.1";
  uint16_t port = 1234;  // 0: an ephemeral port (see CollabServer::port())
  std::string web_root;      // empty: no page
  std::string node_modules;  // empty: /vendor/ from web_root/vendor/
  // A y-websocket client opens one WebSocket per document and a browser a few connections
  // for the page, so one host with many tabs or test clients (bench/sync/fanout.mjs: 50)
  // stays well under the per-client cap; WebSockets count until they close.
  net::ConnectionLimits limits{1024, 128};
  // A new connection that sends nothing within this long is closed.
  int64_t first_byte_timeout_ms = 5000;
  SyncOptions sync;
};

class CollabServer {
 public:
  // Binds and starts accepting on `io`, which must outlive the server. IOError naming the
  // address when bind/listen fails.
  static Result<std::unique_ptr<CollabServer>> Start(boost::asio::io_context& io,
                                                     CollabServerOptions options);
  ~CollabServer();
  uint16_t port() const;
  SyncService& service();
  // Stops accepting and closes every connection; io.run() returns once they are gone.
  // REQUIRES: the server is destroyed only after `io` stopped running its handlers.
  void Stop();
  int open_connections() const;

  class Impl;

 private:
  explicit CollabServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Maps a request path to a file under `web_root` / `node_modules`, or NotFound. Rejects
// what net::IsSafeUrlPath rejects ("..", "//", backslashes, NULs); "/" maps to index.html;
// /vendor/<package>/... maps into `node_modules` for the four packages when it is set, and
// like any other path into `web_root` when it is not.
Result<std::string> ResolveStaticPath(std::string_view target, const std::string& web_root,
                                      const std::string& node_modules);

}  // namespace pocket::sync
