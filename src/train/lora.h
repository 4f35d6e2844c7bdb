// TrainableLora: a LoRA adapter (Hu et al. 2021, eq. 3: y += scale * B (A x), scale =
// alpha / rank) whose A [rank][in] and B [out][rank] are trainable F32 tensors
// (Backend::CreateTrainable), attached to a matrix of a frozen model (model::Linear's
// adapters) so the forward blocks apply it like any adapter. Apply keeps A x for the
// backward pass; Backward accumulates the gradients of A and B and the input gradient.
// Initialisation as PEFT's: A random, B = 0 (the model is unchanged at step 0).
// Who calls: train (Trainer, tests). Thread safety: one forward/backward at a time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "formats/gguf.h"
#include "kernels/backend.h"
#include "model/linear.h"
#include "train/params.h"

namespace pocket::train {

class TrainableLora final : public model::Adapter {
 public:
  // An adapter for a matrix [out_features][in_features] named `name` (its GGUF tensor,
  // e.g. "blk.0.attn_q.weight": the Params are "<name>.lora_a" and "<name>.lora_b"), with
  // scratch for max_tokens tokens. A ~ InitNormal(seed, std a_std), B ~ InitNormal(b_std)
  // (0: zeros). InvalidArgument for zero sizes; ResourceExhausted from the backend.
  static Result<std::shared_ptr<TrainableLora>> Create(std::shared_ptr<kernels::Backend> backend,
                                                       const std::string& name, size_t in_features,
                                                       size_t out_features, size_t rank,
                                                       float alpha, size_t max_tokens,
                                                       uint64_t seed, float a_std,
                                                       float b_std = 0.0f);

  size_t in_features() const override { return in_; }
  size_t out_features() const override { return out_; }
  size_t max_tokens() const override { return max_tokens_; }
  const kernels::Backend* backend() const override { return backend_.get(); }
  size_t rank() const { return rank_; }
  float scale() const { return scale_; }
  const std::string& name() const { return name_; }

  // y[t] += scale * B (A x[t]); A x stays in the adapter's scratch for Backward.
  void Apply(kernels::Backend& backend, kernels::BufferRef x, size_t num_tokens,
             kernels::BufferRef y) override;
  // Given the Apply of this step (same x, num_tokens) and dy, the output's gradient:
  // grad(A), grad(B) accumulate; dx [num_tokens][in] accumulates the input gradient.
  void Backward(kernels::Backend& backend, kernels::BufferRef x, kernels::BufferRef dy,
                size_t num_tokens, kernels::BufferRef dx);

  Param& a() { return a_; }
  Param& b() { return b_; }
  const Param& a() const { return a_; }
  const Param& b() const { return b_; }
  const std::shared_ptr<kernels::Backend>& shared_backend() const { return backend_; }

 private:
  TrainableLora() = default;

  std::shared_ptr<kernels::Backend> backend_;  // first: outlives the buffers
  std::string name_;
  size_t in_ = 0, out_ = 0, rank_ = 0, max_tokens_ = 0;
  float scale_ = 1.0f;
  std::unique_ptr<kernels::Weight> a_weight_, b_weight_;
  Param a_, b_;
  kernels::DeviceBuffer ax_;   // [max_tokens][rank]: A x of the last Apply
  kernels::DeviceBuffer bax_;  // [max_tokens][out]: B (A x); in Backward, scale * dy
  kernels::DeviceBuffer dax_;  // [max_tokens][rank]
};

// Which matrices of each layer get an adapter (`--targets q,k,v,o,gate,up,down`).
struct LoraTargets {
  bool q = false, k = false, v = false, o = false, gate = false, up = false, down = false;
};
// Parses a comma-separated list of q, k, v, o, gate, up, down (each at most once, at least
// one). InvalidArgument naming the bad entry otherwise.
Result<LoraTargets> ParseLoraTargets(std::string_view list);

struct LoraOptions {
  LoraTargets targets;
  size_t rank = 8;
  float alpha = 16.0f;  // scale = alpha / rank
  uint64_t seed = 0;
  size_t max_tokens = 0;  // the Trainer's micro-batch rows (micro_batch_seqs * seq_len)
};

// Attaches a fresh TrainableLora (A as PEFT's default: uniform-like with std 1/sqrt(3 in),
// B = 0) to every targeted matrix of every layer of the frozen `base`, in layer order and
// q, k, v, o, gate, up, down within a layer (the order of their Params and of the adapter
// file). InvalidArgument for rank 0, no target or max_tokens 0; ResourceExhausted.
Result<std::vector<std::shared_ptr<TrainableLora>>> AttachLora(ModelParams* base,
                                                               const LoraOptions& options);
// The Params of `adapters`, A then B of each, in order (what Trainer::Create takes).
std::vector<Param*> LoraParams(std::span<const std::shared_ptr<TrainableLora>> adapters);

// The adapters as a GGUF LoRA adapter in the layout llama.cpp loads (llama-adapter.cpp,
// convert_lora_to_gguf.py): general.type "adapter", adapter.type "lora",
// adapter.lora.alpha, general.architecture of the base, and per adapted matrix
// "<name>.lora_a" (ne [in, rank]) and "<name>.lora_b" (ne [rank, out]), F32, in the order
// given. The values are copied to the host now. InvalidArgument when the adapters do not
// share one alpha (llama.cpp reads one per file) or none is given.
Result<formats::GgufWriter> LoraAdapterGguf(
    const std::string& base_arch, std::span<const std::shared_ptr<TrainableLora>> adapters);

// The base model with each adapted matrix replaced by W + scale B A (dequantized, merged in
// float, stored back in the matrix's own type), every other key and tensor copied as is:
// what `pocket finetune --merge` writes. InvalidArgument naming an adapter whose matrix is
// not in `base` or has another shape. The writer reads `base`'s bytes: keep it alive.
Result<formats::GgufWriter> MergeLora(const formats::GgufFile& base,
                                      std::span<const std::shared_ptr<TrainableLora>> adapters);

}  // namespace pocket::train
