// Adapters on the forward pass (LoraAdapter through LlamaModel::AttachAdapter), and the
// reference backend running whole quantized models against the CPU backend.
#include "model/lora.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "formats/gguf.h"
#include "model/llama.h"
#include "model/model_testutil.h"

namespace pocket::model {
namespace {

using tensor::DType;

std::vector<float> RandomNormal(size_t n, uint32_t seed, float stddev) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, stddev);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

std::vector<int32_t> Tokens(size_t n, int vocab) {
  std::vector<int32_t> t(n);
  for (size_t i = 0; i < n; ++i)
    t[i] = static_cast<int32_t>((i * 37 + 5) % static_cast<size_t>(vocab));
  return t;
}

std::vector<float> AllLogits(LlamaModel& m, const std::vector<int32_t>& tokens) {
  auto cache = m.NewKvCache(static_cast<int>(tokens.size()), DType::kF32);
  EXPECT_TRUE(cache.ok());
  BatchEntry e{&*cache, tokens, 0, true};
  std::vector<float> logits;
  const Status s = m.Forward({&e, 1}, &logits);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return logits;
}

LlamaConfig Untied() {
  LlamaConfig c = testing::TinyConfig();
  c.tied_output = false;
  return c;
}

// One LoRA for a matrix: A [rank][in], B [out][rank].
struct Lora {
  MatrixId which;
  int layer;
  const char* tensor;  // the GGUF tensor it corrects
  size_t in, out;
  std::vector<float> a, b;
};

std::vector<Lora> RandomLoras(const LlamaConfig& c, size_t rank, bool zero_b) {
  const size_t d = static_cast<size_t>(c.d_model), ff = static_cast<size_t>(c.d_ff);
  const size_t q = static_cast<size_t>(c.q_dim()), kv = static_cast<size_t>(c.kv_dim());
  const size_t vocab = static_cast<size_t>(c.vocab_size);
  std::vector<Lora> l = {
      {MatrixId::kQ, 0, "blk.0.attn_q.weight", d, q, {}, {}},
      {MatrixId::kV, 1, "blk.1.attn_v.weight", d, kv, {}, {}},
      {MatrixId::kO, 0, "blk.0.attn_output.weight", q, d, {}, {}},
      {MatrixId::kGate, 1, "blk.1.ffn_gate.weight", d, ff, {}, {}},
      {MatrixId::kDown, 0, "blk.0.ffn_down.weight", ff, d, {}, {}},
      {MatrixId::kOutput, 0, "output.weight", d, vocab, {}, {}},
  };
  uint32_t seed = 11;
  for (Lora& x : l) {
    x.a = RandomNormal(rank * x.in, seed++, 0.3f);
    x.b =
        zero_b ? std::vector<float>(x.out * rank, 0.0f) : RandomNormal(x.out * rank, seed++, 0.3f);
  }
  return l;
}

Status Attach(LlamaModel& m, const std::vector<Lora>& loras, size_t rank, float scale) {
  for (const Lora& x : loras) {
    PK_ASSIGN_OR_RETURN(auto adapter,
                        LoraAdapter::Create(m.backend(), x.in, x.out, rank, x.a, x.b, scale,
                                            static_cast<size_t>(m.max_batch_tokens())));
    PK_RETURN_IF_ERROR(m.AttachAdapter(x.layer, x.which, adapter));
  }
  return Status::Ok();
}

// LoRA's initialisation (B = 0) must leave the model exactly as it was: the update adds
// scale * 0 after the base product and bias, on every matrix kind including the shared
// Q/K/V and gate/up dispatches and the logits.
TEST(LoraTest, ZeroBLeavesLogitsBitIdentical) {
  for (BackendKind backend : {BackendKind::kCpu, BackendKind::kReference}) {
    testing::RandomModelSpec spec;
    spec.config = Untied();
    auto m = testing::RandomModel(spec, {.backend = backend, .threads = 2});
    ASSERT_TRUE(m.ok()) << m.status().ToString();
    const auto tokens = Tokens(12, spec.config.vocab_size);
    const auto before = AllLogits(**m, tokens);
    ASSERT_TRUE(Attach(**m, RandomLoras(spec.config, 4, /*zero_b=*/true), 4, 2.0f).ok());
    const auto after = AllLogits(**m, tokens);
    ASSERT_EQ(before.size(), after.size());
    EXPECT_EQ(0, std::memcmp(before.data(), after.data(), before.size() * sizeof(float)))
        << BackendName(backend);
  }
}

// y = W x + s B (A x) against the model whose weight is W + s B A (merged in double,
// rounded to F32 once): both compute the same linear map; they differ by float rounding of
// ~100-term sums taken in another order (~1e-6 relative on these unit-scale logits), so
// 1e-4 (the golden tests' bar) is loose and a wrong matrix, scale or transpose is O(1).
TEST(LoraTest, RandomLoraMatchesTheMergedWeights) {
  testing::RandomModelSpec spec;
  spec.config = Untied();
  const size_t rank = 3;
  const float scale = 0.5f;
  const auto loras = RandomLoras(spec.config, rank, /*zero_b=*/false);
  auto bytes = testing::RandomModelGguf(spec);
  ASSERT_TRUE(bytes.ok());

  // The merged model: patch each corrected tensor's F32 bytes in the serialized GGUF.
  std::string merged = *bytes;
  {
    auto file = formats::GgufFile::FromBytes(*bytes, "lora");
    ASSERT_TRUE(file.ok()) << file.status().ToString();
    for (const Lora& x : loras) {
      const formats::TensorInfo* t = file->FindTensor(x.tensor);
      ASSERT_NE(t, nullptr) << x.tensor;
      float* w = reinterpret_cast<float*>(merged.data() + file->data_offset() + t->offset);
      for (size_t r = 0; r < x.out; ++r) {
        for (size_t c = 0; c < x.in; ++c) {
          double delta = 0.0;
          for (size_t k = 0; k < rank; ++k) {
            delta += static_cast<double>(x.b[r * rank + k]) * x.a[k * x.in + c];
          }
          w[r * x.in + c] = static_cast<float>(w[r * x.in + c] + scale * delta);
        }
      }
    }
  }
  for (BackendKind backend : {BackendKind::kCpu, BackendKind::kReference}) {
    const LoadOptions opts{.backend = backend, .threads = 2};
    auto with_lora = LlamaModel::FromGguf(*formats::GgufFile::FromBytes(*bytes, "base"), opts);
    auto with_merge = LlamaModel::FromGguf(*formats::GgufFile::FromBytes(merged, "merged"), opts);
    ASSERT_TRUE(with_lora.ok() && with_merge.ok());
    const auto tokens = Tokens(12, spec.config.vocab_size);
    const auto base = AllLogits(**with_lora, tokens);
    ASSERT_TRUE(Attach(**with_lora, loras, rank, scale).ok());
    const auto adapted = AllLogits(**with_lora, tokens), want = AllLogits(**with_merge, tokens);
    EXPECT_LT(testing::MaxRelError(adapted, want), 1e-4) << BackendName(backend);
    EXPECT_GT(testing::MaxRelError(base, want), 1e-2) << "the LoRA must change the logits";
  }
}

TEST(LoraTest, AttachRejectsMismatchedAdapters) {
  testing::RandomModelSpec spec;
  spec.config = Untied();
  auto m = testing::RandomModel(spec);
  ASSERT_TRUE(m.ok());
  const size_t d = static_cast<size_t>(spec.config.d_model);
  auto a = LoraAdapter::Create((*m)->backend(), d, d, 2, std::vector<float>(2 * d, 0.f),
                               std::vector<float>(2 * d, 0.f), 1.0f,
                               static_cast<size_t>((*m)->max_batch_tokens()));
  ASSERT_TRUE(a.ok());
  // d x d fits wq (q_dim == d_model here) but not gate (d_ff rows) nor layer 7.
  EXPECT_TRUE((*m)->AttachAdapter(0, MatrixId::kQ, *a).ok());
  EXPECT_EQ((*m)->AttachAdapter(0, MatrixId::kGate, *a).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ((*m)->AttachAdapter(7, MatrixId::kQ, *a).code(), StatusCode::kInvalidArgument);
  auto small = LoraAdapter::Create((*m)->backend(), d, d, 2, std::vector<float>(2 * d, 0.f),
                                   std::vector<float>(2 * d, 0.f), 1.0f, 1);
  ASSERT_TRUE(small.ok());
  EXPECT_EQ((*m)->AttachAdapter(0, MatrixId::kK, *small).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(LoraAdapter::Create((*m)->backend(), d, d, 2, std::vector<float>(3), {}, 1.0f, 8)
                .status()
                .code(),
            StatusCode::kInvalidArgument);
}

// An adapter lives in its backend's memory: one made on another backend (another kind, or
// another instance of the same kind) is refused at attach, naming the matrix, instead of
// failing inside the first Forward; the model still runs afterwards.
TEST(LoraTest, AttachRejectsAdapterOfAnotherBackend) {
  testing::RandomModelSpec spec;
  spec.config = Untied();
  auto m = testing::RandomModel(spec);
  ASSERT_TRUE(m.ok());
  const size_t d = static_cast<size_t>(spec.config.d_model);
  const size_t max_tokens = static_cast<size_t>((*m)->max_batch_tokens());
  for (BackendKind kind : {BackendKind::kCpu, BackendKind::kReference}) {
    auto other = kernels::MakeBackend(kind, 1);
    ASSERT_TRUE(other.ok());
    auto a = LoraAdapter::Create(*other, d, d, 2, std::vector<float>(2 * d, 0.f),
                                 std::vector<float>(2 * d, 0.f), 1.0f, max_tokens);
    ASSERT_TRUE(a.ok());
    EXPECT_EQ((*a)->backend(), other->get());
    const Status st = (*m)->AttachAdapter(1, MatrixId::kQ, *a);
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << BackendName(kind);
    EXPECT_NE(st.message().find("layer 1 wq"), std::string::npos) << st.ToString();
  }
  const auto tokens = Tokens(4, spec.config.vocab_size);
  EXPECT_FALSE(AllLogits(**m, tokens).empty());
}

// The reference backend runs whole quantized models (activations quantized as the CPU
// kernels do) to the CPU backend's greedy tokens; its logits differ by float rounding only:
// relative 1e-3 allows the occasional int8 activation that rounds the other way when a
// value sits on a rounding boundary.
TEST(ReferenceBackendTest, QuantizedModelsGiveTheCpuGreedyTokens) {
  for (DType dtype : {DType::kQ4_0, DType::kQ8_0, DType::kQ4_K, DType::kF16}) {
    testing::RandomModelSpec spec;
    spec.config = testing::TinyConfig();
    spec.config.d_model = 256;  // a whole Q4_K block per row
    spec.config.head_dim = 64;
    spec.config.d_ff = 512;
    spec.matrix_dtype = dtype;
    auto bytes = testing::RandomModelGguf(spec);
    ASSERT_TRUE(bytes.ok());
    std::vector<std::vector<int32_t>> greedy;
    std::vector<std::vector<float>> first;
    for (BackendKind backend : {BackendKind::kCpu, BackendKind::kReference}) {
      auto m = LlamaModel::FromGguf(*formats::GgufFile::FromBytes(*bytes, "q"),
                                    {.backend = backend, .threads = 2});
      ASSERT_TRUE(m.ok()) << m.status().ToString();
      auto cache = (*m)->NewKvCache(40, DType::kF16);
      ASSERT_TRUE(cache.ok());
      std::vector<int32_t> next = Tokens(8, spec.config.vocab_size), out;
      std::vector<float> logits;
      for (int i = 0; i < 24; ++i) {
        BatchEntry e{&*cache, next, cache->num_tokens(), false};
        ASSERT_TRUE((*m)->Forward({&e, 1}, &logits).ok());
        if (i == 0) first.push_back(logits);
        next = {
            static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin())};
        out.push_back(next[0]);
      }
      greedy.push_back(out);
    }
    EXPECT_EQ(greedy[0], greedy[1]) << tensor::DTypeName(dtype);
    EXPECT_LT(testing::MaxRelError(first[0], first[1]), 1e-3) << tensor::DTypeName(dtype);
  }
}

}  // namespace
}  // namespace pocket::model
