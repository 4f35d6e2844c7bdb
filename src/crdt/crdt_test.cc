// Unit tests of the CRDT layer. Cross-language checks against real Yjs live in
// tests/crdt/ (node); the bytes here come from Yjs too (testdata/crdt, see its README).
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "base/file.h"
#include "crdt/doc.h"
#include "crdt/lib0.h"
#include "crdt/trace.h"
#include "crdt/update.h"

namespace pocket::crdt {
namespace {

std::vector<uint8_t> ReadFixture(const std::string& name) {
  auto s = ReadFile(std::string(POCKET_SOURCE_DIR) + "/testdata/crdt/" + name);
  EXPECT_TRUE(s.ok()) << name;
  return s.ok() ? std::vector<uint8_t>(s->begin(), s->end()) : std::vector<uint8_t>{};
}

std::vector<uint8_t> Update(Doc& doc, std::span<const uint8_t> sv = {}) {
  auto r = doc.EncodeStateAsUpdate(sv);
  EXPECT_TRUE(r.ok());
  return r.ok() ? *r : std::vector<uint8_t>{};
}

TEST(Lib0Test, VarUintAndVarIntRoundTrip) {
  for (uint64_t v : {0ull, 1ull, 127ull, 128ull, 300ull, 0xffffffffull, (1ull << 53) - 1}) {
    lib0::Encoder e;
    e.VarUint(v);
    lib0::Decoder d(e.buf());
    EXPECT_EQ(d.VarUint(), v);
    EXPECT_TRUE(d.ok() && d.AtEnd());
  }
  for (int64_t v : {0ll, 1ll, -1ll, 63ll, 64ll, -64ll, 2147483647ll, -2147483647ll}) {
    lib0::Encoder e;
    e.VarInt(v);
    lib0::Decoder d(e.buf());
    EXPECT_EQ(d.VarInt(), v);
    EXPECT_TRUE(d.ok() && d.AtEnd());
  }
}

TEST(Lib0Test, RejectsOverlongVarUint) {
  std::vector<uint8_t> b(11, 0xff);
  lib0::Decoder d(b);
  d.VarUint();
  EXPECT_FALSE(d.ok());
}

// lib0 writeAny of BigInt(-5) and 2n ** 62n (type 122, int64 big-endian): read and written
// back byte for byte, whatever the value's size (a small bigint must not become type 125).
TEST(Lib0Test, BigIntKeepsItsType) {
  const std::vector<uint8_t> wire = {117, 2,  // array of 2
                                     122, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFB,
                                     122, 0x40, 0, 0, 0, 0, 0, 0, 0};
  lib0::Decoder d(wire);
  const nlohmann::json v = d.Any();
  ASSERT_TRUE(d.ok());
  ASSERT_TRUE(v[0].is_binary());
  EXPECT_EQ(v[0].get_binary().subtype(), lib0::kBigIntSubtype);
  lib0::Encoder e;
  e.Any(v);
  EXPECT_EQ(e.buf(), wire);
}

// Numbers that lib0 reads loosely, and what real lib0 (13.6-era, node) writes back after
// readAny: a varInt whose last byte carries it past 2^53 (accepted, inexact, re-encoded as
// float32), -0 (kept as a signed varInt), and NaNs (float64 with the payload the float32 ->
// float64 conversion gives). Made with lib0's readAny + writeAny in node.
TEST(Lib0Test, LooseNumbersRoundTripAsLib0Does) {
  const std::vector<std::pair<std::vector<uint8_t>, std::vector<uint8_t>>> cases = {
      {{125, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x24}, {124, 0xda, 0x14, 0x00, 0x00}},
      {{125, 0x40}, {125, 0x40}},
      {{124, 0x7f, 0xc0, 0x00, 0x01}, {123, 0x7f, 0xf8, 0x00, 0x00, 0x20, 0x00, 0x00, 0x00}},
      {{124, 0xff, 0x80, 0x00, 0x01}, {123, 0xff, 0xf8, 0x00, 0x00, 0x20, 0x00, 0x00, 0x00}},
      {{123, 0x7f, 0xf0, 0, 0, 0, 0, 0, 1}, {123, 0x7f, 0xf0, 0, 0, 0, 0, 0, 1}},
  };
  for (const auto& [in, want] : cases) {
    lib0::Decoder d(in);
    const nlohmann::json v = d.Any();
    ASSERT_TRUE(d.ok() && d.AtEnd()) << static_cast<int>(in[0]);
    lib0::Encoder e;
    e.Any(v);
    EXPECT_EQ(e.buf(), want) << static_cast<int>(in[0]) << " " << static_cast<int>(in[1]);
  }
  // Past 2^53 before the last byte: lib0 throws, and so do we.
  const std::vector<uint8_t> too_big = {125, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
  lib0::Decoder d(too_big);
  d.Any();
  EXPECT_FALSE(d.ok());
}

TEST(Lib0Test, AnyMatchesLib0Encoding) {
  // lib0 writeAny: 125 = varInt, 124 = float32, 123 = float64, 119 = string.
  lib0::Encoder e;
  e.Any(nlohmann::json::array({42, 1.5, 0.1, "x", nullptr, true}));
  const std::vector<uint8_t> want = {117, 6,   125, 42,  124, 0x3f, 0xc0, 0,    0,    123, 0x3f,
                                     0xb9, 0x99, 0x99, 0x99, 0x99, 0x99, 0x9a, 119, 1,   'x', 126,
                                     120};
  EXPECT_EQ(e.buf(), want);
  lib0::Decoder d(e.buf());
  EXPECT_EQ(d.Any(), nlohmann::json::array({42, 1.5, 0.1, "x", nullptr, true}));
}

TEST(Lib0Test, SanitizeUtf8ReplacesLoneSurrogatesAndBadBytes) {
  std::string out;
  EXPECT_TRUE(lib0::SanitizeUtf8("h\xC3\xA9 \xF0\x9F\x98\x80", &out));
  EXPECT_FALSE(lib0::SanitizeUtf8("a\xED\xA0\x80z", &out));  // encoded lone surrogate
  EXPECT_EQ(out, "a\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBDz");
}

// One item under root type "a" whose content is `ref` (2 ContentJSON, 5 embed, 6 format)
// carrying `json`, as Yjs's writeStructs lays it out.
std::vector<uint8_t> UpdateWithJsonContent(uint8_t ref, const std::string& json) {
  lib0::Encoder e;
  e.VarUint(1);  // one client
  e.VarUint(1);  // one struct
  e.VarUint(7);  // client
  e.VarUint(0);  // clock
  e.Byte(ref);   // no origins, no parentSub
  e.VarUint(1);  // parent is a root type, by name
  e.String(ref == 2 ? "a" : "t");
  if (ref == 2) {
    e.VarUint(1);
    e.String(json);
  } else if (ref == 5) {
    e.String(json);
  } else {
    e.String("bold");
    e.String(json);
  }
  e.VarUint(0);  // empty delete set
  return e.Take();
}

TEST(DocTest, JsonContentNestingIsBounded) {
  for (uint8_t ref : {2, 5, 6}) {
    for (int depth : {1, 200, 256}) {
      Doc doc(1);
      const std::string json = std::string(depth, '[') + std::string(depth, ']');
      EXPECT_TRUE(doc.ApplyUpdate(UpdateWithJsonContent(ref, json)).ok())
          << "ref " << int{ref} << " depth " << depth;
    }
    for (int depth : {257, 100000}) {  // 100,000 levels overflowed the stack
      Doc doc(1);
      const std::string json = std::string(depth, '[') + std::string(depth, ']');
      const Status s = doc.ApplyUpdate(UpdateWithJsonContent(ref, json));
      EXPECT_EQ(s.code(), StatusCode::kCorruption) << "ref " << int{ref} << " depth " << depth;
    }
  }
}

TEST(DocTest, DecodesWireNoteExample) {
  Doc doc(99);
  ASSERT_TRUE(doc.ApplyUpdate(ReadFixture("hello.bin")).ok());
  EXPECT_EQ(doc.GetText("content").ToString(), "Hello, world  ok");
  EXPECT_FALSE(doc.HasPending());
}

TEST(DocTest, LocalEditsEncodeExactlyLikeYjs) {
  Doc doc(1);
  Text t = doc.GetText("content");
  doc.Transact([&](Transaction& x) { t.Insert(x, 0, "hello world"); });
  doc.Transact([&](Transaction& x) { t.Insert(x, 5, ","); });
  doc.Transact([&](Transaction& x) {
    t.Delete(x, 0, 1);
    t.Insert(x, 0, "H");
  });
  doc.Transact([&](Transaction& x) { t.Insert(x, t.Length(), " \xF0\x9F\x98\x80 ok"); });
  EXPECT_EQ(t.Length(), 18u);  // the emoji is 2 UTF-16 units
  doc.Transact([&](Transaction& x) { t.Delete(x, 13, 2); });
  EXPECT_EQ(Update(doc), ReadFixture("hello.bin"));
}

TEST(DocTest, UpdatesOutOfOrderStayPendingThenConverge) {
  std::vector<std::vector<uint8_t>> ups;
  for (int i = 0; i < 5; ++i) ups.push_back(ReadFixture("hello." + std::to_string(i) + ".bin"));
  Doc doc(5);
  for (int i : {4, 3, 2, 0}) ASSERT_TRUE(doc.ApplyUpdate(ups[i]).ok());
  EXPECT_TRUE(doc.HasPending());
  ASSERT_TRUE(doc.ApplyUpdate(ups[1]).ok());
  EXPECT_FALSE(doc.HasPending());
  EXPECT_EQ(doc.GetText("content").ToString(), "Hello, world  ok");
}

// A remote update that writes structs under this doc's own client id (found by
// update_fuzz). Expected values from real Yjs: testdata/crdt/make_fixtures.mjs, fixture 4.
TEST(DocTest, RemoteUseOfOwnClientIdMatchesYjs) {
  const auto expect = nlohmann::json::parse(ReadFixture("collision.json"));
  Doc doc(7);
  Text t = doc.GetText("content");
  doc.Transact([&](Transaction& x) { t.Insert(x, 0, "seed text \xF0\x9F\x98\x80"); });
  doc.Transact([&](Transaction& x) { t.Delete(x, 2, 3); });
  ASSERT_TRUE(doc.ApplyUpdate(ReadFixture("collision-input.bin")).ok());
  EXPECT_EQ(t.ToString(), expect["text"].get<std::string>());
  EXPECT_EQ(t.ToDelta(), expect["delta"]);
  EXPECT_EQ(doc.GetMap("m").ToJson(), expect["map"]);
  EXPECT_EQ(doc.GetArray("a").ToJson(), expect["array"]);
  EXPECT_TRUE(doc.HasPending());
  // The state update carries the pending structs and deletes too, as Yjs's does. The
  // structs match Yjs's exactly. The delete sets differ in one place, where Yjs is wrong:
  // the input deletes client 11's [10,19) and [13,15) (unsorted, overlapping); Yjs keeps
  // both as its pending delete set and encodes them unsorted through its v2 delta encoder,
  // so [13,15) comes out as [141,143). We send the normalized [10,19).
  const auto state = Update(doc);
  auto ours = DecodeUpdateToJson(state);
  auto yjs = DecodeUpdateToJson(ReadFixture("collision.bin"));
  ASSERT_TRUE(ours.ok() && yjs.ok());
  EXPECT_EQ((*ours)["structs"], (*yjs)["structs"]);
  EXPECT_EQ((*yjs)["ds"]["11"], nlohmann::json::parse("[[10,9],[141,2]]"));
  (*yjs)["ds"]["11"] = nlohmann::json::parse("[[10,9]]");
  EXPECT_EQ((*ours)["ds"], (*yjs)["ds"]);
  // Yjs takes a new client id, so later local edits do not collide.
  ASSERT_TRUE(expect["clientIdChanged"].get<bool>());
  EXPECT_NE(doc.client_id(), 7u);
  doc.Transact([&](Transaction& x) { t.Insert(x, 0, "!"); });
  EXPECT_EQ(t.ToString(), "!" + expect["text"].get<std::string>());
  // Reloading gives Yjs's (different: ids were reused) text.
  Doc reloaded(8);
  ASSERT_TRUE(reloaded.ApplyUpdate(state).ok());
  EXPECT_EQ(reloaded.GetText("content").ToString(), expect["reloadedText"].get<std::string>());
}

TEST(DocTest, ConcurrentInsertsOrderByClientIdAndConverge) {
  Doc a(1), b(2);
  Text ta = a.GetText("t"), tb = b.GetText("t");
  a.Transact([&](Transaction& x) { ta.Insert(x, 0, "aaa"); });
  b.Transact([&](Transaction& x) { tb.Insert(x, 0, "bbb"); });
  const auto ua = Update(a), ub = Update(b);
  ASSERT_TRUE(a.ApplyUpdate(ub).ok());
  ASSERT_TRUE(b.ApplyUpdate(ua).ok());
  EXPECT_EQ(ta.ToString(), "aaabbb");  // lower client id goes left
  EXPECT_EQ(tb.ToString(), "aaabbb");
}

TEST(DocTest, UpdateObserverSeesEachTransaction) {
  Doc a(1), b(2);
  std::vector<std::vector<uint8_t>> seen;
  a.ObserveUpdates([&](std::span<const uint8_t> u, const void*) { seen.emplace_back(u.begin(), u.end()); });
  Text t = a.GetText("content");
  for (char c : std::string("typing")) {
    a.Transact([&](Transaction& x) { t.Insert(x, t.Length(), std::string(1, c)); });
  }
  a.Transact([&](Transaction& x) { t.Delete(x, 1, 2); });
  ASSERT_EQ(seen.size(), 7u);
  for (auto it = seen.rbegin(); it != seen.rend(); ++it) ASSERT_TRUE(b.ApplyUpdate(*it).ok());
  EXPECT_EQ(b.GetText("content").ToString(), "ting");
  EXPECT_FALSE(b.HasPending());
}

TEST(DocTest, StateVectorDiffSendsOnlyWhatIsMissing) {
  Doc a(1), b(2);
  Text ta = a.GetText("content");
  a.Transact([&](Transaction& x) { ta.Insert(x, 0, "first "); });
  ASSERT_TRUE(b.ApplyUpdate(Update(a)).ok());
  a.Transact([&](Transaction& x) { ta.Insert(x, 6, "second"); });
  const auto diff = Update(a, b.EncodeStateVector());
  EXPECT_LT(diff.size(), Update(a).size());
  ASSERT_TRUE(b.ApplyUpdate(diff).ok());
  EXPECT_EQ(b.GetText("content").ToString(), "first second");
}

TEST(DocTest, MapAndArrayRoundTrip) {
  Doc a(3), b(4);
  Map m = a.GetMap("m");
  Array arr = a.GetArray("a");
  a.Transact([&](Transaction& x) {
    m.Set(x, "queue", nlohmann::json::array({"r1", "r2"}));
    m.Set(x, "n", 1);
    m.Set(x, "n", 2);
    arr.Insert(x, 0, {1, "two"});
    arr.Push(x, nlohmann::json{{"k", 3}});
    arr.Delete(x, 0, 1);
  });
  ASSERT_TRUE(b.ApplyUpdate(Update(a)).ok());
  EXPECT_EQ(b.GetMap("m").Get("n"), nlohmann::json(2));
  EXPECT_EQ(b.GetMap("m").Keys(), (std::vector<std::string>{"n", "queue"}));
  EXPECT_EQ(b.GetArray("a").ToJson(), nlohmann::json::parse(R"(["two", {"k": 3}])"));
  b.Transact([&](Transaction& x) { b.GetMap("m").Delete(x, "n"); });
  EXPECT_FALSE(b.GetMap("m").Has("n"));
}

TEST(DocTest, FormattingRoundTripsThroughDelta) {
  Doc a(1), b(2);
  Text t = a.GetText("content");
  const Attributes bold = {{"bold", true}};
  a.Transact([&](Transaction& x) {
    t.Insert(x, 0, "plain bold");
    t.Format(x, 6, 4, bold);
  });
  ASSERT_TRUE(b.ApplyUpdate(Update(a)).ok());
  EXPECT_EQ(b.GetText("content").ToDelta(),
            nlohmann::json::parse(R"([{"insert":"plain "},{"insert":"bold","attributes":{"bold":true}}])"));
}

TEST(DocTest, SplittingASurrogatePairGivesReplacementCharacters) {
  Doc a(1);
  Text t = a.GetText("content");
  a.Transact([&](Transaction& x) { t.Insert(x, 0, "a\xF0\x9F\x98\x80" "b"); });
  a.Transact([&](Transaction& x) { t.Insert(x, 2, "-"); });  // inside the pair, like Yjs
  EXPECT_EQ(t.ToString(), "a\xEF\xBF\xBD-\xEF\xBF\xBD" "b");
  EXPECT_EQ(t.Length(), 5u);
}

TEST(DocTest, RelativePositionFollowsEdits) {
  Doc a(1);
  Text t = a.GetText("content");
  a.Transact([&](Transaction& x) { t.Insert(x, 0, "hello world"); });
  const RelativePosition rp = t.RelativePositionAt(6);
  auto decoded = DecodeRelativePosition(EncodeRelativePosition(rp));
  ASSERT_TRUE(decoded.ok());
  a.Transact([&](Transaction& x) { t.Insert(x, 0, ">> "); });
  EXPECT_EQ(a.ResolveRelativePosition(*decoded), std::optional<size_t>(9));
}

TEST(DocTest, MalformedUpdatesAreRejectedAndChangeNothing) {
  Doc doc(9);
  const auto good = ReadFixture("rich.bin");
  ASSERT_TRUE(doc.ApplyUpdate(good).ok());
  const auto before = Update(doc);
  for (size_t cut = 0; cut < good.size(); ++cut) {
    Status s = doc.ApplyUpdate(std::span<const uint8_t>(good.data(), cut));
    (void)s;
  }
  std::mt19937 rng(7);
  for (int i = 0; i < 2000; ++i) {
    auto bad = good;
    bad[rng() % bad.size()] = static_cast<uint8_t>(rng());
    Doc other(10);
    Status s = other.ApplyUpdate(bad);
    if (!s.ok()) {
      EXPECT_EQ(Update(other), std::vector<uint8_t>({0, 0}));
    }
  }
  EXPECT_EQ(Update(doc), before);
  // Huge counts and lengths.
  EXPECT_FALSE(doc.ApplyUpdate(std::vector<uint8_t>{0xff, 0xff, 0xff, 0xff, 0x0f}).ok());
  EXPECT_FALSE(doc.ApplyUpdate(std::vector<uint8_t>{1, 1, 5, 0, 1, 0xff, 0xff, 0xff, 0xff, 0x0f, 0}).ok());
  // A struct whose origin is itself (a cycle).
  EXPECT_FALSE(doc.ApplyUpdate(std::vector<uint8_t>{1, 1, 5, 0, 0x84, 5, 0, 1, 'x', 0}).ok());
  EXPECT_EQ(Update(doc), before);
}

// Yjs 13 accepts delete ranges whose client, clock, length or end lies past 2^32 (lib0 reads
// them as numbers up to 2^53-1); applied to "hello world" (client 7), what each one leaves,
// from Yjs in node (Y.applyUpdate, then text). Ranges past 2^32 delete nothing here either;
// one starting below it deletes what lies below it.
TEST(DocTest, DeleteRangesPastTwoToThe32AreAcceptedLikeYjs) {
  struct Case {
    uint64_t client, clock, len;
    std::string text;
  };
  const Case cases[] = {{7, 0xffffffffull, 2, "hello world"},
                        {7, 1ull << 32, 1, "hello world"},
                        {7, 1ull << 40, 5, "hello world"},
                        {7, 2, 1ull << 40, "he"},
                        {7, (1ull << 53) - 1, 1, "hello world"},
                        {7, (1ull << 53) - 2, (1ull << 53) - 2, "hello world"},
                        {7, 0, 1ull << 33, ""},
                        {1ull << 40, 1, 1, "hello world"}};
  for (const Case& c : cases) {
    SCOPED_TRACE(std::to_string(c.client) + ":" + std::to_string(c.clock) + "+" +
                 std::to_string(c.len));
    Doc doc(7);
    Text t = doc.GetText("content");
    doc.Transact([&](Transaction& x) { t.Insert(x, 0, "hello world"); });
    lib0::Encoder e;  // no structs; one client with one delete range
    for (uint64_t v : {uint64_t{0}, uint64_t{1}, c.client, uint64_t{1}, c.clock, c.len}) {
      e.VarUint(v);
    }
    ASSERT_TRUE(doc.ApplyUpdate(e.buf()).ok());
    EXPECT_EQ(doc.GetText("content").ToString(), c.text);
    Doc reload(8);  // what we encode loads again
    ASSERT_TRUE(reload.ApplyUpdate(Update(doc)).ok());
    EXPECT_EQ(reload.GetText("content").ToString(), c.text);
  }
}

// lib0 reads strings with a fatal TextDecoder, so Yjs rejects an update holding ill-formed
// UTF-8 (this one: "\x93\x93ain" in a string item; Yjs 13.6.33 throws "The encoded data
// was not valid for encoding utf-8"). So do we, and the doc stays as it was.
TEST(DocTest, IllFormedUtf8IsRejectedLikeYjs) {
  Doc doc(7);
  Text t = doc.GetText("content");
  doc.Transact([&](Transaction& x) { t.Insert(x, 0, "seed"); });
  const auto before = Update(doc);
  const Status st = doc.ApplyUpdate(ReadFixture("bad-utf8-input.bin"));
  EXPECT_FALSE(st.ok());
  EXPECT_EQ(Update(doc), before);
  const std::vector<uint8_t> surrogate = {3, 'a', 0xED, 0xA0};  // cut-off surrogate bytes
  lib0::Decoder d(surrogate);
  EXPECT_TRUE(d.String().empty());
  EXPECT_FALSE(d.ok());
  const std::vector<uint8_t> binary = {3, 0xFF, 0x00, 0x80};
  lib0::Decoder b(binary);
  EXPECT_EQ(b.Buffer().size(), 3u);  // readVarUint8Array takes any bytes
  EXPECT_TRUE(b.ok());
}

TEST(DocTest, GcOffKeepsDeletedContent) {
  Doc a(1, DocOptions{.gc = false}), b(2, DocOptions{.gc = true});
  Text t = a.GetText("content");
  a.Transact([&](Transaction& x) { t.Insert(x, 0, "abcdef"); });
  a.Transact([&](Transaction& x) { t.Delete(x, 1, 3); });
  const auto kept = Update(a);
  ASSERT_TRUE(b.ApplyUpdate(kept).ok());
  EXPECT_EQ(b.GetText("content").ToString(), "aef");
  EXPECT_NE(std::string(kept.begin(), kept.end()).find("bcd"), std::string::npos);
  const auto collected = Update(b);
  EXPECT_EQ(std::string(collected.begin(), collected.end()).find("bcd"), std::string::npos);
}

TEST(UpdatesTest, MergeDiffAndStateVectorWithoutDoc) {
  std::vector<std::vector<uint8_t>> ups;
  for (int i = 0; i < 5; ++i) ups.push_back(ReadFixture("hello." + std::to_string(i) + ".bin"));
  std::vector<std::span<const uint8_t>> spans(ups.begin(), ups.end());
  auto merged = MergeUpdates(spans);
  ASSERT_TRUE(merged.ok());
  Doc doc(3);
  ASSERT_TRUE(doc.ApplyUpdate(*merged).ok());
  EXPECT_EQ(doc.GetText("content").ToString(), "Hello, world  ok");
  auto sv = EncodeStateVectorFromUpdate(*merged);
  ASSERT_TRUE(sv.ok());
  EXPECT_EQ(*sv, doc.EncodeStateVector());
  auto diff = DiffUpdate(*merged, *sv);
  ASSERT_TRUE(diff.ok());
  Doc empty(4);
  ASSERT_TRUE(empty.ApplyUpdate(*diff).ok());
  EXPECT_EQ(empty.GetText("content").ToString(), "");
}

TEST(TraceTest, ReplaysSmallTraceWithAstralCharacters) {
  auto trace = LoadEditingTrace(std::string(POCKET_SOURCE_DIR) + "/testdata/crdt/small-trace.json");
  ASSERT_TRUE(trace.ok()) << trace.status().ToString();
  Doc doc(1);
  ASSERT_TRUE(ReplayTrace(*trace, doc).ok());
  EXPECT_EQ(doc.GetText("content").ToString(), trace->end_content);
}


TEST(TraceTest, ParsesFieldsInAnyOrderIgnoringUnknownKeysAndExtraPatchElements) {
  const std::string json =
      R"({"txns":[{"patches":[[0,0,"hé",7],[1,1,""]],"time":"x"},{"patches":[]}],)"
      R"("meta":{"a":[1,2,{"b":null}]},"endContent":"h","startContent":""})";
  auto t = ParseEditingTrace(json, "t.json");  // no padding: parsed from a copy
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  ASSERT_EQ(t->txns.size(), 2u);
  ASSERT_EQ(t->txns[0].size(), 2u);
  EXPECT_EQ(t->txns[0][0].text, "hé");
  EXPECT_EQ(t->txns[0][1].pos, 1u);
  EXPECT_EQ(t->txns[0][1].deleted, 1u);
  EXPECT_EQ(t->num_patches, 2u);
  EXPECT_EQ(t->end_content, "h");
  Doc doc(1);
  ASSERT_TRUE(ReplayTrace(*t, doc).ok());
  EXPECT_EQ(doc.GetText("content").ToString(), "h");
}

TEST(TraceTest, MalformedTracesAreCorruptionNamingTheFile) {
  for (const char* json : {
           "", "[]", "{", R"({"startContent":""})", R"({"txns":{}})", R"({"txns":[1]})",
           R"({"txns":[{}]})", R"({"txns":[{"patches":[[0,0]]}]})",
           R"({"txns":[{"patches":[[-1,0,"a"]]}]})", R"({"txns":[{"patches":[[0,4294967296,"a"]]}]})",
           R"({"txns":[{"patches":[[0,0,7]]}]})", R"({"txns":[{"patches":[[0,0,"a"]]}],"endContent":3})",
           R"({"txns":[{"patches":[[0,0,"a"]]])"}) {
    auto t = ParseEditingTrace(json, "bad.json");
    ASSERT_FALSE(t.ok()) << json;
    EXPECT_EQ(t.status().code(), StatusCode::kCorruption) << json;
    EXPECT_NE(t.status().message().find("bad.json"), std::string::npos) << json;
  }
}

}  // namespace
}  // namespace pocket::crdt

namespace pocket::crdt {
namespace {

// An update of `depth` Y.Maps each nested under key "k" of the one before (the first under
// root map "m"), all by client 5 in one run of structs: what Yjs writes for
// `m.set('k', new Y.Map())` repeated on the newest map. Yjs itself overflows its stack
// deleting a chain 2,000 deep; a hostile peer can send one 100,000 deep, so applying,
// reading, encoding and deleting it here must not recurse per level, nor cost per type
// more than once (the transaction's changed-types list was quadratic: 6.6 s here, now
// 0.1 s).
std::vector<uint8_t> NestedMapsUpdate(uint32_t depth) {
  lib0::Encoder e;
  e.VarUint(1);      // one client
  e.VarUint(depth);  // structs
  e.VarUint(5);      // client
  e.VarUint(0);      // first clock
  for (uint32_t i = 0; i < depth; ++i) {
    e.Byte(0x20 | 7);  // Item with a parentSub, ContentType; no origins: the parent follows
    if (i == 0) {
      e.VarUint(1);  // the parent is a root type, by name
      e.String("m");
    } else {
      e.VarUint(0);  // the parent is the item (5, i - 1)
      e.VarUint(5);
      e.VarUint(i - 1);
    }
    e.String("k");
    e.VarUint(1);  // YMap
  }
  e.VarUint(0);  // empty delete set
  return e.buf();
}

TEST(DocTest, TypesNestedOneHundredThousandDeepApplyEncodeAndDeleteWithoutRecursion) {
  const std::vector<uint8_t> update = NestedMapsUpdate(100000);
  Doc a(1);
  ASSERT_TRUE(a.ApplyUpdate(update).ok());
  EXPECT_EQ(a.GetMap("m").ToJson(), nlohmann::json::parse(R"({"k": {"$type": "YMap"}})"));
  const auto state = a.EncodeStateAsUpdate();
  ASSERT_TRUE(state.ok());
  Doc b(2);
  ASSERT_TRUE(b.ApplyUpdate(*state).ok());
  const auto again = b.EncodeStateAsUpdate();
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, *state);
  // Deleting the outermost map deletes (and, with gc, collects) the whole chain.
  const std::vector<uint8_t> del = {0, 1, 5, 1, 0, 1};  // delete set: client 5, clock 0, len 1
  ASSERT_TRUE(b.ApplyUpdate(del).ok());
  EXPECT_EQ(b.GetMap("m").Size(), 0u);
  Doc c(3);
  const auto gone = b.EncodeStateAsUpdate();
  ASSERT_TRUE(gone.ok());
  ASSERT_TRUE(c.ApplyUpdate(*gone).ok());
  EXPECT_EQ(c.GetMap("m").Size(), 0u);
}

// One update from `clients` peers, each appending "x" to root text "content" at clock 0 (a
// merge of that many one-edit docs), and its apply must cost O(clients).
std::vector<uint8_t> ManyClientsUpdate(uint32_t clients) {
  lib0::Encoder e;
  e.VarUint(clients);
  for (uint32_t c = clients; c >= 1; --c) {  // descending client ids, as Yjs writes them
    e.VarUint(1);         // one struct
    e.VarUint(1000 + c);  // client
    e.VarUint(0);         // clock
    e.Byte(4);            // Item, ContentString, no origins: the parent follows
    e.VarUint(1);
    e.String("content");
    e.String("x");
  }
  e.VarUint(0);  // empty delete set
  return e.buf();
}

TEST(DocTest, UpdateFromTwoHundredThousandClientsAppliesInLinearTime) {
  Doc a(1);
  ASSERT_TRUE(a.ApplyUpdate(ManyClientsUpdate(200000)).ok());
  EXPECT_EQ(a.GetText("content").Length(), 200000u);
  const auto state = a.EncodeStateAsUpdate();
  ASSERT_TRUE(state.ok());
  Doc b(2);
  ASSERT_TRUE(b.ApplyUpdate(*state).ok());
  EXPECT_EQ(b.GetText("content").ToString(), a.GetText("content").ToString());
  // The doc-free functions a sync server runs on such an update.
  const std::vector<uint8_t> update = ManyClientsUpdate(200000);
  const std::span<const uint8_t> both[] = {update, *state};
  const auto merged = MergeUpdates(both);
  ASSERT_TRUE(merged.ok());
  const auto sv = EncodeStateVectorFromUpdate(*merged);
  ASSERT_TRUE(sv.ok());
  const auto rest = DiffUpdate(*merged, *sv);
  ASSERT_TRUE(rest.ok());
  Doc c(3);
  ASSERT_TRUE(c.ApplyUpdate(*merged).ok());
  EXPECT_EQ(c.GetText("content").Length(), 200000u);
}

}  // namespace
}  // namespace pocket::crdt
