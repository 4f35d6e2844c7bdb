// WsClient (ws_client.h): a ws:// WebSocket client connection, binary messages only.
#include "net/ws_client.h"

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>

#include <deque>

namespace pocket::net {

using Bytes = std::vector<uint8_t>;

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;

Result<WsUrl> ParseWsUrl(std::string_view url) {
  constexpr std::string_view kScheme = "ws://";
  if (url.substr(0, kScheme.size()) != kScheme) {
    return Status::InvalidArgument("expected a ws://HOST:PORT/ROOM url, got '" + std::string(url) +
                                   "'");
  }
  std::string_view rest = url.substr(kScheme.size());
  const size_t slash = rest.find_first_of("/?");
  std::string_view authority = rest.substr(0, slash);
  WsUrl out;
  if (slash != std::string_view::npos) {
    out.target = std::string(rest.substr(slash));
    if (out.target[0] == '?') out.target = "/" + out.target;
  }
  const size_t colon = authority.rfind(':');
  if (colon != std::string_view::npos && authority.find(']') == std::string_view::npos) {
    out.host = std::string(authority.substr(0, colon));
    out.port = std::string(authority.substr(colon + 1));
  } else {
    out.host = std::string(authority);
  }
  if (out.host.empty() || out.port.empty() ||
      out.port.find_first_not_of("0123456789") != std::string::npos) {
    return Status::InvalidArgument("bad host or port in '" + std::string(url) + "'");
  }
  return out;
}

class WsClient::Impl : public std::enable_shared_from_this<WsClient::Impl> {
 public:
  Impl(asio::io_context& io, Handlers handlers)
      : io_(io), handlers_(std::move(handlers)), resolver_(io) {}

  void Connect(const WsUrl& url) {
    if (state_ != State::kIdle) return;  // one connection per client object
    url_ = url;
    ws_.emplace(io_);
    state_ = State::kConnecting;
    resolver_.async_resolve(url.host, url.port,
                            [self = shared_from_this()](beast::error_code ec,
                                                        tcp::resolver::results_type results) {
                              self->OnResolve(ec, results);
                            });
  }

  void Send(Bytes m) {
    if (state_ != State::kOpen) return;
    queue_.push_back(std::move(m));
    if (!writing_) DoWrite();
  }

  void Close() {
    if (state_ == State::kConnecting) {
      resolver_.cancel();
      beast::error_code ignored;
      beast::get_lowest_layer(*ws_).socket().close(ignored);
      return;
    }
    if (state_ != State::kOpen) return;
    state_ = State::kClosing;
    if (!writing_) StartClose();
  }

  bool open() const { return state_ == State::kOpen; }
  size_t queued() const { return queue_.size(); }

 private:
  enum class State { kIdle, kConnecting, kOpen, kClosing, kClosed };

  void OnResolve(beast::error_code ec, const tcp::resolver::results_type& results) {
    if (ec) return Fail("resolve " + url_.host, ec);
    beast::get_lowest_layer(*ws_).expires_after(std::chrono::seconds(10));
    beast::get_lowest_layer(*ws_).async_connect(
        results, [self = shared_from_this()](beast::error_code e, const tcp::endpoint&) {
          self->OnConnect(e);
        });
  }

  void OnConnect(beast::error_code ec) {
    if (ec) return Fail("connect " + url_.host + ":" + url_.port, ec);
    beast::get_lowest_layer(*ws_).expires_never();
    websocket::stream_base::timeout t = websocket::stream_base::timeout::suggested(
        beast::role_type::client);
    ws_->set_option(t);
    ws_->binary(true);
    ws_->read_message_max(64u << 20);
    ws_->async_handshake(url_.host + ":" + url_.port, url_.target,
                         [self = shared_from_this()](beast::error_code e) {
                           self->OnHandshake(e);
                         });
  }

  void OnHandshake(beast::error_code ec) {
    if (ec) return Fail("handshake with " + url_.host + ":" + url_.port + url_.target, ec);
    if (state_ != State::kConnecting) return;
    state_ = State::kOpen;
    DoRead();
    if (handlers_.on_open) handlers_.on_open();
  }

  void DoRead() {
    ws_->async_read(buffer_, [self = shared_from_this()](beast::error_code ec, size_t) {
      self->OnRead(ec);
    });
  }

  void OnRead(beast::error_code ec) {
    if (ec) return Fail("read", ec);
    auto data = buffer_.cdata();
    Bytes msg(static_cast<const uint8_t*>(data.data()),
              static_cast<const uint8_t*>(data.data()) + data.size());
    buffer_.consume(buffer_.size());
    if (handlers_.on_message && state_ == State::kOpen) handlers_.on_message(msg);
    if (state_ == State::kOpen || state_ == State::kClosing) DoRead();
  }

  void DoWrite() {
    if (queue_.empty()) return;
    writing_ = true;
    inflight_ = std::move(queue_.front());
    queue_.pop_front();
    ws_->async_write(asio::buffer(inflight_), [self = shared_from_this()](beast::error_code ec,
                                                                         size_t) {
      self->writing_ = false;
      if (ec) return self->Fail("write", ec);
      if (!self->queue_.empty()) return self->DoWrite();
      if (self->state_ == State::kClosing) self->StartClose();
    });
  }

  void StartClose() {
    ws_->async_close(websocket::close_code::normal,
                     [self = shared_from_this()](beast::error_code) {
                       self->Fail("closed", {});
                     });
  }

  void Fail(const std::string& what, beast::error_code ec) {
    if (state_ == State::kClosed || state_ == State::kIdle) return;
    const bool clean = !ec || ec == websocket::error::closed;
    int code = 0;
    if (ws_ && ec == websocket::error::closed) code = ws_->reason().code;
    state_ = State::kClosed;
    queue_.clear();
    beast::error_code ignored;
    beast::get_lowest_layer(*ws_).socket().close(ignored);
    if (handlers_.on_close) {
      handlers_.on_close(clean ? Status::Ok() : Status::IOError("websocket: " + what + ": " +
                                                                ec.message()),
                         code);
    }
  }

  asio::io_context& io_;
  Handlers handlers_;
  tcp::resolver resolver_;
  WsUrl url_;
  std::optional<websocket::stream<beast::tcp_stream>> ws_;
  beast::flat_buffer buffer_;
  std::deque<Bytes> queue_;
  Bytes inflight_;
  bool writing_ = false;
  State state_ = State::kIdle;
};

std::shared_ptr<WsClient> WsClient::Create(asio::io_context& io, Handlers handlers) {
  return std::shared_ptr<WsClient>(new WsClient(std::make_shared<Impl>(io, std::move(handlers))));
}
WsClient::~WsClient() = default;
void WsClient::Connect(const WsUrl& url) { impl_->Connect(url); }
void WsClient::Send(Bytes message) { impl_->Send(std::move(message)); }
void WsClient::Close() { impl_->Close(); }
bool WsClient::open() const { return impl_->open(); }
size_t WsClient::queued_messages() const { return impl_->queued(); }

}  // namespace pocket::net
