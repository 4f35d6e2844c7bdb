#include "sync/wire.h"

#include <gtest/gtest.h>

#include "sync/awareness.h"
#include "sync/crc32c.h"
#include "sync/protocol.h"

namespace pocket::sync {
namespace {

TEST(WireTest, VarUintRoundTripsAndMatchesLib0Bytes) {
  for (uint64_t v : {0ull, 1ull, 127ull, 128ull, 300ull, 0xffffffffull, (1ull << 53) - 1}) {
    WireWriter w;
    w.VarUint(v);
    WireReader r(w.bytes());
    auto got = r.VarUint("v");
    ASSERT_TRUE(got.ok()) << v;
    EXPECT_EQ(*got, v);
    EXPECT_TRUE(r.done());
  }
  WireWriter w;
  w.VarUint(300);  // lib0: writeVarUint(300) -> [0xac, 0x02]
  EXPECT_EQ(w.bytes(), (Bytes{0xac, 0x02}));
}

TEST(WireTest, RejectsTruncatedAndOverlongVarUint) {
  const Bytes truncated = {0x80, 0x80};
  WireReader r1(truncated);
  EXPECT_EQ(r1.VarUint("x").status().code(), StatusCode::kCorruption);
  const Bytes overlong(9, 0xff);
  WireReader r2(overlong);
  EXPECT_EQ(r2.VarUint("x").status().code(), StatusCode::kCorruption);
  const Bytes too_big = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x10};  // 2^53
  WireReader r3(too_big);
  EXPECT_EQ(r3.VarUint("x").status().code(), StatusCode::kCorruption);
}

TEST(WireTest, RejectsArrayLongerThanInput) {
  const Bytes b = {0x05, 1, 2};
  WireReader r(b);
  EXPECT_EQ(r.VarUint8Array("a").status().code(), StatusCode::kCorruption);
}

TEST(Crc32cTest, MatchesKnownVector) {
  const std::string s = "123456789";
  EXPECT_EQ(Crc32c(ByteSpan(reinterpret_cast<const uint8_t*>(s.data()), s.size())), 0xE3069283u);
}

TEST(ProtocolTest, EncodesLikeYWebsocket) {
  // y-websocket sends SyncStep1 of an empty doc as [0, 0, 1, 0].
  EXPECT_EQ(EncodeSyncStep1(EmptyStateVector()), (Bytes{0, 0, 1, 0}));
  EXPECT_EQ(EncodeSyncStep2(EmptyUpdate()), (Bytes{0, 1, 2, 0, 0}));
  EXPECT_EQ(EncodeSyncUpdate(Bytes{7}), (Bytes{0, 2, 1, 7}));
  EXPECT_EQ(EncodeQueryAwareness(), (Bytes{3}));
  EXPECT_EQ(EncodePermissionDenied("no"), (Bytes{2, 0, 2, 'n', 'o'}));
}

TEST(ProtocolTest, DecodesEveryMessageType) {
  const Bytes up = EncodeSyncUpdate(Bytes{1, 2, 3});  // payload views into it
  auto m = DecodeMessage(up);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->type, MessageType::kSync);
  EXPECT_EQ(m->sync_type, SyncType::kUpdate);
  EXPECT_EQ(Bytes(m->payload.begin(), m->payload.end()), (Bytes{1, 2, 3}));
  const Bytes aw = EncodeAwarenessMessage(Bytes{9});
  m = DecodeMessage(aw);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->type, MessageType::kAwareness);
  EXPECT_EQ(m->payload.size(), 1u);
  m = DecodeMessage(EncodePermissionDenied("why"));
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->auth_reason, "why");
  m = DecodeMessage(EncodeQueryAwareness());
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->type, MessageType::kQueryAwareness);
}

TEST(ProtocolTest, RejectsMalformedMessages) {
  for (const Bytes& bad : {Bytes{}, Bytes{4}, Bytes{0, 3, 0}, Bytes{0, 0, 5, 1}, Bytes{0, 2, 0, 9},
                           Bytes{1}, Bytes{2, 1, 0}, Bytes{3, 0}, Bytes{0x80}}) {
    EXPECT_EQ(DecodeMessage(bad).status().code(), StatusCode::kCorruption)
        << "size " << bad.size();
  }
}

TEST(AwarenessTest, RoundTripsUpdate) {
  std::vector<AwarenessEntry> entries = {{1, 3, R"({"user":{"name":"a"}})"}, {2, 1, "null"}};
  auto got = DecodeAwarenessUpdate(EncodeAwarenessUpdate(entries));
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(*got, entries);
  EXPECT_FALSE(DecodeAwarenessUpdate(Bytes{5, 1}).ok());
  EXPECT_FALSE(DecodeAwarenessUpdate(Bytes{1, 1, 1, 0}).ok());  // empty JSON
}

TEST(AwarenessTest, AppliesNewerClocksOnly) {
  AwarenessRegistry reg;
  auto r = reg.Apply(EncodeAwarenessUpdate({{7, 2, "{\"a\":1}"}}), /*conn_id=*/1);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->size(), 1u);
  r = reg.Apply(EncodeAwarenessUpdate({{7, 1, "{\"a\":0}"}}), 1);  // older: ignored
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->empty());
  r = reg.Apply(EncodeAwarenessUpdate({{7, 2, "{\"a\":2}"}}), 1);  // same clock, not null
  EXPECT_TRUE(r->empty());
  ASSERT_EQ(reg.States().size(), 1u);
  EXPECT_EQ(reg.States()[0].state_json, "{\"a\":1}");
  r = reg.Apply(EncodeAwarenessUpdate({{7, 2, "null"}}), 1);  // same clock + null: removal
  EXPECT_EQ(r->size(), 1u);
  EXPECT_TRUE(reg.States().empty());
}

TEST(AwarenessTest, RemovesStatesOfClosedConnection) {
  AwarenessRegistry reg;
  ASSERT_TRUE(reg.Apply(EncodeAwarenessUpdate({{7, 4, "{}"}, {8, 1, "{}"}}), 1).ok());
  ASSERT_TRUE(reg.Apply(EncodeAwarenessUpdate({{9, 1, "{}"}}), 2).ok());
  auto removed = reg.RemoveConnection(1);
  ASSERT_EQ(removed.size(), 2u);
  EXPECT_EQ(removed[0], (AwarenessEntry{7, 5, "null"}));
  EXPECT_EQ(removed[1], (AwarenessEntry{8, 2, "null"}));
  ASSERT_EQ(reg.States().size(), 1u);
  EXPECT_EQ(reg.States()[0].client_id, 9u);
  EXPECT_TRUE(reg.RemoveConnection(1).empty());
}

}  // namespace
}  // namespace pocket::sync
