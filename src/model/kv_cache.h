// KvCache: one sequence's attention keys and values for every layer, as the forward pass
// writes them. Layout: K and V each [num_layers][capacity][kv_dim] (kv_dim = num_kv_heads *
// head_dim), F32 or F16 elements; position p of the sequence is row p. Memory is reserved
// at creation and only touched (made resident) as tokens are written.
// Who uses it: LlamaModel::Forward (writes/reads), runtime sessions and the prompt cache
// (Clear/Truncate). Thread safety: none; one sequence is driven by one thread at a time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "base/status.h"
#include "tensor/dtype.h"

namespace pocket::model {

class KvCache {
 public:
  // ResourceExhausted when the bytes cannot be reserved; InvalidArgument for bad sizes or a
  // dtype other than F32/F16. Usually made through LlamaModel::NewKvCache.
  static Result<KvCache> Create(int num_layers, int kv_dim, int capacity_tokens,
                                tensor::DType dtype);
  // Bytes Create() would reserve (0 when the sizes overflow).
  static uint64_t BytesFor(int num_layers, int kv_dim, int capacity_tokens, tensor::DType dtype);

  KvCache() = default;
  KvCache(KvCache&&) noexcept = default;
  KvCache& operator=(KvCache&&) noexcept = default;
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

  // Row of K / V for `layer` at position `pos` (kv_dim elements of dtype()).
  // REQUIRES: 0 <= layer < num_layers(), 0 <= pos < capacity().
  std::byte* k_row(int layer, int pos) { return row(0, layer, pos); }
  std::byte* v_row(int layer, int pos) { return row(1, layer, pos); }
  const std::byte* k_row(int layer, int pos) const { return const_cast<KvCache*>(this)->row(0, layer, pos); }
  const std::byte* v_row(int layer, int pos) const { return const_cast<KvCache*>(this)->row(1, layer, pos); }
  size_t row_bytes() const { return static_cast<size_t>(kv_dim_) * elem_bytes_; }

  // Called by the forward pass after it wrote rows [num_tokens(), n). REQUIRES: n <= capacity().
  void set_num_tokens(int n);

 private:
  uint64_t layer_bytes() const { return static_cast<uint64_t>(capacity_) * row_bytes(); }
  std::byte* row(int which, int layer, int pos);

  std::unique_ptr<std::byte[]> data_;
  int num_layers_ = 0;
  int kv_dim_ = 0;
  int capacity_ = 0;
  int num_tokens_ = 0;
  size_t elem_bytes_ = 4;
  tensor::DType dtype_ = tensor::DType::kF32;
};

}  // namespace pocket::model
