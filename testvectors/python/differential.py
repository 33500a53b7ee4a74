#!/usr/bin/env python3
"""Differential check of the two decoders on mutated vectors.

    python3 testvectors/python/differential.py [--per-vector N] [--seed S]

Every vector of testvectors/vectors is mutated N times (bit flips,
truncations, insertions, deletions, duplicated ranges, cuts and flips next to
a chunk or signed-segment boundary; for armor, edits of the text), with a
seeded generator. Each mutant is decoded by the Rust codec (the
`decode` binary of kapsel-testvectors) and by the Python decoder, and the
outcome class and released plaintext must agree. Disagreements are printed
and the mutant is kept in the output directory for inspection. Not part of
`scripts/test` (it takes minutes); a tool for SPEC and decoder work.
"""

import argparse
import hashlib
import os
import random
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)

import kapsel_decode  # noqa: E402
from run_vectors import parse_vector  # noqa: E402

HOT = [0, 8, 9, 11, 12, 16, 24, 32, 33, 35, 37, 39, 43, 108, 156, 158, 182, 214]
CHUNK_CIPHER = 16400
FULL_SEGMENT_LEN = 64 * 16400 + 64  # SPEC 6.5


def boundary(rng, data):
    """A file offset next to a chunk or segment boundary of the payload
    (SPEC 6.5: chunk i at payload offset 56 + 16400 i + 64 floor(i / 64),
    segment j at 56 + 1049664 j), for either layout."""
    header_len = int.from_bytes(data[12:16], "big") if len(data) >= 16 else 0
    signed = len(data) > 32 and data[32] == 0x01
    start = header_len + 56
    if signed and rng.random() < 0.5:
        j = rng.randrange(max(1, (len(data) - start) // FULL_SEGMENT_LEN + 1))
        at = start + FULL_SEGMENT_LEN * j
    else:
        i = rng.randrange(max(1, (len(data) - start) // CHUNK_CIPHER + 1))
        at = start + CHUNK_CIPHER * i + (64 * (i // 64) if signed else 0)
    return at + rng.choice([-81, -80, -65, -64, -63, -17, -16, -1, 0, 1, 15, 16, 63, 64, 79, 80])


def mutate(rng, data, armored):
    if not data:
        return bytes([rng.randrange(256)])
    n = len(data)
    kind = rng.randrange(9)
    if kind >= 7:
        if armored:
            kind = rng.randrange(7)
        else:
            # A cut (7) or a bit flip (8) next to a chunk or segment boundary.
            i = min(max(boundary(rng, data), 0), n - 1)
            if kind == 7:
                return data[:i]
            out = bytearray(data)
            out[i] ^= 1 << rng.randrange(8)
            return bytes(out)
    if armored and kind < 3:
        text = bytearray(data)
        i = rng.randrange(n)
        choice = rng.choice([b"\n", b"\r", b"\r\n", b"=", b" ", b"A", b"/", b"-"])
        if kind == 0:
            text[i : i + 1] = choice
        elif kind == 1:
            text[i:i] = choice
        else:
            del text[i : i + rng.randrange(1, 70)]
        return bytes(text)
    if kind <= 2:
        # A bit flip, often in a header field or at a boundary.
        i = rng.choice(HOT) if rng.random() < 0.4 and not armored else rng.randrange(n)
        i = min(i, n - 1)
        out = bytearray(data)
        out[i] ^= 1 << rng.randrange(8)
        return bytes(out)
    if kind == 3:
        return data[: rng.randrange(n)]
    if kind == 4:
        i = rng.randrange(n + 1)
        return data[:i] + bytes(rng.randrange(256) for _ in range(rng.choice([1, 15, 16, 17, 64]))) + data[i:]
    if kind == 5:
        i = rng.randrange(n)
        return data[:i] + data[i + rng.randrange(1, 100) :]
    i = rng.randrange(n)
    j = min(n, i + rng.randrange(1, 200))
    return data[:j] + data[i:j] + data[j:]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--per-vector", type=int, default=10)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--vectors", default=os.path.join(ROOT, "testvectors", "vectors"))
    ap.add_argument("--keep", default=None, help="directory for the mutants (default: a temporary one)")
    args = ap.parse_args()
    subprocess.run(
        ["cargo", "build", "-q", "-p", "kapsel-testvectors", "--bin", "decode"], cwd=ROOT, check=True
    )
    out = args.keep or tempfile.mkdtemp(prefix="kapsel-diff-")
    os.makedirs(out, exist_ok=True)
    rng = random.Random(args.seed)
    names = []
    for name in sorted(os.listdir(args.vectors)):
        with open(os.path.join(args.vectors, name), "rb") as f:
            raw = f.read()
        split = raw.find(b"\n\n")
        head, data = raw[: split + 2], raw[split + 2 :]
        armored = b"\narmor: yes\n" in head
        count = 2 if len(data) > 1_000_000 else args.per_vector
        for k in range(count):
            mutant = mutate(rng, data, armored)
            m = "%s.%03d" % (name, k)
            with open(os.path.join(out, m), "wb") as f:
                f.write(head + mutant)
            names.append(m)
    rust = {}
    res = subprocess.run(
        [os.path.join(ROOT, "target", "debug", "decode"), out], capture_output=True, check=True, text=True
    )
    for line in res.stdout.splitlines():
        name, cls, length, sha = line.split(" ")
        rust[name] = (cls, int(length), sha)
    disagree = 0
    for m in names:
        with open(os.path.join(out, m), "rb") as f:
            fields, data = parse_vector(f.read())
        ids = [kapsel_decode.parse_identity(v) for k, v in fields if k == "identity"]
        armored = dict(fields)["armor"] == "yes"
        cls, released = kapsel_decode.decode(data, ids, armored)
        py = (cls, len(released), hashlib.sha256(released).hexdigest())
        if py != rust[m]:
            disagree += 1
            print("DIFF %s: rust %s %d, python %s %d" % (m, rust[m][0], rust[m][1], py[0], py[1]))
        else:
            os.remove(os.path.join(out, m))
    print("differential: %d mutants, %d disagreements (kept in %s)" % (len(names), disagree, out))
    if not disagree and not args.keep:
        shutil.rmtree(out)
    return 1 if disagree else 0


if __name__ == "__main__":
    sys.exit(main())
