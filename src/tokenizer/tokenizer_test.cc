#include "tokenizer/tokenizer.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <string>

#include "tokenizer/pre_tokenizer.h"
#include "tokenizer/tokenizer_testutil.h"

namespace pocket::tokenizer {
namespace {

using ::testing::ElementsAre;
using ::testing::ElementsAreArray;

std::string Show(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (c == '\n') {
      out += "\\n";
    } else if (c < 0x20) {
      out += "\\x" + std::to_string(c);
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  return out;
}

class GoldenTest : public ::testing::TestWithParam<std::string> {};

// Every golden text encodes to Hugging Face's ids, token for token, with and without BOS
// (add_special) and with special-token parsing off; decoding gives HF's text back.
TEST_P(GoldenTest, MatchesHuggingFaceTokenizers) {
  auto golden = testing::LoadGolden(GetParam());
  ASSERT_TRUE(golden.ok()) << golden.status().ToString();
  auto tok = Tokenizer::FromVocab(golden->vocab);
  ASSERT_TRUE(tok.ok()) << tok.status().ToString();
  ASSERT_GT(golden->cases.size(), 10u);
  for (const auto& c : golden->cases) {
    EXPECT_THAT(tok->Encode(c.text, false, true), ElementsAreArray(c.ids)) << Show(c.text);
    EXPECT_THAT(tok->Encode(c.text, true, true), ElementsAreArray(c.ids_add_special))
        << Show(c.text);
    if (c.has_no_parse_special) {
      EXPECT_THAT(tok->Encode(c.text, false, false), ElementsAreArray(c.ids_no_parse_special))
          << Show(c.text);
    }
    EXPECT_EQ(tok->Decode(c.ids), c.decoded) << Show(c.text);
  }
}

// Decode(Encode(x)) == x for every golden text without special tokens in it.
TEST_P(GoldenTest, DecodeInvertsEncode) {
  auto golden = testing::LoadGolden(GetParam());
  ASSERT_TRUE(golden.ok()) << golden.status().ToString();
  auto tok = Tokenizer::FromVocab(golden->vocab);
  ASSERT_TRUE(tok.ok()) << tok.status().ToString();
  for (const auto& c : golden->cases) {
    EXPECT_EQ(tok->Decode(tok->Encode(c.text, false, false)), c.text) << Show(c.text);
  }
  // Also bytes that are not UTF-8, and every single byte.
  std::string bytes;
  for (int b = 0; b < 256; ++b) bytes.push_back(static_cast<char>(b));
  for (std::string s : {bytes, std::string("\xff\xfe abc \xc3"), std::string("a\x80 b")}) {
    EXPECT_EQ(tok->Decode(tok->Encode(s, false, false)), s);
  }
}

INSTANTIATE_TEST_SUITE_P(Vocabularies, GoldenTest,
                         ::testing::Values("gpt2", "llama3", "qwen2", "smollm", "spm", "pocket-2k"),
                         [](const ::testing::TestParamInfo<std::string>& param_info) {
                           std::string n = param_info.param;
                           std::replace(n.begin(), n.end(), '-', '_');
                           return n;
                         });

}  // namespace
}  // namespace pocket::tokenizer
