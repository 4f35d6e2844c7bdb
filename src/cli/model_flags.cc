#include "cli/model_flags.h"

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "cli/command.h"

namespace pocket::cli {

void AddModelFlags(CLI::App& app, ModelFlags* flags, bool with_ctx, bool with_template) {
  app.add_option("-m,--model", flags->model,
                 "GGUF model file (default: the embedded default model; the first positional "
                 "is the model when it ends in .gguf or is a GGUF file)");
  app.add_option("-t,--threads", flags->threads, "threads to use (0 = all cores)")
      ->check(CLI::Range(0, 1024));
  if (with_ctx) {
    app.add_option("-c,--ctx-size", flags->ctx_size,
                   "context size in tokens (0 = the model's, capped at 4096)")
        ->check(CLI::Range(0, 1 << 20));
  }
  if (with_template) {
    app.add_option("--chat-template", flags->chat_template,
                   "chat template to use instead of the model's: a builtin name (chatml, "
                   "llama3, ...) or Jinja source");
  }
  app.add_flag("--no-repack", flags->no_repack,
               "read every weight in place from the file instead of re-laying Q4_0/Q8_0 "
               "matrices out for the CPU kernels at load (slower generation)");
  app.add_option("--backend", flags->backend,
                 "what runs the model: cpu (the SIMD kernels) or reference (plain loops, "
                 "slow: the oracle the kernels are checked against)")
      ->check(CLI::IsMember({"cpu", "reference"}))
      ->capture_default_str();
  app.add_flag("-v,--verbose", flags->verbose, "print load and timing details to stderr");
}

void AddSamplingFlags(CLI::App& app, SamplingFlags* flags) {
  auto& p = flags->params;
  app.add_option("-n,--n-predict", flags->n_predict,
                 "tokens to generate (-1 = until end of generation or a full context)")
      ->check(CLI::Range(-1, 1 << 30));
  // The ranges llama.cpp's sampler accepts (a temperature past 2 and a penalty past 10 are
  // allowed there too, but nothing useful lies beyond these bounds).
  app.add_option("--temp", p.temperature, "temperature (0 = greedy)")
      ->check(CLI::Range(0.0f, 10.0f))
      ->capture_default_str();
  app.add_option("--top-k", p.top_k, "top-k sampling (0 = off)")
      ->check(CLI::Range(0, 1 << 24))
      ->capture_default_str();
  app.add_option("--top-p", p.top_p, "top-p sampling (1.0 = off)")
      ->check(CLI::Range(0.0f, 1.0f))
      ->capture_default_str();
  app.add_option("--min-p", p.min_p, "min-p sampling (0.0 = off)")
      ->check(CLI::Range(0.0f, 1.0f))
      ->capture_default_str();
  app.add_option("--repeat-penalty", p.repeat_penalty, "repetition penalty (1.0 = off)")
      ->check(CLI::Range(0.0f, 100.0f))
      ->capture_default_str();
  app.add_option("--repeat-last-n", p.repeat_last_n,
                 "last n tokens the repetition penalty looks at (0 = off, -1 = all)")
      ->check(CLI::Range(-1, 1 << 30))
      ->capture_default_str();
  app.add_option("-s,--seed", flags->seed,
                 "RNG seed; the same seed gives the same output (-1 = random)")
      ->capture_default_str();
  app.add_option("--stop,-r,--reverse-prompt", flags->stop,
                 "stop generating before this text (repeatable)")
      ->allow_extra_args(false);
}

bool LooksLikeModel(const std::string& arg) {
  if (arg.size() >= 5) {
    std::string ext = arg.substr(arg.size() - 5);
    for (char& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (ext == ".gguf") return true;
  }
  std::error_code ec;
  if (arg.empty() || arg.size() > 4096 || !std::filesystem::is_regular_file(arg, ec)) {
    return false;
  }
  std::ifstream in(arg, std::ios::binary);
  char magic[4] = {};
  return in.read(magic, 4) && std::string_view(magic, 4) == "GGUF";
}

Result<std::string> TakeModel(const std::string& command, const std::string& model_flag,
                              std::vector<std::string>* positionals, size_t max_rest) {
  std::string model = model_flag;
  if (model.empty() && !positionals->empty() &&
      (LooksLikeModel(positionals->front()) || positionals->size() > max_rest)) {
    model = positionals->front();
    positionals->erase(positionals->begin());
  }
  if (positionals->size() > max_rest) {
    return Status::InvalidArgument("too many arguments (see `pocket " + command + " --help`)");
  }
  if (model.empty()) model = DefaultModelPath();
  return model;
}

Result<std::shared_ptr<runtime::Engine>> LoadEngine(const std::string& model_path,
                                                    const ModelFlags& flags) {
  std::error_code ec;
  if (!std::filesystem::exists(model_path, ec)) {
    return Status::NotFound("model file '" + model_path + "' does not exist");
  }
  runtime::EngineOptions opts;
  opts.threads = flags.threads;
  opts.context_length = flags.ctx_size;
  opts.repack = !flags.no_repack;
  opts.backend = flags.backend;
  PK_ASSIGN_OR_RETURN(auto engine, runtime::Engine::Load(model_path, opts));
  if (!flags.chat_template.empty()) {
    PK_RETURN_IF_ERROR(engine->SetChatTemplate(flags.chat_template));
  }
  return engine;
}

Result<std::string> ReadStdin() {
  std::string text;
  char buf[1 << 16];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), stdin)) > 0) text.append(buf, n);
  if (std::ferror(stdin)) return Status::IOError("cannot read stdin");
  return text;
}

}  // namespace pocket::cli
