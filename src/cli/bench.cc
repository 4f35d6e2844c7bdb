// `pocket bench [MODEL]`: throughput like llama-bench — pp<N> (one batched forward pass
// of N prompt tokens) and tg<N> (N single-token decode steps), tokens/s as mean ± sd over
// repetitions — plus the fraction of the memory-bandwidth roofline reached by decoding:
// weight bytes read per token × tg tokens/s ÷ the machine's read bandwidth, measured here
// with a STREAM-like read kernel on the same number of threads.
// Output: a Markdown table on stdout (default), or with --json / -o jsonl one JSON object
// per line per test on stdout; notes go to stderr.
#include <nlohmann/json.hpp>

#include <cstdio>
#include <filesystem>
#include <optional>
#include <string>
#include <thread>

#include "cli/command.h"
#include "cli/model_flags.h"
#include "base/platform.h"
#include "kernels/kernels.h"
#include "model/config.h"
#include "runtime/bandwidth.h"
#include "runtime/measure.h"

namespace pocket::cli {
namespace {

struct BenchFlags {
  ModelFlags model;
  std::vector<std::string> positionals;
  int n_prompt = 512;
  int n_gen = 128;
  int repetitions = 5;
  std::string output = "md";
  bool json = false;
  int bandwidth_mib = 1024;
  std::string cpu_isa = "native";
};

std::string HumanBytes(double b) {
  char buf[32];
  if (b >= 1024.0 * 1024 * 1024) {
    std::snprintf(buf, sizeof(buf), "%.2f GiB", b / (1024.0 * 1024 * 1024));
  } else {
    std::snprintf(buf, sizeof(buf), "%.2f MiB", b / (1024.0 * 1024));
  }
  return buf;
}

std::string HumanCount(double n) {
  char buf[32];
  if (n >= 1e9) {
    std::snprintf(buf, sizeof(buf), "%.2f B", n / 1e9);
  } else {
    std::snprintf(buf, sizeof(buf), "%.2f M", n / 1e6);
  }
  return buf;
}

struct TestResult {
  std::string name;  // "pp512" / "tg128"
  int n_prompt = 0, n_gen = 0;
  std::vector<double> seconds;
  std::vector<double> tokens_per_s;
  runtime::MeanSd ts;
};

int BenchMain(BenchFlags& f) {
  const std::string cmd = "bench";
  if (f.json) f.output = "jsonl";
  auto model = TakeModel(cmd, f.model.model, &f.positionals, 0);
  if (!model.ok()) return Fail(cmd, model.status());
  // --cpu-isa avx2 runs this process as a platform whose ISA cap is AVX2: the CPU backend
  // made at load reads the cap and restricts its kernels to it.
  PlatformProfile profile = Platform::Host().profile();
  profile.isa_cap = f.cpu_isa == "avx2" ? IsaCap::kAvx2 : IsaCap::kNative;
  const Platform capped(profile);
  std::optional<ScopedPlatform> scope;
  if (profile.isa_cap != IsaCap::kNative) scope.emplace(capped);
  ModelFlags mf = f.model;
  mf.ctx_size = std::max({f.n_prompt, f.n_gen, 1});
  auto loaded = LoadEngine(*model, mf);
  if (!loaded.ok()) return Fail(cmd, loaded.status());
  runtime::Engine& engine = **loaded;
  const int threads = engine.threads();
  // What runs the ops: the SIMD target of the CPU kernels, or "reference" for the
  // plain-loop backend (which no SIMD target runs).
  const std::string kernels_name =
      mf.backend == "reference" ? std::string("reference") : kernels::ActiveTarget();

  std::vector<TestResult> results;
  const auto run_test = [&](bool prompt, int n) -> Status {
    TestResult t;
    t.name = (prompt ? "pp" : "tg") + std::to_string(n);
    (prompt ? t.n_prompt : t.n_gen) = n;
    std::fprintf(stderr, "pocket bench: %s, %d repetitions, %d threads, %s kernels...\n",
                 t.name.c_str(), f.repetitions, threads, kernels_name.c_str());
    PK_ASSIGN_OR_RETURN(t.seconds, prompt ? runtime::BenchPromptProcessing(engine, n, f.repetitions)
                                          : runtime::BenchTokenGeneration(engine, n, f.repetitions));
    for (double s : t.seconds) t.tokens_per_s.push_back(n / s);
    t.ts = runtime::ComputeMeanSd(t.tokens_per_s);
    results.push_back(std::move(t));
    return Status::Ok();
  };
  if (f.n_prompt > 0) {
    if (Status s = run_test(true, f.n_prompt); !s.ok()) return Fail(cmd, s);
  }
  if (f.n_gen > 0) {
    if (Status s = run_test(false, f.n_gen); !s.ok()) return Fail(cmd, s);
  }

  auto bw = runtime::MeasureReadBandwidth(static_cast<size_t>(f.bandwidth_mib) << 20, threads, 3);
  if (!bw.ok()) return Fail(cmd, bw.status());
  const double weight_bytes = static_cast<double>(engine.weight_bytes());
  const double params = static_cast<double>(runtime::CountParameters(engine.config()));
  const std::string model_name = std::filesystem::path(*model).filename().string();

  if (f.output == "jsonl") {
    for (const auto& t : results) {
      nlohmann::json j;
      j["model_filename"] = *model;
      j["model_size"] = engine.weight_bytes();
      j["model_n_params"] = runtime::CountParameters(engine.config());
      j["n_threads"] = threads;
      j["backend"] = mf.backend;
      j["kernels"] = kernels_name;
      j["n_prompt"] = t.n_prompt;
      j["n_gen"] = t.n_gen;
      j["test"] = t.name;
      j["repetitions"] = f.repetitions;
      j["samples_ts"] = t.tokens_per_s;
      std::vector<double> ns;
      for (double s : t.seconds) ns.push_back(s * 1e9);
      const auto ns_stats = runtime::ComputeMeanSd(ns);
      j["samples_ns"] = ns;
      j["avg_ns"] = ns_stats.mean;
      j["stddev_ns"] = ns_stats.sd;
      j["avg_ts"] = t.ts.mean;
      j["stddev_ts"] = t.ts.sd;
      j["weight_bytes_per_token"] = engine.weight_bytes();
      j["bandwidth_bytes_per_s"] = bw->bytes_per_s;
      j["bandwidth_method"] = bw->method;
      if (t.n_gen > 0) {
        j["roofline_fraction"] = weight_bytes * t.ts.mean / bw->bytes_per_s;
      } else {
        j["roofline_fraction"] = nullptr;  // prompt processing is compute-bound
      }
      std::printf("%s\n", j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
    }
    return 0;
  }

  std::printf("| %-30s | %10s | %10s | %7s | %15s | %20s |\n", "model", "size", "params",
              "threads", "test", "t/s");
  std::printf("| %s | ---------: | ---------: | ------: | --------------: | "
              "-------------------: |\n", std::string(30, '-').c_str());
  for (const auto& t : results) {
    char ts[64];
    std::snprintf(ts, sizeof(ts), "%.2f ± %.2f", t.ts.mean, t.ts.sd);
    std::printf("| %-30s | %10s | %10s | %7d | %15s | %21s |\n", model_name.c_str(),
                HumanBytes(weight_bytes).c_str(), HumanCount(params).c_str(), threads,
                t.name.c_str(), ts);
  }
  std::printf("\nbackend: %s (%s kernels)\n", mf.backend.c_str(), kernels_name.c_str());
  std::printf("memory read bandwidth: %.2f GB/s (%s)\n", bw->bytes_per_s / 1e9,
              bw->method.c_str());
  for (const auto& t : results) {
    if (t.n_gen == 0) continue;
    const double achieved = weight_bytes * t.ts.mean;
    std::printf("%s roofline: %s of weights read per token x %.2f tok/s = %.2f GB/s = %.1f%% "
                "of the measured bandwidth\n",
                t.name.c_str(), HumanBytes(weight_bytes).c_str(), t.ts.mean, achieved / 1e9,
                100.0 * achieved / bw->bytes_per_s);
    if (achieved > bw->bytes_per_s) {
      std::printf("  (above 100%%: the weights fit in the CPU caches, so DRAM bandwidth does not "
                  "bound this model)\n");
    }
  }
  return 0;
}

CommandMain Configure(CLI::App& app) {
  auto f = std::make_shared<BenchFlags>();
  app.description(
      "Measure throughput like llama-bench: pp = one batched forward pass of -p tokens, "
      "tg = -n single-token decode steps; tokens/s as mean ± sd over -r repetitions after "
      "one warm-up; then the fraction of the memory-bandwidth roofline reached by decoding "
      "(weight bytes per token x tg tokens/s / read bandwidth measured with a STREAM-like "
      "kernel on the same threads).");
  SetExamples(app, {"pocket bench", "pocket bench model.gguf -p 512 -n 128 -t 4 -r 5 --json"});
  app.add_option("model", f->positionals, "[MODEL] (default: the embedded default model)");
  AddModelFlags(app, &f->model, false, false);
  app.add_option("-p,--n-prompt", f->n_prompt, "prompt tokens for the pp test (0 = skip)")
      ->capture_default_str()
      ->check(InRange(0, 1 << 16));
  // llama-bench's -n: tokens to generate, as everywhere, but for the tg test (0 = skip it).
  app.add_option("-n,--n-gen", f->n_gen, "generated tokens for the tg test (0 = skip)")
      ->capture_default_str()
      ->check(InRange(0, 1 << 16));
  app.add_option("-r,--repetitions", f->repetitions, "timed repetitions of each test")
      ->capture_default_str()
      ->check(InRange(1, 1000));
  app.add_option("-o,--output", f->output, "output format: md or jsonl")
      ->capture_default_str()
      ->check(CLI::IsMember({"md", "jsonl"}));
  app.add_flag("--json", f->json, "same as -o jsonl: one JSON object per line per test");
  app.add_option("--bandwidth-mib", f->bandwidth_mib,
                 "buffer size of the bandwidth measurement in MiB")
      ->capture_default_str()
      ->check(InRange(1, 1 << 16));
  app.add_option("--cpu-isa", f->cpu_isa,
                 "instruction set for the kernels: native (all this CPU has) or avx2 (no "
                 "AVX-512, VNNI or AMX: what a CPU without them would do)")
      ->capture_default_str()
      ->check(CLI::IsMember({"native", "avx2"}));
  // The context is sized from -p and -n; sampling does not apply (random token ids, and
  // the decode steps' output is not sampled).
  AddNotApplicable(app, "-c,--ctx-size", "the context is sized from -p and -n");
  AddNotApplicable(app, "--temp,-s,--seed", "bench feeds random token ids and does not sample");
  return [f] { return BenchMain(*f); };
}

POCKET_COMMAND(bench, "bench", "throughput (pp/tg tokens/s) and memory-bandwidth roofline",
               Configure);

}  // namespace
}  // namespace pocket::cli
