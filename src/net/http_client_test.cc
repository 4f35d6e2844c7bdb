// The HTTP client against loopback peers that misbehave: URL parsing, TLS failures and
// their classification, CA files, and streamed bodies (pieces as they arrive, stalls, error
// statuses, the head handler, a Range request as the registry makes it).
#include "net/http_client.h"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <string>
#include <thread>
#include <vector>

namespace pocket::net {
namespace {

TEST(UrlTest, Parses) {
  auto u = ParseUrl("http://127.0.0.1:8080/v1");
  ASSERT_TRUE(u.ok());
  EXPECT_FALSE(u->tls);
  EXPECT_EQ(u->host, "127.0.0.1");
  EXPECT_EQ(u->port, "8080");
  EXPECT_EQ(u->path, "/v1");
  EXPECT_EQ(ParseUrl("http://example.com")->port, "80");
  EXPECT_EQ(ParseUrl("http://example.com")->path, "/");
  EXPECT_EQ(ParseUrl("http://[::1]:9/x")->host, "::1");
  EXPECT_FALSE(ParseUrl("ftp://x").ok());
  EXPECT_FALSE(ParseUrl("http://h:99999/").ok());
  EXPECT_FALSE(ParseUrl("http://:80/").ok());
}

TEST(UrlTest, ParsesHttpsWithDefaultPort443) {
  auto u = ParseUrl("https://api.example.com/v1");
  ASSERT_TRUE(u.ok()) << u.status().ToString();
  EXPECT_TRUE(u->tls);
  EXPECT_EQ(u->host, "api.example.com");
  EXPECT_EQ(u->port, "443");
  EXPECT_EQ(u->path, "/v1");
  auto p = ParseUrl("https://localhost:8443");
  ASSERT_TRUE(p.ok());
  EXPECT_TRUE(p->tls);
  EXPECT_EQ(p->port, "8443");
  EXPECT_EQ(p->path, "/");
  auto v6 = ParseUrl("https://[::1]/v1");
  ASSERT_TRUE(v6.ok());
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->port, "443");
  EXPECT_FALSE(ParseUrl("https://").ok());
  EXPECT_FALSE(ParseUrl("https://h:/v1").ok());
  EXPECT_FALSE(ParseUrl("https:/h/v1").ok());
}

TEST(TlsTest, CaFileWithoutCertificatesIsRejected) {
  const std::string path = ::testing::TempDir() + "/pocket-not-a-ca.pem";
  { std::ofstream(path) << "not a certificate\n"; }
  const Status s = CheckCaFile(path);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find(path), std::string::npos) << s.message();
  std::filesystem::remove(path);
}

// A self-signed certificate made in memory (never written to the repository), PEM.
std::string SelfSignedCertPem() {
  EVP_PKEY* key = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
  X509* cert = X509_new();
  X509_set_version(cert, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
  X509_gmtime_adj(X509_getm_notBefore(cert), 0);
  X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
  X509_set_pubkey(cert, key);
  X509_NAME* name = X509_get_subject_name(cert);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("pocket test"), -1, -1, 0);
  X509_set_issuer_name(cert, name);
  X509_sign(cert, key, EVP_sha256());
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_X509(bio, cert);
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio, &data);
  std::string pem(data, static_cast<size_t>(size));
  BIO_free(bio);
  X509_free(cert);
  EVP_PKEY_free(key);
  return pem;
}

TEST(TlsTest, CaFileIsLoadedAgainWhenItChanges) {
  const std::string path = ::testing::TempDir() + "/pocket-rotating-ca.pem";
  { std::ofstream(path) << SelfSignedCertPem(); }
  EXPECT_TRUE(CheckCaFile(path).ok()) << CheckCaFile(path).ToString();
  { std::ofstream(path) << "rotated to garbage\n"; }
  std::filesystem::last_write_time(
      path, std::filesystem::last_write_time(path) + std::chrono::seconds(2));
  const Status s = CheckCaFile(path);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << "the cached context was reused";
  std::filesystem::remove(path);
}

// A loopback TCP listener that accepts one connection and hands it to `serve` on its
// own thread: peers that misbehave at the TLS layer, without certificates.
class OneShotServer {
 public:
  explicit OneShotServer(std::function<void(boost::asio::ip::tcp::socket&)> serve)
      : acceptor_(ioc_, {boost::asio::ip::make_address("127.0.0.1"), 0}) {
    thread_ = std::thread([this, serve = std::move(serve)] {
      boost::system::error_code ec;
      boost::asio::ip::tcp::socket socket(ioc_);
      acceptor_.accept(socket, ec);
      if (!ec) serve(socket);
    });
  }
  ~OneShotServer() { thread_.join(); }
  std::string port() const { return std::to_string(acceptor_.local_endpoint().port()); }

 private:
  boost::asio::io_context ioc_;
  boost::asio::ip::tcp::acceptor acceptor_;
  std::thread thread_;
};

TEST(HttpsTest, PlainHttpPeerFailsTheHandshakeAsTls) {
  OneShotServer server([](boost::asio::ip::tcp::socket& s) {
    char buf[512];
    boost::system::error_code ec;
    s.read_some(boost::asio::buffer(buf), ec);  // the ClientHello
    const std::string_view reply = "HTTP/1.1 400 Bad Request\r\n\r\n";
    boost::asio::write(s, boost::asio::buffer(reply), ec);
  });
  FetchRequest req;
  req.url = "https://127.0.0.1:" + server.port() + "/v1/models";
  req.timeout_ms = 5000;
  auto res = HttpFetch(req);
  ASSERT_FALSE(res.ok());
  EXPECT_EQ(res.status().code(), StatusCode::kIOError);
  EXPECT_EQ(res.status().message().rfind("tls: GET " + req.url + ": TLS handshake failed", 0), 0u)
      << res.status().message();
}

TEST(HttpsTest, SilentPeerTimesOutDuringHandshake) {
  std::promise<void> client_done;
  auto finished = client_done.get_future();
  OneShotServer server([&](boost::asio::ip::tcp::socket&) { finished.wait(); });
  FetchRequest req;
  req.url = "https://127.0.0.1:" + server.port() + "/v1/models";
  req.timeout_ms = 300;
  auto res = HttpFetch(req);
  client_done.set_value();
  ASSERT_FALSE(res.ok());
  EXPECT_EQ(res.status().message().rfind("timeout", 0), 0u) << res.status().message();
}

TEST(HttpsTest, PeerClosingDuringHandshakeIsReset) {
  OneShotServer server([](boost::asio::ip::tcp::socket& s) {
    char buf[512];
    boost::system::error_code ec;
    s.read_some(boost::asio::buffer(buf), ec);
    s.close(ec);
  });
  FetchRequest req;
  req.url = "https://127.0.0.1:" + server.port() + "/";
  req.timeout_ms = 5000;
  auto res = HttpFetch(req);
  ASSERT_FALSE(res.ok());
  EXPECT_EQ(res.status().message().rfind("reset", 0), 0u) << res.status().message();
}

TEST(HttpsTest, UnreachableAndBadCaFileAreClassified) {
  FetchRequest req;
  req.url = "https://127.0.0.1:1/v1";
  req.timeout_ms = 2000;
  auto down = HttpFetch(req);
  ASSERT_FALSE(down.ok());
  EXPECT_EQ(down.status().message().rfind("unreachable", 0), 0u) << down.status().message();
  req.ca_file = "/nonexistent/ca.pem";
  auto bad_ca = HttpFetch(req);
  ASSERT_FALSE(bad_ca.ok());
  EXPECT_EQ(bad_ca.status().message().rfind("tls: ", 0), 0u) << bad_ca.status().message();
  EXPECT_NE(bad_ca.status().message().find("/nonexistent/ca.pem"), std::string::npos);
}

// Reads one request's head from `s` (the client's request fits one read on loopback).
void ReadRequest(boost::asio::ip::tcp::socket& s) {
  std::string got;
  char buf[4096];
  boost::system::error_code ec;
  while (got.find("\r\n\r\n") == std::string::npos && !ec) {
    const size_t n = s.read_some(boost::asio::buffer(buf), ec);
    got.append(buf, n);
  }
}

void WriteAll(boost::asio::ip::tcp::socket& s, const std::string& bytes) {
  boost::system::error_code ec;
  boost::asio::write(s, boost::asio::buffer(bytes), ec);
}

std::string Chunk(const std::string& data) {
  char size[32];
  std::snprintf(size, sizeof(size), "%zx\r\n", data.size());
  return size + data + "\r\n";
}

TEST(HttpStreamTest, ChunkedBodyIsHandedOnAsItArrives) {
  // The server sends its second chunk only after the client has reported the first, so
  // the test passes only if pieces are delivered before the body is complete.
  std::promise<void> first_seen;
  auto first = first_seen.get_future();
  OneShotServer server([&](boost::asio::ip::tcp::socket& s) {
    ReadRequest(s);
    WriteAll(s,
             "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
             "Transfer-Encoding: chunked\r\n\r\n" +
                 Chunk("data: one\n\n"));
    if (first.wait_for(std::chrono::seconds(10)) != std::future_status::ready) return;
    WriteAll(s, Chunk("data: two\n\n") + "0\r\n\r\n");
  });
  FetchRequest req;
  req.method = "POST";
  req.url = "http://127.0.0.1:" + server.port() + "/v1/chat/completions";
  req.timeout_ms = 10000;
  std::string body;
  bool reported = false;
  auto res = HttpFetchStream(req, [&](std::string_view piece) {
    body.append(piece);
    if (!reported && body.find("one") != std::string::npos) {
      reported = true;
      first_seen.set_value();
    }
    return true;
  });
  if (!reported) first_seen.set_value();
  ASSERT_TRUE(res.ok()) << res.status().ToString();
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(body, "data: one\n\ndata: two\n\n");
  EXPECT_TRUE(res->body.empty());
}

TEST(HttpStreamTest, StallAfterFirstPieceIsAnIdleTimeout) {
  std::promise<void> client_done;
  auto finished = client_done.get_future();
  OneShotServer server([&](boost::asio::ip::tcp::socket& s) {
    ReadRequest(s);
    WriteAll(s, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + Chunk("data: one\n\n"));
    finished.wait();
  });
  FetchRequest req;
  req.url = "http://127.0.0.1:" + server.port() + "/";
  req.timeout_ms = 60000;
  req.idle_timeout_ms = 200;
  std::string body;
  auto res = HttpFetchStream(req, [&](std::string_view piece) {
    body.append(piece);
    return true;
  });
  client_done.set_value();
  ASSERT_FALSE(res.ok());
  EXPECT_EQ(res.status().message().rfind("timeout", 0), 0u) << res.status().message();
  EXPECT_EQ(body, "data: one\n\n");
}

TEST(HttpStreamTest, ErrorStatusBodyIsReadWholeAndHandlerCanStop) {
  {
    OneShotServer server([](boost::asio::ip::tcp::socket& s) {
      ReadRequest(s);
      WriteAll(s, "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\n\r\nbusy");
    });
    FetchRequest req;
    req.url = "http://127.0.0.1:" + server.port() + "/";
    int calls = 0;
    auto res = HttpFetchStream(req, [&](std::string_view) { return ++calls > 0; });
    ASSERT_TRUE(res.ok()) << res.status().ToString();
    EXPECT_EQ(res->status, 503);
    EXPECT_EQ(res->body, "busy");
    EXPECT_EQ(calls, 0);
  }
  OneShotServer server([](boost::asio::ip::tcp::socket& s) {
    ReadRequest(s);
    WriteAll(s, "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nabcdef");
  });
  FetchRequest req;
  req.url = "http://127.0.0.1:" + server.port() + "/";
  auto res = HttpFetchStream(req, [](std::string_view) { return false; });
  EXPECT_EQ(res.status().code(), StatusCode::kCancelled) << res.status().ToString();
}

// What the registry does to resume a download: a GET with Range, whose 206 is streamed
// to the body handler after the head handler has seen the status and Content-Range.
TEST(HttpStreamTest, RangeRequestIsStreamedAfterItsHeadIsSeen) {
  std::string request_head;
  OneShotServer server([&](boost::asio::ip::tcp::socket& s) {
    char buf[4096];
    boost::system::error_code ec;
    while (request_head.find("\r\n\r\n") == std::string::npos && !ec) {
      const size_t n = s.read_some(boost::asio::buffer(buf), ec);
      request_head.append(buf, n);
    }
    WriteAll(s,
             "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 4-9/10\r\n"
             "Content-Length: 6\r\n\r\n456789");
  });
  FetchRequest req;
  req.url = "http://127.0.0.1:" + server.port() + "/blobs/x";
  req.headers = {{"Range", "bytes=4-"}};
  int head_status = 0;
  std::string content_range, body;
  auto res = HttpFetchStream(
      req,
      [&](std::string_view piece) {
        EXPECT_EQ(head_status, 206) << "a piece of the body came before the head";
        body.append(piece);
        return true;
      },
      [&](int status, const std::vector<std::pair<std::string, std::string>>& headers) {
        head_status = status;
        for (const auto& [k, v] : headers)
          if (k == "Content-Range") content_range = v;
        return true;
      });
  ASSERT_TRUE(res.ok()) << res.status().ToString();
  EXPECT_NE(request_head.find("Range: bytes=4-\r\n"), std::string::npos) << request_head;
  EXPECT_EQ(res->status, 206);
  EXPECT_EQ(res->Header("content-range"), "bytes 4-9/10");
  EXPECT_EQ(content_range, "bytes 4-9/10");
  EXPECT_EQ(body, "456789");
}

TEST(HttpStreamTest, HeadHandlerCanRefuseBeforeAnyBody) {
  OneShotServer server([](boost::asio::ip::tcp::socket& s) {
    ReadRequest(s);
    WriteAll(s, "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nabcdef");
  });
  FetchRequest req;
  req.url = "http://127.0.0.1:" + server.port() + "/";
  int pieces = 0;
  auto res = HttpFetchStream(
      req, [&](std::string_view) { return ++pieces > 0; },
      [](int status, const auto&) { return status == 206; });
  EXPECT_EQ(res.status().code(), StatusCode::kCancelled) << res.status().ToString();
  EXPECT_NE(res.status().message().find("head handler"), std::string::npos)
      << res.status().message();
  EXPECT_EQ(pieces, 0);
}

}  // namespace
}  // namespace pocket::net

namespace pocket::net {
namespace {

// A registry's blob check: the HEAD reply names the blob's length but sends no body; the
// client must not wait for one (it used to wait until the deadline, or fail as "reset" when
// the server closed first, as here).
TEST(HttpFetchTest, HeadResponseIsCompleteWithoutItsBody) {
  OneShotServer server([](boost::asio::ip::tcp::socket& s) {
    ReadRequest(s);
    WriteAll(s, "HTTP/1.1 200 OK\r\nContent-Length: 123456\r\nDocker-Content-Digest: x\r\n\r\n");
  });
  FetchRequest req;
  req.method = "HEAD";
  req.url = "http://127.0.0.1:" + server.port() + "/v2/x/blobs/y";
  req.timeout_ms = 2000;
  auto res = HttpFetch(req);
  ASSERT_TRUE(res.ok()) << res.status().ToString();
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->Header("Content-Length"), "123456");
  EXPECT_TRUE(res->body.empty());
}

}  // namespace
}  // namespace pocket::net
