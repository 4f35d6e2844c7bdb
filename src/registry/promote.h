// Promotion by signed tag, and the signature checks behind it and behind `pocket verify
// --signatures` (docs/registry.md, "Signatures and promotion"). A promotion points a tag at
// the manifest another tag names, locally (index.json) or in a registry (a PUT of the same
// manifest bytes under the new tag), only when that manifest carries a valid signature by a
// key of the trust file (RequireTrustedSignature); otherwise nothing changes.
// Called by `pocket promote` and `pocket verify --signatures`. Thread safety: one call per
// thread; the store's own rules (store.h) cover several processes.
#pragma once

#include <string>
#include <vector>

#include "base/status.h"
#include "registry/client.h"
#include "registry/signature.h"
#include "registry/store.h"

namespace pocket::registry {

struct SignatureReport {
  std::string manifest_digest;
  std::string manifest_json;
  std::vector<SignatureCheck> checks;  // one per signature artifact, sorted by its digest
  std::vector<std::string> skipped;    // remote only: referrers that could not be fetched
};

// The signatures the store holds for the manifest `manifest_digest`, each checked
// (`trust` may be null). Corruption when a signature's blobs are missing or damaged.
Result<std::vector<SignatureCheck>> CheckStoredSignatures(const Store& store,
                                                          const std::string& manifest_digest,
                                                          const TrustFile* trust);

// The manifest `ref` names in its registry (tag, or digest when given) and its signatures
// there, each checked.
Result<SignatureReport> CheckRemoteSignatures(const RemoteRef& ref, const TrustFile* trust,
                                              const ClientOptions& options);

struct PromoteResult {
  std::string manifest_digest;
  SignatureCheck signed_by;   // the trusted signature that allowed it
  int signatures_copied = 0;  // remote, to another repository: signatures listed there
};

// Points `to` at the manifest `from` names, in the store, after RequireTrustedSignature.
// NotFound when `from` is not in the store; the refusal's Status otherwise (nothing written).
Result<PromoteResult> PromoteLocal(Store& store, const ModelRef& from, const ModelRef& to,
                                   const TrustFile& trust);

// The same in a registry: `to` must be on the host of `from`. Within one repository the
// manifest is PUT under the new tag (signatures are found by digest, so they follow). To
// another repository the blobs are mounted from the first (POST ?mount=&from=) and the
// signatures pushed there too, then the manifest PUT.
Result<PromoteResult> PromoteRemote(const RemoteRef& from, const RemoteRef& to,
                                    const TrustFile& trust, const ClientOptions& options);

}  // namespace pocket::registry
