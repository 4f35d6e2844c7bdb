// libFuzzer target: the usage a remote reports, from untrusted bytes. Each input line is one
// response body or stream event (JSON); the first two bytes pick the request's bounds.
// Nothing may crash, and whatever the remote says, the settlement stays within
// [0, reservation] and believes only counts within the request's bounds.
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string_view>

#include "base/check.h"
#include "router/router.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace pocket::router;
  if (size < 2) return 0;
  static const Backend* backend = [] {
    auto* b = new Backend;
    b->name = "cloud";
    b->kind = BackendKind::kRemote;
    b->price_input_per_1k = 0.5;
    b->price_output_per_1k = 1.5;
    return b;
  }();
  RoutePlan plan;
  plan.backend = backend;
  plan.reservation_id = 1;
  plan.reserved_prompt_tokens = data[0] * 97;
  plan.reserved_completion_tokens = data[1] * 31;
  plan.reserved_micro_usd =
      CostMicros(*backend, plan.reserved_prompt_tokens, plan.reserved_completion_tokens);
  std::string_view text(reinterpret_cast<const char*>(data) + 2, size - 2);
  UsageReport usage;
  while (!text.empty()) {
    const size_t nl = text.find('\n');
    const std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    nlohmann::json event = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (event.is_object()) usage.Read(event);
  }
  for (const bool complete : {true, false}) {
    const Settlement s = Router::Assess(plan, usage, complete);
    PK_CHECK(s.micro_usd >= 0 && s.micro_usd <= plan.reserved_micro_usd);
    PK_CHECK(s.prompt_tokens >= 0 && s.prompt_tokens <= plan.reserved_prompt_tokens);
    PK_CHECK(s.completion_tokens >= 0 && s.completion_tokens <= plan.reserved_completion_tokens);
    if (s.anomaly.empty() && usage.reports() > 0) {
      PK_CHECK(s.prompt_tokens == usage.prompt_tokens());
      PK_CHECK(s.completion_tokens == usage.completion_tokens());
    } else {
      PK_CHECK(s.micro_usd == plan.reserved_micro_usd);
    }
  }
  return 0;
}
