#include "base/file.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "base/sha256.h"

namespace pocket {
namespace {

std::string TempPath(const char* name) {
  return (std::filesystem::temp_directory_path() / (std::string("pocket_base_") + name)).string();
}

TEST(FileTest, AtomicWriteThenMapReadsSameBytes) {
  const std::string path = TempPath("roundtrip.bin");
  std::string data(100000, '\0');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 7);
  ASSERT_TRUE(WriteFileAtomic(path, data).ok());
  auto m = MappedFile::Open(path);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  ASSERT_EQ(m->size(), data.size());
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(m->data()), m->size()), data);
  EXPECT_EQ(*ReadFile(path), data);
  std::filesystem::remove(path);
}

TEST(FileTest, UncommittedWriterLeavesNothing) {
  const std::string path = TempPath("uncommitted.bin");
  std::filesystem::remove(path);
  {
    auto w = AtomicFileWriter::Create(path);
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE(w->Append(std::string_view("half")).ok());
  }
  EXPECT_FALSE(std::filesystem::exists(path));
  for (auto& e : std::filesystem::directory_iterator(std::filesystem::temp_directory_path())) {
    EXPECT_EQ(e.path().string().find(path + ".tmp"), std::string::npos);
  }
}

TEST(FileTest, MissingFileIsIOErrorNamingThePath) {
  auto m = MappedFile::Open("/nonexistent/model.gguf");
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), StatusCode::kIOError);
  EXPECT_NE(m.status().message().find("/nonexistent/model.gguf"), std::string::npos);
}

std::string Slurp(const std::string& path) {
  auto r = ReadFile(path);
  return r.ok() ? *r : "<unreadable>";
}

TEST(FileTest, MoveAsideRenamesWithUtcStampAndNeverOverwrites) {
  const std::string dir = TempPath("aside");
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const std::string path = dir + "/f";
  const std::time_t now = 1800000000;  // 2027-01-15T08:00:00Z
  ASSERT_TRUE(WriteFileAtomic(path, "one").ok());
  ASSERT_TRUE(WriteFileAtomic(path + "-wal", "one-wal").ok());
  auto first = MoveAside(path, "bad", now, {"-wal", "-shm"});
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(*first, path + ".bad-20270115T080000Z");
  EXPECT_EQ(Slurp(*first), "one");
  EXPECT_EQ(Slurp(*first + "-wal"), "one-wal");
  EXPECT_FALSE(std::filesystem::exists(path));
  EXPECT_FALSE(std::filesystem::exists(path + "-wal"));
  // Same second: a -1 name, also when only a companion of the plain name exists.
  ASSERT_TRUE(WriteFileAtomic(path, "two").ok());
  auto second = MoveAside(path, "bad", now, {"-wal"});
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(*second, path + ".bad-20270115T080000Z-1");
  EXPECT_EQ(Slurp(*first), "one");
  EXPECT_EQ(Slurp(*second), "two");
  std::filesystem::create_directory(path);  // a directory moves aside too
  auto third = MoveAside(path, "corrupt", now);
  ASSERT_TRUE(third.ok());
  EXPECT_EQ(*third, path + ".corrupt-20270115T080000Z");
  EXPECT_TRUE(std::filesystem::is_directory(*third));
  auto none = MoveAside(path, "bad", now, {"-wal"});
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.status().code(), StatusCode::kNotFound);
  std::filesystem::remove_all(dir);
}

TEST(FileTest, KeepAsideKeepsTheBytesWhenTheOriginalIsReplaced) {
  const std::string dir = TempPath("keep");
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const std::string path = dir + "/log";
  ASSERT_TRUE(WriteFileAtomic(path, "original").ok());
  auto kept = KeepAside(path, "corrupt", 1800000000);
  ASSERT_TRUE(kept.ok()) << kept.status().ToString();
  EXPECT_EQ(*kept, path + ".corrupt-20270115T080000Z");
  EXPECT_EQ(Slurp(path), "original");
  ASSERT_TRUE(WriteFileAtomic(path, "new").ok());
  EXPECT_EQ(Slurp(*kept), "original");
  EXPECT_TRUE(SyncDirectoryOf(path).ok());
  std::filesystem::remove_all(dir);
}

TEST(Sha256Test, MatchesKnownVector) {
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(Sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

}  // namespace
}  // namespace pocket
