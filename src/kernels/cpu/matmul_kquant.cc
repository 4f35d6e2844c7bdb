// MatMul bodies for the 256-element super-block weight types Q2_K, Q3_K, Q4_K, Q5_K, Q6_K
// and IQ4_XS against Q8_K activations, compiled once per Highway target (foreach_target).
//
// Every target: a portable dot per (row, token), integer within a block (the block's
// quants decoded to int8 with integer sub-block scales), one float step per block.
// x86 (AVX2 and AVX-512 targets, 256-bit integer ops):
//  - Q4_K: 8-row tiles over an interleaved layout (PackedWeight, built at load by
//    PackKQuantGroup). Lane r of a 256-bit vector is row r: per 32-element sub-block the 8
//    rows' exact integer dots (vpdpbusd where the CPU has AVX512-VNNI; else vpmaddubsw +
//    vpmaddwd with the scale folded in), times the 8 rows' sub-block scales, summed in
//    int32; the mins times Q8_K's pair sums of bsums (vpmaddwd, exact) in their own int32
//    lanes. Per block and row two float steps, acc = fma(float(sumi), d * dx, acc) and
//    accm = fma(float(summ), dmin * dx, accm); the result is acc - accm. The plain rows (no
//    PackedWeight) go through a per-(row, token) dot that sums the same integers exactly
//    and takes the same float steps, so repacked and plain give the same bits. The
//    integers are exact and the float steps the same with or without VNNI, on AVX2 and
//    AVX-512, so every x86 target gives the same bits and one packed layout serves them
//    all. Speed per core, 2048x8192 mat-vec (kernels_bench, docs/kernels.md): see there.
//  - Q6_K: the same 8-row tiles over its own packed layout (kquant::kQ6KPk*), the -32
//    offset folded in as -32 * sum_j scale_j * bsum_j, one float step per block and row;
//    its plain rows likewise through a per-(row, token) dot with the same steps.
//  - Q5_K: per (row, token), vpmaddubsw of the unsigned quants against Q8_K's int8,
//    vpmaddwd with the sub-block scales, int32 lanes per block; offsets and mins fold in
//    exactly through Q8_K's bsums (sums of 16 quants). Per block the int32 lanes become
//    floats and one FMA per lane adds them, times d_w * d_x, into 8 float lanes; mins go
//    into their own lanes; both are summed in a fixed order at the end.
//  - Q2_K, Q3_K, IQ4_XS: the same per (row, token), one accumulator set per dot.
// Each (row, token) sees exactly the same operations whatever the batch, the row range or
// the thread count: batch invariant by construction.
// Why no VNNI outside the Q4_K / Q6_K tiles: a sub-block scale multiplies each 32-element dot, so
// vpdpbusd needs a vpmulld per sub-block after it; for one row that costs as much as
// vpmaddubsw + vpmaddwd, which does the scale in the same two instructions. In the 8-row
// tiles one vpmulld serves 8 rows, so there VNNI pays.
#include <algorithm>
#include <cstring>

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/cpu/matmul_kquant.cc"
// The target list (hwy_targets.h) must come before foreach_target.h.
// clang-format off
#include "kernels/cpu/hwy_targets.h"  // IWYU pragma: keep
#include "hwy/foreach_target.h"       // IWYU pragma: keep
// clang-format on
#include "hwy/highway.h"
#include "kernels/cpu/cpu.h"
#include "tensor/dtype.h"
#include "tensor/fp16.h"
#include "tensor/quant.h"

// Q4_K's PackedWeight layout (kPackedKQuant8), per group of 8 rows (the last group repeats
// its last row) and 256-element block, kQ4KPk* byte offsets:
//   kQ4KPkD, kQ4KPkDmin: the 8 rows' f16 d and dmin (16 bytes each);
//   kQ4KPkSc: byte 8j + r = row r's 6-bit scale of sub-block j (tensor::GetScaleMinK4);
//   kQ4KPkMn: byte 16i + 2r + p = row r's 6-bit min of sub-block 2i + p (zero-extended to
//     int16, int32 lane r pairs the mins of sub-blocks 2i and 2i + 1);
//   kQ4KPkQs: for chunk c = 0..3 and k = 0..7 a 32-byte vector whose 4-byte lane r holds row
//     r's qs bytes 32c + 4k .. 32c + 4k + 3 (low nibbles: elements 64c + 4k..; high
//     nibbles: elements 64c + 32 + 4k..).
#ifndef POCKET_MATMUL_KQUANT_LAYOUT_
#define POCKET_MATMUL_KQUANT_LAYOUT_
namespace pocket::kernels::cpu::kquant {
constexpr size_t kQ4KPkD = 0, kQ4KPkDmin = 16, kQ4KPkSc = 32, kQ4KPkMn = 96, kQ4KPkQs = 160;
constexpr size_t kQ4KPkBytes = kQ4KPkQs + 8 * 128;

// Block b of 8 rows (row[r]: row r's GGUF bytes) in the packed layout, at out.
inline void PackQ4KBlock(const uint8_t* const* row, size_t b, uint8_t* out) {
  for (size_t r = 0; r < 8; ++r) {
    const auto* blk = reinterpret_cast<const tensor::BlockQ4_K*>(row[r]) + b;
    std::memcpy(out + kQ4KPkD + 2 * r, &blk->d, 2);
    std::memcpy(out + kQ4KPkDmin + 2 * r, &blk->dmin, 2);
    for (int j = 0; j < 8; ++j) {
      uint8_t sc, m;
      tensor::GetScaleMinK4(j, blk->scales, &sc, &m);
      out[kQ4KPkSc + 8 * j + r] = sc;
      out[kQ4KPkMn + 16 * (j / 2) + 2 * r + j % 2] = m;
    }
    for (size_t c = 0; c < 4; ++c) {
      for (size_t k = 0; k < 8; ++k) {
        std::memcpy(out + kQ4KPkQs + 256 * c + 32 * k + 4 * r, blk->qs + 32 * c + 4 * k, 4);
      }
    }
  }
}

// Q6_K's PackedWeight layout (kPackedKQuant8), per group of 8 rows and 256-element block:
//   kQ6KPkD: the 8 rows' f16 d (16 bytes);
//   kQ6KPkSc: byte 8j + r = row r's int8 scale of sub-block j (16 elements), j = 0..15;
//   kQ6KPkQl: for half h = 0..1, part p = 0..1 and k = 0..7 a 32-byte vector at
//     512h + 256p + 32k whose 4-byte lane r holds row r's ql bytes 64h + 32p + 4k..+3;
//   kQ6KPkQh: for half h and k = 0..7 a 32-byte vector at 256h + 32k whose lane r holds row
//     r's qh bytes 32h + 4k..+3.
// Lane r of (ql part p, qh) gives row r's elements 128h + 32p + 4k.. (low nibble, qh bits
// 2p, 2p + 1) and 128h + 64 + 32p + 4k.. (high nibble, qh bits 2p + 4, 2p + 5).
constexpr size_t kQ6KPkD = 0, kQ6KPkSc = 16, kQ6KPkQl = 144, kQ6KPkQh = kQ6KPkQl + 8 * 128;
constexpr size_t kQ6KPkBytes = kQ6KPkQh + 8 * 64;

inline void PackQ6KBlock(const uint8_t* const* row, size_t b, uint8_t* out) {
  for (size_t r = 0; r < 8; ++r) {
    const auto* blk = reinterpret_cast<const tensor::BlockQ6_K*>(row[r]) + b;
    std::memcpy(out + kQ6KPkD + 2 * r, &blk->d, 2);
    for (size_t j = 0; j < 16; ++j) {
      out[kQ6KPkSc + 8 * j + r] = static_cast<uint8_t>(blk->scales[j]);
    }
    for (size_t h = 0; h < 2; ++h) {
      for (size_t k = 0; k < 8; ++k) {
        for (size_t part = 0; part < 2; ++part) {
          std::memcpy(out + kQ6KPkQl + 512 * h + 256 * part + 32 * k + 4 * r,
                      blk->ql + 64 * h + 32 * part + 4 * k, 4);
        }
        std::memcpy(out + kQ6KPkQh + 256 * h + 32 * k + 4 * r, blk->qh + 32 * h + 4 * k, 4);
      }
    }
  }
}
}  // namespace pocket::kernels::cpu::kquant
#endif  // POCKET_MATMUL_KQUANT_LAYOUT_

HWY_BEFORE_NAMESPACE();
namespace pocket::kernels::cpu {
namespace HWY_NAMESPACE {
using tensor::BlockQ8_K;
using tensor::DType;

#undef PK_X86_KQUANT
#if HWY_TARGET == HWY_AVX2 || HWY_TARGET == HWY_AVX3
#define PK_X86_KQUANT 1
#else
#define PK_X86_KQUANT 0
#endif

using DotFn = float (*)(const uint8_t* wrow, const BlockQ8_K* x, size_t nb);

// ---------------------------------------------------------------------------------------
// Portable per-(row, token) dot products.

// Q4_K and Q6_K: unchanged from the original kernels (same bits on non-x86 targets).
float DotQ4K(const uint8_t* wrow, const BlockQ8_K* x, size_t nb) {
  float acc = 0.0f;
  uint8_t q[256];
  for (size_t b = 0; b < nb; ++b) {
    const auto* blk = reinterpret_cast<const tensor::BlockQ4_K*>(wrow) + b;
    for (size_t c = 0; c < 4; ++c) {
      for (size_t l = 0; l < 32; ++l) {
        q[64 * c + l] = blk->qs[32 * c + l] & 0x0F;
        q[64 * c + 32 + l] = blk->qs[32 * c + l] >> 4;
      }
    }
    int32_t sumi = 0, summ = 0;
    for (int j = 0; j < 8; ++j) {
      uint8_t sc, m;
      tensor::GetScaleMinK4(j, blk->scales, &sc, &m);
      int32_t s = 0;
      for (size_t i = 0; i < 32; ++i) s += int32_t{q[32 * j + i]} * x[b].qs[32 * j + i];
      sumi += int32_t{sc} * s;
      summ += int32_t{m} * (x[b].bsums[2 * j] + x[b].bsums[2 * j + 1]);
    }
    const float d = tensor::F16ToF32(blk->d), dmin = tensor::F16ToF32(blk->dmin);
    acc += x[b].d * (d * static_cast<float>(sumi) - dmin * static_cast<float>(summ));
  }
  return acc;
}

float DotQ6K(const uint8_t* wrow, const BlockQ8_K* x, size_t nb) {
  float acc = 0.0f;
  int8_t q[256];
  for (size_t b = 0; b < nb; ++b) {
    const auto* blk = reinterpret_cast<const tensor::BlockQ6_K*>(wrow) + b;
    for (size_t half = 0; half < 2; ++half) {
      const uint8_t* ql = blk->ql + 64 * half;
      const uint8_t* qh = blk->qh + 32 * half;
      int8_t* o = q + 128 * half;
      for (size_t l = 0; l < 32; ++l) {
        o[l] = static_cast<int8_t>(((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32);
        o[l + 32] = static_cast<int8_t>(((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32);
        o[l + 64] = static_cast<int8_t>(((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32);
        o[l + 96] = static_cast<int8_t>(((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32);
      }
    }
    int32_t sumi = 0;
    for (size_t j = 0; j < 16; ++j) {
      int32_t s = 0;
      for (size_t i = 0; i < 16; ++i) s += int32_t{q[16 * j + i]} * x[b].qs[16 * j + i];
      sumi += int32_t{blk->scales[j]} * s;
    }
    acc += x[b].d * (tensor::F16ToF32(blk->d) * static_cast<float>(sumi));
  }
  return acc;
}

// One block of Q2_K / Q3_K / Q5_K / IQ4_XS decoded for the portable dot: x_i = d *
// scale[i / 16] * q[i] - dmin * (min term folded into summ).
struct DecodedBlock {
  int8_t q[256];
  int16_t scale[16];  // per 16 elements
  int16_t min[16];    // per 16 elements (0 where the type has no mins)
  float d = 0.0f, dmin = 0.0f;
};

void DecodeQ2K(const uint8_t* p, DecodedBlock& o) {
  const auto& b = *reinterpret_cast<const tensor::BlockQ2_K*>(p);
  for (int half = 0; half < 2; ++half) {
    for (int j = 0; j < 4; ++j) {
      for (int l = 0; l < 32; ++l) {
        o.q[128 * half + 32 * j + l] = static_cast<int8_t>((b.qs[32 * half + l] >> (2 * j)) & 3);
      }
    }
  }
  for (int g = 0; g < 16; ++g) {
    o.scale[g] = b.scales[g] & 0xF;
    o.min[g] = b.scales[g] >> 4;
  }
  o.d = tensor::F16ToF32(b.d);
  o.dmin = tensor::F16ToF32(b.dmin);
}

void DecodeQ3K(const uint8_t* p, DecodedBlock& o) {
  const auto& b = *reinterpret_cast<const tensor::BlockQ3_K*>(p);
  for (int half = 0; half < 2; ++half) {
    for (int j = 0; j < 4; ++j) {
      const int bit = 4 * half + j;
      for (int l = 0; l < 32; ++l) {
        const int low = (b.qs[32 * half + l] >> (2 * j)) & 3;
        const int high = (b.hmask[l] >> bit) & 1;
        o.q[128 * half + 32 * j + l] = static_cast<int8_t>(low - (high ? 0 : 4));
      }
    }
  }
  int8_t s[16];
  tensor::Q3KScales(b.scales, s);
  for (int g = 0; g < 16; ++g) {
    o.scale[g] = s[g];
    o.min[g] = 0;
  }
  o.d = tensor::F16ToF32(b.d);
  o.dmin = 0.0f;
}

void DecodeQ5K(const uint8_t* p, DecodedBlock& o) {
  const auto& b = *reinterpret_cast<const tensor::BlockQ5_K*>(p);
  for (int c = 0; c < 4; ++c) {
    for (int l = 0; l < 32; ++l) {
      const uint8_t q = b.qs[32 * c + l], h = b.qh[l];
      o.q[64 * c + l] = static_cast<int8_t>((q & 0xF) | (((h >> (2 * c)) & 1) << 4));
      o.q[64 * c + 32 + l] = static_cast<int8_t>((q >> 4) | (((h >> (2 * c + 1)) & 1) << 4));
    }
  }
  for (int j = 0; j < 8; ++j) {
    uint8_t sc, m;
    tensor::GetScaleMinK4(j, b.scales, &sc, &m);
    o.scale[2 * j] = o.scale[2 * j + 1] = sc;
    o.min[2 * j] = o.min[2 * j + 1] = m;
  }
  o.d = tensor::F16ToF32(b.d);
  o.dmin = tensor::F16ToF32(b.dmin);
}

void DecodeIQ4XS(const uint8_t* p, DecodedBlock& o) {
  const auto& b = *reinterpret_cast<const tensor::BlockIQ4_XS*>(p);
  for (int ib = 0; ib < 8; ++ib) {
    for (int j = 0; j < 16; ++j) {
      o.q[32 * ib + j] = tensor::kIQ4NLValues[b.qs[16 * ib + j] & 0xF];
      o.q[32 * ib + 16 + j] = tensor::kIQ4NLValues[b.qs[16 * ib + j] >> 4];
    }
    o.scale[2 * ib] = o.scale[2 * ib + 1] = static_cast<int16_t>(tensor::IQ4XSScale(b, ib));
  }
  for (int g = 0; g < 16; ++g) o.min[g] = 0;
  o.d = tensor::F16ToF32(b.d);
  o.dmin = 0.0f;
}

template <void (*kDecode)(const uint8_t*, DecodedBlock&), size_t kBlockBytes>
float DotDecoded(const uint8_t* wrow, const BlockQ8_K* x, size_t nb) {
  float acc = 0.0f;
  DecodedBlock blk;
  for (size_t b = 0; b < nb; ++b) {
    kDecode(wrow + b * kBlockBytes, blk);
    int32_t sumi = 0, summ = 0;
    for (int g = 0; g < 16; ++g) {
      int32_t s = 0;
      for (int i = 0; i < 16; ++i) s += int32_t{blk.q[16 * g + i]} * x[b].qs[16 * g + i];
      sumi += int32_t{blk.scale[g]} * s;
      summ += int32_t{blk.min[g]} * x[b].bsums[g];
    }
    acc += x[b].d * (blk.d * static_cast<float>(sumi) - blk.dmin * static_cast<float>(summ));
  }
  return acc;
}

DotFn PortableDot(DType dtype) {
  switch (dtype) {
    case DType::kQ2_K:
      return DotDecoded<DecodeQ2K, sizeof(tensor::BlockQ2_K)>;
    case DType::kQ3_K:
      return DotDecoded<DecodeQ3K, sizeof(tensor::BlockQ3_K)>;
    case DType::kQ4_K:
      return DotQ4K;
    case DType::kQ5_K:
      return DotDecoded<DecodeQ5K, sizeof(tensor::BlockQ5_K)>;
    case DType::kQ6_K:
      return DotQ6K;
    case DType::kIQ4_XS:
      return DotDecoded<DecodeIQ4XS, sizeof(tensor::BlockIQ4_XS)>;
    default:
      return nullptr;
  }
}

// ---------------------------------------------------------------------------------------
// x86.

#if PK_X86_KQUANT

HWY_INLINE float HorizontalSum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// F16C conversion (exact, as tensor::F16ToF32, without the call).
HWY_INLINE float HalfToFloat(uint16_t bits) { return _cvtsh_ss(bits); }

HWY_INLINE __m256i Load256(const void* p) {
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
}

// Low 128-bit lane: scale[g] in every int16; high lane: scale[g + 1]. `s16` holds int16
// scales; one dword broadcast (a pure load) and one byte shuffle.
HWY_INLINE __m256i ScalePair(const int16_t* s16, int g) {
  int32_t pair;
  std::memcpy(&pair, s16 + g, 4);
  const __m256i pick = _mm256_setr_epi8(0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1,  //
                                        2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3);
  return _mm256_shuffle_epi8(_mm256_set1_epi32(pair), pick);
}

// Bit `from` of each byte of `v` (only that bit may be set) moved to bit `to`.
HWY_INLINE __m256i MoveBit(__m256i v, int from, int to) {
  if (from > to) return _mm256_srli_epi16(v, from - to);
  if (from < to) return _mm256_slli_epi16(v, to - from);
  return v;
}

// Per-row accumulators of the Q4_K/Q5_K/Q6_K dots: `s` the scale terms, `m` the min
// terms (zero where the type has none); the row's result is sum(s) - sum(m), summed in a
// fixed order.
struct KAcc {
  __m256 s;
  __m256 m;
};

// Q8_K's 16 bsums summed in pairs (the 32-element sub-block sums of Q4_K/Q5_K), shared by
// every row of a token's block.
HWY_INLINE __m128i PairSums(const BlockQ8_K& xb) {
  const __m256i bsums = Load256(xb.bsums);
  return _mm_hadd_epi16(_mm256_castsi256_si128(bsums), _mm256_extracti128_si256(bsums, 1));
}

// One Q4_K / Q5_K block (they share everything but the fifth bit). Scales and mins are
// unpacked in registers (tensor::GetScaleMinK4's values, ggml's kmask steps); each
// sub-block's scale is broadcast with a byte shuffle. The 8 mins times the pair sums of
// bsums (vpmaddwd, exact) go into the `m` lanes.
// BlockQ45KInts: the exact integer parts, lanes of `sumi` summing to sum_j scale_j * dot_j
// and lanes of `prod_m` to sum_j min_j * pairsum_j; d and dmin's f16 bits.
template <bool kQ5>
HWY_INLINE void BlockQ45KInts(const uint8_t* p, const BlockQ8_K& xb, __m128i pair_sums,
                              __m256i& sumi, __m128i& prod_m, uint16_t& d_bits,
                              uint16_t& dmin_bits) {
  constexpr uint32_t kMask1 = 0x3f3f3f3f, kMask2 = 0x0f0f0f0f, kMask3 = 0x03030303;
  std::memcpy(&d_bits, p, 2);
  std::memcpy(&dmin_bits, p + 2, 2);
  uint32_t u[3];
  std::memcpy(u, p + 4, 12);
  const uint32_t s03 = u[0] & kMask1;
  const uint32_t s47 = (u[2] & kMask2) | (((u[0] >> 6) & kMask3) << 4);
  const uint32_t m03 = u[1] & kMask1;
  const uint32_t m47 = ((u[2] >> 4) & kMask2) | (((u[1] >> 6) & kMask3) << 4);
  const __m256i sm16 = _mm256_cvtepu8_epi16(_mm_setr_epi32(
      static_cast<int>(s03), static_cast<int>(s47), static_cast<int>(m03), static_cast<int>(m47)));
  const __m256i scales = _mm256_broadcastsi128_si256(_mm256_castsi256_si128(sm16));
  prod_m = _mm_madd_epi16(_mm256_extracti128_si256(sm16, 1), pair_sums);
  const uint8_t* qs = p + 16;  // Q4_K: d, dmin, scales[12], qs; Q5_K: ..., qh[32], qs
  __m256i hbits = _mm256_setzero_si256();
  if constexpr (kQ5) {
    hbits = Load256(p + 16);
    qs = p + 48;
  }
  const __m256i m4 = _mm256_set1_epi8(0x0F);
  sumi = _mm256_setzero_si256();
  for (int c = 0; c < 4; ++c) {
    const __m256i q = Load256(qs + 32 * c);
    __m256i lo = _mm256_and_si256(q, m4);
    __m256i hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
    if constexpr (kQ5) {
      const __m256i blo =
          _mm256_and_si256(hbits, _mm256_set1_epi8(static_cast<char>(1 << (2 * c))));
      const __m256i bhi =
          _mm256_and_si256(hbits, _mm256_set1_epi8(static_cast<char>(1 << (2 * c + 1))));
      lo = _mm256_or_si256(lo, MoveBit(blo, 2 * c, 4));
      hi = _mm256_or_si256(hi, MoveBit(bhi, 2 * c + 1, 4));
    }
    // Scale of sub-block j in every int16: bytes 2j, 2j + 1 of `scales`, repeated.
    const __m256i sc_lo =
        _mm256_shuffle_epi8(scales, _mm256_set1_epi16(((4 * c + 1) << 8) | (4 * c)));
    const __m256i sc_hi =
        _mm256_shuffle_epi8(scales, _mm256_set1_epi16(((4 * c + 3) << 8) | (4 * c + 2)));
    const __m256i plo = _mm256_maddubs_epi16(lo, Load256(xb.qs + 64 * c));
    const __m256i phi = _mm256_maddubs_epi16(hi, Load256(xb.qs + 64 * c + 32));
    sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(plo, sc_lo));
    sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(phi, sc_hi));
  }
}

template <bool kQ5>
HWY_INLINE void BlockQ45K(const uint8_t* p, const BlockQ8_K& xb, __m128i pair_sums, KAcc& a) {
  __m256i sumi;
  __m128i prod_m;
  uint16_t d_bits, dmin_bits;
  BlockQ45KInts<kQ5>(p, xb, pair_sums, sumi, prod_m, d_bits, dmin_bits);
  const float d = xb.d * HalfToFloat(d_bits);
  const float dmin = xb.d * HalfToFloat(dmin_bits);
  a.s = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sumi), _mm256_set1_ps(d), a.s);
  a.m = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_zextsi128_si256(prod_m)), _mm256_set1_ps(dmin),
                        a.m);
}

// One Q6_K block: 6-bit values 0..63 (unsigned) x Q8_K; the -32 offset is
// 32 * sum(scale * bsum), subtracted in the int32 lanes (exact).
// BlockQ6KInts: the exact integer part, lanes of `sumi` summing to the block's
// sum_j scale_j * dot((q - 32), x)_j.
HWY_INLINE __m256i BlockQ6KInts(const tensor::BlockQ6_K* blk, const BlockQ8_K& xb) {
  const __m256i m4 = _mm256_set1_epi8(0x0F), m2 = _mm256_set1_epi8(0x03);
  const __m256i sc16 =
      _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk->scales)));
  alignas(32) int16_t sc[16];
  _mm256_store_si256(reinterpret_cast<__m256i*>(sc), sc16);
  __m256i sumi = _mm256_slli_epi32(_mm256_madd_epi16(sc16, Load256(xb.bsums)), 5);
  sumi = _mm256_sub_epi32(_mm256_setzero_si256(), sumi);
  for (int half = 0; half < 2; ++half) {
    const uint8_t* ql = blk->ql + 64 * half;
    const __m256i l0 = Load256(ql);
    const __m256i l1 = Load256(ql + 32);
    const __m256i h = Load256(blk->qh + 32 * half);
    __m256i q[4];
    q[0] = _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_slli_epi16(_mm256_and_si256(h, m2), 4));
    q[1] = _mm256_or_si256(_mm256_and_si256(l1, m4),
                           _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 2), m2), 4));
    q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4),
                           _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 4), m2), 4));
    q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                           _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 6), m2), 4));
    for (int k = 0; k < 4; ++k) {
      const __m256i pr = _mm256_maddubs_epi16(q[k], Load256(xb.qs + 128 * half + 32 * k));
      sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(pr, ScalePair(sc, 8 * half + 2 * k)));
    }
  }
  return sumi;
}

// One row against one token. (Several rows per pass over the token's blocks, sharing the
// pair sums and activation loads, measured 2-6x slower here: 2 or 4 rows of inlined
// blocks; not kept.)
template <void (*kBlock)(const uint8_t*, const BlockQ8_K&, __m128i, KAcc&), size_t kBlockBytes,
          bool kPairs>
HWY_INLINE float DotRowX86(const uint8_t* w, const BlockQ8_K* x, size_t nb) {
  KAcc acc;
  acc.s = acc.m = _mm256_setzero_ps();
  for (size_t b = 0; b < nb; ++b) {
    const __m128i pairs = kPairs ? PairSums(x[b]) : _mm_setzero_si128();
    kBlock(w + b * kBlockBytes, x[b], pairs, acc);
  }
  return HorizontalSum(acc.s) - HorizontalSum(acc.m);
}

// Rows [r0, r1) x every token.
template <void (*kBlock)(const uint8_t*, const BlockQ8_K&, __m128i, KAcc&), size_t kBlockBytes,
          bool kPairs>
void MatMulRowsX86(const uint8_t* wbase, size_t w_stride, const Activations& act, size_t rows,
                   size_t r0, size_t r1, float* y) {
  const size_t nb = act.cols / tensor::kQKK;
  for (size_t r = r0; r < r1; ++r) {
    for (size_t t = 0; t < act.num_tokens; ++t) {
      const auto* x = reinterpret_cast<const BlockQ8_K*>(act.q8 + t * act.stride_bytes);
      y[t * rows + r] = DotRowX86<kBlock, kBlockBytes, kPairs>(wbase + r * w_stride, x, nb);
    }
  }
}

HWY_INLINE int32_t HorizontalSumI32(__m128i v) {
  v = _mm_add_epi32(v, _mm_shuffle_epi32(v, 0x4E));
  v = _mm_add_epi32(v, _mm_shuffle_epi32(v, 0xB1));
  return _mm_cvtsi128_si32(v);
}

// Q4_K on the plain rows (no PackedWeight), one row against one token: the integer parts of
// BlockQ45K summed exactly, then per block the Q4_K tile's float steps for one lane
// (Q4KTileBlocks below: acc = fma(float(sumi), d * dx, acc), accm likewise with dmin and the
// mins; acc - accm), so repacked and plain give the same bits.
float DotQ4KPlainX86(const uint8_t* w, const BlockQ8_K* x, size_t nb) {
  __m128 acc = _mm_setzero_ps(), accm = _mm_setzero_ps();
  for (size_t b = 0; b < nb; ++b) {
    __m256i sumi;
    __m128i prod_m;
    uint16_t d_bits, dmin_bits;
    BlockQ45KInts<false>(w + b * sizeof(tensor::BlockQ4_K), x[b], PairSums(x[b]), sumi, prod_m,
                         d_bits, dmin_bits);
    const int32_t si = HorizontalSumI32(
        _mm_add_epi32(_mm256_castsi256_si128(sumi), _mm256_extracti128_si256(sumi, 1)));
    const int32_t sm = HorizontalSumI32(prod_m);
    const __m128 dx = _mm_set_ss(x[b].d);
    acc = _mm_fmadd_ss(_mm_cvtsi32_ss(_mm_setzero_ps(), si),
                       _mm_mul_ss(_mm_set_ss(HalfToFloat(d_bits)), dx), acc);
    accm = _mm_fmadd_ss(_mm_cvtsi32_ss(_mm_setzero_ps(), sm),
                        _mm_mul_ss(_mm_set_ss(HalfToFloat(dmin_bits)), dx), accm);
  }
  return _mm_cvtss_f32(_mm_sub_ss(acc, accm));
}

// ---- Q4_K: 8-row tiles over the packed layout (kquant::kQ4KPk*). ----

using kquant::kQ4KPkBytes;
using kquant::kQ4KPkD;
using kquant::kQ4KPkDmin;
using kquant::kQ4KPkMn;
using kquant::kQ4KPkQs;
using kquant::kQ4KPkSc;

#if HWY_TARGET == HWY_AVX3
HWY_INLINE bool HasVnniK() {
  static const bool vnni = __builtin_cpu_supports("avx512vnni");
  return vnni;
}
#endif

// Prefetch distances as matmul.cc measured for Q4_0's packed tiles: 8 KiB ahead into L2
// when the weights stay in the last-level cache, 2 KiB into L1 when they stream from DRAM.
constexpr size_t kQ4KPrefetchCache = 8192, kQ4KPrefetchMemory = 2048;
// Tokens per tile (any value gives the same bits): what fits the register file.
constexpr int kQ4KRn = HWY_TARGET == HWY_AVX3 ? 4 : 2;

// acc + per 32-bit lane the sum of four unsigned-code x int8 products (vpdpbusd by inline
// asm: Highway's AVX3 target does not enable the VNNI intrinsics; the caller checks the
// CPU at run time).
HWY_INLINE __m256i DpBusd(__m256i acc, __m256i u, __m256i x) {
#if HWY_TARGET == HWY_AVX3
  asm("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(u), "v"(x));
  return acc;
#else
  return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(u, x), _mm256_set1_epi16(1)));
#endif
}

// Blocks [b0, b1) of one 8-row group, packed at pk (block b at pk + (b - b0) * kQ4KPkBytes),
// accumulated into acc[t] / accm[t] (lane r: row r) for the RN tokens x[t].
template <int RN, bool kVnni, bool kFromMemory>
HWY_INLINE void Q4KTileBlocks(const uint8_t* pk, size_t b0, size_t b1, const BlockQ8_K* const* x,
                              __m256* acc, __m256* accm) {
  const __m256i m4 = _mm256_set1_epi8(0x0F);
  for (size_t b = b0; b < b1; ++b) {
    const uint8_t* blk = pk + (b - b0) * kQ4KPkBytes;
    for (size_t line = 0; line < kQ4KPkBytes; line += 64) {
      if constexpr (kFromMemory) {
        _mm_prefetch(reinterpret_cast<const char*>(blk) + kQ4KPrefetchMemory + line, _MM_HINT_T0);
      } else {
        _mm_prefetch(reinterpret_cast<const char*>(blk) + kQ4KPrefetchCache + line, _MM_HINT_T1);
      }
    }
    // Mins: summ lane r = sum_j min[r][j] * (bsums[2j] + bsums[2j + 1]), exact.
    __m256i mn[4];
    for (int i = 0; i < 4; ++i) {
      mn[i] = _mm256_cvtepu8_epi16(
          _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + kQ4KPkMn + 16 * i)));
    }
    __m256i summ[RN], sumi[RN];
    for (int t = 0; t < RN; ++t) {
      const __m256i ps = _mm256_broadcastsi128_si256(PairSums(x[t][b]));
      __m256i m = _mm256_madd_epi16(mn[0], _mm256_shuffle_epi32(ps, 0x00));
      m = _mm256_add_epi32(m, _mm256_madd_epi16(mn[1], _mm256_shuffle_epi32(ps, 0x55)));
      m = _mm256_add_epi32(m, _mm256_madd_epi16(mn[2], _mm256_shuffle_epi32(ps, 0xAA)));
      summ[t] = _mm256_add_epi32(m, _mm256_madd_epi16(mn[3], _mm256_shuffle_epi32(ps, 0xFF)));
      sumi[t] = _mm256_setzero_si256();
    }
    for (int c = 0; c < 4; ++c) {
      // Lane r: row r's scale of sub-block 2c (lo, the low nibbles) and 2c + 1 (hi).
      const __m256i sc_lo = _mm256_cvtepu8_epi32(
          _mm_loadl_epi64(reinterpret_cast<const __m128i*>(blk + kQ4KPkSc + 16 * c)));
      const __m256i sc_hi = _mm256_cvtepu8_epi32(
          _mm_loadl_epi64(reinterpret_cast<const __m128i*>(blk + kQ4KPkSc + 16 * c + 8)));
      // The same in both int16 halves of lane r (vpmaddwd's operand).
      const __m256i sc16_lo = _mm256_or_si256(sc_lo, _mm256_slli_epi32(sc_lo, 16));
      const __m256i sc16_hi = _mm256_or_si256(sc_hi, _mm256_slli_epi32(sc_hi, 16));
      __m256i dlo[RN], dhi[RN];
      for (int t = 0; t < RN; ++t) dlo[t] = dhi[t] = _mm256_setzero_si256();
      for (int k = 0; k < 8; ++k) {
        const __m256i v = Load256(blk + kQ4KPkQs + 256 * c + 32 * k);
        const __m256i lo = _mm256_and_si256(v, m4);
        const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
        for (int t = 0; t < RN; ++t) {
          const int8_t* xq = x[t][b].qs + 64 * c + 4 * k;
          int32_t xl, xh;
          std::memcpy(&xl, xq, 4);
          std::memcpy(&xh, xq + 32, 4);
          if constexpr (kVnni) {
            // At most 32 * 15 * 128 per lane: exact in int32.
            dlo[t] = DpBusd(dlo[t], lo, _mm256_set1_epi32(xl));
            dhi[t] = DpBusd(dhi[t], hi, _mm256_set1_epi32(xh));
          } else {
            // vpmaddubsw pairs are at most 2 * 15 * 128: no saturation.
            const __m256i plo = _mm256_maddubs_epi16(lo, _mm256_set1_epi32(xl));
            const __m256i phi = _mm256_maddubs_epi16(hi, _mm256_set1_epi32(xh));
            sumi[t] = _mm256_add_epi32(sumi[t], _mm256_madd_epi16(plo, sc16_lo));
            sumi[t] = _mm256_add_epi32(sumi[t], _mm256_madd_epi16(phi, sc16_hi));
          }
        }
      }
      if constexpr (kVnni) {
        for (int t = 0; t < RN; ++t) {
          sumi[t] = _mm256_add_epi32(sumi[t], _mm256_mullo_epi32(dlo[t], sc_lo));
          sumi[t] = _mm256_add_epi32(sumi[t], _mm256_mullo_epi32(dhi[t], sc_hi));
        }
      }
    }
    const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk)));
    const __m256 mw =
        _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + kQ4KPkDmin)));
    for (int t = 0; t < RN; ++t) {
      const __m256 dx = _mm256_set1_ps(x[t][b].d);
      acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sumi[t]), _mm256_mul_ps(dw, dx), acc[t]);
      accm[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(summ[t]), _mm256_mul_ps(mw, dx), accm[t]);
    }
  }
}

template <int RN>
HWY_INLINE void StoreQ4KTile(const __m256* acc, const __m256* accm, size_t valid_rows, float* y,
                             size_t y_stride) {
  for (int t = 0; t < RN; ++t) {
    const __m256 v = _mm256_sub_ps(acc[t], accm[t]);
    if (valid_rows == 8) {
      _mm256_storeu_ps(y + t * y_stride, v);
    } else {
      alignas(32) float tmp[8];
      _mm256_store_ps(tmp, v);
      for (size_t j = 0; j < valid_rows; ++j) y[t * y_stride + j] = tmp[j];
    }
  }
}

// Token t's Q8_K blocks.
HWY_INLINE const BlockQ8_K* ActBlocks(const Activations& act, size_t t) {
  return reinterpret_cast<const BlockQ8_K*>(act.q8 + t * act.stride_bytes);
}

template <bool kVnni, bool kFromMemory>
void Q4KRowsPacked(const uint8_t* packed, size_t rows, const Activations& act, size_t r0, size_t r1,
                   float* y) {
  const size_t nb = act.cols / tensor::kQKK;
  const size_t group_bytes = nb * kQ4KPkBytes;
  const BlockQ8_K* x[kQ4KRn];
  for (size_t r = r0; r < r1; r += 8) {  // r0 is a multiple of 8 (the packed contract)
    const size_t valid = std::min<size_t>(8, r1 - r);
    const uint8_t* pk = packed + r / 8 * group_bytes;
    size_t t = 0;
    for (; t + kQ4KRn <= act.num_tokens; t += kQ4KRn) {
      for (int i = 0; i < kQ4KRn; ++i) x[i] = ActBlocks(act, t + i);
      __m256 acc[kQ4KRn], accm[kQ4KRn];
      for (int i = 0; i < kQ4KRn; ++i) acc[i] = accm[i] = _mm256_setzero_ps();
      Q4KTileBlocks<kQ4KRn, kVnni, kFromMemory>(pk, 0, nb, x, acc, accm);
      StoreQ4KTile<kQ4KRn>(acc, accm, valid, y + t * rows + r, rows);
    }
    for (; t < act.num_tokens; ++t) {
      x[0] = ActBlocks(act, t);
      __m256 acc = _mm256_setzero_ps(), accm = _mm256_setzero_ps();
      Q4KTileBlocks<1, kVnni, kFromMemory>(pk, 0, nb, x, &acc, &accm);
      StoreQ4KTile<1>(&acc, &accm, valid, y + t * rows + r, rows);
    }
  }
}

// ---- Q6_K: 8-row tiles over the packed layout (kquant::kQ6KPk*), as Q4_K's. ----
//
// The 6-bit codes q (0..63, unsigned) against x; the -32 offset folds in exactly as
// -32 * sum_j scale_j * bsum_j (lane r: row r's scales), subtracted first. With VNNI each
// 16-element sub-block's dot is 4 vpdpbusd per row (at most 16 * 63 * 128 per lane), then
// one vpmulld by the 8 rows' signed scales; without, vpmaddubsw (pairs at most 2 * 63 * 128)
// and a vpmaddwd by the scales. Per block and row one float step, acc = fma(float(sumi),
// d * dx, acc): the same integers and float steps as DotQ6KPlainX86.

using kquant::kQ6KPkBytes;
using kquant::kQ6KPkQh;
using kquant::kQ6KPkQl;
using kquant::kQ6KPkSc;

// Q6_K on the plain rows: BlockQ6KInts summed exactly, then the tile's float step.
float DotQ6KPlainX86(const uint8_t* w, const BlockQ8_K* x, size_t nb) {
  __m128 acc = _mm_setzero_ps();
  for (size_t b = 0; b < nb; ++b) {
    const auto* blk = reinterpret_cast<const tensor::BlockQ6_K*>(w) + b;
    const __m256i sumi = BlockQ6KInts(blk, x[b]);
    const int32_t si = HorizontalSumI32(
        _mm_add_epi32(_mm256_castsi256_si128(sumi), _mm256_extracti128_si256(sumi, 1)));
    acc = _mm_fmadd_ss(_mm_cvtsi32_ss(_mm_setzero_ps(), si),
                       _mm_mul_ss(_mm_set_ss(HalfToFloat(blk->d)), _mm_set_ss(x[b].d)), acc);
  }
  return _mm_cvtss_f32(acc);
}

// Lane r: row r's scale of sub-block j, sign-extended.
HWY_INLINE __m256i Q6KScale(const uint8_t* blk, int j) {
  return _mm256_cvtepi8_epi32(
      _mm_loadl_epi64(reinterpret_cast<const __m128i*>(blk + kQ6KPkSc + 8 * j)));
}

template <int RN, bool kVnni, bool kFromMemory>
HWY_INLINE void Q6KTileBlocks(const uint8_t* pk, size_t nb, const BlockQ8_K* const* x,
                              __m256* acc) {
  const __m256i m4 = _mm256_set1_epi8(0x0F), m3 = _mm256_set1_epi8(0x03);
  for (size_t b = 0; b < nb; ++b) {
    const uint8_t* blk = pk + b * kQ6KPkBytes;
    for (size_t line = 0; line < kQ6KPkBytes; line += 64) {
      if constexpr (kFromMemory) {
        _mm_prefetch(reinterpret_cast<const char*>(blk) + kQ4KPrefetchMemory + line, _MM_HINT_T0);
      } else {
        _mm_prefetch(reinterpret_cast<const char*>(blk) + kQ4KPrefetchCache + line, _MM_HINT_T1);
      }
    }
    __m256i sumi[RN];
    for (int t = 0; t < RN; ++t) sumi[t] = _mm256_setzero_si256();
    // The offset: sumi = -32 * sum_j scale_j * bsum_j.
    for (int j = 0; j < 16; ++j) {
      const __m256i sc = Q6KScale(blk, j);
      for (int t = 0; t < RN; ++t) {
        sumi[t] = _mm256_sub_epi32(
            sumi[t], _mm256_mullo_epi32(sc, _mm256_set1_epi32(32 * int32_t{x[t][b].bsums[j]})));
      }
    }
    for (int h = 0; h < 2; ++h) {
      for (int kk = 0; kk < 2; ++kk) {
        // Sub-blocks 8h + 2i + kk for code vector i = 0..3 (elements 128h + 32i + 16kk..).
        __m256i sc[4], sc16[4];
        for (int i = 0; i < 4; ++i) {
          sc[i] = Q6KScale(blk, 8 * h + 2 * i + kk);
          sc16[i] = _mm256_or_si256(_mm256_and_si256(sc[i], _mm256_set1_epi32(0xFFFF)),
                                    _mm256_slli_epi32(sc[i], 16));
        }
        __m256i d[RN][4];
        if constexpr (kVnni) {
          for (int t = 0; t < RN; ++t) {
            for (int i = 0; i < 4; ++i) d[t][i] = _mm256_setzero_si256();
          }
        }
        for (int k = 4 * kk; k < 4 * kk + 4; ++k) {
          const __m256i a = Load256(blk + kQ6KPkQl + 512 * h + 32 * k);
          const __m256i bq = Load256(blk + kQ6KPkQl + 512 * h + 256 + 32 * k);
          const __m256i hb = Load256(blk + kQ6KPkQh + 256 * h + 32 * k);
          __m256i q[4];
          q[0] = _mm256_or_si256(_mm256_and_si256(a, m4),
                                 _mm256_slli_epi16(_mm256_and_si256(hb, m3), 4));
          q[1] =
              _mm256_or_si256(_mm256_and_si256(bq, m4),
                              _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 2), m3), 4));
          q[2] =
              _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(a, 4), m4),
                              _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 4), m3), 4));
          q[3] =
              _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(bq, 4), m4),
                              _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 6), m3), 4));
          for (int t = 0; t < RN; ++t) {
            for (int i = 0; i < 4; ++i) {
              int32_t xv;
              std::memcpy(&xv, x[t][b].qs + 128 * h + 32 * i + 4 * k, 4);
              if constexpr (kVnni) {
                d[t][i] = DpBusd(d[t][i], q[i], _mm256_set1_epi32(xv));
              } else {
                const __m256i p = _mm256_maddubs_epi16(q[i], _mm256_set1_epi32(xv));
                sumi[t] = _mm256_add_epi32(sumi[t], _mm256_madd_epi16(p, sc16[i]));
              }
            }
          }
        }
        if constexpr (kVnni) {
          for (int t = 0; t < RN; ++t) {
            for (int i = 0; i < 4; ++i) {
              sumi[t] = _mm256_add_epi32(sumi[t], _mm256_mullo_epi32(d[t][i], sc[i]));
            }
          }
        }
      }
    }
    const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk)));
    for (int t = 0; t < RN; ++t) {
      const __m256 dx = _mm256_set1_ps(x[t][b].d);
      acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sumi[t]), _mm256_mul_ps(dw, dx), acc[t]);
    }
  }
}

template <bool kVnni, bool kFromMemory>
void Q6KRowsPacked(const uint8_t* packed, size_t rows, const Activations& act, size_t r0, size_t r1,
                   float* y) {
  const size_t nb = act.cols / tensor::kQKK;
  const size_t group_bytes = nb * kQ6KPkBytes;
  const BlockQ8_K* x[kQ4KRn];
  __m256 zero[kQ4KRn];
  for (int i = 0; i < kQ4KRn; ++i) zero[i] = _mm256_setzero_ps();
  for (size_t r = r0; r < r1; r += 8) {  // r0 is a multiple of 8 (the packed contract)
    const size_t valid = std::min<size_t>(8, r1 - r);
    const uint8_t* pk = packed + r / 8 * group_bytes;
    size_t t = 0;
    for (; t + kQ4KRn <= act.num_tokens; t += kQ4KRn) {
      for (int i = 0; i < kQ4KRn; ++i) x[i] = ActBlocks(act, t + i);
      __m256 acc[kQ4KRn];
      for (int i = 0; i < kQ4KRn; ++i) acc[i] = _mm256_setzero_ps();
      Q6KTileBlocks<kQ4KRn, kVnni, kFromMemory>(pk, nb, x, acc);
      StoreQ4KTile<kQ4KRn>(acc, zero, valid, y + t * rows + r, rows);
    }
    for (; t < act.num_tokens; ++t) {
      x[0] = ActBlocks(act, t);
      __m256 acc = _mm256_setzero_ps();
      Q6KTileBlocks<1, kVnni, kFromMemory>(pk, nb, x, &acc);
      StoreQ4KTile<1>(&acc, zero, valid, y + t * rows + r, rows);
    }
  }
}

template <bool kVnni>
void TiledRowsX86(const tensor::TensorView& w, const uint8_t* packed, bool from_memory,
                  const Activations& act, size_t r0, size_t r1, float* y) {
  const size_t rows = static_cast<size_t>(w.ne[1]);
  const bool q4 = w.dtype == DType::kQ4_K;
  if (packed != nullptr) {
    if (q4 && from_memory) {
      Q4KRowsPacked<kVnni, true>(packed, rows, act, r0, r1, y);
    } else if (q4) {
      Q4KRowsPacked<kVnni, false>(packed, rows, act, r0, r1, y);
    } else if (from_memory) {
      Q6KRowsPacked<kVnni, true>(packed, rows, act, r0, r1, y);
    } else {
      Q6KRowsPacked<kVnni, false>(packed, rows, act, r0, r1, y);
    }
    return;
  }
  const auto* wbase = static_cast<const uint8_t*>(w.data);
  const size_t w_stride = w.row_bytes(), nb = act.cols / tensor::kQKK;
  const DotFn dot = q4 ? DotQ4KPlainX86 : DotQ6KPlainX86;
  for (size_t r = r0; r < r1; ++r) {
    for (size_t t = 0; t < act.num_tokens; ++t) {
      y[t * rows + r] = dot(wbase + r * w_stride, ActBlocks(act, t), nb);
    }
  }
}

// Q4_K and Q6_K. `packed`: in kPackedKQuant8, or nullptr.
void TiledRows(const tensor::TensorView& w, const uint8_t* packed, bool from_memory,
               const Activations& act, size_t r0, size_t r1, float* y) {
#if HWY_TARGET == HWY_AVX3
  if (HasVnniK()) {
    TiledRowsX86<true>(w, packed, from_memory, act, r0, r1, y);
    return;
  }
#endif
  TiledRowsX86<false>(w, packed, from_memory, act, r0, r1, y);
}

using RowsFn = void (*)(const uint8_t*, size_t, const Activations&, size_t, size_t, size_t, float*);

// Q4_K, Q6_K: TiledRows.
RowsFn FastRows(DType dtype) {
  switch (dtype) {
    case DType::kQ5_K:
      return MatMulRowsX86<BlockQ45K<true>, sizeof(tensor::BlockQ5_K), true>;
    default:
      return nullptr;
  }
}

// tensor::Q3KScales in a register (the same kmask steps, then minus 32 per byte).
HWY_INLINE __m128i Q3KScalesX86(const uint8_t* packed) {
  constexpr uint32_t kMask1 = 0x03030303, kMask2 = 0x0f0f0f0f;
  uint32_t aux[3];
  std::memcpy(aux, packed, 12);
  const uint32_t tmp = aux[2];
  const uint32_t s2 = ((aux[0] >> 4) & kMask2) | (((tmp >> 4) & kMask1) << 4);
  const uint32_t s3 = ((aux[1] >> 4) & kMask2) | (((tmp >> 6) & kMask1) << 4);
  const uint32_t s0 = (aux[0] & kMask2) | (((tmp >> 0) & kMask1) << 4);
  const uint32_t s1 = (aux[1] & kMask2) | (((tmp >> 2) & kMask1) << 4);
  const __m128i v = _mm_setr_epi32(static_cast<int>(s0), static_cast<int>(s1), static_cast<int>(s2),
                                   static_cast<int>(s3));
  return _mm_sub_epi8(v, _mm_set1_epi8(32));
}

// Q3_K: q = low 2 bits | hmask bit << 2 (0..7, unsigned), value = q - 4; the -4 folds in
// as 4 * sum(scale * bsum) in the int32 lanes. Signed scales -32..31 through vpmaddwd.
float DotQ3KX86(const uint8_t* wrow, const BlockQ8_K* x, size_t nb) {
  __m256 acc = _mm256_setzero_ps();
  const __m256i m3 = _mm256_set1_epi8(0x03);
  for (size_t b = 0; b < nb; ++b) {
    const auto* blk = reinterpret_cast<const tensor::BlockQ3_K*>(wrow) + b;
    const __m256i sc16 = _mm256_cvtepi8_epi16(Q3KScalesX86(blk->scales));
    alignas(32) int16_t sc[16];
    _mm256_store_si256(reinterpret_cast<__m256i*>(sc), sc16);
    __m256i sumi = _mm256_slli_epi32(_mm256_madd_epi16(sc16, Load256(x[b].bsums)), 2);
    sumi = _mm256_sub_epi32(_mm256_setzero_si256(), sumi);
    const __m256i hm = Load256(blk->hmask);
    for (int half = 0; half < 2; ++half) {
      const __m256i q = Load256(blk->qs + 32 * half);
      for (int j = 0; j < 4; ++j) {
        const int bit = 4 * half + j;
        const __m256i low = _mm256_and_si256(_mm256_srli_epi16(q, 2 * j), m3);
        const __m256i high =
            MoveBit(_mm256_and_si256(hm, _mm256_set1_epi8(static_cast<char>(1 << bit))), bit, 2);
        const __m256i p = _mm256_maddubs_epi16(_mm256_or_si256(low, high),
                                               Load256(x[b].qs + 128 * half + 32 * j));
        sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p, ScalePair(sc, 8 * half + 2 * j)));
      }
    }
    const float d = x[b].d * HalfToFloat(blk->d);
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sumi), _mm256_set1_ps(d), acc);
  }
  return HorizontalSum(acc);
}

// Q2_K: q 0..3 (unsigned) with 4-bit scales; the 4-bit mins times bsums (vpmaddwd) go
// into their own float lanes, times dmin.
float DotQ2KX86(const uint8_t* wrow, const BlockQ8_K* x, size_t nb) {
  __m256 acc = _mm256_setzero_ps();
  __m256 acc_m = _mm256_setzero_ps();
  const __m256i m3 = _mm256_set1_epi8(0x03);
  const __m128i m4 = _mm_set1_epi8(0x0F);
  for (size_t b = 0; b < nb; ++b) {
    const auto* blk = reinterpret_cast<const tensor::BlockQ2_K*>(wrow) + b;
    const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk->scales));
    const __m256i sc16 = _mm256_cvtepu8_epi16(_mm_and_si128(raw, m4));
    const __m256i mn16 = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(raw, 4), m4));
    alignas(32) int16_t sc[16];
    _mm256_store_si256(reinterpret_cast<__m256i*>(sc), sc16);
    const __m256i prod_m = _mm256_madd_epi16(mn16, Load256(x[b].bsums));
    __m256i sumi = _mm256_setzero_si256();
    for (int half = 0; half < 2; ++half) {
      const __m256i q = Load256(blk->qs + 32 * half);
      for (int j = 0; j < 4; ++j) {
        const __m256i q2 = _mm256_and_si256(_mm256_srli_epi16(q, 2 * j), m3);
        const __m256i p = _mm256_maddubs_epi16(q2, Load256(x[b].qs + 128 * half + 32 * j));
        sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p, ScalePair(sc, 8 * half + 2 * j)));
      }
    }
    const float d = x[b].d * HalfToFloat(blk->d);
    const float dmin = x[b].d * HalfToFloat(blk->dmin);
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sumi), _mm256_set1_ps(d), acc);
    acc_m = _mm256_fmadd_ps(_mm256_cvtepi32_ps(prod_m), _mm256_set1_ps(dmin), acc_m);
  }
  return HorizontalSum(acc) - HorizontalSum(acc_m);
}

// IQ4_XS: nibbles through the 16-entry codebook with vpshufb (signed values), then the
// sign moves onto x so vpmaddubsw sees |value| (<= 127) as the unsigned operand: a pair
// of products is at most 2 * 127 * 127, no saturation. Q8_K quants are in [-127, 127].
float DotIQ4XSX86(const uint8_t* wrow, const BlockQ8_K* x, size_t nb) {
  __m256 acc = _mm256_setzero_ps();
  const __m256i m4 = _mm256_set1_epi8(0x0F);
  const __m256i kShiftL = _mm256_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28);
  const __m256i kShiftH = _mm256_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14);
  const __m256i m4_32 = _mm256_set1_epi32(0xF), m3_32 = _mm256_set1_epi32(3);
  const __m256i values = _mm256_broadcastsi128_si256(
      _mm_loadu_si128(reinterpret_cast<const __m128i*>(tensor::kIQ4NLValues)));
  for (size_t b = 0; b < nb; ++b) {
    const auto* blk = reinterpret_cast<const tensor::BlockIQ4_XS*>(wrow) + b;
    // The 8 scales (tensor::IQ4XSScale) in int32 lanes: nibble ib of scales_l, 2-bit
    // field ib of scales_h, minus 32; packed to int16.
    uint32_t sl;
    std::memcpy(&sl, blk->scales_l, 4);
    const __m256i lo = _mm256_and_si256(
        _mm256_srlv_epi32(_mm256_set1_epi32(static_cast<int>(sl)), kShiftL), m4_32);
    const __m256i hi = _mm256_slli_epi32(
        _mm256_and_si256(_mm256_srlv_epi32(_mm256_set1_epi32(blk->scales_h), kShiftH), m3_32), 4);
    const __m256i s32 = _mm256_sub_epi32(_mm256_or_si256(lo, hi), _mm256_set1_epi32(32));
    alignas(16) int16_t sc[8];
    _mm_store_si128(reinterpret_cast<__m128i*>(sc),
                    _mm_packs_epi32(_mm256_castsi256_si128(s32), _mm256_extracti128_si256(s32, 1)));
    const int8_t* xq = x[b].qs;
    __m256i sumi = _mm256_setzero_si256();
    for (int k = 0; k < 4; ++k) {
      // Low 128-bit lane: sub-block 2k, high lane: sub-block 2k + 1.
      const __m256i q = Load256(blk->qs + 32 * k);
      const __m256i vlo = _mm256_shuffle_epi8(values, _mm256_and_si256(q, m4));
      const __m256i vhi =
          _mm256_shuffle_epi8(values, _mm256_and_si256(_mm256_srli_epi16(q, 4), m4));
      const __m256i xlo = _mm256_loadu2_m128i(reinterpret_cast<const __m128i*>(xq + 64 * k + 32),
                                              reinterpret_cast<const __m128i*>(xq + 64 * k));
      const __m256i xhi = _mm256_loadu2_m128i(reinterpret_cast<const __m128i*>(xq + 64 * k + 48),
                                              reinterpret_cast<const __m128i*>(xq + 64 * k + 16));
      const __m256i plo =
          _mm256_maddubs_epi16(_mm256_sign_epi8(vlo, vlo), _mm256_sign_epi8(xlo, vlo));
      const __m256i phi =
          _mm256_maddubs_epi16(_mm256_sign_epi8(vhi, vhi), _mm256_sign_epi8(xhi, vhi));
      const __m256i s = ScalePair(sc, 2 * k);
      sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(plo, s));
      sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(phi, s));
    }
    const float d = x[b].d * HalfToFloat(blk->d);
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sumi), _mm256_set1_ps(d), acc);
  }
  return HorizontalSum(acc);
}

DotFn FastDot(DType dtype) {
  switch (dtype) {
    case DType::kQ2_K:
      return DotQ2KX86;
    case DType::kQ3_K:
      return DotQ3KX86;
    case DType::kQ4_K:  // TiledRows
    case DType::kQ6_K:  // TiledRows
    case DType::kQ5_K:
      return nullptr;  // FastRows
    case DType::kIQ4_XS:
      return DotIQ4XSX86;
    default:
      return nullptr;
  }
}

#else

DotFn FastDot(DType) { return nullptr; }
using RowsFn = void (*)(const uint8_t*, size_t, const Activations&, size_t, size_t, size_t, float*);
RowsFn FastRows(DType) { return nullptr; }

#endif  // PK_X86_KQUANT

// The PackedWeight layout this target reads for `dtype` (kPackedNone: the plain rows).
int KQuantPackedLayoutImpl(DType dtype) {
  return PK_X86_KQUANT && (dtype == DType::kQ4_K || dtype == DType::kQ6_K) ? kPackedKQuant8
                                                                           : kPackedNone;
}

void MatMulKQuantRowsImpl(const tensor::TensorView& w, const uint8_t* packed, int packed_layout,
                          bool from_memory, const Activations& act, size_t r0, size_t r1,
                          float* y) {
#if PK_X86_KQUANT
  if (w.dtype == DType::kQ4_K || w.dtype == DType::kQ6_K) {
    if (packed_layout != kPackedKQuant8) packed = nullptr;  // another target's layout
    TiledRows(w, packed, from_memory, act, r0, r1, y);
    return;
  }
#endif
  (void)packed;
  (void)packed_layout;
  (void)from_memory;
  const size_t rows = static_cast<size_t>(w.ne[1]);
  const size_t nb = act.cols / tensor::kQKK;
  const auto* wbase = static_cast<const uint8_t*>(w.data);
  const size_t w_stride = w.row_bytes();
  if (const RowsFn fast = FastRows(w.dtype); fast != nullptr) {
    fast(wbase, w_stride, act, rows, r0, r1, y);
    return;
  }
  DotFn dot = FastDot(w.dtype);
  if (dot == nullptr) dot = PortableDot(w.dtype);
  for (size_t r = r0; r < r1; ++r) {
    const uint8_t* wr = wbase + r * w_stride;
    for (size_t t = 0; t < act.num_tokens; ++t) {
      const auto* x = reinterpret_cast<const BlockQ8_K*>(act.q8 + t * act.stride_bytes);
      y[t * rows + r] = dot(wr, x, nb);
    }
  }
}

MatMulPath KQuantPathImpl(DType dtype) {
  if (PortableDot(dtype) == nullptr) return MatMulPath::kUnsupported;
  const bool fast = FastDot(dtype) != nullptr || FastRows(dtype) != nullptr ||
                    (PK_X86_KQUANT && (dtype == DType::kQ4_K || dtype == DType::kQ6_K));
  return fast ? MatMulPath::kFast : MatMulPath::kReference;
}

}  // namespace HWY_NAMESPACE
}  // namespace pocket::kernels::cpu
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace pocket::kernels::cpu {

HWY_EXPORT(MatMulKQuantRowsImpl);
HWY_EXPORT(KQuantPathImpl);
HWY_EXPORT(KQuantPackedLayoutImpl);

void MatMulKQuantRows(const tensor::TensorView& w, const uint8_t* packed, int packed_layout,
                      bool from_memory, const Activations& act, size_t r0, size_t r1, float* y) {
  HWY_DYNAMIC_DISPATCH(MatMulKQuantRowsImpl)(w, packed, packed_layout, from_memory, act, r0, r1, y);
}
MatMulPath KQuantPath(tensor::DType dtype) { return HWY_DYNAMIC_DISPATCH(KQuantPathImpl)(dtype); }
int KQuantPackedLayout(tensor::DType dtype) {
  return HWY_DYNAMIC_DISPATCH(KQuantPackedLayoutImpl)(dtype);
}

size_t KQuantPackedBlockBytes(tensor::DType dtype) {
  return dtype == tensor::DType::kQ4_K   ? kquant::kQ4KPkBytes
         : dtype == tensor::DType::kQ6_K ? kquant::kQ6KPkBytes
                                         : 0;
}

void PackKQuantGroup(const tensor::TensorView& w, size_t g, uint8_t* dst) {
  const size_t pb = KQuantPackedBlockBytes(w.dtype);
  if (pb == 0) return;
  const size_t rows = static_cast<size_t>(w.ne[1]);
  const size_t nb = static_cast<size_t>(w.ne[0]) / tensor::kQKK;
  const uint8_t* row[8];
  for (size_t j = 0; j < 8; ++j) {
    row[j] = reinterpret_cast<const uint8_t*>(
        w.row(static_cast<int64_t>(std::min(8 * g + j, rows - 1))));
  }
  for (size_t b = 0; b < nb; ++b) {
    if (w.dtype == tensor::DType::kQ4_K) {
      kquant::PackQ4KBlock(row, b, dst + b * pb);
    } else {
      kquant::PackQ6KBlock(row, b, dst + b * pb);
    }
  }
}

}  // namespace pocket::kernels::cpu
#endif  // HWY_ONCE
