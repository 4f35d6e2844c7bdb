// Reference dequantization of Q2_K, Q3_K, Q5_K and IQ4_XS (quant_k.cc): hand-computed
// single blocks, and llama.cpp gguf-py's dequantization of random blocks
// (tests/golden/quant/<TYPE>.bin, format in its README.md).
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "tensor/fp16.h"
#include "tensor/quant.h"

namespace pocket::tensor {
namespace {

TEST(QuantKTest, Q2_KHandComputedBlock) {
  BlockQ2_K b;
  std::memset(&b, 0, sizeof(b));
  b.d = F32ToF16(0.5f);
  b.dmin = F32ToF16(0.25f);
  // Group 0 (elements 0..15): scale 3, min 2; group 1 (16..31): scale 1, min 0;
  // group 2 (32..47, bits 2-3 of qs[0..15]): scale 15, min 15.
  b.scales[0] = 0x23;
  b.scales[1] = 0x01;
  b.scales[2] = 0xFF;
  b.qs[0] = 0x03 | (0x02 << 2);  // element 0: q 3, element 32: q 2
  b.qs[16] = 0x01;               // element 16: q 1
  b.qs[32] = 0x03 << 6;          // element 128 + 96 = 224 (group 14): q 3, scale 0 min 0
  float y[256];
  DequantizeRowQ2_K(&b, y, 256);
  EXPECT_EQ(y[0], 0.5f * 3 * 3 - 0.25f * 2);
  EXPECT_EQ(y[1], -0.25f * 2);
  EXPECT_EQ(y[16], 0.5f * 1 * 1);
  EXPECT_EQ(y[32], 0.5f * 15 * 2 - 0.25f * 15);
  EXPECT_EQ(y[33], -0.25f * 15);
  EXPECT_EQ(y[224], 0.0f);
}

TEST(QuantKTest, Q3_KHandComputedBlock) {
  BlockQ3_K b;
  std::memset(&b, 0, sizeof(b));
  b.d = F32ToF16(2.0f);
  // Scale 0 = 33 (low nibble 1 in byte 0, high bits 2 in byte 8 bits 0-1) -> +1;
  // scale 8 = 0 -> -32 (low nibble in byte 0's high half, high bits in byte 8 bits 4-5).
  b.scales[0] = 0x01;
  b.scales[8] = 0x02;
  // Scale 15 = 63 -> +31: low nibble in byte 7's high half, high bits in byte 11 bits 6-7.
  b.scales[7] = 0xF0;
  b.scales[11] = 0xC0;
  int8_t s[16];
  Q3KScales(b.scales, s);
  EXPECT_EQ(s[0], 1);
  EXPECT_EQ(s[8], -32);
  EXPECT_EQ(s[15], 31);
  EXPECT_EQ(s[1], -32);
  b.qs[0] = 0x03;        // element 0: low bits 3
  b.hmask[0] = 0x01;     // element 0: high bit set -> q = 3
  b.qs[1] = 0x02;        // element 1: low bits 2, high bit clear -> q = -2
  b.qs[32 + 16] = 0xC0;  // element 128 + 96 + 16 = 240 (group 15): low bits 3
  b.hmask[16] = 0x80;    // its high bit (bit 7 = 8th 32-element run) set -> q = 3
  float y[256];
  DequantizeRowQ3_K(&b, y, 256);
  EXPECT_EQ(y[0], 2.0f * 1 * 3);
  EXPECT_EQ(y[1], 2.0f * 1 * -2);
  EXPECT_EQ(y[2], 2.0f * 1 * -4);
  EXPECT_EQ(y[128], 2.0f * -32 * -4);  // group 8, everything clear
  EXPECT_EQ(y[240], 2.0f * 31 * 3);
}

TEST(QuantKTest, Q5_KHandComputedBlock) {
  BlockQ5_K b;
  std::memset(&b, 0, sizeof(b));
  b.d = F32ToF16(0.5f);
  b.dmin = F32ToF16(1.0f);
  b.scales[0] = 2;  // sub-block 0: scale 2, min 3
  b.scales[4] = 3;
  b.scales[1] = 1;  // sub-block 1: scale 1, min 0
  b.qs[0] = 0x5A;   // element 0: nibble 10, element 32: nibble 5
  b.qh[0] = 0x03;   // fifth bit of element 0 (bit 0) and of element 32 (bit 1)
  b.qh[1] = 0x04;   // bit 2: element 64 + 1 (sub-block 2: scale 0)
  float y[256];
  DequantizeRowQ5_K(&b, y, 256);
  EXPECT_EQ(y[0], 0.5f * 2 * 26 - 3.0f);
  EXPECT_EQ(y[32], 0.5f * 1 * 21);
  EXPECT_EQ(y[1], -3.0f);
  EXPECT_EQ(y[65], 0.0f);
}

TEST(QuantKTest, IQ4_XSHandComputedBlock) {
  BlockIQ4_XS b;
  std::memset(&b, 0, sizeof(b));
  b.d = F32ToF16(0.25f);
  b.scales_l[0] = 0x21;                         // sub-block 0: low 4 bits 1; sub-block 1: 2
  b.scales_h = 0x2 | (0x3 << 2) | (0x3 << 14);  // sub-block 0: +32; 1: +48; 7: +48
  b.qs[0] = 0xF0;   // element 0: value[0] = -127, element 16: value[15] = 113
  b.qs[16] = 0x08;  // sub-block 1 element 0: value[8] = 1
  EXPECT_EQ(IQ4XSScale(b, 0), 1);
  EXPECT_EQ(IQ4XSScale(b, 1), 18);
  EXPECT_EQ(IQ4XSScale(b, 7), 16);
  EXPECT_EQ(IQ4XSScale(b, 3), -32);
  float y[256];
  DequantizeRowIQ4_XS(&b, y, 256);
  EXPECT_EQ(y[0], 0.25f * 1 * -127);
  EXPECT_EQ(y[16], 0.25f * 1 * 113);
  EXPECT_EQ(y[32], 0.25f * 18 * 1);
  EXPECT_EQ(y[96], 0.25f * -32 * -127);
}

// gguf-py's goldens for these types are checked with every other type's in quant_test.cc
// (EveryGgufPyGoldenDequantizesBitForBit).

}  // namespace
}  // namespace pocket::tensor
