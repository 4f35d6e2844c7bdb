// Text <-> token ids for Llama-family checkpoints, built from GGUF tokenizer metadata.
//
// Two models, as in llama.cpp's llama-vocab.cpp and Hugging Face `tokenizers`:
//  - kGpt2 (tokenizer.ggml.model = "gpt2"): byte-level BPE. The text is split by the
//    pre-tokenizer named by tokenizer.ggml.pre (regexes run with PCRE2, UTF + UCP + JIT),
//    each piece's bytes are mapped to GPT-2's printable byte alphabet, and adjacent
//    symbols are merged by merge rank (tokenizer.ggml.merges, "left right" per line).
//  - kLlama (tokenizer.ggml.model = "llama"): SentencePiece-style BPE. Spaces become
//    U+2581 ("▁"), one is prepended per llama.cpp's add_space_prefix (default true), the
//    symbols are merged by the score of the merged piece (tokenizer.ggml.scores), and
//    characters without a piece fall back to <0xNN> byte tokens.
// Special tokens (control, user-defined, unknown) are matched whole before either model
// runs: control/unknown ones only when parse_special is set, user-defined ones always
// (llama.cpp's rule, and HF's for non-special added tokens).
//
// Users: runtime (prompt encoding, streaming detokenization), server, eval, cli.
// Thread safety: Tokenizer is immutable after construction; every method is const and safe
// to call from many threads at once.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace pocket::formats {
class GgufFile;
class GgufWriter;
}  // namespace pocket::formats

namespace pocket::tokenizer {

enum class ModelKind : uint8_t { kGpt2, kLlama };

// GGUF tokenizer.ggml.token_type values.
enum class TokenType : int32_t {
  kUndefined = 0,
  kNormal = 1,
  kUnknown = 2,
  kControl = 3,
  kUserDefined = 4,
  kUnused = 5,
  kByte = 6,
};

inline constexpr int32_t kNoToken = -1;

// Everything a tokenizer is made of, in GGUF terms. `token_types` and `scores` may be empty
// (then every token is kNormal / score 0). Special ids are kNoToken when absent.
struct Vocab {
  ModelKind model = ModelKind::kGpt2;
  std::string pre = "default";  // tokenizer.ggml.pre; "default" when absent
  std::vector<std::string> tokens;
  std::vector<TokenType> token_types;
  std::vector<float> scores;
  std::vector<std::string> merges;  // gpt2 only: "left right", best (rank 0) first
  int32_t bos_id = kNoToken;
  int32_t eos_id = kNoToken;
  int32_t eot_id = kNoToken;  // found by text (<|eot_id|>, <|im_end|>, ...) when absent
  int32_t unk_id = kNoToken;
  int32_t pad_id = kNoToken;
  bool add_bos = false;
  bool add_eos = false;
  bool add_space_prefix = true;  // llama model only
  bool ignore_merges = false;    // gpt2: a pre-token that is itself a token skips merging
};

// llama.cpp's defaults for a model kind and pre-tokenizer name: fills add_bos, add_eos,
// add_space_prefix, ignore_merges and (llama) bos/eos/unk ids. FromGguf applies them before
// reading the file's own keys; callers of FromVocab may start from them too.
void ApplyLlamaCppDefaults(Vocab& vocab);

// Pre-tokenizer names this build understands (tokenizer.ggml.pre values).
std::vector<std::string> SupportedPreTokenizers();

// Writes `vocab` as tokenizer.ggml.* keys (model, pre, tokens, token_type, scores for llama,
// merges for gpt2, special ids that are set, add_bos/add_eos, add_space_prefix for llama):
// what FromGguf reads back and what llama.cpp loads.
void AddVocabToGguf(const Vocab& vocab, formats::GgufWriter& writer);

// Reads a vocabulary in the JSON form of testdata/tokenizer/*.json ({"model", "pre",
// "tokens", "token_types", "scores"?, "merges", "bos_id"?, "eos_id"?, "unk_id"?, "add_bos",
// "add_eos"}), starting from ApplyLlamaCppDefaults. InvalidArgument naming the field.
Result<Vocab> VocabFromJson(std::string_view json);
Result<Vocab> LoadVocabJson(const std::string& path);

class Tokenizer {
 public:
  // Reads tokenizer.ggml.* keys. Errors name the key (NotFound for a missing required key,
  // InvalidArgument/Corruption for a bad value, NotSupported for an unknown model or pre).
  static Result<Tokenizer> FromGguf(const formats::GgufFile& gguf);
  // Validates the vocab (ids in range, merges naming tokens, sizes consistent) and builds
  // the lookup tables. NotSupported for an unknown `pre`.
  static Result<Tokenizer> FromVocab(Vocab vocab);

  // add_special: prepend BOS / append EOS per the vocab's add_bos/add_eos flags.
  // parse_special: match control tokens (e.g. "<|im_end|>") whole in the text; user-defined
  // tokens are always matched. Never fails: bytes that are not valid UTF-8 still encode
  // (byte-level: as their bytes; llama: as <0xNN> byte tokens).
  std::vector<int32_t> Encode(std::string_view text, bool add_special, bool parse_special) const;

  // Concatenated TokenToPiece of every token. Skips nothing: control tokens render as their
  // text (unless render_special is false: then they render as nothing). For the llama model
  // the space that add_space_prefix put in front of the first piece is removed, so
  // Decode(Encode(x, false, false)) == x for any bytes x (llama: unless x contains U+2581
  // "▁", which decodes as a space, as in HF and llama.cpp).
  std::string Decode(std::span<const int32_t> tokens) const { return Decode(tokens, true); }
  std::string Decode(std::span<const int32_t> tokens, bool render_special) const;
  // The bytes of one token (may be a partial UTF-8 sequence). Out-of-range ids give "".
  std::string TokenToPiece(int32_t token) const;

  int32_t bos() const;
  int32_t eos() const;
  int32_t eot() const;
  int32_t unk() const;
  bool add_bos() const;
  bool add_eos() const;
  // True for eos, eot and the end-of-generation tokens llama.cpp recognises by text
  // (<|eot_id|>, <|im_end|>, <|end|>, <|endoftext|>, <end_of_turn>, <|eom_id|>, ...).
  bool IsEndOfGeneration(int32_t token) const;
  bool IsControl(int32_t token) const;
  size_t vocab_size() const;
  const Vocab& vocab() const;
  // The id of a token given its exact text (as stored in the vocab), or kNoToken.
  int32_t TokenId(std::string_view text) const;

  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;
  Tokenizer(const Tokenizer&);  // cheap: shares the immutable tables
  Tokenizer& operator=(const Tokenizer&);
  ~Tokenizer();

  struct Impl;

 private:
  explicit Tokenizer(std::shared_ptr<const Impl> impl);
  std::shared_ptr<const Impl> impl_;
};

}  // namespace pocket::tokenizer
