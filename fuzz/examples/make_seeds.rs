//! Writes the seed corpus of every fuzz target into `fuzz/seeds/<target>/`:
//! valid and lightly damaged files for the fixed fuzz identity, armored
//! files, and valid chunk sequences for the parallel decryptor. Seeded:
//! rerunning reproduces every byte.

use std::fs;
use std::io::Write;
use std::path::Path;

use kapsel_codec::exchange::{Challenge, FrameWriter};
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
        let (cipher, _) =
            ChunkCipher::for_encryption_with_salt(&[0x42; 32], b"fuzz", [0x24; 24]).expect("key");
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
    println!("seeds written to {}", root.display());
}
