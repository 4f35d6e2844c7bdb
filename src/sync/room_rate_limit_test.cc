#include "sync/room_rate_limit.h"

#include <gtest/gtest.h>

#include <string>

namespace pocket::sync {
namespace {

using Clock = RoomCreationLimiter::Clock;

TEST(RoomCreationLimiterTest, AddressesOfOneIpv6SlashSixtyFourShareABucket) {
  RoomCreationLimiter limiter(60, 3);
  const Clock::time_point t0 = Clock::now();
  int granted = 0;
  for (int i = 0; i < 100; ++i) {  // a client rotating the low 64 bits
    granted += limiter.Take("2001:db8:1:2::" + std::to_string(i + 1), t0);
  }
  EXPECT_EQ(granted, 3);
  EXPECT_EQ(limiter.clients(), 1u);
  EXPECT_TRUE(limiter.Take("2001:db8:1:3::1", t0)) << "another /64 is another client";
  int v4 = 0;  // an IPv4-mapped address is the IPv4 client
  for (const char *a : {"10.0.0.1", "::ffff:10.0.0.1", "10.0.0.1", "::ffff:10.0.0.1"}) {
    v4 += limiter.Take(a, t0);
  }
  EXPECT_EQ(v4, 3);
}

TEST(RoomCreationLimiterTest, RefillsAtTheRateUpToTheBurst) {
  RoomCreationLimiter limiter(60, 2);  // one a second
  const Clock::time_point t0 = Clock::now();
  EXPECT_TRUE(limiter.Take("10.0.0.1", t0));
  EXPECT_TRUE(limiter.Take("10.0.0.1", t0));
  EXPECT_FALSE(limiter.Take("10.0.0.1", t0));
  EXPECT_TRUE(limiter.Take("10.0.0.1", t0 + std::chrono::seconds(1)));
  EXPECT_FALSE(limiter.Take("10.0.0.1", t0 + std::chrono::seconds(1)));
  EXPECT_TRUE(limiter.Take("10.0.0.1", t0 + std::chrono::hours(1)));
  EXPECT_TRUE(limiter.Take("10.0.0.1", t0 + std::chrono::hours(1)));
  EXPECT_FALSE(limiter.Take("10.0.0.1", t0 + std::chrono::hours(1)));
  RoomCreationLimiter off(0, 1);
  for (int i = 0; i < 10; ++i) EXPECT_TRUE(off.Take("10.0.0.1", t0));
}

TEST(RoomCreationLimiterTest, BucketsAreBoundedAndTheLeastRecentIsEvicted) {
  RoomCreationLimiter limiter(60, 1, /*max_clients=*/100);
  const Clock::time_point t0 = Clock::now();
  EXPECT_TRUE(limiter.Take("10.0.0.1", t0));
  for (int i = 0; i < 100000; ++i) {
    limiter.Take("2001:db8:" + std::to_string(i % 60000) + "::1", t0);
    if (i % 50 == 0) {
      EXPECT_FALSE(limiter.Take("10.0.0.1", t0)) << "seen recently: kept, still empty";
    }
    ASSERT_LE(limiter.clients(), 100u);
  }
}

}  // namespace
}  // namespace pocket::sync
