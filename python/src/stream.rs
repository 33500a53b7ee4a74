//! Whole-stream encryption and decryption.
//!
//! - [`Encrypting`]: an encryptor fed by Python (`write` returns the
//!   ciphertext made so far, `finish` the rest and the end of the file).
//!   A file whose `finish` never ran fails to decrypt (the final chunk is
//!   missing): the format is truncation-proof.
//! - [`encrypt_file`]: path to path, all I/O in Rust, in parallel.
//! - [`decrypt_stream`]: from a path or a Python file object to a path or a
//!   Python file object; the codec's streaming reader releases only
//!   verified chunks (signed: verified segments), so what reached the
//!   destination before an error is exactly what a streaming decoder may
//!   release (testvectors/README.md, "Released plaintext").
//!
//! The GIL is released throughout; Python file objects are called with it
//! held again ([`PyReader`], [`PyWriter`]).

use std::fs::File;
use std::io::{self, BufWriter, Cursor, Read, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use kapsel_codec::{
    is_armored, ArmoredReader, ArmoredWriter, Decryptor, Encryptor, FileWriter, Keyring,
    Passphrase, ARMOR_DETECTION_WINDOW,
};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::errors::{decrypt_error, encrypt_error, io_error, raise};
use crate::keys::{split_identities, AnyIdentity, AnyRecipient, PyIdentity, PyRecipient};
use crate::policy::{check, receiver_policy, refused};

/// Bytes moved per call to a Python file object.
const BLOCK: usize = 1 << 20;

/// A Python binary file object read from Rust: each `read` takes the GIL.
pub struct PyReader(pub Py<PyAny>);

impl Read for PyReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        Python::attach(|py| {
            let data = self
                .0
                .call_method1(py, "read", (buf.len(),))
                .map_err(io::Error::other)?;
            let data = data.bind(py);
            if data.is_none() {
                // A non-blocking source with nothing yet: not supported.
                return Err(io::Error::new(
                    io::ErrorKind::WouldBlock,
                    "the source file object returned None (non-blocking)",
                ));
            }
            let bytes = data.cast::<PyBytes>().map_err(|_| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "the source file object must be binary (read() returned no bytes)",
                )
            })?;
            let bytes = bytes.as_bytes();
            if bytes.len() > buf.len() {
                return Err(io::Error::other("read() returned more bytes than asked"));
            }
            buf[..bytes.len()].copy_from_slice(bytes);
            Ok(bytes.len())
        })
    }
}

/// A Python binary file object written from Rust: each `write` takes the GIL.
pub struct PyWriter(pub Py<PyAny>);

impl Write for PyWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Python::attach(|py| {
            let mut rest = buf;
            while !rest.is_empty() {
                let n = self
                    .0
                    .call_method1(py, "write", (PyBytes::new(py, rest),))
                    .map_err(io::Error::other)?;
                // Raw file objects may write less and say so; None means all.
                let n: usize = n.extract(py).unwrap_or(rest.len());
                if n == 0 {
                    return Err(io::Error::new(io::ErrorKind::WriteZero, "write() wrote 0"));
                }
                rest = &rest[n.min(rest.len())..];
            }
            Ok(buf.len())
        })
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A `Vec<u8>` shared between the writer chain and [`Encrypting`], which
/// drains it after each call.
#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Vec<u8>>>);

impl Shared {
    fn take(&self) -> Vec<u8> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

impl Write for Shared {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Binary or ASCII-armored output.
enum Sink<W: Write> {
    Binary(W),
    Armored(ArmoredWriter<W>),
}

impl<W: Write> Write for Sink<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Sink::Binary(w) => w.write(buf),
            Sink::Armored(w) => w.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Sink::Binary(w) => w.flush(),
            Sink::Armored(w) => w.flush(),
        }
    }
}

impl<W: Write> Sink<W> {
    fn new(inner: W, armor: bool) -> io::Result<Self> {
        Ok(if armor {
            Sink::Armored(ArmoredWriter::new(inner)?)
        } else {
            Sink::Binary(inner)
        })
    }

    fn finish(self) -> io::Result<W> {
        match self {
            Sink::Binary(w) => Ok(w),
            Sink::Armored(w) => w.finish(),
        }
    }
}

/// The encryptor for these recipients (or a passphrase), signing as
/// `sign_as` if given.
fn encryptor(
    py: Python<'_>,
    recipients: &[Bound<'_, PyRecipient>],
    sign_as: Option<&Bound<'_, PyIdentity>>,
    passphrase: Option<&[u8]>,
) -> PyResult<Encryptor> {
    let mut encryptor = match passphrase {
        Some(p) => {
            if !recipients.is_empty() {
                return Err(raise(
                    py,
                    "EncryptionError",
                    "a passphrase file has no other recipients (give recipients or a passphrase, not both)".into(),
                ));
            }
            Encryptor::with_passphrase(Passphrase::from_bytes(p))
        }
        None => {
            let mut p256 = Vec::new();
            let mut hybrid = Vec::new();
            for r in recipients {
                match &r.get().inner {
                    AnyRecipient::P256(k) => p256.push(k.clone()),
                    AnyRecipient::Hybrid(k) => hybrid.push(k.clone()),
                }
            }
            Encryptor::with_recipients(p256, hybrid)
        }
    }
    .map_err(|e| encrypt_error(py, e))?;
    if let Some(sender) = sign_as {
        match &sender.get().inner {
            AnyIdentity::P256(identity) => encryptor = encryptor.sender(identity.clone()),
            AnyIdentity::Hybrid(_) => {
                return Err(raise(
                    py,
                    "EncryptionError",
                    "senders sign with P-256 identities; a post-quantum identity cannot sign"
                        .into(),
                ))
            }
        }
    }
    Ok(encryptor)
}

/// An encryption in progress, fed from Python.
#[pyclass(module = "kapsel._kapsel", frozen)]
pub struct Encrypting {
    writer: Mutex<Option<FileWriter<Sink<Shared>>>>,
    out: Shared,
}

impl Encrypting {
    fn with_writer<T>(
        &self,
        py: Python<'_>,
        f: impl FnOnce(&mut Option<FileWriter<Sink<Shared>>>) -> io::Result<T> + Send,
    ) -> PyResult<T>
    where
        T: Send,
    {
        py.detach(|| {
            let mut guard = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
            f(&mut guard)
        })
        .map_err(|e| io_error(py, e))
    }
}

impl std::fmt::Debug for Encrypting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Encrypting").finish_non_exhaustive()
    }
}

#[pymethods]
impl Encrypting {
    /// Starts a file; the header is the first ciphertext `write` returns.
    #[new]
    #[pyo3(signature = (recipients, sign_as = None, armor = false, passphrase = None))]
    fn new(
        py: Python<'_>,
        recipients: Vec<Bound<'_, PyRecipient>>,
        sign_as: Option<Bound<'_, PyIdentity>>,
        armor: bool,
        passphrase: Option<&[u8]>,
    ) -> PyResult<Self> {
        let encryptor = encryptor(py, &recipients, sign_as.as_ref(), passphrase)?;
        let out = Shared::default();
        let sink = Sink::new(out.clone(), armor).map_err(|e| io_error(py, e))?;
        let writer = py
            .detach(|| encryptor.wrap_output(sink))
            .map_err(|e| encrypt_error(py, e))?;
        Ok(Encrypting {
            writer: Mutex::new(Some(writer)),
            out,
        })
    }

    /// Encrypts `data`; returns the ciphertext ready so far.
    fn write<'py>(&self, py: Python<'py>, data: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
        self.with_writer(py, |w| match w {
            Some(w) => w.write_all(data),
            None => Err(io::Error::other("the file was already finished")),
        })?;
        Ok(PyBytes::new(py, &self.out.take()))
    }

    /// Ends the file; returns the last ciphertext (final chunk, signature,
    /// armor footer). Without it the file fails to decrypt.
    fn finish<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        self.with_writer(py, |w| match w.take() {
            Some(w) => w.finish()?.finish().map(drop),
            None => Err(io::Error::other("the file was already finished")),
        })?;
        Ok(PyBytes::new(py, &self.out.take()))
    }

    /// Drops the file unfinished (what was written fails to decrypt).
    fn abort(&self, py: Python<'_>) -> PyResult<()> {
        self.with_writer(py, |w| {
            *w = None;
            Ok(())
        })?;
        self.out.take();
        Ok(())
    }
}

/// Encrypts the file `src` into `dst` (created or truncated), in parallel,
/// with the GIL released throughout. `dst` is the caller's pending output
/// (`kapsel._outfile`: the `/proc/self/fd` link of an unnamed file, or a
/// named temporary file), which the caller puts into place.
#[pyfunction]
#[pyo3(signature = (src, dst, recipients, sign_as = None, armor = false, passphrase = None))]
pub fn encrypt_file(
    py: Python<'_>,
    src: PathBuf,
    dst: PathBuf,
    recipients: Vec<Bound<'_, PyRecipient>>,
    sign_as: Option<Bound<'_, PyIdentity>>,
    armor: bool,
    passphrase: Option<&[u8]>,
) -> PyResult<()> {
    let encryptor = encryptor(py, &recipients, sign_as.as_ref(), passphrase)?;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let run = py.detach(|| -> Result<(), String> {
        let input = File::open(&src).map_err(|e| format!("{}: {e}", src.display()))?;
        let output = File::create(&dst).map_err(|e| format!("{}: {e}", dst.display()))?;
        let sink =
            Sink::new(BufWriter::with_capacity(BLOCK, output), armor).map_err(|e| e.to_string())?;
        let writer = encryptor.wrap_output(sink).map_err(|e| e.to_string())?;
        let sink = writer
            .encrypt_from(input, threads)
            .map_err(|e| io::Error::from(e).to_string())?;
        let file = sink
            .finish()
            .and_then(|w| w.into_inner().map_err(|e| e.into_error()))
            .map_err(|e| e.to_string())?;
        file.sync_all().map_err(|e| e.to_string())
    });
    run.map_err(|message| raise(py, "KapselIOError", message))
}

/// Reads up to `buf.len()` bytes, fewer only at the end of the input.
fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Decrypts a whole stream: `src` is a path or a binary file object, `dst`
/// a path (created or truncated, written in place: the Python package
/// passes a pending output's file object or path, never its target) or a
/// binary file object. `armor`: `None`
/// detects ASCII armor, `True` requires it, `False` reads binary.
///
/// The receiver policy (`expect_sender`, `max_age`, `max_skew`, SPEC.md
/// section 12) is checked on the authenticated header before a path `dst`
/// is opened and before any plaintext is written; a refusal raises
/// `RefusedError`.
///
/// Returns the plaintext length and the verified sender's recipient string
/// (`None` for an anonymous file).
#[pyfunction]
#[pyo3(signature = (
    src, dst, identities, passphrase = None, armor = None,
    expect_sender = Vec::new(), max_age = None, max_skew = kapsel_codec::DEFAULT_MAX_SKEW
))]
#[allow(clippy::too_many_arguments)]
pub fn decrypt_stream(
    py: Python<'_>,
    src: &Bound<'_, PyAny>,
    dst: &Bound<'_, PyAny>,
    identities: Vec<Bound<'_, PyIdentity>>,
    passphrase: Option<&[u8]>,
    armor: Option<bool>,
    expect_sender: Vec<Bound<'_, PyRecipient>>,
    max_age: Option<u64>,
    max_skew: u64,
) -> PyResult<(u64, Option<String>)> {
    let policy = receiver_policy(&expect_sender, max_age, max_skew)?;
    let mut reader: Box<dyn Read + Send> = match src.extract::<PathBuf>() {
        Ok(path) => Box::new(
            py.detach(|| File::open(&path))
                .map_err(|e| raise(py, "KapselIOError", format!("{}: {e}", path.display())))?,
        ),
        Err(_) => Box::new(PyReader(src.clone().unbind())),
    };
    // A path is created only once the header authenticated and the policy
    // accepted it.
    enum Dst {
        Path(PathBuf),
        Object(PyWriter),
    }
    let dst = match dst.extract::<PathBuf>() {
        Ok(path) => Dst::Path(path),
        Err(_) => Dst::Object(PyWriter(dst.clone().unbind())),
    };
    let (p256, hybrid) = split_identities(&identities);
    let mut keyring = Keyring::new()
        .with_identities(p256)
        .with_hybrid_identities(hybrid);
    if let Some(p) = passphrase {
        keyring = keyring.with_passphrase(Passphrase::from_bytes(p));
    }
    enum Failure {
        Decrypt(kapsel_codec::DecryptError),
        Refused(kapsel_codec::PolicyError),
        Open(String),
        Io(io::Error),
    }
    let run = py.detach(|| -> Result<(u64, Option<String>), Failure> {
        let mut prefix = vec![0u8; ARMOR_DETECTION_WINDOW];
        let seen = read_up_to(&mut reader, &mut prefix).map_err(Failure::Io)?;
        prefix.truncate(seen);
        let armored = armor.unwrap_or_else(|| is_armored(&prefix));
        let raw = Cursor::new(prefix).chain(reader);
        let source: Box<dyn Read + Send> = if armored {
            Box::new(ArmoredReader::new(io::BufReader::with_capacity(BLOCK, raw)))
        } else {
            Box::new(raw)
        };
        let mut plain = Decryptor::new(source)
            .and_then(|d| d.decrypt_with(&keyring))
            .map_err(Failure::Decrypt)?;
        check(&policy, plain.header(), plain.claimed_sender().as_ref())
            .map_err(Failure::Refused)?;
        let mut writer: Box<dyn Write + Send> = match dst {
            Dst::Path(path) => Box::new(BufWriter::with_capacity(
                BLOCK,
                File::create(&path)
                    .map_err(|e| Failure::Open(format!("{}: {e}", path.display())))?,
            )),
            Dst::Object(w) => Box::new(w),
        };
        let mut buf = zeroize::Zeroizing::new(vec![0u8; BLOCK]);
        let mut total = 0u64;
        loop {
            let n = match plain.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Failure::Io(e)),
            };
            writer.write_all(&buf[..n]).map_err(Failure::Io)?;
            total += n as u64;
        }
        writer.flush().map_err(Failure::Io)?;
        Ok((total, plain.verified_sender().map(|r| r.to_string())))
    });
    run.map_err(|f| match f {
        Failure::Decrypt(e) => decrypt_error(py, e),
        Failure::Refused(e) => refused(py, e),
        Failure::Open(message) => raise(py, "KapselIOError", message),
        Failure::Io(e) => io_error(py, e),
    })
}
