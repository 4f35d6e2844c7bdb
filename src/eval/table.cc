// JSONL and CSV readers for drift data (table.h). Lines are parsed one at a time so that a
// malformed one is reported with its line number and, when skipping, dropped without
// disturbing the rows before and after it. JSON goes through ParseUntrustedJson (depth
// bound, duplicate keys refused): these files come from outside.
#include "eval/table.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <map>
#include <nlohmann/json.hpp>

#include "base/file.h"
#include "base/json_limits.h"

namespace pocket::eval {
namespace {

constexpr size_t kMaxMessages = 20;
// Every new JSONL key back-fills a missing cell in every earlier row, so a file whose lines
// each bring new keys would cost rows x keys cells; real feature files have tens of columns.
constexpr size_t kMaxColumns = 1000;

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

bool IsBlank(std::string_view line) {
  for (char c : line) {
    if (c != ' ' && c != '\t' && c != '\r' && c != '\n') return false;
  }
  return true;
}

// A CSV field as a cell: the pandas missing markers, else a number when strtod reads the
// whole field (surrounding spaces allowed) to a finite value, else a string.
Cell CsvCell(std::string text) {
  Cell cell;
  static const char* const kMissing[] = {"", "NA", "N/A", "NaN", "nan", "null", "NULL", "None"};
  for (const char* m : kMissing) {
    if (text == m) return cell;
  }
  const char* begin = text.c_str();
  char* end = nullptr;
  errno = 0;
  const double v = std::strtod(begin, &end);
  if (end != begin && errno != ERANGE && std::isfinite(v)) {
    while (*end == ' ' || *end == '\t') ++end;
    // strtod also reads hex floats and "inf"; only decimal numbers count.
    bool decimal = true;
    for (const char* p = begin; p < end; ++p) {
      if (*p == 'x' || *p == 'X' || *p == 'n' || *p == 'N' || *p == 'i' || *p == 'I') {
        decimal = false;
      }
    }
    if (*end == '\0' && decimal) {
      cell.kind = Cell::Kind::kNumber;
      cell.number = v;
    }
  }
  if (cell.kind != Cell::Kind::kNumber) cell.kind = Cell::Kind::kString;
  cell.text = std::move(text);
  return cell;
}

class Builder {
 public:
  Builder(const std::string& name, bool skip) : name_(name), skip_(skip) { table_.name = name; }

  // Records a malformed line: an error (returned) unless skipping.
  Status Bad(size_t line, const std::string& what) {
    std::string message = name_ + ":" + std::to_string(line) + ": " + what;
    if (!skip_) return Status::InvalidArgument(std::move(message));
    ++table_.bad_lines;
    if (table_.bad_line_messages.size() < kMaxMessages) {
      table_.bad_line_messages.push_back(std::move(message));
    }
    return Status::Ok();
  }

  bool Has(const std::string& column) const { return index_.count(column) != 0; }

  size_t Column(const std::string& column) {
    auto it = index_.find(column);
    if (it != index_.end()) return it->second;
    const size_t i = table_.columns.size();
    index_.emplace(column, i);
    table_.columns.push_back(column);
    table_.cells.emplace_back(table_.rows);  // missing in the rows before
    return i;
  }

  void AddRow(std::vector<std::pair<size_t, Cell>> row) {
    for (auto& column : table_.cells) column.emplace_back();
    for (auto& [i, cell] : row) table_.cells[i].back() = std::move(cell);
    ++table_.rows;
  }

  Result<Table> Finish() {
    if (table_.rows == 0) return Status::InvalidArgument(name_ + ": no rows");
    return std::move(table_);
  }

  Table& table() { return table_; }
  const std::string& name() const { return name_; }

 private:
  std::string name_;
  bool skip_;
  Table table_;
  std::map<std::string, size_t> index_;
};

Result<Table> ParseJsonl(std::string_view bytes, const std::string& name, bool skip) {
  Builder b(name, skip);
  size_t line_no = 0;
  size_t pos = 0;
  while (pos < bytes.size()) {
    size_t end = bytes.find('\n', pos);
    if (end == std::string_view::npos) end = bytes.size();
    const std::string_view line = bytes.substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (IsBlank(line)) continue;
    auto parsed = ParseUntrustedJson(line, "the line");
    if (!parsed.ok()) {
      PK_RETURN_IF_ERROR(b.Bad(line_no, parsed.status().message()));
      continue;
    }
    if (!parsed->is_object()) {
      PK_RETURN_IF_ERROR(b.Bad(line_no, "the line is not a JSON object"));
      continue;
    }
    std::vector<std::pair<size_t, Cell>> row;
    std::string bad;
    for (auto it = parsed->begin(); it != parsed->end(); ++it) {
      const nlohmann::json& v = it.value();
      Cell cell;
      if (v.is_null()) {
        // missing
      } else if (v.is_number()) {
        cell.kind = Cell::Kind::kNumber;
        cell.number = v.get<double>();
        cell.text = v.dump();
      } else if (v.is_string()) {
        cell.kind = Cell::Kind::kString;
        cell.text = v.get<std::string>();
      } else if (v.is_boolean()) {
        cell.kind = Cell::Kind::kString;
        cell.text = v.get<bool>() ? "true" : "false";
      } else {
        bad = "the value of \"" + it.key() + "\" is an array or object (columns hold scalars)";
        break;
      }
      if (!b.Has(it.key()) && b.table().columns.size() >= kMaxColumns) {
        return Status::InvalidArgument(name + ":" + std::to_string(line_no) + ": more than " +
                                       std::to_string(kMaxColumns) + " distinct keys");
      }
      row.emplace_back(0, std::move(cell));
      row.back().first = b.Column(it.key());
    }
    if (!bad.empty()) {
      PK_RETURN_IF_ERROR(b.Bad(line_no, bad));
      continue;
    }
    b.AddRow(std::move(row));
  }
  return b.Finish();
}

// One CSV record starting at `pos`: its fields, or what is wrong with it. Advances `pos` and
// `line` past the record (and, when it is malformed, past the physical line where the
// problem is, so that skipping resynchronizes on the next line).
struct CsvRecord {
  std::vector<std::string> fields;
  std::string error;
  size_t first_line = 0;
  bool quoted = false;  // some field was quoted: `""` alone is an empty field, not a blank line

  bool Blank() const { return !quoted && fields.size() == 1 && IsBlank(fields[0]); }
};

CsvRecord NextCsvRecord(std::string_view bytes, size_t& pos, size_t& line) {
  CsvRecord r;
  r.first_line = line;
  std::string field;
  bool quoted = false;      // inside a quoted field
  bool was_quoted = false;  // the current field was quoted and has been closed
  auto skip_rest_of_line = [&] {
    while (pos < bytes.size() && bytes[pos] != '\n') ++pos;
    if (pos < bytes.size()) ++pos, ++line;
  };
  while (pos < bytes.size()) {
    const char c = bytes[pos];
    if (quoted) {
      ++pos;
      if (c == '"') {
        if (pos < bytes.size() && bytes[pos] == '"') {
          field.push_back('"');
          ++pos;
        } else {
          quoted = false;
          was_quoted = true;
        }
      } else {
        if (c == '\n') ++line;
        field.push_back(c);
      }
      continue;
    }
    if (c == ',') {
      r.fields.push_back(std::move(field));
      field.clear();
      was_quoted = false;
      ++pos;
    } else if (c == '\n' || (c == '\r' && pos + 1 < bytes.size() && bytes[pos + 1] == '\n')) {
      pos += c == '\r' ? 2 : 1;
      ++line;
      r.fields.push_back(std::move(field));
      return r;
    } else if (c == '"') {
      if (!field.empty() || was_quoted) {
        r.error = "a quote inside an unquoted field (quote the whole field and double the quote)";
        skip_rest_of_line();
        return r;
      }
      quoted = true;
      r.quoted = true;
      ++pos;
    } else if (was_quoted) {
      r.error = "text after a closing quote";
      skip_rest_of_line();
      return r;
    } else {
      field.push_back(c);
      ++pos;
    }
  }
  if (quoted) {
    r.error = "a quoted field is not closed before the end of the file";
    return r;
  }
  r.fields.push_back(std::move(field));
  return r;
}

Result<Table> ParseCsv(std::string_view bytes, const std::string& name, bool skip) {
  Builder b(name, skip);
  size_t pos = 0;
  size_t line = 1;
  // Header: the first non-blank record; a malformed header is always fatal.
  CsvRecord header;
  do {
    if (pos >= bytes.size()) return Status::InvalidArgument(name + ": no header line");
    header = NextCsvRecord(bytes, pos, line);
  } while (header.error.empty() && header.Blank());
  if (!header.error.empty()) {
    return Status::InvalidArgument(name + ":" + std::to_string(header.first_line) + ": " +
                                   header.error);
  }
  for (const std::string& column : header.fields) {
    if (column.empty()) {
      return Status::InvalidArgument(name + ":" + std::to_string(header.first_line) +
                                     ": the header has an empty column name");
    }
    if (b.Has(column)) {
      return Status::InvalidArgument(name + ":" + std::to_string(header.first_line) +
                                     ": the header names \"" + column + "\" twice");
    }
    b.Column(column);
  }
  const size_t width = header.fields.size();
  if (width > kMaxColumns) {
    return Status::InvalidArgument(name + ":" + std::to_string(header.first_line) + ": more than " +
                                   std::to_string(kMaxColumns) + " columns");
  }
  while (pos < bytes.size()) {
    CsvRecord r = NextCsvRecord(bytes, pos, line);
    if (!r.error.empty()) {
      PK_RETURN_IF_ERROR(b.Bad(r.first_line, r.error));
      continue;
    }
    if (r.Blank()) continue;
    if (r.fields.size() != width) {
      PK_RETURN_IF_ERROR(b.Bad(
          r.first_line,
          std::to_string(r.fields.size()) + " fields, the header has " + std::to_string(width)));
      continue;
    }
    std::vector<std::pair<size_t, Cell>> row;
    for (size_t i = 0; i < width; ++i) {
      std::string& f = r.fields[i];
      if (i + 1 == width && !f.empty() && f.back() == '\r') f.pop_back();
      row.emplace_back(i, CsvCell(std::move(f)));
    }
    b.AddRow(std::move(row));
  }
  return b.Finish();
}

}  // namespace

int Table::Find(std::string_view column) const {
  for (size_t i = 0; i < columns.size(); ++i) {
    if (columns[i] == column) return static_cast<int>(i);
  }
  return -1;
}

Result<Table> ParseTable(std::string_view bytes, const std::string& name,
                         const TableOptions& options) {
  TableFormat format = options.format;
  if (format == TableFormat::kAuto) {
    if (EndsWith(name, ".csv")) {
      format = TableFormat::kCsv;
    } else if (EndsWith(name, ".jsonl") || EndsWith(name, ".ndjson") || EndsWith(name, ".json")) {
      format = TableFormat::kJsonl;
    } else {
      size_t i = 0;
      while (i < bytes.size() &&
             (bytes[i] == ' ' || bytes[i] == '\t' || bytes[i] == '\r' || bytes[i] == '\n')) {
        ++i;
      }
      format = i < bytes.size() && bytes[i] == '{' ? TableFormat::kJsonl : TableFormat::kCsv;
    }
  }
  if (format == TableFormat::kJsonl) return ParseJsonl(bytes, name, options.skip_bad_lines);
  return ParseCsv(bytes, name, options.skip_bad_lines);
}

Result<Table> ReadTable(const std::string& path, const TableOptions& options) {
  PK_ASSIGN_OR_RETURN(std::string bytes, ReadFile(path));
  return ParseTable(bytes, path, options);
}

}  // namespace pocket::eval
