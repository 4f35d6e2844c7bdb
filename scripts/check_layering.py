#!/usr/bin/env python3
"""Checks the layer table of ARCHITECTURE.md against the code, since linking alone cannot
catch a header-only leak. Exits 1 with one line per violation.

The rule is DIRECT, not transitive: the library code of a layer (every .h/.cc/.cu/.cuh under
src/<layer>/ but its tests) may include headers of
  - its own layer,
  - `base`, the foundation every layer may use (so the table's "may use" column is read as
    "base, plus these"), and
  - exactly the layers its row of ARCHITECTURE.md names
and nothing else: runtime, whose row says "model, tokenizer", may not include formats/ or
kernels/ headers even though model uses them; it reaches them through model's API.

Tests, benchmarks, fuzz targets and test utilities (*_test.cc, *_bench.cc, *_fuzz.cc,
*_testutil.{h,cc}) are built against the layer's library, which links its whole closure, so
they may include any layer the library may reach transitively (a runtime test writes a
random GGUF with formats/random_model.h), but never a layer above their own.

It also checks that each src/<layer>/CMakeLists.txt links (`pocket_layer(NAME DEPS ...)`)
only base and layers of its row, and links every layer its library code includes, so that the
link graph is the include graph; and that Highway and CUDA headers stay inside kernels/cpu
and kernels/cuda.

ALLOWED is ARCHITECTURE.md's table, row for row; keep the two identical (a layer that has no
folder yet still has its row)."""
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
FOUNDATION = "base"
ALLOWED = {
    "base": set(),
    "tensor": {"base"},
    "net": {"base"},
    "kernels": {"base", "tensor"},
    "formats": {"base", "tensor"},
    "tokenizer": {"base", "formats"},
    "model": {"base", "tensor", "kernels", "formats"},
    "runtime": {"model", "tokenizer"},
    "train": {"model", "kernels", "formats", "tokenizer"},
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

TEST_FILE = re.compile(r"_(test|bench|fuzz|testutil)\.(h|cc)$")
# Group 1 is the opening delimiter: only quoted includes name a layer (<net/if.h> is a
# system header, not the net layer); Highway and CUDA headers are checked in both forms.
INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^">]+)[">]', re.M)
LAYER_CALL = re.compile(r"pocket_layer\(\s*(\w+)([^)]*)\)", re.S)


def direct(layer):
    """What library code of `layer` may include besides itself."""
    return set(ALLOWED[layer]) | {FOUNDATION}


def closure(layer, seen=None):
    """What `layer` reaches through its rows, transitively (for its tests)."""
    seen = set() if seen is None else seen
    for dep in direct(layer) - {layer}:
        if dep not in seen:
            seen.add(dep)
            closure(dep, seen)
    return seen


def cmake_deps(layer):
    """The layers named after DEPS in src/<layer>/CMakeLists.txt, or None without one."""
    path = ROOT / "src" / layer / "CMakeLists.txt"
    if not path.exists():
        return None
    for m in LAYER_CALL.finditer(path.read_text()):
        if m.group(1) != layer:
            continue
        words = m.group(2).split()
        deps, on = set(), False
        for w in words:
            if w in ("DEPS", "LIBS"):
                on = w == "DEPS"
            elif on and w.startswith("pocket_"):
                deps.add(w[len("pocket_"):])
        return deps
    return None


def main():
    errors = []
    used = {}  # layer -> layers its library code includes
    for path in sorted((ROOT / "src").rglob("*")):
        if path.suffix not in {".h", ".cc", ".cu", ".cuh"}:
            continue
        rel = path.relative_to(ROOT / "src")
        layer = rel.parts[0]
        if layer not in ALLOWED:
            errors.append(f"{path}: folder '{layer}' is not a layer of ARCHITECTURE.md")
            continue
        is_test = TEST_FILE.search(path.name) is not None
        if ALLOWED[layer] is None:
            allowed = None
        elif is_test:
            allowed = closure(layer) | {layer}
        else:
            allowed = direct(layer) | {layer}
        text = path.read_text(errors="replace")
        for m in INCLUDE.finditer(text):
            inc = m.group(2)
            head = inc.split("/")[0]
            if m.group(1) == '"' and head in ALLOWED and allowed is not None:
                if head not in allowed:
                    how = "(not even transitively)" if is_test else "directly"
                    errors.append(f"{path}: includes {inc}, but {layer} may not use {head} {how}")
                elif not is_test and head != layer:
                    used.setdefault(layer, set()).add(head)
            if inc.startswith("hwy/") and rel.parts[:2] != ("kernels", "cpu"):
                errors.append(f"{path}: Highway header {inc} outside src/kernels/cpu")
            if (inc.startswith("cuda") or inc.startswith("cublas")) and rel.parts[:2] != ("kernels", "cuda"):
                errors.append(f"{path}: CUDA header {inc} outside src/kernels/cuda")
    for layer, row in ALLOWED.items():
        if row is None:
            continue
        deps = cmake_deps(layer)
        if deps is None:
            continue
        cmake = ROOT / "src" / layer / "CMakeLists.txt"
        for dep in sorted(deps - direct(layer)):
            errors.append(f"{cmake}: pocket_{layer} links pocket_{dep}, which its row does not name")
        for dep in sorted(used.get(layer, set()) - deps):
            errors.append(f"{cmake}: pocket_{layer} includes {dep}/ headers but does not link pocket_{dep}")
    for e in errors:
        print(e)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
