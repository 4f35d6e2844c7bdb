// End-to-end tests of the model store's commands: the built `pocket` binary, run through the
// shell with POCKET_HOME pointing at a store in a temp dir, on a tiny model written by
// `pocket make-model`.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "cli_testutil.h"

namespace {

namespace fs = std::filesystem;

using pocket::cli_test::Lines;
using pocket::cli_test::Output;
using pocket::cli_test::Quote;
using pocket::cli_test::Slurp;

class RegistryCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("pocket_registry_cli_test." + std::to_string(getpid()) + "." +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    store_ = (dir_ / "store").string();
    model_ = (dir_ / "tiny.gguf").string();
    const Output o =
        Pocket("make-model --shape tiny --vocab 512 --type f32 --seed 3 --out " + Quote(model_));
    ASSERT_EQ(o.rc, 0) << o.err;
  }
  void TearDown() override { fs::remove_all(dir_); }

  // `env` ("NAME=VALUE", e.g. the injected clock POCKET_NOW) goes before the command.
  Output Pocket(const std::string& args, const std::string& env = "") {
    const fs::path base = dir_ / ("run" + std::to_string(counter_++));
    const std::string out = base.string() + ".out", err = base.string() + ".err";
    const std::string cmd = "POCKET_HOME=" + Quote(store_) + " " + env + " " + POCKET_BIN + " " +
                            args + " </dev/null >" + Quote(out) + " 2>" + Quote(err);
    const int status = std::system(cmd.c_str());
    Output o;
    o.rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    o.out = Slurp(out);
    o.err = Slurp(err);
    return o;
  }

  fs::path dir_;
  std::string store_, model_;
  int counter_ = 0;
};

TEST_F(RegistryCliTest, ImportLsShowRunRmGcVerifyRoundTrip) {
  Output o = Pocket("import " + Quote(model_) + " tiny:v1");
  ASSERT_EQ(o.rc, 0) << o.err;
  EXPECT_NE(o.out.find("tiny:v1"), std::string::npos) << o.out;
  o = Pocket("import " + Quote(model_) + " team/tiny");
  ASSERT_EQ(o.rc, 0) << o.err;
  EXPECT_NE(o.out.find("already in the store"), std::string::npos) << o.out;

  o = Pocket("ls --json");
  ASSERT_EQ(o.rc, 0) << o.err;
  const auto tags = nlohmann::json::parse(o.out);
  ASSERT_EQ(tags.size(), 2u);
  EXPECT_EQ(tags[0]["name"], "team/tiny");
  EXPECT_EQ(tags[0]["tag"], "latest");
  EXPECT_EQ(tags[1]["name"], "tiny");
  EXPECT_EQ(tags[0]["digest"], tags[1]["digest"]);  // one model, two tags
  o = Pocket("ls");
  ASSERT_EQ(o.rc, 0);
  EXPECT_EQ(Lines(o.out), 3) << o.out;
  EXPECT_NE(o.out.find("team/tiny:latest"), std::string::npos) << o.out;

  o = Pocket("show tiny:v1 --json");
  ASSERT_EQ(o.rc, 0) << o.err;
  const auto shown = nlohmann::json::parse(o.out);
  EXPECT_EQ(shown["config"]["architecture"], "llama");
  EXPECT_EQ(shown["manifest"]["layers"][0]["mediaType"], "application/vnd.pocket.model.gguf.v1");

  // The stored model runs by name, with the same output as its file.
  const Output by_file = Pocket("run " + Quote(model_) + " Hello -n 6 --temp 0");
  const Output by_name = Pocket("run tiny:v1 Hello -n 6 --temp 0");
  ASSERT_EQ(by_name.rc, 0) << by_name.err;
  EXPECT_EQ(by_name.out, by_file.out);
  EXPECT_EQ(Pocket("run -m team/tiny Hello -n 6 --temp 0").out, by_file.out);
  EXPECT_EQ(Pocket("inspect tiny:v1").rc, 0);

  ASSERT_EQ(Pocket("rm tiny:v1").rc, 0);
  o = Pocket("gc");
  ASSERT_EQ(o.rc, 0) << o.err;
  EXPECT_NE(o.out.find("removed 0 blob(s)"), std::string::npos) << o.out;
  ASSERT_EQ(Pocket("rm team/tiny").rc, 0);
  o = Pocket("gc");
  EXPECT_NE(o.out.find("removed 3 blob(s)"), std::string::npos) << o.out;
  o = Pocket("verify");
  EXPECT_EQ(o.rc, 0) << o.out;
  o = Pocket("ls --json");
  EXPECT_EQ(o.out, "[]\n");
}

TEST_F(RegistryCliTest, BadNamesAndMissingModelsAreOneLineErrors) {
  Output o = Pocket("import " + Quote(model_) + " ../../x");
  EXPECT_EQ(o.rc, 2);
  EXPECT_EQ(Lines(o.err), 1) << o.err;
  EXPECT_EQ(o.err.rfind("pocket import: '../../x'", 0), 0u) << o.err;
  EXPECT_FALSE(fs::exists(store_));
  for (const std::string cmd : {"show nothing:here", "rm nothing", "run nothing:here hi"}) {
    o = Pocket(cmd);
    EXPECT_EQ(o.rc, 1) << cmd;
    EXPECT_EQ(Lines(o.err), 1) << cmd << ": " << o.err;
    EXPECT_NE(o.err.find("nothing"), std::string::npos) << o.err;
  }
  o = Pocket("import " + Quote((dir_ / "missing.gguf").string()) + " x");
  EXPECT_NE(o.rc, 0);
  EXPECT_EQ(Lines(o.err), 1) << o.err;
  // A store that is a file: one line naming it.
  std::ofstream(store_) << "x";
  o = Pocket("import " + Quote(model_) + " x");
  EXPECT_EQ(o.rc, 1);
  EXPECT_EQ(Lines(o.err), 1) << o.err;
  EXPECT_NE(o.err.find(store_), std::string::npos) << o.err;
}

TEST_F(RegistryCliTest, VerifyReportsACorruptBlobAndRepairRemovesIt) {
  ASSERT_EQ(Pocket("import " + Quote(model_) + " tiny").rc, 0);
  const auto shown = nlohmann::json::parse(Pocket("show tiny --json").out);
  const std::string blob = shown["path"];
  {
    std::fstream f(blob, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(64);
    f.put('\x01');
  }
  Output o = Pocket("verify");
  EXPECT_EQ(o.rc, 1);
  EXPECT_NE(o.out.find("bad blob sha256:" + fs::path(blob).filename().string()), std::string::npos)
      << o.out;
  EXPECT_NE(o.out.find("broken tag tiny:latest"), std::string::npos) << o.out;
  o = Pocket("verify --repair");
  EXPECT_EQ(o.rc, 0) << o.out;
  EXPECT_FALSE(fs::exists(blob));
  EXPECT_EQ(Pocket("ls --json").out, "[]\n");
  EXPECT_EQ(Pocket("verify").rc, 0);
  // The model can be imported again.
  EXPECT_EQ(Pocket("import " + Quote(model_) + " tiny").rc, 0);
  EXPECT_EQ(Pocket("verify").rc, 0);
}

// The store is an OCI image layout: skopeo (Debian's, when installed) copies a stored model
// out of it and into a fresh layout, which pocket then reads and runs.
TEST_F(RegistryCliTest, SkopeoCopiesModelsInAndOutOfTheStore) {
  if (std::system("command -v skopeo >/dev/null 2>&1") != 0) GTEST_SKIP() << "no skopeo";
  ASSERT_EQ(Pocket("import " + Quote(model_) + " tiny:v1").rc, 0);
  const std::string other = (dir_ / "other").string();
  const std::string copy = "skopeo copy -q " + Quote("oci:" + store_ + ":tiny:v1") + " " +
                           Quote("oci:" + other + ":copied:v2") + " >/dev/null 2>&1";
  ASSERT_EQ(std::system(copy.c_str()), 0);
  const Output listed = Pocket("ls --json --store " + Quote(other));
  ASSERT_EQ(listed.rc, 0) << listed.err;
  const auto tags = nlohmann::json::parse(listed.out);
  ASSERT_EQ(tags.size(), 1u);
  EXPECT_EQ(tags[0]["name"], "copied");
  EXPECT_EQ(Pocket("verify --store " + Quote(other)).rc, 0);
  const std::string saved = store_;
  store_ = other;
  const Output ran = Pocket("run copied:v2 Hello -n 4 --temp 0");
  store_ = saved;
  ASSERT_EQ(ran.rc, 0) << ran.err;
  EXPECT_EQ(ran.out, Pocket("run " + Quote(model_) + " Hello -n 4 --temp 0").out);
}

TEST_F(RegistryCliTest, EveryStoreCommandHasHelpWithAnExample) {
  for (const std::string cmd : {"import", "ls", "show", "rm", "gc", "verify"}) {
    const Output o = Pocket(cmd + " --help");
    EXPECT_EQ(o.rc, 0) << cmd;
    EXPECT_NE(o.out.find("Examples:\n  pocket " + cmd), std::string::npos) << o.out;
    EXPECT_NE(o.out.find("--store"), std::string::npos) << o.out;
  }
}

TEST_F(RegistryCliTest, StageImportsUnderStagingWithAnExpiryAndGcRemovesItOnceExpired) {
  // Stage at 21:00 for 1h (default name and tag) and for 7d; a plain tag shares the bytes.
  const std::string now = "POCKET_NOW=2026-12-07T21:00:00Z ";
  Output o = Pocket("stage " + Quote(model_) + " --ttl 1h", now);
  ASSERT_EQ(o.rc, 0) << o.err;
  EXPECT_NE(o.out.find("expires 2026-12-07T22:00:00Z (in 1h)"), std::string::npos) << o.out;
  o = Pocket("stage " + Quote(model_) + " tiny:week --ttl 7d", now);
  ASSERT_EQ(o.rc, 0) << o.err;
  ASSERT_EQ(Pocket("import " + Quote(model_) + " tiny:v1").rc, 0);
  o = Pocket("ls --json");
  const auto tags = nlohmann::json::parse(o.out);
  ASSERT_EQ(tags.size(), 3u);
  EXPECT_EQ(tags[0]["name"], "staging/tiny");                // from the file's name
  EXPECT_EQ(tags[0]["tag"].get<std::string>().size(), 12u);  // its sha256's first 12 hex
  EXPECT_EQ(tags[1]["name"], "staging/tiny");
  EXPECT_EQ(tags[1]["tag"], "week");
  o = Pocket("show staging/tiny:week --json");
  ASSERT_EQ(o.rc, 0) << o.err;
  const auto shown = nlohmann::json::parse(o.out);
  EXPECT_EQ(shown["expires"], "2026-12-14T21:00:00Z");
  EXPECT_EQ(shown["manifest"]["annotations"]["io.pocket.staging.expires"], "2026-12-14T21:00:00Z");
  EXPECT_EQ(shown["manifest"]["annotations"]["org.opencontainers.image.created"],
            "2026-12-07T21:00:00Z");
  EXPECT_NE(Pocket("show staging/tiny:week").out.find("  expires   2026-12-14T21:00:00Z"),
            std::string::npos);

  // Before the hour is up nothing expires; the output stays what gc always printed.
  o = Pocket("gc", "POCKET_NOW=2026-12-07T21:59:59Z ");
  ASSERT_EQ(o.rc, 0) << o.err;
  EXPECT_EQ(o.out.find("expired"), std::string::npos) << o.out;
  EXPECT_EQ(Lines(o.out), 1) << o.out;
  o = Pocket("gc", "POCKET_NOW=2026-12-07T22:00:00Z ");
  ASSERT_EQ(o.rc, 0) << o.err;
  EXPECT_EQ(o.out.rfind("removed 1 expired staging tag(s): staging/tiny:", 0), 0u) << o.out;
  EXPECT_NE(o.out.find("removed 1 blob(s)"), std::string::npos) << o.out;  // its manifest
  o = Pocket("ls --json");
  EXPECT_EQ(nlohmann::json::parse(o.out).size(), 2u) << o.out;
  o = Pocket("gc", "POCKET_NOW=2026-12-14T21:00:00Z ");
  EXPECT_NE(o.out.find("removed 1 expired staging tag(s): staging/tiny:week"), std::string::npos)
      << o.out;
  o = Pocket("ls --json");
  const auto left = nlohmann::json::parse(o.out);
  ASSERT_EQ(left.size(), 1u);
  EXPECT_EQ(left[0]["name"], "tiny");  // the plain tag, and its bytes, stay
  EXPECT_EQ(Pocket("verify").rc, 0);
  EXPECT_EQ(Pocket("run tiny:v1 Hello -n 4 --temp 0").out,
            Pocket("run " + Quote(model_) + " Hello -n 4 --temp 0").out);
}

TEST_F(RegistryCliTest, StageAndGcRefuseBadTtlsAndClocksInOneLine) {
  for (const std::string ttl : {"24", "1.5h", "100ms", "1w", "0s", "-1h", "tomorrow"}) {
    const Output o = Pocket("stage " + Quote(model_) + " --ttl " + Quote(ttl));
    EXPECT_EQ(o.rc, 2) << ttl;
    EXPECT_EQ(o.err.rfind("pocket stage: --ttl '" + ttl + "' ", 0), 0u) << o.err;
    EXPECT_EQ(Lines(o.err), 1) << o.err;
  }
  Output o = Pocket("gc", "POCKET_NOW=yesterday ");
  EXPECT_EQ(o.rc, 2);
  EXPECT_EQ(o.err.rfind("pocket gc: POCKET_NOW 'yesterday' is not an RFC 3339 time", 0), 0u)
      << o.err;
  o = Pocket("stage " + Quote(model_) + " ../../x --ttl 1h");
  EXPECT_EQ(o.rc, 2);
  EXPECT_EQ(Lines(o.err), 1) << o.err;
  for (const std::string to : {"127.0.0.1:5000/Team", "127.0.0.1:5000/../x", "team"}) {
    o = Pocket("stage " + Quote(model_) + " --ttl 1h --to " + Quote(to), "POCKET_REGISTRY= ");
    EXPECT_EQ(o.rc, 2) << to;
    EXPECT_EQ(o.err.rfind("pocket stage: --to: '" + to + "'", 0), 0u) << o.err;
    EXPECT_EQ(Lines(o.err), 1) << o.err;
  }
  EXPECT_FALSE(fs::exists(store_ + "/index.json"));  // nothing written
}

TEST_F(RegistryCliTest, ShowPrintsTheLineageOfAModelTrainedByPocketTrain) {
  // The tiny recipe of tests/cli/train (under a second): its q8_0 output names the F32
  // checkpoint as parent, and both carry the recipe's and the data's hashes.
  fs::copy(POCKET_SOURCE_DIR "/tests/cli/train", dir_ / "train", fs::copy_options::recursive);
  const fs::path out = dir_ / "train" / "out" / "tiny.gguf";
  Output o = Pocket("train " + Quote((dir_ / "train" / "recipe.toml").string()) + " -q --out " +
                    Quote(out.string()));
  ASSERT_EQ(o.rc, 0) << o.err;
  const fs::path ckpt = dir_ / "train" / "out" / "tiny.ckpt.gguf";
  ASSERT_EQ(Pocket("import " + Quote(ckpt.string()) + " tiny:f32").rc, 0);
  o = Pocket("stage " + Quote(out.string()) + " tiny:q8 --ttl 1h");
  ASSERT_EQ(o.rc, 0) << o.err;

  o = Pocket("show staging/tiny:q8 --json");
  ASSERT_EQ(o.rc, 0) << o.err;
  const auto shown = nlohmann::json::parse(o.out);
  const auto& prov = shown["config"]["provenance"];
  const auto& notes = shown["manifest"]["annotations"];
  const std::string parent = "sha256:" + prov["pocket.parent_sha256"].get<std::string>();
  EXPECT_EQ(notes["io.pocket.lineage.parent"], parent);
  EXPECT_EQ(notes["io.pocket.lineage.recipe"],
            "sha256:" + prov["pocket.recipe_sha256"].get<std::string>());
  EXPECT_EQ(notes["io.pocket.lineage.data"],
            "sha256:" + prov["pocket.data_sha256"].get<std::string>());
  EXPECT_EQ(shown["lineage"]["parent"], parent);
  EXPECT_EQ(shown["lineage"]["parent_tags"], nlohmann::json::array({"tiny:f32"}));
  // The parent is the checkpoint's GGUF: its layer digest in the store.
  o = Pocket("show tiny:f32 --json");
  EXPECT_EQ(nlohmann::json::parse(o.out)["manifest"]["layers"][0]["digest"], parent);
  o = Pocket("show staging/tiny:q8");
  EXPECT_NE(o.out.find("  parent    " + parent + " (tiny:f32)\n"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("  recipe    sha256:"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("  data      sha256:"), std::string::npos) << o.out;

  // Lineage comes from the file alone: importing it twice gives one manifest.
  ASSERT_EQ(Pocket("import " + Quote(out.string()) + " tiny:a").rc, 0);
  ASSERT_EQ(Pocket("import " + Quote(out.string()) + " tiny:b").rc, 0);
  o = Pocket("ls --json");
  std::string a, b;
  for (const auto& t : nlohmann::json::parse(o.out)) {
    if (t["name"] == "tiny" && t["tag"] == "a") a = t["digest"];
    if (t["name"] == "tiny" && t["tag"] == "b") b = t["digest"];
  }
  EXPECT_FALSE(a.empty());
  EXPECT_EQ(a, b);
}

TEST_F(RegistryCliTest, StagingCommandsHaveHelpWithExamples) {
  for (const std::string cmd : {"stage", "registry prune"}) {
    const Output o = Pocket(cmd + " --help");
    EXPECT_EQ(o.rc, 0) << cmd;
    EXPECT_NE(o.out.find("Examples:\n  pocket " + cmd), std::string::npos) << o.out;
  }
  Output o = Pocket("stage --help");
  for (const char* flag : {"--ttl", "--to", "--store", "--user", "-q,--quiet"}) {
    EXPECT_NE(o.out.find(flag), std::string::npos) << flag << "\n" << o.out;
  }
  o = Pocket("registry prune --help");
  for (const char* flag : {"--dry-run", "--user", "--insecure"}) {
    EXPECT_NE(o.out.find(flag), std::string::npos) << flag << "\n" << o.out;
  }
  EXPECT_NE(Pocket("gc --help").out.find("POCKET_NOW"), std::string::npos);
}

// Signatures and promotion (docs/registry.md, "Signatures and promotion"): keys made by
// `pocket sign --generate-key`, a trust file made of their .pub lines.
class RegistrySignCliTest : public RegistryCliTest {
 protected:
  void SetUp() override {
    RegistryCliTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    for (const char* who : {"alice", "mallory"}) {
      const Output o = Pocket("sign --generate-key " + Quote(Key(who)) + " --name " + who);
      ASSERT_EQ(o.rc, 0) << o.err;
    }
    trust_ = (dir_ / "trusted-keys").string();
    std::ofstream(trust_) << "# who may release\n" << Slurp(Key("alice") + ".pub");
    ASSERT_EQ(Pocket("import " + Quote(model_) + " tiny:rc1").rc, 0);
  }
  std::string Key(const std::string& who) const { return (dir_ / (who + ".key")).string(); }

  std::string trust_;
};

TEST_F(RegistrySignCliTest, SignedTagIsPromotedAndSignaturesAreNotListed) {
  const fs::path key = Key("alice");
  EXPECT_EQ(fs::status(key).permissions() & fs::perms::all,
            fs::perms::owner_read | fs::perms::owner_write);
  Output o = Pocket("sign tiny:rc1 --key " + Quote(key.string()));
  ASSERT_EQ(o.rc, 0) << o.err;
  EXPECT_NE(o.out.find("signed tiny:rc1"), std::string::npos) << o.out;
  o = Pocket("promote tiny:rc1 --to tiny:release --trust " + Quote(trust_));
  ASSERT_EQ(o.rc, 0) << o.err;
  EXPECT_NE(o.out.find("promoted tiny:rc1 to tiny:release"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("signed by alice"), std::string::npos) << o.out;
  o = Pocket("promote tiny:rc1 --to :stable --trust " + Quote(trust_));
  ASSERT_EQ(o.rc, 0) << o.err;

  o = Pocket("ls --json");
  ASSERT_EQ(o.rc, 0) << o.err;
  const auto tags = nlohmann::json::parse(o.out);
  ASSERT_EQ(tags.size(), 3u) << o.out;  // rc1, release, stable: no signature entry
  for (const auto& t : tags) EXPECT_EQ(t["digest"], tags[0]["digest"]);
  o = Pocket("verify --signatures --trust " + Quote(trust_));
  EXPECT_EQ(o.rc, 0) << o.out << o.err;
  EXPECT_EQ(Lines(o.out), 3) << o.out;
  EXPECT_NE(o.out.find("tiny:release  sha256:"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("signed by alice (key "), std::string::npos) << o.out;
  EXPECT_EQ(Pocket("verify").rc, 0);
}

TEST_F(RegistrySignCliTest, UnsignedTagIsRefusedAndNothingMoves) {
  const Output o = Pocket("promote tiny:rc1 --to tiny:release --trust " + Quote(trust_));
  EXPECT_EQ(o.rc, 1);
  EXPECT_EQ(Lines(o.err), 1) << o.err;
  EXPECT_NE(o.err.find("pocket promote: tiny:rc1 (sha256:"), std::string::npos) << o.err;
  EXPECT_NE(o.err.find("has no signature"), std::string::npos) << o.err;
  EXPECT_NE(Pocket("show tiny:release").rc, 0);
  const Output v = Pocket("verify --signatures tiny:rc1");
  EXPECT_EQ(v.rc, 0) << v.out;
  EXPECT_NE(v.out.find("unsigned"), std::string::npos) << v.out;
  EXPECT_EQ(Pocket("verify --signatures --trust " + Quote(trust_)).rc, 1);
}

TEST_F(RegistrySignCliTest, SignatureByAnUntrustedKeyIsRefused) {
  ASSERT_EQ(Pocket("sign tiny:rc1 --key " + Quote(Key("mallory"))).rc, 0);
  const Output o = Pocket("promote tiny:rc1 --to tiny:release --trust " + Quote(trust_));
  EXPECT_EQ(o.rc, 1);
  EXPECT_EQ(Lines(o.err), 1) << o.err;
  EXPECT_NE(o.err.find("is signed only by keys not in " + trust_ + ": key "), std::string::npos)
      << o.err;
  EXPECT_NE(Pocket("show tiny:release").rc, 0);
  const Output v = Pocket("verify --signatures --trust " + Quote(trust_));
  EXPECT_EQ(v.rc, 1);
  EXPECT_NE(v.out.find("(not trusted) at "), std::string::npos) << v.out;
}

TEST_F(RegistrySignCliTest, GcKeepsSignaturesOfLiveTagsAndDropsDeadOnes) {
  ASSERT_EQ(Pocket("import " + Quote(model_) + " tiny:copy").rc, 0);
  ASSERT_EQ(Pocket("sign tiny:rc1 --key " + Quote(Key("alice"))).rc, 0);
  // Another model, signed, then removed: its signature goes with it.
  const std::string other = (dir_ / "other.gguf").string();
  ASSERT_EQ(
      Pocket("make-model --shape tiny --vocab 512 --type f32 --seed 9 --out " + Quote(other)).rc,
      0);
  ASSERT_EQ(Pocket("import " + Quote(other) + " other:v1").rc, 0);
  ASSERT_EQ(Pocket("sign other:v1 --key " + Quote(Key("alice"))).rc, 0);
  ASSERT_EQ(Pocket("rm tiny:rc1").rc, 0);
  ASSERT_EQ(Pocket("rm other:v1").rc, 0);
  Output o = Pocket("gc");
  ASSERT_EQ(o.rc, 0) << o.err;
  EXPECT_NE(o.out.find("removed 1 signature(s) of models no tag uses any more"),
            std::string::npos)
      << o.out;
  // tiny:copy names the same manifest: its signature stays and still allows promotion.
  o = Pocket("promote tiny:copy --to tiny:release --trust " + Quote(trust_));
  ASSERT_EQ(o.rc, 0) << o.err;
  const std::string index = Slurp(fs::path(store_) / "index.json");
  EXPECT_EQ(nlohmann::json::parse(index)["manifests"].size(), 3u) << index;  // 2 tags, 1 sig
  EXPECT_EQ(Pocket("verify").rc, 0);
}

TEST_F(RegistrySignCliTest, BadTrustFilesAndKeysAreOneLineErrors) {
  const std::string bad = (dir_ / "bad-trust").string();
  std::ofstream(bad) << "# ok\nalice ed25519:not-a-key\n";
  Output o = Pocket("promote tiny:rc1 --to :release --trust " + Quote(bad));
  EXPECT_EQ(o.rc, 2);
  EXPECT_EQ(Lines(o.err), 1) << o.err;
  EXPECT_NE(o.err.find(bad + ":2: 'ed25519:not-a-key' is not an ed25519 public key"),
            std::string::npos)
      << o.err;
  fs::permissions(Key("alice"), fs::perms::group_read, fs::perm_options::add);
  o = Pocket("sign tiny:rc1 --key " + Quote(Key("alice")));
  EXPECT_EQ(o.rc, 2);
  EXPECT_EQ(Lines(o.err), 1) << o.err;
  EXPECT_NE(o.err.find("accessible by others (mode 0640)"), std::string::npos) << o.err;
  o = Pocket("sign --generate-key " + Quote(Key("alice")));
  EXPECT_EQ(o.rc, 2);
  EXPECT_NE(o.err.find("already exists; not overwritten"), std::string::npos) << o.err;
  o = Pocket("sign absent:v1 --key " + Quote(Key("mallory")));
  EXPECT_EQ(o.rc, 1);
  EXPECT_EQ(Lines(o.err), 1) << o.err;
  for (const std::string cmd : {"sign", "promote"}) {
    o = Pocket(cmd + " --help");
    EXPECT_EQ(o.rc, 0) << cmd;
    EXPECT_NE(o.out.find("Examples:\n  pocket " + cmd), std::string::npos) << o.out;
  }
  EXPECT_NE(Pocket("promote --help").out.find("--trust"), std::string::npos);
  o = Pocket("verify --help");
  EXPECT_NE(o.out.find("--signatures"), std::string::npos) << o.out;
}

// Variants (docs/registry.md "Variants"): `pocket index` over two stored models; `pocket run`
// of the index runs the variant that fits the injected machine (POCKET_MACHINE), with the
// same output as that variant's file; --prefer, --variant; none fits -> the numbers; gc keeps
// the variants once their own tags are gone, verify checks them.
TEST_F(RegistryCliTest, AnIndexOfVariantsRunsTheOneThatFitsTheMachine) {
  const std::string small = (dir_ / "small.gguf").string();
  Output o =
      Pocket("make-model --shape tiny --vocab 512 --type q8_0 --seed 3 --out " + Quote(small));
  ASSERT_EQ(o.rc, 0) << o.err;
  ASSERT_EQ(Pocket("import " + Quote(model_) + " tiny:f32").rc, 0);
  ASSERT_EQ(Pocket("import " + Quote(small) + " tiny:q8").rc, 0);
  o = Pocket("index tiny:v2 tiny:f32 tiny:q8");
  ASSERT_EQ(o.rc, 0) << o.err;
  EXPECT_NE(o.out.find("tiny:v2 is an index of 2 variants"), std::string::npos) << o.out;

  o = Pocket("index tiny:v2 --json");
  ASSERT_EQ(o.rc, 0) << o.err;
  const auto listing = nlohmann::json::parse(o.out);
  ASSERT_EQ(listing["variants"].size(), 2u);
  EXPECT_EQ(listing["variants"][0]["variant"], "F32");
  EXPECT_EQ(listing["variants"][1]["variant"], "Q8_0");
  const uint64_t big_need = listing["variants"][0]["need_bytes"];
  const uint64_t small_need = listing["variants"][1]["need_bytes"];
  ASSERT_GT(big_need, small_need);
  const std::string between =
      "POCKET_MACHINE=memory=" + std::to_string((big_need + small_need) / 2);

  const std::string gen = " Hello -n 12 --temp 1 -s 1";  // sampled: the two files differ
  const Output big_file = Pocket("run " + Quote(model_) + gen);
  const Output small_file = Pocket("run " + Quote(small) + gen);
  ASSERT_EQ(big_file.rc, 0);
  ASSERT_NE(big_file.out, small_file.out);
  // Plenty of memory: quality takes F32, speed Q8_0.
  o = Pocket("run tiny:v2" + gen);
  ASSERT_EQ(o.rc, 0) << o.err;
  EXPECT_EQ(o.out, big_file.out);
  EXPECT_NE(o.err.find("pocket: tiny:v2: variant F32"), std::string::npos) << o.err;
  EXPECT_NE(o.err.find("chosen for quality"), std::string::npos) << o.err;
  EXPECT_EQ(Pocket("run tiny:v2 --prefer speed" + gen).out, small_file.out);
  // Memory for Q8_0 only: Q8_0, and the line says what F32 needed.
  o = Pocket("run tiny:v2" + gen, between);
  ASSERT_EQ(o.rc, 0) << o.err;
  EXPECT_EQ(o.out, small_file.out);
  EXPECT_NE(o.err.find("(POCKET_MACHINE)"), std::string::npos) << o.err;
  EXPECT_NE(o.err.find("F32 needs"), std::string::npos) << o.err;
  EXPECT_NE(o.err.find("(does not fit)"), std::string::npos) << o.err;
  EXPECT_EQ(Lines(o.err), 1) << o.err;
  // --variant overrides.
  EXPECT_EQ(Pocket("run tiny:v2 --variant F32" + gen, between).out, big_file.out);
  // None fits: one line with the numbers, exit 1, nothing run.
  o = Pocket("run tiny:v2" + gen, "POCKET_MACHINE=memory=1K");
  EXPECT_EQ(o.rc, 1);
  EXPECT_EQ(o.out, "");
  EXPECT_EQ(Lines(o.err), 1) << o.err;
  EXPECT_NE(o.err.find("no variant of tiny:v2 fits this machine: 1.0 KiB available"),
            std::string::npos)
      << o.err;
  EXPECT_NE(o.err.find("F32 needs"), std::string::npos) << o.err;
  EXPECT_NE(o.err.find("Q8_0 needs"), std::string::npos) << o.err;
  o = Pocket("run tiny:v2 -n 4", "POCKET_MACHINE=memory=1K");  // alone: still the model
  EXPECT_EQ(o.rc, 1);
  EXPECT_NE(o.err.find("no variant of tiny:v2 fits"), std::string::npos) << o.err;
  o = Pocket("run tiny:v2" + gen, "POCKET_MACHINE=memory=lots");
  EXPECT_NE(o.rc, 0);
  EXPECT_NE(o.err.find("$POCKET_MACHINE"), std::string::npos) << o.err;

  // The index keeps its variants alive once their own tags are gone.
  ASSERT_EQ(Pocket("rm tiny:f32").rc, 0);
  ASSERT_EQ(Pocket("rm tiny:q8").rc, 0);
  o = Pocket("gc");
  ASSERT_EQ(o.rc, 0) << o.err;
  EXPECT_NE(o.out.find("removed 0 blob(s)"), std::string::npos) << o.out;
  EXPECT_EQ(Pocket("verify").rc, 0);
  EXPECT_EQ(Pocket("run tiny:v2 --prefer speed" + gen).out, small_file.out);
  o = Pocket("ls");
  EXPECT_NE(o.out.find("tiny:v2"), std::string::npos) << o.out;
  o = Pocket("show tiny:v2");
  EXPECT_EQ(o.rc, 2);
  EXPECT_NE(o.err.find("is an index of variants"), std::string::npos) << o.err;
  ASSERT_EQ(Pocket("rm tiny:v2").rc, 0);
  o = Pocket("gc");
  EXPECT_NE(o.out.find("removed 7 blob(s)"), std::string::npos) << o.out;
  // Bad members: one line each.
  ASSERT_EQ(Pocket("import " + Quote(model_) + " tiny:f32").rc, 0);
  o = Pocket("index tiny:v3 tiny:f32 tiny:absent");
  EXPECT_EQ(o.rc, 1);
  EXPECT_EQ(Lines(o.err), 1) << o.err;
  o = Pocket("index tiny:v3 tiny:f32 tiny:f32");
  EXPECT_EQ(o.rc, 2);
  EXPECT_NE(o.err.find("same model"), std::string::npos) << o.err;
  o = Pocket("index --help");
  EXPECT_EQ(o.rc, 0);
  EXPECT_NE(o.out.find("Examples:\n  pocket index"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("--prefer"), std::string::npos) << o.out;
  EXPECT_NE(Pocket("pull --help").out.find("--variant"), std::string::npos);
  EXPECT_NE(Pocket("run --help").out.find("--prefer"), std::string::npos);
}

}  // namespace
