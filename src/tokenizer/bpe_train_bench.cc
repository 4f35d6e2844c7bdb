// Byte-level BPE training time for a 4096-token vocabulary on ~5 MiB of text, the size of the
// default model's corpus (the King James Bible is 4.3 MiB). The corpus is the file named by
// POCKET_BPE_BENCH_CORPUS when set; otherwise the repository's own text (docs, sources, the
// tokenizer test corpus), read in sorted path order and repeated up to 5 MiB, which makes it less
// varied than prose but the same every run. Napkin math: the pre-tokenizer splits at roughly 50-100
// MB/s, so counting 5 MiB costs ~0.1 s; the merges touch only the words that hold each pair, a few
// thousand distinct words per merge at most; `pocket train` should spend seconds here at most, not
// minutes.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "base/file.h"
#include "tokenizer/bpe_train.h"

namespace pocket::tokenizer {
namespace {

constexpr size_t kCorpusBytes = 5u << 20;

std::string RepoText() {
  namespace fs = std::filesystem;
  const fs::path root(POCKET_SOURCE_DIR);
  std::vector<fs::path> files;
  for (const char* dir : {"docs", "src", "testdata/tokenizer"}) {
    for (const auto& e : fs::recursive_directory_iterator(root / dir)) {
      const std::string ext = e.path().extension().string();
      if (e.is_regular_file() && (ext == ".md" || ext == ".cc" || ext == ".h" || ext == ".txt")) {
        files.push_back(e.path());
      }
    }
  }
  std::sort(files.begin(), files.end());
  std::string text;
  for (const auto& f : files) {
    auto t = ReadFile(f.string());
    if (t.ok()) text += *t;
  }
  return text;
}

// One document per line, as the HF trainer is usually fed.
std::vector<std::string> CorpusLines() {
  std::string text;
  if (const char* path = std::getenv("POCKET_BPE_BENCH_CORPUS")) {
    auto t = ReadFile(path);
    PK_CHECK(t.ok());
    text = std::move(*t);
  } else {
    const std::string once = RepoText();
    PK_CHECK(!once.empty());
    while (text.size() < kCorpusBytes) text += once;
    text.resize(kCorpusBytes);
  }
  std::vector<std::string> lines;
  size_t from = 0;
  while (from < text.size()) {
    const size_t nl = text.find('\n', from);
    const size_t end = nl == std::string::npos ? text.size() : nl + 1;
    lines.push_back(text.substr(from, end - from));
    from = end;
  }
  return lines;
}

void BM_TrainBpe(benchmark::State& state) {
  const std::vector<std::string> lines = CorpusLines();
  size_t bytes = 0;
  for (const auto& l : lines) bytes += l.size();
  BpeTrainOptions options;
  options.vocab_size = static_cast<size_t>(state.range(0));
  options.special_tokens = {"<|endoftext|>", "<|im_start|>", "<|im_end|>"};
  size_t words = 0;
  size_t vocab = 0;
  for (auto _ : state) {
    auto r = TrainByteLevelBpe(lines, options);
    PK_CHECK(r.ok());
    words = r->num_distinct_words;
    vocab = r->vocab.tokens.size();
    benchmark::DoNotOptimize(r->vocab.merges.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * bytes));
  state.counters["corpus_MiB"] = static_cast<double>(bytes) / (1 << 20);
  state.counters["distinct_words"] = static_cast<double>(words);
  state.counters["vocab"] = static_cast<double>(vocab);
}
BENCHMARK(BM_TrainBpe)->Arg(4096)->Unit(benchmark::kMillisecond)->Iterations(1);

// Counting alone (AddDocument for every line): the streaming half of the work.
void BM_CountWords(benchmark::State& state) {
  const std::vector<std::string> lines = CorpusLines();
  size_t bytes = 0;
  for (const auto& l : lines) bytes += l.size();
  BpeTrainOptions options;
  options.special_tokens = {"<|endoftext|>", "<|im_start|>", "<|im_end|>"};
  for (auto _ : state) {
    auto trainer = BpeTrainer::Create(options);
    PK_CHECK(trainer.ok());
    for (const auto& l : lines) trainer->AddDocument(l);
    benchmark::DoNotOptimize(trainer->num_distinct_words());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * bytes));
}
BENCHMARK(BM_CountWords)->Unit(benchmark::kMillisecond)->Iterations(1);

}  // namespace
}  // namespace pocket::tokenizer
