"""A second kapsel decoder (format versions 1 and 2), written from
format-spec/SPEC.md.

Version 2 (SPEC 14) adds hybrid post-quantum stanzas (MLKEM768-P256: ML-KEM
from `cryptography`'s mlkem module, SHAKE256 and SHA3-256 from hashlib) and
passphrase stanzas (Argon2id from `cryptography`'s argon2 KDF).

It uses only the Python standard library and the `cryptography` package:
ECDH, HKDF, HMAC, AES-256-GCM and ECDSA from `cryptography`, and HPKE base
mode (the only mode of the format, SPEC 5.1) from `cryptography`'s HPKE
module, with a composition by hand from the primitives as RFC 9180 specifies
as a fallback and a cross-check.

`decode(data, identities, armored)` returns `(outcome, released)`: the outcome
class of SPEC section 7 (one of OUTCOMES) and the plaintext bytes a streaming
decoder released before it stopped. The input is in memory, but it is read
through sources that behave like a stream: the header parser asks for exactly
the bytes it needs, the armor is decoded line by line only as far as bytes are
asked for, the salt and commitment are read only when a stanza opened (5.3),
an anonymous file's chunk is released as soon as it opened, and a signed
file's segment only after its signature verified and all its chunks opened
(SPEC 6.4, 6.5, 10). `decode_source(src, identities, released, check,
reserve)` is the same decode over any source with that behaviour, with hooks
for a receiver's policy; the live exchange runner (run_exchange_vectors.py)
feeds it the unframed frames of phase 2.

`decode_range(data, identities, offset, length)` is a random-access decoder
(SPEC 6.6) over `RandomAccess` sources, which read each signed segment once
and verify it before they decrypt it.

Section numbers in comments refer to SPEC.md.
"""

import hashlib
import hmac as std_hmac

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as c_hmac
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand
from cryptography.hazmat.primitives.asymmetric import mlkem
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id
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
# Section 14: version 2.
VERSION_1 = 0x01
VERSION_2 = 0x02
MIN_HEADER_LEN_V2 = 114
MAX_HEADER_LEN_V2 = 327680
MAX_STANZA_BODY_LEN_V2 = 2048
HYBRID_STANZA_TYPE = 0x0002
HYBRID_STANZA_BODY_LEN = 1205
MLKEM_CT_LEN = 1088
MLKEM_EK_LEN = 1184
PASSPHRASE_STANZA_TYPE = 0x0003
PASSPHRASE_STANZA_BODY_LEN = 73
HYBRID_KEM_ID = 0x0050
HYBRID_LABEL = b"MLKEM768-P256"
PASSPHRASE_SALT_LABEL = b"kapsel/v1 passphrase" + b"\x00"
# The decoder's work limit (14.6): 1 GiB of memory, 16 passes.
MAX_PASSPHRASE_MEMORY_KIB = 1024 * 1024
MAX_PASSPHRASE_PASSES = 16
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
MODE_BASE = 0x00  # the only mode (5.1)

# Section 4.4.
HINT_LABEL = b"kapsel/v1 hint" + b"\x00"
ZERO_HINT = b"\x00" * 4

# Section 6.
SALT_LEN = 24
COMMITMENT_LEN = 32
CHUNK_PLAIN = 16384
CHUNK_CIPHER = 16400
TAG_LEN = 16
MAX_CHUNKS = 1 << 38
PAYLOAD_PREFIX_LEN = SALT_LEN + COMMITMENT_LEN  # 56
COBBLESTONE_LABEL = b"c2sp.org/chunked-encryption@v1+" + b"AEAD_AES_256_GCM" + b"\x00"

# Section 6.5: signed segments.
SEGMENT_LABEL = b"kapsel/v1 segment" + b"\x00"  # 18 bytes
SIGNATURE_LEN = 64
SEGMENT_CHUNKS = 64
SEGMENT_PLAIN = SEGMENT_CHUNKS * CHUNK_PLAIN  # 1048576
FULL_SEGMENT_LEN = SEGMENT_CHUNKS * CHUNK_CIPHER + SIGNATURE_LEN  # 1049664
MIN_FINAL_SEGMENT_LEN = TAG_LEN + SIGNATURE_LEN  # 80: an empty final chunk and the signature
SIGNED_LEN = 147
HALF_N = (N - 1) // 2  # the largest low s

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


class HybridIdentity:
    """A hybrid MLKEM768-P256 private key (section 14.3): the 32-byte seed
    expanded as expandKey does."""

    def __init__(self, seed):
        full = hashlib.shake_256(seed).digest(64 + 128)
        self.mlkem = mlkem.MLKEM768PrivateKey.from_seed_bytes(full[:64])
        for i in range(64, 192, 32):
            d = int.from_bytes(full[i : i + 32], "big")
            if 1 <= d < N:
                break
        else:
            raise ValueError("no P-256 scalar in the seed")
        self.p256 = ec.derive_private_key(d, ec.SECP256R1())
        self.public = self.mlkem.public_key().public_bytes_raw() + uncompressed(self.p256.public_key())


class PassphraseKey:
    """A passphrase to try against a passphrase stanza (section 14.5)."""

    def __init__(self, passphrase):
        self.passphrase = passphrase


def bech32m_decode(s, expected_hrp, length):
    """Bech32m (BIP 350) with no length limit (section 14.3), or ValueError."""
    if s.lower() != s and s.upper() != s:
        raise ValueError("mixed case")
    s = s.lower()
    pos = s.rfind("1")
    if pos < 1 or pos + 7 > len(s) or s[:pos] != expected_hrp:
        raise ValueError("wrong human-readable part")
    try:
        values = [BECH32_CHARSET.index(c) for c in s[pos + 1 :]]
    except ValueError:
        raise ValueError("character outside the Bech32 alphabet") from None
    if _bech32_polymod(_bech32_hrp_expand(s[:pos]) + values) != 0x2BC830A3:
        raise ValueError("bad checksum")
    acc, bits, out = 0, 0, []
    for v in values[:-6]:
        acc = (acc << 5) | v
        bits += 5
        while bits >= 8:
            bits -= 8
            out.append((acc >> bits) & 0xFF)
    if bits > 4 or (acc & ((1 << bits) - 1)) != 0 or len(out) != length:
        raise ValueError("bad padding or length")
    return bytes(out)


def parse_identity(s):
    """An identity string (sections 4.2 and 14.3): a cryptography P-256
    private key, or a HybridIdentity."""
    if s.strip().lower().startswith("kapsel-pq-secret-key-1"):
        return HybridIdentity(bech32m_decode(s.strip(), "kapsel-pq-secret-key-", 32))
    d = int.from_bytes(bech32_decode(s.strip(), "kapsel-secret-key-", 32), "big")
    if not 1 <= d < N:
        raise ValueError("scalar out of range")
    return ec.derive_private_key(d, ec.SECP256R1())


def uncompressed(public_key):
    return public_key.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)


def compressed(public_key):
    return public_key.public_bytes(Encoding.X962, PublicFormat.CompressedPoint)


def stanza_hint(compressed_pk, enc):
    """Section 4.4: the hint of the stanza with `enc` for the recipient
    whose compressed point is `compressed_pk`."""
    return hashlib.sha256(HINT_LABEL + compressed_pk + enc).digest()[:4]


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


class RandomAccess:
    """A file that a random-access decoder (section 6.6) reads at offsets:
    `size` is its length, `read_at(offset, n)` returns the n bytes at
    `offset` (fewer only past the end). `reads` records every (offset, n)
    asked for, so a test can check that no byte was read twice."""

    def __init__(self, data):
        self.data = data
        self.size = len(data)
        self.reads = []

    def read_at(self, offset, n):
        self.reads.append((offset, n))
        return self.data[offset : offset + n]


class SequentialView:
    """A RandomAccess file read from the start as a stream source, for the
    header and the payload prefix of a random-access decode."""

    def __init__(self, ra):
        self.ra = ra
        self.pos = 0

    def read(self, n):
        out = self.ra.read_at(self.pos, n)
        self.pos += len(out)
        return out


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
        self.version = 1
        self.stanzas = []  # (hint, enc, wrapped_key) of type 0x0001 stanzas
        self.hybrid = []  # (hint, enc, wrapped_key) of type 0x0002 stanzas
        self.passphrase = None  # (salt, memory_kib, passes, lanes, wrapped_key)
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
    if version[0] not in (VERSION_1, VERSION_2):
        fail("unsupported", "version %d" % version[0])
    v2 = version[0] == VERSION_2
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
    lo, hi = (MIN_HEADER_LEN_V2, MAX_HEADER_LEN_V2) if v2 else (MIN_HEADER_LEN, MAX_HEADER_LEN)
    if not lo <= header_len <= hi:
        fail("malformed_header", "header_len %d" % header_len)
    # Check 5: the rest of the header, and not a byte more.
    rest = src.read(header_len - 16)
    if len(rest) < header_len - 16:
        fail("malformed_header", "truncated header")
    h = Header()
    h.version = version[0]
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
        if body_len > (MAX_STANZA_BODY_LEN_V2 if v2 else MAX_STANZA_BODY_LEN):
            fail("malformed_header", "stanza body_len %d" % body_len)
        known = {P256_STANZA_TYPE: P256_STANZA_BODY_LEN}
        if v2:
            known[HYBRID_STANZA_TYPE] = HYBRID_STANZA_BODY_LEN
            known[PASSPHRASE_STANZA_TYPE] = PASSPHRASE_STANZA_BODY_LEN
        if stanza_type in known and body_len != known[stanza_type]:
            fail("malformed_header", "stanza type %d body_len %d" % (stanza_type, body_len))
        body = c.take(body_len, "stanza body")
        if stanza_type == P256_STANZA_TYPE:
            enc = body[4:69]
            if enc[0] != 0x04:
                fail("malformed_header", "enc not uncompressed")
            h.stanzas.append((body[0:4], enc, body[69:117]))
        elif v2 and stanza_type == HYBRID_STANZA_TYPE:
            enc = body[4:1157]
            if enc[MLKEM_CT_LEN] != 0x04:
                fail("malformed_header", "hybrid enc point not uncompressed")
            h.hybrid.append((body[0:4], enc, body[1157:1205]))
        elif v2 and stanza_type == PASSPHRASE_STANZA_TYPE:
            if count != 1:
                fail("malformed_header", "passphrase stanza not alone")
            memory = int.from_bytes(body[16:20], "big")
            passes = int.from_bytes(body[20:24], "big")
            lanes = body[24]
            if passes == 0 or lanes == 0 or memory < 8 * lanes:
                fail("malformed_header", "invalid Argon2id parameters")
            h.passphrase = (body[0:16], memory, passes, lanes, body[25:73])
        raw = (stanza_type, body)
        if raw in seen:
            fail("malformed_header", "duplicate stanza")
        seen.add(raw)
    if v2 and not h.hybrid and h.passphrase is None:
        fail("malformed_header", "version 2 without a version 2 stanza")
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
# HPKE (section 5): RFC 9180 DHKEM(P-256, HKDF-SHA256), HKDF-SHA256,
# AES-256-GCM, base mode only (5.1).


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


def decap(enc, sk_r, pk_e):
    """Decap(enc, skR) of DHKEM(P-256, HKDF-SHA256)."""
    dh_bytes = dh(sk_r, pk_e)
    kem_context = enc + uncompressed(sk_r.public_key())
    eae_prk = labeled_extract(KEM_SUITE_ID, b"", b"eae_prk", dh_bytes)
    return labeled_expand(KEM_SUITE_ID, eae_prk, b"shared_secret", kem_context, 32)


def key_schedule(mode, shared_secret, info, suite_id=HPKE_SUITE_ID):
    """KeySchedule with the default (empty) PSK and PSK id."""
    psk_id_hash = labeled_extract(suite_id, b"", b"psk_id_hash", b"")
    info_hash = labeled_extract(suite_id, b"", b"info_hash", info)
    context = bytes([mode]) + psk_id_hash + info_hash
    secret = labeled_extract(suite_id, shared_secret, b"secret", b"")
    key = labeled_expand(suite_id, secret, b"key", context, 32)
    base_nonce = labeled_expand(suite_id, secret, b"base_nonce", context, 12)
    return key, base_nonce


HYBRID_SUITE_ID = b"HPKE" + bytes([0x00, 0x50, 0x00, 0x01, 0x00, 0x02])


def hybrid_hint(public, enc):
    """Section 14.4: the hint of a hybrid stanza."""
    return hashlib.sha256(HINT_LABEL + public + enc).digest()[:4]


def open_hybrid_stanza(enc, wrapped_key, ident):
    """Section 14.2: the candidate key a type 0x0002 stanza wraps, or None."""
    ct_t = enc[MLKEM_CT_LEN:]
    pk_e = validate_point(ct_t)
    if pk_e is None:
        return None
    ss_pq = ident.mlkem.decapsulate(enc[:MLKEM_CT_LEN])
    ss_t = dh(ident.p256, pk_e)
    ek_t = ident.public[MLKEM_EK_LEN:]
    ss = hashlib.sha3_256(ss_pq + ss_t + ct_t + ek_t + HYBRID_LABEL).digest()
    key, nonce = key_schedule(MODE_BASE, ss, HPKE_INFO, HYBRID_SUITE_ID)
    try:
        return AESGCM(key).decrypt(nonce, wrapped_key, b"")
    except InvalidTag:
        return None


def open_passphrase_stanza(stanza, passphrase):
    """Section 14.5: the file key, or None (wrong passphrase or damage)."""
    salt, memory, passes, lanes, wrapped = stanza
    kdf = Argon2id(
        salt=PASSPHRASE_SALT_LABEL + salt,
        length=32,
        iterations=passes,
        lanes=lanes,
        memory_cost=memory,
    )
    key = kdf.derive(passphrase)
    try:
        return AESGCM(key).decrypt(b"\x00" * 12, wrapped, b"")
    except InvalidTag:
        return None


def hpke_open_by_hand(enc, sk_r, ciphertext, info=HPKE_INFO, aad=b""):
    """SetupBaseR then a single-shot Open (sequence number 0), or None."""
    pk_e = validate_point(enc)
    if pk_e is None:
        return None
    key, nonce = key_schedule(MODE_BASE, decap(enc, sk_r, pk_e), info)
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


def open_stanza(enc, wrapped_key, sk_r):
    """The candidate key a type 0x0001 stanza wraps for `sk_r`, or None."""
    if c_hpke is not None:
        return hpke_open_base_library(enc, sk_r, wrapped_key)
    return hpke_open_by_hand(enc, sk_r, wrapped_key)


# ---------------------------------------------------------------------------
# Stanza trial (section 5.3) and the payload key schedule (6.1).


def cobblestone(file_key, salt, context):
    okm = hkdf_expand(file_key, COBBLESTONE_LABEL + salt + context, 76, hashes.SHA512())
    return okm[0:32], okm[32:44], okm[44:76]


class PayloadKeys:
    """The file key that passed the commitment, and what it derives."""

    def __init__(self, file_key, salt, commitment, key, base_nonce):
        self.file_key = file_key
        self.salt = salt
        self.commitment = commitment
        self.key = key
        self.base_nonce = base_nonce
        self.aead = AESGCM(key)


def validate_points(header):
    """Section 3.7, last paragraph (5.3 step 1): the sender key first, then
    every enc in header order. Returns the sender's public key or None."""
    sender = None
    if header.sender_key is not None:
        sender = validate_point(header.sender_key)
        if sender is None:
            fail("malformed_header", "sender_key is not a valid point")
    for _hint, enc, _wrapped in header.stanzas:
        if validate_point(enc) is None:
            fail("malformed_header", "enc is not a valid point")
    for _hint, enc, _wrapped in header.hybrid:
        if validate_point(enc[MLKEM_CT_LEN:]) is None:
            fail("malformed_header", "hybrid enc point is not a valid point")
    return sender


def read_payload_prefix(src):
    """Section 6.3 step 1: salt and commitment."""
    prefix = src.read(PAYLOAD_PREFIX_LEN)
    if len(prefix) < PAYLOAD_PREFIX_LEN:
        fail("payload_failure", "truncated in the salt or commitment")
    return prefix


def hinted_first(stanzas, hint_of):
    """The stanzas with the ones whose non-zero hint matches ``hint_of(enc)``
    first (SPEC 5.3: a decoder tries those first), and whether there were any."""
    hinted, others = [], []
    for stanza in stanzas:
        hint, enc, _wrapped = stanza
        if hint != ZERO_HINT and hint == hint_of(enc):
            hinted.append(stanza)
        else:
            others.append(stanza)
    return hinted + others, bool(hinted)


def find_file_key(header, identities, read_prefix):
    """Section 5.3 steps 2 and 3 with the commitment check of 6.3 step 2.

    `read_prefix()` returns the 56 bytes of salt and commitment or raises
    payload failure (truncated); it is called once, when the first stanza
    opens, and never if none does. A key that opens a stanza but fails the
    commitment does not end the search. Returns PayloadKeys."""
    prefix = None
    judged = {}  # candidate key -> (key, base_nonce) if it passed, else None
    opened = False  # some stanza opened (to a key that failed)
    addressed = False  # some stanza's hint matched an identity

    def judge(candidate):
        nonlocal prefix
        if prefix is None:
            prefix = read_prefix()  # step 2.1
        salt, commitment = prefix[:SALT_LEN], prefix[SALT_LEN:]
        if candidate not in judged:  # step 2.2, once per candidate key
            key, base_nonce, expected = cobblestone(candidate, salt, header.bytes)
            ok = std_hmac.compare_digest(expected, commitment)
            judged[candidate] = (key, base_nonce) if ok else None
        if judged[candidate] is None:
            return None
        key, base_nonce = judged[candidate]
        return PayloadKeys(candidate, salt, commitment, key, base_nonce)

    if header.passphrase is not None:  # section 14.6
        _salt, memory, passes, _lanes, _wrapped = header.passphrase
        if memory > MAX_PASSPHRASE_MEMORY_KIB or passes > MAX_PASSPHRASE_PASSES:
            fail("unsupported", "passphrase work above the limit")
        phrases = [k for k in identities if isinstance(k, PassphraseKey)]
        if not phrases:
            fail("no_match", "a passphrase file and no passphrase")
        candidate = open_passphrase_stanza(header.passphrase, phrases[0].passphrase)
        if candidate is None:
            fail("no_match", "wrong passphrase")
        found = judge(candidate)
        if found is None:
            fail("header_auth_failure", "the passphrase opens a key that fails the commitment")
        return found
    for ident in [k for k in identities if isinstance(k, HybridIdentity)]:
        ordered, hinted = hinted_first(header.hybrid, lambda enc: hybrid_hint(ident.public, enc))
        addressed |= hinted
        for _hint, enc, wrapped in ordered:
            candidate = open_hybrid_stanza(enc, wrapped, ident)
            if candidate is None:
                continue
            opened = True
            found = judge(candidate)
            if found is not None:
                return found
    for sk in [k for k in identities if isinstance(k, ec.EllipticCurvePrivateKey)]:
        own = compressed(sk.public_key())
        ordered, hinted = hinted_first(header.stanzas, lambda enc: stanza_hint(own, enc))
        addressed |= hinted
        for _hint, enc, wrapped in ordered:
            candidate = open_stanza(enc, wrapped, sk)
            if candidate is None:
                continue
            opened = True
            if prefix is None:
                prefix = read_prefix()  # step 2.1
            salt, commitment = prefix[:SALT_LEN], prefix[SALT_LEN:]
            if candidate not in judged:  # step 2.2, once per candidate key
                key, base_nonce, expected = cobblestone(candidate, salt, header.bytes)
                ok = std_hmac.compare_digest(expected, commitment)
                judged[candidate] = (key, base_nonce) if ok else None
            if judged[candidate] is not None:
                key, base_nonce = judged[candidate]
                return PayloadKeys(candidate, salt, commitment, key, base_nonce)
    # Step 3.
    if opened:
        fail("header_auth_failure", "no key that opened a stanza passes the commitment")
    if addressed:
        fail("header_auth_failure", "a stanza hinted for an identity does not open")
    fail("no_match", "no identity opens any stanza")


# ---------------------------------------------------------------------------
# Payload (sections 6.3 to 6.6) and the whole decode.


def open_chunk(payload, index, piece):
    """Chunk `index` (section 6.2 step 4), or payload failure."""
    if index >= MAX_CHUNKS:
        fail("payload_failure", "too many chunks")
    nonce = bytes(a ^ b for a, b in zip(payload.base_nonce, index.to_bytes(12, "big")))
    try:
        return payload.aead.decrypt(nonce, piece, b"")
    except InvalidTag:
        fail("payload_failure", "chunk %d does not open" % index)


def signed_message(header, payload, j, final, chunk_bytes):
    """Section 6.5: signed_j, 147 bytes."""
    message = (
        SEGMENT_LABEL
        + hashlib.sha256(header.bytes).digest()
        + payload.salt
        + payload.commitment
        + j.to_bytes(8, "big")
        + (b"\x01" if final else b"\x00")
        + hashlib.sha256(chunk_bytes).digest()
    )
    assert len(message) == SIGNED_LEN
    return message


def verify_segment(sender, message, signature, j):
    """Section 6.5 step 3: a low-s ECDSA P-256 SHA-256 signature r || s."""
    r = int.from_bytes(signature[:32], "big")
    s = int.from_bytes(signature[32:], "big")
    if not (1 <= r <= N - 1 and 1 <= s <= N - 1):
        fail("sender_verification_failure", "segment %d: r or s out of range" % j)
    if s > HALF_N:
        fail("sender_verification_failure", "segment %d: high s" % j)
    try:
        sender.verify(encode_dss_signature(r, s), message, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        fail("sender_verification_failure", "segment %d: signature does not verify" % j)


def open_segment(header, sender, payload, j, data, final):
    """Section 6.5 steps 2 (after the length), 3 and 4: the plaintext of
    segment `j` from its bytes `data` (chunk bytes || signature), all or
    nothing."""
    chunk_bytes, signature = data[:-SIGNATURE_LEN], data[-SIGNATURE_LEN:]
    verify_segment(sender, signed_message(header, payload, j, final, chunk_bytes), signature, j)
    full, last = divmod(len(chunk_bytes), CHUNK_CIPHER)
    if final:
        # The last piece holds 16 to 16399 bytes; a multiple of 16400 has
        # no short final chunk (its last piece is full, or empty).
        if last < TAG_LEN:
            fail("payload_failure", "segment %d: final chunk shorter than a tag (truncated)" % j)
        pieces = [chunk_bytes[k * CHUNK_CIPHER : (k + 1) * CHUNK_CIPHER] for k in range(full)]
        pieces.append(chunk_bytes[full * CHUNK_CIPHER :])
    else:
        assert full == SEGMENT_CHUNKS and last == 0
        pieces = [chunk_bytes[k * CHUNK_CIPHER : (k + 1) * CHUNK_CIPHER] for k in range(full)]
    out = bytearray()
    for k, piece in enumerate(pieces):
        out += open_chunk(payload, SEGMENT_CHUNKS * j + k, piece)
    return bytes(out)


class Release:
    """Appends released plaintext to `released`; right before the first
    release (even of zero bytes) it calls `reserve(header, file_key)`, the
    moment of SPEC 12.1 check 3."""

    def __init__(self, released, reserve, header, file_key):
        self.released = released
        self.reserve = reserve
        self.header = header
        self.file_key = file_key
        self.first = True

    def __call__(self, plaintext):
        if self.first:
            self.first = False
            if self.reserve is not None:
                self.reserve(self.header, self.file_key)
        self.released += plaintext


def decode_anonymous_body(src, payload, release):
    """Section 6.3 step 3, anonymous file: each chunk released as it opens."""
    index = 0
    while True:
        piece = src.read(CHUNK_CIPHER)
        if len(piece) < TAG_LEN:
            fail("payload_failure", "chunk %d shorter than a tag (truncated)" % index)
        release(open_chunk(payload, index, piece))
        index += 1
        if len(piece) < CHUNK_CIPHER:
            return


def decode_signed_body(src, header, sender, payload, release):
    """Section 6.5, decoding a signed file: each segment released after its
    signature verified and all its chunks opened."""
    j = 0
    while True:
        data = src.read(FULL_SEGMENT_LEN)  # step 1
        final = len(data) < FULL_SEGMENT_LEN  # step 2
        if final and len(data) < MIN_FINAL_SEGMENT_LEN:
            fail("payload_failure", "segment %d: %d bytes, shorter than a final segment (truncated)" % (j, len(data)))
        release(open_segment(header, sender, payload, j, data, final))  # steps 3 to 5
        if final:
            return
        j += 1


def decode(data, identities, armored):
    """(outcome, released plaintext) for one input."""
    released = bytearray()
    try:
        src = ArmorSource(data) if armored else BytesSource(data)
        decode_source(src, identities, released)
        return "success", bytes(released)
    except Failure as f:
        return f.outcome, bytes(released)


def decode_source(src, identities, released, check=None, reserve=None):
    """Decodes the file that `src` yields (its read(n) returns fewer than n
    bytes only at the true end of input) and returns (header, file_key) on
    success; any other class raises Failure.

    Plaintext is appended to `released` (a bytearray) as soon as SPEC 6.4
    allows: an anonymous file's chunk once it opened, a signed file's
    segment once its signature verified and all its chunks opened. The
    caller keeps what was released however the decode ends, including by an
    exception the source itself raises (which propagates unchanged).

    `check(header, file_key)`, if given, runs after the commitment check and
    before any chunk is read (SPEC 12.1 checks 0 to 2, 13.4): a receiver's
    policy raises there to refuse the file. `reserve(header, file_key)`, if
    given, runs once, right before the first plaintext is released (SPEC
    12.1 check 3: after the first segment verified and its chunks opened, or
    the first chunk opened); it may raise to refuse the file too.
    """
    header = read_header(src)
    sender = validate_points(header)  # 3.7 step 7, 5.3 step 1
    payload = find_file_key(header, identities, lambda: read_payload_prefix(src))
    if check is not None:
        check(header, payload.file_key)
    release = Release(released, reserve, header, payload.file_key)
    if sender is None:
        decode_anonymous_body(src, payload, release)
    else:
        decode_signed_body(src, header, sender, payload, release)
    return header, payload.file_key


# ---------------------------------------------------------------------------
# Random access (section 6.6).


class Layout:
    """Section 6.6 step 2: the layout a payload length implies. `units` are
    the chunks (anonymous) or segments (signed), each `unit_plain` bytes of
    plaintext but the last; unit k starts at payload offset
    56 + k * unit_len and the last one is `last_len` bytes long."""

    def __init__(self, header, file_size):
        self.signed = header.sender_key is not None
        body = file_size - len(header.bytes) - PAYLOAD_PREFIX_LEN
        if body < 0:
            fail("payload_failure", "payload shorter than the salt and commitment (truncated)")
        if self.signed:
            b, g = divmod(body, FULL_SEGMENT_LEN)
            if g < MIN_FINAL_SEGMENT_LEN:
                fail("payload_failure", "no layout: final segment of %d bytes" % g)
            a, f = divmod(g - SIGNATURE_LEN, CHUNK_CIPHER)
            self.unit_len, self.unit_plain = FULL_SEGMENT_LEN, SEGMENT_PLAIN
            self.units, self.last_len = b + 1, g
            chunks = SEGMENT_CHUNKS * b + a + 1
            self.plain_len = b * SEGMENT_PLAIN + a * CHUNK_PLAIN + f - TAG_LEN
        else:
            a, f = divmod(body, CHUNK_CIPHER)
            self.unit_len, self.unit_plain = CHUNK_CIPHER, CHUNK_PLAIN
            self.units, self.last_len = a + 1, f
            chunks = a + 1
            self.plain_len = a * CHUNK_PLAIN + f - TAG_LEN
        if f < TAG_LEN:
            fail("payload_failure", "no layout: final chunk of %d bytes" % f)
        if chunks > MAX_CHUNKS:
            fail("payload_failure", "no layout: too many chunks")


def decode_range_source(ra, identities, offset, length, released, check=None, reserve=None):
    """Serves the plaintext range [offset, offset + length) of the file `ra`
    (a RandomAccess) as SPEC 6.6 describes, appending the range's bytes to
    `released` unit by unit as each chunk opened or segment verified.
    Returns (header, file_key, plaintext length) on success; raises Failure.
    Every segment (or chunk) is read once, verified and decrypted from the
    same bytes; the final one, when verified first, is not read again."""
    if offset < 0 or length < 0:
        raise ValueError("negative offset or length")
    view = SequentialView(ra)
    header = read_header(view)
    sender = validate_points(header)
    payload = find_file_key(header, identities, lambda: read_payload_prefix(view))  # step 1
    if check is not None:
        check(header, payload.file_key)
    lay = Layout(header, ra.size)  # step 2
    start = len(header.bytes) + PAYLOAD_PREFIX_LEN
    opened = {}

    def unit(k):
        if k not in opened:
            final = k == lay.units - 1
            n = lay.last_len if final else lay.unit_len
            data = ra.read_at(start + k * lay.unit_len, n)
            if len(data) < n:
                fail("payload_failure", "the file is shorter than its layout (truncated)")
            if lay.signed:
                opened[k] = open_segment(header, sender, payload, k, data, final)
            else:
                opened[k] = open_chunk(payload, k, data)
        return opened[k]

    # Step 4.
    end = offset + length
    if end > lay.plain_len or offset >= lay.plain_len:
        unit(lay.units - 1)
        end = min(end, lay.plain_len)
    release = Release(released, reserve, header, payload.file_key)
    if offset < end:
        for k in range(offset // lay.unit_plain, (end - 1) // lay.unit_plain + 1):
            plaintext = unit(k)
            base = k * lay.unit_plain
            release(plaintext[max(offset, base) - base : min(end, base + lay.unit_plain) - base])
            opened.pop(k, None)  # each unit of the range is served once
    return header, payload.file_key, lay.plain_len


def decode_range(data, identities, offset, length):
    """(outcome, released bytes of the range) for one in-memory file."""
    released = bytearray()
    try:
        decode_range_source(RandomAccess(data), identities, offset, length, released)
        return "success", bytes(released)
    except Failure as f:
        return f.outcome, bytes(released)


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
    opened = hpke_open_by_hand(sealed[:65], sk, sealed[65:])
    if opened != message:
        raise AssertionError("hand-composed HPKE base mode disagrees with the library")


def selftest_rfc9180(vectors):
    """Mode 0 of the RFC 9180 vectors for this suite (SPEC 11): the
    hand-made decap and key schedule, and the first encryption. Returns the
    count."""
    checked = 0
    for v in vectors:
        if (v["kem_id"], v["kdf_id"], v["aead_id"]) != (0x10, 0x01, 0x02):
            continue
        if v["mode"] != MODE_BASE:
            continue
        sk_r = ec.derive_private_key(int(v["skRm"], 16), ec.SECP256R1())
        enc = bytes.fromhex(v["enc"])
        shared = decap(enc, sk_r, validate_point(enc))
        if shared.hex() != v["shared_secret"]:
            raise AssertionError("RFC 9180 shared_secret mismatch")
        key, nonce = key_schedule(MODE_BASE, shared, bytes.fromhex(v["info"]))
        if key.hex() != v["key"] or nonce.hex() != v["base_nonce"]:
            raise AssertionError("RFC 9180 key schedule mismatch")
        first = v["encryptions"][0]
        opened = hpke_open_by_hand(enc, sk_r, bytes.fromhex(first["ct"]), bytes.fromhex(v["info"]), bytes.fromhex(first["aad"]))
        if opened is None or opened.hex() != first["pt"]:
            raise AssertionError("RFC 9180 first encryption does not open")
        checked += 1
    return checked
