//! AES-256-GCM, the one AEAD kapsel uses (HPKE key wrap and payload chunks),
//! from AWS-LC through `aws-lc-rs` (in the `fips` build, the FIPS module's).
//!
//! Nonces are the caller's: HPKE's `ComputeNonce` and Cobblestone's derived
//! chunk nonces. (AWS-LC's FIPS security policy counts AES-GCM sealing with
//! an externally chosen nonce as a non-approved service; see the README's
//! "FIPS build".)
//!
//! Invariant: [`Aes256Gcm::open_in_place`] returns plaintext only after the
//! tag verified; on failure the buffer's contents are unspecified and must
//! not be released.

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};

/// AES-256-GCM key length.
pub const KEY_LEN: usize = 32;
/// AES-GCM nonce length used throughout kapsel.
pub const NONCE_LEN: usize = 12;
/// AES-GCM tag length.
pub const TAG_LEN: usize = 16;

/// A tag did not verify. Deliberately carries no detail.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("authentication failed")]
pub struct OpenError;

/// An AES-256-GCM key, ready to seal and open with caller-chosen nonces.
pub struct Aes256Gcm(LessSafeKey);

impl std::fmt::Debug for Aes256Gcm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Aes256Gcm(..)")
    }
}

impl Aes256Gcm {
    /// A key from its 32 bytes.
    pub fn new(key: &[u8; KEY_LEN]) -> Self {
        // A 32-byte key always has the length AES_256_GCM requires.
        #[allow(clippy::expect_used)]
        let unbound = UnboundKey::new(&AES_256_GCM, key).expect("32-byte AES-256 key");
        Aes256Gcm(LessSafeKey::new(unbound))
    }

    /// Encrypts `buf` in place and returns the tag.
    pub fn seal_in_place(
        &self,
        nonce: [u8; NONCE_LEN],
        aad: &[u8],
        buf: &mut [u8],
    ) -> [u8; TAG_LEN] {
        // AES-GCM sealing fails only for inputs over 2^36 bytes; kapsel never
        // seals more than one 16 KiB chunk at a time.
        #[allow(clippy::expect_used)]
        let tag = self
            .0
            .seal_in_place_separate_tag(Nonce::assume_unique_for_key(nonce), Aad::from(aad), buf)
            .expect("AES-GCM input within limits");
        let mut out = [0u8; TAG_LEN];
        out.copy_from_slice(tag.as_ref());
        out
    }

    /// Decrypts `ciphertext` in place, checking `tag`; returns the plaintext
    /// (the same slice) only when the tag verified.
    pub fn open_in_place<'a>(
        &self,
        nonce: [u8; NONCE_LEN],
        aad: &[u8],
        ciphertext: &'a mut [u8],
        tag: &[u8; TAG_LEN],
    ) -> Result<&'a mut [u8], OpenError> {
        self.0
            .open_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad),
                &tag[..],
                ciphertext,
            )
            .map_err(|_| OpenError)
    }
}
