//! PKCS#11 tokens through the real binary, on SoftHSM2 tokens made in a
//! temporary directory per test: `tokens`, `keygen --pkcs11`, `pubkey URI`,
//! every way to give the PIN (file, environment, terminal) and a distinct
//! exit code and message for each failure. Without SoftHSM2 the tests skip
//! (and fail when `CI=true`).

// Helpers outside `#[test]` functions unwrap too; clippy.toml allows it only
// inside them.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use common::Env;

const LIBRARY: &str = "/usr/lib/softhsm/libsofthsm2.so";

/// A SoftHSM2 configuration with one initialized token, `backup`, PIN 1234.
struct Hsm {
    env: Env,
}

impl Hsm {
    fn new() -> Option<Self> {
        if !PathBuf::from(LIBRARY).exists() {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "SoftHSM2 is missing under CI"
            );
            eprintln!("skipped: SoftHSM2 not installed");
            return None;
        }
        let env = Env::new();
        std::fs::create_dir(env.path("tokens")).unwrap();
        env.write(
            "softhsm2.conf",
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
                env.p("tokens")
            )
            .as_bytes(),
        );
        let hsm = Hsm { env };
        let out = Command::new("softhsm2-util")
            .args(["--init-token", "--free", "--label", "backup"])
            .args(["--pin", "1234", "--so-pin", "5678"])
            .env("SOFTHSM2_CONF", hsm.env.p("softhsm2.conf"))
            .output()
            .unwrap();
        assert!(out.status.success());
        Some(hsm)
    }

    fn kapsel(&self) -> Command {
        let mut c = self.env.cmd();
        c.env("SOFTHSM2_CONF", self.env.p("softhsm2.conf"))
            .env("KAPSEL_PKCS11_MODULE", LIBRARY)
            .env_remove("KAPSEL_PKCS11_PIN")
            .stdin(Stdio::null());
        c
    }

    fn run(&self, args: &[&str], pin: Option<&str>) -> Output {
        let mut c = self.kapsel();
        if let Some(p) = pin {
            c.env("KAPSEL_PKCS11_PIN", p);
        }
        c.args(args).output().unwrap()
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn keygen_on_a_token_prints_the_recipient_that_pubkey_and_tokens_show() {
    let Some(h) = Hsm::new() else { return };
    let listed = h.run(&["tokens"], None);
    assert_eq!(listed.status.code(), Some(0), "{}", text(&listed.stderr));
    assert!(
        text(&listed.stdout).contains("pkcs11:token=backup"),
        "{}",
        text(&listed.stdout)
    );

    let uri = "pkcs11:token=backup;object=kapsel";
    let made = h.run(&["keygen", "--pkcs11", uri], Some("1234"));
    assert_eq!(made.status.code(), Some(0), "{}", text(&made.stderr));
    let recipient = text(&made.stdout).trim().to_string();
    assert!(recipient.starts_with("kapsel1"), "{recipient}");

    h.env.write("pin", b"1234\n");
    let shown = h.run(&["pubkey", uri, "--pin-file", &h.env.p("pin")], None);
    assert_eq!(shown.status.code(), Some(0), "{}", text(&shown.stderr));
    assert_eq!(text(&shown.stdout).trim(), recipient);

    let keys = h.run(&["tokens", "--keys", "pkcs11:token=backup"], Some("1234"));
    assert_eq!(keys.status.code(), Some(0), "{}", text(&keys.stderr));
    let line = text(&keys.stdout);
    assert!(
        line.contains("object=kapsel") && line.contains(&recipient),
        "{line}"
    );

    // The key is a recipient like any other.
    let msg = h.env.write("msg", b"for the token");
    let enc = h.run(
        &["encrypt", "-r", &recipient, "-o", &h.env.p("msg.kap"), &msg],
        None,
    );
    assert_eq!(enc.status.code(), Some(0), "{}", text(&enc.stderr));
}

#[test]
fn each_token_failure_has_its_message_and_exit_code() {
    let Some(h) = Hsm::new() else { return };
    let uri = "pkcs11:token=backup;object=kapsel";
    let made = h.run(&["keygen", "--pkcs11", uri], Some("1234"));
    assert_eq!(made.status.code(), Some(0), "{}", text(&made.stderr));
    let cases: Vec<(Vec<&str>, Option<&str>, i32, &str)> = vec![
        (
            vec!["pubkey", uri],
            Some("0000"),
            10,
            "wrong PIN for token backup",
        ),
        (
            vec!["pubkey", "pkcs11:token=other;object=kapsel"],
            Some("1234"),
            9,
            "no token matches",
        ),
        (
            vec!["pubkey", "pkcs11:token=backup;object=none"],
            Some("1234"),
            9,
            "no P-256 private key",
        ),
        (
            vec!["pubkey", uri, "--pkcs11-module", "/nonexistent/module.so"],
            Some("1234"),
            9,
            "no PKCS#11 module at /nonexistent/module.so",
        ),
        (
            vec!["pubkey", uri, "--pkcs11-module", "/bin/true"],
            Some("1234"),
            9,
            "does not load",
        ),
        (
            vec!["pubkey", "pkcs11:token=backup?pin-value=1234"],
            None,
            2,
            "pin-value",
        ),
        (
            vec!["keygen", "--pkcs11", "pkcs11:token=backup"],
            Some("1234"),
            2,
            "object=LABEL",
        ),
        (
            vec!["keygen", "--pkcs11", uri],
            Some("1234"),
            9,
            "already exists",
        ),
    ];
    for (args, pin, code, message) in cases {
        let out = h.run(&args, pin);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {err}");
        assert!(err.contains(message), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}

#[test]
fn the_pin_is_asked_on_the_terminal_without_echo() {
    let Some(h) = Hsm::new() else { return };
    if Command::new("script").arg("--version").output().is_err() {
        assert!(std::env::var("CI").as_deref() != Ok("true"));
        return;
    }
    let line = format!(
        "KAPSEL_STATE_DIR={} SOFTHSM2_CONF={} KAPSEL_PKCS11_MODULE={LIBRARY} {} keygen --pkcs11 'pkcs11:token=backup;object=tty'",
        h.env.p("state"),
        h.env.p("softhsm2.conf"),
        env!("CARGO_BIN_EXE_kapsel")
    );
    // script(1) forwards its standard input to the terminal; the PIN is
    // typed after the prompt appears (sleep), as a person would.
    let out = Command::new("sh")
        .args([
            "-c",
            &format!("(sleep 1; echo 1234; sleep 2) | script -qec \"{line}\" /dev/null"),
        ])
        .output()
        .unwrap();
    let tty = text(&out.stdout);
    assert!(tty.contains("PIN for token backup:"), "{tty}");
    assert!(!tty.contains("1234"), "the PIN was echoed: {tty}");
    assert!(tty.contains("kapsel1"), "{tty}");
}

#[test]
fn a_token_key_decrypts_whole_files_ranges_and_many_files_with_one_pin() {
    let Some(h) = Hsm::new() else { return };
    let uri = "pkcs11:token=backup;object=kapsel";
    let made = h.run(&["keygen", "--pkcs11", uri], Some("1234"));
    assert_eq!(made.status.code(), Some(0), "{}", text(&made.stderr));
    let recipient = text(&made.stdout).trim().to_string();
    let plain: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    for n in ["a", "b"] {
        let src = h.env.write(n, &plain);
        let out = format!("{src}.kap");
        let enc = h.run(&["encrypt", "-r", &recipient, "-o", &out, &src], None);
        assert_eq!(enc.status.code(), Some(0), "{}", text(&enc.stderr));
        std::fs::remove_file(&src).unwrap();
    }
    let (a, b) = (h.env.p("a.kap"), h.env.p("b.kap"));
    // -i with the URI.
    let out = h.run(&["decrypt", "-i", uri, &a], Some("1234"));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(out.stdout == plain);
    // An identity file holding the URI, beside a software identity.
    let (other, _) = h.env.identity("other.key");
    let mut ids = std::fs::read_to_string(&other).unwrap();
    ids.push_str(&format!("# the token key\n{uri}\n"));
    let ids_file = h.env.write("ids", ids.as_bytes());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&ids_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let out = h.run(
        &[
            "decrypt", "-i", &ids_file, "--offset", "5000", "--length", "20", &a,
        ],
        Some("1234"),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(out.stdout, &plain[5000..5020]);
    let out = h.run(&["verify", "-i", uri, &b], Some("1234"));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    // Two files, one PIN prompt on the terminal.
    if Command::new("script").arg("--version").output().is_err() {
        return;
    }
    let line = format!(
        "KAPSEL_STATE_DIR={} SOFTHSM2_CONF={} KAPSEL_PKCS11_MODULE={LIBRARY} {} decrypt -i '{uri}' {a} {b}",
        h.env.p("state"),
        h.env.p("softhsm2.conf"),
        env!("CARGO_BIN_EXE_kapsel")
    );
    let out = Command::new("sh")
        .args([
            "-c",
            &format!("(sleep 1; echo 1234; sleep 2) | script -qec \"{line}\" /dev/null"),
        ])
        .output()
        .unwrap();
    let tty = text(&out.stdout);
    assert_eq!(tty.matches("PIN for token backup").count(), 1, "{tty}");
    assert_eq!(std::fs::read(h.env.path("a")).unwrap(), plain);
    assert_eq!(std::fs::read(h.env.path("b")).unwrap(), plain);
    // A wrong PIN ends decrypt with the PIN's exit code, before any output.
    let out = h.run(
        &["decrypt", "-i", uri, "-o", &h.env.p("never"), &a],
        Some("9999"),
    );
    assert_eq!(out.status.code(), Some(10), "{}", text(&out.stderr));
    assert!(!h.env.path("never").exists());
}

/// Makes the token key `object=kapsel` and returns its URI and recipient.
fn token_key(h: &Hsm) -> (&'static str, String) {
    let uri = "pkcs11:token=backup;object=kapsel";
    let made = h.run(&["keygen", "--pkcs11", uri], Some("1234"));
    assert_eq!(made.status.code(), Some(0), "{}", text(&made.stderr));
    (uri, text(&made.stdout).trim().to_string())
}

#[test]
fn a_token_key_signs_files_that_receivers_verify() {
    let Some(h) = Hsm::new() else { return };
    let (uri, signer) = token_key(&h);
    let (bob_key, bob) = h.env.identity("bob.key");
    let bob = bob.to_recipient().to_string();
    // Three signed segments, and a short file.
    let plain: Vec<u8> = (0..2_500_000u32).map(|i| (i % 253) as u8).collect();
    let src = h.env.write("plain", &plain);
    // --sign-as the URI, and --sign-as an identity file holding it.
    let ids = h
        .env
        .write("signer.ids", format!("# the token key\n{uri}\n").as_bytes());
    for (sign_as, name) in [(uri, "by-uri.kap"), (ids.as_str(), "by-file.kap")] {
        let out = h.env.p(name);
        let enc = h.run(
            &[
                "encrypt",
                "-r",
                &bob,
                "--sign-as",
                sign_as,
                "-o",
                &out,
                &src,
            ],
            Some("1234"),
        );
        assert_eq!(enc.status.code(), Some(0), "{}", text(&enc.stderr));
        let dec = h.run(
            &["decrypt", "-i", &bob_key, "--expect-sender", &signer, &out],
            None,
        );
        assert_eq!(dec.status.code(), Some(0), "{}", text(&dec.stderr));
        assert!(dec.stdout == plain);
        let shown = h.run(&["inspect", &out], None);
        assert!(
            text(&shown.stdout).contains(&signer),
            "{}",
            text(&shown.stdout)
        );
    }
    // Another expected sender is refused: the signature is the token's.
    let (_, other) = h.env.identity("other.key");
    let other = other.to_recipient().to_string();
    let dec = h.run(
        &[
            "decrypt",
            "-i",
            &bob_key,
            "--expect-sender",
            &other,
            &h.env.p("by-uri.kap"),
        ],
        None,
    );
    assert_ne!(dec.status.code(), Some(0));
    assert!(dec.stdout.is_empty());
    // A wrong PIN for the signer: the PIN's exit code, and no output.
    let never = h.env.p("never.kap");
    let enc = h.run(
        &["encrypt", "-r", &bob, "--sign-as", uri, "-o", &never, &src],
        Some("0000"),
    );
    assert_eq!(enc.status.code(), Some(10), "{}", text(&enc.stderr));
    assert!(!h.env.path("never.kap").exists());
}

#[test]
fn a_token_removed_while_signing_ends_with_the_token_exit_code_and_no_file() {
    use std::io::{Read, Write};
    let Some(h) = Hsm::new() else { return };
    let (uri, _) = token_key(&h);
    let (_, bob) = h.env.identity("bob.key");
    let bob = bob.to_recipient().to_string();
    let remove_token = || {
        for entry in std::fs::read_dir(h.env.path("tokens")).unwrap() {
            std::fs::remove_dir_all(entry.unwrap().path()).unwrap();
        }
    };
    let chunk = vec![7u8; 1 << 20];

    // To standard output: the first segments go out signed, then the token
    // goes away, and the run ends with exit code 9 (a token failure).
    let mut child = h
        .kapsel()
        .env("KAPSEL_PKCS11_PIN", "1234")
        .args(["encrypt", "-r", &bob, "--sign-as", uri])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    // Two full segments (a live input releases them as soon as they are
    // complete and the input pauses).
    stdin.write_all(&chunk).unwrap();
    stdin.write_all(&chunk).unwrap();
    stdin.flush().unwrap();
    let mut seen = vec![0u8; 2 * (64 * (16384 + 16) + 64)];
    stdout.read_exact(&mut seen).unwrap();
    remove_token();
    // The next segment cannot be signed. (Writes may fail once the
    // process has stopped reading.)
    for _ in 0..4 {
        if stdin.write_all(&chunk).is_err() {
            break;
        }
    }
    drop(stdin);
    let mut rest = Vec::new();
    stdout.read_to_end(&mut rest).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(9), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("token was removed"),
        "{}",
        text(&out.stderr)
    );

    // To a file: nothing under its name, and no hidden leftovers.
    let h = Hsm::new().unwrap();
    let (uri, _) = token_key(&h);
    let target = h.env.p("out.kap");
    let mut child = h
        .kapsel()
        .env("KAPSEL_PKCS11_PIN", "1234")
        .args(["encrypt", "-r", &bob, "--sign-as", uri, "-o", &target])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(&chunk).unwrap();
    for entry in std::fs::read_dir(h.env.path("tokens")).unwrap() {
        std::fs::remove_dir_all(entry.unwrap().path()).unwrap();
    }
    for _ in 0..4 {
        if stdin.write_all(&chunk).is_err() {
            break;
        }
    }
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(9), "{}", text(&out.stderr));
    let left: Vec<_> = std::fs::read_dir(h.env.path(""))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.contains("out"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn listen_receives_with_a_token_key() {
    use std::io::BufRead;
    let Some(h) = Hsm::new() else { return };
    let (uri, recipient) = token_key(&h);
    let plain: Vec<u8> = (0..300_000u32).map(|i| (i % 241) as u8).collect();
    let src = h.env.write("plain", &plain);
    let out = h.env.p("received");
    let mut listener = h
        .kapsel()
        .env("KAPSEL_PKCS11_PIN", "1234")
        .args([
            "listen",
            "127.0.0.1:0",
            "-i",
            uri,
            "-o",
            &out,
            "--timeout",
            "20s",
        ])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = std::io::BufReader::new(listener.stderr.take().unwrap());
    let mut first = String::new();
    stderr.read_line(&mut first).unwrap();
    let addr = first
        .trim()
        .strip_prefix("kapsel: listening on ")
        .unwrap_or_else(|| panic!("{first}"))
        .to_string();
    let sent = h.run(&["send", &addr, "-r", &recipient, &src], None);
    assert_eq!(sent.status.code(), Some(0), "{}", text(&sent.stderr));
    let status = listener.wait().unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    assert!(status.success(), "{rest}");
    assert_eq!(std::fs::read(&out).unwrap(), plain);
}

#[test]
fn send_abandons_the_message_when_the_signing_token_goes_away() {
    use std::io::{BufRead, Write};
    let Some(h) = Hsm::new() else { return };
    let (uri, _) = token_key(&h);
    let (bob_key, bob) = h.env.identity("bob.key");
    let out = h.env.p("received");
    let mut listener = h
        .kapsel()
        .args([
            "listen",
            "127.0.0.1:0",
            "-i",
            &bob_key,
            "-o",
            &out,
            "--timeout",
            "20s",
        ])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = std::io::BufReader::new(listener.stderr.take().unwrap());
    let mut first = String::new();
    stderr.read_line(&mut first).unwrap();
    let addr = first
        .trim()
        .strip_prefix("kapsel: listening on ")
        .unwrap_or_else(|| panic!("{first}"))
        .to_string();
    let mut sender = h
        .kapsel()
        .env("KAPSEL_PKCS11_PIN", "1234")
        .args([
            "send",
            &addr,
            "-r",
            &bob.to_recipient().to_string(),
            "--sign-as",
            uri,
        ])
        .args(["--timeout", "20s"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = sender.stdin.take().unwrap();
    let chunk = vec![3u8; 1 << 20];
    stdin.write_all(&chunk).unwrap();
    for entry in std::fs::read_dir(h.env.path("tokens")).unwrap() {
        std::fs::remove_dir_all(entry.unwrap().path()).unwrap();
    }
    for _ in 0..4 {
        if stdin.write_all(&chunk).is_err() {
            break;
        }
    }
    drop(stdin);
    let sent = sender.wait_with_output().unwrap();
    assert_eq!(sent.status.code(), Some(9), "{}", text(&sent.stderr));
    assert!(
        text(&sent.stderr).contains("token"),
        "{}",
        text(&sent.stderr)
    );
    // The receiver keeps nothing.
    let status = listener.wait().unwrap();
    assert!(!status.success());
    assert!(!h.env.path("received").exists());
}
