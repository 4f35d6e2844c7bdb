// The local content-addressed model store: one per user, an OCI image layout on disk so
// that skopeo and ORAS users recognise it (docs/registry.md):
//   <root>/oci-layout             {"imageLayoutVersion":"1.0.0"}
//   <root>/index.json             OCI image index: one manifest descriptor per NAME:TAG,
//                                 the tag in org.opencontainers.image.ref.name, plus the
//                                 import time (org.opencontainers.image.created) and the
//                                 total size (io.pocket.size) so `ls` reads one file; and
//                                 one untagged descriptor per referrer (a signature: a
//                                 manifest whose `subject` is a stored manifest), as ORAS
//                                 keeps referrers in a layout
//   <root>/blobs/sha256/<hex>     manifests, configs and GGUF layers, named by their SHA-256
//   <root>/tmp/                   blobs being written (temp names, removed by gc when stale),
//                                 and pulls' <hex>.partial files, which a rerun resumes
//   <root>/locks/                 flock files: store.lock, index.lock, sha256-<hex>.lock
//
// Durability: a blob is written to tmp/, hashed while written, checked against its digest,
// fsynced, renamed to blobs/sha256/<hex> and the directory fsynced; index.json is replaced
// the same way (base::WriteFileAtomic). A crash, a kill or a full disk therefore never
// leaves a blob under its final name that does not match its digest, nor a half-written
// index; what it can leave is a temp file (gc removes it) or blobs no tag references yet
// (gc removes them).
//
// Concurrency between processes: writers (Import) hold store.lock shared, gc and verify
// --repair hold it exclusive, so gc never removes a blob a running import is about to tag.
// A per-blob lock makes two imports of the same bytes write the blob once (the second finds
// it in place). index.json is read-modify-written under index.lock; readers (List, Resolve)
// take no lock: the rename makes each read see a whole index.
// Thread safety: a Store is a value holding only its root; every call works on the files,
// so calls from several threads or processes are safe as above.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "base/sha256.h"
#include "base/status.h"
#include "registry/file_lock.h"
#include "registry/oci.h"
#include "registry/reference.h"

namespace pocket::registry {

// The per-user store: $POCKET_HOME, else $XDG_DATA_HOME/pocket, else
// $HOME/.local/share/pocket (relative XDG_DATA_HOME/HOME values are ignored, as the XDG spec
// says). NotFound when none of them gives an absolute path.
Result<std::string> DefaultStoreRoot();

struct TagEntry {
  ModelRef ref;
  std::string manifest_digest;  // "sha256:..."
  int64_t size_bytes = 0;       // manifest + config + layers (io.pocket.size; 0 if absent)
  std::string created;          // RFC 3339 UTC, as stored ("" if absent)
  // The tag names an image index of variants (registry/variant.h) rather than a manifest:
  // manifest_digest is then the index blob's, size_bytes what of it the store holds.
  bool is_index = false;
};

struct ImportOptions {
  // Test seam: called while the blob lock of the GGUF layer is held, before its blob is
  // looked for (lets a test hold two processes inside the critical section).
  std::function<void()> while_blob_locked;
  // The time recorded in the index (RFC 3339); empty = now.
  std::string created;
  // The layer's org.opencontainers.image.title; empty = the file's name.
  std::string title;
  // Added to the manifest's annotations, after the lineage ones the GGUF's provenance gives
  // (model_config.h LineageAnnotations): staging's expiry (staging.h). Empty for a plain
  // import, whose manifest has no time in it, so equal files give equal manifests.
  std::map<std::string, std::string> manifest_annotations;
};

struct ImportResult {
  TagEntry entry;
  std::string layer_digest;
  bool layer_written = false;  // false: the blob was already in the store (dedupe)
};

struct ModelInfo {
  TagEntry entry;
  Manifest manifest;
  std::string manifest_json;  // the manifest blob's bytes
  nlohmann::json config;      // the parsed config blob
  std::string model_path;     // the GGUF layer's blob
};

struct GcOptions {
  // Staging tags (staging.h IsStagingName) whose manifest's expiry is at or before this
  // Unix time are removed first, then their blobs with the other unused ones. nullopt: the
  // system clock; a value: a test's or $POCKET_NOW's.
  std::optional<int64_t> now_s;
  bool expire_staging = true;
};

// A referrer listed in index.json: an artifact (a signature) about a stored manifest.
struct Referrer {
  Descriptor descriptor;  // its entry in index.json (no ref.name)
  Manifest manifest;      // subject set
};

struct GcReport {
  std::vector<std::string> expired_tags;  // NAME:TAG of staging tags removed as expired
  int referrers_removed = 0;  // referrers (signatures) of manifests no tag uses any more
  int blobs_removed = 0;
  int64_t bytes_removed = 0;
  int temp_files_removed = 0;
  int blobs_kept = 0;
};

struct VerifyProblem {
  std::string what;    // a digest or a NAME:TAG
  std::string reason;  // one line
};

struct VerifyReport {
  int blobs_checked = 0;
  int64_t bytes_checked = 0;
  std::vector<VerifyProblem> bad_blobs;    // content does not match its name, or unreadable
  std::vector<VerifyProblem> broken_tags;  // manifest unreadable or a referenced blob gone
  bool repaired = false;                   // the above were removed
  bool clean() const { return bad_blobs.empty() && broken_tags.empty(); }
};

// A blob being downloaded into the store (pull): holds the blob's lock, so a second
// process pulling the same blob waits and then finds it in place, and a partial file
// <root>/tmp/<hex>.partial that survives a crash, a kill or a dropped connection, so the
// next attempt (or the next run) continues from its end with a Range request. Bytes are
// hashed as they are appended; on open, a partial file left by an earlier run is re-hashed
// (a local read, far faster than the network) so the final digest covers every byte. A
// partial longer than the blob is discarded. Nothing reaches blobs/sha256/<hex> unless its
// size and digest match.
// Thread safety: owned by one thread.
class BlobDownload {
 public:
  BlobDownload(BlobDownload&&) noexcept;
  BlobDownload& operator=(BlobDownload&&) = delete;
  ~BlobDownload();  // closes the partial file (kept for the next run) and unlocks

  const std::string& digest() const { return digest_; }
  int64_t size() const { return size_; }
  // Bytes held so far (resumed + appended).
  int64_t have() const { return have_; }
  // Appends the next bytes (written to the partial file per MiB or every 200 ms, and on
  // Commit or destruction: a kill loses at most that). Corruption when they would go past size()
  // (the sender lies about the blob); IOError naming the partial file on a write failure.
  Status Append(std::string_view bytes);
  // Drops what is held (a sender that restarted from byte 0, or a bad digest).
  Status Restart();
  // Checks size and digest, then fsyncs and renames to the blob's final name. Corruption
  // "blob sha256:... hashes to sha256:..." (and the partial file is discarded) when they do
  // not match.
  Status Commit();

 private:
  friend class Store;
  BlobDownload() = default;
  std::string digest_, partial_path_, final_path_;
  int64_t size_ = 0, have_ = 0;
  int fd_ = -1;
  Status Flush();  // writes pending_ to the partial file

  std::unique_ptr<Sha256> sha_;
  FileLock lock_;
  std::string pending_;  // appended, not yet written
  std::chrono::steady_clock::time_point last_flush_ = std::chrono::steady_clock::now();
};

class Store {
 public:
  // A store at `root` (absolute or relative). Touches nothing: reads of a missing store see
  // no tags; the first write creates the layout.
  explicit Store(std::string root);

  const std::string& root() const { return root_; }
  // <root>/blobs/sha256/<hex>. REQUIRES: IsValidDigest(digest).
  std::string BlobPath(std::string_view digest) const;

  // Adds the GGUF file `gguf_path` as NAME:TAG (replacing what the tag named before): its
  // bytes become the layer blob, its header the config blob (model_config.h). The file is
  // read twice: once to hash it (so the blob lock can be taken by digest), once to copy it,
  // hashing again; Corruption when the two passes differ (the file changed meanwhile).
  // InvalidArgument naming the file when it is not a GGUF model; IOError naming the path
  // for an unwritable store or a full disk (nothing is left under a final name).
  Result<ImportResult> Import(const std::string& gguf_path, const ModelRef& ref,
                              const ImportOptions& options = {});

  // Pull's writer side. WriterLock: store.lock shared, held across a pull so gc cannot
  // remove blobs that are in but not yet tagged (creates the layout first).
  Result<FileLock> WriterLock();
  // True when the blob is in the store with `size` bytes (verified when it was written).
  bool HasBlob(std::string_view digest, int64_t size) const;
  // Starts or resumes the download of a blob (see BlobDownload); waits while another
  // process holds the blob. nullopt when the blob is already in the store with `size`
  // bytes. REQUIRES: IsValidDigest(digest), size >= 0.
  Result<std::optional<BlobDownload>> OpenBlobDownload(const std::string& digest, int64_t size);
  // Stores `manifest_bytes` (already checked by the caller against its digest) and points
  // NAME:TAG at it, after checking that its config and every layer are in the store with
  // their sizes (NotFound naming the first that is not). Returns the new entry.
  Result<TagEntry> AddTag(const ModelRef& ref, std::string_view manifest_bytes,
                          const std::string& created = "");

  // Stores a referrer artifact: `blobs` (the bytes of its config and layers, each written
  // under its digest) and then `manifest_bytes`, which must parse and have a subject, and
  // lists it in index.json as an untagged descriptor (with its artifactType). NotFound when
  // a blob the manifest names is neither in `blobs` nor in the store. Adding one that is
  // there already changes nothing. Returns its descriptor.
  Result<Descriptor> AddReferrer(std::string_view manifest_bytes,
                                 const std::vector<std::string>& blobs);
  // The referrers of the manifest `subject_digest` in index.json whose artifactType is
  // `artifact_type` ("" = any), sorted by digest. Corruption naming the referrer when its
  // manifest cannot be read.
  Result<std::vector<Referrer>> Referrers(std::string_view subject_digest,
                                          std::string_view artifact_type) const;
  // A small blob's bytes, checked against its digest (Corruption otherwise, NotFound when
  // absent, InvalidArgument when larger than `max_bytes`).
  Result<std::string> ReadBlob(std::string_view digest, int64_t max_bytes) const;

  // Every tag, sorted by NAME:TAG (referrers, which have no tag, are not listed).
  // Corruption naming index.json when it is malformed.
  Result<std::vector<TagEntry>> List() const;
  // The tag's entry; NotFound "model 'NAME:TAG' is not in the store <root>".
  Result<TagEntry> Find(const ModelRef& ref) const;
  // The tag's manifest, config and GGUF path, each checked to exist and parse (contents
  // are not re-hashed: Verify does that). Corruption naming the blob otherwise.
  Result<ModelInfo> Show(const ModelRef& ref) const;
  // The GGUF blob of NAME:TAG (Show's model_path).
  Result<std::string> ModelPath(const ModelRef& ref) const;

  // Variants (registry/variant.h). A tag may name an image index whose children are model
  // manifests; the store keeps the index blob as it came and those children it holds (a
  // pull fetches the chosen one; `pocket index` makes one over stored models). gc keeps the
  // index and the children that are in the store with their blobs; verify checks those
  // and calls the tag broken when none of its children is in the store; Show/ModelPath of
  // such a tag is InvalidArgument (choose a variant first).
  //
  // The index of an index tag. InvalidArgument when `entry` is a manifest's tag; Corruption
  // naming the blob when it is missing or malformed.
  Result<Index> ReadVariantIndex(const TagEntry& entry) const;
  // Show of a manifest by digest (a child of an index); `what` names it in messages.
  Result<ModelInfo> ShowManifest(const std::string& digest, const std::string& what) const;
  // Stores a model manifest whose config and layers are in the store (NotFound naming the
  // first that is not); returns its digest. For a pulled child of an index.
  Result<std::string> PutManifest(std::string_view manifest_bytes);
  // Points NAME:TAG at the image index `index_bytes` (stored as a blob), after checking that
  // at least one child is in the store and that each child present is whole (NotFound
  // otherwise). Children are model manifests, not indexes (InvalidArgument).
  Result<TagEntry> AddIndexTag(const ModelRef& ref, std::string_view index_bytes,
                               const std::string& created = "");

  // Drops the tag; its blobs stay until Gc. NotFound when the tag is not there.
  Status Remove(const ModelRef& ref);

  // Removes expired staging tags (GcOptions), then blobs no tag references (through its
  // manifest) and temp files no live writer holds. A referrer stays while its subject is a
  // live manifest (a tag's, or a live referrer's); the referrers of manifests no tag uses
  // any more leave index.json and their blobs go too. An untagged entry without a subject
  // (another tool's) is kept as before. Corruption, removing nothing, when a tag's manifest
  // cannot be read (what it references is unknown): `pocket verify --repair` drops such a
  // tag first.
  Result<GcReport> Gc(const GcOptions& options = {});

  // Re-hashes every blob and checks every tag's manifest and the blobs it references.
  // With `repair`, removes the blobs that do not match and the tags that are broken (or
  // reference a removed blob). Only malformed index.json or I/O on the store fail the call.
  Result<VerifyReport> Verify(bool repair);

 private:
  std::string Path(std::string_view rel) const;
  // The store's flock files (locks/): store.lock (writers shared, gc and repair exclusive),
  // index.lock (index.json's read-modify-write), sha256-<hex>.lock (one writer per blob,
  // taken before looking for the blob).
  Result<FileLock> LockStore(FileLock::Mode mode) const;
  Result<FileLock> LockIndex() const;
  Result<FileLock> LockBlob(std::string_view digest) const;  // REQUIRES: IsValidDigest
  Status EnsureLayout() const;
  Result<Index> ReadIndex() const;  // empty when index.json does not exist
  Status WriteIndex(const Index& index) const;
  // Writes `bytes` as a blob (once per digest, under its lock); returns true when written.
  Result<bool> PutBlobBytes(std::string_view bytes, std::string* digest);
  Result<bool> PutBlobFile(const std::string& path, const std::string& digest, int64_t size,
                           const std::function<void()>& while_locked);
  Result<Manifest> ReadManifest(const std::string& digest, const std::string& tag) const;

  std::string root_;
};

}  // namespace pocket::registry
