//! `kapsel challenge`, `listen` and `send`: the live exchange of SPEC.md
//! section 13 (challenge, message, receipt) over TCP or a pipe pair
//! (`--stdio`).
//!
//! Invariants:
//! - The receiver writes plaintext under `-o` only through an [`Output`]
//!   that appears only when complete (a device or FIFO is written in place):
//!   a message that does not reach its end marker, verify completely, answer
//!   this connection's challenge and pass the policy never appears under the
//!   target name.
//! - The receiver sends its receipt only after the output was committed
//!   (synced, linked or renamed, directory synced), so a receipt means the
//!   message is stored.
//! - `send` exits 0 only after a receipt that verifies under the file key.
//! - The receiver reads a message's header and payload prefix, and checks
//!   its challenge and the number of trial decryptions it would need
//!   ([`MAX_TRIALS`]), before it uses any key; until the header
//!   authenticated, a refusal's status does not depend on its keys
//!   ([`refusal_status`]).
//! - A listener's connections keep to the deadlines and slots of
//!   [`crate::service`]; a single-shot listener's outcome is that of the
//!   first connection whose header authenticated and passed the header
//!   policy.
//! - `--keep-going` never replaces a file in its inbox.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream, ToSocketAddrs};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use kapsel_codec::exchange::{self, Challenge, ExchangeError, MessageReader, MessageWriter, Reply};
use kapsel_codec::CopyError;
use kapsel_codec::Decryptor;

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
    /// A listener's deadlines on the reads (`None`: a sender).
    pace: Option<Arc<crate::service::Pace>>,
    /// For messages: the peer address, or "standard input/output".
    peer: String,
}

impl Connection {
    /// A listener's exchange over standard input and output: reads keep to
    /// the receiver's deadlines, as on TCP (unbuffered, so that waiting for
    /// input sees every byte).
    fn stdio_receiver(receiver: &Receiver) -> io::Result<Self> {
        let pace =
            crate::service::Pace::new(receiver.timeout, receiver.header_timeout, receiver.min_rate);
        let stdin = std::fs::File::from(io::stdin().as_fd().try_clone_to_owned()?);
        Ok(Connection {
            reader: Box::new(crate::service::Paced::new(stdin, Arc::clone(&pace))),
            writer: Box::new(io::stdout()),
            tcp: None,
            pace: Some(pace),
            peer: "standard input/output".into(),
        })
    }

    fn stdio() -> Self {
        Connection {
            reader: Box::new(io::stdin()),
            writer: Box::new(io::stdout()),
            tcp: None,
            pace: None,
            peer: "standard input/output".into(),
        }
    }

    /// A sender's connection: reads and writes time out after `timeout`.
    fn to_receiver(stream: TcpStream, timeout: Duration) -> io::Result<Self> {
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
            pace: None,
            peer,
        })
    }

    /// A listener's connection: reads keep to the receiver's deadlines
    /// and minimum rate ([`crate::service::Pace`]); writes time out after
    /// `--timeout`, or the header timeout when that is 0.
    fn tcp(stream: TcpStream, receiver: &Receiver) -> io::Result<Self> {
        let peer = stream
            .peer_addr()
            .map_or_else(|_| "peer".into(), |a| a.to_string());
        stream.set_nodelay(true)?;
        let write_limit = limit(receiver.timeout).or(limit(receiver.header_timeout));
        stream.set_write_timeout(write_limit)?;
        let pace =
            crate::service::Pace::new(receiver.timeout, receiver.header_timeout, receiver.min_rate);
        Ok(Connection {
            reader: Box::new(crate::service::Paced::new(
                stream.try_clone()?,
                Arc::clone(&pace),
            )),
            writer: Box::new(stream.try_clone()?),
            tcp: Some(stream),
            pace: Some(pace),
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
    match ExchangeError::from_io(e) {
        Some(ExchangeError::NotExchange) => CliError::new(Exit::BadHeader, format!("{peer}{e}"))
            .with_hint("the address is not a kapsel listen endpoint"),
        Some(ExchangeError::Closed(exchange::Phase::Hello)) => CliError::other(format!(
            "{peer}the receiver closed the connection before sending a challenge"
        ))
        .with_hint("the receiver may be serving its --max-connections already; retry later"),
        Some(other) => CliError::other(format!("{peer}{other}")),
        None if crate::service::limit_of(e).is_some() => {
            let limit = crate::service::limit_of(e).map(crate::service::Deadline);
            CliError::other(format!(
                "{peer}timed out {what}: {}",
                limit.map_or_else(String::new, |l| l.to_string())
            ))
        }
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

    // The message writer stays ours so that a failed input can still be
    // answered with the abort marker.
    let mut framed = MessageWriter::new(conn.writer);
    let mut file = encryptor
        .challenge(challenge)
        .wrap_output(&mut framed)
        .map_err(|e| CliError::other(format!("{peer}: sending: {e}")))?;
    // The header and payload prefix go out now, not with the first batch:
    // a receiver wants the header within its --header-timeout, and a live
    // input may pause before its first chunk.
    file.flush()
        .map_err(|e| peer_error(&peer, "sending", &e, timeout))?;
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
            let _ = framed.abort();
            return Err(CliError::io(format!("cannot read {}", input.name), e)
                .with_hint("the message was abandoned; the receiver keeps nothing"));
        }
        Err(CopyError::Signer(e)) => {
            // The --sign-as token failed: abandon the message, as for a
            // failed read.
            let _ = framed.abort();
            return Err(crate::error::token_key_failed(&e)
                .with_hint("the message was abandoned; the receiver keeps nothing"));
        }
        Err(CopyError::Output(e) | CopyError::Refused(e)) => {
            return Err(lost(&mut conn.reader, &e))
        }
        Err(e) => return Err(lost(&mut conn.reader, &e.into())),
    }
    let tail = match framed.finish() {
        Ok((_, tail)) => tail,
        Err(e) => return Err(lost(&mut conn.reader, &e)),
    };
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
                return Connection::to_receiver(stream, timeout)
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
        // Before the message authenticated, a receiver says no more than 6
        // (SPEC 13.3): whether it holds a key stays its own.
        6 => "refused by the receiver: not a message for this session to a key it holds, or against its policy (such as the expected sender)",
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
    /// The module and PIN of `-i pkcs11:` keys.
    pub token_args: &'a crate::tokens::TokenArgs,
    pub output: Option<&'a Path>,
    pub keep_going: bool,
    pub max_connections: usize,
    pub policy: Policy,
    pub threads: usize,
    pub timeout: Duration,
    /// From accept until the header authenticated (0: none).
    pub header_timeout: Duration,
    /// Bytes per second a connection must average (0, or `timeout` 0: none).
    pub min_rate: u64,
    pub progress: bool,
}

/// At most this many trial decryptions (stanzas times identities) are
/// spent on a message before its header authenticated; a header that
/// would need more is refused before any key is used.
pub const MAX_TRIALS: usize = 64;

/// The payload prefix (salt and commitment, SPEC.md section 6.2) read
/// with the header before any key is tried.
const PAYLOAD_PREFIX_LEN: usize = 56;

/// What every connection of a listener shares.
struct Receiver {
    /// P-256 and post-quantum identities and token keys (opened, and their
    /// PIN asked for, once before listening).
    identities: keyfiles::Identities,
    policy: Policy,
    threads: usize,
    timeout: Duration,
    header_timeout: Duration,
    min_rate: u64,
    progress: bool,
}

/// Where a received message goes.
enum Target {
    /// `-o FILE` (checked before listening), or standard output.
    Path(crate::outfile::Target),
    /// `--keep-going -o DIR`: a new file per message, never replacing one.
    Directory(PathBuf),
}

/// `kapsel listen`: receives messages, each bound to a fresh challenge and
/// answered with a receipt. Every argument, `-o` included, is checked
/// before it listens.
pub fn listen(args: ListenArgs<'_>) -> Result<(), CliError> {
    let identities = keyfiles::read_identity_sources(args.identity_files, args.token_args, false)?;
    let output = args.output.filter(|p| *p != Path::new("-"));
    if args.stdio && output.is_none() {
        return Err(CliError::usage(
            "--stdio needs -o FILE: standard output carries the exchange",
        ));
    }
    if args.stdio && args.keep_going {
        return Err(CliError::usage(
            "--keep-going needs a TCP address, not --stdio",
        ));
    }
    let target = if args.keep_going {
        let dir = output.ok_or_else(|| {
            CliError::usage("--keep-going needs -o DIR, a directory for the messages")
        })?;
        crate::outfile::check_directory(dir).map_err(|e| {
            e.with_hint("with --keep-going, -o names an existing directory; each message gets a new file in it")
        })?;
        Target::Directory(dir.to_path_buf())
    } else {
        match output {
            Some(p) => Target::Path(crate::outfile::resolve(p)?),
            None => Target::Path(crate::outfile::Target::Stdout),
        }
    };
    let receiver = Arc::new(Receiver {
        identities,
        policy: args.policy,
        threads: args.threads,
        timeout: args.timeout,
        header_timeout: args.header_timeout,
        // A live stream may pause for as long as it likes (--timeout 0).
        min_rate: if args.timeout.is_zero() {
            0
        } else {
            args.min_rate
        },
        progress: args.progress,
    });
    match (args.stdio, args.addr) {
        (true, None) => {
            let conn = Connection::stdio_receiver(&receiver)
                .map_err(|e| CliError::io("cannot read standard input", e))?;
            serve(conn, &receiver, &target, &mut || Ok(()))
                .map(drop)
                .map_err(|f| f.error)
        }
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
            let slots = Arc::new(crate::service::Slots::new(args.max_connections));
            serve_connections(
                listener,
                &receiver,
                Arc::new(target),
                &slots,
                args.keep_going,
            )
        }
        _ => Err(CliError::usage("give either ADDR or --stdio").with_hint(
            "kapsel listen 0.0.0.0:7000 -i me.key -o FILE, or kapsel listen --stdio ...",
        )),
    }
}

/// How long the accept loop waits before it looks for a finished exchange.
const ACCEPT_POLL: Duration = Duration::from_millis(100);

/// Accepts connections, each on its own thread in one of the slots. With
/// `keep_going`, until killed, reporting each failed exchange; otherwise
/// until one connection proved itself (its header authenticated, answered
/// this connection's challenge and passed the header policy): that
/// exchange's outcome is the listener's, and connections that never proved
/// themselves are reported and do not count.
fn serve_connections(
    listener: TcpListener,
    receiver: &Arc<Receiver>,
    target: Arc<Target>,
    slots: &Arc<crate::service::Slots>,
    keep_going: bool,
) -> Result<(), CliError> {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::mpsc;
    let claimed = Arc::new(AtomicBool::new(false));
    let (done, outcome) = mpsc::channel::<Result<(), CliError>>();
    // Dropped with the listener, so that the wait for the one exchange ends
    // even if its thread ends without an outcome.
    let mut done = Some(done);
    listener
        .set_nonblocking(true)
        .map_err(|e| CliError::io("cannot set up the listener", e))?;
    let mut listener = Some(listener);
    loop {
        if let Ok(result) = outcome.try_recv() {
            return result;
        }
        let Some(l) = &listener else {
            // The single exchange is running: no new connections.
            return outcome.recv().unwrap_or_else(|_| {
                Err(CliError::other(
                    "internal error: the exchange ended without an outcome",
                ))
            });
        };
        if !keep_going && claimed.load(Ordering::SeqCst) {
            listener = None;
            done = None;
            continue;
        }
        let Some(done) = &done else {
            continue;
        };
        let stream = match l.accept() {
            Ok((stream, _)) => stream,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                wait_readable(l, ACCEPT_POLL);
                continue;
            }
            Err(e) => {
                errln!("kapsel: warning: accept failed: {e}");
                std::thread::sleep(ACCEPT_POLL);
                continue;
            }
        };
        let peer = stream
            .peer_addr()
            .map_or_else(|_| "peer".into(), |a| a.to_string());
        let id = match slots.admit(&stream) {
            Some(crate::service::Admitted::Free(id)) => id,
            Some(crate::service::Admitted::Evicted(id, old)) => {
                if receiver.progress {
                    errln!("kapsel: {old}: closed: it had not sent an authenticated header after {} s, and {peer} needed its slot", crate::service::EVICT_AFTER.as_secs());
                }
                id
            }
            None => {
                // Closed at once, not queued: the peer learns now.
                drop(stream);
                if receiver.progress {
                    errln!(
                        "kapsel: {peer}: refused: {} connections are open (--max-connections)",
                        slots.limit()
                    );
                }
                continue;
            }
        };
        let slots_for_spawn = Arc::clone(slots);
        let (receiver, target, slots, claimed, done) = (
            Arc::clone(receiver),
            Arc::clone(&target),
            Arc::clone(slots),
            Arc::clone(&claimed),
            done.clone(),
        );
        let spawned = std::thread::Builder::new()
            .name("kapsel-conn".into())
            .spawn(move || {
                // Whether this connection took the single exchange.
                let mut won = false;
                let mut proved = || {
                    slots.prove(id);
                    if keep_going || !claimed.swap(true, Ordering::SeqCst) {
                        won = true;
                        Ok(())
                    } else {
                        Err(CliError::other(
                            "another message is being received; this listener takes one",
                        ))
                    }
                };
                let result = stream
                    .set_nonblocking(false)
                    .and_then(|()| Connection::tcp(stream, &receiver))
                    .map_err(|e| Failure {
                        error: CliError::io("cannot set up the connection", e),
                    })
                    .and_then(|conn| serve(conn, &receiver, &target, &mut proved));
                slots.release(id);
                match result {
                    Ok(_) if won && !keep_going => {
                        let _ = done.send(Ok(()));
                    }
                    Ok(_) => {}
                    Err(f) if won && !keep_going => {
                        let _ = done.send(Err(f.error));
                    }
                    Err(f) => f.error.report(),
                }
            });
        if let Err(e) = spawned {
            // The stream went with the closure and is closed; free its slot.
            slots_for_spawn.release(id);
            errln!("kapsel: warning: {peer}: cannot start a thread for the connection: {e}");
        }
    }
}

/// Waits until `listener` has a connection to accept, or `at_most`.
fn wait_readable(listener: &TcpListener, at_most: Duration) {
    use rustix::event::{poll, PollFd, PollFlags, Timespec};
    let wait = Timespec {
        tv_sec: 0,
        tv_nsec: at_most.as_nanos().min(999_999_999) as _,
    };
    let mut fds = [PollFd::new(listener, PollFlags::IN)];
    let _ = poll(&mut fds, Some(&wait));
}

/// A failed exchange.
struct Failure {
    error: CliError,
}

/// One exchange: hello, message, then receipt or refusal. `proved` runs
/// once the message's header authenticated and passed the header policy,
/// before any output is opened; its error refuses the message. Returns the
/// number of plaintext bytes stored.
fn serve(
    mut conn: Connection,
    receiver: &Receiver,
    target: &Target,
    proved: &mut dyn FnMut() -> Result<(), CliError>,
) -> Result<u64, Failure> {
    let peer = conn.peer.clone();
    let challenge = Challenge::generate();
    exchange::write_hello(&mut conn.writer, &challenge).map_err(|e| Failure {
        error: peer_error(&peer, "sending the challenge", &e, receiver.timeout),
    })?;
    // The socket (or standard input) may pause: a live stream's chunks are
    // stored as they arrive.
    let live = match &conn.tcp {
        Some(tcp) => LiveInput::of(tcp.as_fd()),
        None => LiveInput::of(io::stdin().as_fd()),
    };
    let pace = conn.pace.clone();
    let mut input = MessageReader::new(conn.reader);
    let mut authenticated = false;
    let mut on_header = || {
        authenticated = true;
        if let Some(p) = &pace {
            p.header_done();
        }
        proved()
    };
    let received = receive(
        &mut input,
        &challenge,
        receiver,
        target,
        live.as_ref(),
        &mut on_header,
    );
    let result = match received {
        Ok((output, key, stored)) => {
            if !input.ended() {
                Err(CliError::other(format!(
                    "{peer}: the message did not end with its end marker"
                )))
            } else {
                commit_message(
                    output,
                    target,
                    &input,
                    &peer,
                    key,
                    &mut conn.writer,
                    receiver,
                    stored,
                )
            }
        }
        Err(e) => Err(e),
    };
    let e = match result {
        Ok(stored) => return Ok(stored),
        Err(e) => e,
    };
    // Best effort: the status tells the sender why. Keep reading for a
    // moment so that it can finish writing and read it.
    // The framing's failure is the outcome only if it is what stopped the
    // decoder (SPEC 13.2). The decoder reads ahead, so the framing may have
    // failed after a chunk that was already read and then failed to open:
    // that failure came first, and its class stands (an error of any class
    // but I/O).
    let failure = input.failure().filter(|_| e.exit == Exit::Other);
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
        let _ = exchange::write_refusal(&mut conn.writer, refusal_status(e.exit, authenticated));
    }
    if let Some(tcp) = &conn.tcp {
        let _ = tcp.shutdown(Shutdown::Write);
        if let Some(p) = &pace {
            p.drain_for(DRAIN_FOR);
        }
        let _ = io::copy(&mut input.take(DRAIN_AT_MOST), &mut io::sink());
    }
    let stored = if sender_gone {
        "; nothing was stored"
    } else {
        ""
    };
    Err(Failure {
        error: CliError {
            message: format!("{peer}: {}{stored}", e.message),
            ..e
        },
    })
}

/// The status a refusal sends (SPEC.md section 13.3). Before the header
/// authenticated, every refusal that involves a key or the challenge is 6,
/// so that the status does not tell whether this listener holds a key for
/// the message (no matching recipient, a header that fails to authenticate
/// and a stale challenge look the same); 1 and 3 depend on the bytes and the
/// receiver alone. After it authenticated the peer knows the file key, and
/// the status says what failed.
fn refusal_status(exit: Exit, authenticated: bool) -> u8 {
    match exit {
        Exit::Other | Exit::BadHeader => exit as u8,
        _ if !authenticated => Exit::Refused as u8,
        _ => exit as u8,
    }
}

/// Puts a complete, verified message in place, then sends its receipt.
#[allow(clippy::too_many_arguments)]
fn commit_message<R: Read>(
    output: Output,
    target: &Target,
    input: &MessageReader<R>,
    peer: &str,
    key: exchange::ReceiptKey,
    writer: &mut Box<dyn Write + Send>,
    receiver: &Receiver,
    stored: u64,
) -> Result<u64, CliError> {
    let name = match target {
        Target::Directory(_) => {
            let base = output_base_name(&output);
            // Never over an earlier message: a taken name gets -2, -3, ...
            output.commit_as(crate::outfile::Placement::NoClobber, |attempt| {
                (attempt < 1000).then(|| format!("{base}-{}", attempt + 1).into())
            })?
        }
        Target::Path(_) => output.commit_as(crate::outfile::Placement::Replace, |_| None)?,
    };
    let name = name.map_or_else(|| "standard output".into(), |p| p.display().to_string());
    exchange::write_receipt(writer, &key.receipt(&input.tail())).map_err(|e| {
        peer_error(peer, "sending the receipt", &e, receiver.timeout).with_hint(format!(
            "{name} was stored, but the sender has no receipt and may send it again"
        ))
    })?;
    if receiver.progress {
        errln!("kapsel: {peer}: received {stored} bytes into {name}; receipt sent");
    }
    Ok(stored)
}

/// The file name a pending inbox output was created under.
fn output_base_name(output: &Output) -> String {
    match output {
        Output::Atomic { pending, .. } => pending
            .path()
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        _ => String::new(),
    }
}

/// Reads exactly `buf.len()` bytes unless the input ends first; returns how
/// many it read.
fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// The decryptor of a listener's message: the header and payload prefix
/// from memory, then the rest of the connection.
type MessageDecryptor<'r, R> = Decryptor<io::Chain<io::Cursor<Vec<u8>>, &'r mut MessageReader<R>>>;

/// Reads the message's header and payload prefix before any key is used,
/// so that neither the work nor the time before a refusal depends on the
/// keys this listener holds: refuses a header that does not carry this
/// connection's challenge, or that would need more than [`MAX_TRIALS`]
/// trial decryptions, without trying any. Returns a decryptor over the
/// bytes read and the rest of the input.
fn read_message_start<'r, R: Read>(
    input: &'r mut MessageReader<R>,
    challenge: &Challenge,
    receiver: &Receiver,
) -> Result<MessageDecryptor<'r, R>, CliError> {
    let timeout = receiver.timeout;
    let read_err = |e: io::Error| peer_error("", "reading the message", &e, timeout);
    let short = || CliError::other("the message ended inside its header");
    let mut start = vec![0u8; kapsel_format::PREFIX_LEN];
    if read_up_to(input, &mut start).map_err(read_err)? < start.len() {
        return Err(short());
    }
    let header_len = u32::from_be_bytes([start[12], start[13], start[14], start[15]]);
    let plausible = start[..8] == kapsel_format::MAGIC
        && (kapsel_format::MIN_HEADER_LEN..=kapsel_format::MAX_HEADER_LEN).contains(&header_len);
    if plausible {
        let header_len = header_len as usize;
        start.resize(header_len, 0);
        let got = read_up_to(input, &mut start[kapsel_format::PREFIX_LEN..]).map_err(read_err)?;
        if got < header_len - kapsel_format::PREFIX_LEN {
            return Err(short());
        }
        // Parsed from memory: a malformed header fails here, as it would
        // have with the decryptor reading the connection.
        let parsed = Decryptor::new(&start[..]).map_err(CliError::from)?;
        challenge.check(parsed.unverified_header()).map_err(|c| {
            CliError::new(Exit::Refused, c.to_string()).with_hint(
                "the sender must run kapsel send (which answers the challenge of this connection)",
            )
        })?;
        let trials = parsed.unverified_header().stanzas.len() * receiver.identities.len();
        if trials > MAX_TRIALS {
            return Err(CliError::new(
                Exit::Refused,
                format!(
                    "the message has {} recipient stanzas; with {} identities that is more than the {MAX_TRIALS} trial decryptions this listener spends on a message",
                    parsed.unverified_header().stanzas.len(),
                    receiver.identities.len()
                ),
            ));
        }
        start.resize(header_len + PAYLOAD_PREFIX_LEN, 0);
        if read_up_to(input, &mut start[header_len..]).map_err(read_err)? < PAYLOAD_PREFIX_LEN {
            return Err(CliError::other("the message ended before its payload"));
        }
    }
    Decryptor::new(io::Cursor::new(start).chain(input)).map_err(|e| match e {
        kapsel_codec::DecryptError::Io(io) => read_err(io),
        other => CliError::from(other),
    })
}

/// Reads and checks the message, writing its plaintext to an uncommitted
/// output; returns the output, the receipt key and the plaintext length.
fn receive<R: Read>(
    input: &mut MessageReader<R>,
    challenge: &Challenge,
    receiver: &Receiver,
    target: &Target,
    live: Option<&LiveInput>,
    on_header: &mut dyn FnMut() -> Result<(), CliError>,
) -> Result<(Output, exchange::ReceiptKey, u64), CliError> {
    let decryptor = read_message_start(input, challenge, receiver)?;
    let claimed = decryptor.claimed_sender();
    // The challenge was checked on the header as received; decrypt_live
    // checks it again once the key commitment authenticated the header, and
    // the policy is checked before any chunk.
    let (plaintext, key) = decryptor
        .decrypt_live_with(&receiver.identities.keyring(), challenge)
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
    on_header()?;
    let mut output = match target {
        Target::Path(t) => Output::open_target(t.clone(), false)?,
        Target::Directory(dir) => {
            Output::new_file_in(dir, message_file_name(&header_bytes).into())?
        }
    };
    let mut ledger = commands::LedgerGate::new(&receiver.policy, &header, &header_bytes, now);
    let stored =
        commands::copy_plaintext(plaintext, &mut output, receiver.threads, live, &mut ledger);
    let released = if output.releases_early() {
        commands::ReleasedTo::Counted
    } else {
        commands::ReleasedTo::Nobody
    };
    ledger.settle(stored.as_ref().map(|_| ()), released)?;
    Ok((output, key, stored?))
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
