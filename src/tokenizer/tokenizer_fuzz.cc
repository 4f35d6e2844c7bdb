// libFuzzer: arbitrary bytes through both tokenizer models built from a small inline vocab
// (all 256 bytes, some merges, control and user-defined tokens). Encode must never crash;
// Decode(Encode(x)) == x without special-token parsing (llama: unless x holds U+2581);
// every id is in range.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/check.h"
#include "tokenizer/tokenizer.h"

namespace {

using pocket::tokenizer::ModelKind;
using pocket::tokenizer::Tokenizer;
using pocket::tokenizer::TokenType;
using pocket::tokenizer::Vocab;

std::string ByteChar(int b) {  // GPT-2 byte-level alphabet
  const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174);
  int cp = b;
  if (!printable) {
    int next = 256;
    for (int k = 0; k < b; ++k) {
      if (!((k >= 33 && k <= 126) || (k >= 161 && k <= 172) || (k >= 174))) ++next;
    }
    cp = next;
  }
  std::string s;
  if (cp < 0x80) {
    s.push_back(static_cast<char>(cp));
  } else {
    s.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    s.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
  return s;
}

Tokenizer MakeBpe() {
  Vocab v;
  v.model = ModelKind::kGpt2;
  v.pre = "llama-bpe";
  pocket::tokenizer::ApplyLlamaCppDefaults(v);
  for (int b = 0; b < 256; ++b) v.tokens.push_back(ByteChar(b));
  const std::string sp = ByteChar(' ');
  for (const char* m : {"t h", "th e", "i n", "e r"}) {
    v.merges.push_back(m);
    std::string merged = m;
    merged.erase(merged.find(' '), 1);
    v.tokens.push_back(merged);
  }
  v.merges.push_back(sp + " t");
  v.tokens.push_back(sp + "t");
  v.token_types.assign(v.tokens.size(), TokenType::kNormal);
  v.tokens.push_back("<|eot_id|>");
  v.token_types.push_back(TokenType::kControl);
  v.tokens.push_back("<tool>");
  v.token_types.push_back(TokenType::kUserDefined);
  v.bos_id = static_cast<int32_t>(v.tokens.size()) - 2;
  auto t = Tokenizer::FromVocab(v);
  PK_CHECK(t.ok());
  return *t;
}

Tokenizer MakeSpm() {
  Vocab v;
  v.model = ModelKind::kLlama;
  pocket::tokenizer::ApplyLlamaCppDefaults(v);
  v.tokens = {"<unk>", "<s>", "</s>"};
  v.token_types = {TokenType::kUnknown, TokenType::kControl, TokenType::kControl};
  static constexpr char kHex[] = "0123456789ABCDEF";
  for (int b = 0; b < 256; ++b) {
    v.tokens.push_back(std::string("<0x") + kHex[b >> 4] + kHex[b & 15] + ">");
    v.token_types.push_back(TokenType::kByte);
  }
  for (const char* t : {"\xE2\x96\x81", "a", "b", "t", "h", "e", "\xE2\x96\x81t", "th", "the",
                        "\xE2\x96\x81the", "ab", "\xE2\x96\x81\xE2\x96\x81"}) {
    v.tokens.push_back(t);
    v.token_types.push_back(TokenType::kNormal);
  }
  for (size_t i = 0; i < v.tokens.size(); ++i) v.scores.push_back(-static_cast<float>(i));
  auto t = Tokenizer::FromVocab(v);
  PK_CHECK(t.ok());
  return *t;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const Tokenizer bpe = MakeBpe();
  static const Tokenizer spm = MakeSpm();
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  for (const Tokenizer* t : {&bpe, &spm}) {
    const auto ids = t->Encode(text, false, false);
    for (int32_t id : ids) PK_CHECK(id >= 0 && static_cast<size_t>(id) < t->vocab_size());
    // U+2581 is SentencePiece's space: it decodes as ' ' (as in HF and llama.cpp).
    if (t == &bpe || text.find("\xE2\x96\x81") == std::string_view::npos) {
      PK_CHECK(t->Decode(ids) == text);
    }
    const auto special = t->Encode(text, true, true);
    for (int32_t id : special) PK_CHECK(id >= 0 && static_cast<size_t>(id) < t->vocab_size());
  }
  return 0;
}
