//! Identities (P-256 private keys) and recipients (P-256 public keys), and
//! their text encodings.
//!
//! - A recipient string is Bech32 (BIP 173) with human-readable part
//!   `kapsel` over the 33-byte compressed SEC1 point, all lower case.
//! - An identity string is Bech32 with human-readable part
//!   `kapsel-secret-key-` over the 32-byte big-endian scalar, all upper case.
//!
//! Both carry Bech32's checksum, so a typo is caught. Secrets never appear in
//! `Debug` output and are wiped on drop (AWS-LC wipes the scalar it holds).
//!
//! The PEM forms (PKCS#8, SEC1, SubjectPublicKeyInfo) are AWS-LC's DER
//! inside RFC 7468 text (`pem-rfc7468`, an encoding-only crate).

use std::fmt;

use aws_lc_rs::digest;
use bech32::primitives::decode::CheckedHrpstring;
use bech32::{Bech32, Hrp};
use zeroize::Zeroizing;

use crate::ec::{PublicKey, SecretKey};

use kapsel_format::{P256Point, KEY_HINT_LEN};

/// Human-readable part of recipient strings.
pub const RECIPIENT_HRP: &str = "kapsel";
/// Human-readable part of identity strings (written upper case).
pub const IDENTITY_HRP: &str = "kapsel-secret-key-";

/// A key string could not be parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyParseError {
    /// Not Bech32, a bad checksum, or mixed case.
    #[error("invalid encoding or checksum")]
    Encoding,
    /// A Bech32 string for something else than expected.
    #[error("wrong key type (expected {expected})")]
    WrongType {
        /// What was expected: "recipient" or "identity".
        expected: &'static str,
    },
    /// The decoded bytes are not a valid P-256 key.
    #[error("not a valid P-256 key")]
    InvalidKey,
    /// PEM that holds no key of the expected kind, a key on another curve, or an encrypted key.
    #[error("no usable P-256 key in PEM ({reason})")]
    Pem {
        /// What was wrong.
        reason: &'static str,
    },
}

/// A P-256 private key that can unwrap file keys and sign as a sender.
#[derive(Clone)]
pub struct Identity {
    secret: SecretKey,
}

/// A P-256 public key that file keys can be wrapped to.
#[derive(Clone, PartialEq, Eq)]
pub struct Recipient {
    public: PublicKey,
}

impl Identity {
    /// A new random identity from the backend's key generation.
    pub fn generate() -> Self {
        Identity {
            secret: SecretKey::generate(),
        }
    }

    /// Wraps an existing secret key.
    pub fn from_secret_key(secret: SecretKey) -> Self {
        Identity { secret }
    }

    /// The secret key, for composition inside this crate and for callers that
    /// need to export it (PEM).
    pub fn secret_key(&self) -> &SecretKey {
        &self.secret
    }

    /// The matching recipient.
    pub fn to_recipient(&self) -> Recipient {
        Recipient {
            public: *self.secret.public_key(),
        }
    }

    /// The identity string (`KAPSEL-SECRET-KEY-1...`). Handle with care.
    pub fn to_secret_string(&self) -> Zeroizing<String> {
        let bytes = self.secret.to_bytes();
        // The HRP constant is valid Bech32 and 32 bytes fit in a Bech32 string.
        #[allow(clippy::expect_used)]
        let s = bech32::encode::<Bech32>(Hrp::parse_unchecked(IDENTITY_HRP), &bytes[..])
            .expect("identity fits in Bech32");
        Zeroizing::new(s.to_uppercase())
    }

    /// Parses an identity string: exactly the string, with no white space
    /// around it.
    pub fn from_secret_string(s: &str) -> Result<Self, KeyParseError> {
        let bytes = decode(s, IDENTITY_HRP, 32, "identity")?;
        let bytes = Zeroizing::new(bytes);
        SecretKey::from_bytes(&bytes)
            .map(|secret| Identity { secret })
            .map_err(|_| KeyParseError::InvalidKey)
    }
}

impl Identity {
    /// Parses a P-256 private key in PEM: PKCS#8 (`PRIVATE KEY`, as made by
    /// `openssl genpkey`) or SEC1 (`EC PRIVATE KEY`, as made by `openssl
    /// ecparam -genkey`, whose `EC PARAMETERS` block is skipped).
    pub fn from_pem(text: &str) -> Result<Self, KeyParseError> {
        if let Some(block) = pem_block(text, "PRIVATE KEY") {
            return pem_der(&block, "PRIVATE KEY")
                .and_then(|der| SecretKey::from_der(&der).ok())
                .map(Identity::from_secret_key)
                .ok_or(KeyParseError::Pem {
                    reason: "PKCS#8 key is not a P-256 EC key",
                });
        }
        if let Some(block) = pem_block(text, "EC PRIVATE KEY") {
            return pem_der(&block, "EC PRIVATE KEY")
                .and_then(|der| SecretKey::from_der(&der).ok())
                .map(Identity::from_secret_key)
                .ok_or(KeyParseError::Pem {
                    reason: "SEC1 key is not a P-256 key",
                });
        }
        if pem_block(text, "ENCRYPTED PRIVATE KEY").is_some() {
            return Err(KeyParseError::Pem {
                reason:
                    "encrypted private keys are not supported; decrypt it with openssl pkey first",
            });
        }
        Err(KeyParseError::Pem {
            reason: "no PRIVATE KEY or EC PRIVATE KEY block",
        })
    }

    /// The private key as PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`).
    pub fn to_pkcs8_pem(&self) -> Zeroizing<String> {
        let der = self.secret.to_pkcs8_der();
        Zeroizing::new(pem_encode("PRIVATE KEY", &der))
    }
}

impl Recipient {
    /// Parses a P-256 public key in SubjectPublicKeyInfo PEM (`PUBLIC KEY`,
    /// as made by `openssl pkey -pubout`).
    pub fn from_pem(text: &str) -> Result<Self, KeyParseError> {
        let block = pem_block(text, "PUBLIC KEY").ok_or(KeyParseError::Pem {
            reason: "no PUBLIC KEY block",
        })?;
        pem_der(&block, "PUBLIC KEY")
            .and_then(|der| PublicKey::from_spki_der(&der).ok())
            .map(Recipient::from_public_key)
            .ok_or(KeyParseError::Pem {
                reason: "public key is not a P-256 EC key",
            })
    }

    /// The public key as SubjectPublicKeyInfo PEM (`-----BEGIN PUBLIC KEY-----`).
    pub fn to_spki_pem(&self) -> String {
        pem_encode("PUBLIC KEY", &self.public.to_spki_der())
    }
}

/// The DER inside one PEM block, if it is well-formed RFC 7468 with `label`.
fn pem_der(block: &str, label: &str) -> Option<Zeroizing<Vec<u8>>> {
    let (found, der) = pem_rfc7468::decode_vec(block.as_bytes()).ok()?;
    let der = Zeroizing::new(der);
    (found == label).then_some(der)
}

/// `der` as RFC 7468 PEM with `label`, 64-column lines, LF line endings.
fn pem_encode(label: &str, der: &[u8]) -> String {
    // The labels are constant RFC 7468 labels, so encoding cannot fail.
    pem_rfc7468::encode_string(label, pem_rfc7468::LineEnding::LF, der).unwrap_or_default()
}

/// Every PEM block labelled `label` in `text`, in order.
pub fn pem_blocks(text: &str, label: &str) -> Vec<Zeroizing<String>> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find(&begin) {
        let after = &rest[start..];
        let Some(stop) = after.find(&end) else { break };
        out.push(Zeroizing::new(format!("{}\n", &after[..stop + end.len()])));
        rest = &after[stop + end.len()..];
    }
    out
}

fn pem_block(text: &str, label: &str) -> Option<Zeroizing<String>> {
    pem_blocks(text, label).into_iter().next()
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("recipient", &self.to_recipient().to_string())
            .finish()
    }
}

impl Recipient {
    /// Wraps an existing public key.
    pub fn from_public_key(public: PublicKey) -> Self {
        Recipient { public }
    }

    /// The public key.
    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }

    /// Parses a point as carried in a header; checks curve membership.
    pub fn from_wire(point: &P256Point) -> Result<Self, KeyParseError> {
        crate::hpke::deserialize_public_key(&point.0)
            .map(|public| Recipient { public })
            .map_err(|_| KeyParseError::InvalidKey)
    }

    /// The uncompressed point as carried in a header.
    pub fn to_wire(&self) -> P256Point {
        P256Point(self.public.to_uncompressed())
    }

    /// The 33-byte compressed SEC1 encoding.
    pub fn to_compressed(&self) -> [u8; 33] {
        self.public.to_compressed()
    }

    /// The key hint of a stanza for this recipient with encapsulated key
    /// `enc` (SPEC.md section 4.4): the first four bytes of
    /// `SHA-256("kapsel/v1 hint" || 0x00 || compressed point || enc)`.
    pub fn stanza_hint(&self, enc: &[u8]) -> [u8; KEY_HINT_LEN] {
        let mut h = digest::Context::new(&digest::SHA256);
        h.update(b"kapsel/v1 hint\x00");
        h.update(&self.to_compressed());
        h.update(enc);
        let digest = h.finish();
        let mut h = [0u8; KEY_HINT_LEN];
        h.copy_from_slice(&digest.as_ref()[..KEY_HINT_LEN]);
        h
    }
}

impl fmt::Display for Recipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The HRP constant is valid and 33 bytes fit in a Bech32 string.
        #[allow(clippy::expect_used)]
        let s =
            bech32::encode::<Bech32>(Hrp::parse_unchecked(RECIPIENT_HRP), &self.to_compressed())
                .expect("recipient fits in Bech32");
        f.write_str(&s)
    }
}

impl fmt::Debug for Recipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Recipient({self})")
    }
}

impl std::str::FromStr for Recipient {
    type Err = KeyParseError;

    /// Parses a recipient string: exactly the string, with no white space
    /// around it.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bytes = decode(s, RECIPIENT_HRP, 33, "recipient")?;
        PublicKey::from_sec1_bytes(&bytes)
            .map(|public| Recipient { public })
            .map_err(|_| KeyParseError::InvalidKey)
    }
}

/// Decodes a Bech32 (BIP 173) string with human-readable part `hrp` and
/// payload length `len`: checksum, case, padding bits and length all checked.
/// `s` must be exactly the key string: white space around or inside it is an
/// encoding error (SPEC.md 4.1; key files trim their lines first, 4.3).
fn decode(
    s: &str,
    hrp: &str,
    len: usize,
    expected: &'static str,
) -> Result<Vec<u8>, KeyParseError> {
    let checked = CheckedHrpstring::new::<Bech32>(s).map_err(|_| KeyParseError::Encoding)?;
    if !checked.hrp().as_str().eq_ignore_ascii_case(hrp) {
        return Err(KeyParseError::WrongType { expected });
    }
    // BIP 173's rule for the 5-to-8-bit regrouping: at most 4 leftover bits,
    // all zero. (The crate names it after segwit, but no version symbol is involved.)
    checked
        .validate_segwit_padding()
        .map_err(|_| KeyParseError::Encoding)?;
    let bytes: Vec<u8> = checked.byte_iter().collect();
    if bytes.len() != len {
        return Err(KeyParseError::InvalidKey);
    }
    Ok(bytes)
}
