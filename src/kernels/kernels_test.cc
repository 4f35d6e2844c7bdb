// Every kernel against its plain-loop reference (kernels/ref/) on every compiled Highway
// target this CPU supports, on ragged and real model sizes; plus batch invariance.
#include "kernels/kernels.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstddef>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "kernels/cpu/amx.h"
#include "kernels/cpu/cpu.h"
#include "kernels/kernels_testutil.h"
#include "kernels/quant_blocks_testutil.h"
#include "kernels/ref/ref.h"
#include "tensor/fp16.h"
#include "tensor/quant.h"

namespace pocket::kernels {
namespace {

using tensor::DType;

TEST(KernelsTest, SeveralTargetsAreCompiled) {
  const auto targets = cpu::CompiledTargets();
  EXPECT_GE(targets.size(), 2u);  // at least one SIMD target and the fallback
  EXPECT_FALSE(ActiveTarget().empty());
}

TEST(KernelsTest, MatMulPathIsTheSameSetOnEveryTargetAndFastOnX86) {
  std::vector<bool> supported;
  for (DType t : tensor::kAllDTypes) supported.push_back(MatMulSupports(t));
  ForEachTarget([&] {
    for (size_t i = 0; i < std::size(tensor::kAllDTypes); ++i) {
      const DType t = tensor::kAllDTypes[i];
      SCOPED_TRACE(std::string(tensor::DTypeName(t)));
      EXPECT_EQ(MatMulPathOf(t) != MatMulPath::kUnsupported, supported[i]);
    }
  });
  EXPECT_EQ(MatMulPathOf(DType::kQ8_K), MatMulPath::kUnsupported);  // never a weight
  EXPECT_EQ(MatMulPathOf(DType::kF32), MatMulPath::kFast);
  const std::string target = ActiveTarget();
  if (target == "AVX2" || target == "AVX3" || target == "AVX3_ZEN4" || target == "AVX3_SPR") {
    for (DType t : {DType::kQ4_0, DType::kQ8_0, DType::kQ4_K, DType::kQ6_K, DType::kQ4_1,
                    DType::kQ5_0, DType::kQ5_1, DType::kIQ4_NL, DType::kQ2_K, DType::kQ3_K,
                    DType::kQ5_K, DType::kIQ4_XS}) {
      EXPECT_EQ(MatMulPathOf(t), MatMulPath::kFast) << tensor::DTypeName(t);
    }
  }
  EXPECT_EQ(MatMulPathName(MatMulPath::kReference), "reference");
}

TEST(KernelsTest, QuantizeActQ8MatchesReferenceBitForBit) {
  ForEachTarget([] {
    for (size_t n : {32u, 64u, 576u, 2048u}) {
      auto x = RandomNormal(n, static_cast<uint32_t>(n));
      // Exact ties and zeros: 0.5-steps of a block whose amax is 127 give x*id = k + 0.5.
      for (size_t i = 0; i < 32; ++i) x[i] = static_cast<float>(i) - 15.5f;
      x[31] = 127.0f;
      for (size_t i = 32; i < 64 && i < n; ++i) x[i] = 0.0f;
      std::vector<int8_t> q_ref(n), q(n);
      std::vector<float> d_ref(n / 32), d(n / 32);
      std::vector<int32_t> neg8sum(n / 32);
      ref::QuantizeActQ8(x.data(), n, q_ref.data(), d_ref.data());
      cpu::QuantizeActQ8(x.data(), n, q.data(), d.data(), neg8sum.data());
      EXPECT_EQ(q, q_ref) << "n=" << n;
      EXPECT_EQ(d, d_ref) << "n=" << n;
      for (size_t b = 0; b < n / 32; ++b) {
        int32_t sum = 0;
        for (size_t i = 0; i < 32; ++i) sum += q_ref[32 * b + i];
        EXPECT_EQ(neg8sum[b], -8 * sum) << "n=" << n << " block " << b;
      }
    }
  });
}

// Error bound for MatMul against ref::MatMul (exact sum of the same dequantized products,
// rounded once). The fast kernels compute each block's integer dot exactly, then round
// the scale product once, the FMA once per block, and sum 8 lanes at the end: at most
// about (cols / 32 + 8) roundings of 2^-24 relative to the sum of |products|. Float
// weights: cols / lanes + lanes additions. K-quants subtract the min term from the scale
// term inside a block (cancellation), so the bound is taken against a looser 2^-14.
double Tolerance(DType dtype, size_t cols, double abs_sum) {
  switch (dtype) {
    case DType::kQ2_K: case DType::kQ3_K: case DType::kQ4_K: case DType::kQ5_K:
    case DType::kQ6_K: case DType::kIQ4_XS:
      return std::ldexp(abs_sum, -14) + 1e-7;
    case DType::kF32: case DType::kF16: case DType::kBF16:
      return (static_cast<double>(cols) + 16.0) * std::ldexp(abs_sum, -23) + 1e-7;
    default:
      return (static_cast<double>(cols) / 32.0 + 8.0) * std::ldexp(abs_sum, -22) + 1e-7;
  }
}

struct MatMulCase {
  DType dtype;
  std::vector<size_t> cols;
};

TEST(KernelsTest, MatMulMatchesReferenceOnAllDtypes) {
  const std::vector<MatMulCase> cases = {
      {DType::kQ8_0, {32, 64, 576, 1536, 2048}},
      {DType::kQ4_0, {32, 96, 576, 1536, 2048}},
      {DType::kQ4_K, {256, 1536, 2048}},
      {DType::kQ6_K, {256, 1536, 2048}},
      // The fallback types of rows that are not a multiple of 256 (576: SmolLM2, 896:
      // Qwen2.5-0.5B).
      {DType::kQ4_1, {32, 96, 576, 896, 1536, 2048}},
      {DType::kQ5_0, {32, 96, 576, 896, 1536, 2048}},
      {DType::kQ5_1, {32, 96, 576, 896, 1536, 2048}},
      {DType::kIQ4_NL, {32, 96, 576, 896, 1536, 2048}},
      {DType::kQ2_K, {256, 1536, 2048}},
      {DType::kQ3_K, {256, 1536, 2048}},
      {DType::kQ5_K, {256, 1536, 2048}},
      {DType::kIQ4_XS, {256, 1536, 2048}},
      {DType::kF32, {1, 7, 15, 16, 17, 576}},
      {DType::kF16, {1, 7, 15, 16, 17, 576}},
      {DType::kBF16, {1, 7, 15, 16, 17, 576}},
  };
  ThreadPool pool(2);
  Workspace ws;
  ForEachTarget([&] {
    for (const auto& c : cases) {
      for (size_t cols : c.cols) {
        for (size_t rows : {1u, 7u, 9u}) {
          for (size_t tokens : {1u, 3u, 6u}) {
            const TestMatrix w = MakeTestMatrix(c.dtype, rows, cols, static_cast<uint32_t>(rows + cols));
            const auto x = RandomNormal(tokens * cols, static_cast<uint32_t>(cols + tokens));
            std::vector<float> y(tokens * rows), want(tokens * rows), mag(tokens * rows);
            MatMul(w.view, x.data(), tokens, y.data(), pool, ws);
            ref::MatMul(w.view, x.data(), tokens, want.data());
            ref::MatMulAbs(w.view, x.data(), tokens, mag.data());
            for (size_t i = 0; i < y.size(); ++i) {
              ASSERT_NEAR(y[i], want[i], Tolerance(c.dtype, cols, mag[i]))
                  << tensor::DTypeName(c.dtype) << " rows=" << rows << " cols=" << cols
                  << " tokens=" << tokens << " i=" << i;
            }
          }
        }
      }
    }
  });
}

// Uniform payloads (0x00, 0xFF, 0x88: every type's smallest and largest codes) against
// activations that quantize to +-127 everywhere: the x86 kernels' vpmaddubsw pairs must
// not saturate, and offsets/mins must fold in exactly.
TEST(KernelsTest, KQuantKernelsMatchReferenceOnExtremeBlocks) {
  struct ScaleFields {
    DType dtype;
    size_t d, dmin;  // byte offsets of the f16 fields in a block (dmin = d: none)
  };
  const ScaleFields types[] = {
      {DType::kQ2_K, offsetof(tensor::BlockQ2_K, d), offsetof(tensor::BlockQ2_K, dmin)},
      {DType::kQ3_K, offsetof(tensor::BlockQ3_K, d), offsetof(tensor::BlockQ3_K, d)},
      {DType::kQ4_K, offsetof(tensor::BlockQ4_K, d), offsetof(tensor::BlockQ4_K, dmin)},
      {DType::kQ5_K, offsetof(tensor::BlockQ5_K, d), offsetof(tensor::BlockQ5_K, dmin)},
      {DType::kQ6_K, offsetof(tensor::BlockQ6_K, d), offsetof(tensor::BlockQ6_K, d)},
      {DType::kIQ4_XS, offsetof(tensor::BlockIQ4_XS, d), offsetof(tensor::BlockIQ4_XS, d)},
  };
  constexpr size_t kRows = 3, kCols = 512, kTokens = 3;
  std::vector<float> x(kTokens * kCols);
  for (size_t c = 0; c < kCols; ++c) {
    x[c] = 1.0f;
    x[kCols + c] = -1.0f;
    x[2 * kCols + c] = (c % 3 == 0) ? -1.0f : 1.0f;
  }
  ThreadPool pool(1);
  Workspace ws;
  ForEachTarget([&] {
    for (const ScaleFields& t : types) {
      for (uint8_t fill : {uint8_t{0x00}, uint8_t{0xFF}, uint8_t{0x88}}) {
        TestMatrix w;
        w.bytes.assign(kRows * tensor::RowBytes(t.dtype, kCols), fill);
        const tensor::f16_t d = tensor::F32ToF16(0.01f), dmin = tensor::F32ToF16(0.003f);
        for (size_t off = 0; off < w.bytes.size(); off += tensor::BlockBytes(t.dtype)) {
          std::memcpy(&w.bytes[off + t.d], &d, 2);
          if (t.dmin != t.d) std::memcpy(&w.bytes[off + t.dmin], &dmin, 2);
        }
        w.view.dtype = t.dtype;
        w.view.ne = {static_cast<int64_t>(kCols), static_cast<int64_t>(kRows), 1, 1};
        w.view.data = w.bytes.data();
        std::vector<float> y(kTokens * kRows), want(kTokens * kRows), mag(kTokens * kRows);
        MatMul(w.view, x.data(), kTokens, y.data(), pool, ws);
        ref::MatMul(w.view, x.data(), kTokens, want.data());
        ref::MatMulAbs(w.view, x.data(), kTokens, mag.data());
        for (size_t i = 0; i < y.size(); ++i) {
          ASSERT_NEAR(y[i], want[i], Tolerance(t.dtype, kCols, mag[i]))
              << tensor::DTypeName(t.dtype) << " fill " << int{fill} << " i=" << i;
        }
      }
    }
  });
}

TEST(KernelsTest, MatMulIsBatchInvariant) {
  // Every output must be bit-identical whatever the batch size, the token's place in the
  // batch and the thread count.
  constexpr size_t kTokens = 11, kRows = 37;
  Workspace ws;
  ForEachTarget([&] {
    for (DType dtype : {DType::kQ8_0, DType::kQ4_0, DType::kQ4_K, DType::kQ6_K, DType::kF16,
                        DType::kF32, DType::kQ4_1, DType::kQ5_0, DType::kQ5_1, DType::kIQ4_NL,
                        DType::kQ2_K, DType::kQ3_K, DType::kQ5_K, DType::kIQ4_XS}) {
      const size_t cols = tensor::BlockElements(dtype) == 256 ? 512 : 576;
      const TestMatrix w = MakeTestMatrix(dtype, kRows, cols, 5);
      const auto x = RandomNormal(kTokens * cols, 6);
      ThreadPool pool1(1), pool2(2), pool3(3);
      std::vector<float> batched(kTokens * kRows), batched3(kTokens * kRows);
      MatMul(w.view, x.data(), kTokens, batched.data(), pool2, ws);
      MatMul(w.view, x.data(), kTokens, batched3.data(), pool3, ws);
      EXPECT_EQ(0, std::memcmp(batched.data(), batched3.data(), batched.size() * 4))
          << tensor::DTypeName(dtype);
      for (size_t t = 0; t < kTokens; ++t) {
        std::vector<float> single(kRows);
        MatMul(w.view, x.data() + t * cols, 1, single.data(), pool1, ws);
        EXPECT_EQ(0, std::memcmp(single.data(), batched.data() + t * kRows, kRows * 4))
            << tensor::DTypeName(dtype) << " token " << t;
      }
      // Token 3 at the front of a batch of 2.
      std::vector<float> pair(2 * kRows);
      MatMul(w.view, x.data() + 3 * cols, 2, pair.data(), pool2, ws);
      EXPECT_EQ(0, std::memcmp(pair.data(), batched.data() + 3 * kRows, kRows * 4));
    }
  });
}

TEST(KernelsTest, PackedWeightGivesTheSameBitsAsThePlainView) {
  ThreadPool pool(2);
  Workspace ws;
  ForEachTarget([&] {
    for (DType dtype : {DType::kQ4_0, DType::kQ8_0, DType::kF16, DType::kQ6_K, DType::kQ4_1,
                        DType::kQ5_0, DType::kQ5_1, DType::kIQ4_NL, DType::kQ4_K}) {
      const size_t cols = tensor::BlockElements(dtype) == 256 ? 512 : 576;
      for (size_t rows : {1u, 37u, 64u}) {
        const TestMatrix w = MakeTestMatrix(dtype, rows, cols, static_cast<uint32_t>(rows));
        const PackedWeight packed = PackedWeight::Pack(w.view);
        if ((tensor::BlockElements(dtype) == 32 || dtype == DType::kQ4_K ||
             dtype == DType::kQ6_K) &&
            (ActiveTarget() == "AVX3" || ActiveTarget() == "AVX2")) {
          EXPECT_TRUE(packed.packed()) << tensor::DTypeName(dtype);  // the fast decode path
        }
        // Same bytes, the other prefetch distance.
        const PackedWeight streamed = PackedWeight::Pack(w.view, {}, WeightSource::kMemory);
        if (dtype == DType::kF16) {
          EXPECT_FALSE(packed.packed());
        }
        for (size_t tokens : {1u, 11u, 16u, 37u}) {  // 16+: the AMX tiles where there are some
          const auto x = RandomNormal(tokens * cols, 3);
          std::vector<float> plain(tokens * rows), fast(tokens * rows), shared(tokens * rows);
          std::vector<float> from_memory(tokens * rows);
          MatMul(w.view, x.data(), tokens, plain.data(), pool, ws);
          MatMul(packed, x.data(), tokens, fast.data(), pool, ws);
          MatMul(streamed, x.data(), tokens, from_memory.data(), pool, ws);
          const MatMulJob job{w.view, shared.data(), &packed};
          MatMulShared(std::span<const MatMulJob>(&job, 1), x.data(), tokens, pool, ws);
          EXPECT_EQ(0, std::memcmp(plain.data(), fast.data(), plain.size() * 4))
              << tensor::DTypeName(dtype) << " rows=" << rows << " tokens=" << tokens
              << " packed=" << packed.packed();
          EXPECT_EQ(0, std::memcmp(plain.data(), shared.data(), plain.size() * 4));
          EXPECT_EQ(0, std::memcmp(plain.data(), from_memory.data(), plain.size() * 4));
        }
      }
    }
  });
}

// The AMX path (16-token tiles of the lane-pair layout) against the VNNI tiles it stands in
// for: the same bits for every row and token, with a partial last group, a lone last
// group, token tails, several row splits, and inputs wide enough to need many blocks.
TEST(KernelsTest, AmxTilesGiveTheSameBitsAsTheVnniTiles) {
  if (!cpu::AmxUsable()) GTEST_SKIP() << "no AMX-INT8 here (or the OS did not grant it)";
  Workspace ws;
  ThreadPool pool1(1), pool2(2), pool3(3);
  for (DType dtype : {DType::kQ4_0, DType::kQ8_0}) {
    for (size_t cols : {64u, 2048u}) {
      for (size_t rows : {8u, 24u, 37u, 64u}) {
        const TestMatrix w = MakeTestMatrix(dtype, rows, cols, static_cast<uint32_t>(rows * cols));
        const PackedWeight packed = PackedWeight::Pack(w.view);
        ASSERT_EQ(packed.layout(), cpu::kPackedLanePairs);
        for (size_t tokens : {16u, 33u}) {
          auto x = RandomNormal(tokens * cols, static_cast<uint32_t>(tokens + cols), 2.0f);
          x[5] = 0.0f;  // an all-but-zero block scale somewhere
          std::vector<float> vnni(tokens * rows), amx(tokens * rows);
          cpu::SetAmxDisabledForTest(true);
          MatMul(packed, x.data(), tokens, vnni.data(), pool1, ws);
          cpu::SetAmxDisabledForTest(false);
          for (ThreadPool* pool : {&pool1, &pool2, &pool3}) {
            MatMul(packed, x.data(), tokens, amx.data(), *pool, ws);
            ASSERT_EQ(0, std::memcmp(vnni.data(), amx.data(), vnni.size() * 4))
                << tensor::DTypeName(dtype) << " rows=" << rows << " cols=" << cols
                << " tokens=" << tokens << " threads=" << pool->num_threads();
          }
        }
      }
    }
  }
}

// A weight packed in one target's layout and run under another (tests force targets; a
// process could in principle change dispatch) is read through its plain view instead.
TEST(KernelsTest, PackedForAnotherTargetFallsBackToTheView) {
  ThreadPool pool(2);
  Workspace ws;
  for (DType dtype : {DType::kQ4_0, DType::kQ8_0, DType::kQ4_1, DType::kQ5_0, DType::kQ5_1,
                      DType::kIQ4_NL, DType::kQ4_K, DType::kQ6_K}) {
    const TestMatrix w = MakeTestMatrix(dtype, 40, 256, 7);
    std::vector<PackedWeight> packs;
    ForEachTarget([&] { packs.push_back(PackedWeight::Pack(w.view)); });
    const auto x = RandomNormal(3 * 256, 4);
    ForEachTarget([&] {
      std::vector<float> plain(3 * 40), fast(3 * 40);
      MatMul(w.view, x.data(), 3, plain.data(), pool, ws);
      for (const PackedWeight& p : packs) {
        MatMul(p, x.data(), 3, fast.data(), pool, ws);
        EXPECT_EQ(0, std::memcmp(plain.data(), fast.data(), plain.size() * 4))
            << tensor::DTypeName(dtype) << " layout " << p.layout();
      }
    });
  }
}

TEST(KernelsTest, MatMulSharedEqualsSeparateMatMuls) {
  ThreadPool pool(2);
  Workspace ws;
  const size_t cols = 576, tokens = 5;
  const TestMatrix q = MakeTestMatrix(DType::kQ4_0, 576, cols, 1);
  const TestMatrix k = MakeTestMatrix(DType::kQ8_0, 192, cols, 2);
  const TestMatrix v = MakeTestMatrix(DType::kQ4_0, 190, cols, 3);
  const auto x = RandomNormal(tokens * cols, 4);
  std::vector<float> yq(tokens * 576), yk(tokens * 192), yv(tokens * 190);
  const MatMulJob jobs[] = {{q.view, yq.data()}, {k.view, yk.data()}, {v.view, yv.data()}};
  MatMulShared(jobs, x.data(), tokens, pool, ws);
  for (const auto& j : jobs) {
    std::vector<float> y(tokens * static_cast<size_t>(j.w.ne[1]));
    MatMul(j.w, x.data(), tokens, y.data(), pool, ws);
    EXPECT_EQ(0, std::memcmp(y.data(), j.y, y.size() * 4));
  }
}

// The fallback types' x86 tiles compute exact block integers (vpdpbusd with VNNI, else
// vpmaddubsw; IQ4_NL's codes offset by 128 or signed) followed by the same float steps, so
// AVX2 and AVX-512 give the same bits, and so must every pair of x86 targets here.
// Q4_K's and Q6_K's 8-row tiles likewise (vpdpbusd then vpmulld by the scales with VNNI,
// vpmaddubsw + vpmaddwd with the scales without).
TEST(KernelsTest, FallbackTypesGiveTheSameBitsOnEveryX86Target) {
  ThreadPool pool(2);
  Workspace ws;
  for (DType dtype :
       {DType::kQ4_1, DType::kQ5_0, DType::kQ5_1, DType::kIQ4_NL, DType::kQ4_K, DType::kQ6_K}) {
    const size_t cols = tensor::BlockElements(dtype) == 256 ? 1024 : 896;
    const TestMatrix w = MakeTestMatrix(dtype, 37, cols, 11);
    const auto x = RandomNormal(5 * cols, 12, 3.0f);
    std::vector<std::vector<float>> results;
    ForEachTarget([&] {
      const std::string target = ActiveTarget();
      if (target != "AVX2" && target != "AVX3") return;
      std::vector<float> y(5 * 37);
      MatMul(PackedWeight::Pack(w.view), x.data(), 5, y.data(), pool, ws);
      results.push_back(y);
    });
    for (size_t i = 1; i < results.size(); ++i) {
      EXPECT_EQ(0, std::memcmp(results[0].data(), results[i].data(), results[0].size() * 4))
          << tensor::DTypeName(dtype);
    }
  }
}

// Q4_K's and Q6_K's 8-row tiles (repacked at load) and their plain-row dots: the same bits
// packed or not, for every batch size, token position, row split (odd row counts, a lone
// last row) and thread count, on one block and on many, with activations at the ends of
// Q8_K's range; and within the reference's tolerance.
TEST(KernelsTest, KQuantTilesGiveTheSameBitsPackedOrNotForAnyBatchAndThreadCount) {
  Workspace ws;
  ThreadPool pool1(1), pool2(2), pool3(3);
  ForEachTarget([&] {
    for (DType dtype : {DType::kQ4_K, DType::kQ6_K}) {
      SCOPED_TRACE(tensor::DTypeName(dtype));
      for (size_t cols : {256u, 2560u}) {
        for (size_t rows : {1u, 9u, 45u}) {
          const TestMatrix w = MakeTestMatrix(dtype, rows, cols, static_cast<uint32_t>(rows + cols));
          const PackedWeight packed = PackedWeight::Pack(w.view);
          constexpr size_t kTokens = 7;
          auto x = RandomNormal(kTokens * cols, static_cast<uint32_t>(cols), 2.0f);
          x[3] = 1e3f;  // one block whose other quants are near zero, its max at +127
          x[cols + 5] = -1e3f;
          std::vector<float> batched(kTokens * rows), want(kTokens * rows), mag(kTokens * rows);
          MatMul(packed, x.data(), kTokens, batched.data(), pool2, ws);
          ref::MatMul(w.view, x.data(), kTokens, want.data());
          ref::MatMulAbs(w.view, x.data(), kTokens, mag.data());
          for (size_t i = 0; i < batched.size(); ++i) {
            ASSERT_NEAR(batched[i], want[i], Tolerance(dtype, cols, mag[i])) << i;
          }
          for (ThreadPool* pool : {&pool1, &pool2, &pool3}) {
            for (size_t n : {1u, 2u, 5u, 7u}) {
              for (size_t t0 = 0; t0 + n <= kTokens; t0 += n) {
                std::vector<float> y(n * rows), plain(n * rows);
                MatMul(packed, x.data() + t0 * cols, n, y.data(), *pool, ws);
                MatMul(w.view, x.data() + t0 * cols, n, plain.data(), *pool, ws);
                ASSERT_EQ(0, std::memcmp(y.data(), batched.data() + t0 * rows, y.size() * 4))
                    << "cols=" << cols << " rows=" << rows << " threads=" << pool->num_threads()
                    << " batch=" << n << " first token=" << t0;
                ASSERT_EQ(0, std::memcmp(plain.data(), y.data(), y.size() * 4))
                    << "cols=" << cols << " rows=" << rows << " threads=" << pool->num_threads()
                    << " batch=" << n << " first token=" << t0;
              }
            }
          }
        }
      }
    }
  });
}

// A Q4_K_M file of a 576-wide model mixes Q5_0 (fallback of Q4_K), Q8_0 (of Q6_K) and
// Q4_0 in the jobs that share one input: one int8 activation serves them all.
TEST(KernelsTest, MatMulSharedMixesTheFallbackTypesWithQ8_0) {
  ThreadPool pool(2);
  Workspace ws;
  const size_t cols = 576, tokens = 5;
  const TestMatrix q = MakeTestMatrix(DType::kQ5_0, 576, cols, 1);
  const TestMatrix k = MakeTestMatrix(DType::kQ8_0, 64, cols, 2);
  const TestMatrix v = MakeTestMatrix(DType::kIQ4_NL, 64, cols, 3);
  const TestMatrix g = MakeTestMatrix(DType::kQ5_1, 70, cols, 4);
  const TestMatrix u = MakeTestMatrix(DType::kQ4_1, 9, cols, 5);
  const auto x = RandomNormal(tokens * cols, 4);
  std::vector<float> yq(tokens * 576), yk(tokens * 64), yv(tokens * 64), yg(tokens * 70),
      yu(tokens * 9);
  const MatMulJob jobs[] = {{q.view, yq.data()}, {k.view, yk.data()}, {v.view, yv.data()},
                            {g.view, yg.data()}, {u.view, yu.data()}};
  ForEachTarget([&] {
    MatMulShared(jobs, x.data(), tokens, pool, ws);
    for (const auto& j : jobs) {
      std::vector<float> y(tokens * static_cast<size_t>(j.w.ne[1]));
      MatMul(j.w, x.data(), tokens, y.data(), pool, ws);
      EXPECT_EQ(0, std::memcmp(y.data(), j.y, y.size() * 4)) << tensor::DTypeName(j.w.dtype);
    }
  });
}

TEST(KernelsTest, RmsNormMatchesReference) {
  ForEachTarget([] {
    for (size_t n : {1u, 7u, 15u, 16u, 17u, 576u, 2048u}) {
      const auto x = RandomNormal(3 * n, static_cast<uint32_t>(n)), w = RandomNormal(n, 9);
      std::vector<float> want(3 * n), got(3 * n);
      ref::RmsNorm(x.data(), w.data(), 1e-5f, n, 3, want.data());
      RmsNorm(x.data(), w.data(), 1e-5f, n, 3, got.data());
      // Single-precision sum of squares and scale: relative error ~n * 2^-24.
      for (size_t i = 0; i < got.size(); ++i) {
        ASSERT_NEAR(got[i], want[i], 1e-5 * (1 + std::fabs(want[i]))) << "n=" << n;
      }
    }
  });
}

TEST(KernelsTest, RopeMatchesReferenceBothStylesWithScaling) {
  ForEachTarget([] {
    for (RopeStyle style : {RopeStyle::kNormal, RopeStyle::kNeox}) {
      for (size_t head_dim : {64u, 128u}) {
        RopeConfig c;
        c.head_dim = head_dim;
        c.freq_base = 500000.0f;
        c.style = style;
        c.freq_factors = Llama3RopeFreqFactors(head_dim, c.freq_base, 32.0f, 1.0f, 4.0f, 8192);
        const RopeTable table = RopeTable::Create(c, 4096);
        const size_t tokens = 3, heads = 5;
        auto x = RandomNormal(tokens * heads * head_dim, 3);
        auto want = x;
        const int32_t pos[] = {0, 17, 4095};
        ref::Rope(want.data(), tokens, heads, pos, table);
        Rope(x.data(), tokens, heads, pos, table);
        // Table cos/sin rounded to float (2^-24 relative) and theta up to 4095 rad: the
        // double reference differs by ~|x| * 1e-6.
        for (size_t i = 0; i < x.size(); ++i) ASSERT_NEAR(x[i], want[i], 2e-5) << i;
      }
    }
  });
}

TEST(KernelsTest, RopePositionZeroIsIdentityAndPartialRotationKeepsTail) {
  RopeConfig c;
  c.head_dim = 8;
  c.rot_dims = 4;
  const RopeTable table = RopeTable::Create(c, 2);
  auto x = RandomNormal(8, 1);
  const auto orig = x;
  const int32_t zero = 0, one = 1;
  Rope(x.data(), 1, 1, &zero, table);
  EXPECT_EQ(x, orig);
  Rope(x.data(), 1, 1, &one, table);
  for (size_t i = 4; i < 8; ++i) EXPECT_EQ(x[i], orig[i]);
  EXPECT_NE(x[0], orig[0]);
}

TEST(KernelsTest, Llama3FreqFactorsMatchHfFormula) {
  // Llama-3.2-1B: head_dim 64, theta 500000, factor 32, low 1, high 4, original 8192.
  const auto f = Llama3RopeFreqFactors(64, 500000.0f, 32.0f, 1.0f, 4.0f, 8192);
  ASSERT_EQ(f.size(), 32u);
  EXPECT_EQ(f[0], 1.0f);     // highest frequency: unchanged
  EXPECT_EQ(f[31], 32.0f);   // lowest frequency: divided by the factor
  for (size_t i = 1; i < f.size(); ++i) EXPECT_GE(f[i], f[i - 1]);
}

TEST(KernelsTest, SoftmaxSwiGLUAddMatchReference) {
  ForEachTarget([] {
    for (size_t n : {1u, 7u, 15u, 16u, 17u, 1536u, 8192u}) {
      auto x = RandomNormal(n, static_cast<uint32_t>(n), 4.0f);
      x[0] = 80.0f;  // large logit: stability
      auto want = x, got = x;
      ref::Softmax(want.data(), n);
      Softmax(got.data(), n);
      for (size_t i = 0; i < n; ++i) ASSERT_NEAR(got[i], want[i], 1e-6 + 1e-5 * want[i]);

      const auto g = RandomNormal(n, 1, 3.0f), u = RandomNormal(n, 2);
      std::vector<float> sw(n), sg(n), aw(n), ag(n);
      ref::SwiGLU(g.data(), u.data(), n, sw.data());
      SwiGLU(g.data(), u.data(), n, sg.data());
      // Highway's Exp: a few ulp; the division and products add a few more.
      for (size_t i = 0; i < n; ++i) ASSERT_NEAR(sg[i], sw[i], 1e-5 * (1 + std::fabs(sw[i])));
      ref::Add(g.data(), u.data(), n, aw.data());
      Add(g.data(), u.data(), n, ag.data());
      EXPECT_EQ(ag, aw);
    }
  });
}

// Masked (-inf) and absurd scores or gates: the same answers as the double-precision
// reference within tolerance, with no undefined behaviour on any target (the sanitizer
// build runs this on the emulated ones too).
TEST(KernelsTest, SoftmaxAndSwiGLUTakeInfiniteAndHugeInputs) {
  ForEachTarget([] {
    const size_t n = 40;
    std::vector<float> x(n, -1e30f);
    x[3] = 2.0f, x[20] = 1.0f, x[33] = -INFINITY, x[39] = -200.0f;
    auto want = x, got = x;
    ref::Softmax(want.data(), n);
    Softmax(got.data(), n);
    for (size_t i = 0; i < n; ++i) ASSERT_NEAR(got[i], want[i], 1e-6 + 1e-5 * want[i]) << i;
    EXPECT_EQ(got[33], 0.0f);

    std::vector<float> g(n), u(n, 2.0f), sw(n), sg(n);
    for (size_t i = 0; i < n; ++i) g[i] = static_cast<float>(i) * 10.0f - 200.0f;  // -200..190
    g[0] = -INFINITY, g[1] = -1e30f, g[n - 1] = INFINITY, g[n - 2] = 1e30f;
    ref::SwiGLU(g.data(), u.data(), n, sw.data());
    SwiGLU(g.data(), u.data(), n, sg.data());
    for (size_t i = 1; i + 1 < n; ++i) {
      ASSERT_NEAR(sg[i], sw[i], 1e-5 * (1 + std::fabs(sw[i]))) << "gate " << g[i];
    }
    EXPECT_EQ(sg[n - 1], INFINITY);  // +inf * 1 * 2
    // g = -inf is garbage in either way (the reference: -inf / inf = NaN; here -inf times
    // a sigmoid of 6e-39); only defined behaviour is asked of it, which the sanitizers check.
  });
}

TEST(KernelsTest, ArgMaxAndScaledExpMatchReference) {
  ForEachTarget([] {
    for (size_t n : {1u, 7u, 15u, 16u, 17u, 33u, 1536u, 128256u}) {
      auto x = RandomNormal(n, static_cast<uint32_t>(n) + 5, 4.0f);
      EXPECT_EQ(ArgMax(x.data(), n), ref::ArgMax(x.data(), n)) << n;
      // Ties: the lowest index wins; NaN never wins, not even at index 0.
      x[n / 2] = 100.0f;
      x[n - 1] = 100.0f;
      x[0] = NAN;
      if (n > 2) {
        EXPECT_EQ(ArgMax(x.data(), n), n / 2) << n;
      }
      EXPECT_EQ(ArgMax(x.data(), n), ref::ArgMax(x.data(), n)) << n;
      std::vector<float> want(n), got(n);
      const float scale = 1.0f / 0.7f, offset = 100.0f * scale;
      ref::ScaledExp(x.data(), n, scale, offset, want.data());
      ScaledExp(x.data(), n, scale, offset, got.data());
      EXPECT_EQ(got[0], 0.0f);
      for (size_t i = 0; i < n; ++i) ASSERT_NEAR(got[i], want[i], 1e-30 + 2e-6 * want[i]) << i;
      auto inplace = x;
      ScaledExp(inplace.data(), n, scale, offset, inplace.data());
      EXPECT_EQ(inplace, got);
    }
    // Infinities and huge values never reach exp unclamped: -inf gives 0, +inf the cap.
    const std::vector<float> special = {-INFINITY, INFINITY, 1e30f, -1e30f, NAN, 0.0f};
    std::vector<float> sg(special.size()), sw(special.size());
    ScaledExp(special.data(), special.size(), 1.0f, 0.0f, sg.data());
    ref::ScaledExp(special.data(), special.size(), 1.0f, 0.0f, sw.data());
    EXPECT_EQ(sg[0], 0.0f);
    EXPECT_EQ(sg[3], 0.0f);
    EXPECT_EQ(sg[4], 0.0f);
    EXPECT_EQ(sg[5], 1.0f);
    for (size_t i = 0; i < sg.size(); ++i) EXPECT_NEAR(sg[i], sw[i], 2e-6 * sw[i]) << i;
    EXPECT_TRUE(std::isfinite(sg[1]));
    const std::vector<float> all_nan(37, NAN);
    EXPECT_EQ(ArgMax(all_nan.data(), all_nan.size()), 0u);
    EXPECT_EQ(ref::ArgMax(all_nan.data(), all_nan.size()), 0u);
    std::vector<float> infs(40, -INFINITY);
    infs[33] = INFINITY;
    EXPECT_EQ(ArgMax(infs.data(), infs.size()), 33u);
  });
}

TEST(KernelsTest, GetRowsDequantizesAnyDtype) {
  for (DType dtype : {DType::kF32, DType::kF16, DType::kBF16, DType::kQ8_0, DType::kQ4_0,
                      DType::kQ4_K, DType::kQ6_K, DType::kQ4_1, DType::kQ5_0, DType::kQ5_1,
                      DType::kIQ4_NL, DType::kQ2_K, DType::kQ3_K, DType::kQ5_K, DType::kIQ4_XS}) {
    const TestMatrix w = MakeTestMatrix(dtype, 10, 256, 7);
    const int32_t ids[] = {9, 0, 3, 3};
    std::vector<float> got(4 * 256), want(4 * 256);
    GetRows(w.view, ids, 4, got.data());
    ref::GetRows(w.view, ids, 4, want.data());
    EXPECT_EQ(got, want) << tensor::DTypeName(dtype);
  }
}

TEST(KernelsTest, AttentionMatchesReferenceWithGqaAndF16Cache) {
  ThreadPool pool(2);
  Workspace ws;
  ForEachTarget([&] {
    for (DType cache : {DType::kF32, DType::kF16}) {
      for (size_t head_dim : {64u, 7u}) {
        const size_t heads = 6, kv_heads = 2, first = 5, tokens = 4, len = first + tokens;
        const auto kf = RandomNormal(len * kv_heads * head_dim, 1);
        const auto vf = RandomNormal(len * kv_heads * head_dim, 2);
        std::vector<uint16_t> kh(kf.size()), vh(vf.size());
        tensor::F32ToF16Row(kf.data(), kh.data(), kf.size());
        tensor::F32ToF16Row(vf.data(), vh.data(), vf.size());
        KvView kv;
        kv.dtype = cache;
        kv.k = cache == DType::kF16 ? static_cast<const void*>(kh.data()) : kf.data();
        kv.v = cache == DType::kF16 ? static_cast<const void*>(vh.data()) : vf.data();
        kv.num_kv_heads = kv_heads;
        kv.head_dim = head_dim;
        const auto q = RandomNormal(tokens * heads * head_dim, 3);
        const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
        std::vector<float> want(q.size()), got(q.size());
        ref::Attention(q.data(), tokens, heads, first, kv, scale, want.data());
        Attention(q.data(), tokens, heads, first, kv, scale, got.data(), pool, ws);
        for (size_t i = 0; i < got.size(); ++i) ASSERT_NEAR(got[i], want[i], 2e-5) << i;
        // Decode of the last token alone gives the same bits as inside the batch.
        std::vector<float> one(heads * head_dim);
        Attention(q.data() + (tokens - 1) * heads * head_dim, 1, heads, len - 1, kv, scale,
                  one.data(), pool, ws);
        EXPECT_EQ(0, std::memcmp(one.data(), got.data() + (tokens - 1) * heads * head_dim,
                                 one.size() * 4));
      }
    }
  });
}

// An AVX2 cap picks the AVX2 kernels (and their packed layout) where the CPU has AVX2,
// and lifts again. Q4_0 and Q8_0 give the same bits under the cap as on the best target:
// the integer block dots are exact either way (Q8_0 without VNNI through the sign trick)
// and the float steps are the same, in 8-row tiles, single tokens and 4-token tiles.
TEST(KernelsTest, LimitInstructionSetCapsAtAvx2) {
  EXPECT_FALSE(LimitInstructionSet("avx9").ok());
  const std::string native = ActiveTarget();
  if (const Status s = LimitInstructionSet("avx2"); !s.ok()) GTEST_SKIP() << s.ToString();
  EXPECT_EQ(ActiveTarget(), "AVX2");
  ASSERT_TRUE(LimitInstructionSet("native").ok());
  EXPECT_EQ(ActiveTarget(), native);
  ThreadPool pool(2);
  Workspace ws;
  for (DType dtype : {DType::kQ4_0, DType::kQ8_0}) {
    const TestMatrix w = MakeTestMatrix(dtype, 45, 256, 9);
    for (size_t tokens : {1u, 3u, 9u}) {
      auto x = RandomNormal(tokens * 256, static_cast<uint32_t>(tokens), 3.0f);
      x[7] = 0.0f;
      std::vector<float> capped(tokens * 45), capped_plain(tokens * 45), best(tokens * 45);
      ASSERT_TRUE(LimitInstructionSet("avx2").ok());
      const PackedWeight capped_pack = PackedWeight::Pack(w.view);
      MatMul(capped_pack, x.data(), tokens, capped.data(), pool, ws);
      MatMul(w.view, x.data(), tokens, capped_plain.data(), pool, ws);
      ASSERT_TRUE(LimitInstructionSet("native").ok());
      const PackedWeight best_pack = PackedWeight::Pack(w.view);
      MatMul(best_pack, x.data(), tokens, best.data(), pool, ws);
      EXPECT_EQ(0, std::memcmp(capped.data(), best.data(), best.size() * 4))
          << tensor::DTypeName(dtype) << " tokens=" << tokens;
      EXPECT_EQ(0, std::memcmp(capped_plain.data(), best.data(), best.size() * 4))
          << tensor::DTypeName(dtype) << " tokens=" << tokens;
    }
  }
}

}  // namespace
}  // namespace pocket::kernels
