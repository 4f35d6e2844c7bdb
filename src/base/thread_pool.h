// ThreadPool: a persistent pool built for decode latency. It owns num_threads - 1 worker
// threads; the calling thread is thread 0 and always takes part. A dispatch allocates
// nothing and creates no thread: the caller publishes a function pointer and a context,
// bumps an epoch, and the workers (spinning for a short while after their last job, then
// sleeping on a futex) pick it up. Dispatch overhead is ~1-2 us when workers are spinning.
//
// Partitioning is static and deterministic: ParallelFor gives thread j the contiguous
// task range [j * n / T, (j + 1) * n / T). What a task computes must depend only on its
// task index (never on `thread`, except to pick per-thread scratch), so results do not
// depend on the thread count (the kernels' batch invariance relies on this).
//
// Callers: kernels (MatMul, attention), model forward pass. Thread safety: one thread at a
// time may dispatch (the owner); a job must not dispatch on the same pool (no nesting).
// Not copyable or movable; the destructor joins the workers.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <thread>
#include <vector>

namespace pocket {

class ThreadPool {
 public:
  // `num_threads` counts the caller; 0 means Platform::Default().logical_cores() (all cores).
  // `spin_us`: how long an idle worker spins before it sleeps.
  explicit ThreadPool(size_t num_threads = 0, uint32_t spin_us = 200);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  size_t num_threads() const { return num_threads_; }

  // Runs fn(thread) once on every thread (caller = thread 0) and returns when all are
  // done. Inside, Barrier() synchronises the threads of this run.
  template <typename F>
  void Run(const F& fn) {
    Dispatch(
        [](const void* ctx, size_t thread) { (*static_cast<const F*>(ctx))(thread); }, &fn);
  }

  // Runs fn(task, thread) for every task in [0, num_tasks) with static partitioning (see
  // above). Returns when all tasks are done. With num_tasks <= 1 or one thread, runs
  // inline on the caller.
  template <typename F>
  void ParallelFor(size_t num_tasks, const F& fn) {
    if (num_tasks == 0) return;
    if (num_tasks == 1 || num_threads_ == 1) {
      for (size_t i = 0; i < num_tasks; ++i) fn(i, size_t{0});
      return;
    }
    const size_t n = num_threads_;
    Run([&](size_t thread) {
      const size_t begin = thread * num_tasks / n, end = (thread + 1) * num_tasks / n;
      for (size_t i = begin; i < end; ++i) fn(i, thread);
    });
  }

  // Waits until every thread of the current Run has reached this barrier. REQUIRES:
  // called from inside Run by all num_threads() threads the same number of times.
  void Barrier();

 private:
  using JobFn = void (*)(const void* ctx, size_t thread);
  void Dispatch(JobFn fn, const void* ctx);
  void WorkerLoop(size_t thread);

  size_t num_threads_;
  uint32_t spin_us_;
  std::vector<std::thread> workers_;

  // Job publication: fn_/ctx_ are written before epoch_ is released.
  JobFn fn_ = nullptr;
  const void* ctx_ = nullptr;
  alignas(64) std::atomic<uint32_t> epoch_{0};
  alignas(64) std::atomic<uint32_t> sleepers_{0};
  alignas(64) std::atomic<uint32_t> pending_{0};  // workers still running the current job
  alignas(64) std::atomic<uint32_t> barrier_count_{0};
  alignas(64) std::atomic<uint32_t> barrier_phase_{0};
  std::atomic<bool> stop_{false};
};

}  // namespace pocket
