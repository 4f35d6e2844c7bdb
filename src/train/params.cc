// ModelParams: creating a Llama model's parameters (fresh, or from a GGUF, trainable or
// frozen), their deterministic initialisation and the GGUF export. The forward and backward
// passes that use them are train/backprop.cc's.
#include "train/params.h"

#include <cstring>

#include "base/check.h"
#include "formats/gguf_names.h"
#include "model/weights.h"

namespace pocket::train {

using kernels::Weight;
namespace names = formats::gguf_names;

namespace {

uint64_t Fnv1a(const std::string& s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ull;
  return h;
}

// SplitMix64's output function (Steele, Lea, Flood 2014) at a given state: counter-based,
// so element i needs no earlier element.
uint64_t Mix(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

tensor::TensorView Shape(const std::vector<uint64_t>& ne) {
  tensor::TensorView t;
  t.dtype = tensor::DType::kF32;
  for (size_t i = 0; i < ne.size(); ++i) t.ne[i] = static_cast<int64_t>(ne[i]);
  return t;
}

}  // namespace

std::vector<float> InitNormal(uint64_t seed, const std::string& name, size_t n, float std) {
  const uint64_t base = Mix(seed ^ 0x9E3779B97F4A7C15ull) ^ Fnv1a(name);
  const float scale = 1.7320508f * std / 65536.0f;  // sqrt(3): four uniforms have var 4/12
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) {
    const uint64_t r = Mix(base + (i + 1) * 0x9E3779B97F4A7C15ull);
    const int32_t sum = static_cast<int32_t>((r & 0xffff) + ((r >> 16) & 0xffff) +
                                             ((r >> 32) & 0xffff) + (r >> 48)) -
                        2 * 65535;
    v[i] = static_cast<float>(sum) * scale;
  }
  return v;
}

Status DequantizeOnBackend(kernels::Backend& backend, const tensor::TensorView& t,
                           kernels::BufferRef dst) {
  // GetRows over every row of the tensor as a table: the backend's own dequantization.
  const size_t rows = static_cast<size_t>(t.num_rows());
  PK_ASSIGN_OR_RETURN(std::unique_ptr<Weight> table, backend.PrepareTensor(t));
  std::vector<int32_t> ids(rows);
  for (size_t r = 0; r < rows; ++r) ids[r] = static_cast<int32_t>(r);
  PK_ASSIGN_OR_RETURN(kernels::Buffer buf, backend.Allocate(rows * sizeof(int32_t)));
  kernels::DeviceBuffer ids_buffer(&backend, buf);
  backend.Upload(ids_buffer.ref(), ids.data(), rows * sizeof(int32_t));
  backend.GetRows(*table, ids_buffer.ref(), rows, dst);
  return backend.Synchronize();
}

Result<Param> Param::Create(kernels::Backend& backend, std::string name, std::vector<uint64_t> ne,
                            bool decay, std::unique_ptr<Weight>* owner) {
  Param p;
  p.name = std::move(name);
  p.ne = std::move(ne);
  p.size = 1;
  for (uint64_t d : p.ne) p.size *= static_cast<size_t>(d);
  p.decay = decay;
  PK_ASSIGN_OR_RETURN(*owner, backend.CreateTrainable(Shape(p.ne)));
  p.weight = owner->get();
  for (kernels::DeviceBuffer* b : {&p.grad, &p.m, &p.v}) {
    PK_ASSIGN_OR_RETURN(kernels::Buffer buf, backend.Allocate(p.size * sizeof(float)));
    *b = kernels::DeviceBuffer(&backend, buf);
    backend.Fill(b->ref(), p.size, 0.0f);
  }
  return p;
}

Status ModelParams::AddParam(std::string name, std::vector<uint64_t> ne, bool decay,
                             std::unique_ptr<Weight>* owner) {
  PK_ASSIGN_OR_RETURN(Param p,
                      Param::Create(*backend_, std::move(name), std::move(ne), decay, owner));
  param_index_[p.weight] = params_.size();
  params_.push_back(std::move(p));
  return Status::Ok();
}

Status ModelParams::CreateTrainable() {
  const model::LlamaConfig& c = config_;
  const uint64_t d = static_cast<uint64_t>(c.d_model), ff = static_cast<uint64_t>(c.d_ff);
  const uint64_t q = static_cast<uint64_t>(c.q_dim()), kv = static_cast<uint64_t>(c.kv_dim());
  const uint64_t vocab = static_cast<uint64_t>(c.vocab_size);
  // The tied table is the output Linear's weight, which GetRows reads as well.
  PK_RETURN_IF_ERROR(AddParam(names::kTokenEmbd, {d, vocab}, true,
                              c.tied_output ? &head_.output.weight : &embedding_));
  layers_.resize(static_cast<size_t>(c.num_layers));
  for (int l = 0; l < c.num_layers; ++l) {
    model::LayerParams& p = layers_[static_cast<size_t>(l)];
    auto blk = [l](const char* t) { return names::LayerTensor(l, t); };
    PK_RETURN_IF_ERROR(AddParam(blk(names::kAttnNorm), {d}, false, &p.attn_norm));
    PK_RETURN_IF_ERROR(AddParam(blk(names::kAttnQ), {d, q}, true, &p.wq.weight));
    PK_RETURN_IF_ERROR(AddParam(blk(names::kAttnK), {d, kv}, true, &p.wk.weight));
    PK_RETURN_IF_ERROR(AddParam(blk(names::kAttnV), {d, kv}, true, &p.wv.weight));
    if (c.qkv_bias) {
      PK_RETURN_IF_ERROR(AddParam(blk(names::kAttnQBias), {q}, false, &p.wq.bias));
      PK_RETURN_IF_ERROR(AddParam(blk(names::kAttnKBias), {kv}, false, &p.wk.bias));
      PK_RETURN_IF_ERROR(AddParam(blk(names::kAttnVBias), {kv}, false, &p.wv.bias));
    }
    PK_RETURN_IF_ERROR(AddParam(blk(names::kAttnOutput), {q, d}, true, &p.wo.weight));
    PK_RETURN_IF_ERROR(AddParam(blk(names::kFfnNorm), {d}, false, &p.ffn_norm));
    PK_RETURN_IF_ERROR(AddParam(blk(names::kFfnGate), {d, ff}, true, &p.gate.weight));
    PK_RETURN_IF_ERROR(AddParam(blk(names::kFfnDown), {ff, d}, true, &p.down.weight));
    PK_RETURN_IF_ERROR(AddParam(blk(names::kFfnUp), {d, ff}, true, &p.up.weight));
  }
  PK_RETURN_IF_ERROR(AddParam(names::kOutputNorm, {d}, false, &head_.output_norm));
  if (!c.tied_output) {
    PK_RETURN_IF_ERROR(AddParam(names::kOutput, {d, vocab}, true, &head_.output.weight));
  }
  return Status::Ok();
}

Result<std::unique_ptr<ModelParams>> ModelParams::Init(std::shared_ptr<kernels::Backend> backend,
                                                       const model::LlamaConfig& config,
                                                       const InitOptions& init) {
  PK_RETURN_IF_ERROR(config.Validate());
  if (config.arch != "llama" && config.arch != "qwen2") {
    return Status::InvalidArgument("train: architecture '" + config.arch +
                                   "' (llama or qwen2 expected)");
  }
  if (!(init.std > 0.0f && init.std <= 10.0f)) {
    return Status::InvalidArgument("train: init std must be in (0, 10]");
  }
  std::unique_ptr<ModelParams> m(new ModelParams(std::move(backend)));
  m->config_ = config;
  m->rope_ = model::RopeConfigOf(config, tensor::TensorView{});
  PK_RETURN_IF_ERROR(m->CreateTrainable());
  for (const Param& p : m->params_) {
    // Norm weights start at 1 (identity), biases at 0, everything else ~N(0, std).
    std::vector<float> v;
    if (!p.decay) {
      const bool norm = p.name.find("norm") != std::string::npos;
      v.assign(p.size, norm ? 1.0f : 0.0f);
    } else {
      v = InitNormal(init.seed, p.name, p.size, init.std);
    }
    m->SetValues(p, v);
  }
  return m;
}

Result<std::unique_ptr<ModelParams>> ModelParams::FromGguf(
    std::shared_ptr<kernels::Backend> backend, const formats::GgufFile& gguf, bool trainable) {
  PK_ASSIGN_OR_RETURN(model::LlamaConfig config, model::LlamaConfig::FromGguf(gguf));
  PK_ASSIGN_OR_RETURN(model::LlamaWeights w, model::BindWeights(gguf, config));
  std::unique_ptr<ModelParams> m(new ModelParams(std::move(backend)));
  m->config_ = config;
  m->gguf_ = std::make_unique<formats::GgufFile>(gguf);
  m->rope_ = model::RopeConfigOf(config, w.rope_freqs);
  // Every tensor by GGUF name, for both paths below.
  std::unordered_map<std::string, const tensor::TensorView*> by_name;
  by_name[names::kTokenEmbd] = &w.token_embd;
  by_name[names::kOutputNorm] = &w.output_norm;
  if (!config.tied_output) by_name[names::kOutput] = &w.output;
  for (size_t l = 0; l < w.layers.size(); ++l) {
    const model::LayerWeights& lw = w.layers[l];
    const int li = static_cast<int>(l);
    by_name[names::LayerTensor(li, names::kAttnNorm)] = &lw.attn_norm;
    by_name[names::LayerTensor(li, names::kAttnQ)] = &lw.wq;
    by_name[names::LayerTensor(li, names::kAttnK)] = &lw.wk;
    by_name[names::LayerTensor(li, names::kAttnV)] = &lw.wv;
    by_name[names::LayerTensor(li, names::kAttnQBias)] = &lw.bq;
    by_name[names::LayerTensor(li, names::kAttnKBias)] = &lw.bk;
    by_name[names::LayerTensor(li, names::kAttnVBias)] = &lw.bv;
    by_name[names::LayerTensor(li, names::kAttnOutput)] = &lw.wo;
    by_name[names::LayerTensor(li, names::kFfnNorm)] = &lw.ffn_norm;
    by_name[names::LayerTensor(li, names::kFfnGate)] = &lw.w_gate;
    by_name[names::LayerTensor(li, names::kFfnDown)] = &lw.w_down;
    by_name[names::LayerTensor(li, names::kFfnUp)] = &lw.w_up;
  }
  kernels::Backend& be = *m->backend_;
  if (trainable) {
    PK_RETURN_IF_ERROR(m->CreateTrainable());
    for (const Param& p : m->params_) {
      PK_RETURN_IF_ERROR(DequantizeOnBackend(be, *by_name.at(p.name), be.TrainableData(*p.weight)));
    }
    return m;
  }
  // Frozen: prepared exactly as LlamaModel prepares them (the forward bits are inference's).
  kernels::PrepareOptions po;
  po.repack = false;
  auto matrix = [&](const tensor::TensorView& t, std::unique_ptr<Weight>* out) -> Status {
    if (!be.MatMulSupports(t.dtype)) {
      return Status::NotSupported("train: matmul over " + std::string(tensor::DTypeName(t.dtype)) +
                                  " weights");
    }
    PK_ASSIGN_OR_RETURN(*out, be.PrepareMatrix(t, po));
    return Status::Ok();
  };
  auto other = [&](const tensor::TensorView& t, std::unique_ptr<Weight>* out) -> Status {
    if (t.data == nullptr) return Status::Ok();
    PK_ASSIGN_OR_RETURN(*out, be.PrepareTensor(t));
    return Status::Ok();
  };
  m->layers_.resize(w.layers.size());
  for (size_t l = 0; l < w.layers.size(); ++l) {
    const model::LayerWeights& lw = w.layers[l];
    model::LayerParams& p = m->layers_[l];
    PK_RETURN_IF_ERROR(other(lw.attn_norm, &p.attn_norm));
    PK_RETURN_IF_ERROR(other(lw.ffn_norm, &p.ffn_norm));
    PK_RETURN_IF_ERROR(matrix(lw.wq, &p.wq.weight));
    PK_RETURN_IF_ERROR(matrix(lw.wk, &p.wk.weight));
    PK_RETURN_IF_ERROR(matrix(lw.wv, &p.wv.weight));
    PK_RETURN_IF_ERROR(other(lw.bq, &p.wq.bias));
    PK_RETURN_IF_ERROR(other(lw.bk, &p.wk.bias));
    PK_RETURN_IF_ERROR(other(lw.bv, &p.wv.bias));
    PK_RETURN_IF_ERROR(matrix(lw.wo, &p.wo.weight));
    PK_RETURN_IF_ERROR(matrix(lw.w_gate, &p.gate.weight));
    PK_RETURN_IF_ERROR(matrix(lw.w_up, &p.up.weight));
    PK_RETURN_IF_ERROR(matrix(lw.w_down, &p.down.weight));
  }
  PK_RETURN_IF_ERROR(other(w.token_embd, &m->embedding_));
  PK_RETURN_IF_ERROR(other(w.output_norm, &m->head_.output_norm));
  PK_RETURN_IF_ERROR(matrix(w.output, &m->head_.output.weight));
  return m;
}

const Weight& ModelParams::embedding() const {
  return embedding_ != nullptr ? *embedding_ : *head_.output.weight;
}

const kernels::DeviceBuffer* ModelParams::GradOf(const Weight* w) const {
  auto it = param_index_.find(w);
  return it == param_index_.end() ? nullptr : &params_[it->second].grad;
}

std::vector<float> ModelParams::Values(const Param& p) const {
  std::vector<float> v(p.size);
  backend_->Download(backend_->TrainableData(*p.weight), v.data(), p.size * sizeof(float));
  return v;
}

void ModelParams::SetValues(const Param& p, const std::vector<float>& values) {
  PK_CHECK(values.size() == p.size);
  backend_->Upload(backend_->TrainableData(*p.weight), values.data(), p.size * sizeof(float));
}

Result<formats::GgufWriter> ModelParams::ToGguf(const std::string& name,
                                                const formats::GgufVocab* vocab,
                                                tensor::DType weight_type) const {
  PK_CHECK(!params_.empty());
  const model::LlamaConfig& c = config_;
  formats::GgufWriter w;
  formats::LlamaHparams h;
  h.arch = c.arch;
  h.d_model = c.d_model;
  h.num_layers = c.num_layers;
  h.num_heads = c.num_heads;
  h.num_kv_heads = c.num_kv_heads;
  h.d_ff = c.d_ff;
  h.vocab_size = c.vocab_size;
  h.head_dim = c.head_dim;
  h.context_length = c.context_length;
  h.rms_norm_eps = c.rms_eps;
  h.rope_freq_base = c.rope_freq_base;
  formats::AddLlamaMetadata(h, name, weight_type, &w);
  if (vocab != nullptr) formats::AddVocab(*vocab, &w);
  for (const Param& p : params_) {
    const bool matrix = p.ne.size() == 2;
    const tensor::DType dtype = formats::StorageType(weight_type, p.ne[0], matrix);
    const std::vector<float> v = Values(p);
    PK_RETURN_IF_ERROR(w.AddTensor(p.name, p.ne, dtype,
                                   formats::EncodeTensor(v.data(), v.size(), p.ne[0], dtype)));
  }
  return w;
}

}  // namespace pocket::train
