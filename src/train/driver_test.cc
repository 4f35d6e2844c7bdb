// Tests of train/driver.h: RunRecipe's bytes do not depend on threads or on
// being stopped and resumed, checkpoints carry the provenance keys in order, a
// state of another recipe is refused; Finetune lowers the held-out loss and its
// adapter, loaded as llama.cpp's layout (model/lora_file.h), computes what the
// merged model computes.
#include "train/driver.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "base/check.h"
#include "base/file.h"
#include "formats/gguf.h"
#include "kernels/cpu/cpu.h"
#include "model/kv_cache.h"
#include "model/llama.h"
#include "model/lora_file.h"

namespace pocket::train {
namespace {

using ::testing::HasSubstr;

class TempDir {
 public:
  TempDir() {
    std::string templ = ::testing::TempDir() + "pocket_driver_XXXXXX";
    PK_CHECK(mkdtemp(templ.data()) != nullptr);
    path_ = templ;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string Write(const std::string& rel, const std::string& bytes) const {
    const std::string full = path_ + "/" + rel;
    std::filesystem::create_directories(std::filesystem::path(full).parent_path());
    std::ofstream(full, std::ios::binary) << bytes;
    return full;
  }

 private:
  std::string path_;
};

std::string Corpus(int variant) {
  const char* nouns[] = {"boat", "rose", "bell", "road", "bread", "gull", "net", "hive"};
  std::string s;
  for (int i = 0; i < 60; ++i) {
    s += "The " + std::string(nouns[(i + variant) % 8]) + " and the " +
         std::string(nouns[(i * 3 + variant) % 8]) + " went to the sea.\n";
    if (i % 10 == 9) s += "\n";
  }
  return s;
}

Recipe TinyRecipe(const TempDir& dir, const std::string& extra = "") {
  dir.Write("data/a.txt", Corpus(0));
  dir.Write("data/b.txt", Corpus(1));
  dir.Write("data/c.txt", Corpus(2));
  const std::string text = R"(
[model]
vocab_size = 290
d_model = 16
n_layers = 1
n_heads = 2
d_ff = 32
context = 32
[data]
paths = ["data"]
validation_fraction = 0.3
seq_len = 16
max_document_bytes = 512
[training]
steps = 4
batch_size = 2
warmup_steps = 1
seed = 3
[checkpoint]
interval = 2
quantize = "q8_0"
)" + extra;
  auto r = ParseRecipe(text, dir.path() + "/tiny.toml");
  PK_CHECK(r.ok());
  return std::move(*r);
}

std::string Bytes(const std::string& path) {
  auto b = ReadFile(path);
  PK_CHECK(b.ok());
  return std::move(*b);
}

TEST(RunRecipeTest, SameBytesForOneAndTwoThreadsWithProvenanceKeysInOrder) {
  TempDir dir;
  const Recipe r = TinyRecipe(dir);
  TrainRunOptions o;
  o.threads = 1;
  o.output = dir.path() + "/t1/m.gguf";
  auto a = RunRecipe(r, o);
  ASSERT_TRUE(a.ok()) << a.status().message();
  EXPECT_TRUE(a->finished);
  o.threads = 2;
  o.output = dir.path() + "/t2/m.gguf";
  auto b = RunRecipe(r, o);
  ASSERT_TRUE(b.ok()) << b.status().message();
  EXPECT_EQ(a->sha256, b->sha256);
  EXPECT_EQ(Bytes(a->output), Bytes(b->output));
  EXPECT_EQ(Bytes(dir.path() + "/t1/m.ckpt.gguf"), Bytes(dir.path() + "/t2/m.ckpt.gguf"));

  auto f = formats::GgufFile::Open(a->output);
  ASSERT_TRUE(f.ok());
  std::vector<std::string> keys;
  for (const auto& kv : f->metadata()) {
    if (kv.key.starts_with("pocket.")) keys.emplace_back(kv.key);
  }
  EXPECT_THAT(keys,
              ::testing::ElementsAre("pocket.recipe_sha256", "pocket.data_sha256", "pocket.seed",
                                     "pocket.tool_version", "pocket.train.step",
                                     "pocket.parent_sha256", "pocket.quantize.type"));
  EXPECT_EQ(*f->GetString("pocket.recipe_sha256"), RecipeSha256(r));
  EXPECT_EQ(*f->GetString("pocket.data_sha256"), a->data_hash);
  EXPECT_EQ(*f->GetString("pocket.parent_sha256"), *FileSha256(dir.path() + "/t1/m.ckpt.gguf"));
}

TEST(RunRecipeTest, StoppedAndResumedRunEndsWithTheSameBytes) {
  TempDir dir;
  const Recipe r = TinyRecipe(dir);
  TrainRunOptions o;
  o.threads = 1;
  o.output = dir.path() + "/full/m.gguf";
  auto full = RunRecipe(r, o);
  ASSERT_TRUE(full.ok()) << full.status().message();
  o.output = dir.path() + "/cut/m.gguf";
  o.stop_after = 3;  // between checkpoints (interval 2): the stop writes its own
  auto cut = RunRecipe(r, o);
  ASSERT_TRUE(cut.ok()) << cut.status().message();
  EXPECT_FALSE(cut->finished);
  EXPECT_EQ(cut->step, 3);
  EXPECT_FALSE(std::filesystem::exists(o.output));
  o.stop_after = 0;
  o.resume = true;
  o.threads = 2;
  auto resumed = RunRecipe(r, o);
  ASSERT_TRUE(resumed.ok()) << resumed.status().message();
  EXPECT_EQ(resumed->resumed_from, 3);
  EXPECT_EQ(resumed->sha256, full->sha256);
  // The log holds every step once (the resumed run kept the lines up to its checkpoint), and
  // the loss curve is drawn beside it.
  const CheckpointPaths cp = CheckpointPathsFor(o.output);
  const std::string log = Bytes(cp.log);
  EXPECT_EQ(std::count(log.begin(), log.end(), '\n'), 4);
  EXPECT_THAT(log, HasSubstr("{\"step\":3,"));
  EXPECT_THAT(log, HasSubstr("{\"step\":4,"));
  EXPECT_THAT(Bytes(cp.svg), HasSubstr("<svg"));
  // Resuming a finished run writes the same output again.
  auto again = RunRecipe(r, o);
  ASSERT_TRUE(again.ok()) << again.status().message();
  EXPECT_EQ(again->sha256, full->sha256);
}

TEST(RunRecipeTest, StateOfAnotherRecipeIsRefusedAndAnotherSeedChangesTheBytes) {
  TempDir dir;
  const Recipe r = TinyRecipe(dir);
  TrainRunOptions o;
  o.output = dir.path() + "/m.gguf";
  auto first = RunRecipe(r, o);
  ASSERT_TRUE(first.ok());
  Recipe other = r;
  other.training.seed = 4;
  o.resume = true;
  auto refused = RunRecipe(other, o);
  ASSERT_FALSE(refused.ok());
  EXPECT_THAT(refused.status().message(), HasSubstr("another recipe"));
  o.resume = false;
  auto second = RunRecipe(other, o);
  ASSERT_TRUE(second.ok());
  EXPECT_NE(second->sha256, first->sha256);
}

TEST(FinetuneTest, LowersHeldOutLossAndAdapterFileComputesWhatTheMergedModelDoes) {
  TempDir dir;
  Recipe r = TinyRecipe(dir);
  r.checkpoint.quantize = "f32";
  TrainRunOptions o;
  o.output = dir.path() + "/base.gguf";
  auto base = RunRecipe(r, o);
  ASSERT_TRUE(base.ok()) << base.status().message();
  for (int i = 0; i < 6; ++i) {
    dir.Write("notes/n" + std::to_string(i) + ".md",
              "Meeting " + std::to_string(i) + ": buy a rope for the bell. Owner: Eva.\n");
  }
  FinetuneOptions f;
  f.base = base->output;
  f.data = dir.path() + "/notes";
  f.out = dir.path() + "/a.gguf";
  f.merge = dir.path() + "/merged.gguf";
  f.steps = 20;
  f.lr = 1e-2;
  f.rank = 2;
  f.batch = 2;
  f.seq_len = 16;
  f.threads = 2;
  auto res = Finetune(f);
  ASSERT_TRUE(res.ok()) << res.status().message();
  EXPECT_LT(res->validation_loss_after, res->validation_loss_before);
  EXPECT_LT(res->train_loss_after, res->train_loss_before);
  EXPECT_EQ(res->num_matrices, 7u);

  // Base + adapter file vs merged model: the same logits up to float rounding.
  auto with = model::LlamaModel::Load(base->output);
  ASSERT_TRUE(with.ok());
  int n = 0;
  ASSERT_TRUE(model::AttachLoraFile(**with, f.out, 1.0f, &n).ok());
  EXPECT_EQ(n, 7);
  auto merged = model::LlamaModel::Load(f.merge);
  auto plain = model::LlamaModel::Load(base->output);
  ASSERT_TRUE(merged.ok() && plain.ok());
  auto logits = [](model::LlamaModel& m) {
    auto cache = m.NewKvCache(16, tensor::DType::kF32);
    PK_CHECK(cache.ok());
    const std::vector<int32_t> tokens = {40, 41, 42, 43, 44};
    model::BatchEntry e{&*cache, tokens, 0, true};
    std::vector<float> out;
    PK_CHECK(m.Forward(std::span<model::BatchEntry>(&e, 1), &out).ok());
    return out;
  };
  const auto lw = logits(**with), lm = logits(**merged), lp = logits(**plain);
  double max_diff = 0, max_change = 0;
  for (size_t i = 0; i < lw.size(); ++i) {
    max_diff = std::max(max_diff, static_cast<double>(std::fabs(lw[i] - lm[i])));
    max_change = std::max(max_change, static_cast<double>(std::fabs(lw[i] - lp[i])));
  }
  EXPECT_LT(max_diff, 1e-4);
  EXPECT_GT(max_change, 1e-3);

  // An adapter that does not fit names the adapter file.
  auto wrong = model::LlamaModel::Load(base->output);
  ASSERT_TRUE(wrong.ok());
  const Status bad = model::AttachLoraFile(**wrong, base->output);
  EXPECT_THAT(bad.message(), HasSubstr("LoRA adapter " + base->output + ": not a LoRA adapter"));
}

TEST(FinetuneTest, BadOptionsNameTheFlag) {
  FinetuneOptions f;
  f.rank = 0;
  EXPECT_THAT(Finetune(f).status().message(), HasSubstr("--lora-rank"));
  f.rank = 4;
  f.targets = "q,x";
  EXPECT_THAT(Finetune(f).status().message(), HasSubstr("--targets"));
}


// The digest of TinyRecipe's checkpoint, pinned: the same bytes from the gcc release build
// and the clang sanitizer build (CI runs this test in both), on AVX2 and AVX-512 machines.
// A change to the training math changes it on purpose: then record the new digest here and
// retrain models/default.gguf (recipes/default.toml's [repro] sha256 changes with it).
TEST(RunRecipeTest, TinyRecipeGivesThePinnedDigestWhateverTheCompilerOrIsa) {
  TempDir dir;
  const Recipe r = TinyRecipe(dir);
  TrainRunOptions o;
  o.threads = 2;
  o.output = dir.path() + "/m.gguf";
  auto a = RunRecipe(r, o);
  ASSERT_TRUE(a.ok()) << a.status().message();
  EXPECT_EQ(a->sha256, "0e32e7ef32d264166f5fec14185e81d5a988e678f2033366742bb6f3ffe48dd2");
}

// Runs body(dir) once per compiled x86 target with FMA (AVX2, AVX-512) and expects the
// same string from each.
template <typename F>
void ExpectSameOnEveryFmaTarget(const F& body) {
  std::string first, first_name;
  for (int64_t target : kernels::cpu::CompiledTargets()) {
    const std::string name = kernels::cpu::TargetNameOf(target);
    if (name != "AVX3" && name != "AVX2" && name != "AVX3_ZEN4" && name != "AVX3_SPR") continue;
    kernels::cpu::SetTargetForTest(target);
    const std::string got = body(name);
    kernels::cpu::SetTargetForTest(0);
    if (first_name.empty()) {
      first = got;
      first_name = name;
    } else {
      EXPECT_EQ(got, first) << name << " differs from " << first_name;
    }
  }
}

// Every x86-64 target with FMA (AVX2 and AVX-512 here) gives the same checkpoint and
// adapter bytes: the kernels' reductions follow one order whatever the vector width, so a
// recipe reproduces on any machine the kernels dispatch differently on. Widths with tails
// at every level: d_model 72, d_ff 88, head_dim 36, vocab 290.
TEST(RunRecipeTest, SameBytesOnEveryCompiledTargetWithFma) {
  TempDir dir;
  Recipe r = TinyRecipe(dir);
  r.model.d_model = 72;
  r.model.d_ff = 88;
  r.model.n_heads = 2;
  ExpectSameOnEveryFmaTarget([&](const std::string& name) {
    TrainRunOptions o;
    o.threads = 2;
    o.output = dir.path() + "/" + name + "/m.gguf";
    auto a = RunRecipe(r, o);
    EXPECT_TRUE(a.ok()) << a.status().message();
    return a.ok() ? a->sha256 : std::string();
  });
  for (int i = 0; i < 6; ++i) {
    dir.Write("notes/n" + std::to_string(i) + ".md",
              "Meeting " + std::to_string(i) + ": buy a rope for the bell. Owner: Eva.\n");
  }
  ExpectSameOnEveryFmaTarget([&](const std::string& name) {
    FinetuneOptions f;
    f.base = dir.path() + "/AVX2/m.gguf";  // q8_0: the frozen weights stay quantized
    f.data = dir.path() + "/notes";
    f.out = dir.path() + "/" + name + "/a.gguf";
    f.steps = 3;
    f.rank = 2;
    f.batch = 2;
    f.seq_len = 16;
    f.threads = 2;
    auto res = Finetune(f);
    EXPECT_TRUE(res.ok()) << res.status().message();
    return res.ok() ? Bytes(f.out) : std::string();
  });
}

}  // namespace
}  // namespace pocket::train
