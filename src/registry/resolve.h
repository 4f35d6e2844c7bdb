// The one rule by which every model command reads its model argument (run, chat, serve,
// perplexity, bench, inspect, agent): a file that exists wins; else an argument that looks
// like a path (ends in .gguf, starts with '/', './', '../' or '~') is that path (missing, or
// a directory the loader refuses); else it is NAME[:TAG] in the user's store
// (DefaultStoreRoot()), and only when the store has no such tag is a directory of that name
// returned for the loader to refuse. docs/registry.md states it.
// Called by src/cli (model_flags.cc, serve.cc). Thread safety: reads env and files only.
#pragma once

#include <string>

#include <functional>

#include "base/status.h"
#include "registry/variant.h"

namespace pocket::registry {

// How a stored index of variants (variant.h) is resolved to one model: `request` gives the
// facts, preference and memory estimate (src/cli's uses runtime::EstimateMemory), and
// `on_choice` is told the choice's one line (src/cli prints it to stderr). Unset: the
// machine's facts (ReadMachineFacts), quality, the min_memory_bytes annotation, silence.
struct VariantPolicy {
  std::function<Result<VariantRequest>()> request;
  std::function<void(const std::string& line)> on_choice;
};
// Installs the process's policy. Call before any thread resolves a model (main, once).
void SetVariantPolicy(VariantPolicy policy);

struct ResolvedModel {
  std::string path;
  std::string variant_line;  // the choice's line when the argument named an index, else ""
};
// ResolveModelPath's rule, with the variant choice: a NAME:TAG that is an index resolves to
// the GGUF blob of the variant the policy chooses among those in the store
// (ResourceExhausted with the numbers when none of them fits).
Result<ResolvedModel> ResolveModel(const std::string& arg);

// The file to open for `arg`: `arg` itself when it names an existing file, else the GGUF
// blob of the stored model NAME[:TAG] (of the chosen variant when NAME:TAG is an index).
// NotFound "model file 'x.gguf' does not exist" for a path-like argument; NotFound "'x' is
// neither a file nor a model in the store <root> ..." for a valid name not in the store, or
// neither a file nor a valid name (NotFound, not InvalidArgument: a command's exit code for
// a missing model stays 1); Corruption when the tag's blobs are damaged (names the blob).
Result<std::string> ResolveModelPath(const std::string& arg);

}  // namespace pocket::registry
