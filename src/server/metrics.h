// Prometheus metrics for the server: counters (names end in _total), gauges and
// histograms, each with optional labels, rendered in the Prometheus text exposition
// format 0.0.4 for GET /metrics. Thread safety: all methods are thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace pocket::server {

using Labels = std::vector<std::pair<std::string, std::string>>;

class Metrics {
 public:
  // Declares a metric (HELP text); using an undeclared name also works (HELP empty).
  void DeclareCounter(const std::string& name, const std::string& help);
  void DeclareGauge(const std::string& name, const std::string& help);
  // `buckets`: upper bounds in increasing order; +Inf is added.
  void DeclareHistogram(const std::string& name, const std::string& help,
                        std::vector<double> buckets);

  void Add(const std::string& name, const Labels& labels, double delta = 1);
  void Set(const std::string& name, const Labels& labels, double value);
  void Observe(const std::string& name, const Labels& labels, double value);

  // The value of a counter or gauge (0 when never set); for tests.
  double Value(const std::string& name, const Labels& labels) const;

  std::string RenderPrometheus() const;

  // Latency buckets in seconds, from 5 ms to 60 s.
  static std::vector<double> LatencyBuckets();

 private:
  enum class Type { kCounter, kGauge, kHistogram };
  struct Hist {
    std::vector<uint64_t> counts;  // per bucket, not cumulative; last is +Inf
    double sum = 0;
    uint64_t count = 0;
  };
  struct Family {
    Type type = Type::kCounter;
    std::string help;
    std::vector<double> buckets;
    std::map<std::string, double> values;  // rendered labels -> value
    std::map<std::string, Hist> hists;
  };
  Family& Get(const std::string& name, Type type);
  static std::string RenderLabels(const Labels& labels, const std::string& extra = "");
  mutable std::mutex mu_;
  std::map<std::string, Family> families_;
};

}  // namespace pocket::server
