//! Opening a kapsel file: read exactly the header, find a stanza one of the
//! identities opens, check the key commitment over the header bytes as
//! received, then stream the payload.
//!
//! Invariants:
//! - [`Decryptor::new`] reads no byte past the header.
//! - Every encapsulated key and the sender key are validated as P-256 points
//!   before any decryption is attempted.
//! - No chunk is decrypted before the commitment matched.

use std::io::Read;

use kapsel_format::{read, Header, HeaderError, Sender, Stanza};
use nom::{Err, Needed};
use p256::PublicKey;
use zeroize::Zeroizing;

use crate::error::DecryptError;
use crate::exchange::{Challenge, ReceiptKey};
use crate::hpke::{self, Mode};
use crate::keys::Identity;
use crate::payload::{
    read_full, ChunkCipher, PayloadError, PayloadReader, COMMITMENT_LEN, PAYLOAD_HEADER_LEN,
    SALT_LEN,
};
use crate::sender::VerifyingReader;
use crate::{FILE_KEY_LEN, HPKE_INFO};

/// A file whose header has been read and parsed, not yet decrypted.
#[derive(Debug)]
pub struct Decryptor<R: Read> {
    inner: R,
    header: Header,
    header_bytes: Vec<u8>,
}

impl<R: Read> Decryptor<R> {
    /// Reads and parses the header, consuming exactly its bytes.
    pub fn new(mut inner: R) -> Result<Self, DecryptError> {
        let mut buf: Vec<u8> = Vec::new();
        loop {
            let needed = match read::header(&buf) {
                Ok((_, header)) => {
                    return Ok(Decryptor {
                        inner,
                        header,
                        header_bytes: buf,
                    })
                }
                Err(Err::Incomplete(Needed::Size(n))) => n.get(),
                Err(Err::Incomplete(Needed::Unknown)) => 1,
                Err(Err::Error(e) | Err::Failure(e)) => return Err(e.into()),
            };
            // `needed` is bounded: the parser asks for at most MAX_HEADER_LEN
            // bytes in total, after checking the declared length.
            let old = buf.len();
            buf.resize(old + needed, 0);
            let got = read_full(&mut inner, &mut buf[old..])?;
            if got < needed {
                buf.truncate(old + got);
                // Let the parser judge what arrived (a wrong magic is "not
                // kapsel" even when short); otherwise the header is truncated.
                return Err(match read::header(&buf) {
                    Err(Err::Error(e) | Err::Failure(e)) => e.into(),
                    _ => HeaderError::Truncated.into(),
                });
            }
        }
    }

    /// The parsed header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The header's bytes as received.
    pub fn header_bytes(&self) -> &[u8] {
        &self.header_bytes
    }

    /// The undecrypted bytes after the header (salt, commitment, chunks),
    /// for tools that only measure or copy them.
    pub fn raw_payload(&mut self) -> &mut R {
        &mut self.inner
    }

    /// The source, positioned just after the header, with the parsed header
    /// and its bytes as received (for the seekable path in `seek.rs`).
    pub(crate) fn into_parts(self) -> (R, Header, Vec<u8>) {
        (self.inner, self.header, self.header_bytes)
    }

    /// The sender key the header names, if any (claimed until the signature
    /// at the end of the file verified).
    pub fn sender(&self) -> Option<crate::Recipient> {
        match &self.header.sender {
            Sender::Anonymous => None,
            Sender::P256(p) => crate::Recipient::from_wire(p).ok(),
        }
    }

    /// Unwraps the file key with the first identity that opens a stanza,
    /// reads the salt and commitment, checks the commitment, and returns the
    /// plaintext reader. For a file with a sender, the reader reports the end
    /// of the plaintext (and releases the final chunk) only after the
    /// sender's signature verified.
    pub fn decrypt(self, identities: &[Identity]) -> Result<PlaintextReader<R>, DecryptError> {
        self.decrypt_with_key(identities).map(|(reader, _)| reader)
    }

    /// [`Decryptor::decrypt`] for a message of the live exchange (SPEC.md
    /// section 13), which also returns the key of its receipt for
    /// `challenge`. Checking that the header answers `challenge`
    /// ([`Challenge::check`]) is the caller's policy, before any plaintext.
    pub fn decrypt_with_receipt_key(
        self,
        identities: &[Identity],
        challenge: &Challenge,
    ) -> Result<(PlaintextReader<R>, ReceiptKey), DecryptError> {
        let header_bytes = self.header_bytes.clone();
        let (reader, file_key) = self.decrypt_with_key(identities)?;
        let key = ReceiptKey::derive(&file_key[..], &header_bytes, challenge);
        Ok((reader, key))
    }

    fn decrypt_with_key(
        self,
        identities: &[Identity],
    ) -> Result<(PlaintextReader<R>, Zeroizing<[u8; FILE_KEY_LEN]>), DecryptError> {
        let (file_key, sender) = unwrap_file_key(&self.header, identities)?;
        let mut input = VerifyingReader::new(self.inner, &self.header_bytes, sender.as_ref());
        let mut prefix = [0u8; PAYLOAD_HEADER_LEN];
        if read_full(&mut input, &mut prefix)? < prefix.len() {
            return Err(PayloadError::Truncated.into());
        }
        let mut salt = [0u8; SALT_LEN];
        salt.copy_from_slice(&prefix[..SALT_LEN]);
        let mut commitment = [0u8; COMMITMENT_LEN];
        commitment.copy_from_slice(&prefix[SALT_LEN..]);
        let cipher =
            ChunkCipher::for_decryption(&file_key[..], &self.header_bytes, &salt, &commitment)?;
        Ok((PayloadReader::from_parts(input, cipher), file_key))
    }
}

/// The plaintext reader [`Decryptor::decrypt`] returns.
pub type PlaintextReader<R> = PayloadReader<VerifyingReader<R>>;

/// Validates every public key in the header, then tries, for each identity,
/// the stanzas whose hint matches it first and all others after.
pub(crate) fn unwrap_file_key(
    header: &Header,
    identities: &[Identity],
) -> Result<(Zeroizing<[u8; FILE_KEY_LEN]>, Option<PublicKey>), DecryptError> {
    let sender: Option<PublicKey> = match &header.sender {
        Sender::Anonymous => None,
        Sender::P256(p) => {
            Some(hpke::deserialize_public_key(&p.0).map_err(|_| DecryptError::InvalidPublicKey)?)
        }
    };
    let mode = if sender.is_some() {
        Mode::Auth
    } else {
        Mode::Base
    };
    let mut candidates = Vec::with_capacity(header.stanzas.len());
    for stanza in &header.stanzas {
        if let Stanza::P256Hpke {
            hint,
            enc,
            wrapped_key,
        } = stanza
        {
            hpke::deserialize_public_key(&enc.0).map_err(|_| DecryptError::InvalidPublicKey)?;
            candidates.push((hint, enc, wrapped_key));
        }
    }
    let mut addressed_to_us = false;
    for identity in identities {
        // A zero hint means "hidden" and never matches, even for the one key
        // in 2^32 whose real hint is zero.
        let own_hint = identity.to_recipient().hint();
        let is_ours = |hint: &[u8; 4]| *hint != [0u8; 4] && *hint == own_hint;
        let (mut ordered, others): (Vec<_>, Vec<_>) =
            candidates.iter().partition(|(hint, _, _)| is_ours(hint));
        addressed_to_us |= !ordered.is_empty();
        ordered.extend(others);
        for (_, enc, wrapped_key) in ordered {
            let Ok(shared) = hpke::decap(&enc.0, identity.secret_key(), sender.as_ref()) else {
                continue;
            };
            let mut ctx = hpke::Context::new(mode, &shared, HPKE_INFO);
            let mut file_key = Zeroizing::new([0u8; FILE_KEY_LEN]);
            if ctx
                .open_into(b"", &wrapped_key[..], &mut file_key[..])
                .is_ok()
            {
                return Ok((file_key, sender));
            }
        }
    }
    Err(if addressed_to_us {
        DecryptError::HeaderAuthFailed
    } else {
        DecryptError::NoMatchingRecipient
    })
}
