#include "formats/gguf_names.h"

#include <gtest/gtest.h>

#include <string>

#include "formats/random_model.h"

namespace pocket::formats {
namespace {

namespace names = gguf_names;

TEST(GgufNamesTest, ArchKeyPutsTheKeyUnderTheArchitecture) {
  EXPECT_EQ(names::ArchKey("llama", names::kContextLength), "llama.context_length");
  EXPECT_EQ(names::ArchKey("qwen2", names::kHeadCountKv), "qwen2.attention.head_count_kv");
  EXPECT_EQ(names::ArchKey("llama", names::kRopeScalingOriginalContextLength),
            "llama.rope.scaling.original_context_length");
}

TEST(GgufNamesTest, LayerTensorNamesTheBlock) {
  EXPECT_EQ(names::LayerTensor(0, names::kAttnQ), "blk.0.attn_q.weight");
  EXPECT_EQ(names::LayerTensor(31, names::kFfnDown), "blk.31.ffn_down.weight");
  EXPECT_EQ(names::LayerTensor(3, names::kAttnVBias), "blk.3.attn_v.bias");
}

// The names are llama.cpp's: a Qwen2-shaped random model (untied, with QKV biases) holds
// exactly the tensors and the required keys they name, so the writer and the loader agree.
TEST(GgufNamesTest, RandomQwen2ModelHoldsExactlyTheNamedTensorsAndKeys) {
  RandomModelSpec spec = NamedShape("tiny").value();
  spec.arch = "qwen2";
  spec.tied = false;
  auto w = BuildRandomModel(spec);
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  auto bytes = w->Serialize();
  ASSERT_TRUE(bytes.ok()) << bytes.status().ToString();
  auto f = GgufFile::FromBytes(std::move(*bytes), spec.name);
  ASSERT_TRUE(f.ok()) << f.status().ToString();

  EXPECT_EQ(f->GetString(names::kGeneralArchitecture).value(), "qwen2");
  for (const char* key :
       {names::kContextLength, names::kEmbeddingLength, names::kBlockCount,
        names::kFeedForwardLength, names::kHeadCount, names::kHeadCountKv, names::kVocabSize,
        names::kLayerNormRmsEpsilon, names::kRopeDimensionCount, names::kRopeFreqBase}) {
    EXPECT_TRUE(f->Has(names::ArchKey("qwen2", key))) << key;
  }
  size_t expected = 0;
  for (const char* t : {names::kTokenEmbd, names::kOutputNorm, names::kOutput}) {
    EXPECT_NE(f->FindTensor(t), nullptr) << t;
    ++expected;
  }
  for (int64_t l = 0; l < spec.num_layers; ++l) {
    for (const char* t :
         {names::kAttnNorm, names::kAttnQ, names::kAttnK, names::kAttnV, names::kAttnOutput,
          names::kAttnQBias, names::kAttnKBias, names::kAttnVBias, names::kFfnNorm, names::kFfnGate,
          names::kFfnUp, names::kFfnDown}) {
      const std::string name = names::LayerTensor(l, t);
      EXPECT_NE(f->FindTensor(name), nullptr) << name;
      ++expected;
    }
  }
  EXPECT_EQ(f->tensors().size(), expected);
}

}  // namespace
}  // namespace pocket::formats
