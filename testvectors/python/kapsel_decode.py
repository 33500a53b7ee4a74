"""A second kapsel v1 decoder, written from format-spec/SPEC.md.

It uses only the Python standard library and the `cryptography` package:
ECDH, HKDF, HMAC, AES-256-GCM and ECDSA from `cryptography`, HPKE base mode
from `cryptography`'s HPKE module, and HPKE auth mode composed by hand from
the primitives as RFC 9180 specifies (the library offers base mode only).

`decode(data, identities, armored)` returns `(outcome, released)`: the outcome
class of SPEC section 7 (one of OUTCOMES) and the plaintext bytes a streaming
decoder released before it stopped. The input is in memory, but it is read
through sources that behave like a stream: the header parser asks for exactly
the bytes it needs, the armor is decoded line by line only as far as bytes are
asked for, a signed file's last 64 bytes are held back, and a chunk's
plaintext is released as soon as that chunk opened (SPEC 6.4, 6.5, 10).
`decode_source(src, identities, released, check)` is the same decode over any
source with that behaviour, with a hook for a receiver's policy; the live
exchange runner (run_exchange_vectors.py) feeds it the unframed segments.

Section numbers in comments refer to SPEC.md.
"""

import hashlib
import hmac as std_hmac

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as c_hmac
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    Prehashed,
    encode_dss_signature,
)
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

try:  # HPKE base mode from the library (cryptography >= 47).
    from cryptography.hazmat.primitives import hpke as c_hpke
except ImportError:  # pragma: no cover - then base mode is composed by hand too
    c_hpke = None

OUTCOMES = (
    "success",
    "not_kapsel",
    "unsupported",
    "malformed_header",
    "no_match",
    "header_auth_failure",
    "payload_failure",
    "armor_failure",
    "sender_verification_failure",
)

# Section 2 / 3: constants.
MAGIC = b"\x8bKAPSEL\x0a"
MIN_HEADER_LEN = 158
MAX_HEADER_LEN = 65536
MAX_RECIPIENTS = 256
MAX_STANZA_BODY_LEN = 1024
MAX_EXTENSIONS_LEN = 8192
MAX_CREATED_AT = 253402300799
P256_STANZA_TYPE = 0x0001
P256_STANZA_BODY_LEN = 117
EXTENSION_CRITICAL = 0x8000

# P-256 domain parameters (FIPS 186-5 / SEC 2).
P = 0xFFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFF
N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
A = P - 3
B = 0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B

# Section 5.1.
HPKE_INFO = b"kapsel/v1 file key"
KEM_SUITE_ID = b"KEM" + bytes([0x00, 0x10])
HPKE_SUITE_ID = b"HPKE" + bytes([0x00, 0x10, 0x00, 0x01, 0x00, 0x02])
MODE_BASE = 0x00
MODE_AUTH = 0x02

# Section 6.
SALT_LEN = 24
COMMITMENT_LEN = 32
CHUNK_PLAIN = 16384
CHUNK_CIPHER = 16400
TAG_LEN = 16
MAX_CHUNKS = 1 << 38
COBBLESTONE_LABEL = b"c2sp.org/chunked-encryption@v1+" + b"AEAD_AES_256_GCM" + b"\x00"
SIGNATURE_LABEL = b"kapsel/v1 signature" + b"\x00"
SIGNATURE_LEN = 64

# Section 10.
ARMOR_BEGIN = b"-----BEGIN KAPSEL ENCRYPTED FILE-----"
ARMOR_END = b"-----END KAPSEL ENCRYPTED FILE-----"
ARMOR_WHITESPACE = b" \t\r\n"
B64_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
B64_VALUE = {c: i for i, c in enumerate(B64_ALPHABET)}


class Failure(Exception):
    """A decode that ended in a class other than success."""

    def __init__(self, outcome, reason):
        assert outcome in OUTCOMES and outcome != "success"
        super().__init__(f"{outcome}: {reason}")
        self.outcome = outcome
        self.reason = reason


def fail(outcome, reason):
    raise Failure(outcome, reason)


# ---------------------------------------------------------------------------
# Identity strings (section 4.2): Bech32 (BIP 173).

BECH32_CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"


def _bech32_polymod(values):
    gen = [0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3]
    chk = 1
    for v in values:
        top = chk >> 25
        chk = (chk & 0x1FFFFFF) << 5 ^ v
        for i in range(5):
            chk ^= gen[i] if (top >> i) & 1 else 0
    return chk


def _bech32_hrp_expand(hrp):
    return [ord(x) >> 5 for x in hrp] + [0] + [ord(x) & 31 for x in hrp]


def bech32_decode(s, expected_hrp, length):
    """The payload of a Bech32 string (section 4.1 rules), or ValueError."""
    if s.lower() != s and s.upper() != s:
        raise ValueError("mixed case")
    s = s.lower()
    if any(ord(c) < 33 or ord(c) > 126 for c in s):
        raise ValueError("invalid character")
    pos = s.rfind("1")
    if pos < 1 or pos + 7 > len(s):
        raise ValueError("no separator or checksum")
    hrp, data = s[:pos], s[pos + 1 :]
    if hrp != expected_hrp.lower():
        raise ValueError("wrong human-readable part")
    try:
        values = [BECH32_CHARSET.index(c) for c in data]
    except ValueError:
        raise ValueError("character outside the Bech32 alphabet") from None
    if _bech32_polymod(_bech32_hrp_expand(hrp) + values) != 1:
        raise ValueError("bad checksum")
    acc, bits, out = 0, 0, []
    for v in values[:-6]:
        acc = (acc << 5) | v
        bits += 5
        while bits >= 8:
            bits -= 8
            out.append((acc >> bits) & 0xFF)
    if bits > 4 or (acc & ((1 << bits) - 1)) != 0:
        raise ValueError("bad padding")
    if len(out) != length:
        raise ValueError("wrong payload length")
    return bytes(out)


def parse_identity(s):
    """An identity string (section 4.2) as a cryptography private key."""
    d = int.from_bytes(bech32_decode(s.strip(), "kapsel-secret-key-", 32), "big")
    if not 1 <= d < N:
        raise ValueError("scalar out of range")
    return ec.derive_private_key(d, ec.SECP256R1())


def uncompressed(public_key):
    return public_key.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)


def key_hint(public_key):
    """Section 4.4: first 4 bytes of SHA-256 of the compressed point."""
    compressed = public_key.public_bytes(Encoding.X962, PublicFormat.CompressedPoint)
    return hashlib.sha256(compressed).digest()[:4]


def validate_point(b):
    """Section 3.7, last paragraph: a valid uncompressed point, or None."""
    if len(b) != 65 or b[0] != 0x04:
        return None
    x = int.from_bytes(b[1:33], "big")
    y = int.from_bytes(b[33:65], "big")
    if x >= P or y >= P:
        return None
    if (y * y - (x * x * x + A * x + B)) % P != 0:
        return None
    try:
        return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b)
    except ValueError:
        return None


# ---------------------------------------------------------------------------
# Input sources. read(n) returns n bytes, or fewer only at the true end of
# input (section 6.3 step 3).


class BytesSource:
    def __init__(self, data):
        self.data = data
        self.pos = 0

    def read(self, n):
        out = self.data[self.pos : self.pos + n]
        self.pos += len(out)
        return out


def b64_decode_line(line, last):
    """Strict, canonical Base64 of one body line (section 10)."""
    if len(line) % 4 != 0:
        fail("armor_failure", "body line length not a multiple of 4")
    out = bytearray()
    for q in range(0, len(line), 4):
        quad = line[q : q + 4]
        final_quad = q + 4 == len(line)
        pad = len(quad) - len(quad.rstrip(b"="))
        if pad and not (last and final_quad):
            fail("armor_failure", "'=' outside the end of the last body line")
        if pad > 2:
            fail("armor_failure", "too much padding")
        body = quad[: 4 - pad]
        if any(c not in B64_VALUE for c in body):
            fail("armor_failure", "character outside the Base64 alphabet")
        acc = 0
        for c in body:
            acc = (acc << 6) | B64_VALUE[c]
        if pad == 0:
            out += acc.to_bytes(3, "big")
        elif pad == 1:  # 18 bits: 2 bytes and 2 padding bits
            if acc & 0x3:
                fail("armor_failure", "non-zero padding bits")
            out += (acc >> 2).to_bytes(2, "big")
        else:  # 12 bits: 1 byte and 4 padding bits
            if acc & 0xF:
                fail("armor_failure", "non-zero padding bits")
            out += (acc >> 4).to_bytes(1, "big")
    return bytes(out)


class ArmorSource:
    """Section 10, decoded line by line as bytes are asked for."""

    def __init__(self, data):
        self.data = data
        self.pos = 0
        self.state = "begin"
        self.ending = None  # b"\n" or b"\r\n", fixed by the BEGIN line
        self.final_seen = False  # a line that only END may follow
        self.body_lines = 0
        self.out = bytearray()

    def _line(self):
        """The next line without its ending; fails if the input ends first."""
        end = self.data.find(b"\n", self.pos)
        if end < 0:
            fail("armor_failure", "input ends before the END line")
        line = self.data[self.pos : end]
        self.pos = end + 1
        ending = b"\n"
        if line.endswith(b"\r"):
            line, ending = line[:-1], b"\r\n"
        if b"\r" in line:
            fail("armor_failure", "CR inside a line")
        if self.ending is None:
            self.ending = ending
        elif ending != self.ending:
            fail("armor_failure", "mixed line endings")
        return line

    def _step(self):
        if self.state == "begin":
            while self.pos < len(self.data) and self.data[self.pos] in ARMOR_WHITESPACE:
                self.pos += 1
            if self.pos == len(self.data):
                fail("armor_failure", "no BEGIN line")
            if self._line() != ARMOR_BEGIN:
                fail("armor_failure", "the first non-blank line is not the BEGIN line")
            self.state = "body"
            return
        line = self._line()
        if line == ARMOR_END:
            if self.body_lines == 0:
                fail("armor_failure", "no body line")
            rest = self.data[self.pos :]
            if any(c not in ARMOR_WHITESPACE for c in rest):
                fail("armor_failure", "data after the END line")
            self.pos = len(self.data)
            self.state = "done"
            return
        if self.final_seen:
            fail("armor_failure", "a body line after a short or padded line")
        if not 1 <= len(line) <= 64:
            fail("armor_failure", "body line of %d characters" % len(line))
        # A line shorter than 64 characters, or one with padding, must be
        # the last body line.
        self.final_seen = len(line) < 64 or line.endswith(b"=")
        self.body_lines += 1
        self.out += b64_decode_line(line, self.final_seen)

    def read(self, n):
        while len(self.out) < n and self.state != "done":
            self._step()
        got = bytes(self.out[:n])
        del self.out[:n]
        return got


class SignedSource:
    """Section 6.5: holds back the last 64 bytes; at the end of input it
    verifies them as the signature before it reports the end."""

    def __init__(self, inner, header_bytes, sender_key):
        self.inner = inner
        self.key = sender_key
        self.transcript = hashlib.sha256(SIGNATURE_LABEL + header_bytes)
        self.buf = bytearray()
        self.at_end = False
        self.verified = False

    def read(self, n):
        if self.verified:
            return b""
        while not self.at_end and len(self.buf) < n + SIGNATURE_LEN:
            want = n + SIGNATURE_LEN - len(self.buf)
            got = self.inner.read(want)
            self.buf += got
            if len(got) < want:
                self.at_end = True
        if len(self.buf) >= n + SIGNATURE_LEN:
            out = bytes(self.buf[:n])
            del self.buf[:n]
            self.transcript.update(out)
            return out
        # The end of input is reached in this read: check the signature first.
        if len(self.buf) < SIGNATURE_LEN:
            fail("payload_failure", "file shorter than its signature (truncated)")
        rest = bytes(self.buf[:-SIGNATURE_LEN])
        signature = bytes(self.buf[-SIGNATURE_LEN:])
        self.transcript.update(rest)
        r = int.from_bytes(signature[:32], "big")
        s = int.from_bytes(signature[32:], "big")
        if not (1 <= r < N and 1 <= s < N):
            fail("sender_verification_failure", "r or s out of range")
        try:
            self.key.verify(
                encode_dss_signature(r, s),
                self.transcript.digest(),
                ec.ECDSA(Prehashed(hashes.SHA256())),
            )
        except InvalidSignature:
            fail("sender_verification_failure", "signature does not verify")
        self.buf = bytearray()
        self.verified = True
        return rest


# ---------------------------------------------------------------------------
# Header (section 3).


class Cursor:
    """The header body; reading past header_len is malformed (rule 10)."""

    def __init__(self, data):
        self.data = data
        self.pos = 0

    def take(self, n, what):
        if self.pos + n > len(self.data):
            fail("malformed_header", f"{what} runs past header_len")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def u8(self, what):
        return self.take(1, what)[0]

    def u16(self, what):
        return int.from_bytes(self.take(2, what), "big")

    def u64(self, what):
        return int.from_bytes(self.take(8, what), "big")


class Header:
    def __init__(self):
        self.bytes = b""
        self.created_at = 0
        self.serial = 0
        self.sender_key = None  # 65 bytes, or None for anonymous
        self.stanzas = []  # (hint, enc, wrapped_key) of type 0x0001 stanzas
        self.extensions = []  # (ext_type, ext_value) records, in header order


def read_header(src):
    """Section 3.7: the checks, in their order."""
    # Check 1: the magic, compared as far as bytes are available.
    magic = src.read(8)
    if magic != MAGIC[: len(magic)]:
        fail("not_kapsel", "wrong magic")
    if len(magic) < 8:
        fail("malformed_header", "truncated in the magic")
    # Check 2: version; nothing after it is interpreted if it is unknown.
    version = src.read(1)
    if len(version) < 1:
        fail("malformed_header", "truncated before the version")
    if version[0] != 0x01:
        fail("unsupported", "version %d" % version[0])
    # Check 3: suite.
    suite = src.read(2)
    if len(suite) < 2:
        fail("malformed_header", "truncated in the suite")
    if suite != b"\x00\x01":
        fail("unsupported", "suite 0x%s" % suite.hex())
    # Check 4: chunk size and header length (rules 1, 2).
    chunk = src.read(1)
    if len(chunk) < 1:
        fail("malformed_header", "truncated before chunk_size_log2")
    if chunk[0] != 14:
        fail("malformed_header", "chunk_size_log2 %d" % chunk[0])
    length = src.read(4)
    if len(length) < 4:
        fail("malformed_header", "truncated in header_len")
    header_len = int.from_bytes(length, "big")
    if not MIN_HEADER_LEN <= header_len <= MAX_HEADER_LEN:
        fail("malformed_header", "header_len %d" % header_len)
    # Check 5: the rest of the header, and not a byte more.
    rest = src.read(header_len - 16)
    if len(rest) < header_len - 16:
        fail("malformed_header", "truncated header")
    h = Header()
    h.bytes = magic + version + suite + chunk + length + rest
    # Check 6: the body, field by field.
    c = Cursor(rest)
    h.created_at = c.u64("created_at")
    if h.created_at > MAX_CREATED_AT:
        fail("malformed_header", "created_at out of range")
    h.serial = c.u64("serial")
    kind = c.u8("sender_kind")
    if kind == 0x01:
        key = c.take(65, "sender_key")
        if key[0] != 0x04:
            fail("malformed_header", "sender_key not uncompressed")
        h.sender_key = key
    elif kind != 0x00:
        fail("malformed_header", "sender_kind %d" % kind)
    count = c.u16("stanza_count")
    if count == 0 or count > MAX_RECIPIENTS:
        fail("malformed_header", "stanza_count %d" % count)
    seen = set()
    for _ in range(count):
        stanza_type = c.u16("stanza_type")
        body_len = c.u16("body_len")
        if body_len > MAX_STANZA_BODY_LEN:
            fail("malformed_header", "stanza body_len %d" % body_len)
        if stanza_type == P256_STANZA_TYPE and body_len != P256_STANZA_BODY_LEN:
            fail("malformed_header", "P-256 stanza body_len %d" % body_len)
        body = c.take(body_len, "stanza body")
        if stanza_type == P256_STANZA_TYPE:
            enc = body[4:69]
            if enc[0] != 0x04:
                fail("malformed_header", "enc not uncompressed")
            h.stanzas.append((body[0:4], enc, body[69:117]))
        raw = (stanza_type, body)
        if raw in seen:
            fail("malformed_header", "duplicate stanza")
        seen.add(raw)
    ext_len = c.u16("extensions_len")
    if ext_len > MAX_EXTENSIONS_LEN:
        fail("malformed_header", "extensions_len %d" % ext_len)
    area = Cursor(c.take(ext_len, "extension area"))
    previous = None
    while area.pos < len(area.data):
        ext_type = area.u16("extension type")
        if previous is not None and ext_type <= previous:
            fail("malformed_header", "extension types not ascending")
        if ext_type & EXTENSION_CRITICAL:
            fail("unsupported", "critical extension 0x%04x" % ext_type)
        previous = ext_type
        ext_value_len = area.u16("extension length")
        h.extensions.append((ext_type, area.take(ext_value_len, "extension value")))
    if c.pos != len(rest):
        fail("malformed_header", "bytes between the extension area and header_len")
    return h


# ---------------------------------------------------------------------------
# HPKE (section 5), RFC 9180 DHKEM(P-256, HKDF-SHA256), HKDF-SHA256,
# AES-256-GCM.


def hkdf_extract(salt, ikm):
    mac = c_hmac.HMAC(salt if salt else b"\x00" * 32, hashes.SHA256())
    mac.update(ikm)
    return mac.finalize()


def hkdf_expand(prk, info, length, algorithm=None):
    return HKDFExpand(algorithm or hashes.SHA256(), length, info).derive(prk)


def labeled_extract(suite_id, salt, label, ikm):
    return hkdf_extract(salt, b"HPKE-v1" + suite_id + label + ikm)


def labeled_expand(suite_id, prk, label, info, length):
    labeled_info = length.to_bytes(2, "big") + b"HPKE-v1" + suite_id + label + info
    return hkdf_expand(prk, labeled_info, length)


def dh(private_key, public_key):
    return private_key.exchange(ec.ECDH(), public_key)


def auth_decap(enc, sk_r, pk_e, pk_s):
    """AuthDecap(enc, skR, pkS), or Decap(enc, skR) when pk_s is None."""
    dh_bytes = dh(sk_r, pk_e)
    kem_context = enc + uncompressed(sk_r.public_key())
    if pk_s is not None:
        dh_bytes += dh(sk_r, pk_s)
        kem_context += uncompressed(pk_s)
    eae_prk = labeled_extract(KEM_SUITE_ID, b"", b"eae_prk", dh_bytes)
    return labeled_expand(KEM_SUITE_ID, eae_prk, b"shared_secret", kem_context, 32)


def key_schedule(mode, shared_secret, info):
    psk_id_hash = labeled_extract(HPKE_SUITE_ID, b"", b"psk_id_hash", b"")
    info_hash = labeled_extract(HPKE_SUITE_ID, b"", b"info_hash", info)
    context = bytes([mode]) + psk_id_hash + info_hash
    secret = labeled_extract(HPKE_SUITE_ID, shared_secret, b"secret", b"")
    key = labeled_expand(HPKE_SUITE_ID, secret, b"key", context, 32)
    base_nonce = labeled_expand(HPKE_SUITE_ID, secret, b"base_nonce", context, 12)
    return key, base_nonce


def hpke_open_by_hand(enc, sk_r, pk_s, ciphertext, info=HPKE_INFO, aad=b""):
    """Single-shot Open (sequence number 0) in base or auth mode."""
    pk_e = validate_point(enc)
    if pk_e is None:
        return None
    shared = auth_decap(enc, sk_r, pk_e, pk_s)
    key, nonce = key_schedule(MODE_BASE if pk_s is None else MODE_AUTH, shared, info)
    try:
        return AESGCM(key).decrypt(nonce, ciphertext, aad)
    except InvalidTag:
        return None


def hpke_open_base_library(enc, sk_r, ciphertext):
    suite = c_hpke.Suite(c_hpke.KEM.P256, c_hpke.KDF.HKDF_SHA256, c_hpke.AEAD.AES_256_GCM)
    try:
        return suite.decrypt(enc + ciphertext, sk_r, HPKE_INFO)
    except Exception:  # the library raises on any failure to open
        return None


def open_stanza(enc, wrapped_key, sk_r, pk_s):
    if pk_s is None and c_hpke is not None:
        return hpke_open_base_library(enc, sk_r, wrapped_key)
    return hpke_open_by_hand(enc, sk_r, pk_s, wrapped_key)


def unwrap_file_key(header, identities, sender):
    """Section 5.3 steps 2 and 3."""
    addressed = False
    for sk in identities:
        own = key_hint(sk.public_key())
        hinted = [s for s in header.stanzas if s[0] != b"\x00" * 4 and s[0] == own]
        others = [s for s in header.stanzas if not (s[0] != b"\x00" * 4 and s[0] == own)]
        if hinted:
            addressed = True
        for _hint, enc, wrapped in hinted + others:
            file_key = open_stanza(enc, wrapped, sk, sender)
            if file_key is not None:
                return file_key
    if addressed:
        fail("header_auth_failure", "a stanza hinted for an identity does not open")
    fail("no_match", "no identity opens any stanza")


# ---------------------------------------------------------------------------
# Payload (section 6) and the whole decode.


def cobblestone(file_key, salt, context):
    okm = hkdf_expand(file_key, COBBLESTONE_LABEL + salt + context, 76, hashes.SHA512())
    return okm[0:32], okm[32:44], okm[44:76]


def decode(data, identities, armored):
    """(outcome, released plaintext) for one input."""
    released = bytearray()
    try:
        src = ArmorSource(data) if armored else BytesSource(data)
        decode_source(src, identities, released)
        return "success", bytes(released)
    except Failure as f:
        return f.outcome, bytes(released)


def decode_source(src, identities, released, check=None):
    """Decodes the file that `src` yields (its read(n) returns fewer than n
    bytes only at the true end of input) and returns (header, file_key) on
    success; any other class raises Failure.

    The plaintext of each chunk is appended to `released` (a bytearray) as
    soon as the chunk opened, so the caller keeps what was released however
    the decode ends, including by an exception the source itself raises
    (which propagates unchanged). `check(header, file_key)`, if given, runs
    after the commitment check (section 6.3 step 2) and before any chunk is
    decrypted: a receiver's policy (sections 12.1, 13.4) raises there to
    refuse the file.
    """
    header = read_header(src)
    # Step 7 of 3.7: points, sender key first, then every enc in order.
    sender = None
    if header.sender_key is not None:
        sender = validate_point(header.sender_key)
        if sender is None:
            fail("malformed_header", "sender_key is not a valid point")
    for _hint, enc, _wrapped in header.stanzas:
        if validate_point(enc) is None:
            fail("malformed_header", "enc is not a valid point")
    file_key = unwrap_file_key(header, identities, sender)
    if sender is not None:
        src = SignedSource(src, header.bytes, sender)
    prefix = src.read(SALT_LEN + COMMITMENT_LEN)
    if len(prefix) < SALT_LEN + COMMITMENT_LEN:
        fail("payload_failure", "truncated in the salt or commitment")
    key, base_nonce, commitment = cobblestone(file_key, prefix[:SALT_LEN], header.bytes)
    if not std_hmac.compare_digest(commitment, prefix[SALT_LEN:]):
        fail("header_auth_failure", "commitment mismatch")
    if check is not None:
        check(header, file_key)
    aead = AESGCM(key)
    index = 0
    while True:
        piece = src.read(CHUNK_CIPHER)
        if len(piece) < TAG_LEN:
            fail("payload_failure", "chunk %d shorter than a tag" % index)
        if index >= MAX_CHUNKS:
            fail("payload_failure", "too many chunks")
        nonce = bytes(a ^ b for a, b in zip(base_nonce, index.to_bytes(12, "big")))
        try:
            plaintext = aead.decrypt(nonce, piece, b"")
        except InvalidTag:
            fail("payload_failure", "chunk %d does not open" % index)
        released += plaintext
        index += 1
        if len(piece) < CHUNK_CIPHER:
            return header, file_key


# ---------------------------------------------------------------------------
# Self-tests of the hand-composed HPKE.


def selftest_hpke():
    """The hand-made base mode opens what the library's base mode sealed."""
    if c_hpke is None:
        return
    suite = c_hpke.Suite(c_hpke.KEM.P256, c_hpke.KDF.HKDF_SHA256, c_hpke.AEAD.AES_256_GCM)
    sk = ec.generate_private_key(ec.SECP256R1())
    message = b"k" * 32
    sealed = suite.encrypt(message, sk.public_key(), HPKE_INFO)
    opened = hpke_open_by_hand(sealed[:65], sk, None, sealed[65:])
    if opened != message:
        raise AssertionError("hand-composed HPKE base mode disagrees with the library")


def selftest_rfc9180(vectors):
    """Modes 0 and 2 of the RFC 9180 vectors for this suite: the hand-made
    decap and key schedule, and the first encryption. Returns the count."""
    checked = 0
    for v in vectors:
        if (v["kem_id"], v["kdf_id"], v["aead_id"]) != (0x10, 0x01, 0x02):
            continue
        if v["mode"] not in (MODE_BASE, MODE_AUTH):
            continue
        sk_r = ec.derive_private_key(int(v["skRm"], 16), ec.SECP256R1())
        enc = bytes.fromhex(v["enc"])
        pk_s = validate_point(bytes.fromhex(v["pkSm"])) if v["mode"] == MODE_AUTH else None
        shared = auth_decap(enc, sk_r, validate_point(enc), pk_s)
        if shared.hex() != v["shared_secret"]:
            raise AssertionError("RFC 9180 shared_secret mismatch (mode %d)" % v["mode"])
        key, nonce = key_schedule(v["mode"], shared, bytes.fromhex(v["info"]))
        if key.hex() != v["key"] or nonce.hex() != v["base_nonce"]:
            raise AssertionError("RFC 9180 key schedule mismatch (mode %d)" % v["mode"])
        first = v["encryptions"][0]
        opened = hpke_open_by_hand(
            enc, sk_r, pk_s, bytes.fromhex(first["ct"]), bytes.fromhex(v["info"]), bytes.fromhex(first["aad"])
        )
        if opened is None or opened.hex() != first["pt"]:
            raise AssertionError("RFC 9180 first encryption does not open (mode %d)" % v["mode"])
        checked += 1
    return checked
