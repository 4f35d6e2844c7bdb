// Yjs v1 update decode/encode and the Doc-less update functions. References: yjs v13
// src/utils/encoding.js (readClientsStructRefs, writeStructs), UpdateEncoder.js /
// UpdateDecoder.js (V1), DeleteSet.js, updates.js (mergeUpdates, diffUpdate,
// encodeStateVectorFromUpdate), structs/Item.js (readItemContent, write).
#include "crdt/update.h"

#include <algorithm>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>

#include "base/json_limits.h"

namespace pocket::crdt::internal {
namespace {

constexpr uint64_t kMaxClock = 0xffffffffull;

Status Corrupt(const std::string& what) { return Status::Corruption("yjs update: " + what); }

// Yjs reads JSON content (ContentJSON values, embeds, format values) with JSON.parse, for
// which a raw NUL is never valid; nlohmann's lexer stops at one as at the end of input and
// would accept what came before it.
bool HasNul(std::string_view text) { return text.find('\0') != std::string_view::npos; }

// JSON text inside an update (ContentJSON values, embeds, format values) nests at most as
// deep as a lib0 Any value may (lib0.cc): Yjs's JSON.parse takes any depth, but a value
// 100,000 levels deep overflowed the stack here when it was later copied or written out.
constexpr int kMaxContentJsonDepth = 256;

std::optional<nlohmann::json> ParseContentJson(std::string_view text) {
  if (HasNul(text)) return std::nullopt;
  // JSON.parse keeps the last of duplicate keys; so must we, or a document Yjs reads would
  // not decode here.
  auto v =
      ParseUntrustedJson(text, "yjs JSON content", kMaxContentJsonDepth, DuplicateKeys::kKeepLast);
  if (!v.ok()) return std::nullopt;
  return std::move(*v);
}

// Reads the content of an Item with ref `ref` into s; sets s->len.
bool ReadContent(lib0::Decoder& d, WireStruct* s) {
  switch (s->ref) {
    case kRefDeleted:
      s->len = d.VarUint32();
      return d.ok();
    case kRefJson:
    case kRefAny: {
      const uint32_t n = d.VarUint32();
      if (!d.ok() || n > d.Remaining()) return false;
      s->values.reserve(n);
      for (uint32_t i = 0; i < n && d.ok(); ++i) {
        if (s->ref == kRefAny) {
          s->values.push_back(d.Any());
        } else {
          const std::string_view js = d.String();
          if (!d.ok()) return false;
          if (js == "undefined") {  // ContentJSON's undefined, as Yjs writes it
            s->values.emplace_back(nlohmann::json::value_t::discarded);
          } else {
            auto v = ParseContentJson(js);
            if (!v) return false;
            s->values.push_back(std::move(*v));
          }
        }
      }
      s->len = n;
      return d.ok();
    }
    case kRefBinary:
      s->str = d.Buffer();
      s->len = 1;
      return d.ok();
    case kRefString:
      s->str = d.String();
      s->len = lib0::Utf16Length(s->str);
      return d.ok();
    case kRefEmbed:
      s->str = d.String();
      s->len = 1;
      return d.ok() && ParseContentJson(s->str).has_value();
    case kRefFormat:
      s->str = d.String();
      s->str2 = d.String();
      s->len = 1;
      return d.ok() && ParseContentJson(s->str2).has_value();
    case kRefType:
      s->type_ref = d.VarUint32();
      if (!d.ok() || s->type_ref > 6) return false;
      if (s->type_ref == 3 || s->type_ref == 5) s->str = d.String();
      s->len = 1;
      return d.ok();
    case kRefDoc:
      s->str = d.String();
      s->values.push_back(d.Any());
      s->len = 1;
      // Yjs createDocFromOpts reads opts.shouldLoad: null or undefined options throw.
      return d.ok() && !s->values.back().is_null();
    default:
      return false;
  }
}

void WriteId(lib0::Encoder& e, Id id) {
  e.VarUint(id.client);
  e.VarUint(id.clock);
}

}  // namespace

size_t Utf8PosOfUtf16(std::string_view s, uint32_t units, bool* mid_pair) {
  *mid_pair = false;
  size_t i = 0;
  uint32_t u = 0;
  while (i < s.size() && u < units) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      i += 1;
      u += 1;
    } else if (c < 0xe0) {
      i += 2;
      u += 1;
    } else if (c < 0xf0) {
      i += 3;
      u += 1;
    } else {
      if (u + 1 == units) {
        *mid_pair = true;
        return i;
      }
      i += 4;
      u += 2;
    }
  }
  return std::min(i, s.size());
}

void DeleteSet::Normalize() {
  for (auto& [client, ranges] : clients) {
    std::sort(ranges.begin(), ranges.end(),
              [](const DeleteRange& a, const DeleteRange& b) { return a.clock < b.clock; });
    size_t w = 0;
    for (size_t i = 0; i < ranges.size(); ++i) {
      if (w > 0 && uint64_t{ranges[w - 1].clock} + ranges[w - 1].len >= ranges[i].clock) {
        const uint64_t end = std::max<uint64_t>(uint64_t{ranges[w - 1].clock} + ranges[w - 1].len,
                                                uint64_t{ranges[i].clock} + ranges[i].len);
        ranges[w - 1].len = static_cast<uint32_t>(end - ranges[w - 1].clock);
      } else {
        ranges[w++] = ranges[i];
      }
    }
    ranges.resize(w);
  }
}

Status ReadDeleteSet(lib0::Decoder& d, DeleteSet* ds) {
  const uint64_t num_clients = d.VarUint();
  if (!d.ok() || num_clients > d.Remaining()) return Corrupt("delete set: bad client count");
  for (uint64_t i = 0; i < num_clients; ++i) {
    // Yjs reads client ids, clocks and lengths here as JavaScript numbers (lib0 readVarUint,
    // up to 2^53-1) and keeps a range it cannot apply yet in its pending delete set, however
    // far past its structs it lies. Pocket's ids and clocks are 32-bit and no struct it
    // accepts reaches clock 2^32-1 (DecodeUpdateV1 below), so the part of a range at or past
    // that point, and every range of a client id past 2^32, can never delete anything here:
    // it is accepted like Yjs does and dropped (the range cut to end at 2^32-1). docs/crdt.md.
    const uint64_t client = d.VarUint();
    const uint64_t num_ranges = d.VarUint();
    if (!d.ok() || num_ranges > d.Remaining()) return Corrupt("delete set: bad range count");
    for (uint64_t r = 0; r < num_ranges; ++r) {
      const uint64_t clock = d.VarUint();
      const uint64_t len = d.VarUint();
      if (!d.ok()) return Corrupt("delete set: truncated range");
      // Yjs never writes one, and throws applying one it cannot apply yet (writeDsLen(0)).
      if (len == 0) {
        return Corrupt("delete set: zero-length range at " + std::to_string(client) + ":" +
                       std::to_string(clock));
      }
      if (client > 0xffffffffu || clock >= kMaxClock) continue;
      const uint64_t end = std::min(clock + len, kMaxClock);  // both below 2^53: no overflow
      ds->Add(static_cast<uint32_t>(client), static_cast<uint32_t>(clock),
              static_cast<uint32_t>(end - clock));
    }
  }
  ds->Normalize();
  return Status::Ok();
}

Status DecodeUpdateV1(std::span<const uint8_t> update, DecodedUpdate* out) {
  lib0::Decoder d(update);
  const uint64_t num_clients = d.VarUint();
  if (!d.ok()) return Corrupt("truncated client count");
  if (num_clients > d.Remaining()) return Corrupt("client count " + std::to_string(num_clients) + " exceeds input");
  out->clients.reserve(num_clients);
  std::unordered_set<uint32_t> seen;  // a set, so n clients cost O(n) to check
  for (uint64_t ci = 0; ci < num_clients; ++ci) {
    const uint64_t num_structs = d.VarUint();
    const uint32_t client = d.VarUint32();
    uint64_t clock = d.VarUint32();
    if (!d.ok()) return Corrupt("truncated client header");
    if (num_structs > d.Remaining()) return Corrupt("struct count exceeds input");
    if (!seen.insert(client).second) {
      return Corrupt("client " + std::to_string(client) + " appears twice");
    }
    ClientStructs cs;
    cs.client = client;
    cs.structs.reserve(num_structs);
    for (uint64_t si = 0; si < num_structs; ++si) {
      WireStruct s;
      const uint8_t info = d.Byte();
      s.ref = info & 0x1f;
      s.client = client;
      if (clock > kMaxClock) return Corrupt("clock past 2^32");
      s.clock = static_cast<uint32_t>(clock);
      auto where = [&] { return "client " + std::to_string(client) + " clock " + std::to_string(clock); };
      if (s.ref == kRefGc || s.ref == kRefSkip) {
        s.len = d.VarUint32();
      } else {
        s.has_origin = info & 0x80;
        s.has_right_origin = info & 0x40;
        s.parent_sub_bit = info & 0x20;
        if (s.has_origin) s.origin = {d.VarUint32(), d.VarUint32()};
        if (s.has_right_origin) s.right_origin = {d.VarUint32(), d.VarUint32()};
        if (!s.has_origin && !s.has_right_origin) {
          if (d.VarUint() == 1) {
            s.parent_kind = 1;
            s.parent_name = d.String();
          } else {
            s.parent_kind = 2;
            s.parent_id = {d.VarUint32(), d.VarUint32()};
          }
          if (s.parent_sub_bit) {
            s.parent_sub = d.String();
          }
        }
        if (!d.ok()) return Corrupt(where() + ": truncated struct header");
        if (!ReadContent(d, &s)) {
          return Corrupt(where() + ": bad content (ref " + std::to_string(s.ref) + ")");
        }
        auto self_ref = [&](Id id) { return id.client == client && id.clock >= s.clock; };
        if ((s.has_origin && self_ref(s.origin)) ||
            (s.has_right_origin && self_ref(s.right_origin)) ||
            (s.parent_kind == 2 && self_ref(s.parent_id))) {
          return Corrupt(where() + ": references its own client at or after itself");
        }
      }
      if (!d.ok()) return Corrupt(where() + ": truncated");
      if (s.len == 0) return Corrupt(where() + ": zero-length struct");
      if (clock + s.len > kMaxClock) return Corrupt(where() + ": length past 2^32");
      clock += s.len;
      cs.structs.push_back(std::move(s));
    }
    out->clients.push_back(std::move(cs));
  }
  return ReadDeleteSet(d, &out->ds);
}

WireStruct SliceStruct(const WireStruct& s, uint32_t offset, std::deque<std::string>* owned) {
  WireStruct r;
  r.ref = s.ref;
  r.client = s.client;
  r.clock = s.clock + offset;
  r.len = s.len - offset;
  if (s.ref == kRefGc || s.ref == kRefSkip) return r;
  r.has_origin = true;
  r.origin = {s.client, s.clock + offset - 1};
  r.has_right_origin = s.has_right_origin;
  r.right_origin = s.right_origin;
  r.parent_sub_bit = s.parent_sub_bit;
  r.type_ref = s.type_ref;
  switch (s.ref) {
    case kRefString: {
      bool mid = false;
      const size_t pos = Utf8PosOfUtf16(s.str, offset, &mid);
      if (mid) {
        owned->push_back("\xEF\xBF\xBD" + std::string(s.str.substr(pos + 4)));
        r.str = owned->back();
      } else {
        r.str = s.str.substr(pos);
      }
      break;
    }
    case kRefJson:
    case kRefAny:
      r.values.assign(s.values.begin() + offset, s.values.end());
      break;
    default:
      r.str = s.str;
      r.str2 = s.str2;
      r.values = s.values;
  }
  return r;
}

void WriteStruct(lib0::Encoder& e, const WireStruct& s) {
  if (s.ref == kRefGc || s.ref == kRefSkip) {
    e.Byte(s.ref);
    e.VarUint(s.len);
    return;
  }
  const bool sub = s.parent_sub_bit;
  e.Byte(static_cast<uint8_t>(s.ref | (s.has_origin ? 0x80 : 0) |
                              (s.has_right_origin ? 0x40 : 0) | (sub ? 0x20 : 0)));
  if (s.has_origin) WriteId(e, s.origin);
  if (s.has_right_origin) WriteId(e, s.right_origin);
  if (!s.has_origin && !s.has_right_origin) {
    if (s.parent_kind == 1) {
      e.VarUint(1);
      e.String(s.parent_name);
    } else {
      e.VarUint(0);
      WriteId(e, s.parent_id);
    }
    if (sub) e.String(s.parent_sub);
  }
  switch (s.ref) {
    case kRefDeleted:
      e.VarUint(s.len);
      break;
    case kRefJson:
      e.VarUint(s.values.size());
      for (const auto& v : s.values) e.String(v.is_discarded() ? "undefined" : v.dump());
      break;
    case kRefAny:
      e.VarUint(s.values.size());
      for (const auto& v : s.values) e.Any(v);
      break;
    case kRefBinary:
    case kRefString:
    case kRefEmbed:
      e.String(s.str);
      break;
    case kRefFormat:
      e.String(s.str);
      e.String(s.str2);
      break;
    case kRefType:
      e.VarUint(s.type_ref);
      if (s.type_ref == 3 || s.type_ref == 5) e.String(s.str);
      break;
    case kRefDoc:
      e.String(s.str);
      e.Any(s.values.empty() ? nlohmann::json::object() : s.values[0]);
      break;
    default:
      break;
  }
}

void WriteDeleteSet(lib0::Encoder& e, const DeleteSet& ds) {
  e.VarUint(ds.clients.size());
  for (const auto& [client, ranges] : ds.clients) {
    e.VarUint(client);
    e.VarUint(ranges.size());
    for (const auto& r : ranges) {
      e.VarUint(r.clock);
      e.VarUint(r.len);
    }
  }
}

std::vector<uint8_t> EncodeUpdateV1(DecodedUpdate& u) {
  std::sort(u.clients.begin(), u.clients.end(),
            [](const ClientStructs& a, const ClientStructs& b) { return a.client > b.client; });
  lib0::Encoder e;
  size_t n = 0;
  for (const auto& c : u.clients) n += !c.structs.empty();
  e.VarUint(n);
  for (const auto& c : u.clients) {
    if (c.structs.empty()) continue;
    e.VarUint(c.structs.size());
    e.VarUint(c.client);
    e.VarUint(c.structs[0].clock);
    for (const auto& s : c.structs) WriteStruct(e, s);
  }
  WriteDeleteSet(e, u.ds);
  return e.Take();
}

Result<std::map<uint32_t, uint32_t>> DecodeStateVectorV1(std::span<const uint8_t> sv) {
  std::map<uint32_t, uint32_t> out;
  if (sv.empty()) return out;
  lib0::Decoder d(sv);
  const uint64_t n = d.VarUint();
  if (!d.ok() || n > d.Remaining()) return Status::Corruption("yjs state vector: bad count");
  for (uint64_t i = 0; i < n; ++i) {
    const uint32_t client = d.VarUint32();
    const uint32_t clock = d.VarUint32();
    if (!d.ok()) return Status::Corruption("yjs state vector: truncated entry");
    out[client] = clock;
  }
  return out;
}

std::vector<uint8_t> EncodeStateVectorV1(const std::map<uint32_t, uint32_t>& sv) {
  lib0::Encoder e;
  e.VarUint(sv.size());
  for (auto it = sv.rbegin(); it != sv.rend(); ++it) {
    e.VarUint(it->first);
    e.VarUint(it->second);
  }
  return e.Take();
}

}  // namespace pocket::crdt::internal

namespace pocket::crdt {
using namespace internal;  // NOLINT: .cc file

// Yjs mergeUpdatesV2 (utils/updates.js), step for step, so the bytes match: each update is
// a stream of its structs (Skips dropped); repeatedly take the stream whose next struct
// has the highest client and lowest clock (earlier update first on ties), skip what is
// already written, slice overlaps, fill gaps with Skips, merge adjacent GCs and Skips.
Result<std::vector<uint8_t>> MergeUpdates(std::span<const std::span<const uint8_t>> updates) {
  std::vector<DecodedUpdate> decoded(updates.size());
  for (size_t i = 0; i < updates.size(); ++i) {
    Status st = DecodeUpdateV1(updates[i], &decoded[i]);
    if (!st.ok()) return st.WithContext("update " + std::to_string(i));
  }
  if (updates.size() == 1) return std::vector<uint8_t>(updates[0].begin(), updates[0].end());
  struct Stream {
    std::vector<const WireStruct*> structs;
    size_t next = 0;
    const WireStruct* curr() const { return next < structs.size() ? structs[next] : nullptr; }
  };
  std::vector<Stream> all(decoded.size());
  for (size_t i = 0; i < decoded.size(); ++i) {
    for (const auto& c : decoded[i].clients) {
      for (const auto& st : c.structs) {
        if (st.ref != kRefSkip) all[i].structs.push_back(&st);
      }
    }
  }
  std::deque<std::string> owned;
  lib0::Encoder body;           // the client blocks
  size_t blocks = 0;
  lib0::Encoder block;          // the block being written
  size_t written = 0;
  uint32_t block_client = 0;
  auto flush = [&] {
    if (written == 0) return;
    body.VarUint(written);
    body.Raw(block.buf().data(), block.size());
    block = lib0::Encoder();
    written = 0;
    ++blocks;
  };
  auto write = [&](const WireStruct& st) {
    if (written > 0 && block_client != st.client) flush();
    if (written == 0) {
      block_client = st.client;
      block.VarUint(st.client);
      block.VarUint(st.clock);
    }
    WriteStruct(block, st);
    ++written;
  };
  auto end_of = [](const WireStruct& st) { return uint64_t{st.clock} + st.len; };
  std::optional<WireStruct> cw;  // Yjs currWrite
  std::vector<Stream*> order;
  while (true) {
    order.clear();
    for (auto& st : all) {
      if (st.curr()) order.push_back(&st);
    }
    if (order.empty()) break;
    // Stable, like Array.prototype.sort: earlier updates first on ties.
    std::stable_sort(order.begin(), order.end(), [](const Stream* a, const Stream* b) {
      const WireStruct& x = *a->curr();
      const WireStruct& y = *b->curr();
      if (x.client != y.client) return x.client > y.client;
      return x.clock < y.clock;
    });
    Stream& dec = *order[0];
    const uint32_t first_client = dec.curr()->client;
    if (cw) {
      const WireStruct* curr = dec.curr();
      bool iterated = false;
      while (curr && end_of(*curr) <= end_of(*cw) && curr->client >= cw->client) {
        ++dec.next;
        curr = dec.curr();
        iterated = true;
      }
      if (!curr || curr->client != first_client || (iterated && curr->clock > end_of(*cw))) continue;
      if (first_client != cw->client) {
        write(*cw);
        cw = *curr;
        ++dec.next;
      } else if (end_of(*cw) < curr->clock) {
        if (cw->ref == kRefSkip) {
          cw->len = static_cast<uint32_t>(end_of(*curr) - cw->clock);
        } else {
          write(*cw);
          WireStruct skip;
          skip.ref = kRefSkip;
          skip.client = first_client;
          skip.clock = static_cast<uint32_t>(end_of(*cw));
          skip.len = static_cast<uint32_t>(curr->clock - end_of(*cw));
          cw = std::move(skip);
        }
      } else {
        WireStruct next = *curr;
        const uint64_t diff = end_of(*cw) - curr->clock;
        if (diff > 0) {
          if (cw->ref == kRefSkip) {
            cw->len -= static_cast<uint32_t>(diff);
          } else {
            next = SliceStruct(*curr, static_cast<uint32_t>(diff), &owned);
          }
        }
        const bool merges = (cw->ref == kRefGc || cw->ref == kRefSkip) && cw->ref == next.ref;
        if (merges) {
          cw->len += next.len;
        } else {
          write(*cw);
          cw = std::move(next);
          ++dec.next;
        }
      }
    } else {
      cw = *dec.curr();
      ++dec.next;
    }
    for (const WireStruct* n = dec.curr(); n && n->client == first_client &&
                                           uint64_t{n->clock} == end_of(*cw) && n->ref != kRefSkip;
         n = dec.curr()) {
      write(*cw);
      cw = *n;
      ++dec.next;
    }
  }
  if (cw) write(*cw);
  flush();
  DeleteSet ds;
  for (auto& u : decoded) {
    for (auto& [client, ranges] : u.ds.clients) {
      for (auto r : ranges) ds.Add(client, r.clock, r.len);
    }
  }
  ds.Normalize();
  lib0::Encoder e;
  e.VarUint(blocks);
  e.Raw(body.buf().data(), body.size());
  WriteDeleteSet(e, ds);
  return e.Take();
}

Result<std::vector<uint8_t>> EncodeStateVectorFromUpdate(std::span<const uint8_t> update) {
  DecodedUpdate u;
  PK_RETURN_IF_ERROR(DecodeUpdateV1(update, &u));
  std::map<uint32_t, uint32_t> sv;
  for (const auto& c : u.clients) {
    if (c.structs.empty() || c.structs[0].clock != 0) continue;
    uint32_t clock = 0;
    for (const auto& s : c.structs) {
      if (s.ref == kRefSkip) break;
      clock = s.clock + s.len;
    }
    if (clock > 0) sv[c.client] = clock;
  }
  return EncodeStateVectorV1(sv);
}

Result<std::vector<uint8_t>> DiffUpdate(std::span<const uint8_t> update,
                                        std::span<const uint8_t> state_vector) {
  DecodedUpdate u;
  PK_RETURN_IF_ERROR(DecodeUpdateV1(update, &u));
  PK_ASSIGN_OR_RETURN(auto sv, DecodeStateVectorV1(state_vector));
  for (auto& c : u.clients) {
    auto it = sv.find(c.client);
    const uint32_t have = it == sv.end() ? 0 : it->second;
    std::vector<WireStruct> kept;
    for (auto& s : c.structs) {
      if (uint64_t{s.clock} + s.len <= have) continue;
      if (s.clock < have) {
        kept.push_back(SliceStruct(s, have - s.clock, &u.owned));
      } else {
        kept.push_back(std::move(s));
      }
    }
    while (!kept.empty() && kept.front().ref == kRefSkip) kept.erase(kept.begin());
    c.structs = std::move(kept);
  }
  return EncodeUpdateV1(u);
}

Result<nlohmann::json> DecodeUpdateToJson(std::span<const uint8_t> update) {
  DecodedUpdate u;
  PK_RETURN_IF_ERROR(DecodeUpdateV1(update, &u));
  nlohmann::json structs = nlohmann::json::array();
  auto id = [](Id i) { return nlohmann::json{{"client", i.client}, {"clock", i.clock}}; };
  for (const auto& c : u.clients) {
    for (const auto& s : c.structs) {
      nlohmann::json j = {{"id", id({s.client, s.clock})}, {"length", s.len}, {"ref", s.ref}};
      if (s.has_origin) j["origin"] = id(s.origin);
      if (s.has_right_origin) j["rightOrigin"] = id(s.right_origin);
      if (s.parent_kind == 1) j["parent"] = std::string(s.parent_name);
      if (s.parent_kind == 2) j["parent"] = id(s.parent_id);
      if (!s.parent_sub.empty()) j["parentSub"] = std::string(s.parent_sub);
      if (s.ref == kRefString) j["str"] = std::string(s.str);
      if (s.ref == kRefAny || s.ref == kRefJson) j["values"] = PlainJson(s.values);
      if (s.ref == kRefFormat) j["format"] = {std::string(s.str), std::string(s.str2)};
      if (s.ref == kRefType) j["typeRef"] = s.type_ref;
      structs.push_back(std::move(j));
    }
  }
  nlohmann::json ds = nlohmann::json::object();
  for (const auto& [client, ranges] : u.ds.clients) {
    nlohmann::json rs = nlohmann::json::array();
    for (auto r : ranges) rs.push_back({r.clock, r.len});
    ds[std::to_string(client)] = rs;
  }
  return nlohmann::json{{"structs", structs}, {"ds", ds}};
}

}  // namespace pocket::crdt
