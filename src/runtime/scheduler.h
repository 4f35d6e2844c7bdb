// Continuous batching: many concurrent generation requests share one model. A single
// scheduler thread owns the model's forward pass; every step it admits waiting requests
// into free slots (between steps, never mid-step), then runs ONE batched Forward in which
// each active sequence contributes either its next chunk of prompt (chunked prefill) or its
// one newly sampled token. Each slot keeps its KV cache and the tokens in it after a
// request ends, so a later request whose prompt shares a prefix with a slot's tokens (a
// chat's earlier turns) reuses those KV entries and only evaluates the rest (prompt cache).
// Batch invariance: LlamaModel::Forward gives each sequence bit-identical logits whether it
// runs alone, batched, or after a reused prefix; sampling is per request (own Sampler and
// seed), so a request with a fixed seed produces the same tokens in every case.
// Cancellation: when on_text returns false the request ends at once ("cancelled") and its
// slot is free for the next step.
// Each slot's request is a runtime Sequence (sequence.h), the same prefill/sample/stream
// path Session's step API runs; the scheduler only batches their forward passes.
// Who calls: server::RuntimeModel (`pocket serve`). Written by the server engineer on the
// runtime's Engine/EngineImpl, model::LlamaModel and sampling. Thread safety: Generate,
// CountPromptTokens, Embed and the getters are safe from any thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "base/status.h"
#include "runtime/engine.h"

namespace pocket::runtime {

struct SchedulerOptions {
  int max_sequences = 8;   // slots: sequences generating at once
  int prefill_chunk = 256; // prompt tokens one sequence contributes per step
};

struct SchedulerStats {
  double queue_wait_s = 0;       // from Generate() until the request got a slot
  int reused_prompt_tokens = 0;  // prompt tokens whose KV entries came from the slot's cache
};

class Scheduler {
 public:
  // REQUIRES: engine non-null. Starts the scheduler thread.
  Scheduler(std::shared_ptr<Engine> engine, SchedulerOptions options);
  ~Scheduler();  // finishes nothing: waiting and active requests end with Cancelled
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Blocking; on_text runs on the scheduler thread and must be quick (it may return false
  // to cancel). Same contract as Session::Generate otherwise.
  Result<GenerateResult> Generate(const GenerateRequest& request,
                                  const std::function<bool(std::string_view)>& on_text,
                                  SchedulerStats* stats = nullptr);

  // The prompt tokens `request` would have (chat template applied).
  Result<std::vector<int32_t>> Tokenize(const GenerateRequest& request) const;

  // Mean-pooled final hidden state of `text`, L2-normalised; `*tokens` gets its length.
  // Runs between scheduler steps (shares the model's forward lock).
  Result<std::vector<float>> Embed(std::string_view text, int* tokens);

  // Forward passes in which every sequence decoded one token (no prompt chunk), and the
  // time they took: per-token cost of the model itself, for the server's overhead figure.
  uint64_t decode_steps_total() const { return decode_steps_.load(); }
  double decode_step_seconds_total() const { return static_cast<double>(decode_step_ns_.load()) * 1e-9; }
  // Bytes of KV cache reserved by the slots, and the bytes holding tokens now.
  uint64_t kv_cache_reserved_bytes() const { return kv_reserved_bytes_.load(); }
  uint64_t kv_cache_used_bytes() const { return kv_used_bytes_.load(); }
  int active() const;
  int waiting() const;
  const SchedulerOptions& options() const { return options_; }

 private:
  struct Request;
  struct Slot;
  void Loop();
  void Admit();
  void Step();
  void Finish(Slot& slot, Status status);
  void UpdateKvBytes();  // scheduler thread only

  std::shared_ptr<Engine> engine_;
  SchedulerOptions options_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<Request>> waiting_;
  std::vector<std::unique_ptr<Slot>> slots_;
  bool stopping_ = false;
  int active_ = 0;
  std::vector<float> logits_;  // scheduler thread only
  std::atomic<uint64_t> kv_reserved_bytes_{0}, kv_used_bytes_{0};
  std::atomic<uint64_t> decode_steps_{0}, decode_step_ns_{0};
  std::thread thread_;
};

}  // namespace pocket::runtime
