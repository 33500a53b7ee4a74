//! `decrypt` of several inputs in one run: each NAME.kap to NAME, beside
//! its input or in `-o DIR`; a damaged file fails alone (the others are
//! still written, the exit code is its failure's); names are planned, and
//! refused, before anything is decrypted.

// Helpers outside `#[test]` functions unwrap too; clippy.toml allows it only
// inside them.
#![allow(clippy::unwrap_used)]

mod common;

use common::Env;

/// Encrypts `names` (each with its own content) to a new identity; returns
/// the identity file.
fn setup(env: &Env, names: &[&str]) -> String {
    let (key, id) = env.identity("me.key");
    let r = id.to_recipient().to_string();
    for n in names {
        let src = env.write(n, format!("content of {n}").as_bytes());
        let (code, _, err) = env.run(&["encrypt", "-r", &r, "-o", &format!("{src}.kap"), &src]);
        assert_eq!(code, Some(0), "{err}");
        std::fs::remove_file(&src).unwrap();
    }
    key
}

#[test]
fn several_inputs_land_beside_themselves_or_in_a_directory() {
    let env = Env::new();
    let key = setup(&env, &["a", "b", "c"]);
    let ins: Vec<String> = ["a", "b", "c"]
        .iter()
        .map(|n| env.p(&format!("{n}.kap")))
        .collect();
    let mut args = vec!["decrypt", "-i", key.as_str()];
    args.extend(ins.iter().map(String::as_str));
    let (code, _, err) = env.run(&args);
    assert_eq!(code, Some(0), "{err}");
    for n in ["a", "b", "c"] {
        assert_eq!(
            std::fs::read(env.path(n)).unwrap(),
            format!("content of {n}").as_bytes()
        );
    }
    std::fs::create_dir(env.path("out")).unwrap();
    let out = env.p("out");
    let mut args = vec!["decrypt", "-i", key.as_str(), "-o", out.as_str()];
    args.extend(ins.iter().map(String::as_str));
    let (code, _, err) = env.run(&args);
    assert_eq!(code, Some(0), "{err}");
    for n in ["a", "b", "c"] {
        assert_eq!(
            std::fs::read(env.path("out").join(n)).unwrap(),
            format!("content of {n}").as_bytes()
        );
    }
}

#[test]
fn a_damaged_input_fails_alone() {
    let env = Env::new();
    let key = setup(&env, &["a", "b", "c"]);
    let mut bytes = std::fs::read(env.path("b.kap")).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(env.path("b.kap"), bytes).unwrap();
    let (a, b, c) = (env.p("a.kap"), env.p("b.kap"), env.p("c.kap"));
    let (code, _, err) = env.run(&["decrypt", "-i", &key, &a, &b, &c]);
    assert_eq!(code, Some(5), "{err}");
    assert!(
        err.contains(&format!("{b}: ")),
        "the failing file is named: {err}"
    );
    assert!(err.contains("1 of 3 files did not decrypt"), "{err}");
    assert!(env.path("a").exists() && env.path("c").exists());
    assert!(
        !env.path("b").exists(),
        "nothing of the damaged file is kept"
    );
}

#[test]
fn names_are_checked_before_anything_is_decrypted() {
    let env = Env::new();
    let key = setup(&env, &["a", "b"]);
    std::fs::copy(env.path("b.kap"), env.path("b.enc")).unwrap();
    let (a, benc) = (env.p("a.kap"), env.p("b.enc"));
    let (code, _, err) = env.run(&["decrypt", "-i", &key, &a, &benc]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("has none"), "{err}");
    assert!(
        !env.path("a").exists(),
        "refused whole, before decrypting a.kap"
    );

    let file = env.write("not-a-dir", b"");
    let b = env.p("b.kap");
    let (code, _, err) = env.run(&["decrypt", "-i", &key, "-o", &file, &a, &b]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("names a directory"), "{err}");

    std::fs::create_dir(env.path("d")).unwrap();
    std::fs::copy(env.path("a.kap"), env.path("d/a.kap")).unwrap();
    let (out, da) = (env.p("out"), env.p("d/a.kap"));
    std::fs::create_dir(&out).unwrap();
    let (code, _, err) = env.run(&["decrypt", "-i", &key, "-o", &out, &a, &da]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("two inputs would both write"), "{err}");

    let (code, _, err) = env.run(&["decrypt", "-i", &key, &a, "-"]);
    assert_eq!(code, Some(2), "{err}");
    let (code, _, err) = env.run(&["decrypt", "-i", &key, "--offset", "1", &a, &b]);
    assert_eq!(code, Some(2), "{err}");
}

#[test]
fn a_passphrase_is_read_once_for_several_files() {
    let env = Env::new();
    let pw = env.write("pw", b"correct horse battery staple\n");
    for n in ["a", "b"] {
        let src = env.write(n, n.as_bytes());
        let out = format!("{src}.kap");
        let (code, _, err) =
            env.run(&["encrypt", "-p", "--passphrase-file", &pw, "-o", &out, &src]);
        if err.contains("not available in the FIPS build") {
            eprintln!("skipped: the FIPS build has no passphrase files");
            return;
        }
        assert_eq!(code, Some(0), "{err}");
        std::fs::remove_file(&src).unwrap();
    }
    // The descriptor is read once (a second read finds its end): both
    // files open with what it gave.
    let line = format!(
        "{} decrypt --passphrase-fd 3 {} {} 3<{}",
        env!("CARGO_BIN_EXE_kapsel"),
        env.p("a.kap"),
        env.p("b.kap"),
        pw
    );
    let out = std::process::Command::new("sh")
        .args(["-c", &line])
        .env("KAPSEL_STATE_DIR", env.path("state"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(std::fs::read(env.path("a")).unwrap(), b"a");
    assert_eq!(std::fs::read(env.path("b")).unwrap(), b"b");
}
