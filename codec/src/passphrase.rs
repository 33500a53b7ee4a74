//! Passphrase stanzas (type `0x0003`, SPEC.md section 14.5): the file key
//! sealed under a key that Argon2id (RFC 9106) derives from a passphrase.
//!
//! ```text
//! wrap_key    = Argon2id(password = passphrase,
//!                        salt = "kapsel/v1 passphrase" || 0x00 || salt (16 bytes),
//!                        m = memory_kib, t = passes, p = lanes, version 0x13, T = 32)
//! wrapped_key = AES-256-GCM(wrap_key, nonce = 0^12, aad = "", file_key)
//! ```
//!
//! AWS-LC has no Argon2, so the derivation is RustCrypto's `argon2` (pure
//! Rust); the AEAD is AWS-LC's. A decoder refuses, before it allocates
//! anything, a stanza that asks for more work than its [`WorkLimit`]. The
//! `fips` build refuses passphrase stanzas altogether: Argon2id is not a
//! FIPS-approved algorithm and would run outside the module.

use std::fmt;

use zeroize::Zeroizing;

use crate::aead::{Aes256Gcm, NONCE_LEN, TAG_LEN};
use crate::FILE_KEY_LEN;
use kapsel_format::{PASSPHRASE_SALT_LEN, WRAPPED_KEY_LEN};

/// Prefix of the Argon2id salt (unused in the `fips` build, which derives nothing).
#[cfg_attr(feature = "fips", allow(dead_code))]
const SALT_LABEL: &[u8] = b"kapsel/v1 passphrase\x00";

/// A passphrase. Its bytes are wiped on drop and never shown.
#[derive(Clone)]
pub struct Passphrase(Zeroizing<Vec<u8>>);

impl Passphrase {
    /// A passphrase from its UTF-8 text (used as given: no normalization).
    pub fn new(text: &str) -> Self {
        Passphrase(Zeroizing::new(text.as_bytes().to_vec()))
    }

    /// A passphrase from raw bytes (a passphrase file's first line).
    pub fn from_bytes(bytes: &[u8]) -> Self {
        Passphrase(Zeroizing::new(bytes.to_vec()))
    }

    /// Whether it is empty (encoders refuse empty passphrases).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The bytes. Handle with care.
    pub fn expose_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Passphrase(..)")
    }
}

/// Argon2id parameters of a passphrase stanza.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cost {
    /// Memory in KiB.
    pub memory_kib: u32,
    /// Passes over the memory.
    pub passes: u32,
    /// Lanes.
    pub lanes: u8,
}

impl Cost {
    /// The encoder's default: 256 MiB, 3 passes, 4 lanes (the memory of
    /// age's scrypt default, with RFC 9106's recommended passes and lanes).
    pub const DEFAULT: Cost = Cost {
        memory_kib: 256 * 1024,
        passes: 3,
        lanes: 4,
    };
}

/// The most work a decoder accepts from a passphrase stanza.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WorkLimit {
    /// Most memory, in KiB.
    pub max_memory_kib: u32,
    /// Most passes.
    pub max_passes: u32,
}

impl WorkLimit {
    /// The decoder's default: 1 GiB (four times the encoder's default) and
    /// 16 passes. Above it a file is refused before anything is allocated.
    pub const DEFAULT: WorkLimit = WorkLimit {
        max_memory_kib: 1024 * 1024,
        max_passes: 16,
    };

    /// Whether `cost` is within the limit.
    pub fn allows(&self, cost: &Cost) -> bool {
        cost.memory_kib <= self.max_memory_kib && cost.passes <= self.max_passes
    }
}

impl Default for WorkLimit {
    fn default() -> Self {
        WorkLimit::DEFAULT
    }
}

/// Why a passphrase key could not be derived.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PassphraseError {
    /// This build (`fips`) has no passphrase stanzas.
    #[error(
        "passphrase stanzas are not available in the FIPS build (Argon2id is not FIPS-approved)"
    )]
    Unavailable,
    /// Argon2 refused the parameters.
    #[error("invalid Argon2id parameters")]
    Params,
}

/// `Argon2id(passphrase, label || salt)` into a 32-byte key.
#[cfg(not(feature = "fips"))]
fn derive(
    passphrase: &Passphrase,
    salt: &[u8; PASSPHRASE_SALT_LEN],
    cost: &Cost,
) -> Result<Zeroizing<[u8; 32]>, PassphraseError> {
    use argon2::{Algorithm, Argon2, Params, Version};
    let params = Params::new(
        cost.memory_kib,
        cost.passes,
        u32::from(cost.lanes),
        Some(32),
    )
    .map_err(|_| PassphraseError::Params)?;
    let mut full_salt = Vec::with_capacity(SALT_LABEL.len() + PASSPHRASE_SALT_LEN);
    full_salt.extend_from_slice(SALT_LABEL);
    full_salt.extend_from_slice(salt);
    let mut key = Zeroizing::new([0u8; 32]);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(passphrase.expose_bytes(), &full_salt, &mut key[..])
        .map_err(|_| PassphraseError::Params)?;
    Ok(key)
}

#[cfg(feature = "fips")]
fn derive(
    _passphrase: &Passphrase,
    _salt: &[u8; PASSPHRASE_SALT_LEN],
    _cost: &Cost,
) -> Result<Zeroizing<[u8; 32]>, PassphraseError> {
    Err(PassphraseError::Unavailable)
}

/// Whether this build supports passphrase stanzas (not the `fips` build).
pub const AVAILABLE: bool = cfg!(not(feature = "fips"));

/// Seals `file_key` under `passphrase` with `salt` and `cost`.
pub(crate) fn wrap(
    passphrase: &Passphrase,
    salt: &[u8; PASSPHRASE_SALT_LEN],
    cost: &Cost,
    file_key: &[u8; FILE_KEY_LEN],
) -> Result<[u8; WRAPPED_KEY_LEN], PassphraseError> {
    let key = derive(passphrase, salt, cost)?;
    let mut out = [0u8; WRAPPED_KEY_LEN];
    out[..FILE_KEY_LEN].copy_from_slice(file_key);
    let tag = Aes256Gcm::new(&key).seal_in_place([0u8; NONCE_LEN], b"", &mut out[..FILE_KEY_LEN]);
    out[FILE_KEY_LEN..].copy_from_slice(&tag);
    Ok(out)
}

/// Opens `wrapped` under `passphrase`; `Ok(None)` when the tag does not
/// verify (a wrong passphrase, or a damaged stanza: the two cannot be told
/// apart).
pub(crate) fn unwrap(
    passphrase: &Passphrase,
    salt: &[u8; PASSPHRASE_SALT_LEN],
    cost: &Cost,
    wrapped: &[u8; WRAPPED_KEY_LEN],
) -> Result<Option<Zeroizing<[u8; FILE_KEY_LEN]>>, PassphraseError> {
    let key = derive(passphrase, salt, cost)?;
    let mut file_key = Zeroizing::new([0u8; FILE_KEY_LEN]);
    file_key.copy_from_slice(&wrapped[..FILE_KEY_LEN]);
    let mut tag = [0u8; TAG_LEN];
    tag.copy_from_slice(&wrapped[FILE_KEY_LEN..]);
    let opened = Aes256Gcm::new(&key)
        .open_in_place([0u8; NONCE_LEN], b"", &mut file_key[..], &tag)
        .is_ok();
    Ok(opened.then_some(file_key))
}

/// Raw Argon2id (no label), for the RFC 9106 test and the conformance
/// vector generator: `out.len()` bytes from `password`, `salt`, `secret` and
/// `ad`. Present in every build (the `fips` build refuses passphrase
/// stanzas, but its vector tests still check the primitive). Not for files.
#[doc(hidden)]
pub fn argon2id_for_conformance(
    password: &[u8],
    salt: &[u8],
    secret: &[u8],
    ad: &[u8],
    cost: &Cost,
    out: &mut [u8],
) -> Result<(), PassphraseError> {
    use argon2::{Algorithm, Argon2, AssociatedData, ParamsBuilder, Version};
    let mut b = ParamsBuilder::new();
    b.m_cost(cost.memory_kib)
        .t_cost(cost.passes)
        .p_cost(u32::from(cost.lanes))
        .output_len(out.len());
    if !ad.is_empty() {
        b.data(AssociatedData::new(ad).map_err(|_| PassphraseError::Params)?);
    }
    let params = b.build().map_err(|_| PassphraseError::Params)?;
    let a = if secret.is_empty() {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
    } else {
        Argon2::new_with_secret(secret, Algorithm::Argon2id, Version::V0x13, params)
            .map_err(|_| PassphraseError::Params)?
    };
    a.hash_password_into(password, salt, out)
        .map_err(|_| PassphraseError::Params)
}
