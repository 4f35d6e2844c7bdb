#!/usr/bin/env python3
"""Exhaustive goldens for the IQ1/IQ2/IQ3 lattice types, and the grid tables of
src/tensor/iq_grids.cc, both from llama.cpp's own gguf-py (`gguf.quants`).

The random-block goldens beside this script (make_goldens.py) reach only a few hundred of
the up to 2048 entries of each type's codebook (grid). The files written here, <TYPE>_grid.bin
(same PKQG format, README.md), hold blocks built so that together they index EVERY grid entry
of the type, every 7-bit sign pattern (IQ2_XXS, IQ2_XS, IQ3_XXS), both IQ1 delta signs and
every value of every scale field, each under a sane f16 super-block scale; their floats are
gguf.quants.dequantize of those blocks. A decoder that matches them bit for bit therefore
has every table value right.

Usage (Debian's python3 with python3-numpy; gguf-py is not part of Pocket, pass its path):
  /usr/bin/python3 tests/golden/quant/make_iq_goldens.py \\
      --gguf-py /work/peer/llama.cpp/gguf-py --out tests/golden/quant
  /usr/bin/python3 tests/golden/quant/make_iq_goldens.py \\
      --gguf-py /work/peer/llama.cpp/gguf-py --grids-cc   # prints iq_grids.cc's tables

The committed files were made from llama.cpp commit 81ff7abe5fd1e4d3d1b05c0dc2ec1fe2af4b4dc5
(2026-07-08), as make_goldens.py's. Deterministic: same gguf-py, same bytes.
"""
import argparse
import os
import struct
import sys

import numpy as np

MAGIC = b"PKQG"
VERSION = 1
QK_K = 256

# Types and the blocks each needs to index every grid entry.
#   entries / grid indices per block = blocks
GRID_TYPES = {
    "IQ2_XXS": 8,  # 256 / 32
    "IQ2_XS": 16,  # 512 / 32
    "IQ2_S": 32,  # 1024 / 32
    "IQ3_XXS": 8,  # 256 / 64, twice (to vary the scales more)
    "IQ3_S": 8,  # 512 / 64
    "IQ1_S": 64,  # 2048 / 32
    "IQ1_M": 64,  # 2048 / 32
}


def SaneHalf(rng):
    return np.float16(rng.uniform(1e-3, 1e-1) * (1 if rng.integers(0, 2) else -1))


def F16Bytes(h):
    return np.array([h], dtype="<f2").view(np.uint8)


def U16Bytes(v):
    return np.array(v, dtype="<u2").view(np.uint8)


def U32Bytes(v):
    return np.array(v, dtype="<u4").view(np.uint8)


def BuildBlocks(name, n, rng):
    """Blocks of `name` whose grid indices, over all n blocks, run through 0..entries-1 in
    order (entry k of block b is grid index b * per_block + k), with sign/scale fields cycling
    through all their values."""
    blocks = []
    for b in range(n):
        d = F16Bytes(SaneHalf(rng))
        if name == "IQ2_XXS":
            # qs: 8 x (u32 grid bytes, u32 signs/scale): 4 grid indices (u8), 4 x 7 sign bits,
            # 4-bit scale.
            words = []
            for ib in range(8):
                g = [(b * 32 + ib * 4 + l) for l in range(4)]
                s = [((b * 32 + ib * 4 + l) * 5) % 128 for l in range(4)]
                scale = (b * 8 + ib) % 16
                words.append(g[0] | g[1] << 8 | g[2] << 16 | g[3] << 24)
                words.append(s[0] | s[1] << 7 | s[2] << 14 | s[3] << 21 | scale << 28)
            blk = np.concatenate([d, U32Bytes(words)])
        elif name == "IQ2_XS":
            # qs: 32 x u16 (9-bit grid index, 7-bit sign index); scales: 8 bytes of 2 nibbles.
            qs = [(b * 32 + k) | ((((b * 32 + k) * 3) % 128) << 9) for k in range(32)]
            scales = [((b * 16 + 2 * i) % 16) | (((b * 16 + 2 * i + 1) % 16) << 4)
                      for i in range(8)]
            blk = np.concatenate([d, U16Bytes(qs), np.array(scales, dtype=np.uint8)])
        elif name == "IQ2_S":
            # qs[0..31]: low 8 bits of 32 grid indices; qs[32..63]: sign bytes; qh[8]: 2 high
            # bits of 4 indices each; scales[8].
            idx = [b * 32 + k for k in range(32)]
            low = [i & 0xFF for i in idx]
            signs = list(rng.integers(0, 256, size=32))
            qh = [sum(((idx[4 * ib + l] >> 8) & 3) << (2 * l) for l in range(4)) for ib in range(8)]
            scales = [((b * 16 + 2 * i) % 16) | (((b * 16 + 2 * i + 1) % 16) << 4)
                      for i in range(8)]
            blk = np.concatenate([d, np.array(low + signs + qh + scales, dtype=np.uint8)])
        elif name == "IQ3_XXS":
            # qs[0..63]: 64 grid indices (u8); then 8 x u32: 4 x 7 sign bits, 4-bit scale.
            idx = [((b % 4) * 64 + k) for k in range(64)]
            words = []
            for ib in range(8):
                s = [((b * 32 + ib * 4 + l) * 7) % 128 for l in range(4)]
                scale = (b * 8 + ib) % 16
                words.append(s[0] | s[1] << 7 | s[2] << 14 | s[3] << 21 | scale << 28)
            blk = np.concatenate([d, np.array(idx, dtype=np.uint8), U32Bytes(words)])
        elif name == "IQ3_S":
            # qs[64]: low 8 bits of 64 indices; qh[8]: the 9th bits (8 per byte); signs[32];
            # scales[4] (2 nibbles each).
            idx = [b * 64 + k for k in range(64)]
            low = [i & 0xFF for i in idx]
            qh = [sum(((idx[8 * j + l] >> 8) & 1) << l for l in range(8)) for j in range(8)]
            signs = list(rng.integers(0, 256, size=32))
            scales = [((b * 8 + 2 * i) % 16) | (((b * 8 + 2 * i + 1) % 16) << 4) for i in range(4)]
            blk = np.concatenate([d, np.array(low + qh + signs + scales, dtype=np.uint8)])
        elif name == "IQ1_S":
            # qs[32]: low 8 bits of 32 indices; qh: 8 x u16 (4 x 3 high bits, 3-bit scale,
            # delta sign bit 15).
            idx = [b * 32 + k for k in range(32)]
            low = [i & 0xFF for i in idx]
            qh = []
            for ib in range(8):
                hi = sum(((idx[4 * ib + l] >> 8) & 7) << (3 * l) for l in range(4))
                scale = (b * 8 + ib) % 8
                sign = (b + ib) % 2
                qh.append(hi | scale << 12 | sign << 15)
            blk = np.concatenate([d, np.array(low, dtype=np.uint8), U16Bytes(qh)])
        elif name == "IQ1_M":
            # qs[32]: low 8 bits; qh[16]: per pair of indices a byte (3 high bits + delta sign
            # bit 3, same in the high nibble); scales: 4 x u16, 4 x 3-bit scales in the low 12
            # bits and one nibble of the f16 super-block scale in the top 4.
            idx = [b * 32 + k for k in range(32)]
            low = [i & 0xFF for i in idx]
            qh = []
            for j in range(16):
                lo = ((idx[2 * j] >> 8) & 7) | (((b + j) % 2) << 3)
                hi = ((idx[2 * j + 1] >> 8) & 7) | (((b + j + 1) % 2) << 3)
                qh.append(lo | hi << 4)
            dbits = int(np.array([SaneHalf(rng)], dtype="<f2").view("<u2")[0])
            sc = []
            for w in range(4):
                three = sum(((b * 16 + 4 * w + k) % 8) << (3 * k) for k in range(4))
                sc.append(three | (((dbits >> (4 * w)) & 0xF) << 12))
            blk = np.concatenate([np.array(low + qh, dtype=np.uint8), U16Bytes(sc)])
        else:
            raise SystemExit(f"unknown type {name}")
        blocks.append(blk.astype(np.uint8))
    return np.stack(blocks)


def MakeOne(gguf, quants, name, out_dir):
    qtype = gguf.GGMLQuantizationType[name]
    block_size, type_size = gguf.GGML_QUANT_SIZES[qtype]
    n = GRID_TYPES[name]
    rng = np.random.default_rng(1000 + int(qtype))
    blocks = BuildBlocks(name, n, rng)
    if blocks.shape != (n, type_size):
        raise SystemExit(f"{name}: built blocks of shape {blocks.shape}, want {(n, type_size)}")
    values = np.asarray(quants.dequantize(blocks.reshape(-1).copy(), qtype), dtype=np.float32)
    values = values.reshape(-1)
    if values.size != n * block_size or not np.all(np.isfinite(values)):
        raise SystemExit(f"{name}: bad dequantization from gguf.quants")
    path = os.path.join(out_dir, f"{name}_grid.bin")
    with open(path, "wb") as f:
        f.write(MAGIC)
        f.write(struct.pack("<5I", VERSION, int(qtype), n, block_size, type_size))
        f.write(blocks.tobytes())
        f.write(values.astype("<f4").tobytes())
    print(f"{name:8s} blocks={n:2d} -> {path}")


def GridBytes(cls):
    """The grid of a gguf.quants class as integer bytes, shape (entries, elements)."""
    cls.init_grid()
    g = np.asarray(cls.grid, dtype=np.float32).reshape(cls.grid_shape)
    if not np.all(g == np.round(g)):
        raise SystemExit(f"{cls.__name__}: non-integer grid")
    return g.astype(np.int64) & 0xFF  # IQ1's -1 -> 0xff, as int8 bytes


def PrintTable(ctype, name, rows, per_line, digits):
    print(f"const {ctype} {name}[{len(rows)}] = {{")
    for i in range(0, len(rows), per_line):
        chunk = rows[i:i + per_line]
        print("    " + " ".join(f"0x{v:0{digits}x}," for v in chunk))
    print("};")


def PrintGridsCc(quants):
    # Byte j of entry k (little-endian) is element j of codebook point k.
    for cls, ctype, name in ((quants.IQ2_XXS, "uint64_t", "kIQ2XXSGrid"),
                             (quants.IQ2_XS, "uint64_t", "kIQ2XSGrid"),
                             (quants.IQ2_S, "uint64_t", "kIQ2SGrid"),
                             (quants.IQ3_XXS, "uint32_t", "kIQ3XXSGrid"),
                             (quants.IQ3_S, "uint32_t", "kIQ3SGrid"),
                             (quants.IQ1_S, "uint64_t", "kIQ1SGrid")):
        g = GridBytes(cls)
        rows = [sum(int(v) << (8 * j) for j, v in enumerate(r)) for r in g]
        wide = ctype == "uint64_t"
        PrintTable(ctype, name, rows, 4 if wide else 8, 16 if wide else 8)
        print()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gguf-py", required=True, help="llama.cpp's gguf-py folder")
    ap.add_argument("--out", help="output folder for <TYPE>_grid.bin")
    ap.add_argument("--grids-cc", action="store_true", help="print iq_grids.cc's tables")
    args = ap.parse_args()
    sys.path.insert(0, os.path.abspath(args.gguf_py))
    import gguf  # noqa: E402
    import gguf.quants as quants  # noqa: E402

    if args.grids_cc:
        PrintGridsCc(quants)
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        for name in GRID_TYPES:
            MakeOne(gguf, quants, name, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
