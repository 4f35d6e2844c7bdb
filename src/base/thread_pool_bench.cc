// Dispatch overhead of ThreadPool: an empty ParallelFor over one task per thread.
// Target ~1-2 us per call with spinning workers (a futex wake costs ~50 us).
#include <benchmark/benchmark.h>

#include <atomic>

#include "base/thread_pool.h"

namespace pocket {
namespace {

void BM_ParallelForEmpty(benchmark::State& state) {
  ThreadPool pool(static_cast<size_t>(state.range(0)));
  std::atomic<uint64_t> sink{0};
  for (auto _ : state) {
    pool.ParallelFor(pool.num_threads(), [&](size_t task, size_t) {
      sink.fetch_add(task, std::memory_order_relaxed);
    });
  }
  benchmark::DoNotOptimize(sink.load());
}
BENCHMARK(BM_ParallelForEmpty)->Arg(1)->Arg(2)->UseRealTime();

void BM_RunWithBarrier(benchmark::State& state) {
  ThreadPool pool(2);
  for (auto _ : state) {
    pool.Run([&](size_t) { pool.Barrier(); });
  }
}
BENCHMARK(BM_RunWithBarrier)->UseRealTime();

}  // namespace
}  // namespace pocket
