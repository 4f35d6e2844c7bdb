#include "tokenizer/bpe_train.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "base/file.h"
#include "formats/gguf.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/tokenizer_testutil.h"

namespace pocket::tokenizer {
namespace {

using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;

const std::vector<std::string> kChatMl = {"<|endoftext|>", "<|im_start|>", "<|im_end|>"};

// The corpus as the documents HF's train_from_iterator saw: one per line, newline kept (Python's
// splitlines(keepends=True); the corpus has no other line separators).
std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  size_t from = 0;
  while (from < text.size()) {
    size_t nl = text.find('\n', from);
    const size_t end = nl == std::string::npos ? text.size() : nl + 1;
    lines.push_back(text.substr(from, end - from));
    from = end;
  }
  return lines;
}

std::vector<std::string> CorpusLines() {
  auto text = ReadFile(testing::TestdataPath("corpus.txt"));
  PK_CHECK(text.ok());
  return Lines(*text);
}

BpeTrainResult Train(const std::vector<std::string>& docs, const BpeTrainOptions& options) {
  auto r = TrainByteLevelBpe(docs, options);
  PK_CHECK(r.ok());
  return std::move(*r);
}

BpeTrainOptions Options(size_t vocab_size, std::string pre = "smollm",
                        std::vector<std::string> specials = kChatMl) {
  BpeTrainOptions o;
  o.vocab_size = vocab_size;
  o.pre = std::move(pre);
  o.special_tokens = std::move(specials);
  return o;
}

std::string GgufBytes(const Vocab& vocab) {
  formats::GgufWriter w;
  AddVocabToGguf(vocab, w);
  auto bytes = w.Serialize();
  PK_CHECK(bytes.ok());
  return *bytes;
}

// Strings that stress the byte-level round trip: every script of the corpus and beyond, whitespace
// runs, digits, specials in text, and bytes that are not UTF-8.
std::vector<std::string> RoundTripTexts() {
  std::vector<std::string> texts = {
      "",
      " ",
      "Hello world",
      "  leading and trailing  \n\n",
      "I'm sure they've gone; we'll see. IT'S",
      "1234567890 3.14159 2026-12-07",
      "café naïve Ångström straße",
      "你好，世界！日本語のテキスト 안녕하세요",
      "Привет, мир! γειά σου مرحبا שלום नमस्ते",
      "🤖🚀 👨‍👩‍👧 🇫🇷 ❤️",
      "def f(x):\n\treturn [c for c in x]\n",
      "<|im_start|>user\nHi<|im_end|>\n<|endoftext|>",
      "<|im_start <|im_end|",
      "\xff\xfe\x80 invalid \xc3 utf-8 \xe4\xbd",
      std::string("nul\0byte", 8),
      "\xed\xa0\x80 surrogate, \xf4\x90\x80\x80 above U+10FFFF, \xc0\xaf "
      "overlong",
  };
  std::mt19937 rng(7);
  for (int k = 0; k < 200; ++k) {
    std::string s(rng() % 40, '\0');
    for (char& c : s) c = static_cast<char>(rng() & 0xFF);
    texts.push_back(std::move(s));
  }
  return texts;
}

// Sennrich et al.'s example (low ×5, lower ×2, newest ×6, widest ×3), one word per document so no
// space joins them. By hand, with ties to the smallest (left, right) ids (letters sort by byte; a
// merged token's id is above every byte's):
//   e s 9 (ties s t 9) · es t 9 · l o 7 (ties o w 7) · lo w 7 · e w 6 (ties n e, w est) ·
//   n ew 6 · new est 6 · d est 3 (ties i d, w i) · i dest 3 · w idest 3 ·
//   e r 2 (ties low e) · low er 2; then every pair occurs once, below min_frequency 2.
TEST(BpeTrainTest, ToyCorpusGivesTheMergesDerivedByHand) {
  std::vector<std::string> docs;
  for (auto [word, n] :
       {std::pair<const char*, int>{"low", 5}, {"lower", 2}, {"newest", 6}, {"widest", 3}}) {
    for (int i = 0; i < n; ++i) docs.emplace_back(word);
  }
  const BpeTrainResult r = Train(docs, Options(1000, "gpt-2", {}));
  EXPECT_THAT(r.vocab.merges, ElementsAre("e s", "es t", "l o", "lo w", "e w", "n ew", "new est",
                                          "d est", "i dest", "w idest", "e r", "low er"));
  EXPECT_EQ(r.stop, BpeStopReason::kNoPairs);
  EXPECT_EQ(r.num_distinct_words, 4u);
  ASSERT_EQ(r.vocab.tokens.size(), 256u + 12u);
  EXPECT_EQ(r.vocab.tokens.back(), "lower");
  auto tok = Tokenizer::FromVocab(r.vocab);
  ASSERT_TRUE(tok.ok()) << tok.status().ToString();
  EXPECT_THAT(tok->Encode("newest", false, false), ElementsAre(tok->TokenId("newest")));
  EXPECT_THAT(tok->Encode("lowest", false, false),
              ElementsAre(tok->TokenId("low"), tok->TokenId("est")));
}

// With min_frequency 0 every pair that occurs counts, and ties decide almost every merge.
TEST(BpeTrainTest, TiesGoToTheSmallestLeftThenRightId) {
  const BpeTrainResult r = Train({"ab", "ba", "ca", "ac"}, [] {
    BpeTrainOptions o = Options(300, "gpt-2", {});
    o.min_frequency = 0;
    return o;
  }());
  // Every pair occurs once: (a,b) < (a,c) < (b,a) < (c,a); merged tokens are new words.
  EXPECT_THAT(r.vocab.merges, ElementsAre("a b", "a c", "b a", "c a"));
  EXPECT_EQ(r.stop, BpeStopReason::kNoPairs);
}

// The byte alphabet comes in code point order after the special tokens, as in HF: '!' (33) first,
// then the printable bytes, then the remapped ones from U+0100.
TEST(BpeTrainTest, VocabStartsWithSpecialsThenTheByteAlphabet) {
  const BpeTrainResult r = Train({}, Options(300));
  ASSERT_EQ(r.vocab.tokens.size(), 3u + 256u);
  EXPECT_EQ(r.stop, BpeStopReason::kNoPairs);
  EXPECT_EQ(r.vocab.tokens[0], "<|endoftext|>");
  EXPECT_EQ(r.vocab.tokens[2], "<|im_end|>");
  EXPECT_EQ(r.vocab.tokens[3], "!");
  EXPECT_EQ(r.vocab.tokens[3 + 255],
            "Ń");  // U+0143, byte 0xAD: the last remapped byte
  EXPECT_EQ(r.vocab.token_types[1], TokenType::kControl);
  EXPECT_EQ(r.vocab.token_types[3], TokenType::kNormal);
  EXPECT_EQ(r.vocab.model, ModelKind::kGpt2);
  EXPECT_EQ(r.vocab.pre, "smollm");
}

// The tokens and merges of Hugging Face's BpeTrainer (tokenizers 0.23.2) on the same corpus with
// the same settings: the goldens of make_golden.py (ByteLevel alphabet, min_frequency 2, one
// document per line).
TEST(BpeTrainTest, MatchesHuggingFaceBpeTrainerOnTheGoldenVocabularies) {
  const std::vector<std::string> lines = CorpusLines();
  struct Case {
    const char* golden;
    const char* pre;
    std::vector<std::string> specials;
    size_t vocab_size;
  };
  const std::vector<Case> cases = {
      {"gpt2", "gpt-2", {"<|endoftext|>"}, 1000},
      {"llama3",
       "llama-bpe",
       {"<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>",
        "<|eot_id|>"},
       1000},
      {"qwen2", "qwen2", kChatMl, 1000},  // + 2 tokens HF added after training
      {"smollm", "smollm", kChatMl, 1000},
      {"pocket-2k", "smollm", kChatMl, 2048},  // HF stopped at 1877: no pair left twice
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.golden);
    auto golden = testing::LoadGolden(c.golden);
    ASSERT_TRUE(golden.ok()) << golden.status().ToString();
    const BpeTrainResult r = Train(lines, Options(c.vocab_size, c.pre, c.specials));
    EXPECT_EQ(r.vocab.merges, golden->vocab.merges);
    std::vector<std::string> hf_tokens = golden->vocab.tokens;
    if (std::string(c.golden) == "qwen2") hf_tokens.resize(1000);
    EXPECT_EQ(r.vocab.tokens, hf_tokens);
    EXPECT_EQ(r.stop, std::string(c.golden) == "pocket-2k" ? BpeStopReason::kNoPairs
                                                           : BpeStopReason::kVocabSize);
  }
}

// make_bpe_golden.py's cases: HF's BpeTrainer on testdata/tokenizer/bpe_corpus.txt with several
// pre-tokenizers, sizes and min_frequency values (0 makes ties decide most merges).
TEST(BpeTrainTest, MatchesHuggingFaceBpeTrainerOnBpeGolden) {
  const std::string path = testing::TestdataPath("bpe_golden.json");
  if (!std::filesystem::exists(path)) {
    GTEST_SKIP() << path << " is missing; make it on a machine with HF tokenizers: "
                 << "python3 tests/golden/tokenizer/make_bpe_golden.py . "
                    "testdata/tokenizer";
  }
  auto json_text = ReadFile(path);
  ASSERT_TRUE(json_text.ok()) << json_text.status().ToString();
  auto corpus = ReadFile(testing::TestdataPath("bpe_corpus.txt"));
  ASSERT_TRUE(corpus.ok()) << corpus.status().ToString();
  const std::vector<std::string> lines = Lines(*corpus);
  const auto golden = nlohmann::json::parse(*json_text);
  ASSERT_FALSE(golden.at("cases").empty());
  for (const auto& c : golden.at("cases")) {
    SCOPED_TRACE(c.at("name").get<std::string>());
    const auto specials = c.at("special_tokens").get<std::vector<std::string>>();
    BpeTrainOptions o =
        Options(c.at("vocab_size").get<size_t>(), c.at("pre").get<std::string>(), specials);
    o.min_frequency = c.at("min_frequency").get<int64_t>();
    const BpeTrainResult r = Train(lines, o);
    std::vector<std::string> hf_merges = c.at("merges").get<std::vector<std::string>>();
    std::vector<std::string> hf_tokens = c.at("tokens").get<std::vector<std::string>>();
    // Up to the first merge that does not add the next token (one that rebuilds an existing token's
    // text), HF and we must agree exactly; past it HF's queue may repeat merges (see bpe_train.h),
    // so the comparison stops there.
    const size_t first_id = specials.size() + 256;
    size_t regular = 0;
    while (regular < hf_merges.size()) {
      const std::string& m = hf_merges[regular];
      const size_t space = m.find(' ');
      const std::string merged = m.substr(0, space) + m.substr(space + 1);
      if (first_id + regular >= hf_tokens.size() || hf_tokens[first_id + regular] != merged) break;
      ++regular;
    }
    if (regular < hf_merges.size()) {
      hf_merges.resize(regular + 1);
      hf_tokens.resize(first_id + regular);
      ASSERT_GE(r.vocab.merges.size(), hf_merges.size());
      ASSERT_GE(r.vocab.tokens.size(), hf_tokens.size());
      EXPECT_EQ(std::vector(r.vocab.merges.begin(), r.vocab.merges.begin() + regular + 1),
                hf_merges);
      EXPECT_EQ(std::vector(r.vocab.tokens.begin(), r.vocab.tokens.begin() + first_id + regular),
                hf_tokens);
    } else {
      EXPECT_EQ(r.vocab.merges, hf_merges);
      EXPECT_EQ(r.vocab.tokens, hf_tokens);
    }
  }
}

TEST(BpeTrainTest, DecodeOfEncodeGivesBackAnyBytes) {
  const BpeTrainResult r = Train(CorpusLines(), Options(1000));
  auto tok = Tokenizer::FromVocab(r.vocab);
  ASSERT_TRUE(tok.ok()) << tok.status().ToString();
  for (const std::string& s : RoundTripTexts()) {
    EXPECT_EQ(tok->Decode(tok->Encode(s, false, false)), s);
    EXPECT_EQ(tok->Decode(tok->Encode(s, false, true)), s);
  }
}

TEST(BpeTrainTest, ReachesTheVocabSizeExactly) {
  const std::vector<std::string> lines = CorpusLines();
  for (size_t size : {259u, 260u, 777u, 1500u}) {
    const BpeTrainResult r = Train(lines, Options(size));
    EXPECT_EQ(r.vocab.tokens.size(), size);
    EXPECT_EQ(r.vocab.merges.size(), size - 259);
    EXPECT_EQ(r.stop, BpeStopReason::kVocabSize);
  }
}

TEST(BpeTrainTest, StopsBelowTheVocabSizeWhenNoPairIsFrequentEnough) {
  const BpeTrainResult r = Train({"the cat and the hat", "the bat"}, Options(5000));
  EXPECT_EQ(r.stop, BpeStopReason::kNoPairs);
  EXPECT_LT(r.vocab.tokens.size(), 5000u);
  EXPECT_EQ(r.vocab.tokens.size(), 259u + r.vocab.merges.size());
  // Only "at" (cat, hat, bat) and "the" (twice at a document start, once after a space) occur more
  // than once; a, h and t sort before the merged "he".
  EXPECT_THAT(r.vocab.merges, ElementsAre("a t", "h e", "t he"));
}

// Same documents twice, and the same documents in another order: identical GGUF bytes.
TEST(BpeTrainTest, SameCorpusGivesIdenticalBytesInAnyDocumentOrder) {
  std::vector<std::string> lines = CorpusLines();
  const std::string first = GgufBytes(Train(lines, Options(1200)).vocab);
  EXPECT_EQ(GgufBytes(Train(lines, Options(1200)).vocab), first);
  std::reverse(lines.begin(), lines.end());
  std::shuffle(lines.begin(), lines.end(), std::mt19937(3));
  EXPECT_EQ(GgufBytes(Train(lines, Options(1200)).vocab), first);
}

TEST(BpeTrainTest, CompressionImprovesWithVocabSize) {
  std::vector<std::string> lines = CorpusLines();
  // Train on all but the last 100 lines, measure on those.
  const std::vector<std::string> held_out(lines.end() - 100, lines.end());
  lines.resize(lines.size() - 100);
  std::string text;
  for (const auto& l : held_out) text += l;
  size_t previous = text.size() + 1;
  for (size_t size : {259u, 400u, 800u, 1600u}) {
    auto tok = Tokenizer::FromVocab(Train(lines, Options(size)).vocab);
    ASSERT_TRUE(tok.ok());
    const size_t n = tok->Encode(text, false, false).size();
    EXPECT_LT(n, previous) << "vocab " << size;
    previous = n;
  }
  EXPECT_LT(previous * 2, text.size()) << "1600 tokens should halve the byte count";
}

// Special tokens in the corpus are cut out: their pieces ("<|", "im", "_end", "|>") earn no merges,
// and the trained tokenizer encodes them whole with parse_special.
TEST(BpeTrainTest, SpecialTokensInTheCorpusAreNotTrainedOn) {
  std::vector<std::string> docs;
  for (int i = 0; i < 50; ++i) docs.push_back("<|im_start|>user\nhello<|im_end|>\n");
  BpeTrainOptions o = Options(400);
  o.bos_token = "<|im_start|>";
  o.eos_token = "<|im_end|>";
  const BpeTrainResult r = Train(docs, o);
  for (const std::string& m : r.vocab.merges) {
    EXPECT_EQ(m.find('|'), std::string::npos) << m;
  }
  EXPECT_EQ(r.vocab.bos_id, 1);
  EXPECT_EQ(r.vocab.eos_id, 2);
  auto tok = Tokenizer::FromVocab(r.vocab);
  ASSERT_TRUE(tok.ok());
  const auto ids = tok->Encode(docs[0], false, true);
  EXPECT_EQ(ids.front(), 1);
  EXPECT_EQ(tok->Decode(ids), docs[0]);
  EXPECT_TRUE(tok->IsEndOfGeneration(2));
}

// Written as GGUF keys into a file, read back by the GGUF loader every tool uses: same vocabulary,
// and every test string encodes as with the in-memory vocabulary and decodes back to itself.
TEST(BpeTrainTest, TrainedVocabRoundTripsThroughAGgufFile) {
  BpeTrainOptions o = Options(1000);
  o.bos_token = "<|endoftext|>";
  o.eos_token = "<|im_end|>";
  const BpeTrainResult r = Train(CorpusLines(), o);
  formats::GgufWriter w;
  w.SetString("general.architecture", "llama");
  AddVocabToGguf(r.vocab, w);
  const std::string path = (std::filesystem::temp_directory_path() /
                            ("pocket_bpe_train_test_" + std::to_string(::getpid()) + ".gguf"))
                               .string();
  ASSERT_TRUE(w.Write(path).ok());
  auto file = formats::GgufFile::Open(path);
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  EXPECT_EQ(*file->GetString("tokenizer.ggml.model"), "gpt2");
  EXPECT_EQ(*file->GetString("tokenizer.ggml.pre"), "smollm");
  auto from_file = Tokenizer::FromGguf(*file);
  ASSERT_TRUE(from_file.ok()) << from_file.status().ToString();
  auto in_memory = Tokenizer::FromVocab(r.vocab);
  ASSERT_TRUE(in_memory.ok());
  EXPECT_EQ(from_file->vocab().tokens, r.vocab.tokens);
  EXPECT_EQ(from_file->vocab().merges, r.vocab.merges);
  EXPECT_EQ(from_file->bos(), 0);
  EXPECT_EQ(from_file->eos(), 2);
  EXPECT_TRUE(from_file->IsControl(1));
  for (const std::string& s : RoundTripTexts()) {
    const auto ids = from_file->Encode(s, false, true);
    EXPECT_EQ(ids, in_memory->Encode(s, false, true));
    EXPECT_EQ(from_file->Decode(ids), s);
  }
  std::remove(path.c_str());
}

TEST(BpeTrainTest, StreamingDocumentsHoldsOnlyTheWordTable) {
  auto trainer = BpeTrainer::Create(Options(300));
  ASSERT_TRUE(trainer.ok());
  for (int i = 0; i < 10000; ++i) trainer->AddDocument("the same words again and again\n");
  EXPECT_EQ(trainer->num_distinct_words(),
            6u);  // the, Ġsame, Ġwords, Ġagain, Ġand, \n
  auto r = trainer->Train();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->num_distinct_words, 6u);
}

TEST(BpeTrainTest, RejectsBadOptionsNamingTheOption) {
  auto err = [](BpeTrainOptions o) { return BpeTrainer::Create(std::move(o)).status(); };
  Status s = err(Options(258));
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("vocab_size 258"));
  BpeTrainOptions o = Options(1000);
  o.eos_token = "</s>";
  EXPECT_THAT(err(o).message(), HasSubstr("eos_token '</s>'"));
  o = Options(1000, "smollm", {"<a>", "<b>", "<a>"});
  EXPECT_THAT(err(o).message(), HasSubstr("'<a>' is listed twice"));
  o = Options(1000, "smollm", {""});
  EXPECT_THAT(err(o).message(), HasSubstr("special_tokens[0] is empty"));
  o = Options(1000);
  o.min_frequency = -1;
  EXPECT_THAT(err(o).message(), HasSubstr("min_frequency"));
  EXPECT_EQ(err(Options(1000, "no-such-pre")).code(), StatusCode::kNotSupported);
}

}  // namespace
}  // namespace pocket::tokenizer
