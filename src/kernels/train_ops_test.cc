// The training seam of kernels::Backend (backend.h, "Trainable tensors", "Backward ops",
// "Optimizer"). Two kinds of claim:
//  - kernels/ref's backward ops are the derivatives of their forward ops: each is checked
//    against central finite differences of the forward op (the ref function of the same
//    name, or the reference backend's op) on small random shapes, the loss sum_i r_i y_i
//    accumulated in double;
//  - every backend runs them: AdamW against a step computed by hand, trainable tensors read
//    by MatMul / RmsNorm / GetRows / AddBias after Upload and after AdamW;
//  - the CPU backend's fast versions agree with the reference backend on random inputs of
//    ragged sizes, on every compiled Highway target this CPU supports, within the tolerance
//    stated at each op, and give the same bits for 1 and 2 threads and on repeated runs
//    (TrainOpsCpuTest).
// Tolerance of the finite differences: the forward ops round their outputs to float, so a
// central difference with step h carries an error of about 2^-24 |y| sqrt(k) / h for the k
// outputs a coordinate moves, plus the truncation term h^2 |f'''| / 6. With h = 1e-3 and
// |y|, |f'''| of order 1 both stay below 1e-4; 2e-3 (1 + |g|) leaves a wide margin and
// still catches a wrong sign, factor or missing term (each is of order |g|).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "kernels/backend.h"
#include "kernels/cpu/cpu.h"
#include "kernels/kernels_testutil.h"
#include "kernels/quant_blocks_testutil.h"
#include "kernels/ref/ref.h"
#include "tensor/quant.h"

namespace pocket::kernels {
namespace {

using tensor::DType;

tensor::TensorView F32View(const std::vector<float>& v, size_t rows, size_t cols) {
  tensor::TensorView view;
  view.dtype = DType::kF32;
  view.ne = {static_cast<int64_t>(cols), static_cast<int64_t>(rows), 1, 1};
  view.data = v.data();
  return view;
}

double Dot(const std::vector<float>& r, const std::vector<float>& y) {
  double acc = 0.0;
  for (size_t i = 0; i < y.size(); ++i) acc += static_cast<double>(r[i]) * y[i];
  return acc;
}

constexpr float kStep = 1e-3f;

// d loss / d x[j] by central differences; x is perturbed in place and restored. The step
// actually taken is the float difference of the perturbed values.
std::vector<double> NumericGrad(std::vector<float>& x, const std::function<double()>& loss) {
  std::vector<double> g(x.size());
  for (size_t j = 0; j < x.size(); ++j) {
    const float saved = x[j];
    const float xp = saved + kStep, xm = saved - kStep;
    x[j] = xp;
    const double lp = loss();
    x[j] = xm;
    const double lm = loss();
    x[j] = saved;
    g[j] = (lp - lm) / (static_cast<double>(xp) - static_cast<double>(xm));
  }
  return g;
}

void ExpectGradNear(const std::vector<float>& analytic, const std::vector<double>& numeric,
                    const std::string& what) {
  ASSERT_EQ(analytic.size(), numeric.size()) << what;
  for (size_t i = 0; i < analytic.size(); ++i) {
    ASSERT_NEAR(analytic[i], numeric[i], 2e-3 * (1.0 + std::fabs(numeric[i])))
        << what << " i=" << i;
  }
}

// `after - before` elementwise: what an accumulating op added.
std::vector<float> Added(const std::vector<float>& after, const std::vector<float>& before) {
  std::vector<float> d(after.size());
  for (size_t i = 0; i < d.size(); ++i) d[i] = after[i] - before[i];
  return d;
}

TEST(RefTrainOpsTest, MatMulBackwardMatchesFiniteDifferences) {
  const size_t rows = 5, cols = 7, tokens = 3;
  auto w = RandomNormal(rows * cols, 1), x = RandomNormal(tokens * cols, 2);
  const auto r = RandomNormal(tokens * rows, 3);
  auto loss = [&] {
    std::vector<float> y(tokens * rows);
    ref::MatMul(F32View(w, rows, cols), x.data(), tokens, y.data());
    return Dot(r, y);
  };
  // Accumulation onto non-zero gradients: the op adds, never overwrites.
  const auto dx0 = RandomNormal(tokens * cols, 4), dw0 = RandomNormal(rows * cols, 5);
  auto dx = dx0, dw = dw0;
  ref::MatMulBackwardInput(F32View(w, rows, cols), r.data(), tokens, dx.data());
  ref::MatMulBackwardWeight(x.data(), r.data(), tokens, rows, cols, dw.data());
  ExpectGradNear(Added(dx, dx0), NumericGrad(x, loss), "dx");
  ExpectGradNear(Added(dw, dw0), NumericGrad(w, loss), "dw");
}

// Quantized weights: the input gradient is that of the dequantized matrix (straight-through
// for the activation quantization), exactly.
TEST(RefTrainOpsTest, MatMulBackwardInputOfQuantizedWeightIsThatOfItsDequantization) {
  const size_t rows = 6, tokens = 3;
  for (DType dtype : {DType::kQ8_0, DType::kQ4_0, DType::kQ4_K, DType::kF16}) {
    const size_t cols = tensor::BlockElements(dtype) == 256 ? 256 : 64;
    const auto f = RandomNormal(rows * cols, 6, 0.1f);
    std::vector<uint8_t> bytes(rows * tensor::RowBytes(dtype, cols));
    for (size_t row = 0; row < rows; ++row) {
      tensor::QuantizeRow(dtype, f.data() + row * cols,
                          bytes.data() + row * tensor::RowBytes(dtype, cols), cols);
    }
    tensor::TensorView q;
    q.dtype = dtype;
    q.ne = {static_cast<int64_t>(cols), static_cast<int64_t>(rows), 1, 1};
    q.data = bytes.data();
    std::vector<float> deq(rows * cols);
    for (size_t row = 0; row < rows; ++row) {
      tensor::DequantizeRow(dtype, q.row(static_cast<int64_t>(row)), deq.data() + row * cols, cols);
    }
    const auto dy = RandomNormal(tokens * rows, 7);
    std::vector<float> got(tokens * cols, 0.5f), want(tokens * cols, 0.5f);
    ref::MatMulBackwardInput(q, dy.data(), tokens, got.data());
    ref::MatMulBackwardInput(F32View(deq, rows, cols), dy.data(), tokens, want.data());
    EXPECT_EQ(got, want) << tensor::DTypeName(dtype);
  }
}

// SumRows is AddBias's gradient; AddBias runs on the reference backend.
TEST(RefTrainOpsTest, SumRowsMatchesFiniteDifferencesOfAddBias) {
  auto backend = MakeBackend(BackendKind::kReference);
  ASSERT_TRUE(backend.ok());
  Backend& b = **backend;
  const size_t n = 6, num_rows = 4;
  auto bias = RandomNormal(n, 1);
  const auto x = RandomNormal(n * num_rows, 2), r = RandomNormal(n * num_rows, 3);
  auto buf = b.Allocate(x.size() * sizeof(float));
  ASSERT_TRUE(buf.ok());
  DeviceBuffer xb(&b, *buf);
  auto loss = [&] {
    auto w = b.PrepareTensor(F32View(bias, 1, n));
    PK_CHECK(w.ok());
    b.Upload(xb.ref(), x.data(), x.size() * sizeof(float));
    b.AddBias(xb.ref(), **w, n, num_rows);
    std::vector<float> y(x.size());
    b.Download(xb.ref(), y.data(), y.size() * sizeof(float));
    return Dot(r, y);
  };
  std::vector<float> db(n, 0.25f);
  ref::SumRows(r.data(), n, num_rows, db.data());
  ExpectGradNear(Added(db, std::vector<float>(n, 0.25f)), NumericGrad(bias, loss), "dbias");
}

TEST(RefTrainOpsTest, GetRowsBackwardMatchesFiniteDifferencesWithRepeatedIds) {
  const size_t vocab = 5, n = 4;
  auto table = RandomNormal(vocab * n, 1);
  const std::vector<int32_t> ids = {3, 0, 3, 4, 3};
  const auto r = RandomNormal(ids.size() * n, 2);
  auto loss = [&] {
    std::vector<float> y(ids.size() * n);
    ref::GetRows(F32View(table, vocab, n), ids.data(), ids.size(), y.data());
    return Dot(r, y);
  };
  std::vector<float> dt(vocab * n, 0.0f);
  ref::GetRowsBackward(ids.data(), ids.size(), r.data(), n, dt.data());
  ExpectGradNear(dt, NumericGrad(table, loss), "dtable");
  // Row 3 is the float sum of its three rows in id order; rows never named stay 0.
  for (size_t c = 0; c < n; ++c) {
    EXPECT_EQ(dt[3 * n + c], (r[0 * n + c] + r[2 * n + c]) + r[4 * n + c]);
    EXPECT_EQ(dt[1 * n + c], 0.0f);
  }
}

TEST(RefTrainOpsTest, RmsNormBackwardMatchesFiniteDifferences) {
  const size_t n = 8, num_rows = 3;
  const float eps = 1e-5f;
  auto x = RandomNormal(n * num_rows, 1), w = RandomNormal(n, 2);
  const auto r = RandomNormal(n * num_rows, 3);
  auto loss = [&] {
    std::vector<float> y(x.size());
    ref::RmsNorm(x.data(), w.data(), eps, n, num_rows, y.data());
    return Dot(r, y);
  };
  const auto dx0 = RandomNormal(x.size(), 4), dw0 = RandomNormal(n, 5);
  auto dx = dx0, dw = dw0;
  ref::RmsNormBackward(x.data(), w.data(), eps, n, num_rows, r.data(), dx.data(), dw.data());
  ExpectGradNear(Added(dx, dx0), NumericGrad(x, loss), "dx");
  ExpectGradNear(Added(dw, dw0), NumericGrad(w, loss), "dweight");
}

TEST(RefTrainOpsTest, RopeBackwardMatchesFiniteDifferencesAndInvertsRope) {
  for (RopeStyle style : {RopeStyle::kNormal, RopeStyle::kNeox}) {
    RopeConfig c;
    c.head_dim = 8;
    c.rot_dims = style == RopeStyle::kNeox ? 6 : 8;  // a partial rotation too
    c.freq_base = 100.0f;
    c.style = style;
    const RopeTable table = RopeTable::Create(c, 64);
    const size_t tokens = 3, heads = 2;
    const std::vector<int32_t> pos = {0, 5, 17};
    auto x = RandomNormal(tokens * heads * c.head_dim, 1);
    const auto r = RandomNormal(x.size(), 2);
    auto loss = [&] {
      auto y = x;
      ref::Rope(y.data(), tokens, heads, pos.data(), table);
      return Dot(r, y);
    };
    auto dx = r;
    ref::RopeBackward(dx.data(), tokens, heads, pos.data(), table);
    ExpectGradNear(dx, NumericGrad(x, loss), "dx");
    auto round_trip = x;
    ref::Rope(round_trip.data(), tokens, heads, pos.data(), table);
    ref::RopeBackward(round_trip.data(), tokens, heads, pos.data(), table);
    for (size_t i = 0; i < x.size(); ++i) ASSERT_NEAR(round_trip[i], x[i], 1e-6) << i;
  }
}

// GQA (4 query heads over 2 kv heads), several tokens per sequence, two sequences (each
// starting at position 0, so the second must not see the first).
TEST(RefTrainOpsTest, AttentionBackwardMatchesFiniteDifferencesWithGqa) {
  const size_t seqs = 2, len = 3, heads = 4, kv_heads = 2, hd = 4;
  const float scale = 0.5f;
  auto q = RandomNormal(seqs * len * heads * hd, 1);
  auto k = RandomNormal(seqs * len * kv_heads * hd, 2);
  auto v = RandomNormal(seqs * len * kv_heads * hd, 3);
  const auto r = RandomNormal(q.size(), 4);
  auto loss = [&] {
    std::vector<float> out(q.size());
    ref::AttentionTrain(q.data(), k.data(), v.data(), seqs, len, heads, kv_heads, hd, scale,
                        out.data());
    return Dot(r, out);
  };
  // dq, dk, dv are written: start them at garbage.
  std::vector<float> dq(q.size(), 7.0f), dk(k.size(), 7.0f), dv(v.size(), 7.0f);
  ref::AttentionBackward(q.data(), k.data(), v.data(), r.data(), seqs, len, heads, kv_heads, hd,
                         scale, dq.data(), dk.data(), dv.data());
  ExpectGradNear(dq, NumericGrad(q, loss), "dq");
  ExpectGradNear(dk, NumericGrad(k, loss), "dk");
  ExpectGradNear(dv, NumericGrad(v, loss), "dv");
}

TEST(RefTrainOpsTest, AttentionTrainIsAttentionOverEachSequence) {
  const size_t seqs = 2, len = 5, heads = 4, kv_heads = 1, hd = 8;
  const auto q = RandomNormal(seqs * len * heads * hd, 1);
  const auto k = RandomNormal(seqs * len * kv_heads * hd, 2);
  const auto v = RandomNormal(seqs * len * kv_heads * hd, 3);
  std::vector<float> out(q.size());
  ref::AttentionTrain(q.data(), k.data(), v.data(), seqs, len, heads, kv_heads, hd, 0.3f,
                      out.data());
  for (size_t s = 0; s < seqs; ++s) {
    KvView kv;
    kv.k = k.data() + s * len * kv_heads * hd;
    kv.v = v.data() + s * len * kv_heads * hd;
    kv.num_kv_heads = kv_heads;
    kv.head_dim = hd;
    std::vector<float> want(len * heads * hd);
    ref::Attention(q.data() + s * len * heads * hd, len, heads, 0, kv, 0.3f, want.data());
    EXPECT_EQ(0, std::memcmp(want.data(), out.data() + s * len * heads * hd,
                             want.size() * sizeof(float)));
  }
}

TEST(RefTrainOpsTest, SwiGLUBackwardMatchesFiniteDifferencesAndMayAliasDout) {
  const size_t n = 16;
  auto gate = RandomNormal(n, 1, 2.0f), up = RandomNormal(n, 2);
  const auto r = RandomNormal(n, 3);
  auto loss = [&] {
    std::vector<float> y(n);
    ref::SwiGLU(gate.data(), up.data(), n, y.data());
    return Dot(r, y);
  };
  std::vector<float> dgate(n), dup(n);
  ref::SwiGLUBackward(gate.data(), up.data(), r.data(), n, dgate.data(), dup.data());
  ExpectGradNear(dgate, NumericGrad(gate, loss), "dgate");
  ExpectGradNear(dup, NumericGrad(up, loss), "dup");
  auto d1 = r, d2 = r;
  std::vector<float> other(n);
  ref::SwiGLUBackward(gate.data(), up.data(), d1.data(), n, d1.data(), other.data());
  EXPECT_EQ(d1, dgate);
  ref::SwiGLUBackward(gate.data(), up.data(), d2.data(), n, other.data(), d2.data());
  EXPECT_EQ(d2, dup);
}

TEST(RefTrainOpsTest, CrossEntropyMatchesFiniteDifferencesAndIgnoresNegativeTargets) {
  const size_t rows = 4, vocab = 9;
  const float grad_scale = 0.25f;
  auto logits = RandomNormal(rows * vocab, 1, 3.0f);
  const std::vector<int32_t> targets = {2, -1, 8, 0};
  auto loss = [&] {
    std::vector<float> losses(rows), g(rows * vocab);
    ref::CrossEntropy(logits.data(), targets.data(), rows, vocab, 1.0f, losses.data(), g.data());
    double sum = 0.0;
    for (float l : losses) sum += l;
    return sum;
  };
  std::vector<float> losses(rows, 9.0f), dl(rows * vocab, 9.0f);
  ref::CrossEntropy(logits.data(), targets.data(), rows, vocab, grad_scale, losses.data(),
                    dl.data());
  auto numeric = NumericGrad(logits, loss);
  for (double& g : numeric) g *= grad_scale;
  ExpectGradNear(dl, numeric, "dlogits");
  EXPECT_EQ(losses[1], 0.0f);
  for (size_t i = 0; i < vocab; ++i) EXPECT_EQ(dl[vocab + i], 0.0f);
  // The loss itself: log-sum-exp minus the target's logit, in double.
  for (size_t row : {0u, 2u, 3u}) {
    double sum = 0.0;
    for (size_t i = 0; i < vocab; ++i)
      sum += std::exp(static_cast<double>(logits[row * vocab + i]));
    EXPECT_NEAR(losses[row], std::log(sum) - logits[row * vocab + targets[row]], 1e-5) << row;
  }
  // dlogits may be logits itself.
  auto in_place = logits;
  ref::CrossEntropy(in_place.data(), targets.data(), rows, vocab, grad_scale, losses.data(),
                    in_place.data());
  EXPECT_EQ(in_place, dl);
}

// ---- Every backend ----

class TrainBackendTest : public ::testing::TestWithParam<BackendKind> {
 protected:
  void SetUp() override {
    auto b = MakeBackend(GetParam(), 2);
    ASSERT_TRUE(b.ok()) << b.status().ToString();
    backend_ = *b;
  }
  // A buffer holding `v`, owned for the test's length.
  BufferRef Put(const std::vector<float>& v) {
    auto buf = backend_->Allocate(v.size() * sizeof(float));
    PK_CHECK(buf.ok());
    buffers_.emplace_back(backend_.get(), *buf);
    backend_->Upload(buffers_.back().ref(), v.data(), v.size() * sizeof(float));
    return buffers_.back().ref();
  }
  std::vector<float> Get(BufferRef r, size_t n) {
    std::vector<float> v(n);
    backend_->Download(r, v.data(), n * sizeof(float));
    return v;
  }

  std::shared_ptr<Backend> backend_;
  std::vector<DeviceBuffer> buffers_;
};

// Two steps with hand-picked values; the expected numbers are the formula of backend.h
// written out in double. Float rounding of m, v and param bounds the difference by a few
// ulp of each term: 1e-6 relative.
TEST_P(TrainBackendTest, AdamWTakesTheHandComputedSteps) {
  AdamWParams p;
  p.lr = 0.1f;
  p.beta1 = 0.9f;
  p.beta2 = 0.999f;
  p.eps = 1e-8f;
  p.weight_decay = 0.01f;
  p.grad_scale = 0.5f;
  const std::vector<float> param0 = {0.5f, -2.0f, 0.0f};
  const std::vector<float> grad1 = {0.2f, 0.0f, -4.0f}, grad2 = {-0.6f, 1.0f, 2.0f};
  BufferRef param = Put(param0), m = Put({0, 0, 0}), v = Put({0, 0, 0});
  BufferRef g1 = Put(grad1), g2 = Put(grad2);
  p.step = 1;
  backend_->AdamW(param, g1, m, v, 3, p);
  p.step = 2;
  backend_->AdamW(param, g2, m, v, 3, p);
  const auto got = Get(param, 3), got_m = Get(m, 3), got_v = Get(v, 3);
  const double b1 = 0.9f, b2 = 0.999f, lr = 0.1f, wd = 0.01f, eps = 1e-8f;
  for (size_t i = 0; i < 3; ++i) {
    double x = param0[i], mi = 0.0, vi = 0.0;
    for (int step = 1; step <= 2; ++step) {
      const double g = (step == 1 ? grad1[i] : grad2[i]) * 0.5;
      mi = b1 * mi + (1 - b1) * g;
      vi = b2 * vi + (1 - b2) * g * g;
      const double mhat = mi / (1 - std::pow(b1, step)), vhat = vi / (1 - std::pow(b2, step));
      x -= lr * (mhat / (std::sqrt(vhat) + eps) + wd * x);
    }
    EXPECT_NEAR(got[i], x, 1e-6 * (1 + std::fabs(x))) << i;
    EXPECT_NEAR(got_m[i], mi, 1e-6 * std::fabs(mi) + 1e-12) << i;
    EXPECT_NEAR(got_v[i], vi, 1e-6 * std::fabs(vi) + 1e-12) << i;
  }
}

TEST_P(TrainBackendTest, SumSquaresAndFill) {
  const auto x = RandomNormal(1000, 1);
  const BufferRef b = Put(x);
  double want = 0.0;
  for (float f : x) want += static_cast<double>(f) * f;
  // The CPU backend sums float squares in blocks of 256 (relative error <= 256 * 2^-24).
  EXPECT_NEAR(backend_->SumSquares(b, x.size()), want, 2e-5 * want);
  backend_->Fill(b, 999, 0.0f);
  const auto got = Get(b, 1000);
  for (size_t i = 0; i < 999; ++i) ASSERT_EQ(got[i], 0.0f);
  EXPECT_EQ(got[999], x[999]);
  EXPECT_EQ(backend_->SumSquares(b, 999), 0.0);
}

// A trainable tensor is read by the forward ops with its current values: after Upload, and
// again after AdamW changed it in place.
TEST_P(TrainBackendTest, TrainableTensorsAreReadByForwardOpsAfterUploadAndAdamW) {
  const size_t rows = 8, cols = 64, tokens = 3;
  tensor::TensorView shape;
  shape.dtype = DType::kF32;
  shape.ne = {static_cast<int64_t>(cols), static_cast<int64_t>(rows), 1, 1};
  auto w = backend_->CreateTrainable(shape);
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  shape.ne = {static_cast<int64_t>(cols), 1, 1, 1};
  auto norm = backend_->CreateTrainable(shape);
  ASSERT_TRUE(norm.ok());
  EXPECT_EQ((*w)->view().ne[0], static_cast<int64_t>(cols));
  EXPECT_EQ((*w)->view().num_rows(), static_cast<int64_t>(rows));

  auto host_w = RandomNormal(rows * cols, 1, 0.1f), host_n = RandomNormal(cols, 2);
  backend_->Upload(backend_->TrainableData(**w), host_w.data(), host_w.size() * sizeof(float));
  backend_->Upload(backend_->TrainableData(**norm), host_n.data(), cols * sizeof(float));
  const auto xh = RandomNormal(tokens * cols, 3);
  const BufferRef x = Put(xh);
  const std::vector<int32_t> ids = {7, 0, 7};
  auto ids_buf = backend_->Allocate(ids.size() * sizeof(int32_t));
  ASSERT_TRUE(ids_buf.ok());
  DeviceBuffer ids_owner(backend_.get(), *ids_buf);
  backend_->Upload(ids_owner.ref(), ids.data(), ids.size() * sizeof(int32_t));

  auto check = [&](const char* when) {
    SCOPED_TRACE(when);
    // MatMul: float weights, so within the F32 dot's rounding (backend_test.cc's bound).
    const BufferRef y = Put(std::vector<float>(tokens * rows));
    backend_->MatMul(**w, x, tokens, y);
    std::vector<float> want(tokens * rows), mag(tokens * rows);
    ref::MatMul(F32View(host_w, rows, cols), xh.data(), tokens, want.data());
    ref::MatMulAbs(F32View(host_w, rows, cols), xh.data(), tokens, mag.data());
    const auto got = Get(y, tokens * rows);
    for (size_t i = 0; i < got.size(); ++i) {
      ASSERT_NEAR(got[i], want[i], (cols + 16.0) * std::ldexp(mag[i], -23) + 1e-7) << i;
    }
    // GetRows: exact copies of the current rows.
    const BufferRef rows_out = Put(std::vector<float>(ids.size() * cols));
    backend_->GetRows(**w, ids_owner.ref(), ids.size(), rows_out);
    const auto got_rows = Get(rows_out, ids.size() * cols);
    for (size_t i = 0; i < ids.size(); ++i) {
      ASSERT_EQ(0, std::memcmp(got_rows.data() + i * cols, host_w.data() + ids[i] * cols,
                               cols * sizeof(float)));
    }
    // RmsNorm with the trainable weight: a few float roundings (kernels_test.cc's 1e-5).
    const BufferRef n_out = Put(std::vector<float>(tokens * cols));
    backend_->RmsNorm(x, **norm, 1e-5f, cols, tokens, n_out);
    std::vector<float> want_n(tokens * cols);
    ref::RmsNorm(xh.data(), host_n.data(), 1e-5f, cols, tokens, want_n.data());
    const auto got_n = Get(n_out, tokens * cols);
    for (size_t i = 0; i < got_n.size(); ++i) {
      ASSERT_NEAR(got_n[i], want_n[i], 1e-5 * (1 + std::fabs(want_n[i]))) << i;
    }
    // AddBias with the norm vector as a bias: float adds, exact.
    const BufferRef biased = Put(xh);
    backend_->AddBias(biased, **norm, cols, tokens);
    const auto got_b = Get(biased, tokens * cols);
    for (size_t i = 0; i < got_b.size(); ++i) ASSERT_EQ(got_b[i], xh[i] + host_n[i % cols]);
  };
  check("after Upload");

  // One AdamW step on each; the host copies follow through ref::AdamW (the same formula;
  // the CPU backend may round differently, so they are re-read rather than recomputed).
  AdamWParams p;
  p.lr = 0.05f;
  const BufferRef gw = Put(RandomNormal(rows * cols, 4)), gn = Put(RandomNormal(cols, 5));
  const BufferRef mw = Put(std::vector<float>(rows * cols)),
                  vw = Put(std::vector<float>(rows * cols));
  const BufferRef mn = Put(std::vector<float>(cols)), vn = Put(std::vector<float>(cols));
  backend_->AdamW(backend_->TrainableData(**w), gw, mw, vw, rows * cols, p);
  backend_->AdamW(backend_->TrainableData(**norm), gn, mn, vn, cols, p);
  const auto new_w = Get(backend_->TrainableData(**w), rows * cols);
  const auto new_n = Get(backend_->TrainableData(**norm), cols);
  ASSERT_NE(new_w, host_w);
  ASSERT_NE(new_n, host_n);
  for (size_t i = 0; i < new_w.size(); ++i) ASSERT_NEAR(new_w[i], host_w[i], 0.05 * 1.0001);
  host_w = new_w;
  host_n = new_n;
  check("after AdamW");
}

INSTANTIATE_TEST_SUITE_P(Backends, TrainBackendTest,
                         ::testing::Values(BackendKind::kCpu, BackendKind::kReference),
                         [](const auto& p) { return std::string(BackendName(p.param)); });

// ---- The CPU backend's fast versions against the reference backend ----

// Host inputs put into one backend's buffers, outputs read back; owns what it allocates.
class Session {
 public:
  explicit Session(Backend& b) : b_(b) {}
  Backend& b() { return b_; }
  BufferRef Put(const std::vector<float>& v) { return PutBytes(v.data(), v.size() * 4); }
  BufferRef PutInts(const std::vector<int32_t>& v) { return PutBytes(v.data(), v.size() * 4); }
  std::vector<float> Get(BufferRef r, size_t n) {
    std::vector<float> v(n);
    if (n > 0) b_.Download(r, v.data(), n * sizeof(float));
    return v;
  }

 private:
  BufferRef PutBytes(const void* p, size_t bytes) {
    auto buf = b_.Allocate(std::max<size_t>(bytes, 4));
    PK_CHECK(buf.ok());
    owned_.emplace_back(&b_, *buf);
    if (bytes > 0)
      b_.Upload(owned_.back().ref(), p, bytes);  // an empty vector's data() may be null
    return owned_.back().ref();
  }
  Backend& b_;
  std::vector<DeviceBuffer> owned_;
};

using Outputs = std::vector<std::vector<float>>;

bool SameBits(const Outputs& a, const Outputs& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].size() != b[i].size() ||
        (!a[i].empty() &&
         std::memcmp(a[i].data(), b[i].data(), a[i].size() * sizeof(float)) != 0)) {
      return false;
    }
  }
  return true;
}

std::vector<float> Abs(std::vector<float> v) {
  for (float& x : v) x = std::fabs(x);
  return v;
}

// |got - want| <= tol(i) for every i.
template <typename Tol>
void ExpectClose(const std::vector<float>& got, const std::vector<float>& want, const Tol& tol,
                 const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_NEAR(got[i], want[i], tol(i)) << what << " i=" << i;
  }
}

class TrainOpsCpuTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto c2 = MakeBackend(BackendKind::kCpu, 2), c1 = MakeBackend(BackendKind::kCpu, 1);
    auto r = MakeBackend(BackendKind::kReference);
    ASSERT_TRUE(c2.ok() && c1.ok() && r.ok());
    cpu2_ = *c2;
    cpu1_ = *c1;
    ref_ = *r;
  }
  // op on the CPU backend with 2 threads (twice) and 1 thread, and on the reference
  // backend. The CPU runs must agree bit for bit (determinism for any thread count and
  // across runs); returns {cpu, reference}.
  std::pair<Outputs, Outputs> Run(const std::function<Outputs(Session&)>& op) {
    Session s2(*cpu2_), again(*cpu2_), s1(*cpu1_), sr(*ref_);
    Outputs got = op(s2);
    EXPECT_TRUE(SameBits(got, op(again))) << "a repeated run changed the bits";
    EXPECT_TRUE(SameBits(got, op(s1))) << "1 and 2 threads differ";
    return {got, op(sr)};
  }

  std::shared_ptr<Backend> cpu2_, cpu1_, ref_;
};

// Each element is a chain of T + 1 float roundings (one FMA per token onto dw) against
// the reference's single rounding of the exact sum: |error| <= (T + 2) 2^-24 times the
// sum of |terms| (dw0 included).
TEST_F(TrainOpsCpuTest, MatMulBackwardWeightMatchesReference) {
  ForEachTarget([&] {
    struct Shape {
      size_t tokens, rows, cols;
    };
    for (Shape sh : {Shape{1, 1, 1}, Shape{5, 7, 17}, Shape{17, 33, 65}, Shape{64, 70, 130},
                     Shape{300, 9, 40}}) {
      const auto x = RandomNormal(sh.tokens * sh.cols, 1),
                 dy = RandomNormal(sh.tokens * sh.rows, 2);
      const auto dw0 = RandomNormal(sh.rows * sh.cols, 3);
      const std::pair<Outputs, Outputs> run = Run([&](Session& s) -> Outputs {
        const BufferRef dw = s.Put(dw0);
        s.b().MatMulBackwardWeight(s.Put(x), s.Put(dy), sh.tokens, sh.rows, sh.cols, dw);
        return {s.Get(dw, dw0.size())};
      });
      const Outputs& got = run.first;
      const Outputs& want = run.second;
      auto mag = Abs(dw0);
      ref::MatMulBackwardWeight(Abs(x).data(), Abs(dy).data(), sh.tokens, sh.rows, sh.cols,
                                mag.data());
      ExpectClose(
          got[0], want[0],
          [&](size_t i) { return (sh.tokens + 2.0) * std::ldexp(mag[i], -24) + 1e-30; },
          "tokens=" + std::to_string(sh.tokens) + " rows=" + std::to_string(sh.rows) +
              " cols=" + std::to_string(sh.cols));
    }
  });
}

// A weight [rows][cols] of dtype (MakeTestMatrix) and its exact dequantization.
struct TestWeight : TestMatrix {
  std::vector<float> deq;
};
TestWeight MakeWeight(DType dtype, size_t rows, size_t cols, uint32_t seed) {
  TestWeight w{MakeTestMatrix(dtype, rows, cols, seed), {}};
  const size_t row_bytes = tensor::RowBytes(dtype, cols);
  w.deq.resize(rows * cols);
  for (size_t r = 0; r < rows; ++r) {
    tensor::DequantizeRow(dtype, w.bytes.data() + r * row_bytes, w.deq.data() + r * cols, cols);
  }
  return w;
}

// The weight is dequantized exactly (tensor::DequantizeRow's bits) on both backends, so
// as for the weight gradient only the float chain differs: (rows + 2) 2^-24 of the sum of
// |terms|.
TEST_F(TrainOpsCpuTest, MatMulBackwardInputMatchesReferenceOnEveryWeightType) {
  struct Case {
    DType dtype;
    std::vector<size_t> cols;
  };
  const std::vector<Case> cases = {
      {DType::kF32, {1, 7, 17, 130}}, {DType::kF16, {7, 130}},   {DType::kBF16, {7, 130}},
      {DType::kQ8_0, {32, 96, 576}},  {DType::kQ4_0, {32, 576}}, {DType::kQ4_1, {96}},
      {DType::kQ5_0, {96}},           {DType::kQ5_1, {96}},      {DType::kIQ4_NL, {96}},
      {DType::kQ4_K, {256, 768}},     {DType::kQ6_K, {256}},     {DType::kQ2_K, {256}},
      {DType::kQ3_K, {256}},          {DType::kQ5_K, {256}},     {DType::kIQ4_XS, {256}},
      {DType::kIQ2_XXS, {256}},       {DType::kIQ3_S, {512}},    {DType::kIQ1_M, {256}},
  };
  ForEachTarget([&] {
    for (const Case& c : cases) {
      for (size_t cols : c.cols) {
        for (size_t rows : {1u, 70u, 300u}) {
          // 300 rows (past the k blocks of both paths) only for F32 and Q8_0.
          if (rows == 300 && c.dtype != DType::kF32 && c.dtype != DType::kQ8_0) continue;
          for (size_t tokens : {1u, 5u, 67u}) {
            const TestWeight w =
                MakeWeight(c.dtype, rows, cols, static_cast<uint32_t>(rows + cols));
            const auto dy = RandomNormal(tokens * rows, 4), dx0 = RandomNormal(tokens * cols, 5);
            const std::pair<Outputs, Outputs> run = Run([&](Session& s) -> Outputs {
              auto pw = s.b().PrepareMatrix(w.view, {});
              PK_CHECK(pw.ok());
              const BufferRef dx = s.Put(dx0);
              s.b().MatMulBackwardInput(**pw, s.Put(dy), tokens, dx);
              return {s.Get(dx, dx0.size())};
            });
            const Outputs& got = run.first;
            const Outputs& want = run.second;
            auto mag = Abs(dx0);
            const auto abs_w = Abs(w.deq);
            ref::MatMulBackwardInput(F32View(abs_w, rows, cols), Abs(dy).data(), tokens,
                                     mag.data());
            ExpectClose(
                got[0], want[0],
                [&](size_t i) { return (rows + 2.0) * std::ldexp(mag[i], -24) + 1e-30; },
                std::string(tensor::DTypeName(c.dtype)) + " rows=" + std::to_string(rows) +
                    " cols=" + std::to_string(cols) + " tokens=" + std::to_string(tokens));
          }
        }
      }
    }
  });
}

// Float adds in row order onto dbias: (rows + 2) 2^-24 of the sum of |terms|.
TEST_F(TrainOpsCpuTest, SumRowsMatchesReference) {
  ForEachTarget([&] {
    for (size_t n : {1u, 7u, 300u, 600u}) {
      for (size_t rows : {1u, 5u, 33u}) {
        const auto dy = RandomNormal(rows * n, 1), b0 = RandomNormal(n, 2);
        const std::pair<Outputs, Outputs> run = Run([&](Session& s) -> Outputs {
          const BufferRef b = s.Put(b0);
          s.b().SumRows(s.Put(dy), n, rows, b);
          return {s.Get(b, n)};
        });
        const Outputs& got = run.first;
        const Outputs& want = run.second;
        auto mag = Abs(b0);
        ref::SumRows(Abs(dy).data(), n, rows, mag.data());
        ExpectClose(
            got[0], want[0],
            [&](size_t i) { return (rows + 2.0) * std::ldexp(mag[i], -24) + 1e-30; },
            "n=" + std::to_string(n) + " rows=" + std::to_string(rows));
      }
    }
  });
}

// The same float adds in the same order as the reference: equal bits.
TEST_F(TrainOpsCpuTest, GetRowsBackwardEqualsReferenceBitForBit) {
  ForEachTarget([&] {
    const size_t vocab = 11;
    const std::vector<int32_t> ids = {3, 0, 3, 10, 3, 5};
    for (size_t n : {1u, 7u, 300u}) {
      const auto dout = RandomNormal(ids.size() * n, 1), t0 = RandomNormal(vocab * n, 2);
      const std::pair<Outputs, Outputs> run = Run([&](Session& s) -> Outputs {
        const BufferRef t = s.Put(t0);
        s.b().GetRowsBackward(s.PutInts(ids), ids.size(), s.Put(dout), n, t);
        return {s.Get(t, t0.size())};
      });
      const Outputs& got = run.first;
      const Outputs& want = run.second;
      EXPECT_TRUE(SameBits(got, want)) << "n=" << n;
    }
  });
}

// dx = r w dy - (r^3 / n) (sum dy w x) x: float dots over n carry n + 2 roundings of their
// |terms|, r one of a few ulp; bound each element by (n + 16) 2^-23 times the sum of the
// magnitudes of its two terms (plus dx0's rounding). dweight: a chain of rows FMAs of
// terms each off by r's error: (rows + n + 16) 2^-23 of the sum of |terms|.
TEST_F(TrainOpsCpuTest, RmsNormBackwardMatchesReference) {
  ForEachTarget([&] {
    const float eps = 1e-5f;
    for (size_t n : {1u, 7u, 64u, 576u}) {
      for (size_t rows : {1u, 3u, 17u}) {
        const auto x = RandomNormal(rows * n, 1), w = RandomNormal(n, 2);
        const auto dy = RandomNormal(rows * n, 3), dx0 = RandomNormal(rows * n, 4);
        const auto dw0 = RandomNormal(n, 5);
        const std::pair<Outputs, Outputs> run = Run([&](Session& s) -> Outputs {
          auto pw = s.b().PrepareTensor(F32View(w, 1, n));
          PK_CHECK(pw.ok());
          const BufferRef dx = s.Put(dx0), dw = s.Put(dw0);
          s.b().RmsNormBackward(s.Put(x), **pw, eps, n, rows, s.Put(dy), dx, dw);
          return {s.Get(dx, dx0.size()), s.Get(dw, n)};
        });
        const Outputs& got = run.first;
        const Outputs& want = run.second;
        std::vector<double> mag_dx(rows * n), mag_dw(n);
        for (size_t i = 0; i < n; ++i) mag_dw[i] = std::fabs(dw0[i]);
        for (size_t row = 0; row < rows; ++row) {
          double ss = 0.0, dot = 0.0;
          for (size_t i = 0; i < n; ++i) {
            ss += static_cast<double>(x[row * n + i]) * x[row * n + i];
            dot += std::fabs(static_cast<double>(dy[row * n + i]) * w[i] * x[row * n + i]);
          }
          const double r = 1.0 / std::sqrt(ss / n + eps);
          for (size_t i = 0; i < n; ++i) {
            const size_t e = row * n + i;
            mag_dx[e] = std::fabs(dx0[e]) + r * std::fabs(w[i] * dy[e]) +
                        r * r * r / n * dot * std::fabs(x[e]);
            mag_dw[i] += std::fabs(dy[e] * x[e]) * r;
          }
        }
        const std::string what = "n=" + std::to_string(n) + " rows=" + std::to_string(rows);
        ExpectClose(
            got[0], want[0],
            [&](size_t i) { return (n + 16.0) * std::ldexp(mag_dx[i], -23) + 1e-30; },
            "dx " + what);
        ExpectClose(
            got[1], want[1],
            [&](size_t i) { return (rows + n + 16.0) * std::ldexp(mag_dw[i], -23) + 1e-30; },
            "dweight " + what);
      }
    }
  });
}

// Rope's tolerance (kernels_test.cc): the float cos/sin table against the double angles.
TEST_F(TrainOpsCpuTest, RopeBackwardMatchesReference) {
  ForEachTarget([&] {
    for (RopeStyle style : {RopeStyle::kNormal, RopeStyle::kNeox}) {
      RopeConfig c;
      c.head_dim = 64;
      c.rot_dims = style == RopeStyle::kNeox ? 48 : 64;
      c.freq_base = 500000.0f;
      c.style = style;
      const RopeTable table = RopeTable::Create(c, 4096);
      const size_t tokens = 3, heads = 5;
      const std::vector<int32_t> pos = {0, 17, 4095};
      const auto x = RandomNormal(tokens * heads * c.head_dim, 3);
      const std::pair<Outputs, Outputs> run = Run([&](Session& s) -> Outputs {
        auto rope = s.b().PrepareRope(table);
        PK_CHECK(rope.ok());
        const BufferRef dx = s.Put(x);
        s.b().RopeBackward(dx, tokens, heads, s.PutInts(pos), **rope);
        return {s.Get(dx, x.size())};
      });
      const Outputs& got = run.first;
      const Outputs& want = run.second;
      ExpectClose(
          got[0], want[0], [](size_t) { return 2e-5; }, "rope");
    }
  });
}

// The training forward and the inference forward agree bit for bit, on both backends.
TEST_F(TrainOpsCpuTest, AttentionTrainIsAttentionOverAnF32Cache) {
  ForEachTarget([&] {
    const size_t seqs = 3, len = 9, heads = 6, kv_heads = 2;
    for (size_t hd : {7u, 64u}) {
      const auto q = RandomNormal(seqs * len * heads * hd, 1);
      const auto k = RandomNormal(seqs * len * kv_heads * hd, 2);
      const auto v = RandomNormal(seqs * len * kv_heads * hd, 3);
      const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
      for (Backend* b : {cpu2_.get(), cpu1_.get(), ref_.get()}) {
        Session s(*b);
        const BufferRef qb = s.Put(q), kb = s.Put(k), vb = s.Put(v);
        const BufferRef out = s.Put(std::vector<float>(q.size()));
        b->AttentionTrain(qb, kb, vb, seqs, len, heads, kv_heads, hd, scale, out);
        const auto train = s.Get(out, q.size());
        for (size_t si = 0; si < seqs; ++si) {
          KvRef kv;
          kv.k = kb.FloatAt(si * len * kv_heads * hd);
          kv.v = vb.FloatAt(si * len * kv_heads * hd);
          kv.num_kv_heads = kv_heads;
          kv.head_dim = hd;
          const BufferRef o = s.Put(std::vector<float>(len * heads * hd));
          b->Attention(qb.FloatAt(si * len * heads * hd), len, heads, 0, kv, scale, o);
          const auto inference = s.Get(o, len * heads * hd);
          ASSERT_EQ(0, std::memcmp(inference.data(), train.data() + si * len * heads * hd,
                                   inference.size() * sizeof(float)))
              << BackendName(b->kind()) << " threads " << b->threads() << " seq " << si;
        }
      }
    }
  });
}

TEST_F(TrainOpsCpuTest, AttentionBackwardMatchesReference) {
  struct Shape {
    size_t seqs, len, heads, kv_heads, hd;
  };
  ForEachTarget([&] {
    for (Shape sh : {Shape{1, 1, 1, 1, 1}, Shape{2, 5, 4, 2, 8}, Shape{1, 17, 9, 3, 64},
                     Shape{3, 7, 6, 1, 17}}) {
      const size_t qn = sh.seqs * sh.len * sh.heads * sh.hd;
      const size_t kvn = sh.seqs * sh.len * sh.kv_heads * sh.hd;
      const auto q = RandomNormal(qn, 1), k = RandomNormal(kvn, 2), v = RandomNormal(kvn, 3);
      const auto dout = RandomNormal(qn, 4);
      const float scale = 1.0f / std::sqrt(static_cast<float>(sh.hd));
      const std::pair<Outputs, Outputs> run = Run([&](Session& s) -> Outputs {
        const BufferRef dq = s.Put(std::vector<float>(qn, 9.0f));
        const BufferRef dk = s.Put(std::vector<float>(kvn, 9.0f));
        const BufferRef dv = s.Put(std::vector<float>(kvn, 9.0f));
        s.b().AttentionBackward(s.Put(q), s.Put(k), s.Put(v), s.Put(dout), sh.seqs, sh.len,
                                sh.heads, sh.kv_heads, sh.hd, scale, dq, dk, dv);
        return {s.Get(dq, qn), s.Get(dk, kvn), s.Get(dv, kvn)};
      });
      const Outputs& got = run.first;
      const Outputs& want = run.second;
      // Each element sums at most len * group terms (dk, dv; dq: len) whose factors carry
      // O(hd) float roundings (dots over hd) and Exp's few ulp: a normwise bound of
      // (len * group + hd + 16) 2^-23 of the tensor's largest element.
      const char* names[] = {"dq", "dk", "dv"};
      const size_t group = sh.heads / sh.kv_heads;
      for (size_t o = 0; o < 3; ++o) {
        double max_abs = 0.0;
        for (float f : want[o]) max_abs = std::max(max_abs, std::fabs(static_cast<double>(f)));
        const double tol = (sh.len * group + sh.hd + 16.0) * std::ldexp(max_abs, -23) + 1e-30;
        ExpectClose(
            got[o], want[o], [&](size_t) { return tol; },
            std::string(names[o]) + " len=" + std::to_string(sh.len) +
                " hd=" + std::to_string(sh.hd));
      }
    }
  });
}

// SwiGLU's tolerance (kernels_test.cc): Highway's Exp is a few ulp off, then a few float
// products: 1e-5 (1 + |want|).
TEST_F(TrainOpsCpuTest, SwiGLUBackwardMatchesReferenceAndMayWriteOverDout) {
  ForEachTarget([&] {
    for (size_t n : {1u, 7u, 16u, 17u, 1000u, 40000u}) {
      const auto gate = RandomNormal(n, 1, 4.0f), up = RandomNormal(n, 2),
                 dout = RandomNormal(n, 3);
      const std::pair<Outputs, Outputs> run = Run([&](Session& s) -> Outputs {
        const BufferRef g = s.Put(gate), u = s.Put(up), d = s.Put(dout);
        const BufferRef dg = s.Put(std::vector<float>(n)), du = s.Put(std::vector<float>(n));
        s.b().SwiGLUBackward(g, u, d, n, dg, du);
        // dgate written over dout, then dup over dout: the same bits.
        const BufferRef d1 = s.Put(dout), d2 = s.Put(dout);
        s.b().SwiGLUBackward(g, u, d1, n, d1, s.Put(std::vector<float>(n)));
        s.b().SwiGLUBackward(g, u, d2, n, s.Put(std::vector<float>(n)), d2);
        return {s.Get(dg, n), s.Get(du, n), s.Get(d1, n), s.Get(d2, n)};
      });
      const Outputs& got = run.first;
      const Outputs& want = run.second;
      const std::string what = "n=" + std::to_string(n);
      ExpectClose(
          got[0], want[0], [&](size_t i) { return 1e-5 * (1 + std::fabs(want[0][i])); },
          "dgate " + what);
      ExpectClose(
          got[1], want[1], [&](size_t i) { return 1e-5 * (1 + std::fabs(want[1][i])); },
          "dup " + what);
      EXPECT_TRUE(SameBits({got[0]}, {got[2]})) << what;
      EXPECT_TRUE(SameBits({got[1]}, {got[3]})) << what;
    }
  });
}

// Exp's few ulp per probability and the double sum of the exps: probabilities within
// 1e-5 relative; the target's -grad_scale adds one rounding of grad_scale (2^-20 covers
// it); the loss within 1e-5 (1 + loss).
TEST_F(TrainOpsCpuTest, CrossEntropyMatchesReferenceInPlaceOrNot) {
  ForEachTarget([&] {
    const float grad_scale = 0.1f;
    for (size_t vocab : {1u, 8u, 1000u, 32001u}) {
      const std::vector<int32_t> targets = {0, -1, static_cast<int32_t>(vocab - 1),
                                            static_cast<int32_t>(vocab / 2), -7};
      const size_t rows = targets.size();
      const auto logits = RandomNormal(rows * vocab, 1, 3.0f);
      const std::pair<Outputs, Outputs> run = Run([&](Session& s) -> Outputs {
        const BufferRef l = s.Put(logits), t = s.PutInts(targets);
        const BufferRef loss = s.Put(std::vector<float>(rows, 5.0f));
        const BufferRef g = s.Put(std::vector<float>(rows * vocab, 5.0f));
        s.b().CrossEntropy(l, t, rows, vocab, grad_scale, loss, g);
        const BufferRef loss2 = s.Put(std::vector<float>(rows));
        s.b().CrossEntropy(l, t, rows, vocab, grad_scale, loss2, l);  // dlogits over logits
        return {s.Get(loss, rows), s.Get(g, rows * vocab), s.Get(loss2, rows),
                s.Get(l, rows * vocab)};
      });
      const Outputs& got = run.first;
      const Outputs& want = run.second;
      const std::string what = "vocab=" + std::to_string(vocab);
      ExpectClose(
          got[0], want[0], [&](size_t i) { return 1e-5 * (1 + std::fabs(want[0][i])); },
          "loss " + what);
      ExpectClose(
          got[1], want[1],
          [&](size_t i) {
            return 1e-5 * std::fabs(want[1][i]) + std::ldexp(grad_scale, -20) + 1e-30;
          },
          "dlogits " + what);
      EXPECT_TRUE(SameBits({got[0], got[1]}, {got[2], got[3]})) << "in place " << what;
      EXPECT_EQ(got[0][1], 0.0f);
      EXPECT_EQ(got[0][4], 0.0f);
    }
  });
}

// The update in float: m and v within a few ulp of their terms (1e-6 relative); the
// step's terms within a few ulp each, so param within 1e-6 |param| + 1e-5 lr.
TEST_F(TrainOpsCpuTest, AdamWMatchesReference) {
  ForEachTarget([&] {
    AdamWParams p;
    p.lr = 0.01f;
    p.weight_decay = 0.1f;
    p.grad_scale = 0.5f;
    p.step = 3;
    for (size_t n : {1u, 7u, 100000u}) {
      const auto param0 = RandomNormal(n, 1), grad = RandomNormal(n, 2);
      const auto m0 = RandomNormal(n, 3, 0.1f);
      auto v0 = Abs(RandomNormal(n, 4, 0.1f));
      for (float& x : v0) x *= x;
      const std::pair<Outputs, Outputs> run = Run([&](Session& s) -> Outputs {
        const BufferRef pb = s.Put(param0), mb = s.Put(m0), vb = s.Put(v0);
        s.b().AdamW(pb, s.Put(grad), mb, vb, n, p);
        return {s.Get(pb, n), s.Get(mb, n), s.Get(vb, n)};
      });
      const Outputs& got = run.first;
      const Outputs& want = run.second;
      const std::string what = "n=" + std::to_string(n);
      ExpectClose(
          got[0], want[0], [&](size_t i) { return 1e-6 * std::fabs(want[0][i]) + 1e-5 * p.lr; },
          "param " + what);
      // m = b1 m0 + (1 - b1) g may cancel: bound by its terms' magnitudes.
      ExpectClose(
          got[1], want[1],
          [&](size_t i) {
            return 1e-6 *
                   (p.beta1 * std::fabs(m0[i]) + (1 - p.beta1) * std::fabs(grad[i] * p.grad_scale));
          },
          "m " + what);
      ExpectClose(
          got[2], want[2], [&](size_t i) { return 1e-6 * std::fabs(want[2][i]) + 1e-30; },
          "v " + what);
    }
  });
}

// Blocks of 256 float squares (relative error <= 256 2^-24 < 2e-5), then double.
TEST_F(TrainOpsCpuTest, SumSquaresAndFillMatchReference) {
  ForEachTarget([&] {
    for (size_t n : {0u, 1u, 255u, 256u, 257u, 100000u}) {
      const auto x = RandomNormal(n, static_cast<uint32_t>(n));
      const std::pair<Outputs, Outputs> run = Run([&](Session& s) -> Outputs {
        const BufferRef b = s.Put(x);
        const double sum = s.b().SumSquares(b, n);
        s.b().Fill(b, n, 0.5f);
        // The double as two floats' bits, so the bit-identity check covers it.
        float bits[2];
        std::memcpy(bits, &sum, sizeof(sum));
        return {{bits[0], bits[1]}, s.Get(b, n)};
      });
      const Outputs& got = run.first;
      const Outputs& want = run.second;
      double g, w;
      std::memcpy(&g, got[0].data(), sizeof(g));
      std::memcpy(&w, want[0].data(), sizeof(w));
      EXPECT_NEAR(g, w, 2e-5 * w) << n;
      EXPECT_TRUE(SameBits({got[1]}, {want[1]})) << n;
      EXPECT_EQ(got[1], std::vector<float>(n, 0.5f));
    }
  });
}

}  // namespace
}  // namespace pocket::kernels
