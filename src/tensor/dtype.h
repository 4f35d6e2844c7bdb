// Element types of tensors and the exact block layouts of GGUF/ggml's quantized types.
// The numeric values of DType are ggml's type ids as stored in GGUF tensor infos.
// Layouts follow ggml-common.h bit for bit, so files quantized by llama.cpp load as they are.
// Thread safety: constants and pure functions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace pocket::tensor {

enum class DType : uint32_t {
  kF32 = 0,
  kF16 = 1,
  kQ4_0 = 2,
  kQ4_1 = 3,
  kQ5_0 = 6,
  kQ5_1 = 7,
  kQ8_0 = 8,
  kQ2_K = 10,
  kQ3_K = 11,
  kQ4_K = 12,
  kQ5_K = 13,
  kQ6_K = 14,
  kQ8_K = 15,  // activations only (256-blocks for K-quant dot products); never a weight here
  kIQ2_XXS = 16,
  kIQ2_XS = 17,
  kIQ3_XXS = 18,
  kIQ1_S = 19,
  kIQ4_NL = 20,
  kIQ3_S = 21,
  kIQ2_S = 22,
  kIQ4_XS = 23,
  kIQ1_M = 29,
  kBF16 = 30,
};

// Every DType, in ggml id order (for tables and exhaustive tests).
inline constexpr DType kAllDTypes[] = {
    DType::kF32,     DType::kF16,    DType::kQ4_0,    DType::kQ4_1,  DType::kQ5_0,
    DType::kQ5_1,    DType::kQ8_0,   DType::kQ2_K,    DType::kQ3_K,  DType::kQ4_K,
    DType::kQ5_K,    DType::kQ6_K,   DType::kQ8_K,    DType::kIQ2_XXS, DType::kIQ2_XS,
    DType::kIQ3_XXS, DType::kIQ1_S,  DType::kIQ4_NL,  DType::kIQ3_S, DType::kIQ2_S,
    DType::kIQ4_XS,  DType::kIQ1_M,  DType::kBF16};

// The DType for a ggml type id, or nullopt for ids Pocket does not support.
std::optional<DType> DTypeFromGgml(uint32_t ggml_type);
std::string_view DTypeName(DType t);  // "F32", "Q4_K", ...

// Elements per block (1 for plain types) and bytes per block.
constexpr size_t BlockElements(DType t) {
  switch (t) {
    case DType::kF32: case DType::kF16: case DType::kBF16: return 1;
    case DType::kQ4_0: case DType::kQ4_1: case DType::kQ5_0: case DType::kQ5_1:
    case DType::kQ8_0: case DType::kIQ4_NL:
      return 32;
    case DType::kQ2_K: case DType::kQ3_K: case DType::kQ4_K: case DType::kQ5_K:
    case DType::kQ6_K: case DType::kQ8_K: case DType::kIQ2_XXS: case DType::kIQ2_XS:
    case DType::kIQ3_XXS: case DType::kIQ1_S: case DType::kIQ3_S: case DType::kIQ2_S:
    case DType::kIQ4_XS: case DType::kIQ1_M:
      return 256;
  }
  return 0;
}
constexpr size_t BlockBytes(DType t);

// Bytes of a row of `n` elements. REQUIRES: n % BlockElements(t) == 0.
constexpr size_t RowBytes(DType t, size_t n) { return n / BlockElements(t) * BlockBytes(t); }

using f16_t = uint16_t;   // IEEE binary16 bits
using bf16_t = uint16_t;  // bfloat16 bits

constexpr size_t kQK = 32;    // block size of Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, IQ4_NL
constexpr size_t kQKK = 256;  // super-block size of the K-quants
constexpr size_t kKScaleSize = 12;

// x = d * q
struct BlockQ8_0 {
  f16_t d;
  int8_t qs[kQK];
};
// x = d * (q - 8); byte j: element j in the low nibble, element j + 16 in the high nibble.
struct BlockQ4_0 {
  f16_t d;
  uint8_t qs[kQK / 2];
};
// x = d * q + m
struct BlockQ4_1 {
  f16_t d;
  f16_t m;
  uint8_t qs[kQK / 2];
};
// x = d * (q - 16); q = nibble (as Q4_0) | bit j of qh (little-endian u32) << 4.
struct BlockQ5_0 {
  f16_t d;
  uint8_t qh[4];
  uint8_t qs[kQK / 2];
};
// x = d * q + m; q as Q5_0.
struct BlockQ5_1 {
  f16_t d;
  f16_t m;
  uint8_t qh[4];
  uint8_t qs[kQK / 2];
};
// x = d * kIQ4NLValues[nibble]; nibbles ordered as Q4_0.
struct BlockIQ4_NL {
  f16_t d;
  uint8_t qs[kQK / 2];
};
// 16 sub-blocks of 16; scales[j]: low nibble scale, high nibble min;
// x = d * scale * q - dmin * min, q 2 bits.
struct BlockQ2_K {
  uint8_t scales[kQKK / 16];
  uint8_t qs[kQKK / 4];
  f16_t d;
  f16_t dmin;
};
// 16 sub-blocks of 16; 6-bit signed scales packed in 12 bytes; q = 2 low bits from qs,
// high bit from hmask (set: +0, clear: -4); x = d * (scale - 32) * q.
struct BlockQ3_K {
  uint8_t hmask[kQKK / 8];
  uint8_t qs[kQKK / 4];
  uint8_t scales[12];
  f16_t d;
};
// As Q4_K with a fifth bit per element in qh.
struct BlockQ5_K {
  f16_t d;
  f16_t dmin;
  uint8_t scales[kKScaleSize];
  uint8_t qh[kQKK / 8];
  uint8_t qs[kQKK / 2];
};
// 8 sub-blocks of 32 with 6-bit scales (4 low bits in scales_l, 2 high in scales_h);
// x = d * (scale - 32) * kIQ4NLValues[nibble].
struct BlockIQ4_XS {
  f16_t d;
  uint16_t scales_h;
  uint8_t scales_l[kQKK / 64];
  uint8_t qs[kQKK / 2];
};
// The IQ1/IQ2/IQ3 types: lattice codebooks (grids) indexed by the quant bits, with
// sign bits and per-group scales.
struct BlockIQ2_XXS {
  f16_t d;
  uint16_t qs[kQKK / 8];
};
struct BlockIQ2_XS {
  f16_t d;
  uint16_t qs[kQKK / 8];
  uint8_t scales[kQKK / 32];
};
struct BlockIQ2_S {
  f16_t d;
  uint8_t qs[kQKK / 4];
  uint8_t qh[kQKK / 32];
  uint8_t scales[kQKK / 32];
};
struct BlockIQ3_XXS {
  f16_t d;
  uint8_t qs[3 * kQKK / 8];
};
struct BlockIQ3_S {
  f16_t d;
  uint8_t qs[kQKK / 4];
  uint8_t qh[kQKK / 32];
  uint8_t signs[kQKK / 8];
  uint8_t scales[kQKK / 64];
};
struct BlockIQ1_S {
  f16_t d;
  uint8_t qs[kQKK / 8];
  uint16_t qh[kQKK / 32];
};
// No d field: the f16 super-block scale is spread over the top nibbles of `scales`.
struct BlockIQ1_M {
  uint8_t qs[kQKK / 8];
  uint8_t qh[kQKK / 16];
  uint8_t scales[kQKK / 32];
};
// The 16 values of IQ4_NL and IQ4_XS (a non-uniform 4-bit codebook).
inline constexpr int8_t kIQ4NLValues[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                            1,    13,   25,  38,  53,  69,  89,  113};

// 8 sub-blocks of 32; 6-bit scales and mins packed in `scales` (see ggml get_scale_min_k4);
// x = d * scale * q - dmin * min.
struct BlockQ4_K {
  f16_t d;
  f16_t dmin;
  uint8_t scales[kKScaleSize];
  uint8_t qs[kQKK / 2];
};
// 16 sub-blocks of 16; x = d * scale * (q - 32), q = 4 low bits from ql | 2 high bits from qh.
struct BlockQ6_K {
  uint8_t ql[kQKK / 2];
  uint8_t qh[kQKK / 4];
  int8_t scales[kQKK / 16];
  f16_t d;
};
// Activation blocks for K-quant dot products: float scale, int8 quants, and sums of each
// group of 16 quants (used to fold the mins/offsets).
struct BlockQ8_K {
  float d;
  int8_t qs[kQKK];
  int16_t bsums[kQKK / 16];
};

static_assert(sizeof(BlockQ8_0) == 34);
static_assert(sizeof(BlockQ4_0) == 18);
static_assert(sizeof(BlockQ4_K) == 144);
static_assert(sizeof(BlockQ6_K) == 210);
static_assert(sizeof(BlockQ8_K) == 292);
static_assert(sizeof(BlockQ4_1) == 20);
static_assert(sizeof(BlockQ5_0) == 22);
static_assert(sizeof(BlockQ5_1) == 24);
static_assert(sizeof(BlockIQ4_NL) == 18);
static_assert(sizeof(BlockQ2_K) == 84);
static_assert(sizeof(BlockQ3_K) == 110);
static_assert(sizeof(BlockQ5_K) == 176);
static_assert(sizeof(BlockIQ4_XS) == 136);
static_assert(sizeof(BlockIQ2_XXS) == 66);
static_assert(sizeof(BlockIQ2_XS) == 74);
static_assert(sizeof(BlockIQ2_S) == 82);
static_assert(sizeof(BlockIQ3_XXS) == 98);
static_assert(sizeof(BlockIQ3_S) == 110);
static_assert(sizeof(BlockIQ1_S) == 50);
static_assert(sizeof(BlockIQ1_M) == 56);

constexpr size_t BlockBytes(DType t) {
  switch (t) {
    case DType::kF32: return 4;
    case DType::kF16: case DType::kBF16: return 2;
    case DType::kQ4_0: return sizeof(BlockQ4_0);
    case DType::kQ8_0: return sizeof(BlockQ8_0);
    case DType::kQ4_K: return sizeof(BlockQ4_K);
    case DType::kQ6_K: return sizeof(BlockQ6_K);
    case DType::kQ8_K: return sizeof(BlockQ8_K);
    case DType::kQ4_1: return sizeof(BlockQ4_1);
    case DType::kQ5_0: return sizeof(BlockQ5_0);
    case DType::kQ5_1: return sizeof(BlockQ5_1);
    case DType::kIQ4_NL: return sizeof(BlockIQ4_NL);
    case DType::kQ2_K: return sizeof(BlockQ2_K);
    case DType::kQ3_K: return sizeof(BlockQ3_K);
    case DType::kQ5_K: return sizeof(BlockQ5_K);
    case DType::kIQ4_XS: return sizeof(BlockIQ4_XS);
    case DType::kIQ2_XXS: return sizeof(BlockIQ2_XXS);
    case DType::kIQ2_XS: return sizeof(BlockIQ2_XS);
    case DType::kIQ2_S: return sizeof(BlockIQ2_S);
    case DType::kIQ3_XXS: return sizeof(BlockIQ3_XXS);
    case DType::kIQ3_S: return sizeof(BlockIQ3_S);
    case DType::kIQ1_S: return sizeof(BlockIQ1_S);
    case DType::kIQ1_M: return sizeof(BlockIQ1_M);
  }
  return 0;
}

}  // namespace pocket::tensor
