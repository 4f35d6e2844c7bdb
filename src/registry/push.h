// `pocket push`: copies a stored model to a registry speaking the OCI distribution spec v2.
// Each blob (config, layers) is checked with HEAD and uploaded only when missing: POST to
// open an upload session, then one PUT with the bytes for a blob up to chunk_bytes, or
// PATCHes of chunk_bytes each followed by the closing PUT (so memory stays bounded for
// multi-GB models); the manifest goes last, as the same bytes the store holds, so its
// digest is the same on both sides. A rerun uploads nothing that is already there. A tag
// that names an index of variants (variant.h) pushes every child (blobs, then the child
// manifest by digest) and then the index under the tag; NotFound, before sending anything,
// when the store lacks a child.
// Called by `pocket push` (src/cli/push.cc). Thread safety: one call per thread.
#pragma once

#include <cstdint>
#include <string>

#include "base/status.h"
#include "registry/client.h"
#include "registry/store.h"

namespace pocket::registry {

struct PushOptions {
  ClientOptions client;
  TransferFn progress;                      // may be empty
  int64_t chunk_bytes = int64_t{64} << 20;  // PATCH size, and the largest single PUT
};

struct PushResult {
  std::string manifest_digest;
  int blobs_uploaded = 0;
  int blobs_present = 0;  // the registry had them
  int64_t bytes_uploaded = 0;
  int signatures = 0;         // the model's signatures in the store, pushed with it
  int signatures_listed = 0;  // of which the registry's referrers list lacked before
};

// Pushes NAME:TAG `local` from the store as `dest` (which must carry a tag), then the
// model's signatures (referrers.h: each signature artifact, and the referrers tag
// sha256-<hex> listing them). Errors as
// Pull's: NotFound for a tag not in the store, IOError for network, auth and HTTP errors,
// each one line naming the registry.
Result<PushResult> Push(const Store& store, const ModelRef& local, const RemoteRef& dest,
                        const PushOptions& options);

}  // namespace pocket::registry
