//! The `kapsel` command-line tool. Owns all terminal output, argument
//! parsing and exit codes; the format and the cryptography live in
//! `kapsel-format` and `kapsel-codec`.
#![forbid(unsafe_code)]

mod commands;
mod demo;
mod error;
mod exchange;
mod files;
mod inspect;
mod keyfiles;
mod policy;
mod progress;
mod time;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  I/O or other error
  2  usage error
  3  not a kapsel file, malformed header, or unsupported version
  4  no identity matches any recipient
  5  authentication failed: header, payload tag, truncated or trailing data,
     or an invalid sender signature
  6  refused by policy: replay, too old, from the future, not from the expected sender,
     or not answering the expected challenge
  7  send: the receiver refused the message
  8  the message is being received by another process right now; retry later";

#[derive(Parser, Debug)]
#[command(name = "kapsel", version, about = "Hybrid encryption for streams and archives (P-256 HPKE + Cobblestone-256)",
    after_help = EXIT_CODES)]
struct Cli {
    /// No progress line on stderr (it is shown only on a terminal anyway)
    #[arg(short, long, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Make a new P-256 identity (private key)
    #[command(after_help = concat!("Examples:\n  kapsel keygen -o me.key     # writes me.key (mode 0600), prints the recipient\n  kapsel keygen > me.key\n\n", "Exit codes: 0 success, 1 error (for example FILE exists), 2 usage error"))]
    Keygen {
        /// Write the identity to FILE (refuses to overwrite) and print its recipient
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Print the recipient (public key) of each identity in FILE or standard input
    #[command(after_help = "Examples:\n  kapsel pubkey me.key\n  kapsel keygen | kapsel pubkey")]
    Pubkey {
        /// Identity file (standard input if absent)
        file: Option<PathBuf>,
    },
    /// Print the keys of an identity file as PEM (public SPKI, or private PKCS#8)
    #[command(
        after_help = "Examples:\n  kapsel export me.key > me.pub.pem            # for openssl and for encrypt -R\n  kapsel export --private me.key > me.pem      # PKCS#8, readable by openssl pkey"
    )]
    Export {
        /// Print the private key (PKCS#8 PEM) instead of the public key
        #[arg(long)]
        private: bool,
        /// Identity file (standard input if absent)
        file: Option<PathBuf>,
    },
    /// Encrypt IN (or standard input) to one or more recipients
    #[command(after_help = concat!("Examples:\n  kapsel encrypt -r kapsel1... -o secret.kap notes.txt\n  tar c dir | kapsel encrypt -R team.txt | ssh host 'cat > dir.tar.kap'\n\n",
        "Exit codes:\n  0 success, 1 I/O error, 2 usage error (bad recipient, binary output to a terminal)"))]
    Encrypt {
        #[command(flatten)]
        addressing: AddressingArgs,
        /// Write PEM-style ASCII armor (Base64) instead of binary
        #[arg(short, long)]
        armor: bool,
        /// Answer a receiver's challenge (from kapsel challenge): the receiver checks it with decrypt --expect-challenge
        #[arg(long, value_name = "CHALLENGE")]
        challenge: Option<String>,
        /// Worker threads for the payload (0: all cores; 1: sequential)
        #[arg(long, value_name = "N", default_value_t = 0)]
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
        "a non-zero exit status means the output is incomplete or not trustworthy.\n\n", "Exit codes:\n  0 success\n  1 I/O or other error\n  2 usage error\n  3 not a kapsel file, malformed header, or unsupported version\n  4 no identity matches any recipient\n  5 authentication failed: header, payload tag, truncated or trailing data\n  6 refused by policy (replay, freshness, sender, challenge)\n  8 the message is being received by another process right now; retry later"))]
    Decrypt {
        /// Identity file; repeatable, each is tried
        #[arg(short = 'i', long = "identity", value_name = "IDENTITY")]
        identities: Vec<PathBuf>,
        /// Output file (standard output if absent); replaced only on success
        #[arg(short, long, value_name = "OUT")]
        output: Option<PathBuf>,
        #[command(flatten)]
        policy: PolicyArgs,
        /// Replay ledger: refuse messages already accepted (also $KAPSEL_REPLAY_DB; "default" = <state dir>/replay.db)
        #[arg(long, value_name = "PATH")]
        replay_db: Option<PathBuf>,
        /// Worker threads for the payload (0: all cores; 1: sequential)
        #[arg(long, value_name = "N", default_value_t = 0)]
        threads: usize,
        /// Decrypt only from plaintext byte N on (needs an input file; decrypts only the chunks the range touches)
        #[arg(long, value_name = "N")]
        offset: Option<u64>,
        /// Decrypt at most M plaintext bytes (from --offset, default 0); a range past the end is clipped
        #[arg(long, value_name = "M")]
        length: Option<u64>,
        /// Input file (standard input if absent or -)
        input: Option<PathBuf>,
    },
    /// Check a file completely (header, sender signature, every chunk) without writing plaintext
    #[command(after_help = concat!("Examples:\n  kapsel verify -i me.key backup.kap\n  kapsel verify -i me.key --expect-sender kapsel1... --max-age 1d report.kap\n\n",
        "Nothing is recorded in a replay ledger. Exit codes are those of decrypt."))]
    Verify {
        /// Identity file; repeatable, each is tried
        #[arg(short = 'i', long = "identity", value_name = "IDENTITY")]
        identities: Vec<PathBuf>,
        #[command(flatten)]
        policy: PolicyArgs,
        /// Input file (standard input if absent or -)
        input: Option<PathBuf>,
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
        "With --keep-going, -o names a directory and each message gets a new file in it.\n\n",
        "Exit codes (one exchange): those of decrypt; 1 also when the sender closed the connection early"))]
    Listen {
        /// Address to listen on, HOST:PORT (port 0: any free port, printed on stderr)
        #[arg(
            value_name = "ADDR",
            required_unless_present = "stdio",
            conflicts_with = "stdio"
        )]
        addr: Option<String>,
        /// Run one exchange over standard input and output (for ssh, socat, inetd)
        #[arg(long)]
        stdio: bool,
        /// Identity file; repeatable, each is tried
        #[arg(short = 'i', long = "identity", value_name = "IDENTITY")]
        identities: Vec<PathBuf>,
        /// Output file (standard output if absent); with --keep-going, a directory
        #[arg(short, long, value_name = "OUT")]
        output: Option<PathBuf>,
        /// Serve connections until killed (each message to a new file in -o DIR)
        #[arg(long)]
        keep_going: bool,
        /// With --keep-going: connections served at once
        #[arg(long, value_name = "N", default_value_t = 8)]
        max_connections: usize,
        /// Refuse messages not signed by this sender (recipient string); repeatable
        #[arg(long, value_name = "RECIPIENT")]
        expect_sender: Vec<String>,
        /// Give up on a silent peer after DURATION (TCP; 0: never, for live streams with long pauses)
        #[arg(long, value_name = "DURATION", default_value = "60s")]
        timeout: String,
        /// Worker threads for the payload (0: all cores; 1: sequential)
        #[arg(long, value_name = "N", default_value_t = 0)]
        threads: usize,
    },
    /// Send IN to a kapsel listener: answers its challenge, then checks its receipt
    #[command(after_help = concat!("Examples:\n  kapsel send host:7000 -r kapsel1... backup.tar\n  tar c dir | kapsel send host:7000 -r kapsel1... --sign-as me.key\n\n",
        "Over ssh (a FIFO joins the two directions):\n  mkfifo back\n  kapsel send --stdio -r kapsel1... backup.tar < back \\\n    | ssh host kapsel listen --stdio -i me.key -o backup.tar > back\n\n",
        "Exit codes:\n  0 delivered: the receipt verified\n  1 I/O error, connection lost, or no receipt\n  2 usage error\n  3 the peer is not a kapsel listener\n  5 the receipt does not verify\n  7 the receiver refused the message"))]
    Send {
        /// Receiver address, HOST:PORT (not with --stdio, where the only operand is IN)
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
        /// Worker threads for the payload (0: all cores; 1: sequential)
        #[arg(long, value_name = "N", default_value_t = 0)]
        threads: usize,
        /// Input file (standard input if absent or -)
        input: Option<PathBuf>,
    },
    /// Run the main job on a built-in sample: keygen, encrypt, inspect, decrypt, verify
    #[command(
        after_help = "Examples:\n  kapsel demo        # prints each step and ok; exit 0 when all worked"
    )]
    Demo,
}

/// Who a message goes to and who signs it: flags shared by `encrypt` and `send`.
#[derive(clap::Args, Debug)]
struct AddressingArgs {
    /// Recipient string (kapsel1...); repeatable
    #[arg(short = 'r', long = "recipient", value_name = "RECIPIENT")]
    recipients: Vec<String>,
    /// File of recipient strings, one per line, # comments; repeatable
    #[arg(short = 'R', long = "recipients-file", value_name = "FILE")]
    recipient_files: Vec<PathBuf>,
    /// Sign as the sender in IDENTITY: receivers can verify who made the message
    #[arg(long, value_name = "IDENTITY")]
    sign_as: Option<PathBuf>,
    /// Serial store for --sign-as (also $KAPSEL_SERIAL_DB; default <state dir>/serials.db)
    #[arg(long, value_name = "PATH")]
    serial_db: Option<PathBuf>,
    /// Write zero key hints, so the message does not show who can read it
    #[arg(long)]
    hide_recipients: bool,
}

impl AddressingArgs {
    fn as_addressing(&self) -> commands::Addressing<'_> {
        commands::Addressing {
            recipients: &self.recipients,
            recipient_files: &self.recipient_files,
            hide_recipients: self.hide_recipients,
            sign_as: self.sign_as.as_deref(),
            serial_db: self.serial_db.as_deref(),
        }
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
    /// Refuse files not signed by this sender (recipient string); repeatable
    #[arg(long, value_name = "RECIPIENT")]
    expect_sender: Vec<String>,
    /// Refuse files that do not answer this challenge (from kapsel challenge; see encrypt --challenge)
    #[arg(long, value_name = "CHALLENGE")]
    expect_challenge: Option<String>,
}

fn parse_challenge(s: &str) -> Result<kapsel_codec::exchange::Challenge, error::CliError> {
    s.parse().map_err(error::CliError::usage)
}

fn parse_recipients(list: &[String]) -> Result<Vec<kapsel_codec::Recipient>, error::CliError> {
    list.iter().map(|s| keyfiles::parse_recipient(s)).collect()
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
            expect_senders: parse_recipients(&self.expect_sender)?,
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
        Command::Keygen { output } => commands::keygen(output.as_deref()),
        Command::Pubkey { file } => commands::pubkey(file.as_deref()),
        Command::Export { private, file } => commands::export(file.as_deref(), private),
        Command::Encrypt {
            addressing,
            armor,
            challenge,
            threads,
            output,
            input,
        } => commands::encrypt(commands::EncryptArgs {
            addressing: addressing.as_addressing(),
            armor,
            challenge: challenge.as_deref().map(parse_challenge).transpose()?,
            threads,
            progress,
            output: output.as_deref(),
            input: input.as_deref(),
        }),
        Command::Decrypt {
            identities,
            output,
            policy,
            replay_db,
            threads,
            offset,
            length,
            input,
        } => commands::decrypt(commands::DecryptArgs {
            policy: policy.into_policy(policy::replay_db_path(replay_db)?)?,
            discard_output: false,
            threads,
            identity_files: &identities,
            progress,
            output: output.as_deref(),
            input: input.as_deref(),
            offset,
            length,
        }),
        Command::Verify {
            identities,
            policy,
            input,
        } => commands::decrypt(commands::DecryptArgs {
            policy: policy.into_policy(None)?,
            discard_output: true,
            threads: 0,
            identity_files: &identities,
            progress,
            output: None,
            input: input.as_deref(),
            offset: None,
            length: None,
        }),
        Command::Inspect { json, input } => {
            inspect::run(files::Input::open(input.as_deref())?, json)
        }
        Command::Challenge => exchange::challenge(),
        Command::Listen {
            addr,
            stdio,
            identities,
            output,
            keep_going,
            max_connections,
            expect_sender,
            timeout,
            threads,
        } => exchange::listen(exchange::ListenArgs {
            addr: addr.as_deref(),
            stdio,
            identity_files: &identities,
            output: output.as_deref(),
            keep_going,
            max_connections,
            policy: policy::Policy {
                expect_senders: parse_recipients(&expect_sender)?,
                ..policy::Policy::default()
            },
            threads,
            timeout: std::time::Duration::from_secs(parse_duration(&timeout)?),
            progress,
        }),
        Command::Send {
            addr,
            stdio,
            addressing,
            timeout,
            threads,
            input,
        } => exchange::send(exchange::SendArgs {
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
        }),
        Command::Demo => demo::run(),
    }
}

fn main() -> ExitCode {
    // The FIPS build refuses to run unless the AWS-LC module is in FIPS mode.
    if let Err(e) = kapsel_codec::backend::check() {
        eprintln!("kapsel: error: {e}");
        return ExitCode::from(1);
    }
    let version = format!(
        "{} ({})",
        env!("CARGO_PKG_VERSION"),
        kapsel_codec::backend::description()
    );
    let matches = <Cli as clap::CommandFactory>::command()
        .version(&*Box::leak(version.into_boxed_str()))
        .get_matches();
    let cli =
        <Cli as clap::FromArgMatches>::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            e.report();
            ExitCode::from(e.exit as u8)
        }
    }
}
