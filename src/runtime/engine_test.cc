#include "runtime/engine.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "runtime/engine_impl.h"
#include "runtime/engine_testutil.h"
#include "runtime/measure.h"
#include "tokenizer/tokenizer.h"

namespace pocket::runtime {
namespace {

namespace fs = std::filesystem;

class EngineTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    path_ = new std::string((fs::temp_directory_path() /
                             ("pocket_engine_test." + std::to_string(getpid()) + ".gguf"))
                                .string());
    auto engine = LoadSmallRandomEngine(*path_, 7);
    ASSERT_TRUE(engine.ok()) << engine.status().ToString();
    engine_ = new std::shared_ptr<Engine>(*engine);
  }
  static void TearDownTestSuite() {
    delete engine_;
    std::error_code ec;
    fs::remove(*path_, ec);
    delete path_;
  }

  static GenerateRequest Greedy(const std::string& prompt, int n) {
    GenerateRequest req;
    req.prompt = prompt;
    req.max_tokens = n;
    req.sampling.temperature = 0;
    return req;
  }

  static Engine& engine() { return **engine_; }
  static std::string* path_;
  static std::shared_ptr<Engine>* engine_;
};

std::string* EngineTest::path_ = nullptr;
std::shared_ptr<Engine>* EngineTest::engine_ = nullptr;

TEST_F(EngineTest, LoadReportsContextAndRejectsMissingFile) {
  EXPECT_EQ(engine().context_length(), 256);
  EXPECT_EQ(engine().threads(), 1);
  EXPECT_GT(engine().weight_bytes(), 0u);
  EXPECT_FALSE(Engine::Load("/nonexistent.gguf", {}).ok());
  EngineOptions too_big;
  too_big.context_length = 100000;
  EXPECT_EQ(Engine::Load(*path_, too_big).status().code(), StatusCode::kInvalidArgument);
}

TEST_F(EngineTest, StreamedChunksConcatenateToResultText) {
  auto s = engine().NewSession();
  std::string streamed;
  auto r = s->Generate(Greedy("hello", 20), [&](std::string_view t) {
    streamed += t;
    return true;
  });
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(streamed, r->text);
  EXPECT_LE(r->completion_tokens, 20);
  if (r->completion_tokens == 20) {
    EXPECT_EQ(r->finish_reason, "length");
  }
  EXPECT_GT(r->prompt_tokens, 0);
}

TEST_F(EngineTest, PrefixReuseGivesTheSameTokensAsAFreshSession) {
  // A session that has already seen "abc def" continues "abc def ghi" from its cache; the
  // result must equal a fresh session's (the cache reuse is exact).
  auto warm = engine().NewSession();
  ASSERT_TRUE(warm->Generate(Greedy("abc def", 5), nullptr).ok());
  auto reused = warm->Generate(Greedy("abc def ghi", 16), nullptr);
  ASSERT_TRUE(reused.ok());
  EXPECT_GT(reused->reused_prompt_tokens, 0);
  auto fresh_session = engine().NewSession();
  auto fresh = fresh_session->Generate(Greedy("abc def ghi", 16), nullptr);
  ASSERT_TRUE(fresh.ok());
  EXPECT_EQ(fresh->reused_prompt_tokens, 0);
  EXPECT_GT(fresh->completion_tokens, 0);
  EXPECT_EQ(reused->text, fresh->text);
  EXPECT_EQ(reused->completion_tokens, fresh->completion_tokens);

  // The identical prompt again: everything but the last token is reused.
  auto again = warm->Generate(Greedy("abc def ghi", 16), nullptr);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->reused_prompt_tokens, again->prompt_tokens - 1);
  EXPECT_EQ(again->text, fresh->text);

  warm->Reset();
  EXPECT_TRUE(warm->cached_tokens().empty());
  auto after_reset = warm->Generate(Greedy("abc def ghi", 16), nullptr);
  ASSERT_TRUE(after_reset.ok());
  EXPECT_EQ(after_reset->reused_prompt_tokens, 0);
  EXPECT_EQ(after_reset->text, fresh->text);
}

// A request that ends at max_tokens ends when its last token is sampled: that token is
// never run through the model (the cache holds the prompt and the tokens before it).
TEST_F(EngineTest, LastTokenIsNotEvaluated) {
  auto session = engine().NewSession();
  auto r = session->Generate(Greedy("abc def ghi", 5), nullptr);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->finish_reason, "length");
  EXPECT_EQ(session->cached_tokens().size(), static_cast<size_t>(r->prompt_tokens + 5 - 1));
}

TEST_F(EngineTest, SameSeedSameTextDifferentSeedDifferentText) {
  GenerateRequest req;
  req.prompt = "seed test";
  req.max_tokens = 24;
  req.sampling.temperature = 1.0f;
  req.sampling.top_k = 0;
  req.sampling.top_p = 1;
  req.sampling.min_p = 0;
  req.sampling.seed = 99;
  auto a = engine().NewSession()->Generate(req, nullptr);
  auto b = engine().NewSession()->Generate(req, nullptr);
  req.sampling.seed = 100;
  auto c = engine().NewSession()->Generate(req, nullptr);
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_EQ(a->seed, 99u);
  EXPECT_EQ(a->text, b->text);
  EXPECT_NE(a->text, c->text);
}

TEST_F(EngineTest, ReturningFalseCancels) {
  auto s = engine().NewSession();
  GenerateRequest req = Greedy("cancel me", 50);
  req.sampling.temperature = 1.0f;
  req.sampling.seed = 1;
  int calls = 0;
  auto r = s->Generate(req, [&](std::string_view) { return ++calls < 2; });
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->finish_reason, "cancelled");
  EXPECT_EQ(calls, 2);
}

TEST_F(EngineTest, PromptLongerThanContextIsInvalidArgument) {
  std::string long_prompt;
  for (int i = 0; i < 400; ++i) long_prompt += "word ";
  auto r = engine().NewSession()->Generate(Greedy(long_prompt, 1), nullptr);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("context"), std::string::npos);
}

TEST_F(EngineTest, GenerationStopsAtContextEnd) {
  auto r = engine().NewSession()->Generate(Greedy("fill the context", -1), nullptr);
  ASSERT_TRUE(r.ok());
  if (r->finish_reason == "length") {
    EXPECT_EQ(r->prompt_tokens + r->completion_tokens, engine().context_length() + 1);
  }
}

TEST_F(EngineTest, ChatMessagesGoThroughTheTemplate) {
  std::vector<ChatMessage> messages = {{"user", "hi"}};
  auto text = engine().ApplyChatTemplate(messages, true);
  ASSERT_TRUE(text.ok()) << text.status().ToString();
  EXPECT_NE(text->find("hi"), std::string::npos);
  EXPECT_NE(text->find("assistant"), std::string::npos);
  GenerateRequest req;
  req.messages = messages;
  req.max_tokens = 4;
  req.sampling.temperature = 0;
  auto r = engine().NewSession()->Generate(req, nullptr);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_GT(r->prompt_tokens, 3);
}

TEST_F(EngineTest, PreTokenizedPromptGeneratesWhatTheMessagesWould) {
  GenerateRequest req;
  req.messages = {{"system", "be brief"}, {"user", "hi there"}};
  req.max_tokens = 8;
  req.sampling.seed = 11;
  auto tokens = engine().TokenizePrompt(req);
  ASSERT_TRUE(tokens.ok()) << tokens.status().ToString();
  auto from_messages = engine().NewSession()->Generate(req, nullptr);
  ASSERT_TRUE(from_messages.ok()) << from_messages.status().ToString();
  EXPECT_EQ(from_messages->prompt_tokens, static_cast<int>(tokens->size()));

  // The ids stand for the prompt: the messages are not read again (here they say
  // something else entirely), and TokenizePrompt hands the ids back as they are.
  GenerateRequest pre = req;
  pre.prompt_tokens = *tokens;
  pre.messages = {{"user", "something else"}};
  EXPECT_EQ(*engine().TokenizePrompt(pre), *tokens);
  auto from_ids = engine().NewSession()->Generate(pre, nullptr);
  ASSERT_TRUE(from_ids.ok()) << from_ids.status().ToString();
  EXPECT_EQ(from_ids->text, from_messages->text);
  EXPECT_EQ(from_ids->prompt_tokens, from_messages->prompt_tokens);
  EXPECT_EQ(from_ids->completion_tokens, from_messages->completion_tokens);
}

TEST_F(EngineTest, PreTokenizedPromptOutsideTheVocabularyIsRefused) {
  GenerateRequest req = Greedy("", 4);
  req.prompt_tokens = {1, 2, engine().config().vocab_size};
  auto r = engine().NewSession()->Generate(req, nullptr);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("outside the vocabulary"), std::string::npos);
  req.prompt_tokens = {1, -1};
  EXPECT_EQ(engine().NewSession()->Generate(req, nullptr).status().code(),
            StatusCode::kInvalidArgument);
}

TEST_F(EngineTest, CheckMemorySeesTheEstimateBeforeTheWeightsAndItsErrorStopsTheLoad) {
  EngineOptions opts;
  opts.threads = 1;
  opts.context_length = 64;
  std::vector<MemoryEstimate> seen;
  opts.check_memory = [&](const MemoryEstimate& e) {
    seen.push_back(e);
    return Status::Ok();
  };
  opts.max_sequences = 1;
  ASSERT_TRUE(Engine::Load(*path_, opts).ok());
  opts.max_sequences = 3;
  ASSERT_TRUE(Engine::Load(*path_, opts).ok());
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0].context_length, 64);
  EXPECT_EQ(seen[0].weights_bytes, fs::file_size(*path_));
  // 2 layers x 2 KV heads x 16 dims, K and V, F16, 64 positions.
  EXPECT_EQ(seen[0].kv_cache_bytes, 2u * 2u * 32u * 2u * 64u);
  EXPECT_EQ(seen[1].kv_cache_bytes, 3 * seen[0].kv_cache_bytes);
  EXPECT_GT(seen[0].compute_bytes(), 0u);
  EXPECT_EQ(seen[0].total(),
            seen[0].weights_bytes + seen[0].kv_cache_bytes + seen[0].compute_bytes());

  opts.context_length = 0;  // the model's 256
  opts.check_memory = [&](const MemoryEstimate& e) {
    seen.push_back(e);
    return Status::ResourceExhausted("too big for this test");
  };
  auto refused = Engine::Load(*path_, opts);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(refused.status().message(), "too big for this test");
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_EQ(seen[2].context_length, 256);
}

TEST_F(EngineTest, PerplexityInTwoHalvesEqualsOneFullPass) {
  std::string text;
  for (int i = 0; i < 60; ++i) text += "the quick brown fox jumps over the lazy dog. ";
  PerplexityOptions opts;
  opts.n_ctx = 32;
  opts.max_chunks = 2;
  std::vector<double> seen;
  auto report = RunPerplexity(engine(), text, opts, [&](int, double p) { seen.push_back(p); });
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(report->plan.num_chunks, 2);
  EXPECT_EQ(seen, report->running_ppl);
  EXPECT_GT(report->ppl, 1.0);
  // An untrained model over 512 tokens is close to uniform.
  EXPECT_LT(report->ppl, 5000.0);
  EXPECT_GT(report->uncertainty, 0.0);

  // RunPerplexity evaluates each chunk in two halves (logits only for the second); one
  // full pass with all logits must give the same figure.
  EngineImpl& eng = ImplOf(engine());
  const auto tokens = eng.tokenizer->Encode(text, true, false);
  const std::optional<int32_t> bos =
      report->add_bos ? std::optional<int32_t>(eng.tokenizer->bos()) : std::nullopt;
  auto cache = eng.model->NewKvCache(32, kKvDType);
  ASSERT_TRUE(cache.ok());
  PerplexityAccumulator acc;
  const size_t vocab = static_cast<size_t>(engine().config().vocab_size);
  for (int chunk = 0; chunk < 2; ++chunk) {
    const auto input = PerplexityChunkInput(tokens, chunk, 32, bos);
    cache->Clear();
    model::BatchEntry entry;
    entry.cache = &*cache;
    entry.tokens = input;
    entry.all_logits = true;
    std::vector<float> logits;
    ASSERT_TRUE(eng.model->Forward(std::span<model::BatchEntry>(&entry, 1), &logits).ok());
    acc.AddChunk(report->plan, std::span<const float>(logits).subspan(16 * vocab), vocab,
                 std::span<const int32_t>(tokens).subspan(static_cast<size_t>(chunk) * 32, 32));
  }
  EXPECT_NEAR(acc.Perplexity(), report->ppl, 1e-6 * report->ppl);
}

TEST_F(EngineTest, BenchReturnsOneTimingPerRepetition) {
  auto pp = BenchPromptProcessing(engine(), 16, 2);
  ASSERT_TRUE(pp.ok());
  EXPECT_EQ(pp->size(), 2u);
  auto tg = BenchTokenGeneration(engine(), 4, 3);
  ASSERT_TRUE(tg.ok());
  EXPECT_EQ(tg->size(), 3u);
  for (double s : *tg) EXPECT_GT(s, 0);
  EXPECT_GT(CountParameters(engine().config()), 512u * 64u);
}

}  // namespace
}  // namespace pocket::runtime
