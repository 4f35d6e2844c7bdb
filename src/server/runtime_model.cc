#include "server/runtime_model.h"

#include <filesystem>

#include "base/memory.h"
#include "formats/gguf.h"
#include "model/config.h"
#include "runtime/memory_estimate.h"
#include "runtime/scheduler.h"

namespace pocket::server {
namespace {

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
  runtime::MemoryOptions mo;
  mo.context_length = context_length;
  mo.batch = max_sequences;
  mo.threads = threads;
  // The whole file: the mapping also holds the metadata and the vocabulary.
  const runtime::MemoryEstimate r = runtime::EstimateMemory(*config, gguf.file_size(), mo);
  MemoryEstimate e;
  e.context_length = r.context_length;
  e.weights_bytes = r.weights_bytes;
  e.kv_cache_bytes = r.kv_cache_bytes;
  e.compute_bytes = r.compute_bytes();
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
