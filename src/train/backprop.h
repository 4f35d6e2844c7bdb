// Backprop: the training forward and the backward pass of a Llama model over a batch of
// num_seqs sequences of seq_len tokens (each from position 0). The forward IS the model's:
// embedding (GetRows), then model::AttentionBlock / FeedForwardBlock / OutputHead of
// model/blocks.cc given a per-layer tape, then softmax cross-entropy against the targets.
// The backward walks the blocks in reverse, one function per block (output head and
// cross-entropy, feed-forward, attention, embedding), calling only Backend ops, and
// accumulates into the gradient of every trainable weight (ModelParams::GradOf) and of
// every TrainableLora attached to a Linear. Every reduction has a fixed order, so the
// gradients' bits do not depend on the backend's thread count.
// Who calls: Trainer (train/trainer.h), tests. Thread safety: one step at a time; the
// params are the caller's and must outlive it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "base/status.h"
#include "kernels/backend.h"
#include "model/activations.h"
#include "model/blocks.h"
#include "train/params.h"

namespace pocket::train {

// num_seqs sequences of seq_len tokens, row-major; target t of a row is the token the model
// should predict there (-1: no loss at this row).
struct Batch {
  size_t num_seqs = 0;
  size_t seq_len = 0;
  std::span<const int32_t> tokens;   // [num_seqs * seq_len]
  std::span<const int32_t> targets;  // [num_seqs * seq_len], -1 or in [0, vocab)
};

class Backprop {
 public:
  // Workspaces (activations, per-layer tape, gradients of activations) for batches of up to
  // max_rows = num_seqs * seq_len tokens, seq_len <= context_length. InvalidArgument when an
  // adapter attached to a matrix is not a TrainableLora or takes fewer than max_rows tokens;
  // ResourceExhausted.
  static Result<std::unique_ptr<Backprop>> Create(ModelParams* params, size_t max_rows);

  // The training forward: writes the tape and the per-row losses; the logits' gradient
  // (softmax - onehot) * grad_scale is kept for Backward. Returns the sum of the losses of
  // the rows with a target (summed in row order, in double) and their count.
  // InvalidArgument naming the problem for bad shapes, tokens or targets.
  Status Forward(const Batch& batch, float grad_scale, double* loss_sum, size_t* count);
  // The backward of the last Forward: accumulates every trainable gradient.
  void Backward();

  size_t max_rows() const { return max_rows_; }

 private:
  explicit Backprop(ModelParams* params) : p_(params) {}
  // The backward of one Linear, y = W x + b + adapters(x): dx (accumulates) += W^T dy
  // (+ adapters' input gradient); W's and b's gradients accumulate when trainable.
  void LinearBackward(const model::Linear& l, kernels::BufferRef x, kernels::BufferRef dy,
                      kernels::BufferRef dx);
  void HeadBackward();
  void FeedForwardBackward(size_t layer);
  void AttentionBackward(size_t layer);
  kernels::BufferRef GradOrScratch(const kernels::Weight* w);

  ModelParams* p_;
  size_t max_rows_ = 0;
  size_t rows_ = 0, seq_len_ = 0;  // of the last Forward
  model::Activations act_;
  std::unique_ptr<kernels::PreparedRope> rope_;
  std::unique_ptr<kernels::RopeTable> rope_table_;  // read in place by rope_
  std::vector<model::LayerTape> tapes_;
  model::HeadTape head_tape_;
  std::vector<kernels::DeviceBuffer> buffers_;  // everything the tapes and scratch point to
  kernels::BufferRef targets_, losses_;         // int32 [max_rows], F32 [max_rows]
  // Gradients of activations (scratch): dx, dxn [T][d]; datt, dq [T][q_dim]; dk, dv
  // [T][kv_dim]; h, dh, dgate, dup [T][d_ff]; dnorm [d] (a frozen norm's unused gradient).
  kernels::BufferRef dx_, dxn_, datt_, dq_, dk_, dv_, h_, dh_, dgate_, dup_, dnorm_;
  std::vector<float> losses_host_;
  std::vector<int32_t> upload_;
};

}  // namespace pocket::train
