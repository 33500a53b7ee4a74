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
pub(crate) const RECIPIENT_HRP: &str = "kapsel";
/// Human-readable part of identity strings (written upper case).
pub(crate) const IDENTITY_HRP: &str = "kapsel-secret-key-";

/// What a key string is, judged by its prefix (Bech32 human-readable part).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyKind {
    /// A kapsel recipient (`kapsel1...`).
    Recipient,
    /// A kapsel identity (`KAPSEL-SECRET-KEY-1...`).
    Identity,
    /// A kapsel hybrid post-quantum recipient (`kapselpq1...`).
    HybridRecipient,
    /// A kapsel hybrid post-quantum identity (`KAPSEL-PQ-SECRET-KEY-1...`).
    HybridIdentity,
    /// An age recipient (`age1...`, plugins included).
    AgeRecipient,
    /// An age identity (`AGE-SECRET-KEY-1...`, plugins included).
    AgeIdentity,
}

impl KeyKind {
    /// The kind of key string `s` claims to be, by its prefix (the part
    /// before the last `1`, either case) alone. Nothing else is checked: use
    /// it to choose a parser and to name what was given, never to accept a
    /// key.
    pub fn of(s: &str) -> Option<KeyKind> {
        s.rfind('1').and_then(|sep| kind_of_prefix(&s[..sep]))
    }
}

impl fmt::Display for KeyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeyKind::Recipient => "a kapsel recipient (public key)",
            KeyKind::Identity => "a kapsel identity (private key)",
            KeyKind::HybridRecipient => "a kapsel post-quantum recipient (public key)",
            KeyKind::HybridIdentity => "a kapsel post-quantum identity (private key)",
            KeyKind::AgeRecipient => "an age recipient",
            KeyKind::AgeIdentity => "an age identity",
        })
    }
}

/// A key string or PEM key could not be parsed. Each variant names one
/// thing that is wrong, in the order a decoder checks them (SPEC.md 4.1).
/// None of them carries or shows the key's bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyParseError {
    /// The empty string.
    #[error("empty key string")]
    Empty,
    /// No `1` separating a prefix from the data: not a key string at all.
    #[error("not a key string (no prefix ending in 1)")]
    NoSeparator,
    /// Upper and lower case letters mixed.
    #[error("mixed upper and lower case")]
    MixedCase,
    /// A prefix (Bech32 human-readable part) for another kind of key.
    #[error("{found}, where {expected} was expected")]
    WrongType {
        /// What was expected: [`KeyKind::Recipient`] or [`KeyKind::Identity`].
        expected: KeyKind,
        /// What the prefix says the string is.
        found: KeyKind,
    },
    /// A prefix no key string has.
    #[error("unknown prefix (expected {expected})")]
    UnknownPrefix {
        /// What was expected.
        expected: KeyKind,
    },
    /// A character Bech32 does not use, after the prefix.
    #[error(
        "invalid character at position {position} (Bech32 has no b, i, o or 1 after the prefix)"
    )]
    InvalidChar {
        /// 1-based position of the first such character.
        position: usize,
    },
    /// The right prefix but not the fixed length.
    #[error("wrong length: {found} characters, {expected_kind} has {expected}")]
    WrongLength {
        /// The length of a valid string of this kind.
        expected: usize,
        /// What was expected, for the message.
        expected_kind: KeyKind,
        /// The length given.
        found: usize,
    },
    /// The Bech32 checksum does not match: a character is wrong.
    #[error("bad checksum (a character is wrong)")]
    Checksum,
    /// Non-zero or excess padding bits: a non-canonical encoding.
    #[error("non-canonical encoding (padding bits)")]
    Padding,
    /// A well-formed recipient string whose bytes are not a compressed
    /// point on P-256.
    #[error("not a point on the P-256 curve")]
    NotOnCurve,
    /// A well-formed identity string whose scalar is 0 or not below the
    /// group order.
    #[error("not a valid P-256 private key (scalar out of range)")]
    ScalarOutOfRange,
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

    hazmat_fn! {
        /// Wraps an existing secret key.
        fn from_secret_key(secret: SecretKey) -> Self {
            Identity { secret }
        }
    }

    hazmat_fn! {
        /// The secret key, for composition inside this crate and for callers that
        /// need to export it (PEM).
        fn secret_key(&self) -> &SecretKey {
            &self.secret
        }
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
        let bytes = Zeroizing::new(decode(s, KeyKind::Identity)?);
        SecretKey::from_bytes(&bytes)
            .map(|secret| Identity { secret })
            .map_err(|_| KeyParseError::ScalarOutOfRange)
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
    hazmat_fn! {
        /// Wraps an existing public key.
        fn from_public_key(public: PublicKey) -> Self {
            Recipient { public }
        }
    }

    hazmat_fn! {
        /// The public key.
        fn public_key(&self) -> &PublicKey {
            &self.public
        }
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

    hazmat_fn! {
        /// The 33-byte compressed SEC1 encoding.
        fn to_compressed(&self) -> [u8; 33] {
            self.public.to_compressed()
        }
    }

    hazmat_fn! {
        /// The key hint of a stanza for this recipient with encapsulated key
        /// `enc` (SPEC.md section 4.4): the first four bytes of
        /// `SHA-256("kapsel/v1 hint" || 0x00 || compressed point || enc)`.
        fn stanza_hint(&self, enc: &[u8]) -> [u8; KEY_HINT_LEN] {
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
        let bytes = decode(s, KeyKind::Recipient)?;
        if !matches!(bytes.first(), Some(0x02 | 0x03)) {
            return Err(KeyParseError::NotOnCurve);
        }
        PublicKey::from_sec1_bytes(&bytes)
            .map(|public| Recipient { public })
            .map_err(|_| KeyParseError::NotOnCurve)
    }
}

/// Bech32's 32 data symbols (BIP 173).
const BECH32_CHARSET: &[u8; 32] = b"qpzry9x8gf2tvdw0s3jn54khce6mua7l";

/// What a human-readable part says a string is, if it is any key we know.
/// The first checks of SPEC.md 4.1 on a key string meant to be of `kind`,
/// shared by every key type: empty, separator, case, prefix. Returns the
/// position of the separator.
pub(crate) fn check_prefix(s: &str, kind: KeyKind) -> Result<usize, KeyParseError> {
    if s.is_empty() {
        return Err(KeyParseError::Empty);
    }
    let Some(sep) = s.rfind('1') else {
        return Err(KeyParseError::NoSeparator);
    };
    let has_lower = s.bytes().any(|b| b.is_ascii_lowercase());
    let has_upper = s.bytes().any(|b| b.is_ascii_uppercase());
    if has_lower && has_upper {
        return Err(KeyParseError::MixedCase);
    }
    match kind_of_prefix(&s[..sep]) {
        Some(found) if found == kind => Ok(sep),
        Some(found) => Err(KeyParseError::WrongType {
            expected: kind,
            found,
        }),
        None => Err(KeyParseError::UnknownPrefix { expected: kind }),
    }
}

fn kind_of_prefix(hrp: &str) -> Option<KeyKind> {
    let hrp = hrp.to_ascii_lowercase();
    if hrp == RECIPIENT_HRP {
        Some(KeyKind::Recipient)
    } else if hrp == IDENTITY_HRP {
        Some(KeyKind::Identity)
    } else if hrp == crate::hybrid::HYBRID_RECIPIENT_HRP {
        Some(KeyKind::HybridRecipient)
    } else if hrp == crate::hybrid::HYBRID_IDENTITY_HRP {
        Some(KeyKind::HybridIdentity)
    } else if hrp.starts_with("age-plugin-") || hrp == "age-secret-key-" {
        Some(KeyKind::AgeIdentity)
    } else if hrp == "age" || hrp.starts_with("age1") {
        Some(KeyKind::AgeRecipient)
    } else {
        None
    }
}

/// Decodes a kapsel key string of `kind` (SPEC.md 4.1, 4.2) into its
/// payload bytes, checking in this order, so that the error says the first
/// thing wrong: empty, separator, case, prefix, characters, length,
/// checksum, padding. `s` must be exactly the key string: white space
/// around or inside it is an invalid character (SPEC.md 4.1; key files trim
/// their lines first, 4.3).
fn decode(s: &str, kind: KeyKind) -> Result<Vec<u8>, KeyParseError> {
    let (hrp, len, total) = match kind {
        KeyKind::Identity => (IDENTITY_HRP, 32, 77),
        _ => (RECIPIENT_HRP, 33, 66),
    };
    let sep = check_prefix(s, kind)?;
    if let Some(i) = s[sep + 1..]
        .chars()
        .position(|c| !c.is_ascii() || !BECH32_CHARSET.contains(&(c as u8).to_ascii_lowercase()))
    {
        return Err(KeyParseError::InvalidChar {
            position: sep + 2 + i,
        });
    }
    if s.len() != total {
        return Err(KeyParseError::WrongLength {
            expected: total,
            expected_kind: kind,
            found: s.len(),
        });
    }
    let checked = CheckedHrpstring::new::<Bech32>(s).map_err(|_| KeyParseError::Checksum)?;
    debug_assert!(checked.hrp().as_str().eq_ignore_ascii_case(hrp));
    // BIP 173's rule for the 5-to-8-bit regrouping: at most 4 leftover bits,
    // all zero. (The crate names it after segwit, but no version symbol is involved.)
    checked
        .validate_segwit_padding()
        .map_err(|_| KeyParseError::Padding)?;
    let bytes: Vec<u8> = checked.byte_iter().collect();
    if bytes.len() != len {
        // Unreachable with the fixed total length; kept as a guard.
        return Err(KeyParseError::WrongLength {
            expected: total,
            expected_kind: kind,
            found: s.len(),
        });
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_kind_of_reads_the_prefix_in_either_case() {
        let id = Identity::generate();
        let recipient = id.to_recipient().to_string();
        let secret = id.to_secret_string();
        for (s, want) in [
            (recipient.as_str(), Some(KeyKind::Recipient)),
            (&recipient.to_uppercase(), Some(KeyKind::Recipient)),
            (secret.as_str(), Some(KeyKind::Identity)),
            ("kapselpq1qqqq", Some(KeyKind::HybridRecipient)),
            ("KAPSEL-PQ-SECRET-KEY-1QQQQ", Some(KeyKind::HybridIdentity)),
            ("age1qqqq", Some(KeyKind::AgeRecipient)),
            ("age1yubikey1qqqq", Some(KeyKind::AgeRecipient)),
            ("AGE-SECRET-KEY-1QQQQ", Some(KeyKind::AgeIdentity)),
            ("AGE-PLUGIN-YUBIKEY-1QQQQ", Some(KeyKind::AgeIdentity)),
            ("kapsel", None),
            ("", None),
            ("ssh-ed25519 AAAA", None),
            ("kapselx1qqqq", None),
        ] {
            assert_eq!(KeyKind::of(s), want, "{s}");
        }
    }

    fn recipient_error(s: &str) -> KeyParseError {
        s.parse::<Recipient>().expect_err("refused")
    }

    fn identity_error(s: &str) -> KeyParseError {
        Identity::from_secret_string(s)
            .map(drop)
            .expect_err("refused")
    }

    #[test]
    fn each_broken_key_string_gets_its_own_error() {
        let id = Identity::generate();
        let r = id.to_recipient().to_string();
        let secret = id.to_secret_string();
        assert_eq!(recipient_error(""), KeyParseError::Empty);
        assert_eq!(recipient_error("hello"), KeyParseError::NoSeparator);
        let mixed = format!("K{}", &r[1..]);
        assert_eq!(recipient_error(&mixed), KeyParseError::MixedCase);
        assert_eq!(
            recipient_error(&secret),
            KeyParseError::WrongType {
                expected: KeyKind::Recipient,
                found: KeyKind::Identity
            }
        );
        assert_eq!(
            identity_error(&r),
            KeyParseError::WrongType {
                expected: KeyKind::Identity,
                found: KeyKind::Recipient
            }
        );
        let age = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p";
        assert_eq!(
            recipient_error(age),
            KeyParseError::WrongType {
                expected: KeyKind::Recipient,
                found: KeyKind::AgeRecipient
            }
        );
        let age_secret =
            "AGE-SECRET-KEY-1GFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPQ4EGAEX";
        assert_eq!(
            identity_error(age_secret),
            KeyParseError::WrongType {
                expected: KeyKind::Identity,
                found: KeyKind::AgeIdentity
            }
        );
        assert_eq!(
            recipient_error("kapsal1qqqq"),
            KeyParseError::UnknownPrefix {
                expected: KeyKind::Recipient
            }
        );
        let bad_char = format!("{}b{}", &r[..20], &r[21..]);
        assert_eq!(
            recipient_error(&bad_char),
            KeyParseError::InvalidChar { position: 21 }
        );
        assert_eq!(
            recipient_error(&r[..60]),
            KeyParseError::WrongLength {
                expected: 66,
                expected_kind: KeyKind::Recipient,
                found: 60
            }
        );
        assert!(matches!(
            identity_error(&secret[..70]),
            KeyParseError::WrongLength { found: 70, .. }
        ));
        let mut typo = r.clone().into_bytes();
        typo[30] = if typo[30] == b'q' { b'p' } else { b'q' };
        let typo = String::from_utf8(typo).expect("ascii");
        assert_eq!(recipient_error(&typo), KeyParseError::Checksum);
        // 33 bytes that are no compressed point: a wrong tag, and an x with
        // no point on the curve.
        for bytes in [[0x04u8; 33], {
            let mut b = [0xffu8; 33];
            b[0] = 0x02;
            b
        }] {
            let s = bech32::encode::<Bech32>(Hrp::parse_unchecked(RECIPIENT_HRP), &bytes)
                .expect("encode");
            assert_eq!(recipient_error(&s), KeyParseError::NotOnCurve);
        }
        let zero = bech32::encode::<Bech32>(Hrp::parse_unchecked(IDENTITY_HRP), &[0u8; 32])
            .expect("encode")
            .to_uppercase();
        assert_eq!(identity_error(&zero), KeyParseError::ScalarOutOfRange);
    }

    #[test]
    fn identity_errors_never_show_the_string() {
        let secret = Identity::generate().to_secret_string();
        let mut typo = secret.to_string().into_bytes();
        typo[40] = if typo[40] == b'Q' { b'P' } else { b'Q' };
        let typo = String::from_utf8(typo).expect("ascii");
        let mixed = format!("k{}", &secret[1..]);
        for s in [&typo[..], &secret[..70], &mixed[..]] {
            let msg = Identity::from_secret_string(s)
                .map(drop)
                .expect_err("refused")
                .to_string();
            assert!(!msg.contains(&secret[20..40]), "{msg}");
        }
    }
}
