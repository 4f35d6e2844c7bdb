// Dequantization of Q4_1, Q5_0, Q5_1 and IQ4_NL (tensor/quant_legacy.cc): single blocks
// computed by hand from ggml-common.h's layouts, and the goldens llama.cpp's gguf-py made
// from random blocks (tests/golden/quant/, format in its README.md), matched bit for bit.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
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

// gguf-py's goldens for these types are checked with every other type's in quant_test.cc
// (EveryGgufPyGoldenDequantizesBitForBit).

}  // namespace
}  // namespace pocket::tensor
