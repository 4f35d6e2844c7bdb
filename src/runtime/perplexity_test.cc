#include "runtime/perplexity.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

namespace pocket::runtime {
namespace {

TEST(PlanPerplexityTest, ChunksAndScoredHalf) {
  auto plan = PlanPerplexity(1000, 128, -1);
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->num_chunks, 7);  // floor(1000/128)
  EXPECT_EQ(plan->first, 64);
  EXPECT_EQ(plan->scored_per_chunk, 63);
  EXPECT_EQ(PlanPerplexity(1000, 128, 3)->num_chunks, 3);
  EXPECT_EQ(PlanPerplexity(1001, 7, -1)->first, 3);
  EXPECT_EQ(PlanPerplexity(1001, 7, -1)->scored_per_chunk, 3);
}

TEST(PlanPerplexityTest, RejectsTooFewTokens) {
  const auto plan = PlanPerplexity(255, 128, -1);
  ASSERT_FALSE(plan.ok());
  EXPECT_EQ(plan.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(plan.status().message().find("at least 256 tokens"), std::string::npos);
  EXPECT_FALSE(PlanPerplexity(100, 1, -1).ok());
}

TEST(PerplexityChunkInputTest, ReplacesFirstTokenWithBos) {
  const std::vector<int32_t> tokens = {1, 10, 11, 12, 13, 14, 15, 16};
  EXPECT_EQ(PerplexityChunkInput(tokens, 1, 4, 1), (std::vector<int32_t>{1, 14, 15, 16}));
  EXPECT_EQ(PerplexityChunkInput(tokens, 1, 4, std::nullopt),
            (std::vector<int32_t>{13, 14, 15, 16}));
}

TEST(NegLogLikelihoodTest, MatchesClosedForm) {
  const std::vector<float> logits = {1, 2, 3};
  const double z = std::exp(1.0) + std::exp(2.0) + std::exp(3.0);
  EXPECT_NEAR(NegLogLikelihood(logits, 1), -(2 - std::log(z)), 1e-6);
  // Large logits do not overflow thanks to the max shift.
  EXPECT_NEAR(NegLogLikelihood(std::vector<float>{1000, 1000}, 0), std::log(2.0), 1e-9);
}

TEST(PerplexityAccumulatorTest, UniformModelHasPerplexityVocabSize) {
  // A model that always predicts uniformly over V tokens has PPL = V and zero spread.
  const size_t vocab = 5;
  auto plan = PlanPerplexity(16, 8, -1);
  ASSERT_TRUE(plan.ok());
  std::vector<float> logits(static_cast<size_t>(plan->scored_per_chunk) * vocab, 0.5f);
  std::vector<int32_t> chunk = {0, 1, 2, 3, 4, 0, 1, 2};
  PerplexityAccumulator acc;
  acc.AddChunk(*plan, logits, vocab, chunk);
  EXPECT_EQ(acc.count(), 3);
  EXPECT_NEAR(acc.Perplexity(), 5.0, 1e-5);
  EXPECT_EQ(acc.Uncertainty(), 0.0);
}

TEST(PerplexityAccumulatorTest, UncertaintyIsStandardErrorTimesPpl) {
  PerplexityAccumulator acc;
  acc.Add(1.0);
  acc.Add(3.0);
  // mean 2, population var 1, sd of mean = sqrt(1/1) = 1.
  EXPECT_NEAR(acc.Perplexity(), std::exp(2.0), 1e-9);
  EXPECT_NEAR(acc.Uncertainty(), std::exp(2.0), 1e-9);
}

TEST(PerplexityAccumulatorTest, TargetsAreTheTokenAfterEachScoredPosition) {
  // n_ctx 4: first = 2, one scored row (position 2) predicting chunk[3].
  auto plan = PlanPerplexity(8, 4, 1);
  ASSERT_TRUE(plan.ok());
  ASSERT_EQ(plan->scored_per_chunk, 1);
  const std::vector<float> row = {0, 0, 0, 10};  // confident in token 3
  PerplexityAccumulator good, bad;
  good.AddChunk(*plan, row, 4, std::vector<int32_t>{9, 9, 9, 3});
  bad.AddChunk(*plan, row, 4, std::vector<int32_t>{9, 9, 9, 0});
  EXPECT_LT(good.Perplexity(), 1.01);
  EXPECT_GT(bad.Perplexity(), 1000);
}

}  // namespace
}  // namespace pocket::runtime
