#include "runtime/perplexity.h"

#include <cmath>
#include <string>

#include "base/check.h"

namespace pocket::runtime {

Result<PerplexityPlan> PlanPerplexity(size_t num_tokens, int n_ctx, int max_chunks) {
  if (n_ctx < 2) {
    return Status::InvalidArgument("perplexity: context size must be at least 2, got " +
                                   std::to_string(n_ctx));
  }
  if (num_tokens < 2 * static_cast<size_t>(n_ctx)) {
    return Status::InvalidArgument(
        "perplexity: you need at least " + std::to_string(2 * n_ctx) +
        " tokens to evaluate perplexity with a context of " + std::to_string(n_ctx) +
        "; the text tokenizes to only " + std::to_string(num_tokens) + " tokens");
  }
  PerplexityPlan plan;
  plan.n_ctx = n_ctx;
  plan.num_chunks = static_cast<int>(num_tokens / static_cast<size_t>(n_ctx));
  if (max_chunks >= 0 && max_chunks < plan.num_chunks) plan.num_chunks = max_chunks;
  plan.first = n_ctx / 2;
  plan.scored_per_chunk = n_ctx - plan.first - 1;
  return plan;
}

std::vector<int32_t> PerplexityChunkInput(std::span<const int32_t> tokens, int chunk, int n_ctx,
                                          std::optional<int32_t> bos) {
  const size_t start = static_cast<size_t>(chunk) * static_cast<size_t>(n_ctx);
  PK_CHECK(start + static_cast<size_t>(n_ctx) <= tokens.size());
  std::vector<int32_t> input(tokens.begin() + static_cast<ptrdiff_t>(start),
                             tokens.begin() + static_cast<ptrdiff_t>(start + n_ctx));
  if (bos) input[0] = *bos;
  return input;
}

double NegLogLikelihood(std::span<const float> logits, int32_t target) {
  PK_CHECK(!logits.empty() && target >= 0 && static_cast<size_t>(target) < logits.size());
  float max_logit = logits[0];
  for (float l : logits) max_logit = std::max(max_logit, l);
  double sum_exp = 0.0;
  for (float l : logits) sum_exp += std::exp(l - max_logit);  // float exp, double sum
  return -(static_cast<double>(logits[static_cast<size_t>(target)] - max_logit) -
           std::log(sum_exp));
}

void PerplexityAccumulator::AddChunk(const PerplexityPlan& plan, std::span<const float> logits,
                                     size_t vocab_size, std::span<const int32_t> chunk_tokens) {
  PK_CHECK(chunk_tokens.size() == static_cast<size_t>(plan.n_ctx));
  PK_CHECK(logits.size() >= static_cast<size_t>(plan.scored_per_chunk) * vocab_size);
  for (int i = 0; i < plan.scored_per_chunk; ++i) {
    Add(NegLogLikelihood(logits.subspan(static_cast<size_t>(i) * vocab_size, vocab_size),
                         chunk_tokens[static_cast<size_t>(plan.first + i + 1)]));
  }
}

double PerplexityAccumulator::Perplexity() const {
  return count_ == 0 ? 0.0 : std::exp(nll_ / count_);
}

double PerplexityAccumulator::Uncertainty() const {
  if (count_ < 2) return 0.0;
  const double mean = nll_ / count_;
  const double var = nll2_ / count_ - mean * mean;
  if (var <= 0) return 0.0;
  return std::sqrt(var / (count_ - 1)) * std::exp(mean);
}

}  // namespace pocket::runtime
