// Codebooks ("grids") of the GGUF IQ1/IQ2/IQ3 lattice quantization types: format constants,
// not tuning data. A block of IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS, IQ3_S, IQ1_S or IQ1_M stores
// indices into these tables, so a file can be decoded only with exactly these values (they
// are ggml-common.h's iq2xxs_grid, iq2xs_grid, iq2s_grid, iq3xxs_grid, iq3s_grid and
// iq1s_grid, and ksigns_iq2xs). Entry k's byte j (little-endian) is element j of codebook
// point k: unsigned magnitudes for IQ2/IQ3 (signs come from separate bits), int8 -1/0/+1
// for IQ1. How the values were made and checked: iq_grids.cc.
// Who uses them: the reference decoders (quant_iq.cc) and the matmul kernels.
// Thread safety: immutable data.
#pragma once

#include <array>
#include <cstdint>

namespace pocket::tensor {

extern const uint64_t kIQ2XXSGrid[256];  // 8 magnitudes from {8, 25, 43} per entry
extern const uint64_t kIQ2XSGrid[512];   // same values
extern const uint64_t kIQ2SGrid[1024];   // same values
extern const uint32_t kIQ3XXSGrid[256];  // 4 magnitudes from {4, 12, ..., 52, 62} per entry
extern const uint32_t kIQ3SGrid[512];    // 4 magnitudes from {1, 3, ..., 15} per entry
extern const uint64_t kIQ1SGrid[2048];   // 8 int8 from {-1, 0, 1} per entry (IQ1_S and IQ1_M)

// The sign byte of IQ2_XXS, IQ2_XS and IQ3_XXS: 7 stored bits say which of the first 7
// elements of a group of 8 are negative, and the 8th is negative when that makes the count
// of negatives even (the encoder only produces even counts). Bit j set: element j negative.
// Equal to ggml's ksigns_iq2xs.
constexpr std::array<uint8_t, 128> MakeIQ2Signs() {
  std::array<uint8_t, 128> t{};
  for (int i = 0; i < 128; ++i) {
    const int odd = __builtin_popcount(static_cast<unsigned>(i)) & 1;
    t[i] = static_cast<uint8_t>(i | (odd << 7));
  }
  return t;
}
inline constexpr std::array<uint8_t, 128> kIQ2Signs = MakeIQ2Signs();
static_assert(kIQ2Signs[1] == 129 && kIQ2Signs[3] == 3 && kIQ2Signs[127] == 255);

}  // namespace pocket::tensor
