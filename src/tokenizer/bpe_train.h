// Byte-level BPE training: learns a gpt2-style vocabulary (256 byte tokens in GPT-2's
// printable byte alphabet, merges in order, special tokens) from a text corpus, for models
// trained from scratch. The result is a `Vocab` that Tokenizer::FromVocab loads and that
// AddVocabToGguf writes as the tokenizer.ggml.* keys llama.cpp reads.
//
// Semantics are those of Hugging Face `tokenizers`' BpeTrainer with a ByteLevel
// pre-tokenizer (add_prefix_space=False), initial_alphabet = ByteLevel.alphabet(), no
// limit_alphabet, no subword prefix/suffix, no max_token_length:
//  - ids: the special tokens first (in the given order), then the 256 byte symbols sorted by
//    code point, then one token per merge in the order merges are learnt;
//  - each step merges the adjacent pair with the highest count (summed over word
//    occurrences); ties go to the pair whose (left id, right id) is smallest;
//  - training stops when the vocabulary has `vocab_size` tokens, or when no pair occurs at
//    least max(1, min_frequency) times.
// With these settings the tokens and merges equal HF's, token for token, as long as no merge
// rebuilds the text of an existing token. If one did, both would reuse that token's id, but
// HF's queue could later repeat a merge line, which we never do (a merged pair never merges
// again); a randomized search over small corpora found no such case.
// One deliberate difference: special tokens that occur in a document are cut out of the text
// before pre-tokenization (the encoder matches them whole with parse_special, so their pieces
// should not spend merges); HF's trainer counts them as text. The two agree on any corpus
// that holds no special token.
//
// Memory: AddDocument keeps only the table of distinct pre-tokenized words and their counts,
// so a corpus of any size streams through; Train works on that table alone.
// Determinism: the result depends only on the multiset of documents (not their order, not
// hash-table layout); training is single-threaded, so there is no thread count to vary.
//
// Users: the train layer (`pocket train` builds the tokenizer of a new model), tests and
// benches. Thread safety: a BpeTrainer is not safe for concurrent AddDocument calls; Train
// is const and may run while no AddDocument runs.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "tokenizer/tokenizer.h"

namespace pocket::tokenizer {

struct BpeTrainOptions {
  // Size of the final vocabulary, counting the special tokens and the 256 byte tokens.
  // REQUIRES (InvalidArgument otherwise): >= 256 + special_tokens.size(), < 2^31.
  size_t vocab_size = 4096;
  // A pair is merged only when it occurs at least this often (HF's min_frequency; 0 and 1
  // both mean any pair that occurs).
  int64_t min_frequency = 2;
  // Pre-tokenizer (a tokenizer.ggml.pre name, see PreTokenizerNames()); "smollm" is
  // SmolLM2's: single digits, then the GPT-2 regex.
  std::string pre = "smollm";
  // Control tokens, ids 0..n-1 in this order, e.g. {"<|endoftext|>", "<|im_start|>",
  // "<|im_end|>"} as SmolLM2 has. Non-empty, distinct.
  std::vector<std::string> special_tokens;
  // Which special tokens are BOS / EOS / EOT / padding; empty for none. Each must be one of
  // special_tokens.
  std::string bos_token;
  std::string eos_token;
  std::string eot_token;
  std::string pad_token;
};

enum class BpeStopReason : uint8_t {
  kVocabSize,  // the vocabulary reached vocab_size tokens
  kNoPairs,    // no adjacent pair left occurs min_frequency times (the corpus ran out)
};

struct BpeTrainResult {
  // model gpt2, pre from the options, llama.cpp's defaults for that pre (add_bos, ...),
  // special tokens typed kControl, everything else kNormal, merges as "left right".
  Vocab vocab;
  BpeStopReason stop = BpeStopReason::kVocabSize;
  size_t num_distinct_words = 0;  // size of the word table training ran on
};

class BpeTrainer {
 public:
  // InvalidArgument naming the option for a bad value; NotSupported for an unknown `pre`.
  static Result<BpeTrainer> Create(BpeTrainOptions options);

  // Splits `text` at special tokens and then with the pre-tokenizer, and counts the words.
  // Any bytes are accepted (invalid UTF-8 becomes words of its own bytes).
  void AddDocument(std::string_view text);
  // Distinct words counted so far: the memory AddDocument holds grows with this only.
  size_t num_distinct_words() const;

  // Learns the merges from the words counted so far. Never fails on any corpus (an empty
  // one gives the 256 byte tokens and the special tokens); the Result is for future limits.
  Result<BpeTrainResult> Train() const;

  BpeTrainer(BpeTrainer&&) noexcept;
  BpeTrainer& operator=(BpeTrainer&&) noexcept;
  ~BpeTrainer();

  struct State;

 private:
  explicit BpeTrainer(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

// Convenience: one BpeTrainer over `documents`, then Train().
Result<BpeTrainResult> TrainByteLevelBpe(std::span<const std::string> documents,
                                         const BpeTrainOptions& options);

}  // namespace pocket::tokenizer
