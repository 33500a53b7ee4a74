//! HMAC-SHA256 as `kapsel_codec::hazmat::hpke` computes it (HKDF-Extract is
//! HMAC-SHA256 keyed with the salt, through AWS-LC) against Wycheproof's
//! HMAC-SHA-256 vectors: every key size, full and truncated tags. A valid
//! vector's tag must equal the (truncated) HMAC; an invalid one (a modified
//! tag) must differ from it.
//!
//! Vector file: `wycheproof/hmac_sha256_test.json` under the external vector
//! directory (see `kapsel_testvectors::external_vectors_dir`).

use kapsel_codec::hazmat::hpke;
use kapsel_testvectors::{read_vector_file, unhex};
use serde::Deserialize;

const VECTOR_FILE: &str = "wycheproof/hmac_sha256_test.json";

#[derive(Debug, Deserialize)]
struct MacFile {
    #[serde(rename = "numberOfTests")]
    number_of_tests: usize,
    #[serde(rename = "testGroups")]
    test_groups: Vec<MacGroup>,
}

#[derive(Debug, Deserialize)]
struct MacGroup {
    #[serde(rename = "tagSize")]
    tag_size_bits: usize,
    tests: Vec<MacTest>,
}

#[derive(Debug, Deserialize)]
struct MacTest {
    #[serde(rename = "tcId")]
    tc_id: u32,
    key: String,
    msg: String,
    tag: String,
    result: String,
}

#[test]
fn hmac_sha256_matches_wycheproof_for_every_key_and_tag_size() {
    let Some(text) = read_vector_file(VECTOR_FILE) else {
        return;
    };
    let file: MacFile = serde_json::from_str(&text).expect("Wycheproof HMAC file parses");
    let (mut valid, mut invalid) = (0, 0);
    for group in &file.test_groups {
        assert!(group.tag_size_bits % 8 == 0 && group.tag_size_bits <= 256);
        let tag_len = group.tag_size_bits / 8;
        for t in &group.tests {
            let mac = hpke::hkdf_sha256_extract(&unhex(&t.key), &unhex(&t.msg));
            let matches = mac[..tag_len] == unhex(&t.tag)[..];
            match t.result.as_str() {
                "valid" => {
                    assert!(matches, "tcId {}: tag", t.tc_id);
                    valid += 1;
                }
                "invalid" => {
                    assert!(!matches, "tcId {}: a modified tag matched", t.tc_id);
                    invalid += 1;
                }
                other => panic!("tcId {}: unexpected result {other:?}", t.tc_id),
            }
        }
    }
    eprintln!(
        "wycheproof hmac-sha256: {} ran: {valid} valid tags matched, {invalid} modified tags refused",
        valid + invalid
    );
    assert!(valid > 0 && invalid > 0);
    assert_eq!(valid + invalid, file.number_of_tests);
}
