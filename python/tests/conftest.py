"""Shared fixtures of the kapsel Python tests.

The CLI is found through $KAPSEL_CLI (default: target/debug/kapsel of this
checkout, built by `cargo build -p kapsel-cli` or the workspace tests);
the vectors in testvectors/vectors. Under CI=true a missing CLI, vector
directory or package fails the run instead of skipping.
"""

from __future__ import annotations

import os
import pathlib
import subprocess

import pytest

import kapsel

REPO = pathlib.Path(__file__).resolve().parents[2]
IN_CI = os.environ.get("CI") == "true"


def need(condition: bool, what: str) -> None:
    """Skips the test when `what` is missing, or fails it under CI=true."""
    if not condition:
        if IN_CI:
            pytest.fail(f"{what} is missing (CI=true: failing instead of skipping)")
        pytest.skip(f"{what} is missing", allow_module_level=True)


@pytest.fixture(scope="session")
def cli() -> str:
    path = os.environ.get("KAPSEL_CLI", str(REPO / "target" / "debug" / "kapsel"))
    need(os.access(path, os.X_OK), f"the kapsel CLI ({path}; set KAPSEL_CLI)")
    return path


def run(*args: str, input: bytes | None = None) -> bytes:
    """Runs a command; its standard output (failing the test on exit != 0)."""
    p = subprocess.run(args, input=input, capture_output=True)
    assert p.returncode == 0, f"{args}: exit {p.returncode}: {p.stderr.decode(errors='replace')}"
    return p.stdout


@pytest.fixture(scope="session")
def alice() -> kapsel.Identity:
    return kapsel.Identity.generate()


@pytest.fixture(scope="session")
def bob() -> kapsel.Identity:
    return kapsel.Identity.generate()


@pytest.fixture(scope="session")
def sam() -> kapsel.Identity:
    """A sender who signs."""
    return kapsel.Identity.generate()


def pattern(n: int) -> bytes:
    """n bytes in which every 16 KiB chunk differs."""
    block = bytes(range(256)) * 64
    out = bytearray()
    i = 0
    while len(out) < n:
        out += bytes([(b + i) & 0xFF for b in block[:64]]) * 256
        i += 1
    return bytes(out[:n])


def require(module: str):
    """Imports `module`; a missing one skips the test, or fails it under CI=true."""
    try:
        return __import__(module, fromlist=["_"])
    except ImportError:
        need(False, f"the Python package {module}")
