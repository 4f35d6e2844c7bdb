// The HTTP/1.1 server: accepting under the connection limits (net/listener.h), one
// Connection per socket (read deadlines, keep-alive, the watch for a client that left, the
// write queue), ExchangeImpl (what a handler answers through) and Stop().
#include "net/http_server.h"

#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket/rfc6455.hpp>

#include <algorithm>
#include <chrono>
#include <deque>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include "base/log.h"
#include "net/listener.h"

namespace pocket::net {
namespace beast = boost::beast;
namespace http = beast::http;
namespace asio = boost::asio;
using tcp = asio::ip::tcp;

std::string HttpRequest::Header(const std::string& lower_name) const {
  for (const auto& [k, v] : headers)
    if (k == lower_name) return v;
  return "";
}

namespace {

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

std::string Head(int status, const Headers& headers, bool keep_alive,
                 std::optional<size_t> content_length, const std::string& server_header) {
  std::string h = "HTTP/1.1 " + std::to_string(status) + " " +
                  std::string(http::obsolete_reason(static_cast<http::status>(status))) + "\r\n";
  if (!server_header.empty()) h += "Server: " + server_header + "\r\n";
  for (const auto& [k, v] : headers) {
    // Header values come from our own code, but never let one smuggle a line break.
    if (k.find_first_of("\r\n") != std::string::npos || v.find_first_of("\r\n") != std::string::npos)
      continue;
    h += k + ": " + v + "\r\n";
  }
  if (content_length) h += "Content-Length: " + std::to_string(*content_length) + "\r\n";
  else h += "Transfer-Encoding: chunked\r\n";
  h += keep_alive ? "Connection: keep-alive\r\n" : "Connection: close\r\n";
  return h + "\r\n";
}

std::string Chunk(const std::string& data) {
  char len[32];
  std::snprintf(len, sizeof(len), "%zx\r\n", data.size());
  return len + data + "\r\n";
}

}  // namespace

class Connection;

struct HttpServer::Impl {
  // First, so it is destroyed last: handlers it still holds, and the upgrade handler's
  // service (a collab room service owning strands of this io_context), must go before
  // its strand service does. Null when the caller's io_context is used.
  std::unique_ptr<asio::io_context> own_ioc;
  asio::io_context& ioc;
  // Keeps ioc.run() going while no socket is open: an exchange that a worker releases
  // after its connection closed still posts to the connection's strand.
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
  HttpOptions opts;
  Handler handler;
  ErrorBodyFn error_body;
  std::string upgrade_prefix;
  UpgradeHandler upgrade;
  // The acceptor, its back-off timer and AcceptBackoff live on one strand (Stop() posts
  // the close there).
  asio::strand<asio::io_context::executor_type> accept_strand{asio::make_strand(ioc)};
  tcp::acceptor acceptor{accept_strand};
  asio::steady_timer accept_timer{accept_strand};
  AcceptBackoff backoff;
  ConnectionLimiter limiter;
  Refuser refuser;
  std::vector<std::thread> threads;
  bool started = false;  // Start() succeeded
  std::atomic<bool> stopping{false};
  std::atomic<uint64_t> refused_client{0}, refused_global{0}, first_byte_timeouts{0};
  std::atomic<uint64_t> accept_errors{0}, accept_pauses{0};
  std::mutex mu;
  std::set<std::shared_ptr<Connection>> live;  // for Stop(); removed on close
  // `external` null: an own io_context for opts.io_threads threads.
  Impl(asio::io_context* external, const HttpOptions& o)
      : own_ioc(external ? nullptr : std::make_unique<asio::io_context>(std::max(1, o.io_threads))),
        ioc(external ? *external : *own_ioc),
        opts(o),
        limiter({o.max_connections, o.max_connections_per_client}) {}
  std::string Head(int status, const Headers& headers, bool keep_alive,
                   std::optional<size_t> content_length) const {
    return net::Head(status, headers, keep_alive, content_length, opts.server_header);
  }
  void Accept();
  void OnAcceptError(const beast::error_code& ec);
  void Admit(tcp::socket socket);
};

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  // `ticket` holds the connection's place under the limits (ConnectionLimiter).
  Connection(tcp::socket socket, HttpServer::Impl* impl, std::shared_ptr<void> ticket)
      : stream_(std::move(socket)), read_timer_(stream_.get_executor()), impl_(impl),
        ticket_(std::move(ticket)) {}

  void Start() {
    auto self = shared_from_this();
    asio::dispatch(stream_.get_executor(), [self] { self->DoRead(); });
  }
  void CloseFromServer() {
    auto self = shared_from_this();
    asio::post(stream_.get_executor(), [self] { self->Close(); });
  }

  // --- called by ExchangeImpl through the strand ---
  void QueueWrite(std::string bytes, bool last) {
    auto self = shared_from_this();
    asio::post(stream_.get_executor(), [self, b = std::move(bytes), last]() mutable {
      if (self->closed_) return;
      self->outq_.push_back(std::move(b));
      if (last) self->finishing_ = true;
      if (!self->writing_) self->DoWrite();
    });
  }
  std::string ResponseHead(int status, const Headers& headers,
                           std::optional<size_t> content_length) const {
    return impl_->Head(status, headers, keep_alive_, content_length);
  }
  std::atomic<bool> cancelled_{false};

 private:
  // Waits for the first byte of the next request (unless a pipelined one is buffered): on
  // a new connection for first_byte_timeout_ms, between keep-alive requests for
  // idle_timeout_ms; then closes silently. The request itself then has read_timeout_ms.
  void DoRead() {
    if (closed_) return;
    if (buffer_.size() > 0) return ReadRequest();
    const bool first = requests_ == 0;
    stream_.expires_after(std::chrono::milliseconds(first ? impl_->opts.first_byte_timeout_ms
                                                          : impl_->opts.idle_timeout_ms));
    stream_.async_read_some(buffer_.prepare(4096), [self = shared_from_this(), first](
                                                       beast::error_code ec, size_t n) {
      self->stream_.expires_never();
      if (ec) {
        if (ec == beast::error::timeout && first) ++self->impl_->first_byte_timeouts;
        return self->Close();
      }
      self->buffer_.commit(n);
      self->ReadRequest();
    });
  }

  void ReadRequest() {
    if (closed_) return;
    parser_.emplace();
    parser_->header_limit(impl_->opts.max_header_bytes);
    parser_->body_limit(impl_->opts.max_body_bytes);
    // Our own timer rather than tcp_stream's expiry: that one closes the socket, and a
    // slow client should still receive its 408.
    stream_.expires_never();
    reading_ = true;
    read_timer_.expires_after(std::chrono::milliseconds(impl_->opts.read_timeout_ms));
    read_timer_.async_wait([self = shared_from_this(), gen = ++read_gen_](beast::error_code ec) {
      // A completion queued before OnRead cancelled the timer belongs to an old read.
      if (ec || !self->reading_ || gen != self->read_gen_) return;
      self->read_timed_out_ = true;
      beast::error_code ignored;
      self->stream_.socket().cancel(ignored);
    });
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](beast::error_code ec, size_t) { self->OnRead(ec); });
  }

  void OnRead(beast::error_code ec) {
    reading_ = false;
    read_timer_.cancel();
    if (read_timed_out_) {
      read_timed_out_ = false;
      ec = beast::error::timeout;
    }
    if (ec == http::error::end_of_stream) return Close();
    if (ec == beast::error::timeout) {
      if (parser_->got_some() || buffer_.size() > 0)
        return SendError(408, "request not received within " +
                                  std::to_string(impl_->opts.read_timeout_ms) + " ms");
      return Close();
    }
    if (ec == http::error::body_limit)
      return SendError(413, "request body over the limit of " +
                                std::to_string(impl_->opts.max_body_bytes) + " bytes");
    if (ec == http::error::header_limit)
      return SendError(431, "request headers over the limit of " +
                                std::to_string(impl_->opts.max_header_bytes) + " bytes");
    if (ec) {
      if (parser_->got_some() && ec != asio::error::connection_reset && ec != asio::error::eof)
        return SendError(400, "malformed HTTP request: " + ec.message());
      return Close();
    }
    ++requests_;
    auto& msg = parser_->get();
    if (impl_->upgrade && beast::websocket::is_upgrade(msg) &&
        std::string(msg.target()).rfind(impl_->upgrade_prefix, 0) == 0) {
      // Hand the connection over; this object is done with it.
      auto m = parser_->release();
      m.target(std::string(m.target()).substr(impl_->upgrade_prefix.size() - 1));
      closed_ = true;
      {
        std::lock_guard<std::mutex> l(impl_->mu);
        impl_->live.erase(shared_from_this());
      }
      impl_->upgrade(std::move(stream_), std::move(m), std::move(ticket_));
      return;
    }
    HttpRequest req;
    req.method = std::string(msg.method_string());
    req.target = std::string(msg.target());
    req.path = req.target.substr(0, req.target.find('?'));
    for (const auto& f : msg) req.headers.emplace_back(Lower(std::string(f.name_string())), std::string(f.value()));
    req.body = std::move(msg.body());
    beast::error_code ignored;
    auto ep = stream_.socket().remote_endpoint(ignored);
    req.remote = ignored ? "" : ep.address().to_string();
    keep_alive_ = msg.keep_alive() && !impl_->stopping;
    handling_ = true;
    stream_.expires_never();
    StartWatch();
    impl_->handler(std::move(req), MakeExchange());
  }

  // Reads while the handler works: EOF or a reset means the client has gone.
  void StartWatch() {
    watching_ = true;
    auto buf = buffer_.prepare(4096);
    stream_.socket().async_read_some(
        buf, [self = shared_from_this()](beast::error_code ec, size_t n) { self->OnWatch(ec, n); });
  }
  void OnWatch(beast::error_code ec, size_t n) {
    watching_ = false;
    if (!ec) {
      buffer_.commit(n);  // a pipelined next request: keep it for DoRead
      if (want_next_) {
        want_next_ = false;
        DoRead();
      }
      return;
    }
    if (ec == asio::error::operation_aborted && want_next_) {
      want_next_ = false;
      return DoRead();
    }
    if (handling_) cancelled_ = true;
    Close();
  }

  void DoWrite() {
    writing_ = true;
    stream_.expires_after(std::chrono::milliseconds(impl_->opts.write_timeout_ms));
    asio::async_write(
        stream_, asio::buffer(outq_.front()),
        [self = shared_from_this()](beast::error_code ec, size_t) { self->OnWrite(ec); });
  }
  void OnWrite(beast::error_code ec) {
    if (ec) {
      cancelled_ = true;
      return Close();
    }
    outq_.pop_front();
    if (!outq_.empty()) return DoWrite();
    writing_ = false;
    stream_.expires_never();
    if (finishing_) Finish();
  }
  void Finish() {
    finishing_ = false;
    handling_ = false;
    if (!keep_alive_ || close_after_) {
      beast::error_code ignored;
      stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
      return Close();
    }
    if (watching_) {
      want_next_ = true;
      beast::error_code ignored;
      stream_.socket().cancel(ignored);
    } else {
      DoRead();
    }
  }

  void SendError(int status, const std::string& message) {
    keep_alive_ = false;
    close_after_ = true;
    const std::string body = impl_->error_body ? impl_->error_body(status, message) : message;
    Headers h{{"Content-Type", impl_->opts.error_content_type}};
    outq_.push_back(impl_->Head(status, h, false, body.size()) + body);
    finishing_ = true;
    if (!writing_) DoWrite();
  }

  void Close() {
    if (closed_) return;
    closed_ = true;
    cancelled_ = true;
    beast::error_code ignored;
    read_timer_.cancel();
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.close();
    std::lock_guard<std::mutex> l(impl_->mu);
    impl_->live.erase(shared_from_this());
  }

  std::shared_ptr<Exchange> MakeExchange();

  beast::tcp_stream stream_;
  asio::steady_timer read_timer_;
  HttpServer::Impl* impl_;
  std::shared_ptr<void> ticket_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::deque<std::string> outq_;
  bool writing_ = false, finishing_ = false, handling_ = false, watching_ = false;
  bool want_next_ = false, keep_alive_ = true, close_after_ = false, closed_ = false;
  bool reading_ = false, read_timed_out_ = false;
  uint64_t read_gen_ = 0;
  uint64_t requests_ = 0;  // requests read on this connection
};

namespace {

class ExchangeImpl : public Exchange {
 public:
  explicit ExchangeImpl(std::shared_ptr<Connection> c) : conn_(std::move(c)) {}
  ~ExchangeImpl() override {
    // A handler that forgot to answer must not leave the client hanging.
    if (!done_) Respond(500, {{"Content-Type", "text/plain"}}, "internal error: no response");
  }
  void Respond(int status, Headers headers, std::string body) override {
    std::lock_guard<std::mutex> l(mu_);
    if (done_ || started_) return;
    done_ = true;
    conn_->QueueWrite(conn_->ResponseHead(status, headers, body.size()) + body, true);
  }
  void StartStream(int status, Headers headers) override {
    std::lock_guard<std::mutex> l(mu_);
    if (done_ || started_) return;
    started_ = true;
    conn_->QueueWrite(conn_->ResponseHead(status, headers, std::nullopt), false);
  }
  bool Write(std::string data) override {
    std::lock_guard<std::mutex> l(mu_);
    if (!started_ || done_ || conn_->cancelled_) return false;
    if (!data.empty()) conn_->QueueWrite(Chunk(data), false);
    return true;
  }
  void End() override {
    std::lock_guard<std::mutex> l(mu_);
    if (!started_ || done_) return;
    done_ = true;
    conn_->QueueWrite("0\r\n\r\n", true);
  }
  bool cancelled() const override { return conn_->cancelled_; }

 private:
  std::mutex mu_;
  std::shared_ptr<Connection> conn_;
  bool started_ = false, done_ = false;
};

}  // namespace

std::shared_ptr<Exchange> Connection::MakeExchange() {
  return std::make_shared<ExchangeImpl>(shared_from_this());
}

void HttpServer::Impl::Accept() {
  acceptor.async_accept(asio::make_strand(ioc), [this](beast::error_code ec, tcp::socket socket) {
    if (stopping || ec == asio::error::operation_aborted) return;
    if (ec && !IsPerConnectionAcceptError(ec)) return OnAcceptError(ec);
    if (backoff.in_episode()) {
      int64_t ms = 0;
      const uint64_t n = backoff.OnSuccess(&ms);
      if (LogEnabled(LogLevel::kWarning))
        Log(LogLevel::kWarning, AcceptBackoff::ResumedMessage(opts.name, n, ms));
    }
    if (!ec) Admit(std::move(socket));
    Accept();
  });
}

// Out of file descriptors (EMFILE/ENFILE), buffers or memory, the pending connection stays
// queued and accept() fails again at once: retrying at once would spin a core. Pause with
// a growing delay instead; log the first failure of an episode and its end only.
void HttpServer::Impl::OnAcceptError(const beast::error_code& ec) {
  ++accept_errors;
  bool first = false;
  const int64_t delay_ms = backoff.OnFailure(&first);
  if (first) {
    ++accept_pauses;
    if (LogEnabled(LogLevel::kWarning))
      Log(LogLevel::kWarning, AcceptBackoff::PausedMessage(opts.name, ec, delay_ms));
  }
  accept_timer.expires_after(std::chrono::milliseconds(delay_ms));
  accept_timer.async_wait([this](beast::error_code tec) {
    if (tec || stopping) return;
    Accept();
  });
}

void HttpServer::Impl::Admit(tcp::socket socket) {
  beast::error_code ec;
  const auto ep = socket.remote_endpoint(ec);
  if (ec) return;  // already gone
  const std::string address = ep.address().to_string();
  auto admission = limiter.Admit(ClientKey(address));
  // A streamed token is one small write; Nagle's algorithm would hold it back until the
  // client acknowledges the previous one.
  socket.set_option(tcp::no_delay(true), ec);
  if (admission.verdict != ConnectionLimiter::Verdict::kAdmitted) {
    const bool per_client = admission.verdict == ConnectionLimiter::Verdict::kOverClientLimit;
    ++(per_client ? refused_client : refused_global);
    const int status = per_client ? 429 : 503;
    const std::string message =
        per_client ? "too many open connections from " + address + ": the limit is " +
                         std::to_string(opts.max_connections_per_client) + " per client"
                   : "too many open connections: the server's limit is " +
                         std::to_string(opts.max_connections);
    const std::string body = error_body ? error_body(status, message) : message;
    refuser.Refuse(std::move(socket),
                   Head(status, {{"Content-Type", opts.error_content_type}, {"Retry-After", "1"}},
                        false, body.size()) +
                       body);
    return;
  }
  auto c = std::make_shared<Connection>(std::move(socket), this, std::move(admission.ticket));
  {
    std::lock_guard<std::mutex> l(mu);
    live.insert(c);
  }
  c->Start();
}

HttpServer::HttpServer(HttpOptions options, Handler handler, ErrorBodyFn error_body)
    : impl_(std::make_unique<Impl>(nullptr, options)) {
  impl_->handler = std::move(handler);
  impl_->error_body = std::move(error_body);
}

HttpServer::HttpServer(asio::io_context& io, HttpOptions options, Handler handler,
                       ErrorBodyFn error_body)
    : impl_(std::make_unique<Impl>(&io, options)) {
  impl_->handler = std::move(handler);
  impl_->error_body = std::move(error_body);
}

HttpServer::~HttpServer() { Stop(); }

void HttpServer::SetUpgradeHandler(std::string path_prefix, UpgradeHandler handler) {
  impl_->upgrade_prefix = std::move(path_prefix);
  impl_->upgrade = std::move(handler);
}

asio::io_context& HttpServer::io_context() { return impl_->ioc; }

Status HttpServer::Start() {
  const auto& o = impl_->opts;
  beast::error_code ec;
  auto addr = asio::ip::make_address(o.host, ec);
  if (ec) return Status::InvalidArgument("--host '" + o.host + "' is not an IP address");
  tcp::endpoint ep(addr, o.port);
  const std::string where = o.host + ":" + std::to_string(o.port);
  impl_->acceptor.open(ep.protocol(), ec);
  if (!ec) impl_->acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) impl_->acceptor.bind(ep, ec);
  if (!ec) impl_->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return Status::IOError("cannot listen on " + where + ": " + ec.message());
  bound_port_ = impl_->acceptor.local_endpoint(ec).port();
  impl_->started = true;
  asio::dispatch(impl_->accept_strand, [impl = impl_.get()] { impl->Accept(); });
  if (!impl_->own_ioc) return Status::Ok();
  impl_->work.emplace(impl_->ioc.get_executor());
  for (int i = 0; i < std::max(1, o.io_threads); ++i)
    impl_->threads.emplace_back([this] { impl_->ioc.run(); });
  return Status::Ok();
}

void HttpServer::Stop() {
  if (!impl_ || !impl_->started || impl_->stopping.exchange(true)) return;
  asio::post(impl_->accept_strand, [impl = impl_.get()] {
    beast::error_code ignored;
    impl->acceptor.close(ignored);
    impl->accept_timer.cancel();
  });
  if (!impl_->own_ioc) {
    // The caller runs the io_context: close what is open and let its run() drain.
    std::vector<std::shared_ptr<Connection>> conns;
    {
      std::lock_guard<std::mutex> l(impl_->mu);
      conns.assign(impl_->live.begin(), impl_->live.end());
    }
    for (auto& c : conns) c->CloseFromServer();
    return;
  }
  // Handlers still holding an exchange see it cancelled and finish soon; give them a
  // bounded time before the I/O threads go. Connections accepted while this started are
  // closed on the next round.
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(impl_->opts.shutdown_grace_ms);
  do {
    std::vector<std::shared_ptr<Connection>> conns;
    {
      std::lock_guard<std::mutex> l(impl_->mu);
      conns.assign(impl_->live.begin(), impl_->live.end());
    }
    for (auto& c : conns) c->CloseFromServer();
    conns.clear();
    if (impl_->limiter.open() == 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  } while (std::chrono::steady_clock::now() < deadline);
  impl_->work.reset();
  impl_->ioc.stop();
  for (auto& t : impl_->threads) t.join();
  impl_->threads.clear();
}

int HttpServer::open_connections() const { return impl_->limiter.open(); }

HttpStats HttpServer::stats() const {
  HttpStats s;
  s.open_connections = impl_->limiter.open();
  s.refused_client_limit = impl_->refused_client.load();
  s.refused_global_limit = impl_->refused_global.load();
  s.first_byte_timeouts = impl_->first_byte_timeouts.load();
  s.accept_errors = impl_->accept_errors.load();
  s.accept_pauses = impl_->accept_pauses.load();
  return s;
}

}  // namespace pocket::net
