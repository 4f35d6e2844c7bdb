#include "base/file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>

namespace pocket {
namespace {

Status Errno(std::string_view what, const std::string& path) {
  return Status::IOError(std::string(what) + " '" + path + "': " + std::strerror(errno));
}

bool Exists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

}  // namespace

Status SyncDirectoryOf(const std::string& path) {
  std::string dir = std::filesystem::path(path).parent_path().string();
  if (dir.empty()) dir = ".";
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Errno("open directory", dir);
  int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) return Errno("fsync directory", dir);
  return Status::Ok();
}

std::string AsideName(const std::string& path, std::string_view tag, std::time_t now,
                      std::initializer_list<std::string_view> companions) {
  std::tm tm{};
  gmtime_r(&now, &tm);
  char stamp[32];
  std::strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm);
  const std::string base = path + "." + std::string(tag) + "-" + stamp;
  auto taken = [&](const std::string& name) {
    if (Exists(name)) return true;
    for (std::string_view c : companions) {
      if (Exists(name + std::string(c))) return true;
    }
    return false;
  };
  std::string name = base;
  for (int n = 1; taken(name); ++n) name = base + "-" + std::to_string(n);
  return name;
}

Result<std::string> MoveAside(const std::string& path, std::string_view tag, std::time_t now,
                              std::initializer_list<std::string_view> companions) {
  const std::string target = AsideName(path, tag, now, companions);
  bool moved = false;
  auto move = [&](const std::string& from, const std::string& to) -> Status {
    if (!Exists(from)) return Status::Ok();
    if (::rename(from.c_str(), to.c_str()) != 0) {
      return Status::IOError("cannot move '" + from + "' to '" + to +
                             "': " + std::strerror(errno));
    }
    moved = true;
    return Status::Ok();
  };
  PK_RETURN_IF_ERROR(move(path, target));
  for (std::string_view c : companions) {
    PK_RETURN_IF_ERROR(move(path + std::string(c), target + std::string(c)));
  }
  if (!moved) return Status::NotFound("cannot move '" + path + "' aside: it does not exist");
  return target;
}

Result<std::string> KeepAside(const std::string& path, std::string_view tag, std::time_t now) {
  const std::string target = AsideName(path, tag, now);
  if (::link(path.c_str(), target.c_str()) != 0) {
    PK_ASSIGN_OR_RETURN(std::string bytes, ReadFile(path));
    PK_RETURN_IF_ERROR(WriteFileAtomic(target, bytes));  // fsyncs the directory
    return target;
  }
  PK_RETURN_IF_ERROR(SyncDirectoryOf(target));
  return target;
}

Result<MappedFile> MappedFile::Open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Errno("cannot open", path);
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    Status s = Errno("cannot stat", path);
    ::close(fd);
    return s;
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return Status::IOError("'" + path + "' is not a regular file");
  }
  MappedFile m;
  m.path_ = path;
  m.size_ = static_cast<size_t>(st.st_size);
  if (m.size_ > 0) {
    void* p = ::mmap(nullptr, m.size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      Status s = Errno("cannot mmap", path);
      ::close(fd);
      return s;
    }
    m.data_ = static_cast<const std::byte*>(p);
  }
  ::close(fd);
  return m;
}

MappedFile::MappedFile(MappedFile&& o) noexcept
    : data_(std::exchange(o.data_, nullptr)), size_(std::exchange(o.size_, 0)),
      path_(std::move(o.path_)) {}

MappedFile& MappedFile::operator=(MappedFile&& o) noexcept {
  if (this != &o) {
    if (data_) ::munmap(const_cast<std::byte*>(data_), size_);
    data_ = std::exchange(o.data_, nullptr);
    size_ = std::exchange(o.size_, 0);
    path_ = std::move(o.path_);
  }
  return *this;
}

void MappedFile::Release(const void* p, size_t n) const {
  const auto* b = static_cast<const std::byte*>(p);
  if (data_ == nullptr || b < data_ || n > size_ || b - data_ > static_cast<ptrdiff_t>(size_ - n)) {
    return;
  }
  const auto page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  const uintptr_t first = (reinterpret_cast<uintptr_t>(b) + page - 1) / page * page;
  const uintptr_t last = (reinterpret_cast<uintptr_t>(b) + n) / page * page;
  // A private read-only file mapping we never wrote: dropping pages loses nothing.
  if (last > first) ::madvise(reinterpret_cast<void*>(first), last - first, MADV_DONTNEED);
}

MappedFile::~MappedFile() {
  if (data_) ::munmap(const_cast<std::byte*>(data_), size_);
}

Result<std::string> ReadFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Errno("cannot open", path);
  std::string out;
  char buf[1 << 16];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      Status s = Errno("cannot read", path);
      ::close(fd);
      return s;
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

Status WriteFileAtomic(const std::string& path, std::string_view bytes) {
  PK_ASSIGN_OR_RETURN(AtomicFileWriter w, AtomicFileWriter::Create(path));
  PK_RETURN_IF_ERROR(w.Append(bytes));
  return w.Commit();
}

Result<AtomicFileWriter> AtomicFileWriter::Create(const std::string& path) {
  std::string tmp = path + ".tmp." + std::to_string(::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Errno("cannot create", tmp);
  return AtomicFileWriter(path, std::move(tmp), fd);
}

AtomicFileWriter::AtomicFileWriter(AtomicFileWriter&& o) noexcept
    : path_(std::move(o.path_)), tmp_(std::move(o.tmp_)), fd_(std::exchange(o.fd_, -1)),
      written_(o.written_) {}

AtomicFileWriter::~AtomicFileWriter() {
  if (fd_ >= 0) {
    ::close(fd_);
    ::unlink(tmp_.c_str());
  }
}

Status AtomicFileWriter::Append(std::string_view bytes) {
  if (fd_ < 0) return Status::Internal("write to a closed AtomicFileWriter for '" + path_ + "'");
  const char* p = bytes.data();
  size_t left = bytes.size();
  while (left > 0) {
    ssize_t n = ::write(fd_, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Errno("cannot write", tmp_);
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
  written_ += bytes.size();
  return Status::Ok();
}

Status AtomicFileWriter::Commit() {
  if (fd_ < 0) return Status::Internal("commit of a closed AtomicFileWriter for '" + path_ + "'");
  if (::fsync(fd_) != 0) return Errno("cannot fsync", tmp_);
  int rc = ::close(fd_);
  fd_ = -1;
  if (rc != 0) {
    ::unlink(tmp_.c_str());
    return Errno("cannot close", tmp_);
  }
  if (::rename(tmp_.c_str(), path_.c_str()) != 0) {
    Status s = Errno("cannot rename onto", path_);
    ::unlink(tmp_.c_str());
    return s;
  }
  return SyncDirectoryOf(path_);
}

}  // namespace pocket
