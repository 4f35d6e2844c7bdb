// Advisory whole-file locks (flock) between processes sharing a store: a per-blob lock so
// two imports or pulls of one blob write it once, the index lock around read-modify-write of
// index.json, the store lock that keeps gc/verify (exclusive) out of imports (shared), and
// the lock a writer holds on its own temp file so gc can tell a live temp file from one a
// killed process left (a lock is released by the kernel when its holder dies).
// A lock file that gc may delete is handled by re-checking, after flock returns, that the
// path still names the locked inode (else the lock is retried on the new file).
// Called by the store. Thread safety: a FileLock is owned by one thread; flock locks belong
// to the open file description, so two FileLocks in one process exclude each other too.
#pragma once

#include <string>

#include "base/status.h"

namespace pocket::registry {

class FileLock {
 public:
  enum class Mode { kShared, kExclusive };

  // Opens (creating when missing, mode 0644) and locks `path`, waiting for other holders.
  // IOError naming the path.
  static Result<FileLock> Acquire(const std::string& path, Mode mode);
  // Same without waiting: NotFound when `path` does not exist, ResourceExhausted when
  // another holder has it.
  static Result<FileLock> TryAcquireExisting(const std::string& path, Mode mode);

  FileLock() = default;
  FileLock(FileLock&& o) noexcept : fd_(o.fd_), path_(std::move(o.path_)) { o.fd_ = -1; }
  FileLock& operator=(FileLock&& o) noexcept;
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;
  ~FileLock();  // unlocks

  // Unlinks the lock file while still holding it (gc of lock files). IOError naming it.
  Status UnlinkAndRelease();
  int fd() const { return fd_; }

 private:
  FileLock(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  int fd_ = -1;
  std::string path_;
};

}  // namespace pocket::registry
