#include "base/data_dir.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace pocket {
namespace {

namespace fs = std::filesystem;

// A scratch tree per test, removed at the end.
class DataDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() /
            ("pocket_data_dir_test." + std::to_string(getpid()) + "." +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    fs::create_directories(root_);
  }
  void TearDown() override { fs::remove_all(root_); }
  void Touch(const fs::path& p) {
    fs::create_directories(p.parent_path());
    std::ofstream(p) << "x";
  }
  fs::path root_;
};

TEST_F(DataDirTest, ExecutableDirIsThisTestBinarysDirectory) {
  const std::string dir = ExecutableDir();
  ASSERT_FALSE(dir.empty());
  EXPECT_TRUE(fs::is_directory(dir)) << dir;
  EXPECT_TRUE(fs::path(dir).is_absolute()) << dir;
}

TEST_F(DataDirTest, InstalledDataDirIsSharePocketBesideBin) {
  EXPECT_EQ(InstalledDataDir("/opt/pk/bin"), "/opt/pk/share/pocket");
  EXPECT_EQ(InstalledDataDir("/usr/local/bin/"), "/usr/local/share/pocket");
  EXPECT_EQ(InstalledDataDir(""), "");
}

TEST_F(DataDirTest, FindsInstalledDataUnderPrefix) {
  Touch(root_ / "prefix/share/pocket/models/default.gguf");
  fs::create_directories(root_ / "prefix/bin");
  EXPECT_EQ(FindDataPath("models/default.gguf", (root_ / "prefix/bin").string()),
            (root_ / "prefix/share/pocket/models/default.gguf").string());
}

TEST_F(DataDirTest, FindsSourceTreeDataAboveBuildDirectory) {
  Touch(root_ / "src-tree/models/default.gguf");
  fs::create_directories(root_ / "src-tree/build/release");
  EXPECT_EQ(FindDataPath("models/default.gguf", (root_ / "src-tree/build/release").string()),
            (root_ / "src-tree/models/default.gguf").string());
  // Directories count too (the editor page's web/collab).
  fs::create_directories(root_ / "src-tree/web/collab");
  EXPECT_EQ(FindDataPath("web/collab", (root_ / "src-tree/build/release").string()),
            (root_ / "src-tree/web/collab").string());
}

TEST_F(DataDirTest, InstalledCopyWinsOverAnEnclosingSourceTree) {
  // A prefix inside a source checkout: the installed file is the one its binary ships with.
  Touch(root_ / "models/default.gguf");
  Touch(root_ / "prefix/share/pocket/models/default.gguf");
  fs::create_directories(root_ / "prefix/bin");
  EXPECT_EQ(FindDataPath("models/default.gguf", (root_ / "prefix/bin").string()),
            (root_ / "prefix/share/pocket/models/default.gguf").string());
}

TEST_F(DataDirTest, MissingDataIsEmpty) {
  fs::create_directories(root_ / "prefix/bin");
  EXPECT_EQ(FindDataPath("no/such/pocket-data-file.bin", (root_ / "prefix/bin").string()), "");
  EXPECT_EQ(FindDataPath("models/default.gguf", ""), "");
  EXPECT_EQ(FindDataPath("", (root_ / "prefix/bin").string()), "");
}

}  // namespace
}  // namespace pocket
