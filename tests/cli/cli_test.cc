// End-to-end tests of `pocket run`, `pocket chat`, `pocket perplexity` and `pocket bench`:
// each test spawns the built binary through the shell with stdout and stderr captured
// separately, on tiny random models written at test time by `pocket make-model`.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>

#include "cli_testutil.h"

namespace {

namespace fs = std::filesystem;

using pocket::cli_test::Lines;
using pocket::cli_test::Output;
using pocket::cli_test::Quote;
using pocket::cli_test::Slurp;

// Well-formed UTF-8 (no overlongs, surrogates or truncated sequences).
bool IsValidUtf8(const std::string& s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto b = static_cast<unsigned char>(s[i]);
    size_t n;
    unsigned char lo = 0x80, hi = 0xBF;  // range of the second byte
    if (b < 0x80) {
      n = 0;
    } else if (b >= 0xC2 && b <= 0xDF) {
      n = 1;
    } else if (b >= 0xE0 && b <= 0xEF) {
      n = 2;
      if (b == 0xE0) lo = 0xA0;
      if (b == 0xED) hi = 0x9F;
    } else if (b >= 0xF0 && b <= 0xF4) {
      n = 3;
      if (b == 0xF0) lo = 0x90;
      if (b == 0xF4) hi = 0x8F;
    } else {
      return false;
    }
    for (size_t k = 1; k <= n; ++k) {
      if (i + k >= s.size()) return false;
      const auto c = static_cast<unsigned char>(s[i + k]);
      if (c < (k == 1 ? lo : 0x80) || c > (k == 1 ? hi : 0xBF)) return false;
    }
    i += n + 1;
  }
  return true;
}

class CliTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new fs::path(fs::temp_directory_path() /
                        ("pocket_cli_test." + std::to_string(getpid())));
    fs::create_directories(*dir_);
    model_ = new std::string((*dir_ / "tiny.gguf").string());
    const Output o = Pocket("make-model --shape tiny --vocab 512 --type f32 --seed 3 --out " +
                            Quote(*model_));
    ASSERT_EQ(o.rc, 0) << o.err;
  }
  static void TearDownTestSuite() {
    std::error_code ec;
    fs::remove_all(*dir_, ec);
    delete dir_;
    delete model_;
  }

  // Runs `pocket ARGS` with `stdin_text` on stdin.
  static Output Pocket(const std::string& args, const std::string& stdin_text = "") {
    return Shell(std::string(POCKET_BIN) + " " + args, stdin_text);
  }

  // Runs the shell command line `command` with `stdin_text` on stdin.
  static Output Shell(const std::string& command, const std::string& stdin_text = "") {
    static int counter = 0;
    const fs::path base = *dir_ / ("run" + std::to_string(counter++));
    const fs::path in = base.string() + ".in", out = base.string() + ".out",
                   err = base.string() + ".err";
    std::ofstream(in, std::ios::binary) << stdin_text;
    const std::string cmd = command + " <" + Quote(in.string()) + " >" + Quote(out.string()) +
                            " 2>" + Quote(err.string());
    const int status = std::system(cmd.c_str());
    Output o;
    o.rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    o.out = Slurp(out);
    o.err = Slurp(err);
    return o;
  }

  static std::string Model() { return Quote(*model_); }

  static fs::path* dir_;
  static std::string* model_;
};

fs::path* CliTest::dir_ = nullptr;
std::string* CliTest::model_ = nullptr;

TEST_F(CliTest, RunWithEmbeddedDefaultModel) {
  // No MODEL: the embedded default (found beside the build tree) is used.
  const Output a = Pocket("run 'Once upon a time' -n 8 --temp 0");
  ASSERT_EQ(a.rc, 0) << a.err;
  EXPECT_EQ(a.err, "");
  const Output b = Pocket("run -m " + Quote(std::string(POCKET_SOURCE_DIR) +
                                            "/models/default.gguf") +
                          " -p 'Once upon a time' -n 8 --temp 0");
  ASSERT_EQ(b.rc, 0) << b.err;
  EXPECT_EQ(a.out, b.out);
}

TEST_F(CliTest, RunPromptFromArgumentStdinAndFileAgree) {
  const Output arg = Pocket("run " + Model() + " 'Hello world' -n 12 --temp 0");
  ASSERT_EQ(arg.rc, 0) << arg.err;
  EXPECT_FALSE(arg.out.empty());
  const Output in = Pocket("run " + Model() + " -n 12 --temp 0", "Hello world");
  ASSERT_EQ(in.rc, 0) << in.err;
  EXPECT_EQ(in.out, arg.out);
  std::ofstream(*dir_ / "prompt.txt") << "Hello world";
  const Output file =
      Pocket("run -m " + Model() + " -f " + Quote((*dir_ / "prompt.txt").string()) +
             " -n 12 --temp 0");
  ASSERT_EQ(file.rc, 0) << file.err;
  EXPECT_EQ(file.out, arg.out);
}

TEST_F(CliTest, RunWritesOnlyGeneratedTextToStdout) {
  const Output quiet = Pocket("run " + Model() + " 'abc' -n 10 --seed 5");
  const Output verbose = Pocket("run " + Model() + " 'abc' -n 10 --seed 5 --verbose");
  ASSERT_EQ(quiet.rc, 0) << quiet.err;
  ASSERT_EQ(verbose.rc, 0) << verbose.err;
  EXPECT_EQ(quiet.out, verbose.out);
  EXPECT_NE(verbose.err.find("pocket run: prompt"), std::string::npos) << verbose.err;
  EXPECT_NE(verbose.err.find("generated 10 tokens"), std::string::npos) << verbose.err;
}

TEST_F(CliTest, StreamedOutputIsAlwaysValidUtf8) {
  // Random byte-level tokens often form partial or malformed UTF-8: the stream must hold
  // back split sequences and replace malformed bytes, never print them raw.
  for (int seed = 1; seed <= 4; ++seed) {
    const Output o = Pocket("run " + Model() + " 'z' -n 48 --temp 1.5 --top-k 0 --top-p 1 "
                            "--min-p 0 --seed " + std::to_string(seed));
    ASSERT_EQ(o.rc, 0) << o.err;
    EXPECT_TRUE(IsValidUtf8(o.out)) << "seed " << seed;
  }
}

TEST_F(CliTest, SameSeedSameOutput) {
  const std::string args = " 'The cat' -n 24 --temp 1.0 --top-k 0 --top-p 1 --min-p 0";
  const Output a = Pocket("run " + Model() + args + " --seed 42");
  const Output b = Pocket("run " + Model() + args + " --seed 42");
  const Output c = Pocket("run " + Model() + args + " --seed 43");
  ASSERT_EQ(a.rc, 0) << a.err;
  EXPECT_EQ(a.out, b.out);
  EXPECT_NE(a.out, c.out);
}

TEST_F(CliTest, StopStringEndsOutputBeforeIt) {
  const Output full = Pocket("run " + Model() + " 'x' -n 24 --temp 0");
  ASSERT_EQ(full.rc, 0) << full.err;
  // Pick an ASCII letter that occurs after the start of the greedy output.
  size_t pos = std::string::npos;
  for (size_t i = 1; i < full.out.size(); ++i) {
    if (std::isalpha(static_cast<unsigned char>(full.out[i]))) {
      pos = i;
      break;
    }
  }
  if (pos == std::string::npos) GTEST_SKIP() << "no ASCII letter in: " << full.out;
  const std::string stop(1, full.out[pos]);
  const Output cut = Pocket("run " + Model() + " 'x' -n 24 --temp 0 --stop " + Quote(stop));
  ASSERT_EQ(cut.rc, 0) << cut.err;
  EXPECT_EQ(cut.out, full.out.substr(0, full.out.find(stop)));
}

TEST_F(CliTest, BadModelPathIsOneLineErrorAndNonZeroExit) {
  const Output o = Pocket("run /nonexistent/model.gguf 'hi'");
  EXPECT_NE(o.rc, 0);
  EXPECT_EQ(o.out, "");
  EXPECT_EQ(o.err.rfind("pocket run: ", 0), 0u) << o.err;
  EXPECT_EQ(std::count(o.err.begin(), o.err.end(), '\n'), 1) << o.err;
  EXPECT_NE(o.err.find("/nonexistent/model.gguf"), std::string::npos) << o.err;

  std::ofstream(*dir_ / "garbage.gguf") << "GGUF but not really";
  const Output g = Pocket("run " + Quote((*dir_ / "garbage.gguf").string()) + " 'hi'");
  EXPECT_NE(g.rc, 0);
  EXPECT_EQ(std::count(g.err.begin(), g.err.end(), '\n'), 1) << g.err;
}

TEST_F(CliTest, UnknownFlagIsUsageError) {
  const Output o = Pocket("run --no-such-flag");
  EXPECT_NE(o.rc, 0);
  EXPECT_EQ(o.out, "");
  EXPECT_FALSE(o.err.empty());
}

// Usage errors: exit 2, nothing on stdout, one line on stderr that names the command and
// what is wrong (CLI11's own exit codes 105-109 and its two-line messages before).
TEST_F(CliTest, UsageErrorsExitTwoWithOneLineNamingTheCommand) {
  struct Case {
    std::string args, want_prefix, want_text;
  };
  const std::vector<Case> cases = {
      {"frobnicate", "pocket: unknown command 'frobnicate'", "run"},
      {"", "", "Usage"},
      {"run --no-such-flag", "pocket run:", "--no-such-flag"},
      {"run --top-p 7 x", "pocket run:", "--top-p"},
      {"run --temp -1 x", "pocket run:", "--temp"},
      {"run --min-p 2 x", "pocket run:", "--min-p"},
      {"run --top-k -3 x", "pocket run:", "--top-k"},
      {"chat --repeat-penalty -1", "pocket chat:", "--repeat-penalty"},
      {"run -t -4 x", "pocket run:", "--threads"},
      {"serve --port 70000", "pocket serve:", "--port"},
  };
  for (const Case& c : cases) {
    const Output o = Pocket(c.args);
    EXPECT_EQ(o.rc, 2) << c.args << ": " << o.err;
    EXPECT_EQ(o.out, "") << c.args;
    EXPECT_EQ(o.err.rfind(c.want_prefix, 0), 0u) << c.args << ": " << o.err;
    EXPECT_NE(o.err.find(c.want_text), std::string::npos) << c.args << ": " << o.err;
    if (!c.args.empty()) {
      EXPECT_EQ(std::count(o.err.begin(), o.err.end(), '\n'), 1) << c.args << ": " << o.err;
    }
  }
}

TEST_F(CliTest, EveryModelCommandHasHelp) {
  for (const char* cmd : {"run", "chat", "perplexity", "bench"}) {
    const Output o = Pocket(std::string(cmd) + " --help");
    EXPECT_EQ(o.rc, 0) << cmd;
    EXPECT_NE(o.out.find("Usage"), std::string::npos) << cmd;
  }
}

// One flag vocabulary (llama.cpp's names) on every model command: each takes the flags that
// mean something to it, under the same names.
TEST_F(CliTest, SharedFlagsHaveTheSameNamesOnEveryModelCommand) {
  struct Case {
    std::string command;
    std::vector<std::string> flags;
  };
  const std::vector<Case> cases = {
      {"run",
       {"-m,--model", "-c,--ctx-size", "-t,--threads", "-n,--n-predict", "--temp", "-s,--seed"}},
      {"chat",
       {"-m,--model", "-c,--ctx-size", "-t,--threads", "-n,--n-predict", "--temp", "-s,--seed"}},
      {"serve",
       {"-m,--model", "-c,--ctx-size,--context", "-t,--threads", "-n,--n-predict", "--temp",
        "-s,--seed"}},
      {"agent",
       {"-m,--model", "-c,--ctx-size", "-t,--threads", "-n,--n-predict,--max-tokens",
        "--temp,--temperature", "-s,--seed"}},
      {"bench", {"-m,--model", "-t,--threads", "-n,--n-gen"}},
      {"perplexity", {"-m,--model", "-c,--ctx-size,--ctx", "-t,--threads"}},
  };
  for (const Case& c : cases) {
    const Output o = Pocket(c.command + " --help");
    ASSERT_EQ(o.rc, 0) << c.command;
    for (const std::string& flag : c.flags) {
      EXPECT_NE(o.out.find("  " + flag + " "), std::string::npos) << c.command << ": " << flag;
    }
    // The positional MODEL is taken everywhere.
    EXPECT_TRUE(std::regex_search(
        o.out, std::regex("Usage: pocket " + c.command + " \\[OPTIONS\\] \\[(args|model|models)")))
        << c.command << ": " << o.out;
  }
}

// Out-of-range values of the shared flags: exit 2, nothing on stdout, one line naming the
// command, the flag and the valid range, on every command that takes the flag.
TEST_F(CliTest, SharedFlagsRejectOutOfRangeValuesNamingTheRange) {
  struct Case {
    std::string args, command, flag, valid;
  };
  const std::string server = " --server ws://127.0.0.1:1/room";
  const std::vector<Case> cases = {
      {"run --top-p 7 x", "run", "--top-p", "valid: 0 to 1"},
      {"run --temp -1 x", "run", "--temp", "valid: 0 to 10"},
      {"chat --temp -1", "chat", "--temp", "valid: 0 to 10"},
      {"serve --temp -1", "serve", "--temp", "valid: 0 to 10"},
      {"serve --top-p 7", "serve", "--top-p", "valid: 0 to 1"},
      {"serve -n -2", "serve", "--n-predict", "valid: -1 (no limit) or 1 to 1073741824"},
      {"serve -n 0", "serve", "--n-predict", "valid: -1 (no limit) or 1 to 1073741824"},
      {"serve --seed -2", "serve", "--seed", "valid: -1 (random) or 0 and up"},
      {"agent --temp -1" + server, "agent", "--temp", "valid: 0 to 10"},
      {"agent --temperature 11" + server, "agent", "--temp", "valid: 0 to 10"},
      {"run -t -1 x", "run", "--threads", "valid: 0 to 1024"},
      {"serve -t -1", "serve", "--threads", "valid: 0 to 1024"},
      {"bench -t -1", "bench", "--threads", "valid: 0 to 1024"},
      {"perplexity -t -1 f.txt", "perplexity", "--threads", "valid: 0 to 1024"},
      {"agent -t 5000" + server, "agent", "--threads", "valid: 0 to 1024"},
      {"run -c -5 x", "run", "--ctx-size", "valid: 0 to 1048576"},
      {"chat -c -5", "chat", "--ctx-size", "valid: 0 to 1048576"},
      {"serve -c -5", "serve", "--ctx-size", "valid: 0 to 1048576"},
      {"serve --context -5", "serve", "--ctx-size", "valid: 0 to 1048576"},
      {"agent -c -5" + server, "agent", "--ctx-size", "valid: 0 to 1048576"},
      {"perplexity -c 1 f.txt", "perplexity", "--ctx-size", "valid: 2 to 1048576"},
      {"run -n -2 x", "run", "--n-predict", "valid: -1 (no limit) or 0 to 1073741824"},
      {"chat -n -2", "chat", "--n-predict", "valid: -1 (no limit) or 0 to 1073741824"},
      {"agent --max-tokens -2" + server, "agent", "--n-predict",
       "valid: -1 (no limit) or 0 to 1073741824"},
      {"bench -n -2", "bench", "--n-gen", "valid: 0 to 65536"},
      {"run --seed -2 x", "run", "--seed", "valid: -1 (random) or 0 and up"},
      {"agent -s -2" + server, "agent", "--seed", "valid: -1 (random) or 0 and up"},
      {"run --temp abc x", "run", "--temp", "abc is not a number"},
  };
  for (const Case& c : cases) {
    const Output o = Pocket(c.args);
    EXPECT_EQ(o.rc, 2) << c.args << ": " << o.err;
    EXPECT_EQ(o.out, "") << c.args;
    EXPECT_EQ(o.err.rfind("pocket " + c.command + ": " + c.flag + ": ", 0), 0u)
        << c.args << ": " << o.err;
    EXPECT_NE(o.err.find(c.valid), std::string::npos) << c.args << ": " << o.err;
    EXPECT_EQ(std::count(o.err.begin(), o.err.end(), '\n'), 1) << c.args << ": " << o.err;
  }
}

// A shared flag that has no meaning for a command is a usage error that says why.
TEST_F(CliTest, SharedFlagsThatDoNotApplySayWhy) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"bench --temp 0", "pocket bench: --temp does not apply to bench"},
      {"bench -c 64", "pocket bench: -c does not apply to bench"},
      {"perplexity --seed 1 f.txt", "pocket perplexity: --seed does not apply to perplexity"},
  };
  for (const auto& [args, want] : cases) {
    const Output o = Pocket(args);
    EXPECT_EQ(o.rc, 2) << args << ": " << o.err;
    EXPECT_EQ(o.err.rfind(want, 0), 0u) << args << ": " << o.err;
    EXPECT_EQ(std::count(o.err.begin(), o.err.end(), '\n'), 1) << args << ": " << o.err;
  }
}

TEST_F(CliTest, SharedFlagsWorkTogetherOnEachCommand) {
  const Output run = Pocket("run -m " + Model() + " -c 64 -t 1 -n 3 --temp 0 -s 1 'Hi'");
  ASSERT_EQ(run.rc, 0) << run.err;
  EXPECT_FALSE(run.out.empty());
  const Output chat = Pocket("chat " + Model() + " -c 64 -t 1 -n 3 --temp 0 --seed 1", "Hi\n");
  ASSERT_EQ(chat.rc, 0) << chat.err;
  std::string text;
  for (int i = 0; i < 100; ++i) text += "the cat sat on the mat. ";
  std::ofstream(*dir_ / "flags.txt") << text;
  const Output ppl = Pocket("perplexity -m " + Model() + " -f " +
                            Quote((*dir_ / "flags.txt").string()) + " -c 32 -t 1 --chunks 1");
  ASSERT_EQ(ppl.rc, 0) << ppl.err;
  const Output bench =
      Pocket("bench -m " + Model() + " -t 1 -p 0 -n 2 -r 1 --bandwidth-mib 8 --json");
  ASSERT_EQ(bench.rc, 0) << bench.err;
  EXPECT_EQ(nlohmann::json::parse(bench.out)["n_threads"], 1);
}

// Every command's --help (and `collab serve`'s) shows option defaults and at least one
// example command line.
TEST_F(CliTest, EveryHelpShowsDefaultsAndAnExample) {
  // The unknown-command message lists every command.
  const Output list = Pocket("no-such-command");
  const size_t at = list.err.find("(commands: ");
  ASSERT_NE(at, std::string::npos) << list.err;
  std::vector<std::string> commands;
  std::stringstream names(list.err.substr(at + 11, list.err.find(')', at) - at - 11));
  for (std::string name; std::getline(names >> std::ws, name, ',');) commands.push_back(name);
  ASSERT_GE(commands.size(), 10u) << list.err;
  commands.push_back("collab serve");
  commands.push_back("doc replay");
  const std::regex with_default("[A-Z]+(:[^=\\n]*)?=[^ \\n]");
  for (const std::string& command : commands) {
    const Output o = Pocket(command + " --help");
    EXPECT_EQ(o.rc, 0) << command;
    EXPECT_TRUE(std::regex_search(o.out, std::regex("\n  pocket " + command + "[ \n]")))
        << command << " has no example: " << o.out;
    // A group of subcommands (collab, doc) has no options of its own to show.
    if (o.out.find("[OPTIONS] SUBCOMMAND\n") != std::string::npos) continue;
    EXPECT_TRUE(std::regex_search(o.out, with_default))
        << command << " shows no default: " << o.out;
  }
  // The shared flags' defaults, where they differ by command.
  EXPECT_NE(Pocket("run --help").out.find("--temp FLOAT:in [0, 10]=0.8"), std::string::npos);
  EXPECT_NE(Pocket("agent --help").out.find("=0.7"), std::string::npos);
  EXPECT_NE(Pocket("serve --help").out.find("--port INT:in [0, 65535]=8080"), std::string::npos);
  // serve's sampling flags are request defaults: OpenAI's unless given.
  EXPECT_NE(Pocket("serve --help").out.find("--temp FLOAT:in [0, 10]=1 "), std::string::npos);
  EXPECT_NE(Pocket("perplexity --help").out.find("=512"), std::string::npos);
}

// No model anywhere: the error names where the default was looked for and how to give one.
TEST_F(CliTest, MissingDefaultModelErrorSaysHowToPointAtAModel) {
  // POCKET_MODEL naming a missing file is reported as such.
  const Output env =
      Shell("env POCKET_MODEL=/nonexistent/m.gguf " + std::string(POCKET_BIN) + " run Hi -n 2");
  EXPECT_EQ(env.rc, 1) << env.err;
  EXPECT_EQ(env.err.rfind("pocket run: POCKET_MODEL names '/nonexistent/m.gguf'", 0), 0u)
      << env.err;
  EXPECT_EQ(std::count(env.err.begin(), env.err.end(), '\n'), 1) << env.err;

  // A copy of the binary with no model near it (nothing installed beside it, no source tree
  // above it): every model command says where it looked and how to name a model.
  const fs::path lone = *dir_ / "lone" / "bin" / "pocket";
  fs::create_directories(lone.parent_path());
  fs::copy_file(POCKET_BIN, lone, fs::copy_options::overwrite_existing);
  const std::string ledger = Quote((*dir_ / "lone" / "ledger.db").string());
  for (const std::string& command :
       std::vector<std::string>{"run Hi -n 2", "chat", "perplexity f.txt", "bench",
                                "serve --port 0 --ledger " + ledger}) {
    const Output o = Shell("env -u POCKET_MODEL " + Quote(lone.string()) + " " + command);
    EXPECT_EQ(o.rc, 1) << command << ": " << o.err;
    EXPECT_EQ(o.out, "") << command;
    EXPECT_NE(
        o.err.find("the default model is missing (looked for " +
                   (*dir_ / "lone" / "share" / "pocket" / "models" / "default.gguf").string()),
        std::string::npos)
        << command << ": " << o.err;
    EXPECT_NE(o.err.find("-m PATH or set POCKET_MODEL"), std::string::npos)
        << command << ": " << o.err;
    EXPECT_EQ(std::count(o.err.begin(), o.err.end(), '\n'), 1) << command << ": " << o.err;
  }
}

// Rewrites the ggml type id of tensor `name` in a GGUF file's tensor table (u64 name length,
// name, u32 n_dims, n_dims x u64 ne, u32 type). Used only to give a type a smaller size, so
// the file stays within bounds.
void SetTensorType(const fs::path& path, const std::string& name, uint32_t type) {
  std::string bytes = Slurp(path);
  std::string key(8, '\0');
  uint64_t len = name.size();
  std::memcpy(key.data(), &len, 8);
  key += name;
  const size_t at = bytes.find(key);
  ASSERT_NE(at, std::string::npos) << name;
  uint32_t n_dims = 0;
  std::memcpy(&n_dims, bytes.data() + at + key.size(), 4);
  std::memcpy(bytes.data() + at + key.size() + 4 + 8 * n_dims, &type, 4);
  std::ofstream(path, std::ios::binary) << bytes;
}

TEST_F(CliTest, InspectTypesListsEachTypeWithItsMatMulPath) {
  const std::string model = std::string(POCKET_SOURCE_DIR) + "/models/default.gguf";
  const Output o = Pocket("inspect --types " + Quote(model));
  ASSERT_EQ(o.rc, 0) << o.err;
  EXPECT_NE(o.out.find("* 2 tensor type(s); matmul path on this CPU"), std::string::npos) << o.out;
  // The default model: Q8_0 matrices, F32 norms (the byte counts add up to inspect's total).
  EXPECT_TRUE(std::regex_search(
      o.out,
      std::regex("\nQ8_0 +\\|      43 \\| +5,767,168 \\| +6,127,616 \\| (fast|reference)\n")))
      << o.out;
  EXPECT_TRUE(std::regex_search(
      o.out, std::regex("\nF32 +\\|      13 \\| +3,328 \\| +13,312 \\| (fast|reference)\n")))
      << o.out;
  EXPECT_EQ(o.out.find("Note:"), std::string::npos) << o.out;

  // A type Pocket's GGUF reader does not map (I8, 24) is listed as unsupported; one it maps
  // (IQ1_S, 19) gets the path MatMul has for it today.
  const fs::path patched = *dir_ / "patched.gguf";
  fs::copy_file(model, patched, fs::copy_options::overwrite_existing);
  SetTensorType(patched, "blk.0.ffn_down.weight", 24);
  SetTensorType(patched, "blk.0.attn_q.weight", 19);
  const Output p = Pocket("inspect --types " + Quote(patched.string()));
  ASSERT_EQ(p.rc, 0) << p.err;
  EXPECT_NE(p.out.find("* 4 tensor type(s)"), std::string::npos) << p.out;
  EXPECT_TRUE(std::regex_search(p.out, std::regex("\nQ8_0 +\\|      41 \\|"))) << p.out;
  EXPECT_TRUE(std::regex_search(p.out, std::regex("\nI8 +\\|       1 \\| .* \\| unsupported\n")))
      << p.out;
  EXPECT_TRUE(
      std::regex_search(p.out, std::regex("\nIQ1_S +\\|       1 \\| +65,536 \\| +12,800 \\| "
                                          "(fast|reference|unsupported)\n")))
      << p.out;
  EXPECT_NE(p.out.find("* Note: "), std::string::npos) << p.out;
}

TEST_F(CliTest, ChatKeepsCacheAcrossTurnsAndResets) {
  const Output o = Pocket("chat " + Model() + " --temp 0 -n 6 --verbose",
                          "Hi there\nTell me more\n/reset\nHi there\n/exit\nignored\n");
  ASSERT_EQ(o.rc, 0) << o.err;
  std::vector<int> reused;
  const std::regex turn("turn: prompt (\\d+) tokens, (\\d+) reused");
  for (auto it = std::sregex_iterator(o.err.begin(), o.err.end(), turn);
       it != std::sregex_iterator(); ++it) {
    reused.push_back(std::stoi((*it)[2]));
  }
  ASSERT_EQ(reused.size(), 3u) << o.err;
  EXPECT_EQ(reused[0], 0);
  EXPECT_GT(reused[1], 0);   // the second turn evaluates only its new tokens
  EXPECT_EQ(reused[2], 0);   // after /reset
  EXPECT_NE(o.err.find("conversation reset"), std::string::npos);
  // Same first message after /reset, greedy: the same reply.
  const Output first = Pocket("chat " + Model() + " --temp 0 -n 6", "Hi there\n");
  ASSERT_EQ(first.rc, 0) << first.err;
  EXPECT_EQ(o.out.substr(0, first.out.size()), first.out);
  EXPECT_NE(o.out.find(first.out, first.out.size()), std::string::npos);
}

TEST_F(CliTest, PerplexityPrintsLlamaCppFormat) {
  std::string text;
  for (int i = 0; i < 400; ++i) text += "the cat sat on the mat and the dog ran far away. ";
  std::ofstream(*dir_ / "text.txt") << text;
  const Output o = Pocket("perplexity " + Model() + " " + Quote((*dir_ / "text.txt").string()) +
                          " -c 64 --chunks 3");
  ASSERT_EQ(o.rc, 0) << o.err;
  EXPECT_TRUE(std::regex_search(
      o.out, std::regex("^\\[1\\][0-9]+\\.[0-9]{4},\\[2\\][0-9]+\\.[0-9]{4},\\[3\\][0-9]+\\.[0-9]{4},\n")))
      << o.out;
  EXPECT_TRUE(std::regex_search(
      o.out, std::regex("\nFinal estimate: PPL = [0-9]+\\.[0-9]{4} \\+/- [0-9]+\\.[0-9]{5}\n$")))
      << o.out;
}

TEST_F(CliTest, PerplexityWithOnlyTextFileUsesDefaultModel) {
  std::string text;
  for (int i = 0; i < 200; ++i) text += "a short default model check. ";
  std::ofstream(*dir_ / "default.txt") << text;
  const Output o =
      Pocket("perplexity " + Quote((*dir_ / "default.txt").string()) + " -c 32 --chunks 1");
  ASSERT_EQ(o.rc, 0) << o.err;
  EXPECT_NE(o.out.find("Final estimate: PPL = "), std::string::npos) << o.out;
  EXPECT_NE(o.err.find("default.gguf"), std::string::npos) << o.err;
}

TEST_F(CliTest, UnknownChatTemplateNameIsOneLineError) {
  const Output o = Pocket("chat " + Model() + " --chat-template no-such-template", "hi\n");
  EXPECT_NE(o.rc, 0);
  EXPECT_EQ(o.out, "");
  EXPECT_EQ(std::count(o.err.begin(), o.err.end(), '\n'), 1) << o.err;
  EXPECT_NE(o.err.find("no-such-template"), std::string::npos) << o.err;
}

TEST_F(CliTest, ChatTemplateOverrideByName) {
  const Output o = Pocket("chat " + Model() + " --chat-template llama3 --temp 0 -n 4", "hi\n");
  EXPECT_EQ(o.rc, 0) << o.err;
}

TEST_F(CliTest, PerplexityRejectsTooShortText) {
  std::ofstream(*dir_ / "short.txt") << "too short";
  const Output o = Pocket("perplexity " + Model() + " " + Quote((*dir_ / "short.txt").string()) +
                          " -c 64");
  EXPECT_NE(o.rc, 0);
  EXPECT_NE(o.err.find("at least 128 tokens"), std::string::npos) << o.err;
}

TEST_F(CliTest, BenchJsonLinesAndTable) {
  const Output o = Pocket("bench " + Model() + " -p 8 -n 4 -r 2 -t 1 --bandwidth-mib 8 --json");
  ASSERT_EQ(o.rc, 0) << o.err;
  std::istringstream lines(o.out);
  std::string line;
  std::vector<nlohmann::json> rows;
  while (std::getline(lines, line)) rows.push_back(nlohmann::json::parse(line));
  ASSERT_EQ(rows.size(), 2u) << o.out;
  EXPECT_EQ(rows[0]["test"], "pp8");
  EXPECT_EQ(rows[1]["test"], "tg4");
  for (const auto& r : rows) {
    EXPECT_GT(r["avg_ts"].get<double>(), 0);
    EXPECT_EQ(r["samples_ts"].size(), 2u);
    EXPECT_EQ(r["n_threads"], 1);
    EXPECT_EQ(r["backend"], "cpu");
    EXPECT_GT(r["bandwidth_bytes_per_s"].get<double>(), 0);
    EXPECT_NE(r["bandwidth_method"].get<std::string>().find("STREAM"), std::string::npos);
  }
  EXPECT_TRUE(rows[0]["roofline_fraction"].is_null());
  EXPECT_GT(rows[1]["roofline_fraction"].get<double>(), 0);

  const Output table = Pocket("bench " + Model() + " -p 8 -n 4 -r 2 -t 1 --bandwidth-mib 8");
  ASSERT_EQ(table.rc, 0) << table.err;
  EXPECT_NE(table.out.find("pp8 |"), std::string::npos);
  EXPECT_NE(table.out.find("tg4 roofline:"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("memory read bandwidth:"), std::string::npos);
  EXPECT_NE(table.out.find("backend: cpu ("), std::string::npos) << table.out;

  // The reference backend is named as the kernels, not a SIMD target it does not use.
  const Output ref = Pocket("bench " + Model() +
                            " -p 0 -n 2 -r 1 -t 1 --bandwidth-mib 8 --json --backend reference");
  ASSERT_EQ(ref.rc, 0) << ref.err;
  const auto row = nlohmann::json::parse(ref.out);
  EXPECT_EQ(row["backend"], "reference");
  EXPECT_EQ(row["kernels"], "reference");
}

// --cpu-isa avx2 runs the AVX2 kernels (every x86-64 CI machine here has AVX2) and says so.
TEST_F(CliTest, BenchCanCapTheInstructionSet) {
  const Output o = Pocket("bench " + Model() +
                          " -p 0 -n 2 -r 1 -t 1 --bandwidth-mib 8 --json --cpu-isa avx2");
  if (o.rc != 0) {
    EXPECT_NE(o.err.find("no AVX2"), std::string::npos) << o.err;
    GTEST_SKIP() << o.err;
  }
  const auto row = nlohmann::json::parse(o.out);
  EXPECT_EQ(row["kernels"], "AVX2");
  EXPECT_EQ(row["test"], "tg2");
  const Output bad = Pocket("bench " + Model() + " --cpu-isa avx9");
  EXPECT_NE(bad.rc, 0);
  EXPECT_NE(bad.err.find("--cpu-isa"), std::string::npos) << bad.err;
}

}  // namespace
