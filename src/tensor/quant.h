// Reference (scalar, plain-loop) quantization and dequantization of ggml's block formats:
// Q8_0, Q4_0, Q4_K, Q6_K for weights and Q8_K for activations. Each function gives the
// same bits as ggml-quants.c (quantize_row_*_ref / dequantize_row_*): same arithmetic in
// the same order, fp16 rounding to nearest even, no FMA contraction (this file is built
// with -ffp-contract=off). What `llama-quantize --pure` writes for an F32 input without
// an importance matrix is exactly QuantizeRow() of each row (tested against fixtures made
// by llama.cpp in testdata/formats/).
// These are the specification the SIMD kernels are tested against, and what the writer,
// converter and make-model use to produce quantized files. Not fast.
// Thread safety: pure functions over caller-owned buffers.
#pragma once

#include <cstddef>
#include <cstdint>

#include "tensor/dtype.h"

namespace pocket::tensor {

// n = number of floats; REQUIRES for all below: n % block elements == 0, `y` has
// n / block elements blocks, `x` has n floats. Inputs are expected to be finite.
void QuantizeRowQ8_0(const float* x, BlockQ8_0* y, size_t n);
void QuantizeRowQ4_0(const float* x, BlockQ4_0* y, size_t n);
void QuantizeRowQ4_K(const float* x, BlockQ4_K* y, size_t n);
void QuantizeRowQ6_K(const float* x, BlockQ6_K* y, size_t n);
// Activation quantization for K-quant dot products: d = max/-127 style scale (float),
// qs in [-128, 127], bsums[j] = sum of qs[16j .. 16j+15]. An all-zero block gives d = 0,
// qs = 0, bsums = 0.
void QuantizeRowQ8_K(const float* x, BlockQ8_K* y, size_t n);

void DequantizeRowQ8_0(const BlockQ8_0* x, float* y, size_t n);
void DequantizeRowQ4_0(const BlockQ4_0* x, float* y, size_t n);
void DequantizeRowQ4_K(const BlockQ4_K* x, float* y, size_t n);
void DequantizeRowQ6_K(const BlockQ6_K* x, float* y, size_t n);
void DequantizeRowQ8_K(const BlockQ8_K* x, float* y, size_t n);

// Q4_K's 6-bit scale and min of sub-block j (0..7) from the 12 packed bytes.
void GetScaleMinK4(int j, const uint8_t* scales, uint8_t* scale, uint8_t* min);

// ---- 32-element fallback types (tensor/quant_legacy.cc) ----
// llama-quantize writes these where a row is not a multiple of 256 (Q4_K -> Q5_0,
// Q5_K -> Q5_1, Q2_K/Q3_K/IQ4_XS -> IQ4_NL). Dequantization only, bit-identical to ggml:
//   Q4_1: x = d * q + m        (q: 4 bits, layout as Q4_0)
//   Q5_0: x = d * (q - 16)     (q: nibble | bit j of qh << 4)
//   Q5_1: x = d * q + m        (q as Q5_0)
//   IQ4_NL: x = d * kIQ4NLValues[nibble]
void DequantizeRowQ4_1(const BlockQ4_1* x, float* y, size_t n);
void DequantizeRowQ5_0(const BlockQ5_0* x, float* y, size_t n);
void DequantizeRowQ5_1(const BlockQ5_1* x, float* y, size_t n);
void DequantizeRowIQ4_NL(const BlockIQ4_NL* x, float* y, size_t n);

// IQ1/IQ2/IQ3 lattice types (quant_iq.cc): reference decoders, bit-identical to ggml's
// dequantize_row_iq*. No quantizers (llama-quantize makes these files). n as above.
void DequantizeRowIQ2_XXS(const BlockIQ2_XXS* x, float* y, size_t n);
void DequantizeRowIQ2_XS(const BlockIQ2_XS* x, float* y, size_t n);
void DequantizeRowIQ2_S(const BlockIQ2_S* x, float* y, size_t n);
void DequantizeRowIQ3_XXS(const BlockIQ3_XXS* x, float* y, size_t n);
void DequantizeRowIQ3_S(const BlockIQ3_S* x, float* y, size_t n);
void DequantizeRowIQ1_S(const BlockIQ1_S* x, float* y, size_t n);
void DequantizeRowIQ1_M(const BlockIQ1_M* x, float* y, size_t n);

// Any DType (F32, F16, BF16 are plain conversions; F32 is a copy). `n` elements;
// REQUIRES: n % BlockElements(dtype) == 0; dst has RowBytes(dtype, n) bytes (quantize)
// or n floats (dequantize). Aborts (PK_CHECK) on a violated precondition.
void QuantizeRow(DType dtype, const float* src, void* dst, size_t n);
void DequantizeRow(DType dtype, const void* src, float* dst, size_t n);

// ---- K-quants Q2_K, Q3_K, Q5_K and IQ4_XS (quant_k.cc): dequantization only; files in
// these types come from llama-quantize. Same bits as ggml's dequantize_row_*. n as above.
void DequantizeRowQ2_K(const BlockQ2_K* x, float* y, size_t n);
void DequantizeRowQ3_K(const BlockQ3_K* x, float* y, size_t n);
void DequantizeRowQ5_K(const BlockQ5_K* x, float* y, size_t n);
void DequantizeRowIQ4_XS(const BlockIQ4_XS* x, float* y, size_t n);
// Q3_K's 16 sub-block scales from its 12 packed bytes, minus 32 (range -32..31).
void Q3KScales(const uint8_t* packed, int8_t* scales);
// IQ4_XS's scale of sub-block ib (0..7), minus 32 (range -32..31).
int IQ4XSScale(const BlockIQ4_XS& b, int ib);

}  // namespace pocket::tensor
