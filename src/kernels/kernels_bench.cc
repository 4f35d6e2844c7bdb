// MatMul on the real shapes of Llama-3.2-1B (d_model 2048, ffn 8192, kv 512, vocab 128256)
// and SmolLM2-135M (576, 1536, kv 192, vocab 49152), mat-vec (decode) and mat-mat
// (prefill, 64 tokens per call here to keep CI's one-pass run short).
// Napkin math: decode streams the weights once per token, so bytes_per_second is the
// achieved weight bandwidth; this machine reads ~33-39 GB/s with 2 threads (measured
// with a streaming read), which is the decode roofline. Prefill is compute-bound: the
// items_per_second counter is multiply-adds per second.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdlib>
#include <random>
#include <vector>

#include "base/check.h"
#include "base/thread_pool.h"
#include "kernels/cpu/train.h"
#include "kernels/kernels.h"
#include "kernels/quant_blocks_testutil.h"
#include "tensor/quant.h"

namespace pocket::kernels {
namespace {

using tensor::DType;

struct Shape {
  size_t rows, cols;
};

struct Bench {
  std::vector<uint8_t> w;
  tensor::TensorView view;
  std::vector<float> x, y;
};

Bench Make(DType dtype, size_t rows, size_t cols, size_t tokens) {
  // POCKET_BENCH_ISA=avx2: what a CPU without AVX-512 runs (kernels::LimitInstructionSet).
  static const bool isa_set = [] {
    const char* isa = std::getenv("POCKET_BENCH_ISA");
    return isa == nullptr || LimitInstructionSet(isa).ok();
  }();
  PK_CHECK(isa_set);
  Bench b;
  std::mt19937 rng(1);
  std::normal_distribution<float> dist(0.0f, 0.05f);
  std::vector<float> row(cols);
  const size_t row_bytes = tensor::RowBytes(dtype, cols);
  b.w.resize(rows * row_bytes);
  // Quantizing 260M weights with the reference quantizer is slow: fill a few distinct rows
  // and repeat them (the kernels' speed does not depend on the values).
  for (size_t r = 0; r < std::min<size_t>(rows, 64); ++r) {
    for (auto& v : row) v = dist(rng);
    uint8_t* dst = b.w.data() + r * row_bytes;
    if (!FillRandomBlocks(dtype, dst, cols / tensor::BlockElements(dtype),
                          static_cast<uint32_t>(r))) {
      tensor::QuantizeRow(dtype, row.data(), dst, cols);
    }
  }
  for (size_t r = 64; r < rows; ++r) {
    std::copy_n(b.w.data() + (r % 64) * row_bytes, row_bytes, b.w.data() + r * row_bytes);
  }
  b.view.dtype = dtype;
  b.view.ne = {static_cast<int64_t>(cols), static_cast<int64_t>(rows), 1, 1};
  b.view.data = b.w.data();
  b.x.resize(tokens * cols);
  for (auto& v : b.x) v = dist(rng) * 20;
  b.y.resize(tokens * rows);
  return b;
}

// POCKET_BENCH_THREADS (default 2, the machine's cores). With 1, the CPU column is the
// single-core cost, which stays meaningful when other jobs share the machine.
// Repetitions' minimum: the least disturbed run on a shared machine.
double MinOf(const std::vector<double>& v) { return *std::min_element(v.begin(), v.end()); }

ThreadPool& Pool() {
  static ThreadPool pool([] {
    const char* env = std::getenv("POCKET_BENCH_THREADS");
    return env != nullptr ? static_cast<size_t>(std::atoi(env)) : size_t{2};
  }());
  return pool;
}

void BM_MatMul(benchmark::State& state, DType dtype, Shape s, size_t tokens, bool pack) {
  Bench b = Make(dtype, s.rows, s.cols, tokens);
  Workspace ws;
  const PackedWeight packed = pack ? PackedWeight::Pack(b.view) : PackedWeight();
  for (auto _ : state) {
    if (pack) {
      MatMul(packed, b.x.data(), tokens, b.y.data(), Pool(), ws);
    } else {
      MatMul(b.view, b.x.data(), tokens, b.y.data(), Pool(), ws);
    }
    benchmark::DoNotOptimize(b.y.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * b.w.size()));
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * s.rows * s.cols * tokens));
  state.SetLabel(ActiveTarget());
}

// One decode step's matmuls of a whole model (packed weights; the same 7 matrices reused
// for every layer, so they are cache-warm: an upper bound): n_layers x (q, k, v, o, gate, up, down) +
// output. Time per iteration ~ the model's per-token matmul time.
void BM_DecodeModel(benchmark::State& state, DType dtype, size_t d, size_t ffn, size_t kv,
                    size_t vocab, size_t layers) {
  const Shape shapes[] = {{d, d}, {kv, d}, {kv, d}, {d, d}, {ffn, d}, {ffn, d}, {d, ffn}};
  std::vector<Bench> layer;
  for (const Shape& s : shapes) layer.push_back(Make(dtype, s.rows, s.cols, 1));
  Bench out = Make(dtype, vocab, d, 1);
  std::vector<PackedWeight> packed;
  for (auto& l : layer) packed.push_back(PackedWeight::Pack(l.view));
  const PackedWeight out_packed = PackedWeight::Pack(out.view);
  Workspace ws;
  size_t bytes = out.w.size();
  for (auto& l : layer) bytes += l.w.size() * layers;
  for (auto _ : state) {
    for (size_t i = 0; i < layers; ++i) {
      for (size_t k = 0; k < layer.size(); ++k) {
        MatMul(packed[k], layer[k].x.data(), 1, layer[k].y.data(), Pool(), ws);
      }
    }
    MatMul(out_packed, out.x.data(), 1, out.y.data(), Pool(), ws);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * bytes));
  state.counters["tok/s"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
  state.SetLabel(ActiveTarget());
}

#define PK_MATMUL_BENCH(name, dtype, rows, cols, tokens)                           \
  BENCHMARK_CAPTURE(BM_MatMul, name, dtype, (Shape{rows, cols}), tokens, false)    \
      ->UseRealTime()                                                              \
      ->ComputeStatistics("min", MinOf)                                            \
      ->Unit(benchmark::kMicrosecond);                                             \
  BENCHMARK_CAPTURE(BM_MatMul, name##_packed, dtype, (Shape{rows, cols}), tokens, true) \
      ->UseRealTime()                                                              \
      ->ComputeStatistics("min", MinOf)                                            \
      ->Unit(benchmark::kMicrosecond)

// Llama-3.2-1B decode.
PK_MATMUL_BENCH(q4_0_1b_ffn_up_2048x8192_t1, DType::kQ4_0, 8192, 2048, 1);
PK_MATMUL_BENCH(q4_0_1b_ffn_down_8192x2048_t1, DType::kQ4_0, 2048, 8192, 1);
PK_MATMUL_BENCH(q4_0_1b_attn_q_2048x2048_t1, DType::kQ4_0, 2048, 2048, 1);
PK_MATMUL_BENCH(q8_0_1b_ffn_up_2048x8192_t1, DType::kQ8_0, 8192, 2048, 1);
PK_MATMUL_BENCH(q8_0_1b_ffn_down_8192x2048_t1, DType::kQ8_0, 2048, 8192, 1);
// SmolLM2-135M decode.
PK_MATMUL_BENCH(q4_0_135m_ffn_up_576x1536_t1, DType::kQ4_0, 1536, 576, 1);
PK_MATMUL_BENCH(q8_0_135m_ffn_up_576x1536_t1, DType::kQ8_0, 1536, 576, 1);
PK_MATMUL_BENCH(q8_0_135m_output_576x49152_t1, DType::kQ8_0, 49152, 576, 1);
// K-quants (x86: per-row vpmaddubsw, no tiles yet) and F16 (Highway, portable).
PK_MATMUL_BENCH(q6_k_1b_ffn_up_2048x8192_t1, DType::kQ6_K, 8192, 2048, 1);
PK_MATMUL_BENCH(q4_k_1b_ffn_up_2048x8192_t1, DType::kQ4_K, 8192, 2048, 1);
PK_MATMUL_BENCH(q5_k_1b_ffn_up_2048x8192_t1, DType::kQ5_K, 8192, 2048, 1);
PK_MATMUL_BENCH(q3_k_1b_ffn_up_2048x8192_t1, DType::kQ3_K, 8192, 2048, 1);
PK_MATMUL_BENCH(q2_k_1b_ffn_up_2048x8192_t1, DType::kQ2_K, 8192, 2048, 1);
PK_MATMUL_BENCH(iq4_xs_1b_ffn_up_2048x8192_t1, DType::kIQ4_XS, 8192, 2048, 1);
PK_MATMUL_BENCH(q4_k_1b_ffn_down_8192x2048_t1, DType::kQ4_K, 2048, 8192, 1);
PK_MATMUL_BENCH(q6_k_1b_ffn_down_8192x2048_t1, DType::kQ6_K, 2048, 8192, 1);
PK_MATMUL_BENCH(f16_135m_ffn_up_576x1536_t1, DType::kF16, 1536, 576, 1);
// The 32-element fallback types llama-quantize puts in Q4_K_M / Q5_K_M / Q3_K_M files
// wherever a row is not a multiple of 256 (SmolLM2's 576, Qwen2.5-0.5B's 896); compare
// with the Q4_0 / Q8_0 lines of the same shape.
PK_MATMUL_BENCH(q5_0_135m_ffn_up_576x1536_t1, DType::kQ5_0, 1536, 576, 1);
PK_MATMUL_BENCH(q5_1_135m_ffn_up_576x1536_t1, DType::kQ5_1, 1536, 576, 1);
PK_MATMUL_BENCH(q4_1_135m_ffn_up_576x1536_t1, DType::kQ4_1, 1536, 576, 1);
PK_MATMUL_BENCH(iq4_nl_135m_ffn_up_576x1536_t1, DType::kIQ4_NL, 1536, 576, 1);
PK_MATMUL_BENCH(q4_0_qwen05b_ffn_up_896x4864_t1, DType::kQ4_0, 4864, 896, 1);
PK_MATMUL_BENCH(q8_0_qwen05b_ffn_up_896x4864_t1, DType::kQ8_0, 4864, 896, 1);
PK_MATMUL_BENCH(q5_0_qwen05b_ffn_up_896x4864_t1, DType::kQ5_0, 4864, 896, 1);
PK_MATMUL_BENCH(q5_1_qwen05b_ffn_up_896x4864_t1, DType::kQ5_1, 4864, 896, 1);
PK_MATMUL_BENCH(iq4_nl_qwen05b_ffn_up_896x4864_t1, DType::kIQ4_NL, 4864, 896, 1);
// Prefill.
PK_MATMUL_BENCH(q5_0_135m_ffn_up_576x1536_t64, DType::kQ5_0, 1536, 576, 64);
PK_MATMUL_BENCH(iq4_nl_135m_ffn_up_576x1536_t64, DType::kIQ4_NL, 1536, 576, 64);
PK_MATMUL_BENCH(q4_0_1b_ffn_up_2048x8192_t64, DType::kQ4_0, 8192, 2048, 64);
PK_MATMUL_BENCH(q8_0_1b_ffn_up_2048x8192_t64, DType::kQ8_0, 8192, 2048, 64);
PK_MATMUL_BENCH(q4_0_135m_ffn_up_576x1536_t64, DType::kQ4_0, 1536, 576, 64);
PK_MATMUL_BENCH(q4_k_1b_ffn_up_2048x8192_t64, DType::kQ4_K, 8192, 2048, 64);
PK_MATMUL_BENCH(q5_k_1b_ffn_up_2048x8192_t64, DType::kQ5_K, 8192, 2048, 64);
PK_MATMUL_BENCH(q6_k_1b_ffn_up_2048x8192_t64, DType::kQ6_K, 8192, 2048, 64);

// Training's matmuls (kernels/cpu/train.h) at SmolLM2-135M's FFN shapes with a 256-token
// sequence: per step each weight of the model costs one forward MatMul, one
// MatMulBackwardInput and one MatMulBackwardWeight of these sizes (LoRA: the base's
// MatMulBackwardInput only, on its quantized weight). items_per_second is multiply-adds
// per second; compare with the forward's F32 line of the same shape and with the FMA peak
// (2 threads of AVX-512 / AVX2 on this machine's two cores).
void BM_MatMulBackwardWeight(benchmark::State& state, Shape s, size_t tokens) {
  Bench b = Make(DType::kF32, s.rows, s.cols, tokens);
  std::vector<float> dy(tokens * s.rows, 0.01f), dw(s.rows * s.cols, 0.0f);
  for (auto _ : state) {
    cpu::MatMulBackwardWeight(b.x.data(), dy.data(), tokens, s.rows, s.cols, dw.data(), Pool());
    benchmark::DoNotOptimize(dw.data());
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * s.rows * s.cols * tokens));
  state.SetLabel(ActiveTarget());
}
void BM_MatMulBackwardInput(benchmark::State& state, DType dtype, Shape s, size_t tokens) {
  Bench b = Make(dtype, s.rows, s.cols, tokens);
  std::vector<float> dy(tokens * s.rows, 0.01f), dx(tokens * s.cols, 0.0f);
  for (auto _ : state) {
    cpu::MatMulBackwardInput(b.view, dy.data(), tokens, dx.data(), Pool());
    benchmark::DoNotOptimize(dx.data());
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * s.rows * s.cols * tokens));
  state.SetLabel(ActiveTarget());
}
#define PK_TRAIN_BENCH(fn, name, ...)              \
  BENCHMARK_CAPTURE(fn, name, __VA_ARGS__)         \
      ->UseRealTime()                              \
      ->ComputeStatistics("min", MinOf)            \
      ->Unit(benchmark::kMillisecond)
PK_TRAIN_BENCH(BM_MatMulBackwardWeight, ffn_up_576x1536_t256, (Shape{1536, 576}), 256);
PK_TRAIN_BENCH(BM_MatMulBackwardWeight, ffn_down_1536x576_t256, (Shape{576, 1536}), 256);
PK_TRAIN_BENCH(BM_MatMulBackwardInput, f32_ffn_up_576x1536_t256, DType::kF32, (Shape{1536, 576}),
               256);
PK_TRAIN_BENCH(BM_MatMulBackwardInput, f32_ffn_down_1536x576_t256, DType::kF32,
               (Shape{576, 1536}), 256);
PK_TRAIN_BENCH(BM_MatMulBackwardInput, q8_0_ffn_up_576x1536_t256, DType::kQ8_0,
               (Shape{1536, 576}), 256);
PK_TRAIN_BENCH(BM_MatMulBackwardInput, q4_0_ffn_up_576x1536_t256, DType::kQ4_0,
               (Shape{1536, 576}), 256);
// The forward of the same shape in F32, for comparison.
PK_MATMUL_BENCH(f32_135m_ffn_up_576x1536_t256, DType::kF32, 1536, 576, 256);

BENCHMARK_CAPTURE(BM_DecodeModel, q4_0_llama1b, DType::kQ4_0, 2048, 8192, 512, 128256, 16)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_DecodeModel, q8_0_llama1b, DType::kQ8_0, 2048, 8192, 512, 128256, 16)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_DecodeModel, q4_0_smollm135m, DType::kQ4_0, 576, 1536, 192, 49152, 30)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_DecodeModel, q8_0_smollm135m, DType::kQ8_0, 576, 1536, 192, 49152, 30)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace pocket::kernels
