// The generation API every client of the model uses (CLI run/chat, the HTTP server, the
// collaborative-document agent, eval, emulate): Engine owns a loaded model, its tokenizer
// and chat template; Session is one conversation with its own KV cache.
//
//   auto engine = Engine::Load("models/default.gguf", {});          // Result<shared_ptr>
//   auto session = (*engine)->NewSession();
//   GenerateRequest req; req.prompt = "Once upon a time"; req.max_tokens = 32;
//   auto result = session->Generate(req, [](std::string_view text) {
//     fwrite(text.data(), 1, text.size(), stdout);
//     return true;                                                   // false cancels
//   });
//
// The same request driven one step at a time (a browser event loop, an evaluation harness):
// each Step() runs at most one forward pass (a prefill chunk or one decode token) and
// returns, so the caller decides when the next one runs.
//
//   PK_RETURN_IF_ERROR(session->Start(req));                         // tokenize, fit check
//   for (;;) {
//     PK_ASSIGN_OR_RETURN(StepResult step, session->Step());
//     fwrite(step.text.data(), 1, step.text.size(), stdout);
//     if (step.done) return step.result;                           // finish_reason, usage
//     if (user_pressed_stop) session->Cancel();                      // next Step() ends it
//   }
//
// Generate is exactly that loop (with the whole prompt in one step). Both, and the batching
// Scheduler, run one generation path (sequence.h): the same prompt-cache reuse, stop
// strings, JSON constraint and UTF-8 streaming, so stepping by hand gives the same text,
// tokens and usage as Generate.
//
// Thread safety: Engine is immutable after Load() and may be shared by any number of
// threads; NewSession() is thread-safe. Forward passes of different sessions are
// serialised inside the engine (one model, one set of kernel threads). A Session is not
// thread-safe: use each from one thread at a time; only Cancel() may be called from another
// thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "runtime/memory_estimate.h"
#include "runtime/sampling.h"

namespace pocket::tokenizer {
class Tokenizer;
}  // namespace pocket::tokenizer
namespace pocket::model {
struct LlamaConfig;
}  // namespace pocket::model

namespace pocket::runtime {

struct ChatMessage {
  std::string role;  // "system" | "user" | "assistant" (whatever the template knows)
  std::string content;
};

// What the output must be (OpenAI's response_format).
enum class ResponseFormat : uint8_t {
  kText,        // anything the model writes
  kJsonObject,  // one JSON object (json_constraint.h); generation ends when it closes
};

struct GenerateRequest {
  std::string prompt;                 // used when `messages` is empty
  std::vector<ChatMessage> messages;  // non-empty: the chat template is applied
  // Non-empty: the prompt, already templated and tokenized (Engine::TokenizePrompt of this
  // same request), so that a caller that needed the tokens first (the server: counting,
  // routing, truncation) does not have the engine template and tokenize it again; `prompt`,
  // `messages` and `add_special` are then not read. Whoever changes `prompt` or `messages`
  // clears it. InvalidArgument from Generate when an id is outside the vocabulary.
  std::vector<int32_t> prompt_tokens;
  int max_tokens = -1;                // -1: until end of generation or the context is full
  SamplingParams sampling;
  std::vector<std::string> stop;      // generation ends before the first of these
  bool add_special = true;            // BOS (etc.) as the model's tokenizer asks for
  // kJsonObject: only tokens that keep the output a valid prefix of one JSON object are
  // sampled, and finish_reason is "stop" exactly when the object closed (or a stop string
  // matched); "length" leaves a valid but unfinished prefix. Stop strings still apply.
  ResponseFormat response_format = ResponseFormat::kText;
};

struct GenerateResult {
  std::string text;                   // exactly what on_text received, concatenated
  int prompt_tokens = 0;              // tokens of the prompt (all, including reused ones)
  int completion_tokens = 0;
  std::string finish_reason;          // "stop" | "length" | "cancelled"
  double prompt_ms = 0, generate_ms = 0;
  int reused_prompt_tokens = 0;       // prompt tokens whose KV entries were kept from before
  uint64_t seed = 0;                  // the seed used (the random one if none was given)
};

// Options of Session::Start.
struct StepOptions {
  // Prompt tokens one Step() evaluates at most (a prefill chunk); 0: the whole rest of the
  // prompt in one Step. Results are bit-identical for every chunk size (batch invariance
  // of the forward pass); smaller chunks keep each Step short.
  int prefill_chunk = 256;
};

// What one Session::Step() did.
struct StepResult {
  // New text: complete UTF-8 characters only, text that could still become a stop string
  // held back (it comes in a later step, or never when the stop string completes).
  std::string text;
  int prompt_tokens_evaluated = 0;  // prompt tokens this step ran (0: a decode step)
  bool done = false;                // the request has ended; the session is idle again
  // When done: the whole request's result (text = every step's text concatenated,
  // finish_reason, usage, timings; prompt_ms counts from Start). Empty otherwise.
  GenerateResult result;
};

// The context Engine::Load picks when none is asked for: the model's, capped at this.
inline constexpr int kDefaultContextCap = 4096;

struct EngineOptions {
  int threads = 0;         // 0 = all cores (Platform::Default())
  int context_length = 0;  // 0 = the model's, capped at kDefaultContextCap
  bool repack = true;      // model::LoadOptions::repack
  // KV caches that will be live at once (a scheduler's slots; below 1 counts as 1); only
  // sizes the estimate.
  int max_sequences = 1;
  // Called by Load with the estimate once the file's header is read and before the weights
  // are bound and repacked (the bulk of the memory), on the same, single opening of the
  // file; an error stops the load and is returned as it is (the server refuses a model that
  // does not fit this way). Unset: no check.
  std::function<Status(const MemoryEstimate&)> check_memory = nullptr;
  // model::LoadOptions::backend by name (model::ParseBackendKind): "cpu" or "reference"
  // (the plain-loop oracle: slow, same greedy output).
  std::string backend = "cpu";
  // GGUF LoRA adapters (llama.cpp's layout, model/lora_file.h) attached to the model at load,
  // in order, each at scale alpha / rank. An adapter that does not fit the model is an error
  // naming the adapter file.
  std::vector<std::string> lora_adapters;
};

class Session;
class EngineImpl;

class Engine : public std::enable_shared_from_this<Engine> {
 public:
  // Loads the GGUF model and its tokenizer and chat template. The file is opened and mapped
  // once: the model, the tokenizer and the template all read that one mapping. NotFound /
  // IOError / Corruption / NotSupported from the loaders, each naming `gguf_path`;
  // InvalidArgument for a context over the model's; check_memory's error as it is.
  static Result<std::shared_ptr<Engine>> Load(const std::string& gguf_path,
                                              const EngineOptions& opts);
  ~Engine();

  // A fresh conversation with its own KV cache of context_length() entries.
  std::unique_ptr<Session> NewSession();

  const tokenizer::Tokenizer& tokenizer() const;
  const model::LlamaConfig& config() const;
  int context_length() const;
  int threads() const;
  // Bytes of weights a single-token forward pass reads (for roofline figures).
  uint64_t weight_bytes() const;

  // The model's chat template (or the override set with SetChatTemplate) applied to
  // `messages`. InvalidArgument when the template cannot render them.
  Result<std::string> ApplyChatTemplate(std::span<const ChatMessage> messages,
                                        bool add_generation_prompt) const;
  // Replaces the chat template: a builtin name (e.g. "chatml", "llama3") or Jinja source.
  // Call before sharing the engine. InvalidArgument when it cannot be parsed.
  Status SetChatTemplate(const std::string& name_or_jinja);

  // The prompt tokens `request` would evaluate, exactly as Generate would make them: its
  // messages through the chat template (one BOS even when the template writes its own),
  // else its prompt text, special-token text parsed as the special token; its
  // prompt_tokens as they are when set. Hand them back in request.prompt_tokens to skip the
  // second templating and tokenization. InvalidArgument when the template fails or nothing
  // is left. Thread-safe.
  Result<std::vector<int32_t>> TokenizePrompt(const GenerateRequest& request) const;

 private:
  // src/runtime's own code (engine_impl.h) reaches the internals through ImplOf().
  friend EngineImpl& ImplOf(const Engine& engine);
  explicit Engine(std::unique_ptr<EngineImpl> impl);
  std::unique_ptr<EngineImpl> impl_;
};

class Session {
 public:
  ~Session();

  // Generates a continuation of req.prompt (or of req.messages through the chat
  // template). The KV cache is kept across calls: the longest common token prefix with
  // what the cache holds is reused and only the rest of the prompt is evaluated.
  // on_text receives complete UTF-8 chunks as they are produced (never a split sequence,
  // never text of a stop string); returning false cancels (finish_reason "cancelled").
  // InvalidArgument when the prompt does not fit the context or the template fails, or
  // when a request started with Start() is still running.
  // Equivalent to Start(req, {.prefill_chunk = 0}) and Step() until done.
  Result<GenerateResult> Generate(const GenerateRequest& req,
                                  const std::function<bool(std::string_view)>& on_text);

  // Step API. Start() prepares `req` (tokenizes it, applies the chat template, chooses the
  // cached prefix to reuse) without running the model; each Step() then runs at most one
  // forward pass. InvalidArgument when a request is already running, when the prompt does
  // not fit the context (prompt tokens >= context_length) or the template fails;
  // ResourceExhausted when the KV cache cannot be allocated. The session is unchanged then.
  Status Start(const GenerateRequest& req, const StepOptions& opts = {});

  // Runs the next prefill chunk (at most opts.prefill_chunk prompt tokens) or one decode
  // token, samples, and returns the new text; done with the result when the request ended
  // (stop, length, cancelled). InvalidArgument when no request is running. A forward-pass
  // error ends the request and empties the cache; a JSON-mode error ends the request.
  Result<StepResult> Step();

  // Asks the running request to end: the next Step() runs no forward pass and returns done
  // with finish_reason "cancelled" and the usage so far (text held back for a possible stop
  // string is dropped, as when on_text declines). The cache keeps what was evaluated, so a
  // following Start reuses it. Safe from any thread; no effect when no request is running
  // (a Cancel racing with Start may be lost).
  void Cancel();

  // True between Start() and the Step() that returns done.
  bool running() const;

  // Forgets the conversation (ending a running request): the next request starts from an
  // empty cache.
  void Reset();
  // Tokens whose KV entries the cache holds (the prompt and generated tokens so far).
  std::span<const int32_t> cached_tokens() const;

 private:
  friend class Engine;
  struct State;
  explicit Session(std::unique_ptr<State> state);
  Status StartWith(const GenerateRequest& req, const StepOptions& opts,
                   std::function<bool(std::string_view)> on_text);
  std::unique_ptr<State> state_;
};

}  // namespace pocket::runtime
