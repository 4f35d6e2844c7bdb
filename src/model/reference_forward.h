// The plain-loop reference forward pass (llm.c style): the specification the fast forward
// (LlamaModel::Forward, on the kernels) is tested against. Every weight row is dequantized
// with tensor's reference code (tensor/quant.h) into float32 and every dot product and
// softmax sum is accumulated in double; activations are never quantized. It follows HF
// transformers' LlamaForCausalLM / Qwen2ForCausalLM step for step: embedding, per layer
// RMSNorm -> Q,K,V (+bias) -> RoPE -> causal softmax(QK^T/sqrt(head_dim)) V with GQA ->
// output projection + residual -> RMSNorm -> SwiGLU MLP + residual; final RMSNorm; logits.
// Slow (no threads, no cache reuse): tests only. Thread safety: pure function.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "base/status.h"
#include "model/config.h"
#include "model/weights.h"

namespace pocket::model {

struct ReferenceOptions {
  // Multiply each weight by the activation the kernels effectively use (kernels.h MatMul:
  // 8-bit blocks for Q8_0/Q4_0/Q4_K/Q6_K weights) instead of the float one. Lets tests
  // separate the kernels' float rounding (tiny) from activation quantization (explainable).
  bool emulate_activation_quant = false;
};

// Runs `tokens` (positions 0..n-1) from scratch. Fills `logits` with [n][vocab_size] and,
// when non-null, `hidden` with [n][d_model] (after the output norm). InvalidArgument for a
// token outside [0, vocab_size) or an empty sequence.
Status ReferenceForward(const LlamaConfig& config, const LlamaWeights& weights,
                        std::span<const int32_t> tokens, std::vector<float>* logits,
                        std::vector<float>* hidden = nullptr,
                        const ReferenceOptions& opts = {});

}  // namespace pocket::model
