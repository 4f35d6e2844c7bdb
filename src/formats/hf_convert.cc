#include "formats/hf_convert.h"

#include <cmath>
#include <filesystem>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>

#include "base/file.h"
#include "formats/gguf_names.h"
#include "formats/safetensors.h"
#include "tensor/quant.h"

namespace pocket::formats {

using nlohmann::json;
using tensor::DType;

namespace {

Result<json> ReadJson(const std::string& path) {
  PK_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Status::Corruption(path + ": not valid JSON");
  return j;
}

bool Exists(const std::string& path) {
  std::error_code ec;
  return std::filesystem::exists(path, ec);
}

// A token given as "<s>" or {"content": "<s>", ...} in tokenizer_config.json.
std::string TokenText(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content") && v["content"].is_string()) {
    return v["content"].get<std::string>();
  }
  return "";
}

std::string DetectPre(const json& tok) {
  if (!tok.contains("pre_tokenizer") || !tok["pre_tokenizer"].is_object()) return "default";
  const json& pre = tok["pre_tokenizer"];
  // Regexes of the pre-tokenizers llama.cpp knows (llama-vocab.cpp), from the
  // tokenizer.json files of Llama 3 and Qwen2.
  static const std::map<std::string, std::string> kByRegex = {
      {"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "
       "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
       "llama-bpe"},
      {"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| "
       "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
       "qwen2"},
  };
  std::vector<json> parts;
  if (pre.value("type", "") == "Sequence" && pre.contains("pretokenizers") &&
      pre["pretokenizers"].is_array()) {
    for (const auto& p : pre["pretokenizers"]) parts.push_back(p);
  } else {
    parts.push_back(pre);
  }
  bool digits = false, byte_level = false;
  for (const json& p : parts) {
    if (!p.is_object()) continue;
    const std::string type = p.value("type", "");
    if (type == "Split" && p.contains("pattern") && p["pattern"].is_object() &&
        p["pattern"].contains("Regex") && p["pattern"]["Regex"].is_string()) {
      auto it = kByRegex.find(p["pattern"]["Regex"].get<std::string>());
      if (it != kByRegex.end()) return it->second;
    }
    if (type == "Digits" && p.value("individual_digits", false)) digits = true;
    if (type == "ByteLevel" && p.value("use_regex", true)) byte_level = true;
  }
  if (digits && byte_level && parts.size() == 2) return "smollm";
  if (byte_level && parts.size() == 1) return "gpt-2";
  return "default";
}

}  // namespace

void AddVocab(const GgufVocab& v, GgufWriter* w) {
  w->SetString("tokenizer.ggml.model", v.model);
  if (!v.pre.empty()) w->SetString("tokenizer.ggml.pre", v.pre);
  w->SetStringArray("tokenizer.ggml.tokens", v.tokens);
  w->SetInt32Array("tokenizer.ggml.token_type", v.token_types);
  if (!v.merges.empty()) w->SetStringArray("tokenizer.ggml.merges", v.merges);
  if (v.bos_id >= 0) w->SetUint32("tokenizer.ggml.bos_token_id", static_cast<uint32_t>(v.bos_id));
  if (v.eos_id >= 0) w->SetUint32("tokenizer.ggml.eos_token_id", static_cast<uint32_t>(v.eos_id));
  if (v.unk_id >= 0) w->SetUint32("tokenizer.ggml.unknown_token_id", static_cast<uint32_t>(v.unk_id));
  if (v.pad_id >= 0) w->SetUint32("tokenizer.ggml.padding_token_id", static_cast<uint32_t>(v.pad_id));
  if (v.add_bos) w->SetBool("tokenizer.ggml.add_bos_token", *v.add_bos);
  if (v.add_eos) w->SetBool("tokenizer.ggml.add_eos_token", *v.add_eos);
  if (!v.chat_template.empty()) w->SetString("tokenizer.chat_template", v.chat_template);
}

Result<GgufVocab> ReadHfTokenizer(const std::string& dir, uint64_t vocab_size) {
  const std::string path = dir + "/tokenizer.json";
  if (!Exists(path)) return Status::NotFound(path + " not found");
  PK_ASSIGN_OR_RETURN(json tok, ReadJson(path));
  GgufVocab v;
  try {
    const json& model = tok.at("model");
    if (model.value("type", "") != "BPE") {
      return Status::NotSupported(path + ": tokenizer model '" + model.value("type", "?") +
                                  "' (only byte-level BPE is supported)");
    }
    std::map<int64_t, std::string> by_id;
    for (auto it = model.at("vocab").begin(); it != model.at("vocab").end(); ++it) {
      by_id[it.value().get<int64_t>()] = it.key();
    }
    std::map<int64_t, int32_t> types;
    std::map<std::string, int64_t> id_of;
    if (tok.contains("added_tokens") && tok["added_tokens"].is_array()) {
      for (const json& a : tok["added_tokens"]) {
        const int64_t id = a.at("id").get<int64_t>();
        by_id[id] = a.at("content").get<std::string>();
        types[id] = a.value("special", false) ? 3 : 4;
      }
    }
    int64_t max_id = by_id.empty() ? -1 : by_id.rbegin()->first;
    const uint64_t n = std::max<uint64_t>(vocab_size, static_cast<uint64_t>(max_id + 1));
    if (by_id.begin() != by_id.end() && by_id.begin()->first < 0) {
      return Status::Corruption(path + ": negative token id");
    }
    if (n > (uint64_t{1} << 24)) return Status::Corruption(path + ": vocabulary too large");
    for (uint64_t i = 0; i < n; ++i) {
      auto it = by_id.find(static_cast<int64_t>(i));
      if (it == by_id.end()) {
        v.tokens.push_back("[PAD" + std::to_string(i) + "]");
        v.token_types.push_back(5);
      } else {
        v.tokens.push_back(it->second);
        auto t = types.find(static_cast<int64_t>(i));
        v.token_types.push_back(t == types.end() ? 1 : t->second);
        id_of.emplace(it->second, static_cast<int64_t>(i));
      }
    }
    if (model.contains("merges")) {
      for (const json& m : model["merges"]) {
        if (m.is_string()) {
          v.merges.push_back(m.get<std::string>());
        } else if (m.is_array() && m.size() == 2) {  // newer tokenizers: ["a", "b"]
          v.merges.push_back(m[0].get<std::string>() + " " + m[1].get<std::string>());
        }
      }
    }
    v.pre = DetectPre(tok);
    auto lookup = [&](const std::string& text) -> int64_t {
      auto it = id_of.find(text);
      return it == id_of.end() ? -1 : it->second;
    };
    const std::string tc_path = dir + "/tokenizer_config.json";
    if (Exists(tc_path)) {
      PK_ASSIGN_OR_RETURN(json tc, ReadJson(tc_path));
      if (tc.contains("bos_token")) v.bos_id = lookup(TokenText(tc["bos_token"]));
      if (tc.contains("eos_token")) v.eos_id = lookup(TokenText(tc["eos_token"]));
      if (tc.contains("unk_token")) v.unk_id = lookup(TokenText(tc["unk_token"]));
      if (tc.contains("pad_token")) v.pad_id = lookup(TokenText(tc["pad_token"]));
      if (tc.contains("add_bos_token") && tc["add_bos_token"].is_boolean()) {
        v.add_bos = tc["add_bos_token"].get<bool>();
      }
      if (tc.contains("add_eos_token") && tc["add_eos_token"].is_boolean()) {
        v.add_eos = tc["add_eos_token"].get<bool>();
      }
      if (tc.contains("chat_template")) {
        const json& ct = tc["chat_template"];
        if (ct.is_string()) {
          v.chat_template = ct.get<std::string>();
        } else if (ct.is_array()) {
          for (const json& t : ct) {
            if (t.value("name", "") == "default" && t.contains("template")) {
              v.chat_template = t["template"].get<std::string>();
            }
          }
        }
      }
    }
    const std::string cfg_path = dir + "/config.json";
    if (Exists(cfg_path)) {
      PK_ASSIGN_OR_RETURN(json cfg, ReadJson(cfg_path));
      if (v.bos_id < 0 && cfg.contains("bos_token_id") && cfg["bos_token_id"].is_number_integer()) {
        v.bos_id = cfg["bos_token_id"].get<int64_t>();
      }
      if (v.eos_id < 0 && cfg.contains("eos_token_id") && cfg["eos_token_id"].is_number_integer()) {
        v.eos_id = cfg["eos_token_id"].get<int64_t>();
      }
    }
  } catch (const std::exception& e) {
    return Status::Corruption(path + ": unexpected structure: " + e.what());
  }
  return v;
}

std::vector<float> PermuteForRope(const std::vector<float>& w, int64_t n_rows, int64_t n_cols,
                                  int64_t n_head) {
  PK_CHECK(n_head > 0 && n_rows % (2 * n_head) == 0);
  const int64_t head_dim = n_rows / n_head, half = head_dim / 2;
  std::vector<float> out(w.size());
  for (int64_t h = 0; h < n_head; ++h) {
    for (int64_t i = 0; i < half; ++i) {
      for (int64_t j = 0; j < 2; ++j) {
        const int64_t dst = h * head_dim + 2 * i + j, src = h * head_dim + j * half + i;
        std::copy_n(w.begin() + src * n_cols, n_cols, out.begin() + dst * n_cols);
      }
    }
  }
  return out;
}

DType StorageType(DType wanted, uint64_t row_len, bool is_matrix) {
  if (!is_matrix) return DType::kF32;
  DType t = wanted;
  if (tensor::BlockElements(t) == 256 && row_len % 256 != 0) {
    t = t == DType::kQ4_K ? DType::kQ4_0 : DType::kQ8_0;
  }
  if (tensor::BlockElements(t) == 32 && row_len % 32 != 0) t = DType::kF16;
  return t;
}

uint32_t LlamaFileType(DType t) {
  switch (t) {
    case DType::kF32: return 0;
    case DType::kF16: return 1;
    case DType::kQ4_0: return 2;
    case DType::kQ8_0: return 7;
    case DType::kQ4_K: return 14;  // LLAMA_FTYPE_MOSTLY_Q4_K_S (all Q4_K)
    case DType::kQ6_K: return 18;
    case DType::kBF16: return 32;
    case DType::kQ8_K: return 0;
    // llama_ftype's "mostly" values for files of one type (the _S variant where there are
    // several).
    case DType::kQ4_1: return 3;
    case DType::kQ5_0: return 8;
    case DType::kQ5_1: return 9;
    case DType::kQ2_K: return 10;
    case DType::kQ3_K: return 11;
    case DType::kQ5_K: return 16;
    case DType::kIQ2_XXS: return 19;
    case DType::kIQ2_XS: return 20;
    case DType::kIQ3_XXS: return 23;
    case DType::kIQ1_S: return 24;
    case DType::kIQ4_NL: return 25;
    case DType::kIQ3_S: return 26;
    case DType::kIQ2_S: return 28;
    case DType::kIQ4_XS: return 30;
    case DType::kIQ1_M: return 31;
  }
  return 0;
}

std::string EncodeTensor(const float* data, size_t n, uint64_t row_len, DType dtype) {
  const size_t rows = row_len ? n / row_len : 0;
  const size_t row_bytes = tensor::RowBytes(dtype, row_len);
  std::string out(rows * row_bytes, '\0');
  for (size_t r = 0; r < rows; ++r) {
    tensor::QuantizeRow(dtype, data + r * row_len, out.data() + r * row_bytes, row_len);
  }
  return out;
}

std::vector<float> Llama3RopeFactors(int64_t head_dim, double rope_theta, double factor,
                                     double low, double high, double old_ctx) {
  const double low_wavelen = old_ctx / low, high_wavelen = old_ctx / high;
  std::vector<float> factors;
  for (int64_t i = 0; i < head_dim; i += 2) {
    // The base frequency in float32, as torch computes it in the converter.
    const float freq = 1.0f / std::pow(static_cast<float>(rope_theta),
                                       static_cast<float>(i) / static_cast<float>(head_dim));
    const double wavelen = 2 * M_PI / freq;
    if (wavelen < high_wavelen) {
      factors.push_back(1.0f);
    } else if (wavelen > low_wavelen) {
      factors.push_back(static_cast<float>(factor));
    } else {
      const double smooth = (old_ctx / wavelen - low) / (high - low);
      factors.push_back(static_cast<float>(1 / ((1 - smooth) / factor + smooth)));
    }
  }
  return factors;
}

void AddLlamaMetadata(const LlamaHparams& h, const std::string& name, DType weight_type,
                      GgufWriter* w) {
  const std::string& a = h.arch;
  auto key = [&a](const char* key_name) { return gguf_names::ArchKey(a, key_name); };
  w->SetString(gguf_names::kGeneralArchitecture, a);
  w->SetString(gguf_names::kGeneralType, "model");
  w->SetString(gguf_names::kGeneralName, name);
  w->SetUint32(key(gguf_names::kBlockCount), static_cast<uint32_t>(h.num_layers));
  w->SetUint32(key(gguf_names::kContextLength), static_cast<uint32_t>(h.context_length));
  w->SetUint32(key(gguf_names::kEmbeddingLength), static_cast<uint32_t>(h.d_model));
  w->SetUint32(key(gguf_names::kFeedForwardLength), static_cast<uint32_t>(h.d_ff));
  w->SetUint32(key(gguf_names::kHeadCount), static_cast<uint32_t>(h.num_heads));
  w->SetUint32(key(gguf_names::kHeadCountKv), static_cast<uint32_t>(h.num_kv_heads));
  w->SetFloat32(key(gguf_names::kRopeFreqBase), static_cast<float>(h.rope_freq_base));
  w->SetFloat32(key(gguf_names::kLayerNormRmsEpsilon), static_cast<float>(h.rms_norm_eps));
  if (h.head_dim != h.d_model / h.num_heads) {
    w->SetUint32(key(gguf_names::kKeyLength), static_cast<uint32_t>(h.head_dim));
    w->SetUint32(key(gguf_names::kValueLength), static_cast<uint32_t>(h.head_dim));
  }
  w->SetUint32(key(gguf_names::kRopeDimensionCount), static_cast<uint32_t>(h.head_dim));
  w->SetUint32(key(gguf_names::kVocabSize), static_cast<uint32_t>(h.vocab_size));
  w->SetUint32(gguf_names::kGeneralFileType, LlamaFileType(weight_type));
  if (tensor::BlockElements(weight_type) > 1)
    w->SetUint32(gguf_names::kGeneralQuantizationVersion, 2);
}

namespace {

struct HfConfig {
  std::string arch;  // "llama" or "qwen2"
  int64_t d_model = 0, num_layers = 0, num_heads = 0, num_kv_heads = 0, d_ff = 0, vocab = 0;
  int64_t head_dim = 0, context = 2048;
  double rms_eps = 1e-6, rope_theta = 10000.0;
  bool tied = false;
  json rope_scaling;
  std::string name_or_path;
};

Result<HfConfig> ReadConfig(const std::string& dir) {
  const std::string path = dir + "/config.json";
  PK_ASSIGN_OR_RETURN(json j, ReadJson(path));
  HfConfig c;
  try {
    std::string architecture;
    if (j.contains("architectures") && j["architectures"].is_array() && !j["architectures"].empty()) {
      architecture = j["architectures"][0].get<std::string>();
    }
    if (architecture == "LlamaForCausalLM" || architecture == "MistralForCausalLM") {
      c.arch = "llama";
    } else if (architecture == "Qwen2ForCausalLM") {
      c.arch = "qwen2";
    } else {
      return Status::NotSupported(path + ": architecture '" + architecture +
                                  "' (supported: LlamaForCausalLM, Qwen2ForCausalLM)");
    }
    c.d_model = j.at("hidden_size").get<int64_t>();
    c.num_layers = j.at("num_hidden_layers").get<int64_t>();
    c.num_heads = j.at("num_attention_heads").get<int64_t>();
    c.num_kv_heads = j.value("num_key_value_heads", c.num_heads);
    c.d_ff = j.at("intermediate_size").get<int64_t>();
    c.vocab = j.at("vocab_size").get<int64_t>();
    c.rms_eps = j.value("rms_norm_eps", 1e-6);
    // transformers 5 writes `rope_parameters` {rope_theta, rope_type, scaling fields}
    // instead of transformers 4's `rope_theta` + `rope_scaling`; read either.
    const json rp = j.contains("rope_parameters") && j["rope_parameters"].is_object()
                        ? j["rope_parameters"]
                        : json::object();
    if (j.contains("rope_theta") && j["rope_theta"].is_number()) {
      c.rope_theta = j["rope_theta"].get<double>();
    } else if (rp.contains("rope_theta") && rp["rope_theta"].is_number()) {
      c.rope_theta = rp["rope_theta"].get<double>();
    }
    c.context = j.value("max_position_embeddings", int64_t{2048});
    c.tied = j.value("tie_word_embeddings", false);
    c.head_dim = j.contains("head_dim") && j["head_dim"].is_number_integer()
                     ? j["head_dim"].get<int64_t>()
                     : (c.num_heads > 0 ? c.d_model / c.num_heads : 0);
    if (j.contains("rope_scaling") && j["rope_scaling"].is_object()) {
      c.rope_scaling = j["rope_scaling"];
    } else if (rp.value("rope_type", "default") != "default") {
      c.rope_scaling = rp;
      c.rope_scaling.erase("rope_theta");
    }
    c.name_or_path = j.value("_name_or_path", "");
  } catch (const std::exception& e) {
    return Status::Corruption(path + ": " + e.what());
  }
  auto bad = [&](const std::string& what) { return Status::Corruption(path + ": " + what); };
  if (c.d_model <= 0 || c.num_layers <= 0 || c.num_heads <= 0 || c.num_kv_heads <= 0 ||
      c.d_ff <= 0 || c.vocab <= 0 || c.head_dim <= 0) {
    return bad("sizes must be positive");
  }
  if (c.num_heads % c.num_kv_heads != 0) return bad("num_attention_heads % num_key_value_heads != 0");
  if (c.head_dim % 2 != 0) return bad("head_dim must be even for RoPE");
  return c;
}

struct Source {
  std::shared_ptr<SafetensorsFile> file;
  const SafetensorsTensor* tensor;
};

}  // namespace

Result<GgufWriter> BuildGgufFromHf(const std::string& dir, const ConvertOptions& options,
                                   ConvertReport* report) {
  PK_ASSIGN_OR_RETURN(HfConfig c, ReadConfig(dir));
  ConvertReport local;
  ConvertReport& rep = report ? *report : local;
  rep = ConvertReport{};
  rep.arch = c.arch;

  // Open the checkpoint: one file, or shards listed by the index.
  std::map<std::string, Source> sources;
  std::vector<std::string> files;
  if (Exists(dir + "/model.safetensors")) {
    files.push_back(dir + "/model.safetensors");
  } else if (Exists(dir + "/model.safetensors.index.json")) {
    PK_ASSIGN_OR_RETURN(json index, ReadJson(dir + "/model.safetensors.index.json"));
    std::set<std::string> shard_names;
    if (!index.contains("weight_map") || !index["weight_map"].is_object()) {
      return Status::Corruption(dir + "/model.safetensors.index.json: no weight_map");
    }
    for (const auto& [k, v] : index["weight_map"].items()) {
      if (v.is_string()) shard_names.insert(v.get<std::string>());
    }
    for (const auto& s : shard_names) files.push_back(dir + "/" + s);
  } else {
    return Status::NotFound(dir + ": neither model.safetensors nor model.safetensors.index.json");
  }
  for (const std::string& f : files) {
    PK_ASSIGN_OR_RETURN(SafetensorsFile st, SafetensorsFile::Open(f));
    auto shared = std::make_shared<SafetensorsFile>(std::move(st));
    for (const auto& t : shared->tensors()) {
      if (!sources.emplace(t.name, Source{shared, &t}).second) {
        return Status::Corruption(f + ": tensor '" + t.name + "' appears in two shards");
      }
    }
  }

  GgufWriter w;
  const std::string a = c.arch;
  auto key = [&a](const char* key_name) { return gguf_names::ArchKey(a, key_name); };
  std::string name = options.name;
  if (name.empty()) name = std::filesystem::path(dir).lexically_normal().filename().string();
  if (name.empty() || name == ".") name = std::filesystem::path(dir).parent_path().filename().string();
  LlamaHparams h;
  h.arch = a;
  h.d_model = c.d_model;
  h.num_layers = c.num_layers;
  h.num_heads = c.num_heads;
  h.num_kv_heads = c.num_kv_heads;
  h.d_ff = c.d_ff;
  h.vocab_size = c.vocab;
  h.head_dim = c.head_dim;
  h.context_length = c.context;
  h.rms_norm_eps = c.rms_eps;
  h.rope_freq_base = c.rope_theta;
  AddLlamaMetadata(h, name, options.weight_type, &w);

  std::vector<float> rope_factors;
  if (c.rope_scaling.is_object()) {
    const std::string type = c.rope_scaling.value("rope_type", c.rope_scaling.value("type", ""));
    if (type == "llama3") {
      const json& rs = c.rope_scaling;
      rope_factors = Llama3RopeFactors(c.head_dim, c.rope_theta, rs.value("factor", 8.0),
                                       rs.value("low_freq_factor", 1.0),
                                       rs.value("high_freq_factor", 4.0),
                                       rs.value("original_max_position_embeddings", 8192.0));
    } else if (type == "linear" || type == "yarn") {
      w.SetString(key(gguf_names::kRopeScalingType), type);
      w.SetFloat32(key(gguf_names::kRopeScalingFactor), c.rope_scaling.value("factor", 1.0f));
      if (type == "yarn") {
        w.SetUint32(key(gguf_names::kRopeScalingOriginalContextLength),
                    c.rope_scaling.value("original_max_position_embeddings", uint32_t{0}));
      }
    } else if (!type.empty() && type != "default") {
      return Status::NotSupported(dir + "/config.json: rope_scaling type '" + type + "'");
    }
  }

  if (auto vocab = ReadHfTokenizer(dir, static_cast<uint64_t>(c.vocab)); vocab.ok()) {
    AddVocab(*vocab, &w);
    rep.has_tokenizer = true;
  } else if (vocab.status().code() != StatusCode::kNotFound) {
    return vocab.status();
  }

  std::set<std::string> used;
  // Adds GGUF tensor `gguf_name` from HF tensor `hf_name` with PyTorch shape `shape`.
  // permute_heads > 0 applies the RoPE row permutation with that many heads.
  auto add = [&](const std::string& hf_name, const std::string& gguf_name,
                 std::vector<uint64_t> shape, int64_t permute_heads, bool required) -> Status {
    auto it = sources.find(hf_name);
    if (it == sources.end()) {
      if (!required) return Status::Ok();
      return Status::Corruption(dir + ": checkpoint has no tensor '" + hf_name + "'");
    }
    used.insert(hf_name);
    const Source src = it->second;
    if (src.tensor->shape != shape) {
      std::string got, want;
      for (auto d : src.tensor->shape) got += std::to_string(d) + " ";
      for (auto d : shape) want += std::to_string(d) + " ";
      return Status::Corruption(dir + ": tensor '" + hf_name + "' has shape [ " + got +
                                "], config.json implies [ " + want + "]");
    }
    const bool matrix = shape.size() == 2;
    const uint64_t row_len = shape.back();
    const DType dtype = StorageType(options.weight_type, row_len, matrix);
    if (matrix && dtype != options.weight_type) ++rep.num_fallback;
    std::vector<uint64_t> ne(shape.rbegin(), shape.rend());
    rep.num_params += src.tensor->num_elements();
    ++rep.num_tensors;
    return w.AddTensorLazy(gguf_name, ne, dtype, [src, permute_heads, shape, row_len, dtype]() {
      std::vector<float> data = src.file->ReadF32(*src.tensor);
      if (permute_heads > 0) {
        const int64_t cols = shape.size() == 2 ? static_cast<int64_t>(shape[1]) : 1;
        data = PermuteForRope(data, static_cast<int64_t>(shape[0]), cols, permute_heads);
      }
      return Result<std::string>(EncodeTensor(data.data(), data.size(), row_len, dtype));
    });
  };

  const uint64_t d = static_cast<uint64_t>(c.d_model), hd = static_cast<uint64_t>(c.head_dim);
  const uint64_t q_rows = static_cast<uint64_t>(c.num_heads) * hd;
  const uint64_t kv_rows = static_cast<uint64_t>(c.num_kv_heads) * hd;
  const bool llama = c.arch == "llama";
  PK_RETURN_IF_ERROR(add("model.embed_tokens.weight", gguf_names::kTokenEmbd,
                         {static_cast<uint64_t>(c.vocab), d}, 0, true));
  if (!rope_factors.empty()) {
    ++rep.num_tensors;
    PK_RETURN_IF_ERROR(w.AddTensor(
        gguf_names::kRopeFreqs, {rope_factors.size()}, DType::kF32,
        EncodeTensor(rope_factors.data(), rope_factors.size(), rope_factors.size(), DType::kF32)));
  }
  for (int64_t l = 0; l < c.num_layers; ++l) {
    const std::string hf = "model.layers." + std::to_string(l) + ".";
    auto blk = [l](const char* tensor_name) { return gguf_names::LayerTensor(l, tensor_name); };
    PK_RETURN_IF_ERROR(
        add(hf + "input_layernorm.weight", blk(gguf_names::kAttnNorm), {d}, 0, true));
    PK_RETURN_IF_ERROR(add(hf + "self_attn.q_proj.weight", blk(gguf_names::kAttnQ), {q_rows, d},
                           llama ? c.num_heads : 0, true));
    PK_RETURN_IF_ERROR(add(hf + "self_attn.k_proj.weight", blk(gguf_names::kAttnK), {kv_rows, d},
                           llama ? c.num_kv_heads : 0, true));
    PK_RETURN_IF_ERROR(
        add(hf + "self_attn.v_proj.weight", blk(gguf_names::kAttnV), {kv_rows, d}, 0, true));
    // Biases: Qwen2 always has q/k/v biases; Llama only with attention_bias (then the q/k
    // biases are permuted like their weights).
    PK_RETURN_IF_ERROR(add(hf + "self_attn.q_proj.bias", blk(gguf_names::kAttnQBias), {q_rows},
                           llama ? c.num_heads : 0, c.arch == "qwen2"));
    PK_RETURN_IF_ERROR(add(hf + "self_attn.k_proj.bias", blk(gguf_names::kAttnKBias), {kv_rows},
                           llama ? c.num_kv_heads : 0, c.arch == "qwen2"));
    PK_RETURN_IF_ERROR(add(hf + "self_attn.v_proj.bias", blk(gguf_names::kAttnVBias), {kv_rows}, 0,
                           c.arch == "qwen2"));
    PK_RETURN_IF_ERROR(
        add(hf + "self_attn.o_proj.weight", blk(gguf_names::kAttnOutput), {d, q_rows}, 0, true));
    PK_RETURN_IF_ERROR(
        add(hf + "post_attention_layernorm.weight", blk(gguf_names::kFfnNorm), {d}, 0, true));
    const uint64_t ff = static_cast<uint64_t>(c.d_ff);
    PK_RETURN_IF_ERROR(
        add(hf + "mlp.gate_proj.weight", blk(gguf_names::kFfnGate), {ff, d}, 0, true));
    PK_RETURN_IF_ERROR(
        add(hf + "mlp.down_proj.weight", blk(gguf_names::kFfnDown), {d, ff}, 0, true));
    PK_RETURN_IF_ERROR(add(hf + "mlp.up_proj.weight", blk(gguf_names::kFfnUp), {ff, d}, 0, true));
  }
  PK_RETURN_IF_ERROR(add("model.norm.weight", gguf_names::kOutputNorm, {d}, 0, true));
  if (!c.tied) {
    PK_RETURN_IF_ERROR(
        add("lm_head.weight", gguf_names::kOutput, {static_cast<uint64_t>(c.vocab), d}, 0, false));
  } else if (sources.count("lm_head.weight")) {
    used.insert("lm_head.weight");  // saved redundantly by some checkpoints; tied: unused
  }
  for (const auto& [n, s] : sources) {
    if (used.count(n) || n.find("rotary_emb.inv_freq") != std::string::npos) continue;
    return Status::NotSupported(dir + ": checkpoint tensor '" + n + "' has no GGUF counterpart");
  }
  return w;
}

Result<ConvertReport> ConvertHfToGguf(const std::string& hf_dir, const std::string& out_path,
                                      const ConvertOptions& options) {
  ConvertReport report;
  PK_ASSIGN_OR_RETURN(GgufWriter w, BuildGgufFromHf(hf_dir, options, &report));
  PK_RETURN_IF_ERROR(w.Write(out_path));
  return report;
}

}  // namespace pocket::formats
