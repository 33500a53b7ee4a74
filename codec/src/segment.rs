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
//! The layout helpers ([`SegmentLayout`]) compute where segments and chunks
//! lie from the payload length alone, for the seekable path.

use aws_lc_rs::digest;
use aws_lc_rs::signature::{
    EcdsaKeyPair, ParsedPublicKey, ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING,
};
use p256::ecdsa::Signature;
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::{PublicKey, SecretKey};

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

/// Signs the segments of one file. Its `Debug` output shows no key.
///
/// Real files are signed by aws-lc with randomized nonces; conformance
/// vectors, which must be reproducible byte for byte, with RFC 6979
/// deterministic nonces (p256). Both are low-`s` normalized.
pub struct SegmentSigner {
    binding: FileBinding,
    /// `None`: deterministic signing.
    randomized: Option<EcdsaKeyPair>,
    deterministic: p256::ecdsa::SigningKey,
}

impl std::fmt::Debug for SegmentSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SegmentSigner")
            .field("randomized", &self.randomized.is_some())
            .finish_non_exhaustive()
    }
}

/// `r || s` with `s` replaced by `n - s` when it is high: the canonical
/// form SPEC.md section 6.5 requires.
fn low_s(signature: &Signature) -> [u8; SIGNATURE_LEN] {
    let sig = signature.normalize_s().unwrap_or(*signature);
    let mut out = [0u8; SIGNATURE_LEN];
    out.copy_from_slice(&sig.to_bytes());
    out
}

impl SegmentSigner {
    /// A signer for the file with these header bytes and payload prefix
    /// (salt and commitment). `deterministic` selects RFC 6979 nonces: for
    /// conformance vectors only; real files use randomized nonces.
    pub fn new(
        secret: &SecretKey,
        header: &[u8],
        payload_prefix: &[u8; SALT_LEN + COMMITMENT_LEN],
        deterministic: bool,
    ) -> Self {
        let randomized = (!deterministic)
            .then(|| {
                let public = secret.public_key().to_encoded_point(false);
                EcdsaKeyPair::from_private_key_and_public_key(
                    &ECDSA_P256_SHA256_FIXED_SIGNING,
                    &secret.to_bytes(),
                    public.as_bytes(),
                )
                .ok()
            })
            .flatten();
        SegmentSigner {
            binding: FileBinding::new(header, payload_prefix),
            randomized,
            deterministic: p256::ecdsa::SigningKey::from(secret),
        }
    }

    /// The signature of segment `index` whose chunk bytes hash to `digest`.
    pub fn sign_digest(
        &self,
        index: u64,
        is_final: bool,
        digest: &[u8; 32],
    ) -> [u8; SIGNATURE_LEN] {
        use p256::ecdsa::signature::Signer;
        let message = self.binding.message(index, is_final, digest);
        let randomized = self.randomized.as_ref().and_then(|pair| {
            let sig = pair
                .sign(&aws_lc_rs::rand::SystemRandom::new(), &message)
                .ok()?;
            Signature::from_slice(sig.as_ref()).ok()
        });
        // aws-lc fails only when it cannot allocate; a deterministic
        // signature is then just as valid.
        let sig = randomized.unwrap_or_else(|| self.deterministic.sign(&message));
        low_s(&sig)
    }

    /// The signature of segment `index` with these chunk bytes.
    pub fn sign(&self, index: u64, is_final: bool, chunk_bytes: &[u8]) -> [u8; SIGNATURE_LEN] {
        self.sign_digest(index, is_final, &SegmentHasher::digest(chunk_bytes))
    }
}

/// The check every segment signature goes through: `r` and `s` in
/// `[1, n-1]` (p256 parses), `s` low if `require_low_s`, and ECDSA P-256 /
/// SHA-256 over `message` (aws-lc verifies).
fn verify_with(
    key: &ParsedPublicKey,
    message: &[u8],
    signature: &[u8],
    require_low_s: bool,
) -> bool {
    let Ok(parsed) = Signature::from_slice(signature) else {
        return false;
    };
    if require_low_s && parsed.normalize_s().is_some() {
        return false;
    }
    key.verify_sig(message, signature).is_ok()
}

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
        let point = sender.to_encoded_point(false);
        let key = ParsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point.as_bytes()).ok()?;
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
