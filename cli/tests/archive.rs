//! Archives through the real binary: a `tar c | kapsel encrypt | kapsel
//! decrypt | tar x` pipeline with the real `tar`, and plaintext ranges
//! (`decrypt --offset N --length M`).

// Helpers outside `#[test]` functions unwrap too; clippy.toml allows it only
// inside them.
#![allow(clippy::unwrap_used)]

mod common;

use common::Env;

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use kapsel_codec::{Encryptor, Identity};

const CHUNK: usize = 16384;
const ENCRYPTED_CHUNK: usize = CHUNK + 16;

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_be_bytes()[0] ^ seed ^ (i >> 13) as u8)
        .collect()
}

fn encrypt(to: &Identity, sender: Option<&Identity>, plaintext: &[u8]) -> Vec<u8> {
    let mut enc = Encryptor::new([to.to_recipient()]).unwrap();
    if let Some(s) = sender {
        enc = enc.sender(s.clone());
    }
    let mut w = enc.wrap_output(Vec::new()).unwrap();
    w.write_all(plaintext).unwrap();
    w.finish().unwrap()
}

/// Every directory (as `None`) and file (as its bytes) under `root`, by
/// relative path.
fn tree(root: &Path) -> BTreeMap<PathBuf, Option<Vec<u8>>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let rel = path.strip_prefix(root).unwrap().to_path_buf();
            let kind = fs::symlink_metadata(&path).unwrap().file_type();
            if kind.is_dir() {
                out.insert(rel, None);
                stack.push(path);
            } else {
                assert!(kind.is_file(), "{} is neither file nor dir", path.display());
                out.insert(rel, Some(fs::read(&path).unwrap()));
            }
        }
    }
    out
}

#[test]
fn tar_pipeline_through_encrypt_and_decrypt_reproduces_the_tree() {
    let env = Env::new();
    let (id_path, id) = env.identity("me.key");
    let recipient = id.to_recipient().to_string();
    let src = env.path("src");
    let files: &[(&str, usize)] = &[
        ("empty", 0),
        ("one-chunk", CHUNK),
        ("chunk-minus-one", CHUNK - 1),
        ("chunk-plus-one", CHUNK + 1),
        ("a/b/c/deep.bin", 300_000),
        ("a/b/sibling.txt", 1234),
        ("a/second level/with space.dat", 70_000),
        ("z/empty-in-dir", 0),
    ];
    for (i, (name, len)) in files.iter().enumerate() {
        let p = src.join(name);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, pattern(*len, i as u8)).unwrap();
    }
    fs::create_dir_all(src.join("empty-dir/nested-empty")).unwrap();
    let dst = env.path("dst");
    fs::create_dir(&dst).unwrap();

    let mut tar_c = Command::new("tar")
        .args(["-c", "-f", "-", "-C"])
        .arg(&src)
        .arg(".")
        .stdout(Stdio::piped())
        .spawn()
        .expect("tar is installed");
    let mut enc = env
        .cmd()
        .args(["encrypt", "-q", "-r", &recipient])
        .stdin(Stdio::from(tar_c.stdout.take().unwrap()))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut dec = env
        .cmd()
        .args(["decrypt", "-q", "-i", &id_path])
        .stdin(Stdio::from(enc.stdout.take().unwrap()))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut tar_x = Command::new("tar")
        .args(["-x", "-f", "-", "-C"])
        .arg(&dst)
        .stdin(Stdio::from(dec.stdout.take().unwrap()))
        .spawn()
        .unwrap();
    for (what, child) in [
        ("tar c", &mut tar_c),
        ("encrypt", &mut enc),
        ("decrypt", &mut dec),
        ("tar x", &mut tar_x),
    ] {
        let status = child.wait().unwrap();
        assert!(status.success(), "{what}: {status}");
    }

    let (before, after) = (tree(&src), tree(&dst));
    assert_eq!(
        before.keys().collect::<Vec<_>>(),
        after.keys().collect::<Vec<_>>(),
        "same names"
    );
    for (name, content) in &before {
        assert!(after[name] == *content, "{} differs", name.display());
    }
    assert_eq!(after[Path::new("one-chunk")].as_ref().unwrap().len(), CHUNK);
    assert_eq!(after[Path::new("empty")], Some(Vec::new()));
    assert_eq!(after[Path::new("empty-dir/nested-empty")], None);
}

#[test]
fn decrypt_range_writes_exactly_the_bytes_asked_for() {
    let env = Env::new();
    let (id_path, id) = env.identity("me.key");
    let pt = pattern(10 * CHUNK + 500, 7);
    let file = env.write("data.kap", &encrypt(&id, None, &pt));
    let len = pt.len() as u64;
    let cases: &[(Option<u64>, Option<u64>)] = &[
        (Some(0), Some(1)),
        (Some(CHUNK as u64 - 1), Some(2)),
        (Some(CHUNK as u64), Some(CHUNK as u64)),
        (Some(3 * CHUNK as u64 + 5), Some(4 * CHUNK as u64)),
        (Some(len - 1), Some(1)),
        (Some(100), None),           // to the end
        (None, Some(1000)),          // from the start
        (Some(len - 10), Some(100)), // clipped at the end
        (Some(len), Some(10)),       // empty: at the end
        (Some(len + 5000), None),    // empty: past the end
        (Some(5), Some(0)),          // empty range
    ];
    for &(offset, length) in cases {
        let (o, l) = (offset.unwrap_or(0), length.unwrap_or(u64::MAX));
        let mut args = vec!["decrypt".to_string(), "-i".into(), id_path.clone()];
        if let Some(o) = offset {
            args.extend(["--offset".into(), o.to_string()]);
        }
        if let Some(l) = length {
            args.extend(["--length".into(), l.to_string()]);
        }
        args.push(file.clone());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (code, out, err) = env.run_stdin(&args, b"");
        assert_eq!(code, Some(0), "{offset:?} {length:?}: {err}");
        let from = o.min(len) as usize;
        let to = o.saturating_add(l).min(len) as usize;
        assert!(
            out == pt[from..to],
            "{offset:?} {length:?}: {} bytes",
            out.len()
        );
    }
    // To a file with -o, atomically like a whole decrypt.
    let target = env.path("part.bin");
    let (code, _, err) = env.run_stdin(
        &[
            "decrypt",
            "-i",
            &id_path,
            "--offset",
            "20000",
            "--length",
            "30000",
            "-o",
            target.to_str().unwrap(),
            &file,
        ],
        b"",
    );
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(fs::read(&target).unwrap(), pt[20000..50000]);
}

#[test]
fn decrypt_range_refuses_inputs_it_cannot_seek() {
    let env = Env::new();
    let (id_path, id) = env.identity("me.key");
    let bytes = encrypt(&id, None, &pattern(50_000, 1));
    // Standard input, implicit or "-": usage error with a hint.
    for input in [None, Some("-")] {
        let mut args = vec!["decrypt", "-i", &id_path, "--offset", "10", "--length", "5"];
        args.extend(input);
        let (code, out, err) = env.run_stdin(&args, &bytes);
        assert_eq!(code, Some(2), "{err}");
        assert!(out.is_empty());
        assert!(
            err.contains("standard input") && err.contains("kapsel: hint:"),
            "{err}"
        );
    }
    // Armor.
    let (code, armored, err) = env.run_stdin(
        &["encrypt", "-a", "-r", &id.to_recipient().to_string()],
        &pattern(1000, 2),
    );
    assert_eq!(code, Some(0), "{err}");
    let armored = env.write("armored.kap", &armored);
    let (code, _, err) =
        env.run_stdin(&["decrypt", "-i", &id_path, "--offset", "1", &armored], b"");
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("armored"), "{err}");
    // Not a kapsel file: the class of a whole decrypt.
    let junk = env.write("junk", b"certainly not a kapsel file");
    let (code, _, err) = env.run_stdin(&["decrypt", "-i", &id_path, "--offset", "1", &junk], b"");
    assert_eq!(code, Some(3), "{err}");
    // A wrong identity.
    let (other, _) = env.identity("other.key");
    let file = env.write("data.kap", &bytes);
    let (code, _, _) = env.run_stdin(&["decrypt", "-i", &other, "--length", "1", &file], b"");
    assert_eq!(code, Some(4));
}

#[test]
fn decrypt_range_fails_only_when_it_touches_damage() {
    let env = Env::new();
    let (id_path, id) = env.identity("me.key");
    let pt = pattern(6 * CHUNK + 10, 3);
    let mut bytes = encrypt(&id, None, &pt);
    let header = kapsel_codec::Decryptor::new(&bytes[..])
        .unwrap()
        .unverified_header_bytes()
        .len();
    bytes[header + 56 + 2 * ENCRYPTED_CHUNK + 77] ^= 0x10; // chunk 2
    let file = env.write("damaged.kap", &bytes);
    let range = |offset: usize, length: usize| {
        env.run_stdin(
            &[
                "decrypt",
                "-i",
                &id_path,
                "--offset",
                &offset.to_string(),
                "--length",
                &length.to_string(),
                &file,
            ],
            b"",
        )
    };
    let (code, out, err) = range(CHUNK, CHUNK);
    assert_eq!(code, Some(0), "{err}");
    assert!(out == pt[CHUNK..2 * CHUNK]);
    let (code, out, _) = range(4 * CHUNK, 100_000);
    assert_eq!(code, Some(0));
    assert!(out == pt[4 * CHUNK..]);
    let (code, _, err) = range(2 * CHUNK - 1, 2);
    assert_eq!(code, Some(5), "{err}");
    assert!(err.contains("payload authentication failed"), "{err}");

    // Truncated: a range that reaches the end fails, one before it does not.
    let intact = encrypt(&id, None, &pt);
    let cut = env.write("cut.kap", &intact[..intact.len() - 5]);
    let (code, _, err) = env.run_stdin(
        &[
            "decrypt", "-i", &id_path, "--offset", "0", "--length", "99999999", &cut,
        ],
        b"",
    );
    assert_eq!(code, Some(5), "{err}");
    let (code, _, err) = env.run_stdin(
        &[
            "decrypt",
            "-i",
            &id_path,
            "--offset",
            &(6 * CHUNK).to_string(),
            &cut,
        ],
        b"",
    );
    assert_eq!(code, Some(5), "{err}");
    let (code, out, err) =
        env.run_stdin(&["decrypt", "-i", &id_path, "--length", "100", &cut], b"");
    assert_eq!(code, Some(0), "{err}");
    assert!(out == pt[..100]);
}

#[test]
fn decrypt_range_of_a_signed_file_checks_the_signature_and_the_policy() {
    let env = Env::new();
    let (id_path, id) = env.identity("me.key");
    let (_, sender) = env.identity("sender.key");
    let pt = pattern(5 * CHUNK, 4);
    let bytes = encrypt(&id, Some(&sender), &pt);
    let file = env.write("signed.kap", &bytes);
    let sender_str = sender.to_recipient().to_string();
    let (code, out, err) = env.run_stdin(
        &[
            "decrypt",
            "-i",
            &id_path,
            "--expect-sender",
            &sender_str,
            "--offset",
            "40000",
            "--length",
            "10",
            &file,
        ],
        b"",
    );
    assert_eq!(code, Some(0), "{err}");
    assert!(out == pt[40000..40010]);
    // Someone else expected: refused by policy, nothing written.
    let stranger = Identity::generate().to_recipient().to_string();
    let (code, out, _) = env.run_stdin(
        &[
            "decrypt",
            "-i",
            &id_path,
            "--expect-sender",
            &stranger,
            "--length",
            "10",
            &file,
        ],
        b"",
    );
    assert_eq!(code, Some(6));
    assert!(out.is_empty());
    // A bad signature fails the range too, before any plaintext.
    let mut forged = bytes.clone();
    let n = forged.len();
    forged[n - 3] ^= 0x01;
    let forged = env.write("forged.kap", &forged);
    let (code, out, err) =
        env.run_stdin(&["decrypt", "-i", &id_path, "--length", "10", &forged], b"");
    assert_eq!(code, Some(5), "{err}");
    assert!(err.contains("sender signature"), "{err}");
    assert!(out.is_empty());
    // A replay ledger counts a range as accepting the file.
    let db = env.path("replay.db");
    let db = db.to_str().unwrap();
    let args = [
        "decrypt",
        "-i",
        &id_path,
        "--replay-db",
        db,
        "--length",
        "10",
        &file,
    ];
    let (code, _, err) = env.run_stdin(&args, b"");
    assert_eq!(code, Some(0), "{err}");
    let (code, out, err) = env.run_stdin(&args, b"");
    assert_eq!(code, Some(6), "{err}");
    assert!(out.is_empty());
}
