#!/usr/bin/env python3
"""Makes the tokenizer and chat-template goldens in testdata/tokenizer/ with Hugging Face
`tokenizers` (and `transformers` for apply_chat_template when it is installed).

Nothing is downloaded: every tokenizer is trained here on testdata/tokenizer/corpus.txt,
with its normalizer / pre-tokenizer / decoder configured like the real model's
tokenizer.json:
  gpt2     byte-level BPE, ByteLevel(use_regex) pre-tokenizer          (GPT-2)
  llama3   Split(llama-3 regex, isolated) + ByteLevel(no regex), ignore_merges,
           BOS added by the post-processor                             (Llama 3 / 3.2)
  qwen2    Split(qwen2 regex, isolated) + ByteLevel(no regex), plus a non-special
           added token                                                 (Qwen2 / 2.5)
  smollm   Digits(individual) + ByteLevel(use_regex)                   (SmolLM / SmolLM2)
  spm      SentencePiece-style BPE: Prepend(▁)+Replace(' ','▁') normalizer, byte fallback
           <0xNN> tokens, merges derived from piece scores like HF's SentencePiece
           converter                                                   (Llama 2 / Mistral / TinyLlama)
  pocket-2k  a 2048-token smollm-style vocabulary for Pocket's default model.
Each tokenizer is written as JSON in GGUF terms (tokens, token_types, scores, merges, special
ids, add_bos/add_eos) with golden encodings of a varied text set. Chat goldens: every
template in testdata/tokenizer/templates/ rendered for a few conversations.

Usage: make_golden.py REPO_ROOT OUT_DIR
"""
import json
import os
import sys

REPO = sys.argv[1] if len(sys.argv) > 1 else "."
OUT = sys.argv[2] if len(sys.argv) > 2 else "out"
TD = os.path.join(REPO, "testdata", "tokenizer")
os.makedirs(OUT, exist_ok=True)

LLAMA3_RE = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"
             r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2_RE = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}|"
            r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")

TEXTS = [
    "", " ", "  ", "\n", "\n\n\n", "Hello world", " Hello world", "Hello  world",
    "hello\n\nworld", "end   ", "\t\ttabs\tand spaces  \n", "a     b", "   leading",
    "x\n   \n  y", "\r\n windows \r\n", "\u00a0nbsp\u3000ideographic space",
    "I'm sure they've gone, we'll see. IT'S DON'T She'd o'clock",
    "'s 's' 'S 'll'LL 're've", "1234567890", "3.14159 and 1,000,000 and 12345 7",
    "0x1F 007 2026-11-21 99999999999", "café naïve résumé über straße",
    "Ångström Zürich São Paulo jalapeño", "你好，世界！模型分词器。", "日本語のテキストとこんにちは",
    "안녕하세요 한국어", "Привет, мир! γειά σου κόσμε مرحبا שלום नमस्ते",
    "🤖🚀 emoji 👨‍👩‍👧 family 🇫🇷 flag ❤️ heart",
    "def tokenize(text: str) -> list[int]:\n    return [ord(c) for c in text]\n",
    "for (int i = 0; i < n; ++i) {\n  sum += x[i] * w[i];\n}\n",
    "Hello!!! ... ??? --- ### $$$ %%% @user #tag",
    "\"quoted\" (paren) [bracket] {brace} <angle>",
    "ŉ ǅ Ⅻ ⅔ ² ³ ٣ ൬", "zero\u200bwidth e\u0301 combining", "<|not a token|> <s > < /s>",
    "ALL CAPS SENTENCE WITH WORDS", "mixedCase camelCase snake_case kebab-case",
    "a", "ab", "abc abc abc", "the the the the", "tokenizer tokenizers tokenization",
]

SPECIAL_TEXTS = {
    "gpt2": ["<|endoftext|>hello<|endoftext|>", "a<|endoftext|> b <|endoftext|>\n"],
    "llama3": ["<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi there<|eot_id|>"
               "<|start_header_id|>assistant<|end_header_id|>\n\n",
               "text<|eot_id|>more<|end_of_text|>"],
    "qwen2": ["<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n",
              "call <tool_call>{\"a\": 1}</tool_call> done<|endoftext|>"],
    "smollm": ["<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n"],
    "spm": ["<s>[INST] Hi there [/INST] Hello</s>", "x <unk> y</s>"],
    "pocket-2k": ["<|im_start|>user\nHello<|im_end|>\n"],
}


def corpus_lines():
    with open(os.path.join(TD, "corpus.txt"), encoding="utf-8") as f:
        text = f.read()
    return text, text.splitlines(keepends=True)


def hf_modules():
    import tokenizers
    from tokenizers import (AddedToken, Regex, Tokenizer, decoders, models, normalizers,
                            pre_tokenizers, processors, trainers)
    return (tokenizers, AddedToken, Regex, Tokenizer, decoders, models, normalizers,
            pre_tokenizers, processors, trainers)


def merges_as_strings(tok):
    m = json.loads(tok.to_str())["model"]["merges"]
    return [x if isinstance(x, str) else " ".join(x) for x in m]


def byte_level(name, pre, specials, vocab_size, lines, regex=None, digits=False,
               ignore_merges=False, bos_template=None, user_defined=()):
    (_, AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers,
     processors, trainers) = hf_modules()
    tok = Tokenizer(models.BPE())
    if regex is not None:
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(regex), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    elif digits:
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])
    else:
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=2, show_progress=False,
                                  special_tokens=list(specials),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(lines, trainer)
    if ignore_merges:
        j = json.loads(tok.to_str())
        j["model"]["ignore_merges"] = True
        tok = Tokenizer.from_str(json.dumps(j))
        assert json.loads(tok.to_str())["model"].get("ignore_merges") is True
    if user_defined:
        tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in user_defined])
    if bos_template:
        tok.post_processor = processors.TemplateProcessing(
            single=bos_template + " $A", special_tokens=[(bos_template, tok.token_to_id(bos_template))])
    vocab = tok.get_vocab(with_added_tokens=True)
    n = max(vocab.values()) + 1
    tokens = [None] * n
    for t, i in vocab.items():
        tokens[i] = t
    types = [1] * n
    for s in specials:
        types[vocab[s]] = 3
    for u in user_defined:
        types[vocab[u]] = 4
    return tok, {"name": name, "model": "gpt2", "pre": pre, "tokens": tokens,
                 "token_types": types, "merges": merges_as_strings(tok)}


def spm_like(lines, vocab_size):
    (_, AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers,
     processors, trainers) = hf_modules()
    trainer_tok = Tokenizer(models.BPE(unk_token="<unk>"))
    try:
        trainer_tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    except TypeError:
        trainer_tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", add_prefix_space=True)
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=2, show_progress=False,
                                  limit_alphabet=150, special_tokens=[])
    trainer_tok.train_from_iterator(lines, trainer)
    trained = sorted(trainer_tok.get_vocab().items(), key=lambda kv: kv[1])
    tokens = ["<unk>", "<s>", "</s>"] + ["<0x%02X>" % b for b in range(256)]
    types = [2, 3, 3] + [6] * 256
    for t, _ in trained:
        if t in tokens:
            continue
        tokens.append(t)
        types.append(1)
    vocab = {t: i for i, t in enumerate(tokens)}
    scores = [0.0] * 259 + [-float(i) for i in range(259, len(tokens))]
    # Merges the way HF's SentencePiece converter derives them: every split of a piece
    # into two pieces, ordered by the piece's score (here: by id), then by the parts' ids.
    normal = {t for t, ty in zip(tokens, types) if ty == 1}
    merges = []
    for t in tokens[259:]:
        for k in range(1, len(t)):
            l, r = t[:k], t[k:]
            if l in normal and r in normal:
                merges.append((vocab[t], vocab[l], vocab[r], l, r))
    merges.sort()
    bpe = models.BPE(vocab=vocab, merges=[(m[3], m[4]) for m in merges], unk_token="<unk>",
                     byte_fallback=True, fuse_unk=True)
    tok = Tokenizer(bpe)
    tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    tok.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(),
                                     decoders.Fuse(), decoders.Strip(" ", 1, 0)])
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False)
                            for t in ("<unk>", "<s>", "</s>")])
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    return tok, {"name": "spm", "model": "llama", "pre": "default", "tokens": tokens,
                 "token_types": types, "scores": scores, "merges": []}


def encode_cases(tok, texts):
    cases = []
    for text in texts:
        c = {"text": text}
        c["ids"] = tok.encode(text, add_special_tokens=False).ids
        c["ids_add_special"] = tok.encode(text, add_special_tokens=True).ids
        c["decoded"] = tok.decode(c["ids"], skip_special_tokens=False)
        try:
            tok.encode_special_tokens = True
            c["ids_no_parse_special"] = tok.encode(text, add_special_tokens=False).ids
        except Exception:  # older tokenizers: no such switch
            pass
        finally:
            try:
                tok.encode_special_tokens = False
            except Exception:
                pass
        cases.append(c)
    return cases


def tokenizers_goldens(report):
    import tokenizers
    report["tokenizers_version"] = tokenizers.__version__
    text, lines = corpus_lines()
    long_text = text[:6000]
    made = {}

    def attempt(name, fn, *args, **kwargs):
        try:
            made[name] = fn(*args, **kwargs)
        except Exception as e:
            import traceback
            report[name + "_error"] = traceback.format_exc()

    attempt("gpt2", byte_level, "gpt2", "gpt-2", ["<|endoftext|>"], 1000, lines)
    attempt("llama3", byte_level, "llama3", "llama-bpe",
                                ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>",
                                 "<|end_header_id|>", "<|eot_id|>"], 1000, lines,
                                regex=LLAMA3_RE, ignore_merges=True, bos_template="<|begin_of_text|>")
    attempt("qwen2", byte_level, "qwen2", "qwen2", ["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
                               1000, lines, regex=QWEN2_RE, user_defined=("<tool_call>", "</tool_call>"))
    attempt("smollm", byte_level, "smollm", "smollm", ["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
                                1000, lines, digits=True)
    attempt("pocket-2k", byte_level, "pocket-2k", "smollm",
                                   ["<|endoftext|>", "<|im_start|>", "<|im_end|>"], 2048, lines,
                                   digits=True)
    attempt("spm", spm_like, lines, 900)
    ids = {
        "gpt2": dict(bos="<|endoftext|>", eos="<|endoftext|>"),
        "llama3": dict(bos="<|begin_of_text|>", eos="<|end_of_text|>"),
        "qwen2": dict(bos="<|endoftext|>", eos="<|im_end|>"),
        "smollm": dict(bos="<|im_start|>", eos="<|im_end|>"),
        "pocket-2k": dict(bos="<|im_start|>", eos="<|im_end|>"),
        "spm": dict(bos="<s>", eos="</s>", unk="<unk>"),
    }
    for name, (tok, data) in made.items():
        try:
            write_one(name, tok, data, ids, long_text, report)
        except Exception:
            import traceback
            report[name + "_error"] = traceback.format_exc()


def write_one(name, tok, data, ids, long_text, report):
    if True:
        vocab = {t: i for i, t in enumerate(data["tokens"])}
        for k, v in ids[name].items():
            data[k + "_id"] = vocab[v]
        data["add_bos"] = name in ("llama3", "spm")
        data["add_eos"] = False
        texts = TEXTS + SPECIAL_TEXTS.get(name, []) + [long_text]
        if name == "pocket-2k":
            texts = TEXTS[:12] + SPECIAL_TEXTS[name]
        data["cases"] = encode_cases(tok, texts)
        report[name + "_roundtrip_failures"] = [c["text"] for c in data["cases"]
                                                if c["decoded"] != c["text"]][:8]
        with open(os.path.join(OUT, name + ".json"), "w", encoding="utf-8") as f:
            json.dump(data, f, ensure_ascii=False, separators=(",", ":"))
        os.makedirs(os.path.join(OUT, "hf", name), exist_ok=True)
        tok.save(os.path.join(OUT, "hf", name, "tokenizer.json"))
        report[name] = {"vocab_size": len(data["tokens"]), "merges": len(data["merges"]),
                        "cases": len(data["cases"])}


CONVERSATIONS = [
    [{"role": "user", "content": "Hello!"}],
    [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "What is 2+2?"},
     {"role": "assistant", "content": "4"}, {"role": "user", "content": "And 3+3?"}],
    [{"role": "user", "content": "  spaced  \n"}, {"role": "assistant", "content": " ok "},
     {"role": "user", "content": "unicode: café 你好 🤖 \"quotes\" {{ not jinja }}"}],
    [{"role": "system", "content": "Only a system message."}],
    [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}],
]
BOS_EOS = {"llama3": ("<|begin_of_text|>", "<|eot_id|>"), "llama3.2": ("<|begin_of_text|>", "<|eot_id|>")}


def render_jinja2(source, messages, add_generation_prompt, bos, eos, extra):
    """Renders like transformers' apply_chat_template: sandboxed, trim_blocks, lstrip_blocks."""
    import jinja2
    import jinja2.ext
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators,
                          sort_keys=sort_keys)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    return env.from_string(source).render(messages=messages, add_generation_prompt=add_generation_prompt,
                                          bos_token=bos, eos_token=eos, **extra)


def chat_goldens(report):
    tdir = os.path.join(TD, "templates")
    hf = None
    try:
        from transformers import PreTrainedTokenizerFast
        from tokenizers import Tokenizer, models
        hf = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.BPE()))
        import transformers
        report["transformers_version"] = transformers.__version__
    except Exception as e:  # transformers missing: jinja2 alone, configured the same way
        report["transformers_error"] = repr(e)
    import jinja2
    import jinja2.ext
    report["jinja2_version"] = jinja2.__version__
    out = []
    mismatches = 0
    for fname in sorted(os.listdir(tdir)):
        name = fname[:-len(".jinja")]
        with open(os.path.join(tdir, fname), encoding="utf-8") as f:
            source = f.read()
        bos, eos = BOS_EOS.get(name, ("<s>", "</s>"))
        extra = {"date_string": "26 Jul 2024"} if name == "llama3.2" else {}
        for ci, conv in enumerate(CONVERSATIONS):
            for agp in (False, True):
                case = {"template": name, "conversation": ci, "add_generation_prompt": agp,
                        "bos_token": bos, "eos_token": eos, "extra": extra}
                try:
                    case["rendered"] = render_jinja2(source, conv, agp, bos, eos, extra)
                except Exception as e:
                    case["error"] = str(e)
                if hf is not None:
                    try:
                        hf_out = hf.apply_chat_template(conv, chat_template=source, tokenize=False,
                                                        add_generation_prompt=agp, bos_token=bos,
                                                        eos_token=eos, **extra)
                        if hf_out != case.get("rendered"):
                            mismatches += 1
                            case["rendered_transformers"] = hf_out
                    except Exception as e:
                        if "error" not in case:
                            mismatches += 1
                            case["error_transformers"] = str(e)
                out.append(case)
    report["chat_mismatches_jinja2_vs_transformers"] = mismatches
    with open(os.path.join(OUT, "chat_golden.json"), "w", encoding="utf-8") as f:
        json.dump({"conversations": CONVERSATIONS, "cases": out}, f, ensure_ascii=False, indent=1)


def main():
    report = {}
    chat_goldens(report)
    try:
        hf_modules()
        tokenizers_goldens(report)
    except ImportError as e:
        report["tokenizers_error"] = repr(e)
    with open(os.path.join(OUT, "report.json"), "w") as f:
        json.dump(report, f, indent=1)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
