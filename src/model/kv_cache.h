// KvCache: one sequence's attention keys and values for every layer, as the forward pass
// writes them, in the memory of the backend that runs the model (a kernels::Backend
// buffer). Layout: K and V each [num_layers][capacity][kv_dim] (kv_dim = num_kv_heads *
// head_dim), F32 or F16 elements; position p of the sequence is row p. Memory is reserved
// at creation and, on the host backends, only touched (made resident) as tokens are written.
// The cache shares ownership of its backend, so it may outlive the model that made it.
// Who uses it: LlamaModel::Forward (writes/reads through the backend), runtime sessions and
// the prompt cache (counts, Clear/Truncate). Thread safety: none; one sequence is driven by
// one thread at a time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "base/status.h"
#include "kernels/backend.h"
#include "tensor/dtype.h"

namespace pocket::model {

class KvCache {
 public:
  // A cache in `backend`'s memory. ResourceExhausted when the bytes cannot be reserved;
  // InvalidArgument for bad sizes or a dtype other than F32/F16. Usually made through
  // LlamaModel::NewKvCache.
  static Result<KvCache> Create(std::shared_ptr<kernels::Backend> backend, int num_layers,
                                int kv_dim, int capacity_tokens, tensor::DType dtype);
  // Bytes Create() would reserve (0 when the sizes overflow).
  static uint64_t BytesFor(int num_layers, int kv_dim, int capacity_tokens, tensor::DType dtype);

  KvCache() = default;
  KvCache(KvCache&&) noexcept = default;
  // Frees the old buffer before its backend reference goes (member order would not).
  KvCache& operator=(KvCache&& o) noexcept;
  KvCache(const KvCache&) = delete;
  KvCache& operator=(const KvCache&) = delete;

  int num_layers() const { return num_layers_; }
  int kv_dim() const { return kv_dim_; }
  int capacity() const { return capacity_; }
  tensor::DType dtype() const { return dtype_; }
  uint64_t size_bytes() const { return 2 * layer_bytes() * static_cast<uint64_t>(num_layers_); }
  // Positions 0 .. num_tokens()-1 hold valid keys and values.
  int num_tokens() const { return num_tokens_; }

  // Forgets every token (keeps the memory).
  void Clear() { num_tokens_ = 0; }
  // Keeps the first n_tokens (prompt-cache reuse). InvalidArgument if n_tokens < 0 or
  // n_tokens > num_tokens().
  Status Truncate(int n_tokens);

  // The backend whose memory holds the cache.
  const kernels::Backend* backend() const { return backend_.get(); }
  // Row of K / V for `layer` at position `pos` (kv_dim elements of dtype()), as an operand
  // of the backend's ops; rows of consecutive positions are contiguous.
  // REQUIRES: 0 <= layer < num_layers(), 0 <= pos < capacity().
  kernels::BufferRef k_row(int layer, int pos) const { return row(0, layer, pos); }
  kernels::BufferRef v_row(int layer, int pos) const { return row(1, layer, pos); }
  size_t row_bytes() const { return static_cast<size_t>(kv_dim_) * elem_bytes_; }

  // Called by the forward pass after it wrote rows [num_tokens(), n). REQUIRES: n <= capacity().
  void set_num_tokens(int n);

 private:
  uint64_t layer_bytes() const { return static_cast<uint64_t>(capacity_) * row_bytes(); }
  kernels::BufferRef row(int which, int layer, int pos) const;

  // Declared before data_ so that the buffer is freed while its backend still lives.
  std::shared_ptr<kernels::Backend> backend_;
  kernels::DeviceBuffer data_;
  int num_layers_ = 0;
  int kv_dim_ = 0;
  int capacity_ = 0;
  int num_tokens_ = 0;
  size_t elem_bytes_ = 4;
  tensor::DType dtype_ = tensor::DType::kF32;
};

}  // namespace pocket::model
