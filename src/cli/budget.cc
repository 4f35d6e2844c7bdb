// `pocket budget`: remote spend and what is left per feature area (and per API key), from
// the router's ledger; `--check` exits 1 when any area is over a threshold (CI gate).
#include <cstdio>

#include "base/clock.h"
#include "cli/command.h"
#include "cli/ledger_flags.h"
#include "cli/model_flags.h"
#include "router/ledger.h"
#include "router/policy.h"

namespace pocket::cli {
namespace {

struct BudgetFlags {
  std::string policy;
  std::string ledger = DefaultLedgerPath();
  bool reset_ledger = false;
  bool check = false;
  double threshold = 0.9;
  bool json = false;
};

std::string Money(double usd) {
  char b[32];
  std::snprintf(b, sizeof(b), "$%.4f", usd);
  return b;
}

int RunBudget(const BudgetFlags& f) {
  router::Policy policy = router::DefaultPolicy();
  if (!f.policy.empty()) {
    auto p = router::LoadPolicy(f.policy, router::ProcessEnv());
    if (!p.ok()) return Fail("budget", p.status());
    policy = std::move(*p);
  }
  const std::string path = policy.ledger_path.empty() ? f.ledger : policy.ledger_path;
  if (path == DefaultLedgerPath()) {
    if (Status s = EnsureParentDirectory(path); !s.ok()) return Fail("budget", s);
  }
  if (Status s = PrepareLedger("budget", path, f.reset_ledger); !s.ok()) return Fail("budget", s);
  auto ledger = router::Ledger::Open(path);
  if (!ledger.ok()) return Fail("budget", ledger.status());
  const double now = WallSeconds();
  int over = 0;
  if (!f.json) {
    std::printf("%-12s %-6s %12s %12s %12s %7s %12s %12s\n", "area", "period", "spent", "limit",
                "left", "used", "tokens", "token_limit");
  }
  auto row = [&](const std::string& name, const char* period, int64_t micros, double limit_usd,
                 int64_t tokens, int64_t token_limit) {
    const double spent = router::MicrosToUsd(micros);
    double frac = 0;
    if (limit_usd > 0) frac = std::max(frac, spent / limit_usd);
    if (token_limit > 0) frac = std::max(frac, static_cast<double>(tokens) / token_limit);
    const bool is_over = (limit_usd > 0 || token_limit > 0) && frac >= f.threshold;
    if (is_over) ++over;
    if (f.json) {
      std::printf("{\"area\":\"%s\",\"period\":\"%s\",\"spent_usd\":%.6f,\"limit_usd\":%.6f,"
                  "\"tokens\":%lld,\"token_limit\":%lld,\"used_fraction\":%.4f,\"over\":%s}\n",
                  name.c_str(), period, spent, limit_usd, static_cast<long long>(tokens),
                  static_cast<long long>(token_limit), frac, is_over ? "true" : "false");
      return;
    }
    std::printf("%-12s %-6s %12s %12s %12s %6.1f%% %12lld %12s%s\n", name.c_str(), period,
                Money(spent).c_str(), limit_usd > 0 ? Money(limit_usd).c_str() : "-",
                limit_usd > 0 ? Money(std::max(0.0, limit_usd - spent)).c_str() : "-", frac * 100,
                static_cast<long long>(tokens),
                token_limit > 0 ? std::to_string(token_limit).c_str() : "-", is_over ? "  OVER" : "");
  };
  for (const auto& a : policy.areas) {
    auto sp = (*ledger)->SpendFor(router::BudgetScope::Kind::kArea, a.name, now);
    if (!sp.ok()) return Fail("budget", sp.status());
    row(a.name, "day", sp->day_micro_usd, a.budget.day_usd, sp->day_tokens, a.budget.day_tokens);
    row(a.name, "month", sp->month_micro_usd, a.budget.month_usd, sp->month_tokens,
        a.budget.month_tokens);
  }
  for (const auto& k : policy.api_keys) {
    auto sp = (*ledger)->SpendFor(router::BudgetScope::Kind::kApiKey, k.name, now);
    if (!sp.ok()) return Fail("budget", sp.status());
    row("key:" + k.name, "day", sp->day_micro_usd, k.budget.day_usd, sp->day_tokens, k.budget.day_tokens);
    row("key:" + k.name, "month", sp->month_micro_usd, k.budget.month_usd, sp->month_tokens,
        k.budget.month_tokens);
  }
  if (f.check && over > 0) {
    std::fprintf(stderr, "pocket budget: %d budget(s) at or over %.0f%% of their limit\n", over,
                 f.threshold * 100);
    return 1;
  }
  return 0;
}

CommandMain Configure(CLI::App& app) {
  auto f = std::make_shared<BudgetFlags>();
  SetExamples(app, {"pocket budget --policy docs/policy.example.toml",
                    "pocket budget --check --threshold 0.9   # exit 1 near a limit"});
  app.add_option("--policy", f->policy, "router policy (TOML) with the areas and their budgets");
  app.add_option("--ledger", f->ledger, "ledger file (unless the policy names one; default: as pocket serve, ~/.local/state/pocket/ledger.db)");
  app.add_flag("--reset-ledger", f->reset_ledger, kResetLedgerHelp);
  app.add_flag("--check", f->check, "exit 1 when any budget is at or over --threshold");
  app.add_option("--threshold", f->threshold, "fraction of a limit that counts as over")
      ->check(InRange(0.0, 10.0));
  app.add_flag("--json", f->json, "one JSON line per area and period");
  return [f] { return RunBudget(*f); };
}

POCKET_COMMAND(budget, "budget", "remote spend and budget left per feature area", Configure);

}  // namespace
}  // namespace pocket::cli
