// NAME[:TAG] parsing: the grammar accepts what Ollama and OCI registries use and refuses
// anything path-like before it can reach the file system.
#include "registry/reference.h"

#include <gtest/gtest.h>

namespace pocket::registry {
namespace {

TEST(ModelRefTest, TagDefaultsToLatest) {
  auto ref = ParseModelRef("smollm2");
  ASSERT_TRUE(ref.ok()) << ref.status().message();
  EXPECT_EQ(ref->name, "smollm2");
  EXPECT_EQ(ref->tag, "latest");
}

TEST(ModelRefTest, AcceptsOllamaAndRegistryStyleNames) {
  for (const char* text : {"smollm2:135m-q4_0", "team/tiny:v1.2", "a/b/c", "qwen2.5:0.5b",
                           "my_model__x", "a--b:Tag_1"}) {
    EXPECT_TRUE(ParseModelRef(text).ok()) << text;
  }
  auto ref = ParseModelRef("team/tiny:v1.2");
  ASSERT_TRUE(ref.ok());
  EXPECT_EQ(ref->name, "team/tiny");
  EXPECT_EQ(ref->tag, "v1.2");
  EXPECT_EQ(ref->ToString(), "team/tiny:v1.2");
}

TEST(ModelRefTest, AcceptsARegistryHostWithAPortAsTheFirstPart) {
  auto ref = ParseModelRef("127.0.0.1:5000/library/smollm2:q8_0");
  ASSERT_TRUE(ref.ok()) << ref.status().message();
  EXPECT_EQ(ref->name, "127.0.0.1:5000/library/smollm2");
  EXPECT_EQ(ref->tag, "q8_0");
  ref = ParseModelRef("localhost:5000/x");
  ASSERT_TRUE(ref.ok()) << ref.status().message();
  EXPECT_EQ(ref->tag, "latest");
  for (const char* text : {"host:/x", "host:abc/x", "a/host:5000/x", "host:123456/x",
                           "../x:5000/y", "host:5000"}) {
    EXPECT_FALSE(IsValidName(text)) << text;
  }
}

TEST(ModelRefTest, RefusesPathLikeAndMalformedNamesNamingThem) {
  for (const char* text : {"../../x", "/abs/path", "a/../b", "./x", "a//b", "A", "a b", "", "x/",
                           ".hidden", "a:", "a:-x", "a:.x", "a:b:c/d", "-x", "a..b", "a\nb"}) {
    auto ref = ParseModelRef(text);
    ASSERT_FALSE(ref.ok()) << text;
    EXPECT_EQ(ref.status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(ref.status().message().find('\n'), std::string::npos) << text;
    if (std::string(text) == "../../x") {
      EXPECT_NE(ref.status().message().find("'../../x'"), std::string::npos);
    }
  }
}

TEST(ModelRefTest, LengthLimits) {
  EXPECT_TRUE(IsValidName(std::string(255, 'a')));
  EXPECT_FALSE(IsValidName(std::string(256, 'a')));
  EXPECT_TRUE(IsValidTag(std::string(128, 'a')));
  EXPECT_FALSE(IsValidTag(std::string(129, 'a')));
}

}  // namespace
}  // namespace pocket::registry
