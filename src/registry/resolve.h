// The one rule by which every model command reads its model argument (run, chat, serve,
// perplexity, bench, inspect, agent): a file that exists wins; else an argument that looks
// like a path (ends in .gguf, starts with '/', './', '../' or '~') is that path (missing, or
// a directory the loader refuses); else it is NAME[:TAG] in the user's store
// (DefaultStoreRoot()), and only when the store has no such tag is a directory of that name
// returned for the loader to refuse. docs/registry.md states it.
// Called by src/cli (model_flags.cc, serve.cc). Thread safety: reads env and files only.
#pragma once

#include <string>

#include "base/status.h"

namespace pocket::registry {

// The file to open for `arg`: `arg` itself when it names an existing file, else the GGUF
// blob of the stored model NAME[:TAG]. NotFound "model file 'x.gguf' does not exist" for a
// path-like argument; NotFound "'x' is neither a file nor a model in the store <root> ..."
// for a valid name not in the store, or neither a file nor a valid name (NotFound, not
// InvalidArgument: a command's exit code for a missing model stays 1);
// Corruption when the tag's blobs are damaged (names the blob).
Result<std::string> ResolveModelPath(const std::string& arg);

}  // namespace pocket::registry
