// Cost of one Sampler::Sample over a Llama-3 sized vocabulary (128256 logits), the
// per-token work `pocket serve` adds to a decode step (~24 ms for the 1B shape on 2 cores).
#include <benchmark/benchmark.h>

#include <vector>

#include "runtime/sampling.h"

namespace pocket::runtime {
namespace {

std::vector<float> RandomLogits(size_t vocab) {
  Rng rng(42);
  std::vector<float> l(vocab);
  for (float& x : l) x = static_cast<float>(rng.NextDouble() * 20.0 - 10.0);
  return l;
}

void Run(benchmark::State& state, SamplingParams p) {
  const std::vector<float> logits = RandomLogits(128256);
  const std::vector<int32_t> history = {1, 2, 3};
  p.seed = 7;
  Sampler s(p);
  for (auto _ : state) benchmark::DoNotOptimize(s.Sample(logits, history));
}

// The OpenAI API's defaults: temperature, no truncation.
void BM_SampleUntruncated(benchmark::State& state) {
  Run(state, {.temperature = 0.8f, .top_k = 0, .top_p = 1.0f, .min_p = 0.0f});
}
BENCHMARK(BM_SampleUntruncated);

// llama.cpp's defaults: top-k 40, top-p 0.95, min-p 0.05.
void BM_SampleLlamaDefaults(benchmark::State& state) { Run(state, SamplingParams{}); }
BENCHMARK(BM_SampleLlamaDefaults);

// top-p alone (the growing partial sort).
void BM_SampleTopP(benchmark::State& state) {
  Run(state, {.temperature = 0.8f, .top_k = 0, .top_p = 0.9f, .min_p = 0.0f});
}
BENCHMARK(BM_SampleTopP);

void BM_Greedy(benchmark::State& state) { Run(state, {.temperature = 0.0f}); }
BENCHMARK(BM_Greedy);

}  // namespace
}  // namespace pocket::runtime
