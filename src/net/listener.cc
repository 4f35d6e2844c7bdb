// ConnectionLimiter's counts (one mutex, taken twice per connection, far from any hot
// path), AcceptBackoff's schedule and the Refuser's write-then-drain.
#include "net/listener.h"

#include <arpa/inet.h>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <mutex>
#include <unordered_map>

#include "base/clock.h"

namespace pocket::net {

std::string ClientKey(std::string_view address) {
  std::string a(address);
  // Boost prints an IPv6 scope ("fe80::1%eth0"); the scope is not part of the address.
  if (auto pct = a.find('%'); pct != std::string::npos) a.resize(pct);
  in6_addr v6{};
  if (a.find(':') == std::string::npos || inet_pton(AF_INET6, a.c_str(), &v6) != 1) {
    return std::string(address);
  }
  const uint8_t* b = v6.s6_addr;
  static constexpr uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (std::equal(b, b + 12, kMapped)) {
    char v4[INET_ADDRSTRLEN];
    std::snprintf(v4, sizeof(v4), "%u.%u.%u.%u", b[12], b[13], b[14], b[15]);
    return v4;
  }
  char key[64];
  std::snprintf(key, sizeof(key), "%02x%02x:%02x%02x:%02x%02x:%02x%02x::/64", b[0], b[1], b[2],
                b[3], b[4], b[5], b[6], b[7]);
  return key;
}

struct ConnectionLimiter::State {
  ConnectionLimits limits;
  mutable std::mutex mu;
  int open = 0;
  std::unordered_map<std::string, int> per_client;

  void Release(const std::string& client) {
    std::lock_guard<std::mutex> l(mu);
    --open;
    auto it = per_client.find(client);
    if (it != per_client.end() && --it->second <= 0) per_client.erase(it);
  }
};

namespace {

// What a ticket holds: releasing the place is its destructor.
struct Ticket {
  Ticket(std::shared_ptr<ConnectionLimiter::State> s, std::string c)
      : state(std::move(s)), client(std::move(c)) {}
  Ticket(const Ticket&) = delete;
  Ticket& operator=(const Ticket&) = delete;
  ~Ticket() { state->Release(client); }
  std::shared_ptr<ConnectionLimiter::State> state;
  std::string client;
};

}  // namespace

ConnectionLimiter::ConnectionLimiter(ConnectionLimits limits) : state_(std::make_shared<State>()) {
  state_->limits = limits;
}

ConnectionLimiter::Admission ConnectionLimiter::Admit(const std::string& client) {
  Admission a;
  {
    std::lock_guard<std::mutex> l(state_->mu);
    const ConnectionLimits& lim = state_->limits;
    if (lim.max_connections > 0 && state_->open >= lim.max_connections) {
      a.verdict = Verdict::kOverGlobalLimit;
      return a;
    }
    int& mine = state_->per_client[client];
    if (lim.max_per_client > 0 && mine >= lim.max_per_client) {
      a.verdict = Verdict::kOverClientLimit;
      return a;
    }
    ++mine;
    ++state_->open;
  }
  a.ticket = std::make_shared<Ticket>(state_, client);
  return a;
}

int ConnectionLimiter::open() const {
  std::lock_guard<std::mutex> l(state_->mu);
  return state_->open;
}

int ConnectionLimiter::open_for(const std::string& client) const {
  std::lock_guard<std::mutex> l(state_->mu);
  auto it = state_->per_client.find(client);
  return it == state_->per_client.end() ? 0 : it->second;
}

const ConnectionLimits& ConnectionLimiter::limits() const { return state_->limits; }

int64_t AcceptBackoff::OnFailure(bool* first_of_episode) {
  const bool first = failures_ == 0;
  if (first_of_episode) *first_of_episode = first;
  if (first) {
    episode_start_ns_ = MonotonicNs();
    delay_ms_ = kInitialDelayMs;
  } else {
    delay_ms_ = std::min(kMaxDelayMs, delay_ms_ * 2);
  }
  ++failures_;
  return delay_ms_;
}

uint64_t AcceptBackoff::OnSuccess(int64_t* episode_ms) {
  const uint64_t n = failures_;
  if (episode_ms) {
    *episode_ms = n ? static_cast<int64_t>((MonotonicNs() - episode_start_ns_) / 1000000) : 0;
  }
  failures_ = 0;
  delay_ms_ = 0;
  return n;
}

std::string AcceptBackoff::PausedMessage(std::string_view who, const boost::system::error_code& ec,
                                         int64_t delay_ms) {
  return std::string(who) + ": accept failed: " + ec.message() +
         "; pausing accepts (retrying after " + std::to_string(delay_ms) + " ms, growing to " +
         std::to_string(kMaxDelayMs) + " ms; logged once until it works)";
}

std::string AcceptBackoff::ResumedMessage(std::string_view who, uint64_t failures,
                                          int64_t episode_ms) {
  return std::string(who) + ": accepting again after " + std::to_string(failures) +
         " failed accepts in " + std::to_string(episode_ms) + " ms";
}

bool IsPerConnectionAcceptError(const boost::system::error_code& ec) {
  if (ec.category() != boost::system::system_category() &&
      ec.category() != boost::system::generic_category())
    return false;
  // Linux accept(2), "Error handling": it passes already-pending network errors of the new
  // socket on as accept's own, and "the application should treat them like EAGAIN by
  // retrying". They concern that one connection (a reset or timed-out handshake, a route
  // or device gone, a firewall's EPERM), never the listener, so they must not pause it.
  switch (ec.value()) {
    case EAGAIN:
#if EWOULDBLOCK != EAGAIN
    case EWOULDBLOCK:
#endif
    case EINTR:
    case ECONNABORTED:
    case ECONNRESET:
    case ETIMEDOUT:
    case EPROTO:
    case ENETDOWN:
    case ENETUNREACH:
    case EHOSTDOWN:
    case EHOSTUNREACH:
#ifdef ENONET
    case ENONET:
#endif
    case ENOPROTOOPT:
    case EOPNOTSUPP:
    case EPERM:
      return true;
    default:
      return false;
  }
}

namespace {

using tcp = boost::asio::ip::tcp;

class Refusal : public std::enable_shared_from_this<Refusal> {
 public:
  Refusal(tcp::socket socket, std::string response, std::shared_ptr<std::atomic<int>> count)
      : socket_(std::move(socket)),
        timer_(socket_.get_executor()),
        response_(std::move(response)),
        count_(std::move(count)) {}
  ~Refusal() { --*count_; }
  tcp::socket::executor_type executor() { return socket_.get_executor(); }

  void Start(int64_t linger_ms) {
    timer_.expires_after(std::chrono::milliseconds(linger_ms));
    timer_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
      if (!ec) self->Finish();
    });
    boost::asio::async_write(
        socket_, boost::asio::buffer(response_),
        [self = shared_from_this()](const boost::system::error_code& ec, size_t) {
          if (ec) return self->Finish();
          boost::system::error_code ignored;
          self->socket_.shutdown(tcp::socket::shutdown_send, ignored);
          self->Drain();
        });
  }

 private:
  void Drain() {
    socket_.async_read_some(
        boost::asio::buffer(sink_),
        [self = shared_from_this()](const boost::system::error_code& ec, size_t) {
          if (ec) return self->Finish();
          self->Drain();
        });
  }
  void Finish() {
    if (done_) return;
    done_ = true;
    timer_.cancel();
    boost::system::error_code ignored;
    socket_.close(ignored);
  }

  tcp::socket socket_;
  boost::asio::steady_timer timer_;
  std::string response_;
  std::shared_ptr<std::atomic<int>> count_;
  std::array<char, 4096> sink_;
  bool done_ = false;
};

}  // namespace

void Refuser::Refuse(tcp::socket socket, std::string response) {
  if (in_progress_->fetch_add(1) >= max_at_once_) {
    --*in_progress_;
    boost::system::error_code ignored;
    socket.close(ignored);
    return;
  }
  auto r = std::make_shared<Refusal>(std::move(socket), std::move(response), in_progress_);
  // Start on the socket's executor (the acceptor's caller may be elsewhere).
  boost::asio::dispatch(r->executor(), [r, ms = linger_ms_] { r->Start(ms); });
}

}  // namespace pocket::net
