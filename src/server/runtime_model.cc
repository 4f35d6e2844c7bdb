#include "server/runtime_model.h"

#include <algorithm>
#include <filesystem>
#include <thread>

#include "base/memory.h"
#include "formats/gguf.h"
#include "model/config.h"
#include "model/kv_cache.h"
#include "runtime/scheduler.h"

namespace pocket::server {
namespace {

constexpr int kDefaultContextCap = 4096;  // runtime::Engine's default cap

class RuntimeModel : public Model {
 public:
  RuntimeModel(std::string id, std::shared_ptr<runtime::Engine> engine,
               runtime::SchedulerOptions options)
      : id_(std::move(id)), engine_(engine), scheduler_(std::move(engine), options) {}
  const std::string& id() const override { return id_; }
  int context_length() const override { return engine_->context_length(); }
  Result<int> CountPromptTokens(const runtime::GenerateRequest& request) const override {
    PK_ASSIGN_OR_RETURN(auto tokens, scheduler_.Tokenize(request));
    return static_cast<int>(tokens.size());
  }
  Result<runtime::GenerateResult> Generate(const runtime::GenerateRequest& request,
                                           const std::function<bool(std::string_view)>& on_text,
                                           GenerationStats* stats) override {
    runtime::SchedulerStats s;
    auto r = scheduler_.Generate(request, on_text, &s);
    if (stats) stats->queue_wait_s = s.queue_wait_s;
    return r;
  }
  Result<std::vector<float>> Embed(std::string_view text, int* tokens) override {
    return scheduler_.Embed(text, tokens);
  }
  uint64_t kv_cache_bytes() const override { return scheduler_.kv_cache_used_bytes(); }
  uint64_t decode_steps_total() const override { return scheduler_.decode_steps_total(); }
  double decode_step_seconds_total() const override {
    return scheduler_.decode_step_seconds_total();
  }

 private:
  std::string id_;
  std::shared_ptr<runtime::Engine> engine_;
  mutable runtime::Scheduler scheduler_;
};

std::string MiB(uint64_t b) { return std::to_string((b + (1 << 20) - 1) >> 20) + " MiB"; }

}  // namespace

Result<MemoryEstimate> EstimateModelMemory(const std::string& path, int context_length,
                                           int max_sequences, int threads) {
  PK_ASSIGN_OR_RETURN(formats::GgufFile gguf, formats::GgufFile::Open(path));
  auto config = model::LlamaConfig::FromGguf(gguf);
  if (!config.ok()) return config.status().WithContext(path);
  MemoryEstimate e;
  e.context_length = context_length > 0 ? context_length
                                        : std::min(config->context_length, kDefaultContextCap);
  e.weights_bytes = gguf.file_size();
  e.kv_cache_bytes = model::KvCache::BytesFor(config->num_layers, config->kv_dim(),
                                              e.context_length, tensor::DType::kF16) *
                     static_cast<uint64_t>(std::max(1, max_sequences));
  // Activation workspaces (model::LoadOptions::max_batch_tokens = 128) plus one logit row
  // per sequence, twice for the scheduler's copy; the int8 activations of the widest
  // matmul input (1.125 bytes per value), and per thread the AMX kernels' re-laid-out
  // activations (1.25 bytes per value, kernels/cpu/amx.cc).
  const uint64_t widest = static_cast<uint64_t>(std::max(config->d_model, config->d_ff));
  const uint64_t pool = threads > 0 ? static_cast<uint64_t>(threads)
                                    : std::max(1u, std::thread::hardware_concurrency());
  e.compute_bytes = 128ull * (6ull * config->d_model + 2ull * config->d_ff) * 4ull +
                    2ull * static_cast<uint64_t>(config->vocab_size) * 4ull *
                        static_cast<uint64_t>(std::max(1, max_sequences)) +
                    128ull * widest * 9 / 8 + pool * 128ull * widest * 5 / 4;
  e.available_bytes = AvailableMemoryBytes();
  return e;
}

Result<std::shared_ptr<Model>> LoadRuntimeModel(const std::string& path, int threads,
                                                int context_length, int max_sequences) {
  PK_ASSIGN_OR_RETURN(MemoryEstimate e, EstimateModelMemory(path, context_length, max_sequences, threads));
  if (e.available_bytes > 0 && e.total() > e.available_bytes) {
    return Status::ResourceExhausted(
        "'" + path + "' needs about " + MiB(e.total()) + " (weights " + MiB(e.weights_bytes) +
        " + KV cache " + MiB(e.kv_cache_bytes) + " for " + std::to_string(max_sequences) +
        " sequences of " + std::to_string(e.context_length) + " tokens + compute " +
        MiB(e.compute_bytes) + ") but only " + MiB(e.available_bytes) +
        " is available; lower --context or --max-active");
  }
  runtime::EngineOptions opts;
  opts.threads = threads;
  opts.context_length = context_length;
  PK_ASSIGN_OR_RETURN(std::shared_ptr<runtime::Engine> engine, runtime::Engine::Load(path, opts));
  std::filesystem::path p(path);
  std::string id = p.extension() == ".gguf" ? p.stem().string() : p.filename().string();
  runtime::SchedulerOptions so;
  so.max_sequences = max_sequences;
  return std::shared_ptr<Model>(std::make_shared<RuntimeModel>(std::move(id), std::move(engine), so));
}

}  // namespace pocket::server
