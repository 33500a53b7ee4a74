//! CLI errors: one message, an optional hint, and an exit code. All terminal
//! output of errors goes through [`CliError::report`].

use std::fmt;
use std::io;

use kapsel_codec::{DecryptError, Outcome};

/// Documented exit codes (README, `kapsel --help`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// 1: I/O or other error.
    Other = 1,
    /// 2: usage error.
    Usage = 2,
    /// 3: not a kapsel file, malformed header, or unsupported version.
    BadHeader = 3,
    /// 4: no identity matches any recipient.
    NoMatch = 4,
    /// 5: authentication failed: header, payload tag, truncated or trailing data.
    AuthFailed = 5,
    /// 6: refused by replay, freshness, challenge or sender policy.
    Refused = 6,
    /// 7: `send` only: the receiver refused the message.
    PeerRefused = 7,
    /// 8: the message is being received by another process right now; retry later.
    Pending = 8,
    /// 9: a PKCS#11 module, token or key failed (not found, not loaded, removed, not permitted).
    Token = 9,
    /// 10: the token refused its PIN (wrong, or locked).
    TokenPin = 10,
}

/// An error the CLI reports and exits on.
#[derive(Debug)]
pub struct CliError {
    pub exit: Exit,
    pub message: String,
    pub hint: Option<String>,
    /// Ends the process without a message: standard output was closed by
    /// its reader (`EPIPE`), as when piping into `head`.
    pub quiet: bool,
}

impl CliError {
    /// Names the input file at the start of an error about its contents
    /// (not a kapsel file, malformed, no matching recipient, failed
    /// authentication), so a script that decrypts many
    /// files can tell which one failed. Other errors already name what they
    /// are about.
    pub fn about_input(mut self, input: Option<&std::path::Path>) -> Self {
        let about_contents = matches!(
            self.exit,
            Exit::BadHeader | Exit::NoMatch | Exit::AuthFailed
        );
        if about_contents && !self.quiet {
            let name = match input {
                Some(p) if p != std::path::Path::new("-") => p.display().to_string(),
                _ => "standard input".to_string(),
            };
            self.message = format!("{name}: {}", self.message);
        }
        self
    }

    pub fn new(exit: Exit, message: impl fmt::Display) -> Self {
        CliError {
            exit,
            message: message.to_string(),
            hint: None,
            quiet: false,
        }
    }

    pub fn usage(message: impl fmt::Display) -> Self {
        Self::new(Exit::Usage, message)
    }

    pub fn other(message: impl fmt::Display) -> Self {
        Self::new(Exit::Other, message)
    }

    pub fn with_hint(mut self, hint: impl fmt::Display) -> Self {
        self.hint = Some(hint.to_string());
        self
    }

    /// An I/O error on a named path.
    pub fn io(context: impl fmt::Display, e: io::Error) -> Self {
        Self::other(format!("{context}: {}", plain_io_message(&e)))
    }

    /// An I/O error writing the command's output (standard output, or an
    /// output file): a broken pipe, whose reader went away, ends the
    /// command quietly. Not for network peers, whose loss is reported.
    pub fn output_io(context: impl fmt::Display, e: io::Error) -> Self {
        let quiet = e.kind() == io::ErrorKind::BrokenPipe;
        CliError {
            quiet,
            ..Self::io(context, e)
        }
    }

    /// Prints `kapsel: error: ...` and, if any, `kapsel: hint: ...` to stderr.
    /// Prints nothing for a closed standard output (see [`CliError::quiet`]).
    pub fn report(&self) {
        if self.quiet {
            return;
        }
        errln!("kapsel: error: {}", self.message);
        if let Some(hint) = &self.hint {
            errln!("kapsel: hint: {hint}");
        }
    }
}

/// `io::Error`'s message without the "(os error N)" suffix, lower case first.
fn plain_io_message(e: &io::Error) -> String {
    let s = e.to_string();
    let s = match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    };
    let mut c = s.chars();
    match c.next() {
        Some(first) => first.to_lowercase().collect::<String>() + c.as_str(),
        None => s,
    }
}

impl From<DecryptError> for CliError {
    fn from(e: DecryptError) -> Self {
        match e {
            DecryptError::Io(io) => match DecryptError::from_io(io) {
                DecryptError::Io(io) => CliError::io("read failed", io),
                other => CliError::from(other),
            },
            // A key on a token failed mid-run (removed, logged out): say
            // what the token said, with the token's exit code.
            DecryptError::Identity(id) => token_key_failed(&id),
            DecryptError::WrongPassphrase => CliError::new(Exit::NoMatch, "wrong passphrase")
                .with_hint("the passphrase did not open the file; if it is right, the passphrase stanza was damaged"),
            DecryptError::PassphraseRequired => {
                CliError::new(Exit::NoMatch, "this file is encrypted with a passphrase")
                    .with_hint("run decrypt without -i to be asked for it, or pass --passphrase-file FILE")
            }
            e @ DecryptError::PassphraseWorkTooHigh { .. } => CliError::new(Exit::BadHeader, e.to_string())
                .with_hint("a hostile file can ask for any amount of work; if you trust where it came from, raise the limit with --max-passphrase-memory SIZE or --max-passphrase-passes N"),
            other => from_outcome(other.outcome(), other.to_string()),
        }
    }
}

/// A key on a token failed mid-run (removed, logged out, or it signed
/// wrongly): what the token said, with the token's exit code.
pub fn token_key_failed(e: &kapsel_codec::IdentityError) -> CliError {
    let reason = std::error::Error::source(e)
        .map(ToString::to_string)
        .unwrap_or_else(|| e.to_string());
    CliError::new(Exit::Token, format!("a token key failed: {reason}"))
        .with_hint("check that the token is still present and logged in, then run again")
}

/// Classifies an error returned while reading decrypted plaintext.
pub fn from_decrypt_io(e: io::Error) -> CliError {
    DecryptError::from_io(e).into()
}

fn from_outcome(outcome: Outcome, message: String) -> CliError {
    match outcome {
        Outcome::NotKapsel => CliError::new(Exit::BadHeader, "not a kapsel file"),
        Outcome::Unsupported | Outcome::MalformedHeader => CliError::new(Exit::BadHeader, message),
        Outcome::NoMatchingRecipient => CliError::new(Exit::NoMatch, "no identity matches any recipient of this file")
            .with_hint("check that you passed the identity the file was encrypted to (kapsel inspect lists the recipients' key hints)"),
        Outcome::HeaderAuthFailed => CliError::new(Exit::AuthFailed, "header authentication failed: the file was modified")
            .with_hint("the header or a recipient stanza was altered after encryption"),
        Outcome::PayloadFailed => CliError::new(Exit::AuthFailed, format!("payload authentication failed: {message}"))
            .with_hint("the file is truncated, corrupted, or has trailing data; output so far is not trustworthy"),
        Outcome::ArmorFailed => CliError::new(Exit::BadHeader, message)
            .with_hint("the ASCII armor is damaged: lines must be 64 Base64 characters between the BEGIN and END lines"),
        Outcome::SenderAuthFailed => CliError::new(Exit::AuthFailed, format!("sender verification failed: {message}: that part of the file was not made by the sender it names"))
            .with_hint("the file was forged, altered or cut, possibly by another recipient; nothing the sender did not sign was written"),
        Outcome::Refused => CliError::new(Exit::Refused, message),
        Outcome::Io => CliError::other(message),
        // A class added to the codec after this CLI: report it as it is.
        _ => CliError::other(message),
    }
}

/// Hints for inputs that look like another tool's files.
pub fn foreign_format_hint(prefix: &[u8]) -> Option<&'static str> {
    if prefix.starts_with(b"age-encryption.org/")
        || prefix.starts_with(b"-----BEGIN AGE ENCRYPTED FILE-----")
    {
        Some("this looks like an age file: decrypt it with age or rage")
    } else if prefix.starts_with(b"-----BEGIN PGP")
        || prefix
            .first()
            .copied()
            .is_some_and(looks_like_openpgp_packet)
    {
        Some("this looks like an OpenPGP file: decrypt it with gpg")
    } else if prefix.starts_with(b"-----BEGIN") {
        Some("this looks like a PEM file, not a kapsel file")
    } else {
        None
    }
}

/// Whether `first` starts an OpenPGP packet that begins encrypted messages:
/// public-key or symmetric-key session key (tags 1, 3), compressed (8), or
/// encrypted data (18), in old or new packet format.
fn looks_like_openpgp_packet(first: u8) -> bool {
    let tag = if first & 0xC0 == 0xC0 {
        first & 0x3F
    } else if first & 0x80 != 0 {
        (first >> 2) & 0x0F
    } else {
        return false;
    };
    matches!(tag, 1 | 3 | 8 | 18)
}
