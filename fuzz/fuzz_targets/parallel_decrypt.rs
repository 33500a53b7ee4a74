//! Differential: the parallel decryptor against the sequential reader on
//! arbitrary chunk bytes under a fixed key. Both must release the same bytes
//! and agree on success or failure.
#![no_main]

use std::io::Read;

use kapsel_codec::hazmat::parallel;
use kapsel_codec::hazmat::payload::{ChunkCipher, PayloadReader};
use kapsel_codec::hazmat::payload_error_of;
use libfuzzer_sys::fuzz_target;

const KEY: [u8; 32] = [0x42; 32];
const SALT: [u8; 24] = [0x24; 24];

fn cipher() -> ChunkCipher {
    ChunkCipher::for_encryption_with_salt(&KEY, b"fuzz", SALT).0
}

fuzz_target!(|data: &[u8]| {
    // The first byte picks the thread count, the rest are the chunks.
    let Some((&threads, chunks)) = data.split_first() else {
        return;
    };
    let threads = usize::from(threads % 4) + 1;

    let mut sequential = Vec::new();
    let mut reader = PayloadReader::from_parts(chunks, cipher());
    let seq_result = reader
        .read_to_end(&mut sequential)
        .map(|_| ())
        .map_err(|e| payload_error_of(&e));

    let mut parallel_out = Vec::new();
    let par_result = parallel::decrypt_payload(chunks, &mut parallel_out, cipher(), threads)
        .map(|_| ())
        .map_err(|e| payload_error_of(&std::io::Error::from(e)));

    assert_eq!(parallel_out, sequential, "released plaintext differs");
    assert_eq!(par_result, seq_result, "outcome differs");
});
