// The router's policy: which backends exist (the local model and OpenAI-compatible
// remote endpoints), the feature areas with their budgets and latency targets, privacy
// rules and API keys. Read from TOML (docs/policy.example.toml documents every key);
// string values may reference environment variables as ${NAME} or ${NAME:-default}.
// Called by the server at start-up and by `pocket budget`. Thread safety: a Policy is an
// immutable value once parsed.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace pocket::router {

enum class BackendKind { kLocal, kRemote };

struct Backend {
  std::string name;              // the policy's name for it ("local", "cloud")
  BackendKind kind = BackendKind::kLocal;
  std::string model;             // local: model file (or "" = the default); remote: model id sent
  std::string base_url;          // remote: "http://host:port/v1"
  std::string api_key;           // remote: bearer token ("" = none sent)
  // remote, https only: PEM file of the CAs to trust instead of the system's store
  // ("" = the system's, which honours SSL_CERT_FILE / SSL_CERT_DIR).
  std::string ca_file;
  double price_input_per_1k = 0;   // USD per 1000 prompt tokens
  double price_output_per_1k = 0;  // USD per 1000 completion tokens
  int64_t context_length = 0;      // tokens; 0 = unknown (local: the model's own)
  int64_t timeout_ms = 30000;      // whole remote call, connect to last byte
  // A streamed call: timeout_ms bounds each step and each wait for more of the stream
  // (the first event included); this bounds the whole stream.
  int64_t stream_timeout_ms = 600000;
  double tokens_per_s = 0;         // local: expected decode speed for the latency estimate
  // Non-empty when the backend cannot be used (e.g. an unset ${VAR} in its URL or key);
  // the router then never picks it and says why.
  std::string disabled_reason;
};

// Budget limits; 0 means "no limit" for that dimension.
struct Budget {
  double day_usd = 0;
  double month_usd = 0;
  int64_t day_tokens = 0;
  int64_t month_tokens = 0;
  bool empty() const { return day_usd <= 0 && month_usd <= 0 && day_tokens <= 0 && month_tokens <= 0; }
};

struct Area {
  std::string name;                   // "chat", "summarize", "code"
  Budget budget;                      // remote spend limits for this area
  int64_t latency_target_ms = 0;      // 0: none
  std::vector<std::string> backends;  // allowed backend names, in preference order
};

enum class PrivacyMode {
  kLocalOnly,      // a sensitive request never leaves the machine
  kRedactThenSend, // sensitive spans are replaced by placeholders before a remote call
};

struct PrivacyPattern {
  std::string name;   // "email", "phone", "api_key", "card", or the policy's own
  std::string regex;  // PCRE2 syntax
};

struct PrivacyRules {
  PrivacyMode mode = PrivacyMode::kLocalOnly;
  bool default_patterns = true;          // include DefaultPrivacyPatterns()
  std::vector<PrivacyPattern> patterns;  // the policy's own, added to the defaults
};

struct ApiKey {
  std::string name;
  std::string sha256_hex;  // lower-case SHA-256 of the bearer token; the token is never stored
  Budget budget;           // per-key remote spend limits
};

struct Policy {
  std::vector<Backend> backends;
  std::vector<Area> areas;
  std::string default_area = "chat";
  PrivacyRules privacy;
  std::vector<ApiKey> api_keys;
  std::string ledger_path;  // "" = the caller's default
  // Difficulty: a prompt at least this long (estimated tokens) or a quality:"high" hint
  // prefers a remote backend when one is allowed.
  int64_t hard_prompt_tokens = 2000;

  const Backend* FindBackend(std::string_view name) const;
  const Area* FindArea(std::string_view name) const;
  // The backend whose name or remote model id is `model`; nullptr when none.
  const Backend* FindBackendByModel(std::string_view model) const;
};

// Looks up an environment variable; std::nullopt when unset.
using EnvLookup = std::function<std::optional<std::string>(const std::string&)>;
EnvLookup ProcessEnv();

// Replaces ${NAME} and ${NAME:-default} in `text`. InvalidArgument naming the variable
// when it is unset and has no default, or for an unterminated "${".
Result<std::string> ExpandEnv(std::string_view text, const EnvLookup& env);

// Parses policy TOML. InvalidArgument "policy: <where>: <what>" for syntax errors,
// wrong types, unknown backend names in an area, bad regexes are checked by the
// privacy classifier. A policy with no backends gets one local backend named "local";
// with no areas, one area named default_area that may use every backend.
Result<Policy> ParsePolicy(std::string_view toml_text, const EnvLookup& env,
                           std::string_view source_name = "policy");
Result<Policy> LoadPolicy(const std::string& path, const EnvLookup& env);

// The policy used when none is given: one local backend, one "chat" area, default privacy.
Policy DefaultPolicy();

}  // namespace pocket::router
