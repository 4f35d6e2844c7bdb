#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "base/sha256.h"
#include "router/http_client.h"
#include "server/errors.h"
#include "server/fake_model.h"
#include "server/metrics.h"
#include "server/server.h"

namespace pocket::server {
namespace {

using nlohmann::json;

TEST(ErrorsTest, MapsCodesAndStatuses) {
  auto e = ToHttpError(Status::InvalidArgument("too long"), "context_length_exceeded", "messages");
  EXPECT_EQ(e.status, 400);
  auto body = json::parse(e.body);
  EXPECT_EQ(body["error"]["code"], "context_length_exceeded");
  EXPECT_EQ(body["error"]["param"], "messages");
  EXPECT_EQ(body["error"]["type"], "invalid_request_error");
  EXPECT_EQ(body["error"]["message"], "too long");
  EXPECT_EQ(ToHttpError(Status::NotFound("m"), "model_not_found").status, 404);
  EXPECT_EQ(ToHttpError(Status::ResourceExhausted("q"), "rate_limit_exceeded").status, 429);
  EXPECT_EQ(ToHttpError(Status::InvalidArgument("k"), "invalid_api_key").status, 401);
  EXPECT_EQ(ToHttpError(Status::IOError("x")).status, 502);
  EXPECT_EQ(ToHttpError(Status::Internal("x")).status, 500);
  EXPECT_TRUE(json::parse(ToHttpError(Status::Internal("bad \xff utf8")).body).is_object());
  EXPECT_EQ(json::parse(HttpLayerErrorBody(413, "big"))["error"]["code"], "request_too_large");
}

TEST(MetricsTest, RendersPrometheusText) {
  Metrics m;
  m.DeclareCounter("x_total", "help");
  m.Add("x_total", {{"a", "1"}}, 2);
  m.Add("x_total", {{"a", "1"}});
  m.DeclareHistogram("lat_seconds", "latency", {0.1, 1});
  m.Observe("lat_seconds", {}, 0.05);
  m.Observe("lat_seconds", {}, 0.5);
  m.Observe("lat_seconds", {}, 5);
  m.Set("g", {{"q", "a\"b"}}, 7);
  const std::string text = m.RenderPrometheus();
  EXPECT_NE(text.find("# TYPE x_total counter\nx_total{a=\"1\"} 3\n"), std::string::npos) << text;
  EXPECT_NE(text.find("lat_seconds_bucket{le=\"0.10000000000000001\"} 1"), std::string::npos) << text;
  EXPECT_NE(text.find("lat_seconds_bucket{le=\"+Inf\"} 3"), std::string::npos);
  EXPECT_NE(text.find("lat_seconds_count 3"), std::string::npos);
  EXPECT_NE(text.find("g{q=\"a\\\"b\"} 7"), std::string::npos);
  EXPECT_EQ(m.Value("x_total", {{"a", "1"}}), 3);
}

TEST(FakeModelTest, DeterministicPerSeedAndHonoursMaxTokens) {
  FakeModel m("f", 128, 0);
  runtime::GenerateRequest r;
  r.prompt = "hello";
  r.max_tokens = 5;
  r.sampling.seed = 9;
  std::string streamed;
  auto a = m.Generate(r, [&](std::string_view t) { streamed += t; return true; }, nullptr);
  auto b = m.Generate(r, [](std::string_view) { return true; }, nullptr);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->text, b->text);
  EXPECT_EQ(a->text, streamed);
  EXPECT_EQ(a->completion_tokens, 5);
  r.prompt = std::string(200, 'x');
  EXPECT_FALSE(m.Generate(r, [](std::string_view) { return true; }, nullptr).ok());
}

class ServerTest : public ::testing::Test {
 protected:
  void StartWith(const std::string& policy_toml) {
    auto policy = router::ParsePolicy(policy_toml, router::ProcessEnv());
    ASSERT_TRUE(policy.ok()) << policy.status().ToString();
    ServerOptions o;
    o.http.port = 0;
    o.default_ledger_path = ":memory:";
    o.max_active = 2;
    o.max_queue = 2;
    auto s = Server::Create(o, {std::make_shared<FakeModel>("fake", 256, 0)}, std::move(*policy));
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    server_ = std::move(*s);
    ASSERT_TRUE(server_->Start().ok());
  }
  router::HttpResponse Call(const std::string& method, const std::string& path,
                            const std::string& body = "", const std::string& key = "") {
    router::HttpRequest r;
    r.method = method;
    r.url = "http://127.0.0.1:" + std::to_string(server_->port()) + path;
    r.body = body;
    r.timeout_ms = 10000;
    if (!key.empty()) r.headers.emplace_back("authorization", "Bearer " + key);
    auto res = router::HttpFetch(r);
    EXPECT_TRUE(res.ok()) << res.status().ToString();
    return res.ok() ? *res : router::HttpResponse{};
  }
  std::unique_ptr<Server> server_;
};

TEST_F(ServerTest, ChatHealthAndErrors) {
  StartWith("");
  EXPECT_EQ(Call("GET", "/health").status, 200);
  auto r = Call("POST", "/v1/chat/completions",
                R"({"messages":[{"role":"user","content":"hi"}],"max_tokens":3,"seed":1})");
  ASSERT_EQ(r.status, 200) << r.body;
  auto j = json::parse(r.body);
  EXPECT_EQ(j["usage"]["completion_tokens"], 3);
  EXPECT_EQ(r.Header("x-pocket-route"), "local; reason=default");
  EXPECT_EQ(Call("POST", "/v1/chat/completions", "[1]").status, 400);
  EXPECT_EQ(Call("GET", "/v1/chat/completions").status, 405);
  EXPECT_EQ(Call("POST", "/v1/chat/completions", R"({"messages":[]})").status, 400);
  EXPECT_EQ(Call("POST", "/v1/chat/completions",
                 R"({"messages":[{"role":"user","content":"hi"}],"n":2})").status, 400);
  EXPECT_EQ(Call("POST", "/v1/embeddings", R"({"input":[1,2]})").status, 400);
  EXPECT_GE(server_->metrics().Value("pocket_http_requests_total",
                                     {{"endpoint", "chat"}, {"status", "400"}}),
            3);
  server_->Stop();
}

TEST_F(ServerTest, JsonModeAnswersAnObjectAndChecksTheRequest) {
  StartWith("");
  auto r = Call("POST", "/v1/chat/completions",
                R"({"messages":[{"role":"user","content":"Reply in JSON."}],"max_tokens":64,)"
                R"("seed":3,"response_format":{"type":"json_object"}})");
  ASSERT_EQ(r.status, 200) << r.body;
  auto j = json::parse(r.body);
  EXPECT_EQ(j["choices"][0]["finish_reason"], "stop");
  const json content = json::parse(j["choices"][0]["message"]["content"].get<std::string>(),
                                   nullptr, false);
  EXPECT_TRUE(content.is_object()) << r.body;
  // OpenAI's rule: the messages must mention JSON.
  r = Call("POST", "/v1/chat/completions",
           R"({"messages":[{"role":"user","content":"hi"}],"response_format":{"type":"json_object"}})");
  EXPECT_EQ(r.status, 400);
  j = json::parse(r.body);
  EXPECT_EQ(j["error"]["param"], "messages");
  EXPECT_EQ(j["error"]["message"],
            "'messages' must contain the word 'json' in some form, to use 'response_format' of "
            "type 'json_object'.");
  r = Call("POST", "/v1/chat/completions",
           R"({"messages":[{"role":"user","content":"json"}],"response_format":{"type":"json_schema",)"
           R"("json_schema":{"name":"x","schema":{}}}})");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(json::parse(r.body)["error"]["param"], "response_format");
  EXPECT_NE(json::parse(r.body)["error"]["message"].get<std::string>().find("json_schema"),
            std::string::npos);
  r = Call("POST", "/v1/chat/completions",
           R"({"messages":[{"role":"user","content":"json"}],"response_format":{"type":"xml"}})");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(json::parse(r.body)["error"]["param"], "response_format.type");
  EXPECT_EQ(Call("POST", "/v1/chat/completions",
                 R"({"messages":[{"role":"user","content":"hi"}],"response_format":{"type":"text"}})")
                .status,
            200);
  // Completions take it too (no wording rule there, as llama-server).
  r = Call("POST", "/v1/completions",
           R"({"prompt":"x","max_tokens":64,"response_format":{"type":"json_object"}})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_TRUE(json::parse(json::parse(r.body)["choices"][0]["text"].get<std::string>()).is_object());
  server_->Stop();
}

TEST_F(ServerTest, ApiKeysRequiredWhenConfigured) {
  StartWith("[api_keys.ci]\nsha256 = \"" + Sha256Hex("secret-key") + "\"\n");
  EXPECT_EQ(Call("GET", "/health").status, 200);
  EXPECT_EQ(Call("GET", "/v1/models").status, 401);
  EXPECT_EQ(Call("GET", "/v1/models", "", "wrong").status, 401);
  EXPECT_EQ(Call("GET", "/v1/models", "", "secret-key").status, 200);
  EXPECT_EQ(Call("GET", "/metrics").status, 401);
  server_->Stop();
}

}  // namespace
}  // namespace pocket::server
