// Trainer: one optimizer step over a batch (Step) and the validation loss (Evaluate), for
// full training (every Param of a ModelParams) or LoRA (the Params of TrainableLora adapters
// attached to a frozen ModelParams). A step zeroes the gradients, runs forward and backward
// over the batch in micro-batches (gradient accumulation; the loss is the mean over every
// counted target of the whole batch, so micro-batching does not change it), clips by the
// global gradient norm and applies AdamW (decoupled weight decay, none on norms and
// biases) at the learning rate of a cosine schedule with linear warmup.
// Every reduction runs in a fixed order (gradients in Params order, micro-batches in batch
// order), so a run's parameters are bit-identical on every run and for any thread count.
// Who calls: cli (train, finetune), tests. Thread safety: one call at a time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "base/status.h"
#include "formats/gguf.h"
#include "train/backprop.h"
#include "train/params.h"

namespace pocket::train {

struct OptimizerOptions {
  float lr = 1e-3f;          // peak learning rate
  float min_lr = 1e-4f;      // the cosine's floor, reached at total_steps
  int64_t warmup_steps = 0;  // linear from lr / warmup_steps to lr
  int64_t total_steps = 1;   // steps of the schedule (after it: min_lr)
  float beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f;
  float weight_decay = 0.0f;  // decoupled; matrices, embeddings and adapters only
  float clip_norm = 1.0f;     // global-norm clipping threshold; 0 disables it
};

// The learning rate of 1-based step `step`: lr * step / warmup during warmup, then
// min_lr + (lr - min_lr) * (1 + cos(pi * progress)) / 2 over the remaining steps.
float LearningRate(const OptimizerOptions& o, int64_t step);

struct StepStats {
  double loss = 0.0;       // mean cross-entropy over the counted targets
  size_t tokens = 0;       // counted targets
  double grad_norm = 0.0;  // global L2 norm before clipping
  float lr = 0.0f;
};

class Trainer {
 public:
  // Trains `params` (every Param of `model->params()` for full training; for LoRA the
  // adapters' Params, the model frozen) with batches of up to micro_batch_seqs sequences of
  // seq_len tokens per forward. `model` and the adapters must outlive the trainer.
  // InvalidArgument for empty params or bad options; ResourceExhausted.
  static Result<std::unique_ptr<Trainer>> Create(ModelParams* model, std::vector<Param*> params,
                                                 const OptimizerOptions& options,
                                                 size_t micro_batch_seqs, size_t seq_len);
  // Every Param of a trainable model.
  static std::vector<Param*> AllParams(ModelParams* model);

  // One optimizer step over `batch` (any number of sequences of seq_len tokens: split into
  // micro-batches in order). InvalidArgument for a batch with another seq_len, bad tokens
  // or no target; a backend error from Synchronize.
  Result<StepStats> Step(const Batch& batch);
  // The mean loss over the counted targets of `batch`; changes nothing (no gradient, no
  // parameter, no optimizer state, no step count).
  Result<double> Evaluate(const Batch& batch);

  int64_t step() const { return step_; }

  // The optimizer's state for resuming: the step count (key "pocket.train.step") and each
  // Param's AdamW moments ("<name>.adam_m", "<name>.adam_v", F32, Params order), as a GGUF
  // of its own (general.type "pocket-train-state"; the model file stays loadable by
  // llama.cpp). Copied to the host now.
  Result<formats::GgufWriter> StateToGguf() const;
  // Restores what StateToGguf wrote (the parameters themselves come from the model's
  // checkpoint). InvalidArgument naming a missing or mis-shaped tensor or key.
  Status LoadState(const formats::GgufFile& state);

 private:
  Trainer() = default;
  // Runs the micro-batches of `batch` forward (and backward when train), loss summed in
  // order. grad_scale: 1 / counted targets of the whole batch.
  Status Run(const Batch& batch, bool train, double* loss_sum, size_t* count);

  ModelParams* model_ = nullptr;
  std::vector<Param*> params_;
  OptimizerOptions options_;
  size_t micro_batch_seqs_ = 0, seq_len_ = 0;
  std::unique_ptr<Backprop> backprop_;
  int64_t step_ = 0;
};

}  // namespace pocket::train
