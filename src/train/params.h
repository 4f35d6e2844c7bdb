// The parameters of a Llama-family model as training sees them: the same LayerParams /
// HeadParams the forward blocks (model/blocks.h) read, made either of trainable F32 tensors
// (Backend::CreateTrainable, updated in place by AdamW: full training) or of the frozen
// matrices of a loaded GGUF, as prepared for inference (quantized or not: LoRA's base).
// Each trainable tensor is a Param with its gradient and AdamW moments. Initialisation is
// deterministic (counter-based generator: the bytes depend only on the seed and the
// tensor's name, never on threads), and the model exports to a GGUF that `pocket run`
// loads, written by formats' deterministic writer with the metadata of formats/hf_convert.h.
// Who calls: train (Trainer, tests), cli. Thread safety: one thread at a time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "base/status.h"
#include "formats/gguf.h"
#include "formats/hf_convert.h"
#include "kernels/backend.h"
#include "model/blocks.h"
#include "model/config.h"

namespace pocket::train {

// One trainable tensor: its values (a Backend::CreateTrainable weight, owned elsewhere: by
// the Linear, norm or adapter that uses it), its gradient (accumulated by the backward
// pass, zeroed by the optimizer step) and AdamW's first and second moments (start at 0).
struct Param {
  std::string name;          // GGUF tensor name ("blk.0.attn_q.weight", "...lora_a")
  std::vector<uint64_t> ne;  // GGUF shape, ne[0] = row length
  size_t size = 0;           // elements
  bool decay = true;         // weight decay applies (false for norms and biases)
  kernels::Weight* weight = nullptr;
  kernels::DeviceBuffer grad, m, v;  // F32 [size] each

  // A trainable F32 tensor of shape `ne` on `backend`, its gradient and moments zeroed;
  // *owner receives the weight (the Param points to it). Values uninitialised.
  // ResourceExhausted from the backend.
  static Result<Param> Create(kernels::Backend& backend, std::string name, std::vector<uint64_t> ne,
                              bool decay, std::unique_ptr<kernels::Weight>* owner);
};

// ~N(0, std) for element i of the tensor `name`: a pure function of (seed, name, i), so the
// bytes of an initialisation never depend on threads or order. Irwin-Hall of four 16-bit
// uniforms from SplitMix64 at counter i (integer arithmetic and two float products: the same
// bits on every machine), tails bounded at +-3.46 std.
std::vector<float> InitNormal(uint64_t seed, const std::string& name, size_t n, float std);

// The values of `t` (any dtype the backend's GetRows dequantizes; [rows][ne[0]]) as F32,
// dequantized by the backend itself, into `dst` (backend memory, num_elements floats).
// ResourceExhausted from the backend.
Status DequantizeOnBackend(kernels::Backend& backend, const tensor::TensorView& t,
                           kernels::BufferRef dst);

struct InitOptions {
  uint64_t seed = 0;
  float std = 0.02f;  // every matrix and the embedding; norms start at 1, biases at 0
};

// A model's parameters on a backend.
class ModelParams {
 public:
  // Fresh trainable parameters for `config` (arch llama or qwen2; config.tied_output decides
  // whether the output matrix is the embedding, as SmolLM2 does). InvalidArgument from
  // config.Validate(); ResourceExhausted from the backend.
  static Result<std::unique_ptr<ModelParams>> Init(std::shared_ptr<kernels::Backend> backend,
                                                   const model::LlamaConfig& config,
                                                   const InitOptions& init);
  // The parameters of a GGUF Llama model. trainable: every tensor dequantized to F32 and
  // made trainable (continue training a checkpoint). !trainable: the matrices prepared as
  // for inference, quantized as stored, no Params (the frozen base of LoRA); the file's
  // mapping is kept alive by *this. Errors as LlamaConfig::FromGguf and BindWeights;
  // NotSupported for a dtype the backend cannot multiply; ResourceExhausted.
  static Result<std::unique_ptr<ModelParams>> FromGguf(std::shared_ptr<kernels::Backend> backend,
                                                       const formats::GgufFile& gguf,
                                                       bool trainable);

  const model::LlamaConfig& config() const { return config_; }
  kernels::Backend& backend() const { return *backend_; }
  const std::shared_ptr<kernels::Backend>& shared_backend() const { return backend_; }
  std::vector<model::LayerParams>& layers() { return layers_; }
  const std::vector<model::LayerParams>& layers() const { return layers_; }
  model::HeadParams& head() { return head_; }
  const model::HeadParams& head() const { return head_; }
  // The token embedding table (the output matrix itself when tied).
  const kernels::Weight& embedding() const;
  // The RoPE of the model (rope_freqs of the file included).
  const kernels::RopeConfig& rope() const { return rope_; }

  // Trainable tensors in the fixed order of the GGUF file (token_embd, per layer attn_norm,
  // q, k, v, [biases], o, ffn_norm, gate, down, up; output_norm, [output]): the order
  // gradients are reduced and written in. Empty for a frozen model.
  std::vector<Param>& params() { return params_; }
  // The gradient buffer of a trainable weight, or nullptr for a frozen one.
  const kernels::DeviceBuffer* GradOf(const kernels::Weight* w) const;

  // The values of a trainable tensor, host copy (waits for the backend).
  std::vector<float> Values(const Param& p) const;
  // Sets a trainable tensor's values. REQUIRES: values.size() == p.size.
  void SetValues(const Param& p, const std::vector<float>& values);

  // A GGUF of the model: metadata as convert_hf_to_gguf.py writes it (AddLlamaMetadata),
  // `vocab` when given (a model needs one for `pocket run`), every tensor in params() order
  // stored as `weight_type` for matrices (formats::StorageType) and F32 for norms and
  // biases. The tensors are copied to the host now. REQUIRES: trainable.
  Result<formats::GgufWriter> ToGguf(const std::string& name, const formats::GgufVocab* vocab,
                                     tensor::DType weight_type = tensor::DType::kF32) const;

 private:
  explicit ModelParams(std::shared_ptr<kernels::Backend> backend) : backend_(std::move(backend)) {}
  Status AddParam(std::string name, std::vector<uint64_t> ne, bool decay,
                  std::unique_ptr<kernels::Weight>* owner);
  // Builds the trainable tensors (values uninitialised) in the file's order.
  Status CreateTrainable();

  std::shared_ptr<kernels::Backend> backend_;  // first: outlives everything below
  model::LlamaConfig config_;
  std::unique_ptr<formats::GgufFile> gguf_;  // frozen: the mapping the weights read
  std::vector<model::LayerParams> layers_;
  std::unique_ptr<kernels::Weight> embedding_;  // null when tied (head_.output.weight is it)
  model::HeadParams head_;
  kernels::RopeConfig rope_;
  std::vector<Param> params_;
  std::unordered_map<const kernels::Weight*, size_t> param_index_;
};

}  // namespace pocket::train
