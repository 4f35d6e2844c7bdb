// Trainer: micro-batching, the global-norm clip, the schedule and AdamW over Backprop.
#include "train/trainer.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "base/check.h"
#include "formats/gguf_names.h"
#include "formats/hf_convert.h"

namespace pocket::train {

float LearningRate(const OptimizerOptions& o, int64_t step) {
  if (o.warmup_steps > 0 && step <= o.warmup_steps) {
    return o.lr * static_cast<float>(step) / static_cast<float>(o.warmup_steps);
  }
  if (step >= o.total_steps) return o.min_lr;
  // Here warmup_steps < step < total_steps. Computed in double from integers: one value per
  // step (whatever the threads), so a resumed run continues with the same rates.
  const double progress = static_cast<double>(step - o.warmup_steps) /
                          static_cast<double>(o.total_steps - o.warmup_steps);
  const double cosine = 0.5 * (1.0 + std::cos(3.14159265358979323846 * progress));
  return static_cast<float>(o.min_lr + (static_cast<double>(o.lr) - o.min_lr) * cosine);
}

std::vector<Param*> Trainer::AllParams(ModelParams* model) {
  std::vector<Param*> out;
  for (Param& p : model->params()) out.push_back(&p);
  return out;
}

Result<std::unique_ptr<Trainer>> Trainer::Create(ModelParams* model, std::vector<Param*> params,
                                                 const OptimizerOptions& o, size_t micro_batch_seqs,
                                                 size_t seq_len) {
  PK_CHECK(model != nullptr);
  if (params.empty()) return Status::InvalidArgument("train: nothing to train");
  if (micro_batch_seqs == 0 || seq_len == 0) {
    return Status::InvalidArgument("train: micro-batch and sequence length must be positive");
  }
  if (!(o.lr > 0.0f) || o.min_lr < 0.0f || o.min_lr > o.lr || o.warmup_steps < 0 ||
      o.total_steps < 1 || !(o.beta1 >= 0.0f && o.beta1 < 1.0f) ||
      !(o.beta2 >= 0.0f && o.beta2 < 1.0f) || !(o.eps > 0.0f) || o.weight_decay < 0.0f ||
      o.clip_norm < 0.0f) {
    return Status::InvalidArgument(
        "train: optimizer options out of range (lr > 0, 0 <= min_lr <= lr, steps >= 1, "
        "betas in [0, 1), eps > 0, weight decay and clip norm >= 0)");
  }
  std::unique_ptr<Trainer> t(new Trainer());
  t->model_ = model;
  t->params_ = std::move(params);
  t->options_ = o;
  t->micro_batch_seqs_ = micro_batch_seqs;
  t->seq_len_ = seq_len;
  PK_ASSIGN_OR_RETURN(t->backprop_, Backprop::Create(model, micro_batch_seqs * seq_len));
  return t;
}

Status Trainer::Run(const Batch& batch, bool train, double* loss_sum, size_t* count) {
  if (batch.seq_len != seq_len_ || batch.num_seqs == 0 ||
      batch.tokens.size() != batch.num_seqs * batch.seq_len ||
      batch.targets.size() != batch.tokens.size()) {
    return Status::InvalidArgument("train: batch of " + std::to_string(batch.num_seqs) +
                                   " sequences of " + std::to_string(batch.seq_len) +
                                   " tokens; the trainer was made for sequences of " +
                                   std::to_string(seq_len_));
  }
  size_t total = 0;
  for (int32_t t : batch.targets) total += t >= 0 ? 1 : 0;
  if (total == 0) return Status::InvalidArgument("train: batch has no target to predict");
  const float grad_scale = 1.0f / static_cast<float>(total);
  double sum = 0.0;
  size_t n = 0;
  for (size_t s = 0; s < batch.num_seqs; s += micro_batch_seqs_) {
    const size_t seqs = std::min(micro_batch_seqs_, batch.num_seqs - s);
    const size_t off = s * seq_len_, len = seqs * seq_len_;
    Batch micro{seqs, seq_len_, batch.tokens.subspan(off, len), batch.targets.subspan(off, len)};
    double micro_sum = 0.0;
    size_t micro_n = 0;
    PK_RETURN_IF_ERROR(backprop_->Forward(micro, grad_scale, &micro_sum, &micro_n));
    if (train) backprop_->Backward();
    sum += micro_sum;
    n += micro_n;
  }
  *loss_sum = sum;
  *count = n;
  return model_->backend().Synchronize();
}

Result<StepStats> Trainer::Step(const Batch& batch) {
  kernels::Backend& be = model_->backend();
  for (Param* p : params_) be.Fill(p->grad.ref(), p->size, 0.0f);
  double loss_sum = 0.0;
  size_t count = 0;
  PK_RETURN_IF_ERROR(Run(batch, /*train=*/true, &loss_sum, &count));
  // Global norm over every gradient, Params in order (each SumSquares is thread-invariant).
  double sq = 0.0;
  for (Param* p : params_) sq += be.SumSquares(p->grad.ref(), p->size);
  const double norm = std::sqrt(sq);
  float clip = 1.0f;
  if (options_.clip_norm > 0.0f && norm > options_.clip_norm) {
    clip = static_cast<float>(options_.clip_norm / norm);
  }
  ++step_;
  const float lr = LearningRate(options_, step_);
  kernels::AdamWParams ap;
  ap.lr = lr;
  ap.beta1 = options_.beta1;
  ap.beta2 = options_.beta2;
  ap.eps = options_.eps;
  ap.grad_scale = clip;
  ap.step = step_;
  for (Param* p : params_) {
    ap.weight_decay = p->decay ? options_.weight_decay : 0.0f;
    be.AdamW(be.TrainableData(*p->weight), p->grad.ref(), p->m.ref(), p->v.ref(), p->size, ap);
  }
  PK_RETURN_IF_ERROR(be.Synchronize());
  StepStats st;
  st.loss = loss_sum / static_cast<double>(count);
  st.tokens = count;
  st.grad_norm = norm;
  st.lr = lr;
  return st;
}

Result<double> Trainer::Evaluate(const Batch& batch) {
  double loss_sum = 0.0;
  size_t count = 0;
  PK_RETURN_IF_ERROR(Run(batch, /*train=*/false, &loss_sum, &count));
  return loss_sum / static_cast<double>(count);
}

namespace {
constexpr char kStepKey[] = "pocket.train.step";
}  // namespace

Result<formats::GgufWriter> Trainer::StateToGguf() const {
  kernels::Backend& be = model_->backend();
  formats::GgufWriter w;
  w.SetString(formats::gguf_names::kGeneralType, "pocket-train-state");
  w.SetInt64(kStepKey, step_);
  std::vector<float> host;
  for (const Param* p : params_) {
    host.resize(p->size);
    for (const auto& [buffer, suffix] :
         {std::pair{&p->m, ".adam_m"}, std::pair{&p->v, ".adam_v"}}) {
      be.Download(buffer->ref(), host.data(), p->size * sizeof(float));
      PK_RETURN_IF_ERROR(w.AddTensor(
          p->name + suffix, p->ne, tensor::DType::kF32,
          formats::EncodeTensor(host.data(), host.size(), p->ne[0], tensor::DType::kF32)));
    }
  }
  return w;
}

Status Trainer::LoadState(const formats::GgufFile& state) {
  PK_ASSIGN_OR_RETURN(int64_t step, state.GetInt(kStepKey));
  if (step < 0) return Status::InvalidArgument("train state: negative step count");
  kernels::Backend& be = model_->backend();
  for (const Param* p : params_) {
    for (const auto& [buffer, suffix] :
         {std::pair{&p->m, ".adam_m"}, std::pair{&p->v, ".adam_v"}}) {
      const formats::TensorInfo* t = state.FindTensor(p->name + suffix);
      if (t == nullptr || t->dtype != tensor::DType::kF32 || t->ne != p->ne) {
        return Status::InvalidArgument("train state " + state.path() + ": no F32 tensor '" +
                                       p->name + suffix + "' of the parameter's shape");
      }
      const std::span<const std::byte> bytes = state.TensorBytes(*t);
      be.Upload(buffer->ref(), bytes.data(), bytes.size());
    }
  }
  step_ = step;
  return be.Synchronize();
}

}  // namespace pocket::train
