// Hugging Face checkpoint → GGUF conversion (`pocket convert`), plus the tokenizer section
// writer shared with the random-model maker. Follows llama.cpp's convert_hf_to_gguf.py:
// the same metadata keys, tensor names and transformations, so our files load in
// llama.cpp and llama.cpp-converted files load in Pocket:
//   - arch `llama` (LlamaForCausalLM, MistralForCausalLM): Q and K rows permuted per head
//     from HF's rotate-halves RoPE layout to GGML's adjacent-pairs layout (PermuteForRope);
//     rope_scaling type llama3 becomes the `rope_freqs.weight` tensor, linear/yarn become
//     `{arch}.rope.scaling.*` keys.
//   - arch `qwen2` (Qwen2ForCausalLM): no permutation (NeoX RoPE), q/k/v biases kept.
//   - tied embeddings (tie_word_embeddings or no lm_head): no output.weight.
//   - 1-D tensors (norms, biases, rope_freqs) stay F32; matrices get the requested type.
// Users: src/cli/convert.cc, src/formats/random_model.cc. Thread safety: free functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"
#include "formats/gguf.h"
#include "tensor/dtype.h"

namespace pocket::formats {

// tokenizer.ggml.* content. `model` "gpt2" = byte-level BPE. Ids < 0 are not written.
struct GgufVocab {
  std::string model = "gpt2";
  std::string pre = "default";
  std::vector<std::string> tokens;
  std::vector<int32_t> token_types;  // 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte
  std::vector<std::string> merges;   // "a b", in the byte-to-unicode alphabet
  int64_t bos_id = -1, eos_id = -1, unk_id = -1, pad_id = -1;
  std::optional<bool> add_bos, add_eos;
  std::string chat_template;  // empty: not written
};
void AddVocab(const GgufVocab& vocab, GgufWriter* writer);

// Reads `dir`/tokenizer.json (BPE models only) and, when present, tokenizer_config.json
// (bos/eos tokens, add_bos_token, chat_template) and config.json (bos/eos ids as fallback).
// Tokens are padded to `vocab_size` with "[PAD<i>]" (type unused), as llama.cpp does.
// `pre` is recognised from the pre-tokenizer (llama-bpe, qwen2, smollm, gpt-2) or
// "default". NotFound when tokenizer.json is absent; NotSupported for non-BPE tokenizers.
Result<GgufVocab> ReadHfTokenizer(const std::string& dir, uint64_t vocab_size);

// Rows of a [n_rows, n_cols] row-major matrix (or n_cols = 1 for a bias) reordered per
// head from HF's halves layout to GGML's pairs layout: within each head of
// head_dim = n_rows / n_head rows, output row 2i + j is input row j·head_dim/2 + i.
// REQUIRES: n_rows % (2·n_head) == 0.
std::vector<float> PermuteForRope(const std::vector<float>& w, int64_t n_rows, int64_t n_cols,
                                  int64_t n_head);

// The type a tensor is stored in when `wanted` is requested: 1-D tensors F32; K-quants
// fall back when the row length is not a multiple of 256 (Q4_K → Q4_0, Q6_K → Q8_0), and
// 32-block types to F16 when it is not a multiple of 32.
tensor::DType StorageType(tensor::DType wanted, uint64_t row_len, bool is_matrix);

// llama.cpp's general.file_type (LLAMA_FTYPE_*) for a weight type.
uint32_t LlamaFileType(tensor::DType weight_type);

// Encodes `n` floats (row-major, rows of `row_len`) in `dtype`, row by row.
std::string EncodeTensor(const float* data, size_t n, uint64_t row_len, tensor::DType dtype);

// Architecture hyper-parameters as GGUF stores them.
struct LlamaHparams {
  std::string arch;  // "llama" or "qwen2"
  int64_t d_model = 0, num_layers = 0, num_heads = 0, num_kv_heads = 0, d_ff = 0;
  int64_t vocab_size = 0, head_dim = 0, context_length = 0;
  double rms_norm_eps = 1e-5, rope_freq_base = 10000.0;
};
// general.* and {arch}.* keys exactly as convert_hf_to_gguf.py writes them.
void AddLlamaMetadata(const LlamaHparams& h, const std::string& name, tensor::DType weight_type,
                      GgufWriter* writer);

// Llama 3 RoPE scaling as per-frequency divisors (the `rope_freqs.weight` tensor, F32,
// head_dim/2 values), computed like convert_hf_to_gguf.py from the HF rope_scaling fields.
std::vector<float> Llama3RopeFactors(int64_t head_dim, double rope_theta, double factor,
                                     double low_freq_factor, double high_freq_factor,
                                     double original_context_length);

struct ConvertOptions {
  tensor::DType weight_type = tensor::DType::kF16;
  std::string name;  // general.name; default: the folder's name
};

struct ConvertReport {
  std::string arch;
  size_t num_tensors = 0;
  uint64_t num_params = 0;
  size_t num_fallback = 0;  // matrices stored in another type than requested
  bool has_tokenizer = false;
};

// Reads `hf_dir` (config.json, model.safetensors or model.safetensors.index.json + shards,
// optional tokenizer files) and fills a writer. Tensors are produced lazily at write time
// (one in memory at a time); the writer must not outlive the checkpoint files' contents
// (they are mapped and kept alive by the writer itself).
Result<GgufWriter> BuildGgufFromHf(const std::string& hf_dir, const ConvertOptions& options,
                                   ConvertReport* report);
// BuildGgufFromHf + Write (atomic).
Result<ConvertReport> ConvertHfToGguf(const std::string& hf_dir, const std::string& out_path,
                                      const ConvertOptions& options);

}  // namespace pocket::formats
