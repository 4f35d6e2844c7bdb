// `pocket convert HF_DIR --out FILE.gguf [--type ...]`: a Hugging Face Llama/Qwen2
// checkpoint folder to GGUF (see src/formats/hf_convert.h for what is transformed).
#include <cstdio>
#include <map>
#include <string>

#include "cli/command.h"
#include "formats/hf_convert.h"

namespace pocket::cli {
namespace {

struct ConvertFlags {
  std::string dir;
  std::string out;
  std::string type = "f16";
  std::string name;
};

const std::map<std::string, tensor::DType>& WeightTypes() {
  static const std::map<std::string, tensor::DType> kTypes = {
      {"f32", tensor::DType::kF32},   {"f16", tensor::DType::kF16},
      {"bf16", tensor::DType::kBF16}, {"q8_0", tensor::DType::kQ8_0},
      {"q4_0", tensor::DType::kQ4_0}, {"q4_k", tensor::DType::kQ4_K},
      {"q6_k", tensor::DType::kQ6_K}};
  return kTypes;
}

int ConvertMain(const ConvertFlags& f) {
  const std::string cmd = "convert";
  auto it = WeightTypes().find(f.type);
  if (it == WeightTypes().end()) {
    return Fail(cmd, Status::InvalidArgument("unknown --type '" + f.type +
                                             "' (f32, f16, bf16, q8_0, q4_0, q4_k, q6_k)"));
  }
  formats::ConvertOptions options;
  options.weight_type = it->second;
  options.name = f.name;
  auto report = formats::ConvertHfToGguf(f.dir, f.out, options);
  if (!report.ok()) return Fail(cmd, report.status());
  std::printf("%s: arch %s, %zu tensors, %llu parameters, weights %s%s, tokenizer %s\n",
              f.out.c_str(), report->arch.c_str(), report->num_tensors,
              static_cast<unsigned long long>(report->num_params), f.type.c_str(),
              report->num_fallback
                  ? (" (" + std::to_string(report->num_fallback) +
                     " matrices in a fallback type: row length not a multiple of the block)")
                        .c_str()
                  : "",
              report->has_tokenizer ? "yes" : "no (no tokenizer.json)");
  return 0;
}

CommandMain Configure(CLI::App& app) {
  auto f = std::make_shared<ConvertFlags>();
  app.description(
      "Convert a Hugging Face checkpoint folder (config.json, model.safetensors or a sharded "
      "model.safetensors.index.json, optional tokenizer.json / tokenizer_config.json) of a "
      "LlamaForCausalLM or Qwen2ForCausalLM model into GGUF with llama.cpp's names and "
      "metadata. Norms and biases stay F32; matrices get --type (K-quants fall back to "
      "Q4_0/Q8_0 when a row is not a multiple of 256).\n"
      "  pocket convert ./SmolLM2-135M --out smollm2.gguf --type q8_0");
  app.add_option("dir", f->dir, "the Hugging Face model folder")->required();
  app.add_option("-o,--out", f->out, "the .gguf file to write")->required();
  app.add_option("-t,--type", f->type, "weight type: f32, f16, bf16, q8_0, q4_0, q4_k, q6_k")
      ->capture_default_str();
  app.add_option("--name", f->name, "general.name (default: the folder's name)");
  return [f] { return ConvertMain(*f); };
}

POCKET_COMMAND(convert, "convert", "convert a Hugging Face Llama/Qwen2 checkpoint to GGUF",
               Configure);

}  // namespace
}  // namespace pocket::cli
