// LlamaModel and ReferenceForward against PyTorch: tiny random-weight transformers models
// (tests/golden/model/make_golden.py, run on the GPU machine in float64 from the float32
// weights) converted to GGUF F32 by `pocket convert` (which permutes Q/K rows for arch
// llama). Every position of the fixed 16-token sequence is compared. Fixtures and how they
// were made: testdata/models/README.md.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "base/file.h"
#include "model/llama.h"
#include "model/model_testutil.h"
#include "model/reference_forward.h"

namespace pocket::model {
namespace {

struct Golden {
  std::vector<int32_t> tokens;
  std::vector<float> logits;  // [tokens][vocab]
  std::vector<float> hidden;  // [tokens][d_model]
  nlohmann::json meta;
};

std::string Dir(const std::string& name) {
  return std::string(POCKET_SOURCE_DIR) + "/testdata/models/" + name;
}

// The converted model; POCKET_GOLDEN_GGUF_DIR overrides the folder (to check another
// converter's output against the same goldens).
std::string GgufPath(const std::string& name) {
  if (const char* dir = std::getenv("POCKET_GOLDEN_GGUF_DIR")) return std::string(dir) + "/" + name + ".gguf";
  return Dir(name) + ".gguf";
}

std::vector<float> ReadFloats(const std::string& path) {
  auto bytes = ReadFile(path);
  EXPECT_TRUE(bytes.ok()) << bytes.status().ToString();
  if (!bytes.ok()) return {};
  std::vector<float> v(bytes->size() / sizeof(float));
  std::memcpy(v.data(), bytes->data(), v.size() * sizeof(float));  // little-endian host
  return v;
}

Golden LoadGolden(const std::string& name) {
  Golden g;
  auto json = ReadFile(Dir(name) + "/golden.json");
  EXPECT_TRUE(json.ok()) << json.status().ToString();
  if (!json.ok()) return g;
  g.meta = nlohmann::json::parse(*json, nullptr, /*allow_exceptions=*/false);
  EXPECT_FALSE(g.meta.is_discarded()) << name;
  for (const auto& t : g.meta["tokens"]) g.tokens.push_back(t.get<int32_t>());
  g.logits = ReadFloats(Dir(name) + "/logits.f32");
  g.hidden = ReadFloats(Dir(name) + "/hidden.f32");
  return g;
}

struct Case {
  const char* name;
  const char* arch;
  bool tied;
  bool bias;
  int num_kv_heads;
};

class GoldenTest : public ::testing::TestWithParam<Case> {};

// F32 weights against PyTorch: relative error max |ours - torch| / max |torch| < 1e-4 over
// all positions (the brief's bar). Float32 accumulation in ~100-term dot products gives
// ~1e-6 here (printed); a wrong RoPE pairing, Q/K permutation, head grouping, bias or norm
// gives O(1).
TEST_P(GoldenTest, F32LogitsMatchPyTorch) {
  const Case& c = GetParam();
  const Golden g = LoadGolden(c.name);
  ASSERT_EQ(g.tokens.size(), 16u);
  auto m = LlamaModel::Load(GgufPath(c.name), {.threads = 2});
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  const LlamaConfig& cfg = (*m)->config();
  EXPECT_EQ(cfg.arch, c.arch);
  EXPECT_EQ(cfg.tied_output, c.tied);
  EXPECT_EQ(cfg.qkv_bias, c.bias);
  EXPECT_EQ(cfg.num_kv_heads, c.num_kv_heads);
  ASSERT_EQ(g.logits.size(), g.tokens.size() * static_cast<size_t>(cfg.vocab_size));
  ASSERT_EQ(g.hidden.size(), g.tokens.size() * static_cast<size_t>(cfg.d_model));

  auto cache = (*m)->NewKvCache(static_cast<int>(g.tokens.size()), tensor::DType::kF32);
  ASSERT_TRUE(cache.ok());
  BatchEntry e{&*cache, g.tokens, 0, true};
  std::vector<float> logits, hidden;
  ASSERT_TRUE((*m)->Forward({&e, 1}, &logits).ok());
  auto cache2 = (*m)->NewKvCache(static_cast<int>(g.tokens.size()), tensor::DType::kF32);
  BatchEntry e2{&*cache2, g.tokens, 0, true};
  ASSERT_TRUE((*m)->ForwardHidden({&e2, 1}, &hidden).ok());
  std::vector<float> ref_logits, ref_hidden;
  ASSERT_TRUE(
      ReferenceForward(cfg, (*m)->weights(), g.tokens, &ref_logits, &ref_hidden).ok());

  const double fast_err = testing::MaxRelError(logits, g.logits);
  const double ref_err = testing::MaxRelError(ref_logits, g.logits);
  EXPECT_LT(fast_err, 1e-4) << c.name;
  EXPECT_LT(ref_err, 1e-4) << c.name;
  EXPECT_LT(testing::MaxRelError(hidden, g.hidden), 1e-4) << c.name;
  EXPECT_LT(testing::MaxRelError(ref_hidden, g.hidden), 1e-4) << c.name;
  std::printf("[ measured ] %s vs PyTorch: fast %.3g, reference %.3g (max rel err, %zu "
              "positions)\n", c.name, fast_err, ref_err, g.tokens.size());
}

INSTANTIATE_TEST_SUITE_P(
    Models, GoldenTest,
    ::testing::Values(Case{"llama_gqa", "llama", true, false, 2},
                      Case{"llama_mqa", "llama", true, false, 1},
                      Case{"llama_untied", "llama", false, false, 8},
                      Case{"llama3_scaling", "llama", false, false, 2},
                      Case{"qwen2_tied", "qwen2", true, true, 2},
                      Case{"qwen2_untied", "qwen2", false, true, 2}),
    [](const ::testing::TestParamInfo<Case>& p) { return std::string(p.param.name); });

}  // namespace
}  // namespace pocket::model
