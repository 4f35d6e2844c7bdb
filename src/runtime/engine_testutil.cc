#include "runtime/engine_testutil.h"

#include "formats/random_model.h"

namespace pocket::runtime {

Result<std::shared_ptr<Engine>> LoadSmallRandomEngine(const std::string& path, uint64_t seed) {
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
  PK_ASSIGN_OR_RETURN(auto writer, formats::BuildRandomModel(spec));
  PK_RETURN_IF_ERROR(writer.Write(path));
  EngineOptions opts;
  opts.threads = 1;
  return Engine::Load(path, opts);
}

}  // namespace pocket::runtime
