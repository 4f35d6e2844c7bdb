// A generation request once admitted: its prompt prepared (templated and tokenized once,
// Model::PreparePrompt), the router's plan, the remote proxy (remote_proxy.cc) or the local
// model, and the request's metrics and log line. Locally: the context check and optional
// truncation, a slot (admission.cc), then the answer streamed as SSE or returned whole.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <string>

#include "base/clock.h"
#include "server/errors.h"
#include "server/openai_json.h"
#include "server/server.h"
#include "server/server_internal.h"
#include "server/sse_writer.h"
#include "server/truncate.h"

namespace pocket::server {

using nlohmann::json;

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

void Server::RunLocal(Call& c) {
  c.route = "local";
  const bool chat = c.endpoint == "chat";
  Model& model = *c.model;
  const int ctx = model.context_length();
  if (!c.prepared.ok()) return Fail(c, c.prepared);
  int prompt_tokens = c.prepared_tokens;
  // A limit the request asked for must fit (OpenAI's rule); the server's default limit is
  // only a bound, so a request that sets none needs room for one token, as without it.
  const int reserve = c.max_tokens_requested && c.gen.max_tokens > 0 ? c.gen.max_tokens : 1;
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
  if (!WaitForSlot(c)) return;
  struct SlotRelease {
    Server* s;
    ~SlotRelease() { s->ReleaseSlot(); }
  } release{this};
  active_.fetch_add(1);
  metrics_.Set("pocket_requests_active", {}, active_.load());
  c.queue_wait_s = Seconds(wait_start, MonotonicNs());

  const int64_t created = static_cast<int64_t>(WallSeconds());
  const std::string model_id = model.id();
  if (c.stream) {
    Headers h = SseHeaders(c.route_header, c.id);
    if (!c.truncated.is_null()) h.emplace_back("x-pocket-truncated", Dump(c.truncated));
    c.http_status = 200;
    c.ex->StartStream(200, std::move(h));
    if (chat)
      c.ex->Write(SseEvent(ChunkJson(c.id, true, model_id, created,
                                     {{"role", "assistant"}, {"content", ""}}, nullptr)));
  }
  c.gen_start_ns = MonotonicNs();
  auto on_text = [&](std::string_view piece) -> bool {
    if (c.first_token_ns == 0) c.first_token_ns = MonotonicNs();
    if (c.ex->cancelled() || stopping()) return false;
    if (!c.stream) return true;
    const std::string p(piece);
    return c.ex->Write(SseEvent(ChunkJson(c.id, chat, model_id, created,
                                          chat ? json{{"content", p}} : json(p), nullptr)));
  };
  GenerationStats stats;
  auto result = model.Generate(c.gen, on_text, &stats);
  c.queue_wait_s += stats.queue_wait_s;
  metrics_.Observe("pocket_queue_wait_seconds", {}, c.queue_wait_s);
  if (!result.ok()) {
    if (c.stream) {
      EndStreamWithError(*c.ex, ToHttpError(result.status()).body);
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
    c.ex->Write(SseEvent(
        ChunkJson(c.id, chat, model_id, created, chat ? json::object() : json(""), finish)));
    if (c.include_usage) {
      json u = ChunkJson(c.id, chat, model_id, created, json::object(), nullptr);
      u["choices"] = json::array();
      u["usage"] = Usage(r.prompt_tokens, r.completion_tokens);
      c.ex->Write(SseEvent(u));
    }
    c.ex->Write(SseDone());
    c.ex->End();
    return;
  }
  json out = CompletionJson(c.id, chat, model_id, created, r.text, finish, r.prompt_tokens,
                            r.completion_tokens);
  if (!c.truncated.is_null()) out["pocket"] = {{"truncated", c.truncated}};
  Reply(c, 200, Dump(out));
}

}  // namespace pocket::server
