// libFuzzer: arbitrary bytes as a chat template. Parse and Apply must return a Status, never
// crash, hang or grow without bound (depth, step and output budgets).
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "tokenizer/chat_template.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using pocket::tokenizer::ChatMessage;
  using pocket::tokenizer::ChatTemplate;
  const std::string_view source(reinterpret_cast<const char*>(data), size);
  auto t = ChatTemplate::Parse(source);
  if (!t.ok()) return 0;
  const std::vector<ChatMessage> messages = {
      {"system", "S"}, {"user", "hi {{ x }}"}, {"assistant", "ok"}, {"user", "again"}};
  auto out = t->Apply(messages, true, "<s>", "</s>");
  (void)out;
  return 0;
}
