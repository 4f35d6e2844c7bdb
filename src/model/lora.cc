// LoraAdapter: two F32 matmuls through the backend and a scaled add. A and B are kept as F32
// (their product with an F32 activation is then unquantized on every backend).
#include "model/lora.h"

#include <string>

#include "base/check.h"

namespace pocket::model {

Result<std::shared_ptr<LoraAdapter>> LoraAdapter::Create(std::shared_ptr<kernels::Backend> backend,
                                                         size_t in_features, size_t out_features,
                                                         size_t rank, std::span<const float> a,
                                                         std::span<const float> b, float scale,
                                                         size_t max_tokens) {
  if (backend == nullptr || in_features == 0 || out_features == 0 || rank == 0 || max_tokens == 0 ||
      a.size() != rank * in_features || b.size() != out_features * rank) {
    return Status::InvalidArgument("lora: A must be rank x in (" + std::to_string(rank) + " x " +
                                   std::to_string(in_features) + ", got " +
                                   std::to_string(a.size()) + " values) and B out x rank (" +
                                   std::to_string(out_features) + " x " + std::to_string(rank) +
                                   ", got " + std::to_string(b.size()) + "), all sizes positive");
  }
  std::shared_ptr<LoraAdapter> l(new LoraAdapter());
  l->backend_ = std::move(backend);
  l->in_ = in_features;
  l->out_ = out_features;
  l->rank_ = rank;
  l->max_tokens_ = max_tokens;
  l->scale_ = scale;
  l->a_host_.assign(a.begin(), a.end());
  l->b_host_.assign(b.begin(), b.end());
  auto view = [](const std::vector<float>& v, size_t cols, size_t rows) {
    tensor::TensorView t;
    t.dtype = tensor::DType::kF32;
    t.data = v.data();
    t.ne[0] = static_cast<int64_t>(cols);
    t.ne[1] = static_cast<int64_t>(rows);
    return t;
  };
  kernels::Backend& be = *l->backend_;
  kernels::PrepareOptions opts;
  opts.repack = false;
  PK_ASSIGN_OR_RETURN(l->a_, be.PrepareMatrix(view(l->a_host_, in_features, rank), opts));
  PK_ASSIGN_OR_RETURN(l->b_, be.PrepareMatrix(view(l->b_host_, rank, out_features), opts));
  PK_ASSIGN_OR_RETURN(kernels::Buffer ax, be.Allocate(max_tokens * rank * sizeof(float)));
  l->ax_ = kernels::DeviceBuffer(&be, ax);
  PK_ASSIGN_OR_RETURN(kernels::Buffer bax, be.Allocate(max_tokens * out_features * sizeof(float)));
  l->bax_ = kernels::DeviceBuffer(&be, bax);
  return l;
}

void LoraAdapter::Apply(kernels::Backend& backend, kernels::BufferRef x, size_t num_tokens,
                        kernels::BufferRef y) {
  PK_CHECK(&backend == backend_.get() && num_tokens <= max_tokens_);
  backend.MatMul(*a_, x, num_tokens, ax_.ref());
  backend.MatMul(*b_, ax_.ref(), num_tokens, bax_.ref());
  backend.Axpy(scale_, bax_.ref(), num_tokens * out_, y);
}

}  // namespace pocket::model
