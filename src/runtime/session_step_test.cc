// Tests of Session's step API (Start/Step/Cancel): it is the same generation
// path as Generate, bounded per step, cancellable between steps, and validated
// at Start.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "runtime/engine.h"
#include "runtime/engine_testutil.h"

namespace pocket::runtime {
namespace {

namespace fs = std::filesystem;

class SessionStepTest : public ::testing::Test {
protected:
  static void SetUpTestSuite() {
    path_ = new std::string(
        (fs::temp_directory_path() /
         ("pocket_session_step_test." + std::to_string(getpid()) + ".gguf"))
            .string());
    auto engine = LoadSmallRandomEngine(*path_, 11);
    ASSERT_TRUE(engine.ok()) << engine.status().ToString();
    engine_ = new std::shared_ptr<Engine>(*engine);
  }
  static void TearDownTestSuite() {
    delete engine_;
    std::error_code ec;
    fs::remove(*path_, ec);
    delete path_;
  }
  static Engine &engine() { return **engine_; }

  static GenerateRequest Greedy(const std::string &prompt, int n) {
    GenerateRequest req;
    req.prompt = prompt;
    req.max_tokens = n;
    req.sampling.temperature = 0;
    return req;
  }
  static GenerateRequest Seeded(const std::string &prompt, int n,
                                uint64_t seed) {
    GenerateRequest req;
    req.prompt = prompt;
    req.max_tokens = n;
    req.sampling.temperature = 1.0f;
    req.sampling.top_k = 0;
    req.sampling.top_p = 1;
    req.sampling.min_p = 0;
    req.sampling.seed = seed;
    return req;
  }

  // Drives `req` to the end by hand; `steps` gets every StepResult but the
  // result's copy.
  static GenerateResult StepToEnd(Session &s, const GenerateRequest &req,
                                  int prefill_chunk,
                                  std::vector<StepResult> *steps = nullptr) {
    StepOptions opts;
    opts.prefill_chunk = prefill_chunk;
    const Status started = s.Start(req, opts);
    EXPECT_TRUE(started.ok()) << started.ToString();
    std::string text;
    for (int i = 0; i < 10000; ++i) {
      auto step = s.Step();
      EXPECT_TRUE(step.ok()) << step.status().ToString();
      if (!step.ok())
        break;
      text += step->text;
      if (steps)
        steps->push_back(*step);
      if (step->done) {
        EXPECT_EQ(text, step->result.text);
        EXPECT_FALSE(s.running());
        return step->result;
      }
      EXPECT_TRUE(s.running());
    }
    ADD_FAILURE() << "the request never ended";
    return {};
  }

  // Generate's result and the cache it leaves, on a fresh session.
  static void ExpectSameAsGenerate(const GenerateRequest &req,
                                   int prefill_chunk) {
    auto a = engine().NewSession();
    auto expected = a->Generate(req, nullptr);
    ASSERT_TRUE(expected.ok()) << expected.status().ToString();
    auto b = engine().NewSession();
    const GenerateResult got = StepToEnd(*b, req, prefill_chunk);
    EXPECT_EQ(got.text, expected->text);
    EXPECT_EQ(got.finish_reason, expected->finish_reason);
    EXPECT_EQ(got.prompt_tokens, expected->prompt_tokens);
    EXPECT_EQ(got.completion_tokens, expected->completion_tokens);
    EXPECT_EQ(got.reused_prompt_tokens, expected->reused_prompt_tokens);
    if (req.sampling.seed != kRandomSeed) {
      EXPECT_EQ(got.seed, expected->seed);
    }
    const std::vector<int32_t> ta(a->cached_tokens().begin(),
                                  a->cached_tokens().end());
    const std::vector<int32_t> tb(b->cached_tokens().begin(),
                                  b->cached_tokens().end());
    EXPECT_EQ(ta, tb);
  }

  static std::string *path_;
  static std::shared_ptr<Engine> *engine_;
};

std::string *SessionStepTest::path_ = nullptr;
std::shared_ptr<Engine> *SessionStepTest::engine_ = nullptr;

TEST_F(SessionStepTest, SteppingByHandEqualsGenerateGreedy) {
  for (int chunk : {0, 1, 3, 256}) {
    SCOPED_TRACE("prefill_chunk " + std::to_string(chunk));
    ExpectSameAsGenerate(Greedy("the quick brown fox jumps", 24), chunk);
  }
}

TEST_F(SessionStepTest, SteppingByHandEqualsGenerateSeeded) {
  for (uint64_t seed : {1u, 2u, 3u}) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    ExpectSameAsGenerate(Seeded("once upon a time", 40, seed), 2);
  }
}

TEST_F(SessionStepTest, SteppingByHandEqualsGenerateWithStopStringAndJson) {
  // A stop string taken from the unstopped output, so that it certainly
  // matches.
  auto plain =
      engine().NewSession()->Generate(Seeded("stop here", 40, 5), nullptr);
  ASSERT_TRUE(plain.ok());
  ASSERT_GE(plain->text.size(), 8u);
  GenerateRequest stopped = Seeded("stop here", 40, 5);
  stopped.stop = {plain->text.substr(plain->text.size() / 2, 2)};
  ExpectSameAsGenerate(stopped, 2);

  GenerateRequest json = Seeded("json please", 30, 9);
  json.response_format = ResponseFormat::kJsonObject;
  ExpectSameAsGenerate(json, 4);
}

TEST_F(SessionStepTest, PrefixReuseAcrossStepsEqualsGenerate) {
  auto a = engine().NewSession();
  auto b = engine().NewSession();
  ASSERT_TRUE(a->Generate(Greedy("abc def", 5), nullptr).ok());
  (void)StepToEnd(*b, Greedy("abc def", 5), 2);
  auto expected = a->Generate(Greedy("abc def ghi", 12), nullptr);
  ASSERT_TRUE(expected.ok());
  const GenerateResult got = StepToEnd(*b, Greedy("abc def ghi", 12), 2);
  EXPECT_GT(got.reused_prompt_tokens, 0);
  EXPECT_EQ(got.reused_prompt_tokens, expected->reused_prompt_tokens);
  EXPECT_EQ(got.text, expected->text);
}

TEST_F(SessionStepTest, PrefillChunksAreBounded) {
  std::string prompt;
  for (int i = 0; i < 30; ++i)
    prompt += "word ";
  auto s = engine().NewSession();
  std::vector<StepResult> steps;
  const GenerateResult r = StepToEnd(*s, Greedy(prompt, 3), 7, &steps);
  ASSERT_GT(r.prompt_tokens, 14);
  int prefilled = 0, prefill_steps = 0;
  for (const StepResult &step : steps) {
    EXPECT_LE(step.prompt_tokens_evaluated, 7);
    if (step.prompt_tokens_evaluated > 0)
      ++prefill_steps;
    prefilled += step.prompt_tokens_evaluated;
  }
  EXPECT_EQ(prefilled, r.prompt_tokens);
  EXPECT_EQ(prefill_steps, (r.prompt_tokens + 6) / 7);
  // Each step after the prompt is one decode token; the last sampled one is not
  // evaluated.
  EXPECT_EQ(steps.size(),
            static_cast<size_t>(prefill_steps + r.completion_tokens - 1));
}

TEST_F(SessionStepTest, CancelMidPrefillEndsAtTheNextStepAndKeepsTheCache) {
  std::string prompt;
  for (int i = 0; i < 20; ++i)
    prompt += "cancel ";
  auto s = engine().NewSession();
  StepOptions opts;
  opts.prefill_chunk = 4;
  ASSERT_TRUE(s->Start(Greedy(prompt, 10), opts).ok());
  auto first = s->Step();
  ASSERT_TRUE(first.ok());
  ASSERT_FALSE(first->done);
  EXPECT_EQ(first->prompt_tokens_evaluated, 4);
  s->Cancel();
  EXPECT_TRUE(s->running());
  auto last = s->Step();
  ASSERT_TRUE(last.ok());
  ASSERT_TRUE(last->done);
  EXPECT_EQ(last->prompt_tokens_evaluated, 0);
  EXPECT_EQ(last->result.finish_reason, "cancelled");
  EXPECT_EQ(last->result.completion_tokens, 0);
  EXPECT_TRUE(last->result.text.empty());
  EXPECT_FALSE(s->running());
  EXPECT_EQ(s->cached_tokens().size(), 4u);

  // The four evaluated tokens are reused, and the output is a fresh session's.
  auto again = s->Generate(Greedy(prompt, 10), nullptr);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->reused_prompt_tokens, 4);
  auto fresh = engine().NewSession()->Generate(Greedy(prompt, 10), nullptr);
  ASSERT_TRUE(fresh.ok());
  EXPECT_EQ(again->text, fresh->text);
}

TEST_F(SessionStepTest, CancelMidDecodeReportsTheUsageSoFar) {
  auto s = engine().NewSession();
  ASSERT_TRUE(s->Start(Seeded("decode then cancel", 50, 3)).ok());
  std::string text;
  int steps = 0;
  for (; steps < 6; ++steps) {
    auto step = s->Step();
    ASSERT_TRUE(step.ok());
    ASSERT_FALSE(step->done) << "ended early: " << step->result.finish_reason;
    text += step->text;
  }
  const size_t cached = s->cached_tokens().size();
  s->Cancel();
  auto last = s->Step();
  ASSERT_TRUE(last.ok());
  ASSERT_TRUE(last->done);
  EXPECT_TRUE(last->text.empty());
  EXPECT_EQ(last->result.finish_reason, "cancelled");
  // One prefill step, then five decode steps: six sampled tokens.
  EXPECT_EQ(last->result.completion_tokens, 6);
  EXPECT_EQ(last->result.text, text);
  EXPECT_EQ(s->cached_tokens().size(), cached);
  EXPECT_FALSE(s->running());
  EXPECT_EQ(s->Step().status().code(), StatusCode::kInvalidArgument);
}

TEST_F(SessionStepTest, CancelWithNothingRunningHasNoEffect) {
  auto s = engine().NewSession();
  s->Cancel();
  const GenerateResult r = StepToEnd(*s, Greedy("not cancelled", 6), 0);
  EXPECT_EQ(r.finish_reason, "length");
  EXPECT_EQ(r.completion_tokens, 6);
}

TEST_F(SessionStepTest, StartWhileRunningIsAnError) {
  auto s = engine().NewSession();
  ASSERT_TRUE(s->Start(Greedy("first", 4)).ok());
  EXPECT_EQ(s->Start(Greedy("second", 4)).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s->Generate(Greedy("second", 4), nullptr).status().code(),
            StatusCode::kInvalidArgument);
  // The running request is untouched and runs to its end as if nothing
  // happened.
  std::string text;
  for (;;) {
    auto step = s->Step();
    ASSERT_TRUE(step.ok());
    text += step->text;
    if (step->done)
      break;
  }
  auto expected = engine().NewSession()->Generate(Greedy("first", 4), nullptr);
  ASSERT_TRUE(expected.ok());
  EXPECT_EQ(text, expected->text);
  EXPECT_TRUE(s->Start(Greedy("second", 4)).ok());
}

TEST_F(SessionStepTest, StepWithoutStartIsAnError) {
  auto s = engine().NewSession();
  EXPECT_FALSE(s->running());
  EXPECT_EQ(s->Step().status().code(), StatusCode::kInvalidArgument);
}

TEST_F(SessionStepTest, RequestThatDoesNotFitTheContextFailsAtStart) {
  std::string long_prompt;
  for (int i = 0; i < 400; ++i)
    long_prompt += "word ";
  auto s = engine().NewSession();
  const Status st = s->Start(Greedy(long_prompt, 1));
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("context"), std::string::npos);
  EXPECT_FALSE(s->running());
  EXPECT_TRUE(s->cached_tokens().empty());
  StepOptions bad;
  bad.prefill_chunk = -1;
  EXPECT_EQ(s->Start(Greedy("x", 1), bad).code(), StatusCode::kInvalidArgument);
}

TEST_F(SessionStepTest, ResetEndsARunningRequest) {
  auto s = engine().NewSession();
  ASSERT_TRUE(s->Start(Greedy("reset me", 8)).ok());
  ASSERT_TRUE(s->Step().ok());
  s->Reset();
  EXPECT_FALSE(s->running());
  EXPECT_TRUE(s->cached_tokens().empty());
  const GenerateResult r = StepToEnd(*s, Greedy("reset me", 8), 0);
  EXPECT_EQ(r.reused_prompt_tokens, 0);
}

} // namespace
} // namespace pocket::runtime
