// Cost of opening (mapping + fully validating) the embedded default model: what every
// `pocket` command pays before it runs. 56 tensors, 31 keys incl. 4096 tokens and 3837 merges.
#include <benchmark/benchmark.h>

#include <string>

#include "formats/gguf.h"

namespace pocket::formats {
namespace {

void BM_OpenDefaultModel(benchmark::State& state) {
  const std::string path = std::string(POCKET_SOURCE_DIR) + "/models/default.gguf";
  for (auto _ : state) {
    auto f = GgufFile::Open(path);
    if (!f.ok()) {
      state.SkipWithError(f.status().ToString().c_str());
      break;
    }
    benchmark::DoNotOptimize(f->tensors().data());
  }
}
BENCHMARK(BM_OpenDefaultModel);

}  // namespace
}  // namespace pocket::formats
