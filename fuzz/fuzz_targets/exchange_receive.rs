//! The receiver side of the live exchange (SPEC.md section 13) on arbitrary
//! bytes after its hello: never panics; a failure never follows released
//! bytes that were not a whole number of chunks; a receipt is made only
//! after the end marker; the segment reader never reports end of input
//! without it.
#![no_main]

use std::io::Read;

use kapsel_codec::exchange::{Challenge, MessageReader};
use kapsel_codec::{hazmat::hpke, Decryptor, Identity};
use libfuzzer_sys::fuzz_target;

fn identity() -> Identity {
    // The seed corpus (examples/make_seeds.rs) encrypts to this same key.
    Identity::from_secret_key(hpke::derive_key_pair(b"kapsel fuzz identity").expect("derive"))
}

/// The challenge the seeds answer.
const CHALLENGE: [u8; 32] = [0x5c; 32];

fuzz_target!(|data: &[u8]| {
    let id = identity();
    let challenge = Challenge::from_bytes(CHALLENGE);
    let mut input = MessageReader::new(data);
    let Ok(decryptor) = Decryptor::new(&mut input) else {
        return;
    };
    let header = decryptor.unverified_header().clone();
    let Ok((mut reader, key)) = decryptor.decrypt_live(std::slice::from_ref(&id), &challenge)
    else {
        return;
    };
    if challenge.check(&header).is_err() {
        return;
    }
    let mut released = 0usize;
    let mut buf = [0u8; 4096];
    let ok = loop {
        match reader.read(&mut buf) {
            Ok(0) => break true,
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
                break false;
            }
        }
    };
    drop(reader);
    if ok {
        assert!(input.ended(), "success without the end marker");
        let receipt = key.receipt(&input.tail());
        assert!(key.verify(&input.tail(), &receipt));
    }
});
