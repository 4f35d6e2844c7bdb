// The connection admission of net::HttpServer (http_server.cc), the one listener of both
// `pocket serve` and `pocket collab serve`: admission of a new connection under a cap on
// open connections in all and one per client, so one client cannot take every place;
// a fast answer for a connection the caps refuse, which never blocks the acceptor; and the
// back-off schedule for accept() failures (EMFILE and friends), so a listener out of file
// descriptors pauses instead of retrying in a busy loop. ClientKey is also what
// sync::RoomCreationLimiter counts clients by.
// Thread safety: ConnectionLimiter (and its tickets) and Refuser may be used from any
// thread; AcceptBackoff belongs to one acceptor (one strand).
#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <boost/system/error_code.hpp>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace pocket::net {

struct ConnectionLimits {
  int max_connections = 512;  // open connections of all clients together; 0: no limit
  int max_per_client = 64;    // open connections of one client (ClientKey); 0: no limit
};

// The client a remote address counts as: an IPv4 address as itself (also when written as
// an IPv4-mapped IPv6 address, "::ffff:1.2.3.4"), an IPv6 address by its /64 prefix (one
// host usually holds a whole /64, so counting single addresses would not limit it), and any
// other string as itself.
std::string ClientKey(std::string_view address);

class ConnectionLimiter {
 public:
  enum class Verdict { kAdmitted, kOverClientLimit, kOverGlobalLimit };
  struct Admission {
    Verdict verdict = Verdict::kAdmitted;
    // When admitted: holds the connection's place until the last copy is destroyed (keep it
    // with whatever owns the socket, also past a WebSocket upgrade). Null otherwise.
    std::shared_ptr<void> ticket;
  };

  explicit ConnectionLimiter(ConnectionLimits limits);
  // Admits a connection of `client` (a ClientKey) when both limits leave room. The global
  // limit is checked first: a refusal for it says so even when the client is also over.
  Admission Admit(const std::string& client);
  int open() const;
  int open_for(const std::string& client) const;
  const ConnectionLimits& limits() const;

  struct State;  // shared with the tickets, which may outlive the limiter

 private:
  std::shared_ptr<State> state_;
};

// Delays between retries of a failing accept(): from kInitialDelayMs doubling to
// kMaxDelayMs, back to the start after a success. An "episode" is a run of failures between
// two successes; callers log its first failure and its end, not every failure.
class AcceptBackoff {
 public:
  static constexpr int64_t kInitialDelayMs = 10;
  static constexpr int64_t kMaxDelayMs = 1000;

  // After a failed accept: how long to pause before the next one. `*first_of_episode` is
  // set true for the first failure since the last success.
  int64_t OnFailure(bool* first_of_episode);
  // After a successful accept: the number of failures of the episode that just ended (0 when
  // there was none), and in `*episode_ms` (optional) how long it lasted.
  uint64_t OnSuccess(int64_t* episode_ms = nullptr);
  bool in_episode() const { return failures_ > 0; }

  // The two log lines of an episode ("<who>: accept failed: ...", "<who>: accepting again
  // ..."), built without iostreams: in the sanitizer preset UBSan's first type check of an
  // ostream call opens a pipe, which fails while descriptors are out and aborts the process.
  static std::string PausedMessage(std::string_view who, const boost::system::error_code& ec,
                                   int64_t delay_ms);
  static std::string ResumedMessage(std::string_view who, uint64_t failures, int64_t episode_ms);

 private:
  uint64_t failures_ = 0;
  int64_t delay_ms_ = 0;
  uint64_t episode_start_ns_ = 0;
};

// True for accept() errors that concern only the connection being accepted: retry at once.
// Those are EAGAIN/EWOULDBLOCK, EINTR, ECONNABORTED, and the new socket's pending network
// errors that Linux accept(2) hands on and says to treat like EAGAIN (EPROTO, ENETDOWN,
// ENOPROTOOPT, EHOSTDOWN, ENONET, EHOSTUNREACH, EOPNOTSUPP, ENETUNREACH, EPERM; also
// ECONNRESET and ETIMEDOUT). Every other error (EMFILE, ENFILE, ENOBUFS, ENOMEM, EBADF,
// ...) is the listener's or the system's and gets AcceptBackoff.
bool IsPerConnectionAcceptError(const boost::system::error_code& ec);

// Answers connections the limits refuse: `response` (a whole HTTP response with
// "Connection: close") is written at once without reading the request, the sending side is
// shut, and what the client still sends is read and dropped until it closes or for at most
// linger_ms, so that closing does not reset the connection (a close with unread bytes sends
// RST, which can destroy the answer before the client reads it). At most max_at_once
// refusals are in progress; beyond that a refused socket is closed at once.
class Refuser {
 public:
  explicit Refuser(int max_at_once = 64, int64_t linger_ms = 1000)
      : max_at_once_(max_at_once),
        linger_ms_(linger_ms),
        in_progress_(std::make_shared<std::atomic<int>>(0)) {}
  // Runs on the socket's executor; never blocks the caller.
  void Refuse(boost::asio::ip::tcp::socket socket, std::string response);
  int in_progress() const { return in_progress_->load(); }

 private:
  int max_at_once_;
  int64_t linger_ms_;
  std::shared_ptr<std::atomic<int>> in_progress_;
};

}  // namespace pocket::net
