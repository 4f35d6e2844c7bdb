// Reference-path MatMul bodies (see matmul_dequant.h), compiled once per Highway target.
// A weight row is decoded to f32 once (tensor::DequantizeRow, ggml's exact values) into a
// thread-local buffer and dotted with each token's f32 activation: four vector FMA chains
// over the row, combined in a fixed order, then the lanes summed. Decoding dominates at
// decode time (one token per row decoded): see docs/formats.md for the measured cost.
#include <cstring>
#include <vector>

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/cpu/matmul_dequant.cc"
#include "kernels/cpu/hwy_targets.h"  // IWYU pragma: keep
#include "hwy/foreach_target.h"       // IWYU pragma: keep
#include "base/check.h"
#include "hwy/highway.h"
#include "kernels/cpu/matmul_dequant.h"
#include "tensor/dtype.h"
#include "tensor/quant.h"

HWY_BEFORE_NAMESPACE();
namespace pocket::kernels::cpu {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// sum_i w[i] * x[i]: four independent FMA chains (latency, not throughput, bounds one
// chain) over whole groups of 4 vectors, then the remaining vectors on chain 0, then a
// scalar tail; chains added as (0 + 1) + (2 + 3) and the lanes summed.
float DotF32(const float* w, const float* x, size_t n) {
  const hn::ScalableTag<float> d;
  const size_t N = hn::Lanes(d);
  auto a0 = hn::Zero(d), a1 = hn::Zero(d), a2 = hn::Zero(d), a3 = hn::Zero(d);
  size_t i = 0;
  for (; i + 4 * N <= n; i += 4 * N) {
    a0 = hn::MulAdd(hn::LoadU(d, w + i), hn::LoadU(d, x + i), a0);
    a1 = hn::MulAdd(hn::LoadU(d, w + i + N), hn::LoadU(d, x + i + N), a1);
    a2 = hn::MulAdd(hn::LoadU(d, w + i + 2 * N), hn::LoadU(d, x + i + 2 * N), a2);
    a3 = hn::MulAdd(hn::LoadU(d, w + i + 3 * N), hn::LoadU(d, x + i + 3 * N), a3);
  }
  for (; i + N <= n; i += N) a0 = hn::MulAdd(hn::LoadU(d, w + i), hn::LoadU(d, x + i), a0);
  float sum = hn::GetLane(hn::SumOfLanes(d, hn::Add(hn::Add(a0, a1), hn::Add(a2, a3))));
  for (; i < n; ++i) sum += w[i] * x[i];
  return sum;
}

void MatMulRowsDequantImpl(const tensor::TensorView& w, const Activations& act, size_t r0,
                           size_t r1, float* y) {
  const size_t rows = static_cast<size_t>(w.ne[1]);
  const size_t cols = act.cols;
  thread_local std::vector<float> row;
  if (row.size() < cols) row.resize(cols);
  for (size_t r = r0; r < r1; ++r) {
    tensor::DequantizeRow(w.dtype, w.row(static_cast<int64_t>(r)), row.data(), cols);
    for (size_t t = 0; t < act.num_tokens; ++t) {
      y[t * rows + r] = DotF32(row.data(), act.f32 + t * cols, cols);
    }
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace pocket::kernels::cpu
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace pocket::kernels::cpu {

HWY_EXPORT(MatMulRowsDequantImpl);

bool IsDequantMatMulType(tensor::DType dtype) {
  using tensor::DType;
  switch (dtype) {
    case DType::kIQ2_XXS: case DType::kIQ2_XS: case DType::kIQ2_S: case DType::kIQ3_XXS:
    case DType::kIQ3_S: case DType::kIQ1_S: case DType::kIQ1_M:
      return true;
    default:
      return false;
  }
}

void MatMulRowsDequant(const tensor::TensorView& w, const Activations& act, size_t r0, size_t r1,
                       float* y) {
  PK_CHECK(IsDequantMatMulType(w.dtype) && act.kind == 0);
  HWY_DYNAMIC_DISPATCH(MatMulRowsDequantImpl)(w, act, r0, r1, y);
}

}  // namespace pocket::kernels::cpu
#endif  // HWY_ONCE
