// The OpenAI-compatible local AI server behind `pocket serve`:
//   GET  / (the chat page, web/chat, when ServerOptions::web_root is set; no API key)
//   GET  /health, /metrics (Prometheus text), /v1/models
//   POST /v1/chat/completions, /v1/completions (streaming SSE or not), /v1/embeddings
// Each generation request is admitted into a bounded queue (429 + Retry-After when full),
// routed by router::Router (local model or remote backend, privacy, budgets, fallback to
// local when the remote fails; the decision goes into x-pocket-route), and measured (time
// to first token, tokens/s, queue wait, cost) into metrics and one JSON log line.
// Request extensions: header x-pocket-privacy: private | x-pocket-area: NAME |
// x-pocket-quality: high, or the same in the body as {"pocket": {"privacy": "private",
// "area": "...", "quality": "high", "truncate": true}}.
// Request bodies are parsed and validated by server/request.h (bounded depth, every field
// type-checked; 400 naming the field); an exception escaping a handler is contained at
// the handler boundary (Contain: 500, logged, counted) and the server keeps serving.
// The server's slots (max_active) and queue (max_queue) are the one admission queue: a
// model batches at least max_active sequences (Create checks Model::max_sequences), so an
// admitted request waits nowhere else. The code is split by concern: server.cc (frame),
// routes.cc, admission.cc, generation.cc, remote_proxy.cc, openai_json.cc, sse_writer.cc.
// Thread safety: Start/Stop from one thread; requests are served on the server's threads.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "base/status.h"
#include "net/http_server.h"
#include "router/router.h"
#include "server/metrics.h"
#include "server/model.h"
#include "server/request.h"

namespace pocket::sync {
class SyncService;
}  // namespace pocket::sync

namespace pocket::server {

using net::HttpOptions;
using net::HttpServer;
using net::HttpStats;

struct ServerOptions {
  HttpOptions http;
  int max_active = 8;  // requests generating at once (local slots)
  int max_queue = 32;  // admitted requests waiting for a slot; beyond: 429
  std::string default_ledger_path = "pocket-ledger.db";
  int retry_after_s = 1;
  // Sent to a remote when the request sets no max_tokens and generation_defaults has none.
  int default_remote_max_tokens = 1024;
  // Mount y-websocket collaboration rooms (sync::SyncService) on ws://host/collab/<room>.
  bool collab = false;
  std::string collab_dir;  // "" = rooms in memory
  RequestLimits request_limits;  // messages and prompt bytes per request (400 beyond)
  // Sampling and max_tokens of a chat or completion request that leaves them out, on every
  // route (a remote gets the request's own fields, except max_tokens: see
  // default_remote_max_tokens, which a default max_tokens replaces).
  GenerationDefaults generation_defaults;
  // Folder of the chat page answered at GET / ("/" is its index.html, "/NAME.EXT" its other
  // files); "" = none, and GET / is a 404 like any unknown path.
  std::string web_root;
};

class Server {
 public:
  // `models`: the local models, the first is the default for model "auto". The router's
  // policy decides about remote backends.
  static Result<std::unique_ptr<Server>> Create(ServerOptions options,
                                                std::vector<std::shared_ptr<Model>> models,
                                                router::Policy policy);
  ~Server();
  Status Start();
  // Ends in-flight generations (see server.cc), closes every connection and joins the
  // threads. Idempotent; stopping() is true from its first step.
  void Stop();
  // True from the moment Stop() begins: long steps of a request (truncation) check it
  // between steps and give up.
  bool stopping() const { return stop_requested_.load(); }
  uint16_t port() const { return http_->port(); }
  Metrics& metrics() { return metrics_; }
  router::Router& router() { return *router_; }

 private:
  struct Call;
  class TrackedExchange;
  Server(ServerOptions options, std::vector<std::shared_ptr<Model>> models,
         std::unique_ptr<router::Router> router);
  void Handle(HttpRequest request, std::shared_ptr<Exchange> exchange);
  void Route(const std::shared_ptr<Call>& call);
  // The handler boundary: runs `work`; an exception that escapes it (a bug) is logged,
  // counted in pocket_internal_errors_total, answered with a 500 (or, when a stream has
  // started, an error event that ends it), and the request's budget reservation is
  // settled; the server keeps serving.
  void Contain(Call& call, const char* stage, const std::function<void()>& work);
  void Fail(Call& call, const Status& status, const std::string& code = "",
            const std::string& param = "");
  void Reply(Call& call, int status, std::string body, Headers extra = {});
  void HandleGeneration(std::shared_ptr<Call> call);
  // Admission (admission.cc): the bounded queue and the local slots.
  bool Admit(const std::shared_ptr<Call>& call);
  bool WaitForSlot(Call& call);
  void ReleaseSlot();
  void RunGeneration(std::shared_ptr<Call> call);
  void RunLocal(Call& call);
  bool RunRemote(Call& call);
  bool RunRemoteStream(Call& call, const nlohmann::json& body);
  void RecordFallback(Call& call, const Status& status);
  // True when the client has gone or the server is stopping: then the call is answered
  // (499 for a client that left, 503 "server is shutting down" otherwise), its open
  // reservation released, and it is counted in pocket_cancelled_requests_total{stage}.
  bool Abandoned(Call& call, const char* stage);
  bool Leaving(const Call& call) const;
  void SettleRemote(Call& call, const router::UsageReport& usage, bool complete);
  void HandleEmbeddings(Call& call);
  void HandleModels(Call& call);
  std::string RenderMetrics();
  Model* FindModel(const std::string& id) const;
  void LogCall(const Call& call);
  void Worker();
  bool Submit(std::function<void()> task);

  ServerOptions options_;
  std::vector<std::shared_ptr<Model>> models_;
  std::unique_ptr<router::Router> router_;
  Metrics metrics_;
  std::unique_ptr<HttpServer> http_;
  std::shared_ptr<sync::SyncService> collab_;
  std::atomic<uint64_t> next_id_{1};
  std::atomic<int> inflight_{0};  // admitted generation requests (queued + active)
  std::atomic<int> active_{0};
  std::atomic<bool> stop_requested_{false};

  // Worker pool: one thread per admissible request, so a task never waits for a thread;
  // local slots are a separate gate (slots_).
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> tasks_;
  bool stopping_ = false;
  std::vector<std::thread> workers_;
  std::mutex slot_mu_;
  std::condition_variable slot_cv_;
  int free_slots_ = 0;
};

}  // namespace pocket::server
