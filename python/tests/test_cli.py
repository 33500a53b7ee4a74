"""Round trips between the Python package and the kapsel CLI, both ways."""

from __future__ import annotations

import pytest

import kapsel
from conftest import pattern, run


@pytest.fixture()
def keys(cli, tmp_path):
    run(cli, "keygen", "-o", str(tmp_path / "me.key"))
    run(cli, "keygen", "--pq", "-o", str(tmp_path / "pq.key"))
    return tmp_path / "me.key", tmp_path / "pq.key"


@pytest.mark.parametrize("n", [0, 16384, 100_001])
@pytest.mark.parametrize("armor", [False, True])
def test_python_encrypts_cli_decrypts(cli, keys, tmp_path, n, armor):
    me = kapsel.Identity.from_file(keys[0])
    data = pattern(n)
    (tmp_path / "plain").write_bytes(data)
    kapsel.encrypt(tmp_path / "plain", tmp_path / "c.kap", me.to_recipient(), armor=armor)
    assert run(cli, "decrypt", "-q", "-i", str(keys[0]), str(tmp_path / "c.kap")) == data


@pytest.mark.parametrize("n", [0, 16385, 2 * 1024 * 1024 + 3])
def test_cli_encrypts_python_decrypts(cli, keys, tmp_path, n):
    me = kapsel.Identity.from_file(keys[0])
    data = pattern(n)
    (tmp_path / "plain").write_bytes(data)
    run(cli, "encrypt", "-q", "-r", str(me.to_recipient()), "-o", str(tmp_path / "c.kap"), str(tmp_path / "plain"))
    assert kapsel.decrypt_bytes((tmp_path / "c.kap").read_bytes(), me) == data
    with kapsel.open(tmp_path / "c.kap", identities=[me]) as f:
        f.seek(n // 2)
        assert f.read(100) == data[n // 2 : n // 2 + 100]


def test_signed_both_ways(cli, keys, tmp_path):
    me = kapsel.Identity.from_file(keys[0])
    data = pattern(1_500_000)
    (tmp_path / "plain").write_bytes(data)
    # The CLI signs, Python verifies.
    run(
        cli, "encrypt", "-q", "-r", str(me.to_recipient()), "--sign-as", str(keys[0]),
        "--serial-db", str(tmp_path / "serials.db"), "-o", str(tmp_path / "s.kap"), str(tmp_path / "plain"),
    )
    result = kapsel.decrypt(tmp_path / "s.kap", tmp_path / "back", me)
    assert result.verified_sender == me.to_recipient()
    assert (tmp_path / "back").read_bytes() == data
    # Python signs, the CLI verifies the sender it expects.
    kapsel.encrypt(tmp_path / "plain", tmp_path / "p.kap", me.to_recipient(), sign_as=me)
    out = run(
        cli, "decrypt", "-q", "-i", str(keys[0]), "--expect-sender", str(me.to_recipient()), str(tmp_path / "p.kap")
    )
    assert out == data


def test_post_quantum_both_ways(cli, keys, tmp_path):
    pq = kapsel.Identity.from_file(keys[1])
    (tmp_path / "plain").write_bytes(b"post-quantum")
    kapsel.encrypt(tmp_path / "plain", tmp_path / "c.kap", pq.to_recipient())
    assert run(cli, "decrypt", "-q", "-i", str(keys[1]), str(tmp_path / "c.kap")) == b"post-quantum"
    run(cli, "encrypt", "-q", "-r", str(pq.to_recipient()), "-o", str(tmp_path / "d.kap"), str(tmp_path / "plain"))
    assert kapsel.decrypt_bytes((tmp_path / "d.kap").read_bytes(), pq) == b"post-quantum"


def test_recipients_file_of_the_cli(cli, keys, tmp_path):
    me = kapsel.Identity.from_file(keys[0])
    printed = run(cli, "pubkey", str(keys[0])).decode()
    (tmp_path / "team.txt").write_text("# the team\n" + printed)
    assert kapsel.recipients_from_file(tmp_path / "team.txt") == [me.to_recipient()]
