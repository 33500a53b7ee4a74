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
//! the pool's threads work on different batches. On the 2-core reference
//! machine the cryptography (about 0.2 CPU-s/GiB with VAES) is the smaller
//! part of the work next to reading and writing (0.15 to 0.6 CPU-s/GiB each
//! on tmpfs and pipes); splitting each batch over the pool with rayon's
//! `par_chunks`, as before issue 5, measured no faster in any whole-process
//! case, and slower when other processes compete for the cores.
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
//! [`outcome_of_io_error`](crate::outcome_of_io_error) classifies both paths
//! alike. A [`CopyError::Output`] is a write error.

use std::io::{self, Cursor, IoSlice, IoSliceMut, Read, Write};
use std::sync::mpsc;

use crate::aead::TAG_LEN;
use crate::payload::{ChunkCipher, PayloadError, StreamError, CHUNK_SIZE, ENCRYPTED_CHUNK_SIZE};

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
pub enum CopyError {
    /// Reading failed, or the payload is invalid (a [`PayloadError`] inside
    /// the `io::Error`; see [`crate::error::payload_error_of`]).
    #[error(transparent)]
    Input(io::Error),
    /// Writing failed.
    #[error(transparent)]
    Output(io::Error),
}

impl From<CopyError> for io::Error {
    fn from(e: CopyError) -> Self {
        match e {
            CopyError::Input(e) | CopyError::Output(e) => e,
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
    /// The input ended (a read returned 0) inside this batch.
    Eof,
    /// A read failed after the bytes in the batch.
    Failed(io::Error),
}

/// Reads until `buf` is full, the input ends, or a read fails; unlike
/// `read_full`, keeps the count of bytes read before a failure.
fn fill<R: Read + ?Sized>(reader: &mut R, buf: &mut [u8]) -> (usize, End) {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => return (filled, End::Eof),
            // A reader claiming more than it was given is broken; treat it as
            // a failed read rather than index out of bounds.
            Ok(n) if n > buf.len() - filled => {
                return (
                    filled,
                    End::Failed(io::Error::other("reader returned more bytes than asked")),
                )
            }
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return (filled, End::Failed(e)),
        }
    }
    (filled, End::More)
}

/// Reads up to `limit` bytes, as [`fill`] does, into a new vector.
fn read_head<R: Read + ?Sized>(reader: &mut R, limit: usize) -> (Vec<u8>, End) {
    let mut head = vec![0u8; limit];
    let (len, end) = fill(reader, &mut head);
    head.truncate(len);
    (head, end)
}

/// [`fill`] over several buffers with vectored reads: reads until every
/// buffer is full, the input ends, or a read fails, and returns the bytes
/// read, which fill the buffers in order (a short read never leaves a gap).
/// A reader without vectored reads fills one buffer per call.
fn fill_vectored<R: Read + ?Sized>(
    reader: &mut R,
    mut bufs: &mut [IoSliceMut<'_>],
) -> (usize, End) {
    let mut remaining: usize = bufs.iter().map(|b| b.len()).sum();
    let mut filled = 0;
    // Skip leading empty buffers: a read into only empty ones returns 0,
    // which would look like the end of input.
    IoSliceMut::advance_slices(&mut bufs, 0);
    while remaining > 0 {
        match reader.read_vectored(bufs) {
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
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return (filled, End::Failed(e)),
        }
    }
    (filled, End::More)
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

/// A zeroed byte buffer that starts on a page boundary.
///
/// The kernel copies file data to and from user memory with `rep movsb`,
/// which on some CPUs (AMD Zen among them) runs several times slower when
/// the destination lies a few bytes past the source modulo 4096, as it does
/// between page-aligned file data and an allocator's 16-byte-aligned block.
#[derive(Debug)]
struct AlignedBuf {
    storage: Vec<u8>,
    start: usize,
    len: usize,
}

impl AlignedBuf {
    fn new(len: usize) -> Self {
        let storage = vec![0u8; len + PAGE];
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
    fn from_vec(storage: Vec<u8>) -> Self {
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
// Encryption

/// One batch of the encryptor, in one buffer laid out as its output: chunk
/// `i` of the batch occupies bytes `i * ENCRYPTED_CHUNK_SIZE ..` (its body,
/// then its tag). The plaintext is read straight into the bodies with
/// vectored reads and sealed in place, so no plaintext copy exists.
#[derive(Debug)]
struct SealJob {
    /// Index of the batch's first chunk.
    first_index: u64,
    /// `BATCH_CHUNKS` (or fewer) slots of `ENCRYPTED_CHUNK_SIZE` bytes.
    buf: AlignedBuf,
    /// Plaintext bytes read; a multiple of `CHUNK_SIZE` unless `end` is `Eof`.
    len: usize,
    end: End,
    /// Bytes of `buf` to write once sealed.
    sealed_len: usize,
    /// The first chunk that could not be sealed (the 2^38 limit).
    failure: Option<PayloadError>,
}

impl SealJob {
    fn new(chunks: usize) -> Self {
        SealJob {
            first_index: 0,
            buf: AlignedBuf::new(chunks * ENCRYPTED_CHUNK_SIZE),
            len: 0,
            end: End::More,
            sealed_len: 0,
            failure: None,
        }
    }

    /// Fills the chunk bodies from `reader`; returns whether more may follow.
    fn read<R: Read + ?Sized>(&mut self, reader: &mut R, first_index: u64) -> bool {
        let mut bodies: Vec<IoSliceMut<'_>> = self
            .buf
            .chunks_mut(ENCRYPTED_CHUNK_SIZE)
            .map(|slot| IoSliceMut::new(&mut slot[..CHUNK_SIZE]))
            .collect();
        let (len, end) = fill_vectored(reader, &mut bodies);
        self.first_index = first_index;
        self.len = len;
        self.end = end;
        matches!(self.end, End::More)
    }

    /// Chunks this batch produces: every full chunk, and at the end of input
    /// the final short (possibly empty) one. After a read failure nothing is
    /// sealed: the failure is reported once the earlier batches are written.
    fn chunk_count(&self) -> usize {
        match self.end {
            End::More => self.len / CHUNK_SIZE,
            End::Eof => self.len / CHUNK_SIZE + 1,
            End::Failed(_) => 0,
        }
    }

    /// Seals the body at the start of `slot` (all of it but the tag's room)
    /// and writes its tag after it.
    fn seal_one(
        cipher: &ChunkCipher,
        first_index: u64,
        i: usize,
        slot: &mut [u8],
    ) -> Option<(usize, PayloadError)> {
        let (body, tag) = slot.split_at_mut(slot.len() - TAG_LEN);
        match cipher.seal(first_index + i as u64, body) {
            Ok(t) => {
                tag.copy_from_slice(&t);
                None
            }
            Err(e) => Some((i, e)),
        }
    }

    /// Seals every chunk of the batch, in order, on the current thread.
    fn seal(&mut self, cipher: &ChunkCipher) {
        let chunks = self.chunk_count();
        // The final short chunk's tag lands right after its body, inside its
        // slot; every other slot is whole.
        let total = match self.end {
            End::Eof => self.len + chunks * TAG_LEN,
            _ => chunks * ENCRYPTED_CHUNK_SIZE,
        };
        let first_index = self.first_index;
        let failure = self.buf[..total]
            .chunks_mut(ENCRYPTED_CHUNK_SIZE)
            .enumerate()
            .find_map(|(i, slot)| Self::seal_one(cipher, first_index, i, slot));
        match failure {
            // Every chunk before a failing one is full.
            Some((i, e)) => {
                self.sealed_len = i * ENCRYPTED_CHUNK_SIZE;
                self.failure = Some(e);
            }
            None => {
                self.sealed_len = total;
                self.failure = None;
            }
        }
    }

    /// Writes the sealed chunks; returns whether more batches follow.
    fn write<W: Write + ?Sized>(&mut self, writer: &mut W) -> Result<bool, CopyError> {
        writer
            .write_all(&self.buf[..self.sealed_len])
            .map_err(CopyError::Output)?;
        if let Some(e) = self.failure {
            return Err(payload_failure(e));
        }
        match std::mem::replace(&mut self.end, End::More) {
            End::More => Ok(true),
            End::Eof => Ok(false),
            End::Failed(e) => Err(CopyError::Input(e)),
        }
    }
}

/// Encrypts everything `reader` yields as the chunks of a payload whose
/// 56-byte prefix (salt and commitment) was already written to `writer`,
/// then flushes `writer` and returns it.
///
/// The output is byte-identical to writing the same plaintext through
/// [`PayloadWriter::from_parts`](crate::payload::PayloadWriter::from_parts)
/// with the same cipher. `threads` is the number of worker threads (0: all
/// cores; 1: sequential, no thread started).
pub fn encrypt_payload<R: Read, W: Write + Send>(
    mut reader: R,
    mut writer: W,
    cipher: ChunkCipher,
    threads: usize,
) -> Result<W, CopyError> {
    // Read the start of the input first: a short input goes the sequential
    // way without allocating batch buffers or starting threads.
    let (head, head_end) = read_head(&mut reader, SEQUENTIAL_BELOW);
    if !matches!(head_end, End::More) {
        let mut job = SealJob::new(head.len() / CHUNK_SIZE + 1);
        // Reading from memory cannot fail; the head's own end is kept.
        job.read(&mut &head[..], 0);
        job.end = head_end;
        job.seal(&cipher);
        job.write(&mut writer)?;
        writer.flush().map_err(CopyError::Output)?;
        return Ok(writer);
    }
    // The head is a whole number of chunks; it is read again, from memory,
    // as the start of the first batch.
    let mut input = Cursor::new(head).chain(reader);
    let mut next_index = 0u64;
    run_batches(
        threads,
        "kapsel-seal",
        || SealJob::new(BATCH_CHUNKS),
        |job: &mut SealJob| {
            let more = job.read(&mut input, next_index);
            next_index += (job.len / CHUNK_SIZE) as u64;
            more
        },
        |job: &mut SealJob| job.seal(&cipher),
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
    /// Reading failed here.
    Io(io::Error),
}

/// One batch of the decryptor: pieces of `ENCRYPTED_CHUNK_SIZE` bytes,
/// opened in place.
#[derive(Debug)]
struct OpenJob {
    first_index: u64,
    buf: AlignedBuf,
    len: usize,
    end: End,
    /// Leading pieces that verified; their plaintext may be released.
    verified: usize,
    stop: Stop,
}

impl OpenJob {
    fn new(chunks: usize) -> Self {
        OpenJob {
            first_index: 0,
            buf: AlignedBuf::new(chunks * ENCRYPTED_CHUNK_SIZE),
            len: 0,
            end: End::More,
            verified: 0,
            stop: Stop::Continue,
        }
    }

    fn read<R: Read + ?Sized>(&mut self, reader: &mut R, first_index: u64) -> bool {
        let (len, end) = fill(reader, &mut self.buf);
        self.first_index = first_index;
        self.len = len;
        self.end = end;
        matches!(self.end, End::More)
    }

    /// Plaintext length of piece `i` of a batch holding `len` bytes.
    fn plain_len(len: usize, i: usize) -> usize {
        (len - i * ENCRYPTED_CHUNK_SIZE).min(ENCRYPTED_CHUNK_SIZE) - TAG_LEN
    }

    /// Opens every piece, in order, on the current thread, up to the first
    /// that fails; records how many leading pieces verified and what stops
    /// the payload after them.
    fn open(&mut self, cipher: &ChunkCipher) {
        let full = self.len / ENCRYPTED_CHUNK_SIZE;
        let rem = self.len % ENCRYPTED_CHUNK_SIZE;
        // The final piece is opened only at the end of input, and only if it
        // can hold a tag; a shorter one (including none after a full chunk)
        // is a truncation.
        let final_piece = matches!(self.end, End::Eof) && rem >= TAG_LEN;
        let opened = full * ENCRYPTED_CHUNK_SIZE + if final_piece { rem } else { 0 };
        let first_index = self.first_index;
        let failure = self.buf[..opened]
            .chunks_mut(ENCRYPTED_CHUNK_SIZE)
            .enumerate()
            .find_map(
                |(i, piece)| match cipher.open(first_index + i as u64, piece) {
                    Ok(_) => None,
                    Err(e) => Some((i, e)),
                },
            );
        let end = std::mem::replace(&mut self.end, End::More);
        (self.verified, self.stop) = match failure {
            Some((i, e)) => (i, Stop::Payload(e)),
            None => (
                full + usize::from(final_piece),
                match end {
                    End::More => Stop::Continue,
                    End::Eof if final_piece => Stop::Done,
                    End::Eof => Stop::Payload(PayloadError::Truncated),
                    End::Failed(e) => Stop::Io(e),
                },
            ),
        };
    }

    /// Writes the verified plaintext; returns whether more batches follow.
    fn write<W: Write + ?Sized>(&mut self, writer: &mut W) -> Result<bool, CopyError> {
        let len = self.len;
        let mut slices: Vec<IoSlice<'_>> = self
            .buf
            .chunks(ENCRYPTED_CHUNK_SIZE)
            .take(self.verified)
            .enumerate()
            .map(|(i, piece)| IoSlice::new(&piece[..Self::plain_len(len, i)]))
            .collect();
        write_all_slices(writer, &mut slices).map_err(CopyError::Output)?;
        match std::mem::replace(&mut self.stop, Stop::Continue) {
            Stop::Continue => Ok(true),
            Stop::Done => Ok(false),
            Stop::Payload(e) => Err(payload_failure(e)),
            Stop::Io(e) => Err(CopyError::Input(e)),
        }
    }
}

/// Decrypts the chunks `reader` yields (the payload after its salt and
/// commitment, whose commitment `cipher` was verified against) and writes
/// the verified plaintext to `writer`, then flushes it; returns the number
/// of plaintext bytes written.
///
/// On success the output equals what
/// [`PayloadReader::from_parts`](crate::payload::PayloadReader::from_parts)
/// yields. On failure, `writer` has received exactly the plaintext of the
/// chunks before the first one that failed, in order, and the error is the
/// one the sequential reader reports. `threads` is the number of worker
/// threads (0: all cores; 1: sequential, no thread started).
pub fn decrypt_payload<R: Read, W: Write + Send>(
    mut reader: R,
    mut writer: W,
    cipher: ChunkCipher,
    threads: usize,
) -> Result<u64, CopyError> {
    // As for encryption: the same number of chunks, as ciphertext.
    let head_limit = SEQUENTIAL_BELOW / CHUNK_SIZE * ENCRYPTED_CHUNK_SIZE;
    let (head, head_end) = read_head(&mut reader, head_limit);
    let mut written = 0u64;
    if !matches!(head_end, End::More) {
        let mut job = OpenJob {
            first_index: 0,
            len: head.len(),
            buf: AlignedBuf::from_vec(head),
            end: head_end,
            verified: 0,
            stop: Stop::Continue,
        };
        job.open(&cipher);
        let released = released_bytes(&job);
        job.write(&mut writer)?;
        writer.flush().map_err(CopyError::Output)?;
        return Ok(released);
    }
    let mut input = Cursor::new(head).chain(reader);
    let mut next_index = 0u64;
    run_batches(
        threads,
        "kapsel-open",
        || OpenJob::new(BATCH_CHUNKS),
        |job: &mut OpenJob| {
            let more = job.read(&mut input, next_index);
            next_index += (job.len / ENCRYPTED_CHUNK_SIZE) as u64;
            more
        },
        |job: &mut OpenJob| job.open(&cipher),
        |job: &mut OpenJob| {
            let released = released_bytes(job);
            let more = job.write(&mut writer)?;
            written += released;
            Ok(more)
        },
    )?;
    writer.flush().map_err(CopyError::Output)?;
    Ok(written)
}

/// Plaintext bytes of the verified pieces of an opened batch.
fn released_bytes(job: &OpenJob) -> u64 {
    (0..job.verified)
        .map(|i| OpenJob::plain_len(job.len, i) as u64)
        .sum()
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
