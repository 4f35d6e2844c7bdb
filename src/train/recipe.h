// The training recipe of `pocket train` / `pocket repro`: a TOML file (docs/train.md lists every
// key with its default and range) parsed into a Recipe, and its canonical form.
//
//   [model]       architecture sizes (vocab_size, d_model, n_layers, n_heads, n_kv_heads,
//                 d_ff, context, rope_theta, norm_eps, tied_embeddings, init_std)
//   [tokenizer]   kind = "bpe" (train a byte-level BPE of model.vocab_size tokens on the
//                 data, with the given special tokens) or "gguf" (take the vocabulary of
//                 the GGUF file `from`)
//   [data]        paths, validation_fraction, seq_len, max_document_bytes
//   [training]    steps, batch_size, grad_accum, lr, min_lr, warmup_steps, weight_decay,
//                 beta1, beta2, eps, clip_norm, seed, threads
//   [checkpoint]  interval, output, quantize
//   [repro]       sha256: the SHA-256 `pocket repro` expects of the final checkpoint
//
// Errors are one line, "recipe <path>: <full key>: <what>": an unknown key anywhere
// ("training.lr_max: unknown key"), a wrong TOML type ("model.d_model: expected an integer"), a
// value out of range ("training.lr: 2 is out of range (0, 1]"), or values that do not fit together
// ("model.n_heads: 3 does not divide model.d_model = 256"). TOML syntax errors give line and
// column. Every key is optional (the defaults are the struct's initialisers) but data.paths.
//
// Paths (data.paths, tokenizer.from, checkpoint.output) are kept as written (lexically normalised)
// and also resolved against the recipe file's folder when relative.
//
// Canonical form and hash: CanonicalRecipe() prints every key that decides the checkpoint's bytes,
// in a fixed order, one value format per type, paths as written — so the hash does not change with
// comments, spacing, key order, defaults written out or left implicit, 1e-3 vs 0.001, or where the
// checkout lives. Left out on purpose: training.threads (the bytes are the same for any thread
// count), checkpoint.interval and checkpoint.output (where and how often to save does not change
// the weights) and repro.sha256 (it records the result). RecipeSha256() is its SHA-256, stored in
// checkpoints as kRecipeSha256Key.
//
// Users: `pocket train`, `pocket repro` (src/cli), the trainer (train/). Thread safety: plain data
// and pure functions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace pocket::train {

// The provenance key a checkpoint records RecipeSha256() under.
inline constexpr char kRecipeSha256Key[] = "pocket.recipe_sha256";

struct ModelRecipe {
  std::string arch = "llama";  // "llama" or "qwen2"
  int64_t vocab_size = 4096;
  int64_t d_model = 256;
  int64_t n_layers = 4;
  int64_t n_heads = 4;
  int64_t n_kv_heads = 0;  // 0 in the file's absence: resolved to n_heads by the parser
  int64_t d_ff = 768;
  int64_t context = 256;
  double rope_theta = 10000.0;
  double norm_eps = 1e-5;
  bool tied_embeddings = true;
  double init_std = 0.02;  // N(0, init_std) for every matrix; norms start at 1
};

struct TokenizerRecipe {
  std::string kind = "bpe";   // "bpe" or "gguf"
  std::string from;           // kind "gguf": the GGUF file, as written
  std::string from_resolved;  // ... resolved against the recipe's folder
  // kind "bpe" (tokenizer/bpe_train.h's BpeTrainOptions):
  std::string pre = "smollm";
  int64_t min_frequency = 2;
  std::vector<std::string> special_tokens = {"<|endoftext|>"};
  std::string bos_token;  // empty: none
  std::string eos_token = "<|endoftext|>";
  std::string eot_token;
  std::string pad_token;
};

struct DataRecipe {
  std::vector<std::string> paths;           // files or folders, as written
  std::vector<std::string> resolved_paths;  // ... resolved against the recipe's folder
  double validation_fraction = 0.05;
  int64_t seq_len = 256;
  int64_t max_document_bytes = 65536;  // 0: never cut a text file into documents
};

struct TrainingRecipe {
  int64_t steps = 1000;
  int64_t batch_size = 8;  // sequences per micro-batch
  int64_t grad_accum = 1;  // micro-batches per optimizer step
  double lr = 1e-3;        // peak, after warmup
  double min_lr = 1e-4;    // end of the cosine decay
  int64_t warmup_steps = 100;
  double weight_decay = 0.1;
  double beta1 = 0.9;
  double beta2 = 0.95;
  double eps = 1e-8;
  double clip_norm = 1.0;  // global gradient norm; 0: no clipping
  uint64_t seed = 0;
  int64_t threads = 0;  // 0: all cores; never changes the bytes (not hashed)
};

struct CheckpointRecipe {
  int64_t interval = 100;         // steps between checkpoints; 0: only the final one
  std::string output;             // as written; default "<recipe stem>.gguf"
  std::string output_resolved;    // ... resolved against the recipe's folder
  std::string quantize = "q8_0";  // f32, f16, q8_0, q4_0, q4_k, q6_k
};

struct Recipe {
  std::string path;  // the recipe file (messages)
  ModelRecipe model;
  TokenizerRecipe tokenizer;
  DataRecipe data;
  TrainingRecipe training;
  CheckpointRecipe checkpoint;
  std::string recorded_sha256;  // repro.sha256: 64 lower-case hex digits, or empty
};

// Parses recipe text. `path` names it in messages and its folder resolves relative paths (no file
// is opened or checked for existence). InvalidArgument as described above.
Result<Recipe> ParseRecipe(std::string_view toml_text, const std::string& path);
// Reads and parses the file `path`. IOError naming it when it cannot be read.
Result<Recipe> LoadRecipe(const std::string& path);

// The fixed-order TOML text described above; parsing it gives a recipe with the same canonical
// form.
std::string CanonicalRecipe(const Recipe& recipe);
// Lower-case hex SHA-256 of CanonicalRecipe(recipe).
std::string RecipeSha256(const Recipe& recipe);

// The checkpoint types checkpoint.quantize accepts: "f32, f16, q8_0, q4_0, q4_k, q6_k".
std::string CheckpointTypeNames();

}  // namespace pocket::train
