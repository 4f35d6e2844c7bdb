// kernels::Backend over kernels/ref's plain loops: the oracle. Every op is the ref function
// of the same name on host memory; the ops ref has no function for (MatMulShared, AddBias,
// StoreRows, Axpy) are the obvious loops over it, written here.
#include "kernels/ref/ref_backend.h"

#include <cstdlib>
#include <cstring>
#include <string>

#include "base/check.h"
#include "kernels/ref/ref.h"
#include "tensor/fp16.h"

namespace pocket::kernels::ref {
namespace {

float* F(BufferRef r) {
  return reinterpret_cast<float*>(static_cast<std::byte*>(r.handle) + r.offset_bytes);
}
std::byte* B(BufferRef r) { return static_cast<std::byte*>(r.handle) + r.offset_bytes; }
const int32_t* I32(BufferRef r) { return reinterpret_cast<const int32_t*>(B(r)); }

// The host table itself, read in place.
class HostRope final : public PreparedRope {
 public:
  explicit HostRope(const RopeTable& table) : PreparedRope(table.max_positions()), table_(&table) {}
  const RopeTable& table() const { return *table_; }

 private:
  const RopeTable* table_;
};

// Weights are read in place from their source: no layout of its own.
class RefWeight final : public Weight {
 public:
  explicit RefWeight(const tensor::TensorView& view) : Weight(view) {}
};

const float* F32(const Weight& w) {
  PK_CHECK(w.view().dtype == tensor::DType::kF32);
  return static_cast<const float*>(w.view().data);
}

class RefBackend final : public Backend {
 public:
  BackendKind kind() const override { return BackendKind::kReference; }
  int threads() const override { return 1; }

  Result<Buffer> Allocate(size_t bytes) override {
    const size_t rounded = (std::max<size_t>(bytes, 1) + 63) / 64 * 64;
    void* p = rounded < bytes ? nullptr : std::aligned_alloc(64, rounded);
    if (p == nullptr) {
      return Status::ResourceExhausted("reference backend: cannot allocate " +
                                       std::to_string(bytes) + " bytes");
    }
    return Buffer{p, bytes};
  }
  void Free(Buffer buffer) override { std::free(buffer.handle); }
  void Upload(BufferRef dst, const void* src, size_t bytes) override {
    std::memcpy(B(dst), src, bytes);
  }
  void Download(BufferRef src, void* dst, size_t bytes) override {
    std::memcpy(dst, B(src), bytes);
  }
  void Copy(BufferRef src, BufferRef dst, size_t bytes) override {
    std::memcpy(B(dst), B(src), bytes);
  }
  Status Synchronize() override { return Status::Ok(); }

  bool MatMulSupports(tensor::DType dtype) const override { return kernels::MatMulSupports(dtype); }
  Result<std::unique_ptr<Weight>> PrepareMatrix(const tensor::TensorView& w,
                                                const PrepareOptions&) override {
    PK_CHECK(kernels::MatMulSupports(w.dtype));
    return std::unique_ptr<Weight>(std::make_unique<RefWeight>(w));
  }
  Result<std::unique_ptr<PreparedRope>> PrepareRope(const RopeTable& table) override {
    return std::unique_ptr<PreparedRope>(std::make_unique<HostRope>(table));
  }
  Result<std::unique_ptr<Weight>> PrepareTensor(const tensor::TensorView& w) override {
    return std::unique_ptr<Weight>(std::make_unique<RefWeight>(w));
  }

  void GetRows(const Weight& table, BufferRef ids, size_t num_ids, BufferRef out) override {
    ref::GetRows(table.view(), I32(ids), num_ids, F(out));
  }
  void RmsNorm(BufferRef x, const Weight& weight, float eps, size_t n, size_t num_rows,
               BufferRef out) override {
    ref::RmsNorm(F(x), F32(weight), eps, n, num_rows, F(out));
  }
  void MatMul(const Weight& w, BufferRef x, size_t num_tokens, BufferRef y) override {
    ref::MatMul(w.view(), F(x), num_tokens, F(y));
  }
  // Each job on its own: ref's activation quantization is a pure function of x, so sharing
  // it would change nothing.
  void MatMulShared(std::span<const SharedMatMulJob> jobs, BufferRef x,
                    size_t num_tokens) override {
    for (const SharedMatMulJob& j : jobs) ref::MatMul(j.w->view(), F(x), num_tokens, F(j.y));
  }
  void MatMulToHost(const Weight& w, BufferRef x, size_t num_tokens, float* y) override {
    ref::MatMul(w.view(), F(x), num_tokens, y);
  }
  void AddBias(BufferRef x, const Weight& bias, size_t n, size_t num_rows) override {
    float* p = F(x);
    const float* b = F32(bias);
    for (size_t r = 0; r < num_rows; ++r) {
      for (size_t i = 0; i < n; ++i) p[r * n + i] += b[i];
    }
  }
  void Rope(BufferRef x, size_t num_tokens, size_t num_heads, BufferRef positions,
            const PreparedRope& rope) override {
    const int32_t* pos = I32(positions);
    for (size_t t = 0; t < num_tokens; ++t) {
      PK_CHECK(pos[t] >= 0 && static_cast<size_t>(pos[t]) < rope.max_positions());
    }
    ref::Rope(F(x), num_tokens, num_heads, pos, static_cast<const HostRope&>(rope).table());
  }
  void StoreRows(BufferRef src, size_t n, tensor::DType dtype, BufferRef dst) override {
    const float* s = F(src);
    if (dtype == tensor::DType::kF16) {
      auto* d = reinterpret_cast<uint16_t*>(B(dst));
      for (size_t i = 0; i < n; ++i) d[i] = tensor::F32ToF16(s[i]);
    } else {
      PK_CHECK(dtype == tensor::DType::kF32);
      std::memcpy(B(dst), s, n * sizeof(float));
    }
  }
  void Attention(BufferRef q, size_t num_tokens, size_t num_heads, size_t first_position,
                 const KvRef& kv, float scale, BufferRef out) override {
    KvView view;
    view.dtype = kv.dtype;
    view.k = B(kv.k);
    view.v = B(kv.v);
    view.num_kv_heads = kv.num_kv_heads;
    view.head_dim = kv.head_dim;
    ref::Attention(F(q), num_tokens, num_heads, first_position, view, scale, F(out));
  }
  void SwiGLU(BufferRef gate, BufferRef up, size_t n, BufferRef out) override {
    ref::SwiGLU(F(gate), F(up), n, F(out));
  }
  void Add(BufferRef a, BufferRef b, size_t n, BufferRef out) override {
    ref::Add(F(a), F(b), n, F(out));
  }
  void Axpy(float alpha, BufferRef x, size_t n, BufferRef y) override {
    const float* xs = F(x);
    float* ys = F(y);
    for (size_t i = 0; i < n; ++i) ys[i] += alpha * xs[i];
  }
};

}  // namespace

std::shared_ptr<Backend> MakeRefBackend() { return std::make_shared<RefBackend>(); }

}  // namespace pocket::kernels::ref
