//! The `kapsel` command-line tool. Owns all terminal output, argument
//! parsing and exit codes; the format and the cryptography live in
//! `kapsel-format` and `kapsel-codec`.
#![forbid(unsafe_code)]
// The doc comments on the argument structs are clap's help text, written for
// a terminal (`[IPV6]:PORT`, `<state dir>`), not rustdoc markup.
#![allow(rustdoc::broken_intra_doc_links, rustdoc::invalid_html_tags)]
// Every write to standard output or standard error goes through `output`,
// which never panics.
#![deny(clippy::print_stdout, clippy::print_stderr)]

#[macro_use]
mod output;
mod assets;
mod commands;
mod demo;
mod error;
mod exchange;
mod files;
mod inspect;
mod keyfiles;
mod ledger_cmd;
mod outfile;
mod passphrase;
mod policy;
mod progress;
mod service;
mod time;
mod tokens;
mod tty;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  I/O or other error
  2  usage error
  3  not a kapsel file, malformed header, unsupported version, or damaged armor;
     a passphrase file that asks for more work than allowed
  4  no identity matches any recipient, or a wrong passphrase
  5  authentication failed: header, payload tag, truncated or trailing data,
     or an invalid sender signature
  6  refused by policy: replay, too old, from the future, not from the expected sender,
     or not answering the expected challenge
  7  send: the receiver refused the message
  8  the message is being received by another process right now; retry later
  9  a PKCS#11 module, token or key failed
  10 a PKCS#11 token refused its PIN (wrong or locked)";

#[derive(Parser, Debug)]
#[command(name = "kapsel", version, about = "Hybrid encryption for streams and archives (P-256 or ML-KEM-768 + P-256 HPKE, or a passphrase; Cobblestone-256)",
    after_help = EXIT_CODES)]
struct Cli {
    /// No progress line on stderr (shown only on a terminal anyway), no verify summary, no listen address unless its port was chosen (port 0)
    #[arg(short, long, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Make a new identity (private key): P-256, or with --pq post-quantum (ML-KEM-768 + P-256)
    #[command(after_help = concat!("Examples:\n  kapsel keygen -o me.key        # writes me.key (mode 0600), prints the recipient (kapsel1...)\n  kapsel keygen --pq -o me.pq.key # a post-quantum identity; its recipient is kapselpq1... (2014 characters)\n  kapsel keygen > me.key\n\n", "Exit codes: 0 success, 1 error (for example FILE exists), 2 usage error"))]
    Keygen {
        /// Write the identity to FILE (refuses to overwrite) and print its recipient
        #[arg(short, long, value_name = "FILE", conflicts_with = "pkcs11")]
        output: Option<PathBuf>,
        /// A hybrid post-quantum identity (ML-KEM-768 + P-256): files to it stay confidential against a future quantum computer
        #[arg(long, conflicts_with = "pkcs11")]
        pq: bool,
        /// Generate a non-extractable P-256 key pair on a PKCS#11 token (pkcs11:token=...;object=LABEL) and print its recipient
        #[arg(long, value_name = "URI")]
        pkcs11: Option<String>,
        #[command(flatten)]
        token: tokens::TokenArgs,
    },
    /// Print the recipient of each key in FILE or standard input (identities, recipients, PEM keys)
    #[command(
        after_help = "Examples:\n  kapsel pubkey me.key\n  kapsel keygen | kapsel pubkey\n  kapsel pubkey alice.pub.pem      # a PEM public key, as a recipient string"
    )]
    Pubkey {
        /// Key file: identities, recipients, PEM or SSH keys (standard input if absent or -), or a pkcs11: URI
        file: Option<PathBuf>,
        #[command(flatten)]
        token: tokens::TokenArgs,
    },
    /// List PKCS#11 tokens, or with --keys the P-256 keys on one
    #[command(
        after_help = "Examples:\n  kapsel tokens\n  kapsel tokens --keys 'pkcs11:token=backup'\n  kapsel tokens --pkcs11-module /usr/lib/x86_64-linux-gnu/libykcs11.so\n\nExit codes:\n  9 the module, token or key failed; 10 the token refused its PIN"
    )]
    Tokens {
        /// List the P-256 keys on the token URI names (logs in if the token needs it)
        #[arg(long)]
        keys: bool,
        /// Which token (pkcs11:token=...); all tokens if absent
        uri: Option<String>,
        #[command(flatten)]
        token: tokens::TokenArgs,
    },
    /// Print keys as PEM: public (SPKI) of any key, or private (PKCS#8) of an identity
    #[command(
        after_help = "Examples:\n  kapsel export me.key > me.pub.pem            # for openssl and for encrypt -R\n  kapsel export --private me.key > me.pem      # PKCS#8, readable by openssl pkey"
    )]
    Export {
        /// Print the private key (PKCS#8 PEM) instead of the public key
        #[arg(long)]
        private: bool,
        /// Key file: identities, recipients, PEM keys (standard input if absent or -)
        file: Option<PathBuf>,
    },
    /// Encrypt IN (or standard input) to one or more recipients, or to a passphrase
    #[command(after_help = concat!("Examples:\n  kapsel encrypt -r kapsel1... -o secret.kap notes.txt\n  kapsel encrypt -r kapselpq1... -o secret.kap notes.txt   # post-quantum recipient\n  kapsel encrypt -p -o backup.kap backup.tar               # asks for a passphrase twice\n  kapsel encrypt -p --passphrase-file pw.txt -o backup.kap backup.tar\n  tar c dir | kapsel encrypt -R team.txt | ssh host 'cat > dir.tar.kap'\n\n",
        "A file with a post-quantum recipient takes only post-quantum recipients (the weakest wrap\n",
        "decides) unless --allow-classical is given. A passphrase file has no other recipient.\n\n",
        "Exit codes:\n  0 success, 1 I/O error, 2 usage error (bad recipient, mixed recipients, binary output to a terminal)"))]
    Encrypt {
        #[command(flatten)]
        addressing: AddressingArgs,
        /// Encrypt to a passphrase (Argon2id), asked on the terminal without echo (twice; empty: a generated one)
        #[arg(short = 'p', long = "passphrase")]
        passphrase: bool,
        /// With -p: read the passphrase from the first line of FILE instead of the terminal
        #[arg(
            long,
            value_name = "FILE",
            requires = "passphrase",
            conflicts_with = "passphrase_fd"
        )]
        passphrase_file: Option<PathBuf>,
        /// With -p: read the passphrase from the first line of file descriptor N
        #[arg(long, value_name = "N", requires = "passphrase")]
        passphrase_fd: Option<u32>,
        /// With -p: Argon2id memory per guess (default 256MiB; KiB, MiB or GiB); never below the default. Above 1GiB, receivers need --max-passphrase-memory
        #[arg(long, value_name = "SIZE", requires = "passphrase", value_parser = passphrase::parse_memory)]
        passphrase_memory: Option<u32>,
        /// With -p: Argon2id passes (default 3); never below the default. Above 16, receivers need --max-passphrase-passes
        #[arg(long, value_name = "N", requires = "passphrase")]
        passphrase_passes: Option<u32>,
        /// Write PEM-style ASCII armor (Base64) instead of binary
        #[arg(short, long)]
        armor: bool,
        /// Answer a receiver's challenge (from kapsel challenge): the receiver checks it with decrypt --expect-challenge
        #[arg(long, value_name = "CHALLENGE")]
        challenge: Option<String>,
        /// Worker threads for the payload (0: all cores; 1: sequential; at most 1024)
        #[arg(long, value_name = "N", default_value_t = 0, value_parser = parse_threads)]
        threads: usize,
        /// Output file (standard output if absent); written atomically
        #[arg(short, long, value_name = "OUT")]
        output: Option<PathBuf>,
        /// Input file (standard input if absent or -)
        input: Option<PathBuf>,
    },
    /// Decrypt IN (or standard input) with one or more identities
    #[command(after_help = concat!("Examples:\n  kapsel decrypt -i me.key -o notes.txt secret.kap\n  ssh host 'cat dir.tar.kap' | kapsel decrypt -i me.key | tar x\n  kapsel decrypt -i me.key --offset 1048576 --length 4096 big.kap > part.bin\n\n",
        "With -o, output goes to a temporary file that replaces OUT only after the whole input\n",
        "decrypted and verified. To standard output, each chunk is written only after it verified;\n",
        "a non-zero exit status means the output is incomplete or not trustworthy.\n\n", "Exit codes:\n  0 success\n  1 I/O or other error (a closed standard output ends quietly with 1)\n  2 usage error\n  3 not a kapsel file, malformed header, unsupported version, or damaged armor;\n    a passphrase file asking for more than 1 GiB or 16 passes of Argon2id\n    (raise with --max-passphrase-memory, --max-passphrase-passes)\n  4 no identity matches any recipient, or a wrong passphrase\n  5 authentication failed: header, payload tag, truncated or trailing data,\n    or an invalid sender signature\n  6 refused by policy: already accepted (a replay), too old, from the future,\n    not from the expected sender, or not answering the expected challenge\n  8 the message is being received by another process right now; retry later\n  9 a PKCS#11 module, token or key failed; 10 a token refused its PIN"))]
    Decrypt {
        /// Identity file (- for standard input) or pkcs11: URI of a token key: P-256 and post-quantum identities; repeatable, each is tried. Not needed for a passphrase file
        #[arg(short = 'i', long = "identity", value_name = "IDENTITY")]
        identities: Vec<PathBuf>,
        /// For a passphrase file: read the passphrase from the first line of FILE instead of the terminal
        #[arg(long, value_name = "FILE", conflicts_with = "passphrase_fd")]
        passphrase_file: Option<PathBuf>,
        /// For a passphrase file: read the passphrase from the first line of file descriptor N
        #[arg(long, value_name = "N")]
        passphrase_fd: Option<u32>,
        #[command(flatten)]
        passphrase_limit: PassphraseLimitArgs,
        /// Output file (standard output if absent); replaced only on success
        #[arg(short, long, value_name = "OUT")]
        output: Option<PathBuf>,
        #[command(flatten)]
        policy: PolicyArgs,
        /// Replay ledger: refuse messages already accepted (also $KAPSEL_REPLAY_DB; "default" = <state dir>/replay.db)
        #[arg(long, value_name = "PATH")]
        replay_db: Option<PathBuf>,
        /// Worker threads for the payload (0: all cores; 1: sequential; at most 1024)
        #[arg(long, value_name = "N", default_value_t = 0, value_parser = parse_threads)]
        threads: usize,
        /// Decrypt only from plaintext byte N on (needs an input file; decrypts only the chunks the range touches)
        #[arg(long, value_name = "N")]
        offset: Option<u64>,
        /// Decrypt at most M plaintext bytes (from --offset, default 0); a range past the end is clipped
        #[arg(long, value_name = "M")]
        length: Option<u64>,
        /// Input file (standard input if absent or -); several files: each NAME.kap to NAME, in -o DIR or beside it
        #[arg(value_name = "IN")]
        inputs: Vec<PathBuf>,
        #[command(flatten)]
        token: tokens::TokenArgs,
    },
    /// Check a file completely (header, sender signature, every chunk) without writing plaintext
    #[command(after_help = concat!("Examples:\n  kapsel verify -i me.key backup.kap\n  kapsel verify -i me.key --expect-sender kapsel1... --max-age 1d report.kap\n\n",
        "On success, prints one line on standard output (verified: FILE: N bytes, sender, creation\n",
        "time, serial); -q prints nothing. Nothing is recorded in a replay ledger.\n",
        "Exit codes are those of decrypt."))]
    Verify {
        /// Identity file (- for standard input) or pkcs11: URI of a token key; repeatable, each is tried
        #[arg(short = 'i', long = "identity", value_name = "IDENTITY")]
        identities: Vec<PathBuf>,
        /// For a passphrase file: read the passphrase from the first line of FILE instead of the terminal
        #[arg(long, value_name = "FILE", conflicts_with = "passphrase_fd")]
        passphrase_file: Option<PathBuf>,
        /// For a passphrase file: read the passphrase from the first line of file descriptor N
        #[arg(long, value_name = "N")]
        passphrase_fd: Option<u32>,
        #[command(flatten)]
        passphrase_limit: PassphraseLimitArgs,
        #[command(flatten)]
        policy: PolicyArgs,
        /// Input file (standard input if absent or -)
        input: Option<PathBuf>,
        #[command(flatten)]
        token: tokens::TokenArgs,
    },
    /// Show a file's header without decrypting it
    #[command(
        after_help = "Examples:\n  kapsel inspect secret.kap\n  kapsel inspect --json < secret.kap\n\nExit codes: 0 success, 1 I/O error, 3 not a kapsel file or malformed header"
    )]
    Inspect {
        /// Print JSON for tools
        #[arg(long)]
        json: bool,
        /// Input file (standard input if absent or -)
        input: Option<PathBuf>,
    },
    /// Print a fresh random challenge, for the offline exchange (encrypt --challenge, decrypt --expect-challenge)
    #[command(
        after_help = "Examples:\n  C=$(kapsel challenge)        # the receiver keeps C and gives it to the sender\n  kapsel encrypt --challenge $C -r kapsel1... -o msg.kap file   # the sender\n  kapsel decrypt --expect-challenge $C -i me.key msg.kap        # the receiver: exit 6 unless msg.kap answers C"
    )]
    Challenge,
    /// Receive messages over TCP or standard input/output: challenge, message, receipt
    #[command(after_help = concat!("Examples:\n  kapsel listen 0.0.0.0:7000 -i me.key -o backup.tar\n  kapsel listen 0.0.0.0:7000 -i me.key --keep-going -o inbox/\n  ssh host kapsel listen --stdio -i me.key -o backup.tar   # see kapsel send --help\n\n",
        "Each connection gets a fresh challenge; a message that does not answer it (a replay) is refused.\n",
        "The output is written atomically and the receipt is sent only after it is stored.\n",
        "With --keep-going, -o names a directory and each message gets a new file in it.\n",
        "Without it, the first connection whose message header authenticates takes the one exchange;\n",
        "connections that never get that far are reported and do not count.\n\n",
        "Exit codes (one exchange): those of decrypt; 1 also when the sender closed the connection early"))]
    Listen {
        /// Address to listen on: HOST:PORT, [IPV6]:PORT, :PORT or PORT (every IPv4 interface), or HOST (port 7000); port 0 picks a free port, printed on stderr even with -q
        #[arg(
            value_name = "ADDR",
            required_unless_present = "stdio",
            conflicts_with = "stdio"
        )]
        addr: Option<String>,
        /// Run one exchange over standard input and output (for ssh, socat, inetd)
        #[arg(long)]
        stdio: bool,
        /// Identity file (- for standard input) or pkcs11: URI of a token key; repeatable, each is tried
        #[arg(short = 'i', long = "identity", value_name = "IDENTITY")]
        identities: Vec<PathBuf>,
        #[command(flatten)]
        token: tokens::TokenArgs,
        /// Output file (standard output if absent); with --keep-going, a directory
        #[arg(short, long, value_name = "OUT")]
        output: Option<PathBuf>,
        /// Serve connections until killed (each message to a new file in -o DIR)
        #[arg(long)]
        keep_going: bool,
        /// Connections open at once; one more is closed at once, or takes the slot of one that sent no authenticated header for 2 s
        #[arg(long, value_name = "N", default_value_t = 8)]
        max_connections: usize,
        /// Refuse messages not signed by this sender: a recipient string, an inline PEM public key, or a file of them; repeatable
        #[arg(long, value_name = "SENDER", allow_hyphen_values = true)]
        expect_sender: Vec<String>,
        /// Give up on a silent peer after DURATION (TCP; 0: never, for live streams with long pauses)
        #[arg(long, value_name = "DURATION", default_value = "60s")]
        timeout: String,
        /// Close a connection whose message header has not authenticated DURATION after it connected (0: never)
        #[arg(long, value_name = "DURATION", default_value = "10s")]
        header_timeout: String,
        /// Close a connection that averages fewer bytes per second, counted from the accept after a grace of the longer of --timeout and --header-timeout (512, 4KiB, 1MiB; 0, or --timeout 0: none)
        #[arg(long, value_name = "RATE", default_value = "1KiB")]
        min_rate: String,
        /// Worker threads for the payload (0: all cores; 1: sequential; at most 1024)
        #[arg(long, value_name = "N", default_value_t = 0, value_parser = parse_threads)]
        threads: usize,
    },
    /// Send IN to a kapsel listener: answers its challenge, then checks its receipt
    #[command(after_help = concat!("Examples:\n  kapsel send host:7000 -r kapsel1... backup.tar\n  tar c dir | kapsel send host:7000 -r kapsel1... --sign-as me.key\n\n",
        "Over ssh (a FIFO joins the two directions):\n  mkfifo back\n  kapsel send --stdio -r kapsel1... backup.tar < back \\\n    | ssh host kapsel listen --stdio -i me.key -o backup.tar > back\n\n",
        "Exit codes:\n  0 delivered: the receipt verified\n  1 I/O error, connection lost, or no receipt\n  2 usage error\n  3 the peer is not a kapsel listener\n  5 the receipt does not verify\n  7 the receiver refused the message"))]
    Send {
        /// Receiver address: HOST:PORT, [IPV6]:PORT, or HOST alone for port 7000 (not with --stdio, where the only operand is IN)
        #[arg(value_name = "ADDR", required_unless_present = "stdio")]
        addr: Option<String>,
        /// Run the exchange over standard input and output (IN must then be a file)
        #[arg(long)]
        stdio: bool,
        #[command(flatten)]
        addressing: AddressingArgs,
        /// Give up on a silent receiver after DURATION (TCP; 0: never, for live streams with long pauses)
        #[arg(long, value_name = "DURATION", default_value = "60s")]
        timeout: String,
        /// Worker threads for the payload (0: all cores; 1: sequential; at most 1024)
        #[arg(long, value_name = "N", default_value_t = 0, value_parser = parse_threads)]
        threads: usize,
        /// Input file (standard input if absent or -)
        input: Option<PathBuf>,
    },
    /// Show, check and mend a replay ledger (decrypt --replay-db)
    #[command(after_help = concat!("Examples:\n  kapsel ledger list --replay-db ~/.local/state/kapsel/replay.db\n  kapsel ledger check --json\n  kapsel ledger forget 01ab...\n  kapsel ledger repair --max-age 1d\n\n",
        "The ledger is --replay-db PATH, else $KAPSEL_REPLAY_DB, else <state dir>/replay.db.\n\n",
        "Exit codes: 0 success, 1 error or (check) a problem found, 2 usage error"))]
    Ledger {
        /// The replay ledger (also $KAPSEL_REPLAY_DB; default <state dir>/replay.db)
        #[arg(long, value_name = "PATH", global = true)]
        replay_db: Option<PathBuf>,
        #[command(subcommand)]
        action: LedgerAction,
    },
    /// Write man pages and shell completions (bash, zsh, fish) under DIR
    #[command(hide = true)]
    GenerateAssets {
        /// Directory for man/man1/ and completions/
        dir: PathBuf,
    },
    /// Run the main job on a built-in sample: keygen, encrypt, inspect, decrypt, verify
    #[command(
        after_help = "Examples:\n  kapsel demo        # prints each step and ok; exit 0 when all worked"
    )]
    Demo,
}

/// `kapsel ledger` subcommands.
#[derive(Subcommand, Debug)]
enum LedgerAction {
    /// List the entries (identifier, state, sender, serial, times) and the horizon
    List {
        /// Print JSON for scripts (64-bit numbers as strings)
        #[arg(long)]
        json: bool,
    },
    /// Check integrity: SQLite, schema, file modes, abandoned entries, times in the future
    Check {
        /// Print JSON for scripts
        #[arg(long)]
        json: bool,
        /// Allowed clock skew for times in the future
        #[arg(long, value_name = "DURATION", default_value = "5m")]
        max_skew: String,
    },
    /// Delete one entry: that message can then be accepted once more
    Forget {
        /// The entry's identifier, in hexadecimal, as ledger list shows it
        id: String,
    },
    /// Lower a horizon that lies in the future to now - MAX_AGE - MAX_SKEW
    Repair {
        /// The receiver's --max-age: files older than this are refused anyway
        #[arg(long, value_name = "DURATION")]
        max_age: String,
        /// The receiver's --max-skew
        #[arg(long, value_name = "DURATION", default_value = "5m")]
        max_skew: String,
    },
}

/// Who a message goes to and who signs it: flags shared by `encrypt` and `send`.
#[derive(clap::Args, Debug)]
struct AddressingArgs {
    /// Recipient string (kapsel1...); repeatable
    #[arg(short = 'r', long = "recipient", value_name = "RECIPIENT")]
    recipients: Vec<String>,
    /// Recipients file (- for standard input): recipient strings and PEM public keys, # comments; repeatable
    #[arg(short = 'R', long = "recipients-file", value_name = "FILE")]
    recipient_files: Vec<PathBuf>,
    /// Sign as the sender in IDENTITY (an identity file, or a pkcs11: URI of a token key): receivers can verify who made the message
    #[arg(long, value_name = "IDENTITY")]
    sign_as: Option<PathBuf>,
    /// The module and PIN of a --sign-as pkcs11: key
    #[command(flatten)]
    token: tokens::TokenArgs,
    /// Serial store for --sign-as (also $KAPSEL_SERIAL_DB; default <state dir>/serials.db)
    #[arg(long, value_name = "PATH")]
    serial_db: Option<PathBuf>,
    /// Write zero key hints, so the message does not show who can read it
    #[arg(long)]
    hide_recipients: bool,
    /// Accept P-256 recipients beside post-quantum ones (the file is then not post-quantum)
    #[arg(long)]
    allow_classical: bool,
}

impl AddressingArgs {
    fn as_addressing(&self) -> commands::Addressing<'_> {
        commands::Addressing {
            allow_classical: self.allow_classical,
            recipients: &self.recipients,
            recipient_files: &self.recipient_files,
            hide_recipients: self.hide_recipients,
            sign_as: self.sign_as.as_deref(),
            token_args: &self.token,
            serial_db: self.serial_db.as_deref(),
        }
    }
}

/// The most work a passphrase file may ask of `decrypt` and `verify`.
#[derive(clap::Args, Debug)]
struct PassphraseLimitArgs {
    /// For a passphrase file: most Argon2id memory to spend (default 1GiB); a file asking for more is refused before anything is allocated
    #[arg(long, value_name = "SIZE", value_parser = passphrase::parse_memory)]
    max_passphrase_memory: Option<u32>,
    /// For a passphrase file: most Argon2id passes to run (default 16)
    #[arg(long, value_name = "N")]
    max_passphrase_passes: Option<u32>,
}

impl PassphraseLimitArgs {
    fn limit(&self) -> kapsel_codec::WorkLimit {
        passphrase::work_limit(self.max_passphrase_memory, self.max_passphrase_passes)
    }
}

/// Receiver policy flags shared by `decrypt` and `verify`.
#[derive(clap::Args, Debug)]
struct PolicyArgs {
    /// Refuse files created longer ago than DURATION (90s, 15m, 12h, 7d, 2w)
    #[arg(long, value_name = "DURATION")]
    max_age: Option<String>,
    /// With --max-age or a replay ledger: allowed clock skew for files from the future
    #[arg(long, value_name = "DURATION", default_value = "5m")]
    max_skew: String,
    /// Refuse files not signed by this sender: a recipient string, an inline PEM public key, or a file of them; repeatable
    #[arg(long, value_name = "SENDER", allow_hyphen_values = true)]
    expect_sender: Vec<String>,
    /// Refuse files that do not answer this challenge (from kapsel challenge; see encrypt --challenge)
    #[arg(long, value_name = "CHALLENGE")]
    expect_challenge: Option<String>,
}

/// Most worker threads `--threads` accepts: far more than any machine
/// kapsel runs on has cores, and few enough that starting them is quick
/// (each holds a 2 MiB batch in flight).
const MAX_THREADS: usize = 1024;

fn parse_threads(s: &str) -> Result<usize, String> {
    let n: usize = s
        .parse()
        .map_err(|_| format!("{s:?} is not a number of threads"))?;
    if n > MAX_THREADS {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        return Err(format!(
            "at most {MAX_THREADS} threads (this machine has {cores} cores; 0 uses them all)"
        ));
    }
    Ok(n)
}

fn parse_challenge(s: &str) -> Result<kapsel_codec::exchange::Challenge, error::CliError> {
    s.parse().map_err(error::CliError::usage)
}

/// The senders of `--expect-sender`: recipient strings, inline PEM public
/// keys, or files of them.
fn parse_senders(list: &[String]) -> Result<Vec<kapsel_codec::Recipient>, error::CliError> {
    let mut out = Vec::new();
    for s in list {
        out.extend(keyfiles::parse_sender(s)?);
    }
    Ok(out)
}

/// Refuses a command line on which more than one thing reads standard
/// input: `readers` names each possible reader and how often it does.
fn one_stdin_reader(readers: &[(&str, usize)]) -> Result<(), error::CliError> {
    let mut users = readers
        .iter()
        .flat_map(|&(name, n)| std::iter::repeat_n(name, n));
    if let (Some(a), Some(b)) = (users.next(), users.next()) {
        let message = if a == b {
            format!("standard input is named twice, for {a}")
        } else {
            format!("standard input cannot carry both {a} and {b}")
        };
        return Err(error::CliError::usage(message)
            .with_hint("it can be read only once: name a file for one of them"));
    }
    Ok(())
}

fn stdin_count(paths: &[PathBuf]) -> usize {
    paths.iter().filter(|p| keyfiles::is_stdin(p)).count()
}

fn data_on_stdin(input: Option<&std::path::Path>) -> usize {
    usize::from(input.is_none_or(keyfiles::is_stdin))
}

impl AddressingArgs {
    /// Who reads standard input among these flags.
    fn stdin_readers(&self) -> [(&'static str, usize); 2] {
        [
            ("the recipients (-R -)", stdin_count(&self.recipient_files)),
            (
                "the signing identity (--sign-as -)",
                usize::from(self.sign_as.as_deref().is_some_and(keyfiles::is_stdin)),
            ),
        ]
    }
}

fn parse_duration(s: &str) -> Result<u64, error::CliError> {
    kapsel_cli::duration::parse_seconds(s).map_err(error::CliError::usage)
}

impl PolicyArgs {
    fn into_policy(self, replay_db: Option<PathBuf>) -> Result<policy::Policy, error::CliError> {
        Ok(policy::Policy {
            replay_db,
            max_age: self.max_age.as_deref().map(parse_duration).transpose()?,
            max_skew: parse_duration(&self.max_skew)?,
            expect_senders: parse_senders(&self.expect_sender)?,
            expect_challenge: self
                .expect_challenge
                .as_deref()
                .map(parse_challenge)
                .transpose()?,
        })
    }
}

fn run(cli: Cli) -> Result<(), error::CliError> {
    let progress = !cli.quiet;
    match cli.command {
        Command::Keygen {
            pkcs11: Some(uri),
            token,
            ..
        } => tokens::keygen(&uri, &token),
        Command::Keygen { output, pq, .. } => commands::keygen(output.as_deref(), pq),
        Command::Pubkey {
            file: Some(f),
            token,
        } if f.to_str().is_some_and(kapsel_pkcs11::Pkcs11Uri::is_uri) => {
            tokens::pubkey(f.to_str().unwrap_or_default(), &token)
        }
        Command::Pubkey { file, .. } => commands::pubkey(file.as_deref()),
        Command::Tokens { keys, uri, token } => tokens::list(uri.as_deref(), keys, &token),
        Command::Export { private, file } => commands::export(file.as_deref(), private),
        Command::Encrypt {
            addressing,
            passphrase,
            passphrase_file,
            passphrase_fd,
            passphrase_memory,
            passphrase_passes,
            armor,
            challenge,
            threads,
            output,
            input,
        } => {
            let [r, sign] = addressing.stdin_readers();
            one_stdin_reader(&[
                r,
                sign,
                ("the data to encrypt", data_on_stdin(input.as_deref())),
            ])?;
            commands::encrypt(commands::EncryptArgs {
                addressing: addressing.as_addressing(),
                passphrase: passphrase.then_some(passphrase::Source {
                    file: passphrase_file,
                    fd: passphrase_fd,
                    ..Default::default()
                }),
                passphrase_cost: passphrase::encrypt_cost(passphrase_memory, passphrase_passes)?,
                armor,
                challenge: challenge.as_deref().map(parse_challenge).transpose()?,
                threads,
                progress,
                output: output.as_deref(),
                input: input.as_deref(),
            })
        }
        Command::Decrypt {
            identities,
            passphrase_file,
            passphrase_fd,
            passphrase_limit,
            output,
            policy,
            replay_db,
            threads,
            offset,
            length,
            inputs,
            token,
        } => {
            let input = inputs.first().filter(|_| inputs.len() == 1).cloned();
            one_stdin_reader(&[
                ("the identities (-i -)", stdin_count(&identities)),
                (
                    "the data to decrypt",
                    if inputs.is_empty() {
                        1
                    } else {
                        stdin_count(&inputs)
                    },
                ),
            ])?;
            let args = commands::DecryptArgs {
                policy: policy.into_policy(policy::replay_db_path(replay_db)?)?,
                discard_output: false,
                threads,
                identity_files: &identities,
                identities: None,
                token_args: &token,
                passphrase: passphrase::Source {
                    file: passphrase_file,
                    fd: passphrase_fd,
                    ..Default::default()
                },
                passphrase_limit: passphrase_limit.limit(),
                progress,
                output: output.as_deref(),
                input: input.as_deref(),
                offset,
                length,
            };
            if inputs.len() > 1 {
                commands::decrypt_many(args, &inputs)
            } else {
                commands::decrypt(args).map_err(|e| e.about_input(input.as_deref()))
            }
        }
        Command::Verify {
            identities,
            passphrase_file,
            passphrase_fd,
            passphrase_limit,
            policy,
            input,
            token,
        } => {
            one_stdin_reader(&[
                ("the identities (-i -)", stdin_count(&identities)),
                ("the data to verify", data_on_stdin(input.as_deref())),
            ])?;
            commands::decrypt(commands::DecryptArgs {
                policy: policy.into_policy(None)?,
                discard_output: true,
                threads: 0,
                identity_files: &identities,
                identities: None,
                token_args: &token,
                passphrase: passphrase::Source {
                    file: passphrase_file,
                    fd: passphrase_fd,
                    ..Default::default()
                },
                passphrase_limit: passphrase_limit.limit(),
                progress,
                output: None,
                input: input.as_deref(),
                offset: None,
                length: None,
            })
            .map_err(|e| e.about_input(input.as_deref()))
        }
        Command::Inspect { json, input } => {
            inspect::run(files::Input::open(input.as_deref())?, json)
                .map_err(|e| e.about_input(input.as_deref()))
        }
        Command::Challenge => exchange::challenge(),
        Command::Listen {
            addr,
            stdio,
            identities,
            token,
            output,
            keep_going,
            max_connections,
            expect_sender,
            timeout,
            header_timeout,
            min_rate,
            threads,
        } => {
            one_stdin_reader(&[
                ("the identities (-i -)", stdin_count(&identities)),
                ("the exchange (--stdio)", usize::from(stdio)),
            ])?;
            exchange::listen(exchange::ListenArgs {
                addr: addr.as_deref(),
                stdio,
                identity_files: &identities,
                token_args: &token,
                output: output.as_deref(),
                keep_going,
                max_connections,
                policy: policy::Policy {
                    expect_senders: parse_senders(&expect_sender)?,
                    ..policy::Policy::default()
                },
                threads,
                timeout: std::time::Duration::from_secs(parse_duration(&timeout)?),
                header_timeout: std::time::Duration::from_secs(parse_duration(&header_timeout)?),
                min_rate: service::parse_rate(&min_rate).map_err(error::CliError::usage)?,
                progress,
            })
        }
        Command::Send {
            addr,
            stdio,
            addressing,
            timeout,
            threads,
            input,
        } => {
            let [r, sign] = addressing.stdin_readers();
            // With --stdio, standard input carries the exchange (and IN
            // must be a file); without it, IN absent or - is standard input.
            let data = if stdio {
                1
            } else {
                data_on_stdin(input.as_deref())
            };
            one_stdin_reader(&[r, sign, ("the data to send", data)])?;
            exchange::send(exchange::SendArgs {
            // With --stdio there is no address: the one operand is IN.
            addr: if stdio { None } else { addr.as_deref() },
            input: match (stdio, &addr, &input) {
                (true, Some(_), Some(_)) => {
                    return Err(error::CliError::usage("--stdio takes no address").with_hint(
                        "kapsel send --stdio -r RECIPIENT FILE (standard input and output carry the exchange)",
                    ))
                }
                (true, Some(a), None) => Some(std::path::Path::new(a.as_str())),
                _ => input.as_deref(),
            },
            stdio,
            addressing: addressing.as_addressing(),
            threads,
            timeout: std::time::Duration::from_secs(parse_duration(&timeout)?),
            progress,
        })
        }
        Command::Demo => demo::run(),
        Command::GenerateAssets { dir } => assets::generate(Cli::command(), &dir),
        Command::Ledger { replay_db, action } => ledger_cmd::run(
            replay_db,
            match action {
                LedgerAction::List { json } => ledger_cmd::Action::List { json },
                LedgerAction::Check { json, max_skew } => ledger_cmd::Action::Check {
                    json,
                    max_skew: parse_duration(&max_skew)?,
                },
                LedgerAction::Forget { id } => ledger_cmd::Action::Forget { id },
                LedgerAction::Repair { max_age, max_skew } => ledger_cmd::Action::Repair {
                    max_age: parse_duration(&max_age)?,
                    max_skew: parse_duration(&max_skew)?,
                },
            },
        ),
    }
}

/// Prints a clap error in kapsel's style: `kapsel: error: ...`, then each
/// tip and the usage line as `kapsel: hint: ...`; help and version go to
/// standard output with exit 0. Usage errors keep clap's exit code 2.
fn report_clap_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            errln!("kapsel: error: no command given");
            errln!(
                "kapsel: hint: usage: kapsel [OPTIONS] <COMMAND>; kapsel --help lists the commands"
            );
            return ExitCode::from(2);
        }
        _ => {}
    }
    let text = e.render().to_string();
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    let mut message = lines
        .next()
        .map(|l| l.strip_prefix("error: ").unwrap_or(l).to_string())
        .unwrap_or_else(|| "invalid command line".into());
    let mut hints = Vec::new();
    for line in lines {
        if let Some(tip) = line.strip_prefix("tip: ") {
            hints.push(tip.to_string());
        } else if let Some(usage) = line.strip_prefix("Usage: ") {
            hints.push(format!("usage: {usage}"));
        } else if line.starts_with("For more information") {
            hints.push(lower_first(line).trim_end_matches('.').to_string());
        } else if hints.is_empty() {
            // A continuation of the message (the missing arguments).
            message = format!("{message} {line}");
        } else {
            hints.push(line.to_string());
        }
    }
    errln!("kapsel: error: {message}");
    for hint in hints {
        errln!("kapsel: hint: {hint}");
    }
    ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2))
}

fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(first) => first.to_lowercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

fn main() -> ExitCode {
    // The FIPS build refuses to run unless the AWS-LC module is in FIPS mode.
    if let Err(e) = kapsel_codec::backend::check() {
        errln!("kapsel: error: {e}");
        return ExitCode::from(1);
    }
    let version = format!(
        "{} ({})",
        env!("CARGO_PKG_VERSION"),
        kapsel_codec::backend::description()
    );
    let parsed = <Cli as clap::CommandFactory>::command()
        .version(&*Box::leak(version.into_boxed_str()))
        .try_get_matches()
        .and_then(|matches| <Cli as clap::FromArgMatches>::from_arg_matches(&matches));
    let cli = match parsed {
        Ok(cli) => cli,
        Err(e) => return report_clap_error(e),
    };
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            e.report();
            ExitCode::from(e.exit as u8)
        }
    }
}
