#include "server/truncate.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <string>
#include <vector>

#include "runtime/sampling.h"
#include "server/fake_model.h"

namespace pocket::server {
namespace {

// The rule TruncateToFit replaced, kept as the oracle: drop the first non-system message
// (never the last), count the whole prompt again, until it fits or nothing is left.
struct BruteForce {
  int dropped = 0;
  int prompt_tokens = 0;
  bool fits = false;
  std::vector<runtime::ChatMessage> messages;
};
BruteForce DropOneAtATime(const Model& model, runtime::GenerateRequest r, int reserve, int ctx) {
  BruteForce out;
  out.prompt_tokens = *model.CountPromptTokens(r);
  auto& msgs = r.messages;
  while (out.prompt_tokens + reserve > ctx) {
    auto victim = std::find_if(msgs.begin(), msgs.end() - 1,
                               [](const runtime::ChatMessage& m) { return m.role != "system"; });
    if (victim == msgs.end() - 1) break;
    msgs.erase(victim);
    ++out.dropped;
    out.prompt_tokens = *model.CountPromptTokens(r);
  }
  out.fits = out.prompt_tokens + reserve <= ctx;
  out.messages = msgs;
  return out;
}

// A model whose count is not a sum over messages: a default system block is added when the
// prompt has no system message (as Llama 3's template does), and every 7th character of
// the rendered prompt counts twice (merges across message boundaries). Dropping a message
// still never lengthens the prompt, which is all TruncateToFit's search relies on.
class NonAdditiveModel : public FakeModel {
 public:
  NonAdditiveModel() : FakeModel("non-additive", 1 << 20, 0) {}
  Result<int> CountPromptTokens(const runtime::GenerateRequest& r) const override {
    ++counts;
    const std::string p = RenderPrompt(r);
    const bool has_system = std::any_of(r.messages.begin(), r.messages.end(),
                                        [](const auto& m) { return m.role == "system"; });
    return static_cast<int>(p.size() + p.size() / 7) + (has_system ? 0 : 40) + 1;
  }
  mutable std::atomic<int> counts{0};
};

class CountingFakeModel : public FakeModel {
 public:
  CountingFakeModel() : FakeModel("fake", 1 << 20, 0) {}
  Result<int> CountPromptTokens(const runtime::GenerateRequest& r) const override {
    ++counts;
    return FakeModel::CountPromptTokens(r);
  }
  mutable std::atomic<int> counts{0};
};

runtime::GenerateRequest RandomChat(runtime::Rng& rng, int n) {
  runtime::GenerateRequest r;
  for (int i = 0; i < n; ++i) {
    const uint64_t roll = rng.NextU64() % 10;
    runtime::ChatMessage m;
    m.role = roll < 2 ? "system" : roll < 6 ? "user" : "assistant";
    m.content = std::string(rng.NextU64() % 40, static_cast<char>('a' + i % 26));
    r.messages.push_back(std::move(m));
  }
  return r;
}

void ExpectSameAsBruteForce(const Model& model, uint64_t seed) {
  runtime::Rng rng(seed);
  for (int round = 0; round < 400; ++round) {
    const int n = 1 + static_cast<int>(rng.NextU64() % 14);
    runtime::GenerateRequest r = RandomChat(rng, n);
    const int reserve = 1 + static_cast<int>(rng.NextU64() % 20);
    const int whole = *model.CountPromptTokens(r);
    const int ctx = std::max(1, static_cast<int>(rng.NextU64() % static_cast<uint64_t>(whole + 1)));
    if (whole + reserve <= ctx) continue;
    const BruteForce want = DropOneAtATime(model, r, reserve, ctx);
    auto got = TruncateToFit(model, &r, whole, reserve, ctx, nullptr);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    const std::string what = "seed " + std::to_string(seed) + " round " + std::to_string(round);
    EXPECT_EQ(got->dropped_messages, want.dropped) << what;
    EXPECT_EQ(got->prompt_tokens, want.prompt_tokens) << what;
    EXPECT_EQ(got->fits, want.fits) << what;
    ASSERT_EQ(r.messages.size(), want.messages.size()) << what;
    for (size_t i = 0; i < r.messages.size(); ++i) {
      EXPECT_EQ(r.messages[i].role, want.messages[i].role) << what;
      EXPECT_EQ(r.messages[i].content, want.messages[i].content) << what;
    }
  }
}

TEST(TruncateTest, DropsWhatDroppingOneAtATimeDrops) {
  FakeModel model("fake", 1 << 20, 0);
  for (uint64_t seed : {1, 2, 3}) ExpectSameAsBruteForce(model, seed);
}

TEST(TruncateTest, DropsWhatDroppingOneAtATimeDropsWhenCountsAreNotAdditive) {
  NonAdditiveModel model;
  for (uint64_t seed : {4, 5, 6}) ExpectSameAsBruteForce(model, seed);
}

TEST(TruncateTest, ThousandsOfMessagesTakeAFewWholeCounts) {
  // 4,000 messages (the request limit is 4,096): the old loop counted the whole prompt
  // once per dropped message (~3,000 times here); now each message is counted alone once
  // and the whole prompt a handful of times.
  CountingFakeModel model;
  runtime::GenerateRequest r;
  r.messages.push_back({"system", "rules"});
  for (int i = 0; i < 4000; ++i)
    r.messages.push_back({i % 2 ? "assistant" : "user", std::string(50, 'x')});
  const int whole = *model.CountPromptTokens(r);
  const int ctx = whole / 4;
  model.counts = 0;
  const auto t0 = std::chrono::steady_clock::now();
  auto got = TruncateToFit(model, &r, whole, 16, ctx, nullptr);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_TRUE(got->fits);
  EXPECT_LE(got->prompt_tokens + 16, ctx);
  EXPECT_LE(model.counts.load(), 4001 + 4);  // one per message alone, then ~2 whole counts
  EXPECT_LT(seconds, 30.0);                  // generous: it takes milliseconds
  EXPECT_EQ(r.messages.front().role, "system");
  // The same answer as the old rule (its count of drops follows from the sizes: each
  // dropped message is "user: " or "assistant: " + 50 + "\n").
  int tokens = whole, dropped = 0;
  for (size_t i = 1; tokens + 16 > ctx; ++i, ++dropped)
    tokens -= static_cast<int>((i % 2 ? 6 : 11) + 50 + 1);
  EXPECT_EQ(got->dropped_messages, dropped);
  EXPECT_EQ(got->prompt_tokens, tokens);
}

TEST(TruncateTest, StopsBetweenStepsWhenAskedAndLeavesTheRequestAlone) {
  CountingFakeModel model;
  runtime::GenerateRequest r;
  for (int i = 0; i < 3000; ++i) r.messages.push_back({"user", std::string(20, 'y')});
  const int whole = *model.CountPromptTokens(r);
  model.counts = 0;
  int asked = 0;
  auto got = TruncateToFit(model, &r, whole, 1, whole / 2, [&] { return ++asked > 100; });
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), StatusCode::kCancelled);
  EXPECT_LE(model.counts.load(), 100);
  EXPECT_EQ(r.messages.size(), 3000u);
}

TEST(TruncateTest, NothingToDropLeavesTheRequestAndSaysItDoesNotFit) {
  FakeModel model("fake", 1 << 20, 0);
  runtime::GenerateRequest r;
  r.messages = {{"system", std::string(100, 's')}, {"user", std::string(100, 'u')}};
  const int whole = *model.CountPromptTokens(r);
  auto got = TruncateToFit(model, &r, whole, 1, 50, nullptr);
  ASSERT_TRUE(got.ok());
  EXPECT_FALSE(got->fits);
  EXPECT_EQ(got->dropped_messages, 0);
  EXPECT_EQ(got->prompt_tokens, whole);
  EXPECT_EQ(r.messages.size(), 2u);
}

}  // namespace
}  // namespace pocket::server
