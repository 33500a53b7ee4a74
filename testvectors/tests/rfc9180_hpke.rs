//! kapsel's HPKE composition (`kapsel_codec::hazmat::hpke`) against the RFC 9180
//! test vectors of DHKEM(P-256, HKDF-SHA256) / HKDF-SHA256 / AES-256-GCM:
//! DeriveKeyPair, Encap/AuthEncap, Decap/AuthDecap, the key schedule, all 257
//! sequential encryptions per mode, and every export.
//!
//! Vector file: `hpke/p256_sha256_aes256gcm.json` under the external vector
//! directory (see `kapsel_testvectors::external_vectors_dir`).

use kapsel_codec::hazmat::ec::{PublicKey, SecretKey};
use kapsel_codec::hazmat::hpke::{self, Context, HpkeError, Mode};
use kapsel_testvectors::{read_vector_file, unhex};
use serde::Deserialize;

const VECTOR_FILE: &str = "hpke/p256_sha256_aes256gcm.json";

const EXPECTED_MODES_CHECKED: usize = 2; // base (0) and auth (2)
const EXPECTED_MODES_NOT_APPLICABLE: usize = 2; // psk (1) and auth_psk (3)
const EXPECTED_ENCRYPTIONS: usize = 2 * 257;
const EXPECTED_EXPORTS: usize = 2 * 3;

#[derive(Debug, Deserialize)]
struct HpkeVector {
    mode: u8,
    kem_id: u16,
    kdf_id: u16,
    aead_id: u16,
    info: String,
    #[serde(rename = "ikmE")]
    ikm_e: String,
    #[serde(rename = "ikmR")]
    ikm_r: String,
    #[serde(rename = "ikmS")]
    ikm_s: Option<String>,
    #[serde(rename = "skEm")]
    sk_em: String,
    #[serde(rename = "skRm")]
    sk_rm: String,
    #[serde(rename = "skSm")]
    sk_sm: Option<String>,
    #[serde(rename = "pkEm")]
    pk_em: String,
    #[serde(rename = "pkRm")]
    pk_rm: String,
    #[serde(rename = "pkSm")]
    pk_sm: Option<String>,
    enc: String,
    shared_secret: String,
    key: String,
    base_nonce: String,
    exporter_secret: String,
    encryptions: Vec<Encryption>,
    exports: Vec<Export>,
}

#[derive(Debug, Deserialize)]
struct Encryption {
    aad: String,
    ct: String,
    nonce: String,
    pt: String,
}

#[derive(Debug, Deserialize)]
struct Export {
    exporter_context: String,
    #[serde(rename = "L")]
    length: usize,
    exported_value: String,
}

fn load_vectors() -> Option<Vec<HpkeVector>> {
    let text = read_vector_file(VECTOR_FILE)?;
    let vectors: Vec<HpkeVector> =
        serde_json::from_str(&text).expect("RFC 9180 vector file parses");
    for v in &vectors {
        assert_eq!(
            (v.kem_id, v.kdf_id, v.aead_id),
            (hpke::KEM_ID, hpke::KDF_ID, hpke::AEAD_ID),
            "vector file holds another HPKE suite"
        );
    }
    Some(vectors)
}

/// The HPKE mode kapsel implements for a vector's mode id, or `None` for the
/// PSK modes, which kapsel does not provide.
fn kapsel_mode(mode: u8) -> Option<Mode> {
    match mode {
        0 => Some(Mode::Base),
        2 => Some(Mode::Auth),
        1 | 3 => None,
        other => panic!("unknown HPKE mode {other} in {VECTOR_FILE}"),
    }
}

fn uncompressed(pk: &PublicKey) -> Vec<u8> {
    pk.to_uncompressed().to_vec()
}

/// Runs DeriveKeyPair on `ikm` and checks the secret and public key.
fn derive_and_check(who: &str, ikm: &str, sk_m: &str, pk_m: &str) -> SecretKey {
    let sk = hpke::derive_key_pair(&unhex(ikm)).expect("DeriveKeyPair succeeds");
    assert_eq!(
        hex::encode(sk.to_bytes()),
        sk_m,
        "DeriveKeyPair(ikm{who}) secret key"
    );
    assert_eq!(
        hex::encode(uncompressed(sk.public_key())),
        pk_m,
        "DeriveKeyPair(ikm{who}) public key"
    );
    sk
}

/// `base_nonce XOR I2OSP(seq, Nn)`.
fn nonce_for(base_nonce: &[u8; 12], seq: u64) -> [u8; 12] {
    let mut nonce = *base_nonce;
    for (n, s) in nonce[4..].iter_mut().zip(seq.to_be_bytes()) {
        *n ^= s;
    }
    nonce
}

/// Sender and receiver contexts of one vector, after checking the KEM and the
/// key schedule against it.
fn contexts(v: &HpkeVector, mode: Mode) -> (Context, Context) {
    let sk_e = derive_and_check("E", &v.ikm_e, &v.sk_em, &v.pk_em);
    let sk_r = derive_and_check("R", &v.ikm_r, &v.sk_rm, &v.pk_rm);
    let sk_s = match mode {
        Mode::Base => None,
        Mode::Auth => Some(derive_and_check(
            "S",
            v.ikm_s.as_deref().expect("auth vector has ikmS"),
            v.sk_sm.as_deref().expect("auth vector has skSm"),
            v.pk_sm.as_deref().expect("auth vector has pkSm"),
        )),
    };
    let pk_s = v
        .pk_sm
        .as_deref()
        .filter(|_| mode == Mode::Auth)
        .map(|pk| hpke::deserialize_public_key(&unhex(pk)).expect("pkSm deserializes"));
    let pk_r = hpke::deserialize_public_key(&unhex(&v.pk_rm)).expect("pkRm deserializes");
    assert_eq!(&pk_r, sk_r.public_key(), "DeserializePublicKey(pkRm)");

    let encapsulation = hpke::encap(&pk_r, sk_s.as_ref(), &sk_e);
    assert_eq!(hex::encode(encapsulation.enc), v.enc, "Encap enc");
    assert_eq!(
        hex::encode(&encapsulation.shared_secret[..]),
        v.shared_secret,
        "Encap shared_secret"
    );
    let decapsulated = hpke::decap(&unhex(&v.enc), &sk_r, pk_s.as_ref()).expect("Decap succeeds");
    assert_eq!(
        hex::encode(&decapsulated[..]),
        v.shared_secret,
        "Decap shared_secret"
    );

    let info = unhex(&v.info);
    let sender = Context::new(mode, &encapsulation.shared_secret, &info);
    let receiver = Context::new(mode, &decapsulated, &info);
    for ctx in [&sender, &receiver] {
        assert_eq!(
            hex::encode(ctx.key_bytes_for_conformance()),
            v.key,
            "key schedule key"
        );
        assert_eq!(
            hex::encode(ctx.base_nonce()),
            v.base_nonce,
            "key schedule base_nonce"
        );
        assert_eq!(
            hex::encode(ctx.exporter_secret_for_conformance()),
            v.exporter_secret,
            "key schedule exporter_secret"
        );
    }
    (sender, receiver)
}

#[test]
fn base_and_auth_modes_match_rfc9180_key_schedule_encryptions_and_exports() {
    let Some(vectors) = load_vectors() else {
        return;
    };
    let (mut modes_checked, mut modes_not_applicable) = (0, 0);
    let (mut encryptions, mut exports) = (0, 0);
    for v in &vectors {
        let Some(mode) = kapsel_mode(v.mode) else {
            modes_not_applicable += 1;
            continue;
        };
        let (mut sender, mut receiver) = contexts(v, mode);
        let base_nonce = *sender.base_nonce();

        for (seq, e) in (0u64..).zip(&v.encryptions) {
            assert_eq!(
                hex::encode(nonce_for(&base_nonce, seq)),
                e.nonce,
                "mode {} encryption {seq}: nonce",
                v.mode
            );
            let (aad, pt, ct) = (unhex(&e.aad), unhex(&e.pt), unhex(&e.ct));
            let sealed = sender.seal(&aad, &pt).expect("seal succeeds");
            assert_eq!(
                hex::encode(&sealed),
                e.ct,
                "mode {} encryption {seq}: Seal",
                v.mode
            );
            let mut opened = vec![0u8; pt.len()];
            receiver
                .open_into(&aad, &ct, &mut opened)
                .unwrap_or_else(|err| panic!("mode {} encryption {seq}: Open: {err}", v.mode));
            assert_eq!(opened, pt, "mode {} encryption {seq}: Open", v.mode);
            encryptions += 1;
        }

        for (i, x) in v.exports.iter().enumerate() {
            let exporter_context = unhex(&x.exporter_context);
            for ctx in [&sender, &receiver] {
                let mut out = vec![0u8; x.length];
                ctx.export(&exporter_context, &mut out)
                    .expect("export succeeds");
                assert_eq!(
                    hex::encode(&out),
                    x.exported_value,
                    "mode {} export {i}",
                    v.mode
                );
            }
            exports += 1;
        }
        modes_checked += 1;
    }
    eprintln!(
        "rfc9180 hpke: {modes_checked} modes checked (base, auth), \
         {modes_not_applicable} not applicable (psk, auth_psk: not implemented), \
         {encryptions} encryptions, {exports} exports checked"
    );
    assert_eq!(modes_checked, EXPECTED_MODES_CHECKED);
    assert_eq!(modes_not_applicable, EXPECTED_MODES_NOT_APPLICABLE);
    assert_eq!(encryptions, EXPECTED_ENCRYPTIONS);
    assert_eq!(exports, EXPECTED_EXPORTS);
}

#[test]
fn open_rejects_rfc9180_ciphertext_with_a_flipped_bit_and_wipes_output() {
    let Some(vectors) = load_vectors() else {
        return;
    };
    let mut rejected = 0;
    for v in &vectors {
        let Some(mode) = kapsel_mode(v.mode) else {
            continue;
        };
        let (_, mut receiver) = contexts(v, mode);
        let first = &v.encryptions[0];
        let mut ct = unhex(&first.ct);
        // One bit in the body, then (in a fresh context) one bit in the tag.
        ct[0] ^= 0x01;
        let mut out = vec![0xaa; ct.len() - 16];
        assert_eq!(
            receiver.open_into(&unhex(&first.aad), &ct, &mut out),
            Err(HpkeError::OpenFailed),
            "mode {}: flipped body bit must not open",
            v.mode
        );
        assert!(out.iter().all(|&b| b == 0), "output is wiped on failure");
        rejected += 1;

        let (_, mut receiver) = contexts(v, mode);
        let mut ct = unhex(&first.ct);
        let last = ct.len() - 1;
        ct[last] ^= 0x80;
        let mut out = vec![0u8; ct.len() - 16];
        assert_eq!(
            receiver.open_into(&unhex(&first.aad), &ct, &mut out),
            Err(HpkeError::OpenFailed),
            "mode {}: flipped tag bit must not open",
            v.mode
        );
        rejected += 1;
    }
    eprintln!("rfc9180 hpke negative: {rejected} tampered ciphertexts rejected (2 per mode)");
    assert_eq!(rejected, 2 * EXPECTED_MODES_CHECKED);
}

/// RFC 9180, section 5.2: `ContextR.Open` increments the sequence number only
/// after a successful open, so a forged message does not desynchronise the
/// receiver from the sender.
#[test]
fn failed_open_does_not_advance_the_receiver_sequence_number() {
    let Some(vectors) = load_vectors() else {
        return;
    };
    let mut checked = 0;
    for v in &vectors {
        let Some(mode) = kapsel_mode(v.mode) else {
            continue;
        };
        let (_, mut receiver) = contexts(v, mode);
        for e in &v.encryptions[..2] {
            let (aad, ct, pt) = (unhex(&e.aad), unhex(&e.ct), unhex(&e.pt));
            let mut forged = ct.clone();
            forged[0] ^= 0x01;
            let mut out = vec![0u8; pt.len()];
            assert_eq!(
                receiver.open_into(&aad, &forged, &mut out),
                Err(HpkeError::OpenFailed)
            );
            receiver
                .open_into(&aad, &ct, &mut out)
                .unwrap_or_else(|err| {
                    panic!(
                        "mode {}: genuine ciphertext after a forged one: {err}",
                        v.mode
                    )
                });
            assert_eq!(out, pt);
            checked += 1;
        }
    }
    eprintln!("rfc9180 hpke sequence: {checked} genuine opens after a rejected forgery checked");
    assert_eq!(checked, 2 * EXPECTED_MODES_CHECKED);
}
