#include "runtime/sampling.h"

#include <algorithm>
#include <cmath>
#include <random>
#include <unordered_set>

#include "base/check.h"
#include "model/logits.h"

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
  return static_cast<int32_t>(model::ArgMax(logits.data(), logits.size()));
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
  // Every pass below is over the whole vocabulary (128k for Llama 3), once per token: the
  // logits are copied only when the repetition penalty changes them.
  std::span<const float> l = logits;
  if (params_.repeat_penalty != 1.0f && params_.repeat_last_n != 0 && !history.empty()) {
    work_.assign(logits.begin(), logits.end());
    ApplyRepetitionPenalty(work_, history, params_.repeat_penalty, params_.repeat_last_n);
    l = work_;
  }
  if (!params_.logit_bias.empty()) {
    if (l.data() != work_.data()) work_.assign(logits.begin(), logits.end());
    for (const auto& [id, bias] : params_.logit_bias) {
      if (id < 0 || static_cast<size_t>(id) >= vocab) continue;
      float& v = work_[static_cast<size_t>(id)];
      v = bias <= -100.0f ? -INFINITY : v + bias;
    }
    l = work_;
  }
  const int32_t best = ArgMax(l);  // NaN logits never win, here or below
  if (params_.temperature <= 0.0f) return best;
  const bool min_p_on = params_.min_p > 0.0f && params_.min_p <= 1.0f;
  const bool top_k_on = params_.top_k > 0 && static_cast<size_t>(params_.top_k) < vocab;
  if (!top_k_on && params_.top_p >= 1.0f && !min_p_on) {
    // No truncation (the OpenAI API's default): a draw from the tempered softmax may walk
    // the tokens in any fixed order, so id order, with no sort and no candidate list.
    const float inv_temp = 1.0f / params_.temperature;
    const float top = l[static_cast<size_t>(best)] * inv_temp;
    if (!std::isfinite(top)) return best;  // +-inf only
    work_.resize(vocab);
    model::ScaledExp(l.data(), vocab, inv_temp, top, work_.data());
    return Draw(work_, best);
  }

  // A total order (ties broken by id) makes the result independent of the sort algorithm.
  // NaN would break it: a NaN logit counts as -inf.
  const auto before = [](const Candidate& a, const Candidate& b) {
    return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
  };
  const auto logit_at = [&](size_t i) { return std::isnan(l[i]) ? -INFINITY : l[i]; };
  const float max_logit = l[static_cast<size_t>(best)];
  if (!std::isfinite(max_logit)) return best;  // +-inf (or all NaN)
  // top-p's softmax: over the k kept with top-k, over the whole vocabulary without.
  double top_p_total = 0;
  if (top_k_on) {
    // The k best in one pass with a bounded heap whose top is the worst kept: a later
    // token enters only with a strictly higher logit (at equal logits the lower id wins).
    const size_t k = static_cast<size_t>(params_.top_k);
    candidates_.resize(k);
    for (size_t i = 0; i < k; ++i) candidates_[i] = {static_cast<int32_t>(i), logit_at(i), 0.0f};
    std::make_heap(candidates_.begin(), candidates_.end(), before);
    for (size_t i = k; i < vocab; ++i) {
      const float v = logit_at(i);
      if (!(v > candidates_.front().logit)) continue;
      std::pop_heap(candidates_.begin(), candidates_.end(), before);
      candidates_.back() = {static_cast<int32_t>(i), v, 0.0f};
      std::push_heap(candidates_.begin(), candidates_.end(), before);
    }
    std::sort_heap(candidates_.begin(), candidates_.end(), before);
    for (const Candidate& c : candidates_) top_p_total += std::exp(c.logit - max_logit);
  } else {
    // top-p and min-p keep a prefix of the sorted order. Only that prefix is sorted: the
    // tokens are bucketed by how far their logit is below the maximum (1/8 nat per bucket),
    // the buckets' probability mass locates the top-p cut, and only the tokens of the
    // buckets up to it (and above the min-p threshold) become candidates. A flat
    // distribution (a random model's) keeps most of a 128k vocabulary: a full sort was
    // ~10 ms a token.
    constexpr int kBuckets = 256;
    constexpr float kPerNat = 8.0f;
    work_.resize(vocab);
    model::ScaledExp(l.data(), vocab, 1.0f, max_logit, work_.data());
    top_p_total = FixedOrderSum(work_);
    const auto bucket_of = [&](float logit) {
      const float below = max_logit - logit;  // >= 0; +inf for -inf
      return below < (kBuckets - 1) / kPerNat ? static_cast<int>(below * kPerNat) : kBuckets - 1;
    };
    const float min_p_logit = min_p_on ? max_logit + std::log(params_.min_p) : -INFINITY;
    int last_bucket = kBuckets - 1;
    if (params_.top_p < 1.0f) {
      double mass[kBuckets] = {};
      for (size_t i = 0; i < vocab; ++i) mass[bucket_of(logit_at(i))] += work_[i];
      // One bucket past the cut, and then some mass, so that rounding (these sums against
      // the walk over the sorted candidates below) cannot leave the cut outside.
      const double target = static_cast<double>(params_.top_p) * top_p_total;
      double cum = 0;
      int b = 0;
      while (b < kBuckets - 1 && cum < target) cum += mass[b++];
      while (b < kBuckets - 1 && cum < target + 1e-4 * top_p_total) cum += mass[b++];
      last_bucket = b;
    }
    candidates_.clear();
    for (size_t i = 0; i < vocab; ++i) {
      const float v = logit_at(i);
      if (v >= min_p_logit && bucket_of(v) <= last_bucket) {
        candidates_.push_back({static_cast<int32_t>(i), v, 0.0f});
      }
    }
    std::sort(candidates_.begin(), candidates_.end(), before);
  }
  size_t n = candidates_.size();

  // top-p on the softmax of the (untempered) logits, as llama.cpp does. Not reaching p
  // within the candidates means min-p cut first (or rounding): all of them stay.
  if (params_.top_p < 1.0f) {
    double cum = 0;
    for (size_t i = 0; i < n; ++i) {
      cum += std::exp(static_cast<double>(candidates_[i].logit) - max_logit) / top_p_total;
      if (cum >= params_.top_p) {
        n = i + 1;
        break;
      }
    }
  }

  // min-p: keep p_i >= min_p * p_max, i.e. logit_i >= max_logit + log(min_p).
  if (min_p_on) {
    const float threshold = max_logit + std::log(params_.min_p);
    size_t keep = 1;
    while (keep < n && candidates_[keep].logit >= threshold) ++keep;
    n = keep;
  }

  // Temperature, then a draw from the softmax of what is left.
  const float inv_temp = 1.0f / params_.temperature;
  kept_logits_.resize(n);
  for (size_t i = 0; i < n; ++i) kept_logits_[i] = candidates_[i].logit;
  model::ScaledExp(kept_logits_.data(), n, inv_temp, max_logit * inv_temp, kept_logits_.data());
  return candidates_[static_cast<size_t>(Draw(kept_logits_, 0))].id;
}

double Sampler::FixedOrderSum(std::span<const float> p) {
  // 16 running float sums per block of 1024 (whatever the vector width), then in double.
  constexpr size_t kLanes = 16;
  const size_t n = p.size(), num_blocks = (n + kDrawBlock - 1) / kDrawBlock;
  block_sums_.resize(num_blocks);
  double total = 0;
  for (size_t b = 0; b < num_blocks; ++b) {
    const size_t i1 = std::min(n, (b + 1) * kDrawBlock);
    size_t i = b * kDrawBlock;
    float acc[kLanes] = {};
    for (; i + kLanes <= i1; i += kLanes) {
      for (size_t j = 0; j < kLanes; ++j) acc[j] += p[i + j];
    }
    double s = 0;
    for (; i < i1; ++i) s += p[i];
    for (float a : acc) s += a;
    block_sums_[b] = s;
    total += s;
  }
  return total;
}

int32_t Sampler::Draw(std::span<const float> p, int32_t fallback) {
  // The block sums in a fixed order (so the token drawn does not depend on the compiler's
  // or the CPU's vector width), then one walk over them and one inside the chosen block.
  const double total = FixedOrderSum(p);
  const size_t n = p.size(), num_blocks = block_sums_.size();
  const double u = rng_.NextDouble() * total;
  double cum = 0;
  for (size_t b = 0; b < num_blocks; ++b) {
    if (u >= cum + block_sums_[b] && b + 1 < num_blocks) {
      cum += block_sums_[b];
      continue;
    }
    // The walk inside sums in another order than the block sum; past its end (rounding),
    // the block's last token with a non-zero probability is the draw.
    int32_t last = fallback;
    for (size_t i = b * kDrawBlock; i < std::min(n, (b + 1) * kDrawBlock); ++i) {
      if (p[i] <= 0.0f) continue;
      cum += p[i];
      last = static_cast<int32_t>(i);
      if (u < cum) return last;
    }
    return last;
  }
  return fallback;
}

}  // namespace pocket::runtime
