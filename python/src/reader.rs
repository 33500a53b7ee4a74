//! Random access ([`Seekable`]) and header inspection ([`inspect_header`]).
//!
//! A [`Seekable`] is the codec's `SeekableReader` over one of two sources:
//! - a local file, read by Rust with the GIL released;
//! - a *fetched* source: a length and a Python callable `fetch(start, end)`
//!   returning those ciphertext bytes (an fsspec `cat_file`, or a file
//!   object's seek and read). Before each ranged read, the one contiguous
//!   ciphertext range the read needs (`SeekableReader::source_range`: the
//!   chunks it touches, whole signed segments with their signatures, and
//!   the final chunk when the read reaches the end) is fetched in one call,
//!   with the GIL held; decryption then runs with the GIL released, from
//!   that buffer alone.
//!
//! Invariants: the codec verifies every unit before any of its plaintext
//! is returned, whatever the source serves (bytes a fetch gets wrong make
//! a read fail); a fetched source keeps only the header fetch and the last
//! range in memory; the one-unit plaintext cache is the codec's.

use std::fs::File;
use std::io::{self, Cursor, Read, Seek, SeekFrom};
use std::ops::Range;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use kapsel_codec::{payload_shape, Decryptor, Keyring, Passphrase, Recipient, SeekableReader};
use kapsel_format::{Sender, Stanza};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};

use crate::errors::{decrypt_error, io_error, raise};
use crate::keys::{split_identities, AnyRecipient, PyIdentity, PyRecipient};
use crate::policy::{check, receiver_policy, refused};

/// The bytes a fetched source holds: the first fetch (the header and the
/// salt and commitment) and the range fetched last.
struct Held {
    first: (u64, Vec<u8>),
    last: Option<(u64, Vec<u8>)>,
}

impl Held {
    fn covers(&self, range: &Range<u64>) -> bool {
        [Some(&self.first), self.last.as_ref()]
            .into_iter()
            .flatten()
            .any(|(at, bytes)| *at <= range.start && range.end <= at + bytes.len() as u64)
    }
}

struct Fetched {
    len: u64,
    fetch: Py<PyAny>,
    held: Mutex<Held>,
    /// Calls of `fetch` so far.
    fetches: std::sync::atomic::AtomicU64,
    /// Bytes those calls returned.
    fetched: std::sync::atomic::AtomicU64,
}

impl Fetched {
    fn held(&self) -> std::sync::MutexGuard<'_, Held> {
        self.held.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Calls `fetch(start, end)` (taking the GIL) and checks the length.
    fn call_fetch(&self, py: Python<'_>, range: &Range<u64>) -> io::Result<Vec<u8>> {
        self.fetches
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let got = self
            .fetch
            .call1(py, (range.start, range.end))
            .map_err(io::Error::other)?;
        // One copy out of the bytes object, not an element-wise extraction.
        let got = got.bind(py);
        let bytes = match got.cast::<PyBytes>() {
            Ok(b) => b.as_bytes().to_vec(),
            Err(_) => got.extract::<Vec<u8>>().map_err(io::Error::other)?,
        };
        self.fetched
            .fetch_add(bytes.len() as u64, std::sync::atomic::Ordering::Relaxed);
        if bytes.len() as u64 != range.end - range.start {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "fetch({}, {}) returned {} bytes",
                    range.start,
                    range.end,
                    bytes.len()
                ),
            ));
        }
        Ok(bytes)
    }

    /// Makes sure `range` is held, fetching it (one call) if it is not.
    fn ensure(&self, py: Python<'_>, range: Range<u64>) -> io::Result<()> {
        if self.held().covers(&range) {
            return Ok(());
        }
        let bytes = self.call_fetch(py, &range)?;
        self.held().last = Some((range.start, bytes));
        Ok(())
    }
}

/// The `Read + Seek` source over [`Fetched`]; a read outside the held bytes
/// (which a correct `source_range` never causes) fetches what it needs.
struct FetchedSource {
    shared: Arc<Fetched>,
    pos: u64,
}

impl Read for FetchedSource {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let len = self.shared.len;
        if self.pos >= len || buf.is_empty() {
            return Ok(0);
        }
        let want = (buf.len() as u64).min(len - self.pos);
        let range = self.pos..self.pos + want;
        {
            let held = self.shared.held();
            for (at, bytes) in [Some(&held.first), held.last.as_ref()]
                .into_iter()
                .flatten()
            {
                let end = at + bytes.len() as u64;
                if *at <= self.pos && self.pos < end {
                    let n = (end - self.pos).min(want) as usize;
                    let from = (self.pos - at) as usize;
                    buf[..n].copy_from_slice(&bytes[from..from + n]);
                    self.pos += n as u64;
                    return Ok(n);
                }
            }
        }
        Python::attach(|py| self.shared.ensure(py, range))?;
        self.read(buf)
    }
}

impl Seek for FetchedSource {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let target = match to {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::End(d) => self.shared.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        self.pos = target.ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
        Ok(self.pos)
    }
}

enum Inner {
    Local(SeekableReader<File>),
    Fetched(SeekableReader<FetchedSource>, Arc<Fetched>),
}

/// Runs `$body` with `$r` bound to the codec reader, whatever its source.
macro_rules! with_reader {
    ($inner:expr, $r:ident => $body:expr) => {
        match $inner {
            Inner::Local($r) => $body,
            Inner::Fetched($r, _) => $body,
        }
    };
}

fn keyring(identities: &[Bound<'_, PyIdentity>], passphrase: Option<&[u8]>) -> Keyring<'static> {
    let (p256, hybrid) = split_identities(identities);
    let mut keys = Keyring::new()
        .with_identities(p256)
        .with_hybrid_identities(hybrid);
    if let Some(p) = passphrase {
        keys = keys.with_passphrase(Passphrase::from_bytes(p));
    }
    keys
}

/// A kapsel file open for random access.
#[pyclass(module = "kapsel._kapsel", frozen)]
pub struct Seekable {
    inner: Inner,
}

impl std::fmt::Debug for Seekable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        with_reader!(&self.inner, r => f.debug_struct("Seekable").field("reader", r).finish())
    }
}

#[pymethods]
impl Seekable {
    /// Opens a local file: reads the header, finds the file key, checks the
    /// commitment, then the receiver policy (`RefusedError`). No chunk is
    /// read.
    #[staticmethod]
    #[pyo3(signature = (
        path, identities, passphrase = None,
        expect_sender = Vec::new(), max_age = None, max_skew = kapsel_codec::DEFAULT_MAX_SKEW
    ))]
    fn open_path(
        py: Python<'_>,
        path: PathBuf,
        identities: Vec<Bound<'_, PyIdentity>>,
        passphrase: Option<&[u8]>,
        expect_sender: Vec<Bound<'_, PyRecipient>>,
        max_age: Option<u64>,
        max_skew: u64,
    ) -> PyResult<Self> {
        let policy = receiver_policy(&expect_sender, max_age, max_skew)?;
        let keys = keyring(&identities, passphrase);
        let file = py
            .detach(|| File::open(&path))
            .map_err(|e| raise(py, "KapselIOError", format!("{}: {e}", path.display())))?;
        let reader = py
            .detach(|| Decryptor::new(file).and_then(|d| d.decrypt_seekable_with(&keys)))
            .map_err(|e| decrypt_error(py, e))?;
        check(&policy, reader.header(), reader.claimed_sender().as_ref())
            .map_err(|e| refused(py, e))?;
        Ok(Seekable {
            inner: Inner::Local(reader),
        })
    }

    /// Opens a file of `size` bytes served by `fetch(start, end) -> bytes`.
    /// `first` holds the file's first bytes (at least the header, the salt
    /// and the commitment, or all of a shorter file, saves a fetch). The
    /// receiver policy is checked as by `open_path`.
    #[staticmethod]
    #[pyo3(signature = (
        fetch, size, first, identities, passphrase = None,
        expect_sender = Vec::new(), max_age = None, max_skew = kapsel_codec::DEFAULT_MAX_SKEW
    ))]
    #[allow(clippy::too_many_arguments)]
    fn open_fetch(
        py: Python<'_>,
        fetch: Py<PyAny>,
        size: u64,
        first: &[u8],
        identities: Vec<Bound<'_, PyIdentity>>,
        passphrase: Option<&[u8]>,
        expect_sender: Vec<Bound<'_, PyRecipient>>,
        max_age: Option<u64>,
        max_skew: u64,
    ) -> PyResult<Self> {
        let policy = receiver_policy(&expect_sender, max_age, max_skew)?;
        let keys = keyring(&identities, passphrase);
        let shared = Arc::new(Fetched {
            len: size,
            fetch,
            held: Mutex::new(Held {
                first: (0, first.to_vec()),
                last: None,
            }),
            fetches: std::sync::atomic::AtomicU64::new(0),
            fetched: std::sync::atomic::AtomicU64::new(0),
        });
        let source = FetchedSource {
            shared: shared.clone(),
            pos: 0,
        };
        let reader = py
            .detach(|| Decryptor::new(source).and_then(|d| d.decrypt_seekable_with(&keys)))
            .map_err(|e| decrypt_error(py, e))?;
        check(&policy, reader.header(), reader.claimed_sender().as_ref())
            .map_err(|e| refused(py, e))?;
        Ok(Seekable {
            inner: Inner::Fetched(reader, shared),
        })
    }

    /// Up to `n` plaintext bytes from `offset` (fewer only at the end, which
    /// is reported only after the final chunk verified). Decrypts exactly
    /// the chunks the range touches; on a fetched source, first fetches the
    /// ciphertext they occupy in one call.
    fn read_at<'py>(
        &self,
        py: Python<'py>,
        offset: u64,
        n: usize,
    ) -> PyResult<Bound<'py, PyBytes>> {
        if let Inner::Fetched(reader, shared) = &self.inner {
            if let Some(range) = reader.source_range(offset, n as u64) {
                shared.ensure(py, range).map_err(|e| io_error(py, e))?;
            }
        }
        // Decrypt straight into the bytes object returned (no second copy):
        // it is as long as what the read returns, since the length is known
        // from the file length. A read that reaches past the end first
        // authenticates the end, as the codec's `read_at` does.
        let len = with_reader!(&self.inner, r => r.unverified_plaintext_len());
        let reaches_end = n > 0 && offset.saturating_add(n as u64) > len;
        // Bounded by n, so it fits in usize.
        let want = len.saturating_sub(offset).min(n as u64) as usize;
        PyBytes::new_with(py, want, |out| {
            py.detach(|| {
                with_reader!(&self.inner, r => {
                    if reaches_end {
                        r.verify_length()?;
                    }
                    r.read_exact_at(offset, out)
                })
            })
            .map_err(|e| io_error(py, e))
        })
    }

    /// The ciphertext range `(start, end)` a read of `n` bytes at `offset`
    /// needs, or `None` for `n == 0`.
    fn source_range(&self, offset: u64, n: u64) -> Option<(u64, u64)> {
        with_reader!(&self.inner, r => r.source_range(offset, n)).map(|r| (r.start, r.end))
    }

    /// The plaintext length, authenticated (opens the final chunk first).
    fn plaintext_len(&self, py: Python<'_>) -> PyResult<u64> {
        if let Inner::Fetched(reader, shared) = &self.inner {
            let len = reader.unverified_plaintext_len();
            if let Some(range) = reader.source_range(len, 1) {
                shared.ensure(py, range).map_err(|e| io_error(py, e))?;
            }
        }
        py.detach(|| with_reader!(&self.inner, r => r.plaintext_len()))
            .map_err(|e| io_error(py, e))
    }

    /// The plaintext length the file length implies, not authenticated
    /// unless `length_verified`.
    #[getter]
    fn unverified_len(&self) -> u64 {
        with_reader!(&self.inner, r => r.unverified_plaintext_len())
    }

    /// Whether the final chunk (or segment) verified, which authenticates
    /// the length.
    #[getter]
    fn length_verified(&self) -> bool {
        with_reader!(&self.inner, r => r.is_length_verified())
    }

    #[getter]
    fn is_signed(&self) -> bool {
        with_reader!(&self.inner, r => r.is_signed())
    }

    /// The sender whose signatures verified, once a segment did.
    #[getter]
    fn verified_sender(&self) -> Option<PyRecipient> {
        with_reader!(&self.inner, r => r.verified_sender()).map(|r| PyRecipient {
            inner: AnyRecipient::P256(r),
        })
    }

    /// The sender the header names (a claim until `verified_sender`).
    #[getter]
    fn claimed_sender(&self) -> Option<String> {
        with_reader!(&self.inner, r => r.claimed_sender()).map(|c| c.unverified_key().to_string())
    }

    #[getter]
    fn chunks_decrypted(&self) -> u64 {
        with_reader!(&self.inner, r => r.chunks_decrypted())
    }

    #[getter]
    fn segments_verified(&self) -> u64 {
        with_reader!(&self.inner, r => r.segments_verified())
    }

    #[getter]
    fn chunk_count(&self) -> u64 {
        with_reader!(&self.inner, r => r.chunk_count())
    }

    #[getter]
    fn header_len(&self) -> usize {
        with_reader!(&self.inner, r => r.header_bytes().len())
    }

    /// Calls of `fetch` so far (0 for a local file).
    #[getter]
    fn fetches(&self) -> u64 {
        match &self.inner {
            Inner::Local(_) => 0,
            Inner::Fetched(_, shared) => shared.fetches.load(std::sync::atomic::Ordering::Relaxed),
        }
    }

    /// Ciphertext bytes fetched so far, the `first` bytes not included
    /// (0 for a local file).
    #[getter]
    fn bytes_fetched(&self) -> u64 {
        match &self.inner {
            Inner::Local(_) => 0,
            Inner::Fetched(_, shared) => shared.fetched.load(std::sync::atomic::Ordering::Relaxed),
        }
    }

    /// The authenticated header, as `inspect` shows it.
    fn header<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let total = with_reader!(&self.inner, r => r.header_bytes().len() as u64);
        with_reader!(&self.inner, r => header_dict(py, r.header(), total, None))
    }
}

fn stanza_name(s: &Stanza) -> String {
    match s {
        Stanza::P256Hpke { .. } => "p256".into(),
        Stanza::HybridPq { .. } => "mlkem768-p256".into(),
        Stanza::Passphrase { .. } => "passphrase".into(),
        Stanza::Unknown { kind, .. } => format!("unknown-0x{kind:04x}"),
    }
}

fn header_dict<'py>(
    py: Python<'py>,
    header: &kapsel_format::Header,
    header_len: u64,
    file_len: Option<u64>,
) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("version", header.version())?;
    d.set_item("suite", header.suite.name())?;
    d.set_item("header_len", header_len)?;
    d.set_item(
        "stanzas",
        header.stanzas.iter().map(stanza_name).collect::<Vec<_>>(),
    )?;
    let signed = matches!(header.sender, Sender::P256(_));
    d.set_item("signed", signed)?;
    let sender = match &header.sender {
        Sender::Anonymous => None,
        Sender::P256(point) => Recipient::from_wire(point).ok().map(|r| r.to_string()),
    };
    d.set_item("claimed_sender", sender)?;
    d.set_item("created_at", header.created_at)?;
    d.set_item("serial", header.serial)?;
    d.set_item(
        "extensions",
        header.extensions.iter().map(|e| e.kind).collect::<Vec<_>>(),
    )?;
    if let Some(len) = file_len {
        d.set_item("file_len", len)?;
        match len
            .checked_sub(header_len)
            .ok_or(kapsel_codec::PayloadError::Truncated)
            .and_then(|p| payload_shape(p, signed))
        {
            Ok(shape) => {
                d.set_item("plaintext_len", shape.plaintext_len)?;
                d.set_item("chunk_count", shape.chunk_count)?;
                d.set_item("payload_error", py.None())?;
            }
            Err(e) => {
                d.set_item("plaintext_len", py.None())?;
                d.set_item("chunk_count", py.None())?;
                d.set_item("payload_error", e.to_string())?;
            }
        }
    }
    Ok(d)
}

/// The unauthenticated header of a file whose first bytes are `data`
/// (at least its header) and whose length is `file_len` (if known).
#[pyfunction]
#[pyo3(signature = (data, file_len = None))]
pub fn inspect_header<'py>(
    py: Python<'py>,
    data: &[u8],
    file_len: Option<u64>,
) -> PyResult<Bound<'py, PyDict>> {
    let d = Decryptor::new(Cursor::new(data)).map_err(|e| decrypt_error(py, e))?;
    let header_len = d.unverified_header_bytes().len() as u64;
    header_dict(py, d.unverified_header(), header_len, file_len)
}
