//! Key inputs through the real binary: recipients and identity files that
//! mix PEM blocks, key strings and comments (no line silently dropped),
//! public keys where a user has them, `-i -` and `-R -`, a closed standard
//! input, key-string errors, the error style of every message (clap's
//! included), and the mode of key material however it is written.

// Helpers outside `#[test]` functions unwrap too; clippy.toml allows it only
// inside them.
#![allow(clippy::unwrap_used)]

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use kapsel_codec::Identity;

struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Self {
        Env {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn p(&self, name: &str) -> String {
        self.path(name).to_str().unwrap().to_string()
    }

    fn kapsel(&self) -> Command {
        let mut c = common::kapsel_in(&self.path("state"));
        c.current_dir(self.dir.path());
        c
    }

    /// Runs kapsel with `args` and empty standard input.
    fn run(&self, args: &[&str]) -> Output {
        self.kapsel()
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// Runs kapsel with `stdin` as standard input.
    fn run_in(&self, args: &[&str], stdin: &[u8]) -> (Option<i32>, Vec<u8>, String) {
        common::run_with_stdin(self.kapsel().args(args), stdin)
    }

    /// Runs `script` in sh with umask 022 and `$K` naming the binary.
    fn sh(&self, script: &str) -> Output {
        Command::new("sh")
            .args(["-c", &format!("umask 022; {script}")])
            .env("K", env!("CARGO_BIN_EXE_kapsel"))
            .env("KAPSEL_STATE_DIR", self.path("state"))
            .current_dir(self.dir.path())
            .output()
            .unwrap()
    }

    fn identity(&self, name: &str) -> Identity {
        common::write_identity_file(&self.path(name)).1
    }

    /// Encrypts `plaintext` to the recipients file `rfile`; the output path.
    fn encrypt_with_file(&self, rfile: &str, plaintext: &[u8]) -> Output {
        let out = self.p("m.kap");
        let (code, _, err) = self.run_in(&["encrypt", "-R", rfile, "-o", &out], plaintext);
        Output {
            status: status_of(code),
            stdout: Vec::new(),
            stderr: err.into_bytes(),
        }
    }

    fn decrypts(&self, identity_file: &str, file: &str) -> Option<Vec<u8>> {
        let out = self.run(&["decrypt", "-i", identity_file, file]);
        out.status.success().then_some(out.stdout)
    }
}

fn status_of(code: Option<i32>) -> std::process::ExitStatus {
    use std::os::unix::process::ExitStatusExt;
    std::process::ExitStatus::from_raw(code.unwrap_or(1) << 8)
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Every stderr line in kapsel's style, the first an error, no panic.
fn assert_error_style(err: &str) {
    assert!(err.starts_with("kapsel: error: "), "{err}");
    for line in err.lines() {
        assert!(
            line.starts_with("kapsel: error: ")
                || line.starts_with("kapsel: hint: ")
                || line.starts_with("kapsel: warning: "),
            "line not in kapsel's style: {line:?} in\n{err}"
        );
    }
    assert!(!err.contains("panicked"), "{err}");
}

/// A failure with exit `code` whose error names `needle`.
fn assert_fails(out: &Output, code: i32, needle: &str) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(code), "{err}");
    assert_error_style(&err);
    assert!(err.contains(needle), "expected {needle:?} in\n{err}");
}

fn spki(id: &Identity) -> String {
    id.to_recipient().to_spki_pem()
}

fn pkcs8(id: &Identity) -> String {
    id.to_pkcs8_pem().to_string()
}

fn sec1_with_parameters(id: &Identity) -> String {
    // As `openssl ecparam -genkey -name prime256v1` writes it: the SEC1 form
    // comes from openssl itself (scripts/test installs it).
    let (code, sec1, err) = common::run_with_stdin(
        std::process::Command::new("openssl").args(["ec", "-outform", "PEM"]),
        pkcs8(id).as_bytes(),
    );
    assert_eq!(code, Some(0), "openssl ec: {err}");
    let sec1 = String::from_utf8(sec1).unwrap();
    assert!(sec1.starts_with("-----BEGIN EC PRIVATE KEY-----"), "{sec1}");
    format!("-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n{sec1}")
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn write_private(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    fs::write(path, text).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o600)).unwrap();
}

// ---------------------------------------------------------------------------
// 1. No silent drops in recipients and identity files

#[test]
fn recipients_file_with_pem_comments_and_strings_encrypts_to_every_recipient() {
    let e = Env::new();
    let (alice, carol) = (e.identity("alice.key"), e.identity("carol.key"));
    let bob = e.identity("bob.key");
    // Once this dropped every line but the PEM block: carol could not read.
    let team = format!(
        "{}# carol\n{}\n\n{}",
        spki(&alice),
        carol.to_recipient(),
        spki(&bob)
    );
    fs::write(e.path("team.txt"), team).unwrap();
    let out = e.encrypt_with_file("team.txt", b"plan");
    assert!(out.status.success(), "{}", stderr(&out));
    for who in ["alice.key", "bob.key", "carol.key"] {
        assert_eq!(
            e.decrypts(who, "m.kap").as_deref(),
            Some(&b"plan"[..]),
            "{who} cannot decrypt"
        );
    }
}

#[test]
fn junk_next_to_a_pem_block_is_refused_naming_the_line() {
    let e = Env::new();
    let alice = e.identity("alice.key");
    let carol = Identity::generate().to_recipient().to_string();
    let typo = format!("{}x", &carol[..65]);
    for (text, line, needle) in [
        (format!("{}junk\n", spki(&alice)), 5, "not a key string"),
        (
            format!("# c\n{}\n{}", typo, spki(&alice)),
            2,
            "bad checksum",
        ),
        (
            format!("{}{}\n", spki(&alice), &carol[..60]),
            5,
            "wrong length",
        ),
    ] {
        fs::write(e.path("team.txt"), &text).unwrap();
        let out = e.encrypt_with_file("team.txt", b"x");
        assert_fails(
            &out,
            2,
            &format!("team.txt:{line}: invalid recipient: {needle}"),
        );
        assert!(!e.path("m.kap").exists());
    }
}

#[test]
fn private_key_in_a_recipients_file_is_refused_with_a_pubkey_hint() {
    let e = Env::new();
    let alice = e.identity("alice.key");
    let bob = Identity::generate();
    for (text, line, what) in [
        (
            format!("{}{}", spki(&alice), pkcs8(&bob)),
            5,
            "PRIVATE KEY block",
        ),
        (
            format!("{}\n{}", alice.to_recipient(), sec1_with_parameters(&bob)),
            5,
            "EC PRIVATE KEY block",
        ),
        (
            format!("{}\n{}\n", alice.to_recipient(), &*bob.to_secret_string()),
            2,
            "a kapsel identity (private key)",
        ),
    ] {
        fs::write(e.path("team.txt"), &text).unwrap();
        let out = e.encrypt_with_file("team.txt", b"x");
        assert_fails(&out, 2, &format!("team.txt:{line}: "));
        let err = stderr(&out);
        assert!(err.contains(what), "{err}");
        assert!(
            err.contains("kapsel: hint: ") && err.contains("kapsel pubkey"),
            "{err}"
        );
        assert!(
            !err.contains(&bob.to_secret_string()[20..]),
            "secret leaked: {err}"
        );
    }
}

#[test]
fn identity_file_with_two_pem_blocks_and_a_string_yields_every_identity() {
    let e = Env::new();
    let (a, b, c) = (
        Identity::generate(),
        Identity::generate(),
        Identity::generate(),
    );
    // `cat k1.pem k2.pem k3.key > ids`: once only k1 was read.
    let ids = format!(
        "{}{}# created: now\n{}\n",
        pkcs8(&a),
        sec1_with_parameters(&b),
        &*c.to_secret_string()
    );
    write_private(&e.path("ids"), &ids);
    let out = e.run(&["pubkey", "ids"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        format!(
            "{}\n{}\n{}\n",
            a.to_recipient(),
            b.to_recipient(),
            c.to_recipient()
        )
    );
    // Each of them decrypts.
    for id in [&a, &b, &c] {
        let (code, _, err) = e.run_in(
            &[
                "encrypt",
                "-r",
                &id.to_recipient().to_string(),
                "-o",
                "m.kap",
            ],
            b"hi",
        );
        assert_eq!(code, Some(0), "{err}");
        assert_eq!(e.decrypts("ids", "m.kap").as_deref(), Some(&b"hi"[..]));
    }
}

#[test]
fn key_files_with_crlf_line_ends_are_read_whole() {
    let e = Env::new();
    let (a, b) = (Identity::generate(), Identity::generate());
    let crlf = |s: String| s.replace('\n', "\r\n");
    write_private(
        &e.path("ids"),
        &crlf(format!("{}# b\n{}\n", pkcs8(&a), &*b.to_secret_string())),
    );
    fs::write(
        e.path("team.txt"),
        crlf(format!("{}# b\n{}\n", spki(&a), b.to_recipient())),
    )
    .unwrap();
    let out = e.encrypt_with_file("team.txt", b"crlf");
    assert!(out.status.success(), "{}", stderr(&out));
    let out = e.run(&["pubkey", "ids"]);
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        format!("{}\n{}\n", a.to_recipient(), b.to_recipient())
    );
    assert_eq!(e.decrypts("ids", "m.kap").as_deref(), Some(&b"crlf"[..]));
}

#[test]
fn broken_pem_structure_is_refused_naming_the_line() {
    let e = Env::new();
    let a = Identity::generate();
    let pem = spki(&a);
    let (begin_end, body) = pem.split_at(pem.find('\n').unwrap() + 1);
    let _ = begin_end;
    let cases = [
        // Garbage after the END line, on it and after it.
        (
            pem.replace("-----END PUBLIC KEY-----", "-----END PUBLIC KEY-----junk"),
            4,
            "expected -----END PUBLIC KEY-----",
        ),
        (
            format!("{pem}-----END PUBLIC KEY-----\n"),
            5,
            "END line with no BEGIN",
        ),
        // A block with no END line.
        (
            pem.replace("-----END PUBLIC KEY-----\n", ""),
            1,
            "has no END line",
        ),
        // A comment or a blank line inside a block.
        (pem.replacen('\n', "\n# c\n", 1), 2, "not a Base64 line"),
        // A damaged Base64 body.
        (
            pem.replacen("MFkw", "MFkx", 1),
            1,
            "PUBLIC KEY block (lines 1-4)",
        ),
        // Another kind of block.
        (
            format!("-----BEGIN CERTIFICATE-----\n{body}"),
            1,
            "unsupported PEM block CERTIFICATE",
        ),
    ];
    for (text, line, needle) in cases {
        fs::write(e.path("team.txt"), &text).unwrap();
        let out = e.encrypt_with_file("team.txt", b"x");
        assert_fails(&out, 2, &format!("team.txt:{line}: "));
        assert!(stderr(&out).contains(needle), "{needle}: {}", stderr(&out));
    }
}

#[test]
fn identity_files_refuse_public_keys_recipients_and_encrypted_keys_by_line() {
    let e = Env::new();
    let a = Identity::generate();
    for (text, line, needle) in [
        (
            format!("{}\n{}", &*a.to_secret_string(), spki(&a)),
            2,
            "a public key (PUBLIC KEY block), not an identity",
        ),
        (
            format!("{}\n{}\n", &*a.to_secret_string(), a.to_recipient()),
            2,
            "a kapsel recipient (public key), where a kapsel identity",
        ),
        (
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n"
                .to_string(),
            1,
            "encrypted private keys are not supported",
        ),
        (
            format!("\u{feff}{}\n", &*a.to_secret_string()),
            1,
            "byte order mark",
        ),
        ("# only comments\n\n".to_string(), 0, "no identity found"),
    ] {
        write_private(&e.path("ids"), &text);
        let out = e.run(&["decrypt", "-i", "ids", "nothing.kap"]);
        let at = if line == 0 {
            "ids: ".to_string()
        } else {
            format!("ids:{line}: ")
        };
        assert_fails(&out, 2, &at);
        assert!(stderr(&out).contains(needle), "{needle}: {}", stderr(&out));
        assert!(!stderr(&out).contains(&a.to_secret_string()[20..]));
    }
}

// ---------------------------------------------------------------------------
// 2. Public keys where a user has them

#[test]
fn expect_sender_takes_a_pem_public_key_inline_or_as_a_file() {
    let e = Env::new();
    let alice = e.identity("alice.key");
    let bob = e.identity("bob.key");
    let mallory = Identity::generate();
    let (code, _, err) = e.run_in(
        &[
            "encrypt",
            "--sign-as",
            "alice.key",
            "-r",
            &bob.to_recipient().to_string(),
            "-o",
            "m.kap",
        ],
        b"signed",
    );
    assert_eq!(code, Some(0), "{err}");
    fs::write(e.path("alice.pub.pem"), spki(&alice)).unwrap();
    fs::write(e.path("mallory.pub.pem"), spki(&mallory)).unwrap();
    let inline = spki(&alice);
    for sender in [&inline[..], "alice.pub.pem"] {
        let out = e.run(&[
            "decrypt",
            "-i",
            "bob.key",
            "--expect-sender",
            sender,
            "m.kap",
        ]);
        assert!(out.status.success(), "{sender}: {}", stderr(&out));
        assert_eq!(out.stdout, b"signed");
    }
    for sender in [spki(&mallory), "mallory.pub.pem".to_string()] {
        let out = e.run(&[
            "decrypt",
            "-i",
            "bob.key",
            "--expect-sender",
            &sender,
            "m.kap",
        ]);
        assert_eq!(out.status.code(), Some(6), "{}", stderr(&out));
        assert!(out.stdout.is_empty());
    }
    // Neither a recipient nor a file: the error says both.
    let out = e.run(&[
        "decrypt",
        "-i",
        "bob.key",
        "--expect-sender",
        "nosuch.pem",
        "m.kap",
    ]);
    assert_fails(&out, 2, "no file of that name exists");
}

#[test]
fn pubkey_and_export_convert_public_keys_instead_of_refusing() {
    let e = Env::new();
    let a = Identity::generate();
    let r = a.to_recipient().to_string();
    fs::write(e.path("a.pub.pem"), spki(&a)).unwrap();
    fs::write(e.path("a.txt"), format!("{r}\n")).unwrap();
    for input in ["a.pub.pem", "a.txt"] {
        let out = e.run(&["pubkey", input]);
        assert!(out.status.success(), "{input}: {}", stderr(&out));
        assert_eq!(String::from_utf8(out.stdout).unwrap(), format!("{r}\n"));
        let out = e.run(&["export", input]);
        assert!(out.status.success(), "{input}: {}", stderr(&out));
        assert_eq!(String::from_utf8(out.stdout).unwrap(), spki(&a));
        let out = e.run(&["export", "--private", input]);
        assert_fails(&out, 2, "no private key to export");
    }
    // From standard input too.
    let (code, out, err) = e.run_in(&["pubkey"], spki(&a).as_bytes());
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(String::from_utf8(out).unwrap(), format!("{r}\n"));
}

// ---------------------------------------------------------------------------
// 3. -i - and -R -

#[test]
fn identities_and_recipients_can_come_from_standard_input() {
    let e = Env::new();
    let a = e.identity("a.key");
    fs::write(e.path("plain"), b"from a file").unwrap();
    let (code, _, err) = e.run_in(
        &["encrypt", "-R", "-", "-o", "m.kap", "plain"],
        format!("# team\n{}", spki(&a)).as_bytes(),
    );
    assert_eq!(code, Some(0), "{err}");
    let secret = fs::read(e.path("a.key")).unwrap();
    let (code, out, err) = e.run_in(&["decrypt", "-i", "-", "m.kap"], &secret);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out, b"from a file");
}

#[test]
fn key_and_data_both_on_standard_input_are_refused() {
    let e = Env::new();
    let a = e.identity("a.key");
    let r = a.to_recipient().to_string();
    let cases: [&[&str]; 6] = [
        &["encrypt", "-R", "-"],
        &["encrypt", "-R", "-", "-"],
        &["encrypt", "-r", &r, "--sign-as", "-"],
        &["decrypt", "-i", "-"],
        &["verify", "-i", "-", "-"],
        &["decrypt", "-i", "-", "-i", "-", "m.kap"],
    ];
    for args in cases {
        let (code, out, err) = e.run_in(args, r.as_bytes());
        assert_eq!(code, Some(2), "{args:?}: {err}");
        assert_error_style(&err);
        assert!(err.contains("standard input"), "{args:?}: {err}");
        assert!(out.is_empty());
    }
    let out = e.run(&["listen", "--stdio", "-i", "-", "-o", "out"]);
    assert_fails(&out, 2, "standard input cannot carry both");
}

// ---------------------------------------------------------------------------
// 4. Closed standard input

#[test]
fn closed_standard_input_is_an_error_but_dev_null_is_an_empty_message() {
    let e = Env::new();
    let a = e.identity("a.key");
    let r = a.to_recipient().to_string();
    // Once `<&-` encrypted an empty message with exit 0.
    let out = e.sh(&format!("exec \"$K\" encrypt -r {r} -o closed.kap <&-"));
    assert_fails(&out, 1, "standard input is closed");
    assert!(!e.path("closed.kap").exists());
    let out = e.sh(&format!(
        "exec \"$K\" encrypt -r {r} -o empty.kap </dev/null"
    ));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(e.decrypts("a.key", "empty.kap").as_deref(), Some(&b""[..]));
    let out = e.sh("exec \"$K\" decrypt -i a.key -o plain <&-");
    assert_fails(&out, 1, "standard input is closed");
    let out = e.sh("exec \"$K\" decrypt -i - empty.kap <&-");
    assert_fails(&out, 1, "standard input is closed");
    let out = e.sh("exec \"$K\" pubkey <&-");
    assert_fails(&out, 1, "standard input is closed");
}

// ---------------------------------------------------------------------------
// 5. Key-string errors that say what is wrong

#[test]
fn each_bad_recipient_string_gets_its_own_message_and_hint() {
    let e = Env::new();
    let id = Identity::generate();
    let r = id.to_recipient().to_string();
    let mut typo = r.clone().into_bytes();
    typo[30] = if typo[30] == b'q' { b'p' } else { b'q' };
    let typo = String::from_utf8(typo).unwrap();
    let mixed = format!("K{}", &r[1..]);
    let secret = id.to_secret_string().to_string();
    let cases = [
        (
            "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p".to_string(),
            "an age recipient",
            Some("cannot encrypt to age keys"),
        ),
        (
            secret.clone(),
            "a kapsel identity (private key)",
            Some("kapsel pubkey"),
        ),
        (typo, "bad checksum", Some("copy the string again")),
        (
            r[..60].to_string(),
            "wrong length: 60 characters",
            Some("cut short"),
        ),
        (
            format!("{r}qq"),
            "wrong length: 68 characters",
            Some("extra characters"),
        ),
        (mixed, "mixed upper and lower case", Some("case")),
        (
            format!("{}b{}", &r[..20], &r[21..]),
            "invalid character at position 21",
            Some("copy"),
        ),
        ("hello".to_string(), "not a key string", Some("kapsel1")),
    ];
    for (arg, needle, hint) in cases {
        let out = e.run(&["encrypt", "-r", &arg, "-o", "m.kap"]);
        assert_fails(&out, 2, needle);
        let err = stderr(&out);
        if let Some(hint) = hint {
            let hint_line = err.lines().find(|l| l.starts_with("kapsel: hint: "));
            assert!(
                hint_line.is_some_and(|l| l.contains(hint)),
                "{arg}: no hint with {hint:?}: {err}"
            );
        }
        assert!(!err.contains("invalid encoding or checksum"), "{err}");
        assert!(!err.contains(&secret[20..]), "secret leaked: {err}");
    }
    // Not a point on the curve: a well-formed string of 33 bytes that are not one.
    // (Bech32 of 33 bytes 0x04, made with BIP 173's reference code.)
    let bad_point = "kapsel1qszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgs6pv3d";
    let out = e.run(&["encrypt", "-r", bad_point, "-o", "m.kap"]);
    assert_fails(&out, 2, "not a point on the P-256 curve");
    // An identity file holding a recipient says so, with a hint.
    write_private(&e.path("ids"), &format!("{r}\n"));
    let out = e.run(&["decrypt", "-i", "ids", "m.kap"]);
    assert_fails(&out, 2, "ids:1: invalid identity: a kapsel recipient");
    assert!(stderr(&out).contains("kapsel keygen"));
}

// ---------------------------------------------------------------------------
// 6. Error style everywhere, clap's usage errors included

#[test]
fn usage_errors_carry_the_kapsel_prefix_and_exit_2() {
    let e = Env::new();
    for args in [
        &["encrypt", "--frobnicate"][..],
        &["frobnicate"],
        &["listen"],
        &["decrypt", "--threads", "many"],
        &[],
    ] {
        let out = e.run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert_error_style(&stderr(&out));
        assert!(out.stdout.is_empty());
    }
    let out = e.run(&["encrypt", "--frobnicate"]);
    assert!(stderr(&out).contains("kapsel: error: unexpected argument '--frobnicate'"));
    assert!(stderr(&out).contains("kapsel: hint: usage: kapsel encrypt"));
    // Help and version are not errors.
    for args in [&["--help"][..], &["encrypt", "--help"], &["--version"]] {
        let out = e.run(args);
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        assert!(!out.stdout.is_empty());
    }
}

// ---------------------------------------------------------------------------
// 7. Key material is 0600 however it is written

#[test]
fn keys_written_to_a_redirected_standard_output_become_private() {
    let e = Env::new();
    // Once `keygen > me.key` gave 0644 under umask 022.
    let out = e.sh("\"$K\" keygen > me.key");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(mode(&e.path("me.key")), 0o600);
    assert!(stderr(&out).contains("kapsel: note: ") && stderr(&out).contains("0600"));
    let out = e.sh("\"$K\" export --private me.key > me.pem");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(mode(&e.path("me.pem")), 0o600);
    assert!(fs::read_to_string(e.path("me.pem"))
        .unwrap()
        .starts_with("-----BEGIN PRIVATE KEY-----"));
    // A public export is not touched; a pipe writes as before, silently.
    let out = e.sh("\"$K\" export me.key > me.pub.pem");
    assert!(out.status.success());
    assert_eq!(mode(&e.path("me.pub.pem")), 0o644);
    let out = e.sh("\"$K\" keygen | cat > piped.key");
    assert!(out.status.success());
    assert!(stderr(&out).is_empty(), "{}", stderr(&out));
    // Already private: no note.
    let out = e.sh("\"$K\" keygen > me.key");
    assert!(out.status.success());
    assert!(stderr(&out).is_empty(), "{}", stderr(&out));
}

#[test]
fn keygen_output_file_is_private_atomic_and_never_overwritten() {
    let e = Env::new();
    let out = e.sh("\"$K\" keygen -o me.key");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(mode(&e.path("me.key")), 0o600);
    let before = fs::read(e.path("me.key")).unwrap();
    let out = e.sh("\"$K\" keygen -o me.key");
    assert_fails(&out, 1, "me.key already exists");
    assert_eq!(fs::read(e.path("me.key")).unwrap(), before);
    let leftovers: Vec<_> = fs::read_dir(e.dir.path())
        .unwrap()
        .map(|d| d.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("kapsel-partial"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn keygen_output_on_a_full_disk_leaves_nothing_and_the_retry_works() {
    let e = Env::new();
    let disk = e.path("disk");
    fs::create_dir(&disk).unwrap();
    let mounted = Command::new("mount")
        .args([
            "-t",
            "tmpfs",
            "-o",
            "size=64k",
            "tmpfs",
            disk.to_str().unwrap(),
        ])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        eprintln!("skipping: cannot mount a small tmpfs here (needs root)");
        return;
    }
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(&self.0).status();
        }
    }
    let _unmount = Unmount(disk.clone());
    // Fill the disk to the last byte.
    let filler = disk.join("filler");
    {
        use std::io::Write;
        let mut f = fs::File::create(&filler).unwrap();
        let block = vec![0u8; 4096];
        while f.write_all(&block).is_ok() {}
        while f.write_all(&[0]).is_ok() {}
        let _ = f.sync_all();
    }
    let key = disk.join("me.key");
    let out = e.run(&["keygen", "-o", key.to_str().unwrap()]);
    assert_fails(&out, 1, "me.key");
    let names: Vec<_> = fs::read_dir(&disk)
        .unwrap()
        .map(|d| d.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["filler"], "something was left behind");
    fs::remove_file(&filler).unwrap();
    let out = e.run(&["keygen", "-o", key.to_str().unwrap()]);
    assert!(out.status.success(), "retry: {}", stderr(&out));
    assert_eq!(mode(&key), 0o600);
    let text = fs::read_to_string(&key).unwrap();
    assert!(text.contains("KAPSEL-SECRET-KEY-1"), "{text}");
}

#[test]
fn sign_as_with_several_identities_is_refused_not_cut_to_the_first() {
    let e = Env::new();
    let (a, b) = (Identity::generate(), Identity::generate());
    write_private(
        &e.path("both.key"),
        &format!("{}\n{}\n", &*a.to_secret_string(), &*b.to_secret_string()),
    );
    let (code, _, err) = e.run_in(
        &[
            "encrypt",
            "--sign-as",
            "both.key",
            "-r",
            &a.to_recipient().to_string(),
            "-o",
            "m.kap",
        ],
        b"x",
    );
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("both.key: holds 2 identities"), "{err}");
    assert!(!e.path("m.kap").exists());
}
