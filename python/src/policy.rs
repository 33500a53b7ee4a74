//! The receiver policy of SPEC.md section 12 for the Python readers: the
//! codec's [`ReceiverPolicy`] (expected senders, maximum age, clock skew),
//! checked on the authenticated header, after the file key was found and
//! the commitment checked, and before any plaintext is decrypted, written
//! or returned. No replay ledger: the CLI's SQLite ledger is the CLI's.

use kapsel_codec::{ClaimedSender, PolicyError, ReceiverPolicy};
use kapsel_format::Header;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::errors::raise;
use crate::keys::{AnyRecipient, PyRecipient};

/// The codec's policy for these settings. Only P-256 recipients can be
/// senders (a post-quantum identity cannot sign).
pub fn receiver_policy(
    expect_sender: &[Bound<'_, PyRecipient>],
    max_age: Option<u64>,
    max_skew: u64,
) -> PyResult<ReceiverPolicy> {
    let mut policy = ReceiverPolicy::new().max_skew(max_skew);
    for sender in expect_sender {
        match &sender.get().inner {
            AnyRecipient::P256(r) => policy = policy.expect_sender(r.clone()),
            AnyRecipient::Hybrid(_) => {
                return Err(PyValueError::new_err(
                    "expect_sender: senders sign with P-256 keys; a post-quantum recipient is never a sender",
                ))
            }
        }
    }
    if let Some(age) = max_age {
        policy = policy.max_age(age);
    }
    Ok(policy)
}

/// Now, in Unix seconds.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Checks the authenticated header against `policy` at the current time.
pub fn check(
    policy: &ReceiverPolicy,
    header: &Header,
    claimed: Option<&ClaimedSender>,
) -> Result<(), PolicyError> {
    policy.check_header(header, claimed, now())
}

/// A refusal as `kapsel.errors.RefusedError` with the codec's message.
pub fn refused(py: Python<'_>, e: PolicyError) -> PyErr {
    raise(py, "RefusedError", e.to_string())
}
