// libFuzzer: arbitrary bytes as a training corpus (one document per line) for the byte-level
// BPE trainer, min_frequency 0 so every pair that occurs can merge. Training must never
// crash, must stay within the vocabulary size, and the trained tokenizer must load and give
// Decode(Encode(x)) == x for the whole input, with and without special-token parsing.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/check.h"
#include "tokenizer/bpe_train.h"
#include "tokenizer/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace pocket::tokenizer;
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  BpeTrainOptions options;
  options.vocab_size = 256 + 2 + 64;
  options.min_frequency = 0;
  options.pre = size > 0 && (data[0] & 1) ? "llama-bpe" : "smollm";
  options.special_tokens = {"<|endoftext|>", "<s>"};
  auto trainer = BpeTrainer::Create(options);
  PK_CHECK(trainer.ok());
  size_t from = 0;
  while (from < input.size()) {
    const size_t nl = input.find('\n', from);
    const size_t end = nl == std::string_view::npos ? input.size() : nl + 1;
    trainer->AddDocument(input.substr(from, end - from));
    from = end;
  }
  auto result = trainer->Train();
  PK_CHECK(result.ok());
  PK_CHECK(result->vocab.tokens.size() <= options.vocab_size);
  auto tok = Tokenizer::FromVocab(result->vocab);
  PK_CHECK(tok.ok());
  for (bool parse_special : {false, true}) {
    const std::vector<int32_t> ids = tok->Encode(input, false, parse_special);
    PK_CHECK(tok->Decode(ids) == input);
  }
  return 0;
}
