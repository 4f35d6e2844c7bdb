// What `pocket ls` costs with 1,000 tags (issue 16's target: under 50 ms): Store::List reads
// and parses index.json, whose descriptors carry everything ls prints, so no manifest is
// opened. The store is built once in a temp dir: one imported model, then its descriptor
// repeated under 1,000 names, as 1,000 imports would leave it (without 4,000 fsyncs).
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include "base/file.h"
#include "formats/random_model.h"
#include "registry/store.h"

namespace pocket::registry {
namespace {

namespace fs = std::filesystem;

fs::path& BenchDir() {
  static fs::path dir;
  return dir;
}

std::string MakeStore(int tags) {
  fs::path& dir = BenchDir();
  dir = fs::temp_directory_path() / ("pocket_store_bench." + std::to_string(getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  std::atexit([] {
    std::error_code ec;
    fs::remove_all(BenchDir(), ec);
  });
  auto spec = formats::NamedShape("tiny");
  spec->vocab_size = 512;
  const std::string model = (dir / "m.gguf").string();
  if (!formats::BuildRandomModel(*spec)->Write(model).ok()) std::abort();
  Store store((dir / "store").string());
  auto imported = store.Import(model, *ParseModelRef("seed"));
  if (!imported.ok()) std::abort();
  auto index = ParseIndex(*ReadFile(store.root() + "/index.json"), "index.json");
  Index big;
  for (int i = 0; i < tags; ++i) {
    Descriptor d = index->manifests[0];
    d.annotations[kRefNameAnnotation] =
        "team-" + std::to_string(i % 37) + "/model-" + std::to_string(i) + ":q4_k_m";
    big.manifests.push_back(d);
  }
  if (!WriteFileAtomic(store.root() + "/index.json", SerializeIndex(big)).ok()) std::abort();
  return store.root();
}

void BM_List1000Tags(benchmark::State& state) {
  static const std::string root = MakeStore(1000);
  Store store(root);
  for (auto _ : state) {
    auto tags = store.List();
    if (!tags.ok() || tags->size() != 1000) state.SkipWithError("list failed");
    benchmark::DoNotOptimize(tags);
  }
  state.SetItemsProcessed(state.iterations() * 1000);
  state.SetBytesProcessed(state.iterations() *
                          static_cast<int64_t>(fs::file_size(root + "/index.json")));
}
BENCHMARK(BM_List1000Tags)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace pocket::registry
