// The backward pass against PyTorch: loss and every gradient of a tiny Llama model (the
// committed testdata/train/tiny_llama.gguf, made by Pocket's own init and export) on a fixed
// batch (testdata/train/batch.json), against tests/golden/train/make_torch_grads.py's
// float32 run (testdata/train/golden.json, grads.f32). The golden was made with
// Debian 12's python3-torch (CPU, float32; see testdata/train/README.md); without it the
// comparison is skipped. Relative error max|ours - torch| / max|torch| per tensor, < 1e-4
// (the bar).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "base/check.h"
#include "base/file.h"
#include "train/backprop.h"
#include "train/params.h"
#include "train/train_testutil.h"

namespace pocket::train {
namespace {

using kernels::BackendKind;

std::string Path(const std::string& name) {
  return std::string(POCKET_SOURCE_DIR) + "/testdata/train/" + name;
}

// The fixture: TinyConfig(tied, SmolLM2-style) initialised with seed 2024, std 0.2 (logits
// far from uniform, so gradients are well above float32 noise), and its fixed batch.
std::string FixtureGguf() {
  auto be = testing::MakeBackendOrDie(BackendKind::kReference, 1);
  InitOptions init;
  init.seed = 2024;
  init.std = 0.2f;
  auto p = ModelParams::Init(be, testing::TinyConfig(/*tied=*/true), init);
  PK_CHECK(p.ok());
  // Norms away from 1, so their gradients are generic.
  for (Param& param : (*p)->params()) {
    if (param.decay) continue;
    std::vector<float> v = InitNormal(init.seed + 1, param.name, param.size, 0.2f);
    for (float& x : v) x += 1.0f;
    (*p)->SetValues(param, v);
  }
  auto w = (*p)->ToGguf("pocket-train-golden", nullptr);
  PK_CHECK(w.ok());
  return *w->Serialize();
}

testing::HostBatch FixtureBatch() { return testing::RepetitiveBatch(3, 12, 64, 10, 4, 7); }

std::string BatchJson(const testing::HostBatch& b) {
  nlohmann::json j;
  j["num_seqs"] = b.num_seqs;
  j["seq_len"] = b.seq_len;
  j["tokens"] = b.tokens;
  j["targets"] = b.targets;
  return j.dump() + "\n";
}

// Regenerates the fixture files when POCKET_WRITE_TRAIN_FIXTURES is set; otherwise checks
// that the committed ones are what Pocket makes today (init and export are deterministic).
TEST(GoldenGradsTest, FixtureIsWhatInitAndExportMake) {
  const std::string gguf = FixtureGguf(), batch = BatchJson(FixtureBatch());
  if (std::getenv("POCKET_WRITE_TRAIN_FIXTURES") != nullptr) {
    ASSERT_TRUE(WriteFileAtomic(Path("tiny_llama.gguf"), gguf).ok());
    ASSERT_TRUE(WriteFileAtomic(Path("batch.json"), batch).ok());
  }
  auto committed = ReadFile(Path("tiny_llama.gguf"));
  ASSERT_TRUE(committed.ok()) << committed.status().ToString();
  EXPECT_TRUE(*committed == gguf) << "testdata/train/tiny_llama.gguf differs from the export";
  auto committed_batch = ReadFile(Path("batch.json"));
  ASSERT_TRUE(committed_batch.ok());
  EXPECT_EQ(*committed_batch, batch);
}

class GoldenGradsBackendTest : public ::testing::TestWithParam<BackendKind> {};

TEST_P(GoldenGradsBackendTest, LossAndGradientsMatchPyTorch) {
  if (!std::filesystem::exists(Path("grads.f32"))) {
    GTEST_SKIP() << "no testdata/train/grads.f32 yet: run tests/golden/train/make_torch_grads.py "
                    "with PyTorch (testdata/train/README.md)";
  }
  auto json = ReadFile(Path("golden.json"));
  ASSERT_TRUE(json.ok());
  const nlohmann::json meta = nlohmann::json::parse(*json, nullptr, false);
  ASSERT_FALSE(meta.is_discarded());
  auto grads_bytes = ReadFile(Path("grads.f32"));
  ASSERT_TRUE(grads_bytes.ok());
  std::vector<float> golden(grads_bytes->size() / sizeof(float));
  std::memcpy(golden.data(), grads_bytes->data(), golden.size() * sizeof(float));

  auto file = formats::GgufFile::Open(Path("tiny_llama.gguf"));
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  auto params = ModelParams::FromGguf(testing::MakeBackendOrDie(GetParam(), 2), *file, true);
  ASSERT_TRUE(params.ok()) << params.status().ToString();
  const testing::HostBatch hb = FixtureBatch();
  auto bp = Backprop::Create(params->get(), hb.tokens.size());
  ASSERT_TRUE(bp.ok());
  size_t count = 0;
  for (int32_t t : hb.targets) count += t >= 0 ? 1 : 0;
  double sum = 0;
  ASSERT_TRUE((*bp)->Forward(hb.batch(), 1.0f / static_cast<float>(count), &sum, &count).ok());
  (*bp)->Backward();
  const double loss = sum / static_cast<double>(count), torch_loss = meta["loss"].get<double>();
  EXPECT_LT(std::abs(loss - torch_loss) / std::abs(torch_loss), 1e-4)
      << "loss " << loss << ", PyTorch " << torch_loss;

  const std::vector<Param>& ps = (*params)->params();
  ASSERT_EQ(meta["tensors"].size(), ps.size());
  size_t off = 0;
  double worst = 0;
  for (size_t i = 0; i < ps.size(); ++i) {
    ASSERT_EQ(meta["tensors"][i]["name"].get<std::string>(), ps[i].name);
    ASSERT_LE(off + ps[i].size, golden.size());
    std::vector<float> g(ps[i].size);
    (*params)->backend().Download(ps[i].grad.ref(), g.data(), g.size() * sizeof(float));
    double max_diff = 0, max_ref = 0;
    for (size_t j = 0; j < g.size(); ++j) {
      max_diff = std::max(max_diff, std::abs(static_cast<double>(g[j]) - golden[off + j]));
      max_ref = std::max(max_ref, std::abs(static_cast<double>(golden[off + j])));
    }
    const double rel = max_diff / max_ref;
    worst = std::max(worst, rel);
    EXPECT_LT(rel, 1e-4) << ps[i].name;
    off += ps[i].size;
  }
  EXPECT_EQ(off, golden.size());
  std::printf("[ measured ] %s backend vs PyTorch: loss rel err %.3g, worst gradient %.3g\n",
              std::string(kernels::BackendName(GetParam())).c_str(),
              std::abs(loss - torch_loss) / std::abs(torch_loss), worst);
}

INSTANTIATE_TEST_SUITE_P(Backends, GoldenGradsBackendTest,
                         ::testing::Values(BackendKind::kReference, BackendKind::kCpu));

}  // namespace
}  // namespace pocket::train
