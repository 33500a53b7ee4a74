//! The kapsel conformance vector generator (`cargo run -p
//! kapsel-testvectors --bin generate`).
//!
//! Every random value (keys, file keys, ephemeral keys, salts, serials,
//! plaintexts) comes from a ChaCha20 generator seeded with SHA-256 of a fixed
//! label and the vector's name, so rerunning the generator reproduces every
//! byte, and adding a vector changes no other. Segment signatures are
//! deterministic (RFC 6979) and low-`s` (SPEC 6.5).
//!
//! Well-formed files come either from the real encoder
//! (`Encryptor::wrap_output_with_rng`) or from the raw builder below, which
//! writes every header field itself so that it can write invalid ones. The
//! builder computes the payload over the header bytes it wrote, so a header
//! that breaks one rule still authenticates and the vector isolates that
//! rule; tampering that should be caught by the commitment is applied after
//! the payload was sealed. A signed file's chunks are grouped into segments
//! of 64, each signed with the codec's `SegmentSigner` in deterministic
//! mode; the generator also builds `signed_j` itself from SPEC 6.5 and
//! checks that the codec signed exactly that message. Each vector's outcome
//! class and released plaintext are what SPEC.md says, worked out here by
//! construction; the runners check the decoders against them.

//! One module per family of vectors, each an `impl Gen` block that adds its
//! vectors: `encoder` (files from the real encoder), `header` (magic,
//! version, truncation, fixed fields, bit flips), `points` (invalid P-256
//! points, stanza keys and sender keys from one table), `stanzas` (stanzas,
//! extensions, recipients), `payload` (chunks, truncation, the counter),
//! `signed` (signed files and segments) and `armor`. This module holds the
//! raw builder they share.

// The vector tables are tuples with boxed edits: long types, read once.
#![allow(clippy::type_complexity)]

use std::fs;
use std::io::{self, Write};
use std::path::Path;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use kapsel_codec::hazmat::hpke::{self, Mode};
use kapsel_codec::hazmat::payload::ChunkCipher;
use kapsel_codec::hazmat::segment::{
    ExternalSigner, SegmentSigner, FULL_SEGMENT_LEN, MIN_FINAL_SEGMENT_LEN, SEGMENT_CHUNKS,
    SEGMENT_LABEL, SIGNATURE_LEN,
};
use kapsel_codec::{hazmat::HPKE_INFO, Encryptor, Identity};
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::{PublicKey, SecretKey};
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use sha2::{Digest, Sha256};

use crate::vector::{Expect, Vector};

mod armor;
mod encoder;
mod header;
mod payload;
mod points;
mod signed;
mod stanzas;

/// Plaintext bytes per chunk.
const CHUNK: usize = 16384;
/// Ciphertext bytes per full chunk.
const CT_CHUNK: usize = CHUNK + 16;
/// Plaintext bytes per full segment (SPEC 6.5): 1 MiB.
const SEGMENT: usize = 64 * CHUNK;
/// Bytes of a full segment: 64 chunks and a signature.
const FULL_SEGMENT: usize = 64 * CT_CHUNK + 64;
/// The salt and the commitment.
const PREFIX: usize = 56;
// The SPEC's numbers, as the codec names them.
const _: () = assert!(
    SEGMENT_CHUNKS == 64
        && FULL_SEGMENT_LEN == FULL_SEGMENT
        && FULL_SEGMENT == 1_049_664
        && SIGNATURE_LEN == 64
        && MIN_FINAL_SEGMENT_LEN == 80
);
/// The creation time of every vector that does not test it: 2026-01-01T00:00:00Z.
pub(crate) const T0: u64 = 1_767_225_600;
const MAGIC: [u8; 8] = *b"\x8bKAPSEL\n";
const MAX_CREATED_AT: u64 = 253_402_300_799;
/// The label of `signed_j` (SPEC 6.5).
const SEGMENT_SIGNATURE_LABEL: &[u8] = b"kapsel/v1 segment\x00";
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
    codec_identity(&SecretKey::random(&mut seeded(&format!("key {label}"))))
}

/// The codec's identity for a `p256` key: the same scalar, loaded into AWS-LC.
pub(crate) fn codec_identity(secret: &SecretKey) -> Identity {
    Identity::from_secret_key(codec_key(secret))
}

fn codec_key(secret: &SecretKey) -> kapsel_codec::hazmat::ec::SecretKey {
    kapsel_codec::hazmat::ec::SecretKey::from_bytes(&secret.to_bytes())
        .expect("a p256 scalar is in [1, n-1]")
}

/// The `p256` key of a codec identity, for RFC 6979 signing.
fn p256_key(id: &Identity) -> SecretKey {
    SecretKey::from_slice(&id.secret_key().to_bytes()[..]).expect("a valid scalar")
}

/// Signs segments as `id` with RFC 6979 deterministic nonces (`p256`),
/// low `s`: what makes signed vectors reproducible.
pub(crate) fn rfc6979_signer(id: &Identity) -> ExternalSigner {
    let key = SigningKey::from(&p256_key(id));
    ExternalSigner::new(move |msg| {
        let sig: Signature = key.sign(msg);
        let sig = sig.normalize_s().unwrap_or(sig);
        let mut out = [0u8; 64];
        out.copy_from_slice(&sig.to_bytes());
        out
    })
}

/// [`Encryptor::wrap_output_with_rng`], with RFC 6979 segment signatures
/// for a signed file: every byte reproducible from `rng`.
pub(crate) fn wrap_reproducible<W: std::io::Write>(
    e: Encryptor,
    sender: Option<&Identity>,
    output: W,
    rng: &mut ChaCha20Rng,
) -> kapsel_codec::FileWriter<W> {
    match sender {
        Some(s) => e.wrap_output_with_rng_and_signer(output, rng, rfc6979_signer(s)),
        None => e.wrap_output_with_rng(output, rng),
    }
    .expect("encoder header")
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

/// Seals `file_key` to `to` with its per-stanza hint (SPEC 4.4):
/// `kem_sender` selects Encap or AuthEncap, `mode` the key schedule. Only
/// deliberately wrong stanzas use anything but Encap and base mode (SPEC 5.1).
fn wrap_with(
    rng: &mut ChaCha20Rng,
    to: &Identity,
    kem_sender: Option<&Identity>,
    mode: Mode,
    file_key: &[u8; 32],
) -> Wrapped {
    let ephemeral = codec_key(&SecretKey::random(&mut *rng));
    let e = hpke::encap(
        to.to_recipient().public_key(),
        kem_sender.map(Identity::secret_key),
        &ephemeral,
    );
    let mut ctx = hpke::Context::new(mode, &e.shared_secret, HPKE_INFO);
    let wrapped = ctx.seal(b"", file_key).expect("first HPKE seal");
    let w = Wrapped {
        hint: stanza_hint(to, &e.enc),
        enc: e.enc.to_vec(),
        wrapped,
    };
    assert_eq!(w.hint, to.to_recipient().stanza_hint(&w.enc));
    w
}

/// A stanza as SPEC 5.2 writes it: HPKE base mode, per-stanza hint.
fn wrap(rng: &mut ChaCha20Rng, to: &Identity, file_key: &[u8; 32]) -> Wrapped {
    wrap_with(rng, to, None, Mode::Base, file_key)
}

/// SPEC 4.4, written from the SPEC: the hint of `id`'s recipient for a
/// stanza with encapsulated key `enc`.
fn stanza_hint(id: &Identity, enc: &[u8]) -> [u8; 4] {
    let mut h = Sha256::new();
    h.update(b"kapsel/v1 hint\x00");
    h.update(id.to_recipient().to_compressed());
    h.update(enc);
    let d = h.finalize();
    [d[0], d[1], d[2], d[3]]
}

/// The hint of the format before per-stanza hints: SHA-256 of the
/// compressed point, the same in every stanza for one recipient.
fn old_style_hint(id: &Identity) -> [u8; 4] {
    let d = Sha256::digest(id.to_recipient().to_compressed());
    [d[0], d[1], d[2], d[3]]
}

/// Which hint a stanza carries.
#[derive(Clone, Copy)]
enum Hint<'a> {
    /// The recipient's own hint for this stanza.
    Real,
    Zero,
    Raw([u8; 4]),
    /// The hint another identity would compute for this stanza.
    Of(&'a Identity),
    /// The recipient's hint for another `enc` (copied from another stanza).
    OtherEnc,
    /// The recipient's old-style hint, independent of `enc`.
    OldStyle,
}

impl Hint<'_> {
    fn apply(self, w: &mut Wrapped, to: &Identity, rng: &mut ChaCha20Rng) {
        w.hint = match self {
            Hint::Real => w.hint,
            Hint::Zero => [0; 4],
            Hint::Raw(h) => h,
            Hint::Of(other) => stanza_hint(other, &w.enc),
            Hint::OtherEnc => {
                let other = SecretKey::random(&mut *rng).public_key();
                stanza_hint(to, other.to_encoded_point(false).as_bytes())
            }
            Hint::OldStyle => old_style_hint(to),
        };
    }
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
    /// Salt, commitment and chunks, without any signature.
    fn payload(&self) -> Vec<u8> {
        let mut out = self.prefix.clone();
        for c in &self.chunks {
            out.extend_from_slice(c);
        }
        out
    }

    /// The file with an unsigned body: an anonymous file, or a signed
    /// header whose sender signed nothing.
    fn file(&self) -> Vec<u8> {
        let mut out = self.header.clone();
        out.extend_from_slice(&self.payload());
        out
    }

    /// The chunk bytes of each segment: the chunks in groups of 64 (SPEC 6.5).
    fn segment_bytes(&self) -> Vec<Vec<u8>> {
        self.chunks
            .chunks(SEGMENT_CHUNKS)
            .map(|group| group.concat())
            .collect()
    }

    /// The segments, each signed by `id` for this header, salt and commitment.
    fn signed_by(&self, id: &Identity) -> Vec<Segment> {
        let groups = self.segment_bytes();
        let last = groups.len() - 1;
        let signer = Signing::new(id, &self.header, &self.prefix);
        groups
            .into_iter()
            .enumerate()
            .map(|(j, chunks)| {
                let sig = signer.sign(j as u64, j == last, &chunks);
                Segment { chunks, sig }
            })
            .collect()
    }

    /// The file with its segments signed by `id`.
    fn signed_file(&self, id: &Identity) -> Vec<u8> {
        assemble(&self.header, &self.prefix, &self.signed_by(id))
    }
}

/// One segment of a signed file: its chunk bytes and its signature.
#[derive(Clone)]
struct Segment {
    chunks: Vec<u8>,
    sig: [u8; 64],
}

impl Segment {
    fn bytes(&self) -> Vec<u8> {
        [self.chunks.as_slice(), &self.sig].concat()
    }
}

/// `header || prefix || segments`.
fn assemble(header: &[u8], prefix: &[u8], segments: &[Segment]) -> Vec<u8> {
    let mut out = [header, prefix].concat();
    for s in segments {
        out.extend_from_slice(&s.bytes());
    }
    out
}

/// `signed_j` of SPEC 6.5, written from the SPEC, with any label.
fn signed_message(
    label: &[u8],
    header: &[u8],
    prefix: &[u8],
    index: u64,
    is_final: bool,
    chunk_bytes: &[u8],
) -> Vec<u8> {
    let mut m = label.to_vec();
    m.extend_from_slice(&Sha256::digest(header));
    m.extend_from_slice(prefix);
    m.extend_from_slice(&index.to_be_bytes());
    m.push(u8::from(is_final));
    m.extend_from_slice(&Sha256::digest(chunk_bytes));
    m
}

/// ECDSA P-256 / SHA-256 of `msg` by `id`, RFC 6979, `r || s` with low `s`.
fn ecdsa(id: &Identity, msg: &[u8]) -> [u8; 64] {
    let sig: Signature = SigningKey::from(&p256_key(id)).sign(msg);
    let sig = sig.normalize_s().unwrap_or(sig);
    let mut out = [0u8; 64];
    out.copy_from_slice(&sig.to_bytes());
    out
}

/// The segment signer of one file: the codec's, in deterministic mode,
/// checked against `signed_j` built here.
struct Signing<'a> {
    codec: SegmentSigner,
    id: &'a Identity,
    header: Vec<u8>,
    prefix: Vec<u8>,
}

impl<'a> Signing<'a> {
    fn new(id: &'a Identity, header: &[u8], prefix: &[u8]) -> Self {
        assert_eq!(SEGMENT_LABEL, SEGMENT_SIGNATURE_LABEL);
        let p: [u8; PREFIX] = prefix.try_into().expect("56-byte payload prefix");
        Signing {
            codec: SegmentSigner::with_external(rfc6979_signer(id), header, &p),
            id,
            header: header.to_vec(),
            prefix: prefix.to_vec(),
        }
    }

    fn sign(&self, index: u64, is_final: bool, chunk_bytes: &[u8]) -> [u8; 64] {
        let sig = self
            .codec
            .sign(index, is_final, chunk_bytes)
            .expect("an external signer cannot fail");
        let msg = signed_message(
            SEGMENT_SIGNATURE_LABEL,
            &self.header,
            &self.prefix,
            index,
            is_final,
            chunk_bytes,
        );
        assert_eq!(msg.len(), 147);
        assert_eq!(
            sig,
            ecdsa(self.id, &msg),
            "the codec's segment signer signs another message than SPEC 6.5's signed_j"
        );
        sig
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
    let (cipher, prefix) = ChunkCipher::for_encryption_with_salt(file_key, header, salt);
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

/// Everything that makes one file.
#[derive(Clone)]
struct Plan {
    hdr: Hdr,
    file_key: [u8; 32],
    salt: [u8; 24],
    pt: Vec<u8>,
    /// Signs the segments (normally the sender named in the header).
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

    /// The file: header, payload and, if there is a signer, in signed segments.
    fn bytes(&self) -> Vec<u8> {
        let s = self.sealed();
        match &self.signer {
            Some(id) => s.signed_file(id),
            None => s.file(),
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
    to: &[(&Identity, Hint<'_>)],
    sender: Option<&Identity>,
    pt_len: usize,
) -> Plan {
    let pt = random_bytes(rng, pt_len);
    let mut file_key = [0u8; 32];
    rng.fill_bytes(&mut file_key);
    let stanzas = to
        .iter()
        .map(|(id, hint)| {
            let mut w = wrap(rng, id, &file_key);
            hint.apply(&mut w, id, rng);
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
    let mut w = wrap_reproducible(e, sender, Vec::new(), rng);
    w.write_all(pt).expect("write to Vec");
    (file_key, w.finish().expect("finish to Vec"))
}

/// The type 0x0001 stanzas of a file's header: hint, enc, wrapped key.
fn p256_stanzas(file: &[u8]) -> Vec<([u8; 4], Vec<u8>, Vec<u8>)> {
    let (_, header) = kapsel_format::read::header(file).expect("a valid header");
    header
        .stanzas
        .iter()
        .filter_map(|s| match s {
            kapsel_format::Stanza::P256Hpke {
                hint,
                enc,
                wrapped_key,
            } => Some((*hint, enc.0.to_vec(), wrapped_key.to_vec())),
            _ => None,
        })
        .collect()
}

/// The key a stanza opens to under `id` in HPKE base mode, if it opens.
fn opens(id: &Identity, enc: &[u8], wrapped: &[u8]) -> Option<[u8; 32]> {
    let shared = hpke::decap(enc, id.secret_key(), None).ok()?;
    let mut ctx = hpke::Context::new(Mode::Base, &shared, HPKE_INFO);
    let mut key = [0u8; 32];
    ctx.open_into(b"", wrapped, &mut key).ok()?;
    Some(key)
}

/// The header length a file declares (bytes 12 to 16).
fn header_len_of(file: &[u8]) -> usize {
    u32::from_be_bytes(file[12..16].try_into().expect("4 bytes")) as usize
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
    comment: String,
    data: Vec<u8>,
    armor: bool,
}

impl<'a> V<'a> {
    fn new(name: &'a str, expect: Expect, comment: impl Into<String>, data: Vec<u8>) -> Self {
        V {
            name,
            expect,
            ids: Vec::new(),
            file_key: None,
            sender: None,
            released: Vec::new(),
            comment: comment.into(),
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
            passphrase: None,
            file_key: v.file_key,
            released: v.released,
            sender: v.sender.map(|s| s.to_recipient().to_string()),
            comment: v.comment,
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
    g.segments();
    g.armor();
    crate::pq::vectors(&mut g.out);
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
