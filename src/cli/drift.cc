// `pocket drift REFERENCE CURRENT`: data drift per column and for the dataset between two
// JSONL/CSV files (eval::ComputeDrift), printed as a table or, with --json, as one JSON
// object. Exit 0: no dataset drift; 1: dataset drift; 2: bad input or usage.
#include "eval/drift.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <memory>

#include "cli/command.h"
#include "cli/model_flags.h"
#include "eval/table.h"
#include "formats/gguf.h"
#include "registry/resolve.h"
#include "tokenizer/tokenizer.h"

namespace pocket::cli {
namespace {

constexpr int kExitDrift = 1;
constexpr int kExitBadInput = 2;

struct DriftFlags {
  std::string reference, current;
  std::vector<std::string> columns, text, tests, thresholds;
  std::string model;
  double drift_share = 0.5;
  bool json = false;
  bool skip_bad_lines = false;
};

int BadInput(const Status& status) {
  std::fprintf(stderr, "pocket drift: %s\n", status.message().c_str());
  return kExitBadInput;
}

// "COLUMN=VALUE" split at the last '=' (a column name may hold '=').
Status SplitAssignment(const std::string& flag, const std::string& arg, std::string* column,
                       std::string* value) {
  const size_t eq = arg.rfind('=');
  if (eq == std::string::npos || eq == 0 || eq + 1 == arg.size()) {
    return Status::InvalidArgument(flag + ": '" + arg + "' is not COLUMN=VALUE");
  }
  *column = arg.substr(0, eq);
  *value = arg.substr(eq + 1);
  return Status::Ok();
}

Status FillOptions(const DriftFlags& f, eval::DriftOptions* options) {
  options->columns = f.columns;
  options->text_columns = f.text;
  options->drift_share = f.drift_share;
  for (const std::string& arg : f.tests) {
    std::string column, name;
    PK_RETURN_IF_ERROR(SplitAssignment("--test", arg, &column, &name));
    auto test = eval::ParseDriftTest(name);
    if (!test.ok()) return test.status().WithContext("--test " + arg);
    options->tests[column] = *test;
  }
  for (const std::string& arg : f.thresholds) {
    std::string column, value;
    PK_RETURN_IF_ERROR(SplitAssignment("--threshold", arg, &column, &value));
    char* end = nullptr;
    const double x = std::strtod(value.c_str(), &end);
    if (end == value.c_str() || *end != '\0' || !(x >= 0)) {
      return Status::InvalidArgument("--threshold " + arg + ": '" + value +
                                     "' is not a number >= 0");
    }
    options->thresholds[column] = x;
  }
  return Status::Ok();
}

std::string Num(double x) {
  if (std::isnan(x)) return "-";
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.4g", x);
  return buf;
}

void PrintTable(const eval::DriftReport& r) {
  std::printf("reference: %s (%zu rows)\ncurrent:   %s (%zu rows)\n\n", r.reference.c_str(),
              r.reference_rows, r.current.c_str(), r.current_rows);
  size_t width = 6;
  for (const auto& c : r.columns) width = std::max(width, c.column.size());
  const int w = static_cast<int>(width);
  std::printf("%-*s  %-11s  %-13s  %10s  %10s  %9s  %-7s  %s\n", w, "column", "kind", "test",
              "statistic", "p-value", "threshold", "drifted", "values ref/cur (missing)");
  for (const auto& c : r.columns) {
    std::string test(eval::DriftTestName(c.test));
    if (!c.chosen_by_default) test += "*";
    std::printf("%-*s  %-11s  %-13s  %10s  %10s  %9s  %-7s  %zu/%zu (%zu/%zu)\n", w,
                c.column.c_str(), std::string(eval::ColumnKindName(c.kind)).c_str(), test.c_str(),
                Num(c.statistic).c_str(), Num(c.p_value).c_str(), Num(c.threshold).c_str(),
                c.drifted ? "yes" : "no", c.reference_values, c.current_values, c.reference_missing,
                c.current_missing);
  }
  bool any_override = false;
  for (const auto& c : r.columns) any_override |= !c.chosen_by_default;
  if (any_override) std::printf("* test set with --test\n");
  std::printf("\ndataset drift: %s (%zu of %zu columns drifted, share %.3g %s %.3g)\n",
              r.dataset_drift ? "yes" : "no", r.drifted_columns, r.columns.size(), r.drifted_share,
              r.dataset_drift ? ">=" : "<", r.drift_share);
}

int DriftMain(const DriftFlags& f) {
  eval::DriftOptions options;
  if (Status s = FillOptions(f, &options); !s.ok()) return BadInput(s);
  std::shared_ptr<tokenizer::Tokenizer> tok;
  if (!f.model.empty()) {
    if (f.text.empty()) {
      return BadInput(
          Status::InvalidArgument("--model counts tokens of --text columns; name "
                                  "one with --text"));
    }
    auto path = registry::ResolveModelPath(f.model);
    if (!path.ok()) return BadInput(path.status());
    auto gguf = formats::GgufFile::Open(*path);
    if (!gguf.ok()) return BadInput(gguf.status());
    auto t = tokenizer::Tokenizer::FromGguf(*gguf);
    if (!t.ok()) return BadInput(t.status().WithContext(*path));
    tok = std::make_shared<tokenizer::Tokenizer>(std::move(*t));
    options.token_count = [tok](std::string_view text) -> Result<size_t> {
      return tok->Encode(text, /*add_special=*/false, /*parse_special=*/false).size();
    };
  }
  const eval::TableOptions read{eval::TableFormat::kAuto, f.skip_bad_lines};
  auto reference = eval::ReadTable(f.reference, read);
  if (!reference.ok()) return BadInput(reference.status());
  auto current = eval::ReadTable(f.current, read);
  if (!current.ok()) return BadInput(current.status());
  for (const eval::Table* t : {&*reference, &*current}) {
    if (t->bad_lines == 0) continue;
    std::fprintf(stderr, "pocket drift: skipped %zu malformed line(s) in %s\n", t->bad_lines,
                 t->name.c_str());
    for (const std::string& m : t->bad_line_messages) std::fprintf(stderr, "  %s\n", m.c_str());
    if (t->bad_lines > t->bad_line_messages.size()) {
      std::fprintf(stderr, "  ... and %zu more\n", t->bad_lines - t->bad_line_messages.size());
    }
  }
  auto report = eval::ComputeDrift(*reference, *current, options);
  if (!report.ok()) return BadInput(report.status());
  if (f.json) {
    std::printf("%s\n", eval::DriftReportJson(*report).c_str());
  } else {
    PrintTable(*report);
  }
  return report->dataset_drift ? kExitDrift : 0;
}

CommandMain Configure(CLI::App& app) {
  auto f = std::make_shared<DriftFlags>();
  app.description(
      "Compare the columns of CURRENT with those of REFERENCE (JSONL, one object per line, or "
      "CSV with a header) and say which columns drifted, with Evidently's default tests: for "
      "a reference of at most 1000 values, Kolmogorov-Smirnov (numerical, more than 5 "
      "distinct values), chi-squared (categorical or few values) or a two-proportion Z-test "
      "(two values), drifted when p < 0.05; for larger references, Wasserstein distance "
      "normed by the reference's standard deviation (numerical) or Jensen-Shannon distance "
      "(categorical), drifted when >= 0.1. PSI on request. The dataset drifted when at least "
      "--drift-share of the columns did. Missing values (empty, NA, null, ...) are counted "
      "and skipped. Text columns (--text) are compared by length in characters, words and, "
      "with --model, tokens. Exit status: 0 no dataset drift, 1 dataset drift, 2 bad input "
      "(unreadable or malformed file, unknown column, bad flag). See docs/eval.md.");
  SetExamples(app, {"pocket drift ref.csv cur.csv",
                    "pocket drift ref.jsonl cur.jsonl --columns age,plan --json",
                    "pocket drift ref.csv cur.csv --test age=psi --threshold age=0.2",
                    "pocket drift ref.jsonl cur.jsonl --text review -m model.gguf  # + tokens",
                    "pocket drift ref.csv cur.csv --skip-bad-lines  # count bad lines, go on"});
  app.add_option("REFERENCE", f->reference, "the reference data (JSONL or CSV)")->required();
  app.add_option("CURRENT", f->current, "the current data (JSONL or CSV)")->required();
  app.add_option("--columns", f->columns,
                 "compare only these columns (comma-separated; default: all, which both files "
                 "must have)")
      ->delimiter(',');
  app.add_option("--text", f->text,
                 "text columns, compared by COLUMN:chars, COLUMN:words (and COLUMN:tokens with "
                 "--model) instead of as categories (comma-separated)")
      ->delimiter(',');
  app.add_option("--test", f->tests,
                 "COLUMN=TEST: the test for a column instead of the default; TEST is ks, "
                 "chisquare, z, wasserstein, jensenshannon or psi (repeatable)");
  app.add_option("--threshold", f->thresholds,
                 "COLUMN=X: the column's threshold (p-value tests drift when p < X, default "
                 "0.05; distances when >= X, default 0.1) (repeatable)");
  app.add_option("--drift-share", f->drift_share,
                 "the share of drifted columns at which the dataset drifted")
      ->check(InRange(0, 1));
  app.add_option("-m,--model", f->model,
                 "a GGUF model (path or NAME[:TAG] in the store) whose tokenizer counts the "
                 "tokens of --text columns");
  app.add_flag("--json", f->json, "print the report as one JSON object");
  app.add_flag("--skip-bad-lines", f->skip_bad_lines,
               "skip malformed lines (counted, and listed on stderr) instead of failing");
  return [f] { return DriftMain(*f); };
}

POCKET_COMMAND(drift, "drift", "compare two datasets column by column for data drift", Configure);

}  // namespace
}  // namespace pocket::cli
