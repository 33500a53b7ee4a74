//! The HKDF-SHA256 that `kapsel_codec::hazmat::hpke` composes (AWS-LC's HMAC-SHA256
//! for Extract, AWS-LC's HKDF-Expand) against Wycheproof's HKDF-SHA-256 vectors, including the
//! output-length limit of 255 * 32 bytes.
//!
//! Vector file: `wycheproof/hkdf_sha256_test.json` under the external vector
//! directory (see `kapsel_testvectors::external_vectors_dir`).

use kapsel_codec::hazmat::hpke;
use kapsel_testvectors::{read_vector_file, unhex};
use serde::Deserialize;

const VECTOR_FILE: &str = "wycheproof/hkdf_sha256_test.json";

const EXPECTED_VALID: usize = 83;
const EXPECTED_INVALID: usize = 3;

#[derive(Debug, Deserialize)]
struct HkdfFile {
    #[serde(rename = "numberOfTests")]
    number_of_tests: usize,
    #[serde(rename = "testGroups")]
    test_groups: Vec<HkdfGroup>,
}

#[derive(Debug, Deserialize)]
struct HkdfGroup {
    tests: Vec<HkdfTest>,
}

#[derive(Debug, Deserialize)]
struct HkdfTest {
    #[serde(rename = "tcId")]
    tc_id: u32,
    ikm: String,
    salt: String,
    info: String,
    size: usize,
    okm: String,
    result: String,
}

#[test]
fn hkdf_sha256_matches_wycheproof_and_refuses_outputs_over_255_blocks() {
    let Some(text) = read_vector_file(VECTOR_FILE) else {
        return;
    };
    let file: HkdfFile = serde_json::from_str(&text).expect("Wycheproof HKDF file parses");
    let (mut valid, mut invalid) = (0, 0);
    for t in file.test_groups.iter().flat_map(|g| &g.tests) {
        let salt = unhex(&t.salt);
        // An empty salt is HMAC's empty key, the same as RFC 5869's HashLen zeros.
        let prk = hpke::hkdf_sha256_extract(&salt, &unhex(&t.ikm));
        let mut okm = vec![0u8; t.size];
        let expanded = hpke::hkdf_sha256_expand(&prk, &[&unhex(&t.info)], &mut okm);
        match t.result.as_str() {
            "valid" => {
                assert!(expanded.is_ok(), "tcId {}: expand must succeed", t.tc_id);
                assert_eq!(hex::encode(&okm), t.okm, "tcId {}: okm", t.tc_id);
                valid += 1;
            }
            "invalid" => {
                assert!(
                    expanded.is_err(),
                    "tcId {}: expand of {} bytes must fail",
                    t.tc_id,
                    t.size
                );
                invalid += 1;
            }
            other => panic!("tcId {}: unexpected result {other:?}", t.tc_id),
        }
    }
    eprintln!(
        "wycheproof hkdf-sha256: {} ran: {valid} valid okm matched, \
         {invalid} invalid (size too large) rejected",
        valid + invalid
    );
    assert_eq!(valid, EXPECTED_VALID);
    assert_eq!(invalid, EXPECTED_INVALID);
    assert_eq!(valid + invalid, file.number_of_tests);
}
