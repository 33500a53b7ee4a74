//! What `-o` writes to: a FIFO, /dev/null and /dev/stdout in place, a
//! symbolic link's target, an existing file with its mode, a read-only file
//! refused; and that `decrypt -o` killed by SIGKILL or SIGINT at arbitrary
//! moments leaves no file at all.

// Helpers outside `#[test]` functions unwrap too; clippy.toml allows it only
// inside them.
#![allow(clippy::unwrap_used)]

mod common;

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::{random_bytes, Env};

/// An identity and `plain` encrypted to it: (identity path, ciphertext path).
fn encrypted(env: &Env, plain: &[u8]) -> (String, String) {
    let (key, id) = env.identity("me.key");
    let input = env.write("plain", plain);
    let kap = env.p("in.kap");
    let (code, _, err) = env.run(&[
        "encrypt",
        "-r",
        &id.to_recipient().to_string(),
        "-o",
        &kap,
        &input,
    ]);
    assert_eq!(code, Some(0), "{err}");
    (key, kap)
}

fn names_in(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn is_root() -> bool {
    fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

#[test]
fn output_to_a_fifo_is_written_in_place() {
    let env = Env::new();
    let (key, kap) = encrypted(&env, b"through a pipe");
    let fifo = env.p("fifo");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let reader_path = fifo.clone();
    let reader = thread::spawn(move || {
        let mut got = Vec::new();
        fs::File::open(reader_path)
            .unwrap()
            .read_to_end(&mut got)
            .unwrap();
        got
    });
    let (code, _, err) = env.run(&["decrypt", "-i", &key, "-o", &fifo, &kap]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(reader.join().unwrap(), b"through a pipe");
    assert!(fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo());
    assert_eq!(
        names_in(&env.path("")),
        ["fifo", "in.kap", "me.key", "plain"]
    );
}

#[test]
fn output_to_dev_stdout_goes_to_standard_output() {
    let env = Env::new();
    let (key, kap) = encrypted(&env, b"to stdout");
    let (code, out, err) = env.run(&["decrypt", "-i", &key, "-o", "/dev/stdout", &kap]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out, b"to stdout");
    // Standard output redirected to a file: that file gets it.
    let file = fs::File::create(env.path("redirected")).unwrap();
    let status = env
        .cmd()
        .args(["decrypt", "-i", &key, "-o", "/dev/stdout", &kap])
        .stdout(file)
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(fs::read(env.path("redirected")).unwrap(), b"to stdout");
}

/// `-o /dev/null` as root, where a replacement would turn the device node
/// into a regular file: run inside a private mount namespace with a tmpfs
/// over /dev holding its own null node, so the real one is never touched.
#[test]
fn output_to_dev_null_leaves_the_device_node() {
    let env = Env::new();
    let (key, kap) = encrypted(&env, &random_bytes(100_000));
    if !is_root() {
        // A normal user cannot replace /dev/null: writing in place is all
        // that can happen, and must succeed.
        let (code, _, err) = env.run(&["decrypt", "-i", &key, "-o", "/dev/null", &kap]);
        assert_eq!(code, Some(0), "{err}");
        return;
    }
    let script = format!(
        "mount -t tmpfs kapsel-test /dev && mknod -m 666 /dev/null c 1 3 && \
         {kapsel} decrypt -i {key} -o /dev/null {kap} && stat -c '%F %t:%T' /dev/null && ls -a /dev",
        kapsel = env!("CARGO_BIN_EXE_kapsel"),
    );
    let out = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", &script])
        .env("KAPSEL_STATE_DIR", env.path("state"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() && stderr.contains("unshare") {
        eprintln!("skipping: cannot make a private mount namespace here: {stderr}");
        return;
    }
    assert!(out.status.success(), "{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let mut lines = stdout.lines();
    assert_eq!(lines.next(), Some("character special file 1:3"), "{stdout}");
    let listing: Vec<&str> = lines.collect();
    assert_eq!(
        listing,
        [".", "..", "null"],
        "nothing else was made in /dev"
    );
}

#[test]
fn output_through_a_symlink_replaces_the_file_it_points_to() {
    let env = Env::new();
    let (key, kap) = encrypted(&env, b"new contents");
    fs::create_dir(env.path("real")).unwrap();
    fs::write(env.path("real/file"), b"old").unwrap();
    std::os::unix::fs::symlink("real/file", env.path("link")).unwrap();
    let (code, _, err) = env.run(&["decrypt", "-i", &key, "-o", &env.p("link"), &kap]);
    assert_eq!(code, Some(0), "{err}");
    assert!(fs::symlink_metadata(env.path("link"))
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(fs::read(env.path("real/file")).unwrap(), b"new contents");
    assert_eq!(names_in(&env.path("real")), ["file"]);
    // A dangling link: the file it names is created.
    std::os::unix::fs::symlink("real/new", env.path("dangling")).unwrap();
    let (code, _, err) = env.run(&["decrypt", "-i", &key, "-o", &env.p("dangling"), &kap]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(fs::read(env.path("real/new")).unwrap(), b"new contents");
}

#[test]
fn an_existing_file_keeps_its_mode_and_a_new_one_gets_the_umask() {
    let env = Env::new();
    let (key, kap) = encrypted(&env, b"replaced");
    for mode in [0o644, 0o640, 0o600] {
        let target = env.path("existing");
        fs::write(&target, b"old").unwrap();
        fs::set_permissions(&target, fs::Permissions::from_mode(mode)).unwrap();
        let (code, _, err) = env.run(&["decrypt", "-i", &key, "-o", &env.p("existing"), &kap]);
        assert_eq!(code, Some(0), "{err}");
        assert_eq!(fs::read(&target).unwrap(), b"replaced");
        assert_eq!(
            fs::metadata(&target).unwrap().permissions().mode() & 0o7777,
            mode
        );
    }
    // New files: 0666 less the umask (0644 under 022, 0640 under 027), for
    // decrypt and encrypt alike.
    for (umask, want) in [("022", 0o644), ("027", 0o640)] {
        let plain = env.p(&format!("new-{umask}"));
        let kap_out = env.p(&format!("new-{umask}.kap"));
        let script = format!(
            "umask {umask} && {k} decrypt -i {key} -o {plain} {kap} && {k} encrypt -r $({k} pubkey {key}) -o {kap_out} {plain}",
            k = env!("CARGO_BIN_EXE_kapsel"),
        );
        let status = Command::new("sh")
            .args(["-c", &script])
            .env("KAPSEL_STATE_DIR", env.path("state"))
            .status()
            .unwrap();
        assert!(status.success());
        for f in [&plain, &kap_out] {
            assert_eq!(
                fs::metadata(f).unwrap().permissions().mode() & 0o7777,
                want,
                "{f} under umask {umask}"
            );
        }
    }
}

#[test]
fn a_read_only_target_is_refused_as_cp_refuses_it() {
    let env = Env::new();
    let (key, kap) = encrypted(&env, b"must not land");
    let target = env.path("readonly");
    fs::write(&target, b"keep me").unwrap();
    fs::set_permissions(&target, fs::Permissions::from_mode(0o444)).unwrap();
    // Root may write any file, and cp as root replaces this one too: the
    // refusal is tested as an ordinary user (nobody), for cp and kapsel.
    let as_user = |c: &mut Command| {
        if is_root() {
            use std::os::unix::process::CommandExt;
            c.uid(65534).gid(65534);
        }
    };
    if is_root() {
        for p in [env.path(""), env.path("state")] {
            fs::create_dir_all(&p).unwrap();
            fs::set_permissions(&p, fs::Permissions::from_mode(0o777)).unwrap();
        }
        std::os::unix::fs::chown(&key, Some(65534), Some(65534)).unwrap();
        fs::set_permissions(&kap, fs::Permissions::from_mode(0o644)).unwrap();
    }
    let mut cp = Command::new("cp");
    cp.arg(&kap).arg(&target).stderr(Stdio::null());
    as_user(&mut cp);
    assert!(!cp.status().unwrap().success(), "cp refuses it");
    let mut kapsel = env.cmd();
    kapsel
        .args(["decrypt", "-i", &key, "-o"])
        .arg(&target)
        .arg(&kap);
    as_user(&mut kapsel);
    let out = kapsel.output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("read-only"), "{err}");
    assert_eq!(fs::read(&target).unwrap(), b"keep me");
    assert_eq!(
        fs::metadata(&target).unwrap().permissions().mode() & 0o7777,
        0o444
    );
    assert!(!names_in(&env.path(""))
        .iter()
        .any(|n| n.contains("partial")));
}

/// Deterministic "random" moments in `0..bound`.
fn moments(count: usize, bound: u64) -> Vec<u64> {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    (0..count)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % bound
        })
        .collect()
}

/// Runs `decrypt -o DIR/out` on a pipe fed `kap` slowly, and sends
/// `signal` after `at_ms` milliseconds (or lets it finish); returns whether
/// it finished.
fn decrypt_and_signal(
    env: &Env,
    key: &str,
    kap: &[u8],
    dir: &std::path::Path,
    signal: &str,
    at_ms: u64,
    named: bool,
) -> bool {
    let mut cmd = env.cmd();
    cmd.args(["decrypt", "-i", key, "-o"])
        .arg(dir.join("out"))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if named {
        cmd.env("KAPSEL_TEST_NAMED_TEMPFILE", "1");
    }
    let mut child = cmd.spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let data = kap.to_vec();
    // 64 KiB pieces with pauses: the decrypt writes chunks as they verify.
    let feeder = thread::spawn(move || {
        for piece in data.chunks(64 << 10) {
            if stdin.write_all(piece).is_err() {
                return;
            }
            thread::sleep(Duration::from_millis(2));
        }
    });
    thread::sleep(Duration::from_millis(at_ms));
    let pid = child.id().to_string();
    let _ = Command::new("kill").args([signal, &pid]).status();
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "decrypt hangs");
        thread::sleep(Duration::from_millis(5));
    };
    let _ = feeder.join();
    if status.success() {
        return true;
    }
    let want = if signal == "-KILL" { 9 } else { 2 };
    assert_eq!(
        status.signal(),
        Some(want),
        "ended by the signal: {status:?}"
    );
    false
}

#[test]
fn sigkill_and_sigint_during_decrypt_o_leave_no_file() {
    let env = Env::new();
    let plain = random_bytes(3 << 20);
    let (key, kap) = encrypted(&env, &plain);
    let kap = fs::read(kap).unwrap();
    let dir = env.path("out");
    fs::create_dir(&dir).unwrap();
    let mut finished = 0;
    for (round, at) in moments(12, 150).into_iter().enumerate() {
        let signal = if round % 2 == 0 { "-KILL" } else { "-INT" };
        if decrypt_and_signal(&env, &key, &kap, &dir, signal, at, false) {
            // Killed too late: the whole, verified plaintext and nothing else.
            assert_eq!(names_in(&dir), ["out"]);
            assert_eq!(fs::read(dir.join("out")).unwrap(), plain);
            fs::remove_file(dir.join("out")).unwrap();
            finished += 1;
        } else {
            assert!(
                names_in(&dir).is_empty(),
                "round {round} ({signal} at {at} ms): {:?}",
                names_in(&dir)
            );
        }
    }
    assert!(finished < 12, "no run was interrupted");
}

/// Where the file system has no O_TMPFILE (forced here by a test-only
/// variable), SIGINT still removes the named temporary file, and the one a
/// SIGKILL leaves is removed by the next kapsel writing to the directory.
#[test]
fn without_o_tmpfile_sigint_removes_the_temporary_file_and_stale_ones_go() {
    let env = Env::new();
    let plain = random_bytes(3 << 20);
    let (key, kap) = encrypted(&env, &plain);
    let kap = fs::read(kap).unwrap();
    let dir = env.path("out");
    fs::create_dir(&dir).unwrap();
    for at in [20, 60, 100] {
        assert!(!decrypt_and_signal(
            &env, &key, &kap, &dir, "-INT", at, true
        ));
        assert!(names_in(&dir).is_empty(), "{:?}", names_in(&dir));
    }
    assert!(!decrypt_and_signal(
        &env, &key, &kap, &dir, "-KILL", 60, true
    ));
    let left = names_in(&dir);
    assert_eq!(left.len(), 1, "SIGKILL leaves the named file: {left:?}");
    assert!(left[0].ends_with(".kapsel-partial"));
    // Stale once its process is gone and nothing touched it for a minute.
    let old = std::time::SystemTime::now() - Duration::from_secs(120);
    fs::File::options()
        .write(true)
        .open(dir.join(&left[0]))
        .unwrap()
        .set_modified(old)
        .unwrap();
    assert!(decrypt_and_signal(&env, &key, &kap, &dir, "-0", 0, true));
    assert_eq!(names_in(&dir), ["out"]);
    assert_eq!(fs::read(dir.join("out")).unwrap(), plain);
}

#[test]
fn output_equal_to_the_input_is_safe() {
    let env = Env::new();
    let (key, id) = env.identity("me.key");
    let (other, _) = env.identity("other.key");
    let file = env.write("file", b"in place");
    let r = id.to_recipient().to_string();
    let (code, _, err) = env.run(&["encrypt", "-r", &r, "-o", &file, &file]);
    assert_eq!(code, Some(0), "{err}");
    let encrypted = fs::read(&file).unwrap();
    assert_ne!(encrypted, b"in place");
    // A failed decrypt leaves the input as it was.
    let (code, _, _) = env.run(&["decrypt", "-i", &other, "-o", &file, &file]);
    assert_eq!(code, Some(4));
    assert_eq!(fs::read(&file).unwrap(), encrypted);
    let (code, _, err) = env.run(&["decrypt", "-i", &key, "-o", &file, &file]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(fs::read(&file).unwrap(), b"in place");
    assert_eq!(names_in(&env.path("")), ["file", "me.key", "other.key"]);
}
