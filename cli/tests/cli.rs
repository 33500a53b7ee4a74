//! Runs the real `kapsel` binary over real pipes and files.

// Helpers outside `#[test]` functions unwrap too; clippy.toml allows it only
// inside them.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn kapsel() -> Command {
    Command::new(env!("CARGO_BIN_EXE_kapsel"))
}

/// Runs `kapsel args...` with `stdin` piped in.
fn run(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = kapsel()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn kapsel");
    let mut input = child.stdin.take().expect("stdin");
    let data = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(&data);
    });
    let out = child.wait_with_output().expect("wait");
    writer.join().expect("stdin writer");
    out
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

struct Keys {
    dir: tempfile::TempDir,
}

impl Keys {
    fn new() -> Self {
        Keys {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Makes identity `name` and returns (identity path, recipient string).
    fn identity(&self, name: &str) -> (String, String) {
        let path = self.path(name);
        let out = run(&["keygen", "-o", path.to_str().unwrap()], b"");
        assert!(out.status.success(), "keygen: {}", stderr(&out));
        let recipient = String::from_utf8(out.stdout).unwrap().trim().to_string();
        (path.to_str().unwrap().to_string(), recipient)
    }
}

fn sample(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i % 253) as u8 ^ (i >> 11) as u8)
        .collect()
}

#[test]
fn demo_runs_the_main_job_and_succeeds() {
    let out = run(&["demo"], b"");
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("matches the sample"));
    assert!(text.contains("refused (header authentication failed)"));
    assert!(text.trim_end().ends_with("ok"));
}

#[test]
fn keygen_writes_a_private_file_and_refuses_to_overwrite() {
    let keys = Keys::new();
    let (path, recipient) = keys.identity("me.key");
    assert!(recipient.starts_with("kapsel1"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let before = fs::read(&path).unwrap();
    let again = run(&["keygen", "-o", &path], b"");
    assert_eq!(again.status.code(), Some(1));
    assert!(stderr(&again).starts_with("kapsel: error: "));
    assert_eq!(fs::read(&path).unwrap(), before);
    let pubkey = run(&["pubkey", &path], b"");
    assert_eq!(String::from_utf8(pubkey.stdout).unwrap().trim(), recipient);
}

#[test]
fn pipe_round_trip_with_several_recipients() {
    let keys = Keys::new();
    let (a, ra) = keys.identity("a.key");
    let (b, rb) = keys.identity("b.key");
    let (c, _) = keys.identity("c.key");
    let plaintext = sample(100_000);
    let enc = run(&["encrypt", "-r", &ra, "-r", &rb], &plaintext);
    assert!(enc.status.success(), "{}", stderr(&enc));
    for id in [&a, &b] {
        let dec = run(&["decrypt", "-i", id], &enc.stdout);
        assert!(dec.status.success(), "{}", stderr(&dec));
        assert_eq!(dec.stdout, plaintext);
    }
    let stranger = run(&["decrypt", "-i", &c], &enc.stdout);
    assert_eq!(stranger.status.code(), Some(4));
    assert!(stranger.stdout.is_empty());
    assert!(stderr(&stranger).contains("kapsel: error: standard input: no identity matches"));
    // Several identities: the one that matches is found.
    let both = run(&["decrypt", "-i", &c, "-i", &b], &enc.stdout);
    assert!(both.status.success());
}

#[test]
fn files_and_recipients_file_round_trip() {
    let keys = Keys::new();
    let (a, ra) = keys.identity("a.key");
    let list = keys.path("team.txt");
    fs::write(&list, format!("# the team\n\n{ra}\n")).unwrap();
    let input = keys.path("in.bin");
    fs::write(&input, sample(40_000)).unwrap();
    let enc_path = keys.path("out.kap");
    let out_path = keys.path("back.bin");
    let enc = run(
        &[
            "encrypt",
            "-R",
            list.to_str().unwrap(),
            "-o",
            enc_path.to_str().unwrap(),
            input.to_str().unwrap(),
        ],
        b"",
    );
    assert!(enc.status.success(), "{}", stderr(&enc));
    let dec = run(
        &[
            "decrypt",
            "-i",
            &a,
            "-o",
            out_path.to_str().unwrap(),
            enc_path.to_str().unwrap(),
        ],
        b"",
    );
    assert!(dec.status.success(), "{}", stderr(&dec));
    assert_eq!(fs::read(&out_path).unwrap(), fs::read(&input).unwrap());
    assert_no_partial_files(keys.dir.path());
}

fn assert_no_partial_files(dir: &Path) {
    for entry in fs::read_dir(dir).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        assert!(
            !name.ends_with(".kapsel-partial"),
            "leftover temporary file {name}"
        );
    }
}

#[test]
fn failed_decrypt_leaves_existing_output_untouched() {
    let keys = Keys::new();
    let (a, ra) = keys.identity("a.key");
    let enc = run(&["encrypt", "-r", &ra], &sample(50_000));
    let target = keys.path("precious.txt");
    fs::write(&target, b"do not lose me").unwrap();
    // Truncated inside the last chunk: earlier chunks verify, the file fails.
    let mut truncated = enc.stdout.clone();
    truncated.truncate(truncated.len() - 10);
    let dec = run(
        &["decrypt", "-i", &a, "-o", target.to_str().unwrap()],
        &truncated,
    );
    assert_eq!(dec.status.code(), Some(5), "{}", stderr(&dec));
    assert_eq!(fs::read(&target).unwrap(), b"do not lose me");
    assert_no_partial_files(keys.dir.path());
    // A new target is not created either.
    let fresh = keys.path("fresh.txt");
    let dec = run(
        &["decrypt", "-i", &a, "-o", fresh.to_str().unwrap()],
        &truncated,
    );
    assert_eq!(dec.status.code(), Some(5));
    assert!(!fresh.exists());
    assert_no_partial_files(keys.dir.path());
}

#[test]
fn exit_codes_name_each_failure_class() {
    let keys = Keys::new();
    let (a, ra) = keys.identity("a.key");
    let file = run(&["encrypt", "-r", &ra], &sample(20_000)).stdout;

    let random: Vec<u8> = (0..500u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let out = run(&["decrypt", "-i", &a], &random);
    assert_eq!(out.status.code(), Some(3), "random bytes: {}", stderr(&out));

    let out = run(
        &["decrypt", "-i", &a],
        b"age-encryption.org/v1\n-> X25519 abc\n",
    );
    assert_eq!(out.status.code(), Some(3));
    assert!(stderr(&out).contains("kapsel: hint: this looks like an age file"));

    let mut v2 = file.clone();
    v2[8] = 3;
    let out = run(&["decrypt", "-i", &a], &v2);
    assert_eq!(out.status.code(), Some(3));
    assert!(stderr(&out).contains("unsupported format version 3"));

    let out = run(&["decrypt", "-i", &a], &file[..100]);
    assert_eq!(out.status.code(), Some(3), "truncated header");

    let mut tampered = file.clone();
    tampered[25] ^= 0x40; // serial number
    let out = run(&["decrypt", "-i", &a], &tampered);
    assert_eq!(out.status.code(), Some(5));
    assert!(
        out.stdout.is_empty(),
        "no plaintext before the header authenticated"
    );

    let mut bad_chunk = file.clone();
    let last = bad_chunk.len() - 1;
    bad_chunk[last] ^= 1;
    let out = run(&["decrypt", "-i", &a], &bad_chunk);
    assert_eq!(out.status.code(), Some(5));
    assert_eq!(
        out.stdout.len(),
        16384,
        "only the verified first chunk was released"
    );

    let mut trailing = file.clone();
    trailing.extend_from_slice(b"junk");
    assert_eq!(
        run(&["decrypt", "-i", &a], &trailing).status.code(),
        Some(5)
    );

    assert_eq!(
        run(&["encrypt"], b"x").status.code(),
        Some(2),
        "no recipient"
    );
    assert_eq!(
        run(&["encrypt", "-r", "kapsel1notakey"], b"x")
            .status
            .code(),
        Some(2)
    );
    assert_eq!(run(&["frobnicate"], b"").status.code(), Some(2));
}

#[test]
fn recipient_and_identity_mixups_get_hints() {
    let keys = Keys::new();
    let (a, ra) = keys.identity("a.key");
    let secret = fs::read_to_string(&a)
        .unwrap()
        .lines()
        .find(|l| l.starts_with("KAPSEL-SECRET-KEY-"))
        .unwrap()
        .to_string();
    let out = run(&["encrypt", "-r", &secret], b"x");
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("kapsel: hint: this is an identity"));
    let wrong = keys.path("wrong.key");
    fs::write(&wrong, format!("{ra}\n")).unwrap();
    let out = run(&["decrypt", "-i", wrong.to_str().unwrap()], b"");
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("kapsel: hint: this is a recipient"));
}

#[test]
fn key_strings_with_other_white_space_are_usage_errors_naming_file_and_line() {
    let keys = Keys::new();
    let (a, ra) = keys.identity("a.key");
    let text = fs::read_to_string(&a).expect("identity file");
    // Spaces, tabs and CRLF line ends are fine.
    let tidy = keys.path("tidy.key");
    fs::write(&tidy, format!(" \t{}\t \r\n", text.replace('\n', "\r\n"))).expect("write");
    let out = run(&["pubkey", tidy.to_str().expect("utf-8")], b"");
    assert!(out.status.success(), "{}", stderr(&out));
    // A no-break space, a form feed or a lone CR after the identity is not.
    let secret_line = text.lines().count();
    for junk in ["\u{a0}", "\x0c", "\r"] {
        let bad = keys.path("bad.key");
        fs::write(&bad, format!("{}{junk}", text.trim_end())).expect("write");
        let out = run(&["pubkey", bad.to_str().expect("utf-8")], b"");
        assert_eq!(out.status.code(), Some(2), "{junk:?}");
        let want = format!("bad.key:{secret_line}: invalid identity: white space");
        assert!(stderr(&out).contains(&want), "{junk:?}: {}", stderr(&out));
    }
    // -r takes exactly the recipient string; a recipients file line is
    // trimmed of spaces and tabs only.
    let out = run(&["encrypt", "-r", &format!(" {ra}")], b"x");
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("white space"), "{}", stderr(&out));
    let list = keys.path("team.txt");
    fs::write(&list, format!("# team\n\t{ra} \n")).expect("write");
    let out = run(&["encrypt", "-R", list.to_str().expect("utf-8")], b"x");
    assert!(out.status.success(), "{}", stderr(&out));
    fs::write(&list, format!("# team\n{ra}\u{a0}\n")).expect("write");
    let out = run(&["encrypt", "-R", list.to_str().expect("utf-8")], b"x");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("team.txt:2: invalid recipient"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn inspect_shows_the_header_without_a_key() {
    let keys = Keys::new();
    let (_, ra) = keys.identity("a.key");
    let (_, rb) = keys.identity("b.key");
    let file = run(&["encrypt", "-r", &ra, "-r", &rb], &sample(40_000)).stdout;
    let out = run(&["inspect"], &file);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    for needle in [
        "format:      kapsel v1",
        "sender:      anonymous",
        "recipients:  2",
        "chunk size:  16384",
        "40000 bytes of plaintext in 3 chunks",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in\n{text}");
    }
    let json = run(&["inspect", "--json"], &file);
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).expect("json");
    assert_eq!(v["version"], 1);
    assert_eq!(v["recipients"].as_array().unwrap().len(), 2);
    assert_eq!(v["plaintext_len"], 40000);
    assert!(v["created_at_utc"].as_str().unwrap().ends_with('Z'));
    assert_eq!(
        run(&["inspect"], b"not kapsel at all").status.code(),
        Some(3)
    );
}

#[test]
fn armor_round_trips_and_is_detected_by_itself() {
    let keys = Keys::new();
    let (a, ra) = keys.identity("a.key");
    let plaintext = sample(30_000);
    let enc = run(&["encrypt", "--armor", "-r", &ra], &plaintext);
    assert!(enc.status.success(), "{}", stderr(&enc));
    let text = String::from_utf8(enc.stdout.clone()).expect("armor is ASCII");
    assert!(text.starts_with("-----BEGIN KAPSEL ENCRYPTED FILE-----\n"));
    assert!(text.ends_with("-----END KAPSEL ENCRYPTED FILE-----\n"));
    assert!(text
        .lines()
        .all(|l| l.len() <= 64 || l.starts_with("-----")));
    let dec = run(&["decrypt", "-i", &a], &enc.stdout);
    assert!(dec.status.success(), "{}", stderr(&dec));
    assert_eq!(dec.stdout, plaintext);
    // CRLF line endings and surrounding whitespace are accepted.
    let crlf = format!("\r\n  {}\r\n", text.replace('\n', "\r\n"));
    assert_eq!(
        run(&["decrypt", "-i", &a], crlf.as_bytes()).stdout,
        plaintext
    );
    // A damaged armor line is an armor failure (exit 3), with no output.
    let damaged = text.replacen("\n", "\nA", 2);
    let out = run(&["decrypt", "-i", &a], damaged.as_bytes());
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("armor"));
    assert!(out.stdout.is_empty());
    let garbage_after = format!("{text}trailing words\n");
    assert_eq!(
        run(&["decrypt", "-i", &a], garbage_after.as_bytes())
            .status
            .code(),
        Some(3)
    );
}

fn openssl(args: &[&str]) {
    let status = Command::new("openssl")
        .args(args)
        .stderr(Stdio::null())
        .status()
        .expect("the openssl binary is needed for interop tests");
    assert!(status.success(), "openssl {args:?}");
}

#[test]
fn openssl_made_keys_work_as_identities_and_recipients() {
    let keys = Keys::new();
    let p = |n: &str| keys.path(n).to_str().unwrap().to_string();
    openssl(&[
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-out",
        &p("pkcs8.pem"),
    ]);
    openssl(&[
        "ecparam",
        "-genkey",
        "-name",
        "prime256v1",
        "-out",
        &p("sec1.pem"),
    ]);
    openssl(&[
        "pkey",
        "-in",
        &p("pkcs8.pem"),
        "-pubout",
        "-out",
        &p("pkcs8.pub"),
    ]);
    openssl(&[
        "pkey",
        "-in",
        &p("sec1.pem"),
        "-pubout",
        "-out",
        &p("sec1.pub"),
    ]);
    assert!(fs::read_to_string(p("sec1.pem"))
        .unwrap()
        .contains("EC PRIVATE KEY"));
    let both = format!(
        "{}{}",
        fs::read_to_string(p("pkcs8.pub")).unwrap(),
        fs::read_to_string(p("sec1.pub")).unwrap()
    );
    fs::write(p("both.pub"), both).unwrap();
    let plaintext = sample(20_000);
    let enc = run(&["encrypt", "-R", &p("both.pub")], &plaintext);
    assert!(enc.status.success(), "{}", stderr(&enc));
    for id in ["pkcs8.pem", "sec1.pem"] {
        let dec = run(&["decrypt", "-i", &p(id)], &enc.stdout);
        assert!(dec.status.success(), "{id}: {}", stderr(&dec));
        assert_eq!(dec.stdout, plaintext);
    }
    // pubkey agrees between the PEM identity and the SPKI file.
    let (a, ra) = keys.identity("a.key");
    let exported = run(&["export", &a], b"");
    fs::write(p("a.pub.pem"), &exported.stdout).unwrap();
    let text = Command::new("openssl")
        .args(["pkey", "-pubin", "-in", &p("a.pub.pem"), "-noout", "-text"])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&text.stdout).contains("prime256v1")
            || String::from_utf8_lossy(&text.stdout).contains("P-256")
    );
    let private = run(&["export", "--private", &a], b"");
    fs::write(p("a.pem"), &private.stdout).unwrap();
    let enc = run(&["encrypt", "-R", &p("a.pub.pem")], b"via pem");
    assert_eq!(
        run(&["decrypt", "-i", &p("a.pem")], &enc.stdout).stdout,
        b"via pem"
    );
    let enc = run(&["encrypt", "-r", &ra], b"via string");
    assert_eq!(
        run(&["decrypt", "-i", &p("a.pem")], &enc.stdout).stdout,
        b"via string"
    );
    // A private key where a recipient is expected gets a hint.
    let out = run(&["encrypt", "-R", &p("pkcs8.pem")], b"x");
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("kapsel: hint: this looks like a private key"));
}

/// Runs a shell command line under a pseudo-terminal with `script`; returns
/// the terminal transcript and the exit status.
fn under_pty(command_line: &str) -> (String, Option<i32>) {
    let out = Command::new("script")
        .args(["-qec", command_line, "/dev/null"])
        .stdin(Stdio::null())
        .output()
        .expect("script(1) from util-linux");
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        out.status.code(),
    )
}

#[test]
fn progress_shows_on_a_terminal_and_not_when_quiet_or_piped() {
    let keys = Keys::new();
    let (_, ra) = keys.identity("a.key");
    let input = keys.path("in.bin");
    fs::write(&input, sample(3_000_000)).unwrap();
    let bin = env!("CARGO_BIN_EXE_kapsel");
    let line = |extra: &str, out: &str| {
        format!(
            "KAPSEL_PROGRESS_DELAY_MS=0 {bin} {extra} encrypt -r {ra} -o {} {}",
            keys.path(out).display(),
            input.display()
        )
    };
    let (tty, code) = under_pty(&line("", "o1.kap"));
    assert_eq!(code, Some(0), "{tty}");
    assert!(
        tty.contains("kapsel: encrypting"),
        "no progress on a terminal: {tty:?}"
    );
    assert!(tty.contains("MiB/s") || tty.contains("KiB/s"), "{tty:?}");
    let (tty, code) = under_pty(&line("-q", "o2.kap"));
    assert_eq!(code, Some(0));
    assert!(
        !tty.contains("kapsel: encrypting"),
        "progress despite --quiet: {tty:?}"
    );
    // Not a terminal: silent.
    let out = kapsel()
        .env("KAPSEL_PROGRESS_DELAY_MS", "0")
        .args([
            "encrypt",
            "-r",
            &ra,
            "-o",
            keys.path("o3.kap").to_str().unwrap(),
            input.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(out.stderr.is_empty(), "{}", stderr(&out));
}

#[test]
fn refuses_binary_output_to_a_terminal() {
    let keys = Keys::new();
    let (_, ra) = keys.identity("a.key");
    let input = keys.path("in.txt");
    fs::write(&input, b"hello").unwrap();
    let bin = env!("CARGO_BIN_EXE_kapsel");
    let (tty, code) = under_pty(&format!("{bin} encrypt -r {ra} {}", input.display()));
    assert_eq!(code, Some(2), "{tty}");
    assert!(tty.contains("kapsel: error: refusing to write binary output to a terminal"));
    let (tty, code) = under_pty(&format!(
        "{bin} encrypt --armor -r {ra} {}",
        input.display()
    ));
    assert_eq!(code, Some(0), "{tty}");
    assert!(tty.contains("-----BEGIN KAPSEL ENCRYPTED FILE-----"));
}

#[test]
fn foreign_inputs_get_a_hint() {
    let keys = Keys::new();
    let (a, _) = keys.identity("a.key");
    let gpg = [
        0x85u8, 0x01, 0x0c, 0x03, 0xaa, 0xbb, 0xcc, 0xdd, 0, 0, 0, 0, 0, 0, 0, 0,
    ];
    let out = run(&["decrypt", "-i", &a], &gpg);
    assert_eq!(out.status.code(), Some(3));
    assert!(stderr(&out).contains("OpenPGP"), "{}", stderr(&out));
    let out = run(&["decrypt", "-i", &a], b"");
    assert_eq!(out.status.code(), Some(3), "empty input");
}

#[test]
fn io_errors_exit_1_with_one_line() {
    let keys = Keys::new();
    let (a, ra) = keys.identity("a.key");
    let missing = keys.path("does-not-exist.kap");
    let out = run(&["decrypt", "-i", &a, missing.to_str().unwrap()], b"");
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.starts_with("kapsel: error: cannot open "), "{err}");
    assert!(!err.contains("panicked") && !err.contains("RUST_BACKTRACE"));
    let out = run(
        &["encrypt", "-r", &ra, "-o", "/nonexistent-dir/x.kap"],
        b"x",
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let out = run(&["decrypt", "-i", missing.to_str().unwrap()], b"");
    assert_eq!(out.status.code(), Some(1), "missing identity file");
}

#[test]
fn every_command_has_help_with_examples() {
    for cmd in [
        "keygen",
        "pubkey",
        "export",
        "encrypt",
        "decrypt",
        "verify",
        "inspect",
        "challenge",
        "listen",
        "send",
        "demo",
    ] {
        let out = run(&[cmd, "--help"], b"");
        assert!(out.status.success());
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(text.contains("Examples:"), "{cmd} --help has no examples");
    }
    let top = String::from_utf8(run(&["--help"], b"").stdout).unwrap();
    assert!(top.contains("Exit codes:") && top.contains("4  no identity matches"));
    assert!(top.contains("7  send: the receiver refused the message"));
}
