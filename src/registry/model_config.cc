// The config blob of a GGUF model artifact, read from the GGUF header, and the lineage
// annotations its provenance gives the manifest (see model_config.h). Names of file types
// follow llama.cpp's llama_model_ftype_name (LLAMA_FTYPE_MOSTLY_*).
#include "registry/model_config.h"

#include <cctype>
#include <map>
#include <optional>
#include <utility>

#include "formats/gguf_names.h"
#include "registry/oci.h"

namespace pocket::registry {
namespace {

namespace names = formats::gguf_names;
using nlohmann::json;

constexpr uint64_t kDefaultContextCap = 4096;  // runtime's cap for ctx 0 (ResolveContextLength)

bool HasPrefix(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

// A scalar metadata value as a string (provenance values are hashes, names and numbers).
std::optional<std::string> ScalarString(const formats::GgufValue& v) {
  using formats::GgufType;
  if (v.type == GgufType::kString) return std::string(v.str());
  if (v.type == GgufType::kBool) return v.AsBool() ? "true" : "false";
  if (v.is_float()) return std::to_string(v.AsDouble());
  if (v.type == GgufType::kU64) return std::to_string(v.AsUint());
  if (v.is_integer()) return std::to_string(v.AsInt());
  return std::nullopt;
}

}  // namespace

std::string_view FileTypeName(uint64_t file_type) {
  static const std::map<uint64_t, std::string_view> kNames = {
      {0, "F32"},      {1, "F16"},      {2, "Q4_0"},    {3, "Q4_1"},    {7, "Q8_0"},
      {8, "Q5_0"},     {9, "Q5_1"},     {10, "Q2_K"},   {11, "Q3_K_S"}, {12, "Q3_K_M"},
      {13, "Q3_K_L"},  {14, "Q4_K_S"},  {15, "Q4_K_M"}, {16, "Q5_K_S"}, {17, "Q5_K_M"},
      {18, "Q6_K"},    {19, "IQ2_XXS"}, {20, "IQ2_XS"}, {21, "Q2_K_S"}, {22, "IQ3_XS"},
      {23, "IQ3_XXS"}, {24, "IQ1_S"},   {25, "IQ4_NL"}, {26, "IQ3_S"},  {27, "IQ3_M"},
      {28, "IQ2_S"},   {29, "IQ2_M"},   {30, "IQ4_XS"}, {31, "IQ1_M"},  {32, "BF16"},
      {36, "TQ1_0"},   {37, "TQ2_0"},
  };
  auto it = kNames.find(file_type);
  return it == kNames.end() ? std::string_view() : it->second;
}

Result<json> ModelConfigFromGguf(const formats::GgufFile& gguf) {
  auto arch = gguf.GetString(names::kGeneralArchitecture);
  if (!arch.ok()) {
    return Status::InvalidArgument(gguf.path() + " has no general.architecture: not a model");
  }
  json config = {{"format", "gguf"}, {"gguf_version", gguf.version()}, {"architecture", *arch}};
  if (auto name = gguf.GetString(names::kGeneralName); name.ok()) config["name"] = *name;

  uint64_t params = 0;
  std::map<uint32_t, uint64_t> bytes_by_type;
  for (const formats::TensorInfo& t : gguf.tensors()) {
    params += t.num_elements();
    bytes_by_type[t.ggml_type] += t.size_bytes;
  }
  config["parameter_count"] = params;
  std::string quantization;
  if (auto ft = gguf.GetUint(names::kGeneralFileType); ft.ok()) {
    config["file_type"] = *ft;
    quantization = std::string(FileTypeName(*ft));
  }
  if (quantization.empty() && !bytes_by_type.empty()) {
    auto most = bytes_by_type.begin();
    for (auto it = bytes_by_type.begin(); it != bytes_by_type.end(); ++it) {
      if (it->second > most->second) most = it;
    }
    quantization = std::string(formats::GgmlTypeName(most->first));
  }
  if (!quantization.empty()) config["quantization"] = quantization;

  uint64_t context = 0;
  if (auto ctx = gguf.GetUint(names::ArchKey(*arch, names::kContextLength)); ctx.ok()) {
    context = *ctx;
    config["context_length"] = context;
  }
  if (auto tok = gguf.GetString("tokenizer.ggml.model"); tok.ok()) config["tokenizer_model"] = *tok;
  config["chat_template"] = gguf.Has("tokenizer.chat_template");

  json provenance = json::object();
  for (const formats::GgufKeyValue& kv : gguf.metadata()) {
    if (!HasPrefix(kv.key, "pocket.") && !HasPrefix(kv.key, "general.source.") &&
        !HasPrefix(kv.key, "general.base_model.")) {
      continue;
    }
    if (auto s = ScalarString(kv.value)) provenance[std::string(kv.key)] = *s;
  }
  if (!provenance.empty()) config["provenance"] = std::move(provenance);

  // KV cache: K and V, F16, per layer kv_dim = head_count_kv * key_length (key_length
  // defaults to embedding_length / head_count, as llama.cpp reads it).
  uint64_t kv_bytes = 0;
  auto layers = gguf.GetUint(names::ArchKey(*arch, names::kBlockCount));
  auto embd = gguf.GetUint(names::ArchKey(*arch, names::kEmbeddingLength));
  auto heads = gguf.GetUint(names::ArchKey(*arch, names::kHeadCount));
  if (layers.ok() && embd.ok() && heads.ok() && *heads > 0 && *layers < (1u << 16) &&
      *embd < (1u << 24) && *heads < (1u << 16)) {
    auto kv_heads = gguf.GetUint(names::ArchKey(*arch, names::kHeadCountKv));
    auto key_len = gguf.GetUint(names::ArchKey(*arch, names::kKeyLength));
    const uint64_t n_kv = kv_heads.ok() && *kv_heads < (1u << 16) ? *kv_heads : *heads;
    const uint64_t head_dim = key_len.ok() && *key_len < (1u << 16) ? *key_len : *embd / *heads;
    const uint64_t tokens =
        context == 0 || context > kDefaultContextCap ? kDefaultContextCap : context;
    kv_bytes = 2 * 2 * *layers * n_kv * head_dim * tokens;  // < 2^62: every factor is bounded
  }
  config["min_memory_bytes"] = gguf.file_size() + kv_bytes;
  return config;
}

std::map<std::string, std::string> LineageAnnotations(const json& config) {
  std::map<std::string, std::string> out;
  auto prov = config.find("provenance");
  if (prov == config.end() || !prov->is_object()) return out;
  static constexpr std::pair<const char*, const char*> kKeys[] = {
      {"pocket.parent_sha256", kLineageParentAnnotation},
      {"pocket.recipe_sha256", kLineageRecipeAnnotation},
      {"pocket.data_sha256", kLineageDataAnnotation},
  };
  for (const auto& [key, annotation] : kKeys) {
    auto it = prov->find(key);
    if (it == prov->end() || !it->is_string()) continue;
    std::string hex = it->get<std::string>();
    for (char& c : hex) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    const std::string digest = "sha256:" + hex;
    if (IsValidDigest(digest)) out[annotation] = digest;
  }
  return out;
}

}  // namespace pocket::registry
