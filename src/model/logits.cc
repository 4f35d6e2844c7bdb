// The logit-row operations of logits.h, forwarded to the CPU kernels (one call per sampled
// token, next to a vocab-sized SIMD pass: the extra call costs nothing measurable).
#include "model/logits.h"

#include "kernels/kernels.h"

namespace pocket::model {

static_assert(kScaledExpMin == kernels::kScaledExpMin && kScaledExpMax == kernels::kScaledExpMax);

size_t ArgMax(const float* x, size_t n) { return kernels::ArgMax(x, n); }

void ScaledExp(const float* x, size_t n, float scale, float offset, float* out) {
  kernels::ScaledExp(x, n, scale, offset, out);
}

}  // namespace pocket::model
