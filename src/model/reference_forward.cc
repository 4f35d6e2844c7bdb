// Plain loops on purpose: this file is the specification, so it favours being obviously
// right over being fast. Each matrix is dequantized once per call into float32 with
// tensor::DequantizeRow (the same reference code the quantizer is tested against), and
// every reduction (dot products, RMS, softmax) is accumulated in double so the reference
// adds as little rounding of its own as possible.
#include "model/reference_forward.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "tensor/quant.h"

namespace pocket::model {
namespace {

// [rows][cols] float32 copy of a matrix view (cols = ne[0]).
std::vector<float> Dequantize(const tensor::TensorView& w) {
  const size_t cols = static_cast<size_t>(w.ne[0]);
  const size_t rows = static_cast<size_t>(w.num_rows());
  std::vector<float> out(rows * cols);
  for (size_t r = 0; r < rows; ++r) {
    tensor::DequantizeRow(w.dtype, w.row(static_cast<int64_t>(r)), out.data() + r * cols, cols);
  }
  return out;
}

// A weight matrix dequantized to float, remembering its stored dtype (which decides how
// the kernels quantize the activation it multiplies) and whether to emulate that.
struct Matrix {
  std::vector<float> w;
  tensor::DType dtype;
  bool emulate_activation_quant;
};

// The activation the kernels effectively multiply a `dtype` weight by (kernels.h MatMul):
// per 32-block int8 with a float scale amax/127, rounded half away from zero, for
// Q8_0/Q4_0; Q8_K blocks (tensor::QuantizeRowQ8_K) for Q4_K/Q6_K; x itself otherwise.
void EmulateActivationQuant(tensor::DType dtype, const float* x, size_t n, float* out) {
  if (dtype == tensor::DType::kQ8_0 || dtype == tensor::DType::kQ4_0) {
    for (size_t b = 0; b < n; b += 32) {
      float amax = 0.0f;
      for (size_t i = b; i < b + 32; ++i) amax = std::max(amax, std::fabs(x[i]));
      const float scale = amax / 127.0f;
      const float inv = scale != 0.0f ? 1.0f / scale : 0.0f;
      for (size_t i = b; i < b + 32; ++i) out[i] = scale * std::round(x[i] * inv);
    }
  } else if (dtype == tensor::DType::kQ4_K || dtype == tensor::DType::kQ6_K) {
    std::vector<tensor::BlockQ8_K> blocks(n / tensor::kQKK);
    tensor::QuantizeRowQ8_K(x, blocks.data(), n);
    tensor::DequantizeRowQ8_K(blocks.data(), out, n);
  } else {
    std::copy(x, x + n, out);
  }
}

// out[r] = sum_c w[r][c] * x[c] (+ bias[r]), for r < rows.
void MatVec(const Matrix& m, const float* bias, const float* x_in, size_t rows, size_t cols,
            float* out) {
  std::vector<float> xq;
  const float* x = x_in;
  if (m.emulate_activation_quant) {
    xq.resize(cols);
    EmulateActivationQuant(m.dtype, x_in, cols, xq.data());
    x = xq.data();
  }
  for (size_t r = 0; r < rows; ++r) {
    double acc = 0.0;
    const float* wr = m.w.data() + r * cols;
    for (size_t c = 0; c < cols; ++c) acc += static_cast<double>(wr[c]) * x[c];
    if (bias != nullptr) acc += bias[r];
    out[r] = static_cast<float>(acc);
  }
}

// HF LlamaRMSNorm: x * rsqrt(mean(x^2) + eps), then times the weight.
void RmsNorm(const float* x, const float* w, size_t n, float eps, float* out) {
  double ss = 0.0;
  for (size_t i = 0; i < n; ++i) ss += static_cast<double>(x[i]) * x[i];
  const double inv = 1.0 / std::sqrt(ss / static_cast<double>(n) + eps);
  for (size_t i = 0; i < n; ++i) out[i] = static_cast<float>(w[i] * (x[i] * inv));
}

// Rotates one head in place at position `pos`. Pair i is (2i, 2i+1) for normal RoPE and
// (i, i + head_dim/2) for NeoX; its angle is pos * inv_freq[i] in float32 as HF computes it.
void Rope(float* x, int head_dim, int pos, const std::vector<float>& inv_freq, bool neox) {
  const int half = head_dim / 2;
  for (int i = 0; i < half; ++i) {
    const float angle = static_cast<float>(pos) * inv_freq[static_cast<size_t>(i)];
    const double c = std::cos(static_cast<double>(angle));
    const double s = std::sin(static_cast<double>(angle));
    const int a = neox ? i : 2 * i;
    const int b = neox ? i + half : 2 * i + 1;
    const double x0 = x[a], x1 = x[b];
    x[a] = static_cast<float>(x0 * c - x1 * s);
    x[b] = static_cast<float>(x1 * c + x0 * s);
  }
}

std::vector<float> F32Vector(const tensor::TensorView& v) {
  if (v.data == nullptr) return {};
  return Dequantize(v);
}

}  // namespace

Status ReferenceForward(const LlamaConfig& cfg, const LlamaWeights& w,
                        std::span<const int32_t> tokens, std::vector<float>* logits,
                        std::vector<float>* hidden, const ReferenceOptions& opts) {
  auto DequantizeMatrix = [&opts](const tensor::TensorView& v) {
    return Matrix{Dequantize(v), v.dtype, opts.emulate_activation_quant};
  };
  PK_RETURN_IF_ERROR(cfg.Validate());
  PK_RETURN_IF_ERROR(CheckWeights(w, cfg));
  if (tokens.empty()) return Status::InvalidArgument("reference forward: empty token sequence");
  for (size_t t = 0; t < tokens.size(); ++t) {
    if (tokens[t] < 0 || tokens[t] >= cfg.vocab_size) {
      return Status::InvalidArgument("reference forward: token " + std::to_string(tokens[t]) +
                                     " at position " + std::to_string(t) + " outside vocab of " +
                                     std::to_string(cfg.vocab_size));
    }
  }
  const size_t n = tokens.size();
  const size_t d = static_cast<size_t>(cfg.d_model);
  const size_t q_dim = static_cast<size_t>(cfg.q_dim());
  const size_t kv_dim = static_cast<size_t>(cfg.kv_dim());
  const size_t ff = static_cast<size_t>(cfg.d_ff);
  const size_t vocab = static_cast<size_t>(cfg.vocab_size);
  const int hd = cfg.head_dim;
  const int group = cfg.num_heads / cfg.num_kv_heads;
  const std::vector<float> inv_freq = cfg.RopeInvFreq(F32Vector(w.rope_freqs));
  const double scale = 1.0 / std::sqrt(static_cast<double>(hd));

  // Residual stream [n][d].
  std::vector<float> x(n * d);
  for (size_t t = 0; t < n; ++t) {
    tensor::DequantizeRow(w.token_embd.dtype, w.token_embd.row(tokens[t]), x.data() + t * d, d);
  }

  std::vector<float> xn(d), q(n * q_dim), k(n * kv_dim), v(n * kv_dim), att(q_dim), o(d);
  std::vector<float> gate(ff), up(ff), scores(n);
  for (const LayerWeights& lw : w.layers) {
    const std::vector<float> attn_norm = Dequantize(lw.attn_norm);
    const Matrix wq = DequantizeMatrix(lw.wq), wk = DequantizeMatrix(lw.wk);
    const Matrix wv = DequantizeMatrix(lw.wv), wo = DequantizeMatrix(lw.wo);
    const std::vector<float> bq = F32Vector(lw.bq), bk = F32Vector(lw.bk), bv = F32Vector(lw.bv);
    const std::vector<float> ffn_norm = Dequantize(lw.ffn_norm);
    const Matrix wg = DequantizeMatrix(lw.w_gate), wu = DequantizeMatrix(lw.w_up);
    const Matrix wd = DequantizeMatrix(lw.w_down);

    for (size_t t = 0; t < n; ++t) {
      RmsNorm(x.data() + t * d, attn_norm.data(), d, cfg.rms_eps, xn.data());
      MatVec(wq, bq.empty() ? nullptr : bq.data(), xn.data(), q_dim, d, q.data() + t * q_dim);
      MatVec(wk, bk.empty() ? nullptr : bk.data(), xn.data(), kv_dim, d, k.data() + t * kv_dim);
      MatVec(wv, bv.empty() ? nullptr : bv.data(), xn.data(), kv_dim, d, v.data() + t * kv_dim);
      for (int h = 0; h < cfg.num_heads; ++h) {
        Rope(q.data() + t * q_dim + static_cast<size_t>(h * hd), hd, static_cast<int>(t), inv_freq,
             cfg.rope_neox);
      }
      for (int h = 0; h < cfg.num_kv_heads; ++h) {
        Rope(k.data() + t * kv_dim + static_cast<size_t>(h * hd), hd, static_cast<int>(t),
             inv_freq, cfg.rope_neox);
      }
    }
    for (size_t t = 0; t < n; ++t) {
      // Causal attention of query t over keys 0..t; query head h reads kv head h / group.
      for (int h = 0; h < cfg.num_heads; ++h) {
        const float* qh = q.data() + t * q_dim + static_cast<size_t>(h * hd);
        const size_t kv_off = static_cast<size_t>((h / group) * hd);
        double max_score = -INFINITY;
        for (size_t s = 0; s <= t; ++s) {
          const float* ks = k.data() + s * kv_dim + kv_off;
          double dot = 0.0;
          for (int i = 0; i < hd; ++i) dot += static_cast<double>(qh[i]) * ks[i];
          scores[s] = static_cast<float>(dot * scale);
          max_score = std::max(max_score, static_cast<double>(scores[s]));
        }
        double sum = 0.0;
        std::vector<double> p(t + 1);
        for (size_t s = 0; s <= t; ++s) {
          p[s] = std::exp(static_cast<double>(scores[s]) - max_score);
          sum += p[s];
        }
        for (int i = 0; i < hd; ++i) {
          double acc = 0.0;
          for (size_t s = 0; s <= t; ++s) acc += p[s] * v[s * kv_dim + kv_off + static_cast<size_t>(i)];
          att[static_cast<size_t>(h * hd + i)] = static_cast<float>(acc / sum);
        }
      }
      MatVec(wo, nullptr, att.data(), d, q_dim, o.data());
      float* xt = x.data() + t * d;
      for (size_t i = 0; i < d; ++i) xt[i] += o[i];

      // SwiGLU MLP: down(silu(gate(xn)) * up(xn)).
      RmsNorm(xt, ffn_norm.data(), d, cfg.rms_eps, xn.data());
      MatVec(wg, nullptr, xn.data(), ff, d, gate.data());
      MatVec(wu, nullptr, xn.data(), ff, d, up.data());
      for (size_t i = 0; i < ff; ++i) {
        const double g = gate[i];
        gate[i] = static_cast<float>(g / (1.0 + std::exp(-g)) * up[i]);
      }
      MatVec(wd, nullptr, gate.data(), d, ff, o.data());
      for (size_t i = 0; i < d; ++i) xt[i] += o[i];
    }
  }

  const std::vector<float> out_norm = Dequantize(w.output_norm);
  const Matrix wout = DequantizeMatrix(w.output);
  logits->assign(n * vocab, 0.0f);
  if (hidden != nullptr) hidden->assign(n * d, 0.0f);
  for (size_t t = 0; t < n; ++t) {
    RmsNorm(x.data() + t * d, out_norm.data(), d, cfg.rms_eps, xn.data());
    if (hidden != nullptr) std::copy(xn.begin(), xn.end(), hidden->begin() + static_cast<ptrdiff_t>(t * d));
    MatVec(wout, nullptr, xn.data(), vocab, d, logits->data() + t * vocab);
  }
  return Status::Ok();
}

}  // namespace pocket::model
