#include "base/json_limits.h"

#include <gtest/gtest.h>

#include <chrono>
#include <string>

namespace pocket {
namespace {

std::string NestedArrays(size_t depth, const std::string& inner = "1") {
  return std::string(depth, '[') + inner + std::string(depth, ']');
}

std::string NestedObjects(size_t depth) {
  std::string s;
  for (size_t i = 0; i < depth; ++i) s += "{\"a\":";
  s += "null";
  s += std::string(depth, '}');
  return s;
}

TEST(ParseUntrustedJsonTest, ParsesOrdinaryValues) {
  auto v = ParseUntrustedJson(R"({"a": [1, {"b": "x"}], "c": null})", "body");
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ((*v)["a"][1]["b"], "x");
  EXPECT_TRUE(ParseUntrustedJson("  42 ", "body").ok());
  EXPECT_TRUE(ParseUntrustedJson("\"s\"", "body").ok());
}

TEST(ParseUntrustedJsonTest, AcceptsExactlyTheLimitAndRefusesOneMore) {
  for (int limit : {1, 2, 64}) {
    EXPECT_TRUE(ParseUntrustedJson(NestedArrays(limit), "body", limit).ok()) << limit;
    EXPECT_TRUE(ParseUntrustedJson(NestedObjects(limit), "body", limit).ok()) << limit;
    auto a = ParseUntrustedJson(NestedArrays(limit + 1), "body", limit);
    ASSERT_FALSE(a.ok()) << limit;
    EXPECT_EQ(a.status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(a.status().message(),
              "body nests deeper than " + std::to_string(limit) + " levels of arrays and objects");
    EXPECT_FALSE(ParseUntrustedJson(NestedObjects(limit + 1), "body", limit).ok()) << limit;
  }
  EXPECT_TRUE(ParseUntrustedJson(NestedArrays(kMaxJsonDepth), "body").ok());
  EXPECT_FALSE(ParseUntrustedJson(NestedArrays(kMaxJsonDepth + 1), "body").ok());
}

TEST(ParseUntrustedJsonTest, DepthCountsContainersNotBracketsInStrings) {
  const std::string brackets(1000, '[');
  auto v = ParseUntrustedJson("[\"" + brackets + "\", {\"k\": \"}}}]]]\"}]", "body", 2);
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ((*v)[0].get<std::string>(), brackets);
}

TEST(ParseUntrustedJsonTest, DeepNestingDeepInsideAFieldIsRefused) {
  // The issue's example: a huge nest in an extra field of an otherwise ordinary request.
  const std::string body =
      R"({"messages": [{"role": "user", "content": "hi"}], "extra": )" + NestedArrays(10000) + "}";
  auto v = ParseUntrustedJson(body, "request body");
  ASSERT_FALSE(v.ok());
  EXPECT_NE(v.status().message().find("deeper than 64"), std::string::npos);
}

TEST(ParseUntrustedJsonTest, HugeNestingNeitherOverflowsTheStackNorRecurses) {
  // A million levels, balanced, unbalanced, mixed and with a syntax error at the bottom:
  // each is refused without building the value (an ASan build with its larger frames
  // runs this too).
  const size_t n = 1'000'000;
  EXPECT_FALSE(ParseUntrustedJson(NestedArrays(n), "body").ok());
  EXPECT_FALSE(ParseUntrustedJson(std::string(n, '['), "body").ok());
  EXPECT_FALSE(ParseUntrustedJson(NestedObjects(n), "body").ok());
  std::string mixed;
  for (size_t i = 0; i < n / 2; ++i) mixed += "[{\"x\":";
  EXPECT_FALSE(ParseUntrustedJson(mixed, "body").ok());
  EXPECT_FALSE(ParseUntrustedJson(NestedArrays(n, "tru"), "body").ok());
}

TEST(ParseUntrustedJsonTest, SyntaxErrorsNameThePositionNotTheInput) {
  auto v = ParseUntrustedJson("{\"secret-token-123\": ", "request body");
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(v.status().message().rfind("request body is not valid JSON (syntax error at byte ", 0),
            0u)
      << v.status().message();
  EXPECT_EQ(v.status().message().find("secret"), std::string::npos);
  EXPECT_FALSE(ParseUntrustedJson("", "body").ok());
  EXPECT_FALSE(ParseUntrustedJson("[1] [2]", "body").ok());
  EXPECT_FALSE(ParseUntrustedJson("\"\xff\"", "body").ok());  // invalid UTF-8 in a string
}

TEST(ParseUntrustedJsonTest, RefusesADuplicateKeyAtAnyDepthAndNamesIt) {
  for (const char* text : {
           R"({"pocket":{"private":true},"pocket":{}})",
           R"({"messages":[{"role":"user","content":"a"}],"x":1,"messages":[]})",
           R"({"a":[{"b":1,"c":{"d":1,"d":2}}]})",
           R"([1,{"k":1,"k":1}])",
           R"({"\u0070ocket":1,"pocket":2})",  // the same key spelled with an escape
       }) {
    auto v = ParseUntrustedJson(text, "request body");
    ASSERT_FALSE(v.ok()) << text;
    EXPECT_EQ(v.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(v.status().message().find("twice in one object"), std::string::npos)
        << v.status().message();
  }
  auto v = ParseUntrustedJson(R"({"pocket":{"private":true},"pocket":{}})", "request body");
  EXPECT_EQ(v.status().message(), R"(request body has the key "pocket" twice in one object)");
}

TEST(ParseUntrustedJsonTest, TheSameKeyInDifferentObjectsIsNoDuplicate) {
  auto v = ParseUntrustedJson(
      R"({"a":{"a":{"a":1}},"b":[{"a":1},{"a":2}],"c":{"x":1},"d":{"x":1}})", "body");
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ((*v)["b"][1]["a"], 2);
  // A key that appears again after its object closed, in a sibling at the same depth.
  EXPECT_TRUE(ParseUntrustedJson(R"([{"k":1},{"k":1},{"k":{"k":{"k":1}}}])", "body").ok());
}

TEST(ParseUntrustedJsonTest, KeepLastTakesTheLastDuplicateAsJsonParseDoes) {
  auto v = ParseUntrustedJson(R"({"k":1,"k":2})", "body", kMaxJsonDepth,
                              DuplicateKeys::kKeepLast);
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ((*v)["k"], 2);
}

TEST(ParseUntrustedJsonTest, ADuplicateKeyInTheMessageIsCutOnACharacterBoundary) {
  // 63 ASCII bytes then 'ü' (2 bytes) straddles the 64-byte cut: the message keeps 63
  // bytes of the key, never half a character, and stays valid UTF-8.
  const std::string key = std::string(63, 'k') + "\xC3\xBC" + std::string(1000, 'z');
  auto v = ParseUntrustedJson("{\"" + key + "\":1,\"" + key + "\":2}", "body");
  ASSERT_FALSE(v.ok());
  const std::string& m = v.status().message();
  EXPECT_EQ(m, "body has the key \"" + std::string(63, 'k') + "\"... twice in one object");
  auto check = ParseUntrustedJson(nlohmann::json(m).dump(), "message");  // strict UTF-8
  EXPECT_TRUE(check.ok()) << check.status().ToString();
}

TEST(ParseUntrustedJsonTest, ManyKeysAndManyObjectsParseInLinearTime) {
  // 200,000 distinct keys in one object, and 400,000 small objects in one array with the
  // same keys: nlohmann's callback parser, used before, rescanned the array at each
  // closing object (about 2 minutes here); linear, this takes well under a second.
  std::string one = "{";
  for (int i = 0; i < 200'000; ++i) one += (i ? ",\"" : "\"") + std::to_string(i) + "\":0";
  one += "}";
  std::string many = "[";
  for (int i = 0; i < 400'000; ++i) many += i ? R"(,{"a":1,"b":2})" : R"({"a":1,"b":2})";
  many += "]";
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_TRUE(ParseUntrustedJson(one, "body").ok());
  auto v = ParseUntrustedJson(many, "body");
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ(v->size(), 400'000u);
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 20.0);
}

}  // namespace
}  // namespace pocket
