//! Where a passphrase comes from: the terminal (no echo, asked twice on
//! encrypt; an empty entry offers a generated passphrase), a file
//! (`--passphrase-file`, its first line), or an inherited file descriptor
//! (`--passphrase-fd`). Never from a command-line argument, which other
//! users can read in the process list.

use std::io::Read;
use std::path::{Path, PathBuf};

use kapsel_codec::Passphrase;
use zeroize::Zeroizing;

use crate::error::CliError;

/// Most bytes read from a passphrase file or descriptor.
const MAX_PASSPHRASE_FILE: u64 = 64 * 1024;

/// The passphrase flags of `encrypt` and `decrypt`.
#[derive(Clone, Debug, Default)]
pub struct Source {
    /// `--passphrase-file FILE`.
    pub file: Option<PathBuf>,
    /// `--passphrase-fd N`.
    pub fd: Option<u32>,
    /// The passphrase once read: several inputs in one run (clones of this
    /// source share it) read the file or descriptor, or ask, only once.
    pub remembered: std::sync::Arc<std::sync::OnceLock<Passphrase>>,
}

/// The first line of `bytes` (without its LF or CRLF), as a passphrase.
fn first_line(bytes: &[u8], name: &str) -> Result<Passphrase, CliError> {
    let line = bytes.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.is_empty() {
        return Err(CliError::usage(format!("{name}: the passphrase is empty"))
            .with_hint("put the passphrase on the first line"));
    }
    Ok(Passphrase::from_bytes(line))
}

fn read_limited(mut r: impl Read, name: &str) -> Result<Zeroizing<Vec<u8>>, CliError> {
    let mut bytes = Zeroizing::new(Vec::new());
    r.by_ref()
        .take(MAX_PASSPHRASE_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| CliError::io(format!("cannot read {name}"), e))?;
    if bytes.len() as u64 > MAX_PASSPHRASE_FILE {
        return Err(CliError::usage(format!(
            "{name}: larger than 64 KiB, too large for a passphrase"
        )));
    }
    Ok(bytes)
}

/// The passphrase from `--passphrase-file` or `--passphrase-fd`.
fn from_source(source: &Source) -> Result<Option<Passphrase>, CliError> {
    if let Some(path) = &source.file {
        let name = path.display().to_string();
        let f = std::fs::File::open(path)
            .map_err(|e| CliError::io(format!("cannot open passphrase file {name}"), e))?;
        return first_line(&read_limited(f, &name)?, &name).map(Some);
    }
    if let Some(fd) = source.fd {
        // The descriptor is opened through /dev/fd, which needs no unsafe code.
        let path = Path::new("/dev/fd").join(fd.to_string());
        let name = format!("passphrase descriptor {fd}");
        let f = std::fs::File::open(&path)
            .map_err(|e| CliError::io(format!("cannot read {name}"), e))?;
        return first_line(&read_limited(f, &name)?, &name).map(Some);
    }
    Ok(None)
}

fn prompt(text: &str) -> Result<Zeroizing<String>, CliError> {
    crate::output::erase_progress();
    crate::tty::read_secret(text, "a passphrase").map_err(|e| {
        e.with_hint("without a terminal, pass --passphrase-file FILE or --passphrase-fd N")
    })
}

/// A generated passphrase: 20 symbols of the Bech32 alphabet in four
/// groups (100 bits), easy to read out and to type.
pub fn generate() -> Zeroizing<String> {
    const ALPHABET: &[u8; 32] = b"qpzry9x8gf2tvdw0s3jn54khce6mua7l";
    let mut raw = Zeroizing::new([0u8; 20]);
    kapsel_codec::backend::fill_random(&mut raw[..]);
    let mut out = Zeroizing::new(String::with_capacity(23));
    for (i, b) in raw.iter().enumerate() {
        if i > 0 && i % 5 == 0 {
            out.push('-');
        }
        out.push(char::from(ALPHABET[usize::from(b & 31)]));
    }
    out
}

/// The passphrase to encrypt with: from the source, else asked twice on the
/// terminal; an empty first entry gives a generated passphrase, shown once
/// on standard error.
pub fn for_encrypt(source: &Source) -> Result<Passphrase, CliError> {
    if let Some(p) = from_source(source)? {
        return Ok(p);
    }
    let first = prompt("Enter passphrase (leave empty for a generated one): ")?;
    if first.is_empty() {
        let generated = generate();
        errln!("kapsel: using the generated passphrase: {}", &*generated);
        errln!("kapsel: keep it safe: the file cannot be decrypted without it");
        return Ok(Passphrase::new(&generated));
    }
    let second = prompt("Confirm passphrase: ")?;
    if *first != *second {
        return Err(CliError::usage("the passphrases do not match")
            .with_hint("type the same passphrase twice"));
    }
    Ok(Passphrase::new(&first))
}

/// The passphrase to decrypt with: from the source, else asked once.
pub fn for_decrypt(source: &Source) -> Result<Passphrase, CliError> {
    if let Some(p) = source.remembered.get() {
        return Ok(p.clone());
    }
    let p = match from_source(source)? {
        Some(p) => p,
        None => {
            let p = prompt("Enter passphrase: ")?;
            if p.is_empty() {
                return Err(CliError::usage("empty passphrase")
                    .with_hint("type the passphrase the file was encrypted with"));
            }
            Passphrase::new(&p)
        }
    };
    let _ = source.remembered.set(p.clone());
    Ok(p)
}
