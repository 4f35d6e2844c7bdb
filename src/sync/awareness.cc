#include "sync/awareness.h"

namespace pocket::sync {

Result<std::vector<AwarenessEntry>> DecodeAwarenessUpdate(ByteSpan bytes) {
  WireReader r(bytes);
  PK_ASSIGN_OR_RETURN(uint64_t n, r.VarUint("awareness entry count"));
  // Each entry takes at least 3 bytes; reject counts the input cannot hold before reserving.
  if (n > r.remaining() / 3) {
    return Status::Corruption("awareness: " + std::to_string(n) + " entries in " +
                              std::to_string(bytes.size()) + " bytes");
  }
  std::vector<AwarenessEntry> out;
  out.reserve(n);
  for (uint64_t i = 0; i < n; ++i) {
    AwarenessEntry e;
    PK_ASSIGN_OR_RETURN(e.client_id, r.VarUint("awareness client id"));
    PK_ASSIGN_OR_RETURN(e.clock, r.VarUint("awareness clock"));
    PK_ASSIGN_OR_RETURN(e.state_json, r.VarString("awareness state"));
    if (e.state_json.empty()) {
      return Status::Corruption("awareness: empty state JSON for client " +
                                std::to_string(e.client_id));
    }
    out.push_back(std::move(e));
  }
  if (!r.done()) {
    return Status::Corruption("awareness: " + std::to_string(r.remaining()) + " trailing bytes");
  }
  return out;
}

Bytes EncodeAwarenessUpdate(const std::vector<AwarenessEntry>& entries) {
  WireWriter w;
  w.VarUint(entries.size());
  for (const auto& e : entries) {
    w.VarUint(e.client_id);
    w.VarUint(e.clock);
    w.VarString(e.state_json);
  }
  return w.Take();
}

Result<std::vector<AwarenessEntry>> AwarenessRegistry::Apply(ByteSpan update, uint64_t conn_id) {
  PK_ASSIGN_OR_RETURN(std::vector<AwarenessEntry> entries, DecodeAwarenessUpdate(update));
  std::vector<AwarenessEntry> accepted;
  for (auto& e : entries) {
    const bool is_null = e.state_json == "null";
    auto it = meta_.find(e.client_id);
    const uint64_t current = it == meta_.end() ? 0 : it->second.clock;
    const bool has_state = states_.count(e.client_id) != 0;
    if (!(current < e.clock || (current == e.clock && is_null && has_state))) continue;
    meta_[e.client_id] = Meta{e.clock, is_null ? std::string() : e.state_json};
    if (is_null) {
      states_.erase(e.client_id);
      for (auto& [conn, ids] : controlled_) ids.erase(e.client_id);
    } else {
      states_[e.client_id] = e.state_json;
      controlled_[conn_id].insert(e.client_id);
    }
    accepted.push_back(std::move(e));
  }
  return accepted;
}

std::vector<AwarenessEntry> AwarenessRegistry::States() const {
  std::vector<AwarenessEntry> out;
  for (const auto& [id, state] : states_) out.push_back({id, meta_.at(id).clock, state});
  return out;
}

std::vector<AwarenessEntry> AwarenessRegistry::RemoveConnection(uint64_t conn_id) {
  std::vector<AwarenessEntry> removed;
  auto it = controlled_.find(conn_id);
  if (it == controlled_.end()) return removed;
  for (uint64_t id : it->second) {
    if (states_.erase(id) == 0) continue;
    Meta& m = meta_[id];
    m.clock += 1;
    m.state_json.clear();
    removed.push_back({id, m.clock, "null"});
  }
  controlled_.erase(it);
  return removed;
}

}  // namespace pocket::sync
