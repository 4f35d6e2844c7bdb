// `pocket train RECIPE.toml [--threads N] [--out PATH] [--resume]`: trains a
// model from scratch as the recipe says (train::RunRecipe holds the work); this
// file parses flags and prints progress (stderr) and the result (stdout).
#include <cstdio>
#include <memory>
#include <string>

#include "cli/command.h"
#include "cli/model_flags.h"
#include "cli/train_progress.h"
#include "train/driver.h"
#include "train/recipe.h"

namespace pocket::cli {
namespace {

struct TrainFlags {
  std::string recipe;
  int threads = -1;
  std::string out;
  bool resume = false;
  int64_t stop_after = 0;
  bool quiet = false;
};

int TrainMain(const TrainFlags& f) {
  const std::string cmd = "train";
  auto recipe = train::LoadRecipe(f.recipe);
  if (!recipe.ok()) return Fail(cmd, recipe.status());
  if (!f.out.empty()) {
    if (Status s = EnsureParentDirectory(f.out); !s.ok()) return Fail(cmd, s);
  }
  train::TrainRunOptions o;
  o.threads = f.threads;
  o.output = f.out;
  o.resume = f.resume;
  o.stop_after = f.stop_after;
  o.on_note = [](const std::string& line) {
    std::fprintf(stderr, "pocket train: %s\n", line.c_str());
  };
  if (!f.quiet)
    o.on_progress = [](const train::TrainProgress& p) { PrintTrainProgress("train", p); };
  auto r = train::RunRecipe(*recipe, o);
  if (!r.ok()) return Fail(cmd, r.status());
  if (!r->finished) {
    std::printf("stopped after step %lld; continue with: pocket train %s --resume\n",
                static_cast<long long>(r->step), f.recipe.c_str());
    return 0;
  }
  std::printf("%s: %lld steps, validation loss %.4f, sha256 %s\n", r->output.c_str(),
              static_cast<long long>(r->step), r->validation_loss, r->sha256.c_str());
  return 0;
}

CommandMain Configure(CLI::App& app) {
  auto f = std::make_shared<TrainFlags>();
  app.description(
      "Train a model from scratch as RECIPE.toml says (docs/train.md lists "
      "every key): train "
      "the tokenizer (or take it from a GGUF), load and split the data, train, "
      "and write a "
      "checkpoint every checkpoint.interval steps (<out>.ckpt.gguf: the F32 "
      "model; "
      "<out>.ckpt-state.gguf: what --resume needs) and the final model in "
      "checkpoint.quantize's type, with provenance keys (recipe, data and "
      "parent hashes, seed, "
      "tool version). Progress goes to stderr, the result line (path, sha256) "
      "to stdout. The "
      "same recipe and data give the same bytes on every run, for any "
      "--threads, resumed or "
      "not.");
  SetExamples(app, {"pocket train recipes/default.toml",
                    "pocket train my.toml --threads 2 --out /tmp/my.gguf",
                    "pocket train my.toml --resume      # after an interrupted run"});
  app.add_option("recipe", f->recipe, "the recipe (TOML)")->required();
  app.add_option("-t,--threads", f->threads,
                 "compute threads (0 = all cores; default: the recipe's "
                 "training.threads); the "
                 "output's bytes do not depend on it")
      ->check(InRange(0, 1024))
      ->default_str("the recipe's");
  app.add_option("-o,--out", f->out,
                 "the final model (default: the recipe's checkpoint.output); "
                 "checkpoints go "
                 "beside it");
  app.add_flag("--resume", f->resume,
               "continue from the last checkpoint of this output, if there is one");
  app.add_option("--stop-after", f->stop_after,
                 "stop after this step, with a checkpoint, as an interrupted "
                 "run would (0 = run "
                 "to the end)")
      ->check(InRange(0, 1e12));
  app.add_flag("-q,--quiet", f->quiet, "no per-step progress lines");
  return [f] { return TrainMain(*f); };
}

POCKET_COMMAND(train, "train", "train a model from scratch as a recipe (TOML) says", Configure);

}  // namespace
}  // namespace pocket::cli
