// Dequantization of Q4_1, Q5_0, Q5_1 and IQ4_NL (tensor/quant_legacy.cc): single blocks
// computed by hand from ggml-common.h's layouts, and the goldens llama.cpp's gguf-py made
// from random blocks (tests/golden/quant/, format in its README.md), matched bit for bit.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "tensor/dtype.h"
#include "tensor/fp16.h"
#include "tensor/quant.h"

namespace pocket::tensor {
namespace {

// f16 bits of small exact values.
constexpr f16_t kHalf = 0x3800;      // 0.5
constexpr f16_t kMinusTwo = 0xC000;  // -2.0
constexpr f16_t kQuarter = 0x3400;   // 0.25

TEST(QuantLegacyTest, Q4_1BlockIsScaleTimesNibblePlusMin) {
  BlockQ4_1 b{};
  b.d = kHalf;
  b.m = kMinusTwo;
  for (int j = 0; j < 16; ++j) b.qs[j] = static_cast<uint8_t>(j | (15 - j) << 4);
  float y[32];
  DequantizeRow(DType::kQ4_1, &b, y, 32);
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(y[j], 0.5f * j - 2.0f) << j;              // low nibble: element j
    EXPECT_EQ(y[j + 16], 0.5f * (15 - j) - 2.0f) << j;  // high nibble: element j + 16
  }
}

TEST(QuantLegacyTest, Q5_0TakesBitJOfQhAsTheFifthBitOfElementJ) {
  BlockQ5_0 b{};
  b.d = kQuarter;
  // Elements 0, 3, 16 and 31 get the fifth bit: qh bits 0, 3, 16, 31 (little-endian u32).
  const uint32_t qh = 1u << 0 | 1u << 3 | 1u << 16 | 1u << 31;
  std::memcpy(b.qh, &qh, 4);
  for (int j = 0; j < 16; ++j) b.qs[j] = static_cast<uint8_t>(j | (15 - j) << 4);
  float y[32];
  DequantizeRow(DType::kQ5_0, &b, y, 32);
  for (int e = 0; e < 32; ++e) {
    const int nibble = e < 16 ? e : 15 - (e - 16);
    const int q = nibble | ((qh >> e) & 1) << 4;
    EXPECT_EQ(y[e], 0.25f * (q - 16)) << e;
  }
  EXPECT_EQ(y[0], 0.25f * (16 - 16));
  EXPECT_EQ(y[16], 0.25f * (31 - 16));
  EXPECT_EQ(y[1], 0.25f * (1 - 16));
}

TEST(QuantLegacyTest, Q5_1BlockIsScaleTimesFiveBitsPlusMin) {
  BlockQ5_1 b{};
  b.d = kHalf;
  b.m = kMinusTwo;
  const uint32_t qh = 0xF0F0F0F0u;
  std::memcpy(b.qh, &qh, 4);
  for (int j = 0; j < 16; ++j) b.qs[j] = static_cast<uint8_t>((j & 7) | (j & 7) << 4);
  float y[32];
  DequantizeRow(DType::kQ5_1, &b, y, 32);
  for (int e = 0; e < 32; ++e) {
    const int q = ((e % 16) & 7) | ((qh >> e) & 1) << 4;
    EXPECT_EQ(y[e], 0.5f * q - 2.0f) << e;
  }
  EXPECT_EQ(y[4], 0.5f * 20 - 2.0f);  // qh bit 4 set, nibble 4
}

TEST(QuantLegacyTest, IQ4_NLLooksNibblesUpInTheNonUniformTable) {
  BlockIQ4_NL b{};
  b.d = kMinusTwo;
  for (int j = 0; j < 16; ++j) b.qs[j] = static_cast<uint8_t>(j | (15 - j) << 4);
  float y[32];
  DequantizeRow(DType::kIQ4_NL, &b, y, 32);
  EXPECT_EQ(y[0], -2.0f * -127);
  EXPECT_EQ(y[15], -2.0f * 113);
  EXPECT_EQ(y[16], -2.0f * 113);
  EXPECT_EQ(y[31], -2.0f * -127);
  EXPECT_EQ(y[8], -2.0f * 1);
}

TEST(QuantLegacyTest, RowsOfSeveralBlocksDecodeBlockByBlock) {
  BlockQ5_0 blocks[3]{};
  for (int i = 0; i < 3; ++i) {
    blocks[i].d = F32ToF16(static_cast<float>(i + 1));
    for (auto& q : blocks[i].qs) q = 0x11;  // every element q = 1 (qh clear)
  }
  std::vector<float> y(96);
  DequantizeRow(DType::kQ5_0, blocks, y.data(), 96);
  for (size_t e = 0; e < 96; ++e) EXPECT_EQ(y[e], static_cast<float>(e / 32 + 1) * -15) << e;
}

// A golden file: raw blocks and gguf-py's float32 dequantization of them.
struct Golden {
  uint32_t ggml_type = 0, blocks = 0, block_elements = 0, block_bytes = 0;
  std::vector<uint8_t> raw;
  std::vector<float> want;
};

uint32_t ReadU32(const std::vector<uint8_t>& f, size_t off) {
  uint32_t v;
  std::memcpy(&v, f.data() + off, 4);
  return v;
}

Golden LoadGolden(const std::string& name) {
  const std::string path = std::string(POCKET_SOURCE_DIR) + "/tests/golden/quant/" + name + ".bin";
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << path;
  const std::vector<uint8_t> f((std::istreambuf_iterator<char>(in)),
                               std::istreambuf_iterator<char>());
  Golden g;
  if (f.size() < 24 || std::memcmp(f.data(), "PKQG", 4) != 0 || ReadU32(f, 4) != 1) {
    ADD_FAILURE() << path << ": not a version 1 golden";
    return g;
  }
  g.ggml_type = ReadU32(f, 8);
  g.blocks = ReadU32(f, 12);
  g.block_elements = ReadU32(f, 16);
  g.block_bytes = ReadU32(f, 20);
  const size_t raw_bytes = size_t{g.blocks} * g.block_bytes;
  const size_t floats = size_t{g.blocks} * g.block_elements;
  if (f.size() != 24 + raw_bytes + floats * 4) {
    ADD_FAILURE() << path << ": size " << f.size() << " does not match its header";
    return g;
  }
  g.raw.assign(f.begin() + 24, f.begin() + 24 + static_cast<ptrdiff_t>(raw_bytes));
  g.want.resize(floats);
  std::memcpy(g.want.data(), f.data() + 24 + raw_bytes, floats * 4);
  return g;
}

// Bit-identical (compared as bits, so -0.0 vs 0.0 would show): the reference decoders do
// ggml's float operations in ggml's order, unfused.
TEST(QuantLegacyTest, DequantizationMatchesGgufPyGoldensBitForBit) {
  for (DType t : {DType::kQ4_1, DType::kQ5_0, DType::kQ5_1, DType::kIQ4_NL}) {
    SCOPED_TRACE(std::string(DTypeName(t)));
    const Golden g = LoadGolden(std::string(DTypeName(t)));
    ASSERT_EQ(g.ggml_type, static_cast<uint32_t>(t));
    ASSERT_EQ(g.block_elements, BlockElements(t));
    ASSERT_EQ(g.block_bytes, BlockBytes(t));
    ASSERT_GE(g.blocks, 2u);
    std::vector<float> got(g.want.size());
    DequantizeRow(t, g.raw.data(), got.data(), got.size());
    for (size_t i = 0; i < got.size(); ++i) {
      uint32_t a, b;
      std::memcpy(&a, &got[i], 4);
      std::memcpy(&b, &g.want[i], 4);
      ASSERT_EQ(a, b) << "element " << i << " (block " << i / 32 << "): got " << got[i]
                      << ", gguf-py " << g.want[i];
    }
  }
}

}  // namespace
}  // namespace pocket::tensor
