// Pull from an OCI distribution registry into the store (see pull.h).
#include "registry/pull.h"

#include <optional>

#include "registry/oci.h"

namespace pocket::registry {
namespace {

constexpr uint64_t kMaxManifestBytes = 4 << 20;
constexpr char kManifestAccept[] =
    "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, "
    "application/vnd.docker.distribution.manifest.v2+json";

std::string Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return std::string(s);
}

// Decimal, non-negative, at most 18 digits; nullopt otherwise.
std::optional<int64_t> ParseCount(std::string_view s) {
  if (s.empty() || s.size() > 18 || s.find_first_not_of("0123456789") != std::string_view::npos) {
    return std::nullopt;
  }
  int64_t v = 0;
  for (char c : s) v = v * 10 + (c - '0');
  return v;
}

std::string HeaderOf(const std::vector<std::pair<std::string, std::string>>& headers,
                     std::string_view name) {
  for (const auto& [k, v] : headers) {
    if (k.size() == name.size() && std::equal(k.begin(), k.end(), name.begin(), [](char a, char b) {
          return std::tolower(a) == std::tolower(b);
        })) {
      return Trim(v);
    }
  }
  return "";
}

class Puller {
 public:
  Puller(Store& store, const RemoteRef& ref, const PullOptions& options)
      : store_(store), ref_(ref), options_(options), client_(ref.host, options.client) {}

  Result<PullResult> Run() {
    const std::string reference = ref_.digest.empty() ? ref_.tag : ref_.digest;
    PK_ASSIGN_OR_RETURN(std::string manifest_bytes, FetchManifest(reference, ref_.digest, 0));
    PK_ASSIGN_OR_RETURN(
        Manifest m, ParseManifest(manifest_bytes, client_.Where("manifest of " + ref_.ToString())));
    if (m.ModelLayer() == nullptr) {
      return Status::InvalidArgument(client_.Where(ref_.ToString() +
                                                   " is not a model: its manifest has no GGUF "
                                                   "layer (" +
                                                   std::string(kGgufLayerType) + ")"));
    }
    std::vector<Descriptor> blobs = {m.config};
    blobs.insert(blobs.end(), m.layers.begin(), m.layers.end());
    for (const Descriptor& d : blobs) total_ += d.size;
    PK_ASSIGN_OR_RETURN(FileLock writer, store_.WriterLock());
    Emit(TransferEvent::Kind::kStart, "", 0, "");
    for (const Descriptor& d : blobs) PK_RETURN_IF_ERROR(PullBlob(d));
    PK_ASSIGN_OR_RETURN(result_.entry, store_.AddTag(ref_.local, manifest_bytes));
    Emit(TransferEvent::Kind::kDone, "", 0, "");
    return result_;
  }

 private:
  void Emit(TransferEvent::Kind kind, const std::string& digest, int64_t resumed,
            std::string message) {
    if (!options_.progress) return;
    TransferEvent e;
    e.kind = kind;
    e.digest = digest;
    e.done_bytes = done_;
    e.total_bytes = total_;
    e.resumed_bytes = resumed;
    e.message = std::move(message);
    options_.progress(e);
  }

  void OnRetry(const Status& s, int attempt, int64_t wait_ms, const std::string& digest) {
    Emit(TransferEvent::Kind::kRetry, digest, 0,
         "attempt " + std::to_string(attempt) + " failed (" + s.message() + "); retrying in " +
             std::to_string(wait_ms) + " ms");
  }

  // The manifest `reference` (tag or digest), checked against `want_digest` when given and
  // the registry's Docker-Content-Digest when sent; an index of one manifest is followed.
  Result<std::string> FetchManifest(const std::string& reference, const std::string& want_digest,
                                    int depth) {
    net::FetchResponse res;
    const std::string path = "/v2/" + ref_.repository + "/manifests/" + reference;
    Status s = client_.WithRetries(
        [&]() -> Status {
          net::FetchRequest req;
          req.url = path;
          req.headers = {{"Accept", kManifestAccept}};
          req.timeout_ms = options_.client.timeout_ms;
          req.max_response_bytes = kMaxManifestBytes;
          PK_ASSIGN_OR_RETURN(res, client_.Fetch(req));
          if (res.status == 200) return Status::Ok();
          if (res.status == 404) {
            return Status::NotFound(client_.Where(ref_.host + "/" + ref_.repository + ":" +
                                                  reference + " not found (HTTP 404)"));
          }
          return Status::IOError(
              client_.Where("GET " + path + ": HTTP " + std::to_string(res.status)));
        },
        [&](const Status& e, int attempt, int64_t wait_ms) { OnRetry(e, attempt, wait_ms, ""); });
    PK_RETURN_IF_ERROR(s);
    const std::string got = DigestOf(res.body);
    if (!want_digest.empty() && got != want_digest) {
      return Status::Corruption(client_.Where("manifest " + want_digest + " of " + ref_.repository +
                                              " hashes to " + got));
    }
    const std::string sent = Trim(res.Header("Docker-Content-Digest"));
    if (!sent.empty() && sent != got) {
      return Status::Corruption(client_.Where("manifest of " + ref_.ToString() + " hashes to " +
                                              got + " but the registry says " +
                                              sent.substr(0, 80)));
    }
    // An index: follow it when it holds one manifest (choosing among variants is §3's).
    const std::string type = Trim(res.Header("Content-Type"));
    bool is_index = type.rfind(kOciIndexType, 0) == 0;
    if (type.empty() || type.rfind("application/json", 0) == 0) {
      is_index =
          res.body.find(kOciIndexType) != std::string::npos && ParseIndex(res.body, "index").ok();
    }
    if (is_index) {
      PK_ASSIGN_OR_RETURN(Index index,
                          ParseIndex(res.body, client_.Where("index of " + ref_.ToString())));
      if (index.manifests.size() != 1 || depth > 0) {
        return Status::NotSupported(client_.Where(
            ref_.ToString() + " is an index of " + std::to_string(index.manifests.size()) +
            " manifests; pull one of them by digest (NAME@sha256:...)"));
      }
      return FetchManifest(index.manifests[0].digest, index.manifests[0].digest, depth + 1);
    }
    return std::move(res.body);
  }

  Status PullBlob(const Descriptor& d) {
    if (store_.HasBlob(d.digest, d.size)) {
      done_ += d.size;
      ++result_.blobs_present;
      Emit(TransferEvent::Kind::kBlobDone, d.digest, 0, "present");
      return Status::Ok();
    }
    PK_ASSIGN_OR_RETURN(std::optional<BlobDownload> dl, store_.OpenBlobDownload(d.digest, d.size));
    if (!dl) {  // another process fetched it while we waited for its lock
      done_ += d.size;
      ++result_.blobs_present;
      Emit(TransferEvent::Kind::kBlobDone, d.digest, 0, "present");
      return Status::Ok();
    }
    const int64_t base = done_;
    const int64_t resumed = dl->have();
    result_.bytes_resumed += resumed;
    done_ = base + dl->have();
    Emit(TransferEvent::Kind::kStart, d.digest, resumed, "");
    for (int digest_failures = 0;; ++digest_failures) {
      PK_RETURN_IF_ERROR(client_.WithRetries([&] { return FetchOnce(*dl, base); },
                                             [&](const Status& e, int attempt, int64_t wait_ms) {
                                               OnRetry(e, attempt, wait_ms, d.digest);
                                             }));
      Status c = dl->Commit();
      if (c.ok()) break;
      // Commit discarded the bytes; a corrupt transfer gets one more try.
      done_ = base;
      if (c.code() != StatusCode::kCorruption || digest_failures >= 1) {
        return Status(c.code(), client_.Where(ref_.ToString() + ": " + c.message()));
      }
      Emit(TransferEvent::Kind::kRetry, d.digest, 0, c.message() + "; downloading it again");
    }
    done_ = base + d.size;
    ++result_.blobs_downloaded;
    Emit(TransferEvent::Kind::kBlobDone, d.digest, resumed, "downloaded");
    return Status::Ok();
  }

  // One GET of the rest of the blob (a Range from what the partial file holds).
  Status FetchOnce(BlobDownload& dl, int64_t base) {
    if (dl.have() == dl.size()) return Status::Ok();
    const std::string path = "/v2/" + ref_.repository + "/blobs/" + dl.digest();
    const std::string what = "blob " + dl.digest();
    net::FetchRequest req;
    req.url = path;
    req.timeout_ms = int64_t{7} * 24 * 3600 * 1000;  // a transfer may take long; it must not stall
    req.idle_timeout_ms = options_.idle_timeout_ms;
    req.max_response_bytes = static_cast<uint64_t>(dl.size()) + (1 << 20);
    const int64_t from = dl.have();
    if (from > 0) req.headers.push_back({"Range", "bytes=" + std::to_string(from) + "-"});
    Status refused;  // set by the handlers: a lie about sizes, a write error
    auto on_head = [&](int status, const std::vector<std::pair<std::string, std::string>>& h) {
      const auto length = ParseCount(HeaderOf(h, "Content-Length"));
      if (status == 200) {
        if (dl.have() > 0) {
          if (Status s = dl.Restart(); !s.ok()) {
            refused = s;
            return false;
          }
        }
        if (length && *length != dl.size()) {
          refused = Status::Corruption(
              client_.Where(what + ": Content-Length " + std::to_string(*length) +
                            " but the manifest says " + std::to_string(dl.size()) + " bytes"));
          return false;
        }
      } else if (status == 206) {
        const std::string range = HeaderOf(h, "Content-Range");  // bytes START-END/TOTAL
        const size_t dash = range.find('-'), slash = range.find('/');
        const auto start = range.rfind("bytes ", 0) == 0 && dash != std::string::npos
                               ? ParseCount(range.substr(6, dash - 6))
                               : std::nullopt;
        const auto total =
            slash != std::string::npos ? ParseCount(range.substr(slash + 1)) : std::nullopt;
        if (!start || *start != dl.have()) {
          refused = Status::IOError(
              client_.Where(what + ": asked for bytes " + std::to_string(dl.have()) +
                            "-, got Content-Range '" + range.substr(0, 80) + "'"));
          return false;
        }
        if ((total && *total != dl.size()) || (length && *length != dl.size() - dl.have())) {
          refused = Status::Corruption(client_.Where(
              what + ": the registry's sizes (Content-Range '" + range.substr(0, 80) +
              "', Content-Length " + (length ? std::to_string(*length) : std::string("-")) +
              ") disagree with the manifest's " + std::to_string(dl.size()) + " bytes"));
          return false;
        }
      }
      return true;
    };
    auto on_body = [&](std::string_view piece) {
      if (Status s = dl.Append(piece); !s.ok()) {
        refused = s.code() == StatusCode::kCorruption
                      ? Status::Corruption(client_.Where(s.message() + " (the registry lies "
                                                                       "about its size)"))
                      : s;
        return false;
      }
      result_.bytes_downloaded += static_cast<int64_t>(piece.size());
      done_ = base + dl.have();
      Emit(TransferEvent::Kind::kProgress, dl.digest(), 0, "");
      return true;
    };
    auto res = client_.FetchStream(req, on_body, on_head);
    if (!refused.ok()) return refused;
    if (!res.ok()) return res.status();
    if (res->status == 404) {
      return Status::NotFound(
          client_.Where(what + " of " + ref_.repository + " not found (HTTP 404)"));
    }
    if (res->status == 416) {  // our partial file is not a prefix it knows: start over
      PK_RETURN_IF_ERROR(dl.Restart());
      return Status::IOError(client_.Where("reset: " + what + ": HTTP 416 for a Range request"));
    }
    if (res->status != 200 && res->status != 206) {
      return Status::IOError(
          client_.Where("GET " + path + ": HTTP " + std::to_string(res->status)));
    }
    if (dl.have() != dl.size()) {  // a body that ended early without a framing error
      return Status::IOError(client_.Where("reset: " + what + " ended at byte " +
                                           std::to_string(dl.have()) + " of " +
                                           std::to_string(dl.size())));
    }
    return Status::Ok();
  }

  Store& store_;
  const RemoteRef& ref_;
  const PullOptions& options_;
  RegistryClient client_;
  PullResult result_;
  int64_t done_ = 0, total_ = 0;
};

}  // namespace

Result<PullResult> Pull(Store& store, const RemoteRef& ref, const PullOptions& options) {
  return Puller(store, ref, options).Run();
}

}  // namespace pocket::registry
