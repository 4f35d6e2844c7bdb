// Tests of model/lora_file.h: an adapter GGUF in llama.cpp's layout (F32 and F16 tensors) gives
// bit for bit the logits of the same LoraAdapters attached by hand at alpha / rank; files that do
// not fit are errors naming the adapter and what is wrong.
#include "model/lora_file.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "formats/gguf.h"
#include "model/lora.h"
#include "model/model_testutil.h"
#include "tensor/fp16.h"

namespace pocket::model {
namespace {

using ::testing::HasSubstr;

std::vector<float> Normal(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, 0.3f);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

std::string F32Bytes(const std::vector<float>& v) {
  std::string s(v.size() * 4, '\0');
  std::memcpy(s.data(), v.data(), s.size());
  return s;
}

std::vector<float> LogitsOf(LlamaModel& m) {
  auto cache = m.NewKvCache(8, tensor::DType::kF32);
  EXPECT_TRUE(cache.ok());
  const std::vector<int32_t> tokens = {1, 5, 9, 13, 17};
  BatchEntry e{&*cache, tokens, 0, true};
  std::vector<float> logits;
  EXPECT_TRUE(m.Forward({&e, 1}, &logits).ok());
  return logits;
}

struct Pair {
  std::string tensor;
  MatrixId which;
  int layer;
  size_t in, out;
};

// rank 2, alpha 3: q of layer 0 (F32) and ffn_down of layer 1 (F16).
TEST(LoraFileTest, AdapterFileEqualsTheSameAdaptersAttachedByHand) {
  testing::RandomModelSpec spec;
  spec.config = testing::TinyConfig();
  const LlamaConfig& c = spec.config;
  const size_t rank = 2;
  const float alpha = 3.0f;
  const std::vector<Pair> pairs = {
      {"blk.0.attn_q.weight", MatrixId::kQ, 0, size_t(c.d_model), size_t(c.q_dim())},
      {"blk.1.ffn_down.weight", MatrixId::kDown, 1, size_t(c.d_ff), size_t(c.d_model)}};
  formats::GgufWriter w;
  w.SetString("general.architecture", c.arch);
  w.SetString("general.type", "adapter");
  w.SetString("adapter.type", "lora");
  w.SetFloat32("adapter.lora.alpha", alpha);
  std::vector<std::vector<float>> as, bs;
  uint32_t seed = 3;
  for (size_t i = 0; i < pairs.size(); ++i) {
    const Pair& p = pairs[i];
    as.push_back(Normal(rank * p.in, seed++));
    bs.push_back(Normal(p.out * rank, seed++));
    if (i == 1) {  // F16: round the values as the file stores them
      std::string a16(as[i].size() * 2, '\0'), b16(bs[i].size() * 2, '\0');
      for (size_t k = 0; k < as[i].size(); ++k) {
        const tensor::f16_t h = tensor::F32ToF16(as[i][k]);
        std::memcpy(a16.data() + 2 * k, &h, 2);
        as[i][k] = tensor::F16ToF32(h);
      }
      for (size_t k = 0; k < bs[i].size(); ++k) {
        const tensor::f16_t h = tensor::F32ToF16(bs[i][k]);
        std::memcpy(b16.data() + 2 * k, &h, 2);
        bs[i][k] = tensor::F16ToF32(h);
      }
      ASSERT_TRUE(w.AddTensor(p.tensor + ".lora_a", {p.in, rank}, tensor::DType::kF16, a16).ok());
      ASSERT_TRUE(w.AddTensor(p.tensor + ".lora_b", {rank, p.out}, tensor::DType::kF16, b16).ok());
    } else {
      ASSERT_TRUE(
          w.AddTensor(p.tensor + ".lora_a", {p.in, rank}, tensor::DType::kF32, F32Bytes(as[i]))
              .ok());
      ASSERT_TRUE(
          w.AddTensor(p.tensor + ".lora_b", {rank, p.out}, tensor::DType::kF32, F32Bytes(bs[i]))
              .ok());
    }
  }
  auto bytes = w.Serialize();
  ASSERT_TRUE(bytes.ok());
  auto file = formats::GgufFile::FromBytes(*bytes, "a.gguf");
  ASSERT_TRUE(file.ok());

  auto from_file = testing::RandomModel(spec);
  auto by_hand = testing::RandomModel(spec);
  auto plain = testing::RandomModel(spec);
  ASSERT_TRUE(from_file.ok() && by_hand.ok() && plain.ok());
  int n = 0;
  const Status s = AttachLoraGguf(**from_file, *file, 1.0f, &n);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(n, 2);
  for (size_t i = 0; i < pairs.size(); ++i) {
    auto adapter =
        LoraAdapter::Create((*by_hand)->backend(), pairs[i].in, pairs[i].out, rank, as[i], bs[i],
                            alpha / rank, static_cast<size_t>((*by_hand)->max_batch_tokens()));
    ASSERT_TRUE(adapter.ok());
    ASSERT_TRUE((*by_hand)->AttachAdapter(pairs[i].layer, pairs[i].which, *adapter).ok());
  }
  const auto lf = LogitsOf(**from_file), lh = LogitsOf(**by_hand), lp = LogitsOf(**plain);
  ASSERT_EQ(lf.size(), lh.size());
  EXPECT_EQ(0, std::memcmp(lf.data(), lh.data(), lf.size() * sizeof(float)));
  EXPECT_NE(0, std::memcmp(lf.data(), lp.data(), lf.size() * sizeof(float)));
}

// A file with the given tensors (F32 zeros of the given shapes) and keys.
formats::GgufFile Adapter(const std::vector<std::pair<std::string, std::vector<uint64_t>>>& ts,
                          const std::string& arch = "llama", const std::string& type = "adapter") {
  formats::GgufWriter w;
  w.SetString("general.architecture", arch);
  w.SetString("general.type", type);
  w.SetString("adapter.type", "lora");
  w.SetFloat32("adapter.lora.alpha", 16.0f);
  for (const auto& [name, ne] : ts) {
    size_t n = 1;
    for (uint64_t d : ne) n *= d;
    EXPECT_TRUE(w.AddTensor(name, ne, tensor::DType::kF32, std::string(n * 4, '\0')).ok());
  }
  auto bytes = w.Serialize();
  EXPECT_TRUE(bytes.ok());
  auto f = formats::GgufFile::FromBytes(*bytes, "bad.gguf");
  EXPECT_TRUE(f.ok());
  return std::move(*f);
}

TEST(LoraFileTest, FilesThatDoNotFitAreErrorsNamingTheAdapterAndWhat) {
  testing::RandomModelSpec spec;
  spec.config = testing::TinyConfig();  // d_model 64, 2 layers, q 64, kv 32, d_ff 128
  auto m = testing::RandomModel(spec);
  ASSERT_TRUE(m.ok());
  auto message = [&](const formats::GgufFile& f) { return AttachLoraGguf(**m, f).message(); };
  const std::string q = "blk.0.attn_q.weight";
  EXPECT_THAT(message(Adapter({{q + ".lora_a", {64, 4}}}, "llama", "model")),
              HasSubstr("LoRA adapter bad.gguf: not a LoRA adapter"));
  EXPECT_THAT(message(Adapter({{q + ".lora_a", {64, 4}}, {q + ".lora_b", {4, 64}}}, "qwen2")),
              HasSubstr("adapter for architecture qwen2, the model is llama"));
  EXPECT_THAT(message(Adapter({{q + ".lora_a", {64, 4}}})),
              HasSubstr(q + " has lora_a but no lora_b"));
  EXPECT_THAT(message(Adapter({{q + ".lora_a", {32, 4}}, {q + ".lora_b", {4, 64}}})),
              HasSubstr(q + ": lora_a [32, 4] and lora_b [4, 64] do not fit"));
  const std::string far = "blk.7.attn_q.weight";
  EXPECT_THAT(message(Adapter({{far + ".lora_a", {64, 4}}, {far + ".lora_b", {4, 64}}})),
              HasSubstr(far + ": the model has 2 layers"));
  const std::string out = "output.weight";
  EXPECT_THAT(message(Adapter({{out + ".lora_a", {64, 4}}, {out + ".lora_b", {4, 96}}})),
              HasSubstr("not a matrix adapters attach to"));
  EXPECT_THAT(message(Adapter({{"x", {4}}})), HasSubstr("unexpected tensor x"));
}

}  // namespace
}  // namespace pocket::model
