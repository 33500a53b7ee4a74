//! What one ranged read of a kapsel file costs: the segment signatures it
//! verifies and the chunks it decrypts.
//!
//! ```sh
//! cargo run --release -p kapsel-codec --example range_cost -- FILE IDENTITY_FILE OFFSET LENGTH
//! ```

use std::error::Error;
use std::fs::File;

use kapsel_codec::{Decryptor, Identity};

fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [file, identity, offset, length] = &args[..] else {
        return Err("usage: range_cost FILE IDENTITY_FILE OFFSET LENGTH".into());
    };
    let text = std::fs::read_to_string(identity)?;
    let line = text
        .lines()
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .ok_or("no identity in the file")?;
    let identity = Identity::from_secret_string(line)?;
    let reader = Decryptor::new(File::open(file)?)?.decrypt_seekable(&[identity])?;
    let mut buf = vec![0u8; length.parse()?];
    let n = reader.read_at(offset.parse()?, &mut buf)?;
    println!(
        "{n} bytes at offset {offset}: {} segment signatures verified, {} of {} chunks decrypted{}",
        reader.segments_verified(),
        reader.chunks_decrypted(),
        reader.chunk_count(),
        match reader.verified_sender() {
            Some(s) => format!("; every byte signed by {s}"),
            None => String::new(),
        }
    );
    Ok(())
}
