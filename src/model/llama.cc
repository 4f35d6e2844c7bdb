// LlamaModel: loading (binding the GGUF weights and preparing them on the backend), request
// validation and the step loop of Forward, which runs the blocks of model/blocks.cc. Owns
// what the blocks read: the backend, the prepared parameters, the activations, the RoPE
// table.
#include "model/llama.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "base/memory.h"
#include "base/platform.h"
#include "formats/gguf.h"
#include "model/activations.h"
#include "model/blocks.h"

namespace pocket::model {

struct LlamaModel::Impl {
  // Binds the config's RoPE. The weights (Prepare) and activations are made by the caller
  // (both can fail).
  Impl(kernels::Backend& be, const LlamaConfig& c, const LlamaWeights& w,
       const LoadOptions& opts)
      : backend(be),
        max_tokens(static_cast<size_t>(std::max(1, opts.max_batch_tokens))),
        rope(RopeConfigOf(c, w.rope_freqs)) {
    segments.reserve(max_tokens);
  }
  // Replaces the table (and its backend copy) when it covers fewer positions than
  // positions_needed. ResourceExhausted from the backend; the old table stays then.
  Status GrowRope(int positions_needed) {
    const size_t n = static_cast<size_t>(positions_needed);
    if (rope_table != nullptr && n <= rope_table->max_positions()) return Status::Ok();
    auto table = std::make_unique<kernels::RopeTable>(kernels::RopeTable::Create(rope, n));
    PK_ASSIGN_OR_RETURN(std::unique_ptr<kernels::PreparedRope> prepared,
                        backend.PrepareRope(*table));
    rope_prepared = std::move(prepared);  // before the table it reads goes
    rope_table = std::move(table);
    return Status::Ok();
  }
  size_t rope_positions() const { return rope_table->max_positions(); }
  // act.logits for the output head's bias or adapters (once).
  Status AllocateLogits(kernels::Backend& be) {
    if (act.logits.size_bytes() != 0) return Status::Ok();
    PK_ASSIGN_OR_RETURN(kernels::Buffer b,
                        be.Allocate(max_tokens * head.output.out_features() * sizeof(float)));
    act.logits = kernels::DeviceBuffer(&be, b);
    return Status::Ok();
  }

  // Prepares every weight on the backend; ResourceExhausted (naming the tensor) when the
  // backend cannot hold one.
  Status Prepare(const LlamaWeights& w, const formats::GgufFile& gguf, bool repack) {
    // A decode step reads every matrix once: from the cache when they all fit in half of
    // it (the cache is shared with the other cores and tenants), else from DRAM (a model of
    // hundreds of MB decodes at DRAM speed, either prefetch distance). The Platform says
    // how large the cache is (an emulated device's profile included).
    const uint64_t cache = Platform::Default().last_level_cache_bytes();
    kernels::PrepareOptions po;
    po.repack = repack;
    po.source = w.size_bytes() <= cache / 2 ? kernels::WeightSource::kCache
                                            : kernels::WeightSource::kMemory;
    // The file pages of a matrix the backend copied are released as it goes, so resident
    // memory holds each weight byte about once.
    po.consumed = [&gguf](const void* p, size_t n) { gguf.ReleasePages(p, n); };
    // Built only on error: the names of the tensors are not kept otherwise.
    auto fail = [](const Status& st, int layer, const char* what) {
      return st.WithContext("llama: preparing " +
                            (layer < 0 ? std::string() : "layer " + std::to_string(layer) + " ") +
                            what);
    };
    auto matrix = [&](const tensor::TensorView& m, Linear* l, int layer,
                      const char* what) -> Status {
      auto r = backend.PrepareMatrix(m, po);
      if (!r.ok()) return fail(r.status(), layer, what);
      l->weight = std::move(*r);
      return Status::Ok();
    };
    auto tensor = [&](const tensor::TensorView& t, std::unique_ptr<kernels::Weight>* out,
                      int layer, const char* what) -> Status {
      if (t.data == nullptr) return Status::Ok();
      auto r = backend.PrepareTensor(t);
      if (!r.ok()) return fail(r.status(), layer, what);
      *out = std::move(*r);
      return Status::Ok();
    };
    layers.reserve(w.layers.size());
    for (size_t i = 0; i < w.layers.size(); ++i) {
      const LayerWeights& l = w.layers[i];
      const int li = static_cast<int>(i);
      LayerParams p;
      PK_RETURN_IF_ERROR(tensor(l.attn_norm, &p.attn_norm, li, "attn_norm"));
      PK_RETURN_IF_ERROR(tensor(l.ffn_norm, &p.ffn_norm, li, "ffn_norm"));
      PK_RETURN_IF_ERROR(matrix(l.wq, &p.wq, li, "wq"));
      PK_RETURN_IF_ERROR(matrix(l.wk, &p.wk, li, "wk"));
      PK_RETURN_IF_ERROR(matrix(l.wv, &p.wv, li, "wv"));
      PK_RETURN_IF_ERROR(tensor(l.bq, &p.wq.bias, li, "bq"));
      PK_RETURN_IF_ERROR(tensor(l.bk, &p.wk.bias, li, "bk"));
      PK_RETURN_IF_ERROR(tensor(l.bv, &p.wv.bias, li, "bv"));
      PK_RETURN_IF_ERROR(matrix(l.wo, &p.wo, li, "wo"));
      PK_RETURN_IF_ERROR(matrix(l.w_gate, &p.gate, li, "ffn_gate"));
      PK_RETURN_IF_ERROR(matrix(l.w_up, &p.up, li, "ffn_up"));
      PK_RETURN_IF_ERROR(matrix(l.w_down, &p.down, li, "ffn_down"));
      layers.push_back(std::move(p));
    }
    PK_RETURN_IF_ERROR(tensor(w.token_embd, &embedding, -1, "token_embd"));
    PK_RETURN_IF_ERROR(tensor(w.output_norm, &head.output_norm, -1, "output_norm"));
    return matrix(w.output, &head.output, -1, "output");
  }

  Linear* Find(int layer, MatrixId which) {
    if (which == MatrixId::kOutput) return &head.output;
    LayerParams& p = layers[static_cast<size_t>(layer)];
    switch (which) {
      case MatrixId::kQ: return &p.wq;
      case MatrixId::kK: return &p.wk;
      case MatrixId::kV: return &p.wv;
      case MatrixId::kO: return &p.wo;
      case MatrixId::kGate: return &p.gate;
      case MatrixId::kUp: return &p.up;
      case MatrixId::kDown: return &p.down;
      case MatrixId::kOutput: break;
    }
    return &head.output;
  }

  kernels::Backend& backend;
  size_t max_tokens;
  std::vector<LayerParams> layers;
  std::unique_ptr<kernels::Weight> embedding;
  HeadParams head;
  Activations act;
  std::vector<Segment> segments;
  kernels::RopeConfig rope;
  // Heap-held so that its address (which the CPU and reference backends' PreparedRope keep)
  // stays put; rope_prepared is the backend's copy of it.
  std::unique_ptr<kernels::RopeTable> rope_table;
  std::unique_ptr<kernels::PreparedRope> rope_prepared;
};

namespace {

// "layer 3 wq", "output": where an adapter goes, for error messages.
std::string MatrixLabel(int layer, MatrixId which) {
  const char* name = "output";
  switch (which) {
    case MatrixId::kQ: name = "wq"; break;
    case MatrixId::kK: name = "wk"; break;
    case MatrixId::kV: name = "wv"; break;
    case MatrixId::kO: name = "wo"; break;
    case MatrixId::kGate: name = "ffn_gate"; break;
    case MatrixId::kUp: name = "ffn_up"; break;
    case MatrixId::kDown: name = "ffn_down"; break;
    case MatrixId::kOutput: return name;
  }
  return "layer " + std::to_string(layer) + " " + name;
}

}  // namespace

LlamaModel::LlamaModel(std::unique_ptr<formats::GgufFile> gguf, LlamaConfig config,
                       LlamaWeights weights, std::shared_ptr<kernels::Backend> backend)
    : gguf_(std::move(gguf)),
      config_(std::move(config)),
      weights_(std::move(weights)),
      backend_(std::move(backend)) {
  weight_bytes_ = weights_.size_bytes();
}

LlamaModel::~LlamaModel() = default;

int LlamaModel::threads() const { return backend_->threads(); }
int LlamaModel::max_batch_tokens() const { return static_cast<int>(impl_->max_tokens); }

Result<std::unique_ptr<LlamaModel>> LlamaModel::Load(const std::string& gguf_path,
                                                     const LoadOptions& opts) {
  PK_ASSIGN_OR_RETURN(formats::GgufFile gguf, formats::GgufFile::Open(gguf_path));
  return FromGguf(std::move(gguf), opts);
}

Result<std::unique_ptr<LlamaModel>> LlamaModel::FromGguf(formats::GgufFile gguf,
                                                         const LoadOptions& opts) {
  if (opts.threads < 0 || opts.threads > 1024 || opts.max_batch_tokens <= 0 ||
      opts.max_batch_tokens > 65536 || opts.rope_positions <= 0) {
    return Status::InvalidArgument("llama: threads must be in [0, 1024], max_batch_tokens "
                                   "in [1, 65536] and rope_positions positive");
  }
  auto file = std::make_unique<formats::GgufFile>(std::move(gguf));
  PK_ASSIGN_OR_RETURN(LlamaConfig config, LlamaConfig::FromGguf(*file));
  if (opts.before_bind) PK_RETURN_IF_ERROR(opts.before_bind(config, file->file_size()));
  PK_ASSIGN_OR_RETURN(LlamaWeights weights, BindWeights(*file, config));
  PK_ASSIGN_OR_RETURN(std::shared_ptr<kernels::Backend> backend,
                      kernels::MakeBackend(opts.backend, opts.threads));
  for (const LayerWeights& l : weights.layers) {
    for (const tensor::TensorView* m : {&l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up, &l.w_down}) {
      if (!backend->MatMulSupports(m->dtype)) {
        return Status::NotSupported("llama: matmul over " +
                                    std::string(tensor::DTypeName(m->dtype)) + " weights");
      }
    }
  }
  if (!backend->MatMulSupports(weights.output.dtype)) {
    return Status::NotSupported("llama: output matmul over " +
                                std::string(tensor::DTypeName(weights.output.dtype)));
  }
  // GetRows dequantizes rows of the embedding table: any MatMul type can be dequantized.
  if (!backend->MatMulSupports(weights.token_embd.dtype)) {
    return Status::NotSupported("llama: token embedding of " +
                                std::string(tensor::DTypeName(weights.token_embd.dtype)) +
                                " type");
  }
  auto act = Activations::Create(*backend, config, static_cast<size_t>(opts.max_batch_tokens));
  if (!act.ok()) {
    return Status::ResourceExhausted("llama: cannot allocate activation workspaces for " +
                                     std::to_string(opts.max_batch_tokens) + " tokens");
  }
  std::unique_ptr<LlamaModel> model(
      new LlamaModel(std::move(file), std::move(config), std::move(weights), backend));
  model->impl_ = std::make_unique<Impl>(*backend, model->config_, model->weights_, opts);
  PK_RETURN_IF_ERROR(model->impl_->Prepare(model->weights_, *model->gguf_, opts.repack));
  PK_RETURN_IF_ERROR(model->impl_->GrowRope(
      std::min(model->config_.context_length, std::max(1, opts.rope_positions))));
  model->impl_->act = std::move(*act);
  if (model->impl_->head.output.bias != nullptr) {
    PK_RETURN_IF_ERROR(model->impl_->AllocateLogits(*backend));
  }
  return model;
}

Result<KvCache> LlamaModel::NewKvCache(int capacity_tokens, tensor::DType dtype) const {
  if (capacity_tokens <= 0 || capacity_tokens > config_.context_length) {
    return Status::InvalidArgument("llama: kv cache capacity " + std::to_string(capacity_tokens) +
                                   " outside [1, context_length " +
                                   std::to_string(config_.context_length) + "]");
  }
  return KvCache::Create(backend_, config_.num_layers, config_.kv_dim(), capacity_tokens, dtype);
}

Status LlamaModel::AttachAdapter(int layer, MatrixId which, std::shared_ptr<Adapter> adapter) {
  if (adapter == nullptr) return Status::InvalidArgument("llama: null adapter");
  if (which != MatrixId::kOutput && (layer < 0 || layer >= config_.num_layers)) {
    return Status::InvalidArgument("llama: adapter for layer " + std::to_string(layer) +
                                   " of " + std::to_string(config_.num_layers));
  }
  Impl& s = *impl_;
  Linear& linear = *s.Find(layer, which);
  if (adapter->backend() != backend_.get()) {
    return Status::InvalidArgument(
        "llama: adapter for " + MatrixLabel(layer, which) +
        " was made on another backend than the model's (" +
        std::string(BackendName(backend_->kind())) + ")");
  }
  if (adapter->in_features() != linear.in_features() ||
      adapter->out_features() != linear.out_features() ||
      adapter->max_tokens() < s.max_tokens) {
    return Status::InvalidArgument(
        "llama: adapter for " + MatrixLabel(layer, which) + " is " +
        std::to_string(adapter->out_features()) + " x " + std::to_string(adapter->in_features()) +
        " for " + std::to_string(adapter->max_tokens()) + " tokens; the matrix is " +
        std::to_string(linear.out_features()) + " x " + std::to_string(linear.in_features()) +
        " and a step has up to " + std::to_string(s.max_tokens) + " tokens");
  }
  if (which == MatrixId::kOutput) PK_RETURN_IF_ERROR(s.AllocateLogits(*backend_));
  linear.adapters.push_back(std::move(adapter));
  return Status::Ok();
}

Status LlamaModel::Forward(std::span<BatchEntry> batch, std::vector<float>* logits) {
  return Run(batch, /*want_logits=*/true, logits);
}

Status LlamaModel::ForwardHidden(std::span<BatchEntry> batch, std::vector<float>* hidden) {
  return Run(batch, /*want_logits=*/false, hidden);
}

Status LlamaModel::Run(std::span<BatchEntry> batch, bool want_logits, std::vector<float>* out) {
  const LlamaConfig& c = config_;
  Impl& s = *impl_;
  // Validate everything first, so that an error leaves every cache untouched.
  size_t total_rows = 0, max_end = 0;
  for (size_t e = 0; e < batch.size(); ++e) {
    const BatchEntry& b = batch[e];
    // Built only on error: a decode step must not allocate.
    auto where = [e] { return "llama forward: batch entry " + std::to_string(e) + ": "; };
    if (b.cache == nullptr) return Status::InvalidArgument(where() + "no kv cache");
    if (b.tokens.empty()) return Status::InvalidArgument(where() + "no tokens");
    if (b.cache->num_layers() != c.num_layers || b.cache->kv_dim() != c.kv_dim()) {
      return Status::InvalidArgument(where() + "kv cache made for another model shape");
    }
    if (b.cache->backend() != backend_.get()) {
      return Status::InvalidArgument(where() + "kv cache made for another model's backend");
    }
    if (b.start_pos != b.cache->num_tokens()) {
      return Status::InvalidArgument(where() + "start_pos " + std::to_string(b.start_pos) +
                                     " != tokens in its cache " +
                                     std::to_string(b.cache->num_tokens()));
    }
    const size_t end = static_cast<size_t>(b.start_pos) + b.tokens.size();
    if (end > static_cast<size_t>(b.cache->capacity())) {
      return Status::InvalidArgument(where() + std::to_string(end) +
                                     " tokens exceed the cache capacity " +
                                     std::to_string(b.cache->capacity()));
    }
    if (end > static_cast<size_t>(c.context_length)) {
      return Status::InvalidArgument(where() + "position " + std::to_string(end) +
                                     " beyond the context length " +
                                     std::to_string(c.context_length));
    }
    max_end = std::max(max_end, end);
    for (size_t i = 0; i < b.tokens.size(); ++i) {
      if (b.tokens[i] < 0 || b.tokens[i] >= c.vocab_size) {
        return Status::InvalidArgument(where() + "token " + std::to_string(b.tokens[i]) +
                                       " outside vocab of " + std::to_string(c.vocab_size));
      }
    }
    for (size_t f = 0; f < e; ++f) {
      if (batch[f].cache == b.cache) {
        return Status::InvalidArgument(where() + "same kv cache as entry " + std::to_string(f));
      }
    }
    total_rows += b.all_logits ? b.tokens.size() : 1;
  }
  // The RoPE table covers positions up to the furthest seen, doubling when outgrown: a
  // table for a 128k context (32 MiB at head_dim 64) is only built if it is used, and a
  // long decode reallocates it log2(context / 4096) times, never per token.
  if (max_end > s.rope_positions()) {
    PK_RETURN_IF_ERROR(s.GrowRope(static_cast<int>(std::min<size_t>(
        std::max(max_end, 2 * s.rope_positions()), static_cast<size_t>(c.context_length)))));
  }
  const size_t width = static_cast<size_t>(want_logits ? c.vocab_size : c.d_model);
  out->resize(total_rows * width);  // no allocation when the caller reuses the vector

  // Walk the batch in steps of at most max_tokens rows; entry e's token i is row
  // (offset in step). Output rows are numbered in batch order across steps.
  Activations& a = s.act;
  size_t entry = 0, token = 0, next_out_row = 0;
  size_t remaining = 0;  // tokens of the batch not yet in a step
  for (const BatchEntry& b : batch) remaining += b.tokens.size();
  while (entry < batch.size()) {
    // This step's rows, known up front so positions can follow the ids in one upload.
    const size_t step_rows = std::min(remaining, s.max_tokens);
    remaining -= step_rows;
    int32_t* ids = a.tokens_host.data();
    int32_t* positions = ids + step_rows;
    size_t rows = 0;
    s.segments.clear();
    while (entry < batch.size() && rows < s.max_tokens) {
      const BatchEntry& b = batch[entry];
      const size_t take = std::min(b.tokens.size() - token, s.max_tokens - rows);
      s.segments.push_back({b.cache, rows, take, b.start_pos + static_cast<int>(token)});
      for (size_t i = 0; i < take; ++i) {
        const size_t ti = token + i;
        ids[rows + i] = b.tokens[ti];
        positions[rows + i] = b.start_pos + static_cast<int32_t>(ti);
        const bool last = ti + 1 == b.tokens.size();
        a.out_rows[rows + i] = (b.all_logits || last) ? next_out_row++ : Activations::kNoRow;
      }
      rows += take;
      token += take;
      if (token == b.tokens.size()) {
        ++entry;
        token = 0;
      }
    }
    PK_DCHECK(rows == step_rows);
    backend_->Upload(a.tokens.ref(), ids, 2 * rows * sizeof(int32_t));
    const StepContext ctx{*backend_, c, a, rows, s.segments, *s.rope_prepared};
    backend_->GetRows(*s.embedding, a.ids(), rows, a.x.ref());
    for (int l = 0; l < c.num_layers; ++l) {
      const LayerParams& p = s.layers[static_cast<size_t>(l)];
      AttentionBlock(ctx, p, l);
      FeedForwardBlock(ctx, p);
    }
    for (const Segment& seg : s.segments) {
      seg.cache->set_num_tokens(seg.start_pos + static_cast<int>(seg.num_rows));
    }
    size_t first_out = Activations::kNoRow;
    for (size_t r = 0; r < rows && first_out == Activations::kNoRow; ++r) first_out = a.out_rows[r];
    if (first_out == Activations::kNoRow) continue;
    OutputHead(ctx, s.head, want_logits, out->data() + first_out * width);
  }
  return backend_->Synchronize();
}

}  // namespace pocket::model