// WaitThenStop's watchdog: sigtimedwait against one deadline, so a signal that interrupts
// the wait (or a spurious wake-up) never extends it.
#include "cli/signals.h"

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <thread>

namespace pocket::cli {

sigset_t BlockStopSignals() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);
  return signals;
}

void WaitThenStop(const sigset_t& signals, int64_t timeout_ms, const char* who,
                  const std::function<void()>& stop) {
  int sig = 0;
  sigwait(&signals, &sig);
  std::fprintf(stderr, "%s: stopping (signal %d; again to exit at once)\n", who, sig);
  std::thread([signals, timeout_ms, who] {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    for (;;) {
      const auto left = std::chrono::duration_cast<std::chrono::nanoseconds>(
                            deadline - std::chrono::steady_clock::now())
                            .count();
      if (left <= 0) break;
      const timespec ts{static_cast<time_t>(left / 1000000000),
                        static_cast<long>(left % 1000000000)};
      const int again = sigtimedwait(&signals, nullptr, &ts);
      if (again > 0) {
        std::fprintf(stderr, "%s: signal %d again: exiting now\n", who, again);
        std::_Exit(128 + again);
      }
      if (again < 0 && errno == EAGAIN) break;  // the deadline passed; EINTR waits on
    }
    std::fprintf(stderr,
                 "%s: stop not finished after %lld ms (a remote call, a handler or an I/O "
                 "thread still running); exiting without it\n",
                 who, static_cast<long long>(timeout_ms));
    std::_Exit(0);
  }).detach();
  stop();
}

}  // namespace pocket::cli
