// Scheduler tests on the embedded default model (models/default.gguf, random weights with a
// real byte-level BPE vocabulary): results equal Session::Generate's for the same request,
// alone or batched, with or without a reused prompt prefix; cancellation frees the slot.
#include "runtime/scheduler.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

namespace pocket::runtime {
namespace {

std::shared_ptr<Engine> LoadDefault() {
  EngineOptions o;
  o.threads = 2;
  o.context_length = 256;
  auto e = Engine::Load(std::string(POCKET_SOURCE_DIR) + "/models/default.gguf", o);
  EXPECT_TRUE(e.ok()) << e.status().ToString();
  return e.ok() ? *e : nullptr;
}

GenerateRequest Req(const std::string& prompt, uint64_t seed, int max_tokens = 12) {
  GenerateRequest r;
  r.prompt = prompt;
  r.max_tokens = max_tokens;
  r.sampling.seed = seed;
  r.sampling.temperature = 0.9f;
  return r;
}

std::string Alone(const std::shared_ptr<Engine>& engine, const GenerateRequest& r) {
  auto session = engine->NewSession();
  auto res = session->Generate(r, [](std::string_view) { return true; });
  EXPECT_TRUE(res.ok()) << res.status().ToString();
  return res.ok() ? res->text : "";
}

TEST(SchedulerTest, MatchesSessionAloneAndBatched) {
  auto engine = LoadDefault();
  ASSERT_TRUE(engine);
  const std::vector<GenerateRequest> reqs = {Req("Once upon a time", 1), Req("The quick brown fox", 2),
                                             Req("Hello", 3, 20), Req("A long long prompt about the sea and the sky", 4, 5)};
  std::vector<std::string> want;
  for (const auto& r : reqs) want.push_back(Alone(engine, r));
  size_t nonempty = 0;
  for (const auto& w : want) nonempty += !w.empty();
  EXPECT_GE(nonempty, 2u) << "the comparison needs real text";
  SchedulerOptions opts;
  opts.max_sequences = 4;
  opts.prefill_chunk = 3;  // forces chunked prefill interleaved with decodes
  Scheduler sched(engine, opts);
  // Alone through the scheduler.
  for (size_t i = 0; i < reqs.size(); ++i) {
    auto r = sched.Generate(reqs[i], [](std::string_view) { return true; });
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->text, want[i]) << "request " << i << " alone";
  }
  // All at once, twice over (8 requests on 4 slots: some wait and join between steps).
  std::vector<std::string> got(reqs.size() * 2);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < got.size(); ++i) {
    threads.emplace_back([&, i] {
      auto r = sched.Generate(reqs[i % reqs.size()], [](std::string_view) { return true; });
      got[i] = r.ok() ? r->text : r.status().ToString();
    });
  }
  for (auto& t : threads) t.join();
  for (size_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i], want[i % reqs.size()]) << "batched " << i;
}

TEST(SchedulerTest, ReusesPromptPrefixWithSameResult) {
  auto engine = LoadDefault();
  ASSERT_TRUE(engine);
  SchedulerOptions opts;
  opts.max_sequences = 1;
  Scheduler sched(engine, opts);
  const GenerateRequest first = Req("User: hi there. Assistant: hello. User: and now", 5);
  ASSERT_TRUE(sched.Generate(first, [](std::string_view) { return true; }).ok());
  const GenerateRequest second = Req("User: hi there. Assistant: hello. User: and now tell me more", 6);
  SchedulerStats stats;
  auto r = sched.Generate(second, [](std::string_view) { return true; }, &stats);
  ASSERT_TRUE(r.ok());
  EXPECT_GT(stats.reused_prompt_tokens, 5);
  EXPECT_EQ(r->text, Alone(engine, second));
}

// A request that ends at max_tokens ends when its last token is sampled, without one more
// batched step for it: the slot's cache holds the prompt and the tokens before the last.
TEST(SchedulerTest, LastTokenIsNotEvaluated) {
  auto engine = LoadDefault();
  ASSERT_TRUE(engine);
  SchedulerOptions opts;
  opts.max_sequences = 1;
  Scheduler sched(engine, opts);
  uint64_t used[2];
  int prompt_tokens = 0;
  for (int n : {3, 5}) {
    GenerateRequest r = Req("Once upon a time", 3, n);
    r.sampling.temperature = 0;
    auto g = sched.Generate(r, [](std::string_view) { return true; });
    ASSERT_TRUE(g.ok());
    ASSERT_EQ(g->finish_reason, "length");
    prompt_tokens = g->prompt_tokens;
    used[n == 5] = sched.kv_cache_used_bytes();
  }
  const uint64_t per_token = (used[1] - used[0]) / 2;
  ASSERT_GT(per_token, 0u);
  EXPECT_EQ(used[0], per_token * static_cast<uint64_t>(prompt_tokens + 3 - 1));
}

TEST(SchedulerTest, CancelFreesSlot) {
  auto engine = LoadDefault();
  ASSERT_TRUE(engine);
  SchedulerOptions opts;
  opts.max_sequences = 1;
  Scheduler sched(engine, opts);
  int calls = 0;
  auto r = sched.Generate(Req("Once", 7, 100), [&](std::string_view) { return ++calls < 2; });
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->finish_reason, "cancelled");
  EXPECT_EQ(sched.active(), 0);
  auto next = sched.Generate(Req("Once", 7, 3), [](std::string_view) { return true; });
  EXPECT_TRUE(next.ok());
}

TEST(SchedulerTest, RejectsPromptOverContext) {
  auto engine = LoadDefault();
  ASSERT_TRUE(engine);
  Scheduler sched(engine, SchedulerOptions{});
  std::string big;
  for (int i = 0; i < 400; ++i) big += "word ";
  auto r = sched.Generate(Req(big, 1), [](std::string_view) { return true; });
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
}

TEST(SchedulerTest, EmbeddingIsUnitLength) {
  auto engine = LoadDefault();
  ASSERT_TRUE(engine);
  Scheduler sched(engine, SchedulerOptions{});
  int tokens = 0;
  auto e = sched.Embed("the cat sat", &tokens);
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  EXPECT_GT(tokens, 0);
  double n = 0;
  for (float x : *e) n += double(x) * x;
  EXPECT_NEAR(n, 1.0, 1e-4);
  auto again = sched.Embed("the cat sat", nullptr);
  EXPECT_EQ(*again, *e);
}

}  // namespace
}  // namespace pocket::runtime
