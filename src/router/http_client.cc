#include "router/http_client.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <algorithm>
#include <chrono>
#include <optional>

namespace pocket::router {
namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

Result<Url> ParseUrl(const std::string& url) {
  constexpr std::string_view kHttp = "http://";
  if (url.rfind("https://", 0) == 0)
    return Status::NotSupported("'" + url + "': https is not supported yet; use http:// (e.g. a "
                                "TLS-terminating proxy on loopback)");
  if (url.rfind(kHttp, 0) != 0) return Status::InvalidArgument("'" + url + "': expected http://");
  std::string rest = url.substr(kHttp.size());
  Url u;
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

std::string HttpResponse::Header(const std::string& name) const {
  for (const auto& [k, v] : headers) {
    if (k.size() == name.size() &&
        std::equal(k.begin(), k.end(), name.begin(),
                   [](char a, char b) { return std::tolower(a) == std::tolower(b); }))
      return v;
  }
  return "";
}

namespace {

std::string Classify(const beast::error_code& ec) {
  if (ec == beast::error::timeout || ec == net::error::operation_aborted) return "timeout";
  if (ec == net::error::connection_refused || ec == net::error::host_unreachable ||
      ec == net::error::network_unreachable || ec == net::error::host_not_found)
    return "unreachable";
  if (ec == net::error::connection_reset || ec == http::error::end_of_stream ||
      ec == net::error::eof || ec == net::error::broken_pipe || ec == http::error::partial_message)
    return "reset";
  return "bad_response";
}

}  // namespace

Result<HttpResponse> HttpFetch(const HttpRequest& request) {
  PK_ASSIGN_OR_RETURN(Url u, ParseUrl(request.url));
  try {
    net::io_context ioc;
    tcp::resolver resolver(ioc);
    beast::tcp_stream stream(ioc);
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
    req.set(http::field::host, u.host + ":" + u.port);
    req.set(http::field::user_agent, "pocket");
    for (const auto& [k, v] : request.headers) req.set(k, v);
    if (!request.body.empty() || verb == http::verb::post) {
      req.body() = request.body;
      req.prepare_payload();
    }

    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.body_limit(request.max_response_bytes);
    parser.header_limit(64 * 1024);
    std::optional<beast::error_code> result;
    auto finish = [&](beast::error_code e) { result = e; };

    stream.expires_at(deadline);
    stream.async_connect(endpoints, [&](beast::error_code e, const tcp::endpoint&) {
      if (e) return finish(e);
      stream.expires_at(deadline);
      http::async_write(stream, req, [&](beast::error_code e2, size_t) {
        if (e2) return finish(e2);
        stream.expires_at(deadline);
        http::async_read(stream, buffer, parser,
                         [&](beast::error_code e3, size_t) { finish(e3); });
      });
    });
    ioc.run();
    if (!result) return Status::Internal("http client: no completion");
    if (*result) {
      return Status::IOError(Classify(*result) + ": " + request.method + " " + request.url +
                             ": " + result->message());
    }
    HttpResponse out;
    auto& res = parser.get();
    out.status = static_cast<int>(res.result_int());
    out.body = std::move(res.body());
    for (const auto& f : res) out.headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
    stream.socket().shutdown(tcp::socket::shutdown_both, ec);
    return out;
  } catch (const std::exception& e) {
    return Status::IOError("bad_response: " + request.url + ": " + e.what());
  }
}

}  // namespace pocket::router
