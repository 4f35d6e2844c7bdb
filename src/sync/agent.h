// The AI agent peer: a y-websocket client in C++ that joins a room as its own Yjs client,
// watches the shared document and answers requests with the local model, streaming the
// answer into the document token by token as ordinary CRDT edits.
//
// Requests:
//  * a line of the Y.Text "content" that starts with "/ai " and is finished (ends in a
//    newline): the line is removed and the answer is written in its place;
//  * an entry of the Y.Map "ai-requests" whose value is {prompt, status: "pending",
//    pos?: Uint8Array} (pos: Y.encodeRelativePosition of where the answer goes; absent:
//    the end of the text). The agent sets status "running", then "done" with `answer`
//    (or "error" with `error`, or "unavailable" when it has no model).
// Where the answer goes is held as a Yjs relative position, so concurrent human edits
// before it do not move it: each token is inserted at the anchor's current index.
//
// Presence: awareness state {"user": {"name", "color"}, "ai": {"available", "model",
// "busy"}}; renewed every 15 s; set to null when the agent stops. Without a generator the
// agent still syncs and announces available=false (progressive enhancement).
//
// Thread safety: the Agent lives on the io_context thread (one thread); generation runs on
// a worker thread that posts each token back to it. Start/Stop from the io thread or
// before io.run().
#pragma once

#include <boost/asio/io_context.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "base/status.h"

namespace pocket::sync {

// What the agent generates with. Implementations: EngineGenerator (the local model,
// engine_generator.h) and ScriptedGenerator (fixed text, for tests and demos).
class Generator {
 public:
  virtual ~Generator() = default;
  // A short description for presence ("default.gguf").
  virtual std::string name() const = 0;
  // Streams the answer to `request` through on_text (false: stop early). Called on the
  // agent's worker thread, one call at a time.
  virtual Status Generate(const std::string& request,
                          const std::function<bool(std::string_view)>& on_text) = 0;
};

// Emits `text` split into words (each with its following space) as tokens.
class ScriptedGenerator : public Generator {
 public:
  explicit ScriptedGenerator(std::string text) : text_(std::move(text)) {}
  std::string name() const override { return "scripted"; }
  Status Generate(const std::string& request,
                  const std::function<bool(std::string_view)>& on_text) override;

 private:
  std::string text_;
};

struct AgentOptions {
  std::string server_url;  // ws://HOST:PORT/ROOM[?token=...]
  std::string name = "pocket-agent";
  std::string color = "#0d9488";
  std::shared_ptr<Generator> generator;  // null: AI unavailable
  uint32_t client_id = 0;                // 0: random (a fresh id per session)
  std::string text_name = "content";
  std::string requests_name = "ai-requests";
  int token_delay_ms = 0;  // pause between tokens (a readable typing pace)
  int reconnect_max_ms = 2500;
  // Progress lines for the CLI ("joined", "answering ...", "done"); may be null.
  std::function<void(std::string_view)> on_event;
};

struct AgentStats {
  uint64_t requests_done = 0;
  uint64_t tokens_written = 0;
  bool synced = false;
};

class Agent {
 public:
  // Validates the URL and starts connecting. InvalidArgument for a bad URL.
  static Result<std::shared_ptr<Agent>> Start(boost::asio::io_context& io, AgentOptions options);
  ~Agent();
  // Cancels generation, withdraws presence and closes the connection; `done` runs on the
  // io thread once the socket is closed (or at once when it is not open).
  void Stop(std::function<void()> done = nullptr);
  AgentStats stats() const;
  uint32_t client_id() const;

  class Impl;

 private:
  explicit Agent(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<Impl> impl_;
};

// UTF-16 code units in valid UTF-8 `s` (4-byte sequences count 2), as Y.Text counts.
size_t Utf16Length(std::string_view s);

}  // namespace pocket::sync
