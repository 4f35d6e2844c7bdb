// Random weight blocks for the types Pocket reads but does not quantize (files in them come
// from llama-quantize): random code bytes with sane f16 scales, for kernel tests and benches.
// Who calls: kernels_test.cc, backend_test.cc, kernels_bench.cc. Thread safety: pure.
#pragma once

#include <cstddef>
#include <cstdint>

#include "tensor/dtype.h"

namespace pocket::kernels {

// Fills `blocks` blocks of `dtype` at dst with random bytes from `seed`, then overwrites
// the scale fields with finite f16 values of a weight-like size (d of magnitude 0.004 to
// 0.02 with a random sign; Q4_1/Q5_1's d positive and m in [-0.15, 0.15], as a fit of
// N(0, 0.05) weights gives). Returns false, writing nothing, for a dtype it does not
// know (those have tensor::QuantizeRow). Handles Q4_1, Q5_0, Q5_1, IQ4_NL here, Q2_K, Q3_K,
// Q5_K, IQ4_XS through kquant_testutil.h and the IQ1/IQ2/IQ3 types through iq_testutil.h.
bool FillRandomBlocks(tensor::DType dtype, void* dst, size_t blocks, uint32_t seed);

}  // namespace pocket::kernels
