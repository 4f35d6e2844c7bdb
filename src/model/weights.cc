#include "model/weights.h"

#include <set>
#include <string>

#include "formats/gguf_names.h"
#include "tensor/dtype.h"

namespace pocket::model {

namespace names = formats::gguf_names;

namespace {

std::string Shape(const std::array<int64_t, 4>& ne, int dims) {
  std::string s = "[";
  for (int i = 0; i < dims; ++i) s += (i ? ", " : "") + std::to_string(ne[static_cast<size_t>(i)]);
  return s + "]";
}

bool IsMatrixType(tensor::DType t) {
  // Every stored type can hold a matrix; whether MatMul runs it is the backend's answer.
  return t != tensor::DType::kQ8_K;
}

// A view has ne [e0] (vector) or [e0, e1] (matrix); everything else must be 1.
Status CheckView(const std::string& name, const tensor::TensorView& v, int64_t e0, int64_t e1,
                 bool vector) {
  if (v.data == nullptr) return Status::NotFound("llama: tensor " + name + " is missing");
  const std::array<int64_t, 4> want = {e0, vector ? 1 : e1, 1, 1};
  if (v.ne != want) {
    int dims = vector ? 1 : 2;
    for (int i = 3; i >= dims; --i) {
      if (v.ne[static_cast<size_t>(i)] != 1) dims = i + 1;
    }
    return Status::InvalidArgument("llama: " + name + " has ne " + Shape(v.ne, dims) +
                                   ", expected " + Shape(want, vector ? 1 : 2));
  }
  if (vector) {
    if (v.dtype != tensor::DType::kF32) {
      return Status::InvalidArgument("llama: " + name + " is " +
                                     std::string(tensor::DTypeName(v.dtype)) +
                                     ", expected F32");
    }
    return Status::Ok();
  }
  if (!IsMatrixType(v.dtype)) {
    return Status::InvalidArgument("llama: " + name + " has unsupported type " +
                                   std::string(tensor::DTypeName(v.dtype)));
  }
  if (e0 % static_cast<int64_t>(tensor::BlockElements(v.dtype)) != 0) {
    return Status::InvalidArgument("llama: " + name + " rows of " + std::to_string(e0) +
                                   " are not whole " + std::string(tensor::DTypeName(v.dtype)) +
                                   " blocks of " +
                                   std::to_string(tensor::BlockElements(v.dtype)));
  }
  return Status::Ok();
}

}  // namespace

uint64_t LlamaWeights::size_bytes() const {
  std::set<const void*> seen;
  uint64_t total = 0;
  auto add = [&](const tensor::TensorView& v) {
    if (v.data != nullptr && seen.insert(v.data).second) total += v.size_bytes();
  };
  add(token_embd);
  add(output_norm);
  add(output);
  add(rope_freqs);
  for (const LayerWeights& l : layers) {
    for (const tensor::TensorView* v : {&l.attn_norm, &l.wq, &l.wk, &l.wv, &l.wo, &l.bq, &l.bk,
                                        &l.bv, &l.ffn_norm, &l.w_gate, &l.w_up, &l.w_down}) {
      add(*v);
    }
  }
  return total;
}

Status CheckWeights(const LlamaWeights& w, const LlamaConfig& c) {
  const int64_t d = c.d_model, q = c.q_dim(), kv = c.kv_dim(), ff = c.d_ff, vocab = c.vocab_size;
  PK_RETURN_IF_ERROR(CheckView(names::kTokenEmbd, w.token_embd, d, vocab, false));
  PK_RETURN_IF_ERROR(CheckView(names::kOutputNorm, w.output_norm, d, 1, true));
  PK_RETURN_IF_ERROR(
      CheckView(c.tied_output ? names::kTokenEmbd : names::kOutput, w.output, d, vocab, false));
  if (w.rope_freqs.data != nullptr) {
    PK_RETURN_IF_ERROR(CheckView(names::kRopeFreqs, w.rope_freqs, c.head_dim / 2, 1, true));
  }
  if (static_cast<int>(w.layers.size()) != c.num_layers) {
    return Status::InvalidArgument("llama: " + std::to_string(w.layers.size()) +
                                   " layers bound, config says " + std::to_string(c.num_layers));
  }
  for (size_t i = 0; i < w.layers.size(); ++i) {
    const LayerWeights& l = w.layers[i];
    auto blk = [i](const char* tensor_name) {
      return names::LayerTensor(static_cast<int64_t>(i), tensor_name);
    };
    PK_RETURN_IF_ERROR(CheckView(blk(names::kAttnNorm), l.attn_norm, d, 1, true));
    PK_RETURN_IF_ERROR(CheckView(blk(names::kAttnQ), l.wq, d, q, false));
    PK_RETURN_IF_ERROR(CheckView(blk(names::kAttnK), l.wk, d, kv, false));
    PK_RETURN_IF_ERROR(CheckView(blk(names::kAttnV), l.wv, d, kv, false));
    PK_RETURN_IF_ERROR(CheckView(blk(names::kAttnOutput), l.wo, q, d, false));
    if (c.qkv_bias) {
      PK_RETURN_IF_ERROR(CheckView(blk(names::kAttnQBias), l.bq, q, 1, true));
      PK_RETURN_IF_ERROR(CheckView(blk(names::kAttnKBias), l.bk, kv, 1, true));
      PK_RETURN_IF_ERROR(CheckView(blk(names::kAttnVBias), l.bv, kv, 1, true));
    }
    PK_RETURN_IF_ERROR(CheckView(blk(names::kFfnNorm), l.ffn_norm, d, 1, true));
    PK_RETURN_IF_ERROR(CheckView(blk(names::kFfnGate), l.w_gate, d, ff, false));
    PK_RETURN_IF_ERROR(CheckView(blk(names::kFfnUp), l.w_up, d, ff, false));
    PK_RETURN_IF_ERROR(CheckView(blk(names::kFfnDown), l.w_down, ff, d, false));
  }
  return Status::Ok();
}

}  // namespace pocket::model
