// What `pocket pull` and `pocket push` share: the registry options (--user, --insecure,
// --ca-file, --retries, --retry-backoff-ms) and the progress display on stderr: a one-line
// bar (bytes, rate, ETA) redrawn at most 10 times a second when stderr is a terminal, else
// JSON lines (one per start, retry, blob and end, progress at most twice a second).
// Called from the two commands' Configure/main functions (single-threaded).
#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "base/status.h"
#include "registry/client.h"

namespace pocket::cli {

struct TransferFlags {
  std::string user;  // USER:PASSWORD; else $POCKET_REGISTRY_USER / $POCKET_REGISTRY_PASSWORD
  bool insecure = false;
  std::string ca_file;
  int retries = 5;
  int64_t retry_backoff_ms = 500;
};

void AddTransferOptions(CLI::App& app, TransferFlags* flags);

// The client options the flags and the environment give.
Result<registry::ClientOptions> ClientOptionsFrom(const TransferFlags& flags);

// A progress receiver for `verb` ("pull"/"push") of `ref`, drawing on stderr as above.
registry::TransferFn MakeProgress(const std::string& verb, const std::string& ref);

}  // namespace pocket::cli
