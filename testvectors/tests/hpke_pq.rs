//! The hybrid KEM MLKEM768-P256 (`kapsel_codec::pq`, KEM `0x0050`) against
//! the test vectors of draft-ietf-hpke-pq: `DeriveKeyPair(ikmR)` (the 32-byte
//! seed and the 1249-byte public key), `Decap(enc, skR)`, and `Encap` with
//! the vector's randomness (`ikmE`: the ML-KEM `m`, then the P-256 seed),
//! which must reproduce `enc` and `shared_secret` byte for byte. Where the
//! vector's KDF is HKDF-SHA256 the key schedule (key, base nonce, exporter
//! secret) is checked too; where its AEAD is AES-256-GCM, every encryption.
//! The draft has no vector for kapsel's exact suite (0x0050, 0x0001,
//! 0x0002): the two it has cover the KEM and each of the two other parts.
//!
//! Vector file: `hpke-pq/test-vectors.json` (the HPKE working group's).

use kapsel_codec::hazmat::aead::Aes256Gcm;
use kapsel_codec::hazmat::{hpke, pq};
use kapsel_format::HybridEnc;
use kapsel_testvectors::{read_vector_file, unhex, unhex_array};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
struct Vector {
    mode: u8,
    kem_id: u16,
    kdf_id: u16,
    aead_id: u16,
    info: String,
    #[serde(rename = "ikmE")]
    ikm_e: String,
    #[serde(rename = "ikmR")]
    ikm_r: String,
    #[serde(rename = "skRm")]
    sk_rm: String,
    #[serde(rename = "pkRm")]
    pk_rm: String,
    enc: String,
    shared_secret: String,
    key: String,
    base_nonce: String,
    exporter_secret: String,
    encryptions: Vec<Encryption>,
}

#[derive(Debug, Deserialize)]
struct Encryption {
    aad: String,
    ct: String,
    nonce: String,
    pt: String,
}

#[test]
fn mlkem768_p256_matches_the_hpke_pq_draft_vectors() {
    let Some(text) = read_vector_file("hpke-pq/test-vectors.json") else {
        return;
    };
    let all: Vec<Vector> = serde_json::from_str(&text).expect("hpke-pq vectors parse");
    let ours: Vec<&Vector> = all.iter().filter(|v| v.kem_id == pq::KEM_ID).collect();
    assert_eq!(ours.len(), 2, "two vectors for KEM 0x0050");
    let (mut schedules, mut encryptions) = (0, 0);
    for v in ours {
        assert_eq!(v.mode, 0);
        let sk = pq::derive_key_pair(&unhex(&v.ikm_r)).expect("DeriveKeyPair");
        assert_eq!(hex::encode(sk.seed_bytes()), v.sk_rm, "skRm");
        assert_eq!(hex::encode(sk.public_key().as_bytes()), v.pk_rm, "pkRm");
        let pk = pq::HybridPublicKey::from_bytes(&unhex(&v.pk_rm)).expect("pkRm parses");

        let enc = HybridEnc(Box::new(unhex_array(&v.enc)));
        let ss = pq::decap(&enc, &sk).expect("Decap");
        assert_eq!(hex::encode(&ss[..]), v.shared_secret, "Decap shared_secret");

        let ikm_e = unhex(&v.ikm_e);
        let m: [u8; 32] = ikm_e[..32].try_into().expect("32 bytes");
        let eph = pq::ephemeral_from_seed(&ikm_e[32..]).expect("ephemeral scalar");
        let e = pq::encap_derand(&pk, &m, &eph).expect("Encap");
        assert_eq!(hex::encode(&e.enc.0[..]), v.enc, "Encap enc");
        assert_eq!(
            hex::encode(&e.shared_secret[..]),
            v.shared_secret,
            "Encap shared_secret"
        );

        let ss: [u8; 32] = unhex_array(&v.shared_secret);
        let info = unhex(&v.info);
        if v.kdf_id == hpke::KDF_ID {
            let key_len = match v.aead_id {
                0x0001 => 16,
                0x0002 => 32,
                other => panic!("unexpected AEAD {other:#06x}"),
            };
            let (key, nonce, exporter) =
                hpke::key_schedule_for_conformance(v.kem_id, v.aead_id, key_len, &ss, &info);
            assert_eq!(hex::encode(&key[..]), v.key, "key");
            assert_eq!(hex::encode(nonce), v.base_nonce, "base_nonce");
            assert_eq!(
                hex::encode(&exporter[..]),
                v.exporter_secret,
                "exporter_secret"
            );
            schedules += 1;
        }
        if v.aead_id == hpke::AEAD_ID {
            let aead = Aes256Gcm::new(&unhex_array(&v.key));
            for x in &v.encryptions {
                let mut buf = unhex(&x.pt);
                let tag = aead.seal_in_place(unhex_array(&x.nonce), &unhex(&x.aad), &mut buf);
                buf.extend_from_slice(&tag);
                assert_eq!(hex::encode(&buf), x.ct, "encryption with nonce {}", x.nonce);
                encryptions += 1;
            }
        }
    }
    assert_eq!((schedules, encryptions), (1, 10));
}

#[test]
fn mlkem768_p256_round_trips_and_binds_the_ciphertext() {
    let sk = pq::HybridSecretKey::generate();
    let eph = kapsel_codec::hazmat::ec::SecretKey::generate();
    let e = pq::encap(sk.public_key(), &eph).expect("encap");
    assert_eq!(
        pq::decap(&e.enc, &sk).expect("decap")[..],
        e.shared_secret[..]
    );
    // A changed ML-KEM ciphertext decapsulates (implicit rejection) to another secret.
    let mut bad = e.enc.clone();
    bad.0[0] ^= 1;
    assert_ne!(
        pq::decap(&bad, &sk).expect("decap")[..],
        e.shared_secret[..]
    );
    // The same seed gives the same key.
    let again = pq::HybridSecretKey::from_seed(sk.seed_bytes()).expect("from seed");
    assert_eq!(again.public_key(), sk.public_key());
}
