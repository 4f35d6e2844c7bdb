// Registry options and the progress display of pull/push (see transfer_flags.h).
#include "cli/transfer_flags.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/store_flags.h"

namespace pocket::cli {

void AddTransferOptions(CLI::App& app, TransferFlags* f) {
  app.add_option("--user", f->user,
                 "USER:PASSWORD for the registry (default: $POCKET_REGISTRY_USER and "
                 "$POCKET_REGISTRY_PASSWORD); used for Basic auth or to get a Bearer token");
  app.add_flag("--insecure", f->insecure,
               "plain http:// to a registry that is not on this machine (loopback hosts use "
               "http:// already)");
  app.add_option("--ca-file", f->ca_file, "https: trust this PEM CA file instead of the system's");
  app.add_option("--retries", f->retries, "retries of a request that fails transiently")
      ->capture_default_str();
  app.add_option("--retry-backoff-ms", f->retry_backoff_ms,
                 "wait before the first retry; doubles each time, up to 8x")
      ->capture_default_str();
}

Result<registry::ClientOptions> ClientOptionsFrom(const TransferFlags& f) {
  registry::ClientOptions o;
  PK_ASSIGN_OR_RETURN(o.credentials, registry::CredentialsFrom(f.user));
  o.insecure = f.insecure;
  o.ca_file = f.ca_file;
  o.retry.max_attempts = std::max(0, f.retries) + 1;
  o.retry.backoff_ms = std::max<int64_t>(0, f.retry_backoff_ms);
  return o;
}

namespace {

using Clock = std::chrono::steady_clock;

std::string Seconds(double s) {
  char buf[32];
  if (s >= 3600) {
    std::snprintf(buf, sizeof(buf), "%dh%02dm", static_cast<int>(s / 3600),
                  static_cast<int>(s / 60) % 60);
  } else if (s >= 60) {
    std::snprintf(buf, sizeof(buf), "%dm%02ds", static_cast<int>(s / 60), static_cast<int>(s) % 60);
  } else {
    std::snprintf(buf, sizeof(buf), "%ds", static_cast<int>(s));
  }
  return buf;
}

struct ProgressState {
  std::string verb, ref;
  bool tty = false;
  Clock::time_point start = Clock::now(), last_draw{};
  int64_t start_bytes = -1;  // done_bytes when the first byte moved (rate excludes what was there)
  bool drawn = false;
};

}  // namespace

registry::TransferFn MakeProgress(const std::string& verb, const std::string& ref) {
  auto st = std::make_shared<ProgressState>();
  st->verb = verb;
  st->ref = ref;
  st->tty = ::isatty(STDERR_FILENO) == 1;
  return [st](const registry::TransferEvent& e) {
    using Kind = registry::TransferEvent::Kind;
    const auto now = Clock::now();
    if (e.kind == Kind::kProgress && st->start_bytes < 0) {
      st->start_bytes = e.done_bytes;
      st->start = now;
    }
    const double elapsed = std::chrono::duration<double>(now - st->start).count();
    const int64_t moved = st->start_bytes < 0 ? 0 : e.done_bytes - st->start_bytes;
    const double rate = elapsed > 0.05 ? moved / elapsed : 0;
    const double eta = rate > 0 ? (e.total_bytes - e.done_bytes) / rate : -1;
    const bool throttled = e.kind == Kind::kProgress &&
                           now - st->last_draw < std::chrono::milliseconds(st->tty ? 100 : 500);
    if (throttled) return;
    st->last_draw = now;
    if (st->tty) {
      if (e.kind == Kind::kRetry) {
        std::fprintf(stderr, "\r\033[K%s: %s\n", st->verb.c_str(), e.message.c_str());
        return;
      }
      if (e.kind == Kind::kBlobDone && !st->drawn) return;
      const int pct =
          e.total_bytes > 0 ? static_cast<int>(100.0 * e.done_bytes / e.total_bytes) : 100;
      std::fprintf(
          stderr, "\r\033[K%s %s  %s / %s  %3d%%  %s/s  ETA %s", st->verb.c_str(), st->ref.c_str(),
          HumanBytes(e.done_bytes).c_str(), HumanBytes(e.total_bytes).c_str(), pct,
          HumanBytes(static_cast<int64_t>(rate)).c_str(), eta >= 0 ? Seconds(eta).c_str() : "-");
      st->drawn = true;
      if (e.kind == Kind::kDone) std::fputc('\n', stderr);
      std::fflush(stderr);
      return;
    }
    static const char* kNames[] = {"start", "progress", "retry", "blob", "done"};
    nlohmann::json j = {{"event", kNames[static_cast<int>(e.kind)]},
                        {"op", st->verb},
                        {"ref", st->ref},
                        {"done_bytes", e.done_bytes},
                        {"total_bytes", e.total_bytes},
                        {"bytes_per_s", static_cast<int64_t>(rate)}};
    if (!e.digest.empty()) j["digest"] = e.digest;
    if (e.resumed_bytes > 0) j["resumed_bytes"] = e.resumed_bytes;
    if (!e.message.empty()) j["message"] = e.message;
    if (eta >= 0 && e.kind == Kind::kProgress) j["eta_s"] = static_cast<int64_t>(eta);
    std::fprintf(stderr, "%s\n",
                 j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
    std::fflush(stderr);
  };
}

}  // namespace pocket::cli
