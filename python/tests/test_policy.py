"""The receiver policy (SPEC.md section 12) of the reading entry points:
``expect_sender``, ``max_age`` and ``max_skew`` on ``decrypt``,
``decrypt_bytes``, ``open`` and the fsspec filesystem, checked on the
authenticated header before any plaintext is written or returned.

Attacker's view: a file signed by Mallory when Alice is expected, an
anonymous file, a passphrase file, a header that names the expected sender
over segments another key signed, and an old file. A refusal must leave
nothing behind: no file at a path destination (nor a temporary one), no
byte written to a file object, no reader returned.

Old files: ``kapsel encrypt`` has no flag to set the creation time, and
neither has the Python API, so the old file is a conformance vector
(testvectors/vectors/encoder_signed): a genuine signed file whose
authenticated header says it was created on 2026-01-01. Its key and sender
are in the vector, so it is decrypted like any received file. Likewise
created_at_max (the year 9999: from the future, beyond any clock skew) and
created_at_zero (1970). A message answering a live-exchange challenge is
made by the CLI (`encrypt --challenge`).
"""

from __future__ import annotations

import datetime
import io
import os
import pickle
import subprocess
import time

import pytest

import kapsel
from conftest import REPO, need, pattern, require, run
from kapsel.errors import RefusedError, SenderAuthenticationError

VECTORS = REPO / "testvectors" / "vectors"


@pytest.fixture(scope="module")
def mallory() -> kapsel.Identity:
    return kapsel.Identity.generate()


@pytest.fixture(scope="module")
def data() -> bytes:
    return pattern(200_000)


@pytest.fixture(scope="module")
def from_alice(alice, bob, data) -> bytes:
    """For Bob, signed by Alice."""
    return kapsel.encrypt_bytes(data, bob.to_recipient(), sign_as=alice)


@pytest.fixture(scope="module")
def from_mallory(mallory, bob, data) -> bytes:
    """For Bob, signed by Mallory."""
    return kapsel.encrypt_bytes(data, bob.to_recipient(), sign_as=mallory)


@pytest.fixture(scope="module")
def anonymous(bob, data) -> bytes:
    return kapsel.encrypt_bytes(data, bob.to_recipient())


def vector(name: str) -> tuple:
    """The identities, the expected sender and the file of a vector."""
    path = VECTORS / name
    need(path.is_file(), f"the vector {path}")
    head, body = path.read_bytes().split(b"\n\n", 1)
    fields: dict = {"identity": []}
    for line in head.decode("ascii").split("\n"):
        key, value = line.split(": ", 1)
        if key == "identity":
            fields["identity"].append(kapsel.Identity.from_string(value))
        else:
            fields[key] = value
    return fields["identity"], fields.get("sender"), body


class WriteLog(io.RawIOBase):
    """A binary file object that records every write."""

    def __init__(self):
        super().__init__()
        self.writes: list = []

    def writable(self) -> bool:
        return True

    def write(self, b) -> int:
        self.writes.append(bytes(b))
        return len(b)


def listing(d) -> list:
    return sorted(os.listdir(d))


# Mallory's file when Alice is expected.


def test_decrypt_to_a_path_refuses_mallory_and_writes_no_file(tmp_path, from_mallory, alice, bob):
    (tmp_path / "in.kap").write_bytes(from_mallory)
    before = listing(tmp_path)
    with pytest.raises(RefusedError, match="not an expected sender") as e:
        kapsel.decrypt(tmp_path / "in.kap", tmp_path / "out", bob, expect_sender=alice.to_recipient())
    assert e.value.outcome == "refused"
    assert not (tmp_path / "out").exists()
    assert listing(tmp_path) == before  # no temporary file either


def test_decrypt_to_a_file_object_refuses_mallory_and_writes_nothing(from_mallory, alice, bob):
    out = WriteLog()
    with pytest.raises(RefusedError):
        kapsel.decrypt(io.BytesIO(from_mallory), out, bob, expect_sender=alice.to_recipient())
    assert out.writes == []


def test_decrypt_does_not_read_the_payload_of_a_refused_file(from_mallory, alice, bob):
    src = io.BytesIO(from_mallory)
    with pytest.raises(RefusedError):
        kapsel.decrypt(src, io.BytesIO(), bob, expect_sender=alice.to_recipient())
    # The header and what was read ahead with it, not the whole payload.
    assert src.tell() < len(from_mallory)


def test_decrypt_bytes_refuses_mallory(from_mallory, alice, bob):
    with pytest.raises(RefusedError, match="not an expected sender"):
        kapsel.decrypt_bytes(from_mallory, bob, expect_sender=str(alice.to_recipient()))


@pytest.mark.parametrize("how", ["path", "file object"])
def test_open_refuses_mallory_before_returning_a_reader(tmp_path, from_mallory, alice, bob, how):
    (tmp_path / "in.kap").write_bytes(from_mallory)
    src = tmp_path / "in.kap" if how == "path" else io.BytesIO(from_mallory)
    with pytest.raises(RefusedError, match="not an expected sender"):
        kapsel.open(src, identities=[bob], expect_sender=[alice.to_recipient()])


def test_the_message_is_the_clis(cli, tmp_path, from_mallory, alice, bob):
    (tmp_path / "in.kap").write_bytes(from_mallory)
    (tmp_path / "bob.key").write_text(bob.secret_string() + "\n")
    os.chmod(tmp_path / "bob.key", 0o600)
    p = subprocess.run(
        [cli, "decrypt", "-q", "-i", str(tmp_path / "bob.key"), "--expect-sender", str(alice.to_recipient()),
         str(tmp_path / "in.kap")],
        capture_output=True,
    )
    assert p.returncode == 6 and p.stdout == b""
    with pytest.raises(RefusedError) as e:
        kapsel.decrypt_bytes(from_mallory, bob, expect_sender=alice.to_recipient())
    assert str(e.value) in p.stderr.decode()


def test_a_cli_file_signed_by_mallory_is_refused(cli, tmp_path, mallory, alice, bob, data):
    (tmp_path / "mallory.key").write_text(mallory.secret_string() + "\n")
    os.chmod(tmp_path / "mallory.key", 0o600)
    (tmp_path / "plain").write_bytes(data)
    run(
        cli, "encrypt", "-q", "-r", str(bob.to_recipient()), "--sign-as", str(tmp_path / "mallory.key"),
        "--serial-db", str(tmp_path / "serials.db"), "-o", str(tmp_path / "m.kap"), str(tmp_path / "plain"),
    )
    with pytest.raises(RefusedError):
        kapsel.decrypt(tmp_path / "m.kap", tmp_path / "out", bob, expect_sender=alice.to_recipient())
    assert not (tmp_path / "out").exists()
    with pytest.raises(RefusedError):
        kapsel.open(tmp_path / "m.kap", identities=[bob], expect_sender=alice.to_recipient())
    # Mallory is who it says: accepted when she is the one expected.
    got = kapsel.decrypt(tmp_path / "m.kap", tmp_path / "out", bob, expect_sender=mallory.to_recipient())
    assert got.verified_sender == mallory.to_recipient()
    assert (tmp_path / "out").read_bytes() == data


# Files with no sender.


def test_an_anonymous_file_is_refused_when_a_sender_is_expected(tmp_path, anonymous, alice, bob):
    (tmp_path / "in.kap").write_bytes(anonymous)
    with pytest.raises(RefusedError, match="no sender"):
        kapsel.decrypt(tmp_path / "in.kap", tmp_path / "out", bob, expect_sender=alice.to_recipient())
    assert not (tmp_path / "out").exists()
    out = WriteLog()
    with pytest.raises(RefusedError, match="no sender"):
        kapsel.decrypt(io.BytesIO(anonymous), out, bob, expect_sender=alice.to_recipient())
    assert out.writes == []
    with pytest.raises(RefusedError, match="no sender"):
        kapsel.open(tmp_path / "in.kap", identities=[bob], expect_sender=alice.to_recipient())


def test_a_passphrase_file_is_refused_when_a_sender_is_expected(alice):
    cipher = kapsel.encrypt_bytes(b"secret", passphrase="correct horse")
    with pytest.raises(RefusedError, match="no sender"):
        kapsel.decrypt_bytes(cipher, passphrase="correct horse", expect_sender=alice.to_recipient())


def test_without_a_policy_every_file_that_decrypts_is_accepted(anonymous, from_mallory, bob, data):
    assert kapsel.decrypt_bytes(anonymous, bob) == data
    assert kapsel.decrypt_bytes(from_mallory, bob) == data


# The expected sender.


def test_the_expected_sender_is_accepted_everywhere(tmp_path, from_alice, alice, bob, data):
    (tmp_path / "in.kap").write_bytes(from_alice)
    got = kapsel.decrypt(tmp_path / "in.kap", tmp_path / "out", bob, expect_sender=alice.to_recipient())
    assert got.verified_sender == alice.to_recipient() and got.plaintext_len == len(data)
    assert (tmp_path / "out").read_bytes() == data
    assert kapsel.decrypt_bytes(from_alice, bob, expect_sender=str(alice.to_recipient())) == data
    for src in (tmp_path / "in.kap", io.BytesIO(from_alice)):
        with kapsel.open(src, identities=[bob], expect_sender=alice.to_recipient()) as f:
            f.seek(150_000)
            assert f.read(100) == data[150_000:150_100]
            assert f.verified_sender == alice.to_recipient()


def test_any_of_several_expected_senders_is_accepted(from_alice, from_mallory, anonymous, alice, bob, sam, mallory, data):
    both = [sam.to_recipient(), str(alice.to_recipient())]
    assert kapsel.decrypt_bytes(from_alice, bob, expect_sender=both) == data
    with pytest.raises(RefusedError):
        kapsel.decrypt_bytes(from_mallory, bob, expect_sender=both)
    with pytest.raises(RefusedError):
        kapsel.decrypt_bytes(anonymous, bob, expect_sender=both)
    anyone = (r for r in [mallory.to_recipient(), alice.to_recipient()])  # any iterable
    assert kapsel.decrypt_bytes(from_mallory, bob, expect_sender=anyone) == data


def test_naming_the_expected_sender_is_not_enough():
    """The header names the expected sender, the segment is signed by
    another key: the policy lets it through to verification, which fails
    before a byte is released."""
    ids, sender, body = vector("signed_by_other_key")
    out = WriteLog()
    with pytest.raises(SenderAuthenticationError):
        kapsel.decrypt(io.BytesIO(body), out, ids, expect_sender=sender)
    assert out.writes == []
    with pytest.raises(SenderAuthenticationError):
        with kapsel.open(io.BytesIO(body), identities=ids, expect_sender=sender) as f:
            f.read()


# Freshness.


def test_max_age_refuses_an_old_file(tmp_path):
    ids, sender, body = vector("encoder_signed")
    created = kapsel.inspect(body).created
    age = time.time() - created.timestamp()
    assert age > 86400, "the vector's creation time is in the past"
    (tmp_path / "old.kap").write_bytes(body)
    for max_age in (86400, 3600.5, datetime.timedelta(days=1)):
        with pytest.raises(RefusedError, match="too old") as e:
            kapsel.decrypt(tmp_path / "old.kap", tmp_path / "out", ids, expect_sender=sender, max_age=max_age)
        assert e.value.outcome == "refused"
        assert not (tmp_path / "out").exists()
        out = WriteLog()
        with pytest.raises(RefusedError, match="too old"):
            kapsel.decrypt(io.BytesIO(body), out, ids, max_age=max_age)
        assert out.writes == []
        with pytest.raises(RefusedError, match="too old"):
            kapsel.open(tmp_path / "old.kap", identities=ids, max_age=max_age)
    # Old enough to be accepted with a longer limit, or with none.
    long = datetime.timedelta(seconds=age + 86400)
    got = kapsel.decrypt(tmp_path / "old.kap", tmp_path / "out", ids, expect_sender=sender, max_age=long)
    assert str(got.verified_sender) == sender
    assert kapsel.decrypt_bytes(body, ids) == (tmp_path / "out").read_bytes()


def test_max_age_refuses_a_file_from_the_future():
    """The vector created_at_max was made in the year 9999: beyond any
    sensible clock skew. The skew applies with a maximum age (as the
    CLI's --max-skew does)."""
    ids, _, body = vector("created_at_max")
    created = kapsel.inspect(body).created_at
    assert created > time.time() + 86400
    with pytest.raises(RefusedError, match="in the future"):
        kapsel.decrypt_bytes(body, ids, max_age=86400)
    with pytest.raises(RefusedError, match="in the future"):
        kapsel.decrypt_bytes(body, ids, max_age=86400, max_skew=datetime.timedelta(days=365))
    with pytest.raises(RefusedError, match="in the future"):
        kapsel.open(io.BytesIO(body), identities=ids, max_age=86400)
    plain = kapsel.decrypt_bytes(body, ids)  # no maximum age: no freshness check
    skew = created - int(time.time()) + 3600
    assert kapsel.decrypt_bytes(body, ids, max_age=86400, max_skew=skew) == plain


def test_max_age_refuses_a_file_made_in_1970():
    ids, _, body = vector("created_at_zero")
    assert kapsel.inspect(body).created_at == 0
    with pytest.raises(RefusedError, match="too old"):
        kapsel.decrypt_bytes(body, ids, max_age=datetime.timedelta(days=365 * 50))


def test_a_live_message_is_refused_offline(cli, tmp_path, alice, bob, data):
    """A message that answers a live-exchange challenge, captured and
    replayed into a receiver that checks senders or freshness: refused
    (SPEC.md section 12.1 check 0), since only the receiver holding that
    challenge may accept it."""
    (tmp_path / "alice.key").write_text(alice.secret_string() + "\n")
    os.chmod(tmp_path / "alice.key", 0o600)
    (tmp_path / "plain").write_bytes(data)
    challenge = run(cli, "challenge", "-q").decode().strip()
    run(
        cli, "encrypt", "-q", "-r", str(bob.to_recipient()), "--sign-as", str(tmp_path / "alice.key"),
        "--challenge", challenge, "--serial-db", str(tmp_path / "serials.db"),
        "-o", str(tmp_path / "live.kap"), str(tmp_path / "plain"),
    )
    for options in ({"expect_sender": alice.to_recipient()}, {"max_age": 3600}):
        with pytest.raises(RefusedError, match="live-exchange challenge"):
            kapsel.decrypt(tmp_path / "live.kap", tmp_path / "out", bob, **options)
        assert not (tmp_path / "out").exists()
        with pytest.raises(RefusedError, match="live-exchange challenge"):
            kapsel.open(tmp_path / "live.kap", identities=[bob], **options)


def test_a_fresh_file_passes_max_age(from_alice, alice, bob, data):
    assert kapsel.decrypt_bytes(from_alice, bob, max_age=60, expect_sender=alice.to_recipient()) == data
    assert kapsel.decrypt_bytes(from_alice, bob, max_age=datetime.timedelta(minutes=1), max_skew=0) == data


@pytest.mark.parametrize(
    "options, error",
    [
        ({"max_age": -1}, ValueError),
        ({"max_age": float("nan")}, ValueError),
        ({"max_age": float("inf")}, ValueError),
        ({"max_age": True}, TypeError),
        ({"max_age": "1d"}, TypeError),
        ({"max_skew": -5}, ValueError),
        ({"max_skew": datetime.timedelta(seconds=-1)}, ValueError),
        ({"expect_sender": 42}, TypeError),
        ({"expect_sender": "kapsel1notakey"}, kapsel.InvalidKeyError),
    ],
)
def test_bad_options_fail_before_decrypting(from_alice, bob, options, error):
    with pytest.raises(error):
        kapsel.decrypt_bytes(from_alice, bob, **options)


def test_a_post_quantum_recipient_is_never_an_expected_sender(from_alice, bob):
    pq = kapsel.Identity.generate(post_quantum=True).to_recipient()
    with pytest.raises(ValueError, match="post-quantum"):
        kapsel.decrypt_bytes(from_alice, bob, expect_sender=pq)


def test_the_policy_is_for_reading_only(alice):
    with pytest.raises(TypeError, match="for reading"):
        kapsel.open(io.BytesIO(), "wb", recipients=[alice.to_recipient()], expect_sender=alice.to_recipient())


# Through fsspec.


def test_fsspec_storage_options_refuse_and_accept(tmp_path, from_alice, from_mallory, alice, bob, data):
    fsspec = require("fsspec")
    (tmp_path / "alice.kap").write_bytes(from_alice)
    (tmp_path / "mallory.kap").write_bytes(from_mallory)
    options = {"identities": [bob], "expect_sender": alice.to_recipient(), "max_age": 3600}
    with pytest.raises(RefusedError, match="not an expected sender"):
        with fsspec.open(f"kapsel::file://{tmp_path / 'mallory.kap'}", kapsel=options) as f:
            f.read()
    with fsspec.open(f"kapsel::file://{tmp_path / 'alice.kap'}", kapsel=options) as f:
        assert f.read() == data
        assert f.verified_sender == alice.to_recipient()
    # The policy travels with the pickled filesystem (to Dask's workers).
    fs, path = fsspec.core.url_to_fs(
        f"kapsel::file://{tmp_path / 'mallory.kap'}",
        kapsel={"identities": [bob.secret_string()], "expect_sender": [str(alice.to_recipient())]},
    )
    fs = pickle.loads(pickle.dumps(fs))
    with pytest.raises(RefusedError):
        fs.cat_file(path)
    with pytest.raises(RefusedError):
        fs.open(path).read(1)
    # The anonymous and old files, through the storage options too.
    ids, sender, body = vector("encoder_signed")
    (tmp_path / "old.kap").write_bytes(body)
    with pytest.raises(RefusedError, match="too old"):
        with fsspec.open(f"kapsel::file://{tmp_path / 'old.kap'}", kapsel={"identities": ids, "max_age": 86400}) as f:
            f.read()


def test_fsspec_rejects_bad_policy_options(tmp_path, bob):
    fsspec = require("fsspec")
    with pytest.raises(ValueError):
        fsspec.filesystem("kapsel", target_protocol="file", identities=[bob], max_age=-1, skip_instance_cache=True)
