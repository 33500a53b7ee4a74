//! Reading identities and recipients given on the command line.

use std::path::Path;

use kapsel_codec::{Identity, Recipient};

use crate::error::CliError;

/// Parses the identities in an identity file's text (comments and blank
/// lines skipped).
pub fn parse_identities(text: &str, source: &str) -> Result<Vec<Identity>, CliError> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim_matches([' ', '\t']);
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let identity = Identity::from_secret_string(line).map_err(|e| {
            let err = CliError::usage(format!("{source}:{}: invalid identity: {e}", n + 1));
            if line.starts_with("kapsel1") {
                err.with_hint("this is a recipient (public key); decrypting needs the identity file made by kapsel keygen")
            } else {
                err
            }
        })?;
        out.push(identity);
    }
    if out.is_empty() {
        return Err(CliError::usage(format!("{source}: no identity found")));
    }
    Ok(out)
}

/// Reads an identity file: kapsel identity strings, or one P-256 private
/// key in PKCS#8 or SEC1 PEM.
/// Every identity of every `-i` file, in order; a usage error if none was
/// given.
pub fn read_identity_files(paths: &[std::path::PathBuf]) -> Result<Vec<Identity>, CliError> {
    if paths.is_empty() {
        return Err(CliError::usage("no identity given")
            .with_hint("pass -i IDENTITY_FILE (made by kapsel keygen)"));
    }
    let mut identities = Vec::new();
    for f in paths {
        identities.extend(read_identity_file(f)?);
    }
    Ok(identities)
}

pub fn read_identity_file(path: &Path) -> Result<Vec<Identity>, CliError> {
    warn_if_readable_by_others(path);
    let text =
        zeroize::Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
            CliError::io(format!("cannot read identity file {}", path.display()), e)
        })?);
    if text.contains("-----BEGIN") {
        if text.contains("-----BEGIN PUBLIC KEY-----") {
            return Err(CliError::usage(format!(
                "{}: is a public key, not an identity",
                path.display()
            ))
            .with_hint("decrypting needs the private key; a PUBLIC KEY file is for encrypt -R"));
        }
        return Identity::from_pem(&text)
            .map(|i| vec![i])
            .map_err(|e| CliError::usage(format!("{}: {e}", path.display())));
    }
    parse_identities(&text, &path.display().to_string())
}

/// Parses one recipient string given with `-r`.
pub fn parse_recipient(s: &str) -> Result<Recipient, CliError> {
    s.parse::<Recipient>().map_err(|e| {
        let err = CliError::usage(format!("invalid recipient {s:?}: {e}"));
        if s.starts_with("KAPSEL-SECRET-KEY-") {
            err.with_hint("this is an identity (private key); encrypt to its recipient, printed by kapsel pubkey")
        } else if s.starts_with("age1") {
            err.with_hint("this is an age recipient; kapsel recipients start with kapsel1")
        } else if s.starts_with("-----BEGIN") {
            err.with_hint("to use a PEM public key, pass the file with -R")
        } else {
            err
        }
    })
}

/// Reads a recipients file: one recipient string per line with `#`
/// comments, or P-256 public keys in SPKI PEM (`openssl pkey -pubout`).
pub fn read_recipients_file(path: &Path) -> Result<Vec<Recipient>, CliError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| CliError::io(format!("cannot read recipients file {}", path.display()), e))?;
    let mut out = Vec::new();
    if text.contains("-----BEGIN") {
        let blocks = kapsel_codec::keys::pem_blocks(&text, "PUBLIC KEY");
        if blocks.is_empty() {
            return Err(CliError::usage(format!("{}: no PUBLIC KEY block", path.display()))
                .with_hint("this looks like a private key: give its public key (kapsel export, or openssl pkey -pubout)"));
        }
        for block in blocks {
            out.push(
                Recipient::from_pem(&block)
                    .map_err(|e| CliError::usage(format!("{}: {e}", path.display())))?,
            );
        }
        return Ok(out);
    }
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        out.push(parse_recipient(line).map_err(|e| CliError {
            message: format!("{}:{}: {}", path.display(), n + 1, e.message),
            ..e
        })?);
    }
    if out.is_empty() {
        return Err(CliError::usage(format!(
            "{}: no recipient found",
            path.display()
        )));
    }
    Ok(out)
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path) {
        if meta.permissions().mode() & 0o077 != 0 {
            eprintln!("kapsel: warning: identity file {} is accessible by other users (run chmod 600 on it)", path.display());
        }
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_path: &Path) {}
