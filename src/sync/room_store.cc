#include "sync/room_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

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

// Parses records from `data` until the end or the first bad one; returns the offset where
// the valid prefix ends.
size_t ParseRecords(ByteSpan data, uint32_t max_record_bytes, std::vector<Bytes>& out) {
  size_t pos = 0;
  while (data.size() - pos >= kHeaderBytes) {
    const uint8_t* h = data.data() + pos;
    const uint32_t len = GetU32(h);
    if (len > max_record_bytes || data.size() - pos - kHeaderBytes < len) break;
    ByteSpan payload = data.subspan(pos + kHeaderBytes, len);
    if (RecordCrc(h, payload) != GetU32(h + 4)) break;
    out.emplace_back(payload.begin(), payload.end());
    pos += kHeaderBytes + len;
  }
  return pos;
}

// Makes a newly created entry in `dir` durable (the file data alone is not enough).
Status SyncDirectory(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Errno("open directory", dir);
  const int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) return Errno("fsync directory", dir);
  return Status::Ok();
}

ByteSpan AsBytes(const std::string& s) {
  return ByteSpan(reinterpret_cast<const uint8_t*>(s.data()), s.size());
}

}  // namespace

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

Result<RoomStore> RoomStore::Open(std::string dir, RoomStoreOptions options,
                                  MergeUpdatesFn merge) {
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
      dropped_bytes_(o.dropped_bytes_),
      dirty_(o.dirty_),
      updates_(std::move(o.updates_)) {
  o.log_fd_ = -1;
}

RoomStore::~RoomStore() {
  if (log_fd_ >= 0) ::close(log_fd_);
}

Status RoomStore::Recover() {
  if (dir_.empty()) return Status::Ok();
  std::error_code ec;
  const bool created = std::filesystem::create_directories(dir_, ec);
  if (ec) return Status::IOError("room store: create '" + dir_ + "': " + ec.message());
  const std::string snapshot_path = dir_ + "/snapshot";
  if (std::filesystem::exists(snapshot_path, ec)) {
    PK_ASSIGN_OR_RETURN(std::string snap, ReadFile(snapshot_path));
    std::vector<Bytes> recs;
    const size_t end = ParseRecords(AsBytes(snap), options_.max_record_bytes, recs);
    if (end != snap.size() || recs.size() != 1) {
      return Status::Corruption("room store: snapshot '" + snapshot_path +
                                "' is not one valid record");
    }
    updates_.push_back(std::move(recs[0]));
  }
  const std::string log_path = dir_ + "/log";
  const bool log_existed = std::filesystem::exists(log_path, ec);
  log_fd_ = ::open(log_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (log_fd_ < 0) return Errno("open", log_path);
  if (options_.fsync && !log_existed) {
    PK_RETURN_IF_ERROR(SyncDirectory(dir_));
    if (created) {
      const std::string parent = std::filesystem::path(dir_).parent_path().string();
      PK_RETURN_IF_ERROR(SyncDirectory(parent.empty() ? "." : parent));
    }
  }
  PK_ASSIGN_OR_RETURN(std::string log, ReadFile(log_path));
  const size_t before = updates_.size();
  const size_t end = ParseRecords(AsBytes(log), options_.max_record_bytes, updates_);
  log_records_ = updates_.size() - before;
  log_size_ = end;
  dropped_bytes_ = log.size() - end;
  if (dropped_bytes_ > 0) {
    PK_LOG(kWarning) << "room store: '" << log_path << "': dropped " << dropped_bytes_
                     << " bytes of torn or corrupt tail after " << log_records_ << " records";
    if (::ftruncate(log_fd_, static_cast<off_t>(end)) != 0) return Errno("truncate", log_path);
    if (::fsync(log_fd_) != 0) return Errno("fsync", log_path);
  }
  if (::lseek(log_fd_, static_cast<off_t>(end), SEEK_SET) < 0) return Errno("seek", log_path);
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
  if (!dirty_) return Status::Ok();
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
  PK_RETURN_IF_ERROR(Sync());
  PK_ASSIGN_OR_RETURN(Bytes merged, merge_(updates_));
  if (dir_.empty()) {
    log_records_ = 0;
    updates_.clear();
    updates_.push_back(std::move(merged));
    return Status::Ok();
  }
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
