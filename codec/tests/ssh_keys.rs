//! SSH keys made by the real `ssh-keygen`: the `.pub` line is the recipient
//! of the private key file, plain or protected by each cipher ssh-keygen
//! offers that kapsel reads; a wrong passphrase, a foreign key type and a
//! hostile bcrypt cost are refused with their own errors. Without
//! `ssh-keygen` the tests skip (and fail when `CI=true`).

use std::io::{Read, Write};
use std::path::Path;
use std::process::Command;

use base64::Engine;
use kapsel_codec::ssh::{
    decrypt_private_key, parse_public_key, read_private_key, PrivateKeyFile, SshKeyError,
    MAX_BCRYPT_ROUNDS,
};
use kapsel_codec::{Decryptor, Encryptor};

fn have_ssh_keygen() -> bool {
    let found = Command::new("ssh-keygen")
        .arg("-?")
        .output()
        .map(|_| true)
        .unwrap_or(false);
    if !found {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "ssh-keygen is missing (install openssh-client)"
        );
        eprintln!("skipped: ssh-keygen not found (install openssh-client)");
    }
    found
}

/// Runs ssh-keygen to make `name` in `dir`; returns (private text, public line).
fn keygen(dir: &Path, name: &str, args: &[&str]) -> (String, String) {
    let path = dir.join(name);
    let out = Command::new("ssh-keygen")
        .args(args)
        .args(["-q", "-C", "me@host", "-f"])
        .arg(&path)
        .output()
        .expect("ssh-keygen runs");
    assert!(
        out.status.success(),
        "ssh-keygen {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let private = std::fs::read_to_string(&path).expect("private key");
    let public = std::fs::read_to_string(dir.join(format!("{name}.pub"))).expect("public key");
    (private, public)
}

fn round_trip(recipient: kapsel_codec::Recipient, identity: &kapsel_codec::Identity) {
    let mut w = Encryptor::new([recipient])
        .expect("recipient")
        .wrap_output(Vec::new())
        .expect("header");
    w.write_all(b"to an ssh key").expect("write");
    let file = w.finish().expect("finish");
    let mut out = Vec::new();
    Decryptor::new(&file[..])
        .expect("header")
        .decrypt(std::slice::from_ref(identity))
        .expect("the ssh identity opens it")
        .read_to_end(&mut out)
        .expect("decrypt");
    assert_eq!(out, b"to an ssh key");
}

#[test]
fn plain_ssh_keygen_keys_work_both_ways() {
    if !have_ssh_keygen() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    for i in 0..3 {
        let (private, public) = keygen(
            dir.path(),
            &format!("k{i}"),
            &["-t", "ecdsa", "-b", "256", "-N", ""],
        );
        let recipient = parse_public_key(public.trim()).expect("the .pub line parses");
        let PrivateKeyFile::Identity(identity, comment) =
            read_private_key(&private).expect("the key file reads")
        else {
            panic!("a key made with -N '' is not encrypted");
        };
        assert_eq!(comment, "me@host");
        assert_eq!(identity.to_recipient(), recipient);
        round_trip(recipient, &identity);
    }
}

#[test]
fn protected_keys_open_with_their_passphrase_only() {
    if !have_ssh_keygen() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    for cipher in [
        None,
        Some("aes128-ctr"),
        Some("aes256-gcm@openssh.com"),
        Some("aes128-gcm@openssh.com"),
    ] {
        let mut args = vec!["-t", "ecdsa", "-b", "256", "-N", "correct horse", "-a", "4"];
        if let Some(c) = cipher {
            args.extend(["-Z", c]);
        }
        let name = cipher.unwrap_or("default").replace('@', "_");
        let (private, public) = keygen(dir.path(), &name, &args);
        let recipient = parse_public_key(public.trim()).expect("the .pub line parses");
        match read_private_key(&private).expect("the key file reads") {
            PrivateKeyFile::Encrypted(r) => assert_eq!(r, recipient, "{cipher:?}"),
            PrivateKeyFile::Identity(..) => panic!("{cipher:?}: the key is protected"),
        }
        let (identity, _) =
            decrypt_private_key(&private, b"correct horse").expect("the passphrase opens it");
        assert_eq!(identity.to_recipient(), recipient);
        round_trip(recipient, &identity);
        assert_eq!(
            decrypt_private_key(&private, b"correct horse!").err(),
            Some(SshKeyError::WrongPassphrase),
            "{cipher:?}"
        );
        assert_eq!(
            decrypt_private_key(&private, b"").err(),
            Some(SshKeyError::PassphraseRequired)
        );
    }
}

#[test]
fn other_key_types_and_ciphers_are_named() {
    if !have_ssh_keygen() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    for (args, name) in [
        (&["-t", "ed25519", "-N", ""][..], "ssh-ed25519"),
        (
            &["-t", "ecdsa", "-b", "384", "-N", ""][..],
            "ecdsa-sha2-nistp384",
        ),
        (&["-t", "rsa", "-b", "2048", "-N", ""][..], "ssh-rsa"),
    ] {
        let (private, public) = keygen(dir.path(), name, args);
        assert_eq!(
            parse_public_key(public.trim()).err(),
            Some(SshKeyError::UnsupportedKeyType(name.into()))
        );
        assert_eq!(
            read_private_key(&private).err(),
            Some(SshKeyError::UnsupportedKeyType(name.into()))
        );
    }
    let (private, _) = keygen(
        dir.path(),
        "chacha",
        &[
            "-t",
            "ecdsa",
            "-b",
            "256",
            "-N",
            "pw",
            "-Z",
            "chacha20-poly1305@openssh.com",
        ],
    );
    assert_eq!(
        read_private_key(&private).err(),
        Some(SshKeyError::UnsupportedCipher(
            "chacha20-poly1305@openssh.com".into()
        ))
    );
}

#[test]
fn a_hostile_bcrypt_cost_is_refused_before_any_work() {
    if !have_ssh_keygen() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let (private, _) = keygen(
        dir.path(),
        "k",
        &["-t", "ecdsa", "-b", "256", "-N", "pw", "-a", "16"],
    );
    // The rounds are the 4 bytes after the 16-byte salt in the KDF options:
    // find `string salt, uint32 16` and raise it.
    let b64: String = private
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let mut der = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .expect("Base64");
    let at = der
        .windows(4 + 16 + 4)
        .position(|w| w[..4] == 16u32.to_be_bytes() && w[20..] == 16u32.to_be_bytes())
        .expect("the bcrypt options");
    for rounds in [MAX_BCRYPT_ROUNDS + 1, u32::MAX] {
        der[at + 20..at + 24].copy_from_slice(&rounds.to_be_bytes());
        let text = format!(
            "-----BEGIN OPENSSH PRIVATE KEY-----\n{}\n-----END OPENSSH PRIVATE KEY-----\n",
            base64::engine::general_purpose::STANDARD.encode(&der)
        );
        let started = std::time::Instant::now();
        assert_eq!(
            decrypt_private_key(&text, b"pw").err(),
            Some(SshKeyError::TooManyRounds(rounds))
        );
        eprintln!("{rounds} rounds refused in {:?}", started.elapsed());
    }
}
