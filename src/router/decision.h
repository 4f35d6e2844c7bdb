// The routing decision: local model (the scout) or a remote backend (the heavy
// artillery), and why. A pure function of the policy and the facts about one request;
// the budget check is passed in as a callback so tests can drive every branch.
// Order of rules: (1) privacy — a request marked private, or whose text matched a privacy
// pattern under privacy mode "local", stays local; (2) an explicitly requested backend;
// (3) for model "auto": reasons to go remote — the prompt does not fit the local context,
// quality "high", a hard prompt (>= hard_prompt_tokens), or the local latency estimate over
// the area's target; the first allowed remote backend whose context fits and whose budget
// has room is chosen, otherwise local (the reason says why). The local model is always a
// permitted fallback, whatever the area lists.
// Called by the server per request. Thread safety: pure.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"
#include "router/policy.h"

namespace pocket::router {

struct RouteRequest {
  std::string area;                        // "" = the policy's default area
  std::optional<std::string> pinned;       // a backend name the client asked for by model
  bool marked_private = false;             // header or body said private
  std::vector<std::string> privacy_hits;   // pattern names that matched the text
  int64_t prompt_tokens = 0;               // upper bound (budget reservation, difficulty)
  int64_t local_prompt_tokens = 0;         // the local tokenizer's count; 0 = use prompt_tokens
  int64_t max_tokens = 0;
  bool quality_high = false;
  int64_t local_context_length = 0;        // the local model's context (0 = unknown)
};

struct RouteDecision {
  std::string backend;           // a name from Policy::backends
  bool remote = false;
  bool redact = false;           // send the redacted text (privacy mode "redact")
  std::string reason;            // short label for metrics: private, privacy_pattern, ...
  std::string detail;            // human-readable, for the log and x-pocket-route
  // "local; reason=private" or "remote=cloud; reason=quality" (the x-pocket-route value).
  std::string Header() const;
};

// OK when `backend` may spend the estimated cost of this request now; otherwise the
// reason (ResourceExhausted from the ledger).
using BudgetCheck = std::function<Status(const Backend& backend)>;

// InvalidArgument for an unknown area. The result names a backend of `policy`.
Result<RouteDecision> Decide(const Policy& policy, const RouteRequest& request,
                             const BudgetCheck& budget_fits);

// The name of the policy's first local backend ("local" when it names none).
std::string LocalBackendName(const Policy& policy);

// An upper bound on the tokens of `text` for budget reservations: byte-level BPE never
// makes more tokens than bytes.
inline int64_t UpperBoundTokens(size_t text_bytes) { return static_cast<int64_t>(text_bytes) + 8; }

}  // namespace pocket::router
