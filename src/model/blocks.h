// The Llama-family forward pass as named blocks over Activations, calling only the
// kernels::Backend interface: AttentionBlock and FeedForwardBlock (one decoder layer, each
// with its residual add) and OutputHead. LlamaModel::Forward runs, per step: embedding
// (Backend::GetRows into act.x), every layer's two blocks, then the head. The blocks know
// neither the backend nor the adapters attached to their Linears.
// Training (src/train) runs the same blocks: given a tape (LayerTape, HeadTape) they keep
// what the backward pass needs and attend over the step's own K/V instead of KV caches;
// without one they do exactly what inference always did (same ops, same bits).
// Who calls: LlamaModel (model/llama.cc), train. Thread safety: one step at a time.
#pragma once

#include <cstddef>
#include <memory>
#include <span>

#include "kernels/backend.h"
#include "model/activations.h"
#include "model/config.h"
#include "model/kv_cache.h"
#include "model/linear.h"
#include "tensor/tensor.h"

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

// What a training forward keeps of one layer for the backward pass (train/): buffers of
// the caller's, F32 [rows][width] in the backend's memory, each written once per step. With
// a tape the blocks write these instead of the shared Activations buffers of the same
// name, and attention runs Backend::AttentionTrain over the step's own K/V: the rows are
// num_seqs = rows / seq_len sequences of seq_len tokens, each from position 0 (segments and
// caches are not used). act.x still carries the residual stream.
struct LayerTape {
  size_t seq_len = 0;
  kernels::BufferRef x_attn, xn_attn;  // [T][d_model] x before the attention block; RmsNorm(x)
  kernels::BufferRef q, k, v;          // [T][q_dim], [T][kv_dim] (+bias, q and k after RoPE)
  kernels::BufferRef att;              // [T][q_dim] attention output, input of wo
  kernels::BufferRef x_ffn, xn_ffn;    // [T][d_model] x before the feed-forward block; its norm
  kernels::BufferRef gate, up;         // [T][d_ff] before SwiGLU (which goes to act.gate)
};

// The output head's tape: every row of the step produces logits, kept on the backend.
struct HeadTape {
  kernels::BufferRef x;       // [T][d_model] the final residual stream
  kernels::BufferRef xn;      // [T][d_model] RmsNorm(x), input of the output matrix
  kernels::BufferRef logits;  // [T][vocab_size]
};

// x += wo · Attention(RoPE(wq·xn), cache ← RoPE(wk·xn), wv·xn) with xn = RmsNorm(x):
// appends the step's K/V to each segment's cache for `layer` (its token count is the
// caller's to advance). With a tape: see LayerTape (no cache is touched).
void AttentionBlock(const StepContext& s, const LayerParams& p, int layer,
                    const LayerTape* tape = nullptr);

// x += down · SwiGLU(gate·xn, up·xn) with xn = RmsNorm(x).
void FeedForwardBlock(const StepContext& s, const LayerParams& p, const LayerTape* tape = nullptr);

// The rows with an output (act.out_rows), in order: RmsNorm(x) → hidden, or its logits when
// want_logits. `out` receives n_out rows of vocab_size (logits) or d_model (hidden) floats,
// host memory. Returns n_out. With a tape: every row's logits go to tape->logits (backend
// memory; want_logits, out and out_rows are not used) and s.rows is returned.
size_t OutputHead(const StepContext& s, const HeadParams& p, bool want_logits, float* out,
                  const HeadTape* tape = nullptr);

// The RoPE of `config` as the Rope op takes it; `rope_freqs` is the GGUF rope_freqs.weight
// tensor (F32 [head_dim / 2]) or data == nullptr when the model has none.
kernels::RopeConfig RopeConfigOf(const LlamaConfig& config, const tensor::TensorView& rope_freqs);

}  // namespace pocket::model
