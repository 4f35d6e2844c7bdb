// HttpServer's connection layer: per-client and global limits, the first-byte deadline and
// Stop() with a handler still holding an exchange; the server on a caller's io_context with
// its WebSocket-upgrade hook (how `pocket collab serve` runs it), and StaticFileHandler.
// Clients are raw sockets bound to other loopback addresses (127.0.0.2, ...: all local on
// Linux) so they count as other clients.
#include "net/http_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>

#include "net/static_files.h"

namespace pocket::net {
namespace {

// A TCP connection from `local_ip` to 127.0.0.1:port; -1 when it fails.
int Connect(uint16_t port, const char* local_ip) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in local{};
  local.sin_family = AF_INET;
  inet_pton(AF_INET, local_ip, &local.sin_addr);
  sockaddr_in remote{};
  remote.sin_family = AF_INET;
  remote.sin_port = htons(port);
  inet_pton(AF_INET, "127.0.0.1", &remote.sin_addr);
  if (bind(fd, reinterpret_cast<sockaddr*>(&local), sizeof(local)) != 0 ||
      connect(fd, reinterpret_cast<sockaddr*>(&remote), sizeof(remote)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// Reads until the peer closes, `until` appears, or timeout_ms passes.
std::string Read(int fd, int timeout_ms, const std::string& until = "") {
  std::string out;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                          deadline - std::chrono::steady_clock::now())
                          .count();
    if (left <= 0) break;
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(left)) <= 0) break;
    char buf[4096];
    const ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) {
      out += "<closed>";
      break;
    }
    out.append(buf, static_cast<size_t>(n));
    if (!until.empty() && out.find(until) != std::string::npos) break;
  }
  return out;
}

void Send(int fd, const std::string& s) {
  ASSERT_EQ(send(fd, s.data(), s.size(), 0), ssize_t(s.size()));
}

const char kGet[] = "GET /x HTTP/1.1\r\nHost: x\r\n\r\n";

std::unique_ptr<HttpServer> StartOk(HttpOptions o, Handler h = nullptr) {
  o.port = 0;
  if (!h) h = [](HttpRequest, std::shared_ptr<Exchange> ex) { ex->Respond(200, {}, "ok"); };
  auto s = std::make_unique<HttpServer>(o, std::move(h), nullptr);
  EXPECT_TRUE(s->Start().ok());
  return s;
}

TEST(HttpServerTest, ClientOverItsLimitIsRefusedAtOnceWhileOthersAreServed) {
  HttpOptions o;
  o.max_connections_per_client = 2;
  o.max_connections = 100;
  auto server = StartOk(o);
  int a = Connect(server->port(), "127.0.0.2"), b = Connect(server->port(), "127.0.0.2");
  ASSERT_GE(a, 0);
  ASSERT_GE(b, 0);
  // The first two are admitted and silent; wait until the server counts them.
  for (int i = 0; i < 200 && server->open_connections() < 2; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  int c = Connect(server->port(), "127.0.0.2");
  ASSERT_GE(c, 0);
  const std::string refused = Read(c, 3000, "<closed>");
  EXPECT_EQ(refused.rfind("HTTP/1.1 429", 0), 0u) << refused;
  EXPECT_NE(refused.find("Retry-After: 1"), std::string::npos);
  EXPECT_NE(refused.find("<closed>"), std::string::npos) << "closed after the answer";
  int d = Connect(server->port(), "127.0.0.3");
  Send(d, kGet);
  EXPECT_EQ(Read(d, 3000, "ok").rfind("HTTP/1.1 200", 0), 0u) << "another client is served";
  EXPECT_EQ(server->stats().refused_client_limit, 1u);
  for (int fd : {a, b, c, d}) close(fd);
}

TEST(HttpServerTest, OverTheGlobalLimitANewConnectionGets503AtOnce) {
  HttpOptions o;
  o.max_connections_per_client = 0;
  o.max_connections = 3;
  auto server = StartOk(o);
  std::vector<int> held;
  for (const char* ip : {"127.0.0.2", "127.0.0.3", "127.0.0.4"})
    held.push_back(Connect(server->port(), ip));
  for (int i = 0; i < 200 && server->open_connections() < 3; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  const auto t0 = std::chrono::steady_clock::now();
  int fd = Connect(server->port(), "127.0.0.5");
  Send(fd, kGet);
  const std::string r = Read(fd, 3000, "<closed>");
  EXPECT_EQ(r.rfind("HTTP/1.1 503", 0), 0u) << r;
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(2000));
  EXPECT_EQ(server->stats().refused_global_limit, 1u);
  for (int h : held) close(h);
  close(fd);
}

TEST(HttpServerTest, SilentNewConnectionClosedAfterFirstByteDeadlineButIdleKeepAliveIsNot) {
  HttpOptions o;
  o.first_byte_timeout_ms = 200;
  o.idle_timeout_ms = 10000;
  auto server = StartOk(o);
  int silent = Connect(server->port(), "127.0.0.2");
  int keep = Connect(server->port(), "127.0.0.2");
  Send(keep, kGet);
  EXPECT_EQ(Read(keep, 3000, "ok").rfind("HTTP/1.1 200", 0), 0u);
  EXPECT_EQ(Read(silent, 5000), "<closed>") << "closed without a response";
  // Idle for longer than the first-byte deadline between two requests: still served.
  std::this_thread::sleep_for(std::chrono::milliseconds(600));
  Send(keep, kGet);
  EXPECT_EQ(Read(keep, 3000, "ok").rfind("HTTP/1.1 200", 0), 0u);
  EXPECT_EQ(server->stats().first_byte_timeouts, 1u);
  close(silent);
  close(keep);
}

// A handler that lets go of its exchange only after Stop() closed the connection: Stop()
// must not wait out its grace period for it (the I/O context used to run out of work, so
// the release never reached the connection's strand and Stop() waited 5 s).
TEST(HttpServerTest, StopReturnsOnceAHandlerReleasesItsCancelledExchange) {
  std::mutex mu;
  std::shared_ptr<Exchange> held;
  HttpOptions o;
  o.shutdown_grace_ms = 5000;
  auto server = StartOk(o, [&](HttpRequest, std::shared_ptr<Exchange> ex) {
    std::lock_guard<std::mutex> l(mu);
    held = std::move(ex);
  });
  int fd = Connect(server->port(), "127.0.0.2");
  Send(fd, kGet);
  for (int i = 0; i < 400; ++i) {
    {
      std::lock_guard<std::mutex> l(mu);
      if (held) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  std::thread worker([&] {
    // Like a generation loop: stops once its exchange is cancelled.
    for (int i = 0; i < 1000; ++i) {
      {
        std::lock_guard<std::mutex> l(mu);
        if (held && held->cancelled()) {
          held.reset();
          return;
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  });
  const auto t0 = std::chrono::steady_clock::now();
  server->Stop();
  const auto took = std::chrono::steady_clock::now() - t0;
  worker.join();
  EXPECT_LT(took, std::chrono::milliseconds(1500));
  EXPECT_EQ(server->open_connections(), 0);
  close(fd);
}

const char kUpgrade[] =
    "GET /room/a?token=t HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

// `pocket collab serve`'s arrangement: the caller runs the io_context, upgrades on any path
// go to the hook with their place under the limits, other requests to the handler, and
// once Stop() has run the caller's run() returns although a keep-alive client still holds
// its connection open.
TEST(HttpServerTest, OnACallersIoContextUpgradesGoToTheHookAndRunReturnsAfterStop) {
  boost::asio::io_context io;
  HttpOptions o;
  o.port = 0;
  o.server_header = "pocket-test";
  o.max_connections_per_client = 1;
  HttpServer server(
      io, o, [](HttpRequest, std::shared_ptr<Exchange> ex) { ex->Respond(200, {}, "ok"); },
      nullptr);
  std::atomic<int> upgrades{0};
  std::string upgraded_target;  // written on the I/O thread, read after it is joined
  std::shared_ptr<void> held_place;
  server.SetUpgradeHandler("/",
                           [&](boost::beast::tcp_stream stream,
                               boost::beast::http::request<boost::beast::http::string_body> req,
                               std::shared_ptr<void> hold) {
                             upgraded_target = std::string(req.target());
                             held_place = std::move(hold);
                             stream.close();
                             ++upgrades;
                           });
  ASSERT_TRUE(server.Start().ok());
  std::thread runner([&] { io.run(); });

  int ws = Connect(server.port(), "127.0.0.2");
  Send(ws, kUpgrade);
  EXPECT_EQ(Read(ws, 3000), "<closed>");
  for (int i = 0; i < 400 && upgrades == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_EQ(upgrades.load(), 1);
  // The upgraded connection keeps its place while the hook holds it: the client's next one
  // is over its limit of 1.
  int over = Connect(server.port(), "127.0.0.2");
  EXPECT_EQ(Read(over, 3000, "<closed>").rfind("HTTP/1.1 429", 0), 0u);
  boost::asio::post(io, [&] { held_place.reset(); });

  int keep = Connect(server.port(), "127.0.0.3");
  Send(keep, kGet);
  const std::string answer = Read(keep, 3000, "ok");
  EXPECT_EQ(answer.rfind("HTTP/1.1 200", 0), 0u) << answer;
  EXPECT_NE(answer.find("Server: pocket-test\r\n"), std::string::npos) << answer;

  const auto t0 = std::chrono::steady_clock::now();
  boost::asio::post(io, [&] { server.Stop(); });
  runner.join();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(3000));
  EXPECT_EQ(upgraded_target, "/room/a?token=t");
  EXPECT_EQ(server.open_connections(), 0);
  for (int fd : {ws, over, keep}) close(fd);
}

TEST(StaticFileHandlerTest, ServesGetAndHeadAndRefusesOtherMethodsAndMissingFiles) {
  const std::string dir = ::testing::TempDir() + "/pocket-static-files";
  std::filesystem::create_directories(dir);
  { std::ofstream(dir + "/index.html") << "<p>hi</p>"; }
  HttpOptions o;
  auto server = StartOk(o, StaticFileHandler([&](std::string_view target) -> Result<std::string> {
                          std::string_view path = target.substr(0, target.find('?'));
                          if (!IsSafeUrlPath(path)) return Status::NotFound("unsafe");
                          return dir + (path == "/" ? "/index.html" : std::string(path));
                        }));
  auto ask = [&](const std::string& request) {
    int fd = Connect(server->port(), "127.0.0.2");
    Send(fd, request);
    std::string r = Read(fd, 3000, "<closed>");
    close(fd);
    return r;
  };
  const std::string get = ask("GET /?v=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(get.rfind("HTTP/1.1 200", 0), 0u) << get;
  EXPECT_NE(get.find("Content-Type: text/html; charset=utf-8\r\n"), std::string::npos) << get;
  EXPECT_NE(get.find("Cache-Control: no-cache\r\n"), std::string::npos) << get;
  EXPECT_NE(get.find("\r\n\r\n<p>hi</p>"), std::string::npos) << get;
  const std::string head = ask("HEAD /index.html HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(head.rfind("HTTP/1.1 200", 0), 0u) << head;
  EXPECT_EQ(head.find("<p>"), std::string::npos) << head;
  const std::string close = "Host: x\r\nConnection: close\r\n\r\n";
  EXPECT_EQ(ask("POST / HTTP/1.1\r\nContent-Length: 0\r\n" + close).rfind("HTTP/1.1 405", 0), 0u);
  EXPECT_EQ(ask("GET /nope.js HTTP/1.1\r\n" + close).rfind("HTTP/1.1 404", 0), 0u);
  EXPECT_EQ(ask("GET /../etc/passwd HTTP/1.1\r\n" + close).rfind("HTTP/1.1 404", 0), 0u);
  std::filesystem::remove_all(dir);
}

TEST(StaticFileHandlerTest, MimeTypesByExtension) {
  EXPECT_EQ(MimeType("/a/index.html"), "text/html; charset=utf-8");
  EXPECT_EQ(MimeType("x.mjs"), "text/javascript; charset=utf-8");
  EXPECT_EQ(MimeType("x.map"), "application/json");
  EXPECT_EQ(MimeType("x.bin"), "application/octet-stream");
}

}  // namespace
}  // namespace pocket::net
