#include "runtime/measure.h"

#include <optional>

#include "base/clock.h"
#include "runtime/engine_impl.h"
#include "runtime/sampling.h"

namespace pocket::runtime {
namespace {

double SecondsSince(uint64_t t0_ns) { return static_cast<double>(MonotonicNs() - t0_ns) * 1e-9; }

Status ForwardOne(EngineImpl& eng, model::KvCache& cache, std::span<const int32_t> tokens,
                  int start_pos, bool all_logits, std::vector<float>* logits) {
  model::BatchEntry entry;
  entry.cache = &cache;
  entry.tokens = tokens;
  entry.start_pos = start_pos;
  entry.all_logits = all_logits;
  return eng.Forward(std::span<model::BatchEntry>(&entry, 1), logits);
}

// llama-bench's token choice: random ids, the first one BOS when the model adds BOS.
std::vector<int32_t> BenchTokens(const EngineImpl& eng, int n, uint64_t seed) {
  Rng rng(seed);
  const uint64_t vocab = static_cast<uint64_t>(eng.model->config().vocab_size);
  std::vector<int32_t> tokens(static_cast<size_t>(n));
  for (auto& t : tokens) t = static_cast<int32_t>(rng.NextU64() % vocab);
  if (n > 0 && eng.tokenizer->add_bos() && eng.tokenizer->bos() >= 0) {
    tokens[0] = eng.tokenizer->bos();
  }
  return tokens;
}

Result<model::KvCache> BenchCache(EngineImpl& eng, int n) {
  if (n <= 0) return Status::InvalidArgument("bench: token count must be positive");
  std::lock_guard<std::mutex> lock(eng.forward_mu);
  return eng.model->NewKvCache(n, kKvDType);
}

}  // namespace

Result<PerplexityReport> RunPerplexity(Engine& engine, std::string_view text,
                                       const PerplexityOptions& opts,
                                       const std::function<void(int, double)>& on_chunk) {
  EngineImpl& eng = ImplOf(engine);
  const uint64_t t0 = MonotonicNs();
  PerplexityReport report;
  // llama.cpp: common_tokenize(ctx, text, add_special=true, parse_special=false).
  const std::vector<int32_t> tokens = eng.tokenizer->Encode(text, true, false);
  report.num_tokens = tokens.size();
  PK_ASSIGN_OR_RETURN(report.plan, PlanPerplexity(tokens.size(), opts.n_ctx, opts.max_chunks));
  const PerplexityPlan& plan = report.plan;
  report.add_bos = eng.tokenizer->add_bos() && eng.tokenizer->bos() >= 0;
  const std::optional<int32_t> bos =
      report.add_bos ? std::optional<int32_t>(eng.tokenizer->bos()) : std::nullopt;

  model::KvCache cache;
  {
    std::lock_guard<std::mutex> lock(eng.forward_mu);
    PK_ASSIGN_OR_RETURN(cache, eng.model->NewKvCache(plan.n_ctx, kKvDType));
  }
  const size_t vocab = static_cast<size_t>(eng.model->config().vocab_size);
  PerplexityAccumulator acc;
  std::vector<float> logits;
  for (int chunk = 0; chunk < plan.num_chunks; ++chunk) {
    const std::vector<int32_t> input = PerplexityChunkInput(tokens, chunk, plan.n_ctx, bos);
    const std::span<const int32_t> in(input);
    cache.Clear();
    // The first half only fills the cache; logits are needed from position `first` on.
    PK_RETURN_IF_ERROR(ForwardOne(eng, cache, in.first(static_cast<size_t>(plan.first)), 0,
                                  false, &logits));
    PK_RETURN_IF_ERROR(ForwardOne(eng, cache, in.subspan(static_cast<size_t>(plan.first)),
                                  plan.first, true, &logits));
    const auto original = std::span<const int32_t>(tokens).subspan(
        static_cast<size_t>(chunk) * static_cast<size_t>(plan.n_ctx),
        static_cast<size_t>(plan.n_ctx));
    acc.AddChunk(plan, logits, vocab, original);
    report.running_ppl.push_back(acc.Perplexity());
    if (on_chunk) on_chunk(chunk + 1, acc.Perplexity());
  }
  report.ppl = acc.Perplexity();
  report.uncertainty = acc.Uncertainty();
  report.seconds = SecondsSince(t0);
  return report;
}

Result<std::vector<double>> BenchPromptProcessing(Engine& engine, int n_prompt,
                                                  int repetitions) {
  EngineImpl& eng = ImplOf(engine);
  PK_ASSIGN_OR_RETURN(model::KvCache cache, BenchCache(eng, n_prompt));
  const std::vector<int32_t> tokens = BenchTokens(eng, n_prompt, 1234);
  std::vector<float> logits;
  std::vector<double> seconds;
  for (int rep = -1; rep < repetitions; ++rep) {  // rep -1: warm-up
    cache.Clear();
    const uint64_t t0 = MonotonicNs();
    PK_RETURN_IF_ERROR(ForwardOne(eng, cache, tokens, 0, false, &logits));
    if (rep >= 0) seconds.push_back(SecondsSince(t0));
  }
  return seconds;
}

Result<std::vector<double>> BenchTokenGeneration(Engine& engine, int n_gen, int repetitions) {
  EngineImpl& eng = ImplOf(engine);
  PK_ASSIGN_OR_RETURN(model::KvCache cache, BenchCache(eng, n_gen));
  const std::vector<int32_t> tokens = BenchTokens(eng, n_gen, 4321);
  std::vector<float> logits;
  std::vector<double> seconds;
  for (int rep = -1; rep < repetitions; ++rep) {
    cache.Clear();
    const uint64_t t0 = MonotonicNs();
    for (int i = 0; i < n_gen; ++i) {
      PK_RETURN_IF_ERROR(ForwardOne(eng, cache,
                                    std::span<const int32_t>(tokens).subspan(
                                        static_cast<size_t>(i), 1),
                                    i, false, &logits));
    }
    if (rep >= 0) seconds.push_back(SecondsSince(t0));
  }
  return seconds;
}

uint64_t CountParameters(const model::LlamaConfig& c) {
  const uint64_t d = static_cast<uint64_t>(c.d_model), v = static_cast<uint64_t>(c.vocab_size);
  const uint64_t q = static_cast<uint64_t>(c.q_dim()), kv = static_cast<uint64_t>(c.kv_dim());
  const uint64_t ff = static_cast<uint64_t>(c.d_ff);
  uint64_t per_layer = 2 * d + d * q + 2 * d * kv + q * d + 3 * d * ff;
  if (c.qkv_bias) per_layer += q + 2 * kv;
  return v * d + (c.tied_output ? 0 : v * d) + d +
         static_cast<uint64_t>(c.num_layers) * per_layer;
}

}  // namespace pocket::runtime
