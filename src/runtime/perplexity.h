// Perplexity exactly as llama.cpp's tools/perplexity/perplexity.cpp defines it, so the
// figures are comparable with `llama-perplexity`:
//   - the whole text is tokenized once, with the tokenizer's special tokens (BOS when the
//     model adds one) and without parsing special-token text;
//   - it is cut into floor(num_tokens / n_ctx) chunks of n_ctx tokens (at least 2 chunks'
//     worth of tokens is required); each chunk is evaluated from an empty KV cache;
//   - when the model adds BOS, the first token of every chunk is replaced by BOS;
//   - only the second half is scored: logits at positions first = n_ctx/2 .. n_ctx-2
//     predict the tokens at first+1 .. n_ctx-1 (n_ctx - first - 1 tokens per chunk);
//   - -log p uses a float max, a double sum of expf, as log_softmax() there;
//   - PPL = exp(mean nll); its uncertainty = PPL * sqrt((E[nll^2] - E[nll]^2) / (count-1)).
// Called by `pocket perplexity` (through RunPerplexity in engine.h) and tests.
// Thread safety: values; not thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "base/status.h"

namespace pocket::runtime {

struct PerplexityPlan {
  int n_ctx = 0;
  int num_chunks = 0;
  int first = 0;             // n_ctx / 2: the first position whose logits are scored
  int scored_per_chunk = 0;  // n_ctx - first - 1
};

// InvalidArgument when n_ctx < 2 or num_tokens < 2 * n_ctx (llama.cpp's requirement).
// max_chunks < 0: all chunks.
Result<PerplexityPlan> PlanPerplexity(size_t num_tokens, int n_ctx, int max_chunks);

// The n_ctx tokens fed for chunk `chunk`: tokens[chunk*n_ctx, +n_ctx), the first replaced by
// `bos` when given. REQUIRES: the chunk lies inside `tokens`.
std::vector<int32_t> PerplexityChunkInput(std::span<const int32_t> tokens, int chunk, int n_ctx,
                                          std::optional<int32_t> bos);

// -log softmax(logits)[target], computed as llama.cpp's log_softmax().
double NegLogLikelihood(std::span<const float> logits, int32_t target);

class PerplexityAccumulator {
 public:
  void Add(double nll) {
    nll_ += nll;
    nll2_ += nll * nll;
    ++count_;
  }
  // Scores one chunk: `logits` holds rows for positions plan.first .. n_ctx-2 (row-major,
  // `vocab_size` floats each, at least plan.scored_per_chunk rows); targets come from the
  // original tokens of the chunk (`chunk_tokens`, n_ctx of them).
  void AddChunk(const PerplexityPlan& plan, std::span<const float> logits, size_t vocab_size,
                std::span<const int32_t> chunk_tokens);
  int count() const { return count_; }
  // exp(mean nll) so far; the running figure llama.cpp prints as "[i]x,".
  double Perplexity() const;
  // PPL * standard error of the mean nll; 0 when fewer than 2 tokens or a non-positive
  // variance (llama.cpp then prints an error instead).
  double Uncertainty() const;

 private:
  double nll_ = 0, nll2_ = 0;
  int count_ = 0;
};

}  // namespace pocket::runtime
