//! Armor decoding of arbitrary bytes: never panics, never buffers more than a
//! line, and keeps failing once failed; what decodes re-armors canonically
//! (for LF input without surrounding white space).
#![no_main]

use std::io::{Read, Write};

use kapsel_codec::{ArmoredReader, ArmoredWriter};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut reader = ArmoredReader::new(data);
    let mut out = Vec::new();
    match reader.read_to_end(&mut out) {
        Ok(_) => {
            let mut w = ArmoredWriter::new(Vec::new()).expect("vec");
            w.write_all(&out).expect("vec");
            let canonical = w.finish().expect("vec");
            let plain_lf =
                !data.contains(&b'\r') && data.first() == Some(&b'-') && data.ends_with(b"-----\n");
            if plain_lf {
                assert_eq!(canonical, data, "a non-canonical armor was accepted");
            }
        }
        Err(_) => {
            let mut buf = [0u8; 16];
            assert!(
                reader.read(&mut buf).is_err(),
                "armor reader recovered after failing"
            );
        }
    }
});
