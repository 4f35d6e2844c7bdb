#include "formats/random_model.h"

#include <cmath>
#include <cstring>

#include "formats/gguf_names.h"
#include "tensor/quant.h"

namespace pocket::formats {

using tensor::DType;

namespace {

// SplitMix64 (Steele, Lea, Flood 2014): tiny, fast, and its output is defined by integer
// arithmetic alone, so streams are identical everywhere.
struct SplitMix64 {
  uint64_t state;
  uint64_t Next() {
    uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
};

uint64_t Fnv1a(std::string_view s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ull;
  return h;
}

// ~N(0, stddev): the sum of four 16-bit uniforms (Irwin–Hall, variance 4/12), centred and
// scaled to unit variance. Exact integer sum, then two float multiplications: portable
// bits, one generator call per weight, tails bounded at ±3.46σ (harmless for random weights).
std::vector<float> RandomNormal(size_t n, float stddev, uint64_t seed, std::string_view name) {
  SplitMix64 rng{seed * 0x9E3779B97F4A7C15ull ^ Fnv1a(name)};
  const float scale = 1.7320508f * stddev / 65536.0f;
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) {
    const uint64_t r = rng.Next();
    const int32_t sum = static_cast<int32_t>((r & 0xffff) + ((r >> 16) & 0xffff) +
                                             ((r >> 32) & 0xffff) + (r >> 48)) -
                        2 * 65535;
    v[i] = static_cast<float>(sum) * scale;
  }
  return v;
}

void AppendUtf8(uint32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

constexpr const char* kChatMlTemplate =
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + "
    "message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|im_start|>assistant\n' }}{% endif %}";

constexpr const char* kLlama3Template =
    "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = "
    "'<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | "
    "trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}"
    "{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ "
    "'<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}";

}  // namespace

const std::vector<std::string>& ByteLevelAlphabet() {
  static const std::vector<std::string> kAlphabet = [] {
    std::vector<std::string> a(256);
    auto printable = [](int b) {
      return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    };
    uint32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      AppendUtf8(printable(b) ? static_cast<uint32_t>(b) : next++, &a[b]);
    }
    return a;
  }();
  return kAlphabet;
}

GgufVocab SyntheticVocab(int64_t vocab_size, ChatStyle chat) {
  PK_CHECK(vocab_size >= 512);
  GgufVocab v;
  std::vector<std::string> specials;
  if (chat == ChatStyle::kChatMl) {
    specials = {"<|endoftext|>", "<|im_start|>", "<|im_end|>"};
    v.pre = "smollm";
    v.chat_template = kChatMlTemplate;
    v.add_bos = false;
  } else {
    const int64_t n_special = vocab_size >= 4096 ? 256 : 16;
    specials = {"<|begin_of_text|>", "<|end_of_text|>", "<|reserved_special_token_0|>",
                "<|reserved_special_token_1|>", "<|finetune_right_pad_id|>",
                "<|reserved_special_token_2|>", "<|start_header_id|>", "<|end_header_id|>",
                "<|eom_id|>", "<|eot_id|>", "<|python_tag|>"};
    for (int64_t i = 3; static_cast<int64_t>(specials.size()) < n_special; ++i) {
      specials.push_back("<|reserved_special_token_" + std::to_string(i) + "|>");
    }
    v.pre = "llama-bpe";
    v.chat_template = kLlama3Template;
    v.add_bos = true;
  }
  const int64_t n_regular = vocab_size - static_cast<int64_t>(specials.size());
  auto push = [&](const std::string& t, int32_t type) {
    v.tokens.push_back(t);
    v.token_types.push_back(type);
  };
  if (chat == ChatStyle::kChatMl) {
    for (const auto& s : specials) push(s, 3);
  }
  for (const std::string& b : ByteLevelAlphabet()) push(b, 1);
  // Merged tokens, shortest first: "Ġx"; then for k = 2, 3, ...: all k-letter words, then
  // all "Ġ" + k-letter words, each made by merging its first k-1 letters with the last.
  const std::string space = ByteLevelAlphabet()[' '];
  std::vector<std::string> words = {""};  // all (k-1)-letter words
  auto regular_full = [&] {
    return static_cast<int64_t>(v.tokens.size()) -
               (chat == ChatStyle::kChatMl ? static_cast<int64_t>(specials.size()) : 0) >=
           n_regular;
  };
  for (int k = 1; !regular_full(); ++k) {
    for (int spaced = (k == 1 ? 1 : 0); spaced <= 1 && !regular_full(); ++spaced) {
      for (const std::string& w : words) {
        for (char c = 'a'; c <= 'z' && !regular_full(); ++c) {
          const std::string left = (spaced ? space : "") + w;
          if (left.empty()) continue;
          push(left + c, 1);
          v.merges.push_back(left + " " + std::string(1, c));
        }
        if (regular_full()) break;
      }
    }
    if (regular_full()) break;
    std::vector<std::string> longer;
    longer.reserve(words.size() * 26);
    for (const std::string& w : words) {
      for (char c = 'a'; c <= 'z'; ++c) longer.push_back(w + c);
    }
    words = std::move(longer);
  }
  if (chat == ChatStyle::kChatMl) {
    v.bos_id = 1;
    v.eos_id = 2;
  } else {
    const int64_t base = static_cast<int64_t>(v.tokens.size());
    for (const auto& s : specials) push(s, 3);
    v.bos_id = base;      // <|begin_of_text|>
    v.eos_id = base + 9;  // <|eot_id|>
  }
  return v;
}

std::vector<std::string> NamedShapes() {
  return {"smollm2-135m", "llama3.2-1b", "qwen2.5-0.5b", "tiny", "tiny-k", "pocket-default"};
}

Result<RandomModelSpec> NamedShape(std::string_view name) {
  RandomModelSpec s;
  s.name = std::string(name);
  if (name == "smollm2-135m") {
    s.d_model = 576, s.num_layers = 30, s.num_heads = 9, s.num_kv_heads = 3, s.d_ff = 1536;
    s.vocab_size = 49152, s.context_length = 8192, s.rope_freq_base = 100000.0f;
    s.chat = ChatStyle::kChatMl;
  } else if (name == "llama3.2-1b") {
    s.d_model = 2048, s.num_layers = 16, s.num_heads = 32, s.num_kv_heads = 8, s.d_ff = 8192;
    s.vocab_size = 128256, s.context_length = 131072, s.rope_freq_base = 500000.0f;
    s.llama3_rope_factor = 32.0f;
    s.chat = ChatStyle::kLlama3;
  } else if (name == "qwen2.5-0.5b") {
    s.arch = "qwen2";
    s.d_model = 896, s.num_layers = 24, s.num_heads = 14, s.num_kv_heads = 2, s.d_ff = 4864;
    s.vocab_size = 151936, s.context_length = 32768, s.rope_freq_base = 1000000.0f;
    s.rms_norm_eps = 1e-6f;
    s.chat = ChatStyle::kChatMl;
  } else if (name == "tiny") {
    s.d_model = 64, s.num_layers = 2, s.num_heads = 4, s.num_kv_heads = 2, s.d_ff = 128;
    s.vocab_size = 512, s.context_length = 256;
  } else if (name == "tiny-k") {
    s.d_model = 256, s.num_layers = 2, s.num_heads = 4, s.num_kv_heads = 2, s.d_ff = 512;
    s.vocab_size = 512, s.context_length = 256;
  } else if (name == "pocket-default") {
    s.d_model = 256, s.num_layers = 4, s.num_heads = 4, s.num_kv_heads = 4, s.d_ff = 768;
    s.vocab_size = 2048, s.context_length = 2048;
    s.weight_type = DType::kQ8_0;
  } else {
    std::string known;
    for (const auto& n : NamedShapes()) known += (known.empty() ? "" : ", ") + n;
    return Status::InvalidArgument("unknown shape '" + std::string(name) + "' (known: " + known + ")");
  }
  return s;
}

Status ValidateSpec(const RandomModelSpec& s) {
  auto bad = [](const std::string& m) { return Status::InvalidArgument("make-model: " + m); };
  if (s.arch != "llama" && s.arch != "qwen2") return bad("arch must be llama or qwen2");
  if (s.d_model <= 0 || s.num_layers <= 0 || s.num_heads <= 0 || s.num_kv_heads <= 0 ||
      s.d_ff <= 0 || s.context_length <= 0) {
    return bad("sizes must be positive");
  }
  if (s.d_model % s.num_heads != 0) return bad("d_model must be a multiple of heads");
  if ((s.d_model / s.num_heads) % 2 != 0) return bad("head_dim must be even (RoPE)");
  if (s.num_heads % s.num_kv_heads != 0) return bad("heads must be a multiple of kv-heads");
  if (s.vocab_size < 512 || s.vocab_size > (1 << 22)) return bad("vocab must be in [512, 4194304]");
  if (s.weight_type == DType::kQ8_K) return bad("Q8_K is not a weight type");
  if (!(s.init_std > 0.0f && s.init_std <= 10.0f)) return bad("init-std must be in (0, 10]");
  if (s.d_model > (1 << 16) || s.d_ff > (1 << 18) || s.num_layers > 1024) {
    return bad("sizes too large");
  }
  return Status::Ok();
}

Result<GgufWriter> BuildRandomModel(const RandomModelSpec& s) {
  PK_RETURN_IF_ERROR(ValidateSpec(s));
  GgufWriter w;
  LlamaHparams h;
  h.arch = s.arch;
  h.d_model = s.d_model;
  h.num_layers = s.num_layers;
  h.num_heads = s.num_heads;
  h.num_kv_heads = s.num_kv_heads;
  h.d_ff = s.d_ff;
  h.vocab_size = s.vocab_size;
  h.head_dim = s.d_model / s.num_heads;
  h.context_length = s.context_length;
  h.rms_norm_eps = s.rms_norm_eps;
  h.rope_freq_base = s.rope_freq_base;
  AddLlamaMetadata(h, s.name, s.weight_type, &w);
  w.SetUint64("pocket.random_seed", s.seed);
  AddVocab(SyntheticVocab(s.vocab_size, s.chat), &w);

  const uint64_t seed = s.seed;
  const DType wanted = s.weight_type;
  const float init_std = s.init_std;
  // ne as GGUF stores it: ne[0] = input features (row length).
  auto add = [&](const std::string& name, std::vector<uint64_t> ne, bool is_norm) -> Status {
    const bool matrix = ne.size() == 2;
    const DType dtype = StorageType(wanted, ne[0], matrix);
    uint64_t n = 1;
    for (uint64_t d : ne) n *= d;
    const uint64_t row_len = ne[0];
    return w.AddTensorLazy(name, std::move(ne), dtype, [=]() {
      std::vector<float> data =
          is_norm ? std::vector<float>(n, 1.0f) : RandomNormal(n, init_std, seed, name);
      return Result<std::string>(EncodeTensor(data.data(), data.size(), row_len, dtype));
    });
  };
  const uint64_t d = static_cast<uint64_t>(s.d_model), ff = static_cast<uint64_t>(s.d_ff);
  const uint64_t hd = d / static_cast<uint64_t>(s.num_heads);
  const uint64_t q = hd * static_cast<uint64_t>(s.num_heads);
  const uint64_t kv = hd * static_cast<uint64_t>(s.num_kv_heads);
  const uint64_t vocab = static_cast<uint64_t>(s.vocab_size);
  PK_RETURN_IF_ERROR(add(gguf_names::kTokenEmbd, {d, vocab}, false));
  if (s.llama3_rope_factor > 0) {
    const auto f = Llama3RopeFactors(static_cast<int64_t>(hd), s.rope_freq_base,
                                     s.llama3_rope_factor, 1.0, 4.0, 8192.0);
    PK_RETURN_IF_ERROR(w.AddTensor(gguf_names::kRopeFreqs, {f.size()}, DType::kF32,
                                   EncodeTensor(f.data(), f.size(), f.size(), DType::kF32)));
  }
  for (int64_t l = 0; l < s.num_layers; ++l) {
    auto blk = [l](const char* tensor_name) { return gguf_names::LayerTensor(l, tensor_name); };
    PK_RETURN_IF_ERROR(add(blk(gguf_names::kAttnNorm), {d}, true));
    PK_RETURN_IF_ERROR(add(blk(gguf_names::kAttnQ), {d, q}, false));
    PK_RETURN_IF_ERROR(add(blk(gguf_names::kAttnK), {d, kv}, false));
    PK_RETURN_IF_ERROR(add(blk(gguf_names::kAttnV), {d, kv}, false));
    if (s.arch == "qwen2") {
      PK_RETURN_IF_ERROR(add(blk(gguf_names::kAttnQBias), {q}, false));
      PK_RETURN_IF_ERROR(add(blk(gguf_names::kAttnKBias), {kv}, false));
      PK_RETURN_IF_ERROR(add(blk(gguf_names::kAttnVBias), {kv}, false));
    }
    PK_RETURN_IF_ERROR(add(blk(gguf_names::kAttnOutput), {q, d}, false));
    PK_RETURN_IF_ERROR(add(blk(gguf_names::kFfnNorm), {d}, true));
    PK_RETURN_IF_ERROR(add(blk(gguf_names::kFfnGate), {d, ff}, false));
    PK_RETURN_IF_ERROR(add(blk(gguf_names::kFfnDown), {ff, d}, false));
    PK_RETURN_IF_ERROR(add(blk(gguf_names::kFfnUp), {d, ff}, false));
  }
  PK_RETURN_IF_ERROR(add(gguf_names::kOutputNorm, {d}, true));
  if (!s.tied) PK_RETURN_IF_ERROR(add(gguf_names::kOutput, {d, vocab}, false));
  return w;
}

}  // namespace pocket::formats
