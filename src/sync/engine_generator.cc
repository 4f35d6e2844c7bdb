#include "sync/engine_generator.h"

#include <filesystem>

#include "runtime/engine.h"

namespace pocket::sync {

struct EngineGenerator::State {
  EngineGeneratorOptions options;
  std::shared_ptr<runtime::Engine> engine;
  std::unique_ptr<runtime::Session> session;
};

Result<std::shared_ptr<EngineGenerator>> EngineGenerator::Load(
    const EngineGeneratorOptions& options) {
  runtime::EngineOptions eo;
  eo.threads = options.threads;
  eo.context_length = options.context_length;
  PK_ASSIGN_OR_RETURN(std::shared_ptr<runtime::Engine> engine,
                      runtime::Engine::Load(options.model_path, eo));
  auto state = std::make_unique<State>();
  state->options = options;
  state->session = engine->NewSession();
  state->engine = std::move(engine);
  return std::shared_ptr<EngineGenerator>(new EngineGenerator(std::move(state)));
}

EngineGenerator::EngineGenerator(std::unique_ptr<State> state) : state_(std::move(state)) {}
EngineGenerator::~EngineGenerator() = default;

std::string EngineGenerator::name() const {
  return std::filesystem::path(state_->options.model_path).filename().string();
}

Status EngineGenerator::Generate(const std::string& request,
                                 const std::function<bool(std::string_view)>& on_text) {
  runtime::GenerateRequest req;
  req.max_tokens = state_->options.max_tokens;
  req.sampling.temperature = state_->options.temperature;
  if (state_->options.seed >= 0) req.sampling.seed = static_cast<uint64_t>(state_->options.seed);
  const runtime::ChatMessage message{"user", request};
  if (state_->engine->ApplyChatTemplate(std::span(&message, 1), true).ok()) {
    req.messages = {message};
  } else {
    req.prompt = request;
  }
  // Each request is its own conversation: nothing of an earlier answer leaks in.
  state_->session->Reset();
  PK_ASSIGN_OR_RETURN(runtime::GenerateResult result, state_->session->Generate(req, on_text));
  (void)result;
  return Status::Ok();
}

}  // namespace pocket::sync
