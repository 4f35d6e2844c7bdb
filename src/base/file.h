// Files: read-only memory maps, whole-file reads, and atomic writes (temp file in the
// same directory, fsync, rename) so a reader never sees a half-written file.
// Thread safety: MappedFile is immutable after Open(); the rest are free functions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <ctime>
#include <initializer_list>
#include <span>
#include <string>
#include <string_view>

#include "base/status.h"

namespace pocket {

// A read-only, private mapping of a whole file. Movable, not copyable; unmaps on
// destruction. An empty file maps to an empty span.
class MappedFile {
 public:
  // IOError naming `path` when it cannot be opened, stat'ed or mapped.
  static Result<MappedFile> Open(const std::string& path);

  MappedFile() = default;
  MappedFile(MappedFile&& o) noexcept;
  MappedFile& operator=(MappedFile&& o) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile();

  std::span<const std::byte> bytes() const { return {data_, size_}; }
  const std::byte* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }
  // Drops the pages lying wholly inside [p, p + n) from this process's resident memory
  // (madvise MADV_DONTNEED); touching them again reads them back from the file. For bytes
  // that were copied elsewhere (repacked weights), so RSS counts them once. No-op for a
  // range outside the mapping.
  void Release(const void* p, size_t n) const;

 private:
  const std::byte* data_ = nullptr;
  size_t size_ = 0;
  std::string path_;
};

// The whole file as bytes. IOError naming `path` on failure.
Result<std::string> ReadFile(const std::string& path);

// Writes `bytes` to `path` atomically: `path.tmp.<pid>` is written, fsync'ed and renamed
// over `path`; the directory is fsync'ed too. On failure the temp file is removed and
// `path` is untouched.
Status WriteFileAtomic(const std::string& path, std::string_view bytes);

// fsyncs the directory holding `path`, so an entry created, renamed or removed there is
// durable (the file's own fsync does not cover its name). IOError naming the directory.
Status SyncDirectoryOf(const std::string& path);

// Setting a bad file aside without deleting it: `path`.<tag>-<UTC YYYYMMDDTHHMMSSZ of now>,
// with -1, -2, ... appended while that name, or that name followed by any of `companions`
// (e.g. "-wal"), already exists. The name is free when this returns (not reserved).
std::string AsideName(const std::string& path, std::string_view tag, std::time_t now,
                      std::initializer_list<std::string_view> companions = {});
// Renames `path` to AsideName(path, tag, now, companions), and each `path`+companion that
// exists to the new name + companion; `path` itself may be missing when a companion is
// there. Returns the new name. IOError naming both paths when a rename fails; NotFound
// when neither `path` nor any companion exists. The directory is not fsync'ed.
Result<std::string> MoveAside(const std::string& path, std::string_view tag, std::time_t now,
                              std::initializer_list<std::string_view> companions = {});
// Keeps the current bytes of the regular file `path` at AsideName(path, tag, now) and
// leaves `path` in place: a hard link (no space) or, where links fail, a copy written with
// WriteFileAtomic. Replace `path` afterwards only by renaming a new file over it (writing
// in place would change the linked copy too). The directory is fsync'ed. Returns the name.
Result<std::string> KeepAside(const std::string& path, std::string_view tag, std::time_t now);

// Streaming form of WriteFileAtomic for large outputs. Nothing appears at `path` until
// Commit() succeeds; destroying an uncommitted writer removes the temp file.
class AtomicFileWriter {
 public:
  static Result<AtomicFileWriter> Create(const std::string& path);
  AtomicFileWriter(AtomicFileWriter&& o) noexcept;
  AtomicFileWriter& operator=(AtomicFileWriter&&) = delete;
  AtomicFileWriter(const AtomicFileWriter&) = delete;
  ~AtomicFileWriter();

  Status Append(std::string_view bytes);
  Status Append(std::span<const std::byte> bytes) {
    return Append(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
  }
  uint64_t bytes_written() const { return written_; }
  Status Commit();

 private:
  AtomicFileWriter(std::string path, std::string tmp, int fd)
      : path_(std::move(path)), tmp_(std::move(tmp)), fd_(fd) {}
  std::string path_, tmp_;
  int fd_ = -1;
  uint64_t written_ = 0;
};

}  // namespace pocket
