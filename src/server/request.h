// Parsing and validating the bodies of POST /v1/chat/completions, /v1/completions and
// /v1/embeddings. Every field the server reads, and every OpenAI field it would forward to
// a remote backend, is type-checked here before anything uses it: a wrong type or range
// is a RequestError naming the field as OpenAI's `param` does ("messages[2].content[0].type"),
// which the server answers with 400. The body's nesting depth is bounded at parse time
// (base/json_limits.h). Called by server::Server; fuzzed by request_fuzz.cc.
// Thread safety: pure functions. Never throw.
#pragma once

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "net/http_server.h"
#include "runtime/engine.h"
#include "runtime/sampling.h"

namespace pocket::server {

// The HTTP layer's request and exchange types, by the names the API layer's files use.
using net::Exchange;
using net::Headers;
using net::HttpRequest;

// Per-request bounds on the work a body can ask for (each refusal is a 400 naming the
// limit; docs/server.md states them).
struct RequestLimits {
  // Entries of `messages`: each costs a token count when truncation is asked for, and a
  // template render, a privacy scan and a copy on every path.
  size_t max_messages = 4096;
  // Bytes of text in `messages[*].content`, `prompt` or `input` together.
  size_t max_prompt_bytes = 2u << 20;
};

// A refused request: the Status (its code picks the HTTP status, its message says what is
// wrong), OpenAI's `param` and, where there is one, OpenAI's error `code`.
struct RequestError {
  Status status;
  std::string param;
  std::string code;
};

// Parses a request body: code "invalid_json" for text that is not JSON, nests deeper than
// kMaxJsonDepth, or is not a JSON object.
std::optional<RequestError> ParseRequestBody(std::string_view text, nlohmann::json* body);

// The server-wide values of the sampling fields a request leaves out (`pocket serve`'s
// --temp, --top-p, --top-k, --min-p, -s/--seed and -n, as llama-server's): a field the
// request sets wins. The defaults here are OpenAI's, what a request got before the flags
// existed. top_k and min_p are not OpenAI request fields, so the server's value always
// applies to them.
struct GenerationDefaults {
  float temperature = 1.0f;              // 0: greedy
  float top_p = 1.0f;                    // 1: off
  int top_k = 0;                         // 0: off
  float min_p = 0.0f;                    // 0: off
  uint64_t seed = runtime::kRandomSeed;  // kRandomSeed: a random seed per request
  // max_tokens of a request that sets neither max_tokens nor max_completion_tokens; -1:
  // until end of generation or a full context. Unlike a requested limit it is a bound, not
  // a reservation: the context check does not count it, and generation also ends when the
  // context is full.
  int max_tokens = -1;
};

// The fields of a chat or completion request the server acts on.
struct GenerationFields {
  std::string model = "auto";  // as requested ("" and "auto": the router picks)
  runtime::GenerateRequest gen;
  // Whether gen.max_tokens is the request's own (max_tokens or max_completion_tokens)
  // rather than GenerationDefaults::max_tokens.
  bool max_tokens_requested = false;
  bool stream = false;
  bool include_usage = false;
};

// Validates `body` (an object) as a chat request (`chat`) or a completion request and fills
// `*out`, taking each sampling field the body leaves out from `defaults`. The `pocket`
// extension object is left to the caller.
std::optional<RequestError> ParseGenerationRequest(const nlohmann::json& body, bool chat,
                                                   const RequestLimits& limits,
                                                   GenerationFields* out,
                                                   const GenerationDefaults& defaults = {});

struct EmbeddingsFields {
  std::string model = "auto";
  std::vector<std::string> inputs;
  bool base64 = false;  // encoding_format "base64" (else "float")
};

std::optional<RequestError> ParseEmbeddingsRequest(const nlohmann::json& body,
                                                   const RequestLimits& limits,
                                                   EmbeddingsFields* out);

// The Pocket extensions of a chat or completion request: the body's `pocket` object
// ({"privacy", "private", "area", "quality", "truncate"}; any other key is refused, so a
// misspelt "privcy" cannot silently let a private request out) and the x-pocket-* headers.
struct PocketExtensions {
  bool marked_private = false;
  std::string area;  // "" = the policy's default area
  bool quality_high = false;
  bool truncate = false;
};

// Reads and type-checks the extensions of `body` and `request`'s headers (a RequestError
// naming the field: "pocket.private", "x-pocket-privacy"). Privacy can be stated by the
// x-pocket-privacy header (repeatable, comma lists allowed), the x-pocket-private header
// (true/false), pocket.privacy ("public" | "private") and pocket.private (a boolean): the
// most restrictive statement wins, so no combination of them sends a request marked private
// out. An area may route to a local-only backend, so area statements that disagree (header
// and body, or repeated headers) are refused rather than one picked. For quality and
// truncate the body's value wins over the header's.
std::optional<RequestError> ParsePocketExtensions(const nlohmann::json& body,
                                                  const HttpRequest& request,
                                                  PocketExtensions* out);

}  // namespace pocket::server
