// The cost ledger: remote spend per feature area and per API key, per UTC day and month,
// in money (integer micro-USD, so sums are exact) and tokens, kept in SQLite (WAL).
// Before a remote call the caller Reserve()s the worst-case cost; the reservation counts
// against the budget at once, so concurrent requests (threads or processes sharing the
// file) can never together exceed it: the check and the insert happen in one
// BEGIN IMMEDIATE transaction. After the call Settle() records the real cost from the
// response's usage, or Release() drops the reservation when nothing was spent.
// Settle() never records a negative amount or more than was reserved: the reservation is
// the worst case, and what a remote reports is clamped by the caller (Router::Assess).
// Schema (table `entries`): id, created (unix s), day ('YYYY-MM-DD'), month ('YYYY-MM'),
// area, api_key, backend, state ('reserved'|'settled'|'released'), cost_micro_usd,
// tokens, reserved_micro_usd, reserved_tokens. The file is marked as a Pocket ledger by
// SQLite's header fields application_id = kLedgerApplicationId and user_version =
// kLedgerSchemaVersion, written with the table when the file is created. Ledgers made
// before these marks existed carry application_id 0: they are accepted when they hold the
// `entries` table with every column above, and marked on open.
// Called by the server per remote request and by `pocket budget`. Thread safety: all
// methods are thread-safe (one connection guarded by a mutex; SQLite serializes writers
// across processes).
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "base/status.h"
#include "router/policy.h"

struct sqlite3;

namespace pocket::router {

inline int64_t UsdToMicros(double usd) { return static_cast<int64_t>(usd * 1e6 + 0.5); }
inline double MicrosToUsd(int64_t micros) { return static_cast<double>(micros) / 1e6; }

// Worst-case cost in micro-USD of `prompt_tokens` in and `completion_tokens` out,
// rounded up so a reservation is never below the settled cost.
int64_t CostMicros(const Backend& b, int64_t prompt_tokens, int64_t completion_tokens);

// Spend so far (reserved and settled) in the periods that contain a given time.
struct Spend {
  int64_t day_micro_usd = 0;
  int64_t month_micro_usd = 0;
  int64_t day_tokens = 0;
  int64_t month_tokens = 0;
};

// A budget a reservation must fit: the area's, and the API key's when the request has one.
struct BudgetScope {
  enum class Kind { kArea, kApiKey } kind = Kind::kArea;
  std::string name;
  Budget limit;
};

// SQLite header application_id of a Pocket ledger ("PkLg"), and its schema version.
inline constexpr uint32_t kLedgerApplicationId = 0x506B4C67;
inline constexpr int kLedgerSchemaVersion = 1;

class Ledger {
 public:
  // Opens the ledger at `path` (":memory:" for tests), creating it when no file exists
  // there: the new file is built beside `path` and linked into place whole, so a file
  // found at `path` is never one being created by another process. An existing file is
  // checked first (CheckFile): Corruption naming the path and what is wrong when it is
  // not a usable Pocket ledger (never silently replaced: a fresh ledger would forget the
  // spend); NotSupported when a newer Pocket made it; IOError naming the path when SQLite
  // cannot open it or set WAL mode.
  static Result<std::unique_ptr<Ledger>> Open(const std::string& path);

  // Checks the file at `path` without creating or changing anything. Ok when there is no
  // file (a first run creates one) or it is a Pocket ledger. Corruption, one line naming
  // the path and the problem, when it is a directory or not a regular file, empty,
  // truncated (shorter than its SQLite header says, or not whole pages), not an SQLite
  // database, an SQLite database of another application (no `entries` table with the
  // ledger's columns, or another application_id), fails SQLite's quick_check, or when
  // its write-ahead log exists without it. NotSupported for a newer schema version.
  // IOError when it cannot be read. Reads the whole file (quick_check): linear in its size.
  static Status CheckFile(const std::string& path);

  // Moves an unusable ledger at `path` (and its -wal and -shm files) aside to
  // `path`.bad-YYYYMMDDTHHMMSSZ (a -N suffix when that exists), so that Open creates a
  // new one; nothing is deleted. Returns the new name. IOError when the rename fails.
  static Result<std::string> MoveAside(const std::string& path, double now_s);
  ~Ledger();

  // Reserves `micro_usd` and `tokens` against every scope at time `now_s` (unix seconds).
  // ResourceExhausted naming the scope and period that would go over; nothing is written
  // then. Returns the reservation id.
  Result<int64_t> Reserve(const std::vector<BudgetScope>& scopes, const std::string& backend,
                          int64_t micro_usd, int64_t tokens, double now_s);
  // Records the real cost of reservation `id`. NotFound for an unknown or already
  // settled/released id. InvalidArgument, and nothing written (the reservation stays open,
  // counting its worst case), for a negative amount or one above what was reserved.
  Status Settle(int64_t id, int64_t micro_usd, int64_t tokens);
  // Drops reservation `id` (the remote call failed before spending).
  Status Release(int64_t id);

  Result<Spend> SpendFor(BudgetScope::Kind kind, const std::string& name, double now_s);
  // Every area (or key) that has entries, with its spend at `now_s`.
  Result<std::vector<std::pair<std::string, Spend>>> AllSpend(BudgetScope::Kind kind,
                                                              double now_s);

 private:
  explicit Ledger(sqlite3* db) : db_(db) {}
  Status Exec(const char* sql);
  static Status CreateIfMissing(const std::string& path);
  // Creates the table and indexes and marks the file as a Pocket ledger.
  Status InitSchema();
  // The SQLite-level checks of CheckFile, on this connection.
  Status CheckSchema(const std::string& path);
  Result<Spend> SpendLocked(BudgetScope::Kind kind, const std::string& name,
                            const std::string& day, const std::string& month);
  std::mutex mu_;
  sqlite3* db_;
};

// "YYYY-MM-DD" and "YYYY-MM" in UTC for unix time `now_s`.
std::string UtcDay(double now_s);
std::string UtcMonth(double now_s);

}  // namespace pocket::router
