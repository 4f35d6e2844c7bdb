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

TEST(Sha256Test, MatchesKnownVector) {
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(Sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

}  // namespace
}  // namespace pocket
