#include "base/json_limits.h"

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace pocket
