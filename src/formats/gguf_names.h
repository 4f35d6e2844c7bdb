// The names of a Llama-family GGUF file's metadata keys and tensors, as llama.cpp writes and
// reads them (gguf-py/gguf/constants.py: Keys.General, Keys.LLM, Keys.Attention, Keys.Rope
// and the MODEL_TENSOR names of MODEL_ARCH.LLAMA / QWEN2). The one place they are spelt:
// the loader (model/gguf_load.cc), the shape check (model/weights.cc), the writers of test
// and random models (model/model_testutil.cc, formats/random_model.cc) and the HF converter
// (formats/hf_convert.cc) all name keys and tensors through here. It lives in formats, the
// lowest layer that writes them. Tokenizer keys (tokenizer.ggml.*) are the tokenizer's.
//
// Keys under the architecture's prefix: ArchKey("llama", kContextLength) is
// "llama.context_length". Tensors of layer i: LayerTensor(3, kAttnQ) is
// "blk.3.attn_q.weight". Thread safety: constants and pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace pocket::formats::gguf_names {

// Keys that do not depend on the architecture.
inline constexpr char kGeneralArchitecture[] = "general.architecture";
inline constexpr char kGeneralType[] = "general.type";
inline constexpr char kGeneralName[] = "general.name";
inline constexpr char kGeneralFileType[] = "general.file_type";
inline constexpr char kGeneralQuantizationVersion[] = "general.quantization_version";

// Keys under "<arch>." (see ArchKey).
inline constexpr char kContextLength[] = "context_length";
inline constexpr char kEmbeddingLength[] = "embedding_length";
inline constexpr char kBlockCount[] = "block_count";
inline constexpr char kFeedForwardLength[] = "feed_forward_length";
inline constexpr char kVocabSize[] = "vocab_size";
inline constexpr char kHeadCount[] = "attention.head_count";
inline constexpr char kHeadCountKv[] = "attention.head_count_kv";
inline constexpr char kKeyLength[] = "attention.key_length";
inline constexpr char kValueLength[] = "attention.value_length";
inline constexpr char kLayerNormRmsEpsilon[] = "attention.layer_norm_rms_epsilon";
inline constexpr char kRopeDimensionCount[] = "rope.dimension_count";
inline constexpr char kRopeFreqBase[] = "rope.freq_base";
inline constexpr char kRopeScalingType[] = "rope.scaling.type";
inline constexpr char kRopeScalingFactor[] = "rope.scaling.factor";
inline constexpr char kRopeScaleLinear[] = "rope.scale_linear";  // older files
inline constexpr char kRopeScalingOriginalContextLength[] = "rope.scaling.original_context_length";
inline constexpr char kRopeScalingLowFreqFactor[] = "rope.scaling.low_freq_factor";
inline constexpr char kRopeScalingHighFreqFactor[] = "rope.scaling.high_freq_factor";

// "<arch>.<key>", e.g. "qwen2.attention.head_count".
inline std::string ArchKey(std::string_view arch, std::string_view key) {
  std::string out(arch);
  out += '.';
  out += key;
  return out;
}

// Tensors of the whole model.
inline constexpr char kTokenEmbd[] = "token_embd.weight";
inline constexpr char kOutputNorm[] = "output_norm.weight";
inline constexpr char kOutput[] = "output.weight";         // absent when tied to kTokenEmbd
inline constexpr char kRopeFreqs[] = "rope_freqs.weight";  // Llama 3 RoPE factors

// Tensors of each layer (see LayerTensor).
inline constexpr char kAttnNorm[] = "attn_norm.weight";
inline constexpr char kAttnQ[] = "attn_q.weight";
inline constexpr char kAttnK[] = "attn_k.weight";
inline constexpr char kAttnV[] = "attn_v.weight";
inline constexpr char kAttnOutput[] = "attn_output.weight";
inline constexpr char kAttnQBias[] = "attn_q.bias";  // Qwen2
inline constexpr char kAttnKBias[] = "attn_k.bias";
inline constexpr char kAttnVBias[] = "attn_v.bias";
inline constexpr char kFfnNorm[] = "ffn_norm.weight";
inline constexpr char kFfnGate[] = "ffn_gate.weight";
inline constexpr char kFfnUp[] = "ffn_up.weight";
inline constexpr char kFfnDown[] = "ffn_down.weight";

// "blk.<layer>.<name>", e.g. "blk.3.attn_q.weight". REQUIRES: layer >= 0.
inline std::string LayerTensor(int64_t layer, std::string_view name) {
  std::string out = "blk." + std::to_string(layer) + ".";
  out += name;
  return out;
}

}  // namespace pocket::formats::gguf_names
