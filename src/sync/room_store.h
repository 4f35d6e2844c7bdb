// Durable storage of one room's document as Yjs v1 updates (opaque bytes here).
//
// Layout, in the room's directory DATA/<EscapeRoomName(room)>/:
//   snapshot  one record: the room's state merged into a single update at the last
//             compaction; replaced atomically (temp file, fsync, rename, fsync dir).
//   log       the updates received since, appended in arrival order.
// A record is  u32 length (LE) | u32 crc32c(length bytes | payload) (LE) | payload.
//
// Recovery (Open) keeps every record that verifies and sets aside only what does not:
//  * snapshot: must be one complete record with a matching CRC (any length up to the file's
//    size: max_record_bytes does not apply, so a snapshot Compact wrote always loads). An empty, corrupt or
//    non-regular (a directory) snapshot is renamed to snapshot.corrupt-<UTC time> and the room
//    loads from the log alone; history that was compacted into the lost snapshot is gone
//    from the server (clients that still hold it send it back when they sync).
//  * log: records are read in order; after one that does not verify, the scan moves forward
//    byte by byte to the next offset where a complete record verifies (length within
//    bounds, CRC over length + payload, payload accepted by RoomStoreOptions::validate) and
//    goes on from there. The bytes skipped are a corrupt range. The scan's work is bounded
//    (LogScanWorkBudget: 8 x the log's size + 4 MiB of CRC); when a resynchronisation
//    spends it, everything from that damage to the end is one corrupt range.
//  * a tail that looks like an interrupted append (fewer than 8 bytes, or a header whose
//    length runs past the end of the file, with nothing verifiable after it) is torn and
//    cut off. Fewer than 8 bytes are cut in place (ftruncate): no acknowledged record is
//    that short. A whole header may be an acknowledged last record with a damaged length,
//    so it is cut only by the rewrite below, after the copy.
//  * when there were corrupt ranges or a torn tail of 8 bytes or more, the recovered records
//    are written to log.tmp.<pid>, fsync'ed and renamed over log only after the original was
//    kept as log.corrupt-<UTC time> (a hard link, or a copy where links fail); the directory
//    is fsync'ed. The original bytes are never lost.
//  * stray snapshot.tmp.* / log.tmp.* files (a crash in the middle of a compaction or of a
//    recovery) are removed.
// What was dropped is in recovery() (the caller logs it).
//
// Empty rooms leave nothing on disk: the directory and the log are created on the first
// Append, and RemoveIfEmpty() deletes them again when no record was ever kept.
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
// True when a recovered payload is a well-formed update. Recovery treats a record that
// verifies by CRC but fails this as corrupt: after damage, the resynchronising scan can land
// on bytes inside a payload that happen to frame a record (user text can hold anything; such
// a record, if it also decodes, is no more than its author could have sent as an update).
using ValidateUpdateFn = std::function<bool(ByteSpan update)>;

struct RoomStoreOptions {
  // Compact once the log holds this many records (0: never).
  size_t compact_every_records = 500;
  // Log records larger than this are rejected on append and treated as corrupt on recovery.
  // Not the snapshot's limit: it merges every update and is bounded by its file's size.
  uint32_t max_record_bytes = 64u << 20;
  // Skip fsync (benchmarks of the network path only; never in production).
  bool fsync = true;
  // Null: every record whose CRC matches is accepted.
  ValidateUpdateFn validate;
};

// What recovery found and set aside. Byte counts are of the files as found on disk.
struct RecoveryReport {
  size_t snapshot_records = 0;   // 0 or 1
  size_t log_records = 0;        // records kept from the log
  size_t corrupt_ranges = 0;     // runs of log bytes that did not verify
  uint64_t corrupt_bytes = 0;    // their total size
  uint64_t torn_tail_bytes = 0;  // an interrupted last append, cut off
  bool snapshot_quarantined = false;
  std::string snapshot_problem;          // why, when quarantined
  size_t stray_temp_files = 0;           // snapshot.tmp.* / log.tmp.* removed
  std::vector<std::string> quarantined;  // paths of the files set aside
  // True when something acknowledged may have been lost (not for a torn tail alone).
  bool lost_data() const { return corrupt_ranges > 0 || snapshot_quarantined; }
  // One line for the log, e.g. "kept 12 log records; 1 corrupt range (40 bytes) quarantined
  // in DIR/log.corrupt-1700000000".
  std::string Summary() const;
};

// The log scan, pure (exposed for tests and the fuzzer). Offsets are into `data`.
struct LogScan {
  struct Record {
    size_t offset;  // of the header
    size_t size;    // payload bytes
  };
  struct Range {
    size_t offset, size;
  };
  std::vector<Record> records;
  std::vector<Range> corrupt;
  size_t torn_tail_offset;   // == data.size() when there is no torn tail
  uint64_t work = 0;         // bytes read by CRCs and `validate`
  bool out_of_work = false;  // the budget ran out: the last corrupt range runs to the end
};
// The scan's work (bytes it may run CRCs and `validate` over) is bounded by
// LogScanWorkBudget(data.size()): a clean log costs its size (twice with `validate`), and
// resynchronising after damage costs a CRC over the claimed length at every offset whose
// length is plausible, which crafted bytes could make O(size x 64 MiB). When the budget is
// spent, the rest of the log from the damage on is one corrupt range (quarantined whole).
inline constexpr uint64_t kScanWorkPerLogByte = 8;
inline constexpr uint64_t kScanWorkExtraBytes = 4u << 20;
uint64_t LogScanWorkBudget(size_t log_bytes);
LogScan ScanLog(ByteSpan data, uint32_t max_record_bytes, const ValidateUpdateFn& validate);

class RoomStore {
 public:
  // Recovers the contents of `dir` when it exists (see the top of this file); creates
  // nothing. IOError on file-system failure only: damaged contents are set aside, never an
  // error. An empty `dir` gives a store in memory only (same API, nothing durable).
  static Result<RoomStore> Open(std::string dir, RoomStoreOptions options, MergeUpdatesFn merge);

  RoomStore(RoomStore&& o) noexcept;
  RoomStore& operator=(RoomStore&&) = delete;
  RoomStore(const RoomStore&) = delete;
  ~RoomStore();

  // Writes one record (not yet durable), creating the directory and the log on first use.
  // InvalidArgument if over max_record_bytes.
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
  // Bytes of the log that recovery did not keep (corrupt ranges and a torn tail).
  uint64_t recovered_dropped_bytes() const {
    return recovery_.corrupt_bytes + recovery_.torn_tail_bytes;
  }
  const RecoveryReport& recovery() const { return recovery_; }

  // For a room being unloaded: when it holds no update, closes the log and removes the log
  // and the directory (left in place when anything else is in it, e.g. quarantined files).
  Status RemoveIfEmpty();

 private:
  RoomStore(std::string dir, RoomStoreOptions options, MergeUpdatesFn merge)
      : dir_(std::move(dir)), options_(options), merge_(std::move(merge)) {}
  Status Recover();
  Status RecoverSnapshot();
  Status RecoverLog();
  Status OpenLogForAppend();

  std::string dir_;
  RoomStoreOptions options_;
  MergeUpdatesFn merge_;
  int log_fd_ = -1;
  uint64_t log_size_ = 0;
  size_t log_records_ = 0;
  RecoveryReport recovery_;
  bool dirty_ = false;
  std::vector<Bytes> updates_;
};

// The record framing, exposed for tests: appends one record for `payload` to `out`.
void AppendRecord(ByteSpan payload, std::string& out);

// A room name as one safe directory name: [A-Za-z0-9_-] kept, everything else (including
// '.', '/', '%') as %XX; the empty name becomes "%". Injective, so rooms never collide.
std::string EscapeRoomName(std::string_view room);

}  // namespace pocket::sync
