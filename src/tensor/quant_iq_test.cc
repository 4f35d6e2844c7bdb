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
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "tensor/dtype.h"
#include "tensor/iq_grids.h"
#include "tensor/quant.h"

namespace pocket::tensor {
namespace {

struct Golden {
  uint32_t ggml_type = 0, blocks = 0, block_elements = 0, block_bytes = 0;
  std::vector<uint8_t> raw;
  std::vector<float> values;
};

// Reads a PKQG golden; fails the test (and returns false) on a malformed file.
bool LoadGolden(const std::string& name, Golden* g) {
  const std::string path = std::string(POCKET_SOURCE_DIR) + "/tests/golden/quant/" + name;
  std::ifstream f(path, std::ios::binary);
  const std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(f)),
                                   std::istreambuf_iterator<char>());
  EXPECT_GE(bytes.size(), 24u) << path;
  if (bytes.size() < 24 || std::memcmp(bytes.data(), "PKQG", 4) != 0) {
    ADD_FAILURE() << path << ": not a PKQG golden";
    return false;
  }
  uint32_t header[5];
  std::memcpy(header, bytes.data() + 4, sizeof(header));
  EXPECT_EQ(header[0], 1u) << path;
  g->ggml_type = header[1];
  g->blocks = header[2];
  g->block_elements = header[3];
  g->block_bytes = header[4];
  const size_t raw_bytes = size_t{g->blocks} * g->block_bytes;
  const size_t num_values = size_t{g->blocks} * g->block_elements;
  if (bytes.size() != 24 + raw_bytes + 4 * num_values) {
    ADD_FAILURE() << path << ": size " << bytes.size() << " does not match its header";
    return false;
  }
  g->raw.assign(bytes.begin() + 24, bytes.begin() + 24 + static_cast<ptrdiff_t>(raw_bytes));
  g->values.resize(num_values);
  std::memcpy(g->values.data(), bytes.data() + 24 + raw_bytes, 4 * num_values);
  return true;
}

constexpr DType kIqTypes[] = {DType::kIQ2_XXS, DType::kIQ2_XS, DType::kIQ2_S, DType::kIQ3_XXS,
                              DType::kIQ3_S,   DType::kIQ1_S,  DType::kIQ1_M};

void ExpectDecodesGoldenExactly(DType t, const std::string& file) {
  SCOPED_TRACE(file);
  Golden g;
  if (!LoadGolden(file, &g)) return;
  ASSERT_EQ(g.ggml_type, static_cast<uint32_t>(t));
  ASSERT_EQ(g.block_elements, BlockElements(t));
  ASSERT_EQ(g.block_bytes, BlockBytes(t));
  std::vector<float> got(g.values.size(), -1.0f);
  DequantizeRow(t, g.raw.data(), got.data(), got.size());
  for (size_t i = 0; i < got.size(); ++i) {
    uint32_t a, b;
    std::memcpy(&a, &got[i], 4);
    std::memcpy(&b, &g.values[i], 4);
    ASSERT_EQ(a, b) << "element " << i << " (block " << i / g.block_elements << "): got " << got[i]
                    << ", gguf-py " << g.values[i];
  }
}

TEST(QuantIqTest, DecodesGgufPyRandomBlocksBitForBit) {
  for (DType t : kIqTypes) ExpectDecodesGoldenExactly(t, std::string(DTypeName(t)) + ".bin");
}

TEST(QuantIqTest, DecodesBlocksIndexingEveryGridEntryBitForBit) {
  for (DType t : kIqTypes) {
    ExpectDecodesGoldenExactly(t, std::string(DTypeName(t)) + "_grid.bin");
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
    Golden g;
    if (!LoadGolden(std::string(DTypeName(t)) + ".bin", &g)) continue;
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
