// The router facade: planning with the budget reservation, the remote calls (plain and
// streamed), and settlement: checking what a remote reports before the ledger records it.
#include "router/router.h"

#include <algorithm>
#include <limits>
#include <string_view>

#include "base/json_limits.h"
#include "base/sha256.h"
#include "net/http_client.h"
#include "net/sse.h"

namespace pocket::router {

Result<std::unique_ptr<Router>> Router::Create(Policy policy,
                                               const std::string& default_ledger_path) {
  PK_ASSIGN_OR_RETURN(PrivacyClassifier classifier, PrivacyClassifier::Create(policy.privacy));
  // A CA file that does not load would fail every https call of that backend; say so at
  // start-up instead of as a fallback on each request.
  for (const Backend& b : policy.backends) {
    if (b.kind != BackendKind::kRemote || !b.disabled_reason.empty() || b.ca_file.empty()) continue;
    if (Status s = net::CheckCaFile(b.ca_file); !s.ok())
      return s.WithContext("backend '" + b.name + "'");
  }
  const std::string path = policy.ledger_path.empty() ? default_ledger_path : policy.ledger_path;
  PK_ASSIGN_OR_RETURN(std::unique_ptr<Ledger> ledger, Ledger::Open(path));
  return std::unique_ptr<Router>(
      new Router(std::move(policy), std::move(classifier), std::move(ledger)));
}

Result<RoutePlan> Router::Plan(const RouteRequest& request, const std::string& api_key_name,
                               double now_s) {
  RoutePlan plan;
  const std::string area =
      request.area.empty() ? policy_.default_area : request.area;
  const Area* a = policy_.FindArea(area);
  if (!a) return Status::InvalidArgument("unknown feature area '" + area + "'");
  std::vector<BudgetScope> scopes{{BudgetScope::Kind::kArea, a->name, a->budget}};
  for (const auto& k : policy_.api_keys)
    if (k.name == api_key_name) scopes.push_back({BudgetScope::Kind::kApiKey, k.name, k.budget});
  const int64_t tokens = request.prompt_tokens + request.max_tokens;
  auto reserve = [&](const Backend& b) -> Status {
    const int64_t cost = CostMicros(b, request.prompt_tokens, request.max_tokens);
    auto id = ledger_->Reserve(scopes, b.name, cost, tokens, now_s);
    if (!id.ok()) return id.status();
    plan.reservation_id = *id;
    plan.reserved_micro_usd = cost;
    plan.reserved_prompt_tokens = request.prompt_tokens;
    plan.reserved_completion_tokens = request.max_tokens;
    return Status::Ok();
  };
  PK_ASSIGN_OR_RETURN(plan.decision, Decide(policy_, request, reserve));
  plan.backend = policy_.FindBackend(plan.decision.backend);
  return plan;
}

void UsageReport::Read(const nlohmann::json& body) {
  const auto it = body.find("usage");
  if (it == body.end() || it->is_null()) return;
  ++reports_;
  raw_ = it->dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).substr(0, 200);
  auto flag = [&](const char* kind) {
    if (anomaly_.empty()) anomaly_ = kind;
  };
  if (!it->is_object()) return flag("not_integer");
  // One field: a JSON integer that fits int64_t and is >= 0. nlohmann keeps integers past
  // INT64_MAX as unsigned (a get<int64_t> would wrap them negative) and those past
  // UINT64_MAX as floats: both are checked before any conversion.
  auto field = [&](const char* name, int64_t* out) -> bool {
    const auto f = it->find(name);
    if (f == it->end()) return false;
    if (f->is_number_unsigned()) {
      if (f->get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        flag("too_large");
        return false;
      }
      *out = static_cast<int64_t>(f->get<uint64_t>());
      return true;
    }
    if (!f->is_number_integer()) {
      flag("not_integer");
      return false;
    }
    *out = f->get<int64_t>();
    if (*out < 0) {
      flag("negative");
      return false;
    }
    return true;
  };
  int64_t prompt = 0, completion = 0, total = 0;
  const bool has_prompt = field("prompt_tokens", &prompt);
  const bool has_completion = field("completion_tokens", &completion);
  const bool has_total = field("total_tokens", &total);
  if (!anomaly_.empty()) return;
  if (!has_prompt || !has_completion) return flag("missing");
  if (prompt > std::numeric_limits<int64_t>::max() - completion) return flag("too_large");
  if (has_total && total != prompt + completion) return flag("inconsistent");
  prompt_tokens_ = std::max(prompt_tokens_, prompt);
  completion_tokens_ = std::max(completion_tokens_, completion);
}

namespace {

net::FetchRequest RemoteRequest(const Backend& backend, const std::string& path,
                                const nlohmann::json& body) {
  net::FetchRequest req;
  req.method = "POST";
  std::string base = backend.base_url;
  while (!base.empty() && base.back() == '/') base.pop_back();
  req.url = base + path;
  req.headers.emplace_back("content-type", "application/json");
  if (!backend.api_key.empty()) req.headers.emplace_back("authorization", "Bearer " + backend.api_key);
  // Strings were made valid UTF-8 before (GuardOutgoing); `replace` keeps the
  // serialiser from ever throwing all the same.
  req.body = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  req.timeout_ms = backend.timeout_ms;
  req.ca_file = backend.ca_file;
  return req;
}

Status HttpStatusError(const Backend& backend, const net::FetchRequest& req,
                       const net::FetchResponse& res) {
  return Status::IOError("http_" + std::to_string(res.status) + ": " + backend.name + " " +
                         req.url + ": " + res.body.substr(0, 200));
}

}  // namespace

Status Router::GuardOutgoing(nlohmann::json* body) const {
  SanitizeUtf8(body);
  const std::vector<std::string> hits = classifier_.ScanJson(*body);
  if (hits.empty()) return Status::Ok();
  std::string names;
  for (const auto& h : hits) names += (names.empty() ? "" : ",") + h;
  return Status::Internal("privacy: the outgoing body matches privacy patterns (" + names +
                          "); not sent");
}

Result<RemoteReply> Router::CallRemote(const Backend& backend, const std::string& path,
                                       nlohmann::json body, std::function<bool()> cancelled) const {
  body["model"] = backend.model;
  body["stream"] = false;
  body.erase("stream_options");
  body.erase("pocket");
  PK_RETURN_IF_ERROR(GuardOutgoing(&body));
  net::FetchRequest req = RemoteRequest(backend, path, body);
  req.cancelled = std::move(cancelled);
  PK_ASSIGN_OR_RETURN(net::FetchResponse res, net::HttpFetch(req));
  if (res.status < 200 || res.status > 299) return HttpStatusError(backend, req, res);
  RemoteReply reply;
  auto parsed = ParseUntrustedJson(res.body, "response");
  if (!parsed.ok() || !parsed->is_object())
    return Status::IOError("bad_response: " + backend.name + ": " +
                           (parsed.ok() ? "response is not a JSON object" : parsed.status().message()));
  reply.body = std::move(*parsed);
  reply.usage.Read(reply.body);
  return reply;
}

Status Router::CallRemoteStream(const Backend& backend, const std::string& path,
                                nlohmann::json body, const RemoteEventFn& on_event,
                                std::function<bool()> cancelled) const {
  body["model"] = backend.model;
  body["stream"] = true;
  body["stream_options"] = {{"include_usage", true}};
  body.erase("pocket");
  PK_RETURN_IF_ERROR(GuardOutgoing(&body));
  net::FetchRequest req = RemoteRequest(backend, path, body);
  req.idle_timeout_ms = backend.timeout_ms;
  req.timeout_ms = std::max(backend.stream_timeout_ms, backend.timeout_ms);
  req.cancelled = std::move(cancelled);
  net::SseParser parser;
  bool done = false;
  Status failure;  // why the event handler stopped the stream, if it was not on_event
  auto on_data = [&](std::string_view data) -> bool {
    if (done) return true;  // nothing may follow [DONE]; ignore what does
    if (data == "[DONE]") {
      done = true;
      return true;
    }
    auto parsed = ParseUntrustedJson(data, "a stream event");
    if (!parsed.ok() || !parsed->is_object()) {
      failure = Status::IOError("bad_response: " + backend.name + " " + req.url + ": " +
                                (parsed.ok() ? "a stream event is not a JSON object"
                                             : parsed.status().message()));
      return false;
    }
    nlohmann::json& event = *parsed;
    if (auto err = event.find("error"); err != event.end() && !err->is_null()) {
      // The remote's error, whatever its shape: a message that is not a string is shown as
      // JSON (value("message", "") would throw on it).
      const auto m = err->is_object() ? err->find("message") : err->end();
      std::string message = m != err->end() && m->is_string()
                                ? m->get<std::string>()
                                : err->dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
      failure = Status::IOError("bad_response: " + backend.name + " " + req.url +
                                ": error event: " + message.substr(0, 200));
      return false;
    }
    if (!on_event(event)) {
      failure = Status::Cancelled("cancelled: " + backend.name + ": the stream's reader stopped");
      return false;
    }
    return true;
  };
  auto on_body = [&](std::string_view piece) -> bool {
    Status s = parser.Feed(piece, on_data);
    if (s.ok()) return true;
    if (failure.ok())
      failure = Status::IOError("bad_response: " + backend.name + " " + req.url + ": " +
                                s.message());
    return false;
  };
  auto res = net::HttpFetchStream(req, on_body);
  if (!failure.ok()) return failure;
  if (!res.ok()) return res.status();
  if (res->status < 200 || res->status > 299) return HttpStatusError(backend, req, *res);
  // A body that ends without a line end still completes its last event.
  if (Status s = parser.Feed("\n\n", on_data); !s.ok() && failure.ok())
    return Status::IOError("bad_response: " + backend.name + ": " + s.message());
  if (!failure.ok()) return failure;
  if (!done)
    return Status::IOError("bad_response: " + backend.name + " " + req.url +
                           ": the stream ended without data: [DONE]");
  return Status::Ok();
}

Settlement Router::Assess(const RoutePlan& plan, const UsageReport& usage, bool complete) {
  Settlement out;
  const int64_t max_prompt = plan.reserved_prompt_tokens;
  const int64_t max_completion = plan.reserved_completion_tokens;
  std::string anomaly = usage.anomaly();
  if (anomaly.empty() && usage.reports() == 0 && complete) anomaly = "missing";
  if (anomaly.empty() && usage.reports() > 0 &&
      (usage.prompt_tokens() > max_prompt || usage.completion_tokens() > max_completion))
    anomaly = "too_large";
  if (anomaly.empty() && usage.reports() > 0) {
    out.prompt_tokens = usage.prompt_tokens();
    out.completion_tokens = usage.completion_tokens();
    // Within both bounds the cost is within the reservation (CostMicros grows with each
    // count); the min only guards that promise.
    out.micro_usd =
        plan.backend ? CostMicros(*plan.backend, out.prompt_tokens, out.completion_tokens) : 0;
    out.micro_usd = std::min(out.micro_usd, plan.reserved_micro_usd);
    return out;
  }
  // The worst case: what was reserved.
  out.prompt_tokens = max_prompt;
  out.completion_tokens = max_completion;
  out.micro_usd = plan.reserved_micro_usd;
  out.anomaly = anomaly;
  if (!anomaly.empty()) {
    const std::string backend = plan.backend ? plan.backend->name : plan.decision.backend;
    out.detail = "remote '" + backend + "' reported unusable usage (" + anomaly +
                 "): " + (usage.reports() ? usage.raw() : std::string("none")) +
                 "; the request allows " + std::to_string(max_prompt) + " prompt and " +
                 std::to_string(max_completion) +
                 " completion tokens; settled at the reservation instead";
  }
  return out;
}

Status Router::Settle(const RoutePlan& plan, const Settlement& settlement) {
  if (plan.reservation_id < 0 || !plan.backend) return Status::Ok();
  return ledger_->Settle(plan.reservation_id, settlement.micro_usd,
                         settlement.prompt_tokens + settlement.completion_tokens);
}

Status Router::Release(const RoutePlan& plan) {
  if (plan.reservation_id < 0) return Status::Ok();
  return ledger_->Release(plan.reservation_id);
}

const ApiKey* Router::FindApiKey(const std::string& bearer_token) const {
  const std::string h = Sha256Hex(bearer_token);
  for (const auto& k : policy_.api_keys)
    if (k.sha256_hex == h) return &k;
  return nullptr;
}

}  // namespace pocket::router
