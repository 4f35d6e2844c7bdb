// The ledger file at start-up: a missing file is created (marked as a Pocket ledger), a
// valid one keeps its spend, and every kind of bad file (empty, truncated, corrupt, a text
// file, a directory, another application's SQLite database, a newer schema) is refused
// with the path and the reason, left as it was, until MoveAside puts it away. Also the
// ledger's own refusal to settle a negative amount or more than was reserved.
#include "router/ledger.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

namespace pocket::router {
namespace {

namespace fs = std::filesystem;

constexpr double kNow = 1.8e9;  // 2027-01-15

// A fresh directory per test (removed with everything in it at the end).
class LedgerFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) /
           ("ledger_file_" +
            std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()) + "_" +
            std::to_string(getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    path_ = (dir_ / "ledger.db").string();
  }
  void TearDown() override { fs::remove_all(dir_); }

  // A ledger with `rows` settled entries of 1000 micro-USD and 10 tokens each; closed.
  void MakeLedger(int rows) {
    auto l = Ledger::Open(path_);
    ASSERT_TRUE(l.ok()) << l.status().ToString();
    const std::vector<BudgetScope> scopes{{BudgetScope::Kind::kArea, "chat", Budget{}}};
    for (int i = 0; i < rows; ++i) {
      auto id = (*l)->Reserve(scopes, "cloud", 1000, 10, kNow);
      ASSERT_TRUE(id.ok());
      ASSERT_TRUE((*l)->Settle(*id, 1000, 10).ok());
    }
  }

  // Runs `sql` on a plain SQLite connection to `path` (creating it).
  static void Sql(const std::string& path, const std::string& sql) {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
    char* err = nullptr;
    const int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
    EXPECT_EQ(rc, SQLITE_OK) << (err ? err : "") << " in " << sql;
    sqlite3_free(err);
    sqlite3_close(db);
  }

  static int64_t PragmaInt(const std::string& path, const char* pragma) {
    sqlite3* db = nullptr;
    sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr);
    sqlite3_stmt* s = nullptr;
    int64_t v = -1;
    if (sqlite3_prepare_v2(db, pragma, -1, &s, nullptr) == SQLITE_OK &&
        sqlite3_step(s) == SQLITE_ROW)
      v = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    sqlite3_close(db);
    return v;
  }

  static std::string ReadAll(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
  static void WriteAll(const std::string& path, const std::string& bytes) {
    std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
  }

  // Open and CheckFile both refuse the file with `code`, naming the path and `what`; the
  // file is left byte for byte as it was.
  void ExpectRefused(const std::string& what, StatusCode code = StatusCode::kCorruption) {
    const bool is_file = fs::is_regular_file(path_);
    const bool had_log = fs::exists(path_ + "-wal");
    const std::string before = is_file ? ReadAll(path_) : "";
    for (int pass = 0; pass < 2; ++pass) {
      Status s = pass == 0 ? Ledger::CheckFile(path_) : Ledger::Open(path_).status();
      EXPECT_EQ(s.code(), code) << (pass ? "Open: " : "CheckFile: ") << s.ToString();
      EXPECT_NE(s.message().find("'" + path_ + "'"), std::string::npos) << s.message();
      EXPECT_NE(s.message().find(what), std::string::npos) << s.message();
      EXPECT_EQ(s.message().find('\n'), std::string::npos) << "one line: " << s.message();
    }
    if (is_file) {
      EXPECT_EQ(ReadAll(path_), before) << "a refused file is not changed";
    }
    if (!had_log) {
      EXPECT_FALSE(fs::exists(path_ + "-wal") && fs::file_size(path_ + "-wal") > 0);
    }
  }

  fs::path dir_;
  std::string path_;
};

TEST_F(LedgerFileTest, MissingFileIsCreatedMarkedAndLeavesNoTemporaryFile) {
  ASSERT_TRUE(Ledger::CheckFile(path_).ok()) << "a missing ledger is a first run";
  { ASSERT_TRUE(Ledger::Open(path_).ok()); }
  EXPECT_EQ(PragmaInt(path_, "PRAGMA application_id"), kLedgerApplicationId);
  EXPECT_EQ(PragmaInt(path_, "PRAGMA user_version"), kLedgerSchemaVersion);
  for (const auto& e : fs::directory_iterator(dir_))
    EXPECT_EQ(e.path().filename().string().find(".new-"), std::string::npos) << e.path();
  EXPECT_TRUE(Ledger::CheckFile(path_).ok());
}

TEST_F(LedgerFileTest, ValidLedgerKeepsItsSpendAcrossRestarts) {
  MakeLedger(3);
  for (int restart = 0; restart < 3; ++restart) {
    ASSERT_TRUE(Ledger::CheckFile(path_).ok());
    auto l = Ledger::Open(path_);
    ASSERT_TRUE(l.ok()) << l.status().ToString();
    auto sp = (*l)->SpendFor(BudgetScope::Kind::kArea, "chat", kNow);
    ASSERT_TRUE(sp.ok());
    EXPECT_EQ(sp->day_micro_usd, 3000) << "restart " << restart;
    EXPECT_EQ(sp->day_tokens, 30);
  }
}

TEST_F(LedgerFileTest, EmptyFileIsRefusedNotStartedFresh) {
  MakeLedger(2);
  fs::resize_file(path_, 0);
  ExpectRefused("is empty (0 bytes)");
}

TEST_F(LedgerFileTest, TruncatedFileIsRefusedAtEveryCut) {
  MakeLedger(400);  // several pages
  const std::string whole = ReadAll(path_);
  const size_t page = static_cast<size_t>(PragmaInt(path_, "PRAGMA page_size"));
  ASSERT_GT(whole.size(), 4 * page);
  for (size_t cut : {size_t{1}, size_t{15}, size_t{16}, size_t{99}, size_t{100}, page - 1, page,
                     page + 1, 2 * page, whole.size() - page, whole.size() - 1}) {
    SCOPED_TRACE("cut at " + std::to_string(cut) + " of " + std::to_string(whole.size()));
    WriteAll(path_, whole.substr(0, cut));
    ExpectRefused("truncated");
  }
}

TEST_F(LedgerFileTest, DamagedPageIsRefused) {
  MakeLedger(400);
  std::string bytes = ReadAll(path_);
  const size_t page = static_cast<size_t>(PragmaInt(path_, "PRAGMA page_size"));
  for (size_t i = page; i < 2 * page; ++i) bytes[i] = static_cast<char>(0xA5);  // page 2
  WriteAll(path_, bytes);
  ExpectRefused("corrupt");
}

TEST_F(LedgerFileTest, TextFileIsRefused) {
  WriteAll(path_, "spent: 82.5%\n");
  ExpectRefused("not an SQLite database");
  WriteAll(path_, std::string(4096, '\0'));
  ExpectRefused("not an SQLite database");
}

TEST_F(LedgerFileTest, DirectoryIsRefused) {
  fs::create_directory(path_);
  ExpectRefused("is a directory");
}

TEST_F(LedgerFileTest, OtherSqliteDatabasesAreRefused) {
  Sql(path_,
      "CREATE TABLE notes(id INTEGER PRIMARY KEY, text TEXT); INSERT INTO notes VALUES(1,'x');");
  ExpectRefused("not a Pocket ledger (no table 'entries')");
  fs::remove(path_);
  Sql(path_, "CREATE TABLE entries(id INTEGER PRIMARY KEY, text TEXT);");
  ExpectRefused("table 'entries' has no column");
  fs::remove(path_);
  Sql(path_, "PRAGMA user_version=0");  // a valid database with no tables at all
  Sql(path_, "CREATE TABLE t(x); DROP TABLE t;");
  ExpectRefused("no table 'entries'");
}

TEST_F(LedgerFileTest, AnotherApplicationsIdIsRefusedEvenWithTheRightTable) {
  MakeLedger(1);
  Sql(path_, "PRAGMA application_id=1179863121");
  ExpectRefused("application_id 0x46534851");
}

TEST_F(LedgerFileTest, MarkedLedgerWithoutItsTableIsRefused) {
  MakeLedger(1);
  Sql(path_, "DROP TABLE entries");
  ExpectRefused("Pocket ledger missing its table 'entries'");
}

TEST_F(LedgerFileTest, NewerSchemaIsNotSupported) {
  MakeLedger(1);
  Sql(path_, "PRAGMA user_version=" + std::to_string(kLedgerSchemaVersion + 1));
  ExpectRefused("newer Pocket", StatusCode::kNotSupported);
}

TEST_F(LedgerFileTest, LedgerFromBeforeTheMarkIsAcceptedAndMarked) {
  // The schema as earlier versions created it: no application_id, no user_version.
  Sql(path_,
      "PRAGMA journal_mode=WAL;"
      "CREATE TABLE entries ("
      " id INTEGER PRIMARY KEY AUTOINCREMENT, created REAL NOT NULL,"
      " day TEXT NOT NULL, month TEXT NOT NULL, area TEXT NOT NULL, api_key TEXT NOT NULL,"
      " backend TEXT NOT NULL, state TEXT NOT NULL, cost_micro_usd INTEGER NOT NULL,"
      " tokens INTEGER NOT NULL, reserved_micro_usd INTEGER NOT NULL,"
      " reserved_tokens INTEGER NOT NULL);"
      "CREATE INDEX entries_area ON entries(area, month, day);"
      "CREATE INDEX entries_key ON entries(api_key, month, day);"
      "INSERT INTO entries(created, day, month, area, api_key, backend, state, cost_micro_usd,"
      " tokens, reserved_micro_usd, reserved_tokens)"
      " VALUES(1.8e9, '2027-01-15', '2027-01', 'chat', '', 'cloud', 'settled', 825000, 50,"
      " 900000, 60);");
  ASSERT_EQ(PragmaInt(path_, "PRAGMA application_id"), 0);
  ASSERT_TRUE(Ledger::CheckFile(path_).ok());
  {
    auto l = Ledger::Open(path_);
    ASSERT_TRUE(l.ok()) << l.status().ToString();
    EXPECT_EQ((*l)->SpendFor(BudgetScope::Kind::kArea, "chat", kNow)->day_micro_usd, 825000);
  }
  EXPECT_EQ(PragmaInt(path_, "PRAGMA application_id"), kLedgerApplicationId);
  EXPECT_EQ(PragmaInt(path_, "PRAGMA user_version"), kLedgerSchemaVersion);
}

TEST_F(LedgerFileTest, WriteAheadLogWithoutItsLedgerIsRefused) {
  WriteAll(path_ + "-wal", std::string(64, 'w'));
  ExpectRefused("write-ahead log");
  EXPECT_FALSE(fs::exists(path_)) << "no ledger was created beside the old log";
}

TEST_F(LedgerFileTest, MoveAsideKeepsTheBadFileAndOpenStartsFresh) {
  WriteAll(path_, "");
  WriteAll(path_ + "-wal", "old log");
  auto moved = Ledger::MoveAside(path_, kNow);
  ASSERT_TRUE(moved.ok()) << moved.status().ToString();
  EXPECT_EQ(*moved, path_ + ".bad-20270115T080000Z");
  EXPECT_TRUE(fs::exists(*moved));
  EXPECT_EQ(ReadAll(*moved + "-wal"), "old log");
  EXPECT_FALSE(fs::exists(path_));
  EXPECT_FALSE(fs::exists(path_ + "-wal"));
  auto l = Ledger::Open(path_);
  ASSERT_TRUE(l.ok()) << l.status().ToString();
  // A second bad file in the same second gets its own name.
  l->reset();
  fs::remove(path_);
  fs::create_directory(path_);
  auto again = Ledger::MoveAside(path_, kNow);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, path_ + ".bad-20270115T080000Z-1");
  EXPECT_TRUE(fs::is_directory(*again));
}

// ---- Settling ----

TEST(LedgerSettleTest, RefusesNegativeAndMoreThanReserved) {
  auto l = Ledger::Open(":memory:");
  ASSERT_TRUE(l.ok());
  Budget b;
  b.day_usd = 1.0;
  const std::vector<BudgetScope> scopes{{BudgetScope::Kind::kArea, "chat", b}};
  auto id = (*l)->Reserve(scopes, "cloud", 5000, 100, kNow);
  ASSERT_TRUE(id.ok());
  for (auto [micro_usd, tokens] : {std::pair<int64_t, int64_t>{-1, 10},
                                   {10, -1},
                                   {INT64_MIN, 0},
                                   {5001, 100},
                                   {5000, 101},
                                   {INT64_MAX, INT64_MAX}}) {
    Status s = (*l)->Settle(*id, micro_usd, tokens);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << micro_usd << " " << tokens;
  }
  // Nothing was written: the reservation still counts its worst case and is still open.
  auto sp = (*l)->SpendFor(BudgetScope::Kind::kArea, "chat", kNow);
  EXPECT_EQ(sp->day_micro_usd, 5000);
  EXPECT_EQ(sp->day_tokens, 100);
  ASSERT_TRUE((*l)->Settle(*id, 5000, 100).ok()) << "the reservation itself is settleable";
  auto id2 = (*l)->Reserve(scopes, "cloud", 5000, 100, kNow);
  ASSERT_TRUE((*l)->Settle(*id2, 0, 0).ok());
  sp = (*l)->SpendFor(BudgetScope::Kind::kArea, "chat", kNow);
  EXPECT_EQ(sp->day_micro_usd, 5000);
}

}  // namespace
}  // namespace pocket::router
