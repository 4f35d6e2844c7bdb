#include "server/request.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <set>
#include <string>
#include <vector>

#include "runtime/sampling.h"

namespace pocket::server {
namespace {

using nlohmann::json;

// A body of each endpoint with every field the wrong-type table below reaches present and
// valid, so that replacing any one of them isolates that field.
json ValidChat() {
  return json::parse(R"({
    "model": "auto",
    "messages": [
      {"role": "system", "content": "be brief"},
      {"role": "user", "name": "ann", "content": [{"type": "text", "text": "hi"}]},
      {"role": "assistant", "content": null, "tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
      {"role": "tool", "tool_call_id": "c1", "content": "42"}
    ],
    "max_tokens": 4, "max_completion_tokens": 4, "temperature": 0.5, "top_p": 0.9, "seed": 1,
    "n": 1, "stop": ["x"], "stream": false, "stream_options": {"include_usage": true},
    "response_format": {"type": "text"}, "frequency_penalty": 0, "presence_penalty": 0,
    "logit_bias": {"42": 1}, "logprobs": false, "top_logprobs": 0, "user": "u",
    "tools": [{"type": "function", "function": {"name": "f", "description": "d",
               "parameters": {"type": "object"}}}],
    "tool_choice": {"type": "function", "function": {"name": "f"}},
    "parallel_tool_calls": true, "metadata": {"k": "v"}, "store": false
  })");
}

json ValidCompletion() {
  return json::parse(R"({"model": "auto", "prompt": "hi", "max_tokens": 4, "temperature": 1,
                         "stop": "x", "echo": false, "suffix": "s", "logprobs": 0,
                         "best_of": 1, "logit_bias": {"1": -1}, "user": "u"})");
}

json ValidEmbeddings() {
  return json::parse(R"({"model": "auto", "input": ["a", "b"], "encoding_format": "float",
                         "dimensions": 8, "user": "u"})");
}

// "/messages/1/content/0/type" -> "messages[1].content[0].type"
std::string ParamOf(const std::string& pointer) {
  std::string out;
  size_t i = 1;
  while (i <= pointer.size()) {
    const size_t j = std::min(pointer.find('/', i), pointer.size());
    const std::string seg = pointer.substr(i, j - i);
    const bool index = !seg.empty() && seg.find_first_not_of("0123456789") == std::string::npos;
    const bool bias_key = out == "logit_bias";  // its keys are token ids, names not indices
    if (index && !bias_key)
      out += "[" + seg + "]";
    else
      out += (out.empty() ? "" : ".") + seg;
    i = j + 1;
  }
  return out;
}

std::optional<RequestError> Parse(const std::string& endpoint, const json& body) {
  if (endpoint == "embeddings") {
    EmbeddingsFields f;
    return ParseEmbeddingsRequest(body, RequestLimits{}, &f);
  }
  GenerationFields f;
  return ParseGenerationRequest(body, endpoint == "chat", RequestLimits{}, &f);
}

struct FieldCase {
  const char* endpoint;
  const char* pointer;
  std::set<std::string> allowed;  // kinds of value the field takes (others must be refused)
  const char* param = nullptr;    // when it differs from ParamOf(pointer)
};

const std::vector<std::pair<std::string, json>>& Samples() {
  static const auto* samples = new std::vector<std::pair<std::string, json>>{
      {"int", 7},
      {"float", 0.25},
      {"string", "x"},
      {"array", json::array({1})},
      {"object", {{"a", 1}}},
      {"bool", true},
      {"null", nullptr},
  };
  return *samples;
}

const std::vector<FieldCase>& Cases() {
  static const auto* cases = new std::vector<FieldCase>{
      {"chat", "/model", {"string", "null"}},
      {"chat", "/messages", {"array"}},
      {"chat", "/messages/1", {"object"}},
      {"chat", "/messages/1/role", {"string"}},
      {"chat", "/messages/1/name", {"string", "null"}},
      {"chat", "/messages/1/content", {"string", "array", "null"}},
      {"chat", "/messages/1/content/0", {"object"}},
      {"chat", "/messages/1/content/0/type", {"string"}},
      {"chat", "/messages/1/content/0/text", {"string"}},
      {"chat", "/messages/2/tool_calls", {"array", "null"}},
      {"chat", "/messages/2/tool_calls/0", {"object"}},
      {"chat", "/messages/2/tool_calls/0/id", {"string", "null"}},
      {"chat", "/messages/2/tool_calls/0/function", {"object", "null"}},
      {"chat", "/messages/2/tool_calls/0/function/name", {"string", "null"}},
      {"chat", "/messages/2/tool_calls/0/function/arguments", {"string", "null"}},
      {"chat", "/messages/3/tool_call_id", {"string", "null"}},
      {"chat", "/max_tokens", {"int", "null"}},
      {"chat", "/max_completion_tokens", {"int", "null"}},
      {"chat", "/temperature", {"int", "float", "null"}},
      {"chat", "/top_p", {"int", "float", "null"}},
      {"chat", "/seed", {"int", "null"}},
      {"chat", "/n", {"int", "null"}},
      {"chat", "/stop", {"string", "array", "null"}},
      {"chat", "/stop/0", {"string"}},
      {"chat", "/stream", {"bool", "null"}},
      {"chat", "/stream_options", {"object", "null"}},
      {"chat", "/stream_options/include_usage", {"bool", "null"}},
      {"chat", "/response_format", {"object", "null"}},
      {"chat", "/response_format/type", {"string"}},
      {"chat", "/frequency_penalty", {"int", "float", "null"}},
      {"chat", "/presence_penalty", {"int", "float", "null"}},
      {"chat", "/logit_bias", {"object", "null"}},
      {"chat", "/logit_bias/42", {"int", "float"}},
      {"chat", "/logprobs", {"bool", "null"}},
      {"chat", "/top_logprobs", {"int", "null"}},
      {"chat", "/user", {"string", "null"}},
      {"chat", "/tools", {"array", "null"}},
      {"chat", "/tools/0", {"object"}},
      {"chat", "/tools/0/type", {"string"}},
      {"chat", "/tools/0/function", {"object"}},
      {"chat", "/tools/0/function/name", {"string"}},
      {"chat", "/tools/0/function/description", {"string", "null"}},
      {"chat", "/tools/0/function/parameters", {"object", "null"}},
      {"chat", "/tool_choice", {"string", "object", "null"}},
      {"chat", "/tool_choice/type", {"string"}},
      {"chat", "/tool_choice/function", {"object", "null"}},
      {"chat", "/tool_choice/function/name", {"string"}},
      {"chat", "/parallel_tool_calls", {"bool", "null"}},
      {"chat", "/metadata", {"object", "null"}},
      {"chat", "/metadata/k", {"string"}},
      {"chat", "/store", {"bool", "null"}},
      {"completions", "/model", {"string", "null"}},
      {"completions", "/prompt", {"string", "array"}},
      {"completions", "/max_tokens", {"int", "null"}},
      {"completions", "/temperature", {"int", "float", "null"}},
      {"completions", "/stop", {"string", "array", "null"}},
      {"completions", "/echo", {"bool", "null"}},
      {"completions", "/suffix", {"string", "null"}},
      {"completions", "/logprobs", {"int", "null"}},
      {"completions", "/best_of", {"int", "null"}},
      {"completions", "/logit_bias/1", {"int", "float"}},
      {"completions", "/user", {"string", "null"}},
      {"embeddings", "/model", {"string", "null"}},
      {"embeddings", "/input", {"string", "array"}},
      {"embeddings", "/input/1", {"string"}, "input"},
      {"embeddings", "/encoding_format", {"string", "null"}},
      {"embeddings", "/dimensions", {"int", "null"}},
      {"embeddings", "/user", {"string", "null"}},
  };
  return *cases;
}

json BodyFor(const std::string& endpoint) {
  return endpoint == "chat"          ? ValidChat()
         : endpoint == "completions" ? ValidCompletion()
                                     : ValidEmbeddings();
}

TEST(RequestTest, ValidBodiesOfTheTableParse) {
  for (const char* endpoint : {"chat", "completions", "embeddings"}) {
    auto e = Parse(endpoint, BodyFor(endpoint));
    EXPECT_FALSE(e.has_value()) << endpoint << ": " << e->status.ToString();
  }
}

TEST(RequestTest, EveryFieldOfTheWrongTypeIsA400NamingIt) {
  int checked = 0;
  for (const FieldCase& fc : Cases()) {
    for (const auto& [kind, value] : Samples()) {
      if (fc.allowed.count(kind)) continue;
      json body = BodyFor(fc.endpoint);
      body[json::json_pointer(fc.pointer)] = value;
      auto e = Parse(fc.endpoint, body);
      const std::string what = std::string(fc.endpoint) + " " + fc.pointer + " = " + value.dump();
      ASSERT_TRUE(e.has_value()) << what;
      EXPECT_EQ(e->status.code(), StatusCode::kInvalidArgument) << what;
      EXPECT_EQ(e->param, fc.param ? fc.param : ParamOf(fc.pointer))
          << what << ": " << e->status.message();
      ++checked;
    }
  }
  EXPECT_GT(checked, 250);
}

TEST(RequestTest, TheIssuesContentPartWithANumericTypeIsA400) {
  json body = ValidChat();
  body["messages"] = json::parse(R"([{"role":"user","content":"a"},{"role":"user","content":"b"},
      {"role":"user","content":[{"type":5,"text":"x"}]}])");
  auto e = Parse("chat", body);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->param, "messages[2].content[0].type");
  EXPECT_EQ(e->status.message(),
            "Invalid type for 'messages[2].content[0].type': expected a string, but got an "
            "integer instead.");
  // A part of another type names the type field too.
  body["messages"][2]["content"][0]["type"] = "image_url";
  e = Parse("chat", body);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->param, "messages[2].content[0].type");
}

TEST(RequestTest, RangesAndIntegersPastInt64AreRefusedNotWrapped) {
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"max_tokens", "0"},
      {"max_tokens", "18446744073709551615"},
      {"max_tokens", "-1"},
      {"max_tokens", "16777217"},
      {"temperature", "2.5"},
      {"temperature", "-1"},
      {"temperature", "1e400"},
      {"top_p", "0"},
      {"n", "2"},
      {"frequency_penalty", "3"},
      {"top_logprobs", "21"},
      {"top_logprobs", "18446744073709551615"},
  };
  for (const auto& [key, text] : bad) {
    json body = ValidChat();
    json v = json::parse(text, nullptr, false);
    if (v.is_discarded()) continue;  // 1e400 is not representable: the parser refuses it
    body[key] = v;
    auto e = Parse("chat", body);
    ASSERT_TRUE(e.has_value()) << key << "=" << text;
    EXPECT_EQ(e->param, key) << key << "=" << text;
  }
  json body = ValidChat();
  body["seed"] = json::parse("18446744073709551615");
  GenerationFields f;
  EXPECT_FALSE(ParseGenerationRequest(body, true, RequestLimits{}, &f).has_value());
  EXPECT_EQ(f.gen.sampling.seed, 18446744073709551615ull);
}

TEST(RequestTest, ParsedFieldsReachTheGenerateRequest) {
  GenerationFields f;
  ASSERT_FALSE(ParseGenerationRequest(ValidChat(), true, RequestLimits{}, &f).has_value());
  ASSERT_EQ(f.gen.messages.size(), 4u);
  EXPECT_EQ(f.gen.messages[1].content, "hi");
  EXPECT_EQ(f.gen.messages[2].content, "");
  EXPECT_EQ(f.gen.max_tokens, 4);
  EXPECT_FLOAT_EQ(f.gen.sampling.temperature, 0.5f);
  EXPECT_EQ(f.gen.stop, std::vector<std::string>{"x"});
  EXPECT_TRUE(f.include_usage);
  EmbeddingsFields e;
  json b = ValidEmbeddings();
  b["encoding_format"] = "base64";
  ASSERT_FALSE(ParseEmbeddingsRequest(b, RequestLimits{}, &e).has_value());
  EXPECT_EQ(e.inputs, (std::vector<std::string>{"a", "b"}));
  EXPECT_TRUE(e.base64);
}

// Without server defaults a request that leaves the sampling fields out gets OpenAI's, as
// before the defaults existed; with them it gets the server's; a field it sets wins.
TEST(RequestTest, SamplingFieldsLeftOutTakeTheServerDefaultsAndSetOnesWin) {
  const json bare = json::parse(R"({"messages": [{"role": "user", "content": "hi"}]})");
  GenerationFields openai;
  ASSERT_FALSE(ParseGenerationRequest(bare, true, RequestLimits{}, &openai).has_value());
  EXPECT_FLOAT_EQ(openai.gen.sampling.temperature, 1.0f);
  EXPECT_FLOAT_EQ(openai.gen.sampling.top_p, 1.0f);
  EXPECT_EQ(openai.gen.sampling.top_k, 0);
  EXPECT_FLOAT_EQ(openai.gen.sampling.min_p, 0.0f);
  EXPECT_EQ(openai.gen.sampling.seed, runtime::kRandomSeed);
  EXPECT_EQ(openai.gen.max_tokens, -1);
  EXPECT_FALSE(openai.max_tokens_requested);

  GenerationDefaults d;
  d.temperature = 0.25f;
  d.top_p = 0.5f;
  d.top_k = 7;
  d.min_p = 0.125f;
  d.seed = 99;
  d.max_tokens = 12;
  for (const bool chat : {true, false}) {
    json body = chat ? bare : json::parse(R"({"prompt": "hi"})");
    GenerationFields f;
    ASSERT_FALSE(ParseGenerationRequest(body, chat, RequestLimits{}, &f, d).has_value());
    EXPECT_FLOAT_EQ(f.gen.sampling.temperature, 0.25f);
    EXPECT_FLOAT_EQ(f.gen.sampling.top_p, 0.5f);
    EXPECT_EQ(f.gen.sampling.top_k, 7);
    EXPECT_FLOAT_EQ(f.gen.sampling.min_p, 0.125f);
    EXPECT_EQ(f.gen.sampling.seed, 99u);
    EXPECT_EQ(f.gen.max_tokens, 12);
    EXPECT_FALSE(f.max_tokens_requested);

    body["temperature"] = 0;
    body["top_p"] = 1;
    body["seed"] = 3;
    body["max_tokens"] = 30;
    GenerationFields set;
    ASSERT_FALSE(ParseGenerationRequest(body, chat, RequestLimits{}, &set, d).has_value());
    EXPECT_FLOAT_EQ(set.gen.sampling.temperature, 0.0f);
    EXPECT_FLOAT_EQ(set.gen.sampling.top_p, 1.0f);
    EXPECT_EQ(set.gen.sampling.seed, 3u);
    EXPECT_EQ(set.gen.max_tokens, 30);
    EXPECT_TRUE(set.max_tokens_requested);
    // Not OpenAI request fields: the server's value stays.
    EXPECT_EQ(set.gen.sampling.top_k, 7);
    EXPECT_FLOAT_EQ(set.gen.sampling.min_p, 0.125f);

    body.erase("max_tokens");
    body["max_completion_tokens"] = 5;
    GenerationFields mct;
    ASSERT_FALSE(ParseGenerationRequest(body, chat, RequestLimits{}, &mct, d).has_value());
    EXPECT_EQ(mct.gen.max_tokens, 5);
    EXPECT_TRUE(mct.max_tokens_requested);
    // A null field counts as absent, as everywhere in the body.
    body["max_completion_tokens"] = nullptr;
    body["temperature"] = nullptr;
    GenerationFields nulls;
    ASSERT_FALSE(ParseGenerationRequest(body, chat, RequestLimits{}, &nulls, d).has_value());
    EXPECT_EQ(nulls.gen.max_tokens, 12);
    EXPECT_FALSE(nulls.max_tokens_requested);
    EXPECT_FLOAT_EQ(nulls.gen.sampling.temperature, 0.25f);
  }
}

TEST(RequestTest, MessageCountAndPromptBytesAreBounded) {
  RequestLimits limits;
  limits.max_messages = 10;
  limits.max_prompt_bytes = 100;
  json body = {{"messages", json::array()}};
  for (int i = 0; i < 10; ++i)
    body["messages"].push_back({{"role", "user"}, {"content", "0123456789"}});
  GenerationFields f;
  EXPECT_FALSE(ParseGenerationRequest(body, true, limits, &f).has_value());
  body["messages"].push_back({{"role", "user"}, {"content", ""}});
  f = {};
  auto e = ParseGenerationRequest(body, true, limits, &f);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->param, "messages");
  EXPECT_EQ(e->status.message(), "'messages' has 11 entries; at most 10 are accepted");
  body["messages"].erase(10);
  body["messages"][9]["content"] = "0123456789x";
  f = {};
  e = ParseGenerationRequest(body, true, limits, &f);
  ASSERT_TRUE(e.has_value());
  EXPECT_NE(e->status.message().find("more than 100 bytes"), std::string::npos);
  f = {};
  e = ParseGenerationRequest({{"prompt", std::string(101, 'p')}}, false, limits, &f);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->param, "prompt");
  EmbeddingsFields ef;
  e = ParseEmbeddingsRequest({{"input", {std::string(60, 'a'), std::string(60, 'b')}}}, limits,
                             &ef);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->param, "input");
}

TEST(RequestTest, BodiesNestedTooDeepAreInvalidJsonNamingTheLimit) {
  for (const std::string field : {"extra", "messages", "tools", "metadata", "input"}) {
    const std::string body =
        "{\"" + field + "\": " + std::string(10000, '[') + std::string(10000, ']') + "}";
    json out;
    auto e = ParseRequestBody(body, &out);
    ASSERT_TRUE(e.has_value()) << field;
    EXPECT_EQ(e->code, "invalid_json");
    EXPECT_EQ(e->status.message(),
              "request body nests deeper than 64 levels of arrays and objects");
  }
  json out;
  auto e = ParseRequestBody("[1]", &out);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->status.message(), "request body must be a JSON object");
  EXPECT_FALSE(ParseRequestBody(R"({"a": [[[1]]]})", &out).has_value());
}

TEST(RequestTest, RandomMutationsOfValidBodiesNeverThrow) {
  // Replace random nodes of valid bodies by random values (the fuzz target does the same
  // from raw bytes); every outcome must be a clean parse or a RequestError.
  runtime::Rng rng(20261207);
  const auto& samples = Samples();
  for (int round = 0; round < 3000; ++round) {
    const char* endpoint = round % 3 == 0 ? "chat" : round % 3 == 1 ? "completions" : "embeddings";
    json body = BodyFor(endpoint);
    const json flat = body.flatten();
    std::vector<std::string> pointers;
    for (const auto& [p, v] : flat.items()) pointers.push_back(p);
    for (int m = 0; m < 3; ++m) {
      std::string p = pointers[rng.NextU64() % pointers.size()];
      const int up = static_cast<int>(rng.NextU64() % 3);
      for (int u = 0; u < up && p.rfind('/') != 0; ++u) p = p.substr(0, p.rfind('/'));
      try {
        body[json::json_pointer(p)] = samples[rng.NextU64() % samples.size()].second;
      } catch (const json::exception&) {
        // The path no longer exists after an earlier mutation: fine, skip it.
      }
    }
    EXPECT_NO_THROW((void)Parse(endpoint, body)) << body.dump();
  }
}

// The Pocket extensions: privacy stated in several places resolves to the most restrictive
// statement, wrong types are refused naming the field, and areas that disagree are refused.
std::optional<RequestError> ParseExt(const json& body, const Headers& headers,
                                     PocketExtensions* out) {
  HttpRequest req;
  req.headers = headers;
  return ParsePocketExtensions(body, req, out);
}

TEST(PocketExtensionsTest, MostRestrictivePrivacyWins) {
  struct Case {
    json pocket;
    Headers headers;
    bool want_private;
  };
  const std::vector<Case> cases = {
      {json::object(), {}, false},
      {{{"privacy", "public"}}, {{"x-pocket-privacy", "private"}}, true},
      {{{"privacy", "private"}}, {{"x-pocket-privacy", "public"}}, true},
      {json::object(), {{"x-pocket-privacy", "public"}, {"x-pocket-privacy", "private"}}, true},
      {json::object(), {{"x-pocket-privacy", "public, private"}}, true},
      {json::object(), {{"x-pocket-privacy", "PRIVATE"}}, true},
      {{{"private", false}}, {{"x-pocket-private", "true"}}, true},
      {{{"private", true}, {"privacy", "public"}}, {}, true},
      {{{"privacy", "public"}, {"private", false}}, {{"x-pocket-private", "false"}}, false},
  };
  for (const auto& c : cases) {
    PocketExtensions ext;
    auto e = ParseExt({{"prompt", "p"}, {"pocket", c.pocket}}, c.headers, &ext);
    ASSERT_FALSE(e.has_value()) << c.pocket.dump() << ": " << e->status.ToString();
    EXPECT_EQ(ext.marked_private, c.want_private) << c.pocket.dump();
  }
}

TEST(PocketExtensionsTest, WrongTypesAndValuesNameTheField) {
  struct Case {
    json body;
    Headers headers;
    std::string param;
  };
  const std::vector<Case> cases = {
      {{{"pocket", "private"}}, {}, "pocket"},
      {{{"pocket", {{"private", "yes"}}}}, {}, "pocket.private"},
      {{{"pocket", {{"private", 1}}}}, {}, "pocket.private"},
      {{{"pocket", {{"privacy", 1}}}}, {}, "pocket.privacy"},
      {{{"pocket", {{"privacy", "secret"}}}}, {}, "pocket.privacy"},
      {{{"pocket", {{"area", json::array()}}}}, {}, "pocket.area"},
      {{{"pocket", {{"quality", true}}}}, {}, "pocket.quality"},
      {{{"pocket", {{"truncate", "yes"}}}}, {}, "pocket.truncate"},
      {{{"pocket", {{"privcy", "private"}}}}, {}, "pocket.privcy"},
      {json::object(), {{"x-pocket-privacy", "secret"}}, "x-pocket-privacy"},
      {json::object(), {{"x-pocket-private", "yes"}}, "x-pocket-private"},
  };
  for (const auto& c : cases) {
    PocketExtensions ext;
    auto e = ParseExt(c.body, c.headers, &ext);
    ASSERT_TRUE(e.has_value()) << c.body.dump();
    EXPECT_EQ(e->param, c.param) << c.body.dump();
    EXPECT_EQ(e->status.code(), StatusCode::kInvalidArgument) << c.body.dump();
  }
}

TEST(PocketExtensionsTest, AreasThatDisagreeAreRefused) {
  PocketExtensions ext;
  EXPECT_FALSE(ParseExt({{"pocket", {{"area", "notes"}}}}, {{"x-pocket-area", "notes"}}, &ext));
  EXPECT_EQ(ext.area, "notes");
  auto e = ParseExt({{"pocket", {{"area", "public-web"}}}}, {{"x-pocket-area", "medical"}}, &ext);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->param, "pocket.area");
  e = ParseExt(json::object(), {{"x-pocket-area", "medical"}, {"x-pocket-area", "public"}}, &ext);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->param, "x-pocket-area");
  e = ParseExt(json::object(), {{"x-pocket-area", "medical, public"}}, &ext);
  ASSERT_TRUE(e.has_value());
  ext = {};
  EXPECT_FALSE(ParseExt({{"pocket", {{"area", "notes"}}}}, {}, &ext));
  EXPECT_EQ(ext.area, "notes");
}

}  // namespace
}  // namespace pocket::server
