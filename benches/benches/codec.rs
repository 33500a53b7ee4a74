//! Criterion benchmarks: the chunk primitive (with RustCrypto AES-GCM beside
//! it, the evidence for choosing aws-lc-rs), key wrap and unwrap, and the
//! sequential streaming encryptor and decryptor.
//!
//! Run: `cargo bench -p kapsel-benches` (see the README's "Benchmarks").

use std::io::{Read, Write};

use aes_gcm::aead::{AeadInPlace, KeyInit};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use kapsel_codec::payload::{ChunkCipher, CHUNK_SIZE};
use kapsel_codec::{Decryptor, Encryptor, Identity};

fn chunk_primitive(c: &mut Criterion) {
    let mut g = c.benchmark_group("chunk");
    let (cipher, _) = ChunkCipher::for_encryption(&[7u8; 32], b"bench").expect("32-byte key");
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
    let rc = aes_gcm::Aes256Gcm::new(&[7u8; 32].into());
    let nonce = [0u8; 12];
    g.bench_function("seal_16KiB_rustcrypto-aes-gcm-0.10", |b| {
        b.iter(|| {
            rc.encrypt_in_place_detached((&nonce).into(), b"", &mut buf)
                .expect("seal")
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

criterion_group!(benches, chunk_primitive, key_wrap, streaming);
criterion_main!(benches);
