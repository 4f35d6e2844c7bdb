// The router facade the server uses per request: privacy scan, the local/remote decision
// with an atomic budget reservation, the remote call, and settlement. Owns the policy,
// the privacy classifier and the ledger.
// Flow per request: Plan() -> if remote: CallRemote() (or CallRemoteStream() when the
// client streams) -> Assess() the usage the remote reported -> Settle() (or Release() and
// run locally: the fallback) -> the decision's Header() goes into x-pocket-route.
// Nothing a remote reports is believed unchecked: usage that is missing, of the wrong JSON
// type, negative, inconsistent or more than the request could have used is an anomaly and
// settles at the reservation, the most the request could have cost (see Assess).
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
  // The reservation: the worst case of this request, and the bounds the remote's usage is
  // checked against. prompt: RouteRequest::prompt_tokens (an upper bound from the
  // request's bytes); completion: RouteRequest::max_tokens (the limit the remote gets).
  int64_t reserved_micro_usd = 0;
  int64_t reserved_prompt_tokens = 0;
  int64_t reserved_completion_tokens = 0;
};

// The usage a remote reported in a response or across the events of a stream, each field
// checked as it is read. The `kind` label of pocket_remote_usage_anomalies_total, and
// anomaly(), name what was wrong (Router::Assess adds the last two):
//   not_integer   usage, or one of its token fields, is not a JSON integer (a string,
//                 float, bool, null, object or array)
//   negative      a token field below 0
//   too_large     a token field past int64, or more than the request allows (prompt_tokens
//                 over the prompt's upper bound, completion_tokens over max_tokens)
//   inconsistent  total_tokens present but not prompt_tokens + completion_tokens
//   missing       no usage at all in a whole response, or no prompt_tokens or
//                 completion_tokens in it
class UsageReport {
 public:
  // Reads `body["usage"]`. An absent or null usage is no report: a stream carries
  // "usage": null on every event but its last. A stream may report usage more than once
  // (some remotes repeat it on each event, cumulative): every report is checked, the
  // largest value of each field counts, and the first anomaly is kept.
  void Read(const nlohmann::json& body);

  int reports() const { return reports_; }
  const std::string& anomaly() const { return anomaly_; }
  int64_t prompt_tokens() const { return prompt_tokens_; }
  int64_t completion_tokens() const { return completion_tokens_; }
  // The last usage reported, as sent (compact JSON cut at 200 bytes), for the log.
  const std::string& raw() const { return raw_; }

 private:
  int reports_ = 0;
  std::string anomaly_;
  int64_t prompt_tokens_ = 0;
  int64_t completion_tokens_ = 0;
  std::string raw_;
};

// What a remote call settles in the ledger.
struct Settlement {
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
  int64_t micro_usd = 0;
  std::string anomaly;  // "" when the remote's usage was believed; else a kind (UsageReport)
  // With an anomaly: one line naming the backend, the usage reported, the bounds and what
  // is settled instead, for the log.
  std::string detail;
};

struct RemoteReply {
  nlohmann::json body;  // the backend's JSON response
  UsageReport usage;    // read from body, not yet checked against the plan
};

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
  // `cancelled` (optional) is polled while the call waits (net::FetchRequest::cancelled): once
  // it is true the connection is closed and the call returns Cancelled "cancelled: ...".
  Result<RemoteReply> CallRemote(const Backend& backend, const std::string& path,
                                 nlohmann::json body,
                                 std::function<bool()> cancelled = nullptr) const;

  // Like CallRemote, but streamed: "stream" true and stream_options.include_usage true
  // (so the last event carries the usage that settles the ledger), each `data:` event
  // handed to `on_event` as it arrives. The backend's timeout_ms bounds each step and
  // each wait for the next bytes (so a remote that does not start answering is a
  // timeout), stream_timeout_ms the whole stream. Ok once `data: [DONE]` arrived.
  // IOError as CallRemote's, whether or not events were delivered before it: also
  // "bad_response" for an event that is not a JSON object, an `{"error": ...}` event or
  // a stream that ends without [DONE]. Cancelled when `on_event` returned false.
  // Guarded like CallRemote.
  // `cancelled` as CallRemote's.
  Status CallRemoteStream(const Backend& backend, const std::string& path, nlohmann::json body,
                          const RemoteEventFn& on_event,
                          std::function<bool()> cancelled = nullptr) const;

  // What the remote call of `plan` costs, from the usage it reported. Believed only when
  // every report was well-formed (UsageReport) and within the request's bounds: prompt
  // tokens <= plan.reserved_prompt_tokens, completion tokens <=
  // plan.reserved_completion_tokens; then the cost at the backend's prices (never above the
  // reservation). Otherwise an anomaly, settled at the reservation: what the remote really
  // billed cannot be known, and the reservation is the most this request could have cost,
  // so the ledger never under-counts, never counts more than the budget already granted,
  // and is never credited. `complete`: the response arrived whole; one cut short (the
  // stream broke, the client left) without usage also settles at the reservation (the
  // remote may bill tokens it never sent) but is no anomaly of the remote's.
  static Settlement Assess(const RoutePlan& plan, const UsageReport& usage, bool complete);
  // Records `settlement` (from Assess) and closes the plan's reservation. The ledger
  // refuses a negative amount or more than reserved (InvalidArgument), and an unknown or
  // closed reservation (NotFound).
  Status Settle(const RoutePlan& plan, const Settlement& settlement);
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
