//! A sender key that lives elsewhere (a token) signs through
//! `Encryptor::sender_key`: its files verify like those of an in-memory
//! sender, and a key that fails or signs wrongly mid-file ends the
//! encryption with a typed error and an unfinished file that no decoder
//! accepts, never a file with a missing or wrong signature.

// Helpers outside `#[test]` functions unwrap too; clippy.toml allows it only
// inside them.
#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use kapsel_codec::{
    CopyError, DecryptError, Decryptor, EncryptError, Encryptor, Identity, IdentityError,
    IdentityKey, Outcome, Recipient, SharedSecret, CHUNK_SIZE,
};

/// Plaintext of one full signed segment (64 chunks).
const SEGMENT: usize = 64 * CHUNK_SIZE;

/// How the stand-in token misbehaves.
#[derive(Clone, Copy)]
enum Fault {
    None,
    /// Fails from the signature with this zero-based number on.
    RemovedAt(usize),
    /// Signs with another key while claiming the right public key.
    WrongKey,
    /// Returns the high-`s` twin of a valid signature (the codec
    /// normalizes it).
    HighS,
}

struct Token {
    inner: Identity,
    other: Identity,
    fault: Fault,
    signatures: AtomicUsize,
}

#[derive(Debug, thiserror::Error)]
#[error("token removed")]
struct Removed;

impl Token {
    fn new(fault: Fault) -> Arc<Token> {
        Arc::new(Token {
            inner: Identity::generate(),
            other: Identity::generate(),
            fault,
            signatures: AtomicUsize::new(0),
        })
    }
}

/// n - s for a 32-byte big-endian s (P-256 group order n).
fn negate(s: &[u8]) -> [u8; 32] {
    const N: [u8; 32] = [
        0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63,
        0x25, 0x51,
    ];
    let mut out = [0u8; 32];
    let mut borrow = 0i16;
    for i in (0..32).rev() {
        let mut d = i16::from(N[i]) - i16::from(s[i]) - borrow;
        borrow = i16::from(d < 0);
        if d < 0 {
            d += 256;
        }
        out[i] = d as u8;
    }
    out
}

impl IdentityKey for Token {
    fn recipient(&self) -> Recipient {
        self.inner.to_recipient()
    }

    fn diffie_hellman(&self, peer: &Recipient) -> Result<SharedSecret, IdentityError> {
        self.inner.diffie_hellman(peer)
    }

    fn sign(&self, message: &[u8]) -> Result<[u8; 64], IdentityError> {
        let n = self.signatures.fetch_add(1, Ordering::SeqCst);
        match self.fault {
            Fault::RemovedAt(k) if n >= k => Err(IdentityError::Unavailable(Box::new(Removed))),
            Fault::WrongKey => self.other.sign(message),
            Fault::HighS => {
                let mut sig = self.inner.sign(message)?;
                let high = negate(&sig[32..]);
                sig[32..].copy_from_slice(&high);
                Ok(sig)
            }
            _ => self.inner.sign(message),
        }
    }
}

fn plaintext(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 4099) as u8).collect()
}

/// Encrypts `data` to `to`, signed by `token`, through the parallel path.
fn encrypt_parallel(token: &Arc<Token>, to: &Identity, data: &[u8]) -> Result<Vec<u8>, CopyError> {
    Encryptor::new([to.to_recipient()])
        .unwrap()
        .sender_key(Arc::clone(token) as Arc<dyn IdentityKey>)
        .wrap_output(Vec::new())
        .unwrap()
        .encrypt_from(data, 2)
}

/// Decrypts `file` with `id`: what was released, and how it ended (the
/// sender whose signatures verified, on success).
fn decrypt(id: &Identity, file: &[u8]) -> (Vec<u8>, Result<Recipient, DecryptError>) {
    let mut out = Vec::new();
    let reader = match Decryptor::new(file).and_then(|d| d.decrypt(std::slice::from_ref(id))) {
        Ok(r) => r,
        Err(e) => return (out, Err(e)),
    };
    // The claimed sender is the verified one once every segment verified.
    let sender = reader.claimed_sender().map(|c| c.unverified_key().clone());
    match reader.decrypt_to(&mut out, 1, &mut || Ok(())) {
        Ok(_) => (
            out,
            sender.ok_or(DecryptError::Io(std::io::Error::other("unsigned"))),
        ),
        Err(e) => (out, Err(DecryptError::from_io(e.into()))),
    }
}

#[test]
fn a_device_key_signs_files_that_verify_as_its_recipient() {
    let bob = Identity::generate();
    let data = plaintext(3 * SEGMENT + 1000);
    for fault in [Fault::None, Fault::HighS] {
        let token = Token::new(fault);
        let file = encrypt_parallel(&token, &bob, &data).unwrap();
        // Four segments: one signature each.
        assert_eq!(token.signatures.load(Ordering::SeqCst), 4);
        let (out, sender) = decrypt(&bob, &file);
        assert_eq!(out, data);
        assert_eq!(sender.unwrap(), token.recipient());
    }
}

#[test]
fn the_sequential_writer_signs_through_the_device_too() {
    let bob = Identity::generate();
    let token = Token::new(Fault::None);
    let data = plaintext(SEGMENT + 5);
    let mut w = Encryptor::new([bob.to_recipient()])
        .unwrap()
        .sender_key(Arc::clone(&token) as Arc<dyn IdentityKey>)
        .wrap_output(Vec::new())
        .unwrap();
    for piece in data.chunks(10_000) {
        w.write_all(piece).unwrap();
    }
    let file = w.finish().unwrap();
    let (out, sender) = decrypt(&bob, &file);
    assert_eq!(out, data);
    assert_eq!(sender.unwrap(), token.recipient());
}

#[test]
fn a_token_removed_mid_file_ends_in_a_signer_error_and_an_unfinished_file() {
    let bob = Identity::generate();
    let data = plaintext(5 * SEGMENT);
    let token = Token::new(Fault::RemovedAt(2));
    let err = encrypt_parallel(&token, &bob, &data).unwrap_err();
    assert!(
        matches!(err, CopyError::Signer(IdentityError::Unavailable(_))),
        "{err:?}"
    );

    // What a writer that keeps the partial output would hold: exactly the
    // segments signed before the failure, never an unsigned one.
    let mut partial = Vec::new();
    let result = Encryptor::new([bob.to_recipient()])
        .unwrap()
        .sender_key(Token::new(Fault::RemovedAt(2)) as Arc<dyn IdentityKey>)
        .wrap_output(&mut partial)
        .unwrap()
        .encrypt_from(&data[..], 1);
    assert!(matches!(result, Err(CopyError::Signer(_))));
    let (released, outcome) = decrypt(&bob, &partial);
    assert_eq!(
        released,
        data[..2 * SEGMENT],
        "only signed segments are released"
    );
    assert_eq!(outcome.unwrap_err().outcome(), Outcome::PayloadFailed);
}

#[test]
fn a_device_that_signs_with_another_key_is_caught_before_the_signature_is_written() {
    let bob = Identity::generate();
    let token = Token::new(Fault::WrongKey);
    let err = encrypt_parallel(&token, &bob, &plaintext(1000)).unwrap_err();
    assert!(
        matches!(err, CopyError::Signer(IdentityError::InvalidSignature)),
        "{err:?}"
    );

    // Through `Write`: the error comes back as an `io::Error`, and
    // `EncryptError::from_io` recovers it.
    let mut w = Encryptor::new([bob.to_recipient()])
        .unwrap()
        .sender_key(Token::new(Fault::WrongKey) as Arc<dyn IdentityKey>)
        .wrap_output(Vec::new())
        .unwrap();
    w.write_all(b"short").unwrap();
    let io = w.finish().unwrap_err();
    assert!(matches!(
        EncryptError::from_io(io),
        EncryptError::Identity(IdentityError::InvalidSignature)
    ));
}

#[test]
fn from_io_keeps_other_errors() {
    let e = EncryptError::from_io(std::io::Error::new(std::io::ErrorKind::WriteZero, "full"));
    assert!(matches!(e, EncryptError::Io(ref io) if io.kind() == std::io::ErrorKind::WriteZero));
    let e = EncryptError::from_io(std::io::Error::from_raw_os_error(28));
    assert!(matches!(e, EncryptError::Io(ref io) if io.raw_os_error() == Some(28)));
}

#[test]
fn reading_a_device_signed_file_needs_no_device() {
    // The receiver checks against the header's sender key only.
    let bob = Identity::generate();
    let token = Token::new(Fault::None);
    let file = encrypt_parallel(&token, &bob, b"hello").unwrap();
    let mut out = Vec::new();
    let mut r = Decryptor::new(&file[..])
        .unwrap()
        .decrypt(std::slice::from_ref(&bob))
        .unwrap();
    r.read_to_end(&mut out).unwrap();
    assert_eq!(out, b"hello");
}
