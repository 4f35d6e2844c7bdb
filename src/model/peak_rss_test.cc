// Memory contract: weights are used in place from the file mapping, so a process that
// loads a model and runs it peaks at no more than weight bytes + KV cache bytes + 64 MiB
// (activations, workspaces, thread stacks, the test binary itself). Measured in a fresh
// child process (this binary re-executed with a filter), so that nothing the other tests
// allocated counts. The model is ~85 MB of F16 weights: a copy of them would overshoot the
// bound by far. Sanitizer builds are skipped: their shadow memory and quarantine are not
// part of the contract.
#include <gtest/gtest.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "base/file.h"
#include "base/memory.h"
#include "model/llama.h"
#include "model/model_testutil.h"

extern char** environ;

#if defined(__SANITIZE_ADDRESS__)
#define POCKET_UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define POCKET_UNDER_ASAN 1
#endif
#endif

namespace pocket::model {
namespace {

constexpr uint64_t kSlackBytes = 64ull << 20;
constexpr const char* kModelEnv = "POCKET_PEAK_RSS_MODEL";
constexpr const char* kResultEnv = "POCKET_PEAK_RSS_RESULT";

LlamaConfig LargeConfig() {
  LlamaConfig c = testing::TinyConfig();
  c.d_model = 1024;
  c.num_layers = 4;
  c.num_heads = 16;
  c.num_kv_heads = 4;
  c.head_dim = 64;
  c.d_ff = 2816;
  c.vocab_size = 4096;
  c.context_length = 256;
  c.tied_output = false;
  return c;
}

// Runs in the child only: load, prefill 48 tokens, decode 16, report the peak.
TEST(PeakRssChild, DISABLED_LoadAndRun) {
  const char* model_path = std::getenv(kModelEnv);
  const char* result_path = std::getenv(kResultEnv);
  ASSERT_NE(model_path, nullptr);
  ASSERT_NE(result_path, nullptr);
  auto m = LlamaModel::Load(model_path, {.threads = 2});
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  auto cache = (*m)->NewKvCache(256, tensor::DType::kF32);
  ASSERT_TRUE(cache.ok());
  std::vector<int32_t> tokens(64);
  for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = static_cast<int32_t>(i * 37 % 4096);
  std::vector<float> logits;
  BatchEntry prefill{&*cache, std::span(tokens).first(48), 0, false};
  ASSERT_TRUE((*m)->Forward({&prefill, 1}, &logits).ok());
  for (int i = 48; i < 64; ++i) {
    BatchEntry step{&*cache, std::span(tokens).subspan(static_cast<size_t>(i), 1), i, false};
    ASSERT_TRUE((*m)->Forward({&step, 1}, &logits).ok());
  }
  const std::string line = std::to_string(PeakRssBytes()) + " " +
                           std::to_string((*m)->weight_bytes()) + " " +
                           std::to_string(cache->size_bytes()) + "\n";
  ASSERT_TRUE(WriteFileAtomic(result_path, line).ok());
}

// Writes a model of `spec`, runs the child on it, checks the bound.
void ExpectPeakWithinBound(const testing::RandomModelSpec& spec, const std::string& tag) {
  const std::string dir = ::testing::TempDir();
  const std::string model_path = dir + "/pocket_peak_rss_model_" + tag + ".gguf";
  const std::string result_path = dir + "/pocket_peak_rss_result_" + tag + ".txt";
  ASSERT_TRUE(testing::WriteRandomModel(spec, model_path).ok());

  const std::string model_env = std::string(kModelEnv) + "=" + model_path;
  const std::string result_env = std::string(kResultEnv) + "=" + result_path;
  std::vector<char*> envp;
  for (char** e = environ; *e != nullptr; ++e) envp.push_back(*e);
  envp.push_back(const_cast<char*>(model_env.c_str()));
  envp.push_back(const_cast<char*>(result_env.c_str()));
  envp.push_back(nullptr);
  std::string self = std::filesystem::read_symlink("/proc/self/exe").string();
  std::string filter = "--gtest_filter=PeakRssChild.DISABLED_LoadAndRun";
  std::string disabled = "--gtest_also_run_disabled_tests";
  char* argv[] = {self.data(), filter.data(), disabled.data(), nullptr};
  pid_t pid = 0;
  ASSERT_EQ(posix_spawn(&pid, self.c_str(), nullptr, nullptr, argv, envp.data()), 0);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "child failed";

  auto result = ReadFile(result_path);
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  unsigned long long peak = 0, weights = 0, kv = 0;
  ASSERT_EQ(std::sscanf(result->c_str(), "%llu %llu %llu", &peak, &weights, &kv), 3);
  std::printf("[ measured ] %s: peak RSS %.1f MiB = weights %.1f MiB + kv %.1f MiB + %.1f MiB\n",
              tag.c_str(), peak / 1048576.0, weights / 1048576.0, kv / 1048576.0,
              (static_cast<double>(peak) - weights - kv) / 1048576.0);
  EXPECT_GT(weights, 80ull << 20);  // big enough that a copy could not hide in the slack
  EXPECT_LE(peak, weights + kv + kSlackBytes);
  std::filesystem::remove(model_path);
  std::filesystem::remove(result_path);
}

// F16 matrices: read in place from the mapping.
TEST(PeakRssTest, PeakIsWeightsPlusKvCachePlus64MiB) {
#ifdef POCKET_UNDER_ASAN
  GTEST_SKIP() << "RSS accounting is meaningless under AddressSanitizer";
#endif
  testing::RandomModelSpec spec;
  spec.config = LargeConfig();
  spec.matrix_dtype = tensor::DType::kF16;
  spec.cheap_values = true;
  ExpectPeakWithinBound(spec, "f16");
}

// Q4_0 matrices are repacked at load (LoadOptions::repack); the file pages they came from
// are released while packing, so the bound holds for them too (tied output included:
// token_embd's pages come back only for the rows GetRows reads).
TEST(PeakRssTest, RepackedQ4_0StaysWithinTheSameBound) {
#ifdef POCKET_UNDER_ASAN
  GTEST_SKIP() << "RSS accounting is meaningless under AddressSanitizer";
#endif
  testing::RandomModelSpec spec;
  spec.config = LargeConfig();
  spec.config.num_layers = 14;
  spec.config.tied_output = true;
  spec.matrix_dtype = tensor::DType::kQ4_0;
  spec.cheap_values = true;
  ExpectPeakWithinBound(spec, "q4_0");
}

}  // namespace
}  // namespace pocket::model
