#include "server/server.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "base/clock.h"
#include "base/log.h"
#include "base/memory.h"
#include "server/errors.h"
#include "server/request.h"
#include "server/truncate.h"
#include "sync/sync_service.h"

namespace pocket::server {
namespace {

using nlohmann::json;

double Seconds(uint64_t from_ns, uint64_t to_ns) {
  return to_ns > from_ns ? static_cast<double>(to_ns - from_ns) / 1e9 : 0.0;
}

std::string Base64(const void* data, size_t n) {
  static const char* kAlphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  const auto* p = static_cast<const unsigned char*>(data);
  std::string out;
  out.reserve((n + 2) / 3 * 4);
  for (size_t i = 0; i < n; i += 3) {
    const uint32_t v = (p[i] << 16) | ((i + 1 < n ? p[i + 1] : 0) << 8) | (i + 2 < n ? p[i + 2] : 0);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += i + 1 < n ? kAlphabet[(v >> 6) & 63] : '=';
    out += i + 2 < n ? kAlphabet[v & 63] : '=';
  }
  return out;
}

std::string Dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

}  // namespace

// The exchange as the handlers see it: it records what has been sent, so that the handler
// boundary (Server::Contain) knows whether a failure can still be answered with a status
// or must end a stream already under way.
class Server::TrackedExchange final : public Exchange {
 public:
  enum State : int { kNothingSent, kStreaming, kFinished };
  explicit TrackedExchange(std::shared_ptr<Exchange> inner) : inner_(std::move(inner)) {}
  // The state changes before the call, so that a call that throws is never repeated.
  void Respond(int status, Headers headers, std::string body) override {
    state_ = kFinished;
    inner_->Respond(status, std::move(headers), std::move(body));
  }
  void StartStream(int status, Headers headers) override {
    state_ = kStreaming;
    inner_->StartStream(status, std::move(headers));
  }
  bool Write(std::string data) override { return inner_->Write(std::move(data)); }
  void End() override {
    state_ = kFinished;
    inner_->End();
  }
  bool cancelled() const override { return inner_->cancelled(); }
  State state() const { return state_.load(); }

 private:
  std::shared_ptr<Exchange> inner_;
  std::atomic<State> state_{kNothingSent};
};

// One HTTP exchange as it moves through the server.
struct Server::Call {
  HttpRequest req;
  std::shared_ptr<TrackedExchange> ex;
  std::string endpoint;  // "chat", "completions", "embeddings", ...
  uint64_t start_ns = 0;
  std::string id;
  json body;
  // Parsed generation request.
  runtime::GenerateRequest gen;
  bool stream = false, include_usage = false;
  std::string model_name;  // as requested
  Model* model = nullptr;  // the local model to use
  router::RouteRequest route_req;
  router::RoutePlan plan;
  std::string route_header;
  std::string api_key_name;
  bool truncate = false;
  json truncated;  // set when messages were dropped
  json remote_body;  // what a remote call would send (RemoteBody()), scanned for privacy
  // The prompt's one templating and tokenization (Model::PreparePrompt, before routing):
  // its outcome and token count; the ids, if the model keeps any, are in gen.prompt_tokens.
  Status prepared = Status::Ok();
  int prepared_tokens = 0;
  // Outcome.
  int http_status = 0;
  int prompt_tokens = 0, completion_tokens = 0;
  uint64_t first_token_ns = 0, gen_start_ns = 0;
  double queue_wait_s = 0, cost_usd = 0;
  std::string finish_reason, route = "local", reason, error;
  bool admitted = false;
};

Result<std::unique_ptr<Server>> Server::Create(ServerOptions options,
                                               std::vector<std::shared_ptr<Model>> models,
                                               router::Policy policy) {
  if (models.empty()) return Status::InvalidArgument("server: no local model");
  if (options.max_active < 1 || options.max_queue < 0)
    return Status::InvalidArgument("server: max_active must be >= 1 and max_queue >= 0");
  // The server's slots are the one admission queue: a model must be able to run every
  // admitted request at once, or requests would wait in a second queue inside it.
  for (const auto& m : models) {
    if (m->max_sequences() > 0 && options.max_active > m->max_sequences())
      return Status::InvalidArgument("server: max_active " + std::to_string(options.max_active) +
                                     " exceeds the " + std::to_string(m->max_sequences()) +
                                     " sequences model '" + m->id() + "' runs at once");
  }
  PK_ASSIGN_OR_RETURN(auto router,
                      router::Router::Create(std::move(policy), options.default_ledger_path));
  return std::unique_ptr<Server>(new Server(std::move(options), std::move(models), std::move(router)));
}

Server::Server(ServerOptions options, std::vector<std::shared_ptr<Model>> models,
               std::unique_ptr<router::Router> router)
    : options_(std::move(options)), models_(std::move(models)), router_(std::move(router)) {
  free_slots_ = options_.max_active;
  metrics_.DeclareCounter("pocket_http_requests_total", "HTTP requests by endpoint and status.");
  metrics_.DeclareHistogram("pocket_request_duration_seconds",
                            "Time from request received to response complete.",
                            Metrics::LatencyBuckets());
  metrics_.DeclareHistogram("pocket_time_to_first_token_seconds",
                            "Time from request received to the first generated text.",
                            Metrics::LatencyBuckets());
  metrics_.DeclareHistogram("pocket_queue_wait_seconds",
                            "Time an admitted request waited for a generation slot.",
                            Metrics::LatencyBuckets());
  metrics_.DeclareHistogram("pocket_generation_tokens_per_second",
                            "Decode speed per request (completion tokens / generation time).",
                            {1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 5000});
  metrics_.DeclareCounter("pocket_prompt_tokens_total", "Prompt tokens by route.");
  metrics_.DeclareCounter("pocket_completion_tokens_total", "Completion tokens by route.");
  metrics_.DeclareCounter("pocket_route_decisions_total", "Routing decisions by route and reason.");
  metrics_.DeclareCounter("pocket_remote_fallbacks_total",
                          "Remote calls that failed and ran locally instead, by reason.");
  metrics_.DeclareCounter("pocket_remote_cost_usd_total", "Settled remote spend in USD.");
  metrics_.DeclareCounter("pocket_remote_usage_anomalies_total",
                          "Remote answers whose usage could not be believed (settled at the "
                          "reservation), by backend and kind.");
  metrics_.DeclareCounter("pocket_remote_stream_failures_total",
                          "Remote streams that broke after text was sent (no fallback then).");
  metrics_.DeclareCounter("pocket_rejected_requests_total", "Requests refused before running.");
  metrics_.DeclareCounter("pocket_cancelled_requests_total", "Requests whose client went away.");
  metrics_.DeclareCounter("pocket_internal_errors_total",
                          "Requests ended by an unexpected failure inside the server (500).");
  metrics_.DeclareGauge("pocket_requests_active", "Requests generating now.");
  metrics_.DeclareGauge("pocket_requests_queued", "Admitted requests waiting for a slot.");
  metrics_.DeclareGauge("pocket_process_resident_memory_bytes", "Resident set size.");
  metrics_.DeclareGauge("pocket_process_peak_resident_memory_bytes", "Peak resident set size.");
  metrics_.DeclareGauge("pocket_kv_cache_bytes", "Bytes held by KV caches.");
  metrics_.DeclareCounter("pocket_decode_steps_total",
                          "Batched forward passes in which every sequence decoded one token.");
  metrics_.DeclareCounter("pocket_decode_step_seconds_total",
                          "Time in those forward passes (the model's own per-token cost).");
  metrics_.DeclareGauge("pocket_budget_spent_usd", "Remote spend in the current period.");
  metrics_.DeclareGauge("pocket_budget_limit_usd", "Remote budget of the period (0: none).");
  metrics_.DeclareGauge("pocket_http_connections_open", "Open client connections.");
  metrics_.DeclareCounter("pocket_http_connections_refused_total",
                          "Connections answered at once and closed: over the per-client "
                          "(429) or the global (503) connection limit.");
  metrics_.DeclareCounter("pocket_http_first_byte_timeouts_total",
                          "New connections closed for sending nothing within the deadline.");
  metrics_.DeclareCounter("pocket_http_accept_errors_total",
                          "Failed accept() calls (out of file descriptors, memory ...).");
  metrics_.DeclareCounter("pocket_http_accept_pauses_total",
                          "Episodes of failing accepts, each paused with back-off and logged once.");
  HttpOptions http = options_.http;
  http_ = std::make_unique<HttpServer>(
      http, [this](HttpRequest r, std::shared_ptr<Exchange> e) { Handle(std::move(r), std::move(e)); },
      HttpLayerErrorBody);
}

Server::~Server() { Stop(); }

Status Server::Start() {
  if (options_.collab) {
    sync::SyncOptions so;
    so.data_dir = options_.collab_dir;
    collab_ = sync::SyncService::Create(http_->io_context(), so);
    http_->SetUpgradeHandler(
        "/collab/", [svc = collab_](boost::beast::tcp_stream stream,
                                    boost::beast::http::request<boost::beast::http::string_body> req,
                                    std::shared_ptr<void> hold) {
          svc->HandleUpgrade(std::move(stream), std::move(req), std::move(hold));
        });
  }
  const int threads = options_.max_active + options_.max_queue;
  for (int i = 0; i < threads; ++i) workers_.emplace_back([this] { Worker(); });
  return http_->Start();
}

// Shutdown: new generation steps stop at once (stopping()), connections close so every
// exchange is cancelled, the HTTP layer gives handlers shutdown_grace_ms to let go, then
// the workers are joined. A local generation ends at its next token; a request not yet
// routed, or between a failed remote call and its local fallback, ends there (its
// reservation released); a remote call in flight ends within kCancelPollMs (the HTTP
// client polls stopping()); only name resolution of a backend's host is not cut short.
// `pocket serve` bounds the whole stop all the same (--shutdown-timeout-ms).
void Server::Stop() {
  stop_requested_.store(true);
  if (workers_.empty()) return;
  if (collab_) collab_->Shutdown();
  http_->Stop();
  {
    std::lock_guard<std::mutex> l(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  slot_cv_.notify_all();
  for (auto& t : workers_) t.join();
  workers_.clear();
}

void Server::Worker() {
  for (;;) {
    std::function<void()> task;
    {
      std::unique_lock<std::mutex> l(mu_);
      cv_.wait(l, [&] { return stopping_ || !tasks_.empty(); });
      if (tasks_.empty()) return;
      task = std::move(tasks_.front());
      tasks_.pop_front();
    }
    task();
  }
}

bool Server::Submit(std::function<void()> task) {
  {
    std::lock_guard<std::mutex> l(mu_);
    if (stopping_) return false;
    tasks_.push_back(std::move(task));
  }
  cv_.notify_one();
  return true;
}

Model* Server::FindModel(const std::string& id) const {
  for (const auto& m : models_)
    if (m->id() == id) return m.get();
  return nullptr;
}

void Server::Reply(Call& call, int status, std::string body, Headers extra) {
  call.http_status = status;
  extra.emplace_back("Content-Type", "application/json");
  if (!call.route_header.empty()) extra.emplace_back("x-pocket-route", call.route_header);
  if (!call.id.empty()) extra.emplace_back("x-request-id", call.id);
  call.ex->Respond(status, std::move(extra), std::move(body));
}

void Server::Fail(Call& call, const Status& status, const std::string& code,
                  const std::string& param) {
  HttpError e = ToHttpError(status, code, param);
  call.error = status.message();
  Headers extra;
  if (e.status == 429 && code != "budget_exceeded")
    extra.emplace_back("Retry-After", std::to_string(options_.retry_after_s));
  Reply(call, e.status, e.body, std::move(extra));
}

void Server::Handle(HttpRequest request, std::shared_ptr<Exchange> exchange) {
  auto call = std::make_shared<Call>();
  call->start_ns = MonotonicNs();
  call->req = std::move(request);
  call->ex = std::make_shared<TrackedExchange>(std::move(exchange));
  Contain(*call, "handler", [&] { Route(call); });
}

void Server::Contain(Call& c, const char* stage, const std::function<void()>& work) {
  std::string what;
  try {
    work();
    return;
  } catch (const std::exception& e) {
    what = e.what();
  } catch (...) {
    what = "an exception that is not a std::exception";
  }
  // A bug, not a bad request (those are refused before anything runs): say so in the log
  // and the metrics, answer 500, free what the request held, keep serving.
  try {
    PK_LOG(kError) << "request " << (c.id.empty() ? "-" : c.id) << " (" << c.endpoint
                   << "): unexpected failure in the " << stage << ": " << what;
    metrics_.Add("pocket_internal_errors_total", {{"endpoint", c.endpoint}});
    c.error = "internal: " + what;
    c.finish_reason = "error";
    if (c.plan.reservation_id >= 0) {
      // The remote may have been called: settle the reserved worst case (a no-op when the
      // reservation was already settled or released), as a stream without usage does.
      (void)router_->Settle(c.plan, router::Router::Assess(c.plan, router::UsageReport{},
                                                            /*complete=*/false));
    }
    const Status status =
        Status::Internal("the server failed while handling this request; it was not completed");
    c.http_status = c.ex->state() == TrackedExchange::kNothingSent ? 500 : c.http_status;
    switch (c.ex->state()) {
      case TrackedExchange::kNothingSent:
        Fail(c, status, "internal_error");
        break;
      case TrackedExchange::kStreaming:
        c.ex->Write("data: " + ToHttpError(status, "internal_error").body + "\n\n");
        c.ex->Write("data: [DONE]\n\n");
        c.ex->End();
        break;
      case TrackedExchange::kFinished:
        break;
    }
    metrics_.Add("pocket_http_requests_total",
                 {{"endpoint", c.endpoint}, {"status", std::to_string(c.http_status)}});
    LogCall(c);
  } catch (...) {
    // Nothing more can be done for this request; the server must stay up.
  }
}

void Server::Route(const std::shared_ptr<Call>& call) {
  const std::string& path = call->req.path;
  const std::string& method = call->req.method;
  auto done = [&] {
    metrics_.Add("pocket_http_requests_total",
                 {{"endpoint", call->endpoint}, {"status", std::to_string(call->http_status)}});
  };
  if (path == "/health") {
    call->endpoint = "health";
    Reply(*call, 200, Dump(json{{"status", "ok"}, {"model", models_[0]->id()}}));
    return done();
  }
  // API keys: when the policy configures any, every /v1 and /metrics call needs one.
  if (!router_->policy().api_keys.empty() && path != "/health") {
    std::string auth = call->req.Header("authorization");
    const std::string bearer = "Bearer ";
    const router::ApiKey* key =
        auth.rfind(bearer, 0) == 0 ? router_->FindApiKey(auth.substr(bearer.size())) : nullptr;
    if (!key) {
      call->endpoint = "auth";
      Fail(*call, Status::InvalidArgument("missing or unknown API key"), "invalid_api_key");
      return done();
    }
    call->api_key_name = key->name;
  }
  if (path == "/metrics") {
    call->endpoint = "metrics";
    call->http_status = 200;
    done();
    call->ex->Respond(200, {{"Content-Type", "text/plain; version=0.0.4; charset=utf-8"}},
                      RenderMetrics());
    return;
  }
  if (path == "/v1/models") {
    call->endpoint = "models";
    HandleModels(*call);
    return done();
  }
  const bool is_chat = path == "/v1/chat/completions";
  const bool is_completion = path == "/v1/completions";
  const bool is_embed = path == "/v1/embeddings";
  if (!is_chat && !is_completion && !is_embed) {
    call->endpoint = "other";
    Fail(*call, Status::NotFound("no endpoint " + method + " " + path), "not_found");
    return done();
  }
  call->endpoint = is_chat ? "chat" : is_completion ? "completions" : "embeddings";
  if (method != "POST") {
    Fail(*call, Status::InvalidArgument(path + " takes POST"), "method_not_allowed");
    return done();
  }
  if (auto e = ParseRequestBody(call->req.body, &call->body)) {
    Fail(*call, e->status, e->code, e->param);
    return done();
  }
  if (is_embed) {
    HandleEmbeddings(*call);
    return done();
  }
  HandleGeneration(call);
}

void Server::HandleModels(Call& call) {
  json data = json::array();
  const auto created = static_cast<int64_t>(WallSeconds());
  for (const auto& m : models_)
    data.push_back({{"id", m->id()}, {"object", "model"}, {"created", created}, {"owned_by", "pocket"},
                    {"context_length", m->context_length()}});
  for (const auto& b : router_->policy().backends) {
    if (b.kind != router::BackendKind::kRemote || !b.disabled_reason.empty()) continue;
    data.push_back({{"id", b.name}, {"object", "model"}, {"created", created},
                    {"owned_by", "remote:" + b.model}});
  }
  data.push_back({{"id", "auto"}, {"object", "model"}, {"created", created}, {"owned_by", "pocket-router"}});
  Reply(call, 200, Dump(json{{"object", "list"}, {"data", data}}));
}

namespace {

// The body a remote call sends, before redaction: the client's body as it came (every
// field, unknown ones included) less the `pocket` extensions and `best_of`, with the
// completion limit that was reserved, and every string made valid UTF-8 (what the
// serialiser would send anyway). The privacy scan and the prompt's token bound run over
// exactly this; Router::CallRemote only adds the backend's model id and the stream flags.
json RemoteBody(const json& client_body, int64_t max_tokens) {
  json body = client_body;
  body.erase("pocket");
  // The remote gets exactly the completion limit that was reserved, under whichever name(s)
  // the client used: with both names, or a null, it could otherwise honour a larger limit
  // (or its own default) than the budget reserved.
  bool limit_named = false;
  for (const char* key : {"max_tokens", "max_completion_tokens"}) {
    if (!body.contains(key)) continue;
    body[key] = max_tokens;
    limit_named = true;
  }
  if (!limit_named) body["max_tokens"] = max_tokens;
  // best_of (completions) has the remote generate and bill that many completions: more than
  // was reserved, and the local model has no such option either. (`n` is refused unless 1.)
  body.erase("best_of");
  router::SanitizeUtf8(&body);
  return body;
}

}  // namespace

void Server::HandleGeneration(std::shared_ptr<Call> call) {
  Call& c = *call;
  const json& b = c.body;
  const bool chat = c.endpoint == "chat";
  c.id = (chat ? "chatcmpl-" : "cmpl-") + std::to_string(next_id_.fetch_add(1));
  auto done = [&] {
    metrics_.Add("pocket_http_requests_total",
                 {{"endpoint", c.endpoint}, {"status", std::to_string(c.http_status)}});
    LogCall(c);
  };
  GenerationFields fields;
  if (auto e = ParseGenerationRequest(b, chat, options_.request_limits, &fields)) {
    Fail(c, e->status, e->code, e->param);
    return done();
  }
  c.model_name = std::move(fields.model);
  c.gen = std::move(fields.gen);
  c.stream = fields.stream;
  c.include_usage = fields.include_usage;
  // Pocket extensions (the body's `pocket` object and the x-pocket-* headers).
  PocketExtensions ext;
  if (auto e = ParsePocketExtensions(b, c.req, &ext)) {
    Fail(c, e->status, e->code, e->param);
    return done();
  }
  c.route_req.marked_private = ext.marked_private;
  c.route_req.area = std::move(ext.area);
  c.route_req.quality_high = ext.quality_high;
  c.truncate = ext.truncate;

  // Which model or backend?
  const router::Policy& policy = router_->policy();
  c.model = models_[0].get();
  if (c.model_name != "auto" && !c.model_name.empty()) {
    if (Model* m = FindModel(c.model_name)) {
      c.model = m;
      c.route_req.pinned = router::LocalBackendName(policy);
    } else if (const router::Backend* rb = policy.FindBackendByModel(c.model_name)) {
      c.route_req.pinned = rb->name;
    } else {
      Fail(c, Status::NotFound("model '" + c.model_name + "' does not exist"), "model_not_found",
           "model");
      return done();
    }
  }
  if (!c.route_req.area.empty() && !policy.FindArea(c.route_req.area)) {
    Fail(c, Status::InvalidArgument("unknown feature area '" + c.route_req.area + "'"), "",
         "pocket.area");
    return done();
  }

  // Admission: bounded queue.
  const int limit = options_.max_active + options_.max_queue;
  if (inflight_.fetch_add(1) >= limit) {
    inflight_.fetch_sub(1);
    metrics_.Add("pocket_rejected_requests_total", {{"reason", "queue_full"}});
    Fail(c, Status::ResourceExhausted("server busy: " + std::to_string(limit) +
                                      " requests in flight; retry later"),
         "rate_limit_exceeded");
    return done();
  }
  c.admitted = true;
  bool submitted = false;
  try {
    submitted = Submit([this, call] {
      // The admission is given back however the request ends (the local slot is an RAII
      // guard inside RunLocal).
      struct Admission {
        std::atomic<int>& inflight;
        ~Admission() { inflight.fetch_sub(1); }
      } admission{inflight_};
      Contain(*call, "generation", [&] { RunGeneration(call); });
    });
  } catch (...) {
    inflight_.fetch_sub(1);  // the task never got queued; Contain answers the request
    throw;
  }
  if (!submitted) {
    inflight_.fetch_sub(1);
    Fail(c, Status::ResourceExhausted("server is shutting down"), "server_overloaded");
    return done();
  }
}

void Server::RunGeneration(std::shared_ptr<Call> call) {
  Call& c = *call;
  // Facts for the router.
  std::string text = c.gen.prompt;
  for (const auto& m : c.gen.messages) text += m.content + "\n";
  c.route_req.max_tokens =
      c.gen.max_tokens > 0 ? c.gen.max_tokens : options_.default_remote_max_tokens;
  // The privacy scan covers everything a remote call would send, not only the text.
  c.remote_body = RemoteBody(c.body, c.route_req.max_tokens);
  c.route_req.privacy_hits = router_->classifier().ScanJson(c.remote_body);
  // Providers bill tool and function definitions as prompt too.
  size_t billed_bytes = text.size() + 16 * c.gen.messages.size();
  for (const char* key : {"tools", "functions"})
    if (auto it = c.remote_body.find(key); it != c.remote_body.end()) billed_bytes += Dump(*it).size();
  c.route_req.prompt_tokens = router::UpperBoundTokens(billed_bytes);
  c.route_req.local_context_length = c.model->context_length();
  // The prompt is templated and tokenized here, once: the router's count, the context check
  // and truncation, and the model's Generate (through gen.prompt_tokens) all use this.
  if (auto n = c.model->PreparePrompt(&c.gen); n.ok()) {
    c.prepared_tokens = *n;
    c.route_req.local_prompt_tokens = *n;
  } else {
    c.prepared = n.status();
  }
  // Everything above may take a while (a long body, a queue before this worker): nothing is
  // reserved and no remote is called for a client that has gone or a server that stops.
  if (!Abandoned(c, "routing")) {
    auto plan = router_->Plan(c.route_req, c.api_key_name, WallSeconds());
    if (!plan.ok()) {
      Fail(c, plan.status(), "", "pocket.area");
    } else {
      c.plan = std::move(*plan);
      c.route_header = c.plan.decision.Header();
      c.reason = c.plan.decision.reason;
      bool served = false;
      if (c.plan.decision.remote) served = RunRemote(c);
      // A failed remote call may have taken up to the backend's timeout.
      if (!served && !(c.plan.decision.remote && Abandoned(c, "fallback"))) RunLocal(c);
    }
  }
  metrics_.Add("pocket_route_decisions_total", {{"route", c.route}, {"reason", c.reason}});
  metrics_.Add("pocket_http_requests_total",
               {{"endpoint", c.endpoint}, {"status", std::to_string(c.http_status)}});
  const double total = Seconds(c.start_ns, MonotonicNs());
  metrics_.Observe("pocket_request_duration_seconds", {{"endpoint", c.endpoint}}, total);
  LogCall(c);
}

namespace {

json ChunkJson(const std::string& id, bool chat, const std::string& model, int64_t created,
               const json& delta_or_text, const json& finish) {
  json choice = {{"index", 0}, {"finish_reason", finish}};
  if (chat) choice["delta"] = delta_or_text;
  else {
    choice["text"] = delta_or_text;
    choice["logprobs"] = nullptr;
  }
  return {{"id", id},
          {"object", chat ? "chat.completion.chunk" : "text_completion"},
          {"created", created},
          {"model", model},
          {"choices", json::array({choice})}};
}

json Usage(int prompt, int completion) {
  return {{"prompt_tokens", prompt},
          {"completion_tokens", completion},
          {"total_tokens", prompt + completion}};
}

std::string Sse(const json& j) { return "data: " + Dump(j) + "\n\n"; }

}  // namespace

bool Server::Leaving(const Call& c) const { return c.ex->cancelled() || stopping(); }

bool Server::Abandoned(Call& c, const char* stage) {
  if (!Leaving(c)) return false;
  (void)router_->Release(c.plan);  // no-op when nothing is reserved
  metrics_.Add("pocket_cancelled_requests_total", {{"stage", stage}});
  c.finish_reason = "cancelled";
  if (c.ex->cancelled()) {
    c.http_status = 499;
  } else {
    Fail(c, Status::ResourceExhausted("server is shutting down"), "server_overloaded");
  }
  return true;
}

bool Server::RunRemote(Call& c) {
  const router::Backend& backend = *c.plan.backend;
  if (Abandoned(c, "remote")) return true;
  json body = std::move(c.remote_body);
  if (c.plan.decision.redact) {
    // Every string of the body, and text split across strings, is redacted; if anything
    // still matches afterwards (or sits where it cannot be replaced: a key, a number),
    // defence in depth: stay local. Router::CallRemote scans the body once more at the wire.
    if (!router_->classifier().RedactJson(&body)) {
      (void)router_->Release(c.plan);
      c.route_header = "local; reason=privacy_pattern; redaction incomplete";
      c.reason = "privacy_pattern";
      return false;
    }
  }
  if (c.stream) return RunRemoteStream(c, body);
  const uint64_t t0 = MonotonicNs();
  // The call ends within kCancelPollMs of the client leaving or Stop(), not at the
  // backend's timeout.
  auto reply =
      router_->CallRemote(backend, c.endpoint == "chat" ? "/chat/completions" : "/completions",
                          body, [&c, this] { return Leaving(c); });
  if (!reply.ok()) {
    // Cut short by us: the reservation is released, as after any failed call.
    if (reply.status().code() == StatusCode::kCancelled && Abandoned(c, "remote")) return true;
    RecordFallback(c, reply.status());
    return false;
  }
  c.route = "remote";
  SettleRemote(c, reply->usage, /*complete=*/true);
  c.first_token_ns = MonotonicNs();
  c.gen_start_ns = t0;
  try {
    c.finish_reason = reply->body.at("choices").at(0).value("finish_reason", "stop");
  } catch (const std::exception&) {
    c.finish_reason.clear();
  }
  Reply(c, 200, Dump(reply->body));
  return true;
}

// Settles the remote call of `c` from the usage the remote reported, checked by the router
// (an anomaly is logged, counted and settled at the reservation), and records the settled
// tokens and cost in the call and /metrics.
void Server::SettleRemote(Call& c, const router::UsageReport& usage, bool complete) {
  const router::Backend& backend = *c.plan.backend;
  const router::Settlement settled = router_->Assess(c.plan, usage, complete);
  if (!settled.anomaly.empty()) {
    PK_LOG(kWarning) << settled.detail;
    metrics_.Add("pocket_remote_usage_anomalies_total",
                 {{"backend", backend.name}, {"kind", settled.anomaly}});
  }
  if (Status s = router_->Settle(c.plan, settled); !s.ok()) {
    PK_LOG(kError) << "ledger: " << s.ToString();
  }
  c.prompt_tokens = static_cast<int>(settled.prompt_tokens);
  c.completion_tokens = static_cast<int>(settled.completion_tokens);
  c.cost_usd = router::MicrosToUsd(settled.micro_usd);
  const std::string area =
      c.route_req.area.empty() ? router_->policy().default_area : c.route_req.area;
  metrics_.Add("pocket_remote_cost_usd_total", {{"area", area}, {"backend", backend.name}},
               c.cost_usd);
  metrics_.Add("pocket_prompt_tokens_total", {{"route", "remote"}}, c.prompt_tokens);
  metrics_.Add("pocket_completion_tokens_total", {{"route", "remote"}}, c.completion_tokens);
}

void Server::RecordFallback(Call& c, const Status& status) {
  const router::Backend& backend = *c.plan.backend;
  const std::string& msg = status.message();
  const std::string kind = msg.substr(0, msg.find(':'));
  (void)router_->Release(c.plan);
  metrics_.Add("pocket_remote_fallbacks_total", {{"backend", backend.name}, {"reason", kind}});
  c.route_header = "local; reason=fallback; remote=" + backend.name + "; error=" + kind;
  c.reason = "fallback_" + kind;
  c.error = msg;
  PK_LOG(kWarning) << "remote " << backend.name << " failed, running locally: " << msg;
}

// Streams the remote's answer through as it arrives. Events are held back until the first
// one that carries text, a finish_reason or usage: until then nothing has reached the
// client, so a failing remote can still fall back to the local model (false). After it,
// a failure ends the client's stream with an error event, as a failing local stream does.
// Each forwarded chunk keeps the remote's fields (model: the model that answered, as in a
// non-streamed remote answer) but takes this request's id and created time, so the
// client sees one stream shaped like a local one.
bool Server::RunRemoteStream(Call& c, const json& body) {
  const router::Backend& backend = *c.plan.backend;
  const bool chat = c.endpoint == "chat";
  const int64_t created = static_cast<int64_t>(WallSeconds());
  std::vector<std::string> held;  // serialized events not yet sent
  bool started = false, client_gone = false;
  router::UsageReport usage;
  auto start = [&] {
    c.http_status = 200;
    c.ex->StartStream(200, {{"Content-Type", "text/event-stream"},
                            {"Cache-Control", "no-cache"},
                            {"x-pocket-route", c.route_header},
                            {"x-request-id", c.id}});
    started = true;
    for (auto& e : held) c.ex->Write(std::move(e));
    held.clear();
  };
  auto on_event = [&](json& ev) -> bool {
    if (c.ex->cancelled()) {
      client_gone = true;
      return false;
    }
    const auto usage_field = ev.find("usage");
    const bool has_usage = usage_field != ev.end() && !usage_field->is_null();
    usage.Read(ev);
    bool carries = has_usage;
    if (auto ch = ev.find("choices"); ch != ev.end() && ch->is_array() && !ch->empty()) {
      const json& choice = (*ch)[0];
      std::string piece;
      if (chat) {
        if (auto d = choice.find("delta"); d != choice.end() && d->is_object()) {
          if (auto t = d->find("content"); t != d->end() && t->is_string())
            piece = t->get<std::string>();
        }
      } else if (auto t = choice.find("text"); t != choice.end() && t->is_string()) {
        piece = t->get<std::string>();
      }
      if (!piece.empty() && c.first_token_ns == 0) c.first_token_ns = MonotonicNs();
      if (auto f = choice.find("finish_reason"); f != choice.end() && f->is_string())
        c.finish_reason = f->get<std::string>();
      carries = carries || !piece.empty() || !c.finish_reason.empty();
    } else if (!has_usage || !c.include_usage) {
      return true;  // no choice to show: the usage chunk the client did not ask for, or noise
    }
    // Local chunks carry no "usage": null (some remotes put it on every chunk).
    if (!c.include_usage || !has_usage) ev.erase("usage");
    ev["id"] = c.id;
    ev["created"] = created;
    if (!ev.contains("model")) ev["model"] = backend.model;
    if (!ev.contains("object")) ev["object"] = chat ? "chat.completion.chunk" : "text_completion";
    std::string sse = Sse(ev);
    if (started) {
      if (!c.ex->Write(std::move(sse))) {
        client_gone = true;
        return false;
      }
      return true;
    }
    held.push_back(std::move(sse));
    if (carries) start();
    return true;
  };
  c.gen_start_ns = MonotonicNs();
  Status s = router_->CallRemoteStream(backend, chat ? "/chat/completions" : "/completions", body,
                                       on_event, [&c, this] { return Leaving(c); });
  // Stopped by us (the client left or the server stops) while the remote was answering:
  // the remote may bill what it generated, so it is settled like a client that left.
  const bool cut = s.code() == StatusCode::kCancelled && Leaving(c);
  if (!s.ok() && !started && !client_gone && !cut) {
    RecordFallback(c, s);
    c.first_token_ns = 0;
    c.finish_reason.clear();
    return false;
  }
  c.route = "remote";
  // Without usage because the stream broke before its last event or the client left, the
  // reservation is settled (the remote may have billed tokens it never sent) and no anomaly
  // is counted; a whole stream without usage (a remote that ignores include_usage) is one.
  SettleRemote(c, usage, /*complete=*/s.ok() && !client_gone && !c.ex->cancelled());
  if (c.first_token_ns)
    metrics_.Observe("pocket_time_to_first_token_seconds", {{"route", "remote"}},
                     Seconds(c.start_ns, c.first_token_ns));
  if (client_gone || cut || c.ex->cancelled()) {
    metrics_.Add("pocket_cancelled_requests_total", {{"stage", "generating"}});
    c.finish_reason = "cancelled";
    if (started)
      c.ex->End();
    else if (c.ex->cancelled() || client_gone)
      c.http_status = 499;
    else
      Fail(c, Status::ResourceExhausted("server is shutting down"), "server_overloaded");
    return true;
  }
  if (!started) start();  // an answer with no text at all
  if (!s.ok()) {
    // Headers and text are out: no fallback now. End the stream the way a failing local
    // stream ends.
    const std::string kind = s.message().substr(0, s.message().find(':'));
    metrics_.Add("pocket_remote_stream_failures_total",
                 {{"backend", backend.name}, {"reason", kind}});
    c.error = s.message();
    c.finish_reason = "error";
    PK_LOG(kWarning) << "remote " << backend.name << " failed mid-stream: " << s.message();
    HttpError e = ToHttpError(Status::IOError("remote backend '" + backend.name +
                                              "' failed mid-stream: " + s.message()),
                              "remote_stream_failed");
    c.ex->Write("data: " + e.body + "\n\n");
  }
  c.ex->Write("data: [DONE]\n\n");
  c.ex->End();
  return true;
}

void Server::RunLocal(Call& c) {
  c.route = "local";
  const bool chat = c.endpoint == "chat";
  Model& model = *c.model;
  const int ctx = model.context_length();
  if (!c.prepared.ok()) return Fail(c, c.prepared);
  int prompt_tokens = c.prepared_tokens;
  const int reserve = c.gen.max_tokens > 0 ? c.gen.max_tokens : 1;
  if (prompt_tokens + reserve > ctx) {
    if (!c.truncate || !chat) {
      return Fail(c,
                  Status::InvalidArgument(
                      "This model's maximum context length is " + std::to_string(ctx) +
                      " tokens. However, you requested " + std::to_string(prompt_tokens + reserve) +
                      " tokens (" + std::to_string(prompt_tokens) + " in the messages, " +
                      std::to_string(reserve) + " in the completion). Please reduce the length "
                      "of the messages or completion" +
                      (chat ? ", or ask for truncation with {\"pocket\": {\"truncate\": true}}." : ".")),
                  "context_length_exceeded", chat ? "messages" : "prompt");
    }
    // Drop the oldest non-system messages (never the last one) until the rest fits; the
    // work stops as soon as the client leaves or the server stops.
    const int original = prompt_tokens;
    const bool had_ids = !c.gen.prompt_tokens.empty();
    auto t = TruncateToFit(model, &c.gen, prompt_tokens, reserve, ctx,
                           [&] { return c.ex->cancelled() || stopping(); });
    if (!t.ok()) {
      if (t.status().code() != StatusCode::kCancelled) return Fail(c, t.status());
      c.finish_reason = "cancelled";
      if (c.ex->cancelled()) {
        metrics_.Add("pocket_cancelled_requests_total", {{"stage", "truncating"}});
        c.http_status = 499;
        return;
      }
      return Fail(c, Status::ResourceExhausted("server is shutting down"), "server_overloaded");
    }
    prompt_tokens = t->prompt_tokens;
    if (!t->fits)
      return Fail(c,
                  Status::InvalidArgument("even after dropping " +
                                          std::to_string(t->dropped_messages) +
                                          " earlier messages the prompt needs " +
                                          std::to_string(prompt_tokens + reserve) +
                                          " tokens; the context is " + std::to_string(ctx)),
                  "context_length_exceeded", "messages");
    if (had_ids && t->dropped_messages > 0) {
      // The truncated request's ids (TruncateToFit cleared those of the whole one).
      if (auto again = model.PreparePrompt(&c.gen); !again.ok()) return Fail(c, again.status());
    }
    c.truncated = {{"dropped_messages", t->dropped_messages},
                   {"original_prompt_tokens", original},
                   {"prompt_tokens", prompt_tokens}};
  }

  // Wait for a generation slot; a client that leaves while queued frees its place.
  const uint64_t wait_start = MonotonicNs();
  metrics_.Set("pocket_requests_queued", {}, std::max(0, inflight_.load() - active_.load() - 1));
  {
    std::unique_lock<std::mutex> l(slot_mu_);
    while (free_slots_ == 0 && !c.ex->cancelled()) {
      slot_cv_.wait_for(l, std::chrono::milliseconds(50));
    }
    if (c.ex->cancelled()) {
      metrics_.Add("pocket_cancelled_requests_total", {{"stage", "queued"}});
      c.finish_reason = "cancelled";
      c.http_status = 499;
      return;
    }
    --free_slots_;
  }
  struct SlotRelease {
    Server* s;
    ~SlotRelease() {
      {
        std::lock_guard<std::mutex> l(s->slot_mu_);
        ++s->free_slots_;
      }
      s->slot_cv_.notify_one();
      s->active_.fetch_sub(1);
      s->metrics_.Set("pocket_requests_active", {}, s->active_.load());
    }
  } release{this};
  active_.fetch_add(1);
  metrics_.Set("pocket_requests_active", {}, active_.load());
  c.queue_wait_s = Seconds(wait_start, MonotonicNs());

  const int64_t created = static_cast<int64_t>(WallSeconds());
  const std::string model_id = model.id();
  if (c.stream) {
    Headers h{{"Content-Type", "text/event-stream"}, {"Cache-Control", "no-cache"},
              {"x-pocket-route", c.route_header}, {"x-request-id", c.id}};
    if (!c.truncated.is_null()) h.emplace_back("x-pocket-truncated", Dump(c.truncated));
    c.http_status = 200;
    c.ex->StartStream(200, std::move(h));
    if (chat)
      c.ex->Write(Sse(ChunkJson(c.id, true, model_id, created,
                                {{"role", "assistant"}, {"content", ""}}, nullptr)));
  }
  c.gen_start_ns = MonotonicNs();
  auto on_text = [&](std::string_view piece) -> bool {
    if (c.first_token_ns == 0) c.first_token_ns = MonotonicNs();
    if (c.ex->cancelled() || stopping()) return false;
    if (!c.stream) return true;
    const std::string p(piece);
    return c.ex->Write(Sse(ChunkJson(c.id, chat, model_id, created,
                                     chat ? json{{"content", p}} : json(p), nullptr)));
  };
  GenerationStats stats;
  auto result = model.Generate(c.gen, on_text, &stats);
  c.queue_wait_s += stats.queue_wait_s;
  metrics_.Observe("pocket_queue_wait_seconds", {}, c.queue_wait_s);
  if (!result.ok()) {
    if (c.stream) {
      HttpError e = ToHttpError(result.status());
      c.ex->Write("data: " + e.body + "\n\n");
      c.ex->Write("data: [DONE]\n\n");
      c.ex->End();
      c.error = result.status().message();
      return;
    }
    return Fail(c, result.status(),
                result.status().code() == StatusCode::kInvalidArgument ? "context_length_exceeded" : "");
  }
  const auto& r = *result;
  c.prompt_tokens = r.prompt_tokens;
  c.completion_tokens = r.completion_tokens;
  c.finish_reason = r.finish_reason;
  metrics_.Add("pocket_prompt_tokens_total", {{"route", "local"}}, r.prompt_tokens);
  metrics_.Add("pocket_completion_tokens_total", {{"route", "local"}}, r.completion_tokens);
  if (c.first_token_ns) {
    metrics_.Observe("pocket_time_to_first_token_seconds", {{"route", "local"}},
                     Seconds(c.start_ns, c.first_token_ns));
  }
  const double gen_s = Seconds(c.gen_start_ns, MonotonicNs());
  if (gen_s > 0 && r.completion_tokens > 0)
    metrics_.Observe("pocket_generation_tokens_per_second", {}, r.completion_tokens / gen_s);
  if (r.finish_reason == "cancelled") {
    metrics_.Add("pocket_cancelled_requests_total", {{"stage", "generating"}});
    if (c.http_status == 0) c.http_status = 499;
    if (c.stream) c.ex->End();
    return;
  }
  const std::string finish = r.finish_reason;
  if (c.stream) {
    c.ex->Write(Sse(ChunkJson(c.id, chat, model_id, created, chat ? json::object() : json(""), finish)));
    if (c.include_usage) {
      json u = ChunkJson(c.id, chat, model_id, created, json::object(), nullptr);
      u["choices"] = json::array();
      u["usage"] = Usage(r.prompt_tokens, r.completion_tokens);
      c.ex->Write(Sse(u));
    }
    c.ex->Write("data: [DONE]\n\n");
    c.ex->End();
    return;
  }
  json choice = {{"index", 0}, {"finish_reason", finish}, {"logprobs", nullptr}};
  if (chat) choice["message"] = {{"role", "assistant"}, {"content", r.text}};
  else choice["text"] = r.text;
  json out = {{"id", c.id},
              {"object", chat ? "chat.completion" : "text_completion"},
              {"created", created},
              {"model", model_id},
              {"choices", json::array({choice})},
              {"usage", Usage(r.prompt_tokens, r.completion_tokens)},
              {"system_fingerprint", "pocket"}};
  if (!c.truncated.is_null()) out["pocket"] = {{"truncated", c.truncated}};
  Reply(c, 200, Dump(out));
}

void Server::HandleEmbeddings(Call& c) {
  c.id = "emb-" + std::to_string(next_id_.fetch_add(1));
  EmbeddingsFields fields;
  if (auto e = ParseEmbeddingsRequest(c.body, options_.request_limits, &fields))
    return Fail(c, e->status, e->code, e->param);
  Model* model = models_[0].get();
  {
    const std::string& name = fields.model;
    if (name != "auto" && !name.empty()) {
      model = FindModel(name);
      if (!model)
        return Fail(c, Status::NotFound("model '" + name + "' does not exist (embeddings are "
                                        "computed by local models only)"),
                    "model_not_found", "model");
    }
  }
  const std::vector<std::string>& inputs = fields.inputs;
  const std::string format = fields.base64 ? "base64" : "float";
  c.route_header = "local; reason=embeddings";
  json data = json::array();
  int total_tokens = 0;
  for (size_t i = 0; i < inputs.size(); ++i) {
    // Up to 2048 inputs: stop between them once the client has gone or the server stops.
    if (c.ex->cancelled() || stopping()) {
      metrics_.Add("pocket_cancelled_requests_total", {{"stage", "embedding"}});
      c.http_status = 499;
      return;
    }
    int tokens = 0;
    auto v = model->Embed(inputs[i], &tokens);
    if (!v.ok())
      return Fail(c, v.status(),
                  v.status().code() == StatusCode::kInvalidArgument ? "context_length_exceeded" : "",
                  "input");
    total_tokens += tokens;
    json e = {{"object", "embedding"}, {"index", i}};
    if (format == "base64") e["embedding"] = Base64(v->data(), v->size() * sizeof(float));
    else e["embedding"] = *v;
    data.push_back(std::move(e));
  }
  c.prompt_tokens = total_tokens;
  Reply(c, 200, Dump(json{{"object", "list"},
                          {"data", data},
                          {"model", model->id()},
                          {"usage", {{"prompt_tokens", total_tokens}, {"total_tokens", total_tokens}}}}));
}

std::string Server::RenderMetrics() {
  metrics_.Set("pocket_process_resident_memory_bytes", {}, static_cast<double>(CurrentRssBytes()));
  metrics_.Set("pocket_process_peak_resident_memory_bytes", {}, static_cast<double>(PeakRssBytes()));
  uint64_t kv = 0;
  for (const auto& m : models_) kv += m->kv_cache_bytes();
  metrics_.Set("pocket_kv_cache_bytes", {}, static_cast<double>(kv));
  for (const auto& m : models_) {
    metrics_.Set("pocket_decode_steps_total", {{"model", m->id()}},
                 static_cast<double>(m->decode_steps_total()));
    metrics_.Set("pocket_decode_step_seconds_total", {{"model", m->id()}},
                 m->decode_step_seconds_total());
  }
  metrics_.Set("pocket_requests_queued", {}, std::max(0, inflight_.load() - active_.load()));
  const HttpStats hs = http_->stats();
  metrics_.Set("pocket_http_connections_open", {}, hs.open_connections);
  metrics_.Set("pocket_http_connections_refused_total", {{"reason", "client_limit"}},
               static_cast<double>(hs.refused_client_limit));
  metrics_.Set("pocket_http_connections_refused_total", {{"reason", "global_limit"}},
               static_cast<double>(hs.refused_global_limit));
  metrics_.Set("pocket_http_first_byte_timeouts_total", {},
               static_cast<double>(hs.first_byte_timeouts));
  metrics_.Set("pocket_http_accept_errors_total", {}, static_cast<double>(hs.accept_errors));
  metrics_.Set("pocket_http_accept_pauses_total", {}, static_cast<double>(hs.accept_pauses));
  const double now = WallSeconds();
  for (const auto& a : router_->policy().areas) {
    auto sp = router_->ledger().SpendFor(router::BudgetScope::Kind::kArea, a.name, now);
    if (!sp.ok()) continue;
    metrics_.Set("pocket_budget_spent_usd", {{"area", a.name}, {"period", "day"}},
                 router::MicrosToUsd(sp->day_micro_usd));
    metrics_.Set("pocket_budget_spent_usd", {{"area", a.name}, {"period", "month"}},
                 router::MicrosToUsd(sp->month_micro_usd));
    metrics_.Set("pocket_budget_limit_usd", {{"area", a.name}, {"period", "day"}}, a.budget.day_usd);
    metrics_.Set("pocket_budget_limit_usd", {{"area", a.name}, {"period", "month"}},
                 a.budget.month_usd);
  }
  return metrics_.RenderPrometheus();
}

void Server::LogCall(const Call& c) {
  if (!LogEnabled(LogLevel::kInfo)) return;
  const uint64_t now = MonotonicNs();
  const double total_s = Seconds(c.start_ns, now);
  const double gen_s = c.gen_start_ns ? Seconds(c.gen_start_ns, now) : 0;
  json j = {{"ts", WallSeconds()},
            {"level", "info"},
            {"event", "request"},
            {"id", c.id},
            {"endpoint", c.endpoint},
            {"model", c.model_name},
            {"status", c.http_status},
            {"stream", c.stream},
            {"route", c.route},
            {"reason", c.reason},
            {"route_header", c.route_header},
            {"prompt_tokens", c.prompt_tokens},
            {"completion_tokens", c.completion_tokens},
            {"queue_wait_ms", c.queue_wait_s * 1000},
            {"total_ms", total_s * 1000},
            {"cost_usd", c.cost_usd},
            {"finish_reason", c.finish_reason}};
  if (c.first_token_ns) j["ttft_ms"] = Seconds(c.start_ns, c.first_token_ns) * 1000;
  if (gen_s > 0 && c.completion_tokens > 0) j["tokens_per_s"] = c.completion_tokens / gen_s;
  if (!c.error.empty()) j["error"] = c.error;
  PK_LOG(kInfo) << Dump(j);
}

}  // namespace pocket::server
