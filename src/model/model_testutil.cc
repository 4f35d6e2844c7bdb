#include "model/model_testutil.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>
#include <random>

#include "base/file.h"
#include "formats/gguf.h"
#include "formats/gguf_names.h"
#include "tensor/quant.h"

namespace pocket::model::testing {

namespace names = formats::gguf_names;

namespace {

class Rng {
 public:
  explicit Rng(uint64_t seed) : gen_(seed) {}
  // Box-Muller over mt19937_64 so the values do not depend on the standard library.
  float Normal() {
    const double u1 = (static_cast<double>(gen_() >> 11) + 0.5) * 0x1.0p-53;
    const double u2 = static_cast<double>(gen_() >> 11) * 0x1.0p-53;
    return static_cast<float>(std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2));
  }

 private:
  std::mt19937_64 gen_;
};

std::string Encode(tensor::DType dtype, const std::vector<float>& values, size_t row_len) {
  const size_t rows = values.size() / row_len;
  std::string bytes(tensor::RowBytes(dtype, row_len) * rows, '\0');
  for (size_t r = 0; r < rows; ++r) {
    tensor::QuantizeRow(dtype, values.data() + r * row_len,
                        bytes.data() + r * tensor::RowBytes(dtype, row_len), row_len);
  }
  return bytes;
}

}  // namespace

LlamaConfig TinyConfig() {
  LlamaConfig c;
  c.arch = "llama";
  c.d_model = 64;
  c.num_layers = 2;
  c.num_heads = 4;
  c.num_kv_heads = 2;
  c.head_dim = 16;
  c.d_ff = 128;
  c.vocab_size = 96;
  c.context_length = 64;
  c.rms_eps = 1e-5f;
  c.rope_freq_base = 10000.0f;
  return c;
}

namespace {

// Fills `w` with the model's metadata and tensors; with spec.cheap_values the matrices are
// produced lazily at write time from a small pool of normals (for large models).
Status Build(const RandomModelSpec& spec, Rng& rng, const std::vector<float>& pool,
             formats::GgufWriter& w) {
  const LlamaConfig& c = spec.config;
  PK_RETURN_IF_ERROR(c.Validate());
  auto key = [&c](const char* key_name) { return names::ArchKey(c.arch, key_name); };
  w.SetString(names::kGeneralArchitecture, c.arch);
  w.SetString(names::kGeneralName, "pocket random test model");
  w.SetUint32(key(names::kContextLength), static_cast<uint32_t>(c.context_length));
  w.SetUint32(key(names::kEmbeddingLength), static_cast<uint32_t>(c.d_model));
  w.SetUint32(key(names::kBlockCount), static_cast<uint32_t>(c.num_layers));
  w.SetUint32(key(names::kFeedForwardLength), static_cast<uint32_t>(c.d_ff));
  w.SetUint32(key(names::kHeadCount), static_cast<uint32_t>(c.num_heads));
  w.SetUint32(key(names::kHeadCountKv), static_cast<uint32_t>(c.num_kv_heads));
  if (c.head_dim != c.d_model / c.num_heads) {
    w.SetUint32(key(names::kKeyLength), static_cast<uint32_t>(c.head_dim));
    w.SetUint32(key(names::kValueLength), static_cast<uint32_t>(c.head_dim));
  }
  w.SetUint32(key(names::kRopeDimensionCount), static_cast<uint32_t>(c.head_dim));
  w.SetFloat32(key(names::kLayerNormRmsEpsilon), c.rms_eps);
  w.SetFloat32(key(names::kRopeFreqBase), c.rope_freq_base);
  w.SetUint32(key(names::kVocabSize), static_cast<uint32_t>(c.vocab_size));
  if (c.rope_scaling == RopeScaling::kLinear) {
    w.SetString(key(names::kRopeScalingType), "linear");
    w.SetFloat32(key(names::kRopeScalingFactor), c.rope_scaling_factor);
  } else if (c.rope_scaling == RopeScaling::kLlama3 && !spec.write_rope_freqs) {
    w.SetString(key(names::kRopeScalingType), "llama3");
    w.SetFloat32(key(names::kRopeScalingFactor), c.rope_scaling_factor);
    w.SetUint32(key(names::kRopeScalingOriginalContextLength),
                static_cast<uint32_t>(c.rope_original_context));
    w.SetFloat32(key(names::kRopeScalingLowFreqFactor), c.rope_low_freq_factor);
    w.SetFloat32(key(names::kRopeScalingHighFreqFactor), c.rope_high_freq_factor);
  }

  uint64_t tensor_index = 0;
  auto matrix = [&](const std::string& name, int in, int out, float stddev) -> Status {
    const std::vector<uint64_t> ne = {static_cast<uint64_t>(in), static_cast<uint64_t>(out)};
    if (spec.cheap_values) {
      const uint64_t offset = 977 * ++tensor_index;
      const tensor::DType dtype = spec.matrix_dtype;
      return w.AddTensorLazy(name, ne, dtype, [&pool, offset, in, out, stddev, dtype]() {
        std::vector<float> v(static_cast<size_t>(in) * static_cast<size_t>(out));
        for (size_t i = 0; i < v.size(); ++i) {
          v[i] = stddev * pool[(offset + i * 7 + i / pool.size()) % pool.size()];
        }
        return Result<std::string>(Encode(dtype, v, static_cast<size_t>(in)));
      });
    }
    std::vector<float> v(static_cast<size_t>(in) * static_cast<size_t>(out));
    for (float& x : v) x = stddev * rng.Normal();
    return w.AddTensor(name, ne, spec.matrix_dtype,
                       Encode(spec.matrix_dtype, v, static_cast<size_t>(in)));
  };
  auto vec = [&](const std::string& name, int n, float mean, float stddev) -> Status {
    std::vector<float> v(static_cast<size_t>(n));
    for (float& x : v) x = mean + stddev * rng.Normal();
    return w.AddTensor(name, {static_cast<uint64_t>(n)}, tensor::DType::kF32,
                       std::string(reinterpret_cast<const char*>(v.data()), v.size() * 4));
  };
  auto inv_sqrt = [](int n) { return 1.0f / std::sqrt(static_cast<float>(n)); };

  PK_RETURN_IF_ERROR(matrix(names::kTokenEmbd, c.d_model, c.vocab_size, 1.0f));
  PK_RETURN_IF_ERROR(vec(names::kOutputNorm, c.d_model, 1.0f, 0.2f));
  if (!c.tied_output) {
    PK_RETURN_IF_ERROR(matrix(names::kOutput, c.d_model, c.vocab_size, inv_sqrt(c.d_model)));
  }
  if (spec.write_rope_freqs && c.rope_scaling == RopeScaling::kLlama3) {
    // Factors such that base_inv_freq / factor == the llama3 inv_freq.
    LlamaConfig plain = c;
    plain.rope_scaling = RopeScaling::kNone;
    const std::vector<float> base = plain.RopeInvFreq(), scaled = c.RopeInvFreq();
    std::vector<float> f(base.size());
    for (size_t i = 0; i < f.size(); ++i) f[i] = base[i] / scaled[i];
    PK_RETURN_IF_ERROR(
        w.AddTensor(names::kRopeFreqs, {f.size()}, tensor::DType::kF32,
                    std::string(reinterpret_cast<const char*>(f.data()), f.size() * 4)));
  }
  for (int i = 0; i < c.num_layers; ++i) {
    auto blk = [i](const char* tensor_name) { return names::LayerTensor(i, tensor_name); };
    PK_RETURN_IF_ERROR(vec(blk(names::kAttnNorm), c.d_model, 1.0f, 0.2f));
    PK_RETURN_IF_ERROR(matrix(blk(names::kAttnQ), c.d_model, c.q_dim(), inv_sqrt(c.d_model)));
    PK_RETURN_IF_ERROR(matrix(blk(names::kAttnK), c.d_model, c.kv_dim(), inv_sqrt(c.d_model)));
    PK_RETURN_IF_ERROR(matrix(blk(names::kAttnV), c.d_model, c.kv_dim(), inv_sqrt(c.d_model)));
    if (c.qkv_bias) {
      PK_RETURN_IF_ERROR(vec(blk(names::kAttnQBias), c.q_dim(), 0.0f, 0.5f));
      PK_RETURN_IF_ERROR(vec(blk(names::kAttnKBias), c.kv_dim(), 0.0f, 0.5f));
      PK_RETURN_IF_ERROR(vec(blk(names::kAttnVBias), c.kv_dim(), 0.0f, 0.5f));
    }
    PK_RETURN_IF_ERROR(matrix(blk(names::kAttnOutput), c.q_dim(), c.d_model, inv_sqrt(c.q_dim())));
    PK_RETURN_IF_ERROR(vec(blk(names::kFfnNorm), c.d_model, 1.0f, 0.2f));
    PK_RETURN_IF_ERROR(matrix(blk(names::kFfnGate), c.d_model, c.d_ff, inv_sqrt(c.d_model)));
    PK_RETURN_IF_ERROR(matrix(blk(names::kFfnUp), c.d_model, c.d_ff, inv_sqrt(c.d_model)));
    PK_RETURN_IF_ERROR(matrix(blk(names::kFfnDown), c.d_ff, c.d_model, inv_sqrt(c.d_ff)));
  }
  return Status::Ok();
}

std::vector<float> Pool(Rng& rng) {
  std::vector<float> pool(4099);
  for (float& x : pool) x = rng.Normal();
  return pool;
}

}  // namespace

Result<std::string> RandomModelGguf(const RandomModelSpec& spec) {
  Rng rng(spec.seed);
  const std::vector<float> pool = Pool(rng);
  formats::GgufWriter w;
  PK_RETURN_IF_ERROR(Build(spec, rng, pool, w));
  return w.Serialize();
}

Status WriteRandomModel(const RandomModelSpec& spec, const std::string& path) {
  Rng rng(spec.seed);
  const std::vector<float> pool = Pool(rng);
  formats::GgufWriter w;
  PK_RETURN_IF_ERROR(Build(spec, rng, pool, w));
  return w.Write(path);
}

Result<std::unique_ptr<LlamaModel>> RandomModel(const RandomModelSpec& spec,
                                                const LoadOptions& opts) {
  PK_ASSIGN_OR_RETURN(std::string bytes, RandomModelGguf(spec));
  PK_ASSIGN_OR_RETURN(formats::GgufFile f, formats::GgufFile::FromBytes(std::move(bytes), "random"));
  return LlamaModel::FromGguf(std::move(f), opts);
}

double MaxRelError(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size() || b.empty()) return std::numeric_limits<double>::infinity();
  double max_diff = 0.0, max_ref = 0.0;
  for (size_t i = 0; i < a.size(); ++i) {
    max_diff = std::max(max_diff, std::abs(static_cast<double>(a[i]) - b[i]));
    max_ref = std::max(max_ref, std::abs(static_cast<double>(b[i])));
  }
  return max_diff / max_ref;
}

}  // namespace pocket::model::testing
