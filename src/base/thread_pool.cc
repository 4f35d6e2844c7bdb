#include "base/thread_pool.h"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <climits>

#include "base/clock.h"
#include "base/platform.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define PK_CPU_RELAX() _mm_pause()
#else
#define PK_CPU_RELAX() std::this_thread::yield()
#endif

namespace pocket {
namespace {

// std::atomic<uint32_t> has the layout of a uint32_t on Linux, which is what futex needs.
void FutexWait(std::atomic<uint32_t>* word, uint32_t expected) {
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAIT_PRIVATE, expected, nullptr,
          nullptr, 0);
}
void FutexWakeAll(std::atomic<uint32_t>* word) {
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAKE_PRIVATE, INT_MAX, nullptr,
          nullptr, 0);
}

}  // namespace

ThreadPool::ThreadPool(size_t num_threads, uint32_t spin_us) : spin_us_(spin_us) {
  if (num_threads == 0) num_threads = static_cast<size_t>(Platform::Default().logical_cores());
  num_threads_ = num_threads;
  workers_.reserve(num_threads - 1);
  for (size_t t = 1; t < num_threads; ++t) workers_.emplace_back([this, t] { WorkerLoop(t); });
}

ThreadPool::~ThreadPool() {
  stop_.store(true, std::memory_order_relaxed);
  epoch_.fetch_add(1, std::memory_order_seq_cst);
  FutexWakeAll(&epoch_);
  for (auto& w : workers_) w.join();
}

void ThreadPool::Dispatch(JobFn fn, const void* ctx) {
  if (num_threads_ == 1) {
    fn(ctx, 0);
    return;
  }
  fn_ = fn;
  ctx_ = ctx;
  pending_.store(static_cast<uint32_t>(num_threads_ - 1), std::memory_order_relaxed);
  // seq_cst pairs with the worker's sleepers_ increment (Dekker): either we see the
  // sleeper and wake it, or it sees the new epoch before it sleeps.
  epoch_.fetch_add(1, std::memory_order_seq_cst);
  if (sleepers_.load(std::memory_order_seq_cst) != 0) FutexWakeAll(&epoch_);
  fn(ctx, 0);
  // Jobs are short, so spin; on an oversubscribed machine yield so a preempted worker
  // can finish.
  for (uint32_t i = 1; pending_.load(std::memory_order_acquire) != 0; ++i) {
    PK_CPU_RELAX();
    if ((i & 1023) == 0) std::this_thread::yield();
  }
}

void ThreadPool::WorkerLoop(size_t thread) {
  // The epoch is 0 until the first dispatch, which cannot precede the constructor.
  uint32_t seen = 0;
  for (;;) {
    uint32_t e = epoch_.load(std::memory_order_acquire);
    if (e == seen) {
      // Spin first: between the kernels of one token the gap is a few microseconds, far
      // less than a futex round trip (~50 us when the thread must be rescheduled).
      const uint64_t deadline = MonotonicNs() + uint64_t{spin_us_} * 1000;
      for (uint32_t i = 1;; ++i) {
        e = epoch_.load(std::memory_order_acquire);
        if (e != seen) break;
        PK_CPU_RELAX();
        if ((i & 255) == 0 && MonotonicNs() > deadline) break;
      }
      while (e == seen) {
        sleepers_.fetch_add(1, std::memory_order_seq_cst);
        e = epoch_.load(std::memory_order_seq_cst);
        if (e == seen) FutexWait(&epoch_, seen);
        sleepers_.fetch_sub(1, std::memory_order_relaxed);
        e = epoch_.load(std::memory_order_acquire);
      }
    }
    seen = e;
    if (stop_.load(std::memory_order_relaxed)) return;
    fn_(ctx_, thread);
    pending_.fetch_sub(1, std::memory_order_release);
  }
}

void ThreadPool::Barrier() {
  if (num_threads_ == 1) return;
  const uint32_t phase = barrier_phase_.load(std::memory_order_acquire);
  if (barrier_count_.fetch_add(1, std::memory_order_acq_rel) + 1 == num_threads_) {
    barrier_count_.store(0, std::memory_order_relaxed);
    barrier_phase_.store(phase + 1, std::memory_order_release);
  } else {
    for (uint32_t i = 1; barrier_phase_.load(std::memory_order_acquire) == phase; ++i) {
      PK_CPU_RELAX();
      if ((i & 1023) == 0) std::this_thread::yield();
    }
  }
}

}  // namespace pocket
