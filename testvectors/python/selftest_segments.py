#!/usr/bin/env python3
"""Self-test of the Python decoder against files made here from SPEC.md.

    python3 testvectors/python/selftest_segments.py [-v]

It carries its own small encoder, written from the SPEC alone (sections 3,
4.4, 5.2, 6.1, 6.2, 6.5, 13.2, 13.5): headers, base-mode HPKE stanzas with
per-stanza hints, Cobblestone-256 payloads, signed segments of 64 chunks
with low-s ECDSA signatures, frames of a live exchange and receipts. It
then checks that kapsel_decode.py (sequential and random access) and the
receiver of run_exchange_vectors.py report the class and release the
plaintext the SPEC requires, for valid files and for forgeries: flipped,
swapped, dropped and moved segments, cuts at and around segment
boundaries, high and out-of-range s, wrong final flags and indices, a
co-recipient's forgery, stanzas that open to a wrong key, auth-mode
stanzas of the old format, sources that change between two reads. It needs
no conformance vectors. It ends with `selftest-segments: N passed, M
failed` and exits non-zero on any failure.
"""

import hashlib
import hmac
import os
import random
import sys

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import kapsel_decode as kd  # noqa: E402
import run_exchange_vectors as rx  # noqa: E402

# ---------------------------------------------------------------------------
# The encoder, from SPEC.md (its constants written again, not imported).

N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
MAGIC = bytes.fromhex("8B4B415053454C0A")
INFO = bytes.fromhex("6B617073656C2F76312066696C65206B6579")  # "kapsel/v1 file key"
HINT_LABEL = b"kapsel/v1 hint\x00"
SEGMENT_LABEL = b"kapsel/v1 segment\x00"
CHUNK = 16384
CT_CHUNK = 16400
MIB = 1 << 20
FULL_SEG = 1049664
HELLO_CHALLENGE_EXT = 0x0020
MAX_FRAME_LEN = 1 << 20


def point(pk):
    return pk.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)


def compressed(pk):
    return pk.public_bytes(Encoding.X962, PublicFormat.CompressedPoint)


def hmac_sha256(key, data):
    return hmac.new(key, data, hashlib.sha256).digest()


def hkdf_expand(prk, info, length, h):
    out, t, i = b"", b"", 1
    while len(out) < length:
        t = hmac.new(prk, t + info + bytes([i]), h).digest()
        out += t
        i += 1
    return out[:length]


def labeled_extract(suite, salt, label, ikm):
    return hmac_sha256(salt or b"\x00" * 32, b"HPKE-v1" + suite + label + ikm)


def labeled_expand(suite, prk, label, info, length):
    return hkdf_expand(prk, length.to_bytes(2, "big") + b"HPKE-v1" + suite + label + info, length, hashlib.sha256)


KEM_ID = b"KEM\x00\x10"
HPKE_ID = b"HPKE\x00\x10\x00\x01\x00\x02"


def hpke_seal(pk_r, plaintext, mode=0, sk_s=None):
    """RFC 9180 single-shot seal, base mode (0) or, to forge the old
    format, auth mode (2) with sender key sk_s."""
    sk_e = ec.generate_private_key(ec.SECP256R1())
    enc = point(sk_e.public_key())
    dh = sk_e.exchange(ec.ECDH(), pk_r)
    kem_context = enc + point(pk_r)
    if mode == 2:
        dh += sk_s.exchange(ec.ECDH(), pk_r)
        kem_context += point(sk_s.public_key())
    eae = labeled_extract(KEM_ID, b"", b"eae_prk", dh)
    shared = labeled_expand(KEM_ID, eae, b"shared_secret", kem_context, 32)
    ctx = bytes([mode]) + labeled_extract(HPKE_ID, b"", b"psk_id_hash", b"") + labeled_extract(HPKE_ID, b"", b"info_hash", INFO)
    secret = labeled_extract(HPKE_ID, shared, b"secret", b"")
    key = labeled_expand(HPKE_ID, secret, b"key", ctx, 32)
    nonce = labeled_expand(HPKE_ID, secret, b"base_nonce", ctx, 12)
    return enc, AESGCM(key).encrypt(nonce, plaintext, b"")


def hint(pk, enc):
    return hashlib.sha256(HINT_LABEL + compressed(pk) + enc).digest()[:4]


def stanza(pk, file_key, hint_kind="real", mode=0, sk_s=None, corrupt=False):
    """Section 5.2. hint_kind: real, zero, old (SHA-256 of the point: the
    format before per-stanza hints)."""
    enc, wrapped = hpke_seal(pk, file_key, mode, sk_s)
    if corrupt:
        wrapped = bytes([wrapped[0] ^ 1]) + wrapped[1:]
    h = {
        "real": lambda: hint(pk, enc),
        "zero": lambda: b"\x00" * 4,
        "old": lambda: hashlib.sha256(compressed(pk)).digest()[:4],
    }[hint_kind]()
    return b"\x00\x01\x00\x75" + h + enc + wrapped


def header(stanzas, sender=None, created_at=1767225600, serial=7, extensions=b""):
    """Section 3.1."""
    body = created_at.to_bytes(8, "big") + serial.to_bytes(8, "big")
    body += b"\x01" + point(sender) if sender is not None else b"\x00"
    body += len(stanzas).to_bytes(2, "big") + b"".join(stanzas)
    body += len(extensions).to_bytes(2, "big") + extensions
    return MAGIC + b"\x01\x00\x01\x0e" + (16 + len(body)).to_bytes(4, "big") + body


def challenge_ext(challenge):
    return HELLO_CHALLENGE_EXT.to_bytes(2, "big") + len(challenge).to_bytes(2, "big") + challenge


def cobblestone(file_key, salt, context):
    okm = hkdf_expand(file_key, b"c2sp.org/chunked-encryption@v1+AEAD_AES_256_GCM\x00" + salt + context, 76, hashlib.sha512)
    return okm[:32], okm[32:44], okm[44:]


def chunk_ciphertexts(key, base_nonce, plaintext):
    """Section 6.2 steps 3 and 4."""
    n_full = len(plaintext) // CHUNK
    pieces = [plaintext[i * CHUNK : (i + 1) * CHUNK] for i in range(n_full)] + [plaintext[n_full * CHUNK :]]
    aead = AESGCM(key)
    out = []
    for i, p in enumerate(pieces):
        nonce = (int.from_bytes(base_nonce, "big") ^ i).to_bytes(12, "big")
        out.append(aead.encrypt(nonce, p, b""))
    return out


def low_s_sign(sk, message):
    r, s = decode_dss_signature(sk.sign(message, ec.ECDSA(hashes.SHA256())))
    if s > (N - 1) // 2:
        s = N - s
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def signed_j(header_bytes, salt, commitment, j, final, chunk_bytes):
    """Section 6.5."""
    m = (
        SEGMENT_LABEL
        + hashlib.sha256(header_bytes).digest()
        + salt
        + commitment
        + j.to_bytes(8, "big")
        + (b"\x01" if final else b"\x00")
        + hashlib.sha256(chunk_bytes).digest()
    )
    assert len(m) == 147
    return m


class File:
    """One kapsel file, kept in parts so that tests can forge it."""

    def __init__(self, plaintext, recipients, sender=None, stanzas=None, file_key=None, **header_args):
        self.plaintext = plaintext
        self.sender = sender
        self.file_key = file_key or os.urandom(32)
        if stanzas is None:
            stanzas = [stanza(pk, self.file_key) for pk in recipients]
        self.header = header(stanzas, sender.public_key() if sender else None, **header_args)
        self.salt = os.urandom(24)
        key, base_nonce, self.commitment = cobblestone(self.file_key, self.salt, self.header)
        self.chunks = chunk_ciphertexts(key, base_nonce, plaintext)

    def prefix(self):
        return self.header + self.salt + self.commitment

    def segment_chunks(self, j):
        return b"".join(self.chunks[64 * j : 64 * (j + 1)])

    def segment_count(self):
        return (len(self.chunks) + 63) // 64

    def segment(self, j, signer=None, index=None, final=None, chunk_bytes=None):
        """segment_j, optionally signed by another key, as another index,
        with another final flag, or over other chunk bytes."""
        cb = self.segment_chunks(j) if chunk_bytes is None else chunk_bytes
        fin = (j == self.segment_count() - 1) if final is None else final
        idx = j if index is None else index
        sig = low_s_sign(signer or self.sender, signed_j(self.header, self.salt, self.commitment, idx, fin, cb))
        return cb + sig

    def segments(self):
        return [self.segment(j) for j in range(self.segment_count())]

    def bytes(self):
        if self.sender is None:
            return self.prefix() + b"".join(self.chunks)
        return self.prefix() + b"".join(self.segments())


def armor(data):
    import base64

    b64 = base64.b64encode(data)
    lines = [b64[i : i + 64] for i in range(0, len(b64), 64)]
    return b"-----BEGIN KAPSEL ENCRYPTED FILE-----\n" + b"\n".join(lines) + b"\n-----END KAPSEL ENCRYPTED FILE-----\n"


def frames(message, rng, sizes=None):
    """Section 13.2: the message in frames of random lengths, no marker."""
    out, pos = bytearray(), 0
    while pos < len(message):
        n = min(len(message) - pos, rng.choice(sizes or [1, 7, 100, 16400, 65536, 1000000, MAX_FRAME_LEN]))
        out += n.to_bytes(4, "big") + message[pos : pos + n]
        pos += n
    return bytes(out)


END = b"\x00\x00\x00\x00"


def receipt(challenge, file_key, message):
    """Section 13.5, from the sender's side."""
    rk = HKDF(hashes.SHA256(), 32, challenge, b"kapsel/v1 receipt key").derive(file_key)
    hl = int.from_bytes(message[12:16], "big")
    data = (
        b"kapsel/v1 receipt\x00"
        + challenge
        + hashlib.sha256(message[:hl]).digest()
        + len(message).to_bytes(8, "big")
        + message[-80:]
    )
    return hmac_sha256(rk, data)


# ---------------------------------------------------------------------------
# The checks.

PASSED = 0
FAILED = 0
VERBOSE = "-v" in sys.argv


def expect(name, got, want_outcome, want_released=b""):
    """`got` is (outcome, released) or (outcome, released, ...)."""
    global PASSED, FAILED
    outcome, released = got[0], got[1]
    if outcome == want_outcome and released == want_released:
        PASSED += 1
        if VERBOSE:
            print("ok   %s" % name)
    else:
        FAILED += 1
        print(
            "FAIL %s: got %s with %d bytes released, expected %s with %d bytes"
            % (name, outcome, len(released), want_outcome, len(want_released))
        )


def check(name, condition, detail=""):
    global PASSED, FAILED
    if condition:
        PASSED += 1
        if VERBOSE:
            print("ok   %s" % name)
    else:
        FAILED += 1
        print("FAIL %s %s" % (name, detail))


def dec(data, ids, armored=False):
    return kd.decode(data, ids, armored)


def flip(data, i):
    return data[:i] + bytes([data[i] ^ 0x01]) + data[i + 1 :]


def with_sig(seg, r, s):
    return seg[:-64] + r.to_bytes(32, "big") + s.to_bytes(32, "big")


def outcome_of(call):
    """The class a decoder call ended in ("success" if it returned)."""
    try:
        call()
        return "success"
    except kd.Failure as e:
        return e.outcome


def main():
    rng = random.Random(9634)
    alice = ec.generate_private_key(ec.SECP256R1())
    bob = ec.generate_private_key(ec.SECP256R1())
    carol = ec.generate_private_key(ec.SECP256R1())
    dave = ec.generate_private_key(ec.SECP256R1())  # never a recipient
    sam = ec.generate_private_key(ec.SECP256R1())  # signs
    mallory = ec.generate_private_key(ec.SECP256R1())  # a co-recipient who forges
    A, B, C = alice.public_key(), bob.public_key(), carol.public_key()
    big = os.urandom(2 * MIB + 3 * CHUNK + 5)  # 3 segments: 64, 64 and 4 chunks

    kd.selftest_hpke()

    # --- Anonymous files (6.3, 6.4) ---------------------------------------
    for size in (0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 40000):
        pt = os.urandom(size)
        f = File(pt, [A])
        expect("anonymous_%d" % size, dec(f.bytes(), [alice]), "success", pt)
        expect("anonymous_%d_armored" % size, dec(armor(f.bytes()), [alice], True), "success", pt)
    pt = os.urandom(2 * CHUNK + 10)
    data = File(pt, [A]).bytes()
    expect("anonymous_cut_after_full_chunk", dec(data[: -(10 + 16)], [alice]), "payload_failure", pt[: 2 * CHUNK])
    expect("anonymous_cut_inside_final", dec(data[:-1], [alice]), "payload_failure", pt[: 2 * CHUNK])
    expect("anonymous_trailing_byte", dec(data + b"\x00", [alice]), "payload_failure", pt[: 2 * CHUNK])
    expect("anonymous_flip_chunk_1", dec(flip(data, len(data) - 26 - CT_CHUNK), [alice]), "payload_failure", pt[:CHUNK])
    pt = os.urandom(2 * CHUNK)
    data = File(pt, [A]).bytes()
    expect("anonymous_missing_empty_final", dec(data[:-16], [alice]), "payload_failure", pt)

    # --- Hints and stanza trial (4.4, 5.3) --------------------------------
    pt = b"hello"
    f1, f2 = File(pt, [A]), File(pt, [A])
    h1, h2 = f1.header[39:43], f2.header[39:43]
    check("hint_is_per_stanza", h1 != h2 and h1 == hint(A, f1.header[43:108]))
    check("hint_label_bytes", HINT_LABEL == bytes.fromhex("6B617073656C2F76312068696E7400"))
    expect("hint_real", dec(f1.bytes(), [alice]), "success", pt)
    key = os.urandom(32)
    hidden = [stanza(pk, key, "zero") for pk in (A, B, C)]
    rng.shuffle(hidden)
    expect("hint_zero_shuffled", dec(File(pt, [], stanzas=hidden, file_key=key).bytes(), [carol]), "success", pt)
    expect("hint_zero_no_match", dec(File(pt, [], stanzas=hidden, file_key=key).bytes(), [dave]), "no_match")

    key = os.urandom(32)
    wrong_then_right = [stanza(A, os.urandom(32)), stanza(A, key, "zero")]
    expect(
        "trial_continues_after_commitment_mismatch",
        dec(File(pt, [], stanzas=wrong_then_right, file_key=key).bytes(), [alice]),
        "success",
        pt,
    )
    key = os.urandom(32)
    st = [stanza(A, os.urandom(32)), stanza(B, key)]
    expect("trial_next_identity_after_mismatch", dec(File(pt, [], stanzas=st, file_key=key).bytes(), [alice, bob]), "success", pt)
    expect("trial_only_wrong_key", dec(File(pt, [], stanzas=st[:1], file_key=key).bytes(), [alice]), "header_auth_failure")
    expect(
        "trial_wrong_key_zero_hint",
        dec(File(pt, [], stanzas=[stanza(A, os.urandom(32), "zero")], file_key=key).bytes(), [alice]),
        "header_auth_failure",
    )
    st = [stanza(A, key, corrupt=True)]
    expect("trial_hinted_corrupt", dec(File(pt, [], stanzas=st, file_key=key).bytes(), [alice]), "header_auth_failure")
    st = [stanza(A, key, "zero", corrupt=True)]
    expect("trial_unhinted_corrupt", dec(File(pt, [], stanzas=st, file_key=key).bytes(), [alice]), "no_match")
    st = [stanza(A, key, "old", corrupt=True)]
    expect("trial_old_style_hint_does_not_match", dec(File(pt, [], stanzas=st, file_key=key).bytes(), [alice]), "no_match")
    st = [stanza(A, key, "old")]
    expect("trial_old_style_hint_still_opens", dec(File(pt, [], stanzas=st, file_key=key).bytes(), [alice]), "success", pt)
    st = [stanza(A, key, "real", mode=2, sk_s=sam)]
    expect("auth_mode_stanza_hinted", dec(File(pt, [], stanzas=st, file_key=key).bytes(), [alice]), "header_auth_failure")
    st = [stanza(A, key, "zero", mode=2, sk_s=sam)]
    expect("auth_mode_stanza_unhinted", dec(File(pt, [], stanzas=st, file_key=key).bytes(), [alice]), "no_match")
    f = File(pt, [A], sender=sam, stanzas=[stanza(A, key, "real", mode=2, sk_s=sam)], file_key=key)
    expect("auth_mode_stanza_signed_file", dec(f.bytes(), [alice]), "header_auth_failure")
    f = File(pt, [B])
    expect("no_match", dec(f.bytes(), [alice]), "no_match")
    expect("no_identity", dec(f.bytes(), []), "no_match")
    expect("salt_truncated_stanza_opens", dec(f.prefix()[: len(f.header) + 30], [bob]), "payload_failure")
    expect("salt_truncated_no_stanza_opens", dec(f.prefix()[: len(f.header) + 30], [alice]), "no_match")
    expect("header_only_stanza_opens", dec(f.header, [bob]), "payload_failure")
    data = f.bytes()
    expect("flip_salt", dec(flip(data, len(f.header)), [bob]), "header_auth_failure")
    expect("flip_commitment", dec(flip(data, len(f.header) + 30), [bob]), "header_auth_failure")
    expect("flip_serial", dec(flip(data, 30), [bob]), "header_auth_failure")
    # An unknown stanza type next to the P-256 one is never tried.
    unknown = b"\x00\x07\x00\x03abc"
    expect("unknown_stanza_ignored", dec(File(pt, [], stanzas=[unknown, stanza(A, key)], file_key=key).bytes(), [alice]), "success", pt)

    # --- Signed files (6.4, 6.5) -------------------------------------------
    for size in (0, 1, CHUNK, MIB - 1, MIB, MIB + 1, 2 * MIB + 3 * CHUNK + 5):
        p = big[:size] if size <= len(big) else os.urandom(size)
        f = File(p, [A, B], sender=sam)
        data = f.bytes()
        body = len(data) - len(f.header) - 56
        check(
            "signed_%d_layout" % size,
            body == (size // MIB) * FULL_SEG + 64 + 16400 * ((size % MIB) // CHUNK) + (size % CHUNK) + 16,
            "body %d" % body,
        )
        expect("signed_%d" % size, dec(data, [alice]), "success", p)
        expect("signed_%d_second_recipient" % size, dec(data, [dave, bob]), "success", p)
    f = File(os.urandom(3000), [A], sender=sam)
    expect("signed_armored", dec(armor(f.bytes()), [alice], True), "success", f.plaintext)

    f = File(big, [A, B], sender=sam)
    segs = f.segments()
    pre = f.prefix()
    data = pre + b"".join(segs)
    s0, s1, s2 = segs
    check("signed_segment_sizes", (len(s0), len(s1), len(s2)) == (FULL_SEG, FULL_SEG, 3 * CT_CHUNK + 5 + 16 + 64))
    P0, P1 = big[:MIB], big[: 2 * MIB]
    expect("signed_flip_segment_0_chunk", dec(flip(data, len(pre) + 5), [alice]), "sender_verification_failure")
    expect("signed_flip_segment_1_chunk", dec(flip(data, len(pre) + FULL_SEG + 70000), [alice]), "sender_verification_failure", P0)
    expect("signed_flip_segment_1_last_tag_byte", dec(flip(data, len(pre) + 2 * FULL_SEG - 65), [alice]), "sender_verification_failure", P0)
    expect("signed_flip_segment_0_signature", dec(flip(data, len(pre) + FULL_SEG - 1), [alice]), "sender_verification_failure")
    expect("signed_flip_final_segment", dec(flip(data, len(data) - 100), [alice]), "sender_verification_failure", P1)
    expect("signed_flip_final_signature", dec(flip(data, len(data) - 1), [alice]), "sender_verification_failure", P1)
    expect("signed_swap_segments_0_1", dec(pre + s1 + s0 + s2, [alice]), "sender_verification_failure")
    expect("signed_duplicate_segment_0", dec(pre + s0 + s0 + s1 + s2, [alice]), "sender_verification_failure", P0)
    expect("signed_drop_segment_1", dec(pre + s0 + s2, [alice]), "sender_verification_failure", P0)
    expect("signed_drop_final_segment", dec(pre + s0 + s1, [alice]), "payload_failure", P1)
    expect("signed_only_prefix", dec(pre, [alice]), "payload_failure")
    # Cuts at and around the boundary after segment 0.
    b0 = len(pre) + FULL_SEG
    for delta, want, rel in (
        (-1, "sender_verification_failure", b""),
        (-64, "sender_verification_failure", b""),
        (-65, "sender_verification_failure", b""),
        (0, "payload_failure", P0),
        (1, "payload_failure", P0),
        (79, "payload_failure", P0),
        (80, "sender_verification_failure", P0),
        (16400 + 64, "sender_verification_failure", P0),
    ):
        expect("signed_cut_at_boundary_%+d" % delta, dec(data[: b0 + delta], [alice]), want, rel)
    expect("signed_cut_79_into_segment_0", dec(data[: len(pre) + 79], [alice]), "payload_failure")
    expect("signed_cut_80_into_segment_0", dec(data[: len(pre) + 80], [alice]), "sender_verification_failure")
    expect("signed_appended_byte", dec(data + b"\x00", [alice]), "sender_verification_failure", P1)
    expect("signed_appended_segment", dec(data + s2, [alice]), "sender_verification_failure", P1)
    # One MiB exactly: the final segment is one empty chunk and its signature.
    f1m = File(big[:MIB], [A], sender=sam)
    d1m = f1m.bytes()
    check("signed_1mib_final_80", len(f1m.segments()[1]) == 80)
    expect("signed_1mib_drop_final", dec(d1m[:-80], [alice]), "payload_failure", P0)
    expect("signed_1mib_cut_final", dec(d1m[:-1], [alice]), "payload_failure", P0)
    # High and out-of-range s and r.
    r = int.from_bytes(s0[-64:-32], "big")
    s = int.from_bytes(s0[-32:], "big")
    msg0 = signed_j(f.header, f.salt, f.commitment, 0, False, f.segment_chunks(0))
    try:
        sam.public_key().verify(encode_dss_signature(r, N - s), msg0, ec.ECDSA(hashes.SHA256()))
        high_is_valid_ecdsa = True
    except Exception:
        high_is_valid_ecdsa = False
    check("signed_high_s_is_valid_plain_ecdsa", high_is_valid_ecdsa and s <= (N - 1) // 2)
    expect("signed_high_s_segment_0", dec(pre + with_sig(s0, r, N - s) + s1 + s2, [alice]), "sender_verification_failure")
    r2 = int.from_bytes(s2[-64:-32], "big")
    s2v = int.from_bytes(s2[-32:], "big")
    expect("signed_high_s_final", dec(pre + s0 + s1 + with_sig(s2, r2, N - s2v), [alice]), "sender_verification_failure", P1)
    for name, rr, ss in (("r0", 0, s), ("s0", r, 0), ("rn", N, s), ("sn", r, N), ("r_plus_n", r + N, s), ("s_half_plus_1", r, (N - 1) // 2 + 1)):
        if rr < (1 << 256) and ss < (1 << 256):
            expect("signed_%s" % name, dec(pre + with_sig(s0, rr, ss) + s1 + s2, [alice]), "sender_verification_failure")
    # The sender itself signs what it should not.
    bad = flip(f.segment_chunks(1), 70000)
    expect(
        "signed_sender_signed_broken_chunk",
        dec(pre + s0 + f.segment(1, chunk_bytes=bad) + s2, [alice]),
        "payload_failure",
        P0,
    )
    expect("signed_final_flag_clear_on_final", dec(pre + s0 + s1 + f.segment(2, final=False), [alice]), "sender_verification_failure", P1)
    expect("signed_final_flag_set_on_full", dec(pre + f.segment(0, final=True) + s1 + s2, [alice]), "sender_verification_failure")
    expect("signed_wrong_index", dec(pre + s0 + f.segment(1, index=2) + s2, [alice]), "sender_verification_failure", P0)
    expect(
        "signed_sender_signed_final_without_short_chunk",
        dec(pre + s0 + s1 + f.segment(2, chunk_bytes=f.segment_chunks(2)[:-21]), [alice]),
        "payload_failure",
        P1,
    )
    expect(
        "signed_sender_signed_final_short_last_piece",
        dec(pre + s0 + s1 + f.segment(2, chunk_bytes=f.segment_chunks(2)[:-6]), [alice]),
        "payload_failure",
        P1,
    )
    # 64 full chunks are a full segment, never a final one: flagging them
    # final cannot end the file at a segment boundary.
    expect(
        "signed_full_segment_signed_as_final",
        dec(pre + s0 + f.segment(1, final=True), [alice]),
        "sender_verification_failure",
        P0,
    )
    expect("signed_by_another_key", dec(pre + f.segment(0, signer=mallory) + s1 + s2, [alice]), "sender_verification_failure")
    # A co-recipient who knows the file key: new header (new serial), new
    # payload, either its own signatures or the sender's old ones.
    forged = File(b"evil" * 1000, [], sender=sam, stanzas=[stanza(A, f.file_key), stanza(B, f.file_key)], file_key=f.file_key, serial=8)
    expect("forged_by_corecipient_own_signature", dec(forged.prefix() + forged.segment(0, signer=mallory), [alice]), "sender_verification_failure")
    same = File(big[:3000], [A], sender=sam)
    forged = File(big[:3000], [], sender=sam, stanzas=[stanza(A, same.file_key)], file_key=same.file_key, serial=99)
    forged.salt, forged.commitment = same.salt, cobblestone(same.file_key, same.salt, forged.header)[2]
    forged.chunks = chunk_ciphertexts(*cobblestone(same.file_key, same.salt, forged.header)[:2], same.plaintext)
    expect("forged_new_header_sender_signature_reused", dec(forged.prefix() + forged.chunks[0] + same.segments()[0][-64:], [alice]), "sender_verification_failure")
    # The old format: one trailing signature instead of segments.
    old = File(b"old", [A], sender=sam)
    old_sig = low_s_sign(sam, b"kapsel/v1 signature\x00" + old.prefix() + old.chunks[0])
    expect("old_format_single_signature", dec(old.prefix() + old.chunks[0] + old_sig, [alice]), "sender_verification_failure")

    # Hooks: the policy check before any chunk is read, the reservation
    # right before the first release.
    events = []
    src = kd.BytesSource(data)

    def policy(h, k):
        events.append(("check", src.pos))

    def reserve(h, k):
        events.append(("reserve", src.pos, len(released)))

    released = bytearray()
    check("hook_valid", outcome_of(lambda: kd.decode_source(src, [alice], released, policy, reserve)) == "success")
    events += [None, None]
    check("hook_check_before_chunks", events[0] == ("check", len(pre)), repr(events[:1]))
    check("hook_reserve_after_segment_0", events[1] == ("reserve", len(pre) + FULL_SEG, 0), repr(events[1:]))
    for name, bad_data, want in (
        ("hook_reserve_never_for_forged_segment_0", flip(data, len(pre) + 5), []),
        ("hook_reserve_once_for_forged_segment_1", flip(data, len(pre) + FULL_SEG + 5), ["reserve"]),
    ):
        events, released, src = [], bytearray(), kd.BytesSource(bad_data)
        outcome_of(lambda: kd.decode_source(src, [alice], released, policy, reserve))
        check(name, [e[0] for e in events[1:]] == want, repr(events))
    events, released, src = [], bytearray(), kd.BytesSource(File(b"", [A]).bytes())
    outcome_of(lambda: kd.decode_source(src, [alice], released, policy, reserve))
    check("hook_reserve_empty_anonymous", [e[0] for e in events] == ["check", "reserve"], repr(events))

    # --- Random access (6.6) ---------------------------------------------
    L = len(big)
    rd = kd.decode_range
    expect("range_start", rd(data, [alice], 0, 10), "success", big[:10])
    expect("range_across_segments", rd(data, [alice], MIB - 5, 10), "success", big[MIB - 5 : MIB + 5])
    expect("range_whole", rd(data, [alice], 0, L), "success", big)
    expect("range_past_end_clipped", rd(data, [alice], L - 3, 100), "success", big[-3:])
    expect("range_at_end", rd(data, [alice], L, 5), "success", b"")
    expect("range_beyond_end", rd(data, [alice], L + 1000, 5), "success", b"")
    expect("range_empty_at_end", rd(data, [alice], L, 0), "success", b"")
    tampered_final = flip(data, len(data) - 100)
    expect("range_inside_no_final_needed", rd(tampered_final, [alice], 10, MIB), "success", big[10 : MIB + 10])
    expect("range_past_end_final_first", rd(tampered_final, [alice], 0, L + 1), "sender_verification_failure")
    expect("range_at_end_final_first", rd(tampered_final, [alice], L, 1), "sender_verification_failure")
    tampered_1 = flip(data, len(pre) + FULL_SEG + 10)
    expect("range_across_forged_segment", rd(tampered_1, [alice], MIB - 5, 10), "sender_verification_failure", big[MIB - 5 : MIB])
    expect("range_in_segment_2_ignores_segment_1", rd(tampered_1, [alice], 2 * MIB, 5), "success", big[2 * MIB : 2 * MIB + 5])
    # Exactly 1 MiB: a range ending at the claimed length needs no final segment.
    t1m = d1m[:-1] + bytes([d1m[-1] ^ 1])
    expect("range_ends_at_length_1mib", rd(t1m, [alice], 0, MIB), "success", big[:MIB])
    expect("range_reaches_past_1mib", rd(t1m, [alice], 0, MIB + 1), "sender_verification_failure")
    # Impossible layouts, before any segment is read.
    for name, cut in (
        ("range_layout_boundary", b0),
        ("range_layout_boundary_79", b0 + 79),
        ("range_layout_short_last_piece", len(data) - 6),
    ):
        ra = kd.RandomAccess(data[:cut])
        released = bytearray()
        outcome = outcome_of(lambda: kd.decode_range_source(ra, [alice], 0, 10, released))
        expect(name, (outcome, bytes(released)), "payload_failure")
        check(name + "_reads_no_segment", max(o + n for o, n in ra.reads) <= len(pre), repr(ra.reads[-1:]))
    # Each segment is read once; a source that changes between reads.
    ra = kd.RandomAccess(data)
    check("range_reads_valid", outcome_of(lambda: kd.decode_range_source(ra, [alice], MIB - 5, L, bytearray())) == "success")
    body_reads = sorted((o, n) for o, n in ra.reads if o >= len(pre))
    check(
        "range_reads_each_segment_once",
        body_reads == [(len(pre), FULL_SEG), (len(pre) + FULL_SEG, FULL_SEG), (len(pre) + 2 * FULL_SEG, len(s2))],
        repr(body_reads),
    )

    class Changing(kd.RandomAccess):
        """Genuine bytes on the first read of an offset, altered after (or
        the other way round)."""

        def __init__(self, good, bad, bad_first):
            super().__init__(good)
            self.bad, self.bad_first, self.seen = bad, bad_first, set()

        def read_at(self, offset, n):
            first = offset not in self.seen
            self.seen.add(offset)
            src = self.bad if first == self.bad_first else self.data
            self.reads.append((offset, n))
            return src[offset : offset + n]

    # bad_first: the final segment is read first and is genuine in both
    # copies, then segment 0 (genuine too), then segment 1, altered.
    for name, bad_first, want, rel in (
        ("range_source_changes_after_read", False, "success", big[MIB - 5 :]),
        ("range_source_bad_then_good", True, "sender_verification_failure", big[MIB - 5 : MIB]),
    ):
        released = bytearray()
        ra = Changing(data, tampered_1, bad_first)
        outcome = outcome_of(lambda: kd.decode_range_source(ra, [alice], MIB - 5, L, released))
        expect(name, (outcome, bytes(released)), want, rel)
    # Anonymous random access.
    fa = File(big[: 3 * CHUNK + 7], [A])
    da = fa.bytes()
    La = 3 * CHUNK + 7
    expect("range_anonymous", rd(da, [alice], CHUNK - 2, 4), "success", big[CHUNK - 2 : CHUNK + 2])
    expect("range_anonymous_past_end", rd(da, [alice], La - 2, 9), "success", big[La - 2 : La])
    tda = flip(da, len(da) - 1)
    expect("range_anonymous_no_final_needed", rd(tda, [alice], 0, La - 7), "success", big[: La - 7])
    expect("range_anonymous_final_first", rd(tda, [alice], 0, La + 1), "payload_failure")
    expect("range_anonymous_layout", rd(da[:-8], [alice], 0, 1), "payload_failure")
    expect("range_no_match", rd(da, [bob], 0, 1), "no_match")
    expect("range_header_auth", rd(flip(da, 30), [alice], 0, 1), "header_auth_failure")

    # --- Live exchange (13) ------------------------------------------------
    challenge = os.urandom(32)
    ext = challenge_ext(challenge)
    fs = File(big, [A], sender=sam, extensions=ext)
    ms = fs.bytes()
    fa = File(big, [A], extensions=ext)
    ma = fa.bytes()
    hs = len(fs.prefix())
    for name, m, fx in (("signed", ms, fs), ("anonymous", ma, fa)):
        stream = frames(m, rng) + END + b"junk after the end marker"
        for max_read in (None, 4099):
            got = rx.receive(stream, [alice], challenge, max_read)
            expect("exchange_accepted_%s_%s" % (name, max_read), got, "accepted", big)
            check("exchange_receipt_%s_%s" % (name, max_read), got[2] == receipt(challenge, fx.file_key, m))
    small = File(b"x" * 20000, [A], sender=sam, extensions=ext).bytes()
    expect("exchange_7_byte_reads", rx.receive(frames(small, rng) + END, [alice], challenge, 7), "accepted", b"x" * 20000)
    # Cuts: frames end exactly at the boundary, or inside segment 1.
    expect("exchange_cut_after_full_segment", rx.receive(frames(ms[: hs + FULL_SEG], rng), [alice], challenge), "connection_closed", P0)
    cut = hs + FULL_SEG + 5 * CT_CHUNK + 30
    expect("exchange_cut_inside_segment_signed", rx.receive(frames(ms[:cut], rng), [alice], challenge), "connection_closed", P0)
    ha = len(fa.prefix())
    expect(
        "exchange_cut_inside_segment_anonymous",
        rx.receive(frames(ma[: ha + 69 * CT_CHUNK + 30], rng), [alice], challenge),
        "connection_closed",
        big[: 69 * CHUNK],
    )
    expect("exchange_cut_30_after_chunk_0_signed", rx.receive(frames(ms[: hs + CT_CHUNK + 30], rng), [alice], challenge), "connection_closed")
    expect("exchange_end_after_full_segment", rx.receive(frames(ms[: hs + 2 * FULL_SEG], rng) + END, [alice], challenge), "payload_failure", P1)
    expect("exchange_no_end_marker", rx.receive(frames(ms, rng), [alice], challenge), "connection_closed", P1)
    tms = flip(ms, hs + FULL_SEG + 3)
    expect("exchange_sender_verification_failure", rx.receive(frames(tms, rng) + END, [alice], challenge), "sender_verification_failure", P0)
    expect(
        "exchange_bad_framing_in_segment_1",
        rx.receive(frames(ms[: hs + FULL_SEG + 10], rng) + (MAX_FRAME_LEN + 1).to_bytes(4, "big"), [alice], challenge),
        "bad_framing",
        P0,
    )
    expect("exchange_abort_in_segment_1", rx.receive(frames(ms[: hs + FULL_SEG + 10], rng) + b"\xff" * 4, [alice], challenge), "abandoned", P0)
    one_frame = len(small).to_bytes(4, "big") + small
    check("exchange_frame_fits", len(small) <= MAX_FRAME_LEN)
    expect("exchange_one_frame", rx.receive(one_frame + END, [alice], challenge), "accepted", b"x" * 20000)
    exact = File(os.urandom(MAX_FRAME_LEN + 5000), [A], extensions=ext)
    me = exact.bytes()
    stream = MAX_FRAME_LEN.to_bytes(4, "big") + me[:MAX_FRAME_LEN] + frames(me[MAX_FRAME_LEN:], rng) + END
    expect("exchange_max_frame_len", rx.receive(stream, [alice], challenge), "accepted", exact.plaintext)
    expect("exchange_frame_too_long", rx.receive((MAX_FRAME_LEN + 1).to_bytes(4, "big") + me, [alice], challenge), "bad_framing")
    # A different challenge is refused before any chunk is read, even on a
    # stream that stops right after the commitment.
    other = os.urandom(32)
    expect("exchange_refused_challenge", rx.receive(frames(ms, rng) + END, [alice], other), "refused_by_policy")
    expect("exchange_refused_before_chunks", rx.receive(frames(ms[:hs], rng), [alice], other), "refused_by_policy")
    expect("exchange_refused_no_challenge", rx.receive(frames(File(b"x", [A], sender=sam).bytes(), rng) + END, [alice], challenge), "refused_by_policy")

    print("selftest-segments: %d passed, %d failed" % (PASSED, FAILED))
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
