//! P-256 public-key validation and ECDH as kapsel's HPKE uses them, against
//! Wycheproof's `ecdh_secp256r1_ecpoint_test.json` (public keys as raw SEC1
//! points).
//!
//! Every public key goes through `kapsel_codec::hazmat::hpke::deserialize_public_key`,
//! which accepts only 65-byte uncompressed points on the curve, and the shared
//! secret comes from `kapsel_codec::hazmat::hpke::diffie_hellman`, the DH (AWS-LC)
//! that HPKE runs. Compressed points
//! are refused by kapsel by design, whatever Wycheproof's verdict, and are
//! counted apart.
//!
//! `ecdh_secp256r1_test.json` (public keys as DER SubjectPublicKeyInfo) is not
//! checked: kapsel never parses SPKI on the decryption path, so it would test
//! `p256`'s DER parser, and its 230 "acceptable" cases have no single correct
//! outcome.
//!
//! Vector file: `wycheproof/ecdh_secp256r1_ecpoint_test.json` under the
//! external vector directory (see `kapsel_testvectors::external_vectors_dir`).

use kapsel_codec::hazmat::ec::SecretKey;
use kapsel_codec::hazmat::hpke;
use kapsel_testvectors::{read_vector_file, unhex};
use serde::Deserialize;

const VECTOR_FILE: &str = "wycheproof/ecdh_secp256r1_ecpoint_test.json";

const EXPECTED_VALID: usize = 330;
const EXPECTED_INVALID: usize = 17;
const EXPECTED_COMPRESSED_ACCEPTABLE: usize = 1;
const EXPECTED_COMPRESSED_INVALID: usize = 7;

#[derive(Debug, Deserialize)]
struct EcdhFile {
    #[serde(rename = "numberOfTests")]
    number_of_tests: usize,
    #[serde(rename = "testGroups")]
    test_groups: Vec<EcdhGroup>,
}

#[derive(Debug, Deserialize)]
struct EcdhGroup {
    curve: String,
    encoding: String,
    tests: Vec<EcdhTest>,
}

#[derive(Debug, Deserialize)]
struct EcdhTest {
    #[serde(rename = "tcId")]
    tc_id: u32,
    public: String,
    private: String,
    shared: String,
    result: String,
}

/// Wycheproof private keys are big-endian integers with a leading 00 when the
/// top bit is set, or shorter than 32 bytes when the value is small.
fn secret_key(tc_id: u32, private: &str) -> SecretKey {
    let bytes = unhex(private);
    let significant = &bytes[bytes.iter().take_while(|&&b| b == 0).count()..];
    assert!(
        significant.len() <= 32,
        "tcId {tc_id}: private key longer than 32 bytes"
    );
    let mut scalar = [0u8; 32];
    scalar[32 - significant.len()..].copy_from_slice(significant);
    SecretKey::from_bytes(&scalar)
        .unwrap_or_else(|e| panic!("tcId {tc_id}: private key is not a valid scalar: {e}"))
}

fn is_compressed(public: &[u8]) -> bool {
    matches!(public.first(), Some(0x02 | 0x03))
}

#[test]
fn p256_ecdh_matches_wycheproof_and_deserialize_public_key_refuses_bad_points() {
    let Some(text) = read_vector_file(VECTOR_FILE) else {
        return;
    };
    let file: EcdhFile = serde_json::from_str(&text).expect("Wycheproof ECDH file parses");
    let (mut valid, mut invalid) = (0, 0);
    let (mut compressed_acceptable, mut compressed_invalid, mut compressed_valid) = (0, 0, 0);
    for group in &file.test_groups {
        assert_eq!(
            (group.curve.as_str(), group.encoding.as_str()),
            ("secp256r1", "ecpoint")
        );
        for t in &group.tests {
            let public = unhex(&t.public);
            let deserialized = hpke::deserialize_public_key(&public);
            if is_compressed(&public) {
                assert_eq!(
                    deserialized,
                    Err(hpke::HpkeError::InvalidPublicKey),
                    "tcId {}: compressed points are refused by design",
                    t.tc_id
                );
                match t.result.as_str() {
                    "acceptable" => compressed_acceptable += 1,
                    "invalid" => compressed_invalid += 1,
                    "valid" => compressed_valid += 1,
                    other => panic!("tcId {}: unexpected result {other:?}", t.tc_id),
                }
                continue;
            }
            match t.result.as_str() {
                "valid" => {
                    let pk = deserialized.unwrap_or_else(|e| {
                        panic!("tcId {}: valid point must deserialize: {e}", t.tc_id)
                    });
                    let sk = secret_key(t.tc_id, &t.private);
                    let shared = kapsel_codec::hazmat::hpke::diffie_hellman(&sk, &pk);
                    assert_eq!(
                        hex::encode(&shared[..]),
                        t.shared,
                        "tcId {}: shared secret",
                        t.tc_id
                    );
                    valid += 1;
                }
                "invalid" => {
                    assert_eq!(
                        deserialized,
                        Err(hpke::HpkeError::InvalidPublicKey),
                        "tcId {}: invalid point must be refused",
                        t.tc_id
                    );
                    invalid += 1;
                }
                other => panic!(
                    "tcId {}: uncompressed case with result {other:?} is not classified",
                    t.tc_id
                ),
            }
        }
    }
    let compressed = compressed_acceptable + compressed_invalid + compressed_valid;
    eprintln!(
        "wycheproof ecdh secp256r1 ecpoint: {} ran: {valid} valid shared secrets matched, \
         {invalid} invalid points refused, {compressed} compressed points refused by design \
         ({compressed_acceptable} acceptable, {compressed_invalid} invalid, {compressed_valid} valid); \
         ecdh_secp256r1_test.json (DER SPKI) not run",
        valid + invalid + compressed
    );
    assert_eq!(valid, EXPECTED_VALID);
    assert_eq!(invalid, EXPECTED_INVALID);
    assert_eq!(compressed_acceptable, EXPECTED_COMPRESSED_ACCEPTABLE);
    assert_eq!(compressed_invalid, EXPECTED_COMPRESSED_INVALID);
    assert_eq!(compressed_valid, 0);
    assert_eq!(valid + invalid + compressed, file.number_of_tests);
}
