//! A slow producer through `kapsel encrypt | kapsel decrypt`: each full
//! chunk the producer has written reaches the far end while the producer
//! still holds its pipe open, instead of once per batch or at end of input.
//! The time it took is printed, not asserted (a loaded machine may be slow);
//! what is asserted is that it arrived before the input ended. Armored
//! output is not covered: its lines are fixed-width, so a chunk's last bytes
//! leave the encoder only with the line that completes them.

mod common;

use std::io::{Read, Write};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::Env;

const CHUNK: usize = 16384;

/// How long the test waits for bytes that should come at once; far above
/// any real latency, so only a stream that holds chunks back fails.
const PATIENCE: Duration = Duration::from_secs(30);

/// `kapsel encrypt ARGS | kapsel decrypt -i KEY`, both with piped ends.
struct Pipeline {
    encrypt: Child,
    decrypt: Child,
    arrivals: mpsc::Receiver<Vec<u8>>,
}

impl Pipeline {
    fn start(env: &Env, encrypt_args: &[&str], decrypt_args: &[&str]) -> Self {
        let mut encrypt = env
            .cmd()
            .arg("encrypt")
            .args(encrypt_args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("encrypt starts");
        let ciphertext = encrypt.stdout.take().expect("encrypt stdout");
        let mut decrypt = env
            .cmd()
            .arg("decrypt")
            .args(decrypt_args)
            .stdin(Stdio::from(ciphertext))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("decrypt starts");
        let mut plaintext = decrypt.stdout.take().expect("decrypt stdout");
        let (tx, arrivals) = mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 1 << 16];
            loop {
                match plaintext.read(&mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => {
                        if tx.send(buf[..n].to_vec()).is_err() {
                            return;
                        }
                    }
                }
            }
        });
        Pipeline {
            encrypt,
            decrypt,
            arrivals,
        }
    }

    fn produce(&mut self, bytes: &[u8]) {
        let stdin = self.encrypt.stdin.as_mut().expect("encrypt stdin");
        stdin.write_all(bytes).expect("producer writes");
        stdin.flush().expect("producer flushes");
    }

    /// Collects plaintext until `want` bytes arrived in all; returns how long
    /// that took, or `None` if they did not come within [`PATIENCE`].
    fn await_bytes(&self, got: &mut Vec<u8>, want: usize) -> Option<Duration> {
        let start = Instant::now();
        while got.len() < want {
            let left = PATIENCE.checked_sub(start.elapsed())?;
            match self.arrivals.recv_timeout(left) {
                Ok(bytes) => got.extend_from_slice(&bytes),
                Err(_) => return None,
            }
        }
        Some(start.elapsed())
    }

    /// Closes the producer's end and collects the rest of the plaintext.
    fn finish(mut self, got: &mut Vec<u8>) {
        drop(self.encrypt.stdin.take());
        while let Ok(bytes) = self.arrivals.recv_timeout(PATIENCE) {
            got.extend_from_slice(&bytes);
        }
        assert!(self.encrypt.wait().expect("encrypt ends").success());
        assert!(self.decrypt.wait().expect("decrypt ends").success());
    }
}

/// The issue's shell pipeline, `(echo a; sleep; 20000 random bytes; sleep)`,
/// with the sleeps replaced by a producer that keeps its pipe open while the
/// test watches the far end.
fn slow_producer(encrypt_args: &[&str], decrypt_args: &[&str], what: &str) {
    let env = Env::new();
    let (key, id) = env.identity("me.key");
    let recipient = id.to_recipient().to_string();
    let mut enc = vec!["-r", recipient.as_str()];
    enc.extend_from_slice(encrypt_args);
    let mut dec = vec!["-i", key.as_str()];
    dec.extend_from_slice(decrypt_args);
    let mut pipeline = Pipeline::start(&env, &enc, &dec);

    let first = b"a\n".to_vec();
    let rest = common::random_bytes(20000);
    pipeline.produce(&first);
    std::thread::sleep(Duration::from_millis(300));
    pipeline.produce(&rest);

    let mut got = Vec::new();
    let latency = pipeline.await_bytes(&mut got, CHUNK);
    match latency {
        Some(t) => eprintln!("{what}: first full chunk arrived {t:?} after the producer wrote it"),
        None => panic!(
            "{what}: {} of {CHUNK} bytes arrived while the producer held its pipe open",
            got.len()
        ),
    }
    // The partial chunk that follows is the last one only once the input
    // ends, so nothing more may arrive before that.
    assert_eq!(got.len(), CHUNK, "{what}: only whole chunks arrive early");

    pipeline.finish(&mut got);
    let mut want = first;
    want.extend_from_slice(&rest);
    assert!(got == want, "{what}: the whole stream arrives intact");
}

#[test]
fn a_slow_producer_sees_each_full_chunk_at_the_far_end() {
    slow_producer(&[], &[], "default threads");
}

#[test]
fn a_slow_producer_is_prompt_with_one_thread_too() {
    slow_producer(&["--threads", "1"], &["--threads", "1"], "one thread");
}
