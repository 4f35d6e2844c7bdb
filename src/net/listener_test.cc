// ConnectionLimiter, ClientKey and AcceptBackoff (the listeners' admission and back-off).
#include "net/listener.h"

#include <gtest/gtest.h>

#include <boost/asio/error.hpp>

#include <cerrno>
#include <vector>

namespace pocket::net {
namespace {

TEST(ClientKeyTest, Ipv4AsItselfMappedIpv6AsIpv4Ipv6ByItsSlash64) {
  EXPECT_EQ(ClientKey("127.0.0.2"), "127.0.0.2");
  EXPECT_EQ(ClientKey("::ffff:10.1.2.3"), "10.1.2.3");
  EXPECT_EQ(ClientKey("2001:db8:1:2:aaaa::1"), ClientKey("2001:db8:1:2:bbbb::9"));
  EXPECT_NE(ClientKey("2001:db8:1:2::1"), ClientKey("2001:db8:1:3::1"));
  EXPECT_EQ(ClientKey("fe80::1%eth0"), ClientKey("fe80::2"));
  EXPECT_EQ(ClientKey("::1"), ClientKey("::2")) << "one /64";
  EXPECT_EQ(ClientKey("not an address"), "not an address");
}

TEST(ConnectionLimiterTest, PerClientLimitRefusesOnlyThatClient) {
  ConnectionLimiter l({/*max_connections=*/10, /*max_per_client=*/2});
  std::vector<std::shared_ptr<void>> held;
  for (int i = 0; i < 2; ++i) {
    auto a = l.Admit("a");
    ASSERT_EQ(a.verdict, ConnectionLimiter::Verdict::kAdmitted);
    held.push_back(a.ticket);
  }
  auto over = l.Admit("a");
  EXPECT_EQ(over.verdict, ConnectionLimiter::Verdict::kOverClientLimit);
  EXPECT_EQ(over.ticket, nullptr);
  auto other = l.Admit("b");
  EXPECT_EQ(other.verdict, ConnectionLimiter::Verdict::kAdmitted);
  EXPECT_EQ(l.open(), 3);
  EXPECT_EQ(l.open_for("a"), 2);
  held.pop_back();  // a ticket's last copy gone: the place is free again
  EXPECT_EQ(l.open_for("a"), 1);
  EXPECT_EQ(l.Admit("a").verdict, ConnectionLimiter::Verdict::kAdmitted);
}

TEST(ConnectionLimiterTest, GlobalLimitCountsEveryClientAndIsReportedFirst) {
  ConnectionLimiter l({/*max_connections=*/3, /*max_per_client=*/1});
  std::vector<std::shared_ptr<void>> held;
  for (const char* c : {"a", "b", "c"}) held.push_back(l.Admit(c).ticket);
  EXPECT_EQ(l.Admit("d").verdict, ConnectionLimiter::Verdict::kOverGlobalLimit);
  EXPECT_EQ(l.Admit("a").verdict, ConnectionLimiter::Verdict::kOverGlobalLimit);
  held.clear();
  EXPECT_EQ(l.open(), 0);
  EXPECT_EQ(l.Admit("d").verdict, ConnectionLimiter::Verdict::kAdmitted);
}

TEST(ConnectionLimiterTest, ZeroMeansNoLimitAndTicketsMayOutliveTheLimiter) {
  std::shared_ptr<void> survivor;
  {
    ConnectionLimiter l({0, 0});
    for (int i = 0; i < 1000; ++i)
      ASSERT_EQ(l.Admit("a").verdict, ConnectionLimiter::Verdict::kAdmitted);
    survivor = l.Admit("a").ticket;
  }
  survivor.reset();  // releases into state the ticket keeps alive (ASan checks)
}

TEST(AcceptBackoffTest, DoublesToTheCapAndAnEpisodeEndsOnSuccess) {
  AcceptBackoff b;
  bool first = false;
  EXPECT_EQ(b.OnFailure(&first), AcceptBackoff::kInitialDelayMs);
  EXPECT_TRUE(first);
  EXPECT_EQ(b.OnFailure(&first), 2 * AcceptBackoff::kInitialDelayMs);
  EXPECT_FALSE(first);
  int64_t last = 0;
  for (int i = 0; i < 20; ++i) last = b.OnFailure(&first);
  EXPECT_EQ(last, AcceptBackoff::kMaxDelayMs);
  EXPECT_TRUE(b.in_episode());
  EXPECT_EQ(b.OnSuccess(), 22u);
  EXPECT_FALSE(b.in_episode());
  EXPECT_EQ(b.OnSuccess(), 0u);
  EXPECT_EQ(b.OnFailure(&first), AcceptBackoff::kInitialDelayMs);
  EXPECT_TRUE(first);
}

TEST(IsPerConnectionAcceptErrorTest, ErrorsOfOneConnectionRetryAtOnceResourceErrorsBackOff) {
  auto sys = [](int e) { return boost::system::error_code(e, boost::system::system_category()); };
  // accept(2), "Error handling": treat these like EAGAIN.
  for (int e : {EAGAIN, EWOULDBLOCK, EINTR, ECONNABORTED, ECONNRESET, ETIMEDOUT, EPROTO, ENETDOWN,
                ENETUNREACH, EHOSTDOWN, EHOSTUNREACH, ENONET, ENOPROTOOPT, EOPNOTSUPP, EPERM})
    EXPECT_TRUE(IsPerConnectionAcceptError(sys(e))) << e << " " << sys(e).message();
  // The listener's or the system's: back off.
  for (int e : {EMFILE, ENFILE, ENOBUFS, ENOMEM, EBADF, EINVAL, ENOTSOCK, EFAULT})
    EXPECT_FALSE(IsPerConnectionAcceptError(sys(e))) << e << " " << sys(e).message();
  // The errors as Asio names them are the same values.
  EXPECT_TRUE(IsPerConnectionAcceptError(boost::asio::error::connection_reset));
  EXPECT_TRUE(IsPerConnectionAcceptError(boost::asio::error::network_unreachable));
  EXPECT_FALSE(IsPerConnectionAcceptError(boost::asio::error::no_descriptors));
  // Only errno values: the same number in another category (a TLS or HTTP error) is not one.
  EXPECT_FALSE(IsPerConnectionAcceptError(
      boost::system::error_code(EPROTO, boost::asio::error::get_misc_category())));
}

}  // namespace
}  // namespace pocket::net
