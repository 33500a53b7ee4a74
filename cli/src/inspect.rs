//! `kapsel inspect`: the header of a file, without any key.

use kapsel_codec::payload_shape;
use kapsel_codec::{Decryptor, Recipient};
use kapsel_format::{Header, Sender, Stanza, CHUNK_SIZE};
use serde_json::json;

use crate::error::CliError;
use crate::time::iso8601_utc;

/// Payload figures derived from the payload's ciphertext length.
#[derive(Debug, PartialEq, Eq)]
pub enum PayloadSize {
    /// Plaintext bytes and chunk count.
    Valid { plaintext: u64, chunks: u64 },
    /// No valid kapsel payload has this length.
    Invalid,
}

/// Plaintext length and chunk count for `ciphertext_len` payload bytes
/// (salt and commitment included) of an anonymous (`signed = false`) or
/// signed file (SPEC.md section 6.6 step 2).
pub fn payload_size(ciphertext_len: u64, signed: bool) -> PayloadSize {
    match payload_shape(ciphertext_len, signed) {
        Ok(shape) => PayloadSize::Valid {
            plaintext: shape.plaintext_len,
            chunks: shape.chunk_count,
        },
        Err(_) => PayloadSize::Invalid,
    }
}

fn sender_string(header: &Header) -> Option<String> {
    match &header.sender {
        Sender::Anonymous => None,
        Sender::P256(p) => Some(
            Recipient::from_wire(p)
                .map(|r| r.to_string())
                .unwrap_or_else(|_| "invalid key".into()),
        ),
    }
}

fn stanza_hint(stanza: &Stanza) -> Option<String> {
    match stanza {
        Stanza::P256Hpke { hint, .. } | Stanza::HybridPq { hint, .. } if *hint != [0; 4] => {
            Some(hex::encode(hint))
        }
        _ => None,
    }
}

/// A stanza type's name, for `inspect`.
fn stanza_type_name(stanza: &Stanza) -> &'static str {
    match stanza {
        Stanza::P256Hpke { .. } => "p256-hpke",
        Stanza::HybridPq { .. } => "mlkem768-p256-hpke",
        Stanza::Passphrase { .. } => "passphrase-argon2id",
        Stanza::Unknown { .. } => "unknown",
    }
}

/// The Argon2id cost of a passphrase stanza, as JSON.
fn passphrase_json(stanza: &Stanza) -> serde_json::Value {
    match stanza {
        Stanza::Passphrase {
            memory_kib,
            passes,
            lanes,
            ..
        } => json!({ "memory_kib": memory_kib, "passes": passes, "lanes": lanes }),
        _ => json!(null),
    }
}

/// Runs `inspect` on an opened input, binary or ASCII-armored (detected as
/// `decrypt` does). The report is written to standard output in one piece.
///
/// In `--json`, the header's 64-bit fields (`serial`, `created_at`) are
/// decimal strings: common JSON tools read numbers as doubles and would
/// round them above 2^53.
pub fn run(input: crate::files::Input, as_json: bool) -> Result<(), CliError> {
    let name = input.name.clone();
    let crate::commands::Sniffed {
        mut reader,
        prefix,
        armored,
    } = crate::commands::sniff_armor(input.reader, &name)?;
    // Armor: the file length is not the binary length; count what decodes.
    let file_len = if armored { None } else { input.len };
    let decryptor = Decryptor::new(&mut reader)
        .map_err(|e| crate::commands::foreign_format_error(e, &prefix, armored))?;
    let header = decryptor.unverified_header().clone();
    let header_len = decryptor.unverified_header_bytes().len() as u64;
    let payload_len = match file_len {
        Some(total) => total.checked_sub(header_len),
        None => {
            // A pipe or armor: count the rest to report the size.
            let mut rest = decryptor.into_source();
            Some(std::io::copy(&mut rest, &mut std::io::sink()).map_err(|e| {
                match kapsel_codec::Outcome::of_io(&e) {
                    kapsel_codec::Outcome::Io => CliError::io(format!("cannot read {name}"), e),
                    _ => crate::error::from_decrypt_io(e),
                }
            })?)
        }
    };
    let signed = matches!(header.sender, Sender::P256(_));
    let size = payload_len.map(|n| payload_size(n, signed));
    let report = if as_json {
        json_report(&header, header_len, payload_len, size, armored)
    } else {
        text_report(&header, header_len, size, armored)
    };
    out!("{report}")
}

/// Whether the file resists a quantum computer: `Some(true)` when every
/// public-key stanza is hybrid, `Some(false)` when some is P-256 only,
/// `None` for a passphrase file (as strong as its passphrase).
fn post_quantum(header: &Header) -> Option<bool> {
    let p256 = header
        .stanzas
        .iter()
        .any(|s| matches!(s, Stanza::P256Hpke { .. }));
    let hybrid = header
        .stanzas
        .iter()
        .any(|s| matches!(s, Stanza::HybridPq { .. }));
    match (p256, hybrid) {
        (false, false) => None,
        (p, _) => Some(!p),
    }
}

fn json_report(
    header: &Header,
    header_len: u64,
    payload_len: Option<u64>,
    size: Option<PayloadSize>,
    armored: bool,
) -> String {
    let (plaintext, chunks) = match size {
        Some(PayloadSize::Valid { plaintext, chunks }) => (json!(plaintext), json!(chunks)),
        _ => (json!(null), json!(null)),
    };
    let value = json!({
        "format": "kapsel",
        "version": header.version(),
        "post_quantum": post_quantum(header),
        "armored": armored,
        "suite": { "id": header.suite.id(), "name": header.suite.name() },
        "created_at": header.created_at.to_string(),
        "created_at_utc": iso8601_utc(header.created_at),
        "serial": header.serial.to_string(),
        "sender": sender_string(header),
        "challenge": challenge_string(header),
        "recipients": header.stanzas.iter().map(|s| json!({ "type": s.kind(), "type_name": stanza_type_name(s), "hint": stanza_hint(s), "argon2id": passphrase_json(s) })).collect::<Vec<_>>(),
        "chunk_size": CHUNK_SIZE,
        "header_len": header_len,
        "payload_len": payload_len,
        "plaintext_len": plaintext,
        "chunks": chunks,
        "payload_length_valid": !matches!(size, Some(PayloadSize::Invalid)),
    });
    format!("{value:#}\n")
}

fn text_report(
    header: &Header,
    header_len: u64,
    size: Option<PayloadSize>,
    armored: bool,
) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    // Writing to a String cannot fail.
    let _ = (|| -> std::fmt::Result {
        writeln!(
            s,
            "format:      kapsel v{}{}",
            header.version(),
            if armored { ", ASCII armor" } else { "" }
        )?;
        writeln!(
            s,
            "suite:       0x{:04x} {}",
            header.suite.id(),
            header.suite.name()
        )?;
        writeln!(
            s,
            "created:     {} ({})",
            iso8601_utc(header.created_at),
            header.created_at
        )?;
        writeln!(s, "serial:      {}", header.serial)?;
        match sender_string(header) {
            None => writeln!(s, "sender:      anonymous")?,
            Some(x) => writeln!(
                s,
                "sender:      {x} (signed; checked by decrypt and verify)"
            )?,
        }
        if let Some(c) = challenge_string(header) {
            writeln!(
                s,
                "challenge:   {c} (live exchange; checked by decrypt --expect-challenge)"
            )?;
        }
        writeln!(
            s,
            "recipients:  {}{}",
            header.stanzas.len(),
            match post_quantum(header) {
                Some(true) => " (post-quantum: every recipient is ML-KEM-768 + P-256)",
                Some(false)
                    if header
                        .stanzas
                        .iter()
                        .any(|s| matches!(s, Stanza::HybridPq { .. })) =>
                {
                    " (NOT post-quantum: some recipients are P-256 only)"
                }
                _ => "",
            }
        )?;
        for (i, stanza) in header.stanzas.iter().enumerate() {
            match (stanza, stanza_hint(stanza)) {
                (Stanza::P256Hpke { .. }, Some(hint)) => {
                    writeln!(s, "  {:>3}: P-256 HPKE, key hint {hint}", i + 1)?
                }
                (Stanza::P256Hpke { .. }, None) => {
                    writeln!(s, "  {:>3}: P-256 HPKE, hidden", i + 1)?
                }
                (Stanza::HybridPq { .. }, Some(hint)) => writeln!(
                    s,
                    "  {:>3}: post-quantum HPKE (ML-KEM-768 + P-256), key hint {hint}",
                    i + 1
                )?,
                (Stanza::HybridPq { .. }, None) => writeln!(
                    s,
                    "  {:>3}: post-quantum HPKE (ML-KEM-768 + P-256), hidden",
                    i + 1
                )?,
                (
                    Stanza::Passphrase {
                        memory_kib,
                        passes,
                        lanes,
                        ..
                    },
                    _,
                ) => writeln!(
                    s,
                    "  {:>3}: passphrase (Argon2id, {} MiB, {passes} passes, {lanes} lanes)",
                    i + 1,
                    memory_kib / 1024
                )?,
                (other, _) => writeln!(
                    s,
                    "  {:>3}: unknown stanza type 0x{:04x}",
                    i + 1,
                    other.kind()
                )?,
            }
        }
        writeln!(s, "chunk size:  {CHUNK_SIZE} bytes")?;
        writeln!(s, "header:      {header_len} bytes")?;
        match size {
            Some(PayloadSize::Valid { plaintext, chunks }) => writeln!(
                s,
                "payload:     {plaintext} bytes of plaintext in {chunks} chunk{}",
                if chunks == 1 { "" } else { "s" }
            )?,
            Some(PayloadSize::Invalid) => {
                writeln!(s, "payload:     invalid length (truncated or extended)")?
            }
            None => writeln!(s, "payload:     unknown size")?,
        }
        Ok(())
    })();
    s
}

/// The challenge record's value in hex (any length: `inspect` shows what
/// is there; only a 32-byte value can match a challenge).
fn challenge_string(header: &kapsel_format::Header) -> Option<String> {
    header
        .extension(kapsel_format::EXTENSION_CHALLENGE)
        .map(|v| v.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::{payload_size, PayloadSize};

    #[test]
    fn signed_payload_size_follows_the_segments() {
        // An empty plaintext: one empty final chunk and its signature.
        assert_eq!(
            payload_size(56 + 16 + 64, true),
            PayloadSize::Valid {
                plaintext: 0,
                chunks: 1
            }
        );
        // 1 MiB: one full segment, then a final segment with an empty chunk.
        assert_eq!(
            payload_size(56 + 1_049_664 + 80, true),
            PayloadSize::Valid {
                plaintext: 1 << 20,
                chunks: 65
            }
        );
        assert_eq!(
            payload_size(56 + 1_049_664 + 16400 + 17 + 64, true),
            PayloadSize::Valid {
                plaintext: (1 << 20) + 16385,
                chunks: 66
            }
        );
        // Cut at a segment boundary, or too short for a final segment.
        assert_eq!(payload_size(56 + 1_049_664, true), PayloadSize::Invalid);
        assert_eq!(payload_size(56 + 79, true), PayloadSize::Invalid);
        assert_eq!(payload_size(56 + 16400 + 64, true), PayloadSize::Invalid);
    }

    #[test]
    fn payload_size_follows_the_chunking() {
        assert_eq!(
            payload_size(56 + 16, false),
            PayloadSize::Valid {
                plaintext: 0,
                chunks: 1
            }
        );
        assert_eq!(
            payload_size(56 + 16400 + 16, false),
            PayloadSize::Valid {
                plaintext: 16384,
                chunks: 2
            }
        );
        assert_eq!(
            payload_size(56 + 16400 + 17, false),
            PayloadSize::Valid {
                plaintext: 16385,
                chunks: 2
            }
        );
        assert_eq!(payload_size(56 + 16400, false), PayloadSize::Invalid);
        assert_eq!(payload_size(55, false), PayloadSize::Invalid);
    }
}
