#include "server/metrics.h"

#include <cmath>
#include <cstdio>

namespace pocket::server {
namespace {

std::string Escape(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

std::string Num(double v) {
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (std::isnan(v)) return "NaN";
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.17g", v);
  return buf;
}

}  // namespace

std::vector<double> Metrics::LatencyBuckets() {
  return {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
}

std::string Metrics::RenderLabels(const Labels& labels, const std::string& extra) {
  if (labels.empty() && extra.empty()) return "";
  std::string s = "{";
  for (size_t i = 0; i < labels.size(); ++i) {
    if (i) s += ",";
    s += labels[i].first + "=\"" + Escape(labels[i].second) + "\"";
  }
  if (!extra.empty()) s += (labels.empty() ? "" : ",") + extra;
  return s + "}";
}

Metrics::Family& Metrics::Get(const std::string& name, Type type) {
  auto [it, inserted] = families_.try_emplace(name);
  if (inserted) {
    it->second.type = type;
    if (type == Type::kHistogram) it->second.buckets = LatencyBuckets();
  }
  return it->second;
}

void Metrics::DeclareCounter(const std::string& name, const std::string& help) {
  std::lock_guard<std::mutex> l(mu_);
  Get(name, Type::kCounter).help = help;
}
void Metrics::DeclareGauge(const std::string& name, const std::string& help) {
  std::lock_guard<std::mutex> l(mu_);
  Get(name, Type::kGauge).help = help;
}
void Metrics::DeclareHistogram(const std::string& name, const std::string& help,
                               std::vector<double> buckets) {
  std::lock_guard<std::mutex> l(mu_);
  Family& f = Get(name, Type::kHistogram);
  f.help = help;
  f.buckets = std::move(buckets);
}

void Metrics::Add(const std::string& name, const Labels& labels, double delta) {
  std::lock_guard<std::mutex> l(mu_);
  Get(name, Type::kCounter).values[RenderLabels(labels)] += delta;
}

void Metrics::Set(const std::string& name, const Labels& labels, double value) {
  std::lock_guard<std::mutex> l(mu_);
  Get(name, Type::kGauge).values[RenderLabels(labels)] = value;
}

void Metrics::Observe(const std::string& name, const Labels& labels, double value) {
  std::lock_guard<std::mutex> l(mu_);
  Family& f = Get(name, Type::kHistogram);
  Hist& h = f.hists[RenderLabels(labels)];
  if (h.counts.empty()) h.counts.assign(f.buckets.size() + 1, 0);
  size_t i = 0;
  while (i < f.buckets.size() && value > f.buckets[i]) ++i;
  ++h.counts[i];
  h.sum += value;
  ++h.count;
}

double Metrics::Value(const std::string& name, const Labels& labels) const {
  std::lock_guard<std::mutex> l(mu_);
  auto it = families_.find(name);
  if (it == families_.end()) return 0;
  auto v = it->second.values.find(RenderLabels(labels));
  return v == it->second.values.end() ? 0 : v->second;
}

std::string Metrics::RenderPrometheus() const {
  std::lock_guard<std::mutex> l(mu_);
  std::string out;
  for (const auto& [name, f] : families_) {
    const char* type = f.type == Type::kCounter ? "counter"
                       : f.type == Type::kGauge ? "gauge"
                                                : "histogram";
    if (!f.help.empty()) out += "# HELP " + name + " " + f.help + "\n";
    out += "# TYPE " + name + " " + type + "\n";
    if (f.type != Type::kHistogram) {
      if (f.values.empty() && f.type == Type::kCounter) out += name + " 0\n";
      for (const auto& [labels, v] : f.values) out += name + labels + " " + Num(v) + "\n";
      continue;
    }
    for (const auto& [labels, h] : f.hists) {
      // Re-open the rendered label set to append le="...".
      const std::string inner = labels.empty() ? "" : labels.substr(1, labels.size() - 2);
      uint64_t cum = 0;
      for (size_t i = 0; i <= f.buckets.size(); ++i) {
        cum += h.counts[i];
        const std::string le =
            "le=\"" + (i < f.buckets.size() ? Num(f.buckets[i]) : std::string("+Inf")) + "\"";
        out += name + "_bucket{" + inner + (inner.empty() ? "" : ",") + le + "} " +
               std::to_string(cum) + "\n";
      }
      out += name + "_sum" + labels + " " + Num(h.sum) + "\n";
      out += name + "_count" + labels + " " + std::to_string(h.count) + "\n";
    }
  }
  return out;
}

}  // namespace pocket::server
