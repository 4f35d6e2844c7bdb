// The OpenAI API's JSON shapes as the server writes them for local answers: streamed
// chunks (chat.completion.chunk / text_completion), the whole completion, usage, and the
// serialisation every response body goes through (invalid UTF-8 replaced, never thrown on).
// Called by the Server's files (server/*.cc). Thread safety: pure functions.
#pragma once

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <string>

namespace pocket::server {

// `j` serialised compactly; invalid UTF-8 in strings is replaced (U+FFFD), not thrown on.
std::string Dump(const nlohmann::json& j);

// Standard base64 with padding (embeddings' encoding_format "base64").
std::string Base64(const void* data, size_t n);

// One streamed chunk: chat puts `delta_or_text` in choices[0].delta, completions in
// choices[0].text (with logprobs null). `finish` is null or the finish_reason.
nlohmann::json ChunkJson(const std::string& id, bool chat, const std::string& model,
                         int64_t created, const nlohmann::json& delta_or_text,
                         const nlohmann::json& finish);

// {"prompt_tokens", "completion_tokens", "total_tokens"}.
nlohmann::json Usage(int prompt, int completion);

// A whole (non-streamed) chat.completion or text_completion with one choice.
nlohmann::json CompletionJson(const std::string& id, bool chat, const std::string& model,
                              int64_t created, const std::string& text,
                              const std::string& finish, int prompt_tokens,
                              int completion_tokens);

}  // namespace pocket::server
