#include "runtime/sampling.h"

#include <algorithm>
#include <cmath>
#include <random>
#include <unordered_set>

#include "base/check.h"
#include "kernels/kernels.h"

namespace pocket::runtime {
namespace {

uint64_t SplitMix64(uint64_t& x) {
  uint64_t z = (x += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

uint64_t Rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t FreshSeed() {
  std::random_device rd;
  uint64_t s = (static_cast<uint64_t>(rd()) << 32) ^ rd();
  // Keep clear of the sentinel so the reported seed reproduces the run.
  return s == kRandomSeed ? s + 1 : s;
}

}  // namespace

Rng::Rng(uint64_t seed) {
  uint64_t x = seed;
  for (auto& s : s_) s = SplitMix64(x);
}

uint64_t Rng::NextU64() {
  const uint64_t result = Rotl(s_[1] * 5, 7) * 9;
  const uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = Rotl(s_[3], 45);
  return result;
}

double Rng::NextDouble() { return static_cast<double>(NextU64() >> 11) * 0x1.0p-53; }

int32_t ArgMax(std::span<const float> logits) {
  PK_CHECK(!logits.empty());
  size_t best = 0;
  for (size_t i = 1; i < logits.size(); ++i) {
    if (logits[i] > logits[best]) best = i;
  }
  return static_cast<int32_t>(best);
}

void ApplyRepetitionPenalty(std::span<float> logits, std::span<const int32_t> history,
                            float penalty, int last_n) {
  if (penalty == 1.0f || last_n == 0 || history.empty()) return;
  size_t n = history.size();
  if (last_n > 0) n = std::min(n, static_cast<size_t>(last_n));
  std::unordered_set<int32_t> seen;
  for (size_t i = history.size() - n; i < history.size(); ++i) {
    const int32_t t = history[i];
    if (t < 0 || static_cast<size_t>(t) >= logits.size() || !seen.insert(t).second) continue;
    float& l = logits[static_cast<size_t>(t)];
    l = l <= 0 ? l * penalty : l / penalty;
  }
}

Sampler::Sampler(const SamplingParams& params)
    : params_(params),
      seed_(params.seed == kRandomSeed ? FreshSeed() : params.seed),
      rng_(seed_) {}

int32_t Sampler::Sample(std::span<const float> logits, std::span<const int32_t> history) {
  PK_CHECK(!logits.empty());
  const size_t vocab = logits.size();
  work_.assign(logits.begin(), logits.end());
  // NaN would break the strict weak order the sorts below need.
  for (float& l : work_) {
    if (std::isnan(l)) l = -INFINITY;
  }
  ApplyRepetitionPenalty(work_, history, params_.repeat_penalty, params_.repeat_last_n);
  if (params_.temperature <= 0.0f) return ArgMax(work_);
  const bool min_p_on = params_.min_p > 0.0f && params_.min_p <= 1.0f;
  const bool top_k_on = params_.top_k > 0 && static_cast<size_t>(params_.top_k) < vocab;
  if (!top_k_on && params_.top_p >= 1.0f && !min_p_on) {
    // No truncation: a draw from the tempered softmax may walk the tokens in any fixed
    // order, so id order, with no sort and no candidate list (this is the OpenAI API's
    // default, and the whole cost of sampling a 128k vocabulary per token).
    const int32_t best = ArgMax(work_);
    const float inv_temp = 1.0f / params_.temperature;
    if (!std::isfinite(work_[static_cast<size_t>(best)] * inv_temp)) return best;  // +-inf only
    for (float& l : work_) l *= inv_temp;
    kernels::Softmax(work_.data(), vocab);  // vectorised exp: work_ holds probabilities now
    const double u = rng_.NextDouble();
    double cum = 0;
    for (size_t i = 0; i < vocab; ++i) {
      cum += work_[i];
      if (u < cum) return static_cast<int32_t>(i);
    }
    return best;  // u beyond the float sum's rounding
  }

  candidates_.resize(vocab);
  for (size_t i = 0; i < vocab; ++i) candidates_[i] = {static_cast<int32_t>(i), work_[i], 0.0f};

  // A total order (ties broken by id) makes the result independent of the sort algorithm.
  const auto before = [](const Candidate& a, const Candidate& b) {
    return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
  };
  size_t n = vocab;
  if (top_k_on) {
    n = static_cast<size_t>(params_.top_k);
    std::partial_sort(candidates_.begin(), candidates_.begin() + static_cast<ptrdiff_t>(n),
                      candidates_.end(), before);
  } else {
    // top-p and min-p keep a prefix of the sorted order, usually a short one: sort a
    // growing prefix until the cut falls inside it, instead of all of a 128k vocabulary
    // (a full sort was ~10 ms a token, a third of a 1B model's decode step).
    float max_logit = -INFINITY;
    for (const Candidate& c : candidates_) max_logit = std::max(max_logit, c.logit);
    double total = 0;
    if (params_.top_p < 1.0f) {
      for (const Candidate& c : candidates_) total += std::exp(c.logit - max_logit);
    }
    const float threshold = min_p_on ? max_logit + std::log(params_.min_p) : -INFINITY;
    for (size_t k = std::min<size_t>(64, vocab);; k = k * 8 >= vocab / 4 ? vocab : k * 8) {
      // partial_sort is a heap: past a quarter of the vocabulary a full sort is faster.
      if (k == vocab) {
        std::sort(candidates_.begin(), candidates_.end(), before);
        break;
      }
      std::partial_sort(candidates_.begin(), candidates_.begin() + static_cast<ptrdiff_t>(k),
                        candidates_.end(), before);
      if (candidates_[k - 1].logit < threshold) break;
      if (params_.top_p < 1.0f) {
        double cum = 0;
        size_t i = 0;
        while (i < k && cum < params_.top_p) cum += std::exp(candidates_[i++].logit - max_logit) / total;
        if (cum >= params_.top_p) break;
      }
    }
  }

  // top-p on the softmax of the (untempered) logits, as llama.cpp does.
  if (params_.top_p < 1.0f) {
    const float max_logit = candidates_[0].logit;
    double sum = 0;
    for (size_t i = 0; i < n; ++i) {
      candidates_[i].p = std::exp(candidates_[i].logit - max_logit);
      sum += candidates_[i].p;
    }
    double cum = 0;
    for (size_t i = 0; i < n; ++i) {
      cum += candidates_[i].p / sum;
      if (cum >= params_.top_p) {
        n = i + 1;
        break;
      }
    }
  }

  // min-p: keep p_i >= min_p * p_max, i.e. logit_i >= max_logit + log(min_p).
  if (params_.min_p > 0.0f && params_.min_p <= 1.0f) {
    const float threshold = candidates_[0].logit + std::log(params_.min_p);
    size_t keep = 1;
    while (keep < n && candidates_[keep].logit >= threshold) ++keep;
    n = keep;
  }

  // Temperature, then a draw from the softmax of what is left.
  const float inv_temp = 1.0f / params_.temperature;
  const float max_scaled = candidates_[0].logit * inv_temp;
  double sum = 0;
  for (size_t i = 0; i < n; ++i) {
    candidates_[i].p = std::exp(candidates_[i].logit * inv_temp - max_scaled);
    sum += candidates_[i].p;
  }
  const double u = rng_.NextDouble() * sum;
  double cum = 0;
  for (size_t i = 0; i < n; ++i) {
    cum += candidates_[i].p;
    if (u < cum) return candidates_[i].id;
  }
  return candidates_[n - 1].id;
}

}  // namespace pocket::runtime
