// The CPU backend's training ops (kernels::Backend's backward ops and optimizer, backend.h):
// Highway bodies per target in kernels/cpu/train.cc, split over the thread pool.
//
// Determinism: every output element is computed by one sequence of float operations that
// depends only on the shapes and the SIMD target — never on the thread count or on how
// the work is split (work is cut into tasks of a fixed size; each task owns its outputs
// and reduces them in a fixed order). So each result is bit-identical for any number of
// threads and across runs (train_ops_test.cc checks 1 against 2 threads).
//
// Who calls: kernels/cpu/cpu_backend.cc. Thread safety: reentrant; one pool and workspace
// per caller at a time.
#pragma once

#include <cstddef>
#include <cstdint>

#include "base/thread_pool.h"
#include "kernels/kernels.h"
#include "tensor/tensor.h"

namespace pocket::kernels::cpu {

// dx[t][c] += sum_r dy[t][r] * deq(W)[r][c], chained onto dx with one FMA per r in order
// 0..rows-1. Quantized and half-precision weights are dequantized (tensor::DequantizeRow's
// bits) a block of rows and columns at a time into a thread-local F32 tile.
// REQUIRES: MatMulSupports(w.dtype).
void MatMulBackwardInput(const tensor::TensorView& w, const float* dy, size_t num_tokens, float* dx,
                         ThreadPool& pool);
// y[t][r] = sum_c x[t][c] * w[r][c] for a trainable F32 matrix (rows x cols): the training
// forward's MatMul, as one GEMM (W transposed into a thread-local copy, then
// MatMulBackwardInput's kernel onto zeros) instead of the inference kernel's dot per
// (row, token), ~3x faster at training's batch sizes. Each y is one FMA chain over c in
// order, so the result does not depend on num_tokens (batch invariance), the thread count
// or the vector width.
void MatMulTrainable(const float* w, size_t rows, size_t cols, const float* x, size_t num_tokens,
                     float* y, ThreadPool& pool);
// dw[r][c] += sum_t dy[t][r] * x[t][c], chained onto dw with one FMA per t in order.
void MatMulBackwardWeight(const float* x, const float* dy, size_t num_tokens, size_t rows,
                          size_t cols, float* dw, ThreadPool& pool);
// dbias[c] += dy[r][c] as a chain of float adds onto dbias, r in order.
void SumRows(const float* dy, size_t n, size_t num_rows, float* dbias, ThreadPool& pool);
// dtable[ids[i]] += dout[i] as float adds, i in order: bit-identical to ref.
void GetRowsBackward(const int32_t* ids, size_t num_ids, const float* dout, size_t n, float* dtable,
                     ThreadPool& pool);
void RmsNormBackward(const float* x, const float* weight, float eps, size_t n, size_t num_rows,
                     const float* dy, float* dx, float* dweight, ThreadPool& pool, Workspace& ws);
// Rope's RopeHead with the sine negated (the transpose of each rotation).
void RopeBackward(float* dx, size_t num_tokens, size_t num_heads, const int32_t* positions,
                  const RopeTable& table, Workspace& ws);
void AttentionBackward(const float* q, const float* k, const float* v, const float* dout,
                       size_t num_seqs, size_t seq_len, size_t num_heads, size_t num_kv_heads,
                       size_t head_dim, float scale, float* dq, float* dk, float* dv,
                       ThreadPool& pool);
void SwiGLUBackward(const float* gate, const float* up, const float* dout, size_t n, float* dgate,
                    float* dup, ThreadPool& pool);
void CrossEntropy(const float* logits, const int32_t* targets, size_t num_rows, size_t vocab,
                  float grad_scale, float* losses, float* dlogits, ThreadPool& pool);
// Squares summed in float over fixed blocks of kSumSquaresBlock elements, the block sums
// added in double in block order.
inline constexpr size_t kSumSquaresBlock = 256;
double SumSquares(const float* x, size_t n, ThreadPool& pool, Workspace& ws);
void Fill(float* x, size_t n, float value, ThreadPool& pool);
// In float, with 1 / (1 - beta^step) computed in double and rounded once.
void AdamW(float* param, const float* grad, float* m, float* v, size_t n, const AdamWParams& p,
           ThreadPool& pool);

}  // namespace pocket::kernels::cpu
