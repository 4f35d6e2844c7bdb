// The router facade the server uses per request: privacy scan, the local/remote decision
// with an atomic budget reservation, the remote call, and settlement. Owns the policy,
// the privacy classifier and the ledger.
// Flow per request: Plan() -> if remote: CallRemote() (or CallRemoteStream() when the
// client streams) -> Settle() (or Release() and run locally: the fallback) -> the
// decision's Header() goes into x-pocket-route.
// Thread safety: all methods are thread-safe.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "base/status.h"
#include "router/decision.h"
#include "router/ledger.h"
#include "router/policy.h"
#include "router/privacy.h"

namespace pocket::router {

struct RoutePlan {
  RouteDecision decision;
  const Backend* backend = nullptr;  // into the router's policy
  int64_t reservation_id = -1;       // >= 0 when a remote budget reservation is open
  int64_t reserved_micro_usd = 0;
};

struct RemoteReply {
  nlohmann::json body;  // the backend's JSON response
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
};

// Reads usage.prompt_tokens / usage.completion_tokens of an OpenAI response or stream
// chunk; false (outputs untouched) when `body` has no such usage.
bool ReadUsage(const nlohmann::json& body, int64_t* prompt_tokens, int64_t* completion_tokens);

// Called with each event of a remote stream as it arrives (a JSON object, not [DONE]);
// return false to stop the stream.
using RemoteEventFn = std::function<bool(nlohmann::json& event)>;

class Router {
 public:
  // Compiles the privacy patterns and opens the ledger (policy.ledger_path, else
  // `default_ledger_path`; ":memory:" works).
  static Result<std::unique_ptr<Router>> Create(Policy policy,
                                                const std::string& default_ledger_path);

  const Policy& policy() const { return policy_; }
  const PrivacyClassifier& classifier() const { return classifier_; }
  Ledger& ledger() { return *ledger_; }

  // Decides, reserving the worst-case remote cost (prompt_tokens + max_tokens at the
  // backend's prices) in the same step when a remote backend is chosen. `api_key_name`
  // ("" = none) adds that key's budget to the scopes.
  Result<RoutePlan> Plan(const RouteRequest& request, const std::string& api_key_name,
                         double now_s);

  // POSTs `body` (with "model" set to the backend's model id and "stream" false) to
  // backend.base_url + `path` ("/chat/completions", "/completions", "/embeddings") within
  // the backend's timeout. IOError on transport failure (message starts with timeout,
  // unreachable, reset, bad_response) or "http_<code>" for a non-2xx answer.
  // The last gate before the wire: the body exactly as it will be serialised (strings made
  // valid UTF-8) is scanned with the classifier's ScanJson(), and nothing is sent when any
  // pattern matches (Internal, message starting "privacy:"), whatever route led here; a
  // caller in redact mode must pass an already redacted body.
  Result<RemoteReply> CallRemote(const Backend& backend, const std::string& path,
                                 nlohmann::json body) const;

  // Like CallRemote, but streamed: "stream" true and stream_options.include_usage true
  // (so the last event carries the usage that settles the ledger), each `data:` event
  // handed to `on_event` as it arrives. The backend's timeout_ms bounds each step and
  // each wait for the next bytes (so a remote that does not start answering is a
  // timeout), stream_timeout_ms the whole stream. Ok once `data: [DONE]` arrived.
  // IOError as CallRemote's, whether or not events were delivered before it: also
  // "bad_response" for an event that is not a JSON object, an `{"error": ...}` event or
  // a stream that ends without [DONE]. Cancelled when `on_event` returned false.
  // Guarded like CallRemote.
  Status CallRemoteStream(const Backend& backend, const std::string& path, nlohmann::json body,
                          const RemoteEventFn& on_event) const;

  // Records the real cost of a remote call (from its usage) and closes the reservation.
  Status Settle(const RoutePlan& plan, int64_t prompt_tokens, int64_t completion_tokens);
  // Drops the reservation (remote call failed). No-op when none is open.
  Status Release(const RoutePlan& plan);

  // The configured API key whose SHA-256 matches `bearer_token`; nullptr when none.
  const ApiKey* FindApiKey(const std::string& bearer_token) const;

 private:
  // SanitizeUtf8(body), then Internal "privacy: ..." when ScanJson() finds anything.
  Status GuardOutgoing(nlohmann::json* body) const;
  Router(Policy policy, PrivacyClassifier classifier, std::unique_ptr<Ledger> ledger)
      : policy_(std::move(policy)), classifier_(std::move(classifier)), ledger_(std::move(ledger)) {}
  Policy policy_;
  PrivacyClassifier classifier_;
  std::unique_ptr<Ledger> ledger_;
};

}  // namespace pocket::router
