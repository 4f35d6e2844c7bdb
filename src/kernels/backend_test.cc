// Every op of every backend (TEST_P over BackendKind) against the reference backend on
// random inputs, ragged and real model sizes, with the tolerance of each op stated where it
// is checked. For the CPU backend every compiled Highway target this CPU supports is run
// (the reference backend ignores the target). The tolerances are those kernels_test.cc
// justifies for the same kernels against kernels/ref; the reference backend against itself
// must agree exactly, which checks the harness too.
#include "kernels/backend.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "kernels/cpu/cpu.h"
#include "kernels/kernels_testutil.h"
#include "kernels/quant_blocks_testutil.h"
#include "kernels/ref/ref.h"
#include "tensor/fp16.h"
#include "tensor/quant.h"

namespace pocket::kernels {
namespace {

using tensor::DType;

// A host array living in a backend buffer for the length of a test.
class Tensor {
 public:
  Tensor(Backend& b, size_t bytes) : backend_(&b) {
    auto buf = b.Allocate(bytes);
    PK_CHECK(buf.ok());
    buffer_ = DeviceBuffer(&b, *buf);
    bytes_ = bytes;
  }
  Tensor(Backend& b, const std::vector<float>& v) : Tensor(b, v.size() * sizeof(float)) {
    backend_->Upload(ref(), v.data(), bytes_);
  }
  BufferRef ref(size_t offset = 0) const { return buffer_.ref(offset); }
  std::vector<float> Floats() const {
    std::vector<float> v(bytes_ / sizeof(float));
    backend_->Download(ref(), v.data(), bytes_);
    return v;
  }

 private:
  Backend* backend_;
  DeviceBuffer buffer_;
  size_t bytes_ = 0;
};

// The result of a Prepare* call that must succeed (test inputs are small).
template <typename T>
std::unique_ptr<T> Prepared(Result<std::unique_ptr<T>> w) {
  PK_CHECK(w.ok());
  return std::move(*w);
}

class BackendTest : public ::testing::TestWithParam<BackendKind> {
 protected:
  void SetUp() override {
    auto b = MakeBackend(GetParam(), 2);
    ASSERT_TRUE(b.ok()) << b.status().ToString();
    backend_ = *b;
    auto r = MakeBackend(BackendKind::kReference);
    ASSERT_TRUE(r.ok());
    ref_ = *r;
  }
  // Runs `body` once per compiled+supported SIMD target (dispatch forced to it).
  template <typename F>
  void ForEachTarget(const F& body) {
    kernels::ForEachTarget(body, GetParam() == BackendKind::kReference);  // no SIMD there
  }
  // The result of op(backend, output) for `out_floats` floats, on `b`.
  template <typename Op>
  std::vector<float> Run(Backend& b, size_t out_floats, const Op& op) {
    Tensor out(b, out_floats * sizeof(float));
    op(b, out.ref());
    return out.Floats();
  }

  std::shared_ptr<Backend> backend_, ref_;
};

// MatMul's tolerance against the reference (kernels_test.cc, Tolerance, derives it): int8
// block dots are exact, so only float roundings of scales and partial sums remain — about
// (cols / 32 + 8) roundings of 2^-22 of the sum of |products| for Q8_0/Q4_0; cols + 16
// roundings of 2^-23 for float weights; 2^-14 for K-quants (cancellation of the min term).
double MatMulTolerance(DType dtype, size_t cols, double abs_sum) {
  switch (dtype) {
    case DType::kQ2_K: case DType::kQ3_K: case DType::kQ4_K: case DType::kQ5_K:
    case DType::kQ6_K: case DType::kIQ4_XS:
      return std::ldexp(abs_sum, -14) + 1e-7;
    case DType::kF32:
    case DType::kF16:
    case DType::kBF16:
    // The IQ types: f32 dot of the exactly dequantized row (matmul_dequant_test.cc).
    case DType::kIQ2_XXS: case DType::kIQ2_XS: case DType::kIQ2_S: case DType::kIQ3_XXS:
    case DType::kIQ3_S: case DType::kIQ1_S: case DType::kIQ1_M:
      return (static_cast<double>(cols) + 16.0) * std::ldexp(abs_sum, -23) + 1e-7;
    default:
      return (static_cast<double>(cols) / 32.0 + 8.0) * std::ldexp(abs_sum, -22) + 1e-7;
  }
}

TEST_P(BackendTest, NamesRoundTripAndUnknownNamesAreRejected) {
  EXPECT_EQ(backend_->kind(), GetParam());
  auto k = ParseBackendKind(BackendName(GetParam()));
  ASSERT_TRUE(k.ok());
  EXPECT_EQ(*k, GetParam());
  EXPECT_EQ(ParseBackendKind("gpu").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(MakeBackend(GetParam(), -1).status().code(), StatusCode::kInvalidArgument);
  EXPECT_GE(backend_->threads(), 1);
}

TEST_P(BackendTest, UploadCopyDownloadRoundTripBytes) {
  const auto x = RandomNormal(1000, 1);
  Tensor a(*backend_, x), b(*backend_, x.size() * sizeof(float));
  backend_->Copy(a.ref(40), b.ref(0), 960 * sizeof(float));
  std::vector<float> got(960);
  backend_->Download(b.ref(), got.data(), got.size() * sizeof(float));
  EXPECT_EQ(0, std::memcmp(got.data(), x.data() + 10, got.size() * sizeof(float)));
  EXPECT_TRUE(backend_->Synchronize().ok());
}

// A matrix whose backend copy cannot be allocated is an error, not an abort. The CPU
// backend packs Q4_0 (where its layout exists); a view of ~2^64 packed bytes makes the
// allocation fail before any source byte is read, so the view needs no data.
TEST_P(BackendTest, PrepareMatrixReportsResourceExhausted) {
  if (GetParam() != BackendKind::kCpu || cpu::PackedLayout(DType::kQ4_0) == cpu::kPackedNone) {
    GTEST_SKIP() << "no packed copy on this backend/CPU";
  }
  tensor::TensorView v;
  v.dtype = DType::kQ4_0;
  const size_t groups = SIZE_MAX / cpu::kPackedQ4Bytes;  // one block per row
  v.ne = {32, static_cast<int64_t>(8 * groups), 1, 1};
  static const uint8_t kByte = 0;
  v.data = &kByte;
  bool consumed = false;
  PrepareOptions po;
  po.consumed = [&](const void*, size_t) { consumed = true; };
  auto w = backend_->PrepareMatrix(v, po);
  EXPECT_EQ(w.status().code(), StatusCode::kResourceExhausted) << w.status().ToString();
  EXPECT_FALSE(consumed);
  auto packed = PackedWeight::TryPack(v);
  EXPECT_EQ(packed.status().code(), StatusCode::kResourceExhausted);
}

TEST_P(BackendTest, MatMulMatchesReferenceOnAllDtypes) {
  struct Case {
    DType dtype;
    std::vector<size_t> cols;
  };
  const std::vector<Case> cases = {
      {DType::kQ8_0, {32, 576, 2048}}, {DType::kQ4_0, {32, 96, 576}},
      {DType::kQ4_K, {256, 1536}},     {DType::kQ6_K, {256, 1536}},
      {DType::kQ4_1, {32, 576, 896}},  {DType::kQ5_0, {32, 576, 896}},
      {DType::kQ5_1, {32, 576, 896}},  {DType::kIQ4_NL, {32, 576, 896}},
      {DType::kQ2_K, {256, 1536}},     {DType::kQ3_K, {256, 1536}},
      {DType::kQ5_K, {256, 1536}},     {DType::kIQ4_XS, {256, 1536}},
      {DType::kF32, {1, 7, 17, 576}},  {DType::kF16, {1, 7, 17, 576}},
      {DType::kBF16, {1, 7, 17, 576}},
      {DType::kIQ2_XXS, {256}},        {DType::kIQ2_XS, {256}}, {DType::kIQ2_S, {256}},
      {DType::kIQ3_XXS, {256}},        {DType::kIQ3_S, {256}},  {DType::kIQ1_S, {256}},
      {DType::kIQ1_M, {256}},
  };
  ForEachTarget([&] {
    for (const auto& c : cases) {
      for (size_t cols : c.cols) {
        // 1536 rows (a real model's width: several row units per thread) only at the
        // narrowest input, to keep the reference's loops quick.
        for (size_t rows : {1u, 9u, 17u, 1536u}) {
          if (rows == 1536 && cols != c.cols.front()) continue;
          // 17 and 64 tokens: the prefill paths (token tiles, AMX at 16+ where present).
          for (size_t tokens : {1u, 6u, 17u, 64u}) {
            for (bool repack : {false, true}) {
              const TestMatrix hw =
                  MakeTestMatrix(c.dtype, rows, cols, static_cast<uint32_t>(rows + cols));
              const auto xh = RandomNormal(tokens * cols, static_cast<uint32_t>(cols + tokens));
              PrepareOptions po;
              po.repack = repack;
              const auto w = Prepared(backend_->PrepareMatrix(hw.view, po));
              const auto wr = Prepared(ref_->PrepareMatrix(hw.view, po));
              Tensor x(*backend_, xh), xr(*ref_, xh);
              const auto got = Run(*backend_, tokens * rows, [&](Backend& b, BufferRef y) {
                b.MatMul(*w, x.ref(), tokens, y);
              });
              const auto want = Run(*ref_, tokens * rows, [&](Backend& b, BufferRef y) {
                b.MatMul(*wr, xr.ref(), tokens, y);
              });
              std::vector<float> mag(tokens * rows);
              ref::MatMulAbs(hw.view, xh.data(), tokens, mag.data());
              for (size_t i = 0; i < got.size(); ++i) {
                ASSERT_NEAR(got[i], want[i], MatMulTolerance(c.dtype, cols, mag[i]))
                    << tensor::DTypeName(c.dtype) << " rows=" << rows << " cols=" << cols
                    << " tokens=" << tokens << " repack=" << repack << " i=" << i;
              }
              // The logits form writes the same bits to host memory.
              std::vector<float> host(tokens * rows);
              backend_->MatMulToHost(*w, x.ref(), tokens, host.data());
              ASSERT_EQ(host, got);
            }
          }
        }
      }
    }
  });
}

// MatMulShared's contract is bit-identity with separate MatMuls on the same backend, for
// jobs of one activation kind and of mixed kinds (the backend then splits them).
TEST_P(BackendTest, MatMulSharedEqualsSeparateMatMuls) {
  ForEachTarget([&] {
    const size_t cols = 256, tokens = 5;
    for (std::vector<DType> dtypes :
         {std::vector<DType>{DType::kQ4_0, DType::kQ8_0, DType::kQ4_0},
          std::vector<DType>{DType::kQ4_K, DType::kQ6_K},
          std::vector<DType>{DType::kQ2_K, DType::kQ3_K, DType::kQ5_K, DType::kIQ4_XS,
                             DType::kQ4_K},
          std::vector<DType>{DType::kF32, DType::kF16},
          std::vector<DType>{DType::kQ8_0, DType::kF32, DType::kQ4_K},
          std::vector<DType>{DType::kIQ2_XXS, DType::kF16, DType::kIQ1_S},
          std::vector<DType>{DType::kQ4_0, DType::kIQ3_S},
          std::vector<DType>{DType::kQ5_0, DType::kQ8_0, DType::kIQ4_NL, DType::kQ5_1,
                             DType::kQ4_1},
          std::vector<DType>{DType::kQ5_0, DType::kQ6_K, DType::kQ4_1}}) {
      std::vector<TestMatrix> hw;
      std::vector<std::unique_ptr<Weight>> w;
      std::vector<Tensor> ys;
      std::vector<SharedMatMulJob> jobs;
      const auto xh = RandomNormal(tokens * cols, 4);
      Tensor x(*backend_, xh);
      for (size_t j = 0; j < dtypes.size(); ++j) {
        hw.push_back(MakeTestMatrix(dtypes[j], 24 + 8 * j, cols, static_cast<uint32_t>(j)));
        w.push_back(Prepared(backend_->PrepareMatrix(hw.back().view, {})));
        ys.emplace_back(*backend_, tokens * (24 + 8 * j) * sizeof(float));
      }
      for (size_t j = 0; j < dtypes.size(); ++j) jobs.push_back({w[j].get(), ys[j].ref()});
      backend_->MatMulShared(jobs, x.ref(), tokens);
      for (size_t j = 0; j < dtypes.size(); ++j) {
        const auto alone = Run(*backend_, tokens * (24 + 8 * j), [&](Backend& b, BufferRef y) {
          b.MatMul(*w[j], x.ref(), tokens, y);
        });
        ASSERT_EQ(ys[j].Floats(), alone) << "job " << j << " " << tensor::DTypeName(dtypes[j]);
      }
    }
  });
}

TEST_P(BackendTest, GetRowsDequantizesAnyDtypeExactly) {
  ForEachTarget([&] {
    for (DType dtype : {DType::kF32, DType::kF16, DType::kBF16, DType::kQ8_0, DType::kQ4_0,
                        DType::kQ4_K, DType::kQ6_K, DType::kQ4_1, DType::kQ5_0, DType::kQ5_1,
                        DType::kIQ4_NL, DType::kIQ2_XXS, DType::kIQ2_XS, DType::kIQ2_S,
                        DType::kIQ3_XXS, DType::kIQ3_S, DType::kIQ1_S, DType::kIQ1_M,
                        DType::kQ2_K, DType::kQ3_K, DType::kQ5_K, DType::kIQ4_XS}) {
      const TestMatrix hw = MakeTestMatrix(dtype, 10, 256, 7);
      const int32_t ids[] = {9, 0, 3, 3};
      const auto t = Prepared(backend_->PrepareTensor(hw.view));
      const auto tr = Prepared(ref_->PrepareTensor(hw.view));
      // The ids live in each backend's memory.
      Tensor it(*backend_, sizeof(ids)), ir(*ref_, sizeof(ids));
      backend_->Upload(it.ref(), ids, sizeof(ids));
      ref_->Upload(ir.ref(), ids, sizeof(ids));
      // Dequantization is exact arithmetic on both: tolerance 0.
      EXPECT_EQ(
          Run(*backend_, 4 * 256, [&](Backend& b, BufferRef o) { b.GetRows(*t, it.ref(), 4, o); }),
          Run(*ref_, 4 * 256, [&](Backend& b, BufferRef o) { b.GetRows(*tr, ir.ref(), 4, o); }))
          << tensor::DTypeName(dtype);
    }
  });
}

TEST_P(BackendTest, RmsNormMatchesReference) {
  ForEachTarget([&] {
    for (size_t n : {1u, 7u, 17u, 576u, 2048u}) {
      const auto xh = RandomNormal(3 * n, static_cast<uint32_t>(n));
      const TestMatrix hw = MakeTestMatrix(DType::kF32, 1, n, 9, 1.0f);
      const auto w = Prepared(backend_->PrepareTensor(hw.view));
      const auto wr = Prepared(ref_->PrepareTensor(hw.view));
      Tensor x(*backend_, xh), xr(*ref_, xh);
      const auto got = Run(*backend_, 3 * n, [&](Backend& b, BufferRef o) {
        b.RmsNorm(x.ref(), *w, 1e-5f, n, 3, o);
      });
      const auto want = Run(
          *ref_, 3 * n, [&](Backend& b, BufferRef o) { b.RmsNorm(xr.ref(), *wr, 1e-5f, n, 3, o); });
      // Single-precision sum of squares and scale: relative error ~n * 2^-24.
      for (size_t i = 0; i < got.size(); ++i) {
        ASSERT_NEAR(got[i], want[i], 1e-5 * (1 + std::fabs(want[i]))) << "n=" << n;
      }
    }
  });
}

TEST_P(BackendTest, AddBiasAddAxpyAreExact) {
  ForEachTarget([&] {
    for (size_t n : {1u, 7u, 17u, 1536u}) {
      const auto ah = RandomNormal(3 * n, 1), bh = RandomNormal(3 * n, 2);
      const TestMatrix bias = MakeTestMatrix(DType::kF32, 1, n, 3, 1.0f);
      auto run = [&](Backend& be) {
        const auto bw = Prepared(be.PrepareTensor(bias.view));
        Tensor a(be, ah), b(be, bh);
        be.AddBias(a.ref(), *bw, n, 3);
        be.Add(a.ref(), b.ref(), 3 * n, b.ref());
        be.Axpy(0.375f, a.ref(), 3 * n, b.ref());
        return b.Floats();
      };
      // One float add / multiply-add per element in a fixed order: tolerance 0.
      EXPECT_EQ(run(*backend_), run(*ref_)) << "n=" << n;
    }
  });
}

TEST_P(BackendTest, SwiGLUMatchesReference) {
  ForEachTarget([&] {
    for (size_t n : {1u, 7u, 17u, 1536u, 8192u}) {
      const auto g = RandomNormal(n, 1, 3.0f), u = RandomNormal(n, 2);
      auto run = [&](Backend& be) {
        Tensor gt(be, g), ut(be, u);
        be.SwiGLU(gt.ref(), ut.ref(), n, gt.ref());  // in place, as the model does
        return gt.Floats();
      };
      const auto got = run(*backend_), want = run(*ref_);
      // Highway's Exp: a few ulp; the division and products add a few more.
      for (size_t i = 0; i < n; ++i) ASSERT_NEAR(got[i], want[i], 1e-5 * (1 + std::fabs(want[i])));
    }
  });
}

TEST_P(BackendTest, RopeMatchesReferenceBothStyles) {
  ForEachTarget([&] {
    for (RopeStyle style : {RopeStyle::kNormal, RopeStyle::kNeox}) {
      for (size_t head_dim : {64u, 128u}) {
        RopeConfig c;
        c.head_dim = head_dim;
        c.freq_base = 500000.0f;
        c.style = style;
        c.freq_factors = Llama3RopeFreqFactors(head_dim, c.freq_base, 32.0f, 1.0f, 4.0f, 8192);
        const RopeTable table = RopeTable::Create(c, 4096);
        const size_t tokens = 3, heads = 5;
        const auto xh = RandomNormal(tokens * heads * head_dim, 3);
        const int32_t pos[] = {0, 17, 4095};
        auto run = [&](Backend& be) {
          Tensor x(be, xh), p(be, sizeof(pos));
          be.Upload(p.ref(), pos, sizeof(pos));
          const auto rope = Prepared(be.PrepareRope(table));
          EXPECT_EQ(rope->max_positions(), 4096u);
          be.Rope(x.ref(), tokens, heads, p.ref(), *rope);
          return x.Floats();
        };
        const auto got = run(*backend_), want = run(*ref_);
        // Table cos/sin rounded to float and theta up to 4095 rad: ~|x| * 1e-6 from the
        // double reference.
        for (size_t i = 0; i < got.size(); ++i) ASSERT_NEAR(got[i], want[i], 2e-5) << i;
      }
    }
  });
}

TEST_P(BackendTest, StoreRowsConvertsLikeTheReference) {
  ForEachTarget([&] {
    const auto xh = RandomNormal(333, 5, 100.0f);
    for (DType dtype : {DType::kF32, DType::kF16}) {
      auto run = [&](Backend& be) {
        Tensor x(be, xh), dst(be, xh.size() * sizeof(float));
        be.StoreRows(x.ref(), xh.size(), dtype, dst.ref());
        std::vector<uint8_t> bytes(tensor::RowBytes(dtype, xh.size()));
        be.Download(dst.ref(), bytes.data(), bytes.size());
        return bytes;
      };
      // F16 rounding to nearest even is exact arithmetic: tolerance 0.
      EXPECT_EQ(run(*backend_), run(*ref_)) << tensor::DTypeName(dtype);
    }
  });
}

TEST_P(BackendTest, AttentionMatchesReferenceWithGqaAndF16Cache) {
  ForEachTarget([&] {
    for (DType cache : {DType::kF32, DType::kF16}) {
      for (size_t head_dim : {64u, 7u}) {
        const size_t heads = 6, kv_heads = 2, first = 5, tokens = 4, len = first + tokens;
        const auto kf = RandomNormal(len * kv_heads * head_dim, 1);
        const auto vf = RandomNormal(len * kv_heads * head_dim, 2);
        const auto qh = RandomNormal(tokens * heads * head_dim, 3);
        const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
        auto run = [&](Backend& be) {
          Tensor kt(be, kf), vt(be, vf), q(be, qh), out(be, qh.size() * sizeof(float));
          Tensor kc(be, kf.size() * sizeof(float)), vc(be, vf.size() * sizeof(float));
          be.StoreRows(kt.ref(), kf.size(), cache, kc.ref());
          be.StoreRows(vt.ref(), vf.size(), cache, vc.ref());
          KvRef kv{cache, kc.ref(), vc.ref(), kv_heads, head_dim};
          be.Attention(q.ref(), tokens, heads, first, kv, scale, out.ref());
          std::vector<float> result = out.Floats();
          // Decode of the last token alone: the same bits as inside the batch.
          Tensor one(be, heads * head_dim * sizeof(float));
          be.Attention(q.ref((tokens - 1) * heads * head_dim * sizeof(float)), 1, heads, len - 1,
                       kv, scale, one.ref());
          EXPECT_EQ(
              0, std::memcmp(one.Floats().data(), result.data() + (tokens - 1) * heads * head_dim,
                             heads * head_dim * sizeof(float)));
          return result;
        };
        const auto got = run(*backend_), want = run(*ref_);
        // F32 scores and softmax against the double reference, unit-scale inputs.
        for (size_t i = 0; i < got.size(); ++i) ASSERT_NEAR(got[i], want[i], 2e-5) << i;
      }
    }
  });
}

// Batch invariance is part of the Backend contract (backend.h): a token's MatMul output is
// bit-identical whatever the batch size, its place in the batch, the backend's thread
// count, and whether the matrix was repacked or is read in place; MatMulShared gives the
// same bits too.
TEST_P(BackendTest, MatMulIsBatchInvariant) {
  constexpr size_t kTokens = 19, kRows = 37;  // 19: past the 16-token tiles, with a tail
  auto b1 = MakeBackend(GetParam(), 1), b3 = MakeBackend(GetParam(), 3);
  ASSERT_TRUE(b1.ok() && b3.ok());
  ForEachTarget([&] {
    for (DType dtype :
         {DType::kQ8_0, DType::kQ4_0, DType::kQ4_K, DType::kQ6_K, DType::kF16, DType::kF32,
          DType::kQ4_1, DType::kQ5_0, DType::kQ5_1, DType::kIQ4_NL, DType::kIQ2_XXS,
          DType::kIQ2_XS, DType::kIQ2_S, DType::kIQ3_XXS, DType::kIQ3_S, DType::kIQ1_S,
          DType::kIQ1_M, DType::kQ2_K, DType::kQ3_K, DType::kQ5_K, DType::kIQ4_XS}) {
      const size_t cols = tensor::BlockElements(dtype) == 256 ? 512 : 576;
      const TestMatrix hw = MakeTestMatrix(dtype, kRows, cols, 5);
      const auto xh = RandomNormal(kTokens * cols, 6);
      PrepareOptions in_place;
      in_place.repack = false;
      // The batch on 2 threads, repacked: what every other form must reproduce.
      const auto w2 = Prepared(backend_->PrepareMatrix(hw.view, {}));
      Tensor x2(*backend_, xh);
      const auto batched = Run(*backend_, kTokens * kRows, [&](Backend& b, BufferRef y) {
        b.MatMul(*w2, x2.ref(), kTokens, y);
      });
      for (Backend* be : {b1->get(), b3->get(), backend_.get()}) {
        for (bool repack : {true, false}) {
          const auto w = Prepared(be->PrepareMatrix(hw.view, repack ? PrepareOptions{} : in_place));
          Tensor x(*be, xh);
          SCOPED_TRACE(std::string(tensor::DTypeName(dtype)) + " threads " +
                       std::to_string(be->threads()) + " repack " + std::to_string(repack));
          ASSERT_EQ(Run(*be, kTokens * kRows,
                        [&](Backend& b, BufferRef y) { b.MatMul(*w, x.ref(), kTokens, y); }),
                    batched);
          Tensor ys(*be, kTokens * kRows * sizeof(float));
          const SharedMatMulJob job{w.get(), ys.ref()};
          be->MatMulShared({&job, 1}, x.ref(), kTokens);
          ASSERT_EQ(ys.Floats(), batched);
          for (size_t t : {size_t{0}, size_t{3}, kTokens - 1}) {
            const auto single = Run(*be, kRows, [&](Backend& b, BufferRef y) {
              b.MatMul(*w, x.ref(t * cols * sizeof(float)), 1, y);
            });
            ASSERT_EQ(0, std::memcmp(single.data(), batched.data() + t * kRows, kRows * 4))
                << "token " << t;
          }
          // Tokens 3 and 4 as a batch of 2.
          const auto pair = Run(*be, 2 * kRows, [&](Backend& b, BufferRef y) {
            b.MatMul(*w, x.ref(3 * cols * sizeof(float)), 2, y);
          });
          ASSERT_EQ(0, std::memcmp(pair.data(), batched.data() + 3 * kRows, 2 * kRows * 4));
        }
      }
    }
  });
}

// Attention is batch invariant too: each query token's output is the same bits whether the
// token runs inside a prefill batch or alone as a decode step, on any thread count.
TEST_P(BackendTest, AttentionIsBatchInvariant) {
  auto b1 = MakeBackend(GetParam(), 1), b3 = MakeBackend(GetParam(), 3);
  ASSERT_TRUE(b1.ok() && b3.ok());
  ForEachTarget([&] {
    for (DType cache : {DType::kF32, DType::kF16}) {
      const size_t heads = 6, kv_heads = 2, head_dim = 64, first = 3, tokens = 9;
      const size_t len = first + tokens, row = heads * head_dim;
      const auto kf = RandomNormal(len * kv_heads * head_dim, 1);
      const auto vf = RandomNormal(len * kv_heads * head_dim, 2);
      const auto qh = RandomNormal(tokens * row, 3);
      const float scale = 0.125f;
      std::vector<float> batched;
      for (Backend* be : {backend_.get(), b1->get(), b3->get()}) {
        Tensor kt(*be, kf), vt(*be, vf), q(*be, qh);
        Tensor kc(*be, kf.size() * sizeof(float)), vc(*be, vf.size() * sizeof(float));
        be->StoreRows(kt.ref(), kf.size(), cache, kc.ref());
        be->StoreRows(vt.ref(), vf.size(), cache, vc.ref());
        const KvRef kv{cache, kc.ref(), vc.ref(), kv_heads, head_dim};
        const auto all = Run(*be, tokens * row, [&](Backend& b, BufferRef o) {
          b.Attention(q.ref(), tokens, heads, first, kv, scale, o);
        });
        if (batched.empty()) batched = all;
        ASSERT_EQ(all, batched) << "threads " << be->threads();
        for (size_t t = 0; t < tokens; ++t) {
          const auto alone = Run(*be, row, [&](Backend& b, BufferRef o) {
            b.Attention(q.ref(t * row * sizeof(float)), 1, heads, first + t, kv, scale, o);
          });
          ASSERT_EQ(0, std::memcmp(alone.data(), batched.data() + t * row, row * 4))
              << "token " << t << " threads " << be->threads() << " " << tensor::DTypeName(cache);
        }
      }
    }
  });
}

INSTANTIATE_TEST_SUITE_P(Backends, BackendTest,
                         ::testing::Values(BackendKind::kCpu, BackendKind::kReference),
                         [](const auto& p) { return std::string(BackendName(p.param)); });

}  // namespace
}  // namespace pocket::kernels
