//! Post-quantum recipients and passphrases through the real binary:
//! `keygen --pq`, encrypt and decrypt to hybrid recipients (also signed and
//! by range), the mixing rule and `--allow-classical`, `inspect`, and
//! passphrases from a pseudo-terminal (script(1)), a file and a file
//! descriptor; wrong, empty and hostile passphrase files.

// Helpers outside `#[test]` functions unwrap too; clippy.toml allows it only
// inside them.
#![allow(clippy::unwrap_used)]

mod common;

use std::fs;
use std::process::{Command, Stdio};
use std::time::Instant;

use common::kapsel_in;

struct Dir(tempfile::TempDir);

impl Dir {
    fn new() -> Self {
        Dir(tempfile::tempdir().unwrap())
    }
    fn p(&self, name: &str) -> String {
        self.0.path().join(name).to_str().unwrap().to_string()
    }
    fn run(&self, args: &[&str]) -> (Option<i32>, Vec<u8>, String) {
        let out = kapsel_in(self.0.path()).args(args).output().unwrap();
        (
            out.status.code(),
            out.stdout,
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
    /// `keygen` (with `--pq` if `pq`) into `name`; returns the recipient.
    fn keygen(&self, name: &str, pq: bool) -> String {
        let mut args = vec!["keygen", "-o"];
        let path = self.p(name);
        args.push(&path);
        if pq {
            args.push("--pq");
        }
        let (code, out, err) = self.run(&args);
        assert_eq!(code, Some(0), "{err}");
        String::from_utf8(out).unwrap().trim().to_string()
    }
}

/// Whether the binary is the FIPS build, which refuses passphrase files
/// (Argon2id is not FIPS-approved): then the passphrase tests check that
/// refusal instead.
fn fips_refuses_passphrases(d: &Dir) -> bool {
    let (_, out, _) = d.run(&["--version"]);
    if !String::from_utf8_lossy(&out).contains("FIPS mode") {
        return false;
    }
    fs::write(d.p("fips-pw.txt"), b"pw\n").unwrap();
    fs::write(d.p("fips-m.txt"), b"x").unwrap();
    let (code, _, err) = d.run(&[
        "encrypt",
        "-p",
        "--passphrase-file",
        &d.p("fips-pw.txt"),
        &d.p("fips-m.txt"),
    ]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("not available in the FIPS build"), "{err}");
    true
}

fn has_script() -> bool {
    if Command::new("script").arg("--version").output().is_ok() {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "script(1) missing under CI"
    );
    eprintln!("skipping: no script(1)");
    false
}

/// Runs `command_line` under a pseudo-terminal, typing each of `lines`
/// after a pause (so that the prompt has turned echo off); returns the
/// transcript and the exit code.
fn typed_under_pty(command_line: &str, lines: &[&str]) -> (String, Option<i32>) {
    let mut feed = String::new();
    for l in lines {
        feed.push_str(&format!("sleep 1; printf '%s\\n' '{l}'; "));
    }
    feed.push_str("sleep 3");
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "({feed}) | script -qec \"{command_line}\" /dev/null"
        ))
        .stdin(Stdio::null())
        .output()
        .expect("sh and script(1)");
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        out.status.code(),
    )
}

#[test]
fn pq_keys_encrypt_decrypt_inspect_and_sign() {
    let d = Dir::new();
    let r = d.keygen("pq.key", true);
    assert!(r.starts_with("kapselpq1") && r.len() == 2014, "{r}");
    let key = fs::read_to_string(d.p("pq.key")).unwrap();
    assert!(key.contains("KAPSEL-PQ-SECRET-KEY-1"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(d.p("pq.key")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let (_, pubkey, _) = d.run(&["pubkey", &d.p("pq.key")]);
    assert_eq!(String::from_utf8(pubkey).unwrap().trim(), r);
    let data = common::random_bytes(100_000);
    fs::write(d.p("in.bin"), &data).unwrap();
    let signer = d.keygen("signer.key", false);
    // A recipients file with a post-quantum recipient string, and signed.
    fs::write(d.p("team.txt"), format!("# team\n{r}\n")).unwrap();
    let (code, _, err) = d.run(&[
        "encrypt",
        "-R",
        &d.p("team.txt"),
        "--sign-as",
        &d.p("signer.key"),
        "-o",
        &d.p("out.kap"),
        &d.p("in.bin"),
    ]);
    assert_eq!(code, Some(0), "{err}");
    let (code, out, err) = d.run(&["decrypt", "-i", &d.p("pq.key"), &d.p("out.kap")]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out, data);
    let (code, out, err) = d.run(&[
        "decrypt",
        "-i",
        &d.p("pq.key"),
        "--expect-sender",
        &signer,
        "--offset",
        "70000",
        "--length",
        "10",
        &d.p("out.kap"),
    ]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out, &data[70_000..70_010]);
    let (_, out, _) = d.run(&["inspect", &d.p("out.kap")]);
    let text = String::from_utf8(out).unwrap();
    assert!(text.contains("kapsel v2"), "{text}");
    assert!(
        text.contains("post-quantum HPKE (ML-KEM-768 + P-256)"),
        "{text}"
    );
    assert!(
        text.contains("every recipient is ML-KEM-768 + P-256"),
        "{text}"
    );
    let (_, out, _) = d.run(&["inspect", "--json", &d.p("out.kap")]);
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["version"], 2);
    assert_eq!(v["post_quantum"], true);
    assert_eq!(v["recipients"][0]["type_name"], "mlkem768-p256-hpke");
    // A P-256 identity does not match; no PEM form for a hybrid key.
    d.keygen("p256.key", false);
    let (code, _, _) = d.run(&["decrypt", "-i", &d.p("p256.key"), &d.p("out.kap")]);
    assert_eq!(code, Some(4));
    let (code, _, err) = d.run(&["export", &d.p("pq.key")]);
    assert_eq!(code, Some(2));
    assert!(err.contains("no PEM form"), "{err}");
}

#[test]
fn mixing_classical_and_post_quantum_needs_allow_classical() {
    let d = Dir::new();
    let pq = d.keygen("pq.key", true);
    let classical = d.keygen("p.key", false);
    fs::write(d.p("m.txt"), b"mixed").unwrap();
    let (code, _, err) = d.run(&[
        "encrypt",
        "-r",
        &pq,
        "-r",
        &classical,
        "-o",
        &d.p("x.kap"),
        &d.p("m.txt"),
    ]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("future quantum computer"), "{err}");
    assert!(
        err.contains("kapsel: hint: the weakest wrap decides"),
        "{err}"
    );
    assert!(fs::metadata(d.p("x.kap")).is_err(), "no output on refusal");
    let (code, _, err) = d.run(&[
        "encrypt",
        "--allow-classical",
        "-r",
        &pq,
        "-r",
        &classical,
        "-o",
        &d.p("x.kap"),
        &d.p("m.txt"),
    ]);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("not post-quantum"), "{err}");
    for key in ["pq.key", "p.key"] {
        let (code, out, err) = d.run(&["decrypt", "-i", &d.p(key), &d.p("x.kap")]);
        assert_eq!(
            (code, out.as_slice()),
            (Some(0), &b"mixed"[..]),
            "{key}: {err}"
        );
    }
    let (_, out, _) = d.run(&["inspect", &d.p("x.kap")]);
    assert!(String::from_utf8(out).unwrap().contains("NOT post-quantum"));
}

#[test]
fn passphrase_from_file_and_descriptor_and_wrong_and_empty() {
    let d = Dir::new();
    if fips_refuses_passphrases(&d) {
        return;
    }
    fs::write(d.p("m.txt"), b"backup").unwrap();
    fs::write(d.p("pw.txt"), b"correct horse battery\r\n").unwrap();
    let (code, _, err) = d.run(&[
        "encrypt",
        "-p",
        "--passphrase-file",
        &d.p("pw.txt"),
        "-o",
        &d.p("m.kap"),
        &d.p("m.txt"),
    ]);
    assert_eq!(code, Some(0), "{err}");
    let (_, out, _) = d.run(&["inspect", &d.p("m.kap")]);
    assert!(String::from_utf8(out)
        .unwrap()
        .contains("passphrase (Argon2id, 256 MiB, 3 passes, 4 lanes)"));
    // The file's CRLF is not part of the passphrase.
    fs::write(d.p("pw2.txt"), b"correct horse battery").unwrap();
    let (code, out, err) = d.run(&[
        "decrypt",
        "--passphrase-file",
        &d.p("pw2.txt"),
        &d.p("m.kap"),
    ]);
    assert_eq!((code, out.as_slice()), (Some(0), &b"backup"[..]), "{err}");
    // verify takes the same flags.
    let (code, out, err) = d.run(&[
        "verify",
        "--passphrase-file",
        &d.p("pw2.txt"),
        &d.p("m.kap"),
    ]);
    assert_eq!(code, Some(0), "{err}");
    assert!(String::from_utf8_lossy(&out).starts_with("verified: "));
    // From a file descriptor.
    let bin = env!("CARGO_BIN_EXE_kapsel");
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "{bin} decrypt --passphrase-fd 3 {} 3<{}",
            d.p("m.kap"),
            d.p("pw.txt")
        ))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout, b"backup");
    // Wrong passphrase: exit 4, said so.
    fs::write(d.p("bad.txt"), b"wrong\n").unwrap();
    let (code, _, err) = d.run(&[
        "decrypt",
        "--passphrase-file",
        &d.p("bad.txt"),
        &d.p("m.kap"),
    ]);
    assert_eq!(code, Some(4));
    assert!(err.contains("wrong passphrase"), "{err}");
    // An empty passphrase file is refused on both sides.
    fs::write(d.p("empty.txt"), b"\n").unwrap();
    let (code, _, err) = d.run(&[
        "encrypt",
        "-p",
        "--passphrase-file",
        &d.p("empty.txt"),
        &d.p("m.txt"),
    ]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("empty"), "{err}");
    // -p with recipients is refused: a passphrase stanza is alone.
    let r = d.keygen("p.key", false);
    let (code, _, err) = d.run(&[
        "encrypt",
        "-p",
        "--passphrase-file",
        &d.p("pw.txt"),
        "-r",
        &r,
        &d.p("m.txt"),
    ]);
    assert_eq!(code, Some(2));
    assert!(err.contains("no other recipients"), "{err}");
    // The passphrase never comes from an argument: there is no such flag.
    let (code, _, _) = d.run(&["encrypt", "--passphrase", "secret", &d.p("m.txt")]);
    assert_ne!(code, Some(0));
}

#[test]
fn passphrase_from_a_terminal_is_asked_twice_without_echo() {
    if !has_script() {
        return;
    }
    let d = Dir::new();
    if fips_refuses_passphrases(&d) {
        return;
    }
    fs::write(d.p("m.txt"), b"typed").unwrap();
    let bin = env!("CARGO_BIN_EXE_kapsel");
    let pw = "tr0ub4dor-horse";
    let (tty, code) = typed_under_pty(
        &format!("{bin} -q encrypt -p -o {} {}", d.p("t.kap"), d.p("m.txt")),
        &[pw, pw],
    );
    assert_eq!(code, Some(0), "{tty}");
    assert!(tty.contains("Enter passphrase"), "{tty}");
    assert!(tty.contains("Confirm passphrase"), "{tty}");
    assert!(!tty.contains(pw), "the passphrase was echoed: {tty}");
    let (tty, code) = typed_under_pty(&format!("{bin} -q decrypt {}", d.p("t.kap")), &[pw]);
    assert_eq!(code, Some(0), "{tty}");
    assert!(tty.contains("typed"), "{tty}");
    // Two different entries are refused.
    let (tty, code) = typed_under_pty(
        &format!("{bin} -q encrypt -p -o {} {}", d.p("u.kap"), d.p("m.txt")),
        &[pw, "other"],
    );
    assert_eq!(code, Some(2), "{tty}");
    assert!(tty.contains("do not match"), "{tty}");
    // An empty entry: a generated passphrase, shown once, that decrypts.
    let (tty, code) = typed_under_pty(
        &format!("{bin} -q encrypt -p -o {} {}", d.p("g.kap"), d.p("m.txt")),
        &[""],
    );
    assert_eq!(code, Some(0), "{tty}");
    let generated = tty
        .lines()
        .find_map(|l| l.split("using the generated passphrase: ").nth(1))
        .unwrap_or_else(|| panic!("no generated passphrase in {tty:?}"))
        .trim()
        .to_string();
    assert_eq!(generated.len(), 23, "{generated}");
    fs::write(d.p("gen.txt"), format!("{generated}\n")).unwrap();
    let (code, out, err) = d.run(&[
        "decrypt",
        "--passphrase-file",
        &d.p("gen.txt"),
        &d.p("g.kap"),
    ]);
    assert_eq!((code, out.as_slice()), (Some(0), &b"typed"[..]), "{err}");
}

#[test]
fn hostile_passphrase_cost_is_refused_quickly_in_bounded_memory() {
    let d = Dir::new();
    if fips_refuses_passphrases(&d) {
        return;
    }
    fs::write(d.p("m.txt"), b"x").unwrap();
    fs::write(d.p("pw.txt"), b"pw\n").unwrap();
    let (code, _, err) = d.run(&[
        "encrypt",
        "-p",
        "--passphrase-file",
        &d.p("pw.txt"),
        "-o",
        &d.p("m.kap"),
        &d.p("m.txt"),
    ]);
    assert_eq!(code, Some(0), "{err}");
    let mut file = fs::read(d.p("m.kap")).unwrap();
    // memory_kib and passes of the stanza: 4 TiB and 2^32-1 passes.
    let body = 16 + 16 + 1 + 2 + 4;
    file[body + 16..body + 24].copy_from_slice(&[0xff; 8]);
    fs::write(d.p("hostile.kap"), &file).unwrap();
    let gnu_time = std::path::Path::new("/usr/bin/time").exists();
    let rss = d.p("rss.txt");
    let bin = env!("CARGO_BIN_EXE_kapsel");
    let mut cmd = if gnu_time {
        let mut c = Command::new("/usr/bin/time");
        c.args(["-f", "%M", "-o", &rss, bin]);
        c
    } else {
        Command::new(bin)
    };
    let started = Instant::now();
    let out = cmd
        .args([
            "decrypt",
            "--passphrase-file",
            &d.p("pw.txt"),
            &d.p("hostile.kap"),
        ])
        .output()
        .unwrap();
    let took = started.elapsed();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains("more than the 1024 MiB and 16 passes"),
        "{err}"
    );
    eprintln!("hostile cost refused in {took:?}");
    if gnu_time {
        let peak: u64 = fs::read_to_string(&rss)
            .unwrap()
            .trim()
            .lines()
            .last()
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        eprintln!("peak RSS {peak} KiB");
        assert!(peak < 48 * 1024, "peak RSS {peak} KiB");
    } else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "GNU time missing under CI"
        );
    }
}

#[test]
fn passphrase_cost_is_raised_on_encrypt_and_the_limit_on_decrypt() {
    let d = Dir::new();
    if fips_refuses_passphrases(&d) {
        return;
    }
    fs::write(d.p("m.txt"), b"archive").unwrap();
    fs::write(d.p("pw.txt"), b"long passphrase\n").unwrap();
    let pw = d.p("pw.txt");
    // Below the default cost: refused, nothing written.
    for (flag, value) in [
        ("--passphrase-memory", "64MiB"),
        ("--passphrase-passes", "2"),
    ] {
        let (code, _, err) = d.run(&[
            "encrypt",
            "-p",
            "--passphrase-file",
            &pw,
            flag,
            value,
            "-o",
            &d.p("weak.kap"),
            &d.p("m.txt"),
        ]);
        assert_eq!(code, Some(2), "{err}");
        assert!(err.contains("below the default"), "{err}");
        assert!(!d.0.path().join("weak.kap").exists());
    }
    // Above the decoder's default limit (17 passes): made with a warning.
    let (code, _, err) = d.run(&[
        "encrypt",
        "-p",
        "--passphrase-file",
        &pw,
        "--passphrase-passes",
        "17",
        "-o",
        &d.p("hard.kap"),
        &d.p("m.txt"),
    ]);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("--max-passphrase-passes"), "{err}");
    let (_, out, _) = d.run(&["inspect", &d.p("hard.kap")]);
    assert!(String::from_utf8(out)
        .unwrap()
        .contains("256 MiB, 17 passes"));
    // Refused by default, before any work, with the flag to raise it...
    let (code, out, err) = d.run(&["decrypt", "--passphrase-file", &pw, &d.p("hard.kap")]);
    assert_eq!(code, Some(3), "{err}");
    assert!(out.is_empty());
    assert!(err.contains("--max-passphrase-passes"), "{err}");
    // ...and opened once the receiver raises it.
    let (code, out, err) = d.run(&[
        "decrypt",
        "--passphrase-file",
        &pw,
        "--max-passphrase-passes",
        "17",
        &d.p("hard.kap"),
    ]);
    assert_eq!((code, out.as_slice()), (Some(0), &b"archive"[..]), "{err}");
    // A receiver may lower the limit too: a default file is then refused.
    let (code, _, err) = d.run(&[
        "encrypt",
        "-p",
        "--passphrase-file",
        &pw,
        "-o",
        &d.p("default.kap"),
        &d.p("m.txt"),
    ]);
    assert_eq!(code, Some(0), "{err}");
    let (code, _, err) = d.run(&[
        "verify",
        "--passphrase-file",
        &pw,
        "--max-passphrase-memory",
        "128MiB",
        &d.p("default.kap"),
    ]);
    assert_eq!(code, Some(3), "{err}");
}
