//! `Identity` and `Recipient`, and the key files the CLI reads (SPEC.md 4.3
//! line rules): identity strings (P-256 and hybrid post-quantum), PEM
//! private keys (PKCS#8, SEC1), unencrypted OpenSSH ECDSA P-256 private
//! keys; recipient strings, SSH public key lines and PEM public keys.
//!
//! Invariants: no message shows a line of a key file (it may be secret);
//! `str()` and `repr()` of an identity show only its public recipient; a
//! key file is read up to [`MAX_KEY_FILE`] bytes.

use std::io::Read;
use std::path::PathBuf;

use kapsel_codec::ssh::{self, PrivateKeyFile};
use kapsel_codec::{HybridIdentity, HybridRecipient, Identity, Recipient};
use pyo3::prelude::*;
use pyo3::types::PyTuple;
use zeroize::Zeroizing;

use crate::errors::key_error;

/// The largest key file read (1 MiB), as in the CLI.
const MAX_KEY_FILE: u64 = 1 << 20;

/// A private key of either kind (its `Debug` shows no secret: the codec's
/// key types print none).
#[derive(Clone, Debug)]
pub enum AnyIdentity {
    P256(Identity),
    Hybrid(HybridIdentity),
}

/// A public key of either kind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AnyRecipient {
    P256(Recipient),
    Hybrid(HybridRecipient),
}

impl std::fmt::Display for AnyRecipient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AnyRecipient::P256(r) => r.fmt(f),
            AnyRecipient::Hybrid(r) => r.fmt(f),
        }
    }
}

/// A kapsel private key: P-256 (`KAPSEL-SECRET-KEY-1...`) or hybrid
/// post-quantum (`KAPSEL-PQ-SECRET-KEY-1...`). `str()` and `repr()` show
/// only its recipient; `secret_string()` is the secret.
///
/// >>> import kapsel
/// >>> me = kapsel.Identity.generate()
/// >>> repr(me).startswith("<kapsel.Identity p256 for kapsel1")
/// True
/// >>> kapsel.Identity.from_string(me.secret_string()) == me
/// True
#[pyclass(module = "kapsel", name = "Identity", frozen)]
#[derive(Debug)]
pub struct PyIdentity {
    pub inner: AnyIdentity,
}

#[pymethods]
impl PyIdentity {
    /// A new random identity; `post_quantum=True` for a hybrid ML-KEM-768 +
    /// P-256 one.
    #[staticmethod]
    #[pyo3(signature = (post_quantum = false))]
    fn generate(post_quantum: bool) -> Self {
        let inner = if post_quantum {
            AnyIdentity::Hybrid(HybridIdentity::generate())
        } else {
            AnyIdentity::P256(Identity::generate())
        };
        PyIdentity { inner }
    }

    /// Parses one identity: an identity string or a PEM private key.
    #[staticmethod]
    fn from_string(py: Python<'_>, text: &str) -> PyResult<Self> {
        let mut keys = parse_identity_text(py, text, "the string")?;
        if keys.len() != 1 {
            return Err(key_error(
                py,
                format!("the string holds {} identities, not one", keys.len()),
            ));
        }
        Ok(keys.remove(0))
    }

    /// The one identity in an identity file (the formats the kapsel CLI
    /// reads with `-i`); an error if it holds several (use
    /// `kapsel.identities_from_file`).
    #[staticmethod]
    fn from_file(py: Python<'_>, path: PathBuf) -> PyResult<Self> {
        warn_if_readable_by_others(py, &path)?;
        let mut keys = identities_from_file(py, path.clone())?;
        if keys.len() != 1 {
            return Err(key_error(
                py,
                format!(
                    "{}: {} identities, not one (use kapsel.identities_from_file)",
                    path.display(),
                    keys.len()
                ),
            ));
        }
        Ok(keys.remove(0))
    }

    /// The public key files are encrypted to.
    fn to_recipient(&self) -> PyRecipient {
        let inner = match &self.inner {
            AnyIdentity::P256(i) => AnyRecipient::P256(i.to_recipient()),
            AnyIdentity::Hybrid(i) => AnyRecipient::Hybrid(i.to_recipient()),
        };
        PyRecipient { inner }
    }

    /// The identity string, the secret itself: store it like a password.
    fn secret_string(&self) -> String {
        let s = match &self.inner {
            AnyIdentity::P256(i) => i.to_secret_string(),
            AnyIdentity::Hybrid(i) => i.to_secret_string(),
        };
        String::from(s.as_str())
    }

    /// `"p256"` or `"post-quantum"`.
    #[getter]
    fn kind(&self) -> &'static str {
        match &self.inner {
            AnyIdentity::P256(_) => "p256",
            AnyIdentity::Hybrid(_) => "post-quantum",
        }
    }

    fn __repr__(&self) -> String {
        format!(
            "<kapsel.Identity {} for {}>",
            self.kind(),
            short(&self.to_recipient().inner.to_string())
        )
    }

    fn __str__(&self) -> String {
        self.__repr__()
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other
            .cast::<PyIdentity>()
            .is_ok_and(|o| o.get().to_recipient().inner == self.to_recipient().inner)
    }

    fn __hash__(&self) -> u64 {
        hash_of(&self.to_recipient().inner.to_string())
    }

    /// Pickling (Dask sends identities to its workers this way): the secret
    /// string travels in the pickle. Never log a pickle.
    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyTuple>> {
        let py = slf.py();
        let from_string = py.get_type::<PyIdentity>().getattr("from_string")?;
        let secret = slf.get().secret_string();
        PyTuple::new(
            py,
            [
                from_string.into_any(),
                PyTuple::new(py, [secret])?.into_any(),
            ],
        )
    }
}

/// A kapsel public key: `kapsel1...`, `kapselpq1...`, an
/// `ecdsa-sha2-nistp256` SSH line or a PEM public key.
///
/// >>> import kapsel
/// >>> r = kapsel.Identity.generate(post_quantum=True).to_recipient()
/// >>> (r.kind, str(r)[:9], kapsel.Recipient.from_string(str(r)) == r)
/// ('post-quantum', 'kapselpq1', True)
#[pyclass(module = "kapsel", name = "Recipient", frozen)]
#[derive(Debug)]
pub struct PyRecipient {
    pub inner: AnyRecipient,
}

#[pymethods]
impl PyRecipient {
    /// Parses a recipient string, an SSH public key line or PEM.
    #[staticmethod]
    fn from_string(py: Python<'_>, text: &str) -> PyResult<Self> {
        let trimmed = text.trim();
        if trimmed.starts_with("-----BEGIN") {
            return Self::from_pem(py, trimmed);
        }
        parse_recipient_line(py, trimmed).map(|inner| PyRecipient { inner })
    }

    /// Every recipient in a recipients file (see `kapsel.recipients_from_file`).
    #[staticmethod]
    fn list_from_file(py: Python<'_>, path: PathBuf) -> PyResult<Vec<PyRecipient>> {
        recipients_from_file(py, path)
    }

    /// Parses a PEM `PUBLIC KEY` block (SubjectPublicKeyInfo, P-256).
    #[staticmethod]
    fn from_pem(py: Python<'_>, text: &str) -> PyResult<Self> {
        Recipient::from_pem(text)
            .map(|r| PyRecipient {
                inner: AnyRecipient::P256(r),
            })
            .map_err(|e| key_error(py, e.to_string()))
    }

    /// `"p256"` or `"post-quantum"`.
    #[getter]
    fn kind(&self) -> &'static str {
        match &self.inner {
            AnyRecipient::P256(_) => "p256",
            AnyRecipient::Hybrid(_) => "post-quantum",
        }
    }

    fn __str__(&self) -> String {
        self.inner.to_string()
    }

    fn __repr__(&self) -> String {
        format!("<kapsel.Recipient {}>", short(&self.inner.to_string()))
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other
            .cast::<PyRecipient>()
            .is_ok_and(|o| o.get().inner == self.inner)
    }

    fn __hash__(&self) -> u64 {
        hash_of(&self.inner.to_string())
    }

    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyTuple>> {
        let py = slf.py();
        let from_string = py.get_type::<PyRecipient>().getattr("from_string")?;
        let text = slf.get().inner.to_string();
        PyTuple::new(
            py,
            [from_string.into_any(), PyTuple::new(py, [text])?.into_any()],
        )
    }
}

/// A recipient string for display: whole for P-256 (66 characters), the
/// ends of a 2014-character post-quantum one. Distinct keys display
/// distinctly, which fsspec's and Dask's tokens (made from `repr`) rely on.
fn short(s: &str) -> String {
    if s.len() > 80 {
        format!("{}...{}", &s[..32], &s[s.len() - 32..])
    } else {
        s.to_owned()
    }
}

fn hash_of(s: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    s.hash(&mut h);
    h.finish()
}

/// Reads a key file, at most [`MAX_KEY_FILE`] bytes, with the GIL released.
fn read_key_file(py: Python<'_>, path: &PathBuf) -> PyResult<Zeroizing<String>> {
    let read = py.detach(|| -> std::io::Result<Zeroizing<String>> {
        let file = std::fs::File::open(path)?;
        let mut bytes = Zeroizing::new(Vec::new());
        file.take(MAX_KEY_FILE + 1).read_to_end(&mut bytes)?;
        if bytes.len() as u64 > MAX_KEY_FILE {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "key file larger than 1 MiB",
            ));
        }
        let text = std::str::from_utf8(&bytes)
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, "not UTF-8"))?;
        Ok(Zeroizing::new(text.to_owned()))
    });
    read.map_err(|e| key_error(py, format!("{}: {e}", path.display())))
}

/// A `UserWarning` when the identity file at `path` is readable or
/// writable by others, as `kapsel decrypt -i` warns (and as
/// `kapsel.identities_from_file` does on the Python side).
fn warn_if_readable_by_others(py: Python<'_>, path: &std::path::Path) -> PyResult<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let exposed = std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o077 != 0);
        if exposed {
            let message = format!(
                "{}: the identity file is readable by other users (chmod 600 it)",
                path.display()
            );
            let message = std::ffi::CString::new(message)
                .map_err(|_| pyo3::exceptions::PyValueError::new_err("path holds a NUL byte"))?;
            let category = py.get_type::<pyo3::exceptions::PyUserWarning>();
            PyErr::warn(py, category.as_any(), &message, 1)?;
        }
    }
    #[cfg(not(unix))]
    let _ = (py, path);
    Ok(())
}

/// The identities in a file (identity strings, PEM and OpenSSH private
/// keys, `#` comments, blank lines).
#[pyfunction]
pub fn identities_from_file(py: Python<'_>, path: PathBuf) -> PyResult<Vec<PyIdentity>> {
    let text = read_key_file(py, &path)?;
    parse_identity_text(py, &text, &path.display().to_string())
}

/// The recipients in a file (recipient strings, SSH public key lines, PEM
/// public keys, `#` comments, blank lines).
#[pyfunction]
pub fn recipients_from_file(py: Python<'_>, path: PathBuf) -> PyResult<Vec<PyRecipient>> {
    let text = read_key_file(py, &path)?;
    parse_recipient_text(py, &text, &path.display().to_string())
}

/// The identities in a text, as in an identity file.
#[pyfunction]
pub fn parse_identities(py: Python<'_>, text: &str) -> PyResult<Vec<PyIdentity>> {
    parse_identity_text(py, text, "the text")
}

/// The recipients in a text, as in a recipients file.
#[pyfunction]
pub fn parse_recipients(py: Python<'_>, text: &str) -> PyResult<Vec<PyRecipient>> {
    parse_recipient_text(py, text, "the text")
}

/// One entry of a key file: a key line, or a PEM block with its label.
enum Entry {
    Line(String),
    Pem { label: String, text: String },
}

/// Splits a key file into entries, with the line number each starts on.
fn entries(py: Python<'_>, text: &str, source: &str) -> PyResult<Vec<(usize, Entry)>> {
    let mut out = Vec::new();
    let mut lines = text.lines().enumerate();
    while let Some((i, raw)) = lines.next() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(rest) = line.strip_prefix("-----BEGIN ") {
            let label = rest.trim_end_matches('-').to_owned();
            let mut block = String::from(line);
            block.push('\n');
            let mut ended = false;
            for (_, raw) in lines.by_ref() {
                block.push_str(raw.trim());
                block.push('\n');
                if raw.trim().starts_with("-----END ") {
                    ended = true;
                    break;
                }
            }
            if !ended {
                return Err(key_error(
                    py,
                    format!("{source}: line {}: PEM block without an END line", i + 1),
                ));
            }
            out.push((i + 1, Entry::Pem { label, text: block }));
        } else {
            out.push((i + 1, Entry::Line(line.to_owned())));
        }
    }
    Ok(out)
}

fn parse_identity_text(py: Python<'_>, text: &str, source: &str) -> PyResult<Vec<PyIdentity>> {
    let mut out = Vec::new();
    for (n, entry) in entries(py, text, source)? {
        let at = |what: String| key_error(py, format!("{source}: line {n}: {what}"));
        let identity = match entry {
            Entry::Line(line) => {
                let line = Zeroizing::new(line);
                if line.starts_with("KAPSEL-PQ-SECRET-KEY-1") {
                    HybridIdentity::from_secret_string(&line)
                        .map(AnyIdentity::Hybrid)
                        .map_err(|e| at(e.to_string()))?
                } else if line.starts_with("KAPSEL-SECRET-KEY-1") {
                    Identity::from_secret_string(&line)
                        .map(AnyIdentity::P256)
                        .map_err(|e| at(e.to_string()))?
                } else if line.starts_with("pkcs11:") {
                    return Err(at(
                        "keys on PKCS#11 tokens are for the kapsel CLI; the Python package takes identity strings and key files".into(),
                    ));
                } else {
                    return Err(at(
                        "not an identity (KAPSEL-SECRET-KEY-1..., KAPSEL-PQ-SECRET-KEY-1... or a PEM private key)".into(),
                    ));
                }
            }
            Entry::Pem { label, text } => {
                let text = Zeroizing::new(text);
                match label.as_str() {
                    "PRIVATE KEY" | "EC PRIVATE KEY" | "ENCRYPTED PRIVATE KEY" => {
                        Identity::from_pem(&text)
                            .map(AnyIdentity::P256)
                            .map_err(|e| at(e.to_string()))?
                    }
                    "EC PARAMETERS" => continue,
                    "OPENSSH PRIVATE KEY" => match ssh::read_private_key(&text) {
                        Ok(PrivateKeyFile::Identity(identity, _comment)) => {
                            AnyIdentity::P256(identity)
                        }
                        Ok(PrivateKeyFile::Encrypted(_)) => {
                            return Err(at(
                                "the OpenSSH key is passphrase-protected; remove its passphrase (ssh-keygen -p) or use the kapsel CLI".into(),
                            ))
                        }
                        Err(e) => return Err(at(e.to_string())),
                    },
                    other => return Err(at(format!("a PEM {other} block is not an identity"))),
                }
            }
        };
        out.push(PyIdentity { inner: identity });
    }
    Ok(out)
}

fn parse_recipient_line(py: Python<'_>, line: &str) -> PyResult<AnyRecipient> {
    if line.starts_with("kapselpq1") {
        return line
            .parse::<HybridRecipient>()
            .map(AnyRecipient::Hybrid)
            .map_err(|e| key_error(py, e.to_string()));
    }
    if ssh::looks_like_public_key(line) {
        return ssh::parse_public_key(line)
            .map(AnyRecipient::P256)
            .map_err(|e| key_error(py, e.to_string()));
    }
    if line.starts_with("KAPSEL-") {
        return Err(key_error(
            py,
            "that is an identity (a secret key), not a recipient; use Identity.to_recipient()"
                .into(),
        ));
    }
    line.parse::<Recipient>()
        .map(AnyRecipient::P256)
        .map_err(|e| key_error(py, e.to_string()))
}

fn parse_recipient_text(py: Python<'_>, text: &str, source: &str) -> PyResult<Vec<PyRecipient>> {
    let mut out = Vec::new();
    for (n, entry) in entries(py, text, source)? {
        let inner = match entry {
            Entry::Line(line) => parse_recipient_line(py, &line)
                .map_err(|e| key_error(py, format!("{source}: line {n}: {}", e.value(py))))?,
            Entry::Pem { label, text } if label == "PUBLIC KEY" => Recipient::from_pem(&text)
                .map(AnyRecipient::P256)
                .map_err(|e| key_error(py, format!("{source}: line {n}: {e}")))?,
            Entry::Pem { label, .. } => {
                return Err(key_error(
                    py,
                    format!("{source}: line {n}: a PEM {label} block is not a recipient"),
                ))
            }
        };
        out.push(PyRecipient { inner });
    }
    Ok(out)
}

/// The keys of a list of `Identity` objects, split by kind.
pub fn split_identities(
    identities: &[Bound<'_, PyIdentity>],
) -> (Vec<Identity>, Vec<HybridIdentity>) {
    let mut p256 = Vec::new();
    let mut hybrid = Vec::new();
    for i in identities {
        match &i.get().inner {
            AnyIdentity::P256(k) => p256.push(k.clone()),
            AnyIdentity::Hybrid(k) => hybrid.push(k.clone()),
        }
    }
    (p256, hybrid)
}
