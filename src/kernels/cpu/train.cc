// The CPU backend's training ops (train.h): bodies compiled once per Highway target, and
// (the HWY_ONCE part) their split over the thread pool into tasks of a fixed size.
//
// MatMulBackwardInput and MatMulBackwardWeight are one kernel, GemmAcc: C[i][c] +=
// sum_k A(k, i) * B_k[c] with a register tile of 4 i's by 3 (4 on AVX-512) vectors of c,
// one FMA per k in order chained onto C's value. BackwardWeight: i = weight row, k = token,
// A = dy, B_k = x[t]. BackwardInput: i = token, k = weight row, A = dy transposed, B_k = the
// weight row (dequantized into a thread-local tile for non-F32 weights, a block of rows
// and columns at a time, so each weight block is decoded once per call for all tokens).
// The k range is cut into blocks (C stored and reloaded between them, exactly), tiles
// into fixed column chunks: neither depends on the thread count.
//
// Exp is Highway's contrib Exp (a few ulp), clamped as the forward kernels clamp it.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/cpu/train.cc"
// clang-format off
#include "kernels/cpu/hwy_targets.h"  // IWYU pragma: keep
#include "hwy/foreach_target.h"       // IWYU pragma: keep
// clang-format on
#include "base/check.h"
#include "hwy/contrib/math/math-inl.h"
#include "kernels/cpu/elementwise-inl.h"
#include "kernels/cpu/fixed_sum-inl.h"
#include "hwy/highway.h"
#include "kernels/cpu/cpu.h"
#include "kernels/cpu/matmul_dequant.h"
#include "kernels/cpu/train.h"
#include "tensor/quant.h"

#ifndef POCKET_KERNELS_CPU_TRAIN_ONCE
#define POCKET_KERNELS_CPU_TRAIN_ONCE
namespace pocket::kernels::cpu {
// C[i][c] += sum_k A(k, i) * B_k[c] for i < num_i, c < wc, k < num_k in order.
struct GemmTile {
  const float* a = nullptr;  // A(k, i) = a[k * a_k + i * a_i]
  size_t a_k = 0, a_i = 0;
  const float* b = nullptr;  // B_k = b + k * ldb, wc floats
  size_t ldb = 0;
  float* c = nullptr;  // row i of C = c + i * ldc
  size_t ldc = 0;
  size_t num_i = 0, num_k = 0, wc = 0;
};
// The AdamW step's constants in float.
struct AdamWConsts {
  float lr, beta1, one_minus_beta1, beta2, one_minus_beta2, eps, weight_decay, grad_scale, inv_c1,
      inv_c2;
};
}  // namespace pocket::kernels::cpu
#endif

HWY_BEFORE_NAMESPACE();
namespace pocket::kernels::cpu {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;
using D = hn::ScalableTag<float>;
using V = decltype(hn::Zero(D()));

#if HWY_TARGET <= HWY_AVX3
constexpr size_t kGemmVecs = 4;  // 16 accumulators of 32 registers
#else
constexpr size_t kGemmVecs = 3;  // 12 accumulators of 16 registers
#endif

template <size_t kI, size_t kV>
HWY_INLINE void GemmBlock(const GemmTile& g, size_t i, size_t c) {
  const D d;
  const size_t N = hn::Lanes(d);
  V acc[kI][kV];
  for (size_t ii = 0; ii < kI; ++ii) {
    for (size_t v = 0; v < kV; ++v) acc[ii][v] = hn::LoadU(d, g.c + (i + ii) * g.ldc + c + v * N);
  }
  const float* a = g.a + i * g.a_i;
  const float* b = g.b + c;
  for (size_t k = 0; k < g.num_k; ++k, a += g.a_k, b += g.ldb) {
    V bv[kV];
    for (size_t v = 0; v < kV; ++v) bv[v] = hn::LoadU(d, b + v * N);
    for (size_t ii = 0; ii < kI; ++ii) {
      const V av = hn::Set(d, a[ii * g.a_i]);
      for (size_t v = 0; v < kV; ++v) acc[ii][v] = hn::MulAdd(av, bv[v], acc[ii][v]);
    }
  }
  for (size_t ii = 0; ii < kI; ++ii) {
    for (size_t v = 0; v < kV; ++v) hn::StoreU(acc[ii][v], d, g.c + (i + ii) * g.ldc + c + v * N);
  }
}

// Columns past the last full vector: a scalar chain per element (which columns these are
// depends only on wc, never on the split).
HWY_INLINE void GemmTail(const GemmTile& g, size_t i, size_t c0) {
  for (size_t c = c0; c < g.wc; ++c) {
    float acc = g.c[i * g.ldc + c];
    for (size_t k = 0; k < g.num_k; ++k) acc = std::fma(g.a[k * g.a_k + i * g.a_i], g.b[k * g.ldb + c], acc);
    g.c[i * g.ldc + c] = acc;
  }
}

template <size_t kI>
HWY_INLINE void GemmRows(const GemmTile& g, size_t i) {
  const size_t N = hn::Lanes(D());
  size_t c = 0;
  for (; c + kGemmVecs * N <= g.wc; c += kGemmVecs * N) GemmBlock<kI, kGemmVecs>(g, i, c);
  for (; c + N <= g.wc; c += N) GemmBlock<kI, 1>(g, i, c);
  if (c < g.wc) {
    for (size_t ii = 0; ii < kI; ++ii) GemmTail(g, i + ii, c);
  }
}

void GemmAccImpl(const GemmTile& g) {
  size_t i = 0;
  for (; i + 4 <= g.num_i; i += 4) GemmRows<4>(g, i);
  for (; i < g.num_i; ++i) GemmRows<1>(g, i);
}

// sigmoid(g) with -g clamped into Exp's range, as SwiGLU's forward computes it.
HWY_INLINE V Sigmoid(D d, V g) {
  const V one = hn::Set(d, 1.0f);
  const V lo = hn::Set(d, kScaledExpMin), hi = hn::Set(d, kScaledExpMax);
  return hn::Div(one, hn::Add(one, hn::Exp(d, hn::Min(hn::Max(hn::Neg(g), lo), hi))));
}

void SwiGLUBackwardImpl(const float* gate, const float* up, const float* dout, size_t n,
                        float* dgate, float* dup) {
  const D d;
  const V one = hn::Set(d, 1.0f);
  const float* const in[3] = {gate, up, dout};
  float* const out[2] = {dgate, dup};
  // silu(g) = g sig(g); silu'(g) = sig(g) (1 + g (1 - sig(g))). All inputs are loaded
  // before either output is stored, so dgate or dup may be dout.
  Elementwise(in, out, n, [&](const V* x, V* y) {
    const V sig = Sigmoid(d, x[0]);
    const V dsilu = hn::Mul(sig, hn::MulAdd(x[0], hn::Sub(one, sig), one));
    y[0] = hn::Mul(hn::Mul(x[2], x[1]), dsilu);
    y[1] = hn::Mul(x[2], hn::Mul(x[0], sig));
  });
}

void AdamWImpl(float* param, const float* grad, float* m, float* v, size_t n,
               const AdamWConsts& k) {
  const D d;
  const V lr = hn::Set(d, k.lr), b1 = hn::Set(d, k.beta1), omb1 = hn::Set(d, k.one_minus_beta1);
  const V b2 = hn::Set(d, k.beta2), omb2 = hn::Set(d, k.one_minus_beta2);
  const V eps = hn::Set(d, k.eps), wd = hn::Set(d, k.weight_decay);
  const V gs = hn::Set(d, k.grad_scale), ic1 = hn::Set(d, k.inv_c1), ic2 = hn::Set(d, k.inv_c2);
  const float* const in[4] = {param, grad, m, v};
  float* const out[3] = {param, m, v};
  Elementwise(in, out, n, [&](const V* x, V* y) {
    const V g = hn::Mul(x[1], gs);
    const V mi = hn::MulAdd(b1, x[2], hn::Mul(omb1, g));
    const V vi = hn::MulAdd(b2, x[3], hn::Mul(omb2, hn::Mul(g, g)));
    const V update =
        hn::MulAdd(wd, x[0], hn::Div(hn::Mul(mi, ic1), hn::Add(hn::Sqrt(hn::Mul(vi, ic2)), eps)));
    y[0] = hn::NegMulAdd(lr, update, x[0]);
    y[1] = mi;
    y[2] = vi;
  });
}

float SumSquaresImpl(const float* x, size_t n) { return fixed_sum::SumSquares(x, n); }

HWY_INLINE float Dot(const float* a, const float* b, size_t n) { return fixed_sum::Dot(a, b, n); }

// One row of RmsNormBackward's input gradient; returns the row's 1 / rms (the forward's
// scale, computed as RmsNorm computes it) for the weight gradient.
float RmsNormBackwardRowImpl(const float* x, const float* w, float eps, size_t n, const float* dy,
                             float* dx) {
  const D d;
  const size_t N = hn::Lanes(d);
  const float ss = Dot(x, x, n);
  const float r = 1.0f / std::sqrt(ss / static_cast<float>(n) + eps);
  const float* const in[3] = {dy, w, x};
  const float dot = fixed_sum::Sum(in, n, [](const fixed_sum::V16* v, fixed_sum::V16 acc) {
    return hn::MulAdd(hn::Mul(v[0], v[1]), v[2], acc);
  });
  // dx_j += r w_j dy_j - (r^3 / n) dot x_j
  const float c = r * r * r / static_cast<float>(n) * dot;
  const V vr = hn::Set(d, r), vc = hn::Set(d, c);
  size_t i = 0;
  for (; i + N <= n; i += N) {
    const V g = hn::Mul(hn::Mul(vr, hn::LoadU(d, w + i)), hn::LoadU(d, dy + i));
    hn::StoreU(hn::Add(hn::LoadU(d, dx + i), hn::NegMulAdd(vc, hn::LoadU(d, x + i), g)), d, dx + i);
  }
  for (; i < n; ++i) dx[i] += std::fma(-c, x[i], r * w[i] * dy[i]);  // the lanes' operations
  return r;
}

// dweight[c] += dy[row][c] * x[row][c] * rs[row] for c in [c0, c1), rows in order.
void RmsNormWeightGradImpl(const float* x, const float* dy, const float* rs, size_t n,
                           size_t num_rows, size_t c0, size_t c1, float* dweight) {
  const D d;
  const size_t N = hn::Lanes(d);
  size_t c = c0;
  for (; c + N <= c1; c += N) {
    V acc = hn::LoadU(d, dweight + c);
    for (size_t row = 0; row < num_rows; ++row) {
      const V p = hn::Mul(hn::LoadU(d, dy + row * n + c), hn::LoadU(d, x + row * n + c));
      acc = hn::MulAdd(p, hn::Set(d, rs[row]), acc);
    }
    hn::StoreU(acc, d, dweight + c);
  }
  for (; c < c1; ++c) {
    float acc = dweight[c];
    for (size_t row = 0; row < num_rows; ++row) {
      acc = std::fma(dy[row * n + c] * x[row * n + c], rs[row], acc);
    }
    dweight[c] = acc;
  }
}

// One query head of AttentionBackward: the softmax recomputed exactly as the forward
// (AttentionHead: F32 dots, * scale, Softmax), then
//   dP_j = do.v_j;  D = sum_j P_j dP_j;  dS_j = P_j (dP_j - D) scale;
//   dq = sum_j dS_j k_j (written);  dk_j += dS_j q;  dv_j += P_j do  (j in order).
// k, v, dk, dv point at position 0 of this kv head; rows are `stride` floats apart.
// scratch: 2 * len floats.
void AttentionBackwardHeadImpl(const float* q, const float* k, const float* v, const float* dout,
                               size_t stride, size_t hd, size_t len, float scale, float* scratch,
                               float* dq, float* dk, float* dv) {
  const D d;
  const size_t N = hn::Lanes(d);
  float* p = scratch;
  float* ds = scratch + len;
  for (size_t j = 0; j < len; ++j) p[j] = Dot(q, k + j * stride, hd) * scale;
  Softmax(p, len);
  float dsum = 0.0f;
  for (size_t j = 0; j < len; ++j) {
    ds[j] = Dot(dout, v + j * stride, hd);
    dsum = std::fma(p[j], ds[j], dsum);
  }
  for (size_t j = 0; j < len; ++j) ds[j] = p[j] * (ds[j] - dsum) * scale;
  size_t i = 0;
  for (; i + N <= hd; i += N) {
    V acc = hn::Zero(d);
    const V qv = hn::LoadU(d, q + i), dov = hn::LoadU(d, dout + i);
    for (size_t j = 0; j < len; ++j) {
      const V dsj = hn::Set(d, ds[j]);
      acc = hn::MulAdd(dsj, hn::LoadU(d, k + j * stride + i), acc);
      float* dkj = dk + j * stride + i;
      hn::StoreU(hn::MulAdd(dsj, qv, hn::LoadU(d, dkj)), d, dkj);
      float* dvj = dv + j * stride + i;
      hn::StoreU(hn::MulAdd(hn::Set(d, p[j]), dov, hn::LoadU(d, dvj)), d, dvj);
    }
    hn::StoreU(acc, d, dq + i);
  }
  for (; i < hd; ++i) {
    float acc = 0.0f;
    for (size_t j = 0; j < len; ++j) {
      acc = std::fma(ds[j], k[j * stride + i], acc);  // the lanes' operations, fused
      dk[j * stride + i] = std::fma(ds[j], q[i], dk[j * stride + i]);
      dv[j * stride + i] = std::fma(p[j], dout[i], dv[j * stride + i]);
    }
    dq[i] = acc;
  }
}

float MaxOfImpl(const float* x, size_t n) {
  const D d;
  const size_t N = hn::Lanes(d);
  size_t i = 0;
  float m = -INFINITY;
  if (n >= N) {
    V vm = hn::LoadU(d, x);
    for (i = N; i + N <= n; i += N) vm = hn::Max(vm, hn::LoadU(d, x + i));
    m = hn::GetLane(hn::MaxOfLanes(d, vm));
  }
  for (; i < n; ++i) m = x[i] > m ? x[i] : m;
  return m;
}

// One row of CrossEntropy (target >= 0): exp(l - max) into g (l may be g), their sum in
// double in index order, then g = e * (grad_scale / sum) and g[target] -= grad_scale.
float CrossEntropyRowImpl(const float* l, int32_t target, size_t vocab, float grad_scale,
                          float* g) {
  const D d;
  const float m = MaxOfImpl(l, vocab);
  const float lt = l[target];
  const V vm = hn::Set(d, m), lo = hn::Set(d, kScaledExpMin);
  const float* const in1[1] = {l};
  float* const out1[1] = {g};
  Elementwise(in1, out1, vocab, [&](const V* x, V* y) {
    const V arg = hn::Sub(x[0], vm);
    y[0] = hn::IfThenZeroElse(hn::Lt(arg, lo), hn::Exp(d, hn::Max(arg, lo)));
  });
  double sum = 0.0;
  for (size_t i = 0; i < vocab; ++i) sum += g[i];
  const V f = hn::Set(d, static_cast<float>(grad_scale / sum));
  const float* const in2[1] = {g};
  Elementwise(in2, out1, vocab, [&](const V* x, V* y) { y[0] = hn::Mul(x[0], f); });
  g[target] -= grad_scale;
  return static_cast<float>(static_cast<double>(m) + std::log(sum) - lt);
}

}  // namespace HWY_NAMESPACE
}  // namespace pocket::kernels::cpu
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace pocket::kernels::cpu {

HWY_EXPORT(GemmAccImpl);
HWY_EXPORT(SwiGLUBackwardImpl);
HWY_EXPORT(AdamWImpl);
HWY_EXPORT(SumSquaresImpl);
HWY_EXPORT(RmsNormBackwardRowImpl);
HWY_EXPORT(RmsNormWeightGradImpl);
HWY_EXPORT(AttentionBackwardHeadImpl);
HWY_EXPORT(CrossEntropyRowImpl);

namespace {

// Task sizes. Fixed (never derived from the thread count), so the work each output
// element sees is the same for any split. GEMM: kGemmI rows of C by kGemmCols columns per
// task, k in blocks of kGemmK (the B block then stays in L2: 256 x 128 floats = 128 KiB).
constexpr size_t kGemmI = 64, kGemmCols = 128, kGemmK = 256;
// BackwardInput of a non-F32 weight: a task is a column chunk of kDeqCols (or one block of
// the dtype, when wider) for every token, the weight decoded kDeqRows rows at a time into
// a thread-local tile (64 x 256 floats at most = 64 KiB).
constexpr size_t kDeqCols = 64, kDeqRows = 64;
// Elementwise ops: chunks of this many floats per task.
constexpr size_t kChunk = 16384;
// Column chunks of the column-parallel reductions (SumRows, GetRowsBackward, RmsNorm's
// weight gradient).
constexpr size_t kColChunk = 256;

size_t CeilDiv(size_t a, size_t b) { return (a + b - 1) / b; }

void Gemm(const GemmTile& g) { HWY_DYNAMIC_DISPATCH(GemmAccImpl)(g); }

// Workspace slots of the training ops (the CPU backend gives them a Workspace of their own).
constexpr size_t kSlotRms = 0, kSlotSumSquares = 1, kSlotRope = 2;

}  // namespace

void MatMulBackwardWeight(const float* x, const float* dy, size_t num_tokens, size_t rows,
                          size_t cols, float* dw, ThreadPool& pool) {
  if (num_tokens == 0) return;
  const size_t ib = CeilDiv(rows, kGemmI), cb = CeilDiv(cols, kGemmCols);
  pool.ParallelFor(ib * cb, [&](size_t task, size_t) {
    const size_t i0 = task / cb * kGemmI, c0 = task % cb * kGemmCols;
    GemmTile g;
    g.a_k = rows;
    g.a_i = 1;
    g.ldb = cols;
    g.ldc = cols;
    g.num_i = std::min(kGemmI, rows - i0);
    g.wc = std::min(kGemmCols, cols - c0);
    g.c = dw + i0 * cols + c0;
    for (size_t k0 = 0; k0 < num_tokens; k0 += kGemmK) {
      g.num_k = std::min(kGemmK, num_tokens - k0);
      g.a = dy + k0 * rows + i0;
      g.b = x + k0 * cols + c0;
      Gemm(g);
    }
  });
}

void MatMulBackwardInput(const tensor::TensorView& w, const float* dy, size_t num_tokens, float* dx,
                         ThreadPool& pool) {
  PK_CHECK(MatMulSupports(w.dtype));
  if (num_tokens == 0) return;
  const size_t cols = static_cast<size_t>(w.ne[0]);
  const size_t rows = static_cast<size_t>(w.num_rows());
  if (w.dtype == tensor::DType::kF32) {
    const auto* wf = static_cast<const float*>(w.data);
    const size_t ib = CeilDiv(num_tokens, kGemmI), cb = CeilDiv(cols, kGemmCols);
    pool.ParallelFor(ib * cb, [&](size_t task, size_t) {
      const size_t i0 = task / cb * kGemmI, c0 = task % cb * kGemmCols;
      GemmTile g;
      g.a_k = 1;
      g.a_i = rows;
      g.ldb = cols;
      g.ldc = cols;
      g.num_i = std::min(kGemmI, num_tokens - i0);
      g.wc = std::min(kGemmCols, cols - c0);
      g.c = dx + i0 * cols + c0;
      for (size_t k0 = 0; k0 < rows; k0 += kGemmK) {
        g.num_k = std::min(kGemmK, rows - k0);
        g.a = dy + i0 * rows + k0;
        g.b = wf + k0 * cols + c0;
        Gemm(g);
      }
    });
    return;
  }
  const size_t block = tensor::BlockElements(w.dtype);
  const size_t chunk = std::max(kDeqCols, block);
  PK_CHECK(cols % block == 0 && chunk % block == 0);
  const size_t block_bytes = tensor::BlockBytes(w.dtype);
  const bool iq = IsDequantMatMulType(w.dtype);
  pool.ParallelFor(CeilDiv(cols, chunk), [&](size_t task, size_t) {
    const size_t c0 = task * chunk, wc = std::min(chunk, cols - c0);
    thread_local std::vector<float> tile;
    if (tile.size() < kDeqRows * chunk) tile.resize(kDeqRows * chunk);
    GemmTile g;
    g.a_k = 1;
    g.a_i = rows;
    g.b = tile.data();
    g.ldb = wc;
    g.c = dx + c0;
    g.ldc = cols;
    g.num_i = num_tokens;
    g.wc = wc;
    for (size_t k0 = 0; k0 < rows; k0 += kDeqRows) {
      g.num_k = std::min(kDeqRows, rows - k0);
      for (size_t r = 0; r < g.num_k; ++r) {
        const std::byte* src = w.row(static_cast<int64_t>(k0 + r)) + c0 / block * block_bytes;
        if (iq) {
          DequantizeRowIq(w.dtype, src, tile.data() + r * wc, wc);
        } else {
          tensor::DequantizeRow(w.dtype, src, tile.data() + r * wc, wc);
        }
      }
      g.a = dy + k0;
      Gemm(g);
    }
  });
}

void MatMulTrainable(const float* w, size_t rows, size_t cols, const float* x, size_t num_tokens,
                     float* y, ThreadPool& pool) {
  if (num_tokens == 0) return;
  // W transposed (cols x rows), 32 x 32 blocks at a time: y = x W^T is then
  // MatMulBackwardInput's product with that matrix, chained onto zeros.
  thread_local std::vector<float> wt;
  wt.resize(rows * cols);
  constexpr size_t kB = 32;
  for (size_t r0 = 0; r0 < rows; r0 += kB) {
    for (size_t c0 = 0; c0 < cols; c0 += kB) {
      const size_t r1 = std::min(rows, r0 + kB), c1 = std::min(cols, c0 + kB);
      for (size_t r = r0; r < r1; ++r) {
        for (size_t c = c0; c < c1; ++c) wt[c * rows + r] = w[r * cols + c];
      }
    }
  }
  Fill(y, num_tokens * rows, 0.0f, pool);
  tensor::TensorView view;
  view.ne = {static_cast<int64_t>(rows), static_cast<int64_t>(cols), 1, 1};
  view.data = wt.data();
  MatMulBackwardInput(view, x, num_tokens, y, pool);
}

void SumRows(const float* dy, size_t n, size_t num_rows, float* dbias, ThreadPool& pool) {
  pool.ParallelFor(CeilDiv(n, kColChunk), [&](size_t task, size_t) {
    const size_t c0 = task * kColChunk, len = std::min(kColChunk, n - c0);
    for (size_t r = 0; r < num_rows; ++r) Add(dbias + c0, dy + r * n + c0, len, dbias + c0);
  });
}

void GetRowsBackward(const int32_t* ids, size_t num_ids, const float* dout, size_t n, float* dtable,
                     ThreadPool& pool) {
  for (size_t i = 0; i < num_ids; ++i) PK_CHECK(ids[i] >= 0);
  pool.ParallelFor(CeilDiv(n, kColChunk), [&](size_t task, size_t) {
    const size_t c0 = task * kColChunk, len = std::min(kColChunk, n - c0);
    for (size_t i = 0; i < num_ids; ++i) {
      float* row = dtable + static_cast<size_t>(ids[i]) * n + c0;
      Add(row, dout + i * n + c0, len, row);
    }
  });
}

void RmsNormBackward(const float* x, const float* weight, float eps, size_t n, size_t num_rows,
                     const float* dy, float* dx, float* dweight, ThreadPool& pool, Workspace& ws) {
  auto* rs = static_cast<float*>(ws.Get(kSlotRms, num_rows * sizeof(float)));
  pool.ParallelFor(num_rows, [&](size_t row, size_t) {
    rs[row] = HWY_DYNAMIC_DISPATCH(RmsNormBackwardRowImpl)(x + row * n, weight, eps, n,
                                                           dy + row * n, dx + row * n);
  });
  pool.ParallelFor(CeilDiv(n, kColChunk), [&](size_t task, size_t) {
    const size_t c0 = task * kColChunk, c1 = std::min(n, c0 + kColChunk);
    HWY_DYNAMIC_DISPATCH(RmsNormWeightGradImpl)(x, dy, rs, n, num_rows, c0, c1, dweight);
  });
}

void RopeBackward(float* dx, size_t num_tokens, size_t num_heads, const int32_t* positions,
                  const RopeTable& table, Workspace& ws) {
  const RopeConfig& c = table.config();
  const size_t half = c.rot_dims / 2;
  auto* neg_sin = static_cast<float*>(ws.Get(kSlotRope, std::max<size_t>(half, 1) * 4));
  for (size_t t = 0; t < num_tokens; ++t) {
    PK_CHECK(positions[t] >= 0 && static_cast<size_t>(positions[t]) < table.max_positions());
    const size_t p = static_cast<size_t>(positions[t]);
    for (size_t i = 0; i < half; ++i) neg_sin[i] = -table.sin(p)[i];
    for (size_t h = 0; h < num_heads; ++h) {
      RopeHead(dx + (t * num_heads + h) * c.head_dim, table.cos(p), neg_sin, c.rot_dims,
               c.style == RopeStyle::kNeox);
    }
  }
}

void AttentionBackward(const float* q, const float* k, const float* v, const float* dout,
                       size_t num_seqs, size_t seq_len, size_t num_heads, size_t num_kv_heads,
                       size_t head_dim, float scale, float* dq, float* dk, float* dv,
                       ThreadPool& pool) {
  PK_CHECK(num_kv_heads > 0 && num_heads % num_kv_heads == 0);
  const size_t hd = head_dim, group = num_heads / num_kv_heads;
  const size_t q_row = num_heads * hd, kv_row = num_kv_heads * hd;
  // A task owns one kv head of one sequence: its dk, dv rows and the dq of its query heads.
  pool.ParallelFor(num_seqs * num_kv_heads, [&](size_t task, size_t) {
    const size_t s = task / num_kv_heads, kvh = task % num_kv_heads;
    const size_t base = s * seq_len * kv_row + kvh * hd;
    for (size_t p = 0; p < seq_len; ++p) {
      std::fill_n(dk + base + p * kv_row, hd, 0.0f);
      std::fill_n(dv + base + p * kv_row, hd, 0.0f);
    }
    thread_local std::vector<float> scratch;
    if (scratch.size() < 2 * seq_len) scratch.resize(2 * seq_len);
    for (size_t t = 0; t < seq_len; ++t) {
      for (size_t h = kvh * group; h < (kvh + 1) * group; ++h) {
        const size_t qo = (s * seq_len + t) * q_row + h * hd;
        HWY_DYNAMIC_DISPATCH(AttentionBackwardHeadImpl)
        (q + qo, k + base, v + base, dout + qo, kv_row, hd, t + 1, scale, scratch.data(), dq + qo,
         dk + base, dv + base);
      }
    }
  });
}

void SwiGLUBackward(const float* gate, const float* up, const float* dout, size_t n, float* dgate,
                    float* dup, ThreadPool& pool) {
  pool.ParallelFor(CeilDiv(n, kChunk), [&](size_t task, size_t) {
    const size_t i = task * kChunk, len = std::min(kChunk, n - i);
    HWY_DYNAMIC_DISPATCH(SwiGLUBackwardImpl)(gate + i, up + i, dout + i, len, dgate + i, dup + i);
  });
}

void CrossEntropy(const float* logits, const int32_t* targets, size_t num_rows, size_t vocab,
                  float grad_scale, float* losses, float* dlogits, ThreadPool& pool) {
  pool.ParallelFor(num_rows, [&](size_t r, size_t) {
    float* g = dlogits + r * vocab;
    if (targets[r] < 0) {
      losses[r] = 0.0f;
      std::fill_n(g, vocab, 0.0f);
      return;
    }
    PK_CHECK(static_cast<size_t>(targets[r]) < vocab);
    losses[r] = HWY_DYNAMIC_DISPATCH(CrossEntropyRowImpl)(logits + r * vocab, targets[r], vocab,
                                                          grad_scale, g);
  });
}

double SumSquares(const float* x, size_t n, ThreadPool& pool, Workspace& ws) {
  const size_t blocks = CeilDiv(n, kSumSquaresBlock);
  auto* sums = static_cast<float*>(ws.Get(kSlotSumSquares, std::max<size_t>(blocks, 1) * 4));
  constexpr size_t kBlocksPerTask = 64;
  pool.ParallelFor(CeilDiv(blocks, kBlocksPerTask), [&](size_t task, size_t) {
    const size_t b1 = std::min(blocks, (task + 1) * kBlocksPerTask);
    for (size_t b = task * kBlocksPerTask; b < b1; ++b) {
      const size_t i = b * kSumSquaresBlock;
      sums[b] = HWY_DYNAMIC_DISPATCH(SumSquaresImpl)(x + i, std::min(kSumSquaresBlock, n - i));
    }
  });
  double total = 0.0;
  for (size_t b = 0; b < blocks; ++b) total += sums[b];
  return total;
}

void Fill(float* x, size_t n, float value, ThreadPool& pool) {
  pool.ParallelFor(CeilDiv(n, kChunk), [&](size_t task, size_t) {
    const size_t i = task * kChunk;
    std::fill_n(x + i, std::min(kChunk, n - i), value);
  });
}

void AdamW(float* param, const float* grad, float* m, float* v, size_t n, const AdamWParams& p,
           ThreadPool& pool) {
  PK_CHECK(p.step >= 1);
  const double step = static_cast<double>(p.step);
  AdamWConsts k;
  k.lr = p.lr;
  k.beta1 = p.beta1;
  k.one_minus_beta1 = static_cast<float>(1.0 - static_cast<double>(p.beta1));
  k.beta2 = p.beta2;
  k.one_minus_beta2 = static_cast<float>(1.0 - static_cast<double>(p.beta2));
  k.eps = p.eps;
  k.weight_decay = p.weight_decay;
  k.grad_scale = p.grad_scale;
  k.inv_c1 = static_cast<float>(1.0 / (1.0 - std::pow(static_cast<double>(p.beta1), step)));
  k.inv_c2 = static_cast<float>(1.0 / (1.0 - std::pow(static_cast<double>(p.beta2), step)));
  pool.ParallelFor(CeilDiv(n, kChunk), [&](size_t task, size_t) {
    const size_t i = task * kChunk, len = std::min(kChunk, n - i);
    HWY_DYNAMIC_DISPATCH(AdamWImpl)(param + i, grad + i, m + i, v + i, len, k);
  });
}

}  // namespace pocket::kernels::cpu
#endif  // HWY_ONCE
