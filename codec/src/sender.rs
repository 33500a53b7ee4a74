//! Sender signatures (SPEC.md section 8): a file whose header names a sender
//! key ends with a 64-byte ECDSA P-256 / SHA-256 signature (`r || s`) by that
//! key over `"kapsel/v1 signature" || 0x00 || every byte before the
//! signature` (header, salt, commitment, all chunks).
//!
//! [`SigningWriter`] hashes everything written through it and appends the
//! signature on [`SigningWriter::finish`]. [`VerifyingReader`] hashes what
//! it passes on, always holds back the last 64 bytes, and at the end of input
//! verifies them as the signature: it reports end of input only after the
//! signature verified, so a payload reader on top of it cannot release the
//! final chunk of a file with a bad signature.
//!
//! Both are pass-through when built without a key (anonymous files).

use std::io::{self, Read, Write};

use p256::ecdsa::signature::{DigestSigner, DigestVerifier};
use p256::ecdsa::{Signature, SigningKey, VerifyingKey};
use p256::PublicKey;
use sha2::{Digest, Sha256};

/// Length of the signature trailer.
pub const SIGNATURE_LEN: usize = 64;
/// Domain-separation prefix of the signed message.
pub const SIGNATURE_LABEL: &[u8] = b"kapsel/v1 signature\x00";

/// The sender signature did not verify, or the file is too short to hold one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureError {
    /// The input ended before a full signature.
    #[error("sender signature missing (file truncated)")]
    Missing,
    /// The signature is not valid for the sender key over this file.
    #[error("sender signature invalid")]
    Invalid,
}

impl From<SignatureError> for io::Error {
    fn from(e: SignatureError) -> Self {
        io::Error::new(io::ErrorKind::InvalidData, e)
    }
}

fn new_transcript() -> Sha256 {
    let mut h = Sha256::new();
    h.update(SIGNATURE_LABEL);
    h
}

/// Signs or passes through everything written to it.
pub struct SigningWriter<W: Write> {
    inner: W,
    signer: Option<(SigningKey, Sha256)>,
}

impl<W: Write> std::fmt::Debug for SigningWriter<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningWriter")
            .field("signing", &self.signer.is_some())
            .finish_non_exhaustive()
    }
}

impl<W: Write> SigningWriter<W> {
    /// A writer that signs with `key`, or passes through if `None`.
    pub fn new(inner: W, key: Option<&p256::SecretKey>) -> Self {
        SigningWriter {
            inner,
            signer: key.map(|k| (SigningKey::from(k), new_transcript())),
        }
    }

    /// Appends the signature (if signing), flushes, and returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        if let Some((key, transcript)) = self.signer.take() {
            let signature: Signature = key.sign_digest(transcript);
            self.inner.write_all(&signature.to_bytes())?;
        }
        self.inner.flush()?;
        Ok(self.inner)
    }
}

impl<W: Write> Write for SigningWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        if let Some((_, transcript)) = &mut self.signer {
            transcript.update(&buf[..n]);
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[derive(Debug)]
enum VerifyState {
    Reading,
    Verified,
    Failed(SignatureError),
}

/// Verifies the signature trailer, or passes through if built without a key.
pub struct VerifyingReader<R: Read> {
    inner: R,
    verifier: Option<(VerifyingKey, Sha256)>,
    buf: Vec<u8>,
    start: usize,
    eof: bool,
    state: VerifyState,
}

impl<R: Read> std::fmt::Debug for VerifyingReader<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyingReader")
            .field("verifying", &self.verifier.is_some())
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

/// Bytes read from the inner reader at a time.
const READ_PIECE: usize = 256 * 1024;

impl<R: Read> VerifyingReader<R> {
    /// A reader that checks a trailer signed by `sender` over `header` (the
    /// header bytes, already read) and everything that follows; pass-through
    /// if `sender` is `None`.
    pub fn new(inner: R, header: &[u8], sender: Option<&PublicKey>) -> Self {
        let verifier = sender.map(|pk| {
            let mut t = new_transcript();
            t.update(header);
            (VerifyingKey::from(pk), t)
        });
        VerifyingReader {
            inner,
            verifier,
            buf: Vec::new(),
            start: 0,
            eof: false,
            state: VerifyState::Reading,
        }
    }

    /// Whether the signature has been checked and is valid (always false for
    /// an anonymous file).
    pub fn is_verified(&self) -> bool {
        matches!(self.state, VerifyState::Verified)
    }

    fn available(&self) -> usize {
        self.buf.len() - self.start
    }

    fn fill(&mut self) -> io::Result<()> {
        if self.start > 0 && self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        } else if self.start > READ_PIECE {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        let old = self.buf.len();
        self.buf.resize(old + READ_PIECE, 0);
        loop {
            match self.inner.read(&mut self.buf[old..]) {
                Ok(n) => {
                    self.buf.truncate(old + n);
                    self.eof = n == 0;
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.buf.truncate(old);
                    return Err(e);
                }
            }
        }
    }

    fn finish(&mut self) -> Result<(), SignatureError> {
        let Some((key, transcript)) = self.verifier.take() else {
            return Ok(());
        };
        if self.available() != SIGNATURE_LEN {
            return Err(SignatureError::Missing);
        }
        let signature =
            Signature::from_slice(&self.buf[self.start..]).map_err(|_| SignatureError::Invalid)?;
        key.verify_digest(transcript, &signature)
            .map_err(|_| SignatureError::Invalid)
    }
}

impl<R: Read> Read for VerifyingReader<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.verifier.is_none() && matches!(self.state, VerifyState::Reading) {
            return self.inner.read(out);
        }
        match self.state {
            VerifyState::Verified => return Ok(0),
            VerifyState::Failed(e) => return Err(e.into()),
            VerifyState::Reading => {}
        }
        if out.is_empty() {
            return Ok(0);
        }
        while self.available() <= SIGNATURE_LEN && !self.eof {
            self.fill()?;
        }
        if self.available() > SIGNATURE_LEN {
            let n = (self.available() - SIGNATURE_LEN).min(out.len());
            let piece = &self.buf[self.start..self.start + n];
            out[..n].copy_from_slice(piece);
            if let Some((_, transcript)) = &mut self.verifier {
                transcript.update(piece);
            }
            self.start += n;
            return Ok(n);
        }
        match self.finish() {
            Ok(()) => {
                self.state = VerifyState::Verified;
                Ok(0)
            }
            Err(e) => {
                self.state = VerifyState::Failed(e);
                Err(e.into())
            }
        }
    }
}
