#include "sync/agent.h"

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include <atomic>
#include <optional>
#include <random>
#include <thread>

#include <nlohmann/json.hpp>

#include "base/log.h"
#include "crdt/doc.h"
#include "net/ws_client.h"
#include "sync/awareness.h"
#include "sync/protocol.h"

namespace pocket::sync {

namespace asio = boost::asio;

size_t Utf16Length(std::string_view s) {
  size_t n = 0;
  for (unsigned char c : s) {
    if ((c & 0xC0) != 0x80) n += c >= 0xF0 ? 2 : 1;
  }
  return n;
}

Status ScriptedGenerator::Generate(const std::string& /*request*/,
                                   const std::function<bool(std::string_view)>& on_text) {
  size_t pos = 0;
  while (pos < text_.size()) {
    size_t end = text_.find(' ', pos);
    end = end == std::string::npos ? text_.size() : end + 1;
    if (!on_text(std::string_view(text_).substr(pos, end - pos))) break;
    pos = end;
  }
  return Status::Ok();
}

namespace {

// Origin tag of updates that came from the server (not re-sent).
const int kRemoteOrigin = 0;

uint32_t RandomClientId() {
  std::random_device rd;
  uint32_t id = 0;
  while (id == 0) id = rd();
  return id;
}

// A finished "/ai ..." line: its UTF-16 start and length (without the newline), and the
// request text after the prefix.
struct AiLine {
  size_t start16 = 0;
  size_t length16 = 0;
  std::string prompt;
};

std::optional<AiLine> FindAiLine(const std::string& text) {
  constexpr std::string_view kPrefix = "/ai ";
  size_t pos = 0;
  size_t pos16 = 0;
  while (pos < text.size()) {
    const size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) break;  // the last line is still being typed
    std::string_view line(text.data() + pos, nl - pos);
    const size_t len16 = Utf16Length(line);
    if (line.substr(0, kPrefix.size()) == kPrefix) {
      std::string_view prompt = line.substr(kPrefix.size());
      while (!prompt.empty() && (prompt.front() == ' ' || prompt.front() == '\t')) {
        prompt.remove_prefix(1);
      }
      while (!prompt.empty() && (prompt.back() == ' ' || prompt.back() == '\r')) {
        prompt.remove_suffix(1);
      }
      if (!prompt.empty()) return AiLine{pos16, len16, std::string(prompt)};
    }
    pos16 += len16 + 1;
    pos = nl + 1;
  }
  return std::nullopt;
}

}  // namespace

class Agent::Impl : public std::enable_shared_from_this<Agent::Impl> {
 public:
  Impl(asio::io_context& io, AgentOptions options, net::WsUrl url)
      : io_(io),
        options_(std::move(options)),
        url_(std::move(url)),
        doc_(options_.client_id != 0 ? options_.client_id : RandomClientId()),
        reconnect_timer_(io),
        awareness_timer_(io) {
    doc_.ObserveUpdates([this](std::span<const uint8_t> update, const void* origin) {
      if (origin == &kRemoteOrigin) return;
      if (ws_ && ws_->open()) ws_->Send(EncodeSyncUpdate(update));
    });
  }

  ~Impl() {
    if (cancel_) cancel_->store(true);
    if (worker_.joinable()) worker_.join();
  }

  void Connect() {
    if (stopped_) return;
    std::weak_ptr<Impl> weak = weak_from_this();
    net::WsClient::Handlers h;
    h.on_open = [weak] {
      if (auto self = weak.lock()) self->OnOpen();
    };
    h.on_message = [weak](ByteSpan m) {
      if (auto self = weak.lock()) self->OnMessage(m);
    };
    h.on_close = [weak](const Status& why, int code) {
      if (auto self = weak.lock()) self->OnClose(why, code);
    };
    ws_ = net::WsClient::Create(io_, std::move(h));
    ws_->Connect(url_);
  }

  void Stop(std::function<void()> done) {
    if (stopped_) {
      if (done) asio::post(io_, std::move(done));
      return;
    }
    stopped_ = true;
    if (cancel_) cancel_->store(true);
    reconnect_timer_.cancel();
    awareness_timer_.cancel();
    stop_done_ = std::move(done);
    if (ws_ && ws_->open()) {
      // Withdraw presence at once instead of letting peers time it out (30 s).
      ws_->Send(EncodeAwarenessMessage(
          EncodeAwarenessUpdate({{doc_.client_id(), ++awareness_clock_, "null"}})));
      ws_->Close();
    } else {
      if (ws_) ws_->Close();
      FinishStop();
    }
  }

  AgentStats stats() const { return stats_; }
  uint32_t client_id() const { return doc_.client_id(); }

 private:
  void Event(const std::string& line) {
    if (options_.on_event) options_.on_event(line);
  }

  void FinishStop() {
    if (stop_done_) {
      auto done = std::move(stop_done_);
      stop_done_ = nullptr;
      asio::post(io_, std::move(done));
    }
  }

  void OnOpen() {
    backoff_ms_ = 100;
    open_ = true;
    failed_connects_ = 0;
    ws_->Send(EncodeSyncStep1(doc_.EncodeStateVector()));
    SendAwareness();
    Event("connected to " + url_.host + ":" + url_.port + url_.target);
  }

  void OnClose(const Status& why, int code) {
    stats_.synced = false;
    const bool was_open = open_;
    open_ = false;
    if (stopped_) return FinishStop();
    const std::string reason = why.ok() ? std::string("closed") : why.message();
    if (code == 4401) {
      Event("permission denied by the server; not reconnecting");
      stopped_ = true;
      return;
    }
    // 4400-4499 is final, as y-websocket reads it: the server refused this peer for good
    // (4413: a message over its limit), so reconnecting would only repeat the refusal.
    if (code >= 4400 && code <= 4499) {
      Event("the server refused the connection (code " + std::to_string(code) + ": " + reason +
            "); not reconnecting");
      stopped_ = true;
      return;
    }
    const std::string delay = std::to_string(backoff_ms_ / 1000.0).substr(0, 3) + " s";
    if (was_open) {
      Event("disconnected (" + reason + "); reconnecting in " + delay);
    } else if (++failed_connects_ == 1 || (failed_connects_ & (failed_connects_ - 1)) == 0) {
      // A server that is not there: say so, then again only on the 2nd, 4th, 8th, ... try,
      // so a long outage does not fill the terminal.
      Event("cannot connect to " + url_.host + ":" + url_.port + " (" + reason + "); " +
            (failed_connects_ == 1 ? "" : "tried " + std::to_string(failed_connects_) +
                                              " times; ") +
            "retrying in " + delay + " (Ctrl-C to stop)");
    }
    reconnect_timer_.expires_after(std::chrono::milliseconds(backoff_ms_));
    backoff_ms_ = std::min(backoff_ms_ * 2, options_.reconnect_max_ms);
    reconnect_timer_.async_wait([weak = weak_from_this()](const boost::system::error_code& ec) {
      if (ec) return;
      if (auto self = weak.lock()) self->Connect();
    });
  }

  void OnMessage(ByteSpan bytes) {
    auto m = DecodeMessage(bytes);
    if (!m.ok()) {
      Event("ignoring a bad message: " + m.status().message());
      return;
    }
    switch (m->type) {
      case MessageType::kSync:
        if (m->sync_type == SyncType::kStep1) {
          auto update = doc_.EncodeStateAsUpdate(m->payload);
          if (update.ok()) {
            ws_->Send(EncodeSyncStep2(*update));
          } else {
            Event("bad state vector from the server: " + update.status().message());
          }
        } else {
          Status s = doc_.ApplyUpdate(m->payload, &kRemoteOrigin);
          if (!s.ok()) Event("ignoring an update: " + s.message());
          if (m->sync_type == SyncType::kStep2 && !stats_.synced) {
            stats_.synced = true;
            Event("synced");
          }
          ScheduleScan();
        }
        break;
      case MessageType::kQueryAwareness:
        SendAwareness(/*bump=*/false);
        break;
      case MessageType::kAuth:
        Event("permission denied: " + m->auth_reason);
        break;
      case MessageType::kAwareness:
        break;  // the agent does not track other peers' presence
    }
  }

  std::string AwarenessState() const {
    nlohmann::json state = {
        {"user", {{"name", options_.name}, {"color", options_.color}}},
        {"ai",
         {{"available", options_.generator != nullptr},
          {"model", options_.generator ? options_.generator->name() : ""},
          {"busy", job_.has_value()}}}};
    return state.dump();
  }

  void SendAwareness(bool bump = true) {
    if (bump) ++awareness_clock_;
    if (ws_ && ws_->open()) {
      ws_->Send(EncodeAwarenessMessage(
          EncodeAwarenessUpdate({{doc_.client_id(), awareness_clock_, AwarenessState()}})));
    }
    // Renew before peers' 30 s timeout (y-protocols renews every 15 s).
    awareness_timer_.expires_after(std::chrono::seconds(15));
    awareness_timer_.async_wait([weak = weak_from_this()](const boost::system::error_code& ec) {
      if (ec) return;
      if (auto self = weak.lock()) self->SendAwareness();
    });
  }

  void ScheduleScan() {
    if (scan_posted_) return;
    scan_posted_ = true;
    asio::post(io_, [weak = weak_from_this()] {
      if (auto self = weak.lock()) {
        self->scan_posted_ = false;
        self->Scan();
      }
    });
  }

  void Scan() {
    if (stopped_ || job_ || !stats_.synced) return;
    crdt::Map requests = doc_.GetMap(options_.requests_name);
    crdt::Text text = doc_.GetText(options_.text_name);
    for (const std::string& key : requests.Keys()) {
      auto v = requests.Get(key);
      if (!v || !v->is_object() || v->value("status", "") != "pending") continue;
      crdt::JsonValue entry = *v;
      if (!options_.generator) {
        entry["status"] = "unavailable";
        doc_.Transact([&](crdt::Transaction& txn) { requests.Set(txn, key, entry); });
        continue;
      }
      std::string prompt = entry.value("prompt", "");
      std::optional<crdt::RelativePosition> anchor;
      if (entry.contains("pos") && entry["pos"].is_binary()) {
        const auto& bin = entry["pos"].get_binary();
        auto decoded = crdt::DecodeRelativePosition(std::span<const uint8_t>(bin.data(), bin.size()));
        if (decoded.ok()) anchor = *decoded;
      }
      if (!anchor) anchor = text.RelativePositionAt(text.Length());
      entry["status"] = "running";
      entry["agent"] = options_.name;
      doc_.Transact([&](crdt::Transaction& txn) { requests.Set(txn, key, entry); });
      return StartJob(std::move(prompt), *anchor, key);
    }
    if (!options_.generator) return;
    auto line = FindAiLine(text.ToString());
    if (!line) return;
    // Claim the request: remove its line (keeping the newline) and anchor the answer on
    // that newline, which stays put whatever happens before it.
    crdt::RelativePosition anchor;
    doc_.Transact([&](crdt::Transaction& txn) {
      text.Delete(txn, line->start16, line->length16);
      anchor = text.RelativePositionAt(line->start16, 0);
    });
    StartJob(std::move(line->prompt), anchor, "");
  }

  void StartJob(std::string prompt, crdt::RelativePosition anchor, std::string key) {
    Event("answering: " + prompt);
    job_ = Job{anchor, key, "", Status::Ok()};
    SendAwareness();
    if (worker_.joinable()) worker_.join();
    cancel_ = std::make_shared<std::atomic<bool>>(false);
    std::weak_ptr<Impl> weak = weak_from_this();
    worker_ = std::thread([&io = io_, gen = options_.generator, prompt = std::move(prompt),
                           cancel = cancel_, delay_ms = options_.token_delay_ms, weak] {
      Status s = gen->Generate(prompt, [&](std::string_view piece) {
        if (cancel->load()) return false;
        asio::post(io, [weak, text = std::string(piece)] {
          if (auto self = weak.lock()) self->OnToken(text);
        });
        if (delay_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
        return !cancel->load();
      });
      asio::post(io, [weak, s] {
        if (auto self = weak.lock()) self->OnJobDone(s);
      });
    });
  }

  void OnToken(const std::string& piece) {
    if (!job_ || !job_->status.ok() || piece.empty()) return;
    auto index = doc_.ResolveRelativePosition(job_->anchor);
    if (!index) {
      job_->status = Status::Cancelled("the place for the answer was deleted");
      if (cancel_) cancel_->store(true);
      return;
    }
    crdt::Text text = doc_.GetText(options_.text_name);
    doc_.Transact([&](crdt::Transaction& txn) { text.Insert(txn, *index, piece); });
    job_->answer += piece;
    ++stats_.tokens_written;
  }

  void OnJobDone(Status s) {
    if (worker_.joinable()) worker_.join();
    if (!job_) return;
    if (s.ok()) s = job_->status;
    if (!job_->map_key.empty() && !stopped_) {
      crdt::Map requests = doc_.GetMap(options_.requests_name);
      auto v = requests.Get(job_->map_key);
      crdt::JsonValue entry = v && v->is_object() ? *v : crdt::JsonValue::object();
      entry["status"] = s.ok() ? "done" : "error";
      entry["answer"] = job_->answer;
      if (!s.ok()) entry["error"] = s.message();
      doc_.Transact([&](crdt::Transaction& txn) { requests.Set(txn, job_->map_key, entry); });
    }
    Event(s.ok() ? "answered (" + std::to_string(job_->answer.size()) + " bytes)"
                 : "request failed: " + s.message());
    ++stats_.requests_done;
    job_.reset();
    if (stopped_) return;
    SendAwareness();
    ScheduleScan();
  }

  struct Job {
    crdt::RelativePosition anchor;
    std::string map_key;  // empty for a "/ai " line
    std::string answer;
    Status status;
  };

  asio::io_context& io_;
  AgentOptions options_;
  net::WsUrl url_;
  crdt::Doc doc_;
  std::shared_ptr<net::WsClient> ws_;
  asio::steady_timer reconnect_timer_;
  asio::steady_timer awareness_timer_;
  int backoff_ms_ = 100;
  bool open_ = false;        // the WebSocket is open (OnOpen ran and OnClose has not)
  int failed_connects_ = 0;  // connection attempts that failed since the last open
  uint64_t awareness_clock_ = 0;
  bool stopped_ = false;
  bool scan_posted_ = false;
  std::optional<Job> job_;
  std::thread worker_;
  std::shared_ptr<std::atomic<bool>> cancel_;
  std::function<void()> stop_done_;
  AgentStats stats_;
};

Result<std::shared_ptr<Agent>> Agent::Start(asio::io_context& io, AgentOptions options) {
  PK_ASSIGN_OR_RETURN(net::WsUrl url, net::ParseWsUrl(options.server_url));
  if (url.target == "/" || url.target.empty() || url.target[1] == '?') {
    return Status::InvalidArgument("agent: the server url names no room: '" +
                                   options.server_url + "' (expected ws://HOST:PORT/ROOM)");
  }
  auto impl = std::make_shared<Impl>(io, std::move(options), std::move(url));
  impl->Connect();
  return std::shared_ptr<Agent>(new Agent(std::move(impl)));
}

Agent::~Agent() = default;
void Agent::Stop(std::function<void()> done) { impl_->Stop(std::move(done)); }
AgentStats Agent::stats() const { return impl_->stats(); }
uint32_t Agent::client_id() const { return impl_->client_id(); }

}  // namespace pocket::sync
