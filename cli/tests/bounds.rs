//! Resource bounds on hostile input: crafted headers that declare gigabytes
//! or a million stanzas, endless armor lines and endless garbage payloads
//! are refused after reading a bounded amount, in bounded memory. Peak RSS is
//! measured with GNU time (`/usr/bin/time -f %M`, installed by scripts/test)
//! and compared against a generous bound; durations are printed, not asserted.

// Helpers outside `#[test]` functions unwrap too; clippy.toml allows it only
// inside them.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Instant;

use kapsel_codec::{Encryptor, Identity};

/// Peak RSS bound for any hostile input, in KiB.
const MAX_RSS_KIB: u64 = 48 * 1024;

struct Outcome {
    code: Option<i32>,
    peak_rss_kib: Option<u64>,
    stderr: String,
}

/// Runs `kapsel args` with `input` streamed to stdin (stopping quietly when
/// kapsel closes it), under GNU time when available.
fn run_measured(args: &[&str], input: impl FnOnce(&mut dyn Write) + Send + 'static) -> Outcome {
    let bin = env!("CARGO_BIN_EXE_kapsel");
    let gnu_time = std::path::Path::new("/usr/bin/time").exists();
    let rss_file = tempfile::NamedTempFile::new().unwrap();
    let mut cmd = if gnu_time {
        let mut c = Command::new("/usr/bin/time");
        c.args(["-f", "%M", "-o", rss_file.path().to_str().unwrap(), bin]);
        c
    } else {
        Command::new(bin)
    };
    let started = Instant::now();
    let mut child = cmd
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let feeder = std::thread::spawn(move || input(&mut stdin));
    let out = child.wait_with_output().unwrap();
    let _ = feeder.join();
    let peak = std::fs::read_to_string(rss_file.path())
        .ok()
        .and_then(|s| s.trim().lines().last()?.trim().parse().ok());
    eprintln!(
        "kapsel {args:?}: exit {:?}, {:?}, peak RSS {:?} KiB",
        out.status.code(),
        started.elapsed(),
        peak
    );
    if !gnu_time {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI needs /usr/bin/time (GNU time)"
        );
        eprintln!("note: /usr/bin/time missing; peak RSS not measured");
    }
    Outcome {
        code: out.status.code(),
        peak_rss_kib: peak,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn assert_bounded(o: &Outcome, code: i32) {
    assert_eq!(o.code, Some(code), "{}", o.stderr);
    assert!(o.stderr.starts_with("kapsel: error: "), "{}", o.stderr);
    if let Some(kib) = o.peak_rss_kib {
        assert!(kib < MAX_RSS_KIB, "peak RSS {kib} KiB");
    }
}

/// Writes up to `total` bytes of `pattern`, stopping when the reader is gone.
fn endless(
    prefix: Vec<u8>,
    pattern: u8,
    total: usize,
) -> impl FnOnce(&mut dyn Write) + Send + 'static {
    move |w: &mut dyn Write| {
        if w.write_all(&prefix).is_err() {
            return;
        }
        let block = vec![pattern; 1 << 20];
        let mut sent = 0;
        while sent < total {
            if w.write_all(&block).is_err() {
                return;
            }
            sent += block.len();
        }
    }
}

fn identity_file(dir: &std::path::Path) -> (String, Identity) {
    common::write_identity_file(&dir.join("id.key"))
}

fn prefix(header_len: u32) -> Vec<u8> {
    let mut p = kapsel_format::MAGIC.to_vec();
    p.extend_from_slice(&[1, 0, 1, 14]);
    p.extend_from_slice(&header_len.to_be_bytes());
    p
}

#[test]
fn header_declaring_gigabytes_is_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let (key, _) = identity_file(dir.path());
    let o = run_measured(
        &["decrypt", "-i", &key],
        endless(prefix(u32::MAX), 0, 1 << 30),
    );
    assert_bounded(&o, 3);
    assert!(o.stderr.contains("header length"), "{}", o.stderr);
}

#[test]
fn a_million_stanzas_are_refused_at_the_count() {
    let dir = tempfile::tempdir().unwrap();
    let (key, _) = identity_file(dir.path());
    // Largest allowed header, claiming 65535 stanzas, then a flood of bytes.
    let mut p = prefix(kapsel_format::MAX_HEADER_LEN);
    p.extend_from_slice(&1_800_000_000u64.to_be_bytes());
    p.extend_from_slice(&0u64.to_be_bytes());
    p.push(0);
    p.extend_from_slice(&u16::MAX.to_be_bytes());
    let o = run_measured(&["decrypt", "-i", &key], endless(p, 0x01, 64 << 20));
    assert_bounded(&o, 3);
    assert!(o.stderr.contains("recipient count"), "{}", o.stderr);
}

#[test]
fn an_endless_armor_line_is_refused_after_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let (key, _) = identity_file(dir.path());
    let begin = b"-----BEGIN KAPSEL ENCRYPTED FILE-----\n".to_vec();
    let o = run_measured(&["decrypt", "-i", &key], endless(begin, b'A', 1 << 30));
    assert_bounded(&o, 3);
    assert!(o.stderr.contains("armor"), "{}", o.stderr);
}

#[test]
fn an_endless_garbage_payload_stops_at_the_first_chunk() {
    let dir = tempfile::tempdir().unwrap();
    let (key, id) = identity_file(dir.path());
    let mut w = Encryptor::new([id.to_recipient()])
        .unwrap()
        .wrap_output(Vec::new())
        .unwrap();
    w.write_all(b"x").unwrap();
    let file = w.finish().unwrap();
    // A genuine header, salt and commitment, then a gigabyte of garbage.
    let header_len = kapsel_format::read::header(&file)
        .map(|(rest, _)| file.len() - rest.len())
        .unwrap();
    let start = file[..header_len + 56].to_vec();
    let o = run_measured(&["decrypt", "-i", &key], endless(start, 0x33, 1 << 30));
    assert_bounded(&o, 5);
}
