// Reading a Llama-family model out of a GGUF file: config from metadata, weights as views.
#include <cstdint>
#include <string>

#include "formats/gguf.h"
#include "formats/gguf_names.h"
#include "model/config.h"
#include "model/weights.h"

namespace pocket::model {
namespace {

namespace names = formats::gguf_names;

// Metadata int as a positive int, with a default when absent (or an error when required).
Result<int> GetPositiveInt(const formats::GgufFile& f, const std::string& key,
                           std::optional<int> fallback) {
  if (!f.Has(key)) {
    if (fallback.has_value()) return *fallback;
    return Status::InvalidArgument("llama: gguf " + f.path() + ": missing key " + key);
  }
  PK_ASSIGN_OR_RETURN(uint64_t v, f.GetUint(key));
  if (v == 0 || v > (1u << 30)) {
    return Status::InvalidArgument("llama: gguf " + f.path() + ": " + key + " = " +
                                   std::to_string(v) + " is out of range");
  }
  return static_cast<int>(v);
}

Result<float> GetFloatOr(const formats::GgufFile& f, const std::string& key, float fallback) {
  if (!f.Has(key)) return fallback;
  PK_ASSIGN_OR_RETURN(double v, f.GetFloat(key));
  return static_cast<float>(v);
}

Result<tensor::TensorView> View(const formats::GgufFile& f, const std::string& name) {
  const formats::TensorInfo* t = f.FindTensor(name);
  if (t == nullptr) return Status::NotFound("llama: tensor " + name + " is missing");
  if (t->ne.size() > 4) return Status::InvalidArgument("llama: " + name + " has > 4 dims");
  tensor::TensorView v;
  v.dtype = t->dtype;
  for (size_t i = 0; i < t->ne.size(); ++i) v.ne[i] = static_cast<int64_t>(t->ne[i]);
  v.data = f.TensorBytes(*t).data();
  // Float rows are read as float/uint16 arrays: a file whose alignment or offsets leave
  // them misaligned is refused rather than read with undefined behaviour.
  const size_t need = t->dtype == tensor::DType::kF32 ? 4 : 2;
  if (reinterpret_cast<uintptr_t>(v.data) % need != 0) {
    return Status::InvalidArgument("llama: tensor " + name + " data is not " +
                                   std::to_string(need) + "-byte aligned in the file");
  }
  return v;
}

}  // namespace

Result<LlamaConfig> LlamaConfig::FromGguf(const formats::GgufFile& f) {
  LlamaConfig c;
  PK_ASSIGN_OR_RETURN(c.arch, f.GetString(names::kGeneralArchitecture));
  if (c.arch != "llama" && c.arch != "qwen2") {
    return Status::NotSupported("llama: gguf " + f.path() + ": architecture '" + c.arch +
                                "' is not supported (llama, qwen2)");
  }
  auto key = [&c](const char* key_name) { return names::ArchKey(c.arch, key_name); };
  PK_ASSIGN_OR_RETURN(c.d_model, GetPositiveInt(f, key(names::kEmbeddingLength), std::nullopt));
  PK_ASSIGN_OR_RETURN(c.num_layers, GetPositiveInt(f, key(names::kBlockCount), std::nullopt));
  PK_ASSIGN_OR_RETURN(c.d_ff, GetPositiveInt(f, key(names::kFeedForwardLength), std::nullopt));
  PK_ASSIGN_OR_RETURN(c.num_heads, GetPositiveInt(f, key(names::kHeadCount), std::nullopt));
  PK_ASSIGN_OR_RETURN(c.num_kv_heads, GetPositiveInt(f, key(names::kHeadCountKv), c.num_heads));
  PK_ASSIGN_OR_RETURN(c.context_length,
                      GetPositiveInt(f, key(names::kContextLength), std::nullopt));
  const int default_head_dim = c.d_model / c.num_heads;
  PK_ASSIGN_OR_RETURN(c.head_dim, GetPositiveInt(f, key(names::kKeyLength), default_head_dim));
  PK_ASSIGN_OR_RETURN(int value_length, GetPositiveInt(f, key(names::kValueLength), c.head_dim));
  if (value_length != c.head_dim) {
    return Status::NotSupported("llama: gguf " + f.path() + ": attention.value_length " +
                                std::to_string(value_length) + " != key_length " +
                                std::to_string(c.head_dim));
  }
  PK_ASSIGN_OR_RETURN(int rope_dim, GetPositiveInt(f, key(names::kRopeDimensionCount), c.head_dim));
  if (rope_dim != c.head_dim) {
    return Status::NotSupported("llama: gguf " + f.path() + ": partial RoPE (" +
                                key(names::kRopeDimensionCount) + " " + std::to_string(rope_dim) +
                                ", head_dim " + std::to_string(c.head_dim) + ")");
  }
  PK_ASSIGN_OR_RETURN(c.rms_eps, GetFloatOr(f, key(names::kLayerNormRmsEpsilon), 1e-5f));
  PK_ASSIGN_OR_RETURN(c.rope_freq_base, GetFloatOr(f, key(names::kRopeFreqBase), 10000.0f));
  c.rope_neox = c.arch == "qwen2";

  std::string scaling = "none";
  if (f.Has(key(names::kRopeScalingType))) {
    PK_ASSIGN_OR_RETURN(scaling, f.GetString(key(names::kRopeScalingType)));
  }
  PK_ASSIGN_OR_RETURN(c.rope_scaling_factor, GetFloatOr(f, key(names::kRopeScalingFactor), 1.0f));
  if (scaling == "none" && f.Has(key(names::kRopeScaleLinear))) {  // older files
    scaling = "linear";
    PK_ASSIGN_OR_RETURN(float scale, GetFloatOr(f, key(names::kRopeScaleLinear), 1.0f));
    c.rope_scaling_factor = scale;
  }
  if (scaling == "linear") {
    c.rope_scaling = c.rope_scaling_factor == 1.0f ? RopeScaling::kNone : RopeScaling::kLinear;
  } else if (scaling == "llama3") {
    c.rope_scaling = RopeScaling::kLlama3;
    PK_ASSIGN_OR_RETURN(c.rope_original_context,
                        GetPositiveInt(f, key(names::kRopeScalingOriginalContextLength), 8192));
    PK_ASSIGN_OR_RETURN(c.rope_low_freq_factor,
                        GetFloatOr(f, key(names::kRopeScalingLowFreqFactor), 1.0f));
    PK_ASSIGN_OR_RETURN(c.rope_high_freq_factor,
                        GetFloatOr(f, key(names::kRopeScalingHighFreqFactor), 4.0f));
  } else if (scaling != "none") {
    return Status::NotSupported("llama: gguf " + f.path() + ": rope scaling '" + scaling +
                                "' is not supported (none, linear, llama3)");
  }

  const formats::TensorInfo* embd = f.FindTensor(names::kTokenEmbd);
  if (embd == nullptr)
    return Status::NotFound(std::string("llama: tensor ") + names::kTokenEmbd + " is missing");
  const int embd_rows = embd->ne.size() >= 2 ? static_cast<int>(embd->ne[1]) : 0;
  PK_ASSIGN_OR_RETURN(c.vocab_size, GetPositiveInt(f, key(names::kVocabSize), embd_rows));
  c.tied_output = f.FindTensor(names::kOutput) == nullptr;
  c.qkv_bias = f.FindTensor(names::LayerTensor(0, names::kAttnQBias)) != nullptr;
  PK_RETURN_IF_ERROR(c.Validate());
  return c;
}

Result<LlamaWeights> BindWeights(const formats::GgufFile& f, const LlamaConfig& c) {
  LlamaWeights w;
  PK_ASSIGN_OR_RETURN(w.token_embd, View(f, names::kTokenEmbd));
  PK_ASSIGN_OR_RETURN(w.output_norm, View(f, names::kOutputNorm));
  if (c.tied_output) {
    w.output = w.token_embd;
  } else {
    PK_ASSIGN_OR_RETURN(w.output, View(f, names::kOutput));
  }
  if (f.FindTensor(names::kRopeFreqs) != nullptr) {
    PK_ASSIGN_OR_RETURN(w.rope_freqs, View(f, names::kRopeFreqs));
  }
  w.layers.resize(static_cast<size_t>(c.num_layers));
  for (int i = 0; i < c.num_layers; ++i) {
    LayerWeights& l = w.layers[static_cast<size_t>(i)];
    auto blk = [i](const char* tensor_name) { return names::LayerTensor(i, tensor_name); };
    PK_ASSIGN_OR_RETURN(l.attn_norm, View(f, blk(names::kAttnNorm)));
    PK_ASSIGN_OR_RETURN(l.wq, View(f, blk(names::kAttnQ)));
    PK_ASSIGN_OR_RETURN(l.wk, View(f, blk(names::kAttnK)));
    PK_ASSIGN_OR_RETURN(l.wv, View(f, blk(names::kAttnV)));
    PK_ASSIGN_OR_RETURN(l.wo, View(f, blk(names::kAttnOutput)));
    if (c.qkv_bias) {
      PK_ASSIGN_OR_RETURN(l.bq, View(f, blk(names::kAttnQBias)));
      PK_ASSIGN_OR_RETURN(l.bk, View(f, blk(names::kAttnKBias)));
      PK_ASSIGN_OR_RETURN(l.bv, View(f, blk(names::kAttnVBias)));
    }
    PK_ASSIGN_OR_RETURN(l.ffn_norm, View(f, blk(names::kFfnNorm)));
    PK_ASSIGN_OR_RETURN(l.w_gate, View(f, blk(names::kFfnGate)));
    PK_ASSIGN_OR_RETURN(l.w_up, View(f, blk(names::kFfnUp)));
    PK_ASSIGN_OR_RETURN(l.w_down, View(f, blk(names::kFfnDown)));
  }
  PK_RETURN_IF_ERROR(CheckWeights(w, c));
  return w;
}

}  // namespace pocket::model
