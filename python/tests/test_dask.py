"""Dask over kapsel files on a LocalCluster of two worker processes: one
encrypted file split into blocks that the workers decrypt, identities sent
inline or as an identity file path, a wrong identity, a damaged block, and
encrypted partitions written by to_csv."""

from __future__ import annotations

import os
import pickle

import pytest

import kapsel
from conftest import require

dask = require("dask")
dd = require("dask.dataframe")
distributed = require("dask.distributed")
pd = require("pandas")

from dask.bytes import read_bytes  # noqa: E402

BLOCK = 256 * 1024


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, host="127.0.0.1"
    )
    c = distributed.Client(cluster)
    yield c
    c.close()
    cluster.close()


@pytest.fixture(scope="module")
def files(tmp_path_factory, alice):
    d = tmp_path_factory.mktemp("dask")
    df = pd.DataFrame({"id": range(120_000), "name": [f"name-{i}" for i in range(120_000)], "v": [i * 0.25 for i in range(120_000)]})
    df.to_csv(d / "plain.csv", index=False)
    kapsel.encrypt(d / "plain.csv", d / "data.csv.kap", alice.to_recipient())
    (d / "alice.key").write_text(alice.secret_string() + "\n")
    os.chmod(d / "alice.key", 0o600)
    assert os.path.getsize(d / "plain.csv") > 8 * BLOCK
    return d


def test_two_worker_processes(client):
    pids = client.run(os.getpid)
    assert len(pids) == 2 and len(set(pids.values())) == 2 and os.getpid() not in pids.values()


def test_read_bytes_blocks_decrypt_on_the_workers(client, files, alice):
    plain = (files / "plain.csv").read_bytes()
    _, blocks = read_bytes(
        f"kapsel::file://{files / 'data.csv.kap'}", blocksize=BLOCK, delimiter=None,
        kapsel={"identities": [alice]},
    )
    assert len(blocks[0]) >= 8
    parts = client.compute(blocks[0], sync=True)
    assert b"".join(parts) == plain


@pytest.mark.parametrize("how", ["inline", "identity_file"])
def test_read_csv_equals_the_plaintext(client, files, alice, how):
    opts = {"identities": [alice]} if how == "inline" else {"identity_file": str(files / "alice.key")}
    ddf = dd.read_csv(f"kapsel::file://{files / 'data.csv.kap'}", blocksize=BLOCK, storage_options={"kapsel": opts})
    assert ddf.npartitions >= 8
    expected = dd.read_csv(str(files / "plain.csv"), blocksize=BLOCK)
    assert ddf.npartitions == expected.npartitions
    pd.testing.assert_frame_equal(ddf.compute(), expected.compute())


def test_the_identity_file_option_sends_only_a_path(files, alice):
    import fsspec

    fs, _ = fsspec.core.url_to_fs(
        f"kapsel::file://{files / 'data.csv.kap'}", kapsel={"identity_file": str(files / "alice.key")}
    )
    assert alice.secret_string().encode() not in pickle.dumps(fs)
    fs2, _ = fsspec.core.url_to_fs(f"kapsel::file://{files / 'data.csv.kap'}", kapsel={"identities": [alice]})
    assert alice.secret_string() not in repr(fs2.storage_options) + str(fs2.storage_options)


def test_wrong_identity_fails_the_tasks(client, files, bob):
    url = f"kapsel::file://{files / 'data.csv.kap'}"
    # Splitting needs no key (the sizes come from the header) ...
    _, blocks = read_bytes(url, blocksize=BLOCK, delimiter=b"\n", sample=False, kapsel={"identities": [bob]})
    # ... decrypting a block on a worker does.
    with pytest.raises(kapsel.NoMatchingRecipientError):
        client.compute(blocks[0], sync=True)
    with pytest.raises(kapsel.NoMatchingRecipientError):
        dd.read_csv(url, blocksize=BLOCK, storage_options={"kapsel": {"identities": [bob]}}).compute()


def test_a_damaged_block_fails_only_its_tasks(client, files, alice, tmp_path):
    data = bytearray((files / "data.csv.kap").read_bytes())
    h = kapsel.inspect(bytes(data)).header_len
    C = kapsel.CHUNK_SIZE
    middle_chunk = (len(data) - h) // (C + 16) // 2
    data[h + 56 + middle_chunk * (C + 16) + 100] ^= 0x20
    (tmp_path / "damaged.csv.kap").write_bytes(bytes(data))
    damaged = dd.read_csv(
        f"kapsel::file://{tmp_path / 'damaged.csv.kap'}", blocksize=BLOCK,
        storage_options={"kapsel": {"identities": [alice]}},
    )
    reference = dd.read_csv(str(files / "plain.csv"), blocksize=BLOCK)
    assert damaged.npartitions == reference.npartitions
    futures = client.compute([damaged.get_partition(i) for i in range(damaged.npartitions)])
    expected = client.compute([reference.get_partition(i) for i in range(reference.npartitions)], sync=True)
    failed = []
    for i, fut in enumerate(futures):
        try:
            part = fut.result()
        except kapsel.PayloadAuthenticationError:
            failed.append(i)
            continue
        pd.testing.assert_frame_equal(part, expected[i])
    # The damaged chunk lies in one block (or on the edge of two).
    assert 1 <= len(failed) <= 2 and len(failed) < damaged.npartitions
    with pytest.raises(kapsel.PayloadAuthenticationError):
        damaged.compute()


def test_to_csv_writes_encrypted_partitions(client, files, alice, tmp_path):
    ddf = dd.read_csv(str(files / "plain.csv"), blocksize=BLOCK)
    out = tmp_path / "out"
    ddf.to_csv(
        f"kapsel::file://{out}/part-*.csv.kap", index=False,
        storage_options={"recipients": [alice.to_recipient()]},
    )
    names = sorted(os.listdir(out))
    assert len(names) == ddf.npartitions and all(n.endswith(".csv.kap") for n in names)
    assert kapsel.inspect(out / names[0]).stanzas == ("p256",)
    back = dd.read_csv(f"kapsel::file://{out}/part-*.csv.kap", storage_options={"identities": [alice]})
    pd.testing.assert_frame_equal(back.compute().reset_index(drop=True), ddf.compute().reset_index(drop=True))


def test_the_receiver_policy_applies_on_the_workers(client, files, alice, sam, tmp_path):
    """The files fixture is anonymous: a task that expects a sender is
    refused on its worker; one signed by the expected sender is read."""
    url = f"kapsel::file://{files / 'data.csv.kap'}"
    opts = {"identities": [alice], "expect_sender": str(sam.to_recipient()), "max_age": 3600}
    _, blocks = read_bytes(url, blocksize=BLOCK, delimiter=None, sample=False, kapsel=opts)
    with pytest.raises(kapsel.RefusedError, match="no sender"):
        client.compute(blocks[0], sync=True)
    plain = (files / "plain.csv").read_bytes()
    signed = tmp_path / "signed.csv.kap"
    kapsel.encrypt(files / "plain.csv", signed, alice.to_recipient(), sign_as=sam)
    _, blocks = read_bytes(f"kapsel::file://{signed}", blocksize=BLOCK, delimiter=None, sample=False, kapsel=opts)
    assert b"".join(client.compute(blocks[0], sync=True)) == plain
