// Element-wise and attention bodies, compiled once per Highway target. F32 throughout;
// exp from Highway's contrib math (max relative error a few ulp, see math-inl.h).
#include <algorithm>
#include <cmath>
#include <cstring>

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/cpu/ops.cc"
#include "kernels/cpu/hwy_targets.h"  // IWYU pragma: keep
#include "hwy/foreach_target.h"       // IWYU pragma: keep
#include "hwy/highway.h"
#include "hwy/contrib/math/math-inl.h"
#include "kernels/cpu/elementwise-inl.h"
#include "kernels/cpu/fixed_sum-inl.h"
#include "kernels/cpu/cpu.h"
#include "tensor/fp16.h"

HWY_BEFORE_NAMESPACE();
namespace pocket::kernels::cpu {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;
using tensor::DType;

void RmsNormImpl(const float* x, const float* weight, float eps, size_t n, float* out) {
  const hn::ScalableTag<float> d;
  const size_t N = hn::Lanes(d);
  const float ss = fixed_sum::SumSquares(x, n);
  const float scale = 1.0f / std::sqrt(ss / static_cast<float>(n) + eps);
  const auto vs = hn::Set(d, scale);
  size_t i = 0;
  for (; i + N <= n; i += N) {
    hn::StoreU(hn::Mul(hn::Mul(hn::LoadU(d, x + i), vs), hn::LoadU(d, weight + i)), d, out + i);
  }
  for (; i < n; ++i) out[i] = x[i] * scale * weight[i];
}

void RopeHeadImpl(float* x, const float* cs, const float* sn, size_t rot_dims, bool neox) {
  const size_t half = rot_dims / 2;
  if (neox) {
    const hn::ScalableTag<float> d;
    const size_t N = hn::Lanes(d);
    size_t i = 0;
    for (; i + N <= half; i += N) {
      const auto a = hn::LoadU(d, x + i), b = hn::LoadU(d, x + half + i);
      const auto c = hn::LoadU(d, cs + i), s = hn::LoadU(d, sn + i);
      hn::StoreU(hn::NegMulAdd(b, s, hn::Mul(a, c)), d, x + i);
      hn::StoreU(hn::MulAdd(a, s, hn::Mul(b, c)), d, x + half + i);
    }
    for (; i < half; ++i) {  // the vector lanes' operations, fused the same way
      const float a = x[i], b = x[half + i];
      x[i] = std::fma(-b, sn[i], a * cs[i]);
      x[half + i] = std::fma(a, sn[i], b * cs[i]);
    }
  } else {
    for (size_t i = 0; i < half; ++i) {
      const float a = x[2 * i], b = x[2 * i + 1];
      x[2 * i] = std::fma(-b, sn[i], a * cs[i]);
      x[2 * i + 1] = std::fma(a, sn[i], b * cs[i]);
    }
  }
}

float MaxOf(const float* x, size_t n) {
  const hn::ScalableTag<float> d;
  const size_t N = hn::Lanes(d);
  size_t i = 0;
  float m = -INFINITY;
  if (n >= N) {
    auto vm = hn::LoadU(d, x);
    for (i = N; i + N <= n; i += N) vm = hn::Max(vm, hn::LoadU(d, x + i));
    m = hn::GetLane(hn::MaxOfLanes(d, vm));
  }
  for (; i < n; ++i) m = x[i] > m ? x[i] : m;
  return m;
}

void SoftmaxImpl(float* x, size_t n) {
  if (n == 0) return;
  const hn::ScalableTag<float> d;
  const size_t N = hn::Lanes(d);
  const float m = MaxOf(x, n);
  const auto vm = hn::Set(d, m);
  const auto lo = hn::Set(d, kScaledExpMin);
  // As in ScaledExp: Exp sees only finite arguments it can take (a masked -inf or a huge
  // negative score would reach a float-to-int conversion inside it on some targets);
  // below the range the result is 0, and NaN stays NaN. The tail goes through the same
  // vector code, and the sum is a fixed sum, so no entry depends on the vector width.
  const float* const in[1] = {x};
  float* const out[1] = {x};
  Elementwise(in, out, n, [&](const auto* v, auto* y) {
    const auto arg = hn::Sub(v[0], vm);
    y[0] = hn::IfThenElse(hn::IsNaN(arg), arg,
                          hn::IfThenZeroElse(hn::Lt(arg, lo), hn::Exp(d, hn::Max(arg, lo))));
  });
  const float sum = fixed_sum::Sum(in, n, [](const fixed_sum::V16* e, fixed_sum::V16 acc) {
    return hn::Add(acc, e[0]);
  });
  const float inv = 1.0f / sum;
  const auto vinv = hn::Set(d, inv);
  size_t i = 0;
  for (; i + N <= n; i += N) hn::StoreU(hn::Mul(hn::LoadU(d, x + i), vinv), d, x + i);
  for (; i < n; ++i) x[i] *= inv;
}

size_t ArgMaxImpl(const float* x, size_t n) {
  const hn::ScalableTag<float> d;
  const size_t N = hn::Lanes(d);
  // Pass 1: the maximum over non-NaN entries; pass 2: its first index.
  const auto neg_inf = hn::Set(d, -INFINITY);
  auto vm = neg_inf;
  size_t i = 0;
  for (; i + N <= n; i += N) {
    const auto v = hn::LoadU(d, x + i);
    vm = hn::Max(vm, hn::IfThenElse(hn::IsNaN(v), neg_inf, v));
  }
  float m = hn::GetLane(hn::MaxOfLanes(d, vm));
  for (; i < n; ++i) m = x[i] > m ? x[i] : m;
  const auto vmax = hn::Set(d, m);
  for (i = 0; i + N <= n; i += N) {
    const intptr_t k = hn::FindFirstTrue(d, hn::Eq(hn::LoadU(d, x + i), vmax));
    if (k >= 0) return i + static_cast<size_t>(k);
  }
  for (; i < n; ++i) {
    if (x[i] == m) return i;
  }
  return 0;  // every entry NaN
}

void ScaledExpImpl(const float* x, size_t n, float scale, float offset, float* out) {
  const hn::ScalableTag<float> d;
  const auto vs = hn::Set(d, scale), vo = hn::Set(d, offset);
  const auto lo = hn::Set(d, kScaledExpMin), hi = hn::Set(d, kScaledExpMax);
  const float* const in[1] = {x};
  float* const outs[1] = {out};
  Elementwise(in, outs, n, [&](const auto* v, auto* y) {
    const auto arg = hn::MulSub(v[0], vs, vo);
    // Exp only ever sees finite, clamped arguments (-inf or NaN would reach a float-to-int
    // conversion inside it on some targets); below the range, and for NaN, the result is 0.
    const auto e = hn::Exp(d, hn::Min(hn::Max(arg, lo), hi));
    y[0] = hn::IfThenZeroElse(hn::Or(hn::IsNaN(v[0]), hn::Lt(arg, lo)), e);
  });
}

void SwiGLUImpl(const float* gate, const float* up, size_t n, float* out) {
  const hn::ScalableTag<float> d;
  const auto one = hn::Set(d, 1.0f);
  const auto lo = hn::Set(d, kScaledExpMin), hi = hn::Set(d, kScaledExpMax);
  const float* const in[2] = {gate, up};
  float* const outs[1] = {out};
  Elementwise(in, outs, n, [&](const auto* v, auto* y) {
    const auto g = v[0];
    // exp(-g) with -g clamped into Exp's range (see Softmax): the sigmoid is then 1 - 2e-38
    // or 6e-39 instead of 1 or 0 at the far ends, and defined for +-inf.
    const auto sig = hn::Div(one, hn::Add(one, hn::Exp(d, hn::Min(hn::Max(hn::Neg(g), lo), hi))));
    y[0] = hn::Mul(hn::Mul(g, sig), v[1]);
  });
}

void AddImpl(const float* a, const float* b, size_t n, float* out) {
  const hn::ScalableTag<float> d;
  const size_t N = hn::Lanes(d);
  size_t i = 0;
  for (; i + N <= n; i += N) {
    hn::StoreU(hn::Add(hn::LoadU(d, a + i), hn::LoadU(d, b + i)), d, out + i);
  }
  for (; i < n; ++i) out[i] = a[i] + b[i];
}

template <typename T>
HWY_INLINE auto LoadF32(hn::ScalableTag<float> d, const T* p) {
  if constexpr (std::is_same_v<T, float>) {
    return hn::LoadU(d, p);
  } else {
    const hn::Rebind<T, decltype(d)> dh;
    return hn::PromoteTo(d, hn::LoadU(dh, p));
  }
}

template <typename T>
HWY_INLINE float ToF32(const T* p, size_t i) {
  if constexpr (std::is_same_v<T, float>) {
    return p[i];
  } else {
    uint16_t bits;
    std::memcpy(&bits, p + i, 2);
    return tensor::F16ToF32(bits);
  }
}

template <typename T>
void AttentionHeadT(const float* q, const T* k, const T* v, size_t row_stride, size_t hd,
                    size_t len, float scale, float* scores, float* out) {
  const hn::ScalableTag<float> d;
  const size_t N = hn::Lanes(d);
  for (size_t p = 0; p < len; ++p) {
    const T* kp = k + p * row_stride;
    float s;
    if constexpr (std::is_same_v<T, float>) {
      s = fixed_sum::Dot(q, kp, hd);  // the same bits on every FMA target (training's path)
    } else {
      auto acc = hn::Zero(d);
      size_t i = 0;
      for (; i + N <= hd; i += N) acc = hn::MulAdd(hn::LoadU(d, q + i), LoadF32(d, kp + i), acc);
      s = hn::GetLane(hn::SumOfLanes(d, acc));
      for (; i < hd; ++i) s += q[i] * ToF32(kp, i);
    }
    scores[p] = s * scale;
  }
  SoftmaxImpl(scores, len);
  // out[i] = sum over p in order of scores[p] * v[p][i], one FMA per p. Up to kChunks
  // vectors of the head are accumulated side by side (positions outside, chunks inside),
  // so the FMA chains overlap instead of waiting on each other; same order per element.
  constexpr size_t kChunks = 8;
  size_t i = 0;
  for (; i + N <= hd; i += kChunks * N) {
    const size_t chunks = std::min(kChunks, (hd - i) / N);
    decltype(hn::Zero(d)) acc[kChunks];
    for (size_t c = 0; c < kChunks; ++c) acc[c] = hn::Zero(d);
    for (size_t p = 0; p < len; ++p) {
      const auto sp = hn::Set(d, scores[p]);
      const T* vp = v + p * row_stride + i;
      for (size_t c = 0; c < chunks; ++c) acc[c] = hn::MulAdd(sp, LoadF32(d, vp + c * N), acc[c]);
    }
    for (size_t c = 0; c < chunks; ++c) hn::StoreU(acc[c], d, out + i + c * N);
    if (chunks < kChunks) {
      i += chunks * N;
      break;
    }
  }
  for (; i < hd; ++i) {
    float acc = 0.0f;
    for (size_t p = 0; p < len; ++p) acc = std::fma(scores[p], ToF32(v + p * row_stride, i), acc);
    out[i] = acc;
  }
}

void AttentionHeadImpl(const float* q, const KvView& kv, size_t kv_head, size_t len,
                       float scale, float* scores, float* out) {
  const size_t hd = kv.head_dim, stride = kv.num_kv_heads * hd, off = kv_head * hd;
  if (kv.dtype == DType::kF16) {
    AttentionHeadT(q, static_cast<const hwy::float16_t*>(kv.k) + off,
                   static_cast<const hwy::float16_t*>(kv.v) + off, stride, hd, len, scale,
                   scores, out);
  } else {
    AttentionHeadT(q, static_cast<const float*>(kv.k) + off,
                   static_cast<const float*>(kv.v) + off, stride, hd, len, scale, scores, out);
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace pocket::kernels::cpu
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace pocket::kernels::cpu {

HWY_EXPORT(RmsNormImpl);
HWY_EXPORT(RopeHeadImpl);
HWY_EXPORT(SoftmaxImpl);
HWY_EXPORT(ArgMaxImpl);
HWY_EXPORT(ScaledExpImpl);
HWY_EXPORT(SwiGLUImpl);
HWY_EXPORT(AddImpl);
HWY_EXPORT(AttentionHeadImpl);

void RmsNorm(const float* x, const float* weight, float eps, size_t n, float* out) {
  HWY_DYNAMIC_DISPATCH(RmsNormImpl)(x, weight, eps, n, out);
}
void RopeHead(float* x, const float* cos, const float* sin, size_t rot_dims, bool neox) {
  HWY_DYNAMIC_DISPATCH(RopeHeadImpl)(x, cos, sin, rot_dims, neox);
}
void Softmax(float* x, size_t n) { HWY_DYNAMIC_DISPATCH(SoftmaxImpl)(x, n); }
size_t ArgMax(const float* x, size_t n) { return HWY_DYNAMIC_DISPATCH(ArgMaxImpl)(x, n); }
void ScaledExp(const float* x, size_t n, float scale, float offset, float* out) {
  HWY_DYNAMIC_DISPATCH(ScaledExpImpl)(x, n, scale, offset, out);
}
void SwiGLU(const float* gate, const float* up, size_t n, float* out) {
  HWY_DYNAMIC_DISPATCH(SwiGLUImpl)(gate, up, n, out);
}
void Add(const float* a, const float* b, size_t n, float* out) {
  HWY_DYNAMIC_DISPATCH(AddImpl)(a, b, n, out);
}
void AttentionHead(const float* q, const KvView& kv, size_t kv_head, size_t len, float scale,
                   float* scores, float* out) {
  HWY_DYNAMIC_DISPATCH(AttentionHeadImpl)(q, kv, kv_head, len, scale, scores, out);
}

}  // namespace pocket::kernels::cpu
#endif  // HWY_ONCE
