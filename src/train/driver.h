// The drivers of `pocket train`, `pocket repro` and `pocket finetune`:
// everything those commands do between parsing flags and printing, so the CLI
// files stay thin. They report through callbacks (the library never prints).
//
// RunRecipe (train, repro): the recipe's tokenizer (a byte-level BPE trained on
// the data, or the vocabulary of a GGUF), its Dataset, fresh weights from the
// seed, and Trainer steps over BatchIterator batches; every checkpoint.interval
// steps (and at the end, and at stop_after) a checkpoint is written atomically:
//   <out>.ckpt.gguf        the model at that step, F32, with vocabulary and
//   provenance keys: a
//                          model `pocket run` and llama.cpp load;
//   <out>.ckpt-state.gguf  what resuming needs, in one file (one rename, so
//   never half of a
//                          checkpoint): every parameter's F32 values, the AdamW
//                          moments and step (Trainer::StateToGguf), the data
//                          cursor, the recipe and data hashes.
//   <out>.log.jsonl        one line per step up to the checkpoint: {"step", "loss", "lr",
//                          "grad_norm", "tokens_per_s"[, "val_loss" at checkpoints]};
//   <out>.loss.svg         the loss curve (training per step, validation at checkpoints).
// (<out> is the output path without its ".gguf".) A run with resume = true
// continues from the state file when there is one (refusing one written by
// another recipe or data) and ends with the same bytes as a run that never
// stopped, for any thread count. The final output is the last checkpoint's
// model in the recipe's checkpoint.quantize type: F32/F16 written directly,
// q8_0/q4_0/q4_k/q6_k through formats::QuantizeGguf from <out>.ckpt.gguf (whose
// SHA-256 it records as pocket.parent_sha256).
//
// Provenance keys, after the model's and tokenizer's metadata, in this order:
//   pocket.recipe_sha256 (RecipeSha256), pocket.data_sha256
//   (Dataset::data_hash), pocket.parent_sha256 (tokenizer.kind = "gguf": the
//   SHA-256 of that file; finetune: the base's), pocket.seed,
//   pocket.tool_version; checkpoints add pocket.train.step; a quantized output
//   then has pocket.parent_sha256 replaced by its F32 checkpoint's and
//   pocket.quantize.type added (formats/quantize.h).
//
// Finetune (`pocket finetune`): LoRA (train/lora.h) on a frozen GGUF base,
// JSONL chat or text data, losses before and after, the adapter written
// atomically in llama.cpp's layout, and with merge_path a merged model.
//
// Who calls: src/cli (train.cc, repro.cc, finetune.cc), tests. Thread safety:
// each call is independent; the callbacks run on the calling thread.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "base/status.h"
#include "train/recipe.h"

namespace pocket::train {

inline constexpr char kDataSha256Key[] = "pocket.data_sha256";
inline constexpr char kSeedKey[] = "pocket.seed";
inline constexpr char kToolVersionKey[] = "pocket.tool_version";
inline constexpr char kTrainStepKey[] = "pocket.train.step";
// The value of kToolVersionKey (the binary's --version).
inline constexpr char kToolVersion[] = "pocket 0.1.0";

struct CheckpointPaths {
  std::string output;  // the final model
  std::string model;   // <out>.ckpt.gguf
  std::string state;   // <out>.ckpt-state.gguf
  std::string log;     // <out>.log.jsonl: one JSON object per step, up to the last checkpoint
  std::string svg;     // <out>.loss.svg: the loss curve, redrawn at each checkpoint
};
// The files of a run whose final model is `output`.
CheckpointPaths CheckpointPathsFor(const std::string& output);

struct TrainProgress {
  int64_t step = 0, total_steps = 0;
  double loss = 0.0;
  float lr = 0.0f;
  double grad_norm = 0.0;
  double tokens_per_s = 0.0;  // counted targets per second over the run so far (this process)
  double eta_s = 0.0;
  bool has_validation = false;  // set on checkpoint steps
  double validation_loss = 0.0;
  bool checkpoint = false;  // a checkpoint was written after this step
};

struct TrainRunOptions {
  int threads = -1;    // < 0: the recipe's training.threads (0: all cores)
  std::string output;  // empty: the recipe's checkpoint.output (resolved)
  bool resume = false;
  // > 0: stop after this step, with a checkpoint, as if killed there (tests,
  // `--stop-after`).
  int64_t stop_after = 0;
  std::function<void(const TrainProgress&)> on_progress;
  std::function<void(const std::string&)> on_note;  // one line of information
};

struct TrainRunResult {
  std::string output;  // the final model (empty when stopped early)
  std::string sha256;  // of the final model (empty when stopped early)
  int64_t step = 0;    // steps done
  int64_t resumed_from = 0;
  bool finished = false;
  double validation_loss = 0.0;  // at the last checkpoint
  std::string data_hash;
};

// Runs (or resumes) the recipe as described above. Errors: the recipe's, the
// data layer's
// ("data: ..."), InvalidArgument for a state file of another recipe or data,
// IOError for a write.
Result<TrainRunResult> RunRecipe(const Recipe& recipe, const TrainRunOptions& options);

struct FinetuneOptions {
  std::string base;           // GGUF model (any type Pocket multiplies: F32, F16, BF16,
                              // Q8_0, Q4_0, ...)
  std::string data;           // file or folder (text, .jsonl chat records)
  std::string out;            // the adapter
  std::string merge;          // non-empty: also write the merged model here
  std::string chat_template;  // empty: the base's tokenizer.chat_template
  std::string targets = "q,k,v,o,gate,up,down";
  int64_t rank = 8;
  double alpha = 16.0;
  int64_t steps = 100;
  double lr = 1e-3;
  int64_t batch = 4;
  int64_t seq_len = 128;
  uint64_t seed = 0;
  int threads = 0;
  double validation_fraction = 0.1;
  std::function<void(const TrainProgress&)> on_progress;
  std::function<void(const std::string&)> on_note;
};

struct FinetuneResult {
  double train_loss_before = 0, train_loss_after = 0;
  double validation_loss_before = 0, validation_loss_after = 0;
  size_t num_matrices = 0;  // adapted matrices
  size_t num_params = 0;    // trainable values
  std::string adapter_sha256, merged_sha256;
};

// Fine-tunes as described above. InvalidArgument naming the option (--rank,
// --targets, ...) for a bad value; the loaders' and data layer's errors.
Result<FinetuneResult> Finetune(const FinetuneOptions& options);

// Lower-case hex SHA-256 of a file's bytes. IOError naming it.
Result<std::string> FileSha256(const std::string& path);

}  // namespace pocket::train
