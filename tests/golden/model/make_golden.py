#!/usr/bin/env python3
"""Golden logits for Pocket's Llama-family forward pass (src/model).

Runs on the GPU machine (PyTorch + transformers installed, no internet). Builds tiny
random-weight Hugging Face models, saves each with save_pretrained (config.json +
model.safetensors, float32), runs the fixed token sequence TOKENS through it on the CPU in
float64 (the float32 weights cast up, so the reference carries no float32 rounding of its
own) and writes, per model:

  <name>/config.json, <name>/model.safetensors   the HF checkpoint (float32)
  <name>/logits.f32    float32 little-endian, [num_tokens][vocab_size], every position
  <name>/hidden.f32    float32 little-endian, [num_tokens][d_model], final hidden state
                       after the output norm (HF hidden_states[-1])
  <name>/golden.json   shapes, tokens, versions, inv_freq, and the float32-vs-float64 gap

All models are packed into ONE archive, $OUT/model_golden.tar.gz (staged in $GOLDEN_WORK).

Usage (device machine):  python3 tests/golden/model/make_golden.py
"""
import io
import json
import math
import os
import sys
import tarfile
import traceback

OUT = os.environ.get("OUT", "/tmp/model_golden_out")
WORK = os.environ.get("GOLDEN_WORK", "/tmp/model_golden_work")
TOKENS = [1, 17, 254, 3, 99, 42, 128, 7, 200, 5, 63, 31, 250, 0, 77, 144]
SEED = 1234

# name, HF class, config kwargs. d_model 64..128, 2 layers, vocab 256..512.
MODELS = [
    ("llama_gqa", "llama", dict(vocab_size=256, hidden_size=64, intermediate_size=160,
                                num_hidden_layers=2, num_attention_heads=4,
                                num_key_value_heads=2, rope_theta=10000.0, rms_norm_eps=1e-5,
                                tie_word_embeddings=True, max_position_embeddings=128)),
    ("llama_mqa", "llama", dict(vocab_size=320, hidden_size=96, intermediate_size=192,
                                num_hidden_layers=2, num_attention_heads=6,
                                num_key_value_heads=1, rope_theta=500000.0, rms_norm_eps=1e-6,
                                tie_word_embeddings=True, max_position_embeddings=128)),
    ("llama_untied", "llama", dict(vocab_size=512, hidden_size=128, intermediate_size=256,
                                   num_hidden_layers=2, num_attention_heads=8,
                                   num_key_value_heads=8, rope_theta=10000.0,
                                   rms_norm_eps=1e-5, tie_word_embeddings=False,
                                   max_position_embeddings=128)),
    # Llama 3 rope scaling: original context 64 puts the 8 frequencies of head_dim 16 in all
    # three regions (kept, smoothed, divided by factor) so the scaling changes the logits.
    ("llama3_scaling", "llama", dict(vocab_size=256, hidden_size=64, intermediate_size=128,
                                     num_hidden_layers=2, num_attention_heads=4,
                                     num_key_value_heads=2, rope_theta=10000.0,
                                     rms_norm_eps=1e-5, tie_word_embeddings=False,
                                     max_position_embeddings=512,
                                     rope_scaling=dict(rope_type="llama3", factor=8.0,
                                                       low_freq_factor=1.0,
                                                       high_freq_factor=4.0,
                                                       original_max_position_embeddings=64))),
    ("qwen2_tied", "qwen2", dict(vocab_size=256, hidden_size=64, intermediate_size=128,
                                 num_hidden_layers=2, num_attention_heads=4,
                                 num_key_value_heads=2, rope_theta=1000000.0,
                                 rms_norm_eps=1e-6, tie_word_embeddings=True,
                                 max_position_embeddings=128, use_sliding_window=False)),
    ("qwen2_untied", "qwen2", dict(vocab_size=384, hidden_size=128, intermediate_size=224,
                                   num_hidden_layers=2, num_attention_heads=8,
                                   num_key_value_heads=2, rope_theta=10000.0,
                                   rms_norm_eps=1e-6, tie_word_embeddings=False,
                                   max_position_embeddings=128, use_sliding_window=False)),
]


def make_config(kind, kw):
    import transformers
    cls = transformers.LlamaConfig if kind == "llama" else transformers.Qwen2Config
    try:
        return cls(**kw, attn_implementation="eager")
    except TypeError:
        return cls(**kw)


def randomize(model, torch, gen):
    """Weights with unit-scale activations: transformers' default init (std 0.02, zero
    biases, unit norms) gives near-uniform logits and would leave biases and norm weights
    untested."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=gen))
            elif name.endswith(".bias"):
                p.copy_(0.5 * torch.randn(p.shape, generator=gen))
            elif "embed_tokens" in name:
                p.copy_(torch.randn(p.shape, generator=gen))
            else:  # linear [out, in]
                p.copy_(torch.randn(p.shape, generator=gen) / math.sqrt(p.shape[-1]))


def run_one(name, kind, kw, log):
    import torch
    import transformers
    torch.manual_seed(SEED)
    gen = torch.Generator().manual_seed(SEED)
    cfg = make_config(kind, kw)
    cls = transformers.LlamaForCausalLM if kind == "llama" else transformers.Qwen2ForCausalLM
    model = cls(cfg).to(torch.float32).eval()
    randomize(model, torch, gen)
    if cfg.tie_word_embeddings:
        assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
    d = os.path.join(WORK, "model_golden", name)
    os.makedirs(d, exist_ok=True)
    model.save_pretrained(d, safe_serialization=True)

    ids = torch.tensor([TOKENS], dtype=torch.long)
    with torch.no_grad():
        out32 = model(ids, output_hidden_states=True)
        m64 = model.to(torch.float64)
        out64 = m64(ids, output_hidden_states=True)
    logits64 = out64.logits[0]
    hidden64 = out64.hidden_states[-1][0]
    logits32 = out32.logits[0].to(torch.float64)
    gap = ((logits32 - logits64).abs().max() / logits64.abs().max()).item()
    logits64.to(torch.float32).numpy().astype("<f4").tofile(os.path.join(d, "logits.f32"))
    hidden64.to(torch.float32).numpy().astype("<f4").tofile(os.path.join(d, "hidden.f32"))
    inv_freq = None
    try:
        inv_freq = m64.model.rotary_emb.inv_freq.tolist()
    except Exception:  # noqa: BLE001 - layout differs between versions; informative only
        pass
    meta = dict(name=name, hf_class=cls.__name__, tokens=TOKENS, seed=SEED,
                logits_shape=[len(TOKENS), cfg.vocab_size],
                hidden_shape=[len(TOKENS), cfg.hidden_size], dtype="float32 little-endian",
                computed_in="float64 on CPU from the float32 weights",
                f32_vs_f64_max_rel=gap, inv_freq=inv_freq,
                logits_abs_max=logits64.abs().max().item(),
                logits_std=logits64.std().item(),
                torch=torch.__version__, transformers=transformers.__version__,
                config_kwargs=kw)
    with open(os.path.join(d, "golden.json"), "w") as f:
        json.dump(meta, f, indent=1)
    log.write(f"{name}: ok, f32-vs-f64 max rel {gap:.3g}, |logits| max "
              f"{meta['logits_abs_max']:.3g} std {meta['logits_std']:.3g}\n")


def main():
    os.makedirs(OUT, exist_ok=True)
    log = io.StringIO()
    try:
        import torch
        import transformers
        log.write(f"torch {torch.__version__} transformers {transformers.__version__}\n")
    except Exception:  # noqa: BLE001
        log.write(traceback.format_exc())
    for name, kind, kw in MODELS:
        try:
            run_one(name, kind, kw, log)
        except Exception:  # noqa: BLE001 - one broken config must not lose the others
            log.write(f"{name}: FAILED\n{traceback.format_exc()}\n")
    os.makedirs(os.path.join(WORK, "model_golden"), exist_ok=True)
    for path in (os.path.join(WORK, "model_golden", "log.txt"), os.path.join(OUT, "log.txt")):
        with open(path, "w") as f:
            f.write(log.getvalue())
    with tarfile.open(os.path.join(OUT, "model_golden.tar.gz"), "w:gz") as tar:
        tar.add(os.path.join(WORK, "model_golden"), arcname="model_golden")
    sys.stdout.write(log.getvalue())


if __name__ == "__main__":
    main()
