// Pocket's compute kernels: the hot loops of a Llama-family forward pass on the CPU. The
// model does not call them directly: it calls kernels::Backend (kernels/backend.h), whose
// CPU implementation (kernels/cpu/cpu_backend.cc) calls these.
// Every function here is dispatched at run time to the best SIMD target Highway compiled
// (kernels/cpu/, AVX-512 / AVX2 / SSE4 / scalar) and is specified by a plain-loop
// reference in kernels/ref/ (the same signatures in namespace pocket::kernels::ref).
//
// Conventions (all functions):
//  - Activations are F32, row-major, contiguous: "[num_tokens][n]" means row t starts at
//    t * n. All buffers are caller-owned; nothing is retained after the call.
//  - Weights are tensor::TensorView in GGUF/ggml order: ne[0] = cols = input features
//    (contiguous), ne[1] = rows = output features (ne[2], ne[3] must be 1). Quantized
//    weights are used block by block, never dequantized as a whole.
//  - Output buffers must not alias inputs unless the function says "in place".
//  - Batch invariance: every output element of MatMul and Attention is bit-identical
//    whatever num_tokens, the token's position in the batch and the pool's thread count
//    (fixed reduction order per output element). Results may differ between SIMD targets.
//
// Who calls: the CPU backend, runtime's sampler (ArgMax, ScaledExp), kernels tests and
// benches. Thread safety: functions are reentrant; a Workspace and a ThreadPool are used by
// one caller at a time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "base/thread_pool.h"
#include "tensor/dtype.h"
#include "tensor/tensor.h"

namespace pocket::kernels {

// Scratch memory reused across kernel calls (quantized activations, attention scores).
// Grows on demand and never shrinks; after warm-up a forward pass allocates nothing.
// Not thread-safe: one per forward-pass caller.
class Workspace {
 public:
  Workspace();
  ~Workspace();
  Workspace(Workspace&&) noexcept;
  Workspace& operator=(Workspace&&) noexcept;

  // A 64-byte-aligned buffer of at least `bytes` for `slot`; contents are unspecified and
  // valid until the next Get of the same slot.
  void* Get(size_t slot, size_t bytes);

 private:
  struct Buffer {
    void* data = nullptr;
    size_t size = 0;
  };
  std::vector<Buffer> buffers_;
};

// How MatMul multiplies by a weight of `dtype` on this CPU now (the dispatched SIMD
// target): kFast, a SIMD kernel of that target; kReference, a portable loop (same results,
// slow); kUnsupported, refused. `pocket inspect --types` reports it per tensor type.
enum class MatMulPath { kUnsupported, kReference, kFast };
MatMulPath MatMulPathOf(tensor::DType dtype);
std::string_view MatMulPathName(MatMulPath path);  // "unsupported", "reference", "fast"

// Weight dtypes MatMul accepts on every target: MatMulPathOf(dtype) != kUnsupported.
bool MatMulSupports(tensor::DType dtype);

// How MatMul prepares its activation for a weight of `dtype`: 0 F32 as is (F32/F16/BF16),
// 1 int8 per 32-block (Q8_0/Q4_0 and the 32-element Q4_1/Q5_0/Q5_1/IQ4_NL), 2 Q8_K
// (Q2_K..Q6_K, IQ4_XS). MatMulShared's jobs share one kind.
int MatMulActivationKind(tensor::DType dtype);

// y[t][r] = sum_c W[r][c] * x[t][c]   for t < num_tokens, r < rows.
//   w: [rows][cols] (ne[0] = cols), any MatMulSupports dtype.
//   x: [num_tokens][cols] F32.   y: [num_tokens][rows] F32.
// Q8_0 / Q4_0 / Q4_1 / Q5_0 / Q5_1 / IQ4_NL weights: x is quantized per 32-block to int8
// (ref::QuantizeActQ8) and the block dot products are integer. Q2_K..Q6_K, IQ4_XS: x is
// quantized to Q8_K
// (tensor::QuantizeRowQ8_K). F32/F16/BF16: F32 dot products. num_tokens > 1 runs a batched
// mat-mat (each weight block loaded once for several tokens) with results bit-identical
// to num_tokens = 1. Rows are split across the pool's threads.
// REQUIRES: MatMulSupports(w.dtype); cols % BlockElements(w.dtype) == 0.
void MatMul(const tensor::TensorView& w, const float* x, size_t num_tokens, float* y,
            ThreadPool& pool, Workspace& ws);

// A weight matrix re-laid out once, at load time, for the int8 kernels: 8 rows interleaved
// per block with their scales side by side, so decode streams one contiguous array and
// the kernel skips the per-call transposition (see cpu/cpu.h for the layout). Used for
// Q4_0, Q4_1, Q5_0, Q5_1, IQ4_NL, Q4_K and Q6_K on x86 (AVX2/AVX-512) and Q8_0 on CPUs
// with AVX512-VNNI;
// for anything else Pack() keeps only the view and MatMul reads it as is. Results are
// bit-identical to MatMul on the plain view. Costs a copy of the matrix (the original bytes
// stay in the GGUF mapping: GetRows and the fallback read them, so they must outlive this
// object).
// Immutable after Pack(); share it between threads freely.
//
// Where decode finds the packed bytes, which sets how far ahead the kernels prefetch
// (results are the same either way): kCache when the whole model fits in the last-level
// cache and stays there from one token to the next, kMemory when every token streams it
// from DRAM (base::LastLevelCacheBytes() tells which).
enum class WeightSource { kCache, kMemory };
class PackedWeight {
 public:
  PackedWeight() = default;
  // `consumed`, when set, is called with each stretch of w's bytes once it has been copied
  // (a few MiB at a time, in order), so the caller can release the source as packing goes.
  // ResourceExhausted (naming the bytes) when the packed copy cannot be allocated; nothing
  // is consumed then.
  static Result<PackedWeight> TryPack(const tensor::TensorView& w,
                                      const std::function<void(const void*, size_t)>& consumed = {},
                                      WeightSource source = WeightSource::kCache);
  // TryPack that aborts when out of memory (tests and benches).
  static PackedWeight Pack(const tensor::TensorView& w,
                           const std::function<void(const void*, size_t)>& consumed = {},
                           WeightSource source = WeightSource::kCache);
  const tensor::TensorView& view() const { return view_; }
  bool packed() const { return data_ != nullptr; }
  const uint8_t* data() const { return data_.get(); }
  int layout() const { return layout_; }  // cpu::kPacked*
  size_t size_bytes() const { return size_bytes_; }
  WeightSource source() const { return source_; }

 private:
  struct Free {
    void operator()(uint8_t* p) const;
  };
  tensor::TensorView view_;
  std::unique_ptr<uint8_t, Free> data_;
  size_t size_bytes_ = 0;
  int layout_ = 0;
  WeightSource source_ = WeightSource::kCache;
};

// Same as MatMul(w.view(), ...), reading the packed layout when there is one.
void MatMul(const PackedWeight& w, const float* x, size_t num_tokens, float* y,
            ThreadPool& pool, Workspace& ws);

// Several weights that share one input (Q, K, V; or gate, up): x is quantized once and all
// rows of all weights are computed in one dispatch. Each job's y is [num_tokens][its rows].
// `packed`, when set, is PackedWeight::Pack(w) (same bits, faster).
// REQUIRES: all jobs have the same cols and the same activation kind (32-element types
// together, K-quants together, or float types); at most 8 jobs.
struct MatMulJob {
  tensor::TensorView w;
  float* y;
  const PackedWeight* packed = nullptr;
};
void MatMulShared(std::span<const MatMulJob> jobs, const float* x, size_t num_tokens,
                  ThreadPool& pool, Workspace& ws);

// out[t][i] = x[t][i] * weight[i] / sqrt(mean_i(x[t][i]^2) + eps); in place allowed
// (out == x). x, out: [num_rows][n]; weight: [n] F32.
void RmsNorm(const float* x, const float* weight, float eps, size_t n, size_t num_rows,
             float* out);

// Rotary position embedding.
enum class RopeStyle {
  kNormal,  // arch llama: rotate adjacent pairs (x[2i], x[2i+1])
  kNeox,    // arch qwen2 / HF: rotate halves (x[i], x[i + rot_dims/2])
};
struct RopeConfig {
  size_t head_dim = 0;
  size_t rot_dims = 0;          // {arch}.rope.dimension_count; 0 means head_dim. Even.
  float freq_base = 10000.0f;   // {arch}.rope.freq_base
  float freq_scale = 1.0f;      // 1 / linear scaling factor
  RopeStyle style = RopeStyle::kNormal;
  // Per-pair divisors of the frequency, [rot_dims / 2] (GGUF tensor rope_freqs.weight, or
  // Llama3RopeFreqFactors); empty means all 1.
  std::vector<float> freq_factors;
};
// Llama-3 rope scaling ("rope_type": "llama3" in HF config) as per-pair frequency
// divisors, the form GGUF stores in rope_freqs.weight.
std::vector<float> Llama3RopeFreqFactors(size_t rot_dims, float freq_base, float factor,
                                         float low_freq_factor, float high_freq_factor,
                                         size_t original_max_positions);

// cos/sin table for positions [0, max_positions): theta(p, i) = p * freq_scale *
// freq_base^(-2i / rot_dims) / freq_factors[i], computed in double, stored as float.
// Immutable after Create; share it between layers and threads.
class RopeTable {
 public:
  static RopeTable Create(const RopeConfig& config, size_t max_positions);
  const RopeConfig& config() const { return config_; }
  size_t max_positions() const { return max_positions_; }
  // [rot_dims / 2] cos and sin for position p. REQUIRES: p < max_positions().
  const float* cos(size_t p) const { return cos_sin_.data() + p * config_.rot_dims; }
  const float* sin(size_t p) const { return cos(p) + config_.rot_dims / 2; }

 private:
  RopeConfig config_;
  size_t max_positions_ = 0;
  std::vector<float> cos_sin_;  // per position: rot_dims/2 cos, then rot_dims/2 sin
};

// In place on x: [num_tokens][num_heads][head_dim]; token t is at positions[t].
// The first rot_dims of each head rotate; the rest pass through.
// REQUIRES: positions[t] < table.max_positions().
void Rope(float* x, size_t num_tokens, size_t num_heads, const int32_t* positions,
          const RopeTable& table);

// Numerically stable softmax in place over x[0..n): exp(x - max) / sum.
void Softmax(float* x, size_t n);

// Index of the largest element of x[0..n), the lowest index among equal ones. NaN
// entries are skipped; 0 when every entry is NaN. REQUIRES: n > 0.
size_t ArgMax(const float* x, size_t n);

// Smallest and largest arguments ScaledExp takes to exp (the normal float range).
inline constexpr float kScaledExpMin = -87.0f, kScaledExpMax = 88.0f;
// out[i] = exp(a) with a = x[i] * scale - offset: 0 where x[i] is NaN or a < kScaledExpMin,
// exp(kScaledExpMax) where a is larger (the sampler's tempered, unnormalised
// probabilities; -inf logits give 0). An entry's result depends only on that entry (not on n or
// its position) for a given SIMD target. In place allowed (out == x).
void ScaledExp(const float* x, size_t n, float scale, float offset, float* out);

// out[i] = silu(gate[i]) * up[i], silu(g) = g / (1 + exp(-g)). In place allowed (out ==
// gate or out == up).
void SwiGLU(const float* gate, const float* up, size_t n, float* out);

// out[i] = a[i] + b[i]. In place allowed.
void Add(const float* a, const float* b, size_t n, float* out);

// out[i][:] = row ids[i] of `table` dequantized to F32 (embedding lookup).
// table: [rows][cols] any dtype tensor::DequantizeRow accepts; out: [num_ids][cols].
// REQUIRES: 0 <= ids[i] < rows.
void GetRows(const tensor::TensorView& table, const int32_t* ids, size_t num_ids,
             float* out);

// One layer's KV cache for one sequence, as attention reads it.
//   k, v: [capacity][num_kv_heads][head_dim] of dtype (F32 or F16). Position p's key for
//   kv head h starts at element (p * num_kv_heads + h) * head_dim.
struct KvView {
  tensor::DType dtype = tensor::DType::kF32;  // kF32 or kF16
  const void* k = nullptr;
  const void* v = nullptr;
  size_t num_kv_heads = 0;
  size_t head_dim = 0;
};

// Causal multi-head attention with grouped KV heads (GQA/MQA).
//   q:   [num_tokens][num_heads][head_dim] F32 (RoPE already applied).
//   out: [num_tokens][num_heads][head_dim] F32.
// Query token t is at position first_position + t and attends to cache positions
// 0 ..= first_position + t (its own K/V must already be in the cache). Query head h uses
// kv head h / (num_heads / num_kv_heads). Scores = q.k * scale in F32, stable softmax,
// then the weighted sum of V. Work is split over (token, head) across the pool.
// REQUIRES: num_heads % kv.num_kv_heads == 0; kv holds first_position + num_tokens
// positions.
void Attention(const float* q, size_t num_tokens, size_t num_heads, size_t first_position,
               const KvView& kv, float scale, float* out, ThreadPool& pool, Workspace& ws);

// One AdamW step's hyper-parameters (Backend::AdamW, ref::AdamW; Loshchilov & Hutter,
// "Decoupled Weight Decay Regularization", Algorithm 2 with bias correction).
struct AdamWParams {
  float lr = 1e-3f, beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f, weight_decay = 0.0f;
  float grad_scale = 1.0f;  // clipping factor / accumulation steps, applied to grad first
  int64_t step = 1;         // 1-based, for bias correction
};

// The SIMD target the dispatcher picked ("AVX2", "AVX3", "EMU128", ...), for logs/benches.
std::string ActiveTarget();

// Caps the instruction set the kernels use: "native" (all this CPU has) or "avx2" (AVX2,
// FMA and F16C: no AVX-512, VNNI or AMX), to measure on a newer CPU what one without
// AVX-512 would do (`pocket bench --cpu-isa avx2`). Process-wide and not thread-safe: call
// it before loading a model (packed layouts follow the target). InvalidArgument for
// another name or when this CPU lacks AVX2.
Status LimitInstructionSet(std::string_view isa);

}  // namespace pocket::kernels
