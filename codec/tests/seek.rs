//! Random access (`kapsel_codec::hazmat::seek`): positions at chunk edges, the
//! length authenticated before any end is reported, concurrent `read_at`,
//! corruption confined to the ranges that touch it, sender signatures, a
//! real zip archive opened in place through the seekable decryptor, and the
//! Wycheproof C2SP chunked-encryption vectors through the payload layer.

// Helpers outside `#[test]` functions unwrap too; clippy.toml allows it only
// inside them.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::io::{self, Cursor, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use flate2::read::ZlibDecoder;
use kapsel_codec::hazmat::payload::{PayloadError, PayloadReader, StreamError, CHUNK_SIZE};
use kapsel_codec::hazmat::payload_error_of;
use kapsel_codec::hazmat::seek::{SeekablePayload, SeekableReader};
use kapsel_codec::hazmat::segment::SIGNATURE_LEN;
use kapsel_codec::{Decryptor, Encryptor, Identity, Outcome};
use serde::Deserialize;
use sha2::{Digest, Sha512};

const ENCRYPTED_CHUNK: usize = CHUNK_SIZE + 16;

/// A small deterministic generator (xorshift64*), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u64).wrapping_mul(0x9e37_79b9) as u8 ^ (i >> 14) as u8)
        .collect()
}

fn encrypt(to: &Identity, sender: Option<&Identity>, plaintext: &[u8]) -> Vec<u8> {
    let mut enc = Encryptor::new([to.to_recipient()]).expect("recipient");
    if let Some(s) = sender {
        enc = enc.sender(s.clone());
    }
    let mut w = enc.wrap_output(Vec::new()).expect("header");
    w.write_all(plaintext).expect("write");
    w.finish().expect("finish")
}

fn open<R: Read + Seek>(id: &Identity, source: R) -> Result<SeekableReader<R>, Outcome> {
    Decryptor::new(source)
        .map_err(|e| e.outcome())?
        .decrypt_seekable(std::slice::from_ref(id))
        .map_err(|e| e.outcome())
}

fn header_len(file: &[u8]) -> usize {
    Decryptor::new(file)
        .expect("header")
        .unverified_header_bytes()
        .len()
}

fn payload_error(e: &io::Error) -> PayloadError {
    payload_error_of(e).unwrap_or_else(|| panic!("not a payload error: {e}"))
}

#[test]
fn seek_and_read_at_chunk_edges() {
    let id = Identity::generate();
    for len in [
        0,
        1,
        CHUNK_SIZE - 1,
        CHUNK_SIZE,
        CHUNK_SIZE + 1,
        2 * CHUNK_SIZE,
        3 * CHUNK_SIZE + 100,
    ] {
        let pt = pattern(len);
        let file = encrypt(&id, None, &pt);
        let mut r = open(&id, Cursor::new(file)).expect("opens");
        assert_eq!(r.chunk_count(), (len / CHUNK_SIZE + 1) as u64);
        assert_eq!(r.seek(SeekFrom::End(0)).unwrap(), len as u64, "len {len}");
        assert!(r.payload().is_length_verified());
        let edges = [0, 16383, 16384, 16385, len.saturating_sub(1), len];
        for &p in edges.iter().filter(|&&p| p <= len) {
            // Read + Seek, with a read that crosses the next chunk edge.
            assert_eq!(r.seek(SeekFrom::Start(p as u64)).unwrap(), p as u64);
            let want = (len - p).min(20_000);
            let mut got = vec![0u8; want];
            r.read_exact(&mut got).unwrap();
            assert_eq!(got, pt[p..p + want], "len {len}, read at {p}");
            // read_at: fills as far as the plaintext goes, then stops.
            let mut buf = vec![0u8; 40_000];
            let n = r.read_at(p as u64, &mut buf).unwrap();
            assert_eq!(n, (len - p).min(40_000), "len {len}, read_at {p}");
            assert_eq!(buf[..n], pt[p..p + n]);
            // Relative seeks agree with absolute ones.
            let from_end = r.seek(SeekFrom::End(p as i64 - len as i64)).unwrap();
            assert_eq!(from_end, p as u64);
            assert_eq!(r.seek(SeekFrom::Current(5)).unwrap(), p as u64 + 5);
            assert_eq!(r.seek(SeekFrom::Current(-5)).unwrap(), p as u64);
        }
        // At and past the end: Ok(0), position kept.
        for past in [len as u64, len as u64 + 1, len as u64 + 1_000_000] {
            r.seek(SeekFrom::Start(past)).unwrap();
            assert_eq!(r.read(&mut [0u8; 10]).unwrap(), 0);
            assert_eq!(r.read_at(past, &mut [0u8; 10]).unwrap(), 0);
            assert_eq!(r.stream_position().unwrap(), past);
        }
        // The whole plaintext, from the start.
        r.rewind().unwrap();
        let mut all = Vec::new();
        r.read_to_end(&mut all).unwrap();
        assert_eq!(all, pt, "len {len}");
        // Negative positions are refused and leave the position alone.
        let e = r.seek(SeekFrom::Current(-(len as i64) - 1)).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        assert_eq!(r.stream_position().unwrap(), len as u64);
        let mut exact = vec![0u8; 2];
        let e = r
            .read_exact_at((len as u64).saturating_sub(1), &mut exact)
            .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
    }
}

#[test]
fn only_the_chunks_a_range_touches_are_decrypted() {
    let id = Identity::generate();
    let pt = pattern(64 * CHUNK_SIZE + 5);
    let r = open(&id, Cursor::new(encrypt(&id, None, &pt))).unwrap();
    assert_eq!(r.chunk_count(), 65);
    assert_eq!(r.chunks_decrypted(), 0, "opening decrypts nothing");
    let mut buf = [0u8; 10];
    r.read_exact_at(30 * CHUNK_SIZE as u64 + 7, &mut buf)
        .unwrap();
    assert_eq!(buf, pt[30 * CHUNK_SIZE + 7..][..10]);
    assert_eq!(r.chunks_decrypted(), 1);
    // The same chunk again comes from the cache.
    r.read_exact_at(30 * CHUNK_SIZE as u64 + 100, &mut buf)
        .unwrap();
    assert_eq!(r.chunks_decrypted(), 1);
    // A range across one edge opens two chunks.
    let mut two = [0u8; 20];
    r.read_exact_at(40 * CHUNK_SIZE as u64 - 10, &mut two)
        .unwrap();
    assert_eq!(two, pt[40 * CHUNK_SIZE - 10..][..20]);
    assert_eq!(r.chunks_decrypted(), 3);
    assert!(!r.payload().is_length_verified());
    // The length costs exactly the final chunk.
    assert_eq!(r.plaintext_len().unwrap(), pt.len() as u64);
    assert_eq!(r.chunks_decrypted(), 4);
    assert_eq!(r.plaintext_len().unwrap(), pt.len() as u64);
    assert_eq!(r.chunks_decrypted(), 4);
}

#[test]
fn seek_from_end_fails_on_truncated_or_extended_files() {
    let id = Identity::generate();
    let pt = pattern(3 * CHUNK_SIZE + 100);
    let file = encrypt(&id, None, &pt);
    let payload_end = file.len();
    let mut cuts_that_opened = 0;
    // Lengths around the edges of the final chunk and of the last full one.
    let final_len = 100 + 16;
    for cut in [
        1,
        15,
        16,
        17,
        final_len - 1,
        final_len,
        final_len + 1,
        final_len + 16,
        final_len + ENCRYPTED_CHUNK,
        final_len + ENCRYPTED_CHUNK + 1,
    ] {
        let truncated = file[..payload_end - cut].to_vec();
        let mut r = match open(&id, Cursor::new(truncated)) {
            Err(outcome) => {
                // Lengths no payload can have are refused at once.
                assert_eq!(outcome, Outcome::PayloadFailed, "cut {cut}");
                continue;
            }
            Ok(r) => r,
        };
        cuts_that_opened += 1;
        let e = r.seek(SeekFrom::End(0)).expect_err("truncation caught");
        assert_eq!(Outcome::of_io(&e), Outcome::PayloadFailed, "cut {cut}");
        assert!(matches!(
            payload_error(&e),
            PayloadError::ChunkAuthFailed { .. }
        ));
        assert!(r.plaintext_len().is_err(), "cut {cut}");
        // Reading to the end fails rather than reporting a shorter file.
        let mut all = Vec::new();
        assert!(r.read_to_end(&mut all).is_err(), "cut {cut}");
        assert!(all.len() < pt.len());
        assert_eq!(all, pt[..all.len()]);
        // A chunk before the cut is still authentic on its own.
        let mut first = [0u8; 100];
        r.read_exact_at(0, &mut first).unwrap();
        assert_eq!(first, pt[..100]);
    }
    assert!(cuts_that_opened >= 5, "most cuts leave a plausible length");
    // Extended: bytes appended after the final chunk join it and fail it.
    for extra in [1usize, 16, 1000] {
        let mut longer = file.clone();
        longer.extend(std::iter::repeat_n(0u8, extra));
        if let Ok(mut r) = open(&id, Cursor::new(longer)) {
            let e = r.seek(SeekFrom::End(0)).expect_err("trailing data caught");
            assert_eq!(Outcome::of_io(&e), Outcome::PayloadFailed);
        }
    }
}

#[test]
fn read_at_from_several_threads_gives_the_right_bytes() {
    let id = Identity::generate();
    let pt = pattern(40 * CHUNK_SIZE + 1234);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("file.kap");
    std::fs::write(&path, encrypt(&id, None, &pt)).unwrap();
    let r = open(&id, std::fs::File::open(&path).unwrap()).unwrap();
    std::thread::scope(|s| {
        for t in 0..4u64 {
            let (r, pt) = (&r, &pt);
            s.spawn(move || {
                let mut rng = Rng(0x5eed + t);
                for _ in 0..300 {
                    let offset = rng.below(pt.len() as u64 + 100) as usize;
                    let mut buf = vec![0u8; 1 + rng.below(3 * CHUNK_SIZE as u64) as usize];
                    let n = r.read_at(offset as u64, &mut buf).unwrap();
                    let expected = &pt[offset.min(pt.len())..(offset + buf.len()).min(pt.len())];
                    assert_eq!(n, expected.len());
                    assert!(buf[..n] == *expected, "thread {t} offset {offset}");
                }
            });
        }
        // Independent cursors in threads of their own.
        for t in 0..2u64 {
            let (r, pt) = (&r, &pt);
            s.spawn(move || {
                let mut c = r.cursor();
                let mut rng = Rng(0xc0ffee + t);
                for _ in 0..100 {
                    let offset = rng.below(pt.len() as u64);
                    c.seek(SeekFrom::Start(offset)).unwrap();
                    let mut buf = vec![0u8; 5000];
                    let n = c.read(&mut buf).unwrap();
                    assert!(n > 0);
                    assert!(buf[..n] == pt[offset as usize..][..n]);
                    assert_eq!(c.stream_position().unwrap(), offset + n as u64);
                }
            });
        }
    });
}

#[test]
fn a_corrupt_chunk_fails_only_the_ranges_that_touch_it() {
    let id = Identity::generate();
    let pt = pattern(5 * CHUNK_SIZE + 77);
    let mut file = encrypt(&id, None, &pt);
    let chunks_start = header_len(&file) + 56;
    file[chunks_start + 2 * ENCRYPTED_CHUNK + 500] ^= 0x01;
    let mut r = open(&id, Cursor::new(file)).unwrap();
    let c = CHUNK_SIZE as u64;
    // Untouched chunks, and the length (the final chunk is intact).
    for (offset, len) in [
        (0, 100),
        (c - 50, 100),
        (3 * c, 2 * c as usize),
        (5 * c, 77),
    ] {
        let mut buf = vec![0u8; len];
        r.read_exact_at(offset, &mut buf).unwrap();
        assert_eq!(buf, pt[offset as usize..][..len]);
    }
    assert_eq!(r.seek(SeekFrom::End(0)).unwrap(), pt.len() as u64);
    // Every range touching chunk 2 fails with that chunk's index, each time.
    for (offset, len) in [
        (2 * c, 1),
        (3 * c - 1, 1),
        (2 * c - 10, 20),
        (c, 3 * c as usize),
    ] {
        for _ in 0..2 {
            let e = r.read_at(offset, &mut vec![0u8; len]).unwrap_err();
            assert_eq!(
                payload_error(&e),
                PayloadError::ChunkAuthFailed { index: 2 }
            );
        }
    }
    // Read: the plaintext before the bad chunk comes out, then the error.
    r.seek(SeekFrom::Start(2 * c - 10)).unwrap();
    let mut buf = [0u8; 100];
    assert_eq!(r.read(&mut buf).unwrap(), 10);
    assert_eq!(buf[..10], pt[2 * CHUNK_SIZE - 10..2 * CHUNK_SIZE]);
    let e = r.read(&mut buf).unwrap_err();
    assert_eq!(Outcome::of_io(&e), Outcome::PayloadFailed);
    // And reading past it works again.
    r.seek(SeekFrom::Start(3 * c)).unwrap();
    r.read_exact(&mut buf).unwrap();
    assert_eq!(buf, pt[3 * CHUNK_SIZE..][..100]);
}

#[test]
fn a_corrupt_final_chunk_makes_the_end_unknowable() {
    let id = Identity::generate();
    let pt = pattern(2 * CHUNK_SIZE);
    let mut file = encrypt(&id, None, &pt);
    let last = file.len() - 1;
    file[last] ^= 0x80; // the tag of the empty final chunk
    let mut r = open(&id, Cursor::new(file)).unwrap();
    let mut buf = vec![0u8; CHUNK_SIZE];
    r.read_exact_at(CHUNK_SIZE as u64, &mut buf).unwrap();
    // A read that would end at the end must not report it.
    assert!(r.read_at(2 * CHUNK_SIZE as u64 - 10, &mut buf).is_err());
    assert!(r.read_at(2 * CHUNK_SIZE as u64, &mut buf).is_err());
    assert!(r.seek(SeekFrom::End(-5)).is_err());
    r.seek(SeekFrom::Start(2 * CHUNK_SIZE as u64)).unwrap();
    let e = r.read(&mut buf).unwrap_err();
    assert_eq!(
        payload_error(&e),
        PayloadError::ChunkAuthFailed { index: 2 }
    );
}

#[test]
fn wrong_identity_and_modified_header_are_refused_before_any_chunk() {
    let (a, b) = (Identity::generate(), Identity::generate());
    let file = encrypt(&a, None, &pattern(50_000));
    assert_eq!(
        open(&b, Cursor::new(file.clone())).unwrap_err(),
        Outcome::NoMatchingRecipient
    );
    // The serial (bytes 15..23 of the header) is bound by the commitment.
    let mut modified = file.clone();
    let (_, header) = kapsel_format::read::header(&file).unwrap();
    let mut changed = header.clone();
    changed.serial ^= 1;
    let new_header = kapsel_format::write::header_to_vec(&changed).unwrap();
    assert_eq!(new_header.len(), header_len(&file));
    modified[..new_header.len()].copy_from_slice(&new_header);
    assert_eq!(
        open(&a, Cursor::new(modified)).unwrap_err(),
        Outcome::HeaderAuthFailed
    );
    // Too short for the salt and commitment.
    let short = file[..header_len(&file) + 55].to_vec();
    assert_eq!(
        open(&a, Cursor::new(short)).unwrap_err(),
        Outcome::PayloadFailed
    );
}

#[test]
fn signed_files_verify_every_segment_a_range_touches() {
    let (sender, to) = (Identity::generate(), Identity::generate());
    let pt = pattern(10 * CHUNK_SIZE + 3);
    let file = encrypt(&to, Some(&sender), &pt);
    let r = open(&to, Cursor::new(file.clone())).unwrap();
    assert!(r.claimed_sender().unwrap().is(&sender.to_recipient()));
    assert_eq!(r.verified_sender(), None);
    // The signature is not part of the plaintext, and the length verifies.
    assert_eq!(r.plaintext_len().unwrap(), pt.len() as u64);
    assert_eq!(r.verified_sender(), Some(sender.to_recipient()));
    let mut buf = vec![0u8; 100];
    assert_eq!(r.read_at(pt.len() as u64 - 50, &mut buf).unwrap(), 50);
    assert_eq!(buf[..50], pt[pt.len() - 50..]);
    assert_eq!(r.segments_verified(), 1, "the cache serves the second read");

    // A damaged signature: no range of its segment reads at all.
    let mut bad_sig = file.clone();
    let n = bad_sig.len();
    bad_sig[n - 1] ^= 0x01;
    let r = open(&to, Cursor::new(bad_sig)).unwrap();
    let e = r
        .read_exact_at(5 * CHUNK_SIZE as u64, &mut buf)
        .unwrap_err();
    assert_eq!(Outcome::of_io(&e), Outcome::SenderAuthFailed);
    assert_eq!(r.verified_sender(), None);

    // A chunk byte flipped: the segment's signature fails first.
    let mut bad_chunk = file.clone();
    let at = header_len(&file) + 56 + 3 * ENCRYPTED_CHUNK + 9;
    bad_chunk[at] ^= 0x01;
    let r = open(&to, Cursor::new(bad_chunk)).unwrap();
    let e = r.read_exact_at(0, &mut buf).unwrap_err();
    assert_eq!(Outcome::of_io(&e), Outcome::SenderAuthFailed);

    // Cut into the signature: the final segment's signature fails.
    let cut = file[..file.len() - 1].to_vec();
    let r = open(&to, Cursor::new(cut)).unwrap();
    assert_eq!(
        Outcome::of_io(&r.plaintext_len().unwrap_err()),
        Outcome::SenderAuthFailed
    );
    // Too short to hold a final segment at all.
    let tiny = file[..header_len(&file) + 56 + SIGNATURE_LEN + 15].to_vec();
    assert_eq!(
        open(&to, Cursor::new(tiny)).unwrap_err(),
        Outcome::PayloadFailed
    );

    // An anonymous file has no sender to verify.
    let anonymous = open(&to, Cursor::new(encrypt(&to, None, &pt))).unwrap();
    assert!(anonymous.claimed_sender().is_none());
    anonymous.plaintext_len().unwrap();
    assert_eq!(anonymous.verified_sender(), None);
}

#[test]
fn a_file_inside_a_larger_source_opens_from_where_its_header_starts() {
    let id = Identity::generate();
    let pt = pattern(3 * CHUNK_SIZE + 9);
    let mut source = b"some prefix the caller skipped".to_vec();
    let skip = source.len() as u64;
    source.extend(encrypt(&id, None, &pt));
    let mut cursor = Cursor::new(source);
    cursor.seek(SeekFrom::Start(skip)).unwrap();
    let mut r = open(&id, cursor).unwrap();
    let mut all = Vec::new();
    r.read_to_end(&mut all).unwrap();
    assert_eq!(all, pt);
}

// --- A real zip archive, opened in place ---------------------------------

struct Member {
    name: String,
    data: Vec<u8>,
}

/// 200 members of 20-100 KiB in nested directories, every third stored
/// uncompressed, the rest deflated (half of each is compressible text).
fn archive_members() -> Vec<Member> {
    let mut rng = Rng(0xa11ce);
    (0..200)
        .map(|i| {
            let len = 20 * 1024 + rng.below(80 * 1024) as usize;
            let mut data = rng.bytes(len / 2);
            let line = format!("member {i} line of compressible text\n");
            while data.len() < len {
                data.extend_from_slice(line.as_bytes());
            }
            data.truncate(len);
            Member {
                name: format!("dir{}/sub{}/member-{i:03}.bin", i % 7, i % 3),
                data,
            }
        })
        .collect()
}

fn zip_archive(members: &[Member]) -> Vec<u8> {
    use zip::write::SimpleFileOptions;
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for (i, m) in members.iter().enumerate() {
        let method = if i % 3 == 0 {
            zip::CompressionMethod::Stored
        } else {
            zip::CompressionMethod::Deflated
        };
        w.start_file(
            m.name.as_str(),
            SimpleFileOptions::default().compression_method(method),
        )
        .unwrap();
        w.write_all(&m.data).unwrap();
    }
    w.finish().unwrap().into_inner()
}

#[test]
fn zip_archive_opens_in_place_and_one_member_decrypts_a_small_fraction() {
    let members = archive_members();
    let zip_bytes = zip_archive(&members);
    let id = Identity::generate();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("archive.zip.kap");
    std::fs::write(&path, encrypt(&id, None, &zip_bytes)).unwrap();

    let reader = open(&id, std::fs::File::open(&path).unwrap()).unwrap();
    let total = reader.chunk_count();
    let mut archive = zip::ZipArchive::new(reader).expect("zip opens through the decryptor");
    assert_eq!(archive.len(), members.len());
    let mut names: Vec<&str> = archive.file_names().collect();
    names.sort_unstable();
    let mut expected: Vec<&str> = members.iter().map(|m| m.name.as_str()).collect();
    expected.sort_unstable();
    assert_eq!(names, expected);
    // What listing alone costs, on a second reader.
    let listing_cost =
        zip::ZipArchive::new(open(&id, std::fs::File::open(&path).unwrap()).unwrap())
            .unwrap()
            .into_inner()
            .chunks_decrypted();

    for pick in [123usize, 57] {
        let m = &members[pick];
        let mut data = Vec::new();
        archive
            .by_name(&m.name)
            .expect("member exists")
            .read_to_end(&mut data)
            .unwrap();
        assert!(data == m.data, "member {} bytes", m.name);
    }
    let reader = archive.into_inner();
    let used = reader.chunks_decrypted();
    eprintln!(
        "zip: {} members, {} bytes, {total} chunks; listing decrypted {listing_cost}, \
         listing + 2 members {used}",
        members.len(),
        zip_bytes.len()
    );
    assert!(
        reader.payload().is_length_verified(),
        "zip sought from the end"
    );
    assert!(listing_cost <= 4, "listing decrypted {listing_cost} chunks");
    assert!(used * 20 < total, "{used} of {total} chunks decrypted");
}

#[test]
fn zip_members_extract_from_several_threads_through_cursors() {
    let members = archive_members();
    let id = Identity::generate();
    let file = encrypt(&id, None, &zip_archive(&members));
    let reader = open(&id, Cursor::new(file)).unwrap();
    std::thread::scope(|s| {
        for t in 0..3usize {
            let (reader, members) = (&reader, &members);
            s.spawn(move || {
                let mut archive = zip::ZipArchive::new(reader.cursor()).unwrap();
                for pick in (t..members.len()).step_by(40) {
                    let mut data = Vec::new();
                    archive
                        .by_name(&members[pick].name)
                        .unwrap()
                        .read_to_end(&mut data)
                        .unwrap();
                    assert!(data == members[pick].data, "thread {t} member {pick}");
                }
            });
        }
    });
    assert!(reader.chunks_decrypted() < reader.chunk_count() / 4);
}

// --- Wycheproof C2SP chunked-encryption vectors --------------------------

const VECTOR_FILE: &str = "wycheproof/c2sp_chunked_encryption_aes_256_gcm_test.json";

/// `$KAPSEL_VECTORS_DIR`, else `shared/vectors` beside the repository (the
/// same rule as `kapsel-testvectors`, which the codec cannot depend on).
fn vector_file(relative: &str) -> Option<PathBuf> {
    let dir = std::env::var_os("KAPSEL_VECTORS_DIR")
        .filter(|v| !v.is_empty())
        .map_or_else(
            || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/vectors"),
            PathBuf::from,
        );
    let file = dir.join(relative);
    if file.is_file() {
        return Some(file);
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!(
            "vector file {} not found and CI=true: set KAPSEL_VECTORS_DIR",
            file.display()
        );
    }
    eprintln!(
        "skipping: vector file {} not found (set KAPSEL_VECTORS_DIR)",
        file.display()
    );
    None
}

#[derive(Deserialize)]
struct VectorFile {
    #[serde(rename = "numberOfTests")]
    number_of_tests: usize,
    #[serde(rename = "testGroups")]
    test_groups: Vec<VectorGroup>,
}

#[derive(Deserialize)]
struct VectorGroup {
    tests: Vec<Vector>,
}

#[derive(Deserialize)]
struct Vector {
    #[serde(rename = "tcId")]
    tc_id: u32,
    comment: String,
    flags: Vec<String>,
    key: String,
    ctx: String,
    ct: String,
    #[serde(rename = "msgLength")]
    msg_length: Option<usize>,
    #[serde(rename = "msgSha512")]
    msg_sha512: Option<String>,
    result: String,
}

impl Vector {
    fn has(&self, flag: &str) -> bool {
        self.flags.iter().any(|f| f == flag)
    }

    fn label(&self) -> String {
        format!("tcId {} ({})", self.tc_id, self.comment)
    }

    fn ciphertext(&self) -> Vec<u8> {
        let mut ct = Vec::new();
        ZlibDecoder::new(&hex::decode(&self.ct).unwrap()[..])
            .read_to_end(&mut ct)
            .unwrap();
        ct
    }

    fn assert_message(&self, bytes: &[u8]) {
        assert_eq!(Some(bytes.len()), self.msg_length, "{}", self.label());
        assert_eq!(
            Some(hex::encode(Sha512::digest(bytes))),
            self.msg_sha512,
            "{}",
            self.label()
        );
    }
}

fn open_payload(
    key: &[u8; 32],
    ctx: &[u8],
    ct: &[u8],
) -> Result<SeekablePayload<Cursor<Vec<u8>>>, StreamError> {
    SeekablePayload::new(Cursor::new(ct.to_vec()), 0, ct.len() as u64, key, ctx)
}

/// Sequential reads of 1000 bytes from the start: released bytes and error.
fn drain(r: &mut impl Read) -> (Vec<u8>, Option<io::Error>) {
    let mut out = Vec::new();
    let mut buf = [0u8; 1000];
    loop {
        match r.read(&mut buf) {
            Ok(0) => return (out, None),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) => return (out, Some(e)),
        }
    }
}

fn check_valid(t: &Vector, key: &[u8; 32], ctx: &[u8], ct: &[u8]) {
    let mut r = open_payload(key, ctx, ct).unwrap_or_else(|e| panic!("{}: {e}", t.label()));
    let (message, error) = drain(&mut r);
    assert!(error.is_none(), "{}: {error:?}", t.label());
    t.assert_message(&message);
    // The length authenticates by the final chunk alone.
    let len = message.len() as u64;
    let fresh = open_payload(key, ctx, ct).unwrap();
    fresh
        .verify_length()
        .unwrap_or_else(|e| panic!("{}: {e}", t.label()));
    assert_eq!(fresh.chunks_decrypted(), 1);
    assert_eq!(fresh.plaintext_len().unwrap(), len);
    // Chunk by chunk from the end backwards, through Seek.
    let mut r = open_payload(key, ctx, ct).unwrap();
    assert_eq!(r.seek(SeekFrom::End(0)).unwrap(), len);
    let mut backwards = vec![0u8; message.len()];
    let mut end = message.len();
    while end > 0 {
        let start = (end - 1) / CHUNK_SIZE * CHUNK_SIZE;
        r.seek(SeekFrom::Start(start as u64)).unwrap();
        r.read_exact(&mut backwards[start..end]).unwrap();
        end = start;
    }
    assert!(backwards == message, "{}: backwards", t.label());
    // Ranges at random places, through read_at.
    let mut rng = Rng(u64::from(t.tc_id) + 1);
    for _ in 0..20 {
        let offset = rng.below(len + 10);
        let mut buf = vec![0u8; rng.below(40_000) as usize];
        let n = fresh.read_at(offset, &mut buf).unwrap();
        let from = (offset as usize).min(message.len());
        let to = (offset as usize + buf.len()).min(message.len());
        assert_eq!(n, to - from, "{}: read_at({offset})", t.label());
        assert!(
            buf[..n] == message[from..to],
            "{}: read_at({offset})",
            t.label()
        );
    }
}

/// The error `SeekablePayload::new` must give for a `HeaderFailure` vector.
fn expected_header_error(t: &Vector) -> PayloadError {
    if t.has("Truncation") {
        PayloadError::Truncated
    } else {
        PayloadError::CommitmentMismatch
    }
}

/// Invalid vectors whose header passes: the whole message must not read,
/// and the final chunk must fail unless the vector is `ValidFinalChunk`.
/// Returns whether the seekable payload opened at all.
fn check_invalid(t: &Vector, key: &[u8; 32], ctx: &[u8], ct: &[u8]) -> bool {
    // What the streaming reader releases before failing (checked against
    // the vectors by the testvectors crate).
    let (streamed, _) = drain(&mut PayloadReader::new(ct, key, ctx).unwrap());
    let mut r = match open_payload(key, ctx, ct) {
        Err(StreamError::Payload(PayloadError::Truncated)) => {
            // A length no payload can have: refused before any chunk.
            assert!(
                !t.has("ValidFinalChunk"),
                "{}: refused although its final chunk is valid",
                t.label()
            );
            return false;
        }
        Err(e) => panic!("{}: unexpected error {e}", t.label()),
        Ok(r) => r,
    };
    let (released, error) = drain(&mut r);
    let error = error.unwrap_or_else(|| panic!("{}: invalid message read to the end", t.label()));
    assert!(payload_error_of(&error).is_some(), "{}: {error}", t.label());
    assert!(
        released == streamed,
        "{}: released {} bytes",
        t.label(),
        released.len()
    );
    if t.has("PartialPlaintext") {
        t.assert_message(&released);
    }
    let fresh = open_payload(key, ctx, ct).unwrap();
    let length = fresh.verify_length();
    assert_eq!(fresh.chunks_decrypted(), 1, "{}", t.label());
    if t.has("ValidFinalChunk") {
        length.unwrap_or_else(|e| panic!("{}: valid final chunk refused: {e}", t.label()));
        let mut r = open_payload(key, ctx, ct).unwrap();
        assert!(r.seek(SeekFrom::End(0)).is_ok(), "{}", t.label());
        // Its length is authentic, yet the message still fails as a whole.
        r.rewind().unwrap();
        assert!(drain(&mut r).1.is_some(), "{}", t.label());
    } else {
        assert!(length.is_err(), "{}: final chunk accepted", t.label());
        let mut r = open_payload(key, ctx, ct).unwrap();
        assert!(r.seek(SeekFrom::End(0)).is_err(), "{}", t.label());
    }
    true
}

#[test]
fn seekable_payload_matches_c2sp_chunked_encryption_aes_256_gcm_vectors() {
    let Some(path) = vector_file(VECTOR_FILE) else {
        return;
    };
    let text = std::fs::read_to_string(&path).unwrap();
    let file: VectorFile = serde_json::from_str(&text).unwrap();
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for t in file.test_groups.iter().flat_map(|g| &g.tests) {
        let (key, ctx, ct) = (
            hex::decode(&t.key).unwrap(),
            hex::decode(&t.ctx).unwrap(),
            t.ciphertext(),
        );
        // A key of another length cannot reach the payload layer: its input
        // key is a `&[u8; 32]`.
        let Ok(key) = <[u8; 32]>::try_from(&key[..]) else {
            assert!(
                t.has("InvalidKeySize") && t.has("HeaderFailure"),
                "{}",
                t.label()
            );
            *counts.entry("header failure").or_default() += 1;
            continue;
        };
        let kind = match t.result.as_str() {
            "valid" => {
                check_valid(t, &key, &ctx, &ct);
                "valid"
            }
            "invalid" if t.has("HeaderFailure") => {
                let expected = expected_header_error(t);
                match open_payload(&key, &ctx, &ct) {
                    Err(StreamError::Payload(e)) => assert_eq!(e, expected, "{}", t.label()),
                    Err(e) => panic!("{}: {e}", t.label()),
                    Ok(_) => panic!("{}: header accepted", t.label()),
                }
                "header failure"
            }
            "invalid" if check_invalid(t, &key, &ctx, &ct) => {
                if t.has("ValidFinalChunk") {
                    "invalid, valid final chunk"
                } else {
                    "invalid, final chunk fails"
                }
            }
            "invalid" => "invalid, length refused at open",
            other => panic!("{}: result {other}", t.label()),
        };
        *counts.entry(kind).or_default() += 1;
    }
    eprintln!("c2sp through SeekablePayload: {counts:?}");
    assert_eq!(counts.values().sum::<usize>(), file.number_of_tests);
    assert_eq!(counts.get("valid"), Some(&10));
    assert_eq!(counts.get("header failure"), Some(&10));
    assert_eq!(counts.get("invalid, valid final chunk"), Some(&4));
}

/// A source that serves only the bytes inside a window of a file (which the
/// test narrows while a reader holds the source), as a reader fed from one
/// ranged request would.
struct Window {
    file: Vec<u8>,
    allowed: std::sync::Arc<std::sync::Mutex<std::ops::Range<u64>>>,
    pos: u64,
}

impl Read for Window {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let len = self.file.len() as u64;
        if self.pos >= len {
            return Ok(0);
        }
        let n = (buf.len() as u64).min(len - self.pos);
        let allowed = self.allowed.lock().unwrap().clone();
        if n > 0 && !(allowed.start <= self.pos && self.pos + n <= allowed.end) {
            return Err(io::Error::other("read outside the fetched window"));
        }
        let at = self.pos as usize;
        buf[..n as usize].copy_from_slice(&self.file[at..at + n as usize]);
        self.pos += n;
        Ok(n as usize)
    }
}

impl Seek for Window {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        self.pos = match to {
            SeekFrom::Start(n) => n,
            SeekFrom::End(d) => self.file.len().checked_add_signed(d as isize).unwrap() as u64,
            SeekFrom::Current(d) => self.pos.checked_add_signed(d).unwrap(),
        };
        Ok(self.pos)
    }
}

#[test]
fn source_range_covers_exactly_what_a_ranged_read_reads() {
    let alice = Identity::generate();
    let sam = Identity::generate();
    let c = CHUNK_SIZE as u64;
    for (sender, len) in [
        (None, 0usize),
        (None, 1),
        (None, 3 * CHUNK_SIZE + 5),
        (Some(&sam), 2 * 64 * CHUNK_SIZE + 100),
    ] {
        let plain = pattern(len);
        let file = encrypt(&alice, sender, &plain);
        let header = header_len(&file) as u64;
        let len = len as u64;
        let unit = if sender.is_some() { 64 * c } else { c };
        for (offset, want) in [
            (0, 1),
            (0, c + 1),
            (c - 1, 2),
            (c, c),
            (unit + 1, 10),
            (len.saturating_sub(3), 10),
            (len + 5, 1),
        ] {
            // A fresh reader each time, so its one-unit cache is empty.
            let allowed = std::sync::Arc::new(std::sync::Mutex::new(0..file.len() as u64));
            let source = Window {
                file: file.clone(),
                allowed: allowed.clone(),
                pos: 0,
            };
            let reader = open(&alice, source).unwrap();
            assert_eq!(reader.source_range(offset, 0), None);
            let range = reader.source_range(offset, want).unwrap();
            assert!(range.start >= header + 56 && range.end <= file.len() as u64);
            *allowed.lock().unwrap() = range.clone();
            let mut buf = vec![0u8; want as usize];
            let n = reader.read_at(offset, &mut buf).unwrap();
            let start = offset.min(len) as usize;
            let end = (offset + want).min(len) as usize;
            assert_eq!(&buf[..n], &plain[start..end], "offset {offset} len {want}");
            // One byte less at either end, and the read fails (a fresh
            // reader each time, so that no unit comes from its cache).
            for narrower in [range.start..range.end - 1, range.start + 1..range.end] {
                *allowed.lock().unwrap() = 0..file.len() as u64;
                let source = Window {
                    file: file.clone(),
                    allowed: allowed.clone(),
                    pos: 0,
                };
                let reader = open(&alice, source).unwrap();
                *allowed.lock().unwrap() = narrower;
                assert!(reader.read_at(offset, &mut buf).is_err());
            }
        }
    }
}
