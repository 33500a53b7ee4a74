"""Every conformance vector in testvectors/vectors through the Python
package (testvectors/README.md gives the file format).

Streaming (``kapsel.decrypt``): the outcome class must map to its
exception class, and the plaintext written before the error (all of it on
success) must have the vector's ``released_len`` and ``released_sha256``,
as for the Rust runner (testvectors/tests/kapsel_vectors.rs): a streaming
decoder releases exactly the chunks (signed: the segments) that verified.

Random access (``kapsel.open``) on every binary vector: the same class for
the header outcomes; for ``success`` the same plaintext; for payload and
sender failures a failure of the same class when the whole plaintext is
read. What a seekable reader releases before the error differs (it reads
only what is asked), so only the class is compared there.
"""

from __future__ import annotations

import hashlib
import io
import os
import pathlib

import pytest

import kapsel
from conftest import REPO, need

VECTORS = pathlib.Path(os.environ.get("KAPSEL_VECTORS", REPO / "testvectors" / "vectors"))


def load(path: pathlib.Path) -> dict:
    raw = path.read_bytes()
    head, data = raw.split(b"\n\n", 1)
    fields: dict = {"identity": []}
    for line in head.decode("ascii").split("\n"):
        key, value = line.split(": ", 1)
        if key == "identity":
            fields["identity"].append(value)
        else:
            fields[key] = value
    fields["data"] = data
    return fields


def names() -> list:
    if not VECTORS.is_dir():
        return ["<missing>"]
    return sorted(p.name for p in VECTORS.iterdir() if p.is_file())


def test_all_vectors_are_there():
    need(VECTORS.is_dir(), f"the vector directory {VECTORS}")
    assert len(names()) >= 420


def keys(v: dict) -> tuple:
    ids = [kapsel.Identity.from_string(s) for s in v["identity"]]
    pw = bytes.fromhex(v["passphrase_hex"]) if "passphrase_hex" in v else None
    return ids, pw


@pytest.mark.parametrize("name", names())
def test_vector_streaming(name):
    need(VECTORS.is_dir(), f"the vector directory {VECTORS}")
    v = load(VECTORS / name)
    ids, pw = keys(v)
    out = io.BytesIO()
    expect = v["expect"]
    try:
        kapsel.decrypt(io.BytesIO(v["data"]), out, ids, passphrase=pw, armor=v["armor"] == "yes")
        got = "success"
    except kapsel.KapselError as e:
        got = e.outcome
        assert type(e) is kapsel.errors.OUTCOME_CLASSES[expect] or expect == "success", (
            f"{name}: {type(e).__name__}: {e}"
        )
    assert got == expect, f"{name}: {got}, expected {expect}"
    released = out.getvalue()
    assert len(released) == int(v["released_len"]), name
    assert hashlib.sha256(released).hexdigest() == v["released_sha256"], name


def binary_names() -> list:
    """The vectors whose input is binary (armor is not seekable)."""
    return [n for n in names() if n == "<missing>" or b"\narmor: no\n" in (VECTORS / n).read_bytes()[:4096]]


@pytest.mark.parametrize("name", binary_names())
def test_vector_random_access(name):
    need(VECTORS.is_dir(), f"the vector directory {VECTORS}")
    v = load(VECTORS / name)
    ids, pw = keys(v)
    expect = v["expect"]
    try:
        with kapsel.open(io.BytesIO(v["data"]), identities=ids, passphrase=pw) as f:
            plain = f.read()
        got = "success"
    except kapsel.KapselError as e:
        got = e.outcome
        assert type(e) is kapsel.errors.OUTCOME_CLASSES[got]
    assert got == expect, f"{name}: {got}, expected {expect}"
    if expect == "success":
        assert hashlib.sha256(plain).hexdigest() == v["released_sha256"], name
