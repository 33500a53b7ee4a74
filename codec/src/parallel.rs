//! The parallel payload path: the same Cobblestone-256 chunks as
//! [`PayloadWriter`](crate::payload::PayloadWriter) and
//! [`PayloadReader`](crate::payload::PayloadReader), sealed and opened in
//! batches on a rayon pool, with reading and writing overlapped with the
//! cryptography.
//!
//! ```text
//! caller thread         rayon pool (threads)          writer thread
//! read batch k+2   ->   seal/open batch k+1      ->   write batch k (in order)
//!       ^               (one worker per batch)              |
//!       +---------------- free batch buffers ---------------+
//! ```
//!
//! A batch is sealed or opened whole by one worker, chunk after chunk, so
//! the pool's threads work on different batches. Why this shape, and what
//! it measured against the alternatives, is in `BENCHMARKING.md`.
//!
//! Invariants:
//! - All cryptography goes through the stateless [`ChunkCipher::seal`] and
//!   [`ChunkCipher::open`]; chunk `i` is always sealed or opened with index
//!   `i`, so [`encrypt_payload`] writes exactly the bytes the sequential
//!   `PayloadWriter` writes for the same cipher and plaintext, at any thread
//!   count and batch size.
//! - Chunk boundaries are those of SPEC.md section 6.3: the input is read
//!   until a batch is full or the input ends (a read returning 0), never past
//!   the first end of input; plaintext byte `p` of a batch always lands in
//!   chunk `p / CHUNK_SIZE`, however the reads were cut, and ciphertext
//!   pieces are cut at 16400-byte boundaries from the first chunk.
//! - Live inputs: a caller may pass an [`InputReady`] probe. When a read
//!   comes back short and the probe says no more bytes are waiting, the
//!   batch ends early at the last whole unit read (a chunk, or a signed
//!   segment) and the bytes past it are carried into the next batch; the
//!   batch is written and the writer flushed. The unit boundaries, and so
//!   the bytes written, are exactly those without a probe: a pause changes
//!   when bytes leave, never which bytes. Without a probe, or with one that
//!   always says "ready", batches are filled as before.
//! - [`decrypt_payload`] writes the plaintext of chunk `i` only after chunks
//!   `0..=i` all verified, in order. At the first chunk that does not open (or
//!   a truncation, or a read error) it writes nothing more and returns that
//!   failure; chunks after it may have been decrypted in memory but are never
//!   written. The cipher is consumed, so a failed decryption cannot be
//!   resumed.
//! - Memory is bounded: at most [`WINDOW`] batches of [`BATCH_CHUNKS`] chunks
//!   exist at once, whatever the input size, and buffers are recycled
//!   (about 8 MiB). Both directions work in place in one buffer per batch
//!   laid out as the ciphertext: encryption reads the plaintext of chunk `i`
//!   straight into its slot with vectored reads (`Read::read_vectored`; a
//!   reader without them is read one 16 KiB chunk per call), seals it there
//!   and appends the tag; decryption reads ciphertext and opens it in place.
//! - Batch buffers start on a page boundary (see `AlignedBuf`).
//! - Inputs shorter than [`SEQUENTIAL_BELOW`] bytes, and `threads == 1`, take
//!   a sequential path on the calling thread that starts no thread.
//! - The reader stays on the calling thread (it need not be `Send`); the
//!   writer moves to a scoped writer thread (it must be `Send`).
//!
//! Errors: a [`CopyError::Input`] carries read errors and payload failures;
//! the latter are a [`PayloadError`] inside the `io::Error`, exactly as
//! `PayloadReader::read` reports them, so
//! [`Outcome::of_io`](crate::Outcome::of_io) classifies both paths
//! alike. A [`CopyError::Output`] is a write error.

use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::sync::mpsc;
use zeroize::Zeroizing;

use crate::aead::TAG_LEN;
use crate::identity::IdentityError;
use crate::payload::{
    open_signed_segment, ChunkCipher, PayloadError, StreamError, CHUNK_SIZE, ENCRYPTED_CHUNK_SIZE,
};
use crate::segment::{
    SegmentSigner, SegmentVerifier, SignatureError, FULL_SEGMENT_LEN, SEGMENT_CHUNKS, SIGNATURE_LEN,
};

/// Chunks per batch: 128 chunks is 2 MiB of plaintext. Every read and write
/// is one large system call on files, and a reader behind a `BufReader` of
/// up to 1 MiB is read around its buffer from the first batch on (a request
/// of at least its capacity, on an empty buffer, bypasses it), where 1 MiB
/// batches fall into copying through it. The whole window stays within a
/// 32 MiB last-level cache.
pub const BATCH_CHUNKS: usize = 128;
/// Batches in flight at once (being read, sealed or opened, and written).
pub const WINDOW: usize = 4;
/// Inputs shorter than this many bytes are processed on the calling thread
/// without starting any thread.
pub const SEQUENTIAL_BELOW: usize = 16 * CHUNK_SIZE;

/// Why a parallel encryption or decryption stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CopyError {
    /// Reading failed, or the payload is invalid (the typed error is inside
    /// the `io::Error`: [`DecryptError::from_io`](crate::DecryptError::from_io)
    /// recovers it).
    #[error(transparent)]
    Input(io::Error),
    /// Writing failed.
    #[error(transparent)]
    Output(io::Error),
    /// The release gate refused before any plaintext was written (see
    /// [`ReleaseGate`]).
    #[error(transparent)]
    Refused(io::Error),
    /// The sender's key (a token) failed to sign, or signed wrongly; the
    /// output holds only the segments signed before it.
    #[error("cannot sign: {0}")]
    Signer(IdentityError),
}

impl From<CopyError> for io::Error {
    fn from(e: CopyError) -> Self {
        match e {
            CopyError::Input(e) | CopyError::Output(e) | CopyError::Refused(e) => e,
            CopyError::Signer(e) => e.into(),
        }
    }
}

fn payload_failure(e: PayloadError) -> CopyError {
    CopyError::Input(StreamError::Payload(e).into())
}

/// The number of worker threads `threads == 0` means: all cores.
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}

/// How a batch's input ended.
#[derive(Debug)]
enum End {
    /// The batch is full; more input may follow.
    More,
    /// The input paused (see [`InputReady`]) after the batch's last
    /// complete unit (chunk, or segment of a signed file); the batch holds
    /// whole units only, and is released and flushed at once.
    Stalled,
    /// The input ended (a read returned 0) inside this batch.
    Eof,
    /// A read failed after the bytes in the batch.
    Failed(io::Error),
}

/// Whether a live input has more bytes now; it may wait briefly (a few
/// milliseconds) for them. The parallel codec asks after a read that left
/// its batch short, once the batch holds at least one complete chunk (or
/// segment of a signed file); `false` releases the complete units at once
/// instead of waiting for a full batch or the end of input. The answer only
/// decides where batches end: the output is the same bytes either way.
pub type InputReady<'a> = dyn FnMut() -> bool + 'a;

/// The codec's view of its input: bytes put back by a batch that ended in
/// a pause (`carry`, read first), then the reader, with the pause probe.
struct Input<'p, 'q, R> {
    inner: R,
    /// Plaintext when encrypting: wiped on drop.
    carry: Zeroizing<Vec<u8>>,
    carry_at: usize,
    ready: Option<&'p mut InputReady<'q>>,
}

impl<'p, 'q, R: Read> Input<'p, 'q, R> {
    fn new(inner: R, ready: Option<&'p mut InputReady<'q>>) -> Self {
        Input {
            inner,
            carry: Zeroizing::new(Vec::new()),
            carry_at: 0,
            ready,
        }
    }

    /// Whether the input paused: nothing is put back and the probe says no
    /// more bytes are there. Without a probe, never.
    fn stalled(&mut self) -> bool {
        self.carry_at >= self.carry.len() && self.ready.as_mut().is_some_and(|ready| !ready())
    }

    /// Puts bytes back to be read again before the reader (they were read
    /// after a batch's last complete unit). Only called with nothing put
    /// back before, right after a pause or the head.
    fn unread<'b>(&mut self, pieces: impl IntoIterator<Item = &'b [u8]>) {
        debug_assert!(self.carry_at >= self.carry.len());
        self.carry.clear();
        self.carry_at = 0;
        for piece in pieces {
            self.carry.extend_from_slice(piece);
        }
    }

    fn carried(&self) -> &[u8] {
        &self.carry[self.carry_at..]
    }
}

impl<R: Read> Read for Input<'_, '_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.carried().is_empty() {
            return self.inner.read(buf);
        }
        let n = self.carried().len().min(buf.len());
        buf[..n].copy_from_slice(&self.carried()[..n]);
        self.carry_at += n;
        Ok(n)
    }

    fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        if self.carried().is_empty() {
            return self.inner.read_vectored(bufs);
        }
        let mut n = 0;
        for buf in bufs.iter_mut() {
            let take = self.carried().len().min(buf.len());
            buf[..take].copy_from_slice(&self.carried()[..take]);
            self.carry_at += take;
            n += take;
            if self.carried().is_empty() {
                break;
            }
        }
        Ok(n)
    }
}

/// Reads until `buf` is full, the input ends, a read fails, or (with at
/// least `unit` bytes read) the input pauses; unlike `read_full`, keeps the
/// count of bytes read before a failure.
fn fill<R: Read>(input: &mut Input<'_, '_, R>, buf: &mut [u8], unit: usize) -> (usize, End) {
    let mut filled = 0;
    while filled < buf.len() {
        match input.read(&mut buf[filled..]) {
            Ok(0) => return (filled, End::Eof),
            // A reader claiming more than it was given is broken; treat it as
            // a failed read rather than index out of bounds.
            Ok(n) if n > buf.len() - filled => {
                return (
                    filled,
                    End::Failed(io::Error::other("reader returned more bytes than asked")),
                )
            }
            Ok(n) => {
                filled += n;
                if filled < buf.len() && filled >= unit && input.stalled() {
                    return (filled, End::Stalled);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return (filled, End::Failed(e)),
        }
    }
    (filled, full_end(input))
}

/// How a read that filled its whole buffer ended: a pause too, when the
/// input paused right at the buffer's end (a producer that writes exactly a
/// batch, say 2 MiB, and waits), so the batch is flushed now rather than
/// after the next input arrives.
fn full_end<R: Read>(input: &mut Input<'_, '_, R>) -> End {
    if input.stalled() {
        End::Stalled
    } else {
        End::More
    }
}

/// Reads up to `limit` bytes, as [`fill`] does, into a new vector.
fn read_head<R: Read>(
    input: &mut Input<'_, '_, R>,
    limit: usize,
    unit: usize,
) -> (Zeroizing<Vec<u8>>, End) {
    let mut head = Zeroizing::new(vec![0u8; limit]);
    let (len, end) = fill(input, &mut head, unit);
    head.truncate(len);
    (head, end)
}

/// [`fill`] over several buffers with vectored reads: reads until every
/// buffer is full, the input ends, a read fails, or (with at least `unit`
/// bytes read) the input pauses, and returns the bytes read, which fill the
/// buffers in order (a short read never leaves a gap). A reader without
/// vectored reads fills one buffer per call.
fn fill_vectored<R: Read>(
    input: &mut Input<'_, '_, R>,
    mut bufs: &mut [IoSliceMut<'_>],
    unit: usize,
) -> (usize, End) {
    let mut remaining: usize = bufs.iter().map(|b| b.len()).sum();
    let mut filled = 0;
    // Skip leading empty buffers: a read into only empty ones returns 0,
    // which would look like the end of input.
    IoSliceMut::advance_slices(&mut bufs, 0);
    while remaining > 0 {
        match input.read_vectored(bufs) {
            Ok(0) => return (filled, End::Eof),
            Ok(n) if n > remaining => {
                return (
                    filled,
                    End::Failed(io::Error::other("reader returned more bytes than asked")),
                )
            }
            Ok(n) => {
                filled += n;
                remaining -= n;
                IoSliceMut::advance_slices(&mut bufs, n);
                if remaining > 0 && filled >= unit && input.stalled() {
                    return (filled, End::Stalled);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return (filled, End::Failed(e)),
        }
    }
    (filled, full_end(input))
}

/// Writes every slice, in order, with vectored writes where the writer
/// supports them (a writer that does not writes one slice per call).
pub(crate) fn write_all_slices<W: Write + ?Sized>(
    w: &mut W,
    mut slices: &mut [IoSlice<'_>],
) -> io::Result<()> {
    let mut remaining: usize = slices.iter().map(|s| s.len()).sum();
    IoSlice::advance_slices(&mut slices, 0);
    while remaining > 0 {
        match w.write_vectored(slices) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::WriteZero,
                    "failed to write whole buffer",
                ))
            }
            Ok(n) if n > remaining => {
                return Err(io::Error::other("writer reported more bytes than given"))
            }
            Ok(n) => {
                remaining -= n;
                IoSlice::advance_slices(&mut slices, n);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Alignment of batch buffers.
const PAGE: usize = 4096;

/// A zeroed byte buffer that starts on a page boundary, wiped on drop (it
/// holds a batch of plaintext).
///
/// The kernel copies file data to and from user memory with `rep movsb`,
/// which on some CPUs (AMD Zen among them) runs several times slower when
/// the destination lies a few bytes past the source modulo 4096, as it does
/// between page-aligned file data and an allocator's 16-byte-aligned block.
#[derive(Debug)]
struct AlignedBuf {
    storage: Zeroizing<Vec<u8>>,
    start: usize,
    len: usize,
}

impl AlignedBuf {
    fn new(len: usize) -> Self {
        let storage = Zeroizing::new(vec![0u8; len + PAGE]);
        // `align_offset` may decline to compute (it never does for bytes);
        // the buffer then works unaligned.
        let start = match storage.as_ptr().align_offset(PAGE) {
            s if s < PAGE => s,
            _ => 0,
        };
        AlignedBuf {
            storage,
            start,
            len,
        }
    }

    /// Wraps a buffer as it is (for short inputs, whose copies are cheap).
    fn from_vec(storage: Zeroizing<Vec<u8>>) -> Self {
        AlignedBuf {
            len: storage.len(),
            storage,
            start: 0,
        }
    }
}

impl std::ops::Deref for AlignedBuf {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.storage[self.start..self.start + self.len]
    }
}

impl std::ops::DerefMut for AlignedBuf {
    fn deref_mut(&mut self) -> &mut [u8] {
        &mut self.storage[self.start..self.start + self.len]
    }
}

// ---------------------------------------------------------------------------
// Layout of a batch

/// Where the chunks of a batch lie in its buffer, which is laid out exactly
/// as the file: chunk after chunk, and in a signed file a signature after
/// every [`SEGMENT_CHUNKS`] chunks. Batches start on a unit boundary, so
/// the body's own unit arithmetic applies.
use crate::segment::BodyUnits as Layout;

// ---------------------------------------------------------------------------
// Encryption

/// One batch of the encryptor, in one buffer laid out as its output (see
/// [`Layout`]). The plaintext is read straight into the chunk bodies with
/// vectored reads and sealed in place, so no plaintext copy exists; in a
/// signed file each segment's signature is written into its place after
/// its chunks.
#[derive(Debug)]
struct SealJob {
    /// Index of the batch's first chunk.
    first_index: u64,
    layout: Layout,
    /// Room for `BATCH_CHUNKS` (or fewer) chunks and their signatures.
    buf: AlignedBuf,
    /// Plaintext bytes read; a multiple of `CHUNK_SIZE` unless `end` is `Eof`.
    len: usize,
    end: End,
    /// Bytes of `buf` to write once sealed.
    sealed_len: usize,
    /// Why sealing stopped inside this batch: a chunk past the 2^38 limit,
    /// or a signing key (a token) that failed.
    failure: Option<SealFailure>,
}

/// Why a [`SealJob`] could not seal all of its chunks.
#[derive(Debug)]
enum SealFailure {
    Payload(PayloadError),
    Signer(IdentityError),
}

impl SealJob {
    fn new(chunks: usize, layout: Layout) -> Self {
        SealJob {
            first_index: 0,
            layout,
            buf: AlignedBuf::new(layout.capacity(chunks)),
            len: 0,
            end: End::More,
            sealed_len: 0,
            failure: None,
        }
    }

    /// Chunk slots the buffer holds.
    fn slots(&self) -> usize {
        if self.layout.signed {
            self.buf.len() / FULL_SEGMENT_LEN * SEGMENT_CHUNKS
        } else {
            self.buf.len() / ENCRYPTED_CHUNK_SIZE
        }
    }

    /// Fills the chunk bodies from `input`; returns whether more may follow.
    /// After a pause the batch keeps its complete units and puts the rest
    /// back into `input`.
    fn read<R: Read>(&mut self, input: &mut Input<'_, '_, R>, first_index: u64) -> bool {
        let layout = self.layout;
        let slots = self.slots();
        let mut rest: &mut [u8] = &mut self.buf;
        let mut bodies: Vec<IoSliceMut<'_>> = Vec::with_capacity(slots);
        let mut at = 0;
        for k in 0..slots {
            let offset = layout.chunk_offset(k);
            let (_, tail) = std::mem::take(&mut rest).split_at_mut(offset - at);
            let (body, after) = tail.split_at_mut(CHUNK_SIZE);
            bodies.push(IoSliceMut::new(body));
            rest = after;
            at = offset + CHUNK_SIZE;
        }
        let (mut len, end) = fill_vectored(input, &mut bodies, layout.plaintext_unit());
        if matches!(end, End::Stalled) {
            let keep = len / layout.plaintext_unit() * layout.plaintext_unit();
            let buf = &self.buf;
            input.unread((keep..len).step_by(CHUNK_SIZE).map(|at| {
                let offset = layout.chunk_offset(at / CHUNK_SIZE);
                &buf[offset..offset + (len - at).min(CHUNK_SIZE)]
            }));
            len = keep;
        }
        self.first_index = first_index;
        self.len = len;
        self.end = end;
        matches!(self.end, End::More | End::Stalled)
    }

    /// Chunks this batch produces: every full chunk, and at the end of input
    /// the final short (possibly empty) one. After a read failure nothing is
    /// sealed: the failure is reported once the earlier batches are written.
    fn chunk_count(&self) -> usize {
        match self.end {
            End::More | End::Stalled => self.len / CHUNK_SIZE,
            End::Eof => self.len / CHUNK_SIZE + 1,
            End::Failed(_) => 0,
        }
    }

    /// Seals every chunk of the batch in place, in order, on the current
    /// thread, then signs each segment it completes.
    fn seal(&mut self, cipher: &ChunkCipher, signer: Option<&SegmentSigner>) {
        let chunks = self.chunk_count();
        let is_eof = matches!(self.end, End::Eof);
        let mut end_of_chunk = vec![0usize; chunks];
        self.failure = None;
        for (k, end) in end_of_chunk.iter_mut().enumerate() {
            let offset = self.layout.chunk_offset(k);
            let body = (self.len - k * CHUNK_SIZE).min(CHUNK_SIZE);
            let slot = &mut self.buf[offset..offset + body + TAG_LEN];
            let (body, tag) = slot.split_at_mut(body);
            match cipher.seal(self.first_index + k as u64, body) {
                Ok(t) => tag.copy_from_slice(&t),
                Err(e) => {
                    // Write only what precedes the failing chunk's segment
                    // (a signed file) or the failing chunk.
                    let keep = if self.layout.signed {
                        (k / SEGMENT_CHUNKS) * SEGMENT_CHUNKS
                    } else {
                        k
                    };
                    self.sealed_len = self.layout.chunk_offset(keep);
                    self.failure = Some(SealFailure::Payload(e));
                    return;
                }
            }
            *end = offset + body.len() + TAG_LEN;
        }
        let Some(signer) = signer else {
            self.sealed_len = end_of_chunk.last().copied().unwrap_or(0);
            return;
        };
        // Sign every segment whose last chunk is in this batch: a full one,
        // or at the end of input the final one.
        self.sealed_len = 0;
        let first_segment = self.first_index / SEGMENT_CHUNKS as u64;
        for (s, group) in end_of_chunk.chunks(SEGMENT_CHUNKS).enumerate() {
            let is_final = is_eof && (s + 1) * SEGMENT_CHUNKS >= chunks;
            if group.len() < SEGMENT_CHUNKS && !is_final {
                break;
            }
            let start = s * FULL_SEGMENT_LEN;
            let end = group.last().copied().unwrap_or(start);
            match signer.sign(first_segment + s as u64, is_final, &self.buf[start..end]) {
                Ok(signature) => self.buf[end..end + SIGNATURE_LEN].copy_from_slice(&signature),
                Err(e) => {
                    // Only the segments signed so far go out.
                    self.failure = Some(SealFailure::Signer(e));
                    return;
                }
            }
            self.sealed_len = end + SIGNATURE_LEN;
        }
    }

    /// Writes the sealed chunks; returns whether more batches follow.
    fn write<W: Write + ?Sized>(&mut self, writer: &mut W) -> Result<bool, CopyError> {
        writer
            .write_all(&self.buf[..self.sealed_len])
            .map_err(CopyError::Output)?;
        match self.failure.take() {
            Some(SealFailure::Payload(e)) => return Err(payload_failure(e)),
            Some(SealFailure::Signer(e)) => return Err(CopyError::Signer(e)),
            None => {}
        }
        match std::mem::replace(&mut self.end, End::More) {
            End::More => Ok(true),
            // A live input paused: what is sealed goes out now.
            End::Stalled => writer.flush().map(|()| true).map_err(CopyError::Output),
            End::Eof => Ok(false),
            End::Failed(e) => Err(CopyError::Input(e)),
        }
    }
}

#[cfg_attr(not(feature = "hazmat"), allow(dead_code))] // used through `hazmat`
/// Encrypts everything `reader` yields as the chunks of an unsigned
/// payload whose 56-byte prefix (salt and commitment) was already written to
/// `writer`, then flushes `writer` and returns it.
///
/// The output is byte-identical to writing the same plaintext through
/// [`PayloadWriter::from_parts`](crate::payload::PayloadWriter::from_parts)
/// with the same cipher. `threads` is the number of worker threads (0: all
/// cores; 1: sequential, no thread started).
pub fn encrypt_payload<R: Read, W: Write + Send>(
    reader: R,
    writer: W,
    cipher: ChunkCipher,
    threads: usize,
) -> Result<W, CopyError> {
    encrypt_body(reader, writer, &cipher, None, threads, None)
}

/// [`encrypt_payload`] for an unsigned or (with `signer`) signed body; with
/// `ready`, a pause in the input releases the complete chunks (segments)
/// read so far.
pub(crate) fn encrypt_body<R: Read, W: Write + Send>(
    reader: R,
    mut writer: W,
    cipher: &ChunkCipher,
    signer: Option<&SegmentSigner>,
    threads: usize,
    ready: Option<&mut InputReady<'_>>,
) -> Result<W, CopyError> {
    let layout = Layout::new(signer.is_some());
    let mut input = Input::new(reader, ready);
    // Read the start of the input first: a short input goes the sequential
    // way without allocating batch buffers or starting threads.
    let (head, head_end) = read_head(&mut input, SEQUENTIAL_BELOW, layout.plaintext_unit());
    if matches!(head_end, End::Eof | End::Failed(_)) {
        let mut job = SealJob::new(head.len() / CHUNK_SIZE + 1, layout);
        // Reading from memory cannot fail; the head's own end is kept.
        job.read(&mut Input::new(&head[..], None), 0);
        job.end = head_end;
        job.seal(cipher, signer);
        job.write(&mut writer)?;
        writer.flush().map_err(CopyError::Output)?;
        return Ok(writer);
    }
    // The head is read again, from memory, as the start of the first batch.
    input.unread([&head[..]]);
    let mut next_index = 0u64;
    run_batches(
        threads,
        "kapsel-seal",
        || SealJob::new(BATCH_CHUNKS, layout),
        |job: &mut SealJob| {
            let more = job.read(&mut input, next_index);
            next_index += (job.len / CHUNK_SIZE) as u64;
            more
        },
        |job: &mut SealJob| job.seal(cipher, signer),
        |job: &mut SealJob| job.write(&mut writer),
    )?;
    writer.flush().map_err(CopyError::Output)?;
    Ok(writer)
}

// ---------------------------------------------------------------------------
// Decryption

/// What follows the verified chunks of a decryption batch.
#[derive(Debug)]
enum Stop {
    /// Nothing: the next batch continues the payload.
    Continue,
    /// The final chunk opened: the payload is complete.
    Done,
    /// The payload failed here.
    Payload(PayloadError),
    /// A segment signature failed here.
    Signature(SignatureError),
    /// Reading failed here.
    Io(io::Error),
}

/// One batch of the decryptor, laid out as the file (see [`Layout`]) and
/// opened in place.
#[derive(Debug)]
struct OpenJob {
    first_index: u64,
    layout: Layout,
    buf: AlignedBuf,
    len: usize,
    end: End,
    /// Plaintext ranges of `buf` that verified, in order; only they may be
    /// released.
    released: Vec<(usize, usize)>,
    stop: Stop,
    /// The input paused after this batch: flush the output once it is written.
    flush: bool,
}

impl OpenJob {
    fn new(chunks: usize, layout: Layout) -> Self {
        OpenJob {
            first_index: 0,
            layout,
            buf: AlignedBuf::new(layout.capacity(chunks)),
            len: 0,
            end: End::More,
            released: Vec::with_capacity(chunks),
            stop: Stop::Continue,
            flush: false,
        }
    }

    /// Fills the batch from `input`; returns whether more may follow. After
    /// a pause the batch keeps its complete units and puts the rest back.
    fn read<R: Read>(&mut self, input: &mut Input<'_, '_, R>, first_index: u64) -> bool {
        let unit = self.layout.ciphertext_unit();
        let (mut len, end) = fill(input, &mut self.buf, unit);
        if matches!(end, End::Stalled) {
            let keep = len / unit * unit;
            input.unread([&self.buf[keep..len]]);
            len = keep;
        }
        self.first_index = first_index;
        self.len = len;
        self.end = end;
        matches!(self.end, End::More | End::Stalled)
    }

    /// Chunks the input of this batch holds (for the next batch's index).
    fn chunks_read(&self) -> u64 {
        let units = if self.layout.signed {
            self.len / FULL_SEGMENT_LEN * SEGMENT_CHUNKS
        } else {
            self.len / ENCRYPTED_CHUNK_SIZE
        };
        units as u64
    }

    /// Opens the batch, in order, on the current thread, up to the first
    /// failure; records the plaintext that verified and what stops the
    /// payload after it.
    fn open(&mut self, cipher: &ChunkCipher, verifier: Option<&SegmentVerifier>) {
        self.released.clear();
        let end = std::mem::replace(&mut self.end, End::More);
        let at_eof = matches!(end, End::Eof);
        self.flush = matches!(end, End::Stalled);
        let failure = match verifier {
            None => self.open_chunks(cipher, at_eof),
            Some(v) => self.open_segments(cipher, v, at_eof),
        };
        self.stop = match (failure, end) {
            (Some(stop), _) => stop,
            (None, End::More | End::Stalled) => Stop::Continue,
            (None, End::Eof) => Stop::Done,
            (None, End::Failed(e)) => Stop::Io(e),
        };
    }

    /// An anonymous body: full pieces, and at the end of input the final
    /// short piece, which must hold a tag.
    fn open_chunks(&mut self, cipher: &ChunkCipher, at_eof: bool) -> Option<Stop> {
        let full = self.len / ENCRYPTED_CHUNK_SIZE;
        let rem = self.len % ENCRYPTED_CHUNK_SIZE;
        let pieces = full + usize::from(at_eof);
        for k in 0..pieces {
            let start = k * ENCRYPTED_CHUNK_SIZE;
            let len = if k < full { ENCRYPTED_CHUNK_SIZE } else { rem };
            if len < TAG_LEN {
                return Some(Stop::Payload(PayloadError::Truncated));
            }
            match cipher.open(
                self.first_index + k as u64,
                &mut self.buf[start..start + len],
            ) {
                Ok(plain) => self.released.push((start, plain.len())),
                Err(e) => return Some(Stop::Payload(e)),
            }
        }
        None
    }

    /// A signed body: full segments, and at the end of input the final one;
    /// each segment's signature is verified before its chunks are opened.
    fn open_segments(
        &mut self,
        cipher: &ChunkCipher,
        verifier: &SegmentVerifier,
        at_eof: bool,
    ) -> Option<Stop> {
        let full = self.len / FULL_SEGMENT_LEN;
        let segments = full + usize::from(at_eof);
        let first_segment = self.first_index / SEGMENT_CHUNKS as u64;
        let mut pieces = Vec::with_capacity(SEGMENT_CHUNKS);
        for s in 0..segments {
            let start = s * FULL_SEGMENT_LEN;
            let len = (self.len - start).min(FULL_SEGMENT_LEN);
            let is_final = s == full;
            let unit = &mut self.buf[start..start + len];
            let index = first_segment + s as u64;
            match open_signed_segment(cipher, verifier, index, unit, is_final, &mut pieces) {
                Ok(()) => {}
                Err(StreamError::Signature(e)) => return Some(Stop::Signature(e)),
                Err(StreamError::Payload(e)) => return Some(Stop::Payload(e)),
                Err(StreamError::Io(_)) => unreachable!("opening in memory does no I/O"),
            }
            self.released
                .extend(pieces.iter().map(|&(at, n)| (start + at, n)));
        }
        None
    }

    /// Plaintext bytes that verified.
    fn released_bytes(&self) -> u64 {
        self.released.iter().map(|&(_, n)| n as u64).sum()
    }

    /// Writes the verified plaintext; returns whether more batches follow.
    fn write<W: Write + ?Sized>(&mut self, writer: &mut W) -> Result<bool, CopyError> {
        let mut slices: Vec<IoSlice<'_>> = self
            .released
            .iter()
            .map(|&(at, n)| IoSlice::new(&self.buf[at..at + n]))
            .collect();
        write_all_slices(writer, &mut slices).map_err(CopyError::Output)?;
        if std::mem::take(&mut self.flush) {
            // A live input paused: what verified goes out now.
            writer.flush().map_err(CopyError::Output)?;
        }
        match std::mem::replace(&mut self.stop, Stop::Continue) {
            Stop::Continue => Ok(true),
            Stop::Done => Ok(false),
            Stop::Payload(e) => Err(payload_failure(e)),
            Stop::Signature(e) => Err(CopyError::Input(e.into())),
            Stop::Io(e) => Err(CopyError::Input(e)),
        }
    }

    /// Whether releasing this batch's output needs the release gate to have
    /// passed: it has plaintext that verified, or it completes the payload.
    fn releases_anything(&self) -> bool {
        !self.released.is_empty() || matches!(self.stop, Stop::Done)
    }
}
#[cfg_attr(not(feature = "hazmat"), allow(dead_code))] // used through `hazmat`
/// Decrypts the chunks `reader` yields (an unsigned payload after its salt
/// and commitment, whose commitment `cipher` was verified against) and
/// writes the verified plaintext to `writer`, then flushes it; returns the
/// number of plaintext bytes written.
///
/// On success the output equals what
/// [`PayloadReader::from_parts`](crate::payload::PayloadReader::from_parts)
/// yields. On failure, `writer` has received exactly the plaintext of the
/// chunks before the first one that failed, in order, and the error is the
/// one the sequential reader reports. `threads` is the number of worker
/// threads (0: all cores; 1: sequential, no thread started).
pub fn decrypt_payload<R: Read, W: Write + Send>(
    reader: R,
    writer: W,
    cipher: ChunkCipher,
    threads: usize,
) -> Result<u64, CopyError> {
    decrypt_body(reader, writer, &cipher, None, threads, &mut || Ok(()), None)
}

/// Called once, on the writer thread, just before the first plaintext of a
/// decryption is written (or before success, for an empty plaintext): after
/// the first chunk (unsigned) or the first segment (signed) verified. An
/// error stops the decryption with [`CopyError::Refused`] before any
/// plaintext is written.
pub type ReleaseGate<'a> = dyn FnMut() -> io::Result<()> + Send + 'a;

/// [`decrypt_payload`] for an unsigned or (with `verifier`) signed body, with
/// a release gate; with `ready`, a pause in the input releases the complete
/// chunks (segments) that verified so far.
pub(crate) fn decrypt_body<R: Read, W: Write + Send>(
    reader: R,
    mut writer: W,
    cipher: &ChunkCipher,
    verifier: Option<&SegmentVerifier>,
    threads: usize,
    gate: &mut ReleaseGate<'_>,
    ready: Option<&mut InputReady<'_>>,
) -> Result<u64, CopyError> {
    let layout = Layout::new(verifier.is_some());
    let mut input = Input::new(reader, ready);
    let mut gate_passed = false;
    let mut release = |job: &mut OpenJob, writer: &mut W| -> Result<bool, CopyError> {
        if !gate_passed && job.releases_anything() {
            gate().map_err(CopyError::Refused)?;
            gate_passed = true;
        }
        job.write(writer)
    };
    // As for encryption: the same number of chunks, as ciphertext.
    let head_limit = SEQUENTIAL_BELOW / CHUNK_SIZE * ENCRYPTED_CHUNK_SIZE;
    let (head, head_end) = read_head(&mut input, head_limit, layout.ciphertext_unit());
    if matches!(head_end, End::Eof | End::Failed(_)) {
        let mut job = OpenJob {
            first_index: 0,
            layout,
            len: head.len(),
            buf: AlignedBuf::from_vec(head),
            end: head_end,
            released: Vec::new(),
            stop: Stop::Continue,
            flush: false,
        };
        job.open(cipher, verifier);
        let released = job.released_bytes();
        release(&mut job, &mut writer)?;
        writer.flush().map_err(CopyError::Output)?;
        return Ok(released);
    }
    input.unread([&head[..]]);
    let mut next_index = 0u64;
    let mut written = 0u64;
    run_batches(
        threads,
        "kapsel-open",
        || OpenJob::new(BATCH_CHUNKS, layout),
        |job: &mut OpenJob| {
            let more = job.read(&mut input, next_index);
            next_index += job.chunks_read();
            more
        },
        |job: &mut OpenJob| job.open(cipher, verifier),
        |job: &mut OpenJob| {
            let released = job.released_bytes();
            let more = release(job, &mut writer)?;
            written += released;
            Ok(more)
        },
    )?;
    writer.flush().map_err(CopyError::Output)?;
    Ok(written)
}

// ---------------------------------------------------------------------------
// Drivers

/// Runs the batches on a pool of `threads` workers (0: all cores) named
/// `name-N`, through [`pipeline`]; with one thread, or if the pool cannot be
/// started, the same batches one after the other on this thread.
fn run_batches<J: Send>(
    threads: usize,
    name: &'static str,
    new_job: impl Fn() -> J,
    produce: impl FnMut(&mut J) -> bool,
    process: impl Fn(&mut J) + Sync,
    consume: impl FnMut(&mut J) -> Result<bool, CopyError> + Send,
) -> Result<(), CopyError> {
    let threads = if threads == 0 {
        default_threads()
    } else {
        threads
    };
    let pool = match threads {
        1 => None,
        n => rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .thread_name(move |i| format!("{name}-{i}"))
            .build()
            .ok(),
    };
    match pool {
        Some(pool) => pipeline(&pool, new_job, produce, process, consume),
        None => sequential(new_job(), produce, process, consume),
    }
}

/// Runs read, process and write one batch at a time on this thread.
fn sequential<J>(
    mut job: J,
    mut produce: impl FnMut(&mut J) -> bool,
    process: impl Fn(&mut J),
    mut consume: impl FnMut(&mut J) -> Result<bool, CopyError>,
) -> Result<(), CopyError> {
    loop {
        let more = produce(&mut job);
        process(&mut job);
        // `consume` reports the end (Ok(false)) or a failure itself; `more`
        // is false only when this batch ends the input, and then `consume`
        // does not return Ok(true).
        if !consume(&mut job)? || !more {
            return Ok(());
        }
    }
}

/// The three-stage pipeline. `produce` (this thread) fills a batch and says
/// whether more may follow; `process` runs on `pool`; `consume` runs on a
/// writer thread, strictly in batch order, and returns `Ok(false)` at the end
/// of the payload or an error to stop everything. At most [`WINDOW`] batches
/// exist; a stopped writer stops the reading at the next batch boundary.
fn pipeline<J: Send>(
    pool: &rayon::ThreadPool,
    new_job: impl Fn() -> J,
    mut produce: impl FnMut(&mut J) -> bool,
    process: impl Fn(&mut J) + Sync,
    mut consume: impl FnMut(&mut J) -> Result<bool, CopyError> + Send,
) -> Result<(), CopyError> {
    std::thread::scope(|scope| {
        // Each in-flight batch is announced to the writer, in order, as the
        // receiving end of a one-shot channel its worker task completes.
        let (order_tx, order_rx) = mpsc::sync_channel::<mpsc::Receiver<J>>(WINDOW);
        let (free_tx, free_rx) = mpsc::channel::<J>();
        let writer = scope.spawn(move || -> Result<(), CopyError> {
            for pending in order_rx {
                let Ok(mut job) = pending.recv() else {
                    // The task was dropped without completing: only a panic
                    // in `process` does that, and the scope re-raises it.
                    return Err(CopyError::Input(io::Error::other("a worker task failed")));
                };
                if !consume(&mut job)? {
                    return Ok(());
                }
                // The reader may already have stopped; then the job is dropped.
                let _ = free_tx.send(job);
            }
            Ok(())
        });
        let mut allocated = 0;
        let process = &process;
        pool.in_place_scope(|tasks| {
            loop {
                let mut job = if allocated < WINDOW {
                    allocated += 1;
                    new_job()
                } else {
                    match free_rx.recv() {
                        Ok(job) => job,
                        // The writer stopped (end of payload, or a failure).
                        Err(_) => break,
                    }
                };
                let more = produce(&mut job);
                let (done_tx, done_rx) = mpsc::sync_channel(1);
                tasks.spawn(move |_| {
                    process(&mut job);
                    // The writer may have stopped; then the job is dropped.
                    let _ = done_tx.send(job);
                });
                if order_tx.send(done_rx).is_err() || !more {
                    break;
                }
            }
            drop(order_tx);
        });
        match writer.join() {
            Ok(result) => result,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}
