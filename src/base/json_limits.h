// Parsing JSON that comes from outside the process (HTTP request bodies, a remote backend's
// replies and stream events, peers) with a bound on nesting depth, so that no later step
// that walks the value recursively (copy, dump, comparison, destruction in older
// nlohmann versions) can run out of stack on a hostile input.
// Called by server (request bodies) and router (remote replies); every parse of untrusted
// JSON goes through ParseUntrustedJson. Thread safety: pure function.
#pragma once

#include <nlohmann/json.hpp>

#include <string_view>

#include "base/status.h"

namespace pocket {

// Arrays and objects may nest this many levels: `[]` is 1, `{"a": [1]}` is 2. Real OpenAI
// requests and replies nest fewer than 10; tool schemas (JSON Schema inside `tools`) rarely
// pass 20. docs/server.md states it.
inline constexpr int kMaxJsonDepth = 64;

// What to do with an object that names one key twice. RFC 8259 leaves it to the reader and
// nlohmann keeps the last, so `{"pocket":{"private":true},"pocket":{}}` would be read as
// public while another reader (a proxy, a log scanner, the remote) may see the first:
// anything whose meaning must not be ambiguous refuses it. kKeepLast is for formats whose
// reference reader is JavaScript's JSON.parse (Yjs content), which keeps the last.
enum class DuplicateKeys { kRefuse, kKeepLast };

// Parses `text` as one JSON value (surrounding whitespace allowed, nothing after it).
// InvalidArgument "<what> is not valid JSON: <parser's reason>", "<what> nests deeper than
// <max_depth> levels of arrays and objects" or (kRefuse) "<what> has the key "<key>" twice
// in one object" (the key JSON-quoted, cut to at most 64 bytes on a character boundary).
// The parse keeps its own stack on the heap (no recursion per level), values deeper than
// the limit are never built, and the keys of each open object are kept in one hash set per
// object, so the input's depth and its keys cost time linear in its size. Never throws.
Result<nlohmann::json> ParseUntrustedJson(std::string_view text, std::string_view what,
                                          int max_depth = kMaxJsonDepth,
                                          DuplicateKeys duplicates = DuplicateKeys::kRefuse);

}  // namespace pocket
