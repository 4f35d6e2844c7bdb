// Cost of JSON mode over a Llama-3 sized vocabulary (128256 tokens: the synthetic
// byte-level vocabulary of random_model.h in the Llama 3 layout): building the token table
// (once per engine) and one Mask (the slow path, taken only when the first draw is
// refused), from three states: after '{' (few tokens pass), after ':' (values) and inside a
// string (nearly all pass). Napkin math: a Mask must stay well under a 1B model's decode
// step (~25 ms on 2 cores) to be invisible; a full vocabulary scan without prefix sharing
// checks ~600k bytes.
#include <benchmark/benchmark.h>

#include <vector>

#include "base/check.h"
#include "formats/random_model.h"
#include "runtime/json_constraint.h"
#include "tokenizer/tokenizer.h"

namespace pocket::runtime {
namespace {

constexpr size_t kVocab = 128256;

const tokenizer::Tokenizer& Llama3SizedTokenizer() {
  static const tokenizer::Tokenizer* tok = [] {
    const formats::GgufVocab g = formats::SyntheticVocab(kVocab, formats::ChatStyle::kLlama3);
    tokenizer::Vocab v;
    v.model = tokenizer::ModelKind::kGpt2;
    v.pre = g.pre;
    v.tokens = g.tokens;
    for (int32_t t : g.token_types) v.token_types.push_back(static_cast<tokenizer::TokenType>(t));
    v.merges = g.merges;
    v.bos_id = static_cast<int32_t>(g.bos_id);
    v.eos_id = static_cast<int32_t>(g.eos_id);
    auto t = tokenizer::Tokenizer::FromVocab(std::move(v));
    PK_CHECK(t.ok());
    return new tokenizer::Tokenizer(std::move(*t));
  }();
  return *tok;
}

void BM_JsonTableBuild(benchmark::State& state) {
  const tokenizer::Tokenizer& tok = Llama3SizedTokenizer();
  for (auto _ : state) {
    JsonTokenTable table(tok, kVocab);
    benchmark::DoNotOptimize(table.vocab_size());
  }
}
BENCHMARK(BM_JsonTableBuild)->Unit(benchmark::kMillisecond);

void BM_JsonMask(benchmark::State& state, const char* prefix) {
  static const JsonTokenTable table(Llama3SizedTokenizer(), kVocab);
  JsonRecognizer s;
  PK_CHECK(s.Push(std::string_view(prefix)));
  std::vector<float> logits(kVocab, 0.0f);
  size_t allowed = 0;
  for (auto _ : state) {
    allowed = table.Mask(s, logits);
    benchmark::DoNotOptimize(logits.data());
  }
  state.counters["allowed"] = static_cast<double>(allowed);
}
BENCHMARK_CAPTURE(BM_JsonMask, after_open, "{")->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_JsonMask, after_colon, "{\"a\": ")->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_JsonMask, in_string, "{\"a\": \"xy")->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace pocket::runtime
