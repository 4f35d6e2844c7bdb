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
