// Generation (generation.h): the per-token loop of one request (sampling, stop strings, the
// JSON constraint, streamed UTF-8 text, the finish reason) and TokenizeRequest.
#include "runtime/generation.h"

#include <utility>

#include "runtime/engine_impl.h"

namespace pocket::runtime {

Result<std::vector<int32_t>> TokenizeRequest(const Engine& engine, const GenerateRequest& req) {
  if (!req.prompt_tokens.empty()) {
    // Tokenized by the caller (Engine::TokenizePrompt); the forward pass trusts its ids.
    const int32_t vocab = engine.config().vocab_size;
    for (const int32_t id : req.prompt_tokens) {
      if (id < 0 || id >= vocab) {
        return Status::InvalidArgument("generate: prompt token " + std::to_string(id) +
                                       " is outside the vocabulary of " + std::to_string(vocab));
      }
    }
    return req.prompt_tokens;
  }
  const tokenizer::Tokenizer& tok = engine.tokenizer();
  std::vector<int32_t> prompt;
  if (!req.messages.empty()) {
    PK_ASSIGN_OR_RETURN(std::string text, engine.ApplyChatTemplate(req.messages, true));
    prompt = tok.Encode(text, req.add_special, /*parse_special=*/true);
    // Templates usually write BOS themselves; do not let add_special double it.
    if (prompt.size() >= 2 && prompt[0] == tok.bos() && prompt[1] == tok.bos()) {
      prompt.erase(prompt.begin());
    }
  } else {
    prompt = tok.Encode(req.prompt, req.add_special, /*parse_special=*/true);
  }
  if (prompt.empty()) return Status::InvalidArgument("generate: the prompt is empty");
  return prompt;
}

Generation::Generation(EngineImpl& eng, const GenerateRequest& req, std::vector<int32_t> history,
                       std::function<bool(std::string_view)> on_text)
    : eng_(eng),
      req_(req),
      on_text_(std::move(on_text)),
      sampler_(req.sampling),
      stops_(req.stop),
      history_(std::move(history)),
      json_(req.response_format == ResponseFormat::kJsonObject) {
  result_.seed = sampler_.seed();
}

void Generation::Emit(const std::string& text) {
  if (text.empty() || cancelled_) return;
  result_.text += text;
  if (on_text_ && !on_text_(text)) cancelled_ = true;
}

bool Generation::End(const char* reason) {
  result_.finish_reason = reason;
  if (cancelled_) {
    result_.finish_reason = "cancelled";
  } else if (!stops_.stopped()) {
    const StopMatcher::Output out = stops_.Push(utf8_.Flush());
    Emit(out.text);
    if (!out.stopped) Emit(stops_.Flush());
  }
  return false;
}

Result<bool> Generation::Step(std::span<const float> row, size_t cached, int32_t* next) {
  const tokenizer::Tokenizer& tok = *eng_.tokenizer;
  if (req_.max_tokens >= 0 && result_.completion_tokens >= req_.max_tokens) return End("length");
  int32_t token;
  if (json_) {
    PK_ASSIGN_OR_RETURN(token, SampleJsonToken(sampler_, eng_.json_tokens(), json_state_, row,
                                               history_, &json_scratch_));
  } else {
    token = sampler_.Sample(row, history_);
  }
  if (tok.IsEndOfGeneration(token)) return End("stop");
  ++result_.completion_tokens;
  history_.push_back(token);
  // Control tokens are not text (llama-cli's default): they render as nothing.
  const std::string piece = tok.IsControl(token) ? std::string() : tok.TokenToPiece(token);
  if (json_) json_state_.Push(piece);  // accepted: SampleJsonToken checked it
  const StopMatcher::Output out = stops_.Push(utf8_.Push(piece));
  Emit(out.text);
  if (out.stopped || (json_ && json_state_.complete())) return End("stop");
  if (cancelled_) return End("cancelled");
  // Ends now, not after one more forward pass of a token nobody will see.
  if (cached >= static_cast<size_t>(eng_.context_length) ||
      (req_.max_tokens >= 0 && result_.completion_tokens >= req_.max_tokens)) {
    return End("length");
  }
  *next = token;
  return true;
}

}  // namespace pocket::runtime
