//! Conformance tests of kapsel's composed primitives against external vector
//! files (RFC 9180 HPKE, Wycheproof AES-GCM / ECDH / HKDF, C2SP chunked
//! encryption), and kapsel's own file-level conformance vectors
//! (`testvectors/vectors/`, format in `testvectors/README.md`): their
//! generator ([`generate`], binary `generate`) and file format ([`vector`]).
//! The tests live in `tests/`; this library locates the external vector
//! files, which are never copied into the repository.
//!
//! The vectors are read from the directory named by `KAPSEL_VECTORS_DIR`, or
//! else from `shared/vectors` beside the repository root. When a directory or
//! file is missing, a test skips with a message on stderr, except under
//! `CI=true`, where it fails: CI must never pass by running nothing.

use std::env;
use std::path::{Path, PathBuf};

pub mod exchange;
pub mod generate;
pub mod pq;
pub mod run;
pub mod vector;

/// The environment variable naming the vector directory.
pub const VECTORS_DIR_ENV: &str = "KAPSEL_VECTORS_DIR";

/// `<repository root>/../shared/vectors`, the directory used when
/// `KAPSEL_VECTORS_DIR` is not set.
pub fn default_vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("..")
        .join("shared")
        .join("vectors")
}

fn configured_vectors_dir() -> PathBuf {
    env::var_os(VECTORS_DIR_ENV)
        .filter(|v| !v.is_empty())
        .map_or_else(default_vectors_dir, PathBuf::from)
}

fn in_ci() -> bool {
    env::var("CI").is_ok_and(|v| v == "true")
}

/// Fails under `CI=true`, otherwise prints why the test is skipped.
fn missing(what: &str, path: &Path) -> Option<PathBuf> {
    if in_ci() {
        panic!(
            "{what} {} not found and CI=true: conformance vectors are required in CI \
             (set {VECTORS_DIR_ENV} to the directory holding hpke/ and wycheproof/)",
            path.display()
        );
    }
    eprintln!(
        "skipping: {what} {} not found (set {VECTORS_DIR_ENV})",
        path.display()
    );
    None
}

/// The external vector directory, or `None` (after printing a skip message)
/// when it does not exist. Panics instead when `CI=true`.
pub fn external_vectors_dir() -> Option<PathBuf> {
    let dir = configured_vectors_dir();
    if dir.is_dir() {
        Some(dir)
    } else {
        missing("external vector directory", &dir)
    }
}

/// The vector file at `relative` (e.g. `"hpke/p256_sha256_aes256gcm.json"`)
/// inside [`external_vectors_dir`], or `None` (after printing a skip message)
/// when the directory or the file does not exist. Panics instead when `CI=true`.
pub fn external_vector_file(relative: &str) -> Option<PathBuf> {
    let file = external_vectors_dir()?.join(relative);
    if file.is_file() {
        Some(file)
    } else {
        missing("external vector file", &file)
    }
}

/// Reads the vector file at `relative` as text; `None` when skipped (see
/// [`external_vector_file`]). Panics if the file exists but cannot be read.
pub fn read_vector_file(relative: &str) -> Option<String> {
    let path = external_vector_file(relative)?;
    match std::fs::read_to_string(&path) {
        Ok(text) => Some(text),
        Err(e) => panic!("cannot read vector file {}: {e}", path.display()),
    }
}

/// Decodes a hex field of a vector file.
pub fn unhex(field: &str) -> Vec<u8> {
    match hex::decode(field) {
        Ok(bytes) => bytes,
        Err(e) => panic!("vector field is not hex ({e}): {field:?}"),
    }
}

/// Decodes a hex field of a vector file that must be exactly `N` bytes.
pub fn unhex_array<const N: usize>(field: &str) -> [u8; N] {
    let bytes = unhex(field);
    match <[u8; N]>::try_from(bytes.as_slice()) {
        Ok(array) => array,
        Err(_) => panic!(
            "vector field has {} bytes, expected {N}: {field:?}",
            bytes.len()
        ),
    }
}
