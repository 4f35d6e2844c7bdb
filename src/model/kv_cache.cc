#include "model/kv_cache.h"

#include <limits>
#include <new>
#include <string>

#include "base/platform.h"

namespace pocket::model {

uint64_t KvCache::BytesFor(int num_layers, int kv_dim, int capacity_tokens, tensor::DType dtype) {
  if (num_layers <= 0 || kv_dim <= 0 || capacity_tokens <= 0) return 0;
  const uint64_t elem = dtype == tensor::DType::kF16 ? 2 : 4;
  const uint64_t per_layer = static_cast<uint64_t>(kv_dim) * static_cast<uint64_t>(capacity_tokens);
  // Each factor is < 2^31, so the product of the first two fits; guard the rest.
  const uint64_t max = std::numeric_limits<uint64_t>::max();
  if (per_layer > max / (2 * elem * static_cast<uint64_t>(num_layers))) return 0;
  return per_layer * 2 * elem * static_cast<uint64_t>(num_layers);
}

KvCache& KvCache::operator=(KvCache&& o) noexcept {
  if (this != &o) {
    data_ = std::move(o.data_);
    backend_ = std::move(o.backend_);
    num_layers_ = o.num_layers_;
    kv_dim_ = o.kv_dim_;
    capacity_ = o.capacity_;
    num_tokens_ = o.num_tokens_;
    elem_bytes_ = o.elem_bytes_;
    dtype_ = o.dtype_;
  }
  return *this;
}

Result<KvCache> KvCache::Create(std::shared_ptr<kernels::Backend> backend, int num_layers,
                                int kv_dim, int capacity_tokens, tensor::DType dtype) {
  PK_CHECK(backend != nullptr);
  if (dtype != tensor::DType::kF32 && dtype != tensor::DType::kF16) {
    return Status::InvalidArgument("kv cache: dtype " + std::string(tensor::DTypeName(dtype)) +
                                   " not supported (F32 or F16)");
  }
  if (num_layers <= 0 || kv_dim <= 0 || capacity_tokens <= 0) {
    return Status::InvalidArgument("kv cache: sizes must be positive (layers " +
                                   std::to_string(num_layers) + ", kv_dim " +
                                   std::to_string(kv_dim) + ", capacity " +
                                   std::to_string(capacity_tokens) + ")");
  }
  const uint64_t bytes = BytesFor(num_layers, kv_dim, capacity_tokens, dtype);
  const uint64_t available = Platform::Default().available_memory_bytes();
  if (bytes == 0 || bytes > std::numeric_limits<size_t>::max() ||
      (available != 0 && bytes > available)) {
    return Status::ResourceExhausted("kv cache: " + std::to_string(capacity_tokens) +
                                     " tokens need " + std::to_string(bytes) + " bytes, " +
                                     std::to_string(available) + " available");
  }
  KvCache cache;
  // Uninitialised on purpose (Backend::Allocate): host pages become resident only when a
  // token is written, so a large capacity costs address space, not memory, until it is used.
  auto buffer = backend->Allocate(static_cast<size_t>(bytes));
  if (!buffer.ok()) return buffer.status().WithContext("kv cache");
  cache.data_ = kernels::DeviceBuffer(backend.get(), *buffer);
  cache.backend_ = std::move(backend);
  cache.num_layers_ = num_layers;
  cache.kv_dim_ = kv_dim;
  cache.capacity_ = capacity_tokens;
  cache.dtype_ = dtype;
  cache.elem_bytes_ = dtype == tensor::DType::kF16 ? 2 : 4;
  return cache;
}

Status KvCache::Truncate(int n_tokens) {
  if (n_tokens < 0 || n_tokens > num_tokens_) {
    return Status::InvalidArgument("kv cache: cannot truncate " + std::to_string(num_tokens_) +
                                   " tokens to " + std::to_string(n_tokens));
  }
  num_tokens_ = n_tokens;
  return Status::Ok();
}

void KvCache::set_num_tokens(int n) {
  PK_CHECK(n >= 0 && n <= capacity_);
  num_tokens_ = n;
}

kernels::BufferRef KvCache::row(int which, int layer, int pos) const {
  PK_DCHECK(layer >= 0 && layer < num_layers_ && pos >= 0 && pos < capacity_);
  const uint64_t offset = (static_cast<uint64_t>(which) * static_cast<uint64_t>(num_layers_) +
                           static_cast<uint64_t>(layer)) * layer_bytes() +
                          static_cast<uint64_t>(pos) * row_bytes();
  return data_.ref(static_cast<size_t>(offset));
}

}  // namespace pocket::model
