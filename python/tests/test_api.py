"""The Python API: keys, whole streams, the writer, inspect, errors."""

from __future__ import annotations

import io
import os
import pickle

import pytest

import kapsel
from conftest import need, pattern, run


def test_identity_str_and_repr_never_show_the_secret(alice):
    secret = alice.secret_string()
    assert secret.startswith("KAPSEL-SECRET-KEY-1")
    for shown in (str(alice), repr(alice), repr([alice]), f"{alice}"):
        assert secret not in shown and secret[20:40] not in shown
        assert "kapsel1" in shown


def test_identity_pickles_and_round_trips_its_string(alice):
    assert pickle.loads(pickle.dumps(alice)) == alice
    assert kapsel.Identity.from_string(alice.secret_string()) == alice
    assert hash(pickle.loads(pickle.dumps(alice))) == hash(alice)


def test_recipient_from_string_and_pem(alice, cli, tmp_path):
    r = alice.to_recipient()
    assert kapsel.Recipient.from_string(str(r)) == r
    assert pickle.loads(pickle.dumps(r)) == r
    key = tmp_path / "alice.key"
    key.write_text(alice.secret_string() + "\n")
    pem = run(cli, "export", str(key)).decode()
    assert "PUBLIC KEY" in pem
    assert kapsel.Recipient.from_pem(pem) == r


def test_post_quantum_keys(tmp_path):
    pq = kapsel.Identity.generate(post_quantum=True)
    assert pq.kind == "post-quantum"
    r = pq.to_recipient()
    assert str(r).startswith("kapselpq1") and r.kind == "post-quantum"
    assert pq.secret_string() not in repr(pq)
    assert kapsel.Recipient.from_string(str(r)) == r
    data = kapsel.encrypt_bytes(b"quantum", r)
    assert kapsel.inspect(data).stanzas == ("mlkem768-p256",)
    assert kapsel.decrypt_bytes(data, pq) == b"quantum"


def test_identity_files_in_the_cli_formats(alice, cli, tmp_path):
    native = tmp_path / "native.key"
    native.write_text(f"# created by a test\n\n{alice.secret_string()}\n")
    os.chmod(native, 0o600)
    assert kapsel.Identity.from_file(native) == alice
    # The CLI's own files: P-256 and post-quantum.
    run(cli, "keygen", "-o", str(tmp_path / "cli.key"))
    run(cli, "keygen", "--pq", "-o", str(tmp_path / "pq.key"))
    for name in ("cli.key", "pq.key"):
        ident = kapsel.Identity.from_file(tmp_path / name)
        printed = run(cli, "pubkey", str(tmp_path / name)).decode().split()[0]
        assert str(ident.to_recipient()) == printed
    # PKCS#8 PEM, as `kapsel export --private` writes it.
    pem = run(cli, "export", "--private", str(native)).decode()
    assert "-----BEGIN PRIVATE KEY-----" in pem
    (tmp_path / "a.pem").write_text(pem)
    os.chmod(tmp_path / "a.pem", 0o600)
    assert kapsel.Identity.from_file(tmp_path / "a.pem") == alice
    assert kapsel.identities_from_file(tmp_path / "a.pem") == [alice]
    # Several identities in one file.
    both = tmp_path / "both.key"
    both.write_text(native.read_text() + (tmp_path / "pq.key").read_text())
    os.chmod(both, 0o600)
    assert len(kapsel.identities_from_file(both)) == 2
    with pytest.raises(kapsel.InvalidKeyError, match="not one"):
        kapsel.Identity.from_file(both)


def test_openssl_and_ssh_keys(tmp_path):
    import shutil

    need(shutil.which("openssl") is not None, "openssl")
    need(shutil.which("ssh-keygen") is not None, "ssh-keygen")
    run("openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", str(tmp_path / "ec.pem"))
    ec = kapsel.Identity.from_file(tmp_path / "ec.pem")
    run("openssl", "ec", "-in", str(tmp_path / "ec.pem"), "-pubout", "-out", str(tmp_path / "ec.pub.pem"))
    assert kapsel.recipients_from_file(tmp_path / "ec.pub.pem") == [ec.to_recipient()]
    run("ssh-keygen", "-q", "-t", "ecdsa", "-b", "256", "-N", "", "-f", str(tmp_path / "id"))
    ssh_id = kapsel.Identity.from_file(tmp_path / "id")
    line = (tmp_path / "id.pub").read_text().strip()
    assert kapsel.Recipient.from_string(line) == ssh_id.to_recipient()
    assert kapsel.recipients_from_file(tmp_path / "id.pub") == [ssh_id.to_recipient()]


def test_key_errors_do_not_show_the_line(tmp_path):
    bad = tmp_path / "bad.key"
    bad.write_text("KAPSEL-SECRET-KEY-1QQQQSECRETLOOKINGTEXT\n")
    os.chmod(bad, 0o600)
    with pytest.raises(kapsel.InvalidKeyError) as e:
        kapsel.identities_from_file(bad)
    assert "SECRETLOOKING" not in str(e.value) and "line 1" in str(e.value)
    with pytest.raises(kapsel.InvalidKeyError):
        kapsel.Recipient.from_string("kapsel1notakey")
    with pytest.raises(kapsel.InvalidKeyError, match="identity"):
        kapsel.Recipient.from_string(kapsel.Identity.generate().secret_string())


@pytest.mark.parametrize("n", [0, 1, 16383, 16384, 16385, 100_000])
def test_round_trip_through_file_objects(alice, n):
    data = pattern(n)
    src, out = io.BytesIO(data), io.BytesIO()
    kapsel.encrypt(src, out, [alice.to_recipient()])
    back = io.BytesIO()
    result = kapsel.decrypt(io.BytesIO(out.getvalue()), back, [alice])
    assert back.getvalue() == data
    assert result.plaintext_len == n and result.verified_sender is None


def test_round_trip_through_paths_signed_and_armored(alice, sam, tmp_path):
    data = pattern(3 * 1024 * 1024 + 7)
    (tmp_path / "plain").write_bytes(data)
    kapsel.encrypt(tmp_path / "plain", tmp_path / "c.kap", alice.to_recipient(), sign_as=sam)
    h = kapsel.inspect(tmp_path / "c.kap")
    assert h.signed and h.claimed_sender_unverified == str(sam.to_recipient())
    assert h.plaintext_len == len(data) and not h.authenticated
    result = kapsel.decrypt(tmp_path / "c.kap", tmp_path / "back", alice)
    assert (tmp_path / "back").read_bytes() == data
    assert result.verified_sender == sam.to_recipient()
    kapsel.encrypt(tmp_path / "plain", tmp_path / "a.kap", [str(alice.to_recipient())], armor=True)
    assert (tmp_path / "a.kap").read_bytes().startswith(b"-----BEGIN")
    out = io.BytesIO()
    kapsel.decrypt(tmp_path / "a.kap", out, [alice])
    assert out.getvalue() == data
    assert not [p for p in os.listdir(tmp_path) if "kapsel-partial" in p]


def test_passphrase_round_trip():
    data = kapsel.encrypt_bytes(b"secret", passphrase="correct horse")
    assert kapsel.inspect(data).stanzas == ("passphrase",)
    assert kapsel.decrypt_bytes(data, passphrase="correct horse") == b"secret"
    with pytest.raises(kapsel.NoMatchingRecipientError):
        kapsel.decrypt_bytes(data, passphrase="wrong")


def test_failed_decrypt_to_a_path_leaves_no_file(alice, bob, tmp_path):
    (tmp_path / "c.kap").write_bytes(kapsel.encrypt_bytes(pattern(50_000), alice.to_recipient()))
    with pytest.raises(kapsel.NoMatchingRecipientError):
        kapsel.decrypt(tmp_path / "c.kap", tmp_path / "out", bob)
    damaged = bytearray((tmp_path / "c.kap").read_bytes())
    damaged[-100] ^= 1
    (tmp_path / "d.kap").write_bytes(bytes(damaged))
    with pytest.raises(kapsel.PayloadAuthenticationError):
        kapsel.decrypt(tmp_path / "d.kap", tmp_path / "out", alice)
    assert sorted(os.listdir(tmp_path)) == ["c.kap", "d.kap"]


def test_writer_finishes_on_close_and_not_on_exception(alice, tmp_path):
    target = tmp_path / "w.kap"
    with kapsel.open(target, "wb", recipients=[alice.to_recipient()]) as f:
        f.write(b"a" * 20_000)
        assert not target.exists()
    assert kapsel.decrypt_bytes(target.read_bytes(), alice) == b"a" * 20_000

    other = tmp_path / "x.kap"
    with pytest.raises(RuntimeError):
        with kapsel.open(other, "wb", recipients=[alice.to_recipient()]) as f:
            f.write(b"b" * 40_000)
            raise RuntimeError("in the middle")
    assert not other.exists()
    assert sorted(os.listdir(tmp_path)) == ["w.kap"]

    # To a file object: what was written does not decrypt.
    out = io.BytesIO()
    with pytest.raises(RuntimeError):
        with kapsel.open(out, "wb", recipients=[alice.to_recipient()]) as f:
            f.write(b"c" * 40_000)
            raise RuntimeError("in the middle")
    with pytest.raises(kapsel.PayloadAuthenticationError):
        kapsel.decrypt_bytes(out.getvalue(), alice)


def test_a_writer_dropped_unclosed_leaves_no_file(alice, tmp_path):
    f = kapsel.open(tmp_path / "d.kap", "wb", recipients=[alice.to_recipient()])
    f.write(b"x" * 1000)
    del f
    import gc

    gc.collect()
    assert os.listdir(tmp_path) == []


def test_text_mode_through_a_wrapper(alice):
    out = io.BytesIO()
    w = kapsel.open(out, "wb", recipients=[alice.to_recipient()])
    with io.TextIOWrapper(w, encoding="utf-8") as t:
        t.write("héllo\n" * 1000)
    assert kapsel.decrypt_bytes(out.getvalue(), alice) == ("héllo\n" * 1000).encode()


def test_inspect_without_a_key(alice):
    data = kapsel.encrypt_bytes(pattern(40_000), alice.to_recipient())
    h = kapsel.inspect(data)
    assert (h.version, h.stanzas, h.signed, h.claimed_sender_unverified) == (1, ("p256",), False, None)
    assert (h.file_len, h.plaintext_len, h.chunk_count, h.payload_error) == (len(data), 40_000, 3, None)
    assert h.created.year >= 2026
    assert kapsel.inspect(io.BytesIO(data)) == h
    cut = kapsel.inspect(data[: h.header_len + 56 + 16400 + 5])
    assert cut.plaintext_len is None and cut.payload_error
    with pytest.raises(kapsel.NotKapselError) as e:
        kapsel.inspect(b"PK\x03\x04 a zip file")
    assert isinstance(e.value, ValueError) and e.value.outcome == "not_kapsel"


def test_exception_hierarchy_and_messages(alice, bob):
    data = kapsel.encrypt_bytes(pattern(40_000), alice.to_recipient())
    with pytest.raises(kapsel.NoMatchingRecipientError, match="no identity"):
        kapsel.decrypt_bytes(data, bob)
    with pytest.raises(kapsel.AuthenticationError) as e:
        kapsel.decrypt_bytes(data[:-1], alice)
    assert isinstance(e.value, kapsel.PayloadAuthenticationError)
    assert isinstance(e.value, ValueError)
    assert pickle.loads(pickle.dumps(e.value)).args == e.value.args
    with pytest.raises(kapsel.EncryptionError):
        kapsel.encrypt_bytes(b"x", [])
    with pytest.raises(kapsel.EncryptionError, match="mixed"):
        kapsel.encrypt_bytes(b"x", [alice.to_recipient(), kapsel.Identity.generate(True).to_recipient()])


def test_armored_files_are_refused_for_random_access(alice, tmp_path):
    data = kapsel.encrypt_bytes(b"x" * 100, alice.to_recipient(), armor=True)
    (tmp_path / "a.kap").write_bytes(data)
    for src in (io.BytesIO(data), tmp_path / "a.kap"):
        with pytest.raises(kapsel.NotKapselError, match="kapsel.decrypt"):
            kapsel.open(src, identities=[alice])
    assert kapsel.decrypt_bytes(data, alice) == b"x" * 100


def test_an_identity_file_readable_by_others_warns(alice, tmp_path):
    key = tmp_path / "open.key"
    key.write_text(alice.secret_string() + "\n")
    os.chmod(key, 0o644)
    with pytest.warns(UserWarning, match="readable by other users"):
        kapsel.identities_from_file(key)
    with pytest.warns(UserWarning, match="readable by other users"):
        assert kapsel.Identity.from_file(key) == alice
    os.chmod(key, 0o600)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert kapsel.identities_from_file(key) == [alice]
        assert kapsel.Identity.from_file(key) == alice
