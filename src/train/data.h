// Training data for `pocket train` and `pocket finetune`: files or folders of plain text and JSONL
// chat records, tokenized, split into training and held-out documents, packed into fixed-length
// sequences, and served as deterministic, resumable batches.
//
// Pipeline (all of it deterministic: the same bytes, tokenizer, template and options give the same
// sequences, hash and batches on every run and for any thread count):
//  1. Files. A path naming a file is read whatever its extension. A folder is walked
//     recursively (symlinks followed, loops refused) and its files are read in the byte
//     order of their paths relative to the folder, so the order never depends on the file
//     system. In folders only kDataExtensions are read (case-insensitive); other files,
//     hidden names (starting with '.', at any depth) and non-regular files are skipped and
//     counted; a file reached twice through symlinks is read once (its first path).
//     A file must be UTF-8 (a leading BOM is dropped): anything else is an error naming the
//     file, the byte offset and the line; nothing is skipped silently.
//  2. Documents. A `.jsonl` file holds one chat record per line:
//       {"messages": [{"role": "user", "content": "..."}, ...]}
//     (other top-level keys are ignored; a message has exactly the string keys role and
//     content; blank lines are skipped). Any other file is text: one document, or, when
//     longer than DataOptions::max_document_bytes, cut into documents of at most that many
//     bytes after the last blank line (else newline, else character) that fits.
//  3. Split. A document goes to validation when the first 8 bytes of SHA-256(its bytes),
//     read big-endian, are below validation_fraction * 2^64: which side a document lands on
//     depends on nothing else, so adding a file never moves the others (and equal
//     documents always land together). A chat record's bytes are its line. When that
//     holds out nothing although the fraction is above 0 and there are 2+ documents, the
//     document with the smallest value is held out, so a small set has a validation loss.
//  4. Tokens. Text: [BOS if the tokenizer adds one] + Encode(text, no specials parsed) +
//     [EOS]; every token is a target but the BOS. Chat: the record rendered with the chat
//     template, specials parsed, BOS added as the runtime does (unless the template wrote
//     it), EOS appended unless the document already ends generation (whitespace after
//     the end-of-turn token aside); the targets are exactly the assistant messages' tokens
//     up to and including their first end-of-generation token (TokenizeChatRecord says how
//     they are found).
//  5. Packing. Each split's documents are concatenated in order into one stream of N
//     tokens, cut into sequences of seq_len + 1 tokens overlapping by one (sequence i
//     covers stream[i*seq_len, i*seq_len + seq_len]): inputs are the first seq_len,
//     targets the last seq_len, or -1 where a token is not a target. Only the last sequence
//     is padded (inputs EOS or 0, targets -1). Every stream token but the first is the
//     target of exactly one position.
//  6. Batches. BatchIterator draws num_seqs sequences at a time in a per-epoch permutation
//     of the training sequences (Fisher-Yates driven by a counter-based hash of seed,
//     epoch and step, so no RNG state is kept); its DataCursor {epoch, position} is all a
//     checkpoint stores to continue exactly.
//
// Data hash (checkpoint provenance): SHA-256 over the tokenized streams the trainer sees (see
// Dataset::data_hash) — it changes with the data bytes, the file order, the split, the tokenizer or
// the template, and not with seq_len (which the recipe records).
//
// Users: train (the trainer, `pocket train` / `pocket finetune`), cli (statistics). Thread safety:
// Dataset and PackedSplit are immutable after Load and may be read from many threads; a
// BatchIterator belongs to one thread. Library code: never prints.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace pocket {
class ThreadPool;
}  // namespace pocket

namespace pocket::train {

// Extensions read inside folders (lower case; a named file is read whatever its extension).
// ".jsonl" files are chat records, the others text.
inline constexpr std::array<std::string_view, 7> kDataExtensions = {
    ".txt", ".text", ".md", ".markdown", ".rst", ".org", ".jsonl"};

struct DataOptions {
  // Tokens per training position; sequences hold seq_len + 1 tokens. REQUIRES: >= 1.
  size_t seq_len = 256;
  // Fraction of documents held out for validation, in [0, 1).
  double validation_fraction = 0.05;
  // Longer text files are cut into documents of at most this many bytes, so a single large file (a
  // book) still has a held-out part. 0: never cut.
  size_t max_document_bytes = size_t{64} << 10;
  // Rendering options for chat records. strftime_now() is pinned (to 26 Jul 2024, the date Llama
  // 3.2's template falls back to) so the tokens never depend on the clock.
  tokenizer::ChatOptions chat = {.extra_vars = {}, .now_unix_s = int64_t{1721952000}};
  // Tokenizes documents in parallel when set (the result does not depend on it). Not owned.
  ThreadPool* pool = nullptr;
};

// What Load found, for the CLI and the training log.
struct DataStats {
  size_t files_read = 0;
  size_t files_skipped = 0;  // in folders: other extensions, hidden, not regular, duplicates
  size_t text_documents = 0;
  size_t chat_records = 0;
  // Chat records whose template was not prefix-stable: each assistant turn became its own document
  // (see TokenizeChatRecord).
  size_t chat_records_per_turn = 0;
  size_t train_documents = 0, validation_documents = 0;
  size_t train_tokens = 0, validation_tokens = 0;  // stream lengths
  // Targets that are not -1.
  size_t train_loss_tokens = 0, validation_loss_tokens = 0;
};

// One split's packed token stream. Immutable.
class PackedSplit {
 public:
  PackedSplit() = default;
  PackedSplit(std::vector<int32_t> tokens, std::vector<uint8_t> is_target, size_t seq_len,
              int32_t pad_id);

  size_t seq_len() const { return seq_len_; }
  // ceil((num_tokens - 1) / seq_len); 0 when the stream has fewer than 2 tokens.
  size_t num_sequences() const { return num_sequences_; }
  size_t num_tokens() const { return tokens_.size(); }
  // Targets that are not -1 over all sequences.
  size_t num_loss_tokens() const { return num_loss_tokens_; }

  // Writes sequence `index`: inputs and targets, seq_len int32 each. REQUIRES: index <
  // num_sequences(), both spans of size seq_len().
  void Sequence(size_t index, std::span<int32_t> inputs, std::span<int32_t> targets) const;
  // Sequences first .. first + count - 1, in order, one after the other: for evaluation. REQUIRES:
  // first + count <= num_sequences(); spans of count * seq_len().
  void Sequences(size_t first, size_t count, std::span<int32_t> inputs,
                 std::span<int32_t> targets) const;

  // The stream (tests, hashing). is_target[j]: token j is a target (never true for j = 0 in effect,
  // since nothing predicts the first token).
  const std::vector<int32_t>& tokens() const { return tokens_; }
  const std::vector<uint8_t>& is_target() const { return is_target_; }

 private:
  std::vector<int32_t> tokens_;
  std::vector<uint8_t> is_target_;
  size_t seq_len_ = 0;
  size_t num_sequences_ = 0;
  size_t num_loss_tokens_ = 0;
  int32_t pad_id_ = 0;
};

class Dataset {
 public:
  // Reads, tokenizes, splits and packs everything under `path` (file or folder). `chat_template`
  // may be null when there are no .jsonl files (a chat record then is an error saying so). Every
  // error is one line starting "data: " and naming the file (and line, for a chat record): NotFound
  // for a missing path; IOError for an unreadable file or folder; InvalidArgument for a symlink
  // loop, text that is not UTF-8, a malformed record, a template that fails on a record, bad
  // options, no files, or no training tokens (everything held out).
  static Result<Dataset> Load(const std::string& path, const tokenizer::Tokenizer& tokenizer,
                              const tokenizer::ChatTemplate* chat_template,
                              const DataOptions& options);

  const PackedSplit& train() const { return train_; }
  const PackedSplit& validation() const { return validation_; }
  const DataStats& stats() const { return stats_; }

  // Lower-case hex SHA-256 of: "pocket-data-v1\n", then for the training split and then the
  // validation split: its token count (u64 little-endian), its tokens (i32 LE each), its is_target
  // bytes (0/1 each).
  const std::string& data_hash() const { return data_hash_; }

 private:
  PackedSplit train_, validation_;
  DataStats stats_;
  std::string data_hash_;
};

// The texts a tokenizer for this data is trained on (`pocket train` with tokenizer.kind = "bpe"):
// the same files as Dataset::Load, in the same order and with the same checks (UTF-8, chat record
// syntax, the same one-line errors), each text file cut into documents as Load cuts it, and each
// chat record as its messages' contents, in order. Both splits are included (the tokenizer sees
// the whole corpus, as tokenizers usually do; the model never trains on the held-out documents).
// Deterministic: a pure function of the bytes under `path` and options.max_document_bytes.
Result<std::vector<std::string>> CorpusTexts(const std::string& path, const DataOptions& options);

// Where a BatchIterator is: the next batch starts at `position` in the order of `epoch`. A
// checkpoint stores these two numbers (and the seed) to continue exactly.
struct DataCursor {
  uint64_t epoch = 0;
  uint64_t position = 0;  // in [0, num_sequences)
  bool operator==(const DataCursor&) const = default;
};

// Draws batches of num_seqs training sequences in a per-epoch shuffled order. The order of
// epoch e is a Fisher-Yates shuffle of 0..n-1 whose draw for k = n-1 down to 1 takes
//   j = floor(Mix(seed, e, k) * (k + 1) / 2^64),
//   Mix(s, e, k) = SplitMix64(SplitMix64(SplitMix64(s) ^ e) ^ k)
// (SplitMix64 as in Java's SplittableRandom: increment, then finalizer): counter-based, so the
// order of any epoch is known without replaying earlier ones. A batch that reaches the end of
// an epoch continues into the next, so every batch is full.
class BatchIterator {
 public:
  // REQUIRES: `split` outlives the iterator. InvalidArgument when the split has no sequences,
  // num_seqs is 0, or cursor.position is not below num_sequences (a checkpoint from other data).
  static Result<BatchIterator> Create(const PackedSplit& split, size_t num_seqs, uint64_t seed,
                                      DataCursor cursor = {});

  // Writes the next batch, sequence after sequence: inputs and targets [num_seqs][seq_len] int32,
  // as PackedSplit::Sequence. REQUIRES: both spans of num_seqs * seq_len.
  void Next(std::span<int32_t> inputs, std::span<int32_t> targets);

  // The cursor of the batch Next would write now.
  const DataCursor& cursor() const { return cursor_; }
  size_t num_seqs() const { return num_seqs_; }
  // The order of the current epoch (tests).
  const std::vector<uint32_t>& order() const { return order_; }

 private:
  BatchIterator(const PackedSplit& split, size_t num_seqs, uint64_t seed, DataCursor cursor);
  void Shuffle();

  const PackedSplit* split_;
  size_t num_seqs_;
  uint64_t seed_;
  DataCursor cursor_;
  std::vector<uint32_t> order_;
};

// --- Building blocks, public for tests, the fuzzer and tools ---

// Parses one JSONL chat record (no newline). InvalidArgument saying what is wrong (without the file
// and line, which the caller adds): not JSON, not an object, no "messages" array, an empty one, a
// message that is not an object, a role or content missing or not a string, a message key other
// than role and content. Never throws.
Result<std::vector<tokenizer::ChatMessage>> ParseChatRecord(std::string_view line);

// A tokenized document: tokens and, per token, whether it is a target (1) or not (0).
struct TokenizedDocument {
  std::vector<int32_t> tokens;
  std::vector<uint8_t> is_target;
};

struct ChatTokens {
  std::vector<TokenizedDocument> documents;  // one, or one per assistant turn
  bool per_turn = false;                     // the template was not prefix-stable
};

// Renders and tokenizes one conversation with targets on the assistant tokens only.
//
// How the assistant tokens are found: R_k = the template applied to the first k messages
// (R_0 = ""), G_k the same with the generation prompt. Assistant message k spans R_{k+1}
// from |G_k| (when G_k is a prefix of R_{k+1} and extends R_k: what the model writes after
// the prompt the runtime gives it) or else from where its content (trimmed) first appears
// after R_k and after where G_k and R_{k+1} part, to the end of R_{k+1}. The text is cut at
// these boundaries, each piece tokenized on its own (specials parsed; at inference the
// prompt is tokenized apart from what the model writes, so this is also what the model
// sees), and an assistant piece's tokens are targets up to and including its first
// end-of-generation token (ChatML's "<|im_end|>" but not the "\n" after it).
//
// Prefix-stable templates (every R_k a prefix of R_{k+1}: ChatML, SmolLM2, Llama 3, Qwen
// 2.5, ...) give one document. A template that rewrites earlier turns (e.g. one that drops
// the reasoning of past assistant turns) gives, per assistant message k, the document
// R_{k+1} with targets on turn k only (per_turn = true). BOS/EOS are added as Dataset::Load
// describes. InvalidArgument when the template fails (its message) or an assistant turn
// cannot be located or renders as nothing.
Result<ChatTokens> TokenizeChatRecord(std::span<const tokenizer::ChatMessage> messages,
                                      const tokenizer::Tokenizer& tokenizer,
                                      const tokenizer::ChatTemplate& chat_template,
                                      const tokenizer::ChatOptions& options);

}  // namespace pocket::train
