// LlamaModel (fast path on the kernels) against ReferenceForward (plain loops) on random
// models built at test time, plus KV cache semantics, batch invariance, allocation-free
// decode and error handling.
#include "model/llama.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <numeric>

#include "formats/gguf.h"
#include "model/model_testutil.h"
#include "model/reference_forward.h"

namespace pocket::model {
namespace {

using testing::MaxRelError;
using testing::RandomModel;
using testing::RandomModelSpec;
using testing::TinyConfig;
using tensor::DType;

std::vector<int32_t> Tokens(size_t n, int vocab, uint32_t seed) {
  std::vector<int32_t> t(n);
  uint32_t x = seed * 2654435761u + 1;
  for (auto& v : t) {
    x = x * 1664525u + 1013904223u;
    v = static_cast<int32_t>((x >> 8) % static_cast<uint32_t>(vocab));
  }
  return t;
}

// All-position logits of the fast path, prefill in one Forward.
std::vector<float> FastLogits(LlamaModel& m, const std::vector<int32_t>& tokens,
                              DType cache_dtype = DType::kF32) {
  auto cache = m.NewKvCache(static_cast<int>(tokens.size()), cache_dtype);
  EXPECT_TRUE(cache.ok()) << cache.status().ToString();
  BatchEntry e{&*cache, tokens, 0, true};
  std::vector<float> logits;
  const Status s = m.Forward({&e, 1}, &logits);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return logits;
}

std::vector<float> RefLogits(const LlamaModel& m, const std::vector<int32_t>& tokens) {
  std::vector<float> logits;
  const Status s = ReferenceForward(m.config(), m.weights(), tokens, &logits);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return logits;
}

struct Shape {
  const char* name;
  LlamaConfig config;
};

std::vector<Shape> Shapes() {
  std::vector<Shape> shapes;
  LlamaConfig gqa = TinyConfig();
  shapes.push_back({"llama_gqa", gqa});
  LlamaConfig mqa = TinyConfig();
  mqa.num_heads = 6, mqa.num_kv_heads = 1, mqa.d_model = 96, mqa.rope_freq_base = 500000.0f;
  shapes.push_back({"llama_mqa", mqa});
  LlamaConfig mha = TinyConfig();
  mha.num_kv_heads = 4, mha.tied_output = false;
  shapes.push_back({"llama_mha_untied", mha});
  LlamaConfig l3 = TinyConfig();
  l3.rope_scaling = RopeScaling::kLlama3, l3.rope_scaling_factor = 8.0f,
  l3.rope_original_context = 16;
  shapes.push_back({"llama3_scaling", l3});
  LlamaConfig qwen = TinyConfig();
  qwen.arch = "qwen2", qwen.rope_neox = true, qwen.qkv_bias = true, qwen.tied_output = true,
  qwen.rope_freq_base = 1e6f;
  shapes.push_back({"qwen2_bias", qwen});
  LlamaConfig hd = TinyConfig();  // head_dim != d_model / num_heads (key_length in GGUF)
  hd.head_dim = 32;
  shapes.push_back({"head_dim_32", hd});
  return shapes;
}

TEST(LlamaConfigTest, ReadsMetadataAndTensorTable) {
  RandomModelSpec spec;
  spec.config = TinyConfig();
  spec.config.arch = "qwen2";
  spec.config.rope_neox = true;
  spec.config.qkv_bias = true;
  spec.config.tied_output = false;
  auto m = RandomModel(spec);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  const LlamaConfig& c = (*m)->config();
  EXPECT_EQ(c.arch, "qwen2");
  EXPECT_EQ(c.d_model, 64);
  EXPECT_EQ(c.num_layers, 2);
  EXPECT_EQ(c.num_heads, 4);
  EXPECT_EQ(c.num_kv_heads, 2);
  EXPECT_EQ(c.head_dim, 16);
  EXPECT_EQ(c.d_ff, 128);
  EXPECT_EQ(c.vocab_size, 96);
  EXPECT_EQ(c.context_length, 64);
  EXPECT_TRUE(c.rope_neox);
  EXPECT_TRUE(c.qkv_bias);
  EXPECT_FALSE(c.tied_output);
  // Weights are views into the file bytes, never copies.
  const auto* t = (*m)->gguf().FindTensor("blk.1.ffn_down.weight");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ((*m)->weights().layers[1].w_down.data, (*m)->gguf().TensorBytes(*t).data());
  EXPECT_GT((*m)->weight_bytes(), 0u);
}

TEST(LlamaConfigTest, RopeInvFreqLlama3MatchesTransformers) {
  // inv_freq of HF LlamaRotaryEmbedding for head_dim 16, theta 1e4, llama3 factor 8,
  // low 1, high 4, original context 64 (tests/golden/model/make_golden.py, llama3_scaling).
  LlamaConfig c = TinyConfig();
  c.rope_scaling = RopeScaling::kLlama3;
  c.rope_scaling_factor = 8.0f;
  c.rope_original_context = 64;
  const std::vector<double> hf = {1.0, 0.24438458681106567, 0.013042256236076355,
                                  0.0039528473280370235, 0.0012499999720603228,
                                  0.00039528473280370235, 0.0001250000059371814,
                                  3.9528473280370235e-05};
  const std::vector<float> ours = c.RopeInvFreq();
  ASSERT_EQ(ours.size(), hf.size());
  for (size_t i = 0; i < hf.size(); ++i) EXPECT_NEAR(ours[i], hf[i], 1e-6 * hf[i]) << i;
}

TEST(LlamaModelTest, RejectsUnsupportedArchitectureNamingIt) {
  RandomModelSpec spec;
  spec.config = TinyConfig();
  auto bytes = testing::RandomModelGguf(spec);
  ASSERT_TRUE(bytes.ok());
  auto f = formats::GgufFile::FromBytes(*bytes, "m");
  ASSERT_TRUE(f.ok());
  formats::GgufWriter w;
  for (const auto& kv : f->metadata()) w.SetValue(std::string(kv.key), kv.value);
  w.SetString("general.architecture", "gemma3");
  auto out = w.Serialize();
  ASSERT_TRUE(out.ok());
  auto g = formats::GgufFile::FromBytes(*out, "m2");
  ASSERT_TRUE(g.ok());
  auto m = LlamaModel::FromGguf(std::move(*g));
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), StatusCode::kNotSupported);
  EXPECT_THAT(m.status().message(), ::testing::HasSubstr("gemma3"));
}

TEST(LlamaModelTest, RejectsWrongShapeNamingTheTensor) {
  RandomModelSpec spec;
  spec.config = TinyConfig();
  auto bytes = testing::RandomModelGguf(spec);
  ASSERT_TRUE(bytes.ok());
  auto f = formats::GgufFile::FromBytes(*bytes, "m");
  ASSERT_TRUE(f.ok());
  formats::GgufWriter w;
  for (const auto& kv : f->metadata()) w.SetValue(std::string(kv.key), kv.value);
  for (const auto& t : f->tensors()) {
    auto span = f->TensorBytes(t);
    std::string data(reinterpret_cast<const char*>(span.data()), span.size());
    std::vector<uint64_t> ne = t.ne;
    if (t.name == "blk.1.attn_q.weight") {  // keep half the rows
      ne[1] /= 2;
      data.resize(data.size() / 2);
    }
    ASSERT_TRUE(w.AddTensor(t.name, ne, t.dtype, data).ok());
  }
  auto out = w.Serialize();
  ASSERT_TRUE(out.ok());
  auto g = formats::GgufFile::FromBytes(*out, "m2");
  ASSERT_TRUE(g.ok());
  auto m = LlamaModel::FromGguf(std::move(*g));
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(m.status().message(),
              ::testing::HasSubstr("blk.1.attn_q.weight has ne [64, 32], expected [64, 64]"));
}

// F32 weights: the fast path's float dot products differ from the double-accumulating
// reference only by float32 rounding (sums of ~100 products, a dozen chained ops):
// observed ~1e-6 relative, so 1e-4 leaves a wide margin yet catches any real bug (a wrong
// rotation or head mapping moves logits by O(1)).
TEST(LlamaModelTest, F32FastPathMatchesReferenceOnEveryShape) {
  for (const Shape& shape : Shapes()) {
    RandomModelSpec spec;
    spec.config = shape.config;
    spec.seed = 7;
    auto m = RandomModel(spec, {.threads = 2});
    ASSERT_TRUE(m.ok()) << shape.name << ": " << m.status().ToString();
    const auto tokens = Tokens(20, shape.config.vocab_size, 3);
    const auto fast = FastLogits(**m, tokens);
    const auto ref = RefLogits(**m, tokens);
    EXPECT_LT(MaxRelError(fast, ref), 1e-4) << shape.name;
  }
}

// Quantized weights: both paths read the same blocks; the only modelled difference is
// that the fast path quantizes activations to 8 bits per block (kernels.h MatMul: int8
// with scale amax/127 per 32 for Q8_0/Q4_0 weights, Q8_K per 256 for Q4_K/Q6_K).
//  - Bound (hard): against the plain float reference. Int8 rounding adds uniform error up
//    to amax/254 per element, ~0.5% of the activation RMS for Gaussian-like blocks
//    (amax ~ 2.5-3 RMS), at each of the ~11 chained matmuls of this 2-layer model; the
//    logits move by ~1-2% of their range (observed 1.2-2.0%, printed): bound 4e-2. A wrong
//    block layout, scale or wiring moves them by O(100%).
//  - Explanation: against the reference with that activation quantization emulated. Fed
//    the same input, the kernels match the emulation to ~1e-7 (checked on these weights
//    while writing this test). End to end, most positions agree to ~2e-7 (printed); the
//    others follow an activation that lands within float rounding (~1e-6 relative) of a
//    .5 rounding step, which the two paths then round to neighbouring int8 values (about
//    1 in 10^4 elements; ~5 per run). Such a flip in K or V reaches every later position.
//    So this is asserted only in aggregate: the fast path is nearer the emulated reference
//    than the float one (RMS over all logits; observed ratio 1e-5 .. 0.55).
// F16/BF16 weights take float dot products (no activation quantization): 1e-4 as for F32.
TEST(LlamaModelTest, QuantizedFastPathMatchesReferenceOnSameWeights) {
  struct Case {
    DType dtype;
    double tolerance;
  };
  const Case cases[] = {{DType::kF16, 1e-4}, {DType::kBF16, 1e-4}, {DType::kQ8_0, 4e-2},
                        {DType::kQ4_0, 4e-2}, {DType::kQ4_K, 4e-2}, {DType::kQ6_K, 4e-2}};
  for (const Case& c : cases) {
    const std::string name(tensor::DTypeName(c.dtype));
    RandomModelSpec spec;
    spec.config = TinyConfig();
    spec.config.d_model = 256, spec.config.head_dim = 64, spec.config.d_ff = 512;
    spec.config.vocab_size = 128;
    spec.config.tied_output = false;
    spec.matrix_dtype = c.dtype;
    spec.seed = 21;
    auto m = RandomModel(spec, {.threads = 2});
    ASSERT_TRUE(m.ok()) << name << ": " << m.status().ToString();
    const auto tokens = Tokens(16, spec.config.vocab_size, 9);
    const auto fast = FastLogits(**m, tokens);
    std::vector<float> emulated;
    ASSERT_TRUE(ReferenceForward((*m)->config(), (*m)->weights(), tokens, &emulated, nullptr,
                                 {.emulate_activation_quant = true})
                    .ok());
    const size_t vocab = static_cast<size_t>(spec.config.vocab_size);
    size_t exact_positions = 0;
    for (size_t p = 0; p < tokens.size(); ++p) {
      const std::vector<float> a(fast.begin() + p * vocab, fast.begin() + (p + 1) * vocab);
      const std::vector<float> b(emulated.begin() + p * vocab, emulated.begin() + (p + 1) * vocab);
      if (MaxRelError(a, b) < 1e-4) ++exact_positions;
    }
    const auto float_ref = RefLogits(**m, tokens);
    const double err_float = MaxRelError(fast, float_ref);
    double ss_emulated = 0, ss_float = 0;
    for (size_t i = 0; i < fast.size(); ++i) {
      ss_emulated += (fast[i] - emulated[i]) * (fast[i] - emulated[i]);
      ss_float += (fast[i] - float_ref[i]) * (fast[i] - float_ref[i]);
    }
    const double rms_ratio = std::sqrt(ss_emulated / std::max(ss_float, 1e-30));
    EXPECT_LT(err_float, c.tolerance) << name;
    if (c.dtype != DType::kF16 && c.dtype != DType::kBF16) {
      EXPECT_LT(rms_ratio, 0.8) << name;
    }
    std::printf("[ measured ] %s fast vs float reference %.3g; vs emulated activation "
                "quantization: %zu/%zu positions within 1e-4, RMS ratio %.2g\n",
                name.c_str(), err_float, exact_positions, tokens.size(), rms_ratio);
  }
}

TEST(LlamaModelTest, Llama3ScalingFromRopeFreqsTensorEqualsMetadata) {
  RandomModelSpec spec;
  spec.config = Shapes()[3].config;
  auto from_meta = RandomModel(spec);
  spec.write_rope_freqs = true;
  auto from_tensor = RandomModel(spec);
  ASSERT_TRUE(from_meta.ok() && from_tensor.ok());
  EXPECT_NE((*from_tensor)->weights().rope_freqs.data, nullptr);
  const auto tokens = Tokens(24, spec.config.vocab_size, 5);
  EXPECT_LT(MaxRelError(FastLogits(**from_tensor, tokens), FastLogits(**from_meta, tokens)), 1e-5);
  EXPECT_LT(MaxRelError(RefLogits(**from_tensor, tokens), RefLogits(**from_meta, tokens)), 1e-5);
}

TEST(LlamaModelTest, HiddenMatchesReference) {
  RandomModelSpec spec;
  spec.config = TinyConfig();
  auto m = RandomModel(spec);
  ASSERT_TRUE(m.ok());
  const auto tokens = Tokens(9, spec.config.vocab_size, 11);
  std::vector<float> ref_logits, ref_hidden, hidden;
  ASSERT_TRUE(ReferenceForward((*m)->config(), (*m)->weights(), tokens, &ref_logits, &ref_hidden).ok());
  auto cache = (*m)->NewKvCache(16, DType::kF32);
  ASSERT_TRUE(cache.ok());
  BatchEntry e{&*cache, tokens, 0, true};
  ASSERT_TRUE((*m)->ForwardHidden({&e, 1}, &hidden).ok());
  EXPECT_LT(MaxRelError(hidden, ref_hidden), 1e-4);
  // Last-token-only mode returns the last row.
  auto cache2 = (*m)->NewKvCache(16, DType::kF32);
  BatchEntry e2{&*cache2, tokens, 0, false};
  std::vector<float> last;
  ASSERT_TRUE((*m)->ForwardHidden({&e2, 1}, &last).ok());
  ASSERT_EQ(last.size(), 64u);
  EXPECT_TRUE(std::equal(last.begin(), last.end(), hidden.end() - 64));
}

// Decoding token by token, prefilling in one call, and prefilling in chunks must give
// bit-identical logits: the kernels' results do not depend on how many tokens a call has.
TEST(LlamaModelTest, DecodeEqualsPrefillBitForBit) {
  RandomModelSpec spec;
  spec.config = TinyConfig();
  spec.matrix_dtype = DType::kQ8_0;
  auto m = RandomModel(spec, {.threads = 2});
  auto small = RandomModel(spec, {.threads = 1, .max_batch_tokens = 3});
  ASSERT_TRUE(m.ok() && small.ok());
  const auto tokens = Tokens(13, spec.config.vocab_size, 2);
  const auto prefill = FastLogits(**m, tokens);
  EXPECT_EQ(FastLogits(**small, tokens), prefill);  // chunked in steps of 3 tokens
  auto cache = (*m)->NewKvCache(13, DType::kF32);
  ASSERT_TRUE(cache.ok());
  std::vector<float> all, step;
  for (size_t i = 0; i < tokens.size(); ++i) {
    BatchEntry e{&*cache, std::span(tokens).subspan(i, 1), static_cast<int>(i), false};
    ASSERT_TRUE((*m)->Forward({&e, 1}, &step).ok());
    all.insert(all.end(), step.begin(), step.end());
  }
  EXPECT_EQ(all, prefill);
}

// The RoPE table starts small and doubles while a sequence grows past it: results equal a
// model whose table covered every position from the start.
TEST(LlamaModelTest, RopeTableGrowthKeepsResults) {
  RandomModelSpec spec;
  spec.config = TinyConfig();
  auto grown = RandomModel(spec, {.threads = 1, .rope_positions = 3});
  auto full = RandomModel(spec, {.threads = 1});
  ASSERT_TRUE(grown.ok() && full.ok());
  const auto tokens = Tokens(40, spec.config.vocab_size, 12);
  auto cache = (*grown)->NewKvCache(40, DType::kF32);
  ASSERT_TRUE(cache.ok());
  std::vector<float> all, step;
  for (size_t i = 0; i < tokens.size(); i += 5) {  // steps cross 3, 6, 12, 24, 40
    BatchEntry e{&*cache, std::span(tokens).subspan(i, 5), static_cast<int>(i), true};
    ASSERT_TRUE((*grown)->Forward({&e, 1}, &step).ok());
    all.insert(all.end(), step.begin(), step.end());
  }
  EXPECT_EQ(all, FastLogits(**full, tokens));
  EXPECT_LT(MaxRelError(all, RefLogits(**full, tokens)), 1e-4);
}

// Repacked matrices (the default) give the same bits as reading the mapping in place, for
// a model loaded from a real file (so the released file pages are read back where needed:
// the tied embedding rows).
TEST(LlamaModelTest, RepackedEqualsInPlaceBitForBit) {
  for (DType dtype : {DType::kQ4_0, DType::kQ8_0}) {
    const std::string name(tensor::DTypeName(dtype));
    RandomModelSpec spec;
    spec.config = TinyConfig();
    spec.config.d_model = 256, spec.config.head_dim = 64, spec.config.d_ff = 512;
    spec.config.vocab_size = 300;  // not a multiple of 8: the last row group is padded
    spec.config.tied_output = true;
    spec.matrix_dtype = dtype;
    spec.seed = 5;
    const std::string path = ::testing::TempDir() + "/pocket_repack_" + name + ".gguf";
    ASSERT_TRUE(WriteRandomModel(spec, path).ok());
    auto packed = LlamaModel::Load(path, {.threads = 2});
    auto in_place = LlamaModel::Load(path, {.threads = 2, .repack = false});
    ASSERT_TRUE(packed.ok() && in_place.ok()) << name;
    const auto tokens = Tokens(12, spec.config.vocab_size, 4);
    const auto a = FastLogits(**packed, tokens), b = FastLogits(**in_place, tokens);
    ASSERT_EQ(a.size(), b.size());
    EXPECT_TRUE(std::equal(a.begin(), a.end(), b.begin())) << name;
    std::filesystem::remove(path);
  }
}

TEST(LlamaModelTest, BatchedSequencesEqualSolo) {
  RandomModelSpec spec;
  spec.config = Shapes()[4].config;  // qwen2 with bias
  spec.matrix_dtype = DType::kQ4_0;
  auto m = RandomModel(spec, {.threads = 2, .max_batch_tokens = 16});
  ASSERT_TRUE(m.ok());
  const int vocab = spec.config.vocab_size;
  const auto a = Tokens(11, vocab, 1), b = Tokens(5, vocab, 2), c = Tokens(9, vocab, 3);
  const auto solo_a = FastLogits(**m, a), solo_b = FastLogits(**m, b), solo_c = FastLogits(**m, c);

  // Prefill a and b together (a's last rows spill into a second step of 16), then decode a
  // batch where c prefills while a and b decode one token each.
  auto ca = (*m)->NewKvCache(32, DType::kF32), cb = (*m)->NewKvCache(32, DType::kF32),
       cc = (*m)->NewKvCache(32, DType::kF32);
  ASSERT_TRUE(ca.ok() && cb.ok() && cc.ok());
  std::vector<BatchEntry> batch = {{&*ca, std::span(a).first(10), 0, true},
                                   {&*cb, std::span(b).first(4), 0, true}};
  std::vector<float> out;
  ASSERT_TRUE((*m)->Forward(batch, &out).ok());
  const size_t v = static_cast<size_t>(vocab);
  ASSERT_EQ(out.size(), 14 * v);
  EXPECT_TRUE(std::equal(out.begin(), out.begin() + 10 * v, solo_a.begin()));
  EXPECT_TRUE(std::equal(out.begin() + 10 * v, out.end(), solo_b.begin()));
  batch = {{&*ca, std::span(a).subspan(10), 10, false},
           {&*cc, c, 0, false},
           {&*cb, std::span(b).subspan(4), 4, false}};
  ASSERT_TRUE((*m)->Forward(batch, &out).ok());
  ASSERT_EQ(out.size(), 3 * v);
  EXPECT_TRUE(std::equal(out.begin(), out.begin() + v, solo_a.end() - v));
  EXPECT_TRUE(std::equal(out.begin() + v, out.begin() + 2 * v, solo_c.end() - v));
  EXPECT_TRUE(std::equal(out.begin() + 2 * v, out.end(), solo_b.end() - v));
}

TEST(LlamaModelTest, TruncateThenContinueEqualsFresh) {
  RandomModelSpec spec;
  spec.config = TinyConfig();
  auto m = RandomModel(spec);
  ASSERT_TRUE(m.ok());
  const auto tokens = Tokens(12, spec.config.vocab_size, 4);
  auto other = Tokens(12, spec.config.vocab_size, 5);
  std::copy(tokens.begin(), tokens.begin() + 6, other.begin());  // shared 6-token prefix
  auto cache = (*m)->NewKvCache(12, DType::kF32);
  ASSERT_TRUE(cache.ok());
  std::vector<float> out;
  BatchEntry e{&*cache, tokens, 0, false};
  ASSERT_TRUE((*m)->Forward({&e, 1}, &out).ok());
  ASSERT_TRUE(cache->Truncate(6).ok());
  EXPECT_FALSE(cache->Truncate(7).ok());
  BatchEntry e2{&*cache, std::span(other).subspan(6), 6, true};
  ASSERT_TRUE((*m)->Forward({&e2, 1}, &out).ok());
  const auto fresh = FastLogits(**m, other);
  EXPECT_TRUE(std::equal(out.begin(), out.end(), fresh.end() - static_cast<ptrdiff_t>(out.size())));
  cache->Clear();
  EXPECT_EQ(cache->num_tokens(), 0);
}

// An F16 cache rounds K and V to 11 significant bits (relative 2^-11 ~ 4.9e-4 each);
// through softmax and the remaining layers that stays well below 1e-2 of the logit range.
TEST(LlamaModelTest, F16CacheStaysCloseToF32) {
  RandomModelSpec spec;
  spec.config = TinyConfig();
  auto m = RandomModel(spec);
  ASSERT_TRUE(m.ok());
  const auto tokens = Tokens(20, spec.config.vocab_size, 6);
  EXPECT_LT(MaxRelError(FastLogits(**m, tokens, DType::kF16), RefLogits(**m, tokens)), 1e-2);
}

TEST(LlamaModelTest, DecodeStepDoesNotAllocate) {
  RandomModelSpec spec;
  spec.config = TinyConfig();
  spec.matrix_dtype = DType::kQ4_K;
  spec.config.d_model = 256, spec.config.head_dim = 64, spec.config.d_ff = 512;
  auto m = RandomModel(spec, {.threads = 2});
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  auto c1 = (*m)->NewKvCache(32, DType::kF16), c2 = (*m)->NewKvCache(32, DType::kF32);
  ASSERT_TRUE(c1.ok() && c2.ok());
  const auto tokens = Tokens(20, spec.config.vocab_size, 8);
  std::vector<float> logits;
  std::vector<BatchEntry> batch = {{&*c1, std::span(tokens).first(8), 0, false},
                                   {&*c2, std::span(tokens).first(4), 0, false}};
  ASSERT_TRUE((*m)->Forward(batch, &logits).ok());  // warm-up: workspaces reach full size
  for (int i = 0; i < 4; ++i) {
    batch = {{&*c1, std::span(tokens).subspan(8 + i, 1), 8 + i, false},
             {&*c2, std::span(tokens).subspan(4 + i, 1), 4 + i, false}};
    testing::StartCountingAllocations();
    const Status s = (*m)->Forward(batch, &logits);
    const int64_t allocations = testing::StopCountingAllocations();
    ASSERT_TRUE(s.ok()) << s.ToString();
    EXPECT_EQ(allocations, 0) << "decode step " << i;
  }
}

TEST(LlamaModelTest, RejectsBadBatchesWithoutTouchingCaches) {
  RandomModelSpec spec;
  spec.config = TinyConfig();
  auto m = RandomModel(spec);
  ASSERT_TRUE(m.ok());
  auto cache = (*m)->NewKvCache(8, DType::kF32);
  ASSERT_TRUE(cache.ok());
  const std::vector<int32_t> ok = {1, 2, 3}, bad = {1, 96}, long_seq(9, 1);
  std::vector<float> out;
  auto run = [&](std::vector<BatchEntry> b) { return (*m)->Forward(b, &out); };
  EXPECT_EQ(run({{&*cache, ok, 1, false}}).code(), StatusCode::kInvalidArgument);  // start_pos
  EXPECT_EQ(run({{&*cache, bad, 0, false}}).code(), StatusCode::kInvalidArgument);  // vocab
  EXPECT_EQ(run({{&*cache, long_seq, 0, false}}).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(run({{&*cache, ok, 0, false}, {&*cache, ok, 0, false}}).code(),
            StatusCode::kInvalidArgument);  // same cache twice
  EXPECT_EQ(run({{nullptr, ok, 0, false}}).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(cache->num_tokens(), 0);
  EXPECT_EQ((*m)->NewKvCache(0, DType::kF32).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ((*m)->NewKvCache(65, DType::kF32).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ((*m)->NewKvCache(8, DType::kQ8_0).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(
      KvCache::Create((*m)->backend(), 1 << 20, 1 << 20, 1 << 20, DType::kF32).status().code(),
      StatusCode::kResourceExhausted);
}

}  // namespace
}  // namespace pocket::model
