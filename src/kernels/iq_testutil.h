// Test and bench helper: weight matrices of the IQ1/IQ2/IQ3 lattice types made of random
// block bytes with sane f16 scales (Pocket has no quantizer for these types; llama-quantize
// makes them). Every byte pattern is a valid block, so random bytes reach every code path.
// Thread safety: pure function.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "tensor/dtype.h"

namespace pocket::kernels {

// The IQ1/IQ2/IQ3 types, the weights of the reference MatMul path (matmul_dequant.h).
inline constexpr tensor::DType kIqDTypes[] = {
    tensor::DType::kIQ2_XXS, tensor::DType::kIQ2_XS, tensor::DType::kIQ2_S,
    tensor::DType::kIQ3_XXS, tensor::DType::kIQ3_S,  tensor::DType::kIQ1_S,
    tensor::DType::kIQ1_M};

bool IsIqDType(tensor::DType dtype);

// rows * RowBytes(dtype, cols) bytes of random blocks whose super-block scale is a random
// f16 of magnitude in [1e-3, 1e-2] with a random sign. REQUIRES: IsIqDType(dtype),
// cols % 256 == 0.
std::vector<uint8_t> RandomIqRows(tensor::DType dtype, size_t rows, size_t cols, uint32_t seed);

}  // namespace pocket::kernels
