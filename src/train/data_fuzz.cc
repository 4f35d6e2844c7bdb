// libFuzzer: arbitrary bytes as the lines of a JSONL chat file. ParseChatRecord must return a
// Status, never crash or throw; a record it accepts is rendered with the ChatML template and
// tokenized with assistant-only targets (a byte-level vocabulary with ChatML specials), which
// must also return cleanly, with one target flag per token.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "base/utf8.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"
#include "train/data.h"

namespace {

using pocket::tokenizer::Tokenizer;

// GPT-2's byte alphabet (bytes_to_unicode): printable bytes stand for themselves, the
// others for U+0100 onwards. No merges: one token per byte.
Tokenizer MakeByteTokenizer() {
  pocket::tokenizer::Vocab vocab;
  vocab.model = pocket::tokenizer::ModelKind::kGpt2;
  vocab.pre = "gpt2";
  uint32_t next = 256;
  for (uint32_t b = 0; b < 256; ++b) {
    const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174;
    std::string piece;
    pocket::AppendUtf8(printable ? b : next++, piece);
    vocab.tokens.push_back(piece);
    vocab.token_types.push_back(pocket::tokenizer::TokenType::kNormal);
  }
  for (const char* special : {"<|endoftext|>", "<|im_start|>", "<|im_end|>"}) {
    vocab.tokens.emplace_back(special);
    vocab.token_types.push_back(pocket::tokenizer::TokenType::kControl);
  }
  vocab.bos_id = 256;
  vocab.eos_id = 258;
  auto tok = Tokenizer::FromVocab(std::move(vocab));
  if (!tok.ok()) std::abort();
  return std::move(*tok);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const Tokenizer* tok = new Tokenizer(MakeByteTokenizer());
  static const pocket::tokenizer::ChatTemplate* chatml =
      new pocket::tokenizer::ChatTemplate(*pocket::tokenizer::ChatTemplate::Builtin("chatml"));
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  size_t pos = 0;
  while (pos <= input.size()) {
    size_t end = input.find('\n', pos);
    if (end == std::string_view::npos) end = input.size();
    auto messages = pocket::train::ParseChatRecord(input.substr(pos, end - pos));
    pos = end + 1;
    if (!messages.ok()) continue;
    auto chat = pocket::train::TokenizeChatRecord(*messages, *tok, *chatml,
                                                  pocket::train::DataOptions().chat);
    if (!chat.ok()) continue;
    for (const auto& doc : chat->documents) {
      if (doc.tokens.size() != doc.is_target.size()) std::abort();
    }
  }
  return 0;
}
