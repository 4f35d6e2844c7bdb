// Awareness (presence) as y-protocols 1.0.7 awareness.js encodes it:
//   update := varUint(n) ( varUint(clientID) varUint(clock) varString(JSON.stringify(state)) )*
// A state of JSON `null` removes the client. AwarenessRegistry is the server side: it keeps
// the newest state per client id, remembers which connection controls which ids, and builds
// the removal update to broadcast when a connection closes (y-websocket-server closeConn).
// States are kept as JSON text; the server never parses them.
// Thread safety: none; a room's registry is used from the room's strand only.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "base/status.h"
#include "sync/wire.h"

namespace pocket::sync {

struct AwarenessEntry {
  uint64_t client_id = 0;
  uint64_t clock = 0;
  std::string state_json;  // "null" = removed
  bool operator==(const AwarenessEntry&) const = default;
};

Result<std::vector<AwarenessEntry>> DecodeAwarenessUpdate(ByteSpan bytes);
Bytes EncodeAwarenessUpdate(const std::vector<AwarenessEntry>& entries);

class AwarenessRegistry {
 public:
  // Applies `update` from connection `conn_id` with the y-protocols rule: an entry wins when
  // its clock is newer, or equal with a null state for a client that has a state. Returns
  // the accepted entries (to broadcast); Corruption leaves the registry unchanged.
  Result<std::vector<AwarenessEntry>> Apply(ByteSpan update, uint64_t conn_id);
  // Every known non-null state, for a newly connected peer (empty when none).
  std::vector<AwarenessEntry> States() const;
  // Marks every client id that `conn_id` introduced as removed (clock + 1, null state) and
  // returns those removals to broadcast.
  std::vector<AwarenessEntry> RemoveConnection(uint64_t conn_id);
  size_t size() const { return states_.size(); }

 private:
  struct Meta {
    uint64_t clock = 0;
    std::string state_json;  // empty when removed
  };
  std::map<uint64_t, Meta> meta_;                      // client id -> newest clock/state
  std::map<uint64_t, std::string> states_;             // client id -> non-null state
  std::map<uint64_t, std::set<uint64_t>> controlled_;  // conn id -> client ids
};

}  // namespace pocket::sync
