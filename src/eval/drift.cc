// Drift per column and for the dataset (drift.h): turns table cells into samples (numbers,
// category counts, text features), picks each column's test the way Evidently does and
// applies it through drift_stats.h. What each test feeds SciPy in Evidently is reproduced:
// chi-squared compares current counts with reference counts scaled to the current size;
// Jensen-Shannon and PSI compare shares per Sturges bin (numerical with more than 20
// distinct reference values) or per value.
#include "eval/drift.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>

#include "base/utf8.h"
#include "eval/drift_stats.h"

namespace pocket::eval {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// One compared column's non-missing values: numbers when numerical, else category keys.
struct Sample {
  std::vector<double> numbers;
  std::vector<std::string> keys;
  size_t missing = 0;
};

std::string NumberKey(double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.17g", v == 0 ? 0.0 : v);  // -0 and 0 are one value
  return buf;
}

bool AllNumbers(const std::vector<Cell>& cells) {
  for (const Cell& c : cells) {
    if (c.kind == Cell::Kind::kString) return false;
  }
  return true;
}

Sample ToSample(const std::vector<Cell>& cells, bool numerical) {
  Sample s;
  for (const Cell& c : cells) {
    if (c.kind == Cell::Kind::kMissing) {
      ++s.missing;
    } else if (numerical) {
      s.numbers.push_back(c.number);
      s.keys.push_back(NumberKey(c.number));
    } else {
      s.keys.push_back(c.text);
    }
  }
  return s;
}

size_t Utf8Length(std::string_view s) {
  size_t n = 0;
  for (size_t i = 0; i < s.size(); ++n) i += DecodeUtf8Step(s, i).length;
  return n;
}

size_t WordCount(std::string_view s) {  // Python's str.split(): runs of ASCII whitespace
  size_t n = 0;
  bool in_word = false;
  for (char c : s) {
    const bool space = c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
    if (!space && !in_word) ++n;
    in_word = !space;
  }
  return n;
}

std::map<std::string, int64_t> Counts(const std::vector<std::string>& keys) {
  std::map<std::string, int64_t> counts;
  for (const std::string& k : keys) ++counts[k];
  return counts;
}

// Shares per value over the union of values (Evidently's get_binned_data, categorical path).
void ValueShares(const Sample& ref, const Sample& cur, std::vector<double>& ref_shares,
                 std::vector<double>& cur_shares) {
  auto rc = Counts(ref.keys), cc = Counts(cur.keys);
  std::set<std::string> keys;
  for (auto& [k, n] : rc) keys.insert(k);
  for (auto& [k, n] : cc) keys.insert(k);
  for (const std::string& k : keys) {
    ref_shares.push_back(static_cast<double>(rc.count(k) ? rc[k] : 0) /
                         static_cast<double>(ref.keys.size()));
    cur_shares.push_back(static_cast<double>(cc.count(k) ? cc[k] : 0) /
                         static_cast<double>(cur.keys.size()));
  }
}

// Evidently's get_binned_data: Sturges bins over both samples when the column is numerical
// with more than 20 distinct reference values, else one bin per value.
std::string BinnedShares(const Sample& ref, const Sample& cur, bool numerical,
                         std::vector<double>& ref_shares, std::vector<double>& cur_shares) {
  const size_t ref_distinct = Counts(ref.keys).size();
  if (numerical && ref_distinct > 20) {
    const std::vector<double> edges = SturgesEdges(ref.numbers, cur.numbers);
    for (int64_t c : Histogram(ref.numbers, edges)) {
      ref_shares.push_back(static_cast<double>(c) / static_cast<double>(ref.numbers.size()));
    }
    for (int64_t c : Histogram(cur.numbers, edges)) {
      cur_shares.push_back(static_cast<double>(c) / static_cast<double>(cur.numbers.size()));
    }
    return "sturges bins";
  }
  ValueShares(ref, cur, ref_shares, cur_shares);
  return "values";
}

void RunTest(const Sample& ref, const Sample& cur, bool numerical, ColumnDrift& out) {
  out.p_value = kNaN;
  switch (out.test) {
    case DriftTest::kKs: {
      const KsResult ks = KsTwoSample(ref.numbers, cur.numbers);
      out.statistic = ks.statistic;
      out.p_value = ks.p_value;
      out.method = ks.exact ? "exact" : "asymptotic";
      break;
    }
    case DriftTest::kChiSquare: {
      auto rc = Counts(ref.keys), cc = Counts(cur.keys);
      std::set<std::string> keys;
      for (auto& [k, n] : rc) keys.insert(k);
      for (auto& [k, n] : cc) keys.insert(k);
      if (keys.size() < 2) {  // one category in both: nothing can differ (SciPy: NaN)
        out.statistic = 0;
        out.p_value = 1;
        break;
      }
      const double k_norm =
          static_cast<double>(cur.keys.size()) / static_cast<double>(ref.keys.size());
      std::vector<double> observed, expected;
      for (const std::string& k : keys) {
        expected.push_back(static_cast<double>(rc.count(k) ? rc[k] : 0) * k_norm);
        observed.push_back(static_cast<double>(cc.count(k) ? cc[k] : 0));
      }
      const TestValue v = ChiSquare(observed, expected);
      out.statistic = v.statistic;
      out.p_value = v.p_value;
      break;
    }
    case DriftTest::kZ: {
      // Evidently's z test: the first value in sorted order against all the others (the
      // p-value does not depend on which value is first when there are two).
      std::set<std::string> keys(ref.keys.begin(), ref.keys.end());
      keys.insert(cur.keys.begin(), cur.keys.end());
      const std::string& first = *keys.begin();
      auto ones = [&](const std::vector<std::string>& v) {
        return static_cast<int64_t>(
            std::count_if(v.begin(), v.end(), [&](const std::string& k) { return k != first; }));
      };
      const TestValue v = TwoProportionZ(ones(ref.keys), static_cast<int64_t>(ref.keys.size()),
                                         ones(cur.keys), static_cast<int64_t>(cur.keys.size()));
      out.statistic = v.statistic;
      out.p_value = v.p_value;
      break;
    }
    case DriftTest::kWasserstein: {
      // Normed by the reference's standard deviation, at least 0.001 (Evidently).
      const double norm = std::max(StdDev(ref.numbers), 0.001);
      out.statistic = Wasserstein(ref.numbers, cur.numbers) / norm;
      break;
    }
    case DriftTest::kJensenShannon: {
      std::vector<double> r, c;
      out.method = BinnedShares(ref, cur, numerical, r, c);
      out.statistic = JensenShannon(r, c, 2.0);
      break;
    }
    case DriftTest::kPsi: {
      std::vector<double> r, c;
      out.method = BinnedShares(ref, cur, numerical, r, c);
      FillZeroShares(r);
      FillZeroShares(c);
      out.statistic = Psi(r, c);
      break;
    }
    case DriftTest::kAuto:
      break;
  }
  if (IsDistance(out.test)) {
    out.drifted = out.statistic >= out.threshold;
  } else {
    out.drifted = out.p_value < out.threshold;
  }
}

DriftTest DefaultTest(size_t reference_values, size_t n_values, bool numerical) {
  if (reference_values <= 1000) {
    if (numerical && n_values > 5) return DriftTest::kKs;
    return n_values > 2 ? DriftTest::kChiSquare : DriftTest::kZ;
  }
  if (numerical && n_values > 5) return DriftTest::kWasserstein;
  return DriftTest::kJensenShannon;
}

template <typename T>
const T* Lookup(const std::map<std::string, T>& m, const std::string& feature,
                const std::string& column) {
  if (auto it = m.find(feature); it != m.end()) return &it->second;
  if (auto it = m.find(column); it != m.end()) return &it->second;
  return nullptr;
}

Status CompareSamples(const std::string& name, const std::string& base, ColumnKind kind,
                      const Sample& ref, const Sample& cur, const Table& reference,
                      const Table& current, const DriftOptions& options, ColumnDrift& out) {
  out.column = name;
  out.kind = kind;
  const bool numerical = kind == ColumnKind::kNumerical;
  out.reference_values = ref.keys.size();
  out.current_values = cur.keys.size();
  out.reference_missing = ref.missing;
  out.current_missing = cur.missing;
  if (ref.keys.empty()) {
    return Status::InvalidArgument("column '" + name + "' has no values in " + reference.name);
  }
  if (cur.keys.empty()) {
    return Status::InvalidArgument("column '" + name + "' has no values in " + current.name);
  }
  std::set<std::string> distinct(ref.keys.begin(), ref.keys.end());
  distinct.insert(cur.keys.begin(), cur.keys.end());
  out.distinct_values = distinct.size();
  if (const DriftTest* t = Lookup(options.tests, name, base); t && *t != DriftTest::kAuto) {
    out.test = *t;
    out.chosen_by_default = false;
    if (!numerical && (out.test == DriftTest::kKs || out.test == DriftTest::kWasserstein)) {
      return Status::InvalidArgument("column '" + name + "' is categorical; " +
                                     std::string(DriftTestName(out.test)) +
                                     " needs numbers (use chisquare, z, jensenshannon or psi)");
    }
  } else {
    out.test = DefaultTest(ref.keys.size(), distinct.size(), numerical);
  }
  const double* threshold = Lookup(options.thresholds, name, base);
  out.threshold = threshold ? *threshold : DefaultThreshold(out.test);
  RunTest(ref, cur, numerical, out);
  return Status::Ok();
}

}  // namespace

std::string_view DriftTestName(DriftTest test) {
  switch (test) {
    case DriftTest::kAuto:
      return "auto";
    case DriftTest::kKs:
      return "ks";
    case DriftTest::kChiSquare:
      return "chisquare";
    case DriftTest::kZ:
      return "z";
    case DriftTest::kWasserstein:
      return "wasserstein";
    case DriftTest::kJensenShannon:
      return "jensenshannon";
    case DriftTest::kPsi:
      return "psi";
  }
  return "?";
}

Result<DriftTest> ParseDriftTest(std::string_view name) {
  for (DriftTest t : {DriftTest::kKs, DriftTest::kChiSquare, DriftTest::kZ, DriftTest::kWasserstein,
                      DriftTest::kJensenShannon, DriftTest::kPsi}) {
    if (DriftTestName(t) == name) return t;
  }
  return Status::InvalidArgument("unknown test '" + std::string(name) +
                                 "' (tests: ks, chisquare, z, wasserstein, jensenshannon, psi)");
}

bool IsDistance(DriftTest test) {
  return test == DriftTest::kWasserstein || test == DriftTest::kJensenShannon ||
         test == DriftTest::kPsi;
}

double DefaultThreshold(DriftTest test) { return IsDistance(test) ? 0.1 : 0.05; }

std::string_view ColumnKindName(ColumnKind kind) {
  switch (kind) {
    case ColumnKind::kNumerical:
      return "numerical";
    case ColumnKind::kCategorical:
      return "categorical";
    case ColumnKind::kText:
      return "text";
  }
  return "?";
}

Result<DriftReport> ComputeDrift(const Table& reference, const Table& current,
                                 const DriftOptions& options) {
  DriftReport report;
  report.reference = reference.name;
  report.current = current.name;
  report.reference_rows = reference.rows;
  report.current_rows = current.rows;
  report.reference_bad_lines = reference.bad_lines;
  report.current_bad_lines = current.bad_lines;
  report.drift_share = options.drift_share;

  std::vector<std::string> columns = options.columns;
  if (columns.empty()) {
    for (const std::string& c : reference.columns) {
      if (current.Find(c) < 0) {
        return Status::InvalidArgument("column '" + c + "' is in " + reference.name +
                                       " but not in " + current.name +
                                       " (name the columns to compare with --columns)");
      }
      columns.push_back(c);
    }
    for (const std::string& c : current.columns) {
      if (reference.Find(c) < 0) {
        return Status::InvalidArgument("column '" + c + "' is in " + current.name + " but not in " +
                                       reference.name +
                                       " (name the columns to compare with --columns)");
      }
    }
  } else {
    for (const std::string& c : columns) {
      if (reference.Find(c) < 0) {
        return Status::InvalidArgument("column '" + c + "' is not in " + reference.name);
      }
      if (current.Find(c) < 0) {
        return Status::InvalidArgument("column '" + c + "' is not in " + current.name);
      }
    }
  }
  std::set<std::string> text(options.text_columns.begin(), options.text_columns.end());
  for (const std::string& t : text) {
    if (std::find(columns.begin(), columns.end(), t) == columns.end()) {
      return Status::InvalidArgument("text column '" + t + "' is not among the compared columns");
    }
  }

  std::set<std::string> compared;
  for (const std::string& c : columns) {
    const auto& ref_cells = reference.cells[static_cast<size_t>(reference.Find(c))];
    const auto& cur_cells = current.cells[static_cast<size_t>(current.Find(c))];
    if (text.count(c)) {
      struct Feature {
        std::string suffix;
        std::function<Result<double>(std::string_view)> f;
      };
      std::vector<Feature> features = {
          {"chars",
           [](std::string_view s) -> Result<double> { return static_cast<double>(Utf8Length(s)); }},
          {"words",
           [](std::string_view s) -> Result<double> { return static_cast<double>(WordCount(s)); }}};
      if (options.token_count) {
        features.push_back({"tokens", [&](std::string_view s) -> Result<double> {
                              PK_ASSIGN_OR_RETURN(size_t n, options.token_count(s));
                              return static_cast<double>(n);
                            }});
      }
      for (const Feature& feature : features) {
        Sample ref, cur;
        for (auto [cells, sample] : {std::pair{&ref_cells, &ref}, std::pair{&cur_cells, &cur}}) {
          for (const Cell& cell : *cells) {
            if (cell.kind == Cell::Kind::kMissing) {
              ++sample->missing;
              continue;
            }
            PK_ASSIGN_OR_RETURN(double v, feature.f(cell.text));
            sample->numbers.push_back(v);
            sample->keys.push_back(NumberKey(v));
          }
        }
        ColumnDrift d;
        PK_RETURN_IF_ERROR(CompareSamples(c + ":" + feature.suffix, c, ColumnKind::kNumerical, ref,
                                          cur, reference, current, options, d));
        compared.insert(d.column);
        report.columns.push_back(std::move(d));
      }
      compared.insert(c);
      continue;
    }
    const bool numerical = AllNumbers(ref_cells) && AllNumbers(cur_cells);
    ColumnDrift d;
    PK_RETURN_IF_ERROR(
        CompareSamples(c, c, numerical ? ColumnKind::kNumerical : ColumnKind::kCategorical,
                       ToSample(ref_cells, numerical), ToSample(cur_cells, numerical), reference,
                       current, options, d));
    compared.insert(c);
    report.columns.push_back(std::move(d));
  }
  for (const auto& [name, test] : options.tests) {
    if (!compared.count(name)) {
      return Status::InvalidArgument("--test names column '" + name + "', which is not compared");
    }
  }
  for (const auto& [name, threshold] : options.thresholds) {
    if (!compared.count(name)) {
      return Status::InvalidArgument("--threshold names column '" + name +
                                     "', which is not compared");
    }
  }
  for (const ColumnDrift& d : report.columns) report.drifted_columns += d.drifted ? 1 : 0;
  report.drifted_share = report.columns.empty() ? 0.0
                                                : static_cast<double>(report.drifted_columns) /
                                                      static_cast<double>(report.columns.size());
  report.dataset_drift = !report.columns.empty() && report.drifted_share >= report.drift_share;
  return report;
}

std::string DriftReportJson(const DriftReport& report) {
  nlohmann::ordered_json j;
  j["reference"] = report.reference;
  j["current"] = report.current;
  j["reference_rows"] = report.reference_rows;
  j["current_rows"] = report.current_rows;
  j["reference_bad_lines"] = report.reference_bad_lines;
  j["current_bad_lines"] = report.current_bad_lines;
  nlohmann::ordered_json columns = nlohmann::ordered_json::array();
  for (const ColumnDrift& d : report.columns) {
    nlohmann::ordered_json c;
    c["column"] = d.column;
    c["kind"] = ColumnKindName(d.kind);
    c["test"] = DriftTestName(d.test);
    c["default_test"] = d.chosen_by_default;
    c["statistic"] = d.statistic;
    if (std::isnan(d.p_value)) {
      c["p_value"] = nullptr;
    } else {
      c["p_value"] = d.p_value;
    }
    c["threshold"] = d.threshold;
    c["drifted"] = d.drifted;
    c["reference_values"] = d.reference_values;
    c["current_values"] = d.current_values;
    c["reference_missing"] = d.reference_missing;
    c["current_missing"] = d.current_missing;
    c["distinct_values"] = d.distinct_values;
    if (!d.method.empty()) c["method"] = d.method;
    columns.push_back(std::move(c));
  }
  j["columns"] = std::move(columns);
  j["drifted_columns"] = report.drifted_columns;
  j["drifted_share"] = report.drifted_share;
  j["drift_share"] = report.drift_share;
  j["dataset_drift"] = report.dataset_drift;
  return j.dump(2);
}

}  // namespace pocket::eval
