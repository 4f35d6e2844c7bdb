// What the server needs from a local model, so the HTTP layer can be tested without
// one: generation with streaming and cancellation, prompt token counts (to refuse a
// prompt over the context before queueing it), embeddings, and memory figures.
// Implementations: RuntimeModel (runtime::Engine; the real thing) and FakeModel (a
// deterministic stand-in for tests of the HTTP/router layers, `pocket serve --fake-model`).
// Thread safety: every method may be called from many threads at once; an implementation
// serialises or batches internally.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "runtime/engine.h"

namespace pocket::server {

struct GenerationStats {
  double queue_wait_s = 0;  // from Generate() until the model started on this request
};

class Model {
 public:
  virtual ~Model() = default;
  virtual const std::string& id() const = 0;
  virtual int context_length() const = 0;
  // Sequences the model generates at once (its scheduler's slots); 0: no limit of its own.
  // Server::Create refuses --max-active above it, so that the server's admission queue is
  // the only queue a request waits in (docs/server.md, "Admission").
  virtual int max_sequences() const { return 0; }
  // Tokens of the prompt this request would evaluate (chat template applied). Truncation
  // counts candidate requests with it.
  virtual Result<int> CountPromptTokens(const runtime::GenerateRequest& request) const = 0;
  // The one templating and tokenization of a request the server serves: returns its token
  // count and, for a model that tokenizes (RuntimeModel), stores the ids in
  // request->prompt_tokens, which Generate then evaluates as they are. Default (models
  // without ids, like FakeModel): CountPromptTokens. REQUIRES: request non-null.
  virtual Result<int> PreparePrompt(runtime::GenerateRequest* request) const {
    return CountPromptTokens(*request);
  }
  // Blocking. on_text returns false to cancel. The result's finish_reason is "stop",
  // "length" or "cancelled". InvalidArgument when the prompt does not fit. A request's
  // prompt_tokens, when set, are its prompt (PreparePrompt).
  virtual Result<runtime::GenerateResult> Generate(
      const runtime::GenerateRequest& request,
      const std::function<bool(std::string_view)>& on_text, GenerationStats* stats) = 0;
  // A unit-length embedding of `text` (mean-pooled final hidden state); `*tokens` gets
  // the token count.
  virtual Result<std::vector<float>> Embed(std::string_view text, int* tokens) = 0;
  // Bytes held by KV caches now (0 when unknown).
  virtual uint64_t kv_cache_bytes() const { return 0; }
  // Batched forward passes that only decoded (one token per sequence), and their time.
  virtual uint64_t decode_steps_total() const { return 0; }
  virtual double decode_step_seconds_total() const { return 0; }
};

}  // namespace pocket::server
