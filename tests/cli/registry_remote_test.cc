// `pocket push` and `pocket pull` against a real registry: Debian's docker-registry (the
// CNCF distribution registry) started by the test on 127.0.0.1 with its storage in a temp
// dir, once plain and once with htpasswd auth, and a fault-injecting proxy in front of it
// (registry_proxy.py: dropped connections, a corrupt blob, 503s, lying sizes, a slow link
// for kill -9 and concurrent pulls). Skipped, saying so, when docker-registry, htpasswd or
// python3 is missing (scripts/deps.sh installs them).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "cli_testutil.h"

namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;

using pocket::cli_test::Lines;
using pocket::cli_test::Output;
using pocket::cli_test::Quote;
using pocket::cli_test::Slurp;

bool OnPath(const std::string& tool) {
  return std::system(("command -v " + tool + " >/dev/null 2>&1").c_str()) == 0;
}

int FreePort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  socklen_t len = sizeof(a);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

// A plain GET over loopback; "" when the connection fails.
std::string HttpGet(int port, const std::string& path) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    ::close(fd);
    return "";
  }
  const std::string req = "GET " + path + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  (void)!::write(fd, req.data(), req.size());
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof(buf))) > 0) out.append(buf, static_cast<size_t>(n));
  ::close(fd);
  return out;
}

// Starts `argv` with stdout/stderr to `log`; returns its pid.
pid_t Spawn(const std::vector<std::string>& argv, const fs::path& log) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    const std::string l = log.string();
    FILE* f = std::fopen(l.c_str(), "w");
    if (f) {
      ::dup2(fileno(f), 1);
      ::dup2(fileno(f), 2);
    }
    std::vector<char*> args;
    for (const std::string& s : argv) args.push_back(const_cast<char*>(s.c_str()));
    args.push_back(nullptr);
    ::execvp(args[0], args.data());
    std::_Exit(127);
  }
  return pid;
}

void Stop(pid_t& pid) {
  if (pid > 0) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
  }
  pid = -1;
}

// A docker-registry serving 127.0.0.1:port from storage under `dir`, htpasswd-protected
// when `htpasswd` is not empty, allowing manifest deletes (`pocket registry prune`) unless
// `allow_delete` is false. Waits until it answers.
pid_t StartRegistry(const fs::path& dir, int port, const std::string& htpasswd,
                    bool allow_delete = true) {
  fs::create_directories(dir);
  std::ofstream cfg(dir / "config.yml");
  cfg << "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n"
      << "  delete:\n    enabled: " << (allow_delete ? "true" : "false") << "\n"
      << "  filesystem:\n    rootdirectory: " << (dir / "data").string() << "\n"
      << "http:\n  addr: 127.0.0.1:" << port << "\n";
  if (!htpasswd.empty()) {
    cfg << "auth:\n  htpasswd:\n    realm: pocket-test\n    path: " << htpasswd << "\n";
  }
  cfg.close();
  const pid_t pid =
      Spawn({"docker-registry", "serve", (dir / "config.yml").string()}, dir / "registry.log");
  for (int i = 0; i < 200; ++i) {
    if (!HttpGet(port, "/v2/").empty()) return pid;
    std::this_thread::sleep_for(milliseconds(50));
  }
  ADD_FAILURE() << "docker-registry did not start: " << Slurp(dir / "registry.log");
  return pid;
}

class RegistryRemoteTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* tool : {"docker-registry", "htpasswd", "python3"}) {
      if (!OnPath(tool)) {
        GTEST_SKIP() << tool << " is not installed (scripts/deps.sh installs docker-registry, "
                     << "apache2-utils and python3): skipping the real-registry tests";
      }
    }
    dir_ = fs::temp_directory_path() /
           ("pocket_registry_remote_test." + std::to_string(getpid()) + "." +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    model_ = (dir_ / "tiny.gguf").string();
    const Output o =
        Pocket(dir_ / "s0",
               "make-model --shape tiny --vocab 512 --type f32 --seed 3 --out " + Quote(model_));
    ASSERT_EQ(o.rc, 0) << o.err;
    layer_size_ = static_cast<int64_t>(fs::file_size(model_));
    port_ = FreePort();
    registry_ = StartRegistry(dir_ / "registry", port_, "");
    const fs::path port_file = dir_ / "proxy.port";
    proxy_ = Spawn({"python3", POCKET_SOURCE_DIR "/tests/cli/registry_proxy.py", "--upstream",
                    "127.0.0.1:" + std::to_string(port_), "--port-file", port_file.string()},
                   dir_ / "proxy.log");
    for (int i = 0; i < 200 && !fs::exists(port_file); ++i) {
      std::this_thread::sleep_for(milliseconds(25));
    }
    ASSERT_TRUE(fs::exists(port_file)) << Slurp(dir_ / "proxy.log");
    proxy_port_ = std::stoi(Slurp(port_file));
    // The model, pushed once to the registry (the proxy's upstream) as team/tiny:v1.
    Output push = Pocket(dir_ / "src", "import " + Quote(model_) + " " + Reg() + "/team/tiny:v1");
    ASSERT_EQ(push.rc, 0) << push.err;
    push = Pocket(dir_ / "src", "push -q " + Reg() + "/team/tiny:v1");
    ASSERT_EQ(push.rc, 0) << push.err;
  }
  void TearDown() override {
    Stop(proxy_);
    Stop(registry_);
    if (!dir_.empty()) fs::remove_all(dir_);
  }

  std::string Reg() const { return "127.0.0.1:" + std::to_string(port_); }
  std::string Proxy() const { return "127.0.0.1:" + std::to_string(proxy_port_); }

  Output Pocket(const fs::path& store, const std::string& args, const std::string& env = "") {
    const fs::path base = dir_ / ("run" + std::to_string(counter_++));
    const std::string out = base.string() + ".out", err = base.string() + ".err";
    const std::string cmd = "POCKET_HOME=" + Quote(store.string()) + " " + env + " " + POCKET_BIN +
                            " " + args + " </dev/null >" + Quote(out) + " 2>" + Quote(err);
    const int status = std::system(cmd.c_str());
    Output o;
    o.rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    o.out = Slurp(out);
    o.err = Slurp(err);
    return o;
  }

  nlohmann::json ProxyCall(const std::string& path) {
    const std::string r = HttpGet(proxy_port_, path);
    const size_t body = r.find("\r\n\r\n");
    EXPECT_NE(body, std::string::npos) << r;
    return nlohmann::json::parse(r.substr(body + 4));
  }
  void Mode(const std::string& mode) { ProxyCall("/_proxy/mode?set=" + mode); }

  std::string Digest(const fs::path& store, const std::string& ref) {
    const Output o = Pocket(store, "ls --json");
    for (const auto& t : nlohmann::json::parse(o.out)) {
      if (t["name"].get<std::string>() + ":" + t["tag"].get<std::string>() == ref) {
        return t["digest"];
      }
    }
    return "";
  }

  // The store's blob files and partial downloads, by name.
  static std::vector<std::string> Files(const fs::path& dir) {
    std::vector<std::string> out;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(dir, ec)) out.push_back(e.path().filename());
    return out;
  }

  fs::path dir_;
  std::string model_;
  int64_t layer_size_ = 0;
  int port_ = 0, proxy_port_ = 0, counter_ = 0;
  pid_t registry_ = -1, proxy_ = -1;
};

TEST_F(RegistryRemoteTest, PushThenPullRoundTripKeepsDigestsAndTheModelRuns) {
  const std::string ref = Reg() + "/team/tiny:v1";
  // Idempotent: the blobs are there, nothing goes up again; chunked PATCH uploads too.
  Output o = Pocket(dir_ / "src", "push -q " + ref);
  ASSERT_EQ(o.rc, 0) << o.err;
  EXPECT_NE(o.out.find("0 blob(s) uploaded"), std::string::npos) << o.out;
  // Another repository: the registry links blobs per repository, so both go up, the layer
  // in PATCH chunks.
  o = Pocket(dir_ / "src", "push -q --chunk-bytes 100000 " + ref + " " + Reg() + "/other/tiny:v3");
  ASSERT_EQ(o.rc, 0) << o.err;
  EXPECT_NE(o.out.find("2 blob(s) uploaded"), std::string::npos) << o.out;

  for (const std::string& pulled : {ref, Reg() + "/other/tiny:v3"}) {
    const fs::path fresh = dir_ / ("fresh" + std::to_string(counter_));
    o = Pocket(fresh, "pull " + pulled);
    ASSERT_EQ(o.rc, 0) << o.err;
    EXPECT_EQ(Lines(o.out), 1) << o.out;
    EXPECT_EQ(Digest(fresh, pulled), Digest(dir_ / "src", ref)) << pulled;
    o = Pocket(fresh, "verify");
    EXPECT_EQ(o.rc, 0) << o.out << o.err;
    const Output by_file = Pocket(fresh, "run " + Quote(model_) + " Hello -n 6 --temp 0");
    const Output by_name = Pocket(fresh, "run " + pulled + " Hello -n 6 --temp 0");
    ASSERT_EQ(by_name.rc, 0) << by_name.err;
    EXPECT_EQ(by_name.out, by_file.out);
  }
  // Not a TTY: progress is JSON lines on stderr.
  o = Pocket(dir_ / "again", "pull " + ref);
  ASSERT_EQ(o.rc, 0) << o.err;
  std::istringstream lines(o.err);
  std::string line, last;
  while (std::getline(lines, line)) {
    const auto j = nlohmann::json::parse(line);
    EXPECT_EQ(j["op"], "pull");
    last = j["event"];
  }
  EXPECT_EQ(last, "done");
}

TEST_F(RegistryRemoteTest, HtpasswdRegistryNeedsCredentialsAndSaysSoInOneLine) {
  const fs::path auth_dir = dir_ / "auth";
  fs::create_directories(auth_dir);
  const std::string htpasswd = (auth_dir / "htpasswd").string();
  ASSERT_EQ(
      std::system(("htpasswd -Bbc " + Quote(htpasswd) + " me s3cret-pw >/dev/null 2>&1").c_str()),
      0);
  const int port = FreePort();
  pid_t reg = StartRegistry(auth_dir, port, htpasswd);
  const std::string ref = "127.0.0.1:" + std::to_string(port) + "/team/tiny:v1";
  ASSERT_EQ(Pocket(dir_ / "src", "import " + Quote(model_) + " " + ref).rc, 0);

  Output o = Pocket(dir_ / "src", "push -q " + ref);
  EXPECT_EQ(o.rc, 1);
  EXPECT_EQ(Lines(o.err), 1) << o.err;
  EXPECT_NE(o.err.find("registry 127.0.0.1:" + std::to_string(port)), std::string::npos) << o.err;
  EXPECT_NE(o.err.find("401"), std::string::npos) << o.err;
  o = Pocket(dir_ / "src", "push -q --user me:wrong-pw " + ref);
  EXPECT_EQ(o.rc, 1);
  EXPECT_NE(o.err.find("refused"), std::string::npos) << o.err;
  EXPECT_EQ(o.err.find("wrong-pw"), std::string::npos) << "the password is never printed";

  o = Pocket(dir_ / "src", "push -q " + ref,
             "POCKET_REGISTRY_USER=me POCKET_REGISTRY_PASSWORD=s3cret-pw");
  ASSERT_EQ(o.rc, 0) << o.err;
  o = Pocket(dir_ / "dst", "pull -q " + ref);
  EXPECT_EQ(o.rc, 1);
  EXPECT_NE(o.err.find("401"), std::string::npos) << o.err;
  EXPECT_EQ(Pocket(dir_ / "dst", "ls --json").out, "[]\n") << "nothing tagged";
  o = Pocket(dir_ / "dst", "pull -q --user me:s3cret-pw " + ref);
  ASSERT_EQ(o.rc, 0) << o.err;
  EXPECT_EQ(o.err.find("s3cret"), std::string::npos);
  EXPECT_EQ(Pocket(dir_ / "dst", "verify").rc, 0);
  Stop(reg);
}

TEST_F(RegistryRemoteTest, DroppedConnectionMidBlobResumesWithRange) {
  Mode("drop:1");
  const fs::path store = dir_ / "dst";
  const Output o = Pocket(store, "pull --retry-backoff-ms 50 " + Proxy() + "/team/tiny:v1");
  ASSERT_EQ(o.rc, 0) << o.err;
  EXPECT_NE(o.err.find("\"event\":\"retry\""), std::string::npos) << o.err;
  const auto stats = ProxyCall("/_proxy/stats");
  ASSERT_EQ(stats["layer_gets"], 2) << stats.dump();
  EXPECT_EQ(stats["ranges"][1], "bytes=" + std::to_string(layer_size_ / 2) + "-");
  EXPECT_EQ(stats["layer_bytes"], layer_size_) << "no byte fetched twice";
  EXPECT_EQ(Pocket(store, "verify").rc, 0);
}

TEST_F(RegistryRemoteTest, CorruptBlobIsAnErrorAndNothingLandsUnderItsName) {
  Mode("corrupt");
  const fs::path store = dir_ / "dst";
  Output o = Pocket(store, "pull -q --retry-backoff-ms 50 " + Proxy() + "/team/tiny:v1");
  EXPECT_EQ(o.rc, 1);
  EXPECT_EQ(Lines(o.err), 1) << o.err;
  EXPECT_NE(o.err.find("hashes to"), std::string::npos) << o.err;
  EXPECT_EQ(ProxyCall("/_proxy/stats")["layer_gets"], 2) << "retried once";
  // Only the config blob is in; the layer is nowhere under a blob name.
  EXPECT_EQ(Files(store / "blobs" / "sha256").size(), 1u);
  EXPECT_EQ(Pocket(store, "ls --json").out, "[]\n");
  o = Pocket(store, "verify");
  EXPECT_EQ(o.rc, 0) << o.out << o.err;
}

TEST_F(RegistryRemoteTest, ServerErrorsTwiceThenRecoveryIsRetriedToSuccess) {
  Mode("5xx:2");
  const Output o = Pocket(dir_ / "dst", "pull --retry-backoff-ms 50 " + Proxy() + "/team/tiny:v1");
  ASSERT_EQ(o.rc, 0) << o.err;
  size_t retries = 0;
  for (size_t p = o.err.find("\"event\":\"retry\""); p != std::string::npos;
       p = o.err.find("\"event\":\"retry\"", p + 1)) {
    ++retries;
  }
  EXPECT_EQ(retries, 2u) << o.err;
  EXPECT_EQ(Pocket(dir_ / "dst", "verify").rc, 0);
}

TEST_F(RegistryRemoteTest, RegistryThatLiesAboutSizesIsRefusedInOneLine) {
  for (const char* mode : {"lie_bigger", "lie_smaller"}) {
    Mode(mode);
    const fs::path store = dir_ / mode;
    const Output o = Pocket(store, "pull -q --retry-backoff-ms 50 " + Proxy() + "/team/tiny:v1");
    EXPECT_EQ(o.rc, 1) << mode;
    EXPECT_EQ(Lines(o.err), 1) << o.err;
    EXPECT_NE(o.err.find("Content-Length"), std::string::npos) << o.err;
    EXPECT_EQ(Pocket(store, "ls --json").out, "[]\n");
    EXPECT_EQ(Pocket(store, "verify").rc, 0);
  }
}

TEST_F(RegistryRemoteTest, KilledPullContinuesAndFetchesOnlyTheRest) {
  Mode("slow:200000");
  const fs::path store = dir_ / "dst";
  const std::string cmd = "exec env POCKET_HOME=" + Quote(store.string()) + " " + POCKET_BIN +
                          " pull -q " + Proxy() + "/team/tiny:v1";
  pid_t pid = Spawn({"/bin/sh", "-c", cmd}, dir_ / "killed.log");
  int64_t sent = 0;
  for (int i = 0; i < 400 && sent < layer_size_ / 4; ++i) {
    std::this_thread::sleep_for(milliseconds(10));
    sent = ProxyCall("/_proxy/stats")["layer_bytes"];
  }
  ASSERT_GE(sent, layer_size_ / 4);
  ASSERT_LT(sent, layer_size_) << "the link is too fast to kill mid-blob";
  Stop(pid);  // SIGKILL
  // The proxy's sender notices the dead peer at its next write or two: wait until its count
  // stops moving before starting the second run's count.
  auto first = ProxyCall("/_proxy/stats");
  for (int i = 0; i < 50; ++i) {
    std::this_thread::sleep_for(milliseconds(300));
    const auto now = ProxyCall("/_proxy/stats");
    if (now["layer_bytes"] == first["layer_bytes"]) break;
    first = now;
  }
  ProxyCall("/_proxy/reset");
  Mode("none");
  const Output o = Pocket(store, "pull " + Proxy() + "/team/tiny:v1");
  ASSERT_EQ(o.rc, 0) << o.err;
  EXPECT_NE(o.out.find("resumed"), std::string::npos) << o.out;
  const auto second = ProxyCall("/_proxy/stats");
  ASSERT_EQ(second["layer_gets"], 1);
  const int64_t again = second["layer_bytes"];
  EXPECT_LT(again, layer_size_) << "the rest only";
  EXPECT_GE(again + first["layer_bytes"].get<int64_t>(), layer_size_);
  EXPECT_EQ(second["ranges"][0], "bytes=" + std::to_string(layer_size_ - again) + "-");
  EXPECT_EQ(Pocket(store, "verify").rc, 0);
  EXPECT_TRUE(Files(store / "tmp").empty()) << "no partial file left";
}

// A full disk mid-blob, simulated by a file-size limit on the pull (a write past it fails
// with EFBIG, as it would with ENOSPC; SIGXFSZ ignored): one line naming the partial file,
// nothing under a final name, `verify` clean; a rerun with room continues from the partial
// file. A store that cannot be created (under a regular file) is one line naming it.
TEST_F(RegistryRemoteTest, FullDiskMidPullIsOneLineAndARerunWithRoomFinishes) {
  ASSERT_GT(layer_size_, 256 * 1024);
  const fs::path store = dir_ / "dst";
  // ulimit -f counts 512- or 1024-byte blocks depending on the shell: either way the limit
  // falls inside the layer.
  const std::string limited = "/bin/sh -c 'trap \"\" XFSZ; ulimit -f " +
                              std::to_string(layer_size_ / 2 / 1024) +
                              "; exec \"$0\" \"$@\"'";
  Output o = Pocket(store, "pull -q " + Reg() + "/team/tiny:v1", limited);
  EXPECT_NE(o.rc, 0);
  EXPECT_EQ(Lines(o.err), 1) << o.err;
  EXPECT_NE(o.err.find(".partial"), std::string::npos) << o.err;
  EXPECT_EQ(Pocket(store, "ls --json").out.find("team/tiny"), std::string::npos);
  EXPECT_EQ(Pocket(store, "verify").rc, 0);
  o = Pocket(store, "pull " + Reg() + "/team/tiny:v1");
  ASSERT_EQ(o.rc, 0) << o.err;
  EXPECT_NE(o.out.find("resumed"), std::string::npos) << o.out;
  EXPECT_EQ(Pocket(store, "verify").rc, 0);
  EXPECT_TRUE(Files(store / "tmp").empty()) << "no partial file left";

  const fs::path file = dir_ / "a-file";
  std::ofstream(file) << "x";
  o = Pocket(file / "store", "pull -q " + Reg() + "/team/tiny:v1");
  EXPECT_NE(o.rc, 0);
  EXPECT_EQ(Lines(o.err), 1) << o.err;
  EXPECT_NE(o.err.find((file / "store").string()), std::string::npos) << o.err;
}

TEST_F(RegistryRemoteTest, TwoConcurrentPullsDownloadTheBlobOnce) {
  Mode("slow:400000");
  const fs::path store = dir_ / "dst";
  std::vector<pid_t> pids;
  for (int i = 0; i < 2; ++i) {
    const std::string cmd = "exec env POCKET_HOME=" + Quote(store.string()) + " " + POCKET_BIN +
                            " pull -q " + Proxy() + "/team/tiny:v1";
    pids.push_back(Spawn({"/bin/sh", "-c", cmd}, dir_ / ("pull" + std::to_string(i) + ".log")));
  }
  for (pid_t p : pids) {
    int status = 0;
    ASSERT_EQ(::waitpid(p, &status, 0), p);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  const auto stats = ProxyCall("/_proxy/stats");
  EXPECT_EQ(stats["layer_gets"], 1) << stats.dump();
  EXPECT_EQ(stats["layer_bytes"], layer_size_);
  EXPECT_EQ(Pocket(store, "verify").rc, 0);
}

TEST_F(RegistryRemoteTest, PathLikeAndUnknownNamesAreOneLineErrors) {
  for (const std::string& ref :
       {Reg() + "/../../x", Reg() + "/team/../x:v1", std::string("../../x")}) {
    const Output o = Pocket(dir_ / "dst", "pull " + ref);
    EXPECT_EQ(o.rc, 2) << ref;
    EXPECT_EQ(Lines(o.err), 1) << o.err;
  }
  Output o = Pocket(dir_ / "dst", "pull -q " + Reg() + "/team/absent:v1");
  EXPECT_EQ(o.rc, 1);
  EXPECT_EQ(Lines(o.err), 1) << o.err;
  EXPECT_NE(o.err.find("not found"), std::string::npos) << o.err;
  o = Pocket(dir_ / "src", "push -q absent:v1 " + Reg() + "/team/absent:v1");
  EXPECT_EQ(o.rc, 1);
  EXPECT_EQ(Lines(o.err), 1) << o.err;
  EXPECT_FALSE(fs::exists(dir_ / "dst" / "blobs" / "sha256") &&
               !Files(dir_ / "dst" / "blobs" / "sha256").empty());
}

// The tags of `repo` on the registry at `port`, sorted, joined by ',' ("" when it has none
// or is unknown).
std::string TagsOf(int port, const std::string& repo) {
  const std::string r = HttpGet(port, "/v2/" + repo + "/tags/list");
  const size_t body = r.find("\r\n\r\n");
  if (r.rfind("HTTP/1.1 200", 0) != 0 || body == std::string::npos) return "";
  const auto j = nlohmann::json::parse(r.substr(body + 4), nullptr, false);
  std::vector<std::string> tags;
  if (j.is_object() && j.contains("tags") && j["tags"].is_array()) {
    for (const auto& t : j["tags"]) tags.push_back(t.get<std::string>());
  }
  std::sort(tags.begin(), tags.end());
  std::string out;
  for (const std::string& t : tags) out += (out.empty() ? "" : ",") + t;
  return out;
}

TEST_F(RegistryRemoteTest, StagedModelsArePrunedOnlyOnceExpired) {
  // Two checkpoints staged to team/: `old` staged with the clock a day back for 1h (expired
  // now), `fresh` for 7d from now. team/tiny:v1 (SetUp's push) is not staging.
  const std::string fresh_model = (dir_ / "fresh.gguf").string();
  ASSERT_EQ(Pocket(dir_ / "s0", "make-model --shape tiny --vocab 512 --type f32 --seed 4 --out " +
                                    Quote(fresh_model))
                .rc,
            0);
  const std::string day_ago = "POCKET_NOW=" + [] {
    const std::time_t t = std::time(nullptr) - 86400;
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
    return std::string(buf);
  }();
  Output o =
      Pocket(dir_ / "src", "stage -q " + Quote(model_) + " old:v1 --ttl 1h --to " + Reg() + "/team",
             day_ago);
  ASSERT_EQ(o.rc, 0) << o.err;
  EXPECT_NE(o.out.find("pushed to " + Reg() + "/team/staging/old:v1"), std::string::npos) << o.out;
  o = Pocket(dir_ / "src",
             "stage -q " + Quote(fresh_model) + " fresh:v1 --ttl 7d --to " + Reg() + "/team");
  ASSERT_EQ(o.rc, 0) << o.err;
  EXPECT_EQ(TagsOf(port_, "team/staging/old"), "v1");
  EXPECT_EQ(TagsOf(port_, "team/staging/fresh"), "v1");
  // A referrers-schema tag of old:v1 (where signatures live without the referrers API): some
  // manifest tagged sha256-<hex of old:v1's digest>, which must go with it.
  const std::string old_digest = Digest(dir_ / "src", "staging/old:v1");
  ASSERT_EQ(old_digest.rfind("sha256:", 0), 0u);
  const std::string referrers_tag = "sha256-" + old_digest.substr(7);
  o = Pocket(dir_ / "src",
             "push -q " + Reg() + "/team/tiny:v1 " + Reg() + "/team/staging/old:" + referrers_tag);
  ASSERT_EQ(o.rc, 0) << o.err;

  // A dry run lists and deletes nothing.
  o = Pocket(dir_ / "src", "registry prune " + Reg() + "/team --dry-run");
  ASSERT_EQ(o.rc, 0) << o.err;
  EXPECT_NE(o.out.find("would remove " + Reg() + "/team/staging/old:v1 sha256:"), std::string::npos)
      << o.out;
  EXPECT_NE(o.out.find("kept " + Reg() + "/team/staging/fresh:v1 sha256:"), std::string::npos)
      << o.out;
  EXPECT_EQ(TagsOf(port_, "team/staging/old"), referrers_tag + ",v1");

  o = Pocket(dir_ / "src", "registry prune " + Reg() + "/team");
  ASSERT_EQ(o.rc, 0) << o.err;
  EXPECT_NE(o.out.find("removed " + Reg() + "/team/staging/old:v1 sha256:"), std::string::npos)
      << o.out;
  EXPECT_NE(o.out.find("removed 1 expired manifest(s) of 2 staging repositories"),
            std::string::npos)
      << o.out;
  EXPECT_NE(o.out.find("and 1 signature index(es) of them"), std::string::npos) << o.out;
  EXPECT_EQ(TagsOf(port_, "team/staging/old"), "");
  EXPECT_EQ(TagsOf(port_, "team/staging/fresh"), "v1");
  EXPECT_EQ(TagsOf(port_, "team/tiny"), "v1");
  o = Pocket(dir_ / "dst", "pull -q " + Reg() + "/team/staging/old:v1");
  EXPECT_EQ(o.rc, 1);
  EXPECT_NE(o.err.find("not found"), std::string::npos) << o.err;
  // What stays still pulls, with its expiry in the manifest.
  o = Pocket(dir_ / "dst", "pull -q " + Reg() + "/team/staging/fresh:v1");
  ASSERT_EQ(o.rc, 0) << o.err;
  o = Pocket(dir_ / "dst", "show --json " + Reg() + "/team/staging/fresh:v1");
  EXPECT_FALSE(nlohmann::json::parse(o.out)["expires"].get<std::string>().empty());
  ASSERT_EQ(Pocket(dir_ / "dst", "pull -q " + Reg() + "/team/tiny:v1").rc, 0);

  // Nothing left to remove; another namespace has no staging repositories.
  o = Pocket(dir_ / "src", "registry prune " + Reg() + "/team");
  ASSERT_EQ(o.rc, 0) << o.err;
  EXPECT_NE(o.out.find("removed 0 expired manifest(s)"), std::string::npos) << o.out;
  o = Pocket(dir_ / "src", "registry prune " + Reg() + "/other");
  ASSERT_EQ(o.rc, 0) << o.err;
  EXPECT_NE(o.out.find("of 0 staging repositories"), std::string::npos) << o.out;
  // A week on, the clock says `fresh` has expired too.
  o = Pocket(dir_ / "src", "registry prune " + Reg() + "/team", "POCKET_NOW=2099-01-01T00:00:00Z");
  ASSERT_EQ(o.rc, 0) << o.err;
  EXPECT_EQ(TagsOf(port_, "team/staging/fresh"), "");
  EXPECT_EQ(TagsOf(port_, "team/tiny"), "v1");
}

TEST_F(RegistryRemoteTest, PruneOnARegistryWithoutDeleteIsOneLine) {
  const int port = FreePort();
  pid_t reg = StartRegistry(dir_ / "nodelete", port, "", /*allow_delete=*/false);
  const std::string host = "127.0.0.1:" + std::to_string(port);
  Output o =
      Pocket(dir_ / "src", "stage -q " + Quote(model_) + " old:v1 --ttl 1h --to " + host + "/team",
             "POCKET_NOW=2020-01-01T00:00:00Z");
  ASSERT_EQ(o.rc, 0) << o.err;
  o = Pocket(dir_ / "src", "registry prune " + host + "/team");
  Stop(reg);
  EXPECT_EQ(o.rc, 1);
  EXPECT_EQ(Lines(o.err), 1) << o.err;
  EXPECT_NE(o.err.find("deleting manifests is disabled (HTTP 405"), std::string::npos) << o.err;
  EXPECT_NE(o.err.find("storage.delete.enabled: true"), std::string::npos) << o.err;
}

// Signatures against the real registry (distribution 2.8: no referrers API, so the
// referrers tag sha256-<hex> is used): a signed model is pushed with its signature, pulled
// with it, promoted in the registry with a trust file, refused without a trusted signature.
// HttpGet with an Accept header (the registry serves an OCI index only to a client that
// accepts one), spliced into HttpGet's request line: X-Ignore takes its " HTTP/1.1" tail.
std::string HttpGetAccepting(int port, const std::string& path, const std::string& accept) {
  return HttpGet(port, path + " HTTP/1.1\r\nAccept: " + accept + "\r\nX-Ignore: x");
}

TEST_F(RegistryRemoteTest, SignedModelIsPushedPulledAndPromotedRemotelyOnlyWithTrust) {
  const fs::path src = dir_ / "src";
  const std::string key = (dir_ / "alice.key").string();
  const std::string other_key = (dir_ / "mallory.key").string();
  ASSERT_EQ(Pocket(src, "sign --generate-key " + Quote(key) + " --name alice").rc, 0);
  ASSERT_EQ(Pocket(src, "sign --generate-key " + Quote(other_key) + " --name mallory").rc, 0);
  const std::string trust = (dir_ / "trusted-keys").string();
  std::ofstream(trust) << Slurp(key + ".pub");
  const std::string rc = Reg() + "/team/tiny:v1";
  const std::string digest = Digest(src, rc);
  ASSERT_FALSE(digest.empty());

  // Unsigned in the registry (SetUp pushed it): refused, nothing tagged.
  Output o = Pocket(src, "promote --remote " + rc + " --to :release --trust " + Quote(trust));
  EXPECT_EQ(o.rc, 1);
  EXPECT_EQ(Lines(o.err), 1) << o.err;
  EXPECT_NE(o.err.find("has no signature"), std::string::npos) << o.err;
  // Signed by an untrusted key and pushed: still refused.
  ASSERT_EQ(Pocket(src, "sign " + rc + " --key " + Quote(other_key)).rc, 0);
  o = Pocket(src, "push -q " + rc);
  ASSERT_EQ(o.rc, 0) << o.err;
  EXPECT_NE(o.out.find("1 signature(s)"), std::string::npos) << o.out;
  o = Pocket(src, "promote --remote " + rc + " --to :release --trust " + Quote(trust));
  EXPECT_EQ(o.rc, 1);
  EXPECT_EQ(Lines(o.err), 1) << o.err;
  EXPECT_NE(o.err.find("signed only by keys not in"), std::string::npos) << o.err;
  EXPECT_EQ(HttpGet(port_, "/v2/team/tiny/tags/list").find("release"), std::string::npos);

  // Signed by alice and pushed: the referrers tag lists both signatures.
  ASSERT_EQ(Pocket(src, "sign " + rc + " --key " + Quote(key)).rc, 0);
  o = Pocket(src, "push -q " + rc);
  ASSERT_EQ(o.rc, 0) << o.err;
  EXPECT_NE(o.out.find("2 signature(s)"), std::string::npos) << o.out;
  const std::string referrers_tag = "sha256-" + digest.substr(7);
  EXPECT_NE(HttpGet(port_, "/v2/team/tiny/tags/list").find(referrers_tag), std::string::npos);
  const std::string index = HttpGetAccepting(port_, "/v2/team/tiny/manifests/" + referrers_tag,
                                             "application/vnd.oci.image.index.v1+json");
  EXPECT_EQ(nlohmann::json::parse(index.substr(index.find("\r\n\r\n") + 4))["manifests"].size(), 2u)
      << index;

  o = Pocket(src, "verify --signatures --remote " + rc + " --trust " + Quote(trust));
  EXPECT_EQ(o.rc, 0) << o.out << o.err;
  EXPECT_NE(o.out.find("signed by alice"), std::string::npos) << o.out;
  o = Pocket(src, "promote --remote " + rc + " --to :release --trust " + Quote(trust));
  ASSERT_EQ(o.rc, 0) << o.err;
  EXPECT_NE(o.out.find("signed by alice"), std::string::npos) << o.out;
  // To another repository: blobs mounted, signatures copied along.
  o = Pocket(src, "promote --remote " + rc + " --to " + Reg() + "/prod/tiny:release --trust " +
                      Quote(trust));
  ASSERT_EQ(o.rc, 0) << o.err;

  // A fresh store pulls the released model with its signatures; they verify and allow a
  // local promotion there too.
  for (const std::string& released : {Reg() + "/team/tiny:release", Reg() + "/prod/tiny:release"}) {
    const fs::path fresh = dir_ / ("fresh" + std::to_string(counter_));
    o = Pocket(fresh, "pull -q " + released);
    ASSERT_EQ(o.rc, 0) << o.err;
    EXPECT_NE(o.out.find("with 2 signature(s)"), std::string::npos) << o.out;
    EXPECT_EQ(Digest(fresh, released), digest);
    o = Pocket(fresh, "verify --signatures --trust " + Quote(trust));
    EXPECT_EQ(o.rc, 0) << o.out;
    EXPECT_EQ(
        Pocket(fresh, "promote " + released + " --to local/tiny:ok --trust " + Quote(trust)).rc, 0);
    EXPECT_EQ(Pocket(fresh, "verify").rc, 0);
  }
  // Without a trusted key, the promotion is refused in the registry too.
  o = Pocket(src, "promote --remote " + rc + " --to :other --trust " + Quote(other_key + ".pub"));
  EXPECT_EQ(o.rc, 0) << o.err;  // mallory's key is trusted by that file: her signature counts
  const std::string nobody = (dir_ / "nobody").string();
  ASSERT_EQ(Pocket(src, "sign --generate-key " + Quote(nobody)).rc, 0);
  o = Pocket(src, "promote --remote " + rc + " --to :nobody --trust " + Quote(nobody + ".pub"));
  EXPECT_EQ(o.rc, 1);
  EXPECT_EQ(Lines(o.err), 1) << o.err;
  EXPECT_EQ(HttpGet(port_, "/v2/team/tiny/tags/list").find("nobody"), std::string::npos);
}

// Variants: an index of two variants pushed to the real registry (the index and both
// children); a pull through the proxy with injected small memory fetches the small variant
// only (the proxy saw its layer's bytes and no other), the tag names the index and runs that
// variant; --variant fetches the other one; when none fits nothing is fetched.
TEST_F(RegistryRemoteTest, AnIndexOfVariantsPullsOnlyTheVariantThatFits) {
  const fs::path src = dir_ / "src";
  const std::string small = (dir_ / "small.gguf").string();
  Output o = Pocket(dir_ / "s0", "make-model --shape tiny --vocab 512 --type q8_0 --seed 7 --out " +
                                     Quote(small));
  ASSERT_EQ(o.rc, 0) << o.err;
  const int64_t small_size = static_cast<int64_t>(fs::file_size(small));
  ASSERT_EQ(Pocket(src, "import " + Quote(model_) + " tiny:f32").rc, 0);
  ASSERT_EQ(Pocket(src, "import " + Quote(small) + " tiny:q8").rc, 0);
  ASSERT_EQ(Pocket(src, "index tiny:multi tiny:f32 tiny:q8").rc, 0);
  o = Pocket(src, "index tiny:multi --json");
  ASSERT_EQ(o.rc, 0) << o.err;
  const auto listing = nlohmann::json::parse(o.out);
  const uint64_t big_need = listing["variants"][0]["need_bytes"];
  const uint64_t small_need = listing["variants"][1]["need_bytes"];
  const std::string small_digest = listing["variants"][1]["digest"];
  const std::string between =
      "POCKET_MACHINE=memory=" + std::to_string((big_need + small_need) / 2);

  o = Pocket(src, "push -q tiny:multi " + Reg() + "/team/multi:v1");
  ASSERT_EQ(o.rc, 0) << o.err;
  EXPECT_NE(o.out.find("4 blob(s) uploaded"), std::string::npos)
      << "each variant's config and layer (a new repository): " << o.out;

  const fs::path dst = dir_ / "dst";
  const std::string ref = Proxy() + "/team/multi:v1";
  ProxyCall("/_proxy/reset");
  o = Pocket(dst, "pull -q " + ref, between);
  ASSERT_EQ(o.rc, 0) << o.err;
  EXPECT_NE(o.out.find(ref + ": variant Q8_0"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("(does not fit)"), std::string::npos) << o.out;
  auto stats = ProxyCall("/_proxy/stats");
  EXPECT_EQ(stats["layer_gets"], 1) << stats.dump();
  EXPECT_EQ(stats["layer_bytes"], small_size) << "only the small variant's layer";
  EXPECT_EQ(Pocket(dst, "verify").rc, 0);
  o = Pocket(dst, "index " + ref + " --json");
  ASSERT_EQ(o.rc, 0) << o.err;
  const auto pulled = nlohmann::json::parse(o.out);
  EXPECT_EQ(pulled["variants"][0]["in_store"], false);
  EXPECT_EQ(pulled["variants"][1]["in_store"], true);
  EXPECT_EQ(pulled["chosen"], small_digest) << "a run takes what the store holds";
  const std::string gen = " Hello -n 12 --temp 1 -s 1";
  const Output small_file = Pocket(dst, "run " + Quote(small) + gen);
  o = Pocket(dst, "run " + ref + gen);
  ASSERT_EQ(o.rc, 0) << o.err;
  EXPECT_EQ(o.out, small_file.out);
  // Pushing it on is refused: the registry would refuse an index without its children.
  o = Pocket(dst, "push -q " + ref + " " + Reg() + "/team/partial:v1");
  EXPECT_EQ(o.rc, 1);
  EXPECT_NE(o.err.find("variant F32"), std::string::npos) << o.err;

  // --variant fetches the other; none fits fetches nothing.
  ProxyCall("/_proxy/reset");
  o = Pocket(dst, "pull -q --variant F32 " + ref, between);
  ASSERT_EQ(o.rc, 0) << o.err;
  EXPECT_NE(o.out.find("chosen by --variant"), std::string::npos) << o.out;
  EXPECT_EQ(ProxyCall("/_proxy/stats")["layer_bytes"], layer_size_);
  EXPECT_EQ(Pocket(dst, "run " + ref + " --variant F32" + gen).out,
            Pocket(dst, "run " + Quote(model_) + gen).out);
  ProxyCall("/_proxy/reset");
  o = Pocket(dir_ / "none", "pull -q " + ref, "POCKET_MACHINE=memory=1K");
  EXPECT_EQ(o.rc, 1);
  EXPECT_EQ(Lines(o.err), 1) << o.err;
  EXPECT_NE(o.err.find("no variant of " + ref + " fits this machine: 1.0 KiB available"),
            std::string::npos)
      << o.err;
  EXPECT_EQ(ProxyCall("/_proxy/stats")["layer_gets"], 0);
  EXPECT_EQ(Pocket(dir_ / "none", "ls --json").out, "[]\n");
}

}  // namespace
