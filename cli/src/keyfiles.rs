//! Reading identities and recipients given on the command line.

use std::path::Path;

use kapsel_codec::{Identity, Recipient};

use crate::error::CliError;

/// The key lines of an identity or recipients file (SPEC.md 4.3), numbered
/// from 1: the text is split at LF, one CR right before the LF is dropped,
/// spaces and tabs are trimmed at both ends, and lines then empty or
/// starting with `#` are skipped. No other character is white space: a CR
/// not followed by LF, a no-break space or a form feed stays in its line,
/// which is then not a valid key string.
fn key_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.split_inclusive('\n')
        .enumerate()
        .filter_map(|(n, line)| {
            let line = match line.strip_suffix('\n') {
                Some(line) => line.strip_suffix('\r').unwrap_or(line),
                None => line,
            };
            let line = line.trim_matches([' ', '\t']);
            (!line.is_empty() && !line.starts_with('#')).then_some((n + 1, line))
        })
}

/// Where white space sits in a key string that should have none: "around"
/// or "inside", and its code point (`U+00A0`), for the error message.
fn stray_white_space(s: &str) -> Option<(&'static str, String)> {
    let c = s.chars().find(|c| c.is_whitespace())?;
    let place = if s.trim() == s { "inside" } else { "around" };
    Some((place, format!("U+{:04X}", u32::from(c))))
}

/// Parses the identities in an identity file's text (comments and blank
/// lines skipped).
pub fn parse_identities(text: &str, source: &str) -> Result<Vec<Identity>, CliError> {
    let mut out = Vec::new();
    for (n, line) in key_lines(text) {
        // The line is secret: errors say what is wrong, never its text.
        if let Some((place, c)) = stray_white_space(line) {
            return Err(CliError::usage(format!(
                "{source}:{n}: invalid identity: white space ({c}) {place} the identity string"
            ))
            .with_hint("an identity file ignores only spaces and tabs at the ends of a line and one CR right before its LF"));
        }
        let identity = Identity::from_secret_string(line).map_err(|e| {
            let err = CliError::usage(format!("{source}:{n}: invalid identity: {e}"));
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

/// Parses one recipient string given with `-r`: exactly the string, with no
/// white space around it (SPEC.md 4.1).
pub fn parse_recipient(s: &str) -> Result<Recipient, CliError> {
    if let Some((place, c)) = stray_white_space(s) {
        return Err(CliError::usage(format!(
            "invalid recipient {s:?}: white space ({c}) {place} the recipient string"
        ))
        .with_hint("give exactly the kapsel1... string; a recipients file ignores only spaces and tabs at the ends of a line and one CR right before its LF"));
    }
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
    for (n, line) in key_lines(&text) {
        out.push(parse_recipient(line).map_err(|e| CliError {
            message: format!("{}:{n}: {}", path.display(), e.message),
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
            errln!("kapsel: warning: identity file {} is accessible by other users (run chmod 600 on it)", path.display());
        }
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_path: &Path) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_lines_drop_only_crlf_spaces_tabs_and_comments() {
        let text = "# c\r\n \t A \t\r\n\nB\r\rC\r\n\u{a0}D\n\x0bE\x0c\n  # c\nF\r";
        let lines: Vec<(usize, &str)> = key_lines(text).collect();
        assert_eq!(
            lines,
            [
                (2, "A"),
                (4, "B\r\rC"),
                (5, "\u{a0}D"),
                (6, "\x0bE\x0c"),
                (8, "F\r")
            ]
        );
    }

    #[test]
    fn identity_lines_with_other_white_space_are_refused_by_file_and_line() {
        let secret = Identity::generate().to_secret_string();
        let good = format!("# created\r\n\t {}  \r\n", &*secret);
        assert_eq!(
            parse_identities(&good, "id.key").map(|v| v.len()).ok(),
            Some(1)
        );
        let broken = [
            format!("{}\u{a0}", &*secret),
            format!("\u{a0}{}", &*secret),
            format!("{}\x0b", &*secret),
            format!("\x0c{}", &*secret),
            format!("{}\u{2003}", &*secret),
            format!("\u{3000}{}", &*secret),
            format!("{}\u{85}", &*secret),
            format!("{}\r\r", &*secret),
            format!("{}\r \t", &*secret),
            format!("{}\r{}", &secret[..30], &secret[30..]),
        ];
        for line in &broken {
            for ending in ["\n", "\r\n", ""] {
                let text = format!("# comment\n{line}{ending}");
                let err = parse_identities(&text, "id.key").expect_err("refused");
                assert!(
                    err.message
                        .starts_with("id.key:2: invalid identity: white space"),
                    "{line:?}{ending:?}: {}",
                    err.message
                );
                assert!(!err.message.contains(&secret[20..]), "the secret leaked");
            }
        }
        // A CR at the very end, with no LF after it, is not a line ending.
        let err = parse_identities(&format!("{}\r", &*secret), "id.key").expect_err("refused");
        assert!(err.message.starts_with("id.key:1: "), "{}", err.message);
    }

    #[test]
    fn a_recipient_string_must_be_exact() {
        let r = Identity::generate().to_recipient().to_string();
        assert!(parse_recipient(&r).is_ok());
        for padded in [
            format!(" {r}"),
            format!("{r} "),
            format!("\t{r}"),
            format!("{r}\n"),
            format!("{r}\r\n"),
            format!("\u{a0}{r}"),
        ] {
            let err = parse_recipient(&padded).expect_err("refused");
            assert!(
                err.message.contains("white space")
                    && err.message.contains("around the recipient string"),
                "{padded:?}: {}",
                err.message
            );
        }
    }

    #[test]
    fn recipients_files_trim_only_spaces_and_tabs_at_line_ends() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("recipients.txt");
        let (a, b) = (
            Identity::generate().to_recipient(),
            Identity::generate().to_recipient(),
        );
        std::fs::write(&path, format!("# team\r\n \t{a}\t \r\n\n{b}")).expect("write");
        assert_eq!(read_recipients_file(&path).ok(), Some(vec![a.clone(), b]));
        for line in [format!("{a}\u{a0}"), format!("{a}\r"), format!("\x0c{a}")] {
            std::fs::write(&path, format!("# team\n{line}")).expect("write");
            let err = read_recipients_file(&path).expect_err("refused");
            let want = format!("{}:2: invalid recipient", path.display());
            assert!(err.message.starts_with(&want), "{line:?}: {}", err.message);
            assert!(err.message.contains("white space"), "{}", err.message);
        }
    }
}
