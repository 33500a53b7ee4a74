//! ECDSA P-256 / SHA-256 signature verification as kapsel's sender
//! signatures use it (`kapsel_codec::sender`), against Wycheproof's
//! `ecdsa_secp256r1_sha256_p1363_test.json` (signatures as fixed-width
//! IEEE P1363 `r || s`, the form of kapsel's 64-byte trailer).
//!
//! `VerifyingReader` prefixes the signed message with the
//! `"kapsel/v1 signature\0"` label, so Wycheproof signatures cannot go through
//! it; each case is instead verified with exactly the calls `sender.rs`
//! composes: `Signature::from_slice` (a parse failure is a rejection, as in
//! `VerifyingReader`), then `VerifyingKey::verify_digest` on a `Sha256`
//! hasher updated with the message. The public key is the group's
//! uncompressed SEC1 point, parsed with `p256::PublicKey::from_sec1_bytes`.
//!
//! The file marks high-S signatures (e.g. tcId 1, "signature malleability")
//! as valid: P1363 ECDSA does not require low S, and `p256` accepts both.
//! A second test signs a few of the vector messages with a fresh key through
//! `SigningWriter` and reads them back through `VerifyingReader`.
//!
//! Vector file: `wycheproof/ecdsa_secp256r1_sha256_p1363_test.json` under the
//! external vector directory (see `kapsel_testvectors::external_vectors_dir`).

use std::io::{Read, Write};

use kapsel_codec::sender::{SigningWriter, VerifyingReader, SIGNATURE_LABEL, SIGNATURE_LEN};
use kapsel_testvectors::{read_vector_file, unhex};
use p256::ecdsa::signature::DigestVerifier;
use p256::ecdsa::{Signature, VerifyingKey};
use p256::{PublicKey, SecretKey};
use rand_core::OsRng;
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

/// The check `VerifyingReader::finish` performs, minus the kapsel label.
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
        for t in &group.tests {
            let outcome = verify_like_sender(&key, &unhex(&t.msg), &unhex(&t.sig));
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
fn sender_signature_round_trips_on_wycheproof_messages() {
    let Some(file) = load() else {
        return;
    };
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
        let secret = SecretKey::random(&mut OsRng);
        let public = secret.public_key();

        let mut writer = SigningWriter::new(Vec::new(), Some(&secret));
        writer.write_all(msg).expect("write to Vec");
        let signed = writer.finish().expect("finish to Vec");
        assert_eq!(signed.len(), msg.len() + SIGNATURE_LEN, "tcId {tc_id}");
        assert_eq!(&signed[..msg.len()], msg.as_slice(), "tcId {tc_id}");
        let trailer = &signed[msg.len()..];

        // The trailer is a plain P1363 ECDSA P-256 / SHA-256 signature over
        // label || message, checked with the same primitive as the vectors.
        let key = VerifyingKey::from(&public);
        let labelled = [SIGNATURE_LABEL, msg.as_slice()].concat();
        verify_like_sender(&key, &labelled, trailer)
            .unwrap_or_else(|r| panic!("tcId {tc_id}: own signature refused at {r:?}"));
        assert_eq!(
            verify_like_sender(&key, msg, trailer).err(),
            Some(Refusal::Verify),
            "tcId {tc_id}: signature must not verify without the label"
        );

        let mut reader = VerifyingReader::new(signed.as_slice(), &[], Some(&public));
        let mut out = Vec::new();
        reader
            .read_to_end(&mut out)
            .unwrap_or_else(|e| panic!("tcId {tc_id}: VerifyingReader refused: {e}"));
        assert_eq!(&out, msg, "tcId {tc_id}");
        assert!(reader.is_verified(), "tcId {tc_id}");

        let mut tampered = signed.clone();
        *tampered.last_mut().expect("non-empty") ^= 1;
        let mut reader = VerifyingReader::new(tampered.as_slice(), &[], Some(&public));
        assert!(
            reader.read_to_end(&mut Vec::new()).is_err(),
            "tcId {tc_id}: tampered signature accepted"
        );
        assert!(!reader.is_verified(), "tcId {tc_id}");

        let other = SecretKey::random(&mut OsRng).public_key();
        let mut reader = VerifyingReader::new(signed.as_slice(), &[], Some(&other));
        assert!(
            reader.read_to_end(&mut Vec::new()).is_err(),
            "tcId {tc_id}: signature accepted under another key"
        );
    }
    eprintln!(
        "sender signature round trip: {} Wycheproof messages (tcIds {:?}) signed with fresh keys \
         via SigningWriter, verified via VerifyingReader and verify_digest, tampered and \
         wrong-key copies refused",
        messages.len(),
        messages.iter().map(|(id, _)| id).collect::<Vec<_>>()
    );
}
