//! Output through the real binary: every command that writes survives a
//! closed standard output (quietly, exit 1) and a full device (a clear
//! error, exit 1), never panicking; the one-line summary of `verify`;
//! `inspect` of armor and its JSON.

// Helpers outside `#[test]` functions unwrap too; clippy.toml allows it only
// inside them.
#![allow(clippy::unwrap_used)]

mod common;

use std::fs;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::kapsel_in;

/// A directory with an identity, its recipient, and a small and a large
/// encrypted file (binary and armored).
struct Setup {
    dir: tempfile::TempDir,
    key: String,
    recipient: String,
}

impl Setup {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("me.key");
        let out = kapsel_in(dir.path())
            .args(["keygen", "-o", key.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let recipient = String::from_utf8(out.stdout).unwrap().trim().to_string();
        let s = Setup {
            dir,
            key: key.to_str().unwrap().to_string(),
            recipient,
        };
        fs::write(s.path("small.txt"), b"hello\n").unwrap();
        fs::write(s.path("big.bin"), common::random_bytes(3 << 20)).unwrap();
        for (input, output, armor) in [
            ("small.txt", "small.kap", false),
            ("big.bin", "big.kap", false),
            ("small.txt", "small.asc", true),
        ] {
            let mut c = s.kapsel();
            c.args(["encrypt", "-r", &s.recipient, "-o", &s.p(output)]);
            if armor {
                c.arg("--armor");
            }
            let out = c.arg(s.p(input)).output().unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        // A real ledger with one entry, for the ledger commands.
        let out = s
            .kapsel()
            .args([
                "decrypt",
                "-i",
                &s.key,
                "--replay-db",
                &s.p("replay.db"),
                &s.p("small.kap"),
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        s
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn p(&self, name: &str) -> String {
        self.path(name).to_str().unwrap().to_string()
    }

    fn kapsel(&self) -> Command {
        let mut c = kapsel_in(self.dir.path());
        c.env("RUST_BACKTRACE", "1").stdin(Stdio::null());
        c
    }

    /// Every command that writes to standard output, as argument lists.
    fn writers(&self) -> Vec<Vec<String>> {
        let s = |v: &[&str]| v.iter().map(|a| a.to_string()).collect::<Vec<_>>();
        let ledger = self.p("replay.db");
        vec![
            s(&["keygen"]),
            s(&["pubkey", &self.key]),
            s(&["export", &self.key]),
            s(&["export", "--private", &self.key]),
            s(&["inspect", &self.p("small.kap")]),
            s(&["inspect", "--json", &self.p("small.kap")]),
            s(&["challenge"]),
            s(&["demo"]),
            s(&["encrypt", "-r", &self.recipient, &self.p("big.bin")]),
            s(&["encrypt", "-a", "-r", &self.recipient, &self.p("small.txt")]),
            s(&["decrypt", "-i", &self.key, &self.p("big.kap")]),
            s(&["decrypt", "-i", &self.key, &self.p("small.kap")]),
            s(&["verify", "-i", &self.key, &self.p("small.kap")]),
            s(&["ledger", "list", "--replay-db", &ledger]),
            s(&["ledger", "list", "--json", "--replay-db", &ledger]),
            s(&["ledger", "check", "--replay-db", &ledger]),
            s(&["--help"]),
            s(&["decrypt", "--help"]),
            s(&["--version"]),
        ]
    }
}

/// The write end of a pipe whose read end is already closed: every write
/// to it fails with EPIPE (or raises SIGPIPE where not ignored).
fn closed_pipe() -> OwnedFd {
    let (read, write) = rustix::pipe::pipe().unwrap();
    drop(read);
    write
}

fn assert_no_panic(what: &str, out: &Output) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(101), "{what}: exit 101\n{stderr}");
    assert!(!stderr.contains("panicked"), "{what}: {stderr}");
    assert!(!stderr.contains("RUST_BACKTRACE"), "{what}: {stderr}");
    assert!(!stderr.contains("stack backtrace"), "{what}: {stderr}");
}

#[test]
fn a_closed_standard_output_ends_every_command_quietly() {
    let s = Setup::new();
    for args in s.writers() {
        let what = args.join(" ");
        let out = s
            .kapsel()
            .args(&args)
            .stdout(Stdio::from(closed_pipe()))
            .output()
            .unwrap();
        assert_no_panic(&what, &out);
        // Quiet: no message at all, and exit 1 (help and version, printed
        // by the argument parser, may exit 0).
        assert_eq!(
            String::from_utf8_lossy(&out.stderr),
            "",
            "{what}: expected no message"
        );
        if !what.contains("help") && !what.contains("version") {
            assert_eq!(out.status.code(), Some(1), "{what}");
        }
    }
}

#[test]
fn a_closed_standard_output_is_quiet_whether_or_not_the_parent_ignores_sigpipe() {
    let s = Setup::new();
    let bin = env!("CARGO_BIN_EXE_kapsel");
    for (trap, label) in [("trap '' PIPE;", "ignored"), ("", "default")] {
        for args in s.writers() {
            let what = format!("{label}: {}", args.join(" "));
            // `head -c1` reads one byte and exits; kapsel's next write fails.
            let script = format!(
                "{trap} \"$0\" \"$@\" | head -c1 >/dev/null; echo \"status=${{PIPESTATUS[0]}}\" >&2"
            );
            let result = Command::new("bash")
                .arg("-c")
                .arg(&script)
                .arg(bin)
                .args(&args)
                .env("KAPSEL_STATE_DIR", s.dir.path())
                .env("RUST_BACKTRACE", "1")
                .stdin(Stdio::null())
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&result.stderr);
            assert!(!stderr.contains("panicked"), "{what}: {stderr}");
            assert!(!stderr.contains("status=101"), "{what}: {stderr}");
            // Small outputs may fit the pipe before head exits (status 0);
            // otherwise the only status is 1, and nothing but it is said.
            let status = stderr
                .lines()
                .find_map(|l| l.strip_prefix("status="))
                .unwrap_or_default();
            assert!(matches!(status, "0" | "1"), "{what}: {stderr}");
            let other: Vec<&str> = stderr
                .lines()
                .filter(|l| !l.starts_with("status="))
                .collect();
            assert!(other.is_empty(), "{what}: {stderr}");
        }
    }
}

#[test]
fn a_full_device_is_a_clear_error_for_every_command() {
    if !Path::new("/dev/full").exists() {
        eprintln!("skipping: no /dev/full");
        return;
    }
    let s = Setup::new();
    for args in s.writers() {
        let what = args.join(" ");
        let out = s
            .kapsel()
            .args(&args)
            .stdout(
                fs::OpenOptions::new()
                    .write(true)
                    .open("/dev/full")
                    .unwrap(),
            )
            .output()
            .unwrap();
        assert_no_panic(&what, &out);
        if what.contains("help") || what.contains("version") {
            // Printed by the argument parser: must not panic, nothing more.
            continue;
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{what}: {stderr}");
        assert!(
            stderr.contains("kapsel: error:") && stderr.contains("no space left on device"),
            "{what}: {stderr}"
        );
    }
}

#[test]
fn a_stopped_consumer_of_decrypt_keeps_the_ledger_entry_and_says_nothing() {
    // A broken pipe after plaintext went out: quiet, but the message
    // counts as accepted (it must never be released twice).
    let s = Setup::new();
    let ledger = s.p("replay.db");
    let bin = env!("CARGO_BIN_EXE_kapsel");
    let out = Command::new("bash")
        .arg("-c")
        .arg("\"$0\" \"$@\" | head -c1 >/dev/null; echo \"status=${PIPESTATUS[0]}\" >&2")
        .arg(bin)
        .args([
            "decrypt",
            "-i",
            &s.key,
            "--replay-db",
            &ledger,
            &s.p("big.kap"),
        ])
        .env("KAPSEL_STATE_DIR", s.dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim(), "status=1", "{stderr}");
    let again = s
        .kapsel()
        .args([
            "decrypt",
            "-i",
            &s.key,
            "--replay-db",
            &ledger,
            &s.p("big.kap"),
        ])
        .stdout(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(6));
}

#[test]
fn inspect_reads_armored_files_like_decrypt() {
    let s = Setup::new();
    let out = s
        .kapsel()
        .args(["inspect", &s.p("small.asc")])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("format:      kapsel v1, ASCII armor"),
        "{text}"
    );
    assert!(text.contains("6 bytes of plaintext in 1 chunk"), "{text}");
    // From a pipe too, and as JSON.
    let armored = fs::read(s.path("small.asc")).unwrap();
    let (code, json, err) =
        common::run_with_stdin(s.kapsel().args(["inspect", "--json"]), &armored);
    assert_eq!(code, Some(0), "{err}");
    let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
    assert_eq!(v["armored"], true);
    assert_eq!(v["plaintext_len"], 6);
    // Damaged armor is a header-class error (3), not a panic or exit 1.
    let mut damaged = armored.clone();
    let at = damaged.len() / 2;
    damaged[at] = b'!';
    let (code, _, err) = common::run_with_stdin(s.kapsel().args(["inspect"]), &damaged);
    assert_eq!(code, Some(3), "{err}");
}

#[test]
fn inspect_json_writes_64_bit_fields_as_strings() {
    let s = Setup::new();
    let out = s
        .kapsel()
        .args(["inspect", "--json", &s.p("small.kap")])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let serial = v["serial"].as_str().expect("serial is a string");
    serial.parse::<u64>().expect("a decimal u64");
    v["created_at"]
        .as_str()
        .expect("created_at is a string")
        .parse::<u64>()
        .unwrap();
}

#[test]
fn verify_prints_one_summary_line_on_success() {
    let s = Setup::new();
    let out = s
        .kapsel()
        .args(["verify", "-i", &s.key, &s.p("small.kap")])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(text.starts_with("verified: "), "{text}");
    assert!(text.contains("6 bytes"), "{text}");
    assert!(text.contains("anonymous"), "{text}");
    // -q keeps it quiet; a failure prints no summary.
    let quiet = s
        .kapsel()
        .args(["-q", "verify", "-i", &s.key, &s.p("small.kap")])
        .output()
        .unwrap();
    assert!(quiet.status.success() && quiet.stdout.is_empty());
    let mut bad = fs::read(s.path("small.kap")).unwrap();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    fs::write(s.path("bad.kap"), bad).unwrap();
    let failed = s
        .kapsel()
        .args(["verify", "-i", &s.key, &s.p("bad.kap")])
        .output()
        .unwrap();
    assert_eq!(failed.status.code(), Some(5));
    assert!(failed.stdout.is_empty());
}

#[test]
fn threads_above_the_bound_are_a_usage_error() {
    let s = Setup::new();
    for cmd in [
        vec!["encrypt", "-r", &s.recipient, "--threads", "100000"],
        vec!["decrypt", "-i", &s.key, "--threads", "1025"],
    ] {
        let out = s
            .kapsel()
            .args(&cmd)
            .arg(s.p("small.kap"))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains("at most 1024 threads"), "{err}");
    }
    let out = s
        .kapsel()
        .args([
            "decrypt",
            "-i",
            &s.key,
            "--threads",
            "1024",
            &s.p("small.kap"),
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(out.stdout, b"hello\n");
}

#[test]
fn decrypt_help_lists_every_exit_code() {
    let s = Setup::new();
    let help = s.kapsel().args(["decrypt", "--help"]).output().unwrap();
    let text = String::from_utf8_lossy(&help.stdout);
    for code in ["0", "1", "2", "3", "4", "5", "6", "8"] {
        assert!(
            text.lines()
                .any(|l| l.trim_start().starts_with(&format!("{code} "))),
            "exit code {code} missing:\n{text}"
        );
    }
    assert!(text.contains("already accepted"), "{text}");
}

/// Starts `kapsel listen ARGS -i KEY -o OUT` and returns it with the
/// address it printed first on stderr.
fn listen(s: &Setup, args: &[&str], out: &str) -> (std::process::Child, String) {
    use std::io::BufRead;
    let mut child = s
        .kapsel()
        .arg("listen")
        .args(args)
        .args(["-i", &s.key, "-o", &s.p(out)])
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufReader::new(child.stderr.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let addr = first
        .trim()
        .strip_prefix("kapsel: listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
        .to_string();
    (child, addr)
}

#[test]
fn listen_takes_a_port_alone_and_quiet_still_prints_a_chosen_port() {
    let s = Setup::new();
    for (args, out) in [(vec!["-q", ":0"], "o1"), (vec!["0"], "o2")] {
        let (mut child, addr) = listen(&s, &args, out);
        assert!(addr.starts_with("0.0.0.0:"), "{addr}");
        let port = addr.rsplit(':').next().unwrap();
        let sent = s
            .kapsel()
            .args([
                "send",
                &format!("127.0.0.1:{port}"),
                "-r",
                &s.recipient,
                &s.p("small.txt"),
            ])
            .output()
            .unwrap();
        assert!(
            sent.status.success(),
            "{}",
            String::from_utf8_lossy(&sent.stderr)
        );
        assert!(child.wait().unwrap().success());
        assert_eq!(fs::read(s.path(out)).unwrap(), b"hello\n");
    }
    // IPv6 in brackets, where the machine has a loopback for it.
    if std::net::TcpListener::bind("[::1]:0").is_ok() {
        let (mut child, addr) = listen(&s, &["[::1]:0"], "o3");
        assert!(addr.starts_with("[::1]:"), "{addr}");
        let sent = s
            .kapsel()
            .args(["send", &addr, "-r", &s.recipient, &s.p("small.txt")])
            .output()
            .unwrap();
        assert!(
            sent.status.success(),
            "{}",
            String::from_utf8_lossy(&sent.stderr)
        );
        assert!(child.wait().unwrap().success());
    }
}

#[test]
fn send_without_a_port_uses_the_default_port() {
    let s = Setup::new();
    // Whatever answers there (most likely nobody), the address says 7000.
    let out = s
        .kapsel()
        .args([
            "send",
            "127.0.0.1",
            "--timeout",
            "2s",
            "-r",
            &s.recipient,
            &s.p("small.txt"),
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        assert!(err.contains("127.0.0.1:7000"), "{err}");
    }
    let bad = s
        .kapsel()
        .args(["send", "host:port", "-r", &s.recipient, &s.p("small.txt")])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("invalid port"));
}

/// Runs `command_line` under a pseudo-terminal `cols` columns wide.
fn under_narrow_pty(cols: u32, command_line: &str) -> (String, Option<i32>) {
    let out = Command::new("script")
        .args([
            "-qec",
            &format!("stty cols {cols}; {command_line}"),
            "/dev/null",
        ])
        .stdin(Stdio::null())
        .output()
        .expect("script(1) from util-linux");
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        out.status.code(),
    )
}

#[test]
fn progress_lines_fit_a_narrow_terminal_and_are_erased_before_messages() {
    if Command::new("script").arg("--version").output().is_err() {
        assert!(
            std::env::var_os("CI").is_none(),
            "script(1) missing under CI"
        );
        eprintln!("skipping: no script(1)");
        return;
    }
    let s = Setup::new();
    let bin = env!("CARGO_BIN_EXE_kapsel");
    for cols in [30u32, 45, 80] {
        let (tty, code) = under_narrow_pty(
            cols,
            &format!(
                "KAPSEL_PROGRESS_DELAY_MS=0 {bin} encrypt -r {} -o {} {}",
                s.recipient,
                s.p(&format!("n{cols}.kap")),
                s.p("big.bin")
            ),
        );
        assert_eq!(code, Some(0), "{tty}");
        assert!(tty.contains("kapsel: encrypting"), "{tty:?}");
        for piece in tty.split('\r') {
            let visible = piece.replace("\x1b[K", "").replace('\n', "");
            assert!(
                visible.chars().count() < cols as usize,
                "{cols} columns: {visible:?} in {tty:?}"
            );
        }
    }
    // send's last message comes after an erased progress line.
    let (mut child, addr) = listen(&s, &["127.0.0.1:0"], "big.out");
    let (tty, code) = under_narrow_pty(
        80,
        &format!(
            "KAPSEL_PROGRESS_DELAY_MS=0 {bin} send {addr} -r {} {}",
            s.recipient,
            s.p("big.bin")
        ),
    );
    assert_eq!(code, Some(0), "{tty}");
    assert!(child.wait().unwrap().success());
    let at = tty.find("kapsel: 127.0.0.1").expect("final message");
    assert!(
        tty[..at].ends_with("\r\x1b[K"),
        "progress not erased before the message: {tty:?}"
    );
}

/// An error about a file's contents names the file (or standard input),
/// so a script that handles many files can tell which one failed.
#[test]
fn errors_about_a_files_contents_name_the_file() {
    let env = common::Env::new();
    let (key, _) = env.identity("id.key");
    let junk = env.write("junk.bin", b"certainly no kapsel header here");
    for args in [
        vec!["decrypt", "-i", key.as_str(), junk.as_str()],
        vec!["verify", "-i", key.as_str(), junk.as_str()],
        vec!["inspect", junk.as_str()],
    ] {
        let (code, out, err) = env.run(&args);
        assert_eq!(code, Some(3), "{args:?}: {err}");
        assert!(out.is_empty());
        assert!(
            err.starts_with(&format!("kapsel: error: {junk}: not a kapsel file")),
            "{args:?}: {err}"
        );
    }
    let (code, _, err) = env.run_stdin(&["decrypt", "-i", &key], b"junk");
    assert_eq!(code, Some(3));
    assert!(
        err.starts_with("kapsel: error: standard input: not a kapsel file"),
        "{err}"
    );
    // Another recipient's file: the same, for "no matching identity".
    let (_, other) = env.identity("other.key");
    let mut w = kapsel_codec::Encryptor::new([other.to_recipient()])
        .unwrap()
        .wrap_output(Vec::new())
        .unwrap();
    std::io::Write::write_all(&mut w, b"hello").unwrap();
    let theirs = env.write("theirs.kap", &w.finish().unwrap());
    let (code, _, err) = env.run(&["decrypt", "-i", &key, &theirs]);
    assert_eq!(code, Some(4));
    assert!(
        err.starts_with(&format!("kapsel: error: {theirs}: no identity")),
        "{err}"
    );
}
