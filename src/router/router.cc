#include "router/router.h"

#include <algorithm>
#include <string_view>

#include "base/json_limits.h"
#include "base/sha256.h"
#include "router/http_client.h"
#include "router/sse.h"

namespace pocket::router {

Result<std::unique_ptr<Router>> Router::Create(Policy policy,
                                               const std::string& default_ledger_path) {
  PK_ASSIGN_OR_RETURN(PrivacyClassifier classifier, PrivacyClassifier::Create(policy.privacy));
  // A CA file that does not load would fail every https call of that backend; say so at
  // start-up instead of as a fallback on each request.
  for (const Backend& b : policy.backends) {
    if (b.kind != BackendKind::kRemote || !b.disabled_reason.empty() || b.ca_file.empty()) continue;
    if (Status s = CheckCaFile(b.ca_file); !s.ok())
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
    return Status::Ok();
  };
  PK_ASSIGN_OR_RETURN(plan.decision, Decide(policy_, request, reserve));
  plan.backend = policy_.FindBackend(plan.decision.backend);
  return plan;
}

bool ReadUsage(const nlohmann::json& body, int64_t* prompt_tokens, int64_t* completion_tokens) {
  const auto it = body.find("usage");
  if (it == body.end() || !it->is_object()) return false;
  const auto pt = it->find("prompt_tokens");
  const auto ct = it->find("completion_tokens");
  if (pt == it->end() || !pt->is_number_integer() || ct == it->end() || !ct->is_number_integer())
    return false;
  *prompt_tokens = pt->get<int64_t>();
  *completion_tokens = ct->get<int64_t>();
  return true;
}

namespace {

HttpRequest RemoteRequest(const Backend& backend, const std::string& path,
                          const nlohmann::json& body) {
  HttpRequest req;
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

Status HttpStatusError(const Backend& backend, const HttpRequest& req, const HttpResponse& res) {
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
                                       nlohmann::json body) const {
  body["model"] = backend.model;
  body["stream"] = false;
  body.erase("stream_options");
  body.erase("pocket");
  PK_RETURN_IF_ERROR(GuardOutgoing(&body));
  const HttpRequest req = RemoteRequest(backend, path, body);
  PK_ASSIGN_OR_RETURN(HttpResponse res, HttpFetch(req));
  if (res.status < 200 || res.status > 299) return HttpStatusError(backend, req, res);
  RemoteReply reply;
  auto parsed = ParseUntrustedJson(res.body, "response");
  if (!parsed.ok() || !parsed->is_object())
    return Status::IOError("bad_response: " + backend.name + ": " +
                           (parsed.ok() ? "response is not a JSON object" : parsed.status().message()));
  reply.body = std::move(*parsed);
  ReadUsage(reply.body, &reply.prompt_tokens, &reply.completion_tokens);
  return reply;
}

Status Router::CallRemoteStream(const Backend& backend, const std::string& path,
                                nlohmann::json body, const RemoteEventFn& on_event) const {
  body["model"] = backend.model;
  body["stream"] = true;
  body["stream_options"] = {{"include_usage", true}};
  body.erase("pocket");
  PK_RETURN_IF_ERROR(GuardOutgoing(&body));
  HttpRequest req = RemoteRequest(backend, path, body);
  req.idle_timeout_ms = backend.timeout_ms;
  req.timeout_ms = std::max(backend.stream_timeout_ms, backend.timeout_ms);
  SseParser parser;
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
  auto res = HttpFetchStream(req, on_body);
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

Status Router::Settle(const RoutePlan& plan, int64_t prompt_tokens, int64_t completion_tokens) {
  if (plan.reservation_id < 0 || !plan.backend) return Status::Ok();
  return ledger_->Settle(plan.reservation_id,
                         CostMicros(*plan.backend, prompt_tokens, completion_tokens),
                         prompt_tokens + completion_tokens);
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
