// Yjs update encoding v1 as plain data: decode into per-client struct lists + delete set,
// encode back, slice a struct at an offset, state vectors. Used by the Doc (doc.cc) and by
// the Doc-less functions (MergeUpdates, DiffUpdate, ...). Grammar: docs/crdt.md and
// ../shared/notes/yjs-wire.md §4.3. Internal to src/crdt. Thread safety: values.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/status.h"
#include "crdt/doc.h"
#include "crdt/lib0.h"

namespace pocket::crdt::internal {

// Struct refs (the low 5 bits of the info byte).
enum Ref : uint8_t {
  kRefGc = 0,
  kRefDeleted = 1,
  kRefJson = 2,
  kRefBinary = 3,
  kRefString = 4,
  kRefEmbed = 5,
  kRefFormat = 6,
  kRefType = 7,
  kRefAny = 8,
  kRefDoc = 9,
  kRefSkip = 10,
};

inline bool RefCountable(uint8_t ref) {
  return ref != kRefGc && ref != kRefDeleted && ref != kRefFormat && ref != kRefSkip;
}

// One struct as it travels. String views point into the input update or into the owning
// DecodedUpdate's `owned` storage.
struct WireStruct {
  uint8_t ref = kRefGc;
  bool has_origin = false;
  bool has_right_origin = false;
  bool parent_sub_bit = false;  // info & 0x20
  uint8_t parent_kind = 0;      // 0: taken from origin, 1: root name, 2: parent item id
  uint32_t type_ref = 0;
  uint32_t client = 0;
  uint32_t clock = 0;
  uint32_t len = 0;  // clock length
  Id origin, right_origin, parent_id;
  std::string_view parent_name;
  std::string_view parent_sub;  // only when parent_kind != 0 and parent_sub_bit
  // String: text; Binary: bytes; Embed: JSON; Format: key; Type: node/hook name; Doc: guid.
  std::string_view str;
  std::string_view str2;               // Format: value JSON
  std::vector<nlohmann::json> values;  // Any / JSON items; Doc: {opts}
};

struct DeleteRange {
  uint32_t clock;
  uint32_t len;
};
// client -> ranges; sorted + merged by Normalize().
struct DeleteSet {
  std::map<uint32_t, std::vector<DeleteRange>, std::greater<uint32_t>> clients;
  void Add(uint32_t client, uint32_t clock, uint32_t len) {
    if (len > 0) clients[client].push_back({clock, len});
  }
  void Normalize();
  bool empty() const { return clients.empty(); }
};

struct ClientStructs {
  uint32_t client = 0;
  std::vector<WireStruct> structs;  // ascending, contiguous clocks unless Skip-separated
};

struct DecodedUpdate {
  std::vector<ClientStructs> clients;
  DeleteSet ds;
  std::deque<std::string> owned;  // backing for string views not in the input
};

// Parses a v1 update. Corruption naming the offending field on malformed input: truncated
// data, lengths past the end, unknown refs, clocks past 2^32, zero-length structs, a struct
// that references its own client at or after its own clock, duplicate client blocks.
// Skip structs are kept. Views in *out point into `update` (keep it alive).
Status DecodeUpdateV1(std::span<const uint8_t> update, DecodedUpdate* out);

// Drops the first `offset` clock units of `s` (Yjs Item.write(encoder, offset) /
// ContentString.splice: a split surrogate pair becomes U+FFFD). REQUIRES 0 < offset < s.len.
WireStruct SliceStruct(const WireStruct& s, uint32_t offset, std::deque<std::string>* owned);

// Writes one struct (no offset) into `e`.
void WriteStruct(lib0::Encoder& e, const WireStruct& s);
void WriteDeleteSet(lib0::Encoder& e, const DeleteSet& ds);
// Encodes clients (sorted descending here) and ds as a v1 update.
std::vector<uint8_t> EncodeUpdateV1(DecodedUpdate& u);

Status ReadDeleteSet(lib0::Decoder& d, DeleteSet* ds);
Result<std::map<uint32_t, uint32_t>> DecodeStateVectorV1(std::span<const uint8_t> sv);
std::vector<uint8_t> EncodeStateVectorV1(const std::map<uint32_t, uint32_t>& sv);

// Byte position of UTF-16 offset `units` in valid UTF-8 `s`; *mid_pair set when the offset
// falls between the two surrogates of one 4-byte character (position is then its start).
size_t Utf8PosOfUtf16(std::string_view s, uint32_t units, bool* mid_pair);

}  // namespace pocket::crdt::internal
