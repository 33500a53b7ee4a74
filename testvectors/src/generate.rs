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

// The vector tables are tuples with boxed edits: long types, read once.
#![allow(clippy::type_complexity)]

use std::fs;
use std::io::{self, Write};
use std::path::Path;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use kapsel_codec::hpke::{self, Mode};
use kapsel_codec::payload::ChunkCipher;
use kapsel_codec::segment::{
    ExternalSigner, SegmentSigner, FULL_SEGMENT_LEN, MIN_FINAL_SEGMENT_LEN, SEGMENT_CHUNKS,
    SEGMENT_LABEL, SIGNATURE_LEN,
};
use kapsel_codec::{Encryptor, Identity, HPKE_INFO};
use p256::ecdsa::signature::Signer;
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

fn codec_key(secret: &SecretKey) -> kapsel_codec::ec::SecretKey {
    kapsel_codec::ec::SecretKey::from_bytes(&secret.to_bytes())
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
        let sig = self.codec.sign(index, is_final, chunk_bytes);
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
        for (name, sender) in [
            ("encoder_hidden_recipients", None),
            ("encoder_hidden_recipients_signed", Some(&k.sam)),
        ] {
            let mut rng = seeded(name);
            let pt = random_bytes(&mut rng, 1000);
            let (fk, data) = encrypt(&mut rng, &[&k.bob, &k.carol, a], sender, true, &pt);
            let stanzas = p256_stanzas(&data);
            assert!(stanzas.iter().all(|(hint, _, _)| *hint == [0; 4]));
            let at = stanzas
                .iter()
                .position(|(_, enc, wrapped)| opens(a, enc, wrapped).is_some())
                .expect("alice's stanza");
            let comment =
                format!(
                "{}recipients bob, carol, alice with zero hints, stanzas shuffled by the encoder: \
                 the identity's stanza is number {} of 3",
                if sender.is_some() { "signed by sam, " } else { "" },
                at + 1
            );
            let mut v = V::new(name, Expect::Success, comment, data)
                .ids(&[a])
                .key(fk)
                .released(&pt);
            if let Some(s) = sender {
                v = v.sender(s);
            }
            self.add(v);
        }
        for (name, len, comment) in [
            (
                "encoder_signed",
                1000,
                "signed by sam: one segment (the final chunk and its signature)",
            ),
            (
                "encoder_signed_20000",
                20000,
                "signed by sam: one segment of two chunks and its signature",
            ),
        ] {
            let mut rng = seeded(name);
            let pt = random_bytes(&mut rng, len);
            let (fk, data) = encrypt(&mut rng, &[a], Some(&k.sam), false, &pt);
            self.add(
                V::new(name, Expect::Success, comment, data)
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
                "signed, empty plaintext: one segment of 80 bytes (an empty chunk and the signature); two recipients, the identity is bob (second)",
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
            ("version_3", set(8, &[3]), uns, "version 3, the rest a valid v1 header"),
            ("version_255", set(8, &[0xff]), uns, "version 255"),
            ("version_3_nothing_after", good[..8].iter().copied().chain([3]).collect(), uns, "magic and version 3, then end of input: the version is judged as soon as it is read"),
            ("version_3_garbage_after", {
                let mut v = good[..8].to_vec();
                v.push(3);
                v.extend([0xee; 40]);
                v
            }, uns, "version 3 followed by bytes that are no header: nothing after the version is interpreted"),
            ("version_2_without_v2_stanza", set(8, &[2]), mal, "version 2, the rest a valid v1 header: a header without a post-quantum or passphrase stanza must be written as version 1 (SPEC 14.1)"),
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
            let mut w = wrap(&mut rng, a, &p.file_key);
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
            let w = wrap(&mut rng, a, &p.file_key);
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
        let mut w = wrap(&mut rng, &k.bob, &p.file_key);
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
        let mut w = wrap(&mut rng, &k.bob, &p.file_key);
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
        let mut w = wrap(&mut rng, a, &p.file_key);
        let mut y = [0u8; 32];
        y.copy_from_slice(&w.enc[33..]);
        w.enc[33..].copy_from_slice(&be_sub(&P, &y));
        assert!(is_valid_point(&w.enc));
        // The hint is recomputed over the new enc, so it still points at a.
        w.hint = a.to_recipient().stanza_hint(&w.enc);
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
        let mut w = wrap(&mut rng, &k.bob, &p.file_key);
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
                stanzas.push(wrap(&mut rng, &other, &file_key).stanza());
            }
            stanzas.push(wrap(&mut rng, a, &file_key).stanza());
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
        let mut w = wrap(&mut rng, a, &p.file_key);
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
            ("signed_flip_chunk_0", hl + 56 + 100, 0, sig_fail, "a bit of chunk 0 of 2 in the only segment: its signature is checked before any chunk is opened, and fails", 0),
            ("signed_flip_final_chunk", last - 64 - 3, 0, sig_fail, "a bit of the final chunk: the segment's signature fails", 0),
            ("signed_flip_signature_r", last - 40, 2, sig_fail, "a bit of the signature's r", 0),
            ("signed_flip_signature_s", last, 0, sig_fail, "a bit of the signature's s (its lowest bit: s stays low)", 0),
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
                "the identity's stanza carries the hint carol would compute for it: it is still tried",
                vec![(b, Hint::Real), (a, Hint::Of(c))],
                vec![a],
            ),
            (
                "recipients_old_style_hint",
                "the identity's stanza carries the old-style hint SHA-256(compressed point)[0..4], which is not its hint (SPEC 4.4): not preferred, but still tried",
                vec![(b, Hint::Real), (a, Hint::OldStyle)],
                vec![a],
            ),
            (
                "recipients_hint_for_other_enc",
                "the identity's stanza carries the identity's hint for another enc: not its hint here, still tried",
                vec![(a, Hint::OtherEnc), (b, Hint::Real)],
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
        struct S<'a>(&'a Identity, Hint<'a>, bool, bool);
        let ha = Expect::HeaderAuthFailure;
        let crafted: Vec<(&str, Expect, &str, Vec<S>, Vec<&Identity>)> = vec![
            ("no_match_zero_hint_corrupted", nm, "the identity's stanza has a zero hint and does not open: a zero hint never matches, so no match", vec![S(a, Hint::Zero, true, true)], vec![a]),
            ("no_match_other_hint_corrupted", nm, "the identity's stanza carries bob's hint for it and does not open", vec![S(a, Hint::Of(b), true, true)], vec![a]),
            ("no_match_old_style_hint_corrupted", nm, "the identity's stanza carries the identity's old-style hint SHA-256(compressed point)[0..4] and does not open: that is not a hint match (SPEC 4.4), so no match", vec![S(a, Hint::OldStyle, true, true)], vec![a]),
            ("no_match_hint_for_other_enc_corrupted", nm, "the identity's stanza carries the identity's hint computed for another enc and does not open: hints are per stanza, so no match", vec![S(a, Hint::OtherEnc, true, true)], vec![a]),
            ("auth_hinted_stanza_corrupted", ha, "alice's stanza carries her hint and does not open; the other stanza is bob's", vec![S(b, Hint::Real, true, false), S(a, Hint::Real, true, true)], vec![a]),
            ("auth_hint_matches_second_identity", ha, "identities dave, alice; alice's hinted stanza does not open", vec![S(a, Hint::Real, true, true)], vec![d, a]),
            ("auth_hinted_stanza_wrong_key", ha, "alice's only stanza (hinted) wraps a wrong key: it opens and the commitment fails", vec![S(a, Hint::Real, false, false)], vec![a]),
            ("auth_zero_hint_stanza_wrong_key", ha, "alice's only stanza (zero hint) wraps a wrong key: it opened, so header authentication failure, not no match", vec![S(a, Hint::Zero, false, false)], vec![a]),
            ("auth_every_key_wrong", ha, "identities alice, bob; each one's stanza opens to a different wrong key: every pair is tried, none passes", vec![S(a, Hint::Real, false, false), S(b, Hint::Real, false, false)], vec![a, b]),
            ("recipients_first_identity_stanza_corrupted", ok, "identities alice, bob; alice's hinted stanza does not open, bob's opens", vec![S(a, Hint::Real, true, true), S(b, Hint::Real, true, false)], vec![a, b]),
            ("recipients_hinted_tried_first", ok, "two stanzas for alice: a zero-hint one wrapping a wrong key first, a hinted one with the right key second", vec![S(a, Hint::Zero, false, false), S(a, Hint::Real, true, false)], vec![a]),
            ("recipients_hinted_wrong_key_then_right", ok, "two hinted stanzas for alice, the first wraps a wrong key: it opens, fails the commitment, and the search goes on to the second (SPEC 5.3)", vec![S(a, Hint::Real, false, false), S(a, Hint::Real, true, false)], vec![a]),
            ("recipients_zero_hints_wrong_key_first", ok, "two zero-hint stanzas for alice, the first wraps a wrong key: the search goes on in header order", vec![S(a, Hint::Zero, false, false), S(a, Hint::Zero, true, false)], vec![a]),
            ("recipients_identity_order_alice_bob", ok, "the sender wrapped a wrong key to alice's (hinted) stanza and the right one to bob's; identities alice, bob: alice's key fails the commitment, bob's passes", vec![S(a, Hint::Real, false, false), S(b, Hint::Real, true, false)], vec![a, b]),
            ("recipients_identity_order_bob_alice", ok, "the same file with identities bob, alice: the outcome does not depend on identity order (SPEC 5.3)", vec![S(a, Hint::Real, false, false), S(b, Hint::Real, true, false)], vec![b, a]),
        ];
        for (name, expect, comment, stanzas, ids) in crafted {
            // Both identity orders decode the same file.
            let seed = if name.starts_with("recipients_identity_order_") {
                "recipients_identity_order"
            } else {
                name
            };
            let mut rng = seeded(seed);
            let mut p = plan(&mut rng, &[(a, Hint::Real)], None, pt_len);
            let fk = p.file_key;
            p.hdr.stanzas = stanzas
                .iter()
                .map(|S(to, hint, right, corrupt)| {
                    // A wrong key of its own for every stanza.
                    let key = if *right {
                        fk
                    } else {
                        random_bytes(&mut rng, 32).try_into().expect("32 bytes")
                    };
                    let mut w = wrap(&mut rng, to, &key);
                    hint.apply(&mut w, to, &mut rng);
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
        let extra = wrap(&mut rng, &k.mallory, &p.file_key);
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
                "an anonymous file whose chunks are followed by a segment signature by sam (a signed body under an anonymous header): the 64 bytes join the final chunk",
                s.signed_file(&k.sam),
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

    /// Signed files of one segment: valid, forged and damaged signatures,
    /// forgeries by a co-recipient, wrong HPKE modes, payloads the sender
    /// itself signed broken, truncation.
    fn signed(&mut self) {
        let k = self.k.clone();
        let (a, sam, mal) = (&k.alice, &k.sam, &k.mallory);
        let svf = Expect::SenderVerificationFailure;
        let pf = Expect::PayloadFailure;
        let ha = Expect::HeaderAuthFailure;
        // A signed file for alice and mallory: 20000 bytes, two chunks in
        // one segment, the final one.
        let mut rng = seeded("signed");
        let p = plan(
            &mut rng,
            &[(a, Hint::Real), (mal, Hint::Real)],
            Some(sam),
            20000,
        );
        let good = p.bytes();
        let sealed = p.sealed();
        let segs = sealed.signed_by(sam);
        assert_eq!(segs.len(), 1);
        let chunk_bytes = segs[0].chunks.clone();
        let sig = segs[0].sig;
        let unsigned = sealed.file();
        assert_eq!(good, [unsigned.as_slice(), &sig].concat());
        let n = good.len();
        let with_sig = |r: &[u8], s: &[u8]| [unsigned.as_slice(), r, s].concat();
        let with_signature = |sig: [u8; 64]| [unsigned.as_slice(), &sig].concat();
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
        let signing = Signing::new(sam, &sealed.header, &sealed.prefix);
        // Another file of sam's, for its header and its salt and commitment.
        let other = plan(
            &mut rng,
            &[(a, Hint::Real), (mal, Hint::Real)],
            Some(sam),
            20000,
        );
        let other_sealed = other.sealed();
        self.add(
            V::new(
                "signed_valid",
                Expect::Success,
                "signed by sam for alice and mallory: one segment of two chunks",
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
        // Every case releases nothing: the only segment does not verify.
        let cases: Vec<(&str, &str, Vec<u8>)> = vec![
            ("signed_high_s", "the signature with s replaced by n - s: a valid ECDSA signature, but SPEC 6.5 accepts only a low s", with_sig(&r, &high_s)),
            ("signed_signature_r_zero", "r = 0", with_sig(&[0; 32], &s)),
            ("signed_signature_s_zero", "s = 0", with_sig(&r, &[0; 32])),
            ("signed_signature_r_n", "r = n", with_sig(&N, &s)),
            ("signed_signature_s_n", "s = n", with_sig(&r, &N)),
            ("signed_signature_s_plus_1", "s replaced by s + 1", with_sig(&r, &be_add(&s, &one))),
            ("signed_signature_all_ff", "r = s = 2^256 - 1", with_sig(&[0xff; 32], &[0xff; 32])),
            ("signed_signature_swapped", "r and s swapped", with_sig(&s, &r)),
            ("signed_signature_truncated_1", "the last signature byte missing: the last 64 bytes (one of the final chunk, 63 of the signature) do not verify", good[..n - 1].to_vec()),
            ("signed_signature_truncated_32", "half the signature missing", good[..n - 32].to_vec()),
            ("signed_signature_trailing_byte", "one byte after the signature", [good.clone(), vec![0]].concat()),
            ("signed_signature_twice", "the signature appended twice", [good.clone(), sig.to_vec()].concat()),
            ("signed_by_other_key", "the segment signed by mallory's key while the header names sam", sealed.signed_file(mal)),
            ("signed_header_unsigned_body", "the header names sam, whose key signed nothing: the body has no signature, and the final chunk's last 64 bytes are taken as one", unsigned.clone()),
            ("signed_signature_of_other_label", "sam's signature over signed_j with the label \"kapsel/v1 signature\" instead of \"kapsel/v1 segment\"", with_signature(ecdsa(sam, &signed_message(b"kapsel/v1 signature\x00", &sealed.header, &sealed.prefix, 0, true, &chunk_bytes)))),
            ("signed_signature_over_chunk_bytes", "sam's signature over the segment's chunk bytes themselves, not over signed_j", with_signature(ecdsa(sam, &chunk_bytes))),
            ("signed_segment_index_1", "the only segment signed by sam as segment 1", with_signature(signing.sign(1, true, &chunk_bytes))),
            ("signed_final_segment_signed_non_final", "the final segment signed by sam with final = 0: a cut file could not be told from a whole one", with_signature(signing.sign(0, false, &chunk_bytes))),
            ("signed_segment_for_other_header", "the segment signed by sam for the header of another of his files (same recipients, another serial), with this file's salt, commitment and chunks", with_signature(Signing::new(sam, &other_sealed.header, &sealed.prefix).sign(0, true, &chunk_bytes))),
            ("signed_segment_for_other_salt", "the segment signed by sam for this header and chunks but the salt and commitment of another file", with_signature(Signing::new(sam, &sealed.header, &other_sealed.prefix).sign(0, true, &chunk_bytes))),
        ];
        for (name, comment, data) in cases {
            self.add(V::new(name, svf, comment, data).ids(&[a]).plan(&p));
        }
        // Forgeries by mallory, a co-recipient who knows the file key: she
        // keeps the header byte for byte (so the commitment she computes is
        // valid), but cannot sign as sam, so nothing is released.
        let forged_pt = random_bytes(&mut rng, 30000);
        let mut forged = p.clone();
        forged.pt = forged_pt.clone();
        forged.salt[3] ^= 0x80;
        let forged_sealed = forged.sealed();
        let mut same_salt = p.clone();
        same_salt.pt = forged_pt.clone();
        let same_salt_sealed = same_salt.sealed();
        assert_eq!(same_salt_sealed.prefix, sealed.prefix);
        let mut reserial = p.clone();
        reserial.hdr.serial = reserial.hdr.serial.wrapping_add(1);
        let mut recreated = p.clone();
        recreated.hdr.created_at += 86400;
        let forgeries: Vec<(&str, &str, Vec<u8>)> = vec![
            ("signed_insider_forgery_old_signature", "mallory encrypts another plaintext under the genuine header and file key with a new salt (a valid commitment) and appends sam's genuine signature: the first segment fails, nothing is released", [forged_sealed.file(), sig.to_vec()].concat()),
            ("signed_insider_forgery_own_signature", "the same forgery, its segment signed with mallory's own key", forged_sealed.signed_file(mal)),
            ("signed_insider_forgery_unsigned", "the same forgery without any signature", forged_sealed.file()),
            ("signed_insider_forgery_same_salt", "mallory keeps the header, salt and commitment byte for byte, encrypts another plaintext and appends sam's genuine signature: every chunk would open, the signature covers other chunk bytes", [same_salt_sealed.file(), sig.to_vec()].concat()),
            ("signed_insider_resigned_genuine_file", "the genuine header, salt, commitment and chunks, the segment re-signed by mallory with her own key: the header names sam", sealed.signed_file(mal)),
            ("signed_insider_new_serial", "mallory changes the serial (a replay under a fresh identifier), seals the payload again and keeps sam's signature", [reserial.sealed().file(), sig.to_vec()].concat()),
            ("signed_insider_new_time_own_signature", "mallory changes created_at, seals again and signs with her own key", recreated.sealed().signed_file(mal)),
        ];
        for (name, comment, data) in forgeries {
            self.add(V::new(name, svf, comment, data).ids(&[a]).plan(&p));
        }
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
        // The sender key replaced by mallory's.
        let mut swapped = p.clone();
        swapped.hdr.sender = sender_field(Some(mal));
        swapped.signer = Some(mal.clone());
        swapped.sender = Some(mal.clone());
        let data = [swapped.header(), good[p.header().len()..].to_vec()].concat();
        self.add(
            V::new("signed_sender_key_replaced", ha, "sender_key replaced by mallory's, the payload and signature kept: the commitment covers the header, sender key included", data)
                .ids(&[a])
                .plan(&p),
        );
        let data = swapped.bytes();
        self.add(
            V::new("signed_sender_key_replaced_resealed", Expect::Success, "sam's file with the sender key replaced by mallory's, sealed again and signed by mallory: a valid file from mallory (HPKE base mode binds no sender); only a receiver that expects sam refuses it", data)
                .ids(&[a])
                .plan(&swapped)
                .released(&swapped.pt),
        );
        // Stanzas sealed in HPKE auth mode: the format uses base mode only
        // (SPEC 5.1), so they do not open (SPEC 5.3 step 3 decides the class).
        let mut rng3 = seeded("signed_mode_mismatch");
        let auth_stanza =
            |rng: &mut ChaCha20Rng, kem: Option<&Identity>, mode: Mode, key: &[u8; 32]| {
                wrap_with(rng, a, kem, mode, key)
            };
        let mut auth_in_signed = plan(&mut rng3, &[(a, Hint::Real)], Some(sam), 500);
        auth_in_signed.hdr.stanzas =
            vec![auth_stanza(&mut rng3, Some(sam), Mode::Auth, &auth_in_signed.file_key).stanza()];
        let mut auth_in_anon = plan(&mut rng3, &[(a, Hint::Real)], None, 500);
        auth_in_anon.hdr.stanzas =
            vec![auth_stanza(&mut rng3, Some(sam), Mode::Auth, &auth_in_anon.file_key).stanza()];
        let mut kem_mismatch = plan(&mut rng3, &[(a, Hint::Real)], Some(sam), 500);
        kem_mismatch.hdr.stanzas =
            vec![auth_stanza(&mut rng3, Some(sam), Mode::Base, &kem_mismatch.file_key).stanza()];
        let mut auth_hidden = plan(&mut rng3, &[(a, Hint::Real)], Some(sam), 500);
        let mut w = auth_stanza(&mut rng3, Some(sam), Mode::Auth, &auth_hidden.file_key);
        w.hint = [0; 4];
        auth_hidden.hdr.stanzas = vec![w.stanza()];
        let mut auth_then_base = plan(&mut rng3, &[(a, Hint::Real)], Some(sam), 500);
        auth_then_base.hdr.stanzas = vec![
            auth_stanza(&mut rng3, Some(sam), Mode::Auth, &auth_then_base.file_key).stanza(),
            wrap(&mut rng3, a, &auth_then_base.file_key).stanza(),
        ];
        let modes: Vec<(&str, Expect, &str, &Plan)> = vec![
            ("signed_header_auth_mode_stanza", ha, "a signed header whose only stanza (hinted for alice) was sealed in HPKE auth mode with sam's key: it does not open in base mode, and its hint matched", &auth_in_signed),
            ("anonymous_header_auth_mode_stanza", ha, "an anonymous header whose only stanza (hinted for alice) was sealed in HPKE auth mode by sam", &auth_in_anon),
            ("signed_header_auth_kem_base_schedule", ha, "a signed header whose stanza used AuthEncap with the base-mode key schedule (mode 0x00): another shared secret, it does not open", &kem_mismatch),
            ("no_match_auth_mode_stanza_zero_hint", Expect::NoMatch, "a signed header whose only stanza (zero hint) was sealed in HPKE auth mode: nothing opens and no hint matched", &auth_hidden),
            ("recipients_auth_mode_then_base_stanza", Expect::Success, "two stanzas for alice, both hinted: an auth-mode one that does not open, then a base-mode one that does", &auth_then_base),
        ];
        for (name, expect, comment, plan) in modes {
            let released = if expect == Expect::Success {
                plan.pt.clone()
            } else {
                Vec::new()
            };
            self.add(
                V::new(name, expect, comment, plan.bytes())
                    .ids(&[a])
                    .plan(plan)
                    .released(&released),
            );
        }
        // The sender signed a broken segment: the signature verifies, a chunk
        // does not open, and the segment releases nothing (SPEC 6.5 step 4).
        let mut rng4 = seeded("signed_by_sender_broken_payload");
        let q = plan(&mut rng4, &[(a, Hint::Real)], Some(sam), 2 * CHUNK);
        let qs = q.sealed();
        assert_eq!(qs.chunks.len(), 3);
        let q_signing = Signing::new(sam, &qs.header, &qs.prefix);
        let sign_final = |chunks: Vec<u8>| {
            let sig = q_signing.sign(0, true, &chunks);
            assemble(&qs.header, &qs.prefix, &[Segment { chunks, sig }])
        };
        let resealed = |pieces: &[(u64, usize, usize)]| {
            let list: Vec<(u64, &[u8])> = pieces
                .iter()
                .map(|(i, from, to)| (*i, &q.pt[*from..*to]))
                .collect();
            seal_pieces(&q.file_key, &qs.header, q.salt, &list)
                .chunks
                .concat()
        };
        let broken: Vec<(&str, &str, Vec<u8>)> = vec![
            ("signed_valid_signature_final_chunk_missing", "sam signed a final segment of two full chunks without the empty final chunk: the signature verifies, then the last piece is not a final chunk (16400 bytes a multiple of the chunk size)", sign_final([qs.chunks[0].clone(), qs.chunks[1].clone()].concat())),
            ("signed_valid_signature_trailing_byte_in_segment", "sam signed a final segment with one byte after the final chunk: the final piece has 17 bytes and does not open", sign_final([qs.chunks.concat(), vec![0x77]].concat())),
            ("signed_valid_signature_chunk_index_wrong", "sam signed a segment whose chunk 1 was sealed with index 2", sign_final(resealed(&[(0, 0, CHUNK), (2, CHUNK, 2 * CHUNK), (2, 2 * CHUNK, 2 * CHUNK)]))),
            ("signed_valid_signature_short_chunk_not_last", "sam signed a segment whose chunk 0 was sealed short (1000 bytes), followed by a final chunk: both join in one piece, which does not open", sign_final(resealed(&[(0, 0, 1000), (1, 1000, 1500)]))),
            ("signed_valid_signature_no_chunk", "sam signed a final segment with no chunk bytes at all: 64 bytes, shorter than a final segment (truncated)", sign_final(Vec::new())),
        ];
        for (name, comment, data) in broken {
            self.add(V::new(name, pf, comment, data).ids(&[a]).plan(&q));
        }
        // Truncation of a signed payload.
        let body_without_final = [
            qs.header.as_slice(),
            &qs.prefix,
            &qs.chunks[0],
            &qs.chunks[1],
        ]
        .concat();
        let mut rng5 = seeded("signed_empty_plaintext");
        let e = plan(&mut rng5, &[(a, Hint::Real)], Some(sam), 0);
        let empty = e.bytes();
        let eh = e.header().len();
        assert_eq!(empty.len(), eh + PREFIX + 80);
        self.add(
            V::new("signed_empty_plaintext", Expect::Success, "signed, empty plaintext: one final segment of 80 bytes, an empty chunk (its tag) and the signature", empty.clone())
                .ids(&[a])
                .plan(&e),
        );
        let cuts: Vec<(&str, Expect, &str, Vec<u8>)> = vec![
            ("signed_header_only", pf, "a signed header and nothing else", qs.header.clone()),
            ("signed_truncated_in_commitment", pf, "a signed header and 40 bytes of the salt and commitment", [qs.header.as_slice(), &qs.prefix[..40]].concat()),
            ("signed_no_segments", pf, "a signed header, the salt and commitment, then end of input: the final segment is missing", [qs.header.as_slice(), &qs.prefix].concat()),
            ("signed_final_segment_63_bytes", pf, "63 bytes after the salt and commitment: shorter than a final segment", [qs.header.as_slice(), &qs.prefix, &good[n - 63..]].concat()),
            ("signed_final_segment_79_bytes", pf, "the 80-byte final segment of an empty plaintext cut by one byte: truncated before the signature is looked at", empty[..empty.len() - 1].to_vec()),
            ("signed_signature_and_final_chunk_missing", svf, "the empty final chunk and the signature removed: the end of chunk 1 is taken as the signature", body_without_final),
        ];
        for (name, expect, comment, data) in cuts {
            let plan = if name.starts_with("signed_final_segment_79") {
                &e
            } else {
                &q
            };
            self.add(V::new(name, expect, comment, data).ids(&[a]).plan(plan));
        }
    }

    /// Files of two segments (about 1 MiB each, from the real encoder): the
    /// segment boundary, segment order, cuts and flips next to it, and the
    /// final flag. A decoder releases whole verified segments only.
    fn segments(&mut self) {
        let k = self.k.clone();
        let (a, sam, mal) = (&k.alice, &k.sam, &k.mallory);
        let svf = Expect::SenderVerificationFailure;
        let pf = Expect::PayloadFailure;
        let name = "signed_segments_valid";
        let mut rng = seeded(name);
        let pt = random_bytes(&mut rng, SEGMENT + 20000);
        let (fk, good) = encrypt(&mut rng, &[a, mal], Some(sam), false, &pt);
        let hl = header_len_of(&good);
        let (header, prefix) = (&good[..hl], &good[hl..hl + PREFIX]);
        let body = hl + PREFIX;
        let boundary = body + FULL_SEGMENT;
        let seg0 = good[body..boundary].to_vec();
        let seg1 = good[boundary..].to_vec();
        // Segment 1: a full chunk, a final chunk of 3616 bytes, the signature.
        assert_eq!(seg1.len(), CT_CHUNK + (20000 - CHUNK + 16) + 64);
        // The encoder signed exactly SPEC 6.5's signed_j.
        let signing = Signing::new(sam, header, prefix);
        let seg0_chunks = &seg0[..FULL_SEGMENT - 64];
        assert_eq!(
            seg0[FULL_SEGMENT - 64..],
            signing.sign(0, false, seg0_chunks)
        );
        assert_eq!(
            seg1[seg1.len() - 64..],
            signing.sign(1, true, &seg1[..seg1.len() - 64])
        );
        let first = &pt[..SEGMENT];
        let with = |parts: &[&[u8]]| [&[header, prefix], parts].concat().concat();
        let seg0_as_final = Segment {
            chunks: seg0_chunks.to_vec(),
            sig: signing.sign(0, true, seg0_chunks),
        }
        .bytes();
        let none: &[u8] = &[];
        let cases: Vec<(&str, Expect, &str, Vec<u8>, &[u8])> = vec![
            (name, Expect::Success, "signed by sam (real encoder), 1 MiB + 20000 bytes: a full segment of 64 chunks and its signature (1049664 bytes), then a final segment of two chunks", good.clone(), &pt),
            ("signed_segments_swapped", svf, "segments 1 and 0 swapped: the first 1049664 bytes read are segment 1 and most of segment 0, whose signature fails", with(&[&seg1, &seg0]), none),
            ("signed_segments_1_duplicated", svf, "segment 1 twice: segment 0 verifies and is released; the final segment read is both copies, and its signature fails", with(&[&seg0, &seg1, &seg1]), first),
            ("signed_segments_final_dropped", pf, "the final segment removed: a cut at the segment boundary; segment 0 is released, then the missing final segment is truncation", good[..boundary].to_vec(), first),
            ("signed_segments_cut_boundary_minus_1", svf, "cut one byte before the end of segment 0: a final segment of 1049663 bytes whose last 64 bytes do not verify", good[..boundary - 1].to_vec(), none),
            ("signed_segments_cut_boundary_plus_1", pf, "cut one byte after the end of segment 0: segment 0 is released, then 1 byte is shorter than a final segment", good[..boundary + 1].to_vec(), first),
            ("signed_segments_cut_boundary_plus_79", pf, "cut 79 bytes after segment 0: segment 0 is released, 79 bytes are shorter than a final segment", good[..boundary + 79].to_vec(), first),
            ("signed_segments_cut_boundary_plus_80", svf, "cut 80 bytes after segment 0: segment 0 is released; the 80 bytes are read as a final segment whose signature fails", good[..boundary + 80].to_vec(), first),
            ("signed_segments_trailing_byte", svf, "one byte after the final segment: it joins the final segment, whose signature fails; segment 0 was released", [good.as_slice(), &[0]].concat(), first),
            ("signed_segments_flip_segment_0_chunk", svf, "a bit of chunk 10 (in segment 0): segment 0's signature fails before any chunk is opened; nothing is released", flip(good.clone(), body + 10 * CT_CHUNK + 5, 3), none),
            ("signed_segments_flip_segment_1_chunk", svf, "a bit of chunk 64 (the first of segment 1): segment 0 is released, segment 1's signature fails", flip(good.clone(), boundary + 100, 0), first),
            ("signed_segments_full_segment_signed_final", svf, "segment 0 re-signed by sam with final = 1 (as if the file ended there), segment 1 kept: a full segment is verified as non-final", with(&[&seg0_as_final, &seg1]), none),
        ];
        for (name, expect, comment, data, released) in cases {
            self.add(
                V::new(name, expect, comment, data)
                    .ids(&[a])
                    .key(fk)
                    .sender(sam)
                    .released(released),
            );
        }
        let name = "signed_segments_exactly_1_mib";
        let mut rng = seeded(name);
        let pt = random_bytes(&mut rng, SEGMENT);
        let (fk, data) = encrypt(&mut rng, &[a], Some(sam), false, &pt);
        assert_eq!(
            data.len(),
            header_len_of(&data) + PREFIX + FULL_SEGMENT + 80
        );
        self.add(
            V::new(name, Expect::Success, "signed, exactly 1 MiB (real encoder): a full segment, then a final segment of 80 bytes holding the empty final chunk and its signature", data)
                .ids(&[a])
                .key(fk)
                .sender(sam)
                .released(&pt),
        );
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
