// The attention block, the feed-forward block and the output head over the Backend. The op
// sequence is that of the pre-seam forward pass, op for op, so the CPU backend gives the
// same bits as before (checked by llama_test's bit-identity tests and the golden tests).
#include "model/blocks.h"

#include <cmath>

#include "base/check.h"

namespace pocket::model {

using kernels::BufferRef;

void AttentionBlock(const StepContext& s, const LayerParams& p, int layer) {
  const LlamaConfig& c = s.config;
  kernels::Backend& be = s.backend;
  Activations& a = s.act;
  const size_t d = static_cast<size_t>(c.d_model), q_dim = static_cast<size_t>(c.q_dim());
  const size_t kv_dim = static_cast<size_t>(c.kv_dim());
  const float scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));

  be.RmsNorm(a.x.ref(), *p.attn_norm, c.rms_eps, d, s.rows, a.xn.ref());
  const Linear* qkv[] = {&p.wq, &p.wk, &p.wv};
  const BufferRef qkv_out[] = {a.q.ref(), a.k.ref(), a.v.ref()};
  ApplyLinearShared(be, qkv, a.xn.ref(), s.rows, qkv_out);
  const BufferRef positions = a.positions(s.rows);
  be.Rope(a.q.ref(), s.rows, static_cast<size_t>(c.num_heads), positions, s.rope);
  be.Rope(a.k.ref(), s.rows, static_cast<size_t>(c.num_kv_heads), positions, s.rope);
  for (const Segment& seg : s.segments) {
    KvCache& cache = *seg.cache;
    // Rows of consecutive positions are contiguous in the cache: one store per segment.
    const size_t n = seg.num_rows * kv_dim;
    be.StoreRows(a.k.ref().FloatAt(seg.first_row * kv_dim), n, cache.dtype(),
                 cache.k_row(layer, seg.start_pos));
    be.StoreRows(a.v.ref().FloatAt(seg.first_row * kv_dim), n, cache.dtype(),
                 cache.v_row(layer, seg.start_pos));
    kernels::KvRef kv;
    kv.dtype = cache.dtype();
    kv.k = cache.k_row(layer, 0);
    kv.v = cache.v_row(layer, 0);
    kv.num_kv_heads = static_cast<size_t>(c.num_kv_heads);
    kv.head_dim = static_cast<size_t>(c.head_dim);
    be.Attention(a.q.ref().FloatAt(seg.first_row * q_dim), seg.num_rows,
                 static_cast<size_t>(c.num_heads), static_cast<size_t>(seg.start_pos), kv, scale,
                 a.att.ref().FloatAt(seg.first_row * q_dim));
  }
  ApplyLinear(be, p.wo, a.att.ref(), s.rows, a.o.ref());
  be.Add(a.x.ref(), a.o.ref(), s.rows * d, a.x.ref());
}

void FeedForwardBlock(const StepContext& s, const LayerParams& p) {
  const LlamaConfig& c = s.config;
  kernels::Backend& be = s.backend;
  Activations& a = s.act;
  const size_t d = static_cast<size_t>(c.d_model), ff = static_cast<size_t>(c.d_ff);
  be.RmsNorm(a.x.ref(), *p.ffn_norm, c.rms_eps, d, s.rows, a.xn.ref());
  const Linear* gate_up[] = {&p.gate, &p.up};
  const BufferRef gate_up_out[] = {a.gate.ref(), a.up.ref()};
  ApplyLinearShared(be, gate_up, a.xn.ref(), s.rows, gate_up_out);
  be.SwiGLU(a.gate.ref(), a.up.ref(), s.rows * ff, a.gate.ref());
  ApplyLinear(be, p.down, a.gate.ref(), s.rows, a.o.ref());
  be.Add(a.x.ref(), a.o.ref(), s.rows * d, a.x.ref());
}

size_t OutputHead(const StepContext& s, const HeadParams& p, bool want_logits, float* out) {
  const LlamaConfig& c = s.config;
  kernels::Backend& be = s.backend;
  Activations& a = s.act;
  const size_t d = static_cast<size_t>(c.d_model);
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

}  // namespace pocket::model
