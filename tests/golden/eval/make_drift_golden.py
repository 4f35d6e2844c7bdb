#!/usr/bin/python3
"""Writes testdata/eval/drift_golden.json: small reference/current samples and what SciPy
says about them, for src/eval/drift_golden_test.cc.

Run with Debian's python3-scipy (1.10) and numpy (1.24), not a pyenv python:
    /usr/bin/python3 tests/golden/eval/make_drift_golden.py

The samples come from numpy.random.default_rng with fixed seeds and are stored in the JSON
(rounded to 6 decimals, so they are short and exact in both languages). The few cases too
big to store (the asymptotic KS branch needs a sample over 10000) are given as a generator
both sides compute identically: value_i = (i * mult) % 1.0 + shift, i = 0..n-1.

What each case checks, computed the way Evidently (evidently/calculations/stattests/*.py)
calls SciPy:
  ks             scipy.stats.ks_2samp(a, b) (two-sided, method='auto')
  kstwo_sf       scipy.stats.kstwo.sf(d, n) in each region of its algorithm selection
  chi2_sf        scipy.stats.chi2.sf(x, df)
  chisquare      chisquare(f_obs=current counts, f_exp=reference counts * n_cur/n_ref)
  z              two-proportion Z-test, p = 2 * (1 - scipy.stats.norm.cdf(|z|))
  wasserstein    scipy.stats.wasserstein_distance(u, v) and that / max(np.std(u), 0.001)
  jensenshannon  scipy.spatial.distance.jensenshannon(ref_shares, cur_shares, base=2) over
                 Sturges bins (numerical, > 20 distinct reference values) or values
  psi            sum (r - c) ln(r / c) over the same shares with zeros filled as Evidently
"""
import json
import os

import numpy as np
import scipy
from scipy import stats
from scipy.spatial import distance


def r6(x):
    return [round(float(v), 6) for v in x]


def gen(n, mult, shift):
    return [(i * mult) % 1.0 + shift for i in range(n)]


def binned(ref, cur, numerical):
    """Evidently's get_binned_data (without filling zeros)."""
    ref = np.asarray(ref)
    cur = np.asarray(cur)
    if numerical and len(np.unique(ref)) > 20:
        bins = np.histogram_bin_edges(np.concatenate([ref, cur]), bins="sturges")
        return (np.histogram(ref, bins)[0] / len(ref), np.histogram(cur, bins)[0] / len(cur))
    keys = sorted(set(ref.tolist()) | set(cur.tolist()))
    rc = {k: 0 for k in keys}
    cc = {k: 0 for k in keys}
    for v in ref.tolist():
        rc[v] += 1
    for v in cur.tolist():
        cc[v] += 1
    return (np.array([rc[k] / len(ref) for k in keys]), np.array([cc[k] / len(cur) for k in keys]))


def fill_zeros(p):
    p = p.copy()
    nz = p[p != 0]
    if len(nz):
        m = min(nz)
        np.place(p, p == 0, m / 10**6 if m <= 0.0001 else 0.0001)
    return p


def main():
    rng = np.random.default_rng(20261207)
    out = {"scipy": scipy.__version__, "numpy": np.__version__}

    ks = []
    for n1, n2, shift, ties in [(40, 40, 0.5, False), (5, 7, 0.8, False), (50, 73, 0.3, False),
                                (60, 90, 0.0, True), (800, 1200, 0.1, False),
                                (200, 200, 0.05, True), (1, 3, 0.0, False)]:
        a = rng.normal(0, 1, n1)
        b = rng.normal(shift, 1, n2)
        if ties:
            a, b = np.round(a * 2), np.round(b * 2)
        a, b = r6(a), r6(b)
        res = stats.ks_2samp(a, b)
        ks.append({"a": a, "b": b, "statistic": float(res.statistic), "pvalue": float(res.pvalue)})
    for n1, mult1, shift1, n2, mult2, shift2 in [(300, 0.6180339887498949, 0.0,
                                                  12000, 0.41421356237309515, 0.02),
                                                 (30, 0.7548776662466927, 0.0,
                                                  10001, 0.5698402909980532, 0.3),
                                                 (900, 0.6180339887498949, 0.0,
                                                  15000, 0.41421356237309515, 0.2)]:
        a, b = gen(n1, mult1, shift1), gen(n2, mult2, shift2)
        res = stats.ks_2samp(a, b)
        ks.append({"a_gen": [n1, mult1, shift1], "b_gen": [n2, mult2, shift2],
                   "statistic": float(res.statistic), "pvalue": float(res.pvalue)})
    out["ks"] = ks

    out["kstwo_sf"] = [{"n": n, "d": d, "sf": float(stats.kstwo.sf(d, n))}
                       for n, d in [(5, 0.15), (10, 0.95), (20, 0.6), (50, 0.1), (50, 0.2),
                                    (100, 0.3), (1000, 0.03), (1000, 0.01), (1000, 0.06),
                                    (200, 0.004), (100000, 0.002), (300, 0.05), (293, 0.12)]]
    out["chi2_sf"] = [{"x": x, "df": df, "sf": float(stats.chi2.sf(x, df))}
                      for x, df in [(0.5, 1), (3.2, 2), (10.0, 3), (45.0, 7), (2.0, 20),
                                    (150.0, 30), (1e-3, 4)]]

    chis = []
    for cats, n_ref, n_cur, p_ref, p_cur in [
            (["a", "b", "c"], 200, 150, [0.5, 0.3, 0.2], [0.4, 0.35, 0.25]),
            (["red", "green", "blue", "grey"], 90, 300, [0.25] * 4, [0.25] * 4),
            (["x", "y", "z", "w"], 500, 500, [0.4, 0.3, 0.2, 0.1], [0.1, 0.2, 0.3, 0.4])]:
        ref = rng.choice(cats, n_ref, p=p_ref).tolist()
        cur = rng.choice(cats, n_cur, p=p_cur).tolist()
        keys = sorted(set(ref) | set(cur))
        k_norm = len(cur) / len(ref)
        f_exp = [ref.count(k) * k_norm for k in keys]
        f_obs = [cur.count(k) for k in keys]
        res = stats.chisquare(f_obs, f_exp)
        chis.append({"reference": ref, "current": cur, "statistic": float(res.statistic),
                     "pvalue": float(res.pvalue)})
    out["chisquare"] = chis

    zs = []
    for n_ref, n_cur, p_ref, p_cur in [(100, 120, 0.3, 0.45), (400, 380, 0.5, 0.52),
                                       (30, 25, 0.1, 0.6)]:
        ref = rng.choice(["no", "yes"], n_ref, p=[1 - p_ref, p_ref]).tolist()
        cur = rng.choice(["no", "yes"], n_cur, p=[1 - p_cur, p_cur]).tolist()
        n1, n2 = len(ref), len(cur)
        p1 = ref.count("yes") / n1
        p2 = cur.count("yes") / n2
        pp = (p1 * n1 + p2 * n2) / (n1 + n2)
        z = (p1 - p2) / np.sqrt(pp * (1 - pp) * (1.0 / n1 + 1.0 / n2))
        zs.append({"reference": ref, "current": cur, "statistic": float(z),
                   "pvalue": float(2 * (1 - stats.norm.cdf(np.abs(z))))})
    out["z"] = zs

    ws = []
    for n1, n2, shift, scale in [(50, 60, 0.3, 1.0), (7, 3, 1.0, 2.0), (500, 400, 0.05, 0.5)]:
        u = r6(rng.normal(0, 1, n1))
        v = r6(rng.normal(shift, scale, n2))
        d = stats.wasserstein_distance(u, v)
        ws.append({"u": u, "v": v, "distance": float(d),
                   "normed": float(d / max(np.std(u), 0.001))})
    out["wasserstein"] = ws

    js = []
    psi = []
    cases = [
        (r6(rng.normal(0, 1, 300)), r6(rng.normal(0.4, 1.2, 250)), True),
        (r6(rng.normal(5, 2, 64)), r6(rng.normal(5, 2, 100)), True),
        (rng.integers(0, 4, 120).astype(float).tolist(), rng.integers(1, 6, 90).astype(float).tolist(), True),
        (rng.choice(["a", "b", "c", "d"], 150).tolist(),
         rng.choice(["a", "b", "c", "e"], 130, p=[0.1, 0.2, 0.3, 0.4]).tolist(), False),
    ]
    for ref, cur, numerical in cases:
        rp, cp = binned(ref, cur, numerical)
        js.append({"reference": ref, "current": cur, "numerical": numerical,
                   "distance": float(distance.jensenshannon(rp, cp, 2))})
        rf, cf = fill_zeros(rp), fill_zeros(cp)
        psi.append({"reference": ref, "current": cur, "numerical": numerical,
                    "psi": float(np.sum((rf - cf) * np.log(rf / cf)))})
    out["jensenshannon"] = js
    out["psi"] = psi

    here = os.path.dirname(os.path.abspath(__file__))
    path = os.path.join(here, "..", "..", "..", "testdata", "eval", "drift_golden.json")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(out, f, separators=(",", ":"))
        f.write("\n")
    print("wrote", os.path.normpath(path))


if __name__ == "__main__":
    main()
