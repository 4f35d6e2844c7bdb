// `pocket top`: a live view of a running `pocket serve`, read from its /metrics:
// requests active and queued, request counts, latency percentiles (from the histograms),
// tokens, routes, and budget spend per area.
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <map>
#include <sstream>

#include "cli/command.h"
#include "cli/model_flags.h"
#include "net/http_client.h"

namespace pocket::cli {
namespace {

struct TopFlags {
  std::string url = "http://127.0.0.1:8080";
  double interval_s = 2;
  int iterations = 0;  // 0: until interrupted
  bool once = false;
  std::string api_key;
};

struct Sample {
  std::string name;
  std::map<std::string, std::string> labels;
  double value = 0;
};

std::vector<Sample> ParseProm(const std::string& text) {
  std::vector<Sample> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    Sample s;
    size_t i = line.find_first_of("{ ");
    if (i == std::string::npos) continue;
    s.name = line.substr(0, i);
    if (line[i] == '{') {
      const size_t close = line.find('}', i);
      if (close == std::string::npos) continue;
      std::string body = line.substr(i + 1, close - i - 1);
      size_t p = 0;
      while (p < body.size()) {
        const size_t eq = body.find('=', p);
        if (eq == std::string::npos || eq + 1 >= body.size() || body[eq + 1] != '"') break;
        size_t q = eq + 2;
        std::string v;
        while (q < body.size() && body[q] != '"') {
          if (body[q] == '\\' && q + 1 < body.size()) ++q;
          v += body[q++];
        }
        s.labels[body.substr(p, eq - p)] = v;
        p = q + 2;
      }
      i = close + 1;
    }
    s.value = std::strtod(line.c_str() + i, nullptr);
    out.push_back(std::move(s));
  }
  return out;
}

// The q-quantile from cumulative histogram buckets (linear inside a bucket).
double Quantile(const std::vector<Sample>& all, const std::string& name, double q) {
  std::vector<std::pair<double, double>> buckets;  // (le, cumulative)
  std::map<double, double> merged;
  for (const auto& s : all) {
    if (s.name != name + "_bucket") continue;
    auto it = s.labels.find("le");
    if (it == s.labels.end()) continue;
    const double le = it->second == "+Inf" ? INFINITY : std::strtod(it->second.c_str(), nullptr);
    merged[le] += s.value;
  }
  if (merged.empty() || merged.rbegin()->second <= 0) return NAN;
  const double total = merged.rbegin()->second, target = q * total;
  double prev_le = 0, prev_c = 0;
  for (const auto& [le, c] : merged) {
    if (c >= target) {
      if (std::isinf(le)) return prev_le;
      return prev_le + (le - prev_le) * (c > prev_c ? (target - prev_c) / (c - prev_c) : 0);
    }
    prev_le = le;
    prev_c = c;
  }
  return prev_le;
}

double Sum(const std::vector<Sample>& all, const std::string& name,
           const std::map<std::string, std::string>& match = {}) {
  double v = 0;
  for (const auto& s : all) {
    if (s.name != name) continue;
    bool ok = true;
    for (const auto& [k, want] : match) {
      auto it = s.labels.find(k);
      if (it == s.labels.end() || it->second != want) ok = false;
    }
    if (ok) v += s.value;
  }
  return v;
}

int RunTop(const TopFlags& f) {
  std::string base = f.url;
  while (!base.empty() && base.back() == '/') base.pop_back();
  const int iterations = f.once ? 1 : f.iterations;
  for (int it = 0; iterations == 0 || it < iterations; ++it) {
    net::FetchRequest req;
    req.url = base + "/metrics";
    req.timeout_ms = 5000;
    if (!f.api_key.empty()) req.headers.emplace_back("authorization", "Bearer " + f.api_key);
    auto res = net::HttpFetch(req);
    if (!res.ok()) return Fail("top", res.status());
    if (res->status != 200)
      return Fail("top", Status::IOError(req.url + ": HTTP " + std::to_string(res->status)));
    const auto all = ParseProm(res->body);
    if (!f.once) std::printf("\033[H\033[2J");
    std::printf("pocket top — %s\n\n", base.c_str());
    std::printf("requests  active %-4.0f queued %-4.0f  total %-8.0f  rejected %-6.0f cancelled %.0f\n",
                Sum(all, "pocket_requests_active"), Sum(all, "pocket_requests_queued"),
                Sum(all, "pocket_http_requests_total"), Sum(all, "pocket_rejected_requests_total"),
                Sum(all, "pocket_cancelled_requests_total"));
    std::printf("latency   ttft p50 %.3fs p99 %.3fs   total p50 %.3fs p99 %.3fs   queue p99 %.3fs\n",
                Quantile(all, "pocket_time_to_first_token_seconds", 0.5),
                Quantile(all, "pocket_time_to_first_token_seconds", 0.99),
                Quantile(all, "pocket_request_duration_seconds", 0.5),
                Quantile(all, "pocket_request_duration_seconds", 0.99),
                Quantile(all, "pocket_queue_wait_seconds", 0.99));
    std::printf("tokens    local in %.0f out %.0f   remote in %.0f out %.0f   decode p50 %.1f tok/s\n",
                Sum(all, "pocket_prompt_tokens_total", {{"route", "local"}}),
                Sum(all, "pocket_completion_tokens_total", {{"route", "local"}}),
                Sum(all, "pocket_prompt_tokens_total", {{"route", "remote"}}),
                Sum(all, "pocket_completion_tokens_total", {{"route", "remote"}}),
                Quantile(all, "pocket_generation_tokens_per_second", 0.5));
    std::printf("memory    rss %.1f MiB  peak %.1f MiB  kv cache %.1f MiB\n",
                Sum(all, "pocket_process_resident_memory_bytes") / 1048576.0,
                Sum(all, "pocket_process_peak_resident_memory_bytes") / 1048576.0,
                Sum(all, "pocket_kv_cache_bytes") / 1048576.0);
    std::printf("\nroutes\n");
    for (const auto& s : all)
      if (s.name == "pocket_route_decisions_total")
        std::printf("  %-7s %-22s %.0f\n", s.labels.at("route").c_str(), s.labels.at("reason").c_str(), s.value);
    std::printf("\nbudgets (remote spend)\n");
    for (const auto& s : all) {
      if (s.name != "pocket_budget_spent_usd") continue;
      const double limit = Sum(all, "pocket_budget_limit_usd", s.labels);
      std::printf("  %-12s %-6s $%.4f of %s\n", s.labels.at("area").c_str(),
                  s.labels.at("period").c_str(), s.value,
                  limit > 0 ? ("$" + std::to_string(limit)).c_str() : "no limit");
    }
    std::fflush(stdout);
    if (iterations != 0 && it + 1 >= iterations) break;
    usleep(static_cast<useconds_t>(f.interval_s * 1e6));
  }
  return 0;
}

CommandMain Configure(CLI::App& app) {
  auto f = std::make_shared<TopFlags>();
  SetExamples(app, {"pocket top --url http://127.0.0.1:8080",
                    "pocket top --url http://127.0.0.1:8080 --once"});
  app.add_option("--url", f->url, "base URL of the server (http://host:port)");
  app.add_option("--interval", f->interval_s, "seconds between refreshes")
      ->check(InRange(0.1, 3600.0));
  app.add_option("--iterations", f->iterations, "refreshes before exiting (0: until Ctrl-C)");
  app.add_flag("--once", f->once, "print one snapshot and exit");
  app.add_option("--api-key", f->api_key, "bearer key when the server requires one");
  return [f] { return RunTop(*f); };
}

POCKET_COMMAND(top, "top", "live requests, latency and budgets of a running pocket serve", Configure);

}  // namespace
}  // namespace pocket::cli
