#include "runtime/text_stream.h"

#include <gtest/gtest.h>

#include <string>

namespace pocket::runtime {
namespace {

TEST(Utf8AssemblerTest, HoldsBackSplitSequenceUntilComplete) {
  Utf8Assembler a;
  const std::string euro = "\xE2\x82\xAC";  // €
  EXPECT_EQ(a.Push("ab\xE2"), "ab");
  EXPECT_EQ(a.Push("\x82"), "");
  EXPECT_EQ(a.Push("\xAC!"), euro + "!");
  EXPECT_EQ(a.Flush(), "");
}

TEST(Utf8AssemblerTest, EveryByteSplitOfValidTextReassembles) {
  const std::string text = "h\xC3\xA9llo \xF0\x9F\x98\x80 w\xE4\xB8\x96rld";  // é, 😀, 世
  Utf8Assembler a;
  std::string out;
  for (char c : text) {
    const std::string piece = a.Push(std::string(1, c));
    EXPECT_EQ(CompleteUtf8Prefix(piece), piece.size());
    out += piece;
  }
  out += a.Flush();
  EXPECT_EQ(out, text);
}

TEST(Utf8AssemblerTest, MalformedBytesBecomeReplacementCharacter) {
  Utf8Assembler a;
  EXPECT_EQ(a.Push("a\x80z"), "a\xEF\xBF\xBDz");           // stray continuation
  EXPECT_EQ(a.Push("\xE2\x82z"), "\xEF\xBF\xBDz");          // truncated by a non-continuation
  EXPECT_EQ(a.Push("\xC0\xAF"), "\xEF\xBF\xBD\xEF\xBF\xBD");  // overlong
  EXPECT_EQ(a.Push("\xED\xA0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");  // surrogate
  EXPECT_EQ(a.Push("\xF0\x9F"), "");
  EXPECT_EQ(a.Flush(), "\xEF\xBF\xBD");  // unfinished at the end
}

TEST(CompleteUtf8PrefixTest, StopsBeforeIncompleteTail) {
  EXPECT_EQ(CompleteUtf8Prefix("abc"), 3u);
  EXPECT_EQ(CompleteUtf8Prefix("ab\xF0\x9F\x98"), 2u);
  EXPECT_EQ(CompleteUtf8Prefix(""), 0u);
}

TEST(StopMatcherTest, CutsAtStopStringAcrossPushes) {
  StopMatcher m({"</s>", "\n\n"});
  auto o = m.Push("Hello <");
  EXPECT_EQ(o.text, "Hello ");
  EXPECT_FALSE(o.stopped);
  o = m.Push("/");
  EXPECT_EQ(o.text, "");
  o = m.Push("s> trailing");
  EXPECT_EQ(o.text, "");
  EXPECT_TRUE(o.stopped);
  EXPECT_TRUE(m.stopped());
  EXPECT_EQ(m.Push("more").text, "");
}

TEST(StopMatcherTest, ReleasesHeldTextWhenMatchFails) {
  StopMatcher m({"STOP"});
  EXPECT_EQ(m.Push("aST").text, "a");
  EXPECT_EQ(m.Push("x").text, "STx");
  EXPECT_EQ(m.Push("ST").text, "");
  EXPECT_EQ(m.Flush(), "ST");
}

TEST(StopMatcherTest, EarliestStopWinsAndTextBeforeItIsEmitted) {
  StopMatcher m({"bbb", "b"});
  const auto o = m.Push("aab bbb");
  EXPECT_TRUE(o.stopped);
  EXPECT_EQ(o.text, "aa");
}

TEST(StopMatcherTest, OverlappingPrefixHoldsLongestCandidate) {
  StopMatcher m({"abab"});
  EXPECT_EQ(m.Push("xaba").text, "x");
  const auto o = m.Push("b");
  EXPECT_TRUE(o.stopped);
  EXPECT_EQ(o.text, "");
}

TEST(StopMatcherTest, NoStopsPassesEverythingThrough) {
  StopMatcher m({"", ""});
  EXPECT_EQ(m.Push("abc").text, "abc");
  EXPECT_EQ(m.Flush(), "");
}

}  // namespace
}  // namespace pocket::runtime
