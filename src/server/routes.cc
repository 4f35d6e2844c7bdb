// Endpoint routing: which handler a request goes to (/health, the chat page at GET /,
// /metrics, /v1/models, the generation endpoints, /v1/embeddings), API-key checks, and the
// handlers that answer on the HTTP thread: the page, models, embeddings, and the parsing and
// validation of a generation request (model, Pocket extensions) before it is admitted
// (admission.cc).
#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>
#include <system_error>
#include <vector>

#include "base/clock.h"
#include "base/file.h"
#include "net/static_files.h"
#include "server/errors.h"
#include "server/openai_json.h"
#include "server/request.h"
#include "server/server.h"
#include "server/server_internal.h"

namespace pocket::server {

using nlohmann::json;

namespace {

// The chat page's file for a GET of `path`, or "" when `path` is none of its files: "/" is
// index.html, "/NAME.EXT" a file directly in `web_root`. Every API path has no dot or a
// second '/', so none is ever shadowed by a page file.
std::string PageFile(const std::string& web_root, const std::string& path) {
  if (web_root.empty() || !net::IsSafeUrlPath(path)) return "";
  std::string file;
  if (path == "/") {
    file = web_root + "/index.html";
  } else if (path.find('/', 1) == std::string::npos && path.find('.') != std::string::npos) {
    file = web_root + path;
  } else {
    return "";
  }
  std::error_code ec;
  return std::filesystem::is_regular_file(file, ec) ? file : "";
}

}  // namespace

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
  // The chat page (web/chat) is public like /health: it holds nothing but the page, and its
  // calls to /v1 carry the key the user types in.
  if (method == "GET" || method == "HEAD") {
    if (std::string file = PageFile(options_.web_root, path); !file.empty()) {
      call->endpoint = "page";
      auto body = ReadFile(file);
      if (!body.ok()) {
        Fail(*call, Status::Internal("cannot read the chat page"));
        return done();
      }
      call->http_status = 200;
      done();
      call->ex->Respond(
          200, {{"Content-Type", std::string(net::MimeType(file))}, {"Cache-Control", "no-cache"}},
          method == "GET" ? std::move(body).value() : std::string());
      return;
    }
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
  if (auto e = ParseGenerationRequest(b, chat, options_.request_limits, &fields,
                                      options_.generation_defaults)) {
    Fail(c, e->status, e->code, e->param);
    return done();
  }
  c.model_name = std::move(fields.model);
  c.gen = std::move(fields.gen);
  c.max_tokens_requested = fields.max_tokens_requested;
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

  if (!Admit(call)) return done();
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

}  // namespace pocket::server
