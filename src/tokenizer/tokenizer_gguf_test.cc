#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <thread>

#include "formats/gguf.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/pre_tokenizer.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/tokenizer_testutil.h"

namespace pocket::tokenizer {
namespace {

using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;

Result<formats::GgufFile> ToGguf(const formats::GgufWriter& w) {
  PK_ASSIGN_OR_RETURN(std::string bytes, w.Serialize());
  return formats::GgufFile::FromBytes(std::move(bytes), "test.gguf");
}

Result<Tokenizer> ViaGguf(const Vocab& vocab) {
  formats::GgufWriter w;
  AddVocabToGguf(vocab, w);
  PK_ASSIGN_OR_RETURN(formats::GgufFile f, ToGguf(w));
  return Tokenizer::FromGguf(f);
}

// The golden vocabularies written as GGUF keys and read back encode every golden text the
// same as Hugging Face.
TEST(TokenizerGgufTest, GoldensThroughGguf) {
  for (const char* name : {"gpt2", "llama3", "qwen2", "smollm", "spm", "pocket-2k"}) {
    auto golden = testing::LoadGolden(name);
    ASSERT_TRUE(golden.ok()) << golden.status().ToString();
    auto tok = ViaGguf(golden->vocab);
    ASSERT_TRUE(tok.ok()) << name << ": " << tok.status().ToString();
    EXPECT_EQ(tok->vocab_size(), golden->vocab.tokens.size());
    EXPECT_EQ(tok->bos(), golden->vocab.bos_id) << name;
    EXPECT_EQ(tok->add_bos(), golden->vocab.add_bos) << name;
    for (const auto& c : golden->cases) {
      EXPECT_THAT(tok->Encode(c.text, true, true), ElementsAreArray(c.ids_add_special)) << name;
    }
  }
}

TEST(TokenizerGgufTest, LlamaCppDefaultsWhenFlagsAbsent) {
  auto golden = testing::LoadGolden("spm");
  ASSERT_TRUE(golden.ok());
  formats::GgufWriter w;
  AddVocabToGguf(golden->vocab, w);
  w.Remove("tokenizer.ggml.add_bos_token");
  w.Remove("tokenizer.ggml.add_eos_token");
  w.Remove("tokenizer.ggml.add_space_prefix");
  w.Remove("tokenizer.ggml.bos_token_id");
  auto f = ToGguf(w);
  ASSERT_TRUE(f.ok());
  auto tok = Tokenizer::FromGguf(*f);
  ASSERT_TRUE(tok.ok()) << tok.status().ToString();
  EXPECT_TRUE(tok->add_bos());  // SentencePiece models add BOS (id 1) by default
  EXPECT_FALSE(tok->add_eos());
  EXPECT_EQ(tok->bos(), 1);
  EXPECT_THAT(tok->Encode("", true, true), ElementsAre(1));

  for (auto [pre, add_bos] : {std::pair<const char*, bool>{"llama-bpe", true},
                              {"qwen2", false},
                              {"smollm", false},
                              {"gpt-2", false}}) {
    auto g = testing::LoadGolden("gpt2");
    ASSERT_TRUE(g.ok());
    formats::GgufWriter w2;
    g->vocab.pre = pre;
    AddVocabToGguf(g->vocab, w2);
    w2.Remove("tokenizer.ggml.add_bos_token");
    auto f2 = ToGguf(w2);
    ASSERT_TRUE(f2.ok());
    auto t2 = Tokenizer::FromGguf(*f2);
    ASSERT_TRUE(t2.ok()) << t2.status().ToString();
    EXPECT_EQ(t2->add_bos(), add_bos) << pre;
  }
}

TEST(TokenizerGgufTest, ErrorsNameTheKey) {
  auto golden = testing::LoadGolden("gpt2");
  ASSERT_TRUE(golden.ok());
  struct Case {
    std::function<void(formats::GgufWriter&)> mutate;
    std::string key;
  };
  const std::vector<Case> cases = {
      {[](formats::GgufWriter& w) { w.Remove("tokenizer.ggml.model"); }, "tokenizer.ggml.model"},
      {[](formats::GgufWriter& w) { w.SetString("tokenizer.ggml.model", "bert"); },
       "tokenizer.ggml.model"},
      {[](formats::GgufWriter& w) { w.SetUint32("tokenizer.ggml.model", 3); },
       "tokenizer.ggml.model"},
      {[](formats::GgufWriter& w) { w.SetString("tokenizer.ggml.pre", "klingon"); },
       "tokenizer.ggml.pre"},
      {[](formats::GgufWriter& w) { w.Remove("tokenizer.ggml.tokens"); }, "tokenizer.ggml.tokens"},
      {[](formats::GgufWriter& w) { w.Remove("tokenizer.ggml.merges"); }, "tokenizer.ggml.merges"},
      {[](formats::GgufWriter& w) {
         w.SetInt32Array("tokenizer.ggml.token_type", {1, 1});
       },
       "tokenizer.ggml.token_type"},
      {[](formats::GgufWriter& w) { w.SetUint32("tokenizer.ggml.bos_token_id", 100000); },
       "tokenizer.ggml.bos_token_id"},
      {[](formats::GgufWriter& w) { w.SetString("tokenizer.ggml.eos_token_id", "x"); },
       "tokenizer.ggml.eos_token_id"},
      {[](formats::GgufWriter& w) { w.SetUint32("tokenizer.ggml.add_bos_token", 1); },
       "tokenizer.ggml.add_bos_token"},
  };
  for (const auto& c : cases) {
    formats::GgufWriter w;
    AddVocabToGguf(golden->vocab, w);
    c.mutate(w);
    auto f = ToGguf(w);
    ASSERT_TRUE(f.ok());
    auto tok = Tokenizer::FromGguf(*f);
    ASSERT_FALSE(tok.ok()) << c.key;
    EXPECT_THAT(tok.status().message(), HasSubstr(c.key));
  }
}

TEST(ChatTemplateGgufTest, ReadsTokenizerChatTemplate) {
  formats::GgufWriter w;
  w.SetString("general.architecture", "llama");
  auto f = ToGguf(w);
  ASSERT_TRUE(f.ok());
  auto none = ChatTemplate::FromGguf(*f);
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.status().code(), StatusCode::kNotFound);
  EXPECT_THAT(none.status().message(), HasSubstr("tokenizer.chat_template"));
  EXPECT_THAT(none.status().message(), HasSubstr("--chat-template"));

  w.SetString("tokenizer.chat_template", std::string(ChatTemplate::BuiltinSource("zephyr")));
  f = ToGguf(w);
  ASSERT_TRUE(f.ok());
  auto tmpl = ChatTemplate::FromGguf(*f);
  ASSERT_TRUE(tmpl.ok()) << tmpl.status().ToString();
  const std::vector<ChatMessage> conv = {{"user", "Hi"}};
  EXPECT_EQ(*tmpl->Apply(conv, true, "<s>", "</s>"), "<|user|>\nHi</s>\n<|assistant|>\n");

  w.SetString("tokenizer.chat_template", "{% call m() %}{% endcall %}");
  f = ToGguf(w);
  ASSERT_TRUE(f.ok());
  auto bad = ChatTemplate::FromGguf(*f);
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(), HasSubstr("tokenizer.chat_template"));
  EXPECT_THAT(bad.status().message(), HasSubstr("--chat-template"));
}

TEST(ChatTemplateTest, HostileTemplatesHitTheBudget) {
  const std::vector<ChatMessage> conv = {{"user", "x"}};
  for (const char* src :
       {"{% for a in range(99999) %}{% for b in range(99999) %}{% endfor %}{% endfor %}",
        "{% set ns = namespace(s='ab') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}{% "
        "endfor %}",
        "{% for i in range(99999) %}{{ 'x' * 99999 }}{% endfor %}"}) {
    auto t = ChatTemplate::Parse(src);
    ASSERT_TRUE(t.ok()) << src;
    auto out = t->Apply(conv, false, "", "");
    EXPECT_FALSE(out.ok()) << src;
  }
  std::string deep(5000, '(');
  EXPECT_FALSE(ChatTemplate::Parse("{{ " + deep + " }}").ok());
  std::string nested;
  for (int k = 0; k < 1000; ++k) nested += "{% if true %}";
  EXPECT_FALSE(ChatTemplate::Parse(nested).ok());
}

TEST(TokenizerTest, SpecialTokensAndEndOfGeneration) {
  auto golden = testing::LoadGolden("qwen2");
  ASSERT_TRUE(golden.ok());
  auto tok = Tokenizer::FromVocab(golden->vocab);
  ASSERT_TRUE(tok.ok());
  const int32_t im_start = tok->TokenId("<|im_start|>");
  const int32_t im_end = tok->TokenId("<|im_end|>");
  const int32_t tool_call = tok->TokenId("<tool_call>");
  ASSERT_NE(im_start, kNoToken);
  ASSERT_NE(tool_call, kNoToken);
  EXPECT_TRUE(tok->IsEndOfGeneration(im_end));
  EXPECT_TRUE(tok->IsEndOfGeneration(tok->TokenId("<|endoftext|>")));
  EXPECT_FALSE(tok->IsEndOfGeneration(im_start));
  EXPECT_EQ(tok->eot(), im_end);
  EXPECT_TRUE(tok->IsControl(im_start));
  EXPECT_FALSE(tok->IsControl(tool_call));
  // Control tokens only with parse_special; user-defined ones always.
  EXPECT_EQ(tok->Encode("<|im_start|>", false, true), std::vector<int32_t>{im_start});
  EXPECT_GT(tok->Encode("<|im_start|>", false, false).size(), 1u);
  EXPECT_EQ(tok->Encode("<tool_call>", false, false), std::vector<int32_t>{tool_call});
  // Decode renders control tokens unless asked not to.
  const std::vector<int32_t> ids = tok->Encode("<|im_start|>hi<|im_end|>", false, true);
  EXPECT_EQ(tok->Decode(ids), "<|im_start|>hi<|im_end|>");
  EXPECT_EQ(tok->Decode(ids, /*render_special=*/false), "hi");

  auto llama3 = testing::LoadGolden("llama3");
  ASSERT_TRUE(llama3.ok());
  auto t3 = Tokenizer::FromVocab(llama3->vocab);
  ASSERT_TRUE(t3.ok());
  EXPECT_EQ(t3->eot(), t3->TokenId("<|eot_id|>"));
  EXPECT_TRUE(t3->IsEndOfGeneration(t3->TokenId("<|eot_id|>")));
  EXPECT_TRUE(t3->IsEndOfGeneration(t3->eos()));
}

// HF: decode(skip_special_tokens=False) keeps "<s>" and the space after it; with
// skip_special_tokens=True the Strip decoder removes the prefix space of "▁Hello".
TEST(TokenizerTest, SentencePieceDecodeStripsThePrefixSpaceOnce) {
  auto golden = testing::LoadGolden("spm");
  ASSERT_TRUE(golden.ok());
  auto tok = Tokenizer::FromVocab(golden->vocab);
  ASSERT_TRUE(tok.ok());
  const auto ids = tok->Encode("Hello world", true, true);
  ASSERT_EQ(ids.front(), tok->bos());
  EXPECT_EQ(tok->Decode(ids), "<s> Hello world");
  EXPECT_EQ(tok->Decode(ids, /*render_special=*/false), "Hello world");
  EXPECT_EQ(tok->Decode(std::vector<int32_t>(ids.begin() + 1, ids.end())), "Hello world");
  // A piece on its own keeps its space (streaming concatenates pieces after the first).
  EXPECT_EQ(tok->TokenToPiece(ids[1]).front(), ' ');
}

TEST(TokenizerTest, PiecesMayBePartialUtf8) {
  auto golden = testing::LoadGolden("gpt2");
  ASSERT_TRUE(golden.ok());
  auto tok = Tokenizer::FromVocab(golden->vocab);
  ASSERT_TRUE(tok.ok());
  const std::string text = "\xF0\x9F\xA7\xA0";  // 🧠: not a merge in the small vocab
  const auto ids = tok->Encode(text, false, false);
  ASSERT_GT(ids.size(), 1u);
  std::string joined;
  for (int32_t id : ids) {
    const std::string piece = tok->TokenToPiece(id);
    EXPECT_LT(piece.size(), text.size());
    joined += piece;
  }
  EXPECT_EQ(joined, text);
  EXPECT_EQ(tok->TokenToPiece(-1), "");
  EXPECT_EQ(tok->TokenToPiece(1 << 30), "");
}

TEST(TokenizerTest, FromVocabRejectsInconsistentVocab) {
  Vocab v;
  EXPECT_FALSE(Tokenizer::FromVocab(v).ok());
  v.tokens = {"a", "b"};
  v.token_types = {TokenType::kNormal};
  EXPECT_FALSE(Tokenizer::FromVocab(v).ok());
  v.token_types.clear();
  v.bos_id = 2;
  EXPECT_FALSE(Tokenizer::FromVocab(v).ok());
  v.bos_id = 0;
  v.merges = {"ab"};
  EXPECT_FALSE(Tokenizer::FromVocab(v).ok());
  v.merges = {"a b"};  // "ab" is not a token: the merge can never fire
  EXPECT_TRUE(Tokenizer::FromVocab(v).ok());
  // A byte-typed token that is not "<0xNN>" decodes as its text instead of throwing.
  Vocab odd;
  odd.model = ModelKind::kLlama;
  odd.tokens = {"<0xZZ>", "<0x4A>", "x"};
  odd.token_types = {TokenType::kByte, TokenType::kByte, TokenType::kNormal};
  auto odd_tok = Tokenizer::FromVocab(odd);
  ASSERT_TRUE(odd_tok.ok());
  EXPECT_EQ(odd_tok->TokenToPiece(0), "<0xZZ>");
  EXPECT_EQ(odd_tok->TokenToPiece(1), "J");
  v.pre = "no-such-pre";
  auto bad = Tokenizer::FromVocab(v);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kNotSupported);
  EXPECT_THAT(bad.status().message(), HasSubstr("tokenizer.ggml.pre"));
}

TEST(PreTokenizerTest, SplitsLikeTheReferenceRegexes) {
  auto gpt2 = PreTokenizer::Create("gpt-2");
  ASSERT_TRUE(gpt2.ok());
  EXPECT_THAT((*gpt2)->SplitToVector("Hello world's  123 !!x\n\n"),
              ElementsAre("Hello", " world", "'s", " ", " 123", " !!", "x", "\n\n"));
  auto llama3 = PreTokenizer::Create("llama-bpe");
  ASSERT_TRUE(llama3.ok());
  EXPECT_THAT((*llama3)->SplitToVector("I'M 12345 ok\n\n  x"),
              ElementsAre("I", "'M", " ", "123", "45", " ok", "\n\n", " ", " x"));
  auto qwen2 = PreTokenizer::Create("qwen2");
  ASSERT_TRUE(qwen2.ok());
  EXPECT_THAT((*qwen2)->SplitToVector("a 123"), ElementsAre("a", " ", "1", "2", "3"));
  auto smollm = PreTokenizer::Create("smollm");
  ASSERT_TRUE(smollm.ok());
  EXPECT_THAT((*smollm)->SplitToVector("ab 42x"), ElementsAre("ab", " ", "4", "2", "x"));
  // Invalid UTF-8 never matches and lands in gap pieces, which still cover the input.
  std::string joined;
  for (const auto& p : (*gpt2)->SplitToVector("a\xff\xfe b")) joined += p;
  EXPECT_EQ(joined, "a\xff\xfe b");
  // Long whitespace runs (JIT stack fallback) split without loss.
  const std::string spaces(200000, ' ');
  const auto pieces = (*gpt2)->SplitToVector(spaces + "x");
  joined.clear();
  for (const auto& p : pieces) joined += p;
  EXPECT_EQ(joined, spaces + "x");
}

TEST(TokenizerTest, ConcurrentEncodeIsConsistent) {
  auto golden = testing::LoadGolden("llama3");
  ASSERT_TRUE(golden.ok());
  auto tok = Tokenizer::FromVocab(golden->vocab);
  ASSERT_TRUE(tok.ok());
  const std::string text = golden->cases.back().text;
  const auto expected = tok->Encode(text, true, true);
  std::vector<std::thread> threads;
  std::vector<int> ok(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      bool all = true;
      for (int k = 0; k < 20; ++k) all = all && tok->Encode(text, true, true) == expected;
      ok[t] = all ? 1 : 0;
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_THAT(ok, ElementsAre(1, 1, 1, 1));
}

}  // namespace
}  // namespace pocket::tokenizer
