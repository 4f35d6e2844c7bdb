// Signature checks over the store and a registry, and promotion (see promote.h). The rule
// itself (which signatures count) is RequireTrustedSignature's, in one place.
#include "registry/promote.h"

#include "registry/referrers.h"

namespace pocket::registry {
namespace {

constexpr int64_t kMaxManifestBytes = 4 << 20;

// The payload layer of a signature artifact; nullptr unless it has exactly one layer
// (CheckSignature then says what is wrong with the artifact).
const Descriptor* PayloadLayer(const Manifest& m) {
  return m.layers.size() == 1 ? &m.layers[0] : nullptr;
}

std::string What(const std::string& name, const std::string& digest) {
  return name + " (" + digest.substr(0, 19) + "...)";
}

}  // namespace

Result<std::vector<SignatureCheck>> CheckStoredSignatures(const Store& store,
                                                          const std::string& manifest_digest,
                                                          const TrustFile* trust) {
  PK_ASSIGN_OR_RETURN(std::vector<Referrer> referrers,
                      store.Referrers(manifest_digest, kSignatureArtifactType));
  std::vector<SignatureCheck> checks;
  for (const Referrer& r : referrers) {
    std::string payload;
    if (const Descriptor* layer = PayloadLayer(r.manifest)) {
      auto bytes = store.ReadBlob(layer->digest, kMaxPayloadBytes);
      if (!bytes.ok()) {
        SignatureCheck c;
        c.digest = r.descriptor.digest;
        c.problem = bytes.status().message();
        checks.push_back(std::move(c));
        continue;
      }
      payload = std::move(bytes).value();
    }
    checks.push_back(
        CheckSignature(r.manifest, r.descriptor.digest, payload, manifest_digest, trust));
  }
  return checks;
}

Result<SignatureReport> CheckRemoteSignatures(const RemoteRef& ref, const TrustFile* trust,
                                              const ClientOptions& options) {
  RegistryClient client(ref.host, options);
  SignatureReport report;
  PK_ASSIGN_OR_RETURN(report.manifest_json,
                      FetchManifest(client, ref.repository,
                                    ref.digest.empty() ? ref.tag : ref.digest, options.timeout_ms));
  report.manifest_digest = DigestOf(report.manifest_json);
  PK_ASSIGN_OR_RETURN(FetchedReferrers fetched,
                      FetchReferrers(client, ref.repository, report.manifest_digest,
                                     kSignatureArtifactType, options.timeout_ms));
  report.skipped = std::move(fetched.skipped);
  for (const ReferrerArtifact& a : fetched.artifacts) {
    // blobs are config then layers: the payload is the second when there is one layer.
    const std::string payload =
        a.manifest.layers.size() == 1 && a.blobs.size() == 2 ? a.blobs[1] : std::string();
    report.checks.push_back(
        CheckSignature(a.manifest, a.digest, payload, report.manifest_digest, trust));
  }
  return report;
}

Result<PromoteResult> PromoteLocal(Store& store, const ModelRef& from, const ModelRef& to,
                                   const TrustFile& trust) {
  PK_ASSIGN_OR_RETURN(TagEntry entry, store.Find(from));
  PK_ASSIGN_OR_RETURN(std::vector<SignatureCheck> checks,
                      CheckStoredSignatures(store, entry.manifest_digest, &trust));
  PK_RETURN_IF_ERROR(
      RequireTrustedSignature(checks, What(from.ToString(), entry.manifest_digest), trust));
  PromoteResult result;
  result.manifest_digest = entry.manifest_digest;
  for (const SignatureCheck& c : checks) {
    if (c.trusted()) {
      result.signed_by = c;
      break;
    }
  }
  PK_ASSIGN_OR_RETURN(std::string manifest,
                      store.ReadBlob(entry.manifest_digest, kMaxManifestBytes));
  PK_RETURN_IF_ERROR(store.AddTag(to, manifest).status());
  return result;
}

Result<PromoteResult> PromoteRemote(const RemoteRef& from, const RemoteRef& to,
                                    const TrustFile& trust, const ClientOptions& options) {
  if (to.host != from.host) {
    return Status::InvalidArgument("promote moves a tag within one registry: " + from.host +
                                   " and " + to.host + " differ (pull, then push instead)");
  }
  if (to.tag.empty() || !to.digest.empty()) {
    return Status::InvalidArgument("promote needs a tag to move: " + to.ToString());
  }
  RegistryClient client(from.host, options);
  PK_ASSIGN_OR_RETURN(
      std::string manifest,
      FetchManifest(client, from.repository, from.digest.empty() ? from.tag : from.digest,
                    options.timeout_ms));
  PromoteResult result;
  result.manifest_digest = DigestOf(manifest);
  PK_ASSIGN_OR_RETURN(FetchedReferrers fetched,
                      FetchReferrers(client, from.repository, result.manifest_digest,
                                     kSignatureArtifactType, options.timeout_ms));
  std::vector<SignatureCheck> checks;
  for (const ReferrerArtifact& a : fetched.artifacts) {
    const std::string payload =
        a.manifest.layers.size() == 1 && a.blobs.size() == 2 ? a.blobs[1] : std::string();
    checks.push_back(CheckSignature(a.manifest, a.digest, payload, result.manifest_digest, &trust));
  }
  if (checks.empty() && !fetched.skipped.empty()) {
    return Status::Corruption(What(from.ToString(), result.manifest_digest) +
                              " has no valid signature: " + fetched.skipped[0]);
  }
  PK_RETURN_IF_ERROR(
      RequireTrustedSignature(checks, What(from.ToString(), result.manifest_digest), trust));
  for (const SignatureCheck& c : checks) {
    if (c.trusted()) {
      result.signed_by = c;
      break;
    }
  }
  auto parsed = ParseManifest(manifest, client.Where("manifest of " + from.ToString()));
  std::string media_type =
      parsed.ok() && !parsed->media_type.empty() ? parsed->media_type : kOciManifestType;
  if (!parsed.ok()) {
    if (!ParseIndex(manifest, "index").ok()) return parsed.status();
    media_type = kOciIndexType;
  }
  if (to.repository != from.repository) {
    if (!parsed.ok()) {
      return Status::NotSupported(
          client.Where(from.ToString() + " is an index; promote it within its repository"));
    }
    std::vector<Descriptor> blobs = {parsed->config};
    blobs.insert(blobs.end(), parsed->layers.begin(), parsed->layers.end());
    PK_RETURN_IF_ERROR(
        MountBlobs(client, blobs, from.repository, to.repository, options.timeout_ms));
    // The manifest first (a referrer's subject should exist), then its signatures.
    PK_RETURN_IF_ERROR(PutManifest(client, to.repository, result.manifest_digest, manifest,
                                   media_type, options.timeout_ms));
    PK_ASSIGN_OR_RETURN(result.signatures_copied,
                        PushReferrers(client, to.repository, result.manifest_digest,
                                      fetched.artifacts, options.timeout_ms));
  }
  PK_RETURN_IF_ERROR(
      PutManifest(client, to.repository, to.tag, manifest, media_type, options.timeout_ms));
  return result;
}

}  // namespace pocket::registry
