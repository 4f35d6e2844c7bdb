// The ledger start-up check shared by `pocket serve` and `pocket budget`, and their
// --reset-ledger flag. A ledger file that exists but is not a usable Pocket ledger stops
// the command (never a silent fresh start: that would forget the spend and lift every
// budget) unless --reset-ledger asks to move it aside.
#pragma once

#include <CLI/CLI.hpp>

#include <string>

#include "base/status.h"

namespace pocket::cli {

inline constexpr const char* kResetLedgerHelp =
    "if the ledger file exists but is unusable (empty, truncated, corrupt, not a Pocket "
    "ledger), move it aside to PATH.bad-<UTC time> and start a new, empty ledger (its spend "
    "is forgotten); a valid ledger is never touched, so the flag can stay in a service's "
    "command line";

// Checks the ledger at `path` (router::Ledger::CheckFile). A missing or valid ledger: Ok.
// An unusable one: with `reset`, moved aside (one line on stderr says where and why) and
// Ok, so the caller creates a new one; without, the check's error with a hint to pass
// --reset-ledger. Other errors (unreadable, made by a newer Pocket) are returned as they
// are, whatever `reset` says.
Status PrepareLedger(const std::string& command, const std::string& path, bool reset);

}  // namespace pocket::cli
