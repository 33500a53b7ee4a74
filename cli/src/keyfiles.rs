//! Reading identities and recipients given on the command line: key
//! strings in arguments (`-r`, `--expect-sender`) and key files (`-i`, `-R`,
//! `--sign-as`, `pubkey`, `export`), with the line rules of SPEC.md 4.3.
//!
//! Invariants: every non-comment line of a key file belongs to a key that
//! parsed, or the whole file is refused with its name and line number;
//! errors never show the text of a line that may be secret; a file or
//! standard input is read only up to [`MAX_KEY_FILE`] bytes.

use std::io::Read;
use std::path::{Path, PathBuf};

use kapsel_codec::ssh::{self, PrivateKeyFile, SshKeyError};
use kapsel_codec::KeyKind;
use kapsel_codec::{HybridIdentity, HybridRecipient, Identity, KeyParseError, Recipient};
use zeroize::Zeroizing;

use crate::error::CliError;

/// The largest key file read (1 MiB: about 15,000 recipient lines).
pub const MAX_KEY_FILE: u64 = 1 << 20;

/// What a key file may hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Want {
    /// `-i`, `--sign-as`: identity strings and PEM private keys.
    Identities,
    /// `-R`, `--expect-sender`: recipient strings and PEM public keys.
    Recipients,
    /// `pubkey`, `export`: either.
    Any,
}

impl Want {
    fn file(self) -> &'static str {
        match self {
            Want::Identities => "identity file",
            Want::Recipients => "recipients file",
            Want::Any => "key file",
        }
    }

    /// What each line of such a file may be, for hints.
    fn rules(self) -> &'static str {
        match self {
            Want::Identities => "each line of an identity file is an identity string (KAPSEL-SECRET-KEY-1... or KAPSEL-PQ-SECRET-KEY-1...), a pkcs11: URI, part of a PEM PRIVATE KEY, EC PRIVATE KEY or OPENSSH PRIVATE KEY block, a # comment, or blank",
            Want::Recipients => "each line of a recipients file is a recipient string (kapsel1... or kapselpq1...), an SSH public key (ecdsa-sha2-nistp256 AAAA...), part of a PEM PUBLIC KEY block, a # comment, or blank",
            Want::Any => "each line is a recipient string (kapsel1...), an identity string (KAPSEL-SECRET-KEY-1...), part of a PEM key block, a # comment, or blank",
        }
    }
}

/// One key read from a key file.
pub enum Key {
    Identity(Identity),
    Recipient(Recipient),
    /// A hybrid post-quantum identity (`KAPSEL-PQ-SECRET-KEY-1...`).
    HybridIdentity(HybridIdentity),
    /// A hybrid post-quantum recipient (`kapselpq1...`).
    HybridRecipient(HybridRecipient),
}

/// A recipient of either kind.
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

impl Key {
    /// The recipient of the key, of its own kind.
    pub fn recipient(&self) -> AnyRecipient {
        match self {
            Key::Identity(i) => AnyRecipient::P256(i.to_recipient()),
            Key::Recipient(r) => AnyRecipient::P256(r.clone()),
            Key::HybridIdentity(i) => AnyRecipient::Hybrid(i.to_recipient()),
            Key::HybridRecipient(r) => AnyRecipient::Hybrid(r.clone()),
        }
    }

    fn is_private(&self) -> bool {
        matches!(self, Key::Identity(_) | Key::HybridIdentity(_))
    }
}

/// Every line of `text`, numbered from 1: split at LF, one CR right before
/// the LF dropped, spaces and tabs trimmed at both ends (SPEC.md 4.3). No
/// other character is white space: a CR not followed by LF, a no-break
/// space or a form feed stays in its line.
fn all_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.split_inclusive('\n').enumerate().map(|(n, line)| {
        let line = match line.strip_suffix('\n') {
            Some(line) => line.strip_suffix('\r').unwrap_or(line),
            None => line,
        };
        (n + 1, line.trim_matches([' ', '\t']))
    })
}

fn is_comment(line: &str) -> bool {
    line.is_empty() || line.starts_with('#')
}

/// The key lines of a file: [`all_lines`] without comments and blank lines.
#[cfg(test)]
fn key_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    all_lines(text).filter(|(_, l)| !is_comment(l))
}

/// Where white space sits in a key string that should have none: "around"
/// or "inside", and its code point (`U+00A0`), for the error message.
fn stray_white_space(s: &str) -> Option<(&'static str, String)> {
    let c = s.chars().find(|c| c.is_whitespace())?;
    let place = if s.trim() == s { "inside" } else { "around" };
    Some((place, format!("U+{:04X}", u32::from(c))))
}

/// A hint that says how to fix a key string error, if one exists.
fn key_error_hint(e: &KeyParseError) -> Option<String> {
    Some(match e {
        KeyParseError::WrongType {
            found: KeyKind::Identity,
            ..
        } => "this is an identity (private key): use its recipient, printed by kapsel pubkey".into(),
        KeyParseError::WrongType {
            found: KeyKind::Recipient,
            ..
        } => "this is a recipient (public key); decrypting needs the identity file made by kapsel keygen".into(),
        KeyParseError::WrongType {
            found: KeyKind::AgeRecipient,
            ..
        } => "kapsel cannot encrypt to age keys: ask for a kapsel recipient (kapsel1..., made by kapsel keygen)".into(),
        KeyParseError::WrongType {
            found: KeyKind::AgeIdentity,
            ..
        } => "kapsel cannot use age identities: decrypt age files with age or rage".into(),
        KeyParseError::WrongLength {
            expected, found, ..
        } if found < expected => "the string is cut short: copy all of it".into(),
        KeyParseError::WrongLength { .. } => {
            "the string has extra characters: copy exactly the key".into()
        }
        KeyParseError::Checksum | KeyParseError::InvalidChar { .. } => {
            "a character is wrong: copy the string again from its source".into()
        }
        KeyParseError::MixedCase => "recipients are all lower case and identities all upper case; changing the case of some letters breaks them".into(),
        KeyParseError::NotOnCurve | KeyParseError::ScalarOutOfRange => {
            "the string is well formed but holds no valid key; it was not made by kapsel".into()
        }
        _ => return None,
    })
}

/// Whether a string looks like a secret key string, which error messages
/// must not repeat.
fn looks_secret(s: &str) -> bool {
    let s = s.to_ascii_lowercase();
    s.starts_with("kapsel-secret-key-")
        || s.starts_with("kapsel-pq-secret-key-")
        || s.starts_with("age-secret-key-")
        || s.starts_with("age-plugin-")
}

/// One key string on line `n` of a key file, as `want` allows.
fn parse_key_line(line: &str, n: usize, source: &str, want: Want) -> Result<Key, CliError> {
    if ssh::looks_like_public_key(line) {
        return parse_ssh_line(line, n, source, want).map(Key::Recipient);
    }
    // The line may be secret: errors say what is wrong, never its text.
    let kind = KeyKind::of(line);
    let hybrid_identity = kind == Some(KeyKind::HybridIdentity);
    let hybrid_recipient = kind == Some(KeyKind::HybridRecipient);
    if (hybrid_identity && want != Want::Recipients)
        || (hybrid_recipient && want != Want::Identities)
    {
        let parsed = if hybrid_identity {
            HybridIdentity::from_secret_string(line).map(Key::HybridIdentity)
        } else {
            line.parse::<HybridRecipient>().map(Key::HybridRecipient)
        };
        let noun = if hybrid_identity {
            "post-quantum identity"
        } else {
            "post-quantum recipient"
        };
        return parsed.map_err(|e| {
            let err = CliError::usage(format!("{source}:{n}: invalid {noun}: {e}"));
            match key_error_hint(&e) {
                Some(hint) => err.with_hint(hint),
                None => err.with_hint(want.rules()),
            }
        });
    }
    let as_identity = match want {
        Want::Identities => true,
        Want::Recipients => false,
        Want::Any => kind == Some(KeyKind::Identity),
    };
    let noun = match want {
        Want::Recipients => "recipient",
        Want::Identities => "identity",
        Want::Any if as_identity => "identity",
        Want::Any if line.to_ascii_lowercase().starts_with("kapsel1") => "recipient",
        Want::Any => "key",
    };
    if let Some((place, c)) = stray_white_space(line) {
        return Err(CliError::usage(format!(
            "{source}:{n}: invalid {noun}: white space ({c}) {place} the key string"
        ))
        .with_hint("a key file ignores only spaces and tabs at the ends of a line and one CR right before its LF"));
    }
    let parsed = if as_identity {
        Identity::from_secret_string(line).map(Key::Identity)
    } else {
        line.parse::<Recipient>().map(Key::Recipient)
    };
    parsed.map_err(|e| {
        let err = CliError::usage(format!("{source}:{n}: invalid {noun}: {e}"));
        match key_error_hint(&e) {
            Some(hint)
                if want == Want::Recipients
                    && matches!(
                        e,
                        KeyParseError::WrongType {
                            found: KeyKind::Identity,
                            ..
                        }
                    ) =>
            {
                err.with_hint(format!(
                    "{hint}; a recipients file must hold no private key"
                ))
            }
            Some(hint) => err.with_hint(hint),
            None => err.with_hint(want.rules()),
        }
    })
}

/// An SSH public key line (`ecdsa-sha2-nistp256 AAAA... comment`, the
/// `.pub` and `authorized_keys` form) on line `n`.
fn parse_ssh_line(line: &str, n: usize, source: &str, want: Want) -> Result<Recipient, CliError> {
    if want == Want::Identities {
        return Err(CliError::usage(format!(
            "{source}:{n}: an SSH public key, not an identity"
        ))
        .with_hint("decrypting needs the private key: pass the OpenSSH private key file (for example -i ~/.ssh/id_ecdsa, not id_ecdsa.pub)"));
    }
    ssh::parse_public_key(line).map_err(|e| {
        let err = CliError::usage(format!("{source}:{n}: invalid SSH public key: {e}"));
        match e {
            SshKeyError::UnsupportedKeyType(_) => err.with_hint(
                "kapsel keys are P-256: make one with ssh-keygen -t ecdsa -b 256, or use a kapsel1... recipient",
            ),
            _ => err.with_hint("give the line as ssh-keygen wrote it in the .pub file"),
        }
    })
}

/// The identity in an OpenSSH private key file's block; a protected key's
/// passphrase is asked for on the terminal. For `pubkey` and `export`
/// (`Want::Any`) a protected key gives its public half without asking.
fn ssh_private_key(pem: &str, want: Want, source: &str) -> Result<Key, SshKeyError> {
    match ssh::read_private_key(pem)? {
        PrivateKeyFile::Identity(identity, _) => Ok(Key::Identity(identity)),
        PrivateKeyFile::Encrypted(recipient) if want == Want::Any => Ok(Key::Recipient(recipient)),
        PrivateKeyFile::Encrypted(_) => {
            let what = format!("the passphrase of the SSH key {source}");
            for attempt in 1..=3 {
                let passphrase = crate::tty::read_secret(
                    &format!("Enter passphrase for SSH key {source}: "),
                    &what,
                )
                .map_err(|_| SshKeyError::PassphraseRequired)?;
                match ssh::decrypt_private_key(pem, passphrase.as_bytes()) {
                    Ok((identity, _)) => return Ok(Key::Identity(identity)),
                    Err(SshKeyError::WrongPassphrase) if attempt < 3 => {
                        errln!("kapsel: wrong passphrase, try again");
                    }
                    Err(e) => return Err(e),
                }
            }
            Err(SshKeyError::WrongPassphrase)
        }
    }
}

/// The label of a `-----BEGIN LABEL-----` line.
fn begin_label(line: &str) -> Option<&str> {
    let label = line.strip_prefix("-----BEGIN ")?.strip_suffix("-----")?;
    (!label.is_empty()
        && label
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b' '))
    .then_some(label)
}

/// Whether a PEM block with `label` may appear in a file of `want`; an
/// error for line `n` if not.
fn check_label(label: &str, n: usize, source: &str, want: Want) -> Result<(), CliError> {
    let private = matches!(
        label,
        "PRIVATE KEY" | "EC PRIVATE KEY" | ssh::PRIVATE_KEY_LABEL
    );
    let err = |msg: String| CliError::usage(format!("{source}:{n}: {msg}"));
    match label {
        "EC PARAMETERS" => Ok(()),
        "PUBLIC KEY" if want != Want::Identities => Ok(()),
        _ if private && want != Want::Recipients => Ok(()),
        "PUBLIC KEY" => Err(err("a public key (PUBLIC KEY block), not an identity".into())
            .with_hint("decrypting needs the private key; a PUBLIC KEY is for encrypt -R and --expect-sender")),
        "ENCRYPTED PRIVATE KEY" if want != Want::Recipients => Err(err("encrypted private keys are not supported".into())
            .with_hint("decrypt it first: openssl pkey -in FILE -out plain.pem (and keep plain.pem private)")),
        _ if private || label == "ENCRYPTED PRIVATE KEY" => Err(err(format!(
            "a private key ({label} block) in a recipients file"
        ))
        .with_hint("this looks like a private key: give its public key instead (kapsel pubkey FILE prints its recipient, kapsel export FILE its PEM public key)")),
        _ => Err(err(format!("unsupported PEM block {label}")).with_hint(want.rules())),
    }
}

/// The DER of `EC PARAMETERS` naming P-256 (the OID 1.2.840.10045.3.1.7),
/// in Base64: what `openssl ecparam -genkey -name prime256v1` writes.
const P256_EC_PARAMETERS: &str = "BggqhkjOPQMBBw==";

/// A PEM block between its BEGIN line (number `begin`) and END line.
struct Block<'t> {
    label: &'t str,
    begin: usize,
    body: Vec<&'t str>,
}

impl Block<'_> {
    /// The key in the block, or `None` for `EC PARAMETERS` naming P-256.
    fn parse(&self, source: &str, end: usize, want: Want) -> Result<Option<Key>, CliError> {
        let (label, begin) = (self.label, self.begin);
        let err = |reason: String| {
            CliError::usage(format!(
                "{source}:{begin}: {label} block (lines {begin}-{end}): {reason}"
            ))
        };
        if label == "EC PARAMETERS" {
            return if self.body.concat() == P256_EC_PARAMETERS {
                Ok(None)
            } else {
                Err(err("not the P-256 curve (prime256v1)".into())
                    .with_hint("kapsel keys are P-256: make one with kapsel keygen, or openssl ecparam -genkey -name prime256v1"))
            };
        }
        let mut pem = Zeroizing::new(format!("-----BEGIN {label}-----\n"));
        for line in &self.body {
            pem.push_str(line);
            pem.push('\n');
        }
        pem.push_str(&format!("-----END {label}-----\n"));
        if label == ssh::PRIVATE_KEY_LABEL {
            return ssh_private_key(&pem, want, source).map(Some).map_err(|e| {
                let err = err(e.to_string());
                match e {
                    SshKeyError::PassphraseRequired => err.with_hint(
                        "run kapsel where it can ask on a terminal, or remove the passphrase from a copy: ssh-keygen -p -N '' -f COPY",
                    ),
                    SshKeyError::UnsupportedKeyType(_) => err.with_hint(
                        "kapsel keys are P-256: make one with ssh-keygen -t ecdsa -b 256",
                    ),
                    _ => err.with_hint("give the file as ssh-keygen wrote it"),
                }
            });
        }
        let key = if label == "PUBLIC KEY" {
            Recipient::from_pem(&pem).map(Key::Recipient)
        } else {
            Identity::from_pem(&pem).map(Key::Identity)
        };
        key.map(Some).map_err(|e| {
            err(e.to_string()).with_hint(
                "the Base64 lines must be complete (as openssl writes them) and hold a P-256 key",
            )
        })
    }
}

/// Parses the text of a key file (SPEC.md 4.3): every line is a comment,
/// blank, a key string, or part of a PEM block, and the file holds at least
/// one key. Keys come with their line numbers, in order.
pub fn parse_key_text(text: &str, source: &str, want: Want) -> Result<Vec<(usize, Key)>, CliError> {
    parse_entries(text, source, want)?
        .into_iter()
        .map(|(n, entry)| match entry {
            Entry::Key(key) => Ok((n, key)),
            Entry::Token(_) => Err(CliError::usage(format!(
                "{source}:{n}: a PKCS#11 URI names a key on a token, which only decrypt and verify use"
            ))
            .with_hint("kapsel pubkey URI prints its recipient")),
        })
        .collect()
}

/// A key file's entry: a key, or (in an identity file) the `pkcs11:` URI
/// of a key on a token.
pub enum Entry {
    Key(Key),
    Token(kapsel_pkcs11::Pkcs11Uri),
}

/// [`parse_key_text`], keeping `pkcs11:` lines of identity files as URIs.
fn parse_entries(text: &str, source: &str, want: Want) -> Result<Vec<(usize, Entry)>, CliError> {
    let mut keys = Vec::new();
    let mut block: Option<Block<'_>> = None;
    if text.starts_with('\u{feff}') {
        return Err(CliError::usage(format!(
            "{source}:1: the file starts with a byte order mark"
        ))
        .with_hint("save the file as UTF-8 without a byte order mark"));
    }
    for (n, line) in all_lines(text) {
        if let Some(b) = &mut block {
            if line
                .strip_prefix("-----END ")
                .and_then(|l| l.strip_suffix("-----"))
                == Some(b.label)
            {
                if let Some(key) = b.parse(source, n, want)? {
                    keys.push((b.begin, Entry::Key(key)));
                }
                block = None;
            } else if line.starts_with("-----") {
                return Err(CliError::usage(format!(
                    "{source}:{n}: expected -----END {}----- (the block began on line {})",
                    b.label, b.begin
                ))
                .with_hint("nothing may follow the END line on its line; each block ends before the next begins"));
            } else if line.contains(':') {
                return Err(CliError::usage(format!(
                    "{source}:{n}: PEM header in the {} block: encrypted keys are not supported",
                    b.label
                ))
                .with_hint("decrypt it first: openssl pkey -in FILE -out plain.pem (and keep plain.pem private)"));
            } else if line.is_empty()
                || !line
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'/' | b'='))
            {
                return Err(CliError::usage(format!(
                    "{source}:{n}: not a Base64 line, inside the {} block begun on line {}",
                    b.label, b.begin
                ))
                .with_hint("a PEM block holds only Base64 lines, with no blank lines or comments, up to its END line"));
            } else {
                b.body.push(line);
            }
            continue;
        }
        if is_comment(line) {
            continue;
        }
        if let Some(label) = begin_label(line) {
            check_label(label, n, source, want)?;
            block = Some(Block {
                label,
                begin: n,
                body: Vec::new(),
            });
        } else if line.starts_with("-----END") {
            return Err(CliError::usage(format!(
                "{source}:{n}: a PEM END line with no BEGIN line"
            ))
            .with_hint(want.rules()));
        } else if line.starts_with("-----") {
            return Err(CliError::usage(format!(
                "{source}:{n}: not a PEM BEGIN line (expected -----BEGIN LABEL----- alone on its line)"
            ))
            .with_hint(want.rules()));
        } else if kapsel_pkcs11::Pkcs11Uri::is_uri(line) && want != Want::Recipients {
            let uri = kapsel_pkcs11::Pkcs11Uri::parse(line)
                .map_err(|e| CliError::usage(format!("{source}:{n}: invalid PKCS#11 URI: {e}")))?;
            keys.push((n, Entry::Token(uri)));
        } else {
            keys.push((n, Entry::Key(parse_key_line(line, n, source, want)?)));
        }
    }
    if let Some(b) = block {
        return Err(CliError::usage(format!(
            "{source}:{}: -----BEGIN {}----- has no END line",
            b.begin, b.label
        ))
        .with_hint("the file is cut short, or the END line has other characters on it"));
    }
    if keys.is_empty() {
        let what = match want {
            Want::Identities => "identity",
            Want::Recipients => "recipient",
            Want::Any => "key",
        };
        return Err(CliError::usage(format!("{source}: no {what} found")).with_hint(want.rules()));
    }
    Ok(keys)
}

/// Parses the identities in an identity file's text.
#[cfg(test)]
fn parse_identities(text: &str, source: &str) -> Result<Vec<Identity>, CliError> {
    Ok(parse_key_text(text, source, Want::Identities)?
        .into_iter()
        .filter_map(|(_, k)| match k {
            Key::Identity(i) => Some(i),
            _ => None,
        })
        .collect())
}

/// Whether `path` names standard input (`-`).
pub fn is_stdin(path: &Path) -> bool {
    path == Path::new("-")
}

/// Reads a key file, or standard input for `-`, as text of at most
/// [`MAX_KEY_FILE`] bytes. Returns the text and the name used in errors.
pub fn read_key_source(path: &Path, want: Want) -> Result<(Zeroizing<String>, String), CliError> {
    let (name, mut reader): (String, Box<dyn Read>) = if is_stdin(path) {
        if crate::files::stdin_is_closed() {
            return Err(CliError::other(format!(
                "standard input is closed, but - names it as the {}",
                want.file()
            ))
            .with_hint("give the keys on standard input, or name the file"));
        }
        ("standard input".into(), Box::new(std::io::stdin()))
    } else {
        let f = std::fs::File::open(path).map_err(|e| {
            CliError::io(format!("cannot read {} {}", want.file(), path.display()), e)
        })?;
        (path.display().to_string(), Box::new(f))
    };
    let mut bytes = Zeroizing::new(Vec::new());
    reader
        .by_ref()
        .take(MAX_KEY_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| CliError::io(format!("cannot read {} {name}", want.file()), e))?;
    if bytes.len() as u64 > MAX_KEY_FILE {
        return Err(CliError::usage(format!(
            "{name}: larger than {} KiB, too large for a {}",
            MAX_KEY_FILE >> 10,
            want.file()
        )));
    }
    match std::str::from_utf8(&bytes) {
        Ok(text) => Ok((Zeroizing::new(text.to_owned()), name)),
        Err(e) => Err(CliError::usage(format!(
            "{name}:{}: not UTF-8 text",
            1 + bytes[..e.valid_up_to()].iter().filter(|&&b| b == b'\n').count()
        ))
        .with_hint("a binary (DER) key? convert it to PEM: openssl pkey -inform DER -in FILE (add -pubin for a public key)")),
    }
}

/// Reads every key of a key file (or of standard input, for `-`) that
/// `want` allows.
pub fn read_keys(path: &Path, want: Want) -> Result<Vec<(usize, Key)>, CliError> {
    let (text, name) = read_key_source(path, want)?;
    let keys = parse_key_text(&text, &name, want)?;
    if !is_stdin(path) && keys.iter().any(|(_, k)| k.is_private()) {
        warn_if_readable_by_others(path);
    }
    Ok(keys)
}

/// The identities of `decrypt` and `verify`: P-256 and post-quantum keys
/// from identity files, and keys on PKCS#11 tokens, named by a `-i
/// pkcs11:...` argument or by a `pkcs11:` line in an identity file. Token
/// keys are opened (and their PIN asked for) here, once per token.
pub struct Identities {
    pub software: Vec<Identity>,
    pub hybrid: Vec<HybridIdentity>,
    pub tokens: Vec<kapsel_pkcs11::TokenKey>,
}

impl Identities {
    /// Every identity, for the codec.
    pub fn keyring(&self) -> kapsel_codec::Keyring<'_> {
        kapsel_codec::Keyring::new()
            .with_identities(self.software.iter().cloned())
            .with_hybrid_identities(self.hybrid.iter().cloned())
            .with_keys(
                self.tokens
                    .iter()
                    .map(|t| t as &dyn kapsel_codec::IdentityKey),
            )
    }

    /// How many keys there are, of every kind.
    pub fn len(&self) -> usize {
        self.software.len() + self.hybrid.len() + self.tokens.len()
    }

    /// Whether no identity was given at all.
    pub fn is_empty(&self) -> bool {
        self.software.is_empty() && self.hybrid.is_empty() && self.tokens.is_empty()
    }
}

/// Reads every `-i` source (see [`Identities`]); none at all is a usage
/// error unless `optional` (a passphrase file needs no identity).
pub fn read_identity_sources(
    paths: &[PathBuf],
    token_args: &crate::tokens::TokenArgs,
    optional: bool,
) -> Result<Identities, CliError> {
    if paths.is_empty() && !optional {
        return Err(CliError::usage("no identity given").with_hint(
            "pass -i IDENTITY_FILE (made by kapsel keygen), -i pkcs11:URI, or -i - for standard input",
        ));
    }
    if paths.iter().filter(|p| is_stdin(p)).count() > 1 {
        return Err(CliError::usage(
            "-i - is given twice: standard input can be read only once",
        ));
    }
    let mut ids = Identities {
        software: Vec::new(),
        hybrid: Vec::new(),
        tokens: Vec::new(),
    };
    let mut uris = Vec::new();
    for path in paths {
        if let Some(text) = path
            .to_str()
            .filter(|t| kapsel_pkcs11::Pkcs11Uri::is_uri(t))
        {
            uris.push(crate::tokens::parse_uri(text)?);
            continue;
        }
        let (text, name) = read_key_source(path, Want::Identities)?;
        let entries = parse_entries(&text, &name, Want::Identities)?;
        if !is_stdin(path) && entries.iter().any(|(_, e)| matches!(e, Entry::Key(_))) {
            warn_if_readable_by_others(path);
        }
        for (_, entry) in entries {
            match entry {
                Entry::Key(Key::Identity(i)) => ids.software.push(i),
                Entry::Key(Key::HybridIdentity(i)) => ids.hybrid.push(i),
                Entry::Key(_) => {}
                Entry::Token(uri) => uris.push(uri),
            }
        }
    }
    ids.tokens = crate::tokens::open_keys(&uris, token_args)?;
    Ok(ids)
}

/// Shows a command-line key argument in an error, unless it looks secret.
fn shown(s: &str) -> String {
    if looks_secret(s) {
        "(an identity string, not repeated here)".into()
    } else {
        format!("{s:?}")
    }
}

/// Parses one recipient string given with `-r`: exactly the string, with no
/// white space around it (SPEC.md 4.1).
pub fn parse_recipient(s: &str) -> Result<AnyRecipient, CliError> {
    let pq = KeyKind::of(s) == Some(KeyKind::HybridRecipient);
    if !pq {
        return parse_recipient_arg(s, "recipient").map(AnyRecipient::P256);
    }
    if let Some((place, c)) = stray_white_space(s) {
        return Err(CliError::usage(format!(
            "invalid post-quantum recipient: white space ({c}) {place} the recipient string"
        ))
        .with_hint("give exactly the kapselpq1... string"));
    }
    s.parse::<HybridRecipient>()
        .map(AnyRecipient::Hybrid)
        .map_err(|e| {
            let err = CliError::usage(format!("invalid post-quantum recipient: {e}"));
            match key_error_hint(&e) {
                Some(hint) => err.with_hint(hint),
                None => err,
            }
        })
}

fn parse_recipient_arg(s: &str, what: &str) -> Result<Recipient, CliError> {
    if ssh::looks_like_public_key(s) {
        return parse_ssh_line(s, 1, what, Want::Recipients).map_err(|e| CliError {
            message: e
                .message
                .replacen(&format!("{what}:1: "), &format!("{what}: "), 1),
            ..e
        });
    }
    if let Some((place, c)) = stray_white_space(s) {
        return Err(CliError::usage(format!(
            "invalid {what} {}: white space ({c}) {place} the recipient string",
            shown(s)
        ))
        .with_hint("give exactly the kapsel1... string; a recipients file ignores only spaces and tabs at the ends of a line and one CR right before its LF"));
    }
    s.parse::<Recipient>().map_err(|e| {
        let err = CliError::usage(format!("invalid {what} {}: {e}", shown(s)));
        if s.starts_with("-----BEGIN") {
            err.with_hint("to use a PEM public key, pass its file with -R")
        } else if let Some(hint) = key_error_hint(&e) {
            err.with_hint(hint)
        } else {
            err.with_hint("a recipient string starts with kapsel1 (kapsel pubkey prints it)")
        }
    })
}

/// Parses an `--expect-sender` argument: a recipient string, a PEM public
/// key given inline (it starts with `-----BEGIN`), or else the path of a
/// file of recipients (the rules of `-R`). A string that starts with
/// `kapsel1`, or that names no file, is taken as a recipient string.
pub fn parse_sender(arg: &str) -> Result<Vec<Recipient>, CliError> {
    if arg.trim_start().starts_with("-----BEGIN") {
        return p256_senders(parse_key_text(arg, "--expect-sender", Want::Recipients)?);
    }
    let path = Path::new(arg);
    let looks_recipient = arg.to_ascii_lowercase().starts_with("kapsel1");
    if looks_recipient || !path.exists() {
        return parse_recipient_arg(arg, "--expect-sender")
            .map(|r| vec![r])
            .map_err(|e| {
                if looks_recipient {
                    e
                } else {
                    CliError {
                        message: format!("{} (and no file of that name exists)", e.message),
                        ..e
                    }
                }
            });
    }
    p256_senders(read_keys(path, Want::Recipients)?)
}

/// The P-256 keys of `keys`; a post-quantum key is refused: senders sign
/// with ECDSA P-256.
fn p256_senders(keys: Vec<(usize, Key)>) -> Result<Vec<Recipient>, CliError> {
    keys.into_iter()
        .map(|(line, k)| match k.recipient() {
            AnyRecipient::P256(r) => Ok(r),
            AnyRecipient::Hybrid(_) => Err(CliError::usage(format!(
                "--expect-sender: line {line}: a post-quantum recipient cannot be a sender"
            ))
            .with_hint("senders sign with P-256 keys (kapsel1...)")),
        })
        .collect()
}

/// Reads a recipients file (or standard input, for `-`): recipient strings
/// (P-256 and post-quantum) and P-256 public keys in SPKI PEM (`openssl
/// pkey -pubout`), in any mix.
pub fn read_recipients_file(path: &Path) -> Result<Vec<AnyRecipient>, CliError> {
    Ok(read_keys(path, Want::Recipients)?
        .into_iter()
        .map(|(_, k)| k.recipient())
        .collect())
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
        assert_eq!(
            read_recipients_file(&path).ok(),
            Some(vec![AnyRecipient::P256(a.clone()), AnyRecipient::P256(b)])
        );
        for line in [format!("{a}\u{a0}"), format!("{a}\r"), format!("\x0c{a}")] {
            std::fs::write(&path, format!("# team\n{line}")).expect("write");
            let err = read_recipients_file(&path).expect_err("refused");
            let want = format!("{}:2: invalid recipient", path.display());
            assert!(err.message.starts_with(&want), "{line:?}: {}", err.message);
            assert!(err.message.contains("white space"), "{}", err.message);
        }
    }
}

#[cfg(test)]
mod key_file_tests {
    use super::*;

    #[test]
    fn keys_keep_their_order_and_line_numbers_across_formats() {
        let (a, b) = (Identity::generate(), Identity::generate());
        let text = format!(
            "# team\n{}\n{}\n{}",
            a.to_recipient(),
            b.to_recipient().to_spki_pem(),
            &*a.to_secret_string()
        );
        let keys = parse_key_text(&text, "f", Want::Any).expect("parsed");
        let lines: Vec<usize> = keys.iter().map(|(n, _)| *n).collect();
        assert_eq!(lines, [2, 3, 8]);
        assert!(matches!(keys[2].1, Key::Identity(_)));
        assert_eq!(keys[1].1.recipient(), AnyRecipient::P256(b.to_recipient()));
    }

    #[test]
    fn a_begin_line_inside_a_block_is_refused_where_it_stands() {
        let a = Identity::generate().to_recipient().to_spki_pem();
        let cut = a.lines().take(2).collect::<Vec<_>>().join("\n");
        let text = format!("{cut}\n{a}");
        let err = parse_key_text(&text, "f", Want::Recipients)
            .map(drop)
            .expect_err("refused");
        assert!(
            err.message
                .starts_with("f:3: expected -----END PUBLIC KEY-----"),
            "{}",
            err.message
        );
    }
}
