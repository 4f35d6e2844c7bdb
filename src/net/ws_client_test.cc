// ParseWsUrl, the part of WsClient that needs no peer (connections are exercised by
// sync/peer_test.cc against the collab server).
#include "net/ws_client.h"

#include <gtest/gtest.h>

namespace pocket::net {
namespace {

TEST(ParseWsUrlTest, AcceptsWsUrlsOnly) {
  auto u = ParseWsUrl("ws://127.0.0.1:1234/room?token=t");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->host, "127.0.0.1");
  EXPECT_EQ(u->port, "1234");
  EXPECT_EQ(u->target, "/room?token=t");
  u = ParseWsUrl("ws://localhost/r");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->port, "80");
  EXPECT_FALSE(ParseWsUrl("http://x:1/r").ok());
  EXPECT_FALSE(ParseWsUrl("ws://:1/r").ok());
  EXPECT_FALSE(ParseWsUrl("ws://h:port/r").ok());
}

}  // namespace
}  // namespace pocket::net
