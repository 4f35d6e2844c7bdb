// Token sampling on a logit vector: repetition penalty, top-k, top-p, min-p, temperature,
// then a draw from a seeded portable RNG (or argmax when temperature <= 0). The order is
// llama.cpp's default chain (penalties -> top_k -> top_p -> min_p -> temperature -> dist),
// so the same flags mean the same thing here and there.
// Determinism: same SamplingParams (with a fixed seed) and same logits => same tokens: the
// RNG is our own xoshiro256**, every ordering breaks ties by token id and every sum has a
// fixed order. Across CPUs whose kernels run another SIMD target, the exp of a logit may
// differ in its last bit (model::ScaledExp, i.e. kernels::ScaledExp), which can move a draw
// that falls exactly on a boundary.
// Called by runtime::Session and by tests. Thread safety: a Sampler is not thread-safe
// (it owns RNG state); use one per session.
#pragma once

#include <cstdint>
#include <span>
#include <utility>
#include <vector>

namespace pocket::runtime {

// The seed value that asks for a fresh random seed (llama.cpp's LLAMA_DEFAULT_SEED).
inline constexpr uint64_t kRandomSeed = 0xFFFFFFFF;

struct SamplingParams {
  float temperature = 0.8f;    // <= 0: greedy (argmax after the repetition penalty)
  int top_k = 40;              // <= 0: whole vocabulary
  float top_p = 0.95f;         // >= 1: off
  float min_p = 0.05f;         // <= 0: off; keeps p >= min_p * p_max
  float repeat_penalty = 1.0f; // 1: off; llama.cpp's rule (logit>0: /= penalty, else *= penalty)
  int repeat_last_n = 64;      // how many recent tokens the penalty looks at; 0 off, -1 all
  uint64_t seed = kRandomSeed; // kRandomSeed: random
  // Added to a token's logit before everything else but the repetition penalty (OpenAI's
  // logit_bias); a bias of -100 or less bans the token (-inf). Ids outside the vocabulary
  // are ignored.
  std::vector<std::pair<int32_t, float>> logit_bias;
};

// xoshiro256** (Blackman & Vigna), seeded through splitmix64. Bit-exact everywhere.
class Rng {
 public:
  explicit Rng(uint64_t seed);
  uint64_t NextU64();
  // Uniform in [0, 1) with 53 random bits.
  double NextDouble();

 private:
  uint64_t s_[4];
};

class Sampler {
 public:
  // A seed of kRandomSeed is replaced by one from std::random_device (see seed()).
  explicit Sampler(const SamplingParams& params);

  // Picks the next token. `logits` has vocab_size entries (not modified); `history` is the
  // tokens seen so far in this sequence (prompt and generated), for the repetition penalty.
  // REQUIRES: !logits.empty().
  int32_t Sample(std::span<const float> logits, std::span<const int32_t> history);

  // The seed actually in use (the random one when kRandomSeed was asked for).
  uint64_t seed() const { return seed_; }
  const SamplingParams& params() const { return params_; }

 private:
  struct Candidate {
    int32_t id;
    float logit;
    float p;
  };
  static constexpr size_t kDrawBlock = 1024;
  // A token drawn with probability proportional to p[i] (p >= 0, not normalised);
  // `fallback` when every p is 0.
  int32_t Draw(std::span<const float> p, int32_t fallback);
  // Sum of p in an order fixed by its length alone; leaves the per-block sums (blocks of
  // kDrawBlock) in block_sums_.
  double FixedOrderSum(std::span<const float> p);

  SamplingParams params_;
  uint64_t seed_;
  Rng rng_;
  std::vector<float> work_;            // scratch, reused across calls
  std::vector<double> block_sums_;     // scratch for Draw
  std::vector<float> kept_logits_;     // scratch
  std::vector<Candidate> candidates_;  // scratch
};

// Greedy choice: the highest logit, the lowest id among ties. REQUIRES: !logits.empty().
int32_t ArgMax(std::span<const float> logits);

// Applies llama.cpp's repetition penalty in place to every distinct token among the last
// `last_n` entries of `history` (-1: all of it).
void ApplyRepetitionPenalty(std::span<float> logits, std::span<const int32_t> history,
                            float penalty, int last_n);

}  // namespace pocket::runtime
