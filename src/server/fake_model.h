// FakeModel: a deterministic stand-in for a language model, for tests of the HTTP,
// streaming, routing and error paths without loading weights (the router's "cloud" in
// tests is a second `pocket serve --fake-model`). Tokens are bytes of the prompt (the chat
// messages rendered as "role: content\n"); the output is words drawn from a fixed list by
// runtime::Rng seeded from (seed, prompt) — same request and seed, same text, alone or
// concurrently; in JSON mode (response_format json_object) the output is a small object of
// such words instead. `token_delay_ms` simulates decode time. Embeddings hash byte trigrams
// into 64 dimensions, normalised. Thread safety: fully thread-safe, no shared state.
#pragma once

#include <string>

#include "server/model.h"

namespace pocket::server {

class FakeModel : public Model {
 public:
  FakeModel(std::string id, int context_length, int token_delay_ms)
      : id_(std::move(id)), context_length_(context_length), token_delay_ms_(token_delay_ms) {}
  const std::string& id() const override { return id_; }
  int context_length() const override { return context_length_; }
  Result<int> CountPromptTokens(const runtime::GenerateRequest& request) const override;
  Result<runtime::GenerateResult> Generate(const runtime::GenerateRequest& request,
                                           const std::function<bool(std::string_view)>& on_text,
                                           GenerationStats* stats) override;
  Result<std::vector<float>> Embed(std::string_view text, int* tokens) override;

  static std::string RenderPrompt(const runtime::GenerateRequest& request);

 private:
  std::string id_;
  int context_length_;
  int token_delay_ms_;
};

}  // namespace pocket::server
