// Throughput of the reference (scalar) quantizers and dequantizers on a Llama-3.2-1B row
// (2048 floats). These are the specification, not the fast path: the numbers say how long
// `pocket convert` / `make-model` spend quantizing (e.g. ~1.2e9 weights for a 1B model).
#include <benchmark/benchmark.h>

#include <random>
#include <vector>

#include "tensor/quant.h"

namespace pocket::tensor {
namespace {

std::vector<float> Row(size_t n) {
  std::mt19937 rng(1);
  std::normal_distribution<float> dist(0.0f, 0.02f);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

void BM_Quantize(benchmark::State& state, DType t) {
  const size_t n = 2048;
  const auto x = Row(n);
  std::vector<uint8_t> q(RowBytes(t, n));
  for (auto _ : state) {
    QuantizeRow(t, x.data(), q.data(), n);
    benchmark::DoNotOptimize(q.data());
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * n));  // weights/s
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * n * sizeof(float)));
}

void BM_Dequantize(benchmark::State& state, DType t) {
  const size_t n = 2048;
  const auto x = Row(n);
  std::vector<uint8_t> q(RowBytes(t, n));
  QuantizeRow(t, x.data(), q.data(), n);
  std::vector<float> y(n);
  for (auto _ : state) {
    DequantizeRow(t, q.data(), y.data(), n);
    benchmark::DoNotOptimize(y.data());
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * n));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * q.size()));  // bytes read
}

BENCHMARK_CAPTURE(BM_Quantize, f16, DType::kF16);
BENCHMARK_CAPTURE(BM_Quantize, q8_0, DType::kQ8_0);
BENCHMARK_CAPTURE(BM_Quantize, q4_0, DType::kQ4_0);
BENCHMARK_CAPTURE(BM_Quantize, q4_k, DType::kQ4_K);
BENCHMARK_CAPTURE(BM_Quantize, q6_k, DType::kQ6_K);
BENCHMARK_CAPTURE(BM_Quantize, q8_k, DType::kQ8_K);
BENCHMARK_CAPTURE(BM_Dequantize, f16, DType::kF16);
BENCHMARK_CAPTURE(BM_Dequantize, q8_0, DType::kQ8_0);
BENCHMARK_CAPTURE(BM_Dequantize, q4_0, DType::kQ4_0);
BENCHMARK_CAPTURE(BM_Dequantize, q4_k, DType::kQ4_K);
BENCHMARK_CAPTURE(BM_Dequantize, q6_k, DType::kQ6_K);

}  // namespace
}  // namespace pocket::tensor
