// --reset-ledger: check the ledger file before a command opens it, move a bad one aside.
#include "cli/ledger_flags.h"

#include <cstdio>

#include "base/clock.h"
#include "router/ledger.h"

namespace pocket::cli {

Status PrepareLedger(const std::string& command, const std::string& path, bool reset) {
  Status check = router::Ledger::CheckFile(path);
  if (check.ok() || check.code() != StatusCode::kCorruption) return check;
  if (!reset)
    return Status::Corruption(check.message() +
                              "; to keep the file as PATH.bad-<time> and start a new, empty "
                              "ledger, pass --reset-ledger");
  auto moved = router::Ledger::MoveAside(path, WallSeconds());
  if (!moved.ok()) return moved.status();
  std::fprintf(stderr, "pocket %s: %s; moved it to '%s' and starting a new, empty ledger\n",
               command.c_str(), check.message().c_str(), moved->c_str());
  return Status::Ok();
}

}  // namespace pocket::cli
