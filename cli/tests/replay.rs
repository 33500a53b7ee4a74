//! Replay protection and sender authentication through the real binary:
//! the ledger under concurrency and SIGKILL, freshness windows, expected
//! senders, and unique serials under concurrent senders.

// Helpers outside `#[test]` functions unwrap too; clippy.toml allows it only
// inside them.
#![allow(clippy::unwrap_used)]

mod common;

use common::{now, Env};

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Duration;

use kapsel_cli::ledger::Ledger;
use kapsel_codec::{Encryptor, Identity};

/// A file from `sender` (signed) or anonymous, to `to`, created at `created_at`.
fn file(
    to: &Identity,
    sender: Option<&Identity>,
    created_at: u64,
    serial: u64,
    plaintext: &[u8],
) -> Vec<u8> {
    let mut enc = Encryptor::new([to.to_recipient()])
        .unwrap()
        .created_at(created_at)
        .serial(serial);
    if let Some(s) = sender {
        enc = enc.sender(s.clone());
    }
    let mut w = enc.wrap_output(Vec::new()).unwrap();
    w.write_all(plaintext).unwrap();
    w.finish().unwrap()
}

fn ledger_len(path: &Path) -> u64 {
    Ledger::open(path).unwrap().len().unwrap()
}

#[test]
fn replayed_message_is_refused_with_exit_6() {
    let env = Env::new();
    let (a, a_id) = env.identity("a.key");
    let (_, s_id) = env.identity("s.key");
    let db = env.path("replay.db");
    for (name, sender) in [("signed", Some(&s_id)), ("anonymous", None)] {
        let f = env.write(
            &format!("{name}.kap"),
            &file(&a_id, sender, now(), 7, b"hello"),
        );
        let (code, out, err) =
            env.run(&["decrypt", "-i", &a, "--replay-db", db.to_str().unwrap(), &f]);
        assert_eq!(code, Some(0), "{name}: {err}");
        assert_eq!(out, b"hello");
        let (code, out, err) =
            env.run(&["decrypt", "-i", &a, "--replay-db", db.to_str().unwrap(), &f]);
        assert_eq!(code, Some(6), "{name}: second decrypt must be refused");
        assert!(out.is_empty(), "a replay releases nothing");
        assert!(err.contains("kapsel: error: replay refused"), "{err}");
    }
    // Same (sender, serial) in a different file is a replay too.
    let again = env.write(
        "again.kap",
        &file(&a_id, Some(&s_id), now(), 7, b"other text"),
    );
    assert_eq!(
        env.run(&[
            "decrypt",
            "-i",
            &a,
            "--replay-db",
            db.to_str().unwrap(),
            &again
        ])
        .0,
        Some(6)
    );
    // The environment variable enables the default ledger location.
    let fresh = env.write("fresh.kap", &file(&a_id, None, now(), 1, b"x"));
    let via_env = |env: &Env| {
        env.cmd()
            .env("KAPSEL_REPLAY_DB", "default")
            .args(["decrypt", "-i", &a, &fresh])
            .output()
            .unwrap()
    };
    assert_eq!(via_env(&env).status.code(), Some(0));
    assert_eq!(via_env(&env).status.code(), Some(6));
    assert!(env.path("state/replay.db").exists());
}

#[test]
fn of_concurrent_decrypts_of_one_message_exactly_one_is_accepted() {
    let env = Env::new();
    let (a, a_id) = env.identity("a.key");
    let (_, s_id) = env.identity("s.key");
    let db = env.path("replay.db");
    let f = env.write(
        "m.kap",
        &file(&a_id, Some(&s_id), now(), 99, &vec![5u8; 300_000]),
    );
    let children: Vec<Child> = (0..8)
        .map(|_| {
            env.cmd()
                .args(["decrypt", "-i", &a, "--replay-db", db.to_str().unwrap(), &f])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    let codes: Vec<Option<i32>> = children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap().status.code())
        .collect();
    assert_eq!(
        codes.iter().filter(|c| **c == Some(0)).count(),
        1,
        "{codes:?}"
    );
    // The others are refused: accepted (6) if the winner had finished,
    // pending (8) if it was still running.
    assert_eq!(
        codes
            .iter()
            .filter(|c| **c == Some(6) || **c == Some(8))
            .count(),
        7,
        "{codes:?}"
    );
    assert_eq!(ledger_len(&db), 1);
}

#[test]
fn a_message_another_receiver_is_still_reading_is_pending_with_exit_8() {
    let env = Env::new();
    let (a, a_id) = env.identity("a.key");
    let db = env.path("replay.db");
    let db_s = db.to_str().unwrap();
    let plaintext = common::random_bytes(4 << 20);
    let whole = file(&a_id, None, now(), 1, &plaintext);
    let f = env.write("m.kap", &whole);
    // The first receiver gets all but the last MiB, then stalls on its open
    // input. It reserves the message only when its first plaintext is ready
    // to be written: after the first batch (2 MiB) of the parallel path.
    let first_out = env.path("first.out");
    let mut first = env
        .cmd()
        .args([
            "decrypt",
            "-i",
            &a,
            "--replay-db",
            db_s,
            "-o",
            first_out.to_str().unwrap(),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = first.stdin.take().unwrap();
    stdin.write_all(&whole[..whole.len() - (1 << 20)]).unwrap();
    stdin.flush().unwrap();
    // Wait until it has reserved the message (it holds it from then on).
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !db.exists() || ledger_len(&db) == 0 {
        if let Some(status) = first.try_wait().unwrap() {
            let mut err = String::new();
            first
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            panic!("the first receiver ended early ({status}): {err}");
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the first receiver never reserved the message"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let second_out = env.path("second.out");
    let second = |env: &Env| {
        env.run(&[
            "decrypt",
            "-i",
            &a,
            "--replay-db",
            db_s,
            "-o",
            second_out.to_str().unwrap(),
            &f,
        ])
    };
    let (code, _, err) = second(&env);
    assert_eq!(code, Some(8), "{err}");
    assert!(
        err.contains(&format!(
            "kapsel: error: this message is being received by another kapsel process (pid {}); try again when it has finished",
            first.id()
        )),
        "{err}"
    );
    assert!(!second_out.exists());
    // The first receiver's input ends early: it fails, and since with -o it
    // released nothing, it withdraws its reservation.
    drop(stdin);
    let result = first.wait_with_output().unwrap();
    assert_eq!(
        result.status.code(),
        Some(5),
        "{}",
        String::from_utf8_lossy(&result.stderr)
    );
    assert!(!first_out.exists());
    let (code, _, err) = second(&env);
    assert_eq!(code, Some(0), "the retry is accepted: {err}");
    assert_eq!(fs::read(&second_out).unwrap(), plaintext);
}

#[test]
fn opening_a_ledger_again_keeps_the_locks_of_connections_already_open() {
    // Closing any descriptor of a file drops all of a process's POSIX
    // locks on it; if opening the ledger a second time did that, another
    // process closing the ledger would take it for unused and delete the
    // WAL that the first connection still writes to.
    let env = Env::new();
    let (a, a_id) = env.identity("a.key");
    let db = env.path("replay.db");
    let db_s = db.to_str().unwrap();
    let mut held = Ledger::open(&db).unwrap();
    let before = held.reserve(&[0u8; 33], 0, None, 0).unwrap();
    drop(Ledger::open(&db).unwrap());
    let f = env.write("m.kap", &file(&a_id, None, now(), 1, b"m"));
    assert_eq!(
        env.run(&["decrypt", "-i", &a, "--replay-db", db_s, &f]).0,
        Some(0)
    );
    assert!(
        env.path("replay.db-wal").exists(),
        "the WAL of an open connection was deleted"
    );
    held.confirm(before).unwrap();
    let after = [&[0u8][..], &[1u8; 32]].concat();
    let r = held.reserve(&after, 0, None, 0).unwrap();
    held.confirm(r).unwrap();
    drop(held);
    assert_eq!(
        ledger_len(&db),
        3,
        "a write after the other process closed was lost"
    );
}

#[test]
fn sigkill_at_any_point_never_corrupts_the_ledger_nor_lets_a_replay_through() {
    let env = Env::new();
    let (a, a_id) = env.identity("a.key");
    let db = env.path("replay.db");
    let db_s = db.to_str().unwrap().to_string();
    // 1. Killed after plaintext started flowing: the message stays accepted.
    let big = file(&a_id, None, now(), 1, &vec![9u8; 4 << 20]);
    let mut child = env
        .cmd()
        .args(["decrypt", "-i", &a, "--replay-db", &db_s])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    // Send the header and three of four megabytes (more than the 1 MiB
    // output buffer), then wait for plaintext.
    stdin.write_all(&big[..3 << 20]).unwrap();
    let mut first = [0u8; 1];
    child
        .stdout
        .as_mut()
        .unwrap()
        .read_exact(&mut first)
        .unwrap();
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    drop(stdin);
    assert!(Ledger::open(&db).unwrap().integrity_ok().unwrap());
    let f = env.write("big.kap", &big);
    let (code, out, err) = env.run(&["decrypt", "-i", &a, "--replay-db", &db_s, &f]);
    assert_eq!(
        code,
        Some(6),
        "a message whose plaintext began to flow must count as accepted"
    );
    assert!(out.is_empty());
    assert!(
        err.contains("abandoned by a receiver that stopped before finishing"),
        "{err}"
    );

    // 2. Killed at arbitrary moments, including inside ledger transactions:
    // the database stays intact, and any message that released a byte is refused later.
    for round in 0..24u64 {
        let m = file(
            &a_id,
            None,
            now(),
            1000 + round,
            &vec![round as u8; 200_000],
        );
        let path = env.write(&format!("m{round}.kap"), &m);
        let out_path = env.path(&format!("out{round}"));
        let mut child = env
            .cmd()
            .args([
                "decrypt",
                "-i",
                &a,
                "--replay-db",
                &db_s,
                "-o",
                out_path.to_str().unwrap(),
                &path,
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_micros(round * 700));
        let _ = child.kill();
        let status = child.wait().unwrap();
        let ledger = Ledger::open(&db).unwrap();
        assert!(
            ledger.integrity_ok().unwrap(),
            "round {round}: ledger corrupt"
        );
        let delivered = status.success() || out_path.exists();
        let (code, _, _) = env.run(&[
            "decrypt",
            "-i",
            &a,
            "--replay-db",
            &db_s,
            "-o",
            out_path.to_str().unwrap(),
            &path,
        ]);
        if delivered {
            assert_eq!(
                code,
                Some(6),
                "round {round}: a delivered message was accepted again"
            );
        } else {
            assert!(
                code == Some(0) || code == Some(6),
                "round {round}: unexpected {code:?}"
            );
        }
        // Whatever happened, a third attempt is always refused now.
        assert_eq!(
            env.run(&["decrypt", "-i", &a, "--replay-db", &db_s, &path])
                .0,
            Some(6),
            "round {round}"
        );
    }
}

#[test]
fn expired_and_future_messages_are_refused() {
    let env = Env::new();
    let (a, a_id) = env.identity("a.key");
    let old = env.write("old.kap", &file(&a_id, None, now() - 7200, 1, b"old"));
    let future = env.write("future.kap", &file(&a_id, None, now() + 3600, 2, b"future"));
    let slight = env.write("slight.kap", &file(&a_id, None, now() + 60, 3, b"slight"));
    let (code, out, err) = env.run(&["decrypt", "-i", &a, "--max-age", "1h", &old]);
    assert_eq!(code, Some(6));
    assert!(out.is_empty() && err.contains("too old"), "{err}");
    assert_eq!(
        env.run(&["decrypt", "-i", &a, "--max-age", "3h", &old]).0,
        Some(0)
    );
    let (code, _, err) = env.run(&["decrypt", "-i", &a, "--max-age", "1h", &future]);
    assert_eq!(code, Some(6));
    assert!(err.contains("future"), "{err}");
    assert_eq!(
        env.run(&["decrypt", "-i", &a, "--max-age", "1h", &slight])
            .0,
        Some(0),
        "within the default 5m skew"
    );
    assert_eq!(
        env.run(&[
            "decrypt",
            "-i",
            &a,
            "--max-age",
            "1h",
            "--max-skew",
            "10s",
            &slight
        ])
        .0,
        Some(6)
    );
    // Without a freshness policy, time is not judged.
    assert_eq!(env.run(&["decrypt", "-i", &a, &future]).0, Some(0));
    assert_eq!(
        env.run(&["decrypt", "-i", &a, "--max-age", "banana", &old])
            .0,
        Some(2)
    );
}

#[test]
fn pruning_keeps_the_ledger_small_and_pruned_messages_stay_refused() {
    let env = Env::new();
    let (a, a_id) = env.identity("a.key");
    let db = env.path("replay.db");
    let db_s = db.to_str().unwrap();
    // Accept 20 messages without a window: nothing is pruned.
    let t0 = now();
    let paths: Vec<String> = (0..20)
        .map(|i| {
            env.write(
                &format!("m{i}.kap"),
                &file(&a_id, None, t0 - 3000 + i * 100, i, b"m"),
            )
        })
        .collect();
    for p in &paths {
        assert_eq!(
            env.run(&["decrypt", "-i", &a, "--replay-db", db_s, p]).0,
            Some(0)
        );
    }
    assert_eq!(ledger_len(&db), 20);
    // One decrypt with a 10-minute window prunes everything older.
    let fresh = env.write("fresh.kap", &file(&a_id, None, t0, 100, b"f"));
    assert_eq!(
        env.run(&[
            "decrypt",
            "-i",
            &a,
            "--replay-db",
            db_s,
            "--max-age",
            "10m",
            &fresh
        ])
        .0,
        Some(0)
    );
    let remaining = ledger_len(&db);
    assert!(remaining <= 5, "{remaining} entries left after pruning");
    // A pruned message cannot sneak back in, even when the caller asks for no window.
    let (code, _, err) = env.run(&["decrypt", "-i", &a, "--replay-db", db_s, &paths[0]]);
    assert_eq!(code, Some(6));
    assert!(err.contains("horizon"), "{err}");
}

#[test]
fn expect_sender_refuses_other_and_absent_senders() {
    let env = Env::new();
    let (a, a_id) = env.identity("a.key");
    let (_, s_id) = env.identity("s.key");
    let (_, mallory) = env.identity("m.key");
    let s = s_id.to_recipient().to_string();
    let from_s = env.write("s.kap", &file(&a_id, Some(&s_id), now(), 1, b"from s"));
    let from_m = env.write("m.kap", &file(&a_id, Some(&mallory), now(), 1, b"from m"));
    let anon = env.write("n.kap", &file(&a_id, None, now(), 1, b"anon"));
    assert_eq!(
        env.run(&["decrypt", "-i", &a, "--expect-sender", &s, &from_s])
            .1,
        b"from s"
    );
    let (code, out, err) = env.run(&["decrypt", "-i", &a, "--expect-sender", &s, &from_m]);
    assert_eq!(code, Some(6));
    assert!(
        out.is_empty() && err.contains("not an expected sender"),
        "{err}"
    );
    assert_eq!(
        env.run(&["decrypt", "-i", &a, "--expect-sender", &s, &anon])
            .0,
        Some(6)
    );
    assert_eq!(
        env.run(&["verify", "-i", &a, "--expect-sender", &s, &from_s])
            .0,
        Some(0)
    );
    assert_eq!(
        env.run(&["verify", "-i", &a, "--expect-sender", &s, &from_m])
            .0,
        Some(6)
    );
}

#[test]
fn forged_signature_by_an_insider_exits_5_and_verify_checks_every_chunk() {
    let env = Env::new();
    let (a, a_id) = env.identity("a.key");
    let (_, s_id) = env.identity("s.key");
    let good = file(&a_id, Some(&s_id), now(), 5, &vec![1u8; 100_000]);
    let mut bad_sig = good.clone();
    let n = bad_sig.len();
    bad_sig[n - 5] ^= 0x20;
    let p = env.write("bad.kap", &bad_sig);
    let (code, _, err) = env.run(&["verify", "-i", &a, &p]);
    assert_eq!(code, Some(5));
    assert!(err.contains("sender verification failed"), "{err}");
    let mut bad_chunk = good.clone();
    bad_chunk[n / 2] ^= 1;
    let p2 = env.write("bad2.kap", &bad_chunk);
    let (code, out, _) = env.run(&["verify", "-i", &a, &p2]);
    assert_eq!(code, Some(5));
    assert!(out.is_empty(), "verify writes no plaintext");
    let ok = env.write("good.kap", &good);
    let (code, out, _) = env.run(&["verify", "-i", &a, &ok]);
    // No plaintext: only the one-line summary.
    let summary = String::from_utf8(out).unwrap();
    assert_eq!(code, Some(0));
    assert!(
        summary.starts_with("verified: ") && summary.lines().count() == 1,
        "{summary}"
    );
    // A failed decrypt to a file (-o) withdraws its reservation, since no
    // plaintext left: the genuine file is still accepted afterwards.
    let db = env.path("replay.db");
    let db_s = db.to_str().unwrap();
    let out = env.path("out.bin");
    let out_s = out.to_str().unwrap();
    assert_eq!(
        env.run(&["decrypt", "-i", &a, "--replay-db", db_s, "-o", out_s, &p2])
            .0,
        Some(5)
    );
    assert!(!out.exists());
    assert_eq!(
        env.run(&["decrypt", "-i", &a, "--replay-db", db_s, "-o", out_s, &ok])
            .0,
        Some(0)
    );
    // A failure while streaming to standard output before any plaintext
    // was written (the only segment of this file is forged) withdraws the
    // reservation too: the genuine file is still accepted.
    let (code, released, _) = env.run(&["decrypt", "-i", &a, "--replay-db", db_s, &p2]);
    assert_eq!((code, released.len()), (Some(5), 0));
    // Once plaintext reached standard output, the reservation stays: a
    // file damaged in its third segment releases two verified segments,
    // and is never released again.
    let big = vec![1u8; 3 << 20];
    let other = env.write("other.kap", &file(&a_id, Some(&s_id), now(), 6, &big));
    let mut damaged = fs::read(&other).unwrap();
    let m = damaged.len();
    damaged[m - 100_000] ^= 1;
    let damaged = env.write("other-damaged.kap", &damaged);
    let (code, released, _) = env.run(&["decrypt", "-i", &a, "--replay-db", db_s, &damaged]);
    assert_eq!(code, Some(5));
    assert_eq!(released.len(), 2 << 20, "two whole verified segments");
    assert_eq!(
        env.run(&["decrypt", "-i", &a, "--replay-db", db_s, &other])
            .0,
        Some(6)
    );
}

#[test]
fn serials_stay_unique_under_concurrent_senders() {
    let env = Env::new();
    let (s, _) = env.identity("s.key");
    let (_, a_id) = env.identity("a.key");
    let r = a_id.to_recipient().to_string();
    let input = env.write("in.txt", b"m");
    let children: Vec<(Child, PathBuf)> = (0..24)
        .map(|i| {
            let out = env.path(&format!("o{i}.kap"));
            let child = env
                .cmd()
                .args([
                    "encrypt",
                    "--sign-as",
                    &s,
                    "-r",
                    &r,
                    "-o",
                    out.to_str().unwrap(),
                    &input,
                ])
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            (child, out)
        })
        .collect();
    let mut serials = Vec::new();
    for (child, out) in children {
        let result = child.wait_with_output().unwrap();
        assert!(
            result.status.success(),
            "{}",
            String::from_utf8_lossy(&result.stderr)
        );
        let json = env.run(&["inspect", "--json", out.to_str().unwrap()]).1;
        let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
        // A decimal string: 64-bit numbers survive JSON tools that use doubles.
        serials.push(v["serial"].as_str().unwrap().parse::<u64>().unwrap());
    }
    let mut unique = serials.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(
        unique.len(),
        serials.len(),
        "duplicate serial issued: {serials:?}"
    );
}

#[test]
fn inspect_reports_the_plaintext_size_of_signed_files() {
    let env = Env::new();
    let (_, a_id) = env.identity("a.key");
    let (_, s_id) = env.identity("s.key");
    let f = env.write(
        "s.kap",
        &file(&a_id, Some(&s_id), now(), 3, &vec![0u8; 40_000]),
    );
    let v: serde_json::Value =
        serde_json::from_slice(&env.run(&["inspect", "--json", &f]).1).unwrap();
    assert_eq!(v["plaintext_len"], 40_000);
    assert_eq!(v["sender"], s_id.to_recipient().to_string());
    assert_eq!(v["serial"], "3");
}
