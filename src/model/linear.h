// Linear: a weight matrix of the model as the forward pass applies it — the backend's
// prepared matrix, an optional bias, and the adapters attached to it. y = W x (+ b)
// (+ each adapter's delta(x)). Adapters (LoRA, model/lora.h) attach to any matrix (q, k, v,
// o, gate, up, down, output) through LlamaModel::AttachAdapter without the blocks knowing.
// Who calls: model's blocks (model/blocks.cc), train. Thread safety: a Linear is immutable
// while a forward pass runs; an adapter's Apply uses its own scratch, one forward at a time.
#pragma once

#include <cstddef>
#include <memory>
#include <span>
#include <vector>

#include "kernels/backend.h"

namespace pocket::model {

// A learned correction to one matrix's output. The contract training relies on: Apply
// reads x and adds to y, nothing else.
class Adapter {
 public:
  virtual ~Adapter() = default;
  virtual size_t in_features() const = 0;
  virtual size_t out_features() const = 0;
  // Largest num_tokens Apply accepts (its scratch is sized for it).
  virtual size_t max_tokens() const = 0;
  // The backend whose memory and weights the adapter uses; LlamaModel::AttachAdapter
  // refuses an adapter made for another backend than the model's.
  virtual const kernels::Backend* backend() const = 0;
  // y[t] += delta(x[t]) for t < num_tokens: x [num_tokens][in_features], y
  // [num_tokens][out_features], both in `backend`'s memory. Called after the base product
  // and bias. REQUIRES: num_tokens <= max_tokens(); backend is the one it was made for.
  virtual void Apply(kernels::Backend& backend, kernels::BufferRef x, size_t num_tokens,
                     kernels::BufferRef y) = 0;
};

struct Linear {
  std::unique_ptr<kernels::Weight> weight;  // [out][in] (ne[0] = in), backend layout
  std::unique_ptr<kernels::Weight> bias;    // [out] F32, or null
  std::vector<std::shared_ptr<Adapter>> adapters;

  size_t in_features() const { return static_cast<size_t>(weight->view().ne[0]); }
  size_t out_features() const { return static_cast<size_t>(weight->view().ne[1]); }
};

// y = W x + b + adapters(x): x [num_tokens][in], y [num_tokens][out].
void ApplyLinear(kernels::Backend& backend, const Linear& linear, kernels::BufferRef x,
                 size_t num_tokens, kernels::BufferRef y);

// The same for several Linears over one input (Q, K, V; gate, up): the base products run as
// one MatMulShared (x quantized once), then each one's bias and adapters. ys[i] is
// linears[i]'s output. Bit-identical to ApplyLinear on each. REQUIRES: equal sizes, <= 8.
void ApplyLinearShared(kernels::Backend& backend, std::span<const Linear* const> linears,
                       kernels::BufferRef x, size_t num_tokens,
                       std::span<const kernels::BufferRef> ys);

}  // namespace pocket::model
