// The ledger over SQLite: creating a new ledger file atomically, checking an existing one
// before it is trusted (the bytes, then SQLite's view), and the reserve/settle/release
// transactions. What a remote's usage is worth is decided above, in router.cc.
#include "router/ledger.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <set>
#include <thread>

#include "base/file.h"

namespace pocket::router {
namespace {

// RAII statement; all SQL here is constant, so a prepare failure is reported as Internal.
class Stmt {
 public:
  Stmt(sqlite3* db, const char* sql) { rc_ = sqlite3_prepare_v2(db, sql, -1, &s_, nullptr); }
  ~Stmt() { sqlite3_finalize(s_); }
  bool ok() const { return rc_ == SQLITE_OK; }
  sqlite3_stmt* get() { return s_; }
  void Bind(int i, const std::string& v) {
    sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
  }
  void Bind(int i, int64_t v) { sqlite3_bind_int64(s_, i, v); }
  void Bind(int i, double v) { sqlite3_bind_double(s_, i, v); }

 private:
  sqlite3_stmt* s_ = nullptr;
  int rc_;
};

std::string Err(sqlite3* db, const std::string& what) {
  return "ledger: " + what + ": " + sqlite3_errmsg(db) + " (" + std::to_string(sqlite3_extended_errcode(db)) + ")";
}

const char* Column(BudgetScope::Kind k) { return k == BudgetScope::Kind::kArea ? "area" : "api_key"; }

std::string FormatUsd(int64_t micros) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "$%.6f", MicrosToUsd(micros));
  return buf;
}

constexpr const char* kColumns[] = {"id",
                                    "created",
                                    "day",
                                    "month",
                                    "area",
                                    "api_key",
                                    "backend",
                                    "state",
                                    "cost_micro_usd",
                                    "tokens",
                                    "reserved_micro_usd",
                                    "reserved_tokens"};

std::string Quoted(const std::string& path) { return "'" + path + "'"; }

// SQLITE_CORRUPT / SQLITE_NOTADB (any extended code): the bytes are not a database SQLite
// can read, as opposed to a file it cannot open or lock.
bool IsCorruptCode(int rc) {
  const int primary = rc & 0xff;
  return primary == SQLITE_CORRUPT || primary == SQLITE_NOTADB;
}

Status SqliteFailure(sqlite3* db, const std::string& path, const std::string& what) {
  const int rc = sqlite3_extended_errcode(db);
  if (IsCorruptCode(rc))
    return Status::Corruption("ledger: " + Quoted(path) +
                              " is corrupt or not an SQLite database (" + sqlite3_errmsg(db) + ")");
  return Status::IOError(Err(db, Quoted(path) + ": " + what));
}

// Size in bytes of the file at `path`; -1 when there is none (or it cannot be read).
int64_t FileSize(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return -1;
  return static_cast<int64_t>(st.st_size);
}

uint32_t Be32(const unsigned char* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}

// The byte-level checks of an existing `path` (SQLite's file format, sqlite.org/fileformat2:
// a 100-byte header starting "SQLite format 3\0", the page size at offset 16, the page
// count at 28, valid when the change counter at 24 equals the version-valid-for at 92).
// SQLite alone would call an empty file a fresh database, and some truncations "malformed";
// these give the user the precise reason.
Status CheckBytes(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0)
    return Status::IOError("ledger: cannot read " + Quoted(path) + ": " + std::strerror(errno));
  if (S_ISDIR(st.st_mode))
    return Status::Corruption("ledger: " + Quoted(path) + " is a directory, not a Pocket ledger");
  if (!S_ISREG(st.st_mode))
    return Status::Corruption("ledger: " + Quoted(path) +
                              " is not a regular file, so not a Pocket ledger");
  const int64_t size = st.st_size;
  if (size == 0)
    return Status::Corruption("ledger: " + Quoted(path) +
                              " is empty (0 bytes); a Pocket ledger never is");
  unsigned char h[100] = {};
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f)
    return Status::IOError("ledger: cannot read " + Quoted(path) + ": " + std::strerror(errno));
  const size_t n = std::fread(h, 1, sizeof(h), f);
  std::fclose(f);
  static constexpr char kMagic[16] = "SQLite format 3";  // 15 characters and the NUL
  if (std::memcmp(h, kMagic, std::min<size_t>(n, 16)) != 0)
    return Status::Corruption("ledger: " + Quoted(path) +
                              " is not an SQLite database, so not a Pocket ledger");
  if (n < sizeof(h))
    return Status::Corruption("ledger: " + Quoted(path) + " is truncated (" + std::to_string(size) +
                              " bytes; its SQLite header alone is 100)");
  uint32_t page_size = (uint32_t{h[16]} << 8) | h[17];
  if (page_size == 1) page_size = 65536;
  if (page_size < 512 || page_size > 65536 || (page_size & (page_size - 1)) != 0)
    return Status::Corruption("ledger: " + Quoted(path) +
                              " has a corrupt SQLite header (page size " +
                              std::to_string(page_size) + ")");
  if (size % page_size != 0)
    return Status::Corruption("ledger: " + Quoted(path) + " is truncated (" + std::to_string(size) +
                              " bytes is not a whole number of " + std::to_string(page_size) +
                              "-byte pages)");
  // While a write-ahead log or rollback journal holds data, the file itself may be shorter
  // than its header says (a checkpoint cut short); SQLite replays the log then.
  const bool log_pending = FileSize(path + "-wal") > 0 || FileSize(path + "-journal") > 0;
  const uint64_t pages = Be32(h + 28);
  if (!log_pending && pages > 0 && Be32(h + 24) == Be32(h + 92) &&
      pages * page_size > static_cast<uint64_t>(size))
    return Status::Corruption("ledger: " + Quoted(path) + " is truncated (its header counts " +
                              std::to_string(pages) + " pages of " + std::to_string(page_size) +
                              " bytes, the file has " + std::to_string(size) + " bytes)");
  return Status::Ok();
}

// A write-ahead log without its database: creating a new file beside it would have SQLite
// replay the old log into it.
Status CheckNoOrphanLog(const std::string& path) {
  if (FileSize(path + "-wal") > 0)
    return Status::Corruption("ledger: " + Quoted(path) + " is missing but its write-ahead log " +
                              Quoted(path + "-wal") + " is there");
  return Status::Ok();
}

}  // namespace

int64_t CostMicros(const Backend& b, int64_t prompt_tokens, int64_t completion_tokens) {
  // price per 1K tokens in USD -> micro-USD per token = price * 1000.
  const double micros = static_cast<double>(prompt_tokens) * b.price_input_per_1k * 1000.0 +
                        static_cast<double>(completion_tokens) * b.price_output_per_1k * 1000.0;
  return static_cast<int64_t>(std::ceil(micros - 1e-9));
}

std::string UtcDay(double now_s) {
  const std::time_t t = static_cast<std::time_t>(now_s);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[16];
  std::strftime(buf, sizeof(buf), "%Y-%m-%d", &tm);
  return buf;
}

std::string UtcMonth(double now_s) { return UtcDay(now_s).substr(0, 7); }

Status Ledger::InitSchema() {
  const std::string sql =
      "BEGIN IMMEDIATE;"
      "CREATE TABLE IF NOT EXISTS entries ("
      " id INTEGER PRIMARY KEY AUTOINCREMENT, created REAL NOT NULL,"
      " day TEXT NOT NULL, month TEXT NOT NULL, area TEXT NOT NULL, api_key TEXT NOT NULL,"
      " backend TEXT NOT NULL, state TEXT NOT NULL, cost_micro_usd INTEGER NOT NULL,"
      " tokens INTEGER NOT NULL, reserved_micro_usd INTEGER NOT NULL,"
      " reserved_tokens INTEGER NOT NULL);"
      "CREATE INDEX IF NOT EXISTS entries_area ON entries(area, month, day);"
      "CREATE INDEX IF NOT EXISTS entries_key ON entries(api_key, month, day);"
      "PRAGMA application_id=" +
      std::to_string(kLedgerApplicationId) +
      ";"
      "PRAGMA user_version=" +
      std::to_string(kLedgerSchemaVersion) +
      ";"
      "COMMIT;";
  if (Status s = Exec(sql.c_str()); !s.ok()) {
    (void)Exec("ROLLBACK");
    return s;
  }
  return Status::Ok();
}

Status Ledger::CheckSchema(const std::string& path) {
  auto pragma_int = [&](const char* sql, int64_t* out) -> Status {
    Stmt s(db_, sql);
    if (!s.ok() || sqlite3_step(s.get()) != SQLITE_ROW)
      return SqliteFailure(db_, path, std::string("cannot read ") + sql);
    *out = sqlite3_column_int64(s.get(), 0);
    return Status::Ok();
  };
  int64_t app_id = 0, version = 0;
  PK_RETURN_IF_ERROR(pragma_int("PRAGMA application_id", &app_id));
  PK_RETURN_IF_ERROR(pragma_int("PRAGMA user_version", &version));
  if (app_id != 0 && app_id != kLedgerApplicationId) {
    char id[16];
    std::snprintf(id, sizeof(id), "0x%08x", static_cast<uint32_t>(app_id));
    return Status::Corruption("ledger: " + Quoted(path) +
                              " is an SQLite database of another application (application_id " +
                              id + "), not a Pocket ledger");
  }
  std::set<std::string> columns;
  {
    Stmt s(db_, "SELECT name FROM pragma_table_info('entries')");
    if (!s.ok()) return SqliteFailure(db_, path, "cannot read the schema");
    int rc;
    while ((rc = sqlite3_step(s.get())) == SQLITE_ROW)
      columns.insert(reinterpret_cast<const char*>(sqlite3_column_text(s.get(), 0)));
    if (rc != SQLITE_DONE) return SqliteFailure(db_, path, "cannot read the schema");
  }
  for (const char* c : kColumns) {
    if (columns.count(c)) continue;
    if (app_id == kLedgerApplicationId)
      return Status::Corruption("ledger: " + Quoted(path) + " is a Pocket ledger missing " +
                                (columns.empty() ? std::string("its table 'entries'")
                                                 : "the column 'entries." + std::string(c) + "'"));
    return Status::Corruption(
        "ledger: " + Quoted(path) + " is an SQLite database but not a Pocket ledger (" +
        (columns.empty() ? std::string("no table 'entries'")
                         : "table 'entries' has no column '" + std::string(c) + "'") +
        ")");
  }
  if (version > kLedgerSchemaVersion)
    return Status::NotSupported(
        "ledger: " + Quoted(path) + " has schema version " + std::to_string(version) +
        ", made by a newer Pocket (this one reads " + std::to_string(kLedgerSchemaVersion) + ")");
  // quick_check reads every page: catches truncation and damage inside the file that the
  // header does not show (O(size), milliseconds for a typical ledger).
  Stmt qc(db_, "PRAGMA quick_check(1)");
  if (!qc.ok() || sqlite3_step(qc.get()) != SQLITE_ROW)
    return SqliteFailure(db_, path, "quick_check");
  const char* verdict = reinterpret_cast<const char*>(sqlite3_column_text(qc.get(), 0));
  if (!verdict || std::strcmp(verdict, "ok") != 0) {
    std::string why = std::string(verdict ? verdict : "no answer").substr(0, 200);
    std::replace(why.begin(), why.end(), '\n', ' ');  // the message stays one line
    return Status::Corruption("ledger: " + Quoted(path) +
                              " is corrupt (SQLite quick_check: " + why + ")");
  }
  return Status::Ok();
}

// Creates a new, marked ledger at `path` unless a file is there: built as `path`.new-PID-N
// and linked into place whole (link fails rather than replace a file another process put
// there first; then that one is used). So every file at `path` was complete when it
// appeared, and an empty or half-written one there is damage, not a creation in progress.
Status Ledger::CreateIfMissing(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) == 0) return Status::Ok();
  if (errno != ENOENT)
    return Status::IOError("ledger: cannot read " + Quoted(path) + ": " + std::strerror(errno));
  PK_RETURN_IF_ERROR(CheckNoOrphanLog(path));
  static std::atomic<uint64_t> counter{0};
  const std::string tmp =
      path + ".new-" + std::to_string(getpid()) + "-" + std::to_string(counter.fetch_add(1));
  auto cleanup = [&] {
    std::remove(tmp.c_str());
    std::remove((tmp + "-journal").c_str());
  };
  sqlite3* db = nullptr;
  const int rc = sqlite3_open_v2(
      tmp.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = "ledger: cannot create " + Quoted(path) + ": " +
                      (db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
    sqlite3_close(db);
    cleanup();
    return Status::IOError(msg);
  }
  Status init;
  {
    Ledger fresh(db);  // closes db when it goes
    sqlite3_busy_timeout(db, 10000);
    init = fresh.InitSchema();
  }
  if (!init.ok()) {
    cleanup();
    return init;
  }
  Status placed = Status::Ok();
  if (link(tmp.c_str(), path.c_str()) != 0 && errno != EEXIST) {
    // No hard links on this file system: a rename that never replaces, else (kernels or
    // file systems without RENAME_NOREPLACE) a plain one if the path is still free.
    if (renameat2(AT_FDCWD, tmp.c_str(), AT_FDCWD, path.c_str(), RENAME_NOREPLACE) != 0 &&
        errno != EEXIST) {
      if (stat(path.c_str(), &st) != 0 && std::rename(tmp.c_str(), path.c_str()) != 0)
        placed =
            Status::IOError("ledger: cannot create " + Quoted(path) + ": " + std::strerror(errno));
    }
  }
  cleanup();
  return placed;
}

Result<std::unique_ptr<Ledger>> Ledger::Open(const std::string& path) {
  const bool memory = path == ":memory:";
  if (!memory) {
    PK_RETURN_IF_ERROR(CreateIfMissing(path));
    PK_RETURN_IF_ERROR(CheckBytes(path));
  }
  sqlite3* db = nullptr;
  const int rc = sqlite3_open_v2(
      path.c_str(), &db,
      SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | (memory ? SQLITE_OPEN_CREATE : 0), nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = "ledger: cannot open " + Quoted(path) + ": " +
                      (db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
    sqlite3_close(db);
    return Status::IOError(msg);
  }
  std::unique_ptr<Ledger> l(new Ledger(db));
  sqlite3_busy_timeout(db, 10000);
  if (memory) {
    PK_RETURN_IF_ERROR(l->InitSchema());
    return l;
  }
  // Checked before anything is written, so a file of another application is left as it was.
  int64_t app_id = 0;
  PK_RETURN_IF_ERROR(l->CheckSchema(path));
  {
    Stmt s(db, "PRAGMA application_id");
    if (s.ok() && sqlite3_step(s.get()) == SQLITE_ROW) app_id = sqlite3_column_int64(s.get(), 0);
  }
  // Switching to WAL takes an exclusive lock; when another connection opening the same
  // file at once holds one, SQLite answers SQLITE_BUSY at once (the busy handler is not
  // called where waiting could deadlock), so wait here, as the busy timeout would.
  {
    Stmt wal(db, "PRAGMA journal_mode=WAL");
    int step = wal.ok() ? sqlite3_step(wal.get()) : SQLITE_ERROR;
    for (int tries = 0; (step == SQLITE_BUSY || step == SQLITE_LOCKED) && tries < 2000; ++tries) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
      sqlite3_reset(wal.get());
      step = sqlite3_step(wal.get());
    }
    if (step != SQLITE_ROW) return SqliteFailure(db, path, "cannot enable WAL");
  }
  PK_RETURN_IF_ERROR(l->Exec("PRAGMA synchronous=NORMAL"));
  if (app_id == 0) {
    // A ledger made before files were marked (accepted above for its table): mark it now.
    PK_RETURN_IF_ERROR(l->InitSchema());
  }
  return l;
}

Status Ledger::CheckFile(const std::string& path) {
  if (path == ":memory:") return Status::Ok();
  struct stat st;
  if (stat(path.c_str(), &st) != 0) {
    if (errno != ENOENT)
      return Status::IOError("ledger: cannot read " + Quoted(path) + ": " + std::strerror(errno));
    return CheckNoOrphanLog(path);
  }
  PK_RETURN_IF_ERROR(CheckBytes(path));
  sqlite3* db = nullptr;
  const int rc =
      sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = "ledger: cannot open " + Quoted(path) + ": " +
                      (db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
    sqlite3_close(db);
    return Status::IOError(msg);
  }
  std::unique_ptr<Ledger> l(new Ledger(db));
  sqlite3_busy_timeout(db, 10000);
  return l->CheckSchema(path);
}

Result<std::string> Ledger::MoveAside(const std::string& path, double now_s) {
  auto moved = pocket::MoveAside(path, "bad", static_cast<std::time_t>(now_s),
                                 {"-wal", "-shm", "-journal"});
  if (!moved.ok()) return moved.status().WithContext("ledger");
  return moved;
}

Ledger::~Ledger() { sqlite3_close(db_); }

Status Ledger::Exec(const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = std::string("ledger: ") + (err ? err : "error") + " in: " + sql;
    sqlite3_free(err);
    return Status::IOError(msg);
  }
  return Status::Ok();
}

Result<Spend> Ledger::SpendLocked(BudgetScope::Kind kind, const std::string& name,
                                  const std::string& day, const std::string& month) {
  const std::string sql =
      std::string(
          "SELECT COALESCE(SUM(CASE WHEN day=?1 THEN cost_micro_usd END),0),"
          " COALESCE(SUM(cost_micro_usd),0),"
          " COALESCE(SUM(CASE WHEN day=?1 THEN tokens END),0), COALESCE(SUM(tokens),0)"
          " FROM entries WHERE state!='released' AND month=?2 AND ") +
      Column(kind) + "=?3";
  Stmt s(db_, sql.c_str());
  if (!s.ok()) return Status::Internal(Err(db_, "prepare spend"));
  s.Bind(1, day);
  s.Bind(2, month);
  s.Bind(3, name);
  if (sqlite3_step(s.get()) != SQLITE_ROW) return Status::IOError(Err(db_, "read spend"));
  Spend sp;
  sp.day_micro_usd = sqlite3_column_int64(s.get(), 0);
  sp.month_micro_usd = sqlite3_column_int64(s.get(), 1);
  sp.day_tokens = sqlite3_column_int64(s.get(), 2);
  sp.month_tokens = sqlite3_column_int64(s.get(), 3);
  return sp;
}

Result<int64_t> Ledger::Reserve(const std::vector<BudgetScope>& scopes, const std::string& backend,
                                int64_t micro_usd, int64_t tokens, double now_s) {
  std::lock_guard<std::mutex> lock(mu_);
  const std::string day = UtcDay(now_s), month = UtcMonth(now_s);
  PK_RETURN_IF_ERROR(Exec("BEGIN IMMEDIATE"));
  auto fail = [&](Status s) -> Result<int64_t> {
    (void)Exec("ROLLBACK");
    return s;
  };
  std::string area, key;
  for (const auto& sc : scopes) {
    (sc.kind == BudgetScope::Kind::kArea ? area : key) = sc.name;
    auto sp = SpendLocked(sc.kind, sc.name, day, month);
    if (!sp.ok()) return fail(sp.status());
    const std::string who = std::string(sc.kind == BudgetScope::Kind::kArea ? "area '" : "api key '") +
                            sc.name + "'";
    const Budget& b = sc.limit;
    if (b.day_usd > 0 && sp->day_micro_usd + micro_usd > UsdToMicros(b.day_usd))
      return fail(Status::ResourceExhausted(
          who + ": daily budget " + FormatUsd(UsdToMicros(b.day_usd)) + " would be exceeded (spent " +
          FormatUsd(sp->day_micro_usd) + ", this request up to " + FormatUsd(micro_usd) + ")"));
    if (b.month_usd > 0 && sp->month_micro_usd + micro_usd > UsdToMicros(b.month_usd))
      return fail(Status::ResourceExhausted(
          who + ": monthly budget " + FormatUsd(UsdToMicros(b.month_usd)) +
          " would be exceeded (spent " + FormatUsd(sp->month_micro_usd) + ")"));
    if (b.day_tokens > 0 && sp->day_tokens + tokens > b.day_tokens)
      return fail(Status::ResourceExhausted(who + ": daily token budget " +
                                            std::to_string(b.day_tokens) + " would be exceeded"));
    if (b.month_tokens > 0 && sp->month_tokens + tokens > b.month_tokens)
      return fail(Status::ResourceExhausted(who + ": monthly token budget " +
                                            std::to_string(b.month_tokens) + " would be exceeded"));
  }
  Stmt ins(db_,
           "INSERT INTO entries(created, day, month, area, api_key, backend, state,"
           " cost_micro_usd, tokens, reserved_micro_usd, reserved_tokens)"
           " VALUES(?1,?2,?3,?4,?5,?6,'reserved',?7,?8,?7,?8)");
  if (!ins.ok()) return fail(Status::Internal(Err(db_, "prepare insert")));
  ins.Bind(1, now_s);
  ins.Bind(2, day);
  ins.Bind(3, month);
  ins.Bind(4, area);
  ins.Bind(5, key);
  ins.Bind(6, backend);
  ins.Bind(7, micro_usd);
  ins.Bind(8, tokens);
  if (sqlite3_step(ins.get()) != SQLITE_DONE) return fail(Status::IOError(Err(db_, "insert")));
  const int64_t id = sqlite3_last_insert_rowid(db_);
  if (Status c = Exec("COMMIT"); !c.ok()) return fail(c);
  return id;
}

Status Ledger::Settle(int64_t id, int64_t micro_usd, int64_t tokens) {
  const std::string which = "ledger: reservation " + std::to_string(id);
  if (micro_usd < 0 || tokens < 0)
    return Status::InvalidArgument(which + ": refusing to settle a negative amount (" +
                                   std::to_string(micro_usd) + " micro-USD, " +
                                   std::to_string(tokens) + " tokens)");
  std::lock_guard<std::mutex> lock(mu_);
  Stmt q(
      db_,
      "SELECT reserved_micro_usd, reserved_tokens FROM entries WHERE id=?1 AND state='reserved'");
  if (!q.ok()) return Status::Internal(Err(db_, "prepare settle"));
  q.Bind(1, id);
  const int rc = sqlite3_step(q.get());
  if (rc == SQLITE_DONE)
    return Status::NotFound("ledger: no open reservation " + std::to_string(id));
  if (rc != SQLITE_ROW) return Status::IOError(Err(db_, "settle"));
  const int64_t reserved_micro_usd = sqlite3_column_int64(q.get(), 0);
  const int64_t reserved_tokens = sqlite3_column_int64(q.get(), 1);
  if (micro_usd > reserved_micro_usd || tokens > reserved_tokens)
    return Status::InvalidArgument(which + ": refusing to settle more than was reserved (" +
                                   FormatUsd(micro_usd) + ", " + std::to_string(tokens) +
                                   " tokens; reserved " + FormatUsd(reserved_micro_usd) + ", " +
                                   std::to_string(reserved_tokens) + " tokens)");
  // The bounds again in the update, so it cannot record what the check above refused.
  Stmt s(
      db_,
      "UPDATE entries SET state='settled', cost_micro_usd=?2, tokens=?3"
      " WHERE id=?1 AND state='reserved' AND ?2 <= reserved_micro_usd AND ?3 <= reserved_tokens");
  if (!s.ok()) return Status::Internal(Err(db_, "prepare settle"));
  s.Bind(1, id);
  s.Bind(2, micro_usd);
  s.Bind(3, tokens);
  if (sqlite3_step(s.get()) != SQLITE_DONE) return Status::IOError(Err(db_, "settle"));
  if (sqlite3_changes(db_) != 1)
    return Status::NotFound("ledger: no open reservation " + std::to_string(id));
  return Status::Ok();
}

Status Ledger::Release(int64_t id) {
  std::lock_guard<std::mutex> lock(mu_);
  Stmt s(db_, "UPDATE entries SET state='released' WHERE id=?1 AND state='reserved'");
  if (!s.ok()) return Status::Internal(Err(db_, "prepare release"));
  s.Bind(1, id);
  if (sqlite3_step(s.get()) != SQLITE_DONE) return Status::IOError(Err(db_, "release"));
  if (sqlite3_changes(db_) != 1)
    return Status::NotFound("ledger: no open reservation " + std::to_string(id));
  return Status::Ok();
}

Result<Spend> Ledger::SpendFor(BudgetScope::Kind kind, const std::string& name, double now_s) {
  std::lock_guard<std::mutex> lock(mu_);
  return SpendLocked(kind, name, UtcDay(now_s), UtcMonth(now_s));
}

Result<std::vector<std::pair<std::string, Spend>>> Ledger::AllSpend(BudgetScope::Kind kind,
                                                                    double now_s) {
  std::vector<std::string> names;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const std::string sql = std::string("SELECT DISTINCT ") + Column(kind) +
                            " FROM entries WHERE " + Column(kind) + "!='' ORDER BY 1";
    Stmt s(db_, sql.c_str());
    if (!s.ok()) return Status::Internal(Err(db_, "prepare list"));
    int rc;
    while ((rc = sqlite3_step(s.get())) == SQLITE_ROW)
      names.emplace_back(reinterpret_cast<const char*>(sqlite3_column_text(s.get(), 0)));
    if (rc != SQLITE_DONE) return Status::IOError(Err(db_, "list"));
  }
  std::vector<std::pair<std::string, Spend>> out;
  for (auto& n : names) {
    PK_ASSIGN_OR_RETURN(Spend sp, SpendFor(kind, n, now_s));
    out.emplace_back(std::move(n), sp);
  }
  return out;
}

}  // namespace pocket::router
