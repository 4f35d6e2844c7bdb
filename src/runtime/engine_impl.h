// Internal to src/runtime: what an Engine holds, shared by engine.cc and measure.cc.
// Not for other layers (they use engine.h).
#pragma once

#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "model/llama.h"
#include "runtime/engine.h"
#include "runtime/json_constraint.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace pocket::runtime {

// KV entries are stored as F16, llama.cpp's default, which also keeps perplexity figures
// comparable with llama-perplexity.
inline constexpr tensor::DType kKvDType = tensor::DType::kF16;

// Reads tokenizer.chat_template; chatml when the model has none (chat_template.cc).
Status LoadChatTemplate(EngineImpl& impl);

// What `engine` holds. For src/runtime only (and its tests); other layers use engine.h.
EngineImpl& ImplOf(const Engine& engine);

class EngineImpl {
 public:
  std::string path;
  std::unique_ptr<model::LlamaModel> model;
  std::unique_ptr<tokenizer::Tokenizer> tokenizer;
  // The model's template (or the override); when the model's could not be parsed and no
  // override was set, chat_template_error says why and chat requests fail with it.
  std::optional<tokenizer::ChatTemplate> chat_template;
  Status chat_template_error;
  int context_length = 0;
  // LlamaModel::Forward is single-threaded by contract; sessions share the model.
  std::mutex forward_mu;

  // Every token's piece for JSON mode, built by the first request that asks for it (about
  // O(vocab log vocab)); shared by all sessions after that.
  const JsonTokenTable& json_tokens() {
    std::call_once(json_once_, [this] {
      json_tokens_ = std::make_unique<JsonTokenTable>(
          *tokenizer, static_cast<size_t>(model->config().vocab_size));
    });
    return *json_tokens_;
  }

  Status Forward(std::span<model::BatchEntry> batch, std::vector<float>* logits) {
    std::lock_guard<std::mutex> lock(forward_mu);
    return model->Forward(batch, logits);
  }

 private:
  std::once_flag json_once_;
  std::unique_ptr<JsonTokenTable> json_tokens_;
};

}  // namespace pocket::runtime
