//! The `nom` parser. [`header`] is a streaming parser: on a short input it
//! returns `Incomplete(Needed::Size(n))` with the exact number of further
//! bytes it needs, and it never needs more than `header_len` bytes in total,
//! so a reader that feeds it exactly what it asks for stops at the first
//! payload byte.

use nom::bytes::complete::take;
use nom::error::{ErrorKind, ParseError};
use nom::number::complete::{be_u16, be_u64, be_u8};
use nom::{Err, IResult, Needed};

use crate::{
    Extension, Header, HeaderError, Malformation, P256Point, Sender, Stanza, Suite,
    CHUNK_SIZE_LOG2, EXTENSION_CRITICAL, KEY_HINT_LEN, MAGIC, MAX_CREATED_AT, MAX_EXTENSIONS_LEN,
    MAX_HEADER_LEN, MAX_RECIPIENTS, MAX_STANZA_BODY_LEN, MIN_HEADER_LEN, P256_POINT_LEN,
    P256_STANZA_BODY_LEN, PREFIX_LEN, VERSION_1, WRAPPED_KEY_LEN,
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
    if input.len() >= 9 && input[8] != VERSION_1 {
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
    let header_len = u32::from_be_bytes([input[12], input[13], input[14], input[15]]);
    if !(MIN_HEADER_LEN..=MAX_HEADER_LEN).contains(&header_len) {
        return fail(Malformation::HeaderLength(header_len));
    }
    Ok((&input[PREFIX_LEN..], Prefix { suite, header_len }))
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
    let (_, header) = header_body(prefix.suite, body).map_err(|e| match e {
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

fn header_body(suite: Suite, input: &[u8]) -> Res<'_, Header> {
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
        let (rest, s) = stanza(input)?;
        if stanzas.contains(&s) {
            return fail(Malformation::DuplicateStanza);
        }
        stanzas.push(s);
        input = rest;
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

fn stanza(input: &[u8]) -> Res<'_, Stanza> {
    let (input, kind) = be_u16(input)?;
    let (input, body_len) = be_u16(input)?;
    if body_len > MAX_STANZA_BODY_LEN
        || (kind == Stanza::TYPE_P256_HPKE && usize::from(body_len) != P256_STANZA_BODY_LEN)
    {
        return fail(Malformation::StanzaLength(body_len));
    }
    let (input, body) = take(body_len)(input)?;
    if kind != Stanza::TYPE_P256_HPKE {
        return Ok((
            input,
            Stanza::Unknown {
                kind,
                body: body.to_vec(),
            },
        ));
    }
    let (b, hint) = take(KEY_HINT_LEN)(body)?;
    let (b, enc) = point(b)?;
    let (_, wrapped) = take(WRAPPED_KEY_LEN)(b)?;
    let mut h = [0u8; KEY_HINT_LEN];
    h.copy_from_slice(hint);
    let mut w = [0u8; WRAPPED_KEY_LEN];
    w.copy_from_slice(wrapped);
    Ok((
        input,
        Stanza::P256Hpke {
            hint: h,
            enc,
            wrapped_key: w,
        },
    ))
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
