// The reference MatMul path of the IQ1/IQ2/IQ3 weight types (cpu/matmul_dequant.cc) against
// kernels::ref on every compiled Highway target: decode and batched, real row sizes, batch
// invariance, and GetRows (embedding lookup) for these types.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "kernels/cpu/cpu.h"
#include "kernels/cpu/matmul_dequant.h"
#include "kernels/iq_testutil.h"
#include "kernels/kernels.h"
#include "kernels/kernels_testutil.h"
#include "kernels/ref/ref.h"
#include "tensor/quant.h"

namespace pocket::kernels {
namespace {

using tensor::DType;

struct IqWeight {
  std::vector<uint8_t> bytes;
  tensor::TensorView view;
};
IqWeight MakeIqWeight(DType dtype, size_t rows, size_t cols, uint32_t seed) {
  IqWeight w;
  w.bytes = RandomIqRows(dtype, rows, cols, seed);
  w.view.dtype = dtype;
  w.view.ne = {static_cast<int64_t>(cols), static_cast<int64_t>(rows), 1, 1};
  w.view.data = w.bytes.data();
  return w;
}


TEST(MatMulDequantTest, IqTypesRunOnTheReferencePathOnEveryTarget) {
  ForEachTarget([] {
    for (DType t : kIqDTypes) {
      EXPECT_EQ(MatMulPathOf(t), MatMulPath::kReference) << tensor::DTypeName(t);
      EXPECT_EQ(MatMulActivationKind(t), 0) << tensor::DTypeName(t);  // f32 activations
    }
  });
}

TEST(MatMulDequantTest, VectorDecoderGivesTheReferenceBitsOnEveryTarget) {
  ForEachTarget([] {
    for (DType dtype : kIqDTypes) {
      SCOPED_TRACE(std::string(tensor::DTypeName(dtype)));
      constexpr size_t kCols = 8 * 256;
      std::vector<uint8_t> blocks = RandomIqRows(dtype, 1, kCols, 11);
      const size_t bb = tensor::BlockBytes(dtype);
      // Lowest and highest codes everywhere (scales kept: only the first bytes of IQ1_M's
      // scale words are overwritten, the others hold d).
      std::memset(blocks.data() + 2, 0x00, bb - 2 - (dtype == DType::kIQ1_M ? 8 : 0));
      std::memset(blocks.data() + bb + 2, 0xFF, bb - 2 - (dtype == DType::kIQ1_M ? 8 : 0));
      std::vector<float> want(kCols), got(kCols, -1.0f);
      tensor::DequantizeRow(dtype, blocks.data(), want.data(), kCols);
      cpu::DequantizeRowIq(dtype, blocks.data(), got.data(), kCols);
      EXPECT_EQ(0, std::memcmp(want.data(), got.data(), kCols * 4));
    }
  });
}

// The dequantized row is ggml's exact values (quant_iq_test.cc) and the activation is x
// itself, so the only difference from ref::MatMul (double sum, one rounding) is the f32
// summation: eight FMA chains of cols / (8 * lanes) steps, their sum and the lane sum, far
// inside (cols + 16) roundings of 2^-23 of the sum of |products| (the F32 weights' bound in
// kernels_test.cc).
double Tolerance(size_t cols, double abs_sum) {
  return (static_cast<double>(cols) + 16.0) * std::ldexp(abs_sum, -23) + 1e-7;
}

TEST(MatMulDequantTest, MatMulMatchesReferenceDecodeAndBatched) {
  ThreadPool pool(2);
  Workspace ws;
  ForEachTarget([&] {
    for (DType dtype : kIqDTypes) {
      for (size_t cols : {256u, 1536u, 2048u}) {
        for (size_t rows : {1u, 7u, 9u}) {
          for (size_t tokens : {1u, 3u, 6u}) {
            const IqWeight w =
                MakeIqWeight(dtype, rows, cols, static_cast<uint32_t>(rows * 31 + cols));
            const auto x = RandomNormal(tokens * cols, static_cast<uint32_t>(cols + tokens));
            std::vector<float> y(tokens * rows), want(tokens * rows), mag(tokens * rows);
            MatMul(w.view, x.data(), tokens, y.data(), pool, ws);
            ref::MatMul(w.view, x.data(), tokens, want.data());
            ref::MatMulAbs(w.view, x.data(), tokens, mag.data());
            for (size_t i = 0; i < y.size(); ++i) {
              ASSERT_NEAR(y[i], want[i], Tolerance(cols, mag[i]))
                  << tensor::DTypeName(dtype) << " rows=" << rows << " cols=" << cols
                  << " tokens=" << tokens << " i=" << i;
            }
          }
        }
      }
    }
  });
}

TEST(MatMulDequantTest, MatMulIsBatchInvariant) {
  constexpr size_t kTokens = 11, kRows = 37, kCols = 512;
  Workspace ws;
  ThreadPool pool1(1), pool2(2), pool3(3);
  ForEachTarget([&] {
    for (DType dtype : kIqDTypes) {
      SCOPED_TRACE(std::string(tensor::DTypeName(dtype)));
      const IqWeight w = MakeIqWeight(dtype, kRows, kCols, 5);
      const auto x = RandomNormal(kTokens * kCols, 6);
      std::vector<float> batched(kTokens * kRows), batched3(kTokens * kRows);
      MatMul(w.view, x.data(), kTokens, batched.data(), pool2, ws);
      MatMul(w.view, x.data(), kTokens, batched3.data(), pool3, ws);
      EXPECT_EQ(0, std::memcmp(batched.data(), batched3.data(), batched.size() * 4));
      for (size_t t = 0; t < kTokens; ++t) {
        std::vector<float> single(kRows);
        MatMul(w.view, x.data() + t * kCols, 1, single.data(), pool1, ws);
        EXPECT_EQ(0, std::memcmp(single.data(), batched.data() + t * kRows, kRows * 4))
            << "token " << t;
      }
      std::vector<float> pair(2 * kRows);
      MatMul(w.view, x.data() + 3 * kCols, 2, pair.data(), pool2, ws);
      EXPECT_EQ(0, std::memcmp(pair.data(), batched.data() + 3 * kRows, 2 * kRows * 4));
    }
  });
}

TEST(MatMulDequantTest, MatMulSharedMixesIqAndFloatWeights) {
  // All activation kind 0: one shared activation, same bits as separate MatMuls.
  constexpr size_t kCols = 256, kTokens = 5;
  ThreadPool pool(2);
  Workspace ws;
  const IqWeight a = MakeIqWeight(DType::kIQ2_XXS, 24, kCols, 1);
  const IqWeight b = MakeIqWeight(DType::kIQ1_M, 17, kCols, 2);
  const auto x = RandomNormal(kTokens * kCols, 3);
  std::vector<float> ya(kTokens * 24), yb(kTokens * 17), ya1(ya.size()), yb1(yb.size());
  const MatMulJob jobs[] = {{a.view, ya.data()}, {b.view, yb.data()}};
  MatMulShared(jobs, x.data(), kTokens, pool, ws);
  MatMul(a.view, x.data(), kTokens, ya1.data(), pool, ws);
  MatMul(b.view, x.data(), kTokens, yb1.data(), pool, ws);
  EXPECT_EQ(ya, ya1);
  EXPECT_EQ(yb, yb1);
}

TEST(MatMulDequantTest, GetRowsDequantizesIqTypesExactly) {
  for (DType dtype : kIqDTypes) {
    const IqWeight w = MakeIqWeight(dtype, 10, 512, 7);
    const int32_t ids[] = {9, 0, 3, 3};
    std::vector<float> got(4 * 512), want(4 * 512);
    GetRows(w.view, ids, 4, got.data());
    ref::GetRows(w.view, ids, 4, want.data());
    EXPECT_EQ(got, want) << tensor::DTypeName(dtype);
    std::vector<float> row9(512);
    tensor::DequantizeRow(dtype, w.view.row(9), row9.data(), 512);
    EXPECT_EQ(0, std::memcmp(got.data(), row9.data(), 512 * 4)) << tensor::DTypeName(dtype);
  }
}

}  // namespace
}  // namespace pocket::kernels
