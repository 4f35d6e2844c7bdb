// Tests of the training data (data.h): folder order and recursion, bad inputs and their messages,
// assistant-only targets on real chat templates, packing, the stable split, determinism (twice, and
// with 1 and 2 threads) and exact resumption of the batches.
#include "train/data.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "base/thread_pool.h"

namespace pocket::train {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using tokenizer::ChatMessage;
using tokenizer::ChatTemplate;
using tokenizer::Tokenizer;

Tokenizer LoadTokenizer(const std::string& name) {
  auto vocab = tokenizer::LoadVocabJson(std::string(POCKET_SOURCE_DIR) + "/testdata/tokenizer/" +
                                        name + ".json");
  PK_CHECK(vocab.ok());
  auto tok = Tokenizer::FromVocab(std::move(*vocab));
  PK_CHECK(tok.ok());
  return std::move(*tok);
}

// smollm.json: SmolLM's byte-level BPE (1000 tokens) with ChatML specials; no BOS added, EOS =
// <|im_end|>. llama3.json: Llama 3's (BOS <|begin_of_text|> added, EOS <|end_of_text|>, <|eot_id|>
// ends a turn).
const Tokenizer& Smollm() {
  static const Tokenizer* tok = new Tokenizer(LoadTokenizer("smollm"));
  return *tok;
}
const Tokenizer& Llama3() {
  static const Tokenizer* tok = new Tokenizer(LoadTokenizer("llama3"));
  return *tok;
}

ChatTemplate Builtin(const std::string& name) {
  auto t = ChatTemplate::Builtin(name);
  PK_CHECK(t.ok());
  return std::move(*t);
}

class TempDir {
 public:
  TempDir() {
    std::string templ = ::testing::TempDir() + "pocket_data_XXXXXX";
    PK_CHECK(mkdtemp(templ.data()) != nullptr);
    path_ = templ;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string Write(const std::string& rel, const std::string& bytes) const {
    const std::string full = path_ + "/" + rel;
    std::error_code ec;
    std::filesystem::create_directories(std::filesystem::path(full).parent_path(), ec);
    std::ofstream(full, std::ios::binary) << bytes;
    return full;
  }

 private:
  std::string path_;
};

DataOptions NoSplit(size_t seq_len = 8) {
  DataOptions o;
  o.seq_len = seq_len;
  o.validation_fraction = 0.0;
  return o;
}

std::string Decode(const Tokenizer& tok, const std::vector<int32_t>& ids) {
  return tok.Decode(ids);
}

// The decoded runs of consecutive target tokens of a document.
std::vector<std::string> TargetRuns(const Tokenizer& tok, const TokenizedDocument& doc) {
  std::vector<std::string> runs;
  std::vector<int32_t> run;
  for (size_t i = 0; i <= doc.tokens.size(); ++i) {
    if (i < doc.tokens.size() && doc.is_target[i]) {
      run.push_back(doc.tokens[i]);
    } else if (!run.empty()) {
      runs.push_back(tok.Decode(run));
      run.clear();
    }
  }
  return runs;
}

// The documents of a split's stream, split at EOS (text documents end with it).
std::vector<std::string> Documents(const Tokenizer& tok, const PackedSplit& split) {
  std::vector<std::string> docs;
  std::vector<int32_t> cur;
  for (const int32_t t : split.tokens()) {
    if (t == tok.eos()) {
      docs.push_back(tok.Decode(cur));
      cur.clear();
    } else {
      cur.push_back(t);
    }
  }
  if (!cur.empty()) docs.push_back(tok.Decode(cur));
  return docs;
}

// --- Files and folders ---

TEST(DatasetTest, ReadsFolderRecursivelyInByteOrderOfPaths) {
  TempDir dir;
  // Written in an order unlike the expected one. Byte order: "A" < "a.txt" < "a/" ('.' is 0x2E, '/'
  // 0x2F) < "b.md" < "sub/deep/...".
  dir.Write("sub/deep/e.md", "five");
  dir.Write("b.md", "four");
  dir.Write("a/z.txt", "three");
  dir.Write("a.txt", "two");
  dir.Write("A.txt", "one");
  dir.Write("image.png", "not text \xff");  // other extensions are skipped
  dir.Write(".hidden.txt", "hidden");       // hidden files too
  dir.Write(".git/config.txt", "hidden");   // and hidden folders
  auto ds = Dataset::Load(dir.path(), Smollm(), nullptr, NoSplit());
  ASSERT_TRUE(ds.ok()) << ds.status().message();
  EXPECT_THAT(Documents(Smollm(), ds->train()), ElementsAre("one", "two", "three", "four", "five"));
  EXPECT_EQ(ds->stats().files_read, 5u);
  EXPECT_EQ(ds->stats().files_skipped, 3u);
  EXPECT_EQ(ds->stats().text_documents, 5u);
}

TEST(DatasetTest, NamedFileIsReadWhateverItsExtension) {
  TempDir dir;
  const std::string file = dir.Write("notes.log", "hello there");
  auto ds = Dataset::Load(file, Smollm(), nullptr, NoSplit());
  ASSERT_TRUE(ds.ok()) << ds.status().message();
  EXPECT_THAT(Documents(Smollm(), ds->train()), ElementsAre("hello there"));
}

TEST(DatasetTest, FileReachedTwiceThroughSymlinksIsReadOnce) {
  TempDir dir;
  dir.Write("real/a.txt", "alpha");
  ASSERT_EQ(symlink("real", (dir.path() + "/link").c_str()), 0);
  auto ds = Dataset::Load(dir.path(), Smollm(), nullptr, NoSplit());
  ASSERT_TRUE(ds.ok()) << ds.status().message();
  // "link/a.txt" sorts before "real/a.txt": the file is read once, under that path.
  EXPECT_THAT(Documents(Smollm(), ds->train()), ElementsAre("alpha"));
  EXPECT_EQ(ds->stats().files_skipped, 1u);
}

TEST(DatasetTest, SymlinkLoopIsAnErrorNamingIt) {
  TempDir dir;
  dir.Write("sub/a.txt", "alpha");
  ASSERT_EQ(symlink("..", (dir.path() + "/sub/up").c_str()), 0);
  auto ds = Dataset::Load(dir.path(), Smollm(), nullptr, NoSplit());
  ASSERT_FALSE(ds.ok());
  EXPECT_EQ(ds.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(ds.status().message(), HasSubstr("data: " + dir.path() + "/sub/up: symlink loop"));
}

TEST(DatasetTest, SelfSymlinkAndBrokenSymlinkAreErrorsNamingThem) {
  {
    TempDir dir;
    dir.Write("a.txt", "alpha");
    ASSERT_EQ(symlink("self.txt", (dir.path() + "/self.txt").c_str()), 0);
    auto ds = Dataset::Load(dir.path(), Smollm(), nullptr, NoSplit());
    ASSERT_FALSE(ds.ok());
    EXPECT_THAT(ds.status().message(), HasSubstr("data: " + dir.path() + "/self.txt: "));
  }
  {
    TempDir dir;
    ASSERT_EQ(symlink("missing.txt", (dir.path() + "/gone.txt").c_str()), 0);
    auto ds = Dataset::Load(dir.path(), Smollm(), nullptr, NoSplit());
    ASSERT_FALSE(ds.ok());
    EXPECT_EQ(ds.status().message(), "data: " + dir.path() + "/gone.txt: broken symlink");
  }
}

TEST(DatasetTest, UnreadableFileIsAnErrorNamingIt) {
  if (geteuid() == 0) GTEST_SKIP() << "root reads files whatever their mode";
  TempDir dir;
  const std::string file = dir.Write("secret.txt", "alpha");
  ASSERT_EQ(chmod(file.c_str(), 0), 0);
  auto ds = Dataset::Load(dir.path(), Smollm(), nullptr, NoSplit());
  ASSERT_FALSE(ds.ok());
  EXPECT_EQ(ds.status().code(), StatusCode::kIOError);
  EXPECT_THAT(ds.status().message(), HasSubstr(file));
}

TEST(DatasetTest, MissingPathAndEmptyFolderAreErrors) {
  TempDir dir;
  auto missing = Dataset::Load(dir.path() + "/nope", Smollm(), nullptr, NoSplit());
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(missing.status().message(), "data: " + dir.path() + "/nope does not exist");
  dir.Write("a.bin", "x");
  auto empty = Dataset::Load(dir.path(), Smollm(), nullptr, NoSplit());
  ASSERT_FALSE(empty.ok());
  EXPECT_THAT(empty.status().message(), HasSubstr("no data files"));
  EXPECT_THAT(empty.status().message(), HasSubstr("1 other entries skipped"));
}

TEST(DatasetTest, InvalidUtf8IsAnErrorNamingFileByteAndLine) {
  TempDir dir;
  const std::string file = dir.Write("bad.txt", "ok\nstill ok\nthen \xC3(");
  auto ds = Dataset::Load(dir.path(), Smollm(), nullptr, NoSplit());
  ASSERT_FALSE(ds.ok());
  EXPECT_EQ(ds.status().message(), "data: " + file + ": not valid UTF-8 at byte 17 (line 3)");
  // A character cut off by the end of the file is invalid too.
  dir.Write("bad.txt", "end \xE2\x82");
  ds = Dataset::Load(dir.path(), Smollm(), nullptr, NoSplit());
  ASSERT_FALSE(ds.ok());
  EXPECT_EQ(ds.status().message(), "data: " + file + ": not valid UTF-8 at byte 4 (line 1)");
}

TEST(DatasetTest, LeadingByteOrderMarkIsDropped) {
  TempDir dir;
  dir.Write("a.txt", "\xEF\xBB\xBFhello");
  auto ds = Dataset::Load(dir.path(), Smollm(), nullptr, NoSplit());
  ASSERT_TRUE(ds.ok()) << ds.status().message();
  EXPECT_THAT(Documents(Smollm(), ds->train()), ElementsAre("hello"));
}

TEST(DatasetTest, LongTextIsCutAtBlankLinesIntoDocuments) {
  TempDir dir;
  dir.Write("book.txt", "para one line\nmore\n\npara two\n\npara three is long\n");
  DataOptions o = NoSplit();
  o.max_document_bytes = 24;
  auto ds = Dataset::Load(dir.path(), Smollm(), nullptr, o);
  ASSERT_TRUE(ds.ok()) << ds.status().message();
  // Window 1 "para one line\nmore\n\npara" cuts after the blank line (byte 20 >= 12); window 2
  // "para two\n\npara three is " has its blank line at 8 < 12, its last newline too: cut at 24
  // bytes; the rest is the last piece.
  EXPECT_THAT(Documents(Smollm(), ds->train()),
              ElementsAre("para one line\nmore\n\n", "para two\n\npara three is ", "long\n"));
  EXPECT_EQ(ds->stats().text_documents, 3u);
}

TEST(DatasetTest, LongTextCutNeverSplitsACharacter) {
  TempDir dir;
  dir.Write("a.txt", "\xC3\xA9\xC3\xA9\xC3\xA9");  // "ééé", 6 bytes
  DataOptions o = NoSplit();
  o.max_document_bytes = 3;
  auto ds = Dataset::Load(dir.path(), Smollm(), nullptr, o);
  ASSERT_TRUE(ds.ok()) << ds.status().message();
  EXPECT_THAT(Documents(Smollm(), ds->train()), ElementsAre("\xC3\xA9", "\xC3\xA9", "\xC3\xA9"));
}

TEST(DatasetTest, BadOptionsAreErrors) {
  TempDir dir;
  dir.Write("a.txt", "alpha");
  DataOptions o = NoSplit();
  o.seq_len = 0;
  EXPECT_FALSE(Dataset::Load(dir.path(), Smollm(), nullptr, o).ok());
  o = NoSplit();
  o.validation_fraction = 1.0;
  auto ds = Dataset::Load(dir.path(), Smollm(), nullptr, o);
  ASSERT_FALSE(ds.ok());
  EXPECT_THAT(ds.status().message(), HasSubstr("validation fraction"));
}

// --- Chat records ---

TEST(ParseChatRecordTest, ReadsMessagesAndIgnoresOtherTopLevelKeys) {
  auto m = ParseChatRecord(
      R"({"id": 7, "messages": [{"role": "user", "content": "hi"}, {"content": "yo", "role": "assistant"}]})");
  ASSERT_TRUE(m.ok()) << m.status().message();
  ASSERT_EQ(m->size(), 2u);
  EXPECT_EQ((*m)[0].role, "user");
  EXPECT_EQ((*m)[0].content, "hi");
  EXPECT_EQ((*m)[1].role, "assistant");
  EXPECT_EQ((*m)[1].content, "yo");
}

TEST(ParseChatRecordTest, MalformedRecordsSayWhatIsWrong) {
  const std::map<std::string, std::string> cases = {
      {R"({"messages": [)", "the record is not valid JSON"},
      {R"([1, 2])", "the record is not a JSON object"},
      {R"({"msgs": []})", "the record has no \"messages\""},
      {R"({"messages": {}})", "\"messages\" is not an array"},
      {R"({"messages": []})", "\"messages\" is empty"},
      {R"({"messages": ["hi"]})", "message 0 is not an object"},
      {R"({"messages": [{"content": "x"}]})", "message 0 has no \"role\""},
      {R"({"messages": [{"role": "user"}]})", "message 0 has no \"content\""},
      {R"({"messages": [{"role": "user", "content": null}]})",
       "message 0: \"content\" is not a string"},
      {R"({"messages": [{"role": "", "content": "x"}]})", "message 0 has an empty \"role\""},
      {R"({"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b", "tool_calls": []}]})",
       "message 1 has the key \"tool_calls\""},
      {R"({"messages": [{"role": "user", "content": "a", "role": "x"}]})", "twice"},
  };
  for (const auto& [line, want] : cases) {
    auto m = ParseChatRecord(line);
    ASSERT_FALSE(m.ok()) << line;
    EXPECT_EQ(m.status().code(), StatusCode::kInvalidArgument);
    EXPECT_THAT(m.status().message(), HasSubstr(want)) << line;
  }
}

TEST(DatasetTest, MalformedJsonlLineNamesFileAndLine) {
  TempDir dir;
  ChatTemplate chatml = Builtin("chatml");
  const std::string file = dir.Write("chats.jsonl",
                                     "{\"messages\":[{\"role\":\"user\",\"content\":\"a\"},{"
                                     "\"role\":\"assistant\",\"content\":\"b\"}]}\n"
                                     "\n"
                                     "{\"messages\":[{\"role\":\"user\"}]}\n");
  auto ds = Dataset::Load(dir.path(), Smollm(), &chatml, NoSplit());
  ASSERT_FALSE(ds.ok());
  EXPECT_EQ(ds.status().message(), "data: " + file + ":3: message 0 has no \"content\"");
}

TEST(DatasetTest, ChatRecordsWithoutATemplateAreAnError) {
  TempDir dir;
  const std::string file =
      dir.Write("c.jsonl", "{\"messages\":[{\"role\":\"user\",\"content\":\"a\"}]}\n");
  auto ds = Dataset::Load(dir.path(), Smollm(), nullptr, NoSplit());
  ASSERT_FALSE(ds.ok());
  EXPECT_THAT(ds.status().message(),
              HasSubstr("data: " + file + ":1: a chat record needs a chat template"));
}

TEST(DatasetTest, TemplateErrorNamesFileAndLine) {
  TempDir dir;
  ChatTemplate mistral = Builtin("mistral");  // raises unless roles alternate user/assistant
  const std::string file = dir.Write("c.jsonl",
                                     "{\"messages\":[{\"role\":\"assistant\",\"content\":"
                                     "\"a\"},{\"role\":\"user\",\"content\":\"b\"}]}\n");
  auto ds = Dataset::Load(dir.path(), Smollm(), &mistral, NoSplit());
  ASSERT_FALSE(ds.ok());
  EXPECT_THAT(ds.status().message(), HasSubstr("data: " + file + ":1: the chat template fails: "));
  EXPECT_THAT(ds.status().message(), HasSubstr("alternate"));
}

const std::vector<ChatMessage> kConversation = {
    {"system", "You answer briefly."}, {"user", "What is two plus two?"}, {"assistant", "Four."},
    {"user", "And three plus three?"}, {"assistant", "Six, of course."},
};

TEST(TokenizeChatRecordTest, SmolLM2TargetsExactlyTheAssistantTurns) {
  const ChatTemplate t = Builtin("smollm2");
  auto chat = TokenizeChatRecord(kConversation, Smollm(), t, DataOptions().chat);
  ASSERT_TRUE(chat.ok()) << chat.status().message();
  EXPECT_FALSE(chat->per_turn);
  ASSERT_EQ(chat->documents.size(), 1u);
  const TokenizedDocument& doc = chat->documents[0];
  // Content and end-of-turn; neither the "\n" after it, nor any system or user token.
  EXPECT_THAT(TargetRuns(Smollm(), doc),
              ElementsAre("Four.<|im_end|>", "Six, of course.<|im_end|>"));
  // The tokens are the rendering (which ends "<|im_end|>\n": no EOS added, the EOS being <|im_end|>
  // already).
  auto text = t.Apply(kConversation, false, "<|im_start|>", "<|im_end|>");
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(Decode(Smollm(), doc.tokens), *text);
  EXPECT_EQ(doc.tokens, Smollm().Encode(*text, false, true));
}

TEST(TokenizeChatRecordTest, SmolLM2DefaultSystemPromptIsNotATarget) {
  // No system message: the template adds its own before the first message.
  const std::vector<ChatMessage> conv = {{"user", "Hi"}, {"assistant", "Hello!"}};
  auto chat = TokenizeChatRecord(conv, Smollm(), Builtin("smollm2"), DataOptions().chat);
  ASSERT_TRUE(chat.ok()) << chat.status().message();
  EXPECT_THAT(TargetRuns(Smollm(), chat->documents[0]), ElementsAre("Hello!<|im_end|>"));
  EXPECT_THAT(Decode(Smollm(), chat->documents[0].tokens),
              HasSubstr("You are a helpful AI assistant named SmolLM"));
  // An assistant message first: the turn starts at its content, after the preamble.
  const std::vector<ChatMessage> first = {{"assistant", "Welcome."}, {"user", "Thanks"}};
  chat = TokenizeChatRecord(first, Smollm(), Builtin("smollm2"), DataOptions().chat);
  ASSERT_TRUE(chat.ok()) << chat.status().message();
  EXPECT_THAT(TargetRuns(Smollm(), chat->documents[0]), ElementsAre("Welcome.<|im_end|>"));
}

TEST(TokenizeChatRecordTest, Llama3TargetsExactlyTheAssistantTurnsWithOneBos) {
  for (const char* name : {"llama3", "llama3.2"}) {
    SCOPED_TRACE(name);
    const ChatTemplate t = Builtin(name);
    auto chat = TokenizeChatRecord(kConversation, Llama3(), t, DataOptions().chat);
    ASSERT_TRUE(chat.ok()) << chat.status().message();
    EXPECT_FALSE(chat->per_turn);
    const TokenizedDocument& doc = chat->documents[0];
    EXPECT_THAT(TargetRuns(Llama3(), doc),
                ElementsAre("Four.<|eot_id|>", "Six, of course.<|eot_id|>"));
    // The template writes BOS; it is not doubled. The document ends with <|eot_id|>, an
    // end-of-generation token: no EOS added.
    ASSERT_FALSE(doc.tokens.empty());
    EXPECT_EQ(doc.tokens[0], Llama3().bos());
    EXPECT_EQ(std::count(doc.tokens.begin(), doc.tokens.end(), Llama3().bos()), 1);
    EXPECT_EQ(doc.tokens.back(), Llama3().TokenId("<|eot_id|>"));
  }
}

TEST(TokenizeChatRecordTest, Llama32DateIsPinnedSoTokensNeverDependOnTheClock) {
  const ChatTemplate t = Builtin("llama3.2");
  auto chat = TokenizeChatRecord(kConversation, Llama3(), t, DataOptions().chat);
  ASSERT_TRUE(chat.ok()) << chat.status().message();
  EXPECT_THAT(Decode(Llama3(), chat->documents[0].tokens), HasSubstr("Today Date: 26 Jul 2024"));
}

TEST(TokenizeChatRecordTest, TemplateThatRewritesPastTurnsGivesOneDocumentPerTurn) {
  // Drops the content of every assistant turn but the last (as reasoning templates drop past
  // thoughts), so rendering k messages is not a prefix of rendering k + 1.
  auto t = ChatTemplate::Parse(
      "{% for m in messages %}<|im_start|>{{ m.role }}\n"
      "{% if m.role != 'assistant' or loop.last %}{{ "
      "m.content }}{% endif %}<|im_end|>\n"
      "{% endfor %}{% if add_generation_prompt "
      "%}<|im_start|>assistant\n{% endif %}");
  ASSERT_TRUE(t.ok()) << t.status().message();
  auto chat = TokenizeChatRecord(kConversation, Smollm(), *t, DataOptions().chat);
  ASSERT_TRUE(chat.ok()) << chat.status().message();
  EXPECT_TRUE(chat->per_turn);
  ASSERT_EQ(chat->documents.size(), 2u);
  EXPECT_THAT(TargetRuns(Smollm(), chat->documents[0]), ElementsAre("Four.<|im_end|>"));
  EXPECT_THAT(TargetRuns(Smollm(), chat->documents[1]), ElementsAre("Six, of course.<|im_end|>"));
  // The second document shows the first answer as the template does: dropped.
  EXPECT_THAT(Decode(Smollm(), chat->documents[1].tokens), ::testing::Not(HasSubstr("Four.")));
}

TEST(TokenizeChatRecordTest, EveryBuiltinTemplateTargetsTheAnswersAndTheirEndOfTurn) {
  // Without a system message (Llama 2 and Mistral refuse one; Qwen and SmolLM2 add theirs).
  const std::vector<ChatMessage> conv = {{"user", "What is two plus two?"},
                                         {"assistant", "Four."},
                                         {"user", "And three?"},
                                         {"assistant", "Six."}};
  for (const std::string& name : ChatTemplate::BuiltinNames()) {
    SCOPED_TRACE(name);
    const Tokenizer& tok = name.starts_with("llama3") ? Llama3() : Smollm();
    auto chat = TokenizeChatRecord(conv, tok, Builtin(name), DataOptions().chat);
    ASSERT_TRUE(chat.ok()) << chat.status().message();
    EXPECT_FALSE(chat->per_turn);
    const TokenizedDocument& doc = chat->documents[0];
    std::vector<std::string> answers;
    for (size_t i = 0; i < doc.tokens.size(); ++i) {
      if (!doc.is_target[i]) continue;
      if (i == 0 || !doc.is_target[i - 1]) answers.emplace_back();
      if (tok.IsEndOfGeneration(doc.tokens[i])) {
        answers.back() += "|END";
        EXPECT_TRUE(i + 1 == doc.tokens.size() || !doc.is_target[i + 1]);
      } else {
        answers.back() += tok.TokenToPiece(doc.tokens[i]);
      }
    }
    // Llama 2 writes ' ' + content + ' ' + EOS.
    if (name == "llama2") {
      EXPECT_THAT(answers, ElementsAre(" Four. |END", " Six. |END"));
    } else {
      EXPECT_THAT(answers, ElementsAre("Four.|END", "Six.|END"));
    }
  }
}

TEST(TokenizeChatRecordTest, ConversationWithoutAssistantHasNoTargets) {
  const std::vector<ChatMessage> conv = {{"user", "Hi"}};
  auto chat = TokenizeChatRecord(conv, Smollm(), Builtin("chatml"), DataOptions().chat);
  ASSERT_TRUE(chat.ok()) << chat.status().message();
  EXPECT_TRUE(TargetRuns(Smollm(), chat->documents[0]).empty());
}

TEST(DatasetTest, ChatAndTextMixInFileOrderWithTargetsOnlyWhereTheyBelong) {
  TempDir dir;
  ChatTemplate t = Builtin("chatml");
  dir.Write("a.jsonl",
            "{\"messages\":[{\"role\":\"user\",\"content\":\"Q\"},{"
            "\"role\":\"assistant\","
            "\"content\":\"A\"}]}\r\n");
  dir.Write("b.txt", "plain");
  auto ds = Dataset::Load(dir.path(), Smollm(), &t, NoSplit(4));
  ASSERT_TRUE(ds.ok()) << ds.status().message();
  EXPECT_EQ(ds->stats().chat_records, 1u);
  EXPECT_EQ(ds->stats().text_documents, 1u);
  const PackedSplit& s = ds->train();
  EXPECT_EQ(Decode(Smollm(), s.tokens()),
            "<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\nA<|im_end|>"
            "\nplain<|im_end|>");
  std::vector<int32_t> targets;
  for (size_t j = 0; j < s.tokens().size(); ++j) {
    if (s.is_target()[j]) targets.push_back(s.tokens()[j]);
  }
  EXPECT_EQ(Decode(Smollm(), targets), "A<|im_end|>plain<|im_end|>");
}

// --- Packing ---

TEST(PackedSplitTest, SequencesOverlapByOneAndOnlyTheLastIsPadded) {
  // Stream 10..19; token 13 is not a target.
  std::vector<int32_t> tokens = {10, 11, 12, 13, 14, 15, 16, 17, 18, 19};
  std::vector<uint8_t> is_target = {1, 1, 1, 0, 1, 1, 1, 1, 1, 1};
  const PackedSplit s(tokens, is_target, /*seq_len=*/4, /*pad_id=*/99);
  EXPECT_EQ(s.num_sequences(), 3u);    // ceil(9 / 4)
  EXPECT_EQ(s.num_loss_tokens(), 8u);  // 11..19 but 13
  std::vector<int32_t> in(4), tg(4);
  s.Sequence(0, in, tg);
  EXPECT_THAT(in, ElementsAre(10, 11, 12, 13));
  EXPECT_THAT(tg, ElementsAre(11, 12, -1, 14));
  s.Sequence(1, in, tg);
  EXPECT_THAT(in, ElementsAre(14, 15, 16, 17));
  EXPECT_THAT(tg, ElementsAre(15, 16, 17, 18));
  s.Sequence(2, in, tg);
  // The last token is an input with nothing to predict; then padding.
  EXPECT_THAT(in, ElementsAre(18, 19, 99, 99));
  EXPECT_THAT(tg, ElementsAre(19, -1, -1, -1));
  std::vector<int32_t> in2(8), tg2(8);
  s.Sequences(1, 2, in2, tg2);
  EXPECT_THAT(in2, ElementsAre(14, 15, 16, 17, 18, 19, 99, 99));
}

TEST(PackedSplitTest, ExactFitHasNoPadding) {
  const PackedSplit s({1, 2, 3, 4, 5}, {1, 1, 1, 1, 1}, 2, 0);
  EXPECT_EQ(s.num_sequences(), 2u);
  std::vector<int32_t> in(2), tg(2);
  s.Sequence(1, in, tg);
  EXPECT_THAT(in, ElementsAre(3, 4));
  EXPECT_THAT(tg, ElementsAre(4, 5));
  EXPECT_EQ(PackedSplit({7}, {1}, 2, 0).num_sequences(), 0u);
}

TEST(DatasetTest, TextDocumentsAreSeparatedByEosAndPackedWithoutGaps) {
  TempDir dir;
  dir.Write("1.txt", "one two");
  dir.Write("2.txt", "three");
  auto ds = Dataset::Load(dir.path(), Smollm(), nullptr, NoSplit(3));
  ASSERT_TRUE(ds.ok()) << ds.status().message();
  const PackedSplit& s = ds->train();
  std::vector<int32_t> expect = Smollm().Encode("one two", false, false);
  expect.push_back(Smollm().eos());
  const std::vector<int32_t> three = Smollm().Encode("three", false, false);
  expect.insert(expect.end(), three.begin(), three.end());
  expect.push_back(Smollm().eos());
  EXPECT_EQ(s.tokens(), expect);
  // Concatenated, the sequences' targets are the stream minus its first token, then -1s.
  std::vector<int32_t> in(s.num_sequences() * 3), tg(s.num_sequences() * 3);
  s.Sequences(0, s.num_sequences(), in, tg);
  for (size_t j = 0; j < tg.size(); ++j) {
    EXPECT_EQ(tg[j], j + 1 < expect.size() ? expect[j + 1] : -1) << j;
    if (j < expect.size()) {
      EXPECT_EQ(in[j], expect[j]) << j;
    }
  }
}

TEST(DatasetTest, Llama3TextDocumentsStartWithBosThatIsNoTarget) {
  TempDir dir;
  dir.Write("a.txt", "hi");
  auto ds = Dataset::Load(dir.path(), Llama3(), nullptr, NoSplit());
  ASSERT_TRUE(ds.ok()) << ds.status().message();
  const PackedSplit& s = ds->train();
  ASSERT_GE(s.tokens().size(), 3u);
  EXPECT_EQ(s.tokens().front(), Llama3().bos());
  EXPECT_EQ(s.tokens().back(), Llama3().eos());
  EXPECT_EQ(s.is_target().front(), 0);
  EXPECT_EQ(s.is_target().back(), 1);
}

// --- Split ---

TEST(DatasetTest, SplitIsStableWhenAFileIsAdded) {
  TempDir dir;
  for (int i = 0; i < 40; ++i)
    dir.Write("n" + std::to_string(i) + ".txt", "note " + std::to_string(i));
  DataOptions o = NoSplit();
  o.validation_fraction = 0.3;
  auto before = Dataset::Load(dir.path(), Smollm(), nullptr, o);
  ASSERT_TRUE(before.ok()) << before.status().message();
  dir.Write("m.txt", "a new note");
  auto after = Dataset::Load(dir.path(), Smollm(), nullptr, o);
  ASSERT_TRUE(after.ok()) << after.status().message();
  const auto val0 = Documents(Smollm(), before->validation()),
             val1 = Documents(Smollm(), after->validation());
  const auto tr0 = Documents(Smollm(), before->train()), tr1 = Documents(Smollm(), after->train());
  EXPECT_GT(val0.size(), 3u);  // ~12 of 40 expected
  EXPECT_GT(tr0.size(), 20u);
  EXPECT_EQ(val0.size() + tr0.size(), 40u);
  std::vector<std::string> val1_old, tr1_old;
  for (const auto& d : val1) {
    if (d != "a new note") val1_old.push_back(d);
  }
  for (const auto& d : tr1) {
    if (d != "a new note") tr1_old.push_back(d);
  }
  EXPECT_EQ(val1_old, val0);
  EXPECT_EQ(tr1_old, tr0);
  EXPECT_EQ(before->stats().validation_documents, val0.size());
}

TEST(DatasetTest, SmallSetStillHoldsOutOneDocumentUnlessTheFractionIsZero) {
  TempDir dir;
  for (int i = 0; i < 3; ++i)
    dir.Write("n" + std::to_string(i) + ".txt", "note " + std::to_string(i));
  DataOptions o = NoSplit();
  o.validation_fraction = 1e-9;  // no key falls below 2^64 * 1e-9 in practice
  auto ds = Dataset::Load(dir.path(), Smollm(), nullptr, o);
  ASSERT_TRUE(ds.ok()) << ds.status().message();
  EXPECT_EQ(ds->stats().validation_documents, 1u);
  EXPECT_EQ(ds->stats().train_documents, 2u);
  o.validation_fraction = 0;
  ds = Dataset::Load(dir.path(), Smollm(), nullptr, o);
  ASSERT_TRUE(ds.ok()) << ds.status().message();
  EXPECT_EQ(ds->stats().validation_documents, 0u);
  EXPECT_EQ(ds->validation().num_sequences(), 0u);
}

TEST(DatasetTest, EverythingHeldOutIsAnError) {
  TempDir dir;
  dir.Write("a.txt", "note");
  DataOptions o = NoSplit();
  o.validation_fraction = 0.999999;
  auto ds = Dataset::Load(dir.path(), Smollm(), nullptr, o);
  ASSERT_FALSE(ds.ok());
  EXPECT_THAT(ds.status().message(), HasSubstr("nothing to train on"));
}

// --- Determinism and the data hash ---

TEST(DatasetTest, SameBytesGiveTheSameStreamsAndHashForAnyThreadCount) {
  TempDir dir;
  ChatTemplate t = Builtin("smollm2");
  for (int i = 0; i < 30; ++i) {
    dir.Write(
        "d" + std::to_string(i % 4) + "/f" + std::to_string(i) + ".md",
        "Document " + std::to_string(i) + " has some words in it.\n\nAnd a second paragraph.");
  }
  std::string jsonl;
  for (int i = 0; i < 20; ++i) {
    jsonl += R"({"messages":[{"role":"user","content":"q)" + std::to_string(i) +
             R"("},{"role":"assistant","content":"a)" + std::to_string(i) + R"("}]})" + "\n";
  }
  dir.Write("chats.jsonl", jsonl);
  DataOptions o;
  o.seq_len = 16;
  o.validation_fraction = 0.2;
  auto one = Dataset::Load(dir.path(), Smollm(), &t, o);
  auto again = Dataset::Load(dir.path(), Smollm(), &t, o);
  ThreadPool pool(2);
  o.pool = &pool;
  auto two = Dataset::Load(dir.path(), Smollm(), &t, o);
  ASSERT_TRUE(one.ok() && again.ok() && two.ok());
  for (const Dataset* d : {&*again, &*two}) {
    EXPECT_EQ(d->train().tokens(), one->train().tokens());
    EXPECT_EQ(d->train().is_target(), one->train().is_target());
    EXPECT_EQ(d->validation().tokens(), one->validation().tokens());
    EXPECT_EQ(d->data_hash(), one->data_hash());
  }
  EXPECT_EQ(one->data_hash().size(), 64u);
  EXPECT_GT(one->validation().num_sequences(), 0u);
  // One byte changed: another hash.
  dir.Write("d0/f0.md", "Document 0 has some words in it.\n\nAnd a second paragraph!");
  o.pool = nullptr;
  auto changed = Dataset::Load(dir.path(), Smollm(), &t, o);
  ASSERT_TRUE(changed.ok());
  EXPECT_NE(changed->data_hash(), one->data_hash());
}

// --- Batches ---

PackedSplit Counting(size_t num_sequences, size_t seq_len) {
  std::vector<int32_t> tokens(num_sequences * seq_len + 1);
  for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = static_cast<int32_t>(i);
  return PackedSplit(tokens, std::vector<uint8_t>(tokens.size(), 1), seq_len, 0);
}

// Which sequence each row of a batch is (its first input / seq_len).
std::vector<int32_t> BatchRows(BatchIterator& it, size_t seq_len) {
  std::vector<int32_t> in(it.num_seqs() * seq_len), tg(it.num_seqs() * seq_len);
  it.Next(in, tg);
  std::vector<int32_t> rows;
  for (size_t s = 0; s < it.num_seqs(); ++s) {
    rows.push_back(in[s * seq_len] / static_cast<int32_t>(seq_len));
    EXPECT_EQ(tg[s * seq_len], in[s * seq_len] + 1);
  }
  return rows;
}

TEST(BatchIteratorTest, EachEpochVisitsEverySequenceOnceInAnOrderOfItsOwn) {
  const PackedSplit split = Counting(37, 4);
  auto it = BatchIterator::Create(split, 1, /*seed=*/42);
  ASSERT_TRUE(it.ok());
  std::vector<std::vector<int32_t>> epochs(3);
  for (auto& e : epochs) {
    for (int i = 0; i < 37; ++i) e.push_back(BatchRows(*it, 4)[0]);
    std::vector<int32_t> sorted = e;
    std::sort(sorted.begin(), sorted.end());
    for (int i = 0; i < 37; ++i) EXPECT_EQ(sorted[i], i);
  }
  EXPECT_NE(epochs[0], epochs[1]);
  EXPECT_NE(epochs[1], epochs[2]);
  EXPECT_EQ(it->cursor(), (DataCursor{3, 0}));
}

TEST(BatchIteratorTest, SameSeedSameOrderOtherSeedOtherOrder) {
  const PackedSplit split = Counting(50, 2);
  auto a = BatchIterator::Create(split, 50, 7);
  auto b = BatchIterator::Create(split, 50, 7);
  auto c = BatchIterator::Create(split, 50, 8);
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  const auto ra = BatchRows(*a, 2), rb = BatchRows(*b, 2), rc = BatchRows(*c, 2);
  EXPECT_EQ(ra, rb);
  EXPECT_NE(ra, rc);
}

TEST(BatchIteratorTest, ShuffleIsPinned) {
  // The order is part of what makes a checkpoint's bytes: it must not change silently. The expected
  // order was computed by a Python transcription of the formula in data.h.
  const PackedSplit split = Counting(10, 1);
  auto it = BatchIterator::Create(split, 10, 1234);
  ASSERT_TRUE(it.ok());
  const std::vector<uint32_t> order = it->order();
  std::string got;
  for (uint32_t v : order) got += std::to_string(v) + " ";
  EXPECT_EQ(got, "2 4 3 0 7 8 1 5 9 6 ");
}

TEST(BatchIteratorTest, ResumedFromACursorContinuesExactly) {
  const PackedSplit split = Counting(23, 3);
  const size_t num_seqs = 5;  // does not divide 23: batches straddle epochs
  auto full = BatchIterator::Create(split, num_seqs, 99);
  ASSERT_TRUE(full.ok());
  for (int stop = 0; stop < 12; ++stop) {
    auto ref = BatchIterator::Create(split, num_seqs, 99);
    ASSERT_TRUE(ref.ok());
    for (int i = 0; i < stop; ++i) BatchRows(*ref, 3);
    const DataCursor saved = ref->cursor();
    auto resumed = BatchIterator::Create(split, num_seqs, 99, saved);
    ASSERT_TRUE(resumed.ok());
    for (int i = 0; i < 8; ++i) {
      EXPECT_EQ(BatchRows(*resumed, 3), BatchRows(*ref, 3)) << "stop " << stop << " batch " << i;
    }
    EXPECT_EQ(resumed->cursor(), ref->cursor());
  }
}

TEST(BatchIteratorTest, RejectsEmptySplitsAndForeignCursors) {
  const PackedSplit split = Counting(4, 2);
  EXPECT_FALSE(BatchIterator::Create(split, 0, 1).ok());
  EXPECT_FALSE(BatchIterator::Create(PackedSplit(), 1, 1).ok());
  auto bad = BatchIterator::Create(split, 1, 1, DataCursor{0, 4});
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(), HasSubstr("position 4 is past the 4 training sequences"));
}

// The tokenizer's corpus: the files Dataset::Load reads, in its order, cut as it cuts them, chat
// records as their messages' contents; the same errors.
TEST(CorpusTextsTest, SameFilesOrderAndCutsAsTheDatasetWithChatContents) {
  TempDir dir;
  dir.Write("b.txt", "second\n");
  dir.Write("a/x.md", "\xEF\xBB\xBF" "first\n");
  dir.Write("c.jsonl",
            R"({"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"yo"}]})"
            "\n");
  dir.Write("skip.bin", "not read");
  DataOptions o = NoSplit();
  auto texts = CorpusTexts(dir.path(), o);
  ASSERT_TRUE(texts.ok()) << texts.status().message();
  EXPECT_THAT(*texts, ElementsAre("first\n", "second\n", "hi", "yo"));

  std::string big;
  for (int i = 0; i < 40; ++i) big += "line " + std::to_string(i) + "\n\n";
  dir.Write("d.txt", big);
  o.max_document_bytes = 64;
  auto cut = CorpusTexts(dir.path() + "/d.txt", o);
  ASSERT_TRUE(cut.ok());
  EXPECT_GT(cut->size(), 3u);
  std::string joined;
  for (const std::string& t : *cut) {
    EXPECT_LE(t.size(), 64u);
    joined += t;
  }
  EXPECT_EQ(joined, big);

  dir.Write("e/bad.txt", "ok\n\xff\n");
  auto bad = CorpusTexts(dir.path() + "/e", o);
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(), HasSubstr("bad.txt: not valid UTF-8 at byte 3 (line 2)"));
  dir.Write("f/c.jsonl", "{\"messages\": []}\n");
  auto chat = CorpusTexts(dir.path() + "/f", o);
  ASSERT_FALSE(chat.ok());
  EXPECT_THAT(chat.status().message(), HasSubstr("c.jsonl:1: "));
}

}  // namespace
}  // namespace pocket::train
