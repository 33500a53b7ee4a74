//! `kapsel listen` / `send` / `challenge`: the live exchange over loopback
//! TCP and over a pipe pair, replays, forged receipts, killed peers, and the
//! offline `--challenge` / `--expect-challenge` path. Every test uses
//! loopback addresses only, and every child process is waited for with a
//! deadline and killed after it.

// Helpers outside `#[test]` functions unwrap too; clippy.toml allows it only
// inside them.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::{random_bytes, write_identity_file};

const HELLO_MAGIC: &[u8; 8] = b"\x8bKXCHG1\n";
const DEADLINE: Duration = Duration::from_secs(60);

fn kapsel() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_kapsel"));
    c.env_remove("KAPSEL_REPLAY_DB")
        .env_remove("KAPSEL_SERIAL_DB");
    c
}

/// Waits for `child` at most `DEADLINE`; kills it and fails after that.
fn wait(child: &mut Child) -> ExitStatus {
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

/// Files in `dir` other than those named in `keep`.
fn other_files(dir: &Path, keep: &[&str]) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !keep.contains(&n.as_str()))
        .collect()
}

struct Setup {
    dir: tempfile::TempDir,
    identity: String,
    recipient: String,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let (identity, id) = write_identity_file(&dir.path().join("bob.key"));
    Setup {
        recipient: id.to_recipient().to_string(),
        identity,
        dir,
    }
}

impl Setup {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write(&self, name: &str, data: &[u8]) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, data).unwrap();
        p
    }
}

/// `--timeout 20s` unless `extra` sets a timeout: no test waits for ever.
fn default_timeout(extra: &[&str]) -> &'static [&'static str] {
    if extra.contains(&"--timeout") {
        &[]
    } else {
        &["--timeout", "20s"]
    }
}

/// A running `kapsel listen 127.0.0.1:0 ...`, its address, and its stderr.
struct Listener {
    child: Child,
    addr: String,
    stderr: Arc<Mutex<String>>,
}

impl Listener {
    fn start(s: &Setup, extra: &[&str]) -> Listener {
        let mut child = kapsel()
            .args(["listen", "127.0.0.1:0", "-i", &s.identity])
            .args(default_timeout(extra))
            .args(extra)
            .env("KAPSEL_STATE_DIR", s.dir.path())
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

    /// Waits until the listener's stderr contains `text` (at most
    /// `DEADLINE`); returns it.
    fn stderr_until(&self, text: &str) -> String {
        let start = Instant::now();
        loop {
            let err = self.stderr.lock().unwrap().clone();
            if err.contains(text) {
                return err;
            }
            assert!(start.elapsed() < DEADLINE, "no {text:?} in {err}");
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Asserts that the listener is still running.
    fn assert_running(&mut self) {
        assert!(
            self.child.try_wait().unwrap().is_none(),
            "the listener stopped"
        );
    }

    fn wait(&mut self) -> (ExitStatus, String) {
        let status = wait(&mut self.child);
        thread::sleep(Duration::from_millis(50));
        (status, self.stderr.lock().unwrap().clone())
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn send_cmd(s: &Setup, addr: &str, extra: &[&str]) -> Command {
    let mut c = kapsel();
    c.args(["send", addr, "-r", &s.recipient])
        .args(default_timeout(extra))
        .args(extra)
        .env("KAPSEL_STATE_DIR", s.dir.path());
    c
}

/// Starts `kapsel send` reading standard input from a pipe the test writes.
fn send_from_a_pipe(s: &Setup, addr: &str) -> (Child, ChildStdin) {
    let mut sender = send_cmd(s, addr, &[])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdin = sender.stdin.take().unwrap();
    (sender, stdin)
}

/// Everything `child` wrote to its piped stderr.
fn stderr_of(child: &mut Child) -> String {
    let mut err = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        pipe.read_to_string(&mut err).unwrap();
    }
    err
}

/// Runs `kapsel send` to completion; returns its status and stderr.
fn send(s: &Setup, addr: &str, extra: &[&str]) -> (ExitStatus, String) {
    let mut child = send_cmd(s, addr, extra)
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
    (wait(&mut child), err)
}

#[test]
fn tcp_exchange_delivers_the_exact_bytes_and_both_sides_exit_zero() {
    let s = setup();
    let data = random_bytes(3_000_000 + 123);
    let input = s.write("in.bin", &data);
    let mut listener = Listener::start(&s, &["-o", s.path("out.bin").to_str().unwrap()]);
    let (status, err) = send(&s, &listener.addr, &[input.to_str().unwrap()]);
    assert!(status.success(), "send: {err}");
    assert!(err.contains("receipt verified"), "{err}");
    let (status, lerr) = listener.wait();
    assert!(status.success(), "listen: {lerr}");
    assert!(lerr.contains("received 3000123 bytes"), "{lerr}");
    assert_eq!(std::fs::read(s.path("out.bin")).unwrap(), data);
}

#[test]
fn signed_exchange_satisfies_expect_sender_and_an_anonymous_one_is_refused() {
    let s = setup();
    let (alice_key, alice) = write_identity_file(&s.path("alice.key"));
    let alice_recipient = alice.to_recipient().to_string();
    let input = s.write("in.bin", b"signed and delivered");
    let out = s.path("out.bin");
    let expect = [
        "-o",
        out.to_str().unwrap(),
        "--expect-sender",
        &alice_recipient,
    ];

    let mut listener = Listener::start(&s, &expect);
    let (status, err) = send(
        &s,
        &listener.addr,
        &["--sign-as", &alice_key, input.to_str().unwrap()],
    );
    assert!(status.success(), "send: {err}");
    assert!(listener.wait().0.success());
    assert_eq!(std::fs::read(&out).unwrap(), b"signed and delivered");
    std::fs::remove_file(&out).unwrap();

    // Anonymous: refused by policy, reported to the sender (exit 7); the
    // header never passed the policy, so the single exchange is still open.
    let mut listener = Listener::start(&s, &expect);
    let (status, err) = send(&s, &listener.addr, &[input.to_str().unwrap()]);
    assert_eq!(status.code(), Some(7), "{err}");
    assert!(err.contains("refused by the receiver"), "{err}");
    listener.stderr_until("no sender");
    listener.assert_running();
    assert!(!out.exists());
    let (status, err) = send(
        &s,
        &listener.addr,
        &["--sign-as", &alice_key, input.to_str().unwrap()],
    );
    assert!(status.success(), "send: {err}");
    assert!(listener.wait().0.success());
    assert_eq!(std::fs::read(&out).unwrap(), b"signed and delivered");
}

#[test]
fn exchange_over_a_pipe_pair_with_stdio_on_both_sides() {
    let s = setup();
    let data = random_bytes(1_000_000);
    let input = s.write("in.bin", &data);
    let out = s.path("out.bin");
    let mut listen = kapsel()
        .args([
            "listen",
            "--stdio",
            "-i",
            &s.identity,
            "-o",
            out.to_str().unwrap(),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let to_listen: ChildStdin = listen.stdin.take().unwrap();
    let from_listen = listen.stdout.take().unwrap();
    let mut sender = kapsel()
        .args([
            "send",
            "--stdio",
            "-r",
            &s.recipient,
            input.to_str().unwrap(),
        ])
        .stdin(Stdio::from(from_listen))
        .stdout(Stdio::from(to_listen))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let send_status = wait(&mut sender);
    let listen_status = wait(&mut listen);
    let err = stderr_of(&mut sender);
    assert!(send_status.success(), "send: {err}");
    assert!(listen_status.success());
    assert_eq!(std::fs::read(&out).unwrap(), data);
}

/// Plays a receiver for one connection of a real `kapsel send`: sends a
/// hello with `challenge`, and returns the framed message it sends, up to and
/// including the end marker. Closes without a reply.
fn record_a_message(s: &Setup, input: &Path, challenge: [u8; 32]) -> (Vec<u8>, ExitStatus, String) {
    let fake = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = fake.local_addr().unwrap().to_string();
    let recorder = thread::spawn(move || {
        let (mut conn, _) = fake.accept().unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        conn.write_all(HELLO_MAGIC).unwrap();
        conn.write_all(&challenge).unwrap();
        let mut framed = Vec::new();
        loop {
            let mut len = [0u8; 4];
            conn.read_exact(&mut len).unwrap();
            framed.extend_from_slice(&len);
            let n = u32::from_be_bytes(len) as usize;
            if n == 0 {
                break;
            }
            let start = framed.len();
            framed.resize(start + n, 0);
            conn.read_exact(&mut framed[start..]).unwrap();
        }
        framed
    });
    let (status, err) = send(s, &addr, &[input.to_str().unwrap()]);
    (recorder.join().unwrap(), status, err)
}

#[test]
fn a_recorded_message_replayed_into_a_new_session_is_refused() {
    let s = setup();
    let input = s.write("in.bin", b"transfer 100 to carol");
    let (recorded, status, err) = record_a_message(&s, &input, [7u8; 32]);
    // The fake receiver sent no receipt: send must not claim delivery.
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(err.contains("no receipt"), "{err}");

    // The recording answers challenge 7...7; a real listener issues a fresh one.
    let out = s.path("out.bin");
    let mut listener = Listener::start(&s, &["-o", out.to_str().unwrap()]);
    let mut conn = TcpStream::connect(&listener.addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut hello = [0u8; 40];
    conn.read_exact(&mut hello).unwrap();
    assert_eq!(&hello[..8], HELLO_MAGIC);
    assert_ne!(hello[8..], [7u8; 32]);
    conn.write_all(&recorded).unwrap();
    let mut reply = Vec::new();
    let _ = conn.read_to_end(&mut reply);
    assert_eq!(reply, [6], "a refusal with the policy status, no receipt");
    // A replay never proved itself: it does not take the single exchange.
    listener.stderr_until("answers another challenge");
    listener.assert_running();
    assert!(!out.exists());
    drop(listener);
    assert!(other_files(s.dir.path(), &["bob.key", "in.bin"]).is_empty());

    // The same recording is accepted offline only with its own challenge.
    let file = s.write("recorded.kap", &unframe(&recorded));
    let decrypt = |challenge: &str| {
        kapsel()
            .args([
                "decrypt",
                "-i",
                &s.identity,
                "--expect-challenge",
                challenge,
            ])
            .arg(&file)
            .output()
            .unwrap()
    };
    let ok = decrypt(&"07".repeat(32));
    assert!(ok.status.success());
    assert_eq!(ok.stdout, b"transfer 100 to carol");
    assert_eq!(decrypt(&"08".repeat(32)).status.code(), Some(6));
}

/// The message inside a framed recording.
fn unframe(mut framed: &[u8]) -> Vec<u8> {
    let mut message = Vec::new();
    loop {
        let n = u32::from_be_bytes(framed[..4].try_into().unwrap()) as usize;
        framed = &framed[4..];
        if n == 0 {
            return message;
        }
        message.extend_from_slice(&framed[..n]);
        framed = &framed[n..];
    }
}

/// A proxy for one connection between a sender and `upstream`: forwards the
/// hello at once, then collects the receiver's reply until it closes, and
/// hands `replace(reply)` to the sender. Returns its address and the reply
/// the receiver really sent.
fn proxy(
    upstream: String,
    replace: impl FnOnce(&[u8]) -> Vec<u8> + Send + 'static,
) -> (String, thread::JoinHandle<Vec<u8>>) {
    let front = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = front.local_addr().unwrap().to_string();
    let handle = thread::spawn(move || {
        let (mut sender, _) = front.accept().unwrap();
        let mut receiver = TcpStream::connect(upstream).unwrap();
        receiver
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let mut hello = [0u8; 40];
        receiver.read_exact(&mut hello).unwrap();
        sender.write_all(&hello).unwrap();
        let (mut s_in, mut r_out) = (sender.try_clone().unwrap(), receiver.try_clone().unwrap());
        let forward = thread::spawn(move || {
            let _ = std::io::copy(&mut s_in, &mut r_out);
        });
        let mut reply = Vec::new();
        let _ = receiver.read_to_end(&mut reply);
        let _ = sender.write_all(&replace(&reply));
        let _ = sender.shutdown(std::net::Shutdown::Both);
        let _ = forward.join();
        reply
    });
    (addr, handle)
}

#[test]
fn a_receipt_for_one_message_does_not_validate_another_and_a_damaged_one_fails() {
    let s = setup();
    let input = s.write("in.bin", b"the same plaintext both times");
    let out = s.path("out.bin");

    // Session 1: the real receipt, passed through.
    let mut listener = Listener::start(&s, &["-o", out.to_str().unwrap()]);
    let (addr, first) = proxy(listener.addr.clone(), |r| r.to_vec());
    let (status, err) = send(&s, &addr, &[input.to_str().unwrap()]);
    assert!(status.success(), "{err}");
    assert!(listener.wait().0.success());
    let first_reply = first.join().unwrap();
    assert_eq!(first_reply.len(), 33);
    assert_eq!(first_reply[0], 0);

    // Sessions 2 to 4: the receiver accepts, but the sender is shown session
    // 1's receipt, the real receipt with one bit flipped, or nothing.
    type Replace = Box<dyn FnOnce(&[u8]) -> Vec<u8> + Send>;
    let old = first_reply.clone();
    let cases: [(&str, Replace, i32, &str); 3] = [
        (
            "session 1's receipt",
            Box::new(move |_| old),
            5,
            "receipt does not verify",
        ),
        (
            "a flipped bit",
            Box::new(|r| {
                let mut r = r.to_vec();
                r[32] ^= 1;
                r
            }),
            5,
            "receipt does not verify",
        ),
        ("no reply", Box::new(|_| Vec::new()), 1, "no receipt"),
    ];
    for (what, replace, code, message) in cases {
        let mut listener = Listener::start(&s, &["-o", out.to_str().unwrap()]);
        let (addr, session) = proxy(listener.addr.clone(), replace);
        let (status, err) = send(&s, &addr, &[input.to_str().unwrap()]);
        assert_eq!(status.code(), Some(code), "{what}: {err}");
        assert!(err.contains(message), "{what}: {err}");
        assert!(listener.wait().0.success(), "{what}: the receiver accepted");
        assert_ne!(
            session.join().unwrap(),
            first_reply,
            "{what}: a fresh receipt each time"
        );
    }
}

#[test]
fn a_sender_killed_mid_stream_leaves_no_output_on_the_receiver() {
    let s = setup();
    let out = s.path("out.bin");
    let mut listener = Listener::start(&s, &["-o", out.to_str().unwrap()]);
    let (mut sender, mut stdin) = send_from_a_pipe(&s, &listener.addr);
    stdin.write_all(&random_bytes(4 << 20)).unwrap();
    // Let the first batches reach the receiver, then kill the sender.
    thread::sleep(Duration::from_millis(500));
    sender.kill().unwrap();
    let _ = sender.wait();
    let (status, lerr) = listener.wait();
    assert_eq!(status.code(), Some(1), "{lerr}");
    assert!(
        lerr.contains("closed the connection before the end of the message"),
        "{lerr}"
    );
    assert!(lerr.contains("nothing was stored"), "{lerr}");
    assert!(!out.exists());
    assert!(other_files(s.dir.path(), &["bob.key"]).is_empty());
}

#[test]
fn a_receiver_killed_mid_stream_makes_the_sender_exit_non_zero() {
    let s = setup();
    let mut listener = Listener::start(&s, &["-o", s.path("out.bin").to_str().unwrap()]);
    let (mut sender, mut stdin) = send_from_a_pipe(&s, &listener.addr);
    stdin.write_all(&random_bytes(2 << 20)).unwrap();
    thread::sleep(Duration::from_millis(300));
    listener.child.kill().unwrap();
    let _ = listener.child.wait();
    // Keep the sender busy until it notices, then end its input.
    let chunk = random_bytes(1 << 20);
    for _ in 0..64 {
        if stdin.write_all(&chunk).is_err() {
            break;
        }
    }
    drop(stdin);
    let status = wait(&mut sender);
    let err = stderr_of(&mut sender);
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(err.contains("127.0.0.1"), "{err}");
}

#[test]
fn keep_going_stores_each_message_in_its_own_file() {
    let s = setup();
    let inbox = s.path("inbox");
    std::fs::create_dir(&inbox).unwrap();
    let mut listener = Listener::start(&s, &["--keep-going", "-o", inbox.to_str().unwrap()]);
    let messages: Vec<Vec<u8>> = vec![b"first".to_vec(), random_bytes(200_000), Vec::new()];
    for (i, m) in messages.iter().enumerate() {
        let input = s.write(&format!("in{i}"), m);
        let (status, err) = send(&s, &listener.addr, &[input.to_str().unwrap()]);
        assert!(status.success(), "message {i}: {err}");
    }
    // A refused connection does not stop the listener.
    let mut bad = TcpStream::connect(&listener.addr).unwrap();
    let mut hello = [0u8; 40];
    bad.read_exact(&mut hello).unwrap();
    bad.write_all(&[0xff, 0xff, 0xff, 0xfe]).unwrap();
    let mut reply = Vec::new();
    let _ = bad.read_to_end(&mut reply);
    assert_eq!(
        reply,
        [3],
        "a framing error is reported as malformed (status 3)"
    );
    let input = s.write("in-last", b"after the bad one");
    assert!(send(&s, &listener.addr, &[input.to_str().unwrap()])
        .0
        .success());

    let mut stored: Vec<Vec<u8>> = std::fs::read_dir(&inbox)
        .unwrap()
        .map(|e| std::fs::read(e.unwrap().path()).unwrap())
        .collect();
    stored.sort();
    let mut expected = messages.clone();
    expected.push(b"after the bad one".to_vec());
    expected.sort();
    assert_eq!(stored, expected);
    assert!(
        listener.child.try_wait().unwrap().is_none(),
        "the listener keeps going"
    );
}

#[test]
fn send_refuses_a_peer_that_is_not_a_kapsel_listener() {
    let s = setup();
    let input = s.write("in.bin", b"x");
    let fake = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = fake.local_addr().unwrap().to_string();
    let server = thread::spawn(move || {
        let (mut conn, _) = fake.accept().unwrap();
        let _ = conn.write_all(b"SSH-2.0-OpenSSH_9.2\r\n");
        thread::sleep(Duration::from_millis(200));
    });
    let (status, err) = send(&s, &addr, &[input.to_str().unwrap()]);
    assert_eq!(status.code(), Some(3), "{err}");
    assert!(err.contains("not a kapsel exchange receiver"), "{err}");
    server.join().unwrap();

    // Nobody listening at all.
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    let (status, err) = send(&s, &closed, &[input.to_str().unwrap()]);
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(err.contains("cannot connect"), "{err}");
}

#[test]
fn offline_challenge_encrypt_and_decrypt() {
    let s = setup();
    let run = |args: &[&str]| kapsel().args(args).output().unwrap();
    let c = run(&["challenge"]);
    assert!(c.status.success());
    let challenge = String::from_utf8(c.stdout).unwrap().trim().to_string();
    assert_eq!(challenge.len(), 64);
    assert!(challenge.bytes().all(|b| b.is_ascii_hexdigit()));
    let other = String::from_utf8(run(&["challenge"]).stdout).unwrap();
    assert_ne!(challenge, other.trim());

    let input = s.write("in.txt", b"offline exchange");
    let answered = s.path("answered.kap");
    let plain = s.path("plain.kap");
    let (i, a, p) = (
        input.to_str().unwrap(),
        answered.to_str().unwrap(),
        plain.to_str().unwrap(),
    );
    assert!(run(&[
        "encrypt",
        "-r",
        &s.recipient,
        "--challenge",
        &challenge,
        "-o",
        a,
        i
    ])
    .status
    .success());
    assert!(run(&["encrypt", "-r", &s.recipient, "-o", p, i])
        .status
        .success());

    let ok = run(&[
        "decrypt",
        "-i",
        &s.identity,
        "--expect-challenge",
        &challenge,
        a,
    ]);
    assert!(ok.status.success());
    assert_eq!(ok.stdout, b"offline exchange");
    let upper = challenge.to_uppercase();
    assert!(
        run(&["verify", "-i", &s.identity, "--expect-challenge", &upper, a])
            .status
            .success()
    );

    let wrong = run(&[
        "decrypt",
        "-i",
        &s.identity,
        "--expect-challenge",
        other.trim(),
        a,
    ]);
    assert_eq!(wrong.status.code(), Some(6));
    assert!(
        wrong.stdout.is_empty(),
        "no plaintext before the policy check"
    );
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("another challenge"));
    let missing = run(&[
        "decrypt",
        "-i",
        &s.identity,
        "--expect-challenge",
        &challenge,
        p,
    ]);
    assert_eq!(missing.status.code(), Some(6));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("carries no challenge"));
    // Files with a challenge decrypt as usual without the flag.
    assert!(run(&["decrypt", "-i", &s.identity, a]).status.success());

    for bad in ["abc", &"zz".repeat(32), &format!("{challenge}00")] {
        let r = run(&["decrypt", "-i", &s.identity, "--expect-challenge", bad, a]);
        assert_eq!(r.status.code(), Some(2), "{bad}");
        let r = run(&["encrypt", "-r", &s.recipient, "--challenge", bad, i]);
        assert_eq!(r.status.code(), Some(2), "{bad}");
    }

    let json = run(&["inspect", "--json", a]);
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v["challenge"], challenge.as_str());
    let json = run(&["inspect", "--json", p]);
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert!(v["challenge"].is_null());
}

#[test]
fn usage_errors_name_the_missing_piece() {
    let s = setup();
    let run = |args: &[&str]| kapsel().args(args).stdin(Stdio::null()).output().unwrap();
    let cases: [(&[&str], &str); 5] = [
        (
            &["listen", "--stdio", "-i", &s.identity],
            "--stdio needs -o FILE",
        ),
        (
            &["listen", "127.0.0.1:0", "-i", &s.identity, "--keep-going"],
            "--keep-going needs -o DIR",
        ),
        (&["listen", "127.0.0.1:0", "-o", "x"], "no identity given"),
        (
            &["send", "--stdio", "-r", &s.recipient],
            "--stdio needs an input file",
        ),
        (&["send", "127.0.0.1:9", "x"], "no recipients given"),
    ];
    for (args, message) in cases {
        let r = run(args);
        assert_eq!(r.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&r.stderr);
        assert!(err.contains(message), "{args:?}: {err}");
    }
}

#[test]
fn a_sender_whose_input_fails_abandons_the_message_and_nothing_is_stored() {
    let s = setup();
    let out = s.path("out.bin");
    let mut listener = Listener::start(&s, &["-o", out.to_str().unwrap()]);
    // A directory opens, but reading it fails: after the header went out.
    let (status, err) = send(&s, &listener.addr, &[s.dir.path().to_str().unwrap()]);
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(err.contains("cannot read"), "{err}");
    let (status, lerr) = listener.wait();
    assert_eq!(status.code(), Some(1), "{lerr}");
    assert!(lerr.contains("the sender abandoned the message"), "{lerr}");
    assert!(!out.exists());
    assert!(other_files(s.dir.path(), &["bob.key"]).is_empty());
}

#[test]
fn silent_peers_time_out_on_both_sides() {
    let s = setup();
    // A receiver whose sender connects and says nothing.
    let out = s.path("out.bin");
    let mut listener = Listener::start(&s, &["-o", out.to_str().unwrap(), "--timeout", "1s"]);
    let mut silent = TcpStream::connect(&listener.addr).unwrap();
    silent
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut hello = [0u8; 40];
    silent.read_exact(&mut hello).unwrap();
    let lerr = listener.stderr_until("timed out");
    assert!(lerr.contains("no progress for 1 s"), "{lerr}");
    // Closed by the listener, which waits for the next sender.
    let mut rest = Vec::new();
    let _ = silent.read_to_end(&mut rest);
    assert!(rest.len() <= 1, "at most a status byte: {rest:?}");
    listener.assert_running();
    assert!(!out.exists());
    drop(silent);
    drop(listener);

    // A sender whose receiver accepts and never sends a challenge.
    let input = s.write("in.bin", b"x");
    let mute = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = mute.local_addr().unwrap().to_string();
    let server = thread::spawn(move || {
        let (conn, _) = mute.accept().unwrap();
        thread::sleep(Duration::from_secs(3));
        drop(conn);
    });
    let (status, err) = send(&s, &addr, &["--timeout", "1s", input.to_str().unwrap()]);
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(err.contains("timed out waiting for the challenge"), "{err}");
    server.join().unwrap();
}

/// Connects to a fresh listener, encrypts `plaintext` with `kapsel encrypt
/// --challenge` for its challenge, flips one bit of the message at
/// `flip(len(M))`, sends it framed in 1 MiB segments followed by `end`
/// instead of the end marker, and closes the sending side. Returns the
/// reply, the listener's exit status and its stderr.
fn send_damaged_without_end_marker(
    s: &Setup,
    plaintext: &[u8],
    flip: impl FnOnce(usize) -> usize,
    end: &[u8],
) -> (Vec<u8>, ExitStatus, String) {
    let input = s.write("in.bin", plaintext);
    let out = s.path("out.bin");
    let mut listener = Listener::start(s, &["-o", out.to_str().expect("utf-8 path")]);
    let mut conn = TcpStream::connect(&listener.addr).expect("connect");
    conn.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let mut hello = [0u8; 40];
    conn.read_exact(&mut hello).expect("hello");
    let challenge: String = hello[8..].iter().map(|b| format!("{b:02x}")).collect();
    let encrypted = kapsel()
        .args(["encrypt", "-r", &s.recipient, "--challenge", &challenge])
        .arg(&input)
        .output()
        .expect("kapsel encrypt");
    assert!(encrypted.status.success());
    let mut message = encrypted.stdout;
    let at = flip(message.len());
    message[at] ^= 0x40;
    for segment in message.chunks(1 << 20) {
        conn.write_all(&(segment.len() as u32).to_be_bytes())
            .expect("send");
        conn.write_all(segment).expect("send");
    }
    conn.write_all(end).expect("send");
    conn.shutdown(std::net::Shutdown::Write).expect("shutdown");
    let mut reply = Vec::new();
    let _ = conn.read_to_end(&mut reply);
    let (status, err) = listener.wait();
    assert!(!out.exists());
    (reply, status, err)
}

#[test]
fn a_damaged_chunk_before_a_close_abort_or_bad_length_is_answered_with_status_5() {
    use kapsel_codec::hazmat::payload::{CHUNK_SIZE, ENCRYPTED_CHUNK_SIZE};
    let s = setup();
    // Chunk 1 of the message is damaged; the decoder opens it as soon as
    // its bytes arrived, before the framing reader looks for the end marker
    // (SPEC 13.2), even if it read far ahead: 5 chunks are read whole
    // before any is opened, 40 in batches.
    let endings: [(&str, &[u8]); 4] = [
        ("a close", &[]),
        ("a close inside a length", &[0, 0]),
        ("the abort marker", &[0xFF; 4]),
        (
            "a segment length above the limit",
            &[0x00, 0x10, 0x00, 0x01],
        ),
    ];
    for chunks in [5, 40] {
        let plaintext = random_bytes((chunks - 1) * CHUNK_SIZE + 100);
        for (what, end) in endings {
            let case = format!("{chunks} chunks, then {what}");
            let (reply, status, err) = send_damaged_without_end_marker(
                &s,
                &plaintext,
                |len| len - (100 + 16) - (chunks - 2) * ENCRYPTED_CHUNK_SIZE + 10,
                end,
            );
            assert_eq!(reply, [5], "{case}: {err}");
            assert_eq!(status.code(), Some(5), "{case}: {err}");
            assert!(
                err.contains("payload authentication failed: chunk 1 "),
                "{case}: {err}"
            );
            assert!(!err.contains("nothing was stored"), "{case}: {err}");
        }
    }
}

#[test]
fn a_damaged_final_chunk_then_a_close_without_end_marker_is_connection_closed() {
    let s = setup();
    // The final (short) chunk is opened only at the end of the message,
    // which the framing reader never finds: the connection closed first,
    // and the sender gets no reply.
    let plaintext = random_bytes(3 * kapsel_codec::hazmat::payload::CHUNK_SIZE + 100);
    let (reply, status, err) = send_damaged_without_end_marker(&s, &plaintext, |len| len - 10, &[]);
    assert_eq!(reply, [] as [u8; 0], "{err}");
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(
        err.contains("closed the connection before the end of the message"),
        "{err}"
    );
    assert!(err.contains("nothing was stored"), "{err}");
}

#[test]
fn listen_and_send_carry_a_post_quantum_message() {
    let s = setup();
    let pq_key = s.path("pq.key");
    let made = kapsel()
        .args(["keygen", "--pq", "-o"])
        .arg(&pq_key)
        .env("KAPSEL_STATE_DIR", s.dir.path())
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let pq = String::from_utf8(made.stdout).unwrap().trim().to_string();
    let data = random_bytes(300_000);
    let src = s.write("message", &data);
    let dest = s.path("received");
    // The listener holds a P-256 and a post-quantum identity.
    let mut listener = Listener::start(
        &s,
        &["-i", pq_key.to_str().unwrap(), "-o", dest.to_str().unwrap()],
    );
    let sent = kapsel()
        .args(["send", &listener.addr, "-r", &pq, "--timeout", "20s"])
        .arg(&src)
        .env("KAPSEL_STATE_DIR", s.dir.path())
        .output()
        .unwrap();
    assert!(
        sent.status.success(),
        "{}",
        String::from_utf8_lossy(&sent.stderr)
    );
    let (status, err) = listener.wait();
    assert!(status.success(), "{err}");
    assert!(std::fs::read(&dest).unwrap() == data);

    // Mixing it with a P-256 recipient is refused before any connection,
    // as for encrypt.
    let mixed = kapsel()
        .args(["send", "127.0.0.1:9", "-r", &pq, "-r", &s.recipient])
        .arg(&src)
        .env("KAPSEL_STATE_DIR", s.dir.path())
        .output()
        .unwrap();
    assert_eq!(mixed.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&mixed.stderr).contains("post-quantum"));
}
