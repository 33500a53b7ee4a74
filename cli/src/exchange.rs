//! `kapsel challenge`, `listen` and `send`: the live exchange of SPEC.md
//! section 13 (challenge, message, receipt) over TCP or a pipe pair
//! (`--stdio`).
//!
//! Invariants:
//! - The receiver writes plaintext under `-o` only through an atomic
//!   [`Output`]: a message that does not reach its end marker, verify
//!   completely, answer this connection's challenge and pass the policy never
//!   appears under the target name.
//! - The receiver sends its receipt only after the output was committed
//!   (synced and renamed), so a receipt means the message is stored.
//! - `send` exits 0 only after a receipt that verifies under the file key.
//! - Each connection's reads and writes time out after `--timeout` (TCP; 0
//!   for never, for live streams with long pauses);
//!   `--keep-going` serves at most `--max-connections` at once.

use std::io::{self, BufWriter, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream, ToSocketAddrs};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use kapsel_codec::exchange::{
    self, exchange_error_of, Challenge, ExchangeError, FrameReader, FrameWriter, Reply, TailReader,
    TailWriter,
};
use kapsel_codec::CopyError;
use kapsel_codec::{Decryptor, Identity};

use crate::commands::{self, Addressing};
use crate::error::{CliError, Exit};
use crate::files::{LiveInput, Output};
use crate::keyfiles;
use crate::policy::Policy;

/// How long a refusing receiver keeps reading the rest of the message, so
/// the sender can finish writing and read the refusal.
const DRAIN_FOR: Duration = Duration::from_secs(2);
/// At most this many message bytes are drained after a refusal.
const DRAIN_AT_MOST: u64 = 64 << 20;
/// The sender's buffer in front of the framing (large writes pass
/// through it unbuffered).
const SEND_BUFFER: usize = 64 << 10;

/// `kapsel challenge`: prints a fresh challenge for the offline exchange.
pub fn challenge() -> Result<(), CliError> {
    outln!("{}", Challenge::generate())
}

/// One side's connection: a reader and a writer over the same exchange.
struct Connection {
    reader: Box<dyn Read + Send>,
    writer: Box<dyn Write + Send>,
    /// The TCP socket, for shutting down and timeouts; `None` on stdio.
    tcp: Option<TcpStream>,
    /// For messages: the peer address, or "standard input/output".
    peer: String,
}

impl Connection {
    fn stdio() -> Self {
        Connection {
            reader: Box::new(io::stdin()),
            writer: Box::new(io::stdout()),
            tcp: None,
            peer: "standard input/output".into(),
        }
    }

    fn tcp(stream: TcpStream, timeout: Duration) -> io::Result<Self> {
        let peer = stream
            .peer_addr()
            .map_or_else(|_| "peer".into(), |a| a.to_string());
        stream.set_nodelay(true)?;
        stream.set_read_timeout(limit(timeout))?;
        stream.set_write_timeout(limit(timeout))?;
        Ok(Connection {
            reader: Box::new(stream.try_clone()?),
            writer: Box::new(stream.try_clone()?),
            tcp: Some(stream),
            peer,
        })
    }
}

/// A socket timeout: `--timeout 0` means none.
fn limit(timeout: Duration) -> Option<Duration> {
    (!timeout.is_zero()).then_some(timeout)
}

/// A network or exchange error with the peer, as one clear line, prefixed
/// with `peer` unless it is empty.
fn peer_error(peer: &str, what: &str, e: &io::Error, timeout: Duration) -> CliError {
    let peer = if peer.is_empty() {
        String::new()
    } else {
        format!("{peer}: ")
    };
    match exchange_error_of(e) {
        Some(ExchangeError::NotExchange) => CliError::new(Exit::BadHeader, format!("{peer}{e}"))
            .with_hint("the address is not a kapsel listen endpoint"),
        Some(other) => CliError::other(format!("{peer}{other}")),
        None if matches!(
            e.kind(),
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
        ) =>
        {
            CliError::other(format!(
                "{peer}timed out {what} (no progress for {} s)",
                timeout.as_secs()
            ))
            .with_hint("raise --timeout if the peer is slow")
        }
        None => CliError::io(
            format!("{peer}{what}"),
            io::Error::new(e.kind(), e.to_string()),
        ),
    }
}

// ---------------------------------------------------------------------------
// send

pub struct SendArgs<'a> {
    pub addr: Option<&'a str>,
    pub stdio: bool,
    pub addressing: Addressing<'a>,
    pub threads: usize,
    pub timeout: Duration,
    pub progress: bool,
    pub input: Option<&'a Path>,
}

/// `kapsel send`: connects, answers the receiver's challenge with the
/// encrypted input, and checks the receipt.
pub fn send(args: SendArgs<'_>) -> Result<(), CliError> {
    let encryptor = commands::build_encryptor(&args.addressing)?;
    if args.stdio && args.input.is_none_or(|p| p == Path::new("-")) {
        return Err(CliError::usage(
            "--stdio needs an input file: standard input carries the exchange",
        )
        .with_hint("kapsel send --stdio -r RECIPIENT FILE"));
    }
    let mut input = commands::open_with_progress(args.input, "sending", args.progress)?;
    let mut conn = match (args.stdio, args.addr) {
        (true, None) => Connection::stdio(),
        (false, Some(addr)) => connect(addr, args.timeout)?,
        _ => {
            return Err(CliError::usage("give either ADDR or --stdio")
                .with_hint("kapsel send HOST:PORT -r RECIPIENT FILE, or kapsel send --stdio ..."))
        }
    };
    let peer = conn.peer.clone();
    let timeout = args.timeout;
    let challenge = exchange::read_hello(&mut conn.reader)
        .map_err(|e| peer_error(&peer, "waiting for the challenge", &e, timeout))?;

    // Message bytes pass the tail watcher, then the framing, then the
    // transport; the writer stays ours so that a failed input can still be
    // answered with the abort marker.
    let mut framed = TailWriter::new(BufWriter::with_capacity(
        SEND_BUFFER,
        FrameWriter::new(conn.writer),
    ));
    let file = encryptor
        .challenge(challenge)
        .wrap_output(&mut framed)
        .map_err(|e| CliError::other(format!("{peer}: sending: {e}")))?;
    let Some(receipt_key) = file.receipt_key().cloned() else {
        return Err(CliError::other(
            "internal error: no receipt key for a challenged message",
        ));
    };
    let copied = match &input.live {
        Some(live) => file.encrypt_live_from(&mut input.reader, args.threads, &mut || live.ready()),
        None => file.encrypt_from(&mut input.reader, args.threads),
    }
    .map(drop);
    let lost = |reader: &mut Box<dyn Read + Send>, e: &io::Error| {
        after_lost_connection(reader, conn.tcp.as_ref(), &peer, e, timeout)
    };
    match copied {
        Ok(()) => {}
        Err(CopyError::Input(e)) => {
            // Tell the receiver to discard what it has (best effort).
            if let Ok(frames) = framed.into_inner().into_inner() {
                let _ = frames.abort();
            }
            return Err(CliError::io(format!("cannot read {}", input.name), e)
                .with_hint("the message was abandoned; the receiver keeps nothing"));
        }
        Err(CopyError::Output(e) | CopyError::Refused(e)) => {
            return Err(lost(&mut conn.reader, &e))
        }
        Err(e) => return Err(lost(&mut conn.reader, &e.into())),
    }
    let tail = framed.tail();
    let sent = framed
        .into_inner()
        .into_inner()
        .map_err(|e| e.into_error())
        .and_then(FrameWriter::finish);
    if let Err(e) = sent {
        return Err(lost(&mut conn.reader, &e));
    }
    match exchange::read_reply(&mut conn.reader) {
        Ok(Reply::Accepted(receipt)) if receipt_key.verify(&tail, &receipt) => {
            if args.progress {
                errln!(
                    "kapsel: {peer}: delivered a {}-byte message; receipt verified",
                    tail.len()
                );
            }
            Ok(())
        }
        Ok(Reply::Accepted(_)) => Err(CliError::new(
            Exit::AuthFailed,
            format!("{peer}: the receipt does not verify: delivery of this message is not proven"),
        )
        .with_hint("the receiver did not prove it read this message in this session (a forged or replayed receipt)")),
        Ok(Reply::Refused(status)) => Err(refused(&peer, status)),
        Err(e) => Err(peer_error(&peer, "waiting for the receipt", &e, timeout)),
    }
}

/// The port `send` connects to and `listen` binds when an address names
/// none (the port of the README's examples).
pub const DEFAULT_PORT: u16 = 7000;

/// `send`'s address as `HOST:PORT`: `HOST:PORT`, `[IPV6]:PORT`, or a host
/// alone (`host`, `192.0.2.1`, `[::1]`, `::1`), which gets [`DEFAULT_PORT`].
pub fn send_address(addr: &str) -> Result<String, CliError> {
    with_port(addr, addr)
}

/// `listen`'s address as `HOST:PORT`: the forms of [`send_address`], and
/// `:PORT` or `PORT` alone for every IPv4 interface (`0.0.0.0`; give
/// `[::]:PORT` for IPv6).
pub fn listen_address(addr: &str) -> Result<String, CliError> {
    if let Some(port) = addr.strip_prefix(':').filter(|p| !p.contains(':')) {
        return Ok(format!("0.0.0.0:{}", parse_port(port, addr)?));
    }
    if !addr.is_empty() && addr.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(format!("0.0.0.0:{}", parse_port(addr, addr)?));
    }
    with_port(addr, addr)
}

fn with_port(addr: &str, given: &str) -> Result<String, CliError> {
    let bad = || {
        CliError::usage(format!("invalid address {given:?}")).with_hint(format!(
            "give HOST:PORT, [IPV6]:PORT or HOST alone (port {DEFAULT_PORT})"
        ))
    };
    if let Some(rest) = addr.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or_else(bad)?;
        if host.is_empty() {
            return Err(bad());
        }
        return match after {
            "" => Ok(format!("[{host}]:{DEFAULT_PORT}")),
            _ => match after.strip_prefix(':') {
                Some(port) => Ok(format!("[{host}]:{}", parse_port(port, given)?)),
                None => Err(bad()),
            },
        };
    }
    match addr.matches(':').count() {
        0 if !addr.is_empty() => Ok(format!("{addr}:{DEFAULT_PORT}")),
        1 => {
            let (host, port) = addr.split_once(':').ok_or_else(bad)?;
            if host.is_empty() {
                return Err(bad());
            }
            Ok(format!("{host}:{}", parse_port(port, given)?))
        }
        // A bare IPv6 address: no port can be told apart from it.
        _ if addr.parse::<std::net::Ipv6Addr>().is_ok() => Ok(format!("[{addr}]:{DEFAULT_PORT}")),
        _ => Err(bad()),
    }
}

fn parse_port(port: &str, given: &str) -> Result<u16, CliError> {
    port.parse::<u16>().map_err(|_| {
        CliError::usage(format!("invalid port {port:?} in address {given:?}"))
            .with_hint("a port is a number from 0 to 65535")
    })
}

fn connect(addr: &str, timeout: Duration) -> Result<Connection, CliError> {
    let addr = &send_address(addr)?;
    let addrs = addr
        .to_socket_addrs()
        .map_err(|e| CliError::io(format!("cannot resolve {addr}"), e))?;
    let mut last = None;
    for a in addrs {
        let attempt = match limit(timeout) {
            Some(t) => TcpStream::connect_timeout(&a, t),
            None => TcpStream::connect(a),
        };
        match attempt {
            Ok(stream) => {
                return Connection::tcp(stream, timeout)
                    .map_err(|e| CliError::io(format!("cannot connect to {addr}"), e))
            }
            Err(e) => last = Some(e),
        }
    }
    Err(match last {
        Some(e) => CliError::io(format!("cannot connect to {addr}"), e),
        None => CliError::usage(format!("{addr} resolves to no address")),
    })
}

/// A write to the receiver failed: it closed the connection, maybe after a
/// refusal, which is read if it arrived.
fn after_lost_connection(
    reader: &mut dyn Read,
    tcp: Option<&TcpStream>,
    peer: &str,
    e: &io::Error,
    timeout: Duration,
) -> CliError {
    if let Some(s) = tcp {
        let _ = s.set_read_timeout(Some(DRAIN_FOR));
    }
    match exchange::read_reply(reader) {
        Ok(Reply::Refused(status)) => refused(peer, status),
        _ => peer_error(peer, "sending", e, timeout)
            .with_hint("the receiver closed the connection; nothing was delivered"),
    }
}

/// The receiver's refusal, by the status it sent (its exit code).
fn refused(peer: &str, status: u8) -> CliError {
    let why = match status {
        1 => "the receiver failed (input/output or storage error)",
        3 => "the receiver found no valid kapsel message",
        4 => "none of the receiver's identities is a recipient",
        5 => "authentication failed at the receiver",
        6 => "refused by the receiver's policy (challenge or expected sender)",
        _ => "refused by the receiver",
    };
    CliError::new(
        Exit::PeerRefused,
        format!("{peer}: {why} (status {status}); nothing was delivered"),
    )
}

// ---------------------------------------------------------------------------
// listen

pub struct ListenArgs<'a> {
    pub addr: Option<&'a str>,
    pub stdio: bool,
    pub identity_files: &'a [PathBuf],
    pub output: Option<&'a Path>,
    pub keep_going: bool,
    pub max_connections: usize,
    pub policy: Policy,
    pub threads: usize,
    pub timeout: Duration,
    pub progress: bool,
}

/// What every connection of a listener shares.
struct Receiver {
    identities: Vec<Identity>,
    policy: Policy,
    threads: usize,
    timeout: Duration,
    progress: bool,
}

/// Where a received message goes.
enum Target<'a> {
    /// `-o FILE`, or standard output when `None`.
    Path(Option<&'a Path>),
    /// `--keep-going -o DIR`: a new file per message.
    Directory(&'a Path),
}

/// `kapsel listen`: receives messages, each bound to a fresh challenge and
/// answered with a receipt.
pub fn listen(args: ListenArgs<'_>) -> Result<(), CliError> {
    let identities = keyfiles::read_identity_files(args.identity_files)?;
    let output = args.output.filter(|p| *p != Path::new("-"));
    if args.stdio && output.is_none() {
        return Err(CliError::usage(
            "--stdio needs -o FILE: standard output carries the exchange",
        ));
    }
    let receiver = Arc::new(Receiver {
        identities,
        policy: args.policy,
        threads: args.threads,
        timeout: args.timeout,
        progress: args.progress,
    });
    match (args.stdio, args.addr) {
        (true, None) if !args.keep_going => {
            serve(Connection::stdio(), &receiver, &Target::Path(output)).map(drop)
        }
        (true, None) => Err(CliError::usage(
            "--keep-going needs a TCP address, not --stdio",
        )),
        (false, Some(addr)) => {
            let addr = &listen_address(addr)?;
            let listener = TcpListener::bind(addr)
                .map_err(|e| CliError::io(format!("cannot listen on {addr}"), e))?;
            if let Ok(local) = listener.local_addr() {
                // A port chosen by the system (port 0) is needed to connect
                // at all, so -q does not hide it; stdout may carry plaintext.
                let chosen = addr.ends_with(":0");
                if args.progress || chosen {
                    errln!("kapsel: listening on {local}");
                }
            }
            if args.keep_going {
                let dir = output.ok_or_else(|| {
                    CliError::usage("--keep-going needs -o DIR, a directory for the messages")
                })?;
                if !dir.is_dir() {
                    return Err(CliError::usage(format!("{} is not a directory", dir.display()))
                        .with_hint("with --keep-going, -o names a directory; each message gets a new file in it"));
                }
                serve_forever(&listener, &receiver, dir, args.max_connections.max(1))
            } else {
                let (stream, _) = listener
                    .accept()
                    .map_err(|e| CliError::io(format!("cannot accept on {addr}"), e))?;
                drop(listener);
                let conn = Connection::tcp(stream, receiver.timeout)
                    .map_err(|e| CliError::io("cannot set up the connection", e))?;
                serve(conn, &receiver, &Target::Path(output)).map(drop)
            }
        }
        _ => Err(CliError::usage("give either ADDR or --stdio").with_hint(
            "kapsel listen 0.0.0.0:7000 -i me.key -o FILE, or kapsel listen --stdio ...",
        )),
    }
}

/// Accepts connections until killed, each on its own thread, at most
/// `limit` at once; a failed exchange is reported and the listener goes on.
fn serve_forever(
    listener: &TcpListener,
    receiver: &Arc<Receiver>,
    dir: &Path,
    limit: usize,
) -> Result<(), CliError> {
    let active = Arc::new((Mutex::new(0usize), Condvar::new()));
    loop {
        {
            let (count, freed) = &*active;
            let mut n = count.lock().unwrap_or_else(|p| p.into_inner());
            while *n >= limit {
                n = freed.wait(n).unwrap_or_else(|p| p.into_inner());
            }
            *n += 1;
        }
        let stream = match listener.accept() {
            Ok((stream, _)) => stream,
            Err(e) => {
                errln!("kapsel: warning: accept failed: {e}");
                release(&active);
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        let (receiver, active, dir) =
            (Arc::clone(receiver), Arc::clone(&active), dir.to_path_buf());
        std::thread::spawn(move || {
            let result = Connection::tcp(stream, receiver.timeout)
                .map_err(|e| CliError::io("cannot set up the connection", e))
                .and_then(|conn| serve(conn, &receiver, &Target::Directory(&dir)));
            if let Err(e) = result {
                e.report();
            }
            release(&active);
        });
    }
}

fn release(active: &(Mutex<usize>, Condvar)) {
    let (count, freed) = active;
    let mut n = count.lock().unwrap_or_else(|p| p.into_inner());
    *n = n.saturating_sub(1);
    freed.notify_one();
}

/// One exchange: hello, message, then receipt or refusal. Returns the number
/// of plaintext bytes stored.
fn serve(mut conn: Connection, receiver: &Receiver, target: &Target<'_>) -> Result<u64, CliError> {
    let peer = conn.peer.clone();
    let challenge = Challenge::generate();
    exchange::write_hello(&mut conn.writer, &challenge)
        .map_err(|e| peer_error(&peer, "sending the challenge", &e, receiver.timeout))?;
    // The socket (or standard input) may pause: a live stream's chunks are
    // stored as they arrive.
    let live = match &conn.tcp {
        Some(tcp) => LiveInput::of(tcp.as_fd()),
        None => LiveInput::of(io::stdin().as_fd()),
    };
    let mut input = TailReader::new(FrameReader::new(conn.reader));
    match receive(&mut input, &challenge, receiver, target, live.as_ref()) {
        Ok((output, name, key, stored)) => {
            if !input.get_ref().ended() {
                return Err(CliError::other(format!(
                    "{peer}: the message did not end with its end marker"
                )));
            }
            output.commit()?;
            exchange::write_receipt(&mut conn.writer, &key.receipt(&input.tail())).map_err(
                |e| {
                    peer_error(&peer, "sending the receipt", &e, receiver.timeout).with_hint(
                        format!(
                        "{name} was stored, but the sender has no receipt and may send it again"
                    ),
                    )
                },
            )?;
            if receiver.progress {
                errln!("kapsel: {peer}: received {stored} bytes into {name}; receipt sent");
            }
            Ok(stored)
        }
        Err(e) => {
            // Best effort: the status tells the sender why. Keep reading for
            // a moment so that it can finish writing and read it.
            // The framing's failure is the outcome only if it is what
            // stopped the decoder (SPEC 13.2). The decoder reads ahead, so
            // the framing may have failed after a chunk that was already
            // read and then failed to open: that failure came first, and
            // its class stands (an error of any class but I/O).
            let failure = input.get_ref().failure().filter(|_| e.exit == Exit::Other);
            // Bad framing is a malformed message, whichever layer noticed it.
            let e = match failure {
                Some(ExchangeError::FrameLength(_)) => CliError {
                    exit: Exit::BadHeader,
                    ..e
                },
                _ => e,
            };
            // A sender that closed or abandoned the message gets no reply.
            let sender_gone = matches!(
                failure,
                Some(ExchangeError::Closed(_) | ExchangeError::Aborted)
            );
            if !sender_gone {
                let _ = exchange::write_refusal(&mut conn.writer, e.exit as u8);
            }
            if let Some(tcp) = &conn.tcp {
                let _ = tcp.shutdown(Shutdown::Write);
                let _ = tcp.set_read_timeout(Some(DRAIN_FOR));
                let _ = io::copy(&mut input.take(DRAIN_AT_MOST), &mut io::sink());
            }
            let stored = if sender_gone {
                "; nothing was stored"
            } else {
                ""
            };
            Err(CliError {
                message: format!("{peer}: {}{stored}", e.message),
                ..e
            })
        }
    }
}

/// Reads and checks the message, writing its plaintext to an uncommitted
/// output; returns the output, the receipt key and the plaintext length.
fn receive<R: Read>(
    input: &mut TailReader<FrameReader<R>>,
    challenge: &Challenge,
    receiver: &Receiver,
    target: &Target<'_>,
    live: Option<&LiveInput>,
) -> Result<(Output, String, exchange::ReceiptKey, u64), CliError> {
    let timeout = receiver.timeout;
    let decryptor = Decryptor::new(&mut *input).map_err(|e| match e {
        kapsel_codec::DecryptError::Io(io) => peer_error("", "reading the message", &io, timeout),
        other => CliError::from(other),
    })?;
    let claimed = decryptor.claimed_sender();
    // The challenge is checked on the header before any payload byte is
    // read; the header is authentic once the key commitment matched, and
    // the policy is checked before any chunk.
    let (plaintext, key) = decryptor
        .decrypt_live(&receiver.identities, challenge)
        .map_err(|e| match e {
            kapsel_codec::DecryptError::Challenge(c) => CliError::new(Exit::Refused, c).with_hint(
                "the sender must run kapsel send (which answers the challenge of this connection)",
            ),
            other => CliError::from(other),
        })?;
    let header = plaintext.header().clone();
    let header_bytes = plaintext.header_bytes().to_vec();
    let now = commands::now();
    receiver
        .policy
        .check_header(&header, claimed.as_ref(), now, Some(challenge))?;
    let path = match target {
        Target::Path(p) => p.map(Path::to_path_buf),
        Target::Directory(dir) => Some(dir.join(message_file_name(&header_bytes))),
    };
    let name = path
        .as_deref()
        .map_or_else(|| "standard output".into(), |p| p.display().to_string());
    let mut output = Output::open(path.as_deref(), false)?;
    let mut ledger = commands::LedgerGate::new(&receiver.policy, &header, &header_bytes, now);
    let stored =
        commands::copy_plaintext(plaintext, &mut output, receiver.threads, live, &mut ledger);
    let released = if path.is_some() {
        commands::ReleasedTo::Nobody
    } else {
        commands::ReleasedTo::Counted
    };
    ledger.settle(stored.as_ref().map(|_| ()), released)?;
    Ok((output, name, key, stored?))
}

/// `YYYYMMDDTHHMMSSZ-` and 8 hex digits of the header's SHA-256: sorted by
/// arrival, and distinct for distinct messages.
fn message_file_name(header_bytes: &[u8]) -> String {
    let stamp: String = crate::time::iso8601_utc(commands::now())
        .chars()
        .filter(|c| !matches!(c, '-' | ':'))
        .collect();
    let hash = kapsel_codec::backend::sha256(header_bytes);
    format!("{stamp}-{}", hex::encode(&hash[..4]))
}

#[cfg(test)]
mod tests {
    use super::{listen_address, send_address};

    #[test]
    fn addresses_get_the_default_port_and_listen_takes_a_port_alone() {
        for (given, want) in [
            ("host", "host:7000"),
            ("host:9", "host:9"),
            ("192.0.2.1", "192.0.2.1:7000"),
            ("[::1]", "[::1]:7000"),
            ("[::1]:8", "[::1]:8"),
            ("::1", "[::1]:7000"),
        ] {
            assert_eq!(send_address(given).unwrap(), want, "{given}");
            assert_eq!(listen_address(given).unwrap(), want, "{given}");
        }
        assert_eq!(listen_address(":7001").unwrap(), "0.0.0.0:7001");
        assert_eq!(listen_address("7001").unwrap(), "0.0.0.0:7001");
        assert_eq!(listen_address("0").unwrap(), "0.0.0.0:0");
        for bad in [
            "",
            ":",
            "host:",
            "host:x",
            "host:70000",
            "[::1",
            "[]:1",
            "[::1]x",
            "a:b:c",
            ":99999",
        ] {
            assert!(listen_address(bad).is_err(), "{bad}");
            assert!(send_address(bad).is_err(), "{bad}");
        }
    }
}
