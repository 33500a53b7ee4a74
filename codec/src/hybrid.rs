//! Hybrid post-quantum identities and recipients (MLKEM768-P256, SPEC.md
//! section 14.3) and their text forms.
//!
//! - A hybrid recipient string is Bech32m (BIP 350) with human-readable part
//!   `kapselpq` over the 1249-byte public key, all lower case: 2014
//!   characters, beyond Bech32's 90-character limit, which this encoding
//!   lifts (the checksum's guarantees at that length are in SPEC.md 14.3).
//! - A hybrid identity string is Bech32m with human-readable part
//!   `kapsel-pq-secret-key-` over the 32-byte seed, all upper case (80
//!   characters, within the limit).
//!
//! There is no PEM form: no standard names this hybrid key (the LAMPS
//! composite ML-KEM drafts combine the secrets differently).

use std::fmt;

use aws_lc_rs::digest;
use bech32::primitives::decode::CheckedHrpstring;
use bech32::{Bech32m, Checksum, Hrp};
use zeroize::Zeroizing;

use crate::keys::{KeyKind, KeyParseError};
use crate::pq::{HybridPublicKey, HybridSecretKey, PUBLIC_KEY_LEN, SEED_LEN};
use kapsel_format::KEY_HINT_LEN;

/// Human-readable part of hybrid recipient strings.
pub(crate) const HYBRID_RECIPIENT_HRP: &str = "kapselpq";
/// Human-readable part of hybrid identity strings (written upper case).
pub(crate) const HYBRID_IDENTITY_HRP: &str = "kapsel-pq-secret-key-";
/// Length of a hybrid recipient string.
pub const HYBRID_RECIPIENT_STRING_LEN: usize = 2014;
/// Length of a hybrid identity string.
pub const HYBRID_IDENTITY_STRING_LEN: usize = 80;

/// Bech32m with the code length lifted from 1023 to 4095 characters: the
/// same generator and constant, so a string of at most 1023 characters is
/// plain Bech32m.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Bech32mLong {}

impl Checksum for Bech32mLong {
    type MidstateRepr = u32;
    const CODE_LENGTH: usize = 4095;
    const CHECKSUM_LENGTH: usize = Bech32m::CHECKSUM_LENGTH;
    const GENERATOR_SH: [u32; 5] = Bech32m::GENERATOR_SH;
    const TARGET_RESIDUE: u32 = Bech32m::TARGET_RESIDUE;
}

/// A hybrid MLKEM768-P256 private key that unwraps file keys.
#[derive(Clone)]
pub struct HybridIdentity {
    secret: HybridSecretKey,
}

/// A hybrid MLKEM768-P256 public key that file keys can be wrapped to.
#[derive(Clone, PartialEq, Eq)]
pub struct HybridRecipient {
    public: HybridPublicKey,
}

impl HybridIdentity {
    /// A new random identity (a 32-byte seed from AWS-LC's generator).
    pub fn generate() -> Self {
        HybridIdentity {
            secret: HybridSecretKey::generate(),
        }
    }

    /// Wraps an existing key.
    pub fn from_secret_key(secret: HybridSecretKey) -> Self {
        HybridIdentity { secret }
    }

    /// The key, for composition inside this crate.
    pub fn secret_key(&self) -> &HybridSecretKey {
        &self.secret
    }

    /// The matching recipient.
    pub fn to_recipient(&self) -> HybridRecipient {
        HybridRecipient {
            public: self.secret.public_key().clone(),
        }
    }

    /// The identity string (`KAPSEL-PQ-SECRET-KEY-1...`). Handle with care.
    pub fn to_secret_string(&self) -> Zeroizing<String> {
        // The HRP is valid and 32 bytes fit in a Bech32m string.
        #[allow(clippy::expect_used)]
        let s = bech32::encode::<Bech32m>(
            Hrp::parse_unchecked(HYBRID_IDENTITY_HRP),
            &self.secret.seed_bytes()[..],
        )
        .expect("hybrid identity fits in Bech32m");
        Zeroizing::new(s.to_uppercase())
    }

    /// Parses an identity string, exactly (no white space around it).
    pub fn from_secret_string(s: &str) -> Result<Self, KeyParseError> {
        let bytes = Zeroizing::new(decode(s, KeyKind::HybridIdentity)?);
        let mut seed = Zeroizing::new([0u8; SEED_LEN]);
        seed.copy_from_slice(&bytes);
        HybridSecretKey::from_seed(&seed)
            .map(|secret| HybridIdentity { secret })
            .map_err(|_| KeyParseError::InvalidKey)
    }
}

impl fmt::Debug for HybridIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HybridIdentity").finish_non_exhaustive()
    }
}

impl HybridRecipient {
    /// Wraps an existing public key.
    pub fn from_public_key(public: HybridPublicKey) -> Self {
        HybridRecipient { public }
    }

    /// The public key.
    pub fn public_key(&self) -> &HybridPublicKey {
        &self.public
    }

    /// The key hint of a hybrid stanza for this recipient with encapsulated
    /// key `enc` (SPEC.md section 14.4): the first four bytes of
    /// `SHA-256("kapsel/v1 hint" || 0x00 || public key || enc)`.
    pub fn stanza_hint(&self, enc: &[u8]) -> [u8; KEY_HINT_LEN] {
        let mut h = digest::Context::new(&digest::SHA256);
        h.update(b"kapsel/v1 hint\x00");
        h.update(&self.public.as_bytes()[..]);
        h.update(enc);
        let digest = h.finish();
        let mut out = [0u8; KEY_HINT_LEN];
        out.copy_from_slice(&digest.as_ref()[..KEY_HINT_LEN]);
        out
    }
}

impl fmt::Display for HybridRecipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The HRP is valid and 2014 characters are within the lifted code length.
        #[allow(clippy::expect_used)]
        let s = bech32::encode::<Bech32mLong>(
            Hrp::parse_unchecked(HYBRID_RECIPIENT_HRP),
            &self.public.as_bytes()[..],
        )
        .expect("hybrid recipient fits in the lifted Bech32m");
        f.write_str(&s)
    }
}

impl fmt::Debug for HybridRecipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.to_string();
        write!(f, "HybridRecipient({}...)", &s[..24])
    }
}

impl std::str::FromStr for HybridRecipient {
    type Err = KeyParseError;

    /// Parses a hybrid recipient string, exactly.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bytes = decode(s, KeyKind::HybridRecipient)?;
        HybridPublicKey::from_bytes(&bytes)
            .map(|public| HybridRecipient { public })
            .map_err(|_| KeyParseError::InvalidKey)
    }
}

/// 1-based position of the first character after the separator that Bech32
/// does not use (1 past the end if none).
fn first_invalid_char(s: &str, hrp_len: usize) -> usize {
    const CHARSET: &[u8; 32] = b"qpzry9x8gf2tvdw0s3jn54khce6mua7l";
    s.bytes()
        .skip(hrp_len + 1)
        .position(|b| !CHARSET.contains(&b))
        .map_or(s.len() + 1, |i| hrp_len + 2 + i)
}

/// Decodes a hybrid key string of `kind` into its payload, checking in the
/// order of SPEC.md 4.1: empty, separator, case, prefix, length, checksum,
/// padding.
fn decode(s: &str, kind: KeyKind) -> Result<Vec<u8>, KeyParseError> {
    let (hrp, len, total) = match kind {
        KeyKind::HybridIdentity => (HYBRID_IDENTITY_HRP, SEED_LEN, HYBRID_IDENTITY_STRING_LEN),
        _ => (
            HYBRID_RECIPIENT_HRP,
            PUBLIC_KEY_LEN,
            HYBRID_RECIPIENT_STRING_LEN,
        ),
    };
    crate::keys::check_prefix(s, kind)?;
    if s.len() != total {
        return Err(KeyParseError::WrongLength {
            expected: total,
            expected_kind: kind,
            found: s.len(),
        });
    }
    let lower = s.to_ascii_lowercase();
    let checked = CheckedHrpstring::new::<Bech32mLong>(&lower).map_err(|e| {
        use bech32::primitives::decode::CheckedHrpstringError as E;
        match e {
            E::Checksum(_) => KeyParseError::Checksum,
            _ => KeyParseError::InvalidChar {
                position: first_invalid_char(&lower, hrp.len()),
            },
        }
    })?;
    if checked.hrp().as_str() != hrp {
        return Err(KeyParseError::UnknownPrefix { expected: kind });
    }
    let bytes: Vec<u8> = checked.byte_iter().collect();
    if bytes.len() != len {
        return Err(KeyParseError::Padding);
    }
    // Re-encoding must give the same string: refuses non-zero padding bits.
    let again = bech32::encode_lower::<Bech32mLong>(checked.hrp(), &bytes)
        .map_err(|_| KeyParseError::Padding)?;
    if again != lower {
        return Err(KeyParseError::Padding);
    }
    Ok(bytes)
}
