// Reference dequantization of the 32-element block types llama.cpp's quantizer uses as
// fallbacks when a row is not a multiple of 256 (Q4_1, Q5_0, Q5_1, IQ4_NL). Each function
// gives the same bits as ggml-quants.c's dequantize_row_* (same float operations in the
// same order; built with -ffp-contract=off so `q * d + m` is never fused), which the
// goldens made by gguf-py check (tensor/quant_legacy_test.cc). No quantizers: files in
// these types come from llama-quantize.
#include <cstdint>

#include "base/check.h"
#include "tensor/fp16.h"
#include "tensor/quant.h"

namespace pocket::tensor {

void DequantizeRowQ4_1(const BlockQ4_1* x, float* y, size_t n) {
  PK_CHECK(n % kQK == 0);
  for (size_t i = 0; i < n / kQK; ++i) {
    const float d = F16ToF32(x[i].d);
    const float m = F16ToF32(x[i].m);
    for (size_t j = 0; j < kQK / 2; ++j) {
      const int x0 = x[i].qs[j] & 0x0F;
      const int x1 = x[i].qs[j] >> 4;
      y[i * kQK + j] = x0 * d + m;
      y[i * kQK + j + kQK / 2] = x1 * d + m;
    }
  }
}

namespace {
// Bit j of the result is the fifth bit of element j (ggml reads qh with memcpy into a
// uint32_t on a little-endian machine).
uint32_t Q5HighBits(const uint8_t qh[4]) {
  return uint32_t{qh[0]} | uint32_t{qh[1]} << 8 | uint32_t{qh[2]} << 16 | uint32_t{qh[3]} << 24;
}
}  // namespace

void DequantizeRowQ5_0(const BlockQ5_0* x, float* y, size_t n) {
  PK_CHECK(n % kQK == 0);
  for (size_t i = 0; i < n / kQK; ++i) {
    const float d = F16ToF32(x[i].d);
    const uint32_t qh = Q5HighBits(x[i].qh);
    for (size_t j = 0; j < kQK / 2; ++j) {
      const int h0 = static_cast<int>((qh >> j) << 4 & 0x10);
      const int h1 = static_cast<int>((qh >> (j + 12)) & 0x10);
      const int x0 = ((x[i].qs[j] & 0x0F) | h0) - 16;
      const int x1 = ((x[i].qs[j] >> 4) | h1) - 16;
      y[i * kQK + j] = x0 * d;
      y[i * kQK + j + kQK / 2] = x1 * d;
    }
  }
}

void DequantizeRowQ5_1(const BlockQ5_1* x, float* y, size_t n) {
  PK_CHECK(n % kQK == 0);
  for (size_t i = 0; i < n / kQK; ++i) {
    const float d = F16ToF32(x[i].d);
    const float m = F16ToF32(x[i].m);
    const uint32_t qh = Q5HighBits(x[i].qh);
    for (size_t j = 0; j < kQK / 2; ++j) {
      const int h0 = static_cast<int>((qh >> j) << 4 & 0x10);
      const int h1 = static_cast<int>((qh >> (j + 12)) & 0x10);
      const int x0 = (x[i].qs[j] & 0x0F) | h0;
      const int x1 = (x[i].qs[j] >> 4) | h1;
      y[i * kQK + j] = x0 * d + m;
      y[i * kQK + j + kQK / 2] = x1 * d + m;
    }
  }
}

void DequantizeRowIQ4_NL(const BlockIQ4_NL* x, float* y, size_t n) {
  PK_CHECK(n % kQK == 0);
  for (size_t i = 0; i < n / kQK; ++i) {
    const float d = F16ToF32(x[i].d);
    for (size_t j = 0; j < kQK / 2; ++j) {
      y[i * kQK + j] = d * kIQ4NLValues[x[i].qs[j] & 0x0F];
      y[i * kQK + j + kQK / 2] = d * kIQ4NLValues[x[i].qs[j] >> 4];
    }
  }
}

}  // namespace pocket::tensor
