// Test helper for the kernels' tests: random weights of the types Pocket has no quantizer
// for (Q2_K, Q3_K, Q5_K, IQ4_XS: llama-quantize makes those files). Thread safety: pure.
#pragma once

#include <cstddef>
#include <cstdint>
#include <random>

#include "tensor/dtype.h"

namespace pocket::kernels::testing {

// True for the dtypes RandomBlocks fills (no tensor::QuantizeRow for them).
bool NeedsRandomBlocks(tensor::DType dtype);

// Fills `blocks` blocks of `dtype` at `dst` with random bytes, then sets every f16 scale
// field (d, dmin) to a finite value of magnitude in [1e-4, 1e-3] with a random sign, so
// the weights are finite and of a sane size. REQUIRES: NeedsRandomBlocks(dtype).
void RandomBlocks(tensor::DType dtype, std::mt19937& rng, uint8_t* dst, size_t blocks);

}  // namespace pocket::kernels::testing
