// Backprop: the training forward (the model's blocks with a tape) and the explicit backward
// of each block. The derivations are the textbook ones (llm.c's train_gpt2.c layer by layer,
// with RMSNorm, RoPE and SwiGLU as in Llama); each step names the forward op it inverts.
#include "train/backprop.h"

#include <cmath>
#include <string>

#include "base/check.h"
#include "train/lora.h"

namespace pocket::train {

using kernels::BufferRef;

Result<std::unique_ptr<Backprop>> Backprop::Create(ModelParams* params, size_t max_rows) {
  PK_CHECK(params != nullptr);
  if (max_rows == 0) return Status::InvalidArgument("train: a batch needs at least one token");
  // Every adapter must take a whole batch, and be one the backward can train through.
  auto check = [max_rows](const model::Linear& l, const std::string& where) -> Status {
    for (const auto& a : l.adapters) {
      if (a->max_tokens() < max_rows || dynamic_cast<TrainableLora*>(a.get()) == nullptr) {
        return Status::InvalidArgument("train: the adapter on " + where +
                                       " is not a TrainableLora for " + std::to_string(max_rows) +
                                       " tokens");
      }
    }
    return Status::Ok();
  };
  for (size_t l = 0; l < params->layers().size(); ++l) {
    const model::LayerParams& p = params->layers()[l];
    const std::string where = "layer " + std::to_string(l);
    for (const model::Linear* linear : {&p.wq, &p.wk, &p.wv, &p.wo, &p.gate, &p.up, &p.down}) {
      PK_RETURN_IF_ERROR(check(*linear, where));
    }
  }
  PK_RETURN_IF_ERROR(check(params->head().output, "the output"));
  std::unique_ptr<Backprop> b(new Backprop(params));
  kernels::Backend& be = params->backend();
  const model::LlamaConfig& c = params->config();
  b->max_rows_ = max_rows;
  PK_ASSIGN_OR_RETURN(b->act_, model::Activations::Create(be, c, max_rows));
  const size_t positions = std::min(max_rows, static_cast<size_t>(std::max(1, c.context_length)));
  b->rope_table_ =
      std::make_unique<kernels::RopeTable>(kernels::RopeTable::Create(params->rope(), positions));
  PK_ASSIGN_OR_RETURN(b->rope_, be.PrepareRope(*b->rope_table_));

  const size_t d = static_cast<size_t>(c.d_model), q = static_cast<size_t>(c.q_dim());
  const size_t kv = static_cast<size_t>(c.kv_dim()), ff = static_cast<size_t>(c.d_ff);
  const size_t vocab = static_cast<size_t>(c.vocab_size);
  auto make = [&](size_t floats, BufferRef* out) -> Status {
    PK_ASSIGN_OR_RETURN(kernels::Buffer buf, be.Allocate(floats * sizeof(float)));
    b->buffers_.emplace_back(&be, buf);
    *out = b->buffers_.back().ref();
    return Status::Ok();
  };
  b->buffers_.reserve(16 * static_cast<size_t>(c.num_layers) + 32);
  b->tapes_.resize(static_cast<size_t>(c.num_layers));
  for (model::LayerTape& t : b->tapes_) {
    PK_RETURN_IF_ERROR(make(max_rows * d, &t.x_attn));
    PK_RETURN_IF_ERROR(make(max_rows * d, &t.xn_attn));
    PK_RETURN_IF_ERROR(make(max_rows * q, &t.q));
    PK_RETURN_IF_ERROR(make(max_rows * kv, &t.k));
    PK_RETURN_IF_ERROR(make(max_rows * kv, &t.v));
    PK_RETURN_IF_ERROR(make(max_rows * q, &t.att));
    PK_RETURN_IF_ERROR(make(max_rows * d, &t.x_ffn));
    PK_RETURN_IF_ERROR(make(max_rows * d, &t.xn_ffn));
    PK_RETURN_IF_ERROR(make(max_rows * ff, &t.gate));
    PK_RETURN_IF_ERROR(make(max_rows * ff, &t.up));
  }
  PK_RETURN_IF_ERROR(make(max_rows * d, &b->head_tape_.x));
  PK_RETURN_IF_ERROR(make(max_rows * d, &b->head_tape_.xn));
  PK_RETURN_IF_ERROR(make(max_rows * vocab, &b->head_tape_.logits));
  PK_RETURN_IF_ERROR(make(max_rows, &b->targets_));  // int32, same size as float
  PK_RETURN_IF_ERROR(make(max_rows, &b->losses_));
  PK_RETURN_IF_ERROR(make(max_rows * d, &b->dx_));
  PK_RETURN_IF_ERROR(make(max_rows * d, &b->dxn_));
  PK_RETURN_IF_ERROR(make(max_rows * q, &b->datt_));
  PK_RETURN_IF_ERROR(make(max_rows * q, &b->dq_));
  PK_RETURN_IF_ERROR(make(max_rows * kv, &b->dk_));
  PK_RETURN_IF_ERROR(make(max_rows * kv, &b->dv_));
  PK_RETURN_IF_ERROR(make(max_rows * ff, &b->h_));
  PK_RETURN_IF_ERROR(make(max_rows * ff, &b->dh_));
  PK_RETURN_IF_ERROR(make(max_rows * ff, &b->dgate_));
  PK_RETURN_IF_ERROR(make(max_rows * ff, &b->dup_));
  PK_RETURN_IF_ERROR(make(d, &b->dnorm_));
  b->losses_host_.resize(max_rows);
  b->upload_.resize(2 * max_rows);
  return b;
}

Status Backprop::Forward(const Batch& batch, float grad_scale, double* loss_sum, size_t* count) {
  const model::LlamaConfig& c = p_->config();
  kernels::Backend& be = p_->backend();
  const size_t rows = batch.num_seqs * batch.seq_len;
  if (rows == 0 || rows > max_rows_ || batch.seq_len > rope_table_->max_positions() ||
      batch.tokens.size() != rows || batch.targets.size() != rows) {
    return Status::InvalidArgument("train: batch of " + std::to_string(batch.num_seqs) + " x " +
                                   std::to_string(batch.seq_len) + " tokens with " +
                                   std::to_string(batch.tokens.size()) + " tokens and " +
                                   std::to_string(batch.targets.size()) + " targets (at most " +
                                   std::to_string(max_rows_) + " tokens, sequences of at most " +
                                   std::to_string(rope_table_->max_positions()) + ")");
  }
  for (size_t i = 0; i < rows; ++i) {
    if (batch.tokens[i] < 0 || batch.tokens[i] >= c.vocab_size || batch.targets[i] < -1 ||
        batch.targets[i] >= c.vocab_size) {
      return Status::InvalidArgument("train: token or target at " + std::to_string(i) +
                                     " outside vocab of " + std::to_string(c.vocab_size));
    }
  }
  rows_ = rows;
  seq_len_ = batch.seq_len;
  // Ids then positions, as Activations expects them (positions restart per sequence).
  for (size_t i = 0; i < rows; ++i) {
    upload_[i] = batch.tokens[i];
    upload_[rows + i] = static_cast<int32_t>(i % batch.seq_len);
  }
  be.Upload(act_.tokens.ref(), upload_.data(), 2 * rows * sizeof(int32_t));
  be.Upload(targets_, batch.targets.data(), rows * sizeof(int32_t));

  const model::StepContext ctx{be, c, act_, rows, {}, *rope_};
  be.GetRows(p_->embedding(), act_.ids(), rows, act_.x.ref());
  for (size_t l = 0; l < tapes_.size(); ++l) {
    tapes_[l].seq_len = batch.seq_len;
    model::AttentionBlock(ctx, p_->layers()[l], static_cast<int>(l), &tapes_[l]);
    model::FeedForwardBlock(ctx, p_->layers()[l], &tapes_[l]);
  }
  model::OutputHead(ctx, p_->head(), /*want_logits=*/true, nullptr, &head_tape_);
  // The logits' gradient replaces the logits (their only reader is this op).
  be.CrossEntropy(head_tape_.logits, targets_, rows, static_cast<size_t>(c.vocab_size), grad_scale,
                  losses_, head_tape_.logits);
  be.Download(losses_, losses_host_.data(), rows * sizeof(float));
  double sum = 0.0;
  size_t n = 0;
  for (size_t i = 0; i < rows; ++i) {
    if (batch.targets[i] < 0) continue;
    sum += static_cast<double>(losses_host_[i]);
    ++n;
  }
  *loss_sum = sum;
  *count = n;
  return be.Synchronize();
}

BufferRef Backprop::GradOrScratch(const kernels::Weight* w) {
  const kernels::DeviceBuffer* g = p_->GradOf(w);
  return g != nullptr ? g->ref() : dnorm_;
}

void Backprop::LinearBackward(const model::Linear& l, BufferRef x, BufferRef dy, BufferRef dx) {
  kernels::Backend& be = p_->backend();
  const size_t rows = l.out_features(), cols = l.in_features();
  be.MatMulBackwardInput(*l.weight, dy, rows_, dx);
  if (const kernels::DeviceBuffer* g = p_->GradOf(l.weight.get()); g != nullptr) {
    be.MatMulBackwardWeight(x, dy, rows_, rows, cols, g->ref());
  }
  if (l.bias != nullptr) {
    if (const kernels::DeviceBuffer* g = p_->GradOf(l.bias.get()); g != nullptr) {
      be.SumRows(dy, rows, rows_, g->ref());
    }
  }
  for (const auto& adapter : l.adapters) {
    auto* lora = dynamic_cast<TrainableLora*>(adapter.get());
    PK_CHECK(lora != nullptr);  // Create refused any other
    lora->Backward(be, x, dy, rows_, dx);
  }
}

void Backprop::HeadBackward() {
  kernels::Backend& be = p_->backend();
  const model::LlamaConfig& c = p_->config();
  const size_t d = static_cast<size_t>(c.d_model);
  const model::HeadParams& head = p_->head();
  // logits = output · xn (dlogits are in head_tape_.logits), xn = RmsNorm(x).
  be.Fill(dxn_, rows_ * d, 0.0f);
  LinearBackward(head.output, head_tape_.xn, head_tape_.logits, dxn_);
  be.Fill(dx_, rows_ * d, 0.0f);
  be.RmsNormBackward(head_tape_.x, *head.output_norm, c.rms_eps, d, rows_, dxn_, dx_,
                     GradOrScratch(head.output_norm.get()));
}

void Backprop::FeedForwardBackward(size_t layer) {
  kernels::Backend& be = p_->backend();
  const model::LlamaConfig& c = p_->config();
  const size_t d = static_cast<size_t>(c.d_model), ff = static_cast<size_t>(c.d_ff);
  const model::LayerParams& p = p_->layers()[layer];
  const model::LayerTape& t = tapes_[layer];
  // x_out = x + down · h, h = SwiGLU(gate, up): h is recomputed from the tape (the same op
  // on the same inputs: the forward's bits) rather than kept per layer.
  be.SwiGLU(t.gate, t.up, rows_ * ff, h_);
  be.Fill(dh_, rows_ * ff, 0.0f);
  LinearBackward(p.down, h_, dx_, dh_);
  be.SwiGLUBackward(t.gate, t.up, dh_, rows_ * ff, dgate_, dup_);
  // gate = Wg xn, up = Wu xn; xn = RmsNorm(x). dx already holds the residual's gradient.
  be.Fill(dxn_, rows_ * d, 0.0f);
  LinearBackward(p.gate, t.xn_ffn, dgate_, dxn_);
  LinearBackward(p.up, t.xn_ffn, dup_, dxn_);
  be.RmsNormBackward(t.x_ffn, *p.ffn_norm, c.rms_eps, d, rows_, dxn_, dx_,
                     GradOrScratch(p.ffn_norm.get()));
}

void Backprop::AttentionBackward(size_t layer) {
  kernels::Backend& be = p_->backend();
  const model::LlamaConfig& c = p_->config();
  const size_t d = static_cast<size_t>(c.d_model), q_dim = static_cast<size_t>(c.q_dim());
  const size_t heads = static_cast<size_t>(c.num_heads);
  const size_t kv_heads = static_cast<size_t>(c.num_kv_heads);
  const size_t head_dim = static_cast<size_t>(c.head_dim);
  const float scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));  // as AttentionBlock
  const model::LayerParams& p = p_->layers()[layer];
  const model::LayerTape& t = tapes_[layer];
  // x_out = x + wo · att.
  be.Fill(datt_, rows_ * q_dim, 0.0f);
  LinearBackward(p.wo, t.att, dx_, datt_);
  // att = Attention(q, k, v) per sequence; q and k carry RoPE, whose gradient is the
  // inverse rotation.
  be.AttentionBackward(t.q, t.k, t.v, datt_, rows_ / seq_len_, seq_len_, heads, kv_heads, head_dim,
                       scale, dq_, dk_, dv_);
  const BufferRef positions = act_.positions(rows_);
  be.RopeBackward(dq_, rows_, heads, positions, *rope_);
  be.RopeBackward(dk_, rows_, kv_heads, positions, *rope_);
  // q, k, v = W xn (+ b); xn = RmsNorm(x).
  be.Fill(dxn_, rows_ * d, 0.0f);
  LinearBackward(p.wq, t.xn_attn, dq_, dxn_);
  LinearBackward(p.wk, t.xn_attn, dk_, dxn_);
  LinearBackward(p.wv, t.xn_attn, dv_, dxn_);
  be.RmsNormBackward(t.x_attn, *p.attn_norm, c.rms_eps, d, rows_, dxn_, dx_,
                     GradOrScratch(p.attn_norm.get()));
}

void Backprop::Backward() {
  PK_CHECK(rows_ > 0);
  HeadBackward();
  for (size_t l = tapes_.size(); l-- > 0;) {
    FeedForwardBackward(l);
    AttentionBackward(l);
  }
  // x = Embedding[ids]: rows of the table's gradient (the output's too when tied).
  const kernels::Weight& table = p_->embedding();
  if (const kernels::DeviceBuffer* g = p_->GradOf(&table); g != nullptr) {
    p_->backend().GetRowsBackward(act_.ids(), rows_, dx_, static_cast<size_t>(p_->config().d_model),
                                  g->ref());
  }
}

}  // namespace pocket::train
