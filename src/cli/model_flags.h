// Flags and argument rules shared by the model commands (run, chat, perplexity, bench):
// llama.cpp's flag names where one exists, so habits carry over, and the MODEL positional
// rule: MODEL is optional everywhere (default: DefaultModelPath()); a positional is taken
// as the model when it ends in ".gguf" or names an existing file that starts with the GGUF
// magic; -m/--model FILE names it explicitly (then no positional is a model).
#pragma once

#include <CLI/CLI.hpp>

#include <string>
#include <vector>

#include "base/status.h"
#include "runtime/engine.h"

namespace pocket::cli {

struct ModelFlags {
  std::string model;          // -m/--model
  int threads = 0;            // -t/--threads; 0 = all cores
  int ctx_size = 0;           // -c/--ctx-size; 0 = the model's, capped at 4096
  std::string chat_template;  // --chat-template: builtin name or Jinja source
  bool verbose = false;       // -v/--verbose
  bool no_repack = false;     // --no-repack
  std::string backend = "cpu";  // --backend cpu|reference
};
// Adds -m/--model, -t/--threads, -c/--ctx-size (unless `with_ctx` is false), --no-repack,
// --backend,
// -v/--verbose and, when `with_template`, --chat-template.
void AddModelFlags(CLI::App& app, ModelFlags* flags, bool with_ctx = true,
                   bool with_template = false);

struct SamplingFlags {
  runtime::SamplingParams params;  // seed: see Params()
  int64_t seed = -1;               // < 0: random (llama.cpp's --seed -1)
  int n_predict = -1;
  std::vector<std::string> stop;
  // `params` with the seed filled in.
  runtime::SamplingParams Params() const {
    runtime::SamplingParams out = params;
    out.seed = seed < 0 ? runtime::kRandomSeed : static_cast<uint64_t>(seed);
    return out;
  }
};
// -n/--n-predict, --temp, --top-k, --top-p, --min-p, --repeat-penalty, --repeat-last-n,
// -s/--seed, --stop/-r/--reverse-prompt.
void AddSamplingFlags(CLI::App& app, SamplingFlags* flags);

// True when `arg` should be read as the MODEL positional (see the rule above).
bool LooksLikeModel(const std::string& arg);

// Splits positionals into the model path and the rest. With -m given, all positionals are
// the rest; else the first is the model when LooksLikeModel() or when there are more than
// `max_rest` positionals. InvalidArgument when more than `max_rest` remain.
Result<std::string> TakeModel(const std::string& command, const std::string& model_flag,
                              std::vector<std::string>* positionals, size_t max_rest);

// Loads the engine with the common flags; applies --chat-template. Errors name the path.
Result<std::shared_ptr<runtime::Engine>> LoadEngine(const std::string& model_path,
                                                    const ModelFlags& flags);

// Reads all of stdin. IOError on a read error.
Result<std::string> ReadStdin();

}  // namespace pocket::cli
