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
use rand_core::{OsRng, RngCore};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::aead::{Aes256Gcm, KEY_LEN, NONCE_LEN, TAG_LEN};
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
    /// The input key is not 32 bytes.
    #[error("input key must be 32 bytes, got {len}")]
    InvalidKeySize {
        /// The length given.
        len: usize,
    },
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
    input_key: &[u8],
    salt: &[u8; SALT_LEN],
    context: &[u8],
) -> Result<(ChunkCipher, [u8; COMMITMENT_LEN]), PayloadError> {
    if input_key.len() != KEY_LEN {
        return Err(PayloadError::InvalidKeySize {
            len: input_key.len(),
        });
    }
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
    Ok((
        ChunkCipher {
            aead: Aes256Gcm::new(&key),
            base_nonce,
        },
        commitment,
    ))
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
        input_key: &[u8],
        context: &[u8],
        salt: &[u8; SALT_LEN],
        commitment: &[u8; COMMITMENT_LEN],
    ) -> Result<Self, PayloadError> {
        let (cipher, expected) = derive(input_key, salt, context)?;
        if bool::from(expected.ct_eq(commitment)) {
            Ok(cipher)
        } else {
            Err(PayloadError::CommitmentMismatch)
        }
    }

    /// Derives the cipher for a new payload with a given salt, returning the
    /// 56 bytes that must precede the first chunk. Use a fresh random salt
    /// ([`ChunkCipher::for_encryption`]) except in conformance tests.
    pub fn for_encryption_with_salt(
        input_key: &[u8],
        context: &[u8],
        salt: [u8; SALT_LEN],
    ) -> Result<(Self, [u8; PAYLOAD_HEADER_LEN]), PayloadError> {
        let (cipher, commitment) = derive(input_key, &salt, context)?;
        let mut prefix = [0u8; PAYLOAD_HEADER_LEN];
        prefix[..SALT_LEN].copy_from_slice(&salt);
        prefix[SALT_LEN..].copy_from_slice(&commitment);
        Ok((cipher, prefix))
    }

    /// Derives the cipher for a new payload with a fresh random salt.
    pub fn for_encryption(
        input_key: &[u8],
        context: &[u8],
    ) -> Result<(Self, [u8; PAYLOAD_HEADER_LEN]), PayloadError> {
        let mut salt = [0u8; SALT_LEN];
        OsRng.fill_bytes(&mut salt);
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

/// Reads until `buf` is full or the input ends; returns the bytes read.
pub(crate) fn read_full<R: Read>(reader: &mut R, buf: &mut [u8]) -> io::Result<usize> {
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

/// A payload failure or an I/O error from the underlying reader or writer.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// The payload is invalid.
    #[error(transparent)]
    Payload(#[from] PayloadError),
    /// Reading or writing failed.
    #[error(transparent)]
    Io(#[from] io::Error),
}

impl From<StreamError> for io::Error {
    fn from(e: StreamError) -> Self {
        match e {
            StreamError::Io(e) => e,
            StreamError::Payload(p) => io::Error::new(io::ErrorKind::InvalidData, p),
        }
    }
}

/// Streaming encryptor: `io::Write` in, chunks out, in constant memory.
/// [`PayloadWriter::finish`] must be called to write the final chunk.
pub struct PayloadWriter<W: Write> {
    inner: W,
    cipher: ChunkCipher,
    buf: Vec<u8>,
    index: u64,
}

// Debug output shows progress only: never buffered plaintext.
impl<W: Write> std::fmt::Debug for PayloadWriter<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PayloadWriter")
            .field("chunks_sealed", &self.index)
            .field("buffered", &self.buf.len())
            .finish_non_exhaustive()
    }
}

impl<R: Read> std::fmt::Debug for PayloadReader<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PayloadReader")
            .field("chunks_verified", &self.index)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl<W: Write> PayloadWriter<W> {
    /// Starts a payload: writes the salt and commitment to `inner`.
    pub fn new(mut inner: W, input_key: &[u8], context: &[u8]) -> Result<Self, StreamError> {
        let (cipher, prefix) = ChunkCipher::for_encryption(input_key, context)?;
        inner.write_all(&prefix)?;
        Ok(Self::from_parts(inner, cipher))
    }

    /// Continues a payload whose 56-byte prefix the caller already wrote.
    pub fn from_parts(inner: W, cipher: ChunkCipher) -> Self {
        PayloadWriter {
            inner,
            cipher,
            buf: Vec::with_capacity(ENCRYPTED_CHUNK_SIZE),
            index: 0,
        }
    }

    /// The inner writer and the cipher, for a caller (the parallel path)
    /// that seals the chunks itself. Valid only before anything was written:
    /// bytes buffered for an unfinished chunk would be lost.
    pub fn into_parts(self) -> (W, ChunkCipher) {
        debug_assert!(self.buf.is_empty() && self.index == 0);
        (self.inner, self.cipher)
    }

    fn flush_full_chunk(&mut self) -> io::Result<()> {
        debug_assert_eq!(self.buf.len(), CHUNK_SIZE);
        let tag = self
            .cipher
            .seal(self.index, &mut self.buf)
            .map_err(StreamError::from)?;
        self.buf.extend_from_slice(&tag);
        self.inner.write_all(&self.buf)?;
        self.buf.clear();
        self.index += 1;
        Ok(())
    }

    /// Seals the final (short, possibly empty) chunk, flushes, and returns the
    /// inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        let tag = self
            .cipher
            .seal(self.index, &mut self.buf)
            .map_err(StreamError::from)?;
        self.buf.extend_from_slice(&tag);
        self.inner.write_all(&self.buf)?;
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
            self.flush_full_chunk()?;
        }
        Ok(take)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Where a [`PayloadReader`] stands.
#[derive(Clone, Copy, Debug)]
enum ReadState {
    Chunks,
    Done,
    Failed(PayloadError),
    /// A read of the input failed; `layer` keeps the class of a failure
    /// from a layer below (armor, sender signature) for later reads.
    IoFailed(io::ErrorKind, Option<LowerFailure>),
}

/// A failure of a reader below the payload that must keep its outcome class
/// on every later read.
#[derive(Clone, Copy, Debug)]
enum LowerFailure {
    Armor(crate::armor::ArmorError),
    Signature(crate::sender::SignatureError),
}

impl LowerFailure {
    fn of(e: &io::Error) -> Option<Self> {
        let inner = e.get_ref()?;
        if let Some(a) = inner.downcast_ref::<crate::armor::ArmorError>() {
            return Some(LowerFailure::Armor(*a));
        }
        inner
            .downcast_ref::<crate::sender::SignatureError>()
            .map(|s| LowerFailure::Signature(*s))
    }

    fn to_io_error(self) -> io::Error {
        match self {
            LowerFailure::Armor(a) => a.into(),
            LowerFailure::Signature(s) => s.into(),
        }
    }
}

/// Streaming decryptor: ciphertext in, authenticated plaintext out, one
/// chunk at a time, in constant memory.
pub struct PayloadReader<R: Read> {
    inner: R,
    cipher: ChunkCipher,
    buf: Box<[u8]>,
    start: usize,
    end: usize,
    index: u64,
    state: ReadState,
}

impl<R: Read> PayloadReader<R> {
    /// Reads the salt and commitment and checks the commitment; no chunk is
    /// read or decrypted before it matched.
    pub fn new(mut inner: R, input_key: &[u8], context: &[u8]) -> Result<Self, StreamError> {
        if input_key.len() != KEY_LEN {
            return Err(PayloadError::InvalidKeySize {
                len: input_key.len(),
            }
            .into());
        }
        let mut prefix = [0u8; PAYLOAD_HEADER_LEN];
        if read_full(&mut inner, &mut prefix)? < PAYLOAD_HEADER_LEN {
            return Err(PayloadError::Truncated.into());
        }
        let mut salt = [0u8; SALT_LEN];
        salt.copy_from_slice(&prefix[..SALT_LEN]);
        let mut commitment = [0u8; COMMITMENT_LEN];
        commitment.copy_from_slice(&prefix[SALT_LEN..]);
        let cipher = ChunkCipher::for_decryption(input_key, context, &salt, &commitment)?;
        Ok(Self::from_parts(inner, cipher))
    }

    /// Continues from the first chunk with an already verified cipher.
    pub fn from_parts(inner: R, cipher: ChunkCipher) -> Self {
        PayloadReader {
            inner,
            cipher,
            buf: vec![0u8; ENCRYPTED_CHUNK_SIZE].into_boxed_slice(),
            start: 0,
            end: 0,
            index: 0,
            state: ReadState::Chunks,
        }
    }

    /// The inner reader, positioned at the first chunk, and the verified
    /// cipher, for a caller (the parallel path) that opens the chunks itself.
    /// Valid only before the first read.
    pub fn into_parts(self) -> (R, ChunkCipher) {
        debug_assert!(self.index == 0 && self.start == self.end);
        (self.inner, self.cipher)
    }

    /// Reads and opens the next chunk into the buffer.
    fn next_chunk(&mut self) -> Result<(), StreamError> {
        let n = read_full(&mut self.inner, &mut self.buf)?;
        let last = n < ENCRYPTED_CHUNK_SIZE;
        if n < TAG_LEN {
            // Either nothing after a full chunk (the short final chunk is
            // missing) or a fragment too short to hold a tag.
            return Err(PayloadError::Truncated.into());
        }
        let plain = self.cipher.open(self.index, &mut self.buf[..n])?.len();
        self.start = 0;
        self.end = plain;
        self.index += 1;
        if last {
            self.state = ReadState::Done;
        }
        Ok(())
    }

    /// Number of chunks authenticated so far.
    pub fn chunks_verified(&self) -> u64 {
        self.index
    }
}

impl<R: Read> Read for PayloadReader<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.start < self.end {
                let n = (self.end - self.start).min(out.len());
                out[..n].copy_from_slice(&self.buf[self.start..self.start + n]);
                self.start += n;
                return Ok(n);
            }
            match self.state {
                ReadState::Done => return Ok(0),
                ReadState::Failed(e) => return Err(StreamError::Payload(e).into()),
                ReadState::IoFailed(_, Some(lower)) => return Err(lower.to_io_error()),
                ReadState::IoFailed(kind, None) => {
                    return Err(io::Error::new(
                        kind,
                        "an earlier read of the payload failed",
                    ))
                }
                ReadState::Chunks => {
                    if out.is_empty() {
                        return Ok(0);
                    }
                    match self.next_chunk() {
                        Ok(()) => {}
                        Err(StreamError::Payload(e)) => {
                            self.state = ReadState::Failed(e);
                        }
                        Err(StreamError::Io(e)) => {
                            self.state = ReadState::IoFailed(e.kind(), LowerFailure::of(&e));
                            return Err(e);
                        }
                    }
                }
            }
        }
    }
}
