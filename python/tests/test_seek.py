"""Seeks and ranged reads at chunk edges, through a path and through a file
object; a damaged chunk fails only the reads that touch it; signed files."""

from __future__ import annotations

import io

import pytest

import kapsel
from conftest import pattern

C = kapsel.CHUNK_SIZE
SIZE = 5 * C + 123  # the last chunk is short


@pytest.fixture(scope="module")
def plain():
    return pattern(SIZE)


@pytest.fixture(scope="module")
def cipher(alice, plain):
    return kapsel.encrypt_bytes(plain, alice.to_recipient())


@pytest.fixture(params=["path", "fileobj"])
def opened(request, alice, cipher, tmp_path):
    def open_(data=None):
        data = cipher if data is None else data
        if request.param == "path":
            p = tmp_path / "f.kap"
            p.write_bytes(data)
            return kapsel.open(p, identities=[alice])
        return kapsel.open(io.BytesIO(data), identities=[alice])

    return open_


@pytest.mark.parametrize(
    "offset", [0, 1, C - 1, C, C + 1, 2 * C - 1, 5 * C - 1, 5 * C, SIZE - 1, SIZE, SIZE + 1, 10 * SIZE]
)
@pytest.mark.parametrize("length", [1, 2, C, C + 1, 3 * C])
def test_ranged_reads_at_chunk_edges(opened, plain, offset, length):
    with opened() as f:
        assert f.seek(offset) == offset
        assert f.read(length) == plain[offset : offset + length]
        assert f.read_range(offset, length) == plain[offset : offset + length]


def test_only_the_chunks_touched_are_decrypted(opened, plain):
    with opened() as f:
        assert f.read_range(C + 5, 10) == plain[C + 5 : C + 15]
        assert f.chunks_decrypted == 1
        assert not f.length_verified
        assert f.size == SIZE  # claimed, not yet authenticated
        assert f.seek(0, io.SEEK_END) == SIZE
        assert f.length_verified


def test_reads_past_the_end_authenticate_the_length(opened, plain):
    with opened() as f:
        f.seek(SIZE + 10)
        assert f.read(5) == b""
        assert f.length_verified
        assert f.read_range(SIZE - 3, 100) == plain[-3:]


def test_empty_file(alice):
    data = kapsel.encrypt_bytes(b"", alice.to_recipient())
    with kapsel.open(io.BytesIO(data), identities=[alice]) as f:
        assert f.size == 0
        assert f.read() == b""
        assert f.seek(0, io.SEEK_END) == 0
        assert f.read_range(0, 10) == b""
        assert f.length_verified


def test_a_damaged_chunk_fails_only_reads_that_touch_it(opened, cipher, plain):
    h = kapsel.inspect(cipher).header_len
    damaged = bytearray(cipher)
    damaged[h + 56 + 2 * (C + 16) + 100] ^= 0x40  # in chunk 2
    with opened(bytes(damaged)) as f:
        assert f.read_range(0, 2 * C) == plain[: 2 * C]
        assert f.read_range(3 * C, 100) == plain[3 * C : 3 * C + 100]
        with pytest.raises(kapsel.PayloadAuthenticationError):
            f.read_range(2 * C + 5, 1)
        with pytest.raises(kapsel.PayloadAuthenticationError):
            f.read_range(C, 2 * C)


def test_truncated_file_reports_no_end(opened, cipher, plain):
    cut = cipher[: -(C + 16)]  # the whole final chunk gone: still a valid length
    with opened(cut) as f:
        assert f.read_range(0, 100) == plain[:100]
        with pytest.raises(kapsel.PayloadAuthenticationError):
            f.seek(0, io.SEEK_END)
        with pytest.raises(kapsel.PayloadAuthenticationError):
            f.read()


def test_identities_in_place_of_the_mode(cipher, alice, plain):
    with kapsel.open(io.BytesIO(cipher), [alice]) as f:
        assert f.read(10) == plain[:10]


def test_wrong_identity_is_refused_at_open(cipher, bob):
    with pytest.raises(kapsel.NoMatchingRecipientError):
        kapsel.open(io.BytesIO(cipher), identities=[bob])


SEGMENT = 64 * C


@pytest.fixture(scope="module")
def signed(alice, sam):
    plain = pattern(2 * SEGMENT + 1000)
    return plain, kapsel.encrypt_bytes(plain, alice.to_recipient(), sign_as=sam)


def test_signed_reads_report_the_verified_sender(alice, sam, signed):
    plain, data = signed
    with kapsel.open(io.BytesIO(data), identities=[alice]) as f:
        assert f.is_signed and f.claimed_sender == str(sam.to_recipient())
        assert f.verified_sender is None
        assert f.read_range(SEGMENT + 10, 10) == plain[SEGMENT + 10 : SEGMENT + 20]
        assert f.verified_sender == sam.to_recipient()
        assert f.segments_verified == 1


def test_forged_late_segment_fails_only_its_range(alice, signed):
    plain, data = signed
    h = kapsel.inspect(data).header_len
    segment_len = 64 * (C + 16) + 64
    forged = bytearray(data)
    forged[h + 56 + segment_len + 5000] ^= 1  # in segment 1
    with kapsel.open(io.BytesIO(bytes(forged)), identities=[alice]) as f:
        assert f.read_range(0, 1000) == plain[:1000]
        with pytest.raises(kapsel.SenderAuthenticationError) as e:
            f.read_range(SEGMENT + 1, 10)
        assert isinstance(e.value, kapsel.AuthenticationError)
        assert f.read_range(2 * SEGMENT, 1000) == plain[2 * SEGMENT :]


@pytest.mark.parametrize("signed", [False, True])
def test_large_reads_split_across_threads(alice, sam, signed):
    plain = pattern(5 * SEGMENT + 12345)
    data = kapsel.encrypt_bytes(plain, alice.to_recipient(), sign_as=sam if signed else None)
    for source in (io.BytesIO(data), None):
        with kapsel.open(source or io.BytesIO(data), identities=[alice]) as f:
            for offset, n in [(0, len(plain)), (1, 10 * len(plain)), (C - 1, 3 * SEGMENT), (SEGMENT + 7, 2 * SEGMENT + 1)]:
                assert f.read_range(offset, n) == plain[offset : offset + n], (offset, n)
            assert f.length_verified


def test_large_read_over_a_damaged_chunk_fails(alice):
    plain = pattern(3 * SEGMENT)
    data = bytearray(kapsel.encrypt_bytes(plain, alice.to_recipient()))
    h = kapsel.inspect(bytes(data)).header_len
    data[h + 56 + 150 * (C + 16) + 9] ^= 1
    with kapsel.open(io.BytesIO(bytes(data)), identities=[alice]) as f:
        assert f.read_range(0, 150 * C) == plain[: 150 * C]
        with pytest.raises(kapsel.PayloadAuthenticationError):
            f.read_range(0, len(plain))
        with pytest.raises(kapsel.PayloadAuthenticationError):
            f.read_range(100 * C, 2 * SEGMENT)
    cut = bytes(data[: -(C + 16)])
    with kapsel.open(io.BytesIO(cut), identities=[alice]) as f:
        with pytest.raises(kapsel.PayloadAuthenticationError):
            f.read_range(C, 10 * SEGMENT)
