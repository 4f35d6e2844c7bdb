// TrainableLora: LoRA's forward as model::LoraAdapter computes it (two F32 matmuls and a
// scaled add) over trainable A and B, and its backward through Backend ops.
#include "train/lora.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <tuple>

#include "base/check.h"
#include "formats/gguf_names.h"
#include "formats/hf_convert.h"

namespace pocket::train {

Result<std::shared_ptr<TrainableLora>> TrainableLora::Create(
    std::shared_ptr<kernels::Backend> backend, const std::string& name, size_t in_features,
    size_t out_features, size_t rank, float alpha, size_t max_tokens, uint64_t seed, float a_std,
    float b_std) {
  if (backend == nullptr || in_features == 0 || out_features == 0 || rank == 0 || max_tokens == 0) {
    return Status::InvalidArgument("lora: " + name + ": sizes and rank must be positive");
  }
  std::shared_ptr<TrainableLora> l(new TrainableLora());
  l->backend_ = std::move(backend);
  l->name_ = name;
  l->in_ = in_features;
  l->out_ = out_features;
  l->rank_ = rank;
  l->max_tokens_ = max_tokens;
  l->scale_ = alpha / static_cast<float>(rank);
  kernels::Backend& be = *l->backend_;
  PK_ASSIGN_OR_RETURN(
      l->a_, Param::Create(be, name + ".lora_a", {in_features, rank}, true, &l->a_weight_));
  PK_ASSIGN_OR_RETURN(
      l->b_, Param::Create(be, name + ".lora_b", {rank, out_features}, true, &l->b_weight_));
  const std::vector<float> a = InitNormal(seed, l->a_.name, l->a_.size, a_std);
  const std::vector<float> b = b_std > 0.0f ? InitNormal(seed, l->b_.name, l->b_.size, b_std)
                                            : std::vector<float>(l->b_.size, 0.0f);
  be.Upload(be.TrainableData(*l->a_.weight), a.data(), a.size() * sizeof(float));
  be.Upload(be.TrainableData(*l->b_.weight), b.data(), b.size() * sizeof(float));
  auto make = [&](kernels::DeviceBuffer* out, size_t floats) -> Status {
    PK_ASSIGN_OR_RETURN(kernels::Buffer buf, be.Allocate(floats * sizeof(float)));
    *out = kernels::DeviceBuffer(&be, buf);
    return Status::Ok();
  };
  PK_RETURN_IF_ERROR(make(&l->ax_, max_tokens * rank));
  PK_RETURN_IF_ERROR(make(&l->bax_, max_tokens * out_features));
  PK_RETURN_IF_ERROR(make(&l->dax_, max_tokens * rank));
  return l;
}

void TrainableLora::Apply(kernels::Backend& backend, kernels::BufferRef x, size_t num_tokens,
                          kernels::BufferRef y) {
  PK_CHECK(&backend == backend_.get() && num_tokens <= max_tokens_);
  backend.MatMul(*a_weight_, x, num_tokens, ax_.ref());
  backend.MatMul(*b_weight_, ax_.ref(), num_tokens, bax_.ref());
  backend.Axpy(scale_, bax_.ref(), num_tokens * out_, y);
}

void TrainableLora::Backward(kernels::Backend& backend, kernels::BufferRef x, kernels::BufferRef dy,
                             size_t num_tokens, kernels::BufferRef dx) {
  PK_CHECK(&backend == backend_.get() && num_tokens <= max_tokens_);
  // With u = A x and y += scale * B u: dB += (scale dy)^T u, du = B^T (scale dy),
  // dA += du^T x, dx += A^T du.
  const kernels::BufferRef sdy = bax_.ref();
  backend.Fill(sdy, num_tokens * out_, 0.0f);
  backend.Axpy(scale_, dy, num_tokens * out_, sdy);
  backend.MatMulBackwardWeight(ax_.ref(), sdy, num_tokens, out_, rank_, b_.grad.ref());
  backend.Fill(dax_.ref(), num_tokens * rank_, 0.0f);
  backend.MatMulBackwardInput(*b_weight_, sdy, num_tokens, dax_.ref());
  backend.MatMulBackwardWeight(x, dax_.ref(), num_tokens, rank_, in_, a_.grad.ref());
  backend.MatMulBackwardInput(*a_weight_, dax_.ref(), num_tokens, dx);
}

Result<LoraTargets> ParseLoraTargets(std::string_view list) {
  LoraTargets t;
  const std::pair<const char*, bool*> names[] = {{"q", &t.q},      {"k", &t.k},       {"v", &t.v},
                                                 {"o", &t.o},      {"gate", &t.gate}, {"up", &t.up},
                                                 {"down", &t.down}};
  size_t start = 0;
  bool any = false;
  while (start <= list.size()) {
    const size_t comma = std::min(list.find(',', start), list.size());
    const std::string_view item = list.substr(start, comma - start);
    bool found = false;
    for (const auto& [name, flag] : names) {
      if (item != name) continue;
      if (*flag) return Status::InvalidArgument("lora targets: '" + std::string(item) + "' twice");
      *flag = found = any = true;
    }
    if (!found) {
      return Status::InvalidArgument("lora targets: unknown '" + std::string(item) +
                                     "' (q, k, v, o, gate, up, down)");
    }
    start = comma + 1;
  }
  if (!any) return Status::InvalidArgument("lora targets: none given");
  return t;
}

Result<std::vector<std::shared_ptr<TrainableLora>>> AttachLora(ModelParams* base,
                                                               const LoraOptions& o) {
  const LoraTargets& t = o.targets;
  if (o.rank == 0 || o.max_tokens == 0 || !(t.q || t.k || t.v || t.o || t.gate || t.up || t.down)) {
    return Status::InvalidArgument("lora: rank, tokens and targets must be given");
  }
  std::vector<std::shared_ptr<TrainableLora>> out;
  for (size_t l = 0; l < base->layers().size(); ++l) {
    model::LayerParams& p = base->layers()[l];
    const int li = static_cast<int>(l);
    const std::tuple<bool, model::Linear*, const char*> matrices[] = {
        {t.q, &p.wq, formats::gguf_names::kAttnQ},
        {t.k, &p.wk, formats::gguf_names::kAttnK},
        {t.v, &p.wv, formats::gguf_names::kAttnV},
        {t.o, &p.wo, formats::gguf_names::kAttnOutput},
        {t.gate, &p.gate, formats::gguf_names::kFfnGate},
        {t.up, &p.up, formats::gguf_names::kFfnUp},
        {t.down, &p.down, formats::gguf_names::kFfnDown}};
    for (const auto& [wanted, linear, tensor_name] : matrices) {
      if (!wanted) continue;
      const float a_std = 1.0f / std::sqrt(3.0f * static_cast<float>(linear->in_features()));
      PK_ASSIGN_OR_RETURN(std::shared_ptr<TrainableLora> a,
                          TrainableLora::Create(base->shared_backend(),
                                                formats::gguf_names::LayerTensor(li, tensor_name),
                                                linear->in_features(), linear->out_features(),
                                                o.rank, o.alpha, o.max_tokens, o.seed, a_std));
      linear->adapters.push_back(a);
      out.push_back(std::move(a));
    }
  }
  return out;
}

std::vector<Param*> LoraParams(std::span<const std::shared_ptr<TrainableLora>> adapters) {
  std::vector<Param*> out;
  for (const auto& a : adapters) {
    out.push_back(&a->a());
    out.push_back(&a->b());
  }
  return out;
}

namespace {

std::vector<float> Download(kernels::Backend& be, const Param& p) {
  std::vector<float> v(p.size);
  be.Download(be.TrainableData(*p.weight), v.data(), p.size * sizeof(float));
  return v;
}

}  // namespace

Result<formats::GgufWriter> LoraAdapterGguf(
    const std::string& base_arch, std::span<const std::shared_ptr<TrainableLora>> adapters) {
  if (adapters.empty()) return Status::InvalidArgument("lora: no adapter to write");
  const float alpha = adapters[0]->scale() * static_cast<float>(adapters[0]->rank());
  formats::GgufWriter w;
  w.SetString(formats::gguf_names::kGeneralArchitecture, base_arch);
  w.SetString(formats::gguf_names::kGeneralType, "adapter");
  w.SetString("adapter.type", "lora");
  w.SetFloat32("adapter.lora.alpha", alpha);
  for (const auto& a : adapters) {
    if (a->scale() * static_cast<float>(a->rank()) != alpha) {
      return Status::InvalidArgument("lora: adapter " + a->name() +
                                     " has another alpha than the first (one per file)");
    }
    for (const Param* p : {&a->a(), &a->b()}) {
      const std::vector<float> v = Download(*a->shared_backend(), *p);
      PK_RETURN_IF_ERROR(
          w.AddTensor(p->name, p->ne, tensor::DType::kF32,
                      formats::EncodeTensor(v.data(), v.size(), p->ne[0], tensor::DType::kF32)));
    }
  }
  return w;
}

Result<formats::GgufWriter> MergeLora(const formats::GgufFile& base,
                                      std::span<const std::shared_ptr<TrainableLora>> adapters) {
  std::map<std::string, const TrainableLora*, std::less<>> by_name;
  for (const auto& a : adapters) {
    const formats::TensorInfo* t = base.FindTensor(a->name());
    if (t == nullptr || t->ne.size() != 2 || t->ne[0] != a->in_features() ||
        t->ne[1] != a->out_features()) {
      return Status::InvalidArgument("lora merge: no " + std::to_string(a->out_features()) + " x " +
                                     std::to_string(a->in_features()) + " matrix '" + a->name() +
                                     "' in " + base.path());
    }
    by_name[a->name()] = a.get();
  }
  formats::GgufWriter w;
  for (const formats::GgufKeyValue& kv : base.metadata()) {
    if (kv.key == "general.alignment") continue;  // SetAlignment below keeps it valid
    w.SetValue(std::string(kv.key), kv.value);
  }
  if (base.alignment() != formats::kGgufDefaultAlignment) {
    w.SetAlignment(static_cast<uint32_t>(base.alignment()));
  }
  for (const formats::TensorInfo& t : base.tensors()) {
    auto it = by_name.find(t.name);
    if (it == by_name.end()) {
      const std::span<const std::byte> bytes = base.TensorBytes(t);
      PK_RETURN_IF_ERROR(
          w.AddTensor(t.name, t.ne, t.dtype,
                      std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size())));
      continue;
    }
    const TrainableLora& a = *it->second;
    const size_t in = a.in_features(), out = a.out_features(), rank = a.rank();
    kernels::Backend& be = *a.shared_backend();
    std::vector<float> merged(in * out);
    {
      PK_ASSIGN_OR_RETURN(kernels::Buffer buf, be.Allocate(merged.size() * sizeof(float)));
      kernels::DeviceBuffer w_f32(&be, buf);
      PK_RETURN_IF_ERROR(DequantizeOnBackend(be, base.View(t), w_f32.ref()));
      be.Download(w_f32.ref(), merged.data(), merged.size() * sizeof(float));
    }
    const std::vector<float> av = Download(*a.shared_backend(), a.a());  // [rank][in]
    const std::vector<float> bv = Download(*a.shared_backend(), a.b());  // [out][rank]
    // W[r][c] += scale * sum_k B[r][k] A[k][c], k in order, in float like the forward.
    for (size_t r = 0; r < out; ++r) {
      for (size_t c = 0; c < in; ++c) {
        float acc = 0.0f;
        for (size_t k = 0; k < rank; ++k) acc += bv[r * rank + k] * av[k * in + c];
        merged[r * in + c] += a.scale() * acc;
      }
    }
    PK_RETURN_IF_ERROR(w.AddTensor(
        t.name, t.ne, t.dtype, formats::EncodeTensor(merged.data(), merged.size(), in, t.dtype)));
  }
  return w;
}

}  // namespace pocket::train
