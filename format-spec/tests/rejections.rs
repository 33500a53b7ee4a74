//! One named test per rule of SPEC.md section 3.7: each starts from the
//! bytes of a valid header, breaks exactly one rule, and checks the exact
//! error `read::header_exact` reports (and, where it matters, what the
//! streaming `read::header` does). The last part checks that the serializer
//! refuses every header the parser would refuse.
#![allow(clippy::unwrap_used)]

use kapsel_format::{
    read, write, Extension, Header, HeaderClass, HeaderError, Malformation, P256Point, Sender,
    Stanza, Suite, EXTENSION_CRITICAL, MAGIC, MAX_CREATED_AT, MAX_EXTENSIONS_LEN, MAX_HEADER_LEN,
    MAX_RECIPIENTS, MAX_STANZA_BODY_LEN, MIN_HEADER_LEN, P256_POINT_LEN, P256_STANZA_BODY_LEN,
    PREFIX_LEN,
};
use nom::{Err, Needed};

// Offsets in the encoding of `base()` (anonymous sender, one P-256 stanza,
// no extensions).
const OFF_VERSION: usize = 8;
const OFF_SUITE: usize = 9;
const OFF_CHUNK: usize = 11;
const OFF_HEADER_LEN: usize = 12;
const OFF_CREATED_AT: usize = 16;
const OFF_SENDER_KIND: usize = 32;
/// Recipient count when the sender is anonymous.
const OFF_COUNT: usize = 33;
const OFF_STANZA: usize = 35;
const OFF_STANZA_BODY_LEN: usize = OFF_STANZA + 2;
const OFF_STANZA_ENC: usize = OFF_STANZA + 4 + 4;

fn point(seed: u8) -> P256Point {
    let mut p = [seed; P256_POINT_LEN];
    p[0] = 0x04;
    P256Point(p)
}

fn p256_stanza(seed: u8) -> Stanza {
    Stanza::P256Hpke {
        hint: [seed; 4],
        enc: point(seed),
        wrapped_key: [seed ^ 0x5a; 48],
    }
}

fn base() -> Header {
    Header {
        suite: Suite::P256HpkeCobblestone256,
        created_at: 1_700_000_000,
        serial: 0x0102_0304_0506_0708,
        sender: Sender::Anonymous,
        stanzas: vec![p256_stanza(1)],
        extensions: vec![],
    }
}

fn encode(h: &Header) -> Vec<u8> {
    write::header_to_vec(h).expect("test header is valid")
}

fn set_u16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_be_bytes());
}

fn set_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_be_bytes());
}

fn set_u64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_be_bytes());
}

/// Makes `header_len` agree with the buffer's length.
fn fix_len(b: &mut [u8]) {
    let n = u32::try_from(b.len()).unwrap();
    set_u32(b, OFF_HEADER_LEN, n);
}

/// The error `header_exact` reports; panics if it accepts.
fn exact_err(b: &[u8]) -> HeaderError {
    match read::header_exact(b) {
        Ok(h) => panic!("accepted a header that should be refused: {h:?}"),
        Err(e) => e,
    }
}

/// The malformation `header_exact` reports; panics on anything else.
fn malformed(b: &[u8]) -> Malformation {
    match exact_err(b) {
        HeaderError::Malformed(m) => m,
        other => panic!("expected Malformed(_), got {other:?}"),
    }
}

/// The error the streaming parser reports; it must be a hard failure,
/// never a request for more input.
fn streaming_failure(b: &[u8]) -> HeaderError {
    match read::header(b) {
        Err(Err::Failure(e)) | Err(Err::Error(e)) => e,
        other => panic!("expected a failure, got {other:?}"),
    }
}

fn needed(b: &[u8]) -> usize {
    match read::header(b) {
        Err(Err::Incomplete(Needed::Size(n))) => n.get(),
        other => panic!("expected Incomplete(Size(_)), got {other:?}"),
    }
}

/// The encoding of `base()` with its (empty) extension area replaced by
/// `area` and `extensions_len` set to `area_len`.
fn with_ext_area(area_len: u16, area: &[u8]) -> Vec<u8> {
    let mut b = encode(&base());
    let ext = b.len() - 2;
    assert_eq!(&b[ext..], &[0, 0]);
    b.truncate(ext);
    b.extend_from_slice(&area_len.to_be_bytes());
    b.extend_from_slice(area);
    fix_len(&mut b);
    b
}

fn record(kind: u16, value: &[u8]) -> Vec<u8> {
    let mut r = Vec::new();
    r.extend_from_slice(&kind.to_be_bytes());
    r.extend_from_slice(&u16::try_from(value.len()).unwrap().to_be_bytes());
    r.extend_from_slice(value);
    r
}

fn area(records: &[Vec<u8>]) -> Vec<u8> {
    records.concat()
}

/// Inserts raw stanza bytes after the last stanza of `base()`'s encoding and
/// bumps the recipient count and `header_len`.
fn with_extra_stanza(kind: u16, body_len: u16, body: &[u8]) -> Vec<u8> {
    let mut b = encode(&base());
    let at = b.len() - 2;
    let mut s = Vec::new();
    s.extend_from_slice(&kind.to_be_bytes());
    s.extend_from_slice(&body_len.to_be_bytes());
    s.extend_from_slice(body);
    b.splice(at..at, s);
    set_u16(&mut b, OFF_COUNT, 2);
    fix_len(&mut b);
    b
}

/// A valid header of exactly `MAX_HEADER_LEN + extra` bytes.
fn header_of_len_max_plus(extra: usize) -> Header {
    // 37 fixed bytes + one P-256 stanza (121) = 158; 63 unknown stanzas of
    // 1024-byte bodies (1028 each) = 64764; one more of 610 bytes (614).
    let mut h = base();
    for i in 0..63u16 {
        h.stanzas.push(Stanza::Unknown {
            kind: 0x0100 + i,
            body: vec![i as u8; usize::from(MAX_STANZA_BODY_LEN)],
        });
    }
    h.stanzas.push(Stanza::Unknown {
        kind: 0x0200,
        body: vec![0xee; 610 + extra],
    });
    assert_eq!(h.encoded_len(), MAX_HEADER_LEN as usize + extra);
    h
}

// ---------------------------------------------------------------------------
// Sanity: the starting point is valid and laid out as SPEC.md says.

#[test]
fn base_header_is_valid_and_minimal() {
    let h = base();
    let b = encode(&h);
    assert_eq!(b.len(), MIN_HEADER_LEN as usize);
    assert_eq!(MIN_HEADER_LEN, 158);
    assert_eq!(&b[..8], &MAGIC);
    assert_eq!(&b[..8], b"\x8bKAPSEL\n");
    assert_eq!(b[OFF_VERSION], 1);
    assert_eq!(&b[OFF_SUITE..OFF_SUITE + 2], &[0, 1]);
    assert_eq!(b[OFF_CHUNK], 14);
    assert_eq!(&b[OFF_HEADER_LEN..16], &158u32.to_be_bytes());
    assert_eq!(&b[16..24], &1_700_000_000u64.to_be_bytes());
    assert_eq!(&b[24..32], &0x0102_0304_0506_0708u64.to_be_bytes());
    assert_eq!(b[OFF_SENDER_KIND], 0);
    assert_eq!(&b[OFF_COUNT..OFF_COUNT + 2], &[0, 1]);
    assert_eq!(&b[OFF_STANZA..OFF_STANZA + 4], &[0, 1, 0, 117]);
    assert_eq!(&b[OFF_STANZA + 4..OFF_STANZA + 8], &[1, 1, 1, 1]);
    assert_eq!(b[OFF_STANZA_ENC], 0x04);
    assert_eq!(&b[OFF_STANZA_ENC + 1..OFF_STANZA_ENC + 65], &[1u8; 64][..]);
    assert_eq!(&b[OFF_STANZA_ENC + 65..b.len() - 2], &[1 ^ 0x5a; 48][..]);
    assert_eq!(&b[b.len() - 2..], &[0, 0]);
    assert_eq!(read::header_exact(&b), Ok(h.clone()));
    assert_eq!(read::header(&b), Ok((&[][..], h)));
}

#[test]
fn p256_sender_layout() {
    let mut h = base();
    h.sender = Sender::P256(point(9));
    let b = encode(&h);
    assert_eq!(b.len(), MIN_HEADER_LEN as usize + P256_POINT_LEN);
    assert_eq!(b[OFF_SENDER_KIND], 1);
    assert_eq!(&b[33..33 + 65], &point(9).0[..]);
    assert_eq!(&b[98..100], &[0, 1]);
    assert_eq!(read::header_exact(&b), Ok(h));
}

// ---------------------------------------------------------------------------
// Prefix rules, in the order SPEC.md checks them.

#[test]
fn rejects_wrong_magic() {
    let good = encode(&base());
    for i in 0..MAGIC.len() {
        for flip in [0x01u8, 0x80, 0xff] {
            let mut b = good.clone();
            b[i] ^= flip;
            assert_eq!(
                exact_err(&b),
                HeaderError::NotKapsel,
                "byte {i} ^ {flip:#x}"
            );
            assert_eq!(streaming_failure(&b), HeaderError::NotKapsel);
            // Detected as soon as the differing byte is available.
            assert_eq!(streaming_failure(&b[..=i]), HeaderError::NotKapsel);
        }
    }
    // A short foreign input is "not kapsel", not "truncated".
    for short in [&b"PK\x03"[..], b"\x8bKB", b"\x00", b"age"] {
        assert_eq!(
            streaming_failure(short),
            HeaderError::NotKapsel,
            "{short:?}"
        );
        assert_eq!(exact_err(short), HeaderError::NotKapsel);
        assert_eq!(exact_err(short).class(), HeaderClass::NotKapsel);
    }
    // A short correct prefix of the magic is incomplete.
    assert_eq!(needed(&MAGIC[..3]), PREFIX_LEN - 3);
    assert_eq!(exact_err(&MAGIC[..3]), HeaderError::Truncated);
    assert_eq!(needed(&[]), PREFIX_LEN);
    assert_eq!(exact_err(&[]), HeaderError::Truncated);
    // A wrong magic wins over everything after it.
    let mut b = good.clone();
    b[0] = b'x';
    b[OFF_VERSION] = 9;
    set_u16(&mut b, OFF_SUITE, 9);
    b[OFF_CHUNK] = 9;
    assert_eq!(exact_err(&b), HeaderError::NotKapsel);
}

#[test]
fn rejects_unsupported_version() {
    let good = encode(&base());
    for v in [0u8, 3, 0x10, 0xff] {
        let mut b = good.clone();
        b[OFF_VERSION] = v;
        let e = exact_err(&b);
        assert_eq!(e, HeaderError::UnsupportedVersion { found: v });
        assert_eq!(e.class(), HeaderClass::Unsupported);
        // Reported as soon as the version byte is there.
        assert_eq!(
            streaming_failure(&b[..=OFF_VERSION]),
            HeaderError::UnsupportedVersion { found: v }
        );
        // Nothing after the version byte is interpreted.
        b[OFF_SUITE] = 0xff;
        b[OFF_CHUNK] = 0;
        set_u32(&mut b, OFF_HEADER_LEN, u32::MAX);
        assert_eq!(exact_err(&b), HeaderError::UnsupportedVersion { found: v });
    }
}

#[test]
fn rejects_unknown_suite() {
    let good = encode(&base());
    for s in [0x0000u16, 0x0002, 0x0100, 0xffff] {
        let mut b = good.clone();
        set_u16(&mut b, OFF_SUITE, s);
        let e = exact_err(&b);
        assert_eq!(e, HeaderError::UnsupportedSuite { found: s });
        assert_eq!(e.class(), HeaderClass::Unsupported);
        assert_eq!(
            streaming_failure(&b[..OFF_SUITE + 2]),
            HeaderError::UnsupportedSuite { found: s }
        );
        // The suite is checked before chunk size and header length.
        b[OFF_CHUNK] = 0;
        set_u32(&mut b, OFF_HEADER_LEN, 0);
        assert_eq!(exact_err(&b), HeaderError::UnsupportedSuite { found: s });
    }
    // Only one byte of the suite present: not judged yet.
    assert_eq!(needed(&good[..OFF_SUITE + 1]), PREFIX_LEN - OFF_SUITE - 1);
}

#[test]
fn rejects_chunk_size_other_than_14() {
    let good = encode(&base());
    for c in [0u8, 13, 15, 16, 0xff] {
        let mut b = good.clone();
        b[OFF_CHUNK] = c;
        assert_eq!(malformed(&b), Malformation::ChunkSize(c));
        assert_eq!(
            streaming_failure(&b[..PREFIX_LEN]),
            HeaderError::Malformed(Malformation::ChunkSize(c))
        );
    }
}

#[test]
fn rejects_header_len_too_small() {
    let good = encode(&base());
    for n in [0u32, 1, PREFIX_LEN as u32, MIN_HEADER_LEN - 1] {
        let mut b = good.clone();
        set_u32(&mut b, OFF_HEADER_LEN, n);
        assert_eq!(malformed(&b), Malformation::HeaderLength(n));
        // Refused from the prefix alone.
        assert_eq!(
            streaming_failure(&b[..PREFIX_LEN]),
            HeaderError::Malformed(Malformation::HeaderLength(n))
        );
    }
}

#[test]
fn rejects_header_len_too_large() {
    let good = encode(&base());
    for n in [MAX_HEADER_LEN + 1, 1 << 20, u32::MAX - 1, u32::MAX] {
        let mut b = good.clone();
        set_u32(&mut b, OFF_HEADER_LEN, n);
        assert_eq!(malformed(&b), Malformation::HeaderLength(n));
        // From the 16-byte prefix alone it fails outright: it does not ask
        // for gigabytes of input.
        assert_eq!(
            streaming_failure(&b[..PREFIX_LEN]),
            HeaderError::Malformed(Malformation::HeaderLength(n))
        );
    }
    // At the limit the parser asks for exactly the rest of the header.
    let mut b = good[..PREFIX_LEN].to_vec();
    set_u32(&mut b, OFF_HEADER_LEN, MAX_HEADER_LEN);
    assert_eq!(needed(&b), MAX_HEADER_LEN as usize - PREFIX_LEN);
}

#[test]
fn accepts_header_of_exactly_max_len() {
    let h = header_of_len_max_plus(0);
    let b = encode(&h);
    assert_eq!(b.len(), MAX_HEADER_LEN as usize);
    assert_eq!(read::header_exact(&b), Ok(h));
}

#[test]
fn rejects_header_one_byte_over_max_len() {
    let h = header_of_len_max_plus(1);
    assert_eq!(
        write::header_to_vec(&h),
        Err(HeaderError::Malformed(Malformation::HeaderLength(
            MAX_HEADER_LEN + 1
        )))
    );
    // The same header encoded by hand.
    let mut b = encode(&header_of_len_max_plus(0));
    let ext = b.len() - 2;
    // Lengthen the last stanza body by one byte.
    let last_body_len_at = ext - 610 - 2;
    assert_eq!(
        &b[last_body_len_at..last_body_len_at + 2],
        &610u16.to_be_bytes()
    );
    set_u16(&mut b, last_body_len_at, 611);
    b.insert(ext, 0xee);
    fix_len(&mut b);
    assert_eq!(
        malformed(&b),
        Malformation::HeaderLength(MAX_HEADER_LEN + 1)
    );
}

// ---------------------------------------------------------------------------
// Body rules.

#[test]
fn rejects_created_at_after_year_9999() {
    let good = encode(&base());
    for t in [MAX_CREATED_AT + 1, 1 << 40, u64::MAX] {
        let mut b = good.clone();
        set_u64(&mut b, OFF_CREATED_AT, t);
        assert_eq!(malformed(&b), Malformation::CreatedAt);
    }
    for t in [0, MAX_CREATED_AT] {
        let mut b = good.clone();
        set_u64(&mut b, OFF_CREATED_AT, t);
        assert_eq!(read::header_exact(&b).unwrap().created_at, t);
    }
    assert_eq!(MAX_CREATED_AT, 253_402_300_799);
}

#[test]
fn any_serial_is_accepted() {
    for s in [0, 1, u64::MAX] {
        let mut h = base();
        h.serial = s;
        assert_eq!(read::header_exact(&encode(&h)), Ok(h));
    }
}

#[test]
fn rejects_unknown_sender_kind() {
    let good = encode(&base());
    for k in [2u8, 3, 0x04, 0x80, 0xff] {
        let mut b = good.clone();
        b[OFF_SENDER_KIND] = k;
        assert_eq!(malformed(&b), Malformation::SenderKind(k));
    }
}

#[test]
fn rejects_compressed_sender_key() {
    let mut h = base();
    h.sender = Sender::P256(point(7));
    let good = encode(&h);
    for first in [0x02u8, 0x03, 0x00, 0x05, 0x06, 0x07, 0xff] {
        let mut b = good.clone();
        b[OFF_SENDER_KIND + 1] = first;
        assert_eq!(malformed(&b), Malformation::PointEncoding, "{first:#x}");
    }
    // Turning an anonymous sender into kind 1 makes the 65 bytes after the
    // kind byte the key: they start with the recipient count's 0x00.
    let mut b = encode(&base());
    b[OFF_SENDER_KIND] = 1;
    assert_eq!(malformed(&b), Malformation::PointEncoding);
}

#[test]
fn rejects_zero_recipients() {
    let mut b = encode(&base());
    set_u16(&mut b, OFF_COUNT, 0);
    assert_eq!(malformed(&b), Malformation::RecipientCount(0));
}

#[test]
fn accepts_max_recipients() {
    let mut h = base();
    h.stanzas = (0..=255u8).map(p256_stanza).collect();
    assert_eq!(h.stanzas.len(), usize::from(MAX_RECIPIENTS));
    assert_eq!(read::header_exact(&encode(&h)), Ok(h));
}

#[test]
fn rejects_more_than_max_recipients() {
    // Count field 257 in an otherwise valid header: refused at the count.
    let mut b = encode(&base());
    set_u16(&mut b, OFF_COUNT, MAX_RECIPIENTS + 1);
    assert_eq!(malformed(&b), Malformation::RecipientCount(257));
    set_u16(&mut b, OFF_COUNT, u16::MAX);
    assert_eq!(malformed(&b), Malformation::RecipientCount(u16::MAX));

    // 257 real, distinct stanzas.
    let mut h = base();
    h.stanzas = (0..=255u8).map(p256_stanza).collect();
    let mut b = encode(&h);
    let ext = b.len() - 2;
    let mut extra = vec![0, 1, 0, 117];
    extra.extend_from_slice(&[0u8; 4]);
    extra.extend_from_slice(&point(0x42).0);
    extra.extend_from_slice(&[0x99; 48]);
    b.splice(ext..ext, extra);
    set_u16(&mut b, OFF_COUNT, 257);
    fix_len(&mut b);
    assert_eq!(malformed(&b), Malformation::RecipientCount(257));
}

#[test]
fn rejects_p256_stanza_body_one_byte_short_and_long() {
    // A padding extension keeps header_len above MIN_HEADER_LEN when the
    // body loses a byte; the stanza still ends at the same offset.
    let mut padded = base();
    padded.extensions = vec![Extension {
        kind: 1,
        value: vec![0; 8],
    }];
    let padded = encode(&padded);
    let body_end = OFF_STANZA + 4 + P256_STANZA_BODY_LEN;
    assert_eq!(&padded[body_end..body_end + 2], &12u16.to_be_bytes());
    // 116: drop the last byte of the wrapped key.
    let mut b = padded.clone();
    set_u16(&mut b, OFF_STANZA_BODY_LEN, 116);
    b.remove(body_end - 1);
    fix_len(&mut b);
    assert_eq!(malformed(&b), Malformation::StanzaLength(116));
    // 118: one extra byte at the end of the body.
    let mut b = padded.clone();
    set_u16(&mut b, OFF_STANZA_BODY_LEN, 118);
    b.insert(body_end, 0x00);
    fix_len(&mut b);
    assert_eq!(malformed(&b), Malformation::StanzaLength(118));
    let good = encode(&base());
    // Other lengths, without adjusting anything else.
    for n in [0u16, 1, 65, 1024, 1025, u16::MAX] {
        let mut b = good.clone();
        set_u16(&mut b, OFF_STANZA_BODY_LEN, n);
        assert_eq!(malformed(&b), Malformation::StanzaLength(n));
    }
}

#[test]
fn rejects_compressed_or_identity_encapsulated_key() {
    let good = encode(&base());
    for first in [0x02u8, 0x03, 0x00, 0x06, 0x07] {
        let mut b = good.clone();
        b[OFF_STANZA_ENC] = first;
        assert_eq!(malformed(&b), Malformation::PointEncoding, "{first:#x}");
    }
    // The all-zero "identity" encoding.
    let mut b = good.clone();
    b[OFF_STANZA_ENC..OFF_STANZA_ENC + 65].fill(0);
    assert_eq!(malformed(&b), Malformation::PointEncoding);
}

#[test]
fn rejects_duplicate_stanza() {
    // Two identical P-256 stanzas.
    let good = encode(&base());
    let stanza = good[OFF_STANZA..OFF_STANZA + 4 + P256_STANZA_BODY_LEN].to_vec();
    let mut b = good.clone();
    let at = b.len() - 2;
    b.splice(at..at, stanza);
    set_u16(&mut b, OFF_COUNT, 2);
    fix_len(&mut b);
    assert_eq!(malformed(&b), Malformation::DuplicateStanza);

    // Two identical unknown stanzas (after the P-256 one).
    let mut b = with_extra_stanza(0x0777, 3, b"abc");
    let at = b.len() - 2;
    b.splice(at..at, [0x07, 0x77, 0, 3, b'a', b'b', b'c']);
    set_u16(&mut b, OFF_COUNT, 3);
    fix_len(&mut b);
    assert_eq!(malformed(&b), Malformation::DuplicateStanza);

    // Stanzas that differ in one byte are not duplicates.
    let mut h = base();
    let mut other = p256_stanza(1);
    if let Stanza::P256Hpke { wrapped_key, .. } = &mut other {
        wrapped_key[47] ^= 1;
    }
    h.stanzas.push(other);
    assert_eq!(read::header_exact(&encode(&h)), Ok(h));
}

#[test]
fn rejects_stanza_body_over_max() {
    let max = usize::from(MAX_STANZA_BODY_LEN);
    // 1024 is fine for an unknown type.
    let b = with_extra_stanza(0x0002, MAX_STANZA_BODY_LEN, &vec![7; max]);
    let h = read::header_exact(&b).unwrap();
    assert_eq!(
        h.stanzas[1],
        Stanza::Unknown {
            kind: 2,
            body: vec![7; max]
        }
    );
    // 1025 is not, even though the bytes are there.
    let b = with_extra_stanza(0x0002, MAX_STANZA_BODY_LEN + 1, &vec![7; max + 1]);
    assert_eq!(malformed(&b), Malformation::StanzaLength(1025));
    let b = with_extra_stanza(0xffff, u16::MAX, &[]);
    assert_eq!(malformed(&b), Malformation::StanzaLength(u16::MAX));
}

#[test]
fn rejects_stanza_body_past_header_len() {
    // An unknown stanza whose body_len points past the header.
    let mut b = with_extra_stanza(0x0002, 4, b"abcd");
    let body_len_at = b.len() - 2 - 4 - 2;
    set_u16(&mut b, body_len_at, 100);
    assert_eq!(malformed(&b), Malformation::Overrun);
}

#[test]
fn skips_unknown_stanza_type() {
    for kind in [0x0000u16, 0x0002, 0x7777, 0x8001, 0xffff] {
        let b = with_extra_stanza(kind, 5, b"hello");
        let h = read::header_exact(&b).unwrap();
        assert_eq!(h.stanzas.len(), 2);
        assert_eq!(h.stanzas[0], p256_stanza(1));
        assert_eq!(
            h.stanzas[1],
            Stanza::Unknown {
                kind,
                body: b"hello".to_vec()
            }
        );
        assert_eq!(h.stanzas[1].kind(), kind);
        // And it is written back byte for byte.
        assert_eq!(write::header_to_vec(&h).unwrap(), b);
    }
    // Empty body.
    let b = with_extra_stanza(0x0003, 0, &[]);
    let h = read::header_exact(&b).unwrap();
    assert_eq!(
        h.stanzas[1],
        Stanza::Unknown {
            kind: 3,
            body: vec![]
        }
    );
}

#[test]
fn unknown_stanzas_alone_are_accepted_when_long_enough() {
    // SPEC.md does not require a P-256 stanza, only header_len >= 158.
    let mut h = base();
    h.stanzas = vec![Stanza::Unknown {
        kind: 2,
        body: vec![0xab; P256_STANZA_BODY_LEN],
    }];
    let b = encode(&h);
    assert_eq!(b.len(), MIN_HEADER_LEN as usize);
    assert_eq!(read::header_exact(&b), Ok(h));
}

#[test]
fn rejects_header_shorter_than_min_len_from_unknown_stanzas() {
    // One small unknown stanza: structurally complete, but below
    // MIN_HEADER_LEN. The parser refuses it, so the writer must as well.
    let mut h = base();
    h.stanzas = vec![Stanza::Unknown {
        kind: 2,
        body: vec![],
    }];
    let len = h.encoded_len() as u32;
    assert_eq!(len, 41);
    assert_eq!(
        write::header_to_vec(&h),
        Err(HeaderError::Malformed(Malformation::HeaderLength(len)))
    );
    let mut b = encode(&base());
    b.truncate(OFF_STANZA);
    b.extend_from_slice(&[0, 2, 0, 0, 0, 0]);
    fix_len(&mut b);
    assert_eq!(b.len(), 41);
    assert_eq!(malformed(&b), Malformation::HeaderLength(41));
}

// ---------------------------------------------------------------------------
// Extension area.

#[test]
fn accepts_unknown_noncritical_extension() {
    let a = area(&[
        record(0x0001, b""),
        record(0x0002, b"v"),
        record(0x7fff, b"xyz"),
    ]);
    let b = with_ext_area(a.len() as u16, &a);
    let h = read::header_exact(&b).unwrap();
    assert_eq!(
        h.extensions,
        vec![
            Extension {
                kind: 1,
                value: vec![]
            },
            Extension {
                kind: 2,
                value: b"v".to_vec()
            },
            Extension {
                kind: 0x7fff,
                value: b"xyz".to_vec()
            },
        ]
    );
    assert_eq!(write::header_to_vec(&h).unwrap(), b);
    // Type 0 is a valid, non-critical type too.
    let a = record(0x0000, b"z");
    let h = read::header_exact(&with_ext_area(a.len() as u16, &a)).unwrap();
    assert_eq!(h.extensions[0].kind, 0);
}

#[test]
fn rejects_extension_types_out_of_order() {
    let a = area(&[record(5, b"a"), record(3, b"b")]);
    assert_eq!(
        malformed(&with_ext_area(a.len() as u16, &a)),
        Malformation::ExtensionOrder
    );
    let a = area(&[record(1, b""), record(7, b""), record(2, b"")]);
    assert_eq!(
        malformed(&with_ext_area(a.len() as u16, &a)),
        Malformation::ExtensionOrder
    );
}

#[test]
fn rejects_extension_types_duplicated() {
    let a = area(&[record(5, b"a"), record(5, b"a")]);
    assert_eq!(
        malformed(&with_ext_area(a.len() as u16, &a)),
        Malformation::ExtensionOrder
    );
    let a = area(&[record(5, b"a"), record(5, b"b")]);
    assert_eq!(
        malformed(&with_ext_area(a.len() as u16, &a)),
        Malformation::ExtensionOrder
    );
}

#[test]
fn rejects_unknown_critical_extension() {
    for kind in [EXTENSION_CRITICAL, 0x8001, 0xffff] {
        let a = record(kind, b"must understand");
        let e = exact_err(&with_ext_area(a.len() as u16, &a));
        assert_eq!(e, HeaderError::UnsupportedExtension { kind });
        assert_eq!(e.class(), HeaderClass::Unsupported);
        // Also after a non-critical one.
        let a = area(&[record(1, b""), record(kind, b"")]);
        assert_eq!(
            exact_err(&with_ext_area(a.len() as u16, &a)),
            HeaderError::UnsupportedExtension { kind }
        );
    }
}

#[test]
fn accepts_extension_area_of_exactly_max() {
    let max = usize::from(MAX_EXTENSIONS_LEN);
    let a = record(1, &vec![0x11; max - 4]);
    assert_eq!(a.len(), max);
    let h = read::header_exact(&with_ext_area(MAX_EXTENSIONS_LEN, &a)).unwrap();
    assert_eq!(h.extensions[0].value.len(), max - 4);
}

#[test]
fn rejects_extension_area_over_max() {
    let max = usize::from(MAX_EXTENSIONS_LEN);
    let a = record(1, &vec![0x11; max - 3]);
    assert_eq!(a.len(), max + 1);
    assert_eq!(
        malformed(&with_ext_area(MAX_EXTENSIONS_LEN + 1, &a)),
        Malformation::ExtensionsLength(MAX_EXTENSIONS_LEN + 1)
    );
    // The length is judged before the area is looked for.
    assert_eq!(
        malformed(&with_ext_area(u16::MAX, &[])),
        Malformation::ExtensionsLength(u16::MAX)
    );
}

#[test]
fn rejects_field_overrun() {
    // A record whose value length points past the area.
    let mut a = record(1, b"abcd");
    set_u16(&mut a, 2, 5);
    let b = with_ext_area(a.len() as u16, &a);
    assert_eq!(malformed(&b), Malformation::Overrun);
    // A record header cut by the end of the area.
    let a = [0u8, 1, 0];
    assert_eq!(malformed(&with_ext_area(3, &a)), Malformation::Overrun);
    // Bytes left in the area that cannot form a record.
    let mut a = record(1, b"");
    a.push(0xaa);
    assert_eq!(
        malformed(&with_ext_area(a.len() as u16, &a)),
        Malformation::Overrun
    );
    // An extension area running past header_len.
    let a = record(1, b"abcd");
    let b = with_ext_area(a.len() as u16 + 1, &a);
    assert_eq!(malformed(&b), Malformation::Overrun);
    // header_len one byte short of the extension area it encloses.
    let a = record(1, b"abcd");
    let mut b = with_ext_area(a.len() as u16, &a);
    b.pop();
    fix_len(&mut b);
    assert_eq!(malformed(&b), Malformation::Overrun);
    // A P-256 sender key cut by header_len.
    let mut b = encode(&base());
    b.truncate(OFF_SENDER_KIND);
    b.push(1);
    b.extend_from_slice(&point(5).0);
    b.resize(MIN_HEADER_LEN as usize, 0x04);
    fix_len(&mut b);
    // 158 - 33 = 125 bytes after the kind: key, count 0x0404 = 1028 > 256.
    assert_eq!(malformed(&b), Malformation::RecipientCount(0x0404));
    let mut b = encode(&base());
    b.truncate(OFF_SENDER_KIND);
    b.push(1);
    b.extend_from_slice(&point(5).0);
    b.extend_from_slice(&[0, 1, 0, 1, 0, 117]);
    b.resize(MIN_HEADER_LEN as usize, 0x04);
    fix_len(&mut b);
    // The stanza body (117 bytes) runs past header_len.
    assert_eq!(malformed(&b), Malformation::Overrun);
}

#[test]
fn rejects_trailing_bytes_inside_header() {
    let mut b = encode(&base());
    b.push(0);
    fix_len(&mut b);
    assert_eq!(malformed(&b), Malformation::TrailingBytes);
    // Also after a non-empty extension area.
    let a = record(1, b"x");
    let mut b = with_ext_area(a.len() as u16, &a);
    b.extend_from_slice(b"junk");
    fix_len(&mut b);
    assert_eq!(malformed(&b), Malformation::TrailingBytes);
}

#[test]
fn rejects_trailing_bytes_after_header_only_in_exact_mode() {
    let h = base();
    let good = encode(&h);
    let mut b = good.clone();
    b.extend_from_slice(b"payload");
    assert_eq!(malformed(&b), Malformation::TrailingBytes);
    assert_eq!(read::header(&b), Ok((&b"payload"[..], h)));
}

#[test]
fn rejects_truncated_header() {
    let good = encode(&base());
    for cut in [0, 1, 8, 15, 16, 17, 100, good.len() - 1] {
        let e = exact_err(&good[..cut]);
        assert_eq!(e, HeaderError::Truncated, "cut at {cut}");
        assert_eq!(e.class(), HeaderClass::Malformed);
    }
    assert_eq!(needed(&good[..15]), 1);
    assert_eq!(needed(&good[..16]), good.len() - 16);
    assert_eq!(needed(&good[..good.len() - 1]), 1);
}

#[test]
fn reports_first_problem_in_byte_order() {
    // SPEC.md 3.7 check 6: the reference decoder reports the first problem
    // in byte order, so a malformed field before an unknown critical
    // extension makes the header malformed, not unsupported.
    let crit = record(0x8001, b"");

    let mut b = with_ext_area(crit.len() as u16, &crit);
    set_u64(&mut b, OFF_CREATED_AT, MAX_CREATED_AT + 1);
    assert_eq!(malformed(&b), Malformation::CreatedAt);

    let mut b = encode(&base());
    set_u64(&mut b, OFF_CREATED_AT, u64::MAX);
    b[OFF_SENDER_KIND] = 9;
    assert_eq!(malformed(&b), Malformation::CreatedAt);

    let mut b = encode(&base());
    set_u64(&mut b, OFF_CREATED_AT, u64::MAX);
    set_u16(&mut b, OFF_COUNT, 0);
    assert_eq!(malformed(&b), Malformation::CreatedAt);

    // Duplicate stanzas, then a critical extension.
    let good = with_ext_area(crit.len() as u16, &crit);
    let stanza = good[OFF_STANZA..OFF_STANZA + 4 + P256_STANZA_BODY_LEN].to_vec();
    let mut b = good.clone();
    let at = OFF_STANZA + stanza.len();
    b.splice(at..at, stanza);
    set_u16(&mut b, OFF_COUNT, 2);
    fix_len(&mut b);
    assert_eq!(malformed(&b), Malformation::DuplicateStanza);

    // Duplicate stanzas, then a bad stanza length.
    let mut b = good.clone();
    let stanza = good[OFF_STANZA..OFF_STANZA + 4 + P256_STANZA_BODY_LEN].to_vec();
    let at = OFF_STANZA + stanza.len();
    b.splice(at..at, stanza);
    b.splice(at + 121..at + 121, [0, 1, 0, 1, 0]);
    set_u16(&mut b, OFF_COUNT, 3);
    fix_len(&mut b);
    assert_eq!(malformed(&b), Malformation::DuplicateStanza);

    // A critical type comes before the length of its own value.
    let mut a = record(0x8001, b"ab");
    set_u16(&mut a, 2, 100);
    assert_eq!(
        exact_err(&with_ext_area(a.len() as u16, &a)),
        HeaderError::UnsupportedExtension { kind: 0x8001 }
    );
    // An out-of-order type comes before the length of its own value.
    let mut a = area(&[record(5, b""), record(3, b"ab")]);
    set_u16(&mut a, 6, 100);
    assert_eq!(
        malformed(&with_ext_area(a.len() as u16, &a)),
        Malformation::ExtensionOrder
    );
    // A critical extension before a malformed later record: unsupported.
    let a = area(&[record(0x8001, b""), record(1, b"")]);
    assert_eq!(
        exact_err(&with_ext_area(a.len() as u16, &a)),
        HeaderError::UnsupportedExtension { kind: 0x8001 }
    );
}

// ---------------------------------------------------------------------------
// The serializer refuses what the parser refuses.

fn write_err(h: &Header) -> HeaderError {
    match write::header_to_vec(h) {
        Ok(b) => panic!("wrote an invalid header: {b:02x?}"),
        Err(e) => {
            assert_eq!(h.check(), Err(e.clone()));
            // Appending must refuse too, and leave the buffer alone.
            let mut out = b"prefix".to_vec();
            assert_eq!(write::header(h, &mut out), Err(e.clone()));
            assert_eq!(out, b"prefix");
            e
        }
    }
}

#[test]
fn writer_refuses_zero_stanzas() {
    let mut h = base();
    h.stanzas.clear();
    assert_eq!(
        write_err(&h),
        HeaderError::Malformed(Malformation::RecipientCount(0))
    );
}

#[test]
fn writer_refuses_more_than_max_stanzas() {
    let mut h = base();
    h.stanzas = (0..=255u8).map(p256_stanza).collect();
    h.stanzas.push(Stanza::Unknown {
        kind: 2,
        body: vec![],
    });
    assert_eq!(
        write_err(&h),
        HeaderError::Malformed(Malformation::RecipientCount(257))
    );
}

#[test]
fn writer_refuses_duplicate_stanzas() {
    let mut h = base();
    h.stanzas.push(p256_stanza(2));
    h.stanzas.push(p256_stanza(1));
    assert_eq!(
        write_err(&h),
        HeaderError::Malformed(Malformation::DuplicateStanza)
    );
    let mut h = base();
    let u = Stanza::Unknown {
        kind: 9,
        body: b"same".to_vec(),
    };
    h.stanzas.push(u.clone());
    h.stanzas.push(u);
    assert_eq!(
        write_err(&h),
        HeaderError::Malformed(Malformation::DuplicateStanza)
    );
}

#[test]
fn writer_refuses_created_at_after_max() {
    for t in [MAX_CREATED_AT + 1, u64::MAX] {
        let mut h = base();
        h.created_at = t;
        assert_eq!(
            write_err(&h),
            HeaderError::Malformed(Malformation::CreatedAt)
        );
    }
    let mut h = base();
    h.created_at = MAX_CREATED_AT;
    assert_eq!(read::header_exact(&encode(&h)), Ok(h));
}

#[test]
fn writer_refuses_unsorted_extensions() {
    let ext = |kind: u16| Extension {
        kind,
        value: vec![],
    };
    let mut h = base();
    h.extensions = vec![ext(2), ext(1)];
    assert_eq!(
        write_err(&h),
        HeaderError::Malformed(Malformation::ExtensionOrder)
    );
    h.extensions = vec![ext(1), ext(1)];
    assert_eq!(
        write_err(&h),
        HeaderError::Malformed(Malformation::ExtensionOrder)
    );
    h.extensions = vec![ext(0), ext(1), ext(0x7fff)];
    assert_eq!(read::header_exact(&encode(&h)), Ok(h));
}

#[test]
fn writer_refuses_critical_extension() {
    let mut h = base();
    h.extensions = vec![Extension {
        kind: 0x8002,
        value: vec![1],
    }];
    let e = write_err(&h);
    assert_eq!(e, HeaderError::UnsupportedExtension { kind: 0x8002 });
    assert_eq!(e.class(), HeaderClass::Unsupported);
}

#[test]
fn writer_refuses_extension_area_over_max() {
    let mut h = base();
    h.extensions = vec![Extension {
        kind: 1,
        value: vec![0; usize::from(MAX_EXTENSIONS_LEN) - 3],
    }];
    assert_eq!(
        write_err(&h),
        HeaderError::Malformed(Malformation::ExtensionsLength(MAX_EXTENSIONS_LEN + 1))
    );
    h.extensions[0].value.pop();
    assert_eq!(read::header_exact(&encode(&h)), Ok(h));
}

#[test]
fn writer_refuses_non_uncompressed_points() {
    let mut bad = point(3);
    bad.0[0] = 0x02;
    let mut h = base();
    h.sender = Sender::P256(bad);
    assert_eq!(
        write_err(&h),
        HeaderError::Malformed(Malformation::PointEncoding)
    );
    let mut h = base();
    h.stanzas = vec![Stanza::P256Hpke {
        hint: [0; 4],
        enc: P256Point([0; P256_POINT_LEN]),
        wrapped_key: [0; 48],
    }];
    assert_eq!(
        write_err(&h),
        HeaderError::Malformed(Malformation::PointEncoding)
    );
}

#[test]
fn writer_refuses_bad_unknown_stanzas() {
    // An "unknown" stanza may not claim the P-256 type.
    let mut h = base();
    h.stanzas.push(Stanza::Unknown {
        kind: Stanza::TYPE_P256_HPKE,
        body: vec![0x04; P256_STANZA_BODY_LEN],
    });
    assert!(matches!(
        write_err(&h),
        HeaderError::Malformed(Malformation::StanzaLength(_))
    ));
    // Nor exceed the body limit.
    let mut h = base();
    h.stanzas.push(Stanza::Unknown {
        kind: 2,
        body: vec![0; usize::from(MAX_STANZA_BODY_LEN) + 1],
    });
    assert!(matches!(
        write_err(&h),
        HeaderError::Malformed(Malformation::StanzaLength(_))
    ));
    h.stanzas[1] = Stanza::Unknown {
        kind: 2,
        body: vec![0; usize::from(MAX_STANZA_BODY_LEN)],
    };
    assert_eq!(read::header_exact(&encode(&h)), Ok(h));
}

#[test]
fn writer_appends_to_existing_buffer() {
    let h = base();
    let mut out = b"abc".to_vec();
    write::header(&h, &mut out).unwrap();
    assert_eq!(&out[..3], b"abc");
    assert_eq!(&out[3..], &encode(&h)[..]);
    assert_eq!(read::header_exact(&out[3..]), Ok(h));
}

// ---------------------------------------------------------------------------
// Error classes.

#[test]
fn header_error_classes() {
    assert_eq!(HeaderError::NotKapsel.class(), HeaderClass::NotKapsel);
    for e in [
        HeaderError::UnsupportedVersion { found: 2 },
        HeaderError::UnsupportedSuite { found: 2 },
        HeaderError::UnsupportedExtension { kind: 0x8000 },
    ] {
        assert_eq!(e.class(), HeaderClass::Unsupported, "{e:?}");
    }
    assert_eq!(HeaderError::Truncated.class(), HeaderClass::Malformed);
    for m in [
        Malformation::ChunkSize(0),
        Malformation::HeaderLength(0),
        Malformation::CreatedAt,
        Malformation::SenderKind(2),
        Malformation::PointEncoding,
        Malformation::RecipientCount(0),
        Malformation::StanzaLength(0),
        Malformation::DuplicateStanza,
        Malformation::ExtensionsLength(0),
        Malformation::ExtensionOrder,
        Malformation::Overrun,
        Malformation::TrailingBytes,
    ] {
        let e: HeaderError = m.into();
        assert_eq!(e, HeaderError::Malformed(m));
        assert_eq!(e.class(), HeaderClass::Malformed, "{e:?}");
        assert!(!e.to_string().is_empty());
    }
}

#[test]
fn suite_ids() {
    assert_eq!(Suite::P256HpkeCobblestone256.id(), 1);
    assert_eq!(Suite::from_id(1), Some(Suite::P256HpkeCobblestone256));
    assert_eq!(Suite::from_id(0), None);
    assert_eq!(Suite::from_id(2), None);
    assert!(!Suite::P256HpkeCobblestone256.name().is_empty());
}
