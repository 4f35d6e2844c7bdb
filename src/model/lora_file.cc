// AttachLoraFile: a llama.cpp-layout GGUF LoRA adapter read and attached to a
// LlamaModel.
#include "model/lora_file.h"

#include <cstring>
#include <map>
#include <utility>
#include <vector>

#include "formats/gguf.h"
#include "model/lora.h"
#include "tensor/fp16.h"

namespace pocket::model {
namespace {

struct MatrixName {
  const char* name;
  MatrixId id;
};
constexpr MatrixName kMatrices[] = {
    {"attn_q", MatrixId::kQ},      {"attn_k", MatrixId::kK},      {"attn_v", MatrixId::kV},
    {"attn_output", MatrixId::kO}, {"ffn_gate", MatrixId::kGate}, {"ffn_up", MatrixId::kUp},
    {"ffn_down", MatrixId::kDown},
};

// The (out, in) shape of matrix `id` in a layer of `c`.
std::pair<size_t, size_t> MatrixShape(const LlamaConfig& c, MatrixId id) {
  const size_t d = c.d_model, q = c.q_dim(), kv = c.kv_dim(), ff = c.d_ff;
  switch (id) {
    case MatrixId::kQ:
      return {q, d};
    case MatrixId::kK:
    case MatrixId::kV:
      return {kv, d};
    case MatrixId::kO:
      return {d, q};
    case MatrixId::kGate:
    case MatrixId::kUp:
      return {ff, d};
    case MatrixId::kDown:
      return {d, ff};
    default:
      return {0, 0};
  }
}

Result<std::vector<float>> ReadFloats(const formats::GgufFile& f, const formats::TensorInfo& t) {
  const std::span<const std::byte> bytes = f.TensorBytes(t);
  std::vector<float> out(t.num_elements());
  switch (t.dtype) {
    case tensor::DType::kF32:
      std::memcpy(out.data(), bytes.data(), out.size() * sizeof(float));
      return out;
    case tensor::DType::kF16:
      tensor::F16ToF32Row(reinterpret_cast<const tensor::f16_t*>(bytes.data()), out.data(),
                          out.size());
      return out;
    case tensor::DType::kBF16:
      tensor::BF16ToF32Row(reinterpret_cast<const tensor::bf16_t*>(bytes.data()), out.data(),
                           out.size());
      return out;
    default:
      return Status::NotSupported(t.name + " is " + std::string(tensor::DTypeName(t.dtype)) +
                                  " (adapters are read as F32, F16 or BF16)");
  }
}

Status AttachAll(LlamaModel& model, const formats::GgufFile& f, float user_scale,
                 int* num_matrices) {
  auto type = f.GetString("general.type");
  if (!type.ok() || *type != "adapter") {
    return Status::InvalidArgument("not a LoRA adapter (general.type is not \"adapter\")");
  }
  if (auto at = f.GetString("adapter.type"); !at.ok() || *at != "lora") {
    return Status::InvalidArgument("not a LoRA adapter (adapter.type is not \"lora\")");
  }
  const LlamaConfig& c = model.config();
  if (auto arch = f.GetString("general.architecture"); arch.ok() && *arch != c.arch) {
    return Status::InvalidArgument("adapter for architecture " + *arch + ", the model is " +
                                   c.arch);
  }
  const bool has_alpha = f.Has("adapter.lora.alpha");
  float alpha = 0.0f;
  if (has_alpha) {
    PK_ASSIGN_OR_RETURN(double a, f.GetFloat("adapter.lora.alpha"));
    alpha = static_cast<float>(a);
  }
  // base tensor name -> (lora_a, lora_b), in file order of the first of each
  // pair.
  std::map<std::string, std::pair<const formats::TensorInfo*, const formats::TensorInfo*>> pairs;
  std::vector<std::string> order;
  for (const formats::TensorInfo& t : f.tensors()) {
    const bool is_a = t.name.ends_with(".lora_a"), is_b = t.name.ends_with(".lora_b");
    if (!is_a && !is_b) return Status::InvalidArgument("unexpected tensor " + t.name);
    const std::string base = t.name.substr(0, t.name.size() - 7);
    auto [it, inserted] = pairs.try_emplace(base);
    if (inserted) order.push_back(base);
    (is_a ? it->second.first : it->second.second) = &t;
  }
  if (order.empty()) return Status::InvalidArgument("the adapter has no tensors");
  int count = 0;
  for (const std::string& base : order) {
    const auto [a, b] = pairs[base];
    if (a == nullptr || b == nullptr) {
      return Status::InvalidArgument(base + " has " + (a ? "lora_a" : "lora_b") + " but no " +
                                     (a ? "lora_b" : "lora_a"));
    }
    // "blk.<layer>.<matrix>.weight"
    int layer = -1;
    const MatrixName* which = nullptr;
    if (base.starts_with("blk.") && base.ends_with(".weight")) {
      const size_t dot = base.find('.', 4);
      const std::string num = base.substr(4, dot == std::string::npos ? 0 : dot - 4);
      const std::string mat =
          dot == std::string::npos ? "" : base.substr(dot + 1, base.size() - 7 - dot - 1);
      if (!num.empty() && num.size() < 7 &&
          num.find_first_not_of("0123456789") == std::string::npos) {
        layer = std::stoi(num);
      }
      for (const MatrixName& m : kMatrices) {
        if (mat == m.name) which = &m;
      }
    }
    if (layer < 0 || which == nullptr) {
      return Status::InvalidArgument(base +
                                     ": not a matrix adapters attach to (attn_q, attn_k, "
                                     "attn_v, attn_output, ffn_gate, ffn_up, ffn_down)");
    }
    if (layer >= c.num_layers) {
      return Status::InvalidArgument(base + ": the model has " + std::to_string(c.num_layers) +
                                     " layers");
    }
    const auto [out, in] = MatrixShape(c, which->id);
    if (a->ne.size() != 2 || b->ne.size() != 2 || a->ne[0] != in || b->ne[1] != out ||
        a->ne[1] != b->ne[0] || a->ne[1] == 0) {
      auto shape = [](const formats::TensorInfo* t) {
        std::string s = "[";
        for (size_t i = 0; i < t->ne.size(); ++i) s += (i ? ", " : "") + std::to_string(t->ne[i]);
        return s + "]";
      };
      return Status::InvalidArgument(base + ": lora_a " + shape(a) + " and lora_b " + shape(b) +
                                     " do not fit the model's matrix (in " + std::to_string(in) +
                                     ", out " + std::to_string(out) + ")");
    }
    const size_t rank = a->ne[1];
    PK_ASSIGN_OR_RETURN(std::vector<float> av, ReadFloats(f, *a));
    PK_ASSIGN_OR_RETURN(std::vector<float> bv, ReadFloats(f, *b));
    const float scale = has_alpha ? user_scale * alpha / static_cast<float>(rank) : user_scale;
    PK_ASSIGN_OR_RETURN(auto adapter,
                        LoraAdapter::Create(model.backend(), in, out, rank, av, bv, scale,
                                            static_cast<size_t>(model.max_batch_tokens())));
    PK_RETURN_IF_ERROR(model.AttachAdapter(layer, which->id, std::move(adapter)));
    ++count;
  }
  if (num_matrices != nullptr) *num_matrices = count;
  return Status::Ok();
}

}  // namespace

Status AttachLoraFile(LlamaModel& model, const std::string& path, float user_scale,
                      int* num_matrices) {
  PK_ASSIGN_OR_RETURN(formats::GgufFile f, formats::GgufFile::Open(path));
  return AttachLoraGguf(model, f, user_scale, num_matrices);
}

Status AttachLoraGguf(LlamaModel& model, const formats::GgufFile& adapter, float user_scale,
                      int* num_matrices) {
  return AttachAll(model, adapter, user_scale, num_matrices)
      .WithContext("LoRA adapter " + adapter.path());
}

}  // namespace pocket::model
