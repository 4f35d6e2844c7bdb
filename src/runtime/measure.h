// Whole-model measurements behind `pocket perplexity` and `pocket bench`, on an Engine's
// model directly (no sampling, no chat template). Definitions follow llama.cpp's
// llama-perplexity (see perplexity.h) and llama-bench (pp: one batched forward pass of
// n_prompt tokens into an empty cache; tg: n_gen single-token forward passes from an empty
// cache; tokens are random ids, the first one BOS when the model adds BOS; one untimed
// warm-up run before the timed repetitions).
// Thread safety: each call holds the engine's forward lock while it runs forward passes.
#pragma once

#include <functional>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "runtime/engine.h"
#include "runtime/perplexity.h"

namespace pocket::runtime {

struct PerplexityOptions {
  int n_ctx = 512;      // llama-perplexity's default -c
  int max_chunks = -1;  // -1: all
};

struct PerplexityReport {
  PerplexityPlan plan;
  size_t num_tokens = 0;       // tokens of the whole text
  bool add_bos = false;        // whether each chunk started with BOS
  std::vector<double> running_ppl;  // after each chunk: llama.cpp's "[i]x," figures
  double ppl = 0;
  double uncertainty = 0;      // 0 when it could not be computed
  double seconds = 0;
};

// Tokenizes `text` and scores it. InvalidArgument when it is too short for n_ctx.
// `on_chunk(i, running_ppl)` (1-based i) is called as chunks finish; may be empty.
Result<PerplexityReport> RunPerplexity(Engine& engine, std::string_view text,
                                       const PerplexityOptions& opts,
                                       const std::function<void(int, double)>& on_chunk);

// Seconds per timed repetition. n_tokens must fit the engine's context.
Result<std::vector<double>> BenchPromptProcessing(Engine& engine, int n_prompt, int repetitions);
Result<std::vector<double>> BenchTokenGeneration(Engine& engine, int n_gen, int repetitions);

// Parameter count of the model's weights (from its config: embeddings, attention, MLP,
// norms, untied output).
uint64_t CountParameters(const model::LlamaConfig& config);

}  // namespace pocket::runtime
