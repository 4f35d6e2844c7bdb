#include "runtime/engine.h"

#include <algorithm>
#include <thread>

#include "base/clock.h"
#include "formats/gguf.h"
#include "runtime/engine_impl.h"
#include "runtime/generation.h"
#include "runtime/json_constraint.h"
#include "runtime/text_stream.h"

namespace pocket::runtime {
namespace {

constexpr int kDefaultContextCap = 4096;

double MsSince(uint64_t t0_ns) { return static_cast<double>(MonotonicNs() - t0_ns) * 1e-6; }

}  // namespace

struct Session::State {
  std::shared_ptr<Engine> engine;
  std::optional<model::KvCache> cache;  // made on first use (creation can fail)
  std::vector<int32_t> tokens;          // what the cache holds, position by position
};

Engine::Engine(std::unique_ptr<EngineImpl> impl) : impl_(std::move(impl)) {}
Engine::~Engine() = default;

Result<std::shared_ptr<Engine>> Engine::Load(const std::string& gguf_path,
                                             const EngineOptions& opts) {
  if (opts.threads < 0) return Status::InvalidArgument("threads must be >= 0");
  if (opts.context_length < 0) return Status::InvalidArgument("context length must be >= 0");
  auto impl = std::make_unique<EngineImpl>();
  impl->path = gguf_path;
  model::LoadOptions lo;
  lo.threads = opts.threads;
  lo.repack = opts.repack;
  PK_ASSIGN_OR_RETURN(lo.backend, model::ParseBackendKind(opts.backend));
  PK_ASSIGN_OR_RETURN(impl->model, model::LlamaModel::Load(gguf_path, lo));
  auto tok = tokenizer::Tokenizer::FromGguf(impl->model->gguf());
  if (!tok.ok()) return tok.status().WithContext(gguf_path);
  impl->tokenizer = std::make_unique<tokenizer::Tokenizer>(std::move(*tok));
  const auto& config = impl->model->config();
  if (impl->tokenizer->vocab_size() > static_cast<size_t>(config.vocab_size)) {
    return Status::InvalidArgument(gguf_path + ": tokenizer has " +
                                   std::to_string(impl->tokenizer->vocab_size()) +
                                   " tokens but the model's vocabulary is " +
                                   std::to_string(config.vocab_size));
  }
  const int model_ctx = config.context_length;
  if (opts.context_length > model_ctx) {
    return Status::InvalidArgument("context size " + std::to_string(opts.context_length) +
                                   " exceeds the model's " + std::to_string(model_ctx) +
                                   " (" + gguf_path + ")");
  }
  impl->context_length =
      opts.context_length > 0 ? opts.context_length : std::min(model_ctx, kDefaultContextCap);
  PK_RETURN_IF_ERROR(LoadChatTemplate(*impl));
  return std::shared_ptr<Engine>(new Engine(std::move(impl)));
}

std::unique_ptr<Session> Engine::NewSession() {
  auto state = std::make_unique<Session::State>();
  state->engine = shared_from_this();
  return std::unique_ptr<Session>(new Session(std::move(state)));
}

const tokenizer::Tokenizer& Engine::tokenizer() const { return *impl_->tokenizer; }
const model::LlamaConfig& Engine::config() const { return impl_->model->config(); }
int Engine::context_length() const { return impl_->context_length; }
int Engine::threads() const { return impl_->model->threads(); }
uint64_t Engine::weight_bytes() const { return impl_->model->weight_bytes(); }

Session::Session(std::unique_ptr<State> state) : state_(std::move(state)) {}
Session::~Session() = default;

void Session::Reset() {
  state_->tokens.clear();
  if (state_->cache) state_->cache->Clear();
}

std::span<const int32_t> Session::cached_tokens() const { return state_->tokens; }

Result<GenerateResult> Session::Generate(const GenerateRequest& req,
                                         const std::function<bool(std::string_view)>& on_text) {
  EngineImpl& eng = state_->engine->impl();
  const uint64_t t_prompt = MonotonicNs();

  PK_ASSIGN_OR_RETURN(const std::vector<int32_t> prompt, TokenizeRequest(*state_->engine, req));
  const int ctx = eng.context_length;
  if (prompt.size() >= static_cast<size_t>(ctx)) {
    return Status::InvalidArgument("generate: the prompt is " + std::to_string(prompt.size()) +
                                   " tokens; the context holds " + std::to_string(ctx) +
                                   " (raise -c/--ctx-size or shorten the prompt)");
  }
  if (!state_->cache) {
    PK_ASSIGN_OR_RETURN(model::KvCache cache, eng.model->NewKvCache(ctx, kKvDType));
    state_->cache.emplace(std::move(cache));
  }
  model::KvCache& cache = *state_->cache;
  std::vector<int32_t>& cached = state_->tokens;

  // Reuse the longest common prefix; at least the last prompt token is evaluated again so
  // that there are logits to sample from.
  size_t reuse = 0;
  while (reuse < cached.size() && reuse < prompt.size() && cached[reuse] == prompt[reuse]) {
    ++reuse;
  }
  reuse = std::min(reuse, prompt.size() - 1);
  PK_RETURN_IF_ERROR(cache.Truncate(static_cast<int>(reuse)));
  cached.resize(reuse);

  std::vector<float> logits;
  {
    model::BatchEntry entry;
    entry.cache = &cache;
    entry.tokens = std::span<const int32_t>(prompt).subspan(reuse);
    entry.start_pos = static_cast<int>(reuse);
    Status s = eng.Forward(std::span<model::BatchEntry>(&entry, 1), &logits);
    if (!s.ok()) {
      cache.Clear();
      cached.clear();
      return s;
    }
    cached = prompt;
  }

  const double prompt_ms = MsSince(t_prompt);
  const uint64_t t_gen = MonotonicNs();
  Generation gen(eng, req, prompt, on_text);
  const size_t vocab = static_cast<size_t>(eng.model->config().vocab_size);
  int32_t next;
  for (;;) {
    PK_ASSIGN_OR_RETURN(const bool more,
                        gen.Step(std::span<const float>(logits).first(vocab), cached.size(), &next));
    if (!more) break;
    model::BatchEntry entry;
    entry.cache = &cache;
    entry.tokens = std::span<const int32_t>(&next, 1);
    entry.start_pos = static_cast<int>(cached.size());
    Status s = eng.Forward(std::span<model::BatchEntry>(&entry, 1), &logits);
    if (!s.ok()) {
      cache.Clear();
      cached.clear();
      return s;
    }
    cached.push_back(next);
  }
  GenerateResult result = std::move(gen.result());
  result.prompt_tokens = static_cast<int>(prompt.size());
  result.reused_prompt_tokens = static_cast<int>(reuse);
  result.prompt_ms = prompt_ms;
  result.generate_ms = MsSince(t_gen);
  return result;
}

}  // namespace pocket::runtime
