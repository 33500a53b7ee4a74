//! Codec errors as exceptions of the Python module `kapsel.errors`, one
//! class per SPEC outcome class ([`Outcome`]), carrying the codec's message.
//! An exception raised by Python code that Rust called back (a file
//! object's `read`, an fsspec fetch) travels inside an `io::Error` and
//! comes out as the original exception.

use std::io;

use kapsel_codec::{DecryptError, EncryptError, Outcome};
use pyo3::prelude::*;

/// The exception class of `kapsel.errors` for an outcome class.
fn class_name(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::NotKapsel => "NotKapselError",
        Outcome::Unsupported => "UnsupportedError",
        Outcome::MalformedHeader => "MalformedHeaderError",
        Outcome::NoMatchingRecipient => "NoMatchingRecipientError",
        Outcome::HeaderAuthFailed => "HeaderAuthenticationError",
        Outcome::PayloadFailed => "PayloadAuthenticationError",
        Outcome::ArmorFailed => "ArmorError",
        Outcome::SenderAuthFailed => "SenderAuthenticationError",
        Outcome::Refused => "RefusedError",
        Outcome::Io => "KapselIOError",
        _ => "KapselError",
    }
}

/// An instance of `kapsel.errors.<name>(message)` as a `PyErr`.
pub fn raise(py: Python<'_>, name: &str, message: String) -> PyErr {
    let made = py
        .import("kapsel.errors")
        .and_then(|m| m.getattr(name))
        .and_then(|cls| cls.call1((message,)));
    match made {
        Ok(instance) => PyErr::from_value(instance),
        Err(e) => e,
    }
}

/// A decryption failure as its outcome class's exception.
pub fn decrypt_error(py: Python<'_>, e: DecryptError) -> PyErr {
    if let DecryptError::Io(io) = e {
        return io_error(py, io);
    }
    raise(py, class_name(e.outcome()), e.to_string())
}

/// An error from a decrypting reader or from I/O: the original Python
/// exception if a callback raised one, else the outcome class's exception.
pub fn io_error(py: Python<'_>, e: io::Error) -> PyErr {
    if e.get_ref().is_some_and(|inner| inner.is::<PyErr>()) {
        if let Some(Ok(original)) = e.into_inner().map(|inner| inner.downcast::<PyErr>()) {
            return *original;
        }
        return raise(py, "KapselIOError", "a Python callback failed".into());
    }
    match DecryptError::from_io(e) {
        DecryptError::Io(e) => {
            let outcome = kapsel_codec::Outcome::of_io(&e);
            if outcome == Outcome::Io {
                PyErr::from(e)
            } else {
                raise(py, class_name(outcome), e.to_string())
            }
        }
        other => decrypt_error(py, other),
    }
}

/// An encryption failure: I/O errors as themselves, the rest as
/// `EncryptionError`.
pub fn encrypt_error(py: Python<'_>, e: EncryptError) -> PyErr {
    match e {
        EncryptError::Io(io) => io_error(py, io),
        other => raise(py, "EncryptionError", other.to_string()),
    }
}

/// A key that did not parse.
pub fn key_error(py: Python<'_>, message: String) -> PyErr {
    raise(py, "InvalidKeyError", message)
}
