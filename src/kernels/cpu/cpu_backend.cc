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
#include "kernels/cpu/train.h"
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

// A matrix: its packed copy when PrepareMatrix made one, else the source view. A trainable
// tensor (CreateTrainable) is never packed: its view points into the buffer it owns, so
// every op reads the values AdamW last wrote.
class CpuWeight final : public Weight {
 public:
  explicit CpuWeight(const tensor::TensorView& view) : Weight(view) {}
  CpuWeight(const tensor::TensorView& view, PackedWeight packed)
      : Weight(view), packed_(std::move(packed)) {}
  CpuWeight(const tensor::TensorView& view, Buffer owned) : Weight(view), owned_(owned) {}
  ~CpuWeight() override { std::free(owned_.handle); }
  CpuWeight(const CpuWeight&) = delete;
  CpuWeight& operator=(const CpuWeight&) = delete;
  const PackedWeight* packed() const { return packed_.packed() ? &packed_ : nullptr; }
  const float* f32() const { return static_cast<const float*>(view().data); }
  // The buffer of a trainable tensor; handle nullptr for any other weight.
  const Buffer& owned() const { return owned_; }

 private:
  PackedWeight packed_;
  Buffer owned_;
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
    // kernels require it); else (or for trainable weights) each job on its own, with the
    // same bits.
    const int kind = MatMulActivationKind(jobs[0].w->view().dtype);
    bool same = true;
    for (const SharedMatMulJob& j : jobs) {
      same &= MatMulActivationKind(j.w->view().dtype) == kind && W(*j.w).owned().handle == nullptr;
    }
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
    if (W(w).owned().handle != nullptr) {  // trainable: the training forward's GEMM
      cpu::MatMulTrainable(W(w).f32(), static_cast<size_t>(w.view().num_rows()),
                           static_cast<size_t>(w.view().ne[0]), F(x), num_tokens, y, pool_);
    } else if (const PackedWeight* p = W(w).packed()) {
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

  Result<std::unique_ptr<Weight>> CreateTrainable(const tensor::TensorView& shape) override {
    PK_CHECK(shape.dtype == tensor::DType::kF32);
    const size_t count = static_cast<size_t>(shape.num_elements());
    if (count > SIZE_MAX / sizeof(float)) {
      return Status::ResourceExhausted("cpu backend: trainable tensor of " +
                                       std::to_string(count) + " floats is too large");
    }
    PK_ASSIGN_OR_RETURN(Buffer buffer, Allocate(count * sizeof(float)));
    tensor::TensorView view = shape;
    view.data = buffer.handle;
    return std::unique_ptr<Weight>(std::make_unique<CpuWeight>(view, buffer));
  }
  BufferRef TrainableData(const Weight& w) override {
    const Buffer& b = W(w).owned();
    PK_CHECK(b.handle != nullptr && "TrainableData: not made by CreateTrainable");
    return {b.handle, 0};
  }

  void MatMulBackwardInput(const Weight& w, BufferRef dy, size_t num_tokens,
                           BufferRef dx) override {
    cpu::MatMulBackwardInput(w.view(), F(dy), num_tokens, F(dx), pool_);
  }
  void MatMulBackwardWeight(BufferRef x, BufferRef dy, size_t num_tokens, size_t rows,
                            size_t cols, BufferRef dw) override {
    cpu::MatMulBackwardWeight(F(x), F(dy), num_tokens, rows, cols, F(dw), pool_);
  }
  void SumRows(BufferRef dy, size_t n, size_t num_rows, BufferRef dbias) override {
    cpu::SumRows(F(dy), n, num_rows, F(dbias), pool_);
  }
  void GetRowsBackward(BufferRef ids, size_t num_ids, BufferRef dout, size_t n,
                       BufferRef dtable) override {
    cpu::GetRowsBackward(I32(ids), num_ids, F(dout), n, F(dtable), pool_);
  }
  void RmsNormBackward(BufferRef x, const Weight& weight, float eps, size_t n, size_t num_rows,
                       BufferRef dy, BufferRef dx, BufferRef dweight) override {
    cpu::RmsNormBackward(F(x), W(weight).f32(), eps, n, num_rows, F(dy), F(dx), F(dweight),
                         pool_, train_ws_);
  }
  void RopeBackward(BufferRef dx, size_t num_tokens, size_t num_heads, BufferRef positions,
                    const PreparedRope& rope) override {
    cpu::RopeBackward(F(dx), num_tokens, num_heads, I32(positions),
                      static_cast<const HostRope&>(rope).table(), train_ws_);
  }
  // Attention (the inference kernel) per sequence over an F32 view of its k, v: the same
  // bits as Attention by construction.
  void AttentionTrain(BufferRef q, BufferRef k, BufferRef v, size_t num_seqs, size_t seq_len,
                      size_t num_heads, size_t num_kv_heads, size_t head_dim, float scale,
                      BufferRef out) override {
    const size_t q_row = num_heads * head_dim, kv_row = num_kv_heads * head_dim;
    for (size_t s = 0; s < num_seqs; ++s) {
      KvView view;
      view.dtype = tensor::DType::kF32;
      view.k = F(k) + s * seq_len * kv_row;
      view.v = F(v) + s * seq_len * kv_row;
      view.num_kv_heads = num_kv_heads;
      view.head_dim = head_dim;
      kernels::Attention(F(q) + s * seq_len * q_row, seq_len, num_heads, 0, view, scale,
                         F(out) + s * seq_len * q_row, pool_, ws_);
    }
  }
  void AttentionBackward(BufferRef q, BufferRef k, BufferRef v, BufferRef dout, size_t num_seqs,
                         size_t seq_len, size_t num_heads, size_t num_kv_heads, size_t head_dim,
                         float scale, BufferRef dq, BufferRef dk, BufferRef dv) override {
    cpu::AttentionBackward(F(q), F(k), F(v), F(dout), num_seqs, seq_len, num_heads, num_kv_heads,
                           head_dim, scale, F(dq), F(dk), F(dv), pool_);
  }
  void SwiGLUBackward(BufferRef gate, BufferRef up, BufferRef dout, size_t n, BufferRef dgate,
                      BufferRef dup) override {
    cpu::SwiGLUBackward(F(gate), F(up), F(dout), n, F(dgate), F(dup), pool_);
  }
  void CrossEntropy(BufferRef logits, BufferRef targets, size_t num_rows, size_t vocab,
                    float grad_scale, BufferRef losses, BufferRef dlogits) override {
    cpu::CrossEntropy(F(logits), I32(targets), num_rows, vocab, grad_scale, F(losses),
                      F(dlogits), pool_);
  }
  double SumSquares(BufferRef x, size_t n) override {
    return cpu::SumSquares(F(x), n, pool_, train_ws_);
  }
  void Fill(BufferRef x, size_t n, float value) override { cpu::Fill(F(x), n, value, pool_); }
  void AdamW(BufferRef param, BufferRef grad, BufferRef m, BufferRef v, size_t n,
             const AdamWParams& p) override {
    cpu::AdamW(F(param), F(grad), F(m), F(v), n, p, pool_);
  }

 private:
  ThreadPool pool_;
  Workspace ws_;
  Workspace train_ws_;  // the training ops' scratch (kernels/cpu/train.h's slots)
};

}  // namespace

std::shared_ptr<Backend> MakeCpuBackend(int threads) {
  PK_CHECK(threads >= 0);
  return std::make_shared<CpuBackend>(threads);
}

}  // namespace pocket::kernels::cpu
