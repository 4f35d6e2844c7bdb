// Random-weight Llama-family models written as complete GGUF files (`pocket make-model`):
// real shapes for side-by-side benchmarks with llama.cpp (llama-bench loads them) and tiny
// shapes for tests.
// Weights ~ N(0, init_std), 0.02 by default (norm weights 1), from a portable generator: the same
// spec and seed give the same bytes on every machine (no libm in the sampling, only integer and
// float additions). The tokenizer section is a synthetic byte-level BPE vocabulary: the 256 byte
// tokens of GPT-2's alphabet, special tokens, and merged tokens (space+letter, letter pairs, ...)
// each with the merge that makes it, so llama.cpp's gpt2 tokenizer loads and tokenizes any text.
// Thread safety: free functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "formats/gguf.h"
#include "formats/hf_convert.h"
#include "tensor/dtype.h"

namespace pocket::formats {

enum class ChatStyle { kChatMl, kLlama3 };

struct RandomModelSpec {
  std::string name = "pocket-random";
  std::string arch = "llama";  // "llama" or "qwen2" (qwen2 adds q/k/v biases)
  int64_t d_model = 256;
  int64_t num_layers = 4;
  int64_t num_heads = 4;
  int64_t num_kv_heads = 4;
  int64_t d_ff = 768;
  int64_t vocab_size = 2048;
  int64_t context_length = 2048;
  bool tied = true;
  float rope_freq_base = 10000.0f;
  float rms_norm_eps = 1e-5f;
  float llama3_rope_factor = 0;  // > 0: write rope_freqs.weight like Llama 3.x (factor 32)
  ChatStyle chat = ChatStyle::kChatMl;
  tensor::DType weight_type = tensor::DType::kF16;
  // Standard deviation of every non-norm weight. Larger values give sharper logits, so that a
  // perplexity comparison between weight types (bench/model/ppl_vs_llamacpp.sh) is sensitive:
  // at 0.02 the logits of a random model are nearly uniform. Must be in (0, 10].
  float init_std = 0.02f;
  uint64_t seed = 0;
};

// Named shapes: "smollm2-135m", "llama3.2-1b", "qwen2.5-0.5b", "tiny" (d_model 64),
// "tiny-k" (d_model 256, rows fit K-quant blocks), "pocket-default" (the shape of the
// first embedded default model, 4 MB of Q8_0; the model is trained now: recipes/default.toml).
// InvalidArgument for an unknown name (the message lists the known ones).
Result<RandomModelSpec> NamedShape(std::string_view name);
std::vector<std::string> NamedShapes();

// Checks the spec (positive sizes, heads divide d_model, even head_dim, kv heads divide
// heads, vocab large enough for the synthetic tokenizer). InvalidArgument otherwise.
Status ValidateSpec(const RandomModelSpec& spec);

// The synthetic byte-level BPE vocabulary of `vocab_size` tokens in the given chat style.
// ChatML: ids 0..2 = <|endoftext|>, <|im_start|> (bos), <|im_end|> (eos), pre "smollm".
// Llama 3: specials at the top of the vocabulary (<|begin_of_text|> = bos,
// <|eot_id|> = eos, ...), pre "llama-bpe". REQUIRES: vocab_size >= 512.
GgufVocab SyntheticVocab(int64_t vocab_size, ChatStyle chat);

// GPT-2's byte → printable code point mapping (bytes_to_unicode), as UTF-8 strings.
const std::vector<std::string>& ByteLevelAlphabet();

// A writer holding the whole model (tensors generated lazily at write time).
Result<GgufWriter> BuildRandomModel(const RandomModelSpec& spec);

}  // namespace pocket::formats
