// Loading a LoRA adapter file for inference (`pocket run/chat/perplexity --lora
// FILE`): a GGUF in the layout llama.cpp loads (llama-adapter.cpp; what
// convert_lora_to_gguf.py and `pocket finetune` write): general.type "adapter",
// adapter.type "lora", adapter.lora.alpha, general.architecture of the base,
// and per adapted matrix "<tensor>.lora_a" (ne [in, rank]) and
// "<tensor>.lora_b" (ne [rank, out]), F32, F16 or BF16. Each pair becomes a
// model::LoraAdapter with scale = user_scale * alpha / rank (llama.cpp's rule;
// without adapter.lora.alpha, scale = user_scale) attached to that matrix of
// every named layer. Adapted matrices: attn_q, attn_k, attn_v, attn_output,
// ffn_gate, ffn_up, ffn_down. Errors are one line naming the adapter file and
// what does not fit: not an adapter, another architecture, a tensor of a matrix
// this model has not or of another shape, a lone lora_a or lora_b, an
// unsupported type. On error some adapters may already be attached: the caller
// drops the model. Who calls: runtime::Engine::Load. Thread safety: not while a
// Forward runs.
#pragma once

#include <string>

#include "base/status.h"
#include "formats/gguf.h"
#include "model/llama.h"

namespace pocket::model {

// Attaches every adapter of the file `path` to `model`; returns how many matrices it adapts
// through *num_matrices when non-null.
Status AttachLoraFile(LlamaModel& model, const std::string& path, float user_scale = 1.0f,
                      int* num_matrices = nullptr);

// The same for an opened file (tests); errors name adapter.path().
Status AttachLoraGguf(LlamaModel& model, const formats::GgufFile& adapter, float user_scale = 1.0f,
                      int* num_matrices = nullptr);

}  // namespace pocket::model
