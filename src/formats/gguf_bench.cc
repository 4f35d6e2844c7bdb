// Cost of opening (mapping + fully validating) the embedded default model: what every
// `pocket` command pays before it runs. 38 tensors, 25 keys incl. 2048 tokens and 1789 merges.
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
