// Doc internals: item store, YATA integration (yjs v13 src/structs/Item.js integrate),
// update application with pending structs (src/utils/encoding.js integrateStructs),
// encoding (writeStructs / Item.write), and the Text/Map/Array operations
// (src/types/YText.js insertText/deleteText/formatText, AbstractType.js list/map helpers).
#include "crdt/doc_impl.h"

#include <algorithm>
#include <map>
#include <optional>
#include <random>
#include <unordered_set>

#include "base/log.h"

namespace pocket::crdt::internal {
namespace {

constexpr char kFffd[] = "\xEF\xBF\xBD";
constexpr int kMaxChainWalk = 8;

bool SameId(bool a_has, Id a, bool b_has, Id b) { return a_has == b_has && (!a_has || a == b); }

}  // namespace

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

const ClientState* DocImpl::FindClient(uint32_t client) const {
  auto it = client_slot_.find(client);
  return it == client_slot_.end() ? nullptr : &clients_[it->second];
}

ClientState& DocImpl::Client(uint32_t client) {
  if (last_slot_ != kNil && clients_[last_slot_].client == client) return clients_[last_slot_];
  auto [it, inserted] = client_slot_.emplace(client, static_cast<uint32_t>(clients_.size()));
  if (inserted) {
    clients_.emplace_back();
    clients_.back().client = client;
  }
  last_slot_ = it->second;
  return clients_[it->second];
}

uint32_t DocImpl::NextClock(uint32_t client) const {
  const ClientState* cs = FindClient(client);
  return cs ? cs->next_clock : 0;
}

uint32_t DocImpl::AllocItem() {
  if (!free_items_.empty()) {
    const uint32_t i = free_items_.back();
    free_items_.pop_back();
    items_[i] = Item{};
    return i;
  }
  items_.emplace_back();
  return static_cast<uint32_t>(items_.size() - 1);
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

uint32_t DocImpl::Split(uint32_t idx, uint32_t offset) {
  const uint32_t r = AllocItem();
  Item& a = items_[idx];
  Item& b = items_[r];
  b = a;
  b.clock = a.clock + offset;
  b.len = a.len - offset;
  b.origin = {a.client, b.clock - 1};
  b.flags = static_cast<uint8_t>((a.flags | kHasOrigin) & ~kIndexed);
  b.left = idx;
  switch (a.ref) {
    case kRefString: {
      bool mid = false;
      const std::string_view s = Str(a);
      // One byte per UTF-16 unit means all ASCII: no scan needed.
      const size_t pos = a.aux == a.len ? offset : Utf8PosOfUtf16(s, offset, &mid);
      if (!mid) {
        b.content = a.content + static_cast<uint32_t>(pos);
        b.aux = a.aux - static_cast<uint32_t>(pos);
        a.aux = static_cast<uint32_t>(pos);
      } else {
        // ContentString.splice: both halves of a split surrogate pair become U+FFFD.
        std::string left(s.substr(0, pos));
        left += kFffd;
        std::string right = kFffd + std::string(s.substr(pos + 4));
        a.content = static_cast<uint32_t>(text_.size());
        a.aux = static_cast<uint32_t>(left.size());
        text_ += left;
        b.content = static_cast<uint32_t>(text_.size());
        b.aux = static_cast<uint32_t>(right.size());
        text_ += right;
      }
      break;
    }
    case kRefAny:
    case kRefJson:
      b.content = a.content + offset;
      break;
    default:
      break;
  }
  a.len = offset;
  a.right = r;
  if (b.right != kNil) items_[b.right].left = r;
  a.split_next = r;
  if (b.parent_sub != kNil && b.right == kNil && b.parent != kNil) {
    types_[b.parent].map[b.parent_sub] = r;
  }
  return r;
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

void DocImpl::NoteClock(uint32_t client, uint32_t before) {
  for (const auto& [c, b] : txn_->before) {
    if (c == client) return;
  }
  txn_->before.emplace_back(client, before);
}

void DocImpl::AddStruct(uint32_t idx) {
  Item& it = items_[idx];
  ClientState& cs = Client(it.client);
  NoteClock(it.client, cs.next_clock);
  cs.runs.push_back(idx);
  it.flags |= kIndexed;
  cs.next_clock = it.clock + it.len;
}

void DocImpl::MarkChanged(uint32_t type, uint32_t key) {
  if (type == kNil) return;
  for (const auto& c : txn_->changed) {
    if (c.first == type && c.second == key) return;
  }
  txn_->changed.emplace_back(type, key);
}

// Yjs Item.integrate: `left`/`right` hold the resolved origins on entry.
void DocImpl::Integrate(uint32_t idx) {
  Item* it = &items_[idx];
  TypeInfo& t = types_[it->parent];
  const bool need_scan =
      (it->left == kNil && (it->right == kNil || items_[it->right].left != kNil)) ||
      (it->left != kNil && items_[it->left].right != it->right);
  if (need_scan) {
    uint32_t left = it->left;
    uint32_t o;
    if (left != kNil) {
      o = items_[left].right;
    } else if (it->parent_sub != kNil) {
      auto f = t.map.find(it->parent_sub);
      o = f == t.map.end() ? kNil : f->second;
      while (o != kNil && items_[o].left != kNil) o = items_[o].left;
    } else {
      o = t.start;
    }
    std::unordered_set<uint32_t> conflicting, before_origin;
    const bool has_origin = it->flags & kHasOrigin;
    const bool has_ro = it->flags & kHasRightOrigin;
    while (o != kNil && o != it->right) {
      before_origin.insert(o);
      conflicting.insert(o);
      const Item& oi = items_[o];
      const bool o_has_origin = oi.flags & kHasOrigin;
      if (SameId(has_origin, it->origin, o_has_origin, oi.origin)) {
        if (oi.client < it->client) {
          left = o;
          conflicting.clear();
        } else if (SameId(has_ro, it->right_origin, oi.flags & kHasRightOrigin, oi.right_origin)) {
          break;
        }
      } else if (o_has_origin && before_origin.count(FindItem(oi.origin))) {
        if (!conflicting.count(FindItem(oi.origin))) {
          left = o;
          conflicting.clear();
        }
      } else {
        break;
      }
      o = items_[o].right;
    }
    it = &items_[idx];
    it->left = left;
  }
  if (it->left != kNil) {
    it->right = items_[it->left].right;
    items_[it->left].right = idx;
  } else {
    uint32_t r;
    if (it->parent_sub != kNil) {
      auto f = t.map.find(it->parent_sub);
      r = f == t.map.end() ? kNil : f->second;
      while (r != kNil && items_[r].left != kNil) r = items_[r].left;
    } else {
      r = t.start;
      t.start = idx;
    }
    it->right = r;
  }
  if (it->right != kNil) {
    items_[it->right].left = idx;
  } else if (it->parent_sub != kNil) {
    t.map[it->parent_sub] = idx;
    if (it->left != kNil) DeleteItem(it->left);
  }
  it = &items_[idx];
  if (it->parent_sub == kNil && it->visible()) t.length += it->len;
  AddStruct(idx);
  it = &items_[idx];
  if (it->ref == kRefDeleted) {
    // ContentDeleted.integrate: arrives deleted.
    it->flags |= kDeleted;
    txn_->AddDelete(it->client, it->clock, it->len);
  }
  MarkChanged(it->parent, it->parent_sub);
  if (!txn_->local) types_[it->parent].cursor_item = kNil;
  const uint32_t owner = types_[it->parent].item;
  if ((owner != kNil && items_[owner].deleted()) ||
      (it->parent_sub != kNil && it->right != kNil)) {
    DeleteItem(idx);
  }
}

void DocImpl::DeleteItem(uint32_t idx) {
  Item& it = items_[idx];
  if (it.deleted() || it.ref == kRefGc) return;
  if (it.parent_sub == kNil && it.visible() && it.parent != kNil) {
    types_[it.parent].length -= it.len;
  }
  it.flags |= kDeleted;
  txn_->AddDelete(it.client, it.clock, it.len);
  MarkChanged(it.parent, it.parent_sub);
  if (it.parent != kNil && !txn_->local) types_[it.parent].cursor_item = kNil;
  if (it.ref == kRefType) {
    // ContentType.delete / gc, iteratively: children are deleted, and with gc they become
    // GC structs (their parent is gone).
    std::vector<uint32_t> stack{it.content};
    while (!stack.empty()) {
      const uint32_t t = stack.back();
      stack.pop_back();
      std::vector<uint32_t> children;
      for (uint32_t o = types_[t].start; o != kNil; o = items_[o].right) children.push_back(o);
      for (const auto& [key, cur] : types_[t].map) {
        for (uint32_t o = cur; o != kNil; o = items_[o].left) children.push_back(o);
      }
      for (uint32_t c : children) {
        Item& ci = items_[c];
        if (ci.ref == kRefGc) continue;
        if (!ci.deleted()) {
          if (ci.parent_sub == kNil && ci.visible()) types_[t].length -= ci.len;
          ci.flags |= kDeleted;
          txn_->AddDelete(ci.client, ci.clock, ci.len);
        }
        if (ci.ref == kRefType) stack.push_back(ci.content);
        if (opts_.gc) ci.ref = kRefGc;
      }
      if (opts_.gc) {
        types_[t].start = kNil;
        types_[t].map.clear();
      }
    }
    items_[idx].flags |= kNoMerge;
  }
  if (opts_.gc) items_[idx].ref = kRefDeleted;
}

// Merges `right` into `left` when Yjs's Item.mergeWith would (both gc'd deleted runs).
bool DocImpl::TryMergeDeleted(uint32_t left, uint32_t right) {
  if (left == kNil || right == kNil) return false;
  Item& l = items_[left];
  Item& r = items_[right];
  if (l.ref != kRefDeleted || r.ref != kRefDeleted || !l.deleted() || !r.deleted()) return false;
  if (l.right != right || l.split_next != right || (r.flags & (kIndexed | kNoMerge)) ||
      (l.flags & kNoMerge) || l.parent_sub != kNil || r.parent_sub != kNil) {
    return false;
  }
  if (l.client != r.client || l.clock + l.len != r.clock || !(r.flags & kHasOrigin) ||
      !(r.origin == Id{l.client, l.clock + l.len - 1}) ||
      !SameId(l.flags & kHasRightOrigin, l.right_origin, r.flags & kHasRightOrigin,
              r.right_origin)) {
    return false;
  }
  l.len += r.len;
  l.right = r.right;
  if (r.right != kNil) items_[r.right].left = left;
  l.split_next = r.split_next;
  TypeInfo& t = types_[l.parent];
  if (t.cursor_item == right) t.cursor_item = kNil;
  items_[right].len = 0;  // stale for FindItem's cache until reused
  items_[right].client = 0;
  free_items_.push_back(right);
  return true;
}

uint32_t DocImpl::InsertLocal(uint32_t type, uint32_t parent_sub, uint32_t left, uint32_t right,
                              uint8_t ref, uint32_t len, uint32_t content, uint32_t aux) {
  const uint32_t idx = AllocItem();
  Item& it = items_[idx];
  it.client = client_id_;
  it.clock = OwnClient().next_clock;
  it.len = len;
  it.ref = ref;
  it.parent = type;
  it.parent_sub = parent_sub;
  it.content = content;
  it.aux = aux;
  it.left = left;
  it.right = right;
  if (left != kNil) {
    it.flags |= kHasOrigin;
    it.origin = {items_[left].client, items_[left].clock + items_[left].len - 1};
  }
  if (right != kNil) {
    it.flags |= kHasRightOrigin;
    it.right_origin = {items_[right].client, items_[right].clock};
  }
  Integrate(idx);
  return idx;
}

void DocImpl::IntegrateWire(const WireStruct& wire, uint32_t offset, std::deque<std::string>* scratch) {
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
std::vector<uint8_t> DocImpl::IntegrateStructs(DecodedUpdate& u, std::map<uint32_t, uint32_t>* missing) {
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

// ---- Encoding ----

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
        ok = l.ref == n.ref &&
             (l.ref == kRefDeleted || l.ref == kRefString || l.ref == kRefAny) &&
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
  std::sort(todo.begin(), todo.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
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

// ---- Lists ----

void DocImpl::Forward(ListPos& p) const {
  const Item& r = items_[p.right];
  if (r.ref == kRefFormat) {
    if (!r.deleted()) {
      const JsonValue v = FormatValue(r);
      const std::string& key = formats_[r.content].first;
      if (v.is_null()) {
        p.attrs.erase(key);
      } else {
        p.attrs[key] = v;
      }
    }
  } else if (!r.deleted()) {
    p.index += r.len;
  }
  p.left = p.right;
  p.right = r.right;
}

JsonValue DocImpl::FormatValue(const Item& it) const {
  JsonValue v = JsonValue::parse(formats_[it.content].second, nullptr, false);
  return v.is_discarded() ? JsonValue() : v;
}

ListPos DocImpl::FindPosFull(uint32_t type, uint64_t index) {
  ListPos p;
  p.right = types_[type].start;
  uint64_t count = index;
  while (p.right != kNil && count > 0) {
    const Item& r = items_[p.right];
    if (r.ref != kRefFormat && !r.deleted()) {
      if (count < r.len) Split(p.right, static_cast<uint32_t>(count));
      count -= items_[p.right].len;
    }
    Forward(p);
  }
  return p;
}

// (left, right) around UTF-16/element `index`: left is the visible item ending exactly at
// index (split if needed), kNil at 0. Starts from the type's cursor when it has one.
std::pair<uint32_t, uint32_t> DocImpl::FindPos(uint32_t type, uint64_t index) {
  TypeInfo& t = types_[type];
  if (index == 0) return {kNil, t.start};
  uint32_t x = kNil;
  uint64_t pos = 0;
  if (t.cursor_item != kNil) {
    x = t.cursor_item;
    pos = t.cursor_pos;
    if (pos >= index) {
      // Walk left until an item starting before index.
      uint32_t y = items_[x].left;
      x = kNil;
      while (y != kNil) {
        const Item& yi = items_[y];
        if (yi.visible()) {
          pos -= yi.len;
          if (pos < index) {
            x = y;
            break;
          }
        }
        y = yi.left;
      }
    }
  }
  if (x == kNil) {
    x = t.start;
    pos = 0;
  }
  while (x != kNil) {
    const Item& xi = items_[x];
    if (xi.visible()) {
      if (pos + xi.len >= index) {
        if (pos + xi.len > index) Split(x, static_cast<uint32_t>(index - pos));
        t.cursor_item = x;
        t.cursor_pos = pos;
        return {x, items_[x].right};
      }
      pos += xi.len;
    }
    x = xi.right;
  }
  return {kNil, t.start};  // unreachable for index <= length
}

void DocImpl::InsertFormatAt(uint32_t type, ListPos& p, const std::string& key,
                             const JsonValue& v) {
  const uint32_t f = static_cast<uint32_t>(formats_.size());
  formats_.emplace_back(key, v.dump());
  const uint32_t idx = InsertLocal(type, kNil, p.left, p.right, kRefFormat, 1, f, 0);
  p.right = idx;
  Forward(p);
}

void DocImpl::TextInsert(uint32_t type, uint64_t index, std::string_view utf8,
                         const Attributes* attrs) {
  std::string fixed;
  if (!lib0::SanitizeUtf8(utf8, &fixed)) utf8 = fixed;
  const uint32_t len = lib0::Utf16Length(utf8);
  if (len == 0) return;
  TypeInfo& t = types_[type];
  index = std::min<uint64_t>(index, t.length);
  if (attrs == nullptr) {
    auto [left, right] = FindPos(type, index);
    // minimizeAttributeChanges: step over deleted items on the right.
    while (right != kNil && items_[right].deleted()) {
      left = right;
      right = items_[right].right;
    }
    // Fast path: extend our own last run in place (what Yjs's mergeWith would do after
    // the transaction), so sequential typing allocates nothing.
    if (left != kNil) {
      Item& l = items_[left];
      const ClientState& own = OwnClient();
      if (l.client == client_id_ && l.ref == kRefString && !l.deleted() &&
          l.clock + l.len == own.next_clock && l.content + l.aux == text_.size() &&
          l.parent_sub == kNil &&
          SameId(l.flags & kHasRightOrigin, l.right_origin, right != kNil,
                 right != kNil ? Id{items_[right].client, items_[right].clock} : Id{})) {
        NoteClock(client_id_, own.next_clock);
        text_.append(utf8);
        l.aux += static_cast<uint32_t>(utf8.size());
        l.len += len;
        OwnClient().next_clock += len;
        t.length += len;
        t.cursor_item = left;
        t.cursor_pos = index + len - l.len;
        MarkChanged(type, kNil);
        return;
      }
    }
    const uint32_t content = static_cast<uint32_t>(text_.size());
    text_.append(utf8);
    const uint32_t idx =
        InsertLocal(type, kNil, left, right, kRefString, len, content,
                    static_cast<uint32_t>(utf8.size()));
    types_[type].cursor_item = idx;
    types_[type].cursor_pos = index;
    return;
  }
  // With attributes: Yjs insertText (minimizeAttributeChanges, insertAttributes,
  // insertNegatedAttributes).
  t.cursor_item = kNil;
  ListPos p = FindPosFull(type, index);
  JsonValue want = attrs->is_object() ? *attrs : JsonValue::object();
  for (auto it = p.attrs.begin(); it != p.attrs.end(); ++it) {
    if (!want.contains(it.key())) want[it.key()] = nullptr;
  }
  MinimizeAttributeChanges(p, want);
  JsonValue negated = InsertAttributes(type, p, want);
  const uint32_t content = static_cast<uint32_t>(text_.size());
  text_.append(utf8);
  const uint32_t idx = InsertLocal(type, kNil, p.left, p.right, kRefString, len, content,
                                   static_cast<uint32_t>(utf8.size()));
  p.right = idx;
  Forward(p);
  while (p.right != kNil) {
    const Item& r = items_[p.right];
    if (r.deleted()) {
      Forward(p);
      continue;
    }
    if (r.ref == kRefFormat) {
      const std::string& key = formats_[r.content].first;
      if (negated.contains(key) && negated[key] == FormatValue(r)) {
        negated.erase(key);
        Forward(p);
        continue;
      }
    }
    break;
  }
  for (auto it = negated.begin(); it != negated.end(); ++it) {
    InsertFormatAt(type, p, it.key(), it.value());
  }
}

// Yjs minimizeAttributeChanges: step over deleted items and format marks that already
// set what `attrs` asks for.
void DocImpl::MinimizeAttributeChanges(ListPos& p, const JsonValue& attrs) {
  while (p.right != kNil) {
    const Item& r = items_[p.right];
    if (r.deleted()) {
      Forward(p);
      continue;
    }
    if (r.ref == kRefFormat) {
      const std::string& key = formats_[r.content].first;
      const JsonValue w = attrs.contains(key) ? attrs[key] : JsonValue();
      if (w == FormatValue(r)) {
        Forward(p);
        continue;
      }
    }
    break;
  }
}

// Yjs insertAttributes: inserts a mark for every attribute that differs from the current
// ones at `p`; returns the previous values, to be restored after the formatted range.
JsonValue DocImpl::InsertAttributes(uint32_t type, ListPos& p, const JsonValue& attrs) {
  JsonValue negated = JsonValue::object();
  for (auto it = attrs.begin(); it != attrs.end(); ++it) {
    const JsonValue cur = p.attrs.contains(it.key()) ? p.attrs[it.key()] : JsonValue();
    if (cur != it.value()) {
      negated[it.key()] = cur;
      InsertFormatAt(type, p, it.key(), it.value());
    }
  }
  return negated;
}

void DocImpl::TextFormat(uint32_t type, uint64_t index, uint64_t length, const Attributes& attrs) {
  if (!attrs.is_object() || attrs.empty()) return;
  types_[type].cursor_item = kNil;
  ListPos p = FindPosFull(type, index);
  if (p.right == kNil) return;
  MinimizeAttributeChanges(p, attrs);
  JsonValue negated = InsertAttributes(type, p, attrs);
  while (p.right != kNil &&
         (length > 0 || (!negated.empty() && (items_[p.right].deleted() ||
                                              items_[p.right].ref == kRefFormat)))) {
    const Item& r = items_[p.right];
    if (!r.deleted()) {
      if (r.ref == kRefFormat) {
        const std::string key = formats_[r.content].first;
        const JsonValue value = FormatValue(r);
        if (attrs.contains(key)) {
          if (attrs[key] == value) {
            negated.erase(key);
          } else {
            if (length == 0) break;
            negated[key] = value;
          }
          DeleteItem(p.right);
        } else {
          p.attrs[key] = value;
        }
      } else {
        if (length < r.len) Split(p.right, static_cast<uint32_t>(length));
        length -= items_[p.right].len;
      }
    }
    Forward(p);
  }
  while (p.right != kNil) {
    const Item& r = items_[p.right];
    if (r.deleted()) {
      Forward(p);
      continue;
    }
    if (r.ref == kRefFormat) {
      const std::string& key = formats_[r.content].first;
      if (negated.contains(key) && negated[key] == FormatValue(r)) {
        negated.erase(key);
        Forward(p);
        continue;
      }
    }
    break;
  }
  for (auto it = negated.begin(); it != negated.end(); ++it) {
    InsertFormatAt(type, p, it.key(), it.value());
  }
}

void DocImpl::ListDelete(uint32_t type, uint64_t index, uint64_t length) {
  TypeInfo& t = types_[type];
  if (index >= t.length || length == 0) return;
  length = std::min<uint64_t>(length, t.length - index);
  auto [left, x] = FindPos(type, index);
  while (length > 0 && x != kNil) {
    const Item& xi = items_[x];
    if (xi.visible()) {
      if (length < xi.len) Split(x, static_cast<uint32_t>(length));
      length -= items_[x].len;
      DeleteItem(x);
      const uint32_t next = items_[x].right;
      // Keep gc'd runs merged like Yjs does after the transaction.
      TryMergeDeleted(x, items_[x].right);
      if (TryMergeDeleted(items_[x].left, x)) {
        x = next;
        continue;
      }
      x = items_[x].right;
      continue;
    }
    x = xi.right;
  }
  TypeInfo& t2 = types_[type];
  t2.cursor_item = left;
  if (left != kNil) t2.cursor_pos = index - items_[left].len;
}

std::string DocImpl::TextString(uint32_t type) const {
  std::string out;
  for (uint32_t x = types_[type].start; x != kNil; x = items_[x].right) {
    const Item& it = items_[x];
    if (it.ref == kRefString && !it.deleted()) out.append(Str(it));
  }
  return out;
}

nlohmann::json DocImpl::TextDelta(uint32_t type) const {
  nlohmann::json ops = nlohmann::json::array();
  nlohmann::json attrs = nlohmann::json::object();
  std::string str;
  auto pack = [&] {
    if (str.empty()) return;
    nlohmann::json op = {{"insert", str}};
    if (!attrs.empty()) op["attributes"] = attrs;
    ops.push_back(std::move(op));
    str.clear();
  };
  for (uint32_t x = types_[type].start; x != kNil; x = items_[x].right) {
    const Item& it = items_[x];
    if (it.deleted()) continue;
    switch (it.ref) {
      case kRefString:
        str.append(Str(it));
        break;
      case kRefEmbed:
      case kRefType: {
        pack();
        nlohmann::json op = {{"insert", ItemValue(it, 0)}};
        if (!attrs.empty()) op["attributes"] = attrs;
        ops.push_back(std::move(op));
        break;
      }
      case kRefFormat: {
        pack();
        const JsonValue v = FormatValue(it);
        if (v.is_null()) {
          attrs.erase(formats_[it.content].first);
        } else {
          attrs[formats_[it.content].first] = v;
        }
        break;
      }
      default:
        break;
    }
  }
  pack();
  return ops;
}

JsonValue DocImpl::ItemValue(const Item& it, uint32_t offset) const {
  static const char* kTypeNames[] = {"YArray", "YMap", "YText", "YXmlElement", "YXmlFragment",
                                     "YXmlHook", "YXmlText"};
  switch (it.ref) {
    case kRefAny:
    case kRefJson:
      return values_[it.content + offset];
    case kRefString: {
      bool mid = false;
      const std::string_view s = Str(it);
      const size_t p = Utf8PosOfUtf16(s, offset, &mid);
      bool mid2 = false;
      const size_t q = Utf8PosOfUtf16(s, offset + 1, &mid2);
      return std::string(s.substr(p, std::max(q, p + 1) - p));
    }
    case kRefEmbed: {
      JsonValue v = JsonValue::parse(blobs_[it.content], nullptr, false);
      return v.is_discarded() ? JsonValue() : v;
    }
    case kRefBinary:
      return JsonValue::binary(std::vector<uint8_t>(blobs_[it.content].begin(),
                                                    blobs_[it.content].end()));
    case kRefType: {
      const uint8_t r = types_[it.content].type_ref;
      return {{"$type", r < 7 ? kTypeNames[r] : "unknown"}};
    }
    case kRefDoc:
      return {{"$doc", blobs_[it.content]}};
    default:
      return nullptr;
  }
}

void DocImpl::ArrayInsert(uint32_t type, uint64_t index, const std::vector<JsonValue>& values) {
  if (values.empty()) return;
  index = std::min<uint64_t>(index, types_[type].length);
  auto [left, right] = FindPos(type, index);
  const uint32_t content = static_cast<uint32_t>(values_.size());
  values_.insert(values_.end(), values.begin(), values.end());
  const uint32_t idx = InsertLocal(type, kNil, left, right, kRefAny,
                                   static_cast<uint32_t>(values.size()), content, 0);
  types_[type].cursor_item = idx;
  types_[type].cursor_pos = index;
}

void DocImpl::ArrayPush(uint32_t type, const JsonValue& value) {
  // Yjs typeListPushGenerics: after the very last item, deleted or not.
  uint32_t last = kNil;
  for (uint32_t x = types_[type].cursor_item != kNil ? types_[type].cursor_item : types_[type].start;
       x != kNil; x = items_[x].right) {
    last = x;
  }
  const uint32_t content = static_cast<uint32_t>(values_.size());
  values_.push_back(value);
  InsertLocal(type, kNil, last, kNil, kRefAny, 1, content, 0);
}

JsonValue DocImpl::ArrayGet(uint32_t type, uint64_t index) const {
  uint64_t pos = 0;
  for (uint32_t x = types_[type].start; x != kNil; x = items_[x].right) {
    const Item& it = items_[x];
    if (!it.visible()) continue;
    if (index < pos + it.len) return ItemValue(it, static_cast<uint32_t>(index - pos));
    pos += it.len;
  }
  return nullptr;
}

JsonValue DocImpl::ArrayJson(uint32_t type) const {
  JsonValue out = JsonValue::array();
  for (uint32_t x = types_[type].start; x != kNil; x = items_[x].right) {
    const Item& it = items_[x];
    if (!it.visible()) continue;
    for (uint32_t k = 0; k < it.len; ++k) out.push_back(ItemValue(it, k));
  }
  return out;
}

void DocImpl::MapSet(uint32_t type, std::string_view key, const JsonValue& value) {
  const uint32_t k = KeyIndex(key);
  auto f = types_[type].map.find(k);
  const uint32_t left = f == types_[type].map.end() ? kNil : f->second;
  const uint32_t content = static_cast<uint32_t>(values_.size());
  values_.push_back(value);
  InsertLocal(type, k, left, kNil, kRefAny, 1, content, 0);
}

void DocImpl::MapDelete(uint32_t type, std::string_view key) {
  auto k = key_index_.find(std::string(key));
  if (k == key_index_.end()) return;
  auto f = types_[type].map.find(k->second);
  if (f != types_[type].map.end()) DeleteItem(f->second);
}

std::optional<JsonValue> DocImpl::MapGet(uint32_t type, std::string_view key) const {
  auto k = key_index_.find(std::string(key));
  if (k == key_index_.end()) return std::nullopt;
  auto f = types_[type].map.find(k->second);
  if (f == types_[type].map.end() || items_[f->second].deleted()) return std::nullopt;
  const Item& it = items_[f->second];
  return ItemValue(it, it.len - 1);
}

std::vector<std::string> DocImpl::MapKeys(uint32_t type) const {
  std::vector<std::string> out;
  for (const auto& [k, x] : types_[type].map) {
    if (!items_[x].deleted()) out.push_back(keys_[k]);
  }
  std::sort(out.begin(), out.end());
  return out;
}

RelativePosition DocImpl::RelPos(uint32_t type, uint64_t index, int32_t assoc) const {
  const TypeInfo& t = types_[type];
  RelativePosition rp;
  rp.assoc = assoc;
  if (t.item == kNil) {
    rp.type_name = t.name;
  } else {
    rp.type_item = Id{items_[t.item].client, items_[t.item].clock};
  }
  if (assoc < 0) {
    if (index == 0) return rp;
    --index;
  }
  for (uint32_t x = t.start; x != kNil; x = items_[x].right) {
    const Item& it = items_[x];
    if (it.visible()) {
      if (it.len > index) {
        rp.item = Id{it.client, it.clock + static_cast<uint32_t>(index)};
        return rp;
      }
      index -= it.len;
    }
    if (it.right == kNil && assoc < 0) {
      rp.item = Id{it.client, it.clock + it.len - 1};
      return rp;
    }
  }
  return rp;
}

std::optional<size_t> DocImpl::ResolveRelPos(const RelativePosition& pos) const {
  if (pos.item) {
    if (NextClock(pos.item->client) <= pos.item->clock) return std::nullopt;
    const uint32_t x = FindItemConst(*pos.item, nullptr);
    const Item& it = items_[x];
    if (it.ref == kRefGc || it.parent == kNil) return std::nullopt;
    const TypeInfo& t = types_[it.parent];
    if (t.item != kNil && items_[t.item].deleted()) return 0;
    size_t index = it.visible() ? (pos.item->clock - it.clock) + (pos.assoc >= 0 ? 0 : 1) : 0;
    for (uint32_t y = it.left; y != kNil; y = items_[y].left) {
      if (items_[y].visible()) index += items_[y].len;
    }
    return index;
  }
  const TypeInfo* t = nullptr;
  if (!pos.type_name.empty()) {
    auto f = roots_.find(pos.type_name);
    if (f == roots_.end()) return pos.assoc >= 0 ? std::optional<size_t>(0) : 0;
    t = &types_[f->second];
  } else if (pos.type_item) {
    if (NextClock(pos.type_item->client) <= pos.type_item->clock) return std::nullopt;
    const Item& it = items_[FindItemConst(*pos.type_item, nullptr)];
    if (it.ref != kRefType) return std::nullopt;
    t = &types_[it.content];
  } else {
    return std::nullopt;
  }
  return pos.assoc >= 0 ? static_cast<size_t>(t->length) : 0;
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
