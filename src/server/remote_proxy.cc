// The remote proxy: a generation the router sends to a remote backend. The body sent is
// the client's (RemoteBody), redacted when the plan says so; a non-streamed answer is
// passed through; a stream is forwarded event by event, held back until the first event
// that carries something so that a failing remote can still fall back to the local model.
// Every call is settled against its budget reservation from the usage the remote reports.
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "base/clock.h"
#include "base/log.h"
#include "server/errors.h"
#include "server/openai_json.h"
#include "server/server.h"
#include "server/server_internal.h"
#include "server/sse_writer.h"

namespace pocket::server {

using nlohmann::json;

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
    c.ex->StartStream(200, SseHeaders(c.route_header, c.id));
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
    std::string sse = SseEvent(ev);
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
    c.ex->Write(SseData(e.body));
  }
  c.ex->Write(SseDone());
  c.ex->End();
  return true;
}

}  // namespace pocket::server
