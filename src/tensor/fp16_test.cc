#include "tensor/fp16.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
#endif

namespace pocket::tensor {
namespace {

uint32_t Bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof(u));
  return u;
}
float FromBits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof(f));
  return f;
}

TEST(Fp16Test, KnownValues) {
  EXPECT_EQ(F32ToF16(1.0f), 0x3C00);
  EXPECT_EQ(F32ToF16(-2.0f), 0xC000);
  EXPECT_EQ(F32ToF16(0.0f), 0x0000);
  EXPECT_EQ(F32ToF16(-0.0f), 0x8000);
  EXPECT_EQ(F32ToF16(65504.0f), 0x7BFF);  // largest finite
  EXPECT_EQ(F32ToF16(65519.0f), 0x7BFF);  // below the rounding midpoint
  EXPECT_EQ(F32ToF16(65520.0f), 0x7C00);  // midpoint, ties to even -> inf
  EXPECT_EQ(F32ToF16(1e9f), 0x7C00);
  EXPECT_EQ(F32ToF16(-std::numeric_limits<float>::infinity()), 0xFC00);
  EXPECT_EQ(F32ToF16(std::ldexp(1.0f, -24)), 0x0001);        // smallest subnormal
  EXPECT_EQ(F32ToF16(std::ldexp(1.0f, -25)), 0x0000);        // tie -> even (0)
  EXPECT_EQ(F32ToF16(std::ldexp(1.5f, -25)), 0x0001);        // above the tie
  EXPECT_EQ(F32ToF16(std::ldexp(3.0f, -25)), 0x0002);        // 1.5 ulp tie -> even (2)
  EXPECT_EQ(F32ToF16(std::ldexp(1.0f, -14)), 0x0400);        // smallest normal
  EXPECT_EQ(F32ToF16(1.0f + std::ldexp(1.0f, -11)), 0x3C00);  // tie -> even
  EXPECT_EQ(F32ToF16(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3C02);
  EXPECT_FLOAT_EQ(F16ToF32(0x3555), 0.333251953125f);
  EXPECT_EQ(F16ToF32(0x0001), std::ldexp(1.0f, -24));
  EXPECT_EQ(F16ToF32(0x03FF), std::ldexp(1023.0f, -24));
  EXPECT_TRUE(std::isinf(F16ToF32(0x7C00)));
  const uint16_t nan16 = F32ToF16(std::numeric_limits<float>::quiet_NaN());
  EXPECT_EQ(nan16 & 0x7C00, 0x7C00);
  EXPECT_NE(nan16 & 0x03FF, 0);
  EXPECT_TRUE(std::isnan(F16ToF32(0x7E00)));
  // A signalling NaN whose payload lives only in the low bits must stay a NaN.
  EXPECT_TRUE(std::isnan(F16ToF32(F32ToF16(FromBits(0x7F800001u)))));
}

TEST(Fp16Test, EveryHalfRoundTripsExactly) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const float f = F16ToF32(static_cast<f16_t>(h));
    if (std::isnan(f)) continue;
    ASSERT_EQ(F32ToF16(f), h) << std::hex << h;
  }
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
__attribute__((target("f16c"))) uint16_t HardwareF32ToF16(float f) {
  return static_cast<uint16_t>(_cvtss_sh(f, 0));  // 0 = round to nearest even
}
__attribute__((target("f16c"))) float HardwareF16ToF32(uint16_t h) { return _cvtsh_ss(h); }

// The outside reference: the CPU's own conversion instruction, which is what
// GGML_FP32_TO_FP16 compiles to on x86 with F16C.
TEST(Fp16Test, MatchesF16cInstruction) {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  const bool has_f16c = __get_cpuid(1, &eax, &ebx, &ecx, &edx) && (ecx & (1u << 29));
  if (!has_f16c) GTEST_SKIP() << "no F16C on this CPU";
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const float a = F16ToF32(static_cast<f16_t>(h));
    const float b = HardwareF16ToF32(static_cast<uint16_t>(h));
    ASSERT_EQ(Bits(a), Bits(b)) << std::hex << h;
  }
  std::mt19937 rng(7);
  for (int i = 0; i < 2000000; ++i) {
    const uint32_t u = rng();
    // Bias half the samples into the binary16 range, where rounding matters.
    const uint32_t bits = (i & 1) ? u : ((u & 0x807fffffu) | ((100u + (u >> 23) % 50u) << 23));
    const float f = FromBits(bits);
    ASSERT_EQ(F32ToF16(f), HardwareF32ToF16(f)) << std::hex << bits;
  }
}
#endif

TEST(Bf16Test, RoundsToNearestEven) {
  EXPECT_EQ(F32ToBF16(1.0f), 0x3F80);
  EXPECT_EQ(F32ToBF16(FromBits(0x3F808000u)), 0x3F80);  // tie, even stays
  EXPECT_EQ(F32ToBF16(FromBits(0x3F818000u)), 0x3F82);  // tie, odd rounds up
  EXPECT_EQ(F32ToBF16(FromBits(0x3F808001u)), 0x3F81);
  EXPECT_EQ(F32ToBF16(FromBits(0x7F7FFFFFu)), 0x7F80);  // max float rounds to inf
  EXPECT_EQ(F32ToBF16(FromBits(0x00010000u)), 0x0001);  // subnormals kept
  EXPECT_EQ(F32ToBF16(FromBits(0x7F800001u)), 0x7FC0);  // NaN forced quiet
  EXPECT_EQ(F32ToBF16(FromBits(0xFFC00000u)), 0xFFC0);
  EXPECT_EQ(BF16ToF32(0x3F80), 1.0f);
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const float f = BF16ToF32(static_cast<bf16_t>(h));
    if (std::isnan(f)) continue;
    ASSERT_EQ(F32ToBF16(f), h);
  }
}

TEST(Fp16Test, RowFormsMatchScalar) {
  const float src[5] = {0.1f, -3.5f, 1e-6f, 70000.0f, 0.0f};
  f16_t h[5];
  bf16_t b[5];
  float back[5];
  F32ToF16Row(src, h, 5);
  F32ToBF16Row(src, b, 5);
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(h[i], F32ToF16(src[i]));
    EXPECT_EQ(b[i], F32ToBF16(src[i]));
  }
  F16ToF32Row(h, back, 5);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(back[i], F16ToF32(h[i]));
  BF16ToF32Row(b, back, 5);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(back[i], BF16ToF32(b[i]));
}

}  // namespace
}  // namespace pocket::tensor
