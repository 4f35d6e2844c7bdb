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
// Thread safety: Engine is immutable after Load() and may be shared by any number of
// threads; NewSession() is thread-safe. Forward passes of different sessions are
// serialised inside the engine (one model, one set of kernel threads). A Session is not
// thread-safe: use each from one thread at a time.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
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

struct EngineOptions {
  int threads = 0;         // 0 = all cores
  int context_length = 0;  // 0 = the model's, capped at 4096
  bool repack = true;      // model::LoadOptions::repack
  // model::LoadOptions::backend by name (model::ParseBackendKind): "cpu" or "reference"
  // (the plain-loop oracle: slow, same greedy output).
  std::string backend = "cpu";
};

class Session;
class EngineImpl;

class Engine : public std::enable_shared_from_this<Engine> {
 public:
  // Loads the GGUF model and its tokenizer and chat template. NotFound / IOError /
  // Corruption / NotSupported from the loaders, each naming `gguf_path`.
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

  EngineImpl& impl() { return *impl_; }

 private:
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
  // InvalidArgument when the prompt does not fit the context or the template fails.
  Result<GenerateResult> Generate(const GenerateRequest& req,
                                  const std::function<bool(std::string_view)>& on_text);
  // Forgets the conversation: the next Generate starts from an empty cache.
  void Reset();
  // Tokens whose KV entries the cache holds (the prompt and generated tokens so far).
  std::span<const int32_t> cached_tokens() const;

 private:
  friend class Engine;
  struct State;
  explicit Session(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

}  // namespace pocket::runtime
