// kernels::Backend over the CPU kernels of kernels.h: each op unwraps its host pointers and
// calls the kernel with the backend's pool and workspace. Not a Highway file: the SIMD
// dispatch happens inside kernels.cc / cpu/*.cc as before, so this adds one virtual call per
// op and nothing else (no copies; MatMulToHost writes the logits straight into the
// caller's memory).
#include "kernels/cpu/cpu_backend.h"

#include <cstdlib>
#include <cstring>
#include <string>

#include "base/check.h"
#include "base/thread_pool.h"
#include "tensor/fp16.h"

namespace pocket::kernels::cpu {
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

// A matrix: its packed copy when PrepareMatrix made one, else the source view.
class CpuWeight final : public Weight {
 public:
  explicit CpuWeight(const tensor::TensorView& view) : Weight(view) {}
  CpuWeight(const tensor::TensorView& view, PackedWeight packed)
      : Weight(view), packed_(std::move(packed)) {}
  const PackedWeight* packed() const { return packed_.packed() ? &packed_ : nullptr; }
  const float* f32() const { return static_cast<const float*>(view().data); }

 private:
  PackedWeight packed_;
};

const CpuWeight& W(const Weight& w) { return static_cast<const CpuWeight&>(w); }

class CpuBackend final : public Backend {
 public:
  explicit CpuBackend(int threads) : pool_(static_cast<size_t>(threads)) {}

  BackendKind kind() const override { return BackendKind::kCpu; }
  int threads() const override { return static_cast<int>(pool_.num_threads()); }

  Result<Buffer> Allocate(size_t bytes) override {
    // 64-byte aligned, uninitialised: pages become resident only when an op writes them
    // (a KV cache costs address space until its tokens arrive).
    const size_t rounded = (std::max<size_t>(bytes, 1) + 63) / 64 * 64;
    void* p = rounded < bytes ? nullptr : std::aligned_alloc(64, rounded);
    if (p == nullptr) {
      return Status::ResourceExhausted("cpu backend: cannot allocate " + std::to_string(bytes) +
                                       " bytes");
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
  Status Synchronize() override { return Status::Ok(); }  // ops finish before they return

  bool MatMulSupports(tensor::DType dtype) const override { return kernels::MatMulSupports(dtype); }
  Result<std::unique_ptr<Weight>> PrepareMatrix(const tensor::TensorView& w,
                                                const PrepareOptions& opts) override {
    if (!opts.repack) return std::unique_ptr<Weight>(std::make_unique<CpuWeight>(w));
    PK_ASSIGN_OR_RETURN(PackedWeight packed, PackedWeight::TryPack(w, opts.consumed, opts.source));
    return std::unique_ptr<Weight>(std::make_unique<CpuWeight>(w, std::move(packed)));
  }
  Result<std::unique_ptr<PreparedRope>> PrepareRope(const RopeTable& table) override {
    return std::unique_ptr<PreparedRope>(std::make_unique<HostRope>(table));
  }
  Result<std::unique_ptr<Weight>> PrepareTensor(const tensor::TensorView& w) override {
    return std::unique_ptr<Weight>(std::make_unique<CpuWeight>(w));
  }

  void GetRows(const Weight& table, BufferRef ids, size_t num_ids, BufferRef out) override {
    kernels::GetRows(table.view(), I32(ids), num_ids, F(out));
  }
  void RmsNorm(BufferRef x, const Weight& weight, float eps, size_t n, size_t num_rows,
               BufferRef out) override {
    kernels::RmsNorm(F(x), W(weight).f32(), eps, n, num_rows, F(out));
  }
  void MatMul(const Weight& w, BufferRef x, size_t num_tokens, BufferRef y) override {
    MatMulToHost(w, x, num_tokens, F(y));
  }
  void MatMulShared(std::span<const SharedMatMulJob> jobs, BufferRef x,
                    size_t num_tokens) override {
    PK_CHECK(!jobs.empty() && jobs.size() <= 8);
    // One quantization of x for all jobs when they take the same activation kind (the
    // kernels require it); else each job on its own, with the same bits.
    const int kind = MatMulActivationKind(jobs[0].w->view().dtype);
    bool same = true;
    for (const SharedMatMulJob& j : jobs) same &= MatMulActivationKind(j.w->view().dtype) == kind;
    if (!same) {
      for (const SharedMatMulJob& j : jobs) MatMul(*j.w, x, num_tokens, j.y);
      return;
    }
    MatMulJob k[8];
    for (size_t i = 0; i < jobs.size(); ++i) {
      k[i] = {jobs[i].w->view(), F(jobs[i].y), W(*jobs[i].w).packed()};
    }
    kernels::MatMulShared(std::span<const MatMulJob>(k, jobs.size()), F(x), num_tokens, pool_, ws_);
  }
  void MatMulToHost(const Weight& w, BufferRef x, size_t num_tokens, float* y) override {
    if (const PackedWeight* p = W(w).packed()) {
      kernels::MatMul(*p, F(x), num_tokens, y, pool_, ws_);
    } else {
      kernels::MatMul(w.view(), F(x), num_tokens, y, pool_, ws_);
    }
  }
  void AddBias(BufferRef x, const Weight& bias, size_t n, size_t num_rows) override {
    float* p = F(x);
    for (size_t r = 0; r < num_rows; ++r) kernels::Add(p + r * n, W(bias).f32(), n, p + r * n);
  }
  void Rope(BufferRef x, size_t num_tokens, size_t num_heads, BufferRef positions,
            const PreparedRope& rope) override {
    kernels::Rope(F(x), num_tokens, num_heads, I32(positions),
                  static_cast<const HostRope&>(rope).table());
  }
  void StoreRows(BufferRef src, size_t n, tensor::DType dtype, BufferRef dst) override {
    if (dtype == tensor::DType::kF16) {
      tensor::F32ToF16Row(F(src), reinterpret_cast<tensor::f16_t*>(B(dst)), n);
    } else {
      PK_CHECK(dtype == tensor::DType::kF32);
      std::memcpy(B(dst), F(src), n * sizeof(float));
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
    kernels::Attention(F(q), num_tokens, num_heads, first_position, view, scale, F(out), pool_,
                       ws_);
  }
  void SwiGLU(BufferRef gate, BufferRef up, size_t n, BufferRef out) override {
    kernels::SwiGLU(F(gate), F(up), n, F(out));
  }
  void Add(BufferRef a, BufferRef b, size_t n, BufferRef out) override {
    kernels::Add(F(a), F(b), n, F(out));
  }
  void Axpy(float alpha, BufferRef x, size_t n, BufferRef y) override {
    const float* xs = F(x);
    float* ys = F(y);
    for (size_t i = 0; i < n; ++i) ys[i] += alpha * xs[i];
  }

 private:
  ThreadPool pool_;
  Workspace ws_;
};

}  // namespace

std::shared_ptr<Backend> MakeCpuBackend(int threads) {
  PK_CHECK(threads >= 0);
  return std::make_shared<CpuBackend>(threads);
}

}  // namespace pocket::kernels::cpu
