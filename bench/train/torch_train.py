#!/usr/bin/env python3
"""PyTorch (CPU, float32) half of the training throughput benchmark (bench/train/train_bench.sh).

Trains the Llama model of a GGUF file's shape for --steps optimizer steps on random token ids
and prints one JSON line: tokens per second over the steps after --warmup, every step's
seconds (warm-up included), loss, parameter counts. The model is the plain-PyTorch Llama of tests/golden/train/make_torch_grads.py (the
one Pocket's gradients are checked against: same RMSNorm, adjacent-pair RoPE, GQA, SwiGLU,
tied or untied output), imported from there so that there is one copy of it. Only the GGUF's
metadata and tensor names are read (the file is mapped, so its weights are never loaded): the
weights start random, N(0, 0.02) and norms 1, since their values do not change the cost.

  --mode full   every tensor trained; AdamW as `pocket train` runs it (betas 0.9/0.95, eps
                1e-8, weight decay 0.1 on matrices, none on norms), global-norm clip 1.0
  --mode lora   the base frozen in float32 (the dequantized model), LoRA A/B of --rank on the
                --targets matrices of every layer (A: PEFT's kaiming-uniform, B = 0, scale
                alpha/rank), only A/B trained; AdamW as `pocket finetune` (betas 0.9/0.999,
                no weight decay), clip 1.0

Each step: forward, backward, clip, AdamW step, gradients zeroed (fwd+bwd+step timed). Threads:
torch.set_num_threads(--threads), set_num_interop_threads(1). The learning rate is constant
(a schedule costs nothing measurable). Peak memory is measured from outside
(/usr/bin/time -v), as for Pocket.

Usage: python3 bench/train/torch_train.py --model M.gguf --mode full|lora --batch 16
           --seq-len 128 --steps 20 --warmup 2 [--threads 2] [--rank 8] [--alpha 16]
           [--targets q,k,v,o,gate,up,down] [--accum 1] [--seed 0]
"""
import argparse
import json
import math
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests",
                                "golden", "train"))
import make_torch_grads as llama  # noqa: E402  (read_gguf, llama_config, llama_loss)

# --targets names (as `pocket finetune --targets`) -> GGUF tensor names of a layer.
TARGETS = {"q": "attn_q", "k": "attn_k", "v": "attn_v", "o": "attn_output", "gate": "ffn_gate",
           "up": "ffn_up", "down": "ffn_down"}


def make_params(order, trainable, gen):
    """Random float32 tensors of the GGUF's names and shapes (torch shape = reversed ne)."""
    params = {}
    for name, ne in order:
        shape = list(reversed(ne))
        if name.endswith("_norm.weight"):
            t = torch.ones(shape)
        else:
            t = torch.randn(shape, generator=gen) * 0.02
        params[name] = t.requires_grad_(trainable)
    return params


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True, help="GGUF file whose shape is trained")
    ap.add_argument("--mode", choices=["full", "lora"], required=True)
    ap.add_argument("--batch", type=int, required=True, help="sequences per micro-batch")
    ap.add_argument("--accum", type=int, default=1, help="micro-batches per optimizer step")
    ap.add_argument("--seq-len", type=int, required=True)
    ap.add_argument("--steps", type=int, required=True, help="optimizer steps in all")
    ap.add_argument("--warmup", type=int, default=2, help="first steps left out of the timing")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rank", type=int, default=8)
    ap.add_argument("--alpha", type=float, default=16.0)
    ap.add_argument("--targets", default="q,k,v,o,gate,up,down")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    if a.steps <= a.warmup:
        ap.error("--steps must exceed --warmup")

    torch.set_num_threads(a.threads)
    torch.set_num_interop_threads(1)
    torch.manual_seed(a.seed)
    gen = torch.Generator().manual_seed(a.seed)
    kv, _, order = llama.read_gguf(a.model, with_tensors=False)
    cfg = llama.llama_config(kv)
    vocab = dict(order)["token_embd.weight"][1]
    full = a.mode == "full"
    params = make_params(order, full, gen)

    if full:
        decay = [p for n, p in params.items() if p.dim() >= 2]
        no_decay = [p for n, p in params.items() if p.dim() < 2]
        trained = decay + no_decay
        opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1},
                                 {"params": no_decay, "weight_decay": 0.0}],
                                lr=a.lr, betas=(0.9, 0.95), eps=1e-8)
        linear = None
    else:
        scale = a.alpha / a.rank
        lora = {}
        for l in range(cfg["n_layers"]):
            for t in a.targets.split(","):
                name = "blk.%d.%s.weight" % (l, TARGETS[t])
                out_f, in_f = params[name].shape
                A = torch.empty(a.rank, in_f)
                torch.nn.init.kaiming_uniform_(A, a=math.sqrt(5))  # as PEFT's lora_A
                lora[name] = (A.requires_grad_(True), torch.zeros(out_f, a.rank, requires_grad=True))
        trained = [t for ab in lora.values() for t in ab]
        opt = torch.optim.AdamW(trained, lr=a.lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)

        def linear(x, name):
            y = x @ params[name].T
            if name in lora:
                A, B = lora[name]
                y = y + ((x @ A.T) @ B.T) * scale
            return y

    n_micro = a.steps * a.accum
    tokens = torch.randint(vocab, (n_micro, a.batch, a.seq_len), generator=gen)
    targets = torch.randint(vocab, (n_micro, a.batch * a.seq_len), generator=gen)
    losses = []
    step_seconds = []
    for step in range(a.steps):
        t0 = time.perf_counter()
        for m in range(a.accum):
            i = step * a.accum + m
            loss = llama.llama_loss(cfg, params, tokens[i], targets[i], torch.float32, linear)
            (loss / a.accum).backward()
        torch.nn.utils.clip_grad_norm_(trained, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        losses.append(loss.item())
        step_seconds.append(time.perf_counter() - t0)
    secs = sum(step_seconds[a.warmup:])
    timed_tokens = (a.steps - a.warmup) * a.accum * a.batch * a.seq_len
    print(json.dumps({
        "mode": a.mode, "tokens_per_s": timed_tokens / secs, "timed_steps": a.steps - a.warmup,
        "seconds": secs, "step_seconds": step_seconds, "tokens_per_step": a.accum * a.batch * a.seq_len,
        "loss_first": losses[0], "loss_last": losses[-1], "threads": a.threads,
        "trained_params": sum(t.numel() for t in trained),
        "model_params": sum(t.numel() for t in params.values()),
        "torch": torch.__version__}))


if __name__ == "__main__":
    sys.exit(main())
