// Yjs-compatible CRDT documents: Doc with named root types (Text, Map, Array), Yjs's
// YATA integration, and update encoding v1 byte-compatible with Yjs 13.6 (npm `yjs`).
// Wire format and semantics: ../shared/notes/yjs-wire.md and docs/crdt.md.
//
// Who calls it: src/sync (rooms, y-protocols), src/cli/doc.cc, the agent peer.
// Thread safety: a Doc and every handle into it (Text, Map, Array, Transaction) belong to
// one thread; nothing here is synchronised. The free functions at the bottom are
// thread-safe (no shared state).
//
// Indices and lengths of Text are UTF-16 code units, exactly as in Yjs, so an index means
// the same thing to a JavaScript client. Strings cross the API as UTF-8.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/status.h"

namespace pocket::crdt {

// Values stored in Map / Array (lib0 writeAny types). JS `undefined` decodes as a
// discarded value (is_discarded()) and is written back as undefined, so a value passes
// through this document unchanged; the ToJson views drop or null it as JSON.stringify does
// (PlainJson). JS null is null;
// Uint8Array maps to json binary; a bigint to json binary of subtype
// lib0::kBigIntSubtype holding its 8 big-endian two's-complement bytes, so that it is
// written back as a bigint (a JSON integer is a JS number, written as one).
using JsonValue = nlohmann::json;

// `v` as JSON.stringify would write it: an undefined (discarded) object member is dropped,
// an undefined array element or top-level value becomes null.
JsonValue PlainJson(const JsonValue& v);
// Text formatting attributes: a JSON object {name: value}; value null removes the mark.
using Attributes = nlohmann::json;

struct DocOptions {
  // Replace the content of deleted items by ContentDeleted (and items of deleted types by
  // GC structs), like Yjs's default `gc: true`. Off keeps deleted text (for history).
  bool gc = true;
};

// A Yjs ID: (client, clock). Clocks count UTF-16 units of inserted content per client.
struct Id {
  uint32_t client = 0;
  uint32_t clock = 0;
  bool operator==(const Id&) const = default;
};

// Yjs RelativePosition (createRelativePositionFromTypeIndex semantics): an anchor that
// stays with the character it points at while others edit.
struct RelativePosition {
  std::optional<Id> item;       // the character; nullopt = end (assoc >= 0) or start of type
  std::string type_name;        // root type name when the type is a root type
  std::optional<Id> type_item;  // the type's item when the type is nested
  int32_t assoc = 0;            // >= 0: sticks to the right character; < 0: to the left
};
// Yjs encodeRelativePosition / decodeRelativePosition bytes.
std::vector<uint8_t> EncodeRelativePosition(const RelativePosition& pos);
Result<RelativePosition> DecodeRelativePosition(std::span<const uint8_t> bytes);

class Doc;
class Transaction;
namespace internal {
class DocImpl;
}

// What an observer of a type sees after each transaction that changed it.
struct TypeEvent {
  const void* origin = nullptr;   // the origin given to Transact / ApplyUpdate
  bool local = false;             // true for Doc::Transact, false for ApplyUpdate
  std::vector<std::string> keys;  // Map: keys that changed (set or deleted)
};
using TypeObserver = std::function<void(const TypeEvent&)>;

// Handles are cheap to copy and stay valid while their Doc lives.
class Text {
 public:
  std::string ToString() const;  // UTF-8
  size_t Length() const;         // UTF-16 code units
  // Inserts UTF-8 text at UTF-16 `index` (clamped to Length()). With `attrs`, the text
  // carries exactly those marks (Yjs insert(index, text, attrs)); without, it inherits the
  // marks at the position. Invalid UTF-8 becomes U+FFFD.
  void Insert(Transaction& txn, size_t index, std::string_view utf8,
              const Attributes* attrs = nullptr);
  // Deletes `length` UTF-16 units from `index` (clamped to the text).
  void Delete(Transaction& txn, size_t index, size_t length);
  // Sets marks on [index, index+length) (Yjs format()).
  void Format(Transaction& txn, size_t index, size_t length, const Attributes& attrs);
  // Yjs toDelta(): [{"insert": "...", "attributes": {...}}, ...] (embeds as {"insert": value}).
  nlohmann::json ToDelta() const;
  // Yjs createRelativePositionFromTypeIndex(type, index, assoc).
  RelativePosition RelativePositionAt(size_t index, int32_t assoc = 0) const;
  int Observe(TypeObserver fn);
  void Unobserve(int id);

 private:
  friend class internal::DocImpl;
  friend class Doc;
  Text(internal::DocImpl* doc, uint32_t type) : doc_(doc), type_(type) {}
  internal::DocImpl* doc_;
  uint32_t type_;
};

class Map {
 public:
  void Set(Transaction& txn, std::string_view key, const JsonValue& value);
  // nullopt when the key is absent; a discarded value when it holds undefined. A nested Yjs
  // type reads as {"$type": "<kind>"}.
  std::optional<JsonValue> Get(std::string_view key) const;
  bool Has(std::string_view key) const;
  void Delete(Transaction& txn, std::string_view key);
  std::vector<std::string> Keys() const;  // sorted
  size_t Size() const;
  JsonValue ToJson() const;  // object of all live entries, as PlainJson (undefined dropped)
  int Observe(TypeObserver fn);
  void Unobserve(int id);

 private:
  friend class internal::DocImpl;
  friend class Doc;
  Map(internal::DocImpl* doc, uint32_t type) : doc_(doc), type_(type) {}
  internal::DocImpl* doc_;
  uint32_t type_;
};

class Array {
 public:
  // Inserts values before `index` (clamped to Length()).
  void Insert(Transaction& txn, size_t index, const std::vector<JsonValue>& values);
  void Push(Transaction& txn, const JsonValue& value);
  void Delete(Transaction& txn, size_t index, size_t length);
  // REQUIRES: index < Length().
  JsonValue Get(size_t index) const;
  size_t Length() const;
  JsonValue ToJson() const;  // array of all values, as PlainJson (undefined is null)
  int Observe(TypeObserver fn);
  void Unobserve(int id);

 private:
  friend class internal::DocImpl;
  friend class Doc;
  Array(internal::DocImpl* doc, uint32_t type) : doc_(doc), type_(type) {}
  internal::DocImpl* doc_;
  uint32_t type_;
};

// Local edits happen inside Doc::Transact; the Transaction is only valid inside fn.
class Transaction {
 public:
  const void* origin() const { return origin_; }
  bool local() const { return local_; }

 private:
  friend class internal::DocImpl;
  Transaction(internal::DocImpl* doc, const void* origin, bool local)
      : doc_(doc), origin_(origin), local_(local) {}
  [[maybe_unused]] internal::DocImpl* doc_;
  const void* origin_;
  bool local_;
};

// Summary for `pocket doc info`.
struct DocInfo {
  struct Client {
    uint32_t client = 0;
    uint32_t next_clock = 0;
    uint64_t structs = 0;        // structs in memory (runs, after splits)
    uint64_t deleted_units = 0;  // clock units deleted
    uint64_t deleted_ranges = 0;
  };
  std::vector<Client> clients;  // descending client id, like Yjs
  std::vector<std::string> root_types;
  bool has_pending = false;
};

class Doc {  // not thread-safe; one owner thread
 public:
  explicit Doc(uint32_t client_id, DocOptions opts = {});
  ~Doc();
  Doc(Doc&&) noexcept;
  Doc& operator=(Doc&&) noexcept;
  Doc(const Doc&) = delete;
  Doc& operator=(const Doc&) = delete;

  uint32_t client_id() const;
  const DocOptions& options() const;

  // Root types by name (created on first use, like Yjs doc.getText(name)).
  Text GetText(std::string_view name);
  Map GetMap(std::string_view name);
  Array GetArray(std::string_view name);
  std::vector<std::string> RootNames() const;

  // Applies a Yjs v1 update (remote or from disk). Corruption on malformed input, and then
  // the doc is unchanged. Structs whose dependencies are missing stay pending (like Yjs)
  // until a later update supplies them; so do deletes of clocks not yet seen.
  Status ApplyUpdate(std::span<const uint8_t> update, const void* origin = nullptr);
  // v1 state vector: varUint(n) (client, next clock)*, descending client.
  std::vector<uint8_t> EncodeStateVector() const;
  // Everything the holder of `remote_state_vector` lacks (all of it when empty), as a v1
  // update with the full delete set. Corruption when the state vector is malformed.
  Result<std::vector<uint8_t>> EncodeStateAsUpdate(
      std::span<const uint8_t> remote_state_vector = {}) const;

  // Runs fn as one transaction; afterwards observers get the v1 update of exactly that
  // transaction (nothing when it changed nothing).
  void Transact(const std::function<void(Transaction&)>& fn, const void* origin = nullptr);

  // Called after every transaction that changed the doc, local or remote (ApplyUpdate),
  // with the v1 update of that transaction, like Yjs doc.on('update').
  using UpdateObserver =
      std::function<void(std::span<const uint8_t> update_v1, const void* origin)>;
  int ObserveUpdates(UpdateObserver fn);
  void Unobserve(int id);

  bool HasPending() const;
  DocInfo Info() const;

  // Absolute index for a relative position in this doc; nullopt when its item is unknown
  // or its type was deleted.
  std::optional<size_t> ResolveRelativePosition(const RelativePosition& pos) const;

 private:
  std::unique_ptr<internal::DocImpl> impl_;
};

// Merges v1 updates into one v1 update without a Doc (Yjs mergeUpdates): the union of
// their structs (holes become Skip structs) and delete sets.
Result<std::vector<uint8_t>> MergeUpdates(std::span<const std::span<const uint8_t>> updates);
// The state vector a Doc would have after applying only `update` (Yjs
// encodeStateVectorFromUpdate).
Result<std::vector<uint8_t>> EncodeStateVectorFromUpdate(std::span<const uint8_t> update);
// The part of `update` not covered by `state_vector` (Yjs diffUpdate); the delete set is kept.
Result<std::vector<uint8_t>> DiffUpdate(std::span<const uint8_t> update,
                                        std::span<const uint8_t> state_vector);
// A readable dump of a v1 update (like Yjs decodeUpdate): {"structs": [...], "ds": {...}}.
Result<nlohmann::json> DecodeUpdateToJson(std::span<const uint8_t> update);

}  // namespace pocket::crdt
