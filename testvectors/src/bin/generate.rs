//! Writes the kapsel conformance vectors:
//! `cargo run -p kapsel-testvectors --bin generate [DIR [EXCHANGE_DIR]]`
//! (defaults: `testvectors/vectors` for files, `testvectors/exchange` for
//! the live exchange of SPEC.md section 13). Deterministic: rerunning it
//! rewrites every file byte for byte.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let dir = args
        .next()
        .map_or_else(|| root.join("vectors"), PathBuf::from);
    let exchange_dir = args
        .next()
        .map_or_else(|| root.join("exchange"), PathBuf::from);
    let written = kapsel_testvectors::generate::write_all(&dir)
        .map(|n| (n, &dir))
        .and_then(|(n, _)| kapsel_testvectors::exchange::write_all(&exchange_dir).map(|m| (n, m)));
    match written {
        Ok((n, m)) => {
            println!("wrote {n} vectors to {}", dir.display());
            println!("wrote {m} exchange vectors to {}", exchange_dir.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("generate: cannot write the vectors: {e}");
            ExitCode::FAILURE
        }
    }
}
