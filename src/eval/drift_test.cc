// Unit tests of the drift data reader (table.h) and of column typing, Evidently's default
// test selection, overrides and the dataset verdict (drift.h). The statistics' values are
// checked against SciPy in drift_golden_test.cc.
#include "eval/drift.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "eval/table.h"

namespace pocket::eval {
namespace {

Table Parse(const std::string& bytes, const std::string& name, bool skip = false) {
  auto t = ParseTable(bytes, name, {TableFormat::kAuto, skip});
  EXPECT_TRUE(t.ok()) << t.status().ToString();
  return t.ok() ? *t : Table{};
}

std::string ParseError(const std::string& bytes, const std::string& name) {
  auto t = ParseTable(bytes, name, {});
  EXPECT_FALSE(t.ok());
  return t.ok() ? "" : t.status().message();
}

TEST(TableTest, CsvFollowsRfc4180Quoting) {
  const Table t = Parse(
      "id,comment,score\r\n"
      "1,\"hello, world\",0.5\r\n"
      "2,\"she said \"\"hi\"\"\",1e2\r\n"
      "3,\"two\nlines\",-3\n",
      "a.csv");
  ASSERT_EQ(t.rows, 3u);
  ASSERT_EQ(t.columns, (std::vector<std::string>{"id", "comment", "score"}));
  EXPECT_EQ(t.cells[1][0].text, "hello, world");
  EXPECT_EQ(t.cells[1][1].text, "she said \"hi\"");
  EXPECT_EQ(t.cells[1][2].text, "two\nlines");
  EXPECT_EQ(t.cells[2][1].kind, Cell::Kind::kNumber);
  EXPECT_EQ(t.cells[2][1].number, 100.0);
  EXPECT_EQ(t.cells[2][2].number, -3.0);
  EXPECT_EQ(t.cells[1][0].kind, Cell::Kind::kString);
}

TEST(TableTest, CsvMissingMarkersAreMissingAndOnlyDecimalNumbersAreNumbers) {
  const Table t = Parse("x\n\nNA\n1\nnan\nNULL\n0x10\ninf\n\"\"\n", "m.csv");
  // The blank line is skipped (as pandas does); "" is an empty field, missing.
  ASSERT_EQ(t.rows, 7u);
  EXPECT_EQ(t.cells[0][0].kind, Cell::Kind::kMissing);
  EXPECT_EQ(t.cells[0][1].kind, Cell::Kind::kNumber);
  EXPECT_EQ(t.cells[0][2].kind, Cell::Kind::kMissing);
  EXPECT_EQ(t.cells[0][3].kind, Cell::Kind::kMissing);
  EXPECT_EQ(t.cells[0][4].kind, Cell::Kind::kString);  // 0x10
  EXPECT_EQ(t.cells[0][5].kind, Cell::Kind::kString);  // inf
  EXPECT_EQ(t.cells[0][6].kind, Cell::Kind::kMissing);
}

TEST(TableTest, CsvMalformedLineIsFatalWithFileAndLine) {
  EXPECT_EQ(ParseError("a,b\n1,2\n3\n", "d.csv"), "d.csv:3: 1 fields, the header has 2");
  EXPECT_EQ(ParseError("a,b\n1,2\n3,x\"y\n", "d.csv"),
            "d.csv:3: a quote inside an unquoted field (quote the whole field and double the "
            "quote)");
  EXPECT_EQ(ParseError("a,b\n\"1\nx\",2\n\"3,4\n", "d.csv"),
            "d.csv:4: a quoted field is not closed before the end of the file");
  EXPECT_EQ(ParseError("a,a\n1,2\n", "d.csv"), "d.csv:1: the header names \"a\" twice");
  EXPECT_EQ(ParseError("a,b\n", "d.csv"), "d.csv: no rows");
}

TEST(TableTest, SkipBadLinesDropsAndCountsThem) {
  const Table t = Parse("a,b\n1,2\n3\n4,5\n\"x\"y,6\n7,8\n", "s.csv", /*skip=*/true);
  EXPECT_EQ(t.rows, 3u);
  EXPECT_EQ(t.bad_lines, 2u);
  ASSERT_EQ(t.bad_line_messages.size(), 2u);
  EXPECT_EQ(t.bad_line_messages[0], "s.csv:3: 1 fields, the header has 2");
  EXPECT_EQ(t.bad_line_messages[1], "s.csv:5: text after a closing quote");
  EXPECT_EQ(t.cells[0][2].number, 7.0);
}

TEST(TableTest, JsonlKeysAreColumnsAbsentOrNullIsMissing) {
  const Table t = Parse(
      "{\"a\": 1, \"b\": \"x\"}\n"
      "\n"
      "{\"b\": null, \"c\": true}\n"
      "{\"a\": 2.5}\n",
      "j.jsonl");
  ASSERT_EQ(t.rows, 3u);
  ASSERT_EQ(t.columns, (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(t.cells[0][1].kind, Cell::Kind::kMissing);
  EXPECT_EQ(t.cells[0][2].number, 2.5);
  EXPECT_EQ(t.cells[1][1].kind, Cell::Kind::kMissing);
  EXPECT_EQ(t.cells[2][0].kind, Cell::Kind::kMissing);  // c was not yet seen in row 1
  EXPECT_EQ(t.cells[2][1].text, "true");
}

TEST(TableTest, JsonlMalformedLinesNameFileAndLine) {
  EXPECT_EQ(ParseError("{\"a\":1}\n{\"a\":\n", "j.jsonl").rfind("j.jsonl:2: ", 0), 0u);
  EXPECT_EQ(ParseError("{\"a\":1}\n[1]\n", "j.jsonl"), "j.jsonl:2: the line is not a JSON object");
  EXPECT_EQ(ParseError("{\"a\":[1]}\n", "j.jsonl"),
            "j.jsonl:1: the value of \"a\" is an array or object (columns hold scalars)");
  const Table t = Parse("{\"a\":1}\nnope\n{\"a\":2}\n", "j.jsonl", /*skip=*/true);
  EXPECT_EQ(t.rows, 2u);
  EXPECT_EQ(t.bad_lines, 1u);
}

TEST(TableTest, JsonlWithTooManyDistinctKeysIsRefused) {
  std::string lines;
  for (int i = 0; i <= 1000; ++i) lines += "{\"k" + std::to_string(i) + "\": 1}\n";
  EXPECT_EQ(ParseError(lines, "k.jsonl"), "k.jsonl:1001: more than 1000 distinct keys");
}

TEST(TableTest, FormatIsSniffedWithoutAKnownExtension) {
  EXPECT_EQ(Parse("  {\"a\":1}\n", "data.txt").columns, (std::vector<std::string>{"a"}));
  EXPECT_EQ(Parse("a,b\n1,2\n", "data.txt").columns, (std::vector<std::string>{"a", "b"}));
}

// A table with column `name` holding `values` (numbers when they parse).
std::string Csv(const std::string& name, const std::vector<std::string>& values) {
  std::string s = name + "\n";
  for (const std::string& v : values) s += v + "\n";
  return s;
}

std::vector<std::string> Range(int n, int modulo, int offset = 0) {
  std::vector<std::string> v;
  for (int i = 0; i < n; ++i) v.push_back(std::to_string(i % modulo + offset));
  return v;
}

ColumnDrift One(const std::vector<std::string>& ref, const std::vector<std::string>& cur,
                const DriftOptions& options = {}) {
  auto report = ComputeDrift(Parse(Csv("x", ref), "r.csv"), Parse(Csv("x", cur), "c.csv"), options);
  EXPECT_TRUE(report.ok()) << report.status().ToString();
  return report.ok() ? report->columns.at(0) : ColumnDrift{};
}

TEST(DriftTest, DefaultTestFollowsEvidentlysSelection) {
  // Reference of at most 1000 values.
  EXPECT_EQ(One(Range(100, 6), Range(100, 6)).test, DriftTest::kKs);            // 6 numbers
  EXPECT_EQ(One(Range(100, 5), Range(100, 5)).test, DriftTest::kChiSquare);     // 5 numbers
  EXPECT_EQ(One(Range(100, 2), Range(100, 2)).test, DriftTest::kZ);             // 2 numbers
  EXPECT_EQ(One(Range(100, 2), Range(100, 2, 1)).test, DriftTest::kChiSquare);  // 0,1,2 together
  EXPECT_EQ(One({"a", "b", "a"}, {"b", "b"}).test, DriftTest::kZ);
  EXPECT_EQ(One({"a", "b", "c"}, {"b", "b"}).test, DriftTest::kChiSquare);
  // 1000 is still small; 1001 is large.
  EXPECT_EQ(One(Range(1000, 50), Range(10, 50)).test, DriftTest::kKs);
  EXPECT_EQ(One(Range(1001, 50), Range(10, 50)).test, DriftTest::kWasserstein);
  EXPECT_EQ(One(Range(1001, 5), Range(10, 5)).test, DriftTest::kJensenShannon);
  std::vector<std::string> words;
  for (int i = 0; i < 1001; ++i) words.push_back(i % 2 ? "cat" : "dog");
  EXPECT_EQ(One(words, {"cat"}).test, DriftTest::kJensenShannon);
}

TEST(DriftTest, MissingValuesAreCountedAndSkipped) {
  const ColumnDrift d = One({"1", "None", "2", "NA", "3", "4", "5", "6"}, {"1", "2", "null"});
  EXPECT_EQ(d.reference_values, 6u);
  EXPECT_EQ(d.reference_missing, 2u);
  EXPECT_EQ(d.current_values, 2u);
  EXPECT_EQ(d.current_missing, 1u);
  EXPECT_EQ(d.kind, ColumnKind::kNumerical);
  EXPECT_EQ(d.test, DriftTest::kKs);
}

TEST(DriftTest, PValueTestsDriftBelowThresholdDistancesAtOrAbove) {
  const ColumnDrift same = One(Range(200, 10), Range(200, 10));
  EXPECT_EQ(same.p_value, 1.0);
  EXPECT_FALSE(same.drifted);
  const ColumnDrift shifted = One(Range(200, 10), Range(200, 10, 5));
  EXPECT_LT(shifted.p_value, 0.05);
  EXPECT_TRUE(shifted.drifted);
  DriftOptions options;
  options.tests["x"] = DriftTest::kWasserstein;
  options.thresholds["x"] = 0.0;  // any distance, even 0, is >= 0
  const ColumnDrift w = One(Range(200, 10), Range(200, 10), options);
  EXPECT_EQ(w.statistic, 0.0);
  EXPECT_TRUE(w.drifted);
  EXPECT_FALSE(w.chosen_by_default);
  EXPECT_TRUE(std::isnan(w.p_value));
}

TEST(DriftTest, ChiSquareOfAValueTheReferenceNeverHadIsInfiniteWithPZero) {
  DriftOptions options;
  options.tests["x"] = DriftTest::kChiSquare;
  const ColumnDrift d = One({"a", "b", "a"}, {"a", "c"}, options);
  EXPECT_TRUE(std::isinf(d.statistic));
  EXPECT_EQ(d.p_value, 0.0);
  EXPECT_TRUE(d.drifted);
  const ColumnDrift one = One({"a", "a"}, {"a"}, options);
  EXPECT_EQ(one.p_value, 1.0);  // one value in both files: nothing differs
  EXPECT_FALSE(one.drifted);
}

TEST(DriftTest, JsonReportHasNullPValueForDistances) {
  DriftOptions options;
  options.tests["x"] = DriftTest::kJensenShannon;
  auto report = ComputeDrift(Parse(Csv("x", {"a", "b"}), "r.csv"),
                             Parse(Csv("x", {"a", "a"}), "c.csv"), options);
  ASSERT_TRUE(report.ok());
  const std::string json = DriftReportJson(*report);
  EXPECT_NE(json.find("\"test\": \"jensenshannon\""), std::string::npos) << json;
  EXPECT_NE(json.find("\"p_value\": null"), std::string::npos) << json;
  EXPECT_NE(json.find("\"method\": \"values\""), std::string::npos) << json;
  EXPECT_NE(json.find("\"dataset_drift\": true"), std::string::npos) << json;
}

TEST(DriftTest, DatasetDriftsWhenHalfTheColumnsDrift) {
  const std::string ref = "a,b\n1,5\n2,6\n3,7\n4,8\n5,9\n6,10\n7,11\n8,12\n";
  const std::string cur_half = "a,b\n1,50\n2,60\n3,70\n4,80\n5,90\n6,100\n7,110\n8,120\n";
  auto report = ComputeDrift(Parse(ref, "r.csv"), Parse(cur_half, "c.csv"), {});
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(report->drifted_columns, 1u);
  EXPECT_EQ(report->drifted_share, 0.5);
  EXPECT_TRUE(report->dataset_drift);
  DriftOptions options;
  options.drift_share = 0.6;
  report = ComputeDrift(Parse(ref, "r.csv"), Parse(cur_half, "c.csv"), options);
  ASSERT_TRUE(report.ok());
  EXPECT_FALSE(report->dataset_drift);
}

TEST(DriftTest, BadOverridesAndColumnsAreErrorsNamingTheColumn) {
  const Table ref = Parse("a,b\n1,x\n2,y\n", "r.csv");
  const Table cur = Parse("a,b\n1,x\n3,y\n", "c.csv");
  DriftOptions ks_on_text;
  ks_on_text.tests["b"] = DriftTest::kKs;
  EXPECT_EQ(ComputeDrift(ref, cur, ks_on_text).status().message(),
            "column 'b' is categorical; ks needs numbers (use chisquare, z, jensenshannon or psi)");
  DriftOptions unknown;
  unknown.thresholds["zz"] = 0.2;
  EXPECT_EQ(ComputeDrift(ref, cur, unknown).status().message(),
            "--threshold names column 'zz', which is not compared");
  DriftOptions only_a;
  only_a.columns = {"a"};
  only_a.tests["b"] = DriftTest::kZ;
  EXPECT_EQ(ComputeDrift(ref, cur, only_a).status().message(),
            "--test names column 'b', which is not compared");
  const Table cur_c = Parse("a,c\n1,x\n", "c.csv");
  EXPECT_EQ(ComputeDrift(ref, cur_c, {}).status().message(),
            "column 'b' is in r.csv but not in c.csv (name the columns to compare with --columns)");
  only_a.tests.clear();
  EXPECT_TRUE(ComputeDrift(ref, cur_c, only_a).ok());
  const Table empty_b = Parse("a,b\n1,\n2,NA\n", "c.csv");
  EXPECT_EQ(ComputeDrift(ref, empty_b, {}).status().message(), "column 'b' has no values in c.csv");
  EXPECT_EQ(ParseDriftTest("kolmogorov").status().message(),
            "unknown test 'kolmogorov' (tests: ks, chisquare, z, wasserstein, jensenshannon, psi)");
}

TEST(DriftTest, TextColumnsAreComparedByLengthWordsAndTokens) {
  const Table ref = Parse("t\nhello world\n\"a, b\"\nzzz\nNA\n", "r.csv");
  const Table cur = Parse("t\nhéllo\none two three four\nx\n", "c.csv");
  DriftOptions options;
  options.text_columns = {"t"};
  options.token_count = [](std::string_view s) -> Result<size_t> { return s.size(); };
  options.tests["t"] = DriftTest::kPsi;       // every feature of t
  options.tests["t:words"] = DriftTest::kKs;  // but this one
  auto report = ComputeDrift(ref, cur, options);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  ASSERT_EQ(report->columns.size(), 3u);
  EXPECT_EQ(report->columns[0].column, "t:chars");
  EXPECT_EQ(report->columns[0].test, DriftTest::kPsi);
  EXPECT_EQ(report->columns[0].reference_missing, 1u);
  EXPECT_EQ(report->columns[1].column, "t:words");
  EXPECT_EQ(report->columns[1].test, DriftTest::kKs);
  EXPECT_EQ(report->columns[2].column, "t:tokens");
  EXPECT_EQ(report->columns[0].distinct_values, 6u);  // 11, 4, 3 | 5, 18, 1

  // Length counts code points, not bytes: "é" (2 bytes) and "ab" are both 2 long.
  DriftOptions chars;
  chars.text_columns = {"t"};
  chars.token_count = [](std::string_view s) -> Result<size_t> { return s.size(); };
  report = ComputeDrift(Parse("t\né\nab\n", "r.csv"), Parse("t\nab\n", "c.csv"), chars);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(report->columns[0].distinct_values, 2u);  // chars: 1, 2
  EXPECT_EQ(report->columns[2].distinct_values, 1u);  // bytes: 2
}

}  // namespace
}  // namespace pocket::eval
