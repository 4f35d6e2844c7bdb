// Push a stored model to an OCI distribution registry (see push.h).
#include "registry/push.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "base/file.h"
#include "registry/oci.h"
#include "registry/referrers.h"
#include "registry/signature.h"
#include "registry/variant.h"

namespace pocket::registry {
namespace {

class Pusher {
 public:
  Pusher(const Store& store, const RemoteRef& dest, const PushOptions& options)
      : store_(store), dest_(dest), options_(options), client_(dest.host, options.client) {}

  Result<PushResult> Run(const ModelRef& local) {
    if (dest_.tag.empty()) {
      return Status::InvalidArgument("push needs a tag: " + dest_.ToString());
    }
    PK_ASSIGN_OR_RETURN(TagEntry entry, store_.Find(local));
    if (entry.is_index) return RunIndex(local, entry);
    PK_ASSIGN_OR_RETURN(ModelInfo info, store_.Show(local));
    std::vector<Descriptor> blobs = {info.manifest.config};
    blobs.insert(blobs.end(), info.manifest.layers.begin(), info.manifest.layers.end());
    for (const Descriptor& d : blobs) progress_.total += d.size;
    progress_.Emit(TransferEvent::Kind::kStart, "");
    for (const Descriptor& d : blobs) PK_RETURN_IF_ERROR(PushBlob(d));
    PK_RETURN_IF_ERROR(PushManifest(info.manifest_json, info.manifest.media_type, dest_.tag));
    PK_RETURN_IF_ERROR(PushSignatures());
    progress_.Emit(TransferEvent::Kind::kDone, "");
    return result_;
  }

  // An index of variants: every child (its blobs, then its manifest by digest), then the
  // index under the tag. A child the store lacks (a pull fetched another) stops the push
  // before anything is sent: a registry refuses an index whose children it lacks.
  Result<PushResult> RunIndex(const ModelRef& local, const TagEntry& entry) {
    PK_ASSIGN_OR_RETURN(Index index, store_.ReadVariantIndex(entry));
    const std::vector<Variant> variants = VariantsOf(index);
    std::vector<ModelInfo> children;
    for (const Variant& v : variants) {
      if (!store_.HasBlob(v.descriptor.digest, v.descriptor.size)) {
        return Status::NotFound("cannot push " + local.ToString() + ": its variant " + v.Label() +
                                " (" + v.descriptor.digest +
                                ") is not in the store (`pocket pull --variant " + v.Label() +
                                "` fetches it)");
      }
      PK_ASSIGN_OR_RETURN(
          ModelInfo info,
          store_.ShowManifest(v.descriptor.digest, local.ToString() + " variant " + v.Label()));
      progress_.total += info.manifest.config.size;
      for (const Descriptor& l : info.manifest.layers) progress_.total += l.size;
      children.push_back(std::move(info));
    }
    PK_ASSIGN_OR_RETURN(std::string index_bytes, ReadFile(store_.BlobPath(entry.manifest_digest)));
    progress_.Emit(TransferEvent::Kind::kStart, "");
    for (const ModelInfo& info : children) {
      PK_RETURN_IF_ERROR(PushBlob(info.manifest.config));
      for (const Descriptor& l : info.manifest.layers) PK_RETURN_IF_ERROR(PushBlob(l));
      PK_RETURN_IF_ERROR(
          PushManifest(info.manifest_json, info.manifest.media_type, info.entry.manifest_digest));
    }
    PK_RETURN_IF_ERROR(PushManifest(index_bytes, kOciIndexType, dest_.tag));
    PK_RETURN_IF_ERROR(PushSignatures());
    progress_.Emit(TransferEvent::Kind::kDone, "");
    return result_;
  }

 private:
  // The signatures stored for the manifest just pushed under the tag (result_.manifest_digest:
  // a model's, or a variant index's), and the referrers tag listing them.
  Status PushSignatures() {
    PK_ASSIGN_OR_RETURN(std::vector<ReferrerArtifact> signatures,
                        StoredReferrers(store_, result_.manifest_digest, kSignatureArtifactType));
    result_.signatures = static_cast<int>(signatures.size());
    PK_ASSIGN_OR_RETURN(result_.signatures_listed,
                        PushReferrers(client_, dest_.repository, result_.manifest_digest,
                                      signatures, options_.client.timeout_ms));
    return Status::Ok();
  }

  Status Retrying(const std::function<Status()>& attempt, const std::string& digest) {
    return client_.WithRetries(attempt, [&](const Status& s, int n, int64_t wait_ms) {
      progress_.Retry(digest, s, n, wait_ms);
    });
  }

  Status HttpError(const std::string& what, const net::FetchResponse& res) {
    std::string body = res.body.substr(0, 200);
    for (char& c : body) {
      if (c == '\n' || c == '\r') c = ' ';
    }
    return Status::IOError(client_.Where(what + ": HTTP " + std::to_string(res.status) +
                                         (body.empty() ? "" : " " + body)));
  }

  Status PushBlob(const Descriptor& d) {
    const std::string path = "/v2/" + dest_.repository + "/blobs/" + d.digest;
    bool present = false;
    PK_RETURN_IF_ERROR(Retrying(
        [&]() -> Status {
          net::FetchRequest req;
          req.method = "HEAD";
          req.url = path;
          req.timeout_ms = options_.client.timeout_ms;
          PK_ASSIGN_OR_RETURN(net::FetchResponse res, client_.Fetch(req));
          if (res.status == 200) {
            present = true;
            return Status::Ok();
          }
          if (res.status == 404) return Status::Ok();
          return HttpError("HEAD " + path, res);
        },
        d.digest));
    if (present) {
      progress_.done += d.size;
      ++result_.blobs_present;
      progress_.Emit(TransferEvent::Kind::kBlobDone, d.digest, "present");
      return Status::Ok();
    }
    const int64_t base = progress_.done;
    PK_RETURN_IF_ERROR(Retrying(
        [&] {
          progress_.done = base;
          return Upload(d);
        },
        d.digest));
    progress_.done = base + d.size;
    ++result_.blobs_uploaded;
    result_.bytes_uploaded += d.size;
    progress_.Emit(TransferEvent::Kind::kBlobDone, d.digest, "uploaded");
    return Status::Ok();
  }

  // One upload session: POST, then PUT (small) or PATCHes and a closing PUT.
  Status Upload(const Descriptor& d) {
    const std::string file = store_.BlobPath(d.digest);
    const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return Status::IOError("cannot open " + file + ": " + std::strerror(errno));
    struct Closer {
      int fd;
      ~Closer() { ::close(fd); }
    } closer{fd};
    auto read_at = [&](int64_t offset, int64_t n, std::string* out) -> Status {
      out->resize(static_cast<size_t>(n));
      int64_t got = 0;
      while (got < n) {
        const ssize_t r =
            ::pread(fd, out->data() + got, static_cast<size_t>(n - got), offset + got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return Status::IOError("cannot read " + file + ": short read");
        got += r;
      }
      return Status::Ok();
    };
    const std::string uploads = "/v2/" + dest_.repository + "/blobs/uploads/";
    net::FetchRequest post;
    post.method = "POST";
    post.url = uploads;
    post.timeout_ms = options_.client.timeout_ms;
    PK_ASSIGN_OR_RETURN(net::FetchResponse res, client_.Fetch(post));
    if (res.status != 202) return HttpError("POST " + uploads, res);
    std::string location = res.Header("Location");
    if (location.empty())
      return Status::IOError(client_.Where("POST " + uploads + ": no Location"));
    const int64_t chunk = std::max<int64_t>(options_.chunk_bytes, 1);
    std::string body;
    int64_t offset = 0;
    if (d.size > chunk) {
      while (offset < d.size) {
        const int64_t n = std::min(chunk, d.size - offset);
        PK_RETURN_IF_ERROR(read_at(offset, n, &body));
        net::FetchRequest patch;
        patch.method = "PATCH";
        patch.url = location;
        patch.body = std::move(body);
        patch.timeout_ms = options_.client.timeout_ms + n / 1000;  // >= 1 MB/s
        patch.headers = {
            {"Content-Type", "application/octet-stream"},
            {"Content-Range", std::to_string(offset) + "-" + std::to_string(offset + n - 1)}};
        PK_ASSIGN_OR_RETURN(res, client_.Fetch(patch));
        if (res.status != 202) return HttpError("PATCH upload of " + d.digest, res);
        if (!res.Header("Location").empty()) location = res.Header("Location");
        offset += n;
        progress_.done += n;
        progress_.Emit(TransferEvent::Kind::kProgress, d.digest);
      }
      body.clear();
    } else {
      PK_RETURN_IF_ERROR(read_at(0, d.size, &body));
    }
    net::FetchRequest put;
    put.method = "PUT";
    put.url = location + (location.find('?') == std::string::npos ? "?" : "&") +
              "digest=" + d.digest.substr(0, 6) + "%3A" + std::string(DigestHex(d.digest));
    put.timeout_ms = options_.client.timeout_ms + static_cast<int64_t>(body.size()) / 1000;
    put.headers = {{"Content-Type", "application/octet-stream"}};
    if (body.empty()) put.headers.push_back({"Content-Length", "0"});
    put.body = std::move(body);
    PK_ASSIGN_OR_RETURN(res, client_.Fetch(put));
    if (res.status != 201) return HttpError("PUT upload of " + d.digest, res);
    return Status::Ok();
  }

  // PUTs `bytes` as the manifest (or index) `reference` (a tag or the digest).
  Status PushManifest(const std::string& bytes, const std::string& media_type,
                      const std::string& reference) {
    const std::string path = "/v2/" + dest_.repository + "/manifests/" + reference;
    const std::string digest = DigestOf(bytes);
    return Retrying(
        [&]() -> Status {
          net::FetchRequest put;
          put.method = "PUT";
          put.url = path;
          put.body = bytes;
          put.timeout_ms = options_.client.timeout_ms;
          put.headers = {
              {"Content-Type", media_type.empty() ? std::string(kOciManifestType) : media_type}};
          PK_ASSIGN_OR_RETURN(net::FetchResponse res, client_.Fetch(put));
          if (res.status != 201) return HttpError("PUT " + path, res);
          const std::string sent = res.Header("Docker-Content-Digest");
          if (!sent.empty() && sent != digest) {
            return Status::Corruption(client_.Where("stored the manifest as " + sent.substr(0, 80) +
                                                    ", expected " + digest));
          }
          result_.manifest_digest = digest;
          return Status::Ok();
        },
        "");
  }

  const Store& store_;
  const RemoteRef& dest_;
  const PushOptions& options_;
  RegistryClient client_;
  PushResult result_;
  TransferProgress progress_{options_.progress};  // after options_
};

}  // namespace

Result<PushResult> Push(const Store& store, const ModelRef& local, const RemoteRef& dest,
                        const PushOptions& options) {
  return Pusher(store, dest, options).Run(local);
}

}  // namespace pocket::registry
