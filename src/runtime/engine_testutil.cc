#include "runtime/engine_testutil.h"

#include <gtest/gtest.h>

#include "formats/random_model.h"

namespace pocket::runtime {

std::shared_ptr<Engine> LoadSmallRandomEngine(const std::string& path, uint64_t seed) {
  formats::RandomModelSpec spec;
  spec.d_model = 64;
  spec.num_layers = 2;
  spec.num_heads = 4;
  spec.num_kv_heads = 2;
  spec.d_ff = 128;
  spec.vocab_size = 512;
  spec.context_length = 256;
  spec.weight_type = tensor::DType::kF32;
  spec.seed = seed;
  auto writer = formats::BuildRandomModel(spec);
  if (!writer.ok() || !writer->Write(path).ok()) {
    ADD_FAILURE() << "cannot write " << path;
    return nullptr;
  }
  EngineOptions opts;
  opts.threads = 1;
  auto engine = Engine::Load(path, opts);
  if (!engine.ok()) {
    ADD_FAILURE() << engine.status().ToString();
    return nullptr;
  }
  return *engine;
}

}  // namespace pocket::runtime
