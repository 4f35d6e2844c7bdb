// EstimateMemory against the objects it predicts (KvCache, the loaded weights, Engine::Load's
// context choice), and base::Platform injection as the runtime sees it.
#include "runtime/memory_estimate.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "base/platform.h"
#include "model/kv_cache.h"
#include "runtime/engine.h"
#include "runtime/engine_impl.h"
#include "runtime/engine_testutil.h"
#include "runtime/measure.h"

namespace pocket::runtime {
namespace {

namespace fs = std::filesystem;

class MemoryEstimateTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    path_ = new std::string((fs::temp_directory_path() /
                             ("pocket_memory_estimate_test." + std::to_string(getpid()) + ".gguf"))
                                .string());
    auto engine = LoadSmallRandomEngine(*path_, 3);
    ASSERT_TRUE(engine.ok()) << engine.status().ToString();
    engine_ = new std::shared_ptr<Engine>(*engine);
  }
  static void TearDownTestSuite() {
    delete engine_;
    std::error_code ec;
    fs::remove(*path_, ec);
    delete path_;
  }
  static Engine& engine() { return **engine_; }
  static std::string* path_;
  static std::shared_ptr<Engine>* engine_;
};

std::string* MemoryEstimateTest::path_ = nullptr;
std::shared_ptr<Engine>* MemoryEstimateTest::engine_ = nullptr;

TEST_F(MemoryEstimateTest, KvCacheIsWhatTheModelReservesPerSequence) {
  const model::LlamaConfig& config = engine().config();
  auto cache = ImplOf(engine()).model->NewKvCache(engine().context_length(), kKvDType);
  ASSERT_TRUE(cache.ok());
  for (int batch : {1, 3}) {
    MemoryOptions opts;
    opts.context_length = engine().context_length();
    opts.batch = batch;
    const MemoryEstimate e = EstimateMemory(config, engine().weight_bytes(), opts);
    EXPECT_EQ(e.kv_cache_bytes, cache->size_bytes() * static_cast<uint64_t>(batch));
    EXPECT_EQ(e.kv_cache_bytes,
              model::KvCache::BytesFor(config.num_layers, config.kv_dim(),
                                       engine().context_length(), kKvDType) *
                  static_cast<uint64_t>(batch));
    EXPECT_EQ(e.batch, batch);
  }
}

TEST_F(MemoryEstimateTest, WeightsAreTheLoadedModelsAndTheTotalAddsUp) {
  const model::LlamaConfig& config = engine().config();
  const MemoryEstimate e = EstimateMemory(config, engine().weight_bytes(), {});
  EXPECT_EQ(e.weights_bytes, engine().weight_bytes());
  // An F32 model: four bytes per parameter.
  EXPECT_EQ(e.weights_bytes, CountParameters(config) * 4);
  EXPECT_GT(e.activations_bytes, 0u);
  EXPECT_EQ(e.logits_bytes, 2u * static_cast<uint64_t>(config.vocab_size) * 4);
  EXPECT_EQ(e.total(), e.weights_bytes + e.kv_cache_bytes + e.activations_bytes +
                           e.rope_bytes + e.logits_bytes);
  EXPECT_LT(e.weights_bytes, fs::file_size(*path_));  // the file also holds metadata
}

TEST_F(MemoryEstimateTest, ContextZeroIsWhatEngineLoadPicks) {
  auto loaded = Engine::Load(*path_, {});
  ASSERT_TRUE(loaded.ok());
  const MemoryEstimate e = EstimateMemory((*loaded)->config(), 0, {});
  EXPECT_EQ(e.context_length, (*loaded)->context_length());
  model::LlamaConfig big = (*loaded)->config();
  big.context_length = 131072;
  EXPECT_EQ(EstimateMemory(big, 0, {}).context_length, kDefaultContextCap);
}

TEST_F(MemoryEstimateTest, RopeTableDoublesToCoverTheContext) {
  model::LlamaConfig c = engine().config();
  c.context_length = 32768;
  MemoryOptions opts;
  opts.context_length = 1000;  // inside the initial 4096 positions
  EXPECT_EQ(EstimateMemory(c, 0, opts).rope_bytes, 4096u * c.head_dim * 4);
  opts.context_length = 10000;  // 4096 -> 8192 -> 16384
  EXPECT_EQ(EstimateMemory(c, 0, opts).rope_bytes, 16384u * c.head_dim * 4);
  opts.context_length = 32768;
  EXPECT_EQ(EstimateMemory(c, 0, opts).rope_bytes, 32768u * c.head_dim * 4);
}

TEST_F(MemoryEstimateTest, ThreadsDefaultToThePlatformsCoresAndOnlyTheCpuBackendPaysPerThread) {
  const model::LlamaConfig& c = engine().config();
  MemoryOptions three;
  three.threads = 3;
  PlatformProfile profile;
  profile.logical_cores = 3;
  const Platform device(profile);
  {
    ScopedPlatform scope(device);
    EXPECT_EQ(EstimateMemory(c, 0, {}).activations_bytes,
              EstimateMemory(c, 0, three).activations_bytes);
  }
  MemoryOptions one = three;
  one.threads = 1;
  EXPECT_GT(EstimateMemory(c, 0, three).activations_bytes,
            EstimateMemory(c, 0, one).activations_bytes);
  MemoryOptions ref = three;
  ref.backend = model::BackendKind::kReference;
  one.backend = model::BackendKind::kReference;
  EXPECT_EQ(EstimateMemory(c, 0, ref).activations_bytes,
            EstimateMemory(c, 0, one).activations_bytes);
  EXPECT_LT(EstimateMemory(c, 0, ref).total(), EstimateMemory(c, 0, three).total());
}

TEST_F(MemoryEstimateTest, InjectedPlatformSizesTheEnginesThreadPool) {
  PlatformProfile profile;
  profile.logical_cores = 2;
  const Platform device(profile);
  ScopedPlatform scope(device);
  auto loaded = Engine::Load(*path_, {});  // threads 0: all of the platform's cores
  ASSERT_TRUE(loaded.ok());
  EXPECT_EQ((*loaded)->threads(), 2);
}

TEST_F(MemoryEstimateTest, InjectedPlatformWithoutMemoryRefusesTheKvCache) {
  PlatformProfile profile = Platform::Host().profile();
  profile.available_memory_bytes = 1024;  // less than the 64 KiB cache of the test model
  const Platform device(profile);
  ScopedPlatform scope(device);
  auto session = engine().NewSession();
  GenerateRequest req;
  req.prompt = "no room";
  req.max_tokens = 2;
  const Status st = session->Start(req);
  EXPECT_EQ(st.code(), StatusCode::kResourceExhausted) << st.ToString();
  EXPECT_FALSE(session->running());
}

}  // namespace
}  // namespace pocket::runtime
