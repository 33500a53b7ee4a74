//! The payload layer: C2SP chunked-encryption v1 instantiated as
//! Cobblestone-256 (AES-256-GCM, HKDF-Expand with SHA-512, 16 KiB chunks).
//!
//! ```text
//! key || base_nonce || commitment = HKDF-Expand-SHA512(prk = input key,
//!     info = "c2sp.org/chunked-encryption@v1+" || "AEAD_AES_256_GCM" || 0x00 || salt || context, 76)
//! payload = salt (24) || commitment (32) || chunk_0 || ... || chunk_n
//! ```
//!
//! Invariants:
//! - The commitment is checked, in constant time, before any chunk is decrypted.
//! - Every chunk but the last holds exactly [`CHUNK_SIZE`] plaintext bytes; the
//!   last holds fewer (possibly none). A reader that reaches end of input after
//!   a full chunk reports truncation.
//! - [`ChunkCipher`] is stateless: chunk `i` is sealed and opened with nonce
//!   `base_nonce XOR i` (big-endian), and `i` must stay below 2^38. The
//!   sequential reader and writer here, and the parallel and seekable paths,
//!   all go through it.
//! - [`PayloadReader`] releases plaintext only from chunks whose tag verified,
//!   and once it has failed it keeps failing.

use std::io::{self, Read, Write};

use aws_lc_rs::hkdf;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::aead::{Aes256Gcm, KEY_LEN, NONCE_LEN, TAG_LEN};
use crate::segment::{
    BodyUnits, SegmentHasher, SegmentSigner, SegmentVerifier, SignatureError, FULL_SEGMENT_LEN,
    MIN_FINAL_SEGMENT_LEN, SEGMENT_CHUNKS, SIGNATURE_LEN,
};
pub use kapsel_format::CHUNK_SIZE;

/// Salt length.
pub const SALT_LEN: usize = 24;
/// Commitment length.
pub const COMMITMENT_LEN: usize = 32;
/// Bytes before the first chunk: salt and commitment.
pub const PAYLOAD_HEADER_LEN: usize = SALT_LEN + COMMITMENT_LEN;
/// Ciphertext bytes of a full chunk.
pub const ENCRYPTED_CHUNK_SIZE: usize = CHUNK_SIZE + TAG_LEN;
/// Chunk indices must stay below this bound (2^38 chunks, 4 PiB).
pub const MAX_CHUNKS: u64 = 1 << 38;

const LABEL: &[u8] = b"c2sp.org/chunked-encryption@v1+";
const AEAD_NAME: &[u8] = b"AEAD_AES_256_GCM";

/// Why the payload layer refused its input.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PayloadError {
    /// The commitment does not match the key, salt and context.
    #[error("key commitment mismatch")]
    CommitmentMismatch,
    /// The input ended before the salt, the commitment or the final chunk.
    #[error("payload truncated")]
    Truncated,
    /// Chunk `index` did not authenticate (corrupt, reordered, or followed by trailing data).
    #[error("chunk {index} failed authentication")]
    ChunkAuthFailed {
        /// The zero-based chunk index.
        index: u64,
    },
    /// The message reached 2^38 chunks.
    #[error("message exceeds 2^38 chunks")]
    TooManyChunks,
}

struct OkmLen(usize);

impl hkdf::KeyType for OkmLen {
    fn len(&self) -> usize {
        self.0
    }
}

/// Derives `key || base_nonce || commitment` for one message.
fn derive(
    input_key: &[u8; KEY_LEN],
    salt: &[u8; SALT_LEN],
    context: &[u8],
) -> (ChunkCipher, [u8; COMMITMENT_LEN]) {
    let prk = hkdf::Prk::new_less_safe(hkdf::HKDF_SHA512, input_key);
    let info: [&[u8]; 5] = [LABEL, AEAD_NAME, &[0u8], salt, context];
    let mut okm = Zeroizing::new([0u8; KEY_LEN + NONCE_LEN + COMMITMENT_LEN]);
    // 76 bytes is far below HKDF-SHA512's 255 * 64 limit.
    #[allow(clippy::expect_used)]
    prk.expand(&info, OkmLen(okm.len()))
        .and_then(|o| o.fill(&mut okm[..]))
        .expect("HKDF-Expand of 76 bytes");
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    key.copy_from_slice(&okm[..KEY_LEN]);
    let mut base_nonce = [0u8; NONCE_LEN];
    base_nonce.copy_from_slice(&okm[KEY_LEN..KEY_LEN + NONCE_LEN]);
    let mut commitment = [0u8; COMMITMENT_LEN];
    commitment.copy_from_slice(&okm[KEY_LEN + NONCE_LEN..]);
    (
        ChunkCipher {
            aead: Aes256Gcm::new(&key),
            base_nonce,
        },
        commitment,
    )
}

/// The stateless chunk primitive: seals and opens chunk `index` in place.
/// Its `Debug` output shows no key material.
pub struct ChunkCipher {
    aead: Aes256Gcm,
    base_nonce: [u8; NONCE_LEN],
}

impl std::fmt::Debug for ChunkCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ChunkCipher(..)")
    }
}

impl ChunkCipher {
    /// Derives the cipher for an existing payload from its input key, salt and
    /// context, checking the commitment in constant time.
    pub fn for_decryption(
        input_key: &[u8; KEY_LEN],
        context: &[u8],
        salt: &[u8; SALT_LEN],
        commitment: &[u8; COMMITMENT_LEN],
    ) -> Result<Self, PayloadError> {
        let (cipher, expected) = derive(input_key, salt, context);
        if bool::from(expected.ct_eq(commitment)) {
            Ok(cipher)
        } else {
            Err(PayloadError::CommitmentMismatch)
        }
    }

    /// [`ChunkCipher::for_decryption`] with the salt and commitment as the 56
    /// bytes that precede the first chunk.
    pub fn for_decryption_with_prefix(
        input_key: &[u8; KEY_LEN],
        context: &[u8],
        prefix: &[u8; PAYLOAD_HEADER_LEN],
    ) -> Result<Self, PayloadError> {
        let mut salt = [0u8; SALT_LEN];
        salt.copy_from_slice(&prefix[..SALT_LEN]);
        let mut commitment = [0u8; COMMITMENT_LEN];
        commitment.copy_from_slice(&prefix[SALT_LEN..]);
        Self::for_decryption(input_key, context, &salt, &commitment)
    }

    /// Derives the cipher for a new payload with a given salt, returning the
    /// 56 bytes that must precede the first chunk. Use a fresh random salt
    /// ([`ChunkCipher::for_encryption`]) except in conformance tests.
    pub fn for_encryption_with_salt(
        input_key: &[u8; KEY_LEN],
        context: &[u8],
        salt: [u8; SALT_LEN],
    ) -> (Self, [u8; PAYLOAD_HEADER_LEN]) {
        let (cipher, commitment) = derive(input_key, &salt, context);
        let mut prefix = [0u8; PAYLOAD_HEADER_LEN];
        prefix[..SALT_LEN].copy_from_slice(&salt);
        prefix[SALT_LEN..].copy_from_slice(&commitment);
        (cipher, prefix)
    }

    #[cfg_attr(not(feature = "hazmat"), allow(dead_code))] // used through `hazmat`
    /// Derives the cipher for a new payload with a fresh random salt.
    pub fn for_encryption(
        input_key: &[u8; KEY_LEN],
        context: &[u8],
    ) -> (Self, [u8; PAYLOAD_HEADER_LEN]) {
        let mut salt = [0u8; SALT_LEN];
        crate::backend::fill_random(&mut salt);
        Self::for_encryption_with_salt(input_key, context, salt)
    }

    fn nonce(&self, index: u64) -> Result<[u8; NONCE_LEN], PayloadError> {
        if index >= MAX_CHUNKS {
            return Err(PayloadError::TooManyChunks);
        }
        let mut nonce = self.base_nonce;
        for (n, c) in nonce[NONCE_LEN - 8..].iter_mut().zip(index.to_be_bytes()) {
            *n ^= c;
        }
        Ok(nonce)
    }

    /// Encrypts chunk `index` in place and returns its tag.
    pub fn seal(&self, index: u64, chunk: &mut [u8]) -> Result<[u8; TAG_LEN], PayloadError> {
        debug_assert!(chunk.len() <= CHUNK_SIZE);
        Ok(self.aead.seal_in_place(self.nonce(index)?, &[], chunk))
    }

    /// Decrypts chunk `index` (`ciphertext || tag`) in place; returns the
    /// plaintext slice only if the tag verified.
    pub fn open<'a>(&self, index: u64, chunk: &'a mut [u8]) -> Result<&'a mut [u8], PayloadError> {
        let nonce = self.nonce(index)?;
        let Some(body_len) = chunk.len().checked_sub(TAG_LEN) else {
            return Err(PayloadError::Truncated);
        };
        let (body, tag) = chunk.split_at_mut(body_len);
        let mut t = [0u8; TAG_LEN];
        t.copy_from_slice(tag);
        self.aead
            .open_in_place(nonce, &[], body, &t)
            .map_err(|_| PayloadError::ChunkAuthFailed { index })
    }
}

/// Reads until `buf` is full or the input ends; returns the bytes read. The
/// one read-fully loop of the crate (it retries `Interrupted`).
pub(crate) fn read_full<R: Read + ?Sized>(reader: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Reads the salt and commitment that precede the first chunk: the one
/// parser of that prefix, for the sequential, file-level and seekable
/// readers. A short input is [`PayloadError::Truncated`].
pub(crate) fn read_payload_prefix<R: Read + ?Sized>(
    reader: &mut R,
) -> Result<[u8; PAYLOAD_HEADER_LEN], StreamError> {
    let mut prefix = [0u8; PAYLOAD_HEADER_LEN];
    if read_full(reader, &mut prefix)? < PAYLOAD_HEADER_LEN {
        return Err(PayloadError::Truncated.into());
    }
    Ok(prefix)
}

/// A payload failure, a segment signature failure, or an I/O error from the
/// underlying reader or writer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StreamError {
    /// The payload is invalid.
    #[error(transparent)]
    Payload(#[from] PayloadError),
    /// A segment of a signed file is not the sender's.
    #[error(transparent)]
    Signature(#[from] SignatureError),
    /// Reading or writing failed.
    #[error(transparent)]
    Io(#[from] io::Error),
}

impl From<StreamError> for io::Error {
    fn from(e: StreamError) -> Self {
        match e {
            StreamError::Io(e) => e,
            StreamError::Payload(p) => io::Error::new(io::ErrorKind::InvalidData, p),
            StreamError::Signature(s) => s.into(),
        }
    }
}

/// A segment being signed: the signer and the hash of its chunks so far.
#[derive(Debug)]
struct SigningState {
    signer: SegmentSigner,
    hasher: SegmentHasher,
}

/// Streaming encryptor: `io::Write` in, chunks out, in constant memory. For
/// a signed file it writes each segment's signature after the segment's
/// last chunk. [`PayloadWriter::finish`] must be called to write the final
/// chunk (and the final segment's signature).
pub struct PayloadWriter<W: Write> {
    inner: W,
    cipher: ChunkCipher,
    /// The chunk being filled, plaintext until sealed: wiped on drop.
    buf: Zeroizing<Vec<u8>>,
    index: u64,
    signing: Option<SigningState>,
}

// Debug output shows progress only: never buffered plaintext.
impl<W: Write> std::fmt::Debug for PayloadWriter<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PayloadWriter")
            .field("chunks_sealed", &self.index)
            .field("buffered", &self.buf.len())
            .field("signed", &self.signing.is_some())
            .finish_non_exhaustive()
    }
}

impl<W: Write> PayloadWriter<W> {
    #[cfg_attr(not(feature = "hazmat"), allow(dead_code))] // used through `hazmat`
    /// Starts an unsigned payload: writes the salt and commitment to `inner`.
    pub fn new(
        mut inner: W,
        input_key: &[u8; KEY_LEN],
        context: &[u8],
    ) -> Result<Self, StreamError> {
        let (cipher, prefix) = ChunkCipher::for_encryption(input_key, context);
        inner.write_all(&prefix)?;
        Ok(Self::from_parts(inner, cipher))
    }

    /// Continues an unsigned payload whose 56-byte prefix the caller already
    /// wrote.
    pub fn from_parts(inner: W, cipher: ChunkCipher) -> Self {
        Self::from_parts_signed(inner, cipher, None)
    }

    /// [`PayloadWriter::from_parts`]; with a signer, the body is written in
    /// signed segments.
    pub(crate) fn from_parts_signed(
        inner: W,
        cipher: ChunkCipher,
        signer: Option<SegmentSigner>,
    ) -> Self {
        PayloadWriter {
            inner,
            cipher,
            buf: Zeroizing::new(Vec::with_capacity(ENCRYPTED_CHUNK_SIZE)),
            index: 0,
            signing: signer.map(|signer| SigningState {
                signer,
                hasher: SegmentHasher::default(),
            }),
        }
    }

    /// The inner writer, the cipher and the signer, for the parallel path,
    /// which seals (and signs) the chunks itself. Valid only before anything
    /// was written: bytes buffered for an unfinished chunk would be lost.
    pub(crate) fn into_parts(self) -> (W, ChunkCipher, Option<SegmentSigner>) {
        debug_assert!(self.buf.is_empty() && self.index == 0);
        (self.inner, self.cipher, self.signing.map(|s| s.signer))
    }

    /// Seals the buffered plaintext as the next chunk and writes it; for a
    /// signed file, writes the segment's signature after its last chunk
    /// (the 64th, or the final chunk).
    fn seal_and_write(&mut self, is_final: bool) -> io::Result<()> {
        let tag = self
            .cipher
            .seal(self.index, &mut self.buf)
            .map_err(StreamError::from)?;
        self.buf.extend_from_slice(&tag);
        self.inner.write_all(&self.buf)?;
        let segment = self.index / SEGMENT_CHUNKS as u64;
        self.index += 1;
        if let Some(state) = &mut self.signing {
            state.hasher.update(&self.buf);
            // `%` rather than `is_multiple_of`, which needs Rust 1.87 (MSRV 1.85).
            #[allow(clippy::manual_is_multiple_of)]
            let segment_full = self.index % SEGMENT_CHUNKS as u64 == 0;
            if is_final || segment_full {
                let digest = std::mem::take(&mut state.hasher).finish();
                let signature = state.signer.sign_digest(segment, is_final, &digest)?;
                self.inner.write_all(&signature)?;
            }
        }
        self.buf.clear();
        Ok(())
    }

    /// Seals the final (short, possibly empty) chunk, writes the final
    /// segment's signature of a signed file, flushes, and returns the inner
    /// writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.seal_and_write(true)?;
        self.inner.flush()?;
        Ok(self.inner)
    }
}

impl<W: Write> Write for PayloadWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let take = (CHUNK_SIZE - self.buf.len()).min(data.len());
        self.buf.extend_from_slice(&data[..take]);
        // A full chunk is never the last one (the last is always short), so
        // it can be sealed and written as soon as it fills.
        if self.buf.len() == CHUNK_SIZE {
            self.seal_and_write(false)?;
        }
        Ok(take)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Why a [`PayloadReader`] stopped for good.
#[derive(Clone, Copy, Debug)]
enum Failure {
    Payload(PayloadError),
    Signature(SignatureError),
    /// A read of the input failed; an armor failure below keeps its class
    /// for later reads.
    Io(io::ErrorKind, Option<crate::armor::ArmorError>),
}

impl Failure {
    fn of(e: &StreamError) -> Self {
        match e {
            StreamError::Payload(p) => Failure::Payload(*p),
            StreamError::Signature(s) => Failure::Signature(*s),
            StreamError::Io(e) => {
                let armor = e
                    .get_ref()
                    .and_then(|inner| inner.downcast_ref::<crate::armor::ArmorError>())
                    .copied();
                Failure::Io(e.kind(), armor)
            }
        }
    }

    fn to_io_error(self) -> io::Error {
        match self {
            Failure::Payload(p) => StreamError::Payload(p).into(),
            Failure::Signature(s) => s.into(),
            Failure::Io(_, Some(a)) => a.into(),
            Failure::Io(kind, None) => {
                io::Error::new(kind, "an earlier read of the payload failed")
            }
        }
    }
}

/// Where a [`PayloadReader`] stands.
#[derive(Clone, Copy, Debug)]
enum ReadState {
    Reading,
    Done,
    Failed(Failure),
}

/// Streaming decryptor: ciphertext in, authenticated plaintext out, in
/// constant memory: one chunk at a time for an anonymous file, one verified
/// segment at a time for a signed file.
pub struct PayloadReader<R: Read> {
    inner: R,
    cipher: ChunkCipher,
    verifier: Option<SegmentVerifier>,
    /// Ciphertext of the current chunk (anonymous) or segment (signed),
    /// opened in place: plaintext once opened, wiped on drop.
    buf: Zeroizing<Box<[u8]>>,
    /// Plaintext ranges of `buf` still to hand out, in order.
    pieces: Vec<(usize, usize)>,
    next_piece: usize,
    /// Next chunk index to open.
    index: u64,
    segments_verified: u64,
    state: ReadState,
}

impl<R: Read> std::fmt::Debug for PayloadReader<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PayloadReader")
            .field("chunks_verified", &self.index)
            .field("segments_verified", &self.segments_verified)
            .field("signed", &self.verifier.is_some())
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl<R: Read> PayloadReader<R> {
    #[cfg_attr(not(feature = "hazmat"), allow(dead_code))] // used through `hazmat`
    /// Reads the salt and commitment of an unsigned payload and checks the
    /// commitment; no chunk is read or decrypted before it matched.
    pub fn new(
        mut inner: R,
        input_key: &[u8; KEY_LEN],
        context: &[u8],
    ) -> Result<Self, StreamError> {
        let prefix = read_payload_prefix(&mut inner)?;
        let cipher = ChunkCipher::for_decryption_with_prefix(input_key, context, &prefix)?;
        Ok(Self::from_parts(inner, cipher))
    }

    /// Continues an unsigned payload from the first chunk with an already
    /// verified cipher.
    pub fn from_parts(inner: R, cipher: ChunkCipher) -> Self {
        Self::from_parts_signed(inner, cipher, None)
    }

    /// [`PayloadReader::from_parts`]; with a verifier, the body is read in
    /// signed segments.
    pub(crate) fn from_parts_signed(
        inner: R,
        cipher: ChunkCipher,
        verifier: Option<SegmentVerifier>,
    ) -> Self {
        let unit = BodyUnits::new(verifier.is_some()).ciphertext_unit();
        PayloadReader {
            inner,
            cipher,
            verifier,
            buf: Zeroizing::new(vec![0u8; unit].into_boxed_slice()),
            pieces: Vec::with_capacity(SEGMENT_CHUNKS),
            next_piece: 0,
            index: 0,
            segments_verified: 0,
            state: ReadState::Reading,
        }
    }

    /// The inner reader (positioned at the first chunk), the verified
    /// cipher and the segment verifier, for the parallel path, which opens
    /// the chunks itself. Valid only before the first read.
    pub(crate) fn into_parts(self) -> (R, ChunkCipher, Option<SegmentVerifier>) {
        debug_assert!(self.index == 0 && self.pieces.is_empty());
        (self.inner, self.cipher, self.verifier)
    }

    /// Reads and opens the next chunk of an anonymous file.
    fn next_chunk(&mut self) -> Result<(), StreamError> {
        let n = read_full(&mut self.inner, &mut self.buf)?;
        if n < TAG_LEN {
            // Either nothing after a full chunk (the short final chunk is
            // missing) or a fragment too short to hold a tag.
            return Err(PayloadError::Truncated.into());
        }
        let plain = self.cipher.open(self.index, &mut self.buf[..n])?.len();
        self.pieces.push((0, plain));
        self.index += 1;
        if n < ENCRYPTED_CHUNK_SIZE {
            self.state = ReadState::Done;
        }
        Ok(())
    }

    /// Reads the next segment of a signed file, verifies its signature, then
    /// opens its chunks from the same bytes (SPEC.md section 6.5).
    fn next_segment(&mut self, verifier: &SegmentVerifier) -> Result<(), StreamError> {
        let n = read_full(&mut self.inner, &mut self.buf)?;
        let is_final = n < FULL_SEGMENT_LEN;
        let segment = self.index / SEGMENT_CHUNKS as u64;
        let unit = &mut self.buf[..n];
        open_signed_segment(
            &self.cipher,
            verifier,
            segment,
            unit,
            is_final,
            &mut self.pieces,
        )?;
        self.index += self.pieces.len() as u64;
        self.segments_verified += 1;
        if is_final {
            self.state = ReadState::Done;
        }
        Ok(())
    }

    /// Number of chunks authenticated so far.
    pub fn chunks_verified(&self) -> u64 {
        self.index
    }

    /// Number of segment signatures verified so far (0 for an anonymous file).
    pub fn segments_verified(&self) -> u64 {
        self.segments_verified
    }

    /// Whether the payload is signed (read in segments).
    #[cfg_attr(not(feature = "hazmat"), allow(dead_code))] // used through `hazmat`
    pub fn is_signed(&self) -> bool {
        self.verifier.is_some()
    }

    /// The sender whose signature covered every byte released so far: `Some`
    /// once the first segment of a signed file verified.
    pub fn verified_sender(&self) -> Option<&crate::ec::PublicKey> {
        match &self.verifier {
            Some(v) if self.segments_verified > 0 => Some(v.sender()),
            _ => None,
        }
    }

    fn refill(&mut self) -> Result<(), StreamError> {
        self.pieces.clear();
        self.next_piece = 0;
        match self.verifier.take() {
            None => self.next_chunk(),
            Some(v) => {
                let result = self.next_segment(&v);
                self.verifier = Some(v);
                result
            }
        }
    }
}

/// Verifies one signed segment and opens its chunks in place (SPEC.md
/// section 6.5), the one implementation the sequential, parallel and
/// seekable readers share. `unit` is segment `segment` as it is in the
/// file: its chunk bytes, then its signature. The signature is checked
/// before any chunk is opened. A non-final segment holds exactly
/// [`SEGMENT_CHUNKS`] full chunks; a final one is at least
/// [`MIN_FINAL_SEGMENT_LEN`] bytes and ends with a short chunk of at least a
/// tag. Records each chunk's plaintext range within `unit` in `pieces`
/// (cleared first); after a failure, only the chunks opened before it.
pub(crate) fn open_signed_segment(
    cipher: &ChunkCipher,
    verifier: &SegmentVerifier,
    segment: u64,
    unit: &mut [u8],
    is_final: bool,
    pieces: &mut Vec<(usize, usize)>,
) -> Result<(), StreamError> {
    pieces.clear();
    if unit.len() < MIN_FINAL_SEGMENT_LEN || (!is_final && unit.len() != FULL_SEGMENT_LEN) {
        return Err(PayloadError::Truncated.into());
    }
    let (body, signature) = unit.split_at_mut(unit.len() - SIGNATURE_LEN);
    verifier.verify(segment, is_final, body, signature)?;
    let rem = body.len() % ENCRYPTED_CHUNK_SIZE;
    if is_final && rem < TAG_LEN {
        return Err(PayloadError::Truncated.into());
    }
    let first_index = segment * SEGMENT_CHUNKS as u64;
    for (k, chunk) in body.chunks_mut(ENCRYPTED_CHUNK_SIZE).enumerate() {
        let start = k * ENCRYPTED_CHUNK_SIZE;
        let plain = cipher.open(first_index + k as u64, chunk)?.len();
        pieces.push((start, plain));
    }
    Ok(())
}

impl<R: Read> Read for PayloadReader<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        loop {
            if let Some(&(start, len)) = self.pieces.get(self.next_piece) {
                if len == 0 {
                    self.next_piece += 1;
                    continue;
                }
                let n = len.min(out.len());
                out[..n].copy_from_slice(&self.buf[start..start + n]);
                self.pieces[self.next_piece] = (start + n, len - n);
                return Ok(n);
            }
            match self.state {
                ReadState::Done => return Ok(0),
                ReadState::Failed(f) => return Err(f.to_io_error()),
                ReadState::Reading => {
                    if out.is_empty() {
                        return Ok(0);
                    }
                    if let Err(e) = self.refill() {
                        self.pieces.clear();
                        self.state = ReadState::Failed(Failure::of(&e));
                        // The first report of a read error keeps its message.
                        return Err(e.into());
                    }
                }
            }
        }
    }
}
