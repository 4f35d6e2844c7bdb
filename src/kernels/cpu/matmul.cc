// MatMul bodies, compiled once per Highway target (foreach_target) and picked at run time.
//
// Q8_0 / Q4_0 weights on x86 (AVX2 and AVX-512 targets): integer block dot products with
// vpmaddubsw (|w| as the unsigned operand, sign(x, w) as the signed one) and vpmaddwd,
// converted to float and accumulated with FMA into 8 lanes per (row, token); the lanes
// are summed in a fixed order at the end. Register tiles of RM rows x RN tokens share
// each loaded weight block between RN tokens and each activation block between RM rows.
// Every (row, token) accumulator sees exactly the same operations in the same order
// whatever the tile shape, which is what makes the mat-mat bit-identical to the mat-vec
// (batch invariance) and independent of the row split across threads.
//
// Other targets and other dtypes: portable loops per (row, token), integer within a block.
// The 256-element super-block types (Q2_K..Q6_K, IQ4_XS) live in matmul_kquant.cc.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/cpu/matmul.cc"
#include "kernels/cpu/hwy_targets.h"  // IWYU pragma: keep
#include "hwy/foreach_target.h"       // IWYU pragma: keep
#include "hwy/highway.h"
#include "kernels/cpu/fixed_sum-inl.h"
#include "kernels/cpu/amx.h"
#include "kernels/cpu/cpu.h"
#include "kernels/cpu/matmul_dequant.h"
#include "tensor/dtype.h"
#include "tensor/fp16.h"
#include "tensor/quant.h"

HWY_BEFORE_NAMESPACE();
namespace pocket::kernels::cpu {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;
using tensor::DType;

#undef PK_X86_INT8
#if HWY_TARGET == HWY_AVX2 || HWY_TARGET == HWY_AVX3
#define PK_X86_INT8 1
#else
#define PK_X86_INT8 0
#endif

// ---------------------------------------------------------------------------------------
// Portable per-(row, token) dot products.

float DotQ8Portable(const uint8_t* wrow, bool q4, const int8_t* xq, const float* xd,
                    size_t nb) {
  float acc = 0.0f;
  int8_t w[32];
  for (size_t b = 0; b < nb; ++b) {
    float dw;
    if (q4) {
      const auto* blk = reinterpret_cast<const tensor::BlockQ4_0*>(wrow) + b;
      dw = tensor::F16ToF32(blk->d);
      for (size_t i = 0; i < 16; ++i) {
        w[i] = static_cast<int8_t>((blk->qs[i] & 0x0F) - 8);
        w[i + 16] = static_cast<int8_t>((blk->qs[i] >> 4) - 8);
      }
    } else {
      const auto* blk = reinterpret_cast<const tensor::BlockQ8_0*>(wrow) + b;
      dw = tensor::F16ToF32(blk->d);
      std::memcpy(w, blk->qs, 32);
    }
    int32_t isum = 0;
    for (size_t i = 0; i < 32; ++i) isum += int32_t{w[i]} * xq[b * 32 + i];
    const float scale = dw * xd[b];
    acc += scale * static_cast<float>(isum);
  }
  return acc;
}

// F32 / F16 / BF16 weights: per (row, token) a fixed sum (fixed_sum-inl.h): element c goes
// to running sum c % 16, each one FMA chain in order, the 16 added in the fixed tree, so
// the result is the same bits for any vector width (training's forward matmul: a recipe's
// checkpoint does not depend on the machine's ISA). MatMulFloatTile runs kR rows x kT
// tokens of these sums side by side, so each weight vector is loaded once for kT tokens
// and each activation vector once for kR rows, and the FMA latency is hidden behind the
// independent chains. Every (row, token) still goes through exactly the operations of a
// 1 x 1 tile, so the tiling changes no bit (batch invariance).
template <typename T>
HWY_INLINE float WeightAt(const T* w, size_t i) {
  if constexpr (std::is_same_v<T, float>) {
    return w[i];
  } else if constexpr (std::is_same_v<T, hwy::float16_t>) {
    uint16_t bits;
    std::memcpy(&bits, &w[i], 2);
    return tensor::F16ToF32(bits);
  } else {
    uint16_t bits;
    std::memcpy(&bits, &w[i], 2);
    return tensor::BF16ToF32(bits);
  }
}

template <typename T>
HWY_INLINE auto LoadWeightF32(fixed_sum::D16 df, const T* w) {
  if constexpr (std::is_same_v<T, float>) {
    return hn::LoadU(df, w);
  } else {
    const hn::Rebind<T, decltype(df)> dh;
    return hn::PromoteTo(df, hn::LoadU(dh, w));
  }
}

// y[(t0 + j) * rows + r0 + i] for i < kR, j < kT; w rows are w_stride bytes apart, x rows
// n floats apart.
template <typename T, size_t kR, size_t kT>
HWY_INLINE void MatMulFloatTile(const uint8_t* w, size_t w_stride, const float* x, size_t n,
                                size_t rows, size_t r0, size_t t0, float* y) {
  using fixed_sum::kLanes, fixed_sum::kN, fixed_sum::kVecs;
  const fixed_sum::D16 df;
  const T* wr[kR];
  const float* xt[kT];
  for (size_t i = 0; i < kR; ++i) wr[i] = reinterpret_cast<const T*>(w + (r0 + i) * w_stride);
  for (size_t j = 0; j < kT; ++j) xt[j] = x + (t0 + j) * n;
  fixed_sum::V16 acc[kR][kT][kVecs];
  for (size_t i = 0; i < kR; ++i) {
    for (size_t j = 0; j < kT; ++j) {
      for (size_t v = 0; v < kVecs; ++v) acc[i][j][v] = hn::Zero(df);
    }
  }
  size_t c = 0;
  for (; c + kLanes <= n; c += kLanes) {
    for (size_t v = 0; v < kVecs; ++v) {
      fixed_sum::V16 wv[kR];
      for (size_t i = 0; i < kR; ++i) wv[i] = LoadWeightF32(df, wr[i] + c + v * kN);
      for (size_t j = 0; j < kT; ++j) {
        const auto xv = hn::LoadU(df, xt[j] + c + v * kN);
        for (size_t i = 0; i < kR; ++i) acc[i][j][v] = hn::MulAdd(wv[i], xv, acc[i][j][v]);
      }
    }
  }
  for (size_t i = 0; i < kR; ++i) {
    for (size_t j = 0; j < kT; ++j) {
      if (c < n) {  // the last n % 16 elements into their running sums, fused the same way
        HWY_ALIGN float s[kLanes];
        for (size_t v = 0; v < kVecs; ++v) hn::Store(acc[i][j][v], df, s + v * kN);
        for (size_t k = c; k < n; ++k) s[k - c] = std::fma(WeightAt(wr[i], k), xt[j][k], s[k - c]);
        for (size_t v = 0; v < kVecs; ++v) acc[i][j][v] = hn::Load(df, s + v * kN);
      }
      y[(t0 + j) * rows + r0 + i] = fixed_sum::Reduce(acc[i][j]);
    }
  }
}

#if HWY_TARGET <= HWY_AVX3
constexpr size_t kFloatTileRows = 4, kFloatTileTokens = 4;  // 16 chains of 32 registers
#elif HWY_TARGET <= HWY_AVX2
constexpr size_t kFloatTileRows = 2, kFloatTileTokens = 2;  // 8 vector chains of 16 registers
#else
constexpr size_t kFloatTileRows = 1, kFloatTileTokens = 2;  // 8 vector chains (4 per sum)
#endif

template <typename T, size_t kR>
void MatMulFloatRowBlock(const uint8_t* w, size_t w_stride, const Activations& act,
                         size_t rows, size_t r, float* y) {
  size_t t = 0;
  for (; t + kFloatTileTokens <= act.num_tokens; t += kFloatTileTokens) {
    MatMulFloatTile<T, kR, kFloatTileTokens>(w, w_stride, act.f32, act.cols, rows, r, t, y);
  }
  for (; t < act.num_tokens; ++t) {
    MatMulFloatTile<T, kR, 1>(w, w_stride, act.f32, act.cols, rows, r, t, y);
  }
}

template <typename T>
void MatMulFloatRows(const uint8_t* w, size_t w_stride, const Activations& act, size_t rows,
                     size_t r0, size_t r1, float* y) {
  size_t r = r0;
  for (; r + kFloatTileRows <= r1; r += kFloatTileRows) {
    MatMulFloatRowBlock<T, kFloatTileRows>(w, w_stride, act, rows, r, y);
  }
  for (; r < r1; ++r) MatMulFloatRowBlock<T, 1>(w, w_stride, act, rows, r, y);
}

// ---------------------------------------------------------------------------------------
// x86 int8 tiles.

#if PK_X86_INT8

HWY_INLINE float HorizontalSum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// acc + (per 32-bit lane) the sum of four u8 x s8 products. With AVX512-VNNI one
// vpdpbusd (inline asm: Highway 1.0.3's AVX3 target does not enable the VNNI intrinsics;
// the caller checks the CPU at run time); else vpmaddubsw + vpmaddwd (no saturation here:
// |u| <= 128, |s| <= 127 and one factor is <= 15 or the pair sum is <= 2 * 128 * 127).
template <bool kVnni>
HWY_INLINE __m256i DotAcc(__m256i acc, __m256i u, __m256i s) {
#if HWY_TARGET == HWY_AVX3
  if constexpr (kVnni) {
    asm("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(u), "v"(s));
    return acc;
  }
#endif
  const __m256i p = _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
  return _mm256_add_epi32(acc, p);
}

// Measured on the 135M model's decode (CPU time, one thread): 1 KiB 99 tok/s, 2 KiB 113,
// 4 KiB 116, 8 KiB 125.
constexpr size_t kPrefetchBytes = 8192;

// ---- Interleaved 8-row tiles: 32-bit lane j of every vector belongs to row j. ----
//
// For block b, U[k] (k = 0..7) holds elements 4k..4k+3 of the 8 rows (lane j = row j),
// as unsigned bytes: Q4_0 nibbles as they are, Q8_0 as w + 128. The activation's dword k
// (elements 4k..4k+3) is broadcast, so one u8 x s8 dot per k accumulates all 8 rows at
// once, and the int32 lanes end up holding the 8 rows' block dots with no horizontal
// reduction. The offset (Q4_0: -8 * sum(x), Q8_0: -128 * sum(x)) is the accumulator's
// initial value. Per (row, token) the sequence is fixed: two int32 chains (even and odd
// k), their sum, then acc = fma(cvt(p) * dw, dx, acc); the tile shape only decides what is
// shared, so the results are batch invariant. Weights are transposed on the fly from the
// GGUF layout; prefill amortizes that over RN tokens.

constexpr size_t PackedBlockBytes(bool q4) { return q4 ? kPackedQ4Bytes : kPackedQ8Bytes; }

// The 8 rows' f16 scales of block b (at byte offset boff of each row) as floats. Eight
// 16-bit loads packed in general-purpose registers: profiling showed vpgatherdd (and the
// shuffles after it) as the top stall of the decode tile.
HWY_INLINE __m256 LoadScales(const uint8_t* const* row, size_t boff) {
  uint16_t d[8];
  for (int j = 0; j < 8; ++j) std::memcpy(&d[j], row[j] + boff, 2);
  const uint64_t lo = uint64_t{d[0]} | uint64_t{d[1]} << 16 | uint64_t{d[2]} << 32 |
                      uint64_t{d[3]} << 48;
  const uint64_t hi = uint64_t{d[4]} | uint64_t{d[5]} << 16 | uint64_t{d[6]} << 32 |
                      uint64_t{d[7]} << 48;
  return _mm256_cvtph_ps(
      _mm_set_epi64x(static_cast<int64_t>(hi), static_cast<int64_t>(lo)));
}

template <bool kQ4>
HWY_INLINE void LoadInterleaved(const uint8_t* const* row, size_t boff, __m256i* u) {
  if constexpr (kQ4) {
    __m256i yv[4];
    for (int i = 0; i < 4; ++i) {
      yv[i] = _mm256_loadu2_m128i(reinterpret_cast<const __m128i*>(row[i + 4] + boff + 2),
                                  reinterpret_cast<const __m128i*>(row[i] + boff + 2));
    }
    const __m256i t0 = _mm256_unpacklo_epi32(yv[0], yv[1]);
    const __m256i t1 = _mm256_unpackhi_epi32(yv[0], yv[1]);
    const __m256i t2 = _mm256_unpacklo_epi32(yv[2], yv[3]);
    const __m256i t3 = _mm256_unpackhi_epi32(yv[2], yv[3]);
    const __m256i d[4] = {_mm256_unpacklo_epi64(t0, t2), _mm256_unpackhi_epi64(t0, t2),
                          _mm256_unpacklo_epi64(t1, t3), _mm256_unpackhi_epi64(t1, t3)};
    const __m256i m = _mm256_set1_epi8(0x0F);
    for (int k = 0; k < 4; ++k) {
      u[k] = _mm256_and_si256(d[k], m);
      u[k + 4] = _mm256_and_si256(_mm256_srli_epi16(d[k], 4), m);
    }
  } else {
    __m256i r[8];
    for (int j = 0; j < 8; ++j) {
      r[j] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row[j] + boff + 2));
    }
    // 8 x 8 transpose of dwords.
    __m256i a[8], c[8];
    for (int j = 0; j < 8; j += 2) {
      a[j] = _mm256_unpacklo_epi32(r[j], r[j + 1]);
      a[j + 1] = _mm256_unpackhi_epi32(r[j], r[j + 1]);
    }
    for (int j = 0; j < 8; j += 4) {
      c[j] = _mm256_unpacklo_epi64(a[j], a[j + 2]);
      c[j + 1] = _mm256_unpackhi_epi64(a[j], a[j + 2]);
      c[j + 2] = _mm256_unpacklo_epi64(a[j + 1], a[j + 3]);
      c[j + 3] = _mm256_unpackhi_epi64(a[j + 1], a[j + 3]);
    }
    // c[0..3]: dwords 0..3 of rows 0-3 (low half) and 0..3 of rows 0-3 from the high
    // half (dwords 4..7); c[4..7] likewise for rows 4-7.
    const __m256i flip = _mm256_set1_epi8(static_cast<char>(0x80));
    for (int k = 0; k < 4; ++k) {
      u[k] = _mm256_xor_si256(_mm256_permute2x128_si256(c[k], c[k + 4], 0x20), flip);
      u[k + 4] = _mm256_xor_si256(_mm256_permute2x128_si256(c[k], c[k + 4], 0x31), flip);
    }
  }
}

// kPacked: the weights come from PackedWeight's layout (pk = the 8-row group's first
// block): per block the 8 f16 scales, then the vectors LoadInterleaved would build (Q8_0
// already + 128). Same values, same arithmetic: bit-identical to the unpacked tile.
template <int RN, bool kQ4, bool kVnni, bool kPacked>
HWY_INLINE void TileX8(const uint8_t* w0, size_t w_stride, size_t valid_rows, const uint8_t* pk,
                       const uint8_t* a0, size_t a_stride, size_t cols, float* y,
                       size_t y_stride) {
  constexpr size_t kBlockBytes = kQ4 ? sizeof(tensor::BlockQ4_0) : sizeof(tensor::BlockQ8_0);
  constexpr size_t kPackedBytes = PackedBlockBytes(kQ4);
  const size_t nb = cols / 32;
  const size_t sum_off = cols + nb * sizeof(float);
  const uint8_t* row[8];
  for (size_t j = 0; j < 8; ++j) {
    const size_t jj = j < valid_rows ? j : valid_rows - 1;  // missing rows repeat the last
    row[j] = w0 + jj * w_stride;
  }
  __m256 acc[RN];
  for (int t = 0; t < RN; ++t) acc[t] = _mm256_setzero_ps();
  for (size_t b = 0; b < nb; ++b) {
    __m256 dw;
    __m256i u[8];
    if constexpr (kPacked) {
      const uint8_t* blk = pk + b * kPackedBytes;
      for (size_t line = 0; line < kPackedBytes; line += 64) {
        // To L2, not L1: with one contiguous stream the L1 fill buffers were the limit
        // (135M decode, one thread, CPU time: T0 119-120 tok/s, T1 130-138).
        _mm_prefetch(reinterpret_cast<const char*>(blk) + kPrefetchBytes + line, _MM_HINT_T1);
      }
      dw = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk)));
      if constexpr (kQ4) {
        const __m256i m = _mm256_set1_epi8(0x0F);
        for (int k = 0; k < 4; ++k) {
          const __m256i d =
              _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 16 + 32 * k));
          u[k] = _mm256_and_si256(d, m);
          u[k + 4] = _mm256_and_si256(_mm256_srli_epi16(d, 4), m);
        }
      } else {
        for (int k = 0; k < 8; ++k) {
          u[k] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 16 + 32 * k));
        }
      }
    } else {
      const size_t boff = b * kBlockBytes;
      for (int j = 0; j < 8; ++j) {
        _mm_prefetch(reinterpret_cast<const char*>(row[j] + boff) + kPrefetchBytes,
                     _MM_HINT_T0);
      }
      dw = LoadScales(row, boff);
      LoadInterleaved<kQ4>(row, boff, u);
    }
    if constexpr (!kQ4 && !kVnni) {
      // Q8_0 without VNNI: w + 128 would saturate vpmaddubsw, so the sign moves onto x
      // (|w| unsigned times x * sign(w): |w| <= 128, |x| <= 127, so a pair sums to at most
      // 32512) and there is no offset to add. The block dot is the same exact integer as
      // the VNNI path's, and the float steps below are the same: the same bits.
      const __m256i flip = _mm256_set1_epi8(static_cast<char>(0x80));
      const __m256i ones = _mm256_set1_epi16(1);
      __m256i p[RN];
      for (int t = 0; t < RN; ++t) p[t] = _mm256_setzero_si256();
      for (int k = 0; k < 8; ++k) {
        const __m256i ws = _mm256_xor_si256(u[k], flip);  // w as signed bytes
        const __m256i wa = _mm256_abs_epi8(ws);            // -128 -> 0x80 = 128 unsigned
        for (int t = 0; t < RN; ++t) {
          int32_t x;
          std::memcpy(&x, a0 + t * a_stride + b * 32 + 4 * k, 4);
          const __m256i sx = _mm256_sign_epi8(_mm256_set1_epi32(x), ws);
          p[t] = _mm256_add_epi32(p[t], _mm256_madd_epi16(_mm256_maddubs_epi16(wa, sx), ones));
        }
      }
      for (int t = 0; t < RN; ++t) {
        const float* dx = reinterpret_cast<const float*>(a0 + t * a_stride + cols) + b;
        acc[t] = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(p[t]), dw),
                                 _mm256_broadcast_ss(dx), acc[t]);
      }
      continue;
    }
    for (int t = 0; t < RN; ++t) {
      const uint8_t* at = a0 + t * a_stride;
      int32_t s;
      std::memcpy(&s, at + sum_off + b * sizeof(int32_t), sizeof(s));
      __m256i p0 = _mm256_set1_epi32(kQ4 ? s : s * 16);
      __m256i p1 = _mm256_setzero_si256();
      const uint8_t* xb = at + b * 32;
      for (int k = 0; k < 8; k += 2) {
        int32_t x0, x1;
        std::memcpy(&x0, xb + 4 * k, 4);
        std::memcpy(&x1, xb + 4 * k + 4, 4);
        p0 = DotAcc<kVnni>(p0, u[k], _mm256_set1_epi32(x0));
        p1 = DotAcc<kVnni>(p1, u[k + 1], _mm256_set1_epi32(x1));
      }
      const __m256i p = _mm256_add_epi32(p0, p1);
      acc[t] = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(p), dw),
                               _mm256_broadcast_ss(reinterpret_cast<const float*>(at + cols) + b),
                               acc[t]);
    }
  }
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

template <bool kQ4, bool kVnni, bool kPacked>
void MatMulX8(const tensor::TensorView& w, const uint8_t* packed, const Activations& act,
              size_t r0, size_t r1, float* y) {
  const size_t rows = static_cast<size_t>(w.ne[1]);
  const size_t w_stride = w.row_bytes(), a_stride = act.stride_bytes, cols = act.cols;
  const auto* wbase = static_cast<const uint8_t*>(w.data);
  const size_t group_bytes = cols / 32 * PackedBlockBytes(kQ4);
  // Registers: 8 weight vectors + RN accumulators + temporaries; AVX-512 has 32.
  constexpr int kRn = HWY_TARGET == HWY_AVX3 ? 8 : 4;
  for (size_t r = r0; r < r1; r += 8) {
    // A packed group starts at a multiple of 8 rows: callers split rows in units of 8.
    const size_t valid = std::min<size_t>(8, r1 - r);
    const uint8_t* pk = kPacked ? packed + r / 8 * group_bytes : nullptr;
    size_t t = 0;
    for (; t + kRn <= act.num_tokens; t += kRn) {
      TileX8<kRn, kQ4, kVnni, kPacked>(wbase + r * w_stride, w_stride, valid, pk,
                                       act.q8 + t * a_stride, a_stride, cols, y + t * rows + r,
                                       rows);
    }
    for (; t < act.num_tokens; ++t) {
      TileX8<1, kQ4, kVnni, kPacked>(wbase + r * w_stride, w_stride, valid, pk,
                                     act.q8 + t * a_stride, a_stride, cols, y + t * rows + r,
                                     rows);
    }
  }
}

#if HWY_TARGET == HWY_AVX3
// ---- 512-bit VNNI tiles over PackedWeight's kPackedLanePairs layout. ----
//
// A 64-byte weight vector holds 8 quant bytes of each of the 8 rows (lane pair j = row
// j), so one vpdpbusd against a broadcast qword of the activation does the work of two
// 256-bit ones: 4 (Q4_0) / 4 (Q8_0) per block and token instead of 8. The pair's two int32
// halves are then added (exact), giving the same per-row block dot as TileX8, and the same
// float steps follow (cvt, * dw, fma with dx) on lanes whose odd half is ignored: the
// results are bit-identical to TileX8's and to the unpacked path.
HWY_INLINE __m512i DotAcc512(__m512i acc, __m512i u, __m512i s) {
  asm("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(u), "v"(s));
  return acc;
}

template <int RN, bool kQ4>
HWY_INLINE void TilePairs(const uint8_t* pk, size_t valid_rows, const uint8_t* a0,
                          size_t a_stride, size_t cols, float* y, size_t y_stride) {
  constexpr size_t kPackedBytes = PackedBlockBytes(kQ4);
  const size_t nb = cols / 32;
  const size_t sum_off = cols + nb * sizeof(float);
  // Row j's scale in both lanes of pair j.
  const __m512i dup = _mm512_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
  __m512 acc[RN];
  for (int t = 0; t < RN; ++t) acc[t] = _mm512_setzero_ps();
  for (size_t b = 0; b < nb; ++b) {
    const uint8_t* blk = pk + b * kPackedBytes;
    for (size_t line = 0; line < kPackedBytes; line += 64) {
      _mm_prefetch(reinterpret_cast<const char*>(blk) + kPrefetchBytes + line, _MM_HINT_T1);
    }
    const __m512 dw = _mm512_permutexvar_ps(
        dup, _mm512_castps256_ps512(
                 _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk)))));
    __m512i u[4];  // u[k]: quant bytes 8k..8k+7 of each row
    if constexpr (kQ4) {
      // Q4_0: byte i holds element i (low nibble) and element i + 16 (high nibble).
      const __m512i m = _mm512_set1_epi8(0x0F);
      const __m512i lo = _mm512_loadu_si512(blk + 16), hi = _mm512_loadu_si512(blk + 80);
      u[0] = _mm512_and_si512(lo, m);
      u[1] = _mm512_and_si512(hi, m);
      u[2] = _mm512_and_si512(_mm512_srli_epi16(lo, 4), m);
      u[3] = _mm512_and_si512(_mm512_srli_epi16(hi, 4), m);
    } else {
      for (int k = 0; k < 4; ++k) u[k] = _mm512_loadu_si512(blk + 16 + 64 * k);
    }
    for (int t = 0; t < RN; ++t) {
      const uint8_t* at = a0 + t * a_stride;
      int32_t s;
      std::memcpy(&s, at + sum_off + b * sizeof(int32_t), sizeof(s));
      const uint8_t* xb = at + b * 32;
      int64_t x0, x1, x2, x3;
      std::memcpy(&x0, xb, 8);
      std::memcpy(&x1, xb + 8, 8);
      std::memcpy(&x2, xb + 16, 8);
      std::memcpy(&x3, xb + 24, 8);
      __m512i p0 = DotAcc512(_mm512_setzero_si512(), u[0], _mm512_set1_epi64(x0));
      __m512i p1 = DotAcc512(_mm512_setzero_si512(), u[1], _mm512_set1_epi64(x1));
      p0 = DotAcc512(p0, u[2], _mm512_set1_epi64(x2));
      p1 = DotAcc512(p1, u[3], _mm512_set1_epi64(x3));
      __m512i p = _mm512_add_epi32(p0, p1);
      p = _mm512_add_epi32(p, _mm512_srli_epi64(p, 32));  // lane 2j: row j's block dot
      p = _mm512_add_epi32(p, _mm512_set1_epi32(kQ4 ? s : s * 16));
      acc[t] = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(p), dw),
                               _mm512_set1_ps(reinterpret_cast<const float*>(at + cols)[b]),
                               acc[t]);
    }
  }
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 0, 0, 0, 0, 0, 0, 0, 0);
  for (int t = 0; t < RN; ++t) {
    const __m256 r = _mm512_castps512_ps256(_mm512_permutexvar_ps(even, acc[t]));
    if (valid_rows == 8) {
      _mm256_storeu_ps(y + t * y_stride, r);
    } else {
      alignas(32) float tmp[8];
      _mm256_store_ps(tmp, r);
      for (size_t j = 0; j < valid_rows; ++j) y[t * y_stride + j] = tmp[j];
    }
  }
}

// Prefetch distance when the weights stream from DRAM (WeightSource::kMemory): 2 KiB to
// L1 beat the cache distance above (8 KiB to L2) by 5.5-7.7 % on 1B-shaped Q4_0 decode in
// three interleaved rounds (4 KiB to L2 and 1 KiB to L1 were no better than 8 KiB); a
// plain two-thread read of 1 GiB here does 30 GB/s with 8 KiB and 36 with 1-1.5 KiB. A
// model that fits in the last-level cache wants the long one (a 78 MB model 1B wide:
// 579 tok/s with 8 KiB, 390 with 2 KiB).
constexpr size_t kPrefetchBytesMemory = 2048;

// One token over the same layout with 256-bit vectors (rows 0-3 in the low 32 bytes of
// each 64-byte vector, rows 4-7 in the high): what decode runs. Heavy 512-bit integer ops
// cost this CPU clock speed, and decode waits on memory anyway (1B Q4_0 tg128: 38.7 tok/s
// with TilePairs<1>, 41.6 with this). Same integers, same float steps: same bits.
template <bool kQ4, bool kFromMemory>
HWY_INLINE void TilePairs256(const uint8_t* pk, size_t valid_rows, const uint8_t* a0,
                             size_t cols, float* y) {
  constexpr size_t kPackedBytes = PackedBlockBytes(kQ4);
  const size_t nb = cols / 32;
  const size_t sum_off = cols + nb * sizeof(float);
  const __m256i even = _mm256_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14);
  __m256 acc = _mm256_setzero_ps();
  for (size_t b = 0; b < nb; ++b) {
    const uint8_t* blk = pk + b * kPackedBytes;
    for (size_t line = 0; line < kPackedBytes; line += 64) {
      if constexpr (kFromMemory) {
        _mm_prefetch(reinterpret_cast<const char*>(blk) + kPrefetchBytesMemory + line,
                     _MM_HINT_T0);
      } else {
        _mm_prefetch(reinterpret_cast<const char*>(blk) + kPrefetchBytes + line, _MM_HINT_T1);
      }
    }
    const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk)));
    int32_t s;
    std::memcpy(&s, a0 + sum_off + b * sizeof(int32_t), sizeof(s));
    const uint8_t* xb = a0 + b * 32;
    __m256i x[4];
    for (int k = 0; k < 4; ++k) {
      int64_t v;
      std::memcpy(&v, xb + 8 * k, 8);
      x[k] = _mm256_set1_epi64x(v);
    }
    __m256i ph[2];
    for (int h = 0; h < 2; ++h) {
      __m256i u[4];
      if constexpr (kQ4) {
        const __m256i m = _mm256_set1_epi8(0x0F);
        const __m256i lo = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 16 + 32 * h));
        const __m256i hi = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 80 + 32 * h));
        u[0] = _mm256_and_si256(lo, m);
        u[1] = _mm256_and_si256(hi, m);
        u[2] = _mm256_and_si256(_mm256_srli_epi16(lo, 4), m);
        u[3] = _mm256_and_si256(_mm256_srli_epi16(hi, 4), m);
      } else {
        for (int k = 0; k < 4; ++k) {
          u[k] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 16 + 64 * k + 32 * h));
        }
      }
      __m256i p0 = DotAcc<true>(_mm256_setzero_si256(), u[0], x[0]);
      __m256i p1 = DotAcc<true>(_mm256_setzero_si256(), u[1], x[1]);
      p0 = DotAcc<true>(p0, u[2], x[2]);
      p1 = DotAcc<true>(p1, u[3], x[3]);
      const __m256i p = _mm256_add_epi32(p0, p1);
      ph[h] = _mm256_add_epi32(p, _mm256_srli_epi64(p, 32));  // lane 2r: row 4h + r
    }
    __m256i p = _mm256_permutex2var_epi32(ph[0], even, ph[1]);
    p = _mm256_add_epi32(p, _mm256_set1_epi32(kQ4 ? s : s * 16));
    acc = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(p), dw),
                          _mm256_broadcast_ss(reinterpret_cast<const float*>(a0 + cols) + b), acc);
  }
  if (valid_rows == 8) {
    _mm256_storeu_ps(y, acc);
  } else {
    alignas(32) float tmp[8];
    _mm256_store_ps(tmp, acc);
    for (size_t j = 0; j < valid_rows; ++j) y[j] = tmp[j];
  }
}

template <bool kQ4>
void MatMulPairs(const uint8_t* packed, bool from_memory, const Activations& act, size_t rows,
                 size_t r0, size_t r1, float* y) {
  const size_t a_stride = act.stride_bytes, cols = act.cols;
  const size_t group_bytes = cols / 32 * PackedBlockBytes(kQ4);
  constexpr int kRn = 8;
  // Whole 16-token tiles on the AMX unit where there is one (same bits, amx.h).
  size_t amx_tokens = 0;
  if (act.num_tokens >= 16 && AmxUsable()) {
    amx_tokens = act.num_tokens / 16 * 16;
    MatMulPairsAmx(kQ4, packed, act, rows, r0, r1, amx_tokens, y);
  }
  for (size_t r = r0; r < r1; r += 8) {
    const size_t valid = std::min<size_t>(8, r1 - r);
    const uint8_t* pk = packed + r / 8 * group_bytes;
    size_t t = amx_tokens;
    for (; t + kRn <= act.num_tokens; t += kRn) {
      TilePairs<kRn, kQ4>(pk, valid, act.q8 + t * a_stride, a_stride, cols, y + t * rows + r,
                          rows);
    }
    for (; t < act.num_tokens; ++t) {
      if (from_memory) {
        TilePairs256<kQ4, true>(pk, valid, act.q8 + t * a_stride, cols, y + t * rows + r);
      } else {
        TilePairs256<kQ4, false>(pk, valid, act.q8 + t * a_stride, cols, y + t * rows + r);
      }
    }
  }
}
#endif  // HWY_TARGET == HWY_AVX3

bool HasVnni() {
#if HWY_TARGET == HWY_AVX3
  static const bool vnni = __builtin_cpu_supports("avx512vnni");
  return vnni;
#else
  return false;
#endif
}

// Interleaved 8-row tiles everywhere: 512-bit lane pairs with VNNI (256-bit for decode),
// else 256-bit lanes (Q8_0 through the sign trick, see TileX8).
template <bool kQ4>
void MatMulQ8Dispatch(const tensor::TensorView& w, const uint8_t* packed, bool from_memory,
                      const Activations& act, size_t r0, size_t r1, float* y) {
  if (HasVnni()) {
#if HWY_TARGET == HWY_AVX3
    if (packed != nullptr) {
      MatMulPairs<kQ4>(packed, from_memory, act, static_cast<size_t>(w.ne[1]), r0, r1, y);
      return;
    }
#else
    (void)from_memory;
#endif
    MatMulX8<kQ4, true, false>(w, packed, act, r0, r1, y);
  } else if (packed != nullptr) {
    MatMulX8<kQ4, false, true>(w, packed, act, r0, r1, y);
  } else {
    MatMulX8<kQ4, false, false>(w, packed, act, r0, r1, y);
  }
}

// The PackedWeight layout this target's MatMul reads for `dtype`.
int PackedLayoutImpl(DType dtype) {
  if (dtype != DType::kQ4_0 && dtype != DType::kQ8_0) return kPackedNone;
  return HasVnni() ? kPackedLanePairs : kPackedLanes;
}

void QuantizeActQ8Impl(const float* x, size_t n, int8_t* q, float* d, int32_t* neg8sum) {
  const __m256 sign_mask = _mm256_set1_ps(-0.0f);
  const __m256 half = _mm256_set1_ps(0.5f);
  const __m256 one = _mm256_set1_ps(1.0f);
  for (size_t b = 0; b < n / 32; ++b) {
    __m256 v[4];
    __m256 amax = _mm256_setzero_ps();
    for (int k = 0; k < 4; ++k) {
      v[k] = _mm256_loadu_ps(x + b * 32 + 8 * k);
      amax = _mm256_max_ps(amax, _mm256_andnot_ps(sign_mask, v[k]));
    }
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(amax), _mm256_extractf128_ps(amax, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    const float scale = _mm_cvtss_f32(m) / 127.0f;
    const float inv = scale != 0.0f ? 1.0f / scale : 0.0f;
    d[b] = scale;
    const __m256 vinv = _mm256_set1_ps(inv);
    __m256i qi[4];
    for (int k = 0; k < 4; ++k) {
      // round half away from zero, exactly like std::round: trunc, then add sign(v) when
      // the (exact) fractional part has magnitude >= 0.5.
      const __m256 s = _mm256_mul_ps(v[k], vinv);
      const __m256 t = _mm256_round_ps(s, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
      const __m256 frac = _mm256_andnot_ps(sign_mask, _mm256_sub_ps(s, t));
      const __m256 bump = _mm256_and_ps(_mm256_cmp_ps(frac, half, _CMP_GE_OQ),
                                        _mm256_or_ps(one, _mm256_and_ps(s, sign_mask)));
      qi[k] = _mm256_cvtps_epi32(_mm256_add_ps(t, bump));
    }
    const __m256i sum4 = _mm256_add_epi32(_mm256_add_epi32(qi[0], qi[1]),
                                          _mm256_add_epi32(qi[2], qi[3]));
    __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(sum4), _mm256_extracti128_si256(sum4, 1));
    s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0x4E));
    s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0xB1));
    neg8sum[b] = -8 * _mm_cvtsi128_si32(s4);
    const __m256i p01 = _mm256_packs_epi32(qi[0], qi[1]);
    const __m256i p23 = _mm256_packs_epi32(qi[2], qi[3]);
    __m256i p = _mm256_packs_epi16(p01, p23);
    // packs works per 128-bit lane: restore element order.
    p = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(q + b * 32), p);
  }
}

#else

int PackedLayoutImpl(DType) { return kPackedNone; }

void QuantizeActQ8Impl(const float* x, size_t n, int8_t* q, float* d, int32_t* neg8sum) {
  for (size_t b = 0; b < n / 32; ++b) {
    float amax = 0.0f;
    for (size_t i = 0; i < 32; ++i) {
      const float a = x[b * 32 + i] < 0 ? -x[b * 32 + i] : x[b * 32 + i];
      amax = a > amax ? a : amax;
    }
    const float scale = amax / 127.0f;
    const float inv = scale != 0.0f ? 1.0f / scale : 0.0f;
    d[b] = scale;
    for (size_t i = 0; i < 32; ++i) {
      const float s = x[b * 32 + i] * inv;
      const float t = static_cast<float>(static_cast<int32_t>(s));
      const float frac = s - t;
      float r = t;
      if (frac >= 0.5f) r += 1.0f;
      if (frac <= -0.5f) r -= 1.0f;
      q[b * 32 + i] = static_cast<int8_t>(static_cast<int32_t>(r));
    }
    int32_t sum = 0;
    for (size_t i = 0; i < 32; ++i) sum += q[b * 32 + i];
    neg8sum[b] = -8 * sum;
  }
}

#endif  // PK_X86_INT8

void MatMulRowsImpl(const tensor::TensorView& w, const uint8_t* packed, int packed_layout,
                    bool from_memory, const Activations& act, size_t r0, size_t r1, float* y) {
  const size_t rows = static_cast<size_t>(w.ne[1]);
  const size_t cols = act.cols;
  const auto* wbase = static_cast<const uint8_t*>(w.data);
  const size_t w_stride = w.row_bytes();
  switch (w.dtype) {
    case DType::kQ8_0:
    case DType::kQ4_0: {
#if PK_X86_INT8
      if (PackedLayoutImpl(w.dtype) != packed_layout) packed = nullptr;  // another target's
      if (w.dtype == DType::kQ4_0) {
        MatMulQ8Dispatch<true>(w, packed, from_memory, act, r0, r1, y);
      } else {
        MatMulQ8Dispatch<false>(w, packed, from_memory, act, r0, r1, y);
      }
#else
      (void)packed;
      (void)packed_layout;
      (void)from_memory;
      const bool q4 = w.dtype == DType::kQ4_0;
      for (size_t r = r0; r < r1; ++r) {
        for (size_t t = 0; t < act.num_tokens; ++t) {
          const uint8_t* a = act.q8 + t * act.stride_bytes;
          y[t * rows + r] = DotQ8Portable(wbase + r * w_stride, q4,
                                          reinterpret_cast<const int8_t*>(a),
                                          reinterpret_cast<const float*>(a + cols), cols / 32);
        }
      }
#endif
      return;
    }
    case DType::kQ2_K: case DType::kQ3_K: case DType::kQ4_K: case DType::kQ5_K:
    case DType::kQ6_K: case DType::kIQ4_XS:
      MatMulKQuantRows(w, packed, packed_layout, from_memory, act, r0, r1, y);  // matmul_kquant.cc
      return;
    case DType::kF32:
      MatMulFloatRows<float>(wbase, w_stride, act, rows, r0, r1, y);
      return;
    case DType::kF16:
      MatMulFloatRows<hwy::float16_t>(wbase, w_stride, act, rows, r0, r1, y);
      return;
    case DType::kBF16:
      MatMulFloatRows<hwy::bfloat16_t>(wbase, w_stride, act, rows, r0, r1, y);
      return;
    case DType::kIQ2_XXS: case DType::kIQ2_XS: case DType::kIQ2_S: case DType::kIQ3_XXS:
    case DType::kIQ3_S: case DType::kIQ1_S: case DType::kIQ1_M:
      MatMulRowsDequant(w, act, r0, r1, y);  // reference path, matmul_dequant.cc
      return;
    case DType::kQ4_1: case DType::kQ5_0: case DType::kQ5_1: case DType::kIQ4_NL:
      MatMulRowsLegacy(w, packed, packed_layout, from_memory, act, r0, r1, y);  // matmul_legacy.cc
      return;
    case DType::kQ8_K:
      break;
  }
}

// Per target: which dtypes have a SIMD kernel here (see MatMulRowsImpl's switch).
MatMulPath MatMulPathImpl(DType dtype) {
  switch (dtype) {
    case DType::kF32: case DType::kF16: case DType::kBF16:
      return MatMulPath::kFast;  // Highway vectors on every target
    case DType::kQ8_0: case DType::kQ4_0:
    case DType::kQ4_1: case DType::kQ5_0: case DType::kQ5_1: case DType::kIQ4_NL:
      return PK_X86_INT8 ? MatMulPath::kFast : MatMulPath::kReference;
    case DType::kQ2_K: case DType::kQ3_K: case DType::kQ4_K: case DType::kQ5_K:
    case DType::kQ6_K: case DType::kIQ4_XS:
      return KQuantPath(dtype);  // matmul_kquant.cc
    case DType::kIQ2_XXS: case DType::kIQ2_XS: case DType::kIQ2_S: case DType::kIQ3_XXS:
    case DType::kIQ3_S: case DType::kIQ1_S: case DType::kIQ1_M:
      return MatMulPath::kReference;  // dequantize a row, f32 dot (matmul_dequant.cc)
    default:
      return MatMulPath::kUnsupported;
  }
}

const char* TargetNameImpl() { return hwy::TargetName(HWY_TARGET); }

}  // namespace HWY_NAMESPACE
}  // namespace pocket::kernels::cpu
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace pocket::kernels::cpu {

HWY_EXPORT(MatMulRowsImpl);
HWY_EXPORT(QuantizeActQ8Impl);
HWY_EXPORT(TargetNameImpl);
HWY_EXPORT(MatMulPathImpl);
HWY_EXPORT(PackedLayoutImpl);

void MatMulRows(const tensor::TensorView& w, const uint8_t* packed, int packed_layout,
                bool from_memory, const Activations& act, size_t r0, size_t r1, float* y) {
  HWY_DYNAMIC_DISPATCH(MatMulRowsImpl)(w, packed, packed_layout, from_memory, act, r0, r1, y);
}
int PackedLayout(tensor::DType dtype) {
  if (LegacyPackedBlockBytes(dtype) != 0) return LegacyPackedLayout();  // matmul_legacy.cc
  if (KQuantPackedBlockBytes(dtype) != 0) return KQuantPackedLayout(dtype);  // matmul_kquant.cc
  return HWY_DYNAMIC_DISPATCH(PackedLayoutImpl)(dtype);
}
void QuantizeActQ8(const float* x, size_t n, int8_t* q, float* d, int32_t* neg8sum) {
  HWY_DYNAMIC_DISPATCH(QuantizeActQ8Impl)(x, n, q, d, neg8sum);
}
const char* TargetName() { return HWY_DYNAMIC_DISPATCH(TargetNameImpl)(); }
MatMulPath MatMulPathOf(tensor::DType dtype) {
  return HWY_DYNAMIC_DISPATCH(MatMulPathImpl)(dtype);
}

std::vector<int64_t> CompiledTargets() { return hwy::SupportedAndGeneratedTargets(); }
const char* TargetNameOf(int64_t target) { return hwy::TargetName(target); }
void SetTargetForTest(int64_t target) { hwy::SetSupportedTargetsForTest(target); }
bool LimitToAvx2(bool limit) {
  hwy::DisableTargets(0);
  if (!limit) return true;
  const std::vector<int64_t> targets = hwy::SupportedAndGeneratedTargets();
  if (std::find(targets.begin(), targets.end(), HWY_AVX2) == targets.end()) return false;
  hwy::DisableTargets(HWY_AVX2 - 1);  // every x86 target above AVX2 (lower bits are better)
  return true;
}

}  // namespace pocket::kernels::cpu
#endif  // HWY_ONCE
