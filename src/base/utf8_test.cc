#include "base/utf8.h"

#include <gtest/gtest.h>

namespace pocket {
namespace {

TEST(Utf8Test, AppendEncodesEveryLength) {
  std::string s;
  for (uint32_t cp : {0x24u, 0xA2u, 0x20ACu, 0x1F600u}) AppendUtf8(cp, s);
  EXPECT_EQ(s, "$\xC2\xA2\xE2\x82\xAC\xF0\x9F\x98\x80");
}

TEST(Utf8Test, StepsOverWellFormedCharacters) {
  const std::string s = "a\xC2\xA2\xE2\x82\xAC\xF0\x9F\x98\x80";
  size_t i = 0;
  std::vector<size_t> lengths;
  while (i < s.size()) {
    Utf8Step st = DecodeUtf8Step(s, i);
    ASSERT_EQ(st.kind, Utf8Kind::kValid) << i;
    lengths.push_back(st.length);
    i += st.length;
  }
  EXPECT_EQ(lengths, (std::vector<size_t>{1, 2, 3, 4}));
}

TEST(Utf8Test, IllFormedSequencesYieldTheirMaximalSubpart) {
  // Unicode 15 §3.9 examples: each bad sequence is one maximal subpart.
  EXPECT_EQ(DecodeUtf8Step("\x80", 0).kind, Utf8Kind::kInvalid);
  EXPECT_EQ(DecodeUtf8Step("\xC0\xAF", 0).length, 1u);           // overlong lead
  EXPECT_EQ(DecodeUtf8Step("\xE0\x80\x80", 0).length, 1u);       // overlong 3-byte
  EXPECT_EQ(DecodeUtf8Step("\xED\xA0\x80", 0).length, 1u);       // surrogate
  EXPECT_EQ(DecodeUtf8Step("\xF4\x90\x80\x80", 0).length, 1u);   // past U+10FFFF
  Utf8Step st = DecodeUtf8Step("\xE2\x82x", 0);                  // cut by an ASCII byte
  EXPECT_EQ(st.kind, Utf8Kind::kInvalid);
  EXPECT_EQ(st.length, 2u);
}

TEST(Utf8Test, TruncatedSequenceAtTheEndIsIncomplete) {
  Utf8Step st = DecodeUtf8Step("\xF0\x9F\x98", 0);
  EXPECT_EQ(st.kind, Utf8Kind::kIncomplete);
  EXPECT_EQ(st.length, 3u);
}

}  // namespace
}  // namespace pocket
