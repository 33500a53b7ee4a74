"""The GIL is released while Rust encrypts, decrypts and does its own I/O.

The proof does not time anything: Rust reads the ciphertext from a pipe
that a Python thread fills. The pipe holds far less than the file, so the
decryption can only finish if the Python thread runs while Rust waits on
the pipe, that is if Rust released the GIL (otherwise it deadlocks, which
the generous join timeout turns into a failure instead of a hang).
"""

from __future__ import annotations

import io
import os
import threading

import kapsel
from conftest import pattern

SAFETY_NET = 300  # seconds; a deadlock, never a slow run, reaches it


def _feed(fd: int, data: bytes) -> None:
    with os.fdopen(fd, "wb") as w:
        for i in range(0, len(data), 65536):
            w.write(data[i : i + 65536])


def test_decrypt_from_a_pipe_fed_by_a_python_thread(alice, tmp_path):
    data = pattern(8 * 1024 * 1024)
    cipher = kapsel.encrypt_bytes(data, alice.to_recipient())
    r, w = os.pipe()
    feeder = threading.Thread(target=_feed, args=(w, cipher))
    result = {}

    def work() -> None:
        try:
            result["ok"] = kapsel.decrypt(f"/dev/fd/{r}", tmp_path / "out", alice)
        except BaseException as e:  # reported below
            result["error"] = e

    worker = threading.Thread(target=work)
    feeder.start()
    worker.start()
    worker.join(SAFETY_NET)
    feeder.join(SAFETY_NET)
    os.close(r)
    assert not worker.is_alive(), "decrypt held the GIL while waiting for input"
    assert "error" not in result, result.get("error")
    assert (tmp_path / "out").read_bytes() == data


def test_encrypt_from_a_pipe_fed_by_a_python_thread(alice, tmp_path):
    data = pattern(4 * 1024 * 1024)
    r, w = os.pipe()
    feeder = threading.Thread(target=_feed, args=(w, data))
    feeder.start()
    worker = threading.Thread(
        target=kapsel.encrypt, args=(f"/dev/fd/{r}", tmp_path / "c.kap", alice.to_recipient())
    )
    worker.start()
    worker.join(SAFETY_NET)
    feeder.join(SAFETY_NET)
    os.close(r)
    assert not worker.is_alive(), "encrypt held the GIL while waiting for input"
    assert kapsel.decrypt_bytes((tmp_path / "c.kap").read_bytes(), alice) == data


def test_a_python_thread_runs_during_a_large_decrypt(alice):
    data = pattern(32 * 1024 * 1024)
    cipher = kapsel.encrypt_bytes(data, alice.to_recipient())
    stop = threading.Event()
    count = [0]

    def counter() -> None:
        while not stop.is_set():
            count[0] += 1

    t = threading.Thread(target=counter)
    t.start()
    try:
        with kapsel.open(io.BytesIO(cipher), identities=[alice]) as f:
            assert f.read_range(0, len(data)) == data
    finally:
        stop.set()
        t.join()
    assert count[0] > 0


def test_two_threads_read_one_file_and_two_files_at_once(alice, bob, tmp_path):
    files = {}
    for who, ident in (("a", alice), ("b", bob)):
        plain = pattern(3 * 1024 * 1024 + ord(who))
        p = tmp_path / f"{who}.kap"
        p.write_bytes(kapsel.encrypt_bytes(plain, ident.to_recipient()))
        files[who] = (p, ident, plain)
    shared = kapsel.open(files["a"][0], identities=[alice])
    errors = []

    def reader(who: str, step: int) -> None:
        p, ident, plain = files[who]
        try:
            with kapsel.open(p, identities=[ident]) as own:
                for off in range(0, len(plain), step):
                    assert own.read_range(off, 5000) == plain[off : off + 5000]
                    assert shared.read_range(off, 777) == files["a"][2][off : off + 777]
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=reader, args=(w, s)) for w, s in (("a", 99_991), ("b", 77_777))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(SAFETY_NET)
    assert not errors, errors
