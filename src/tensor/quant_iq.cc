// Reference dequantization of the IQ1/IQ2/IQ3 lattice types (IQ2_XXS, IQ2_XS, IQ2_S,
// IQ3_XXS, IQ3_S, IQ1_S, IQ1_M): groups of 4 or 8 elements are codebook points of
// iq_grids.h, scaled per 32 (or 16) elements and signed by separate bits. The float
// arithmetic is ggml-quants.c's dequantize_row_iq* expression for expression (scale
// products in the same order, no FMA: built with -ffp-contract=off), so the values are
// bit-identical to ggml's and gguf-py's (quant_iq_test.cc). Quantizers are not provided:
// these files come from llama-quantize with an importance matrix.
#include <cstring>

#include "base/check.h"
#include "tensor/fp16.h"
#include "tensor/iq_grids.h"
#include "tensor/quant.h"

namespace pocket::tensor {
namespace {

// Byte j of a codebook entry.
inline uint8_t GridByte(uint64_t entry, int j) { return static_cast<uint8_t>(entry >> (8 * j)); }

// Eight elements: db * magnitude, negated where `signs` has bit j set.
inline void SignedGroup8(float db, uint64_t entry, uint8_t signs, float* y) {
  for (int j = 0; j < 8; ++j) {
    y[j] = db * GridByte(entry, j) * (signs & (1u << j) ? -1.f : 1.f);
  }
}

// Eight elements of IQ1: dl * (grid value in {-1, 0, 1} + delta).
inline void Iq1Group8(float dl, uint64_t entry, float delta, float* y) {
  for (int j = 0; j < 8; ++j) y[j] = dl * (static_cast<int8_t>(GridByte(entry, j)) + delta);
}

constexpr float kIQ1Delta = 0.125f;  // ggml IQ1S_DELTA / IQ1M_DELTA

}  // namespace

// Per 32 elements two u32: four 8-bit grid indices, then 4 x 7 sign bits and a 4-bit scale.
void DequantizeRowIQ2_XXS(const BlockIQ2_XXS* x, float* y, size_t n) {
  PK_CHECK(n % kQKK == 0);
  for (size_t i = 0; i < n / kQKK; ++i) {
    const float d = F16ToF32(x[i].d);
    for (int ib = 0; ib < 8; ++ib) {
      uint32_t aux[2];
      std::memcpy(aux, x[i].qs + 4 * ib, sizeof(aux));
      const float db = d * (0.5f + static_cast<float>(aux[1] >> 28)) * 0.25f;
      for (int l = 0; l < 4; ++l) {
        const uint8_t index = static_cast<uint8_t>(aux[0] >> (8 * l));
        SignedGroup8(db, kIQ2XXSGrid[index], kIQ2Signs[(aux[1] >> (7 * l)) & 127], y);
        y += 8;
      }
    }
  }
}

// Per group of 8 a u16: 9-bit grid index, 7 sign bits; per 32 elements a byte of two
// 4-bit scales (one per 16 elements).
void DequantizeRowIQ2_XS(const BlockIQ2_XS* x, float* y, size_t n) {
  PK_CHECK(n % kQKK == 0);
  for (size_t i = 0; i < n / kQKK; ++i) {
    const float d = F16ToF32(x[i].d);
    for (int ib = 0; ib < 8; ++ib) {
      const float db[2] = {d * (0.5f + static_cast<float>(x[i].scales[ib] & 0xf)) * 0.25f,
                           d * (0.5f + static_cast<float>(x[i].scales[ib] >> 4)) * 0.25f};
      for (int l = 0; l < 4; ++l) {
        const uint16_t q = x[i].qs[4 * ib + l];
        SignedGroup8(db[l / 2], kIQ2XSGrid[q & 511], kIQ2Signs[q >> 9], y);
        y += 8;
      }
    }
  }
}

// Per group of 8: 8 low index bits in qs[0..31], 2 high bits in qh (2 per group), a full
// sign byte in qs[32..63]; scales as IQ2_XS.
void DequantizeRowIQ2_S(const BlockIQ2_S* x, float* y, size_t n) {
  PK_CHECK(n % kQKK == 0);
  for (size_t i = 0; i < n / kQKK; ++i) {
    const float d = F16ToF32(x[i].d);
    const uint8_t* qs = x[i].qs;
    const uint8_t* signs = x[i].qs + kQKK / 8;
    for (int ib = 0; ib < 8; ++ib) {
      const float db[2] = {d * (0.5f + static_cast<float>(x[i].scales[ib] & 0xf)) * 0.25f,
                           d * (0.5f + static_cast<float>(x[i].scales[ib] >> 4)) * 0.25f};
      for (int l = 0; l < 4; ++l) {
        const int index = qs[l] | ((x[i].qh[ib] << (8 - 2 * l)) & 0x300);
        SignedGroup8(db[l / 2], kIQ2SGrid[index], signs[l], y);
        y += 8;
      }
      qs += 4;
      signs += 4;
    }
  }
}

// Per 32 elements: eight 8-bit indices of 4-element points (qs), then (after all 64 index
// bytes) a u32 of 4 x 7 sign bits and a 4-bit scale.
void DequantizeRowIQ3_XXS(const BlockIQ3_XXS* x, float* y, size_t n) {
  PK_CHECK(n % kQKK == 0);
  for (size_t i = 0; i < n / kQKK; ++i) {
    const float d = F16ToF32(x[i].d);
    const uint8_t* qs = x[i].qs;
    const uint8_t* scales_and_signs = x[i].qs + kQKK / 4;
    for (int ib = 0; ib < 8; ++ib) {
      uint32_t aux;
      std::memcpy(&aux, scales_and_signs + 4 * ib, sizeof(aux));
      const float db = d * (0.5f + static_cast<float>(aux >> 28)) * 0.5f;
      for (int l = 0; l < 4; ++l) {
        const uint64_t entry =
            uint64_t{kIQ3XXSGrid[qs[2 * l]]} | uint64_t{kIQ3XXSGrid[qs[2 * l + 1]]} << 32;
        SignedGroup8(db, entry, kIQ2Signs[(aux >> (7 * l)) & 127], y);
        y += 8;
      }
      qs += 8;
    }
  }
}

// Per 32 elements: eight 8-bit index bytes plus a qh byte of their 9th bits, four sign
// bytes; per 64 elements a byte of two 4-bit odd scales (1 + 2s).
void DequantizeRowIQ3_S(const BlockIQ3_S* x, float* y, size_t n) {
  PK_CHECK(n % kQKK == 0);
  for (size_t i = 0; i < n / kQKK; ++i) {
    const float d = F16ToF32(x[i].d);
    const uint8_t* qs = x[i].qs;
    const uint8_t* signs = x[i].signs;
    for (int ib = 0; ib < 8; ++ib) {
      const uint8_t sc = x[i].scales[ib / 2];
      const float db = d * static_cast<float>(1 + 2 * (ib % 2 == 0 ? sc & 0xf : sc >> 4));
      const int qh = x[i].qh[ib];
      for (int l = 0; l < 4; ++l) {
        const int i0 = qs[2 * l] | ((qh << (8 - 2 * l)) & 256);
        const int i1 = qs[2 * l + 1] | ((qh << (7 - 2 * l)) & 256);
        const uint64_t entry = uint64_t{kIQ3SGrid[i0]} | uint64_t{kIQ3SGrid[i1]} << 32;
        SignedGroup8(db, entry, signs[l], y);
        y += 8;
      }
      qs += 8;
      signs += 4;
    }
  }
}

// Per 32 elements a u16 qh: 4 x 3 high index bits, a 3-bit odd scale (1 + 2s) and the
// delta's sign (bit 15); the low 8 index bits of the four groups in qs.
void DequantizeRowIQ1_S(const BlockIQ1_S* x, float* y, size_t n) {
  PK_CHECK(n % kQKK == 0);
  for (size_t i = 0; i < n / kQKK; ++i) {
    const float d = F16ToF32(x[i].d);
    const uint8_t* qs = x[i].qs;
    for (int ib = 0; ib < 8; ++ib) {
      const uint16_t qh = x[i].qh[ib];
      const float dl = d * static_cast<float>(2 * ((qh >> 12) & 7) + 1);
      const float delta = qh & 0x8000 ? -kIQ1Delta : kIQ1Delta;
      for (int l = 0; l < 4; ++l) {
        Iq1Group8(dl, kIQ1SGrid[qs[l] | (((qh >> (3 * l)) & 7) << 8)], delta, y);
        y += 8;
      }
      qs += 4;
    }
  }
}

// The f16 super-block scale is the top nibbles of the four u16 scale words (word w gives
// bits 4w..4w+3); each word's low 12 bits are four 3-bit odd scales, one per 16 elements.
// Per pair of groups a qh byte: 3 high index bits and the delta sign (bit 3) per group.
void DequantizeRowIQ1_M(const BlockIQ1_M* x, float* y, size_t n) {
  PK_CHECK(n % kQKK == 0);
  for (size_t i = 0; i < n / kQKK; ++i) {
    uint16_t sc[4];
    std::memcpy(sc, x[i].scales, sizeof(sc));
    const uint16_t d_bits = static_cast<uint16_t>((sc[0] >> 12) | ((sc[1] >> 8) & 0x00f0) |
                                                  ((sc[2] >> 4) & 0x0f00) | (sc[3] & 0xf000));
    const float d = F16ToF32(d_bits);
    const uint8_t* qs = x[i].qs;
    const uint8_t* qh = x[i].qh;
    for (int ib = 0; ib < 8; ++ib) {
      const int shift = 6 * (ib % 2);
      const float dl[2] = {d * static_cast<float>(2 * ((sc[ib / 2] >> shift) & 7) + 1),
                           d * static_cast<float>(2 * ((sc[ib / 2] >> (shift + 3)) & 7) + 1)};
      for (int l = 0; l < 4; ++l) {
        const int h = qh[l / 2] >> (4 * (l % 2));
        const float delta = h & 0x08 ? -kIQ1Delta : kIQ1Delta;
        Iq1Group8(dl[l / 2], kIQ1SGrid[qs[l] | ((h & 7) << 8)], delta, y);
        y += 8;
      }
      qs += 4;
      qh += 2;
    }
  }
}

}  // namespace pocket::tensor
