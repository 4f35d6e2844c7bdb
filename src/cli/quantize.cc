// `pocket quantize IN.gguf OUT.gguf --type q8_0|q4_0|q4_k|q6_k`: a GGUF model re-encoded in one
// quantized type (formats/quantize.h holds the rules, the provenance keys and the atomic write);
// this file parses flags and prints the summary.
#include "formats/quantize.h"

#include <cstdio>
#include <memory>
#include <string>

#include "cli/command.h"
#include "cli/model_flags.h"

namespace pocket::cli {
namespace {

struct QuantizeFlags {
  std::string in;
  std::string out;
  std::string type = "q8_0";
  bool pure = false;
  int threads = 0;
};

int QuantizeMain(const QuantizeFlags& f) {
  const std::string cmd = "quantize";
  const auto type = formats::QuantizeTypeFromName(f.type);
  if (!type) {
    return Fail(cmd, Status::InvalidArgument("unknown --type '" + f.type + "' (" +
                                             formats::QuantizeTypeNames() + ")"));
  }
  formats::QuantizeOptions options;
  options.type = *type;
  options.pure = f.pure;
  options.num_threads = static_cast<size_t>(f.threads);
  auto rep = formats::QuantizeGguf(f.in, f.out, options);
  if (!rep.ok()) return Fail(cmd, rep.status());
  std::string types;
  for (const auto& [name, count] : rep->tensors_by_type) {
    types += (types.empty() ? "" : " ") + name + ":" + std::to_string(count);
  }
  std::printf("%s: %s, %zu tensors (%s), %.1f MB -> %.1f MB, source sha256 %s\n", f.out.c_str(),
              f.type.c_str(), rep->num_tensors, types.c_str(), rep->input_bytes / 1e6,
              rep->output_bytes / 1e6, rep->source_sha256.c_str());
  if (rep->num_fallback) {
    std::printf(
        "%zu %s in a fallback type: row length not a multiple of the block (Q4_K -> "
        "Q4_0, Q6_K -> Q8_0, then F16)\n",
        rep->num_fallback, rep->num_fallback == 1 ? "matrix" : "matrices");
  }
  return 0;
}

CommandMain Configure(CLI::App& app) {
  auto f = std::make_shared<QuantizeFlags>();
  app.description(
      "Quantize a GGUF model (F32, F16, BF16, or already quantized: decoded, then re-encoded) "
      "as llama-quantize does without an importance matrix, with the same bytes where both "
      "pick the same type: weight matrices get --type, except the output matrix (output.weight, "
      "or token_embd.weight when tied), which gets Q6_K unless --type is q8_0 or --pure is "
      "given; norms and biases stay F32; a row that is not a multiple of the block falls back "
      "(Q4_K -> Q4_0, Q6_K -> Q8_0, then F16). Metadata is kept; general.file_type, "
      "pocket.parent_sha256 (the input's SHA-256) and pocket.quantize.type are set. The "
      "output's bytes depend only on the input and the options, not on --threads; it is "
      "written atomically: a failed run leaves OUT as it was and no temp file.\n"
      "  pocket quantize smollm2-f16.gguf smollm2-q4_k.gguf --type q4_k");
  app.add_option("in", f->in, "the GGUF model to read")->required();
  app.add_option("out", f->out, "the GGUF file to write (replaced atomically)")->required();
  app.add_option("--type", f->type, "weight type: " + formats::QuantizeTypeNames())
      ->capture_default_str();
  app.add_flag("--pure", f->pure,
               "every weight matrix in --type, the output matrix too (llama-quantize --pure)");
  AddThreadsOption(app, &f->threads);
  return [f] { return QuantizeMain(*f); };
}

POCKET_COMMAND(quantize, "quantize", "quantize a GGUF model to q8_0, q4_0, q4_k or q6_k",
               Configure);

}  // namespace
}  // namespace pocket::cli
