//! ECDSA P-256 / SHA-256 as kapsel's segment signatures use it
//! (`kapsel_codec::hazmat::segment`), against Wycheproof's
//! `ecdsa_secp256r1_sha256_p1363_test.json` (fixed-width IEEE P1363
//! `r || s`, the form of kapsel's 64-byte segment signatures).
//!
//! `SegmentVerifier` binds each signature to one file and segment, so the
//! Wycheproof messages go through the primitive it composes,
//! `segment::verify_p1363` (AWS-LC verifies; the codec checks the low-`s` rule). Every
//! valid case must verify without the low-`s` rule, and with it exactly
//! those of low `s` (kapsel refuses the second, high-`s` encoding); every
//! invalid case must fail. A reference check with the `p256` crate's own
//! verifier must agree on every case.
//!
//! A second test signs segments through `SegmentSigner` (AWS-LC, randomized
//! nonces) and checks them with `p256`'s verifier over the 147-byte
//! message SPEC.md section 6.5 defines, built here from the SPEC.
//!
//! Vector file: `wycheproof/ecdsa_secp256r1_sha256_p1363_test.json` under the
//! external vector directory (see `kapsel_testvectors::external_vectors_dir`).

use kapsel_codec::hazmat::segment::{verify_p1363, SegmentSigner, SegmentVerifier, SEGMENT_LABEL};
use kapsel_testvectors::{read_vector_file, unhex};
use p256::ecdsa::signature::{DigestVerifier, Verifier};
use p256::ecdsa::{Signature, VerifyingKey};
use p256::PublicKey;
use serde::Deserialize;
use sha2::{Digest, Sha256};

const VECTOR_FILE: &str = "wycheproof/ecdsa_secp256r1_sha256_p1363_test.json";

const EXPECTED_GROUPS: usize = 112;
const EXPECTED_VALID: usize = 173;
const EXPECTED_VALID_HIGH_S: usize = 70;
const EXPECTED_INVALID: usize = 89;
/// Invalid cases refused already by `Signature::from_slice` (wrong length,
/// r or s zero or not below the group order).
const EXPECTED_INVALID_REFUSED_AT_PARSE: usize = 71;
const EXPECTED_ACCEPTABLE: usize = 0;

/// Valid cases (distinct messages) signed again with a fresh key.
const ROUND_TRIP_CASES: usize = 8;

#[derive(Debug, Deserialize)]
struct EcdsaFile {
    algorithm: String,
    #[serde(rename = "numberOfTests")]
    number_of_tests: usize,
    #[serde(rename = "testGroups")]
    test_groups: Vec<EcdsaGroup>,
}

#[derive(Debug, Deserialize)]
struct EcdsaGroup {
    #[serde(rename = "type")]
    kind: String,
    #[serde(rename = "publicKey")]
    public_key: EcdsaPublicKey,
    sha: String,
    tests: Vec<EcdsaTest>,
}

#[derive(Debug, Deserialize)]
struct EcdsaPublicKey {
    curve: String,
    uncompressed: String,
}

#[derive(Debug, Deserialize)]
struct EcdsaTest {
    #[serde(rename = "tcId")]
    tc_id: u32,
    comment: String,
    flags: Vec<String>,
    msg: String,
    sig: String,
    result: String,
}

/// Why a signature was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Refusal {
    Parse,
    Verify,
}

/// The reference check: the `p256` crate's own verifier.
fn verify_like_sender(key: &VerifyingKey, msg: &[u8], sig: &[u8]) -> Result<Signature, Refusal> {
    let signature = Signature::from_slice(sig).map_err(|_| Refusal::Parse)?;
    let mut hasher = Sha256::new();
    hasher.update(msg);
    key.verify_digest(hasher, &signature)
        .map_err(|_| Refusal::Verify)?;
    Ok(signature)
}

fn load() -> Option<EcdsaFile> {
    let text = read_vector_file(VECTOR_FILE)?;
    let file: EcdsaFile = serde_json::from_str(&text).expect("Wycheproof ECDSA file parses");
    assert_eq!(file.algorithm, "ECDSA");
    Some(file)
}

fn verifying_key(group: &EcdsaGroup) -> VerifyingKey {
    assert_eq!(
        (
            group.kind.as_str(),
            group.public_key.curve.as_str(),
            group.sha.as_str()
        ),
        ("EcdsaP1363Verify", "secp256r1", "SHA-256")
    );
    let point = unhex(&group.public_key.uncompressed);
    let pk = PublicKey::from_sec1_bytes(&point).unwrap_or_else(|e| {
        panic!(
            "group public key {} does not parse: {e}",
            group.public_key.uncompressed
        )
    });
    VerifyingKey::from(&pk)
}

#[test]
fn p256_ecdsa_verify_digest_matches_wycheproof_p1363() {
    let Some(file) = load() else {
        return;
    };
    let (mut valid, mut valid_high_s) = (0, 0);
    let (mut invalid_parse, mut invalid_verify) = (0, 0);
    let (mut acceptable_accepted, mut acceptable_rejected) = (0, 0);
    let mut forged = Vec::new();
    for group in &file.test_groups {
        let key = verifying_key(group);
        let point = unhex(&group.public_key.uncompressed);
        for t in &group.tests {
            let (msg, sig) = (unhex(&t.msg), unhex(&t.sig));
            let outcome = verify_like_sender(&key, &msg, &sig);
            // kapsel's primitive agrees with the reference, and its low-s
            // rule refuses exactly the high-s encodings.
            assert_eq!(
                verify_p1363(&point, &msg, &sig, false),
                outcome.is_ok(),
                "tcId {}: kapsel and p256 disagree",
                t.tc_id
            );
            let low_s = outcome.as_ref().is_ok_and(|s| s.normalize_s().is_none());
            assert_eq!(
                verify_p1363(&point, &msg, &sig, true),
                low_s,
                "tcId {}: the low-s rule",
                t.tc_id
            );
            match t.result.as_str() {
                "valid" => {
                    let signature = outcome.unwrap_or_else(|r| {
                        panic!(
                            "tcId {} ({}, {:?}): valid signature refused at {r:?}",
                            t.tc_id, t.comment, t.flags
                        )
                    });
                    if signature.normalize_s().is_some() {
                        valid_high_s += 1;
                    }
                    valid += 1;
                }
                "invalid" => match outcome {
                    Err(Refusal::Parse) => invalid_parse += 1,
                    Err(Refusal::Verify) => invalid_verify += 1,
                    Ok(_) => {
                        forged.push(format!("tcId {} ({}, {:?})", t.tc_id, t.comment, t.flags))
                    }
                },
                "acceptable" => {
                    let verdict = if outcome.is_ok() {
                        acceptable_accepted += 1;
                        "accepted".to_owned()
                    } else {
                        acceptable_rejected += 1;
                        format!("rejected ({outcome:?})")
                    };
                    eprintln!(
                        "acceptable tcId {} ({}, {:?}): {verdict}",
                        t.tc_id, t.comment, t.flags
                    );
                }
                other => panic!("tcId {}: unexpected result {other:?}", t.tc_id),
            }
        }
    }
    assert!(
        forged.is_empty(),
        "invalid signatures verified: {}",
        forged.join("; ")
    );
    let invalid = invalid_parse + invalid_verify;
    let acceptable = acceptable_accepted + acceptable_rejected;
    let ran = valid + invalid + acceptable;
    eprintln!(
        "wycheproof ecdsa secp256r1 sha256 p1363: {ran} ran in {} groups: {valid} valid verified \
         ({valid_high_s} of them high-S), {invalid} invalid rejected ({invalid_parse} at \
         Signature::from_slice, {invalid_verify} at verify_digest), {acceptable} acceptable \
         ({acceptable_accepted} accepted, {acceptable_rejected} rejected)",
        file.test_groups.len()
    );
    assert_eq!(file.test_groups.len(), EXPECTED_GROUPS);
    assert_eq!(valid, EXPECTED_VALID);
    assert_eq!(valid_high_s, EXPECTED_VALID_HIGH_S);
    assert_eq!(invalid, EXPECTED_INVALID);
    assert_eq!(invalid_parse, EXPECTED_INVALID_REFUSED_AT_PARSE);
    assert_eq!(acceptable, EXPECTED_ACCEPTABLE);
    assert_eq!(ran, file.number_of_tests);
}

#[test]
fn segment_signatures_verify_under_an_independent_verifier() {
    let Some(file) = load() else {
        return;
    };
    // Wycheproof messages stand in for header bytes and chunk bytes.
    let mut messages: Vec<(u32, Vec<u8>)> = Vec::new();
    for t in file.test_groups.iter().flat_map(|g| &g.tests) {
        let msg = unhex(&t.msg);
        if t.result == "valid" && messages.iter().all(|(_, m)| *m != msg) {
            messages.push((t.tc_id, msg));
        }
    }
    messages.truncate(ROUND_TRIP_CASES);
    assert_eq!(messages.len(), ROUND_TRIP_CASES);
    for (tc_id, msg) in &messages {
        let secret = kapsel_codec::hazmat::ec::SecretKey::generate();
        let codec_public = *secret.public_key();
        let public = PublicKey::from_sec1_bytes(codec_public.as_uncompressed()).expect("point");
        let header = [b"header:".as_slice(), msg].concat();
        let prefix = [0x42u8; 56];
        // AWS-LC's randomized nonces: a fresh signature each time.
        for _ in 0..2 {
            let signer = SegmentSigner::new(&secret, &header, &prefix);
            let (index, is_final) = (*tc_id as u64, tc_id % 2 == 0);
            let sig = signer.sign(index, is_final, msg).unwrap();
            // signed_j of SPEC.md section 6.5, built independently.
            let signed = [
                SEGMENT_LABEL,
                &Sha256::digest(&header),
                &prefix,
                &index.to_be_bytes(),
                &[u8::from(is_final)],
                &Sha256::digest(msg),
            ]
            .concat();
            assert_eq!(signed.len(), 147);
            let parsed = Signature::from_slice(&sig).expect("64-byte signature");
            assert!(parsed.normalize_s().is_none(), "tcId {tc_id}: high s");
            VerifyingKey::from(&public)
                .verify(&signed, &parsed)
                .unwrap_or_else(|e| panic!("tcId {tc_id}: independent verifier refused: {e}"));
            let verifier =
                SegmentVerifier::new(&codec_public, &header, &prefix).expect("valid key");
            verifier
                .verify(index, is_final, msg, &sig)
                .expect("own signature");
            assert!(verifier.verify(index + 1, is_final, msg, &sig).is_err());
            assert!(verifier.verify(index, !is_final, msg, &sig).is_err());
            let other = *kapsel_codec::hazmat::ec::SecretKey::generate().public_key();
            let wrong = SegmentVerifier::new(&other, &header, &prefix).expect("valid key");
            assert!(wrong.verify(index, is_final, msg, &sig).is_err());
        }
    }
    eprintln!(
        "segment signatures: {} Wycheproof messages signed twice each by AWS-LC (randomized nonces), low s, \
         verified by p256 over the SPEC's 147-byte message; other index, flag and key refused",
        messages.len()
    );
}
