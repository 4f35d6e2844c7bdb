// Engine's chat-template plumbing: the model's tokenizer.chat_template, a builtin or Jinja
// override (--chat-template), and the conversion to the tokenizer's message type.
#include "runtime/engine_impl.h"

namespace pocket::runtime {
namespace {

std::string TokenText(const tokenizer::Tokenizer& tok, int32_t id) {
  const auto& tokens = tok.vocab().tokens;
  if (id < 0 || static_cast<size_t>(id) >= tokens.size()) return "";
  return tokens[static_cast<size_t>(id)];
}

}  // namespace

Status LoadChatTemplate(EngineImpl& impl) {
  auto parsed = tokenizer::ChatTemplate::FromGguf(impl.model->gguf());
  if (!parsed.ok() && parsed.status().code() == StatusCode::kNotFound) {
    // The model has no tokenizer.chat_template: llama.cpp's fallback.
    auto chatml = tokenizer::ChatTemplate::Builtin("chatml");
    if (!chatml.ok()) return chatml.status();
    impl.chat_template = std::move(*chatml);
    return Status::Ok();
  }
  if (parsed.ok()) {
    impl.chat_template = std::move(*parsed);
  } else {
    // Plain generation still works; chat requests report this (naming --chat-template).
    impl.chat_template_error = parsed.status().WithContext(impl.path + ": chat template");
  }
  return Status::Ok();
}

Result<std::string> Engine::ApplyChatTemplate(std::span<const ChatMessage> messages,
                                              bool add_generation_prompt) const {
  if (!impl_->chat_template) return impl_->chat_template_error;
  std::vector<tokenizer::ChatMessage> converted;
  converted.reserve(messages.size());
  for (const auto& m : messages) converted.push_back({m.role, m.content});
  const tokenizer::Tokenizer& tok = *impl_->tokenizer;
  return impl_->chat_template->Apply(converted, add_generation_prompt, TokenText(tok, tok.bos()),
                                     TokenText(tok, tok.eos()));
}

Status Engine::SetChatTemplate(const std::string& name_or_jinja) {
  if (name_or_jinja.empty()) return Status::InvalidArgument("chat template: empty");
  // Text without Jinja tags is a builtin's name (Builtin() lists the names if unknown).
  const bool is_builtin = name_or_jinja.find("{%") == std::string::npos &&
                          name_or_jinja.find("{{") == std::string::npos;
  auto t = is_builtin ? tokenizer::ChatTemplate::Builtin(name_or_jinja)
                      : tokenizer::ChatTemplate::Parse(name_or_jinja);
  if (!t.ok()) return t.status();  // the tokenizer names the template and the choices
  impl_->chat_template = std::move(*t);
  return Status::Ok();
}

}  // namespace pocket::runtime
