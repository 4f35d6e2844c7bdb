// Pull from an OCI distribution registry into the store (see pull.h).
#include "registry/pull.h"

#include <cctype>
#include <optional>
#include <vector>

#include "registry/oci.h"
#include "registry/referrers.h"
#include "registry/signature.h"

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
  // A Hugging Face-layout mirror: `client` on its endpoint, the one blob at `blob_url`.
  Puller(Store& store, const RemoteRef& ref, const PullOptions& options, RegistryClient client,
         std::string blob_url)
      : store_(store),
        ref_(ref),
        options_(options),
        client_(std::move(client)),
        blob_url_(std::move(blob_url)) {}

  // The hf:// pull: one GGUF blob fetched like a layer, then imported (config from its
  // header) under ref_.local.
  Result<PullResult> RunHf(const Descriptor& d, const std::string& title) {
    progress_.total = d.size;
    PK_ASSIGN_OR_RETURN(FileLock writer, store_.WriterLock());
    progress_.Emit(TransferEvent::Kind::kStart, "");
    PK_RETURN_IF_ERROR(PullBlob(d));
    ImportOptions import;
    import.title = title;
    auto imported = store_.Import(store_.BlobPath(d.digest), ref_.local, import);
    if (!imported.ok()) {
      return Status(imported.status().code(), client_.Where(ref_.repository + "/" + title + ": " +
                                                            imported.status().message()));
    }
    result_.entry = imported->entry;
    progress_.Emit(TransferEvent::Kind::kDone, "");
    return result_;
  }

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
    for (const Descriptor& d : blobs) progress_.total += d.size;
    PK_ASSIGN_OR_RETURN(FileLock writer, store_.WriterLock());
    progress_.Emit(TransferEvent::Kind::kStart, "");
    for (const Descriptor& d : blobs) PK_RETURN_IF_ERROR(PullBlob(d));
    if (index_bytes_.empty()) {
      PK_ASSIGN_OR_RETURN(result_.entry, store_.AddTag(ref_.local, manifest_bytes));
    } else {  // a variant: the child, then the tag names the index
      PK_RETURN_IF_ERROR(store_.PutManifest(manifest_bytes).status());
      PK_ASSIGN_OR_RETURN(result_.entry, store_.AddIndexTag(ref_.local, index_bytes_));
    }
    if (options_.signatures) PK_RETURN_IF_ERROR(PullSignatures());
    progress_.Emit(TransferEvent::Kind::kDone, "");
    return result_;
  }

 private:
  // The model's signatures (referrers.h), fetched with this client (its token) and stored.
  // A failure here is reported, not fatal: the model is in and tagged, and a signature is
  // checked when it is used (promote, verify --signatures), not when it arrives.
  Status PullSignatures() {
    auto fetched = FetchReferrers(client_, ref_.repository, result_.entry.manifest_digest,
                                  kSignatureArtifactType, options_.client.timeout_ms);
    if (!fetched.ok()) {
      result_.signature_problems.push_back(fetched.status().message());
      return Status::Ok();
    }
    result_.signature_problems = std::move(fetched->skipped);
    for (const ReferrerArtifact& a : fetched->artifacts) {
      auto stored = store_.AddReferrer(a.manifest_json, a.blobs);
      if (!stored.ok()) {
        result_.signature_problems.push_back("referrer " + a.digest + ": " +
                                             stored.status().message());
        continue;
      }
      ++result_.signatures;
    }
    return Status::Ok();
  }

  void OnRetry(const Status& s, int attempt, int64_t wait_ms, const std::string& digest) {
    progress_.Retry(digest, s, attempt, wait_ms);
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
      if (depth > 0 || index.manifests.empty()) {
        return Status::NotSupported(client_.Where(
            ref_.ToString() + " is an index of " + std::to_string(index.manifests.size()) +
            " manifests" + (depth > 0 ? " inside an index" : "") +
            "; pull one of them by digest (NAME@sha256:...)"));
      }
      if (index.manifests.size() == 1) {  // as before variants: the one manifest is the tag
        return FetchManifest(index.manifests[0].digest, index.manifests[0].digest, depth + 1);
      }
      // Variants: fetch only the chosen child; the tag will name the index.
      const std::vector<Variant> variants = VariantsOf(index);
      VariantRequest request = options_.variants;
      request.available = nullptr;
      PK_ASSIGN_OR_RETURN(VariantChoice choice, ChooseVariant(variants, request, ref_.ToString()));
      result_.variant_line = ref_.ToString() + ": " + choice.line;
      index_bytes_ = std::move(res.body);
      const std::string child = index.manifests[choice.index].digest;
      return FetchManifest(child, child, depth + 1);
    }
    return std::move(res.body);
  }

  Status PullBlob(const Descriptor& d) {
    if (store_.HasBlob(d.digest, d.size)) {
      progress_.done += d.size;
      ++result_.blobs_present;
      progress_.Emit(TransferEvent::Kind::kBlobDone, d.digest, "present");
      return Status::Ok();
    }
    PK_ASSIGN_OR_RETURN(std::optional<BlobDownload> dl, store_.OpenBlobDownload(d.digest, d.size));
    if (!dl) {  // another process fetched it while we waited for its lock
      progress_.done += d.size;
      ++result_.blobs_present;
      progress_.Emit(TransferEvent::Kind::kBlobDone, d.digest, "present");
      return Status::Ok();
    }
    const int64_t base = progress_.done;
    const int64_t resumed = dl->have();
    result_.bytes_resumed += resumed;
    progress_.done = base + dl->have();
    progress_.Emit(TransferEvent::Kind::kStart, d.digest, "", resumed);
    for (int digest_failures = 0;; ++digest_failures) {
      PK_RETURN_IF_ERROR(client_.WithRetries([&] { return FetchOnce(*dl, base); },
                                             [&](const Status& e, int attempt, int64_t wait_ms) {
                                               OnRetry(e, attempt, wait_ms, d.digest);
                                             }));
      Status c = dl->Commit();
      if (c.ok()) break;
      // Commit discarded the bytes; a corrupt transfer gets one more try.
      progress_.done = base;
      if (c.code() != StatusCode::kCorruption || digest_failures >= 1) {
        return Status(c.code(), client_.Where(ref_.ToString() + ": " + c.message()));
      }
      progress_.Emit(TransferEvent::Kind::kRetry, d.digest, c.message() + "; downloading it again");
    }
    progress_.done = base + d.size;
    ++result_.blobs_downloaded;
    progress_.Emit(TransferEvent::Kind::kBlobDone, d.digest, "downloaded", resumed);
    return Status::Ok();
  }

  // One GET of the rest of the blob (a Range from what the partial file holds).
  Status FetchOnce(BlobDownload& dl, int64_t base) {
    if (dl.have() == dl.size()) return Status::Ok();
    const std::string path =
        blob_url_.empty() ? "/v2/" + ref_.repository + "/blobs/" + dl.digest() : blob_url_;
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
      progress_.done = base + dl.have();
      progress_.Emit(TransferEvent::Kind::kProgress, dl.digest());
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
  std::string blob_url_;     // hf://: the file's resolve URL instead of /v2/.../blobs/
  std::string index_bytes_;  // the variant index the tag named, when it was one
  PullResult result_;
  TransferProgress progress_{options_.progress};  // after options_
};

bool IsHfPart(std::string_view s) {
  if (s.empty() || s == "." || s == ".." || s.size() > 96) return false;
  for (char c : s) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.') {
      return false;
    }
  }
  return true;
}

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace

Result<HfRef> ParseHfRef(std::string_view text) {
  const std::string quoted = "'" + std::string(text.substr(0, 200)) + "'";
  if (text.rfind("hf://", 0) != 0) {
    return Status::InvalidArgument(quoted + " does not start with hf://");
  }
  std::vector<std::string> parts;
  std::string_view rest = text.substr(5);
  while (true) {
    const size_t slash = rest.find('/');
    parts.emplace_back(rest.substr(0, slash));
    if (slash == std::string_view::npos) break;
    rest = rest.substr(slash + 1);
  }
  if (parts.size() < 3) {
    return Status::InvalidArgument(quoted + ": expected hf://ORG/REPO/FILE.gguf");
  }
  for (const std::string& p : parts) {
    if (!IsHfPart(p)) {
      return Status::InvalidArgument(quoted + ": '" + p.substr(0, 100) +
                                     "' is not a valid part (letters, digits, '-', '_', '.'; "
                                     "not '.' or '..')");
    }
  }
  HfRef r;
  r.repo = parts[0] + "/" + parts[1];
  for (size_t i = 2; i < parts.size(); ++i) r.file += (i > 2 ? "/" : "") + parts[i];
  const std::string& base = parts.back();
  if (base.size() <= 5 || Lower(base.substr(base.size() - 5)) != ".gguf") {
    return Status::InvalidArgument(quoted + ": the file must be a .gguf");
  }
  r.local.name = "hf.co/" + Lower(r.repo);
  r.local.tag = base.substr(0, base.size() - 5);
  if (!IsValidName(r.local.name) || !IsValidTag(r.local.tag)) {
    return Status::InvalidArgument(quoted + ": cannot be stored as " + r.local.name + ":" +
                                   r.local.tag);
  }
  return r;
}

Result<PullResult> PullHf(Store& store, const HfRef& ref, const std::string& endpoint,
                          const PullOptions& options) {
  PK_ASSIGN_OR_RETURN(net::Url u, net::ParseUrl(endpoint));
  std::string base = endpoint;
  while (!base.empty() && base.back() == '/') base.pop_back();
  const bool default_port = u.port == (u.tls ? "443" : "80");
  const std::string host = default_port ? u.host : u.host + ":" + u.port;
  ClientOptions client_options = options.client;
  client_options.insecure = client_options.insecure || !u.tls;
  RegistryClient client(host, client_options);
  const std::string url = base + "/" + ref.repo + "/resolve/main/" + ref.file;
  // The HEAD of the resolve URL, not followed: a mirror (like huggingface.co) answers with a
  // redirect to its storage and names the LFS object there: X-Linked-Etag is its sha256,
  // X-Linked-Size its size (else ETag / Content-Length of a file served directly).
  net::FetchResponse head;
  PK_RETURN_IF_ERROR(client.WithRetries([&]() -> Status {
    net::FetchRequest req;
    req.method = "HEAD";
    req.url = url;
    req.timeout_ms = client_options.timeout_ms;
    PK_ASSIGN_OR_RETURN(head, client.Fetch(req));
    if (head.status == 200 || (head.status >= 300 && head.status < 400)) return Status::Ok();
    if (head.status == 404) {
      return Status::NotFound(client.Where(url + " not found (HTTP 404)"));
    }
    return Status::IOError(client.Where("HEAD " + url + ": HTTP " + std::to_string(head.status)));
  }));
  std::string etag = head.Header("X-Linked-Etag");
  if (etag.empty()) etag = head.Header("ETag");
  etag = Trim(etag);
  if (etag.rfind("W/", 0) == 0) etag = etag.substr(2);
  if (etag.size() >= 2 && etag.front() == '"' && etag.back() == '"') {
    etag = etag.substr(1, etag.size() - 2);
  }
  std::string size_text = head.Header("X-Linked-Size");
  if (size_text.empty()) size_text = head.Header("Content-Length");
  const auto size = ParseCount(Trim(size_text));
  const std::string digest = "sha256:" + Lower(etag);
  if (!IsValidDigest(digest)) {
    return Status::NotSupported(client.Where(
        url + ": no sha256 ETag (got '" + etag.substr(0, 80) +
        "'); only files stored with Git LFS (whose ETag is their sha256) can be verified"));
  }
  if (!size) {
    return Status::InvalidArgument(client.Where(url + ": no X-Linked-Size or Content-Length"));
  }
  RemoteRef remote;
  remote.host = host;
  remote.repository = ref.repo;
  remote.tag = ref.local.tag;
  remote.local = ref.local;
  Descriptor d{kGgufLayerType, digest, *size, "", {}, ""};
  const std::string title = ref.file.substr(ref.file.rfind('/') + 1);
  return Puller(store, remote, options, std::move(client), url).RunHf(d, title);
}

Result<PullResult> Pull(Store& store, const RemoteRef& ref, const PullOptions& options) {
  return Puller(store, ref, options).Run();
}

}  // namespace pocket::registry
