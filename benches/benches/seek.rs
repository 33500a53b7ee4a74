//! Random access against whole-file decryption: extracting one 1 MiB member
//! from a 1 GiB encrypted zip archive through the seekable decryptor
//! (`Decryptor::decrypt_seekable` handed to `zip::ZipArchive`), against
//! decrypting the whole file (sequential streaming reader, and the parallel
//! decryptor the CLI uses), with the same extraction from the unencrypted
//! archive (through a `BufReader`; the seekable reader's one-chunk cache
//! plays that part for the encrypted one) as the floor.
//!
//! Run: `cargo bench -p kapsel-benches --bench seek`. The archive size is
//! `KAPSEL_SEEK_BENCH_BYTES` (default 1 GiB, in 1 MiB stored members); the
//! archive and its encryption are written once to a temporary directory
//! (2 GiB of disk at the default size) and read from the page cache.

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use kapsel_codec::{Decryptor, Encryptor, Identity};

const MEMBER: usize = 1 << 20;

fn archive_bytes() -> usize {
    std::env::var("KAPSEL_SEEK_BENCH_BYTES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1 << 30)
}

fn member_name(i: usize) -> String {
    format!("data/{:02}/member-{i:05}.bin", i % 64)
}

/// Writes a zip of `count` stored 1 MiB members (distinct pseudorandom bytes).
fn write_zip(path: &Path, count: usize) {
    let file = BufWriter::with_capacity(1 << 20, File::create(path).expect("create zip"));
    let mut zip = zip::ZipWriter::new(file);
    let options =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    let mut data = vec![0u8; MEMBER];
    for i in 0..count {
        let mut x = 0x9e37_79b9_7f4a_7c15u64 ^ i as u64;
        for word in data.chunks_exact_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            word.copy_from_slice(&x.to_le_bytes());
        }
        zip.start_file(member_name(i).as_str(), options)
            .expect("member");
        zip.write_all(&data).expect("write member");
    }
    zip.finish()
        .expect("finish zip")
        .flush()
        .expect("flush zip");
}

fn encrypt_file(from: &Path, to: &Path, identity: &Identity) {
    let output = BufWriter::with_capacity(1 << 20, File::create(to).expect("create"));
    let mut writer = Encryptor::new([identity.to_recipient()])
        .expect("recipient")
        .wrap_output(output)
        .expect("header");
    io::copy(&mut File::open(from).expect("open zip"), &mut writer).expect("encrypt");
    writer.finish().expect("finish").flush().expect("flush");
}

fn extract<R: Read + io::Seek>(source: R, name: &str) -> Vec<u8> {
    let mut archive = zip::ZipArchive::new(source).expect("zip opens");
    let mut out = Vec::with_capacity(MEMBER);
    archive
        .by_name(name)
        .expect("member")
        .read_to_end(&mut out)
        .expect("read member");
    out
}

fn seek_vs_whole(c: &mut Criterion) {
    let count = (archive_bytes() / MEMBER).max(2);
    let dir = tempfile::tempdir().expect("tempdir");
    let (zip_path, kap_path) = (dir.path().join("a.zip"), dir.path().join("a.zip.kap"));
    let identity = Identity::generate();
    let t = Instant::now();
    write_zip(&zip_path, count);
    encrypt_file(&zip_path, &kap_path, &identity);
    let size = std::fs::metadata(&kap_path).expect("size").len();
    eprintln!(
        "seek bench: {count} members of 1 MiB, encrypted file {size} bytes, set up in {:.1?}",
        t.elapsed()
    );
    let ids = std::slice::from_ref(&identity);
    let name = member_name(count / 2);

    // One extraction, to report how many chunks it decrypts.
    let reader = Decryptor::new(File::open(&kap_path).expect("open"))
        .expect("header")
        .decrypt_seekable(ids)
        .expect("opens");
    let mut archive = zip::ZipArchive::new(reader).expect("zip");
    let mut member = Vec::new();
    archive
        .by_name(&name)
        .expect("member")
        .read_to_end(&mut member)
        .expect("read");
    assert_eq!(member.len(), MEMBER);
    let reader = archive.into_inner();
    eprintln!(
        "seek bench: one member decrypted {} of {} chunks",
        reader.chunks_decrypted(),
        reader.chunk_count()
    );

    let mut g = c.benchmark_group(format!("seek_zip_{}MiB", count));
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(15));
    g.bench_function("extract_1MiB_member_unencrypted_zip", |b| {
        b.iter(|| {
            extract(
                io::BufReader::new(File::open(&zip_path).expect("open")),
                &name,
            )
            .len()
        })
    });
    g.bench_function("extract_1MiB_member_seekable", |b| {
        b.iter(|| {
            let reader = Decryptor::new(File::open(&kap_path).expect("open"))
                .expect("header")
                .decrypt_seekable(ids)
                .expect("opens");
            extract(reader, &name).len()
        })
    });
    g.bench_function("decrypt_whole_file_sequential", |b| {
        b.iter(|| {
            let mut plaintext = Decryptor::new(File::open(&kap_path).expect("open"))
                .expect("header")
                .decrypt(ids)
                .expect("opens");
            io::copy(&mut plaintext, &mut io::sink()).expect("decrypts")
        })
    });
    g.bench_function("decrypt_whole_file_parallel", |b| {
        b.iter(|| {
            let plaintext = Decryptor::new(File::open(&kap_path).expect("open"))
                .expect("header")
                .decrypt(ids)
                .expect("opens");
            plaintext
                .decrypt_to(io::sink(), 0, &mut || Ok(()))
                .map_err(|_| "decrypt failed")
                .expect("decrypts")
        })
    });
    g.finish();
}

criterion_group!(benches, seek_vs_whole);
criterion_main!(benches);
