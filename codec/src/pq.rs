//! The hybrid post-quantum KEM MLKEM768-P256 (HPKE KEM `0x0050`,
//! draft-ietf-hpke-pq with draft-irtf-cfrg-concrete-hybrid-kems), the KEM of
//! the type `0x0002` stanza (SPEC.md section 14).
//!
//! A private key is a 32-byte seed. `expandKey` stretches it with SHAKE256
//! into a 64-byte ML-KEM-768 seed `d || z` and 128 bytes from which the P-256
//! scalar is drawn (32 bytes at a time until one lies in `[1, n-1]`). The
//! public key is the ML-KEM-768 encapsulation key (1184 bytes) followed by
//! the uncompressed P-256 point (65); `enc` is the ML-KEM-768 ciphertext
//! (1088) followed by the ephemeral point (65), and the shared secret is
//! `SHA3-256(ss_PQ || ss_T || ct_T || ek_T || "MLKEM768-P256")`.
//!
//! Who computes what: AWS-LC (through aws-lc-rs) does ML-KEM-768
//! encapsulation and decapsulation, the P-256 arithmetic, SHA3-256 and the
//! random seeds. aws-lc-rs 1.19 exposes neither ML-KEM key generation from
//! a seed nor SHAKE256, so RustCrypto's `ml-kem` expands the seed into the
//! FIPS 203 key pair (once per key, `KeyGen_internal`) and `sha3` computes
//! SHAKE256; AWS-LC then loads the expanded decapsulation key. RustCrypto's
//! deterministic encapsulation is used only where a test must reproduce
//! bytes ([`encap_derand`]).
//!
//! Checked against the draft's test vectors for KEM `0x0050` and Wycheproof's
//! ML-KEM-768 vectors in `testvectors/tests/hpke_pq.rs` and
//! `testvectors/tests/wycheproof_mlkem.rs`.

use aws_lc_rs::digest;
use aws_lc_rs::kem::{Ciphertext, DecapsulationKey, EncapsulationKey, ML_KEM_768};
use ml_kem::{EncapsulateDeterministic, EncodedSizeUser, KemCore, MlKem768, B32};
use sha3::digest::{ExtendableOutput, Update, XofReader};
use zeroize::Zeroizing;

use crate::ec::{PublicKey, SecretKey};
use crate::hpke::{HpkeError, N_SECRET};
use kapsel_format::{HybridEnc, HYBRID_ENC_LEN, MLKEM768_CIPHERTEXT_LEN, P256_POINT_LEN};

/// KEM identifier of MLKEM768-P256.
pub const KEM_ID: u16 = 0x0050;
/// Length of a private key (the seed).
pub const SEED_LEN: usize = 32;
/// Length of an ML-KEM-768 encapsulation key.
pub const MLKEM768_EK_LEN: usize = 1184;
/// Length of a public key: ML-KEM-768 encapsulation key || P-256 point.
pub const PUBLIC_KEY_LEN: usize = MLKEM768_EK_LEN + P256_POINT_LEN;
/// The combiner's label.
const LABEL: &[u8] = b"MLKEM768-P256";
/// Bytes of `expandKey`'s output: ML-KEM seed (64) and P-256 seed (128).
const EXPANDED_LEN: usize = 64 + 128;

/// 32 bytes as RustCrypto's array type (`x` is always 32 bytes here).
fn b32(x: &[u8]) -> B32 {
    let mut a = [0u8; 32];
    a.copy_from_slice(&x[..32]);
    B32::from(a)
}

/// SHAKE256 of the concatenated `parts` into `out` (RustCrypto `sha3`).
fn shake256(parts: &[&[u8]], out: &mut [u8]) {
    let mut h = sha3::Shake256::default();
    for p in parts {
        h.update(p);
    }
    h.finalize_xof().read(out);
}

/// `SHAKE256.LabeledDerive(ikm, label, context, L)` with `suite_id =
/// "KEM" || 00 50` (draft-ietf-hpke-pq, single-stage KDFs).
pub fn labeled_derive(ikm: &[u8], label: &[u8], context: &[u8], out: &mut [u8]) {
    let [k0, k1] = KEM_ID.to_be_bytes();
    let label_len = u16::try_from(label.len()).unwrap_or(u16::MAX).to_be_bytes();
    let out_len = u16::try_from(out.len()).unwrap_or(u16::MAX).to_be_bytes();
    shake256(
        &[
            ikm,
            b"HPKE-v1",
            &[b'K', b'E', b'M', k0, k1],
            &label_len,
            label,
            &out_len,
            context,
        ],
        out,
    );
}

/// `Group.RandomScalar(seed)` for P-256: the first 32-byte window of `seed`
/// that is a scalar in `[1, n-1]`.
fn random_scalar(seed: &[u8]) -> Result<SecretKey, HpkeError> {
    seed.chunks_exact(32)
        .find_map(|c| SecretKey::from_bytes(c).ok())
        .ok_or(HpkeError::DeriveKeyPair)
}

/// A hybrid public key: ML-KEM-768 encapsulation key and P-256 point, both
/// validated (FIPS 203's modulus check by AWS-LC; the point on the curve).
#[derive(Clone)]
pub struct HybridPublicKey {
    bytes: Box<[u8; PUBLIC_KEY_LEN]>,
    p256: PublicKey,
}

impl PartialEq for HybridPublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.bytes == other.bytes
    }
}
impl Eq for HybridPublicKey {}

impl std::fmt::Debug for HybridPublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HybridPublicKey({:02x?}..)", &self.bytes[..8])
    }
}

impl HybridPublicKey {
    /// Parses `ek_PQ || ek_T` (1249 bytes). Refuses an encapsulation key
    /// that fails FIPS 203's check and a point not on P-256.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, HpkeError> {
        if bytes.len() != PUBLIC_KEY_LEN {
            return Err(HpkeError::InvalidPublicKey);
        }
        let (ek, point) = bytes.split_at(MLKEM768_EK_LEN);
        if !mlkem768_ek_is_valid(ek) {
            return Err(HpkeError::InvalidPublicKey);
        }
        if point[0] != 0x04 {
            return Err(HpkeError::InvalidPublicKey);
        }
        let p256 = PublicKey::from_sec1_bytes(point).map_err(|_| HpkeError::InvalidPublicKey)?;
        let mut b = Box::new([0u8; PUBLIC_KEY_LEN]);
        b.copy_from_slice(bytes);
        Ok(HybridPublicKey { bytes: b, p256 })
    }

    /// The 1249 bytes `ek_PQ || ek_T`.
    pub fn as_bytes(&self) -> &[u8; PUBLIC_KEY_LEN] {
        &self.bytes
    }

    fn mlkem_ek(&self) -> &[u8] {
        &self.bytes[..MLKEM768_EK_LEN]
    }

    fn point(&self) -> &[u8] {
        &self.bytes[MLKEM768_EK_LEN..]
    }
}

/// A hybrid private key: the seed and what it expands to. No `Debug` of
/// secret bytes; the seed is wiped on drop (AWS-LC wipes its own keys).
pub struct HybridSecretKey {
    seed: Zeroizing<[u8; SEED_LEN]>,
    mlkem: DecapsulationKey,
    p256: SecretKey,
    public: HybridPublicKey,
}

impl std::fmt::Debug for HybridSecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HybridSecretKey")
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

impl Clone for HybridSecretKey {
    fn clone(&self) -> Self {
        // Expanding a seed that expanded once cannot fail.
        #[allow(clippy::expect_used)]
        Self::from_seed(&self.seed).expect("seed expanded before")
    }
}

impl HybridSecretKey {
    /// A new key from a random seed drawn from AWS-LC's generator.
    pub fn generate() -> Self {
        let mut seed = Zeroizing::new([0u8; SEED_LEN]);
        crate::backend::fill_random(&mut seed[..]);
        loop {
            if let Ok(k) = Self::from_seed(&seed) {
                return k;
            }
            // Only if all four P-256 windows are out of range (probability
            // below 2^-128): draw again.
            crate::backend::fill_random(&mut seed[..]);
        }
    }

    /// `expandKey(seed)`: the key pair a 32-byte seed stands for.
    pub fn from_seed(seed: &[u8; SEED_LEN]) -> Result<Self, HpkeError> {
        let mut full = Zeroizing::new([0u8; EXPANDED_LEN]);
        shake256(&[seed], &mut full[..]);
        let d = b32(&full[..32]);
        let z = b32(&full[32..64]);
        let (dk, ek) = MlKem768::generate_deterministic(&d, &z);
        let dk_bytes = Zeroizing::new(dk.as_bytes().to_vec());
        let mlkem =
            DecapsulationKey::new(&ML_KEM_768, &dk_bytes).map_err(|_| HpkeError::DeriveKeyPair)?;
        let p256 = random_scalar(&full[64..])?;
        let mut public = Vec::with_capacity(PUBLIC_KEY_LEN);
        public.extend_from_slice(&ek.as_bytes());
        public.extend_from_slice(p256.public_key().as_uncompressed());
        let public = HybridPublicKey::from_bytes(&public)?;
        Ok(HybridSecretKey {
            seed: Zeroizing::new(*seed),
            mlkem,
            p256,
            public,
        })
    }

    /// The public key.
    pub fn public_key(&self) -> &HybridPublicKey {
        &self.public
    }

    /// The 32-byte seed, the whole private key. Handle with care.
    pub fn seed_bytes(&self) -> &[u8; SEED_LEN] {
        &self.seed
    }
}

/// `DeriveKeyPair(ikm)` of draft-ietf-hpke-pq: `seed =
/// SHAKE256.LabeledDerive(ikm, "DeriveKeyPair", "", 32)`, then `expandKey`.
pub fn derive_key_pair(ikm: &[u8]) -> Result<HybridSecretKey, HpkeError> {
    let mut seed = Zeroizing::new([0u8; SEED_LEN]);
    labeled_derive(ikm, b"DeriveKeyPair", b"", &mut seed[..]);
    HybridSecretKey::from_seed(&seed)
}

/// The KEM's output on the sender side.
pub struct HybridEncapsulation {
    /// The shared secret.
    pub shared_secret: Zeroizing<[u8; N_SECRET]>,
    /// `enc`: ML-KEM-768 ciphertext || ephemeral P-256 point.
    pub enc: HybridEnc,
}

impl std::fmt::Debug for HybridEncapsulation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HybridEncapsulation")
            .finish_non_exhaustive()
    }
}

fn combine(ss_pq: &[u8], ss_t: &[u8], ct_t: &[u8], ek_t: &[u8]) -> Zeroizing<[u8; N_SECRET]> {
    let mut h = digest::Context::new(&digest::SHA3_256);
    h.update(ss_pq);
    h.update(ss_t);
    h.update(ct_t);
    h.update(ek_t);
    h.update(LABEL);
    let mut out = Zeroizing::new([0u8; N_SECRET]);
    out.copy_from_slice(h.finish().as_ref());
    out
}

fn assemble(ct_pq: &[u8], ephemeral: &SecretKey) -> HybridEnc {
    let mut enc = Box::new([0u8; HYBRID_ENC_LEN]);
    enc[..MLKEM768_CIPHERTEXT_LEN].copy_from_slice(ct_pq);
    enc[MLKEM768_CIPHERTEXT_LEN..].copy_from_slice(ephemeral.public_key().as_uncompressed());
    HybridEnc(enc)
}

/// `Encap(pk)` with AWS-LC's ML-KEM-768 encapsulation (its own randomness)
/// and the given fresh ephemeral P-256 key.
pub fn encap(
    pk: &HybridPublicKey,
    ephemeral: &SecretKey,
) -> Result<HybridEncapsulation, HpkeError> {
    let ek = EncapsulationKey::new(&ML_KEM_768, pk.mlkem_ek())
        .map_err(|_| HpkeError::InvalidPublicKey)?;
    let (ct, ss_pq) = ek.encapsulate().map_err(|_| HpkeError::InvalidPublicKey)?;
    let ss_t = ephemeral.diffie_hellman(&pk.p256);
    let enc = assemble(ct.as_ref(), ephemeral);
    Ok(HybridEncapsulation {
        shared_secret: combine(ss_pq.as_ref(), &ss_t[..], enc.p256_point(), pk.point()),
        enc,
    })
}

/// `Encap(pk)` with the ML-KEM-768 randomness `m` given: RustCrypto's
/// deterministic `ML-KEM.Encaps_internal`. Hazardous, for reproducible
/// conformance vectors and the draft's test vectors only.
#[doc(hidden)]
pub fn encap_derand(
    pk: &HybridPublicKey,
    m: &[u8; 32],
    ephemeral: &SecretKey,
) -> Result<HybridEncapsulation, HpkeError> {
    let encoded =
        ml_kem::Encoded::<<MlKem768 as KemCore>::EncapsulationKey>::try_from(pk.mlkem_ek())
            .map_err(|_| HpkeError::InvalidPublicKey)?;
    let ek = <MlKem768 as KemCore>::EncapsulationKey::from_bytes(&encoded);
    let (ct, ss_pq) = ek
        .encapsulate_deterministic(&b32(m))
        .map_err(|_| HpkeError::InvalidPublicKey)?;
    let ss_pq = Zeroizing::new(<[u8; 32]>::from(ss_pq));
    let ss_t = ephemeral.diffie_hellman(&pk.p256);
    let enc = assemble(ct.as_slice(), ephemeral);
    Ok(HybridEncapsulation {
        shared_secret: combine(&ss_pq[..], &ss_t[..], enc.p256_point(), pk.point()),
        enc,
    })
}

/// Draws the ephemeral P-256 key of [`encap`] as the draft's test vectors
/// do, from 96 or 128 bytes of randomness (`RandomScalar`).
#[doc(hidden)]
pub fn ephemeral_from_seed(seed: &[u8]) -> Result<SecretKey, HpkeError> {
    random_scalar(seed)
}

/// Validates the P-256 half of `enc` (the ML-KEM ciphertext needs none:
/// decapsulation of any 1088 bytes is defined, with implicit rejection).
pub fn check_enc(enc: &HybridEnc) -> Result<PublicKey, HpkeError> {
    crate::hpke::deserialize_public_key(enc.p256_point())
}

/// `Decap(enc, sk)`: AWS-LC's ML-KEM-768 decapsulation and P-256 ECDH.
pub fn decap(
    enc: &HybridEnc,
    sk: &HybridSecretKey,
) -> Result<Zeroizing<[u8; N_SECRET]>, HpkeError> {
    let ct_t = check_enc(enc)?;
    let ss_pq = sk
        .mlkem
        .decapsulate(Ciphertext::from(enc.mlkem_ciphertext()))
        .map_err(|_| HpkeError::OpenFailed)?;
    let ss_t = sk.p256.diffie_hellman(&ct_t);
    Ok(combine(
        ss_pq.as_ref(),
        &ss_t[..],
        enc.p256_point(),
        sk.public.point(),
    ))
}

/// ML-KEM-768 primitives alone, for the Wycheproof tests: key generation
/// from `d || z` (RustCrypto), returning the encapsulation key and the
/// FIPS 203 expanded decapsulation key.
#[doc(hidden)]
pub fn mlkem768_keygen_from_seed(seed: &[u8; 64]) -> (Vec<u8>, Zeroizing<Vec<u8>>) {
    let (dk, ek) = MlKem768::generate_deterministic(&b32(&seed[..32]), &b32(&seed[32..]));
    (
        ek.as_bytes().to_vec(),
        Zeroizing::new(dk.as_bytes().to_vec()),
    )
}

/// ML-KEM-768 decapsulation by AWS-LC with an expanded decapsulation key
/// (2400 bytes), for the Wycheproof tests.
#[doc(hidden)]
pub fn mlkem768_decaps(dk: &[u8], ct: &[u8]) -> Result<Zeroizing<Vec<u8>>, HpkeError> {
    let dk = DecapsulationKey::new(&ML_KEM_768, dk).map_err(|_| HpkeError::InvalidPublicKey)?;
    dk.decapsulate(Ciphertext::from(ct))
        .map(|ss| Zeroizing::new(ss.as_ref().to_vec()))
        .map_err(|_| HpkeError::OpenFailed)
}

/// FIPS 203 section 7.2's encapsulation key check: 1184 bytes, and every
/// 12-bit coefficient of the 1152-byte `t` vector below q = 3329 (so that
/// `ByteEncode12(ByteDecode12(t)) == t`), and AWS-LC takes the key. AWS-LC's
/// `EncapsulationKey::new` checks the length only; its encapsulation refuses
/// a key that fails the check (measured against Wycheproof's vectors), but
/// a recipient string must be refused when it is read, not at encryption.
pub fn mlkem768_ek_is_valid(ek: &[u8]) -> bool {
    const Q: u16 = 3329;
    if ek.len() != MLKEM768_EK_LEN {
        return false;
    }
    let reduced = ek[..1152].chunks_exact(3).all(|b| {
        let c0 = u16::from(b[0]) | (u16::from(b[1] & 0x0f) << 8);
        let c1 = u16::from(b[1] >> 4) | (u16::from(b[2]) << 4);
        c0 < Q && c1 < Q
    });
    reduced && EncapsulationKey::new(&ML_KEM_768, ek).is_ok()
}

/// Whether AWS-LC alone (`EncapsulationKey::new`, then one encapsulation)
/// refuses `ek`: informative, for the Wycheproof test.
#[doc(hidden)]
pub fn mlkem768_ek_refused_by_aws_lc(ek: &[u8]) -> bool {
    EncapsulationKey::new(&ML_KEM_768, ek)
        .map(|k| k.encapsulate().is_err())
        .unwrap_or(true)
}

/// ML-KEM-768 deterministic encapsulation (RustCrypto) for the Wycheproof
/// encapsulation vectors: `(ciphertext, shared secret)`.
#[doc(hidden)]
pub fn mlkem768_encaps_derand(ek: &[u8], m: &[u8; 32]) -> Option<(Vec<u8>, [u8; 32])> {
    let encoded = ml_kem::Encoded::<<MlKem768 as KemCore>::EncapsulationKey>::try_from(ek).ok()?;
    let ek = <MlKem768 as KemCore>::EncapsulationKey::from_bytes(&encoded);
    let (ct, ss) = ek.encapsulate_deterministic(&b32(m)).ok()?;
    Some((ct.as_slice().to_vec(), ss.into()))
}
