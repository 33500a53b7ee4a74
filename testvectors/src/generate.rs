//! The kapsel conformance vector generator (`cargo run -p
//! kapsel-testvectors --bin generate`).
//!
//! Every random value (keys, file keys, ephemeral keys, salts, serials,
//! plaintexts) comes from a ChaCha20 generator seeded with SHA-256 of a fixed
//! label and the vector's name, so rerunning the generator reproduces every
//! byte, and adding a vector changes no other. Signatures are deterministic
//! (RFC 6979).
//!
//! Well-formed files come either from the real encoder
//! (`Encryptor::wrap_output_with_rng`) or from the raw builder below, which
//! writes every header field itself so that it can write invalid ones. The
//! builder computes the payload over the header bytes it wrote, so a header
//! that breaks one rule still authenticates and the vector isolates that
//! rule; tampering that should be caught by the commitment is applied after
//! the payload was sealed. Each vector's outcome class and released
//! plaintext are what SPEC.md says, worked out here by construction; the
//! runners check the decoders against them.

// The vector tables are tuples with boxed edits: long types, read once.
#![allow(clippy::type_complexity)]

use std::fs;
use std::io::{self, Write};
use std::path::Path;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use kapsel_codec::hpke::{self, Mode};
use kapsel_codec::payload::ChunkCipher;
use kapsel_codec::{Encryptor, Identity, HPKE_INFO};
use p256::ecdsa::signature::DigestSigner;
use p256::ecdsa::{Signature, SigningKey};
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::{PublicKey, SecretKey};
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use sha2::{Digest, Sha256};

use crate::vector::{Expect, Vector};

/// Plaintext bytes per chunk.
const CHUNK: usize = 16384;
/// Ciphertext bytes per full chunk.
const CT_CHUNK: usize = CHUNK + 16;
/// The creation time of every vector that does not test it: 2026-01-01T00:00:00Z.
pub(crate) const T0: u64 = 1_767_225_600;
const MAGIC: [u8; 8] = *b"\x8bKAPSEL\n";
const MAX_CREATED_AT: u64 = 253_402_300_799;
const SIGNATURE_LABEL: &[u8] = b"kapsel/v1 signature\x00";
/// The P-256 field prime p.
const P: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
];
/// The P-256 group order n.
const N: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
];

/// A ChaCha20 generator seeded from `label`.
pub(crate) fn seeded(label: &str) -> ChaCha20Rng {
    let mut h = Sha256::new();
    h.update(b"kapsel conformance vectors v1\x00");
    h.update(label.as_bytes());
    ChaCha20Rng::from_seed(h.finalize().into())
}

pub(crate) fn identity(label: &str) -> Identity {
    Identity::from_secret_key(SecretKey::random(&mut seeded(&format!("key {label}"))))
}

/// The cast: recipients alice, bob, carol; dave, who never receives a file;
/// sam, who signs; mallory, a co-recipient who forges.
#[derive(Clone)]
struct Keys {
    alice: Identity,
    bob: Identity,
    carol: Identity,
    dave: Identity,
    sam: Identity,
    mallory: Identity,
}

impl Keys {
    fn new() -> Self {
        Keys {
            alice: identity("alice"),
            bob: identity("bob"),
            carol: identity("carol"),
            dave: identity("dave"),
            sam: identity("sam"),
            mallory: identity("mallory"),
        }
    }
}

fn wire(id: &Identity) -> [u8; 65] {
    id.to_recipient().to_wire().0
}

fn be_add(a: &[u8; 32], b: &[u8; 32]) -> [u8; 32] {
    let mut out = [0u8; 32];
    let mut carry = 0u16;
    for i in (0..32).rev() {
        let s = u16::from(a[i]) + u16::from(b[i]) + carry;
        out[i] = s as u8;
        carry = s >> 8;
    }
    out
}

fn be_sub(a: &[u8; 32], b: &[u8; 32]) -> [u8; 32] {
    let mut out = [0u8; 32];
    let mut borrow = 0i16;
    for i in (0..32).rev() {
        let mut d = i16::from(a[i]) - i16::from(b[i]) - borrow;
        borrow = 0;
        if d < 0 {
            d += 256;
            borrow = 1;
        }
        out[i] = d as u8;
    }
    out
}

fn is_valid_point(bytes: &[u8]) -> bool {
    bytes.len() == 65 && bytes[0] == 4 && PublicKey::from_sec1_bytes(bytes).is_ok()
}

fn flip(mut data: Vec<u8>, byte: usize, bit: u8) -> Vec<u8> {
    data[byte] ^= 1 << bit;
    data
}

fn random_bytes(rng: &mut ChaCha20Rng, len: usize) -> Vec<u8> {
    let mut v = vec![0u8; len];
    rng.fill_bytes(&mut v);
    v
}

/// A header, field by field, any of which may be invalid.
#[derive(Clone)]
struct Hdr {
    magic: Vec<u8>,
    version: u8,
    suite: u16,
    chunk_log2: u8,
    /// `None`: the true length.
    header_len: Option<u32>,
    created_at: u64,
    serial: u64,
    /// `sender_kind` and `sender_key`, raw.
    sender: Vec<u8>,
    /// `None`: the number of stanzas.
    count: Option<u16>,
    /// Raw stanzas, type and length included.
    stanzas: Vec<Vec<u8>>,
    /// `None`: the length of `ext`.
    ext_len: Option<u16>,
    ext: Vec<u8>,
    /// Bytes after the extension area, inside `header_len`.
    tail: Vec<u8>,
}

impl Hdr {
    fn bytes(&self) -> Vec<u8> {
        let mut body = Vec::new();
        body.extend_from_slice(&self.created_at.to_be_bytes());
        body.extend_from_slice(&self.serial.to_be_bytes());
        body.extend_from_slice(&self.sender);
        let count = self.count.unwrap_or(self.stanzas.len() as u16);
        body.extend_from_slice(&count.to_be_bytes());
        for s in &self.stanzas {
            body.extend_from_slice(s);
        }
        let ext_len = self.ext_len.unwrap_or(self.ext.len() as u16);
        body.extend_from_slice(&ext_len.to_be_bytes());
        body.extend_from_slice(&self.ext);
        body.extend_from_slice(&self.tail);
        let total = (self.magic.len() + 8 + body.len()) as u32;
        let mut out = self.magic.clone();
        out.push(self.version);
        out.extend_from_slice(&self.suite.to_be_bytes());
        out.push(self.chunk_log2);
        out.extend_from_slice(&self.header_len.unwrap_or(total).to_be_bytes());
        out.extend_from_slice(&body);
        out
    }
}

fn sender_field(sender: Option<&Identity>) -> Vec<u8> {
    match sender {
        None => vec![0],
        Some(id) => {
            let mut v = vec![1];
            v.extend_from_slice(&wire(id));
            v
        }
    }
}

/// A stanza with an explicit `body_len`.
fn raw_stanza_len(kind: u16, body_len: u16, body: &[u8]) -> Vec<u8> {
    let mut v = kind.to_be_bytes().to_vec();
    v.extend_from_slice(&body_len.to_be_bytes());
    v.extend_from_slice(body);
    v
}

fn raw_stanza(kind: u16, body: &[u8]) -> Vec<u8> {
    raw_stanza_len(kind, body.len() as u16, body)
}

/// An extension record.
fn ext(kind: u16, value: &[u8]) -> Vec<u8> {
    let mut v = kind.to_be_bytes().to_vec();
    v.extend_from_slice(&(value.len() as u16).to_be_bytes());
    v.extend_from_slice(value);
    v
}

/// The parts of a P-256 stanza.
#[derive(Clone)]
struct Wrapped {
    hint: [u8; 4],
    enc: Vec<u8>,
    wrapped: Vec<u8>,
}

impl Wrapped {
    fn stanza(&self) -> Vec<u8> {
        let mut body = self.hint.to_vec();
        body.extend_from_slice(&self.enc);
        body.extend_from_slice(&self.wrapped);
        raw_stanza(1, &body)
    }
}

/// Seals `file_key` to `to`: `kem_sender` selects Encap or AuthEncap, `mode`
/// the key schedule (they differ only in deliberately wrong stanzas).
fn wrap_with(
    rng: &mut ChaCha20Rng,
    to: &Identity,
    kem_sender: Option<&Identity>,
    mode: Mode,
    file_key: &[u8; 32],
) -> Wrapped {
    let ephemeral = SecretKey::random(&mut *rng);
    let e = hpke::encap(
        to.to_recipient().public_key(),
        kem_sender.map(Identity::secret_key),
        &ephemeral,
    );
    let mut ctx = hpke::Context::new(mode, &e.shared_secret, HPKE_INFO);
    let wrapped = ctx.seal(b"", file_key).expect("first HPKE seal");
    Wrapped {
        hint: to.to_recipient().hint(),
        enc: e.enc.to_vec(),
        wrapped,
    }
}

fn wrap(
    rng: &mut ChaCha20Rng,
    to: &Identity,
    sender: Option<&Identity>,
    file_key: &[u8; 32],
) -> Wrapped {
    let mode = if sender.is_some() {
        Mode::Auth
    } else {
        Mode::Base
    };
    wrap_with(rng, to, sender, mode, file_key)
}

/// Which hint a stanza carries.
#[derive(Clone, Copy)]
enum Hint {
    Real,
    Zero,
    Raw([u8; 4]),
}

/// A sealed payload, in pieces.
#[derive(Clone)]
struct Sealed {
    header: Vec<u8>,
    /// Salt and commitment.
    prefix: Vec<u8>,
    chunks: Vec<Vec<u8>>,
}

impl Sealed {
    fn payload(&self) -> Vec<u8> {
        let mut out = self.prefix.clone();
        for c in &self.chunks {
            out.extend_from_slice(c);
        }
        out
    }

    fn file(&self) -> Vec<u8> {
        let mut out = self.header.clone();
        out.extend_from_slice(&self.payload());
        out
    }
}

/// The plaintext split as SPEC 6.2 says: full chunks, then a short final one.
fn split(pt: &[u8]) -> Vec<&[u8]> {
    let full = pt.len() / CHUNK;
    let mut v: Vec<&[u8]> = (0..full).map(|i| &pt[i * CHUNK..(i + 1) * CHUNK]).collect();
    v.push(&pt[full * CHUNK..]);
    v
}

fn seal_pieces(
    file_key: &[u8; 32],
    header: &[u8],
    salt: [u8; 24],
    pieces: &[(u64, &[u8])],
) -> Sealed {
    let (cipher, prefix) =
        ChunkCipher::for_encryption_with_salt(file_key, header, salt).expect("payload key");
    let chunks = pieces
        .iter()
        .map(|(index, piece)| {
            let mut buf = piece.to_vec();
            let tag = cipher.seal(*index, &mut buf).expect("chunk index in range");
            buf.extend_from_slice(&tag);
            buf
        })
        .collect();
    Sealed {
        header: header.to_vec(),
        prefix: prefix.to_vec(),
        chunks,
    }
}

fn seal(file_key: &[u8; 32], header: &[u8], salt: [u8; 24], pt: &[u8]) -> Sealed {
    let pieces: Vec<(u64, &[u8])> = split(pt)
        .into_iter()
        .enumerate()
        .map(|(i, p)| (i as u64, p))
        .collect();
    seal_pieces(file_key, header, salt, &pieces)
}

/// ECDSA P-256 / SHA-256 over the signature label and `file`, `r || s`.
fn sign(id: &Identity, file: &[u8]) -> [u8; 64] {
    let key = SigningKey::from(id.secret_key());
    let digest = Sha256::new_with_prefix(SIGNATURE_LABEL).chain_update(file);
    let sig: Signature = key.sign_digest(digest);
    let mut out = [0u8; 64];
    out.copy_from_slice(&sig.to_bytes());
    out
}

fn signed(id: &Identity, mut file: Vec<u8>) -> Vec<u8> {
    let sig = sign(id, &file);
    file.extend_from_slice(&sig);
    file
}

/// Everything that makes one file.
#[derive(Clone)]
struct Plan {
    hdr: Hdr,
    file_key: [u8; 32],
    salt: [u8; 24],
    pt: Vec<u8>,
    /// Signs the file (normally the sender named in the header).
    signer: Option<Identity>,
    sender: Option<Identity>,
}

impl Plan {
    fn header(&self) -> Vec<u8> {
        self.hdr.bytes()
    }

    fn sealed(&self) -> Sealed {
        seal(&self.file_key, &self.header(), self.salt, &self.pt)
    }

    /// The file: header, payload and, if there is a signer, the signature.
    fn bytes(&self) -> Vec<u8> {
        self.finish(self.sealed().file())
    }

    /// Appends the signature to `file` if the plan has a signer.
    fn finish(&self, file: Vec<u8>) -> Vec<u8> {
        match &self.signer {
            Some(id) => signed(id, file),
            None => file,
        }
    }

    /// The first `n` full chunks of plaintext.
    fn chunks(&self, n: usize) -> Vec<u8> {
        self.pt[..n * CHUNK].to_vec()
    }
}

/// A plan for a file of a random `pt_len`-byte plaintext to `to`.
fn plan(
    rng: &mut ChaCha20Rng,
    to: &[(&Identity, Hint)],
    sender: Option<&Identity>,
    pt_len: usize,
) -> Plan {
    let pt = random_bytes(rng, pt_len);
    let mut file_key = [0u8; 32];
    rng.fill_bytes(&mut file_key);
    let stanzas = to
        .iter()
        .map(|(id, hint)| {
            let mut w = wrap(rng, id, sender, &file_key);
            match hint {
                Hint::Real => {}
                Hint::Zero => w.hint = [0; 4],
                Hint::Raw(h) => w.hint = *h,
            }
            w.stanza()
        })
        .collect();
    let serial = rng.next_u64();
    let mut salt = [0u8; 24];
    rng.fill_bytes(&mut salt);
    Plan {
        hdr: Hdr {
            magic: MAGIC.to_vec(),
            version: 1,
            suite: 1,
            chunk_log2: 14,
            header_len: None,
            created_at: T0,
            serial,
            sender: sender_field(sender),
            count: None,
            stanzas,
            ext_len: None,
            ext: Vec::new(),
            tail: Vec::new(),
        },
        file_key,
        salt,
        pt,
        signer: sender.cloned(),
        sender: sender.cloned(),
    }
}

/// A file from the real encoder, with all randomness from `rng`.
fn encrypt(
    rng: &mut ChaCha20Rng,
    to: &[&Identity],
    sender: Option<&Identity>,
    hide: bool,
    pt: &[u8],
) -> ([u8; 32], Vec<u8>) {
    let mut file_key = [0u8; 32];
    rng.clone().fill_bytes(&mut file_key);
    let mut e = Encryptor::new(to.iter().map(|id| id.to_recipient()))
        .expect("recipients")
        .created_at(T0)
        .hide_recipients(hide);
    if let Some(s) = sender {
        e = e.sender(s.clone());
    }
    let mut w = e
        .wrap_output_with_rng(Vec::new(), rng)
        .expect("encoder header");
    w.write_all(pt).expect("write to Vec");
    (file_key, w.finish().expect("finish to Vec"))
}

/// Base64 body lines of the armor of `data`.
fn armor_lines(data: &[u8]) -> Vec<String> {
    data.chunks(48).map(|c| STANDARD.encode(c)).collect()
}

const BEGIN: &str = "-----BEGIN KAPSEL ENCRYPTED FILE-----";
const END: &str = "-----END KAPSEL ENCRYPTED FILE-----";

fn armor_text(lines: &[String], eol: &str) -> Vec<u8> {
    let mut s = String::new();
    s.push_str(BEGIN);
    s.push_str(eol);
    for l in lines {
        s.push_str(l);
        s.push_str(eol);
    }
    s.push_str(END);
    s.push_str(eol);
    s.into_bytes()
}

/// Collects vectors.
struct Gen {
    k: Keys,
    out: Vec<Vector>,
}

/// One vector's description, before it is added.
struct V<'a> {
    name: &'a str,
    expect: Expect,
    ids: Vec<&'a Identity>,
    file_key: Option<[u8; 32]>,
    sender: Option<&'a Identity>,
    released: Vec<u8>,
    comment: &'a str,
    data: Vec<u8>,
    armor: bool,
}

impl<'a> V<'a> {
    fn new(name: &'a str, expect: Expect, comment: &'a str, data: Vec<u8>) -> Self {
        V {
            name,
            expect,
            ids: Vec::new(),
            file_key: None,
            sender: None,
            released: Vec::new(),
            comment,
            data,
            armor: false,
        }
    }

    fn ids(mut self, ids: &[&'a Identity]) -> Self {
        self.ids = ids.to_vec();
        self
    }

    fn key(mut self, k: [u8; 32]) -> Self {
        self.file_key = Some(k);
        self
    }

    fn plan(mut self, p: &'a Plan) -> Self {
        self.file_key = Some(p.file_key);
        self.sender = p.sender.as_ref();
        self
    }

    fn sender(mut self, s: &'a Identity) -> Self {
        self.sender = Some(s);
        self
    }

    fn released(mut self, r: &[u8]) -> Self {
        self.released = r.to_vec();
        self
    }

    fn armored(mut self) -> Self {
        self.armor = true;
        self
    }
}

impl Gen {
    fn add(&mut self, v: V<'_>) {
        assert!(
            !self.out.iter().any(|o| o.name == v.name),
            "duplicate vector name {}",
            v.name
        );
        assert!(
            v.expect == Expect::Success
                || v.expect == Expect::PayloadFailure
                || v.expect == Expect::SenderVerificationFailure
                || v.released.is_empty(),
            "{}: only success and payload or sender failures release plaintext",
            v.name
        );
        self.out.push(Vector {
            name: v.name.to_string(),
            expect: v.expect,
            armor: v.armor,
            identities: v
                .ids
                .iter()
                .map(|id| id.to_secret_string().to_string())
                .collect(),
            file_key: v.file_key,
            released: v.released,
            sender: v.sender.map(|s| s.to_recipient().to_string()),
            comment: v.comment.to_string(),
            data: v.data,
        });
    }
}

/// Every vector, in a fixed order.
pub fn vectors() -> Vec<Vector> {
    let mut g = Gen {
        k: Keys::new(),
        out: Vec::new(),
    };
    g.encoder_files();
    g.prefix();
    g.truncation();
    g.body_fields();
    g.points();
    g.stanzas();
    g.extensions();
    g.bit_flips();
    g.recipients();
    g.payload();
    g.chunk_counter();
    g.signed();
    g.armor();
    g.out
}

/// Writes every vector into `dir` (created if needed), after removing the
/// files already there; returns how many were written.
pub fn write_all(dir: &Path) -> io::Result<usize> {
    clear_dir(dir)?;
    let vectors = vectors();
    for v in &vectors {
        fs::write(dir.join(&v.name), v.encode())?;
    }
    Ok(vectors.len())
}

/// Creates `dir` if needed and removes the files in it.
pub(crate) fn clear_dir(dir: &Path) -> io::Result<()> {
    fs::create_dir_all(dir)?;
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            fs::remove_file(entry.path())?;
        }
    }
    Ok(())
}

impl Gen {
    /// Files from the real encoder.
    fn encoder_files(&mut self) {
        let k = self.k.clone();
        let a = &k.alice;
        for (name, len, comment) in [
            ("encoder_empty", 0, "empty plaintext: one empty final chunk"),
            ("encoder_1_byte", 1, "one-byte plaintext"),
            (
                "encoder_16383",
                CHUNK - 1,
                "one short final chunk of 16383 bytes",
            ),
            (
                "encoder_16384",
                CHUNK,
                "one full chunk, then an empty final chunk",
            ),
            (
                "encoder_16385",
                CHUNK + 1,
                "one full chunk, then a final chunk of 1 byte",
            ),
            (
                "encoder_32768",
                2 * CHUNK,
                "two full chunks, then an empty final chunk",
            ),
            (
                "encoder_40000",
                40000,
                "three chunks, the last of 7232 bytes",
            ),
        ] {
            let mut rng = seeded(name);
            let pt = random_bytes(&mut rng, len);
            let (fk, data) = encrypt(&mut rng, &[a], None, false, &pt);
            self.add(
                V::new(name, Expect::Success, comment, data)
                    .ids(&[a])
                    .key(fk)
                    .released(&pt),
            );
        }
        let mut rng = seeded("encoder_three_recipients");
        let pt = random_bytes(&mut rng, 1000);
        let (fk, data) = encrypt(&mut rng, &[&k.bob, &k.carol, a], None, false, &pt);
        self.add(
            V::new(
                "encoder_three_recipients",
                Expect::Success,
                "three recipients, the identity's stanza is the third",
                data,
            )
            .ids(&[a])
            .key(fk)
            .released(&pt),
        );
        let mut rng = seeded("encoder_hidden_recipients");
        let pt = random_bytes(&mut rng, 1000);
        let (fk, data) = encrypt(&mut rng, &[&k.bob, &k.carol, a], None, true, &pt);
        self.add(
            V::new(
                "encoder_hidden_recipients",
                Expect::Success,
                "three recipients with zero hints, the identity's stanza is the third",
                data,
            )
            .ids(&[a])
            .key(fk)
            .released(&pt),
        );
        for (name, len) in [("encoder_signed", 1000), ("encoder_signed_20000", 20000)] {
            let mut rng = seeded(name);
            let pt = random_bytes(&mut rng, len);
            let (fk, data) = encrypt(&mut rng, &[a], Some(&k.sam), false, &pt);
            self.add(
                V::new(
                    name,
                    Expect::Success,
                    "signed by sam (HPKE auth mode, ECDSA signature at the end)",
                    data,
                )
                .ids(&[a])
                .key(fk)
                .sender(&k.sam)
                .released(&pt),
            );
        }
        let mut rng = seeded("encoder_signed_empty");
        let (fk, data) = encrypt(&mut rng, &[a, &k.bob], Some(&k.sam), false, &[]);
        self.add(
            V::new(
                "encoder_signed_empty",
                Expect::Success,
                "signed, empty plaintext, two recipients, the identity is bob (second)",
                data,
            )
            .ids(&[&k.bob])
            .key(fk)
            .sender(&k.sam),
        );
        let mut rng = seeded("encoder_signed_to_self");
        let pt = random_bytes(&mut rng, 300);
        let (fk, data) = encrypt(&mut rng, &[&k.sam], Some(&k.sam), false, &pt);
        self.add(
            V::new(
                "encoder_signed_to_self",
                Expect::Success,
                "signed by sam to sam himself",
                data,
            )
            .ids(&[&k.sam])
            .key(fk)
            .sender(&k.sam)
            .released(&pt),
        );
    }

    /// Magic, version, suite, chunk size and header length.
    fn prefix(&mut self) {
        let k = self.k.clone();
        let a = &k.alice;
        let mut rng = seeded("prefix");
        let p = plan(&mut rng, &[(a, Hint::Real)], None, 100);
        let good = p.bytes();
        let with_magic = |m: &[u8]| {
            let mut v = m.to_vec();
            v.extend_from_slice(&good[8..]);
            v
        };
        let nk = Expect::NotKapsel;
        for (name, data, comment) in [
            (
                "magic_first_byte_flipped",
                flip(good.clone(), 0, 0),
                "first magic byte 0x8a",
            ),
            (
                "magic_high_bit_stripped",
                flip(good.clone(), 0, 7),
                "first magic byte 0x0b (8-bit channel stripped)",
            ),
            (
                "magic_lowercase",
                with_magic(b"\x8bkapsel\n"),
                "magic in lower case",
            ),
            (
                "magic_last_byte_crlf",
                {
                    let mut v = b"\x8bKAPSEL\r\n".to_vec();
                    v.extend_from_slice(&good[8..]);
                    v
                },
                "LF of the magic turned into CRLF by a text-mode transfer",
            ),
            (
                "magic_short_mismatch",
                b"\x8bKAX".to_vec(),
                "4-byte input that differs from the magic in its 4th byte",
            ),
            ("magic_one_zero_byte", vec![0], "a single zero byte"),
            (
                "magic_age_file",
                b"age-encryption.org/v1\n-> X25519 abc\n".to_vec(),
                "an age file",
            ),
            (
                "magic_png",
                b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec(),
                "a PNG file",
            ),
        ] {
            self.add(V::new(name, nk, comment, data).ids(&[a]).plan(&p));
        }
        let mal = Expect::MalformedHeader;
        let uns = Expect::Unsupported;
        let set = |at: usize, bytes: &[u8]| {
            let mut v = good.clone();
            v[at..at + bytes.len()].copy_from_slice(bytes);
            v
        };
        for (name, data, expect, comment) in [
            ("version_0", set(8, &[0]), uns, "version 0"),
            ("version_2", set(8, &[2]), uns, "version 2, the rest a valid v1 header"),
            ("version_255", set(8, &[0xff]), uns, "version 255"),
            ("version_2_nothing_after", good[..8].iter().copied().chain([2]).collect(), uns, "magic and version 2, then end of input: the version is judged as soon as it is read"),
            ("version_2_garbage_after", {
                let mut v = good[..8].to_vec();
                v.push(2);
                v.extend([0xee; 40]);
                v
            }, uns, "version 2 followed by bytes that are no v1 header: nothing after the version is interpreted"),
            ("suite_0", set(9, &[0, 0]), uns, "suite 0x0000"),
            ("suite_2", set(9, &[0, 2]), uns, "suite 0x0002"),
            ("suite_byte_swapped", set(9, &[1, 0]), uns, "suite 0x0100 (little-endian 1)"),
            ("suite_ffff", set(9, &[0xff, 0xff]), uns, "suite 0xffff"),
            ("suite_2_nothing_after", {
                let mut v = good[..9].to_vec();
                v.extend_from_slice(&[0, 2]);
                v
            }, uns, "input ends right after suite 0x0002"),
            ("suite_2_bad_chunk_size_and_length", {
                let mut v = set(9, &[0, 2, 13]);
                v[12..16].copy_from_slice(&[0, 0, 0, 0]);
                v
            }, uns, "suite 0x0002 with chunk size 13 and header length 0: the suite is judged first"),
            ("chunk_size_13", set(11, &[13]), mal, "chunk_size_log2 13"),
            ("chunk_size_15", set(11, &[15]), mal, "chunk_size_log2 15"),
            ("chunk_size_0", set(11, &[0]), mal, "chunk_size_log2 0"),
            ("chunk_size_high_bit", set(11, &[0x8e]), mal, "chunk_size_log2 0x8e"),
            ("header_len_0", set(12, &0u32.to_be_bytes()), mal, "header_len 0"),
            ("header_len_157", set(12, &157u32.to_be_bytes()), mal, "header_len 157, one below MIN_HEADER_LEN"),
            ("header_len_159", set(12, &159u32.to_be_bytes()), mal, "header_len one more than the header: the first payload byte becomes a trailing header byte"),
            ("header_len_65537", set(12, &65537u32.to_be_bytes()), mal, "header_len one above MAX_HEADER_LEN"),
            ("header_len_2_pow_31", set(12, &0x8000_0000u32.to_be_bytes()), mal, "header_len 2^31 (negative as a signed 32-bit integer)"),
            ("header_len_ffffffff", set(12, &u32::MAX.to_be_bytes()), mal, "header_len 2^32-1"),
            ("header_len_65536_short_input", set(12, &65536u32.to_be_bytes()), mal, "header_len 65536 but the file is shorter: truncated header"),
        ] {
            self.add(V::new(name, expect, comment, data).ids(&[a]).plan(&p));
        }
        // A header one byte shorter than it declares, with two stanzas, so
        // that the shorter length is still in range: the extension length
        // field runs past header_len.
        let mut rng = seeded("header_len_minus_one");
        let mut p2 = plan(
            &mut rng,
            &[(&k.bob, Hint::Real), (a, Hint::Real)],
            None,
            100,
        );
        let true_len = p2.header().len() as u32;
        p2.hdr.header_len = Some(true_len - 1);
        let data = p2.bytes();
        self.add(
            V::new(
                "header_len_minus_one",
                mal,
                "header_len one less than the header: the extension length field runs past it",
                data,
            )
            .ids(&[a])
            .plan(&p2),
        );
        // Exactly MAX_HEADER_LEN: 63 unknown stanzas of the largest body, one
        // P-256 stanza and an extension record for the rest.
        let mut rng = seeded("header_len_65536");
        let mut p3 = plan(&mut rng, &[(a, Hint::Real)], None, 100);
        for i in 0..63u16 {
            let body = random_bytes(&mut rng, 1024);
            p3.hdr.stanzas.push(raw_stanza(0x0100 + i, &body));
        }
        let now = p3.header().len();
        let rest = 65536 - now - 4;
        p3.hdr.ext = ext(0x0042, &random_bytes(&mut rng, rest));
        assert_eq!(p3.header().len(), 65536);
        let data = p3.bytes();
        self.add(
            V::new(
                "header_len_65536",
                Expect::Success,
                "a header of exactly MAX_HEADER_LEN bytes: 63 unknown stanzas of 1024 bytes, one P-256 stanza, a 610-byte extension",
                data,
            )
            .ids(&[a])
            .plan(&p3)
            .released(&p3.pt),
        );
    }

    /// End of input inside each header field.
    fn truncation(&mut self) {
        let k = self.k.clone();
        let a = &k.alice;
        let mut rng = seeded("truncation");
        let p = plan(&mut rng, &[(a, Hint::Real)], None, 100);
        let good = p.bytes();
        let mal = Expect::MalformedHeader;
        for (name, at, comment) in [
            ("truncated_empty", 0, "empty input"),
            ("truncated_magic_1", 1, "only the first magic byte"),
            ("truncated_magic_7", 7, "7 of the 8 magic bytes"),
            ("truncated_before_version", 8, "the magic only"),
            ("truncated_before_suite", 9, "magic and version"),
            ("truncated_in_suite", 10, "one byte of the suite"),
            (
                "truncated_before_chunk_size",
                11,
                "input ends before chunk_size_log2",
            ),
            ("truncated_in_header_len", 14, "two bytes of header_len"),
            ("truncated_after_prefix", 16, "the 16-byte prefix only"),
            (
                "truncated_in_created_at",
                20,
                "input ends inside created_at",
            ),
            ("truncated_in_serial", 28, "input ends inside serial"),
            (
                "truncated_before_sender_kind",
                32,
                "input ends before sender_kind",
            ),
            (
                "truncated_in_stanza_count",
                34,
                "input ends inside stanza_count",
            ),
            (
                "truncated_in_stanza_type",
                36,
                "input ends inside stanza_type",
            ),
            ("truncated_in_body_len", 38, "input ends inside body_len"),
            ("truncated_in_hint", 41, "input ends inside the hint"),
            ("truncated_in_enc", 80, "input ends inside enc"),
            (
                "truncated_in_wrapped_key",
                130,
                "input ends inside wrapped_key",
            ),
            (
                "truncated_in_extensions_len",
                157,
                "input ends inside extensions_len (one byte before header_len)",
            ),
        ] {
            self.add(
                V::new(name, mal, comment, good[..at].to_vec())
                    .ids(&[a])
                    .plan(&p),
            );
        }
        let mut rng = seeded("truncation signed");
        let ps = plan(&mut rng, &[(a, Hint::Real)], Some(&k.sam), 100);
        let good = ps.bytes();
        self.add(
            V::new(
                "truncated_in_sender_key",
                mal,
                "signed header, input ends inside sender_key",
                good[..60].to_vec(),
            )
            .ids(&[a])
            .plan(&ps),
        );
        let mut rng = seeded("truncation ext");
        let mut pe = plan(&mut rng, &[(a, Hint::Real)], None, 100);
        pe.hdr.ext = ext(0x0010, b"some extension value");
        let good = pe.bytes();
        let cut = pe.header().len() - 5;
        self.add(
            V::new(
                "truncated_in_extension_record",
                mal,
                "input ends inside an extension record's value",
                good[..cut].to_vec(),
            )
            .ids(&[a])
            .plan(&pe),
        );
    }

    /// created_at, serial, sender_kind, stanza_count.
    fn body_fields(&mut self) {
        let k = self.k.clone();
        let a = &k.alice;
        let mal = Expect::MalformedHeader;
        let cases: Vec<(&str, Expect, &str, Box<dyn Fn(&mut Plan)>)> = vec![
            ("created_at_max", Expect::Success, "created_at = 253402300799 (9999-12-31T23:59:59Z)", Box::new(|p: &mut Plan| p.hdr.created_at = MAX_CREATED_AT)),
            ("created_at_zero", Expect::Success, "created_at = 0 (no lower bound in the format)", Box::new(|p: &mut Plan| p.hdr.created_at = 0)),
            ("created_at_max_plus_one", mal, "created_at = 253402300800", Box::new(|p: &mut Plan| p.hdr.created_at = MAX_CREATED_AT + 1)),
            ("created_at_u64_max", mal, "created_at = 2^64-1", Box::new(|p: &mut Plan| p.hdr.created_at = u64::MAX)),
            ("serial_zero", Expect::Success, "serial = 0", Box::new(|p: &mut Plan| p.hdr.serial = 0)),
            ("serial_u64_max", Expect::Success, "serial = 2^64-1", Box::new(|p: &mut Plan| p.hdr.serial = u64::MAX)),
            ("sender_kind_2", mal, "sender_kind 0x02", Box::new(|p: &mut Plan| p.hdr.sender = vec![2])),
            ("sender_kind_ff", mal, "sender_kind 0xff", Box::new(|p: &mut Plan| p.hdr.sender = vec![0xff])),
            ("sender_kind_2_with_key", mal, "sender_kind 0x02 followed by a valid point", Box::new(|p: &mut Plan| {
                let mut s = vec![2];
                s.extend_from_slice(&wire(&identity("sam")));
                p.hdr.sender = s;
            })),
            ("stanza_count_0", mal, "stanza_count 0, the stanza still present", Box::new(|p: &mut Plan| p.hdr.count = Some(0))),
            ("stanza_count_0_no_stanza", mal, "stanza_count 0 and no stanza, padded to MIN_HEADER_LEN with an extension", Box::new(|p: &mut Plan| {
                p.hdr.count = Some(0);
                p.hdr.stanzas.clear();
                p.hdr.ext = ext(0x0001, &[0u8; 117]);
            })),
            ("stanza_count_2_one_present", mal, "stanza_count 2 with one stanza: the second runs past header_len", Box::new(|p: &mut Plan| p.hdr.count = Some(2))),
            ("stanza_count_1_two_present", mal, "stanza_count 1 with two stanzas: the second stanza's bytes are read as extensions_len and records", Box::new(|p: &mut Plan| {
                let extra = raw_stanza(0x0002, &[0x55; 40]);
                p.hdr.stanzas.push(extra);
                p.hdr.count = Some(1);
            })),
            ("stanza_count_257", mal, "stanza_count 257", Box::new(|p: &mut Plan| p.hdr.count = Some(257))),
            ("stanza_count_ffff", mal, "stanza_count 65535", Box::new(|p: &mut Plan| p.hdr.count = Some(0xffff))),
        ];
        for (name, expect, comment, f) in cases {
            let mut rng = seeded(name);
            let mut p = plan(&mut rng, &[(a, Hint::Real)], None, 100);
            f(&mut p);
            let data = p.bytes();
            let released = if expect == Expect::Success {
                p.pt.clone()
            } else {
                Vec::new()
            };
            self.add(
                V::new(name, expect, comment, data)
                    .ids(&[a])
                    .plan(&p)
                    .released(&released),
            );
        }
    }

    /// Encapsulated keys and sender keys that are not valid points.
    fn points(&mut self) {
        let k = self.k.clone();
        let a = &k.alice;
        let mal = Expect::MalformedHeader;
        // A point with a small x coordinate, for the non-reduced encoding x + p.
        let (small_x, small_y) = (0u8..=255)
            .find_map(|x| {
                let mut c = [0u8; 33];
                c[0] = 2;
                c[32] = x;
                PublicKey::from_sec1_bytes(&c).ok().map(|pk| {
                    let u = pk.to_encoded_point(false);
                    let mut xb = [0u8; 32];
                    xb.copy_from_slice(u.x().expect("x"));
                    let mut yb = [0u8; 32];
                    yb.copy_from_slice(u.y().expect("y"));
                    (xb, yb)
                })
            })
            .expect("a point with x < 256");
        let point = |x: &[u8; 32], y: &[u8; 32], first: u8| {
            let mut v = vec![first];
            v.extend_from_slice(x);
            v.extend_from_slice(y);
            v
        };
        let non_reduced = point(&be_add(&small_x, &P), &small_y, 4);
        assert!(!is_valid_point(&non_reduced));
        type Edit = Box<dyn Fn(&[u8]) -> Vec<u8>>;
        let enc_cases: Vec<(&str, &str, Edit)> = vec![
            (
                "enc_identity",
                "enc is 65 zero bytes (the identity's one-byte encoding 0x00, padded)",
                Box::new(|_e: &[u8]| vec![0u8; 65]),
            ),
            (
                "enc_compressed_in_65_bytes",
                "enc starts with 0x02: a compressed encoding followed by 32 more bytes",
                Box::new(|e: &[u8]| {
                    let mut v = e.to_vec();
                    v[0] = 2 + (e[64] & 1);
                    v
                }),
            ),
            (
                "enc_compressed_03",
                "enc starts with 0x03",
                Box::new(|e: &[u8]| {
                    let mut v = e.to_vec();
                    v[0] = 3;
                    v
                }),
            ),
            (
                "enc_hybrid",
                "enc in hybrid form (0x06/0x07 with the parity of y)",
                Box::new(|e: &[u8]| {
                    let mut v = e.to_vec();
                    v[0] = 6 + (e[64] & 1);
                    v
                }),
            ),
            (
                "enc_off_curve",
                "enc with the lowest bit of y flipped: not on the curve",
                Box::new(|e: &[u8]| {
                    let mut v = e.to_vec();
                    v[64] ^= 1;
                    v
                }),
            ),
            (
                "enc_zero_coordinates",
                "enc = 0x04 || 0^64: (0, 0) is not on the curve",
                Box::new(|_e: &[u8]| {
                    let mut v = vec![0u8; 65];
                    v[0] = 4;
                    v
                }),
            ),
            (
                "enc_x_equals_p",
                "enc with x = p",
                Box::new(|e: &[u8]| {
                    let mut v = e.to_vec();
                    v[1..33].copy_from_slice(&P);
                    v
                }),
            ),
            (
                "enc_x_not_reduced",
                "enc = (x + p, y) for a valid point (x, y): a coordinate >= p",
                Box::new(move |_e: &[u8]| non_reduced.clone()),
            ),
            (
                "enc_all_ff",
                "enc = 0x04 || 0xff^64",
                Box::new(|_e: &[u8]| {
                    let mut v = vec![0xffu8; 65];
                    v[0] = 4;
                    v
                }),
            ),
        ];
        for (name, comment, edit) in enc_cases {
            let mut rng = seeded(name);
            let mut p = plan(&mut rng, &[(a, Hint::Real)], None, 100);
            let mut w = wrap(&mut rng, a, None, &p.file_key);
            w.enc = edit(&w.enc);
            assert!(!is_valid_point(&w.enc), "{name}");
            p.hdr.stanzas = vec![w.stanza()];
            let data = p.bytes();
            self.add(V::new(name, mal, comment, data).ids(&[a]).plan(&p));
        }
        // Wrong lengths inside the P-256 stanza body.
        let len_cases: Vec<(&str, &str, Box<dyn Fn(&Wrapped) -> Vec<u8>>)> = vec![
            (
                "enc_compressed_33_bytes",
                "enc as a 33-byte compressed point: body_len 85",
                Box::new(|w: &Wrapped| {
                    let mut body = w.hint.to_vec();
                    body.push(2 + (w.enc[64] & 1));
                    body.extend_from_slice(&w.enc[1..33]);
                    body.extend_from_slice(&w.wrapped);
                    body
                }),
            ),
            (
                "enc_identity_one_byte",
                "enc as the one-byte identity encoding 0x00: body_len 53",
                Box::new(|w: &Wrapped| {
                    let mut body = w.hint.to_vec();
                    body.push(0);
                    body.extend_from_slice(&w.wrapped);
                    body
                }),
            ),
            (
                "enc_one_byte_short",
                "enc of 64 bytes (last byte missing): body_len 116",
                Box::new(|w: &Wrapped| {
                    let mut body = w.hint.to_vec();
                    body.extend_from_slice(&w.enc[..64]);
                    body.extend_from_slice(&w.wrapped);
                    body
                }),
            ),
            (
                "enc_one_byte_long",
                "enc of 66 bytes (an extra zero byte): body_len 118",
                Box::new(|w: &Wrapped| {
                    let mut body = w.hint.to_vec();
                    body.extend_from_slice(&w.enc);
                    body.push(0);
                    body.extend_from_slice(&w.wrapped);
                    body
                }),
            ),
            (
                "wrapped_key_47_bytes",
                "wrapped_key one byte short: body_len 116",
                Box::new(|w: &Wrapped| {
                    let mut body = w.hint.to_vec();
                    body.extend_from_slice(&w.enc);
                    body.extend_from_slice(&w.wrapped[..47]);
                    body
                }),
            ),
            (
                "wrapped_key_49_bytes",
                "wrapped_key one byte long: body_len 118",
                Box::new(|w: &Wrapped| {
                    let mut body = w.hint.to_vec();
                    body.extend_from_slice(&w.enc);
                    body.extend_from_slice(&w.wrapped);
                    body.push(0);
                    body
                }),
            ),
            (
                "wrapped_key_no_tag",
                "wrapped_key without its 16-byte tag: body_len 101",
                Box::new(|w: &Wrapped| {
                    let mut body = w.hint.to_vec();
                    body.extend_from_slice(&w.enc);
                    body.extend_from_slice(&w.wrapped[..32]);
                    body
                }),
            ),
            (
                "wrapped_key_64_bytes",
                "wrapped_key of 64 bytes (a 48-byte key sealed): body_len 133",
                Box::new(|w: &Wrapped| {
                    let mut body = w.hint.to_vec();
                    body.extend_from_slice(&w.enc);
                    body.extend_from_slice(&w.wrapped);
                    body.extend_from_slice(&[0x11; 16]);
                    body
                }),
            ),
        ];
        for (name, comment, body) in len_cases {
            let mut rng = seeded(name);
            let mut p = plan(&mut rng, &[(a, Hint::Real)], None, 100);
            let w = wrap(&mut rng, a, None, &p.file_key);
            let b = body(&w);
            p.hdr.stanzas = vec![raw_stanza(1, &b)];
            // Keep the header at least MIN_HEADER_LEN long, so the length
            // rule of the stanza is what fails.
            let short = 158usize.saturating_sub(p.header().len());
            if short > 0 {
                p.hdr.ext = ext(0x0001, &vec![0u8; short.max(4) - 4]);
            }
            let data = p.bytes();
            self.add(V::new(name, mal, comment, data).ids(&[a]).plan(&p));
        }
        // An invalid enc in a stanza for someone else, after the one that
        // would open: points are validated before any decryption.
        let mut rng = seeded("enc_off_curve_in_other_stanza");
        let mut p = plan(
            &mut rng,
            &[(a, Hint::Real), (&k.bob, Hint::Real)],
            None,
            100,
        );
        let mut w = wrap(&mut rng, &k.bob, None, &p.file_key);
        w.enc[64] ^= 1;
        p.hdr.stanzas[1] = w.stanza();
        let data = p.bytes();
        self.add(
            V::new("enc_off_curve_in_other_stanza", mal, "the identity's stanza is first and valid; the second stanza (for bob) has an off-curve enc", data)
                .ids(&[a])
                .plan(&p),
        );
        let mut rng = seeded("enc_off_curve_no_identity_matches");
        let mut p = plan(&mut rng, &[(&k.bob, Hint::Real)], None, 100);
        let mut w = wrap(&mut rng, &k.bob, None, &p.file_key);
        w.enc[64] ^= 1;
        p.hdr.stanzas[0] = w.stanza();
        let data = p.bytes();
        self.add(
            V::new("enc_off_curve_no_identity_matches", mal, "an off-curve enc in the only stanza, which is not for the identity: malformed, not no match", data)
                .ids(&[a])
                .plan(&p),
        );
        // A valid point that is not the one sealed to: the stanza does not open.
        let mut rng = seeded("enc_negated");
        let mut p = plan(&mut rng, &[(a, Hint::Real)], None, 100);
        let mut w = wrap(&mut rng, a, None, &p.file_key);
        let mut y = [0u8; 32];
        y.copy_from_slice(&w.enc[33..]);
        w.enc[33..].copy_from_slice(&be_sub(&P, &y));
        assert!(is_valid_point(&w.enc));
        p.hdr.stanzas[0] = w.stanza();
        let data = p.bytes();
        self.add(
            V::new("enc_negated", Expect::HeaderAuthFailure, "enc replaced by its negation (x, p - y), a valid point: the hinted stanza does not open", data)
                .ids(&[a])
                .plan(&p),
        );
        // An invalid enc inside a stanza of an unknown type is opaque.
        let mut rng = seeded("enc_off_curve_in_unknown_stanza");
        let mut p = plan(&mut rng, &[(a, Hint::Real)], None, 100);
        let mut w = wrap(&mut rng, &k.bob, None, &p.file_key);
        w.enc[64] ^= 1;
        let mut body = w.hint.to_vec();
        body.extend_from_slice(&w.enc);
        body.extend_from_slice(&w.wrapped);
        p.hdr.stanzas.insert(0, raw_stanza(2, &body));
        let data = p.bytes();
        self.add(
            V::new(
                "enc_off_curve_in_unknown_stanza",
                Expect::Success,
                "an off-curve point inside a stanza of unknown type 0x0002 is never interpreted",
                data,
            )
            .ids(&[a])
            .plan(&p)
            .released(&p.pt),
        );
        // Sender keys.
        let sender_cases: Vec<(&str, &str, Edit)> = vec![
            (
                "sender_key_identity",
                "sender_key is 65 zero bytes",
                Box::new(|_s: &[u8]| vec![0u8; 65]),
            ),
            (
                "sender_key_compressed",
                "sender_key starts with 0x02/0x03 (compressed) and is followed by y",
                Box::new(|s: &[u8]| {
                    let mut v = s.to_vec();
                    v[0] = 2 + (s[64] & 1);
                    v
                }),
            ),
            (
                "sender_key_hybrid",
                "sender_key in hybrid form (0x06/0x07)",
                Box::new(|s: &[u8]| {
                    let mut v = s.to_vec();
                    v[0] = 6 + (s[64] & 1);
                    v
                }),
            ),
            (
                "sender_key_off_curve",
                "sender_key with the lowest bit of y flipped",
                Box::new(|s: &[u8]| {
                    let mut v = s.to_vec();
                    v[64] ^= 1;
                    v
                }),
            ),
            (
                "sender_key_x_equals_p",
                "sender_key with x = p",
                Box::new(|s: &[u8]| {
                    let mut v = s.to_vec();
                    v[1..33].copy_from_slice(&P);
                    v
                }),
            ),
            (
                "sender_key_zero_coordinates",
                "sender_key = 0x04 || 0^64",
                Box::new(|_s: &[u8]| {
                    let mut v = vec![0u8; 65];
                    v[0] = 4;
                    v
                }),
            ),
        ];
        for (name, comment, edit) in sender_cases {
            let mut rng = seeded(name);
            let mut p = plan(&mut rng, &[(a, Hint::Real)], Some(&k.sam), 100);
            let key = edit(&wire(&k.sam));
            assert!(!is_valid_point(&key), "{name}");
            let mut s = vec![1];
            s.extend_from_slice(&key);
            p.hdr.sender = s;
            let data = p.bytes();
            self.add(V::new(name, mal, comment, data).ids(&[a]).plan(&p));
        }
        let mut rng = seeded("sender_key_off_curve_no_identity_matches");
        let mut p = plan(&mut rng, &[(&k.bob, Hint::Real)], Some(&k.sam), 100);
        p.hdr.sender[65] ^= 1;
        let data = p.bytes();
        self.add(
            V::new(
                "sender_key_off_curve_no_identity_matches",
                mal,
                "an off-curve sender key in a file not for the identity: malformed, not no match",
                data,
            )
            .ids(&[a])
            .plan(&p),
        );
    }

    /// Stanza types and lengths, duplicates, counts.
    fn stanzas(&mut self) {
        let k = self.k.clone();
        let a = &k.alice;
        let mal = Expect::MalformedHeader;
        let ok = Expect::Success;
        let cases: Vec<(&str, Expect, &str, Box<dyn Fn(&mut Plan, &mut ChaCha20Rng)>)> = vec![
            (
                "unknown_stanza_before",
                ok,
                "an unknown stanza (type 0x0002, 50 bytes) before the P-256 stanza is skipped",
                Box::new(|p: &mut Plan, r: &mut ChaCha20Rng| {
                    p.hdr.stanzas.insert(0, raw_stanza(2, &random_bytes(r, 50)))
                }),
            ),
            (
                "unknown_stanza_after",
                ok,
                "an unknown stanza (type 0x0100, 200 bytes) after the P-256 stanza is skipped",
                Box::new(|p: &mut Plan, r: &mut ChaCha20Rng| {
                    p.hdr
                        .stanzas
                        .push(raw_stanza(0x0100, &random_bytes(r, 200)))
                }),
            ),
            (
                "unknown_stanza_type_ffff",
                ok,
                "an unknown stanza of type 0xffff",
                Box::new(|p: &mut Plan, r: &mut ChaCha20Rng| {
                    p.hdr
                        .stanzas
                        .insert(0, raw_stanza(0xffff, &random_bytes(r, 10)))
                }),
            ),
            (
                "unknown_stanza_type_0",
                ok,
                "an unknown stanza of type 0x0000",
                Box::new(|p: &mut Plan, r: &mut ChaCha20Rng| {
                    p.hdr.stanzas.insert(0, raw_stanza(0, &random_bytes(r, 10)))
                }),
            ),
            (
                "unknown_stanza_empty_body",
                ok,
                "an unknown stanza with body_len 0",
                Box::new(|p: &mut Plan, _r: &mut ChaCha20Rng| {
                    p.hdr.stanzas.insert(0, raw_stanza(0x1234, &[]))
                }),
            ),
            (
                "unknown_stanza_body_1024",
                ok,
                "an unknown stanza with the largest body, 1024 bytes",
                Box::new(|p: &mut Plan, r: &mut ChaCha20Rng| {
                    p.hdr.stanzas.push(raw_stanza(7, &random_bytes(r, 1024)))
                }),
            ),
            (
                "unknown_stanzas_same_type",
                ok,
                "two unknown stanzas of one type with different bodies",
                Box::new(|p: &mut Plan, _r: &mut ChaCha20Rng| {
                    p.hdr.stanzas.push(raw_stanza(9, b"one"));
                    p.hdr.stanzas.push(raw_stanza(9, b"two"));
                }),
            ),
            (
                "unknown_stanza_body_1025",
                mal,
                "an unknown stanza with body_len 1025",
                Box::new(|p: &mut Plan, r: &mut ChaCha20Rng| {
                    p.hdr.stanzas.push(raw_stanza(7, &random_bytes(r, 1025)))
                }),
            ),
            (
                "unknown_stanza_body_len_ffff",
                mal,
                "an unknown stanza with body_len 65535 (the header holds 10 bytes of it)",
                Box::new(|p: &mut Plan, r: &mut ChaCha20Rng| {
                    p.hdr
                        .stanzas
                        .push(raw_stanza_len(7, 0xffff, &random_bytes(r, 10)))
                }),
            ),
            (
                "unknown_stanza_runs_past_header",
                mal,
                "the last unknown stanza's body_len (100) runs past header_len",
                Box::new(|p: &mut Plan, r: &mut ChaCha20Rng| {
                    p.hdr
                        .stanzas
                        .push(raw_stanza_len(7, 100, &random_bytes(r, 30)));
                }),
            ),
            (
                "p256_stanza_body_len_0",
                mal,
                "a type 0x0001 stanza with body_len 0",
                Box::new(|p: &mut Plan, _r: &mut ChaCha20Rng| {
                    p.hdr.stanzas.push(raw_stanza(1, &[]))
                }),
            ),
            (
                "p256_stanza_body_len_1024",
                mal,
                "a type 0x0001 stanza with body_len 1024",
                Box::new(|p: &mut Plan, r: &mut ChaCha20Rng| {
                    p.hdr.stanzas.push(raw_stanza(1, &random_bytes(r, 1024)))
                }),
            ),
            (
                "duplicate_stanza",
                mal,
                "the P-256 stanza twice",
                Box::new(|p: &mut Plan, _r: &mut ChaCha20Rng| {
                    let s = p.hdr.stanzas[0].clone();
                    p.hdr.stanzas.push(s);
                }),
            ),
            (
                "duplicate_stanza_not_adjacent",
                mal,
                "stanzas A, B, A",
                Box::new(|p: &mut Plan, r: &mut ChaCha20Rng| {
                    let s = p.hdr.stanzas[0].clone();
                    p.hdr.stanzas.push(raw_stanza(2, &random_bytes(r, 20)));
                    p.hdr.stanzas.push(s);
                }),
            ),
            (
                "duplicate_unknown_stanza",
                mal,
                "an unknown stanza twice",
                Box::new(|p: &mut Plan, r: &mut ChaCha20Rng| {
                    let s = raw_stanza(2, &random_bytes(r, 20));
                    p.hdr.stanzas.push(s.clone());
                    p.hdr.stanzas.push(s);
                }),
            ),
            (
                "duplicate_empty_unknown_stanza",
                mal,
                "an unknown stanza with an empty body twice",
                Box::new(|p: &mut Plan, _r: &mut ChaCha20Rng| {
                    p.hdr.stanzas.push(raw_stanza(3, &[]));
                    p.hdr.stanzas.push(raw_stanza(3, &[]));
                }),
            ),
        ];
        for (name, expect, comment, f) in cases {
            let mut rng = seeded(name);
            let mut p = plan(&mut rng, &[(a, Hint::Real)], None, 100);
            f(&mut p, &mut rng);
            let data = p.bytes();
            let released = if expect == ok {
                p.pt.clone()
            } else {
                Vec::new()
            };
            self.add(
                V::new(name, expect, comment, data)
                    .ids(&[a])
                    .plan(&p)
                    .released(&released),
            );
        }
        // Headers without a P-256 stanza.
        let mut rng = seeded("only_unknown_stanzas");
        let mut p = plan(&mut rng, &[(a, Hint::Real)], None, 100);
        p.hdr.stanzas = vec![raw_stanza(2, &random_bytes(&mut rng, 117))];
        assert_eq!(p.header().len(), 158);
        let data = p.bytes();
        self.add(
            V::new(
                "only_unknown_stanzas",
                Expect::NoMatch,
                "a 158-byte header whose only stanza has unknown type 0x0002",
                data,
            )
            .ids(&[a])
            .plan(&p),
        );
        let mut rng = seeded("only_unknown_stanzas_too_short");
        let mut p = plan(&mut rng, &[(a, Hint::Real)], None, 100);
        p.hdr.stanzas = vec![raw_stanza(2, &random_bytes(&mut rng, 116))];
        assert_eq!(p.header().len(), 157);
        let data = p.bytes();
        self.add(
            V::new(
                "only_unknown_stanzas_too_short",
                mal,
                "a header of unknown stanzas only, 157 bytes: below MIN_HEADER_LEN",
                data,
            )
            .ids(&[a])
            .plan(&p),
        );
        // 256 and 257 recipients.
        for (name, count, expect) in [
            ("recipients_256_match_last", 256usize, ok),
            ("recipients_257", 257, mal),
        ] {
            let mut rng = seeded(name);
            let mut file_key = [0u8; 32];
            rng.fill_bytes(&mut file_key);
            let mut stanzas = Vec::new();
            for i in 0..count - 1 {
                let other = identity(&format!("{name} {i}"));
                stanzas.push(wrap(&mut rng, &other, None, &file_key).stanza());
            }
            stanzas.push(wrap(&mut rng, a, None, &file_key).stanza());
            let mut p = plan(&mut rng, &[(a, Hint::Real)], None, 500);
            p.file_key = file_key;
            p.hdr.stanzas = stanzas;
            let data = p.bytes();
            let released = if expect == ok {
                p.pt.clone()
            } else {
                Vec::new()
            };
            let comment = if expect == ok {
                "256 stanzas (MAX_RECIPIENTS), the identity's is the last"
            } else {
                "257 stanzas: one above MAX_RECIPIENTS"
            };
            self.add(
                V::new(name, expect, comment, data)
                    .ids(&[a])
                    .plan(&p)
                    .released(&released),
            );
        }
    }

    /// The extension area.
    fn extensions(&mut self) {
        let k = self.k.clone();
        let a = &k.alice;
        let mal = Expect::MalformedHeader;
        let uns = Expect::Unsupported;
        let ok = Expect::Success;
        let cat = |parts: &[Vec<u8>]| parts.concat();
        let cases: Vec<(&str, Expect, &str, Vec<u8>, Option<u16>, Vec<u8>)> = vec![
            ("ext_noncritical", ok, "one non-critical extension (type 0x0001, 5 bytes) is ignored", ext(1, b"hello"), None, vec![]),
            ("ext_three_ascending", ok, "types 0x0001, 0x0002, 0x7fff", cat(&[ext(1, b"a"), ext(2, b""), ext(0x7fff, b"ccc")]), None, vec![]),
            ("ext_empty_value", ok, "a non-critical record with ext_len 0", ext(0x0abc, b""), None, vec![]),
            ("ext_area_8192", ok, "an extension area of exactly MAX_EXTENSIONS_LEN bytes", ext(0x0100, &[0x5a; 8188]), None, vec![]),
            ("ext_critical_8000", uns, "critical extension 0x8000", ext(0x8000, b""), None, vec![]),
            ("ext_critical_ffff", uns, "critical extension 0xffff with a value", ext(0xffff, b"xyz"), None, vec![]),
            ("ext_critical_after_noncritical", uns, "non-critical 0x0001, then critical 0x8001", cat(&[ext(1, b"a"), ext(0x8001, b"b")]), None, vec![]),
            ("ext_critical_then_unsorted", uns, "critical 0x9000 first, then 0x0001 out of order: the critical record is met first", cat(&[ext(0x9000, b""), ext(1, b"")]), None, vec![]),
            ("ext_critical_type_only", uns, "an area of 2 bytes holding a critical type: the type is judged before its missing length", vec![0x80, 0x01], None, vec![]),
            ("ext_critical_type_and_one_byte", uns, "an area of 3 bytes 80 01 00: the critical type is judged before the short length", vec![0x80, 0x01, 0x00], None, vec![]),
            ("ext_critical_value_overruns_area", uns, "a critical record whose ext_len runs past the area: the type is judged first", [vec![0x80, 0x07, 0x00, 0x64], vec![0; 10]].concat(), None, vec![]),
            ("ext_critical_then_trailing_header_bytes", uns, "a critical record, then 3 bytes between the area's end and header_len", ext(0x8001, b""), None, vec![1, 2, 3]),
            ("ext_unsorted_then_critical", mal, "types 0x0005, 0x0003, 0x8000: the order violation is met first", cat(&[ext(5, b""), ext(3, b""), ext(0x8000, b"")]), None, vec![]),
            ("ext_area_past_header_with_critical", mal, "extensions_len runs past header_len; the area would hold a critical record", ext(0x8001, b"abc"), Some(20), vec![]),
            ("ext_len_8193", mal, "extensions_len 8193 (with 8193 bytes present)", ext(0x0100, &[0; 8189]), None, vec![]),
            ("ext_len_ffff", mal, "extensions_len 65535 (4 bytes present)", ext(1, b""), Some(0xffff), vec![]),
            ("ext_unsorted", mal, "types 0x0002 then 0x0001", cat(&[ext(2, b""), ext(1, b"")]), None, vec![]),
            ("ext_duplicate_type", mal, "type 0x0003 twice", cat(&[ext(3, b"x"), ext(3, b"y")]), None, vec![]),
            ("ext_value_overruns_area", mal, "a record's ext_len (100) runs past the area (10 bytes)", [vec![0x00, 0x07, 0x00, 0x64], vec![0; 6]].concat(), None, vec![]),
            ("ext_one_leftover_byte", mal, "a record, then 1 byte left in the area", cat(&[ext(1, b"a"), vec![0x00]]), None, vec![]),
            ("ext_three_leftover_bytes", mal, "a record, then 3 bytes (type 0x0007 and half a length) left in the area", cat(&[ext(1, b"a"), vec![0x00, 0x07, 0x00]]), None, vec![]),
            ("ext_area_past_header", mal, "extensions_len 10 with 5 bytes before header_len", ext(1, b"a"), Some(10), vec![]),
            ("header_trailing_byte", mal, "one zero byte between the end of the extension area and header_len", vec![], None, vec![0]),
            ("header_trailing_bytes_after_ext", mal, "a valid record, then 4 bytes between the area's end and header_len", ext(1, b"a"), None, vec![0, 2, 0, 0]),
        ];
        for (name, expect, comment, records, ext_len, tail) in cases {
            let mut rng = seeded(name);
            let mut p = plan(&mut rng, &[(a, Hint::Real)], None, 100);
            p.hdr.ext = records;
            p.hdr.ext_len = ext_len;
            p.hdr.tail = tail;
            let data = p.bytes();
            let released = if expect == ok {
                p.pt.clone()
            } else {
                Vec::new()
            };
            self.add(
                V::new(name, expect, comment, data)
                    .ids(&[a])
                    .plan(&p)
                    .released(&released),
            );
        }
        // Point validation comes after the whole header parsed.
        let mut rng = seeded("ext_critical_and_off_curve_enc");
        let mut p = plan(&mut rng, &[(a, Hint::Real)], None, 100);
        let mut w = wrap(&mut rng, a, None, &p.file_key);
        w.enc[64] ^= 1;
        p.hdr.stanzas = vec![w.stanza()];
        p.hdr.ext = ext(0x8001, b"");
        let data = p.bytes();
        self.add(
            V::new("ext_critical_and_off_curve_enc", uns, "an off-curve enc and a critical extension: points are validated only after the header parsed", data)
                .ids(&[a])
                .plan(&p),
        );
        // A non-critical extension changed without the file key.
        let mut rng = seeded("ext_value_tampered");
        let mut p = plan(&mut rng, &[(a, Hint::Real)], None, 100);
        p.hdr.ext = ext(0x0001, b"authenticated");
        let mut data = p.bytes();
        let at = p.header().len() - 1;
        data[at] ^= 1;
        self.add(
            V::new(
                "ext_value_tampered",
                Expect::HeaderAuthFailure,
                "one bit of a non-critical extension value flipped after sealing",
                data,
            )
            .ids(&[a])
            .plan(&p),
        );
    }

    /// One flipped bit in each header field, anonymous and signed.
    fn bit_flips(&mut self) {
        let k = self.k.clone();
        let a = &k.alice;
        let mut rng = seeded("flip");
        let p = plan(&mut rng, &[(a, Hint::Real)], None, 100);
        let good = p.bytes();
        assert_eq!(p.header().len(), 158);
        let enc_x_flipped = {
            let mut e = good[43..108].to_vec();
            e[20] ^= 0x10;
            is_valid_point(&e)
        };
        let hdr_auth = Expect::HeaderAuthFailure;
        let mal = Expect::MalformedHeader;
        let cases: Vec<(&str, usize, u8, Expect, &str)> = vec![
            ("flip_magic", 3, 0, Expect::NotKapsel, "a bit of the magic"),
            ("flip_version", 8, 1, Expect::Unsupported, "version 0x01 -> 0x03"),
            ("flip_suite", 10, 0, Expect::Unsupported, "suite 0x0001 -> 0x0000"),
            ("flip_chunk_size", 11, 0, mal, "chunk_size_log2 14 -> 15"),
            ("flip_header_len_low", 15, 0, mal, "header_len 158 -> 159"),
            ("flip_header_len_high", 12, 7, mal, "header_len + 2^31"),
            ("flip_created_at_low", 23, 0, hdr_auth, "lowest bit of created_at: caught by the commitment"),
            ("flip_created_at_high", 16, 7, mal, "highest bit of created_at: beyond MAX_CREATED_AT"),
            ("flip_serial_low", 31, 0, hdr_auth, "lowest bit of serial"),
            ("flip_serial_high", 24, 7, hdr_auth, "highest bit of serial"),
            ("flip_sender_kind", 32, 0, mal, "sender_kind 0x00 -> 0x01: stanza_count and the stanza are read as a sender key starting 0x00"),
            ("flip_stanza_count_to_0", 34, 0, mal, "stanza_count 1 -> 0"),
            ("flip_stanza_count_to_3", 34, 1, mal, "stanza_count 1 -> 3"),
            ("flip_stanza_type_to_0", 36, 0, Expect::NoMatch, "stanza_type 0x0001 -> 0x0000: an unknown stanza, so no P-256 stanza at all"),
            ("flip_stanza_type_to_3", 36, 1, Expect::NoMatch, "stanza_type 0x0001 -> 0x0003"),
            ("flip_body_len", 38, 0, mal, "body_len 117 -> 116"),
            ("flip_hint", 39, 0, hdr_auth, "a hint bit: the stanza still opens (after the hinted ones), then the commitment fails"),
            ("flip_enc_prefix", 43, 0, mal, "enc 0x04 -> 0x05"),
            ("flip_enc_x", 63, 4, if enc_x_flipped { hdr_auth } else { mal }, "a bit of enc's x coordinate: no longer a point on the curve"),
            ("flip_enc_y", 107, 0, mal, "lowest bit of enc's y coordinate"),
            ("flip_wrapped_key", 120, 0, hdr_auth, "a bit of wrapped_key: the hinted stanza does not open"),
            ("flip_wrapped_key_tag", 155, 7, hdr_auth, "a bit of wrapped_key's tag"),
            ("flip_extensions_len", 157, 0, mal, "extensions_len 0 -> 1: the area runs past header_len"),
            ("flip_salt", 158, 0, hdr_auth, "a bit of the payload salt"),
            ("flip_commitment", 182 + 31, 3, hdr_auth, "a bit of the commitment"),
        ];
        for (name, byte, bit, expect, comment) in cases {
            self.add(
                V::new(name, expect, comment, flip(good.clone(), byte, bit))
                    .ids(&[a])
                    .plan(&p),
            );
        }
        let last = good.len() - 1;
        self.add(
            V::new(
                "flip_chunk_body",
                Expect::PayloadFailure,
                "a bit of the only chunk's ciphertext",
                flip(good.clone(), 214 + 5, 0),
            )
            .ids(&[a])
            .plan(&p),
        );
        self.add(
            V::new(
                "flip_chunk_tag",
                Expect::PayloadFailure,
                "a bit of the only chunk's tag",
                flip(good.clone(), last, 0),
            )
            .ids(&[a])
            .plan(&p),
        );
        // Changed by someone who knows the file key and seals again: an
        // anonymous file has no defence against that.
        let mut p2 = p.clone();
        p2.hdr.created_at ^= 1;
        let data = p2.bytes();
        self.add(
            V::new("created_at_changed_resealed", Expect::Success, "created_at changed and the payload sealed again with the same file key (what any recipient can do to an anonymous file)", data)
                .ids(&[a])
                .plan(&p2)
                .released(&p2.pt),
        );
        // Signed.
        let mut rng = seeded("flip signed");
        let ps = plan(&mut rng, &[(a, Hint::Real)], Some(&k.sam), 20000);
        let good = ps.bytes();
        let hl = ps.header().len();
        assert_eq!(hl, 223);
        let last = good.len() - 1;
        let sig_fail = Expect::SenderVerificationFailure;
        let cases: Vec<(&str, usize, u8, Expect, &str, usize)> = vec![
            ("signed_flip_sender_kind", 32, 0, mal, "sender_kind 0x01 -> 0x00: the sender key's 0x04 is read as stanza_count 0x04..", 0),
            ("signed_flip_sender_key_prefix", 33, 1, mal, "sender_key 0x04 -> 0x06", 0),
            ("signed_flip_sender_key_y", 97, 0, mal, "lowest bit of the sender key's y: off the curve", 0),
            ("signed_flip_created_at", 23, 0, hdr_auth, "a bit of created_at: the commitment fails before the signature is looked at", 0),
            ("signed_flip_serial", 31, 0, hdr_auth, "a bit of serial", 0),
            ("signed_flip_wrapped_key", 185, 0, hdr_auth, "a bit of wrapped_key", 0),
            ("signed_flip_chunk_0", hl + 56 + 100, 0, Expect::PayloadFailure, "a bit of chunk 0 of 2: it fails before the end of input, so before the signature is checked", 0),
            ("signed_flip_final_chunk", last - 64 - 3, 0, sig_fail, "a bit of the final chunk: at the end of input the signature is checked first, and fails", 1),
            ("signed_flip_signature_r", last - 40, 2, sig_fail, "a bit of the signature's r", 1),
            ("signed_flip_signature_s", last, 0, sig_fail, "a bit of the signature's s", 1),
        ];
        for (name, byte, bit, expect, comment, released_chunks) in cases {
            self.add(
                V::new(name, expect, comment, flip(good.clone(), byte, bit))
                    .ids(&[a])
                    .plan(&ps)
                    .released(&ps.chunks(released_chunks)),
            );
        }
    }

    /// Several recipients, hints, identity order.
    fn recipients(&mut self) {
        let k = self.k.clone();
        let (a, b, c, d) = (&k.alice, &k.bob, &k.carol, &k.dave);
        let ok = Expect::Success;
        let pt_len = 700;
        // Plain multi-recipient successes.
        let simple: Vec<(&str, &str, Vec<(&Identity, Hint)>, Vec<&Identity>)> = vec![
            (
                "recipients_match_middle",
                "three stanzas, the identity's is the second",
                vec![(b, Hint::Real), (a, Hint::Real), (c, Hint::Real)],
                vec![a],
            ),
            (
                "recipients_match_last_zero_hints",
                "three stanzas with zero hints, the identity's is the last",
                vec![(b, Hint::Zero), (c, Hint::Zero), (a, Hint::Zero)],
                vec![a],
            ),
            (
                "recipients_mixed_hints",
                "zero and real hints mixed; the identity's stanza has a zero hint",
                vec![(b, Hint::Real), (a, Hint::Zero), (c, Hint::Real)],
                vec![a],
            ),
            (
                "recipients_second_identity",
                "identities dave then bob; bob's stanza is the second of two",
                vec![(a, Hint::Real), (b, Hint::Real)],
                vec![d, b],
            ),
            (
                "recipients_hint_of_other_key",
                "the identity's stanza carries carol's hint: it is still tried",
                vec![(b, Hint::Real), (a, Hint::Raw(c.to_recipient().hint()))],
                vec![a],
            ),
            (
                "recipients_random_hint",
                "the identity's stanza carries a random non-zero hint",
                vec![(a, Hint::Raw([0xde, 0xad, 0xbe, 0xef]))],
                vec![a],
            ),
            (
                "recipients_same_recipient_twice",
                "two different stanzas for the same recipient, both valid",
                vec![(a, Hint::Real), (a, Hint::Real)],
                vec![a],
            ),
            (
                "recipients_identity_twice",
                "the same identity given twice",
                vec![(b, Hint::Real), (a, Hint::Real)],
                vec![a, a],
            ),
        ];
        for (name, comment, to, ids) in simple {
            let mut rng = seeded(name);
            let p = plan(&mut rng, &to, None, pt_len);
            let data = p.bytes();
            self.add(
                V::new(name, ok, comment, data)
                    .ids(&ids)
                    .plan(&p)
                    .released(&p.pt),
            );
        }
        // No match.
        let nm = Expect::NoMatch;
        let no_match: Vec<(&str, &str, Vec<(&Identity, Hint)>, Vec<&Identity>)> = vec![
            (
                "no_match_other_recipient",
                "a file for bob, the identity is dave",
                vec![(b, Hint::Real)],
                vec![d],
            ),
            (
                "no_match_hidden",
                "three zero-hint stanzas, none for the identity",
                vec![(a, Hint::Zero), (b, Hint::Zero), (c, Hint::Zero)],
                vec![d],
            ),
            (
                "no_match_several_identities",
                "a file for alice and bob, identities carol and dave",
                vec![(a, Hint::Real), (b, Hint::Real)],
                vec![c, d],
            ),
            (
                "no_match_no_identities",
                "no identity at all",
                vec![(a, Hint::Real)],
                vec![],
            ),
        ];
        for (name, comment, to, ids) in no_match {
            let mut rng = seeded(name);
            let p = plan(&mut rng, &to, None, pt_len);
            let data = p.bytes();
            self.add(V::new(name, nm, comment, data).ids(&ids).plan(&p));
        }
        let mut rng = seeded("no_match_sender_not_recipient");
        let p = plan(&mut rng, &[(a, Hint::Real)], Some(&k.sam), pt_len);
        let data = p.bytes();
        self.add(
            V::new(
                "no_match_sender_not_recipient",
                nm,
                "a file signed by sam for alice; the identity is sam's",
                data,
            )
            .ids(&[&k.sam])
            .plan(&p),
        );

        // Stanzas built one by one: (recipient, hint, file key is right, corrupted).
        struct S<'a>(&'a Identity, Hint, bool, bool);
        let crafted: Vec<(&str, Expect, &str, Vec<S>, Vec<&Identity>)> = vec![
            ("no_match_zero_hint_corrupted", nm, "the identity's stanza has a zero hint and does not open: a zero hint never matches, so no match", vec![S(a, Hint::Zero, true, true)], vec![a]),
            ("no_match_other_hint_corrupted", nm, "the identity's stanza carries bob's hint and does not open", vec![S(a, Hint::Raw(b.to_recipient().hint()), true, true)], vec![a]),
            ("auth_hinted_stanza_corrupted", Expect::HeaderAuthFailure, "alice's stanza carries her hint and does not open; the other stanza is bob's", vec![S(b, Hint::Real, true, false), S(a, Hint::Real, true, true)], vec![a]),
            ("auth_hint_matches_second_identity", Expect::HeaderAuthFailure, "identities dave, alice; alice's hinted stanza does not open", vec![S(a, Hint::Real, true, true)], vec![d, a]),
            ("recipients_first_identity_stanza_corrupted", ok, "identities alice, bob; alice's hinted stanza does not open, bob's opens: the first stanza that opens decides", vec![S(a, Hint::Real, true, true), S(b, Hint::Real, true, false)], vec![a, b]),
            ("recipients_hinted_tried_first", ok, "two stanzas for alice: a zero-hint one wrapping a wrong key first, a hinted one with the right key second; hinted stanzas are tried first", vec![S(a, Hint::Zero, false, false), S(a, Hint::Real, true, false)], vec![a]),
            ("auth_hinted_stanza_wrong_key", Expect::HeaderAuthFailure, "two hinted stanzas for alice, the first wraps a wrong key: it opens, fixes the file key, and the commitment fails; the second is never tried", vec![S(a, Hint::Real, false, false), S(a, Hint::Real, true, false)], vec![a]),
            ("auth_header_order_wrong_key", Expect::HeaderAuthFailure, "two zero-hint stanzas for alice, the first wraps a wrong key: header order decides", vec![S(a, Hint::Zero, false, false), S(a, Hint::Zero, true, false)], vec![a]),
            ("auth_identity_order_wrong_key", Expect::HeaderAuthFailure, "identities alice, bob; bob's stanza has the right key, alice's (zero hint) a wrong one: alice is tried first", vec![S(b, Hint::Real, true, false), S(a, Hint::Zero, false, false)], vec![a, b]),
            ("recipients_identity_order_right_key", ok, "as auth_identity_order_wrong_key with identities bob, alice", vec![S(b, Hint::Real, true, false), S(a, Hint::Zero, false, false)], vec![b, a]),
        ];
        for (name, expect, comment, stanzas, ids) in crafted {
            let mut rng = seeded(name);
            let mut p = plan(&mut rng, &[(a, Hint::Real)], None, pt_len);
            let wrong_key: [u8; 32] = random_bytes(&mut rng, 32).try_into().expect("32 bytes");
            let fk = p.file_key;
            p.hdr.stanzas = stanzas
                .iter()
                .map(|S(to, hint, right, corrupt)| {
                    let key = if *right { fk } else { wrong_key };
                    let mut w = wrap(&mut rng, to, None, &key);
                    match hint {
                        Hint::Real => {}
                        Hint::Zero => w.hint = [0; 4],
                        Hint::Raw(h) => w.hint = *h,
                    }
                    if *corrupt {
                        w.wrapped[7] ^= 0x40;
                    }
                    w.stanza()
                })
                .collect();
            let data = p.bytes();
            let released = if expect == ok {
                p.pt.clone()
            } else {
                Vec::new()
            };
            self.add(
                V::new(name, expect, comment, data)
                    .ids(&ids)
                    .plan(&p)
                    .released(&released),
            );
        }
        // Tampering with the stanza list without the file key.
        let mut rng = seeded("auth_stanzas_swapped");
        let p = plan(&mut rng, &[(a, Hint::Real), (b, Hint::Real)], None, pt_len);
        let sealed = p.sealed();
        let mut hdr = p.hdr.clone();
        hdr.stanzas.swap(0, 1);
        let mut data = hdr.bytes();
        data.extend_from_slice(&sealed.payload());
        self.add(
            V::new(
                "auth_stanzas_swapped",
                Expect::HeaderAuthFailure,
                "the two stanzas swapped after sealing",
                data,
            )
            .ids(&[a])
            .plan(&p),
        );
        let mut hdr = p.hdr.clone();
        hdr.stanzas.remove(1);
        let mut data = hdr.bytes();
        data.extend_from_slice(&sealed.payload());
        self.add(
            V::new(
                "auth_stanza_removed",
                Expect::HeaderAuthFailure,
                "bob's stanza removed after sealing (count and header_len adjusted)",
                data,
            )
            .ids(&[a])
            .plan(&p),
        );
        let mut hdr = p.hdr.clone();
        let extra = wrap(&mut rng, &k.mallory, None, &p.file_key);
        hdr.stanzas.push(extra.stanza());
        let mut data = hdr.bytes();
        data.extend_from_slice(&sealed.payload());
        self.add(V::new("auth_stanza_added", Expect::HeaderAuthFailure, "a valid stanza for mallory (same file key) added by someone who knows the file key but did not seal again", data).ids(&[a]).plan(&p));
        // Header of one file on the payload of another.
        let mut rng = seeded("auth_header_of_other_file");
        let p1 = plan(&mut rng, &[(a, Hint::Real)], None, pt_len);
        let p2 = plan(&mut rng, &[(a, Hint::Real)], None, pt_len);
        let mut data = p1.header();
        data.extend_from_slice(&p2.sealed().payload());
        self.add(
            V::new(
                "auth_header_of_other_file",
                Expect::HeaderAuthFailure,
                "the header of one file (for alice) on the payload of another (also for alice)",
                data,
            )
            .ids(&[a])
            .plan(&p1),
        );
        let mut p3 = p1.clone();
        p3.hdr.serial ^= 0xff;
        let mut data = p3.header();
        data.extend_from_slice(&p1.sealed().payload());
        self.add(V::new("auth_header_same_key_other_serial", Expect::HeaderAuthFailure, "a header with another serial but the same stanzas and file key, on the original payload", data).ids(&[a]).plan(&p1));
        let mut rng = seeded("auth_signed_header_of_other_file");
        let s1 = plan(&mut rng, &[(a, Hint::Real)], Some(&k.sam), pt_len);
        let s2 = plan(&mut rng, &[(a, Hint::Real)], Some(&k.sam), pt_len);
        let mut data = s1.header();
        let s2bytes = s2.bytes();
        data.extend_from_slice(&s2bytes[s2.header().len()..]);
        self.add(V::new("auth_signed_header_of_other_file", Expect::HeaderAuthFailure, "the header of one signed file on the payload and signature of another from the same sender", data).ids(&[a]).plan(&s1));
    }

    /// Payload truncation, extension and chunk manipulation.
    fn payload(&mut self) {
        let k = self.k.clone();
        let a = &k.alice;
        let pf = Expect::PayloadFailure;
        // A four-chunk file: three full chunks and a final one of 500 bytes.
        let mut rng = seeded("payload four chunks");
        let p = plan(&mut rng, &[(a, Hint::Real)], None, 3 * CHUNK + 500);
        let s = p.sealed();
        let head = |chunks: &[Vec<u8>]| {
            let mut v = s.header.clone();
            v.extend_from_slice(&s.prefix);
            for c in chunks {
                v.extend_from_slice(c);
            }
            v
        };
        let c = &s.chunks;
        let full = s.file();
        let hl = s.header.len();
        let cases: Vec<(&str, &str, Vec<u8>, usize)> = vec![
            (
                "payload_header_only",
                "the header and nothing else",
                s.header.clone(),
                0,
            ),
            (
                "payload_truncated_in_salt",
                "input ends inside the salt",
                full[..hl + 10].to_vec(),
                0,
            ),
            (
                "payload_truncated_in_commitment",
                "input ends inside the commitment",
                full[..hl + 40].to_vec(),
                0,
            ),
            (
                "payload_no_chunks",
                "salt and commitment, then end of input: the final chunk is missing",
                full[..hl + 56].to_vec(),
                0,
            ),
            (
                "payload_truncated_in_chunk_0",
                "input ends inside chunk 0",
                full[..hl + 56 + 1000].to_vec(),
                0,
            ),
            (
                "payload_truncated_after_chunk_0",
                "input ends right after full chunk 0",
                head(&c[..1]),
                1,
            ),
            (
                "payload_truncated_in_chunk_2",
                "input ends inside chunk 2",
                full[..hl + 56 + 2 * CT_CHUNK + 7].to_vec(),
                2,
            ),
            (
                "payload_truncated_final_chunk_15_bytes",
                "the final chunk cut to 15 bytes, shorter than a tag",
                full[..hl + 56 + 3 * CT_CHUNK + 15].to_vec(),
                3,
            ),
            (
                "payload_truncated_final_chunk_16_bytes",
                "the final chunk cut to 16 bytes: opened as an empty chunk, fails",
                full[..hl + 56 + 3 * CT_CHUNK + 16].to_vec(),
                3,
            ),
            (
                "payload_final_chunk_missing_tag_byte",
                "the final chunk's last tag byte missing",
                full[..full.len() - 1].to_vec(),
                3,
            ),
            (
                "payload_final_chunk_missing",
                "the final chunk removed: input ends after full chunk 2",
                head(&c[..3]),
                3,
            ),
            (
                "payload_trailing_1_byte",
                "one byte after the final chunk",
                [full.clone(), vec![0]].concat(),
                3,
            ),
            (
                "payload_trailing_15_bytes",
                "15 bytes after the final chunk",
                [full.clone(), vec![0x33; 15]].concat(),
                3,
            ),
            (
                "payload_trailing_16_bytes",
                "16 bytes (a tag's length) after the final chunk",
                [full.clone(), vec![0x33; 16]].concat(),
                3,
            ),
            (
                "payload_trailing_17_bytes",
                "17 bytes after the final chunk",
                [full.clone(), vec![0x33; 17]].concat(),
                3,
            ),
            (
                "payload_trailing_chunk",
                "a copy of the final chunk appended",
                [full.clone(), c[3].clone()].concat(),
                3,
            ),
            (
                "payload_trailing_16400_bytes",
                "16400 bytes after the final chunk",
                [full.clone(), vec![0x44; CT_CHUNK]].concat(),
                3,
            ),
            (
                "payload_trailing_header",
                "the file's own header appended (two files concatenated)",
                [full.clone(), s.header.clone()].concat(),
                3,
            ),
            (
                "chunks_swapped_0_1",
                "chunks 0 and 1 swapped",
                head(&[c[1].clone(), c[0].clone(), c[2].clone(), c[3].clone()]),
                0,
            ),
            (
                "chunks_swapped_1_2",
                "chunks 1 and 2 swapped",
                head(&[c[0].clone(), c[2].clone(), c[1].clone(), c[3].clone()]),
                1,
            ),
            (
                "chunks_duplicated_1",
                "chunk 1 twice",
                head(&[
                    c[0].clone(),
                    c[1].clone(),
                    c[1].clone(),
                    c[2].clone(),
                    c[3].clone(),
                ]),
                2,
            ),
            (
                "chunks_deleted_0",
                "chunk 0 removed",
                head(&[c[1].clone(), c[2].clone(), c[3].clone()]),
                0,
            ),
            (
                "chunks_deleted_1",
                "chunk 1 removed",
                head(&[c[0].clone(), c[2].clone(), c[3].clone()]),
                1,
            ),
            (
                "chunks_deleted_2",
                "chunk 2 removed (the final chunk now follows chunk 1)",
                head(&[c[0].clone(), c[1].clone(), c[3].clone()]),
                2,
            ),
            (
                "chunks_final_moved_first",
                "the final chunk moved before chunk 0",
                head(&[c[3].clone(), c[0].clone(), c[1].clone(), c[2].clone()]),
                0,
            ),
            (
                "chunk_1_flipped",
                "one bit of chunk 1's ciphertext",
                flip(full.clone(), hl + 56 + CT_CHUNK + 100, 5),
                1,
            ),
            (
                "chunk_2_tag_flipped",
                "one bit of chunk 2's tag",
                flip(full.clone(), hl + 56 + 3 * CT_CHUNK - 1, 0),
                2,
            ),
            (
                "final_chunk_flipped",
                "one bit of the final chunk",
                flip(full.clone(), hl + 56 + 3 * CT_CHUNK + 3, 0),
                3,
            ),
            (
                "payload_signature_on_anonymous_file",
                "64 bytes (a signature by sam) after an anonymous file",
                signed(&k.sam, full.clone()),
                3,
            ),
        ];
        for (name, comment, data, released) in cases {
            self.add(
                V::new(name, pf, comment, data)
                    .ids(&[a])
                    .plan(&p)
                    .released(&p.chunks(released)),
            );
        }
        // Re-sealed by the encoder with the wrong chunking.
        let wrong: Vec<(&str, &str, Vec<(u64, usize, usize)>, usize)> = vec![
            ("full_final_chunk", "a plaintext of 2 x 16384 bytes sealed as two full chunks with no empty final chunk", vec![(0, 0, CHUNK), (1, CHUNK, 2 * CHUNK)], 2),
            ("short_chunk_not_last", "chunk 0 sealed short (1000 bytes), then a final chunk: the short chunk joins the next in one piece", vec![(0, 0, 1000), (1, 1000, 1500)], 0),
            ("final_chunk_index_0", "two chunks, the final one sealed with index 0", vec![(0, 0, CHUNK), (0, CHUNK, CHUNK + 300)], 1),
            ("chunk_indices_from_1", "chunks sealed with indices 1 and 2 instead of 0 and 1", vec![(1, 0, CHUNK), (2, CHUNK, CHUNK + 300)], 0),
            ("extra_empty_chunk", "a plaintext of 300 bytes sealed as chunk 0 (300 bytes) and an extra empty chunk 1", vec![(0, 0, 300), (1, 300, 300)], 0),
        ];
        for (name, comment, pieces, released) in wrong {
            let mut rng = seeded(name);
            let p = plan(&mut rng, &[(a, Hint::Real)], None, 2 * CHUNK);
            let header = p.header();
            let list: Vec<(u64, &[u8])> = pieces
                .iter()
                .map(|(i, from, to)| (*i, &p.pt[*from..*to]))
                .collect();
            let data = seal_pieces(&p.file_key, &header, p.salt, &list).file();
            self.add(
                V::new(name, pf, comment, data)
                    .ids(&[a])
                    .plan(&p)
                    .released(&p.chunks(released)),
            );
        }
        // A chunk of another file with the same key and header context but another salt.
        let mut rng = seeded("chunk_from_other_file");
        let p = plan(&mut rng, &[(a, Hint::Real)], None, 2 * CHUNK + 10);
        let mut other = p.clone();
        other.salt[0] ^= 1;
        let mine = p.sealed();
        let theirs = other.sealed();
        let mut chunks = mine.chunks.clone();
        chunks[1] = theirs.chunks[1].clone();
        let data = Sealed { chunks, ..mine }.file();
        self.add(
            V::new(
                "chunk_from_other_file",
                pf,
                "chunk 1 taken from a file with the same file key and header but another salt",
                data,
            )
            .ids(&[a])
            .plan(&p)
            .released(&p.chunks(1)),
        );
    }

    /// 255, 256 and 257 chunks: the chunk counter carries into its second byte.
    fn chunk_counter(&mut self) {
        let k = self.k.clone();
        let a = &k.alice;
        for (name, full, comment) in [
            (
                "chunks_255",
                254usize,
                "255 chunks: 254 full, a final one of 1000 bytes (last index 254)",
            ),
            (
                "chunks_256",
                255,
                "256 chunks: 255 full, a final one of 1000 bytes (last index 255)",
            ),
            (
                "chunks_257",
                256,
                "257 chunks: 256 full, a final one of 1000 bytes (last index 256 = 0x100)",
            ),
        ] {
            let mut rng = seeded(name);
            let p = plan(&mut rng, &[(a, Hint::Real)], None, full * CHUNK + 1000);
            let data = p.bytes();
            assert_eq!(p.sealed().chunks.len(), full + 1);
            self.add(
                V::new(name, Expect::Success, comment, data)
                    .ids(&[a])
                    .plan(&p)
                    .released(&p.pt),
            );
        }
        let name = "chunks_257_counter_8_bit";
        let mut rng = seeded(name);
        let p = plan(&mut rng, &[(a, Hint::Real)], None, 256 * CHUNK + 1000);
        let pieces: Vec<(u64, &[u8])> = split(&p.pt)
            .into_iter()
            .enumerate()
            .map(|(i, c)| ((i % 256) as u64, c))
            .collect();
        let data = seal_pieces(&p.file_key, &p.header(), p.salt, &pieces).file();
        self.add(
            V::new(name, Expect::PayloadFailure, "257 chunks sealed by an encoder whose counter wraps at 8 bits: the final chunk (index 256) was sealed with index 0", data)
                .ids(&[a])
                .plan(&p)
                .released(&p.chunks(256)),
        );
    }

    /// Sender signatures: valid, forged, damaged.
    fn signed(&mut self) {
        let k = self.k.clone();
        let (a, sam, mal) = (&k.alice, &k.sam, &k.mallory);
        let svf = Expect::SenderVerificationFailure;
        let pf = Expect::PayloadFailure;
        // A signed file for alice and mallory: 20000 bytes, two chunks.
        let mut rng = seeded("signed");
        let p = plan(
            &mut rng,
            &[(a, Hint::Real), (mal, Hint::Real)],
            Some(sam),
            20000,
        );
        let good = p.bytes();
        let unsigned = p.sealed().file();
        let n = good.len();
        let sig = &good[n - 64..];
        let with_sig = |r: &[u8], s: &[u8]| {
            let mut v = unsigned.clone();
            v.extend_from_slice(r);
            v.extend_from_slice(s);
            v
        };
        let mut r = [0u8; 32];
        r.copy_from_slice(&sig[..32]);
        let mut s = [0u8; 32];
        s.copy_from_slice(&sig[32..]);
        let high_s = be_sub(&N, &s);
        let one = {
            let mut o = [0u8; 32];
            o[31] = 1;
            o
        };
        let chunk0 = p.chunks(1);
        self.add(
            V::new(
                "signed_valid",
                Expect::Success,
                "signed by sam for alice and mallory",
                good.clone(),
            )
            .ids(&[a])
            .plan(&p)
            .released(&p.pt),
        );
        self.add(
            V::new(
                "signed_valid_second_recipient",
                Expect::Success,
                "the same file, decrypted by mallory",
                good.clone(),
            )
            .ids(&[mal])
            .plan(&p)
            .released(&p.pt),
        );
        self.add(
            V::new(
                "signed_high_s",
                Expect::Success,
                "the signature with s replaced by n - s: verifiers accept any s in [1, n-1]",
                with_sig(&r, &high_s),
            )
            .ids(&[a])
            .plan(&p)
            .released(&p.pt),
        );
        let cases: Vec<(&str, &str, Vec<u8>, Expect, Vec<u8>)> = vec![
            ("signed_signature_r_zero", "r = 0", with_sig(&[0; 32], &s), svf, chunk0.clone()),
            ("signed_signature_s_zero", "s = 0", with_sig(&r, &[0; 32]), svf, chunk0.clone()),
            ("signed_signature_r_n", "r = n", with_sig(&N, &s), svf, chunk0.clone()),
            ("signed_signature_s_n", "s = n", with_sig(&r, &N), svf, chunk0.clone()),
            ("signed_signature_s_plus_1", "s replaced by s + 1", with_sig(&r, &be_add(&s, &one)), svf, chunk0.clone()),
            ("signed_signature_all_ff", "r = s = 2^256 - 1", with_sig(&[0xff; 32], &[0xff; 32]), svf, chunk0.clone()),
            ("signed_signature_swapped", "r and s swapped", with_sig(&s, &r), svf, chunk0.clone()),
            ("signed_signature_truncated_1", "the last signature byte missing: the last 64 bytes (one of the final chunk, 63 of the signature) do not verify", good[..n - 1].to_vec(), svf, chunk0.clone()),
            ("signed_signature_truncated_32", "half the signature missing", good[..n - 32].to_vec(), svf, chunk0.clone()),
            ("signed_signature_missing", "the whole signature missing: the final chunk's last 64 bytes are taken as the signature", good[..n - 64].to_vec(), svf, chunk0.clone()),
            ("signed_signature_trailing_byte", "one byte after the signature", [good.clone(), vec![0]].concat(), svf, chunk0.clone()),
            ("signed_signature_twice", "the signature appended twice", [good.clone(), sig.to_vec()].concat(), svf, chunk0.clone()),
            ("signed_by_other_key", "signed by mallory's key while the header names sam", signed(mal, unsigned.clone()), svf, chunk0.clone()),
            ("signed_signature_of_other_label", "signed over the file without the signature label", {
                let key = SigningKey::from(sam.secret_key());
                let sig: Signature = key.sign_digest(Sha256::new_with_prefix(&unsigned));
                [unsigned.clone(), sig.to_bytes().to_vec()].concat()
            }, svf, chunk0.clone()),
        ];
        for (name, comment, data, expect, released) in cases {
            self.add(
                V::new(name, expect, comment, data)
                    .ids(&[a])
                    .plan(&p)
                    .released(&released),
            );
        }
        // Forgeries by mallory, a co-recipient who knows the file key.
        let forged_pt = random_bytes(&mut rng, 30000);
        let mut forged = p.clone();
        forged.pt = forged_pt.clone();
        forged.salt[3] ^= 0x80;
        let forged_unsigned = forged.sealed().file();
        self.add(
            V::new("signed_insider_forgery_old_signature", svf, "mallory re-encrypts another plaintext under the same header and file key and keeps sam's signature: every chunk opens, the signature does not verify; the released prefix is mallory's", [forged_unsigned.clone(), sig.to_vec()].concat())
                .ids(&[a])
                .plan(&p)
                .released(&forged_pt[..CHUNK]),
        );
        self.add(
            V::new(
                "signed_insider_forgery_own_signature",
                svf,
                "the same forgery signed with mallory's own key",
                signed(mal, forged_unsigned),
            )
            .ids(&[a])
            .plan(&p)
            .released(&forged_pt[..CHUNK]),
        );
        let mut reserial = p.clone();
        reserial.hdr.serial = reserial.hdr.serial.wrapping_add(1);
        reserial.signer = None;
        let data = [reserial.sealed().file(), sig.to_vec()].concat();
        self.add(
            V::new("signed_insider_new_serial", svf, "mallory changes the serial (a replay under a fresh identifier), seals the payload again and keeps sam's signature", data)
                .ids(&[a])
                .plan(&p)
                .released(&chunk0),
        );
        let mut recreated = p.clone();
        recreated.hdr.created_at += 86400;
        recreated.signer = Some(mal.clone());
        let data = recreated.bytes();
        self.add(
            V::new(
                "signed_insider_new_time_own_signature",
                svf,
                "mallory changes created_at, seals again, signs with her own key",
                data,
            )
            .ids(&[a])
            .plan(&p)
            .released(&chunk0),
        );
        // mallory's own, honest, signed file: valid, but names mallory, not sam.
        let mut rng2 = seeded("signed_by_insider_as_herself");
        let pm = plan(&mut rng2, &[(a, Hint::Real)], Some(mal), 500);
        let data = pm.bytes();
        self.add(
            V::new("signed_by_insider_as_herself", Expect::Success, "a valid file signed by mallory naming mallory as sender: the format accepts it; only a receiver that expects sam refuses it (SPEC 12)", data)
                .ids(&[a])
                .plan(&pm)
                .released(&pm.pt),
        );
        // Sender key replaced by a valid key: stanzas (auth mode with sam) no longer open.
        let mut swapped = p.clone();
        swapped.hdr.sender = sender_field(Some(mal));
        swapped.signer = Some(mal.clone());
        let data = swapped.bytes();
        self.add(
            V::new("signed_sender_key_replaced", Expect::HeaderAuthFailure, "sender_key replaced by mallory's, signed by mallory: alice's stanza was sealed in auth mode with sam's key and does not open", data)
                .ids(&[a])
                .plan(&p),
        );
        // Mode mismatches.
        let mut rng3 = seeded("signed_mode_mismatch");
        let mut base_in_signed = plan(&mut rng3, &[(a, Hint::Real)], Some(sam), 500);
        base_in_signed.hdr.stanzas =
            vec![wrap_with(&mut rng3, a, None, Mode::Base, &base_in_signed.file_key).stanza()];
        let data = base_in_signed.bytes();
        self.add(
            V::new(
                "signed_header_base_mode_stanza",
                Expect::HeaderAuthFailure,
                "a signed header whose stanza was sealed in HPKE base mode",
                data,
            )
            .ids(&[a])
            .plan(&base_in_signed),
        );
        let mut auth_in_anon = plan(&mut rng3, &[(a, Hint::Real)], None, 500);
        auth_in_anon.hdr.stanzas =
            vec![wrap_with(&mut rng3, a, Some(sam), Mode::Auth, &auth_in_anon.file_key).stanza()];
        let data = auth_in_anon.bytes();
        self.add(
            V::new(
                "anonymous_header_auth_mode_stanza",
                Expect::HeaderAuthFailure,
                "an anonymous header whose stanza was sealed in HPKE auth mode by sam",
                data,
            )
            .ids(&[a])
            .plan(&auth_in_anon),
        );
        let mut kem_mismatch = plan(&mut rng3, &[(a, Hint::Real)], Some(sam), 500);
        kem_mismatch.hdr.stanzas =
            vec![wrap_with(&mut rng3, a, Some(sam), Mode::Base, &kem_mismatch.file_key).stanza()];
        let data = kem_mismatch.bytes();
        self.add(
            V::new("signed_header_auth_kem_base_schedule", Expect::HeaderAuthFailure, "a signed header whose stanza used AuthEncap but the base-mode key schedule (mode 0x00)", data)
                .ids(&[a])
                .plan(&kem_mismatch),
        );
        // The sender signed a broken payload: the signature verifies, the payload fails.
        let mut rng4 = seeded("signed_by_sender_broken_payload");
        let q = plan(&mut rng4, &[(a, Hint::Real)], Some(sam), 2 * CHUNK);
        let qs = q.sealed();
        let body_without_final = {
            let mut v = qs.header.clone();
            v.extend_from_slice(&qs.prefix);
            v.extend_from_slice(&qs.chunks[0]);
            v.extend_from_slice(&qs.chunks[1]);
            v
        };
        let with_trailing = [qs.file(), vec![0x77]].concat();
        let short = [qs.header.clone(), qs.prefix[..30].to_vec()].concat();
        let empty_payload = qs.header.clone();
        let cases: Vec<(&str, &str, Vec<u8>, Expect, Vec<u8>)> = vec![
            ("signed_valid_signature_final_chunk_missing", "sam signed a payload without its final chunk: the signature verifies, then the payload fails", signed(sam, body_without_final.clone()), pf, q.chunks(2)),
            ("signed_valid_signature_trailing_byte_in_payload", "sam signed a payload with one byte after the final chunk", signed(sam, with_trailing), pf, q.chunks(2)),
            ("signed_valid_signature_payload_30_bytes", "sam signed a payload of 30 bytes (less than salt and commitment)", signed(sam, short.clone()), pf, vec![]),
            ("signed_valid_signature_empty_payload", "sam signed the header alone", signed(sam, empty_payload), pf, vec![]),
            ("signed_invalid_signature_payload_30_bytes", "a payload of 30 bytes and an invalid signature: at the end of input the signature is checked first", [short, vec![0x42; 64]].concat(), svf, vec![]),
            ("signed_payload_and_signature_63_bytes", "63 bytes after the header: shorter than a signature, so truncated", [qs.header.clone(), vec![0x42; 63]].concat(), pf, vec![]),
            ("signed_header_only", "a signed header and nothing else", qs.header.clone(), pf, vec![]),
            ("signed_final_chunk_missing_unsigned", "the final chunk and the signature removed: what was the end of chunk 1 is taken as the signature", body_without_final, svf, q.chunks(1)),
        ];
        for (name, comment, data, expect, released) in cases {
            self.add(
                V::new(name, expect, comment, data)
                    .ids(&[a])
                    .plan(&q)
                    .released(&released),
            );
        }
        // The end of input is reached only by a read that ends short: a full
        // piece fails as a chunk even when nothing but the signature follows.
        let mut c1_bad = qs.clone();
        c1_bad.chunks[1][100] ^= 1;
        let without_final = {
            let mut v = c1_bad.header.clone();
            v.extend_from_slice(&c1_bad.prefix);
            v.extend_from_slice(&c1_bad.chunks[0]);
            v.extend_from_slice(&c1_bad.chunks[1]);
            v
        };
        let cases: Vec<(&str, &str, Vec<u8>, Vec<u8>)> = vec![
            ("signed_last_full_chunk_flipped", "chunk 1 of 3 (full, followed by the empty final chunk and the signature) flipped: it fails as a chunk before the end of input is reached", [c1_bad.file(), sig.to_vec()].concat(), q.chunks(1)),
            ("signed_full_chunk_before_signature_flipped", "no final chunk, chunk 1 (full) flipped, then a signature that does not verify: only the signature follows chunk 1, but a full piece does not reach the end of input, so chunk 1 fails first", [without_final, sig.to_vec()].concat(), q.chunks(1)),
        ];
        for (name, comment, data, released) in cases {
            self.add(
                V::new(name, pf, comment, data)
                    .ids(&[a])
                    .plan(&q)
                    .released(&released),
            );
        }
    }

    /// ASCII armor.
    fn armor(&mut self) {
        let k = self.k.clone();
        let a = &k.alice;
        let af = Expect::ArmorFailure;
        let mut rng = seeded("armor");
        // 158 + 56 + 516 = 730 bytes: 15 full lines and one of 10 bytes.
        let p = plan(&mut rng, &[(a, Hint::Real)], None, 500);
        let file = p.bytes();
        assert_eq!(file.len(), 730);
        let lines = armor_lines(&file);
        let lf = armor_text(&lines, "\n");
        // The reference armor writer produces exactly this.
        let mut w = kapsel_codec::armor::ArmoredWriter::new(Vec::new()).expect("armor");
        w.write_all(&file).expect("armor");
        assert_eq!(w.finish().expect("armor"), lf);
        let ok = |name: &'static str, comment: &'static str, data: Vec<u8>| (name, comment, data);
        let succ = vec![
            ok("armor_valid", "armored file, LF line endings", lf.clone()),
            ok(
                "armor_crlf",
                "armored file, CRLF on every line",
                armor_text(&lines, "\r\n"),
            ),
            ok(
                "armor_whitespace_around",
                "spaces, tabs, CR and LF before BEGIN and after END",
                [b" \t\r\n\n".to_vec(), lf.clone(), b"\n \t\r\n".to_vec()].concat(),
            ),
            ok(
                "armor_crlf_whitespace_around",
                "CRLF armor with blank lines before and after",
                [
                    b"\r\n\r\n".to_vec(),
                    armor_text(&lines, "\r\n"),
                    b"\r\n".to_vec(),
                ]
                .concat(),
            ),
        ];
        for (name, comment, data) in succ {
            self.add(
                V::new(name, Expect::Success, comment, data)
                    .ids(&[a])
                    .plan(&p)
                    .released(&p.pt)
                    .armored(),
            );
        }
        // A file whose length is a multiple of 48: the last line is full.
        let mut rng = seeded("armor_last_line_full");
        let p48 = plan(&mut rng, &[(a, Hint::Real)], None, 58);
        let f48 = p48.bytes();
        assert_eq!(f48.len() % 48, 0);
        self.add(
            V::new(
                "armor_last_line_full",
                Expect::Success,
                "a 288-byte file: every body line has 64 characters",
                armor_text(&armor_lines(&f48), "\n"),
            )
            .ids(&[a])
            .plan(&p48)
            .released(&p48.pt)
            .armored(),
        );
        let mut rng = seeded("armor_signed");
        let ps = plan(&mut rng, &[(a, Hint::Real)], Some(&k.sam), 400);
        self.add(
            V::new(
                "armor_signed",
                Expect::Success,
                "an armored signed file",
                armor_text(&armor_lines(&ps.bytes()), "\n"),
            )
            .ids(&[a])
            .plan(&ps)
            .released(&ps.pt)
            .armored(),
        );
        // Valid armor around a bad file: the armor is transparent.
        self.add(
            V::new(
                "armor_inner_header_auth_failure",
                Expect::HeaderAuthFailure,
                "valid armor around a file with a flipped serial bit",
                armor_text(&armor_lines(&flip(file.clone(), 30, 0)), "\n"),
            )
            .ids(&[a])
            .plan(&p)
            .armored(),
        );
        self.add(
            V::new(
                "armor_inner_payload_truncated",
                Expect::PayloadFailure,
                "valid armor around a file missing its last 5 bytes",
                armor_text(&armor_lines(&file[..file.len() - 5]), "\n"),
            )
            .ids(&[a])
            .plan(&p)
            .armored(),
        );
        self.add(
            V::new(
                "armor_inner_not_kapsel",
                Expect::NotKapsel,
                "valid armor around a PNG file",
                armor_text(
                    &armor_lines(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01"),
                    "\n",
                ),
            )
            .ids(&[a])
            .armored(),
        );
        self.add(
            V::new(
                "armor_unflagged",
                Expect::NotKapsel,
                "armored text given to a binary decoder (armor: no)",
                lf.clone(),
            )
            .ids(&[a])
            .plan(&p),
        );
        // Armor failures. Every body line that decodes yields the true bytes
        // of a valid single-chunk file, so the failure is met before the
        // final chunk opens, whether a decoder streams the armor or not.
        let text = String::from_utf8(lf.clone()).expect("ASCII");
        let tl: Vec<String> = text.lines().map(str::to_string).collect();
        // tl[0] is BEGIN, tl[1..=16] the body, tl[17] END.
        assert_eq!(tl.len(), 18);
        let join = |ls: &[String]| {
            let mut s = ls.join("\n");
            s.push('\n');
            s.into_bytes()
        };
        let edit_line = |i: usize, f: &dyn Fn(&str) -> String| {
            let mut ls = tl.clone();
            ls[i] = f(&ls[i]);
            join(&ls)
        };
        let last_body = 16;
        let last = tl[last_body].clone();
        assert!(
            last.ends_with("=="),
            "the last line of a 730-byte file has two padding characters"
        );
        let nonzero_bits = {
            // "xy==": y carries 4 padding bits that must be zero.
            let mut chars: Vec<char> = last.chars().collect();
            let n = chars.len();
            let y = chars[n - 3];
            let alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
            let pos = alphabet.find(y).expect("base64 char");
            chars[n - 3] = alphabet.as_bytes()[pos | 1] as char;
            chars.into_iter().collect::<String>()
        };
        let url_line = (1..=15)
            .find(|&i| tl[i].contains('+') || tl[i].contains('/'))
            .expect("a line with + or /");
        let rewrapped = {
            let body: String = tl[1..=last_body].concat();
            let mut ls = vec![tl[0].clone()];
            let chars: Vec<char> = body.chars().collect();
            for c in chars.chunks(76) {
                ls.push(c.iter().collect());
            }
            ls.push(tl[17].clone());
            join(&ls)
        };
        let mut crlf_end_lf = String::from_utf8(armor_text(&lines, "\r\n")).expect("ASCII");
        crlf_end_lf.truncate(crlf_end_lf.len() - 2);
        crlf_end_lf.push('\n');
        let fails: Vec<(&str, &str, Vec<u8>)> = vec![
            (
                "armor_mixed_endings",
                "CRLF after BEGIN, LF on every other line",
                {
                    let mut s = lf.clone();
                    s.splice(BEGIN.len()..BEGIN.len(), [b'\r']);
                    s
                },
            ),
            (
                "armor_crlf_but_end_lf",
                "CRLF on every line but the END line",
                crlf_end_lf.into_bytes(),
            ),
            (
                "armor_lone_cr",
                "a CR inside body line 2",
                edit_line(2, &|l| format!("{}\r{}", &l[..30], &l[30..])),
            ),
            ("armor_line_76", "the body wrapped at 76 columns", rewrapped),
            (
                "armor_line_65",
                "body line 2 has 65 characters (the first character of line 3 moved up)",
                {
                    let mut ls = tl.clone();
                    let c = ls[3].remove(0);
                    ls[2].push(c);
                    join(&ls)
                },
            ),
            (
                "armor_short_line_in_middle",
                "body line 2 cut to 60 characters",
                edit_line(2, &|l| l[..60].to_string()),
            ),
            (
                "armor_empty_line_in_body",
                "an empty line between body lines 2 and 3",
                {
                    let mut ls = tl.clone();
                    ls.insert(3, String::new());
                    join(&ls)
                },
            ),
            (
                "armor_empty_line_after_begin",
                "an empty line right after BEGIN",
                {
                    let mut ls = tl.clone();
                    ls.insert(1, String::new());
                    join(&ls)
                },
            ),
            (
                "armor_no_body",
                "BEGIN and END lines only",
                join(&[tl[0].clone(), tl[17].clone()]),
            ),
            ("armor_missing_end", "no END line", join(&tl[..17])),
            (
                "armor_end_without_newline",
                "the END line without its line feed",
                {
                    let mut v = lf.clone();
                    v.pop();
                    v
                },
            ),
            (
                "armor_garbage_before",
                "text before the BEGIN line",
                [b"Here is the file:\n".to_vec(), lf.clone()].concat(),
            ),
            (
                "armor_garbage_after",
                "text after the END line",
                [lf.clone(), b"-- \nsent from my phone\n".to_vec()].concat(),
            ),
            (
                "armor_nul_after",
                "a NUL byte after the END line",
                [lf.clone(), vec![0]].concat(),
            ),
            (
                "armor_second_armor_after",
                "the same armor twice",
                [lf.clone(), lf.clone()].concat(),
            ),
            (
                "armor_nonzero_padding_bits",
                "the last line's padding bits are not zero (non-canonical)",
                edit_line(last_body, &|_| nonzero_bits.clone()),
            ),
            (
                "armor_padding_missing",
                "the last line without its '=' padding",
                edit_line(last_body, &|l| l.trim_end_matches('=').to_string()),
            ),
            (
                "armor_extra_padding",
                "a line '====' after the last body line",
                {
                    let mut ls = tl.clone();
                    ls.insert(17, "====".to_string());
                    join(&ls)
                },
            ),
            (
                "armor_padding_in_middle",
                "body line 2 ends in '==' (padding before the last line)",
                edit_line(2, &|l| format!("{}==", &l[..62])),
            ),
            (
                "armor_invalid_character",
                "a '*' in body line 2",
                edit_line(2, &|l| format!("{}*{}", &l[..10], &l[11..])),
            ),
            (
                "armor_url_safe_alphabet",
                "'+' and '/' of a body line written as '-' and '_'",
                edit_line(url_line, &|l| l.replace('+', "-").replace('/', "_")),
            ),
            (
                "armor_space_in_line",
                "a space inside body line 2 (replacing a character)",
                edit_line(2, &|l| format!("{} {}", &l[..10], &l[11..])),
            ),
            (
                "armor_trailing_space_on_line",
                "a space after body line 2",
                edit_line(2, &|l| format!("{l} ")),
            ),
            (
                "armor_indented_line",
                "a tab before body line 2",
                edit_line(2, &|l| format!("\t{l}")),
            ),
            (
                "armor_non_ascii_byte",
                "a 0xff byte in place of a character of body line 2",
                {
                    let mut v = lf.clone();
                    let at = tl[0].len() + 1 + tl[1].len() + 1 + 5;
                    v[at] = 0xff;
                    v
                },
            ),
            (
                "armor_begin_lowercase",
                "BEGIN line in lower case",
                edit_line(0, &|l| l.to_lowercase()),
            ),
            (
                "armor_begin_trailing_space",
                "a space after the BEGIN line's dashes",
                edit_line(0, &|l| format!("{l} ")),
            ),
            (
                "armor_begin_other_label",
                "BEGIN AGE ENCRYPTED FILE",
                edit_line(0, &|_| "-----BEGIN AGE ENCRYPTED FILE-----".to_string()),
            ),
            (
                "armor_end_other_label",
                "END line with another label",
                edit_line(17, &|_| "-----END KAPSEL FILE-----".to_string()),
            ),
            (
                "armor_whitespace_only",
                "only white space",
                b" \n\t\r\n".to_vec(),
            ),
            ("armor_empty", "empty input", Vec::new()),
        ];
        for (name, comment, data) in fails {
            self.add(V::new(name, af, comment, data).ids(&[a]).plan(&p).armored());
        }
    }
}
