// `pocket agent`: the AI agent peer (src/sync/agent.h) — joins a y-websocket room as its own
// client and answers "/ai ..." lines and "ai-requests" entries with the local model.
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include <cstdio>

#include "cli/command.h"
#include "sync/agent.h"
#include "sync/engine_generator.h"

namespace pocket::cli {
namespace {

CommandMain Configure(CLI::App& app) {
  struct Flags {
    std::string server, model, scripted, name = "pocket-agent", color = "#0d9488";
    bool no_model = false, quiet = false;
    int max_tokens = 128, token_delay_ms = 0, threads = 0;
    float temperature = 0.7f;
    int64_t seed = -1;
  };
  auto f = std::make_shared<Flags>();
  app.add_option("--server", f->server, "Room to join: ws://HOST:PORT/ROOM[?token=T]")->required();
  app.add_option("--model", f->model, "GGUF model (default: the embedded default model)");
  app.add_flag("--no-model", f->no_model, "Join without a model (presence says AI unavailable)");
  app.add_option("--scripted", f->scripted, "Answer every request with this text (demos, tests)");
  app.add_option("--name", f->name, "Name shown to others")->capture_default_str();
  app.add_option("--color", f->color, "Colour shown to others")->capture_default_str();
  app.add_option("--max-tokens", f->max_tokens, "Longest answer in tokens")->capture_default_str();
  app.add_option("--temperature", f->temperature, "Sampling temperature (0: greedy)")
      ->capture_default_str();
  app.add_option("--seed", f->seed, "Sampling seed (-1: random)");
  app.add_option("--threads", f->threads, "Threads for the model (0: all cores)");
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
      sync::EngineGeneratorOptions g;
      g.model_path = f->model.empty() ? DefaultModelPath() : f->model;
      g.max_tokens = f->max_tokens;
      g.temperature = f->temperature;
      g.seed = f->seed;
      g.threads = f->threads;
      auto gen = sync::EngineGenerator::Load(g);
      if (gen.ok()) {
        o.generator = std::move(gen).value();
      } else {
        std::fprintf(stderr, "pocket agent: AI unavailable, joining without a model: %s\n",
                     gen.status().message().c_str());
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
