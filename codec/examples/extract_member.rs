//! How an archive tool opens one member of an encrypted zip archive without
//! decrypting the rest: the seekable decryptor is handed to the `zip` crate
//! as its `Read + Seek` source, and only the chunks it reads are decrypted.
//!
//! ```sh
//! # demo: builds a small archive in a temporary directory and extracts a member
//! cargo run -p kapsel-codec --example extract_member
//! # a real file: writes the member's bytes to standard output
//! cargo run -p kapsel-codec --example extract_member -- archive.zip.kap me.key docs/report.pdf > report.pdf
//! ```

use std::error::Error;
use std::fs::File;
use std::io::{Read, Write};
use std::path::Path;

use kapsel_codec::{Decryptor, Encryptor, Identity};

/// Opens `member` of the encrypted zip archive at `path` and returns its
/// bytes, with the number of chunks decrypted out of the total.
fn extract(
    path: &Path,
    identity: &Identity,
    member: &str,
) -> Result<(Vec<u8>, u64, u64), Box<dyn Error>> {
    // Reads the header only.
    let decryptor = Decryptor::new(File::open(path)?)?;
    // Finds the file key and checks the commitment; decrypts nothing yet.
    let reader = decryptor.decrypt_seekable(std::slice::from_ref(identity))?;
    // zip seeks to the end for the central directory (which authenticates
    // the length through the final chunk or segment), then to the member.
    // For a signed file every read verifies the segments it touches first.
    let mut archive = zip::ZipArchive::new(reader)?;
    let mut data = Vec::new();
    archive.by_name(member)?.read_to_end(&mut data)?;
    let reader = archive.into_inner();
    if let Some(sender) = reader.verified_sender() {
        // Compare with the sender you expect before trusting it.
        eprintln!("every byte read was signed by {sender}");
    }
    Ok((data, reader.chunks_decrypted(), reader.chunk_count()))
}

/// Reads the first identity of an identity file (`kapsel keygen` format,
/// or a PEM private key).
fn read_identity(path: &Path) -> Result<Identity, Box<dyn Error>> {
    let text = std::fs::read_to_string(path)?;
    if text.contains("-----BEGIN") {
        return Ok(Identity::from_pem(&text)?);
    }
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .ok_or("no identity in the file")?;
    Ok(Identity::from_secret_string(line)?)
}

/// Builds a 100-member archive, encrypts it, and extracts one member.
fn demo() -> Result<(), Box<dyn Error>> {
    let dir = tempfile::tempdir()?;
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let mut wanted = Vec::new();
    for i in 0..100u32 {
        let name = format!("photos/{:02}/img-{i:03}.raw", i % 10);
        let data: Vec<u8> = (0..64 * 1024 + i * 101)
            .map(|j| (j.wrapping_mul(2_654_435_761) >> 13) as u8 ^ i as u8)
            .collect();
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored);
        zip.start_file(name.as_str(), options)?;
        zip.write_all(&data)?;
        if i == 42 {
            wanted = data;
        }
    }
    let archive = zip.finish()?.into_inner();

    let identity = Identity::generate();
    let path = dir.path().join("photos.zip.kap");
    let mut writer =
        Encryptor::new([identity.to_recipient()])?.wrap_output(File::create(&path)?)?;
    writer.write_all(&archive)?;
    writer.finish()?.sync_all()?;
    println!(
        "encrypted a {}-byte zip archive of 100 members to {}",
        archive.len(),
        path.display()
    );

    let member = "photos/02/img-042.raw";
    let (data, used, total) = extract(&path, &identity, member)?;
    assert!(data == wanted, "member bytes differ");
    println!(
        "extracted {member}: {} bytes, correct; decrypted {used} of {total} chunks ({:.1}%)",
        data.len(),
        100.0 * used as f64 / total as f64
    );
    Ok(())
}

fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [] => demo(),
        [file, identity, member] => {
            let identity = read_identity(Path::new(identity))?;
            let (data, used, total) = extract(Path::new(file), &identity, member)?;
            std::io::stdout().lock().write_all(&data)?;
            eprintln!("{} bytes; decrypted {used} of {total} chunks", data.len());
            Ok(())
        }
        _ => Err("usage: extract_member [ENCRYPTED_ZIP IDENTITY_FILE MEMBER]".into()),
    }
}
