#include "formats/random_model.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <set>

#include "base/file.h"
#include "tensor/quant.h"

namespace pocket::formats {
namespace {

using tensor::DType;

Result<GgufFile> Build(const RandomModelSpec& spec) {
  PK_ASSIGN_OR_RETURN(GgufWriter w, BuildRandomModel(spec));
  PK_ASSIGN_OR_RETURN(std::string bytes, w.Serialize());
  return GgufFile::FromBytes(std::move(bytes), spec.name);
}

TEST(RandomModelTest, TinyModelIsCompleteAndValid) {
  RandomModelSpec spec = NamedShape("tiny").value();
  spec.weight_type = DType::kF32;
  auto f = Build(spec);
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ(f->GetString("general.architecture").value(), "llama");
  EXPECT_EQ(f->GetUint("llama.embedding_length").value(), 64u);
  EXPECT_EQ(f->GetUint("llama.attention.head_count_kv").value(), 2u);
  EXPECT_EQ(f->tensors().size(), 2u + 2u * 9u);  // embd, output_norm, 9 per layer; tied
  EXPECT_EQ(f->FindTensor("output.weight"), nullptr);
  EXPECT_EQ(f->FindTensor("blk.1.attn_k.weight")->ne, (std::vector<uint64_t>{64, 32}));
  // Weights ~ N(0, 0.02), norms 1.
  const TensorInfo* t = f->FindTensor("blk.0.ffn_up.weight");
  std::vector<float> w(t->num_elements());
  tensor::DequantizeRow(t->dtype, f->TensorBytes(*t).data(), w.data(), w.size());
  double sum = 0, sum2 = 0;
  for (float x : w) sum += x, sum2 += x * x;
  const double mean = sum / w.size(), sd = std::sqrt(sum2 / w.size() - mean * mean);
  EXPECT_NEAR(mean, 0.0, 0.002);
  EXPECT_NEAR(sd, 0.02, 0.001);
  const TensorInfo* norm = f->FindTensor("blk.0.attn_norm.weight");
  EXPECT_EQ(norm->dtype, DType::kF32);
  float first;
  std::memcpy(&first, f->TensorBytes(*norm).data(), 4);
  EXPECT_EQ(first, 1.0f);
}

TEST(RandomModelTest, SyntheticVocabMergesAreConsistent) {
  for (ChatStyle chat : {ChatStyle::kChatMl, ChatStyle::kLlama3}) {
    const GgufVocab v = SyntheticVocab(2048, chat);
    ASSERT_EQ(v.tokens.size(), 2048u);
    ASSERT_EQ(v.token_types.size(), 2048u);
    std::set<std::string> tokens(v.tokens.begin(), v.tokens.end());
    EXPECT_EQ(tokens.size(), 2048u) << "tokens must be unique";
    for (const std::string& m : v.merges) {
      const size_t sp = m.find(' ');
      ASSERT_NE(sp, std::string::npos);
      const std::string a = m.substr(0, sp), b = m.substr(sp + 1);
      ASSERT_TRUE(tokens.count(a) && tokens.count(b) && tokens.count(a + b)) << m;
    }
    EXPECT_EQ(v.token_types[static_cast<size_t>(v.bos_id)], 3);
    EXPECT_EQ(v.token_types[static_cast<size_t>(v.eos_id)], 3);
    EXPECT_FALSE(v.chat_template.empty());
  }
  const GgufVocab chatml = SyntheticVocab(512, ChatStyle::kChatMl);
  EXPECT_EQ(chatml.tokens[1], "<|im_start|>");
  EXPECT_EQ(chatml.tokens[2], "<|im_end|>");
  EXPECT_EQ(chatml.pre, "smollm");
  const GgufVocab llama3 = SyntheticVocab(128256, ChatStyle::kLlama3);
  EXPECT_EQ(llama3.tokens[128000], "<|begin_of_text|>");
  EXPECT_EQ(llama3.tokens[128009], "<|eot_id|>");
  EXPECT_EQ(llama3.bos_id, 128000);
  EXPECT_EQ(llama3.eos_id, 128009);
  EXPECT_EQ(llama3.pre, "llama-bpe");
}

TEST(RandomModelTest, ByteLevelAlphabetMatchesGpt2) {
  const auto& a = ByteLevelAlphabet();
  EXPECT_EQ(a['A'], "A");
  EXPECT_EQ(a[' '], "\xC4\xA0");   // U+0120 'Ġ'
  EXPECT_EQ(a['\n'], "\xC4\x8A");  // U+010A 'Ċ'
  EXPECT_EQ(a[0], "\xC4\x80");     // U+0100
  EXPECT_EQ(a[0xAD], "\xC5\x83");  // soft hyphen is remapped: U+0143
  EXPECT_EQ(a[0xFF], "\xC3\xBF");
  EXPECT_EQ(std::set<std::string>(a.begin(), a.end()).size(), 256u);
}

TEST(RandomModelTest, DeterministicForASeed) {
  RandomModelSpec spec = NamedShape("tiny-k").value();
  spec.weight_type = DType::kQ4_K;
  spec.num_layers = 1;
  spec.d_ff = 256;
  auto a = BuildRandomModel(spec).value().Serialize().value();
  auto b = BuildRandomModel(spec).value().Serialize().value();
  EXPECT_EQ(a, b);
  spec.seed = 1;
  EXPECT_NE(a, BuildRandomModel(spec).value().Serialize().value());
  auto f = GgufFile::FromBytes(a, "tiny-k");
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ(f->FindTensor("blk.0.attn_q.weight")->dtype, DType::kQ4_K);
  EXPECT_EQ(f->GetUint("general.file_type").value(), 14u);
}

TEST(RandomModelTest, Qwen2AddsBiasesAndLlama3AddsRopeFreqs) {
  RandomModelSpec spec = NamedShape("tiny").value();
  spec.arch = "qwen2";
  auto q = Build(spec);
  ASSERT_TRUE(q.ok()) << q.status().ToString();
  EXPECT_NE(q->FindTensor("blk.0.attn_q.bias"), nullptr);
  EXPECT_EQ(q->FindTensor("blk.0.attn_k.bias")->dtype, DType::kF32);
  spec = NamedShape("tiny").value();
  spec.llama3_rope_factor = 32;
  spec.chat = ChatStyle::kLlama3;
  auto l = Build(spec);
  ASSERT_TRUE(l.ok()) << l.status().ToString();
  EXPECT_EQ(l->FindTensor("rope_freqs.weight")->ne, (std::vector<uint64_t>{8}));
}

TEST(RandomModelTest, InitStdSetsTheSpreadOfEveryNonNormWeight) {
  RandomModelSpec spec = NamedShape("tiny").value();
  spec.weight_type = DType::kF32;
  spec.init_std = 0.1f;
  auto f = Build(spec);
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  for (const char* name : {"token_embd.weight", "blk.0.attn_q.weight", "blk.1.ffn_down.weight"}) {
    const TensorInfo* t = f->FindTensor(name);
    ASSERT_NE(t, nullptr) << name;
    std::vector<float> w(t->num_elements());
    tensor::DequantizeRow(t->dtype, f->TensorBytes(*t).data(), w.data(), w.size());
    double sum2 = 0;
    for (float x : w) sum2 += x * x;
    EXPECT_NEAR(std::sqrt(sum2 / w.size()), 0.1, 0.006) << name;
  }
  float norm;
  std::memcpy(&norm, f->TensorBytes(*f->FindTensor("output_norm.weight")).data(), 4);
  EXPECT_EQ(norm, 1.0f);
  for (float bad : {0.0f, -0.02f, 11.0f, std::nanf("")}) {
    spec.init_std = bad;
    EXPECT_EQ(BuildRandomModel(spec).status().code(), StatusCode::kInvalidArgument) << bad;
  }
}

TEST(RandomModelTest, RejectsBadSpecs) {
  RandomModelSpec spec;
  spec.num_heads = 3;  // 256 % 3 != 0
  EXPECT_EQ(BuildRandomModel(spec).status().code(), StatusCode::kInvalidArgument);
  spec = RandomModelSpec{};
  spec.num_kv_heads = 3;
  EXPECT_EQ(BuildRandomModel(spec).status().code(), StatusCode::kInvalidArgument);
  spec = RandomModelSpec{};
  spec.vocab_size = 100;
  EXPECT_EQ(BuildRandomModel(spec).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(NamedShape("gpt-5").status().code(), StatusCode::kInvalidArgument);
}

// The writer and the generator are deterministic: the same shape and seed give the same
// bytes (the shape of the first embedded default model, 4 MB).
TEST(RandomModelTest, SameShapeAndSeedGiveTheSameBytes) {
  const auto a = BuildRandomModel(NamedShape("pocket-default").value()).value().Serialize();
  const auto b = BuildRandomModel(NamedShape("pocket-default").value()).value().Serialize();
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_TRUE(*a == *b);
  EXPECT_LT(a->size(), 10u << 20);
}

}  // namespace
}  // namespace pocket::formats
