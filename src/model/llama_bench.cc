// End-to-end forward pass on a random 17M-parameter Llama-shaped model (d_model 512,
// 4 layers, 8 heads / 2 KV, d_ff 1536, vocab 4096), one thread. Decode is bound by
// reading the weights once per token: bytes_per_second counts weight bytes, to compare
// with the machine's memory bandwidth (runtime's `pocket bench` measures it). The model is
// small enough (9-34 MB) to sit partly in cache: this tracks the forward pass's overhead
// around the kernels, not DRAM-bound speed.
#include <benchmark/benchmark.h>

#include <map>
#include <memory>

#include "model/llama.h"
#include "model/model_testutil.h"

namespace pocket::model {
namespace {

LlamaModel& Model(tensor::DType dtype) {
  static std::map<tensor::DType, std::unique_ptr<LlamaModel>> models;
  auto& m = models[dtype];
  if (m == nullptr) {
    testing::RandomModelSpec spec;
    spec.config = testing::TinyConfig();
    spec.config.d_model = 512, spec.config.num_layers = 4, spec.config.num_heads = 8;
    spec.config.num_kv_heads = 2, spec.config.head_dim = 64, spec.config.d_ff = 1536;
    spec.config.vocab_size = 4096, spec.config.context_length = 512;
    spec.config.tied_output = false;
    spec.matrix_dtype = dtype;
    spec.cheap_values = true;
    auto r = testing::RandomModel(spec, {.threads = 1});
    PK_CHECK(r.ok());
    m = std::move(*r);
  }
  return *m;
}

std::vector<int32_t> Tokens(size_t n) {
  std::vector<int32_t> t(n);
  for (size_t i = 0; i < n; ++i) t[i] = static_cast<int32_t>(i * 131 % 4096);
  return t;
}

// One decode step at position 64 (the cache is truncated back each iteration).
void BM_Decode(benchmark::State& state) {
  const auto dtype = static_cast<tensor::DType>(state.range(0));
  LlamaModel& m = Model(dtype);
  auto cache = m.NewKvCache(128, tensor::DType::kF16);
  PK_CHECK(cache.ok());
  const auto tokens = Tokens(65);
  std::vector<float> logits;
  BatchEntry prefill{&*cache, std::span(tokens).first(64), 0, false};
  PK_CHECK(m.Forward({&prefill, 1}, &logits).ok());
  for (auto _ : state) {
    PK_CHECK(cache->Truncate(64).ok());
    BatchEntry step{&*cache, std::span(tokens).subspan(64, 1), 64, false};
    PK_CHECK(m.Forward({&step, 1}, &logits).ok());
    benchmark::DoNotOptimize(logits.data());
  }
  state.SetLabel(std::string(tensor::DTypeName(dtype)));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) *
                          static_cast<int64_t>(m.weight_bytes()));
  state.counters["tokens_per_s"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}

// Prefill of 64 tokens in one batch.
void BM_Prefill64(benchmark::State& state) {
  const auto dtype = static_cast<tensor::DType>(state.range(0));
  LlamaModel& m = Model(dtype);
  auto cache = m.NewKvCache(128, tensor::DType::kF16);
  PK_CHECK(cache.ok());
  const auto tokens = Tokens(64);
  std::vector<float> logits;
  for (auto _ : state) {
    cache->Clear();
    BatchEntry e{&*cache, tokens, 0, false};
    PK_CHECK(m.Forward({&e, 1}, &logits).ok());
  }
  state.SetLabel(std::string(tensor::DTypeName(dtype)));
  state.counters["tokens_per_s"] = benchmark::Counter(
      static_cast<double>(state.iterations()) * 64, benchmark::Counter::kIsRate);
}

#define POCKET_DTYPES                                                        \
  Arg(static_cast<int>(tensor::DType::kQ4_0))->Arg(static_cast<int>(tensor::DType::kQ8_0)) \
      ->Arg(static_cast<int>(tensor::DType::kQ4_K))->Arg(static_cast<int>(tensor::DType::kF16))
BENCHMARK(BM_Decode)->POCKET_DTYPES->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_Prefill64)->POCKET_DTYPES->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace pocket::model
