//! Decodes vector files with the Rust codec and prints, per file, one line
//! `NAME CLASS RELEASED_LEN RELEASED_SHA256` (the `expect` field is
//! ignored): `cargo run -p kapsel-testvectors --bin decode -- FILE|DIR...`.
//! `testvectors/python/differential.py` compares it with the Python decoder.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use kapsel_testvectors::run::{decode_with, expect_of, keys_of};
use kapsel_testvectors::vector::VectorFile;
use sha2::{Digest, Sha256};

fn one(path: &Path) -> Result<String, String> {
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    let v = VectorFile::parse(&bytes)?;
    let armored = v.get("armor") == Some("yes");
    let keys = keys_of(&v)?;
    let (outcome, released) = decode_with(&v.data, armored, &keys, usize::MAX);
    let name = path
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    Ok(format!(
        "{name} {} {} {}",
        expect_of(outcome).as_str(),
        released.len(),
        hex::encode(Sha256::digest(&released))
    ))
}

fn main() -> ExitCode {
    let mut files: Vec<PathBuf> = Vec::new();
    for arg in std::env::args_os().skip(1) {
        let p = PathBuf::from(arg);
        if p.is_dir() {
            let mut entries: Vec<PathBuf> = match std::fs::read_dir(&p) {
                Ok(rd) => rd.filter_map(|e| e.ok().map(|e| e.path())).collect(),
                Err(e) => {
                    eprintln!("decode: {}: {e}", p.display());
                    return ExitCode::FAILURE;
                }
            };
            entries.sort();
            files.extend(entries.into_iter().filter(|e| e.is_file()));
        } else {
            files.push(p);
        }
    }
    let mut ok = true;
    for f in files {
        match one(&f) {
            Ok(line) => println!("{line}"),
            Err(e) => {
                eprintln!("decode: {}: {e}", f.display());
                ok = false;
            }
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
