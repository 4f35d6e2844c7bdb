#!/usr/bin/env python3
"""Writes testdata/tokenizer/corpus.txt: the synthetic training text for the golden
tokenizers (English-like prose, code, numbers, CJK, emoji, accents, whitespace runs).
Every word list below was written for Pocket; the text is made from them with a fixed
seed, so re-running gives the same file. Usage: make_corpus.py OUT_PATH"""
import random
import sys

WORDS = ("the of and to in is it you that he was for on are with as his they be at one "
         "have this from or had by word but what some we can out other were all there when "
         "up use your how said an each she which do their time if will way about many then "
         "them write would like so these her long make thing see him two has look more day "
         "could go come did number sound no most people my over know water than call first "
         "who may down side been now find any new work part take get place made live where "
         "after back little only round man year came show every good me give our under name "
         "very through just form sentence great think say help low line differ turn cause "
         "much mean before move right boy old too same tell does set three want air well "
         "also play small end put home read hand port large spell add even land here must "
         "big high such follow act why ask men change went light kind off need house picture "
         "try us again animal point mother world near build self earth father model token "
         "tokenizer local engine memory kernel tensor matrix vector cache prompt sample "
         "stream server client privacy budget router device weights layer attention").split()
CONTRACTIONS = ["don't", "it's", "we're", "they've", "I'm", "you'll", "she'd", "can't",
                "IT'S", "We'RE", "won't", "o'clock"]
ACCENTED = ["café", "naïve", "résumé", "über", "straße", "déjà", "vu", "façade", "São",
            "Paulo", "Ångström", "crème", "brûlée", "smörgåsbord", "jalapeño", "Zürich"]
CJK = ["你好", "世界", "模型", "分词器", "本地", "人工智能", "日本語", "こんにちは", "テキスト",
       "한국어", "안녕하세요", "東京", "北京", "数据", "我们", "学习"]
OTHER = ["Привет", "мир", "γειά", "σου", "κόσμε", "مرحبا", "שלום", "नमस्ते", "สวัสดี"]
EMOJI = ["😀", "🚀", "🎉", "👍", "❤️", "🔥", "🤖", "🧠", "👨‍👩‍👧", "🇫🇷", "✨", "🍕"]
CODE = [
    "def tokenize(text: str) -> list[int]:\n    return [ord(c) for c in text]\n",
    "for (int i = 0; i < n; ++i) {\n  sum += x[i] * w[i];\n}\n",
    "if (x != nullptr && x->size() > 0) return x->front();\n",
    "const result = await fetch(`/v1/chat/completions`, { method: \"POST\" });\n",
    "SELECT id, name FROM users WHERE age >= 21 ORDER BY name;\n",
    "#include <vector>\nint main() { std::vector<int> v{1, 2, 3}; return v[0]; }\n",
    "    if err != nil {\n        return fmt.Errorf(\"open %s: %w\", path, err)\n    }\n",
    "x = {'a': 1, 'b': [2, 3], \"c\": None}  # comment\n",
    "<div class=\"row\"><span>{{ value }}</span></div>\n",
    "cmake -S . -B build -G Ninja && ninja -C build -j2\n",
]


def sentence(rng):
    n = rng.randint(4, 16)
    out = []
    for i in range(n):
        r = rng.random()
        if r < 0.72:
            w = rng.choice(WORDS)
        elif r < 0.78:
            w = rng.choice(CONTRACTIONS)
        elif r < 0.84:
            w = rng.choice(ACCENTED)
        elif r < 0.89:
            w = str(rng.randint(0, 10 ** rng.randint(1, 7)))
        elif r < 0.93:
            w = rng.choice(CJK)
        elif r < 0.95:
            w = rng.choice(OTHER)
        elif r < 0.97:
            w = rng.choice(EMOJI)
        else:
            w = rng.choice(["(", ")", "\"", "-", "--", "...", "$", "%", "@", "#", "&"]) + rng.choice(WORDS)
        if i == 0:
            w = w[:1].upper() + w[1:]
        out.append(w)
    s = " ".join(out)
    return s + rng.choice([".", ".", ".", "!", "?", ",", ";", ":"])


def main():
    rng = random.Random(20261121)
    parts = []
    while sum(len(p) for p in parts) < 120_000:
        r = rng.random()
        if r < 0.75:
            parts.append(" ".join(sentence(rng) for _ in range(rng.randint(1, 5))) + "\n")
        elif r < 0.85:
            parts.append(rng.choice(CODE))
        elif r < 0.9:
            parts.append("".join(rng.choice(CJK) for _ in range(rng.randint(2, 9))) + "。\n")
        elif r < 0.95:
            parts.append(rng.choice(["\n", "\n\n", "   ", "\t", "  \n"]) )
        else:
            parts.append(f"{rng.randint(1900, 2100)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d} "
                         f"{rng.random() * 1000:.3f} {rng.randint(0, 2**31)}\n")
    with open(sys.argv[1], "w", encoding="utf-8") as f:
        f.write("".join(parts))


if __name__ == "__main__":
    main()
