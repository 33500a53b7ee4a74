//! Random access: decrypting any byte range of a payload or a kapsel file
//! over a `Read + Seek` source, without reading what comes before it.
//!
//! Two layers:
//! - [`SeekablePayload`] is a bare Cobblestone-256 payload (`salt ||
//!   commitment || chunks`) at a known place in a source, opened with the
//!   input key and context. It knows nothing about kapsel headers, so the
//!   C2SP vectors run through it directly.
//! - [`SeekableReader`], made by [`Decryptor::decrypt_seekable`], is a
//!   kapsel file: it finds the file key from the header, takes the payload
//!   length from the source length, and for a signed file reads whole
//!   signed segments, verifying each before it decrypts any of it.
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
//! Layout (SPEC.md section 6.6): in an anonymous file chunk `i` is the
//! `16400` bytes at payload offset `56 + i * 16400`, except the last, which
//! holds the remaining `16..=16399` bytes; plaintext byte `p` lies in chunk
//! `p / 16384`. In a signed file segment `j` is the `1049664` bytes at
//! payload offset `56 + j * 1049664` (64 chunks and a signature), except the
//! last, which holds the remaining `80..=1049663`; plaintext byte `p` lies
//! in segment `p / 1048576`. The *unit* of a reader is the chunk (anonymous)
//! or the segment (signed): what is read, verified and decrypted at once.
//!
//! Invariants:
//! - Nothing is decrypted before the key commitment matched (at
//!   construction), and a payload whose length no valid payload can have is
//!   refused at construction as truncated, before any chunk is read.
//! - Single fetch: a unit's bytes are read from the source once, under the
//!   source lock, into memory; a segment's signature is verified over those
//!   bytes and its chunks are opened from the same bytes. A source that
//!   answers two reads differently can make a read fail, never return
//!   plaintext that was not verified.
//! - Plaintext comes only from units that verified at their own index and
//!   with their expected length (and final flag): each range decrypts
//!   exactly the units it touches, and a corrupt unit fails exactly the
//!   reads that touch it. There is no sticky failure state (unlike the
//!   streaming [`PayloadReader`](crate::payload::PayloadReader)), since the
//!   next read may be elsewhere.
//! - The end of the plaintext is reported (`Ok(0)` from `read`, a short
//!   `read_at`, `SeekFrom::End`, [`SeekablePayload::plaintext_len`]) only
//!   after the final unit verified as the final one at its index. A range
//!   that ends at or before the claimed length does not need it.
//! - The length is fixed when the reader is made; bytes appended to the
//!   source later are never read, and a source that shrank reads as
//!   truncated.
//! - `read_at` and cursors lock the source only to seek and read one unit,
//!   and verify and decrypt outside the lock. A one-unit cache (behind its
//!   own lock) holds the plaintext of the last unit decrypted, so small
//!   sequential reads (as archive readers make) decrypt each unit once.
//!
//! Sender signatures: every plaintext byte a [`SeekableReader`] of a signed
//! file returns was signed by the sender the header names
//! ([`SeekableReader::verified_sender`]); what a ranged read cannot tell is
//! that the file is complete, until the final segment verified.

use std::io::{self, Read, Seek, SeekFrom};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use zeroize::Zeroizing;

use kapsel_format::Header;

use crate::aead::{KEY_LEN, TAG_LEN};
use crate::decrypt::{claimed_sender, ClaimedSender};
use crate::keys::Recipient;
use crate::payload::{
    open_signed_segment, read_full, read_payload_prefix, ChunkCipher, PayloadError, StreamError,
    CHUNK_SIZE, ENCRYPTED_CHUNK_SIZE, MAX_CHUNKS, PAYLOAD_HEADER_LEN,
};
use crate::segment::{
    BodyUnits, SegmentVerifier, FULL_SEGMENT_LEN, MIN_FINAL_SEGMENT_LEN, SEGMENT_CHUNKS,
    SIGNATURE_LEN,
};

/// Where the units are, derived from the payload length alone.
#[derive(Clone, Copy, Debug)]
struct Layout {
    /// Source offset of chunk 0 (the first byte after salt and commitment).
    body_start: u64,
    /// Whether the body is in signed segments.
    signed: bool,
    /// Number of chunks, the short final one included (at least 1).
    chunk_count: u64,
    /// Number of units (chunks or segments), the final one included.
    unit_count: u64,
    /// Bytes of the final unit (chunk, or segment with its signature).
    final_unit_len: usize,
    /// Plaintext bytes in all chunks.
    plaintext_len: u64,
}

/// The plaintext length and chunk count of a payload, computed from its
/// length alone (SPEC.md section 6.6 step 2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PayloadShape {
    /// Plaintext bytes the payload decrypts to, if it authenticates.
    pub plaintext_len: u64,
    /// Number of chunks, the final one included.
    pub chunk_count: u64,
}

/// The shape of a payload of `payload_len` bytes (salt and commitment
/// included) of an anonymous (`signed = false`) or signed file; an error for
/// a length no encoder produces (the file was cut or extended).
pub fn payload_shape(payload_len: u64, signed: bool) -> Result<PayloadShape, PayloadError> {
    let body_len = payload_len
        .checked_sub(PAYLOAD_HEADER_LEN as u64)
        .ok_or(PayloadError::Truncated)?;
    let layout = Layout::new(PAYLOAD_HEADER_LEN as u64, body_len, signed)?;
    Ok(PayloadShape {
        plaintext_len: layout.plaintext_len,
        chunk_count: layout.chunk_count,
    })
}

impl Layout {
    /// The layout of `body_len` bytes of chunks (or segments) starting at
    /// `body_start` (SPEC.md section 6.6 step 2).
    fn new(body_start: u64, body_len: u64, signed: bool) -> Result<Self, PayloadError> {
        let enc = ENCRYPTED_CHUNK_SIZE as u64;
        let (unit_count, final_unit_len, full_chunks, final_chunk_len) = if signed {
            let full_segments = body_len / FULL_SEGMENT_LEN as u64;
            // Below FULL_SEGMENT_LEN, so it fits in usize.
            let g = (body_len % FULL_SEGMENT_LEN as u64) as usize;
            if g < MIN_FINAL_SEGMENT_LEN {
                return Err(PayloadError::Truncated);
            }
            let chunk_bytes = g - SIGNATURE_LEN;
            let f = chunk_bytes % ENCRYPTED_CHUNK_SIZE;
            let in_final = (chunk_bytes / ENCRYPTED_CHUNK_SIZE) as u64;
            let full = full_segments
                .checked_mul(SEGMENT_CHUNKS as u64)
                .and_then(|c| c.checked_add(in_final))
                .ok_or(PayloadError::TooManyChunks)?;
            (full_segments + 1, g, full, f)
        } else {
            let full = body_len / enc;
            // The remainder is below 16400, so it fits in usize.
            let f = (body_len % enc) as usize;
            (full + 1, f, full, f)
        };
        if final_chunk_len < TAG_LEN {
            // No room for the final chunk's tag: either a file cut at a
            // chunk boundary (the short final chunk is missing) or cut
            // inside a tag.
            return Err(PayloadError::Truncated);
        }
        let chunk_count = full_chunks + 1;
        if chunk_count > MAX_CHUNKS {
            return Err(PayloadError::TooManyChunks);
        }
        Ok(Layout {
            body_start,
            signed,
            chunk_count,
            unit_count,
            final_unit_len,
            // full_chunks < 2^38, so this stays below 2^53.
            plaintext_len: full_chunks * CHUNK_SIZE as u64 + (final_chunk_len - TAG_LEN) as u64,
        })
    }

    fn last(&self) -> u64 {
        self.unit_count - 1
    }

    /// Plaintext bytes of a full unit.
    fn unit_plaintext(&self) -> u64 {
        BodyUnits::new(self.signed).plaintext_unit() as u64
    }

    /// Bytes of a full unit in the source.
    fn unit_len(&self) -> usize {
        BodyUnits::new(self.signed).ciphertext_unit()
    }

    /// The source bytes `read_at(offset, len)` reads: from the start of the
    /// unit holding `offset` to the end of the unit holding `offset + len - 1`,
    /// and through the final unit when the range reaches past the end of the
    /// plaintext (which authenticates the length). `None` for an empty range.
    fn source_range(&self, offset: u64, len: u64) -> Option<std::ops::Range<u64>> {
        if len == 0 {
            return None;
        }
        let unit = self.unit_plaintext();
        let end = offset.saturating_add(len);
        let first = (offset / unit).min(self.last());
        let last = if end > self.plaintext_len {
            self.last()
        } else {
            // end >= 1 since len > 0.
            ((end - 1) / unit).min(self.last())
        };
        let (start, _) = self.location(first);
        let (at, n) = self.location(last);
        Some(start..at + n as u64)
    }

    /// Source offset and length of unit `index` (< unit_count).
    fn location(&self, index: u64) -> (u64, usize) {
        let len = if index == self.last() {
            self.final_unit_len
        } else {
            self.unit_len()
        };
        // index < 2^38 and body_start + the body length was checked not to
        // overflow at construction.
        (self.body_start + index * self.unit_len() as u64, len)
    }
}

/// The plaintext of the unit decrypted last, wiped when replaced or
/// dropped.
struct Cache {
    index: Option<u64>,
    len: usize,
    buf: Zeroizing<Box<[u8]>>,
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
/// The module documentation of `seek.rs` says what is authenticated when.
pub struct SeekablePayload<R> {
    source: Mutex<R>,
    cipher: ChunkCipher,
    verifier: Option<SegmentVerifier>,
    layout: Layout,
    cache: Mutex<Cache>,
    decrypted: AtomicU64,
    segments_verified: AtomicU64,
    length_verified: AtomicBool,
    pos: u64,
}

impl<R> std::fmt::Debug for SeekablePayload<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SeekablePayload")
            .field("chunk_count", &self.layout.chunk_count)
            .field("signed", &self.layout.signed)
            .field("chunks_decrypted", &self.chunks_decrypted())
            .field("length_verified", &self.is_length_verified())
            .field("position", &self.pos)
            .finish_non_exhaustive()
    }
}

impl<R: Read + Seek> SeekablePayload<R> {
    #[cfg_attr(not(feature = "hazmat"), allow(dead_code))] // used through `hazmat`
    /// Opens the unsigned payload of `payload_len` bytes (salt, commitment,
    /// chunks) that starts at offset `payload_start` of `source`: reads the
    /// salt and commitment and checks the commitment for `input_key` and
    /// `context`.
    ///
    /// Errors, in this order: a payload shorter than 56 bytes or
    /// a source that ends first ([`PayloadError::Truncated`]); a commitment
    /// mismatch ([`PayloadError::CommitmentMismatch`]); a length no payload
    /// can have ([`PayloadError::Truncated`]) or of 2^38 chunks or more
    /// ([`PayloadError::TooManyChunks`]). No chunk is read.
    pub fn new(
        mut source: R,
        payload_start: u64,
        payload_len: u64,
        input_key: &[u8; KEY_LEN],
        context: &[u8],
    ) -> Result<Self, StreamError> {
        if payload_start.checked_add(payload_len).is_none() {
            return Err(invalid_input("payload start and length overflow").into());
        }
        if payload_len < PAYLOAD_HEADER_LEN as u64 {
            return Err(PayloadError::Truncated.into());
        }
        let prefix = read_prefix(&mut source, payload_start)?;
        let cipher = ChunkCipher::for_decryption_with_prefix(input_key, context, &prefix)?;
        Self::open(source, payload_start, payload_len, cipher, None)
    }

    /// A payload whose commitment `cipher` was verified against; with a
    /// verifier, the body is in signed segments. Checks the length (SPEC.md
    /// section 6.6 step 2); reads nothing.
    pub(crate) fn open(
        source: R,
        payload_start: u64,
        payload_len: u64,
        cipher: ChunkCipher,
        verifier: Option<SegmentVerifier>,
    ) -> Result<Self, StreamError> {
        if payload_start.checked_add(payload_len).is_none() {
            return Err(invalid_input("payload start and length overflow").into());
        }
        let Some(body_len) = payload_len.checked_sub(PAYLOAD_HEADER_LEN as u64) else {
            return Err(PayloadError::Truncated.into());
        };
        let layout = Layout::new(
            payload_start + PAYLOAD_HEADER_LEN as u64,
            body_len,
            verifier.is_some(),
        )?;
        Ok(SeekablePayload {
            source: Mutex::new(source),
            cipher,
            verifier,
            layout,
            cache: Mutex::new(Cache {
                index: None,
                len: 0,
                buf: Zeroizing::new(Box::<[u8]>::default()),
            }),
            decrypted: AtomicU64::new(0),
            segments_verified: AtomicU64::new(0),
            length_verified: AtomicBool::new(false),
            pos: 0,
        })
    }

    /// Reads unit `index` into `buf` (at least one full unit long), once,
    /// verifies it and decrypts it there; returns the plaintext length,
    /// compacted at the start of `buf`.
    fn open_unit(&self, index: u64, buf: &mut [u8]) -> Result<usize, StreamError> {
        let (offset, len) = self.layout.location(index);
        let unit = &mut buf[..len];
        {
            let mut source = lock(&self.source);
            source.seek(SeekFrom::Start(offset))?;
            if read_full(&mut *source, unit)? < len {
                // The source is shorter than when the reader was made.
                return Err(PayloadError::Truncated.into());
            }
        }
        let is_final = index == self.layout.last();
        let plain = match &self.verifier {
            None => {
                self.decrypted.fetch_add(1, Ordering::Relaxed);
                self.cipher.open(index, unit)?.len()
            }
            Some(verifier) => {
                let mut pieces = Vec::with_capacity(SEGMENT_CHUNKS);
                let opened =
                    open_signed_segment(&self.cipher, verifier, index, unit, is_final, &mut pieces);
                if !matches!(opened, Err(StreamError::Signature(_))) {
                    self.segments_verified.fetch_add(1, Ordering::Relaxed);
                }
                // Chunks opened, and the one that failed to open.
                self.decrypted.fetch_add(
                    pieces.len() as u64 + u64::from(opened.is_err()),
                    Ordering::Relaxed,
                );
                opened?;
                // Compact the plaintext of the chunks to the start.
                let mut at = 0;
                for (start, n) in pieces {
                    buf.copy_within(start..start + n, at);
                    at += n;
                }
                at
            }
        };
        if is_final {
            self.length_verified.store(true, Ordering::Release);
        }
        Ok(plain)
    }

    /// Copies the plaintext of unit `index` from byte `within` into `out`,
    /// through the one-unit cache; returns the bytes copied.
    fn copy_from_unit(
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
        // Verify and decrypt outside the cache lock, so threads reading
        // different units work in parallel.
        let mut buf = Zeroizing::new(vec![0u8; self.layout.unit_len()].into_boxed_slice());
        let len = self.open_unit(index, &mut buf)?;
        let copied = copy_out(&buf[..len], within, out);
        *lock(&self.cache) = Cache {
            index: Some(index),
            len,
            buf,
        };
        Ok(copied)
    }

    /// Authenticates the plaintext length by opening the final unit (once;
    /// later calls return at once).
    pub fn verify_length(&self) -> io::Result<()> {
        if self.length_verified.load(Ordering::Acquire) {
            return Ok(());
        }
        self.copy_from_unit(self.layout.last(), 0, &mut [])?;
        Ok(())
    }

    /// The plaintext length, authenticated: opens the final unit first if
    /// that has not happened yet.
    pub fn plaintext_len(&self) -> io::Result<u64> {
        self.verify_length()?;
        Ok(self.layout.plaintext_len)
    }

    /// Fills `out` from plaintext offset `offset`, unit by unit; returns the
    /// bytes filled and the error that stopped it, if any (SPEC.md section
    /// 6.6 step 4: a read past the claimed end verifies the final unit
    /// first).
    fn fill_at(&self, offset: u64, out: &mut [u8]) -> (usize, Option<io::Error>) {
        if out.is_empty() {
            return (0, None);
        }
        let len = self.layout.plaintext_len;
        if offset.saturating_add(out.len() as u64) > len {
            // The read reaches past the end of the plaintext: authenticate it.
            if let Err(e) = self.verify_length() {
                return (0, Some(e));
            }
        }
        if offset >= len {
            return (0, None);
        }
        // Bounded by out.len(), so it fits in usize.
        let want = (len - offset).min(out.len() as u64) as usize;
        let unit = self.layout.unit_plaintext();
        let mut done = 0;
        while done < want {
            let pos = offset + done as u64;
            let index = pos / unit;
            // Below the unit's plaintext size, so it fits in usize.
            let within = (pos % unit) as usize;
            match self.copy_from_unit(index, within, &mut out[done..want]) {
                Ok(0) => {
                    // A unit that opened holds exactly the plaintext the
                    // layout gives it, so this cannot happen.
                    let e = io::Error::other("unit shorter than its layout");
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
    /// unit authenticated. Decrypts only the units the range touches. On
    /// error (a unit in the range that does not verify, reported as
    /// `InvalidData` carrying a [`PayloadError`] or a
    /// [`SignatureError`](crate::segment::SignatureError); or an I/O error),
    /// the contents of `buf` are unspecified.
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

/// Reads the 56-byte salt and commitment at `payload_start`.
pub(crate) fn read_prefix<R: Read + Seek>(
    source: &mut R,
    payload_start: u64,
) -> Result<[u8; PAYLOAD_HEADER_LEN], StreamError> {
    source.seek(SeekFrom::Start(payload_start))?;
    read_payload_prefix(source)
}

impl<R> SeekablePayload<R> {
    /// The plaintext length the payload length implies, not yet
    /// authenticated unless [`is_length_verified`](Self::is_length_verified).
    pub fn unverified_plaintext_len(&self) -> u64 {
        self.layout.plaintext_len
    }

    /// Whether the final chunk (or segment) has verified, which
    /// authenticates the length.
    pub fn is_length_verified(&self) -> bool {
        self.length_verified.load(Ordering::Acquire)
    }

    /// Chunks read and decrypted so far, through every path (cache hits do
    /// not count; chunks that failed do).
    pub fn chunks_decrypted(&self) -> u64 {
        self.decrypted.load(Ordering::Relaxed)
    }

    /// Segment signatures verified so far (0 for an unsigned payload; cache
    /// hits do not count).
    pub fn segments_verified(&self) -> u64 {
        self.segments_verified.load(Ordering::Relaxed)
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

/// `read` at `pos`: at most up to the end of one unit, so that a unit that
/// fails does not hide the plaintext of the units before it.
fn read_from<R: Read + Seek>(
    payload: &SeekablePayload<R>,
    pos: u64,
    out: &mut [u8],
) -> io::Result<usize> {
    let unit = payload.layout.unit_plaintext();
    // Below the unit's plaintext size, so it fits in usize.
    let to_unit_end = (unit - pos % unit) as usize;
    let n = out.len().min(to_unit_end);
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

/// An independent `Read + Seek` view of a seekable payload (see
/// [`SeekableReader::cursor`]).
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

/// A kapsel file opened for random access by [`Decryptor::decrypt_seekable`](crate::Decryptor::decrypt_seekable):
/// `Read + Seek` over the plaintext, [`read_at`](Self::read_at) from several
/// threads, and [`cursor`](Self::cursor) for independent views.
///
/// Nothing is decrypted before the key commitment matched; each read
/// decrypts exactly the chunks it touches (in a signed file, it verifies the
/// signature of each segment it touches first), and a corrupt chunk fails
/// exactly the reads that touch it. The length is authenticated only when
/// the final chunk verifies (`SeekFrom::End`, [`plaintext_len`](Self::plaintext_len)).
///
/// ```
/// use std::io::{Cursor, Seek, SeekFrom, Write};
/// use kapsel_codec::{Decryptor, Encryptor, Identity};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let alice = Identity::generate();
/// let mut writer = Encryptor::new([alice.to_recipient()])?.wrap_output(Vec::new())?;
/// writer.write_all(&[7u8; 100_000])?;
/// let file = writer.finish()?;
///
/// let mut reader = Decryptor::new(Cursor::new(file))?   // reads the header
///     .decrypt_seekable(std::slice::from_ref(&alice))?;  // unwraps the key, checks the commitment
/// let mut buf = [0u8; 10];
/// reader.read_exact_at(50_000, &mut buf)?;              // decrypts chunk 3 only
/// assert_eq!((buf, reader.chunks_decrypted()), ([7u8; 10], 1));
/// assert_eq!(reader.seek(SeekFrom::End(0))?, 100_000);  // opens the final chunk first
/// # Ok(())
/// # }
/// ```
pub struct SeekableReader<R> {
    payload: SeekablePayload<R>,
    header: Header,
    header_bytes: Vec<u8>,
}

impl<R> std::fmt::Debug for SeekableReader<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SeekableReader")
            .field("payload", &self.payload)
            .finish_non_exhaustive()
    }
}

impl<R> SeekableReader<R> {
    /// A file whose key commitment matched, over its payload.
    pub(crate) fn new(payload: SeekablePayload<R>, header: Header, header_bytes: Vec<u8>) -> Self {
        SeekableReader {
            payload,
            header,
            header_bytes,
        }
    }
}

impl<R: Read + Seek> SeekableReader<R> {
    /// Reads plaintext at `offset` into `buf` without a position (`&self`,
    /// several threads at once); returns how many bytes were read, 0 at the
    /// end. Decrypts exactly the chunks (or, signed, verifies the segments)
    /// the range touches.
    pub fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        self.payload.read_at(offset, buf)
    }

    /// [`read_at`](Self::read_at) until `buf` is full; an error at the end
    /// of the plaintext.
    pub fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.payload.read_exact_at(offset, buf)
    }

    /// The plaintext length, authenticated: opens the final chunk (or
    /// verifies the final segment) first.
    pub fn plaintext_len(&self) -> io::Result<u64> {
        self.payload.plaintext_len()
    }

    /// Checks that the file ends where its source ends, by opening the
    /// final chunk (or verifying the final segment).
    pub fn verify_length(&self) -> io::Result<()> {
        self.payload.verify_length()
    }

    /// An independent `Read + Seek` view sharing this reader's source.
    pub fn cursor(&self) -> PayloadCursor<'_, R> {
        self.payload.cursor()
    }
}

impl<R> SeekableReader<R> {
    /// The one contiguous range of source bytes (offsets into the whole
    /// file, header included) that [`read_at`](Self::read_at) of `len`
    /// bytes at plaintext `offset` reads: the chunks it touches (in a signed
    /// file, the whole segments, signatures included), and the final unit
    /// too when the range reaches past the end of the plaintext. `None` when
    /// `len` is 0, as such a read reads nothing.
    ///
    /// For readers whose source is remote: fetch this range in one request
    /// and serve the reader's source from it. It tells nothing secret (it
    /// follows from the file length alone), and a range that turns out
    /// wrong can only make a read fail, never return unverified plaintext.
    pub fn source_range(&self, offset: u64, len: u64) -> Option<std::ops::Range<u64>> {
        self.payload.layout.source_range(offset, len)
    }
}

impl<R> SeekableReader<R> {
    /// The parsed header, authenticated by the key commitment (and, for a
    /// signed file, by every segment signature that verified).
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The header's bytes as received.
    pub fn header_bytes(&self) -> &[u8] {
        &self.header_bytes
    }

    /// The sender the header claims (see [`ClaimedSender`]).
    pub fn claimed_sender(&self) -> Option<ClaimedSender> {
        claimed_sender(&self.header)
    }

    /// The sender whose signature covers every plaintext byte this reader
    /// returned: `Some` once a segment of a signed file verified; `None`
    /// before, and for an anonymous file.
    pub fn verified_sender(&self) -> Option<Recipient> {
        let verifier = self.payload.verifier.as_ref()?;
        (self.payload.segments_verified() > 0)
            .then(|| Recipient::from_public_key(*verifier.sender()))
    }

    /// Whether the file is signed (read in segments).
    pub fn is_signed(&self) -> bool {
        self.payload.verifier.is_some()
    }

    hazmat_fn! {
        /// The payload layer, for its counters and accessors.
        fn payload(&self) -> &SeekablePayload<R> {
            &self.payload
        }
    }

    /// The plaintext length the source length implies, **not yet
    /// authenticated** (see [`plaintext_len`](Self::plaintext_len)).
    pub fn unverified_plaintext_len(&self) -> u64 {
        self.payload.unverified_plaintext_len()
    }

    /// Whether the final chunk (or segment) verified, which authenticates
    /// the length ([`plaintext_len`](Self::plaintext_len) makes it so).
    pub fn is_length_verified(&self) -> bool {
        self.payload.is_length_verified()
    }

    /// How many chunks were decrypted so far (over all reads).
    pub fn chunks_decrypted(&self) -> u64 {
        self.payload.chunks_decrypted()
    }

    /// How many segment signatures were verified so far (0 for an anonymous file).
    pub fn segments_verified(&self) -> u64 {
        self.payload.segments_verified()
    }

    /// The number of chunks, the final one included.
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
