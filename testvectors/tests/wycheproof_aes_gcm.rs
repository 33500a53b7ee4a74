//! `kapsel_codec::hazmat::aead::Aes256Gcm` (ring) against Wycheproof's AES-GCM
//! vectors. kapsel only uses AES-256 with 96-bit nonces and 128-bit tags; the
//! groups with other key, IV or tag sizes are out of scope and counted as
//! skipped.
//!
//! Vector file: `wycheproof/aes_gcm_test.json` under the external vector
//! directory (see `kapsel_testvectors::external_vectors_dir`).

use kapsel_codec::hazmat::aead::{Aes256Gcm, KEY_LEN, NONCE_LEN, TAG_LEN};
use kapsel_testvectors::{read_vector_file, unhex, unhex_array};
use serde::Deserialize;

const VECTOR_FILE: &str = "wycheproof/aes_gcm_test.json";

const EXPECTED_VALID: usize = 39;
const EXPECTED_INVALID: usize = 27;
const EXPECTED_OUT_OF_SCOPE: usize = 250;

#[derive(Debug, Deserialize)]
struct AeadFile {
    #[serde(rename = "numberOfTests")]
    number_of_tests: usize,
    #[serde(rename = "testGroups")]
    test_groups: Vec<AeadGroup>,
}

#[derive(Debug, Deserialize)]
struct AeadGroup {
    #[serde(rename = "keySize")]
    key_size: usize,
    #[serde(rename = "ivSize")]
    iv_size: usize,
    #[serde(rename = "tagSize")]
    tag_size: usize,
    tests: Vec<AeadTest>,
}

#[derive(Debug, Deserialize)]
struct AeadTest {
    #[serde(rename = "tcId")]
    tc_id: u32,
    key: String,
    iv: String,
    aad: String,
    msg: String,
    ct: String,
    tag: String,
    result: String,
}

fn in_scope(g: &AeadGroup) -> bool {
    g.key_size == 8 * KEY_LEN && g.iv_size == 8 * NONCE_LEN && g.tag_size == 8 * TAG_LEN
}

#[test]
fn aes_256_gcm_seals_and_opens_wycheproof_vectors_and_rejects_invalid_tags() {
    let Some(text) = read_vector_file(VECTOR_FILE) else {
        return;
    };
    let file: AeadFile = serde_json::from_str(&text).expect("Wycheproof AES-GCM file parses");
    let (mut valid, mut invalid, mut out_of_scope) = (0, 0, 0);
    for group in &file.test_groups {
        if !in_scope(group) {
            out_of_scope += group.tests.len();
            continue;
        }
        for t in &group.tests {
            let aead = Aes256Gcm::new(&unhex_array::<KEY_LEN>(&t.key));
            let nonce = unhex_array::<NONCE_LEN>(&t.iv);
            let aad = unhex(&t.aad);
            let msg = unhex(&t.msg);
            let tag = unhex_array::<TAG_LEN>(&t.tag);
            let mut ct = unhex(&t.ct);
            match t.result.as_str() {
                "valid" => {
                    let mut sealed = msg.clone();
                    let sealed_tag = aead.seal_in_place(nonce, &aad, &mut sealed);
                    assert_eq!(hex::encode(&sealed), t.ct, "tcId {}: ciphertext", t.tc_id);
                    assert_eq!(hex::encode(sealed_tag), t.tag, "tcId {}: tag", t.tc_id);
                    let opened = aead
                        .open_in_place(nonce, &aad, &mut ct, &tag)
                        .unwrap_or_else(|_| panic!("tcId {}: valid vector must open", t.tc_id));
                    assert_eq!(opened, &msg[..], "tcId {}: plaintext", t.tc_id);
                    valid += 1;
                }
                "invalid" => {
                    assert!(
                        aead.open_in_place(nonce, &aad, &mut ct, &tag).is_err(),
                        "tcId {}: invalid vector must not open",
                        t.tc_id
                    );
                    invalid += 1;
                }
                other => panic!("tcId {}: unexpected result {other:?} in scope", t.tc_id),
            }
        }
    }
    eprintln!(
        "wycheproof aes-gcm: {} in scope (AES-256, 96-bit IV, 128-bit tag): \
         {valid} valid sealed+opened, {invalid} invalid rejected; \
         {out_of_scope} skipped (other key/IV/tag sizes, not used by kapsel); {} in file",
        valid + invalid,
        file.number_of_tests
    );
    assert_eq!(valid, EXPECTED_VALID);
    assert_eq!(invalid, EXPECTED_INVALID);
    assert_eq!(out_of_scope, EXPECTED_OUT_OF_SCOPE);
    assert_eq!(valid + invalid + out_of_scope, file.number_of_tests);
}
