// MatMul bodies for the 32-element fallback types Q4_1, Q5_0, Q5_1 and IQ4_NL, compiled
// once per Highway target (foreach_target) and reached from MatMulRowsImpl (matmul.cc)
// through MatMulRowsLegacy. They take the kind-1 activation (cpu.h: int8 quants, a float
// scale and -8 * sum per 32-block), so each block's dot is an exact integer:
//   Q5_0:   sum((u - 16) * x) = sum(u * x) + 2 * neg8sum        (u = 5-bit code, 0..31)
//   Q4_1/Q5_1: sum(d*u + m) * dx*x = d*dx * sum(u * x) + m*dx * sum(x), sum(x) = -neg8sum/8
//   IQ4_NL: sum(v * x), v = kIQ4NLValues[nibble] (int8)
// The float steps per (row, token, block) are fixed (cvt of the integer dot, times the
// product of the two scales, accumulated in 8 float lanes; Q4_1/Q5_1's min term in a
// scalar), and the lanes are summed in a fixed order at the end, so every (row, token)
// result is the same bits whatever the batch, the token tile and the row split (batch
// invariance). Targets differ in the order of float additions, not in the integers.
//
// x86 (AVX2, AVX-512): per row, a block's 32 codes are unpacked once into a byte vector in
// element order and shared by a tile of tokens (prefill); the block dot is vpdpbusd with
// AVX512-VNNI, else vpmaddubsw + vpmaddwd. Q5's fifth bits come from qh with a byte mask
// (AVX-512) or a shuffle + compare (AVX2); IQ4_NL's table lookup is one vpshufb.
// Other targets: portable loops per (row, token).
#include <cstdint>
#include <cstring>

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/cpu/matmul_legacy.cc"
#include "kernels/cpu/hwy_targets.h"  // IWYU pragma: keep
#include "hwy/foreach_target.h"       // IWYU pragma: keep
#include "hwy/highway.h"
#include "kernels/cpu/cpu.h"
#include "tensor/dtype.h"
#include "tensor/fp16.h"

HWY_BEFORE_NAMESPACE();
namespace pocket::kernels::cpu {
namespace HWY_NAMESPACE {
using tensor::DType;

#undef PK_LEGACY_X86
#if HWY_TARGET == HWY_AVX2 || HWY_TARGET == HWY_AVX3
#define PK_LEGACY_X86 1
#else
#define PK_LEGACY_X86 0
#endif

// Internal linkage: matmul.cc's per-target namespaces hold functions of the same names.
namespace {

// Byte offsets inside each block type (ggml-common.h): d, then m (Q4_1, Q5_1), then qh
// (Q5_0, Q5_1), then the 16 nibble bytes.
template <DType kType>
struct Layout;
template <>
struct Layout<DType::kQ4_1> {
  static constexpr size_t kBytes = sizeof(tensor::BlockQ4_1), kQh = 0, kQs = 4;
  static constexpr bool kMin = true, kFive = false;
};
template <>
struct Layout<DType::kQ5_0> {
  static constexpr size_t kBytes = sizeof(tensor::BlockQ5_0), kQh = 2, kQs = 6;
  static constexpr bool kMin = false, kFive = true;
};
template <>
struct Layout<DType::kQ5_1> {
  static constexpr size_t kBytes = sizeof(tensor::BlockQ5_1), kQh = 4, kQs = 8;
  static constexpr bool kMin = true, kFive = true;
};
template <>
struct Layout<DType::kIQ4_NL> {
  static constexpr size_t kBytes = sizeof(tensor::BlockIQ4_NL), kQh = 0, kQs = 2;
  static constexpr bool kMin = false, kFive = false;
};

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

bool HasVnni() {
#if HWY_TARGET == HWY_AVX3
  static const bool vnni = __builtin_cpu_supports("avx512vnni");
  return vnni;
#else
  return false;
#endif
}

HWY_INLINE float HorizontalSum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// The block's 32 codes in element order as bytes: nibbles (0..15), with the fifth bit for
// Q5 (0..31), or for IQ4_NL the table values (signed int8 without VNNI; + 128, i.e.
// unsigned 1..241, with VNNI).
template <DType kType, bool kVnni>
HWY_INLINE __m256i UnpackBlock(const uint8_t* blk) {
  using L = Layout<kType>;
  const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + L::kQs));
  __m256i u = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(q, 4), q),
                               _mm256_set1_epi8(0x0F));
  if constexpr (kType == DType::kIQ4_NL) {
    // kIQ4NLValues (+ 128 for the unsigned operand of vpdpbusd), in both 128-bit lanes.
    const __m256i table =
        kVnni ? _mm256_setr_epi8(1, 24, 45, 63, 79, 93, 106, 118, -127, -115, -103, -90, -75,
                                 -59, -39, -15, 1, 24, 45, 63, 79, 93, 106, 118, -127, -115,
                                 -103, -90, -75, -59, -39, -15)
              : _mm256_setr_epi8(-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53,
                                 69, 89, 113, -127, -104, -83, -65, -49, -35, -22, -10, 1, 13,
                                 25, 38, 53, 69, 89, 113);
    return _mm256_shuffle_epi8(table, u);
  }
  if constexpr (L::kFive) {
    const uint32_t qh = Load32(blk + L::kQh);
#if HWY_TARGET == HWY_AVX3
    u = _mm256_mask_add_epi8(u, static_cast<__mmask32>(qh), u, _mm256_set1_epi8(16));
#else
    // Byte e takes byte e / 8 of qh, keeps bit e % 8 (all other bits forced to one), and
    // compares with all-ones.
    const __m256i spread = _mm256_shuffle_epi8(
        _mm256_set1_epi32(static_cast<int32_t>(qh)),
        _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202, 0x0101010101010101, 0));
    const __m256i bits = _mm256_cmpeq_epi8(
        _mm256_or_si256(spread, _mm256_set1_epi64x(0x7fbfdfeff7fbfdfe)),
        _mm256_set1_epi64x(-1));
    u = _mm256_or_si256(u, _mm256_and_si256(bits, _mm256_set1_epi8(16)));
#endif
  }
  return u;
}

// Per 32-bit lane, the sum of four products of the block's codes with the activation.
// vpdpbusd by inline asm (Highway's AVX3 target does not enable the VNNI intrinsics; the
// caller checks the CPU at run time). Without VNNI: vpmaddubsw + vpmaddwd, exact since a
// pair sums to at most 2 * 31 * 128 (Q4/Q5 codes are the unsigned operand) or 2 * 127 * 127
// (IQ4_NL: |v| unsigned times sign(x, v)).
template <DType kType, bool kVnni>
HWY_INLINE __m256i BlockDot(__m256i u, __m256i x) {
#if HWY_TARGET == HWY_AVX3
  if constexpr (kVnni) {
    __m256i acc = _mm256_setzero_si256();
    asm("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(u), "v"(x));
    return acc;
  }
#endif
  __m256i p;
  if constexpr (kType == DType::kIQ4_NL) {
    p = _mm256_maddubs_epi16(_mm256_abs_epi8(u), _mm256_sign_epi8(x, u));
  } else {
    p = _mm256_maddubs_epi16(u, x);
  }
  return _mm256_madd_epi16(p, _mm256_set1_epi16(1));
}

// One row against RN tokens (activation rows a[0..RN)); y[t * y_stride] gets token t.
template <DType kType, int RN, bool kVnni>
HWY_INLINE void RowTile(const uint8_t* wrow, const ActRow* a, size_t nb, float* y,
                        size_t y_stride) {
  using L = Layout<kType>;
  // Integer offset folded into lane 0 of a block's dot: Q5_0's -16 * sum(x); IQ4_NL's
  // -128 * sum(x) when its codes carry + 128 (VNNI).
  constexpr int kOffsetMul = kType == DType::kQ5_0 ? 2 : (kType == DType::kIQ4_NL && kVnni) ? 16 : 0;
  __m256 acc[RN];
  float mins[RN];
  for (int t = 0; t < RN; ++t) {
    acc[t] = _mm256_setzero_ps();
    mins[t] = 0.0f;
  }
  for (size_t b = 0; b < nb; ++b) {
    const uint8_t* blk = wrow + b * L::kBytes;
    const __m256i u = UnpackBlock<kType, kVnni>(blk);
    float dw, mw = 0.0f;
    if constexpr (L::kMin) {
      const __m128 dm = _mm_cvtph_ps(_mm_cvtsi32_si128(static_cast<int32_t>(Load32(blk))));
      dw = _mm_cvtss_f32(dm);
      mw = _mm_cvtss_f32(_mm_movehdup_ps(dm));
    } else {
      dw = _cvtsh_ss(Load16(blk));
    }
    for (int t = 0; t < RN; ++t) {
      const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a[t].q + 32 * b));
      __m256i p = BlockDot<kType, kVnni>(u, x);
      if constexpr (kOffsetMul != 0) {
        p = _mm256_add_epi32(
            p, _mm256_zextsi128_si256(_mm_cvtsi32_si128(kOffsetMul * a[t].neg8sum[b])));
      }
      const float dx = a[t].d[b];
      acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(dw * dx), acc[t]);
      if constexpr (L::kMin) {
        mins[t] += mw * dx * static_cast<float>(-a[t].neg8sum[b] / 8);
      }
    }
  }
  for (int t = 0; t < RN; ++t) y[t * y_stride] = HorizontalSum(acc[t]) + mins[t];
}

template <DType kType, bool kVnni>
void RowsX86(const tensor::TensorView& w, const Activations& act, size_t r0, size_t r1,
             float* y) {
  const size_t rows = static_cast<size_t>(w.ne[1]), nb = act.cols / 32;
  const auto* wbase = static_cast<const uint8_t*>(w.data);
  const size_t w_stride = w.row_bytes();
  // Token tile: AVX-512 has 32 vector registers, AVX2 16.
  constexpr int kRn = HWY_TARGET == HWY_AVX3 ? 8 : 4;
  for (size_t r = r0; r < r1; ++r) {
    const uint8_t* wrow = wbase + r * w_stride;
    size_t t = 0;
    ActRow a[kRn];
    for (; t + kRn <= act.num_tokens; t += kRn) {
      for (int i = 0; i < kRn; ++i) a[i] = ActRowOf(act, t + i);
      RowTile<kType, kRn, kVnni>(wrow, a, nb, y + t * rows + r, rows);
    }
    for (; t < act.num_tokens; ++t) {
      a[0] = ActRowOf(act, t);
      RowTile<kType, 1, kVnni>(wrow, a, nb, y + t * rows + r, rows);
    }
  }
}

template <DType kType>
void Rows(const tensor::TensorView& w, const Activations& act, size_t r0, size_t r1, float* y) {
  if (HasVnni()) {
    RowsX86<kType, true>(w, act, r0, r1, y);
  } else {
    RowsX86<kType, false>(w, act, r0, r1, y);
  }
}

#else

template <DType kType>
void Rows(const tensor::TensorView& w, const Activations& act, size_t r0, size_t r1, float* y) {
  RowsPortable<kType>(w, act, r0, r1, y);
}

#endif  // PK_LEGACY_X86

}  // namespace

void MatMulRowsLegacyImpl(const tensor::TensorView& w, const Activations& act, size_t r0,
                          size_t r1, float* y) {
  switch (w.dtype) {
    case DType::kQ4_1: Rows<DType::kQ4_1>(w, act, r0, r1, y); return;
    case DType::kQ5_0: Rows<DType::kQ5_0>(w, act, r0, r1, y); return;
    case DType::kQ5_1: Rows<DType::kQ5_1>(w, act, r0, r1, y); return;
    case DType::kIQ4_NL: Rows<DType::kIQ4_NL>(w, act, r0, r1, y); return;
    default: return;  // MatMulRowsImpl routes only the four types here
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace pocket::kernels::cpu
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace pocket::kernels::cpu {

HWY_EXPORT(MatMulRowsLegacyImpl);

void MatMulRowsLegacy(const tensor::TensorView& w, const Activations& act, size_t r0,
                      size_t r1, float* y) {
  HWY_DYNAMIC_DISPATCH(MatMulRowsLegacyImpl)(w, act, r0, r1, y);
}

}  // namespace pocket::kernels::cpu
#endif  // HWY_ONCE
