//! The receiver's guarantee through the real binary, tried as an attacker
//! would: a co-recipient's forged stream under a genuine header, an
//! outsider's prefix and a stalled prefix against the ledger, a ranged
//! replay, a captured live message replayed offline, and the order of `-i`
//! identities. SPEC.md sections 6.5, 12 and 13.4.

// Helpers outside `#[test]` functions unwrap too; clippy.toml allows it only
// inside them.
#![allow(clippy::unwrap_used)]

mod common;

use common::{now, Env};

use std::io::Write;
use std::process::Stdio;
use std::time::Duration;

use kapsel_codec::hazmat::hpke::{self, Mode};
use kapsel_codec::hazmat::payload::{ChunkCipher, PayloadWriter};
use kapsel_codec::hazmat::segment::{SEGMENT_CHUNK_BYTES, SEGMENT_PLAINTEXT};
use kapsel_codec::{hazmat::HPKE_INFO, Encryptor, Identity};
use kapsel_format::{read, Stanza};

fn signed(sender: &Identity, to: &[&Identity], serial: u64, plaintext: &[u8]) -> Vec<u8> {
    let mut w = Encryptor::new(to.iter().map(|i| i.to_recipient()))
        .unwrap()
        .sender(sender.clone())
        .created_at(now())
        .serial(serial)
        .wrap_output(Vec::new())
        .unwrap();
    w.write_all(plaintext).unwrap();
    w.finish().unwrap()
}

/// What a co-recipient can make: the genuine header byte for byte, a new
/// salt, a valid commitment, its own chunks, and junk where the segment
/// signatures go.
fn co_recipient_forgery(insider: &Identity, file: &[u8], plaintext: &[u8]) -> Vec<u8> {
    let (_, header) = read::header(file).unwrap();
    let header_bytes = &file[..header.encoded_len()];
    let key = header
        .stanzas
        .iter()
        .find_map(|s| {
            let Stanza::P256Hpke {
                enc, wrapped_key, ..
            } = s
            else {
                return None;
            };
            let shared = hpke::decap(&enc.0, insider.secret_key(), None).ok()?;
            let mut ctx = hpke::Context::new(Mode::Base, &shared, HPKE_INFO);
            let mut key = [0u8; 32];
            ctx.open_into(b"", wrapped_key, &mut key).ok()?;
            Some(key)
        })
        .expect("insider is a recipient");
    let (cipher, prefix) = ChunkCipher::for_encryption(&key, header_bytes);
    let mut w = PayloadWriter::from_parts(Vec::new(), cipher);
    w.write_all(plaintext).unwrap();
    let chunks = w.finish().unwrap();
    let mut out = [header_bytes, &prefix[..]].concat();
    for seg in chunks.chunks(SEGMENT_CHUNK_BYTES) {
        out.extend_from_slice(seg);
        out.extend_from_slice(&[0x5a; 64]);
    }
    out
}

#[test]
fn a_co_recipients_forged_stream_releases_nothing_and_burns_nothing() {
    let env = Env::new();
    let (a, a_id) = env.identity("alice.key");
    let (_, b_id) = env.identity("bob.key");
    let (_, s_id) = env.identity("sam.key");
    let genuine = common::random_bytes(3 * SEGMENT_PLAINTEXT + 999);
    let file = signed(&s_id, &[&a_id, &b_id], 7, &genuine);
    let forged = co_recipient_forgery(&b_id, &file, &vec![b'!'; genuine.len()]);
    let forged = env.write("forged.kap", &forged);
    let file = env.write("genuine.kap", &file);
    let sam = s_id.to_recipient().to_string();
    let ledger = env.p("replay.db");
    let policy = [
        "--expect-sender",
        sam.as_str(),
        "--max-age",
        "1d",
        "--replay-db",
        ledger.as_str(),
    ];
    let (code, out, err) = env.run(&[&["decrypt", "-i", &a][..], &policy, &[&forged]].concat());
    assert_eq!(code, Some(5), "{err}");
    assert!(
        out.is_empty(),
        "{} forged bytes reached the consumer",
        out.len()
    );
    assert!(err.contains("sender verification failed"), "{err}");
    // The genuine file arrives afterwards and is accepted, once.
    let (code, out, err) = env.run(&[&["decrypt", "-i", &a][..], &policy, &[&file]].concat());
    assert_eq!(code, Some(0), "{err}");
    assert!(out == genuine);
    let (code, out, _) = env.run(&[&["decrypt", "-i", &a][..], &policy, &[&file]].concat());
    assert_eq!((code, out.len()), (Some(6), 0));
}

#[test]
fn an_outsiders_prefix_cannot_occupy_the_ledger() {
    let env = Env::new();
    let (a, a_id) = env.identity("alice.key");
    let (_, s_id) = env.identity("sam.key");
    let genuine = common::random_bytes(2 * SEGMENT_PLAINTEXT + 5);
    let file = signed(&s_id, &[&a_id], 9, &genuine);
    let ledger = env.p("replay.db");
    // The first few hundred bytes, and most of the first segment.
    for (name, cut) in [("p300", 300), ("p_most", SEGMENT_PLAINTEXT - 5)] {
        let prefix = env.write(name, &file[..cut]);
        for out in [None, Some(env.p("out.bin"))] {
            let mut args = vec!["decrypt", "-i", &a, "--replay-db", &ledger];
            if let Some(o) = &out {
                args.extend(["-o", o.as_str()]);
            }
            args.push(&prefix);
            let (code, stdout, err) = env.run(&args);
            assert_eq!(code, Some(5), "{name} {out:?}: {err}");
            assert!(stdout.is_empty());
        }
    }
    let genuine_path = env.write("genuine.kap", &file);
    let (code, out, err) = env.run(&["decrypt", "-i", &a, "--replay-db", &ledger, &genuine_path]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out == genuine);
}

#[test]
fn a_stalled_prefix_holds_nothing_before_its_first_segment_verified() {
    let env = Env::new();
    let (a, a_id) = env.identity("alice.key");
    let (_, s_id) = env.identity("sam.key");
    let genuine = common::random_bytes(2 * SEGMENT_PLAINTEXT + 5);
    let file = signed(&s_id, &[&a_id], 11, &genuine);
    let ledger = env.p("replay.db");
    let out = env.p("stalled.out");
    let mut stalled = env
        .cmd()
        .args(["decrypt", "-i", &a, "--replay-db", &ledger, "-o", &out])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = stalled.stdin.take().unwrap();
    stdin.write_all(&file[..SEGMENT_PLAINTEXT / 2]).unwrap();
    stdin.flush().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    // Meanwhile the genuine copy arrives: it is neither "already accepted"
    // nor pending, since the stalled one verified nothing yet.
    let genuine_path = env.write("genuine.kap", &file);
    let (code, plain, err) = env.run(&["decrypt", "-i", &a, "--replay-db", &ledger, &genuine_path]);
    assert_eq!(code, Some(0), "{err}");
    assert!(plain == genuine);
    drop(stdin);
    let status = stalled.wait().unwrap();
    assert_eq!(status.code(), Some(5));
    assert!(!env.path("stalled.out").exists());
}

#[test]
fn a_ranged_replay_with_a_damaged_late_chunk_releases_nothing_twice() {
    let env = Env::new();
    let (a, a_id) = env.identity("alice.key");
    let plaintext = common::random_bytes(4 * SEGMENT_PLAINTEXT);
    for signed_file in [false, true] {
        let mut enc = Encryptor::new([a_id.to_recipient()]).unwrap();
        if signed_file {
            enc = enc.sender(Identity::generate());
        }
        let mut w = enc.wrap_output(Vec::new()).unwrap();
        w.write_all(&plaintext).unwrap();
        let mut file = w.finish().unwrap();
        // Damage inside the third MiB of plaintext.
        let at = file.len() / 4 * 3;
        file[at] ^= 1;
        let path = env.write("damaged.kap", &file);
        let ledger = env.p(&format!("replay-{signed_file}.db"));
        let args = [
            "decrypt",
            "-i",
            &a,
            "--replay-db",
            &ledger,
            "--offset",
            "0",
            "--length",
            "4000000",
            &path,
        ];
        let (code, first, err) = env.run(&args);
        assert_eq!(code, Some(5), "{err}");
        assert!(!first.is_empty() && first[..] == plaintext[..first.len()]);
        // The bytes went out, so the reservation stays: a replay gets nothing.
        let (code, second, err) = env.run(&args);
        assert_eq!((code, second.len()), (Some(6), 0), "{err}");
    }
}

#[test]
fn a_live_message_does_not_replay_into_an_offline_decrypt() {
    let env = Env::new();
    let (a, a_id) = env.identity("alice.key");
    let _ = a_id;
    let recipient = {
        let out = env.cmd().args(["pubkey", &a]).output().unwrap();
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    let challenge = "11".repeat(32);
    let msg = env.p("live.kap");
    let input = env.write("in.txt", b"live message");
    let (code, _, err) = env.run(&[
        "encrypt",
        "-r",
        &recipient,
        "--challenge",
        &challenge,
        "-o",
        &msg,
        &input,
    ]);
    assert_eq!(code, Some(0), "{err}");
    let ledger = env.p("replay.db");
    let (code, out, err) = env.run(&["decrypt", "-i", &a, "--replay-db", &ledger, &msg]);
    assert_eq!((code, out.len()), (Some(6), 0), "{err}");
    assert!(err.contains("live-exchange challenge"), "{err}");
    let (code, out, err) = env.run(&["decrypt", "-i", &a, "--expect-challenge", &challenge, &msg]);
    assert_eq!(
        (code, out.as_slice()),
        (Some(0), &b"live message"[..]),
        "{err}"
    );
}

#[test]
fn the_order_of_identities_does_not_change_the_outcome() {
    let env = Env::new();
    let (a, a_id) = env.identity("alice.key");
    let (b, b_id) = env.identity("bob.key");
    // A sender that wraps a wrong key to Alice's stanza and the right one to
    // Bob's, then encrypts under the right one.
    let file_key = [3u8; 32];
    let stanza = |to: &Identity, key: &[u8; 32]| {
        let eph = kapsel_codec::hazmat::ec::SecretKey::generate();
        let e = hpke::encap(to.to_recipient().public_key(), None, &eph);
        let mut ctx = hpke::Context::new(Mode::Base, &e.shared_secret, HPKE_INFO);
        Stanza::P256Hpke {
            hint: to.to_recipient().stanza_hint(&e.enc),
            enc: kapsel_format::P256Point(e.enc),
            wrapped_key: ctx.seal(b"", key).unwrap().try_into().unwrap(),
        }
    };
    let header = kapsel_format::Header {
        suite: kapsel_format::Suite::P256HpkeCobblestone256,
        created_at: now(),
        serial: 1,
        sender: kapsel_format::Sender::Anonymous,
        stanzas: vec![stanza(&a_id, &[4u8; 32]), stanza(&b_id, &file_key)],
        extensions: vec![],
    };
    let header = kapsel_format::write::header_to_vec(&header).unwrap();
    let mut w = PayloadWriter::new(Vec::new(), &file_key, &header).unwrap();
    w.write_all(b"same for everyone").unwrap();
    let file = env.write("f.kap", &[header, w.finish().unwrap()].concat());
    for ids in [[&a, &b], [&b, &a]] {
        let (code, out, err) = env.run(&["decrypt", "-i", ids[0], "-i", ids[1], &file]);
        assert_eq!(
            (code, out.as_slice()),
            (Some(0), &b"same for everyone"[..]),
            "{err}"
        );
    }
    let (code, _, _) = env.run(&["decrypt", "-i", &a, &file]);
    assert_eq!(code, Some(5));
}

#[test]
fn ranges_on_impossible_and_exact_lengths() {
    let env = Env::new();
    let (a, a_id) = env.identity("alice.key");
    let (_, s_id) = env.identity("sam.key");
    let plaintext = common::random_bytes(2 * SEGMENT_PLAINTEXT);
    let file = signed(&s_id, &[&a_id], 3, &plaintext);
    let header_len = read::header(&file).unwrap().1.encoded_len();
    // Cut at the end of segment 1: no valid file has this length, so even
    // a range inside segment 0 is refused before anything is read.
    let cut = header_len + 56 + 2 * kapsel_codec::hazmat::segment::FULL_SEGMENT_LEN;
    let impossible = env.write("impossible.kap", &file[..cut]);
    let (code, out, err) = env.run(&[
        "decrypt",
        "-i",
        &a,
        "--offset",
        "0",
        "--length",
        "10",
        &impossible,
    ]);
    assert_eq!((code, out.len()), (Some(5), 0), "{err}");
    // A range ending exactly at the plaintext length needs no final segment
    // (here the segment of the empty final chunk, which is damaged).
    let mut damaged_final = file.clone();
    let n = damaged_final.len();
    damaged_final[n - 1] ^= 1;
    let p = env.write("damaged-final.kap", &damaged_final);
    let len = plaintext.len().to_string();
    let start = (plaintext.len() - 100).to_string();
    let (code, out, err) = env.run(&[
        "decrypt", "-i", &a, "--offset", &start, "--length", "100", &p,
    ]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out == plaintext[plaintext.len() - 100..]);
    // One byte more, and the end must be known: the final segment fails.
    let (code, out, _) = env.run(&[
        "decrypt", "-i", &a, "--offset", &start, "--length", "101", &p,
    ]);
    assert_eq!((code, out.len()), (Some(5), 0));
    let (code, out, _) = env.run(&["decrypt", "-i", &a, "--offset", &len, &p]);
    assert_eq!((code, out.len()), (Some(5), 0));
}

/// A receiver killed (SIGKILL, no clean-up) while it streams a signed file:
/// before its first segment verified it reserved nothing, so the genuine
/// file is accepted afterwards; once a verified segment reached the
/// consumer, the message counts as accepted and a replay is refused.
#[test]
fn sigkill_before_and_after_the_first_released_segment() {
    let env = Env::new();
    let (a, a_id) = env.identity("alice.key");
    let (_, s_id) = env.identity("sam.key");
    let ledger = env.p("replay.db");
    let spawn = || {
        env.cmd()
            .args(["decrypt", "-i", &a, "--replay-db", &ledger])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };

    // Killed inside the first segment: nothing verified, nothing reserved.
    let early = common::random_bytes(3 * SEGMENT_PLAINTEXT);
    let early_file = signed(&s_id, &[&a_id], 21, &early);
    let mut child = spawn();
    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all(&early_file[..SEGMENT_PLAINTEXT - 1000])
        .unwrap();
    stdin.flush().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    child.kill().unwrap();
    child.wait().unwrap();
    drop(stdin);
    let early_path = env.write("early.kap", &early_file);
    let (code, out, err) = env.run(&["decrypt", "-i", &a, "--replay-db", &ledger, &early_path]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out == early);

    // Killed after the first segment's plaintext reached the consumer.
    let late = common::random_bytes(4 * SEGMENT_PLAINTEXT);
    let late_file = signed(&s_id, &[&a_id], 22, &late);
    let mut child = spawn();
    let mut stdin = child.stdin.take().unwrap();
    // Written from another thread: the receiver stops reading its input
    // while its output is not read. Three of four segments: more than the
    // parallel decoder's first batch, so plaintext flows before the input ends.
    let head = late_file[..3 * SEGMENT_PLAINTEXT].to_vec();
    let feeder = std::thread::spawn(move || {
        let _ = stdin.write_all(&head);
        stdin
    });
    let mut first = [0u8; 1];
    std::io::Read::read_exact(child.stdout.as_mut().unwrap(), &mut first).unwrap();
    assert_eq!(first[0], late[0]);
    child.kill().unwrap();
    child.wait().unwrap();
    drop(feeder.join().unwrap());
    let late_path = env.write("late.kap", &late_file);
    let (code, out, err) = env.run(&["decrypt", "-i", &a, "--replay-db", &ledger, &late_path]);
    assert_eq!(code, Some(6), "{err}");
    assert!(out.is_empty());
    assert!(
        err.contains("abandoned by a receiver that stopped before finishing"),
        "{err}"
    );
}
