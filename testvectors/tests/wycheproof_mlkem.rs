//! ML-KEM-768, the post-quantum half of the hybrid stanza, against
//! Wycheproof's ML-KEM-768 vectors: key generation from a 64-byte seed
//! `d || z` (RustCrypto's `ml-kem`, which kapsel uses only to expand seeds),
//! decapsulation by AWS-LC with the expanded key, including ciphertexts and
//! seeds of the wrong length, and encapsulation (deterministic, RustCrypto)
//! with AWS-LC's check of the encapsulation key (FIPS 203 modulus check).
//!
//! Vector files: `wycheproof/mlkem_768_keygen_seed_test.json`,
//! `wycheproof/mlkem_768_test.json`, `wycheproof/mlkem_768_encaps_test.json`.

use kapsel_codec::hazmat::pq;
use kapsel_testvectors::{read_vector_file, unhex};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
struct File {
    #[serde(rename = "numberOfTests")]
    number_of_tests: usize,
    #[serde(rename = "testGroups")]
    test_groups: Vec<Group>,
}

#[derive(Debug, Deserialize)]
struct Group {
    #[serde(rename = "parameterSet")]
    parameter_set: String,
    tests: Vec<Test>,
}

#[derive(Debug, Deserialize)]
struct Test {
    #[serde(rename = "tcId")]
    tc_id: u32,
    #[serde(default)]
    seed: String,
    #[serde(default)]
    ek: String,
    #[serde(default)]
    dk: String,
    #[serde(default)]
    m: String,
    #[serde(default)]
    c: String,
    #[serde(rename = "K", default)]
    k: String,
    result: String,
}

fn load(name: &str) -> Option<File> {
    let text = read_vector_file(name)?;
    let file: File = serde_json::from_str(&text).expect("Wycheproof ML-KEM file parses");
    let n: usize = file.test_groups.iter().map(|g| g.tests.len()).sum();
    assert_eq!(n, file.number_of_tests, "{name}: numberOfTests");
    for g in &file.test_groups {
        assert_eq!(g.parameter_set, "ML-KEM-768");
    }
    Some(file)
}

#[test]
fn mlkem768_keygen_from_seed_matches_wycheproof() {
    let Some(file) = load("wycheproof/mlkem_768_keygen_seed_test.json") else {
        return;
    };
    let mut checked = 0;
    for t in file.test_groups.iter().flat_map(|g| &g.tests) {
        assert_eq!(t.result, "valid", "tcId {}", t.tc_id);
        let seed: [u8; 64] = unhex(&t.seed).try_into().expect("64-byte seed");
        let (ek, dk) = pq::mlkem768_keygen_from_seed(&seed);
        assert_eq!(hex::encode(&ek), t.ek, "tcId {}: ek", t.tc_id);
        assert_eq!(hex::encode(&dk[..]), t.dk, "tcId {}: dk", t.tc_id);
        assert!(
            pq::mlkem768_ek_is_valid(&ek),
            "tcId {}: AWS-LC takes ek",
            t.tc_id
        );
        checked += 1;
    }
    assert_eq!(checked, 100);
}

#[test]
fn mlkem768_decapsulation_matches_wycheproof_and_refuses_bad_lengths() {
    let Some(file) = load("wycheproof/mlkem_768_test.json") else {
        return;
    };
    let (mut valid, mut invalid) = (0, 0);
    for t in file.test_groups.iter().flat_map(|g| &g.tests) {
        let seed = unhex(&t.seed);
        let c = unhex(&t.c);
        let outcome = <[u8; 64]>::try_from(seed.as_slice()).ok().and_then(|seed| {
            let (ek, dk) = pq::mlkem768_keygen_from_seed(&seed);
            if !t.ek.is_empty() {
                assert_eq!(hex::encode(&ek), t.ek, "tcId {}: ek", t.tc_id);
            }
            pq::mlkem768_decaps(&dk, &c).ok()
        });
        match t.result.as_str() {
            "valid" => {
                let k = outcome.unwrap_or_else(|| panic!("tcId {}: must decapsulate", t.tc_id));
                assert_eq!(hex::encode(&k[..]), t.k, "tcId {}: K", t.tc_id);
                valid += 1;
            }
            _ => {
                assert!(outcome.is_none(), "tcId {}: must be refused", t.tc_id);
                invalid += 1;
            }
        }
    }
    assert_eq!((valid, invalid), (153, 40));
}

#[test]
fn mlkem768_encapsulation_matches_wycheproof_and_aws_lc_checks_keys() {
    let Some(file) = load("wycheproof/mlkem_768_encaps_test.json") else {
        return;
    };
    let (mut valid, mut invalid, mut aws_lc_refused) = (0, 0, 0);
    for t in file.test_groups.iter().flat_map(|g| &g.tests) {
        let ek = unhex(&t.ek);
        if t.result != "valid" && pq::mlkem768_ek_refused_by_aws_lc(&ek) {
            aws_lc_refused += 1;
        }
        let m: [u8; 32] = unhex(&t.m).try_into().expect("32-byte m");
        let aws_lc_accepts = pq::mlkem768_ek_is_valid(&ek);
        // The hybrid public key parser applies the same check to its ML-KEM half.
        let mut hybrid = ek.clone();
        hybrid.extend_from_slice(&P256_G);
        let hybrid_accepts = pq::HybridPublicKey::from_bytes(&hybrid).is_ok();
        match t.result.as_str() {
            "valid" => {
                assert!(
                    aws_lc_accepts && hybrid_accepts,
                    "tcId {}: ek valid",
                    t.tc_id
                );
                let (c, k) = pq::mlkem768_encaps_derand(&ek, &m).expect("encapsulates");
                assert_eq!(hex::encode(c), t.c, "tcId {}: c", t.tc_id);
                assert_eq!(hex::encode(k), t.k, "tcId {}: K", t.tc_id);
                valid += 1;
            }
            _ => {
                assert!(
                    !aws_lc_accepts,
                    "tcId {}: the key check must refuse ek",
                    t.tc_id
                );
                assert!(
                    !hybrid_accepts,
                    "tcId {}: hybrid key must be refused",
                    t.tc_id
                );
                invalid += 1;
            }
        }
    }
    assert_eq!((valid, invalid), (133, 132));
    // AWS-LC refuses every invalid key too, but only when it encapsulates
    // (`EncapsulationKey::new` checks the length alone): kapsel checks at parse time.
    assert_eq!(aws_lc_refused, invalid, "AWS-LC's own encapsulation check");
}

/// The P-256 generator, uncompressed: a valid point for the P-256 half.
const P256_G: [u8; 65] = [
    0x04, 0x6b, 0x17, 0xd1, 0xf2, 0xe1, 0x2c, 0x42, 0x47, 0xf8, 0xbc, 0xe6, 0xe5, 0x63, 0xa4, 0x40,
    0xf2, 0x77, 0x03, 0x7d, 0x81, 0x2d, 0xeb, 0x33, 0xa0, 0xf4, 0xa1, 0x39, 0x45, 0xd8, 0x98, 0xc2,
    0x96, 0x4f, 0xe3, 0x42, 0xe2, 0xfe, 0x1a, 0x7f, 0x9b, 0x8e, 0xe7, 0xeb, 0x4a, 0x7c, 0x0f, 0x9e,
    0x16, 0x2b, 0xce, 0x33, 0x57, 0x6b, 0x31, 0x5e, 0xce, 0xcb, 0xb6, 0x40, 0x68, 0x37, 0xbf, 0x51,
    0xf5,
];
