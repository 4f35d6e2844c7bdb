#!/usr/bin/env python3
"""Converts the HF checkpoints made by make_golden.py into testdata/models/<name>.gguf.

Usage: python3 tests/golden/model/convert_goldens.py GOLDEN_DIR POCKET_BINARY
  GOLDEN_DIR: the unpacked model_golden/ folder from make_golden.py's archive.

transformers 5 saves `rope_parameters` (rope_theta, rope_type and the llama3 factors) in
config.json where transformers 4 — and every checkpoint published on the Hub so far —
writes `rope_theta` and `rope_scaling`. Each config is copied with the 4.x keys added
(values unchanged) before `pocket convert --type f32` runs on it.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

NAMES = ["llama_gqa", "llama_mqa", "llama_untied", "llama3_scaling", "qwen2_tied",
         "qwen2_untied"]


def legacy_config(cfg):
    rp = cfg.get("rope_parameters") or {}
    if "rope_theta" in rp and "rope_theta" not in cfg:
        cfg["rope_theta"] = rp["rope_theta"]
    if rp.get("rope_type", "default") != "default" and "rope_scaling" not in cfg:
        cfg["rope_scaling"] = {k: v for k, v in rp.items() if k != "rope_theta"}
    return cfg


def main():
    golden_dir, pocket = sys.argv[1], sys.argv[2]
    out_dir = os.path.join(os.path.dirname(__file__), "..", "..", "..", "testdata", "models")
    with tempfile.TemporaryDirectory() as tmp:
        for name in NAMES:
            src = os.path.join(golden_dir, name)
            dst = os.path.join(tmp, name)
            os.makedirs(dst)
            shutil.copy(os.path.join(src, "model.safetensors"), dst)
            with open(os.path.join(src, "config.json")) as f:
                cfg = legacy_config(json.load(f))
            with open(os.path.join(dst, "config.json"), "w") as f:
                json.dump(cfg, f, indent=2)
            subprocess.run([pocket, "convert", dst, "--type", "f32", "--name", name, "--out",
                            os.path.abspath(os.path.join(out_dir, name + ".gguf"))],
                           check=True)


if __name__ == "__main__":
    main()
