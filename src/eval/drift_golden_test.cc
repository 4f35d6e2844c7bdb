// Pocket's drift statistics against SciPy 1.10 on the golden cases in
// testdata/eval/drift_golden.json, which tests/golden/eval/make_drift_golden.py wrote by
// running Debian's python3-scipy 1.10.1 / numpy 1.24.2 on seeded samples (the script says
// how each number was computed; SciPy is not needed to run this test). Tolerance: 1e-9
// relative (absolute below 1e-300): NumPy sums pairwise and BLAS multiplies matrices in
// blocks where this code loops, and the Kolmogorov and chi-squared tails go through
// different special-function code, so the last few digits may differ; any real
// disagreement (a wrong branch, an off-by-one in a count) is far larger.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "eval/drift.h"
#include "eval/drift_stats.h"

namespace pocket::eval {
namespace {

using nlohmann::json;

json Golden() {
  std::ifstream in(std::string(POCKET_SOURCE_DIR) + "/testdata/eval/drift_golden.json");
  std::stringstream ss;
  ss << in.rdbuf();
  return json::parse(ss.str());
}

void ExpectNear(double expected, double actual, const std::string& what) {
  const double tol = std::max(1e-300, 1e-9 * std::abs(expected));
  EXPECT_NEAR(actual, expected, tol) << what;
}

// A case's sample: stored values under `key`, or [n, mult, shift] under `key`_gen for the
// script's gen(): (i * mult) % 1.0 + shift.
std::vector<double> Numbers(const json& c, const std::string& key) {
  if (c.contains(key)) return c[key].get<std::vector<double>>();
  const json& j = c[key + "_gen"];
  const int64_t n = j[0].get<int64_t>();
  const double mult = j[1].get<double>(), shift = j[2].get<double>();
  std::vector<double> v;
  for (int64_t i = 0; i < n; ++i)
    v.push_back(std::fmod(static_cast<double>(i) * mult, 1.0) + shift);
  return v;
}

// A one-column table named `name` from JSON numbers or strings.
Table OneColumn(const json& values, const std::string& name) {
  Table t;
  t.name = name;
  t.columns = {"x"};
  t.cells.resize(1);
  for (const json& v : values) {
    Cell c;
    if (v.is_number()) {
      c.kind = Cell::Kind::kNumber;
      c.number = v.get<double>();
      c.text = v.dump();
    } else {
      c.kind = Cell::Kind::kString;
      c.text = v.get<std::string>();
    }
    t.cells[0].push_back(c);
  }
  t.rows = t.cells[0].size();
  return t;
}

ColumnDrift DriftWith(const json& c, DriftTest test) {
  DriftOptions options;
  options.tests["x"] = test;
  auto report =
      ComputeDrift(OneColumn(c["reference"], "ref"), OneColumn(c["current"], "cur"), options);
  EXPECT_TRUE(report.ok()) << report.status().ToString();
  if (!report.ok()) return {};
  return report->columns.at(0);
}

TEST(DriftGoldenTest, KolmogorovSmirnovMatchesScipyKs2samp) {
  const json g = Golden();
  int i = 0;
  for (const json& c : g["ks"]) {
    const auto a = Numbers(c, "a");
    const auto b = Numbers(c, "b");
    const KsResult r = KsTwoSample(a, b);
    const std::string what = "ks case " + std::to_string(i++) + " n=" + std::to_string(a.size()) +
                             "," + std::to_string(b.size());
    ExpectNear(c["statistic"].get<double>(), r.statistic, what + " statistic");
    ExpectNear(c["pvalue"].get<double>(), r.p_value, what + " p-value");
    EXPECT_EQ(r.exact, std::max(a.size(), b.size()) <= 10000) << what;
  }
}

TEST(DriftGoldenTest, KolmogorovSfMatchesScipyKstwoInEveryRegion) {
  const json g = Golden();
  for (const json& c : g["kstwo_sf"]) {
    const int64_t n = c["n"].get<int64_t>();
    const double d = c["d"].get<double>();
    ExpectNear(c["sf"].get<double>(), KolmogorovSf(n, d),
               "kstwo.sf n=" + std::to_string(n) + " d=" + std::to_string(d));
  }
}

TEST(DriftGoldenTest, ChiSquareSfMatchesScipyChi2) {
  const json g = Golden();
  for (const json& c : g["chi2_sf"]) {
    ExpectNear(c["sf"].get<double>(), ChiSquareSf(c["x"].get<double>(), c["df"].get<double>()),
               "chi2.sf " + c.dump());
  }
}

TEST(DriftGoldenTest, ChiSquareColumnMatchesScipyChisquareOnScaledReferenceCounts) {
  const json g = Golden();
  for (const json& c : g["chisquare"]) {
    const ColumnDrift d = DriftWith(c, DriftTest::kChiSquare);
    ExpectNear(c["statistic"].get<double>(), d.statistic, "chisquare statistic");
    ExpectNear(c["pvalue"].get<double>(), d.p_value, "chisquare p-value");
  }
}

TEST(DriftGoldenTest, ZTestColumnMatchesTheFormulaWithScipyNormCdf) {
  const json g = Golden();
  for (const json& c : g["z"]) {
    const ColumnDrift d = DriftWith(c, DriftTest::kZ);
    // The sign of z depends on which category counts as one; the p-value does not.
    ExpectNear(std::abs(c["statistic"].get<double>()), std::abs(d.statistic), "z statistic");
    ExpectNear(c["pvalue"].get<double>(), d.p_value, "z p-value");
  }
}

TEST(DriftGoldenTest, WassersteinMatchesScipyAndIsNormedByReferenceStd) {
  const json g = Golden();
  for (const json& c : g["wasserstein"]) {
    const auto u = c["u"].get<std::vector<double>>(), v = c["v"].get<std::vector<double>>();
    ExpectNear(c["distance"].get<double>(), Wasserstein(u, v), "wasserstein");
    json col = {{"reference", c["u"]}, {"current", c["v"]}};
    ExpectNear(c["normed"].get<double>(), DriftWith(col, DriftTest::kWasserstein).statistic,
               "normed wasserstein");
  }
}

TEST(DriftGoldenTest, JensenShannonColumnMatchesScipyOnEvidentlyBins) {
  const json g = Golden();
  for (const json& c : g["jensenshannon"]) {
    const ColumnDrift d = DriftWith(c, DriftTest::kJensenShannon);
    ExpectNear(c["distance"].get<double>(), d.statistic, "jensenshannon " + d.method);
  }
}

TEST(DriftGoldenTest, PsiColumnMatchesEvidentlysFormulaOnTheSameBins) {
  const json g = Golden();
  for (const json& c : g["psi"]) {
    const ColumnDrift d = DriftWith(c, DriftTest::kPsi);
    ExpectNear(c["psi"].get<double>(), d.statistic, "psi " + d.method);
  }
}

}  // namespace
}  // namespace pocket::eval
