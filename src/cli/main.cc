// `pocket`: one binary, one subcommand per file in this folder (see command.h).
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <sstream>

#include "base/data_dir.h"
#include "base/log.h"
#include "cli/command.h"
#include "cli/model_flags.h"

namespace pocket::cli {

std::vector<Command>& Registry() {
  static std::vector<Command> commands;
  return commands;
}

int Fail(const std::string& command, const Status& status) {
  std::fprintf(stderr, "pocket %s: %s\n", command.c_str(), status.message().c_str());
  return status.code() == StatusCode::kInvalidArgument ? 2 : 1;
}

Result<std::string> DefaultModelPath() {
  if (const char* env = std::getenv("POCKET_MODEL"); env && *env) {
    std::error_code ec;
    if (!std::filesystem::exists(env, ec)) {
      return Status::NotFound(std::string("POCKET_MODEL names '") + env +
                              "', which does not exist (point it at a GGUF file, or unset it "
                              "to use the default model)");
    }
    return std::string(env);
  }
  const std::string exe_dir = ExecutableDir();
  std::string found = FindDataPath(kDefaultModelRel, exe_dir);
  if (!found.empty()) return found;
  return Status::NotFound(
      "no model given and the default model is missing (looked for " +
      (std::filesystem::path(InstalledDataDir(exe_dir)) / kDefaultModelRel).string() + " and " +
      kDefaultModelRel + " above " + exe_dir +
      "); name a GGUF file with -m PATH or set POCKET_MODEL=PATH");
}

std::string DefaultLedgerPath() {
  const char* state = std::getenv("XDG_STATE_HOME");
  if (state && *state == '/') return (std::filesystem::path(state) / "pocket" / "ledger.db").string();
  const char* home = std::getenv("HOME");
  if (home && *home == '/') {
    return (std::filesystem::path(home) / ".local" / "state" / "pocket" / "ledger.db").string();
  }
  return "pocket-ledger.db";
}

Status EnsureParentDirectory(const std::string& path) {
  const auto dir = std::filesystem::path(path).parent_path();
  if (dir.empty() || path == ":memory:") return Status::Ok();
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Status::IOError("cannot create directory " + dir.string() + ": " + ec.message());
  return Status::Ok();
}

namespace {

// `pocket --help` lists each command with its one-line summary; a command's own --help
// gives its full description and examples.
class TopLevelFormatter : public CLI::Formatter {
 public:
  std::string make_subcommand(const CLI::App* sub) const override {
    std::string summary = sub->get_description();
    for (const Command& c : Registry()) {
      if (c.name == sub->get_name()) summary = c.summary;
    }
    std::stringstream out;
    CLI::detail::format_help(out, sub->get_display_name(true), summary, get_column_width());
    return out.str();
  }
};

}  // namespace
}  // namespace pocket::cli

int main(int argc, char** argv) {
  using namespace pocket::cli;
  pocket::SetLogSink([](pocket::LogLevel, std::string_view m) {
    std::fprintf(stderr, "%.*s\n", static_cast<int>(m.size()), m.data());
  });
  InstallVariantPolicy();  // how a stored index of variants resolves (model_flags.h)
  CLI::App app{"pocket: local-first AI engine and toolkit", "pocket"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "pocket 0.1.0");
  // Every --help shows each option's default (subcommands inherit this).
  app.option_defaults()->always_capture_default();
  auto& registry = Registry();
  std::sort(registry.begin(), registry.end(),
            [](const Command& a, const Command& b) { return a.name < b.name; });
  std::vector<std::pair<CLI::App*, CommandMain>> mains;
  for (auto& c : registry) {
    CLI::App* sub = app.add_subcommand(c.name, c.summary);
    mains.emplace_back(sub, c.configure(*sub));
  }
  app.formatter(std::make_shared<TopLevelFormatter>());  // after the subcommands: theirs stay
  app.footer("Run 'pocket COMMAND --help' for a command's options and examples.");
  // Usage errors exit 2 with one line naming the command and what is wrong (CLI11's own
  // codes, 105-109, and its multi-line messages, were what a user saw before).
  if (argc < 2) {
    std::fputs(app.help().c_str(), stderr);
    return 2;
  }
  const std::string first = argv[1];
  const Command* command = nullptr;
  for (const Command& c : registry) {
    if (c.name == first) command = &c;
  }
  if (!command && !first.empty() && first[0] != '-') {
    std::string names;
    for (const Command& c : registry) names += (names.empty() ? "" : ", ") + c.name;
    std::fprintf(stderr, "pocket: unknown command '%s' (commands: %s)\n", first.c_str(),
                 names.c_str());
    return 2;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);
    const std::string who = command ? "pocket " + command->name : std::string("pocket");
    std::string what = e.what();
    for (char& ch : what) {
      if (ch == '\n') ch = ' ';
    }
    while (!what.empty() && what.back() == ' ') what.pop_back();
    // CLI11 leaves a hidden option's name empty (": message"); its message names it.
    if (what.rfind(": ", 0) == 0) what.erase(0, 2);
    std::fprintf(stderr, "%s: %s (see '%s --help')\n", who.c_str(), what.c_str(), who.c_str());
    return 2;
  }
  for (auto& [sub, fn] : mains) {
    if (sub->parsed()) return fn();
  }
  return 2;
}
