#!/usr/bin/env python3
"""Makes the quantization goldens in tests/golden/quant/: random GGML blocks per type and
their float32 dequantization by llama.cpp's own gguf-py (`gguf.quants.dequantize`).

Usage (Debian's python3 with python3-numpy; gguf-py is NOT vendored in Pocket, point at a
llama.cpp checkout kept outside this tree):
  /usr/bin/python3 tests/golden/quant/make_goldens.py \
      --gguf-py /work/peer/llama.cpp/gguf-py --out tests/golden/quant

The goldens committed here were made from upstream llama.cpp commit
81ff7abe5fd1e4d3d1b05c0dc2ec1fe2af4b4dc5 (2026-07-08). The output is deterministic for a
given gguf-py: same seed, same bytes.

Each <TYPE>.bin is described in README.md beside this script. Block bytes are random
(numpy PCG64, seed 12 + the ggml type id), except that every f16 scale field is replaced by
a finite value of magnitude uniform in [1e-3, 1e-1] with a random sign, so that no golden
holds NaN or Inf. Block 0 has an all-zero payload and block 1 an all-0xFF payload (scales
still sane): the lowest and highest quant codes, grid indices and sign bits.
"""
import argparse
import os
import struct
import sys

import numpy as np

MAGIC = b"PKQG"
VERSION = 1

# Byte offsets of the f16 scale fields inside one block (ggml-common.h). IQ1_M has no
# plain f16 field: its scale is the top nibble of each of the four uint16 words at byte
# 48..55 (handled in SaneScales).
F16_FIELDS = {
    "Q4_0": [0],
    "Q4_1": [0, 2],
    "Q5_0": [0],
    "Q5_1": [0, 2],
    "Q8_0": [0],
    "IQ4_NL": [0],
    "Q2_K": [80, 82],  # scales[16] qs[64] d dmin
    "Q3_K": [108],  # hmask[32] qs[64] scales[12] d
    "Q4_K": [0, 2],  # d dmin scales[12] qs[128]
    "Q5_K": [0, 2],  # d dmin scales[12] qh[32] qs[128]
    "Q6_K": [208],  # ql[128] qh[64] scales[16] d
    "IQ4_XS": [0],  # d scales_h scales_l[4] qs[128]
    "IQ1_S": [0],  # d qs[32] qh[8 x u16]
    "IQ1_M": [],  # qs[32] qh[16] scales[4 x u16], f16 scale in the top nibbles
    "IQ2_XXS": [0],
    "IQ2_XS": [0],
    "IQ2_S": [0],
    "IQ3_XXS": [0],
    "IQ3_S": [0],
}

# Blocks per file: enough to cover every sub-block position and the extremes, small
# enough that all goldens together stay well under 200 KB.
BLOCKS_SMALL = 32  # 32-element blocks
BLOCKS_LARGE = 8  # 256-element blocks


def SaneHalves(rng, n):
    mag = rng.uniform(1e-3, 1e-1, size=n)
    sign = np.where(rng.integers(0, 2, size=n) == 0, -1.0, 1.0)
    return (mag * sign).astype(np.float16)


def SaneScales(name, blocks, rng):
    n = blocks.shape[0]
    for off in F16_FIELDS[name]:
        blocks[:, off:off + 2] = SaneHalves(rng, n).view(np.uint8).reshape(n, 2)
    if name == "IQ1_M":
        bits = SaneHalves(rng, n).view(np.uint16).astype(np.uint16)
        words = blocks[:, 48:56].copy().view("<u2").reshape(n, 4)
        for i in range(4):
            nib = (bits >> np.uint16(4 * i)) & np.uint16(0xF)
            words[:, i] = (words[:, i] & np.uint16(0x0FFF)) | (nib << np.uint16(12))
        blocks[:, 48:56] = words.astype("<u2").view(np.uint8).reshape(n, 8)


def MakeOne(gguf, quants, name, out_dir):
    qtype = gguf.GGMLQuantizationType[name]
    block_size, type_size = gguf.GGML_QUANT_SIZES[qtype]
    n = BLOCKS_SMALL if block_size == 32 else BLOCKS_LARGE
    rng = np.random.default_rng(12 + int(qtype))
    blocks = rng.integers(0, 256, size=(n, type_size), dtype=np.uint8)
    blocks[0, :] = 0x00
    blocks[1, :] = 0xFF
    SaneScales(name, blocks, rng)
    values = quants.dequantize(blocks.reshape(-1).copy(), qtype)
    values = np.asarray(values, dtype=np.float32).reshape(-1)
    if values.size != n * block_size:
        raise SystemExit(f"{name}: gguf.quants gave {values.size} values, want {n * block_size}")
    if not np.all(np.isfinite(values)):
        raise SystemExit(f"{name}: gguf.quants gave non-finite values")
    path = os.path.join(out_dir, f"{name}.bin")
    with open(path, "wb") as f:
        f.write(MAGIC)
        f.write(struct.pack("<5I", VERSION, int(qtype), n, block_size, type_size))
        f.write(blocks.tobytes())
        f.write(values.astype("<f4").tobytes())
    return path, n, block_size, type_size, float(np.abs(values).max())


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gguf-py", required=True, help="llama.cpp's gguf-py folder")
    ap.add_argument("--out", required=True, help="output folder")
    ap.add_argument("--types", default=",".join(F16_FIELDS), help="comma-separated types")
    args = ap.parse_args()
    sys.path.insert(0, os.path.abspath(args.gguf_py))
    import gguf  # noqa: E402
    import gguf.quants as quants  # noqa: E402

    os.makedirs(args.out, exist_ok=True)
    failed = []
    for name in args.types.split(","):
        try:
            path, n, bs, ts, amax = MakeOne(gguf, quants, name, args.out)
        except (NotImplementedError, KeyError) as e:
            failed.append(name)
            print(f"{name}: not supported by this gguf-py: {e}", file=sys.stderr)
            continue
        print(f"{name:8s} id={int(gguf.GGMLQuantizationType[name]):2d} blocks={n:2d} "
              f"block={bs:3d} bytes={ts:3d} max|x|={amax:.4g} -> {path}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
