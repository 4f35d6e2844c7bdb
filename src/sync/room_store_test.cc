#include "sync/room_store.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>

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

// The last record's length flipped to point past the end reads like an interrupted append,
// but the record may have been acknowledged: its bytes are kept aside before the cut.
TEST(RoomStoreTest, LastRecordWithLengthPastTheEndIsQuarantinedBeforeTheCut) {
  const std::string dir = TempDir("lastlen");
  std::filesystem::create_directories(dir);
  std::string log;
  AppendRecord(B({1, 2}), log);
  const size_t last = log.size();
  AppendRecord(B({3, 4, 5, 6}), log);
  log[last + 1] = 0x10;  // length 4 -> 4100: past the end of the file
  ASSERT_TRUE(WriteFileAtomic(dir + "/log", log).ok());
  {
    auto s = RoomStore::Open(dir, {}, nullptr);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    EXPECT_EQ(s->updates(), (std::vector<Bytes>{B({1, 2})}));
    EXPECT_EQ(s->recovery().torn_tail_bytes, 12u);
    ASSERT_EQ(s->recovery().quarantined.size(), 1u);
    EXPECT_EQ(*ReadFile(s->recovery().quarantined[0]), log) << "the original, byte for byte";
    ASSERT_TRUE(s->Append(B({7})).ok());
    ASSERT_TRUE(s->Sync().ok());
    EXPECT_EQ(*ReadFile(s->recovery().quarantined[0]), log) << "appending leaves the copy";
  }
  auto s = RoomStore::Open(dir, {}, nullptr);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->updates(), (std::vector<Bytes>{B({1, 2}), B({7})}));
  std::filesystem::remove_all(dir);
}

// Fewer than 8 bytes cannot hold a record that was ever acknowledged: cut, no copy.
TEST(RoomStoreTest, PartialHeaderIsCutWithoutACopy) {
  const std::string dir = TempDir("partialhdr");
  std::filesystem::create_directories(dir);
  std::string log;
  AppendRecord(B({1, 2}), log);
  log += std::string("\x05\0\0", 3);
  ASSERT_TRUE(WriteFileAtomic(dir + "/log", log).ok());
  auto s = RoomStore::Open(dir, {}, nullptr);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->updates(), (std::vector<Bytes>{B({1, 2})}));
  EXPECT_EQ(s->recovery().torn_tail_bytes, 3u);
  EXPECT_TRUE(s->recovery().quarantined.empty());
  std::filesystem::remove_all(dir);
}

// The snapshot merges every update, so it can exceed the per-record limit; one that
// Compact wrote must load at the next start, not be set aside.
TEST(RoomStoreTest, SnapshotLargerThanTheRecordLimitLoads) {
  const std::string dir = TempDir("bigsnap");
  RoomStoreOptions o;
  o.max_record_bytes = 16;
  const Bytes a(10, 0xA), b(10, 0xB), c(10, 0xC);
  {
    auto s = RoomStore::Open(dir, o, Concat);
    ASSERT_TRUE(s.ok());
    ASSERT_TRUE(s->Append(a).ok());
    ASSERT_TRUE(s->Append(b).ok());
    ASSERT_TRUE(s->Append(c).ok());
    ASSERT_TRUE(s->Compact().ok());  // a 30-byte snapshot
  }
  auto s = RoomStore::Open(dir, o, Concat);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_FALSE(s->recovery().snapshot_quarantined) << s->recovery().Summary();
  ASSERT_EQ(s->updates().size(), 1u);
  EXPECT_EQ(s->updates()[0].size(), 30u);
  std::filesystem::remove_all(dir);
}

// Bytes that read as large plausible lengths at every offset would make the resync scan
// run a CRC over megabytes at each of millions of offsets (hours, on the one strand that
// serves every room). The work is bounded; the records before the damage are kept and the
// rest is one corrupt range, kept in the quarantined original.
TEST(RoomStoreTest, RecoveryWorkIsBoundedOnCraftedLengths) {
  std::string log;
  std::vector<Bytes> good;
  for (int i = 0; i < 20; ++i) {
    good.push_back(Bytes(50, static_cast<uint8_t>(i)));
    AppendRecord(good.back(), log);
  }
  const size_t damaged = log.size() + 8 + 3;
  AppendRecord(Bytes(50, 0x77), log);
  log[damaged] ^= 0x01;
  // 4 MiB where aligned offsets read as 3 MiB lengths, offset+1 as 12 KiB, offset+2 as 48.
  for (int i = 0; i < (1 << 20); ++i) log += std::string("\0\0\x30\0", 4);
  for (int i = 0; i < 5; ++i) AppendRecord(Bytes(50, 0xEE), log);

  const auto start = std::chrono::steady_clock::now();
  const ByteSpan data(reinterpret_cast<const uint8_t*>(log.data()), log.size());
  const LogScan scan = ScanLog(data, 64u << 20, nullptr);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_LT(seconds, 30.0) << "generous: the budget is about 40 MB of CRC";
  EXPECT_LE(scan.work, LogScanWorkBudget(log.size()));
  EXPECT_TRUE(scan.out_of_work);
  ASSERT_EQ(scan.records.size(), 20u);
  ASSERT_EQ(scan.corrupt.size(), 1u);
  EXPECT_EQ(scan.corrupt[0].offset, damaged - 11);
  EXPECT_EQ(scan.corrupt[0].offset + scan.corrupt[0].size, log.size());

  const std::string dir = TempDir("workbound");
  std::filesystem::create_directories(dir);
  ASSERT_TRUE(WriteFileAtomic(dir + "/log", log).ok());
  RoomStoreOptions o;
  o.fsync = false;
  auto s = RoomStore::Open(dir, o, nullptr);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->updates(), good);
  ASSERT_EQ(s->recovery().quarantined.size(), 1u);
  EXPECT_EQ(ReadFile(s->recovery().quarantined[0])->size(), log.size());
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

// Writes a log of `records` (and, when given, a snapshot of one record) into a new `dir`.
void WriteRoom(const std::string& dir, const std::vector<Bytes>& records,
               const std::string* snapshot = nullptr) {
  std::filesystem::create_directories(dir);
  std::string log;
  for (const auto& r : records) AppendRecord(r, log);
  ASSERT_TRUE(WriteFileAtomic(dir + "/log", log).ok());
  if (snapshot != nullptr) {
    ASSERT_TRUE(WriteFileAtomic(dir + "/snapshot", *snapshot).ok());
  }
}

std::vector<std::string> QuarantinedFiles(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (name.find(".corrupt-") != std::string::npos) out.push_back(name);
  }
  return out;
}

TEST(RoomStoreTest, FallsBackToLogWhenSnapshotIsCorruptEmptyOrADirectory) {
  const std::vector<Bytes> log = {B({1}), B({2, 2}), B({3, 3, 3})};
  for (const std::string kind : {"garbage", "empty", "directory", "torn", "bad-crc"}) {
    SCOPED_TRACE(kind);
    const std::string dir = TempDir("badsnap");
    WriteRoom(dir, log);
    std::string snap;
    AppendRecord(B({7, 7, 7, 7}), snap);
    if (kind == "garbage") {
      ASSERT_TRUE(WriteFileAtomic(dir + "/snapshot", "garbage!garbage!").ok());
    }
    if (kind == "empty") {
      ASSERT_TRUE(WriteFileAtomic(dir + "/snapshot", "").ok());
    }
    if (kind == "directory") std::filesystem::create_directories(dir + "/snapshot/x");
    if (kind == "torn") {
      ASSERT_TRUE(WriteFileAtomic(dir + "/snapshot", snap.substr(0, 10)).ok());
    }
    if (kind == "bad-crc") {
      snap[9] ^= 1;
      ASSERT_TRUE(WriteFileAtomic(dir + "/snapshot", snap).ok());
    }
    {
      auto s = RoomStore::Open(dir, {}, nullptr);
      ASSERT_TRUE(s.ok()) << s.status().ToString();
      EXPECT_EQ(s->updates(), log);
      EXPECT_TRUE(s->recovery().snapshot_quarantined);
      EXPECT_TRUE(s->recovery().lost_data());
      ASSERT_EQ(s->recovery().quarantined.size(), 1u);
      EXPECT_TRUE(std::filesystem::exists(s->recovery().quarantined[0]));
      EXPECT_FALSE(std::filesystem::exists(dir + "/snapshot"));
    }
    auto again = RoomStore::Open(dir, {}, nullptr);  // loads cleanly from now on
    ASSERT_TRUE(again.ok());
    EXPECT_EQ(again->updates(), log);
    EXPECT_FALSE(again->recovery().lost_data());
    std::filesystem::remove_all(dir);
  }
}

TEST(RoomStoreTest, LoadsLogAloneWhenSnapshotIsMissing) {
  const std::string dir = TempDir("nosnap");
  WriteRoom(dir, {B({1}), B({2})});
  auto s = RoomStore::Open(dir, {}, nullptr);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->updates(), (std::vector<Bytes>{B({1}), B({2})}));
  EXPECT_FALSE(s->recovery().lost_data());
  std::filesystem::remove_all(dir);
}

TEST(RoomStoreTest, LogThatIsADirectoryIsSetAsideAndTheSnapshotLoads) {
  const std::string dir = TempDir("dirlog");
  std::string snap;
  AppendRecord(B({5}), snap);
  std::filesystem::create_directories(dir + "/log/x");
  ASSERT_TRUE(WriteFileAtomic(dir + "/snapshot", snap).ok());
  {
    auto s = RoomStore::Open(dir, {}, nullptr);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    EXPECT_EQ(s->updates(), (std::vector<Bytes>{B({5})}));
    EXPECT_TRUE(s->recovery().lost_data());
    EXPECT_EQ(QuarantinedFiles(dir).size(), 1u);
    ASSERT_TRUE(s->Append(B({6})).ok());
    ASSERT_TRUE(s->Sync().ok());
  }
  auto s = RoomStore::Open(dir, {}, nullptr);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->updates(), (std::vector<Bytes>{B({5}), B({6})}));
  std::filesystem::remove_all(dir);
}

TEST(RoomStoreTest, CleanLogIsNotRewritten) {
  const std::string dir = TempDir("clean");
  WriteRoom(dir, {B({1}), B({2})});
  struct stat before, after;
  ASSERT_EQ(::stat((dir + "/log").c_str(), &before), 0);
  auto s = RoomStore::Open(dir, {}, nullptr);
  ASSERT_TRUE(s.ok());
  ASSERT_EQ(::stat((dir + "/log").c_str(), &after), 0);
  EXPECT_EQ(before.st_ino, after.st_ino);
  EXPECT_TRUE(QuarantinedFiles(dir).empty());
  std::filesystem::remove_all(dir);
}

TEST(RoomStoreTest, RemovesStrayTempFilesOnOpen) {
  const std::string dir = TempDir("stray");
  std::string snap;
  AppendRecord(B({5}), snap);
  WriteRoom(dir, {B({6})}, &snap);
  ASSERT_TRUE(WriteFileAtomic(dir + "/snapshot.tmp.12345", "half a snap").ok());
  ASSERT_TRUE(WriteFileAtomic(dir + "/log.tmp.999", "half a log").ok());
  auto s = RoomStore::Open(dir, {}, nullptr);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->updates(), (std::vector<Bytes>{B({5}), B({6})}));
  EXPECT_EQ(s->recovery().stray_temp_files, 2u);
  EXPECT_FALSE(std::filesystem::exists(dir + "/snapshot.tmp.12345"));
  EXPECT_FALSE(std::filesystem::exists(dir + "/log.tmp.999"));
  EXPECT_TRUE(std::filesystem::exists(dir + "/snapshot"));
  std::filesystem::remove_all(dir);
}

std::vector<Bytes> RandomRecords(std::mt19937& rng) {
  std::vector<Bytes> out(1 + rng() % 40);
  for (auto& r : out) {
    r.resize(rng() % 4 == 0 ? rng() % 4 : rng() % 300);
    for (auto& b : r) b = static_cast<uint8_t>(rng());
  }
  return out;
}

// Opens `dir` whose log holds `log_bytes`, checks the recovered updates, that the original
// is kept when anything was quarantined, that a second Open agrees, and that appending works.
void ExpectRecovers(const std::string& dir, const std::string& log_bytes,
                    const std::vector<Bytes>& expected) {
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  std::ofstream(dir + "/log", std::ios::binary) << log_bytes;  // no fsync: hundreds of seeds
  RoomStoreOptions o;
  o.fsync = false;
  {
    auto s = RoomStore::Open(dir, o, nullptr);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    ASSERT_EQ(s->updates(), expected);
    const RecoveryReport& r = s->recovery();
    if (r.corrupt_ranges > 0 || r.torn_tail_bytes >= 8) {
      ASSERT_EQ(r.quarantined.size(), 1u);
      auto kept = ReadFile(r.quarantined[0]);
      ASSERT_TRUE(kept.ok());
      EXPECT_EQ(*kept, log_bytes) << "the original log is kept byte for byte";
    } else {
      EXPECT_TRUE(QuarantinedFiles(dir).empty());
    }
    EXPECT_LE(r.corrupt_bytes + r.torn_tail_bytes, log_bytes.size());
    ASSERT_TRUE(s->Append(B({0xAB})).ok());
    ASSERT_TRUE(s->Sync().ok());
  }
  auto s = RoomStore::Open(dir, o, nullptr);
  ASSERT_TRUE(s.ok());
  std::vector<Bytes> with_append = expected;
  with_append.push_back(B({0xAB}));
  EXPECT_EQ(s->updates(), with_append);
  EXPECT_FALSE(s->recovery().lost_data());
  EXPECT_EQ(s->recovered_dropped_bytes(), 0u);
}

// One flipped byte anywhere (length field, CRC field or payload of any record) loses that
// record only: every other record is recovered, in order.
TEST(RoomStoreTest, FlippedByteLosesOnlyItsOwnRecord) {
  const std::string dir = TempDir("flip");
  for (uint32_t seed = 0; seed < 300; ++seed) {
    std::mt19937 rng(seed);
    const std::vector<Bytes> records = RandomRecords(rng);
    std::string log;
    std::vector<size_t> starts;
    for (const auto& r : records) {
      starts.push_back(log.size());
      AppendRecord(r, log);
    }
    const size_t victim = rng() % records.size();
    const int field = static_cast<int>(seed % 3);  // 0 length, 1 crc, 2 payload
    size_t at = starts[victim] + (field == 0 ? rng() % 4 : 4 + rng() % 4);
    if (field == 2 && !records[victim].empty())
      at = starts[victim] + 8 + rng() % records[victim].size();
    std::string damaged = log;
    damaged[at] = static_cast<char>(damaged[at] ^ (1 + rng() % 255));
    std::vector<Bytes> expected = records;
    expected.erase(expected.begin() + static_cast<ptrdiff_t>(victim));
    SCOPED_TRACE("seed " + std::to_string(seed) + " victim " + std::to_string(victim) + " of " +
                 std::to_string(records.size()) + " byte " + std::to_string(at));
    ExpectRecovers(dir, damaged, expected);
    if (HasFatalFailure()) break;
  }
  std::filesystem::remove_all(dir);
}

TEST(RoomStoreTest, DamageInTwoRecordsLosesOnlyThoseTwo) {
  const std::string dir = TempDir("flip2");
  for (uint32_t seed = 0; seed < 100; ++seed) {
    std::mt19937 rng(seed);
    std::vector<Bytes> records = RandomRecords(rng);
    if (records.size() < 2) continue;
    std::string log;
    std::vector<size_t> starts;
    for (const auto& r : records) {
      starts.push_back(log.size());
      AppendRecord(r, log);
    }
    size_t a = rng() % records.size(), b = rng() % records.size();
    if (a == b) b = (a + 1) % records.size();
    for (size_t v : {a, b}) log[starts[v] + rng() % (8 + records[v].size())] ^= 0x5A;
    std::vector<Bytes> expected;
    for (size_t i = 0; i < records.size(); ++i) {
      if (i != a && i != b) expected.push_back(records[i]);
    }
    SCOPED_TRACE("seed " + std::to_string(seed));
    ExpectRecovers(dir, log, expected);
    if (HasFatalFailure()) break;
  }
  std::filesystem::remove_all(dir);
}

// A cut anywhere keeps every record that lies wholly before it, and quarantines nothing
// (a torn tail is an interrupted, unacknowledged append).
TEST(RoomStoreTest, TruncationKeepsEveryCompleteRecord) {
  const std::string dir = TempDir("cut");
  for (uint32_t seed = 0; seed < 200; ++seed) {
    std::mt19937 rng(seed);
    const std::vector<Bytes> records = RandomRecords(rng);
    std::string log;
    std::vector<size_t> ends;
    for (const auto& r : records) {
      AppendRecord(r, log);
      ends.push_back(log.size());
    }
    const size_t cut = rng() % (log.size() + 1);
    std::vector<Bytes> expected;
    for (size_t i = 0; i < records.size() && ends[i] <= cut; ++i) expected.push_back(records[i]);
    SCOPED_TRACE("seed " + std::to_string(seed) + " cut " + std::to_string(cut));
    ExpectRecovers(dir, log.substr(0, cut), expected);
    if (HasFatalFailure()) break;
    // A cut inside a header leaves no copy; one after a whole header keeps the original.
    size_t tail = cut;
    for (size_t e : ends) tail = e <= cut ? cut - e : tail;
    EXPECT_EQ(QuarantinedFiles(dir).size(), tail >= 8 ? 1u : 0u);
  }
  std::filesystem::remove_all(dir);
}

TEST(RoomStoreTest, GarbageAppendedOrInsertedLosesNoRecord) {
  const std::string dir = TempDir("garbage");
  for (uint32_t seed = 0; seed < 200; ++seed) {
    std::mt19937 rng(seed);
    const std::vector<Bytes> records = RandomRecords(rng);
    std::vector<std::string> framed;
    for (const auto& r : records) {
      framed.emplace_back();
      AppendRecord(r, framed.back());
    }
    std::string garbage(1 + rng() % 100, '\0');
    for (char& c : garbage) c = static_cast<char>(rng());
    const size_t at = seed % 2 == 0 ? records.size() : rng() % (records.size() + 1);
    std::string log;
    for (size_t i = 0; i <= records.size(); ++i) {
      if (i == at) log += garbage;
      if (i < records.size()) log += framed[i];
    }
    SCOPED_TRACE("seed " + std::to_string(seed) + " garbage at record " + std::to_string(at));
    ExpectRecovers(dir, log, records);
    if (HasFatalFailure()) break;
  }
  std::filesystem::remove_all(dir);
}

TEST(RoomStoreTest, RecordThatFailsValidationIsQuarantined) {
  const std::string dir = TempDir("validate");
  WriteRoom(dir, {B({1}), B({0xEE, 0xEE}), B({3})});
  RoomStoreOptions o;
  o.validate = [](ByteSpan u) { return u.empty() || u[0] != 0xEE; };
  auto s = RoomStore::Open(dir, o, nullptr);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->updates(), (std::vector<Bytes>{B({1}), B({3})}));
  EXPECT_EQ(s->recovery().corrupt_ranges, 1u);
  EXPECT_EQ(s->recovery().corrupt_bytes, 10u);
  EXPECT_EQ(QuarantinedFiles(dir).size(), 1u);
  std::filesystem::remove_all(dir);
}

TEST(RoomStoreTest, EmptyRoomLeavesNothingOnDisk) {
  const std::string dir = TempDir("empty");
  {
    auto s = RoomStore::Open(dir, {}, nullptr);
    ASSERT_TRUE(s.ok());
    EXPECT_FALSE(std::filesystem::exists(dir)) << "nothing is created before an append";
    ASSERT_TRUE(s->Sync().ok());
    ASSERT_TRUE(s->RemoveIfEmpty().ok());
  }
  EXPECT_FALSE(std::filesystem::exists(dir));
  {
    auto s = RoomStore::Open(dir, {}, nullptr);
    ASSERT_TRUE(s.ok());
    ASSERT_TRUE(s->Append(B({1})).ok());
    ASSERT_TRUE(s->Sync().ok());
    ASSERT_TRUE(s->RemoveIfEmpty().ok());  // not empty: kept
  }
  auto s = RoomStore::Open(dir, {}, nullptr);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->updates(), (std::vector<Bytes>{B({1})}));
  std::filesystem::remove_all(dir);
}

TEST(RoomStoreTest, LeftoverEmptyLogIsRemovedWhenTheRoomCloses) {
  const std::string dir = TempDir("leftover");
  WriteRoom(dir, {});
  auto s = RoomStore::Open(dir, {}, nullptr);
  ASSERT_TRUE(s.ok());
  ASSERT_TRUE(s->RemoveIfEmpty().ok());
  EXPECT_FALSE(std::filesystem::exists(dir));
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
