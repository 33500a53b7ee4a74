//! `kapsel ledger` on real ledgers made by `kapsel decrypt`, through the
//! real binary: list, check, forget, repair, and file modes.

// Helpers outside `#[test]` functions unwrap too; clippy.toml allows it only
// inside them.
#![allow(clippy::unwrap_used)]

mod common;

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use kapsel_codec::{Encryptor, Identity};

struct Env {
    dir: tempfile::TempDir,
    key: String,
    me: Identity,
    sender: Identity,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

impl Env {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (key, me) = common::write_identity_file(&dir.path().join("me.key"));
        Env {
            dir,
            key,
            me,
            sender: Identity::generate(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn p(&self, name: &str) -> String {
        self.path(name).to_str().unwrap().to_string()
    }

    fn kapsel(&self) -> Command {
        let mut c = common::kapsel_in(self.dir.path());
        c.stdin(Stdio::null());
        c
    }

    /// A file signed by the sender, created at `created_at`, with `serial`.
    fn signed(&self, name: &str, created_at: u64, serial: u64) -> String {
        let mut w = Encryptor::new([self.me.to_recipient()])
            .unwrap()
            .created_at(created_at)
            .serial(serial)
            .sender(self.sender.clone())
            .wrap_output(Vec::new())
            .unwrap();
        w.write_all(b"order 66\n").unwrap();
        fs::write(self.path(name), w.finish().unwrap()).unwrap();
        self.p(name)
    }

    /// `decrypt` with the ledger, to /dev/null; the exit code and stderr.
    fn decrypt(&self, file: &str, extra: &[&str]) -> (Option<i32>, String) {
        let out = self
            .kapsel()
            .args([
                "decrypt",
                "-i",
                &self.key,
                "--replay-db",
                &self.p("replay.db"),
            ])
            .args(extra)
            .arg(file)
            .stdout(Stdio::null())
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// `ledger ARGS --replay-db replay.db`: exit code, stdout, stderr.
    fn ledger(&self, args: &[&str]) -> (Option<i32>, String, String) {
        let out = self
            .kapsel()
            .arg("ledger")
            .args(args)
            .args(["--replay-db", &self.p("replay.db")])
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

#[test]
fn ledger_list_shows_entries_states_and_the_horizon() {
    let env = Env::new();
    let t = now();
    let a = env.signed("a.kap", t, 4_000_000_000_000_000_001);
    assert_eq!(env.decrypt(&a, &[]).0, Some(0));
    let (code, text, err) = env.ledger(&["list"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(text.contains("horizon: none"), "{text}");
    assert!(text.contains("accepted"), "{text}");
    assert!(text.contains("serial 4000000000000000001"), "{text}");
    assert!(text.contains("1 entry"), "{text}");

    let (code, json, err) = env.ledger(&["list", "--json"]);
    assert_eq!(code, Some(0), "{err}");
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let e = &v["entries"][0];
    assert_eq!(e["state"], "accepted");
    // 64-bit numbers are strings, exact beyond 2^53.
    assert_eq!(e["serial"], "4000000000000000001");
    assert_eq!(e["created_at"], t.to_string());
    assert!(e["id"].as_str().unwrap().starts_with("01"));
    assert!(v["horizon"].is_null());
}

#[test]
fn a_stopped_consumer_leaves_an_abandoned_entry_that_check_reports_and_forget_frees() {
    let env = Env::new();
    let big = {
        let mut w = Encryptor::new([env.me.to_recipient()])
            .unwrap()
            .sender(env.sender.clone())
            .serial(9)
            .wrap_output(Vec::new())
            .unwrap();
        w.write_all(&common::random_bytes(3 << 20)).unwrap();
        fs::write(env.path("big.kap"), w.finish().unwrap()).unwrap();
        env.p("big.kap")
    };
    // The consumer goes away after one byte: the entry stays (plaintext left).
    let status = Command::new("bash")
        .arg("-c")
        .arg("\"$0\" \"$@\" | head -c1 >/dev/null")
        .arg(env!("CARGO_BIN_EXE_kapsel"))
        .args([
            "decrypt",
            "-i",
            &env.key,
            "--replay-db",
            &env.p("replay.db"),
            &big,
        ])
        .env("KAPSEL_STATE_DIR", env.dir.path())
        .status()
        .unwrap();
    assert!(status.success());
    let (code, err) = env.decrypt(&big, &[]);
    assert_eq!(code, Some(6), "{err}");

    let (_, json, _) = env.ledger(&["list", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["entries"][0]["state"], "abandoned");
    let id = v["entries"][0]["id"].as_str().unwrap().to_string();
    let (code, text, _) = env.ledger(&["check"]);
    assert_eq!(code, Some(0));
    assert!(text.contains("abandoned"), "{text}");

    // Forgetting gives up the protection for that one message.
    let (code, _, err) = env.ledger(&["forget", &id]);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("can be accepted once more"), "{err}");
    assert_eq!(env.decrypt(&big, &[]).0, Some(0));
    assert_eq!(env.decrypt(&big, &[]).0, Some(6));
    // An unknown or malformed identifier is an error.
    assert_eq!(env.ledger(&["forget", "01ff"]).0, Some(1));
    assert_eq!(env.ledger(&["forget", "not hex"]).0, Some(2));
}

#[test]
fn a_horizon_a_year_ahead_is_found_by_check_and_repaired() {
    let env = Env::new();
    let t = now();
    let first = env.signed("1.kap", t - 60, 1);
    assert_eq!(env.decrypt(&first, &["--max-age", "1d"]).0, Some(0));
    // A horizon set a year ahead (by a clock that jumped, or an earlier
    // version of kapsel).
    {
        let conn = rusqlite::Connection::open(env.path("replay.db")).unwrap();
        conn.execute(
            "INSERT INTO meta (key, value) VALUES ('horizon', ?1)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            [(t + 365 * 86_400) as i64],
        )
        .unwrap();
    }
    let fresh = env.signed("2.kap", t, 2);
    let (code, err) = env.decrypt(&fresh, &["--max-age", "1d"]);
    assert_eq!(code, Some(6), "{err}");
    assert!(err.contains("horizon"), "{err}");

    let (code, text, _) = env.ledger(&["check"]);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("lies in the future"), "{text}");
    let (code, json, _) = env.ledger(&["check", "--json"]);
    assert_eq!(code, Some(1));
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["ok"], false);

    let (code, _, err) = env.ledger(&["repair", "--max-age", "1d"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("horizon lowered"), "{err}");
    assert_eq!(env.ledger(&["check"]).0, Some(0));
    assert_eq!(env.decrypt(&fresh, &["--max-age", "1d"]).0, Some(0));
    // The entry that was kept still refuses its replay.
    assert_eq!(env.decrypt(&first, &["--max-age", "1d"]).0, Some(6));
    // A second repair has nothing to do.
    let (code, _, err) = env.ledger(&["repair", "--max-age", "1d"]);
    assert_eq!(code, Some(0));
    assert!(err.contains("nothing to repair"), "{err}");
}

#[test]
fn pruning_in_a_ledger_keeps_the_horizon_behind_its_newest_entry() {
    let env = Env::new();
    let t = now();
    // Accepted with a one-day window, then pruned by the next decrypt.
    for (i, age) in [(1u64, 3600u64), (2, 60)] {
        let f = env.signed(&format!("{i}.kap"), t - age, i);
        assert_eq!(env.decrypt(&f, &["--max-age", "1d"]).0, Some(0));
    }
    let (_, json, _) = env.ledger(&["list", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let horizon: u64 = v["horizon"].as_str().unwrap().parse().unwrap();
    assert!(
        horizon <= t - 3600,
        "horizon {horizon} past the newest entry"
    );
}

#[test]
fn ledger_commands_never_create_a_ledger() {
    let env = Env::new();
    let (code, _, err) = env.ledger(&["list"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("no replay ledger at"), "{err}");
    assert!(!env.path("replay.db").exists());
}

#[test]
fn readable_ledger_and_serial_store_are_made_private_and_reported() {
    let env = Env::new();
    let a = env.signed("a.kap", now(), 1);
    assert_eq!(env.decrypt(&a, &[]).0, Some(0));
    let db = env.path("replay.db");
    fs::set_permissions(&db, fs::Permissions::from_mode(0o644)).unwrap();
    let (code, _, err) = env.ledger(&["list"]);
    assert_eq!(code, Some(0));
    assert!(
        err.contains("warning: replay ledger") && err.contains("mode 644"),
        "{err}"
    );
    assert_eq!(
        fs::metadata(&db).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // decrypt reports it too.
    fs::set_permissions(&db, fs::Permissions::from_mode(0o640)).unwrap();
    let b = env.signed("b.kap", now(), 2);
    let (code, err) = env.decrypt(&b, &[]);
    assert_eq!(code, Some(0));
    assert!(err.contains("mode 640"), "{err}");

    // The serial store of encrypt --sign-as.
    let (sender_key, _) = common::write_identity_file(&env.path("s.key"));
    fs::write(env.path("m.txt"), b"m").unwrap();
    let sign = |env: &Env| {
        env.kapsel()
            .args(["encrypt", "--sign-as", &sender_key, "-r"])
            .arg(env.me.to_recipient().to_string())
            .args(["--serial-db", &env.p("serials.db"), &env.p("m.txt")])
            .stdout(Stdio::null())
            .output()
            .unwrap()
    };
    assert!(sign(&env).status.success());
    let store = env.path("serials.db");
    fs::set_permissions(&store, fs::Permissions::from_mode(0o604)).unwrap();
    let out = sign(&env);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success());
    assert!(err.contains("warning: serial store"), "{err}");
    assert_eq!(
        fs::metadata(&store).unwrap().permissions().mode() & 0o777,
        0o600
    );
}
