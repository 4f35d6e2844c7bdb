// Memory read bandwidth, measured the way STREAM does it (a plain loop over a buffer much
// larger than the caches, best of several passes), for the roofline figure of
// `pocket bench`: a decode step reads every weight once, so
//   roofline fraction = weight_bytes_per_token * tokens_per_s / read_bytes_per_s.
// Also the mean/sd helper llama-bench's "avg ± stdev" columns need.
// Thread safety: free functions; MeasureReadBandwidth starts and joins its own threads.
#pragma once

#include <cstddef>
#include <span>
#include <string>

#include "base/status.h"

namespace pocket::runtime {

struct BandwidthMeasurement {
  double bytes_per_s = 0;   // best pass
  size_t buffer_bytes = 0;
  int threads = 0;
  int passes = 0;
  std::string method;       // one line saying how the figure was obtained
};

// Fills a buffer of `buffer_bytes` (so its pages are resident), then `passes` times lets
// `threads` threads each sum a contiguous 1/threads slice of it as 64-bit words, and
// reports the fastest pass. ResourceExhausted when the buffer cannot be allocated;
// InvalidArgument for threads < 1, passes < 1 or a buffer under 1 MiB.
Result<BandwidthMeasurement> MeasureReadBandwidth(size_t buffer_bytes, int threads, int passes);

struct MeanSd {
  double mean = 0;
  double sd = 0;  // sample standard deviation (n-1), as llama-bench; 0 for one sample
};
MeanSd ComputeMeanSd(std::span<const double> samples);

}  // namespace pocket::runtime
