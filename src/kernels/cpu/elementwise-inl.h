// Elementwise: one vector body over n floats, full vectors first, then the last n % Lanes
// elements through the same body on a zero-padded copy. An element's result is therefore
// the same whatever n is and wherever a thread's chunk starts (no scalar tail with another
// formula), which the training checkpoints' byte-identity relies on (fixed_sum-inl.h keeps
// the reductions in one order; this keeps the elementwise ops in one formula).
// Used by ops.cc (softmax's exponent, ScaledExp, SwiGLU) and train.cc (the backward ops).
//
// Included by foreach_target files inside HWY_NAMESPACE (after hwy/highway.h), like
// Highway's own -inl headers; the guard toggles once per target.
#if defined(POCKET_KERNELS_CPU_ELEMENTWISE_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef POCKET_KERNELS_CPU_ELEMENTWISE_INL_H_
#undef POCKET_KERNELS_CPU_ELEMENTWISE_INL_H_
#else
#define POCKET_KERNELS_CPU_ELEMENTWISE_INL_H_
#endif

#include <cstring>

#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace pocket::kernels::cpu {
namespace HWY_NAMESPACE {

// f(x, y) reads kIn vectors x[j] (elements of in[j]) and writes kOut vectors y[j] (stored
// to out[j]). An output may alias an input (each vector is loaded before it is stored).
template <size_t kIn, size_t kOut, typename F>
HWY_INLINE void Elementwise(const float* const (&in)[kIn], float* const (&out)[kOut], size_t n,
                            const F& f) {
  namespace hn = hwy::HWY_NAMESPACE;
  const hn::ScalableTag<float> d;
  using V = hn::Vec<decltype(d)>;
  const size_t N = hn::Lanes(d);
  size_t i = 0;
  V x[kIn], y[kOut];
  for (; i + N <= n; i += N) {
    for (size_t j = 0; j < kIn; ++j) x[j] = hn::LoadU(d, in[j] + i);
    f(x, y);
    for (size_t j = 0; j < kOut; ++j) hn::StoreU(y[j], d, out[j] + i);
  }
  if (i < n) {
    HWY_ALIGN float buf[kIn > kOut ? kIn : kOut][hn::MaxLanes(d)] = {};
    for (size_t j = 0; j < kIn; ++j) {
      std::memcpy(buf[j], in[j] + i, (n - i) * sizeof(float));
      x[j] = hn::Load(d, buf[j]);
    }
    f(x, y);
    for (size_t j = 0; j < kOut; ++j) {
      hn::Store(y[j], d, buf[j]);
      std::memcpy(out[j] + i, buf[j], (n - i) * sizeof(float));
    }
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace pocket::kernels::cpu
HWY_AFTER_NAMESPACE();

#endif  // POCKET_KERNELS_CPU_ELEMENTWISE_INL_H_
