// `pocket pull`: copies a model from a registry speaking the OCI distribution spec v2 into
// the local store. The manifest is fetched (OCI manifest, OCI index of one manifest, or
// Docker v2; an index of several is a model's variants: only the chosen one is fetched, and
// the tag then names the index, stored as it came, store.h), checked against the digest
// asked for or the registry's Docker-Content-Digest,
// and must name a GGUF layer. Each blob the store lacks is downloaded under its lock (two
// processes pulling one blob download it once) into a partial file (a rerun after a kill
// continues where it stopped), sha256-verified while streaming, with retries and backoff on
// transient failures and one retry after a digest mismatch. A registry whose
// Content-Length or Content-Range disagrees with the manifest's sizes is refused at once.
// Only when every blob is in is the tag written.
// Called by `pocket pull` (src/cli/pull.cc). Thread safety: one call per thread; calls in
// several processes on one store are safe (store.h).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"
#include "registry/client.h"
#include "registry/store.h"
#include "registry/variant.h"

namespace pocket::registry {

struct PullOptions {
  ClientOptions client;
  TransferFn progress;              // may be empty
  int64_t idle_timeout_ms = 30000;  // a blob transfer that stalls this long is retried
  bool signatures = true;           // also fetch the model's signatures (referrers.h)
  // An index of several manifests is a model's variants (variant.h): this chooses the one
  // fetched (its `available` is ignored: every child of a registry's index is there).
  VariantRequest variants;
};

struct PullResult {
  TagEntry entry;
  int blobs_downloaded = 0;
  int blobs_present = 0;         // already in the store (or fetched meanwhile by another process)
  int64_t bytes_downloaded = 0;  // received over the network in this call
  int64_t bytes_resumed = 0;     // taken from partial files of an earlier run
  int signatures = 0;            // signature artifacts stored with the model
  // One line per signature (or referrers list) that could not be fetched or stored; the
  // model itself is pulled all the same (a signature is checked when it is used).
  std::vector<std::string> signature_problems;
  std::string variant_line;      // the choice's line (variant.h) when the tag was an index
};

// Errors: InvalidArgument (not a model, malformed reply), NotFound (the registry has no such
// manifest or blob), Corruption (digest mismatch, sizes the registry lies about), IOError
// (network, auth, HTTP status, the store), each one line naming the registry and the
// reference or blob. On any error the tag is left as it was. Once the tag is written, the
// model's signatures (the referrers of its manifest, referrers.h) are fetched and stored
// when options.signatures; what goes wrong there is reported in signature_problems, and
// the pull succeeds.
Result<PullResult> Pull(Store& store, const RemoteRef& ref, const PullOptions& options);

// hf://ORG/REPO/FILE.gguf (FILE may be in folders): a file of a Hugging Face-layout
// repository, at revision main, stored as hf.co/org/repo:FILE-without-.gguf (lower-cased
// name). Parts are letters, digits, '-', '_', '.' (not '.' or '..'). InvalidArgument naming
// the text otherwise.
struct HfRef {
  std::string repo;  // "ORG/REPO" as written
  std::string file;  // "FILE.gguf" or "dir/FILE.gguf"
  ModelRef local;
};
Result<HfRef> ParseHfRef(std::string_view text);

// Pulls an hf:// file from a Hugging Face-layout server at `endpoint` ("https://huggingface.co"
// or a mirror's base URL): HEAD {endpoint}/ORG/REPO/resolve/main/FILE without following
// redirects gives the file's sha256 (X-Linked-Etag, else ETag) and size (X-Linked-Size, else
// Content-Length); the GET follows redirects and is resumed, verified and retried as a layer
// of Pull; the file is then imported (store.h) under ref.local. NotSupported when the ETag
// is not a sha256 (a file not stored with Git LFS cannot be verified).
Result<PullResult> PullHf(Store& store, const HfRef& ref, const std::string& endpoint,
                          const PullOptions& options);

}  // namespace pocket::registry
