// The attention block, the feed-forward block and the output head over the Backend. The op
// sequence is that of the pre-seam forward pass, op for op, so the CPU backend gives the
// same bits as before (checked by llama_test's bit-identity tests and the golden tests).
// A training step runs the same ops into its tape (only the attention op differs: over the
// step's own K/V); train/backprop.cc holds the backward of each block.
#include "model/blocks.h"

#include <cmath>

#include "base/check.h"

namespace pocket::model {

using kernels::BufferRef;

void AttentionBlock(const StepContext& s, const LayerParams& p, int layer, const LayerTape* tape) {
  const LlamaConfig& c = s.config;
  kernels::Backend& be = s.backend;
  Activations& a = s.act;
  const size_t d = static_cast<size_t>(c.d_model), q_dim = static_cast<size_t>(c.q_dim());
  const size_t kv_dim = static_cast<size_t>(c.kv_dim());
  const float scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));
  // Inference writes the shared activations; a training step writes its tape.
  const BufferRef xn = tape ? tape->xn_attn : a.xn.ref();
  const BufferRef q = tape ? tape->q : a.q.ref(), k = tape ? tape->k : a.k.ref();
  const BufferRef v = tape ? tape->v : a.v.ref(), att = tape ? tape->att : a.att.ref();
  if (tape != nullptr) be.Copy(a.x.ref(), tape->x_attn, s.rows * d * sizeof(float));

  be.RmsNorm(a.x.ref(), *p.attn_norm, c.rms_eps, d, s.rows, xn);
  const Linear* qkv[] = {&p.wq, &p.wk, &p.wv};
  const BufferRef qkv_out[] = {q, k, v};
  ApplyLinearShared(be, qkv, xn, s.rows, qkv_out);
  const BufferRef positions = a.positions(s.rows);
  be.Rope(q, s.rows, static_cast<size_t>(c.num_heads), positions, s.rope);
  be.Rope(k, s.rows, static_cast<size_t>(c.num_kv_heads), positions, s.rope);
  if (tape != nullptr) {
    PK_CHECK(tape->seq_len > 0 && s.rows % tape->seq_len == 0);
    be.AttentionTrain(q, k, v, s.rows / tape->seq_len, tape->seq_len,
                      static_cast<size_t>(c.num_heads), static_cast<size_t>(c.num_kv_heads),
                      static_cast<size_t>(c.head_dim), scale, att);
  }
  for (const Segment& seg : tape ? std::span<const Segment>() : s.segments) {
    KvCache& cache = *seg.cache;
    // Rows of consecutive positions are contiguous in the cache: one store per segment.
    const size_t n = seg.num_rows * kv_dim;
    be.StoreRows(k.FloatAt(seg.first_row * kv_dim), n, cache.dtype(),
                 cache.k_row(layer, seg.start_pos));
    be.StoreRows(v.FloatAt(seg.first_row * kv_dim), n, cache.dtype(),
                 cache.v_row(layer, seg.start_pos));
    kernels::KvRef kv;
    kv.dtype = cache.dtype();
    kv.k = cache.k_row(layer, 0);
    kv.v = cache.v_row(layer, 0);
    kv.num_kv_heads = static_cast<size_t>(c.num_kv_heads);
    kv.head_dim = static_cast<size_t>(c.head_dim);
    be.Attention(q.FloatAt(seg.first_row * q_dim), seg.num_rows, static_cast<size_t>(c.num_heads),
                 static_cast<size_t>(seg.start_pos), kv, scale, att.FloatAt(seg.first_row * q_dim));
  }
  ApplyLinear(be, p.wo, att, s.rows, a.o.ref());
  be.Add(a.x.ref(), a.o.ref(), s.rows * d, a.x.ref());
}

void FeedForwardBlock(const StepContext& s, const LayerParams& p, const LayerTape* tape) {
  const LlamaConfig& c = s.config;
  kernels::Backend& be = s.backend;
  Activations& a = s.act;
  const size_t d = static_cast<size_t>(c.d_model), ff = static_cast<size_t>(c.d_ff);
  const BufferRef xn = tape ? tape->xn_ffn : a.xn.ref();
  const BufferRef gate = tape ? tape->gate : a.gate.ref(), up = tape ? tape->up : a.up.ref();
  if (tape != nullptr) be.Copy(a.x.ref(), tape->x_ffn, s.rows * d * sizeof(float));
  be.RmsNorm(a.x.ref(), *p.ffn_norm, c.rms_eps, d, s.rows, xn);
  const Linear* gate_up[] = {&p.gate, &p.up};
  const BufferRef gate_up_out[] = {gate, up};
  ApplyLinearShared(be, gate_up, xn, s.rows, gate_up_out);
  // In place for inference; a tape keeps gate and up for the backward pass.
  be.SwiGLU(gate, up, s.rows * ff, a.gate.ref());
  ApplyLinear(be, p.down, a.gate.ref(), s.rows, a.o.ref());
  be.Add(a.x.ref(), a.o.ref(), s.rows * d, a.x.ref());
}

size_t OutputHead(const StepContext& s, const HeadParams& p, bool want_logits, float* out,
                  const HeadTape* tape) {
  const LlamaConfig& c = s.config;
  kernels::Backend& be = s.backend;
  Activations& a = s.act;
  const size_t d = static_cast<size_t>(c.d_model);
  if (tape != nullptr) {
    be.Copy(a.x.ref(), tape->x, s.rows * d * sizeof(float));
    be.RmsNorm(tape->x, *p.output_norm, c.rms_eps, d, s.rows, tape->xn);
    ApplyLinear(be, p.output, tape->xn, s.rows, tape->logits);
    return s.rows;
  }
  // Gather the rows that produce output (in order, so output rows stay contiguous), then
  // normalise and project only those through the vocabulary matrix.
  size_t n_out = 0;
  for (size_t r = 0; r < s.rows; ++r) {
    if (a.out_rows[r] == Activations::kNoRow) continue;
    be.Copy(a.x.ref().FloatAt(r * d), a.xn.ref().FloatAt(n_out * d), d * sizeof(float));
    ++n_out;
  }
  if (n_out == 0) return 0;
  be.RmsNorm(a.xn.ref(), *p.output_norm, c.rms_eps, d, n_out, a.o.ref());
  if (!want_logits) {
    be.Download(a.o.ref(), out, n_out * d * sizeof(float));
  } else if (p.output.adapters.empty() && p.output.bias == nullptr) {
    be.MatMulToHost(*p.output.weight, a.o.ref(), n_out, out);
  } else {
    // Allocated at load when the output has a bias and by AttachAdapter for its adapters.
    PK_CHECK(a.logits.size_bytes() >= n_out * static_cast<size_t>(c.vocab_size) * sizeof(float));
    ApplyLinear(be, p.output, a.o.ref(), n_out, a.logits.ref());
    be.Download(a.logits.ref(), out, n_out * static_cast<size_t>(c.vocab_size) * sizeof(float));
  }
  return n_out;
}

kernels::RopeConfig RopeConfigOf(const LlamaConfig& c, const tensor::TensorView& rope_freqs) {
  kernels::RopeConfig rope;
  rope.head_dim = static_cast<size_t>(c.head_dim);
  rope.rot_dims = static_cast<size_t>(c.head_dim);
  rope.freq_base = c.rope_freq_base;
  rope.style = c.rope_neox ? kernels::RopeStyle::kNeox : kernels::RopeStyle::kNormal;
  if (rope_freqs.data != nullptr) {
    const float* f = static_cast<const float*>(rope_freqs.data);
    rope.freq_factors.assign(f, f + rope_freqs.ne[0]);
  } else if (c.rope_scaling == RopeScaling::kLlama3) {
    rope.freq_factors = kernels::Llama3RopeFreqFactors(
        rope.rot_dims, c.rope_freq_base, c.rope_scaling_factor, c.rope_low_freq_factor,
        c.rope_high_freq_factor, static_cast<size_t>(c.rope_original_context));
  } else if (c.rope_scaling == RopeScaling::kLinear) {
    rope.freq_scale = 1.0f / c.rope_scaling_factor;
  }
  return rope;
}

}  // namespace pocket::model
