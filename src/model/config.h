// LlamaConfig: the hyper-parameters of a Llama-family decoder (Llama 2/3/3.2, SmolLM,
// TinyLlama, Mistral with full attention: arch "llama"; Qwen2/2.5: arch "qwen2"), read from
// GGUF metadata, and the RoPE frequencies they imply. Who uses it: model loading, the
// reference and fast forward passes, runtime (context length, vocab size).
// Thread safety: a plain value.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"

namespace pocket::formats {
class GgufFile;
}  // namespace pocket::formats

namespace pocket::model {

enum class RopeScaling : uint8_t {
  kNone,
  kLinear,  // positions divided by factor (HF rope_type "linear")
  kLlama3,  // Llama 3.1/3.2 frequency-dependent scaling (HF rope_type "llama3")
};

struct LlamaConfig {
  std::string arch;  // general.architecture: "llama" or "qwen2"
  int d_model = 0;
  int num_layers = 0;
  int num_heads = 0;
  int num_kv_heads = 0;  // == num_heads: MHA; 1: MQA; in between: GQA
  int head_dim = 0;      // d_model / num_heads unless the file says otherwise
  int d_ff = 0;
  int vocab_size = 0;
  int context_length = 0;
  float rms_eps = 1e-5f;
  float rope_freq_base = 10000.0f;
  // false: "normal" RoPE rotating adjacent pairs (x[2i], x[2i+1]) of the GGUF (permuted) Q/K
  // rows (arch llama); true: NeoX RoPE rotating (x[i], x[i + head_dim/2]) (arch qwen2).
  bool rope_neox = false;
  RopeScaling rope_scaling = RopeScaling::kNone;
  float rope_scaling_factor = 1.0f;
  float rope_low_freq_factor = 1.0f;    // llama3 only
  float rope_high_freq_factor = 4.0f;   // llama3 only
  int rope_original_context = 0;        // llama3 only: original_max_position_embeddings
  bool tied_output = false;  // no output.weight: the logits use token_embd.weight
  bool qkv_bias = false;     // attn_{q,k,v}.bias present (Qwen2)

  // Reads `{arch}.*` metadata (see docs/model.md for the keys) and the tensor table
  // (tied_output, qkv_bias, vocab size fallback). NotSupported naming the architecture for
  // anything but llama/qwen2 (and for rope scaling types other than none/linear/llama3);
  // InvalidArgument naming the key for missing or inconsistent values.
  static Result<LlamaConfig> FromGguf(const formats::GgufFile& gguf);

  // InvalidArgument for non-positive sizes, num_heads % num_kv_heads != 0, odd head_dim.
  Status Validate() const;

  int q_dim() const { return num_heads * head_dim; }
  int kv_dim() const { return num_kv_heads * head_dim; }

  // The head_dim/2 RoPE inverse frequencies with the configured scaling applied, computed
  // as HF transformers does (base^(-2i/head_dim) in float32, then LlamaRotaryEmbedding's
  // rope_init_fn for "linear"/"llama3"). `freq_factors`, when non-empty (GGUF tensor
  // rope_freqs.weight, head_dim/2 floats), divides each frequency instead of the llama3
  // formula, as llama.cpp does.
  std::vector<float> RopeInvFreq(const std::vector<float>& freq_factors = {}) const;
};

}  // namespace pocket::model
