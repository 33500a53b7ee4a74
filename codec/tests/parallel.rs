//! The parallel payload path against the sequential one: byte-identical
//! ciphertext at every size and thread count, and on damaged input exactly
//! the same released plaintext and the same error, whatever the batch in
//! which the damage falls.

use std::io::{self, Read, Write};

use kapsel_codec::hazmat::parallel::{
    decrypt_payload, encrypt_payload, CopyError, BATCH_CHUNKS, SEQUENTIAL_BELOW, WINDOW,
};
use kapsel_codec::hazmat::payload::{
    ChunkCipher, PayloadError, PayloadReader, PayloadWriter, CHUNK_SIZE, COMMITMENT_LEN,
    ENCRYPTED_CHUNK_SIZE, PAYLOAD_HEADER_LEN, SALT_LEN,
};
use kapsel_codec::hazmat::payload_error_of;
use kapsel_codec::{Decryptor, Encryptor, Identity, Outcome};

const KEY: [u8; 32] = [0x42; 32];
const CONTEXT: &[u8] = b"parallel test context";
const SALT: [u8; SALT_LEN] = [7; SALT_LEN];
const BATCH: usize = BATCH_CHUNKS * CHUNK_SIZE;
const THREADS: [usize; 4] = [1, 2, 4, 0];

fn pattern(len: usize) -> Vec<u8> {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn sealing_cipher() -> (ChunkCipher, [u8; PAYLOAD_HEADER_LEN]) {
    ChunkCipher::for_encryption_with_salt(&KEY, CONTEXT, SALT)
}

fn opening_cipher(prefix: &[u8; PAYLOAD_HEADER_LEN]) -> ChunkCipher {
    let mut salt = [0u8; SALT_LEN];
    salt.copy_from_slice(&prefix[..SALT_LEN]);
    let mut commitment = [0u8; COMMITMENT_LEN];
    commitment.copy_from_slice(&prefix[SALT_LEN..]);
    ChunkCipher::for_decryption(&KEY, CONTEXT, &salt, &commitment).expect("commitment matches")
}

/// The chunks (no prefix) the sequential `PayloadWriter` writes.
fn sequential_seal(plaintext: &[u8]) -> Vec<u8> {
    let (cipher, _) = sealing_cipher();
    let mut w = PayloadWriter::from_parts(Vec::new(), cipher);
    w.write_all(plaintext).expect("write to Vec");
    w.finish().expect("finish to Vec")
}

fn parallel_seal(reader: impl Read, threads: usize) -> Vec<u8> {
    let (cipher, _) = sealing_cipher();
    encrypt_payload(reader, Vec::new(), cipher, threads).expect("encrypt to Vec")
}

/// How a decryption ended.
#[derive(Debug, PartialEq, Eq)]
enum End {
    Ok,
    Payload(PayloadError),
    Io(io::ErrorKind),
}

fn classify(e: &io::Error) -> End {
    payload_error_of(e).map_or(End::Io(e.kind()), End::Payload)
}

/// What the sequential `PayloadReader` releases, and how it ends.
fn sequential_open(chunks: impl Read) -> (Vec<u8>, End) {
    let (_, prefix) = sealing_cipher();
    let mut r = PayloadReader::from_parts(chunks, opening_cipher(&prefix));
    let mut out = Vec::new();
    let mut buf = vec![0u8; 50_000];
    loop {
        match r.read(&mut buf) {
            Ok(0) => return (out, End::Ok),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) => {
                // Once failed, it keeps failing.
                assert!(r.read(&mut buf).is_err(), "sequential reader recovered");
                return (out, classify(&e));
            }
        }
    }
}

/// What the parallel decryptor writes, and how it ends.
fn parallel_open(chunks: impl Read, threads: usize) -> (Vec<u8>, End) {
    let (_, prefix) = sealing_cipher();
    let mut out = Vec::new();
    let end = match decrypt_payload(chunks, &mut out, opening_cipher(&prefix), threads) {
        Ok(n) => {
            assert_eq!(n, out.len() as u64, "reported length");
            End::Ok
        }
        Err(CopyError::Input(e)) => classify(&e),
        Err(e) => panic!("writing to a Vec failed: {e}"),
    };
    (out, end)
}

/// Sizes around every boundary the implementation has: chunks, the
/// sequential threshold, batches and the in-flight window.
fn interesting_sizes() -> Vec<usize> {
    let mut sizes = vec![
        0,
        1,
        CHUNK_SIZE - 1,
        CHUNK_SIZE,
        CHUNK_SIZE + 1,
        5 * CHUNK_SIZE,
        5 * CHUNK_SIZE + 77,
    ];
    for edge in [
        SEQUENTIAL_BELOW,
        BATCH,
        2 * BATCH,
        WINDOW * BATCH,
        (WINDOW + 1) * BATCH,
    ] {
        sizes.extend([
            edge - CHUNK_SIZE,
            edge - 1,
            edge,
            edge + 1,
            edge + CHUNK_SIZE,
        ]);
    }
    sizes.push(3 * (WINDOW + 2) * BATCH + 12_345);
    sizes
}

/// Reads at most a pseudo-random number of bytes per call, as a pipe does.
struct Dribble<R> {
    inner: R,
    state: u32,
    max: usize,
}

impl<R: Read> Read for Dribble<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.state = self.state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        #[allow(clippy::manual_is_multiple_of)] // is_multiple_of needs Rust 1.87
        if self.state % 7 == 0 {
            return Err(io::ErrorKind::Interrupted.into());
        }
        let n = 1 + (self.state >> 8) as usize % self.max;
        let n = n.min(buf.len());
        self.inner.read(&mut buf[..n])
    }
}

/// Yields `data`, then fails (instead of reporting the end).
struct FailsAfter {
    data: io::Cursor<Vec<u8>>,
}

impl Read for FailsAfter {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.data.read(buf)? {
            0 => Err(io::Error::new(io::ErrorKind::ConnectionReset, "gone")),
            n => Ok(n),
        }
    }
}

/// Accepts `limit` bytes, then fails.
#[derive(Debug)]
struct FullDisk {
    taken: usize,
    limit: usize,
}

impl Write for FullDisk {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.taken >= self.limit {
            return Err(io::Error::new(io::ErrorKind::StorageFull, "full"));
        }
        let n = buf.len().min(self.limit - self.taken);
        self.taken += n;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A writer without vectored writes: the default `write_vectored` writes
/// only the first slice.
struct PlainWriter(Vec<u8>);

impl Write for PlainWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.extend_from_slice(&buf[..buf.len().min(7000)]);
        Ok(buf.len().min(7000))
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn ciphertext_is_byte_identical_to_the_sequential_writer() {
    for len in interesting_sizes() {
        let pt = pattern(len);
        let expected = sequential_seal(&pt);
        let chunks = len / CHUNK_SIZE + 1;
        assert_eq!(expected.len(), len + 16 * chunks);
        for threads in THREADS {
            let got = parallel_seal(&pt[..], threads);
            assert!(
                got == expected,
                "len {len}, {threads} threads: ciphertext differs"
            );
        }
    }
}

#[test]
fn short_reads_and_interruptions_do_not_move_chunk_boundaries() {
    for len in [
        CHUNK_SIZE,
        SEQUENTIAL_BELOW + 3,
        2 * BATCH + CHUNK_SIZE,
        3 * BATCH + 1000,
    ] {
        let pt = pattern(len);
        let expected = sequential_seal(&pt);
        for (threads, max) in [(1, 5000), (2, 70_000), (4, 1)] {
            if max == 1 && len > SEQUENTIAL_BELOW + 3 {
                continue; // byte-at-a-time reads of megabytes: slow, nothing new
            }
            let reader = Dribble {
                inner: &pt[..],
                state: len as u32,
                max,
            };
            assert!(
                parallel_seal(reader, threads) == expected,
                "len {len}, threads {threads}"
            );
            let reader = Dribble {
                inner: &expected[..],
                state: 99,
                max,
            };
            let (out, end) = parallel_open(reader, threads);
            assert_eq!(end, End::Ok, "len {len}, threads {threads}");
            assert!(out == pt, "len {len}, threads {threads}");
        }
    }
}

/// Vectored reads of a pseudo-random number of bytes (1 to `max`) spread
/// over as many buffers as they need, as `readv` on a pipe returns them,
/// with interruptions. At the end of `data` it reports the end, or fails if
/// `fails` is set. `overclaim` makes every read claim one byte more than it
/// was given room for.
struct VectoredDribble<'a> {
    data: &'a [u8],
    state: u32,
    max: usize,
    fails: bool,
    overclaim: bool,
}

impl Read for VectoredDribble<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_vectored(&mut [io::IoSliceMut::new(buf)])
    }

    fn read_vectored(&mut self, bufs: &mut [io::IoSliceMut<'_>]) -> io::Result<usize> {
        self.state = self.state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        #[allow(clippy::manual_is_multiple_of)] // is_multiple_of needs Rust 1.87
        if self.state % 5 == 0 {
            return Err(io::ErrorKind::Interrupted.into());
        }
        if self.data.is_empty() && self.fails {
            return Err(io::Error::new(io::ErrorKind::ConnectionReset, "gone"));
        }
        if self.overclaim {
            let room: usize = bufs.iter().map(|b| b.len()).sum();
            return Ok(room + 1);
        }
        let mut n = 1 + (self.state >> 4) as usize % self.max;
        let mut done = 0;
        for buf in bufs.iter_mut() {
            let take = buf.len().min(n).min(self.data.len());
            buf[..take].copy_from_slice(&self.data[..take]);
            self.data = &self.data[take..];
            n -= take;
            done += take;
            if n == 0 || self.data.is_empty() {
                break;
            }
        }
        Ok(done)
    }
}

#[test]
fn vectored_short_reads_do_not_move_chunk_boundaries() {
    for len in [
        SEQUENTIAL_BELOW - 1,
        SEQUENTIAL_BELOW + 3,
        BATCH - 1,
        2 * BATCH + CHUNK_SIZE,
        3 * BATCH + 1000,
    ] {
        let pt = pattern(len);
        let expected = sequential_seal(&pt);
        for (threads, max) in [
            (1, 1),
            (2, 7),
            (1, CHUNK_SIZE - 1),
            (2, CHUNK_SIZE + 1),
            (4, 70_001),
            (0, 3 * BATCH),
        ] {
            if max < 1000 && len > SEQUENTIAL_BELOW + 3 {
                continue; // tiny reads of megabytes: slow, nothing new
            }
            let reader = VectoredDribble {
                data: &pt,
                state: len as u32 ^ max as u32,
                max,
                fails: false,
                overclaim: false,
            };
            assert!(
                parallel_seal(reader, threads) == expected,
                "len {len}, threads {threads}, reads up to {max}"
            );
        }
    }
}

#[test]
fn vectored_read_failures_and_lies_fail_the_encryption() {
    for len in [100, SEQUENTIAL_BELOW + 3, 2 * BATCH + 5] {
        let pt = pattern(len);
        for threads in [1, 2] {
            let (cipher, _) = sealing_cipher();
            let reader = VectoredDribble {
                data: &pt,
                state: 1,
                max: 100_000,
                fails: true,
                overclaim: false,
            };
            let r = encrypt_payload(reader, Vec::new(), cipher, threads);
            assert!(
                matches!(&r, Err(CopyError::Input(e)) if e.kind() == io::ErrorKind::ConnectionReset),
                "len {len}, threads {threads}: {r:?}"
            );
        }
    }
    // A reader claiming more bytes than it was given room for is refused
    // (as an input error), never trusted.
    for threads in [1, 2] {
        let (cipher, _) = sealing_cipher();
        let pt = pattern(SEQUENTIAL_BELOW + 1);
        let reader = VectoredDribble {
            data: &pt,
            state: 1,
            max: 100,
            fails: false,
            overclaim: true,
        };
        let r = encrypt_payload(reader, Vec::new(), cipher, threads);
        assert!(matches!(r, Err(CopyError::Input(_))), "{r:?}");
    }
}

#[test]
fn round_trips_at_every_size_and_thread_count() {
    for len in interesting_sizes() {
        let pt = pattern(len);
        let ct = sequential_seal(&pt);
        for threads in THREADS {
            let (out, end) = parallel_open(&ct[..], threads);
            assert_eq!(end, End::Ok, "len {len}, {threads} threads");
            assert!(out == pt, "len {len}, {threads} threads: plaintext differs");
        }
    }
}

#[test]
fn writers_without_vectored_writes_get_the_same_bytes() {
    let pt = pattern(2 * BATCH + 5);
    let ct = sequential_seal(&pt);
    let (cipher, prefix) = sealing_cipher();
    let w = encrypt_payload(&pt[..], PlainWriter(Vec::new()), cipher, 2).expect("encrypt");
    assert!(w.0 == ct);
    let mut w = PlainWriter(Vec::new());
    decrypt_payload(&ct[..], &mut w, opening_cipher(&prefix), 2).expect("decrypt");
    assert!(w.0 == pt);
}

/// Asserts that the parallel decryptor, at every thread count, releases
/// exactly what the sequential reader releases and fails the same way, and
/// that this is a whole number of chunks of the true plaintext.
fn same_as_sequential(damaged: &[u8], pt: &[u8], what: &str) -> End {
    let (seq_out, seq_end) = sequential_open(damaged);
    assert_ne!(seq_end, End::Ok, "{what}: damage not detected");
    assert_eq!(seq_out.len() % CHUNK_SIZE, 0, "{what}");
    assert!(seq_out[..] == pt[..seq_out.len()], "{what}");
    for threads in THREADS {
        let (out, end) = parallel_open(damaged, threads);
        assert_eq!(end, seq_end, "{what}, {threads} threads");
        assert_eq!(out.len(), seq_out.len(), "{what}, {threads} threads");
        assert!(out == seq_out, "{what}, {threads} threads");
    }
    seq_end
}

fn damage_sizes() -> [usize; 3] {
    [3 * CHUNK_SIZE + 100, SEQUENTIAL_BELOW + 5, 3 * BATCH + 1234]
}

#[test]
fn a_flipped_bit_stops_release_at_that_chunk() {
    for len in damage_sizes() {
        let pt = pattern(len);
        let ct = sequential_seal(&pt);
        let chunks = ct.len().div_ceil(ENCRYPTED_CHUNK_SIZE);
        let mut targets = vec![0, 1, chunks / 2, chunks - 2, chunks - 1];
        targets.extend([BATCH_CHUNKS - 1, BATCH_CHUNKS, 2 * BATCH_CHUNKS + 3]);
        for chunk in targets.into_iter().filter(|&c| c < chunks) {
            for offset in [0, 100, ENCRYPTED_CHUNK_SIZE - 1] {
                let at = (chunk * ENCRYPTED_CHUNK_SIZE + offset).min(ct.len() - 1);
                let mut bad = ct.clone();
                bad[at] ^= 0x01;
                let end = same_as_sequential(&bad, &pt, &format!("len {len}, byte {at}"));
                assert_eq!(
                    end,
                    End::Payload(PayloadError::ChunkAuthFailed {
                        index: (at / ENCRYPTED_CHUNK_SIZE) as u64
                    })
                );
            }
        }
    }
}

#[test]
fn the_first_of_several_bad_chunks_is_reported() {
    let pt = pattern(3 * BATCH + 99);
    let ct = sequential_seal(&pt);
    let mut bad = ct.clone();
    // A late batch is damaged first in memory order of discovery; the early
    // damage must still win.
    bad[(2 * BATCH_CHUNKS + 5) * ENCRYPTED_CHUNK_SIZE] ^= 1;
    bad[(BATCH_CHUNKS + 9) * ENCRYPTED_CHUNK_SIZE + 3] ^= 1;
    bad[(BATCH_CHUNKS + 10) * ENCRYPTED_CHUNK_SIZE + 3] ^= 1;
    let end = same_as_sequential(&bad, &pt, "three bad chunks");
    assert_eq!(
        end,
        End::Payload(PayloadError::ChunkAuthFailed {
            index: (BATCH_CHUNKS + 9) as u64
        })
    );
}

#[test]
fn truncation_anywhere_fails_after_the_whole_chunks_before_it() {
    for len in damage_sizes() {
        let pt = pattern(len);
        let ct = sequential_seal(&pt);
        let e = ENCRYPTED_CHUNK_SIZE;
        let mut cuts = vec![0, 1, 15, 16, e - 1, e, e + 1, e + 16];
        for k in [
            2,
            BATCH_CHUNKS - 1,
            BATCH_CHUNKS,
            BATCH_CHUNKS + 1,
            2 * BATCH_CHUNKS,
        ] {
            cuts.extend([k * e - 1, k * e, k * e + 15, k * e + 16, k * e + 17]);
        }
        cuts.extend([ct.len() - 17, ct.len() - 16, ct.len() - 1]);
        for cut in cuts.into_iter().filter(|&c| c < ct.len()) {
            let end = same_as_sequential(&ct[..cut], &pt, &format!("len {len}, cut at {cut}"));
            let expected = if cut % e < 16 {
                End::Payload(PayloadError::Truncated)
            } else {
                End::Payload(PayloadError::ChunkAuthFailed {
                    index: (cut / e) as u64,
                })
            };
            assert_eq!(end, expected, "len {len}, cut at {cut}");
        }
    }
}

#[test]
fn a_payload_ending_on_a_full_chunk_is_truncated() {
    // Plaintext of whole chunks: the real file ends with an empty final
    // chunk (16 bytes); without it the input ends after a full chunk.
    for chunks in [1, BATCH_CHUNKS, 2 * BATCH_CHUNKS] {
        let pt = pattern(chunks * CHUNK_SIZE);
        let ct = sequential_seal(&pt);
        assert_eq!(ct.len(), chunks * ENCRYPTED_CHUNK_SIZE + 16);
        let end = same_as_sequential(&ct[..ct.len() - 16], &pt, &format!("{chunks} chunks"));
        assert_eq!(end, End::Payload(PayloadError::Truncated));
    }
}

#[test]
fn trailing_data_fails_the_final_chunk() {
    for len in damage_sizes() {
        let pt = pattern(len);
        let ct = sequential_seal(&pt);
        let last = (ct.len() / ENCRYPTED_CHUNK_SIZE) as u64;
        for extra in [1, 16, ENCRYPTED_CHUNK_SIZE, 3 * ENCRYPTED_CHUNK_SIZE + 5] {
            let mut bad = ct.clone();
            bad.extend(std::iter::repeat_n(0xaa, extra));
            let end = same_as_sequential(&bad, &pt, &format!("len {len}, {extra} trailing"));
            assert_eq!(
                end,
                End::Payload(PayloadError::ChunkAuthFailed { index: last })
            );
        }
    }
}

#[test]
fn reordered_duplicated_and_deleted_chunks_fail_where_they_start() {
    let pt = pattern(3 * BATCH + 10);
    let ct = sequential_seal(&pt);
    let e = ENCRYPTED_CHUNK_SIZE;
    let chunk = |i: usize| ct[i * e..(i + 1) * e].to_vec();
    let n_full = ct.len() / e;
    for (a, b) in [
        (0, 1),
        (BATCH_CHUNKS - 1, BATCH_CHUNKS),
        (5, 2 * BATCH_CHUNKS),
    ] {
        let mut bad = ct.clone();
        bad[a * e..(a + 1) * e].copy_from_slice(&chunk(b));
        bad[b * e..(b + 1) * e].copy_from_slice(&chunk(a));
        let end = same_as_sequential(&bad, &pt, &format!("swap {a} {b}"));
        assert_eq!(
            end,
            End::Payload(PayloadError::ChunkAuthFailed { index: a as u64 })
        );
    }
    for i in [0, BATCH_CHUNKS, n_full - 1] {
        let mut dup = ct[..(i + 1) * e].to_vec();
        dup.extend(chunk(i));
        dup.extend_from_slice(&ct[(i + 1) * e..]);
        let end = same_as_sequential(&dup, &pt, &format!("duplicate {i}"));
        assert_eq!(
            end,
            End::Payload(PayloadError::ChunkAuthFailed {
                index: i as u64 + 1
            })
        );
        let mut del = ct[..i * e].to_vec();
        del.extend_from_slice(&ct[(i + 1) * e..]);
        same_as_sequential(&del, &pt, &format!("delete {i}"));
    }
}

#[test]
fn a_read_error_releases_the_verified_chunks_before_it() {
    let pt = pattern(3 * BATCH + 10);
    let ct = sequential_seal(&pt);
    let e = ENCRYPTED_CHUNK_SIZE;
    for cut in [
        0,
        100,
        e,
        3 * e + 7,
        BATCH_CHUNKS * e,
        2 * BATCH_CHUNKS * e + 5,
    ] {
        let data = ct[..cut].to_vec();
        let (seq_out, seq_end) = sequential_open(FailsAfter {
            data: io::Cursor::new(data.clone()),
        });
        assert_eq!(seq_end, End::Io(io::ErrorKind::ConnectionReset));
        for threads in THREADS {
            let (out, end) = parallel_open(
                FailsAfter {
                    data: io::Cursor::new(data.clone()),
                },
                threads,
            );
            assert_eq!(end, seq_end, "cut {cut}, {threads} threads");
            assert!(out == seq_out, "cut {cut}, {threads} threads");
            assert_eq!(out.len(), cut / e * CHUNK_SIZE);
        }
    }
    // A read error on the encryption side fails the encryption.
    let (cipher, _) = sealing_cipher();
    let r = encrypt_payload(
        FailsAfter {
            data: io::Cursor::new(pt.clone()),
        },
        Vec::new(),
        cipher,
        2,
    );
    assert!(matches!(r, Err(CopyError::Input(e)) if e.kind() == io::ErrorKind::ConnectionReset));
}

#[test]
fn a_write_error_stops_both_directions() {
    let pt = pattern(4 * BATCH + 10);
    let ct = sequential_seal(&pt);
    for threads in THREADS {
        for limit in [0, 1000, BATCH + 3] {
            let (cipher, prefix) = sealing_cipher();
            let disk = FullDisk { taken: 0, limit };
            let r = encrypt_payload(&pt[..], disk, cipher, threads);
            assert!(
                matches!(&r, Err(CopyError::Output(e)) if e.kind() == io::ErrorKind::StorageFull),
                "{r:?}"
            );
            let disk = FullDisk { taken: 0, limit };
            let r = decrypt_payload(&ct[..], disk, opening_cipher(&prefix), threads);
            assert!(
                matches!(&r, Err(CopyError::Output(e)) if e.kind() == io::ErrorKind::StorageFull),
                "{r:?}"
            );
        }
    }
}

// --- The file-level path the CLI takes -------------------------------------

fn cli_encrypt(enc: Encryptor, pt: &[u8], threads: usize) -> Vec<u8> {
    enc.wrap_output(Vec::new())
        .expect("header")
        .encrypt_from(pt, threads)
        .expect("encrypt")
}

fn cli_decrypt(id: &Identity, file: &[u8], threads: usize) -> (Vec<u8>, Result<(), Outcome>) {
    let reader = match Decryptor::new(file).and_then(|d| d.decrypt(std::slice::from_ref(id))) {
        Ok(r) => r,
        Err(e) => return (Vec::new(), Err(e.outcome())),
    };
    let mut out = Vec::new();
    let result = match reader.decrypt_to(&mut out, threads, &mut || Ok(())) {
        Ok(_) => Ok(()),
        Err(CopyError::Input(e)) => Err(Outcome::of_io(&e)),
        Err(e) => panic!("{e}"),
    };
    (out, result)
}

fn sequential_decrypt(id: &Identity, file: &[u8]) -> (Vec<u8>, Result<(), Outcome>) {
    let mut r = match Decryptor::new(file).and_then(|d| d.decrypt(std::slice::from_ref(id))) {
        Ok(r) => r,
        Err(e) => return (Vec::new(), Err(e.outcome())),
    };
    let mut out = Vec::new();
    let mut buf = vec![0u8; 70_000];
    loop {
        match r.read(&mut buf) {
            Ok(0) => return (out, Ok(())),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) => return (out, Err(Outcome::of_io(&e))),
        }
    }
}

#[test]
fn file_round_trip_through_the_cli_path() {
    let id = Identity::generate();
    let sender = Identity::generate();
    let segment = kapsel_codec::hazmat::segment::SEGMENT_PLAINTEXT;
    for len in [
        0,
        1000,
        SEQUENTIAL_BELOW + 1,
        2 * BATCH + 17,
        segment,
        3 * segment,
        5 * segment + CHUNK_SIZE - 1,
    ] {
        let pt = pattern(len);
        for threads in [1, 2] {
            for signed in [false, true] {
                let mut enc = Encryptor::new([id.to_recipient()]).expect("recipient");
                if signed {
                    enc = enc.sender(sender.clone());
                }
                let file = cli_encrypt(enc, &pt, threads);
                let what = format!("len {len}, {threads} threads, signed {signed}");
                let (out, result) = cli_decrypt(&id, &file, threads);
                assert_eq!(result, Ok(()), "{what}");
                assert!(out == pt, "{what}");
                // The sequential reader opens what the parallel writer made.
                let (out, result) = sequential_decrypt(&id, &file);
                assert_eq!(result, Ok(()), "{what}");
                assert!(out == pt, "{what}");
                // Damage in the last byte (a tag, or the signature): both
                // paths fail alike and release the same prefix.
                let mut bad = file.clone();
                let last = bad.len() - 1;
                bad[last] ^= 1;
                let (seq_out, seq_result) = sequential_decrypt(&id, &bad);
                let (out, result) = cli_decrypt(&id, &bad, threads);
                assert_eq!(
                    seq_result,
                    Err(if signed {
                        Outcome::SenderAuthFailed
                    } else {
                        Outcome::PayloadFailed
                    }),
                    "{what}"
                );
                assert_eq!(result, seq_result, "{what}");
                assert!(out == seq_out, "{what}");
                // Everything but the damaged final chunk (or segment) may be
                // released; a plaintext of whole chunks has an empty one.
                assert!(out.len() < pt.len() || pt.len() % CHUNK_SIZE == 0, "{what}");
            }
        }
    }
}
