// The one vocabulary of flags shared by the model commands (run, chat, serve, agent, bench,
// perplexity): llama.cpp's names, so habits carry over, each defined once here with its help
// text, its default shown in --help and its valid range checked at parse time (a value out
// of range is a usage error: exit 2, "pocket <command>: --flag: VALUE is out of range
// (valid: ...)"). A command takes the flags that mean something to it and, for the others
// of the vocabulary, says why they do not apply (AddNotApplicable) instead of CLI11's
// "not expected".
//
//   -m, --model FILE      the GGUF model (serve: repeatable)
//   [MODEL] positional    see the rule below
//   -c, --ctx-size N      context size in tokens (perplexity: tokens per chunk)
//   -t, --threads N       compute threads, 0 = all cores
//   -n, --n-predict N     tokens to generate, -1 = no limit (bench: -n, --n-gen, tg tokens)
//   --temp T              temperature, 0 = greedy
//   --top-k, --top-p, --min-p   sampler truncation, each 0 (top-p: 1) = off
//   -s, --seed S          RNG seed, -1 = random
// serve takes the sampling flags as the defaults of requests that leave the field out.
//
// The MODEL positional rule: MODEL is optional everywhere (default: DefaultModelPath()); a
// positional is taken as the model when it ends in ".gguf" or names an existing file that
// starts with the GGUF magic; -m/--model FILE names it explicitly (then no positional is a
// model).
// Called from each command's Configure (single-threaded, before parsing).
#pragma once

#include <CLI/CLI.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"
#include "registry/variant.h"
#include "runtime/engine.h"

namespace pocket::cli {

// A CLI11 check that a number lies in [lo, hi]. The error reads "VALUE is out of range
// (valid: LO to HI)" (CLI11 puts the flag before it, main.cc the command); `valid` replaces
// "LO to HI" where the range has a special value (e.g. "-1 (no limit) or 0 to 1073741824").
// --help shows "in [LO, HI]", or `valid` when given.
CLI::Validator InRange(double lo, double hi, const std::string& valid = "");

// The shared flags, one function each. `aliases` are extra names a command documented
// before the vocabulary was unified (e.g. serve's --context, agent's --temperature); they
// keep working. Each returns the option for command-specific tweaks.
CLI::Option* AddModelOption(CLI::App& app, std::string* model);
// serve: several models, -m repeated.
CLI::Option* AddModelOption(CLI::App& app, std::vector<std::string>* models);
CLI::Option* AddThreadsOption(CLI::App& app, int* threads);
// `help` says what the size means for the command; `min` is the smallest valid value.
CLI::Option* AddCtxSizeOption(CLI::App& app, int* ctx_size, const std::string& help, int min,
                              const std::string& aliases = "");
// allow_zero false (serve's default for requests): 0 is refused, since every request that
// relies on the default would return no text.
CLI::Option* AddNPredictOption(CLI::App& app, int* n_predict, const std::string& aliases = "",
                               bool allow_zero = true);
CLI::Option* AddTempOption(CLI::App& app, float* temp, const std::string& aliases = "");
CLI::Option* AddSeedOption(CLI::App& app, int64_t* seed);
CLI::Option* AddTopKOption(CLI::App& app, int* top_k);
CLI::Option* AddTopPOption(CLI::App& app, float* top_p);
CLI::Option* AddMinPOption(CLI::App& app, float* min_p);

// Accepts `names` (e.g. "--temp") only to reject them with "does not apply to <command>:
// <reason>" (a usage error); hidden from --help.
void AddNotApplicable(CLI::App& app, const std::string& names, const std::string& reason);

// Sets the command's examples, shown at the end of its --help under "Examples:". Each
// line is one command line, optionally followed by "  # comment".
void SetExamples(CLI::App& app, const std::vector<std::string>& lines);

struct ModelFlags {
  std::string model;          // -m/--model
  int threads = 0;            // -t/--threads; 0 = all cores
  int ctx_size = 0;           // -c/--ctx-size; 0 = the model's, capped at 4096
  std::string chat_template;  // --chat-template: builtin name or Jinja source
  bool verbose = false;       // -v/--verbose
  bool no_repack = false;     // --no-repack
  std::string backend = "cpu";  // --backend cpu|reference
  std::vector<std::string> lora;  // --lora FILE (run, chat, perplexity add the flag)
  std::string prefer = "quality";  // --prefer: a stored index's variant (registry/variant.h)
  std::string variant;             // --variant: that variant instead of choosing
};
// Adds -m/--model, -t/--threads, -c/--ctx-size (unless `with_ctx` is false), --no-repack,
// --backend, -v/--verbose, --prefer, --variant and, when `with_template`, --chat-template.
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

// Variants (registry/variant.h). A stored NAME:TAG may be an index of variants; every model
// command resolves it through registry::ResolveModelPath with the policy main() installs
// (InstallVariantPolicy): this machine's facts (registry::ReadMachineFacts, so
// $POCKET_MACHINE overrides them), the --prefer/--variant of AddVariantOptions and each
// variant's runtime::EstimateMemory at the -c/--ctx-size given (0: the model's, capped at
// 4096), from its io.pocket.shape annotation (else its min_memory_bytes). The choice's line
// goes to stderr, once.
void AddVariantOptions(CLI::App& app, std::string* prefer, std::string* variant);
// runtime::EstimateMemory(...).total() of a variant at `ctx_size` tokens (see above).
registry::MemoryNeedFn MemoryNeedAt(int ctx_size);
// The request for `prefer` ("quality"|"speed"), `pick` (--variant) and `ctx_size` on this
// machine. InvalidArgument for a bad $POCKET_MACHINE or preference.
Result<registry::VariantRequest> VariantRequestFor(const std::string& prefer,
                                                   const std::string& pick, int ctx_size);
// Called once by main() before the command runs.
void InstallVariantPolicy();

// True when `arg` should be read as the MODEL positional (see the rule above).
bool LooksLikeModel(const std::string& arg);

// Splits positionals into the model path and the rest. With -m given, all positionals are
// the rest; else the first is the model when LooksLikeModel() or when there are more than
// `max_rest` positionals; else DefaultModelPath() (NotFound when there is none).
// InvalidArgument when more than `max_rest` remain.
Result<std::string> TakeModel(const std::string& command, const std::string& model_flag,
                              std::vector<std::string>* positionals, size_t max_rest);

// Loads the engine with the common flags; applies --chat-template. Errors name the path.
Result<std::shared_ptr<runtime::Engine>> LoadEngine(const std::string& model_path,
                                                    const ModelFlags& flags);

// Reads all of stdin. IOError on a read error.
Result<std::string> ReadStdin();

}  // namespace pocket::cli
