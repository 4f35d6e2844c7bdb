#!/usr/bin/env python3
"""Makes testdata/tokenizer/bpe_golden.json: the tokens and merges that Hugging Face
`tokenizers`' BpeTrainer learns from testdata/tokenizer/bpe_corpus.txt, for the C++ test
BpeTrainTest.MatchesHuggingFaceBpeTrainerOnBpeGolden (src/tokenizer/bpe_train_test.cc),
which trains tokenizer::TrainByteLevelBpe with the same settings and compares.

Nothing is downloaded. Every case is a byte-level BPE trained from scratch with
initial_alphabet = ByteLevel.alphabet() (the 256 byte symbols), no limit_alphabet, the given
special tokens, vocab_size and min_frequency, fed one document per line (newline kept),
with the pre-tokenizer of a tokenizer.ggml.pre name:
  gpt-2      ByteLevel(add_prefix_space=False, use_regex=True)
  smollm     Digits(individual_digits=True) + ByteLevel(use_regex=True)
  llama-bpe  Split(Llama 3 regex, isolated) + ByteLevel(use_regex=False)
  qwen2      Split(Qwen2 regex, isolated) + ByteLevel(use_regex=False)
min_frequency 0 and large vocabularies make ties decide most merges; the largest cases run
out of pairs before vocab_size.

Usage (on a machine with `tokenizers` installed, from the repository root):
  python3 tests/golden/tokenizer/make_bpe_golden.py . testdata/tokenizer
Writes OUT_DIR/bpe_golden.json and prints a short report (tokenizers version, per case the
vocabulary and merge counts and the first merge, if any, that rebuilt an existing token:
there HF reuses the token's id and its merge queue may later repeat a merge, so the C++ test
compares only the merges before that point).
"""
import json
import os
import sys

REPO = sys.argv[1] if len(sys.argv) > 1 else "."
OUT = sys.argv[2] if len(sys.argv) > 2 else os.path.join(REPO, "testdata", "tokenizer")

LLAMA3_RE = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"
             r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2_RE = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}|"
            r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
CHATML = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]

# name, pre, special tokens, vocab_size, min_frequency
CASES = [
    ("gpt2-400", "gpt-2", ["<|endoftext|>"], 400, 2),
    ("gpt2-900-mf0", "gpt-2", [], 900, 0),
    ("smollm-1000-mf2", "smollm", CHATML, 1000, 2),
    ("smollm-600-mf1", "smollm", CHATML, 600, 1),
    ("smollm-500-mf0", "smollm", CHATML, 500, 0),
    ("smollm-5000-mf0", "smollm", CHATML, 5000, 0),
    ("llama-bpe-450-mf0", "llama-bpe", ["<|begin_of_text|>", "<|end_of_text|>"], 450, 0),
    ("qwen2-400-mf2", "qwen2", CHATML, 400, 2),
]


def lines_of(text):
    """One document per line with its newline, split at '\\n' only (as the C++ test)."""
    parts = text.split("\n")
    lines = [p + "\n" for p in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


def pre_tokenizer(pre):
    from tokenizers import Regex, pre_tokenizers
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    if pre == "gpt-2":
        return byte_level
    if pre == "smollm":
        return pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True), byte_level])
    regex = {"llama-bpe": LLAMA3_RE, "qwen2": QWEN2_RE}[pre]
    return pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(regex), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])


def train(lines, pre, specials, vocab_size, min_frequency):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizer(pre)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_frequency,
                                  show_progress=False, special_tokens=list(specials),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(lines, trainer)
    vocab = tok.get_vocab(with_added_tokens=True)
    tokens = [None] * (max(vocab.values()) + 1)
    for t, i in vocab.items():
        tokens[i] = t
    merges = json.loads(tok.to_str())["model"]["merges"]
    merges = [m if isinstance(m, str) else " ".join(m) for m in merges]
    # Decode(Encode(line)) must give the line back, or the case is not byte-level.
    for line in lines[:20]:
        assert tok.decode(tok.encode(line).ids) == line, (pre, line)
    return tokens, merges


def first_irregular_merge(tokens, merges, n_specials):
    """Index of the first merge whose result is not the next new token (a rebuilt token, or
    a merge HF's serialization moved), or None."""
    ids = {t: i for i, t in enumerate(tokens)}
    for i, m in enumerate(merges):
        left, right = m.split(" ", 1)
        if ids.get(left + right) != n_specials + 256 + i:
            return i
    return None


def main():
    import tokenizers
    with open(os.path.join(REPO, "testdata", "tokenizer", "bpe_corpus.txt"), encoding="utf-8") as f:
        lines = lines_of(f.read())
    report = {"tokenizers_version": tokenizers.__version__, "cases": {}}
    cases = []
    for name, pre, specials, vocab_size, min_frequency in CASES:
        tokens, merges = train(lines, pre, specials, vocab_size, min_frequency)
        irregular = first_irregular_merge(tokens, merges, len(specials))
        cases.append({"name": name, "pre": pre, "special_tokens": specials,
                      "vocab_size": vocab_size, "min_frequency": min_frequency,
                      "first_irregular_merge": irregular, "tokens": tokens, "merges": merges})
        report["cases"][name] = {"tokens": len(tokens), "merges": len(merges),
                                 "first_irregular_merge": irregular}
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, "bpe_golden.json"), "w", encoding="utf-8") as f:
        json.dump({"tokenizers_version": tokenizers.__version__, "corpus": "bpe_corpus.txt",
                   "cases": cases}, f, ensure_ascii=False, separators=(",", ":"))
        f.write("\n")
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
