// `pocket run [MODEL] [PROMPT]`: generate a continuation of PROMPT (from the argument,
// -p/--prompt, -f/--file, or stdin) and stream it to stdout. Only the generated text goes
// to stdout; everything else (load messages, timings, errors) goes to stderr.
#include <unistd.h>

#include <cstdio>

#include "base/file.h"
#include "cli/command.h"
#include "cli/model_flags.h"
#include "runtime/engine.h"

namespace pocket::cli {
namespace {

struct RunFlags {
  ModelFlags model;
  SamplingFlags sampling;
  std::vector<std::string> positionals;
  std::string prompt;
  std::string file;
  bool chat = false;
};

int RunMain(RunFlags& f) {
  const std::string cmd = "run";
  auto model = TakeModel(cmd, f.model.model, &f.positionals, 1);
  if (!model.ok()) return Fail(cmd, model.status());
  int sources = !f.positionals.empty() + !f.prompt.empty() + !f.file.empty();
  if (sources > 1) {
    return Fail(cmd, Status::InvalidArgument("give the prompt once: as an argument, with "
                                             "-p/--prompt, or with -f/--file"));
  }
  std::string prompt;
  if (!f.positionals.empty()) {
    prompt = f.positionals.front();
  } else if (!f.prompt.empty()) {
    prompt = f.prompt;
  } else if (!f.file.empty()) {
    auto text = ReadFile(f.file);
    if (!text.ok()) return Fail(cmd, text.status());
    prompt = std::move(*text);
  } else {
    if (isatty(STDIN_FILENO)) {
      std::fprintf(stderr, "pocket run: reading the prompt from stdin (end it with Ctrl-D)\n");
    }
    auto text = ReadStdin();
    if (!text.ok()) return Fail(cmd, text.status());
    prompt = std::move(*text);
  }

  auto engine = LoadEngine(*model, f.model);
  if (!engine.ok()) return Fail(cmd, engine.status());
  auto session = (*engine)->NewSession();
  runtime::GenerateRequest req;
  if (f.chat) {
    req.messages.push_back({"user", prompt});
  } else {
    req.prompt = prompt;
  }
  req.max_tokens = f.sampling.n_predict;
  req.sampling = f.sampling.Params();
  req.stop = f.sampling.stop;
  auto result = session->Generate(req, [](std::string_view text) {
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fflush(stdout);
    return true;
  });
  if (!result.ok()) return Fail(cmd, result.status());
  if (f.model.verbose) {
    const auto& r = *result;
    std::fprintf(stderr,
                 "\npocket run: prompt %d tokens (%d reused) in %.1f ms (%.1f tok/s); "
                 "generated %d tokens in %.1f ms (%.1f tok/s); finish: %s; seed: %llu\n",
                 r.prompt_tokens, r.reused_prompt_tokens, r.prompt_ms,
                 r.prompt_ms > 0 ? (r.prompt_tokens - r.reused_prompt_tokens) * 1e3 / r.prompt_ms
                                 : 0.0,
                 r.completion_tokens, r.generate_ms,
                 r.generate_ms > 0 ? r.completion_tokens * 1e3 / r.generate_ms : 0.0,
                 r.finish_reason.c_str(), static_cast<unsigned long long>(r.seed));
  }
  return 0;
}

CommandMain Configure(CLI::App& app) {
  auto f = std::make_shared<RunFlags>();
  app.description(
      "Generate text from a prompt and stream it to stdout (only the generated text; "
      "everything else goes to stderr).");
  SetExamples(app, {"pocket run \"Once upon a time\" -n 32         # embedded default model",
                    "pocket run model.gguf \"Once upon a time\" -n 64 --temp 0",
                    "echo \"Hello\" | pocket run -m model.gguf --seed 42 -c 2048 -t 4"});
  app.add_option("args", f->positionals, "[MODEL] [PROMPT]; the prompt is read from stdin "
                                         "when none is given");
  AddModelFlags(app, &f->model, true, true);
  app.add_option("--lora", f->model.lora,
                 "a GGUF LoRA adapter (llama.cpp's layout, e.g. from pocket finetune) applied to "
                 "the model at scale alpha/rank; repeatable")
      ->check(CLI::ExistingFile)
      ->allow_extra_args(false);
  AddSamplingFlags(app, &f->sampling);
  app.add_option("-p,--prompt", f->prompt, "the prompt");
  app.add_option("-f,--file", f->file, "read the prompt from this file");
  app.add_flag("--chat", f->chat, "wrap the prompt as one user message in the chat template");
  return [f] { return RunMain(*f); };
}

POCKET_COMMAND(run, "run", "generate text from a prompt (streams to stdout)", Configure);

}  // namespace
}  // namespace pocket::cli
