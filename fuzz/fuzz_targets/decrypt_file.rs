//! Whole-file decryption of arbitrary bytes with a fixed identity: never
//! panics, and a failure never follows released bytes that were not a whole
//! number of chunks.
#![no_main]

use std::io::Read;

use kapsel_codec::{hazmat::hpke, Decryptor, Identity};
use libfuzzer_sys::fuzz_target;

fn identity() -> Identity {
    // The seed corpus (fuzz/seeds.rs) encrypts to this same key.
    Identity::from_secret_key(hpke::derive_key_pair(b"kapsel fuzz identity").expect("derive"))
}

fuzz_target!(|data: &[u8]| {
    let id = identity();
    let Ok(decryptor) = Decryptor::new(data) else {
        return;
    };
    let Ok(mut reader) = decryptor.decrypt(std::slice::from_ref(&id)) else {
        return;
    };
    let mut released = 0usize;
    let mut buf = [0u8; 4096];
    loop {
        match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => released += n,
            Err(_) => {
                assert_eq!(
                    released % kapsel_format::CHUNK_SIZE,
                    0,
                    "unverified bytes released"
                );
                assert!(
                    reader.read(&mut buf).is_err(),
                    "reader recovered after failing"
                );
                break;
            }
        }
    }
});
