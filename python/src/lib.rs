//! `kapsel._kapsel`: the extension module under the Python package
//! `kapsel` (python/kapsel/). It holds the Rust half of every operation;
//! the Python half (file objects, paths, temporary files, fsspec) lives in
//! the package, which is the only public interface.
//!
//! Invariants:
//! - Secrets stay in Rust: an identity's secret string leaves only through
//!   the explicitly named `Identity.secret_string()` and pickling; `str()`
//!   and `repr()` show the public recipient alone.
//! - The GIL is released whenever Rust decrypts, encrypts or does its own
//!   file I/O; it is taken back only to call Python (a file object's
//!   `read`/`write`, an fsspec fetch), which then runs with the GIL held.
//! - Plaintext reaches Python only from chunks (and, signed, segments) that
//!   verified: the codec's readers guarantee it, and nothing here buffers
//!   plaintext ahead of them.
//! - Every codec error becomes an exception of `kapsel.errors` chosen by its
//!   SPEC outcome class, with the codec's message; an exception raised by a
//!   Python callback comes back as itself.

mod errors;
mod keys;
mod policy;
mod reader;
mod stream;

use pyo3::prelude::*;

/// The extension module.
#[pymodule]
fn _kapsel(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<keys::PyIdentity>()?;
    m.add_class::<keys::PyRecipient>()?;
    m.add_function(wrap_pyfunction!(keys::identities_from_file, m)?)?;
    m.add_function(wrap_pyfunction!(keys::recipients_from_file, m)?)?;
    m.add_function(wrap_pyfunction!(keys::parse_identities, m)?)?;
    m.add_function(wrap_pyfunction!(keys::parse_recipients, m)?)?;
    m.add_class::<stream::Encrypting>()?;
    m.add_function(wrap_pyfunction!(stream::encrypt_file, m)?)?;
    m.add_function(wrap_pyfunction!(stream::decrypt_stream, m)?)?;
    m.add_class::<reader::Seekable>()?;
    m.add_function(wrap_pyfunction!(reader::inspect_header, m)?)?;
    m.add("CHUNK_SIZE", kapsel_codec::CHUNK_SIZE)?;
    m.add("MAX_HEADER_LEN", kapsel_format::MAX_HEADER_LEN_V2)?;
    Ok(())
}
