// `pocket perplexity [MODEL] TEXTFILE [-c N]`: perplexity of a text with llama.cpp's
// definition (see src/runtime/perplexity.h), printed as llama-perplexity does:
// "[1]x,[2]y,..." then "Final estimate: PPL = X +/- Y" on stdout; progress on stderr.
#include <cstdio>

#include "base/file.h"
#include "cli/command.h"
#include "cli/model_flags.h"
#include "runtime/measure.h"

namespace pocket::cli {
namespace {

struct PerplexityFlags {
  ModelFlags model;
  std::vector<std::string> positionals;
  std::string file;
  int n_ctx = 512;
  int chunks = -1;
};

int PerplexityMain(PerplexityFlags& f) {
  const std::string cmd = "perplexity";
  if (!f.file.empty()) f.positionals.push_back(f.file);
  auto model = TakeModel(cmd, f.model.model, &f.positionals, 1);
  if (!model.ok()) return Fail(cmd, model.status());
  if (f.positionals.empty()) {
    return Fail(cmd, Status::InvalidArgument("missing TEXTFILE (see `pocket perplexity --help`)"));
  }
  auto text = ReadFile(f.positionals.front());
  if (!text.ok()) return Fail(cmd, text.status());
  ModelFlags mf = f.model;
  mf.ctx_size = f.n_ctx;
  auto engine = LoadEngine(*model, mf);
  if (!engine.ok()) return Fail(cmd, engine.status());
  runtime::PerplexityOptions opts;
  opts.n_ctx = f.n_ctx;
  opts.max_chunks = f.chunks;
  std::fprintf(stderr, "pocket perplexity: %s on %s, n_ctx=%d\n", model->c_str(),
               f.positionals.front().c_str(), f.n_ctx);
  auto report = runtime::RunPerplexity(**engine, *text, opts, [](int chunk, double ppl) {
    std::printf("[%d]%.4f,", chunk, ppl);
    std::fflush(stdout);
  });
  if (!report.ok()) return Fail(cmd, report.status());
  std::printf("\n");
  std::fprintf(stderr,
               "pocket perplexity: %zu tokens, %d chunks of %d, %d scored per chunk, BOS %s; "
               "%.2f s\n",
               report->num_tokens, report->plan.num_chunks, report->plan.n_ctx,
               report->plan.scored_per_chunk, report->add_bos ? "yes" : "no", report->seconds);
  if (report->uncertainty > 0) {
    std::printf("Final estimate: PPL = %.4f +/- %.5f\n", report->ppl, report->uncertainty);
  } else {
    std::printf("Final estimate: PPL = %.4f\n", report->ppl);
    std::fprintf(stderr, "pocket perplexity: unexpected non-positive variance of log(prob)\n");
  }
  return 0;
}

CommandMain Configure(CLI::App& app) {
  auto f = std::make_shared<PerplexityFlags>();
  app.description(
      "Perplexity of a text file, defined exactly as llama.cpp's llama-perplexity (chunks of "
      "N tokens, BOS as first token of each chunk when the model adds BOS, only the second "
      "half of each chunk scored), so the figures are comparable.");
  SetExamples(app, {"pocket perplexity model.gguf wiki.test.raw -c 512",
                    "pocket perplexity -m model.gguf -f wiki.test.raw -t 4 --chunks 20"});
  app.add_option("args", f->positionals, "[MODEL] TEXTFILE");
  app.add_option("-f,--file", f->file, "the text file (instead of the TEXTFILE positional)");
  AddModelFlags(app, &f->model, false, false);
  app.add_option("--lora", f->model.lora,
                 "a GGUF LoRA adapter (llama.cpp's layout, e.g. from pocket finetune) applied to "
                 "the model at scale alpha/rank; repeatable")
      ->check(CLI::ExistingFile)
      ->allow_extra_args(false);
  AddCtxSizeOption(app, &f->n_ctx, "context size: tokens per chunk", 2, "--ctx");
  app.add_option("--chunks", f->chunks, "score at most this many chunks (-1 = all)")
      ->check(InRange(-1, 1 << 30, "-1 (all) or 0 to 1073741824"))
      ->capture_default_str();
  AddNotApplicable(app, "-n,--n-predict,--temp,-s,--seed",
                   "perplexity scores the text and generates nothing");
  return [f] { return PerplexityMain(*f); };
}

POCKET_COMMAND(perplexity, "perplexity", "perplexity of a text file (llama.cpp's definition)",
               Configure);

}  // namespace
}  // namespace pocket::cli
