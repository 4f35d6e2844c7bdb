// `pocket registry prune`: removes the expired staging artifacts of one namespace of a registry
// speaking the OCI distribution spec (staging.h says what expired means). The repositories come
// from GET /v2/_catalog (following its Link pages), kept when they are NAMESPACE/staging/...; their
// tags from GET /v2/<repo>/tags/list; each tag's manifest is fetched and its
// io.pocket.staging.expires annotation read. An expired manifest is deleted by digest (DELETE
// /v2/<repo>/manifests/<digest>), which drops every tag of that repository naming it, and so is its
// referrers-tag-schema index (tag sha256-<hex>, where `pocket sign` keeps signatures on a registry
// without the referrers API). The registry frees the blobs at its own garbage-collect (`registry
// garbage-collect config.yml` for the CNCF registry). Called by src/cli/registry_cmd.cc. Thread
// safety: one call per thread.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "registry/client.h"

namespace pocket::registry {

// REGISTRY[/NAMESPACE] ("127.0.0.1:5000/team", "registry.example.com"). The host follows
// ParseRemoteRef's rule; without one, `default_host` ($POCKET_REGISTRY) is the registry and all of
// `text` the namespace. InvalidArgument naming `text` otherwise, or when the namespace is not a
// valid repository name.
struct RegistryNamespace {
  std::string host;
  std::string name_space;  // "" for the registry's top level
  // The repository prefix of its staging area: "NAMESPACE/staging/" or "staging/".
  std::string StagingPrefix() const;
  std::string ToString() const;  // host[/namespace]
};
Result<RegistryNamespace> ParseRegistryNamespace(std::string_view text,
                                                 std::string_view default_host = "");

struct PruneOptions {
  ClientOptions client;
  int64_t now_s = 0;     // Unix seconds: what expired means (CurrentUnixSeconds())
  bool dry_run = false;  // report what would go, delete nothing
};

struct PrunedManifest {
  std::string repository;         // "team/staging/tiny"
  std::vector<std::string> tags;  // the tags naming it, sorted
  std::string digest;
  std::string expires;  // the annotation as written; "" when there is none
  std::string note;     // why kept: "expires in 23h59m", "no expiry", "bad expiry: ..."
};

struct PruneReport {
  int repositories = 0;                 // staging repositories looked at
  std::vector<PrunedManifest> removed;  // deleted (dry run: would be)
  std::vector<PrunedManifest> kept;     // not expired, no expiry, or a malformed one
  int referrer_indexes_removed = 0;     // sha256-<hex> tags of removed manifests
};

// The wire parsers prune applies to a registry's replies (untrusted bytes; fuzzed by
// staging_fuzz.cc). ParseNameList: the string array `field` of a catalog page
// ({"repositories": [...]}) or a tags page ({"name": ..., "tags": [...] or null}); entries
// that are not strings are skipped; Corruption naming `what` when the body is not a JSON
// object or `field` is neither an array nor null/absent (read as empty).
Result<std::vector<std::string>> ParseNameList(std::string_view body, std::string_view field,
                                               std::string_view what);
// The string annotations of a manifest or index body; empty when it is not a JSON object or
// has none (values that are not strings are skipped).
std::map<std::string, std::string> ManifestAnnotations(std::string_view body);

// Looks at every staging repository of `ns` and deletes its expired manifests (none with dry_run).
// IOError, one line naming the registry, for network, auth and HTTP errors; a registry whose delete
// is disabled (HTTP 405) is "... deleting manifests is disabled (HTTP 405): set
// storage.delete.enabled: true in its config" and the first such DELETE stops the pass (nothing
// else was deleted).
Result<PruneReport> PruneStaging(const RegistryNamespace& ns, const PruneOptions& options);

}  // namespace pocket::registry
