//! Property tests of the parser and serializer: round trips both ways,
//! streaming behaviour on every prefix, the header boundary, robustness on
//! arbitrary input, canonicity of everything accepted, and agreement between
//! what the serializer refuses and what the parser refuses.
#![allow(clippy::unwrap_used)]

use kapsel_format::{
    read, write, Extension, Header, HeaderError, Malformation, P256Point, Sender, Stanza, Suite,
    EXTENSION_CRITICAL, KEY_HINT_LEN, MAGIC, MAX_CREATED_AT, MAX_HEADER_LEN, MIN_HEADER_LEN,
    P256_POINT_LEN, PREFIX_LEN, WRAPPED_KEY_LEN,
};
use nom::{Err, Needed};
use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use proptest::sample::Index;

// ---------------------------------------------------------------------------
// Strategies for valid headers.

/// A point with the `0x04` prefix and 64 random bytes (the format crate
/// checks only the prefix).
fn point() -> impl Strategy<Value = P256Point> {
    vec(any::<u8>(), P256_POINT_LEN - 1).prop_map(|rest| {
        let mut p = [0u8; P256_POINT_LEN];
        p[0] = 0x04;
        p[1..].copy_from_slice(&rest);
        P256Point(p)
    })
}

fn p256_stanza() -> impl Strategy<Value = Stanza> {
    (
        any::<[u8; KEY_HINT_LEN]>(),
        point(),
        vec(any::<u8>(), WRAPPED_KEY_LEN),
    )
        .prop_map(|(hint, enc, w)| {
            let mut wrapped_key = [0u8; WRAPPED_KEY_LEN];
            wrapped_key.copy_from_slice(&w);
            Stanza::P256Hpke {
                hint,
                enc,
                wrapped_key,
            }
        })
}

fn unknown_stanza() -> impl Strategy<Value = Stanza> {
    (
        prop_oneof![2u16..16, any::<u16>()].prop_filter("type 1 is the P-256 stanza", |k| {
            *k != Stanza::TYPE_P256_HPKE
        }),
        vec(any::<u8>(), 0..=64),
    )
        .prop_map(|(kind, body)| Stanza::Unknown { kind, body })
}

fn stanzas() -> impl Strategy<Value = Vec<Stanza>> {
    vec(
        prop_oneof![8 => p256_stanza(), 2 => unknown_stanza()],
        1..=8,
    )
    .prop_map(|all| {
        let mut out: Vec<Stanza> = Vec::with_capacity(all.len());
        for s in all {
            if !out.contains(&s) {
                out.push(s);
            }
        }
        out
    })
}

fn sender() -> impl Strategy<Value = Sender> {
    prop_oneof![Just(Sender::Anonymous), point().prop_map(Sender::P256)]
}

fn extensions() -> impl Strategy<Value = Vec<Extension>> {
    btree_map(
        prop_oneof![0u16..8, 0u16..EXTENSION_CRITICAL],
        vec(any::<u8>(), 0..=32),
        0..4,
    )
    .prop_map(|m| {
        m.into_iter()
            .map(|(kind, value)| Extension { kind, value })
            .collect()
    })
}

fn created_at() -> impl Strategy<Value = u64> {
    prop_oneof![
        1 => Just(0),
        1 => Just(MAX_CREATED_AT),
        8 => 0..=MAX_CREATED_AT,
    ]
}

/// Arbitrary valid headers.
fn header() -> impl Strategy<Value = Header> {
    (
        created_at(),
        any::<u64>(),
        sender(),
        stanzas(),
        extensions(),
    )
        .prop_map(|(created_at, serial, sender, stanzas, extensions)| Header {
            suite: Suite::P256HpkeCobblestone256,
            created_at,
            serial,
            sender,
            stanzas,
            extensions,
        })
        // A header made of a few small unknown stanzas can be shorter than
        // MIN_HEADER_LEN, which SPEC.md refuses.
        .prop_filter("shorter than MIN_HEADER_LEN", |h| {
            h.encoded_len() >= MIN_HEADER_LEN as usize
        })
}

/// A valid header and its encoding.
fn encoded() -> impl Strategy<Value = (Header, Vec<u8>)> {
    header().prop_map(|h| {
        let b = write::header_to_vec(&h).unwrap();
        (h, b)
    })
}

// ---------------------------------------------------------------------------
// An independent encoder that checks nothing, to encode invalid headers.

fn encode_unchecked(h: &Header) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&MAGIC);
    b.push(1);
    b.extend_from_slice(&h.suite.id().to_be_bytes());
    b.push(14);
    b.extend_from_slice(&[0; 4]);
    b.extend_from_slice(&h.created_at.to_be_bytes());
    b.extend_from_slice(&h.serial.to_be_bytes());
    match &h.sender {
        Sender::Anonymous => b.push(0),
        Sender::P256(p) => {
            b.push(1);
            b.extend_from_slice(&p.0);
        }
    }
    b.extend_from_slice(&(h.stanzas.len() as u16).to_be_bytes());
    for s in &h.stanzas {
        match s {
            Stanza::P256Hpke {
                hint,
                enc,
                wrapped_key,
            } => {
                b.extend_from_slice(&[0, 1, 0, 117]);
                b.extend_from_slice(hint);
                b.extend_from_slice(&enc.0);
                b.extend_from_slice(wrapped_key);
            }
            Stanza::Unknown { kind, body } => {
                b.extend_from_slice(&kind.to_be_bytes());
                b.extend_from_slice(&(body.len() as u16).to_be_bytes());
                b.extend_from_slice(body);
            }
            // The strategies here are version 1 only; version 2 stanzas are
            // covered by tests/version2.rs.
            _ => unreachable!("no version 2 stanza in a version 1 strategy"),
        }
    }
    let area: usize = h.extensions.iter().map(|e| 4 + e.value.len()).sum();
    b.extend_from_slice(&(area as u16).to_be_bytes());
    for e in &h.extensions {
        b.extend_from_slice(&e.kind.to_be_bytes());
        b.extend_from_slice(&(e.value.len() as u16).to_be_bytes());
        b.extend_from_slice(&e.value);
    }
    let n = b.len() as u32;
    b[12..16].copy_from_slice(&n.to_be_bytes());
    b
}

/// Headers that may break any rule that does not depend on the byte layout:
/// zero or duplicate stanzas, late timestamps, non-0x04 points, unknown
/// stanzas of type 1, unsorted or critical extensions, short headers.
fn loose_header() -> impl Strategy<Value = Header> {
    let loose_point = || {
        (prop_oneof![3 => Just(0x04u8), 1 => any::<u8>()], point()).prop_map(|(first, mut p)| {
            p.0[0] = first;
            p
        })
    };
    let loose_sender = prop_oneof![
        Just(Sender::Anonymous),
        loose_point().prop_map(Sender::P256)
    ];
    let loose_stanza = prop_oneof![
        4 => (any::<[u8; KEY_HINT_LEN]>(), loose_point(), any::<u8>()).prop_map(
            |(hint, enc, w)| Stanza::P256Hpke { hint, enc, wrapped_key: [w; WRAPPED_KEY_LEN] }
        ),
        1 => (prop_oneof![Just(1u16), 0u16..4, any::<u16>()], vec(any::<u8>(), 0..=130))
            .prop_map(|(kind, body)| Stanza::Unknown { kind, body }),
    ];
    let loose_stanzas =
        (vec(loose_stanza, 0..=5), any::<Option<(Index, Index)>>()).prop_map(|(mut v, dup)| {
            if let (Some((from, to)), false) = (dup, v.is_empty()) {
                let s = v[from.index(v.len())].clone();
                let at = to.index(v.len() + 1);
                v.insert(at, s);
            }
            v
        });
    let loose_extensions = vec(
        (
            prop_oneof![4 => 0u16..6, 1 => any::<u16>()],
            vec(any::<u8>(), 0..=8),
        )
            .prop_map(|(kind, value)| Extension { kind, value }),
        0..4,
    );
    let loose_created_at = prop_oneof![
        4 => 0..=MAX_CREATED_AT,
        1 => Just(MAX_CREATED_AT + 1),
        1 => MAX_CREATED_AT + 1..=u64::MAX,
    ];
    (
        loose_created_at,
        any::<u64>(),
        loose_sender,
        loose_stanzas,
        loose_extensions,
    )
        .prop_map(|(created_at, serial, sender, stanzas, extensions)| Header {
            suite: Suite::P256HpkeCobblestone256,
            created_at,
            serial,
            sender,
            stanzas,
            extensions,
        })
}

// ---------------------------------------------------------------------------
// Oracle for arbitrary input.

/// Runs both parsers on `bytes` and checks they agree with each other and
/// with the serializer. Must not panic on anything.
fn judge(bytes: &[u8]) -> Result<(), TestCaseError> {
    let exact = read::header_exact(bytes);
    match read::header(bytes) {
        Ok((rest, h)) => {
            let used = bytes.len() - rest.len();
            prop_assert!(used >= MIN_HEADER_LEN as usize && used <= MAX_HEADER_LEN as usize);
            prop_assert_eq!(
                &bytes[12..16],
                &(used as u32).to_be_bytes()[..],
                "consumed exactly header_len"
            );
            // Everything accepted is canonical: it re-encodes to itself.
            prop_assert_eq!(&write::header_to_vec(&h)?[..], &bytes[..used]);
            prop_assert_eq!(h.encoded_len(), used);
            if rest.is_empty() {
                prop_assert_eq!(exact, Ok(h));
            } else {
                prop_assert_eq!(exact, Err(Malformation::TrailingBytes.into()));
            }
        }
        Err(Err::Incomplete(Needed::Size(n))) => {
            // Never asks for more than a maximal header.
            prop_assert!(bytes.len() + n.get() <= MAX_HEADER_LEN as usize);
            if bytes.len() < PREFIX_LEN {
                prop_assert_eq!(n.get(), PREFIX_LEN - bytes.len());
            }
            prop_assert_eq!(exact, Err(HeaderError::Truncated));
        }
        Err(Err::Incomplete(Needed::Unknown)) => {
            prop_assert!(false, "the parser must say how many bytes it needs");
        }
        Err(Err::Error(e) | Err::Failure(e)) => {
            prop_assert_ne!(&e, &HeaderError::Truncated);
            prop_assert_eq!(exact, Err(e));
        }
    }
    Ok(())
}

fn header_len_field(b: &mut [u8], v: u32) {
    b[12..16].copy_from_slice(&v.to_be_bytes());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    // (1) parse(write(h)) == h.
    #[test]
    fn parse_inverts_write(h in header()) {
        let b = write::header_to_vec(&h)?;
        prop_assert_eq!(b.len(), h.encoded_len());
        prop_assert_eq!(&b[..8], &MAGIC[..]);
        prop_assert_eq!(&b[12..16], &(b.len() as u32).to_be_bytes()[..]);
        prop_assert_eq!(read::header_exact(&b)?, h.clone());
        prop_assert_eq!(read::header(&b), Ok((&[][..], h.clone())));
        // The unchecked reference encoder agrees byte for byte.
        prop_assert_eq!(encode_unchecked(&h), b);
    }

    // (2) write(parse(b)) == b.
    #[test]
    fn write_inverts_parse((_h, b) in encoded()) {
        let parsed = read::header_exact(&b)?;
        prop_assert_eq!(write::header_to_vec(&parsed)?, b.clone());
        // Appending to a non-empty buffer writes the same bytes.
        let mut out = vec![0xaa; 3];
        write::header(&parsed, &mut out)?;
        prop_assert_eq!(&out[3..], &b[..]);
    }

    // (3) Every strict prefix is Incomplete with an exact, bounded request.
    #[test]
    fn streaming_parser_asks_for_exactly_the_rest((_h, full) in encoded()) {
        for cut in 0..full.len() {
            match read::header(&full[..cut]) {
                Err(Err::Incomplete(Needed::Size(n))) => {
                    let n = n.get();
                    prop_assert!(cut + n <= full.len(), "cut {} asked {} of {}", cut, n, full.len());
                    let expect = if cut < PREFIX_LEN { PREFIX_LEN - cut } else { full.len() - cut };
                    prop_assert_eq!(n, expect, "cut {}", cut);
                }
                other => prop_assert!(false, "prefix of {} bytes: {:?}", cut, other),
            }
            prop_assert_eq!(read::header_exact(&full[..cut]), Err(HeaderError::Truncated));
        }
    }

    // (3) Feeding exactly what is asked for, from any starting point, stops
    // at the end of the header even when payload bytes follow.
    #[test]
    fn streaming_parser_fed_on_demand_stops_at_header_end(
        (h, full) in encoded(),
        payload in vec(any::<u8>(), 0..64),
        start in any::<Index>(),
    ) {
        let mut stream = full.clone();
        stream.extend_from_slice(&payload);
        let mut have = start.index(full.len() + 1);
        let mut calls = 0;
        loop {
            calls += 1;
            prop_assert!(calls <= 3, "more than prefix + body + done");
            match read::header(&stream[..have]) {
                Ok((rest, parsed)) => {
                    prop_assert!(rest.is_empty());
                    prop_assert_eq!(have, full.len());
                    prop_assert_eq!(parsed, h);
                    break;
                }
                Err(Err::Incomplete(Needed::Size(n))) => {
                    have += n.get();
                    prop_assert!(have <= full.len(), "asked past the header");
                }
                other => {
                    prop_assert!(false, "at {} bytes: {:?}", have, other);
                }
            }
        }
    }

    // (4) The parser never consumes past header_len.
    #[test]
    fn bytes_after_the_header_are_left_alone(
        (h, full) in encoded(),
        extra in vec(any::<u8>(), 1..128),
    ) {
        let mut b = full.clone();
        b.extend_from_slice(&extra);
        let (rest, parsed) = read::header(&b).map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
        prop_assert_eq!(rest, &extra[..]);
        prop_assert_eq!(parsed, h);
        prop_assert_eq!(read::header_exact(&b), Err(Malformation::TrailingBytes.into()));
    }

    // (5) Arbitrary bytes never panic, and the two parsers agree.
    #[test]
    fn arbitrary_bytes_never_panic(b in vec(any::<u8>(), 0..=300)) {
        judge(&b)?;
    }

    #[test]
    fn arbitrary_bytes_after_magic_never_panic(tail in vec(any::<u8>(), 0..=300)) {
        let mut b = MAGIC.to_vec();
        b.extend_from_slice(&tail);
        judge(&b)?;
        if b.len() > 8 {
            b[8] = 1;
            judge(&b)?;
        }
    }

    /// Random bytes after a valid 16-byte prefix exercise the body parser.
    #[test]
    fn arbitrary_body_after_valid_prefix_never_panics(
        body in vec(any::<u8>(), 0..=400),
        claim in prop_oneof![
            3 => Just(None),
            1 => (MIN_HEADER_LEN..=MAX_HEADER_LEN).prop_map(Some),
        ],
    ) {
        let mut b = Vec::new();
        b.extend_from_slice(&MAGIC);
        b.extend_from_slice(&[1, 0, 1, 14]);
        let len = claim.unwrap_or((PREFIX_LEN + body.len()) as u32);
        b.extend_from_slice(&len.to_be_bytes());
        b.extend_from_slice(&body);
        judge(&b)?;
        for cut in [0, 1, 8, 9, 11, 12, 15, 16, 17, b.len() / 2] {
            judge(&b[..cut.min(b.len())])?;
        }
    }

    /// Random bodies that start like a plausible header.
    #[test]
    fn plausible_body_after_valid_prefix_never_panics(
        created_at in any::<u64>(),
        sender_kind in prop_oneof![Just(0u8), Just(1u8), any::<u8>()],
        count in prop_oneof![1u16..4, any::<u16>()],
        tail in vec(any::<u8>(), 0..=400),
    ) {
        let mut b = Vec::new();
        b.extend_from_slice(&MAGIC);
        b.extend_from_slice(&[1, 0, 1, 14, 0, 0, 0, 0]);
        b.extend_from_slice(&created_at.to_be_bytes());
        b.extend_from_slice(&[0; 8]);
        b.push(sender_kind);
        if sender_kind == 1 {
            b.push(0x04);
            b.extend_from_slice(&[0x11; 64]);
        }
        b.extend_from_slice(&count.to_be_bytes());
        b.extend_from_slice(&tail);
        let n = b.len().max(MIN_HEADER_LEN as usize);
        b.resize(n, 0);
        header_len_field(&mut b, n as u32);
        judge(&b)?;
    }

    /// Mutations of valid encodings: anything still accepted is canonical.
    #[test]
    fn mutated_headers_never_panic_and_stay_canonical(
        (_h, full) in encoded(),
        edits in vec((any::<Index>(), any::<u8>(), 0u8..4), 1..6),
    ) {
        let mut b = full.clone();
        for (at, byte, op) in edits {
            let i = at.index(b.len() + 1);
            match op {
                0 if i < b.len() => b[i] = byte,
                1 if i < b.len() => b[i] ^= 1 << (byte % 8),
                2 => b.insert(i, byte),
                _ if i < b.len() => { b.remove(i); }
                _ => b.push(byte),
            }
        }
        judge(&b)?;
        // Also with header_len made consistent with the new length.
        if b.len() >= PREFIX_LEN {
            let n = b.len() as u32;
            header_len_field(&mut b, n);
            judge(&b)?;
        }
    }

    // (6) header_len must be exactly the header's length.
    #[test]
    fn any_other_header_len_is_refused(
        (_h, full) in encoded(),
        v in any::<u32>(),
        delta in -300i64..=300,
    ) {
        let len = full.len() as u32;
        let near = (i64::from(len) + delta).clamp(0, i64::from(u32::MAX)) as u32;
        for claim in [v, near, len - 1, len + 1, MIN_HEADER_LEN, MAX_HEADER_LEN] {
            if claim == len {
                continue;
            }
            let mut b = full.clone();
            header_len_field(&mut b, claim);
            let got = read::header_exact(&b);
            let want: HeaderError = if !(MIN_HEADER_LEN..=MAX_HEADER_LEN).contains(&claim) {
                Malformation::HeaderLength(claim).into()
            } else if claim > len {
                HeaderError::Truncated
            } else {
                Malformation::Overrun.into()
            };
            prop_assert_eq!(got, Err(want), "header_len {} for {} bytes", claim, len);
            // With enough bytes after it to satisfy a larger claim, the
            // extra bytes are trailing bytes inside the header.
            if claim > len && claim <= len + 300 && claim <= MAX_HEADER_LEN {
                b.resize(claim as usize, 0);
                prop_assert_eq!(
                    read::header_exact(&b),
                    Err(Malformation::TrailingBytes.into())
                );
            }
        }
    }

    // (6) A byte slipped into the extension area, with header_len bumped to
    // match but extensions_len untouched, is refused.
    #[test]
    fn byte_inserted_into_extension_area_is_refused(
        (h, full) in encoded(),
        at in any::<Index>(),
        byte in any::<u8>(),
    ) {
        let area: usize = h.extensions.iter().map(|e| 4 + e.value.len()).sum();
        let area_start = full.len() - area;
        prop_assert_eq!(&full[area_start - 2..area_start], &(area as u16).to_be_bytes()[..]);
        let i = area_start + at.index(area + 1);
        let mut b = full.clone();
        b.insert(i, byte);
        header_len_field(&mut b, full.len() as u32 + 1);
        let got = read::header_exact(&b);
        prop_assert!(got.is_err(), "accepted {:?}", got);
        if i == full.len() {
            prop_assert_eq!(got, Err(Malformation::TrailingBytes.into()));
        }
    }

    // The serializer refuses exactly what the parser refuses.
    #[test]
    fn writer_refuses_what_parser_refuses(h in loose_header()) {
        let raw = encode_unchecked(&h);
        let parsed = read::header_exact(&raw);
        match write::header_to_vec(&h) {
            Ok(b) => {
                prop_assert_eq!(&b, &raw);
                prop_assert_eq!(parsed, Ok(h.clone()));
                prop_assert_eq!(h.check(), Ok(()));
            }
            Err(e) => {
                prop_assert_eq!(h.check(), Err(e.clone()));
                // The bytes may still be a valid encoding of a *different*
                // header (an "unknown" stanza of type 1 that happens to look
                // like a P-256 stanza), but never of this one.
                if let Ok(other) = &parsed {
                    prop_assert_ne!(other, &h, "parser accepted what the writer refused ({:?})", e);
                    prop_assert!(
                        h.stanzas.iter().any(|s| matches!(s, Stanza::Unknown { kind: 1, .. })),
                        "writer refused {:?} ({:?}) but the parser read {:?}", h, e, other
                    );
                }
            }
        }
        judge(&raw)?;
    }
}
