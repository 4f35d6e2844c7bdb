// Reference quantizers. The arithmetic mirrors ggml-quants.c operation for operation
// (including evaluation order and float vs int types) because the goal is identical
// bits, not merely small error; comments name the ggml function each piece matches.
#include "tensor/quant.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "base/check.h"
#include "tensor/fp16.h"

namespace pocket::tensor {
namespace {

// Groups whose largest magnitude is below this are treated as all zero (ggml's
// GROUP_MAX_EPS).
constexpr float kGroupMaxEps = 1e-15f;

// Round to nearest, ties to even, via the 1.5·2^23 trick (ggml nearest_int): adding the
// constant makes the FPU round the fraction away and leaves the integer in the low
// mantissa bits. Valid for |v| <= 2^22 - 1, which every caller guarantees for finite input.
inline int NearestInt(float v) {
  const float biased = v + 12582912.f;
  int32_t bits;
  std::memcpy(&bits, &biased, sizeof(bits));
  return (bits & 0x007fffff) - 0x00400000;
}

// Asymmetric fit of n values to levels 0..nmax: returns scale, sets *neg_min so that
// x ≈ scale·L − *neg_min, trying nstep+1 candidate scales around nmax/(max−min) and keeping
// the one with the least weighted squared error. Matches ggml make_qkx2_quants with
// use_mad = false.
float FitScaleMin(int n, int nmax, const float* x, const float* weights, uint8_t* L,
                  float* neg_min, uint8_t* l_aux, float rmin, float rdelta, int nstep) {
  float min = x[0];
  float max = x[0];
  float sum_w = weights[0];
  float sum_x = sum_w * x[0];
  for (int i = 1; i < n; ++i) {
    if (x[i] < min) min = x[i];
    if (x[i] > max) max = x[i];
    const float w = weights[i];
    sum_w += w;
    sum_x += w * x[i];
  }
  if (min > 0) min = 0;
  if (max == min) {
    for (int i = 0; i < n; ++i) L[i] = 0;
    *neg_min = -min;
    return 0.f;
  }
  float iscale = nmax / (max - min);
  float scale = 1 / iscale;
  float best_error = 0;
  for (int i = 0; i < n; ++i) {
    const int l = NearestInt(iscale * (x[i] - min));
    L[i] = static_cast<uint8_t>(std::max(0, std::min(nmax, l)));
    float diff = scale * L[i] + min - x[i];
    diff = diff * diff;
    best_error += weights[i] * diff;
  }
  if (nstep < 1) {
    *neg_min = -min;
    return scale;
  }
  for (int is = 0; is <= nstep; ++is) {
    iscale = (rmin + rdelta * is + nmax) / (max - min);
    float sum_l = 0, sum_l2 = 0, sum_xl = 0;
    for (int i = 0; i < n; ++i) {
      int l = NearestInt(iscale * (x[i] - min));
      l = std::max(0, std::min(nmax, l));
      l_aux[i] = static_cast<uint8_t>(l);
      const float w = weights[i];
      sum_l += w * l;
      sum_l2 += w * l * l;
      sum_xl += w * l * x[i];
    }
    const float det = sum_w * sum_l2 - sum_l * sum_l;
    if (det > 0) {
      float this_scale = (sum_w * sum_xl - sum_x * sum_l) / det;
      float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / det;
      if (this_min > 0) {
        this_min = 0;
        this_scale = sum_xl / sum_l2;
      }
      float cur_error = 0;
      for (int i = 0; i < n; ++i) {
        float diff = this_scale * l_aux[i] + this_min - x[i];
        diff = diff * diff;
        cur_error += weights[i] * diff;
      }
      if (cur_error < best_error) {
        for (int i = 0; i < n; ++i) L[i] = l_aux[i];
        best_error = cur_error;
        scale = this_scale;
        min = this_min;
      }
    }
  }
  *neg_min = -min;
  return scale;
}

// Symmetric fit of n values to levels −nmax..nmax−1 (stored as L + nmax), weights x²,
// searching 18 scales around nmax/max. Matches ggml make_qx_quants(rmse_type = 1,
// qw = NULL).
float FitScaleSymmetric(int n, int nmax, const float* x, int8_t* L) {
  float max = 0;
  float amax = 0;
  for (int i = 0; i < n; ++i) {
    const float ax = std::fabs(x[i]);
    if (ax > amax) {
      amax = ax;
      max = x[i];
    }
  }
  if (amax < kGroupMaxEps) {
    for (int i = 0; i < n; ++i) L[i] = 0;
    return 0.f;
  }
  float iscale = -nmax / max;
  float sumlx = 0;
  float suml2 = 0;
  for (int i = 0; i < n; ++i) {
    int l = NearestInt(iscale * x[i]);
    l = std::max(-nmax, std::min(nmax - 1, l));
    L[i] = static_cast<int8_t>(l + nmax);
    const float w = x[i] * x[i];
    sumlx += w * x[i] * l;
    suml2 += w * l * l;
  }
  float scale = suml2 ? sumlx / suml2 : 0.0f;
  float best = scale * sumlx;
  for (int is = -9; is <= 9; ++is) {
    if (is == 0) continue;
    iscale = -(nmax + 0.1f * is) / max;
    sumlx = suml2 = 0;
    for (int i = 0; i < n; ++i) {
      int l = NearestInt(iscale * x[i]);
      l = std::max(-nmax, std::min(nmax - 1, l));
      const float w = x[i] * x[i];
      sumlx += w * x[i] * l;
      suml2 += w * l * l;
    }
    if (suml2 > 0 && sumlx * sumlx > best * suml2) {
      for (int i = 0; i < n; ++i) {
        const int l = NearestInt(iscale * x[i]);
        L[i] = static_cast<int8_t>(nmax + std::max(-nmax, std::min(nmax - 1, l)));
      }
      scale = sumlx / suml2;
      best = scale * sumlx;
    }
  }
  return scale;
}

}  // namespace

void GetScaleMinK4(int j, const uint8_t* q, uint8_t* scale, uint8_t* min) {
  if (j < 4) {
    *scale = q[j] & 63;
    *min = q[j + 4] & 63;
  } else {
    *scale = static_cast<uint8_t>((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
    *min = static_cast<uint8_t>((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
  }
}

// ggml quantize_row_q8_0_ref: d = amax/127, q = round-half-away(x/d).
void QuantizeRowQ8_0(const float* x, BlockQ8_0* y, size_t n) {
  PK_CHECK(n % kQK == 0);
  for (size_t i = 0; i < n / kQK; ++i) {
    const float* xb = x + i * kQK;
    float amax = 0.0f;
    for (size_t j = 0; j < kQK; ++j) amax = std::max(amax, std::fabs(xb[j]));
    const float d = amax / ((1 << 7) - 1);
    const float id = d ? 1.0f / d : 0.0f;
    y[i].d = F32ToF16(d);
    for (size_t j = 0; j < kQK; ++j) {
      y[i].qs[j] = static_cast<int8_t>(std::round(xb[j] * id));
    }
  }
}

// ggml quantize_row_q4_0_ref: d = (value of largest magnitude)/−8, q = min(15, trunc(x/d + 8.5)).
void QuantizeRowQ4_0(const float* x, BlockQ4_0* y, size_t n) {
  PK_CHECK(n % kQK == 0);
  for (size_t i = 0; i < n / kQK; ++i) {
    const float* xb = x + i * kQK;
    float amax = 0.0f;
    float max = 0.0f;
    for (size_t j = 0; j < kQK; ++j) {
      if (amax < std::fabs(xb[j])) {
        amax = std::fabs(xb[j]);
        max = xb[j];
      }
    }
    const float d = max / -8;
    const float id = d ? 1.0f / d : 0.0f;
    y[i].d = F32ToF16(d);
    for (size_t j = 0; j < kQK / 2; ++j) {
      const float x0 = xb[j] * id;
      const float x1 = xb[kQK / 2 + j] * id;
      const uint8_t q0 = static_cast<uint8_t>(std::min(15, static_cast<int>(static_cast<int8_t>(x0 + 8.5f))));
      const uint8_t q1 = static_cast<uint8_t>(std::min(15, static_cast<int>(static_cast<int8_t>(x1 + 8.5f))));
      y[i].qs[j] = static_cast<uint8_t>(q0 | (q1 << 4));
    }
  }
}

// ggml quantize_row_q4_K_ref.
void QuantizeRowQ4_K(const float* x, BlockQ4_K* y, size_t n) {
  PK_CHECK(n % kQKK == 0);
  uint8_t L[kQKK];
  uint8_t l_aux[32];
  float weights[32];
  float mins[kQKK / 32];
  float scales[kQKK / 32];
  for (size_t i = 0; i < n / kQKK; ++i) {
    const float* xb = x + i * kQKK;
    float max_scale = 0;  // scales are positive since the min is subtracted
    float max_min = 0;
    for (int j = 0; j < 8; ++j) {
      float sum_x2 = 0;
      for (int l = 0; l < 32; ++l) sum_x2 += xb[32 * j + l] * xb[32 * j + l];
      const float av_x = std::sqrt(sum_x2 / 32);
      for (int l = 0; l < 32; ++l) weights[l] = av_x + std::fabs(xb[32 * j + l]);
      scales[j] = FitScaleMin(32, 15, xb + 32 * j, weights, L + 32 * j, &mins[j], l_aux, -1.f,
                              0.1f, 20);
      if (scales[j] > max_scale) max_scale = scales[j];
      if (mins[j] > max_min) max_min = mins[j];
    }
    const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
    const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
    uint8_t* sc = y[i].scales;
    for (int j = 0; j < 8; ++j) {
      uint8_t ls = static_cast<uint8_t>(NearestInt(inv_scale * scales[j]));
      uint8_t lm = static_cast<uint8_t>(NearestInt(inv_min * mins[j]));
      ls = std::min<uint8_t>(63, ls);
      lm = std::min<uint8_t>(63, lm);
      if (j < 4) {
        sc[j] = ls;
        sc[j + 4] = lm;
      } else {
        sc[j + 4] = static_cast<uint8_t>((ls & 0xF) | ((lm & 0xF) << 4));
        sc[j - 4] |= static_cast<uint8_t>((ls >> 4) << 6);
        sc[j] |= static_cast<uint8_t>((lm >> 4) << 6);
      }
    }
    y[i].d = F32ToF16(max_scale / 63.f);
    y[i].dmin = F32ToF16(max_min / 63.f);
    for (int j = 0; j < 8; ++j) {
      uint8_t s, m;
      GetScaleMinK4(j, sc, &s, &m);
      const float d = F16ToF32(y[i].d) * s;
      if (!d) continue;
      const float dm = F16ToF32(y[i].dmin) * m;
      for (int ii = 0; ii < 32; ++ii) {
        const int l = NearestInt((xb[32 * j + ii] + dm) / d);
        L[32 * j + ii] = static_cast<uint8_t>(std::max(0, std::min(15, l)));
      }
    }
    // Byte l of each 32-byte group holds element l (low nibble) and l+32 (high nibble) of
    // a 64-element chunk.
    uint8_t* q = y[i].qs;
    for (size_t j = 0; j < kQKK; j += 64) {
      for (int l = 0; l < 32; ++l) q[l] = static_cast<uint8_t>(L[j + l] | (L[j + l + 32] << 4));
      q += 32;
    }
  }
}

// ggml quantize_row_q6_K_ref.
void QuantizeRowQ6_K(const float* x, BlockQ6_K* y, size_t n) {
  PK_CHECK(n % kQKK == 0);
  int8_t L[kQKK];
  float scales[kQKK / 16];
  for (size_t i = 0; i < n / kQKK; ++i) {
    const float* xb = x + i * kQKK;
    float max_scale = 0;
    float max_abs_scale = 0;
    for (int ib = 0; ib < 16; ++ib) {
      const float scale = FitScaleSymmetric(16, 32, xb + 16 * ib, L + 16 * ib);
      scales[ib] = scale;
      const float abs_scale = std::fabs(scale);
      if (abs_scale > max_abs_scale) {
        max_abs_scale = abs_scale;
        max_scale = scale;
      }
    }
    if (max_abs_scale < kGroupMaxEps) {
      std::memset(&y[i], 0, sizeof(BlockQ6_K));
      y[i].d = F32ToF16(0.f);
      continue;
    }
    const float iscale = -128.f / max_scale;
    y[i].d = F32ToF16(1 / iscale);
    for (int ib = 0; ib < 16; ++ib) {
      y[i].scales[ib] = static_cast<int8_t>(std::min(127, NearestInt(iscale * scales[ib])));
    }
    for (int j = 0; j < 16; ++j) {
      const float d = F16ToF32(y[i].d) * y[i].scales[j];
      if (!d) continue;
      for (int ii = 0; ii < 16; ++ii) {
        int l = NearestInt(xb[16 * j + ii] / d);
        l = std::max(-32, std::min(31, l));
        L[16 * j + ii] = static_cast<int8_t>(l + 32);
      }
    }
    // Per 128 elements: ql[l] = low nibbles of elements l and l+64, ql[l+32] = of l+32 and
    // l+96; qh[l] = the 2 high bits of l, l+32, l+64, l+96 at bit offsets 0, 2, 4, 6.
    uint8_t* ql = y[i].ql;
    uint8_t* qh = y[i].qh;
    for (size_t j = 0; j < kQKK; j += 128) {
      for (int l = 0; l < 32; ++l) {
        const uint8_t q1 = L[j + l + 0] & 0xF;
        const uint8_t q2 = L[j + l + 32] & 0xF;
        const uint8_t q3 = L[j + l + 64] & 0xF;
        const uint8_t q4 = L[j + l + 96] & 0xF;
        ql[l] = static_cast<uint8_t>(q1 | (q3 << 4));
        ql[l + 32] = static_cast<uint8_t>(q2 | (q4 << 4));
        qh[l] = static_cast<uint8_t>((L[j + l] >> 4) | ((L[j + l + 32] >> 4) << 2) |
                                     ((L[j + l + 64] >> 4) << 4) | ((L[j + l + 96] >> 4) << 6));
      }
      ql += 64;
      qh += 32;
    }
  }
}

// ggml quantize_row_q8_K_ref (bsums also zeroed for an all-zero block).
void QuantizeRowQ8_K(const float* x, BlockQ8_K* y, size_t n) {
  PK_CHECK(n % kQKK == 0);
  for (size_t i = 0; i < n / kQKK; ++i) {
    const float* xb = x + i * kQKK;
    float max = 0;
    float amax = 0;
    for (size_t j = 0; j < kQKK; ++j) {
      const float ax = std::fabs(xb[j]);
      if (ax > amax) {
        amax = ax;
        max = xb[j];
      }
    }
    if (!amax) {
      std::memset(&y[i], 0, sizeof(BlockQ8_K));
      continue;
    }
    const float iscale = -127.f / max;
    for (size_t j = 0; j < kQKK; ++j) {
      const int v = NearestInt(iscale * xb[j]);
      y[i].qs[j] = static_cast<int8_t>(std::min(127, v));
    }
    for (size_t j = 0; j < kQKK / 16; ++j) {
      int sum = 0;
      for (size_t ii = 0; ii < 16; ++ii) sum += y[i].qs[j * 16 + ii];
      y[i].bsums[j] = static_cast<int16_t>(sum);
    }
    y[i].d = 1 / iscale;
  }
}

void DequantizeRowQ8_0(const BlockQ8_0* x, float* y, size_t n) {
  PK_CHECK(n % kQK == 0);
  for (size_t i = 0; i < n / kQK; ++i) {
    const float d = F16ToF32(x[i].d);
    for (size_t j = 0; j < kQK; ++j) y[i * kQK + j] = x[i].qs[j] * d;
  }
}

void DequantizeRowQ4_0(const BlockQ4_0* x, float* y, size_t n) {
  PK_CHECK(n % kQK == 0);
  for (size_t i = 0; i < n / kQK; ++i) {
    const float d = F16ToF32(x[i].d);
    for (size_t j = 0; j < kQK / 2; ++j) {
      const int x0 = (x[i].qs[j] & 0x0F) - 8;
      const int x1 = (x[i].qs[j] >> 4) - 8;
      y[i * kQK + j] = x0 * d;
      y[i * kQK + j + kQK / 2] = x1 * d;
    }
  }
}

void DequantizeRowQ4_K(const BlockQ4_K* x, float* y, size_t n) {
  PK_CHECK(n % kQKK == 0);
  for (size_t i = 0; i < n / kQKK; ++i) {
    const uint8_t* q = x[i].qs;
    const float d = F16ToF32(x[i].d);
    const float min = F16ToF32(x[i].dmin);
    int is = 0;
    for (size_t j = 0; j < kQKK; j += 64) {
      uint8_t sc, m;
      GetScaleMinK4(is + 0, x[i].scales, &sc, &m);
      const float d1 = d * sc;
      const float m1 = min * m;
      GetScaleMinK4(is + 1, x[i].scales, &sc, &m);
      const float d2 = d * sc;
      const float m2 = min * m;
      for (int l = 0; l < 32; ++l) *y++ = d1 * (q[l] & 0xF) - m1;
      for (int l = 0; l < 32; ++l) *y++ = d2 * (q[l] >> 4) - m2;
      q += 32;
      is += 2;
    }
  }
}

void DequantizeRowQ6_K(const BlockQ6_K* x, float* y, size_t n) {
  PK_CHECK(n % kQKK == 0);
  for (size_t i = 0; i < n / kQKK; ++i) {
    const float d = F16ToF32(x[i].d);
    const uint8_t* ql = x[i].ql;
    const uint8_t* qh = x[i].qh;
    const int8_t* sc = x[i].scales;
    for (size_t base = 0; base < kQKK; base += 128) {
      for (int l = 0; l < 32; ++l) {
        const int is = l / 16;
        const int q1 = static_cast<int8_t>((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
        const int q2 = static_cast<int8_t>((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
        const int q3 = static_cast<int8_t>((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
        const int q4 = static_cast<int8_t>((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
        y[l + 0] = d * sc[is + 0] * q1;
        y[l + 32] = d * sc[is + 2] * q2;
        y[l + 64] = d * sc[is + 4] * q3;
        y[l + 96] = d * sc[is + 6] * q4;
      }
      y += 128;
      ql += 64;
      qh += 32;
      sc += 8;
    }
  }
}

void DequantizeRowQ8_K(const BlockQ8_K* x, float* y, size_t n) {
  PK_CHECK(n % kQKK == 0);
  for (size_t i = 0; i < n / kQKK; ++i) {
    for (size_t j = 0; j < kQKK; ++j) y[i * kQKK + j] = x[i].d * x[i].qs[j];
  }
}

void QuantizeRow(DType dtype, const float* src, void* dst, size_t n) {
  PK_CHECK(n % BlockElements(dtype) == 0);
  switch (dtype) {
    case DType::kF32: std::memcpy(dst, src, n * sizeof(float)); return;
    case DType::kF16: F32ToF16Row(src, static_cast<f16_t*>(dst), n); return;
    case DType::kBF16: F32ToBF16Row(src, static_cast<bf16_t*>(dst), n); return;
    case DType::kQ8_0: QuantizeRowQ8_0(src, static_cast<BlockQ8_0*>(dst), n); return;
    case DType::kQ4_0: QuantizeRowQ4_0(src, static_cast<BlockQ4_0*>(dst), n); return;
    case DType::kQ4_K: QuantizeRowQ4_K(src, static_cast<BlockQ4_K*>(dst), n); return;
    case DType::kQ6_K: QuantizeRowQ6_K(src, static_cast<BlockQ6_K*>(dst), n); return;
    case DType::kQ8_K: QuantizeRowQ8_K(src, static_cast<BlockQ8_K*>(dst), n); return;
    case DType::kQ4_1: case DType::kQ5_0: case DType::kQ5_1: case DType::kIQ4_NL:
    case DType::kQ2_K: case DType::kQ3_K: case DType::kQ5_K: case DType::kIQ4_XS:
    case DType::kIQ2_XXS: case DType::kIQ2_XS: case DType::kIQ2_S: case DType::kIQ3_XXS:
    case DType::kIQ3_S: case DType::kIQ1_S: case DType::kIQ1_M:
      break;
  }
  PK_CHECK(false && "QuantizeRow: no quantizer for this dtype");
}

void DequantizeRow(DType dtype, const void* src, float* dst, size_t n) {
  PK_CHECK(n % BlockElements(dtype) == 0);
  switch (dtype) {
    case DType::kF32: std::memcpy(dst, src, n * sizeof(float)); return;
    case DType::kF16: F16ToF32Row(static_cast<const f16_t*>(src), dst, n); return;
    case DType::kBF16: BF16ToF32Row(static_cast<const bf16_t*>(src), dst, n); return;
    case DType::kQ8_0: DequantizeRowQ8_0(static_cast<const BlockQ8_0*>(src), dst, n); return;
    case DType::kQ4_0: DequantizeRowQ4_0(static_cast<const BlockQ4_0*>(src), dst, n); return;
    case DType::kQ4_K: DequantizeRowQ4_K(static_cast<const BlockQ4_K*>(src), dst, n); return;
    case DType::kQ6_K: DequantizeRowQ6_K(static_cast<const BlockQ6_K*>(src), dst, n); return;
    case DType::kQ8_K: DequantizeRowQ8_K(static_cast<const BlockQ8_K*>(src), dst, n); return;
    case DType::kIQ2_XXS:
      DequantizeRowIQ2_XXS(static_cast<const BlockIQ2_XXS*>(src), dst, n);
      return;
    case DType::kIQ2_XS: DequantizeRowIQ2_XS(static_cast<const BlockIQ2_XS*>(src), dst, n); return;
    case DType::kIQ2_S: DequantizeRowIQ2_S(static_cast<const BlockIQ2_S*>(src), dst, n); return;
    case DType::kIQ3_XXS:
      DequantizeRowIQ3_XXS(static_cast<const BlockIQ3_XXS*>(src), dst, n);
      return;
    case DType::kIQ3_S: DequantizeRowIQ3_S(static_cast<const BlockIQ3_S*>(src), dst, n); return;
    case DType::kIQ1_S: DequantizeRowIQ1_S(static_cast<const BlockIQ1_S*>(src), dst, n); return;
    case DType::kIQ1_M: DequantizeRowIQ1_M(static_cast<const BlockIQ1_M*>(src), dst, n); return;
    case DType::kQ4_1: DequantizeRowQ4_1(static_cast<const BlockQ4_1*>(src), dst, n); return;
    case DType::kQ5_0: DequantizeRowQ5_0(static_cast<const BlockQ5_0*>(src), dst, n); return;
    case DType::kQ5_1: DequantizeRowQ5_1(static_cast<const BlockQ5_1*>(src), dst, n); return;
    case DType::kIQ4_NL: DequantizeRowIQ4_NL(static_cast<const BlockIQ4_NL*>(src), dst, n); return;
    case DType::kQ2_K: DequantizeRowQ2_K(static_cast<const BlockQ2_K*>(src), dst, n); return;
    case DType::kQ3_K: DequantizeRowQ3_K(static_cast<const BlockQ3_K*>(src), dst, n); return;
    case DType::kQ5_K: DequantizeRowQ5_K(static_cast<const BlockQ5_K*>(src), dst, n); return;
    case DType::kIQ4_XS: DequantizeRowIQ4_XS(static_cast<const BlockIQ4_XS*>(src), dst, n); return;
  }
  PK_CHECK(false && "DequantizeRow: no dequantizer for this dtype");
}

}  // namespace pocket::tensor
