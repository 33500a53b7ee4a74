//! Criterion benchmarks:
//! - `chunk`: the chunk primitive (AWS-LC), with ring and RustCrypto AES-GCM
//!   beside it, and SHA-256 of 1 MiB (AWS-LC against `sha2`): the evidence
//!   for the one backend;
//! - `ecdh`: the steps of one stanza alone (key generation, Diffie-Hellman,
//!   point validation, Encap, Decap, key schedule, first chunk);
//! - `key_wrap`: a whole header with one stanza, made and opened;
//! - `small_message`: encrypt plus decrypt of a 1 KiB file to one recipient
//!   (messages per second per core is 1 / time);
//! - `stream_sequential`: the `io::Write` / `io::Read` codec;
//! - `stream_parallel`: `parallel::encrypt_payload` / `decrypt_payload` at
//!   1 thread and at all cores, memory to memory.
//!
//! Run: `cargo bench -p kapsel-benches` (all), or name a group:
//! `cargo bench -p kapsel-benches -- stream_parallel`.

use std::io::{Read, Write};

use aes_gcm::aead::{AeadInPlace, KeyInit};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use kapsel_codec::hazmat::parallel::{decrypt_payload, default_threads, encrypt_payload};
use kapsel_codec::hazmat::payload::{ChunkCipher, PayloadWriter, CHUNK_SIZE, PAYLOAD_HEADER_LEN};
use kapsel_codec::{Decryptor, Encryptor, Identity};

fn chunk_primitive(c: &mut Criterion) {
    let mut g = c.benchmark_group("chunk");
    let (cipher, _) = ChunkCipher::for_encryption(&[7u8; 32], b"bench");
    let mut buf = vec![0u8; CHUNK_SIZE];
    g.throughput(Throughput::Bytes(CHUNK_SIZE as u64));
    g.bench_function("seal_16KiB_aws-lc-rs", |b| {
        b.iter(|| cipher.seal(1, &mut buf).expect("seal"))
    });
    let mut sealed = vec![0u8; CHUNK_SIZE];
    let tag = cipher.seal(1, &mut sealed).expect("seal");
    sealed.extend_from_slice(&tag);
    g.bench_function("open_16KiB_aws-lc-rs", |b| {
        b.iter_batched_ref(
            || sealed.clone(),
            |chunk| cipher.open(1, chunk).map(|p| p.len()).expect("open"),
            criterion::BatchSize::SmallInput,
        )
    });
    let ring_key = ring::aead::LessSafeKey::new(
        ring::aead::UnboundKey::new(&ring::aead::AES_256_GCM, &[7u8; 32]).expect("32-byte key"),
    );
    g.bench_function("seal_16KiB_ring-0.17", |b| {
        b.iter(|| {
            ring_key
                .seal_in_place_separate_tag(
                    ring::aead::Nonce::assume_unique_for_key([0u8; 12]),
                    ring::aead::Aad::empty(),
                    &mut buf,
                )
                .expect("seal")
        })
    });
    let rc = aes_gcm::Aes256Gcm::new(&[7u8; 32].into());
    let nonce = [0u8; 12];
    g.bench_function("seal_16KiB_rustcrypto-aes-gcm-0.10", |b| {
        b.iter(|| {
            rc.encrypt_in_place_detached((&nonce).into(), b"", &mut buf)
                .expect("seal")
        })
    });
    let mut big = vec![0u8; 1 << 20];
    g.throughput(Throughput::Bytes(big.len() as u64));
    g.bench_function("sha256_1MiB_aws-lc-rs", |b| {
        b.iter(|| kapsel_codec::backend::sha256(&big)[0])
    });
    g.bench_function("sha256_1MiB_sha2-0.10", |b| {
        use sha2::Digest;
        b.iter(|| sha2::Sha256::digest(&big)[0])
    });
    big.truncate(0);
    g.finish();
}

/// The steps of one stanza, each alone: what a small message costs.
fn ecdh(c: &mut Criterion) {
    use kapsel_codec::hazmat::ec::{PublicKey, SecretKey};
    use kapsel_codec::hazmat::hpke::{self, Mode};

    let mut g = c.benchmark_group("ecdh");
    let ours = SecretKey::generate();
    let theirs = *SecretKey::generate().public_key();
    g.bench_function("keygen_aws-lc-rs", |b| {
        b.iter(|| SecretKey::generate().public_key().as_uncompressed()[1])
    });
    g.bench_function("dh_aws-lc-rs", |b| {
        b.iter(|| ours.diffie_hellman(&theirs)[0])
    });
    let point = theirs.to_uncompressed();
    g.bench_function("validate_point_aws-lc-rs", |b| {
        b.iter(|| {
            PublicKey::from_sec1_bytes(&point)
                .expect("valid")
                .as_uncompressed()[1]
        })
    });
    let compressed = theirs.to_compressed();
    g.bench_function("decompress_point_aws-lc-rs", |b| {
        b.iter(|| {
            PublicKey::from_sec1_bytes(&compressed)
                .expect("valid")
                .as_uncompressed()[1]
        })
    });
    let eph = SecretKey::generate();
    g.bench_function("encap_given_ephemeral", |b| {
        b.iter(|| hpke::encap(&theirs, None, &eph).enc[1])
    });
    let e = hpke::encap(ours.public_key(), None, &eph);
    g.bench_function("decap", |b| {
        b.iter(|| hpke::decap(&e.enc, &ours, None).expect("decap")[0])
    });
    g.bench_function("key_schedule", |b| {
        b.iter(|| {
            hpke::Context::new(Mode::Base, &e.shared_secret, b"kapsel/v1 file key").base_nonce()[0]
        })
    });
    let header = vec![0x55u8; 220];
    let mut first = vec![0x33u8; 1024];
    g.bench_function("payload_setup_and_first_1KiB_chunk", |b| {
        b.iter(|| {
            let (cipher, _) = ChunkCipher::for_encryption(&[7u8; 32], &header);
            cipher.seal(0, &mut first).expect("seal")[0]
        })
    });
    g.finish();
}

fn key_wrap(c: &mut Criterion) {
    let mut g = c.benchmark_group("key_wrap");
    let id = Identity::generate();
    g.bench_function("encrypt_header_1_recipient", |b| {
        b.iter(|| {
            Encryptor::new([id.to_recipient()])
                .expect("recipient")
                .wrap_output(Vec::new())
                .expect("header")
                .finish()
                .expect("finish")
        })
    });
    let file = {
        let w = Encryptor::new([id.to_recipient()])
            .expect("recipient")
            .wrap_output(Vec::new())
            .expect("header");
        w.finish().expect("finish")
    };
    g.bench_function("decrypt_header_1_recipient", |b| {
        b.iter(|| {
            Decryptor::new(&file[..])
                .expect("header")
                .decrypt(std::slice::from_ref(&id))
                .expect("unwrap")
                .chunks_verified()
        })
    });
    g.finish();
}

fn small_message(c: &mut Criterion) {
    let mut g = c.benchmark_group("small_message");
    let id = Identity::generate();
    let message = vec![0x33u8; 1024];
    g.throughput(Throughput::Elements(1));
    g.bench_function("encrypt_decrypt_1KiB_1_recipient", |b| {
        let mut plaintext = Vec::with_capacity(1024);
        b.iter(|| {
            let mut w = Encryptor::new([id.to_recipient()])
                .expect("recipient")
                .wrap_output(Vec::with_capacity(1400))
                .expect("header");
            w.write_all(&message).expect("write");
            let file = w.finish().expect("finish");
            plaintext.clear();
            Decryptor::new(&file[..])
                .expect("header")
                .decrypt(std::slice::from_ref(&id))
                .expect("unwrap")
                .read_to_end(&mut plaintext)
                .expect("decrypt")
        })
    });
    g.finish();
}

/// Encrypt plus decrypt of a 1 KiB message to one recipient of each kind,
/// per second on one core: P-256, hybrid ML-KEM-768 + P-256, and a
/// passphrase at the encoder's default Argon2id cost (two derivations per
/// iteration, so few samples).
fn small_message_by_recipient_kind(c: &mut Criterion) {
    use kapsel_codec::{HybridIdentity, Keyring, Passphrase};
    let message = vec![0x33u8; 1024];
    let round_trip = |e: Encryptor, keys: &Keyring, plaintext: &mut Vec<u8>| {
        let mut w = e.wrap_output(Vec::with_capacity(2600)).expect("header");
        w.write_all(&message).expect("write");
        let file = w.finish().expect("finish");
        plaintext.clear();
        Decryptor::new(&file[..])
            .expect("header")
            .decrypt_with(keys)
            .expect("unwrap")
            .read_to_end(plaintext)
            .expect("decrypt")
    };
    let mut g = c.benchmark_group("recipient_kind_1KiB");
    g.throughput(Throughput::Elements(1));
    let p256 = Identity::generate();
    let p256_keys = Keyring::new().with_identities([p256.clone()]);
    g.bench_function("p256", |b| {
        let mut pt = Vec::with_capacity(1024);
        b.iter(|| {
            round_trip(
                Encryptor::new([p256.to_recipient()]).expect("r"),
                &p256_keys,
                &mut pt,
            )
        })
    });
    let pq = HybridIdentity::generate();
    let pq_keys = Keyring::new().with_hybrid_identities([pq.clone()]);
    g.bench_function("mlkem768_p256", |b| {
        let mut pt = Vec::with_capacity(1024);
        b.iter(|| {
            round_trip(
                Encryptor::with_recipients([], [pq.to_recipient()]).expect("r"),
                &pq_keys,
                &mut pt,
            )
        })
    });
    g.finish();
    if !kapsel_codec::PASSPHRASE_AVAILABLE {
        return;
    }
    let mut g = c.benchmark_group("recipient_kind_1KiB_passphrase");
    g.throughput(Throughput::Elements(1));
    g.sample_size(10);
    let pw_keys = Keyring::new().with_passphrase(Passphrase::new("bench passphrase"));
    g.bench_function("argon2id_default", |b| {
        let mut pt = Vec::with_capacity(1024);
        b.iter(|| {
            round_trip(
                Encryptor::with_passphrase(Passphrase::new("bench passphrase")).expect("p"),
                &pw_keys,
                &mut pt,
            )
        })
    });
    g.finish();
}

fn streaming(c: &mut Criterion) {
    let mut g = c.benchmark_group("stream_sequential");
    g.sample_size(10);
    let id = Identity::generate();
    for size in [1usize << 20, 16 << 20] {
        let plaintext = vec![0x5au8; size];
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_with_input(BenchmarkId::new("encrypt", size), &plaintext, |b, pt| {
            b.iter(|| {
                let mut w = Encryptor::new([id.to_recipient()])
                    .expect("r")
                    .wrap_output(Vec::with_capacity(size + size / 512 + 512))
                    .expect("h");
                w.write_all(pt).expect("write");
                w.finish().expect("finish").len()
            })
        });
        let mut w = Encryptor::new([id.to_recipient()])
            .expect("r")
            .wrap_output(Vec::new())
            .expect("h");
        w.write_all(&plaintext).expect("write");
        let file = w.finish().expect("finish");
        g.bench_with_input(BenchmarkId::new("decrypt", size), &file, |b, file| {
            let mut out = vec![0u8; 1 << 20];
            b.iter(|| {
                let mut r = Decryptor::new(&file[..])
                    .expect("h")
                    .decrypt(std::slice::from_ref(&id))
                    .expect("unwrap");
                let mut total = 0;
                loop {
                    let n = r.read(&mut out).expect("read");
                    if n == 0 {
                        break total;
                    }
                    total += n;
                }
            })
        });
    }
    g.finish();
}

/// The parallel codec, memory to memory: plaintext from a slice, ciphertext
/// into a preallocated `Vec` (encrypt) and plaintext into `io::sink` (decrypt).
fn streaming_parallel(c: &mut Criterion) {
    let mut g = c.benchmark_group("stream_parallel");
    g.sample_size(10);
    let key = [9u8; 32];
    let size = 64usize << 20;
    let plaintext: Vec<u8> = (0..size).map(|i| (i * 7 + i / 4099) as u8).collect();
    let (cipher, prefix) = ChunkCipher::for_encryption(&key, b"bench");
    let mut w = PayloadWriter::from_parts(Vec::new(), cipher);
    w.write_all(&plaintext).expect("write");
    let chunks = w.finish().expect("finish");
    let salt: [u8; 24] = prefix[..24].try_into().expect("24 bytes");
    let commitment: [u8; 32] = prefix[24..PAYLOAD_HEADER_LEN].try_into().expect("32 bytes");
    g.throughput(Throughput::Bytes(size as u64));
    let all = default_threads();
    let mut counts = vec![1];
    if all > 1 {
        counts.push(all);
    }
    for threads in counts {
        g.bench_with_input(
            BenchmarkId::new("encrypt_64MiB", threads),
            &threads,
            |b, &t| {
                let mut out = Vec::with_capacity(chunks.len());
                b.iter(|| {
                    out.clear();
                    let (cipher, _) = ChunkCipher::for_encryption_with_salt(&key, b"bench", salt);
                    encrypt_payload(&plaintext[..], &mut out, cipher, t).expect("encrypt");
                    out.len()
                })
            },
        );
        g.bench_with_input(
            BenchmarkId::new("decrypt_64MiB", threads),
            &threads,
            |b, &t| {
                b.iter(|| {
                    let cipher = ChunkCipher::for_decryption(&key, b"bench", &salt, &commitment)
                        .expect("commitment");
                    decrypt_payload(&chunks[..], std::io::sink(), cipher, t).expect("decrypt")
                })
            },
        );
    }
    g.finish();
}

criterion_group!(
    benches,
    chunk_primitive,
    ecdh,
    key_wrap,
    small_message,
    small_message_by_recipient_kind,
    streaming,
    streaming_parallel
);
criterion_main!(benches);
