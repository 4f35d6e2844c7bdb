// Updates in and out (yjs v13 src/utils/encoding.js): applying an update (readUpdateV2,
// integrateStructs with pending structs, a wire struct turned into an item), and encoding
// (writeStructs / Item.write with adjacent runs merged, writeStateVector,
// encodeStateAsUpdate). The wire format itself is update.cc's.
#include <algorithm>
#include <deque>
#include <map>

#include "crdt/doc_impl.h"

namespace pocket::crdt::internal {

void DocImpl::IntegrateWire(const WireStruct& wire, uint32_t offset,
                            std::deque<std::string>* scratch) {
  if (wire.ref == kRefSkip) return;
  // Yjs Item.getMissing then Item.integrate(transaction, offset): the origins are resolved
  // (splitting items) and the parent taken before the first `offset` units are cut off,
  // and only then does the cut struct get its new left (origin) item. The order matters
  // when the right origin lies inside the item the cut-off part ends.
  uint32_t left = kNil, right = kNil;
  if (wire.ref != kRefGc) {
    if (wire.has_origin) left = CleanEnd(wire.origin);
    if (wire.has_right_origin) right = CleanStart(wire.right_origin);
  }
  bool gc = wire.ref == kRefGc || (left != kNil && items_[left].ref == kRefGc) ||
            (right != kNil && items_[right].ref == kRefGc);
  uint32_t parent = kNil, parent_sub = kNil;
  const WireStruct* cut = &wire;
  WireStruct sliced;
  auto cut_off = [&] {
    if (offset == 0) return;
    sliced = SliceStruct(wire, offset, scratch);
    cut = &sliced;
    if (wire.ref != kRefGc) left = CleanEnd(sliced.origin);
  };
  if (!gc) {
    if (wire.parent_kind == 0) {
      const uint32_t src = left != kNil ? left : right;
      parent = items_[src].parent;
      parent_sub = items_[src].parent_sub;
    } else {
      if (wire.parent_kind == 1) {
        parent = RootType(wire.parent_name, 255);
      } else {
        const Item& p = items_[FindItem(wire.parent_id)];
        if (p.ref == kRefType) {
          parent = p.content;
        } else {
          gc = true;
        }
      }
      if (wire.parent_sub_bit) parent_sub = KeyIndex(wire.parent_sub);
    }
    if (parent == kNil) gc = true;
  }
  cut_off();
  const WireStruct& s = *cut;
  const uint32_t idx = AllocItem();
  {
    Item& it = items_[idx];
    it.client = s.client;
    it.clock = s.clock;
    it.len = s.len;
  }
  if (gc) {
    items_[idx].ref = kRefGc;
    AddStruct(idx);
    return;
  }
  Item it = items_[idx];
  it.ref = s.ref == kRefJson ? static_cast<uint8_t>(kRefAny) : s.ref;
  it.left = left;
  it.right = right;
  it.parent = parent;
  it.parent_sub = parent_sub;
  if (s.has_origin) {
    it.flags |= kHasOrigin;
    it.origin = s.origin;
  }
  if (s.has_right_origin) {
    it.flags |= kHasRightOrigin;
    it.right_origin = s.right_origin;
  }
  switch (s.ref) {
    case kRefString:
      it.content = static_cast<uint32_t>(text_.size());
      it.aux = static_cast<uint32_t>(s.str.size());
      text_.append(s.str);
      break;
    case kRefAny:
    case kRefJson:
      it.content = static_cast<uint32_t>(values_.size());
      values_.insert(values_.end(), s.values.begin(), s.values.end());
      break;
    case kRefBinary:
    case kRefEmbed:
      it.content = static_cast<uint32_t>(blobs_.size());
      blobs_.emplace_back(s.str);
      break;
    case kRefFormat:
      it.content = static_cast<uint32_t>(formats_.size());
      formats_.emplace_back(std::string(s.str), std::string(s.str2));
      break;
    case kRefType: {
      it.content = static_cast<uint32_t>(types_.size());
      types_.emplace_back();
      types_.back().item = idx;
      types_.back().type_ref = static_cast<uint8_t>(s.type_ref);
      types_.back().name = std::string(s.str);
      it.flags |= kNoMerge;
      break;
    }
    case kRefDoc:
      it.content = static_cast<uint32_t>(blobs_.size());
      blobs_.emplace_back(s.str);
      it.aux = static_cast<uint32_t>(values_.size());
      values_.push_back(s.values.empty() ? nlohmann::json::object() : s.values[0]);
      break;
    default:
      break;
  }
  items_[idx] = it;
  Integrate(idx);
}

Status DocImpl::ApplyUpdate(std::span<const uint8_t> update, const void* origin) {
  DecodedUpdate u;
  PK_RETURN_IF_ERROR(DecodeUpdateV1(update, &u));
  TxnState* outer = txn_;
  TxnState* own_txn = nullptr;
  if (!outer) {
    own_txn = TakeTxn(origin, /*local=*/false);
    txn_ = own_txn;
  }
  ApplyDecoded(u);
  if (!outer) {
    txn_ = nullptr;
    FinishTransaction(*own_txn);
    --txn_depth_;
  }
  return Status::Ok();
}

// Yjs readUpdateV2: integrate this update's structs, fold what cannot integrate into the
// pending update, apply the delete set (and the pending one again), then, if the new
// structs supplied something a pending struct was missing, apply the pending update too.
void DocImpl::ApplyDecoded(DecodedUpdate& u) {
  {
    size_t n = 0;
    for (const auto& c : u.clients) n += c.structs.size();
    items_.reserve(items_.size() + n + n / 4);
  }
  std::map<uint32_t, uint32_t> missing;
  std::vector<uint8_t> rest = IntegrateStructs(u, &missing);
  bool retry = false;
  if (!pending_.empty()) {
    for (const auto& [client, clock] : pending_missing_) {
      if (clock < NextClock(client)) retry = true;
    }
    if (!rest.empty()) {
      for (const auto& [client, clock] : missing) {
        auto it = pending_missing_.find(client);
        if (it == pending_missing_.end() || it->second > clock) pending_missing_[client] = clock;
      }
      const std::span<const uint8_t> both[2] = {pending_, rest};
      auto merged = MergeUpdates(both);
      PK_CHECK(merged.ok());  // both were written by us from decoded structs
      pending_ = std::move(*merged);
    }
  } else {
    pending_ = std::move(rest);
    pending_missing_ = std::move(missing);
  }
  DeleteSet ds = std::move(pending_ds_);
  for (const auto& [client, ranges] : u.ds.clients) {
    for (auto r : ranges) ds.Add(client, r.clock, r.len);
  }
  DeleteSet new_pending;
  for (const auto& [client, ranges] : ds.clients) {
    for (auto r : ranges) ApplyDeleteRange(client, r.clock, r.len, &new_pending);
  }
  new_pending.Normalize();
  pending_ds_ = std::move(new_pending);
  if (retry) {
    const std::vector<uint8_t> bytes = std::move(pending_);
    pending_.clear();
    pending_missing_.clear();
    DecodedUpdate again;
    PK_CHECK(DecodeUpdateV1(bytes, &again).ok());
    ApplyDecoded(again);
  }
}

// Yjs integrateStructs, step for step: clients from the highest id down; a struct whose
// origin, right origin or parent is missing goes on a stack while the structs of the
// client it waits for are tried; when a dependency is nowhere in the update, the stack
// and the rest of those clients' structs become the returned (encoded) pending update,
// and `missing` notes the first clock each waits for.
std::vector<uint8_t> DocImpl::IntegrateStructs(DecodedUpdate& u,
                                               std::map<uint32_t, uint32_t>* missing) {
  struct Refs {
    std::vector<const WireStruct*> refs;
    size_t i = 0;
  };
  std::map<uint32_t, Refs> refs;
  for (const auto& c : u.clients) {
    Refs& r = refs[c.client];
    for (const auto& st : c.structs) r.refs.push_back(&st);
  }
  std::vector<uint32_t> ids;  // ascending; the next target is the last
  for (const auto& [client, r] : refs) ids.push_back(client);
  auto next_target = [&]() -> Refs* {
    while (!ids.empty()) {
      Refs& t = refs.at(ids.back());
      if (t.i < t.refs.size()) return &t;
      ids.pop_back();
    }
    return nullptr;
  };
  Refs* cur = next_target();
  if (!cur) return {};
  std::map<uint32_t, std::vector<const WireStruct*>> rest;
  std::vector<const WireStruct*> stack;
  auto note_missing = [&](uint32_t client, uint32_t clock) {
    auto it = missing->find(client);
    if (it == missing->end() || it->second > clock) (*missing)[client] = clock;
  };
  auto stack_to_rest = [&] {
    for (const WireStruct* item : stack) {
      const uint32_t client = item->client;
      auto it = refs.find(client);
      if (it != refs.end() && !it->second.refs.empty()) {
        Refs& r = it->second;
        --r.i;  // the stacked struct was taken but not applied
        rest[client].assign(r.refs.begin() + static_cast<std::ptrdiff_t>(r.i), r.refs.end());
        r.refs.clear();
        r.i = 0;
      } else {
        rest[client] = {item};
      }
      ids.erase(std::remove(ids.begin(), ids.end(), client), ids.end());
    }
    stack.clear();
  };
  auto missing_dep = [&](const WireStruct& st) -> std::optional<uint32_t> {
    if (st.ref == kRefGc) return std::nullopt;
    auto gone = [&](Id id) { return id.client != st.client && id.clock >= NextClock(id.client); };
    if (st.has_origin && gone(st.origin)) return st.origin.client;
    if (st.has_right_origin && gone(st.right_origin)) return st.right_origin.client;
    if (st.parent_kind == 2 && gone(st.parent_id)) return st.parent_id.client;
    return std::nullopt;
  };
  std::deque<std::string> scratch;
  const WireStruct* head = cur->refs[cur->i++];
  while (true) {
    if (head->ref != kRefSkip) {
      const uint32_t local = NextClock(head->client);
      if (head->clock > local) {
        stack.push_back(head);
        note_missing(head->client, head->clock - 1);
        stack_to_rest();
      } else if (const auto dep = missing_dep(*head)) {
        stack.push_back(head);
        auto it = refs.find(*dep);
        if (it == refs.end() || it->second.i == it->second.refs.size()) {
          note_missing(*dep, NextClock(*dep));
          stack_to_rest();
        } else {
          head = it->second.refs[it->second.i++];
          continue;
        }
      } else if (uint64_t{local} < uint64_t{head->clock} + head->len) {
        IntegrateWire(*head, local - head->clock, &scratch);
      } else if (head->ref != kRefGc) {
        // Already here. Yjs's getMissing still splits the items at its origins, and a split
        // through a surrogate pair turns both halves into U+FFFD: the text changes.
        if (head->has_origin) CleanEnd(head->origin);
        if (head->has_right_origin) CleanStart(head->right_origin);
      }
    }
    if (!stack.empty()) {
      head = stack.back();
      stack.pop_back();
    } else if (cur && cur->i < cur->refs.size()) {
      head = cur->refs[cur->i++];
    } else {
      cur = next_target();
      if (!cur) break;
      head = cur->refs[cur->i++];
    }
  }
  if (rest.empty()) return {};
  lib0::Encoder e;
  e.VarUint(rest.size());
  for (auto it = rest.rbegin(); it != rest.rend(); ++it) {  // descending client, like Yjs
    e.VarUint(it->second.size());
    e.VarUint(it->first);
    e.VarUint(it->second.front()->clock);
    for (const WireStruct* st : it->second) WriteStruct(e, *st);
  }
  e.VarUint(0);  // no deletes
  return e.Take();
}

void DocImpl::WriteParent(lib0::Encoder& e, const Item& it) const {
  const TypeInfo& t = types_[it.parent];
  if (t.item == kNil) {
    e.VarUint(1);
    e.String(t.name);
  } else {
    e.VarUint(0);
    e.VarUint(items_[t.item].client);
    e.VarUint(items_[t.item].clock);
  }
  if (it.parent_sub != kNil) e.String(keys_[it.parent_sub]);
}

size_t DocImpl::WriteStructs(lib0::Encoder& e, const ClientState& cs, uint32_t start) const {
  size_t run = 0;
  uint32_t x = FindItemConst({cs.client, start}, &run);
  size_t count = 0;
  std::vector<uint32_t> group;  // the runs written as one struct
  while (x != kNil) {
    const Item& first = items_[x];
    const uint32_t offset = start > first.clock ? start - first.clock : 0;
    start = 0;
    // Extend the group over following runs Yjs's mergeWith would join.
    uint32_t last = x;
    uint32_t group_len = first.len - offset;
    uint32_t next = NextInClockOrder(cs, x, &run);
    size_t group_items = 1;
    group.clear();
    group.push_back(x);
    while (next != kNil) {
      const Item& l = items_[last];
      const Item& n = items_[next];
      bool ok;
      if (l.ref == kRefGc || n.ref == kRefGc) {
        ok = l.ref == kRefGc && n.ref == kRefGc;
      } else {
        ok = l.ref == n.ref && (l.ref == kRefDeleted || l.ref == kRefString || l.ref == kRefAny) &&
             l.deleted() == n.deleted() && l.right == next && (n.flags & kHasOrigin) &&
             n.origin == Id{l.client, l.clock + l.len - 1} &&
             SameId(l.flags & kHasRightOrigin, l.right_origin, n.flags & kHasRightOrigin,
                    n.right_origin);
      }
      if (!ok) break;
      group_len += n.len;
      last = next;
      ++group_items;
      group.push_back(next);
      next = NextInClockOrder(cs, next, &run);
    }
    ++count;
    if (first.ref == kRefGc) {
      e.Byte(kRefGc);
      e.VarUint(group_len);
      x = next;
      continue;
    }
    const bool has_origin = offset > 0 || (first.flags & kHasOrigin);
    const Id origin = offset > 0 ? Id{first.client, first.clock + offset - 1} : first.origin;
    const Item& tail = items_[last];
    const bool has_ro = tail.flags & kHasRightOrigin;
    e.Byte(static_cast<uint8_t>(first.ref | (has_origin ? 0x80 : 0) | (has_ro ? 0x40 : 0) |
                                (first.parent_sub != kNil ? 0x20 : 0)));
    if (has_origin) {
      e.VarUint(origin.client);
      e.VarUint(origin.clock);
    }
    if (has_ro) {
      e.VarUint(tail.right_origin.client);
      e.VarUint(tail.right_origin.clock);
    }
    if (!has_origin && !has_ro) WriteParent(e, first);
    switch (first.ref) {
      case kRefDeleted:
        e.VarUint(group_len);
        break;
      case kRefString: {
        // Byte length first, then the bytes of each run straight into the output.
        std::string_view head = Str(first);
        bool mid = false;
        if (offset > 0) {
          const size_t p = first.aux == first.len ? offset : Utf8PosOfUtf16(head, offset, &mid);
          head = mid ? head.substr(p + 4) : head.substr(p);
        }
        size_t bytes = head.size() + (mid ? 3 : 0);
        for (size_t k = 1; k < group_items; ++k) bytes += items_[group[k]].aux;
        e.VarUint(bytes);
        if (mid) e.Raw(kFffd, 3);
        e.Raw(head.data(), head.size());
        for (size_t k = 1; k < group_items; ++k) {
          const std::string_view s = Str(items_[group[k]]);
          e.Raw(s.data(), s.size());
        }
        break;
      }
      case kRefAny: {
        e.VarUint(group_len);
        for (size_t k = 0; k < group_items; ++k) {
          const Item& yi = items_[group[k]];
          for (uint32_t v = (k == 0 ? offset : 0); v < yi.len; ++v) e.Any(values_[yi.content + v]);
        }
        break;
      }
      case kRefBinary:
      case kRefEmbed:
        e.String(blobs_[first.content]);
        break;
      case kRefFormat:
        e.String(formats_[first.content].first);
        e.String(formats_[first.content].second);
        break;
      case kRefType: {
        const TypeInfo& t = types_[first.content];
        e.VarUint(t.type_ref);
        if (t.type_ref == 3 || t.type_ref == 5) e.String(t.name);
        break;
      }
      case kRefDoc:
        e.String(blobs_[first.content]);
        e.Any(values_[first.aux]);
        break;
      default:
        break;
    }
    x = next;
  }
  return count;
}

std::vector<uint8_t> DocImpl::EncodeStateVector() const {
  std::map<uint32_t, uint32_t> sv;
  for (const ClientState& cs : clients_) {
    if (cs.next_clock > 0) sv[cs.client] = cs.next_clock;
  }
  return EncodeStateVectorV1(sv);
}

Result<std::vector<uint8_t>> DocImpl::EncodeStateAsUpdate(std::span<const uint8_t> sv_bytes) const {
  PK_ASSIGN_OR_RETURN(auto sv, DecodeStateVectorV1(sv_bytes));
  std::vector<std::pair<uint32_t, uint32_t>> todo;
  for (const ClientState& cs : clients_) {
    auto it = sv.find(cs.client);
    const uint32_t have = it == sv.end() ? 0 : it->second;
    if (cs.next_clock > have) todo.emplace_back(cs.client, have);
  }
  std::sort(todo.begin(), todo.end(),
            [](const auto& a, const auto& b) { return a.first > b.first; });
  lib0::Encoder e;
  e.VarUint(todo.size());
  for (const auto& [client, have] : todo) {
    const ClientState& cs = *FindClient(client);
    lib0::Encoder body;
    body.buf().reserve(text_.size() + 12 * cs.runs.size() + 64);
    const size_t count = WriteStructs(body, cs, have);
    e.VarUint(count);
    e.VarUint(client);
    e.VarUint(have);
    e.Raw(body.buf().data(), body.size());
  }
  WriteDeleteSet(e, StoreDeleteSet());
  if (!HasPending()) return e.Take();
  // Like Yjs, the pending structs (those past `sv`) and the pending delete set travel too,
  // merged into one update, so a peer that has the missing dependencies can use them.
  const std::vector<uint8_t> main = e.Take();
  lib0::Encoder ds_update;
  ds_update.VarUint(0);
  WriteDeleteSet(ds_update, pending_ds_);
  const std::vector<uint8_t> pending_ds_bytes = ds_update.Take();
  std::vector<uint8_t> rest;
  if (!pending_.empty()) {
    PK_ASSIGN_OR_RETURN(rest, DiffUpdate(pending_, sv_bytes));
  }
  std::vector<std::span<const uint8_t>> parts = {main};
  if (!pending_ds_.empty()) parts.emplace_back(pending_ds_bytes);
  if (!pending_.empty()) parts.emplace_back(rest);
  return MergeUpdates(parts);
}

}  // namespace pocket::crdt::internal
