// `pocket chat [MODEL]`: an interactive conversation through the model's chat template.
// Reads one user message per line from stdin (works non-interactively too); the reply
// streams to stdout followed by a newline. The session's KV cache is kept across turns, so
// each turn evaluates only its new tokens. Commands: /reset (forget the conversation),
// /exit or /quit (or end of input) to leave.
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <string>

#include "cli/command.h"
#include "cli/model_flags.h"
#include "runtime/engine.h"

namespace pocket::cli {
namespace {

struct ChatFlags {
  ModelFlags model;
  SamplingFlags sampling;
  std::vector<std::string> positionals;
  std::string system;
};

int ChatMain(ChatFlags& f) {
  const std::string cmd = "chat";
  auto model = TakeModel(cmd, f.model.model, &f.positionals, 0);
  if (!model.ok()) return Fail(cmd, model.status());
  auto engine = LoadEngine(*model, f.model);
  if (!engine.ok()) return Fail(cmd, engine.status());
  auto session = (*engine)->NewSession();
  const bool interactive = isatty(STDIN_FILENO);
  if (interactive) {
    std::fprintf(stderr, "pocket chat: type a message; /reset clears the conversation, "
                         "/exit quits.\n");
  }

  std::vector<runtime::ChatMessage> messages;
  const auto reset = [&] {
    messages.clear();
    if (!f.system.empty()) messages.push_back({"system", f.system});
    session->Reset();
  };
  reset();
  std::string line;
  while (true) {
    if (interactive) std::fprintf(stderr, "> ");
    if (!std::getline(std::cin, line)) break;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    if (line == "/exit" || line == "/quit") break;
    if (line == "/reset") {
      reset();
      std::fprintf(stderr, "pocket chat: conversation reset\n");
      continue;
    }
    messages.push_back({"user", line});
    runtime::GenerateRequest req;
    req.messages = messages;
    req.max_tokens = f.sampling.n_predict;
    req.sampling = f.sampling.Params();
    req.stop = f.sampling.stop;
    auto result = session->Generate(req, [](std::string_view text) {
      std::fwrite(text.data(), 1, text.size(), stdout);
      std::fflush(stdout);
      return true;
    });
    if (!result.ok()) {
      messages.pop_back();
      Fail(cmd, result.status());
      if (!interactive) return 1;
      continue;
    }
    std::fputc('\n', stdout);
    std::fflush(stdout);
    messages.push_back({"assistant", result->text});
    if (f.model.verbose) {
      std::fprintf(stderr,
                   "pocket chat: turn: prompt %d tokens, %d reused, %d evaluated; "
                   "generated %d tokens (%.1f tok/s); finish: %s\n",
                   result->prompt_tokens, result->reused_prompt_tokens,
                   result->prompt_tokens - result->reused_prompt_tokens,
                   result->completion_tokens,
                   result->generate_ms > 0 ? result->completion_tokens * 1e3 / result->generate_ms
                                           : 0.0,
                   result->finish_reason.c_str());
    }
  }
  return 0;
}

CommandMain Configure(CLI::App& app) {
  auto f = std::make_shared<ChatFlags>();
  app.description(
      "Chat with a model through its chat template. One message per line on stdin; the "
      "reply streams to stdout. /reset clears the conversation, /exit (or end of input) "
      "quits. The KV cache is kept across turns: only new tokens are evaluated.");
  SetExamples(app, {"pocket chat",
                    "printf 'Hi\\nTell me more\\n' | pocket chat model.gguf --temp 0 -n 64"});
  app.add_option("model", f->positionals, "[MODEL] (default: the embedded default model)");
  AddModelFlags(app, &f->model, true, true);
  app.add_option("--lora", f->model.lora,
                 "a GGUF LoRA adapter (llama.cpp's layout, e.g. from pocket finetune) applied to "
                 "the model at scale alpha/rank; repeatable")
      ->check(CLI::ExistingFile)
      ->allow_extra_args(false);
  AddSamplingFlags(app, &f->sampling);
  app.add_option("--system-prompt,--system", f->system, "system message for the conversation");
  return [f] { return ChatMain(*f); };
}

POCKET_COMMAND(chat, "chat", "interactive chat with a model (chat template, KV cache kept)",
               Configure);

}  // namespace
}  // namespace pocket::cli
