// End to end through the formats layer's Hugging Face importer: the tokenizer.json files HF
// `tokenizers` wrote for the goldens -> formats::ReadHfTokenizer -> GGUF keys ->
// Tokenizer::FromGguf must encode every golden text as HF did.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "formats/gguf.h"
#include "formats/hf_convert.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/tokenizer_testutil.h"

namespace pocket::tokenizer {
namespace {

using ::testing::ElementsAreArray;

TEST(TokenizerHfImportTest, ByteLevelTokenizerJsonEncodesLikeHf) {
  for (const char* name : {"gpt2", "llama3", "qwen2", "smollm", "pocket-2k"}) {
    auto golden = testing::LoadGolden(name);
    ASSERT_TRUE(golden.ok()) << golden.status().ToString();
    auto hf = formats::ReadHfTokenizer(testing::TestdataPath(std::string("hf/") + name), 0);
    ASSERT_TRUE(hf.ok()) << name << ": " << hf.status().ToString();
    EXPECT_EQ(hf->pre, golden->vocab.pre) << name;
    formats::GgufWriter w;
    formats::AddVocab(*hf, &w);
    auto bytes = w.Serialize();
    ASSERT_TRUE(bytes.ok());
    auto file = formats::GgufFile::FromBytes(std::move(*bytes), std::string(name) + ".gguf");
    ASSERT_TRUE(file.ok()) << file.status().ToString();
    auto tok = Tokenizer::FromGguf(*file);
    ASSERT_TRUE(tok.ok()) << name << ": " << tok.status().ToString();
    ASSERT_EQ(tok->vocab_size(), golden->vocab.tokens.size()) << name;
    for (const auto& c : golden->cases) {
      EXPECT_THAT(tok->Encode(c.text, false, true), ElementsAreArray(c.ids)) << name;
      EXPECT_EQ(tok->Decode(c.ids), c.decoded) << name;
    }
  }
}

}  // namespace
}  // namespace pocket::tokenizer
