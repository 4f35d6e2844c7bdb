// The room log and snapshot: framing, recovery (scan, resynchronise, quarantine) and
// compaction. What the records mean is left to the caller (merge and validate functions).
#include "sync/room_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <limits>
#include <optional>

#include "base/file.h"
#include "base/log.h"
#include "sync/crc32c.h"

namespace pocket::sync {
namespace {

constexpr size_t kHeaderBytes = 8;

Status Errno(std::string_view what, const std::string& path) {
  return Status::IOError("room store: " + std::string(what) + " '" + path +
                         "': " + std::strerror(errno));
}

void PutU32(uint32_t v, uint8_t* p) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
uint32_t GetU32(const uint8_t* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= static_cast<uint32_t>(p[i]) << (8 * i);
  return v;
}

uint32_t RecordCrc(const uint8_t* len_bytes, ByteSpan payload) {
  return Crc32c(payload, Crc32c(ByteSpan(len_bytes, 4)));
}

// The payload size of a complete record at `pos` that verifies, or nullopt. Cheap checks
// first (length within the limit and within the bytes left); the CRC and `validate` are
// charged to `work` (bytes they read), and are not run when `work` cannot pay: then
// `*out_of_work` is set and nullopt returned.
std::optional<size_t> VerifiedRecordAt(ByteSpan data, size_t pos, uint32_t max_record_bytes,
                                       const ValidateUpdateFn& validate, uint64_t& work,
                                       bool* out_of_work) {
  if (data.size() - pos < kHeaderBytes) return std::nullopt;
  const uint8_t* h = data.data() + pos;
  const uint32_t len = GetU32(h);
  if (len > max_record_bytes || data.size() - pos - kHeaderBytes < len) return std::nullopt;
  const uint64_t cost = 4 + uint64_t{len} * (validate ? 2 : 1);
  if (cost > work) {
    *out_of_work = true;
    return std::nullopt;
  }
  work -= cost;
  ByteSpan payload = data.subspan(pos + kHeaderBytes, len);
  if (RecordCrc(h, payload) != GetU32(h + 4)) return std::nullopt;
  if (validate && !validate(payload)) return std::nullopt;
  return len;
}

ByteSpan AsBytes(const std::string& s) {
  return ByteSpan(reinterpret_cast<const uint8_t*>(s.data()), s.size());
}

bool IsStrayTemp(const std::string& name) {
  // WriteFileAtomic's temp names are <path>.tmp.<pid>.
  return name.rfind("snapshot.tmp.", 0) == 0 || name.rfind("log.tmp.", 0) == 0;
}

}  // namespace

uint64_t LogScanWorkBudget(size_t log_bytes) {
  return kScanWorkPerLogByte * uint64_t{log_bytes} + kScanWorkExtraBytes;
}

LogScan ScanLog(ByteSpan data, uint32_t max_record_bytes, const ValidateUpdateFn& validate) {
  LogScan out;
  out.torn_tail_offset = data.size();
  uint64_t work = LogScanWorkBudget(data.size());
  bool out_of_work = false;
  auto verified = [&](size_t at) {
    return VerifiedRecordAt(data, at, max_record_bytes, validate, work, &out_of_work);
  };
  size_t pos = 0;
  while (pos < data.size()) {
    if (auto len = verified(pos)) {
      out.records.push_back({pos, *len});
      pos += kHeaderBytes + *len;
      continue;
    }
    // Resynchronise: the next offset where a whole record verifies. A false match needs a
    // 32-bit CRC to agree by chance (and `validate` to accept the payload). Every offset
    // whose length is plausible costs a CRC over that length, so the work is bounded:
    // past the budget the rest of the log is one corrupt range (kept in the quarantined
    // original, not in the live log).
    size_t next = pos + 1;
    while (!out_of_work && next < data.size() && !verified(next)) ++next;
    if (out_of_work) {
      out.corrupt.push_back({pos, data.size() - pos});
      out.out_of_work = true;
      break;
    }
    if (next < data.size()) {
      out.corrupt.push_back({pos, next - pos});
      pos = next;
      continue;
    }
    // Nothing verifies after `pos`. An interrupted append leaves a short header or a length
    // that runs past the end of the file; anything else is damage.
    const size_t rest = data.size() - pos;
    const bool torn = rest < kHeaderBytes || (GetU32(data.data() + pos) <= max_record_bytes &&
                                              GetU32(data.data() + pos) > rest - kHeaderBytes);
    if (torn) {
      out.torn_tail_offset = pos;
    } else {
      out.corrupt.push_back({pos, rest});
    }
    break;
  }
  out.work = LogScanWorkBudget(data.size()) - work;
  return out;
}

std::string RecoveryReport::Summary() const {
  std::string s = "kept " + std::to_string(snapshot_records) + " snapshot and " +
                  std::to_string(log_records) + " log records";
  if (snapshot_quarantined) s += "; snapshot set aside (" + snapshot_problem + ")";
  if (corrupt_ranges > 0) {
    s += "; " + std::to_string(corrupt_ranges) + " corrupt log range(s), " +
         std::to_string(corrupt_bytes) + " bytes, skipped";
  }
  if (torn_tail_bytes > 0) {
    s += "; torn tail of " + std::to_string(torn_tail_bytes) + " bytes cut off";
  }
  if (stray_temp_files > 0) {
    s += "; " + std::to_string(stray_temp_files) + " stray temp file(s) removed";
  }
  for (size_t i = 0; i < quarantined.size(); ++i) {
    s += (i == 0 ? "; quarantined in " : ", ") + quarantined[i];
  }
  return s;
}

void AppendRecord(ByteSpan payload, std::string& out) {
  uint8_t h[kHeaderBytes];
  PutU32(static_cast<uint32_t>(payload.size()), h);
  PutU32(RecordCrc(h, payload), h + 4);
  out.append(reinterpret_cast<const char*>(h), kHeaderBytes);
  out.append(reinterpret_cast<const char*>(payload.data()), payload.size());
}

std::string EscapeRoomName(std::string_view room) {
  if (room.empty()) return "%";
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : room) {
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
        c == '-') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

Result<RoomStore> RoomStore::Open(std::string dir, RoomStoreOptions options, MergeUpdatesFn merge) {
  RoomStore store(std::move(dir), options, std::move(merge));
  PK_RETURN_IF_ERROR(store.Recover());
  return store;
}

RoomStore::RoomStore(RoomStore&& o) noexcept
    : dir_(std::move(o.dir_)),
      options_(o.options_),
      merge_(std::move(o.merge_)),
      log_fd_(o.log_fd_),
      log_size_(o.log_size_),
      log_records_(o.log_records_),
      recovery_(std::move(o.recovery_)),
      dirty_(o.dirty_),
      updates_(std::move(o.updates_)) {
  o.log_fd_ = -1;
}

RoomStore::~RoomStore() {
  if (log_fd_ >= 0) ::close(log_fd_);
}

Status RoomStore::Recover() {
  if (dir_.empty()) return Status::Ok();
  struct stat st;
  if (::stat(dir_.c_str(), &st) != 0) {
    if (errno == ENOENT) return Status::Ok();  // nothing stored yet: created on first Append
    return Errno("stat", dir_);
  }
  if (!S_ISDIR(st.st_mode)) return Status::IOError("room store: '" + dir_ + "' is not a directory");
  // Iterated with increment(ec): the range-for's operator++ throws on a readdir error (a
  // damaged disk), and nothing in the sync service may throw.
  std::error_code ec;
  std::vector<std::string> stray;
  for (std::filesystem::directory_iterator it(dir_, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (IsStrayTemp(name)) stray.push_back(it->path().string());
  }
  if (ec) return Status::IOError("room store: list '" + dir_ + "': " + ec.message());
  for (const std::string& path : stray) {
    std::filesystem::remove_all(path, ec);
    if (ec) return Status::IOError("room store: remove '" + path + "': " + ec.message());
    ++recovery_.stray_temp_files;
  }
  PK_RETURN_IF_ERROR(RecoverSnapshot());
  return RecoverLog();
}

Status RoomStore::RecoverSnapshot() {
  const std::string path = dir_ + "/snapshot";
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return Status::Ok();
    return Errno("stat", path);
  }
  std::string problem;
  if (!S_ISREG(st.st_mode)) {
    problem = "not a regular file";
  } else {
    PK_ASSIGN_OR_RETURN(std::string snap, ReadFile(path));
    const ByteSpan data = AsBytes(snap);
    // Bounded by the file's size, not max_record_bytes: a snapshot merges every update
    // of the room, so it may be larger than any one of them, and one that Compact wrote
    // must always load.
    uint64_t work = std::numeric_limits<uint64_t>::max();  // one record, read once
    bool out_of_work = false;
    auto len = VerifiedRecordAt(data, 0, std::numeric_limits<uint32_t>::max(), options_.validate,
                                work, &out_of_work);
    if (snap.empty()) {
      problem = "empty";
    } else if (!len || kHeaderBytes + *len != snap.size()) {
      problem = "not one valid record in " + std::to_string(snap.size()) + " bytes";
    } else {
      updates_.emplace_back(data.begin() + kHeaderBytes, data.end());
      recovery_.snapshot_records = 1;
      return Status::Ok();
    }
  }
  // Set it aside under a new name (never deleted) and load from the log alone.
  PK_ASSIGN_OR_RETURN(std::string quarantine, MoveAside(path, "corrupt", std::time(nullptr)));
  if (options_.fsync) PK_RETURN_IF_ERROR(SyncDirectoryOf(path));
  recovery_.snapshot_quarantined = true;
  recovery_.snapshot_problem = std::move(problem);
  recovery_.quarantined.push_back(quarantine);
  return Status::Ok();
}

Status RoomStore::RecoverLog() {
  const std::string path = dir_ + "/log";
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return Status::Ok();
    return Errno("stat", path);
  }
  if (!S_ISREG(st.st_mode)) {
    PK_ASSIGN_OR_RETURN(std::string quarantine, MoveAside(path, "corrupt", std::time(nullptr)));
    if (options_.fsync) PK_RETURN_IF_ERROR(SyncDirectoryOf(path));
    ++recovery_.corrupt_ranges;
    recovery_.quarantined.push_back(quarantine);
    return Status::Ok();
  }
  PK_ASSIGN_OR_RETURN(std::string log, ReadFile(path));
  const ByteSpan data = AsBytes(log);
  const LogScan scan = ScanLog(data, options_.max_record_bytes, options_.validate);
  for (const auto& r : scan.records) {
    const auto payload = data.subspan(r.offset + kHeaderBytes, r.size);
    updates_.emplace_back(payload.begin(), payload.end());
  }
  recovery_.log_records = log_records_ = scan.records.size();
  recovery_.corrupt_ranges += scan.corrupt.size();
  for (const auto& c : scan.corrupt) recovery_.corrupt_bytes += c.size;
  recovery_.torn_tail_bytes = log.size() - scan.torn_tail_offset;

  // A tail of 8 bytes or more holds a whole header: it may be an acknowledged record whose
  // length field was damaged (pointing past the end), not an interrupted append, so it is
  // never cut without a copy. Only a partial header (< 8 bytes) is cut in place.
  if (!scan.corrupt.empty() || recovery_.torn_tail_bytes >= kHeaderBytes) {
    // Keep the original bytes first (a hard link costs no space; a copy where links are not
    // supported), make that durable, and only then replace the log with the verified records
    // (by rename: writing in place would change the linked copy too).
    PK_ASSIGN_OR_RETURN(std::string quarantine, KeepAside(path, "corrupt", std::time(nullptr)));
    recovery_.quarantined.push_back(quarantine);
    std::string kept;
    for (const auto& r : scan.records) {
      kept.append(log, r.offset, kHeaderBytes + r.size);
    }
    PK_RETURN_IF_ERROR(WriteFileAtomic(path, kept));  // temp, fsync, rename, fsync dir
    log_size_ = kept.size();
    return OpenLogForAppend();
  }
  log_size_ = scan.torn_tail_offset;
  PK_RETURN_IF_ERROR(OpenLogForAppend());
  if (recovery_.torn_tail_bytes > 0) {
    if (::ftruncate(log_fd_, static_cast<off_t>(log_size_)) != 0) return Errno("truncate", path);
    if (options_.fsync && ::fsync(log_fd_) != 0) return Errno("fsync", path);
  }
  return Status::Ok();
}

Status RoomStore::OpenLogForAppend() {
  const std::string log_path = dir_ + "/log";
  std::error_code ec;
  const bool created_dir = std::filesystem::create_directories(dir_, ec);
  if (ec) return Status::IOError("room store: create '" + dir_ + "': " + ec.message());
  struct stat st;
  const bool log_existed = ::lstat(log_path.c_str(), &st) == 0;
  log_fd_ = ::open(log_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (log_fd_ < 0) return Errno("open", log_path);
  if (options_.fsync && !log_existed) {
    PK_RETURN_IF_ERROR(SyncDirectoryOf(log_path));
    if (created_dir) PK_RETURN_IF_ERROR(SyncDirectoryOf(dir_));  // dir_'s own entry
  }
  if (::lseek(log_fd_, static_cast<off_t>(log_size_), SEEK_SET) < 0) return Errno("seek", log_path);
  return Status::Ok();
}

Status RoomStore::RemoveIfEmpty() {
  if (dir_.empty() || !updates_.empty()) return Status::Ok();
  if (log_fd_ >= 0) {
    ::close(log_fd_);
    log_fd_ = -1;
  }
  const std::string log_path = dir_ + "/log";
  if (::unlink(log_path.c_str()) != 0 && errno != ENOENT) return Errno("remove", log_path);
  // Fails with ENOTEMPTY when something else lives there (quarantined files): kept.
  if (::rmdir(dir_.c_str()) != 0 && errno != ENOENT && errno != ENOTEMPTY && errno != EEXIST) {
    return Errno("remove directory", dir_);
  }
  return Status::Ok();
}

Status RoomStore::Append(ByteSpan update) {
  if (update.size() > options_.max_record_bytes) {
    return Status::InvalidArgument("room store: update of " + std::to_string(update.size()) +
                                   " bytes exceeds the limit of " +
                                   std::to_string(options_.max_record_bytes));
  }
  if (dir_.empty()) {
    ++log_records_;
    updates_.emplace_back(update.begin(), update.end());
    return Status::Ok();
  }
  if (log_fd_ < 0) PK_RETURN_IF_ERROR(OpenLogForAppend());
  std::string rec;
  rec.reserve(kHeaderBytes + update.size());
  AppendRecord(update, rec);
  size_t done = 0;
  while (done < rec.size()) {
    ssize_t n = ::write(log_fd_, rec.data() + done, rec.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      // Cut a partial record so the log stays a valid prefix.
      Status s = Errno("append", dir_ + "/log");
      if (::ftruncate(log_fd_, static_cast<off_t>(log_size_)) == 0) {
        (void)::lseek(log_fd_, static_cast<off_t>(log_size_), SEEK_SET);
      }
      return s;
    }
    done += static_cast<size_t>(n);
  }
  log_size_ += rec.size();
  ++log_records_;
  dirty_ = true;
  updates_.emplace_back(update.begin(), update.end());
  return Status::Ok();
}

Status RoomStore::Sync() {
  if (!dirty_ || log_fd_ < 0) return Status::Ok();
  if (options_.fsync && ::fdatasync(log_fd_) != 0) return Errno("fsync", dir_ + "/log");
  dirty_ = false;
  return Status::Ok();
}

Status RoomStore::MaybeCompact() {
  if (!merge_ || options_.compact_every_records == 0 ||
      log_records_ < options_.compact_every_records) {
    return Status::Ok();
  }
  return Compact();
}

Status RoomStore::Compact() {
  if (!merge_) return Status::NotSupported("room store: no merge function to compact with");
  if (updates_.empty()) return Status::Ok();
  PK_RETURN_IF_ERROR(Sync());
  PK_ASSIGN_OR_RETURN(Bytes merged, merge_(updates_));
  if (dir_.empty()) {
    log_records_ = 0;
    updates_.clear();
    updates_.push_back(std::move(merged));
    return Status::Ok();
  }
  if (merged.size() > std::numeric_limits<uint32_t>::max()) {
    // The record's length field is 32 bits: keep the log as it is (still loadable).
    return Status::ResourceExhausted("room store: merged state of " +
                                     std::to_string(merged.size()) +
                                     " bytes does not fit one snapshot record (4 GiB)");
  }
  if (log_fd_ < 0) PK_RETURN_IF_ERROR(OpenLogForAppend());
  std::string snap;
  AppendRecord(merged, snap);
  PK_RETURN_IF_ERROR(WriteFileAtomic(dir_ + "/snapshot", snap));
  // The snapshot now holds everything in the log: truncate it. A crash before this point
  // replays the log onto the snapshot, which is harmless (updates are idempotent).
  if (::ftruncate(log_fd_, 0) != 0) return Errno("truncate", dir_ + "/log");
  if (::lseek(log_fd_, 0, SEEK_SET) < 0) return Errno("seek", dir_ + "/log");
  if (options_.fsync && ::fdatasync(log_fd_) != 0) return Errno("fsync", dir_ + "/log");
  log_size_ = 0;
  log_records_ = 0;
  updates_.clear();
  updates_.push_back(std::move(merged));
  return Status::Ok();
}

}  // namespace pocket::sync
