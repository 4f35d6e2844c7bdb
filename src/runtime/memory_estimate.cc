// EstimateMemory: the byte counts of what model::LlamaModel, model::KvCache and the kernels
// allocate for a model, from its config alone (memory_estimate.h).
#include "runtime/memory_estimate.h"

#include <algorithm>

#include "base/platform.h"
#include "model/kv_cache.h"
#include "runtime/engine.h"
#include "runtime/engine_impl.h"

namespace pocket::runtime {

int ResolveContextLength(const model::LlamaConfig& config, int requested) {
  return requested > 0 ? requested : std::min(config.context_length, kDefaultContextCap);
}

MemoryEstimate EstimateMemory(const model::LlamaConfig& c, uint64_t weight_bytes,
                              const MemoryOptions& opts) {
  MemoryEstimate e;
  e.context_length = ResolveContextLength(c, opts.context_length);
  e.batch = std::max(1, opts.batch);
  const uint64_t batch = static_cast<uint64_t>(e.batch);
  e.weights_bytes = weight_bytes;
  e.kv_cache_bytes =
      model::KvCache::BytesFor(c.num_layers, c.kv_dim(), e.context_length, kKvDType) * batch;

  // LlamaModel's workspaces: max_batch_tokens rows of x, xn, o (d_model), q, att (q_dim),
  // k, v (kv_dim), gate, up (d_ff), all F32.
  const uint64_t rows = static_cast<uint64_t>(std::max(1, opts.max_batch_tokens));
  const uint64_t d = static_cast<uint64_t>(c.d_model), q = static_cast<uint64_t>(c.q_dim());
  const uint64_t kv = static_cast<uint64_t>(c.kv_dim()), ff = static_cast<uint64_t>(c.d_ff);
  e.activations_bytes = rows * (3 * d + 2 * q + 2 * kv + 2 * ff) * 4;
  // The matmuls' int8 activations of the widest input (Q8_0 blocks: 34 bytes per 32
  // values, rounded up to 1.125), and on the CPU backend per thread the AMX kernels'
  // re-laid-out activations (1.25 bytes per value, kernels/cpu/amx.cc).
  const uint64_t widest = std::max(d, ff);
  e.activations_bytes += rows * widest * 9 / 8;
  if (opts.backend == model::BackendKind::kCpu) {
    const uint64_t threads =
        static_cast<uint64_t>(opts.threads > 0 ? opts.threads : Platform::Default().logical_cores());
    e.activations_bytes += threads * rows * widest * 5 / 4;
  }

  // The RoPE table holds head_dim floats per position (cos and sin of head_dim/2
  // frequencies). It starts at min(rope_positions, model context) and doubles, capped at
  // the model's context, until it covers the positions used.
  const int64_t model_ctx = std::max(1, c.context_length);
  int64_t positions = std::min<int64_t>(model_ctx, std::max(1, opts.rope_positions));
  while (positions < e.context_length && positions < model_ctx) {
    positions = std::min<int64_t>(2 * positions, model_ctx);
  }
  e.rope_bytes = static_cast<uint64_t>(positions) * static_cast<uint64_t>(c.head_dim) * 4;

  e.logits_bytes = 2 * static_cast<uint64_t>(c.vocab_size) * 4 * batch;
  return e;
}

}  // namespace pocket::runtime
