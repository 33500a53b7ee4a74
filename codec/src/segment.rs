//! Signed segments (SPEC.md section 6.5): the body of a signed file is its
//! chunks grouped into segments of [`SEGMENT_CHUNKS`], each followed by the
//! sender's 64-byte ECDSA P-256 / SHA-256 signature (`r || s`, low `s`) over
//!
//! ```text
//! "kapsel/v1 segment" || 0x00 || SHA-256(header) || salt || commitment
//!     || u64 index || u8 final || SHA-256(the segment's chunk bytes)
//! ```
//!
//! Invariants:
//! - [`SegmentSigner`] always emits low-`s` signatures; [`SegmentVerifier`]
//!   refuses high-`s` ones and `r`, `s` outside `[1, n-1]`, so a signed file
//!   has one valid encoding.
//! - A verifier is bound to one header, salt and commitment at construction:
//!   a segment verifies only in the file it was signed for, at its own index
//!   and with its own final flag.
//! - Callers verify a segment's bytes from memory and open its chunks from
//!   those same bytes: nothing here reads a source.
//!
//! [`BodyUnits`] holds the arithmetic of the body's units (a chunk, or a
//! segment with its signature) that the parallel and seekable paths share.

use std::sync::Arc;

use aws_lc_rs::digest;
use aws_lc_rs::signature::{
    EcdsaKeyPair, ParsedPublicKey, ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING,
};

use crate::ec::{PublicKey, SecretKey, ORDER};
use crate::identity::{IdentityError, IdentityKey};

use crate::payload::{CHUNK_SIZE, COMMITMENT_LEN, ENCRYPTED_CHUNK_SIZE, SALT_LEN};

/// Chunks per segment.
pub const SEGMENT_CHUNKS: usize = 64;
/// Length of a segment signature.
pub const SIGNATURE_LEN: usize = 64;
/// Chunk bytes of a full segment.
pub const SEGMENT_CHUNK_BYTES: usize = SEGMENT_CHUNKS * ENCRYPTED_CHUNK_SIZE;
/// Bytes of a full (non-final) segment: its chunks and its signature.
pub const FULL_SEGMENT_LEN: usize = SEGMENT_CHUNK_BYTES + SIGNATURE_LEN;
/// Plaintext bytes of a full segment (1 MiB).
pub const SEGMENT_PLAINTEXT: usize = SEGMENT_CHUNKS * CHUNK_SIZE;
/// Shortest final segment: an empty final chunk (its tag) and the signature.
pub const MIN_FINAL_SEGMENT_LEN: usize = crate::aead::TAG_LEN + SIGNATURE_LEN;
/// Domain-separation prefix of the signed message.
pub const SEGMENT_LABEL: &[u8] = b"kapsel/v1 segment\x00";
/// Length of the signed message.
pub const SIGNED_MESSAGE_LEN: usize =
    SEGMENT_LABEL.len() + 32 + SALT_LEN + COMMITMENT_LEN + 8 + 1 + 32;

/// The unit a body is verified in: an encrypted chunk in an anonymous
/// file, a segment with its signature in a signed one (SPEC.md sections
/// 6.3 and 6.5). Every offset in a run of units that starts on a unit
/// boundary follows from it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BodyUnits {
    /// Whether the body is in signed segments.
    pub(crate) signed: bool,
}

impl BodyUnits {
    pub(crate) const fn new(signed: bool) -> Self {
        BodyUnits { signed }
    }

    /// Plaintext bytes of a full unit: a chunk, or a segment's 64 chunks.
    pub(crate) const fn plaintext_unit(self) -> usize {
        if self.signed {
            SEGMENT_PLAINTEXT
        } else {
            CHUNK_SIZE
        }
    }

    /// Bytes of a full unit in the file: an encrypted chunk, or a
    /// segment's chunks and its signature.
    pub(crate) const fn ciphertext_unit(self) -> usize {
        if self.signed {
            FULL_SEGMENT_LEN
        } else {
            ENCRYPTED_CHUNK_SIZE
        }
    }

    /// Offset of chunk `k` of a run from the run's start.
    pub(crate) const fn chunk_offset(self, k: usize) -> usize {
        if self.signed {
            (k / SEGMENT_CHUNKS) * FULL_SEGMENT_LEN + (k % SEGMENT_CHUNKS) * ENCRYPTED_CHUNK_SIZE
        } else {
            k * ENCRYPTED_CHUNK_SIZE
        }
    }

    /// Bytes of a run of `chunks` full chunks (with the signatures of the
    /// segments they start).
    pub(crate) const fn capacity(self, chunks: usize) -> usize {
        if self.signed {
            chunks.div_ceil(SEGMENT_CHUNKS) * FULL_SEGMENT_LEN
        } else {
            chunks * ENCRYPTED_CHUNK_SIZE
        }
    }
}

/// A segment signature that did not verify.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureError {
    /// The signature of segment `segment` is not the sender's over this
    /// segment (or is not in canonical low-`s` form).
    #[error("sender signature of segment {segment} invalid")]
    Invalid {
        /// The zero-based segment index.
        segment: u64,
    },
}

impl From<SignatureError> for std::io::Error {
    fn from(e: SignatureError) -> Self {
        std::io::Error::new(std::io::ErrorKind::InvalidData, e)
    }
}

/// SHA-256 of a segment's chunk bytes, computed at once or piecewise.
#[derive(Clone)]
pub struct SegmentHasher(digest::Context);

impl std::fmt::Debug for SegmentHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SegmentHasher(..)")
    }
}

impl Default for SegmentHasher {
    fn default() -> Self {
        SegmentHasher(digest::Context::new(&digest::SHA256))
    }
}

impl SegmentHasher {
    /// Adds chunk bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    /// The digest of everything added.
    pub fn finish(self) -> [u8; 32] {
        let mut out = [0u8; 32];
        out.copy_from_slice(self.0.finish().as_ref());
        out
    }

    /// The digest of `bytes`.
    pub fn digest(bytes: &[u8]) -> [u8; 32] {
        let mut h = Self::default();
        h.update(bytes);
        h.finish()
    }
}

/// What every signature of one file covers besides its segment: the
/// header's hash, the salt and the commitment.
#[derive(Clone, Copy)]
struct FileBinding {
    header_hash: [u8; 32],
    salt: [u8; SALT_LEN],
    commitment: [u8; COMMITMENT_LEN],
}

impl FileBinding {
    fn new(header: &[u8], payload_prefix: &[u8; SALT_LEN + COMMITMENT_LEN]) -> Self {
        let mut salt = [0u8; SALT_LEN];
        salt.copy_from_slice(&payload_prefix[..SALT_LEN]);
        let mut commitment = [0u8; COMMITMENT_LEN];
        commitment.copy_from_slice(&payload_prefix[SALT_LEN..]);
        FileBinding {
            header_hash: SegmentHasher::digest(header),
            salt,
            commitment,
        }
    }

    /// `signed_j` of SPEC.md section 6.5.
    fn message(&self, index: u64, is_final: bool, digest: &[u8; 32]) -> [u8; SIGNED_MESSAGE_LEN] {
        let mut m = [0u8; SIGNED_MESSAGE_LEN];
        let parts: [&[u8]; 7] = [
            SEGMENT_LABEL,
            &self.header_hash,
            &self.salt,
            &self.commitment,
            &index.to_be_bytes(),
            &[u8::from(is_final)],
            digest,
        ];
        let mut at = 0;
        for p in parts {
            m[at..at + p.len()].copy_from_slice(p);
            at += p.len();
        }
        m
    }
}

/// A signature function that stands in for the sender's key: given the
/// 147-byte signed message of SPEC.md section 6.5, it returns `r || s`
/// (low `s`). Hazardous, for reproducible conformance vectors only (the
/// generator signs with RFC 6979 deterministic nonces); nothing checks that
/// it signs as the sender the header names.
#[doc(hidden)]
#[derive(Clone)]
pub struct ExternalSigner(Arc<SignFn>);

type SignFn = dyn Fn(&[u8]) -> [u8; SIGNATURE_LEN] + Send + Sync;

impl ExternalSigner {
    #[cfg_attr(not(feature = "hazmat"), allow(dead_code))] // used through `hazmat`
    /// Wraps `sign`.
    pub fn new(sign: impl Fn(&[u8]) -> [u8; SIGNATURE_LEN] + Send + Sync + 'static) -> Self {
        ExternalSigner(Arc::new(sign))
    }
}

impl std::fmt::Debug for ExternalSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ExternalSigner(..)")
    }
}

enum SignWith {
    /// An in-memory key: AWS-LC signs.
    Key(EcdsaKeyPair),
    /// A key elsewhere (a token): it signs, and every signature it returns
    /// is checked against its public key before it is written.
    Device(Arc<dyn IdentityKey>, ParsedPublicKey),
    External(ExternalSigner),
}

/// Signs the segments of one file. Its `Debug` output shows no key.
///
/// Real files are signed by AWS-LC (randomized nonces) or by an
/// [`IdentityKey`] (a token), low-`s` normalized here; conformance vectors
/// through an [`ExternalSigner`]. A signature from an [`IdentityKey`] is
/// verified before it is returned, so a faulty or hostile device cannot
/// make a file that its receiver refuses only at its last segment.
pub struct SegmentSigner {
    binding: FileBinding,
    with: SignWith,
}

impl std::fmt::Debug for SegmentSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SegmentSigner")
            .field("external", &matches!(self.with, SignWith::External(_)))
            .field("device", &matches!(self.with, SignWith::Device(..)))
            .finish_non_exhaustive()
    }
}

/// `floor(n / 2)`: `s` is low when `s <= HALF_ORDER`.
const HALF_ORDER: [u8; 32] = [
    0x7f, 0xff, 0xff, 0xff, 0x80, 0x00, 0x00, 0x00, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xde, 0x73, 0x7d, 0x56, 0xd3, 0x8b, 0xcf, 0x42, 0x79, 0xdc, 0xe5, 0x61, 0x7e, 0x31, 0x92, 0xa8,
];

/// Whether the 32-byte big-endian scalar `s` is high (`s > n/2`).
/// Signatures are public: no constant time needed.
fn is_high(s: &[u8]) -> bool {
    s > &HALF_ORDER[..]
}

/// `r || s` with `s` replaced by `n - s` when it is high: the canonical
/// form SPEC.md section 6.5 requires. (Plain 256-bit subtraction on the
/// big-endian bytes; `s < n` for every signature AWS-LC makes.)
fn low_s(signature: &[u8; SIGNATURE_LEN]) -> [u8; SIGNATURE_LEN] {
    let mut out = *signature;
    if is_high(&signature[32..]) {
        let mut borrow = 0u16;
        for i in (0..32).rev() {
            let d = u16::from(ORDER[i]) + 0x100 - u16::from(signature[32 + i]) - borrow;
            out[32 + i] = d as u8;
            borrow = u16::from(d < 0x100);
        }
    }
    out
}

impl SegmentSigner {
    /// A signer for the file with these header bytes and payload prefix
    /// (salt and commitment), signing with `secret` (randomized nonces).
    pub fn new(
        secret: &SecretKey,
        header: &[u8],
        payload_prefix: &[u8; SALT_LEN + COMMITMENT_LEN],
    ) -> Self {
        SegmentSigner {
            binding: FileBinding::new(header, payload_prefix),
            with: SignWith::Key(key_pair(secret)),
        }
    }

    /// A signer whose signatures come from `key` (a token or other device),
    /// each checked against `key`'s public key.
    pub fn with_key(
        key: Arc<dyn IdentityKey>,
        header: &[u8],
        payload_prefix: &[u8; SALT_LEN + COMMITMENT_LEN],
    ) -> Result<Self, IdentityError> {
        let public = key.recipient();
        let parsed = ParsedPublicKey::new(
            &ECDSA_P256_SHA256_FIXED,
            public.public_key().as_uncompressed(),
        )
        .map_err(|_| IdentityError::InvalidSignature)?;
        Ok(SegmentSigner {
            binding: FileBinding::new(header, payload_prefix),
            with: SignWith::Device(key, parsed),
        })
    }

    /// A signer whose signatures come from `external` (conformance vectors).
    #[doc(hidden)]
    pub fn with_external(
        external: ExternalSigner,
        header: &[u8],
        payload_prefix: &[u8; SALT_LEN + COMMITMENT_LEN],
    ) -> Self {
        SegmentSigner {
            binding: FileBinding::new(header, payload_prefix),
            with: SignWith::External(external),
        }
    }

    /// The signature of segment `index` whose chunk bytes hash to `digest`.
    /// Fails only for a device key that fails or signs wrongly.
    pub fn sign_digest(
        &self,
        index: u64,
        is_final: bool,
        digest: &[u8; 32],
    ) -> Result<[u8; SIGNATURE_LEN], IdentityError> {
        let message = self.binding.message(index, is_final, digest);
        match &self.with {
            SignWith::External(f) => Ok(low_s(&(f.0)(&message))),
            SignWith::Key(pair) => Ok(low_s(&sign_with(pair, &message))),
            SignWith::Device(key, public) => {
                let sig = low_s(&key.sign(&message)?);
                if verify_with(public, &message, &sig, true) {
                    Ok(sig)
                } else {
                    Err(IdentityError::InvalidSignature)
                }
            }
        }
    }

    /// The signature of segment `index` with these chunk bytes.
    pub fn sign(
        &self,
        index: u64,
        is_final: bool,
        chunk_bytes: &[u8],
    ) -> Result<[u8; SIGNATURE_LEN], IdentityError> {
        self.sign_digest(index, is_final, &SegmentHasher::digest(chunk_bytes))
    }
}

/// The ECDSA key pair of `secret`.
fn key_pair(secret: &SecretKey) -> EcdsaKeyPair {
    // A validated scalar and its own public point always form a key pair;
    // AWS-LC fails here only if it cannot allocate.
    #[allow(clippy::expect_used)]
    EcdsaKeyPair::from_private_key_and_public_key(
        &ECDSA_P256_SHA256_FIXED_SIGNING,
        &secret.to_bytes()[..],
        secret.public_key().as_uncompressed(),
    )
    .expect("ECDSA key pair of a valid P-256 key")
}

/// ECDSA P-256 / SHA-256 over `message`, `r || s`, randomized nonce.
fn sign_with(pair: &EcdsaKeyPair, message: &[u8]) -> [u8; SIGNATURE_LEN] {
    // ECDSA signing fails only if AWS-LC cannot allocate or its generator
    // fails, both of which abort the process.
    #[allow(clippy::expect_used)]
    let sig = pair
        .sign(&aws_lc_rs::rand::SystemRandom::new(), message)
        .expect("ECDSA P-256 signature");
    let mut out = [0u8; SIGNATURE_LEN];
    // ECDSA_P256_SHA256_FIXED_SIGNING returns exactly r || s.
    out.copy_from_slice(sig.as_ref());
    out
}

/// ECDSA P-256 / SHA-256 over `message` with `secret`, low `s`: what
/// [`IdentityKey::sign`](crate::IdentityKey::sign) does for an in-memory key.
pub(crate) fn sign_p1363(secret: &SecretKey, message: &[u8]) -> [u8; SIGNATURE_LEN] {
    low_s(&sign_with(&key_pair(secret), message))
}

/// The check every segment signature goes through: 64 bytes, `s` low if
/// `require_low_s`, and ECDSA P-256 / SHA-256 over `message` in AWS-LC,
/// which refuses `r` and `s` outside `[1, n-1]`.
fn verify_with(
    key: &ParsedPublicKey,
    message: &[u8],
    signature: &[u8],
    require_low_s: bool,
) -> bool {
    if signature.len() != SIGNATURE_LEN {
        return false;
    }
    if require_low_s && is_high(&signature[32..]) {
        return false;
    }
    key.verify_sig(message, signature).is_ok()
}

#[cfg_attr(not(feature = "hazmat"), allow(dead_code))] // used through `hazmat`
/// [`SegmentVerifier`]'s primitive on its own, for checking it against
/// external ECDSA vectors: `point` is an uncompressed SEC1 point, `signature`
/// IEEE P1363 `r || s`. Not for files: segment signatures go through
/// [`SegmentVerifier`], which binds them to one file and segment.
#[doc(hidden)]
pub fn verify_p1363(point: &[u8], message: &[u8], signature: &[u8], require_low_s: bool) -> bool {
    ParsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point)
        .is_ok_and(|key| verify_with(&key, message, signature, require_low_s))
}

/// Verifies the segments of one file.
pub struct SegmentVerifier {
    binding: FileBinding,
    key: ParsedPublicKey,
    sender: PublicKey,
}

impl std::fmt::Debug for SegmentVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SegmentVerifier").finish_non_exhaustive()
    }
}

impl SegmentVerifier {
    /// A verifier for the file with these header bytes and payload prefix,
    /// signed by `sender` (a validated point). `None` if the backend refuses
    /// the point, which a validated point never is.
    pub fn new(
        sender: &PublicKey,
        header: &[u8],
        payload_prefix: &[u8; SALT_LEN + COMMITMENT_LEN],
    ) -> Option<Self> {
        let key = ParsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, sender.as_uncompressed()).ok()?;
        Some(SegmentVerifier {
            binding: FileBinding::new(header, payload_prefix),
            key,
            sender: *sender,
        })
    }

    /// The sender key signatures are checked against.
    pub fn sender(&self) -> &PublicKey {
        &self.sender
    }

    /// Checks the signature of segment `index` whose chunk bytes hash to
    /// `digest`.
    pub fn verify_digest(
        &self,
        index: u64,
        is_final: bool,
        digest: &[u8; 32],
        signature: &[u8],
    ) -> Result<(), SignatureError> {
        let message = self.binding.message(index, is_final, digest);
        if verify_with(&self.key, &message, signature, true) {
            Ok(())
        } else {
            Err(SignatureError::Invalid { segment: index })
        }
    }

    /// Checks the signature of segment `index` over these chunk bytes.
    pub fn verify(
        &self,
        index: u64,
        is_final: bool,
        chunk_bytes: &[u8],
        signature: &[u8],
    ) -> Result<(), SignatureError> {
        self.verify_digest(
            index,
            is_final,
            &SegmentHasher::digest(chunk_bytes),
            signature,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn low_s_maps_high_s_to_n_minus_s_and_keeps_low_s() {
        let mut sig = [0u8; SIGNATURE_LEN];
        sig[..32].fill(7);
        // s = n - 1 (high) becomes 1.
        sig[32..].copy_from_slice(&ORDER);
        sig[63] -= 1;
        let low = low_s(&sig);
        assert_eq!(low[..32], sig[..32]);
        let mut one = [0u8; 32];
        one[31] = 1;
        assert_eq!(low[32..], one);
        // s = floor(n/2) is low and stays; floor(n/2) + 1 is high and becomes floor(n/2).
        sig[32..].copy_from_slice(&HALF_ORDER);
        assert_eq!(low_s(&sig), sig);
        let mut above = HALF_ORDER;
        above[31] += 1;
        sig[32..].copy_from_slice(&above);
        assert_eq!(low_s(&sig)[32..], HALF_ORDER);
        assert!(!is_high(&HALF_ORDER) && is_high(&above));
    }

    #[test]
    fn signatures_are_low_s_and_verify_and_high_s_is_refused() {
        let key = SecretKey::generate();
        let prefix = [3u8; SALT_LEN + COMMITMENT_LEN];
        let signer = SegmentSigner::new(&key, b"header", &prefix);
        let verifier = SegmentVerifier::new(key.public_key(), b"header", &prefix).expect("key");
        let mut saw_flip = false;
        for i in 0..64 {
            let sig = signer.sign(i, false, b"chunks").unwrap();
            assert!(!is_high(&sig[32..]));
            assert_eq!(verifier.verify(i, false, b"chunks", &sig), Ok(()));
            assert!(verifier.verify(i, true, b"chunks", &sig).is_err());
            // The same signature with s replaced by n - s is valid ECDSA but high.
            let mut high = sig;
            let mut borrow = 0u16;
            for j in (0..32).rev() {
                let d = u16::from(ORDER[j]) + 0x100 - u16::from(sig[32 + j]) - borrow;
                high[32 + j] = d as u8;
                borrow = u16::from(d < 0x100);
            }
            saw_flip |= is_high(&high[32..]);
            let message = verifier
                .binding
                .message(i, false, &SegmentHasher::digest(b"chunks"));
            assert!(verify_with(&verifier.key, &message, &high, false));
            assert_eq!(
                verifier.verify(i, false, b"chunks", &high),
                Err(SignatureError::Invalid { segment: i })
            );
        }
        assert!(saw_flip);
    }
}
