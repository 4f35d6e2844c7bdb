// Conversions between float32 and the 16-bit float formats stored in GGUF files.
// F16 is IEEE binary16; BF16 is the top half of a float32. Both conversions to 16 bits
// round to nearest, ties to even, bit for bit like ggml (GGML_FP32_TO_FP16 on F16C
// hardware / _cvtss_sh, and ggml_compute_fp32_to_bf16). Callers: quant.cc, the kernels'
// scalar references, the converter and the writer. Thread safety: pure functions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "tensor/dtype.h"

namespace pocket::tensor {

// Exact (every binary16 value is a float32). NaN stays NaN (made quiet), sign and payload kept.
float F16ToF32(f16_t h);
// Round to nearest even; overflow gives ±inf; NaN gives a quiet NaN (sign and top payload
// bits kept, quiet bit set), as the x86 F16C instruction does.
f16_t F32ToF16(float f);

// Exact.
inline float BF16ToF32(bf16_t h) {
  const uint32_t bits = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &bits, sizeof(f));
  return f;
}
// Round to nearest even (subnormals kept, not flushed); NaN: top half with the quiet bit
// forced, as ggml_compute_fp32_to_bf16 does.
inline bf16_t F32ToBF16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof(u));
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<bf16_t>((u >> 16) | 64u);
  return static_cast<bf16_t>((u + (0x7fffu + ((u >> 16) & 1u))) >> 16);
}

// Array forms. REQUIRES: dst has room for n elements.
void F16ToF32Row(const f16_t* src, float* dst, size_t n);
void F32ToF16Row(const float* src, f16_t* dst, size_t n);
void BF16ToF32Row(const bf16_t* src, float* dst, size_t n);
void F32ToBF16Row(const float* src, bf16_t* dst, size_t n);

}  // namespace pocket::tensor
