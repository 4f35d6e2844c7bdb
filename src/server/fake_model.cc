#include "server/fake_model.h"

#include <chrono>
#include <cmath>
#include <thread>
#include <vector>

#include "runtime/sampling.h"

namespace pocket::server {
namespace {

constexpr const char* kWords[] = {"the", "small", "model", "runs", "on", "your", "own",
                                  "machine", "and", "answers", "quickly", "with", "care",
                                  "local", "first", "pocket", "tokens", "flow", "here", "now"};
constexpr int kNumWords = sizeof(kWords) / sizeof(kWords[0]);

uint64_t Fnv1a(std::string_view s, uint64_t h = 1469598103934665603ull) {
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

}  // namespace

std::string FakeModel::RenderPrompt(const runtime::GenerateRequest& r) {
  if (r.messages.empty()) return r.prompt;
  std::string p;
  for (const auto& m : r.messages) p += m.role + ": " + m.content + "\n";
  return p + "assistant:";
}

Result<int> FakeModel::CountPromptTokens(const runtime::GenerateRequest& request) const {
  return static_cast<int>(RenderPrompt(request).size()) + 1;  // + BOS
}

Result<runtime::GenerateResult> FakeModel::Generate(
    const runtime::GenerateRequest& request, const std::function<bool(std::string_view)>& on_text,
    GenerationStats* stats) {
  if (stats) stats->queue_wait_s = 0;
  const std::string prompt = RenderPrompt(request);
  runtime::GenerateResult res;
  PK_ASSIGN_OR_RETURN(res.prompt_tokens, CountPromptTokens(request));
  if (res.prompt_tokens >= context_length_)
    return Status::InvalidArgument("prompt of " + std::to_string(res.prompt_tokens) +
                                   " tokens does not fit the context of " +
                                   std::to_string(context_length_));
  int budget = context_length_ - res.prompt_tokens;
  if (request.max_tokens >= 0) budget = std::min(budget, request.max_tokens);
  const uint64_t seed = request.sampling.seed == runtime::kRandomSeed ? 42 : request.sampling.seed;
  res.seed = seed;
  runtime::Rng rng(Fnv1a(prompt, seed * 0x9E3779B97F4A7C15ull + 1));
  // Greedy (temperature <= 0) ignores the seed, as a real sampler would.
  runtime::Rng greedy(Fnv1a(prompt));
  runtime::Rng& r = request.sampling.temperature <= 0 ? greedy : rng;
  res.finish_reason = "length";
  // JSON mode: a small object of word strings, one token per key, colon, value or comma,
  // then "stop" when it closes (as the runtime's constraint does).
  std::vector<std::string> json_pieces;
  if (request.response_format == runtime::ResponseFormat::kJsonObject) {
    json_pieces.push_back("{");
    const int keys = 1 + static_cast<int>(r.NextU64() % 3);
    for (int k = 0; k < keys; ++k) {
      if (k > 0) json_pieces.push_back(", ");
      json_pieces.push_back("\"" + std::string(kWords[r.NextU64() % kNumWords]) + "\"");
      json_pieces.push_back(": ");
      json_pieces.push_back("\"" + std::string(kWords[r.NextU64() % kNumWords]) + " " +
                            kWords[r.NextU64() % kNumWords] + "\"");
    }
    json_pieces.push_back("}");
  }
  std::string pending;
  for (int i = 0; i < budget; ++i) {
    if (token_delay_ms_ > 0) std::this_thread::sleep_for(std::chrono::milliseconds(token_delay_ms_));
    std::string piece;
    if (!json_pieces.empty()) {
      piece = json_pieces[static_cast<size_t>(i)];
    } else {
      const int w = static_cast<int>(r.NextU64() % kNumWords);
      piece = (i == 0 ? "" : " ") + std::string(kWords[w]);
    }
    ++res.completion_tokens;
    pending += piece;
    bool stopped = false;
    for (const auto& s : request.stop) {
      if (s.empty()) continue;
      if (size_t at = (res.text + pending).find(s); at != std::string::npos) {
        // A stop string that began in text already sent cannot be taken back: end here.
        pending = at >= res.text.size()
                      ? (res.text + pending).substr(res.text.size(), at - res.text.size())
                      : std::string();
        stopped = true;
        break;
      }
    }
    if (!pending.empty()) {
      res.text += pending;
      if (!on_text(pending)) {
        res.finish_reason = "cancelled";
        return res;
      }
      pending.clear();
    }
    if (stopped || (!json_pieces.empty() && static_cast<size_t>(i) + 1 == json_pieces.size())) {
      res.finish_reason = "stop";
      return res;
    }
  }
  return res;
}

Result<std::vector<float>> FakeModel::Embed(std::string_view text, int* tokens) {
  if (tokens) *tokens = static_cast<int>(text.size()) + 1;
  if (static_cast<int>(text.size()) + 1 > context_length_)
    return Status::InvalidArgument("input of " + std::to_string(text.size() + 1) +
                                   " tokens does not fit the context of " +
                                   std::to_string(context_length_));
  std::vector<float> v(64, 0.0f);
  for (size_t i = 0; i + 3 <= text.size(); ++i) v[Fnv1a(text.substr(i, 3)) % 64] += 1.0f;
  v[Fnv1a(text) % 64] += 0.5f;
  double norm = 0;
  for (float x : v) norm += static_cast<double>(x) * x;
  norm = std::sqrt(norm);
  for (float& x : v) x = static_cast<float>(x / norm);
  return v;
}

}  // namespace pocket::server
