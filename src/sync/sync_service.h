// SyncService: the y-websocket-compatible room server, as a handler that any Beast HTTP
// server mounts. Both users mount it on net::HttpServer's WebSocket-upgrade hook: `pocket
// collab serve` (collab_server.h) for every path, `pocket serve --collab` under /collab/.
//
// Protocol (y-protocols 1.0.7 as y-websocket 3.x speaks it; see protocol.h, awareness.h):
//  * Room = the URL path without its leading '/', percent-decoded ("/notes/a?token=x" ->
//    room "notes/a"). Many rooms, many clients per room.
//  * On connect the server sends SyncStep1 with the state vector of what the room has stored
//    (so the client answers with only what the server lacks, which the server merges) and
//    the room's awareness states.
//  * A client's SyncStep1 is answered with the room's stored updates as Update messages
//    followed by an empty SyncStep2 (the client marks itself synced on it). The server keeps
//    updates as opaque bytes; compaction merges them (SyncOptions::merge).
//  * SyncStep2/Update from a client: appended to the room's log, fsync'ed (group commit:
//    one fsync per batch of messages that arrived together), then broadcast to every
//    connection of the room, the sender included. "Acknowledged" = broadcast: whatever any
//    peer has received from the server is durable.
//  * Awareness is relayed to all connections of the room (sender included, like
//    y-websocket-server) and remembered; when a socket closes, the states it introduced are
//    removed and a null-state update is broadcast. QueryAwareness gets all states.
//  * Access: when a token is configured for the room (or a global one), `?token=` must
//    match; otherwise the server sends Auth permission-denied and closes with code 4401,
//    which y-websocket 3.x treats as permanent (no reconnect loop).
//  * Limits: text frames or undecodable messages (including a Yjs update that does not
//    decode: it would break every client of the room) close that connection only (1008).
//    A message over max_message_bytes closes it with 4413 and a reason naming both sizes;
//    y-websocket 3.x treats 44xx as permanent, so the client stops instead of resending the
//    same message forever (1009 would be retried). A peer that does not read (queued bytes
//    over max_queued_bytes) is closed. WebSocket pings keep idle connections alive; a peer
//    silent for idle_timeout_s is dropped.
//  * Rooms: a room with nothing stored leaves nothing on disk (room_store.h). Creating a
//    room (joining one that is not loaded and holds nothing) takes a token from the client
//    bucket (new_rooms_burst, refilled at new_rooms_per_minute; one per ClientKey, so IPv6 by
//    /64; at most 4,096 buckets, the least recently seen dropped first); without one the
//    connection is closed with 4529 (y-websocket retries it, backing off to 2.5 s).
//
// Thread safety: all state lives on one strand of the io_context given at construction;
// HandleUpgrade may be called from any thread. Rooms are loaded on first connection and
// unloaded (store closed) when their last connection leaves.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "base/status.h"
#include "sync/room_store.h"

namespace pocket::sync {

struct SyncOptions {
  // Directory holding one folder per room (room_store.h). Empty: rooms live in memory only.
  std::string data_dir;
  RoomStoreOptions store;
  // Merges updates for compaction; null: MergeUpdatesWithCrdt.
  MergeUpdatesFn merge;
  // A token every room requires (empty: none), and per-room tokens that override it.
  std::string token;
  std::map<std::string, std::string> room_tokens;
  // Stripped from the request target before the room is read ("/collab" makes
  // "/collab/notes" room "notes"), for servers that mount rooms under a path.
  std::string path_prefix;
  size_t max_message_bytes = 16u << 20;
  size_t max_queued_bytes = 64u << 20;
  int idle_timeout_s = 60;
  // Room creation per client (ClientKey: IPv4 address, IPv6 /64) as a token bucket.
  // 0 per minute: no limit.
  double new_rooms_per_minute = 60;
  double new_rooms_burst = 30;
};

// WebSocket close codes the service sends besides RFC 6455's.
inline constexpr uint16_t kClosePermissionDenied = 4401;  // y-websocket: permanent
inline constexpr uint16_t kCloseMessageTooBig = 4413;     // permanent: resending cannot help
inline constexpr uint16_t kCloseTooManyNewRooms = 4529;   // y-websocket: try again later

// crdt::MergeUpdates (Yjs mergeUpdates), checked by loading the result into a scratch Doc
// so a merge problem leaves the log as it is instead of replacing it with a bad snapshot.
Result<Bytes> MergeUpdatesWithCrdt(const std::vector<Bytes>& updates);

// Room name and token from a request target "/room/path?token=t&x=y". InvalidArgument for
// a bad percent escape.
struct RoomTarget {
  std::string room;
  std::string token;
};
Result<RoomTarget> ParseRoomTarget(std::string_view target);

struct SyncStats {
  uint64_t connections_open = 0;
  uint64_t rooms_loaded = 0;
  uint64_t updates_received = 0;
  uint64_t messages_rejected = 0;
  uint64_t messages_too_big = 0;        // closed with kCloseMessageTooBig
  uint64_t rooms_rate_limited = 0;      // connections closed with kCloseTooManyNewRooms
  uint64_t rooms_recovered_with_loss = 0;  // loads where recovery set something aside
  uint64_t recovery_dropped_bytes = 0;  // log bytes not kept by recovery, all loads
};

class SyncService : public std::enable_shared_from_this<SyncService> {
 public:
  // Handlers run on a strand of `io` (Boost 1.74's Beast needs an io_context executor).
  static std::shared_ptr<SyncService> Create(boost::asio::io_context& io, SyncOptions options);
  ~SyncService();

  // Takes an HTTP request that websocket::is_upgrade() accepted, with its stream, performs
  // the WebSocket handshake and serves the room named by its target.
  // `hold` (optional) is kept as long as the connection: the listener's place for it under
  // its connection limits (net/listener.h).
  void HandleUpgrade(boost::beast::tcp_stream stream,
                     boost::beast::http::request<boost::beast::http::string_body> request,
                     std::shared_ptr<void> hold = nullptr);

  // Closes every connection (code 1001 going away) and unloads every room. Asynchronous;
  // the executor's run() returns once the sockets are gone.
  void Shutdown();

  // A snapshot of the counters, delivered on the service's strand.
  void GetStats(std::function<void(SyncStats)> done);

  class Impl;

 private:
  explicit SyncService(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<Impl> impl_;
};

}  // namespace pocket::sync
