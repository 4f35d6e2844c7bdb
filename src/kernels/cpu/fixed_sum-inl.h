// Sums whose rounding does not depend on the vector width: the per-target helpers the CPU
// kernels use for every float reduction that feeds a training checkpoint (dot products,
// sums of squares, softmax denominators, the F32 matmul), so a recipe gives the same bytes
// on an AVX2 machine as on an AVX-512 one.
//
// The rule: element i of a sum goes to running sum i % 16 (16 "virtual lanes", held in
// 16 / Lanes vectors: one on AVX-512, two on AVX2, four on SSE4/NEON), each running sum
// is one chain of the same vector operation in index order, and the 16 are added in one
// fixed tree ((s0 + s8) + (s4 + s12)) + ... at the end. The elements past the last full
// 16 go to their lanes the same way on every target. On every target whose MulAdd is a
// fused multiply-add (AVX2, AVX-512, NEON) the result is the same bits; SSE4 and the
// scalar fallback multiply and add separately and may differ in the last bits.
//
// Included by foreach_target files inside HWY_NAMESPACE (after hwy/highway.h), like
// Highway's own -inl headers; the guard toggles once per target.
#if defined(POCKET_KERNELS_CPU_FIXED_SUM_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef POCKET_KERNELS_CPU_FIXED_SUM_INL_H_
#undef POCKET_KERNELS_CPU_FIXED_SUM_INL_H_
#else
#define POCKET_KERNELS_CPU_FIXED_SUM_INL_H_
#endif

#include <cstring>

#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace pocket::kernels::cpu {
namespace HWY_NAMESPACE {
namespace fixed_sum {

namespace hn = hwy::HWY_NAMESPACE;

constexpr size_t kLanes = 16;
// The tag of the vectors a fixed sum runs on: at most 16 floats.
using D16 = hn::CappedTag<float, kLanes>;
using V16 = hn::Vec<D16>;
constexpr size_t kN = hn::MaxLanes(D16());
constexpr size_t kVecs = kLanes / kN;
static_assert(kLanes % kN == 0, "vector lanes must divide 16");

// The 16 running sums, lane i of vector v holding virtual lane v * kN + i, added in the
// fixed tree.
HWY_INLINE float Reduce(const V16 (&acc)[kVecs]) {
  const D16 d;
  HWY_ALIGN float s[kLanes];
  for (size_t v = 0; v < kVecs; ++v) hn::Store(acc[v], d, s + v * kN);
  for (size_t w = kLanes / 2; w >= 1; w /= 2) {
    for (size_t j = 0; j < w; ++j) s[j] += s[j + w];
  }
  return s[0];
}

// Sum over i < n of the terms step makes: step(x, acc) returns acc plus the terms of the
// lanes' elements, x[j] holding input j's elements (for a dot product, MulAdd(x[0], x[1],
// acc)). The last n % 16 elements go through step(x, 0) on a zero-padded copy, masked to
// the real elements, then added: the same operations on every target.
template <size_t kIn, class Step>
HWY_INLINE float Sum(const float* const (&in)[kIn], size_t n, const Step& step) {
  const D16 d;
  V16 acc[kVecs];
  for (auto& a : acc) a = hn::Zero(d);
  V16 x[kIn];
  size_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (size_t v = 0; v < kVecs; ++v) {
      for (size_t j = 0; j < kIn; ++j) x[j] = hn::LoadU(d, in[j] + i + v * kN);
      acc[v] = step(x, acc[v]);
    }
  }
  if (i < n) {
    const size_t rest = n - i;
    HWY_ALIGN float buf[kIn][kLanes] = {};
    for (size_t j = 0; j < kIn; ++j) std::memcpy(buf[j], in[j] + i, rest * sizeof(float));
    for (size_t v = 0; v * kN < rest; ++v) {
      for (size_t j = 0; j < kIn; ++j) x[j] = hn::Load(d, buf[j] + v * kN);
      const V16 terms = step(x, hn::Zero(d));
      acc[v] = hn::Add(acc[v], hn::IfThenElseZero(hn::FirstN(d, rest - v * kN), terms));
    }
  }
  return Reduce(acc);
}

// sum a[i] * b[i], one fused multiply-add per element.
HWY_INLINE float Dot(const float* a, const float* b, size_t n) {
  const float* const in[2] = {a, b};
  return Sum(in, n, [](const V16* x, V16 acc) { return hn::MulAdd(x[0], x[1], acc); });
}

// sum x[i]^2.
HWY_INLINE float SumSquares(const float* x, size_t n) { return Dot(x, x, n); }

}  // namespace fixed_sum
}  // namespace HWY_NAMESPACE
}  // namespace pocket::kernels::cpu
HWY_AFTER_NAMESPACE();

#endif  // POCKET_KERNELS_CPU_FIXED_SUM_INL_H_
