// The reference MatMul path of the CPU backend, for weight types without an integer
// kernel (the IQ1/IQ2/IQ3 lattice types): each weight row is dequantized to f32 once per
// call and dotted with every token's f32 activation (activation kind 0) with Highway
// vectors. Called from the MatMulRows dispatch in matmul.cc; bodies per Highway target in
// matmul_dequant.cc.
// Thread safety: reentrant (each thread dequantizes into its own thread-local buffer).
#pragma once

#include <cstddef>

#include "kernels/cpu/cpu.h"
#include "tensor/tensor.h"

namespace pocket::kernels::cpu {

// Whether MatMulRowsDequant handles weights of `dtype`.
bool IsDequantMatMulType(tensor::DType dtype);

// tensor::DequantizeRow for an IsDequantMatMulType dtype with Highway vectors on the
// dispatched target: the same bits. n elements, REQUIRES: n % 256 == 0.
void DequantizeRowIq(tensor::DType dtype, const void* src, float* dst, size_t n);

// MatMulRows (cpu.h) for a weight of an IsDequantMatMulType dtype and act.kind == 0:
// y[t * rows + r] for rows [r0, r1) and every token. Per (row, token) the result is
// DequantizeRowIq(w row) . x[t] summed in a fixed order that depends only on cols and the
// target, so it is batch invariant and independent of the row split.
void MatMulRowsDequant(const tensor::TensorView& w, const Activations& act, size_t r0, size_t r1,
                       float* y);

}  // namespace pocket::kernels::cpu
