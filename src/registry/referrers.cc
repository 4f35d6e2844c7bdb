// Referrers on a registry (the OCI 1.1 API, else the referrers tag schema), the store's
// referrers as bytes to push, and the manifest GET/PUT and blob mounts of a remote
// promotion (see referrers.h).
#include "registry/referrers.h"

#include <algorithm>
#include <set>

#include "registry/signature.h"

namespace pocket::registry {
namespace {

constexpr uint64_t kMaxManifestBytes = 4 << 20;
constexpr char kManifestAccept[] =
    "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, "
    "application/vnd.docker.distribution.manifest.v2+json";

std::string OneLine(std::string s) {
  s = s.substr(0, 200);
  for (char& c : s) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return s;
}

Status HttpError(const RegistryClient& client, const std::string& what,
                 const net::FetchResponse& res) {
  const std::string body = OneLine(res.body);
  return Status::IOError(client.Where(what + ": HTTP " + std::to_string(res.status) +
                                      (body.empty() ? "" : " " + body)));
}

// A GET of `path` whose whole body is returned (status as it is), retried while transient.
Result<net::FetchResponse> Get(RegistryClient& client, const std::string& path,
                               const std::string& accept, uint64_t max_bytes, int64_t timeout_ms) {
  net::FetchResponse res;
  PK_RETURN_IF_ERROR(client.WithRetries([&]() -> Status {
    net::FetchRequest req;
    req.url = path;
    if (!accept.empty()) req.headers = {{"Accept", accept}};
    req.timeout_ms = timeout_ms;
    req.max_response_bytes = max_bytes;
    PK_ASSIGN_OR_RETURN(res, client.Fetch(req));
    if (IsTransientStatus(res.status)) return HttpError(client, "GET " + path, res);
    return Status::Ok();
  }));
  return res;
}

// A small blob, by digest (following the redirects registries send blob GETs to), checked
// against digest and size.
Result<std::string> GetSmallBlob(RegistryClient& client, const std::string& repository,
                                 const Descriptor& d, int64_t timeout_ms) {
  if (d.size > kMaxPayloadBytes) {
    return Status::InvalidArgument("blob " + d.digest + " has " + std::to_string(d.size) +
                                   " bytes; a signature's blobs are at most " +
                                   std::to_string(kMaxPayloadBytes));
  }
  const std::string path = "/v2/" + repository + "/blobs/" + d.digest;
  std::string body;
  int status = 0;
  PK_RETURN_IF_ERROR(client.WithRetries([&]() -> Status {
    body.clear();
    net::FetchRequest req;
    req.url = path;
    req.timeout_ms = timeout_ms;
    req.max_response_bytes = static_cast<uint64_t>(d.size) + 1;
    PK_ASSIGN_OR_RETURN(net::FetchResponse res, client.FetchStream(
                                                    req,
                                                    [&](std::string_view piece) {
                                                      body.append(piece);
                                                      return body.size() <=
                                                             static_cast<size_t>(d.size);
                                                    },
                                                    nullptr));
    status = res.status;
    if (IsTransientStatus(res.status)) return HttpError(client, "GET " + path, res);
    return Status::Ok();
  }));
  if (status != 200) {
    return Status::NotFound(client.Where("GET " + path + ": HTTP " + std::to_string(status)));
  }
  if (static_cast<int64_t>(body.size()) != d.size || DigestOf(body) != d.digest) {
    return Status::Corruption(client.Where("blob " + d.digest + " of " + repository +
                                           " does not match its digest and size"));
  }
  return body;
}

// The referrers index: the OCI 1.1 API, else the tag schema; an empty index when neither
// has one.
Result<Index> ReferrersIndex(RegistryClient& client, const std::string& repository,
                             const std::string& subject_digest, int64_t timeout_ms,
                             bool* from_api) {
  const std::string api = "/v2/" + repository + "/referrers/" + subject_digest;
  PK_ASSIGN_OR_RETURN(net::FetchResponse res,
                      Get(client, api, kOciIndexType, kMaxManifestBytes, timeout_ms));
  *from_api = res.status == 200;
  if (res.status != 200) {
    const std::string tag = "sha256-" + std::string(DigestHex(subject_digest));
    const std::string path = "/v2/" + repository + "/manifests/" + tag;
    PK_ASSIGN_OR_RETURN(res, Get(client, path, kManifestAccept, kMaxManifestBytes, timeout_ms));
    if (res.status == 404) return Index{};
    if (res.status != 200) return HttpError(client, "GET " + path, res);
  }
  return ParseIndex(res.body, client.Where("referrers of " + subject_digest + " in " + repository));
}

}  // namespace

Result<std::string> FetchManifest(RegistryClient& client, const std::string& repository,
                                  const std::string& reference, int64_t timeout_ms) {
  const std::string path = "/v2/" + repository + "/manifests/" + reference;
  PK_ASSIGN_OR_RETURN(net::FetchResponse res,
                      Get(client, path, kManifestAccept, kMaxManifestBytes, timeout_ms));
  if (res.status == 404) {
    return Status::NotFound(
        client.Where(client.host() + "/" + repository + ":" + reference + " not found (HTTP 404)"));
  }
  if (res.status != 200) return HttpError(client, "GET " + path, res);
  const std::string got = DigestOf(res.body);
  const std::string sent = res.Header("Docker-Content-Digest");
  if ((IsValidDigest(reference) && got != reference) || (!sent.empty() && sent != got)) {
    return Status::Corruption(client.Where("manifest " + repository + ":" + reference +
                                           " hashes to " + got + ", not what was asked for"));
  }
  return std::move(res.body);
}

Status PutManifest(RegistryClient& client, const std::string& repository,
                   const std::string& reference, const std::string& manifest_json,
                   const std::string& media_type, int64_t timeout_ms) {
  const std::string path = "/v2/" + repository + "/manifests/" + reference;
  const std::string digest = DigestOf(manifest_json);
  return client.WithRetries([&]() -> Status {
    net::FetchRequest put;
    put.method = "PUT";
    put.url = path;
    put.body = manifest_json;
    put.timeout_ms = timeout_ms;
    put.headers = {{"Content-Type", media_type}};
    PK_ASSIGN_OR_RETURN(net::FetchResponse res, client.Fetch(put));
    if (res.status != 201) return HttpError(client, "PUT " + path, res);
    const std::string sent = res.Header("Docker-Content-Digest");
    if (!sent.empty() && sent != digest) {
      return Status::Corruption(
          client.Where("stored " + path + " as " + OneLine(sent) + ", expected " + digest));
    }
    return Status::Ok();
  });
}

Status MountBlobs(RegistryClient& client, const std::vector<Descriptor>& blobs,
                  const std::string& from_repository, const std::string& to_repository,
                  int64_t timeout_ms) {
  for (const Descriptor& d : blobs) {
    const std::string head_path = "/v2/" + to_repository + "/blobs/" + d.digest;
    int status = 0;
    PK_RETURN_IF_ERROR(client.WithRetries([&]() -> Status {
      net::FetchRequest req;
      req.method = "HEAD";
      req.url = head_path;
      req.timeout_ms = timeout_ms;
      PK_ASSIGN_OR_RETURN(net::FetchResponse res, client.Fetch(req));
      status = res.status;
      if (IsTransientStatus(res.status)) return HttpError(client, "HEAD " + head_path, res);
      return Status::Ok();
    }));
    if (status == 200) continue;
    const std::string mount = "/v2/" + to_repository +
                              "/blobs/uploads/?mount=" + d.digest.substr(0, 6) + "%3A" +
                              std::string(DigestHex(d.digest)) + "&from=" + from_repository;
    PK_RETURN_IF_ERROR(client.WithRetries([&]() -> Status {
      net::FetchRequest req;
      req.method = "POST";
      req.url = mount;
      req.timeout_ms = timeout_ms;
      PK_ASSIGN_OR_RETURN(net::FetchResponse res, client.Fetch(req));
      if (res.status == 201) return Status::Ok();
      if (IsTransientStatus(res.status)) return HttpError(client, "POST " + mount, res);
      return Status::IOError(client.Where(
          "cannot mount blob " + d.digest + " from " + from_repository + " into " + to_repository +
          " (HTTP " + std::to_string(res.status) + "); push the model there instead"));
    }));
  }
  return Status::Ok();
}

Result<FetchedReferrers> FetchReferrers(RegistryClient& client, const std::string& repository,
                                        const std::string& subject_digest,
                                        std::string_view artifact_type, int64_t timeout_ms) {
  FetchedReferrers out;
  bool from_api = false;
  PK_ASSIGN_OR_RETURN(Index index,
                      ReferrersIndex(client, repository, subject_digest, timeout_ms, &from_api));
  std::set<std::string> seen;
  for (const Descriptor& d : index.manifests) {
    // The index's artifactType is a hint (the API filters by it); the manifest decides.
    if (!artifact_type.empty() && !d.artifact_type.empty() && d.artifact_type != artifact_type) {
      continue;
    }
    if (!seen.insert(d.digest).second) continue;
    auto skip = [&](const Status& why) {
      out.skipped.push_back("referrer " + d.digest + ": " + why.message());
    };
    auto bytes = FetchManifest(client, repository, d.digest, timeout_ms);
    if (!bytes.ok()) {
      if (bytes.status().code() != StatusCode::kNotFound &&
          bytes.status().code() != StatusCode::kCorruption) {
        return bytes.status();
      }
      skip(bytes.status());
      continue;
    }
    ReferrerArtifact a;
    a.digest = d.digest;
    a.manifest_json = std::move(bytes).value();
    auto m = ParseManifest(a.manifest_json, "referrer " + d.digest);
    if (!m.ok()) {
      skip(m.status());
      continue;
    }
    a.manifest = std::move(m).value();
    if (!artifact_type.empty() && a.manifest.artifact_type != artifact_type) continue;
    if (!a.manifest.subject || a.manifest.subject->digest != subject_digest) {
      skip(Status::Corruption("its subject is not " + subject_digest));
      continue;
    }
    std::vector<Descriptor> blobs = {a.manifest.config};
    blobs.insert(blobs.end(), a.manifest.layers.begin(), a.manifest.layers.end());
    Status blob_status;
    for (const Descriptor& b : blobs) {
      auto blob = GetSmallBlob(client, repository, b, timeout_ms);
      if (!blob.ok()) {
        blob_status = blob.status();
        break;
      }
      a.blobs.push_back(std::move(blob).value());
    }
    if (!blob_status.ok()) {
      if (blob_status.code() == StatusCode::kIOError) return blob_status;
      skip(blob_status);
      continue;
    }
    out.artifacts.push_back(std::move(a));
  }
  std::sort(
      out.artifacts.begin(), out.artifacts.end(),
      [](const ReferrerArtifact& a, const ReferrerArtifact& b) { return a.digest < b.digest; });
  return out;
}

Result<int> PushReferrers(RegistryClient& client, const std::string& repository,
                          const std::string& subject_digest,
                          const std::vector<ReferrerArtifact>& artifacts, int64_t timeout_ms) {
  if (artifacts.empty()) return 0;
  for (const ReferrerArtifact& a : artifacts) {
    std::vector<Descriptor> named = {a.manifest.config};
    named.insert(named.end(), a.manifest.layers.begin(), a.manifest.layers.end());
    for (size_t i = 0; i < named.size() && i < a.blobs.size(); ++i) {
      const Descriptor& d = named[i];
      const std::string head_path = "/v2/" + repository + "/blobs/" + d.digest;
      int status = 0;
      PK_RETURN_IF_ERROR(client.WithRetries([&]() -> Status {
        net::FetchRequest req;
        req.method = "HEAD";
        req.url = head_path;
        req.timeout_ms = timeout_ms;
        PK_ASSIGN_OR_RETURN(net::FetchResponse res, client.Fetch(req));
        status = res.status;
        if (IsTransientStatus(res.status)) return HttpError(client, "HEAD " + head_path, res);
        return Status::Ok();
      }));
      if (status == 200) continue;
      // Small: one POST then one PUT with the bytes (push.h's monolithic upload).
      PK_RETURN_IF_ERROR(client.WithRetries([&]() -> Status {
        const std::string uploads = "/v2/" + repository + "/blobs/uploads/";
        net::FetchRequest post;
        post.method = "POST";
        post.url = uploads;
        post.timeout_ms = timeout_ms;
        PK_ASSIGN_OR_RETURN(net::FetchResponse res, client.Fetch(post));
        if (res.status != 202) return HttpError(client, "POST " + uploads, res);
        const std::string location = res.Header("Location");
        if (location.empty())
          return Status::IOError(client.Where("POST " + uploads + ": no Location"));
        net::FetchRequest put;
        put.method = "PUT";
        put.url = location + (location.find('?') == std::string::npos ? "?" : "&") +
                  "digest=sha256%3A" + std::string(DigestHex(d.digest));
        put.timeout_ms = timeout_ms;
        put.headers = {{"Content-Type", "application/octet-stream"}};
        put.body = a.blobs[i];
        PK_ASSIGN_OR_RETURN(res, client.Fetch(put));
        if (res.status != 201) return HttpError(client, "PUT upload of " + d.digest, res);
        return Status::Ok();
      }));
    }
    PK_RETURN_IF_ERROR(PutManifest(
        client, repository, a.digest, a.manifest_json,
        a.manifest.media_type.empty() ? std::string(kOciManifestType) : a.manifest.media_type,
        timeout_ms));
  }
  bool from_api = false;
  PK_ASSIGN_OR_RETURN(Index index,
                      ReferrersIndex(client, repository, subject_digest, timeout_ms, &from_api));
  if (from_api) {
    // The registry keeps the list itself (it read each pushed manifest's subject).
    return static_cast<int>(artifacts.size());
  }
  int added = 0;
  for (const ReferrerArtifact& a : artifacts) {
    const bool listed = std::any_of(index.manifests.begin(), index.manifests.end(),
                                    [&](const Descriptor& d) { return d.digest == a.digest; });
    if (listed) continue;
    Descriptor d{
        a.manifest.media_type.empty() ? std::string(kOciManifestType) : a.manifest.media_type,
        a.digest,
        static_cast<int64_t>(a.manifest_json.size()),
        a.manifest.artifact_type,
        a.manifest.annotations,
        ""};
    index.manifests.push_back(std::move(d));
    ++added;
  }
  if (added == 0) return 0;
  const std::string tag = "sha256-" + std::string(DigestHex(subject_digest));
  PK_RETURN_IF_ERROR(
      PutManifest(client, repository, tag, SerializeIndex(index), kOciIndexType, timeout_ms));
  return added;
}

Result<std::vector<ReferrerArtifact>> StoredReferrers(const Store& store,
                                                      const std::string& subject_digest,
                                                      std::string_view artifact_type) {
  PK_ASSIGN_OR_RETURN(std::vector<Referrer> referrers,
                      store.Referrers(subject_digest, artifact_type));
  std::vector<ReferrerArtifact> out;
  for (Referrer& r : referrers) {
    ReferrerArtifact a;
    a.digest = r.descriptor.digest;
    PK_ASSIGN_OR_RETURN(a.manifest_json, store.ReadBlob(a.digest, kMaxManifestBytes));
    a.manifest = std::move(r.manifest);
    std::vector<Descriptor> named = {a.manifest.config};
    named.insert(named.end(), a.manifest.layers.begin(), a.manifest.layers.end());
    for (const Descriptor& d : named) {
      PK_ASSIGN_OR_RETURN(std::string bytes, store.ReadBlob(d.digest, kMaxPayloadBytes));
      a.blobs.push_back(std::move(bytes));
    }
    out.push_back(std::move(a));
  }
  return out;
}

}  // namespace pocket::registry
