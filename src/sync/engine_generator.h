// EngineGenerator: the agent's Generator backed by the local model (runtime::Engine).
// The request goes through the model's chat template as a user message (plain prompt when
// the model has no template). Thread safety: Generate() from one thread at a time.
#pragma once

#include <memory>
#include <string>

#include "base/status.h"
#include "sync/agent.h"

namespace pocket::sync {

struct EngineGeneratorOptions {
  std::string model_path;
  int max_tokens = 128;
  float temperature = 0.7f;  // 0: greedy (deterministic)
  int64_t seed = -1;         // -1: random
  int threads = 0;
  int context_length = 0;  // 0: the model's, capped at runtime::kDefaultContextCap
};

class EngineGenerator : public Generator {
 public:
  // NotFound / Corruption / ... from the loader, naming the model path.
  static Result<std::shared_ptr<EngineGenerator>> Load(const EngineGeneratorOptions& options);
  ~EngineGenerator() override;
  std::string name() const override;
  Status Generate(const std::string& request,
                  const std::function<bool(std::string_view)>& on_text) override;

  struct State;

 private:
  explicit EngineGenerator(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

}  // namespace pocket::sync
