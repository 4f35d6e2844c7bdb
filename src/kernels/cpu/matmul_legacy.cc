// MatMul bodies for the 32-element fallback types Q4_1, Q5_0, Q5_1 and IQ4_NL, compiled
// once per Highway target (foreach_target) and reached from MatMulRowsImpl (matmul.cc)
// through MatMulRowsLegacy. They take the kind-1 activation (cpu.h: int8 quants, a float
// scale and -8 * sum per 32-block), so each block's dot is an exact integer:
//   Q5_0:   sum((u - 16) * x) = sum(u * x) + 2 * neg8sum        (u = 5-bit code, 0..31)
//   Q4_1/Q5_1: sum(d*u + m) * dx*x = d*dx * sum(u * x) + m*dx * sum(x), sum(x) = -neg8sum/8
//   IQ4_NL: sum(v * x), v = kIQ4NLValues[nibble] (int8)
// Per (row, token) the float steps are fixed: per block, acc = fma(float(dot) * dw, dx,
// acc), then for Q4_1/Q5_1 acc = fma(m, dx * sum(x), acc) (x86: one such lane per row of
// an 8-row tile; portable: a scalar), so each result is the same bits whatever the batch,
// the token tile and the row split (batch invariance).
//
// x86 (AVX2, AVX-512): the weights are read in an 8-row interleaved layout (PackedWeight,
// built at load by PackLegacyGroup, or on the fly for a plain view) by the 8-row tiles
// below; AVX2 and AVX-512 give the same bits. Decode speed per core, 576x1536 mat-vec
// (kernels_bench, docs/kernels.md): Q5_0 18.9 us, IQ4_NL 15.4 us vs Q4_0 12.0 us (AVX-512).
// Other targets: portable loops per (row, token).
#include <algorithm>
#include <cstdint>
#include <cstring>

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/cpu/matmul_legacy.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
#include "kernels/cpu/cpu.h"
#include "kernels/cpu/hwy_targets.h"  // IWYU pragma: keep
#include "tensor/dtype.h"
#include "tensor/fp16.h"

// Byte offsets inside each block type (ggml-common.h): d, then m (Q4_1, Q5_1), then qh
// (Q5_0, Q5_1), then the 16 nibble bytes. kPk*: the PackedWeight layout (kPackedLanePairs
// only, read by the AVX-512 tiles), per group of 8 rows (the last group repeats its last
// row) and 32-block:
//   kPkD: the 8 rows' f16 d; kPkM: the 8 rows' f16 m (Q4_1, Q5_1);
//   kPkQh (Q5): 4 x 8 bytes, byte 8k + j = byte k of row j's qh, i.e. the fifth bits of
//     row j's elements 8k..8k+7: a ready AVX-512 byte mask for the code vector u[k] below;
//   kPkQs: 2 vectors of 64 bytes, lane pair j (8 bytes) of vector h = row j's nibble bytes
//     8h..8h+7 (as Q4_0's kPackedLanePairs). Vector h's low nibbles are elements 8h..8h+7
//     (u[h]), its high nibbles elements 16+8h..23+8h (u[h + 2]).
#ifndef POCKET_MATMUL_LEGACY_LAYOUT_
#define POCKET_MATMUL_LEGACY_LAYOUT_
namespace pocket::kernels::cpu::legacy {
template <tensor::DType kType>
struct Layout;
template <bool kMin, bool kFive>
struct PackedOffsets {
  static constexpr size_t kPkD = 0, kPkM = 16, kPkQh = kMin ? 32 : 16;
  static constexpr size_t kPkQs = kPkQh + (kFive ? 32 : 0), kPkBytes = kPkQs + 128;
};
template <>
struct Layout<tensor::DType::kQ4_1> : PackedOffsets<true, false> {
  static constexpr size_t kBytes = sizeof(tensor::BlockQ4_1), kQh = 0, kQs = 4;
  static constexpr bool kMin = true, kFive = false;
};
template <>
struct Layout<tensor::DType::kQ5_0> : PackedOffsets<false, true> {
  static constexpr size_t kBytes = sizeof(tensor::BlockQ5_0), kQh = 2, kQs = 6;
  static constexpr bool kMin = false, kFive = true;
};
template <>
struct Layout<tensor::DType::kQ5_1> : PackedOffsets<true, true> {
  static constexpr size_t kBytes = sizeof(tensor::BlockQ5_1), kQh = 4, kQs = 8;
  static constexpr bool kMin = true, kFive = true;
};
template <>
struct Layout<tensor::DType::kIQ4_NL> : PackedOffsets<false, false> {
  static constexpr size_t kBytes = sizeof(tensor::BlockIQ4_NL), kQh = 0, kQs = 2;
  static constexpr bool kMin = false, kFive = false;
};

// Block b of 8 rows (row[j]: row j's GGUF bytes) in the packed layout, at out.
template <tensor::DType kType>
inline void PackBlock(const uint8_t* const* row, size_t b, uint8_t* out) {
  using L = Layout<kType>;
  for (size_t j = 0; j < 8; ++j) {
    const uint8_t* blk = row[j] + b * L::kBytes;
    std::memcpy(out + L::kPkD + 2 * j, blk, 2);
    if constexpr (L::kMin) std::memcpy(out + L::kPkM + 2 * j, blk + 2, 2);
    if constexpr (L::kFive) {
      for (size_t k = 0; k < 4; ++k) out[L::kPkQh + 8 * k + j] = blk[L::kQh + k];
    }
    for (size_t h = 0; h < 2; ++h) {
      std::memcpy(out + L::kPkQs + 64 * h + 8 * j, blk + L::kQs + 8 * h, 8);
    }
  }
}
}  // namespace pocket::kernels::cpu::legacy
#endif  // POCKET_MATMUL_LEGACY_LAYOUT_

HWY_BEFORE_NAMESPACE();
namespace pocket::kernels::cpu {
namespace HWY_NAMESPACE {
using legacy::Layout;
using legacy::PackBlock;
using tensor::DType;

#undef PK_LEGACY_X86
#if HWY_TARGET == HWY_AVX2 || HWY_TARGET == HWY_AVX3
#define PK_LEGACY_X86 1
#else
#define PK_LEGACY_X86 0
#endif

// Internal linkage: matmul.cc's per-target namespaces hold functions of the same names.
namespace {

HWY_INLINE uint16_t Load16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}
HWY_INLINE uint32_t Load32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

// One token's view of the kind-1 activation row.
struct ActRow {
  const int8_t* q;
  const float* d;
  const int32_t* neg8sum;
};
HWY_INLINE ActRow ActRowOf(const Activations& act, size_t t) {
  const uint8_t* a = act.q8 + t * act.stride_bytes;
  const size_t nb = act.cols / 32;
  return {reinterpret_cast<const int8_t*>(a), reinterpret_cast<const float*>(a + act.cols),
          reinterpret_cast<const int32_t*>(a + act.cols + nb * sizeof(float))};
}

// ---------------------------------------------------------------------------------------
// Portable per-(row, token) dot: unpack a block to int8 codes, exact integer dot, then
// acc += (d * dx) * dot (+ (m * dx) * sum(x) for the types with a min).

template <DType kType>
float DotPortable(const uint8_t* wrow, const ActRow& a, size_t nb) {
  using L = Layout<kType>;
  float acc = 0.0f;
  int8_t w[32];
  for (size_t b = 0; b < nb; ++b) {
    const uint8_t* blk = wrow + b * L::kBytes;
    const uint8_t* qs = blk + L::kQs;
    const uint32_t qh = L::kFive ? Load32(blk + L::kQh) : 0u;
    for (size_t j = 0; j < 16; ++j) {
      int lo = qs[j] & 0x0F, hi = qs[j] >> 4;
      if constexpr (kType == DType::kIQ4_NL) {
        lo = tensor::kIQ4NLValues[lo];
        hi = tensor::kIQ4NLValues[hi];
      }
      if constexpr (L::kFive) {
        lo |= static_cast<int>((qh >> j) & 1) << 4;
        hi |= static_cast<int>((qh >> (j + 16)) & 1) << 4;
      }
      w[j] = static_cast<int8_t>(lo);
      w[j + 16] = static_cast<int8_t>(hi);
    }
    int32_t isum = 0;
    for (size_t i = 0; i < 32; ++i) isum += int32_t{w[i]} * a.q[b * 32 + i];
    if constexpr (kType == DType::kQ5_0) isum += 2 * a.neg8sum[b];
    const float dx = a.d[b];
    acc += tensor::F16ToF32(Load16(blk)) * dx * static_cast<float>(isum);
    if constexpr (L::kMin) {
      const float sum_x = static_cast<float>(-a.neg8sum[b] / 8);
      acc += tensor::F16ToF32(Load16(blk + 2)) * dx * sum_x;
    }
  }
  return acc;
}

template <DType kType>
void RowsPortable(const tensor::TensorView& w, const Activations& act, size_t r0, size_t r1,
                  float* y) {
  const size_t rows = static_cast<size_t>(w.ne[1]), nb = act.cols / 32;
  const auto* wbase = static_cast<const uint8_t*>(w.data);
  const size_t w_stride = w.row_bytes();
  for (size_t r = r0; r < r1; ++r) {
    for (size_t t = 0; t < act.num_tokens; ++t) {
      y[t * rows + r] = DotPortable<kType>(wbase + r * w_stride, ActRowOf(act, t), nb);
    }
  }
}

#if PK_LEGACY_X86

#if HWY_TARGET == HWY_AVX3
bool HasVnni() {
  static const bool vnni = __builtin_cpu_supports("avx512vnni");
  return vnni;
}
#endif

// ---- 8-row tiles over the packed layout (Layout::kPk*), AVX2 and AVX-512. ----
//
// As Q4_0's TilePairs256 (matmul.cc): 256-bit halves of each 64-byte vector (rows 0-3 in
// the low half, 4-7 in the high), one broadcast qword of the activation per code vector,
// the two int32 halves of each lane pair added, so lane r of the result is row r's exact
// block dot for all 8 rows at once with no per-row unpacking. Q5's fifth bits: one masked
// byte add per vector on AVX-512 (the packed qh bytes are the masks), a shuffle + compare
// on AVX2; IQ4_NL's codes go through vpshufb. The block's codes are unpacked once per block
// and shared by the RN tokens of a tile; per (row, token) the integer and float steps are
// the same for every RN, so the results do not depend on the tile (batch invariance). The
// integers are exact and the float steps the same on both targets, so AVX2 and AVX-512 give
// the same bits, and one packed layout serves both.

// Prefetch distances as matmul.cc measured for Q4_0's packed tiles: 8 KiB ahead into L2
// when the weights stay in the last-level cache, 2 KiB into L1 when they stream from DRAM.
constexpr size_t kPrefetchCache = 8192, kPrefetchMemory = 2048;

// acc + per 32-bit lane the sum of four code x activation products. vpdpbusd by inline
// asm (Highway's AVX3 target does not enable the VNNI intrinsics; the caller checks the CPU
// at run time); else vpmaddubsw + vpmaddwd, exact since a pair sums to at most 2 * 31 * 128
// (Q4/Q5 codes as the unsigned operand) or 2 * 127 * 127 (IQ4_NL: |v| times sign(x, v)).
template <DType kType, bool kVnni>
HWY_INLINE __m256i PairDot(__m256i acc, __m256i u, __m256i x) {
#if HWY_TARGET == HWY_AVX3
  if constexpr (kVnni) {
    asm("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(u), "v"(x));
    return acc;
  }
#endif
  {
    __m256i p;
    if constexpr (kType == DType::kIQ4_NL) {
      p = _mm256_maddubs_epi16(_mm256_abs_epi8(u), _mm256_sign_epi8(x, u));
    } else {
      p = _mm256_maddubs_epi16(u, x);
    }
    return _mm256_add_epi32(acc, _mm256_madd_epi16(p, _mm256_set1_epi16(1)));
  }
}

// Blocks [b0, b1) of one 8-row group, packed at pk (block b at pk + (b - b0) * kPkBytes),
// accumulated into acc[t] (lane r: row r) for the RN tokens a[t].
template <DType kType, int RN, bool kVnni, bool kFromMemory>
HWY_INLINE void TilePackedBlocks(const uint8_t* pk, size_t b0, size_t b1, const ActRow* a,
                                 __m256* acc) {
  using L = Layout<kType>;
  constexpr int kOffsetMul = kType == DType::kQ5_0                ? 2
                             : (kType == DType::kIQ4_NL && kVnni) ? 16
                                                                  : 0;
  const __m256i m4 = _mm256_set1_epi8(0x0F);
  // kIQ4NLValues, + 128 (unsigned 1..241) for vpdpbusd, signed for vpmaddubsw's sign trick.
  const __m256i table = kVnni
                            ? _mm256_setr_epi8(1, 24, 45, 63, 79, 93, 106, 118, -127, -115, -103,
                                               -90, -75, -59, -39, -15, 1, 24, 45, 63, 79, 93, 106,
                                               118, -127, -115, -103, -90, -75, -59, -39, -15)
                            : _mm256_setr_epi8(-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25,
                                               38, 53, 69, 89, 113, -127, -104, -83, -65, -49, -35,
                                               -22, -10, 1, 13, 25, 38, 53, 69, 89, 113);
  for (size_t b = b0; b < b1; ++b) {
    const uint8_t* blk = pk + (b - b0) * L::kPkBytes;
    for (size_t line = 0; line < L::kPkBytes; line += 64) {
      if constexpr (kFromMemory) {
        _mm_prefetch(reinterpret_cast<const char*>(blk) + kPrefetchMemory + line, _MM_HINT_T0);
      } else {
        _mm_prefetch(reinterpret_cast<const char*>(blk) + kPrefetchCache + line, _MM_HINT_T1);
      }
    }
    const __m256 dw =
        _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + L::kPkD)));
    __m256i u[2][4];  // [half][k]: elements 8k..8k+7 of rows 4h..4h+3
    for (int h = 0; h < 2; ++h) {
      const __m256i lo =
          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + L::kPkQs + 32 * h));
      const __m256i hi =
          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + L::kPkQs + 64 + 32 * h));
      u[h][0] = _mm256_and_si256(lo, m4);
      u[h][1] = _mm256_and_si256(hi, m4);
      u[h][2] = _mm256_and_si256(_mm256_srli_epi16(lo, 4), m4);
      u[h][3] = _mm256_and_si256(_mm256_srli_epi16(hi, 4), m4);
      for (int k = 0; k < 4; ++k) {
        if constexpr (L::kFive) {
          // Bit i of this word is the fifth bit of byte i of u[h][k].
          const uint32_t qh = Load32(blk + L::kPkQh + 8 * k + 4 * h);
#if HWY_TARGET == HWY_AVX3
          u[h][k] =
              _mm256_mask_add_epi8(u[h][k], _cvtu32_mask32(qh), u[h][k], _mm256_set1_epi8(16));
#else
          // Byte i takes byte i / 8 of the word, keeps bit i % 8 (the other bits forced to
          // one) and compares with all-ones.
          const __m256i spread = _mm256_shuffle_epi8(
              _mm256_set1_epi32(static_cast<int32_t>(qh)),
              _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202, 0x0101010101010101, 0));
          const __m256i set =
              _mm256_cmpeq_epi8(_mm256_or_si256(spread, _mm256_set1_epi64x(0x7fbfdfeff7fbfdfe)),
                                _mm256_set1_epi64x(-1));
          u[h][k] = _mm256_or_si256(u[h][k], _mm256_and_si256(set, _mm256_set1_epi8(16)));
#endif
        }
        if constexpr (kType == DType::kIQ4_NL) u[h][k] = _mm256_shuffle_epi8(table, u[h][k]);
      }
    }
    for (int t = 0; t < RN; ++t) {
      const int8_t* xb = a[t].q + 32 * b;
      __m256i x[4];
      for (int k = 0; k < 4; ++k) {
        int64_t v;
        std::memcpy(&v, xb + 8 * k, 8);
        x[k] = _mm256_set1_epi64x(v);
      }
      __m256i ph[2];
      for (int h = 0; h < 2; ++h) {
        __m256i p0 = PairDot<kType, kVnni>(_mm256_setzero_si256(), u[h][0], x[0]);
        __m256i p1 = PairDot<kType, kVnni>(_mm256_setzero_si256(), u[h][1], x[1]);
        p0 = PairDot<kType, kVnni>(p0, u[h][2], x[2]);
        p1 = PairDot<kType, kVnni>(p1, u[h][3], x[3]);
        const __m256i p = _mm256_add_epi32(p0, p1);
        ph[h] = _mm256_add_epi32(p, _mm256_srli_epi64(p, 32));  // lane 2r: row 4h + r
      }
      // [r0 r1 r4 r5 | r2 r3 r6 r7], then the 64-bit quarters in order.
      const __m256i p4 = _mm256_castps_si256(_mm256_shuffle_ps(
          _mm256_castsi256_ps(ph[0]), _mm256_castsi256_ps(ph[1]), _MM_SHUFFLE(2, 0, 2, 0)));
      __m256i p = _mm256_permute4x64_epi64(p4, _MM_SHUFFLE(3, 1, 2, 0));
      const int32_t s = a[t].neg8sum[b];
      if constexpr (kOffsetMul != 0) p = _mm256_add_epi32(p, _mm256_set1_epi32(kOffsetMul * s));
      const float dx = a[t].d[b];
      acc[t] =
          _mm256_fmadd_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(p), dw), _mm256_set1_ps(dx), acc[t]);
      if constexpr (L::kMin) {
        const __m256 mw =
            _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + L::kPkM)));
        acc[t] = _mm256_fmadd_ps(mw, _mm256_set1_ps(dx * static_cast<float>(-s / 8)), acc[t]);
      }
    }
  }
}

template <int RN>
HWY_INLINE void StoreTile(const __m256* acc, size_t valid_rows, float* y, size_t y_stride) {
  for (int t = 0; t < RN; ++t) {
    if (valid_rows == 8) {
      _mm256_storeu_ps(y + t * y_stride, acc[t]);
    } else {
      alignas(32) float tmp[8];
      _mm256_store_ps(tmp, acc[t]);
      for (size_t j = 0; j < valid_rows; ++j) y[t * y_stride + j] = tmp[j];
    }
  }
}

template <DType kType, int RN, bool kVnni, bool kFromMemory>
HWY_INLINE void TilePacked(const uint8_t* pk, size_t valid_rows, const ActRow* a, size_t nb,
                           float* y, size_t y_stride) {
  __m256 acc[RN];
  for (int t = 0; t < RN; ++t) acc[t] = _mm256_setzero_ps();
  TilePackedBlocks<kType, RN, kVnni, kFromMemory>(pk, 0, nb, a, acc);
  StoreTile<RN>(acc, valid_rows, y, y_stride);
}

template <DType kType, bool kVnni, bool kFromMemory>
void RowsPacked(const uint8_t* packed, size_t rows, const Activations& act, size_t r0, size_t r1,
                float* y) {
  const size_t nb = act.cols / 32;
  const size_t group_bytes = nb * Layout<kType>::kPkBytes;
  constexpr int kRn = 4;
  ActRow a[kRn];
  for (size_t r = r0; r < r1; r += 8) {  // r0 is a multiple of 8 (the packed contract)
    const size_t valid = std::min<size_t>(8, r1 - r);
    const uint8_t* pk = packed + r / 8 * group_bytes;
    size_t t = 0;
    for (; t + kRn <= act.num_tokens; t += kRn) {
      for (int i = 0; i < kRn; ++i) a[i] = ActRowOf(act, t + i);
      TilePacked<kType, kRn, kVnni, kFromMemory>(pk, valid, a, nb, y + t * rows + r, rows);
    }
    for (; t < act.num_tokens; ++t) {
      a[0] = ActRowOf(act, t);
      TilePacked<kType, 1, kVnni, kFromMemory>(pk, valid, a, nb, y + t * rows + r, rows);
    }
  }
}

// The GGUF rows as they are (no PackedWeight): each group of up to 8 rows is packed on the
// fly, kChunk blocks at a time, into a stack buffer that the same tile reads, so the
// results are the packed path's bits (PackedWeight's contract) at the cost of the copy.
// r0 need not be a multiple of 8 here.
template <DType kType, bool kVnni>
void RowsRepackOnTheFly(const tensor::TensorView& w, const Activations& act, size_t r0, size_t r1,
                        float* y) {
  using L = Layout<kType>;
  constexpr size_t kChunk = 32;
  alignas(64) uint8_t buf[kChunk * L::kPkBytes];
  const size_t rows = static_cast<size_t>(w.ne[1]), nb = act.cols / 32;
  const auto* wbase = static_cast<const uint8_t*>(w.data);
  const size_t w_stride = w.row_bytes();
  constexpr int kRn = 4;
  ActRow a[kRn];
  for (size_t r = r0; r < r1; r += 8) {
    const size_t valid = std::min<size_t>(8, r1 - r);
    const uint8_t* row[8];
    for (size_t j = 0; j < 8; ++j) row[j] = wbase + (r + std::min(j, valid - 1)) * w_stride;
    for (size_t t = 0; t < act.num_tokens;) {
      const int n = act.num_tokens - t >= kRn ? kRn : 1;
      for (int i = 0; i < n; ++i) a[i] = ActRowOf(act, t + i);
      __m256 acc[kRn];
      for (int i = 0; i < kRn; ++i) acc[i] = _mm256_setzero_ps();
      for (size_t b0 = 0; b0 < nb; b0 += kChunk) {
        const size_t b1 = std::min(nb, b0 + kChunk);
        for (size_t b = b0; b < b1; ++b) PackBlock<kType>(row, b, buf + (b - b0) * L::kPkBytes);
        if (n == kRn) {
          TilePackedBlocks<kType, kRn, kVnni, false>(buf, b0, b1, a, acc);
        } else {
          TilePackedBlocks<kType, 1, kVnni, false>(buf, b0, b1, a, acc);
        }
      }
      if (n == kRn) {
        StoreTile<kRn>(acc, valid, y + t * rows + r, rows);
      } else {
        StoreTile<1>(acc, valid, y + t * rows + r, rows);
      }
      t += static_cast<size_t>(n);
    }
  }
}

template <DType kType, bool kVnni>
void RowsX86(const tensor::TensorView& w, const uint8_t* packed, int packed_layout,
             bool from_memory, const Activations& act, size_t r0, size_t r1, float* y) {
  if (packed != nullptr && packed_layout == kPackedLanePairs) {
    const size_t rows = static_cast<size_t>(w.ne[1]);
    if (from_memory) {
      RowsPacked<kType, kVnni, true>(packed, rows, act, r0, r1, y);
    } else {
      RowsPacked<kType, kVnni, false>(packed, rows, act, r0, r1, y);
    }
    return;
  }
  RowsRepackOnTheFly<kType, kVnni>(w, act, r0, r1, y);
}

template <DType kType>
void Rows(const tensor::TensorView& w, const uint8_t* packed, int packed_layout, bool from_memory,
          const Activations& act, size_t r0, size_t r1, float* y) {
#if HWY_TARGET == HWY_AVX3
  if (HasVnni()) {
    RowsX86<kType, true>(w, packed, packed_layout, from_memory, act, r0, r1, y);
    return;
  }
#endif
  RowsX86<kType, false>(w, packed, packed_layout, from_memory, act, r0, r1, y);
}

#else

template <DType kType>
void Rows(const tensor::TensorView& w, const uint8_t*, int, bool, const Activations& act, size_t r0,
          size_t r1, float* y) {
  RowsPortable<kType>(w, act, r0, r1, y);
}

#endif  // PK_LEGACY_X86

}  // namespace

void MatMulRowsLegacyImpl(const tensor::TensorView& w, const uint8_t* packed, int packed_layout,
                          bool from_memory, const Activations& act, size_t r0, size_t r1,
                          float* y) {
  const uint8_t* p = packed;
  const int l = packed_layout;
  const bool m = from_memory;
  switch (w.dtype) {
    case DType::kQ4_1:
      Rows<DType::kQ4_1>(w, p, l, m, act, r0, r1, y);
      return;
    case DType::kQ5_0:
      Rows<DType::kQ5_0>(w, p, l, m, act, r0, r1, y);
      return;
    case DType::kQ5_1:
      Rows<DType::kQ5_1>(w, p, l, m, act, r0, r1, y);
      return;
    case DType::kIQ4_NL:
      Rows<DType::kIQ4_NL>(w, p, l, m, act, r0, r1, y);
      return;
    default:
      return;  // MatMulRowsImpl routes only the four types here
  }
}

// The PackedWeight layout this target reads for these types (the x86 tiles).
int LegacyPackedLayoutImpl() { return PK_LEGACY_X86 ? kPackedLanePairs : kPackedNone; }

}  // namespace HWY_NAMESPACE
}  // namespace pocket::kernels::cpu
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace pocket::kernels::cpu {

HWY_EXPORT(MatMulRowsLegacyImpl);
HWY_EXPORT(LegacyPackedLayoutImpl);

void MatMulRowsLegacy(const tensor::TensorView& w, const uint8_t* packed, int packed_layout,
                      bool from_memory, const Activations& act, size_t r0, size_t r1, float* y) {
  HWY_DYNAMIC_DISPATCH(MatMulRowsLegacyImpl)(w, packed, packed_layout, from_memory, act, r0, r1, y);
}

int LegacyPackedLayout() { return HWY_DYNAMIC_DISPATCH(LegacyPackedLayoutImpl)(); }

namespace {
template <tensor::DType kType>
void PackGroup(const tensor::TensorView& w, size_t g, uint8_t* dst) {
  using L = legacy::Layout<kType>;
  const size_t rows = static_cast<size_t>(w.ne[1]), nb = static_cast<size_t>(w.ne[0]) / 32;
  const uint8_t* row[8];
  for (size_t j = 0; j < 8; ++j) {
    row[j] = reinterpret_cast<const uint8_t*>(
        w.row(static_cast<int64_t>(std::min(8 * g + j, rows - 1))));
  }
  for (size_t b = 0; b < nb; ++b) legacy::PackBlock<kType>(row, b, dst + b * L::kPkBytes);
}
}  // namespace

size_t LegacyPackedBlockBytes(tensor::DType dtype) {
  switch (dtype) {
    case tensor::DType::kQ4_1:
      return legacy::Layout<tensor::DType::kQ4_1>::kPkBytes;
    case tensor::DType::kQ5_0:
      return legacy::Layout<tensor::DType::kQ5_0>::kPkBytes;
    case tensor::DType::kQ5_1:
      return legacy::Layout<tensor::DType::kQ5_1>::kPkBytes;
    case tensor::DType::kIQ4_NL:
      return legacy::Layout<tensor::DType::kIQ4_NL>::kPkBytes;
    default:
      return 0;
  }
}

void PackLegacyGroup(const tensor::TensorView& w, size_t g, uint8_t* dst) {
  switch (w.dtype) {
    case tensor::DType::kQ4_1:
      PackGroup<tensor::DType::kQ4_1>(w, g, dst);
      return;
    case tensor::DType::kQ5_0:
      PackGroup<tensor::DType::kQ5_0>(w, g, dst);
      return;
    case tensor::DType::kQ5_1:
      PackGroup<tensor::DType::kQ5_1>(w, g, dst);
      return;
    case tensor::DType::kIQ4_NL:
      PackGroup<tensor::DType::kIQ4_NL>(w, g, dst);
      return;
    default:
      return;
  }
}

}  // namespace pocket::kernels::cpu
#endif  // HWY_ONCE
