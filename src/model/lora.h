// LoraAdapter: low-rank adaptation (Hu et al. 2021, "LoRA", eq. 3): y += scale * B (A x),
// A [rank][in], B [out][rank], F32. Attach it to any matrix of a model with
// LlamaModel::AttachAdapter; with B = 0 (LoRA's initialisation) the model's output is
// unchanged. A model whose matrix is merged as W + scale * B A computes the same thing up to
// float rounding. Who calls: tests today; train (fine-tuning) and adapter loading later.
// Thread safety: Apply uses the adapter's scratch buffers: one forward pass at a time.
#pragma once

#include <cstddef>
#include <memory>
#include <span>
#include <vector>

#include "base/status.h"
#include "kernels/backend.h"
#include "model/linear.h"

namespace pocket::model {

class LoraAdapter final : public Adapter {
 public:
  // Copies a ([rank][in_features] row-major) and b ([out_features][rank]) into the adapter
  // and prepares them on `backend`, with scratch for max_tokens tokens (use the model's
  // max_batch_tokens()). InvalidArgument when a sizes are zero or do not match;
  // ResourceExhausted from the backend.
  static Result<std::shared_ptr<LoraAdapter>> Create(std::shared_ptr<kernels::Backend> backend,
                                                     size_t in_features, size_t out_features,
                                                     size_t rank, std::span<const float> a,
                                                     std::span<const float> b, float scale,
                                                     size_t max_tokens);

  size_t in_features() const override { return in_; }
  size_t out_features() const override { return out_; }
  size_t max_tokens() const override { return max_tokens_; }
  const kernels::Backend* backend() const override { return backend_.get(); }
  size_t rank() const { return rank_; }
  float scale() const { return scale_; }
  void Apply(kernels::Backend& backend, kernels::BufferRef x, size_t num_tokens,
             kernels::BufferRef y) override;

 private:
  LoraAdapter() = default;

  std::shared_ptr<kernels::Backend> backend_;  // declared first: outlives the buffers
  size_t in_ = 0, out_ = 0, rank_ = 0, max_tokens_ = 0;
  float scale_ = 1.0f;
  std::vector<float> a_host_, b_host_;  // the prepared weights' source bytes
  std::unique_ptr<kernels::Weight> a_, b_;
  kernels::DeviceBuffer ax_;   // [max_tokens][rank]: A x
  kernels::DeviceBuffer bax_;  // [max_tokens][out]: B (A x)
};

}  // namespace pocket::model
