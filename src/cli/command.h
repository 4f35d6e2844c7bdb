// The `pocket` binary's subcommand registry. Each subcommand lives in its own file in
// src/cli/ and registers itself with POCKET_COMMAND; main.cc builds the CLI11 app from
// the registry. A command's Configure adds its options to the given CLI11 subcommand and
// returns the function to run once parsing succeeded; that function returns the exit code.
// Only src/cli/ writes to stdout.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>
#include <string>
#include <vector>

#include "base/status.h"

namespace pocket::cli {

using CommandMain = std::function<int()>;

struct Command {
  std::string name;
  std::string summary;
  std::function<CommandMain(CLI::App&)> configure;
};

std::vector<Command>& Registry();

struct Registrar {
  explicit Registrar(Command c) { Registry().push_back(std::move(c)); }
};

// Prints "pocket <command>: <message>" to stderr and returns exit code 1 (2 for bad usage).
int Fail(const std::string& command, const Status& status);

// The default model's path in the source tree, and under <prefix>/share/pocket/ once
// installed (see base/data_dir.h).
inline constexpr const char* kDefaultModelRel = "models/default.gguf";

// The model used when none is given: $POCKET_MODEL when set, else the embedded default
// model found relative to the binary (installed, then the build tree; FindDataPath).
// NotFound when POCKET_MODEL names a missing file or no default model is found; the
// message says how to point at a model (-m PATH or POCKET_MODEL).
Result<std::string> DefaultModelPath();

// The router's ledger when neither --ledger nor the policy names one: per user, as other
// tools keep their state: $XDG_STATE_HOME/pocket/ledger.db, else
// ~/.local/state/pocket/ledger.db; pocket-ledger.db in the working directory only when
// there is no home. Computes the path; creates nothing.
std::string DefaultLedgerPath();

// Creates the directory `path` will be written in when it is missing ("pocket <command>:
// cannot create ..." on failure).
Status EnsureParentDirectory(const std::string& path);

}  // namespace pocket::cli

#define POCKET_COMMAND(id, name, summary, configure) \
  static ::pocket::cli::Registrar pk_command_##id({name, summary, configure})
