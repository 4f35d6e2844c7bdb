// The Doc's internals: an item store in one contiguous array (integer links, no pointer per
// item), run-length items split on demand, a per-client index of runs, a cursor per type
// that makes sequential typing O(1), and Yjs's YATA integration. Internal to src/crdt;
// Text/Map/Array/Doc in api.cc are thin wrappers. DocImpl's members are defined along
// Yjs's own file split: doc_impl.cc (Doc.js), struct_store.cc (StructStore.js), item.cc
// (Item.js), transaction.cc (Transaction.js), delete_set.cc (DeleteSet.js), encoding.cc
// (encoding.js), abstract_type.cc, text.cc, array.cc, map.cc (types/), and
// relative_position.cc (RelativePosition.js). Thread safety: none (one owner thread).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "crdt/doc.h"
#include "crdt/update.h"

namespace pocket::crdt::internal {

constexpr uint32_t kNil = 0xffffffffu;

// U+FFFD in UTF-8: what half of a surrogate pair becomes when a string item is split or
// written between the halves, as in Yjs.
inline constexpr char kFffd[] = "\xEF\xBF\xBD";

// Whether two optional ids (an origin and its presence flag) are the same.
inline bool SameId(bool a_has, Id a, bool b_has, Id b) {
  return a_has == b_has && (!a_has || a == b);
}

enum ItemFlag : uint8_t {
  kDeleted = 1,
  kHasOrigin = 2,
  kHasRightOrigin = 4,
  kIndexed = 8,   // listed in its client's `runs`
  kNoMerge = 16,  // was a type (others hold its index)
};

// One run of content by one client: clocks [clock, clock+len).
struct Item {
  uint32_t client = 0, clock = 0, len = 0;
  Id origin, right_origin;
  uint32_t left = kNil, right = kNil;  // neighbours in the parent's list
  uint32_t parent = kNil;              // type index; kNil only for GC structs
  uint32_t parent_sub = kNil;          // map key index
  // String: byte offset/length in text_. Any: offset in values_. Binary/Embed: blobs_
  // index. Format: formats_ index. Type: types_ index. Doc: blobs_ index, aux = values_.
  uint32_t content = 0, aux = 0;
  uint32_t split_next = kNil;  // the item holding the clocks right after this one
  uint8_t ref = kRefGc;
  uint8_t flags = 0;
  bool deleted() const { return flags & kDeleted; }
  bool visible() const { return !(flags & kDeleted) && RefCountable(ref); }
};

struct TypeInfo {
  uint32_t start = kNil;
  uint32_t item = kNil;    // the item holding this type; kNil for a root type
  uint8_t type_ref = 255;  // 0 Array, 1 Map, 2 Text, ... 255 unknown (root not yet used)
  std::string name;        // root name, or XML node name
  uint64_t length = 0;     // visible countable units
  std::unordered_map<uint32_t, uint32_t> map;  // key index -> current item
  uint32_t cursor_item = kNil;                 // a visible item of the list and its start index
  uint64_t cursor_pos = 0;
  std::vector<std::pair<int, TypeObserver>> observers;
};

struct ClientState {
  uint32_t client = 0;
  uint32_t next_clock = 0;
  std::vector<uint32_t> runs;  // item indices, ascending clock; chains via split_next
  uint32_t last_found = kNil;  // FindItem cache: lookups cluster (origins of a run)
};

struct TxnState {
  const void* origin = nullptr;
  bool local = true;
  std::vector<std::pair<uint32_t, uint32_t>> before;   // client -> clock before the txn
  std::unordered_set<uint32_t> before_clients;         // the clients in `before`
  std::vector<DeleteRange> deletes;                    // clock ranges deleted, with...
  std::vector<uint32_t> delete_clients;                // ...their clients
  std::vector<std::pair<uint32_t, uint32_t>> changed;  // (type, key or kNil), first-seen order
  std::unordered_set<uint64_t> changed_set;            // the same pairs, type << 32 | key
  void AddDelete(uint32_t client, uint32_t clock, uint32_t len) {
    deletes.push_back({clock, len});
    delete_clients.push_back(client);
  }
  void Clear() {
    before.clear();
    before_clients.clear();
    deletes.clear();
    delete_clients.clear();
    changed.clear();
    changed_set.clear();
  }
};

// A position in a list while walking (Yjs ItemTextListPosition).
struct ListPos {
  uint32_t left = kNil, right = kNil;
  uint64_t index = 0;
  nlohmann::json attrs = nlohmann::json::object();
};

class DocImpl {
 public:
  DocImpl(uint32_t client_id, DocOptions opts) : client_id_(client_id), opts_(opts) {}

  uint32_t RootType(std::string_view name, uint8_t type_ref);
  uint32_t KeyIndex(std::string_view key);
  uint32_t NextClock(uint32_t client) const;

  Status ApplyUpdate(std::span<const uint8_t> update, const void* origin);
  std::vector<uint8_t> EncodeStateVector() const;
  Result<std::vector<uint8_t>> EncodeStateAsUpdate(std::span<const uint8_t> sv) const;
  void Transact(const std::function<void(Transaction&)>& fn, const void* origin, bool local);

  // Lists (Text, Array).
  std::string TextString(uint32_t type) const;
  nlohmann::json TextDelta(uint32_t type) const;
  void TextInsert(uint32_t type, uint64_t index, std::string_view utf8, const Attributes* attrs);
  void ListDelete(uint32_t type, uint64_t index, uint64_t length);
  void TextFormat(uint32_t type, uint64_t index, uint64_t length, const Attributes& attrs);
  void ArrayInsert(uint32_t type, uint64_t index, const std::vector<JsonValue>& values);
  void ArrayPush(uint32_t type, const JsonValue& value);
  JsonValue ArrayGet(uint32_t type, uint64_t index) const;
  JsonValue ArrayJson(uint32_t type) const;
  RelativePosition RelPos(uint32_t type, uint64_t index, int32_t assoc) const;
  std::optional<size_t> ResolveRelPos(const RelativePosition& pos) const;
  // Maps.
  void MapSet(uint32_t type, std::string_view key, const JsonValue& value);
  void MapDelete(uint32_t type, std::string_view key);
  std::optional<JsonValue> MapGet(uint32_t type, std::string_view key) const;
  std::vector<std::string> MapKeys(uint32_t type) const;

  DocInfo Info() const;
  bool HasPending() const { return !pending_.empty() || !pending_ds_.empty(); }

  uint32_t client_id_;
  DocOptions opts_;
  std::vector<TypeInfo> types_;
  std::vector<std::pair<int, Doc::UpdateObserver>> update_observers_;
  int next_observer_id_ = 1;

 private:
  uint32_t AllocItem();
  ClientState& Client(uint32_t client);
  const ClientState* FindClient(uint32_t client) const;
  uint32_t FindItem(Id id);  // REQUIRES: id.clock < NextClock(id.client)
  uint32_t FindItemConst(Id id, size_t* run) const;
  uint32_t NextInClockOrder(const ClientState& cs, uint32_t x, size_t* run) const;
  void RebuildRuns(ClientState& cs);
  uint32_t Split(uint32_t idx, uint32_t offset);  // returns the right half
  uint32_t CleanStart(Id id);
  uint32_t CleanEnd(Id id);
  void NoteClock(uint32_t client, uint32_t before);
  void AddStruct(uint32_t idx);
  void Integrate(uint32_t idx);
  // Integrates `s` minus its first `offset` clock units (those are already here).
  void IntegrateWire(const WireStruct& s, uint32_t offset, std::deque<std::string>* scratch);
  void DeleteItem(uint32_t idx);
  void MarkChanged(uint32_t type, uint32_t key);
  bool TryMergeDeleted(uint32_t left, uint32_t right);
  uint32_t InsertLocal(uint32_t type, uint32_t parent_sub, uint32_t left, uint32_t right,
                       uint8_t ref, uint32_t len, uint32_t content, uint32_t aux);
  // Yjs findPosition without markers / with this doc's cursor.
  ListPos FindPosFull(uint32_t type, uint64_t index);
  std::pair<uint32_t, uint32_t> FindPos(uint32_t type, uint64_t index);
  void Forward(ListPos& p) const;
  void InsertFormatAt(uint32_t type, ListPos& p, const std::string& key, const JsonValue& v);
  void MinimizeAttributeChanges(ListPos& p, const JsonValue& attrs);
  JsonValue InsertAttributes(uint32_t type, ListPos& p, const JsonValue& attrs);
  JsonValue FormatValue(const Item& it) const;
  JsonValue ItemValue(const Item& it, uint32_t offset) const;
  void ApplyDeleteRange(uint32_t client, uint32_t clock, uint32_t len, DeleteSet* pending);
  void ApplyDecoded(DecodedUpdate& u);
  std::vector<uint8_t> IntegrateStructs(DecodedUpdate& u, std::map<uint32_t, uint32_t>* missing);
  void FinishTransaction(TxnState& txn);
  // Writes the structs of `cs` from `start` into e (merging adjacent runs like Yjs's
  // mergeWith); returns how many.
  size_t WriteStructs(lib0::Encoder& e, const ClientState& cs, uint32_t start) const;
  void WriteParent(lib0::Encoder& e, const Item& it) const;
  DeleteSet StoreDeleteSet() const;
  std::string_view Str(const Item& it) const { return {text_.data() + it.content, it.aux}; }

  std::vector<Item> items_;
  std::vector<uint32_t> free_items_;
  std::string text_;
  std::vector<nlohmann::json> values_;
  std::vector<std::pair<std::string, std::string>> formats_;
  std::vector<std::string> blobs_;
  std::unordered_map<std::string, uint32_t> roots_;
  std::vector<std::string> keys_;
  std::unordered_map<std::string, uint32_t> key_index_;
  std::vector<ClientState> clients_;
  std::unordered_map<uint32_t, uint32_t> client_slot_;
  // Yjs store.pendingStructs: an update of the structs that wait for others, and the first
  // clock each waits for; and the deletes of clocks not seen yet.
  std::vector<uint8_t> pending_;
  std::map<uint32_t, uint32_t> pending_missing_;
  DeleteSet pending_ds_;
  TxnState* txn_ = nullptr;
  // Transaction states by nesting depth (observers may start one while another finishes),
  // reused so a transaction allocates nothing.
  std::vector<std::unique_ptr<TxnState>> txn_pool_;
  size_t txn_depth_ = 0;
  uint32_t own_slot_ = kNil;
  uint32_t last_slot_ = kNil;  // Client() cache
  TxnState* TakeTxn(const void* origin, bool local);
  ClientState& OwnClient() {
    if (own_slot_ == kNil) {
      Client(client_id_);
      own_slot_ = client_slot_.at(client_id_);
    }
    return clients_[own_slot_];
  }
  friend class ::pocket::crdt::Doc;
};

// The store's small hot helpers are defined here so that the list operations, the
// integration and the decoder (separate files) inline them as they did when all of DocImpl
// was one file: the replay benchmark lost ~1% without it.
inline ClientState& DocImpl::Client(uint32_t client) {
  if (last_slot_ != kNil && clients_[last_slot_].client == client) return clients_[last_slot_];
  auto [it, inserted] = client_slot_.emplace(client, static_cast<uint32_t>(clients_.size()));
  if (inserted) {
    clients_.emplace_back();
    clients_.back().client = client;
  }
  last_slot_ = it->second;
  return clients_[it->second];
}

inline uint32_t DocImpl::AllocItem() {
  if (!free_items_.empty()) {
    const uint32_t i = free_items_.back();
    free_items_.pop_back();
    items_[i] = Item{};
    return i;
  }
  items_.emplace_back();
  return static_cast<uint32_t>(items_.size() - 1);
}

inline void DocImpl::NoteClock(uint32_t client, uint32_t before) {
  // A set beside the list: an update from n clients costs O(n), not O(n^2).
  if (txn_->before_clients.insert(client).second) txn_->before.emplace_back(client, before);
}

inline void DocImpl::AddStruct(uint32_t idx) {
  Item& it = items_[idx];
  ClientState& cs = Client(it.client);
  NoteClock(it.client, cs.next_clock);
  cs.runs.push_back(idx);
  it.flags |= kIndexed;
  cs.next_clock = it.clock + it.len;
}

// Yjs addChangedTypeToTransaction.
inline void DocImpl::MarkChanged(uint32_t type, uint32_t key) {
  if (type == kNil) return;
  // A set beside the ordered list: an update touching n types or keys costs O(n), not O(n^2).
  if (txn_->changed_set.insert(static_cast<uint64_t>(type) << 32 | key).second) {
    txn_->changed.emplace_back(type, key);
  }
}

}  // namespace pocket::crdt::internal
