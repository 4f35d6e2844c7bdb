// TrainableLora's files: the GGUF adapter in llama.cpp's layout, and the merged model
// (W + scale B A) computing what the base with its adapters computes.
#include "train/lora.h"

#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "base/check.h"
#include "formats/gguf.h"
#include "train/backprop.h"
#include "train/train_testutil.h"

namespace pocket::train {
namespace {

using kernels::BackendKind;

struct Adapted {
  std::unique_ptr<ModelParams> base;
  std::vector<std::shared_ptr<TrainableLora>> adapters;
};

Adapted AdaptedTiny(kernels::BackendKind kind, const formats::GgufFile& file) {
  auto be = testing::MakeBackendOrDie(kind, 1);
  Adapted out;
  auto base = ModelParams::FromGguf(be, file, /*trainable=*/false);
  PK_CHECK(base.ok());
  out.base = std::move(*base);
  auto attach = [&](model::Linear& l, const std::string& name, uint64_t seed) {
    auto a = TrainableLora::Create(be, name, l.in_features(), l.out_features(), 4, 16.0f, 16, seed,
                                   0.2f, 0.2f);
    PK_CHECK(a.ok());
    l.adapters.push_back(*a);
    out.adapters.push_back(*a);
  };
  attach(out.base->layers()[0].wq, "blk.0.attn_q.weight", 1);
  attach(out.base->layers()[1].wv, "blk.1.attn_v.weight", 2);
  attach(out.base->layers()[1].down, "blk.1.ffn_down.weight", 3);
  return out;
}

double Loss(ModelParams* params, const Batch& batch) {
  auto bp = Backprop::Create(params, batch.num_seqs * batch.seq_len);
  PK_CHECK(bp.ok());
  double sum = 0;
  size_t n = 0;
  PK_CHECK((*bp)->Forward(batch, 1.0f, &sum, &n).ok());
  return sum / static_cast<double>(n);
}

formats::GgufFile TinyBase() {
  auto be = testing::MakeBackendOrDie(BackendKind::kCpu, 1);
  InitOptions init;
  init.std = 0.2f;
  auto p = ModelParams::Init(be, testing::TinyConfig(/*tied=*/true), init);
  PK_CHECK(p.ok());
  return testing::ToGgufFile(**p);
}

TEST(LoraFilesTest, AdapterGgufHasLlamaCppLayout) {
  const formats::GgufFile base = TinyBase();
  Adapted a = AdaptedTiny(BackendKind::kCpu, base);
  auto w = LoraAdapterGguf("llama", a.adapters);
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  auto f = formats::GgufFile::FromBytes(*w->Serialize(), "adapter.gguf");
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ(*f->GetString("general.type"), "adapter");
  EXPECT_EQ(*f->GetString("adapter.type"), "lora");
  EXPECT_EQ(*f->GetString("general.architecture"), "llama");
  EXPECT_FLOAT_EQ(static_cast<float>(*f->GetFloat("adapter.lora.alpha")), 16.0f);
  ASSERT_EQ(f->tensors().size(), 6u);
  const formats::TensorInfo* la = f->FindTensor("blk.1.attn_v.weight.lora_a");
  const formats::TensorInfo* lb = f->FindTensor("blk.1.attn_v.weight.lora_b");
  ASSERT_TRUE(la != nullptr && lb != nullptr);
  // llama.cpp: a.ne[0] == W.ne[0] (in), b.ne[1] == W.ne[1] (out), a.ne[1] == b.ne[0] (rank).
  EXPECT_EQ(la->ne, (std::vector<uint64_t>{32, 4}));
  EXPECT_EQ(lb->ne, (std::vector<uint64_t>{4, 16}));
}

TEST(LoraFilesTest, MergedModelComputesWhatTheAdaptedBaseComputes) {
  const formats::GgufFile base = TinyBase();
  Adapted a = AdaptedTiny(BackendKind::kCpu, base);
  const testing::HostBatch hb = testing::RepetitiveBatch(2, 8, 64, 7, 1);
  const double adapted = Loss(a.base.get(), hb.batch());
  auto merged = MergeLora(base, a.adapters);
  ASSERT_TRUE(merged.ok()) << merged.status().ToString();
  auto file = formats::GgufFile::FromBytes(*merged->Serialize(), "merged.gguf");
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  auto m = ModelParams::FromGguf(testing::MakeBackendOrDie(BackendKind::kCpu, 1), *file, false);
  ASSERT_TRUE(m.ok());
  const double merged_loss = Loss(m->get(), hb.batch());
  EXPECT_NEAR(merged_loss, adapted, 1e-5 * adapted);
  // And the adapters do change the model.
  auto plain = ModelParams::FromGguf(testing::MakeBackendOrDie(BackendKind::kCpu, 1), base, false);
  ASSERT_TRUE(plain.ok());
  EXPECT_GT(std::abs(Loss(plain->get(), hb.batch()) - adapted), 1e-4);
}

TEST(LoraFilesTest, MergeRejectsAnAdapterForAMissingMatrix) {
  const formats::GgufFile base = TinyBase();
  auto be = testing::MakeBackendOrDie(BackendKind::kCpu, 1);
  auto a = TrainableLora::Create(be, "blk.9.attn_q.weight", 32, 32, 2, 2.0f, 4, 1, 0.1f);
  ASSERT_TRUE(a.ok());
  std::vector<std::shared_ptr<TrainableLora>> v = {*a};
  EXPECT_FALSE(MergeLora(base, v).ok());
}

TEST(LoraFilesTest, BackpropRefusesAnAdapterTooSmallForTheBatch) {
  const formats::GgufFile base = TinyBase();
  Adapted a = AdaptedTiny(BackendKind::kCpu, base);  // adapters for 16 tokens
  EXPECT_TRUE(Backprop::Create(a.base.get(), 16).ok());
  EXPECT_FALSE(Backprop::Create(a.base.get(), 17).ok());
}

}  // namespace
}  // namespace pocket::train
