//! The `nom` parser. [`header`] is a streaming parser: on a short input it
//! returns `Incomplete(Needed::Size(n))` with the exact number of further
//! bytes it needs, and it never needs more than `header_len` bytes in total,
//! so a reader that feeds it exactly what it asks for stops at the first
//! payload byte.

use nom::bytes::complete::take;
use nom::error::{ErrorKind, ParseError};
use nom::number::complete::{be_u16, be_u64, be_u8};
use nom::{Err, IResult, Needed};

use nom::number::complete::be_u32;

use crate::{
    check_passphrase_params, max_header_len, min_header_len, Extension, Header, HeaderError,
    HybridEnc, Malformation, P256Point, Sender, Stanza, Suite, CHUNK_SIZE_LOG2, EXTENSION_CRITICAL,
    HYBRID_ENC_LEN, HYBRID_STANZA_BODY_LEN, KEY_HINT_LEN, MAGIC, MAX_CREATED_AT,
    MAX_EXTENSIONS_LEN, MAX_RECIPIENTS, MAX_STANZA_BODY_LEN, MAX_STANZA_BODY_LEN_V2,
    P256_POINT_LEN, P256_STANZA_BODY_LEN, PASSPHRASE_SALT_LEN, PASSPHRASE_STANZA_BODY_LEN,
    PREFIX_LEN, VERSION_1, VERSION_2, WRAPPED_KEY_LEN,
};

/// The parser's error type: a [`HeaderError`], so nom failures map to one
/// outcome class. Errors raised by nom itself mean a field overran its
/// enclosing length.
impl<I> ParseError<I> for HeaderError {
    fn from_error_kind(_input: I, _kind: ErrorKind) -> Self {
        HeaderError::Malformed(Malformation::Overrun)
    }

    fn append(_input: I, _kind: ErrorKind, other: Self) -> Self {
        other
    }
}

type Res<'a, T> = IResult<&'a [u8], T, HeaderError>;

fn fail<T>(e: impl Into<HeaderError>) -> Result<T, Err<HeaderError>> {
    Err(Err::Failure(e.into()))
}

/// The fixed 16-byte prefix of every header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Prefix {
    /// The format version, [`VERSION_1`] or [`VERSION_2`].
    pub version: u8,
    /// The suite the header declares.
    pub suite: Suite,
    /// Total header length in bytes, prefix included.
    pub header_len: u32,
}

/// Parses the prefix, checking each field as soon as its bytes are present:
/// a wrong magic is reported as [`HeaderError::NotKapsel`] even from a
/// shorter input, and an unknown version before the suite is looked at.
pub fn prefix(input: &[u8]) -> Res<'_, Prefix> {
    let seen = input.len().min(MAGIC.len());
    if input[..seen] != MAGIC[..seen] {
        return fail(HeaderError::NotKapsel);
    }
    if input.len() >= 9 && input[8] != VERSION_1 && input[8] != VERSION_2 {
        return fail(HeaderError::UnsupportedVersion { found: input[8] });
    }
    if input.len() >= 11 {
        let id = u16::from_be_bytes([input[9], input[10]]);
        if Suite::from_id(id).is_none() {
            return fail(HeaderError::UnsupportedSuite { found: id });
        }
    }
    if input.len() < PREFIX_LEN {
        return Err(Err::Incomplete(Needed::new(PREFIX_LEN - input.len())));
    }
    let suite = Suite::from_id(u16::from_be_bytes([input[9], input[10]]))
        .ok_or(Err::Failure(HeaderError::Truncated))?;
    if input[11] != CHUNK_SIZE_LOG2 {
        return fail(Malformation::ChunkSize(input[11]));
    }
    let version = input[8];
    let header_len = u32::from_be_bytes([input[12], input[13], input[14], input[15]]);
    if !(min_header_len(version)..=max_header_len(version)).contains(&header_len) {
        return fail(Malformation::HeaderLength(header_len));
    }
    Ok((
        &input[PREFIX_LEN..],
        Prefix {
            version,
            suite,
            header_len,
        },
    ))
}

/// Streaming header parser. On success returns the input after the header
/// and the header; the header's bytes are `input[..prefix.header_len]`.
pub fn header(input: &[u8]) -> Res<'_, Header> {
    let (_, prefix) = prefix(input)?;
    let total = prefix.header_len as usize;
    if input.len() < total {
        return Err(Err::Incomplete(Needed::new(total - input.len())));
    }
    let (body, rest) = (&input[PREFIX_LEN..total], &input[total..]);
    let (_, header) = header_body(prefix.version, prefix.suite, body).map_err(|e| match e {
        // Inside the declared length the input is complete: running short
        // means a field overran `header_len`.
        Err::Incomplete(_) => Err::Failure(Malformation::Overrun.into()),
        Err::Error(e) | Err::Failure(e) => Err::Failure(e),
    })?;
    // The body parser applied every rule in byte order; `check` is the
    // serializer's rule set and must agree.
    debug_assert_eq!(header.check(), Ok(()));
    Ok((rest, header))
}

/// Parses a complete header that must span `input` exactly.
pub fn header_exact(input: &[u8]) -> Result<Header, HeaderError> {
    match header(input) {
        Ok(([], h)) => Ok(h),
        Ok(_) => Err(Malformation::TrailingBytes.into()),
        Err(Err::Incomplete(_)) => Err(HeaderError::Truncated),
        Err(Err::Error(e) | Err::Failure(e)) => Err(e),
    }
}

fn header_body(version: u8, suite: Suite, input: &[u8]) -> Res<'_, Header> {
    let (input, created_at) = be_u64(input)?;
    if created_at > MAX_CREATED_AT {
        return fail(Malformation::CreatedAt);
    }
    let (input, serial) = be_u64(input)?;
    let (input, sender) = sender(input)?;
    let (input, count) = be_u16(input)?;
    if count == 0 || count > MAX_RECIPIENTS {
        return fail(Malformation::RecipientCount(count));
    }
    let mut stanzas = Vec::with_capacity(usize::from(count));
    let mut input = input;
    for _ in 0..count {
        let (rest, s) = stanza(version, count, input)?;
        if stanzas.contains(&s) {
            return fail(Malformation::DuplicateStanza);
        }
        stanzas.push(s);
        input = rest;
    }
    if version == VERSION_2 && !stanzas.iter().any(Stanza::needs_version_2) {
        return fail(Malformation::NeedlessVersion2);
    }
    let (input, extensions) = extensions(input)?;
    if !input.is_empty() {
        return fail(Malformation::TrailingBytes);
    }
    let header = Header {
        suite,
        created_at,
        serial,
        sender,
        stanzas,
        extensions,
    };
    Ok((input, header))
}

fn point(input: &[u8]) -> Res<'_, P256Point> {
    let (input, bytes) = take(P256_POINT_LEN)(input)?;
    let mut p = [0u8; P256_POINT_LEN];
    p.copy_from_slice(bytes);
    if p[0] != 0x04 {
        return fail(Malformation::PointEncoding);
    }
    Ok((input, P256Point(p)))
}

fn sender(input: &[u8]) -> Res<'_, Sender> {
    let (input, kind) = be_u8(input)?;
    match kind {
        Sender::KIND_ANONYMOUS => Ok((input, Sender::Anonymous)),
        Sender::KIND_P256 => {
            let (input, p) = point(input)?;
            Ok((input, Sender::P256(p)))
        }
        other => fail(Malformation::SenderKind(other)),
    }
}

/// The fixed body length of a stanza type this version knows.
fn known_body_len(version: u8, kind: u16) -> Option<usize> {
    match (version, kind) {
        (_, Stanza::TYPE_P256_HPKE) => Some(P256_STANZA_BODY_LEN),
        (VERSION_2, Stanza::TYPE_HYBRID_PQ) => Some(HYBRID_STANZA_BODY_LEN),
        (VERSION_2, Stanza::TYPE_PASSPHRASE) => Some(PASSPHRASE_STANZA_BODY_LEN),
        _ => None,
    }
}

fn array<const N: usize>(input: &[u8]) -> Res<'_, [u8; N]> {
    let (input, bytes) = take(N)(input)?;
    let mut out = [0u8; N];
    out.copy_from_slice(bytes);
    Ok((input, out))
}

fn stanza(version: u8, count: u16, input: &[u8]) -> Res<'_, Stanza> {
    let (input, kind) = be_u16(input)?;
    let (input, body_len) = be_u16(input)?;
    let max = if version == VERSION_2 {
        MAX_STANZA_BODY_LEN_V2
    } else {
        MAX_STANZA_BODY_LEN
    };
    let known = known_body_len(version, kind);
    if body_len > max || known.is_some_and(|len| usize::from(body_len) != len) {
        return fail(Malformation::StanzaLength(body_len));
    }
    let (input, body) = take(body_len)(input)?;
    if known.is_none() {
        return Ok((
            input,
            Stanza::Unknown {
                kind,
                body: body.to_vec(),
            },
        ));
    }
    let stanza = match kind {
        Stanza::TYPE_P256_HPKE => {
            let (b, hint) = array::<KEY_HINT_LEN>(body)?;
            let (b, enc) = point(b)?;
            let (_, wrapped_key) = array::<WRAPPED_KEY_LEN>(b)?;
            Stanza::P256Hpke {
                hint,
                enc,
                wrapped_key,
            }
        }
        Stanza::TYPE_HYBRID_PQ => {
            let (b, hint) = array::<KEY_HINT_LEN>(body)?;
            let (b, enc) = take(HYBRID_ENC_LEN)(b)?;
            let (_, wrapped_key) = array::<WRAPPED_KEY_LEN>(b)?;
            let mut e = Box::new([0u8; HYBRID_ENC_LEN]);
            e.copy_from_slice(enc);
            if e[HYBRID_ENC_LEN - P256_POINT_LEN] != 0x04 {
                return fail(Malformation::PointEncoding);
            }
            Stanza::HybridPq {
                hint,
                enc: HybridEnc(e),
                wrapped_key,
            }
        }
        _ => {
            // TYPE_PASSPHRASE, the only other type with a known length.
            if count != 1 {
                return fail(Malformation::PassphraseNotAlone);
            }
            let (b, salt) = array::<PASSPHRASE_SALT_LEN>(body)?;
            let (b, memory_kib) = be_u32(b)?;
            let (b, passes) = be_u32(b)?;
            let (b, lanes) = be_u8(b)?;
            let (_, wrapped_key) = array::<WRAPPED_KEY_LEN>(b)?;
            check_passphrase_params(memory_kib, passes, lanes).map_err(Err::Failure)?;
            Stanza::Passphrase {
                salt,
                memory_kib,
                passes,
                lanes,
                wrapped_key,
            }
        }
    };
    Ok((input, stanza))
}

fn extensions(input: &[u8]) -> Res<'_, Vec<Extension>> {
    let (input, len) = be_u16(input)?;
    if len > MAX_EXTENSIONS_LEN {
        return fail(Malformation::ExtensionsLength(len));
    }
    let (input, mut area) = take(len)(input)?;
    let mut out = Vec::new();
    while !area.is_empty() {
        // The type is judged before its length: first problem in byte order.
        let (rest, kind) = be_u16(area)?;
        if out.last().is_some_and(|e: &Extension| e.kind >= kind) {
            return fail(Malformation::ExtensionOrder);
        }
        if kind & EXTENSION_CRITICAL != 0 {
            return fail(HeaderError::UnsupportedExtension { kind });
        }
        let (rest, value_len) = be_u16(rest)?;
        let (rest, value) = take(value_len)(rest)?;
        out.push(Extension {
            kind,
            value: value.to_vec(),
        });
        area = rest;
    }
    Ok((input, out))
}
