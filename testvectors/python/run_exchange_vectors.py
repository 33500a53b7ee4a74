#!/usr/bin/env python3
"""Runs the live-exchange conformance vectors against a Python receiver.

    python3 testvectors/python/run_exchange_vectors.py [testvectors/exchange] [-v]

The receiver side of SPEC section 13, written from SPEC.md alone: it unframes
the frames of phase 2 as it reads them (13.2), decodes the message M with
the decoder of kapsel_decode.py while it arrives (an anonymous M's chunks
released as they open, a signed M's segments once their signature
verified), checks the challenge after the header authenticated and before
any chunk is read (13.4, 12.1 check 0), and on success computes the receipt
of phase 3 (13.5).

A vector file (format: testvectors/README.md) holds, after its text header,
the bytes the receiver reads after it sent its hello. For each vector the
runner checks the outcome, the length and SHA-256 of the plaintext released
before the receiver stopped, and, for `accepted`, the receipt. Each vector
runs twice: once with a transport that returns every byte asked for, once
with one that returns at most 7 bytes per read (short reads from a socket),
and both runs must agree. It ends with the line
`exchange-vectors: N passed, M failed` and exits non-zero on any failure.
"""

import hashlib
import hmac
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import kapsel_decode  # noqa: E402
from run_vectors import one, parse_vector, run_directory  # noqa: E402

# Section 13: the outcomes of the receiver, then the classes of section 7
# (those of the message M itself). `success` is a decoder class; a receiver
# whose decode of M succeeded and whose challenge matched reports `accepted`.
EXCHANGE_OUTCOMES = (
    "accepted",
    "refused_by_policy",
    "bad_framing",
    "abandoned",
    "connection_closed",
) + kapsel_decode.OUTCOMES

# Sections 13.1, 13.2, 13.5, 13.7.
HELLO_MAGIC = b"\x8bKXCHG1\x0a"
CHALLENGE_LEN = 32
MAX_FRAME_LEN = 1 << 20
END_MARKER = 0
ABORT_MARKER = 0xFFFFFFFF
CHALLENGE_EXT_TYPE = 0x0020
RECEIPT_KEY_INFO = b"kapsel/v1 receipt key"
RECEIPT_LABEL = b"kapsel/v1 receipt" + b"\x00"
RECEIPT_TAIL_LEN = 80


class ExchangeStop(Exception):
    """The exchange ended in an outcome of section 13 that is not a class of
    M itself (raised by the unframer or the challenge check)."""

    outcome = None


class ConnectionClosed(ExchangeStop):
    outcome = "connection_closed"


class Abandoned(ExchangeStop):
    outcome = "abandoned"


class BadFraming(ExchangeStop):
    outcome = "bad_framing"


class RefusedByPolicy(ExchangeStop):
    outcome = "refused_by_policy"


class Transport:
    """The receiving half of the byte stream, after the hello was sent.
    read(n) returns 1 to n bytes, or b"" once the stream has ended."""

    def __init__(self, data, max_read=None):
        self.data = data
        self.pos = 0
        self.max_read = max_read

    def read(self, n):
        if self.max_read is not None:
            n = min(n, self.max_read)
        out = self.data[self.pos : self.pos + n]
        self.pos += len(out)
        return out


class FramedSource:
    """Section 13.2: M as a decoder source. read(n) returns fewer than n
    bytes only at the end marker, the only end of input the decoder of M may
    see. A transport end before the end marker raises ConnectionClosed, the
    abort marker Abandoned, a length above MAX_FRAME_LEN BadFraming. It
    reads a frame's length only when the decoder needs bytes past the
    previous frame, never more of a frame than the decoder asked for, and
    nothing after the end marker. It also keeps len(M) and the last 80
    bytes of M for the receipt (section 13.5)."""

    def __init__(self, transport):
        self.transport = transport
        self.remaining = 0  # bytes of the current frame not yet read
        self.ended = False  # the end marker was read
        self.length = 0  # len(M) so far
        self.tail = bytearray()  # the last RECEIPT_TAIL_LEN bytes of M so far

    def _exactly(self, n):
        buf = bytearray()
        while len(buf) < n:
            got = self.transport.read(n - len(buf))
            if not got:
                raise ConnectionClosed("the stream ended inside a frame length")
            buf += got
        return bytes(buf)

    def read(self, n):
        out = bytearray()
        while len(out) < n and not self.ended:
            if self.remaining == 0:
                length = int.from_bytes(self._exactly(4), "big")
                if length == END_MARKER:
                    self.ended = True
                elif length == ABORT_MARKER:
                    raise Abandoned("abort marker")
                elif length > MAX_FRAME_LEN:
                    raise BadFraming("frame length %d" % length)
                else:
                    self.remaining = length
                continue
            got = self.transport.read(min(n - len(out), self.remaining))
            if not got:
                raise ConnectionClosed("the stream ended before the end marker")
            self.remaining -= len(got)
            out += got
        self.length += len(out)
        self.tail += out
        del self.tail[:-RECEIPT_TAIL_LEN]
        return bytes(out)


def check_challenge(challenge):
    """Section 13.4, as the check hook of kapsel_decode.decode_source."""

    def check(header, _file_key):
        values = [v for t, v in header.extensions if t == CHALLENGE_EXT_TYPE]
        if not values:
            raise RefusedByPolicy("no challenge record")
        value = values[0]  # types are strictly ascending: at most one record
        if len(value) != CHALLENGE_LEN or not hmac.compare_digest(value, challenge):
            raise RefusedByPolicy("another challenge")

    return check


def hkdf_sha256(salt, ikm, info, length):
    """RFC 5869 Extract then Expand."""
    prk = hmac.new(salt, ikm, hashlib.sha256).digest()
    okm, block, counter = b"", b"", 1
    while len(okm) < length:
        block = hmac.new(prk, block + info + bytes([counter]), hashlib.sha256).digest()
        okm += block
        counter += 1
    return okm[:length]


def receipt(challenge, file_key, header_bytes, message_len, tail):
    """Section 13.5."""
    receipt_key = hkdf_sha256(challenge, file_key, RECEIPT_KEY_INFO, 32)
    mac = hmac.new(receipt_key, digestmod=hashlib.sha256)
    mac.update(RECEIPT_LABEL)
    mac.update(challenge)
    mac.update(hashlib.sha256(header_bytes).digest())
    mac.update(message_len.to_bytes(8, "big"))
    mac.update(tail)
    return mac.digest()


def receive(data, identities, challenge, max_read=None):
    """One receiver run: (outcome, released plaintext, receipt or None)."""
    transport = Transport(data, max_read)
    source = FramedSource(transport)
    released = bytearray()
    try:
        header, file_key = kapsel_decode.decode_source(
            source, identities, released, check_challenge(challenge)
        )
    except ExchangeStop as e:
        return e.outcome, bytes(released), None
    except kapsel_decode.Failure as f:
        return f.outcome, bytes(released), None
    # Success can only come at the end of input, which is the end marker.
    assert source.ended, "decode succeeded before the end marker"
    if len(source.tail) != RECEIPT_TAIL_LEN:
        raise AssertionError("M shorter than %d bytes" % RECEIPT_TAIL_LEN)
    r = receipt(challenge, file_key, header.bytes, source.length, bytes(source.tail))
    return "accepted", bytes(released), r


def run_one(path):
    """(expected outcome, None if the vector passed, else the failure)."""
    with open(path, "rb") as f:
        fields, data = parse_vector(f.read())
    expect = one(fields, "expect")
    if expect not in EXCHANGE_OUTCOMES:
        raise ValueError("unknown outcome %r" % expect)
    identities = [kapsel_decode.parse_identity(v) for k, v in fields if k == "identity"]
    challenge = bytes.fromhex(one(fields, "challenge"))
    if len(challenge) != CHALLENGE_LEN:
        raise ValueError("challenge of %d bytes" % len(challenge))
    receipts = [bytes.fromhex(v) for k, v in fields if k == "receipt"]
    if len(receipts) != (1 if expect == "accepted" else 0):
        raise ValueError("%d receipt fields for outcome %s" % (len(receipts), expect))
    want_len = int(one(fields, "released_len"))
    want_sha = one(fields, "released_sha256")

    runs = [receive(data, identities, challenge), receive(data, identities, challenge, 7)]
    if runs[0] != runs[1]:
        return expect, "whole reads gave %s (%d bytes), 7-byte reads %s (%d bytes)" % (
            runs[0][0],
            len(runs[0][1]),
            runs[1][0],
            len(runs[1][1]),
        )
    outcome, released, got_receipt = runs[0]
    if outcome != expect:
        return expect, "expected %s, got %s" % (expect, outcome)
    got_sha = hashlib.sha256(released).hexdigest()
    if len(released) != want_len or got_sha != want_sha:
        return expect, "released %d bytes (sha256 %s), expected %d bytes (sha256 %s)" % (
            len(released),
            got_sha,
            want_len,
            want_sha,
        )
    if receipts and got_receipt != receipts[0]:
        return expect, "receipt %s, expected %s" % (got_receipt.hex(), receipts[0].hex())
    return expect, None


def main(argv):
    verbose = "-v" in argv
    args = [a for a in argv if a != "-v"]
    directory = args[0] if args else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "exchange"
    )
    passed, failed, per_outcome = run_directory(directory, run_one, verbose)
    if verbose:
        print(
            "per outcome: "
            + ", ".join("%s %d" % (c, per_outcome[c]) for c in EXCHANGE_OUTCOMES if per_outcome[c])
        )
    print("exchange-vectors: %d passed, %d failed" % (passed, failed))
    return 1 if failed or passed == 0 else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
