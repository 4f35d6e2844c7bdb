// RuntimeModel (server::Model over runtime::Engine and runtime::Scheduler) and its loader,
// which refuses a model whose memory estimate exceeds the memory available.
#include "server/runtime_model.h"

#include <filesystem>

#include "base/memory.h"
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
  int max_sequences() const override { return scheduler_.options().max_sequences; }
  Result<int> CountPromptTokens(const runtime::GenerateRequest& request) const override {
    PK_ASSIGN_OR_RETURN(auto tokens, engine_->TokenizePrompt(request));
    return static_cast<int>(tokens.size());
  }
  Result<int> PreparePrompt(runtime::GenerateRequest* request) const override {
    PK_ASSIGN_OR_RETURN(request->prompt_tokens, engine_->TokenizePrompt(*request));
    return static_cast<int>(request->prompt_tokens.size());
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

Result<std::shared_ptr<Model>> LoadRuntimeModel(const std::string& path, int threads,
                                                int context_length, int max_sequences,
                                                std::string id) {
  runtime::EngineOptions opts;
  opts.threads = threads;
  opts.context_length = context_length;
  opts.max_sequences = max_sequences;
  opts.check_memory = [&](const runtime::MemoryEstimate& e) -> Status {
    const uint64_t available = AvailableMemoryBytes();  // 0 when unknown: no check
    if (available == 0 || e.total() <= available) return Status::Ok();
    return Status::ResourceExhausted(
        "'" + path + "' needs about " + MiB(e.total()) + " (weights " + MiB(e.weights_bytes) +
        " + KV cache " + MiB(e.kv_cache_bytes) + " for " + std::to_string(max_sequences) +
        " sequences of " + std::to_string(e.context_length) + " tokens + compute " +
        MiB(e.compute_bytes()) + ") but only " + MiB(available) +
        " is available; lower --context or --max-active");
  };
  PK_ASSIGN_OR_RETURN(std::shared_ptr<runtime::Engine> engine, runtime::Engine::Load(path, opts));
  std::filesystem::path p(path);
  if (id.empty()) id = p.extension() == ".gguf" ? p.stem().string() : p.filename().string();
  runtime::SchedulerOptions so;
  so.max_sequences = max_sequences;
  return std::shared_ptr<Model>(std::make_shared<RuntimeModel>(std::move(id), std::move(engine), so));
}

}  // namespace pocket::server
