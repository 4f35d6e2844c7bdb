// Data drift between a reference and a current table (pocket drift), with Evidently's
// default test selection (evidently/calculations/stattests/registry.py,
// _get_default_stattest) and thresholds, each overridable per column:
//   n_values = distinct non-missing values in reference and current together
//   reference rows (non-missing) <= 1000:
//     numerical, n_values > 5          -> Kolmogorov-Smirnov p-value      (drift: p < 0.05)
//     numerical n_values <= 5, or categorical:
//                 n_values > 2         -> chi-squared p-value             (drift: p < 0.05)
//                 n_values <= 2        -> two-proportion Z-test p-value   (drift: p < 0.05)
//   reference rows > 1000:
//     numerical, n_values > 5          -> Wasserstein distance / std(reference)  (>= 0.1)
//     otherwise                        -> Jensen-Shannon distance, base 2       (>= 0.1)
//   PSI (>= 0.1) only on request. Dataset drift: drifted columns / columns >= 0.5.
// A column is numerical when every non-missing cell in both files is a number, else
// categorical; text columns (named in DriftOptions::text_columns) are compared through
// derived numerical features COLUMN:chars (UTF-8 code points), COLUMN:words (whitespace-
// separated words) and, with a token counter, COLUMN:tokens; each counts as one column.
// Missing cells are counted and left out of every statistic. Callers: src/cli/drift.cc.
// Thread safety: pure functions (token_count is called from the calling thread only).
#pragma once

#include <cstddef>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "eval/table.h"

namespace pocket::eval {

enum class DriftTest { kAuto, kKs, kChiSquare, kZ, kWasserstein, kJensenShannon, kPsi };

// "ks", "chisquare", "z", "wasserstein", "jensenshannon", "psi" ("auto" for kAuto).
std::string_view DriftTestName(DriftTest test);
// Inverse of DriftTestName for the six tests; InvalidArgument naming the choices.
Result<DriftTest> ParseDriftTest(std::string_view name);
// Distances drift when statistic >= threshold; p-value tests when p < threshold.
bool IsDistance(DriftTest test);
// 0.05 for ks, chisquare and z; 0.1 for wasserstein, jensenshannon and psi.
double DefaultThreshold(DriftTest test);

enum class ColumnKind { kNumerical, kCategorical, kText };
std::string_view ColumnKindName(ColumnKind kind);

struct DriftOptions {
  std::vector<std::string> columns;       // empty: every column (both files must have the same)
  std::vector<std::string> text_columns;  // compared by derived features
  // Per column (a text feature by its COLUMN:feature name, or its text column for all of its
  // features): the test and the threshold instead of the defaults.
  std::map<std::string, DriftTest> tests;
  std::map<std::string, double> thresholds;
  double drift_share = 0.5;
  // Tokens in a text cell (COLUMN:tokens); empty: no token feature.
  std::function<Result<size_t>(std::string_view)> token_count;
};

struct ColumnDrift {
  std::string column;
  ColumnKind kind = ColumnKind::kNumerical;  // of the compared values (text features: numerical)
  DriftTest test = DriftTest::kKs;
  bool chosen_by_default = true;
  double statistic = 0;  // KS D, chi-squared, z, or the distance
  double p_value = 0;    // NaN for distances
  double threshold = 0;
  bool drifted = false;
  size_t reference_values = 0, current_values = 0;  // non-missing
  size_t reference_missing = 0, current_missing = 0;
  size_t distinct_values = 0;  // n_values of the selection
  std::string method;  // KS: "exact" or "asymptotic"; binned tests: "sturges bins" or "values"
};

struct DriftReport {
  std::string reference, current;  // file names
  std::vector<ColumnDrift> columns;
  size_t drifted_columns = 0;
  double drifted_share = 0;
  double drift_share = 0.5;
  bool dataset_drift = false;
  size_t reference_rows = 0, current_rows = 0;
  size_t reference_bad_lines = 0, current_bad_lines = 0;
};

// Compares every selected column. InvalidArgument naming the column for: a column named in
// options that is in neither file or in only one, a column in only one file when no columns
// are named, a column with no values in one file, ks/wasserstein asked of a categorical
// column, a threshold or test for a column not compared, a text column not among the compared
// columns; the token counter's error as it comes.
Result<DriftReport> ComputeDrift(const Table& reference, const Table& current,
                                 const DriftOptions& options);

// The report as one JSON object (what `pocket drift --json` prints): the fields above,
// p_value null for distances.
std::string DriftReportJson(const DriftReport& report);

}  // namespace pocket::eval
