// Internal to src/server: what the files of the Server share — the call as it moves
// through the server (Server::Call), the exchange that records what was sent
// (Server::TrackedExchange), and small helpers. Not for other layers (they use server.h).
// Thread safety: a Call belongs to one thread at a time (the HTTP handler, then one worker).
#pragma once

#include <nlohmann/json.hpp>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "router/router.h"
#include "runtime/engine.h"
#include "net/http_server.h"
#include "server/model.h"
#include "server/server.h"

namespace pocket::server {

// Seconds from `from_ns` to `to_ns` (0 when to_ns is not later).
inline double Seconds(uint64_t from_ns, uint64_t to_ns) {
  return to_ns > from_ns ? static_cast<double>(to_ns - from_ns) / 1e9 : 0.0;
}

// The body a remote call would send for `client_body` with the reserved completion limit
// `max_tokens` (remote_proxy.cc); the privacy scan and the prompt's bound run over it.
nlohmann::json RemoteBody(const nlohmann::json& client_body, int64_t max_tokens);

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
  nlohmann::json body;
  // Parsed generation request.
  runtime::GenerateRequest gen;
  bool max_tokens_requested = false;  // gen.max_tokens is the request's, not the server's default
  bool stream = false, include_usage = false;
  std::string model_name;  // as requested
  Model* model = nullptr;  // the local model to use
  router::RouteRequest route_req;
  router::RoutePlan plan;
  std::string route_header;
  std::string api_key_name;
  bool truncate = false;
  nlohmann::json truncated;  // set when messages were dropped
  nlohmann::json remote_body;  // what a remote call would send (RemoteBody()), scanned for privacy
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

}  // namespace pocket::server
