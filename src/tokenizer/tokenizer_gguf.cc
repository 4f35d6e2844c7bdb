// Tokenizer <-> GGUF tokenizer.ggml.* keys (names and defaults as in llama.cpp's
// llama-vocab.cpp load()), and the JSON vocabulary form used by testdata/ and make-model.
#include <nlohmann/json.hpp>

#include "base/file.h"
#include "formats/gguf.h"
#include "tokenizer/tokenizer.h"

namespace pocket::tokenizer {
namespace {

constexpr std::string_view kModel = "tokenizer.ggml.model";
constexpr std::string_view kPre = "tokenizer.ggml.pre";
constexpr std::string_view kTokens = "tokenizer.ggml.tokens";
constexpr std::string_view kTokenType = "tokenizer.ggml.token_type";
constexpr std::string_view kScores = "tokenizer.ggml.scores";
constexpr std::string_view kMerges = "tokenizer.ggml.merges";
constexpr std::string_view kAddBos = "tokenizer.ggml.add_bos_token";
constexpr std::string_view kAddEos = "tokenizer.ggml.add_eos_token";
constexpr std::string_view kAddSpacePrefix = "tokenizer.ggml.add_space_prefix";

struct IdKey {
  std::string_view key;
  int32_t Vocab::*field;
};
constexpr IdKey kIdKeys[] = {
    {"tokenizer.ggml.bos_token_id", &Vocab::bos_id},
    {"tokenizer.ggml.eos_token_id", &Vocab::eos_id},
    {"tokenizer.ggml.eot_token_id", &Vocab::eot_id},
    {"tokenizer.ggml.unknown_token_id", &Vocab::unk_id},
    {"tokenizer.ggml.padding_token_id", &Vocab::pad_id},
};

}  // namespace

Result<Tokenizer> Tokenizer::FromGguf(const formats::GgufFile& gguf) {
  Vocab vocab;
  PK_ASSIGN_OR_RETURN(std::string model, gguf.GetString(kModel));
  if (model == "gpt2") {
    vocab.model = ModelKind::kGpt2;
  } else if (model == "llama") {
    vocab.model = ModelKind::kLlama;
  } else {
    return Status::NotSupported(std::string(kModel) + ": tokenizer model '" + model +
                                "' is not supported (gpt2, llama)");
  }
  if (gguf.Has(kPre)) {
    PK_ASSIGN_OR_RETURN(vocab.pre, gguf.GetString(kPre));
  }
  ApplyLlamaCppDefaults(vocab);

  PK_ASSIGN_OR_RETURN(std::vector<std::string_view> tokens, gguf.GetStringArray(kTokens));
  if (tokens.empty()) return Status::InvalidArgument(std::string(kTokens) + ": no tokens");
  vocab.tokens.assign(tokens.begin(), tokens.end());
  const size_t n = vocab.tokens.size();
  if (gguf.Has(kTokenType)) {
    PK_ASSIGN_OR_RETURN(std::vector<int64_t> types, gguf.GetIntArray(kTokenType));
    if (types.size() != n) {
      return Status::InvalidArgument(std::string(kTokenType) + ": " + std::to_string(types.size()) +
                                     " entries for " + std::to_string(n) + " tokens");
    }
    vocab.token_types.reserve(n);
    for (int64_t t : types) {
      // Unknown values count as undefined (llama.cpp maps them to LLAMA_TOKEN_ATTR_UNDEFINED).
      vocab.token_types.push_back(t >= 0 && t <= 6 ? static_cast<TokenType>(t)
                                                   : TokenType::kUndefined);
    }
  }
  if (gguf.Has(kScores)) {
    PK_ASSIGN_OR_RETURN(vocab.scores, gguf.GetFloatArray(kScores));
    if (vocab.scores.size() != n) {
      return Status::InvalidArgument(std::string(kScores) + ": " +
                                     std::to_string(vocab.scores.size()) + " entries for " +
                                     std::to_string(n) + " tokens");
    }
  }
  if (vocab.model == ModelKind::kGpt2) {
    PK_ASSIGN_OR_RETURN(std::vector<std::string_view> merges, gguf.GetStringArray(kMerges));
    vocab.merges.assign(merges.begin(), merges.end());
  }
  for (const IdKey& k : kIdKeys) {
    if (!gguf.Has(k.key)) continue;
    PK_ASSIGN_OR_RETURN(uint64_t id, gguf.GetUint(k.key));
    if (id >= n) {
      return Status::InvalidArgument(std::string(k.key) + ": id " + std::to_string(id) +
                                     " outside the vocabulary of " + std::to_string(n));
    }
    vocab.*k.field = static_cast<int32_t>(id);
  }
  if (gguf.Has(kAddBos)) {
    PK_ASSIGN_OR_RETURN(vocab.add_bos, gguf.GetBool(kAddBos));
  }
  if (gguf.Has(kAddEos)) {
    PK_ASSIGN_OR_RETURN(vocab.add_eos, gguf.GetBool(kAddEos));
  }
  if (gguf.Has(kAddSpacePrefix)) {
    PK_ASSIGN_OR_RETURN(vocab.add_space_prefix, gguf.GetBool(kAddSpacePrefix));
  }
  auto tok = FromVocab(std::move(vocab));
  if (!tok.ok()) return tok.status().WithContext("gguf " + gguf.path());
  return tok;
}

void AddVocabToGguf(const Vocab& vocab, formats::GgufWriter& writer) {
  writer.SetString(std::string(kModel), vocab.model == ModelKind::kLlama ? "llama" : "gpt2");
  writer.SetString(std::string(kPre), vocab.pre);
  writer.SetStringArray(std::string(kTokens), vocab.tokens);
  std::vector<int32_t> types;
  types.reserve(vocab.tokens.size());
  for (size_t i = 0; i < vocab.tokens.size(); ++i) {
    types.push_back(static_cast<int32_t>(i < vocab.token_types.size() ? vocab.token_types[i]
                                                                      : TokenType::kNormal));
  }
  writer.SetInt32Array(std::string(kTokenType), types);
  if (vocab.model == ModelKind::kLlama) {
    std::vector<float> scores = vocab.scores;
    scores.resize(vocab.tokens.size(), 0.0f);
    writer.SetFloat32Array(std::string(kScores), scores);
    writer.SetBool(std::string(kAddSpacePrefix), vocab.add_space_prefix);
  } else {
    writer.SetStringArray(std::string(kMerges), vocab.merges);
  }
  for (const IdKey& k : kIdKeys) {
    if (vocab.*k.field != kNoToken) {
      writer.SetUint32(std::string(k.key), static_cast<uint32_t>(vocab.*k.field));
    }
  }
  writer.SetBool(std::string(kAddBos), vocab.add_bos);
  writer.SetBool(std::string(kAddEos), vocab.add_eos);
}

Result<Vocab> VocabFromJson(std::string_view json) {
  Vocab v;
  try {
    const auto j = nlohmann::json::parse(json);
    const std::string model = j.at("model").get<std::string>();
    if (model != "gpt2" && model != "llama") {
      return Status::InvalidArgument("vocab json: model '" + model + "' (gpt2, llama)");
    }
    v.model = model == "llama" ? ModelKind::kLlama : ModelKind::kGpt2;
    v.pre = j.value("pre", std::string("default"));
    ApplyLlamaCppDefaults(v);
    v.tokens = j.at("tokens").get<std::vector<std::string>>();
    if (j.contains("token_types")) {
      for (int t : j.at("token_types").get<std::vector<int>>()) {
        v.token_types.push_back(t >= 0 && t <= 6 ? static_cast<TokenType>(t)
                                                 : TokenType::kUndefined);
      }
    }
    if (j.contains("scores")) v.scores = j.at("scores").get<std::vector<float>>();
    if (j.contains("merges")) v.merges = j.at("merges").get<std::vector<std::string>>();
    v.bos_id = j.value("bos_id", v.bos_id);
    v.eos_id = j.value("eos_id", v.eos_id);
    v.eot_id = j.value("eot_id", v.eot_id);
    v.unk_id = j.value("unk_id", v.unk_id);
    v.pad_id = j.value("pad_id", v.pad_id);
    v.add_bos = j.value("add_bos", v.add_bos);
    v.add_eos = j.value("add_eos", v.add_eos);
  } catch (const std::exception& e) {
    return Status::InvalidArgument(std::string("vocab json: ") + e.what());
  }
  return v;
}

Result<Vocab> LoadVocabJson(const std::string& path) {
  PK_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  auto v = VocabFromJson(text);
  if (!v.ok()) return v.status().WithContext(path);
  return v;
}

}  // namespace pocket::tokenizer
