//! kapsel's payload layer (`kapsel_codec::hazmat::payload`, Cobblestone-256) against
//! Wycheproof's C2SP chunked-encryption vectors for AES-256-GCM.
//!
//! Each ciphertext is decrypted with `PayloadReader` in 1000-byte reads:
//! - valid: the whole message comes out, and re-encrypting it with the
//!   vector's salt reproduces the ciphertext byte for byte;
//! - `HeaderFailure`: `PayloadReader::new` refuses it (before any chunk is
//!   decrypted) with the variant the flags call for;
//! - other invalid: reading fails, only the authenticated prefix (the
//!   `PartialPlaintext` message, else nothing) is released first, and the
//!   reader keeps failing.
//!
//! The AES-128-GCM file is out of scope: kapsel uses Cobblestone-256 only.
//!
//! Vector file: `wycheproof/c2sp_chunked_encryption_aes_256_gcm_test.json`
//! under the external vector directory (see
//! `kapsel_testvectors::external_vectors_dir`).

use std::collections::BTreeMap;
use std::io::{self, Read, Write};

use flate2::read::ZlibDecoder;
use kapsel_codec::hazmat::payload::{
    ChunkCipher, PayloadError, PayloadReader, PayloadWriter, StreamError, SALT_LEN,
};
use kapsel_codec::hazmat::payload_error_of;
use kapsel_testvectors::{read_vector_file, unhex};
use serde::Deserialize;
use sha2::{Digest, Sha512};

const VECTOR_FILE: &str = "wycheproof/c2sp_chunked_encryption_aes_256_gcm_test.json";

const EXPECTED_TOTAL: usize = 35;
const EXPECTED_VALID: usize = 10;
const EXPECTED_HEADER_FAILURE: usize = 10;
const EXPECTED_PARTIAL_PLAINTEXT: usize = 9;
const EXPECTED_NO_PLAINTEXT: usize = 6;

/// Size of each `read` call: smaller than a chunk, and not a divisor of it.
const READ_SIZE: usize = 1000;

#[derive(Debug, Deserialize)]
struct ChunkedFile {
    #[serde(rename = "numberOfTests")]
    number_of_tests: usize,
    #[serde(rename = "testGroups")]
    test_groups: Vec<ChunkedGroup>,
}

#[derive(Debug, Deserialize)]
struct ChunkedGroup {
    aead: String,
    sha: String,
    tests: Vec<ChunkedTest>,
}

#[derive(Debug, Deserialize)]
struct ChunkedTest {
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

impl ChunkedTest {
    fn has(&self, flag: &str) -> bool {
        self.flags.iter().any(|f| f == flag)
    }

    fn label(&self) -> String {
        format!("tcId {} ({})", self.tc_id, self.comment)
    }

    /// The ciphertext: `ct` is the hex of its zlib compression.
    fn ciphertext(&self) -> Vec<u8> {
        let mut ct = Vec::new();
        ZlibDecoder::new(&unhex(&self.ct)[..])
            .read_to_end(&mut ct)
            .unwrap_or_else(|e| panic!("{}: ct does not inflate: {e}", self.label()));
        ct
    }

    /// Checks that `released` is the message `msgLength` / `msgSha512` describe.
    fn assert_message(&self, released: &[u8]) {
        let length = self.msg_length.expect("vector has msgLength");
        let sha512 = self.msg_sha512.as_deref().expect("vector has msgSha512");
        assert_eq!(released.len(), length, "{}: released length", self.label());
        assert_eq!(
            hex::encode(Sha512::digest(released)),
            sha512,
            "{}: SHA-512 of released bytes",
            self.label()
        );
    }
}

/// Reads until end of input or the first error, in `READ_SIZE` reads;
/// returns the released bytes and the error.
fn drain(reader: &mut impl Read) -> (Vec<u8>, Option<io::Error>) {
    let mut released = Vec::new();
    let mut buf = [0u8; READ_SIZE];
    loop {
        match reader.read(&mut buf) {
            Ok(0) => return (released, None),
            Ok(n) => released.extend_from_slice(&buf[..n]),
            Err(e) => return (released, Some(e)),
        }
    }
}

/// The `PayloadReader::new` error the flags of a `HeaderFailure` vector call for.
fn expected_header_error(t: &ChunkedTest) -> PayloadError {
    if t.has("Truncation") {
        PayloadError::Truncated
    } else if t.has("WrongKey") || t.has("WrongContext") || t.has("ModifiedCiphertext") {
        PayloadError::CommitmentMismatch
    } else {
        panic!(
            "{}: unclassified HeaderFailure flags {:?}",
            t.label(),
            t.flags
        )
    }
}

fn check_valid(t: &ChunkedTest, key: &[u8; 32], ctx: &[u8], ct: &[u8]) {
    let mut reader = PayloadReader::new(ct, key, ctx)
        .unwrap_or_else(|e| panic!("{}: valid header refused: {e}", t.label()));
    let (message, error) = drain(&mut reader);
    if let Some(e) = error {
        panic!("{}: valid payload failed: {e}", t.label());
    }
    t.assert_message(&message);
    let mut buf = [0u8; READ_SIZE];
    assert_eq!(
        reader.read(&mut buf).ok(),
        Some(0),
        "{}: end of payload stays at end",
        t.label()
    );

    // Encryption: the same key, context and salt give the same ciphertext.
    let mut salt = [0u8; SALT_LEN];
    salt.copy_from_slice(&ct[..SALT_LEN]);
    let (cipher, prefix) = ChunkCipher::for_encryption_with_salt(key, ctx, salt);
    let mut writer = PayloadWriter::from_parts(Vec::new(), cipher);
    writer
        .write_all(&message)
        .unwrap_or_else(|e| panic!("{}: write: {e}", t.label()));
    let chunks = writer
        .finish()
        .unwrap_or_else(|e| panic!("{}: finish: {e}", t.label()));
    let mut encrypted = prefix.to_vec();
    encrypted.extend_from_slice(&chunks);
    assert!(
        encrypted == ct,
        "{}: re-encryption differs from the vector ({} bytes vs {})",
        t.label(),
        encrypted.len(),
        ct.len()
    );
}

fn check_header_failure(t: &ChunkedTest, key: &[u8], ctx: &[u8], ct: &[u8]) {
    // A key of another length cannot reach the payload layer at all: its
    // input key is a `&[u8; 32]`.
    let Ok(key) = <&[u8; 32]>::try_from(key) else {
        assert!(
            t.has("InvalidKeySize"),
            "{}: key of {} bytes",
            t.label(),
            key.len()
        );
        return;
    };
    assert!(!t.has("InvalidKeySize"), "{}: a 32-byte key", t.label());
    let expected = expected_header_error(t);
    match PayloadReader::new(ct, key, ctx) {
        Err(StreamError::Payload(e)) => {
            assert_eq!(e, expected, "{}: PayloadReader::new error", t.label());
        }
        Err(e) => panic!("{}: {e} instead of {expected:?}", t.label()),
        Ok(_) => panic!(
            "{}: PayloadReader::new accepted a header that must fail with {expected:?}",
            t.label()
        ),
    }
}

/// Returns the name of the payload error the reader failed with.
fn check_chunk_failure(t: &ChunkedTest, key: &[u8; 32], ctx: &[u8], ct: &[u8]) -> &'static str {
    let mut reader = PayloadReader::new(ct, key, ctx)
        .unwrap_or_else(|e| panic!("{}: header must pass: {e}", t.label()));
    let (released, error) = drain(&mut reader);
    let Some(error) = error else {
        panic!(
            "{}: invalid payload read to the end ({} bytes released)",
            t.label(),
            released.len()
        );
    };
    let first = payload_error_of(&error)
        .unwrap_or_else(|| panic!("{}: error carries no PayloadError: {error}", t.label()));
    if t.has("PartialPlaintext") {
        t.assert_message(&released);
    } else {
        assert!(
            released.is_empty(),
            "{}: {} bytes released from unauthenticated input",
            t.label(),
            released.len()
        );
    }
    let mut buf = [0u8; READ_SIZE];
    for attempt in 1..=3 {
        match reader.read(&mut buf) {
            Ok(n) => panic!(
                "{}: read {attempt} after failure returned Ok({n})",
                t.label()
            ),
            Err(e) => assert_eq!(
                payload_error_of(&e),
                Some(first),
                "{}: read {attempt} after failure",
                t.label()
            ),
        }
    }
    match first {
        PayloadError::ChunkAuthFailed { .. } => "ChunkAuthFailed",
        PayloadError::Truncated => "Truncated",
        other => panic!("{}: chunk-level failure reported as {other:?}", t.label()),
    }
}

/// The 32-byte key of a vector that is not about the key's size.
fn key32(t: &ChunkedTest, key: &[u8]) -> [u8; 32] {
    key.try_into()
        .unwrap_or_else(|_| panic!("{}: key of {} bytes", t.label(), key.len()))
}

#[test]
fn payload_reader_and_writer_match_c2sp_chunked_encryption_aes_256_gcm_vectors() {
    let Some(text) = read_vector_file(VECTOR_FILE) else {
        return;
    };
    let file: ChunkedFile =
        serde_json::from_str(&text).expect("C2SP chunked-encryption file parses");
    let (mut valid, mut header_failure, mut partial, mut no_plaintext) = (0, 0, 0, 0);
    let mut reencrypted = 0;
    let mut chunk_errors: BTreeMap<&str, usize> = BTreeMap::new();
    for group in &file.test_groups {
        assert_eq!(
            (group.aead.as_str(), group.sha.as_str()),
            ("AEAD_AES_256_GCM", "SHA-512")
        );
        for t in &group.tests {
            let (key, ctx, ct) = (unhex(&t.key), unhex(&t.ctx), t.ciphertext());
            match t.result.as_str() {
                "valid" => {
                    check_valid(t, &key32(t, &key), &ctx, &ct);
                    valid += 1;
                    reencrypted += 1;
                }
                "invalid" if t.has("HeaderFailure") => {
                    check_header_failure(t, &key, &ctx, &ct);
                    header_failure += 1;
                }
                "invalid" => {
                    let name = check_chunk_failure(t, &key32(t, &key), &ctx, &ct);
                    *chunk_errors.entry(name).or_default() += 1;
                    if t.has("PartialPlaintext") {
                        partial += 1;
                    } else {
                        no_plaintext += 1;
                    }
                }
                other => panic!("{}: unexpected result {other:?}", t.label()),
            }
        }
    }
    let total = valid + header_failure + partial + no_plaintext;
    eprintln!(
        "c2sp chunked-encryption aes-256-gcm: {total} ran: {valid} valid decrypted \
         ({reencrypted} re-encrypted byte for byte), {header_failure} refused at the header, \
         {partial} failed after releasing exactly the valid prefix, \
         {no_plaintext} failed releasing nothing (chunk errors: {chunk_errors:?})"
    );
    assert_eq!(valid, EXPECTED_VALID);
    assert_eq!(reencrypted, EXPECTED_VALID);
    assert_eq!(header_failure, EXPECTED_HEADER_FAILURE);
    assert_eq!(partial, EXPECTED_PARTIAL_PLAINTEXT);
    assert_eq!(no_plaintext, EXPECTED_NO_PLAINTEXT);
    assert_eq!(total, EXPECTED_TOTAL);
    assert_eq!(total, file.number_of_tests);
}
