// The remote staging prune (see prune.h): list, read each tag's manifest, then delete the expired
// ones. Everything is read before anything is deleted, so a registry that refuses deletes (405) is
// found out before the pass has changed anything.
#include "registry/prune.h"

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <tuple>
#include <utility>

#include "base/json_limits.h"
#include "registry/oci.h"
#include "registry/staging.h"

namespace pocket::registry {
namespace {

constexpr uint64_t kMaxListBytes = 16 << 20;     // a catalog or tags page
constexpr uint64_t kMaxManifestBytes = 4 << 20;  // as pull's
constexpr int kMaxPages = 10000;                 // of 1000 entries each: far past any registry
constexpr char kManifestAccept[] =
    "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, "
    "application/vnd.docker.distribution.manifest.v2+json";

// The next page of a paginated list: RFC 5988 `Link: </v2/_catalog?last=x&n=1000>; rel="next"`
// (distribution spec), "" when there is none.
std::string NextLink(const net::FetchResponse& res) {
  const std::string link = res.Header("Link");
  const size_t open = link.find('<'), close = link.find('>');
  if (open == std::string::npos || close == std::string::npos || close < open ||
      link.find("rel=\"next\"", close) == std::string::npos) {
    return "";
  }
  return link.substr(open + 1, close - open - 1);
}

class Pruner {
 public:
  Pruner(const RegistryNamespace& ns, const PruneOptions& options)
      : ns_(ns), options_(options), client_(ns.host, options.client) {}

  Result<PruneReport> Run() {
    PK_ASSIGN_OR_RETURN(std::vector<std::string> repos,
                        List("/v2/_catalog?n=1000", "repositories"));
    const std::string prefix = ns_.StagingPrefix();
    for (const std::string& repo : repos) {
      if (repo.rfind(prefix, 0) != 0 || !IsValidName(repo)) continue;
      ++report_.repositories;
      PK_RETURN_IF_ERROR(Look(repo));
    }
    if (!options_.dry_run) {
      for (const PrunedManifest& m : report_.removed)
        PK_RETURN_IF_ERROR(Delete(m.repository, m.digest));
      for (const auto& [repo, digest] : referrer_indexes_) {
        PK_RETURN_IF_ERROR(Delete(repo, digest));
      }
    }
    report_.referrer_indexes_removed = static_cast<int>(referrer_indexes_.size());
    auto by_name = [](const PrunedManifest& a, const PrunedManifest& b) {
      return std::tie(a.repository, a.tags) < std::tie(b.repository, b.tags);
    };
    std::sort(report_.removed.begin(), report_.removed.end(), by_name);
    std::sort(report_.kept.begin(), report_.kept.end(), by_name);
    return report_;
  }

 private:
  Status HttpError(const std::string& what, const net::FetchResponse& res) {
    std::string body = res.body.substr(0, 200);
    for (char& c : body) {
      if (c == '\n' || c == '\r') c = ' ';
    }
    return Status::IOError(client_.Where(what + ": HTTP " + std::to_string(res.status) +
                                         (body.empty() ? "" : " " + body)));
  }

  // A GET, retried while the registry answers 5xx/429 or the connection fails; other statuses
  // are returned for the caller to judge.
  Result<net::FetchResponse> Get(const std::string& url, uint64_t max_bytes,
                                 std::vector<std::pair<std::string, std::string>> headers = {}) {
    net::FetchResponse res;
    PK_RETURN_IF_ERROR(client_.WithRetries([&]() -> Status {
      net::FetchRequest req;
      req.url = url;
      req.headers = headers;
      req.timeout_ms = options_.client.timeout_ms;
      req.max_response_bytes = max_bytes;
      PK_ASSIGN_OR_RETURN(res, client_.Fetch(req));
      if (IsTransientStatus(res.status)) return HttpError("GET " + url, res);
      return Status::Ok();
    }));
    return res;
  }

  // The string array `field` of a paginated list (catalog or tags); a 404 is an empty list (a
  // repository whose tags were all deleted).
  Result<std::vector<std::string>> List(std::string url, const char* field) {
    std::vector<std::string> out;
    for (int page = 0; !url.empty(); ++page) {
      if (page == kMaxPages) {
        return Status::IOError(
            client_.Where("GET " + url + ": more than " + std::to_string(kMaxPages) + " pages"));
      }
      PK_ASSIGN_OR_RETURN(net::FetchResponse res, Get(url, kMaxListBytes));
      if (res.status == 404) break;
      if (res.status != 200) return HttpError("GET " + url, res);
      PK_ASSIGN_OR_RETURN(std::vector<std::string> names,
                          ParseNameList(res.body, field, client_.Where("GET " + url)));
      out.insert(out.end(), names.begin(), names.end());
      url = NextLink(res);
    }
    return out;
  }

  // Reads every tag's manifest of `repo` and sorts them into removed/kept.
  Status Look(const std::string& repo) {
    PK_ASSIGN_OR_RETURN(std::vector<std::string> tags,
                        List("/v2/" + repo + "/tags/list?n=1000", "tags"));
    std::sort(tags.begin(), tags.end());
    std::map<std::string, PrunedManifest> by_digest;
    std::vector<std::pair<std::string, std::string>> referrer_tags;  // tag, its digest
    for (const std::string& tag : tags) {
      if (!IsValidTag(tag)) continue;
      const std::string path = "/v2/" + repo + "/manifests/" + tag;
      PK_ASSIGN_OR_RETURN(net::FetchResponse res,
                          Get(path, kMaxManifestBytes, {{"Accept", kManifestAccept}}));
      if (res.status == 404) continue;  // deleted meanwhile
      if (res.status != 200) return HttpError("GET " + path, res);
      // The registry keeps the bytes as pushed: their digest is the one to delete.
      const std::string digest = DigestOf(res.body);
      if (tag.size() == 71 && tag.rfind("sha256-", 0) == 0) {
        referrer_tags.emplace_back(tag, digest);
        continue;
      }
      PrunedManifest& m = by_digest[digest];
      m.repository = repo;
      m.digest = digest;
      m.tags.push_back(tag);
      if (m.tags.size() > 1) continue;
      const std::map<std::string, std::string> annotations = ManifestAnnotations(res.body);
      if (auto it = annotations.find(kStagingExpiresAnnotation); it != annotations.end()) {
        m.expires = it->second;
      }
      auto expiry = ExpiryOf(annotations);
      if (!expiry.ok()) {
        m.note = "bad expiry: " + expiry.status().message();
      } else if (!expiry->has_value()) {
        m.note = "no expiry";
      } else if (**expiry > options_.now_s) {
        m.note = "expires in " + FormatTtl(**expiry - options_.now_s);
      }
    }
    std::set<std::string> removed;
    for (auto& [digest, m] : by_digest) {
      if (m.note.empty()) {
        removed.insert(digest);
        report_.removed.push_back(std::move(m));
      } else {
        report_.kept.push_back(std::move(m));
      }
    }
    // A referrers index tagged sha256-<hex> of a removed manifest goes with it.
    for (const auto& [tag, digest] : referrer_tags) {
      if (removed.count("sha256:" + tag.substr(7))) referrer_indexes_.emplace_back(repo, digest);
    }
    return Status::Ok();
  }

  Status Delete(const std::string& repo, const std::string& digest) {
    const std::string path = "/v2/" + repo + "/manifests/" + digest;
    return client_.WithRetries([&]() -> Status {
      net::FetchRequest req;
      req.method = "DELETE";
      req.url = path;
      req.timeout_ms = options_.client.timeout_ms;
      PK_ASSIGN_OR_RETURN(net::FetchResponse res, client_.Fetch(req));
      if (res.status == 202 || res.status == 200 || res.status == 204) return Status::Ok();
      if (res.status == 404) return Status::Ok();  // gone already (another prune)
      if (res.status == 405) {
        return Status::IOError(client_.Where("deleting manifests is disabled (HTTP 405 on DELETE " +
                                             path +
                                             "): set storage.delete.enabled: true in its config"));
      }
      return HttpError("DELETE " + path, res);
    });
  }

  const RegistryNamespace& ns_;
  const PruneOptions& options_;
  RegistryClient client_;
  PruneReport report_;
  std::vector<std::pair<std::string, std::string>> referrer_indexes_;  // repo, digest
};

}  // namespace

Result<std::vector<std::string>> ParseNameList(std::string_view body, std::string_view field,
                                               std::string_view what) {
  auto j = ParseUntrustedJson(body, what);
  if (!j.ok()) return Status::Corruption(j.status().message());
  const std::string key(field);
  if (!j->is_object()) return Status::Corruption(std::string(what) + ": not a JSON object");
  std::vector<std::string> out;
  auto it = j->find(key);
  if (it == j->end() || it->is_null()) return out;
  if (!it->is_array()) {
    return Status::Corruption(std::string(what) + ": '" + key + "' is not a list");
  }
  for (const auto& v : *it) {
    if (v.is_string()) out.push_back(v.get<std::string>());
  }
  return out;
}

std::map<std::string, std::string> ManifestAnnotations(std::string_view body) {
  std::map<std::string, std::string> out;
  auto j = ParseUntrustedJson(body, "manifest");
  if (!j.ok() || !j->is_object()) return out;
  auto a = j->find("annotations");
  if (a == j->end() || !a->is_object()) return out;
  for (const auto& [k, v] : a->items()) {
    if (v.is_string()) out[k] = v.get<std::string>();
  }
  return out;
}

std::string RegistryNamespace::StagingPrefix() const {
  return (name_space.empty() ? "" : name_space + "/") + kStagingComponent + "/";
}

std::string RegistryNamespace::ToString() const {
  return name_space.empty() ? host : host + "/" + name_space;
}

Result<RegistryNamespace> ParseRegistryNamespace(std::string_view text,
                                                 std::string_view default_host) {
  RegistryNamespace ns;
  const size_t slash = text.find('/');
  const std::string_view first = text.substr(0, slash);
  const bool has_host = first.find('.') != std::string_view::npos ||
                        first.find(':') != std::string_view::npos || first == "localhost";
  std::string_view rest;
  if (has_host) {
    ns.host = std::string(first);
    rest = slash == std::string_view::npos ? std::string_view() : text.substr(slash + 1);
  } else if (!default_host.empty()) {
    ns.host = std::string(default_host);
    rest = text;
  } else {
    return Status::InvalidArgument("'" + std::string(text.substr(0, 200)) +
                                   "' names no registry: write HOST[:PORT][/NAMESPACE] (e.g. "
                                   "127.0.0.1:5000/team) or set POCKET_REGISTRY");
  }
  while (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
  ns.name_space = std::string(rest);
  // The host must fit a stored name's grammar, as pull's; the namespace a repository's.
  if (!IsValidName(ns.host + "/x") ||
      (!rest.empty() && !IsValidName(ns.host + "/" + ns.name_space))) {
    return Status::InvalidArgument(
        "'" + std::string(text.substr(0, 200)) +
        "' is not REGISTRY[/NAMESPACE] (a lower-case host[:port], then a repository path)");
  }
  return ns;
}

Result<PruneReport> PruneStaging(const RegistryNamespace& ns, const PruneOptions& options) {
  return Pruner(ns, options).Run();
}

}  // namespace pocket::registry
