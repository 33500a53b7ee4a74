//! The serializer, the mirror image of [`crate::read`]. It refuses any
//! header that [`Header::check`] refuses, so it only ever writes what the
//! parser accepts, in the one canonical encoding.

use byteorder::{BigEndian, WriteBytesExt};

use crate::{Extension, Header, HeaderError, Sender, Stanza, CHUNK_SIZE_LOG2, MAGIC};

/// Appends the encoding of `header` to `out`.
pub fn header(header: &Header, out: &mut Vec<u8>) -> Result<(), HeaderError> {
    header.check()?;
    let len = header.encoded_len();
    out.reserve(len);
    let start = out.len();
    // Writes into a Vec cannot fail; `io::Write for Vec<u8>` is infallible.
    let w = out;
    w.extend_from_slice(&MAGIC);
    w.push(header.version());
    put_u16(w, header.suite.id());
    w.push(CHUNK_SIZE_LOG2);
    put_u32(w, len as u32);
    put_u64(w, header.created_at);
    put_u64(w, header.serial);
    match &header.sender {
        Sender::Anonymous => w.push(Sender::KIND_ANONYMOUS),
        Sender::P256(p) => {
            w.push(Sender::KIND_P256);
            w.extend_from_slice(&p.0);
        }
    }
    put_u16(w, header.stanzas.len() as u16);
    for stanza in &header.stanzas {
        put_u16(w, stanza.kind());
        match stanza {
            Stanza::P256Hpke {
                hint,
                enc,
                wrapped_key,
            } => {
                put_u16(w, crate::P256_STANZA_BODY_LEN as u16);
                w.extend_from_slice(hint);
                w.extend_from_slice(&enc.0);
                w.extend_from_slice(wrapped_key);
            }
            Stanza::HybridPq {
                hint,
                enc,
                wrapped_key,
            } => {
                put_u16(w, crate::HYBRID_STANZA_BODY_LEN as u16);
                w.extend_from_slice(hint);
                w.extend_from_slice(&enc.0[..]);
                w.extend_from_slice(wrapped_key);
            }
            Stanza::Passphrase {
                salt,
                memory_kib,
                passes,
                lanes,
                wrapped_key,
            } => {
                put_u16(w, crate::PASSPHRASE_STANZA_BODY_LEN as u16);
                w.extend_from_slice(salt);
                put_u32(w, *memory_kib);
                put_u32(w, *passes);
                w.push(*lanes);
                w.extend_from_slice(wrapped_key);
            }
            Stanza::Unknown { body, .. } => {
                put_u16(w, body.len() as u16);
                w.extend_from_slice(body);
            }
        }
    }
    put_u16(w, extensions_len(&header.extensions) as u16);
    for Extension { kind, value } in &header.extensions {
        put_u16(w, *kind);
        put_u16(w, value.len() as u16);
        w.extend_from_slice(value);
    }
    debug_assert_eq!(w.len() - start, len);
    Ok(())
}

/// Encodes `header` into a new vector.
pub fn header_to_vec(h: &Header) -> Result<Vec<u8>, HeaderError> {
    let mut out = Vec::new();
    header(h, &mut out)?;
    Ok(out)
}

/// Length of the extension records, without the area's own length field.
pub(crate) fn extensions_len(extensions: &[Extension]) -> usize {
    extensions.iter().map(|e| 4 + e.value.len()).sum()
}

// `Vec<u8>` as `io::Write` never returns an error, so these cannot fail.
fn put_u16(w: &mut Vec<u8>, v: u16) {
    let _ = w.write_u16::<BigEndian>(v);
}
fn put_u32(w: &mut Vec<u8>, v: u32) {
    let _ = w.write_u32::<BigEndian>(v);
}
fn put_u64(w: &mut Vec<u8>, v: u64) {
    let _ = w.write_u64::<BigEndian>(v);
}
