// The stop sequence every long-running command (`pocket serve`, `pocket collab serve`)
// shares: SIGINT/SIGTERM blocked in every thread so only one sigwait sees them, then the
// command's own stop action on the first, and a watchdog that makes the exit certain.
// Called from the commands' main functions only (it writes to stderr and may _Exit).
#pragma once

#include <signal.h>

#include <cstdint>
#include <functional>

namespace pocket::cli {

// Blocks SIGINT and SIGTERM in the calling thread (and so in every thread it starts after
// this) and ignores SIGPIPE; returns the blocked set for WaitThenStop. Call it before any
// thread starts.
sigset_t BlockStopSignals();

// Waits on the calling thread for the first of `signals` (blocked by BlockStopSignals),
// logs "<who>: stopping (signal N; ...)" and runs `stop` on the calling thread. From the
// signal on, a detached watchdog makes the exit certain: a second signal exits at once with
// 128 + its number, and a process still running `timeout_ms` after the first signal (a
// remote call, a handler or an I/O thread that does not let go) exits with status 0,
// abandoning what is left. Returns when `stop` returns.
void WaitThenStop(const sigset_t& signals, int64_t timeout_ms, const char* who,
                  const std::function<void()>& stop);

}  // namespace pocket::cli
