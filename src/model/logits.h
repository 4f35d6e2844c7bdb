// Host-side operations on a row of logits, for the samplers above the model (runtime's
// Sampler): the layers above model reach the kernels only through model's API
// (ARCHITECTURE.md), so these forward to the CPU kernels of kernels/kernels.h with the same
// contracts and the same bits. Thread safety: pure functions.
#pragma once

#include <cstddef>

namespace pocket::model {

// Index of the largest element of x[0..n), the lowest index among equal ones. NaN entries
// are skipped; 0 when every entry is NaN. REQUIRES: n > 0.
size_t ArgMax(const float* x, size_t n);

// Smallest and largest arguments ScaledExp takes to exp (kernels::kScaledExpMin/Max).
inline constexpr float kScaledExpMin = -87.0f, kScaledExpMax = 88.0f;
// out[i] = exp(x[i] * scale - offset), as kernels::ScaledExp: 0 where x[i] is NaN or the
// argument is below kScaledExpMin, exp(kScaledExpMax) where it is above. In place allowed.
void ScaledExp(const float* x, size_t n, float scale, float offset, float* out);

}  // namespace pocket::model
