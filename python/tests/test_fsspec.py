"""The kapsel fsspec protocol over the local and the in-memory filesystem:
chaining, storage options, one ciphertext request per ranged read, sizes,
writing, pandas and PyArrow."""

from __future__ import annotations

import io
import uuid

import fsspec
import pytest
from fsspec.implementations.local import LocalFileSystem
from fsspec.implementations.memory import MemoryFileSystem

import kapsel
from conftest import pattern, require
from kapsel.fsspec import KapselFileSystem

C = kapsel.CHUNK_SIZE


class Counting:
    """Counts the `cat_file` calls (and their ranges) of a filesystem class."""

    calls: list = []

    def cat_file(self, path, start=None, end=None, **kwargs):
        Counting.calls.append((path, start, end))
        return super().cat_file(path, start=start, end=end, **kwargs)


class CountingMemory(Counting, MemoryFileSystem):
    protocol = "countmem"

    @classmethod
    def _strip_protocol(cls, path):
        if path.startswith("countmem://"):
            path = path[len("countmem://") :]
        return super()._strip_protocol(path)


class CountingLocal(Counting, LocalFileSystem):
    protocol = "countfile"


fsspec.register_implementation("countmem", CountingMemory, clobber=True)
fsspec.register_implementation("countfile", CountingLocal, clobber=True)


@pytest.fixture(params=["memory", "file"])
def stored(request, alice, tmp_path):
    """A function storing ciphertext; returns its chained URL (over the
    counting filesystem when `counting`)."""

    def store(data: bytes, name: str = "f.kap", counting: bool = False) -> str:
        if request.param == "memory":
            path = f"/{uuid.uuid4().hex}/{name}"
            MemoryFileSystem().pipe_file(path, data)
            return f"kapsel::{'countmem' if counting else 'memory'}://{path}"
        p = tmp_path / name
        p.write_bytes(data)
        return f"kapsel::{'countfile' if counting else 'file'}://{p}"

    return store


SIZE = 40 * C + 77


@pytest.fixture(scope="module")
def plain():
    return pattern(SIZE)


@pytest.fixture(scope="module")
def cipher(alice, plain):
    return kapsel.encrypt_bytes(plain, alice.to_recipient())


def test_the_entry_point_registers_the_protocol():
    assert fsspec.get_filesystem_class("kapsel") is KapselFileSystem


def test_chained_open_with_either_form_of_options(stored, cipher, plain, alice):
    url = stored(cipher)
    with fsspec.open(url, kapsel={"identities": [alice]}) as f:
        f.seek(C - 3)
        assert f.read(10) == plain[C - 3 : C + 7]
    with fsspec.open(url, identities=[alice]) as f:  # options of the first protocol
        assert f.read() == plain
    fs, path = fsspec.core.url_to_fs(url, kapsel={"identities": [alice.secret_string()]})
    assert isinstance(fs, KapselFileSystem)
    assert fs.cat_file(path, 5, 25) == plain[5:25]


def test_info_reports_the_unauthenticated_plaintext_size(stored, cipher, alice):
    fs, path = fsspec.core.url_to_fs(stored(cipher), kapsel={"identities": [alice]})
    info = fs.info(path)
    assert info["size"] == SIZE and fs.size(path) == SIZE
    assert info["size_authenticated"] is False
    assert info["ciphertext_size"] == len(cipher)
    listed = [e for e in fs.ls(fs._parent(path), detail=True) if e["name"].endswith("f.kap")]
    assert listed[0]["size"] == SIZE


@pytest.mark.parametrize(
    "offset,length",
    [(0, 1), (C - 1, 2), (C, C), (C + 1, 5 * C), (SIZE - 10, 10), (SIZE - 10, 1000), (3 * C, 20 * C)],
)
def test_one_cat_file_per_ranged_read(stored, cipher, plain, alice, offset, length):
    url = stored(cipher, counting=True)
    fs, path = fsspec.core.url_to_fs(url, kapsel={"identities": [alice]})
    with fs.open(path, "rb", cache_type="none") as f:
        Counting.calls.clear()
        f.seek(offset)
        assert f.read(length) == plain[offset : offset + length]
        assert len(Counting.calls) == 1, Counting.calls
        (_, start, end) = Counting.calls[0]
        assert (start, end) == f._reader.source_range(offset, min(length, SIZE - offset))
        # The range is the chunks touched (and the final one past the end).
        touched = (min(offset + length, SIZE) - 1) // C - offset // C + 1
        assert end - start <= touched * (C + 16) + C + 16
        # Again, in a chunk that read did not touch: one more request.
        other = 39 * C if offset < C else 0
        Counting.calls.clear()
        f.seek(other)
        assert f.read(3) == plain[other : other + 3]
        assert len(Counting.calls) == 1


def test_buffered_reads_make_at_most_one_request_each(stored, cipher, plain, alice):
    fs, path = fsspec.core.url_to_fs(stored(cipher, counting=True), kapsel={"identities": [alice]})
    with fs.open(path, "rb", block_size=4 * C) as f:
        Counting.calls.clear()
        for offset in (0, 7 * C, 7 * C + 100, 30 * C + 5, SIZE - 1):
            before = len(Counting.calls)
            f.seek(offset)
            assert f.read(200) == plain[offset : offset + 200]
            assert len(Counting.calls) - before <= 1


def test_wrong_identity(stored, cipher, bob):
    with pytest.raises(kapsel.NoMatchingRecipientError):
        with fsspec.open(stored(cipher), kapsel={"identities": [bob]}) as f:
            f.read(1)


def test_damaged_chunk_fails_reads_that_touch_it(stored, cipher, plain, alice):
    h = kapsel.inspect(cipher).header_len
    damaged = bytearray(cipher)
    damaged[h + 56 + 10 * (C + 16) + 3] ^= 1
    fs, path = fsspec.core.url_to_fs(stored(bytes(damaged)), kapsel={"identities": [alice]})
    with fs.open(path, "rb", cache_type="none") as f:
        assert f.read(10 * C) == plain[: 10 * C]
        with pytest.raises(kapsel.PayloadAuthenticationError):
            f.read(10)


def test_forged_late_segment_through_fsspec(stored, alice, sam):
    seg = 64 * C
    data = pattern(2 * seg + 99)
    signed = bytearray(kapsel.encrypt_bytes(data, alice.to_recipient(), sign_as=sam))
    h = kapsel.inspect(bytes(signed)).header_len
    signed[h + 56 + (64 * (C + 16) + 64) + 64 * (C + 16) + 5] ^= 1  # segment 1's signature
    url = stored(bytes(signed), counting=True)
    fs, path = fsspec.core.url_to_fs(url, kapsel={"identities": [alice]})
    with fs.open(path, "rb", cache_type="none") as f:
        assert f.read(1000) == data[:1000]
        assert f.verified_sender == sam.to_recipient()
        f.seek(seg + 10)
        with pytest.raises(kapsel.SenderAuthenticationError):
            f.read(10)
        f.seek(2 * seg)
        assert f.read() == data[2 * seg :]


def test_writing_encrypts_to_the_recipients_option(stored, alice, sam):
    url = stored(b"placeholder", name="w.kap")
    with fsspec.open(url, "wb", kapsel={"recipients": [alice.to_recipient()], "sign_as": sam}) as f:
        f.write(b"written through fsspec" * 1000)
    with fsspec.open(url, "rb", kapsel={"identities": [alice]}) as f:
        assert f.read() == b"written through fsspec" * 1000
        assert f.verified_sender == sam.to_recipient()
    with fsspec.open(url, "wt", kapsel={"recipients": [str(alice.to_recipient())]}) as t:
        t.write("text mode\n")
    with fsspec.open(url, "rt", kapsel={"identities": [alice]}) as t:
        assert t.read() == "text mode\n"


def test_an_exception_while_writing_leaves_no_file(stored, alice):
    url = stored(b"x", name="gone.kap")
    fs, path = fsspec.core.url_to_fs(url, kapsel={"recipients": [alice.to_recipient()]})
    fs.rm_file(path)
    with pytest.raises(RuntimeError):
        with fs.open(path, "wb") as f:
            f.write(b"y" * 50_000)
            raise RuntimeError("in the middle")
    assert not fs.exists(path)


def test_pandas_reads_and_writes_encrypted_csv(stored, alice):
    pd = require("pandas")
    df = pd.DataFrame({"a": range(5000), "b": [f"row {i}" for i in range(5000)]})
    url = stored(kapsel.encrypt_bytes(df.to_csv(index=False).encode(), alice.to_recipient()), name="t.csv.kap")
    back = pd.read_csv(url, storage_options={"kapsel": {"identities": [alice]}})
    pd.testing.assert_frame_equal(back, df)
    out = url.replace("t.csv.kap", "u.csv.kap")
    df.to_csv(out, index=False, storage_options={"kapsel": {"recipients": [alice.to_recipient()]}})
    pd.testing.assert_frame_equal(pd.read_csv(out, storage_options={"identities": [alice]}), df)


def test_pyarrow_reads_encrypted_csv(stored, alice):
    require("pyarrow")
    import pyarrow.csv as pacsv
    import pyarrow.dataset as ds
    from pyarrow.fs import FSSpecHandler, PyFileSystem

    text = "a,b\n" + "".join(f"{i},x{i}\n" for i in range(20_000))
    url = stored(kapsel.encrypt_bytes(text.encode(), alice.to_recipient()), name="t.csv")
    fs, path = fsspec.core.url_to_fs(url, kapsel={"identities": [alice]})
    with fs.open(path, "rb") as f:
        table = pacsv.read_csv(f)
    assert table.num_rows == 20_000 and table.column("a").to_pylist()[-1] == 19_999
    dataset = ds.dataset(path, filesystem=PyFileSystem(FSSpecHandler(fs)), format="csv")
    assert dataset.to_table().num_rows == 20_000


def test_pandas_and_pyarrow_read_encrypted_parquet(stored, alice):
    pd = require("pandas")
    pa = require("pyarrow")
    import pyarrow.dataset as ds
    import pyarrow.parquet as pq
    from pyarrow.fs import FSSpecHandler, PyFileSystem

    df = pd.DataFrame({"x": range(100_000), "y": [i * 0.5 for i in range(100_000)]})
    buf = io.BytesIO()
    df.to_parquet(buf, row_group_size=10_000)
    url = stored(kapsel.encrypt_bytes(buf.getvalue(), alice.to_recipient()), name="t.parquet")
    opts = {"kapsel": {"identities": [alice]}}
    pd.testing.assert_frame_equal(pd.read_parquet(url, storage_options=opts), df)
    fs, path = fsspec.core.url_to_fs(url, **opts)
    table = pq.read_table(path, filesystem=fs, columns=["y"])
    assert table.column("y").to_pylist() == df["y"].tolist()
    dataset = ds.dataset(fs._parent(path), filesystem=PyFileSystem(FSSpecHandler(fs)), format="parquet")
    assert dataset.to_table().num_rows == 100_000
    assert isinstance(dataset.to_table(filter=ds.field("x") < 10), pa.Table)


def test_a_storage_server_that_changes_bytes_between_reads_is_caught(alice, plain, cipher):
    """The server serves the true file for the first read, then a chunk of
    another file (same recipient, same length) at the place of chunk 20,
    then chunk 30 copied to the place of chunk 35: every later read of a
    changed chunk fails with the payload's authentication error, and an
    untouched range still reads right. (Bytes verified earlier may be served
    from the reader's cache: they are genuine.)"""
    path = f"/{uuid.uuid4().hex}/f.kap"
    store = MemoryFileSystem()
    store.pipe_file(path, cipher)
    other = kapsel.encrypt_bytes(pattern(SIZE)[::-1], alice.to_recipient())
    assert len(other) == len(cipher)
    enc = C + 16
    # The body: 40 full chunks and a final one of 77 bytes, each with its tag.
    body_start = len(cipher) - (40 * enc + 77 + 16)

    def chunk_at(k):
        return slice(body_start + k * enc, body_start + (k + 1) * enc)

    with fsspec.open(f"kapsel::memory://{path}", "rb", kapsel={"identities": [alice]}) as f:
        assert f.read(C) == plain[:C]
        swapped = bytearray(cipher)
        swapped[chunk_at(20)] = other[chunk_at(20)]
        store.pipe_file(path, bytes(swapped))
        f.seek(20 * C + 10)
        with pytest.raises(kapsel.PayloadAuthenticationError):
            f.read(100)
        moved = bytearray(cipher)
        moved[chunk_at(35)] = cipher[chunk_at(30)]
        store.pipe_file(path, bytes(moved))
        f.seek(35 * C)
        with pytest.raises(kapsel.PayloadAuthenticationError):
            f.read(10)
        f.seek(38 * C)
        assert f.read(C) == plain[38 * C : 39 * C]
