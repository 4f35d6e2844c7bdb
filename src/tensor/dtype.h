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
  kQ8_0 = 8,
  kQ4_K = 12,
  kQ6_K = 14,
  kQ8_K = 15,  // activations only (256-blocks for K-quant dot products); never a weight here
  kBF16 = 30,
};

// The DType for a ggml type id, or nullopt for ids Pocket does not support.
std::optional<DType> DTypeFromGgml(uint32_t ggml_type);
std::string_view DTypeName(DType t);  // "F32", "Q4_K", ...

// Elements per block (1 for plain types) and bytes per block.
constexpr size_t BlockElements(DType t) {
  switch (t) {
    case DType::kF32: case DType::kF16: case DType::kBF16: return 1;
    case DType::kQ4_0: case DType::kQ8_0: return 32;
    case DType::kQ4_K: case DType::kQ6_K: case DType::kQ8_K: return 256;
  }
  return 0;
}
constexpr size_t BlockBytes(DType t);

// Bytes of a row of `n` elements. REQUIRES: n % BlockElements(t) == 0.
constexpr size_t RowBytes(DType t, size_t n) { return n / BlockElements(t) * BlockBytes(t); }

using f16_t = uint16_t;   // IEEE binary16 bits
using bf16_t = uint16_t;  // bfloat16 bits

constexpr size_t kQK = 32;    // block size of Q4_0 / Q8_0
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

constexpr size_t BlockBytes(DType t) {
  switch (t) {
    case DType::kF32: return 4;
    case DType::kF16: case DType::kBF16: return 2;
    case DType::kQ4_0: return sizeof(BlockQ4_0);
    case DType::kQ8_0: return sizeof(BlockQ8_0);
    case DType::kQ4_K: return sizeof(BlockQ4_K);
    case DType::kQ6_K: return sizeof(BlockQ6_K);
    case DType::kQ8_K: return sizeof(BlockQ8_K);
  }
  return 0;
}

}  // namespace pocket::tensor
