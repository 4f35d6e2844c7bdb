// Trainer: the loss falls on a repetitive corpus, runs are bit-identical for 1 and 2 threads
// and when repeated, Evaluate changes nothing, micro-batching keeps the loss, the schedule,
// and LoRA training on a frozen (quantized) base.
#include "train/trainer.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "base/check.h"
#include "train/lora.h"
#include "train/train_testutil.h"

namespace pocket::train {
namespace {

using kernels::BackendKind;

OptimizerOptions Options(int64_t steps) {
  OptimizerOptions o;
  o.lr = 1e-2f;
  o.min_lr = 1e-3f;
  o.warmup_steps = 2;
  o.total_steps = steps;
  o.weight_decay = 0.01f;
  o.clip_norm = 1.0f;
  return o;
}

struct TrainRun {
  std::vector<double> losses;
  std::vector<float> values;  // every parameter after training
  std::string gguf;           // the exported checkpoint
};

TrainRun TrainTiny(int threads, int steps, size_t micro_seqs = 2) {
  auto be = testing::MakeBackendOrDie(BackendKind::kCpu, threads);
  InitOptions init;
  init.seed = 3;
  init.std = 0.1f;
  auto params = ModelParams::Init(be, testing::TinyConfig(/*tied=*/true), init);
  PK_CHECK(params.ok());
  auto trainer = Trainer::Create(params->get(), Trainer::AllParams(params->get()), Options(steps),
                                 micro_seqs, 16);
  PK_CHECK(trainer.ok());
  TrainRun r;
  for (int s = 0; s < steps; ++s) {
    const testing::HostBatch hb = testing::RepetitiveBatch(4, 16, 64, 12, s * 5);
    auto st = (*trainer)->Step(hb.batch());
    EXPECT_TRUE(st.ok()) << st.status().ToString();
    r.losses.push_back(st.ok() ? st->loss : 0.0);
  }
  r.values = testing::AllValues(**params);
  auto w = (*params)->ToGguf("tiny", nullptr);
  PK_CHECK(w.ok());
  r.gguf = *w->Serialize();
  return r;
}

TEST(TrainerTest, LossFallsOnARepetitiveCorpus) {
  const TrainRun r = TrainTiny(2, 40);
  EXPECT_GT(r.losses.front(), 3.5);  // about log(64) at the start
  EXPECT_LT(r.losses.back(), 0.5 * r.losses.front());
}

TEST(TrainerTest, ParametersAreBitIdenticalForOneAndTwoThreadsAndWhenRepeated) {
  const TrainRun one = TrainTiny(1, 6), two = TrainTiny(2, 6), again = TrainTiny(2, 6);
  ASSERT_EQ(one.values.size(), two.values.size());
  EXPECT_EQ(0,
            std::memcmp(one.values.data(), two.values.data(), one.values.size() * sizeof(float)));
  EXPECT_EQ(0,
            std::memcmp(two.values.data(), again.values.data(), two.values.size() * sizeof(float)));
  EXPECT_EQ(one.losses, two.losses);
  EXPECT_TRUE(one.gguf == two.gguf && two.gguf == again.gguf);
}

TEST(TrainerTest, MicroBatchingKeepsTheLoss) {
  const TrainRun whole = TrainTiny(1, 3, /*micro_seqs=*/4),
                 split = TrainTiny(1, 3, /*micro_seqs=*/1);
  // The first step's loss is of the same parameters; later ones differ by the gradient
  // summation order only.
  EXPECT_NEAR(whole.losses[0], split.losses[0], 1e-6 * whole.losses[0]);
  for (size_t i = 1; i < whole.losses.size(); ++i) {
    EXPECT_NEAR(whole.losses[i], split.losses[i], 1e-3 * whole.losses[i]);
  }
}

TEST(TrainerTest, EvaluateChangesNothing) {
  auto be = testing::MakeBackendOrDie(BackendKind::kCpu, 2);
  auto params = ModelParams::Init(be, testing::TinyConfig(), InitOptions{});
  ASSERT_TRUE(params.ok());
  auto trainer =
      Trainer::Create(params->get(), Trainer::AllParams(params->get()), Options(10), 2, 8);
  ASSERT_TRUE(trainer.ok());
  const testing::HostBatch train = testing::RepetitiveBatch(2, 8, 64, 5, 0);
  const testing::HostBatch held_out = testing::RepetitiveBatch(3, 8, 64, 5, 100, 3);
  ASSERT_TRUE((*trainer)->Step(train.batch()).ok());
  auto snapshot = [&] {
    std::vector<float> all = testing::AllValues(**params);
    for (Param& p : (*params)->params()) {
      std::vector<float> m(p.size), v(p.size), g(p.size);
      be->Download(p.m.ref(), m.data(), p.size * 4);
      be->Download(p.v.ref(), v.data(), p.size * 4);
      all.insert(all.end(), m.begin(), m.end());
      all.insert(all.end(), v.begin(), v.end());
    }
    return all;
  };
  const std::vector<float> before = snapshot();
  auto l1 = (*trainer)->Evaluate(held_out.batch());
  auto l2 = (*trainer)->Evaluate(held_out.batch());
  ASSERT_TRUE(l1.ok() && l2.ok());
  EXPECT_EQ(*l1, *l2);
  EXPECT_EQ((*trainer)->step(), 1);
  const std::vector<float> after = snapshot();
  EXPECT_EQ(0, std::memcmp(before.data(), after.data(), before.size() * sizeof(float)));
}

TEST(TrainerTest, RejectsBadBatchesAndOptions) {
  auto be = testing::MakeBackendOrDie(BackendKind::kCpu, 1);
  auto params = ModelParams::Init(be, testing::TinyConfig(), InitOptions{});
  ASSERT_TRUE(params.ok());
  OptimizerOptions bad = Options(10);
  bad.min_lr = 1.0f;
  EXPECT_FALSE(Trainer::Create(params->get(), Trainer::AllParams(params->get()), bad, 2, 8).ok());
  EXPECT_FALSE(Trainer::Create(params->get(), {}, Options(10), 2, 8).ok());
  auto t = Trainer::Create(params->get(), Trainer::AllParams(params->get()), Options(10), 2, 8);
  ASSERT_TRUE(t.ok());
  testing::HostBatch b = testing::RepetitiveBatch(2, 4, 64, 5, 0);  // wrong seq_len
  EXPECT_FALSE((*t)->Step(b.batch()).ok());
  b = testing::RepetitiveBatch(1, 8, 64, 5, 0);
  b.tokens[3] = 64;
  EXPECT_FALSE((*t)->Step(b.batch()).ok());
  b = testing::RepetitiveBatch(1, 8, 64, 5, 0, /*skip=*/1);  // no targets
  EXPECT_FALSE((*t)->Evaluate(b.batch()).ok());
}

// Resuming from the model's GGUF and the optimizer state ends with the bytes of a run that
// was not interrupted.
TEST(TrainerTest, ResumedRunEndsWithTheSameBytes) {
  const int steps = 5, stop = 2;
  const TrainRun straight = TrainTiny(2, steps);
  std::string model_file, state_file;
  {
    auto be = testing::MakeBackendOrDie(BackendKind::kCpu, 2);
    InitOptions init;
    init.seed = 3;
    init.std = 0.1f;
    auto params = ModelParams::Init(be, testing::TinyConfig(/*tied=*/true), init);
    ASSERT_TRUE(params.ok());
    auto t =
        Trainer::Create(params->get(), Trainer::AllParams(params->get()), Options(steps), 2, 16);
    ASSERT_TRUE(t.ok());
    for (int s = 0; s < stop; ++s) {
      const testing::HostBatch hb = testing::RepetitiveBatch(4, 16, 64, 12, s * 5);
      ASSERT_TRUE((*t)->Step(hb.batch()).ok());
    }
    model_file = *(*params)->ToGguf("tiny", nullptr)->Serialize();
    state_file = *(*t)->StateToGguf()->Serialize();
  }
  auto be = testing::MakeBackendOrDie(BackendKind::kCpu, 1);  // another thread count, too
  auto mf = formats::GgufFile::FromBytes(model_file, "model.gguf");
  auto sf = formats::GgufFile::FromBytes(state_file, "state.gguf");
  ASSERT_TRUE(mf.ok() && sf.ok());
  auto params = ModelParams::FromGguf(be, *mf, /*trainable=*/true);
  ASSERT_TRUE(params.ok());
  auto t = Trainer::Create(params->get(), Trainer::AllParams(params->get()), Options(steps), 2, 16);
  ASSERT_TRUE(t.ok());
  ASSERT_TRUE((*t)->LoadState(*sf).ok());
  EXPECT_EQ((*t)->step(), stop);
  for (int s = stop; s < steps; ++s) {
    const testing::HostBatch hb = testing::RepetitiveBatch(4, 16, 64, 12, s * 5);
    auto st = (*t)->Step(hb.batch());
    ASSERT_TRUE(st.ok());
    EXPECT_EQ(st->loss, straight.losses[static_cast<size_t>(s)]);
  }
  EXPECT_TRUE(*(*params)->ToGguf("tiny", nullptr)->Serialize() == straight.gguf);
  // A state for other parameters is refused.
  auto other = ModelParams::Init(be, testing::TinyConfig(/*tied=*/false), InitOptions{});
  ASSERT_TRUE(other.ok());
  auto t2 = Trainer::Create(other->get(), Trainer::AllParams(other->get()), Options(steps), 2, 16);
  ASSERT_TRUE(t2.ok());
  EXPECT_FALSE((*t2)->LoadState(*sf).ok());
}

TEST(LoraTargetsTest, ParsesTheListAndNamesABadEntry) {
  auto all = ParseLoraTargets("q,k,v,o,gate,up,down");
  ASSERT_TRUE(all.ok());
  EXPECT_TRUE(all->q && all->k && all->v && all->o && all->gate && all->up && all->down);
  auto some = ParseLoraTargets("v,q");
  ASSERT_TRUE(some.ok());
  EXPECT_TRUE(some->q && some->v && !some->k && !some->down);
  auto bad = ParseLoraTargets("q,ffn");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("'ffn'"), std::string::npos);
  EXPECT_FALSE(ParseLoraTargets("q,q").ok());
  EXPECT_FALSE(ParseLoraTargets("").ok());
}

TEST(LearningRateTest, WarmsUpLinearlyThenFollowsTheCosineToTheFloor) {
  OptimizerOptions o;
  o.lr = 1.0f;
  o.min_lr = 0.1f;
  o.warmup_steps = 4;
  o.total_steps = 14;
  EXPECT_FLOAT_EQ(LearningRate(o, 1), 0.25f);
  EXPECT_FLOAT_EQ(LearningRate(o, 4), 1.0f);
  EXPECT_NEAR(LearningRate(o, 9), 0.55f, 1e-6);  // halfway through the cosine
  EXPECT_FLOAT_EQ(LearningRate(o, 14), 0.1f);
  EXPECT_FLOAT_EQ(LearningRate(o, 100), 0.1f);
  for (int64_t s = 5; s < 14; ++s) EXPECT_LT(LearningRate(o, s + 1), LearningRate(o, s));
}

// LoRA on a frozen Q8_0 base (its input gradients dequantize block by block): the
// adapters change and the held-out loss falls; the base has no parameter to update.
TEST(LoraTrainingTest, AdaptersLearnOnAFrozenQuantizedBase) {
  auto be = testing::MakeBackendOrDie(BackendKind::kCpu, 2);
  model::LlamaConfig c = testing::TinyConfig(/*tied=*/true);
  InitOptions init;
  init.std = 0.1f;
  auto source = ModelParams::Init(be, c, init);
  ASSERT_TRUE(source.ok());
  auto base = ModelParams::FromGguf(be, testing::ToGgufFile(**source, tensor::DType::kQ8_0),
                                    /*trainable=*/false);
  ASSERT_TRUE(base.ok()) << base.status().ToString();
  const size_t seqs = 2, seq_len = 16;
  LoraOptions lo;
  lo.targets = *ParseLoraTargets("q,k,v,o,gate,up,down");
  lo.rank = 4;
  lo.alpha = 8.0f;
  lo.seed = 11;
  lo.max_tokens = seqs * seq_len;
  auto adapters = AttachLora(base->get(), lo);
  ASSERT_TRUE(adapters.ok()) << adapters.status().ToString();
  ASSERT_EQ(adapters->size(), 14u);
  EXPECT_EQ((*adapters)[3]->name(), "blk.0.attn_output.weight");
  const std::vector<Param*> trained = LoraParams(*adapters);
  OptimizerOptions o = Options(30);
  o.lr = 3e-2f;
  auto trainer = Trainer::Create(base->get(), trained, o, seqs, seq_len);
  ASSERT_TRUE(trainer.ok());
  const testing::HostBatch held_out = testing::RepetitiveBatch(2, seq_len, 64, 12, 500);
  auto before = (*trainer)->Evaluate(held_out.batch());
  ASSERT_TRUE(before.ok());
  const std::vector<float> a0 = [&] {
    std::vector<float> v(trained[0]->size);
    be->Download(be->TrainableData(*trained[0]->weight), v.data(), v.size() * 4);
    return v;
  }();
  for (int s = 0; s < 30; ++s) {
    const testing::HostBatch hb = testing::RepetitiveBatch(seqs, seq_len, 64, 12, s * 7);
    ASSERT_TRUE((*trainer)->Step(hb.batch()).ok());
  }
  auto after = (*trainer)->Evaluate(held_out.batch());
  ASSERT_TRUE(after.ok());
  EXPECT_LT(*after, 0.7 * *before);
  std::vector<float> a1(trained[0]->size);
  be->Download(be->TrainableData(*trained[0]->weight), a1.data(), a1.size() * 4);
  EXPECT_NE(a0, a1);
  EXPECT_TRUE((*base)->params().empty());  // the base has nothing to update
}

}  // namespace
}  // namespace pocket::train
