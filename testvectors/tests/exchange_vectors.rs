//! The live-exchange vectors (`testvectors/exchange/`, SPEC.md section 13)
//! against the reference receiver: outcome, released plaintext and receipt
//! must match, whatever the read size; and the generator must reproduce
//! every committed file byte for byte.

use std::fs;
use std::path::{Path, PathBuf};

use kapsel_codec::exchange::Challenge;
use kapsel_codec::Identity;
use kapsel_testvectors::exchange::{outcome_names, receive, vectors, write_all};
use kapsel_testvectors::vector::VectorFile;
use sha2::{Digest, Sha256};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("exchange")
}

#[test]
fn every_exchange_vector_gives_its_outcome_plaintext_and_receipt() {
    let mut names: Vec<PathBuf> = fs::read_dir(dir())
        .expect("testvectors/exchange exists")
        .map(|e| e.expect("directory entry").path())
        .collect();
    names.sort();
    assert!(names.len() >= 20, "only {} exchange vectors", names.len());
    let known = outcome_names();
    let mut outcomes = std::collections::BTreeSet::new();
    for path in names {
        let name = path
            .file_name()
            .expect("file name")
            .to_string_lossy()
            .into_owned();
        let v = VectorFile::parse(&fs::read(&path).expect("readable vector"))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let field = |k: &str| v.get(k).unwrap_or_else(|| panic!("{name}: no {k}"));
        let expect = field("expect");
        assert!(known.contains(&expect), "{name}: unknown outcome {expect}");
        outcomes.insert(expect.to_string());
        let identities: Vec<Identity> = v
            .all("identity")
            .into_iter()
            .map(|s| {
                Identity::from_secret_string(s)
                    .unwrap_or_else(|e| panic!("{name}: bad identity: {e}"))
            })
            .collect();
        let challenge: Challenge = field("challenge")
            .parse()
            .unwrap_or_else(|_| panic!("{name}: bad challenge"));
        for piece in [1000, 1, 1 << 16] {
            let got = receive(&v.data, &identities, &challenge, piece);
            assert_eq!(got.outcome, expect, "{name} (reads of {piece})");
            assert_eq!(
                got.released.len().to_string(),
                field("released_len"),
                "{name}"
            );
            assert_eq!(
                hex::encode(Sha256::digest(&got.released)),
                field("released_sha256"),
                "{name}"
            );
            assert_eq!(
                got.receipt.map(|r| hex::encode(r.as_bytes())).as_deref(),
                v.get("receipt"),
                "{name}"
            );
        }
    }
    for required in [
        "accepted",
        "refused_by_policy",
        "bad_framing",
        "abandoned",
        "connection_closed",
    ] {
        assert!(outcomes.contains(required), "no vector expects {required}");
    }
}

#[test]
fn the_generator_reproduces_the_committed_exchange_vectors() {
    let tmp = tempfile::tempdir().expect("temporary directory");
    let n = write_all(tmp.path()).expect("generate");
    assert_eq!(n, vectors().len());
    let committed: Vec<_> = fs::read_dir(dir())
        .expect("testvectors/exchange exists")
        .collect();
    assert_eq!(
        committed.len(),
        n,
        "run cargo run -p kapsel-testvectors --bin generate"
    );
    for v in vectors() {
        let fresh = fs::read(tmp.path().join(&v.name)).expect("fresh vector");
        let old = fs::read(dir().join(&v.name))
            .unwrap_or_else(|_| panic!("{} is not committed; run the generator", v.name));
        assert!(
            fresh == old,
            "{} differs from the generator's output",
            v.name
        );
    }
}
