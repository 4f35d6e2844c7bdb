// `pocket make-model`: a random-weight Llama/Qwen2 model as a complete GGUF file (weights,
// metadata, byte-level BPE tokenizer, chat template) that Pocket and llama.cpp both load.
// For tests, benchmarks at real shapes, and the embedded default model.
#include <cstdio>
#include <map>
#include <string>

#include "cli/command.h"
#include "formats/random_model.h"

namespace pocket::cli {
namespace {

struct MakeModelFlags {
  std::string arch;
  std::string shape;
  int64_t d_model = 0, layers = 0, heads = 0, kv_heads = 0, d_ff = 0, vocab = 0, ctx = 0;
  bool tied = false, untied = false;
  std::string type;
  std::string chat;
  double rope_base = 0;
  double init_std = 0.02;
  uint64_t seed = 0;
  std::string name;
  std::string out;
};

int MakeModelMain(const MakeModelFlags& f) {
  const std::string cmd = "make-model";
  formats::RandomModelSpec spec;
  if (!f.shape.empty()) {
    auto named = formats::NamedShape(f.shape);
    if (!named.ok()) return Fail(cmd, named.status());
    spec = *named;
  } else {
    spec.name = "pocket-random";
  }
  if (!f.arch.empty()) spec.arch = f.arch;
  if (f.d_model) spec.d_model = f.d_model;
  if (f.layers) spec.num_layers = f.layers;
  if (f.heads) spec.num_heads = f.heads;
  if (f.kv_heads) spec.num_kv_heads = f.kv_heads;
  if (f.d_ff) spec.d_ff = f.d_ff;
  if (f.vocab) spec.vocab_size = f.vocab;
  if (f.ctx) spec.context_length = f.ctx;
  if (f.rope_base > 0) spec.rope_freq_base = static_cast<float>(f.rope_base);
  if (f.tied) spec.tied = true;
  if (f.untied) spec.tied = false;
  if (!f.name.empty()) spec.name = f.name;
  spec.seed = f.seed;
  spec.init_std = static_cast<float>(f.init_std);
  if (!f.chat.empty()) {
    if (f.chat == "chatml") {
      spec.chat = formats::ChatStyle::kChatMl;
    } else if (f.chat == "llama3") {
      spec.chat = formats::ChatStyle::kLlama3;
    } else {
      return Fail(cmd, Status::InvalidArgument("unknown --chat '" + f.chat + "' (chatml, llama3)"));
    }
  }
  if (!f.type.empty()) {
    static const std::map<std::string, tensor::DType> kTypes = {
        {"f32", tensor::DType::kF32},   {"f16", tensor::DType::kF16},
        {"bf16", tensor::DType::kBF16}, {"q8_0", tensor::DType::kQ8_0},
        {"q4_0", tensor::DType::kQ4_0}, {"q4_k", tensor::DType::kQ4_K},
        {"q6_k", tensor::DType::kQ6_K}};
    auto it = kTypes.find(f.type);
    if (it == kTypes.end()) {
      return Fail(cmd, Status::InvalidArgument("unknown --type '" + f.type +
                                               "' (f32, f16, bf16, q8_0, q4_0, q4_k, q6_k)"));
    }
    spec.weight_type = it->second;
  }
  auto writer = formats::BuildRandomModel(spec);
  if (!writer.ok()) return Fail(cmd, writer.status());
  if (Status s = writer->Write(f.out); !s.ok()) return Fail(cmd, s);
  std::printf("%s: %s %s, d_model %lld, %lld layers, %lld/%lld heads, d_ff %lld, vocab %lld%s, "
              "%s, seed %llu\n",
              f.out.c_str(), spec.arch.c_str(), spec.name.c_str(),
              static_cast<long long>(spec.d_model), static_cast<long long>(spec.num_layers),
              static_cast<long long>(spec.num_heads), static_cast<long long>(spec.num_kv_heads),
              static_cast<long long>(spec.d_ff), static_cast<long long>(spec.vocab_size),
              spec.tied ? " (tied)" : "", std::string(tensor::DTypeName(spec.weight_type)).c_str(),
              static_cast<unsigned long long>(spec.seed));
  return 0;
}

CommandMain Configure(CLI::App& app) {
  auto f = std::make_shared<MakeModelFlags>();
  std::string shapes;
  for (const auto& s : formats::NamedShapes()) shapes += (shapes.empty() ? "" : ", ") + s;
  app.description(
      "Write a random-weight model (weights ~ N(0, --init-std), norms 1) as a complete GGUF file "
      "with a synthetic byte-level BPE tokenizer and a chat template, loadable by Pocket and "
      "llama.cpp. The same flags and seed give the same bytes. Shapes: " + shapes +
      "; explicit sizes override the shape's.\n"
      "  pocket make-model --shape smollm2-135m --type q8_0 --seed 1 --out /tmp/smollm2-rand.gguf\n"
      "  pocket make-model --d-model 128 --layers 2 --heads 4 --kv-heads 2 --d-ff 256 "
      "--vocab 1024 --type f32 --out /tmp/tiny.gguf\n"
      "  pocket make-model --shape smollm2-135m --type f32 --init-std 0.1 --out /tmp/sharp.gguf "
      "(sharper logits, for perplexity comparisons)");
  app.add_option("--shape", f->shape, "a named shape (" + shapes + ")");
  app.add_option("--arch", f->arch, "llama or qwen2 (default llama)");
  app.add_option("--d-model", f->d_model, "embedding width");
  app.add_option("--layers", f->layers, "number of blocks");
  app.add_option("--heads", f->heads, "attention heads");
  app.add_option("--kv-heads", f->kv_heads, "key/value heads (GQA)");
  app.add_option("--d-ff", f->d_ff, "feed-forward width");
  app.add_option("--vocab", f->vocab, "vocabulary size (>= 512)");
  app.add_option("--ctx", f->ctx, "context_length metadata");
  app.add_option("--rope-base", f->rope_base, "rope.freq_base");
  app.add_flag("--tied", f->tied, "tie output and token embeddings (no output.weight)");
  app.add_flag("--untied", f->untied, "write a separate output.weight");
  app.add_option("--type", f->type, "weight type: f32, f16 (default), bf16, q8_0, q4_0, q4_k, q6_k");
  app.add_option("--chat", f->chat, "chat template and special tokens: chatml or llama3");
  app.add_option("--init-std", f->init_std,
                 "standard deviation of the non-norm weights, in (0, 10]; larger gives sharper "
                 "logits")
      ->capture_default_str();
  app.add_option("--seed", f->seed, "random seed")->capture_default_str();
  app.add_option("--name", f->name, "general.name");
  app.add_option("-o,--out", f->out, "the .gguf file to write")->required();
  return [f] { return MakeModelMain(*f); };
}

POCKET_COMMAND(make_model, "make-model", "write a random-weight Llama/Qwen2 GGUF model",
               Configure);

}  // namespace
}  // namespace pocket::cli
