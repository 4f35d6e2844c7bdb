// Encode/decode throughput on the committed corpus (testdata/tokenizer/corpus.txt, 130 KB,
// repeated to 1 MiB), for each golden vocabulary. Napkin math: a 1 MiB prompt must encode
// well under a second; llama.cpp's tokenizer does roughly 10-30 MB/s on one core.
#include <benchmark/benchmark.h>

#include <string>

#include "base/file.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace pocket::tokenizer {
namespace {

std::string Corpus() {
  auto text = ReadFile(std::string(POCKET_SOURCE_DIR) + "/testdata/tokenizer/corpus.txt");
  PK_CHECK(text.ok());
  std::string out;
  while (out.size() < (1u << 20)) out += *text;
  out.resize(1u << 20);
  // Cut at a character boundary.
  while (!out.empty() && (static_cast<unsigned char>(out.back()) & 0xC0) == 0x80) out.pop_back();
  if (!out.empty() && static_cast<unsigned char>(out.back()) >= 0xC0) out.pop_back();
  return out;
}

Tokenizer Load(const std::string& name) {
  auto vocab =
      LoadVocabJson(std::string(POCKET_SOURCE_DIR) + "/testdata/tokenizer/" + name + ".json");
  PK_CHECK(vocab.ok());
  auto tok = Tokenizer::FromVocab(*vocab);
  PK_CHECK(tok.ok());
  return *tok;
}

void BM_Encode1MiB(benchmark::State& state, const char* name) {
  const Tokenizer tok = Load(name);
  const std::string text = Corpus();
  size_t tokens = 0;
  for (auto _ : state) {
    auto ids = tok.Encode(text, false, true);
    tokens = ids.size();
    benchmark::DoNotOptimize(ids.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
  state.counters["tokens"] = static_cast<double>(tokens);
}
BENCHMARK_CAPTURE(BM_Encode1MiB, gpt2, "gpt2")->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Encode1MiB, llama3, "llama3")->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Encode1MiB, qwen2, "qwen2")->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Encode1MiB, smollm, "smollm")->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Encode1MiB, spm, "spm")->Unit(benchmark::kMillisecond);

void BM_Decode(benchmark::State& state) {
  const Tokenizer tok = Load("llama3");
  const std::string text = Corpus();
  const auto ids = tok.Encode(text, false, true);
  for (auto _ : state) {
    auto s = tok.Decode(ids);
    benchmark::DoNotOptimize(s.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
}
BENCHMARK(BM_Decode)->Unit(benchmark::kMillisecond);

void BM_ChatTemplateApply(benchmark::State& state) {
  auto tmpl = ChatTemplate::Builtin("qwen2.5");
  PK_CHECK(tmpl.ok());
  std::vector<ChatMessage> conv;
  for (int k = 0; k < 16; ++k)
    conv.push_back({k % 2 ? "assistant" : "user", "message number " + std::to_string(k)});
  for (auto _ : state) {
    auto out = tmpl->Apply(conv, true, "", "");
    benchmark::DoNotOptimize(out.ok());
  }
}
BENCHMARK(BM_ChatTemplateApply)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace pocket::tokenizer
