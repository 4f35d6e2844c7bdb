// Transactions (yjs v13 src/utils/Transaction.js transact, cleanupTransactions): nesting
// (one state per depth, reused), and at the end the update event for update observers, the
// type observers and the client-id collision check. MarkChanged is inline in doc_impl.h.
#include <algorithm>
#include <random>

#include "base/log.h"
#include "crdt/doc_impl.h"

namespace pocket::crdt::internal {

void DocImpl::Transact(const std::function<void(Transaction&)>& fn, const void* origin,
                       bool local) {
  Transaction handle(this, origin, local);
  if (txn_) {
    fn(handle);
    return;
  }
  TxnState* txn = TakeTxn(origin, local);
  txn_ = txn;
  fn(handle);
  txn_ = nullptr;
  FinishTransaction(*txn);
  --txn_depth_;
}

TxnState* DocImpl::TakeTxn(const void* origin, bool local) {
  if (txn_depth_ == txn_pool_.size()) txn_pool_.push_back(std::make_unique<TxnState>());
  TxnState* txn = txn_pool_[txn_depth_++].get();
  txn->Clear();
  txn->origin = origin;
  txn->local = local;
  return txn;
}

void DocImpl::FinishTransaction(TxnState& txn) {
  if (txn.before.empty() && txn.deletes.empty() && txn.changed.empty()) return;
  if (!update_observers_.empty() && (!txn.before.empty() || !txn.deletes.empty())) {
    DeleteSet ds;
    for (size_t i = 0; i < txn.deletes.size(); ++i) {
      ds.Add(txn.delete_clients[i], txn.deletes[i].clock, txn.deletes[i].len);
    }
    ds.Normalize();
    lib0::Encoder e;
    std::sort(txn.before.begin(), txn.before.end(),
              [](const auto& a, const auto& b) { return a.first > b.first; });
    size_t n = 0;
    for (const auto& [client, before] : txn.before) n += NextClock(client) > before;
    e.VarUint(n);
    for (const auto& [client, before] : txn.before) {
      const ClientState& cs = *FindClient(client);
      if (cs.next_clock <= before) continue;
      lib0::Encoder body;
      const size_t count = WriteStructs(body, cs, before);
      e.VarUint(count);
      e.VarUint(client);
      e.VarUint(before);
      e.Raw(body.buf().data(), body.size());
    }
    WriteDeleteSet(e, ds);
    const std::vector<uint8_t> bytes = e.Take();
    auto observers = update_observers_;
    for (auto& [id, fn] : observers) fn(bytes, txn.origin);
  }
  // One event per changed type, with all changed keys.
  std::vector<uint32_t> seen;
  for (const auto& [type, key] : txn.changed) {
    if (types_[type].observers.empty()) continue;
    if (std::find(seen.begin(), seen.end(), type) != seen.end()) continue;
    seen.push_back(type);
    TypeEvent ev;
    ev.origin = txn.origin;
    ev.local = txn.local;
    for (const auto& [t2, k2] : txn.changed) {
      if (t2 == type && k2 != kNil) ev.keys.push_back(keys_[k2]);
    }
    auto observers = types_[type].observers;
    for (auto& [id, fn] : observers) fn(ev);
  }
  // A remote update that advanced this doc's own clock means another peer uses our client
  // id; like Yjs, take a fresh random one so later local edits cannot collide.
  if (!txn.local) {
    for (const auto& [client, before] : txn.before) {
      if (client != client_id_ || NextClock(client) == before) continue;
      uint32_t fresh = client_id_;
      std::random_device rd;
      while (fresh == client_id_ || FindClient(fresh) != nullptr) fresh = rd();
      PK_LOG(kWarning) << "crdt: changed the client id because another peer uses " << client_id_
                       << "; now " << fresh;
      client_id_ = fresh;
      own_slot_ = kNil;
      break;
    }
  }
}

}  // namespace pocket::crdt::internal
