// Message truncation for `"pocket": {"truncate": true}`: drop the oldest non-system messages
// of a chat request (never the last message) until the prompt plus the completion's
// reserve fits the model's context. Called by server::Server::RunLocal.
// Thread safety: a pure function of its arguments (the model's CountPromptTokens is
// thread-safe).
#pragma once

#include <functional>

#include "base/status.h"
#include "runtime/engine.h"
#include "server/model.h"

namespace pocket::server {

struct TruncateResult {
  int dropped_messages = 0;
  int prompt_tokens = 0;  // of the request as it is now (after the drops)
  bool fits = false;      // prompt_tokens + reserve <= context
};

// Drops the first k non-system messages among all but the last message of
// `request->messages`, with k the smallest count for which the prompt fits (`reserve`
// tokens left for the completion within `context`); when none fits, all of them are
// dropped and `fits` is false. This is what dropping one message at a time and counting
// again gives (the rule this replaced), found with a near-constant number of whole-prompt
// counts: each message is counted alone once, which estimates k, and whole counts only
// confirm the estimate or search from it (the search assumes that dropping a message never
// makes the prompt longer). `prompt_tokens` is the whole request's count, already known.
// `stop()` is asked between steps; when it returns true the request is left unchanged and
// the result is Cancelled. Errors of CountPromptTokens are returned as they are. When
// messages are dropped, request->prompt_tokens (ids of the whole request, from
// Model::PreparePrompt) are cleared: the caller prepares the truncated request again.
// REQUIRES: prompt_tokens + reserve > context.
Result<TruncateResult> TruncateToFit(const Model& model, runtime::GenerateRequest* request,
                                     int prompt_tokens, int reserve, int context,
                                     const std::function<bool()>& stop);

}  // namespace pocket::server
