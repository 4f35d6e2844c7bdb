// The Server's frame: creation (the metrics it declares), start and stop, the handler
// boundary (Handle, Contain), replies and failures, /metrics rendering and the per-request
// log line. The rest of the request's path is split by concern: routes.cc (endpoints and
// request parsing), admission.cc (the bounded queue, the worker pool and the slots),
// generation.cc (routing a generation and running it locally), remote_proxy.cc (remote
// backends), openai_json.cc and sse_writer.cc (the wire shapes).
#include "server/server.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <string>
#include <vector>

#include "base/clock.h"
#include "base/log.h"
#include "base/memory.h"
#include "server/errors.h"
#include "server/openai_json.h"
#include "server/server_internal.h"
#include "server/sse_writer.h"
#include "sync/sync_service.h"

namespace pocket::server {

using nlohmann::json;

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
        EndStreamWithError(*c.ex, ToHttpError(status, "internal_error").body);
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
