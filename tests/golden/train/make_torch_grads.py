#!/usr/bin/env python3
"""Golden loss and gradients for Pocket's training backward pass (src/train).

Runs wherever PyTorch is installed (Debian 12's python3-torch made the committed golden;
the model runs on the CPU). Reads the tiny Llama GGUF written by Pocket's own export
(testdata/train/tiny_llama.gguf: ModelParams::Init + ToGguf, F32; how it is made:
testdata/train/README.md), builds the same model in plain PyTorch float32 — GGUF tensor
layout as is, "normal" (adjacent-pair) RoPE as ggml applies it to GGUF Q/K rows, GQA,
RMSNorm, SwiGLU, tied or untied output — runs the fixed batch of testdata/train/batch.json
(num_seqs sequences of seq_len tokens, targets with -1 = no loss), takes the mean
cross-entropy over the counted targets, backpropagates, and writes:

  $OUT/golden.json   loss (float32 run), loss in float64, tensor names/shapes in file order,
                     the largest float32-vs-float64 gradient gap, torch version
  $OUT/grads.f32     float32 little-endian: every tensor's gradient in file order,
                     concatenated (row-major, GGUF ne[0] fastest)

Usage (device machine, from the repository root):
  OUT=/tmp/train_golden python3 tests/golden/train/make_torch_grads.py
then copy $OUT/golden.json and $OUT/grads.f32 into testdata/train/ and run
  ctest --test-dir build/release -R pocket_train_test   (GoldenGradsTest)
"""
import json
import math
import mmap
import os
import struct
import sys

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
DATA = os.path.join(ROOT, "testdata", "train")
OUT = os.environ.get("OUT", "/tmp/train_golden")


def read_gguf(path, with_tensors=True):
    """A minimal GGUF v3 reader: metadata scalars/strings/arrays and F32 tensors (with
    with_tensors=False only the metadata and the tensor names/shapes, of any type; the file
    is mapped, so only the header is read then)."""
    with open(path, "rb") as f:
        b = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    pos = 0

    def take(fmt):
        nonlocal pos
        v = struct.unpack_from("<" + fmt, b, pos)
        pos += struct.calcsize("<" + fmt)
        return v[0]

    def string():
        nonlocal pos
        n = take("Q")
        s = b[pos:pos + n].decode("utf-8")
        pos += n
        return s

    scalar = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q",
              12: "d"}

    def value(t):
        if t in scalar:
            return take(scalar[t])
        if t == 8:
            return string()
        if t == 9:
            et = take("I")
            n = take("Q")
            return [value(et) for _ in range(n)]
        raise ValueError("gguf type %d" % t)

    assert b[:4] == b"GGUF", "not a GGUF file"
    pos = 4
    version = take("I")
    assert version in (2, 3)
    n_tensors = take("Q")
    n_kv = take("Q")
    kv = {}
    for _ in range(n_kv):
        k = string()
        kv[k] = value(take("I"))
    infos = []
    for _ in range(n_tensors):
        name = string()
        nd = take("I")
        ne = [take("Q") for _ in range(nd)]
        t = take("I")
        off = take("Q")
        infos.append((name, ne, t, off))
    align = kv.get("general.alignment", 32)
    data = (pos + align - 1) // align * align
    tensors = {}
    order = []
    for name, ne, t, off in infos:
        if not with_tensors:
            order.append((name, ne))
            continue
        assert t == 0, "%s: only F32 tensors (type 0) are read, got type %d" % (name, t)
        n = 1
        for d in ne:
            n *= d
        arr = struct.unpack_from("<%df" % n, b, data + off)
        # GGUF ne[0] is the row length: torch shape is the reverse of ne.
        tensors[name] = torch.tensor(arr, dtype=torch.float32).reshape(list(reversed(ne)))
        order.append((name, ne))
    return kv, tensors, order


def rope_tables(head_dim, base, seq_len, dtype):
    # theta(p, i) = p * base^(-2i/head_dim), computed in float64 and stored in float32 as
    # Pocket's RopeTable does.
    i = torch.arange(head_dim // 2, dtype=torch.float64)
    inv = base ** (-2.0 * i / head_dim)
    p = torch.arange(seq_len, dtype=torch.float64)
    ang = p[:, None] * inv[None, :]
    return torch.cos(ang).to(torch.float32).to(dtype), torch.sin(ang).to(torch.float32).to(dtype)


def rope(x, cos, sin):
    # x [S, T, H, hd]; ggml "normal" RoPE rotates adjacent pairs (x[2i], x[2i+1]).
    x0 = x[..., 0::2]
    x1 = x[..., 1::2]
    c = cos[None, :, None, :]
    s = sin[None, :, None, :]
    out = torch.empty_like(x)
    out[..., 0::2] = x0 * c - x1 * s
    out[..., 1::2] = x0 * s + x1 * c
    return out


def rms_norm(x, w, eps):
    return x * torch.rsqrt((x * x).mean(-1, keepdim=True) + eps) * w


def llama_config(kv):
    """The model's sizes from GGUF metadata (llama arch), as a dict."""
    arch = kv["general.architecture"]
    assert arch == "llama", "the model covers arch llama"
    d = kv[arch + ".embedding_length"]
    n_heads = kv[arch + ".attention.head_count"]
    return {
        "d_model": d,
        "n_layers": kv[arch + ".block_count"],
        "n_heads": n_heads,
        "n_kv_heads": kv[arch + ".attention.head_count_kv"],
        "d_ff": kv[arch + ".feed_forward_length"],
        "eps": kv[arch + ".attention.layer_norm_rms_epsilon"],
        "rope_base": kv[arch + ".rope.freq_base"],
        "head_dim": kv.get(arch + ".attention.key_length", d // n_heads),
    }


def llama_loss(cfg, params, tokens, targets, dtype, linear=None):
    """Mean cross-entropy of the Llama model `params` (GGUF tensor names and layout) on
    tokens [S, T] (long) against targets [S * T] (long, -1 = no loss). `linear(x, name)`
    computes x @ params[name].T; a caller may pass its own (LoRA: bench/train)."""
    if linear is None:
        linear = lambda x, name: x @ params[name].T
    n_layers, n_heads, n_kv = cfg["n_layers"], cfg["n_heads"], cfg["n_kv_heads"]
    eps, hd = cfg["eps"], cfg["head_dim"]
    S, T = tokens.shape
    emb = params["token_embd.weight"]
    out_name = "output.weight" if "output.weight" in params else "token_embd.weight"
    cos, sin = rope_tables(hd, cfg["rope_base"], T, dtype)
    mask = torch.full((T, T), float("-inf"), dtype=dtype).triu(1)
    x = emb[tokens]  # [S, T, d]
    group = n_heads // n_kv
    for l in range(n_layers):
        p = lambda n: params["blk.%d.%s.weight" % (l, n)]
        w = lambda n: "blk.%d.%s.weight" % (l, n)
        xn = rms_norm(x, p("attn_norm"), eps)
        q = linear(xn, w("attn_q")).reshape(S, T, n_heads, hd)
        k = linear(xn, w("attn_k")).reshape(S, T, n_kv, hd)
        v = linear(xn, w("attn_v")).reshape(S, T, n_kv, hd)
        q, k = rope(q, cos, sin), rope(k, cos, sin)
        k = k.repeat_interleave(group, dim=2)  # query head h reads kv head h // group
        v = v.repeat_interleave(group, dim=2)
        scores = torch.einsum("sthd,suhd->shtu", q, k) / math.sqrt(hd) + mask
        att = torch.einsum("shtu,suhd->sthd", torch.softmax(scores, dim=-1), v)
        x = x + linear(att.reshape(S, T, n_heads * hd), w("attn_output"))
        xn = rms_norm(x, p("ffn_norm"), eps)
        h = torch.nn.functional.silu(linear(xn, w("ffn_gate"))) * linear(xn, w("ffn_up"))
        x = x + linear(h, w("ffn_down"))
    logits = rms_norm(x, params["output_norm.weight"], eps) @ params[out_name].T
    return torch.nn.functional.cross_entropy(logits.reshape(S * T, -1), targets,
                                             ignore_index=-1, reduction="mean")


def loss_and_grads(kv, tensors, order, batch, dtype):
    params = {k: v.to(dtype).clone().requires_grad_(True) for k, v in tensors.items()}
    S, T = batch["num_seqs"], batch["seq_len"]
    tokens = torch.tensor(batch["tokens"], dtype=torch.long).reshape(S, T)
    targets = torch.tensor(batch["targets"], dtype=torch.long).reshape(S * T)
    loss = llama_loss(llama_config(kv), params, tokens, targets, dtype)
    loss.backward()
    return loss.item(), [params[name].grad.detach().to(torch.float32) for name, _ in order]


def main():
    torch.set_num_threads(1)
    kv, tensors, order = read_gguf(os.path.join(DATA, "tiny_llama.gguf"))
    with open(os.path.join(DATA, "batch.json")) as f:
        batch = json.load(f)
    loss32, grads32 = loss_and_grads(kv, tensors, order, batch, torch.float32)
    loss64, grads64 = loss_and_grads(kv, tensors, order, batch, torch.float64)
    gap = max(float((a - b).abs().max() / b.abs().max().clamp_min(1e-30))
              for a, b in zip(grads32, grads64))
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, "grads.f32"), "wb") as f:
        for g in grads32:
            f.write(g.contiguous().numpy().astype("<f4").tobytes())
    meta = {
        "loss": loss32,
        "loss_f64": loss64,
        "tensors": [{"name": n, "ne": ne} for n, ne in order],
        "max_rel_grad_gap_f32_vs_f64": gap,
        "torch": torch.__version__,
        "made_by": "tests/golden/train/make_torch_grads.py",
    }
    with open(os.path.join(OUT, "golden.json"), "w") as f:
        json.dump(meta, f, indent=1)
    print("loss %.8f (float64 %.8f), f32-vs-f64 gradient gap %.3g; wrote %s" %
          (loss32, loss64, gap, OUT))


if __name__ == "__main__":
    sys.exit(main())
