//! The header parser on arbitrary bytes: never panics; what it accepts
//! re-encodes to exactly the same bytes; the streaming parser never asks for
//! more than the declared header length, nor more than its version allows.
#![no_main]

use kapsel_format::{read, write};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match read::header(data) {
        Ok((rest, header)) => {
            let consumed = data.len() - rest.len();
            let encoded = write::header_to_vec(&header).expect("an accepted header must encode");
            assert_eq!(
                &encoded[..],
                &data[..consumed],
                "non-canonical header accepted"
            );
            assert_eq!(read::header_exact(&encoded).expect("round trip"), header);
        }
        Err(nom::Err::Incomplete(nom::Needed::Size(n))) => {
            // Version 1 headers are bounded by MAX_HEADER_LEN, version 2 by MAX_HEADER_LEN_V2.
            let max = match data.get(8) {
                Some(&kapsel_format::VERSION_2) => kapsel_format::MAX_HEADER_LEN_V2,
                _ => kapsel_format::MAX_HEADER_LEN,
            };
            assert!(data.len() + n.get() <= max as usize);
        }
        Err(_) => {}
    }
});
