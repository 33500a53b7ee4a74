//! Conformance vectors for the live exchange (SPEC.md section 13), in
//! `testvectors/exchange/`: each is the phase-2 bytes a receiver reads (the
//! message in frames, then the end marker, or a cut, abort or bad
//! framing), the receiver's identity and challenge, the outcome, the
//! plaintext released, and for accepted messages the receipt (13.5).
//!
//! File format: that of `testvectors/README.md` (text header, blank line,
//! data), with the keys `expect`, `identity` (0 or more), `challenge`,
//! `receipt` (accepted only), `released_len`, `released_sha256`, `comment`.
//! `expect` is `accepted`, `refused_by_policy`, `bad_framing`, `abandoned`,
//! `connection_closed`, or a decoder class of section 7 (the names of
//! [`Expect`]).
//!
//! [`receive`] is the reference receiver these vectors are checked against;
//! the expected values of the generator are written from the specification
//! (which chunks of an anonymous message, and which whole verified segments
//! of a signed one, a streaming receiver can release before a cut: SPEC 6.4,
//! 13.2), not read back from it.

use std::fs;
use std::io::{self, Read, Write};
use std::path::Path;

use kapsel_codec::exchange::{Challenge, ExchangeError, MessageReader, Receipt};
use kapsel_codec::hazmat::exchange::{TailWriter, ABORT_MARKER, MAX_FRAME_LEN};
use kapsel_codec::{Decryptor, Encryptor, Identity, Outcome};
use rand_core::RngCore;
use sha2::{Digest, Sha256};

use crate::generate::{identity, seeded, T0};
use crate::run::expect_of;
use crate::vector::Expect;

const CHUNK: usize = 16_384;
const SEALED_CHUNK: usize = CHUNK + 16;
const PAYLOAD_PREFIX: usize = 56;
/// Plaintext of a full signed segment (SPEC 6.5).
const SEGMENT: usize = 64 * CHUNK;
/// Bytes of a full signed segment: 64 chunks and the signature.
const FULL_SEGMENT: usize = 64 * SEALED_CHUNK + 64;

/// One exchange vector.
#[derive(Clone, Debug)]
pub struct ExchangeVector {
    pub name: String,
    pub expect: String,
    pub identities: Vec<String>,
    pub challenge: Challenge,
    pub receipt: Option<Receipt>,
    pub released: Vec<u8>,
    pub comment: String,
    /// The bytes the receiver reads after its hello.
    pub data: Vec<u8>,
}

impl ExchangeVector {
    /// The vector file's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut head = String::new();
        let mut line = |k: &str, v: &str| {
            assert!(!v.contains('\n') && v.is_ascii(), "{k}: {v:?}");
            head.push_str(&format!("{k}: {v}\n"));
        };
        line("expect", &self.expect);
        for id in &self.identities {
            line("identity", id);
        }
        line("challenge", &self.challenge.to_string());
        if let Some(r) = &self.receipt {
            line("receipt", &hex::encode(r.as_bytes()));
        }
        line("released_len", &self.released.len().to_string());
        line(
            "released_sha256",
            &hex::encode(Sha256::digest(&self.released)),
        );
        line("comment", &self.comment);
        head.push('\n');
        let mut out = head.into_bytes();
        out.extend_from_slice(&self.data);
        out
    }
}

/// What the reference receiver did with a vector's bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Received {
    /// The `expect` name of the outcome.
    pub outcome: String,
    /// Plaintext released, in order, before the receiver stopped.
    pub released: Vec<u8>,
    /// The receipt, for an accepted message.
    pub receipt: Option<Receipt>,
}

/// Runs the receiver of SPEC.md section 13 on the bytes after its hello,
/// reading the plaintext in `piece`-byte reads.
pub fn receive(
    wire: &[u8],
    identities: &[Identity],
    challenge: &Challenge,
    piece: usize,
) -> Received {
    let mut input = MessageReader::new(wire);
    let mut released = Vec::new();
    let result = (|| -> Result<Receipt, Option<kapsel_codec::Outcome>> {
        let decryptor = Decryptor::new(&mut input).map_err(|e| Some(e.outcome()))?;
        // A header for another challenge is refused by policy (no outcome
        // class of section 7) before any payload byte is read.
        let (mut reader, key) =
            decryptor
                .decrypt_live(identities, challenge)
                .map_err(|e| match e.outcome() {
                    kapsel_codec::Outcome::Refused => None,
                    other => Some(other),
                })?;
        let mut buf = vec![0u8; piece.max(1)];
        loop {
            match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => released.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Some(Outcome::of_io(&e))),
            }
        }
        drop(reader);
        Ok(key.receipt(&input.tail()))
    })();
    let framing = input.failure();
    let outcome = match (&result, framing) {
        (Err(_), Some(ExchangeError::Closed(_))) => "connection_closed".to_string(),
        (Err(_), Some(ExchangeError::Aborted)) => "abandoned".to_string(),
        (Err(_), Some(ExchangeError::FrameLength(_))) => "bad_framing".to_string(),
        (Err(None), _) => "refused_by_policy".to_string(),
        (Err(Some(outcome)), _) => expect_of(Some(*outcome)).as_str().to_string(),
        (Ok(_), _) => "accepted".to_string(),
    };
    let accepted = result.is_ok();
    Received {
        outcome,
        released,
        receipt: result.ok().filter(|_| accepted),
    }
}

/// Frames `message` in frames whose lengths cycle through `sizes`, then
/// appends `end` (the end marker, the abort marker, or nothing).
fn frame(message: &[u8], sizes: &[usize], end: Option<u32>) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rest = message;
    let mut i = 0;
    while !rest.is_empty() {
        let n = sizes[i % sizes.len()].min(rest.len());
        out.extend_from_slice(&(n as u32).to_be_bytes());
        out.extend_from_slice(&rest[..n]);
        rest = &rest[n..];
        i += 1;
    }
    if let Some(marker) = end {
        out.extend_from_slice(&marker.to_be_bytes());
    }
    out
}

/// A message made by the real encoder: the file, the receipt of a receiver
/// that read all of it, and the plaintext.
struct Message {
    file: Vec<u8>,
    receipt: Receipt,
    plaintext: Vec<u8>,
    header_len: usize,
}

/// Name, recipients, signer, plaintext length, frame sizes, bytes after
/// the end marker, comment.
type AcceptedCase<'a> = (
    &'a str,
    Vec<&'a Identity>,
    Option<&'a Identity>,
    usize,
    &'a [usize],
    &'a [u8],
    &'a str,
);
/// Name, outcome, released plaintext, comment, wire bytes.
type CutCase<'a> = (&'a str, &'a str, &'a [u8], &'a str, Vec<u8>);
/// Name, outcome, receiver identities, released plaintext, comment, wire bytes.
type FailureCase<'a> = (
    &'a str,
    &'a str,
    &'a [&'a Identity],
    &'a [u8],
    &'a str,
    Vec<u8>,
);

struct Gen {
    bob: Identity,
    carol: Identity,
    dave: Identity,
    sam: Identity,
    out: Vec<ExchangeVector>,
}

impl Gen {
    fn challenge(label: &str) -> Challenge {
        let mut bytes = [0u8; 32];
        seeded(&format!("exchange challenge {label}")).fill_bytes(&mut bytes);
        Challenge::from_bytes(bytes)
    }

    fn plaintext(label: &str, len: usize) -> Vec<u8> {
        let mut pt = vec![0u8; len];
        seeded(&format!("exchange plaintext {label}")).fill_bytes(&mut pt);
        pt
    }

    /// Encrypts to `to`, answering `challenge` if any, signed by `sender`.
    fn message(
        &self,
        label: &str,
        to: &[&Identity],
        sender: Option<&Identity>,
        challenge: Option<Challenge>,
        len: usize,
    ) -> Message {
        let plaintext = Self::plaintext(label, len);
        // A label that says "hidden" hides the recipients (zero hints,
        // shuffled stanzas).
        let mut e = Encryptor::new(to.iter().map(|id| id.to_recipient()))
            .expect("recipients")
            .created_at(T0)
            .hide_recipients(label.contains("hidden"));
        if let Some(c) = challenge {
            e = e.challenge(c);
        }
        if let Some(s) = sender {
            e = e.sender(s.clone());
        }
        let mut rng = seeded(&format!("exchange message {label}"));
        let mut w =
            crate::generate::wrap_reproducible(e, sender, TailWriter::new(Vec::new()), &mut rng);
        // A message without a challenge gets the key of the receiver's
        // challenge only when the receiver computes it; its receipt is unused.
        let key = w.receipt_key().cloned();
        w.write_all(&plaintext).expect("write to Vec");
        let tail_writer = w.finish().expect("finish to Vec");
        let tail = tail_writer.tail();
        let file = tail_writer.into_inner();
        let header_len = u32::from_be_bytes(file[12..16].try_into().expect("4 bytes")) as usize;
        Message {
            receipt: key.map_or(Receipt::from_bytes([0u8; 32]), |k| k.receipt(&tail)),
            file,
            plaintext,
            header_len,
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn push(
        &mut self,
        name: &str,
        expect: &str,
        ids: &[&Identity],
        challenge: Challenge,
        receipt: Option<Receipt>,
        released: &[u8],
        comment: &str,
        data: Vec<u8>,
    ) {
        self.out.push(ExchangeVector {
            name: name.to_string(),
            expect: expect.to_string(),
            identities: ids
                .iter()
                .map(|id| id.to_secret_string().to_string())
                .collect(),
            challenge,
            receipt,
            released: released.to_vec(),
            comment: comment.to_string(),
            data,
        });
    }

    fn accepted(&mut self) {
        let end = Some(0);
        let (bob, carol, sam) = (self.bob.clone(), self.carol.clone(), self.sam.clone());
        let cases: [AcceptedCase<'_>; 7] = [
            ("accepted_anonymous", vec![&bob], None, 1000, &[1 << 20], b"", "an anonymous message of 1000 bytes in one frame"),
            ("accepted_empty_plaintext", vec![&bob], None, 0, &[1 << 20], b"", "an empty plaintext: the message is the header, prefix and one empty chunk"),
            ("accepted_signed_odd_frames", vec![&bob], Some(&sam), 40_000, &[1, 7, 4096, 65_535, 3], b"", "a signed message of 40000 bytes (one segment) in frames of 1, 7, 4096, 65535 and 3 bytes, repeated"),
            ("accepted_signed_two_segments", vec![&bob], Some(&sam), SEGMENT + 20_000, &[65_536, 1000, 777], b"", "a signed message of 1 MiB + 20000 bytes (a full segment and a final one) in frames of 65536, 1000 and 777 bytes, repeated: frame and segment boundaries are unrelated"),
            ("accepted_max_frames", vec![&bob], None, 1_500_000, &[MAX_FRAME_LEN as usize], b"", "a message in a frame of exactly MAX_FRAME_LEN (1048576) bytes and a shorter one"),
            ("accepted_two_recipients_hidden", vec![&carol, &bob], None, 20_000, &[10_000], b"", "two hidden recipients (carol, bob; zero hints, shuffled): any recipient can make the receipt"),
            ("accepted_bytes_after_end_marker", vec![&bob], None, 100, &[50], b"GARBAGE AFTER THE END MARKER", "bytes after the end marker are never read: the receiver replies first"),
        ];
        for (name, to, sender, len, sizes, after, comment) in cases {
            let challenge = Self::challenge(name);
            let m = self.message(name, &to, sender, Some(challenge), len);
            let mut data = frame(&m.file, sizes, end);
            data.extend_from_slice(after);
            self.push(
                name,
                "accepted",
                &[&bob],
                challenge,
                Some(m.receipt),
                &m.plaintext,
                comment,
                data,
            );
        }
    }

    fn refused(&mut self) {
        let bob = self.bob.clone();
        let challenge = Self::challenge("refused");
        let m = self.message("refused_missing", &[&bob], None, None, 5000);
        self.push(
            "refused_challenge_missing",
            "refused_by_policy",
            &[&bob],
            challenge,
            None,
            b"",
            "a valid message without a challenge record: refused before any plaintext",
            frame(&m.file, &[4096], Some(0)),
        );
        let m = self.message(
            "refused_other",
            &[&bob],
            None,
            Some(Self::challenge("another")),
            5000,
        );
        self.push(
            "refused_challenge_different",
            "refused_by_policy",
            &[&bob],
            challenge,
            None,
            b"",
            "a valid message answering another challenge (a replay from another exchange)",
            frame(&m.file, &[4096], Some(0)),
        );
        let sam = self.sam.clone();
        let m = self.message(
            "refused_signed_other",
            &[&bob],
            Some(&sam),
            Some(Self::challenge("another")),
            5000,
        );
        self.push("refused_signed_challenge_different", "refused_by_policy", &[&bob], challenge, None, b"",
            "a signed message answering another challenge: a valid signature does not make a replay acceptable", frame(&m.file, &[4096], Some(0)));
    }

    fn framing(&mut self) {
        let bob = self.bob.clone();
        let name = "framing";
        let challenge = Self::challenge(name);
        let m = self.message(name, &[&bob], None, Some(challenge), 40_000);
        let first_chunk_end = m.header_len + PAYLOAD_PREFIX + SEALED_CHUNK;
        let one_chunk = &m.plaintext[..CHUNK];
        let two_chunks = &m.plaintext[..2 * CHUNK];
        let mut too_long = (MAX_FRAME_LEN + 1).to_be_bytes().to_vec();
        too_long.extend_from_slice(&m.file);
        let cases: Vec<CutCase<'_>> = vec![
            (
                "bad_framing_first_frame_too_long",
                "bad_framing",
                b"",
                "the first length is MAX_FRAME_LEN + 1",
                too_long,
            ),
            (
                "bad_framing_after_first_chunk",
                "bad_framing",
                one_chunk,
                "frames up to 100 bytes into chunk 1, then length 0x80000000: chunk 0 was released",
                [
                    frame(&m.file[..first_chunk_end + 100], &[8192], None),
                    0x8000_0000u32.to_be_bytes().to_vec(),
                ]
                .concat(),
            ),
            (
                "abandoned_in_header",
                "abandoned",
                b"",
                "the abort marker after 40 bytes of the header",
                frame(&m.file[..40], &[40], Some(ABORT_MARKER)),
            ),
            (
                "abandoned_after_first_chunk",
                "abandoned",
                one_chunk,
                "the abort marker 100 bytes into chunk 1: chunk 0 was released, nothing after",
                frame(
                    &m.file[..first_chunk_end + 100],
                    &[8192],
                    Some(ABORT_MARKER),
                ),
            ),
            (
                "closed_in_header",
                "connection_closed",
                b"",
                "the stream ends 100 bytes into the header",
                frame(&m.file[..100], &[64], None),
            ),
            (
                "closed_before_end_marker",
                "connection_closed",
                two_chunks,
                "the whole message but no end marker: the final chunk is never released",
                frame(&m.file, &[8192], None),
            ),
            (
                "closed_in_end_marker",
                "connection_closed",
                two_chunks,
                "the whole message and 2 bytes of the end marker",
                [frame(&m.file, &[8192], None), vec![0, 0]].concat(),
            ),
            (
                "closed_in_frame",
                "connection_closed",
                one_chunk,
                "a frame announces 8192 bytes, 100 arrive",
                [
                    frame(&m.file[..first_chunk_end + 1000], &[8192], None),
                    8192u32.to_be_bytes().to_vec(),
                    m.file[first_chunk_end + 1000..first_chunk_end + 1100].to_vec(),
                ]
                .concat(),
            ),
        ];
        for (name, expect, released, comment, data) in cases {
            self.push(
                name,
                expect,
                &[&bob],
                challenge,
                None,
                released,
                comment,
                data,
            );
        }

        // A cut 30 bytes after chunk 0: enough to release chunk 0 of an
        // anonymous message, not of a signed one, whose decoder releases
        // nothing of a segment before all of it arrived and its signature
        // verified (SPEC 6.5, 13.2).
        let sam = self.sam.clone();
        let signed = self.message(
            "framing signed",
            &[&bob],
            Some(&sam),
            Some(challenge),
            40_000,
        );
        let cut = |file: &[u8], header_len: usize| {
            frame(
                &file[..header_len + PAYLOAD_PREFIX + SEALED_CHUNK + 30],
                &[8192],
                None,
            )
        };
        self.push(
            "closed_30_bytes_after_chunk_0",
            "connection_closed",
            &[&bob],
            challenge,
            None,
            one_chunk,
            "an anonymous message cut 30 bytes after chunk 0: chunk 0 was released",
            cut(&m.file, m.header_len),
        );
        self.push("closed_30_bytes_after_chunk_0_signed", "connection_closed", &[&bob], challenge, None, b"",
            "a signed message (one segment of 40000 bytes) cut 30 bytes after chunk 0: a cut inside a segment releases nothing of it", cut(&signed.file, signed.header_len));

        // A signed message of two segments, cut inside segment 1 and right
        // after segment 0: segment 0 was released in both (SPEC 13.2).
        let two = self.message(
            "framing signed two segments",
            &[&bob],
            Some(&sam),
            Some(challenge),
            SEGMENT + 20_000,
        );
        let boundary = two.header_len + PAYLOAD_PREFIX + FULL_SEGMENT;
        assert_eq!(two.file.len(), boundary + 20_096);
        let segment_0 = &two.plaintext[..SEGMENT];
        self.push("closed_in_segment_1_signed", "connection_closed", &[&bob], challenge, None, segment_0,
            "a signed message of two segments cut 10000 bytes into segment 1: segment 0 (1 MiB) was released, nothing of segment 1",
            frame(&two.file[..boundary + 10_000], &[65_536], None));
        self.push("closed_after_segment_0_signed", "connection_closed", &[&bob], challenge, None, segment_0,
            "the same message cut right after its full segment 0: segment 0 was verified and released as soon as its 1049664 bytes arrived; the next read meets the end of the stream",
            frame(&two.file[..boundary], &[65_536], None));
    }

    fn message_failures(&mut self) {
        let (bob, dave, sam) = (self.bob.clone(), self.dave.clone(), self.sam.clone());
        let name = "failures";
        let challenge = Self::challenge(name);
        let m = self.message(name, &[&bob], None, Some(challenge), 40_000);
        let mut chunk1 = m.file.clone();
        chunk1[m.header_len + PAYLOAD_PREFIX + SEALED_CHUNK + 5] ^= 1;
        let mut serial = m.file.clone();
        serial[31] ^= 1;
        let s = self.message(
            "failures_signed",
            &[&bob],
            Some(&sam),
            Some(challenge),
            40_000,
        );
        let mut signature = s.file.clone();
        let last = signature.len() - 1;
        signature[last] ^= 1;
        let (to_bob, to_dave) = ([&bob], [&dave]);
        let cases: Vec<FailureCase<'_>> = vec![
            ("payload_failure_chunk_1", "payload_failure", &to_bob, &m.plaintext[..CHUNK], "one bit of chunk 1 flipped inside a frame", frame(&chunk1, &[4096], Some(0))),
            ("header_auth_failure_serial", "header_auth_failure", &to_bob, b"", "one bit of the serial flipped", frame(&serial, &[4096], Some(0))),
            ("no_match", "no_match", &to_dave, b"", "the receiver's identity is not a recipient", frame(&m.file, &[4096], Some(0))),
            ("sender_verification_failure", "sender_verification_failure", &to_bob, b"", "a signed message (one segment) whose signature's last bit is flipped: nothing of the segment is released", frame(&signature, &[4096], Some(0))),
            ("not_kapsel", "not_kapsel", &to_bob, b"", "frames carrying an age file", frame(b"age-encryption.org/v1\n-> X25519 abc\n", &[16], Some(0))),
        ];
        for (name, expect, ids, released, comment, data) in cases {
            self.push(name, expect, ids, challenge, None, released, comment, data);
        }
    }
}

/// Every exchange vector, in a fixed order.
pub fn vectors() -> Vec<ExchangeVector> {
    let mut g = Gen {
        bob: identity("bob"),
        carol: identity("carol"),
        dave: identity("dave"),
        sam: identity("sam"),
        out: Vec::new(),
    };
    g.accepted();
    g.refused();
    g.framing();
    g.message_failures();
    g.out
}

/// Writes every exchange vector into `dir` (created if needed), after
/// removing the files already there; returns how many were written.
pub fn write_all(dir: &Path) -> io::Result<usize> {
    crate::generate::clear_dir(dir)?;
    let vectors = vectors();
    for v in &vectors {
        fs::write(dir.join(&v.name), v.encode())?;
    }
    Ok(vectors.len())
}

/// Every outcome name an exchange vector may expect.
pub fn outcome_names() -> Vec<&'static str> {
    let mut names = vec![
        "accepted",
        "refused_by_policy",
        "bad_framing",
        "abandoned",
        "connection_closed",
    ];
    names.extend(Expect::ALL.iter().map(|e| e.as_str()));
    names
}
