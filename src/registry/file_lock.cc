// flock-based locks (see file_lock.h). flock rather than fcntl record locks: fcntl locks are
// per process and dropped when any descriptor of the file closes, which would make two
// locks in one process (tests, a server pulling twice) silently share.
#include "registry/file_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace pocket::registry {
namespace {

Status Errno(const std::string& what, const std::string& path) {
  return Status::IOError(what + " " + path + ": " + std::strerror(errno));
}

// True when `path` still names the inode open on `fd` (gc may have unlinked it between our
// open and our flock; a lock on an unlinked file guards nothing).
bool StillLinked(int fd, const std::string& path) {
  struct stat a, b;
  if (::fstat(fd, &a) != 0 || ::stat(path.c_str(), &b) != 0) return false;
  return a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

Result<int> Lock(const std::string& path, FileLock::Mode mode, bool create, bool wait) {
  const int op = (mode == FileLock::Mode::kShared ? LOCK_SH : LOCK_EX) | (wait ? 0 : LOCK_NB);
  for (int attempt = 0; attempt < 1000; ++attempt) {
    const int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC | (create ? O_CREAT : 0), 0644);
    if (fd < 0) {
      if (errno == ENOENT && !create) return Status::NotFound(path + " does not exist");
      return Errno("cannot open lock file", path);
    }
    int rc;
    do {
      rc = ::flock(fd, op);
    } while (rc != 0 && errno == EINTR);
    if (rc != 0) {
      const int err = errno;
      ::close(fd);
      if (err == EWOULDBLOCK) return Status::ResourceExhausted(path + " is locked");
      errno = err;
      return Errno("cannot lock", path);
    }
    if (StillLinked(fd, path)) return fd;
    ::close(fd);
    if (!create) return Status::NotFound(path + " does not exist");
  }
  return Status::IOError("cannot lock " + path + ": it keeps being replaced");
}

}  // namespace

Result<FileLock> FileLock::Acquire(const std::string& path, Mode mode) {
  PK_ASSIGN_OR_RETURN(int fd, Lock(path, mode, /*create=*/true, /*wait=*/true));
  return FileLock(fd, path);
}

Result<FileLock> FileLock::TryAcquireExisting(const std::string& path, Mode mode) {
  PK_ASSIGN_OR_RETURN(int fd, Lock(path, mode, /*create=*/false, /*wait=*/false));
  return FileLock(fd, path);
}

FileLock& FileLock::operator=(FileLock&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = o.fd_;
    path_ = std::move(o.path_);
    o.fd_ = -1;
  }
  return *this;
}

FileLock::~FileLock() {
  if (fd_ >= 0) ::close(fd_);  // closing the last descriptor releases the flock
}

Status FileLock::UnlinkAndRelease() {
  Status s = Status::Ok();
  if (::unlink(path_.c_str()) != 0 && errno != ENOENT) s = Errno("cannot remove", path_);
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  return s;
}

}  // namespace pocket::registry
