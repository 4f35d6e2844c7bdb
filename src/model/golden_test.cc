// LlamaModel and ReferenceForward against PyTorch: tiny random-weight transformers models
// (tests/golden/model/make_golden.py, run on the GPU machine in float64 from the float32
// weights) converted to GGUF F32 by `pocket convert` (which permutes Q/K rows for arch
// llama). Every position of the fixed 16-token sequence is compared. Fixtures and how they
// were made: testdata/models/README.md.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
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

// Greedy decoding with every op on `backend`: the 16 golden tokens as the prompt, then
// `steps` argmax tokens (lowest index among equal logits), one decode step at a time.
std::vector<int32_t> GreedyTokens(const std::string& path, BackendKind backend,
                                  const std::vector<int32_t>& prompt, int steps,
                                  std::vector<float>* first_logits) {
  auto m = LlamaModel::Load(path, {.backend = backend, .threads = 2});
  EXPECT_TRUE(m.ok()) << m.status().ToString();
  if (!m.ok()) return {};
  EXPECT_EQ((*m)->backend_kind(), backend);
  const int n = static_cast<int>(prompt.size()) + steps;
  auto cache = (*m)->NewKvCache(n, tensor::DType::kF16);
  EXPECT_TRUE(cache.ok());
  std::vector<int32_t> out;
  std::vector<float> logits;
  std::vector<int32_t> next = prompt;
  for (int i = 0; i < steps; ++i) {
    BatchEntry e{&*cache, next, cache->num_tokens(), false};
    EXPECT_TRUE((*m)->Forward({&e, 1}, &logits).ok());
    if (i == 0) *first_logits = logits;
    next = {static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin())};
    out.push_back(next[0]);
  }
  return out;
}

// The whole model on the reference backend (plain loops, double sums) gives the CPU
// backend's greedy tokens: 32 steps of each golden model with an F16 KV cache. The two
// differ only by float rounding (relative ~1e-6 on the logits, checked), far below the gap
// between the best two logits of these models.
TEST_P(GoldenTest, ReferenceBackendGivesTheSameGreedyTokensAsCpu) {
  const Case& c = GetParam();
  const Golden g = LoadGolden(c.name);
  ASSERT_EQ(g.tokens.size(), 16u);
  std::vector<float> cpu_logits, ref_logits;
  const auto cpu = GreedyTokens(GgufPath(c.name), BackendKind::kCpu, g.tokens, 32, &cpu_logits);
  const auto ref =
      GreedyTokens(GgufPath(c.name), BackendKind::kReference, g.tokens, 32, &ref_logits);
  ASSERT_EQ(cpu.size(), 32u);
  EXPECT_EQ(cpu, ref) << c.name;
  EXPECT_LT(testing::MaxRelError(cpu_logits, ref_logits), 1e-5) << c.name;
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
