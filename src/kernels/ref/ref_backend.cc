// kernels::Backend over kernels/ref's plain loops: the oracle. Every op is the ref function
// of the same name on host memory; the ops ref has no function for (MatMulShared, AddBias,
// StoreRows, Axpy) are the obvious loops over it, written here. CreateTrainable's tensors are
// RefWeights over a buffer they own.
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

// CreateTrainable's tensor: a RefWeight whose view points into a buffer it owns, so every
// op that reads a Weight's view sees the buffer's current values.
class TrainableWeight final : public Weight {
 public:
  TrainableWeight(const tensor::TensorView& view, Buffer buffer) : Weight(view), buffer_(buffer) {}
  ~TrainableWeight() override { std::free(buffer_.handle); }
  TrainableWeight(const TrainableWeight&) = delete;
  TrainableWeight& operator=(const TrainableWeight&) = delete;
  BufferRef data() const { return {buffer_.handle, 0}; }

 private:
  Buffer buffer_;
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

  Result<std::unique_ptr<Weight>> CreateTrainable(const tensor::TensorView& shape) override {
    PK_CHECK(shape.dtype == tensor::DType::kF32);
    const size_t count = static_cast<size_t>(shape.num_elements());
    if (count > SIZE_MAX / sizeof(float)) {
      return Status::ResourceExhausted("reference backend: trainable tensor of " +
                                       std::to_string(count) + " floats is too large");
    }
    PK_ASSIGN_OR_RETURN(Buffer buffer, Allocate(count * sizeof(float)));
    tensor::TensorView view = shape;
    view.data = buffer.handle;
    return std::unique_ptr<Weight>(std::make_unique<TrainableWeight>(view, buffer));
  }
  BufferRef TrainableData(const Weight& w) override {
    const auto* t = dynamic_cast<const TrainableWeight*>(&w);
    PK_CHECK(t != nullptr && "TrainableData: not made by CreateTrainable");
    return t->data();
  }

  void MatMulBackwardInput(const Weight& w, BufferRef dy, size_t num_tokens,
                           BufferRef dx) override {
    ref::MatMulBackwardInput(w.view(), F(dy), num_tokens, F(dx));
  }
  void MatMulBackwardWeight(BufferRef x, BufferRef dy, size_t num_tokens, size_t rows,
                            size_t cols, BufferRef dw) override {
    ref::MatMulBackwardWeight(F(x), F(dy), num_tokens, rows, cols, F(dw));
  }
  void SumRows(BufferRef dy, size_t n, size_t num_rows, BufferRef dbias) override {
    ref::SumRows(F(dy), n, num_rows, F(dbias));
  }
  void GetRowsBackward(BufferRef ids, size_t num_ids, BufferRef dout, size_t n,
                       BufferRef dtable) override {
    ref::GetRowsBackward(I32(ids), num_ids, F(dout), n, F(dtable));
  }
  void RmsNormBackward(BufferRef x, const Weight& weight, float eps, size_t n, size_t num_rows,
                       BufferRef dy, BufferRef dx, BufferRef dweight) override {
    ref::RmsNormBackward(F(x), F32(weight), eps, n, num_rows, F(dy), F(dx), F(dweight));
  }
  void RopeBackward(BufferRef dx, size_t num_tokens, size_t num_heads, BufferRef positions,
                    const PreparedRope& rope) override {
    const int32_t* pos = I32(positions);
    for (size_t t = 0; t < num_tokens; ++t) {
      PK_CHECK(pos[t] >= 0 && static_cast<size_t>(pos[t]) < rope.max_positions());
    }
    ref::RopeBackward(F(dx), num_tokens, num_heads, pos,
                      static_cast<const HostRope&>(rope).table());
  }
  void AttentionTrain(BufferRef q, BufferRef k, BufferRef v, size_t num_seqs, size_t seq_len,
                      size_t num_heads, size_t num_kv_heads, size_t head_dim, float scale,
                      BufferRef out) override {
    ref::AttentionTrain(F(q), F(k), F(v), num_seqs, seq_len, num_heads, num_kv_heads, head_dim,
                        scale, F(out));
  }
  void AttentionBackward(BufferRef q, BufferRef k, BufferRef v, BufferRef dout, size_t num_seqs,
                         size_t seq_len, size_t num_heads, size_t num_kv_heads, size_t head_dim,
                         float scale, BufferRef dq, BufferRef dk, BufferRef dv) override {
    ref::AttentionBackward(F(q), F(k), F(v), F(dout), num_seqs, seq_len, num_heads, num_kv_heads,
                           head_dim, scale, F(dq), F(dk), F(dv));
  }
  void SwiGLUBackward(BufferRef gate, BufferRef up, BufferRef dout, size_t n, BufferRef dgate,
                      BufferRef dup) override {
    ref::SwiGLUBackward(F(gate), F(up), F(dout), n, F(dgate), F(dup));
  }
  void CrossEntropy(BufferRef logits, BufferRef targets, size_t num_rows, size_t vocab,
                    float grad_scale, BufferRef losses, BufferRef dlogits) override {
    ref::CrossEntropy(F(logits), I32(targets), num_rows, vocab, grad_scale, F(losses),
                      F(dlogits));
  }
  double SumSquares(BufferRef x, size_t n) override { return ref::SumSquares(F(x), n); }
  void Fill(BufferRef x, size_t n, float value) override { ref::Fill(F(x), n, value); }
  void AdamW(BufferRef param, BufferRef grad, BufferRef m, BufferRef v, size_t n,
             const AdamWParams& p) override {
    ref::AdamW(F(param), F(grad), F(m), F(v), n, p);
  }
};

}  // namespace

std::shared_ptr<Backend> MakeRefBackend() { return std::make_shared<RefBackend>(); }

}  // namespace pocket::kernels::ref
