//! Opening a kapsel file: read exactly the header, find a stanza one of the
//! identities opens, check the key commitment over the header bytes as
//! received, then stream the payload.
//!
//! Invariants:
//! - [`Decryptor::new`] reads no byte past the header.
//! - Every encapsulated key and the sender key are validated as P-256 points
//!   before any decryption is attempted.
//! - No chunk is decrypted before the commitment matched.

use std::io::{Read, Seek, SeekFrom, Write};

use crate::ec::PublicKey;
use kapsel_format::{read, Header, HeaderError, HybridEnc, Sender, Stanza};
use nom::{Err, Needed};
use zeroize::Zeroizing;

use crate::error::DecryptError;
#[cfg(feature = "exchange")]
use crate::exchange_wire::{Challenge, ReceiptKey};
use crate::hpke::{self, Mode};
use crate::hybrid::HybridIdentity;
use crate::identity::IdentityKey;
use crate::keys::{Identity, Recipient};
use crate::passphrase::{Cost, Passphrase, WorkLimit};
use crate::payload::{
    read_full, read_payload_prefix, ChunkCipher, PayloadError, PayloadReader, PAYLOAD_HEADER_LEN,
};
use crate::pq;
use crate::seek::{SeekablePayload, SeekableReader};
use crate::segment::SegmentVerifier;
use crate::{FILE_KEY_LEN, HPKE_INFO};

/// Everything a decoder may try against a header: P-256 identities, hybrid
/// post-quantum identities, and a passphrase, with the most work it accepts
/// from a passphrase stanza. The decoder picks what fits each stanza: the
/// caller never says which key is for which file.
#[derive(Clone, Default)]
pub struct Keyring<'k> {
    p256: Vec<Identity>,
    /// P-256 keys that live elsewhere (a token), tried after `p256`.
    external: Vec<&'k dyn IdentityKey>,
    hybrid: Vec<HybridIdentity>,
    passphrase: Option<Passphrase>,
    work_limit: WorkLimit,
}

impl std::fmt::Debug for Keyring<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring")
            .field("p256", &self.p256)
            .field("external", &self.external.len())
            .field("hybrid", &self.hybrid)
            .field("passphrase", &self.passphrase.is_some())
            .field("work_limit", &self.work_limit)
            .finish()
    }
}

impl<'k> Keyring<'k> {
    /// Adds P-256 identities whose private keys may live elsewhere (a
    /// hardware token, see [`IdentityKey`]), tried after the in-memory ones.
    pub fn with_keys(mut self, keys: impl IntoIterator<Item = &'k dyn IdentityKey>) -> Self {
        self.external.extend(keys);
        self
    }

    /// An empty keyring with the default [`WorkLimit`].
    pub fn new() -> Self {
        Keyring {
            p256: Vec::new(),
            external: Vec::new(),
            hybrid: Vec::new(),
            passphrase: None,
            work_limit: WorkLimit::default(),
        }
    }

    /// Adds P-256 identities, tried in this order.
    pub fn with_identities(mut self, identities: impl IntoIterator<Item = Identity>) -> Self {
        self.p256.extend(identities);
        self
    }

    /// Adds hybrid post-quantum identities, tried in this order.
    pub fn with_hybrid_identities(
        mut self,
        identities: impl IntoIterator<Item = HybridIdentity>,
    ) -> Self {
        self.hybrid.extend(identities);
        self
    }

    /// Sets the passphrase tried against a passphrase stanza.
    pub fn with_passphrase(mut self, passphrase: Passphrase) -> Self {
        self.passphrase = Some(passphrase);
        self
    }

    /// Sets the most Argon2id work accepted from a passphrase stanza.
    pub fn with_work_limit(mut self, limit: WorkLimit) -> Self {
        self.work_limit = limit;
        self
    }

    /// The P-256 identities.
    pub fn identities(&self) -> &[Identity] {
        &self.p256
    }

    /// Whether it holds no key at all.
    pub fn is_empty(&self) -> bool {
        self.p256.is_empty()
            && self.external.is_empty()
            && self.hybrid.is_empty()
            && self.passphrase.is_none()
    }
}

impl From<&[Identity]> for Keyring<'_> {
    fn from(identities: &[Identity]) -> Self {
        Keyring::new().with_identities(identities.iter().cloned())
    }
}

/// The Argon2id cost a header's passphrase stanza asks for, if it has one
/// (unauthenticated: check it against a [`WorkLimit`] before asking the user
/// for a passphrase).
pub fn passphrase_cost(header: &Header) -> Option<Cost> {
    header.stanzas.iter().find_map(|s| match s {
        Stanza::Passphrase {
            memory_kib,
            passes,
            lanes,
            ..
        } => Some(Cost {
            memory_kib: *memory_kib,
            passes: *passes,
            lanes: *lanes,
        }),
        _ => None,
    })
}

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

    /// The parsed header, **not yet authenticated**: anyone can have written
    /// it. Only the key commitment ([`Decryptor::decrypt`]) authenticates it;
    /// after that, [`PlaintextReader::header`] is the same header, verified.
    /// Fit for showing (`kapsel inspect`) or refusing a file early, never for
    /// trusting it.
    pub fn unverified_header(&self) -> &Header {
        &self.header
    }

    /// The header's bytes as received, **not yet authenticated**.
    pub fn unverified_header_bytes(&self) -> &[u8] {
        &self.header_bytes
    }

    /// The source, positioned just after the header, for tools that only
    /// measure or copy the undecrypted rest.
    pub fn into_source(self) -> R {
        self.inner
    }

    /// The source, positioned just after the header, with the parsed header
    /// and its bytes as received (for the seekable path in `seek.rs`).
    pub(crate) fn into_parts(self) -> (R, Header, Vec<u8>) {
        (self.inner, self.header, self.header_bytes)
    }

    /// The sender key the header *claims*: nothing is verified yet. Every
    /// segment's signature is checked before its plaintext is released; use
    /// it to refuse a file early (an unexpected sender), never to trust one.
    pub fn claimed_sender(&self) -> Option<ClaimedSender> {
        claimed_sender(&self.header)
    }

    /// Finds the file key (SPEC.md section 5.3: every identity against every
    /// stanza until a key passes the commitment), and returns the plaintext
    /// reader. For a signed file the reader releases each segment only after
    /// its signature verified.
    pub fn decrypt(self, identities: &[Identity]) -> Result<PlaintextReader<R>, DecryptError> {
        self.decrypt_with_key(&Keyring::from(identities))
            .map(|(reader, _)| reader)
    }

    /// [`Decryptor::decrypt`] with every kind of key: P-256 and hybrid
    /// identities, keys that live elsewhere (a hardware token: see
    /// [`IdentityKey`]; a failure of such a key is
    /// [`DecryptError::Identity`]), and a passphrase for a passphrase
    /// stanza.
    pub fn decrypt_with(self, keys: &Keyring) -> Result<PlaintextReader<R>, DecryptError> {
        self.decrypt_with_key(keys).map(|(reader, _)| reader)
    }

    #[cfg(feature = "exchange")]
    /// [`Decryptor::decrypt`] for a message of the live exchange (SPEC.md
    /// section 13): once the header authenticated, refuses one that does not
    /// carry `challenge` ([`DecryptError::Challenge`], before any chunk is
    /// read), and returns the key of the receipt.
    pub fn decrypt_live(
        self,
        identities: &[Identity],
        challenge: &Challenge,
    ) -> Result<(PlaintextReader<R>, ReceiptKey), DecryptError> {
        self.decrypt_live_with(&Keyring::from(identities), challenge)
    }

    #[cfg(feature = "exchange")]
    /// [`Decryptor::decrypt_live`] with every kind of key of a [`Keyring`]
    /// (post-quantum identities, keys on tokens).
    pub fn decrypt_live_with(
        self,
        keys: &Keyring<'_>,
        challenge: &Challenge,
    ) -> Result<(PlaintextReader<R>, ReceiptKey), DecryptError> {
        let header_bytes = self.header_bytes.clone();
        let (reader, file_key) = self.decrypt_with_key(keys)?;
        challenge.check(reader.header())?;
        let key = ReceiptKey::derive(&file_key[..], &header_bytes, challenge);
        Ok((reader, key))
    }

    fn decrypt_with_key(
        self,
        keys: &Keyring<'_>,
    ) -> Result<(PlaintextReader<R>, Zeroizing<[u8; FILE_KEY_LEN]>), DecryptError> {
        let mut inner = self.inner;
        let found = find_file_key(&self.header, &self.header_bytes, keys, || {
            read_payload_prefix(&mut inner).map_err(DecryptError::from)
        })?;
        let verifier = found.verifier(&self.header_bytes)?;
        let reader = PlaintextReader {
            payload: PayloadReader::from_parts_signed(inner, found.cipher, verifier),
            header: self.header,
            header_bytes: self.header_bytes,
        };
        Ok((reader, found.file_key))
    }
}

impl<R: Read + Seek> Decryptor<R> {
    /// Opens the file for random access. Finds the file key (reading the
    /// salt and commitment when a stanza opens), measures the source
    /// (seeking to its end), and checks that the payload length is one a
    /// file can have; nothing else is read.
    ///
    /// The payload runs from the end of the header to the end of the source,
    /// so the file must end where the source ends; its length is
    /// authenticated only when the final chunk (or, signed, the final
    /// segment) verifies: on `SeekFrom::End`, at the end of the plaintext, or
    /// by [`SeekableReader::plaintext_len`]. For a signed file every read
    /// verifies the signature of each segment it touches before it returns
    /// any of its plaintext.
    pub fn decrypt_seekable(
        self,
        identities: &[Identity],
    ) -> Result<SeekableReader<R>, DecryptError> {
        self.decrypt_seekable_with(&Keyring::from(identities))
    }

    /// [`Decryptor::decrypt_seekable`] with every kind of key (see
    /// [`Keyring`]).
    pub fn decrypt_seekable_with(
        self,
        keys: &Keyring<'_>,
    ) -> Result<SeekableReader<R>, DecryptError> {
        let (mut source, header, header_bytes) = self.into_parts();
        let payload_start = source.stream_position()?;
        let end = source.seek(SeekFrom::End(0))?;
        let payload_len = end
            .checked_sub(payload_start)
            .ok_or(PayloadError::Truncated)?;
        let found = find_file_key(&header, &header_bytes, keys, || {
            if payload_len < PAYLOAD_HEADER_LEN as u64 {
                return Err(PayloadError::Truncated.into());
            }
            crate::seek::read_prefix(&mut source, payload_start).map_err(DecryptError::from)
        })?;
        let verifier = found.verifier(&header_bytes)?;
        let payload =
            SeekablePayload::open(source, payload_start, payload_len, found.cipher, verifier)?;
        Ok(SeekableReader::new(payload, header, header_bytes))
    }
}

/// The sender a header names, before any of its signatures verified.
///
/// It is a claim: anyone can write any key into a header. Compare it with
/// the senders you expect ([`ClaimedSender::is`]) to refuse a file early;
/// the key becomes a [`Recipient`] you may trust only through
/// [`PlaintextReader::verified_sender`] (or a seekable reader's), once a
/// signature by it verified.
#[derive(Clone, PartialEq, Eq)]
pub struct ClaimedSender(Recipient);

impl ClaimedSender {
    /// Whether the claim names `key`.
    pub fn is(&self, key: &Recipient) -> bool {
        self.0 == *key
    }

    /// The claimed key, for display and policy decisions only.
    pub fn unverified_key(&self) -> &Recipient {
        &self.0
    }
}

impl std::fmt::Debug for ClaimedSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ClaimedSender({})", self.0)
    }
}

impl std::fmt::Display for ClaimedSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

pub(crate) fn claimed_sender(header: &Header) -> Option<ClaimedSender> {
    match &header.sender {
        Sender::Anonymous => None,
        Sender::P256(p) => Recipient::from_wire(p).ok().map(ClaimedSender),
    }
}

/// The plaintext of a file, as [`Decryptor::decrypt`] returns it: `Read`
/// yields only chunks (anonymous) or segments (signed) that verified, and
/// reports the end only after the final one did.
#[derive(Debug)]
pub struct PlaintextReader<R: Read> {
    payload: PayloadReader<R>,
    header: Header,
    header_bytes: Vec<u8>,
}

impl<R: Read> PlaintextReader<R> {
    /// The header, authenticated by the key commitment (against anyone who
    /// does not know the file key) and, for a signed file, by the sender's
    /// signature once [`verified_sender`](Self::verified_sender) is `Some`.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The header's bytes as received, authenticated by the key commitment.
    pub fn header_bytes(&self) -> &[u8] {
        &self.header_bytes
    }

    /// The sender whose signature covers every byte read so far: `Some` once
    /// the first segment of a signed file verified (after the first
    /// successful `read` that returned data, or the end); `None` for an
    /// anonymous file.
    pub fn verified_sender(&self) -> Option<Recipient> {
        self.payload
            .verified_sender()
            .map(|pk| Recipient::from_public_key(*pk))
    }

    /// The sender the header claims (see [`ClaimedSender`]).
    pub fn claimed_sender(&self) -> Option<ClaimedSender> {
        claimed_sender(&self.header)
    }

    /// Chunks authenticated so far.
    pub fn chunks_verified(&self) -> u64 {
        self.payload.chunks_verified()
    }

    /// Segment signatures verified so far (0 for an anonymous file).
    pub fn segments_verified(&self) -> u64 {
        self.payload.segments_verified()
    }

    /// Decrypts the rest of the file into `writer` with the parallel
    /// decryptor (`threads`: 0 all cores, 1 sequential), calling `gate` once
    /// just before the first plaintext is written (see
    /// [`ReleaseGate`](crate::parallel::ReleaseGate)); returns the plaintext
    /// bytes written. Valid only before the first `read`.
    pub fn decrypt_to<W: Write + Send>(
        self,
        writer: W,
        threads: usize,
        gate: &mut crate::parallel::ReleaseGate<'_>,
    ) -> Result<u64, crate::parallel::CopyError> {
        let (chunks, cipher, verifier) = self.payload.into_parts();
        crate::parallel::decrypt_body(
            chunks,
            writer,
            &cipher,
            verifier.as_ref(),
            threads,
            gate,
            None,
        )
    }

    /// [`PlaintextReader::decrypt_to`] for a live input (a pipe, socket or
    /// terminal): whenever `ready` says the input paused, the complete
    /// chunks received so far (segments, in a signed file) are verified,
    /// written and flushed at once instead of waiting for a full batch.
    pub fn decrypt_live_to<W: Write + Send>(
        self,
        writer: W,
        threads: usize,
        gate: &mut crate::parallel::ReleaseGate<'_>,
        ready: &mut crate::parallel::InputReady<'_>,
    ) -> Result<u64, crate::parallel::CopyError> {
        let (chunks, cipher, verifier) = self.payload.into_parts();
        crate::parallel::decrypt_body(
            chunks,
            writer,
            &cipher,
            verifier.as_ref(),
            threads,
            gate,
            Some(ready),
        )
    }
}

impl<R: Read> Read for PlaintextReader<R> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        self.payload.read(out)
    }
}

/// The outcome of the key search: the file key, its verified cipher, and
/// the payload prefix it was checked against.
pub(crate) struct FoundKey {
    pub(crate) file_key: Zeroizing<[u8; FILE_KEY_LEN]>,
    pub(crate) cipher: ChunkCipher,
    pub(crate) prefix: [u8; PAYLOAD_HEADER_LEN],
    pub(crate) sender: Option<PublicKey>,
}

impl FoundKey {
    /// The segment verifier of a signed file (`None` for an anonymous one).
    pub(crate) fn verifier(
        &self,
        header_bytes: &[u8],
    ) -> Result<Option<SegmentVerifier>, DecryptError> {
        match &self.sender {
            None => Ok(None),
            Some(pk) => SegmentVerifier::new(pk, header_bytes, &self.prefix)
                .map(Some)
                .ok_or(DecryptError::InvalidPublicKey),
        }
    }
}

/// Validates every public key in the header, then searches for the file
/// key (SPEC.md sections 5.3 and 14.6): for each identity, the stanzas of
/// its kind whose hint matches it first and all others after; a passphrase
/// against the passphrase stanza, after checking its cost against the
/// limit. Each key a stanza opens to is checked against the commitment, and
/// the search goes on after a mismatch, so the order of identities does not
/// change the outcome. `read_prefix` reads the salt and commitment; it is
/// called at most once, when the first stanza opens.
pub(crate) fn find_file_key(
    header: &Header,
    header_bytes: &[u8],
    keys: &Keyring<'_>,
    mut read_prefix: impl FnMut() -> Result<[u8; PAYLOAD_HEADER_LEN], DecryptError>,
) -> Result<FoundKey, DecryptError> {
    let sender: Option<PublicKey> = match &header.sender {
        Sender::Anonymous => None,
        Sender::P256(p) => {
            Some(hpke::deserialize_public_key(&p.0).map_err(|_| DecryptError::InvalidPublicKey)?)
        }
    };
    let mut candidates = Vec::with_capacity(header.stanzas.len());
    let mut hybrid_candidates = Vec::new();
    let mut passphrase_stanza = None;
    for stanza in &header.stanzas {
        match stanza {
            Stanza::P256Hpke {
                hint,
                enc,
                wrapped_key,
            } => {
                hpke::deserialize_public_key(&enc.0).map_err(|_| DecryptError::InvalidPublicKey)?;
                candidates.push((hint, enc, wrapped_key));
            }
            Stanza::HybridPq {
                hint,
                enc,
                wrapped_key,
            } => {
                pq::check_enc(enc).map_err(|_| DecryptError::InvalidPublicKey)?;
                hybrid_candidates.push((hint, enc, wrapped_key));
            }
            Stanza::Passphrase {
                salt, wrapped_key, ..
            } => passphrase_stanza = Some((salt, wrapped_key)),
            Stanza::Unknown { .. } => {}
        }
    }
    let mut prefix: Option<[u8; PAYLOAD_HEADER_LEN]> = None;
    let mut addressed_to_us = false;
    let mut opened_any = false;
    // Checks one candidate file key against the commitment.
    let mut try_key = |file_key: Zeroizing<[u8; FILE_KEY_LEN]>,
                       prefix: &mut Option<[u8; PAYLOAD_HEADER_LEN]>|
     -> Result<Option<FoundKey>, DecryptError> {
        let p = match *prefix {
            Some(p) => p,
            None => *prefix.insert(read_prefix()?),
        };
        match ChunkCipher::for_decryption_with_prefix(&file_key, header_bytes, &p) {
            Ok(cipher) => Ok(Some(FoundKey {
                file_key,
                cipher,
                prefix: p,
                sender,
            })),
            Err(PayloadError::CommitmentMismatch) => Ok(None),
            Err(e) => Err(e.into()),
        }
    };
    if let Some((salt, wrapped_key)) = passphrase_stanza {
        // The parser guarantees a passphrase stanza is the only stanza.
        let cost = passphrase_cost(header).ok_or(DecryptError::NoMatchingRecipient)?;
        if !keys.work_limit.allows(&cost) {
            return Err(DecryptError::PassphraseWorkTooHigh {
                cost,
                limit: keys.work_limit,
            });
        }
        let Some(passphrase) = &keys.passphrase else {
            return Err(DecryptError::PassphraseRequired);
        };
        let opened = crate::passphrase::unwrap(passphrase, salt, &cost, wrapped_key)
            .map_err(|_| DecryptError::PassphraseUnavailable)?;
        let Some(file_key) = opened else {
            return Err(DecryptError::WrongPassphrase);
        };
        return match try_key(file_key, &mut prefix)? {
            Some(found) => Ok(found),
            None => Err(DecryptError::HeaderAuthFailed),
        };
    }
    let p256 = keys.p256.iter().map(|i| i as &dyn IdentityKey);
    for identity in p256.chain(keys.external.iter().copied()) {
        let recipient = identity.recipient();
        // A zero hint means "hidden" and never matches, even where the
        // computed hint is zero.
        let is_ours = |hint: &[u8; 4], enc: &kapsel_format::P256Point| {
            *hint != [0u8; 4] && *hint == recipient.stanza_hint(&enc.0)
        };
        let (mut ordered, others): (Vec<_>, Vec<_>) = candidates
            .iter()
            .partition(|(hint, enc, _)| is_ours(hint, enc));
        addressed_to_us |= !ordered.is_empty();
        ordered.extend(others);
        for (_, enc, wrapped_key) in ordered {
            let shared = match hpke::decap_with_key(&enc.0, identity) {
                Ok(Ok(shared)) => shared,
                Ok(Err(e)) => return Err(DecryptError::Identity(e)),
                Err(_) => continue,
            };
            let ctx = hpke::Context::new(Mode::Base, &shared, HPKE_INFO);
            let Some(file_key) = unwrap_file_key(ctx, &wrapped_key[..]) else {
                continue;
            };
            opened_any = true;
            if let Some(found) = try_key(file_key, &mut prefix)? {
                return Ok(found);
            }
        }
    }
    for identity in &keys.hybrid {
        let recipient = identity.to_recipient();
        let is_ours = |hint: &[u8; 4], enc: &HybridEnc| {
            *hint != [0u8; 4] && *hint == recipient.stanza_hint(&enc.0[..])
        };
        let (mut ordered, others): (Vec<_>, Vec<_>) = hybrid_candidates
            .iter()
            .partition(|(hint, enc, _)| is_ours(hint, enc));
        addressed_to_us |= !ordered.is_empty();
        ordered.extend(others);
        for (_, enc, wrapped_key) in ordered {
            let Ok(shared) = pq::decap(enc, identity.secret_key()) else {
                continue;
            };
            let ctx = hpke::Context::for_kem(pq::KEM_ID, Mode::Base, &shared, HPKE_INFO);
            let Some(file_key) = unwrap_file_key(ctx, &wrapped_key[..]) else {
                continue;
            };
            opened_any = true;
            if let Some(found) = try_key(file_key, &mut prefix)? {
                return Ok(found);
            }
        }
    }
    Err(if addressed_to_us || opened_any {
        DecryptError::HeaderAuthFailed
    } else {
        DecryptError::NoMatchingRecipient
    })
}

/// The file key a stanza's HPKE context opens from its wrapped key, if the
/// tag verifies (the first and only message of the context).
fn unwrap_file_key(
    mut ctx: hpke::Context,
    wrapped_key: &[u8],
) -> Option<Zeroizing<[u8; FILE_KEY_LEN]>> {
    let mut file_key = Zeroizing::new([0u8; FILE_KEY_LEN]);
    ctx.open_into(b"", wrapped_key, &mut file_key[..])
        .ok()
        .map(|_| file_key)
}
