// Internal to src/runtime: one sequence's request, driven one forward pass at a time. The ONE
// generation path: Session (a single sequence that runs its own forward passes, for the step
// API and Generate) and Scheduler (many sequences batched into one forward pass) both drive a
// Sequence the same way:
//
//   seq.Begin(eng, req, prompt, on_text, t0);          // prompt-cache reuse, cache creation
//   while (seq.active()) {
//     model::BatchEntry e = seq.NextEntry(chunk);      // a prompt chunk or the decode token
//     ... forward e (alone or in a batch), take its last-position logits row
//     PK_ASSIGN_OR_RETURN(bool more, seq.Advance(row));  // sample, stream, end?
//   }
//   GenerateResult r = seq.TakeResult();
//
// The KV cache and the tokens it holds outlive a request: the next Begin reuses their longest
// common prefix with its prompt (the prompt cache). Per-token rules (stop strings, JSON,
// max_tokens, the context's end) are Generation's (generation.h). Thread safety: none; one
// thread drives a Sequence at a time. Not movable while active (Generation refers to the
// request the Sequence holds).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "model/kv_cache.h"
#include "model/llama.h"
#include "runtime/engine.h"
#include "runtime/generation.h"

namespace pocket::runtime {

class EngineImpl;

class Sequence {
 public:
  Sequence() = default;
  Sequence(const Sequence &) = delete;
  Sequence &operator=(const Sequence &) = delete;

  // Longest common prefix of `prompt` with the tokens the cache holds (for
  // choosing a slot).
  size_t CommonPrefix(std::span<const int32_t> prompt) const;

  // Starts `req` whose tokens are `prompt` (TokenizeRequest). Reuses the cached
  // prefix (all but at least the last prompt token, which is evaluated again
  // for logits) and makes the cache of eng.context_length entries on first use.
  // `t_start_ns` is when the request's clock started (prompt_ms counts from
  // it). ResourceExhausted when the cache cannot be made; the sequence stays
  // idle then. REQUIRES: !active(); prompt non-empty and shorter than
  // eng.context_length.
  Status Begin(EngineImpl &eng, const GenerateRequest &req, std::vector<int32_t> prompt,
               std::function<bool(std::string_view)> on_text, uint64_t t_start_ns);

  bool active() const { return gen_.has_value() && !ended_; }
  // True while prompt tokens remain to be evaluated.
  bool prefilling() const { return prompt_pos_ < prompt_.size(); }

  // The tokens of the next forward pass: up to `max_prefill_tokens` (0: no
  // bound) prompt tokens while prefilling, else the last sampled token. The
  // span points into *this and stays valid until Advance. REQUIRES: active().
  model::BatchEntry NextEntry(size_t max_prefill_tokens);

  // After the forward pass of NextEntry's tokens: `row` is the vocabulary's
  // logits at the sequence's last position (ignored while the prompt is still
  // incomplete). Samples and streams one token once the prompt is in. True:
  // call NextEntry again; false: the request has ended and TakeResult() is
  // final. An error (JSON mode with no acceptable token) also ends the request;
  // the cache stays consistent.
  Result<bool> Advance(std::span<const float> row);

  // Ends the active request now with finish_reason "cancelled" (held-back text
  // dropped, as when on_text declines). The cache keeps what was evaluated.
  // No-op when idle.
  void Cancel();

  // The forward pass failed, so the cache contents are unknown: forgets them
  // and ends the request.
  void Forget();

  // The ended request's result with prompt_tokens, reused_prompt_tokens and
  // timings filled in. REQUIRES: a request was begun; the sequence is idle
  // afterwards.
  GenerateResult TakeResult();

  // Prompt tokens whose KV entries the last Begin reused.
  size_t reused() const { return reused_; }
  std::span<const int32_t> tokens() const { return tokens_; }
  const model::KvCache *cache() const { return cache_ ? &*cache_ : nullptr; }

 private:
  void Finish();  // marks the request ended and stops its clock

  std::optional<model::KvCache> cache_;  // made on first use (creation can fail)
  std::vector<int32_t> tokens_;          // exactly what the cache holds, position by position
  GenerateRequest req_;                  // Generation refers to it
  std::vector<int32_t> prompt_;
  size_t prompt_pos_ = 0;       // next prompt token to evaluate
  size_t pending_prefill_ = 0;  // prompt tokens handed out by NextEntry
  size_t reused_ = 0;
  std::optional<Generation> gen_;
  bool ended_ = false;
  int32_t next_token_ = -1;
  uint64_t t_start_ = 0, t_gen_ = 0;
};

}  // namespace pocket::runtime
