// The room-creation rate limit: one token bucket per client (ClientKey: an IPv4
// address, or an IPv6 address's /64, so rotating addresses inside one's own /64
// does not help), with a bounded number of buckets. Thread safety: none; the
// sync service uses it from its strand only.
#pragma once

#include <chrono>
#include <cstddef>
#include <list>
#include <string>
#include <string_view>
#include <unordered_map>

namespace pocket::sync {

class RoomCreationLimiter {
 public:
  using Clock = std::chrono::steady_clock;

  // `per_minute` <= 0: no limit. `burst` is raised to at least 1. At most
  // `max_clients` buckets are kept: a new client past that evicts the least
  // recently seen one (it gets a full bucket if it comes back, so a flood from
  // more distinct clients than this gets `burst` each per cycle, which
  // per-client limits give any such flood anyway).
  RoomCreationLimiter(double per_minute, double burst, size_t max_clients = 4096);

  // Takes one token from the bucket of ClientKey(address); false when it is
  // empty. O(1) on average.
  bool Take(std::string_view address, Clock::time_point now = Clock::now());

  size_t clients() const { return index_.size(); }

 private:
  struct Bucket {
    std::string key;
    double tokens;
    Clock::time_point refilled;
  };
  double per_s_, burst_;
  size_t max_clients_;
  std::list<Bucket> lru_;  // most recently seen first
  std::unordered_map<std::string_view, std::list<Bucket>::iterator> index_;  // keys in lru_
};

}  // namespace pocket::sync
