// ModelParams: deterministic initialisation, GGUF export that the inference model loads and
// that computes the training forward's loss, and the import round trip.
#include "train/params.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <vector>

#include "formats/random_model.h"
#include "model/llama.h"
#include "tokenizer/tokenizer.h"
#include "train/backprop.h"
#include "train/train_testutil.h"

namespace pocket::train {
namespace {

using kernels::BackendKind;

TEST(InitNormalTest, DependsOnlyOnSeedNameAndIndex) {
  const std::vector<float> a = InitNormal(1, "blk.0.attn_q.weight", 1000, 0.02f);
  const std::vector<float> prefix = InitNormal(1, "blk.0.attn_q.weight", 10, 0.02f);
  EXPECT_EQ(0, std::memcmp(a.data(), prefix.data(), 10 * sizeof(float)));
  EXPECT_NE(a, InitNormal(2, "blk.0.attn_q.weight", 1000, 0.02f));
  EXPECT_NE(a, InitNormal(1, "blk.0.attn_k.weight", 1000, 0.02f));
  double mean = 0, var = 0;
  for (float x : a) mean += x;
  mean /= 1000;
  for (float x : a) var += (x - mean) * (x - mean);
  EXPECT_NEAR(std::sqrt(var / 1000), 0.02, 0.002);
  EXPECT_NEAR(mean, 0.0, 0.002);
}

TEST(ModelParamsTest, InitIsDeterministicWithNormsAtOne) {
  auto be = testing::MakeBackendOrDie(BackendKind::kCpu, 2);
  InitOptions init;
  init.seed = 42;
  auto a = ModelParams::Init(be, testing::TinyConfig(), init);
  auto b = ModelParams::Init(testing::MakeBackendOrDie(BackendKind::kCpu, 1), testing::TinyConfig(),
                             init);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(testing::AllValues(**a), testing::AllValues(**b));
  for (Param& p : (*a)->params()) {
    if (p.name.find("norm") == std::string::npos) continue;
    EXPECT_EQ((*a)->Values(p), std::vector<float>(p.size, 1.0f)) << p.name;
    EXPECT_FALSE(p.decay);
  }
  // Untied: embedding and output are different tensors; tied: one.
  EXPECT_EQ((*a)->params().size(), 1 + 2 * 9 + 2u);
  auto tied = ModelParams::Init(be, testing::TinyConfig(/*tied=*/true), init);
  ASSERT_TRUE(tied.ok());
  EXPECT_EQ((*tied)->params().size(), 1 + 2 * 9 + 1u);
  EXPECT_EQ(&(*tied)->embedding(), (*tied)->head().output.weight.get());
}

TEST(ModelParamsTest, ExportImportRoundTripsBitExactly) {
  auto be = testing::MakeBackendOrDie(BackendKind::kCpu, 1);
  auto a = ModelParams::Init(be, testing::TinyConfig(), InitOptions{});
  ASSERT_TRUE(a.ok());
  auto b = ModelParams::FromGguf(be, testing::ToGgufFile(**a), /*trainable=*/true);
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  EXPECT_EQ(testing::AllValues(**a), testing::AllValues(**b));
  EXPECT_EQ((*b)->config().d_model, 32);
  // The same parameters give the same file, byte for byte.
  auto wa = (*a)->ToGguf("x", nullptr), wb = (*b)->ToGguf("x", nullptr);
  ASSERT_TRUE(wa.ok() && wb.ok());
  EXPECT_EQ(*wa->Serialize(), *wb->Serialize());
}

// The exported file runs in the inference model (what `pocket run` loads) and gives the
// loss the training forward computed: one forward pass, two users.
TEST(ModelParamsTest, ExportedModelComputesTheTrainingLoss) {
  for (bool tied : {false, true}) {
    auto be = testing::MakeBackendOrDie(BackendKind::kCpu, 1);
    InitOptions init;
    init.std = 0.3f;
    auto params = ModelParams::Init(be, testing::TinyConfig(tied), init);
    ASSERT_TRUE(params.ok());
    const testing::HostBatch hb = testing::RepetitiveBatch(1, 12, 64, 9, 2);
    auto bp = Backprop::Create(params->get(), 12);
    ASSERT_TRUE(bp.ok());
    double sum = 0;
    size_t n = 0;
    ASSERT_TRUE((*bp)->Forward(hb.batch(), 1.0f, &sum, &n).ok());
    ASSERT_EQ(n, 12u);

    model::LoadOptions lo;
    lo.threads = 1;
    auto m = model::LlamaModel::FromGguf(testing::ToGgufFile(**params), lo);
    ASSERT_TRUE(m.ok()) << m.status().ToString();
    auto cache = (*m)->NewKvCache(12, tensor::DType::kF32);
    ASSERT_TRUE(cache.ok());
    model::BatchEntry e{&*cache, hb.tokens, 0, true};
    std::vector<float> logits;
    ASSERT_TRUE((*m)->Forward({&e, 1}, &logits).ok());
    double expected = 0;
    for (size_t t = 0; t < 12; ++t) {
      const float* row = logits.data() + t * 64;
      double mx = row[0], z = 0;
      for (int i = 0; i < 64; ++i) mx = std::max(mx, static_cast<double>(row[i]));
      for (int i = 0; i < 64; ++i) z += std::exp(row[i] - mx);
      expected += std::log(z) + mx - row[hb.targets[t]];
    }
    EXPECT_NEAR(sum, expected, 1e-4 * std::abs(expected)) << "tied " << tied;
  }
}

// With a vocabulary, the written checkpoint is a complete model: what `pocket run` opens
// (tokenizer and model from the one file).
TEST(ModelParamsTest, WrittenCheckpointWithVocabLoadsAsAModel) {
  auto be = testing::MakeBackendOrDie(BackendKind::kCpu, 1);
  model::LlamaConfig c = testing::TinyConfig(/*tied=*/true);
  c.vocab_size = 512;  // the synthetic byte-level vocabulary's minimum
  auto params = ModelParams::Init(be, c, InitOptions{});
  ASSERT_TRUE(params.ok());
  const formats::GgufVocab vocab = formats::SyntheticVocab(512, formats::ChatStyle::kChatMl);
  auto w = (*params)->ToGguf("tiny-trained", &vocab, tensor::DType::kQ8_0);
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  const std::string path = ::testing::TempDir() + "/pocket_train_export.gguf";
  ASSERT_TRUE(w->Write(path).ok());
  auto file = formats::GgufFile::Open(path);
  ASSERT_TRUE(file.ok());
  auto tok = tokenizer::Tokenizer::FromGguf(*file);
  ASSERT_TRUE(tok.ok()) << tok.status().ToString();
  const std::vector<int32_t> ids = tok->Encode("hello world", false, false);
  ASSERT_FALSE(ids.empty());
  auto m = model::LlamaModel::Load(path, {.threads = 1});
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  auto cache = (*m)->NewKvCache(static_cast<int>(ids.size()), tensor::DType::kF32);
  ASSERT_TRUE(cache.ok());
  model::BatchEntry e{&*cache, ids, 0, false};
  std::vector<float> logits;
  ASSERT_TRUE((*m)->Forward({&e, 1}, &logits).ok());
  ASSERT_EQ(logits.size(), 512u);
  for (float x : logits) ASSERT_TRUE(std::isfinite(x));
  std::remove(path.c_str());
}

TEST(ModelParamsTest, RejectsBadConfig) {
  auto be = testing::MakeBackendOrDie(BackendKind::kCpu, 1);
  model::LlamaConfig c = testing::TinyConfig();
  c.num_kv_heads = 3;
  EXPECT_FALSE(ModelParams::Init(be, c, InitOptions{}).ok());
  InitOptions bad;
  bad.std = 0;
  EXPECT_FALSE(ModelParams::Init(be, testing::TinyConfig(), bad).ok());
}

}  // namespace
}  // namespace pocket::train
