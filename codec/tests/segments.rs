//! Signed segments under attack (SPEC.md sections 5.3, 6.5, 6.6): a
//! co-recipient who knows the file key, an insider signing with its own key,
//! a storage server that reorders, drops, cuts or swaps bytes between two
//! reads. Each test tries to make a receiver release plaintext the named
//! sender did not sign, through every read path: the sequential reader, the
//! parallel decryptor (one and two threads) and the seekable reader.

// Helpers outside `#[test]` functions unwrap too; clippy.toml allows it only
// inside them.
#![allow(clippy::unwrap_used)]

use std::io::{self, Cursor, Read, Seek, SeekFrom, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use kapsel_codec::exchange::Challenge;
use kapsel_codec::hazmat::hpke::{self, Mode};
use kapsel_codec::hazmat::parallel::CopyError;
use kapsel_codec::hazmat::payload::{ChunkCipher, PayloadWriter, CHUNK_SIZE, PAYLOAD_HEADER_LEN};
use kapsel_codec::hazmat::segment::{
    SegmentSigner, FULL_SEGMENT_LEN, SEGMENT_CHUNK_BYTES, SEGMENT_PLAINTEXT, SIGNATURE_LEN,
};
use kapsel_codec::{hazmat::HPKE_INFO, DecryptError, Decryptor, Encryptor, Identity, Outcome};
use kapsel_format::{read, write, Header, P256Point, Sender, Stanza, Suite};

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 251) as u8).collect()
}

fn signed_file(sender: &Identity, recipients: &[&Identity], plaintext: &[u8]) -> Vec<u8> {
    let enc = Encryptor::new(recipients.iter().map(|r| r.to_recipient()))
        .unwrap()
        .sender(sender.clone());
    let mut w = enc.wrap_output(Vec::new()).unwrap();
    w.write_all(plaintext).unwrap();
    w.finish().unwrap()
}

type Decoded = (Vec<u8>, Result<(), Outcome>);

fn sequential(identities: &[Identity], file: &[u8]) -> Decoded {
    let mut released = Vec::new();
    let mut r = match Decryptor::new(file).and_then(|d| d.decrypt(identities)) {
        Ok(r) => r,
        Err(e) => return (released, Err(e.outcome())),
    };
    let mut buf = [0u8; 5000];
    loop {
        match r.read(&mut buf) {
            Ok(0) => return (released, Ok(())),
            Ok(n) => released.extend_from_slice(&buf[..n]),
            Err(e) => {
                // Once failed, it keeps failing.
                assert!(r.read(&mut buf).is_err());
                return (released, Err(Outcome::of_io(&e)));
            }
        }
    }
}

fn parallel(identities: &[Identity], file: &[u8], threads: usize) -> Decoded {
    let mut released = Vec::new();
    let r = match Decryptor::new(file).and_then(|d| d.decrypt(identities)) {
        Ok(r) => r,
        Err(e) => return (released, Err(e.outcome())),
    };
    let result = match r.decrypt_to(&mut released, threads, &mut || Ok(())) {
        Ok(n) => {
            assert_eq!(n, released.len() as u64);
            Ok(())
        }
        Err(CopyError::Input(e)) => Err(Outcome::of_io(&e)),
        Err(e) => panic!("{e}"),
    };
    (released, result)
}

fn seekable(identities: &[Identity], file: &[u8]) -> Decoded {
    let mut released = Vec::new();
    let mut r = match Decryptor::new(Cursor::new(file)).and_then(|d| d.decrypt_seekable(identities))
    {
        Ok(r) => r,
        Err(e) => return (released, Err(e.outcome())),
    };
    let mut buf = [0u8; 7000];
    loop {
        match r.read(&mut buf) {
            Ok(0) => return (released, Ok(())),
            Ok(n) => released.extend_from_slice(&buf[..n]),
            Err(e) => return (released, Err(Outcome::of_io(&e))),
        }
    }
}

/// Decodes through every path; asserts they agree and returns the result.
fn decode(identity: &Identity, file: &[u8]) -> Decoded {
    let ids = std::slice::from_ref(identity);
    let seq = sequential(ids, file);
    for threads in [1, 2] {
        let par = parallel(ids, file, threads);
        assert_eq!(par.1, seq.1, "parallel ({threads}) and sequential outcomes");
        assert!(
            par.0 == seq.0,
            "parallel ({threads}) and sequential release"
        );
    }
    // The seekable reader checks the payload length first: a length no
    // file can have fails before anything is read (SPEC.md section 6.6).
    let seek = seekable(ids, file);
    let layout_refused =
        seek.0.is_empty() && seek.1 == Err(Outcome::PayloadFailed) && seq.1.is_err();
    if !layout_refused {
        assert_eq!(seek.1, seq.1, "seekable and sequential outcomes");
        assert!(seek.0 == seq.0, "seekable and sequential release");
    }
    seq
}

fn header_len(file: &[u8]) -> usize {
    read::header(file).unwrap().1.encoded_len()
}

/// Body offset (from the file start) of segment `j`.
fn segment_start(file: &[u8], j: usize) -> usize {
    header_len(file) + PAYLOAD_HEADER_LEN + j * FULL_SEGMENT_LEN
}

/// What a co-recipient learns: the file key, from its own stanza.
fn insider_file_key(insider: &Identity, file: &[u8]) -> [u8; 32] {
    let (_, header) = read::header(file).unwrap();
    for stanza in &header.stanzas {
        if let Stanza::P256Hpke {
            enc, wrapped_key, ..
        } = stanza
        {
            let Ok(shared) = hpke::decap(&enc.0, insider.secret_key(), None) else {
                continue;
            };
            let mut ctx = hpke::Context::new(Mode::Base, &shared, HPKE_INFO);
            let mut key = [0u8; 32];
            if ctx.open_into(b"", wrapped_key, &mut key).is_ok() {
                return key;
            }
        }
    }
    panic!("not a recipient");
}

/// A body in the signed layout written by someone who knows the file key
/// but not the sender's private key: valid chunks, and in each signature
/// slot whatever `signature` yields for the segment's chunk bytes.
fn forge_body(
    cipher: ChunkCipher,
    plaintext: &[u8],
    mut signature: impl FnMut(u64, bool, &[u8]) -> [u8; SIGNATURE_LEN],
) -> Vec<u8> {
    let mut w = PayloadWriter::from_parts(Vec::new(), cipher);
    w.write_all(plaintext).unwrap();
    let chunks = w.finish().unwrap();
    let mut body = Vec::new();
    let mut segments = chunks.chunks(SEGMENT_CHUNK_BYTES).peekable();
    let mut j = 0;
    while let Some(seg) = segments.next() {
        let is_final = segments.peek().is_none() && seg.len() < SEGMENT_CHUNK_BYTES;
        body.extend_from_slice(seg);
        body.extend_from_slice(&signature(j, is_final, seg));
        j += 1;
    }
    body
}

#[test]
fn signed_files_round_trip_in_every_path_and_name_a_verified_sender() {
    let (s, a) = (Identity::generate(), Identity::generate());
    for len in [
        0,
        1,
        CHUNK_SIZE,
        SEGMENT_PLAINTEXT - 1,
        SEGMENT_PLAINTEXT,
        SEGMENT_PLAINTEXT + 1,
        3 * SEGMENT_PLAINTEXT + 12_345,
    ] {
        let pt = pattern(len);
        let file = signed_file(&s, &[&a], &pt);
        let (released, outcome) = decode(&a, &file);
        assert_eq!(outcome, Ok(()), "len {len}");
        assert!(released == pt, "len {len}");
        let d = Decryptor::new(&file[..]).unwrap();
        assert!(d.claimed_sender().unwrap().is(&s.to_recipient()));
        let mut r = d.decrypt(std::slice::from_ref(&a)).unwrap();
        assert_eq!(r.verified_sender(), None, "nothing verified before a read");
        let mut sink = Vec::new();
        r.read_to_end(&mut sink).unwrap();
        assert_eq!(r.verified_sender(), Some(s.to_recipient()));
        assert_eq!(r.segments_verified(), (len / SEGMENT_PLAINTEXT + 1) as u64);
    }
}

#[test]
fn every_signature_is_low_s() {
    let (s, a) = (Identity::generate(), Identity::generate());
    let file = signed_file(&s, &[&a], &pattern(5 * SEGMENT_PLAINTEXT + 7));
    let mut at = segment_start(&file, 0);
    let mut count = 0;
    while at < file.len() {
        let end = (at + FULL_SEGMENT_LEN).min(file.len());
        let sig = p256::ecdsa::Signature::from_slice(&file[end - SIGNATURE_LEN..end]).unwrap();
        assert!(sig.normalize_s().is_none(), "segment {count} has a high s");
        count += 1;
        at = end;
    }
    assert_eq!(count, 6);
}

#[test]
fn co_recipient_payload_under_the_genuine_header_releases_nothing() {
    let (s, a, b) = (
        Identity::generate(),
        Identity::generate(),
        Identity::generate(),
    );
    let genuine = pattern(2 * SEGMENT_PLAINTEXT + 999);
    let file = signed_file(&s, &[&a, &b], &genuine);
    let key = insider_file_key(&b, &file);
    let hl = header_len(&file);
    let header = &file[..hl];
    let evil = vec![b'!'; genuine.len()];
    // A new salt and a valid commitment; signatures copied from the genuine
    // file, zero, or made by B's own key over the right message.
    let b_signer_prefix =
        |prefix: &[u8; PAYLOAD_HEADER_LEN]| SegmentSigner::new(b.secret_key(), header, prefix);
    for attempt in ["copied", "zero", "own key"] {
        let (cipher, prefix) = ChunkCipher::for_encryption(&key, header);
        let own = b_signer_prefix(&prefix);
        let mut seg = 0usize;
        let body = forge_body(cipher, &evil, |j, is_final, chunks| match attempt {
            "copied" => {
                let end = (segment_start(&file, seg) + FULL_SEGMENT_LEN).min(file.len());
                seg += 1;
                file[end - SIGNATURE_LEN..end].try_into().unwrap()
            }
            "zero" => [0u8; SIGNATURE_LEN],
            _ => own.sign(j, is_final, chunks).unwrap(),
        });
        let forged = [header, &prefix[..], &body].concat();
        assert_eq!(forged.len(), file.len());
        let (released, outcome) = decode(&a, &forged);
        assert_eq!(outcome, Err(Outcome::SenderAuthFailed), "{attempt}");
        assert!(released.is_empty(), "{attempt}: forged plaintext released");
    }
    // The genuine salt and commitment kept, the chunks replaced.
    let prefix: [u8; PAYLOAD_HEADER_LEN] = file[hl..hl + PAYLOAD_HEADER_LEN].try_into().unwrap();
    let cipher = ChunkCipher::for_decryption_with_prefix(&key, header, &prefix).unwrap();
    let mut seg = 0usize;
    let body = forge_body(cipher, &evil, |_, _, _| {
        let end = (segment_start(&file, seg) + FULL_SEGMENT_LEN).min(file.len());
        seg += 1;
        file[end - SIGNATURE_LEN..end].try_into().unwrap()
    });
    let forged = [header, &prefix[..], &body].concat();
    let (released, outcome) = decode(&a, &forged);
    assert_eq!(outcome, Err(Outcome::SenderAuthFailed));
    assert!(released.is_empty());
    // And the genuine file still decrypts.
    assert_eq!(decode(&a, &file), (genuine, Ok(())));
}

#[test]
fn co_recipient_cannot_refresh_the_header_either() {
    let (s, a, b) = (
        Identity::generate(),
        Identity::generate(),
        Identity::generate(),
    );
    let file = signed_file(&s, &[&a, &b], &pattern(SEGMENT_PLAINTEXT + 5));
    let key = insider_file_key(&b, &file);
    let mut header = read::header_exact(&file[..header_len(&file)]).unwrap();
    header.serial += 1;
    let new_header = write::header_to_vec(&header).unwrap();
    let (cipher, prefix) = ChunkCipher::for_encryption(&key, &new_header);
    let own = SegmentSigner::new(b.secret_key(), &new_header, &prefix);
    let body = forge_body(cipher, &pattern(SEGMENT_PLAINTEXT + 5), |j, f, c| {
        own.sign(j, f, c).unwrap()
    });
    let forged = [&new_header[..], &prefix[..], &body].concat();
    let (released, outcome) = decode(&a, &forged);
    assert_eq!(outcome, Err(Outcome::SenderAuthFailed));
    assert!(released.is_empty());
}

#[test]
fn reordered_duplicated_and_dropped_segments_fail_before_release() {
    let (s, a) = (Identity::generate(), Identity::generate());
    let pt = pattern(3 * SEGMENT_PLAINTEXT + 100);
    let file = signed_file(&s, &[&a], &pt);
    let seg = |j: usize| {
        let start = segment_start(&file, j);
        file[start..(start + FULL_SEGMENT_LEN).min(file.len())].to_vec()
    };
    let head = &file[..segment_start(&file, 0)];
    let mib = SEGMENT_PLAINTEXT;
    let cases: Vec<(&str, Vec<u8>, usize, Outcome)> = vec![
        (
            "0 and 1 swapped",
            [head.to_vec(), seg(1), seg(0), seg(2), seg(3)].concat(),
            0,
            Outcome::SenderAuthFailed,
        ),
        (
            "1 duplicated",
            [head.to_vec(), seg(0), seg(1), seg(1), seg(2), seg(3)].concat(),
            2 * mib,
            Outcome::SenderAuthFailed,
        ),
        (
            "1 dropped",
            [head.to_vec(), seg(0), seg(2), seg(3)].concat(),
            mib,
            Outcome::SenderAuthFailed,
        ),
        (
            "final dropped",
            [head.to_vec(), seg(0), seg(1), seg(2)].concat(),
            3 * mib,
            Outcome::PayloadFailed,
        ),
        (
            "final before 2",
            [head.to_vec(), seg(0), seg(1), seg(3), seg(2)].concat(),
            2 * mib,
            Outcome::SenderAuthFailed,
        ),
        (
            "0 replaced by 1",
            [head.to_vec(), seg(1), seg(1), seg(2), seg(3)].concat(),
            0,
            Outcome::SenderAuthFailed,
        ),
    ];
    for (what, data, released_len, outcome) in cases {
        let (released, result) = decode(&a, &data);
        assert_eq!(result, Err(outcome), "{what}");
        assert_eq!(released.len(), released_len, "{what}");
        assert!(released == pt[..released_len], "{what}");
    }
}

#[test]
fn cuts_at_and_around_every_segment_boundary_release_only_whole_signed_segments() {
    let (s, a) = (Identity::generate(), Identity::generate());
    let pt = pattern(2 * SEGMENT_PLAINTEXT + 3 * CHUNK_SIZE + 7);
    let file = signed_file(&s, &[&a], &pt);
    let body_start = segment_start(&file, 0);
    for boundary in 1..=2 {
        let b = body_start + boundary * FULL_SEGMENT_LEN;
        for delta in [-65i64, -64, -63, -17, -1, 0, 1, 15, 16, 79, 80, 81, 16_464] {
            let cut = (b as i64 + delta) as usize;
            if cut >= file.len() {
                continue;
            }
            let (released, result) = decode(&a, &file[..cut]);
            assert!(result.is_err(), "cut at boundary {boundary} {delta:+}");
            // Only segments entirely before the cut, all non-final.
            let whole = (cut - body_start) / FULL_SEGMENT_LEN;
            assert_eq!(
                released.len(),
                whole * SEGMENT_PLAINTEXT,
                "cut at boundary {boundary} {delta:+}"
            );
            assert!(released == pt[..released.len()]);
            let remainder = (cut - body_start) % FULL_SEGMENT_LEN;
            let expected = if remainder < 80 {
                Outcome::PayloadFailed
            } else {
                Outcome::SenderAuthFailed
            };
            assert_eq!(
                result,
                Err(expected),
                "cut at boundary {boundary} {delta:+}"
            );
        }
    }
    // Bytes appended after the final segment.
    let mut extended = file.clone();
    extended.push(0);
    let (released, result) = decode(&a, &extended);
    assert_eq!(result, Err(Outcome::SenderAuthFailed));
    assert_eq!(released.len(), 2 * SEGMENT_PLAINTEXT);
}

/// `n - s` for the signature at `file[end - 64..end]`.
fn replace_s_by_n_minus_s(file: &mut [u8], end: usize) {
    let sig = p256::ecdsa::Signature::from_slice(&file[end - SIGNATURE_LEN..end]).unwrap();
    let (r, s) = sig.split_scalars();
    let high = p256::ecdsa::Signature::from_scalars(r.to_bytes(), (-*s).to_bytes()).unwrap();
    assert!(high.normalize_s().is_some(), "the replacement must be high");
    file[end - SIGNATURE_LEN..end].copy_from_slice(&high.to_bytes());
}

#[test]
fn high_s_second_encoding_is_refused() {
    let (s, a) = (Identity::generate(), Identity::generate());
    let pt = pattern(SEGMENT_PLAINTEXT + 10);
    let file = signed_file(&s, &[&a], &pt);
    let first_end = segment_start(&file, 1);
    let mut high0 = file.clone();
    replace_s_by_n_minus_s(&mut high0, first_end);
    let (released, result) = decode(&a, &high0);
    assert_eq!(result, Err(Outcome::SenderAuthFailed));
    assert!(released.is_empty());
    let mut high1 = file.clone();
    let end = high1.len();
    replace_s_by_n_minus_s(&mut high1, end);
    let (released, result) = decode(&a, &high1);
    assert_eq!(result, Err(Outcome::SenderAuthFailed));
    assert_eq!(released, pt[..SEGMENT_PLAINTEXT]);
    // Out-of-range r and s.
    let n: [u8; 32] = hex_literal_n();
    for (what, r, sv) in [("r = 0", [0u8; 32], [1u8; 32]), ("s = n", [1u8; 32], n)] {
        let mut bad = file.clone();
        bad[first_end - 64..first_end - 32].copy_from_slice(&r);
        bad[first_end - 32..first_end].copy_from_slice(&sv);
        assert_eq!(decode(&a, &bad).1, Err(Outcome::SenderAuthFailed), "{what}");
    }
}

/// An anonymous file whose stanza for `wrong` wraps a random key, and whose
/// stanza for `right` wraps the file key the payload is encrypted with.
fn file_with_a_wrong_key_for(wrong: &Identity, right: &Identity, pt: &[u8]) -> Vec<u8> {
    let file_key = [7u8; 32];
    let stanza = |to: &Identity, key: &[u8; 32]| {
        let eph = kapsel_codec::hazmat::ec::SecretKey::generate();
        let e = hpke::encap(to.to_recipient().public_key(), None, &eph);
        let mut ctx = hpke::Context::new(Mode::Base, &e.shared_secret, HPKE_INFO);
        let sealed = ctx.seal(b"", key).unwrap();
        Stanza::P256Hpke {
            hint: to.to_recipient().stanza_hint(&e.enc),
            enc: P256Point(e.enc),
            wrapped_key: sealed.try_into().unwrap(),
        }
    };
    let header = Header {
        suite: Suite::P256HpkeCobblestone256,
        created_at: 1,
        serial: 2,
        sender: Sender::Anonymous,
        stanzas: vec![stanza(wrong, &[9u8; 32]), stanza(right, &file_key)],
        extensions: vec![],
    };
    let header = write::header_to_vec(&header).unwrap();
    let mut w = PayloadWriter::new(Vec::new(), &file_key, &header).unwrap();
    w.write_all(pt).unwrap();
    [header, w.finish().unwrap()].concat()
}

#[test]
fn the_outcome_does_not_depend_on_the_order_of_identities() {
    let (alice, bob) = (Identity::generate(), Identity::generate());
    let pt = pattern(40_000);
    let file = file_with_a_wrong_key_for(&alice, &bob, &pt);
    for ids in [
        vec![alice.clone(), bob.clone()],
        vec![bob.clone(), alice.clone()],
    ] {
        assert_eq!(sequential(&ids, &file), (pt.clone(), Ok(())));
        assert_eq!(seekable(&ids, &file), (pt.clone(), Ok(())));
        assert_eq!(parallel(&ids, &file, 2), (pt.clone(), Ok(())));
    }
    // Alice alone: her stanza opens to a key that fails the commitment.
    assert_eq!(
        sequential(std::slice::from_ref(&alice), &file).1,
        Err(Outcome::HeaderAuthFailed)
    );
}

#[test]
fn hints_are_per_stanza_and_hidden_recipients_are_shuffled() {
    let ids: Vec<Identity> = (0..5).map(|_| Identity::generate()).collect();
    let make = |hide: bool| {
        let mut w = Encryptor::new(ids.iter().map(Identity::to_recipient))
            .unwrap()
            .hide_recipients(hide)
            .wrap_output(Vec::new())
            .unwrap();
        w.write_all(b"x").unwrap();
        w.finish().unwrap()
    };
    let hints = |file: &[u8]| -> Vec<[u8; 4]> {
        read::header(file)
            .unwrap()
            .1
            .stanzas
            .iter()
            .map(|s| match s {
                Stanza::P256Hpke { hint, enc, .. } => {
                    let _ = enc;
                    *hint
                }
                _ => unreachable!(),
            })
            .collect()
    };
    let (f1, f2) = (make(false), make(false));
    let (h1, h2) = (hints(&f1), hints(&f2));
    for (i, id) in ids.iter().enumerate() {
        assert_ne!(h1[i], h2[i], "a recipient's hint repeats across files");
        let (_, header) = read::header(&f1[..]).unwrap();
        let Stanza::P256Hpke { enc, .. } = &header.stanzas[i] else {
            unreachable!()
        };
        assert_eq!(h1[i], id.to_recipient().stanza_hint(&enc.0));
    }
    // Hidden: zero hints, and the stanza of recipient 0 is not always first.
    let mut first_is_zero = 0;
    for _ in 0..16 {
        let f = make(true);
        assert!(hints(&f).iter().all(|h| *h == [0; 4]));
        let (_, header) = read::header(&f[..]).unwrap();
        let Stanza::P256Hpke { enc, .. } = &header.stanzas[0] else {
            unreachable!()
        };
        if hpke::decap(&enc.0, ids[0].secret_key(), None)
            .map(|shared| {
                let Stanza::P256Hpke { wrapped_key, .. } = &header.stanzas[0] else {
                    unreachable!()
                };
                let mut ctx = hpke::Context::new(Mode::Base, &shared, HPKE_INFO);
                let mut k = [0u8; 32];
                ctx.open_into(b"", wrapped_key, &mut k).is_ok()
            })
            .unwrap_or(false)
        {
            first_is_zero += 1;
        }
        assert_eq!(sequential(&ids[3..4], &f).0, b"x");
    }
    assert!(first_is_zero < 16, "stanzas are not shuffled");
}

/// A source that serves each read from the genuine or the forged file by
/// a schedule, as a storage server answering two reads differently would.
struct TwoFacedSource {
    genuine: Vec<u8>,
    forged: Vec<u8>,
    pos: u64,
    reads: AtomicUsize,
    /// Reads served from the genuine file: returns true for genuine.
    schedule: fn(usize, u64) -> bool,
    seen: Mutex<Vec<u64>>,
}

impl Read for TwoFacedSource {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let n = self.reads.fetch_add(1, Ordering::Relaxed);
        let genuine = (self.schedule)(n, self.pos);
        self.seen.lock().unwrap().push(self.pos);
        let src = if genuine { &self.genuine } else { &self.forged };
        let start = (self.pos as usize).min(src.len());
        let k = out.len().min(src.len() - start);
        out[..k].copy_from_slice(&src[start..start + k]);
        self.pos += k as u64;
        Ok(k)
    }
}

impl Seek for TwoFacedSource {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        self.pos = match to {
            SeekFrom::Start(n) => n,
            SeekFrom::End(d) => (self.genuine.len() as i64 + d) as u64,
            SeekFrom::Current(d) => (self.pos as i64 + d) as u64,
        };
        Ok(self.pos)
    }
}

#[test]
fn a_source_that_changes_between_reads_never_yields_unsigned_plaintext() {
    let (s, a, b) = (
        Identity::generate(),
        Identity::generate(),
        Identity::generate(),
    );
    let pt = pattern(3 * SEGMENT_PLAINTEXT + 4321);
    let file = signed_file(&s, &[&a, &b], &pt);
    let key = insider_file_key(&b, &file);
    let hl = header_len(&file);
    let prefix: [u8; PAYLOAD_HEADER_LEN] = file[hl..hl + PAYLOAD_HEADER_LEN].try_into().unwrap();
    let cipher = ChunkCipher::for_decryption_with_prefix(&key, &file[..hl], &prefix).unwrap();
    let mut seg = 0usize;
    let body = forge_body(cipher, &vec![b'!'; pt.len()], |_, _, _| {
        let end = (segment_start(&file, seg) + FULL_SEGMENT_LEN).min(file.len());
        seg += 1;
        file[end - SIGNATURE_LEN..end].try_into().unwrap()
    });
    let forged = [&file[..hl + PAYLOAD_HEADER_LEN], &body[..]].concat();
    assert_eq!(forged.len(), file.len());
    // Schedules: alternate; genuine first then forged for every later read
    // (what defeated verify-then-read); forged only in the body.
    let schedules: [fn(usize, u64) -> bool; 3] =
        [|n, _| n % 2 == 0, |n, _| n < 40, |n, _| n % 3 != 1];
    for schedule in schedules {
        let source = TwoFacedSource {
            genuine: file.clone(),
            forged: forged.clone(),
            pos: 0,
            reads: AtomicUsize::new(0),
            schedule,
            seen: Mutex::new(Vec::new()),
        };
        let Ok(r) =
            Decryptor::new(source).and_then(|d| d.decrypt_seekable(std::slice::from_ref(&a)))
        else {
            continue;
        };
        for round in 0..3 {
            for (offset, len) in [
                (0u64, 10usize),
                (1_000_000, 100_000),
                (2_500_000, 700_000),
                (0, pt.len() + 1),
            ] {
                let mut buf = vec![0u8; len];
                if let Ok(n) = r.read_at(offset, &mut buf) {
                    let o = offset as usize;
                    assert!(
                        buf[..n] == pt[o..o + n],
                        "round {round}: unsigned plaintext at {offset}"
                    );
                }
            }
        }
    }
}

#[test]
fn a_one_mib_range_verifies_at_most_two_segments() {
    let (s, a) = (Identity::generate(), Identity::generate());
    let pt = pattern(20 * SEGMENT_PLAINTEXT + 1);
    let file = signed_file(&s, &[&a], &pt);
    for offset in [0u64, 1, 5 * SEGMENT_PLAINTEXT as u64 - 1, 7_654_321] {
        let r = Decryptor::new(Cursor::new(&file[..]))
            .unwrap()
            .decrypt_seekable(std::slice::from_ref(&a))
            .unwrap();
        assert_eq!(r.verified_sender(), None);
        let mut buf = vec![0u8; SEGMENT_PLAINTEXT];
        r.read_exact_at(offset, &mut buf).unwrap();
        let o = offset as usize;
        assert!(buf == pt[o..o + SEGMENT_PLAINTEXT]);
        assert!(
            r.segments_verified() <= 2,
            "offset {offset}: {}",
            r.segments_verified()
        );
        assert_eq!(r.verified_sender(), Some(s.to_recipient()));
    }
}

#[test]
fn an_impossible_length_is_refused_before_any_segment_is_read() {
    let (s, a) = (Identity::generate(), Identity::generate());
    let file = signed_file(&s, &[&a], &pattern(SEGMENT_PLAINTEXT + 100));
    let b = segment_start(&file, 1);
    let whole = signed_file(&s, &[&a], &pattern(2 * SEGMENT_PLAINTEXT));
    for cut in [b, b + 1, b + 79, b + 64 + 15] {
        let e = Decryptor::new(Cursor::new(&file[..cut]))
            .unwrap()
            .decrypt_seekable(std::slice::from_ref(&a))
            .unwrap_err();
        assert_eq!(e.outcome(), Outcome::PayloadFailed, "cut {cut}");
    }
    // A range ending exactly at the claimed length needs no final segment
    // (here one holding only the empty final chunk); one past it verifies
    // the final segment first.
    let r = Decryptor::new(Cursor::new(&whole[..]))
        .unwrap()
        .decrypt_seekable(std::slice::from_ref(&a))
        .unwrap();
    let len = r.unverified_plaintext_len();
    let mut buf = vec![0u8; 100];
    r.read_exact_at(len - 100, &mut buf).unwrap();
    assert!(!r.payload().is_length_verified());
    assert_eq!(r.read_at(len - 50, &mut buf).unwrap(), 50);
    assert!(r.payload().is_length_verified());
}

#[test]
fn the_release_gate_runs_once_before_the_first_plaintext_and_can_refuse() {
    let (s, a) = (Identity::generate(), Identity::generate());
    let pt = pattern(3 * SEGMENT_PLAINTEXT);
    let file = signed_file(&s, &[&a], &pt);
    let ids = std::slice::from_ref(&a);
    for threads in [1, 2] {
        let r = Decryptor::new(&file[..]).unwrap().decrypt(ids).unwrap();
        let mut calls = 0;
        let mut out = Vec::new();
        r.decrypt_to(&mut out, threads, &mut || {
            calls += 1;
            Ok(())
        })
        .unwrap();
        assert_eq!((calls, out == pt), (1, true));
        // A refusal: nothing is written.
        let r = Decryptor::new(&file[..]).unwrap().decrypt(ids).unwrap();
        let mut out = Vec::new();
        let e = r
            .decrypt_to(&mut out, threads, &mut || Err(io::Error::other("replayed")))
            .unwrap_err();
        assert!(matches!(e, CopyError::Refused(_)));
        assert!(out.is_empty());
        // A forged first segment never reaches the gate.
        let mut bad = file.clone();
        let at = segment_start(&file, 0) + 10;
        bad[at] ^= 1;
        let r = Decryptor::new(&bad[..]).unwrap().decrypt(ids).unwrap();
        let mut out = Vec::new();
        let e = r
            .decrypt_to(&mut out, threads, &mut || panic!("gate reached"))
            .unwrap_err();
        assert!(matches!(e, CopyError::Input(_)));
    }
}

#[test]
fn a_live_message_is_refused_for_another_challenge_before_its_payload() {
    let a = Identity::generate();
    let challenge = Challenge::generate();
    let mut w = Encryptor::new([a.to_recipient()])
        .unwrap()
        .challenge(challenge)
        .wrap_output(Vec::new())
        .unwrap();
    w.write_all(b"live").unwrap();
    let file = w.finish().unwrap();
    let hl = header_len(&file);
    let mut source = Cursor::new(&file[..]);
    let d = Decryptor::new(&mut source).unwrap();
    match d.decrypt_live(std::slice::from_ref(&a), &Challenge::generate()) {
        Err(e @ DecryptError::Challenge(_)) => assert_eq!(e.outcome(), Outcome::Refused),
        other => panic!("{other:?}"),
    }
    // The header authenticated (salt and commitment read); no chunk read.
    assert_eq!(
        source.position(),
        (hl + PAYLOAD_HEADER_LEN) as u64,
        "read a chunk"
    );
    let (mut r, _) = Decryptor::new(&file[..])
        .unwrap()
        .decrypt_live(std::slice::from_ref(&a), &challenge)
        .unwrap();
    let mut out = Vec::new();
    r.read_to_end(&mut out).unwrap();
    assert_eq!(out, b"live");
}

/// The order n of P-256, big-endian.
fn hex_literal_n() -> [u8; 32] {
    let hex = "ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551";
    let mut n = [0u8; 32];
    for (i, b) in n.iter_mut().enumerate() {
        *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap();
    }
    n
}
