// Linear's application: the base product through the backend, then bias, then adapters, in
// that order (a bias-free adapter update keeps the base bits when its delta is zero).
#include "model/linear.h"

#include "base/check.h"

namespace pocket::model {
namespace {

void BiasAndAdapters(kernels::Backend& backend, const Linear& linear, kernels::BufferRef x,
                     size_t num_tokens, kernels::BufferRef y) {
  if (linear.bias != nullptr) {
    backend.AddBias(y, *linear.bias, linear.out_features(), num_tokens);
  }
  for (const auto& adapter : linear.adapters) adapter->Apply(backend, x, num_tokens, y);
}

}  // namespace

void ApplyLinear(kernels::Backend& backend, const Linear& linear, kernels::BufferRef x,
                 size_t num_tokens, kernels::BufferRef y) {
  backend.MatMul(*linear.weight, x, num_tokens, y);
  BiasAndAdapters(backend, linear, x, num_tokens, y);
}

void ApplyLinearShared(kernels::Backend& backend, std::span<const Linear* const> linears,
                       kernels::BufferRef x, size_t num_tokens,
                       std::span<const kernels::BufferRef> ys) {
  PK_CHECK(linears.size() == ys.size() && !linears.empty() && linears.size() <= 8);
  kernels::SharedMatMulJob jobs[8];
  for (size_t i = 0; i < linears.size(); ++i) jobs[i] = {linears[i]->weight.get(), ys[i]};
  backend.MatMulShared(std::span<const kernels::SharedMatMulJob>(jobs, linears.size()), x,
                       num_tokens);
  for (size_t i = 0; i < linears.size(); ++i) {
    BiasAndAdapters(backend, *linears[i], x, num_tokens, ys[i]);
  }
}

}  // namespace pocket::model
