// `pocket agent`: the AI agent peer (src/sync/agent.h) — joins a y-websocket room as its own
// client and answers "/ai ..." lines and "ai-requests" entries with the local model.
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include <cstdio>

#include "cli/command.h"
#include "registry/resolve.h"
#include "cli/model_flags.h"
#include "sync/agent.h"
#include "sync/engine_generator.h"

namespace pocket::cli {
namespace {

CommandMain Configure(CLI::App& app) {
  struct Flags {
    std::string server, model, scripted, name = "pocket-agent", color = "#0d9488";
    std::vector<std::string> positionals;
    bool no_model = false, quiet = false;
    int max_tokens = 128, token_delay_ms = 0, threads = 0;
    int ctx_size = sync::EngineGeneratorOptions{}.context_length;
    float temperature = 0.7f;
    int64_t seed = -1;
  };
  auto f = std::make_shared<Flags>();
  app.description(
      "Join a y-websocket room as an AI peer: answers \"/ai ...\" lines and \"ai-requests\" "
      "entries with the local model, streaming the answer into the shared document.");
  SetExamples(app, {"pocket agent --server ws://127.0.0.1:1234/demo",
                    "pocket agent --server ws://127.0.0.1:1234/demo -m model.gguf --temp 0 "
                    "-n 64 --seed 1"});
  app.add_option("--server", f->server, "Room to join: ws://HOST:PORT/ROOM[?token=T]")->required();
  AddModelOption(app, &f->model);
  app.add_option("model", f->positionals, "[MODEL] (as -m)")->expected(0, 1);
  app.add_flag("--no-model", f->no_model, "Join without a model (presence says AI unavailable)");
  app.add_option("--scripted", f->scripted, "Answer every request with this text (demos, tests)");
  app.add_option("--name", f->name, "Name shown to others")->capture_default_str();
  app.add_option("--color", f->color, "Colour shown to others")->capture_default_str();
  AddNPredictOption(app, &f->max_tokens, "--max-tokens");
  AddTempOption(app, &f->temperature, "--temperature");
  AddSeedOption(app, &f->seed);
  AddThreadsOption(app, &f->threads);
  AddCtxSizeOption(app, &f->ctx_size, "context size in tokens (0 = the model's, capped at 4096)",
                   0);
  app.add_option("--token-delay-ms", f->token_delay_ms, "Pause between streamed tokens")
      ->capture_default_str();
  app.add_flag("--quiet", f->quiet, "Print nothing but errors");
  return [f]() -> int {
    sync::AgentOptions o;
    o.server_url = f->server;
    o.name = f->name;
    o.color = f->color;
    o.token_delay_ms = f->token_delay_ms;
    if (!f->scripted.empty()) {
      o.generator = std::make_shared<sync::ScriptedGenerator>(f->scripted);
    } else if (!f->no_model) {
      if (!f->model.empty() && !f->positionals.empty()) {
        return Fail("agent", Status::InvalidArgument("give the model once: as MODEL or with -m"));
      }
      sync::EngineGeneratorOptions g;
      g.max_tokens = f->max_tokens;
      g.temperature = f->temperature;
      g.seed = f->seed;
      g.threads = f->threads;
      g.context_length = f->ctx_size;
      const std::string given =
          f->model.empty() && !f->positionals.empty() ? f->positionals.front() : f->model;
      Result<std::string> path = given.empty() ? DefaultModelPath() : registry::ResolveModelPath(given);
      Status unavailable = path.status();
      if (path.ok()) {
        g.model_path = *path;
        auto gen = sync::EngineGenerator::Load(g);
        if (gen.ok()) {
          o.generator = std::move(gen).value();
        } else {
          unavailable = gen.status();
        }
      }
      if (!unavailable.ok()) {
        std::fprintf(stderr, "pocket agent: AI unavailable, joining without a model: %s\n",
                     unavailable.message().c_str());
      }
    }
    const bool quiet = f->quiet;
    o.on_event = [quiet](std::string_view line) {
      if (quiet) return;
      std::printf("pocket agent: %.*s\n", static_cast<int>(line.size()), line.data());
      std::fflush(stdout);
    };
    boost::asio::io_context io(1);
    auto agent = sync::Agent::Start(io, std::move(o));
    if (!agent.ok()) return Fail("agent", agent.status());
    boost::asio::signal_set signals(io, SIGINT, SIGTERM);
    boost::asio::steady_timer grace(io);
    signals.async_wait([&](const boost::system::error_code& ec, int) {
      if (ec) return;
      (*agent)->Stop([&io] { io.stop(); });
      grace.expires_after(std::chrono::seconds(2));
      grace.async_wait([&](const boost::system::error_code&) { io.stop(); });
    });
    io.run();
    return 0;
  };
}

}  // namespace

POCKET_COMMAND(agent, "agent", "join a collab room as an AI peer that answers /ai requests",
               Configure);

}  // namespace pocket::cli
