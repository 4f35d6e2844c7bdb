// Internal to src/runtime: the per-token loop of one request, driven by Sequence
// (sequence.h) for both Session and Scheduler. After each forward
// pass the caller hands Step() the logits of the sequence's last position; Step samples a
// token, streams its text, and says whether that token must be evaluated next or the
// request has ended.
//
// Rules, in order, per token: max_tokens reached before sampling -> "length"; an
// end-of-generation token -> "stop"; a stop string or a complete JSON object -> "stop";
// the callback declined more text -> "cancelled"; the context or max_tokens is full ->
// "length" (the last token is not evaluated: nobody would see its logits). When a request
// ends other than by a stop string or cancellation, the text held back for a possible
// stop string (or an incomplete UTF-8 character) is real text and is emitted.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "runtime/engine.h"
#include "runtime/json_constraint.h"
#include "runtime/sampling.h"
#include "runtime/text_stream.h"

namespace pocket::runtime {

class EngineImpl;

// The request's prompt as tokens, the same for Session::Generate and the Scheduler: its
// messages through the chat template (one BOS even when the template writes its own),
// else its prompt text; special-token text is parsed as the special token, as llama-cli
// does. A request's prompt_tokens, when set, are the prompt as they are (InvalidArgument
// for an id outside the vocabulary). InvalidArgument when nothing is left.
Result<std::vector<int32_t>> TokenizeRequest(const Engine& engine, const GenerateRequest& req);

class Generation {
 public:
  // `history`: the prompt's tokens (the repetition penalty sees prompt and output).
  // `on_text` may be empty; returning false from it cancels the request.
  Generation(EngineImpl& eng, const GenerateRequest& req, std::vector<int32_t> history,
             std::function<bool(std::string_view)> on_text);

  // `row`: the vocabulary's logits after the last forward pass; `cached`: the positions
  // the sequence's cache now holds. True with *next set: evaluate *next, then call again.
  // False: the request has ended and result() is final (but for the caller's timings).
  // An error (JSON mode with no acceptable token) also ends it.
  Result<bool> Step(std::span<const float> row, size_t cached, int32_t* next);

  // Ends the request now with "cancelled", as when on_text declines: text held back for a
  // possible stop string is dropped. Step must not be called afterwards.
  void Cancel() {
    cancelled_ = true;
    End("cancelled");
  }

  // text, completion_tokens, finish_reason and seed; the caller fills in the rest.
  GenerateResult& result() { return result_; }

 private:
  bool End(const char* reason);  // returns false, for Step's tail calls
  void Emit(const std::string& text);

  EngineImpl& eng_;
  const GenerateRequest& req_;
  std::function<bool(std::string_view)> on_text_;
  Sampler sampler_;
  StopMatcher stops_;
  Utf8Assembler utf8_;
  std::vector<int32_t> history_;
  bool json_;
  JsonRecognizer json_state_;
  std::vector<float> json_scratch_;
  bool cancelled_ = false;
  GenerateResult result_;
};

}  // namespace pocket::runtime
