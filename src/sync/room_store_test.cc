#include "sync/room_store.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "base/file.h"

namespace pocket::sync {
namespace {

std::string TempDir(const std::string& name) {
  auto dir = std::filesystem::temp_directory_path() /
             ("pocket_sync_" + name + "_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  return dir.string();
}

Bytes B(std::initializer_list<uint8_t> b) { return Bytes(b); }

// A stand-in merge for tests: concatenation (the real one is crdt::MergeUpdates).
Result<Bytes> Concat(const std::vector<Bytes>& updates) {
  Bytes out;
  for (const auto& u : updates) out.insert(out.end(), u.begin(), u.end());
  return out;
}

TEST(RoomStoreTest, RecoversAppendedUpdatesAfterReopen) {
  const std::string dir = TempDir("reopen");
  {
    auto s = RoomStore::Open(dir, {}, nullptr);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    ASSERT_TRUE(s->Append(B({1, 2, 3})).ok());
    ASSERT_TRUE(s->Append(B({4})).ok());
    ASSERT_TRUE(s->Sync().ok());
  }
  auto s = RoomStore::Open(dir, {}, nullptr);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->updates(), (std::vector<Bytes>{B({1, 2, 3}), B({4})}));
  EXPECT_EQ(s->recovered_dropped_bytes(), 0u);
  std::filesystem::remove_all(dir);
}

TEST(RoomStoreTest, IgnoresTornLastRecordAndKeepsAppending) {
  const std::string dir = TempDir("torn");
  {
    auto s = RoomStore::Open(dir, {}, nullptr);
    ASSERT_TRUE(s.ok());
    ASSERT_TRUE(s->Append(B({1, 2, 3})).ok());
    ASSERT_TRUE(s->Append(B({4, 5, 6, 7})).ok());
  }
  // Cut the last record in the middle of its payload, as a crash mid-write would.
  const std::string log = dir + "/log";
  std::filesystem::resize_file(log, std::filesystem::file_size(log) - 2);
  {
    auto s = RoomStore::Open(dir, {}, nullptr);
    ASSERT_TRUE(s.ok());
    EXPECT_EQ(s->updates(), (std::vector<Bytes>{B({1, 2, 3})}));
    EXPECT_EQ(s->recovered_dropped_bytes(), 10u);
    ASSERT_TRUE(s->Append(B({8})).ok());
  }
  auto s = RoomStore::Open(dir, {}, nullptr);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->updates(), (std::vector<Bytes>{B({1, 2, 3}), B({8})}));
  std::filesystem::remove_all(dir);
}

TEST(RoomStoreTest, IgnoresLastRecordWithBadChecksum) {
  const std::string dir = TempDir("crc");
  {
    auto s = RoomStore::Open(dir, {}, nullptr);
    ASSERT_TRUE(s->Append(B({1})).ok());
    ASSERT_TRUE(s->Append(B({2, 2})).ok());
  }
  auto bytes = ReadFile(dir + "/log");
  ASSERT_TRUE(bytes.ok());
  std::string corrupted = *bytes;
  corrupted.back() ^= 0x40;
  ASSERT_TRUE(WriteFileAtomic(dir + "/log", corrupted).ok());
  auto s = RoomStore::Open(dir, {}, nullptr);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->updates(), (std::vector<Bytes>{B({1})}));
  std::filesystem::remove_all(dir);
}

TEST(RoomStoreTest, IgnoresHeaderClaimingHugeRecord) {
  const std::string dir = TempDir("huge");
  std::filesystem::create_directories(dir);
  std::string log;
  AppendRecord(B({9}), log);
  log += std::string("\xff\xff\xff\x7f\0\0\0\0", 8);
  ASSERT_TRUE(WriteFileAtomic(dir + "/log", log).ok());
  auto s = RoomStore::Open(dir, {}, nullptr);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->updates(), (std::vector<Bytes>{B({9})}));
  std::filesystem::remove_all(dir);
}

TEST(RoomStoreTest, CompactsIntoSnapshotAndTruncatesLog) {
  const std::string dir = TempDir("compact");
  RoomStoreOptions o;
  o.compact_every_records = 3;
  {
    auto s = RoomStore::Open(dir, o, Concat);
    ASSERT_TRUE(s.ok());
    for (uint8_t i = 1; i <= 3; ++i) {
      ASSERT_TRUE(s->Append(B({i})).ok());
      ASSERT_TRUE(s->Sync().ok());
      ASSERT_TRUE(s->MaybeCompact().ok());
    }
    EXPECT_EQ(s->log_records(), 0u);
    EXPECT_EQ(std::filesystem::file_size(dir + "/log"), 0u);
    ASSERT_TRUE(s->Append(B({4})).ok());
  }
  auto s = RoomStore::Open(dir, o, Concat);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->updates(), (std::vector<Bytes>{B({1, 2, 3}), B({4})}));
  std::filesystem::remove_all(dir);
}

TEST(RoomStoreTest, RejectsCorruptSnapshot) {
  const std::string dir = TempDir("badsnap");
  std::filesystem::create_directories(dir);
  ASSERT_TRUE(WriteFileAtomic(dir + "/snapshot", "garbage!garbage!").ok());
  EXPECT_EQ(RoomStore::Open(dir, {}, nullptr).status().code(), StatusCode::kCorruption);
  std::filesystem::remove_all(dir);
}

TEST(RoomStoreTest, RejectsOversizedUpdate) {
  RoomStoreOptions o;
  o.max_record_bytes = 4;
  auto s = RoomStore::Open("", o, nullptr);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->Append(Bytes(5, 1)).code(), StatusCode::kInvalidArgument);
}

TEST(RoomStoreTest, EscapesRoomNamesInjectively) {
  EXPECT_EQ(EscapeRoomName("notes-1_a"), "notes-1_a");
  EXPECT_EQ(EscapeRoomName("a/b"), "a%2Fb");
  EXPECT_EQ(EscapeRoomName(".."), "%2E%2E");
  EXPECT_EQ(EscapeRoomName("%2F"), "%252F");
  EXPECT_EQ(EscapeRoomName(""), "%");
}

}  // namespace
}  // namespace pocket::sync
