// Our reference quantizers and reader against files made by llama.cpp itself
// (testdata/formats/README.md says how): `llama-quantize --pure` of an F32 model written by
// `pocket make-model` (regenerated here bit for bit from its spec and seed).
#include <gtest/gtest.h>

#include <cstring>

#include "formats/gguf.h"
#include "formats/random_model.h"
#include "tensor/quant.h"

namespace pocket::formats {
namespace {

using tensor::DType;

RandomModelSpec GoldenSpec() {
  RandomModelSpec s;
  s.name = "golden-f32";
  s.d_model = 256, s.num_layers = 1, s.num_heads = 2, s.num_kv_heads = 1, s.d_ff = 256;
  s.vocab_size = 512, s.context_length = 256;
  s.weight_type = DType::kF32;
  s.seed = 7;
  return s;
}

struct Case {
  const char* file;
  DType type;
};

class LlamaGoldenTest : public ::testing::TestWithParam<Case> {};

TEST_P(LlamaGoldenTest, ReferenceQuantizerMatchesLlamaQuantizeBitForBit) {
  const Case c = GetParam();
  auto golden = GgufFile::Open(std::string(POCKET_SOURCE_DIR) + "/testdata/formats/" + c.file);
  ASSERT_TRUE(golden.ok()) << golden.status().ToString();
  auto f32_bytes = BuildRandomModel(GoldenSpec()).value().Serialize();
  ASSERT_TRUE(f32_bytes.ok());
  auto f32 = GgufFile::FromBytes(std::move(f32_bytes).value(), "golden-f32");
  ASSERT_TRUE(f32.ok()) << f32.status().ToString();
  ASSERT_EQ(golden->tensors().size(), f32->tensors().size());
  int quantized = 0;
  for (const TensorInfo& src : f32->tensors()) {
    const TensorInfo* q = golden->FindTensor(src.name);
    ASSERT_NE(q, nullptr) << src.name;
    ASSERT_EQ(q->ne, src.ne) << src.name;
    if (src.ne.size() < 2) {  // llama.cpp leaves 1-D tensors (norms) in F32
      EXPECT_EQ(q->dtype, DType::kF32) << src.name;
      continue;
    }
    ASSERT_EQ(q->dtype, c.type) << src.name;
    const auto in = f32->TensorBytes(src);
    std::vector<float> x(src.num_elements());
    std::memcpy(x.data(), in.data(), in.size());
    std::string ours(q->size_bytes, '\0');
    const size_t row = src.ne[0], rows = x.size() / row, row_bytes = tensor::RowBytes(c.type, row);
    for (size_t r = 0; r < rows; ++r) {
      tensor::QuantizeRow(c.type, x.data() + r * row, ours.data() + r * row_bytes, row);
    }
    const auto theirs = golden->TensorBytes(*q);
    ASSERT_EQ(ours.size(), theirs.size());
    size_t first_diff = ours.size();
    for (size_t i = 0; i < ours.size(); ++i) {
      if (ours[i] != static_cast<char>(theirs[i])) {
        first_diff = i;
        break;
      }
    }
    EXPECT_EQ(first_diff, ours.size()) << src.name << ": first differing byte " << first_diff
                                       << " (block " << first_diff / tensor::BlockBytes(c.type) << ")";
    ++quantized;
  }
  EXPECT_EQ(quantized, 8);  // token_embd + 7 matrices of the single block
}

INSTANTIATE_TEST_SUITE_P(Types, LlamaGoldenTest,
                         ::testing::Values(Case{"golden-q4_0.gguf", DType::kQ4_0},
                                           Case{"golden-q8_0.gguf", DType::kQ8_0},
                                           Case{"golden-q4_k.gguf", DType::kQ4_K},
                                           Case{"golden-q6_k.gguf", DType::kQ6_K}),
                         [](const auto& param_info) {
                           std::string n = param_info.param.file;
                           n = n.substr(7, n.size() - 12);
                           return n;
                         });

TEST(LlamaGoldenTest, ReadsLlamaCppMetadata) {
  auto f = GgufFile::Open(std::string(POCKET_SOURCE_DIR) + "/testdata/formats/golden-q4_k.gguf");
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ(f->version(), 3u);
  EXPECT_EQ(f->GetString("general.architecture").value(), "llama");
  EXPECT_EQ(f->GetUint("general.file_type").value(), 15u);  // llama-quantize: Q4_K_M id
  EXPECT_EQ(f->GetStringArray("tokenizer.ggml.tokens").value().size(), 512u);
}

}  // namespace
}  // namespace pocket::formats
