// libFuzzer target over the drift data reader (eval/table.h) and, on what it reads, the drift
// computation. The input is parsed as CSV and as JSONL, failing and skipping bad lines. What
// parses must be rectangular (every column holds `rows` cells), a skipping parse must keep
// at least the rows a failing parse keeps, and a table compared with itself must never show
// dataset drift (every test gives p = 1 or distance 0 for identical samples). Never aborts
// otherwise. Seeds: testdata/fuzz/table_fuzz/.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "eval/drift.h"
#include "eval/table.h"

namespace {

void CheckShape(const pocket::eval::Table& t) {
  if (t.cells.size() != t.columns.size()) std::abort();
  for (const auto& column : t.cells) {
    if (column.size() != t.rows) std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 4096) return 0;  // the exact KS test is quadratic in the sample sizes
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  using pocket::eval::TableFormat;
  for (TableFormat format : {TableFormat::kCsv, TableFormat::kJsonl}) {
    auto strict = pocket::eval::ParseTable(bytes, "fuzz", {format, false});
    auto lenient = pocket::eval::ParseTable(bytes, "fuzz", {format, true});
    if (strict.ok()) {
      CheckShape(*strict);
      if (!lenient.ok() || lenient->rows != strict->rows || lenient->bad_lines != 0) std::abort();
    }
    if (!lenient.ok()) continue;
    CheckShape(*lenient);
    auto report = pocket::eval::ComputeDrift(*lenient, *lenient, {});
    if (report.ok() && report->dataset_drift) std::abort();
  }
  return 0;
}
