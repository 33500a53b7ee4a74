//! Writes the seed corpus of every fuzz target into `fuzz/seeds/<target>/`:
//! valid and lightly damaged files for the fixed fuzz identity, armored
//! files, and valid chunk sequences for the parallel decryptor. Seeded:
//! rerunning reproduces every byte.

use std::fs;
use std::io::Write;
use std::path::Path;

use kapsel_codec::exchange::Challenge;
use kapsel_codec::hazmat::exchange::FrameWriter;
use kapsel_codec::hazmat::payload::{ChunkCipher, PayloadWriter};
use kapsel_codec::ArmoredWriter;
use kapsel_codec::{hazmat::hpke, Encryptor, Identity};
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    fs::create_dir_all(dir).expect("seed dir");
    fs::write(dir.join(name), bytes).expect("seed file");
}

fn key(rng: &mut ChaCha20Rng) -> Identity {
    let mut seed = [0u8; 32];
    rng.fill_bytes(&mut seed);
    Identity::from_secret_key(hpke::derive_key_pair(&seed).expect("derive"))
}

fn file(rng: &mut ChaCha20Rng, to: &Identity, sender: Option<&Identity>, len: usize) -> Vec<u8> {
    file_answering(rng, to, sender, len, None)
}

fn file_answering(
    rng: &mut ChaCha20Rng,
    to: &Identity,
    sender: Option<&Identity>,
    len: usize,
    challenge: Option<Challenge>,
) -> Vec<u8> {
    let other = key(rng);
    let mut enc = Encryptor::new([to.to_recipient(), other.to_recipient()])
        .expect("recipients")
        .created_at(1_800_000_000);
    if let Some(c) = challenge {
        enc = enc.challenge(c);
    }
    if let Some(s) = sender {
        enc = enc.sender(s.clone());
    }
    let mut w = enc.wrap_output_with_rng(Vec::new(), rng).expect("header");
    w.write_all(&vec![0x61u8; len]).expect("write");
    w.finish().expect("finish")
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds");
    let id =
        Identity::from_secret_key(hpke::derive_key_pair(b"kapsel fuzz identity").expect("derive"));
    let mut rng = ChaCha20Rng::from_seed([7u8; 32]);
    let sender = key(&mut rng);
    for (i, (len, signed)) in [
        (0, false),
        (5, false),
        (16384, false),
        (20000, true),
        (40000, false),
    ]
    .into_iter()
    .enumerate()
    {
        let f = file(&mut rng, &id, signed.then_some(&sender), len);
        let header_len = kapsel_format::read::header(&f)
            .map(|(rest, _)| f.len() - rest.len())
            .unwrap_or(0);
        write(
            &root.join("header_roundtrip"),
            &format!("header-{i}"),
            &f[..header_len],
        );
        write(&root.join("decrypt_file"), &format!("file-{i}"), &f);
        let mut armored = ArmoredWriter::new(Vec::new()).expect("vec");
        armored.write_all(&f[..f.len().min(3000)]).expect("vec");
        write(
            &root.join("armor"),
            &format!("armor-{i}"),
            &armored.finish().expect("vec"),
        );
    }
    for (i, len) in [0usize, 100, 16384, 40000, 300_000].into_iter().enumerate() {
        let (cipher, _) = ChunkCipher::for_encryption_with_salt(&[0x42; 32], b"fuzz", [0x24; 24]);
        let mut w = PayloadWriter::from_parts(vec![(i % 4) as u8], cipher);
        w.write_all(&vec![0x62u8; len]).expect("write");
        write(
            &root.join("parallel_decrypt"),
            &format!("chunks-{i}"),
            &w.finish().expect("finish"),
        );
    }
    // Framed messages answering the exchange target's challenge, in
    // segments of several sizes.
    for (i, (len, signed, segment)) in [
        (0, false, 7),
        (5000, true, 1000),
        (40000, false, 16400),
        (20000, false, 1 << 20),
    ]
    .into_iter()
    .enumerate()
    {
        let f = file_answering(
            &mut rng,
            &id,
            signed.then_some(&sender),
            len,
            Some(Challenge::from_bytes([0x5c; 32])),
        );
        let mut framed = FrameWriter::new(Vec::new());
        for piece in f.chunks(segment) {
            framed.write_all(piece).expect("vec");
        }
        write(
            &root.join("exchange_receive"),
            &format!("framed-{i}"),
            &framed.finish().expect("vec"),
        );
    }
    // Version 2 headers and files (SPEC 14): hybrid post-quantum stanzas
    // (alone, several, mixed with P-256) and a passphrase stanza, from their
    // own generator so that the seeds above stay as they were.
    let mut rng2 = ChaCha20Rng::from_seed([9u8; 32]);
    let pq = |rng: &mut ChaCha20Rng| {
        let mut seed = [0u8; 32];
        rng.fill_bytes(&mut seed);
        kapsel_codec::HybridIdentity::from_secret_key(
            kapsel_codec::hazmat::pq::HybridSecretKey::from_seed(&seed).expect("seed"),
        )
    };
    let (a, b) = (pq(&mut rng2), pq(&mut rng2));
    let cases: Vec<(
        Vec<kapsel_codec::Recipient>,
        Vec<kapsel_codec::HybridRecipient>,
        usize,
    )> = vec![
        (vec![], vec![a.to_recipient()], 0),
        (vec![], vec![a.to_recipient(), b.to_recipient()], 20000),
        (vec![id.to_recipient()], vec![a.to_recipient()], 5),
    ];
    for (i, (p256, hybrid, len)) in cases.into_iter().enumerate() {
        let enc = Encryptor::with_recipients(p256, hybrid)
            .expect("recipients")
            .allow_classical_with_post_quantum(true)
            .created_at(1_800_000_000);
        let mut w = enc
            .wrap_output_with_rng(Vec::new(), &mut rng2)
            .expect("header");
        w.write_all(&vec![0x63u8; len]).expect("write");
        let f = w.finish().expect("finish");
        let header_len = kapsel_format::read::header(&f)
            .map(|(rest, _)| f.len() - rest.len())
            .unwrap_or(0);
        write(
            &root.join("header_roundtrip"),
            &format!("header-v2-{i}"),
            &f[..header_len],
        );
        write(&root.join("decrypt_file"), &format!("file-v2-{i}"), &f);
    }
    let cheap = kapsel_codec::Cost {
        memory_kib: 64,
        passes: 1,
        lanes: 1,
    };
    let enc = Encryptor::with_passphrase(kapsel_codec::Passphrase::new("fuzz"))
        .expect("passphrase")
        .passphrase_cost(cheap)
        .created_at(1_800_000_000);
    let mut w = enc
        .wrap_output_with_rng(Vec::new(), &mut rng2)
        .expect("header");
    w.write_all(b"passphrase").expect("write");
    let f = w.finish().expect("finish");
    let header_len = kapsel_format::read::header(&f)
        .map(|(rest, _)| f.len() - rest.len())
        .unwrap_or(0);
    write(
        &root.join("header_roundtrip"),
        "header-v2-passphrase",
        &f[..header_len],
    );
    write(&root.join("decrypt_file"), "file-v2-passphrase", &f);
    println!("seeds written to {}", root.display());
}
