// The server's Model backed by runtime::Engine (a real GGUF model) and the continuous
// batching runtime::Scheduler: loads it after a memory estimate (weights + KV cache for
// every slot at the context length + compute buffers), so a model that does not fit is
// refused with a clear message instead of failing halfway.
// Thread safety: as server::Model.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "base/status.h"
#include "server/model.h"

namespace pocket::server {

// runtime::EstimateMemory's figures (compute = activations + RoPE table + logits) and the
// memory available now.
struct MemoryEstimate {
  int context_length = 0;
  uint64_t weights_bytes = 0;
  uint64_t kv_cache_bytes = 0;  // all slots, F16, full context
  uint64_t compute_bytes = 0;
  uint64_t available_bytes = 0;  // MemAvailable now; 0 when unknown
  uint64_t total() const { return weights_bytes + kv_cache_bytes + compute_bytes; }
};

// Reads only the GGUF header and metadata. The loader's errors naming `path`. `threads`:
// the engine's (0 = all cores).
Result<MemoryEstimate> EstimateModelMemory(const std::string& path, int context_length,
                                           int max_sequences, int threads);

// The model's id is the file name without ".gguf". `max_sequences` is the number of
// requests batched together. ResourceExhausted when the estimate exceeds the memory
// available; the loader's errors otherwise.
Result<std::shared_ptr<Model>> LoadRuntimeModel(const std::string& path, int threads,
                                                int context_length, int max_sequences);

}  // namespace pocket::server
