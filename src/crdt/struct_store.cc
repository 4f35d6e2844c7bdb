// The item store's per-client index (yjs v13 src/utils/StructStore.js): clients and their
// next clocks, item allocation, finding the item that holds a clock (findIndexSS with a
// cache for clustered lookups), getItemCleanStart/CleanEnd, and adding a struct to its
// client's runs. Splitting an item is item.cc's.
#include <algorithm>

#include "crdt/doc_impl.h"

namespace pocket::crdt::internal {
namespace {

// Past this many split_next steps from the run FindItem landed in, the runs are rebuilt.
constexpr int kMaxChainWalk = 8;

}  // namespace

const ClientState* DocImpl::FindClient(uint32_t client) const {
  auto it = client_slot_.find(client);
  return it == client_slot_.end() ? nullptr : &clients_[it->second];
}

uint32_t DocImpl::NextClock(uint32_t client) const {
  const ClientState* cs = FindClient(client);
  return cs ? cs->next_clock : 0;
}

uint32_t DocImpl::FindItemConst(Id id, size_t* run) const {
  const ClientState& cs = *FindClient(id.client);
  auto it = std::upper_bound(cs.runs.begin(), cs.runs.end(), id.clock,
                             [&](uint32_t clock, uint32_t r) { return clock < items_[r].clock; });
  PK_DCHECK(it != cs.runs.begin());
  size_t k = static_cast<size_t>(it - cs.runs.begin()) - 1;
  uint32_t x = cs.runs[k];
  while (items_[x].clock + items_[x].len <= id.clock) x = NextInClockOrder(cs, x, &k);
  if (run) *run = k;
  return x;
}

uint32_t DocImpl::NextInClockOrder(const ClientState& cs, uint32_t x, size_t* run) const {
  const uint32_t n = items_[x].split_next;
  if (n != kNil) {
    if (*run + 1 < cs.runs.size() && cs.runs[*run + 1] == n) ++*run;
    return n;
  }
  ++*run;
  return *run < cs.runs.size() ? cs.runs[*run] : kNil;
}

uint32_t DocImpl::FindItem(Id id) {
  ClientState& cs = Client(id.client);
  if (cs.last_found != kNil) {
    uint32_t c = cs.last_found;
    for (int k = 0; k < 2 && c != kNil; ++k, c = items_[c].split_next) {
      const Item& ci = items_[c];
      if (ci.client == id.client && ci.clock <= id.clock && id.clock < ci.clock + ci.len) {
        cs.last_found = c;
        return c;
      }
    }
  }
  auto it = std::upper_bound(cs.runs.begin(), cs.runs.end(), id.clock,
                             [&](uint32_t clock, uint32_t r) { return clock < items_[r].clock; });
  PK_CHECK(it != cs.runs.begin());
  uint32_t x = *(it - 1);
  int steps = 0;
  while (items_[x].clock + items_[x].len <= id.clock) {
    x = items_[x].split_next;
    ++steps;
  }
  if (steps > kMaxChainWalk) RebuildRuns(cs);
  cs.last_found = x;
  return x;
}

void DocImpl::RebuildRuns(ClientState& cs) {
  std::vector<uint32_t> runs;
  runs.reserve(cs.runs.size() * 2);
  for (uint32_t head : cs.runs) {
    for (uint32_t x = head; x != kNil; x = items_[x].split_next) {
      if (!runs.empty() && runs.back() == x) break;
      if (x != head && (items_[x].flags & kIndexed)) break;
      runs.push_back(x);
      items_[x].flags |= kIndexed;
    }
  }
  cs.runs = std::move(runs);
}

uint32_t DocImpl::CleanStart(Id id) {
  const uint32_t x = FindItem(id);
  if (items_[x].clock == id.clock) return x;
  return Split(x, id.clock - items_[x].clock);
}

uint32_t DocImpl::CleanEnd(Id id) {
  const uint32_t x = FindItem(id);
  if (items_[x].clock + items_[x].len - 1 != id.clock) Split(x, id.clock - items_[x].clock + 1);
  return x;
}

}  // namespace pocket::crdt::internal
