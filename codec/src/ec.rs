//! P-256 keys, backed by AWS-LC through `aws-lc-rs` (the one cryptography
//! backend of kapsel; in the `fips` build, its FIPS module).
//!
//! - [`SecretKey`] is a scalar in `[1, n-1]` held as an AWS-LC key, with its
//!   public point computed once, on creation.
//! - [`PublicKey`] is a point on the curve other than the identity, held as
//!   its 65-byte uncompressed SEC1 encoding; every constructor validates it
//!   in AWS-LC (`EC_POINT_oct2point` checks curve membership).
//!
//! Nothing cryptographic is computed here: scalar multiplications, point
//! decompression, validation and the DER encodings (PKCS#8, SEC1 / RFC 5915,
//! SubjectPublicKeyInfo) are AWS-LC's. The only arithmetic in this module is
//! the SEC1 compression of a point (its x-coordinate and the parity of y).
//!
//! Secrets: a [`SecretKey`] has no `Debug` of its bytes, AWS-LC wipes the
//! scalar when the key is freed, and every copy handed out is [`Zeroizing`].

use std::fmt;
use std::sync::Arc;

use aws_lc_rs::agreement;
use aws_lc_rs::encoding::{AsBigEndian, AsDer, EcPrivateKeyBin, Pkcs8V1Der, PublicKeyX509Der};
use aws_lc_rs::signature::{ParsedPublicKey, ECDSA_P256_SHA256_FIXED};
use zeroize::Zeroizing;

/// Length of a P-256 scalar.
pub const SCALAR_LEN: usize = 32;
/// Length of an uncompressed SEC1 point.
pub const UNCOMPRESSED_LEN: usize = 65;
/// Length of a compressed SEC1 point.
pub const COMPRESSED_LEN: usize = 33;
/// The DER prefix of a P-256 SubjectPublicKeyInfo with an uncompressed point
/// (`id-ecPublicKey`, `prime256v1`), as AWS-LC writes it.
const SPKI_PREFIX_LEN: usize = 26;

/// Key bytes that are not a valid P-256 key in the expected encoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("not a valid P-256 key")]
pub struct InvalidKey;

/// A P-256 public key: a validated point, not the identity.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicKey {
    point: [u8; UNCOMPRESSED_LEN],
}

/// A P-256 private key. `Clone` shares the AWS-LC key; no `Debug` of its bytes.
#[derive(Clone)]
pub struct SecretKey {
    key: Arc<agreement::PrivateKey>,
    public: PublicKey,
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey(")?;
        for b in self.to_compressed() {
            write!(f, "{b:02x}")?;
        }
        write!(f, ")")
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretKey")
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

// `to_*(&self)` on a `Copy` type: the public `hazmat` API keeps its shape
// whether or not the feature is on.
#[allow(clippy::wrong_self_convention)]
impl PublicKey {
    /// Parses a SEC1 point, compressed (33 bytes) or uncompressed (65 bytes);
    /// the hybrid form and the identity are refused.
    pub fn from_sec1_bytes(bytes: &[u8]) -> Result<Self, InvalidKey> {
        let well_formed = matches!(
            (bytes.first(), bytes.len()),
            (Some(0x04), UNCOMPRESSED_LEN) | (Some(0x02 | 0x03), COMPRESSED_LEN)
        );
        if !well_formed {
            return Err(InvalidKey);
        }
        let parsed =
            ParsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, bytes).map_err(|_| InvalidKey)?;
        if bytes.len() == UNCOMPRESSED_LEN {
            let mut point = [0u8; UNCOMPRESSED_LEN];
            point.copy_from_slice(bytes);
            return Ok(PublicKey { point });
        }
        // AWS-LC decompressed the point; its SubjectPublicKeyInfo carries it uncompressed.
        Self::from_parsed(&parsed)
    }

    /// Parses a DER SubjectPublicKeyInfo holding a P-256 key (`id-ecPublicKey`
    /// with the named curve `prime256v1`).
    pub fn from_spki_der(der: &[u8]) -> Result<Self, InvalidKey> {
        // aws-lc-rs falls back to a raw SEC1 point when DER parsing fails;
        // a SubjectPublicKeyInfo is a SEQUENCE, a point never starts with 0x30.
        if der.first() != Some(&0x30) {
            return Err(InvalidKey);
        }
        let parsed = ParsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, der).map_err(|_| InvalidKey)?;
        Self::from_parsed(&parsed)
    }

    fn from_parsed(parsed: &ParsedPublicKey) -> Result<Self, InvalidKey> {
        let spki: PublicKeyX509Der<'static> = parsed.as_der().map_err(|_| InvalidKey)?;
        let spki = spki.as_ref();
        if spki.len() != SPKI_PREFIX_LEN + UNCOMPRESSED_LEN || spki[SPKI_PREFIX_LEN] != 0x04 {
            return Err(InvalidKey);
        }
        let mut point = [0u8; UNCOMPRESSED_LEN];
        point.copy_from_slice(&spki[SPKI_PREFIX_LEN..]);
        Ok(PublicKey { point })
    }

    /// The 65-byte uncompressed SEC1 encoding.
    pub fn to_uncompressed(&self) -> [u8; UNCOMPRESSED_LEN] {
        self.point
    }

    /// The uncompressed SEC1 encoding, borrowed.
    pub fn as_uncompressed(&self) -> &[u8; UNCOMPRESSED_LEN] {
        &self.point
    }

    /// The 33-byte compressed SEC1 encoding (SEC1 2.3.3: the parity of y, then x).
    pub fn to_compressed(&self) -> [u8; COMPRESSED_LEN] {
        let mut out = [0u8; COMPRESSED_LEN];
        out[0] = 0x02 | (self.point[UNCOMPRESSED_LEN - 1] & 1);
        out[1..].copy_from_slice(&self.point[1..1 + SCALAR_LEN]);
        out
    }

    /// The DER SubjectPublicKeyInfo (uncompressed point).
    pub fn to_spki_der(&self) -> Vec<u8> {
        // A validated point always re-parses and encodes.
        ParsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, self.point)
            .ok()
            .and_then(|p| p.as_der().ok())
            .map(|der| der.as_ref().to_vec())
            .unwrap_or_default()
    }
}

impl SecretKey {
    /// A new random key from AWS-LC's generator (in the `fips` build, the
    /// module's key generation with its pairwise consistency test).
    pub fn generate() -> Self {
        // Generating a P-256 key fails only if AWS-LC cannot allocate (its
        // RAND_bytes aborts the process rather than return failure), and a
        // generated key always has a public key.
        #[allow(clippy::expect_used)]
        agreement::PrivateKey::generate(&agreement::ECDH_P256)
            .map_err(|_| InvalidKey)
            .and_then(Self::from_key)
            .expect("P-256 key generation")
    }

    /// A key from its 32-byte big-endian scalar, which must lie in `[1, n-1]`.
    pub fn from_bytes(scalar: &[u8]) -> Result<Self, InvalidKey> {
        if scalar.len() != SCALAR_LEN {
            return Err(InvalidKey);
        }
        let key = agreement::PrivateKey::from_private_key(&agreement::ECDH_P256, scalar)
            .map_err(|_| InvalidKey)?;
        Self::from_key(key)
    }

    /// A key from DER: PKCS#8 `PrivateKeyInfo` (v1 or v2) or SEC1 / RFC 5915
    /// `ECPrivateKey`, on P-256 only. AWS-LC checks that an embedded public
    /// key matches the scalar.
    pub fn from_der(der: &[u8]) -> Result<Self, InvalidKey> {
        let key = agreement::PrivateKey::from_private_key_der(&agreement::ECDH_P256, der)
            .map_err(|_| InvalidKey)?;
        Self::from_key(key)
    }

    fn from_key(key: agreement::PrivateKey) -> Result<Self, InvalidKey> {
        let public = key.compute_public_key().map_err(|_| InvalidKey)?;
        let point: [u8; UNCOMPRESSED_LEN] = public.as_ref().try_into().map_err(|_| InvalidKey)?;
        Ok(SecretKey {
            key: Arc::new(key),
            public: PublicKey { point },
        })
    }

    /// Draws a key from `rng` as the `p256` crate's `SecretKey::random` does
    /// (32 bytes at a time, big-endian, until one lies in `[1, n-1]`), so that
    /// seeded conformance vectors stay byte for byte what they were.
    pub(crate) fn from_rng(rng: &mut impl rand_core::RngCore) -> Self {
        loop {
            let mut bytes = Zeroizing::new([0u8; SCALAR_LEN]);
            rng.fill_bytes(&mut bytes[..]);
            if let Ok(key) = Self::from_bytes(&bytes[..]) {
                return key;
            }
        }
    }

    /// The public key.
    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }

    /// The 32-byte big-endian scalar. Handle with care.
    pub fn to_bytes(&self) -> Zeroizing<[u8; SCALAR_LEN]> {
        let mut out = Zeroizing::new([0u8; SCALAR_LEN]);
        // A P-256 key always serializes to 32 bytes (AWS-LC pads to the order's length).
        if let Ok(bin) = AsBigEndian::<EcPrivateKeyBin<'static>>::as_be_bytes(&*self.key) {
            if bin.as_ref().len() == SCALAR_LEN {
                out.copy_from_slice(bin.as_ref());
            }
        }
        out
    }

    /// The key as DER PKCS#8 v1 `PrivateKeyInfo` (with the public key, as
    /// OpenSSL writes it). Handle with care.
    pub fn to_pkcs8_der(&self) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(
            AsDer::<Pkcs8V1Der<'static>>::as_der(&*self.key)
                .map(|der| der.as_ref().to_vec())
                .unwrap_or_default(),
        )
    }

    /// `DH(sk, pk)`: the x-coordinate of `sk * pk`.
    pub fn diffie_hellman(&self, peer: &PublicKey) -> Zeroizing<[u8; SCALAR_LEN]> {
        let mut out = Zeroizing::new([0u8; SCALAR_LEN]);
        let peer = agreement::UnparsedPublicKey::new(&agreement::ECDH_P256, &peer.point[..]);
        // Both keys were validated on creation, so AWS-LC agrees; the
        // shared x-coordinate of P-256 is 32 bytes.
        let _ = agreement::agree(&self.key, peer, (), |shared| {
            if shared.len() == SCALAR_LEN {
                out.copy_from_slice(shared);
            }
            Ok(())
        });
        out
    }
}

/// The group order `n` of P-256, big-endian (SEC 2, section 2.4.2).
pub(crate) const ORDER: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
];

#[cfg(test)]
mod tests {
    use super::*;

    const N: [u8; 32] = ORDER;

    #[test]
    fn scalars_outside_one_to_n_minus_one_are_refused() {
        assert_eq!(SecretKey::from_bytes(&[0u8; 32]).err(), Some(InvalidKey));
        assert_eq!(SecretKey::from_bytes(&N).err(), Some(InvalidKey));
        assert_eq!(SecretKey::from_bytes(&[0xff; 32]).err(), Some(InvalidKey));
        assert_eq!(SecretKey::from_bytes(&[1u8; 31]).err(), Some(InvalidKey));
        let mut n_minus_1 = N;
        n_minus_1[31] -= 1;
        assert!(SecretKey::from_bytes(&n_minus_1).is_ok());
        let mut one = [0u8; 32];
        one[31] = 1;
        let k = SecretKey::from_bytes(&one).expect("1 is a scalar");
        assert_eq!(&k.to_bytes()[..], &one[..]);
    }

    #[test]
    fn compression_round_trips_and_bad_points_are_refused() {
        for _ in 0..16 {
            let k = SecretKey::generate();
            let p = *k.public_key();
            assert_eq!(PublicKey::from_sec1_bytes(&p.to_compressed()), Ok(p));
            assert_eq!(PublicKey::from_sec1_bytes(&p.to_uncompressed()), Ok(p));
            assert_eq!(PublicKey::from_spki_der(&p.to_spki_der()), Ok(p));
            let mut off = p.to_uncompressed();
            off[64] ^= 1;
            assert_eq!(PublicKey::from_sec1_bytes(&off), Err(InvalidKey));
            let mut hybrid = p.to_uncompressed();
            hybrid[0] = 0x06 | (hybrid[64] & 1);
            assert_eq!(PublicKey::from_sec1_bytes(&hybrid), Err(InvalidKey));
            // A raw point is not a SubjectPublicKeyInfo.
            assert_eq!(
                PublicKey::from_spki_der(&p.to_uncompressed()),
                Err(InvalidKey)
            );
        }
        assert_eq!(PublicKey::from_sec1_bytes(&[0u8]), Err(InvalidKey));
        assert_eq!(PublicKey::from_sec1_bytes(&[]), Err(InvalidKey));
    }

    #[test]
    fn diffie_hellman_agrees_and_pkcs8_round_trips() {
        let (a, b) = (SecretKey::generate(), SecretKey::generate());
        assert_eq!(
            a.diffie_hellman(b.public_key()),
            b.diffie_hellman(a.public_key())
        );
        let again = SecretKey::from_der(&a.to_pkcs8_der()).expect("PKCS#8 round trip");
        assert_eq!(again.public_key(), a.public_key());
        assert_eq!(again.to_bytes(), a.to_bytes());
    }
}
