// Test helpers: tiny random Llama-family models written as GGUF at test time (in memory),
// so unit tests need no fixture files. Linked into pocket_model_test/_bench only.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/status.h"
#include "model/config.h"
#include "model/llama.h"
#include "tensor/dtype.h"

namespace pocket::model::testing {

struct RandomModelSpec {
  LlamaConfig config;  // arch, sizes, rope, tied_output, qkv_bias are honoured
  tensor::DType matrix_dtype = tensor::DType::kF32;  // every 2-D weight, embeddings included
  uint64_t seed = 1;
  bool write_rope_freqs = false;  // llama3 scaling as a rope_freqs.weight tensor
  // Matrices cycle through a small pool of normals and are produced while writing, one at
  // a time: for large models (memory tests), where statistics do not matter.
  bool cheap_values = false;
};

// A small config: arch "llama", d_model 64, 2 layers, 4 heads / 2 kv heads, d_ff 128,
// vocab 96, context 64.
LlamaConfig TinyConfig();

// The serialized GGUF of a random model (unit-scale activations: embeddings N(0,1),
// matrices N(0, 1/in), norms 1 + 0.2 N, biases 0.5 N).
Result<std::string> RandomModelGguf(const RandomModelSpec& spec);
// Writes it to `path`.
Status WriteRandomModel(const RandomModelSpec& spec, const std::string& path);
Result<std::unique_ptr<LlamaModel>> RandomModel(const RandomModelSpec& spec,
                                                const LoadOptions& opts = {});

// Counts operator new calls (all threads) between Start and Stop; the test binary replaces
// the global operator new (alloc_count_testutil.cc) to do so.
void StartCountingAllocations();
int64_t StopCountingAllocations();

// max_i |a - b| / max_i |b| (b the reference); inf when sizes differ.
double MaxRelError(const std::vector<float>& a, const std::vector<float>& b);

}  // namespace pocket::model::testing
