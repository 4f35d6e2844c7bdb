// `pocket collab serve`: the y-websocket-compatible collaboration server (src/sync) with
// its editor page. See docs/collab.md.
#include <signal.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <thread>

#include "cli/command.h"
#include "cli/model_flags.h"
#include "cli/signals.h"
#include "cli/web_assets.h"
#include "sync/collab_server.h"

namespace pocket::cli {
namespace {

// The editor page's folder and its npm modules: refuses to start without them (the page
// would hang on "connecting…" with nothing said), naming what is missing and how to get it.
// Fills web_root and node_modules of `o`; both stay empty with `no_page`.
Status ResolvePage(const std::string& web, const std::string& node_modules, bool no_page,
                   sync::CollabServerOptions& o) {
  if (no_page) return Status::Ok();
  std::error_code ec;
  if (web.empty()) {
    auto found = FindWebPage("collab");
    if (!found.ok()) {
      return Status::NotFound("the editor page is missing: " + found.status().message() +
                              "; build the `pocket` target, pass --web DIR, or --no-page to "
                              "serve rooms only");
    }
    o.web_root = *found;
  } else if (!std::filesystem::is_regular_file(std::filesystem::path(web) / "index.html", ec)) {
    return Status::NotFound("--web '" + web + "' holds no index.html");
  } else {
    o.web_root = web;
  }
  o.node_modules = node_modules;
  const std::string vendor = node_modules.empty() ? o.web_root + "/vendor" : node_modules;
  // One file of each package the import map names; web/collab/vendor.txt lists them all.
  for (const char* file : {"yjs/dist/yjs.mjs", "y-websocket/src/y-websocket.js",
                           "y-protocols/sync.js", "lib0/encoding.js"}) {
    if (!std::filesystem::is_regular_file(std::filesystem::path(vendor) / file, ec)) {
      return Status::NotFound("the editor page's Yjs modules are missing (no " + vendor + "/" +
                              file +
                              "); run `bash scripts/deps.sh --with-node` and build again, "
                              "or pass --no-page to serve rooms only");
    }
  }
  return Status::Ok();
}

// Tokens file: one "ROOM TOKEN" per line; ROOM "*" sets the token of every other room;
// blank lines and lines starting with '#' are skipped.
Status ReadTokens(const std::string& path, sync::SyncOptions& options) {
  std::ifstream in(path);
  if (!in) return Status::IOError("cannot read tokens file '" + path + "'");
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (line.empty() || line[0] == '#') continue;
    std::istringstream ls(line);
    std::string room, token, extra;
    if (!(ls >> room >> token) || (ls >> extra)) {
      return Status::InvalidArgument("tokens file '" + path + "' line " + std::to_string(n) +
                                     ": expected 'ROOM TOKEN'");
    }
    if (room == "*") {
      options.token = token;
    } else {
      options.room_tokens[room] = token;
    }
  }
  return Status::Ok();
}

CommandMain Configure(CLI::App& app) {
  app.require_subcommand(1);
  CLI::App* serve = app.add_subcommand("serve", "Serve y-websocket rooms and the editor page");
  SetExamples(app, {"pocket collab serve --dir ./collab-data   # page at http://127.0.0.1:1234/"});
  SetExamples(*serve, {"pocket collab serve --dir ./collab-data   # page at http://127.0.0.1:1234/",
                       "pocket collab serve --memory --port 8081"});
  struct Flags {
    std::string dir = "pocket-collab-data";
    std::string host = "127.0.0.1";
    int port = 1234;
    std::string token, tokens_file, web, node_modules;
    bool memory = false;
    bool no_page = false;
    size_t compact_every = 500;
    size_t max_message_bytes = sync::SyncOptions{}.max_message_bytes;
    double new_rooms_per_minute = sync::SyncOptions{}.new_rooms_per_minute;
    double new_rooms_burst = sync::SyncOptions{}.new_rooms_burst;
    int max_connections = 1024;
    int max_connections_per_client = 128;
    int64_t first_byte_timeout_ms = 5000;
    int64_t shutdown_timeout_ms = 3000;
  };
  auto f = std::make_shared<Flags>();
  serve->add_option("--dir", f->dir, "Data directory: one folder per room")->capture_default_str();
  serve->add_option("--host", f->host, "Address to bind (use 0.0.0.0 to accept remote peers)")
      ->capture_default_str();
  serve->add_option("--port", f->port, "TCP port (0: pick a free one)")
      ->check(CLI::Range(0, 65535))
      ->capture_default_str();
  serve->add_option("--token", f->token, "Access token every room requires (?token=...)");
  serve->add_option("--tokens", f->tokens_file, "File of 'ROOM TOKEN' lines ('*' = any room)");
  serve->add_option("--web", f->web,
                    "Folder of the editor page (default: share/pocket/web/collab beside the "
                    "binary, in the build or the install)");
  serve->add_option("--node-modules", f->node_modules,
                    "Serve the page's yjs, y-websocket, y-protocols and lib0 from this "
                    "node_modules instead of the page folder's vendor/ (development)");
  serve->add_flag("--no-page", f->no_page, "Serve rooms only: no editor page, no check for it")
      ->excludes("--web")
      ->excludes("--node-modules");
  serve->add_flag("--memory", f->memory, "Keep rooms in memory only (nothing persisted)");
  serve->add_option("--compact-every", f->compact_every,
                    "Compact a room's log after this many updates (0: never)")
      ->capture_default_str();
  serve->add_option("--max-message-bytes", f->max_message_bytes,
                    "Largest WebSocket message a peer may send; a larger one closes it with "
                    "4413 and a reason (the client stops reconnecting)")
      ->check(CLI::Range(size_t{1024}, size_t{1} << 30))
      ->capture_default_str();
  serve->add_option("--new-rooms-per-minute", f->new_rooms_per_minute,
                    "Rooms one client address (IPv6: one /64) may create per minute after "
                    "the burst; over it the connection is closed with 4529, try again later "
                    "(0: no limit)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  serve->add_option("--new-rooms-burst", f->new_rooms_burst,
                    "Rooms one client address (IPv6: one /64) may create at once")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  serve->add_option("--max-connections", f->max_connections,
                    "Open connections (WebSockets included) in all; beyond: 503 at once "
                    "(0: no limit)")
      ->check(CLI::Range(0, 1 << 20))
      ->capture_default_str();
  serve->add_option("--max-connections-per-client", f->max_connections_per_client,
                    "Open connections of one client address (IPv6: per /64); beyond: 429 at "
                    "once (0: no limit)")
      ->check(CLI::Range(0, 1 << 20))
      ->capture_default_str();
  serve->add_option("--first-byte-timeout-ms", f->first_byte_timeout_ms,
                    "A new connection that sends nothing within this is closed")
      ->check(CLI::Range(int64_t{1}, int64_t{3600000}))
      ->capture_default_str();
  serve->add_option("--shutdown-timeout-ms", f->shutdown_timeout_ms,
                    "On SIGTERM/SIGINT, exit after this long even if peers have not closed (a "
                    "second signal exits at once)")
      ->check(CLI::Range(int64_t{100}, int64_t{600000}))
      ->capture_default_str();
  return [f, serve]() -> int {
    if (!serve->parsed()) return 2;
    sync::CollabServerOptions o;
    o.bind_address = f->host;
    o.port = static_cast<uint16_t>(f->port);
    if (Status s = ResolvePage(f->web, f->node_modules, f->no_page, o); !s.ok()) {
      return Fail("collab", s);
    }
    if (!f->memory) o.sync.data_dir = f->dir;
    o.sync.token = f->token;
    o.sync.store.compact_every_records = f->compact_every;
    o.sync.max_message_bytes = f->max_message_bytes;
    o.sync.new_rooms_per_minute = f->new_rooms_per_minute;
    o.sync.new_rooms_burst = f->new_rooms_burst;
    o.limits.max_connections = f->max_connections;
    o.limits.max_per_client = f->max_connections_per_client;
    o.first_byte_timeout_ms = f->first_byte_timeout_ms;
    if (!f->tokens_file.empty()) {
      if (Status s = ReadTokens(f->tokens_file, o.sync); !s.ok()) return Fail("collab", s);
    }
    if (!f->memory) {
      std::error_code ec;
      std::filesystem::create_directories(f->dir, ec);
      if (ec) {
        return Fail("collab", Status::IOError("cannot create data directory '" + f->dir +
                                              "': " + ec.message()));
      }
    }
    // Blocked before any thread starts, so only WaitThenStop's sigwait sees them.
    const sigset_t signals = BlockStopSignals();
    boost::asio::io_context io(1);
    auto server = sync::CollabServer::Start(io, o);
    if (!server.ok()) return Fail("collab", server.status());
    std::printf("pocket collab: listening on ws://%s:%u (data: %s, page: %s)\n", f->host.c_str(),
                (*server)->port(), f->memory ? "memory" : f->dir.c_str(),
                o.web_root.empty() ? "none" : ("http://" + f->host + ":" +
                                               std::to_string((*server)->port()) + "/").c_str());
    std::fflush(stdout);
    boost::asio::steady_timer grace(io);
    const int64_t grace_ms = std::min<int64_t>(2000, f->shutdown_timeout_ms / 2);
    // The signal is awaited on its own thread (this one runs the I/O); the stop itself runs
    // on the I/O thread.
    std::function<void()> stop = [&] {
      (*server)->Stop();
      // Peers get a moment to answer the close handshake.
      grace.expires_after(std::chrono::milliseconds(grace_ms));
      grace.async_wait([&](const boost::system::error_code&) { io.stop(); });
    };
    std::thread([signals, timeout_ms = f->shutdown_timeout_ms, &io, stop] {
      WaitThenStop(signals, timeout_ms, "pocket collab", [&] { boost::asio::post(io, stop); });
    }).detach();
    io.run();
    return 0;
  };
}

}  // namespace

POCKET_COMMAND(collab, "collab", "collaborative documents: y-websocket server and editor page",
               Configure);

}  // namespace pocket::cli
