// LlamaModel: a Llama-family decoder (arch "llama": Llama 2/3/3.2, SmolLM/SmolLM2,
// TinyLlama, Mistral with full attention; arch "qwen2": Qwen2/2.5 with QKV bias and NeoX
// RoPE) loaded from GGUF and run on a kernels::Backend chosen at load (LoadOptions::backend:
// the CPU kernels by default, or the plain-loop reference backend, the oracle). The forward
// pass is built from blocks (model/blocks.h: attention, feed-forward, output head) over an
// explicit Activations struct (model/activations.h) and calls only the Backend interface.
// Every weight matrix is a Linear (model/linear.h) to which adapters such as LoRA
// (model/lora.h) attach without the blocks knowing. Weights are views into the file's memory
// map, prepared once by the backend (the CPU backend re-lays out the matrices
// LoadOptions::repack names, releasing their file pages as it goes); activations live in
// backend buffers allocated at load, so a decode step allocates nothing. Several sequences
// run in one batched forward: their tokens are stacked into one activation matrix for the
// matmuls, and attention runs per sequence on its own KvCache (backend memory). A sequence's
// results are bit-identical whether it runs alone or batched (the kernels reduce in a fixed
// order per output element).
//
// Who calls: runtime (sessions, batching scheduler, prompt cache), server (embeddings),
// train. Thread safety: config()/gguf()/weights() are immutable and safe from any thread;
// Forward/ForwardHidden/AttachAdapter use the model's backend and activations, so one thread
// at a time calls them (runtime serialises them in its scheduler); NewKvCache is
// thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "base/status.h"
#include "kernels/backend.h"
#include "model/config.h"
#include "model/kv_cache.h"
#include "model/linear.h"
#include "model/weights.h"
#include "tensor/dtype.h"

namespace pocket::formats {
class GgufFile;
}  // namespace pocket::formats

namespace pocket::model {

// Which backend runs a model; named here so that runtime and cli need no kernels/ header.
using BackendKind = kernels::BackendKind;
using kernels::BackendName;       // "cpu", "reference"
using kernels::ParseBackendKind;  // the inverse; InvalidArgument for another name

// The weight matrices of a model an adapter can attach to.
enum class MatrixId { kQ, kK, kV, kO, kGate, kUp, kDown, kOutput };

struct LoadOptions {
  // kCpu: the SIMD kernels (fast). kReference: kernels/ref's plain loops (slow, the oracle;
  // greedy output matches the CPU's).
  BackendKind backend = BackendKind::kCpu;
  int threads = 0;  // threads for the forward pass, the caller included; 0 = all cores
  // Tokens one internal step processes (sum over the batch); longer batches run in several
  // steps of this many tokens with identical results. Sizes the activation workspaces:
  // about max_batch_tokens * (6 * d_model + 2 * d_ff) * 4 bytes.
  int max_batch_tokens = 128;
  // Positions of the RoPE cos/sin table built at load; it doubles (up to context_length)
  // when a forward pass reaches further, so a long context costs table memory only if used.
  int rope_positions = 4096;
  // Re-lay the Q4_0 matrices (and Q8_0 ones on CPUs with AVX512-VNNI) once at load into the
  // kernels' interleaved layout (kernels::PackedWeight; llama.cpp repacks the same way),
  // which decode streams faster. The file pages they were copied from are released as
  // packing goes, so resident memory still holds each weight byte about once. false: every
  // matrix is read in place from the mapping. Results are bit-identical either way.
  bool repack = true;
  // Called once the file is mapped and its config read, before the weights are bound and
  // repacked (the step that takes the memory): an error stops the load and is returned as
  // it is. runtime::Engine::Load checks the context and the memory estimate here, on its
  // one opening of the file. `file_size_bytes`: the mapped file's size. Unset: no check.
  std::function<Status(const LlamaConfig& config, uint64_t file_size_bytes)> before_bind = nullptr;
};

// One sequence's slice of a batch. `tokens` continue the sequence at position start_pos.
// REQUIRES (checked, InvalidArgument): start_pos == cache->num_tokens(); start_pos +
// tokens.size() <= cache->capacity(); tokens non-empty and inside the vocabulary; each
// cache appears once per batch and belongs to this model's shape.
struct BatchEntry {
  KvCache* cache = nullptr;
  std::span<const int32_t> tokens;
  int start_pos = 0;
  bool all_logits = false;  // false: only the last token's row is returned
};

class LlamaModel {
 public:
  // Maps `gguf_path`, reads the config and binds the weights. IOError/Corruption from the
  // reader; NotSupported naming an unsupported architecture or dtype; InvalidArgument or
  // NotFound naming a tensor whose shape is wrong or which is missing; ResourceExhausted
  // naming the tensor the backend could not prepare (or the activations).
  static Result<std::unique_ptr<LlamaModel>> Load(const std::string& gguf_path,
                                                  const LoadOptions& opts = {});
  // Same over an already opened file (e.g. GgufFile::FromBytes in tests).
  static Result<std::unique_ptr<LlamaModel>> FromGguf(formats::GgufFile gguf,
                                                      const LoadOptions& opts = {});

  ~LlamaModel();
  LlamaModel(const LlamaModel&) = delete;
  LlamaModel& operator=(const LlamaModel&) = delete;

  const LlamaConfig& config() const { return config_; }
  const formats::GgufFile& gguf() const { return *gguf_; }
  const LlamaWeights& weights() const { return weights_; }
  // Bytes of all weight tensors in the mapping (a tied output counted once).
  uint64_t weight_bytes() const { return weight_bytes_; }
  int threads() const;
  BackendKind backend_kind() const { return backend_->kind(); }
  // The backend running the model (to make adapters on it); shared with the KV caches.
  const std::shared_ptr<kernels::Backend>& backend() const { return backend_; }
  // LoadOptions::max_batch_tokens: the rows of one internal step.
  int max_batch_tokens() const;

  // Adds `adapter` to matrix `which` of `layer` (ignored for kOutput); from the next
  // Forward on, that matrix computes W x (+ b) + adapter(x). InvalidArgument naming the
  // matrix when the layer is out of range, the adapter was made on another backend than
  // backend(), its sizes do not match the matrix or its max_tokens() is below
  // max_batch_tokens(); ResourceExhausted when the output's logit buffer cannot be
  // allocated. Not while a Forward runs.
  Status AttachAdapter(int layer, MatrixId which, std::shared_ptr<Adapter> adapter);

  // A cache for one sequence of up to capacity_tokens tokens; dtype F32 or F16.
  // InvalidArgument for capacity <= 0, > config().context_length or another dtype;
  // ResourceExhausted when the memory is not available. Safe to call concurrently with
  // Forward (it only reads the config).
  Result<KvCache> NewKvCache(int capacity_tokens, tensor::DType dtype) const;

  // Runs every entry's tokens through the model, appending their K/V to each entry's cache
  // (cache->num_tokens() grows by tokens.size()). `logits` is resized to
  // [rows][vocab_size], rows in batch order: for each entry its last token's row, or one
  // row per token when all_logits. On error nothing is written to any cache.
  Status Forward(std::span<BatchEntry> batch, std::vector<float>* logits);

  // Same as Forward but returns the final hidden state (after the output norm),
  // [rows][d_model], instead of logits (embeddings; mean pooling is the caller's).
  Status ForwardHidden(std::span<BatchEntry> batch, std::vector<float>* hidden);

 private:
  struct Impl;
  LlamaModel(std::unique_ptr<formats::GgufFile> gguf, LlamaConfig config, LlamaWeights weights,
             std::shared_ptr<kernels::Backend> backend);
  Status Run(std::span<BatchEntry> batch, bool want_logits, std::vector<float>* out);

  std::unique_ptr<formats::GgufFile> gguf_;
  LlamaConfig config_;
  LlamaWeights weights_;
  uint64_t weight_bytes_ = 0;
  // Declared before impl_ so that the prepared weights and activations go first.
  std::shared_ptr<kernels::Backend> backend_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace pocket::model
