//! Decoding a vector with the Rust codec as a streaming receiver does:
//! through `ArmoredReader` (armored vectors), `Decryptor::new` and
//! `decrypt`, reading the plaintext in 1000-byte pieces and keeping every
//! byte released before the decoder stopped. Used by
//! `tests/kapsel_vectors.rs` and by the `decode` binary (differential runs
//! against the Python decoder).

use std::io::{self, BufReader, Read};

use kapsel_codec::ArmoredReader;
use kapsel_codec::{Decryptor, HybridIdentity, Identity, Keyring, Outcome, Passphrase};

use crate::vector::Expect;

/// Plaintext read size: smaller than a chunk and not a divisor of it.
pub const READ_SIZE: usize = 1000;

/// The vector class of a codec outcome (`None`: success).
pub fn expect_of(outcome: Option<Outcome>) -> Expect {
    match outcome {
        None => Expect::Success,
        Some(Outcome::NotKapsel) => Expect::NotKapsel,
        Some(Outcome::Unsupported) => Expect::Unsupported,
        Some(Outcome::MalformedHeader) => Expect::MalformedHeader,
        Some(Outcome::NoMatchingRecipient) => Expect::NoMatch,
        Some(Outcome::HeaderAuthFailed) => Expect::HeaderAuthFailure,
        Some(Outcome::PayloadFailed) => Expect::PayloadFailure,
        Some(Outcome::ArmorFailed) => Expect::ArmorFailure,
        Some(Outcome::SenderAuthFailed) => Expect::SenderVerificationFailure,
        Some(Outcome::Io) => panic!("an I/O outcome from an in-memory input"),
        Some(Outcome::Refused) => panic!("a policy refusal from a decoder without a policy"),
        Some(other) => panic!("an outcome class the vectors do not know: {other:?}"),
    }
}

/// Hands out at most `max` bytes per `read`.
#[derive(Debug)]
pub struct Trickle<R> {
    /// The reader handed out.
    pub inner: R,
    /// The most bytes per `read`.
    pub max: usize,
}

impl<R: Read> Read for Trickle<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min(self.max);
        self.inner.read(&mut buf[..n])
    }
}

/// The keys of a vector: its `identity` lines (P-256 and hybrid identity
/// strings) and its `passphrase_hex` line.
pub fn keys_of(vector: &crate::vector::VectorFile) -> Result<Keyring<'static>, String> {
    let mut keys = Keyring::new();
    for s in vector.all("identity") {
        if s.to_ascii_lowercase().starts_with("kapsel-pq-secret-key-1") {
            let id = HybridIdentity::from_secret_string(s).map_err(|e| e.to_string())?;
            keys = keys.with_hybrid_identities([id]);
        } else {
            let id = Identity::from_secret_string(s).map_err(|e| e.to_string())?;
            keys = keys.with_identities([id]);
        }
    }
    if let Some(p) = vector.get("passphrase_hex") {
        let bytes = hex::decode(p).map_err(|e| e.to_string())?;
        keys = keys.with_passphrase(Passphrase::from_bytes(&bytes));
    }
    Ok(keys)
}

/// Decodes `data` and returns the outcome (None for success) and the
/// plaintext released before the decoder stopped.
pub fn decode(
    data: &[u8],
    armored: bool,
    identities: &[Identity],
    piece: usize,
) -> (Option<Outcome>, Vec<u8>) {
    decode_with(data, armored, &Keyring::from(identities), piece)
}

/// [`decode`] with every kind of key.
pub fn decode_with(
    data: &[u8],
    armored: bool,
    keys: &Keyring,
    piece: usize,
) -> (Option<Outcome>, Vec<u8>) {
    let input = Trickle {
        inner: data,
        max: piece,
    };
    let reader: Box<dyn Read> = if armored {
        Box::new(ArmoredReader::new(BufReader::with_capacity(256, input)))
    } else {
        Box::new(input)
    };
    let decryptor = match Decryptor::new(reader) {
        Ok(d) => d,
        Err(e) => return (Some(e.outcome()), Vec::new()),
    };
    let mut plaintext = match decryptor.decrypt_with(keys) {
        Ok(p) => p,
        Err(e) => return (Some(e.outcome()), Vec::new()),
    };
    let mut released = Vec::new();
    let mut buf = vec![0u8; READ_SIZE];
    loop {
        match plaintext.read(&mut buf) {
            Ok(0) => return (None, released),
            Ok(n) => released.extend_from_slice(&buf[..n]),
            Err(e) => {
                let outcome = Outcome::of_io(&e);
                // SPEC 6.4: it keeps failing, and never reports a clean end.
                // (The class of the later errors is not checked: after an
                // error from below the payload layer, an armor or signature
                // failure, later reads report a plain I/O error.)
                for _ in 0..2 {
                    if let Ok(n) = plaintext.read(&mut buf) {
                        panic!("a read after a failure returned Ok({n})");
                    }
                }
                return (Some(outcome), released);
            }
        }
    }
}

/// Like [`decode`], but the payload goes through the parallel decryptor the
/// CLI uses (`kapsel_codec::hazmat::parallel::decrypt_payload`) with `threads`
/// threads; the released plaintext is what it wrote before it stopped.
pub fn decode_parallel(
    data: &[u8],
    armored: bool,
    identities: &[Identity],
    threads: usize,
) -> (Option<Outcome>, Vec<u8>) {
    decode_parallel_with(data, armored, &Keyring::from(identities), threads)
}

/// [`decode_parallel`] with every kind of key.
pub fn decode_parallel_with(
    data: &[u8],
    armored: bool,
    keys: &Keyring,
    threads: usize,
) -> (Option<Outcome>, Vec<u8>) {
    let reader: Box<dyn Read + Send + '_> = if armored {
        Box::new(ArmoredReader::new(BufReader::new(data)))
    } else {
        Box::new(data)
    };
    let plaintext = match Decryptor::new(reader).and_then(|d| d.decrypt_with(keys)) {
        Ok(p) => p,
        Err(e) => return (Some(e.outcome()), Vec::new()),
    };
    let mut released = Vec::new();
    match plaintext.decrypt_to(&mut released, threads, &mut || Ok(())) {
        Ok(_) => (None, released),
        Err(kapsel_codec::hazmat::parallel::CopyError::Input(e)) => {
            (Some(Outcome::of_io(&e)), released)
        }
        Err(e) => panic!("writing to a Vec failed: {e}"),
    }
}
