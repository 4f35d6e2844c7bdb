// libFuzzer: arbitrary bytes as the body of a chat, completion and embeddings request,
// through what the server does with a body before any model runs: ParseRequestBody (bounded
// depth), the endpoint's validation, the copy and serialisation a request routed to a
// remote gets, and truncation against a small fake model, with server defaults for the
// sampling fields a body leaves out. None of it may throw or crash; an accepted request
// keeps within the limits it was checked against.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include <nlohmann/json.hpp>

#include "base/check.h"
#include "server/fake_model.h"
#include "server/request.h"
#include "server/truncate.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using pocket::server::RequestLimits;
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  nlohmann::json body;
  if (pocket::server::ParseRequestBody(bytes, &body)) return 0;
  PK_CHECK(body.is_object());
  RequestLimits limits;
  limits.max_messages = 64;
  limits.max_prompt_bytes = 4096;
  // A request routed to a remote is copied and serialised whole.
  nlohmann::json copy = body;
  copy.erase("pocket");
  (void)copy.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);

  // Server defaults (`pocket serve --temp/-n/--seed`) stand in for what a body leaves out;
  // a limit the body sets is in range and marked as its own.
  pocket::server::GenerationDefaults defaults;
  defaults.temperature = 0.5f;
  defaults.seed = 5;
  defaults.max_tokens = 7;
  for (const bool chat : {true, false}) {
    pocket::server::GenerationFields f;
    if (pocket::server::ParseGenerationRequest(body, chat, limits, &f, defaults)) continue;
    PK_CHECK(f.max_tokens_requested ? f.gen.max_tokens >= 1 && f.gen.max_tokens <= (1 << 24)
                                    : f.gen.max_tokens == 7);
    PK_CHECK(f.gen.sampling.temperature >= 0 && f.gen.sampling.temperature <= 2);
    size_t text = f.gen.prompt.size();
    for (const auto& m : f.gen.messages) text += m.content.size();
    PK_CHECK(text <= limits.max_prompt_bytes);
    PK_CHECK(f.gen.messages.size() <= limits.max_messages);
    if (!chat) continue;
    PK_CHECK(!f.gen.messages.empty());
    pocket::server::FakeModel model("fuzz", 64, 0);
    const int whole = *model.CountPromptTokens(f.gen);
    if (whole + 1 > 64) {
      auto t = pocket::server::TruncateToFit(model, &f.gen, whole, 1, 64, nullptr);
      PK_CHECK(t.ok());
      PK_CHECK(t->prompt_tokens == *model.CountPromptTokens(f.gen));
      PK_CHECK(t->fits == (t->prompt_tokens + 1 <= 64));
    }
  }
  pocket::server::EmbeddingsFields e;
  if (!pocket::server::ParseEmbeddingsRequest(body, limits, &e)) {
    PK_CHECK(!e.inputs.empty() && e.inputs.size() <= 2048);
  }
  return 0;
}
