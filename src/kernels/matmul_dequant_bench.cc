// The reference MatMul path of the IQ1/IQ2/IQ3 types (cpu/matmul_dequant.cc) beside the
// Q4_0 integer kernel on one Llama-3.2-1B attention matrix (2048 x 2048), decode (1 token)
// and prefill (64 tokens): the slowdown factor quoted in docs/formats.md. Run with
// POCKET_BENCH_THREADS=1 and read the CPU column for the single-core cost.
// Napkin math: decode of the IQ types is bound by decoding 4M weights to f32 (a few ns
// each), not by memory; prefill amortizes the decode over the tokens and runs at the
// f32 FMA rate.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdlib>
#include <random>
#include <vector>

#include "base/thread_pool.h"
#include "kernels/iq_testutil.h"
#include "kernels/kernels.h"
#include "tensor/quant.h"

namespace pocket::kernels {
namespace {

using tensor::DType;

ThreadPool& DequantPool() {
  static ThreadPool pool([] {
    const char* env = std::getenv("POCKET_BENCH_THREADS");
    return env != nullptr ? static_cast<size_t>(std::atoi(env)) : size_t{2};
  }());
  return pool;
}

void BM_IqMatMul(benchmark::State& state, DType dtype, size_t rows, size_t cols,
                 size_t tokens) {
  std::vector<uint8_t> w;
  std::mt19937 rng(1);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  if (IsIqDType(dtype)) {
    w = RandomIqRows(dtype, rows, cols, 1);
  } else {
    std::vector<float> f(rows * cols);
    for (auto& v : f) v = dist(rng) * 0.05f;
    w.resize(rows * tensor::RowBytes(dtype, cols));
    tensor::QuantizeRow(dtype, f.data(), w.data(), rows * cols);
  }
  tensor::TensorView view;
  view.dtype = dtype;
  view.ne = {static_cast<int64_t>(cols), static_cast<int64_t>(rows), 1, 1};
  view.data = w.data();
  std::vector<float> x(tokens * cols), y(tokens * rows);
  for (auto& v : x) v = dist(rng);
  Workspace ws;
  for (auto _ : state) {
    MatMul(view, x.data(), tokens, y.data(), DequantPool(), ws);
    benchmark::DoNotOptimize(y.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * w.size()));
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * rows * cols * tokens));
  state.SetLabel(ActiveTarget());
}

#define PK_IQ_BENCH(name, dtype, tokens)                                \
  BENCHMARK_CAPTURE(BM_IqMatMul, name, dtype, 2048, 2048, tokens)       \
      ->Unit(benchmark::kMicrosecond)

PK_IQ_BENCH(q4_0_2048x2048_t1, DType::kQ4_0, 1);
PK_IQ_BENCH(iq2_xxs_2048x2048_t1, DType::kIQ2_XXS, 1);
PK_IQ_BENCH(iq2_xs_2048x2048_t1, DType::kIQ2_XS, 1);
PK_IQ_BENCH(iq2_s_2048x2048_t1, DType::kIQ2_S, 1);
PK_IQ_BENCH(iq3_xxs_2048x2048_t1, DType::kIQ3_XXS, 1);
PK_IQ_BENCH(iq3_s_2048x2048_t1, DType::kIQ3_S, 1);
PK_IQ_BENCH(iq1_s_2048x2048_t1, DType::kIQ1_S, 1);
PK_IQ_BENCH(iq1_m_2048x2048_t1, DType::kIQ1_M, 1);
PK_IQ_BENCH(q4_0_2048x2048_t64, DType::kQ4_0, 64);
PK_IQ_BENCH(iq2_xxs_2048x2048_t64, DType::kIQ2_XXS, 64);
PK_IQ_BENCH(iq3_s_2048x2048_t64, DType::kIQ3_S, 64);

}  // namespace
}  // namespace pocket::kernels
