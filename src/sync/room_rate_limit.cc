#include "sync/room_rate_limit.h"

#include <algorithm>

#include "net/listener.h"

namespace pocket::sync {

RoomCreationLimiter::RoomCreationLimiter(double per_minute, double burst, size_t max_clients)
    : per_s_(per_minute / 60.0),
      burst_(std::max(1.0, burst)),
      max_clients_(std::max<size_t>(1, max_clients)) {}

bool RoomCreationLimiter::Take(std::string_view address, Clock::time_point now) {
  if (per_s_ <= 0) return true;
  const std::string key = net::ClientKey(address);
  auto found = index_.find(key);
  std::list<Bucket>::iterator it;
  if (found != index_.end()) {
    it = found->second;
    lru_.splice(lru_.begin(), lru_, it);  // iterators stay valid
    const double elapsed_s = std::chrono::duration<double>(now - it->refilled).count();
    it->tokens = std::min(burst_, it->tokens + std::max(0.0, elapsed_s) * per_s_);
    it->refilled = now;
  } else {
    if (index_.size() >= max_clients_) {
      index_.erase(std::string_view(lru_.back().key));
      lru_.pop_back();
    }
    lru_.push_front(Bucket{key, burst_, now});
    it = lru_.begin();
    index_.emplace(std::string_view(it->key),
                   it);  // the list node owns the key's bytes
  }
  if (it->tokens < 1) return false;
  it->tokens -= 1;
  return true;
}

}  // namespace pocket::sync
