//! Writes the kapsel conformance vectors:
//! `cargo run -p kapsel-testvectors --bin generate [DIR]`
//! (default: `testvectors/vectors`). Deterministic: rerunning it rewrites
//! every file byte for byte.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let dir = std::env::args_os().nth(1).map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("vectors"),
        PathBuf::from,
    );
    match kapsel_testvectors::generate::write_all(&dir) {
        Ok(n) => {
            println!("wrote {n} vectors to {}", dir.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("generate: cannot write {}: {e}", dir.display());
            ExitCode::FAILURE
        }
    }
}
