#include "sync/sync_service.h"

#include <gtest/gtest.h>

#include "sync/agent.h"
#include "sync/collab_server.h"

namespace pocket::sync {
namespace {

TEST(ParseRoomTargetTest, SplitsRoomAndToken) {
  auto t = ParseRoomTarget("/notes/a%20b?x=1&token=s%3Dcret");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->room, "notes/a b");
  EXPECT_EQ(t->token, "s=cret");
  t = ParseRoomTarget("/room");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->room, "room");
  EXPECT_EQ(t->token, "");
  EXPECT_FALSE(ParseRoomTarget("/bad%2").ok());
  EXPECT_FALSE(ParseRoomTarget("/bad%zz").ok());
}

TEST(ResolveStaticPathTest, ServesPageAndVendoredPackagesOnly) {
  EXPECT_EQ(*ResolveStaticPath("/", "/w", "/nm"), "/w/index.html");
  EXPECT_EQ(*ResolveStaticPath("/app.js?v=1", "/w", "/nm"), "/w/app.js");
  EXPECT_EQ(*ResolveStaticPath("/vendor/yjs/dist/yjs.mjs", "/w", "/nm"), "/nm/yjs/dist/yjs.mjs");
  EXPECT_FALSE(ResolveStaticPath("/vendor/ws/index.js", "/w", "/nm").ok());
  EXPECT_FALSE(ResolveStaticPath("/../etc/passwd", "/w", "/nm").ok());
  EXPECT_FALSE(ResolveStaticPath("/vendor/lib0/../../x", "/w", "/nm").ok());
  EXPECT_FALSE(ResolveStaticPath("//etc/passwd", "/w", "/nm").ok());
  EXPECT_FALSE(ResolveStaticPath("/", "", "").ok());
}

TEST(ResolveStaticPathTest, VendorComesFromThePageFolderWithoutNodeModules) {
  EXPECT_EQ(*ResolveStaticPath("/vendor/yjs/dist/yjs.mjs", "/w", ""), "/w/vendor/yjs/dist/yjs.mjs");
  EXPECT_EQ(*ResolveStaticPath("/vendor/lib0/encoding.js?x", "/w", ""),
            "/w/vendor/lib0/encoding.js");
  EXPECT_FALSE(ResolveStaticPath("/vendor/lib0/../../x", "/w", "").ok());
  EXPECT_FALSE(ResolveStaticPath("/vendor/yjs/dist/yjs.mjs", "", "").ok());
}

TEST(AgentTest, CountsUtf16UnitsLikeYText) {
  EXPECT_EQ(Utf16Length(""), 0u);
  EXPECT_EQ(Utf16Length("abc"), 3u);
  EXPECT_EQ(Utf16Length("h\xC3\xA9"), 2u);          // é: 1 unit
  EXPECT_EQ(Utf16Length("\xE2\x82\xAC"), 1u);       // €: 1 unit
  EXPECT_EQ(Utf16Length("\xF0\x9F\x98\x80!"), 3u);  // 😀: a surrogate pair
}

TEST(AgentTest, RejectsUrlWithoutRoom) {
  boost::asio::io_context io;
  AgentOptions o;
  o.server_url = "ws://127.0.0.1:1/";
  EXPECT_EQ(Agent::Start(io, o).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace pocket::sync
