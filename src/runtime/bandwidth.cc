#include "runtime/bandwidth.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <memory>
#include <new>
#include <thread>
#include <vector>

#include "base/clock.h"
#include "base/memory.h"

namespace pocket::runtime {
namespace {

// Four independent accumulators so the loop is limited by loads, not by one add chain,
// and a software prefetch 1 KiB ahead, one per 64-byte line. Without it this read 28.9-30.5
// GB/s on the 2-vCPU VM where a read with it does 32-36, and the roofline fraction of a
// decode loop that prefetches read over 100 % (1B Q8_0: 102 %).
uint64_t SumWords(const uint64_t* p, size_t n) {
  constexpr size_t kLine = 64 / sizeof(uint64_t), kAhead = 1024 / sizeof(uint64_t);
  uint64_t a = 0, b = 0, c = 0, d = 0;
  size_t i = 0;
  for (; i + kLine <= n; i += kLine) {
    __builtin_prefetch(p + i + kAhead, 0, 3);  // past the end: a hint, never a fault
    a += p[i] + p[i + 4];
    b += p[i + 1] + p[i + 5];
    c += p[i + 2] + p[i + 6];
    d += p[i + 3] + p[i + 7];
  }
  for (; i < n; ++i) a += p[i];
  return a + b + c + d;
}
}  // namespace

Result<BandwidthMeasurement> MeasureReadBandwidth(size_t buffer_bytes, int threads, int passes) {
  if (threads < 1 || passes < 1 || buffer_bytes < (1u << 20)) {
    return Status::InvalidArgument("bandwidth: need threads >= 1, passes >= 1, buffer >= 1 MiB");
  }
  const size_t words = buffer_bytes / sizeof(uint64_t);
  // Huge pages, like the repacked weights decode streams: with 4 KiB pages the TLB misses,
  // not DRAM, set the pace (22-31 GB/s measured that way vs 29 GB/s of weights streamed
  // by a 2-thread decode on this VM), and the roofline fraction read over 100 %.
  struct Free {
    void operator()(uint64_t* p) const { FreeLarge(p); }
  };
  std::unique_ptr<uint64_t[], Free> buffer(
      static_cast<uint64_t*>(AllocateLarge(words * sizeof(uint64_t))));
  if (!buffer) {
    return Status::ResourceExhausted("bandwidth: cannot allocate " +
                                     std::to_string(buffer_bytes >> 20) + " MiB");
  }
  for (size_t i = 0; i < words; ++i) buffer[i] = i;

  std::atomic<uint64_t> sink{0};  // keeps the sums alive
  double best_s = 1e300;
  for (int pass = 0; pass < passes; ++pass) {
    const uint64_t t0 = MonotonicNs();
    std::vector<std::thread> pool;
    const size_t per = words / static_cast<size_t>(threads);
    for (int t = 0; t < threads; ++t) {
      const size_t begin = per * static_cast<size_t>(t);
      const size_t end = t + 1 == threads ? words : begin + per;
      pool.emplace_back([&, begin, end] {
        sink.fetch_add(SumWords(buffer.get() + begin, end - begin), std::memory_order_relaxed);
      });
    }
    for (auto& th : pool) th.join();
    best_s = std::min(best_s, static_cast<double>(MonotonicNs() - t0) * 1e-9);
  }
  BandwidthMeasurement m;
  m.buffer_bytes = words * sizeof(uint64_t);
  m.threads = threads;
  m.passes = passes;
  m.bytes_per_s = static_cast<double>(m.buffer_bytes) / best_s;
  m.method = "STREAM-like read: " + std::to_string(threads) + " thread(s) sum a " +
             std::to_string(m.buffer_bytes >> 20) +
             " MiB buffer (huge pages where the OS grants them) as 64-bit words, prefetching "
             "1 KiB ahead, best of " +
             std::to_string(passes) + " passes";
  return m;
}

MeanSd ComputeMeanSd(std::span<const double> samples) {
  MeanSd r;
  if (samples.empty()) return r;
  double sum = 0;
  for (double s : samples) sum += s;
  r.mean = sum / static_cast<double>(samples.size());
  if (samples.size() < 2) return r;
  double sq = 0;
  for (double s : samples) sq += (s - r.mean) * (s - r.mean);
  r.sd = std::sqrt(sq / static_cast<double>(samples.size() - 1));
  return r;
}

}  // namespace pocket::runtime
