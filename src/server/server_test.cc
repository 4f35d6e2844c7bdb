#include <unistd.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <boost/asio.hpp>

#include <atomic>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "base/sha256.h"
#include "net/http_client.h"
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
  void StartWith(const std::string& policy_toml, std::shared_ptr<Model> model = nullptr,
                 const std::string& web_root = "", const GenerationDefaults& defaults = {}) {
    auto policy = router::ParsePolicy(policy_toml, router::ProcessEnv());
    ASSERT_TRUE(policy.ok()) << policy.status().ToString();
    ServerOptions o;
    o.web_root = web_root;
    o.generation_defaults = defaults;
    o.http.port = 0;
    o.default_ledger_path = ":memory:";
    o.max_active = 2;
    o.max_queue = 2;
    if (!model) model = std::make_shared<FakeModel>("fake", 256, 0);
    auto s = Server::Create(o, {std::move(model)}, std::move(*policy));
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    server_ = std::move(*s);
    ASSERT_TRUE(server_->Start().ok());
  }
  net::FetchResponse Call(const std::string& method, const std::string& path,
                          const std::string& body = "", const std::string& key = "",
                          std::vector<std::pair<std::string, std::string>> headers = {}) {
    net::FetchRequest r;
    r.headers = std::move(headers);
    r.method = method;
    r.url = "http://127.0.0.1:" + std::to_string(server_->port()) + path;
    r.body = body;
    r.timeout_ms = 10000;
    if (!key.empty()) r.headers.emplace_back("authorization", "Bearer " + key);
    auto res = net::HttpFetch(r);
    EXPECT_TRUE(res.ok()) << res.status().ToString();
    return res.ok() ? *res : net::FetchResponse{};
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

// A page folder for the GET / tests: index.html, chat.js, and files named like API paths,
// which must never be served in their place.
std::string MakePageFolder() {
  const std::string dir = testing::TempDir() + "pocket_page_" + std::to_string(::getpid());
  std::filesystem::create_directories(dir + "/v1");
  auto write = [&](const std::string& name, const std::string& text) {
    std::ofstream(dir + "/" + name) << text;
  };
  write("index.html", "<!doctype html><title>chat</title>");
  write("chat.js", "export {}");
  write("metrics", "not the metrics");
  write("v1/models", "not the models");
  return dir;
}

TEST_F(ServerTest, ServesTheChatPageAtRootAndLeavesEveryApiRouteAsItWas) {
  const std::string dir = MakePageFolder();
  StartWith("", nullptr, dir);
  auto r = Call("GET", "/");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "<!doctype html><title>chat</title>");
  EXPECT_EQ(r.Header("content-type"), "text/html; charset=utf-8");
  r = Call("GET", "/chat.js?v=2");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.Header("content-type"), "text/javascript; charset=utf-8");
  r = Call("HEAD", "/");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "");
  // The API is unchanged around the page.
  EXPECT_EQ(Call("GET", "/health").status, 200);
  r = Call("GET", "/v1/models");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(json::parse(r.body)["object"], "list");
  EXPECT_NE(Call("GET", "/metrics").body.find("pocket_http_requests_total"), std::string::npos);
  r = Call("GET", "/missing.js");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(json::parse(r.body)["error"]["code"], "not_found");
  EXPECT_EQ(Call("GET", "/../server_test.cc").status, 404);
  EXPECT_EQ(Call("POST", "/", "{}").status, 404);
  EXPECT_EQ(Call("POST", "/v1/chat/completions",
                 R"({"messages":[{"role":"user","content":"hi"}],"max_tokens":2})")
                .status,
            200);
  EXPECT_EQ(server_->metrics().Value("pocket_http_requests_total",
                                     {{"endpoint", "page"}, {"status", "200"}}),
            3);
  server_->Stop();
  std::filesystem::remove_all(dir);
}

TEST_F(ServerTest, TheChatPageNeedsNoApiKeyButTheApiStillDoes) {
  const std::string dir = MakePageFolder();
  StartWith("[api_keys.ci]\nsha256 = \"" + Sha256Hex("secret-key") + "\"\n", nullptr, dir);
  EXPECT_EQ(Call("GET", "/").status, 200);
  EXPECT_EQ(Call("GET", "/v1/models").status, 401);
  EXPECT_EQ(Call("GET", "/missing.js").status, 401);
  server_->Stop();
  std::filesystem::remove_all(dir);
}

TEST_F(ServerTest, WithoutAPageFolderRootIsA404) {
  StartWith("");
  auto r = Call("GET", "/");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(json::parse(r.body)["error"]["code"], "not_found");
  server_->Stop();
}

// A model that throws (a stand-in for any bug below the handlers) when the prompt says
// where: "throw-in-count", "throw-in-generate", "throw-after-text", "throw-in-embed".
class ThrowingModel : public FakeModel {
 public:
  ThrowingModel() : FakeModel("fake", 256, 0) {}
  Result<int> CountPromptTokens(const runtime::GenerateRequest& r) const override {
    if (RenderPrompt(r).find("throw-in-count") != std::string::npos)
      throw std::runtime_error("count failed");
    return FakeModel::CountPromptTokens(r);
  }
  Result<runtime::GenerateResult> Generate(const runtime::GenerateRequest& r,
                                           const std::function<bool(std::string_view)>& on_text,
                                           GenerationStats* stats) override {
    const std::string p = RenderPrompt(r);
    if (p.find("throw-in-generate") != std::string::npos) throw std::logic_error("generate failed");
    if (p.find("throw-after-text") != std::string::npos) {
      on_text("partial");
      throw 42;  // not even a std::exception
    }
    return FakeModel::Generate(r, on_text, stats);
  }
  Result<std::vector<float>> Embed(std::string_view text, int* tokens) override {
    if (text == "throw-in-embed") throw std::bad_alloc();
    return FakeModel::Embed(text, tokens);
  }
};

std::string Chat(const std::string& content, const std::string& extra = "") {
  return R"({"messages":[{"role":"user","content":")" + content + R"("}],"max_tokens":3)" +
         extra + "}";
}

TEST_F(ServerTest, AnExceptionInAHandlerIsA500AndTheServerStaysUp) {
  StartWith("", std::make_shared<ThrowingModel>());
  // max_active + max_queue = 4: more failing requests than admissions, so a leaked
  // admission or slot would turn the last ones (and the final good one) into 429s.
  for (int i = 0; i < 6; ++i) {
    for (const char* where : {"throw-in-count", "throw-in-generate"}) {
      auto r = Call("POST", "/v1/chat/completions", Chat(where));
      EXPECT_EQ(r.status, 500) << where << ": " << r.body;
      auto j = json::parse(r.body, nullptr, false);
      ASSERT_TRUE(j.is_object()) << r.body;
      EXPECT_EQ(j["error"]["type"], "server_error");
      EXPECT_EQ(j["error"]["code"], "internal_error");
    }
    auto r = Call("POST", "/v1/embeddings", R"({"input":"throw-in-embed"})");  // on the I/O thread
    EXPECT_EQ(r.status, 500) << r.body;
  }
  // A stream that already sent text ends with an error event and [DONE].
  auto r = Call("POST", "/v1/chat/completions", Chat("throw-after-text", R"(,"stream":true)"));
  EXPECT_EQ(r.status, 200);
  EXPECT_NE(r.body.find("partial"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("\"internal_error\""), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("data: [DONE]"), std::string::npos) << r.body;
  // Still serving, nothing leaked.
  r = Call("POST", "/v1/chat/completions", Chat("hello"));
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Call("GET", "/health").status, 200);
  EXPECT_EQ(server_->metrics().Value("pocket_internal_errors_total", {{"endpoint", "chat"}}), 13);
  EXPECT_EQ(server_->metrics().Value("pocket_internal_errors_total", {{"endpoint", "embeddings"}}), 6);
  EXPECT_EQ(server_->metrics().Value("pocket_http_requests_total",
                                     {{"endpoint", "chat"}, {"status", "500"}}),
            12);
  EXPECT_NE(Call("GET", "/metrics").body.find("pocket_internal_errors_total{endpoint=\"chat\"} 13"),
            std::string::npos);
  server_->Stop();
}

TEST_F(ServerTest, WrongTypesAndDeepNestingAre400sOnEveryEndpoint) {
  StartWith("");
  struct Case {
    const char* path;
    std::string body;
    const char* param;
  };
  const std::string deep = std::string(10000, '[') + std::string(10000, ']');
  const std::vector<Case> cases = {
      // The issue's crasher: part.value("type", "") threw type_error on the I/O thread.
      {"/v1/chat/completions",
       R"({"messages":[{"role":"user","content":"a"},{"role":"user","content":"b"},)"
       R"({"role":"user","content":[{"type":5,"text":"x"}]}]})",
       "messages[2].content[0].type"},
      {"/v1/chat/completions", R"({"messages":[{"role":"user","content":[{"type":"text","text":7}]}]})",
       "messages[0].content[0].text"},
      {"/v1/chat/completions", R"({"messages":[{"role":"user","content":{"a":1}}]})",
       "messages[0].content"},
      {"/v1/chat/completions", R"({"messages":[{"role":["user"],"content":"x"}]})", "messages[0].role"},
      {"/v1/chat/completions", Chat("x", R"(,"stop":[1])"), "stop[0]"},
      {"/v1/chat/completions", Chat("x", R"(,"tools":[{"type":"function","function":{"name":1}}])"),
       "tools[0].function.name"},
      {"/v1/chat/completions", Chat("x", R"(,"logit_bias":{"1":"high"})"), "logit_bias.1"},
      {"/v1/chat/completions", Chat("x", R"(,"stream_options":{"include_usage":"yes"})"),
       "stream_options.include_usage"},
      {"/v1/completions", R"({"prompt":"x","echo":"yes"})", "echo"},
      {"/v1/completions", R"({"prompt":{"text":"x"}})", "prompt"},
      {"/v1/embeddings", R"({"input":"x","dimensions":"8"})", "dimensions"},
      {"/v1/embeddings", R"({"input":"x","model":5})", "model"},
      // Depth, refused at parse time in any field of any endpoint.
      {"/v1/chat/completions", Chat("x", ",\"extra\":" + deep), nullptr},
      {"/v1/chat/completions", R"({"messages":[{"role":"user","content":"x","x":)" + deep + "}]}",
       nullptr},
      {"/v1/completions", R"({"prompt":"x","metadata":)" + deep + "}", nullptr},
      {"/v1/embeddings", R"({"input":)" + deep + "}", nullptr},
  };
  for (const Case& c : cases) {
    auto r = Call("POST", c.path, c.body);
    ASSERT_EQ(r.status, 400) << c.path << " " << c.body.substr(0, 120) << ": " << r.body;
    auto j = json::parse(r.body);
    EXPECT_EQ(j["error"]["type"], "invalid_request_error");
    if (c.param) {
      EXPECT_EQ(j["error"]["param"], c.param) << r.body;
    } else {
      EXPECT_EQ(j["error"]["code"], "invalid_json");
      EXPECT_EQ(j["error"]["message"],
                "request body nests deeper than 64 levels of arrays and objects");
    }
  }
  EXPECT_EQ(Call("GET", "/health").status, 200);
  EXPECT_EQ(Call("POST", "/v1/chat/completions", Chat("still here")).status, 200);
  server_->Stop();
}

TEST_F(ServerTest, TruncatingThousandsOfMessagesIsQuickAndKeepsItsAnswer) {
  StartWith("");  // the fake model: 256 byte-tokens of context
  json body = {{"messages", json::array()}, {"max_tokens", 4}, {"pocket", {{"truncate", true}}}};
  body["messages"].push_back({{"role", "system"}, {"content", "be brief"}});
  for (int i = 0; i < 4000; ++i)
    body["messages"].push_back({{"role", i % 2 ? "assistant" : "user"}, {"content", "0123456789"}});
  const auto t0 = std::chrono::steady_clock::now();
  auto r = Call("POST", "/v1/chat/completions", body.dump());
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 60.0);
  const json truncated = json::parse(r.body)["pocket"]["truncated"];
  // Rendered "role: content\n" + "assistant:" + BOS; what fits 256 - 4 keeps the system
  // message and the last few; the count of drops is what one-at-a-time dropping gives.
  int tokens = truncated["original_prompt_tokens"].get<int>(), dropped = 0;
  for (int i = 0; tokens + 4 > 256; ++i, ++dropped) tokens -= (i % 2 ? 11 : 6) + 10 + 1;
  EXPECT_EQ(truncated["dropped_messages"], dropped) << r.body;
  EXPECT_EQ(truncated["prompt_tokens"], tokens) << r.body;
  // Streamed, the same in the header.
  body["stream"] = true;
  r = Call("POST", "/v1/chat/completions", body.dump());
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(json::parse(r.Header("x-pocket-truncated")), truncated);
  // Over the message limit: 400 naming it.
  for (int i = 0; i < 100; ++i) body["messages"].push_back({{"role", "user"}, {"content", "x"}});
  r = Call("POST", "/v1/chat/completions", body.dump());
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(json::parse(r.body)["error"]["message"],
            "'messages' has 4101 entries; at most 4096 are accepted");
  server_->Stop();
}

// A remote backend on loopback that answers every request with `reply_body` (200, JSON)
// and counts the requests it got.
class CannedRemote {
 public:
  explicit CannedRemote(std::string reply_body)
      : reply_(std::move(reply_body)),
        acceptor_(ioc_, {boost::asio::ip::make_address("127.0.0.1"), 0}) {
    thread_ = std::thread([this] {
      for (;;) {
        boost::system::error_code ec;
        boost::asio::ip::tcp::socket s(ioc_);
        acceptor_.accept(s, ec);
        if (ec || stop_) return;
        std::string got;
        char buf[65536];
        size_t need = std::string::npos;
        while (!ec && (need == std::string::npos || got.size() < need)) {
          got.append(buf, s.read_some(boost::asio::buffer(buf), ec));
          const size_t end = got.find("\r\n\r\n");
          if (need == std::string::npos && end != std::string::npos) {
            const size_t cl = got.find("ontent-Length: ");
            need = end + 4 + (cl < end ? std::stoul(got.substr(cl + 15)) : 0);
          }
        }
        {
          std::lock_guard<std::mutex> lock(mu_);
          last_request_ = got;
        }
        ++requests;
        const std::string out = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                "Connection: close\r\nContent-Length: " +
                                std::to_string(reply_.size()) + "\r\n\r\n" + reply_;
        boost::asio::write(s, boost::asio::buffer(out), ec);
      }
    });
  }
  ~CannedRemote() {
    stop_ = true;
    boost::system::error_code ec;
    boost::asio::ip::tcp::socket poke(ioc_);
    poke.connect(acceptor_.local_endpoint(), ec);
    thread_.join();
  }
  std::string url() const {
    return "http://127.0.0.1:" + std::to_string(acceptor_.local_endpoint().port()) + "/v1";
  }
  std::atomic<int> requests{0};
  // The body of the last request received.
  std::string LastBody() {
    std::lock_guard<std::mutex> lock(mu_);
    const size_t end = last_request_.find("\r\n\r\n");
    return end == std::string::npos ? "" : last_request_.substr(end + 4);
  }

 private:
  std::mutex mu_;
  std::string last_request_;
  std::string reply_;
  boost::asio::io_context ioc_;
  boost::asio::ip::tcp::acceptor acceptor_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

std::string RemotePolicy(const std::string& url) {
  return "default_area = \"chat\"\n[backends.local]\nkind = \"local\"\n"
         "[backends.cloud]\nkind = \"openai\"\nbase_url = \"" + url +
         "\"\napi_key = \"k\"\nmodel = \"big\"\nprice_input_per_1k = 0.5\n"
         "price_output_per_1k = 1.5\ncontext_length = 8000\n"
         "[areas.chat]\nbackends = [\"local\", \"cloud\"]\n";
}

// The text of a generation answer: a JSON completion, or an SSE stream of chunks.
std::string AnswerText(const net::FetchResponse& r) {
  std::string text;
  if (r.body.rfind("data: ", 0) != 0) {
    const json j = json::parse(r.body);
    const json& c = j["choices"][0];
    return c.contains("message") ? c["message"]["content"].get<std::string>()
                                 : c["text"].get<std::string>();
  }
  for (size_t at = 0; (at = r.body.find("data: ", at)) != std::string::npos;) {
    const size_t end = r.body.find("\n\n", at);
    const std::string data = r.body.substr(at + 6, end - at - 6);
    at = end;
    if (data == "[DONE]") break;
    const json j = json::parse(data);
    if (j["choices"].empty()) continue;
    const json& c = j["choices"][0];
    if (c.contains("delta") && c["delta"].contains("content"))
      text += c["delta"]["content"].get<std::string>();
    if (c.contains("text")) text += c["text"].get<std::string>();
  }
  return text;
}

int CompletionTokens(const net::FetchResponse& r) {
  return json::parse(r.body)["usage"]["completion_tokens"].get<int>();
}

// `pocket serve --temp/--seed/-n`: a request that leaves temperature, seed or max_tokens
// out gets the server's value, on both endpoints, streamed or not; one that sets them
// wins. The fake model is deterministic per (prompt, seed) and greedy at temperature 0, so
// equal texts mean equal sampling.
TEST_F(ServerTest, RequestsThatLeaveSamplingOutGetTheServerDefaultsAndSetFieldsWin) {
  GenerationDefaults d;
  d.temperature = 0.5f;
  d.seed = 11;
  d.max_tokens = 6;
  StartWith("", nullptr, "", d);
  const std::string msgs = R"("messages":[{"role":"user","content":"hi"}])";
  auto chat = [&](const std::string& extra) {
    auto r = Call("POST", "/v1/chat/completions", "{" + msgs + extra + "}");
    EXPECT_EQ(r.status, 200) << extra << ": " << r.body;
    return r;
  };
  const auto bare = chat("");
  const std::string text = AnswerText(bare);
  EXPECT_EQ(CompletionTokens(bare), 6);  // the fake never stops early
  EXPECT_EQ(AnswerText(chat(R"(,"temperature":0.5,"seed":11,"max_tokens":6)")), text);
  EXPECT_EQ(AnswerText(chat(R"(,"stream":true)")), text);
  // Set fields win: another seed, greedy, a shorter or longer limit.
  const auto seed12 = chat(R"(,"seed":12)");
  EXPECT_EQ(AnswerText(seed12), AnswerText(chat(R"(,"temperature":0.5,"seed":12,"max_tokens":6)")));
  EXPECT_NE(AnswerText(seed12), text);
  const std::string greedy = AnswerText(chat(R"(,"temperature":0)"));
  EXPECT_NE(greedy, text);
  EXPECT_EQ(AnswerText(chat(R"(,"temperature":0,"seed":12,"stream":true)")), greedy);
  const auto three = chat(R"(,"max_tokens":3)");
  EXPECT_EQ(CompletionTokens(three), 3);
  EXPECT_EQ(text.rfind(AnswerText(three), 0), 0u);  // the same draws, fewer of them
  EXPECT_EQ(CompletionTokens(chat(R"(,"max_completion_tokens":9)")), 9);

  // /v1/completions, plain and streamed.
  auto comp = [&](const std::string& extra) {
    auto r = Call("POST", "/v1/completions", R"({"prompt":"Once")" + extra + "}");
    EXPECT_EQ(r.status, 200) << extra << ": " << r.body;
    return r;
  };
  const auto cbare = comp("");
  EXPECT_EQ(CompletionTokens(cbare), 6);
  EXPECT_EQ(AnswerText(cbare), AnswerText(comp(R"(,"temperature":0.5,"seed":11,"max_tokens":6)")));
  EXPECT_EQ(AnswerText(comp(R"(,"stream":true)")), AnswerText(cbare));
  EXPECT_NE(AnswerText(comp(R"(,"temperature":0)")), AnswerText(cbare));
  server_->Stop();
}

// The default max_tokens bounds a generation but is not a reservation: a prompt that leaves
// less room than it still runs (to the full context), where the same limit asked for by
// the request is context_length_exceeded, as OpenAI answers.
TEST_F(ServerTest, TheDefaultMaxTokensIsABoundNotAReservation) {
  GenerationDefaults d;
  d.max_tokens = 200;
  StartWith("", std::make_shared<FakeModel>("fake", 64, 0), "", d);
  const std::string body = R"({"prompt":")" + std::string(40, 'x') + R"(")";
  auto r = Call("POST", "/v1/completions", body + "}");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(CompletionTokens(r), 64 - 41);  // 40 bytes + BOS: the rest of the context
  EXPECT_EQ(json::parse(r.body)["choices"][0]["finish_reason"], "length");
  r = Call("POST", "/v1/completions", body + R"(,"max_tokens":200})");
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_EQ(json::parse(r.body)["error"]["code"], "context_length_exceeded");
  server_->Stop();
}

// The router's way to the local model (here a fallback from a remote that answers
// nonsense) uses the defaults too; the remote gets the request's own fields and the
// default max_tokens as its limit (instead of default_remote_max_tokens).
TEST_F(ServerTest, TheDefaultsReachTheLocalFallbackAndTheRemoteGetsTheDefaultLimit) {
  CannedRemote remote("not json");
  GenerationDefaults d;
  d.temperature = 0.5f;
  d.seed = 11;
  d.max_tokens = 6;
  StartWith(RemotePolicy(remote.url()), nullptr, "", d);
  const std::string msgs = R"({"messages":[{"role":"user","content":"hi"}])";
  auto r = Call("POST", "/v1/chat/completions", msgs + R"(,"model":"cloud"})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(remote.requests.load(), 1);
  EXPECT_NE(r.Header("x-pocket-route").find("error=bad_response"), std::string::npos)
      << r.Header("x-pocket-route");
  const json sent = json::parse(remote.LastBody());
  EXPECT_EQ(sent["max_tokens"], 6) << sent.dump();
  EXPECT_FALSE(sent.contains("temperature")) << sent.dump();
  EXPECT_FALSE(sent.contains("seed")) << sent.dump();
  const auto local = Call("POST", "/v1/chat/completions",
                          msgs + R"(,"model":"fake","temperature":0.5,"seed":11,"max_tokens":6})");
  ASSERT_EQ(local.status, 200) << local.body;
  EXPECT_EQ(AnswerText(r), AnswerText(local));
  server_->Stop();
}

TEST_F(ServerTest, DeepNestingNeverReachesOrComesBackFromTheRemote) {
  const std::string deep = std::string(10000, '[') + std::string(10000, ']');
  CannedRemote remote(R"({"id":"r","object":"chat.completion","choices":[{"index":0,)"
                      R"("message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],)"
                      R"("usage":{"prompt_tokens":3,"completion_tokens":1},"x":)" + deep + "}");
  StartWith(RemotePolicy(remote.url()));
  // The issue's example: a deep extra field in a request routed to the remote.
  auto r = Call("POST", "/v1/chat/completions", Chat("x", ",\"model\":\"cloud\",\"extra\":" + deep));
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_EQ(remote.requests.load(), 0);
  // A remote that answers with a deep reply: bad_response, and the local model answers.
  r = Call("POST", "/v1/chat/completions", Chat("x", ",\"model\":\"cloud\""));
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(remote.requests.load(), 1);
  EXPECT_NE(r.Header("x-pocket-route").find("error=bad_response"), std::string::npos)
      << r.Header("x-pocket-route");
  EXPECT_EQ(Call("GET", "/health").status, 200);
  server_->Stop();
}

TEST_F(ServerTest, ADuplicateKeyIsA400NeverTheLastOneWins) {
  CannedRemote remote(R"({"id":"r","object":"chat.completion","choices":[{"index":0,)"
                      R"("message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],)"
                      R"("usage":{"prompt_tokens":3,"completion_tokens":1}})");
  StartWith(RemotePolicy(remote.url()));
  // Read last-wins, the private marking would vanish and the request would go remote.
  for (const std::string& body : {
           Chat("x", R"(,"model":"cloud","pocket":{"private":true},"pocket":{})"),
           std::string(R"({"model":"cloud","messages":[{"role":"user","content":"secret"}],)"
                       R"("messages":[{"role":"user","content":"x"}]})"),
           Chat("x", R"(,"model":"cloud","pocket":{"private":true,"private":false})"),
       }) {
    auto r = Call("POST", "/v1/chat/completions", body);
    ASSERT_EQ(r.status, 400) << body << ": " << r.body;
    auto j = json::parse(r.body);
    EXPECT_EQ(j["error"]["code"], "invalid_json");
    EXPECT_NE(j["error"]["message"].get<std::string>().find("twice in one object"),
              std::string::npos)
        << r.body;
  }
  EXPECT_EQ(Call("POST", "/v1/embeddings", R"({"input":"a","input":"b"})").status, 400);
  EXPECT_EQ(remote.requests.load(), 0);
  server_->Stop();
}

// A remote backend on loopback that reads each request and never answers until it is
// destroyed (a backend that hangs).
class StalledRemote {
 public:
  StalledRemote() : acceptor_(ioc_, {boost::asio::ip::make_address("127.0.0.1"), 0}) {
    thread_ = std::thread([this] {
      for (;;) {
        boost::system::error_code ec;
        boost::asio::ip::tcp::socket s(ioc_);
        acceptor_.accept(s, ec);
        if (ec || stop_) return;
        char buf[65536];
        (void)s.read_some(boost::asio::buffer(buf), ec);
        ++requests;
        while (!stop_) std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
    });
  }
  ~StalledRemote() {
    stop_ = true;
    boost::system::error_code ec;
    boost::asio::ip::tcp::socket poke(ioc_);
    poke.connect(acceptor_.local_endpoint(), ec);
    thread_.join();
  }
  std::string url() const {
    return "http://127.0.0.1:" + std::to_string(acceptor_.local_endpoint().port()) + "/v1";
  }
  std::atomic<int> requests{0};

 private:
  boost::asio::io_context ioc_;
  boost::asio::ip::tcp::acceptor acceptor_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// Sends `body` to the server in the background; the answer does not matter (Stop() closes
// the connection).
std::thread PostInBackground(int port, std::string body) {
  return std::thread([port, body = std::move(body)] {
    net::FetchRequest r;
    r.method = "POST";
    r.url = "http://127.0.0.1:" + std::to_string(port) + "/v1/chat/completions";
    r.body = body;
    r.timeout_ms = 120'000;
    (void)net::HttpFetch(r);
  });
}

TEST_F(ServerTest, StopEndsARemoteCallInFlightAndReleasesItsReservation) {
  for (const bool stream : {false, true}) {
    SCOPED_TRACE(stream ? "streamed" : "not streamed");
    StalledRemote remote;
    // The backend's timeout is far beyond the bound checked below: only cancellation can
    // end the call in time.
    std::string policy = RemotePolicy(remote.url());
    policy.replace(policy.find("context_length"), 0,
                   "timeout_ms = 30000\nstream_timeout_ms = 30000\n");
    StartWith(policy);
    std::thread client = PostInBackground(
        server_->port(),
        Chat("x", stream ? R"(,"model":"cloud","stream":true)" : R"(,"model":"cloud")"));
    while (remote.requests.load() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    const auto t0 = std::chrono::steady_clock::now();
    server_->Stop();
    EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 20.0);
    client.join();
    auto spend = server_->router().ledger().SpendFor(router::BudgetScope::Kind::kArea, "chat",
                                                     static_cast<double>(std::time(nullptr)));
    ASSERT_TRUE(spend.ok()) << spend.status().ToString();
    if (!stream) {
      EXPECT_EQ(spend->day_micro_usd, 0);  // released, not settled
    }
    EXPECT_EQ(server_->metrics().Value("pocket_remote_fallbacks_total",
                                       {{"backend", "cloud"}, {"reason", "cancelled"}}),
              0);
    EXPECT_EQ(server_->metrics().Value("pocket_cancelled_requests_total",
                                       {{"stage", stream ? "generating" : "remote"}}),
              1);
    EXPECT_EQ(remote.requests.load(), 1);
  }
}

// A model whose token count (the last step before routing) waits while the prompt says
// "hold-before-routing", until released.
class HoldingModel : public FakeModel {
 public:
  HoldingModel() : FakeModel("fake", 256, 0) {}
  Result<int> CountPromptTokens(const runtime::GenerateRequest& r) const override {
    if (RenderPrompt(r).find("hold-before-routing") != std::string::npos) {
      entered = true;
      while (!release) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return FakeModel::CountPromptTokens(r);
  }
  mutable std::atomic<bool> entered{false};
  std::atomic<bool> release{false};
};

TEST_F(ServerTest, ARequestNotYetRoutedWhenTheServerStopsNeverCallsTheRemote) {
  CannedRemote remote(R"({"id":"r","object":"chat.completion","choices":[{"index":0,)"
                      R"("message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],)"
                      R"("usage":{"prompt_tokens":3,"completion_tokens":1}})");
  auto model = std::make_shared<HoldingModel>();
  StartWith(RemotePolicy(remote.url()), model);
  std::thread client =
      PostInBackground(server_->port(), Chat("hold-before-routing", R"(,"model":"cloud")"));
  while (!model->entered) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  std::thread stopper([&] { server_->Stop(); });
  while (!server_->stopping()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  model->release = true;
  stopper.join();
  client.join();
  EXPECT_EQ(remote.requests.load(), 0);
  EXPECT_EQ(server_->metrics().Value("pocket_cancelled_requests_total", {{"stage", "routing"}}), 1);
  auto spend = server_->router().ledger().SpendFor(router::BudgetScope::Kind::kArea, "chat",
                                                   static_cast<double>(std::time(nullptr)));
  ASSERT_TRUE(spend.ok());
  EXPECT_EQ(spend->day_micro_usd, 0);
}

// A model that tokenizes as RuntimeModel does: PreparePrompt stores ids (a BOS of 1, then
// the rendered prompt's bytes, so the count is FakeModel's) in the request, and Generate
// records the ids and the rendered prompt of each request it is handed.
class IdModel : public FakeModel {
 public:
  IdModel() : FakeModel("fake", 256, 0) {}
  int max_sequences() const override { return 2; }
  static std::vector<int32_t> Ids(const runtime::GenerateRequest& r) {
    std::vector<int32_t> ids{1};
    for (unsigned char ch : RenderPrompt(r)) ids.push_back(ch);
    return ids;
  }
  Result<int> CountPromptTokens(const runtime::GenerateRequest& r) const override {
    ++counts;
    return static_cast<int>(Ids(r).size());
  }
  Result<int> PreparePrompt(runtime::GenerateRequest* r) const override {
    ++prepares;
    r->prompt_tokens = Ids(*r);
    return static_cast<int>(r->prompt_tokens.size());
  }
  Result<runtime::GenerateResult> Generate(const runtime::GenerateRequest& r,
                                           const std::function<bool(std::string_view)>& on_text,
                                           GenerationStats*) override {
    {
      std::lock_guard<std::mutex> l(mu);
      handed.push_back(r.prompt_tokens);
      handed_for.push_back(Ids(r));
    }
    runtime::GenerateResult res;
    res.text = "ok";
    res.prompt_tokens = static_cast<int>(r.prompt_tokens.size());
    res.completion_tokens = 1;
    res.finish_reason = on_text("ok") ? "stop" : "cancelled";
    return res;
  }
  mutable std::atomic<int> counts{0}, prepares{0};
  std::mutex mu;
  std::vector<std::vector<int32_t>> handed, handed_for;
};

TEST_F(ServerTest, AGenerationRequestIsTemplatedAndTokenizedOnce) {
  auto model = std::make_shared<IdModel>();
  StartWith("", model);
  for (const bool stream : {false, true}) {
    auto r = Call("POST", "/v1/chat/completions",
                  Chat("hello", stream ? R"(,"stream":true)" : ""));
    ASSERT_EQ(r.status, 200) << r.body;
  }
  EXPECT_EQ(model->prepares.load(), 2);
  EXPECT_EQ(model->counts.load(), 0);
  ASSERT_EQ(model->handed.size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_FALSE(model->handed[i].empty());
    EXPECT_EQ(model->handed[i], model->handed_for[i]);
  }
  server_->Stop();
}

TEST_F(ServerTest, ATruncatedRequestReachesTheModelWithTheIdsOfWhatIsLeft) {
  auto model = std::make_shared<IdModel>();
  StartWith("", model);
  json body = {{"max_tokens", 3}, {"pocket", {{"truncate", true}}}};
  for (int i = 0; i < 6; ++i)
    body["messages"].push_back({{"role", i % 2 ? "assistant" : "user"},
                                {"content", std::string(60, static_cast<char>('a' + i))}});
  auto r = Call("POST", "/v1/chat/completions", body.dump());
  ASSERT_EQ(r.status, 200) << r.body;
  auto j = json::parse(r.body);
  ASSERT_TRUE(j.contains("pocket")) << r.body;
  EXPECT_GT(j["pocket"]["truncated"]["dropped_messages"].get<int>(), 0);
  ASSERT_EQ(model->handed.size(), 1u);
  EXPECT_EQ(model->handed[0], model->handed_for[0]);
  EXPECT_EQ(static_cast<int>(model->handed[0].size()),
            j["pocket"]["truncated"]["prompt_tokens"].get<int>());
  EXPECT_EQ(model->prepares.load(), 2);  // the whole request, then what is left of it
  server_->Stop();
}

TEST(ServerCreateTest, RefusesMoreSlotsThanAModelRunsAtOnce) {
  for (const int max_active : {2, 3}) {
    auto policy = router::ParsePolicy("", router::ProcessEnv());
    ASSERT_TRUE(policy.ok());
    ServerOptions o;
    o.default_ledger_path = ":memory:";
    o.max_active = max_active;
    auto s = Server::Create(o, {std::make_shared<IdModel>()}, std::move(*policy));
    if (max_active == 2) {
      EXPECT_TRUE(s.ok()) << s.status().ToString();
    } else {
      ASSERT_FALSE(s.ok());
      EXPECT_EQ(s.status().code(), StatusCode::kInvalidArgument);
      EXPECT_NE(s.status().message().find("max_active 3"), std::string::npos);
    }
  }
}

}  // namespace
}  // namespace pocket::server
