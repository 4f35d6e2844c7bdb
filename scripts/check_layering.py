#!/usr/bin/env python3
"""Checks every `#include "<layer>/..."` under src/ against the layer table of
ARCHITECTURE.md (linking cannot catch a header-only leak), and that Highway and CUDA
headers stay inside kernels/cpu and kernels/cuda. Exits 1 with one line per violation."""
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
ALLOWED = {
    "base": set(),
    "tensor": {"base"},
    "net": {"base"},
    "kernels": {"base", "tensor"},
    "formats": {"base", "tensor"},
    "tokenizer": {"base", "formats"},
    "model": {"base", "tensor", "kernels", "formats"},
    "runtime": {"model", "tokenizer"},
    "train": {"model", "kernels", "formats"},
    "registry": {"base", "formats", "net"},
    "router": {"runtime", "registry", "net"},
    "crdt": {"base"},
    "sync": {"crdt", "runtime", "net"},
    "eval": {"runtime", "router"},
    "emulate": {"runtime"},
    "features": {"base"},
    "server": {"runtime", "router", "sync", "registry", "net"},
    "cli": None,  # everything
}


def closure(layer, seen=None):
    """A layer may use what it names and, transitively, what those use."""
    seen = set() if seen is None else seen
    for dep in ALLOWED[layer] or ():
        if dep not in seen:
            seen.add(dep)
            closure(dep, seen)
    return seen


INCLUDE = re.compile(r'^\s*#\s*include\s*[<"]([^">]+)[">]', re.M)


def main():
    errors = []
    for path in sorted((ROOT / "src").rglob("*")):
        if path.suffix not in {".h", ".cc", ".cu", ".cuh"}:
            continue
        rel = path.relative_to(ROOT / "src")
        layer = rel.parts[0]
        if layer not in ALLOWED:
            errors.append(f"{path}: folder '{layer}' is not a layer of ARCHITECTURE.md")
            continue
        allowed = None if ALLOWED[layer] is None else closure(layer) | {layer}
        text = path.read_text(errors="replace")
        for m in INCLUDE.finditer(text):
            inc = m.group(1)
            head = inc.split("/")[0]
            if head in ALLOWED and allowed is not None and head not in allowed:
                errors.append(f"{path}: includes {inc}, but {layer} may not use {head}")
            if inc.startswith("hwy/") and rel.parts[:2] != ("kernels", "cpu"):
                errors.append(f"{path}: Highway header {inc} outside src/kernels/cpu")
            if (inc.startswith("cuda") or inc.startswith("cublas")) and rel.parts[:2] != ("kernels", "cuda"):
                errors.append(f"{path}: CUDA header {inc} outside src/kernels/cuda")
    for e in errors:
        print(e)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
