//! HPKE (RFC 9180) for the one suite kapsel uses:
//! DHKEM(P-256, HKDF-SHA256) / HKDF-SHA256 / AES-256-GCM
//! (kem `0x0010`, kdf `0x0001`, aead `0x0002`), in base mode (`0x00`) and
//! auth mode (`0x02`). PSK modes are not used by kapsel and not provided.
//!
//! Only the composition is written here: every primitive is AWS-LC's,
//! through `aws-lc-rs` (P-256 in [`crate::ec`], HMAC-SHA256 for
//! HKDF-Extract, HKDF-SHA256-Expand, the AEAD from [`crate::aead`]). The
//! whole module is checked against the RFC 9180 test vectors (key schedule,
//! 257 sequential encryptions, exports) in `testvectors/tests/rfc9180_hpke.rs`,
//! and its HKDF against Wycheproof's HKDF-SHA-256 vectors.

use aws_lc_rs::{hkdf, hmac};
use zeroize::{Zeroize, Zeroizing};

use crate::aead::{Aes256Gcm, OpenError, KEY_LEN, NONCE_LEN, TAG_LEN};
pub use crate::ec::{PublicKey, SecretKey};

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
/// `suite_id` of the key schedule for KEM `kem_id` with HKDF-SHA256 and AES-256-GCM.
fn hpke_suite_id(kem_id: u16) -> [u8; 10] {
    let [k0, k1] = kem_id.to_be_bytes();
    let [f0, f1] = KDF_ID.to_be_bytes();
    let [a0, a1] = AEAD_ID.to_be_bytes();
    [b'H', b'P', b'K', b'E', k0, k1, f0, f1, a0, a1]
}

/// RFC 9180's `KeySchedule` (no PSK) with HKDF-SHA256 for any `suite_id`
/// and AEAD key length: the AEAD key, base nonce and exporter secret.
#[allow(clippy::too_many_arguments)]
fn key_schedule(
    suite: &[u8],
    mode: Mode,
    shared_secret: &[u8; N_SECRET],
    info: &[u8],
    key: &mut [u8],
    base_nonce: &mut [u8; NONCE_LEN],
    exporter_secret: &mut [u8; N_SECRET],
) {
    let psk_id_hash = labeled_extract(suite, b"", b"psk_id_hash", b"");
    let info_hash = labeled_extract(suite, b"", b"info_hash", info);
    let mut ksc = Vec::with_capacity(1 + 2 * N_SECRET);
    ksc.push(mode as u8);
    ksc.extend_from_slice(&psk_id_hash[..]);
    ksc.extend_from_slice(&info_hash[..]);
    let secret = labeled_extract(suite, shared_secret, b"secret", b"");
    labeled_expand(suite, &secret, b"key", &ksc, key);
    labeled_expand(suite, &secret, b"base_nonce", &ksc, base_nonce);
    labeled_expand(suite, &secret, b"exp", &ksc, exporter_secret);
}

/// The key schedule of any HPKE suite with KDF HKDF-SHA256 (`kdf_id`
/// `0x0001`), for conformance tests against vectors whose AEAD is not
/// AES-256-GCM (`key_len` 16 for AES-128-GCM): returns the key, the base
/// nonce and the exporter secret. Not for files.
#[doc(hidden)]
#[cfg_attr(not(feature = "hazmat"), allow(dead_code))]
pub fn key_schedule_for_conformance(
    kem_id: u16,
    aead_id: u16,
    key_len: usize,
    shared_secret: &[u8; N_SECRET],
    info: &[u8],
) -> (
    Zeroizing<Vec<u8>>,
    [u8; NONCE_LEN],
    Zeroizing<[u8; N_SECRET]>,
) {
    let [k0, k1] = kem_id.to_be_bytes();
    let [f0, f1] = KDF_ID.to_be_bytes();
    let [a0, a1] = aead_id.to_be_bytes();
    let suite = [b'H', b'P', b'K', b'E', k0, k1, f0, f1, a0, a1];
    let mut key = Zeroizing::new(vec![0u8; key_len]);
    let mut base_nonce = [0u8; NONCE_LEN];
    let mut exporter = Zeroizing::new([0u8; N_SECRET]);
    key_schedule(
        &suite,
        Mode::Base,
        shared_secret,
        info,
        &mut key,
        &mut base_nonce,
        &mut exporter,
    );
    (key, base_nonce, exporter)
}

/// HPKE mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// `mode_base`: the sender is anonymous.
    Base = 0x00,
    #[cfg_attr(not(feature = "hazmat"), allow(dead_code))] // used through `hazmat`
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
    #[cfg_attr(not(feature = "hazmat"), allow(dead_code))] // used through `hazmat`
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
    hkdf_sha256_extract(salt, &labeled)
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
    // Callers ask for at most 255 * 32 bytes (they ask for 12, 32 or an export
    // length they bound); on a longer request `out` stays zero.
    let _ = hkdf_sha256_expand(prk, &[&len, b"HPKE-v1", suite_id, label, info], out);
}

/// HKDF-SHA256-Extract (RFC 5869): `HMAC-SHA256(salt, ikm)`, the PRK
/// itself (RFC 9180's key schedule hashes with it). Exposed for the
/// Wycheproof HKDF test; not for files.
#[doc(hidden)]
pub fn hkdf_sha256_extract(salt: &[u8], ikm: &[u8]) -> Zeroizing<[u8; N_SECRET]> {
    let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, salt), ikm);
    let mut out = Zeroizing::new([0u8; N_SECRET]);
    out.copy_from_slice(tag.as_ref());
    out
}

/// HKDF-SHA256-Expand (RFC 5869) of the concatenated `info` pieces into
/// `out`; `Err` for more than 255 * 32 bytes. Exposed for the Wycheproof
/// HKDF test; not for files.
#[doc(hidden)]
pub fn hkdf_sha256_expand(
    prk: &[u8; N_SECRET],
    info: &[&[u8]],
    out: &mut [u8],
) -> Result<(), HpkeError> {
    struct Len(usize);
    impl hkdf::KeyType for Len {
        fn len(&self) -> usize {
            self.0
        }
    }
    let prk = hkdf::Prk::new_less_safe(hkdf::HKDF_SHA256, prk);
    prk.expand(info, Len(out.len()))
        .and_then(|okm| okm.fill(out))
        .map_err(|_| HpkeError::ExportTooLong)
}

/// `DeserializePublicKey`: only the uncompressed form is accepted, and the
/// point must be on the curve and not the identity.
pub fn deserialize_public_key(bytes: &[u8]) -> Result<PublicKey, HpkeError> {
    if bytes.len() != N_ENC || bytes[0] != 0x04 {
        return Err(HpkeError::InvalidPublicKey);
    }
    PublicKey::from_sec1_bytes(bytes).map_err(|_| HpkeError::InvalidPublicKey)
}

#[cfg_attr(not(feature = "hazmat"), allow(dead_code))] // used through `hazmat`
/// `DH(sk, pk)` as the KEM computes it (for conformance tests of the curve
/// arithmetic, such as Wycheproof's ECDH vectors).
pub fn diffie_hellman(sk: &SecretKey, pk: &PublicKey) -> Zeroizing<[u8; N_SECRET]> {
    sk.diffie_hellman(pk)
}

#[cfg_attr(not(feature = "hazmat"), allow(dead_code))] // used through `hazmat`
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
        if let Ok(sk) = SecretKey::from_bytes(&bytes[..]) {
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
    let enc = sk_e.public_key().to_uncompressed();
    let pk_rm = pk_r.as_uncompressed();
    let mut dh_bytes = Zeroizing::new(Vec::with_capacity(2 * N_SECRET));
    dh_bytes.extend_from_slice(&sk_e.diffie_hellman(pk_r)[..]);
    let mut kem_context = Vec::with_capacity(3 * N_ENC);
    kem_context.extend_from_slice(&enc);
    kem_context.extend_from_slice(pk_rm);
    if let Some(sk_s) = sender {
        dh_bytes.extend_from_slice(&sk_s.diffie_hellman(pk_r)[..]);
        kem_context.extend_from_slice(sk_s.public_key().as_uncompressed());
    }
    Encapsulation {
        shared_secret: extract_and_expand(&dh_bytes, &kem_context),
        enc,
    }
}

/// `Decap(enc, skR)` (sender `None`) or `AuthDecap(enc, skR, pkS)`.
#[cfg_attr(not(feature = "hazmat"), allow(dead_code))] // used through `hazmat`
pub fn decap(
    enc: &[u8],
    sk_r: &SecretKey,
    sender: Option<&PublicKey>,
) -> Result<Zeroizing<[u8; N_SECRET]>, HpkeError> {
    let pk_e = deserialize_public_key(enc)?;
    let mut dh_bytes = Zeroizing::new(Vec::with_capacity(2 * N_SECRET));
    dh_bytes.extend_from_slice(&sk_r.diffie_hellman(&pk_e)[..]);
    let mut kem_context = Vec::with_capacity(3 * N_ENC);
    kem_context.extend_from_slice(enc);
    kem_context.extend_from_slice(sk_r.public_key().as_uncompressed());
    if let Some(pk_s) = sender {
        dh_bytes.extend_from_slice(&sk_r.diffie_hellman(pk_s)[..]);
        kem_context.extend_from_slice(pk_s.as_uncompressed());
    }
    Ok(extract_and_expand(&dh_bytes, &kem_context))
}

/// `Decap(enc, skR)` in base mode with the Diffie-Hellman done by `key`,
/// which may live outside this process. The outer error is a malformed
/// `enc`, the inner one a failure of the key.
pub(crate) fn decap_with_key(
    enc: &[u8],
    key: &dyn crate::identity::IdentityKey,
) -> Result<Result<Zeroizing<[u8; N_SECRET]>, crate::identity::IdentityError>, HpkeError> {
    let pk_e = deserialize_public_key(enc)?;
    let pk_r = key.recipient();
    let dh = match key.diffie_hellman(&crate::keys::Recipient::from_public_key(pk_e)) {
        Ok(dh) => dh,
        Err(e) => return Ok(Err(e)),
    };
    let mut kem_context = Vec::with_capacity(2 * N_ENC);
    kem_context.extend_from_slice(enc);
    kem_context.extend_from_slice(pk_r.public_key().as_uncompressed());
    Ok(Ok(extract_and_expand(&dh.as_bytes()[..], &kem_context)))
}

/// An HPKE encryption context after `KeySchedule` (RFC 9180, section 5.1),
/// usable by either side: `seal` and `open` advance the same sequence number.
pub struct Context {
    suite: [u8; 10],
    aead: Aes256Gcm,
    #[cfg_attr(not(feature = "hazmat"), allow(dead_code))] // used through `hazmat`
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
    /// `KeySchedule(mode, shared_secret, info, "", "")` for DHKEM(P-256).
    pub fn new(mode: Mode, shared_secret: &[u8; N_SECRET], info: &[u8]) -> Self {
        Self::for_kem(KEM_ID, mode, shared_secret, info)
    }

    /// `KeySchedule(mode, shared_secret, info, "", "")` with HKDF-SHA256 and
    /// AES-256-GCM after the KEM `kem_id` (`0x0010` DHKEM(P-256), `0x0050`
    /// MLKEM768-P256): only `suite_id` depends on the KEM.
    pub fn for_kem(kem_id: u16, mode: Mode, shared_secret: &[u8; N_SECRET], info: &[u8]) -> Self {
        let suite = hpke_suite_id(kem_id);
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        let mut base_nonce = [0u8; NONCE_LEN];
        let mut exporter_secret = Zeroizing::new([0u8; N_SECRET]);
        key_schedule(
            &suite,
            mode,
            shared_secret,
            info,
            &mut key[..],
            &mut base_nonce,
            &mut exporter_secret,
        );
        Context {
            suite,
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

    #[cfg_attr(not(feature = "hazmat"), allow(dead_code))] // used through `hazmat`
    /// `Context.Export(exporter_context, L)` into `out`; `L` is at most 255 * 32.
    pub fn export(&self, exporter_context: &[u8], out: &mut [u8]) -> Result<(), HpkeError> {
        if out.len() > 255 * N_SECRET {
            return Err(HpkeError::ExportTooLong);
        }
        labeled_expand(
            &self.suite,
            &self.exporter_secret,
            b"sec",
            exporter_context,
            out,
        );
        Ok(())
    }

    /// The AEAD key, for conformance tests against RFC 9180 vectors.
    #[cfg(feature = "hazmat")]
    pub fn key_bytes_for_conformance(&self) -> &[u8; KEY_LEN] {
        &self.key
    }

    /// The base nonce, for conformance tests against RFC 9180 vectors.
    #[cfg(feature = "hazmat")]
    pub fn base_nonce(&self) -> &[u8; NONCE_LEN] {
        &self.base_nonce
    }

    /// The exporter secret, for conformance tests against RFC 9180 vectors.
    #[cfg(feature = "hazmat")]
    pub fn exporter_secret_for_conformance(&self) -> &[u8; N_SECRET] {
        &self.exporter_secret
    }
}
