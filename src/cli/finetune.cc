// `pocket finetune BASE.gguf --data PATH --out ADAPTER.gguf [...]`: LoRA
// fine-tuning on a frozen (possibly quantized) base (train::Finetune holds the
// work); this file parses flags and prints progress (stderr) and the losses
// before and after (stdout).
#include <cmath>
#include <cstdio>
#include <memory>
#include <string>

#include "cli/command.h"
#include "cli/model_flags.h"
#include "cli/train_progress.h"
#include "train/driver.h"

namespace pocket::cli {
namespace {

struct FinetuneFlags {
  train::FinetuneOptions o;
  int64_t seed = 0;
  bool quiet = false;
};

int FinetuneMain(FinetuneFlags& f) {
  const std::string cmd = "finetune";
  if (Status s = EnsureParentDirectory(f.o.out); !s.ok()) return Fail(cmd, s);
  f.o.seed = static_cast<uint64_t>(f.seed);
  f.o.on_note = [](const std::string& line) {
    std::fprintf(stderr, "pocket finetune: %s\n", line.c_str());
  };
  if (!f.quiet) {
    f.o.on_progress = [](const train::TrainProgress& p) { PrintTrainProgress("finetune", p); };
  }
  auto r = train::Finetune(f.o);
  if (!r.ok()) return Fail(cmd, r.status());
  std::printf(
      "train loss %.4f -> %.4f, validation loss %.4f -> %.4f (ppl %.2f "
      "-> %.2f)\n",
      r->train_loss_before, r->train_loss_after, r->validation_loss_before,
      r->validation_loss_after, std::exp(r->validation_loss_before),
      std::exp(r->validation_loss_after));
  std::printf("%s: LoRA adapter, %zu matrices, %zu parameters, sha256 %s\n", f.o.out.c_str(),
              r->num_matrices, r->num_params, r->adapter_sha256.c_str());
  if (!f.o.merge.empty()) {
    std::printf("%s: merged model, sha256 %s\n", f.o.merge.c_str(), r->merged_sha256.c_str());
  }
  return 0;
}

CommandMain Configure(CLI::App& app) {
  auto f = std::make_shared<FinetuneFlags>();
  app.description(
      "LoRA fine-tuning: train low-rank adapters on the --targets matrices of "
      "every layer of "
      "BASE, whose weights stay frozen as stored (quantized or not), on --data "
      "(a text file, "
      "a folder of notes read recursively, or .jsonl chat records rendered "
      "with the model's "
      "chat template, loss on assistant tokens only). Prints the training and "
      "held-out "
      "validation loss before and after, writes the adapter in the GGUF layout "
      "llama.cpp "
      "loads (atomically) and, with --merge, the base with the adapter merged "
      "in. Use the "
      "adapter with `pocket run --lora ADAPTER` or llama.cpp's --lora.");
  SetExamples(app, {"pocket finetune smollm2-135m-q8_0.gguf --data ~/notes --out "
                    "notes-lora.gguf",
                    "pocket finetune base.gguf --data chats.jsonl --lora-rank 16 "
                    "--targets q,v "
                    "--steps 200 --out a.gguf --merge merged.gguf",
                    "pocket run base.gguf --lora notes-lora.gguf \"Meeting notes:\""});
  app.add_option("base", f->o.base, "the GGUF model to adapt")->required();
  app.add_option("--data", f->o.data, "training data: a file or a folder")->required();
  app.add_option("-o,--out", f->o.out, "the adapter GGUF to write")->required();
  app.add_option("--merge", f->o.merge, "also write BASE with the adapter merged in here");
  app.add_option("--lora-rank", f->o.rank, "adapter rank")->check(InRange(1, 4096));
  app.add_option("--lora-alpha", f->o.alpha, "adapter alpha (scale = alpha / rank)")
      ->check(InRange(1e-6, 1e6));
  app.add_option("--targets", f->o.targets,
                 "matrices of each layer to adapt: any of q,k,v,o,gate,up,down");
  app.add_option("--steps", f->o.steps, "optimizer steps")->check(InRange(0, 1e9));
  app.add_option("--lr", f->o.lr, "peak learning rate (AdamW, warmup then cosine to lr/10)")
      ->check(InRange(1e-9, 1));
  app.add_option("--batch", f->o.batch, "sequences per step")->check(InRange(1, 4096));
  app.add_option("--seq-len", f->o.seq_len, "tokens per sequence")->check(InRange(1, 1 << 20));
  app.add_option("--val-fraction", f->o.validation_fraction,
                 "share of documents held out for the validation loss")
      ->check(InRange(0, 0.99));
  app.add_option("-s,--seed", f->seed, "seed of the adapters' initialisation and the data order")
      ->check(InRange(0, 9.2e18));
  app.add_option("--chat-template", f->o.chat_template,
                 "chat template for .jsonl data: a builtin name or Jinja "
                 "source (default: the "
                 "model's)");
  app.add_option("-t,--threads", f->o.threads, "compute threads (0 = all cores)")
      ->check(InRange(0, 1024));
  app.add_flag("-q,--quiet", f->quiet, "no per-step progress lines");
  return [f] { return FinetuneMain(*f); };
}

POCKET_COMMAND(finetune, "finetune", "LoRA fine-tuning of a GGUF model on text or chat data",
               Configure);

}  // namespace
}  // namespace pocket::cli
