// WsClient: a WebSocket client connection for y-protocols peers written in C++ (the agent,
// the fan-out benchmark, tests). Binary messages only. Plain ws:// (no TLS).
// Thread safety: every call and every handler runs on the io_context's thread (one thread).
#pragma once

#include <boost/asio/io_context.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace pocket::net {

// ws://host:port/path?query. InvalidArgument for other schemes or a missing host.
struct WsUrl {
  std::string host;
  std::string port = "80";
  std::string target = "/";  // path and query, as sent in the request line
};
Result<WsUrl> ParseWsUrl(std::string_view url);

class WsClient : public std::enable_shared_from_this<WsClient> {
 public:
  struct Handlers {
    std::function<void()> on_open;
    std::function<void(std::span<const uint8_t> message)> on_message;
    // Called once per Connect() that fails or whose connection ends; `code` is the
    // WebSocket close code when the peer closed cleanly (0 otherwise).
    std::function<void(const Status& why, int code)> on_close;
  };
  static std::shared_ptr<WsClient> Create(boost::asio::io_context& io, Handlers handlers);
  ~WsClient();

  // Resolves, connects (10 s timeout) and performs the handshake. One connection per
  // WsClient: later calls are ignored; create a new client to reconnect.
  void Connect(const WsUrl& url);
  // Queues a binary message; dropped when not open.
  void Send(std::vector<uint8_t> message);
  // Starts the close handshake (or aborts a connect in progress).
  void Close();
  bool open() const;
  size_t queued_messages() const;

  class Impl;

 private:
  explicit WsClient(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<Impl> impl_;
};

}  // namespace pocket::net
