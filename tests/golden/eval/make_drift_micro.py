#!/usr/bin/python3
"""Writes the micro-dataset of testdata/eval/drift (docs/eval.md's worked example and
tests/cli/drift_test.sh): support-ticket features, a reference month as CSV (120 rows) and a
current week as JSONL (80 rows). The current week has more enterprise plans, slower
latencies and longer answers; country, score and resolved are drawn as before. Every 17th
row (from the 6th) has no latency (an empty CSV field, JSON null). Deterministic (seed 15);
standard library only:
    /usr/bin/python3 tests/golden/eval/make_drift_micro.py
"""
import csv
import json
import os
import random

VOCAB = "the model answered your question about billing plans and quotas in detail".split()


def rows(n, lat_mu, p_ent, long_answers, shift_score):
    out = []
    for i in range(n):
        plan = random.choices(["free", "pro", "enterprise"],
                              [0.6 - p_ent / 2, 0.4 - p_ent / 2, p_ent])[0]
        country = random.choice(["de", "fr", "us", "jp"])
        latency = round(random.lognormvariate(lat_mu, 0.35), 1)
        score = round(min(1, max(0, random.gauss(0.72 + shift_score, 0.1))), 3)
        resolved = random.random() < 0.8
        words = random.randint(8, 20) + (random.randint(10, 30)
                                         if long_answers and random.random() < 0.7 else 0)
        answer = " ".join(random.choice(VOCAB) for _ in range(words))
        r = {"plan": plan, "country": country, "latency_ms": latency, "score": score,
             "resolved": "yes" if resolved else "no", "answer": answer}
        if i % 17 == 5:
            r["latency_ms"] = None
        out.append(r)
    return out


def main():
    random.seed(15)
    ref = rows(120, 5.0, 0.1, False, 0.0)
    cur = rows(80, 5.3, 0.35, True, -0.01)
    here = os.path.dirname(os.path.abspath(__file__))
    out = os.path.join(here, "..", "..", "..", "testdata", "eval", "drift")
    os.makedirs(out, exist_ok=True)
    columns = ["plan", "country", "latency_ms", "score", "resolved", "answer"]
    with open(os.path.join(out, "reference.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(columns)
        for r in ref:
            w.writerow(["" if r[c] is None else r[c] for c in columns])
    with open(os.path.join(out, "current.jsonl"), "w") as f:
        for r in cur:
            f.write(json.dumps(r) + "\n")


if __name__ == "__main__":
    main()
