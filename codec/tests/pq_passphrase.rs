//! Hybrid post-quantum recipients and passphrase stanzas end to end:
//! round trips at chunk-edge sizes and several recipient counts, signed and
//! seekable, the mixing rule, text forms, wrong and hostile passphrases.

use std::io::{Cursor, Read, Seek, SeekFrom, Write};
use std::str::FromStr;

use kapsel_codec::{Cost, WorkLimit};
use kapsel_codec::{
    DecryptError, Decryptor, EncryptError, Encryptor, HybridIdentity, HybridRecipient, Identity,
    Keyring, Outcome, Passphrase,
};
use kapsel_format::{Stanza, CHUNK_SIZE, HYBRID_STANZA_BODY_LEN, VERSION_1, VERSION_2};

/// A cheap Argon2id cost for tests (the default takes about a second).
const TEST_COST: Cost = Cost {
    memory_kib: 64,
    passes: 1,
    lanes: 1,
};

fn plaintext(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + 3) as u8).collect()
}

fn seal(e: Encryptor, data: &[u8]) -> Vec<u8> {
    let mut w = e.wrap_output(Vec::new()).expect("encrypt");
    w.write_all(data).expect("write");
    w.finish().expect("finish")
}

fn open(file: &[u8], keys: &Keyring) -> Result<Vec<u8>, DecryptError> {
    let mut out = Vec::new();
    Decryptor::new(file)?
        .decrypt_with(keys)?
        .read_to_end(&mut out)
        .map_err(DecryptError::Io)?;
    Ok(out)
}

#[test]
fn hybrid_round_trips_at_chunk_edges_and_recipient_counts() {
    let ids: Vec<HybridIdentity> = (0..3).map(|_| HybridIdentity::generate()).collect();
    for n in [1usize, 3] {
        for len in [
            0,
            1,
            CHUNK_SIZE - 1,
            CHUNK_SIZE,
            CHUNK_SIZE + 1,
            3 * CHUNK_SIZE,
        ] {
            let data = plaintext(len);
            let e = Encryptor::with_recipients([], ids[..n].iter().map(|i| i.to_recipient()))
                .expect("encryptor");
            let file = seal(e, &data);
            let header = Decryptor::new(&file[..])
                .expect("header")
                .unverified_header()
                .clone();
            assert_eq!(header.version(), VERSION_2);
            assert_eq!(header.stanzas.len(), n);
            for id in &ids[..n] {
                let keys = Keyring::new().with_hybrid_identities([id.clone()]);
                assert_eq!(
                    open(&file, &keys).expect("decrypt"),
                    data,
                    "n={n} len={len}"
                );
            }
            let stranger = Keyring::new().with_hybrid_identities([HybridIdentity::generate()]);
            assert_eq!(
                open(&file, &stranger).unwrap_err().outcome(),
                Outcome::NoMatchingRecipient
            );
        }
    }
}

#[test]
fn header_grows_by_1209_bytes_per_hybrid_recipient() {
    let one = seal(
        Encryptor::with_recipients([], [HybridIdentity::generate().to_recipient()]).unwrap(),
        b"",
    );
    let two = seal(
        Encryptor::with_recipients(
            [],
            (0..2).map(|_| HybridIdentity::generate().to_recipient()),
        )
        .unwrap(),
        b"",
    );
    assert_eq!(two.len() - one.len(), 4 + HYBRID_STANZA_BODY_LEN);
    assert_eq!(4 + HYBRID_STANZA_BODY_LEN, 1209);
}

#[test]
fn mixing_classical_and_post_quantum_is_refused_unless_allowed() {
    let p = Identity::generate();
    let q = HybridIdentity::generate();
    let e = Encryptor::with_recipients([p.to_recipient()], [q.to_recipient()]).unwrap();
    let err = e.wrap_output(Vec::new()).unwrap_err();
    assert!(matches!(err, EncryptError::MixedPostQuantum), "{err:?}");
    let e = Encryptor::with_recipients([p.to_recipient()], [q.to_recipient()])
        .unwrap()
        .allow_classical_with_post_quantum(true);
    let file = seal(e, b"mixed");
    let both = Keyring::new()
        .with_identities([p.clone()])
        .with_hybrid_identities([q.clone()]);
    assert_eq!(open(&file, &both).unwrap(), b"mixed");
    assert_eq!(open(&file, &Keyring::from(&[p][..])).unwrap(), b"mixed");
}

#[test]
fn p256_only_files_stay_version_1() {
    let p = Identity::generate();
    let file = seal(Encryptor::new([p.to_recipient()]).unwrap(), b"x");
    assert_eq!(file[8], VERSION_1);
}

#[test]
fn hybrid_signed_file_verifies_and_seeks() {
    let sender = Identity::generate();
    let q = HybridIdentity::generate();
    let data = plaintext(2 * 1024 * 1024 + 5);
    let e = Encryptor::with_recipients([], [q.to_recipient()])
        .unwrap()
        .sender(sender.clone());
    let file = seal(e, &data);
    let keys = Keyring::new().with_hybrid_identities([q]);
    let mut reader = Decryptor::new(&file[..])
        .unwrap()
        .decrypt_with(&keys)
        .unwrap();
    let mut out = Vec::new();
    reader.read_to_end(&mut out).unwrap();
    assert_eq!(out, data);
    assert_eq!(reader.verified_sender(), Some(sender.to_recipient()));
    let mut seekable = Decryptor::new(Cursor::new(file))
        .unwrap()
        .decrypt_seekable_with(&keys)
        .unwrap();
    seekable.seek(SeekFrom::Start(1_500_000)).unwrap();
    let mut buf = vec![0u8; 1000];
    seekable.read_exact(&mut buf).unwrap();
    assert_eq!(buf, data[1_500_000..1_501_000]);
}

#[test]
fn hybrid_key_strings_round_trip_and_are_checked() {
    let q = HybridIdentity::generate();
    let secret = q.to_secret_string();
    assert!(secret.starts_with("KAPSEL-PQ-SECRET-KEY-1"));
    assert_eq!(secret.len(), 80);
    let back = HybridIdentity::from_secret_string(&secret).unwrap();
    assert_eq!(back.to_recipient(), q.to_recipient());
    let r = q.to_recipient().to_string();
    assert!(r.starts_with("kapselpq1"));
    assert_eq!(r.len(), 2014);
    assert_eq!(HybridRecipient::from_str(&r).unwrap(), q.to_recipient());
    assert_eq!(
        HybridRecipient::from_str(&r.to_uppercase()).unwrap(),
        q.to_recipient()
    );
    // One changed character anywhere is caught by the checksum.
    for at in [9, 500, 1000, 2013] {
        let mut s = r.clone().into_bytes();
        s[at] = if s[at] == b'q' { b'p' } else { b'q' };
        let s = String::from_utf8(s).unwrap();
        assert!(HybridRecipient::from_str(&s).is_err(), "change at {at}");
    }
    // A P-256 parser names the kind it found.
    let err = kapsel_codec::Recipient::from_str(&r).unwrap_err();
    assert!(err.to_string().contains("post-quantum"), "{err}");
}

#[test]
fn passphrase_round_trips_and_is_alone() {
    for len in [0, 1, CHUNK_SIZE, CHUNK_SIZE + 1] {
        let data = plaintext(len);
        let e = Encryptor::with_passphrase(Passphrase::new("correct horse"))
            .unwrap()
            .passphrase_cost(TEST_COST);
        let file = seal(e, &data);
        let header = Decryptor::new(&file[..])
            .unwrap()
            .unverified_header()
            .clone();
        assert_eq!(header.stanzas.len(), 1);
        assert!(matches!(header.stanzas[0], Stanza::Passphrase { .. }));
        let keys = Keyring::new().with_passphrase(Passphrase::new("correct horse"));
        assert_eq!(open(&file, &keys).unwrap(), data);
    }
}

#[test]
fn wrong_passphrase_is_told_apart_from_a_damaged_header() {
    let e = Encryptor::with_passphrase(Passphrase::new("right"))
        .unwrap()
        .passphrase_cost(TEST_COST);
    let file = seal(e, b"secret");
    let wrong = Keyring::new().with_passphrase(Passphrase::new("wrong"));
    let err = open(&file, &wrong).unwrap_err();
    assert!(matches!(err, DecryptError::WrongPassphrase), "{err:?}");
    assert_eq!(err.outcome(), Outcome::NoMatchingRecipient);
    // Damage outside the stanza (the serial): the key opens, the commitment fails.
    let mut damaged = file.clone();
    damaged[24] ^= 1;
    let right = Keyring::new().with_passphrase(Passphrase::new("right"));
    assert_eq!(
        open(&damaged, &right).unwrap_err().outcome(),
        Outcome::HeaderAuthFailed
    );
    // No passphrase at all.
    let err = open(&file, &Keyring::new()).unwrap_err();
    assert!(matches!(err, DecryptError::PassphraseRequired), "{err:?}");
}

#[test]
fn empty_passphrase_is_refused_by_the_encoder() {
    let err = Encryptor::with_passphrase(Passphrase::new("")).unwrap_err();
    assert!(matches!(err, EncryptError::EmptyPassphrase));
}

#[test]
fn hostile_cost_is_refused_before_any_derivation() {
    let e = Encryptor::with_passphrase(Passphrase::new("pw"))
        .unwrap()
        .passphrase_cost(TEST_COST);
    let mut file = seal(e, b"x");
    // The stanza body starts after prefix (16), time, serial (16), sender
    // kind (1), count (2), type and length (4): memory at +16, passes at +20.
    let body = 16 + 16 + 1 + 2 + 4;
    file[body + 16..body + 20].copy_from_slice(&u32::MAX.to_be_bytes());
    file[body + 20..body + 24].copy_from_slice(&u32::MAX.to_be_bytes());
    let keys = Keyring::new().with_passphrase(Passphrase::new("pw"));
    let started = std::time::Instant::now();
    let err = open(&file, &keys).unwrap_err();
    assert!(
        matches!(err, DecryptError::PassphraseWorkTooHigh { .. }),
        "{err:?}"
    );
    assert_eq!(err.outcome(), Outcome::Unsupported);
    assert!(err.to_string().contains("more than"), "{err}");
    // Refused, not computed: 4 TiB of Argon2id would never return.
    assert!(started.elapsed().as_secs() < 5);
    // A tighter limit refuses even the test cost.
    let tight = Keyring::new()
        .with_passphrase(Passphrase::new("pw"))
        .with_work_limit(WorkLimit {
            max_memory_kib: 32,
            max_passes: 1,
        });
    let ok_file = seal(
        Encryptor::with_passphrase(Passphrase::new("pw"))
            .unwrap()
            .passphrase_cost(TEST_COST),
        b"x",
    );
    assert!(matches!(
        open(&ok_file, &tight).unwrap_err(),
        DecryptError::PassphraseWorkTooHigh { .. }
    ));
}
