#include "tensor/quant.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "tensor/fp16.h"
#include "tensor/quant_golden_testutil.h"
#include "tensor/tensor.h"

namespace pocket::tensor {
namespace {

std::vector<float> RandomNormal(size_t n, uint32_t seed, float stddev = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, stddev);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

std::vector<float> RoundTrip(DType t, const std::vector<float>& x) {
  std::vector<uint8_t> q(RowBytes(t, x.size()));
  QuantizeRow(t, x.data(), q.data(), x.size());
  std::vector<float> y(x.size());
  DequantizeRow(t, q.data(), y.data(), x.size());
  return y;
}

double RelativeRmse(const std::vector<float>& a, const std::vector<float>& b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    num += (a[i] - b[i]) * (a[i] - b[i]);
    den += a[i] * a[i];
  }
  return std::sqrt(num / den);
}

TEST(QuantTest, BlockSizes) {
  EXPECT_EQ(RowBytes(DType::kQ8_0, 64), 68u);
  EXPECT_EQ(RowBytes(DType::kQ4_0, 64), 36u);
  EXPECT_EQ(RowBytes(DType::kQ4_K, 512), 288u);
  EXPECT_EQ(RowBytes(DType::kQ6_K, 256), 210u);
  EXPECT_EQ(RowBytes(DType::kQ8_K, 256), 292u);
  EXPECT_EQ(RowBytes(DType::kF16, 10), 20u);
  EXPECT_EQ(RowBytes(DType::kBF16, 10), 20u);
  EXPECT_EQ(RowBytes(DType::kF32, 10), 40u);
  TensorView v{DType::kQ4_K, {512, 3, 2, 1}, nullptr};
  EXPECT_EQ(v.row_bytes(), 288u);
  EXPECT_EQ(v.num_rows(), 6);
  EXPECT_EQ(v.num_elements(), 3072);
  EXPECT_EQ(v.size_bytes(), 6u * 288u);
}

TEST(QuantTest, EveryStoredTypeRoundTripsThroughItsGgmlId) {
  for (DType t : kAllDTypes) {
    SCOPED_TRACE(std::string(DTypeName(t)));
    EXPECT_NE(DTypeName(t), "?");
    EXPECT_GT(BlockElements(t), 0u);
    EXPECT_GT(BlockBytes(t), 0u);
    const std::optional<DType> back = DTypeFromGgml(static_cast<uint32_t>(t));
    if (t == DType::kQ8_K) {
      EXPECT_FALSE(back.has_value());  // an activation format, never in files
    } else {
      EXPECT_EQ(back, t);
    }
  }
  EXPECT_FALSE(DTypeFromGgml(4).has_value());  // ggml's removed Q4_2
  EXPECT_FALSE(DTypeFromGgml(9).has_value());  // Q8_1: activations only
  EXPECT_FALSE(DTypeFromGgml(1000).has_value());
}

// Every golden in tests/golden/quant/ (llama.cpp's gguf-py dequantizing random blocks of
// each GGML type; made by make_goldens.py and make_iq_goldens.py there) is decoded by
// tensor::DequantizeRow to the same bits.
TEST(QuantTest, EveryGgufPyGoldenDequantizesBitForBit) {
  const std::vector<std::string> files = QuantGoldenFiles();
  EXPECT_GE(files.size(), 19u);
  for (const std::string& f : files) {
    std::string why;
    EXPECT_TRUE(DequantizesGoldenExactly(f, &why)) << why;
  }
}

TEST(QuantTest, Q8_0HandComputedBlock) {
  float x[32];
  for (int j = 0; j < 32; ++j) x[j] = static_cast<float>(j - 16);  // amax 16 at j = 0
  BlockQ8_0 b;
  QuantizeRowQ8_0(x, &b, 32);
  EXPECT_EQ(b.d, F32ToF16(16.0f / 127.0f));
  EXPECT_EQ(b.qs[0], -127);
  EXPECT_EQ(b.qs[16], 0);
  EXPECT_EQ(b.qs[31], 119);  // 15 * 127 / 16 = 119.06
  EXPECT_EQ(b.qs[17], 8);    // 1 * 127 / 16 = 7.94
  float y[32];
  DequantizeRowQ8_0(&b, y, 32);
  EXPECT_EQ(y[0], -127 * F16ToF32(b.d));
}

TEST(QuantTest, Q4_0HandComputedBlock) {
  // Largest magnitude is -8, so d = -8 / -8 = 1 and every integer in [-8, 7] is exact.
  float x[32];
  for (int j = 0; j < 32; ++j) x[j] = static_cast<float>((j * 5) % 16 - 8);
  x[0] = -8;
  BlockQ4_0 b;
  QuantizeRowQ4_0(x, &b, 32);
  EXPECT_EQ(b.d, 0x3C00);
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(b.qs[j] & 0xF, static_cast<int>(x[j]) + 8) << j;
    EXPECT_EQ(b.qs[j] >> 4, static_cast<int>(x[j + 16]) + 8) << j;
  }
  float y[32];
  DequantizeRowQ4_0(&b, y, 32);
  for (int j = 0; j < 32; ++j) EXPECT_EQ(y[j], x[j]);
}

// Element e of a Q4_K block, decoded straight from the layout description in dtype.h
// (independently of DequantizeRowQ4_K's loop structure).
float Q4KElement(const BlockQ4_K& b, int e) {
  const int chunk = e / 64, r = e % 64, l = r % 32, hi = r / 32;
  const int q = hi ? (b.qs[chunk * 32 + l] >> 4) : (b.qs[chunk * 32 + l] & 0xF);
  uint8_t sc, m;
  GetScaleMinK4(chunk * 2 + hi, b.scales, &sc, &m);
  return F16ToF32(b.d) * sc * q - F16ToF32(b.dmin) * m;
}

float Q6KElement(const BlockQ6_K& b, int e) {
  const int half = e / 128, r = e % 128, l = r % 32, g = r / 32;
  const uint8_t lo_byte = b.ql[half * 64 + l + (g & 1) * 32];
  const int lo = g >= 2 ? lo_byte >> 4 : lo_byte & 0xF;
  const int hi = (b.qh[half * 32 + l] >> (2 * g)) & 3;
  const int scale = b.scales[half * 8 + l / 16 + 2 * g];
  return F16ToF32(b.d) * scale * ((lo | (hi << 4)) - 32);
}

TEST(QuantTest, Q4_KDequantizeFollowsLayout) {
  std::mt19937 rng(3);
  for (int trial = 0; trial < 20; ++trial) {
    BlockQ4_K b;
    auto* bytes = reinterpret_cast<uint8_t*>(&b);
    for (size_t i = 0; i < sizeof(b); ++i) bytes[i] = static_cast<uint8_t>(rng());
    b.d = F32ToF16(0.01f * (trial + 1));
    b.dmin = F32ToF16(0.003f * (trial + 1));
    float y[256];
    DequantizeRowQ4_K(&b, y, 256);
    for (int e = 0; e < 256; ++e) ASSERT_FLOAT_EQ(y[e], Q4KElement(b, e)) << e;
  }
}

TEST(QuantTest, Q4_KScalePacking) {
  // Sub-block 5: 6-bit scale = low nibble of byte 9 | top 2 bits of byte 1 << 4;
  // 6-bit min = high nibble of byte 9 | top 2 bits of byte 5 << 4.
  uint8_t s[12] = {};
  s[9] = 0xA7;
  s[1] = 0x80;  // top bits 0b10
  s[5] = 0x40;  // top bits 0b01
  uint8_t sc, m;
  GetScaleMinK4(5, s, &sc, &m);
  EXPECT_EQ(sc, 0x7 | (2 << 4));
  EXPECT_EQ(m, 0xA | (1 << 4));
  GetScaleMinK4(1, s, &sc, &m);
  EXPECT_EQ(sc, 0x80 & 63);
  EXPECT_EQ(m, 0x40 & 63);
}

TEST(QuantTest, Q6_KDequantizeFollowsLayout) {
  std::mt19937 rng(4);
  for (int trial = 0; trial < 20; ++trial) {
    BlockQ6_K b;
    auto* bytes = reinterpret_cast<uint8_t*>(&b);
    for (size_t i = 0; i < sizeof(b); ++i) bytes[i] = static_cast<uint8_t>(rng());
    b.d = F32ToF16(0.001f * (trial + 1));
    float y[256];
    DequantizeRowQ6_K(&b, y, 256);
    for (int e = 0; e < 256; ++e) ASSERT_FLOAT_EQ(y[e], Q6KElement(b, e)) << e;
  }
}

TEST(QuantTest, RoundTripErrorBounds) {
  const size_t n = 8192;
  const auto x = RandomNormal(n, 11, 0.02f);
  // Q8_0: each element is off by at most half a step (d/2), plus the fp16 rounding of d
  // scaling the whole block (relative 2^-11 of 127 steps).
  {
    const auto y = RoundTrip(DType::kQ8_0, x);
    for (size_t b = 0; b < n / 32; ++b) {
      float amax = 0;
      for (size_t j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[b * 32 + j]));
      const float d = amax / 127;
      for (size_t j = 0; j < 32; ++j) {
        ASSERT_LE(std::fabs(y[b * 32 + j] - x[b * 32 + j]), d * 0.5f + amax * 1e-3f);
      }
    }
  }
  // The rest: relative RMS error, thresholds about 20% above the values measured on this
  // input (Q4_0 0.086, Q4_K 0.072, Q6_K 0.018, F16 0.0002, BF16 0.0017); a layout or
  // scale bug gives errors near 1.
  EXPECT_LT(RelativeRmse(x, RoundTrip(DType::kQ4_0, x)), 0.10);
  EXPECT_LT(RelativeRmse(x, RoundTrip(DType::kQ4_K, x)), 0.085);
  EXPECT_LT(RelativeRmse(x, RoundTrip(DType::kQ6_K, x)), 0.022);
  EXPECT_LT(RelativeRmse(x, RoundTrip(DType::kF16, x)), 3e-4);
  EXPECT_LT(RelativeRmse(x, RoundTrip(DType::kBF16, x)), 2.5e-3);
  EXPECT_EQ(RoundTrip(DType::kF32, x), x);
}

TEST(QuantTest, ZeroBlocksStayZero) {
  std::vector<float> x(512, 0.0f);
  for (DType t : {DType::kQ8_0, DType::kQ4_0, DType::kQ4_K, DType::kQ6_K, DType::kQ8_K}) {
    const auto y = RoundTrip(t, x);
    for (float v : y) ASSERT_EQ(v, 0.0f) << DTypeName(t);
  }
}

TEST(QuantTest, Q8_KBsumsAndScale) {
  const auto x = RandomNormal(512, 5);
  std::vector<BlockQ8_K> q(2);
  QuantizeRowQ8_K(x.data(), q.data(), 512);
  for (int b = 0; b < 2; ++b) {
    for (int g = 0; g < 16; ++g) {
      int sum = 0;
      for (int j = 0; j < 16; ++j) sum += q[b].qs[g * 16 + j];
      EXPECT_EQ(q[b].bsums[g], sum);
    }
    float amax = 0;
    for (int j = 0; j < 256; ++j) amax = std::max(amax, std::fabs(x[b * 256 + j]));
    EXPECT_NEAR(std::fabs(q[b].d), amax / 127, amax * 1e-6);
    for (int j = 0; j < 256; ++j) {
      EXPECT_LE(std::fabs(q[b].d * q[b].qs[j] - x[b * 256 + j]), std::fabs(q[b].d) * 0.5f + 1e-7f);
    }
  }
}

TEST(QuantTest, Q6_KUsesFullRangeOfScales) {
  // The block's largest sub-block scale maps to -128 steps of d (then clamped to 127):
  // a single spike gives d = spike-derived and that sub-block's scale at the extreme.
  std::vector<float> x(256, 0.0f);
  x[37] = 1.0f;
  std::vector<BlockQ6_K> q(1);
  QuantizeRowQ6_K(x.data(), q.data(), 256);
  const auto y = RoundTrip(DType::kQ6_K, x);
  EXPECT_NEAR(y[37], 1.0f, 0.01f);
  for (int i = 0; i < 256; ++i) {
    if (i != 37) {
      EXPECT_EQ(y[i], 0.0f) << i;
    }
  }
}

TEST(QuantTest, GenericDispatchMatchesTypedFunctions) {
  const auto x = RandomNormal(512, 9);
  std::vector<BlockQ4_K> a(2), b(2);
  QuantizeRowQ4_K(x.data(), a.data(), 512);
  QuantizeRow(DType::kQ4_K, x.data(), b.data(), 512);
  EXPECT_EQ(std::memcmp(a.data(), b.data(), sizeof(BlockQ4_K) * 2), 0);
  std::vector<BlockQ6_K> c(2), d(2);
  QuantizeRowQ6_K(x.data(), c.data(), 512);
  QuantizeRow(DType::kQ6_K, x.data(), d.data(), 512);
  EXPECT_EQ(std::memcmp(c.data(), d.data(), sizeof(BlockQ6_K) * 2), 0);
}

}  // namespace
}  // namespace pocket::tensor
