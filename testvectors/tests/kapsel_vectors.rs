//! kapsel's own conformance vectors (`testvectors/vectors/`, format in
//! `testvectors/README.md`) against the Rust codec.
//!
//! Every vector is decoded as a streaming receiver would: the input goes
//! through `ArmoredReader` (armored vectors), `Decryptor::new` and
//! `decrypt`, and the plaintext is read in 1000-byte pieces, keeping every
//! byte released before the decoder stopped. The outcome class and the
//! SHA-256 of the released bytes must match the vector, the reader must keep
//! failing after a failure, and the result must not change when the input
//! arrives in short reads. A second test regenerates every vector and
//! compares it byte for byte with the committed files.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};

use kapsel_codec::armor::ArmoredReader;
use kapsel_codec::{outcome_of_io_error, Decryptor, Identity, Outcome};
use kapsel_testvectors::vector::{Expect, VectorFile};
use sha2::{Digest, Sha256};

/// Plaintext read size: smaller than a chunk and not a divisor of it.
const READ_SIZE: usize = 1000;

fn vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("vectors")
}

fn load() -> Vec<(String, VectorFile)> {
    let mut out = Vec::new();
    let mut names: Vec<PathBuf> = fs::read_dir(vectors_dir())
        .expect("testvectors/vectors exists")
        .map(|e| e.expect("directory entry").path())
        .collect();
    names.sort();
    for path in names {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .expect("UTF-8 name")
            .to_string();
        let bytes = fs::read(&path).expect("readable vector");
        let v = VectorFile::parse(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        out.push((name, v));
    }
    out
}

fn expect_of(outcome: Option<Outcome>) -> Expect {
    match outcome {
        None => Expect::Success,
        Some(Outcome::NotKapsel) => Expect::NotKapsel,
        Some(Outcome::Unsupported) => Expect::Unsupported,
        Some(Outcome::MalformedHeader) => Expect::MalformedHeader,
        Some(Outcome::NoMatchingRecipient) => Expect::NoMatch,
        Some(Outcome::HeaderAuthFailed) => Expect::HeaderAuthFailure,
        Some(Outcome::PayloadFailed) => Expect::PayloadFailure,
        Some(Outcome::ArmorFailed) => Expect::ArmorFailure,
        Some(Outcome::SenderAuthFailed) => Expect::SenderVerificationFailure,
        Some(Outcome::Io) => panic!("an I/O outcome from an in-memory input"),
    }
}

/// Hands out at most `max` bytes per `read`.
struct Trickle<R> {
    inner: R,
    max: usize,
}

impl<R: Read> Read for Trickle<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min(self.max);
        self.inner.read(&mut buf[..n])
    }
}

/// Decodes `data` and returns the outcome (None for success) and the
/// plaintext released before the decoder stopped.
fn decode(
    data: &[u8],
    armored: bool,
    identities: &[Identity],
    piece: usize,
) -> (Option<Outcome>, Vec<u8>) {
    let input = Trickle {
        inner: data,
        max: piece,
    };
    let reader: Box<dyn Read> = if armored {
        Box::new(ArmoredReader::new(BufReader::with_capacity(256, input)))
    } else {
        Box::new(input)
    };
    let decryptor = match Decryptor::new(reader) {
        Ok(d) => d,
        Err(e) => return (Some(e.outcome()), Vec::new()),
    };
    let mut plaintext = match decryptor.decrypt(identities) {
        Ok(p) => p,
        Err(e) => return (Some(e.outcome()), Vec::new()),
    };
    let mut released = Vec::new();
    let mut buf = vec![0u8; READ_SIZE];
    loop {
        match plaintext.read(&mut buf) {
            Ok(0) => return (None, released),
            Ok(n) => released.extend_from_slice(&buf[..n]),
            Err(e) => {
                let outcome = outcome_of_io_error(&e);
                // SPEC 6.4: it keeps failing, and never reports a clean end.
                // (The class of the later errors is not checked: after an
                // error from below the payload layer, an armor or signature
                // failure, later reads report a plain I/O error.)
                for _ in 0..2 {
                    if let Ok(n) = plaintext.read(&mut buf) {
                        panic!("a read after a failure returned Ok({n})");
                    }
                }
                return (Some(outcome), released);
            }
        }
    }
}

struct Check {
    name: String,
    expect: Expect,
    armored: bool,
    identities: Vec<Identity>,
    released_len: usize,
    released_sha256: String,
    data: Vec<u8>,
}

fn check_of(name: &str, v: &VectorFile) -> Check {
    let field = |k: &str| {
        v.get(k)
            .unwrap_or_else(|| panic!("{name}: missing field {k}"))
    };
    Check {
        name: name.to_string(),
        expect: Expect::parse(field("expect"))
            .unwrap_or_else(|| panic!("{name}: unknown class {}", field("expect"))),
        armored: match field("armor") {
            "yes" => true,
            "no" => false,
            other => panic!("{name}: armor must be yes or no, not {other}"),
        },
        identities: v
            .all("identity")
            .into_iter()
            .map(|s| {
                Identity::from_secret_string(s)
                    .unwrap_or_else(|e| panic!("{name}: bad identity: {e}"))
            })
            .collect(),
        released_len: field("released_len").parse().expect("released_len"),
        released_sha256: field("released_sha256").to_string(),
        data: v.data.clone(),
    }
}

#[test]
fn every_vector_matches_the_rust_codec() {
    let vectors = load();
    assert!(
        vectors.len() >= 120,
        "only {} vectors in {}",
        vectors.len(),
        vectors_dir().display()
    );
    let mut failures = Vec::new();
    let mut per_class: BTreeMap<Expect, usize> = BTreeMap::new();
    for (name, v) in &vectors {
        let c = check_of(name, v);
        *per_class.entry(c.expect).or_default() += 1;
        // Whole reads, then short reads of 7 bytes (3 bytes for small inputs).
        let short = if c.data.len() > 100_000 { 4099 } else { 7 };
        let (outcome, released) = decode(&c.data, c.armored, &c.identities, usize::MAX);
        let (outcome2, released2) = decode(&c.data, c.armored, &c.identities, short);
        let got = expect_of(outcome);
        let digest = hex::encode(Sha256::digest(&released));
        if got != c.expect {
            failures.push(format!("{}: expected {}, got {}", c.name, c.expect.as_str(), got.as_str()));
        } else if released.len() != c.released_len || digest != c.released_sha256 {
            failures.push(format!(
                "{}: released {} bytes (sha256 {digest}), expected {} bytes (sha256 {})",
                c.name,
                released.len(),
                c.released_len,
                c.released_sha256
            ));
        }
        if outcome2 != outcome || released2 != released {
            failures.push(format!(
                "{}: short reads of {short} bytes give {:?} and {} bytes, whole reads {:?} and {} bytes",
                c.name,
                outcome2,
                released2.len(),
                outcome,
                released.len()
            ));
        }
    }
    for f in &failures {
        eprintln!("FAIL {f}");
    }
    eprintln!(
        "kapsel vectors: {} checked; per class: {}",
        vectors.len(),
        per_class
            .iter()
            .map(|(k, n)| format!("{} {n}", k.as_str()))
            .collect::<Vec<_>>()
            .join(", ")
    );
    assert!(failures.is_empty(), "{} vectors failed", failures.len());
    for class in Expect::ALL {
        assert!(
            per_class.contains_key(&class),
            "no vector of class {}",
            class.as_str()
        );
    }
}

#[test]
fn generator_reproduces_the_committed_vectors() {
    let tmp = tempfile::tempdir().expect("temporary directory");
    let n = kapsel_testvectors::generate::write_all(tmp.path()).expect("generate");
    let list = |dir: &Path| -> BTreeSet<String> {
        fs::read_dir(dir)
            .expect("directory")
            .map(|e| {
                e.expect("entry")
                    .file_name()
                    .into_string()
                    .expect("UTF-8 name")
            })
            .collect()
    };
    let fresh = list(tmp.path());
    let committed = list(&vectors_dir());
    assert_eq!(fresh.len(), n);
    assert_eq!(
        fresh, committed,
        "the generator writes a different set of files than testvectors/vectors holds: \
         run `cargo run -p kapsel-testvectors --bin generate`"
    );
    let mut differ = Vec::new();
    for name in &fresh {
        let a = fs::read(tmp.path().join(name)).expect("fresh vector");
        let b = fs::read(vectors_dir().join(name)).expect("committed vector");
        if a != b {
            differ.push(name.clone());
        }
    }
    assert!(
        differ.is_empty(),
        "regenerated vectors differ from the committed ones: {differ:?}"
    );
}
