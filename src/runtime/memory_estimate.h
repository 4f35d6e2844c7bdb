// EstimateMemory: the one estimate of what running a model costs in memory, before loading
// it: weights, the KV cache of every sequence, the forward pass's activation workspaces,
// the RoPE table and the logits, broken down. Who calls: the server (refuses a model that
// does not fit, with the breakdown), `pocket` commands that report memory, and the edge
// emulator (with an injected base::Platform). The figures follow what model::LlamaModel and
// model::KvCache allocate; memory_estimate_test.cc checks them against the real objects.
// Thread safety: pure functions of their arguments (and Platform::Default() for threads 0).
#pragma once

#include <cstdint>

#include "model/config.h"
#include "model/llama.h"

namespace pocket::runtime {

struct MemoryOptions {
  // Tokens per sequence; 0: what Engine::Load picks (ResolveContextLength).
  int context_length = 0;
  // Sequences that each keep a full-context KV cache (the scheduler's slots; 1 for a
  // Session). Values below 1 count as 1.
  int batch = 1;
  // Forward-pass threads; 0: all cores of Platform::Default().
  int threads = 0;
  // kCpu: weights read from the file mapping, matrices repacked at load releasing their file
  // pages as packing goes (each weight byte resident about once), per-thread AMX scratch.
  // kReference: every weight read in place, no per-thread scratch.
  model::BackendKind backend = model::BackendKind::kCpu;
  int max_batch_tokens = 128;  // model::LoadOptions::max_batch_tokens
  int rope_positions = 4096;   // model::LoadOptions::rope_positions
};

struct MemoryEstimate {
  int context_length = 0;       // the resolved context
  int batch = 1;
  uint64_t weights_bytes = 0;   // as given (the file, or the tensors)
  uint64_t kv_cache_bytes = 0;  // batch x KvCache::BytesFor(F16, context_length)
  // Workspaces of one forward step of max_batch_tokens rows (x, xn, o, q, att, k, v, gate,
  // up), the int8 activations of the widest matmul input, and per-thread matmul scratch.
  uint64_t activations_bytes = 0;
  uint64_t rope_bytes = 0;    // the cos/sin table, grown by doubling to cover the context
  uint64_t logits_bytes = 0;  // one vocabulary row per sequence, twice (forward output + copy)

  uint64_t compute_bytes() const { return activations_bytes + rope_bytes + logits_bytes; }
  uint64_t total() const { return weights_bytes + kv_cache_bytes + compute_bytes(); }
};

// The context Engine::Load uses for `requested` tokens: requested when positive, else the
// model's context capped at kDefaultContextCap.
int ResolveContextLength(const model::LlamaConfig& config, int requested);

// `weight_bytes`: the weights as stored: model::LlamaModel::weight_bytes() once loaded, or
// the GGUF file's size before (the mapping also holds metadata and the vocabulary). The
// context is not checked against the model's here (Engine::Load does that).
MemoryEstimate EstimateMemory(const model::LlamaConfig& config, uint64_t weight_bytes,
                              const MemoryOptions& opts);

}  // namespace pocket::runtime
