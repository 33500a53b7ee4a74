//! `--threads` through the real binary: every thread count writes a file
//! that every thread count decrypts to the same plaintext (encryption is
//! randomized, so ciphertexts are compared by their length and by
//! decrypting them), over files and over pipes (standard input and output,
//! where the binary enlarges the pipe); and a damaged chunk stops the
//! release at the same byte at every thread count.

// Helpers outside `#[test]` functions unwrap too; clippy.toml allows it only
// inside them.
#![allow(clippy::unwrap_used)]

mod common;

use std::fs;
use std::path::PathBuf;

const CHUNK: usize = 16384;
const ENCRYPTED_CHUNK: usize = CHUNK + 16;
/// Chunks per batch of the parallel codec (`kapsel_codec::hazmat::parallel::BATCH_CHUNKS`).
const BATCH: usize = 128 * CHUNK;

struct Env {
    dir: tempfile::TempDir,
    key: String,
    recipient: String,
}

impl Env {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (key, id) = common::write_identity_file(&dir.path().join("me.key"));
        Env {
            dir,
            key,
            recipient: id.to_recipient().to_string(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn p(&self, name: &str) -> String {
        self.path(name).to_str().unwrap().to_string()
    }

    /// Runs kapsel with `args`, feeding `stdin` through a pipe; returns
    /// (exit code, stdout, stderr).
    fn run(&self, args: &[&str], stdin: &[u8]) -> (Option<i32>, Vec<u8>, String) {
        common::run_with_stdin(common::kapsel_in(&self.path("state")).args(args), stdin)
    }

    /// Encrypts `pt` with `--threads threads`, from a file to a file, or
    /// from standard input to standard output.
    fn encrypt(&self, pt: &[u8], threads: usize, pipes: bool) -> Vec<u8> {
        let t = threads.to_string();
        let mut args = vec!["encrypt", "-q", "--threads", &t, "-r", &self.recipient];
        if pipes {
            let (code, out, err) = self.run(&args, pt);
            assert_eq!(code, Some(0), "{err}");
            return out;
        }
        let (input, output) = (self.p("pt.in"), self.p("ct.out"));
        fs::write(&input, pt).unwrap();
        args.extend(["-o", &output, &input]);
        let (code, _, err) = self.run(&args, b"");
        assert_eq!(code, Some(0), "{err}");
        fs::read(&output).unwrap()
    }

    /// Decrypts `ct` with `--threads threads`; returns (exit code, released
    /// plaintext). Through pipes, the plaintext is what reached standard
    /// output; to a file, the file exists only on success.
    fn decrypt(&self, ct: &[u8], threads: usize, pipes: bool) -> (Option<i32>, Vec<u8>) {
        let t = threads.to_string();
        let mut args = vec!["decrypt", "-q", "--threads", &t, "-i", &self.key];
        if pipes {
            let (code, out, _) = self.run(&args, ct);
            return (code, out);
        }
        let (input, output) = (self.p("ct.in"), self.p("pt.out"));
        fs::write(&input, ct).unwrap();
        let _ = fs::remove_file(&output);
        args.extend(["-o", &output, &input]);
        let (code, _, _) = self.run(&args, b"");
        (code, fs::read(&output).unwrap_or_default())
    }
}

fn pattern(len: usize) -> Vec<u8> {
    common::random_bytes(len)
}

fn ciphertext_len(header_len: usize, len: usize) -> usize {
    header_len + len + 16 * (len / CHUNK + 1)
}

#[test]
fn every_thread_count_round_trips_with_every_other() {
    let env = Env::new();
    // Empty, one chunk, the sequential path's edge (256 KiB), a batch edge,
    // and more batches than are in flight at once.
    for len in [
        0,
        CHUNK,
        16 * CHUNK - 1,
        16 * CHUNK + 1,
        BATCH + 17,
        5 * BATCH + 3,
    ] {
        let pt = pattern(len);
        let mut header_len = None;
        for (threads, pipes) in [(1, false), (2, true), (3, false), (0, true)] {
            let ct = env.encrypt(&pt, threads, pipes);
            // One recipient: the header has the same length every time.
            let h = *header_len.get_or_insert(ct.len() - ciphertext_len(0, len));
            assert_eq!(ct.len(), ciphertext_len(h, len), "len {len}");
            for (threads2, pipes2) in [(1, true), (3, false), (2, false)] {
                let (code, out) = env.decrypt(&ct, threads2, pipes2);
                assert_eq!(code, Some(0), "len {len}: {threads} -> {threads2}");
                assert!(
                    out == pt,
                    "len {len}: encrypted with {threads}, decrypted with {threads2}"
                );
            }
        }
    }
}

#[test]
fn a_damaged_chunk_stops_release_at_the_same_byte_at_every_thread_count() {
    let env = Env::new();
    let len = 4 * BATCH + 1000;
    let pt = pattern(len);
    let ct = env.encrypt(&pt, 1, false);
    let header_len = ct.len() - ciphertext_len(0, len);
    // Chunk 300 lies in the third batch.
    let bad = 300;
    let mut damaged = ct.clone();
    damaged[header_len + bad * ENCRYPTED_CHUNK + 5] ^= 0x40;
    let mut codes = Vec::new();
    for threads in [1, 2, 3, 0] {
        let (code, out) = env.decrypt(&damaged, threads, true);
        assert_ne!(code, Some(0), "{threads} threads");
        codes.push(code);
        // Exactly the chunks before the damaged one reach standard output.
        assert_eq!(out.len(), bad * CHUNK, "{threads} threads");
        assert!(out == pt[..bad * CHUNK], "{threads} threads");
        // To a file: nothing at all.
        let (code, out) = env.decrypt(&damaged, threads, false);
        assert_eq!(code, codes[0], "{threads} threads");
        assert!(out.is_empty(), "{threads} threads");
    }
    assert!(codes.iter().all(|c| *c == codes[0]), "{codes:?}");
}
