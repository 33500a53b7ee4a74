//! `keygen`, `pubkey`, `encrypt` and `decrypt`.

use std::io::{BufReader, Cursor, Read, Write};
use std::path::{Path, PathBuf};

use kapsel_codec::WorkLimit;
use kapsel_codec::{is_armored, ArmoredReader, ArmoredWriter, ARMOR_DETECTION_WINDOW};
use kapsel_codec::{Decryptor, Encryptor, HybridIdentity, Identity, Keyring, Recipient};

use crate::error::{foreign_format_hint, CliError};
use crate::files::{
    protect_stdout_for_key, write_private_file_atomically, Input, LiveInput, Output, IO_BUFFER,
};
use crate::keyfiles;
use crate::progress::ProgressReader;

/// The text of a new identity file.
pub fn identity_file_text(identity: &Identity, now: u64) -> String {
    format!(
        "# created: {}\n# recipient: {}\n{}\n",
        crate::time::iso8601_utc(now),
        identity.to_recipient(),
        &*identity.to_secret_string()
    )
}

pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The text of a new hybrid post-quantum identity file.
pub fn hybrid_identity_file_text(identity: &HybridIdentity, now: u64) -> String {
    format!(
        "# created: {}\n# post-quantum (ML-KEM-768 + P-256)\n# recipient: {}\n{}\n",
        crate::time::iso8601_utc(now),
        identity.to_recipient(),
        &*identity.to_secret_string()
    )
}

pub fn keygen(output: Option<&Path>, pq: bool) -> Result<(), CliError> {
    let (text, recipient) = if pq {
        let identity = HybridIdentity::generate();
        (
            zeroize::Zeroizing::new(hybrid_identity_file_text(&identity, now())),
            identity.to_recipient().to_string(),
        )
    } else {
        let identity = Identity::generate();
        (
            zeroize::Zeroizing::new(identity_file_text(&identity, now())),
            identity.to_recipient().to_string(),
        )
    };
    match output {
        Some(path) if !keyfiles::is_stdin(path) => {
            write_private_file_atomically(path, text.as_bytes())?;
            write_stdout(format!("{recipient}\n").as_bytes())
        }
        _ => {
            protect_stdout_for_key()?;
            write_stdout(text.as_bytes())
        }
    }
}

/// Writes `bytes` to standard output and flushes it.
fn write_stdout(bytes: &[u8]) -> Result<(), CliError> {
    crate::output::erase_progress();
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .map_err(|e| CliError::output_io("cannot write to standard output", e))
}

/// The keys of `pubkey`'s and `export`'s input: a key file, or standard
/// input when absent or `-`; identities and public keys alike.
fn read_any_keys(input: Option<&Path>) -> Result<Vec<(usize, keyfiles::Key)>, CliError> {
    let path = input.unwrap_or(Path::new("-"));
    keyfiles::read_keys(path, keyfiles::Want::Any)
}

/// `pubkey`: the recipient of every key in the input, one a line: of each
/// identity, and of each public key as given (recipient string or PEM).
pub fn pubkey(input: Option<&Path>) -> Result<(), CliError> {
    let mut text = String::new();
    for (_, key) in read_any_keys(input)? {
        text.push_str(&key.recipient().to_string());
        text.push('\n');
    }
    write_stdout(text.as_bytes())
}

/// `export`: the keys of the input as PEM, public (SPKI) by default,
/// private (PKCS#8) with `private`, which refuses public keys.
pub fn export(input: Option<&Path>, private: bool) -> Result<(), CliError> {
    let keys = read_any_keys(input)?;
    let mut text = zeroize::Zeroizing::new(String::new());
    for (line, key) in &keys {
        match key {
            keyfiles::Key::Identity(identity) if private => text.push_str(&identity.to_pkcs8_pem()),
            keyfiles::Key::Recipient(_) if private => {
                let name = match input {
                    Some(p) if !keyfiles::is_stdin(p) => p.display().to_string(),
                    _ => "standard input".into(),
                };
                return Err(CliError::usage(format!(
                    "{name}:{line}: a public key: there is no private key to export"
                ))
                .with_hint("export --private needs an identity; without --private, export prints public keys"));
            }
            keyfiles::Key::HybridIdentity(_) | keyfiles::Key::HybridRecipient(_) => {
                return Err(CliError::usage(format!(
                    "line {line}: a post-quantum key has no PEM form"
                ))
                .with_hint("no standard names the ML-KEM-768 + P-256 hybrid key; use its kapselpq1... string (kapsel pubkey)"));
            }
            key => match key.recipient() {
                keyfiles::AnyRecipient::P256(r) => text.push_str(&r.to_spki_pem()),
                keyfiles::AnyRecipient::Hybrid(_) => {}
            },
        }
    }
    if private {
        protect_stdout_for_key()?;
    }
    write_stdout(text.as_bytes())
}

pub struct EncryptArgs<'a> {
    pub addressing: Addressing<'a>,
    /// `-p`: encrypt to a passphrase, read from this source or the terminal.
    pub passphrase: Option<crate::passphrase::Source>,
    /// `--passphrase-memory`, `--passphrase-passes` (checked: never below
    /// the default).
    pub passphrase_cost: kapsel_codec::Cost,
    pub armor: bool,
    /// `--challenge`: answer a receiver's challenge (offline exchange).
    pub challenge: Option<kapsel_codec::exchange::Challenge>,
    /// Payload worker threads (0: all cores; 1: sequential).
    pub threads: usize,
    pub progress: bool,
    pub output: Option<&'a Path>,
    pub input: Option<&'a Path>,
}

/// Who a message goes to and who signs it: the flags `encrypt` and `send`
/// share.
pub struct Addressing<'a> {
    /// `--allow-classical`: P-256 recipients beside post-quantum ones.
    pub allow_classical: bool,
    pub recipients: &'a [String],
    pub recipient_files: &'a [PathBuf],
    pub hide_recipients: bool,
    pub sign_as: Option<&'a Path>,
    /// The module and PIN of a `--sign-as pkcs11:` key.
    pub token_args: &'a crate::tokens::TokenArgs,
    pub serial_db: Option<&'a Path>,
}

/// An encryptor for the recipients of `-r` and `-R`, signing with
/// `--sign-as` (which issues a serial from the serial store).
pub fn build_encryptor(args: &Addressing<'_>) -> Result<Encryptor, CliError> {
    let mut all = Vec::new();
    for r in args.recipients {
        all.push(keyfiles::parse_recipient(r)?);
    }
    for f in args.recipient_files {
        all.extend(keyfiles::read_recipients_file(f)?);
    }
    if all.is_empty() {
        return Err(CliError::usage("no recipients given")
            .with_hint("pass -r RECIPIENT or -R FILE (kapsel keygen prints a recipient), or -p for a passphrase"));
    }
    let (mut recipients, mut hybrid): (Vec<Recipient>, Vec<_>) = (Vec::new(), Vec::new());
    for r in all {
        match r {
            keyfiles::AnyRecipient::P256(r) => recipients.push(r),
            keyfiles::AnyRecipient::Hybrid(r) => hybrid.push(r),
        }
    }
    if !hybrid.is_empty() && !recipients.is_empty() && !args.allow_classical {
        return Err(CliError::usage(format!(
            "{} post-quantum and {} classical (P-256) recipients: a file with a P-256 recipient can be opened by a future quantum computer, whatever its other recipients",
            hybrid.len(),
            recipients.len()
        ))
        .with_hint("the weakest wrap decides: give every recipient a post-quantum key (kapsel keygen --pq), or pass --allow-classical to accept a file that is not post-quantum"));
    }
    if !hybrid.is_empty() && !recipients.is_empty() {
        errln!("kapsel: warning: --allow-classical: this file is not post-quantum (it has P-256 recipients)");
    }
    let mut encryptor = Encryptor::with_recipients(recipients, hybrid)
        .map_err(|e| CliError::usage(e.to_string()))?
        .allow_classical_with_post_quantum(args.allow_classical)
        .hide_recipients(args.hide_recipients);
    if let Some(path) = args.sign_as {
        encryptor = sign_as(encryptor, path, args)?;
    }
    Ok(encryptor)
}

/// Makes `encryptor` sign as the one key of `--sign-as` (an identity file,
/// or a token key named by a `pkcs11:` URI or by such a line in the file),
/// with a fresh serial for that key from the serial store.
fn sign_as(
    encryptor: Encryptor,
    path: &Path,
    args: &Addressing<'_>,
) -> Result<Encryptor, CliError> {
    let mut ids = keyfiles::read_identity_sources(&[path.to_path_buf()], args.token_args, false)?;
    let count = ids.software.len() + ids.hybrid.len() + ids.tokens.len();
    if !ids.hybrid.is_empty() {
        return Err(CliError::usage(format!(
            "{}: a post-quantum identity cannot sign; --sign-as needs a P-256 identity",
            path.display()
        ))
        .with_hint("sign with a P-256 identity (kapsel keygen) or a token key; the recipients can still be post-quantum"));
    }
    let (encryptor, sender) = match (ids.software.pop(), ids.tokens.pop()) {
        (Some(identity), None) if count == 1 => {
            let sender = identity.to_recipient();
            (encryptor.sender(identity), sender)
        }
        (None, Some(token)) if count == 1 => {
            let sender = token.recipient().clone();
            let key: std::sync::Arc<dyn kapsel_codec::IdentityKey> = std::sync::Arc::new(token);
            (encryptor.sender_key(key), sender)
        }
        _ => {
            return Err(CliError::usage(format!(
                "{}: holds {count} identities; --sign-as needs exactly one",
                path.display(),
            ))
            .with_hint("put the identity to sign with in a file of its own"))
        }
    };
    let store_path = crate::policy::serial_db_path(args.serial_db.map(Path::to_path_buf))?;
    crate::ledger_cmd::warn_exposed(&store_path, "serial store");
    let serial = kapsel_cli::serials::SerialStore::open(&store_path)
        .and_then(|mut store| store.issue(&sender.to_wire().0))
        .map_err(|e| CliError::other(format!("serial store {}: {e}", store_path.display())))?;
    Ok(encryptor.serial(serial))
}

/// Opens the input (a file, or standard input) behind a progress line.
pub fn open_with_progress(
    path: Option<&Path>,
    label: &'static str,
    progress: bool,
) -> Result<Input, CliError> {
    let input = Input::open(path)?;
    Ok(Input {
        reader: Box::new(ProgressReader::new(
            input.reader,
            label,
            input.len,
            progress,
        )),
        ..input
    })
}

pub fn encrypt(args: EncryptArgs<'_>) -> Result<(), CliError> {
    let mut encryptor = match &args.passphrase {
        Some(source) => {
            let a = &args.addressing;
            if !a.recipients.is_empty() || !a.recipient_files.is_empty() {
                return Err(CliError::usage(
                    "a passphrase file has no other recipients: -p cannot be used with -r or -R",
                )
                .with_hint("a passphrase stanza must be the only stanza of its file (SPEC 14.5): encrypt twice, or use only recipients"));
            }
            if !kapsel_codec::PASSPHRASE_AVAILABLE {
                return Err(CliError::usage(
                    "passphrase encryption is not available in the FIPS build (Argon2id is not FIPS-approved)",
                )
                .with_hint("encrypt to a recipient (kapsel keygen) instead"));
            }
            let passphrase = crate::passphrase::for_encrypt(source)?;
            let mut e = Encryptor::with_passphrase(passphrase)
                .map_err(|e| CliError::usage(e.to_string()))?
                .passphrase_cost(args.passphrase_cost);
            if let Some(path) = a.sign_as {
                e = sign_as(e, path, a)?;
            }
            e
        }
        None => build_encryptor(&args.addressing)?,
    };
    if let Some(challenge) = args.challenge {
        encryptor = encryptor.challenge(challenge);
    }
    let mut input = open_with_progress(args.input, "encrypting", args.progress)?;
    let mut output = Output::open(args.output, !args.armor)?;
    let write_err = |e| CliError::output_io("cannot write output", e);
    let header_err = |e| match e {
        kapsel_codec::EncryptError::Identity(e) => crate::error::token_key_failed(&e),
        e => CliError::other(format!("cannot write output: {e}")),
    };
    if args.armor {
        let armored = ArmoredWriter::new(&mut output).map_err(write_err)?;
        let writer = encryptor.wrap_output(armored).map_err(header_err)?;
        copy(&mut input, writer, args.threads)?
            .finish()
            .map_err(write_err)?;
    } else {
        let writer = encryptor.wrap_output(&mut output).map_err(header_err)?;
        copy(&mut input, writer, args.threads)?;
    }
    output.commit()
}

pub struct DecryptArgs<'a> {
    pub policy: crate::policy::Policy,
    /// `verify`: check everything, keep no plaintext.
    pub discard_output: bool,
    /// Payload worker threads (0: all cores; 1: sequential).
    pub threads: usize,
    pub identity_files: &'a [PathBuf],
    /// Identities already read from `identity_files` (several inputs in
    /// one run read them, and ask for any passphrase or PIN, once).
    pub identities: Option<&'a keyfiles::Identities>,
    /// The PKCS#11 module and PIN, for `-i pkcs11:...`.
    pub token_args: &'a crate::tokens::TokenArgs,
    /// Where a passphrase comes from, if the file asks for one.
    pub passphrase: crate::passphrase::Source,
    /// The most Argon2id work a passphrase file may ask for.
    pub passphrase_limit: WorkLimit,
    pub progress: bool,
    pub output: Option<&'a Path>,
    pub input: Option<&'a Path>,
    /// `--offset`: first plaintext byte of a range (see [`decrypt_range`]).
    pub offset: Option<u64>,
    /// `--length`: plaintext bytes in the range.
    pub length: Option<u64>,
}

/// `decrypt` of several inputs in one run: the identities are read (and a
/// key's passphrase asked for) once; each output is named after its input
/// without `.kap`, in the directory `-o` names or beside the input. Every
/// output name is planned before anything is decrypted (an input without
/// `.kap`, or two inputs with one output, is refused whole); then every
/// file is tried, each failure reported as it happens, and the exit code is
/// that of the first failure.
pub fn decrypt_many(args: DecryptArgs<'_>, inputs: &[PathBuf]) -> Result<(), CliError> {
    if args.offset.is_some() || args.length.is_some() {
        return Err(CliError::usage(
            "--offset and --length take one input file, not several",
        ));
    }
    if inputs.iter().any(|p| keyfiles::is_stdin(p)) {
        return Err(CliError::usage(
            "standard input (-) cannot be one of several inputs",
        ));
    }
    let dir = match args.output {
        Some(d) if d.is_dir() => Some(d),
        Some(d) => return Err(CliError::usage(format!(
            "with several inputs, -o names a directory, and {} is none",
            d.display()
        ))
        .with_hint(
            "give an existing directory, or leave -o out to write each plaintext beside its input",
        )),
        None => None,
    };
    let mut plan: Vec<(&Path, PathBuf)> = Vec::new();
    for input in inputs {
        let stem = input
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".kap"))
            .filter(|n| !n.is_empty())
            .ok_or_else(|| {
                CliError::usage(format!(
                    "{}: the output of several inputs is named by removing .kap, and this name has none",
                    input.display()
                ))
                .with_hint("rename the file, or decrypt it alone with -o OUT")
            })?;
        let out = match dir {
            Some(d) => d.join(stem),
            None => input.with_file_name(stem),
        };
        if plan.iter().any(|(_, o)| *o == out) {
            return Err(CliError::usage(format!(
                "two inputs would both write {}",
                out.display()
            )));
        }
        plan.push((input, out));
    }
    let identities = keyfiles::read_identity_sources(args.identity_files, args.token_args, true)?;
    let mut first_failure = None;
    let mut failed = 0usize;
    for (input, out) in &plan {
        let one = DecryptArgs {
            policy: args.policy.clone(),
            identities: Some(&identities),
            passphrase: args.passphrase.clone(),
            input: Some(input),
            output: Some(out),
            ..args
        };
        if let Err(e) = decrypt(one).map_err(|e| e.about_input(Some(input))) {
            if e.quiet {
                return Err(e);
            }
            e.report();
            failed += 1;
            first_failure.get_or_insert(e.exit);
        }
    }
    match first_failure {
        None => Ok(()),
        Some(exit) => Err(CliError::new(
            exit,
            format!("{failed} of {} files did not decrypt", plan.len()),
        )),
    }
}

/// The keys to try on `header`: the identities of `-i`, and for a
/// passphrase file a passphrase (from the flags, else the terminal), asked
/// only after the stanza's cost passed the work limit. Without `-i`, a file
/// that is not a passphrase file is refused as before.
fn keyring<'k>(
    header: &kapsel_format::Header,
    identities: &'k keyfiles::Identities,
    args: &DecryptArgs<'_>,
) -> Result<Keyring<'k>, CliError> {
    let mut keys = identities.keyring();
    match kapsel_codec::passphrase_cost(header) {
        Some(cost) => {
            if !args.passphrase_limit.allows(&cost) {
                return Err(CliError::from(
                    kapsel_codec::DecryptError::PassphraseWorkTooHigh {
                        cost,
                        limit: args.passphrase_limit,
                    },
                ));
            }
            if !kapsel_codec::PASSPHRASE_AVAILABLE {
                return Err(CliError::from(
                    kapsel_codec::DecryptError::PassphraseUnavailable,
                ));
            }
            keys = keys
                .with_passphrase(crate::passphrase::for_decrypt(&args.passphrase)?)
                .with_work_limit(args.passphrase_limit);
        }
        None if identities.is_empty() => {
            return Err(CliError::usage("no identity given").with_hint(
                "pass -i IDENTITY_FILE (made by kapsel keygen), or -i - for standard input",
            ));
        }
        None => {}
    }
    Ok(keys)
}

pub fn decrypt(args: DecryptArgs<'_>) -> Result<(), CliError> {
    if args.offset.is_some() || args.length.is_some() {
        return decrypt_range(args);
    }
    let read;
    let identities = match args.identities {
        Some(ids) => ids,
        None => {
            read = keyfiles::read_identity_sources(args.identity_files, args.token_args, true)?;
            &read
        }
    };
    // Where -o writes is checked before any input is read; nothing is
    // created until the header authenticated.
    let target = check_output(&args)?;
    let input = open_with_progress(args.input, "decrypting", args.progress)?;
    let Sniffed {
        reader,
        prefix,
        armored,
    } = sniff_armor(input.reader, &input.name)?;
    let decryptor =
        Decryptor::new(reader).map_err(|e| foreign_format_error(e, &prefix, armored))?;
    let claimed = decryptor.claimed_sender();
    let keys = keyring(decryptor.unverified_header(), identities, &args)?;
    // Find the file key and check the commitment: from here on the header
    // is authentic against anyone without the file key; for a signed file
    // each segment is verified as the sender's before it is released.
    let plaintext = decryptor.decrypt_with(&keys)?;
    let now = now();
    args.policy
        .check_header(plaintext.header(), claimed.as_ref(), now, None)?;
    let header = plaintext.header().clone();
    let header_bytes = plaintext.header_bytes().to_vec();
    // Output is opened only once the header authenticated: a file that does
    // not open never creates even a temporary file.
    let mut output = match target {
        _ if args.discard_output => Output::Discard,
        Some(target) => Output::open_target(target, false)?,
        None => Output::open(None, false)?,
    };
    let mut ledger = LedgerGate::new(&args.policy, &header, &header_bytes, now);
    let live = input.live.as_ref();
    let early = output.releases_early();
    let result = copy_plaintext(plaintext, &mut output, args.threads, live, &mut ledger)
        .and_then(|released| output.commit().map(|()| released));
    let released = released_to(early, result.is_ok());
    ledger.settle(result.as_ref().map(|_| ()), released)?;
    let plaintext_len = result?;
    if args.discard_output && args.progress {
        // `verify`: one line on standard output, as minisign and signify
        // say "verified"; -q leaves only the exit status.
        outln!(
            "verified: {}: {plaintext_len} bytes, {}, created {}, serial {}",
            input.name,
            match &claimed {
                Some(sender) => format!("signed by {sender}"),
                None => "anonymous sender".to_string(),
            },
            crate::time::iso8601_utc(header.created_at),
            header.serial
        )?;
    }
    Ok(())
}

/// Where `-o` writes (`None`: standard output, or nothing for `verify`),
/// checked without creating anything (see [`crate::outfile::resolve`]).
fn check_output(args: &DecryptArgs<'_>) -> Result<Option<crate::outfile::Target>, CliError> {
    match args.output {
        Some(p) if !args.discard_output && p != Path::new("-") => {
            crate::outfile::resolve(p).map(Some)
        }
        _ => Ok(None),
    }
}

/// An input whose first bytes were read to tell armor from binary.
pub struct Sniffed {
    /// The whole input again, decoded from armor if it was armored.
    pub reader: Box<dyn Read>,
    /// The first bytes as they came (at most [`ARMOR_DETECTION_WINDOW`]).
    pub prefix: Vec<u8>,
    pub armored: bool,
}

/// Reads the first bytes of `reader` to detect ASCII armor (SPEC.md
/// section 10) and returns the whole input, decoded if armored.
pub fn sniff_armor(mut reader: Box<dyn Read>, name: &str) -> Result<Sniffed, CliError> {
    let mut prefix = vec![0u8; ARMOR_DETECTION_WINDOW];
    let seen = read_up_to(&mut reader, &mut prefix)
        .map_err(|e| CliError::io(format!("cannot read {name}"), e))?;
    prefix.truncate(seen);
    let raw = Cursor::new(prefix.clone()).chain(reader);
    let armored = is_armored(&prefix);
    let reader: Box<dyn Read> = if armored {
        Box::new(ArmoredReader::new(BufReader::with_capacity(IO_BUFFER, raw)))
    } else {
        Box::new(raw)
    };
    Ok(Sniffed {
        reader,
        prefix,
        armored,
    })
}

/// The CLI error for a header that failed to parse, with a hint when the
/// input looks like another tool's file.
pub fn foreign_format_error(
    e: kapsel_codec::DecryptError,
    prefix: &[u8],
    armored: bool,
) -> CliError {
    let not_kapsel = e.outcome() == kapsel_codec::Outcome::NotKapsel;
    let err = CliError::from(e);
    match foreign_format_hint(prefix) {
        Some(hint) if not_kapsel && !armored => err.with_hint(hint),
        _ => err,
    }
}

/// Whether plaintext may have left this process: only through an output
/// that `releases_early` (standard output, a device or FIFO; a file is put
/// in place only on success, and `verify` keeps nothing).
fn released_to(releases_early: bool, succeeded: bool) -> ReleasedTo {
    match (releases_early, succeeded) {
        (false, _) => ReleasedTo::Nobody,
        (true, true) => ReleasedTo::Consumer,
        (true, false) => ReleasedTo::Counted,
    }
}

/// Who received plaintext before a decrypt ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReleasedTo {
    /// Nothing left the process.
    Nobody,
    /// Whatever the counting writer saw went to the consumer.
    Counted,
    /// The whole plaintext went to the consumer.
    Consumer,
}

/// The replay ledger around one decrypt: [`LedgerGate::reserve`] runs as the
/// codec's release gate (just before the first plaintext is released, after
/// the first chunk or signed segment verified), and
/// [`LedgerGate::settle`] confirms or withdraws (SPEC.md section 12.2).
pub struct LedgerGate<'a> {
    policy: &'a crate::policy::Policy,
    header: &'a kapsel_format::Header,
    header_bytes: &'a [u8],
    now: u64,
    held: Option<(kapsel_cli::ledger::Ledger, kapsel_cli::ledger::Reservation)>,
    refusal: Option<CliError>,
    /// Plaintext bytes handed to the output after the gate passed.
    released: u64,
}

impl<'a> LedgerGate<'a> {
    pub fn new(
        policy: &'a crate::policy::Policy,
        header: &'a kapsel_format::Header,
        header_bytes: &'a [u8],
        now: u64,
    ) -> Self {
        LedgerGate {
            policy,
            header,
            header_bytes,
            now,
            held: None,
            refusal: None,
            released: 0,
        }
    }

    /// Reserves the replay identifier; a refusal is kept for
    /// [`LedgerGate::take_refusal`].
    pub fn reserve(&mut self) -> std::io::Result<()> {
        match self
            .policy
            .reserve(self.header, self.header_bytes, self.now)
        {
            Ok(held) => {
                self.held = held;
                Ok(())
            }
            Err(e) => {
                self.refusal = Some(e);
                Err(std::io::Error::other("refused by the replay ledger"))
            }
        }
    }

    /// The ledger's refusal, if the gate refused.
    pub fn take_refusal(&mut self) -> Option<CliError> {
        self.refusal.take()
    }

    /// Counts plaintext bytes written after the gate.
    pub fn count(&mut self, n: usize) {
        self.released += n as u64;
    }

    /// Confirms the reservation on success; on failure withdraws it when no
    /// plaintext byte left this process, and keeps it otherwise (it must
    /// never be released twice).
    pub fn settle(
        mut self,
        result: Result<(), &CliError>,
        released: ReleasedTo,
    ) -> Result<(), CliError> {
        let Some((mut ledger, r)) = self.held.take() else {
            return Ok(());
        };
        let outcome = match (result, released) {
            (Ok(()), _) => ledger.confirm(r),
            (Err(_), ReleasedTo::Nobody) => ledger.withdraw(r),
            (Err(_), ReleasedTo::Counted) if self.released == 0 => ledger.withdraw(r),
            (Err(_), _) => Ok(()),
        };
        // A lost confirmation or withdrawal leaves the reservation, which
        // counts as accepted: the safe side.
        if let Err(e) = outcome {
            errln!("kapsel: warning: {e}");
        }
        Ok(())
    }
}

/// Writes verified plaintext to `output` until the end of the file, with
/// the parallel decryptor: the plaintext of a chunk (or signed segment) is
/// written only after it and everything before it verified, and nothing
/// after a failure. The replay identifier is reserved through `ledger` just
/// before the first plaintext is written. A `live` input releases what
/// verified whenever it pauses.
pub fn copy_plaintext<R: Read>(
    plaintext: kapsel_codec::PlaintextReader<R>,
    output: &mut Output,
    threads: usize,
    live: Option<&LiveInput>,
    ledger: &mut LedgerGate<'_>,
) -> Result<u64, CliError> {
    let write_err = |e| CliError::output_io("cannot write output", e);
    let mut discard = std::io::sink();
    // Large vectored writes go straight to the file or standard output:
    // `BufWriter` would copy them.
    let sink: &mut (dyn Write + Send) = match output {
        Output::Stdout(w) => w,
        Output::Discard => &mut discard,
        Output::Atomic { file, .. } | Output::InPlace { file, .. } => {
            file.flush().map_err(write_err)?;
            file.get_mut()
        }
    };
    let mut counted = CountingWriter {
        inner: sink,
        count: 0,
    };
    let mut gate = || ledger.reserve();
    let result = match live {
        Some(live) => {
            plaintext.decrypt_live_to(&mut counted, threads, &mut gate, &mut || live.ready())
        }
        None => plaintext.decrypt_to(&mut counted, threads, &mut gate),
    };
    ledger.count(counted.count);
    match result {
        Ok(n) => Ok(n),
        Err(kapsel_codec::CopyError::Input(e)) => Err(crate::error::from_decrypt_io(e)),
        Err(kapsel_codec::CopyError::Output(e)) => Err(write_err(e)),
        Err(kapsel_codec::CopyError::Refused(e)) => Err(ledger
            .take_refusal()
            .unwrap_or_else(|| CliError::other(e.to_string()))),
        Err(e) => Err(CliError::other(e.to_string())),
    }
}

/// Counts the bytes its writer accepted.
struct CountingWriter<'a> {
    inner: &'a mut (dyn Write + Send),
    count: usize,
}

impl Write for CountingWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.count += n;
        Ok(n)
    }

    fn write_vectored(&mut self, bufs: &[std::io::IoSlice<'_>]) -> std::io::Result<usize> {
        let n = self.inner.write_vectored(bufs)?;
        self.count += n;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Plaintext bytes asked of the seekable reader per `read_at` in a range.
const RANGE_PIECE: usize = 64 * kapsel_codec::CHUNK_SIZE;

/// `decrypt --offset N --length M`: opens the input file in place and
/// decrypts only the chunks the plaintext range `[N, N + M)` touches.
///
/// - The input must be a regular binary kapsel file: standard input, pipes
///   and armor cannot be read at an offset (usage error, exit 2).
/// - A range past the end is clipped at the end of the plaintext, whose
///   length is then authenticated by the final chunk first (so a truncated
///   file fails, exit 5, instead of yielding a short range). An offset at or
///   past the end writes nothing.
/// - The receiver policy applies as for a whole decrypt: the header checks
///   before any chunk is read, then the replay ledger, reserved after the
///   first piece of the range verified (for a signed file: the signatures of
///   the segments it touches) and before it is written. A range counts as
///   accepting the file; the reservation is withdrawn if the range fails
///   before any byte was written.
/// - Each piece is written only after its chunks, and for a signed file the
///   signatures of its segments, verified over bytes read once; with `-o`
///   the output replaces the target only on success.
fn decrypt_range(args: DecryptArgs<'_>) -> Result<(), CliError> {
    let path = match args.input {
        Some(p) if p != Path::new("-") => p,
        _ => {
            return Err(CliError::usage(
                "--offset and --length need an input file, not standard input",
            )
            .with_hint(
                "a range is read by seeking, which a pipe cannot do: save the input to a \
                     file, or decrypt all of it and cut the range (tail -c +N | head -c M)",
            ))
        }
    };
    let read;
    let identities = match args.identities {
        Some(ids) => ids,
        None => {
            read = keyfiles::read_identity_sources(args.identity_files, args.token_args, true)?;
            &read
        }
    };
    let target = check_output(&args)?;
    let name = path.display().to_string();
    let read_err = |e| CliError::io(format!("cannot read {name}"), e);
    let mut file =
        std::fs::File::open(path).map_err(|e| CliError::io(format!("cannot open {name}"), e))?;
    if !file.metadata().map_err(read_err)?.is_file() {
        return Err(CliError::usage(format!(
            "--offset and --length need a regular file; {name} is not one"
        ))
        .with_hint("copy the input to a file first, or decrypt all of it"));
    }
    let mut prefix = vec![0u8; ARMOR_DETECTION_WINDOW];
    let seen = read_up_to(&mut file, &mut prefix).map_err(read_err)?;
    if is_armored(&prefix[..seen]) {
        return Err(CliError::usage(format!(
            "--offset and --length need a binary kapsel file; {name} is ASCII-armored"
        ))
        .with_hint("decrypt the whole file, or have it sent without --armor"));
    }
    std::io::Seek::rewind(&mut file).map_err(read_err)?;
    let decryptor = Decryptor::new(file).map_err(|e| {
        let not_kapsel = e.outcome() == kapsel_codec::Outcome::NotKapsel;
        let err = CliError::from(e);
        match foreign_format_hint(&prefix[..seen]) {
            Some(hint) if not_kapsel => err.with_hint(hint),
            _ => err,
        }
    })?;
    let claimed = decryptor.claimed_sender();
    // Finds the file key and checks the commitment and the payload length;
    // reads no chunk.
    let keys = keyring(decryptor.unverified_header(), identities, &args)?;
    let reader = decryptor.decrypt_seekable_with(&keys)?;
    let now = now();
    args.policy
        .check_header(reader.header(), claimed.as_ref(), now, None)?;
    let mut output = match target {
        _ if args.discard_output => Output::Discard,
        Some(target) => Output::open_target(target, false)?,
        None => Output::open(None, false)?,
    };
    let offset = args.offset.unwrap_or(0);
    let end = args.length.map_or(u64::MAX, |m| offset.saturating_add(m));
    let header = reader.header().clone();
    let header_bytes = reader.header_bytes().to_vec();
    let mut ledger = LedgerGate::new(&args.policy, &header, &header_bytes, now);
    let early = output.releases_early();
    let result =
        write_range(&reader, offset, end, &mut output, &mut ledger).and_then(|()| output.commit());
    let released = released_to(early, result.is_ok());
    ledger.settle(result.as_ref().map(|_| ()), released)?;
    result
}

/// Writes the plaintext of `[offset, end)`, clipped at the authenticated
/// end of the plaintext, to `output`. Every piece comes from chunks (or
/// signed segments) read once and verified; the replay identifier is
/// reserved after the first piece verified and before it is written.
fn write_range<R: Read + std::io::Seek>(
    reader: &kapsel_codec::SeekableReader<R>,
    offset: u64,
    end: u64,
    output: &mut Output,
    ledger: &mut LedgerGate<'_>,
) -> Result<(), CliError> {
    let mut buf = zeroize::Zeroizing::new(vec![0u8; RANGE_PIECE]);
    let mut pos = offset;
    let mut reserved = false;
    let mut reserve = |ledger: &mut LedgerGate<'_>| -> Result<(), CliError> {
        if !reserved {
            reserved = true;
            ledger.reserve().map_err(|e| {
                ledger
                    .take_refusal()
                    .unwrap_or_else(|| CliError::other(e.to_string()))
            })?;
        }
        Ok(())
    };
    while pos < end {
        // Bounded by the buffer length.
        let want = (end - pos).min(buf.len() as u64) as usize;
        let n = reader
            .read_at(pos, &mut buf[..want])
            .map_err(crate::error::from_decrypt_io)?;
        if n > 0 {
            // A range that releases nothing accepts nothing.
            reserve(ledger)?;
        }
        output
            .write_all(&buf[..n])
            .map_err(|e| CliError::output_io("cannot write output", e))?;
        ledger.count(n);
        pos += n as u64;
        if n < want {
            // read_at stops short only at the end, after authenticating it.
            break;
        }
    }
    Ok(())
}

fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Encrypts `input` to the end into `writer` with the parallel encryptor
/// and finishes the file; returns the output. A live input releases the
/// complete chunks it holds whenever it pauses.
pub fn copy<W: Write + Send>(
    input: &mut Input,
    writer: kapsel_codec::FileWriter<W>,
    threads: usize,
) -> Result<W, CliError> {
    let reader = &mut input.reader;
    let copied = match &input.live {
        Some(live) => writer.encrypt_live_from(reader, threads, &mut || live.ready()),
        None => writer.encrypt_from(reader, threads),
    };
    let name = &input.name;
    copied.map_err(|e| match e {
        kapsel_codec::CopyError::Input(e) => CliError::io(format!("cannot read {name}"), e),
        kapsel_codec::CopyError::Output(e) | kapsel_codec::CopyError::Refused(e) => {
            CliError::output_io("cannot write output", e)
        }
        kapsel_codec::CopyError::Signer(e) => crate::error::token_key_failed(&e),
        e => CliError::output_io("cannot write output", e.into()),
    })
}
