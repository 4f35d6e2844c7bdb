// Reference dequantization of the K-quant weight types Q2_K, Q3_K, Q5_K and of IQ4_XS
// (256-element super-blocks, see dtype.h for the layouts). Same arithmetic, in the same
// order and with the same float/int types, as ggml-quants.c's dequantize_row_*: checked
// bit for bit against llama.cpp's gguf-py on random blocks (tests/golden/quant/). Built
// with -ffp-contract=off (tensor/CMakeLists.txt) so `d * q - m` is never fused.
#include "tensor/quant.h"

#include <cstring>

#include "base/check.h"
#include "tensor/fp16.h"

namespace pocket::tensor {

void Q3KScales(const uint8_t* packed, int8_t* scales) {
  // ggml's kmask trick: 16 6-bit values, low 4 bits in bytes 0..7 (two per byte, the
  // second 8 in the high nibbles), high 2 bits in bytes 8..11 (four per byte).
  uint32_t aux[4];
  std::memcpy(aux, packed, 12);
  constexpr uint32_t kMask1 = 0x03030303, kMask2 = 0x0f0f0f0f;
  const uint32_t tmp = aux[2];
  aux[2] = ((aux[0] >> 4) & kMask2) | (((tmp >> 4) & kMask1) << 4);
  aux[3] = ((aux[1] >> 4) & kMask2) | (((tmp >> 6) & kMask1) << 4);
  aux[0] = (aux[0] & kMask2) | (((tmp >> 0) & kMask1) << 4);
  aux[1] = (aux[1] & kMask2) | (((tmp >> 2) & kMask1) << 4);
  uint8_t raw[16];
  std::memcpy(raw, aux, 16);
  for (int i = 0; i < 16; ++i) scales[i] = static_cast<int8_t>(raw[i] - 32);
}

int IQ4XSScale(const BlockIQ4_XS& b, int ib) {
  const int ls =
      ((b.scales_l[ib / 2] >> (4 * (ib % 2))) & 0xF) | (((b.scales_h >> (2 * ib)) & 3) << 4);
  return ls - 32;
}

// ggml dequantize_row_q2_K. Per 128 elements (32 bytes of qs), shift 0, 2, 4, 6 picks
// the 2-bit field; each 16-element group has its own 4-bit scale and 4-bit min.
void DequantizeRowQ2_K(const BlockQ2_K* x, float* y, size_t n) {
  PK_CHECK(n % kQKK == 0);
  for (size_t i = 0; i < n / kQKK; ++i) {
    const float d = F16ToF32(x[i].d);
    const float min = F16ToF32(x[i].dmin);
    const uint8_t* q = x[i].qs;
    int is = 0;
    for (size_t half = 0; half < kQKK; half += 128) {
      for (int shift = 0; shift < 8; shift += 2) {
        for (int g = 0; g < 2; ++g) {
          const uint8_t sc = x[i].scales[is++];
          const float dl = d * (sc & 0xF);
          const float ml = min * (sc >> 4);
          for (int l = 0; l < 16; ++l) {
            *y++ = dl * static_cast<int8_t>((q[16 * g + l] >> shift) & 3) - ml;
          }
        }
      }
      q += 32;
    }
  }
}

// ggml dequantize_row_q3_K: q = 2 low bits - (hmask bit clear ? 4 : 0), signed scales.
void DequantizeRowQ3_K(const BlockQ3_K* x, float* y, size_t n) {
  PK_CHECK(n % kQKK == 0);
  int8_t scales[16];
  for (size_t i = 0; i < n / kQKK; ++i) {
    const float d_all = F16ToF32(x[i].d);
    Q3KScales(x[i].scales, scales);
    const uint8_t* q = x[i].qs;
    const uint8_t* hm = x[i].hmask;
    uint8_t m = 1;
    int is = 0;
    for (size_t half = 0; half < kQKK; half += 128) {
      for (int shift = 0; shift < 8; shift += 2) {
        for (int g = 0; g < 2; ++g) {
          const float dl = d_all * (scales[is++]);
          for (int l = 16 * g; l < 16 * g + 16; ++l) {
            *y++ = dl * (static_cast<int8_t>((q[l] >> shift) & 3) - ((hm[l] & m) ? 0 : 4));
          }
        }
        m = static_cast<uint8_t>(m << 1);
      }
      q += 32;
    }
  }
}

// ggml dequantize_row_q5_K: Q4_K's nibbles plus a fifth bit (16) from qh.
void DequantizeRowQ5_K(const BlockQ5_K* x, float* y, size_t n) {
  PK_CHECK(n % kQKK == 0);
  for (size_t i = 0; i < n / kQKK; ++i) {
    const uint8_t* ql = x[i].qs;
    const uint8_t* qh = x[i].qh;
    const float d = F16ToF32(x[i].d);
    const float min = F16ToF32(x[i].dmin);
    int is = 0;
    uint8_t u1 = 1, u2 = 2;
    for (size_t j = 0; j < kQKK; j += 64) {
      uint8_t sc, m;
      GetScaleMinK4(is + 0, x[i].scales, &sc, &m);
      const float d1 = d * sc;
      const float m1 = min * m;
      GetScaleMinK4(is + 1, x[i].scales, &sc, &m);
      const float d2 = d * sc;
      const float m2 = min * m;
      for (int l = 0; l < 32; ++l) *y++ = d1 * ((ql[l] & 0xF) + (qh[l] & u1 ? 16 : 0)) - m1;
      for (int l = 0; l < 32; ++l) *y++ = d2 * ((ql[l] >> 4) + (qh[l] & u2 ? 16 : 0)) - m2;
      ql += 32;
      is += 2;
      u1 = static_cast<uint8_t>(u1 << 2);
      u2 = static_cast<uint8_t>(u2 << 2);
    }
  }
}

// ggml dequantize_row_iq4_xs: per 32-element sub-block a 6-bit scale (minus 32) times the
// IQ4_NL codebook value of each nibble.
void DequantizeRowIQ4_XS(const BlockIQ4_XS* x, float* y, size_t n) {
  PK_CHECK(n % kQKK == 0);
  for (size_t i = 0; i < n / kQKK; ++i) {
    const float d = F16ToF32(x[i].d);
    const uint8_t* qs = x[i].qs;
    for (int ib = 0; ib < 8; ++ib) {
      const float dl = d * IQ4XSScale(x[i], ib);
      for (int j = 0; j < 16; ++j) {
        y[j] = dl * kIQ4NLValues[qs[j] & 0xF];
        y[j + 16] = dl * kIQ4NLValues[qs[j] >> 4];
      }
      y += 32;
      qs += 16;
    }
  }
}

}  // namespace pocket::tensor
