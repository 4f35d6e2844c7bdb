// The local store (see store.h): blob writes (temp, hash, check, fsync, rename), the index
// as an OCI image index, import of a GGUF file, and the maintenance passes gc and verify.
// Lock order, always: store.lock, then a blob lock, then index.lock.
#include "registry/store.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <map>
#include <optional>
#include <set>

#include "base/file.h"
#include "base/json_limits.h"
#include "base/sha256.h"
#include "formats/gguf.h"
#include "registry/file_lock.h"
#include "registry/model_config.h"
#include "registry/staging.h"

namespace pocket::registry {
namespace {

namespace fs = std::filesystem;

// 1 MiB reads: past this size sha256 (~1-2 GB/s) dominates and syscalls are noise.
constexpr size_t kChunkBytes = 1 << 20;

Status Errno(const std::string& what, const std::string& path) {
  return Status::IOError(what + " " + path + ": " + std::strerror(errno));
}

std::string NowRfc3339() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }
  int Release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }

 private:
  int fd_;
};

// read() until `n` bytes or end of file; -1 on error.
ssize_t ReadFull(int fd, char* buf, size_t n) {
  size_t got = 0;
  while (got < n) {
    const ssize_t r = ::read(fd, buf + got, n - got);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return -1;
    if (r == 0) break;
    got += static_cast<size_t>(r);
  }
  return static_cast<ssize_t>(got);
}

Status WriteFull(int fd, const char* buf, size_t n, const std::string& path) {
  while (n > 0) {
    const ssize_t w = ::write(fd, buf, n);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) return Errno("cannot write", path);
    buf += w;
    n -= static_cast<size_t>(w);
  }
  return Status::Ok();
}

struct FileDigest {
  std::string digest;
  int64_t size = 0;
};

Result<FileDigest> HashFile(const std::string& path) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return Errno("cannot open", path);
  Sha256 sha;
  std::string buf(kChunkBytes, '\0');
  FileDigest out;
  while (true) {
    const ssize_t n = ReadFull(fd.get(), buf.data(), buf.size());
    if (n < 0) return Errno("cannot read", path);
    if (n == 0) break;
    sha.Update(std::string_view(buf.data(), static_cast<size_t>(n)));
    out.size += n;
  }
  const auto d = sha.Finish();
  out.digest = "sha256:" + ToHex(d.data(), d.size());
  return out;
}

// A temp file in <root>/tmp, locked by its writer (gc removes only unlocked ones) and
// removed on destruction unless committed.
class TempBlob {
 public:
  static Result<TempBlob> Create(const std::string& tmp_dir, std::string_view hex) {
    static std::atomic<uint64_t> counter{0};
    for (int attempt = 0; attempt < 100; ++attempt) {
      const std::string path = tmp_dir + "/" + std::string(hex.substr(0, 16)) + "." +
                               std::to_string(::getpid()) + "." +
                               std::to_string(counter.fetch_add(1)) + ".tmp";
      const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
      if (fd < 0 && errno == EEXIST) continue;
      if (fd < 0) return Errno("cannot create", path);
      ::flock(fd, LOCK_EX);  // advisory, for gc; a failure only makes the file look stale
      return TempBlob(fd, path);
    }
    return Status::IOError("cannot create a temp file in " + tmp_dir);
  }
  TempBlob(TempBlob&& o) noexcept : fd_(o.fd_), path_(std::move(o.path_)) { o.fd_ = -1; }
  TempBlob(const TempBlob&) = delete;
  ~TempBlob() {
    if (fd_ >= 0) {
      ::close(fd_);
      ::unlink(path_.c_str());
    }
  }
  int fd() const { return fd_; }
  const std::string& path() const { return path_; }
  // fsync, close, rename to `final_path`, fsync its directory.
  Status Commit(const std::string& final_path) {
    if (::fsync(fd_) != 0) return Errno("cannot fsync", path_);
    if (::rename(path_.c_str(), final_path.c_str()) != 0) {
      return Errno("cannot rename " + path_ + " to", final_path);
    }
    ::close(fd_);
    fd_ = -1;
    return SyncDirectoryOf(final_path);
  }

 private:
  TempBlob(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  int fd_;
  std::string path_;
};

bool IsHex64(std::string_view s) {
  if (s.size() != 64) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

std::string RefName(const Descriptor& d) {
  auto it = d.annotations.find(kRefNameAnnotation);
  return it == d.annotations.end() ? std::string() : it->second;
}

TagEntry EntryOf(const Descriptor& d) {
  TagEntry e;
  // Tags written by other tools may hold a bare tag or an invalid name: shown as given.
  const std::string name = RefName(d);
  if (auto ref = ParseModelRef(name); ref.ok()) {
    e.ref = *ref;
  } else {
    e.ref.name = name;
    e.ref.tag = "";
  }
  e.manifest_digest = d.digest;
  e.is_index = d.media_type == kOciIndexType;
  if (auto it = d.annotations.find(kSizeAnnotation); it != d.annotations.end()) {
    e.size_bytes = std::strtoll(it->second.c_str(), nullptr, 10);
  }
  if (auto it = d.annotations.find(kCreatedAnnotation); it != d.annotations.end()) {
    e.created = it->second;
  }
  return e;
}

std::string EntryKey(const TagEntry& e) {
  return e.ref.tag.empty() ? e.ref.name : e.ref.ToString();
}

}  // namespace

Result<std::string> DefaultStoreRoot() {
  if (const char* home = std::getenv("POCKET_HOME"); home && *home) return std::string(home);
  if (const char* data = std::getenv("XDG_DATA_HOME"); data && *data == '/') {
    return (fs::path(data) / "pocket").string();
  }
  if (const char* home = std::getenv("HOME"); home && *home == '/') {
    return (fs::path(home) / ".local" / "share" / "pocket").string();
  }
  return Status::NotFound(
      "no model store: set POCKET_HOME (or XDG_DATA_HOME or HOME) to an absolute directory");
}

Store::Store(std::string root) : root_(std::move(root)) {}

std::string Store::Path(std::string_view rel) const { return root_ + "/" + std::string(rel); }

std::string Store::BlobPath(std::string_view digest) const {
  return root_ + "/blobs/sha256/" + std::string(DigestHex(digest));
}

Status Store::EnsureLayout() const {
  for (const char* dir : {"blobs/sha256", "tmp", "locks"}) {
    std::error_code ec;
    fs::create_directories(Path(dir), ec);
    if (ec) {
      return Status::IOError("cannot create the model store at " + root_ + ": " + Path(dir) + ": " +
                             ec.message());
    }
  }
  const std::string layout = Path("oci-layout");
  if (::access(layout.c_str(), F_OK) != 0) {
    PK_RETURN_IF_ERROR(WriteFileAtomic(
        layout, std::string("{\"imageLayoutVersion\":\"") + kOciLayoutVersion + "\"}"));
  }
  if (::access(Path("index.json").c_str(), F_OK) != 0) {
    auto lock = LockIndex();
    if (!lock.ok()) return lock.status();
    if (::access(Path("index.json").c_str(), F_OK) != 0) PK_RETURN_IF_ERROR(WriteIndex(Index{}));
  }
  return Status::Ok();
}

Result<Index> Store::ReadIndex() const {
  const std::string path = Path("index.json");
  if (::access(path.c_str(), F_OK) != 0 && errno == ENOENT) return Index{};
  PK_ASSIGN_OR_RETURN(std::string bytes, ReadFile(path));
  return ParseIndex(bytes, path);
}

Status Store::WriteIndex(const Index& index) const {
  return WriteFileAtomic(Path("index.json"), SerializeIndex(index));
}

Result<FileLock> Store::LockStore(FileLock::Mode mode) const {
  return FileLock::Acquire(Path("locks/store.lock"), mode);
}

Result<FileLock> Store::LockIndex() const {
  return FileLock::Acquire(Path("locks/index.lock"), FileLock::Mode::kExclusive);
}

Result<FileLock> Store::LockBlob(std::string_view digest) const {
  return FileLock::Acquire(Path("locks/sha256-" + std::string(DigestHex(digest)) + ".lock"),
                           FileLock::Mode::kExclusive);
}

Result<bool> Store::PutBlobBytes(std::string_view bytes, std::string* digest) {
  *digest = DigestOf(bytes);
  const std::string hex(DigestHex(*digest));
  const std::string final_path = BlobPath(*digest);
  PK_ASSIGN_OR_RETURN(FileLock lock, LockBlob(*digest));
  if (HasBlob(*digest, static_cast<int64_t>(bytes.size()))) return false;
  PK_ASSIGN_OR_RETURN(TempBlob tmp, TempBlob::Create(Path("tmp"), hex));
  PK_RETURN_IF_ERROR(WriteFull(tmp.fd(), bytes.data(), bytes.size(), tmp.path()));
  PK_RETURN_IF_ERROR(tmp.Commit(final_path));
  return true;
}

Result<bool> Store::PutBlobFile(const std::string& path, const std::string& digest, int64_t size,
                                const std::function<void()>& while_locked) {
  const std::string hex(DigestHex(digest));
  const std::string final_path = BlobPath(digest);
  PK_ASSIGN_OR_RETURN(FileLock lock, LockBlob(digest));
  if (while_locked) while_locked();
  // A blob already under its name was verified when written; a same-size check catches a
  // truncation without re-reading gigabytes (`pocket verify` re-hashes).
  if (HasBlob(digest, size)) return false;
  Fd src(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (src.get() < 0) return Errno("cannot open", path);
  PK_ASSIGN_OR_RETURN(TempBlob tmp, TempBlob::Create(Path("tmp"), hex));
  Sha256 sha;
  std::string buf(kChunkBytes, '\0');
  int64_t copied = 0;
  while (true) {
    const ssize_t n = ReadFull(src.get(), buf.data(), buf.size());
    if (n < 0) return Errno("cannot read", path);
    if (n == 0) break;
    sha.Update(std::string_view(buf.data(), static_cast<size_t>(n)));
    PK_RETURN_IF_ERROR(WriteFull(tmp.fd(), buf.data(), static_cast<size_t>(n), tmp.path()));
    copied += n;
  }
  const auto d = sha.Finish();
  if (copied != size || "sha256:" + ToHex(d.data(), d.size()) != digest) {
    return Status::Corruption(path + " changed while it was being imported; import it again");
  }
  PK_RETURN_IF_ERROR(tmp.Commit(final_path));
  return true;
}

Result<ImportResult> Store::Import(const std::string& gguf_path, const ModelRef& ref,
                                   const ImportOptions& options) {
  formats::GgufOpenOptions open_options;
  open_options.allow_unsupported_types = true;
  auto gguf = formats::GgufFile::Open(gguf_path, open_options);
  if (!gguf.ok()) {
    if (gguf.status().code() == StatusCode::kIOError) return gguf.status();
    return Status::InvalidArgument(gguf_path + " is not a GGUF model: " + gguf.status().message());
  }
  PK_ASSIGN_OR_RETURN(nlohmann::json config, ModelConfigFromGguf(*gguf));

  PK_RETURN_IF_ERROR(EnsureLayout());
  PK_ASSIGN_OR_RETURN(FileLock store_lock, LockStore(FileLock::Mode::kShared));
  PK_ASSIGN_OR_RETURN(FileDigest layer, HashFile(gguf_path));
  ImportResult result;
  result.layer_digest = layer.digest;
  PK_ASSIGN_OR_RETURN(result.layer_written,
                      PutBlobFile(gguf_path, layer.digest, layer.size, options.while_blob_locked));

  const std::string config_bytes =
      config.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  std::string config_digest;
  PK_RETURN_IF_ERROR(PutBlobBytes(config_bytes, &config_digest));

  Manifest m;
  m.artifact_type = kModelArtifactType;
  m.annotations = LineageAnnotations(config);
  for (const auto& [key, value] : options.manifest_annotations) m.annotations[key] = value;
  m.config = {
      kModelConfigType, config_digest, static_cast<int64_t>(config_bytes.size()), "", {}, ""};
  Descriptor layer_desc{kGgufLayerType, layer.digest, layer.size, "", {}, ""};
  layer_desc.annotations[kTitleAnnotation] =
      options.title.empty() ? fs::path(gguf_path).filename().string() : options.title;
  m.layers.push_back(std::move(layer_desc));
  const std::string manifest_bytes = SerializeManifest(m);
  std::string manifest_digest;
  PK_RETURN_IF_ERROR(PutBlobBytes(manifest_bytes, &manifest_digest));

  const int64_t total =
      static_cast<int64_t>(manifest_bytes.size() + config_bytes.size()) + layer.size;
  Descriptor tag{kOciManifestType,
                 manifest_digest,
                 static_cast<int64_t>(manifest_bytes.size()),
                 kModelArtifactType,
                 {},
                 ""};
  tag.annotations[kRefNameAnnotation] = ref.ToString();
  tag.annotations[kCreatedAnnotation] = options.created.empty() ? NowRfc3339() : options.created;
  tag.annotations[kSizeAnnotation] = std::to_string(total);
  {
    PK_ASSIGN_OR_RETURN(FileLock index_lock, LockIndex());
    PK_ASSIGN_OR_RETURN(Index index, ReadIndex());
    auto& ms = index.manifests;
    ms.erase(std::remove_if(ms.begin(), ms.end(),
                            [&](const Descriptor& d) { return RefName(d) == ref.ToString(); }),
             ms.end());
    ms.push_back(tag);
    PK_RETURN_IF_ERROR(WriteIndex(index));
  }
  result.entry = EntryOf(tag);
  return result;
}

BlobDownload::BlobDownload(BlobDownload&& o) noexcept
    : digest_(std::move(o.digest_)),
      partial_path_(std::move(o.partial_path_)),
      final_path_(std::move(o.final_path_)),
      size_(o.size_),
      have_(o.have_),
      fd_(o.fd_),
      sha_(std::move(o.sha_)),
      lock_(std::move(o.lock_)),
      pending_(std::move(o.pending_)),
      last_flush_(o.last_flush_) {
  o.fd_ = -1;
}

BlobDownload::~BlobDownload() {
  if (fd_ >= 0) {
    (void)Flush();  // what arrived is kept for the next run; a failed write only costs bytes
    ::close(fd_);
  }
}

Status BlobDownload::Flush() {
  Status s = WriteFull(fd_, pending_.data(), pending_.size(), partial_path_);
  pending_.clear();
  return s;
}

Status BlobDownload::Append(std::string_view bytes) {
  if (static_cast<int64_t>(bytes.size()) > size_ - have_) {
    return Status::Corruption("blob " + digest_ + ": more than its " + std::to_string(size_) +
                              " bytes were sent");
  }
  // Pieces arrive in 16-64 KiB; they are written per MiB or every 200 ms, whichever comes
  // first (one write per piece cost a third of a loopback pull's time). A kill loses at most
  // that much, which the next run fetches again: it hashes only what is in the file.
  pending_.append(bytes);
  const auto now = std::chrono::steady_clock::now();
  if (pending_.size() >= kChunkBytes || now - last_flush_ >= std::chrono::milliseconds(200)) {
    PK_RETURN_IF_ERROR(Flush());
    last_flush_ = now;
  }
  sha_->Update(bytes);
  have_ += static_cast<int64_t>(bytes.size());
  return Status::Ok();
}

Status BlobDownload::Restart() {
  pending_.clear();
  if (::ftruncate(fd_, 0) != 0 || ::lseek(fd_, 0, SEEK_SET) != 0) {
    return Errno("cannot truncate", partial_path_);
  }
  sha_ = std::make_unique<Sha256>();
  have_ = 0;
  return Status::Ok();
}

Status BlobDownload::Commit() {
  if (have_ != size_) {
    return Status::Corruption("blob " + digest_ + ": got " + std::to_string(have_) + " of " +
                              std::to_string(size_) + " bytes");
  }
  PK_RETURN_IF_ERROR(Flush());
  const auto d = sha_->Finish();
  const std::string got = "sha256:" + ToHex(d.data(), d.size());
  if (got != digest_) {
    PK_RETURN_IF_ERROR(Restart());
    return Status::Corruption("blob " + digest_ + " hashes to " + got + "; discarded");
  }
  if (::fsync(fd_) != 0) return Errno("cannot fsync", partial_path_);
  if (::rename(partial_path_.c_str(), final_path_.c_str()) != 0) {
    return Errno("cannot rename " + partial_path_ + " to", final_path_);
  }
  ::close(fd_);
  fd_ = -1;
  return SyncDirectoryOf(final_path_);
}

Result<FileLock> Store::WriterLock() {
  PK_RETURN_IF_ERROR(EnsureLayout());
  return LockStore(FileLock::Mode::kShared);
}

bool Store::HasBlob(std::string_view digest, int64_t size) const {
  struct stat st;
  return ::stat(BlobPath(digest).c_str(), &st) == 0 && st.st_size == size;
}

Result<std::optional<BlobDownload>> Store::OpenBlobDownload(const std::string& digest,
                                                            int64_t size) {
  PK_RETURN_IF_ERROR(EnsureLayout());
  const std::string hex(DigestHex(digest));
  BlobDownload dl;
  PK_ASSIGN_OR_RETURN(dl.lock_, LockBlob(digest));
  if (HasBlob(digest, size)) return std::optional<BlobDownload>();
  dl.digest_ = digest;
  dl.size_ = size;
  dl.final_path_ = BlobPath(digest);
  dl.partial_path_ = Path("tmp/" + hex + ".partial");
  dl.fd_ = ::open(dl.partial_path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (dl.fd_ < 0) return Errno("cannot create", dl.partial_path_);
  ::flock(dl.fd_, LOCK_EX);  // for gc, as TempBlob; the blob lock already excludes pullers
  dl.sha_ = std::make_unique<Sha256>();
  // Re-hash what an earlier run left, so the final check covers it.
  std::string buf(kChunkBytes, '\0');
  while (true) {
    const ssize_t n = ReadFull(dl.fd_, buf.data(), buf.size());
    if (n < 0) return Errno("cannot read", dl.partial_path_);
    if (n == 0) break;
    dl.sha_->Update(std::string_view(buf.data(), static_cast<size_t>(n)));
    dl.have_ += n;
  }
  if (dl.have_ > size) PK_RETURN_IF_ERROR(dl.Restart());
  return std::optional<BlobDownload>(std::move(dl));
}

Result<TagEntry> Store::AddTag(const ModelRef& ref, std::string_view manifest_bytes,
                               const std::string& created) {
  const std::string tag_name = ref.ToString();
  PK_ASSIGN_OR_RETURN(Manifest m, ParseManifest(manifest_bytes, "manifest of " + tag_name));
  int64_t total = static_cast<int64_t>(manifest_bytes.size());
  std::vector<const Descriptor*> blobs = {&m.config};
  for (const Descriptor& l : m.layers) blobs.push_back(&l);
  for (const Descriptor* d : blobs) {
    if (!HasBlob(d->digest, d->size)) {
      return Status::NotFound("cannot tag " + tag_name + ": blob " + d->digest + " (" +
                              std::to_string(d->size) + " bytes) is not in the store");
    }
    total += d->size;
  }
  PK_RETURN_IF_ERROR(EnsureLayout());
  std::string manifest_digest;
  PK_RETURN_IF_ERROR(PutBlobBytes(manifest_bytes, &manifest_digest));
  Descriptor tag{m.media_type.empty() ? std::string(kOciManifestType) : m.media_type,
                 manifest_digest,
                 static_cast<int64_t>(manifest_bytes.size()),
                 m.artifact_type,
                 {},
                 ""};
  tag.annotations[kRefNameAnnotation] = tag_name;
  tag.annotations[kCreatedAnnotation] = created.empty() ? NowRfc3339() : created;
  tag.annotations[kSizeAnnotation] = std::to_string(total);
  {
    PK_ASSIGN_OR_RETURN(FileLock index_lock, LockIndex());
    PK_ASSIGN_OR_RETURN(Index index, ReadIndex());
    auto& ms = index.manifests;
    ms.erase(std::remove_if(ms.begin(), ms.end(),
                            [&](const Descriptor& d) { return RefName(d) == tag_name; }),
             ms.end());
    ms.push_back(tag);
    PK_RETURN_IF_ERROR(WriteIndex(index));
  }
  return EntryOf(tag);
}

Result<Descriptor> Store::AddReferrer(std::string_view manifest_bytes,
                                      const std::vector<std::string>& blobs) {
  const std::string digest = DigestOf(manifest_bytes);
  PK_ASSIGN_OR_RETURN(Manifest m, ParseManifest(manifest_bytes, "referrer " + digest));
  if (!m.subject) return Status::InvalidArgument("referrer " + digest + " has no subject");
  PK_RETURN_IF_ERROR(EnsureLayout());
  // Shared, as an import: gc must not remove the blobs between their write and the index.
  PK_ASSIGN_OR_RETURN(FileLock store_lock, LockStore(FileLock::Mode::kShared));
  std::vector<const Descriptor*> named = {&m.config};
  for (const Descriptor& l : m.layers) named.push_back(&l);
  for (const std::string& bytes : blobs) {
    const std::string d = DigestOf(bytes);
    const bool wanted = std::any_of(named.begin(), named.end(), [&](const Descriptor* n) {
      return n->digest == d && n->size == static_cast<int64_t>(bytes.size());
    });
    std::string written;
    if (wanted) PK_RETURN_IF_ERROR(PutBlobBytes(bytes, &written));
  }
  for (const Descriptor* d : named) {
    if (!HasBlob(d->digest, d->size)) {
      return Status::NotFound("referrer " + digest + ": blob " + d->digest + " (" +
                              std::to_string(d->size) + " bytes) is not in the store");
    }
  }
  std::string written;
  PK_RETURN_IF_ERROR(PutBlobBytes(manifest_bytes, &written));
  Descriptor entry{m.media_type.empty() ? std::string(kOciManifestType) : m.media_type,
                   digest,
                   static_cast<int64_t>(manifest_bytes.size()),
                   m.artifact_type,
                   {},
                   ""};
  PK_ASSIGN_OR_RETURN(FileLock index_lock, LockIndex());
  PK_ASSIGN_OR_RETURN(Index index, ReadIndex());
  for (const Descriptor& d : index.manifests) {
    if (d.digest == digest && RefName(d).empty()) return d;
  }
  index.manifests.push_back(entry);
  PK_RETURN_IF_ERROR(WriteIndex(index));
  return entry;
}

Result<std::vector<Referrer>> Store::Referrers(std::string_view subject_digest,
                                               std::string_view artifact_type) const {
  PK_ASSIGN_OR_RETURN(Index index, ReadIndex());
  std::vector<Referrer> out;
  for (const Descriptor& d : index.manifests) {
    if (!RefName(d).empty()) continue;
    auto bytes = ReadFile(BlobPath(d.digest));
    if (!bytes.ok()) {
      return Status::Corruption("referrer " + d.digest + " is missing from " + root_ +
                                " (run `pocket verify --repair`)");
    }
    PK_ASSIGN_OR_RETURN(Manifest m, ParseManifest(*bytes, "referrer " + d.digest));
    if (!m.subject || m.subject->digest != subject_digest) continue;
    if (!artifact_type.empty() && m.artifact_type != artifact_type) continue;
    out.push_back({d, std::move(m)});
  }
  std::sort(out.begin(), out.end(), [](const Referrer& a, const Referrer& b) {
    return a.descriptor.digest < b.descriptor.digest;
  });
  return out;
}

Result<std::string> Store::ReadBlob(std::string_view digest, int64_t max_bytes) const {
  const std::string path = BlobPath(digest);
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    return Status::NotFound("blob " + std::string(digest) + " is not in the store " + root_);
  }
  if (st.st_size > max_bytes) {
    return Status::InvalidArgument("blob " + std::string(digest) + " has " +
                                   std::to_string(st.st_size) + " bytes, more than the " +
                                   std::to_string(max_bytes) + " expected");
  }
  PK_ASSIGN_OR_RETURN(std::string bytes, ReadFile(path));
  if (DigestOf(bytes) != digest) {
    return Status::Corruption("blob " + std::string(digest) + " hashes to " + DigestOf(bytes) +
                              " (run `pocket verify --repair`)");
  }
  return bytes;
}

Result<std::vector<TagEntry>> Store::List() const {
  PK_ASSIGN_OR_RETURN(Index index, ReadIndex());
  std::vector<TagEntry> out;
  out.reserve(index.manifests.size());
  for (const Descriptor& d : index.manifests) {
    if (!RefName(d).empty()) out.push_back(EntryOf(d));  // referrers have no tag
  }
  std::sort(out.begin(), out.end(),
            [](const TagEntry& a, const TagEntry& b) { return EntryKey(a) < EntryKey(b); });
  return out;
}

Result<TagEntry> Store::Find(const ModelRef& ref) const {
  PK_ASSIGN_OR_RETURN(Index index, ReadIndex());
  for (const Descriptor& d : index.manifests) {
    if (RefName(d) == ref.ToString()) return EntryOf(d);
  }
  return Status::NotFound("model '" + ref.ToString() + "' is not in the store " + root_ +
                          " (`pocket ls` lists it; `pocket import FILE.gguf " + ref.ToString() +
                          "` adds a file)");
}

Result<Manifest> Store::ReadManifest(const std::string& digest, const std::string& tag) const {
  const std::string path = BlobPath(digest);
  auto bytes = ReadFile(path);
  if (!bytes.ok()) {
    return Status::Corruption("tag '" + tag + "': manifest " + digest + " is missing from " +
                              root_ + " (run `pocket verify --repair`)");
  }
  return ParseManifest(*bytes, "tag '" + tag + "': manifest " + digest);
}

Result<ModelInfo> Store::Show(const ModelRef& ref) const {
  PK_ASSIGN_OR_RETURN(TagEntry entry, Find(ref));
  if (entry.is_index) {
    return Status::InvalidArgument("'" + ref.ToString() +
                                   "' is an index of variants: a command that takes a model "
                                   "chooses one (`pocket index NAME:TAG` lists them)");
  }
  PK_ASSIGN_OR_RETURN(ModelInfo info, ShowManifest(entry.manifest_digest, ref.ToString()));
  info.entry = entry;
  return info;
}

Result<ModelInfo> Store::ShowManifest(const std::string& digest, const std::string& tag) const {
  ModelInfo info;
  info.entry.manifest_digest = digest;
  PK_ASSIGN_OR_RETURN(info.manifest, ReadManifest(digest, tag));
  PK_ASSIGN_OR_RETURN(info.manifest_json, ReadFile(BlobPath(digest)));
  const Descriptor* layer = info.manifest.ModelLayer();
  if (!layer) {
    return Status::Corruption("tag '" + tag + "': manifest " + digest + " has no GGUF layer");
  }
  auto config = ReadFile(BlobPath(info.manifest.config.digest));
  if (!config.ok()) {
    return Status::Corruption("tag '" + tag + "': config " + info.manifest.config.digest +
                              " is missing (run `pocket verify --repair`)");
  }
  auto parsed =
      ParseUntrustedJson(*config, "tag '" + tag + "': config " + info.manifest.config.digest);
  if (!parsed.ok()) return Status::Corruption(parsed.status().message());
  info.config = std::move(parsed).value();
  info.model_path = BlobPath(layer->digest);
  struct stat st;
  if (::stat(info.model_path.c_str(), &st) != 0) {
    return Status::Corruption("tag '" + tag + "': model blob " + layer->digest +
                              " is missing (run `pocket verify --repair`)");
  }
  if (st.st_size != layer->size) {
    return Status::Corruption("tag '" + tag + "': model blob " + layer->digest + " has " +
                              std::to_string(st.st_size) + " bytes, the manifest says " +
                              std::to_string(layer->size) + " (run `pocket verify --repair`)");
  }
  return info;
}

Result<std::string> Store::ModelPath(const ModelRef& ref) const {
  PK_ASSIGN_OR_RETURN(ModelInfo info, Show(ref));
  return info.model_path;
}

Result<Index> Store::ReadVariantIndex(const TagEntry& entry) const {
  const std::string tag = EntryKey(entry);
  if (!entry.is_index) {
    return Status::InvalidArgument("tag '" + tag + "' is a model, not an index of variants");
  }
  auto bytes = ReadFile(BlobPath(entry.manifest_digest));
  if (!bytes.ok()) {
    return Status::Corruption("tag '" + tag + "': index " + entry.manifest_digest +
                              " is missing from " + root_ + " (run `pocket verify --repair`)");
  }
  PK_ASSIGN_OR_RETURN(Index index,
                      ParseIndex(*bytes, "tag '" + tag + "': index " + entry.manifest_digest));
  for (const Descriptor& c : index.manifests) {
    if (c.media_type == kOciIndexType) {
      return Status::Corruption("tag '" + tag + "': index " + entry.manifest_digest +
                                " holds an index (" + c.digest + "); variants are manifests");
    }
  }
  if (index.manifests.empty()) {
    return Status::Corruption("tag '" + tag + "': index " + entry.manifest_digest +
                              " has no variants");
  }
  return index;
}

Result<std::string> Store::PutManifest(std::string_view manifest_bytes) {
  const std::string digest = DigestOf(manifest_bytes);
  PK_ASSIGN_OR_RETURN(Manifest m, ParseManifest(manifest_bytes, "manifest " + digest));
  std::vector<const Descriptor*> blobs = {&m.config};
  for (const Descriptor& l : m.layers) blobs.push_back(&l);
  for (const Descriptor* d : blobs) {
    if (!HasBlob(d->digest, d->size)) {
      return Status::NotFound("manifest " + digest + ": blob " + d->digest + " (" +
                              std::to_string(d->size) + " bytes) is not in the store");
    }
  }
  PK_RETURN_IF_ERROR(EnsureLayout());
  std::string stored;
  PK_RETURN_IF_ERROR(PutBlobBytes(manifest_bytes, &stored));
  return stored;
}

Result<TagEntry> Store::AddIndexTag(const ModelRef& ref, std::string_view index_bytes,
                                    const std::string& created) {
  const std::string tag_name = ref.ToString();
  PK_ASSIGN_OR_RETURN(Index index, ParseIndex(index_bytes, "index of " + tag_name));
  int64_t total = static_cast<int64_t>(index_bytes.size());
  int held = 0;
  for (const Descriptor& c : index.manifests) {
    if (c.media_type == kOciIndexType) {
      return Status::InvalidArgument("cannot tag " + tag_name + ": its index holds an index (" +
                                     c.digest + "); variants are manifests");
    }
    if (!HasBlob(c.digest, c.size)) continue;
    PK_ASSIGN_OR_RETURN(ModelInfo info, ShowManifest(c.digest, tag_name));
    total += c.size + info.manifest.config.size;
    for (const Descriptor& l : info.manifest.layers) {
      if (!HasBlob(l.digest, l.size)) {
        return Status::NotFound("cannot tag " + tag_name + ": blob " + l.digest + " of variant " +
                                c.digest + " is not in the store");
      }
      total += l.size;
    }
    ++held;
  }
  if (held == 0) {
    return Status::NotFound("cannot tag " + tag_name + ": none of its " +
                            std::to_string(index.manifests.size()) + " variants is in the store");
  }
  PK_RETURN_IF_ERROR(EnsureLayout());
  std::string digest;
  PK_RETURN_IF_ERROR(PutBlobBytes(index_bytes, &digest));
  Descriptor tag{kOciIndexType, digest, static_cast<int64_t>(index_bytes.size()), "", {}, ""};
  tag.annotations[kRefNameAnnotation] = tag_name;
  tag.annotations[kCreatedAnnotation] = created.empty() ? NowRfc3339() : created;
  tag.annotations[kSizeAnnotation] = std::to_string(total);
  {
    PK_ASSIGN_OR_RETURN(FileLock index_lock, LockIndex());
    PK_ASSIGN_OR_RETURN(Index layout, ReadIndex());
    auto& ms = layout.manifests;
    ms.erase(std::remove_if(ms.begin(), ms.end(),
                            [&](const Descriptor& d) { return RefName(d) == tag_name; }),
             ms.end());
    ms.push_back(tag);
    PK_RETURN_IF_ERROR(WriteIndex(layout));
  }
  return EntryOf(tag);
}

Status Store::Remove(const ModelRef& ref) {
  if (::access(Path("index.json").c_str(), F_OK) != 0) return Find(ref).status();
  PK_ASSIGN_OR_RETURN(FileLock index_lock, LockIndex());
  PK_ASSIGN_OR_RETURN(Index index, ReadIndex());
  auto& ms = index.manifests;
  const size_t before = ms.size();
  ms.erase(std::remove_if(ms.begin(), ms.end(),
                          [&](const Descriptor& d) { return RefName(d) == ref.ToString(); }),
           ms.end());
  if (ms.size() == before) return Find(ref).status();
  return WriteIndex(index);
}

Result<GcReport> Store::Gc(const GcOptions& options) {
  GcReport report;
  const int64_t now_s = options.now_s ? *options.now_s : static_cast<int64_t>(std::time(nullptr));
  if (::access(Path("index.json").c_str(), F_OK) != 0) return report;  // no store yet
  PK_RETURN_IF_ERROR(EnsureLayout());
  PK_ASSIGN_OR_RETURN(FileLock store_lock, LockStore(FileLock::Mode::kExclusive));
  std::set<std::string> live;
  {
    PK_ASSIGN_OR_RETURN(FileLock index_lock, LockIndex());
    PK_ASSIGN_OR_RETURN(Index index, ReadIndex());
    // Per entry of index.json: its manifest, or for a variant index (store.h) the children
    // the store holds, which the index keeps alive (even when damaged: then nothing goes).
    const size_t n = index.manifests.size();
    std::vector<Manifest> manifests(n);
    std::vector<std::vector<std::pair<std::string, Manifest>>> children(n);
    std::vector<bool> expired(n, false);
    auto unreadable = [](const Status& s) {
      return Status::Corruption(s.message() +
                                "; nothing removed (run `pocket verify --repair` first)");
    };
    for (size_t i = 0; i < n; ++i) {
      const Descriptor& d = index.manifests[i];
      if (d.media_type == kOciIndexType) {
        auto variants = ReadVariantIndex(EntryOf(d));
        if (!variants.ok()) return unreadable(variants.status());
        for (const Descriptor& c : variants->manifests) {
          struct stat st;
          if (::stat(BlobPath(c.digest).c_str(), &st) != 0) continue;  // not held
          auto m = ReadManifest(c.digest, RefName(d));
          if (!m.ok()) return unreadable(m.status());
          children[i].emplace_back(c.digest, std::move(m).value());
        }
        continue;
      }
      auto m = ReadManifest(d.digest, RefName(d));
      if (!m.ok()) return unreadable(m.status());
      // Staging's expiry (staging.h): the tag goes, so its blobs are unused below unless
      // another tag shares them, and its signatures go with it unless another tag names the
      // same manifest.
      expired[i] = options.expire_staging && IsExpiredStaging(RefName(d), m->annotations, now_s);
      if (expired[i]) report.expired_tags.push_back(RefName(d));
      manifests[i] = std::move(m).value();
    }
    // Tags (and untagged entries that refer to nothing) are the roots; a referrer lives
    // while what it refers to does, transitively (a signature of a signature).
    std::vector<bool> keep(n, false);
    std::set<std::string> live_manifests;
    for (size_t i = 0; i < n; ++i) {
      if (!expired[i] && (!RefName(index.manifests[i]).empty() || !manifests[i].subject)) {
        keep[i] = true;
        live_manifests.insert(index.manifests[i].digest);
        for (const auto& c : children[i]) live_manifests.insert(c.first);  // a variant's own
      }
    }
    for (bool grew = true; grew;) {
      grew = false;
      for (size_t i = 0; i < n; ++i) {
        if (!keep[i] && !expired[i] && manifests[i].subject &&
            live_manifests.count(manifests[i].subject->digest)) {
          keep[i] = grew = true;
          live_manifests.insert(index.manifests[i].digest);
        }
      }
    }
    auto hold = [&](const std::string& digest, const Manifest& m) {
      live.insert(std::string(DigestHex(digest)));
      live.insert(std::string(DigestHex(m.config.digest)));
      for (const Descriptor& l : m.layers) live.insert(std::string(DigestHex(l.digest)));
    };
    Index kept = index;
    kept.manifests.clear();
    for (size_t i = 0; i < n; ++i) {
      if (!keep[i]) {
        if (!expired[i]) ++report.referrers_removed;
        continue;
      }
      const Descriptor& d = index.manifests[i];
      kept.manifests.push_back(d);
      if (d.media_type == kOciIndexType) {
        live.insert(std::string(DigestHex(d.digest)));
        for (const auto& [digest, m] : children[i]) hold(digest, m);
      } else {
        hold(d.digest, manifests[i]);
      }
    }
    if (report.referrers_removed > 0 || !report.expired_tags.empty()) {
      PK_RETURN_IF_ERROR(WriteIndex(kept));
    }
    // Temp files of base::WriteFileAtomic left by a killed index writer.
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(root_, ec)) {
      if (e.path().filename().string().rfind("index.json.tmp.", 0) == 0 &&
          ::unlink(e.path().c_str()) == 0) {
        ++report.temp_files_removed;
      }
    }
  }
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(Path("blobs/sha256"), ec)) {
    const std::string name = e.path().filename().string();
    if (!IsHex64(name)) continue;  // not ours to judge: verify reports it
    if (live.count(name)) {
      ++report.blobs_kept;
      continue;
    }
    struct stat st;
    const int64_t size = ::stat(e.path().c_str(), &st) == 0 ? st.st_size : 0;
    if (::unlink(e.path().c_str()) != 0) return Errno("cannot remove", e.path().string());
    ++report.blobs_removed;
    report.bytes_removed += size;
  }
  if (ec) return Status::IOError("cannot list " + Path("blobs/sha256") + ": " + ec.message());
  if (report.blobs_removed > 0) PK_RETURN_IF_ERROR(SyncDirectoryOf(Path("blobs/sha256/x")));
  // Writers hold a lock on their temp file; one we can lock has no live writer. (Holding
  // store.lock already excludes importers; the temp lock also covers writers that do not
  // take it.)
  for (const auto& e : fs::directory_iterator(Path("tmp"), ec)) {
    auto lock = FileLock::TryAcquireExisting(e.path().string(), FileLock::Mode::kExclusive);
    if (!lock.ok()) continue;
    if (lock->UnlinkAndRelease().ok()) ++report.temp_files_removed;
  }
  // Blob lock files: the ones nobody holds go (the lock protocol re-checks the inode).
  for (const auto& e : fs::directory_iterator(Path("locks"), ec)) {
    if (e.path().filename().string().rfind("sha256-", 0) != 0) continue;
    auto lock = FileLock::TryAcquireExisting(e.path().string(), FileLock::Mode::kExclusive);
    if (lock.ok()) (void)lock->UnlinkAndRelease();
  }
  return report;
}

Result<VerifyReport> Store::Verify(bool repair) {
  VerifyReport report;
  if (::access(Path("index.json").c_str(), F_OK) != 0) return report;
  PK_RETURN_IF_ERROR(EnsureLayout());  // locks/ may be missing in a layout another tool made
  // verify --repair removes blobs: exclusive, like gc. A plain verify only reads and may run
  // beside imports, which only ever add whole blobs.
  PK_ASSIGN_OR_RETURN(FileLock store_lock,
                      LockStore(repair ? FileLock::Mode::kExclusive : FileLock::Mode::kShared));
  std::set<std::string> bad;  // digests
  std::error_code ec;
  std::vector<fs::path> blobs;
  for (const auto& e : fs::directory_iterator(Path("blobs/sha256"), ec)) blobs.push_back(e.path());
  if (ec && ec != std::errc::no_such_file_or_directory) {
    return Status::IOError("cannot list " + Path("blobs/sha256") + ": " + ec.message());
  }
  std::sort(blobs.begin(), blobs.end());
  for (const fs::path& p : blobs) {
    const std::string name = p.filename().string();
    if (!IsHex64(name)) {
      report.bad_blobs.push_back({p.string(), "is not named by a sha256 digest"});
      continue;
    }
    const std::string digest = "sha256:" + name;
    auto got = HashFile(p.string());
    ++report.blobs_checked;
    if (!got.ok()) {
      report.bad_blobs.push_back({digest, got.status().message()});
      bad.insert(digest);
      continue;
    }
    report.bytes_checked += got->size;
    if (got->digest != digest) {
      report.bad_blobs.push_back({digest, "content hashes to " + got->digest + " (" +
                                              std::to_string(got->size) + " bytes)"});
      bad.insert(digest);
    }
  }

  std::optional<FileLock> index_lock;
  if (repair) {
    PK_ASSIGN_OR_RETURN(FileLock l, LockIndex());
    index_lock.emplace(std::move(l));
  }
  PK_ASSIGN_OR_RETURN(Index index, ReadIndex());
  Index kept;
  for (const Descriptor& d : index.manifests) {
    const std::string tag = RefName(d);
    std::string problem;
    auto check = [&](const Descriptor& blob, const char* what) {
      if (!problem.empty()) return;
      struct stat st;
      if (bad.count(blob.digest)) {
        problem = std::string(what) + " " + blob.digest + " is corrupt";
      } else if (::stat(BlobPath(blob.digest).c_str(), &st) != 0) {
        problem = std::string(what) + " " + blob.digest + " is missing";
      } else if (st.st_size != blob.size) {
        problem = std::string(what) + " " + blob.digest + " has " + std::to_string(st.st_size) +
                  " bytes, expected " + std::to_string(blob.size);
      }
    };
    auto check_manifest = [&](const Descriptor& md) {
      check(md, "manifest");
      if (!problem.empty()) return;
      auto m = ReadManifest(md.digest, tag);
      if (!m.ok()) {
        problem = m.status().message();
      } else {
        check(m->config, "config");
        for (const Descriptor& l : m->layers) check(l, "layer");
      }
    };
    if (d.media_type == kOciIndexType) {
      // A variant index: the index blob, and each child the store holds, whole.
      check(d, "index");
      if (problem.empty()) {
        auto variants = ReadVariantIndex(EntryOf(d));
        int held = 0;
        if (!variants.ok()) {
          problem = variants.status().message();
        } else {
          for (const Descriptor& c : variants->manifests) {
            struct stat st;
            if (!bad.count(c.digest) && ::stat(BlobPath(c.digest).c_str(), &st) != 0) continue;
            ++held;
            check_manifest(c);
          }
          if (problem.empty() && held == 0) problem = "no variant of it is in the store";
        }
      }
    } else {
      check_manifest(d);
    }
    if (problem.empty()) {
      kept.manifests.push_back(d);
    } else {
      report.broken_tags.push_back({tag.empty() ? d.digest : tag, problem});
    }
  }
  if (repair && !report.clean()) {
    for (const VerifyProblem& p : report.bad_blobs) {
      if (!IsValidDigest(p.what)) continue;  // a stray file: reported, not ours to delete
      const std::string path = BlobPath(p.what);
      if (::unlink(path.c_str()) != 0 && errno != ENOENT) return Errno("cannot remove", path);
    }
    if (!report.bad_blobs.empty()) PK_RETURN_IF_ERROR(SyncDirectoryOf(Path("blobs/sha256/x")));
    if (kept.manifests.size() != index.manifests.size()) PK_RETURN_IF_ERROR(WriteIndex(kept));
    report.repaired = true;
  }
  return report;
}

}  // namespace pocket::registry
