// Engine (load, tokenizer, chat template) and Session: the step API over one Sequence
// (sequence.h), and Generate as the loop over it.
#include "runtime/engine.h"

#include <algorithm>
#include <atomic>
#include <thread>
#include <utility>

#include "base/clock.h"
#include "model/kv_cache.h"
#include "model/lora_file.h"
#include "runtime/engine_impl.h"
#include "runtime/generation.h"
#include "runtime/json_constraint.h"
#include "runtime/memory_estimate.h"
#include "runtime/sequence.h"

namespace pocket::runtime {

EngineImpl& ImplOf(const Engine& engine) { return *engine.impl_; }

struct Session::State {
  std::shared_ptr<Engine> engine;
  Sequence seq;                // the cache, what it holds, and the running request
  size_t prefill_chunk = 0;    // StepOptions::prefill_chunk of the running request
  std::string step_text;       // what the running Step() emitted
  std::vector<float> logits;   // reused by every Step
  std::atomic<bool> cancel{false};
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
  // The one opening of the file: the model maps it; the context and the memory check come
  // from its header before any weight is bound; the tokenizer and the chat template read
  // the same mapping (model->gguf()).
  lo.before_bind = [&](const model::LlamaConfig& config, uint64_t file_bytes) -> Status {
    const int model_ctx = config.context_length;
    impl->context_length = ResolveContextLength(config, opts.context_length);
    // The memory check comes first, as when the server made its estimate before loading:
    // a context that is both too large for memory and over the model's is reported as the
    // memory it would take.
    if (opts.check_memory) {
      MemoryOptions mo;
      mo.context_length = impl->context_length;
      mo.batch = opts.max_sequences;
      mo.threads = opts.threads;
      mo.backend = lo.backend;
      // The whole file: the mapping also holds the metadata and the vocabulary.
      PK_RETURN_IF_ERROR(opts.check_memory(EstimateMemory(config, file_bytes, mo)));
    }
    if (opts.context_length > model_ctx) {
      return Status::InvalidArgument("context size " + std::to_string(opts.context_length) +
                                     " exceeds the model's " + std::to_string(model_ctx) +
                                     " (" + gguf_path + ")");
    }
    return Status::Ok();
  };
  PK_ASSIGN_OR_RETURN(impl->model, model::LlamaModel::Load(gguf_path, lo));
  // The context and the memory check come only from before_bind: a loader that skipped it
  // would leave an engine that cannot generate.
  if (impl->context_length <= 0) {
    return Status::Internal(gguf_path + ": the model loader did not report its header");
  }
  for (const std::string& adapter : opts.lora_adapters) {
    PK_RETURN_IF_ERROR(model::AttachLoraFile(*impl->model, adapter));
  }
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

Result<std::vector<int32_t>> Engine::TokenizePrompt(const GenerateRequest& request) const {
  return TokenizeRequest(*this, request);
}

Session::Session(std::unique_ptr<State> state) : state_(std::move(state)) {}
Session::~Session() = default;

void Session::Reset() {
  if (state_->seq.active()) {
    state_->seq.Cancel();
    (void)state_->seq.TakeResult();
  }
  state_->seq.Forget();
}

std::span<const int32_t> Session::cached_tokens() const { return state_->seq.tokens(); }

bool Session::running() const { return state_->seq.active(); }

void Session::Cancel() { state_->cancel.store(true, std::memory_order_relaxed); }

Status Session::Start(const GenerateRequest& req, const StepOptions& opts) {
  return StartWith(req, opts, nullptr);
}

Status Session::StartWith(const GenerateRequest& req, const StepOptions& opts,
                          std::function<bool(std::string_view)> on_text) {
  State& st = *state_;
  if (st.seq.active()) {
    return Status::InvalidArgument(
        "generate: this session is still running a request (Step it to the end or Cancel it)");
  }
  if (opts.prefill_chunk < 0) {
    return Status::InvalidArgument("generate: prefill_chunk must be >= 0");
  }
  EngineImpl& eng = ImplOf(*st.engine);
  const uint64_t t_start = MonotonicNs();  // prompt_ms includes tokenization, as it always has
  PK_ASSIGN_OR_RETURN(std::vector<int32_t> prompt, TokenizeRequest(*st.engine, req));
  const int ctx = eng.context_length;
  if (prompt.size() >= static_cast<size_t>(ctx)) {
    return Status::InvalidArgument("generate: the prompt is " + std::to_string(prompt.size()) +
                                   " tokens; the context holds " + std::to_string(ctx) +
                                   " (raise -c/--ctx-size or shorten the prompt)");
  }
  // Built here (once per engine) rather than inside a Step, which must stay one forward pass.
  if (req.response_format == ResponseFormat::kJsonObject) (void)eng.json_tokens();
  st.step_text.clear();
  State* state = &st;
  auto sink = [state, on_text = std::move(on_text)](std::string_view text) {
    state->step_text.append(text);
    return on_text ? on_text(text) : true;
  };
  PK_RETURN_IF_ERROR(st.seq.Begin(eng, req, std::move(prompt), std::move(sink), t_start));
  st.prefill_chunk = static_cast<size_t>(opts.prefill_chunk);
  st.cancel.store(false, std::memory_order_relaxed);
  return Status::Ok();
}

Result<StepResult> Session::Step() {
  State& st = *state_;
  if (!st.seq.active()) {
    return Status::InvalidArgument("generate: no request is running (Start one first)");
  }
  EngineImpl& eng = ImplOf(*st.engine);
  StepResult out;
  st.step_text.clear();
  if (st.cancel.exchange(false, std::memory_order_relaxed)) {
    st.seq.Cancel();
  } else {
    model::BatchEntry entry = st.seq.NextEntry(st.prefill_chunk);
    if (st.seq.prefilling()) out.prompt_tokens_evaluated = static_cast<int>(entry.tokens.size());
    if (Status s = eng.Forward(std::span<model::BatchEntry>(&entry, 1), &st.logits); !s.ok()) {
      st.seq.Forget();  // the cache's contents are unknown now
      (void)st.seq.TakeResult();
      return s;
    }
    const size_t vocab = static_cast<size_t>(eng.model->config().vocab_size);
    if (Result<bool> more = st.seq.Advance(std::span<const float>(st.logits).first(vocab));
        !more.ok()) {
      (void)st.seq.TakeResult();
      return more.status();
    }
  }
  out.text = std::move(st.step_text);
  st.step_text.clear();
  if (!st.seq.active()) {
    out.done = true;
    out.result = st.seq.TakeResult();
  }
  return out;
}

Result<GenerateResult> Session::Generate(const GenerateRequest& req,
                                         const std::function<bool(std::string_view)>& on_text) {
  StepOptions opts;
  opts.prefill_chunk = 0;  // the whole prompt in one forward pass
  PK_RETURN_IF_ERROR(StartWith(req, opts, on_text));
  for (;;) {
    PK_ASSIGN_OR_RETURN(StepResult step, Step());
    if (step.done) return std::move(step.result);
  }
}

}  // namespace pocket::runtime
