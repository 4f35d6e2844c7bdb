// Durable storage of one room's document as Yjs v1 updates (opaque bytes here).
//
// Layout, in the room's directory DATA/<EscapeRoomName(room)>/:
//   snapshot  one record: the room's state merged into a single update at the last
//             compaction; replaced atomically (temp file, fsync, rename, fsync dir).
//   log       the updates received since, appended in arrival order.
// A record is  u32 length (LE) | u32 crc32c(length bytes | payload) (LE) | payload.
//
// Recovery (Open) reads the snapshot, then log records up to the first one that is torn
// (shorter than its header says) or fails its CRC; the log is truncated there, so a crash
// in the middle of an append loses only that unacknowledged update. Updates are idempotent,
// so a crash between a snapshot rename and the log truncation only replays some twice.
//
// Durability contract: an update is durable once Sync() returned OK after its Append();
// the sync service calls Sync() before it broadcasts (acknowledges) anything it appended.
// Thread safety: none; one room's store is used from the room's strand only.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "base/status.h"
#include "sync/wire.h"

namespace pocket::sync {

// Merges Yjs v1 updates into one (crdt::MergeUpdates in production).
using MergeUpdatesFn = std::function<Result<Bytes>(const std::vector<Bytes>& updates)>;

struct RoomStoreOptions {
  // Compact once the log holds this many records (0: never).
  size_t compact_every_records = 500;
  // Records larger than this are rejected on append and treated as corrupt on recovery.
  uint32_t max_record_bytes = 64u << 20;
  // Skip fsync (benchmarks of the network path only; never in production).
  bool fsync = true;
};

class RoomStore {
 public:
  // Creates the directory when missing and recovers its contents. IOError on file-system
  // failure, Corruption when the snapshot is unreadable (it is never torn: atomic rename).
  // An empty `dir` gives a store in memory only (same API, nothing durable).
  static Result<RoomStore> Open(std::string dir, RoomStoreOptions options, MergeUpdatesFn merge);

  RoomStore(RoomStore&& o) noexcept;
  RoomStore& operator=(RoomStore&&) = delete;
  RoomStore(const RoomStore&) = delete;
  ~RoomStore();

  // Writes one record (not yet durable). InvalidArgument if over max_record_bytes.
  Status Append(ByteSpan update);
  // fsyncs the log: every Append before it is durable once this returns OK.
  Status Sync();
  // When the log is long enough and a merge function is set, merges snapshot + log into a
  // new snapshot and truncates the log. Call after Sync().
  Status MaybeCompact();
  Status Compact();

  // The recovered + appended updates in order (snapshot first): the room's whole state.
  const std::vector<Bytes>& updates() const { return updates_; }
  size_t log_records() const { return log_records_; }
  // Bytes dropped from the end of the log by recovery (a torn or corrupt tail).
  uint64_t recovered_dropped_bytes() const { return dropped_bytes_; }

 private:
  RoomStore(std::string dir, RoomStoreOptions options, MergeUpdatesFn merge)
      : dir_(std::move(dir)), options_(options), merge_(std::move(merge)) {}
  Status Recover();

  std::string dir_;
  RoomStoreOptions options_;
  MergeUpdatesFn merge_;
  int log_fd_ = -1;
  uint64_t log_size_ = 0;
  size_t log_records_ = 0;
  uint64_t dropped_bytes_ = 0;
  bool dirty_ = false;
  std::vector<Bytes> updates_;
};

// The record framing, exposed for tests: appends one record for `payload` to `out`.
void AppendRecord(ByteSpan payload, std::string& out);

// A room name as one safe directory name: [A-Za-z0-9_-] kept, everything else (including
// '.', '/', '%') as %XX; the empty name becomes "%". Injective, so rooms never collide.
std::string EscapeRoomName(std::string_view room);

}  // namespace pocket::sync
