//! Faults: a full disk, write errors, a closed standard output, and SIGKILL
//! in the middle of encrypt and decrypt. Never a panic, always one clear
//! error line and a non-zero exit, never partial output under the target
//! name, and an existing target left untouched.

// Helpers outside `#[test]` functions unwrap too; clippy.toml allows it only
// inside them.
#![allow(clippy::unwrap_used)]

mod common;

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use kapsel_codec::{Encryptor, Identity};

fn kapsel() -> Command {
    Command::new(env!("CARGO_BIN_EXE_kapsel"))
}

fn identity(dir: &Path) -> (String, String, Identity) {
    let (path, id) = common::write_identity_file(&dir.join("id.key"));
    (path, id.to_recipient().to_string(), id)
}

fn encrypted(id: &Identity, len: usize) -> Vec<u8> {
    let mut w = Encryptor::new([id.to_recipient()])
        .unwrap()
        .wrap_output(Vec::new())
        .unwrap();
    w.write_all(&vec![0xabu8; len]).unwrap();
    w.finish().unwrap()
}

/// One clear error line (plus an optional hint), no panic.
fn assert_clean_error(stderr: &[u8]) {
    let text = String::from_utf8_lossy(stderr);
    assert!(text.starts_with("kapsel: error: "), "{text}");
    assert!(
        !text.contains("panicked") && !text.contains("backtrace"),
        "{text}"
    );
    assert!(text.lines().all(|l| l.starts_with("kapsel: ")), "{text}");
}

fn no_partial_files(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("kapsel-partial"))
        .collect()
}

/// A small tmpfs, unmounted on drop. `None` where mounting is not allowed.
struct SmallDisk {
    path: PathBuf,
    _dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(size: &str) -> Option<Self> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("disk");
        fs::create_dir(&path).unwrap();
        let ok = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size}"),
                "tmpfs",
                path.to_str().unwrap(),
            ])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(SmallDisk { path, _dir: dir })
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.path).status();
    }
}

#[test]
fn full_disk_fails_cleanly_and_keeps_the_existing_target() {
    let Some(disk) = SmallDisk::mount("256k") else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI must be able to mount a small tmpfs (root)"
        );
        eprintln!("skipping: cannot mount a tmpfs here (not root?)");
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let (key, recipient, id) = identity(work.path());
    let input = work.path().join("big.bin");
    fs::write(&input, vec![7u8; 1 << 20]).unwrap();
    let target = disk.path.join("out.kap");
    fs::write(&target, b"old contents").unwrap();

    let out = kapsel()
        .args([
            "encrypt",
            "-r",
            &recipient,
            "-o",
            target.to_str().unwrap(),
            input.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_clean_error(&out.stderr);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no space left"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(fs::read(&target).unwrap(), b"old contents");
    assert!(no_partial_files(&disk.path).is_empty());

    let file = work.path().join("big.kap");
    fs::write(&file, encrypted(&id, 1 << 20)).unwrap();
    let plain_target = disk.path.join("plain.bin");
    let out = kapsel()
        .args([
            "decrypt",
            "-i",
            &key,
            "-o",
            plain_target.to_str().unwrap(),
            file.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_clean_error(&out.stderr);
    assert!(!plain_target.exists());
    assert!(no_partial_files(&disk.path).is_empty());
}

#[test]
fn write_error_on_standard_output_is_reported() {
    let work = tempfile::tempdir().unwrap();
    let (_, recipient, _) = identity(work.path());
    let input = work.path().join("in.bin");
    fs::write(&input, vec![1u8; 200_000]).unwrap();
    let full = fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let out = kapsel()
        .args(["encrypt", "-r", &recipient, input.to_str().unwrap()])
        .stdout(full)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_clean_error(&out.stderr);
}

#[test]
fn reading_a_directory_is_a_clear_error() {
    let work = tempfile::tempdir().unwrap();
    let (key, recipient, _) = identity(work.path());
    let out = kapsel()
        .args([
            "encrypt",
            "-r",
            &recipient,
            "-o",
            work.path().join("x").to_str().unwrap(),
            work.path().to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_clean_error(&out.stderr);
    let out = kapsel()
        .args(["decrypt", "-i", &key, work.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_clean_error(&out.stderr);
}

#[test]
fn closed_standard_output_ends_decrypt_quietly_not_with_a_panic() {
    let work = tempfile::tempdir().unwrap();
    let (key, _, id) = identity(work.path());
    let file = work.path().join("m.kap");
    fs::write(&file, encrypted(&id, 8 << 20)).unwrap();
    let mut child = kapsel()
        .args(["decrypt", "-i", &key, file.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 10];
    child
        .stdout
        .as_mut()
        .unwrap()
        .read_exact(&mut first)
        .unwrap();
    drop(child.stdout.take()); // the reader goes away, like `| head -c 10`
    let out = child.wait_with_output().unwrap();
    // As cat does: exit 1 and no message (the reader chose to stop).
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
}

#[test]
fn sigkill_during_encrypt_or_decrypt_leaves_no_output_under_the_target_name() {
    let work = tempfile::tempdir().unwrap();
    let (key, recipient, id) = identity(work.path());
    let existing = work.path().join("existing.txt");
    let fresh = work.path().join("fresh.out");
    let file = encrypted(&id, 4 << 20);
    for (args, input) in [
        (
            vec!["encrypt", "-r", recipient.as_str()],
            vec![3u8; 4 << 20],
        ),
        (vec!["decrypt", "-i", key.as_str()], file.clone()),
    ] {
        for target in [&existing, &fresh] {
            fs::write(&existing, b"keep me").unwrap();
            let _ = fs::remove_file(&fresh);
            let mut child = kapsel()
                .args(&args)
                .args(["-o", target.to_str().unwrap()])
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            let mut stdin = child.stdin.take().unwrap();
            // Half the input, then SIGKILL while the process is mid-stream.
            stdin.write_all(&input[..input.len() / 2]).unwrap();
            std::thread::sleep(std::time::Duration::from_millis(100));
            child.kill().unwrap();
            child.wait().unwrap();
            drop(stdin);
            assert_eq!(
                fs::read(&existing).unwrap(),
                b"keep me",
                "{args:?}: existing target changed"
            );
            assert!(
                !fresh.exists(),
                "{args:?}: partial output under the target name"
            );
        }
    }
}
