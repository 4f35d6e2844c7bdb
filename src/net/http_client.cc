// The HTTP(S) client (http_client.h): one request per call over Beast, plain or TLS, whole
// bodies or streamed to a callback, with timeouts, a size cap and a cancel predicate.
#include "net/http_client.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <type_traits>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

#include "base/file.h"

namespace pocket::net {
namespace beast = boost::beast;
namespace http = beast::http;
namespace asio = boost::asio;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;

Result<Url> ParseUrl(const std::string& url) {
  Url u;
  std::string rest;
  if (url.rfind("https://", 0) == 0) {
    u.tls = true;
    u.port = "443";
    rest = url.substr(8);
  } else if (url.rfind("http://", 0) == 0) {
    rest = url.substr(7);
  } else {
    return Status::InvalidArgument("'" + url + "': expected http:// or https://");
  }
  const size_t slash = rest.find('/');
  std::string hostport = rest.substr(0, slash);
  if (slash != std::string::npos) u.path = rest.substr(slash);
  if (!hostport.empty() && hostport[0] == '[') {  // [::1]:port
    const size_t close = hostport.find(']');
    if (close == std::string::npos) return Status::InvalidArgument("'" + url + "': bad IPv6 host");
    u.host = hostport.substr(1, close - 1);
    if (close + 1 < hostport.size()) {
      if (hostport[close + 1] != ':') return Status::InvalidArgument("'" + url + "': bad port");
      u.port = hostport.substr(close + 2);
    }
  } else if (size_t colon = hostport.rfind(':'); colon != std::string::npos) {
    u.host = hostport.substr(0, colon);
    u.port = hostport.substr(colon + 1);
  } else {
    u.host = hostport;
  }
  if (u.host.empty()) return Status::InvalidArgument("'" + url + "': no host");
  if (u.port.empty() || u.port.find_first_not_of("0123456789") != std::string::npos ||
      u.port.size() > 5 || std::stoi(u.port) > 65535)
    return Status::InvalidArgument("'" + url + "': bad port");
  return u;
}

std::string FetchResponse::Header(const std::string& name) const {
  for (const auto& [k, v] : headers) {
    if (k.size() == name.size() &&
        std::equal(k.begin(), k.end(), name.begin(),
                   [](char a, char b) { return std::tolower(a) == std::tolower(b); }))
      return v;
  }
  return "";
}

namespace {

using TlsStream = beast::ssl_stream<beast::tcp_stream>;

std::string Classify(const beast::error_code& ec) {
  if (ec == beast::error::timeout || ec == asio::error::operation_aborted) return "timeout";
  if (ec == asio::error::connection_refused || ec == asio::error::host_unreachable ||
      ec == asio::error::network_unreachable || ec == asio::error::host_not_found)
    return "unreachable";
  // stream_truncated: the peer closed the TCP connection without a TLS close_notify.
  if (ec == asio::error::connection_reset || ec == http::error::end_of_stream ||
      ec == asio::error::eof || ec == asio::error::broken_pipe ||
      ec == http::error::partial_message || ec == ssl::error::stream_truncated)
    return "reset";
  if (ec.category() == asio::error::get_ssl_category()) return "tls";
  return "bad_response";
}

// TLS 1.2+, peer verification on, trusting `ca_file` alone when given (like curl's
// --cacert: a private CA should not widen trust to every public CA, and a test that
// names one CA must not pass through the system store) or else the system's default
// verify paths, which honour SSL_CERT_FILE / SSL_CERT_DIR.
Status ConfigureTls(ssl::context& ctx, const std::string& ca_file) {
  if (SSL_CTX_set_min_proto_version(ctx.native_handle(), TLS1_2_VERSION) != 1)
    return Status::Internal("tls: cannot require TLS 1.2");
  beast::error_code ec;
  ctx.set_verify_mode(ssl::verify_peer, ec);
  if (ec) return Status::Internal("tls: cannot turn on peer verification: " + ec.message());
  if (ca_file.empty()) {
    ctx.set_default_verify_paths(ec);
    if (ec)
      return Status::IOError("tls: cannot load the system's CA certificates: " + ec.message());
  } else {
    // OpenSSL reports a missing file as "system library" without the errno; open it
    // first so the message says why.
    if (auto readable = ReadFile(ca_file); !readable.ok())
      return Status::InvalidArgument("ca_file: " + readable.status().message());
    ctx.load_verify_file(ca_file, ec);
    if (ec) return Status::InvalidArgument("ca_file '" + ca_file + "': " + ec.message());
  }
  return Status::Ok();
}

// One configured context per trust source, shared by every call: OpenSSL 3 takes ~40 ms
// to load the system's default verify paths into a new context (measured on the dev
// machine: 38 ms per context, 0.5 ms with a one-certificate ca_file), which would
// otherwise be paid by every remote call. An SSL_CTX that is no longer modified may back
// many connections on many threads at once. A ca_file is loaded again when its
// modification time changes, so a rotated private CA is picked up without a restart.
Result<std::shared_ptr<ssl::context>> SharedTlsContext(const std::string& ca_file) {
  struct Entry {
    std::filesystem::file_time_type mtime;
    std::shared_ptr<ssl::context> ctx;
  };
  static std::mutex mu;
  static auto* cache = new std::map<std::string, Entry>();  // never destroyed: used at exit
  std::filesystem::file_time_type mtime{};
  if (!ca_file.empty()) {
    std::error_code ec;
    mtime = std::filesystem::last_write_time(ca_file, ec);
  }
  std::lock_guard<std::mutex> lock(mu);
  auto it = cache->find(ca_file);
  if (it != cache->end() && it->second.mtime == mtime) return it->second.ctx;
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_client);
  PK_RETURN_IF_ERROR(ConfigureTls(*ctx, ca_file));
  (*cache)[ca_file] = Entry{mtime, ctx};
  return ctx;
}

// Binds the connection to the URL's host: the certificate must name it (a DNS name via
// SSL_set1_host, an IP literal via its iPAddress SAN; OpenSSL checks either during the
// handshake, so a mismatch fails it with X509_V_ERR_HOSTNAME_MISMATCH /
// X509_V_ERR_IP_ADDRESS_MISMATCH), and SNI carries DNS names only (RFC 6066 §3 forbids
// literal addresses there).
Status BindHost(TlsStream& stream, const std::string& host) {
  SSL* ssl_handle = stream.native_handle();
  X509_VERIFY_PARAM* param = SSL_get0_param(ssl_handle);
  X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
  beast::error_code ec;
  asio::ip::make_address(host, ec);
  if (!ec) {
    if (X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str()) != 1)
      return Status::InvalidArgument("tls: cannot verify against address '" + host + "'");
    return Status::Ok();
  }
  if (SSL_set_tlsext_host_name(ssl_handle, host.c_str()) != 1 ||
      SSL_set1_host(ssl_handle, host.c_str()) != 1)
    return Status::InvalidArgument("tls: cannot verify against host name '" + host + "'");
  return Status::Ok();
}

// Connect, (TLS handshake,) write, read: one chain for both schemes. Every step must
// finish by `deadline` and, with an idle limit, make progress within idle_ms (a stream
// that stalls between events). The body is read piece by piece into a buffer_body:
// pieces go to `on_body` when it is set and the status is 2xx (a stream), else into
// `whole` (error bodies, ordinary calls). Returns the chain's outcome (an empty
// error_code on success, also when `on_head` or `on_body` stopped it: *stopped_by then
// says which) with *step naming where it ended; nullopt when the chain never completed.
template <class Stream>
std::optional<beast::error_code> RunExchange(
    asio::io_context& ioc, Stream& stream, const tcp::resolver::results_type& endpoints,
    http::request<http::string_body>& req, beast::flat_buffer& buffer,
    http::response_parser<http::buffer_body>& parser,
    std::chrono::steady_clock::time_point deadline, int64_t idle_ms, const BodyChunkFn* on_body,
    const ResponseHeadFn* on_head, const std::function<bool()>& cancelled, std::string* whole,
    const char** stopped_by, bool* abandoned, const char** step) {
  constexpr bool kTls = std::is_same_v<Stream, TlsStream>;
  auto& tcp_layer = beast::get_lowest_layer(stream);
  std::optional<beast::error_code> result;
  auto finish = [&](beast::error_code e) { result = e; };
  auto arm = [&] {
    auto at = deadline;
    if (idle_ms > 0)
      at = std::min(at, std::chrono::steady_clock::now() + std::chrono::milliseconds(idle_ms));
    tcp_layer.expires_at(at);
  };
  char piece[16 * 1024];
  bool to_callback = false;
  std::function<void()> read_body = [&] {
    if (parser.is_done()) return finish({});
    parser.get().body().data = piece;
    parser.get().body().size = sizeof(piece);
    arm();
    // read_some, not read: a stream must be handed on as it arrives, not when 16 KiB
    // have gathered.
    http::async_read_some(stream, buffer, parser, [&](beast::error_code e, size_t) {
      if (e == http::error::need_buffer) e = {};
      if (e) return finish(e);
      const size_t got = sizeof(piece) - parser.get().body().size;
      if (got > 0) {
        if (to_callback) {
          if (!(*on_body)(std::string_view(piece, got))) {
            *stopped_by = "the body handler stopped reading";
            return finish({});
          }
        } else {
          whole->append(piece, got);
        }
      }
      read_body();
    });
  };
  auto write_then_read = [&] {
    *step = "write";
    arm();
    http::async_write(stream, req, [&](beast::error_code e, size_t) {
      if (e) return finish(e);
      *step = "read";
      arm();
      http::async_read_header(stream, buffer, parser, [&](beast::error_code e2, size_t) {
        if (e2) return finish(e2);
        const unsigned status = parser.get().result_int();
        to_callback = on_body != nullptr && status >= 200 && status <= 299;
        if (on_head != nullptr && *on_head) {
          std::vector<std::pair<std::string, std::string>> headers;
          for (const auto& f : parser.get())
            headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
          if (!(*on_head)(static_cast<int>(status), headers)) {
            *stopped_by = "the head handler refused the response";
            return finish({});
          }
        }
        read_body();
      });
    });
  };
  *step = "connect";
  arm();
  tcp_layer.async_connect(endpoints, [&](beast::error_code e, const tcp::endpoint&) {
    if (e) return finish(e);
    if constexpr (kTls) {
      *step = "handshake";
      arm();
      stream.async_handshake(ssl::stream_base::client, [&](beast::error_code e2) {
        if (e2) return finish(e2);
        write_then_read();
      });
    } else {
      write_then_read();
    }
  });
  if (!cancelled) {
    ioc.run();
    return result;
  }
  // The chain's handlers run only inside run_for, on this thread; between slices the
  // predicate is asked. Cancelling the socket's operations completes the pending one with
  // operation_aborted, which ends the chain.
  while (!ioc.stopped()) {
    ioc.run_for(std::chrono::milliseconds(kCancelPollMs));
    if (ioc.stopped() || result) break;
    if (cancelled()) {
      *abandoned = true;
      beast::error_code ignored;
      tcp_layer.socket().cancel(ignored);
      tcp_layer.socket().close(ignored);
      ioc.run();
      break;
    }
  }
  return result;
}

}  // namespace

Status CheckCaFile(const std::string& ca_file) {
  try {
    return SharedTlsContext(ca_file).status();
  } catch (const std::exception& e) {
    return Status::InvalidArgument("ca_file '" + ca_file + "': " + e.what());
  }
}

namespace {

Result<FetchResponse> Fetch(const FetchRequest& request, const BodyChunkFn* on_body,
                            const ResponseHeadFn* on_head) {
  PK_ASSIGN_OR_RETURN(Url u, ParseUrl(request.url));
  try {
    asio::io_context ioc;
    tcp::resolver resolver(ioc);
    const auto deadline =
        std::chrono::steady_clock::now() + std::chrono::milliseconds(request.timeout_ms);
    beast::error_code ec;
    auto endpoints = resolver.resolve(u.host, u.port, ec);
    if (ec) return Status::IOError("unreachable: cannot resolve '" + u.host + "': " + ec.message());

    http::request<http::string_body> req;
    const http::verb verb = http::string_to_verb(request.method);
    if (verb == http::verb::unknown)
      return Status::InvalidArgument("unknown HTTP method '" + request.method + "'");
    req.method(verb);
    req.target(u.path);
    req.version(11);
    // RFC 9110 §7.2: the port may be left out when it is the scheme's default; IPv6
    // literals keep their brackets.
    const std::string host = u.host.find(':') != std::string::npos ? "[" + u.host + "]" : u.host;
    const bool default_port = u.port == (u.tls ? "443" : "80");
    req.set(http::field::host, default_port ? host : host + ":" + u.port);
    req.set(http::field::user_agent, "pocket");
    for (const auto& [k, v] : request.headers) req.set(k, v);
    if (!request.body.empty() || verb == http::verb::post) {
      req.body() = request.body;
      req.prepare_payload();
    }

    beast::flat_buffer buffer;
    // Beast sizes each socket read by the buffer's free capacity (at least 512 bytes, at most
    // 64 KiB): without room reserved, a large body arrived 512 bytes per recvmsg (a 128 MB
    // blob: 262,000 reads, timer re-arms and pieces; 2.2 s against curl's 0.3 s).
    buffer.reserve(64 * 1024);
    http::response_parser<http::buffer_body> parser;
    parser.body_limit(request.max_response_bytes);
    parser.header_limit(64 * 1024);
    // A HEAD response carries the Content-Length of the body it does not send (a registry's
    // blob check): without skip the parser would wait for that body until the deadline.
    if (verb == http::verb::head) parser.skip(true);
    const char* step = "connect";
    FetchResponse out;
    const char* stopped_by = nullptr;  // set when a handler ended the exchange early
    bool abandoned = false;
    std::optional<beast::error_code> failure;
    std::shared_ptr<ssl::context> tls_ctx;
    std::optional<TlsStream> tls_stream;
    std::optional<beast::tcp_stream> tcp_stream;
    if (u.tls) {
      auto shared = SharedTlsContext(request.ca_file);
      if (!shared.ok())
        return Status::IOError("tls: " + request.method + " " + request.url + ": " +
                               shared.status().message());
      tls_ctx = std::move(*shared);
      tls_stream.emplace(ioc, *tls_ctx);
      if (Status s = BindHost(*tls_stream, u.host); !s.ok())
        return Status::IOError("tls: " + request.method + " " + request.url + ": " + s.message());
      failure = RunExchange(ioc, *tls_stream, endpoints, req, buffer, parser, deadline,
                            request.idle_timeout_ms, on_body, on_head, request.cancelled, &out.body,
                            &stopped_by, &abandoned, &step);
    } else {
      tcp_stream.emplace(ioc);
      failure = RunExchange(ioc, *tcp_stream, endpoints, req, buffer, parser, deadline,
                            request.idle_timeout_ms, on_body, on_head, request.cancelled, &out.body,
                            &stopped_by, &abandoned, &step);
    }
    if (abandoned)
      return Status::Cancelled("cancelled: " + request.method + " " + request.url +
                               ": the caller stopped waiting (" + step + ")");
    if (!failure) return Status::Internal("http client: no completion");
    if (*failure) {
      std::string kind = Classify(*failure);
      std::string reason = failure->message();
      if (tls_stream && kind == "tls") {
        // The handshake error alone says "certificate verify failed"; OpenSSL keeps why.
        const long verify = SSL_get_verify_result(tls_stream->native_handle());
        if (verify != X509_V_OK) {
          kind = "tls_verify";
          reason = "certificate refused: " + std::string(X509_verify_cert_error_string(verify));
        } else {
          reason = std::string("TLS ") + step + " failed: " + reason;
        }
      }
      return Status::IOError(kind + ": " + request.method + " " + request.url + ": " + reason);
    }
    auto& res = parser.get();
    out.status = static_cast<int>(res.result_int());
    for (const auto& f : res)
      out.headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
    // No TLS close_notify exchange: the response was framed by Content-Length or chunked
    // encoding, so it is complete, and waiting for the peer's close_notify would cost a
    // round trip that many servers never answer.
    auto& socket = tls_stream ? beast::get_lowest_layer(*tls_stream).socket()
                              : tcp_stream->socket();
    socket.shutdown(tcp::socket::shutdown_both, ec);
    if (stopped_by != nullptr)
      return Status::Cancelled("cancelled: " + request.method + " " + request.url + ": " +
                               stopped_by);
    return out;
  } catch (const std::exception& e) {
    return Status::IOError("bad_response: " + request.url + ": " + e.what());
  }
}

}  // namespace

Result<FetchResponse> HttpFetch(const FetchRequest& request) {
  return Fetch(request, nullptr, nullptr);
}

Result<FetchResponse> HttpFetchStream(const FetchRequest& request, const BodyChunkFn& on_body,
                                      const ResponseHeadFn& on_head) {
  return Fetch(request, &on_body, &on_head);
}

}  // namespace pocket::net
