#!/usr/bin/env python3
"""Compares the tensors of two GGUF files: name, shape, ggml type and data bytes.

    python3 bench/model/gguf_tensor_diff.py A.gguf B.gguf

Prints one line per tensor that differs (or is missing from one file) and a summary line;
exit status 0 only when every tensor is the same in both. Metadata is not compared (the two
tools write different provenance keys). Used to check that `pocket quantize` writes the
same bytes as llama-quantize where both choose the same type (docs/cli.md). Plain Python:
no numpy, no gguf-py.
"""
import struct
import sys

# ggml type id -> (name, block elements, block bytes) for the types these files hold.
TYPES = {
    0: ("F32", 1, 4), 1: ("F16", 1, 2), 2: ("Q4_0", 32, 18), 3: ("Q4_1", 32, 20),
    6: ("Q5_0", 32, 22), 7: ("Q5_1", 32, 24), 8: ("Q8_0", 32, 34), 10: ("Q2_K", 256, 84),
    11: ("Q3_K", 256, 110), 12: ("Q4_K", 256, 144), 13: ("Q5_K", 256, 176),
    14: ("Q6_K", 256, 210), 30: ("BF16", 1, 2),
}
SCALAR = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}


def read_tensors(path):
    with open(path, "rb") as f:
        data = f.read()
    pos = 0

    def take(fmt):
        nonlocal pos
        v = struct.unpack_from("<" + fmt, data, pos)
        pos += struct.calcsize("<" + fmt)
        return v[0]

    def skip_value(t):
        nonlocal pos
        if t in SCALAR:
            pos += SCALAR[t]
        elif t == 8:
            n = take("Q")
            pos += n
        elif t == 9:
            et, n = take("I"), take("Q")
            for _ in range(n):
                skip_value(et)
        else:
            raise ValueError(f"{path}: metadata value type {t}")

    if data[:4] != b"GGUF":
        raise ValueError(f"{path}: not a GGUF file")
    pos = 4
    take("I")  # version
    n_tensors, n_kv = take("Q"), take("Q")
    alignment = 32
    for _ in range(n_kv):
        n = take("Q")
        key = data[pos:pos + n].decode()
        pos += n
        t = take("I")
        if key == "general.alignment":
            alignment = struct.unpack_from("<I", data, pos)[0]
        skip_value(t)
    infos = []
    for _ in range(n_tensors):
        n = take("Q")
        name = data[pos:pos + n].decode()
        pos += n
        ne = [take("Q") for _ in range(take("I"))]
        infos.append((name, ne, take("I"), take("Q")))
    data_start = (pos + alignment - 1) // alignment * alignment
    out = {}
    for name, ne, t, off in infos:
        elems = 1
        for x in ne:
            elems *= x
        _, blk, nbytes = TYPES.get(t, ("?", 1, 0))
        size = elems // blk * nbytes
        out[name] = (ne, t, data[data_start + off:data_start + off + size])
    return out


def main():
    if len(sys.argv) != 3:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    a, b = read_tensors(sys.argv[1]), read_tensors(sys.argv[2])
    same = differ = 0
    for name in sorted(set(a) | set(b)):
        if name not in a or name not in b:
            print(f"{name}: only in {'first' if name in a else 'second'} file")
            differ += 1
            continue
        (na, ta, da), (nb, tb, db) = a[name], b[name]
        tn = lambda t: TYPES.get(t, (str(t),))[0]
        if na != nb or ta != tb:
            print(f"{name}: {tn(ta)} {na} vs {tn(tb)} {nb}")
            differ += 1
        elif da != db:
            print(f"{name}: {tn(ta)}, same shape, different bytes")
            differ += 1
        else:
            same += 1
    print(f"{same} tensors identical, {differ} differ")
    return 0 if differ == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
