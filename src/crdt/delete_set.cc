// Delete sets (yjs v13 src/utils/DeleteSet.js): applying a remote delete range to the
// store (readAndApplyDeleteSet's per-range step; clocks not seen yet go to the pending
// set) and the store's own delete set (createDeleteSetFromStructStore).
#include <algorithm>

#include "crdt/doc_impl.h"

namespace pocket::crdt::internal {

void DocImpl::ApplyDeleteRange(uint32_t client, uint32_t clock, uint32_t len, DeleteSet* pending) {
  const uint32_t state = NextClock(client);
  const uint64_t end64 = uint64_t{clock} + len;
  if (end64 > state) {
    const uint32_t from = std::max(clock, state);
    pending->Add(client, from, static_cast<uint32_t>(end64 - from));
  }
  const uint32_t end = static_cast<uint32_t>(std::min<uint64_t>(end64, state));
  if (clock >= end) return;
  uint32_t x = CleanStart({client, clock});
  while (x != kNil) {
    if (items_[x].clock + items_[x].len > end) Split(x, end - items_[x].clock);
    DeleteItem(x);
    const uint32_t next_clock = items_[x].clock + items_[x].len;
    if (next_clock >= end) break;
    x = FindItem({client, next_clock});
  }
}

DeleteSet DocImpl::StoreDeleteSet() const {
  DeleteSet ds;
  for (const ClientState& cs : clients_) {
    if (cs.runs.empty()) continue;
    std::vector<DeleteRange> ranges;
    size_t run = 0;
    for (uint32_t x = cs.runs[0]; x != kNil; x = NextInClockOrder(cs, x, &run)) {
      const Item& it = items_[x];
      if (!it.deleted() && it.ref != kRefGc) continue;
      if (!ranges.empty() && ranges.back().clock + ranges.back().len == it.clock) {
        ranges.back().len += it.len;
      } else {
        ranges.push_back({it.clock, it.len});
      }
    }
    if (!ranges.empty()) ds.clients[cs.client] = std::move(ranges);
  }
  return ds;
}

}  // namespace pocket::crdt::internal
