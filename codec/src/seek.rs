//! Random access: decrypting any byte range of a payload or a kapsel file
//! over a `Read + Seek` source, without reading what comes before it.
//!
//! Two layers:
//! - [`SeekablePayload`] is a bare Cobblestone-256 payload (`salt ||
//!   commitment || chunks`) at a known place in a source, opened with the
//!   input key and context. It knows nothing about kapsel headers, so the
//!   C2SP vectors run through it directly.
//! - [`SeekableReader`], made by [`Decryptor::decrypt_seekable`], is a
//!   kapsel file: it unwraps the file key from the header, takes the payload
//!   length from the source length (less the 64-byte signature of a signed
//!   file), and adds the sender signature check
//!   ([`SeekableReader::verify_signature`]).
//!
//! Both implement `Read + Seek` (one position, `&mut self`), and offer
//! [`read_at`](SeekablePayload::read_at) (`&self`, no position), which
//! several threads may call at once, and [`cursor`](SeekablePayload::cursor)
//! for independent `Read + Seek` views that share one source.
//!
//! ```
//! use std::io::{Cursor, Seek, SeekFrom, Write};
//! use kapsel_codec::{Decryptor, Encryptor, Identity};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let alice = Identity::generate();
//! let mut writer = Encryptor::new([alice.to_recipient()])?.wrap_output(Vec::new())?;
//! writer.write_all(&[7u8; 100_000])?;
//! let file = writer.finish()?;
//!
//! let mut reader = Decryptor::new(Cursor::new(file))?   // reads the header
//!     .decrypt_seekable(std::slice::from_ref(&alice))?;  // unwraps the key, checks the commitment
//! let mut buf = [0u8; 10];
//! reader.read_exact_at(50_000, &mut buf)?;              // decrypts chunk 3 only
//! assert_eq!((buf, reader.chunks_decrypted()), ([7u8; 10], 1));
//! assert_eq!(reader.seek(SeekFrom::End(0))?, 100_000);  // opens the final chunk first
//! # Ok(())
//! # }
//! ```
//!
//! Layout: chunk `i` is the `16400` bytes at payload offset `56 + i * 16400`,
//! except the last, which holds the remaining `16..=16399` bytes (its tag and
//! up to 16383 plaintext bytes). Plaintext byte `p` lies in chunk
//! `p / 16384`.
//!
//! Invariants:
//! - Nothing is decrypted before the key commitment matched (at
//!   construction), and a payload whose length no valid payload can have
//!   (a final chunk shorter than a tag, or no short final chunk) is refused
//!   at construction as truncated.
//! - Plaintext comes only from chunks whose tag verified at their own index
//!   and with their expected length: each range decrypts exactly the chunks
//!   it touches, and a corrupt chunk fails exactly the reads that touch it.
//!   There is no sticky failure state (unlike the streaming
//!   [`PayloadReader`](crate::payload::PayloadReader)), since the next read
//!   may be elsewhere.
//! - The end of the plaintext is reported (`Ok(0)` from `read`, a short
//!   `read_at`, `SeekFrom::End`, [`SeekablePayload::plaintext_len`]) only
//!   after the final chunk opened as the final chunk at its index. Its index
//!   and length enter the tag check, so a truncated or extended file cannot
//!   produce a wrong end; without this step the length is only a claim.
//! - The length is fixed when the reader is made; bytes appended to the
//!   source later are never read, and a source that shrank reads as
//!   truncated.
//! - `read_at` and cursors lock the source only to seek and read one
//!   chunk's ciphertext, and decrypt outside the lock. A one-chunk cache
//!   (behind its own lock) holds the plaintext of the last chunk decrypted,
//!   so small sequential reads (as archive readers make) decrypt each chunk
//!   once.
//!
//! Sender signatures: a signed file's signature covers the whole file, so
//! checking it needs one pass over every byte ([`SeekableReader::verify_signature`],
//! hashing only, no decryption). Ranged reads do not do that pass: their
//! plaintext is authenticated by the chunk tags as coming from someone who
//! knows the file key (the sender or any recipient), not as coming from the
//! sender the header names. That is the same guarantee an anonymous file
//! gives. Call `verify_signature` first when the sender matters; the `kapsel`
//! tool always does for signed files.

use std::io::{self, Read, Seek, SeekFrom};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use kapsel_format::Header;
use p256::ecdsa::signature::DigestVerifier;
use p256::ecdsa::{Signature, VerifyingKey};
use p256::PublicKey;
use sha2::{Digest, Sha256};

use crate::aead::{KEY_LEN, TAG_LEN};
use crate::decrypt::{unwrap_file_key, Decryptor};
use crate::error::DecryptError;
use crate::keys::{Identity, Recipient};
use crate::payload::{
    read_full, ChunkCipher, PayloadError, StreamError, CHUNK_SIZE, COMMITMENT_LEN,
    ENCRYPTED_CHUNK_SIZE, MAX_CHUNKS, PAYLOAD_HEADER_LEN, SALT_LEN,
};
use crate::sender::{SignatureError, SIGNATURE_LABEL, SIGNATURE_LEN};

/// Where the chunks are, derived from the payload length alone.
#[derive(Clone, Copy, Debug)]
struct Layout {
    /// Source offset of chunk 0.
    chunks_start: u64,
    /// Number of chunks, the short final one included (at least 1).
    chunk_count: u64,
    /// Ciphertext bytes of the final chunk, `TAG_LEN..ENCRYPTED_CHUNK_SIZE`.
    final_len: usize,
    /// Plaintext bytes in all chunks.
    plaintext_len: u64,
}

impl Layout {
    /// The layout of `chunk_bytes` bytes of chunks starting at `chunks_start`.
    fn new(chunks_start: u64, chunk_bytes: u64) -> Result<Self, PayloadError> {
        let enc = ENCRYPTED_CHUNK_SIZE as u64;
        let full = chunk_bytes / enc;
        // The remainder is below 16400, so it fits in usize.
        let final_len = (chunk_bytes % enc) as usize;
        if final_len < TAG_LEN {
            // No room for the final chunk's tag: either a file cut at a
            // chunk boundary (the short final chunk is missing) or cut
            // inside a tag.
            return Err(PayloadError::Truncated);
        }
        let chunk_count = full + 1;
        if chunk_count > MAX_CHUNKS {
            return Err(PayloadError::TooManyChunks);
        }
        Ok(Layout {
            chunks_start,
            chunk_count,
            final_len,
            // full < 2^38, so full * 16384 + 16383 < 2^53.
            plaintext_len: full * CHUNK_SIZE as u64 + (final_len - TAG_LEN) as u64,
        })
    }

    fn last(&self) -> u64 {
        self.chunk_count - 1
    }

    /// Source offset and ciphertext length of chunk `index` (< chunk_count).
    fn location(&self, index: u64) -> (u64, usize) {
        let len = if index == self.last() {
            self.final_len
        } else {
            ENCRYPTED_CHUNK_SIZE
        };
        // index < 2^38 and chunks_start + the payload length was checked
        // not to overflow at construction.
        (self.chunks_start + index * ENCRYPTED_CHUNK_SIZE as u64, len)
    }
}

/// The plaintext of the chunk decrypted last.
struct Cache {
    index: Option<u64>,
    len: usize,
    buf: Box<[u8]>,
}

/// Locks `m`, also after another thread panicked while holding it: the
/// source is always sought before it is read, and the cache is replaced in
/// one assignment, so neither can be left half-updated.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn copy_out(plain: &[u8], within: usize, out: &mut [u8]) -> usize {
    let available = plain.get(within..).unwrap_or(&[]);
    let n = available.len().min(out.len());
    out[..n].copy_from_slice(&available[..n]);
    n
}

fn invalid_input(message: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message)
}

/// A Cobblestone-256 payload with random access: `Read + Seek` over the
/// plaintext, and [`read_at`](Self::read_at) from several threads.
///
/// See the [module documentation](self) for what is authenticated when.
pub struct SeekablePayload<R> {
    source: Mutex<R>,
    cipher: ChunkCipher,
    layout: Layout,
    cache: Mutex<Cache>,
    decrypted: AtomicU64,
    length_verified: AtomicBool,
    pos: u64,
}

impl<R> std::fmt::Debug for SeekablePayload<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SeekablePayload")
            .field("chunk_count", &self.layout.chunk_count)
            .field("chunks_decrypted", &self.chunks_decrypted())
            .field("length_verified", &self.is_length_verified())
            .field("position", &self.pos)
            .finish_non_exhaustive()
    }
}

impl<R: Read + Seek> SeekablePayload<R> {
    /// Opens the payload of `payload_len` bytes (salt, commitment, chunks)
    /// that starts at offset `payload_start` of `source`: reads the salt and
    /// commitment and checks the commitment for `input_key` and `context`.
    ///
    /// Errors, in this order: an input key that is not 32 bytes
    /// ([`PayloadError::InvalidKeySize`]); a payload shorter than 56 bytes or
    /// a source that ends first ([`PayloadError::Truncated`]); a commitment
    /// mismatch ([`PayloadError::CommitmentMismatch`]); a length no payload
    /// can have ([`PayloadError::Truncated`]) or of 2^38 chunks or more
    /// ([`PayloadError::TooManyChunks`]). No chunk is read.
    pub fn new(
        mut source: R,
        payload_start: u64,
        payload_len: u64,
        input_key: &[u8],
        context: &[u8],
    ) -> Result<Self, StreamError> {
        if input_key.len() != KEY_LEN {
            return Err(PayloadError::InvalidKeySize {
                len: input_key.len(),
            }
            .into());
        }
        if payload_start.checked_add(payload_len).is_none() {
            return Err(invalid_input("payload start and length overflow").into());
        }
        let Some(chunk_bytes) = payload_len.checked_sub(PAYLOAD_HEADER_LEN as u64) else {
            return Err(PayloadError::Truncated.into());
        };
        let mut prefix = [0u8; PAYLOAD_HEADER_LEN];
        source.seek(SeekFrom::Start(payload_start))?;
        if read_full(&mut source, &mut prefix)? < PAYLOAD_HEADER_LEN {
            return Err(PayloadError::Truncated.into());
        }
        let mut salt = [0u8; SALT_LEN];
        salt.copy_from_slice(&prefix[..SALT_LEN]);
        let mut commitment = [0u8; COMMITMENT_LEN];
        commitment.copy_from_slice(&prefix[SALT_LEN..]);
        let cipher = ChunkCipher::for_decryption(input_key, context, &salt, &commitment)?;
        let layout = Layout::new(payload_start + PAYLOAD_HEADER_LEN as u64, chunk_bytes)?;
        Ok(SeekablePayload {
            source: Mutex::new(source),
            cipher,
            layout,
            cache: Mutex::new(Cache {
                index: None,
                len: 0,
                buf: Box::new([]),
            }),
            decrypted: AtomicU64::new(0),
            length_verified: AtomicBool::new(false),
            pos: 0,
        })
    }

    /// Reads chunk `index` into `buf` (at least one encrypted chunk long)
    /// and opens it; returns the plaintext length.
    fn open_chunk(&self, index: u64, buf: &mut [u8]) -> Result<usize, StreamError> {
        let (offset, len) = self.layout.location(index);
        let ciphertext = &mut buf[..len];
        {
            let mut source = lock(&self.source);
            source.seek(SeekFrom::Start(offset))?;
            if read_full(&mut *source, ciphertext)? < len {
                // The source is shorter than when the reader was made.
                return Err(PayloadError::Truncated.into());
            }
        }
        self.decrypted.fetch_add(1, Ordering::Relaxed);
        let plain = self.cipher.open(index, ciphertext)?.len();
        if index == self.layout.last() {
            self.length_verified.store(true, Ordering::Release);
        }
        Ok(plain)
    }

    /// Copies the plaintext of chunk `index` from byte `within` into `out`,
    /// through the one-chunk cache; returns the bytes copied.
    fn copy_from_chunk(
        &self,
        index: u64,
        within: usize,
        out: &mut [u8],
    ) -> Result<usize, StreamError> {
        {
            let cache = lock(&self.cache);
            if cache.index == Some(index) {
                return Ok(copy_out(&cache.buf[..cache.len], within, out));
            }
        }
        // Decrypt outside the cache lock, so threads reading different
        // chunks decrypt in parallel.
        let mut buf = vec![0u8; ENCRYPTED_CHUNK_SIZE].into_boxed_slice();
        let len = self.open_chunk(index, &mut buf)?;
        let copied = copy_out(&buf[..len], within, out);
        *lock(&self.cache) = Cache {
            index: Some(index),
            len,
            buf,
        };
        Ok(copied)
    }

    /// Authenticates the plaintext length by opening the final chunk (once;
    /// later calls return at once).
    pub fn verify_length(&self) -> io::Result<()> {
        if self.length_verified.load(Ordering::Acquire) {
            return Ok(());
        }
        self.copy_from_chunk(self.layout.last(), 0, &mut [])?;
        Ok(())
    }

    /// The plaintext length, authenticated: opens the final chunk first if
    /// that has not happened yet.
    pub fn plaintext_len(&self) -> io::Result<u64> {
        self.verify_length()?;
        Ok(self.layout.plaintext_len)
    }

    /// Fills `out` from plaintext offset `offset`, chunk by chunk; returns
    /// the bytes filled and the error that stopped it, if any.
    fn fill_at(&self, offset: u64, out: &mut [u8]) -> (usize, Option<io::Error>) {
        if out.is_empty() {
            return (0, None);
        }
        let len = self.layout.plaintext_len;
        if offset.saturating_add(out.len() as u64) > len {
            // The read ends at the end of the plaintext: authenticate it.
            if let Err(e) = self.verify_length() {
                return (0, Some(e));
            }
        }
        if offset >= len {
            return (0, None);
        }
        // Bounded by out.len(), so it fits in usize.
        let want = (len - offset).min(out.len() as u64) as usize;
        let mut done = 0;
        while done < want {
            let pos = offset + done as u64;
            let index = pos / CHUNK_SIZE as u64;
            let within = (pos % CHUNK_SIZE as u64) as usize;
            match self.copy_from_chunk(index, within, &mut out[done..want]) {
                Ok(0) => {
                    // A chunk that opened holds exactly the plaintext the
                    // layout gives it, so this cannot happen.
                    let e = io::Error::other("chunk shorter than its layout");
                    return (done, Some(e));
                }
                Ok(n) => done += n,
                Err(e) => return (done, Some(e.into())),
            }
        }
        (done, None)
    }

    /// Reads plaintext from `offset` into `buf`, without moving the
    /// position; takes `&self`, so several threads may call it at once.
    ///
    /// Fills `buf` completely unless the plaintext ends first: a shorter
    /// count (or 0) means the end, and is returned only after the final
    /// chunk authenticated. Decrypts only the chunks the range touches. On
    /// error (a chunk in the range that does not open, reported as
    /// `InvalidData` carrying a [`PayloadError`]; or an I/O error), the
    /// contents of `buf` are unspecified.
    pub fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        match self.fill_at(offset, buf) {
            (n, None) => Ok(n),
            (_, Some(e)) => Err(e),
        }
    }

    /// Reads exactly `buf.len()` plaintext bytes from `offset`; a range past
    /// the (authenticated) end is `UnexpectedEof`.
    pub fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        if self.read_at(offset, buf)? < buf.len() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "range past the end of the plaintext",
            ));
        }
        Ok(())
    }

    /// An independent `Read + Seek` view at position 0 that shares the
    /// source and the cache; one per thread lets several threads read (for
    /// example open archive members) at once.
    pub fn cursor(&self) -> PayloadCursor<'_, R> {
        PayloadCursor {
            payload: self,
            pos: 0,
        }
    }
}

impl<R> SeekablePayload<R> {
    /// The plaintext length the payload length implies, not yet
    /// authenticated unless [`is_length_verified`](Self::is_length_verified).
    pub fn unverified_plaintext_len(&self) -> u64 {
        self.layout.plaintext_len
    }

    /// Whether the final chunk has opened, which authenticates the length.
    pub fn is_length_verified(&self) -> bool {
        self.length_verified.load(Ordering::Acquire)
    }

    /// Chunks read and decrypted so far, through every path (cache hits do
    /// not count; chunks that failed do).
    pub fn chunks_decrypted(&self) -> u64 {
        self.decrypted.load(Ordering::Relaxed)
    }

    /// Number of chunks in the payload, the final one included.
    pub fn chunk_count(&self) -> u64 {
        self.layout.chunk_count
    }

    /// The source (its position is unspecified).
    pub fn into_inner(self) -> R {
        self.source
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// The new position for `seek`; `SeekFrom::End` authenticates the length.
fn seek_target<R: Read + Seek>(
    payload: &SeekablePayload<R>,
    pos: u64,
    to: SeekFrom,
) -> io::Result<u64> {
    let target = match to {
        SeekFrom::Start(n) => Some(n),
        SeekFrom::Current(d) => pos.checked_add_signed(d),
        SeekFrom::End(d) => payload.plaintext_len()?.checked_add_signed(d),
    };
    target.ok_or_else(|| invalid_input("seek to a negative or overflowing position"))
}

/// `read` at `pos`: at most up to the end of one chunk, so that a chunk
/// that fails does not hide the plaintext of the chunks before it.
fn read_from<R: Read + Seek>(
    payload: &SeekablePayload<R>,
    pos: u64,
    out: &mut [u8],
) -> io::Result<usize> {
    let to_chunk_end = CHUNK_SIZE - (pos % CHUNK_SIZE as u64) as usize;
    let n = out.len().min(to_chunk_end);
    payload.read_at(pos, &mut out[..n])
}

impl<R: Read + Seek> Read for SeekablePayload<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let n = read_from(self, self.pos, out)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl<R: Read + Seek> Seek for SeekablePayload<R> {
    /// Moves the position without reading; `SeekFrom::End` first opens the
    /// final chunk. Positions past the end are allowed (reads there return
    /// 0, after the length authenticated); negative ones are `InvalidInput`.
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        self.pos = seek_target(self, self.pos, to)?;
        Ok(self.pos)
    }

    fn stream_position(&mut self) -> io::Result<u64> {
        Ok(self.pos)
    }
}

/// An independent `Read + Seek` view of a [`SeekablePayload`] (see
/// [`SeekablePayload::cursor`] and [`SeekableReader::cursor`]).
#[derive(Debug)]
pub struct PayloadCursor<'a, R> {
    payload: &'a SeekablePayload<R>,
    pos: u64,
}

impl<R: Read + Seek> Read for PayloadCursor<'_, R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let n = read_from(self.payload, self.pos, out)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl<R: Read + Seek> Seek for PayloadCursor<'_, R> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        self.pos = seek_target(self.payload, self.pos, to)?;
        Ok(self.pos)
    }

    fn stream_position(&mut self) -> io::Result<u64> {
        Ok(self.pos)
    }
}

/// A kapsel file opened for random access: see [`Decryptor::decrypt_seekable`]
/// and the [module documentation](self).
pub struct SeekableReader<R> {
    payload: SeekablePayload<R>,
    header: Header,
    header_bytes: Vec<u8>,
    /// The sender key the header names (validated as a P-256 point).
    sender: Option<PublicKey>,
    /// Source offset of the payload (the byte after the header).
    payload_start: u64,
    /// Source offset of the signature of a signed file.
    signature_offset: u64,
    signature_verified: AtomicBool,
}

impl<R> std::fmt::Debug for SeekableReader<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SeekableReader")
            .field("payload", &self.payload)
            .field("signed", &self.sender.is_some())
            .field("signature_verified", &self.is_signature_verified())
            .finish_non_exhaustive()
    }
}

impl<R: Read + Seek> Decryptor<R> {
    /// Opens the file for random access. Unwraps the file key with the
    /// first identity that opens a stanza, measures the source (seeking to
    /// its end), and checks the key commitment; nothing else is read.
    ///
    /// The payload runs from the end of the header to the end of the source,
    /// less the 64-byte signature when the header names a sender. The file
    /// must therefore end where the source ends; its length is authenticated
    /// only when the final chunk opens (on `SeekFrom::End`, at the end of
    /// the plaintext, or by [`SeekableReader::plaintext_len`]).
    ///
    /// The sender signature of a signed file is *not* checked here or by
    /// reads: see [`SeekableReader::verify_signature`].
    pub fn decrypt_seekable(
        self,
        identities: &[Identity],
    ) -> Result<SeekableReader<R>, DecryptError> {
        let (mut source, header, header_bytes) = self.into_parts();
        let (file_key, sender) = unwrap_file_key(&header, identities)?;
        let payload_start = source.stream_position()?;
        let end = source.seek(SeekFrom::End(0))?;
        let after_header = end
            .checked_sub(payload_start)
            .ok_or(PayloadError::Truncated)?;
        let payload_len = if sender.is_some() {
            after_header
                .checked_sub(SIGNATURE_LEN as u64)
                .ok_or(PayloadError::Truncated)?
        } else {
            after_header
        };
        let payload = SeekablePayload::new(
            source,
            payload_start,
            payload_len,
            &file_key[..],
            &header_bytes,
        )?;
        Ok(SeekableReader {
            payload,
            header,
            header_bytes,
            sender,
            payload_start,
            signature_offset: payload_start + payload_len,
            signature_verified: AtomicBool::new(false),
        })
    }
}

/// Bytes hashed per source read by [`SeekableReader::verify_signature`].
const SIGNATURE_PASS_PIECE: usize = 256 * 1024;

impl<R: Read + Seek> SeekableReader<R> {
    /// Checks the sender signature of a signed file: reads and hashes every
    /// byte of the file (no decryption), then verifies the signature.
    ///
    /// Returns the verified sender, or `None` for an anonymous file (which
    /// has no sender to verify). Failures are `InvalidData` errors carrying a
    /// [`SignatureError`] (see [`crate::outcome_of_io_error`]). The source
    /// is locked per piece, so `read_at` calls from other threads go on
    /// meanwhile. A success is remembered.
    pub fn verify_signature(&self) -> io::Result<Option<Recipient>> {
        let Some(sender) = &self.sender else {
            return Ok(None);
        };
        let verified = Recipient::from_public_key(*sender);
        if self.is_signature_verified() {
            return Ok(Some(verified));
        }
        let mut transcript = Sha256::new();
        transcript.update(SIGNATURE_LABEL);
        transcript.update(&self.header_bytes);
        let mut buf = vec![0u8; SIGNATURE_PASS_PIECE];
        let mut pos = self.payload_start;
        while pos < self.signature_offset {
            // Bounded by the buffer length.
            let n = (self.signature_offset - pos).min(buf.len() as u64) as usize;
            let got = {
                let mut source = lock(&self.payload.source);
                source.seek(SeekFrom::Start(pos))?;
                read_full(&mut *source, &mut buf[..n])?
            };
            if got < n {
                return Err(SignatureError::Missing.into());
            }
            transcript.update(&buf[..n]);
            pos += n as u64;
        }
        let mut signature = [0u8; SIGNATURE_LEN];
        let got = {
            let mut source = lock(&self.payload.source);
            source.seek(SeekFrom::Start(self.signature_offset))?;
            read_full(&mut *source, &mut signature)?
        };
        if got < SIGNATURE_LEN {
            return Err(SignatureError::Missing.into());
        }
        let signature = Signature::from_slice(&signature).map_err(|_| SignatureError::Invalid)?;
        VerifyingKey::from(sender)
            .verify_digest(transcript, &signature)
            .map_err(|_| SignatureError::Invalid)?;
        self.signature_verified.store(true, Ordering::Release);
        Ok(Some(verified))
    }

    /// See [`SeekablePayload::read_at`].
    pub fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        self.payload.read_at(offset, buf)
    }

    /// See [`SeekablePayload::read_exact_at`].
    pub fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.payload.read_exact_at(offset, buf)
    }

    /// See [`SeekablePayload::plaintext_len`].
    pub fn plaintext_len(&self) -> io::Result<u64> {
        self.payload.plaintext_len()
    }

    /// See [`SeekablePayload::verify_length`].
    pub fn verify_length(&self) -> io::Result<()> {
        self.payload.verify_length()
    }

    /// See [`SeekablePayload::cursor`].
    pub fn cursor(&self) -> PayloadCursor<'_, R> {
        self.payload.cursor()
    }
}

impl<R> SeekableReader<R> {
    /// The parsed header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The header's bytes as received.
    pub fn header_bytes(&self) -> &[u8] {
        &self.header_bytes
    }

    /// The sender the header names, if any: only a claim until
    /// [`verify_signature`](Self::verify_signature) succeeded.
    pub fn sender(&self) -> Option<Recipient> {
        self.sender.map(Recipient::from_public_key)
    }

    /// Whether [`verify_signature`](Self::verify_signature) succeeded
    /// (always false for an anonymous file).
    pub fn is_signature_verified(&self) -> bool {
        self.signature_verified.load(Ordering::Acquire)
    }

    /// The payload layer, for its counters and accessors.
    pub fn payload(&self) -> &SeekablePayload<R> {
        &self.payload
    }

    /// See [`SeekablePayload::unverified_plaintext_len`].
    pub fn unverified_plaintext_len(&self) -> u64 {
        self.payload.unverified_plaintext_len()
    }

    /// See [`SeekablePayload::chunks_decrypted`].
    pub fn chunks_decrypted(&self) -> u64 {
        self.payload.chunks_decrypted()
    }

    /// See [`SeekablePayload::chunk_count`].
    pub fn chunk_count(&self) -> u64 {
        self.payload.chunk_count()
    }

    /// The source (its position is unspecified).
    pub fn into_inner(self) -> R {
        self.payload.into_inner()
    }
}

impl<R: Read + Seek> Read for SeekableReader<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        self.payload.read(out)
    }
}

impl<R: Read + Seek> Seek for SeekableReader<R> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        self.payload.seek(to)
    }

    fn stream_position(&mut self) -> io::Result<u64> {
        self.payload.stream_position()
    }
}
