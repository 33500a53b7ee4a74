#!/usr/bin/env python3
"""Runs the kapsel conformance vectors against the Python decoder.

    python3 testvectors/python/run_vectors.py [testvectors/vectors] [-v]

For each vector file (format: testvectors/README.md) it decodes the data with
the listed identities and checks the outcome class and the SHA-256 and length
of the released plaintext. It first checks the hand-composed HPKE base mode
(the only mode of the format) against the library's and, when the external
RFC 9180 vectors are present (../shared/vectors or $KAPSEL_VECTORS_DIR),
against their mode 0 vectors. It ends with the
line `python-vectors: N passed, M failed` and exits non-zero on any failure.
"""

import collections
import hashlib
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import kapsel_decode  # noqa: E402


def parse_vector(raw):
    split = raw.find(b"\n\n")
    if split < 0:
        raise ValueError("no blank line after the header")
    fields = []
    for line in raw[: split + 1].decode("ascii").splitlines():
        key, sep, value = line.partition(": ")
        if not sep:
            raise ValueError("header line without ': ': %r" % line)
        fields.append((key, value))
    return fields, raw[split + 2 :]


def one(fields, key):
    values = [v for k, v in fields if k == key]
    if len(values) != 1:
        raise ValueError("expected exactly one %r field, found %d" % (key, len(values)))
    return values[0]


def run_one(path):
    """None if the vector passed, else a description of the failure."""
    with open(path, "rb") as f:
        fields, data = parse_vector(f.read())
    expect = one(fields, "expect")
    if expect not in kapsel_decode.OUTCOMES:
        raise ValueError("unknown class %r" % expect)
    armor = one(fields, "armor")
    if armor not in ("yes", "no"):
        raise ValueError("armor must be yes or no")
    identities = [kapsel_decode.parse_identity(v) for k, v in fields if k == "identity"]
    identities += [
        kapsel_decode.PassphraseKey(bytes.fromhex(v)) for k, v in fields if k == "passphrase_hex"
    ]
    want_len = int(one(fields, "released_len"))
    want_sha = one(fields, "released_sha256")
    outcome, released = kapsel_decode.decode(data, identities, armor == "yes")
    got_sha = hashlib.sha256(released).hexdigest()
    if outcome != expect:
        return expect, "expected %s, got %s" % (expect, outcome)
    if len(released) != want_len or got_sha != want_sha:
        return expect, "released %d bytes (sha256 %s), expected %d bytes (sha256 %s)" % (
            len(released),
            got_sha,
            want_len,
            want_sha,
        )
    return expect, None


def rfc9180_vectors():
    base = os.environ.get("KAPSEL_VECTORS_DIR") or os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "shared", "vectors"
    )
    path = os.path.join(base, "hpke", "p256_sha256_aes256gcm.json")
    if not os.path.isfile(path):
        return None
    with open(path) as f:
        return json.load(f)


def run_directory(directory, run, verbose):
    """Runs `run(path) -> (expect, problem or None)` on every file of
    `directory`, in name order; prints failures (and successes if
    `verbose`); returns (passed, failed, count per expected outcome)."""
    passed = failed = 0
    per_outcome = collections.Counter()
    for name in sorted(os.listdir(directory)):
        path = os.path.join(directory, name)
        if not os.path.isfile(path):
            continue
        try:
            expect, problem = run(path)
        except Exception as e:  # a broken vector file is a failure too
            expect, problem = "?", "cannot run: %r" % (e,)
        per_outcome[expect] += 1
        if problem is None:
            passed += 1
            if verbose:
                print("ok   %s" % name)
        else:
            failed += 1
            print("FAIL %s: %s" % (name, problem))
    return passed, failed, per_outcome


def main(argv):
    verbose = "-v" in argv
    args = [a for a in argv if a != "-v"]
    directory = args[0] if args else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "vectors"
    )
    kapsel_decode.selftest_hpke()
    rfc = rfc9180_vectors()
    if rfc is not None:
        n = kapsel_decode.selftest_rfc9180(rfc)
        print("python HPKE: %d RFC 9180 test vectors (mode 0) ok" % n)
    else:
        print("python HPKE: RFC 9180 vectors not found, checked against the library's base mode only")
    passed, failed, per_class = run_directory(directory, run_one, verbose)
    print(
        "per class: "
        + ", ".join("%s %d" % (c, per_class[c]) for c in kapsel_decode.OUTCOMES if per_class[c])
    )
    print("python-vectors: %d passed, %d failed" % (passed, failed))
    return 1 if failed or passed == 0 else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
