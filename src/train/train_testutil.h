// Test helpers for src/train: a tiny Llama config, batches from a repetitive token stream,
// backends by kind and thread count, and GGUF round trips in memory. Linked into the train
// tests only.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/status.h"
#include "formats/gguf.h"
#include "kernels/backend.h"
#include "model/config.h"
#include "train/backprop.h"
#include "train/params.h"

namespace pocket::train::testing {

// arch llama, d_model 32, 2 layers, 4 heads / 2 kv heads (GQA), head_dim 8, d_ff 64,
// vocab 64, context 64, untied unless `tied`.
model::LlamaConfig TinyConfig(bool tied = false);

// Host storage for a Batch: num_seqs windows of seq_len + 1 tokens of a repetitive stream
// (period `period`, starting at `offset`), targets the next token, every `skip`-th target
// -1 (0: none skipped).
struct HostBatch {
  size_t num_seqs = 0, seq_len = 0;
  std::vector<int32_t> tokens, targets;
  Batch batch() const { return Batch{num_seqs, seq_len, tokens, targets}; }
};
HostBatch RepetitiveBatch(size_t num_seqs, size_t seq_len, int vocab, int period, int offset,
                          int skip = 0);

std::shared_ptr<kernels::Backend> MakeBackendOrDie(kernels::BackendKind kind, int threads);

// The model's GGUF (ToGguf, weights as `dtype`) serialized and opened from memory.
formats::GgufFile ToGgufFile(const ModelParams& params, tensor::DType dtype = tensor::DType::kF32);

// Every Param's values, concatenated in order (host copy), and the same of their moments.
std::vector<float> AllValues(ModelParams& params);

}  // namespace pocket::train::testing
