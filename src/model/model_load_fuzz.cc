// libFuzzer target: arbitrary bytes as a GGUF model. Whatever the reader accepts must be
// refused by LlamaModel::FromGguf with a Status or load (config, shapes, workspaces, a KV
// cache) — never crash, hang or allocate from an unchecked size: every dimension is bounded
// by a tensor that really is in the file. The forward pass is not run: fuzzed weights hold
// NaN/Inf, and the kernels require finite inputs (tensor/quant.h), as any model file must.
// Seeds: testdata/fuzz/model_load_fuzz/ (tiny models).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <span>
#include <vector>

#include "formats/gguf.h"
#include "model/llama.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace pocket;  // NOLINT: fuzz entry point
  auto file = formats::GgufFile::FromBytes(
      std::string(reinterpret_cast<const char*>(data), size), "fuzz");
  if (!file.ok()) return 0;
  auto model = model::LlamaModel::FromGguf(std::move(*file),
                                           {.threads = 1, .max_batch_tokens = 4});
  if (!model.ok()) return 0;
  const model::LlamaConfig& c = (*model)->config();
  auto cache = (*model)->NewKvCache(std::min(c.context_length, 8), tensor::DType::kF16);
  if (!cache.ok()) return 0;
  // A batch that must be refused (token outside the vocabulary) exercises validation.
  const std::vector<int32_t> tokens = {c.vocab_size};
  model::BatchEntry e{&*cache, tokens, 0, true};
  std::vector<float> logits;
  if ((*model)->Forward({&e, 1}, &logits).ok()) __builtin_trap();
  return 0;
}
