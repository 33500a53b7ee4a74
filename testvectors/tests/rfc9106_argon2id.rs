//! The Argon2id that passphrase stanzas use (RustCrypto `argon2`, through
//! `kapsel_codec::passphrase`) against the Argon2id test vector of RFC 9106,
//! section 5.3, written here from the RFC's text: password 32 bytes of 0x01,
//! salt 16 bytes of 0x02, secret 8 bytes of 0x03, associated data 12 bytes
//! of 0x04, 32 KiB, 3 passes, 4 lanes, a 32-byte tag. Then the parameters
//! that differ from it one at a time, which must change the tag.

use kapsel_codec::hazmat::passphrase::{argon2id_for_conformance, Cost};

const RFC9106_TAG: &str = "0d640df58d78766c08c037a34a8b53c9d01ef0452d75b65eb52520e96b01e659";

fn tag(password: &[u8], salt: &[u8], secret: &[u8], ad: &[u8], cost: Cost) -> String {
    let mut out = [0u8; 32];
    argon2id_for_conformance(password, salt, secret, ad, &cost, &mut out).expect("argon2id");
    hex::encode(out)
}

const RFC_COST: Cost = Cost {
    memory_kib: 32,
    passes: 3,
    lanes: 4,
};

#[test]
fn argon2id_matches_rfc9106_section_5_3() {
    assert_eq!(
        tag(&[1; 32], &[2; 16], &[3; 8], &[4; 12], RFC_COST),
        RFC9106_TAG
    );
}

#[test]
fn every_argon2id_input_changes_the_tag() {
    let base = RFC9106_TAG.to_string();
    assert_ne!(tag(&[1; 31], &[2; 16], &[3; 8], &[4; 12], RFC_COST), base);
    assert_ne!(tag(&[1; 32], &[2; 17], &[3; 8], &[4; 12], RFC_COST), base);
    assert_ne!(tag(&[1; 32], &[2; 16], &[], &[4; 12], RFC_COST), base);
    assert_ne!(tag(&[1; 32], &[2; 16], &[3; 8], &[], RFC_COST), base);
    for cost in [
        Cost {
            memory_kib: 64,
            ..RFC_COST
        },
        Cost {
            passes: 4,
            ..RFC_COST
        },
        Cost {
            lanes: 2,
            ..RFC_COST
        },
    ] {
        assert_ne!(tag(&[1; 32], &[2; 16], &[3; 8], &[4; 12], cost), base);
    }
}
