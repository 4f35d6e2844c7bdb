// kernels::Backend: the seam between the model and the machine that runs it. A backend owns
// its memory (buffers are handles, not host pointers), lays weights out its own way, and
// implements every op the Llama-family forward pass needs. The model (model/llama.cc and
// its blocks) calls only this interface, so which backend runs a model is chosen once, at
// load (MakeBackend), and no op in the forward pass knows which one it is.
//
// Implementations: kernels/cpu/cpu_backend.cc (the Highway kernels of kernels.h, a thread
// pool and a Workspace: the fast path), kernels/ref/ref_backend.cc (the plain loops of
// kernels/ref: slow, the oracle every other backend is tested against,
// kernels/backend_test.cc); room for CUDA and WebGPU.
//
// Conventions (all ops):
//  - Activations are F32, row-major, contiguous, in backend buffers: "[num_tokens][n]"
//    means row t starts at byte offset t * n * 4 of the BufferRef. The step's token ids
//    and positions are int32 arrays in backend buffers too (the model uploads them once
//    per step), so no op reads host memory. Shapes, aliasing rules
//    and numerics of each op are those of the kernels.h function of the same name; the
//    reference backend computes kernels/ref's answer for it.
//  - Ops may run asynchronously, in the order they were issued: what they write is visible
//    to the host only after Download or MatMulToHost (which wait for it) or Synchronize.
//    Host arguments (Upload's `src`, Prepare*'s source bytes) are read before the call
//    returns, so the caller may reuse that memory at once (except where a Weight or
//    PreparedRope says it keeps reading its source). A device error in an op surfaces at the next
//    Synchronize (its Status); Download and MatMulToHost wait but return nothing, so the
//    model ends every step with Synchronize.
//  - A Weight or buffer is used only with the backend that made it.
//  - Batch invariance (the model relies on it: a sequence gives the same bits alone or
//    batched, in prefill or decode): every output element of MatMul, MatMulShared,
//    MatMulToHost and Attention is bit-identical whatever num_tokens, the token's place in
//    the batch and the backend's thread count, and a matrix prepared with repack = true or
//    false gives the same bits. Each output element is reduced in one fixed order.
//    backend_test.cc checks it for every backend.
//
// Who calls: model (forward pass, KV cache, adapters), kernels tests and benches, train.
// Thread safety:
//  - The ops (GetRows ... Axpy, the backward ops and the optimizer), Upload, Download,
//    Copy and Synchronize: one thread at a time (the model serialises its forward passes).
//  - Allocate, Free, PrepareMatrix, PrepareTensor, PrepareRope and CreateTrainable are
//    thread-safe and may run concurrently with the ops and with each other (a KV cache is
//    made or destroyed by a session thread while another thread runs Forward; an adapter
//    is made while the model decodes). Free may be called while ops that use the buffer
//    are still in flight: the backend orders it after every op already issued (the CPU
//    and reference backends run ops synchronously and free at once). A buffer must not be
//    used by ops issued after its Free.
//  - Weights are immutable and shared freely, except a CreateTrainable tensor, whose values
//    change when an op writes its TrainableData (ordered with the other ops); a BufferRef
//    is a plain value.
// The CPU and reference backends meet this with the C allocator (aligned_alloc / free)
// and Prepare* functions that touch no backend state (CPU packing allocates its own copy).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string_view>
#include <utility>

#include "base/status.h"
#include "kernels/kernels.h"
#include "tensor/dtype.h"
#include "tensor/tensor.h"

namespace pocket::kernels {

// Which implementation runs the ops. kCuda and kWebGpu come with their issues.
enum class BackendKind { kCpu, kReference };
// "cpu", "reference".
std::string_view BackendName(BackendKind kind);
// The inverse of BackendName; InvalidArgument naming `name` and the choices otherwise.
Result<BackendKind> ParseBackendKind(std::string_view name);

// A block of backend memory as Allocate returned it. Only the backend that allocated it
// interprets `handle` (a host pointer on the CPU and reference backends).
struct Buffer {
  void* handle = nullptr;
  size_t size_bytes = 0;
};

// An op's operand: a byte offset inside a Buffer. A plain value; owns nothing.
struct BufferRef {
  void* handle = nullptr;
  size_t offset_bytes = 0;

  BufferRef Offset(size_t bytes) const { return {handle, offset_bytes + bytes}; }
  // Element `i` of an F32 array (row r of [..][n] floats is FloatAt(r * n)).
  BufferRef FloatAt(size_t i) const { return Offset(i * sizeof(float)); }
};

class Backend;

// Owns one Buffer and frees it through its backend. The backend must outlive it.
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  DeviceBuffer(Backend* backend, Buffer buffer) : backend_(backend), buffer_(buffer) {}
  ~DeviceBuffer() { Reset(); }
  DeviceBuffer(DeviceBuffer&& o) noexcept
      : backend_(std::exchange(o.backend_, nullptr)), buffer_(std::exchange(o.buffer_, {})) {}
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept;
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  BufferRef ref(size_t offset_bytes = 0) const { return {buffer_.handle, offset_bytes}; }
  size_t size_bytes() const { return buffer_.size_bytes; }
  void Reset();

 private:
  Backend* backend_ = nullptr;
  Buffer buffer_;
};

// A weight tensor in a backend's own layout (PrepareMatrix / PrepareTensor). Immutable;
// share it between threads freely. The source bytes it was made from must outlive it
// (a backend may keep reading them in place: the CPU backend's unpacked matrices and
// embedding table do).
class Weight {
 public:
  virtual ~Weight() = default;
  // Shape and dtype of the source tensor (ggml order: ne[0] = input features).
  const tensor::TensorView& view() const { return view_; }

 protected:
  explicit Weight(const tensor::TensorView& view) : view_(view) {}

 private:
  tensor::TensorView view_;
};

// A RoPE cos/sin table on a backend (PrepareRope), as the Rope op reads it. Immutable.
// The RopeTable it was made from must outlive it (the CPU and reference backends read that
// table in place; a GPU backend copies it to the device).
class PreparedRope {
 public:
  virtual ~PreparedRope() = default;
  // Positions the table covers: Rope requires positions below this.
  size_t max_positions() const { return max_positions_; }

 protected:
  explicit PreparedRope(size_t max_positions) : max_positions_(max_positions) {}

 private:
  size_t max_positions_;
};

struct PrepareOptions {
  // Re-lay the matrix into the backend's fast layout where it has one (the CPU backend:
  // kernels::PackedWeight); false reads it in place. Results are bit-identical either way.
  bool repack = true;
  // Where decode finds the matrix (kernels.h, WeightSource); sets prefetching only.
  WeightSource source = WeightSource::kCache;
  // Called with each stretch of the source's bytes once the backend has its own copy of
  // it (in order, a few MiB at a time), so the caller can release the file pages.
  std::function<void(const void*, size_t)> consumed;
};

// One output of MatMulShared.
struct SharedMatMulJob {
  const Weight* w = nullptr;
  BufferRef y;  // [num_tokens][w rows]
};

// One layer's KV cache for one sequence as Attention reads it: k and v are
// [capacity][num_kv_heads][head_dim] of dtype (F32 or F16), as kernels.h KvView.
struct KvRef {
  tensor::DType dtype = tensor::DType::kF32;
  BufferRef k, v;
  size_t num_kv_heads = 0;
  size_t head_dim = 0;
};

class Backend {
 public:
  virtual ~Backend() = default;

  virtual BackendKind kind() const = 0;
  // Threads the ops use, the caller included (1 for the reference backend).
  virtual int threads() const = 0;

  // --- Memory ---
  // `bytes` of uninitialised memory (host pages become resident only when written).
  // ResourceExhausted when it is not there. Free it with Free (or own it by DeviceBuffer).
  // Thread-safe, also against running ops.
  virtual Result<Buffer> Allocate(size_t bytes) = 0;
  // Thread-safe; takes effect after every op already issued (which may still use it).
  virtual void Free(Buffer buffer) = 0;
  // Host -> backend copy of `bytes`, ordered with the ops; `src` is read before it returns.
  virtual void Upload(BufferRef dst, const void* src, size_t bytes) = 0;
  // Backend -> host copy of `bytes`; waits for the ops issued before it.
  virtual void Download(BufferRef src, void* dst, size_t bytes) = 0;
  // Backend -> backend copy of `bytes`, ordered with the ops; the ranges must not overlap.
  virtual void Copy(BufferRef src, BufferRef dst, size_t bytes) = 0;
  // Waits until every op issued so far has finished; the first device error since the last
  // Synchronize (Internal or ResourceExhausted), Ok otherwise.
  virtual Status Synchronize() = 0;

  // --- Weights ---
  // Matrix dtypes MatMul accepts (kernels::MatMulSupports for CPU and reference).
  virtual bool MatMulSupports(tensor::DType dtype) const = 0;
  // A matrix for MatMul / MatMulShared / MatMulToHost: w is [rows][cols] (ne[0] = cols).
  // REQUIRES: MatMulSupports(w.dtype); cols % BlockElements(w.dtype) == 0.
  // ResourceExhausted when the backend's copy cannot be allocated (nothing consumed then).
  virtual Result<std::unique_ptr<Weight>> PrepareMatrix(const tensor::TensorView& w,
                                                        const PrepareOptions& opts) = 0;
  // Any other tensor, as is: a norm weight or bias (F32 vector) or an embedding table
  // (any dtype tensor::DequantizeRow accepts). ResourceExhausted as PrepareMatrix.
  virtual Result<std::unique_ptr<Weight>> PrepareTensor(const tensor::TensorView& w) = 0;
  // `table` for the Rope op; the model prepares it again whenever it replaces the table
  // (a longer context). ResourceExhausted as PrepareMatrix.
  virtual Result<std::unique_ptr<PreparedRope>> PrepareRope(const RopeTable& table) = 0;

  // --- Ops (shapes and numerics as the kernels.h function of the same name) ---
  // out[i][:] = row ids[i] of the embedding table, dequantized, for i < num_ids; ids is
  // int32 [num_ids] in backend memory. REQUIRES: ids in range.
  virtual void GetRows(const Weight& table, BufferRef ids, size_t num_ids, BufferRef out) = 0;
  // out = x * weight / rms(x) per row of n; in place allowed.
  virtual void RmsNorm(BufferRef x, const Weight& weight, float eps, size_t n, size_t num_rows,
                       BufferRef out) = 0;
  // y[t] = W x[t]: x [num_tokens][cols], y [num_tokens][rows]; activations quantized as
  // kernels::MatMul documents for w's dtype.
  virtual void MatMul(const Weight& w, BufferRef x, size_t num_tokens, BufferRef y) = 0;
  // Several matrices over one input (Q, K, V; gate, up), each job's result bit-identical to
  // MatMul(job.w, x, ...). The backend decides whether they share one activation
  // quantization and dispatch. REQUIRES: all jobs have the same cols.
  virtual void MatMulShared(std::span<const SharedMatMulJob> jobs, BufferRef x,
                            size_t num_tokens) = 0;
  // MatMul into host memory (the final logits): y is [num_tokens][rows] host floats.
  virtual void MatMulToHost(const Weight& w, BufferRef x, size_t num_tokens, float* y) = 0;
  // x[r][:] += bias for every row r of n; bias F32 [n].
  virtual void AddBias(BufferRef x, const Weight& bias, size_t n, size_t num_rows) = 0;
  // In place on x: [num_tokens][num_heads][head_dim]; token t is at positions[t] (int32
  // [num_tokens] in backend memory). REQUIRES: positions < rope.max_positions().
  virtual void Rope(BufferRef x, size_t num_tokens, size_t num_heads, BufferRef positions,
                    const PreparedRope& rope) = 0;
  // dst[i] = src[i] converted to dtype (F32 copy, or F16 round-to-nearest-even) for
  // i < n: writes K/V rows into a cache.
  virtual void StoreRows(BufferRef src, size_t n, tensor::DType dtype, BufferRef dst) = 0;
  // Causal GQA attention of q over kv (kernels.h Attention).
  virtual void Attention(BufferRef q, size_t num_tokens, size_t num_heads, size_t first_position,
                         const KvRef& kv, float scale, BufferRef out) = 0;
  // out = silu(gate) * up over n; in place allowed (out == gate or up).
  virtual void SwiGLU(BufferRef gate, BufferRef up, size_t n, BufferRef out) = 0;
  // out = a + b over n; in place allowed.
  virtual void Add(BufferRef a, BufferRef b, size_t n, BufferRef out) = 0;
  // y += alpha * x over n (adapters: LoRA's scaled update).
  virtual void Axpy(float alpha, BufferRef x, size_t n, BufferRef y) = 0;

  // --- Trainable tensors (train) ---
  // An F32 tensor of `shape` (ne[0] = row length; dtype must be kF32; shape.data ignored)
  // whose values live in a backend buffer that ops may update in place between forward
  // passes (AdamW). It is a Weight like any other: MatMul, MatMulShared, MatMulToHost,
  // RmsNorm, AddBias and GetRows read its current values. Contents uninitialised: fill it
  // with Upload(TrainableData(w), ...). The Weight owns its buffer (freed with it).
  // ResourceExhausted when it cannot be allocated. Thread-safe like Allocate.
  virtual Result<std::unique_ptr<Weight>> CreateTrainable(const tensor::TensorView& shape) = 0;
  // The buffer behind a Weight made by CreateTrainable (REQUIRES: it was; checked).
  virtual BufferRef TrainableData(const Weight& w) = 0;

  // --- Backward ops (train; each is the derivative of the forward op of the same name) ---
  // Every output element is reduced in one fixed order whatever the thread count, so each
  // op's result is bit-identical for any threads() (checkpoints are reproducible by hash).
  // "accumulates" means += into what is there (gradients sum over blocks and
  // micro-batches); "writes" means overwrite. Outputs do not alias inputs unless stated.
  //
  // dx[t][c] (accumulates) += sum_r dy[t][r] * deq(W)[r][c]: the input gradient of MatMul
  // for any dtype MatMul accepts (quantized weights are dequantized block by block on the
  // fly: LoRA on a frozen quantized base). dy [num_tokens][rows], dx [num_tokens][cols].
  // The forward's activation quantization is treated as identity (straight-through).
  virtual void MatMulBackwardInput(const Weight& w, BufferRef dy, size_t num_tokens,
                                   BufferRef dx) = 0;
  // dw[r][c] (accumulates) += sum_t dy[t][r] * x[t][c], t summed in order 0..num_tokens-1.
  // x [num_tokens][cols], dy [num_tokens][rows], dw [rows][cols] F32.
  virtual void MatMulBackwardWeight(BufferRef x, BufferRef dy, size_t num_tokens, size_t rows,
                                    size_t cols, BufferRef dw) = 0;
  // dbias[c] (accumulates) += sum_r dy[r][c], r in order: AddBias's gradient. dy
  // [num_rows][n], dbias [n].
  virtual void SumRows(BufferRef dy, size_t n, size_t num_rows, BufferRef dbias) = 0;
  // dtable[ids[i]][:] (accumulates) += dout[i][:], i in order 0..num_ids-1 (repeated ids
  // sum in that order). ids int32 [num_ids], dout [num_ids][n], dtable F32 [vocab][n].
  // REQUIRES: 0 <= ids[i] < vocab.
  virtual void GetRowsBackward(BufferRef ids, size_t num_ids, BufferRef dout, size_t n,
                               BufferRef dtable) = 0;
  // RmsNorm(x) = x * w / rms(x): given x and dy (the output's gradient),
  // dx (accumulates) += the input gradient; dweight (accumulates) += sum over rows (in
  // order) of dy * x / rms(x). x, dy, dx [num_rows][n]; weight, dweight [n] F32.
  virtual void RmsNormBackward(BufferRef x, const Weight& weight, float eps, size_t n,
                               size_t num_rows, BufferRef dy, BufferRef dx,
                               BufferRef dweight) = 0;
  // The inverse rotation of Rope, in place on dx (Rope is orthogonal, so this is its
  // gradient). Same shapes and positions as Rope.
  virtual void RopeBackward(BufferRef dx, size_t num_tokens, size_t num_heads,
                            BufferRef positions, const PreparedRope& rope) = 0;
  // Causal GQA attention over num_seqs sequences of seq_len tokens each, every sequence
  // starting at position 0: q [num_seqs*seq_len][num_heads][head_dim], k, v
  // [num_seqs*seq_len][num_kv_heads][head_dim] F32 (q and k with RoPE applied), the same
  // scores and softmax as Attention. AttentionTrain writes out [..][num_heads][head_dim]
  // (bit-identical to Attention over an F32 cache holding the same k, v); AttentionBackward
  // recomputes the softmax and writes dq, dk, dv (dk/dv sum over query tokens in order,
  // and the query heads of a kv head in head order). REQUIRES: num_heads % num_kv_heads
  // == 0.
  virtual void AttentionTrain(BufferRef q, BufferRef k, BufferRef v, size_t num_seqs,
                              size_t seq_len, size_t num_heads, size_t num_kv_heads,
                              size_t head_dim, float scale, BufferRef out) = 0;
  virtual void AttentionBackward(BufferRef q, BufferRef k, BufferRef v, BufferRef dout,
                                 size_t num_seqs, size_t seq_len, size_t num_heads,
                                 size_t num_kv_heads, size_t head_dim, float scale,
                                 BufferRef dq, BufferRef dk, BufferRef dv) = 0;
  // out = silu(gate) * up: writes dgate and dup (either may alias dout) over n.
  virtual void SwiGLUBackward(BufferRef gate, BufferRef up, BufferRef dout, size_t n,
                              BufferRef dgate, BufferRef dup) = 0;
  // Softmax cross-entropy per row of logits [num_rows][vocab] against targets (int32
  // [num_rows]; a target < 0 is ignored: loss 0, gradient 0). Writes losses [num_rows]
  // (-log softmax(logits)[target], 0 for ignored rows) and dlogits [num_rows][vocab] =
  // (softmax - onehot(target)) * grad_scale (0 rows for ignored). dlogits may alias logits.
  // REQUIRES: targets < vocab.
  virtual void CrossEntropy(BufferRef logits, BufferRef targets, size_t num_rows, size_t vocab,
                            float grad_scale, BufferRef losses, BufferRef dlogits) = 0;

  // --- Optimizer ---
  // sum of x[i]^2 over n, as double, summed in a fixed blocking independent of threads;
  // waits for the ops issued before it (global-norm clipping).
  virtual double SumSquares(BufferRef x, size_t n) = 0;
  // x[i] = value for i < n (zeroing gradients).
  virtual void Fill(BufferRef x, size_t n, float value) = 0;
  // One AdamW step (Loshchilov & Hutter, decoupled weight decay, bias-corrected), over n:
  //   g = grad[i] * grad_scale;  m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;
  //   mhat = m / (1 - b1^step);  vhat = v / (1 - b2^step);
  //   param -= lr * (mhat / (sqrt(vhat) + eps) + weight_decay * param)
  // m, v F32 [n] (start at 0), updated in place; step >= 1.
  virtual void AdamW(BufferRef param, BufferRef grad, BufferRef m, BufferRef v, size_t n,
                     const AdamWParams& p) = 0;
};

// A backend of `kind` using `threads` threads (0 = all cores; the reference backend always
// uses one). InvalidArgument for threads outside [0, 1024].
Result<std::shared_ptr<Backend>> MakeBackend(BackendKind kind, int threads = 0);

}  // namespace pocket::kernels
