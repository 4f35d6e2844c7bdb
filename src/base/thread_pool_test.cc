#include "base/thread_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <numeric>
#include <vector>

namespace pocket {
namespace {

TEST(ThreadPoolTest, ParallelForRunsEveryTaskExactlyOnce) {
  for (size_t threads : {1u, 2u, 3u, 5u}) {
    ThreadPool pool(threads);
    for (size_t n : {0u, 1u, 2u, 7u, 64u, 1000u}) {
      std::vector<std::atomic<int>> hits(n);
      pool.ParallelFor(n, [&](size_t task, size_t thread) {
        EXPECT_LT(thread, pool.num_threads());
        hits[task].fetch_add(1);
      });
      for (size_t i = 0; i < n; ++i) EXPECT_EQ(hits[i].load(), 1) << "threads=" << threads;
    }
  }
}

TEST(ThreadPoolTest, StaticPartitionIsContiguousAndDeterministic) {
  ThreadPool pool(3);
  std::vector<size_t> owner(10);
  pool.ParallelFor(10, [&](size_t task, size_t thread) { owner[task] = thread; });
  // [j*n/T, (j+1)*n/T): 0..2 -> 0, 3..5 -> 1, 6..9 -> 2.
  EXPECT_EQ(owner, (std::vector<size_t>{0, 0, 0, 1, 1, 1, 2, 2, 2, 2}));
}

TEST(ThreadPoolTest, ManyDispatchesInARowComplete) {
  ThreadPool pool(2, /*spin_us=*/0);  // no spinning: exercises the futex sleep/wake path
  std::atomic<uint64_t> sum{0};
  for (int i = 0; i < 2000; ++i) {
    pool.ParallelFor(4, [&](size_t task, size_t) { sum.fetch_add(task + 1); });
  }
  EXPECT_EQ(sum.load(), 2000u * 10u);
}

TEST(ThreadPoolTest, BarrierSeparatesPhases) {
  ThreadPool pool(3);
  std::vector<int> data(3, 0);
  std::vector<int> seen(3, -1);
  for (int round = 0; round < 100; ++round) {
    pool.Run([&](size_t thread) {
      data[thread] = round;
      pool.Barrier();
      int s = 0;
      for (int v : data) s += v;
      seen[thread] = s;
      pool.Barrier();
    });
    for (int s : seen) EXPECT_EQ(s, 3 * round);
  }
}

TEST(ThreadPoolTest, ZeroMeansHardwareConcurrency) {
  ThreadPool pool(0);
  EXPECT_GE(pool.num_threads(), 1u);
}

}  // namespace
}  // namespace pocket
