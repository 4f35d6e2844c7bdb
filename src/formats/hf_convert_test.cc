#include "formats/hf_convert.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "base/file.h"
#include "formats/safetensors.h"
#include "tensor/fp16.h"
#include "tensor/quant.h"

namespace pocket::formats {
namespace {

using nlohmann::json;
using tensor::DType;

// Builds .safetensors bytes from named F32 (or BF16) tensors.
class SafetensorsBuilder {
 public:
  void Add(const std::string& name, std::vector<uint64_t> shape, const std::vector<float>& v,
           bool bf16 = false) {
    const uint64_t begin = data_.size();
    if (bf16) {
      for (float x : v) {
        const uint16_t h = tensor::F32ToBF16(x);
        data_.append(reinterpret_cast<const char*>(&h), 2);
      }
    } else {
      data_.append(reinterpret_cast<const char*>(v.data()), v.size() * 4);
    }
    header_[name] = {{"dtype", bf16 ? "BF16" : "F32"}, {"shape", shape},
                     {"data_offsets", {begin, data_.size()}}};
  }
  std::string Bytes() const {
    const std::string h = header_.dump();
    const uint64_t n = h.size();
    return std::string(reinterpret_cast<const char*>(&n), 8) + h + data_;
  }
  json header_ = json::object();

 private:
  std::string data_;
};

// w[r][c] = 100 r + c, so every row is recognisable after a permutation.
std::vector<float> Ramp(uint64_t rows, uint64_t cols, float base = 0) {
  std::vector<float> v(rows * cols);
  for (uint64_t r = 0; r < rows; ++r) {
    for (uint64_t c = 0; c < cols; ++c) v[r * cols + c] = base + 100.0f * r + c;
  }
  return v;
}

class HfConvertTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("pocket_hf_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // A 1-layer model: d_model 8, 2 heads, 1 kv head (head_dim 4), d_ff 16, vocab 6.
  void WriteModel(const std::string& arch, bool tied, bool biases, json extra_config = {}) {
    json cfg = {{"architectures", {arch}}, {"hidden_size", 8}, {"num_hidden_layers", 1},
                {"num_attention_heads", 2}, {"num_key_value_heads", 1},
                {"intermediate_size", 16}, {"vocab_size", 6}, {"rms_norm_eps", 1e-5},
                {"rope_theta", 10000.0}, {"max_position_embeddings", 64},
                {"tie_word_embeddings", tied}};
    for (auto& [k, v] : extra_config.items()) cfg[k] = v;
    ASSERT_TRUE(WriteFileAtomic(Path("config.json"), cfg.dump()).ok());
    SafetensorsBuilder b;
    b.Add("model.embed_tokens.weight", {6, 8}, Ramp(6, 8, 0.5f), /*bf16=*/true);
    b.Add("model.layers.0.input_layernorm.weight", {8}, std::vector<float>(8, 1.0f));
    b.Add("model.layers.0.self_attn.q_proj.weight", {8, 8}, Ramp(8, 8));
    b.Add("model.layers.0.self_attn.k_proj.weight", {4, 8}, Ramp(4, 8, 0.25f));
    b.Add("model.layers.0.self_attn.v_proj.weight", {4, 8}, Ramp(4, 8, 0.75f));
    if (biases) {
      b.Add("model.layers.0.self_attn.q_proj.bias", {8}, Ramp(8, 1));
      b.Add("model.layers.0.self_attn.k_proj.bias", {4}, Ramp(4, 1));
      b.Add("model.layers.0.self_attn.v_proj.bias", {4}, Ramp(4, 1));
    }
    b.Add("model.layers.0.self_attn.o_proj.weight", {8, 8}, Ramp(8, 8));
    b.Add("model.layers.0.post_attention_layernorm.weight", {8}, std::vector<float>(8, 2.0f));
    b.Add("model.layers.0.mlp.gate_proj.weight", {16, 8}, Ramp(16, 8));
    b.Add("model.layers.0.mlp.up_proj.weight", {16, 8}, Ramp(16, 8, 1));
    b.Add("model.layers.0.mlp.down_proj.weight", {8, 16}, Ramp(8, 16));
    b.Add("model.norm.weight", {8}, std::vector<float>(8, 3.0f));
    if (!tied) b.Add("lm_head.weight", {6, 8}, Ramp(6, 8, 7));
    ASSERT_TRUE(WriteFileAtomic(Path("model.safetensors"), b.Bytes()).ok());
  }

  std::string Path(const std::string& f) const { return (dir_ / f).string(); }

  Result<GgufFile> Convert(DType type = DType::kF32) {
    ConvertOptions o;
    o.weight_type = type;
    auto r = ConvertHfToGguf(dir_.string(), Path("out.gguf"), o);
    if (!r.ok()) return r.status();
    return GgufFile::Open(Path("out.gguf"));
  }

  static std::vector<float> Floats(const GgufFile& f, const std::string& name) {
    const TensorInfo* t = f.FindTensor(name);
    if (!t) return {};
    std::vector<float> out(t->num_elements());
    tensor::DequantizeRow(t->dtype, f.TensorBytes(*t).data(), out.data(), out.size());
    return out;
  }

  std::filesystem::path dir_;
};

TEST_F(HfConvertTest, LlamaPermutesQAndKRowsPerHead) {
  WriteModel("LlamaForCausalLM", /*tied=*/true, /*biases=*/false);
  auto f = Convert();
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  // head_dim 4: within each head, GGML row 2i + j comes from HF row j·2 + i, i.e. the
  // order [0, 2, 1, 3] (computed by hand from reshape(n_head, 2, 2, 8).swapaxes(1, 2)).
  const std::vector<int> q_order = {0, 2, 1, 3, 4, 6, 5, 7};
  const auto q = Floats(*f, "blk.0.attn_q.weight");
  ASSERT_EQ(q.size(), 64u);
  for (int r = 0; r < 8; ++r) {
    for (int c = 0; c < 8; ++c) ASSERT_EQ(q[r * 8 + c], 100.0f * q_order[r] + c) << r << "," << c;
  }
  const auto k = Floats(*f, "blk.0.attn_k.weight");  // one kv head: [0, 2, 1, 3]
  const std::vector<int> k_order = {0, 2, 1, 3};
  for (int r = 0; r < 4; ++r) EXPECT_EQ(k[r * 8], 0.25f + 100.0f * k_order[r]);
  const auto v = Floats(*f, "blk.0.attn_v.weight");  // not permuted
  for (int r = 0; r < 4; ++r) EXPECT_EQ(v[r * 8], 0.75f + 100.0f * r);

  EXPECT_EQ(f->FindTensor("blk.0.attn_q.weight")->ne, (std::vector<uint64_t>{8, 8}));
  EXPECT_EQ(f->FindTensor("blk.0.ffn_gate.weight")->ne, (std::vector<uint64_t>{8, 16}));
  EXPECT_EQ(f->FindTensor("blk.0.ffn_down.weight")->ne, (std::vector<uint64_t>{16, 8}));
  EXPECT_EQ(f->FindTensor("token_embd.weight")->ne, (std::vector<uint64_t>{8, 6}));
  EXPECT_EQ(f->FindTensor("output.weight"), nullptr);  // tied
  EXPECT_EQ(f->FindTensor("blk.0.attn_q.bias"), nullptr);
  EXPECT_EQ(Floats(*f, "token_embd.weight")[9], 100.5f + 1);  // BF16 source, exact values
  EXPECT_EQ(Floats(*f, "output_norm.weight")[0], 3.0f);
  EXPECT_EQ(f->tensors().size(), 11u);

  EXPECT_EQ(f->GetString("general.architecture").value(), "llama");
  EXPECT_EQ(f->GetUint("llama.embedding_length").value(), 8u);
  EXPECT_EQ(f->GetUint("llama.block_count").value(), 1u);
  EXPECT_EQ(f->GetUint("llama.feed_forward_length").value(), 16u);
  EXPECT_EQ(f->GetUint("llama.attention.head_count").value(), 2u);
  EXPECT_EQ(f->GetUint("llama.attention.head_count_kv").value(), 1u);
  EXPECT_EQ(f->GetUint("llama.rope.dimension_count").value(), 4u);
  EXPECT_EQ(f->GetUint("llama.context_length").value(), 64u);
  EXPECT_FLOAT_EQ(static_cast<float>(f->GetFloat("llama.attention.layer_norm_rms_epsilon").value()), 1e-5f);
  EXPECT_EQ(f->GetFloat("llama.rope.freq_base").value(), 10000.0);
  EXPECT_EQ(f->GetUint("general.file_type").value(), 0u);
}

TEST_F(HfConvertTest, Qwen2KeepsRowOrderAndBiases) {
  WriteModel("Qwen2ForCausalLM", /*tied=*/false, /*biases=*/true);
  auto f = Convert();
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  const auto q = Floats(*f, "blk.0.attn_q.weight");
  for (int r = 0; r < 8; ++r) EXPECT_EQ(q[r * 8 + 1], 100.0f * r + 1);
  EXPECT_EQ(Floats(*f, "blk.0.attn_q.bias"), Ramp(8, 1));
  EXPECT_EQ(Floats(*f, "blk.0.attn_v.bias"), Ramp(4, 1));
  EXPECT_EQ(f->FindTensor("blk.0.attn_k.bias")->dtype, DType::kF32);
  EXPECT_EQ(Floats(*f, "output.weight")[0], 7.0f);
  EXPECT_EQ(f->GetString("general.architecture").value(), "qwen2");
  EXPECT_TRUE(f->Has("qwen2.attention.head_count_kv"));
}

TEST_F(HfConvertTest, LlamaBiasesArePermutedLikeWeights) {
  WriteModel("LlamaForCausalLM", true, /*biases=*/true, {{"attention_bias", true}});
  auto f = Convert();
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ(Floats(*f, "blk.0.attn_q.bias"), (std::vector<float>{0, 200, 100, 300, 400, 600, 500, 700}));
  EXPECT_EQ(Floats(*f, "blk.0.attn_v.bias"), Ramp(4, 1));
}

TEST_F(HfConvertTest, QuantizedTypesKeepNormsInF32AndFallBackOnShortRows) {
  WriteModel("LlamaForCausalLM", true, false);
  auto f = Convert(DType::kQ8_0);  // rows of 8 and 16 elements: not whole Q8_0 blocks
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ(f->FindTensor("blk.0.attn_q.weight")->dtype, DType::kF16);
  EXPECT_EQ(f->FindTensor("blk.0.attn_norm.weight")->dtype, DType::kF32);
  EXPECT_EQ(f->GetUint("general.file_type").value(), 7u);
  EXPECT_EQ(f->GetUint("general.quantization_version").value(), 2u);
  EXPECT_EQ(StorageType(DType::kQ4_K, 576, true), DType::kQ4_0);
  EXPECT_EQ(StorageType(DType::kQ6_K, 576, true), DType::kQ8_0);
  EXPECT_EQ(StorageType(DType::kQ4_K, 512, true), DType::kQ4_K);
  EXPECT_EQ(StorageType(DType::kQ4_K, 512, false), DType::kF32);
}

TEST_F(HfConvertTest, Llama3RopeScalingBecomesRopeFreqsTensor) {
  WriteModel("LlamaForCausalLM", true, false,
             {{"rope_scaling", {{"rope_type", "llama3"}, {"factor", 32.0}, {"low_freq_factor", 1.0},
                                {"high_freq_factor", 4.0}, {"original_max_position_embeddings", 8192}}},
              {"rope_theta", 500000.0}});
  auto f = Convert();
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  const auto freqs = Floats(*f, "rope_freqs.weight");
  ASSERT_EQ(freqs.size(), 2u);  // head_dim / 2
  // freq 0 = 1 (wavelength 2π < 2048: unscaled); freq 1 = 500000^-0.5: wavelength 4443,
  // between 2048 and 8192, so smoothed: 1 / ((1 - s)/32 + s), s = (8192/4443 - 1)/3.
  EXPECT_EQ(freqs[0], 1.0f);
  const double s = (8192.0 / (2 * M_PI * std::sqrt(500000.0)) - 1) / 3;
  EXPECT_NEAR(freqs[1], 1 / ((1 - s) / 32 + s), 1e-4);
}

TEST_F(HfConvertTest, ReadsTransformers5RopeParameters) {
  // transformers 5 config.json: no rope_theta / rope_scaling, a rope_parameters object.
  WriteModel("LlamaForCausalLM", true, false,
             {{"rope_parameters", {{"rope_type", "llama3"}, {"factor", 32.0}, {"low_freq_factor", 1.0},
                                   {"high_freq_factor", 4.0}, {"original_max_position_embeddings", 8192},
                                   {"rope_theta", 500000.0}}}});
  json cfg = json::parse(ReadFile(Path("config.json")).value());
  cfg.erase("rope_theta");
  ASSERT_TRUE(WriteFileAtomic(Path("config.json"), cfg.dump()).ok());
  auto f = Convert();
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ(f->GetFloat("llama.rope.freq_base").value(), 500000.0);
  const auto freqs = Floats(*f, "rope_freqs.weight");
  ASSERT_EQ(freqs.size(), 2u);
  const double s = (8192.0 / (2 * M_PI * std::sqrt(500000.0)) - 1) / 3;
  EXPECT_NEAR(freqs[1], 1 / ((1 - s) / 32 + s), 1e-4);
}

TEST_F(HfConvertTest, WritesTokenizerSection) {
  WriteModel("LlamaForCausalLM", true, false);
  json tok = {{"model", {{"type", "BPE"},
                         {"vocab", {{"a", 0}, {"b", 1}, {"ab", 2}, {"Ġ", 3}}},
                         {"merges", {"a b"}}}},
              {"added_tokens", {{{"id", 4}, {"content", "<|im_start|>"}, {"special", true}},
                                {{"id", 5}, {"content", "<|im_end|>"}, {"special", true}}}},
              {"pre_tokenizer", {{"type", "Sequence"},
                                 {"pretokenizers", {{{"type", "Digits"}, {"individual_digits", true}},
                                                    {{"type", "ByteLevel"}, {"add_prefix_space", false},
                                                     {"use_regex", true}}}}}}};
  ASSERT_TRUE(WriteFileAtomic(Path("tokenizer.json"), tok.dump()).ok());
  json tc = {{"bos_token", "<|im_start|>"}, {"eos_token", {{"content", "<|im_end|>"}}},
             {"chat_template", "{% for m in messages %}{{ m.content }}{% endfor %}"}};
  ASSERT_TRUE(WriteFileAtomic(Path("tokenizer_config.json"), tc.dump()).ok());
  auto f = Convert();
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ(f->GetString("tokenizer.ggml.model").value(), "gpt2");
  EXPECT_EQ(f->GetString("tokenizer.ggml.pre").value(), "smollm");
  EXPECT_EQ(f->GetStringArray("tokenizer.ggml.tokens").value(),
            (std::vector<std::string_view>{"a", "b", "ab", "Ġ", "<|im_start|>", "<|im_end|>"}));
  EXPECT_EQ(f->GetIntArray("tokenizer.ggml.token_type").value(),
            (std::vector<int64_t>{1, 1, 1, 1, 3, 3}));
  EXPECT_EQ(f->GetStringArray("tokenizer.ggml.merges").value(), (std::vector<std::string_view>{"a b"}));
  EXPECT_EQ(f->GetUint("tokenizer.ggml.bos_token_id").value(), 4u);
  EXPECT_EQ(f->GetUint("tokenizer.ggml.eos_token_id").value(), 5u);
  EXPECT_EQ(f->GetString("tokenizer.chat_template").value(),
            "{% for m in messages %}{{ m.content }}{% endfor %}");
}

TEST_F(HfConvertTest, RejectsBrokenCheckpoints) {
  WriteModel("GPT2LMHeadModel", true, false);
  EXPECT_EQ(Convert().status().code(), StatusCode::kNotSupported);
  WriteModel("LlamaForCausalLM", true, false, {{"hidden_size", 16}});
  auto shape = Convert();
  EXPECT_EQ(shape.status().code(), StatusCode::kCorruption);
  EXPECT_NE(shape.status().message().find("shape"), std::string::npos) << shape.status().ToString();
  WriteModel("LlamaForCausalLM", true, false, {{"num_hidden_layers", 2}});
  auto missing = Convert();
  EXPECT_NE(missing.status().message().find("model.layers.1.input_layernorm.weight"), std::string::npos)
      << missing.status().ToString();
  EXPECT_FALSE(std::filesystem::exists(Path("out.gguf")));
}

TEST(PermuteForRopeTest, HandComputedHeadDim8) {
  // One head of head_dim 8, one column: halves layout [x0..x3 | x4..x7] becomes pairs
  // (x0,x4), (x1,x5), (x2,x6), (x3,x7).
  const std::vector<float> w = {0, 1, 2, 3, 4, 5, 6, 7};
  EXPECT_EQ(PermuteForRope(w, 8, 1, 1), (std::vector<float>{0, 4, 1, 5, 2, 6, 3, 7}));
  EXPECT_EQ(PermuteForRope(w, 8, 1, 2), (std::vector<float>{0, 2, 1, 3, 4, 6, 5, 7}));
}

TEST(SafetensorsTest, ValidatesHeaderAndBounds) {
  SafetensorsBuilder b;
  b.Add("w", {2, 3}, {1, 2, 3, 4, 5, 6});
  auto ok = SafetensorsFile::FromBytes(b.Bytes(), "ok.safetensors");
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(ok->ReadF32(*ok->Find("w"))[5], 6.0f);
  EXPECT_EQ(ok->Find("nope"), nullptr);

  auto expect_bad = [](const std::string& bytes, StatusCode code, const std::string& needle) {
    auto r = SafetensorsFile::FromBytes(bytes, "bad.safetensors");
    ASSERT_FALSE(r.ok()) << needle;
    EXPECT_EQ(r.status().code(), code) << r.status().ToString();
    EXPECT_NE(r.status().message().find(needle), std::string::npos) << r.status().ToString();
    EXPECT_NE(r.status().message().find("bad.safetensors"), std::string::npos);
  };
  std::string s = b.Bytes();
  expect_bad(s.substr(0, 4), StatusCode::kCorruption, "too short");
  std::string big = s;
  big[7] = 0x7f;
  expect_bad(big, StatusCode::kCorruption, "header length");
  expect_bad(s.substr(0, s.size() - 1), StatusCode::kCorruption, "past the end");
  auto with_header = [&](const json& h) {
    const std::string text = h.dump();
    const uint64_t n = text.size();
    return std::string(reinterpret_cast<const char*>(&n), 8) + text + std::string(24, '\0');
  };
  expect_bad(with_header(json::array()), StatusCode::kCorruption, "not a JSON object");
  expect_bad(with_header({{"w", {{"dtype", "F32"}, {"shape", {2}}, {"data_offsets", {0, 12}}}}}),
             StatusCode::kCorruption, "shape needs 8 bytes");
  expect_bad(with_header({{"w", {{"dtype", "I64"}, {"shape", {1}}, {"data_offsets", {0, 8}}}}}),
             StatusCode::kNotSupported, "I64");
  expect_bad(with_header({{"a", {{"dtype", "F32"}, {"shape", {4}}, {"data_offsets", {0, 16}}}},
                          {"b", {{"dtype", "F32"}, {"shape", {2}}, {"data_offsets", {8, 16}}}}}),
             StatusCode::kCorruption, "overlaps");
  expect_bad(with_header({{"w", {{"dtype", "F32"}, {"shape", {-1}}, {"data_offsets", {0, 4}}}}}),
             StatusCode::kCorruption, "non-negative");
  expect_bad(with_header({{"w", {{"dtype", "F32"}, {"shape", {1}}, {"data_offsets", {8, 4}}}}}),
             StatusCode::kCorruption, "begin > end");
}

}  // namespace
}  // namespace pocket::formats

namespace pocket::formats {
namespace {
TEST(SafetensorsTest, FuzzSeedsAreValidFiles) {
  const std::string dir = std::string(POCKET_SOURCE_DIR) + "/testdata/fuzz/safetensors_fuzz/";
  auto a = SafetensorsFile::Open(dir + "f32.safetensors");
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ(a->metadata().at("format"), "pt");
  EXPECT_EQ(a->ReadF32(*a->Find("w"))[3], 4.0f);
  auto b = SafetensorsFile::Open(dir + "mixed.safetensors");
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  EXPECT_EQ(b->ReadF32(*b->Find("a")), (std::vector<float>{1.0f, -2.0f}));
  EXPECT_EQ(b->ReadF32(*b->Find("b")), (std::vector<float>{1.0f, 2.0f}));
  EXPECT_EQ(b->ReadF32(*b->Find("c")), (std::vector<float>{5.0f}));
}
}  // namespace
}  // namespace pocket::formats
