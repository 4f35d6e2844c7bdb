// In-process tests of the server and the agent over real sockets on 127.0.0.1, all on one
// io_context driven by the test thread (the agent's worker thread posts into it).
#include <gtest/gtest.h>

#include <chrono>

#include "crdt/doc.h"
#include "net/ws_client.h"
#include "sync/agent.h"
#include "sync/collab_server.h"
#include "sync/protocol.h"

namespace pocket::sync {
namespace {

namespace asio = boost::asio;

template <typename Pred>
bool RunUntil(asio::io_context& io, Pred pred, int timeout_ms = 10000) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    io.run_one_for(std::chrono::milliseconds(10));
  }
  return true;
}

const int kRemote = 0;

// A minimal C++ y-websocket peer: a crdt::Doc synced through net::WsClient.
struct Peer {
  Peer(asio::io_context& io, uint16_t port, const std::string& room, uint32_t client_id)
      : doc(client_id) {
    doc.ObserveUpdates([this](std::span<const uint8_t> u, const void* origin) {
      if (origin != &kRemote && ws->open()) ws->Send(EncodeSyncUpdate(u));
    });
    net::WsClient::Handlers h;
    h.on_open = [this] { ws->Send(EncodeSyncStep1(doc.EncodeStateVector())); };
    h.on_message = [this](ByteSpan bytes) {
      raw.emplace_back(bytes.begin(), bytes.end());
      auto m = DecodeMessage(bytes);
      if (!m.ok() || m->type != MessageType::kSync) return;
      if (m->sync_type == SyncType::kStep1) {
        ws->Send(EncodeSyncStep2(*doc.EncodeStateAsUpdate(m->payload)));
      } else {
        EXPECT_TRUE(doc.ApplyUpdate(m->payload, &kRemote).ok());
        if (m->sync_type == SyncType::kStep2) synced = true;
      }
    };
    h.on_close = [this](const Status&, int code) {
      closed = true;
      close_code = code;
    };
    ws = net::WsClient::Create(io, std::move(h));
    ws->Connect(*net::ParseWsUrl("ws://127.0.0.1:" + std::to_string(port) + "/" + room));
  }
  std::string Text() { return doc.GetText("content").ToString(); }
  void Insert(size_t index, std::string_view s) {
    auto text = doc.GetText("content");
    doc.Transact([&](crdt::Transaction& txn) { text.Insert(txn, index, s); });
  }

  crdt::Doc doc;
  std::shared_ptr<net::WsClient> ws;
  std::vector<Bytes> raw;
  bool synced = false;
  bool closed = false;
  int close_code = 0;
};

std::unique_ptr<CollabServer> StartServer(asio::io_context& io) {
  CollabServerOptions o;
  o.port = 0;
  auto s = CollabServer::Start(io, o);
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  return std::move(s).value();
}

// The answer to a joining peer's SyncStep1 is the room's whole stored state; a document
// larger than max_queued_bytes must still reach it (it was closed with 1013 as a slow peer,
// and a y-websocket client reconnected and asked again forever).
TEST(PeerTest, DocumentLargerThanTheQueueLimitReachesAJoiningPeer) {
  asio::io_context io;
  CollabServerOptions o;
  o.port = 0;
  o.sync.max_queued_bytes = 16 * 1024;
  auto started = CollabServer::Start(io, o);
  ASSERT_TRUE(started.ok()) << started.status().ToString();
  auto server = std::move(started).value();
  Peer a(io, server->port(), "big", 1);
  ASSERT_TRUE(RunUntil(io, [&] { return a.synced; }));
  const std::string chunk(2048, 'x');
  for (int i = 0; i < 40; ++i) {  // 80 KiB in 2 KiB updates
    a.Insert(0, chunk);
    ASSERT_TRUE(RunUntil(io, [&] { return a.ws->queued_messages() == 0; }));
  }
  // The server must hold all 40 before b joins: an update still on its way would reach b as
  // a live broadcast, which (unlike the answer) counts against max_queued_bytes, and 9 of
  // them closed b as a slow peer in one CI run.
  uint64_t received = 0;
  ASSERT_TRUE(RunUntil(io, [&] {
    server->service().GetStats([&](SyncStats st) { received = st.updates_received; });
    return received >= 40;
  }));
  Peer b(io, server->port(), "big", 2);
  ASSERT_TRUE(RunUntil(io, [&] { return (b.synced && b.Text() == a.Text()) || b.closed; }));
  EXPECT_FALSE(b.closed) << "close code " << b.close_code;
  EXPECT_EQ(b.Text().size(), 40u * 2048u);
  server->Stop();
  io.run_for(std::chrono::milliseconds(200));
}

TEST(PeerTest, CppPeersConvergeThroughServer) {
  asio::io_context io;
  auto server = StartServer(io);
  Peer a(io, server->port(), "room", 101), b(io, server->port(), "room", 202);
  ASSERT_TRUE(RunUntil(io, [&] { return a.synced && b.synced; }));
  // The server's first message is SyncStep1 with the empty room's (empty) state vector.
  ASSERT_FALSE(a.raw.empty());
  EXPECT_EQ(a.raw[0], EncodeSyncStep1(EmptyStateVector()));
  for (int i = 0; i < 20; ++i) {
    a.Insert(0, "a");
    b.Insert(b.doc.GetText("content").Length(), "b");
  }
  ASSERT_TRUE(RunUntil(io, [&] { return a.Text().size() == 40 && a.Text() == b.Text(); }));
  // A late joiner gets the stored updates and then an empty SyncStep2.
  Peer c(io, server->port(), "room", 303);
  ASSERT_TRUE(RunUntil(io, [&] { return c.synced; }));
  EXPECT_EQ(c.Text(), a.Text());
  EXPECT_EQ(c.raw.back(), EncodeSyncStep2(EmptyUpdate()));
  server->Stop();
  io.run_for(std::chrono::milliseconds(200));
}

TEST(PeerTest, GarbageClosesOnlyThatConnection) {
  asio::io_context io;
  auto server = StartServer(io);
  Peer good(io, server->port(), "r", 1), bad(io, server->port(), "r", 2);
  ASSERT_TRUE(RunUntil(io, [&] { return good.synced && bad.synced; }));
  bad.ws->Send(Bytes{0, 7, 1, 2});  // unknown sync type
  ASSERT_TRUE(RunUntil(io, [&] { return bad.closed; }));
  EXPECT_EQ(bad.close_code, 1008);
  // Good framing, broken Yjs update (claims one client, then ends): refused, not stored.
  Peer bad_update(io, server->port(), "r", 4);
  ASSERT_TRUE(RunUntil(io, [&] { return bad_update.synced; }));
  bad_update.ws->Send(EncodeSyncUpdate(Bytes{1, 5, 9}));
  ASSERT_TRUE(RunUntil(io, [&] { return bad_update.closed; }));
  EXPECT_EQ(bad_update.close_code, 1008);
  Peer other(io, server->port(), "r", 3);
  ASSERT_TRUE(RunUntil(io, [&] { return other.synced; }));
  good.Insert(0, "still here");
  ASSERT_TRUE(RunUntil(io, [&] { return other.Text() == "still here"; }));
  EXPECT_FALSE(good.closed);
  server->Stop();
  io.run_for(std::chrono::milliseconds(200));
}

// An agent whose server is not there says it cannot connect (not "disconnected", which
// it never was), backs off, and says it again only on the 2nd, 4th, 8th, ... try.
TEST(PeerTest, AgentThatCannotConnectSaysSoAndBacksOff) {
  asio::io_context io;
  std::vector<std::string> events;
  AgentOptions o;
  o.server_url = "ws://127.0.0.1:1/room";  // port 1: nothing listens there
  o.reconnect_max_ms = 200;
  o.on_event = [&](std::string_view line) { events.emplace_back(line); };
  auto agent = Agent::Start(io, o);
  ASSERT_TRUE(agent.ok());
  // 100 + 200 + 200 + ... ms: 8 or 9 tries in 1.6 s, of which 1, 2, 4 and 8 are reported.
  io.run_for(std::chrono::milliseconds(1600));
  ASSERT_FALSE(events.empty());
  EXPECT_NE(events[0].find("cannot connect to 127.0.0.1:1"), std::string::npos) << events[0];
  EXPECT_LE(events.size(), 5u);
  for (const auto& e : events) EXPECT_EQ(e.find("disconnected"), std::string::npos) << e;
  bool stopped = false;
  (*agent)->Stop([&] { stopped = true; });
  ASSERT_TRUE(RunUntil(io, [&] { return stopped; }));
}

TEST(PeerTest, AgentReplacesAiLineWhileOthersEdit) {
  asio::io_context io;
  auto server = StartServer(io);
  Peer human(io, server->port(), "ai", 7);
  ASSERT_TRUE(RunUntil(io, [&] { return human.synced; }));
  AgentOptions o;
  o.server_url = "ws://127.0.0.1:" + std::to_string(server->port()) + "/ai";
  o.generator = std::make_shared<ScriptedGenerator>("one two three four five six");
  o.token_delay_ms = 20;
  auto agent = Agent::Start(io, o);
  ASSERT_TRUE(agent.ok());
  ASSERT_TRUE(RunUntil(io, [&] { return (*agent)->stats().synced; }));
  human.Insert(0, "top\n/ai count\nbottom\n");
  // Keep typing at the start while the agent streams its answer.
  int typed = 0;
  ASSERT_TRUE(RunUntil(io, [&] {
    if ((*agent)->stats().tokens_written > 0 && (*agent)->stats().requests_done == 0 &&
        typed < 10) {
      human.Insert(0, "x");
      ++typed;
    }
    return (*agent)->stats().requests_done == 1;
  }));
  ASSERT_TRUE(RunUntil(io, [&] {
    return human.Text() == std::string(typed, 'x') + "top\none two three four five six\nbottom\n";
  })) << human.Text();
  EXPECT_GT(typed, 0);
  bool stopped = false;
  (*agent)->Stop([&] { stopped = true; });
  ASSERT_TRUE(RunUntil(io, [&] { return stopped; }));
  server->Stop();
  io.run_for(std::chrono::milliseconds(200));
}

}  // namespace
}  // namespace pocket::sync
