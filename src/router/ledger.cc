#include "router/ledger.h"

#include <sqlite3.h>

#include <chrono>
#include <cmath>
#include <ctime>
#include <thread>

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

Result<std::unique_ptr<Ledger>> Ledger::Open(const std::string& path) {
  sqlite3* db = nullptr;
  const int rc = sqlite3_open_v2(path.c_str(), &db,
                                 SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                                 nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = "ledger: cannot open '" + path + "': " +
                      (db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
    sqlite3_close(db);
    return Status::IOError(msg);
  }
  std::unique_ptr<Ledger> l(new Ledger(db));
  sqlite3_busy_timeout(db, 10000);
  if (path != ":memory:") {
    // Switching to WAL takes an exclusive lock; when another connection opening the same
    // file at once holds one, SQLite answers SQLITE_BUSY at once (the busy handler is not
    // called where waiting could deadlock), so wait here, as the busy timeout would.
    Stmt wal(db, "PRAGMA journal_mode=WAL");
    int step = wal.ok() ? sqlite3_step(wal.get()) : SQLITE_ERROR;
    for (int tries = 0; (step == SQLITE_BUSY || step == SQLITE_LOCKED) && tries < 2000; ++tries) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
      sqlite3_reset(wal.get());
      step = sqlite3_step(wal.get());
    }
    if (step != SQLITE_ROW) return Status::IOError(Err(db, "'" + path + "': cannot enable WAL"));
  }
  PK_RETURN_IF_ERROR(l->Exec("PRAGMA synchronous=NORMAL"));
  PK_RETURN_IF_ERROR(l->Exec(
      "CREATE TABLE IF NOT EXISTS entries ("
      " id INTEGER PRIMARY KEY AUTOINCREMENT, created REAL NOT NULL,"
      " day TEXT NOT NULL, month TEXT NOT NULL, area TEXT NOT NULL, api_key TEXT NOT NULL,"
      " backend TEXT NOT NULL, state TEXT NOT NULL, cost_micro_usd INTEGER NOT NULL,"
      " tokens INTEGER NOT NULL, reserved_micro_usd INTEGER NOT NULL,"
      " reserved_tokens INTEGER NOT NULL);"
      "CREATE INDEX IF NOT EXISTS entries_area ON entries(area, month, day);"
      "CREATE INDEX IF NOT EXISTS entries_key ON entries(api_key, month, day);"));
  return l;
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
  std::lock_guard<std::mutex> lock(mu_);
  Stmt s(db_,
         "UPDATE entries SET state='settled', cost_micro_usd=?2, tokens=?3"
         " WHERE id=?1 AND state='reserved'");
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
