#include "sync/sync_service.h"

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/websocket.hpp>

#include <algorithm>
#include <chrono>
#include <deque>
#include <optional>
#include <set>
#include <vector>

#include "base/log.h"
#include "crdt/doc.h"
#include "sync/awareness.h"
#include "sync/protocol.h"
#include "sync/room_rate_limit.h"

namespace pocket::sync {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;

namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

Result<std::string> PercentDecode(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out.push_back(s[i]);
      continue;
    }
    if (i + 2 >= s.size()) {
      return Status::InvalidArgument("sync: truncated percent escape in '" + std::string(s) + "'");
    }
    const int hi = HexValue(s[i + 1]), lo = HexValue(s[i + 2]);
    if (hi < 0 || lo < 0) {
      return Status::InvalidArgument("sync: bad percent escape in '" + std::string(s) + "'");
    }
    out.push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return out;
}

bool ConstantTimeEqual(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

using Frame = std::shared_ptr<const Bytes>;

Frame MakeMessage(Bytes bytes) { return std::make_shared<const Bytes>(std::move(bytes)); }

// A WebSocket close reason holds at most 123 bytes (RFC 6455 5.5: control frames carry
// 125, two of them the code); Beast throws on a longer one.
std::string CloseReason(std::string reason) {
  if (reason.size() > 123) reason.resize(123);
  return reason;
}

// Messages are read in pieces of this size so that one over the limit is refused after
// reading limit + this much, never buffered whole.
constexpr size_t kReadChunkBytes = 64 * 1024;

bool IsDecodableUpdate(ByteSpan update) { return crdt::EncodeStateVectorFromUpdate(update).ok(); }

}  // namespace

Result<Bytes> MergeUpdatesWithCrdt(const std::vector<Bytes>& updates) {
  std::vector<std::span<const uint8_t>> spans(updates.begin(), updates.end());
  PK_ASSIGN_OR_RETURN(Bytes merged, crdt::MergeUpdates(spans));
  crdt::Doc check(/*client_id=*/1);
  PK_RETURN_IF_ERROR(check.ApplyUpdate(merged).WithContext("merged update does not load"));
  return merged;
}

Result<RoomTarget> ParseRoomTarget(std::string_view target) {
  RoomTarget out;
  const size_t q = target.find('?');
  std::string_view path = target.substr(0, q);
  while (!path.empty() && path.front() == '/') path.remove_prefix(1);
  PK_ASSIGN_OR_RETURN(out.room, PercentDecode(path));
  if (q != std::string_view::npos) {
    std::string_view query = target.substr(q + 1);
    while (!query.empty()) {
      const size_t amp = query.find('&');
      std::string_view kv = query.substr(0, amp);
      query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
      const size_t eq = kv.find('=');
      if (kv.substr(0, eq) == "token" && eq != std::string_view::npos) {
        PK_ASSIGN_OR_RETURN(out.token, PercentDecode(kv.substr(eq + 1)));
      }
    }
  }
  return out;
}

class Connection;

struct Room {
  std::string name;
  std::optional<RoomStore> store;
  AwarenessRegistry awareness;
  std::map<uint64_t, std::shared_ptr<Connection>> conns;
  std::vector<Frame> pending;  // appended, not yet fsync'ed nor broadcast
  bool flush_posted = false;
  std::optional<Bytes> state_vector;  // of store->updates(); reset when they change
};

class SyncService::Impl : public std::enable_shared_from_this<SyncService::Impl> {
 public:
  Impl(asio::io_context& io, SyncOptions options)
      : strand_(asio::make_strand(io)),
        options_(std::move(options)),
        new_rooms_(options_.new_rooms_per_minute, options_.new_rooms_burst) {}

  asio::strand<asio::io_context::executor_type>& strand() { return strand_; }
  const SyncOptions& options() const { return options_; }
  SyncStats& stats() { return stats_; }
  bool shutting_down() const { return shutting_down_; }

  bool Authorized(const RoomTarget& target) const {
    auto it = options_.room_tokens.find(target.room);
    const std::string& expected = it != options_.room_tokens.end() ? it->second : options_.token;
    return expected.empty() || ConstantTimeEqual(expected, target.token);
  }

  // ResourceExhausted when joining would create a room and `client_address` may not.
  Result<Room*> Join(const std::shared_ptr<Connection>& conn, uint64_t conn_id,
                     const std::string& name, const std::string& client_address);
  // The SyncStep1 state vector for a room: what it has stored, so a client sends only what
  // is missing. An empty one (everything) when the stored updates do not merge.
  const Bytes& StateVector(Room& room);
  void Leave(uint64_t conn_id, const std::string& name);
  void OnUpdate(Connection& conn, const std::string& name, ByteSpan update);
  void OnStep1(Connection& conn, const std::string& name);
  void OnAwareness(Connection& conn, uint64_t conn_id, const std::string& name, ByteSpan update);
  void OnQueryAwareness(Connection& conn, const std::string& name);
  void Flush(const std::string& name);
  void Shutdown();
  uint64_t NextConnectionId() { return ++last_conn_id_; }

 private:
  Room* Find(const std::string& name) {
    auto it = rooms_.find(name);
    return it == rooms_.end() ? nullptr : it->second.get();
  }
  void Broadcast(Room& room, const Frame& m);
  void FailRoom(Room& room, const Status& s);
  bool TakeNewRoomToken(const std::string& client_address);

  asio::strand<asio::io_context::executor_type> strand_;
  SyncOptions options_;
  SyncStats stats_;
  std::map<std::string, std::unique_ptr<Room>> rooms_;
  RoomCreationLimiter new_rooms_;  // keyed by ClientKey (IPv6 by /64), bounded
  uint64_t last_conn_id_ = 0;
  bool shutting_down_ = false;
};

// One WebSocket peer. Every handler runs on the service's strand; the object lives as long
// as an operation or its room holds it.
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(std::shared_ptr<SyncService::Impl> service, beast::tcp_stream stream)
      : service_(std::move(service)), ws_(std::move(stream)), id_(service_->NextConnectionId()) {}

  uint64_t id() const { return id_; }
  // Whether a new SyncStep1 answer gets the allowance (no earlier one is still queued).
  bool AnswerCreditFree() const { return answer_bytes_queued_ == 0; }
  void Hold(std::shared_ptr<void> hold) { hold_ = std::move(hold); }

  void Start(http::request<http::string_body> request) {
    request_ = std::move(request);
    const SyncOptions& o = service_->options();
    beast::get_lowest_layer(ws_).expires_never();
    websocket::stream_base::timeout t{};
    t.handshake_timeout = std::chrono::seconds(30);
    t.idle_timeout = std::chrono::seconds(o.idle_timeout_s);
    t.keep_alive_pings = true;
    ws_.set_option(t);
    // The limit is enforced in OnRead (kCloseMessageTooBig with a reason): Beast's own
    // would close with 1009, which y-websocket retries forever.
    ws_.read_message_max(0);
    beast::error_code ep_ec;
    const auto ep = beast::get_lowest_layer(ws_).socket().remote_endpoint(ep_ec);
    if (!ep_ec) client_address_ = ep.address().to_string();
    ws_.binary(true);
    ws_.set_option(websocket::stream_base::decorator([](websocket::response_type& res) {
      res.set(http::field::server, "pocket-collab");
    }));
    std::string_view raw(request_.target().data(), request_.target().size());
    const std::string& prefix = o.path_prefix;
    if (!prefix.empty() && raw.substr(0, prefix.size()) == prefix) raw.remove_prefix(prefix.size());
    auto target = ParseRoomTarget(raw);
    const bool ok = target.ok();
    if (ok) target_ = std::move(target).value();
    const bool authorized = ok && service_->Authorized(target_);
    ws_.async_accept(request_, asio::bind_executor(
        service_->strand(), [self = shared_from_this(), ok,
                             authorized](beast::error_code ec) {
          self->OnAccept(ec, ok, authorized);
        }));
  }

  // `answer`: part of the answer to the peer's SyncStep1 (the room's stored state), which is
  // allowed on top of max_queued_bytes while it drains: a document larger than the limit
  // would otherwise close every joining peer (1013), and y-websocket would reconnect and ask
  // again forever. One answer at a time has the allowance (AnswerCreditFree()).
  void Send(const Frame& m, bool answer = false) {
    if (closing_ || dropped_) return;
    queued_bytes_ += m->size();
    if (answer) answer_bytes_queued_ += m->size();
    queue_.push_back({m, answer});
    if (queued_bytes_ > service_->options().max_queued_bytes + answer_bytes_queued_) {
      PK_LOG(kWarning) << "sync: closing slow peer " << id_ << " in room '" << target_.room
                       << "' (" << queued_bytes_ << " bytes queued)";
      queue_.clear();
      queued_bytes_ = 0;
      answer_bytes_queued_ = 0;
      Close(websocket::close_code::try_again_later);
      return;
    }
    if (!writing_) DoWrite();
  }

  // Sends what is queued, then closes with `code`.
  void Close(websocket::close_code code) { Close(static_cast<uint16_t>(code)); }
  void Close(uint16_t code, std::string reason = "") {
    if (dropped_) return;
    closing_ = true;
    if (writing_) {
      if (!close_after_write_) {
        close_after_write_ = code;
        close_reason_ = CloseReason(std::move(reason));
      }
      return;
    }
    if (close_started_) return;
    close_started_ = true;
    if (!reason.empty()) close_reason_ = CloseReason(std::move(reason));
    websocket::close_reason cr(code);
    cr.reason = close_reason_;
    ws_.async_close(cr,
                    asio::bind_executor(service_->strand(),
                                        [self = shared_from_this()](beast::error_code) {
                                          self->Drop();
                                        }));
  }

 private:
  void OnAccept(beast::error_code ec, bool target_ok, bool authorized) {
    if (ec) return Drop();
    if (!target_ok || !authorized || service_->shutting_down()) {
      PK_LOG(kInfo) << "sync: denied connection to room '" << target_.room << "'";
      Send(MakeMessage(EncodePermissionDenied(
          target_ok ? "invalid or missing access token" : "bad room path")));
      Close(kClosePermissionDenied);
      return;
    }
    auto room = service_->Join(shared_from_this(), id_, target_.room, client_address_);
    if (!room.ok()) {
      if (room.status().code() == StatusCode::kResourceExhausted) {
        Close(kCloseTooManyNewRooms, "too many new rooms from this address; try again later");
        return;
      }
      PK_LOG(kError) << "sync: " << room.status().ToString();
      Close(websocket::close_code::internal_error);
      return;
    }
    joined_ = true;
    Send(MakeMessage(EncodeSyncStep1(service_->StateVector(**room))));
    auto states = (*room)->awareness.States();
    if (!states.empty()) {
      Send(MakeMessage(EncodeAwarenessMessage(EncodeAwarenessUpdate(states))));
    }
    DoRead();
  }

  void DoRead() {
    ws_.async_read_some(buffer_, kReadChunkBytes,
                        asio::bind_executor(service_->strand(),
                                            [self = shared_from_this()](beast::error_code ec,
                                                                        size_t) {
                                              self->OnRead(ec);
                                            }));
  }

  void OnRead(beast::error_code ec) {
    if (ec) return Drop();
    const size_t limit = service_->options().max_message_bytes;
    if (buffer_.size() > limit) {
      ++service_->stats().messages_too_big;
      PK_LOG(kWarning) << "sync: closing peer " << id_ << " in room '" << target_.room
                       << "': message over " << limit << " bytes";
      buffer_.consume(buffer_.size());
      Close(kCloseMessageTooBig, "message over the server's limit of " + std::to_string(limit) +
                                     " bytes (document too large for this server)");
      return;
    }
    if (!ws_.is_message_done()) return DoRead();
    if (!ws_.got_binary()) {
      Reject("text frame");
      return;
    }
    auto data = buffer_.cdata();
    ByteSpan bytes(static_cast<const uint8_t*>(data.data()), data.size());
    Status s = Handle(bytes);
    buffer_.consume(buffer_.size());
    if (!s.ok()) {
      Reject(s.message());
      return;
    }
    if (!closing_) DoRead();
  }

  void Reject(std::string_view why) {
    ++service_->stats().messages_rejected;
    PK_LOG(kWarning) << "sync: closing peer " << id_ << " in room '" << target_.room
                     << "': " << why;
    Close(websocket::close_code::policy_error);
  }

  Status Handle(ByteSpan bytes) {
    PK_ASSIGN_OR_RETURN(Message m, DecodeMessage(bytes));
    switch (m.type) {
      case MessageType::kSync:
        if (m.sync_type == SyncType::kStep1) {
          service_->OnStep1(*this, target_.room);
        } else {
          service_->OnUpdate(*this, target_.room, m.payload);
        }
        break;
      case MessageType::kAwareness:
        service_->OnAwareness(*this, id_, target_.room, m.payload);
        break;
      case MessageType::kQueryAwareness:
        service_->OnQueryAwareness(*this, target_.room);
        break;
      case MessageType::kAuth:
        break;  // clients have nothing to say here
    }
    return Status::Ok();
  }

  void DoWrite() {
    if (queue_.empty() || dropped_) return;
    writing_ = true;
    inflight_ = std::move(queue_.front().frame);
    if (queue_.front().answer) {
      answer_bytes_queued_ -= std::min(answer_bytes_queued_, inflight_->size());
    }
    queue_.pop_front();
    queued_bytes_ -= std::min(queued_bytes_, inflight_->size());
    ws_.async_write(asio::buffer(*inflight_),
                    asio::bind_executor(service_->strand(),
                                        [self = shared_from_this()](beast::error_code ec, size_t) {
                                          self->OnWrite(ec);
                                        }));
  }

  void OnWrite(beast::error_code ec) {
    writing_ = false;
    inflight_.reset();
    if (ec) return Drop();
    if (!queue_.empty()) return DoWrite();
    if (close_after_write_) {
      const uint16_t code = *close_after_write_;
      close_after_write_.reset();
      Close(code, close_reason_);
    }
  }

  void Drop() {
    if (dropped_) return;
    dropped_ = true;
    queue_.clear();
    if (joined_) service_->Leave(id_, target_.room);
    joined_ = false;
    beast::error_code ignored;
    beast::get_lowest_layer(ws_).socket().close(ignored);
  }

  std::shared_ptr<SyncService::Impl> service_;
  websocket::stream<beast::tcp_stream> ws_;
  uint64_t id_;
  http::request<http::string_body> request_;
  RoomTarget target_;
  beast::flat_buffer buffer_;
  struct Queued {
    Frame frame;
    bool answer;
  };
  std::deque<Queued> queue_;
  Frame inflight_;
  size_t queued_bytes_ = 0;
  size_t answer_bytes_queued_ = 0;  // of queued_bytes_, SyncStep1 answer still to be written
  bool writing_ = false;
  bool closing_ = false;
  bool close_started_ = false;
  bool dropped_ = false;
  bool joined_ = false;
  std::optional<uint16_t> close_after_write_;
  std::string close_reason_;
  std::string client_address_;
  std::shared_ptr<void> hold_;  // the listener's place for this connection (HandleUpgrade)
};

Result<Room*> SyncService::Impl::Join(const std::shared_ptr<Connection>& conn, uint64_t conn_id,
                                      const std::string& name,
                                      const std::string& client_address) {
  Room* room = Find(name);
  if (room == nullptr) {
    auto r = std::make_unique<Room>();
    r->name = name;
    std::string dir;
    if (!options_.data_dir.empty()) dir = options_.data_dir + "/" + EscapeRoomName(name);
    RoomStoreOptions store_options = options_.store;
    if (!store_options.validate) store_options.validate = IsDecodableUpdate;
    auto store = RoomStore::Open(dir, store_options,
                                 options_.merge ? options_.merge : MergeUpdatesWithCrdt);
    if (!store.ok()) return store.status().WithContext("room '" + name + "'");
    if (store->updates().empty() && !TakeNewRoomToken(client_address)) {
      const uint64_t n = ++stats_.rooms_rate_limited;
      if ((n & (n - 1)) == 0) {  // 1st, 2nd, 4th, ...: a flood does not flood the log
        PK_LOG(kWarning) << "sync: refused a new room to " << client_address << " (" << n
                         << " refusals so far): over the room-creation limit";
      }
      return Status::ResourceExhausted("room '" + name + "': " + client_address +
                                       " creates rooms faster than allowed");
    }
    const RecoveryReport& rec = store->recovery();
    stats_.recovery_dropped_bytes += store->recovered_dropped_bytes();
    if (rec.lost_data()) {
      ++stats_.rooms_recovered_with_loss;
      PK_LOG(kWarning) << "sync: room '" << name << "' recovered: " << rec.Summary();
    } else if (rec.torn_tail_bytes > 0 || rec.stray_temp_files > 0) {
      PK_LOG(kInfo) << "sync: room '" << name << "' recovered: " << rec.Summary();
    }
    r->store.emplace(std::move(store).value());
    room = r.get();
    rooms_[name] = std::move(r);
    ++stats_.rooms_loaded;
  }
  room->conns[conn_id] = conn;
  ++stats_.connections_open;
  return room;
}

bool SyncService::Impl::TakeNewRoomToken(const std::string& client_address) {
  return new_rooms_.Take(client_address);
}

const Bytes& SyncService::Impl::StateVector(Room& room) {
  if (!room.state_vector) {
    const std::vector<Bytes>& updates = room.store->updates();
    Result<Bytes> sv = EmptyStateVector();
    if (updates.size() == 1) {
      sv = crdt::EncodeStateVectorFromUpdate(updates[0]);
    } else if (updates.size() > 1) {
      std::vector<std::span<const uint8_t>> spans(updates.begin(), updates.end());
      auto merged = crdt::MergeUpdates(spans);
      sv = merged.ok() ? crdt::EncodeStateVectorFromUpdate(*merged) : merged.status();
    }
    if (!sv.ok()) {
      PK_LOG(kWarning) << "sync: room '" << room.name << "': state vector: "
                       << sv.status().message() << "; asking clients for everything";
    }
    room.state_vector = sv.ok() ? std::move(sv).value() : EmptyStateVector();
  }
  return *room.state_vector;
}

void SyncService::Impl::Leave(uint64_t conn_id, const std::string& name) {
  Room* room = Find(name);
  if (room == nullptr || room->conns.erase(conn_id) == 0) return;
  --stats_.connections_open;
  auto removed = room->awareness.RemoveConnection(conn_id);
  if (!removed.empty()) {
    Broadcast(*room, MakeMessage(EncodeAwarenessMessage(EncodeAwarenessUpdate(removed))));
  }
  if (room->conns.empty()) {
    Flush(name);
    // A room nobody wrote to leaves no directory behind (inodes are not free).
    if (Status s = room->store->RemoveIfEmpty(); !s.ok()) {
      PK_LOG(kWarning) << "sync: room '" << name << "': " << s.ToString();
    }
    rooms_.erase(name);
    --stats_.rooms_loaded;
  }
}

void SyncService::Impl::Broadcast(Room& room, const Frame& m) {
  // Send() may close a slow peer but never re-enters the room map.
  for (auto& [id, conn] : room.conns) conn->Send(m);
}

void SyncService::Impl::FailRoom(Room& room, const Status& s) {
  PK_LOG(kError) << "sync: room '" << room.name << "': " << s.ToString()
                 << "; closing its connections so peers resend their state";
  room.pending.clear();
  auto conns = room.conns;
  for (auto& [id, conn] : conns) conn->Close(websocket::close_code::internal_error);
}

void SyncService::Impl::OnUpdate(Connection& conn, const std::string& name, ByteSpan update) {
  Room* room = Find(name);
  if (room == nullptr) return;
  if (update.size() == EmptyUpdate().size() &&
      std::equal(update.begin(), update.end(), EmptyUpdate().begin())) {
    return;  // a client with nothing to add answering our SyncStep1
  }
  // A well-framed message can still carry a broken update; stored and relayed, it would
  // make every Yjs client in the room throw, now and after each restart. Decode it first.
  if (auto sv = crdt::EncodeStateVectorFromUpdate(update); !sv.ok()) {
    ++stats_.messages_rejected;
    PK_LOG(kWarning) << "sync: room '" << name << "': rejecting update: " << sv.status().message();
    conn.Close(websocket::close_code::policy_error);
    return;
  }
  ++stats_.updates_received;
  room->state_vector.reset();
  Status s = room->store->Append(update);
  if (!s.ok()) {
    if (s.code() == StatusCode::kInvalidArgument) {
      PK_LOG(kWarning) << "sync: " << s.message();
      conn.Close(websocket::close_code::too_big);
    } else {
      FailRoom(*room, s);
    }
    return;
  }
  room->pending.push_back(MakeMessage(EncodeSyncUpdate(update)));
  if (!room->flush_posted) {
    room->flush_posted = true;
    // Runs after the reads that already completed: one fsync for the whole batch.
    asio::post(strand_, [self = shared_from_this(), name] { self->Flush(name); });
  }
}

void SyncService::Impl::Flush(const std::string& name) {
  Room* room = Find(name);
  if (room == nullptr) return;
  room->flush_posted = false;
  if (room->pending.empty()) return;
  Status s = room->store->Sync();
  if (!s.ok()) return FailRoom(*room, s);
  std::vector<Frame> pending = std::move(room->pending);
  room->pending.clear();
  for (const auto& m : pending) Broadcast(*room, m);
  s = room->store->MaybeCompact();
  if (!s.ok()) {
    PK_LOG(kWarning) << "sync: room '" << name << "': compaction: " << s.ToString();
  }
}

void SyncService::Impl::OnStep1(Connection& conn, const std::string& name) {
  // Answer only with durable state: flush what is pending first.
  Flush(name);
  Room* room = Find(name);
  if (room == nullptr) return;
  const bool answer = conn.AnswerCreditFree();
  for (const Bytes& u : room->store->updates()) {
    conn.Send(MakeMessage(EncodeSyncUpdate(u)), answer);
  }
  conn.Send(MakeMessage(EncodeSyncStep2(EmptyUpdate())), answer);
}

void SyncService::Impl::OnAwareness(Connection& conn, uint64_t conn_id, const std::string& name,
                                    ByteSpan update) {
  Room* room = Find(name);
  if (room == nullptr) return;
  auto accepted = room->awareness.Apply(update, conn_id);
  if (!accepted.ok()) {
    ++stats_.messages_rejected;
    PK_LOG(kWarning) << "sync: room '" << name << "': " << accepted.status().message();
    conn.Close(websocket::close_code::policy_error);
    return;
  }
  if (accepted->empty()) return;
  Broadcast(*room, MakeMessage(EncodeAwarenessMessage(EncodeAwarenessUpdate(*accepted))));
}

void SyncService::Impl::OnQueryAwareness(Connection& conn, const std::string& name) {
  Room* room = Find(name);
  if (room == nullptr) return;
  conn.Send(MakeMessage(EncodeAwarenessMessage(EncodeAwarenessUpdate(room->awareness.States()))));
}

void SyncService::Impl::Shutdown() {
  shutting_down_ = true;
  std::vector<std::shared_ptr<Connection>> all;
  for (auto& [name, room] : rooms_) {
    for (auto& [id, conn] : room->conns) all.push_back(conn);
  }
  for (auto& c : all) c->Close(websocket::close_code::going_away);
}

std::shared_ptr<SyncService> SyncService::Create(asio::io_context& io, SyncOptions options) {
  return std::shared_ptr<SyncService>(
      new SyncService(std::make_shared<Impl>(io, std::move(options))));
}

SyncService::~SyncService() = default;

void SyncService::HandleUpgrade(beast::tcp_stream stream, http::request<http::string_body> request,
                                std::shared_ptr<void> hold) {
  auto conn = std::make_shared<Connection>(impl_, std::move(stream));
  conn->Hold(std::move(hold));
  asio::dispatch(impl_->strand(), [conn, req = std::move(request)]() mutable {
    conn->Start(std::move(req));
  });
}

void SyncService::Shutdown() {
  asio::dispatch(impl_->strand(), [impl = impl_] { impl->Shutdown(); });
}

void SyncService::GetStats(std::function<void(SyncStats)> done) {
  asio::dispatch(impl_->strand(), [impl = impl_, done = std::move(done)] { done(impl->stats()); });
}

}  // namespace pocket::sync
