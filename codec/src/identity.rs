//! The identity abstraction: the two private-key operations kapsel needs,
//! P-256 Diffie-Hellman (to open a stanza, SPEC.md section 5) and ECDSA
//! P-256 / SHA-256 signing (to sign segments, section 6.5), behind a trait,
//! so that a key that never leaves a hardware token (PKCS#11, a TPM, an
//! agent) can decrypt without the codec's internals changing.
//!
//! [`Identity`] is the in-memory implementation. A token-backed one
//! implements [`IdentityKey`] and is passed to
//! [`Keyring::with_keys`](crate::Keyring::with_keys).

use zeroize::Zeroizing;

use crate::keys::{Identity, Recipient};

/// A shared secret from P-256 Diffie-Hellman: the 32-byte x-coordinate of
/// the shared point. Zeroized on drop; no `Debug` of its bytes.
pub struct SharedSecret(Zeroizing<[u8; 32]>);

impl SharedSecret {
    /// Wraps the x-coordinate an implementation computed.
    pub fn new(x: [u8; 32]) -> Self {
        SharedSecret(Zeroizing::new(x))
    }

    pub(crate) fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl std::fmt::Debug for SharedSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SharedSecret(..)")
    }
}

/// Why a private-key operation failed (a token removed, a PIN refused).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// The key's device or service failed; the source says how.
    #[error("the identity's key is not available")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The key returned a signature that does not verify under its own
    /// public key (a faulty device, or one that holds another key).
    #[error("the identity's key made a signature that does not verify")]
    InvalidSignature,
}

impl From<IdentityError> for std::io::Error {
    /// An `io::Error` that carries the `IdentityError`; see
    /// [`EncryptError::from_io`](crate::EncryptError::from_io).
    fn from(e: IdentityError) -> Self {
        std::io::Error::other(e)
    }
}

/// A P-256 private key, wherever it lives.
///
/// Implementations do only the raw operations; everything around them
/// (point validation, HPKE, the signed transcript, low-`s` normalisation)
/// stays in the codec, so an implementation cannot get the format wrong.
///
/// ```
/// use std::io::{Read, Write};
/// use kapsel_codec::{Decryptor, Encryptor, Identity, IdentityKey, Keyring};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let alice = Identity::generate();
/// let mut w = Encryptor::new([alice.to_recipient()])?.wrap_output(Vec::new())?;
/// w.write_all(b"hi")?;
/// let file = w.finish()?;
/// let keys: [&dyn IdentityKey; 1] = [&alice];   // or a token-backed key
/// let mut out = Vec::new();
/// let keyring = Keyring::new().with_keys(keys);
/// Decryptor::new(&file[..])?.decrypt_with(&keyring)?.read_to_end(&mut out)?;
/// assert_eq!(out, b"hi");
/// # Ok(())
/// # }
/// ```
pub trait IdentityKey: Send + Sync {
    /// The public key of this identity.
    fn recipient(&self) -> Recipient;

    /// P-256 Diffie-Hellman of this key with `peer` (a point the codec has
    /// already validated): the x-coordinate of the shared point.
    fn diffie_hellman(&self, peer: &Recipient) -> Result<SharedSecret, IdentityError>;

    /// An ECDSA P-256 / SHA-256 signature over `message` (the codec hashes
    /// nothing itself), as `r || s`, 32 bytes each. Either `s` will do; the
    /// codec writes the low one.
    fn sign(&self, message: &[u8]) -> Result<[u8; 64], IdentityError>;
}

impl IdentityKey for Identity {
    fn recipient(&self) -> Recipient {
        self.to_recipient()
    }

    fn diffie_hellman(&self, peer: &Recipient) -> Result<SharedSecret, IdentityError> {
        Ok(SharedSecret(
            self.secret_key().diffie_hellman(peer.public_key()),
        ))
    }

    fn sign(&self, message: &[u8]) -> Result<[u8; 64], IdentityError> {
        Ok(crate::segment::sign_p1363(self.secret_key(), message))
    }
}
