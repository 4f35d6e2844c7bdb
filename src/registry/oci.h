// The OCI documents the store keeps (OCI image spec v1.1): descriptors, image manifests,
// the image index that is a layout's index.json, and the media types Pocket gives a GGUF
// model (docs/registry.md says why Pocket's own types rather than ModelPack's). Parsers take
// untrusted bytes (a file on disk anyone could have edited; later, a registry's reply):
// depth-bounded JSON, every field type-checked, digests checked against the grammar
// "sha256:" + 64 lower-case hex, sizes non-negative; errors are InvalidArgument/Corruption
// with one line naming `what` and the field. Serializers are deterministic (nlohmann's
// sorted keys, no whitespace) so equal documents are equal blobs and dedupe.
// Called by the store (and later pull/push). Thread safety: values and pure functions.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace pocket::registry {

// OCI's own types.
inline constexpr char kOciManifestType[] = "application/vnd.oci.image.manifest.v1+json";
inline constexpr char kOciIndexType[] = "application/vnd.oci.image.index.v1+json";
// Docker's v2 manifest, which Ollama's manifests use: the same fields, read alike.
inline constexpr char kDockerManifestType[] =
    "application/vnd.docker.distribution.manifest.v2+json";
inline constexpr char kOciLayoutVersion[] = "1.0.0";
inline constexpr char kRefNameAnnotation[] = "org.opencontainers.image.ref.name";
inline constexpr char kCreatedAnnotation[] = "org.opencontainers.image.created";
inline constexpr char kTitleAnnotation[] = "org.opencontainers.image.title";
// Pocket's: the artifact, its config and its GGUF layer (docs/registry.md).
inline constexpr char kModelArtifactType[] = "application/vnd.pocket.model.v1";
inline constexpr char kModelConfigType[] = "application/vnd.pocket.model.config.v1+json";
inline constexpr char kGgufLayerType[] = "application/vnd.pocket.model.gguf.v1";
// GGUF layer types of other tools, recognised when reading a manifest (a manifest pulled
// from Ollama's library, or a ModelPack artifact whose raw weight is a GGUF file).
inline constexpr char kOllamaModelLayerType[] = "application/vnd.ollama.image.model";
inline constexpr char kModelPackRawWeightType[] = "application/vnd.cncf.model.weight.v1.raw";
// The total size of a tag's blobs (manifest, config, layers), in decimal bytes, kept in the
// index so `pocket ls` reads one file.
inline constexpr char kSizeAnnotation[] = "io.pocket.size";
// Manifest annotations of staging (staging.h): when a staged artifact expires (RFC 3339 UTC).
// The expiry counts only under a "staging" repository component, so a promoted copy of the
// same manifest outside it never expires.
inline constexpr char kStagingExpiresAnnotation[] = "io.pocket.staging.expires";
// Manifest annotations of lineage (model_config.h LineageAnnotations), "sha256:<hex>" each:
// the parent model's GGUF (its layer digest in any store), the canonical recipe and the
// training data, from the GGUF provenance keys pocket.parent_sha256, pocket.recipe_sha256
// and pocket.data_sha256 when the trainer (or quantizer) wrote them.
inline constexpr char kLineageParentAnnotation[] = "io.pocket.lineage.parent";
inline constexpr char kLineageRecipeAnnotation[] = "io.pocket.lineage.recipe";
inline constexpr char kLineageDataAnnotation[] = "io.pocket.lineage.data";
// A variant in a multi-variant image index (registry/variant.h): each child manifest's
// descriptor says what the chooser needs without fetching the child: llama.cpp's name of
// its quantization, its parameter count, its GGUF layer's bytes, the config's
// min_memory_bytes, the shape runtime::EstimateMemory reads ("ctx=2048,d_ff=...", see
// SerializeShape) and, optionally, the CPU instruction set it needs ("avx2", "avx512").
inline constexpr char kQuantizationAnnotation[] = "io.pocket.quantization";
inline constexpr char kParameterCountAnnotation[] = "io.pocket.parameter_count";
inline constexpr char kWeightBytesAnnotation[] = "io.pocket.weight_bytes";
inline constexpr char kMinMemoryAnnotation[] = "io.pocket.min_memory_bytes";
inline constexpr char kShapeAnnotation[] = "io.pocket.shape";
inline constexpr char kRequiresIsaAnnotation[] = "io.pocket.requires.isa";

// "sha256:<64 lower-case hex>".
bool IsValidDigest(std::string_view digest);
// The hex part of a valid digest. REQUIRES: IsValidDigest(digest).
std::string_view DigestHex(std::string_view digest);
// "sha256:" + the SHA-256 of `bytes`.
std::string DigestOf(std::string_view bytes);

struct Descriptor {
  std::string media_type;
  std::string digest;
  int64_t size = 0;
  std::string artifact_type;  // optional; empty when absent
  std::map<std::string, std::string> annotations;
  // Fields Pocket does not read (platform, urls, data, ...) as one JSON object, "" when
  // none: kept so that rewriting an index another tool wrote (skopeo) loses nothing.
  std::string extra_json;
  bool operator==(const Descriptor&) const = default;
};

struct Manifest {
  std::string media_type = kOciManifestType;
  std::string artifact_type;  // optional
  Descriptor config;
  std::vector<Descriptor> layers;
  std::map<std::string, std::string> annotations;
  // OCI 1.1: the manifest this one refers to (a signature's signed model); set only for
  // referrers.
  std::optional<Descriptor> subject;
  bool operator==(const Manifest&) const = default;

  // The first layer that holds a GGUF model (Pocket's, Ollama's or ModelPack's type);
  // nullptr when none does.
  const Descriptor* ModelLayer() const;
};

struct Index {
  std::vector<Descriptor> manifests;
  std::string extra_json;  // the index's other fields (annotations, subject, ...), as above
  bool operator==(const Index&) const = default;
};

// Parse an image manifest / image index. `what` names the source in messages ("manifest
// sha256:ab12...", "/home/u/.local/share/pocket/index.json"). Corruption for anything
// malformed: not JSON, too deep, a missing or mistyped field, schemaVersion other than 2, a
// bad digest or negative size, a media type that is not the document's (a manifest may be
// OCI's or Docker v2's).
Result<Manifest> ParseManifest(std::string_view bytes, std::string_view what);
Result<Index> ParseIndex(std::string_view bytes, std::string_view what);

// Deterministic JSON of each (no trailing newline).
std::string SerializeManifest(const Manifest& manifest);
std::string SerializeIndex(const Index& index);

}  // namespace pocket::registry
