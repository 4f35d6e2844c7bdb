// The Doc's registries (yjs v13 src/utils/Doc.js get(name)): root types by name, interned
// map keys, and Info's census of the store. The store itself is struct_store.cc; the
// public handles forwarding here are api.cc.
#include "crdt/doc_impl.h"

#include <algorithm>

namespace pocket::crdt::internal {

uint32_t DocImpl::RootType(std::string_view name, uint8_t type_ref) {
  auto it = roots_.find(std::string(name));
  if (it != roots_.end()) {
    if (types_[it->second].type_ref == 255) types_[it->second].type_ref = type_ref;
    return it->second;
  }
  const uint32_t t = static_cast<uint32_t>(types_.size());
  types_.emplace_back();
  types_[t].type_ref = type_ref;
  types_[t].name = std::string(name);
  roots_.emplace(std::string(name), t);
  return t;
}

uint32_t DocImpl::KeyIndex(std::string_view key) {
  auto it = key_index_.find(std::string(key));
  if (it != key_index_.end()) return it->second;
  const uint32_t k = static_cast<uint32_t>(keys_.size());
  keys_.emplace_back(key);
  key_index_.emplace(std::string(key), k);
  return k;
}

DocInfo DocImpl::Info() const {
  DocInfo info;
  for (const ClientState& cs : clients_) {
    DocInfo::Client c;
    c.client = cs.client;
    c.next_clock = cs.next_clock;
    if (!cs.runs.empty()) {
      size_t run = 0;
      bool prev_deleted = false;
      for (uint32_t x = cs.runs[0]; x != kNil; x = NextInClockOrder(cs, x, &run)) {
        const Item& it = items_[x];
        ++c.structs;
        const bool del = it.deleted() || it.ref == kRefGc;
        if (del) {
          c.deleted_units += it.len;
          if (!prev_deleted) ++c.deleted_ranges;
        }
        prev_deleted = del;
      }
    }
    info.clients.push_back(c);
  }
  std::sort(info.clients.begin(), info.clients.end(),
            [](const auto& a, const auto& b) { return a.client > b.client; });
  for (const auto& [name, t] : roots_) info.root_types.push_back(name);
  std::sort(info.root_types.begin(), info.root_types.end());
  info.has_pending = HasPending();
  return info;
}

}  // namespace pocket::crdt::internal
