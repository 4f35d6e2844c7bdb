// Reader for the feature/output files `pocket drift` compares: JSONL (one JSON object per
// line; its keys are the columns, in order of first appearance) or CSV (RFC 4180: a header
// line of column names, comma-separated fields, fields in double quotes may hold commas,
// line breaks and "" for a quote; LF or CRLF line ends). Every cell is kept as text plus,
// when it is a number (a JSON number; a CSV field strtod reads whole and finite), its
// value. Missing cells: JSON null or an absent key; in CSV an empty field or NA, N/A, NaN,
// nan, null, NULL, None (the strings pandas reads as missing). Blank lines are ignored.
// A malformed line (invalid JSON, not an object, a nested array/object value, a CSV
// record with the wrong number of fields or a stray quote) is an error "FILE:LINE: what",
// or, with skip_bad_lines, is dropped and counted. Callers: eval/drift.cc, the fuzz target.
// Thread safety: pure functions.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace pocket::eval {

struct Cell {
  enum class Kind { kMissing, kNumber, kString };
  Kind kind = Kind::kMissing;
  double number = 0;  // when kNumber
  std::string text;   // the cell as written (JSON: strings unquoted, others as dumped)
};

struct Table {
  std::string name;  // the file name given to ParseTable
  std::vector<std::string> columns;
  std::vector<std::vector<Cell>> cells;  // cells[column][row]; every column has `rows` cells
  size_t rows = 0;
  size_t bad_lines = 0;                        // skipped with skip_bad_lines
  std::vector<std::string> bad_line_messages;  // "FILE:LINE: what", the first 20

  // The column's index, or -1.
  int Find(std::string_view column) const;
};

enum class TableFormat { kAuto, kJsonl, kCsv };

struct TableOptions {
  TableFormat format = TableFormat::kAuto;  // kAuto: by extension (.csv; .jsonl/.ndjson/
                                            // .json), else JSONL when the first non-blank
                                            // byte is '{'
  bool skip_bad_lines = false;
};

// Parses `bytes`; `name` is the file name errors and messages use. InvalidArgument for the
// first malformed line (unless skipped), an empty CSV header, a duplicate column name, more
// than 1000 columns (CSV header or distinct JSONL keys), or no rows at all.
Result<Table> ParseTable(std::string_view bytes, const std::string& name,
                         const TableOptions& options);

// Reads and parses the file at `path` (IOError / NotFound when it cannot be read).
Result<Table> ReadTable(const std::string& path, const TableOptions& options);

}  // namespace pocket::eval
