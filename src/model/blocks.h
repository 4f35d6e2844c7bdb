// The Llama-family forward pass as named blocks over Activations, calling only the
// kernels::Backend interface: AttentionBlock and FeedForwardBlock (one decoder layer, each
// with its residual add) and OutputHead. LlamaModel::Forward runs, per step: embedding
// (Backend::GetRows into act.x), every layer's two blocks, then the head. The blocks know
// neither the backend nor the adapters attached to their Linears.
// Who calls: LlamaModel (model/llama.cc), train later. Thread safety: one step at a time.
#pragma once

#include <cstddef>
#include <memory>
#include <span>

#include "kernels/backend.h"
#include "model/activations.h"
#include "model/config.h"
#include "model/kv_cache.h"
#include "model/linear.h"

namespace pocket::model {

// One decoder layer's parameters on the backend.
struct LayerParams {
  std::unique_ptr<kernels::Weight> attn_norm, ffn_norm;  // [d_model] F32
  Linear wq, wk, wv, wo;                                 // wq/wk/wv carry the Qwen2 biases
  Linear gate, up, down;
};

// The final norm and the vocabulary projection (tied: the embedding matrix).
struct HeadParams {
  std::unique_ptr<kernels::Weight> output_norm;  // [d_model] F32
  Linear output;                                 // [vocab][d_model]
};

// A run of consecutive rows of the step that belong to one sequence.
struct Segment {
  KvCache* cache = nullptr;
  size_t first_row = 0;
  size_t num_rows = 0;
  int start_pos = 0;  // position of first_row in its sequence
};

// What every block of one step sees.
struct StepContext {
  kernels::Backend& backend;
  const LlamaConfig& config;
  Activations& act;
  size_t rows;  // rows in this step, <= act.max_tokens
  std::span<const Segment> segments;
  const kernels::PreparedRope& rope;
};

// x += wo · Attention(RoPE(wq·xn), cache ← RoPE(wk·xn), wv·xn) with xn = RmsNorm(x):
// appends the step's K/V to each segment's cache for `layer` (its token count is the
// caller's to advance).
void AttentionBlock(const StepContext& s, const LayerParams& p, int layer);

// x += down · SwiGLU(gate·xn, up·xn) with xn = RmsNorm(x).
void FeedForwardBlock(const StepContext& s, const LayerParams& p);

// The rows with an output (act.out_rows), in order: RmsNorm(x) → hidden, or its logits when
// want_logits. `out` receives n_out rows of vocab_size (logits) or d_model (hidden) floats,
// host memory. Returns n_out.
size_t OutputHead(const StepContext& s, const HeadParams& p, bool want_logits, float* out);

}  // namespace pocket::model
