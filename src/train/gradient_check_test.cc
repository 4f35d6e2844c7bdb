// Whole-model gradient checks on the reference backend: the backward pass (Backprop) against
// central finite differences of the training forward's loss, for every trainable tensor of
// a tiny GQA model (full training, tied and untied) and for LoRA adapters on every matrix
// kind of a frozen base. Errors are computed in double.
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "train/backprop.h"
#include "train/lora.h"
#include "train/params.h"
#include "train/train_testutil.h"

namespace pocket::train {
namespace {

using kernels::BackendKind;

std::vector<float> Get(kernels::Backend& be, const Param& p) {
  std::vector<float> v(p.size);
  be.Download(be.TrainableData(*p.weight), v.data(), p.size * sizeof(float));
  return v;
}
void Set(kernels::Backend& be, const Param& p, const std::vector<float>& v) {
  be.Upload(be.TrainableData(*p.weight), v.data(), v.size() * sizeof(float));
}

double Loss(Backprop& bp, const Batch& batch) {
  double sum = 0.0;
  size_t n = 0;
  const Status s = bp.Forward(batch, 1.0f, &sum, &n);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return sum / static_cast<double>(n);
}

// For each Param: the analytic gradient g against the central difference of the loss along
// two unit directions, g/|g| (the sharpest test of g's magnitude and direction) and a random
// one; the error is |fd - g.u| (in double) against 1e-3 |g|. The step balances the two errors of
// the quotient: the float32 loss (~1e-6 absolute) divided by h, and the truncation h^2 L'''/6,
// large along the gradient of these sharp models (measured: errors up to 2.6e-2 at h = 1e-2,
// 2.4e-3 at 3e-3, 1.6e-3 at 1e-3, 4.6e-4 at 5e-4). A wrong term gives errors of 1e-1 and up.
void CheckGradients(kernels::Backend& be, Backprop& bp, const Batch& batch,
                    const std::vector<Param*>& params) {
  size_t count = 0;
  for (const Param* p : params) be.Fill(p->grad.ref(), p->size, 0.0f);
  {
    double sum = 0.0;
    ASSERT_TRUE(bp.Forward(batch, 1.0f, &sum, &count).ok());
  }
  // Re-run with the mean's scale (the loss is the mean over counted targets).
  double sum = 0.0;
  ASSERT_TRUE(bp.Forward(batch, 1.0f / static_cast<float>(count), &sum, &count).ok());
  bp.Backward();
  const double h = 5e-4;
  for (const Param* p : params) {
    std::vector<float> g(p->size);
    be.Download(p->grad.ref(), g.data(), p->size * sizeof(float));
    double gnorm = 0.0;
    for (float x : g) gnorm += static_cast<double>(x) * x;
    gnorm = std::sqrt(gnorm);
    ASSERT_GT(gnorm, 1e-6) << p->name << " has no gradient";
    const std::vector<float> theta = Get(be, *p);
    std::vector<float> random = InitNormal(99, p->name, p->size, 1.0f);
    double rnorm = 0.0;
    for (float x : random) rnorm += static_cast<double>(x) * x;
    rnorm = std::sqrt(rnorm);
    for (int dir = 0; dir < 2; ++dir) {
      // g.u over the step actually taken (theta +- h u rounded to float), in double.
      std::vector<float> plus(p->size), minus(p->size);
      double gu = 0.0;
      for (size_t i = 0; i < p->size; ++i) {
        const double u = dir == 0 ? g[i] / gnorm : random[i] / rnorm;
        plus[i] = static_cast<float>(theta[i] + h * u);
        minus[i] = static_cast<float>(theta[i] - h * u);
        gu += static_cast<double>(g[i]) * (static_cast<double>(plus[i]) - minus[i]) / (2 * h);
      }
      Set(be, *p, plus);
      const double lp = Loss(bp, batch);
      Set(be, *p, minus);
      const double lm = Loss(bp, batch);
      Set(be, *p, theta);
      const double fd = (lp - lm) / (2 * h);
      // Relative to |g|, with an absolute floor for small gradients (the biases'): the mean
      // loss of ~30 float32 row losses is good to ~1e-7, i.e. ~1e-4 after dividing by 2h
      // (measured up to 1.7e-4).
      EXPECT_LT(std::abs(fd - gu), 1e-3 * gnorm + 3e-4)
          << p->name << (dir == 0 ? " along its gradient" : " along a random u")
          << ": finite difference " << fd << ", analytic " << gu << ", |g| " << gnorm;
    }
  }
}

void CheckFullModel(const model::LlamaConfig& config) {
  auto be = testing::MakeBackendOrDie(BackendKind::kReference, 1);
  InitOptions init;
  init.seed = 7;
  init.std = 0.3f;  // sharp logits: gradients well above the finite differences' noise
  auto params = ModelParams::Init(be, config, init);
  ASSERT_TRUE(params.ok()) << params.status().ToString();
  // Norm weights away from 1 so their gradients are generic.
  for (Param& p : (*params)->params()) {
    if (p.decay) continue;
    std::vector<float> v = InitNormal(3, p.name, p.size, 0.2f);
    for (float& x : v) x += 1.0f;
    (*params)->SetValues(p, v);
  }
  const testing::HostBatch hb = testing::RepetitiveBatch(2, 8, 64, 11, 0, /*skip=*/5);
  auto bp = Backprop::Create(params->get(), 16);
  ASSERT_TRUE(bp.ok());
  std::vector<Param*> all;
  for (Param& p : (*params)->params()) all.push_back(&p);
  CheckGradients(*be, **bp, hb.batch(), all);
}

TEST(GradientCheckTest, FullModelMatchesFiniteDifferences) {
  CheckFullModel(testing::TinyConfig(/*tied=*/false));
}

TEST(GradientCheckTest, TiedEmbeddingMatchesFiniteDifferences) {
  CheckFullModel(testing::TinyConfig(/*tied=*/true));
}

// Qwen2: Q/K/V biases (their gradients are SumRows of dq, dk, dv) and NeoX RoPE.
TEST(GradientCheckTest, Qwen2BiasesAndNeoxRopeMatchFiniteDifferences) {
  model::LlamaConfig c = testing::TinyConfig(/*tied=*/true);
  c.arch = "qwen2";
  c.qkv_bias = true;
  c.rope_neox = true;
  CheckFullModel(c);
}

TEST(GradientCheckTest, LoraOnEveryMatrixKindMatchesFiniteDifferences) {
  auto be = testing::MakeBackendOrDie(BackendKind::kReference, 1);
  InitOptions init;
  init.seed = 5;
  init.std = 0.3f;
  const model::LlamaConfig c = testing::TinyConfig(/*tied=*/true);
  auto source = ModelParams::Init(be, c, init);
  ASSERT_TRUE(source.ok());
  auto base = ModelParams::FromGguf(be, testing::ToGgufFile(**source), /*trainable=*/false);
  ASSERT_TRUE(base.ok()) << base.status().ToString();
  EXPECT_TRUE((*base)->params().empty());
  // One adapter per matrix kind, spread over both layers; B random so A has a gradient.
  const size_t rows = 16;
  std::vector<std::shared_ptr<TrainableLora>> adapters;
  std::vector<Param*> trained;
  int seed = 1;
  auto attach = [&](model::Linear& l, const std::string& name) {
    auto a = TrainableLora::Create(be, name, l.in_features(), l.out_features(), 4, 8.0f, rows,
                                   static_cast<uint64_t>(seed++), 0.3f, 0.3f);
    ASSERT_TRUE(a.ok());
    l.adapters.push_back(*a);
    trained.push_back(&(*a)->a());
    trained.push_back(&(*a)->b());
    adapters.push_back(*a);
  };
  auto& L = (*base)->layers();
  attach(L[0].wq, "blk.0.attn_q.weight");
  attach(L[1].wk, "blk.1.attn_k.weight");
  attach(L[0].wv, "blk.0.attn_v.weight");
  attach(L[1].wo, "blk.1.attn_output.weight");
  attach(L[0].gate, "blk.0.ffn_gate.weight");
  attach(L[1].up, "blk.1.ffn_up.weight");
  attach(L[0].down, "blk.0.ffn_down.weight");
  const testing::HostBatch hb = testing::RepetitiveBatch(2, 8, 64, 11, 3, /*skip=*/4);
  auto bp = Backprop::Create(base->get(), rows);
  ASSERT_TRUE(bp.ok());
  CheckGradients(*be, **bp, hb.batch(), trained);
}

}  // namespace
}  // namespace pocket::train
