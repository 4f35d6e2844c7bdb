// Referrers (signatures) on a registry speaking the OCI distribution spec, and the remote
// half of promotion. Referrers are found with the OCI 1.1 referrers API
// (GET /v2/NAME/referrers/DIGEST) and, where a registry lacks it (distribution 2.8, Debian's
// docker-registry, answers 404), with the spec's fallback, the referrers tag schema: the
// tag "sha256-<hex of the subject>" holds an OCI image index of the referrers' descriptors.
// Pushing writes each referrer's blobs and manifest (by digest) and then that tag, merged
// with what the registry already lists there (two pushers at once may lose one entry: the
// fallback has no compare-and-swap; pushing again restores it).
// Signature artifacts are small: a referrer's manifest is at most 4 MiB and each of its
// blobs at most kMaxPayloadBytes; anything larger, or not matching its digest, is skipped
// and reported, never stored.
// Called by registry::Push and registry::Pull (signatures travel with a model), `pocket
// promote --remote` and `pocket verify --signatures --remote`. Thread safety: one call per
// thread (a RegistryClient is single-threaded).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "registry/client.h"
#include "registry/oci.h"
#include "registry/store.h"

namespace pocket::registry {

// A referrer with the bytes of its manifest and of its blobs (config, then layers).
struct ReferrerArtifact {
  std::string digest;
  std::string manifest_json;
  Manifest manifest;
  std::vector<std::string> blobs;
};

struct FetchedReferrers {
  std::vector<ReferrerArtifact> artifacts;  // sorted by digest
  std::vector<std::string> skipped;         // one line per referrer that could not be used
};

// The referrers of `subject_digest` in `repository` whose artifactType is `artifact_type`,
// with their blobs. Network, auth and HTTP errors fail the call (one line naming the
// registry); a registry with no referrers for it gives an empty result.
Result<FetchedReferrers> FetchReferrers(RegistryClient& client, const std::string& repository,
                                        const std::string& subject_digest,
                                        std::string_view artifact_type, int64_t timeout_ms);

// Uploads `artifacts` (blobs the registry lacks, then each manifest by digest) to
// `repository` and lists them under the referrers tag of `subject_digest`. Returns how many
// the tag lists that it did not before.
Result<int> PushReferrers(RegistryClient& client, const std::string& repository,
                          const std::string& subject_digest,
                          const std::vector<ReferrerArtifact>& artifacts, int64_t timeout_ms);

// The store's referrers of `subject_digest` of `artifact_type`, with their blobs' bytes.
Result<std::vector<ReferrerArtifact>> StoredReferrers(const Store& store,
                                                      const std::string& subject_digest,
                                                      std::string_view artifact_type);

// The manifest `reference` (tag or digest) of `repository`, its bytes checked against the
// registry's Docker-Content-Digest (and the digest, when `reference` is one). NotFound for
// a 404.
Result<std::string> FetchManifest(RegistryClient& client, const std::string& repository,
                                  const std::string& reference, int64_t timeout_ms);

// PUT `manifest_json` (of media type `media_type`) as `reference` in `repository`, checking
// the digest the registry says it stored.
Status PutManifest(RegistryClient& client, const std::string& repository,
                   const std::string& reference, const std::string& manifest_json,
                   const std::string& media_type, int64_t timeout_ms);

// Makes each blob available in `to_repository`: present already (HEAD), or mounted from
// `from_repository` (POST ?mount=&from=, 201). IOError naming the blob when the registry
// would not mount it.
Status MountBlobs(RegistryClient& client, const std::vector<Descriptor>& blobs,
                  const std::string& from_repository, const std::string& to_repository,
                  int64_t timeout_ms);

}  // namespace pocket::registry
