//! SSH keys through the real binary: keys made by `ssh-keygen` as
//! recipients (`-r` with the `.pub` line, `-R` with a `.pub` or
//! `authorized_keys` file) and as identities (`-i` with the OpenSSH private
//! key file, its passphrase asked on a pseudo-terminal); other key types
//! refused by name, with the file and line.

mod common;

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::Env;

fn have(tool: &str) -> bool {
    let found = Command::new(tool).arg("--help").output().is_ok();
    if !found {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{tool} is missing under CI"
        );
        eprintln!("skipped: {tool} not found");
    }
    found
}

/// ssh-keygen makes `name` (and `name.pub`) in the test's directory.
fn keygen(env: &Env, name: &str, args: &[&str]) {
    let out = Command::new("ssh-keygen")
        .args(args)
        .args(["-q", "-C", "me@host", "-f", &env.p(name)])
        .output()
        .expect("ssh-keygen runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn ssh_keygen_keys_encrypt_and_decrypt() {
    if !have("ssh-keygen") {
        return;
    }
    let env = Env::new();
    keygen(&env, "id_ecdsa", &["-t", "ecdsa", "-b", "256", "-N", ""]);
    let line = std::fs::read_to_string(env.path("id_ecdsa.pub")).expect("pub");
    let msg = env.write("msg", b"for an ssh key");
    for how in [
        vec!["-R".to_string(), env.p("id_ecdsa.pub")],
        vec!["-r".to_string(), line.trim().to_string()],
    ] {
        let mut args = vec!["encrypt".to_string()];
        args.extend(how.iter().cloned());
        args.extend(["-o".into(), env.p("msg.kap"), msg.clone()]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (code, _, err) = env.run(&args);
        assert_eq!(code, Some(0), "{how:?}: {err}");
        let (code, out, err) = env.run(&["decrypt", "-i", &env.p("id_ecdsa"), &env.p("msg.kap")]);
        assert_eq!(code, Some(0), "{err}");
        assert_eq!(out, b"for an ssh key");
    }
    // The SSH key and its kapsel1 string are one recipient.
    let (code, out, _) = env.run(&["pubkey", &env.p("id_ecdsa")]);
    assert_eq!(code, Some(0));
    let (_, from_pub, _) = env.run(&["pubkey", &env.p("id_ecdsa.pub")]);
    assert_eq!(out, from_pub);
    assert!(String::from_utf8_lossy(&out).starts_with("kapsel1"));
}

#[test]
fn an_authorized_keys_file_gives_every_p256_line_and_names_others() {
    if !have("ssh-keygen") {
        return;
    }
    let env = Env::new();
    keygen(&env, "a", &["-t", "ecdsa", "-b", "256", "-N", ""]);
    keygen(&env, "b", &["-t", "ecdsa", "-b", "256", "-N", ""]);
    keygen(&env, "e", &["-t", "ed25519", "-N", ""]);
    let read = |n: &str| std::fs::read_to_string(env.path(n)).expect("pub");
    let good = format!(
        "# team\n{}\nrestrict,command=\"echo a b\" {}\n",
        read("a.pub").trim(),
        read("b.pub").trim()
    );
    env.write("authorized_keys", good.as_bytes());
    let msg = env.write("msg", b"to both");
    let (code, _, err) = env.run(&[
        "encrypt",
        "-R",
        &env.p("authorized_keys"),
        "-o",
        &env.p("msg.kap"),
        &msg,
    ]);
    assert_eq!(code, Some(0), "{err}");
    for key in ["a", "b"] {
        let (code, out, err) = env.run(&["decrypt", "-i", &env.p(key), &env.p("msg.kap")]);
        assert_eq!(
            (code, out.as_slice()),
            (Some(0), &b"to both"[..]),
            "{key}: {err}"
        );
    }
    env.write("mixed", format!("{good}{}", read("e.pub")).as_bytes());
    let (code, _, err) = env.run(&["encrypt", "-R", &env.p("mixed"), &msg]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("mixed:4: invalid SSH public key"), "{err}");
    assert!(err.contains("ssh-ed25519"), "{err}");
    let (code, _, err) = env.run(&["encrypt", "-r", read("e.pub").trim(), &msg]);
    assert_eq!(code, Some(2));
    assert!(err.contains("ssh-ed25519"), "{err}");
    // A .pub file is not an identity, and a private key is not a recipient.
    let (code, _, err) = env.run(&["decrypt", "-i", &env.p("a.pub"), &env.p("msg.kap")]);
    assert_eq!(code, Some(2));
    assert!(err.contains("an SSH public key, not an identity"), "{err}");
    let (code, _, err) = env.run(&["encrypt", "-R", &env.p("a"), &msg]);
    assert_eq!(code, Some(2));
    assert!(err.contains("private key"), "{err}");
}

/// Runs `kapsel ARGS` under a pseudo-terminal (script(1)), answers each
/// passphrase prompt with the next of `answers` once it appears, and
/// returns the transcript and exit status.
fn with_prompts(env: &Env, args: &str, answers: &[&str]) -> (String, Option<i32>) {
    let command_line = format!(
        "KAPSEL_STATE_DIR={} {} {args}",
        env.p("state"),
        env!("CARGO_BIN_EXE_kapsel")
    );
    let mut child = Command::new("script")
        .args(["-qec", &command_line, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("script(1)");
    let mut stdin = child.stdin.take().expect("stdin");
    let mut stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                return;
            }
        }
    });
    let mut transcript = String::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    for answer in answers {
        let prompts = transcript.matches("Enter passphrase").count();
        while transcript.matches("Enter passphrase").count() == prompts {
            let left = deadline.saturating_duration_since(Instant::now());
            let bytes = rx.recv_timeout(left).expect("a passphrase prompt");
            transcript.push_str(&String::from_utf8_lossy(&bytes));
        }
        stdin
            .write_all(format!("{answer}\n").as_bytes())
            .expect("answer");
    }
    while let Ok(bytes) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        transcript.push_str(&String::from_utf8_lossy(&bytes));
    }
    drop(stdin);
    let status = child.wait().expect("script ends");
    (transcript, status.code())
}

#[test]
fn a_protected_key_asks_for_its_passphrase_on_the_terminal() {
    if !have("ssh-keygen") || !have("script") {
        return;
    }
    let env = Env::new();
    keygen(
        &env,
        "id",
        &["-t", "ecdsa", "-b", "256", "-N", "sesame", "-a", "4"],
    );
    let msg = env.write("msg", b"behind a passphrase");
    let (code, _, err) = env.run(&[
        "encrypt",
        "-R",
        &env.p("id.pub"),
        "-o",
        &env.p("msg.kap"),
        &msg,
    ]);
    assert_eq!(code, Some(0), "{err}");
    // pubkey of a protected key needs no passphrase: its public half is plain.
    let (code, out, err) = env.run(&["pubkey", &env.p("id")]);
    assert_eq!(code, Some(0), "{err}");
    let (_, from_pub, _) = env.run(&["pubkey", &env.p("id.pub")]);
    assert_eq!(out, from_pub);

    // One wrong answer, then the right one.
    let args = format!(
        "decrypt -i {} -o {} {}",
        env.p("id"),
        env.p("out"),
        env.p("msg.kap")
    );
    let (tty, code) = with_prompts(&env, &args, &["open up", "sesame"]);
    assert_eq!(code, Some(0), "{tty}");
    assert!(tty.contains("wrong passphrase, try again"), "{tty}");
    assert!(!tty.contains("sesame"), "the passphrase was echoed: {tty}");
    assert_eq!(
        std::fs::read(env.path("out")).expect("out"),
        b"behind a passphrase"
    );

    // Three wrong answers end the run, and nothing is written.
    let args = format!(
        "decrypt -i {} -o {} {}",
        env.p("id"),
        env.p("out2"),
        env.p("msg.kap")
    );
    let (tty, code) = with_prompts(&env, &args, &["a", "b", "c"]);
    assert_eq!(code, Some(2), "{tty}");
    assert!(
        tty.contains("wrong passphrase for the SSH private key"),
        "{tty}"
    );
    assert!(!env.path("out2").exists());

    // Without a terminal there is no one to ask: a clear error.
    let out = Command::new("setsid")
        .arg("-w")
        .arg(env!("CARGO_BIN_EXE_kapsel"))
        .args(["decrypt", "-i", &env.p("id"), &env.p("msg.kap")])
        .env("KAPSEL_STATE_DIR", env.p("state"))
        .stdin(Stdio::null())
        .output()
        .expect("setsid");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("protected by a passphrase"), "{err}");
    assert!(err.contains("terminal"), "{err}");
}

#[test]
fn several_files_need_the_passphrase_once() {
    if !have("ssh-keygen") || !have("script") {
        return;
    }
    let env = Env::new();
    keygen(
        &env,
        "id",
        &["-t", "ecdsa", "-b", "256", "-N", "sesame", "-a", "4"],
    );
    let mut inputs = String::new();
    for n in ["a", "b", "c"] {
        let src = env.write(n, n.as_bytes());
        let out = format!("{src}.kap");
        let (code, _, err) = env.run(&["encrypt", "-R", &env.p("id.pub"), "-o", &out, &src]);
        assert_eq!(code, Some(0), "{err}");
        std::fs::remove_file(&src).expect("remove");
        inputs.push_str(&format!(" {out}"));
    }
    let (tty, code) = with_prompts(
        &env,
        &format!("decrypt -i {}{inputs}", env.p("id")),
        &["sesame"],
    );
    assert_eq!(code, Some(0), "{tty}");
    assert_eq!(tty.matches("Enter passphrase").count(), 1, "{tty}");
    for n in ["a", "b", "c"] {
        assert_eq!(std::fs::read(env.path(n)).expect("out"), n.as_bytes());
    }
}
