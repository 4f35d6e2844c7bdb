#include "model/llama.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <new>
#include <string>

#include "base/memory.h"
#include "base/thread_pool.h"
#include "formats/gguf.h"
#include "kernels/kernels.h"
#include "tensor/fp16.h"

namespace pocket::model {
namespace {

// Which activation quantization MatMul applies for a weight dtype; MatMulShared needs one
// kind for all its jobs.
int ActivationKind(tensor::DType t) {
  switch (t) {
    case tensor::DType::kQ8_0: case tensor::DType::kQ4_0: return 1;
    case tensor::DType::kQ4_K: case tensor::DType::kQ6_K: return 2;
    default: return 0;
  }
}

// Uninitialised float buffer: pages become resident only when a step touches them. Null
// when the memory is not there (checked once after construction).
std::unique_ptr<float[]> Floats(size_t n) {
  return std::unique_ptr<float[]>(new (std::nothrow) float[n]);
}

}  // namespace

struct LlamaModel::Impl {
  Impl(const LlamaConfig& c, const LlamaWeights& w, const LoadOptions& opts)
      : pool(opts.threads > 0 ? static_cast<size_t>(opts.threads) : 0),
        max_tokens(static_cast<size_t>(std::max(1, opts.max_batch_tokens))) {
    const size_t t = max_tokens;
    x = Floats(t * static_cast<size_t>(c.d_model));
    xn = Floats(t * static_cast<size_t>(c.d_model));
    o = Floats(t * static_cast<size_t>(c.d_model));
    q = Floats(t * static_cast<size_t>(c.q_dim()));
    att = Floats(t * static_cast<size_t>(c.q_dim()));
    k = Floats(t * static_cast<size_t>(c.kv_dim()));
    v = Floats(t * static_cast<size_t>(c.kv_dim()));
    gate = Floats(t * static_cast<size_t>(c.d_ff));
    up = Floats(t * static_cast<size_t>(c.d_ff));
    allocated = x && xn && o && q && att && k && v && gate && up;
    ids.resize(t);
    positions.resize(t);
    out_rows.resize(t);
    segments.reserve(t);

    rope.head_dim = static_cast<size_t>(c.head_dim);
    rope.rot_dims = static_cast<size_t>(c.head_dim);
    rope.freq_base = c.rope_freq_base;
    rope.style = c.rope_neox ? kernels::RopeStyle::kNeox : kernels::RopeStyle::kNormal;
    if (w.rope_freqs.data != nullptr) {
      const float* f = static_cast<const float*>(w.rope_freqs.data);
      rope.freq_factors.assign(f, f + w.rope_freqs.ne[0]);
    } else if (c.rope_scaling == RopeScaling::kLlama3) {
      rope.freq_factors = kernels::Llama3RopeFreqFactors(
          rope.rot_dims, c.rope_freq_base, c.rope_scaling_factor, c.rope_low_freq_factor,
          c.rope_high_freq_factor, static_cast<size_t>(c.rope_original_context));
    } else if (c.rope_scaling == RopeScaling::kLinear) {
      rope.freq_scale = 1.0f / c.rope_scaling_factor;
    }
    GrowRope(std::min(c.context_length, std::max(1, opts.rope_positions)));
  }

  void GrowRope(int positions_needed) {
    const size_t n = static_cast<size_t>(positions_needed);
    if (n > rope_table.max_positions()) rope_table = kernels::RopeTable::Create(rope, n);
  }

  // A run of consecutive rows of one batch entry inside a step.
  struct Segment {
    size_t entry;
    size_t first_row;
    size_t num_rows;
    int start_pos;
  };

  // Packed copies of the matrices (LoadOptions::repack); a matrix that the kernels read
  // in place has no packed data, and the forward pass reads its view then.
  struct LayerPacked {
    kernels::PackedWeight wq, wk, wv, wo, gate, up, down;
  };
  void Pack(const LlamaWeights& w, const formats::GgufFile& gguf, bool repack) {
    // A decode step reads every matrix once: from the cache when they all fit in half of
    // it (the cache is shared; the 135M shape in this VM's 480 MiB L3), else from DRAM (the
    // 1B shape; a 312 MB model decodes at DRAM speed here, either prefetch distance).
    const uint64_t cache = LastLevelCacheBytes();
    const auto source = w.size_bytes() <= cache / 2 ? kernels::WeightSource::kCache
                                                    : kernels::WeightSource::kMemory;
    auto pack = [&](const tensor::TensorView& m) {
      if (!repack) return kernels::PackedWeight();
      return kernels::PackedWeight::Pack(
          m, [&](const void* p, size_t n) { gguf.ReleasePages(p, n); }, source);
    };
    packed.reserve(w.layers.size());
    for (const LayerWeights& l : w.layers) {
      packed.push_back({pack(l.wq), pack(l.wk), pack(l.wv), pack(l.wo), pack(l.w_gate),
                        pack(l.w_up), pack(l.w_down)});
    }
    output = pack(w.output);
  }
  std::vector<LayerPacked> packed;
  kernels::PackedWeight output;

  ThreadPool pool;
  kernels::Workspace ws;
  bool allocated = false;
  size_t max_tokens;
  std::unique_ptr<float[]> x, xn, o, q, att, k, v, gate, up;
  std::vector<int32_t> ids, positions;
  std::vector<size_t> out_rows;  // per step row: output row index, or SIZE_MAX for none
  std::vector<Segment> segments;
  kernels::RopeConfig rope;
  kernels::RopeTable rope_table;
};

LlamaModel::LlamaModel(std::unique_ptr<formats::GgufFile> gguf, LlamaConfig config,
                       LlamaWeights weights, const LoadOptions& opts)
    : gguf_(std::move(gguf)), config_(std::move(config)), weights_(std::move(weights)) {
  weight_bytes_ = weights_.size_bytes();
  impl_ = std::make_unique<Impl>(config_, weights_, opts);
  impl_->Pack(weights_, *gguf_, opts.repack);
}

LlamaModel::~LlamaModel() = default;

int LlamaModel::threads() const { return static_cast<int>(impl_->pool.num_threads()); }

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
  for (const LayerWeights& l : weights.layers) {
    for (const tensor::TensorView* m : {&l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up, &l.w_down}) {
      if (!kernels::MatMulSupports(m->dtype)) {
        return Status::NotSupported("llama: matmul over " +
                                    std::string(tensor::DTypeName(m->dtype)) + " weights");
      }
    }
  }
  if (!kernels::MatMulSupports(weights.output.dtype)) {
    return Status::NotSupported("llama: output matmul over " +
                                std::string(tensor::DTypeName(weights.output.dtype)));
  }
  std::unique_ptr<LlamaModel> model(
      new LlamaModel(std::move(file), std::move(config), std::move(weights), opts));
  if (!model->impl_->allocated) {
    return Status::ResourceExhausted("llama: cannot allocate activation workspaces for " +
                                     std::to_string(opts.max_batch_tokens) + " tokens");
  }
  return model;
}

Result<KvCache> LlamaModel::NewKvCache(int capacity_tokens, tensor::DType dtype) const {
  if (capacity_tokens <= 0 || capacity_tokens > config_.context_length) {
    return Status::InvalidArgument("llama: kv cache capacity " + std::to_string(capacity_tokens) +
                                   " outside [1, context_length " +
                                   std::to_string(config_.context_length) + "]");
  }
  return KvCache::Create(config_.num_layers, config_.kv_dim(), capacity_tokens, dtype);
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
  if (max_end > s.rope_table.max_positions()) {
    s.GrowRope(static_cast<int>(std::min<size_t>(
        std::max(max_end, 2 * s.rope_table.max_positions()),
        static_cast<size_t>(c.context_length))));
  }
  const size_t width = static_cast<size_t>(want_logits ? c.vocab_size : c.d_model);
  out->resize(total_rows * width);  // no allocation when the caller reuses the vector

  const size_t d = static_cast<size_t>(c.d_model), q_dim = static_cast<size_t>(c.q_dim());
  const size_t kv_dim = static_cast<size_t>(c.kv_dim()), ff = static_cast<size_t>(c.d_ff);
  const float scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));
  constexpr size_t kNoRow = static_cast<size_t>(-1);

  // Walk the batch in steps of at most max_tokens rows; entry e's token i is row
  // (offset in step). Output rows are numbered in batch order across steps.
  size_t entry = 0, token = 0, next_out_row = 0;
  while (entry < batch.size()) {
    size_t rows = 0;
    s.segments.clear();
    while (entry < batch.size() && rows < s.max_tokens) {
      const BatchEntry& b = batch[entry];
      const size_t take = std::min(b.tokens.size() - token, s.max_tokens - rows);
      s.segments.push_back({entry, rows, take, b.start_pos + static_cast<int>(token)});
      for (size_t i = 0; i < take; ++i) {
        const size_t ti = token + i;
        s.ids[rows + i] = b.tokens[ti];
        s.positions[rows + i] = b.start_pos + static_cast<int32_t>(ti);
        const bool last = ti + 1 == b.tokens.size();
        s.out_rows[rows + i] = (b.all_logits || last) ? next_out_row++ : kNoRow;
      }
      rows += take;
      token += take;
      if (token == b.tokens.size()) {
        ++entry;
        token = 0;
      }
    }

    kernels::GetRows(weights_.token_embd, s.ids.data(), rows, s.x.get());
    // A matrix's packed copy when it has one, else its view in the mapping.
    auto packed = [](const kernels::PackedWeight& p) { return p.packed() ? &p : nullptr; };
    auto matmul = [&](const tensor::TensorView& w, const kernels::PackedWeight& p,
                      const float* x, size_t n, float* y) {
      if (p.packed()) {
        kernels::MatMul(p, x, n, y, s.pool, s.ws);
      } else {
        kernels::MatMul(w, x, n, y, s.pool, s.ws);
      }
    };
    for (int l = 0; l < c.num_layers; ++l) {
      const LayerWeights& lw = weights_.layers[static_cast<size_t>(l)];
      const Impl::LayerPacked& lp = s.packed[static_cast<size_t>(l)];
      kernels::RmsNorm(s.x.get(), static_cast<const float*>(lw.attn_norm.data), c.rms_eps, d,
                       rows, s.xn.get());
      if (ActivationKind(lw.wq.dtype) == ActivationKind(lw.wk.dtype) &&
          ActivationKind(lw.wq.dtype) == ActivationKind(lw.wv.dtype)) {
        const kernels::MatMulJob jobs[] = {{lw.wq, s.q.get(), packed(lp.wq)},
                                           {lw.wk, s.k.get(), packed(lp.wk)},
                                           {lw.wv, s.v.get(), packed(lp.wv)}};
        kernels::MatMulShared(jobs, s.xn.get(), rows, s.pool, s.ws);
      } else {
        matmul(lw.wq, lp.wq, s.xn.get(), rows, s.q.get());
        matmul(lw.wk, lp.wk, s.xn.get(), rows, s.k.get());
        matmul(lw.wv, lp.wv, s.xn.get(), rows, s.v.get());
      }
      if (c.qkv_bias) {
        for (size_t r = 0; r < rows; ++r) {
          kernels::Add(s.q.get() + r * q_dim, static_cast<const float*>(lw.bq.data), q_dim,
                       s.q.get() + r * q_dim);
          kernels::Add(s.k.get() + r * kv_dim, static_cast<const float*>(lw.bk.data), kv_dim,
                       s.k.get() + r * kv_dim);
          kernels::Add(s.v.get() + r * kv_dim, static_cast<const float*>(lw.bv.data), kv_dim,
                       s.v.get() + r * kv_dim);
        }
      }
      kernels::Rope(s.q.get(), rows, static_cast<size_t>(c.num_heads), s.positions.data(),
                    s.rope_table);
      kernels::Rope(s.k.get(), rows, static_cast<size_t>(c.num_kv_heads), s.positions.data(),
                    s.rope_table);
      for (const Impl::Segment& seg : s.segments) {
        KvCache& cache = *batch[seg.entry].cache;
        for (size_t i = 0; i < seg.num_rows; ++i) {
          const int pos = seg.start_pos + static_cast<int>(i);
          const float* kr = s.k.get() + (seg.first_row + i) * kv_dim;
          const float* vr = s.v.get() + (seg.first_row + i) * kv_dim;
          if (cache.dtype() == tensor::DType::kF16) {
            tensor::F32ToF16Row(kr, reinterpret_cast<tensor::f16_t*>(cache.k_row(l, pos)), kv_dim);
            tensor::F32ToF16Row(vr, reinterpret_cast<tensor::f16_t*>(cache.v_row(l, pos)), kv_dim);
          } else {
            std::memcpy(cache.k_row(l, pos), kr, kv_dim * sizeof(float));
            std::memcpy(cache.v_row(l, pos), vr, kv_dim * sizeof(float));
          }
        }
        kernels::KvView kv;
        kv.dtype = cache.dtype();
        kv.k = cache.k_row(l, 0);
        kv.v = cache.v_row(l, 0);
        kv.num_kv_heads = static_cast<size_t>(c.num_kv_heads);
        kv.head_dim = static_cast<size_t>(c.head_dim);
        kernels::Attention(s.q.get() + seg.first_row * q_dim, seg.num_rows,
                           static_cast<size_t>(c.num_heads), static_cast<size_t>(seg.start_pos),
                           kv, scale, s.att.get() + seg.first_row * q_dim, s.pool, s.ws);
      }
      matmul(lw.wo, lp.wo, s.att.get(), rows, s.o.get());
      kernels::Add(s.x.get(), s.o.get(), rows * d, s.x.get());

      kernels::RmsNorm(s.x.get(), static_cast<const float*>(lw.ffn_norm.data), c.rms_eps, d,
                       rows, s.xn.get());
      if (ActivationKind(lw.w_gate.dtype) == ActivationKind(lw.w_up.dtype)) {
        const kernels::MatMulJob jobs[] = {{lw.w_gate, s.gate.get(), packed(lp.gate)},
                                           {lw.w_up, s.up.get(), packed(lp.up)}};
        kernels::MatMulShared(jobs, s.xn.get(), rows, s.pool, s.ws);
      } else {
        matmul(lw.w_gate, lp.gate, s.xn.get(), rows, s.gate.get());
        matmul(lw.w_up, lp.up, s.xn.get(), rows, s.up.get());
      }
      kernels::SwiGLU(s.gate.get(), s.up.get(), rows * ff, s.gate.get());
      matmul(lw.w_down, lp.down, s.gate.get(), rows, s.o.get());
      kernels::Add(s.x.get(), s.o.get(), rows * d, s.x.get());
    }
    for (const Impl::Segment& seg : s.segments) {
      batch[seg.entry].cache->set_num_tokens(seg.start_pos + static_cast<int>(seg.num_rows));
    }

    // Rows that produce output: gather them (in order, so output rows stay contiguous),
    // normalise, then project only those through the vocabulary matrix.
    size_t n_out = 0, first_out = kNoRow;
    for (size_t r = 0; r < rows; ++r) {
      if (s.out_rows[r] == kNoRow) continue;
      if (first_out == kNoRow) first_out = s.out_rows[r];
      std::memcpy(s.xn.get() + n_out * d, s.x.get() + r * d, d * sizeof(float));
      ++n_out;
    }
    if (n_out == 0) continue;
    float* dst = want_logits ? s.o.get() : out->data() + first_out * d;
    kernels::RmsNorm(s.xn.get(), static_cast<const float*>(weights_.output_norm.data), c.rms_eps,
                     d, n_out, dst);
    if (want_logits) {
      matmul(weights_.output, s.output, s.o.get(), n_out, out->data() + first_out * width);
    }
  }
  return Status::Ok();
}

}  // namespace pocket::model
