// What the store commands (import, ls, show, rm, gc, verify) share: the --store option
// (default: registry::DefaultStoreRoot(), shown in --help), and human-readable sizes.
// Called from their Configure/main functions (single-threaded).
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <string>

#include "base/status.h"
#include "registry/reference.h"

namespace pocket::cli {

// Adds --store DIR to `app`, defaulting to the per-user store ("" when there is none; the
// command then fails with DefaultStoreRoot's message).
void AddStoreOption(CLI::App& app, std::string* store);

// `store` or, when empty, DefaultStoreRoot().
Result<std::string> StoreRoot(const std::string& store);

// NAME[:TAG], as ParseModelRef, the error naming the argument.
Result<registry::ModelRef> ParseRefArg(const std::string& arg);

// "1.2 GB", "512 B" (decimal units, as ls of Ollama and docker do).
std::string HumanBytes(int64_t bytes);

}  // namespace pocket::cli
