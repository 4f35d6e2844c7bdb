// The shared flag vocabulary of the model commands (see model_flags.h): one definition per
// flag with its range check, the MODEL positional rule, the variant policy of stored
// indexes, and loading the engine.
#include "cli/model_flags.h"

#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "cli/command.h"
#include "registry/resolve.h"
#include "registry/store.h"
#include "runtime/memory_estimate.h"

namespace pocket::cli {

namespace {

// Integers as integers (1073741824, not 1.07374e+09 or 1073741824.000000), others short.
std::string FormatNumber(long double x) {
  char buf[64];
  if (std::fabs(x) < 1e18L && x == static_cast<long double>(static_cast<long long>(x))) {
    std::snprintf(buf, sizeof(buf), "%lld", static_cast<long long>(x));
  } else {
    std::snprintf(buf, sizeof(buf), "%Lg", x);
  }
  return buf;
}

std::string WithAliases(std::string names, const std::string& aliases) {
  if (!aliases.empty()) names += "," + aliases;
  return names;
}

// What the parsed command asked of a stored index's variant choice (-c, --prefer,
// --variant): set by the options' callbacks while CLI11 parses the one command that runs.
struct VariantSettings {
  int ctx_size = 0;
  std::string prefer = "quality";
  std::string pick;
};
VariantSettings& Settings() {
  static VariantSettings settings;
  return settings;
}

}  // namespace

CLI::Validator InRange(double lo, double hi, const std::string& valid) {
  const std::string range = valid.empty() ? FormatNumber(lo) + " to " + FormatNumber(hi) : valid;
  return CLI::Validator(
      [lo, hi, range](std::string& input) -> std::string {
        // long double holds every int64 exactly, so integer flags (seeds) compare exactly.
        char* end = nullptr;
        errno = 0;
        const long double v = std::strtold(input.c_str(), &end);
        if (input.empty() || end != input.c_str() + input.size() || errno == ERANGE ||
            std::isnan(v)) {
          return input + " is not a number (valid: " + range + ")";
        }
        if (v < lo || v > hi) return input + " is out of range (valid: " + range + ")";
        return "";
      },
      valid.empty() ? "in [" + FormatNumber(lo) + ", " + FormatNumber(hi) + "]" : valid);
}

CLI::Option* AddModelOption(CLI::App& app, std::string* model) {
  return app.add_option("-m,--model", *model,
                        "GGUF model file (default: $POCKET_MODEL, else the embedded default "
                        "model installed with pocket)");
}

CLI::Option* AddModelOption(CLI::App& app, std::vector<std::string>* models) {
  return app.add_option("-m,--model", *models,
                        "GGUF model file, repeatable (default: $POCKET_MODEL, else the "
                        "embedded default model installed with pocket)");
}

CLI::Option* AddThreadsOption(CLI::App& app, int* threads) {
  // 0 keeps its documented meaning (all cores; llama.cpp reads any value <= 0 so), and
  // scripts pass it; negative counts are rejected rather than silently read as 0.
  return app.add_option("-t,--threads", *threads, "compute threads (0 = all cores)")
      ->check(InRange(0, 1024))
      ->capture_default_str();
}

CLI::Option* AddCtxSizeOption(CLI::App& app, int* ctx_size, const std::string& help, int min,
                              const std::string& aliases) {
  return app.add_option(WithAliases("-c,--ctx-size", aliases), *ctx_size, help)
      ->check(InRange(min, 1 << 20))
      ->capture_default_str()
      ->each([](const std::string& v) { Settings().ctx_size = std::atoi(v.c_str()); });
}

CLI::Option* AddNPredictOption(CLI::App& app, int* n_predict, const std::string& aliases,
                               bool allow_zero) {
  // -1 is llama.cpp's "no limit" (until end of generation or a full context); other
  // negatives are mistakes.
  const std::string valid =
      allow_zero ? "-1 (no limit) or 0 to 1073741824" : "-1 (no limit) or 1 to 1073741824";
  CLI::Option* opt =
      app.add_option(WithAliases("-n,--n-predict", aliases), *n_predict,
                     "tokens to generate (-1 = until end of generation or a full context)")
          ->check(InRange(-1, 1 << 30, valid))
          ->capture_default_str();
  if (!allow_zero) {
    opt->check(CLI::Validator(
        [valid](std::string& input) -> std::string {
          return input == "0" ? input + " is out of range (valid: " + valid + ")" : "";
        },
        valid));
  }
  return opt;
}

CLI::Option* AddTempOption(CLI::App& app, float* temp, const std::string& aliases) {
  // llama.cpp's sampler takes any temperature; nothing useful lies past 10.
  return app.add_option(WithAliases("--temp", aliases), *temp, "temperature (0 = greedy)")
      ->check(InRange(0, 10))
      ->capture_default_str();
}

CLI::Option* AddSeedOption(CLI::App& app, int64_t* seed) {
  return app
      .add_option("-s,--seed", *seed, "RNG seed; the same seed gives the same output (-1 = random)")
      ->check(InRange(-1, static_cast<double>(INT64_MAX), "-1 (random) or 0 and up"))
      ->capture_default_str();
}

CLI::Option* AddTopKOption(CLI::App& app, int* top_k) {
  return app.add_option("--top-k", *top_k, "top-k sampling (0 = off)")
      ->check(InRange(0, 1 << 24))
      ->capture_default_str();
}

CLI::Option* AddTopPOption(CLI::App& app, float* top_p) {
  return app.add_option("--top-p", *top_p, "top-p sampling (1.0 = off)")
      ->check(InRange(0, 1))
      ->capture_default_str();
}

CLI::Option* AddMinPOption(CLI::App& app, float* min_p) {
  return app.add_option("--min-p", *min_p, "min-p sampling (0.0 = off)")
      ->check(InRange(0, 1))
      ->capture_default_str();
}

void AddNotApplicable(CLI::App& app, const std::string& names, const std::string& reason) {
  // One hidden option per name: CLI11 does not name a hidden option in its error, so the
  // message does.
  std::stringstream list(names);
  std::string name;
  while (std::getline(list, name, ',')) {
    const std::string message = name + " does not apply to " + app.get_name() + ": " + reason;
    app.add_option(name, "")->group("")->check(
        CLI::Validator([message](std::string&) { return message; }, ""));
  }
}

void SetExamples(CLI::App& app, const std::vector<std::string>& lines) {
  std::string text = "Examples:";
  for (const std::string& line : lines) text += "\n  " + line;
  app.footer(text + "\n");
}

void AddModelFlags(CLI::App& app, ModelFlags* flags, bool with_ctx, bool with_template) {
  AddModelOption(app, &flags->model);
  AddThreadsOption(app, &flags->threads);
  if (with_ctx) {
    AddCtxSizeOption(app, &flags->ctx_size,
                     "context size in tokens (0 = the model's, capped at 4096)", 0);
  }
  if (with_template) {
    app.add_option("--chat-template", flags->chat_template,
                   "chat template to use instead of the model's: a builtin name (chatml, "
                   "llama3, ...) or Jinja source");
  }
  app.add_flag("--no-repack", flags->no_repack,
               "read every weight in place from the file instead of re-laying Q4_0/Q8_0 (and "
               "Q4_1/Q5_0/Q5_1/IQ4_NL/Q4_K/Q6_K) matrices out for the CPU kernels at load "
               "(slower generation)");
  app.add_option("--backend", flags->backend,
                 "what runs the model: cpu (the SIMD kernels) or reference (plain loops, "
                 "slow: the oracle the kernels are checked against)")
      ->check(CLI::IsMember({"cpu", "reference"}))
      ->capture_default_str();
  app.add_flag("-v,--verbose", flags->verbose, "print load and timing details to stderr");
  AddVariantOptions(app, &flags->prefer, &flags->variant);
}

void AddVariantOptions(CLI::App& app, std::string* prefer, std::string* variant) {
  app.add_option("--prefer", *prefer,
                 "when MODEL is a stored index of variants: quality (the largest variant that "
                 "fits this machine's memory and CPU) or speed (the smallest)")
      ->check(CLI::IsMember({"quality", "speed"}))
      ->capture_default_str()
      ->each([](const std::string& v) { Settings().prefer = v; });
  app.add_option("--variant", *variant,
                 "when MODEL is an index of variants: take this one (a quantization such as "
                 "Q4_0, or a sha256: digest) instead of choosing")
      ->each([](const std::string& v) { Settings().pick = v; });
}

registry::MemoryNeedFn MemoryNeedAt(int ctx_size) {
  return [ctx_size](const registry::Variant& v) -> std::optional<uint64_t> {
    if (!v.shape || v.weight_bytes == 0) {
      if (v.min_memory_bytes > 0) return v.min_memory_bytes;
      return std::nullopt;
    }
    model::LlamaConfig c;
    c.context_length = v.shape->context_length;
    c.d_ff = v.shape->d_ff;
    c.d_model = v.shape->d_model;
    c.head_dim = v.shape->head_dim;
    c.num_heads = v.shape->heads;
    c.num_kv_heads = v.shape->kv_heads;
    c.num_layers = v.shape->layers;
    c.vocab_size = v.shape->vocab;
    runtime::MemoryOptions opts;
    opts.context_length = ctx_size;
    return runtime::EstimateMemory(c, v.weight_bytes, opts).total();
  };
}

Result<registry::VariantRequest> VariantRequestFor(const std::string& prefer,
                                                   const std::string& pick, int ctx_size) {
  registry::VariantRequest request;
  PK_ASSIGN_OR_RETURN(request.facts, registry::ReadMachineFacts());
  PK_ASSIGN_OR_RETURN(request.prefer, registry::ParsePrefer(prefer));
  request.pick = pick;
  request.memory_need = MemoryNeedAt(ctx_size);
  return request;
}

void InstallVariantPolicy() {
  registry::VariantPolicy policy;
  policy.request = [] {
    const VariantSettings& s = Settings();
    return VariantRequestFor(s.prefer, s.pick, s.ctx_size);
  };
  policy.on_choice = [](const std::string& line) {
    static std::set<std::string> printed;  // the rule may resolve one argument twice
    if (printed.insert(line).second) std::fprintf(stderr, "pocket: %s\n", line.c_str());
  };
  registry::SetVariantPolicy(std::move(policy));
}

void AddSamplingFlags(CLI::App& app, SamplingFlags* flags) {
  auto& p = flags->params;
  AddNPredictOption(app, &flags->n_predict);
  // The ranges llama.cpp's sampler accepts (a penalty past 10 is allowed there too, but
  // nothing useful lies beyond these bounds).
  AddTempOption(app, &p.temperature);
  AddTopKOption(app, &p.top_k);
  AddTopPOption(app, &p.top_p);
  AddMinPOption(app, &p.min_p);
  app.add_option("--repeat-penalty", p.repeat_penalty, "repetition penalty (1.0 = off)")
      ->check(InRange(0, 100))
      ->capture_default_str();
  app.add_option("--repeat-last-n", p.repeat_last_n,
                 "last n tokens the repetition penalty looks at (0 = off, -1 = all)")
      ->check(InRange(-1, 1 << 30, "-1 (all) or 0 to 1073741824"))
      ->capture_default_str();
  AddSeedOption(app, &flags->seed);
  app.add_option("--stop,-r,--reverse-prompt", flags->stop,
                 "stop generating before this text (repeatable)")
      ->allow_extra_args(false);
}

bool LooksLikeModel(const std::string& arg) {
  if (arg.size() >= 5) {
    std::string ext = arg.substr(arg.size() - 5);
    for (char& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (ext == ".gguf") return true;
  }
  std::error_code ec;
  if (arg.empty() || arg.size() > 4096) return false;
  if (!std::filesystem::exists(arg, ec)) {  // NAME:TAG; an index even when no variant fits
    if (registry::ResolveModelPath(arg).ok()) return true;
    auto ref = registry::ParseModelRef(arg);
    auto root = registry::DefaultStoreRoot();
    if (!ref.ok() || !root.ok()) return false;
    auto entry = registry::Store(*root).Find(*ref);
    return entry.ok() && entry->is_index;  // TakeModel then says why it cannot run
  }
  if (!std::filesystem::is_regular_file(arg, ec)) return false;
  std::ifstream in(arg, std::ios::binary);
  char magic[4] = {};
  return in.read(magic, 4) && std::string_view(magic, 4) == "GGUF";
}

Result<std::string> TakeModel(const std::string& command, const std::string& model_flag,
                              std::vector<std::string>* positionals, size_t max_rest) {
  std::string model = model_flag;
  if (model.empty() && !positionals->empty() &&
      (LooksLikeModel(positionals->front()) || positionals->size() > max_rest)) {
    model = positionals->front();
    positionals->erase(positionals->begin());
  }
  if (positionals->size() > max_rest) {
    return Status::InvalidArgument("too many arguments (see `pocket " + command + " --help`)");
  }
  if (model.empty()) return DefaultModelPath();
  return registry::ResolveModelPath(model);  // a path, else NAME[:TAG] in the store
}

Result<std::shared_ptr<runtime::Engine>> LoadEngine(const std::string& model_path,
                                                    const ModelFlags& flags) {
  std::error_code ec;
  if (!std::filesystem::exists(model_path, ec)) {
    return Status::NotFound("model file '" + model_path + "' does not exist");
  }
  runtime::EngineOptions opts;
  opts.threads = flags.threads;
  opts.context_length = flags.ctx_size;
  opts.repack = !flags.no_repack;
  opts.backend = flags.backend;
  opts.lora_adapters = flags.lora;
  PK_ASSIGN_OR_RETURN(auto engine, runtime::Engine::Load(model_path, opts));
  if (!flags.chat_template.empty()) {
    PK_RETURN_IF_ERROR(engine->SetChatTemplate(flags.chat_template));
  }
  return engine;
}

Result<std::string> ReadStdin() {
  std::string text;
  char buf[1 << 16];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), stdin)) > 0) text.append(buf, n);
  if (std::ferror(stdin)) return Status::IOError("cannot read stdin");
  return text;
}

}  // namespace pocket::cli
