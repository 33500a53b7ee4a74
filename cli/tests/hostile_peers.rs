//! `kapsel listen` against hostile peers, on loopback only: slowloris
//! connections, more connections than the limit, replayed and foreign
//! hidden-recipient messages (the refusal must not say whether the listener
//! holds a key), a bad `-o`, colliding inbox names, and kills of a
//! receiving listener. Every child is waited for with a deadline.

// Helpers outside `#[test]` functions unwrap too; clippy.toml allows it only
// inside them.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::{random_bytes, Env};
use kapsel_codec::exchange::Challenge;
use kapsel_codec::{Encryptor, Recipient};

const DEADLINE: Duration = Duration::from_secs(60);
const HELLO_MAGIC: &[u8; 8] = b"\x8bKXCHG1\n";

/// A running `kapsel listen 127.0.0.1:0 ...`.
struct Listener {
    child: Child,
    addr: String,
    stderr: Arc<Mutex<String>>,
}

impl Listener {
    fn start(env: &Env, key: &str, extra: &[&str]) -> Listener {
        let mut child = env
            .cmd()
            .args(["listen", "127.0.0.1:0", "-i", key])
            .args(if extra.contains(&"--timeout") {
                &[][..]
            } else {
                &["--timeout", "20s"][..]
            })
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap());
        let mut first = String::new();
        lines.read_line(&mut first).unwrap();
        let addr = first
            .trim()
            .strip_prefix("kapsel: listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
            .to_string();
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = Arc::clone(&stderr);
        thread::spawn(move || {
            for line in lines.lines() {
                let Ok(line) = line else { break };
                let mut s = sink.lock().unwrap();
                s.push_str(&line);
                s.push('\n');
            }
        });
        Listener {
            child,
            addr,
            stderr,
        }
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits (at most `DEADLINE`) until stderr contains `text`.
    fn stderr_until(&self, text: &str) -> String {
        let start = Instant::now();
        loop {
            let err = self.stderr();
            if err.contains(text) {
                return err;
            }
            assert!(start.elapsed() < DEADLINE, "no {text:?} in {err}");
            thread::sleep(Duration::from_millis(20));
        }
    }

    fn wait(&mut self) -> std::process::ExitStatus {
        wait(&mut self.child)
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait(child: &mut Child) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if start.elapsed() > DEADLINE {
            let _ = child.kill();
            panic!("a kapsel process did not finish within {DEADLINE:?}");
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// `kapsel send ADDR -r RECIPIENT FILE`: (exit code, stderr).
fn send(env: &Env, addr: &str, recipient: &str, file: &str) -> (Option<i32>, String) {
    let mut child = env
        .cmd()
        .args(["send", addr, "-r", recipient, "--timeout", "20s", file])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    (wait(&mut child).code(), err)
}

/// Connects and reads the hello; returns the stream and its challenge.
fn connect(addr: &str) -> (TcpStream, [u8; 32]) {
    let mut conn = TcpStream::connect(addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut hello = [0u8; 40];
    conn.read_exact(&mut hello).unwrap();
    assert_eq!(&hello[..8], HELLO_MAGIC);
    (conn, hello[8..].try_into().unwrap())
}

/// `plaintext` encrypted to `to` answering `challenge`, recipients hidden.
fn message(to: &Recipient, challenge: [u8; 32], plaintext: &[u8]) -> Vec<u8> {
    let mut w = Encryptor::new([to.clone()])
        .unwrap()
        .hide_recipients(true)
        .challenge(Challenge::from_bytes(challenge))
        .wrap_output(Vec::new())
        .unwrap();
    w.write_all(plaintext).unwrap();
    w.finish().unwrap()
}

/// `message` in frames of at most 1 MiB, then the end marker.
fn framed(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for piece in message.chunks(1 << 20) {
        out.extend_from_slice(&(piece.len() as u32).to_be_bytes());
        out.extend_from_slice(piece);
    }
    out.extend_from_slice(&[0; 4]);
    out
}

/// Sends `framed` on `conn` and returns everything the listener replies.
fn reply_to(mut conn: TcpStream, framed: &[u8]) -> Vec<u8> {
    let _ = conn.write_all(framed);
    let mut reply = Vec::new();
    let _ = conn.read_to_end(&mut reply);
    reply
}

#[test]
fn a_slowloris_client_cannot_keep_a_genuine_send_from_completing() {
    let env = Env::new();
    let (key, id) = env.identity("bob.key");
    fs_mkdir(&env.path("inbox"));
    let inbox = env.p("inbox");
    let mut listener = Listener::start(
        &env,
        &key,
        &[
            "--keep-going",
            "-o",
            &inbox,
            "--max-connections",
            "2",
            "--timeout",
            "2s",
            "--header-timeout",
            "6s",
        ],
    );
    // Two connections that send one byte of a plausible header just inside
    // each timeout, for as long as the listener lets them.
    let mut trickles = Vec::new();
    for _ in 0..2 {
        let (mut conn, _) = connect(&listener.addr);
        trickles.push(thread::spawn(move || {
            let start = Instant::now();
            // A frame of 4096 bytes, then the start of a kapsel header.
            for &b in b"\x00\x00\x10\x00\x8bKAPSEL\n\x01\x00\x01\x0e\x00\x00" {
                thread::sleep(Duration::from_millis(1500));
                if conn.write_all(&[b]).is_err() {
                    break;
                }
            }
            // Closed by the listener: a read ends at once.
            let mut rest = Vec::new();
            let _ = conn.read_to_end(&mut rest);
            start.elapsed()
        }));
    }
    // Both slots are taken; once they held them for 2 s, a genuine sender
    // gets one.
    thread::sleep(Duration::from_millis(2500));
    let data = random_bytes(300_000);
    let input = env.write("in.bin", &data);
    let (code, err) = send(&env, &listener.addr, &id.to_recipient().to_string(), &input);
    assert_eq!(code, Some(0), "{err}\nlistener: {}", listener.stderr());
    let stored: Vec<Vec<u8>> = std::fs::read_dir(&inbox)
        .unwrap()
        .map(|e| std::fs::read(e.unwrap().path()).unwrap())
        .collect();
    assert_eq!(stored, [data]);
    // Neither trickle outlived the header deadline by much.
    for t in trickles {
        let held = t.join().unwrap();
        assert!(held < Duration::from_secs(15), "held a slot for {held:?}");
    }
    assert!(listener.child.try_wait().unwrap().is_none());
}

fn fs_mkdir(p: &Path) {
    std::fs::create_dir(p).unwrap();
}

#[test]
fn connections_beyond_the_limit_are_closed_at_once() {
    let env = Env::new();
    let (key, id) = env.identity("bob.key");
    fs_mkdir(&env.path("inbox"));
    let inbox = env.p("inbox");
    let listener = Listener::start(
        &env,
        &key,
        &["--keep-going", "-o", &inbox, "--max-connections", "2"],
    );
    let (first, _) = connect(&listener.addr);
    let (_second, _) = connect(&listener.addr);
    for _ in 0..3 {
        // Accepted and closed, not queued: no hello, and the end of the
        // stream well before any timeout of the listener.
        let mut extra = TcpStream::connect(&listener.addr).unwrap();
        extra
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut got = Vec::new();
        match extra.read_to_end(&mut got) {
            Ok(_) => assert!(got.is_empty(), "no hello beyond the limit: {got:?}"),
            Err(e) => assert_ne!(e.kind(), std::io::ErrorKind::WouldBlock, "{e}"),
        }
    }
    listener.stderr_until("refused: 2 connections are open");
    // A slot freed: served again.
    drop(first);
    thread::sleep(Duration::from_millis(200));
    let input = env.write("in.bin", b"after the crowd");
    let (code, err) = send(&env, &listener.addr, &id.to_recipient().to_string(), &input);
    assert_eq!(code, Some(0), "{err}");
}

#[test]
fn the_refusal_of_a_replayed_or_foreign_hidden_message_is_the_same_with_or_without_the_key() {
    let env = Env::new();
    let (bob_key, bob) = env.identity("bob.key");
    let (carol_key, _) = env.identity("carol.key");
    let dave = kapsel_codec::Identity::generate().to_recipient();
    // Captured elsewhere: a hidden-recipient message to bob for another
    // session's challenge.
    let captured = framed(&message(&bob.to_recipient(), [7; 32], b"pay 100 to eve"));
    let mut replies = Vec::new();
    for key in [&bob_key, &carol_key] {
        let out = env.p("out.bin");
        let listener = Listener::start(&env, key, &["-o", &out]);
        // The replay, as captured.
        let (conn, _) = connect(&listener.addr);
        let replayed = reply_to(conn, &captured);
        // A message made now for this session, but to a key neither holds.
        let (conn, challenge) = connect(&listener.addr);
        let foreign = reply_to(conn, &framed(&message(&dave, challenge, b"hello")));
        replies.push((replayed, foreign));
        assert!(!env.path("out.bin").exists());
        listener.stderr_until("answers another challenge");
        listener.stderr_until("no identity matches");
    }
    assert_eq!(replies[0], replies[1], "bob's listener against carol's");
    assert_eq!(replies[0], (vec![6], vec![6]));
}

#[test]
fn a_bad_output_fails_before_listening() {
    let env = Env::new();
    let (key, _) = env.identity("bob.key");
    env.write("a-file", b"x");
    fs_mkdir(&env.path("a-dir"));
    let cases: [(&[&str], &str); 5] = [
        (&["--keep-going", "-o", &env.p("missing")], "does not exist"),
        (
            &["--keep-going", "-o", &env.p("a-file")],
            "is not a directory",
        ),
        (&["-o", &env.p("missing/out")], "does not exist"),
        (&["-o", &env.p("a-file/out")], "is not a directory"),
        (&["-o", &env.p("a-dir")], "is a directory"),
    ];
    for (extra, message) in cases {
        let mut child = env
            .cmd()
            .args(["listen", "127.0.0.1:0", "-i", &key])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let status = wait(&mut child);
        let mut err = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        assert!(!status.success(), "{extra:?}");
        assert!(!err.contains("listening on"), "{extra:?}: {err}");
        assert!(err.contains(message), "{extra:?}: {err}");
    }
    // And over --stdio, before the hello.
    let out = env
        .cmd()
        .args(["listen", "--stdio", "-i", &key, "-o", &env.p("missing/out")])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty(), "no hello was sent");
}

/// The inbox name of a message whose header is `header` arriving at `t`:
/// `YYYYMMDDTHHMMSSZ-` and 8 hex digits of the header's SHA-256.
fn inbox_name(header: &[u8], t: u64) -> String {
    use sha2::Digest;
    let hash = sha2::Sha256::digest(header);
    let (days, secs) = (t / 86_400, t % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z-{}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        hash[..4]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    )
}

#[test]
fn two_messages_forced_to_the_same_name_are_both_kept() {
    let env = Env::new();
    let (key, bob) = env.identity("bob.key");
    fs_mkdir(&env.path("inbox"));
    let inbox = env.path("inbox");
    let listener = Listener::start(&env, &key, &["--keep-going", "-o", &env.p("inbox")]);
    // The first message, received as usual.
    let (conn, challenge) = connect(&listener.addr);
    let reply = reply_to(
        conn,
        &framed(&message(&bob.to_recipient(), challenge, b"first")),
    );
    assert_eq!(reply.first(), Some(&0), "{}", listener.stderr());
    let first = std::fs::read_dir(&inbox)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    // The second: its name for every second it may arrive in is already
    // taken, by copies of the first (a collision of time and hash).
    let (conn, challenge) = connect(&listener.addr);
    let second = message(&bob.to_recipient(), challenge, b"second");
    let header_len = u32::from_be_bytes(second[12..16].try_into().unwrap()) as usize;
    let now = common::now();
    let taken: Vec<String> = (now.saturating_sub(1)..now + 30)
        .map(|t| inbox_name(&second[..header_len], t))
        .collect();
    for name in &taken {
        std::fs::copy(&first, inbox.join(name)).unwrap();
    }
    std::fs::remove_file(&first).unwrap();
    let reply = reply_to(conn, &framed(&second));
    assert_eq!(reply.first(), Some(&0), "{}", listener.stderr());
    let mut names: Vec<String> = std::fs::read_dir(&inbox)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names.len(), taken.len() + 1, "{names:?}");
    for name in &taken {
        assert_eq!(std::fs::read(inbox.join(name)).unwrap(), b"first", "{name}");
    }
    let new: Vec<&String> = names.iter().filter(|n| !taken.contains(n)).collect();
    assert!(new[0].ends_with("-2"), "{new:?}");
    assert_eq!(std::fs::read(inbox.join(new[0])).unwrap(), b"second");
}

/// Starts a single-shot `listen -o DIR/out` and a `kapsel send` from a
/// pipe fed slowly; sends `signal` to the listener after `at_ms`.
/// Returns whether the listener finished by itself.
fn listen_and_signal(env: &Env, key: &str, recipient: &str, signal: &str, at_ms: u64) -> bool {
    let dir = env.path("out");
    let mut listener = Listener::start(env, key, &["-o", &format!("{}/out", dir.display())]);
    let mut sender = env
        .cmd()
        .args(["send", &listener.addr, "-r", recipient, "--timeout", "20s"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = sender.stdin.take().unwrap();
    let feeder = thread::spawn(move || {
        let data = random_bytes(2 << 20);
        for piece in data.chunks(64 << 10) {
            if stdin.write_all(piece).is_err() {
                return;
            }
            thread::sleep(Duration::from_millis(8));
        }
    });
    thread::sleep(Duration::from_millis(at_ms));
    let pid = listener.child.id().to_string();
    let _ = std::process::Command::new("kill")
        .args([signal, &pid])
        .status();
    let status = listener.wait();
    let _ = feeder.join();
    let _ = sender.kill();
    let _ = sender.wait();
    if status.success() {
        return true;
    }
    let want = if signal == "-KILL" { 9 } else { 2 };
    assert_eq!(
        status.signal(),
        Some(want),
        "{status:?}: {}",
        listener.stderr()
    );
    false
}

#[test]
fn sigkill_and_sigint_during_listen_o_leave_no_file() {
    let env = Env::new();
    let (key, id) = env.identity("bob.key");
    let recipient = id.to_recipient().to_string();
    let dir = env.path("out");
    fs_mkdir(&dir);
    let mut state = 0x9e37_79b9u64;
    let mut finished_rounds = 0;
    for round in 0..8 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let at = 50 + state % 200;
        let signal = if round % 2 == 0 { "-KILL" } else { "-INT" };
        let finished = listen_and_signal(&env, &key, &recipient, signal, at);
        let left: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        if finished {
            assert_eq!(left, ["out"]);
            std::fs::remove_file(dir.join("out")).unwrap();
            finished_rounds += 1;
        } else {
            assert!(
                left.is_empty(),
                "round {round} ({signal} at {at} ms): {left:?}"
            );
        }
    }
    assert!(finished_rounds < 8, "no round was interrupted");
}

#[test]
fn a_live_stream_with_timeout_0_may_pause_past_every_deadline() {
    // --timeout 0 turns off the idle timeout and the minimum rate; the
    // header deadline still holds, and the sender meets it by sending its
    // header before its input's first byte.
    let env = Env::new();
    let (key, id) = env.identity("bob.key");
    let out = env.p("out.bin");
    let mut listener = Listener::start(
        &env,
        &key,
        &[
            "-o",
            &out,
            "--timeout",
            "0",
            "--header-timeout",
            "2s",
            "--min-rate",
            "1MiB",
        ],
    );
    let mut sender = env
        .cmd()
        .args(["send", &listener.addr, "-r", &id.to_recipient().to_string()])
        .args(["--timeout", "20s"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = sender.stdin.take().unwrap();
    // Nothing for 3 s (past the header deadline), a little, then 3 s more.
    thread::sleep(Duration::from_secs(3));
    stdin.write_all(b"first words, ").unwrap();
    thread::sleep(Duration::from_secs(3));
    stdin.write_all(b"and the rest").unwrap();
    drop(stdin);
    let status = wait(&mut sender);
    let mut err = String::new();
    sender
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(status.success(), "{err}\nlistener: {}", listener.stderr());
    assert!(listener.wait().success(), "{}", listener.stderr());
    assert_eq!(std::fs::read(&out).unwrap(), b"first words, and the rest");
}

#[test]
fn a_sender_below_the_minimum_rate_is_closed_after_its_header_authenticated() {
    let env = Env::new();
    let (key, bob) = env.identity("bob.key");
    fs_mkdir(&env.path("inbox"));
    let listener = Listener::start(
        &env,
        &key,
        &[
            "--keep-going",
            "-o",
            &env.p("inbox"),
            "--timeout",
            "5s",
            "--header-timeout",
            "2s",
            "--min-rate",
            "64KiB",
        ],
    );
    let (mut conn, challenge) = connect(&listener.addr);
    let m = message(&bob.to_recipient(), challenge, &random_bytes(100_000));
    let header_len = u32::from_be_bytes(m[12..16].try_into().unwrap()) as usize;
    // The header and the payload prefix at once, in one frame with the rest:
    // then one byte every 500 ms, inside the idle timeout.
    conn.write_all(&(m.len() as u32).to_be_bytes()).unwrap();
    conn.write_all(&m[..header_len + 56]).unwrap();
    let start = Instant::now();
    let mut closed = false;
    for &b in &m[header_len + 56..header_len + 56 + 40] {
        thread::sleep(Duration::from_millis(500));
        if conn.write_all(&[b]).is_err() {
            closed = true;
            break;
        }
    }
    let mut reply = Vec::new();
    let _ = conn.read_to_end(&mut reply);
    assert!(closed || reply == [1], "reply {reply:?}");
    assert!(start.elapsed() < Duration::from_secs(15));
    listener.stderr_until("--min-rate");
    assert_eq!(std::fs::read_dir(env.path("inbox")).unwrap().count(), 0);
}

#[test]
fn authenticated_connections_keep_their_slots() {
    // Two genuine live sends whose headers authenticated hold both slots
    // while their input pauses; a newcomer 2.5 s later (when an unproven
    // connection would have given way) is closed at once, and both
    // messages are delivered when their input ends.
    let env = Env::new();
    let (key, id) = env.identity("bob.key");
    fs_mkdir(&env.path("inbox"));
    let inbox = env.p("inbox");
    let listener = Listener::start(
        &env,
        &key,
        &["--keep-going", "-o", &inbox, "--max-connections", "2"],
    );
    let recipient = id.to_recipient().to_string();
    let mut senders = Vec::new();
    for i in 0..2 {
        let mut child = env
            .cmd()
            .args(["send", &listener.addr, "-r", &recipient, "--timeout", "20s"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(format!("message {i}").as_bytes()).unwrap();
        senders.push((child, stdin));
    }
    thread::sleep(Duration::from_millis(2500));
    let mut extra = TcpStream::connect(&listener.addr).unwrap();
    extra
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut got = Vec::new();
    match extra.read_to_end(&mut got) {
        Ok(_) => assert!(got.is_empty(), "no hello beyond the limit: {got:?}"),
        Err(e) => assert_ne!(e.kind(), std::io::ErrorKind::WouldBlock, "{e}"),
    }
    for (mut child, stdin) in senders {
        drop(stdin);
        assert!(wait(&mut child).success(), "{}", listener.stderr());
    }
    let mut stored: Vec<Vec<u8>> = std::fs::read_dir(&inbox)
        .unwrap()
        .map(|e| std::fs::read(e.unwrap().path()).unwrap())
        .collect();
    stored.sort();
    assert_eq!(stored, [b"message 0".to_vec(), b"message 1".to_vec()]);
}

#[test]
fn listen_stdio_keeps_the_header_deadline_too() {
    // Under inetd, standard input is the peer: a silent one is let go.
    let env = Env::new();
    let (key, _) = env.identity("bob.key");
    let mut child = env
        .cmd()
        .args(["listen", "--stdio", "-i", &key, "-o", &env.p("out.bin")])
        .args(["--header-timeout", "1s"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdin = child.stdin.take().unwrap();
    let status = wait(&mut child);
    drop(stdin);
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let mut out = Vec::new();
    child.stdout.take().unwrap().read_to_end(&mut out).unwrap();
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(err.contains("--header-timeout"), "{err}");
    assert_eq!(&out[..8], HELLO_MAGIC);
    assert_eq!(out[40..], [1], "the hello, then status 1");
    assert!(!env.path("out.bin").exists());
}
