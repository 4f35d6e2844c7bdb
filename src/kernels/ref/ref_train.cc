// Plain-loop references for the training ops of kernels::Backend (ref.h, "Training"): the
// backward passes of the forward ops in ref.cc and the AdamW step. Each is written from the
// calculus of its forward op, sums in double and rounded once to float, so the fast CPU
// versions (kernels/cpu/train.cc) are tested against the exact answer up to their float
// rounding, and kernels/train_ops_test.cc checks these against central finite differences
// of the forward ops.
#include <algorithm>
#include <cmath>
#include <vector>

#include "base/check.h"
#include "kernels/ref/ref.h"
#include "tensor/quant.h"

namespace pocket::kernels::ref {

void MatMulBackwardInput(const tensor::TensorView& w, const float* dy, size_t num_tokens,
                         float* dx) {
  PK_CHECK(MatMulSupports(w.dtype));
  const size_t cols = static_cast<size_t>(w.ne[0]);
  const size_t rows = static_cast<size_t>(w.num_rows());
  std::vector<float> deq(rows * cols);
  for (size_t r = 0; r < rows; ++r) {
    tensor::DequantizeRow(w.dtype, w.row(static_cast<int64_t>(r)), deq.data() + r * cols, cols);
  }
  std::vector<double> acc(cols);
  for (size_t t = 0; t < num_tokens; ++t) {
    std::fill(acc.begin(), acc.end(), 0.0);
    for (size_t r = 0; r < rows; ++r) {
      const double g = dy[t * rows + r];
      for (size_t c = 0; c < cols; ++c) acc[c] += g * deq[r * cols + c];
    }
    float* out = dx + t * cols;
    for (size_t c = 0; c < cols; ++c) out[c] = static_cast<float>(out[c] + acc[c]);
  }
}

void MatMulBackwardWeight(const float* x, const float* dy, size_t num_tokens, size_t rows,
                          size_t cols, float* dw) {
  std::vector<double> acc(cols);
  for (size_t r = 0; r < rows; ++r) {
    std::fill(acc.begin(), acc.end(), 0.0);
    for (size_t t = 0; t < num_tokens; ++t) {
      const double g = dy[t * rows + r];
      for (size_t c = 0; c < cols; ++c) acc[c] += g * x[t * cols + c];
    }
    for (size_t c = 0; c < cols; ++c)
      dw[r * cols + c] = static_cast<float>(dw[r * cols + c] + acc[c]);
  }
}

void SumRows(const float* dy, size_t n, size_t num_rows, float* dbias) {
  for (size_t c = 0; c < n; ++c) {
    double acc = 0.0;
    for (size_t r = 0; r < num_rows; ++r) acc += dy[r * n + c];
    dbias[c] = static_cast<float>(dbias[c] + acc);
  }
}

void GetRowsBackward(const int32_t* ids, size_t num_ids, const float* dout, size_t n,
                     float* dtable) {
  for (size_t i = 0; i < num_ids; ++i) {
    PK_CHECK(ids[i] >= 0);
    float* row = dtable + static_cast<size_t>(ids[i]) * n;
    for (size_t c = 0; c < n; ++c) row[c] += dout[i * n + c];
  }
}

// y_i = x_i w_i r with r = (mean(x^2) + eps)^-1/2, so dr/dx_j = -r^3 x_j / n and
//   dx_j = r w_j dy_j - r^3 x_j / n * sum_i dy_i w_i x_i,   dw_i = sum_rows dy_i x_i r.
void RmsNormBackward(const float* x, const float* weight, float eps, size_t n, size_t num_rows,
                     const float* dy, float* dx, float* dweight) {
  std::vector<double> dw(n, 0.0);
  for (size_t row = 0; row < num_rows; ++row) {
    const float* xr = x + row * n;
    const float* g = dy + row * n;
    double ss = 0.0, dot = 0.0;
    for (size_t i = 0; i < n; ++i) {
      ss += static_cast<double>(xr[i]) * xr[i];
      dot += static_cast<double>(g[i]) * weight[i] * xr[i];
    }
    const double r = 1.0 / std::sqrt(ss / static_cast<double>(n) + eps);
    const double c = r * r * r / static_cast<double>(n) * dot;
    for (size_t i = 0; i < n; ++i) {
      dx[row * n + i] = static_cast<float>(dx[row * n + i] + (r * weight[i] * g[i] - c * xr[i]));
      dw[i] += static_cast<double>(g[i]) * xr[i] * r;
    }
  }
  for (size_t i = 0; i < n; ++i) dweight[i] = static_cast<float>(dweight[i] + dw[i]);
}

void RopeBackward(float* dx, size_t num_tokens, size_t num_heads, const int32_t* positions,
                  const RopeTable& table) {
  const RopeConfig& c = table.config();
  const size_t half = c.rot_dims / 2;
  for (size_t t = 0; t < num_tokens; ++t) {
    for (size_t h = 0; h < num_heads; ++h) {
      float* v = dx + (t * num_heads + h) * c.head_dim;
      for (size_t i = 0; i < half; ++i) {
        double theta = static_cast<double>(positions[t]) * c.freq_scale *
                       std::pow(static_cast<double>(c.freq_base),
                                -2.0 * static_cast<double>(i) / static_cast<double>(c.rot_dims));
        if (!c.freq_factors.empty()) theta /= c.freq_factors[i];
        const double cs = std::cos(theta), sn = std::sin(theta);
        const size_t i0 = c.style == RopeStyle::kNormal ? 2 * i : i;
        const size_t i1 = c.style == RopeStyle::kNormal ? 2 * i + 1 : i + half;
        const double a = v[i0], b = v[i1];
        // The transpose of [[cs, -sn], [sn, cs]].
        v[i0] = static_cast<float>(a * cs + b * sn);
        v[i1] = static_cast<float>(b * cs - a * sn);
      }
    }
  }
}

void AttentionTrain(const float* q, const float* k, const float* v, size_t num_seqs, size_t seq_len,
                    size_t num_heads, size_t num_kv_heads, size_t head_dim, float scale,
                    float* out) {
  const size_t q_row = num_heads * head_dim, kv_row = num_kv_heads * head_dim;
  for (size_t s = 0; s < num_seqs; ++s) {
    KvView kv;
    kv.dtype = tensor::DType::kF32;
    kv.k = k + s * seq_len * kv_row;
    kv.v = v + s * seq_len * kv_row;
    kv.num_kv_heads = num_kv_heads;
    kv.head_dim = head_dim;
    Attention(q + s * seq_len * q_row, seq_len, num_heads, 0, kv, scale, out + s * seq_len * q_row);
  }
}

// Per (token t, head h), with P = softmax(s), s_p = scale q.k_p, o = sum_p P_p v_p:
//   dv_p += P_p do;  dP_p = do.v_p;  dS_p = P_p (dP_p - do.o);
//   dq = scale sum_p dS_p k_p;  dk_p += scale dS_p q.
void AttentionBackward(const float* q, const float* k, const float* v, const float* dout,
                       size_t num_seqs, size_t seq_len, size_t num_heads, size_t num_kv_heads,
                       size_t head_dim, float scale, float* dq, float* dk, float* dv) {
  PK_CHECK(num_kv_heads > 0 && num_heads % num_kv_heads == 0);
  const size_t hd = head_dim, group = num_heads / num_kv_heads;
  const size_t q_row = num_heads * hd, kv_row = num_kv_heads * hd;
  std::vector<double> dk_acc(seq_len * kv_row), dv_acc(seq_len * kv_row), p(seq_len), dp(seq_len),
      dq_acc(hd);
  for (size_t s = 0; s < num_seqs; ++s) {
    const float* ks = k + s * seq_len * kv_row;
    const float* vs = v + s * seq_len * kv_row;
    std::fill(dk_acc.begin(), dk_acc.end(), 0.0);
    std::fill(dv_acc.begin(), dv_acc.end(), 0.0);
    for (size_t t = 0; t < seq_len; ++t) {
      for (size_t h = 0; h < num_heads; ++h) {
        const size_t kvh = h / group, len = t + 1;
        const float* qh = q + (s * seq_len + t) * q_row + h * hd;
        const float* doh = dout + (s * seq_len + t) * q_row + h * hd;
        double m = -INFINITY;
        for (size_t j = 0; j < len; ++j) {
          double dot = 0.0;
          for (size_t i = 0; i < hd; ++i) {
            dot += static_cast<double>(qh[i]) * ks[j * kv_row + kvh * hd + i];
          }
          p[j] = dot * scale;
          m = std::max(m, p[j]);
        }
        double sum = 0.0;
        for (size_t j = 0; j < len; ++j) sum += (p[j] = std::exp(p[j] - m));
        double d = 0.0;
        for (size_t j = 0; j < len; ++j) {
          p[j] /= sum;
          double dot = 0.0;
          for (size_t i = 0; i < hd; ++i) {
            dot += static_cast<double>(doh[i]) * vs[j * kv_row + kvh * hd + i];
          }
          dp[j] = dot;
          d += p[j] * dot;
        }
        std::fill(dq_acc.begin(), dq_acc.end(), 0.0);
        for (size_t j = 0; j < len; ++j) {
          const double ds = p[j] * (dp[j] - d) * scale;
          for (size_t i = 0; i < hd; ++i) {
            const size_t e = j * kv_row + kvh * hd + i;
            dq_acc[i] += ds * ks[e];
            dk_acc[e] += ds * qh[i];
            dv_acc[e] += p[j] * doh[i];
          }
        }
        float* dqh = dq + (s * seq_len + t) * q_row + h * hd;
        for (size_t i = 0; i < hd; ++i) dqh[i] = static_cast<float>(dq_acc[i]);
      }
    }
    for (size_t e = 0; e < seq_len * kv_row; ++e) {
      dk[s * seq_len * kv_row + e] = static_cast<float>(dk_acc[e]);
      dv[s * seq_len * kv_row + e] = static_cast<float>(dv_acc[e]);
    }
  }
}

// silu(g) = g sig(g), silu'(g) = sig(g) (1 + g (1 - sig(g))).
void SwiGLUBackward(const float* gate, const float* up, const float* dout, size_t n, float* dgate,
                    float* dup) {
  for (size_t i = 0; i < n; ++i) {
    const double g = gate[i], u = up[i], d = dout[i];
    const double sig = 1.0 / (1.0 + std::exp(-g));
    dgate[i] = static_cast<float>(d * u * sig * (1.0 + g * (1.0 - sig)));
    dup[i] = static_cast<float>(d * g * sig);
  }
}

void CrossEntropy(const float* logits, const int32_t* targets, size_t num_rows, size_t vocab,
                  float grad_scale, float* losses, float* dlogits) {
  for (size_t r = 0; r < num_rows; ++r) {
    const float* l = logits + r * vocab;
    float* g = dlogits + r * vocab;
    const int32_t target = targets[r];
    if (target < 0) {
      losses[r] = 0.0f;
      std::fill(g, g + vocab, 0.0f);
      continue;
    }
    PK_CHECK(static_cast<size_t>(target) < vocab);
    const double m = *std::max_element(l, l + vocab);
    double sum = 0.0;
    for (size_t i = 0; i < vocab; ++i) sum += std::exp(l[i] - m);
    const double lse = m + std::log(sum);
    losses[r] = static_cast<float>(lse - l[target]);
    for (size_t i = 0; i < vocab; ++i) {
      const double prob = std::exp(l[i] - m) / sum;  // l[i] read before g[i] is written
      g[i] =
          static_cast<float>((prob - (i == static_cast<size_t>(target) ? 1.0 : 0.0)) * grad_scale);
    }
  }
}

double SumSquares(const float* x, size_t n) {
  double acc = 0.0;
  for (size_t i = 0; i < n; ++i) acc += static_cast<double>(x[i]) * x[i];
  return acc;
}

void Fill(float* x, size_t n, float value) { std::fill(x, x + n, value); }

void AdamW(float* param, const float* grad, float* m, float* v, size_t n, const AdamWParams& p) {
  PK_CHECK(p.step >= 1);
  const double b1 = p.beta1, b2 = p.beta2;
  const double c1 = 1.0 - std::pow(b1, static_cast<double>(p.step));
  const double c2 = 1.0 - std::pow(b2, static_cast<double>(p.step));
  for (size_t i = 0; i < n; ++i) {
    const double g = static_cast<double>(grad[i]) * p.grad_scale;
    const double mi = b1 * m[i] + (1.0 - b1) * g;
    const double vi = b2 * v[i] + (1.0 - b2) * g * g;
    const double update =
        (mi / c1) / (std::sqrt(vi / c2) + p.eps) + static_cast<double>(p.weight_decay) * param[i];
    param[i] = static_cast<float>(param[i] - static_cast<double>(p.lr) * update);
    m[i] = static_cast<float>(mi);
    v[i] = static_cast<float>(vi);
  }
}

}  // namespace pocket::kernels::ref
