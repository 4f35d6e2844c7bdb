// The IQ1/IQ2/IQ3 reference decoders (quant_iq.cc) against llama.cpp's gguf-py, bit for
// bit. Two sets of goldens in tests/golden/quant/ (format: README.md there):
//  <TYPE>.bin: random blocks with sane f16 scales, plus an all-zero and an all-0xFF block
//    (make_goldens.py, shared with the other block types);
//  <TYPE>_grid.bin: blocks built so that together they index every entry of the type's
//    codebook (iq_grids.h), every 7-bit sign pattern where there is one, and every scale
//    value (make_iq_goldens.py). Matching these proves every table value.
// Both were made by gguf.quants.dequantize, whose values equal ggml's C dequantize_row_iq*
// (checked by the golden's maker), so the comparison is exact: 0 ulp.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "tensor/dtype.h"
#include "tensor/iq_grids.h"
#include "tensor/quant.h"
#include "tensor/quant_golden_testutil.h"

namespace pocket::tensor {
namespace {

constexpr DType kIqTypes[] = {DType::kIQ2_XXS, DType::kIQ2_XS, DType::kIQ2_S, DType::kIQ3_XXS,
                              DType::kIQ3_S,   DType::kIQ1_S,  DType::kIQ1_M};

// The random-block goldens (<TYPE>.bin) are checked with every other type's in
// quant_test.cc (EveryGgufPyGoldenDequantizesBitForBit).

TEST(QuantIqTest, DecodesBlocksIndexingEveryGridEntryBitForBit) {
  for (DType t : kIqTypes) {
    std::string why;
    EXPECT_TRUE(DequantizesGoldenExactly(std::string(DTypeName(t)) + "_grid.bin", &why)) << why;
  }
}

TEST(QuantIqTest, SignTableHasAnEvenNumberOfNegatives) {
  for (int i = 0; i < 128; ++i) {
    EXPECT_EQ(kIQ2Signs[i] & 0x7f, i);
    EXPECT_EQ(__builtin_popcount(kIQ2Signs[i]) % 2, 0) << i;
  }
}

TEST(QuantIqTest, DequantizeRowDecodesSeveralBlocksInOrder) {
  // A row of 3 blocks is the three blocks decoded one after another.
  for (DType t : kIqTypes) {
    SCOPED_TRACE(std::string(DTypeName(t)));
    QuantGolden g;
    std::string why;
    ASSERT_TRUE(LoadQuantGolden(std::string(DTypeName(t)) + ".bin", &g, &why)) << why;
    std::vector<float> row(3 * kQKK), one(kQKK);
    DequantizeRow(t, g.raw.data() + 2 * g.block_bytes, row.data(), row.size());
    for (size_t b = 0; b < 3; ++b) {
      DequantizeRow(t, g.raw.data() + (2 + b) * g.block_bytes, one.data(), kQKK);
      EXPECT_EQ(0, std::memcmp(one.data(), row.data() + b * kQKK, kQKK * 4)) << "block " << b;
    }
  }
}

}  // namespace
}  // namespace pocket::tensor
