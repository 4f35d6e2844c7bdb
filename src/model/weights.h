// LlamaWeights: views of a Llama-family model's tensors inside a GGUF mapping (never
// copies), and their binding and shape validation against a LlamaConfig.
// Tensor names and shapes (ggml order, ne[0] = input features = row length):
//   token_embd.weight [d_model, vocab]     output_norm.weight [d_model] (F32)
//   output.weight [d_model, vocab] (absent when tied)   rope_freqs.weight [head_dim/2] (opt.)
//   blk.N.attn_norm.weight [d_model]   blk.N.ffn_norm.weight [d_model]       (norms F32)
//   blk.N.attn_q.weight [d_model, q_dim]   blk.N.attn_k/attn_v.weight [d_model, kv_dim]
//   blk.N.attn_q.bias [q_dim], attn_k/attn_v.bias [kv_dim] (Qwen2, F32)
//   blk.N.attn_output.weight [q_dim, d_model]
//   blk.N.ffn_gate/ffn_up.weight [d_model, d_ff]   blk.N.ffn_down.weight [d_ff, d_model]
// Matrices may be F32, F16, BF16, Q8_0, Q4_0, Q4_K or Q6_K; norms, biases and rope_freqs
// must be F32. Thread safety: immutable views; valid while the GgufFile lives.
#pragma once

#include <vector>

#include "base/status.h"
#include "model/config.h"
#include "tensor/tensor.h"

namespace pocket::model {

struct LayerWeights {
  tensor::TensorView attn_norm, wq, wk, wv, wo;
  tensor::TensorView bq, bk, bv;  // data == nullptr when the model has no QKV bias
  tensor::TensorView ffn_norm, w_gate, w_up, w_down;
};

struct LlamaWeights {
  tensor::TensorView token_embd;
  tensor::TensorView output_norm;
  tensor::TensorView output;      // == token_embd when the output is tied
  tensor::TensorView rope_freqs;  // data == nullptr when absent
  std::vector<LayerWeights> layers;

  // Sum of the bytes of all distinct tensors above (a tied output counted once).
  uint64_t size_bytes() const;
};

// Binds every tensor the config needs. NotFound naming a missing tensor; InvalidArgument
// naming a tensor with the wrong shape ("blk.3.attn_q.weight has ne [64, 32], expected
// [64, 64]") or an unsupported dtype; InvalidArgument when a matrix row is not a whole
// number of blocks.
Result<LlamaWeights> BindWeights(const formats::GgufFile& gguf, const LlamaConfig& config);

// The shape checks of BindWeights over already-built views (used by tests that make
// weights in memory). `name` prefixes the messages.
Status CheckWeights(const LlamaWeights& w, const LlamaConfig& config);

}  // namespace pocket::model
