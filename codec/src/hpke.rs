//! HPKE (RFC 9180) for the one suite kapsel uses:
//! DHKEM(P-256, HKDF-SHA256) / HKDF-SHA256 / AES-256-GCM
//! (kem `0x0010`, kdf `0x0001`, aead `0x0002`), in base mode (`0x00`) and
//! auth mode (`0x02`). PSK modes are not used by kapsel and not provided.
//!
//! Only the composition is written here: the P-256 scalar multiplications
//! (ECDH and public keys) come from AWS-LC through `aws-lc-rs`, key types,
//! encodings and point validation from `p256`, HKDF from `hkdf`, the AEAD
//! from [`crate::aead`]. The whole module is checked against the RFC 9180
//! test vectors (key schedule, 257 sequential encryptions, exports) in
//! `testvectors/tests/rfc9180_hpke.rs`.
//!
//! Why AWS-LC for the curve arithmetic: measured with `cargo bench -p
//! kapsel-benches -- ecdh` on the reference machine, one DH costs about
//! 400 us with `p256` 0.13 and about 215 us with aws-lc-rs (which includes
//! deriving the public key once, about 50 us, against about 410 us with
//! `p256`). A stanza costs two of these operations on each side, so this is
//! most of the cost of a small message. Keys cross over as their 32-byte
//! scalar and 65-byte uncompressed point.

use aws_lc_rs::agreement;
use hkdf::Hkdf;
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::{PublicKey, SecretKey};
use sha2::Sha256;
use zeroize::{Zeroize, Zeroizing};

use crate::aead::{Aes256Gcm, OpenError, KEY_LEN, NONCE_LEN, TAG_LEN};

/// KEM identifier of DHKEM(P-256, HKDF-SHA256).
pub const KEM_ID: u16 = 0x0010;
/// KDF identifier of HKDF-SHA256.
pub const KDF_ID: u16 = 0x0001;
/// AEAD identifier of AES-256-GCM.
pub const AEAD_ID: u16 = 0x0002;
/// Length of `enc` and of a serialized public key (uncompressed SEC1).
pub const N_ENC: usize = 65;
/// Length of the KEM shared secret and of the KDF output `Nh`.
pub const N_SECRET: usize = 32;

const KEM_SUITE_ID: [u8; 5] = [b'K', b'E', b'M', (KEM_ID >> 8) as u8, KEM_ID as u8];
const HPKE_SUITE_ID: [u8; 10] = [
    b'H',
    b'P',
    b'K',
    b'E',
    (KEM_ID >> 8) as u8,
    KEM_ID as u8,
    (KDF_ID >> 8) as u8,
    KDF_ID as u8,
    (AEAD_ID >> 8) as u8,
    AEAD_ID as u8,
];

/// HPKE mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// `mode_base`: the sender is anonymous.
    Base = 0x00,
    /// `mode_auth`: the sender proves possession of a static P-256 key.
    Auth = 0x02,
}

/// HPKE failures. None of them says why decryption failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HpkeError {
    /// `enc` or a public key is not a valid uncompressed P-256 point.
    #[error("invalid P-256 public key")]
    InvalidPublicKey,
    /// The AEAD tag did not verify.
    #[error("HPKE open failed")]
    OpenFailed,
    /// The sequence number would overflow.
    #[error("HPKE message limit reached")]
    MessageLimit,
    /// An export longer than 255 * Nh bytes was requested.
    #[error("HPKE export length too long")]
    ExportTooLong,
    /// DeriveKeyPair found no valid scalar (probability about 2^-8160).
    #[error("DeriveKeyPair failed")]
    DeriveKeyPair,
}

/// `LabeledExtract(salt, label, ikm)` with `suite_id`.
fn labeled_extract(
    suite_id: &[u8],
    salt: &[u8],
    label: &[u8],
    ikm: &[u8],
) -> Zeroizing<[u8; N_SECRET]> {
    let mut labeled = Zeroizing::new(Vec::with_capacity(
        7 + suite_id.len() + label.len() + ikm.len(),
    ));
    labeled.extend_from_slice(b"HPKE-v1");
    labeled.extend_from_slice(suite_id);
    labeled.extend_from_slice(label);
    labeled.extend_from_slice(ikm);
    let (prk, _) = Hkdf::<Sha256>::extract(Some(salt), &labeled);
    let mut out = Zeroizing::new([0u8; N_SECRET]);
    out.copy_from_slice(&prk);
    out
}

/// `LabeledExpand(prk, label, info, L)` with `suite_id`, into `out`.
fn labeled_expand(
    suite_id: &[u8],
    prk: &[u8; N_SECRET],
    label: &[u8],
    info: &[u8],
    out: &mut [u8],
) {
    let len = u16::try_from(out.len()).unwrap_or(u16::MAX).to_be_bytes();
    // A 32-byte PRK is always long enough for HKDF-SHA256.
    #[allow(clippy::expect_used)]
    let hk = Hkdf::<Sha256>::from_prk(prk).expect("32-byte PRK");
    // Callers ask for at most 255 * 32 bytes (they ask for 12, 32 or an export length they bound).
    #[allow(clippy::expect_used)]
    hk.expand_multi_info(&[&len, b"HPKE-v1", suite_id, label, info], out)
        .expect("HKDF-Expand length within 255 * Nh");
}

fn serialize_public_key(pk: &PublicKey) -> [u8; N_ENC] {
    let point = pk.to_encoded_point(false);
    let mut out = [0u8; N_ENC];
    out.copy_from_slice(point.as_bytes());
    out
}

/// `DeserializePublicKey`: only the uncompressed form is accepted, and the
/// point must be on the curve and not the identity.
pub fn deserialize_public_key(bytes: &[u8]) -> Result<PublicKey, HpkeError> {
    if bytes.len() != N_ENC || bytes[0] != 0x04 {
        return Err(HpkeError::InvalidPublicKey);
    }
    PublicKey::from_sec1_bytes(bytes).map_err(|_| HpkeError::InvalidPublicKey)
}

/// A secret key for the scalar multiplications: the AWS-LC key made from
/// the same scalar (its public key is computed once, on creation), and the
/// `p256` key as a fallback.
///
/// Invariant: a `p256::SecretKey` is a scalar in `[1, n)` and a
/// `p256::PublicKey` a point on the curve other than the identity, both of
/// which AWS-LC accepts; so the fallback never runs in practice. It exists
/// so that no input can make these functions panic or fail.
struct DhKey<'a> {
    p256: &'a SecretKey,
    lc: Option<agreement::PrivateKey>,
}

impl<'a> DhKey<'a> {
    fn new(sk: &'a SecretKey) -> Self {
        let mut scalar = sk.to_bytes();
        let lc = agreement::PrivateKey::from_private_key(&agreement::ECDH_P256, &scalar).ok();
        scalar[..].zeroize();
        DhKey { p256: sk, lc }
    }

    /// `SerializePublicKey(pk(sk))`.
    fn public_key(&self) -> [u8; N_ENC] {
        if let Some(public) = self.lc.as_ref().and_then(|k| k.compute_public_key().ok()) {
            if let Ok(bytes) = <[u8; N_ENC]>::try_from(public.as_ref()) {
                return bytes;
            }
        }
        serialize_public_key(&self.p256.public_key())
    }

    /// `DH(sk, pk)`: the x-coordinate of `sk * pk`; `pk_bytes` is
    /// `SerializePublicKey(pk)`.
    fn dh(&self, pk: &PublicKey, pk_bytes: &[u8; N_ENC]) -> Zeroizing<[u8; N_SECRET]> {
        let mut out = Zeroizing::new([0u8; N_SECRET]);
        if let Some(key) = &self.lc {
            let peer = agreement::UnparsedPublicKey::new(&agreement::ECDH_P256, &pk_bytes[..]);
            let agreed = agreement::agree(key, peer, (), |shared| {
                if shared.len() != N_SECRET {
                    return Err(());
                }
                out.copy_from_slice(shared);
                Ok(())
            });
            if agreed.is_ok() {
                return out;
            }
        }
        let shared = p256::ecdh::diffie_hellman(self.p256.to_nonzero_scalar(), pk.as_affine());
        out.copy_from_slice(shared.raw_secret_bytes());
        out
    }
}

/// `DH(sk, pk)` as the KEM computes it (for conformance tests of the curve
/// arithmetic, such as Wycheproof's ECDH vectors).
pub fn diffie_hellman(sk: &SecretKey, pk: &PublicKey) -> Zeroizing<[u8; N_SECRET]> {
    DhKey::new(sk).dh(pk, &serialize_public_key(pk))
}

/// `DeriveKeyPair(ikm)` of DHKEM(P-256, HKDF-SHA256) (RFC 9180, section 7.1.3).
pub fn derive_key_pair(ikm: &[u8]) -> Result<SecretKey, HpkeError> {
    let dkp_prk = labeled_extract(&KEM_SUITE_ID, b"", b"dkp_prk", ikm);
    for counter in 0u8..=255 {
        let mut bytes = Zeroizing::new([0u8; 32]);
        labeled_expand(
            &KEM_SUITE_ID,
            &dkp_prk,
            b"candidate",
            &[counter],
            &mut bytes[..],
        );
        // The bitmask for P-256 is 0xff: nothing to clear.
        if let Ok(sk) = SecretKey::from_slice(&bytes[..]) {
            return Ok(sk);
        }
    }
    Err(HpkeError::DeriveKeyPair)
}

fn extract_and_expand(dh: &[u8], kem_context: &[u8]) -> Zeroizing<[u8; N_SECRET]> {
    let eae_prk = labeled_extract(&KEM_SUITE_ID, b"", b"eae_prk", dh);
    let mut shared = Zeroizing::new([0u8; N_SECRET]);
    labeled_expand(
        &KEM_SUITE_ID,
        &eae_prk,
        b"shared_secret",
        kem_context,
        &mut shared[..],
    );
    shared
}

/// The KEM's output on the sender side. Its `Debug` shows `enc` only.
pub struct Encapsulation {
    /// The KEM shared secret.
    pub shared_secret: Zeroizing<[u8; N_SECRET]>,
    /// The encapsulated key to send.
    pub enc: [u8; N_ENC],
}

impl std::fmt::Debug for Encapsulation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Encapsulation")
            .field("enc", &format_args!("{} bytes", self.enc.len()))
            .finish_non_exhaustive()
    }
}

/// `Encap(pkR)` (sender `None`) or `AuthEncap(pkR, skS)` with the given
/// ephemeral secret key. Callers pass a fresh random key; tests pass the
/// RFC 9180 vector's.
pub fn encap(pk_r: &PublicKey, sender: Option<&SecretKey>, sk_e: &SecretKey) -> Encapsulation {
    let sk_e = DhKey::new(sk_e);
    let enc = sk_e.public_key();
    let pk_rm = serialize_public_key(pk_r);
    let mut dh_bytes = Zeroizing::new(Vec::with_capacity(2 * N_SECRET));
    dh_bytes.extend_from_slice(&sk_e.dh(pk_r, &pk_rm)[..]);
    let mut kem_context = Vec::with_capacity(3 * N_ENC);
    kem_context.extend_from_slice(&enc);
    kem_context.extend_from_slice(&pk_rm);
    if let Some(sk_s) = sender {
        let sk_s = DhKey::new(sk_s);
        dh_bytes.extend_from_slice(&sk_s.dh(pk_r, &pk_rm)[..]);
        kem_context.extend_from_slice(&sk_s.public_key());
    }
    Encapsulation {
        shared_secret: extract_and_expand(&dh_bytes, &kem_context),
        enc,
    }
}

/// `Decap(enc, skR)` (sender `None`) or `AuthDecap(enc, skR, pkS)`.
pub fn decap(
    enc: &[u8],
    sk_r: &SecretKey,
    sender: Option<&PublicKey>,
) -> Result<Zeroizing<[u8; N_SECRET]>, HpkeError> {
    let pk_e = deserialize_public_key(enc)?;
    let pk_em = serialize_public_key(&pk_e);
    let sk_r = DhKey::new(sk_r);
    let pk_rm = sk_r.public_key();
    let mut dh_bytes = Zeroizing::new(Vec::with_capacity(2 * N_SECRET));
    dh_bytes.extend_from_slice(&sk_r.dh(&pk_e, &pk_em)[..]);
    let mut kem_context = Vec::with_capacity(3 * N_ENC);
    kem_context.extend_from_slice(enc);
    kem_context.extend_from_slice(&pk_rm);
    if let Some(pk_s) = sender {
        let pk_sm = serialize_public_key(pk_s);
        dh_bytes.extend_from_slice(&sk_r.dh(pk_s, &pk_sm)[..]);
        kem_context.extend_from_slice(&pk_sm);
    }
    Ok(extract_and_expand(&dh_bytes, &kem_context))
}

/// An HPKE encryption context after `KeySchedule` (RFC 9180, section 5.1),
/// usable by either side: `seal` and `open` advance the same sequence number.
pub struct Context {
    aead: Aes256Gcm,
    key: Zeroizing<[u8; KEY_LEN]>,
    base_nonce: [u8; NONCE_LEN],
    exporter_secret: Zeroizing<[u8; N_SECRET]>,
    seq: u64,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("seq", &self.seq)
            .finish_non_exhaustive()
    }
}

impl Context {
    /// `KeySchedule(mode, shared_secret, info, "", "")`.
    pub fn new(mode: Mode, shared_secret: &[u8; N_SECRET], info: &[u8]) -> Self {
        let psk_id_hash = labeled_extract(&HPKE_SUITE_ID, b"", b"psk_id_hash", b"");
        let info_hash = labeled_extract(&HPKE_SUITE_ID, b"", b"info_hash", info);
        let mut ksc = Vec::with_capacity(1 + 2 * N_SECRET);
        ksc.push(mode as u8);
        ksc.extend_from_slice(&psk_id_hash[..]);
        ksc.extend_from_slice(&info_hash[..]);
        let secret = labeled_extract(&HPKE_SUITE_ID, shared_secret, b"secret", b"");
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        labeled_expand(&HPKE_SUITE_ID, &secret, b"key", &ksc, &mut key[..]);
        let mut base_nonce = [0u8; NONCE_LEN];
        labeled_expand(
            &HPKE_SUITE_ID,
            &secret,
            b"base_nonce",
            &ksc,
            &mut base_nonce,
        );
        let mut exporter_secret = Zeroizing::new([0u8; N_SECRET]);
        labeled_expand(
            &HPKE_SUITE_ID,
            &secret,
            b"exp",
            &ksc,
            &mut exporter_secret[..],
        );
        Context {
            aead: Aes256Gcm::new(&key),
            key,
            base_nonce,
            exporter_secret,
            seq: 0,
        }
    }

    /// `ComputeNonce(seq)`, or `MessageLimit` if `seq` could not be incremented
    /// after use.
    fn current_nonce(&self) -> Result<[u8; NONCE_LEN], HpkeError> {
        if self.seq == u64::MAX {
            return Err(HpkeError::MessageLimit);
        }
        let mut nonce = self.base_nonce;
        for (n, s) in nonce[NONCE_LEN - 8..]
            .iter_mut()
            .zip(self.seq.to_be_bytes())
        {
            *n ^= s;
        }
        Ok(nonce)
    }

    /// `ContextS.Seal(aad, pt)`: returns `ct || tag`.
    pub fn seal(&mut self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, HpkeError> {
        let nonce = self.current_nonce()?;
        let mut out = Vec::with_capacity(plaintext.len() + TAG_LEN);
        out.extend_from_slice(plaintext);
        let tag = self.aead.seal_in_place(nonce, aad, &mut out);
        out.extend_from_slice(&tag);
        self.seq += 1;
        Ok(out)
    }

    /// `ContextR.Open(aad, ct)` into `out`, which must be `ct.len() - 16` bytes.
    /// `out` is wiped if the tag does not verify. As in RFC 9180, section 5.2,
    /// the sequence number advances only when the open succeeds.
    pub fn open_into(
        &mut self,
        aad: &[u8],
        ciphertext: &[u8],
        out: &mut [u8],
    ) -> Result<(), HpkeError> {
        if ciphertext.len() < TAG_LEN || out.len() != ciphertext.len() - TAG_LEN {
            return Err(HpkeError::OpenFailed);
        }
        let nonce = self.current_nonce()?;
        let (body, tag) = ciphertext.split_at(ciphertext.len() - TAG_LEN);
        let mut t = [0u8; TAG_LEN];
        t.copy_from_slice(tag);
        out.copy_from_slice(body);
        if let Err(OpenError) = self.aead.open_in_place(nonce, aad, out, &t) {
            out.zeroize();
            return Err(HpkeError::OpenFailed);
        }
        self.seq += 1;
        Ok(())
    }

    /// `Context.Export(exporter_context, L)` into `out`; `L` is at most 255 * 32.
    pub fn export(&self, exporter_context: &[u8], out: &mut [u8]) -> Result<(), HpkeError> {
        if out.len() > 255 * N_SECRET {
            return Err(HpkeError::ExportTooLong);
        }
        labeled_expand(
            &HPKE_SUITE_ID,
            &self.exporter_secret,
            b"sec",
            exporter_context,
            out,
        );
        Ok(())
    }

    /// The AEAD key, for conformance tests against RFC 9180 vectors.
    pub fn key_bytes_for_conformance(&self) -> &[u8; KEY_LEN] {
        &self.key
    }

    /// The base nonce, for conformance tests against RFC 9180 vectors.
    pub fn base_nonce(&self) -> &[u8; NONCE_LEN] {
        &self.base_nonce
    }

    /// The exporter secret, for conformance tests against RFC 9180 vectors.
    pub fn exporter_secret_for_conformance(&self) -> &[u8; N_SECRET] {
        &self.exporter_secret
    }
}
