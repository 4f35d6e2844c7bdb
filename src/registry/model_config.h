// The config blob of a GGUF model artifact (media type kModelConfigType, docs/registry.md):
// what a user or a variant chooser wants to know about a model without opening its weights,
// read from the GGUF header at import. JSON fields:
//   format            "gguf"
//   gguf_version      the file's GGUF version
//   architecture      general.architecture ("llama", "qwen2", ...)
//   name              general.name, when present
//   file_type         general.file_type (llama.cpp's LLAMA_FTYPE number), when present
//   quantization      llama.cpp's name of file_type ("Q4_0", "Q4_K_M", "F16", ...); without
//                     file_type, the ggml type holding most of the tensor bytes
//   parameter_count   elements of all tensors
//   context_length    <arch>.context_length, when present
//   tokenizer_model   tokenizer.ggml.model ("gpt2", "llama", ...), when present
//   chat_template     true when tokenizer.chat_template is present
//   provenance        scalar keys under "pocket.", "general.source." and "general.base_model."
//                     (the trainer's recipe/data/parent hashes), as strings
//   min_memory_bytes  the file's bytes plus an F16 KV cache at min(context_length, 4096)
//                     tokens (what `pocket run` allocates by default): a lower bound;
//                     runtime::EstimateMemory adds the workspaces
// Called by Store::Import. Thread safety: pure functions.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "base/status.h"
#include "formats/gguf.h"

namespace pocket::registry {

// The config of `gguf` (opened with allow_unsupported_types, so any ggml type lists).
// InvalidArgument naming the file when general.architecture is missing.
Result<nlohmann::json> ModelConfigFromGguf(const formats::GgufFile& gguf);

// The lineage manifest annotations (oci.h kLineage*Annotation) of a config made by
// ModelConfigFromGguf: from its provenance, pocket.parent_sha256 -> io.pocket.lineage.parent,
// pocket.recipe_sha256 -> .recipe, pocket.data_sha256 -> .data, each as "sha256:<hex>". A key
// that is absent or not 64 hex digits gives no annotation (the config keeps it as written).
// Empty for a file without them, so a plain model's manifest is what it always was.
std::map<std::string, std::string> LineageAnnotations(const nlohmann::json& config);

// llama.cpp's name of a general.file_type value ("Q4_K_M"); "" when unknown.
std::string_view FileTypeName(uint64_t file_type);

}  // namespace pocket::registry
