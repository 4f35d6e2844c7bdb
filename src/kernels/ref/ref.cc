#include "kernels/ref/ref.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "base/check.h"
#include "tensor/fp16.h"
#include "tensor/quant.h"

namespace pocket::kernels::ref {
namespace {

using tensor::DType;

float LoadScalar(DType dtype, const void* base, size_t i) {
  if (dtype == DType::kF16) return tensor::F16ToF32(static_cast<const uint16_t*>(base)[i]);
  PK_CHECK(dtype == DType::kF32);
  return static_cast<const float*>(base)[i];
}

// Dequantized weight rows, one row at a time.
void WeightRow(const tensor::TensorView& w, size_t r, float* out) {
  tensor::DequantizeRow(w.dtype, w.row(static_cast<int64_t>(r)), out,
                        static_cast<size_t>(w.ne[0]));
}

}  // namespace

void QuantizeActQ8(const float* x, size_t n, int8_t* q, float* d) {
  PK_CHECK(n % 32 == 0);
  for (size_t b = 0; b < n / 32; ++b) {
    float amax = 0.0f;
    for (size_t i = 0; i < 32; ++i) amax = std::max(amax, std::fabs(x[b * 32 + i]));
    const float scale = amax / 127.0f;
    const float inv = scale != 0.0f ? 1.0f / scale : 0.0f;
    d[b] = scale;
    for (size_t i = 0; i < 32; ++i) {
      q[b * 32 + i] = static_cast<int8_t>(std::round(x[b * 32 + i] * inv));
    }
  }
}

void EffectiveActivation(DType dtype, const float* x, size_t n, float* out) {
  switch (dtype) {
    case DType::kF32:
    case DType::kF16:
    case DType::kBF16:
    case DType::kIQ2_XXS: case DType::kIQ2_XS: case DType::kIQ2_S: case DType::kIQ3_XXS:
    case DType::kIQ3_S: case DType::kIQ1_S: case DType::kIQ1_M:
      std::copy(x, x + n, out);
      return;
    case DType::kQ8_0:
    case DType::kQ4_0:
    case DType::kQ4_1: case DType::kQ5_0: case DType::kQ5_1: case DType::kIQ4_NL: {
      std::vector<int8_t> q(n);
      std::vector<float> d(n / 32);
      QuantizeActQ8(x, n, q.data(), d.data());
      for (size_t i = 0; i < n; ++i) out[i] = d[i / 32] * static_cast<float>(q[i]);
      return;
    }
    case DType::kQ2_K: case DType::kQ3_K: case DType::kQ4_K: case DType::kQ5_K:
    case DType::kQ6_K: case DType::kIQ4_XS: {
      std::vector<tensor::BlockQ8_K> blocks(n / tensor::kQKK);
      tensor::QuantizeRowQ8_K(x, blocks.data(), n);
      tensor::DequantizeRowQ8_K(blocks.data(), out, n);
      return;
    }
    case DType::kQ8_K:
      break;
  }
  PK_CHECK(false && "EffectiveActivation: unsupported weight dtype");
}

namespace {
template <bool kAbs>
void MatMulImpl(const tensor::TensorView& w, const float* x, size_t num_tokens, float* y) {
  PK_CHECK(MatMulSupports(w.dtype));
  const size_t cols = static_cast<size_t>(w.ne[0]);
  const size_t rows = static_cast<size_t>(w.num_rows());
  std::vector<float> xe(cols), wr(cols);
  std::vector<float> xs(num_tokens * cols);
  for (size_t t = 0; t < num_tokens; ++t) {
    EffectiveActivation(w.dtype, x + t * cols, cols, xs.data() + t * cols);
  }
  for (size_t r = 0; r < rows; ++r) {
    WeightRow(w, r, wr.data());
    for (size_t t = 0; t < num_tokens; ++t) {
      double acc = 0.0;
      for (size_t c = 0; c < cols; ++c) {
        const double p = static_cast<double>(wr[c]) * xs[t * cols + c];
        acc += kAbs ? std::fabs(p) : p;
      }
      y[t * rows + r] = static_cast<float>(acc);
    }
  }
}
}  // namespace

void MatMul(const tensor::TensorView& w, const float* x, size_t num_tokens, float* y) {
  MatMulImpl<false>(w, x, num_tokens, y);
}
void MatMulAbs(const tensor::TensorView& w, const float* x, size_t num_tokens, float* y) {
  MatMulImpl<true>(w, x, num_tokens, y);
}

void RmsNorm(const float* x, const float* weight, float eps, size_t n, size_t num_rows,
             float* out) {
  for (size_t r = 0; r < num_rows; ++r) {
    double ss = 0.0;
    for (size_t i = 0; i < n; ++i) ss += static_cast<double>(x[r * n + i]) * x[r * n + i];
    const double scale = 1.0 / std::sqrt(ss / static_cast<double>(n) + eps);
    for (size_t i = 0; i < n; ++i) {
      out[r * n + i] = static_cast<float>(x[r * n + i] * scale * weight[i]);
    }
  }
}

void Rope(float* x, size_t num_tokens, size_t num_heads, const int32_t* positions,
          const RopeTable& table) {
  const RopeConfig& c = table.config();
  const size_t half = c.rot_dims / 2;
  for (size_t t = 0; t < num_tokens; ++t) {
    for (size_t h = 0; h < num_heads; ++h) {
      float* v = x + (t * num_heads + h) * c.head_dim;
      for (size_t i = 0; i < half; ++i) {
        double theta = static_cast<double>(positions[t]) * c.freq_scale *
                       std::pow(static_cast<double>(c.freq_base),
                                -2.0 * static_cast<double>(i) / static_cast<double>(c.rot_dims));
        if (!c.freq_factors.empty()) theta /= c.freq_factors[i];
        const double cs = std::cos(theta), sn = std::sin(theta);
        const size_t i0 = c.style == RopeStyle::kNormal ? 2 * i : i;
        const size_t i1 = c.style == RopeStyle::kNormal ? 2 * i + 1 : i + half;
        const double a = v[i0], b = v[i1];
        v[i0] = static_cast<float>(a * cs - b * sn);
        v[i1] = static_cast<float>(a * sn + b * cs);
      }
    }
  }
}

void Softmax(float* x, size_t n) {
  if (n == 0) return;
  const float m = *std::max_element(x, x + n);
  double sum = 0.0;
  for (size_t i = 0; i < n; ++i) sum += std::exp(static_cast<double>(x[i]) - m);
  for (size_t i = 0; i < n; ++i) {
    x[i] = static_cast<float>(std::exp(static_cast<double>(x[i]) - m) / sum);
  }
}

size_t ArgMax(const float* x, size_t n) {
  size_t best = n;
  for (size_t i = 0; i < n; ++i) {
    if (std::isnan(x[i])) continue;
    if (best == n || x[i] > x[best]) best = i;
  }
  return best == n ? 0 : best;
}

void ScaledExp(const float* x, size_t n, float scale, float offset, float* out) {
  for (size_t i = 0; i < n; ++i) {
    const double a = static_cast<double>(x[i]) * scale - static_cast<double>(offset);
    out[i] = std::isnan(x[i]) || a < kScaledExpMin
                 ? 0.0f
                 : static_cast<float>(std::exp(std::min(a, static_cast<double>(kScaledExpMax))));
  }
}

void SwiGLU(const float* gate, const float* up, size_t n, float* out) {
  for (size_t i = 0; i < n; ++i) {
    const double g = gate[i];
    out[i] = static_cast<float>(g / (1.0 + std::exp(-g)) * up[i]);
  }
}

void Add(const float* a, const float* b, size_t n, float* out) {
  for (size_t i = 0; i < n; ++i) out[i] = a[i] + b[i];
}

void GetRows(const tensor::TensorView& table, const int32_t* ids, size_t num_ids, float* out) {
  const size_t cols = static_cast<size_t>(table.ne[0]);
  for (size_t i = 0; i < num_ids; ++i) {
    PK_CHECK(ids[i] >= 0 && ids[i] < table.num_rows());
    tensor::DequantizeRow(table.dtype, table.row(ids[i]), out + i * cols, cols);
  }
}

void Attention(const float* q, size_t num_tokens, size_t num_heads, size_t first_position,
               const KvView& kv, float scale, float* out) {
  PK_CHECK(kv.num_kv_heads > 0 && num_heads % kv.num_kv_heads == 0);
  const size_t hd = kv.head_dim, group = num_heads / kv.num_kv_heads;
  std::vector<double> s;
  for (size_t t = 0; t < num_tokens; ++t) {
    const size_t len = first_position + t + 1;
    for (size_t h = 0; h < num_heads; ++h) {
      const size_t kvh = h / group;
      const float* qh = q + (t * num_heads + h) * hd;
      s.assign(len, 0.0);
      double m = -INFINITY;
      for (size_t p = 0; p < len; ++p) {
        double dot = 0.0;
        const size_t base = (p * kv.num_kv_heads + kvh) * hd;
        for (size_t i = 0; i < hd; ++i) dot += static_cast<double>(qh[i]) * LoadScalar(kv.dtype, kv.k, base + i);
        s[p] = dot * scale;
        m = std::max(m, s[p]);
      }
      double sum = 0.0;
      for (size_t p = 0; p < len; ++p) sum += (s[p] = std::exp(s[p] - m));
      float* o = out + (t * num_heads + h) * hd;
      for (size_t i = 0; i < hd; ++i) {
        double acc = 0.0;
        for (size_t p = 0; p < len; ++p) {
          acc += s[p] * LoadScalar(kv.dtype, kv.v, (p * kv.num_kv_heads + kvh) * hd + i);
        }
        o[i] = static_cast<float>(acc / sum);
      }
    }
  }
}

}  // namespace pocket::kernels::ref
