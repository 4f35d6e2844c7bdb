// Plain-loop scalar references for every kernel in kernels/kernels.h: the specification
// the SIMD kernels (kernels/cpu/) are tested against. Same shapes and contracts as the
// public functions, minus the thread pool and workspace. Slow on purpose: double
// accumulation where it makes the spec exact, no SIMD, no threads.
// Who calls: the reference backend (ref/ref_backend.cc), kernels tests and benches, model's
// reference forward pass.
// Thread safety: pure functions over caller-owned buffers.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/kernels.h"
#include "tensor/tensor.h"

namespace pocket::kernels::ref {

// Activation quantization used with Q8_0 / Q4_0 weights, per block of 32 floats:
//   amax = max |x|, d = amax / 127 (float, kept as float), id = d != 0 ? 1 / d : 0,
//   q[i] = round-half-away-from-zero(x[i] * id)  (== roundf; |q| <= 127).
// x: [n] floats; q: [n] int8; d: [n / 32] floats. REQUIRES: n % 32 == 0.
void QuantizeActQ8(const float* x, size_t n, int8_t* q, float* d);

// The dequantized activation MatMul multiplies by for a weight of `dtype`: x itself for
// F32/F16/BF16 and the IQ1/IQ2/IQ3 types, d * q of QuantizeActQ8 for the 32-element types
// (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, IQ4_NL), DequantizeRowQ8_K(QuantizeRowQ8_K(x)) for Q4_K/Q6_K.
// x, out: [n].
void EffectiveActivation(tensor::DType dtype, const float* x, size_t n, float* out);

// y[t][r] = sum_c deq(W)[r][c] * EffectiveActivation(x[t])[c], summed in double and
// rounded once to float: the exact answer the fast kernels approximate up to float
// rounding of their per-block scales and partial sums.
void MatMul(const tensor::TensorView& w, const float* x, size_t num_tokens, float* y);
// sum_c |deq(W)[r][c] * EffectiveActivation(x[t])[c]| (same shape as y): the scale of the
// rounding error tests allow.
void MatMulAbs(const tensor::TensorView& w, const float* x, size_t num_tokens, float* y);

void RmsNorm(const float* x, const float* weight, float eps, size_t n, size_t num_rows,
             float* out);
void Rope(float* x, size_t num_tokens, size_t num_heads, const int32_t* positions,
          const RopeTable& table);
void Softmax(float* x, size_t n);
size_t ArgMax(const float* x, size_t n);
void ScaledExp(const float* x, size_t n, float scale, float offset, float* out);
void SwiGLU(const float* gate, const float* up, size_t n, float* out);
void Add(const float* a, const float* b, size_t n, float* out);
void GetRows(const tensor::TensorView& table, const int32_t* ids, size_t num_ids, float* out);
void Attention(const float* q, size_t num_tokens, size_t num_heads, size_t first_position,
               const KvView& kv, float scale, float* out);

// --- Training (kernels/ref/ref_train.cc): the backward ops and optimizer of
// kernels::Backend on host pointers, same shapes, accumulate/write rules and names. Sums
// are in double and rounded once to float where that makes the spec exact; where the spec
// fixes a float order (GetRowsBackward) it is followed literally.

// dx[t][c] += sum_r dy[t][r] * deq(W)[r][c] (rounded once per element).
void MatMulBackwardInput(const tensor::TensorView& w, const float* dy, size_t num_tokens,
                         float* dx);
// dw[r][c] += sum_t dy[t][r] * x[t][c] (rounded once per element).
void MatMulBackwardWeight(const float* x, const float* dy, size_t num_tokens, size_t rows,
                          size_t cols, float* dw);
// dbias[c] += sum_r dy[r][c] (rounded once per element).
void SumRows(const float* dy, size_t n, size_t num_rows, float* dbias);
// dtable[ids[i]][:] += dout[i][:] as float adds, i in order.
void GetRowsBackward(const int32_t* ids, size_t num_ids, const float* dout, size_t n,
                     float* dtable);
void RmsNormBackward(const float* x, const float* weight, float eps, size_t n, size_t num_rows,
                     const float* dy, float* dx, float* dweight);
// The inverse rotation of Rope, angles computed as ref::Rope computes them.
void RopeBackward(float* dx, size_t num_tokens, size_t num_heads, const int32_t* positions,
                  const RopeTable& table);
// ref::Attention over each sequence with an F32 cache view of its k, v.
void AttentionTrain(const float* q, const float* k, const float* v, size_t num_seqs,
                    size_t seq_len, size_t num_heads, size_t num_kv_heads, size_t head_dim,
                    float scale, float* out);
void AttentionBackward(const float* q, const float* k, const float* v, const float* dout,
                       size_t num_seqs, size_t seq_len, size_t num_heads, size_t num_kv_heads,
                       size_t head_dim, float scale, float* dq, float* dk, float* dv);
void SwiGLUBackward(const float* gate, const float* up, const float* dout, size_t n,
                    float* dgate, float* dup);
void CrossEntropy(const float* logits, const int32_t* targets, size_t num_rows, size_t vocab,
                  float grad_scale, float* losses, float* dlogits);
// Sum in double, in index order.
double SumSquares(const float* x, size_t n);
void Fill(float* x, size_t n, float value);
// The update computed in double, each of param, m, v rounded once to float.
void AdamW(float* param, const float* grad, float* m, float* v, size_t n,
           const AdamWParams& p);

}  // namespace pocket::kernels::ref
