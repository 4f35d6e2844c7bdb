// `pocket repro RECIPE.toml [--threads N] [--resume]`: the reproducibility
// gate. Runs the recipe (train::RunRecipe) in a scratch folder and compares the
// result's SHA-256 with the recipe's repro.sha256: exit 0 only when they are
// equal, 1 otherwise (both digests printed; when the recipe records none, the
// digest to record).
#include <stdlib.h>

#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>

#include "cli/command.h"
#include "cli/model_flags.h"
#include "cli/train_progress.h"
#include "train/driver.h"
#include "train/recipe.h"

namespace pocket::cli {
namespace {

struct ReproFlags {
  std::string recipe;
  int threads = -1;
  bool resume = false;
  bool keep = false;
  bool quiet = false;
};

int ReproMain(const ReproFlags& f) {
  const std::string cmd = "repro";
  auto recipe = train::LoadRecipe(f.recipe);
  if (!recipe.ok()) return Fail(cmd, recipe.status());
  namespace fs = std::filesystem;
  std::error_code ec;
  std::string tmpl = (fs::temp_directory_path(ec) / "pocket-repro-XXXXXX").string();
  if (mkdtemp(tmpl.data()) == nullptr) {
    return Fail(cmd, Status::IOError("cannot create a scratch folder " + tmpl));
  }
  const std::string scratch = tmpl;
  const std::string out =
      (fs::path(scratch) / fs::path(recipe->checkpoint.output_resolved).filename()).string();
  train::TrainRunOptions o;
  o.threads = f.threads;
  o.output = out;
  if (f.resume) {
    // Continue from the recipe's own last checkpoint, copied so it stays as it
    // is.
    const auto from = train::CheckpointPathsFor(recipe->checkpoint.output_resolved);
    const auto to = train::CheckpointPathsFor(out);
    if (fs::exists(from.state, ec)) {
      fs::copy_file(from.state, to.state, ec);
      if (ec) return Fail(cmd, Status::IOError("cannot copy " + from.state + ": " + ec.message()));
      std::fprintf(stderr, "pocket repro: resuming from %s\n", from.state.c_str());
    }
    o.resume = true;
  }
  o.on_note = [](const std::string& line) {
    std::fprintf(stderr, "pocket repro: %s\n", line.c_str());
  };
  if (!f.quiet)
    o.on_progress = [](const train::TrainProgress& p) { PrintTrainProgress("repro", p); };
  auto r = train::RunRecipe(*recipe, o);
  if (!f.keep) fs::remove_all(scratch, ec);
  if (!r.ok()) return Fail(cmd, r.status());
  if (f.keep) std::fprintf(stderr, "pocket repro: kept %s\n", out.c_str());
  const std::string& want = recipe->recorded_sha256;
  if (want.empty()) {
    std::printf(
        "%s records no repro.sha256; this run gives\n  sha256 "
        "%s\nrecord it with:\n"
        "  [repro]\n  sha256 = \"%s\"\n",
        f.recipe.c_str(), r->sha256.c_str(), r->sha256.c_str());
    return 1;
  }
  if (want != r->sha256) {
    std::printf("NOT reproduced: %s\n  recorded sha256 %s\n  this run       %s\n", f.recipe.c_str(),
                want.c_str(), r->sha256.c_str());
    return 1;
  }
  std::printf("reproduced: %s\n  sha256 %s\n", f.recipe.c_str(), r->sha256.c_str());
  return 0;
}

CommandMain Configure(CLI::App& app) {
  auto f = std::make_shared<ReproFlags>();
  app.description(
      "The reproducibility gate: run RECIPE.toml from scratch in a "
      "scratch folder (or, with "
      "--resume, from the recipe's last checkpoint) and compare "
      "the result's SHA-256 with the "
      "recipe's [repro] sha256. Exit 0 only when they are equal; 1 "
      "when they differ (both "
      "printed) or the recipe records none (the digest to record "
      "is printed); 2 for a bad "
      "recipe or flag. The recipe's own output is never touched.");
  SetExamples(
      app, {"pocket repro recipes/default.toml", "pocket repro recipes/default.toml --threads 1"});
  app.add_option("recipe", f->recipe, "the recipe (TOML)")->required();
  app.add_option("-t,--threads", f->threads,
                 "compute threads (0 = all cores; default: the recipe's "
                 "training.threads)")
      ->check(InRange(0, 1024))
      ->default_str("the recipe's");
  app.add_flag("--resume", f->resume, "start from the recipe's last checkpoint, if any");
  app.add_flag("--keep", f->keep, "keep the scratch folder (its path is printed)");
  app.add_flag("-q,--quiet", f->quiet, "no per-step progress lines");
  return [f] { return ReproMain(*f); };
}

POCKET_COMMAND(repro, "repro", "re-run a recipe and check its output's recorded SHA-256",
               Configure);

}  // namespace
}  // namespace pocket::cli
