//! Live inputs: a producer that pauses gets its complete chunks encrypted,
//! sent and decrypted at once, and the pauses never change the bytes.
//!
//! - A probe that answers at random, over reads of random length, yields
//!   exactly the ciphertext of the batch path (same key and salt), and a
//!   decryption that releases the same plaintext and the same failure as
//!   the sequential reader.
//! - With a producer that writes a little over one chunk and then waits,
//!   the chunk reaches the far end (encrypted, then decrypted) while the
//!   producer still holds its input open.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::time::Duration;

use kapsel_codec::hazmat::parallel::{CopyError, BATCH_CHUNKS, SEQUENTIAL_BELOW};
use kapsel_codec::hazmat::payload::{CHUNK_SIZE, ENCRYPTED_CHUNK_SIZE, PAYLOAD_HEADER_LEN};
use kapsel_codec::hazmat::segment::SEGMENT_PLAINTEXT;
use kapsel_codec::{Decryptor, Encryptor, Identity, Outcome};
use rand_core::{CryptoRng, RngCore};

/// A deterministic generator: the same file key, salt and ephemeral key on
/// every run, so two encryptions of one plaintext can be compared byte for
/// byte. Test only.
struct CountingRng(u64);

impl RngCore for CountingRng {
    fn next_u32(&mut self) -> u32 {
        self.next_u64() as u32
    }
    fn next_u64(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1);
        self.0 >> 11
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for b in dest {
            *b = self.next_u64() as u8;
        }
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

impl CryptoRng for CountingRng {}

fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut rng = CountingRng(seed);
    let mut v = vec![0u8; len];
    rng.fill_bytes(&mut v);
    v
}

/// Reads a pseudo-random number of bytes (1 to `max`) per call, as a pipe
/// does, and has a pause probe that answers pseudo-randomly.
struct Jittery<R> {
    inner: R,
    state: u64,
    max: usize,
}

impl<R> Jittery<R> {
    fn new(inner: R, seed: u64, max: usize) -> Self {
        Jittery {
            inner,
            state: seed,
            max,
        }
    }

    fn step(&mut self) -> u64 {
        self.state = self
            .state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.state >> 17
    }
}

impl<R: Read> Read for Jittery<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = 1 + self.step() as usize % self.max;
        let n = n.min(buf.len());
        self.inner.read(&mut buf[..n])
    }
}

/// The pause probe of a [`Jittery`] reader: says "paused" about every
/// third time it is asked.
fn coin(seed: u64) -> impl FnMut() -> bool {
    let mut j = Jittery::new((), seed, 1);
    move || j.step() % 3 != 0
}

fn sizes() -> Vec<usize> {
    vec![
        0,
        1,
        1000,
        CHUNK_SIZE,
        3 * CHUNK_SIZE + 5,
        SEQUENTIAL_BELOW,
        SEQUENTIAL_BELOW + 1,
        2 * BATCH_CHUNKS * CHUNK_SIZE + 17,
        2 * SEGMENT_PLAINTEXT + 3,
    ]
}

/// A fixed creation time: the header holds it, and two encryptions a
/// second apart would otherwise differ.
fn encryptor(id: &Identity) -> Encryptor {
    Encryptor::new([id.to_recipient()])
        .expect("recipient")
        .created_at(1_764_000_000)
}

fn batch_encrypt(id: &Identity, pt: &[u8], threads: usize) -> Vec<u8> {
    encryptor(id)
        .wrap_output_with_rng(Vec::new(), &mut CountingRng(1))
        .expect("header")
        .encrypt_from(pt, threads)
        .expect("encrypt")
}

fn live_encrypt(enc: Encryptor, pt: &[u8], threads: usize, seed: u64, rng: bool) -> Vec<u8> {
    let writer = if rng {
        enc.wrap_output_with_rng(Vec::new(), &mut CountingRng(1))
    } else {
        enc.wrap_output(Vec::new())
    }
    .expect("header");
    let reader = Jittery::new(pt, seed, 3 * CHUNK_SIZE);
    writer
        .encrypt_live_from(reader, threads, &mut coin(seed ^ 0x55))
        .expect("encrypt")
}

/// The plaintext the sequential reader releases, and how it ends.
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

fn live_decrypt(
    id: &Identity,
    file: &[u8],
    threads: usize,
    seed: u64,
) -> (Vec<u8>, Result<(), Outcome>) {
    let reader = Jittery::new(file, seed, 3 * ENCRYPTED_CHUNK_SIZE);
    let plaintext = match Decryptor::new(reader).and_then(|d| d.decrypt(std::slice::from_ref(id))) {
        Ok(r) => r,
        Err(e) => return (Vec::new(), Err(e.outcome())),
    };
    let mut out = Vec::new();
    let result = plaintext.decrypt_live_to(&mut out, threads, &mut || Ok(()), &mut coin(seed));
    let result = match result {
        Ok(_) => Ok(()),
        Err(CopyError::Input(e)) => Err(Outcome::of_io(&e)),
        Err(e) => panic!("{e}"),
    };
    (out, result)
}

#[test]
fn pauses_do_not_change_the_ciphertext() {
    let id = Identity::generate();
    for len in sizes() {
        let pt = pattern(len, len as u64);
        for threads in [1, 2] {
            let reference = batch_encrypt(&id, &pt, threads);
            for seed in 0..3 {
                let live = live_encrypt(encryptor(&id), &pt, threads, seed, true);
                assert!(
                    live == reference,
                    "len {len}, {threads} threads, seed {seed}: the live ciphertext differs"
                );
            }
        }
    }
}

#[test]
fn a_signed_live_stream_opens_with_the_sequential_reader() {
    let id = Identity::generate();
    let sender = Identity::generate();
    for len in [
        0,
        1000,
        3 * CHUNK_SIZE + 5,
        SEGMENT_PLAINTEXT,
        2 * SEGMENT_PLAINTEXT + 3,
    ] {
        let pt = pattern(len, 7);
        for threads in [1, 2] {
            let file = live_encrypt(
                encryptor(&id).sender(sender.clone()),
                &pt,
                threads,
                9,
                false,
            );
            let (out, result) = sequential_decrypt(&id, &file);
            assert_eq!(result, Ok(()), "len {len}, {threads} threads");
            assert!(out == pt, "len {len}, {threads} threads");
        }
    }
}

#[test]
fn pauses_do_not_change_what_decryption_releases() {
    let id = Identity::generate();
    let sender = Identity::generate();
    for len in sizes() {
        let pt = pattern(len, 3);
        for signed in [false, true] {
            let mut enc = encryptor(&id);
            if signed {
                enc = enc.sender(sender.clone());
            }
            let file = enc
                .wrap_output(Vec::new())
                .expect("header")
                .encrypt_from(&pt[..], 2)
                .expect("encrypt");
            // Intact, and damaged in the middle and in the last byte.
            let mut cases = vec![file.clone()];
            for at in [file.len() / 2, file.len() - 1] {
                let mut bad = file.clone();
                bad[at] ^= 0x10;
                cases.push(bad);
            }
            for (case, bytes) in cases.iter().enumerate() {
                let expected = sequential_decrypt(&id, bytes);
                for threads in [1, 2] {
                    for seed in 0..2 {
                        let got = live_decrypt(&id, bytes, threads, seed);
                        assert_eq!(
                            got.1, expected.1,
                            "len {len}, signed {signed}, case {case}, {threads} threads"
                        );
                        assert!(
                            got.0 == expected.0,
                            "len {len}, signed {signed}, case {case}, {threads} threads: \
                             released {} bytes, sequential {}",
                            got.0.len(),
                            expected.0.len()
                        );
                    }
                }
            }
        }
    }
}

// --- A producer that pauses ------------------------------------------------

/// A pipe between threads: `read` blocks until bytes arrive or the writing
/// side closes; `ready` tells whether a read would return at once.
#[derive(Clone, Default)]
struct Pipe {
    state: Arc<(Mutex<PipeState>, Condvar)>,
}

/// The bytes in flight, and whether the writing side has closed.
type PipeState = (VecDeque<u8>, bool);

impl Pipe {
    fn push(&self, bytes: &[u8]) {
        let (lock, cond) = &*self.state;
        lock.lock().expect("lock").0.extend(bytes);
        cond.notify_all();
    }

    fn close(&self) {
        let (lock, cond) = &*self.state;
        lock.lock().expect("lock").1 = true;
        cond.notify_all();
    }

    fn ready(&self) -> bool {
        let (lock, _) = &*self.state;
        let state = lock.lock().expect("lock");
        !state.0.is_empty() || state.1
    }
}

impl Read for Pipe {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let (lock, cond) = &*self.state;
        let mut state = lock.lock().expect("lock");
        while state.0.is_empty() && !state.1 {
            state = cond.wait(state).expect("lock");
        }
        let n = buf.len().min(state.0.len());
        for (b, x) in buf.iter_mut().zip(state.0.drain(..n)) {
            *b = x;
        }
        Ok(n)
    }
}

/// Sends everything written to a channel, one message per write.
struct Tap(mpsc::Sender<Vec<u8>>);

impl Write for Tap {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let _ = self.0.send(buf.to_vec());
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Collects from `rx` until `want` bytes arrived; panics after `patience`.
fn collect(rx: &mpsc::Receiver<Vec<u8>>, got: &mut Vec<u8>, want: usize, what: &str) {
    let patience = Duration::from_secs(20);
    while got.len() < want {
        match rx.recv_timeout(patience) {
            Ok(piece) => got.extend_from_slice(&piece),
            Err(_) => panic!(
                "{what}: {} of {want} bytes arrived while the input was open",
                got.len()
            ),
        }
    }
}

#[test]
fn a_pausing_producer_gets_each_full_chunk_through_at_once() {
    let id = Identity::generate();
    let sender = Identity::generate();
    for (signed, threads) in [(false, 1), (false, 2), (true, 2)] {
        // The producer of the issue: a line, then a little over one chunk
        // (for a signed file: one segment), then it waits.
        let unit = if signed {
            SEGMENT_PLAINTEXT
        } else {
            CHUNK_SIZE
        };
        let first = pattern(unit + 3616, 11);
        let second = pattern(5000, 12);

        // Encrypt: the producer -> encrypt_live_from -> the channel.
        let input = Pipe::default();
        let (tx, rx) = mpsc::channel();
        let mut enc = encryptor(&id);
        if signed {
            enc = enc.sender(sender.clone());
        }
        let writer = enc.wrap_output(Tap(tx)).expect("header");
        let probe = input.clone();
        let reader = input.clone();
        let encrypting = std::thread::spawn(move || {
            writer
                .encrypt_live_from(reader, threads, &mut || probe.ready())
                .map(drop)
                .map_err(|e| e.to_string())
        });
        input.push(b"a\n");
        input.push(&first);
        // The header, the salt and commitment, and the first full unit
        // arrive before the input ends.
        let mut file = Vec::new();
        let unit_len = if signed {
            kapsel_codec::hazmat::segment::FULL_SEGMENT_LEN
        } else {
            ENCRYPTED_CHUNK_SIZE
        };
        // The header length is read off the file itself, once it parses.
        let header_len = loop {
            if let Ok(d) = Decryptor::new(&file[..]) {
                break d.unverified_header_bytes().len();
            }
            let want = file.len() + 1;
            collect(&rx, &mut file, want, "the header");
        };
        collect(
            &rx,
            &mut file,
            header_len + PAYLOAD_HEADER_LEN + unit_len,
            &format!("signed {signed}: the first encrypted unit"),
        );
        let released_at_pause = file.len();

        // Decrypt what arrived so far: the far end releases the first unit
        // while its input (the ciphertext so far) stays open.
        let cipher_in = Pipe::default();
        cipher_in.push(&file);
        let (ptx, prx) = mpsc::channel();
        let probe = cipher_in.clone();
        let reader = cipher_in.clone();
        let ids = vec![id.clone()];
        let decrypting = std::thread::spawn(move || {
            let plaintext = Decryptor::new(reader)
                .and_then(|d| d.decrypt(&ids))
                .map_err(|e| e.to_string())?;
            plaintext
                .decrypt_live_to(Tap(ptx), threads, &mut || Ok(()), &mut || probe.ready())
                .map_err(|e| e.to_string())
        });
        let mut plain = Vec::new();
        collect(
            &prx,
            &mut plain,
            unit,
            &format!("signed {signed}: the first plaintext unit"),
        );
        let mut expected = b"a\n".to_vec();
        expected.extend_from_slice(&first);
        assert!(
            plain[..] == expected[..plain.len()],
            "signed {signed}: the first unit"
        );

        // The producer goes on and ends: both sides finish, and the whole
        // stream decrypts.
        input.push(&second);
        input.close();
        encrypting.join().expect("encryptor").expect("encryption");
        while let Ok(piece) = rx.recv() {
            file.extend_from_slice(&piece);
        }
        assert!(file.len() > released_at_pause);
        cipher_in.push(&file[released_at_pause..]);
        cipher_in.close();
        let total = decrypting.join().expect("decryptor").expect("decryption");
        while let Ok(piece) = prx.recv() {
            plain.extend_from_slice(&piece);
        }
        expected.extend_from_slice(&second);
        assert_eq!(total as usize, expected.len());
        assert!(plain == expected, "signed {signed}: the whole stream");
    }
}

/// A producer that writes exactly one batch (the size at which the codec
/// hands a batch on without looking for a pause mid-read) and waits: the
/// batch still goes out and is flushed at once, through an output that
/// buffers everything until flushed, on both sides.
#[test]
fn a_pause_right_at_a_batch_boundary_is_flushed_at_once() {
    let id = Identity::generate();
    let sender = Identity::generate();
    let batch = BATCH_CHUNKS * CHUNK_SIZE;
    for signed in [false, true] {
        let plaintext = pattern(batch, 21);
        let input = Pipe::default();
        let (tx, rx) = mpsc::channel();
        let mut enc = encryptor(&id);
        if signed {
            enc = enc.sender(sender.clone());
        }
        let buffered = io::BufWriter::with_capacity(4 * batch, Tap(tx));
        let writer = enc.wrap_output(buffered).expect("header");
        let (probe, reader) = (input.clone(), input.clone());
        let encrypting = std::thread::spawn(move || {
            writer
                .encrypt_live_from(reader, 2, &mut || probe.ready())
                .map(drop)
                .map_err(|e| e.to_string())
        });
        input.push(&plaintext);
        let unit_len = if signed {
            kapsel_codec::hazmat::segment::FULL_SEGMENT_LEN
        } else {
            ENCRYPTED_CHUNK_SIZE
        };
        let units = if signed {
            batch / SEGMENT_PLAINTEXT
        } else {
            BATCH_CHUNKS
        };
        let mut file = Vec::new();
        // The output buffers all until flushed, so the header arrives with
        // the batch or not at all.
        collect(&rx, &mut file, 1, &format!("signed {signed}: the header"));
        let header_len = Decryptor::new(&file[..])
            .expect("the header arrived whole")
            .unverified_header_bytes()
            .len();
        collect(
            &rx,
            &mut file,
            header_len + PAYLOAD_HEADER_LEN + units * unit_len,
            &format!("signed {signed}: the encrypted batch"),
        );
        let released_at_pause = file.len();

        // Decrypting exactly what arrived, with its input still open,
        // releases the whole batch through a buffering output too.
        let cipher_in = Pipe::default();
        cipher_in.push(&file);
        let (ptx, prx) = mpsc::channel();
        let (probe, reader) = (cipher_in.clone(), cipher_in.clone());
        let ids = vec![id.clone()];
        let decrypting = std::thread::spawn(move || {
            let out = io::BufWriter::with_capacity(4 * batch, Tap(ptx));
            Decryptor::new(reader)
                .and_then(|d| d.decrypt(&ids))
                .map_err(|e| e.to_string())?
                .decrypt_live_to(out, 2, &mut || Ok(()), &mut || probe.ready())
                .map_err(|e| e.to_string())
        });
        let mut plain = Vec::new();
        collect(
            &prx,
            &mut plain,
            batch,
            &format!("signed {signed}: the decrypted batch"),
        );
        assert!(plain == plaintext, "signed {signed}");

        input.close();
        encrypting.join().expect("encryptor").expect("encryption");
        while let Ok(piece) = rx.recv() {
            file.extend_from_slice(&piece);
        }
        cipher_in.push(&file[released_at_pause..]);
        cipher_in.close();
        let total = decrypting.join().expect("decryptor").expect("decryption");
        assert_eq!(total as usize, batch);
    }
}
