// `pocket serve`: the OpenAI-compatible local AI server (src/server), with the router's
// policy (src/router). Prints one JSON line per request to stderr; stops on SIGINT/SIGTERM
// (see WaitThenStop in cli/signals.h).
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

#include "base/file.h"
#include "base/log.h"
#include "cli/command.h"
#include "registry/resolve.h"
#include "cli/ledger_flags.h"
#include "cli/model_flags.h"
#include "cli/signals.h"
#include "cli/web_assets.h"
#include "router/policy.h"
#include "runtime/sampling.h"
#include "server/fake_model.h"
#include "server/runtime_model.h"
#include "server/server.h"

namespace pocket::cli {
namespace {

struct ServeFlags {
  std::vector<std::string> models;             // -m/--model
  std::vector<std::string> positional_models;  // [MODEL...]
  std::vector<std::string> fake_models;
  int fake_delay_ms = 0;
  int fake_context = 2048;
  std::string policy;
  std::string host = "127.0.0.1";
  int port = 8080;
  std::string port_file;
  std::string ledger = DefaultLedgerPath();
  bool reset_ledger = false;
  int threads = 0;
  int context = 0;
  // Defaults of requests that leave the field out (server::GenerationDefaults); OpenAI's
  // unless given.
  int n_predict = -1;
  float temp = 1.0f;
  float top_p = 1.0f;
  int top_k = 0;
  float min_p = 0.0f;
  int64_t seed = -1;
  int max_active = 8;
  int max_queue = 32;
  uint64_t max_body_bytes = 4ull << 20;
  int64_t read_timeout_ms = 15000;
  int64_t first_byte_timeout_ms = 5000;
  int max_connections = 512;
  int max_connections_per_client = 64;
  int64_t shutdown_timeout_ms = 3000;
  bool quiet = false;
  bool collab = false;
  std::string collab_dir;
  std::string web;
  bool no_page = false;
};

bool IsLoopback(const std::string& host) {
  return host == "127.0.0.1" || host == "::1" || host == "localhost" || host.rfind("127.", 0) == 0;
}

int RunServe(const ServeFlags& f) {
  SetLogLevel(f.quiet ? LogLevel::kWarning : LogLevel::kInfo);
  // JSON lines on stderr: request records are JSON already; other messages are wrapped.
  SetLogSink([](LogLevel level, std::string_view m) {
    if (!m.empty() && m.front() == '{') {
      std::fprintf(stderr, "%.*s\n", static_cast<int>(m.size()), m.data());
      return;
    }
    std::string esc;
    for (char c : m) {
      if (c == '"' || c == '\\') esc += '\\';
      if (static_cast<unsigned char>(c) < 0x20) continue;
      esc += c;
    }
    const char* lv = level == LogLevel::kError ? "error" : level == LogLevel::kWarning ? "warning" : "info";
    std::fprintf(stderr, "{\"level\":\"%s\",\"msg\":\"%s\"}\n", lv, esc.c_str());
  });

  router::Policy policy = router::DefaultPolicy();
  if (!f.policy.empty()) {
    auto p = router::LoadPolicy(f.policy, router::ProcessEnv());
    if (!p.ok()) return Fail("serve", p.status());
    policy = std::move(*p);
  }
  // Before a model loads: a damaged ledger stops start-up at once (or, asked to, is moved
  // aside).
  if (Status s = PrepareLedger("serve", policy.ledger_path.empty() ? f.ledger : policy.ledger_path,
                               f.reset_ledger);
      !s.ok())
    return Fail("serve", s);
  for (const auto& b : policy.backends) {
    if (!b.disabled_reason.empty())
      std::fprintf(stderr, "pocket serve: backend '%s' disabled: %s\n", b.name.c_str(),
                   b.disabled_reason.c_str());
  }
  if (!IsLoopback(f.host) && policy.api_keys.empty()) {
    std::fprintf(stderr,
                 "pocket serve: WARNING: listening on %s without API keys: anyone who can reach "
                 "this address can use the model and the remote budget. Configure [api_keys] in "
                 "the policy.\n",
                 f.host.c_str());
  }

  // The chat page at GET /: an explicit --web must hold it; a missing default only costs
  // the page, so the API starts anyway and says so.
  std::string web_root, page_warning;
  if (!f.no_page && !f.web.empty()) {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(std::filesystem::path(f.web) / "index.html", ec))
      return Fail("serve", Status::NotFound("--web '" + f.web + "' holds no index.html"));
    web_root = f.web;
  } else if (!f.no_page) {
    auto found = FindWebPage("chat");
    if (found.ok()) {
      web_root = *found;
    } else {
      page_warning = found.status().message();  // said once the models load
    }
  }

  std::vector<std::shared_ptr<server::Model>> models;
  for (const auto& id : f.fake_models)
    models.push_back(std::make_shared<server::FakeModel>(id, f.fake_context, f.fake_delay_ms));
  std::vector<std::string> paths = f.models;
  paths.insert(paths.end(), f.positional_models.begin(), f.positional_models.end());
  if (paths.empty() && models.empty()) {
    auto path = DefaultModelPath();
    if (!path.ok()) return Fail("serve", path.status());
    paths.push_back(*path);
  }
  for (const auto& arg : paths) {
    auto path = registry::ResolveModelPath(arg);  // a path, else NAME[:TAG] in the store
    if (!path.ok()) return Fail("serve", path.status());
    std::error_code ec;
    const bool stored = !std::filesystem::exists(arg, ec);  // NAME[:TAG]: served by that name
    auto m = server::LoadRuntimeModel(*path, f.threads, f.context, f.max_active,
                                      stored ? arg : std::string());
    if (!m.ok()) return Fail("serve", m.status());
    models.push_back(std::move(*m));
  }
  if (!page_warning.empty()) {
    std::fprintf(stderr, "pocket serve: no chat page at GET /: %s\n", page_warning.c_str());
  }

  server::ServerOptions opts;
  opts.http.host = f.host;
  opts.http.port = static_cast<uint16_t>(f.port);
  opts.http.max_body_bytes = f.max_body_bytes;
  opts.http.read_timeout_ms = f.read_timeout_ms;
  opts.http.first_byte_timeout_ms = f.first_byte_timeout_ms;
  opts.http.max_connections = f.max_connections;
  opts.http.max_connections_per_client = f.max_connections_per_client;
  // Handlers get most of the stop's time to let go; the rest is for joining the threads.
  opts.http.shutdown_grace_ms = std::min<int64_t>(2000, f.shutdown_timeout_ms / 2);
  opts.max_active = f.max_active;
  opts.max_queue = f.max_queue;
  opts.default_ledger_path = f.ledger;
  if (policy.ledger_path.empty() && f.ledger == DefaultLedgerPath()) {
    if (Status s = EnsureParentDirectory(f.ledger); !s.ok()) return Fail("serve", s);
  }
  opts.collab = f.collab || !f.collab_dir.empty();
  opts.collab_dir = f.collab_dir;
  opts.web_root = web_root;
  opts.generation_defaults.temperature = f.temp;
  opts.generation_defaults.top_p = f.top_p;
  opts.generation_defaults.top_k = f.top_k;
  opts.generation_defaults.min_p = f.min_p;
  opts.generation_defaults.seed = f.seed < 0 ? runtime::kRandomSeed : static_cast<uint64_t>(f.seed);
  opts.generation_defaults.max_tokens = f.n_predict;
  auto server = server::Server::Create(opts, models, std::move(policy));
  if (!server.ok()) return Fail("serve", server.status());

  // Block the signals before the server starts its threads, then wait for one here.
  const sigset_t signals = BlockStopSignals();
  if (Status s = (*server)->Start(); !s.ok()) return Fail("serve", s);
  const uint16_t port = (*server)->port();
  if (!f.port_file.empty()) {
    if (Status s = WriteFileAtomic(f.port_file, std::to_string(port) + "\n"); !s.ok())
      return Fail("serve", s);
  }
  std::string ids;
  for (const auto& m : models) ids += (ids.empty() ? "" : ", ") + m->id();
  std::fprintf(stderr, "pocket serve: listening on http://%s:%u/v1 (models: %s)\n", f.host.c_str(),
               port, ids.c_str());
  if (!web_root.empty())
    std::fprintf(stderr, "pocket serve: chat page at http://%s:%u/\n", f.host.c_str(), port);
  // The first signal stops the server here: in-flight generations and remote calls end,
  // connections close.
  WaitThenStop(signals, f.shutdown_timeout_ms, "pocket serve", [&] { (*server)->Stop(); });
  return 0;
}

CommandMain Configure(CLI::App& app) {
  auto f = std::make_shared<ServeFlags>();
  app.description(
      "The OpenAI-compatible HTTP API (/v1/chat/completions, /v1/completions, /v1/models, "
      "...) over local GGUF models, with the router's policy for remote backends. A request "
      "sets its own sampling (temperature, top_p, max_tokens, seed), as in the OpenAI API; "
      "--temp, --top-p, -n and --seed are the values of a request that leaves them out, as "
      "in llama-server (a remote backend gets the request's own fields, and -n as its "
      "max_tokens). One JSON line per request on stderr; stops on SIGINT/SIGTERM.");
  SetExamples(app, {"pocket serve                                # embedded default model, :8080",
                    "pocket serve -m model.gguf -c 4096 -t 4 --port 8080",
                    "pocket serve -m model.gguf --temp 0.7 -n 256 --seed 1  # request defaults",
                    "pocket serve a.gguf b.gguf --policy docs/policy.example.toml"});
  // A file, or a NAME[:TAG] in the store (served under that name).
  const CLI::Validator model_arg(
      [](std::string& arg) -> std::string {
        std::error_code ec;
        if (std::filesystem::exists(arg, ec)) return "";
        auto path = registry::ResolveModelPath(arg);
        return path.ok() ? "" : path.status().message();
      },
      "PATH|NAME[:TAG]");
  AddModelOption(app, &f->models)->check(model_arg);
  app.add_option("models", f->positional_models,
                 "[MODEL...] GGUF model files or NAME[:TAG] in the store, as -m; model id = file "
                 "name without .gguf, or the NAME[:TAG] as given")
      ->check(model_arg);
  app.add_option("--fake-model", f->fake_models,
                 "serve a deterministic fake model with this id (for tests; repeatable)");
  app.add_option("--fake-delay-ms", f->fake_delay_ms, "per-token delay of fake models");
  app.add_option("--fake-context", f->fake_context, "context length of fake models")
      ->check(InRange(16, 1 << 20));
  app.add_option("--policy", f->policy, "router policy (TOML; see docs/policy.example.toml)");
  app.add_option("--host", f->host, "address to listen on (default loopback)");
  app.add_option("--port", f->port, "port (0: any free port; see --port-file)")
      ->check(InRange(0, 65535));
  app.add_option("--port-file", f->port_file, "write the bound port to this file once listening");
  app.add_option("--ledger", f->ledger, "SQLite ledger of remote spend (unless the policy names one; default: "
                 "$XDG_STATE_HOME/pocket/ledger.db or ~/.local/state/pocket/ledger.db)");
  app.add_flag("--reset-ledger", f->reset_ledger, kResetLedgerHelp);
  AddThreadsOption(app, &f->threads);
  AddCtxSizeOption(app, &f->context,
                   "context size in tokens of each sequence (0 = the model's, capped at 4096)", 0,
                   "--context");
  app.add_option("--max-active", f->max_active, "requests generating at once")
      ->check(InRange(1, 256));
  app.add_option("--max-queue", f->max_queue, "requests waiting; beyond this: 429")
      ->check(InRange(0, 4096));
  app.add_option("--max-body-bytes", f->max_body_bytes, "request body limit (413 beyond)");
  app.add_option("--read-timeout-ms", f->read_timeout_ms,
                 "time to receive a whole request, from its first byte (408)")
      ->capture_default_str();
  app.add_option("--first-byte-timeout-ms", f->first_byte_timeout_ms,
                 "a new connection that sends nothing within this is closed")
      ->check(InRange(1, 3600000))
      ->capture_default_str();
  app.add_option("--max-connections", f->max_connections,
                 "open connections in all; beyond: 503 at once (0: no limit)")
      ->check(InRange(0, 1 << 20))
      ->capture_default_str();
  app.add_option("--max-connections-per-client", f->max_connections_per_client,
                 "open connections of one client address (IPv6: per /64); beyond: 429 at once "
                 "(0: no limit)")
      ->check(InRange(0, 1 << 20))
      ->capture_default_str();
  app.add_option("--shutdown-timeout-ms", f->shutdown_timeout_ms,
                 "on SIGTERM/SIGINT, exit after this long even if a remote call or handler has "
                 "not finished (a second signal exits at once)")
      ->check(InRange(100, 600000))
      ->capture_default_str();
  app.add_flag("--quiet", f->quiet, "no per-request log lines");
  app.add_flag("--collab", f->collab, "serve y-websocket rooms on ws://HOST:PORT/collab/<room> (in memory)");
  app.add_option("--collab-dir", f->collab_dir, "like --collab, rooms persisted in this directory");
  app.add_option("--web", f->web,
                 "folder of the chat page served at GET / (default: share/pocket/web/chat "
                 "beside the binary, in the build or the install)");
  app.add_flag("--no-page", f->no_page, "no chat page: GET / is a 404 like any unknown path")
      ->excludes("--web");
  AddNPredictOption(app, &f->n_predict, "", /*allow_zero=*/false)
      ->description(
          "max_tokens of a request that sets neither max_tokens nor max_completion_tokens (-1 "
          "= until end of generation or a full context; a bound, not counted against the "
          "context as a requested max_tokens is)");
  AddTempOption(app, &f->temp)->description("temperature of a request that sets none (0 = greedy)");
  AddTopPOption(app, &f->top_p)->description("top_p of a request that sets none (1.0 = off)");
  AddTopKOption(app, &f->top_k)
      ->description("top-k sampling of every request (0 = off; not an OpenAI request field)");
  AddMinPOption(app, &f->min_p)
      ->description("min-p sampling of every request (0.0 = off; not an OpenAI request field)");
  AddSeedOption(app, &f->seed)
      ->description("seed of a request that sets none (-1 = a random seed per request)");
  return [f] { return RunServe(*f); };
}

POCKET_COMMAND(serve, "serve", "OpenAI-compatible HTTP server with the local/remote router", Configure);

}  // namespace
}  // namespace pocket::cli
