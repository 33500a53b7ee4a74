//! Conformance vectors of format version 2 (SPEC.md section 14): hybrid
//! post-quantum stanzas (MLKEM768-P256) and passphrase stanzas (Argon2id).
//!
//! Like the version 1 vectors of [`crate::generate`], every random value
//! comes from a ChaCha20 generator seeded with the vector's name. Valid
//! files come from the real encoder (`Encryptor::wrap_output_with_rng`,
//! whose seeded path draws the ML-KEM randomness from the generator too) or
//! from the raw builder here, which writes any header and seals the payload
//! over the header bytes it wrote. Passphrase files all come from the raw
//! builder (Argon2id and AES-GCM composed here from SPEC 14.5), so that the
//! `fips` build, which refuses to write passphrase files, still reproduces
//! every vector byte for byte. Passphrase vectors use a small Argon2id
//! cost so that every decoder runs them quickly; the cost rules themselves
//! are tested with parameters that a decoder must refuse before deriving.

use kapsel_codec::hazmat::aead::Aes256Gcm;
use kapsel_codec::hazmat::hpke::{self, Mode};
use kapsel_codec::hazmat::passphrase::{argon2id_for_conformance, Cost};
use kapsel_codec::hazmat::payload::ChunkCipher;
use kapsel_codec::hazmat::pq::{self, HybridSecretKey};
use kapsel_codec::hazmat::HPKE_INFO;
use kapsel_codec::{Encryptor, HybridIdentity, Identity};
use rand_chacha::ChaCha20Rng;
use rand_core::RngCore;

use crate::generate::{identity, seeded, wrap_reproducible, T0};
use crate::vector::{Expect, Vector};

/// Plaintext bytes per chunk.
const CHUNK: usize = 16384;
/// The Argon2id cost of the valid passphrase vectors: 64 KiB, 1 pass, 1 lane.
const VECTOR_COST: Cost = Cost {
    memory_kib: 64,
    passes: 1,
    lanes: 1,
};
/// The passphrase of the passphrase vectors.
const PASSPHRASE: &[u8] = b"correct horse battery staple";

/// A hybrid identity from a seed drawn for `label`.
pub(crate) fn hybrid_identity(label: &str) -> HybridIdentity {
    let mut rng = seeded(&format!("hybrid key {label}"));
    loop {
        let mut seed = [0u8; pq::SEED_LEN];
        rng.fill_bytes(&mut seed);
        if let Ok(k) = HybridSecretKey::from_seed(&seed) {
            return HybridIdentity::from_secret_key(k);
        }
    }
}

fn plaintext(rng: &mut ChaCha20Rng, len: usize) -> Vec<u8> {
    let mut v = vec![0u8; len];
    rng.fill_bytes(&mut v);
    v
}

/// One version 2 vector, with its keys as strings.
struct V {
    name: String,
    expect: Expect,
    identities: Vec<String>,
    passphrase: Option<Vec<u8>>,
    file_key: Option<[u8; 32]>,
    released: Vec<u8>,
    sender: Option<String>,
    comment: String,
    data: Vec<u8>,
}

impl V {
    fn new(name: &str, expect: Expect, comment: &str, data: Vec<u8>) -> Self {
        V {
            name: name.to_string(),
            expect,
            identities: Vec::new(),
            passphrase: None,
            file_key: None,
            released: Vec::new(),
            sender: None,
            comment: comment.to_string(),
            data,
        }
    }
    fn hybrid(mut self, ids: &[&HybridIdentity]) -> Self {
        self.identities
            .extend(ids.iter().map(|i| i.to_secret_string().to_string()));
        self
    }
    fn p256(mut self, ids: &[&Identity]) -> Self {
        self.identities
            .extend(ids.iter().map(|i| i.to_secret_string().to_string()));
        self
    }
    fn passphrase(mut self, p: &[u8]) -> Self {
        self.passphrase = Some(p.to_vec());
        self
    }
    fn released(mut self, r: &[u8]) -> Self {
        self.released = r.to_vec();
        self
    }
    fn key(mut self, k: [u8; 32]) -> Self {
        self.file_key = Some(k);
        self
    }
    fn into_vector(self) -> Vector {
        Vector {
            name: self.name,
            expect: self.expect,
            armor: false,
            identities: self.identities,
            passphrase: self.passphrase,
            file_key: self.file_key,
            released: self.released,
            sender: self.sender,
            comment: self.comment,
            data: self.data,
        }
    }
}

/// The body of a hybrid stanza wrapping `file_key` to `to`.
fn hybrid_body(
    rng: &mut ChaCha20Rng,
    to: &HybridIdentity,
    file_key: &[u8; 32],
    hint: bool,
) -> Vec<u8> {
    let r = to.to_recipient();
    let eph = loop {
        let mut b = [0u8; 32];
        rng.fill_bytes(&mut b);
        if let Ok(k) = kapsel_codec::hazmat::ec::SecretKey::from_bytes(&b) {
            break k;
        }
    };
    let mut m = [0u8; 32];
    rng.fill_bytes(&mut m);
    let e = pq::encap_derand(r.public_key(), &m, &eph).expect("encap");
    let mut ctx = hpke::Context::for_kem(pq::KEM_ID, Mode::Base, &e.shared_secret, HPKE_INFO);
    let wrapped = ctx.seal(b"", file_key).expect("seal");
    let mut body = Vec::with_capacity(1205);
    if hint {
        body.extend_from_slice(&r.stanza_hint(&e.enc.0[..]));
    } else {
        body.extend_from_slice(&[0; 4]);
    }
    body.extend_from_slice(&e.enc.0[..]);
    body.extend_from_slice(&wrapped);
    body
}

/// The body of a P-256 stanza wrapping `file_key` to `to`.
fn p256_body(rng: &mut ChaCha20Rng, to: &Identity, file_key: &[u8; 32]) -> Vec<u8> {
    let eph = loop {
        let mut b = [0u8; 32];
        rng.fill_bytes(&mut b);
        if let Ok(k) = kapsel_codec::hazmat::ec::SecretKey::from_bytes(&b) {
            break k;
        }
    };
    let r = to.to_recipient();
    let e = hpke::encap(r.public_key(), None, &eph);
    let mut ctx = hpke::Context::new(Mode::Base, &e.shared_secret, HPKE_INFO);
    let wrapped = ctx.seal(b"", file_key).expect("seal");
    let mut body = r.stanza_hint(&e.enc).to_vec();
    body.extend_from_slice(&e.enc);
    body.extend_from_slice(&wrapped);
    body
}

/// The body of a passphrase stanza with these raw parameters, sealing
/// `file_key` (when the parameters are ones Argon2id can run).
fn passphrase_body(
    rng: &mut ChaCha20Rng,
    passphrase: &[u8],
    memory_kib: u32,
    passes: u32,
    lanes: u8,
    file_key: &[u8; 32],
) -> Vec<u8> {
    let mut salt = [0u8; 16];
    rng.fill_bytes(&mut salt);
    let cost = Cost {
        memory_kib,
        passes,
        lanes,
    };
    let mut wrapped = [0u8; 48];
    let runnable = passes >= 1
        && lanes >= 1
        && u64::from(memory_kib) >= 8 * u64::from(lanes)
        && memory_kib <= 1024
        && passes <= 4;
    if runnable {
        let mut full_salt = b"kapsel/v1 passphrase\x00".to_vec();
        full_salt.extend_from_slice(&salt);
        let mut key = [0u8; 32];
        argon2id_for_conformance(passphrase, &full_salt, &[], &[], &cost, &mut key)
            .expect("argon2id");
        wrapped[..32].copy_from_slice(file_key);
        let tag = Aes256Gcm::new(&key).seal_in_place([0u8; 12], b"", &mut wrapped[..32]);
        wrapped[32..].copy_from_slice(&tag);
    } else {
        // Never opened: the decoder must refuse it before deriving.
        rng.fill_bytes(&mut wrapped);
    }
    let mut body = salt.to_vec();
    body.extend_from_slice(&memory_kib.to_be_bytes());
    body.extend_from_slice(&passes.to_be_bytes());
    body.push(lanes);
    body.extend_from_slice(&wrapped);
    body
}

/// A raw header: `version`, anonymous, the given `(type, body)` stanzas
/// (their `body_len` as given by `lens`, or the body's length), no
/// extensions; `header_len` filled in.
fn raw_header(
    rng: &mut ChaCha20Rng,
    version: u8,
    stanzas: &[(u16, Vec<u8>)],
    lens: &[Option<u16>],
) -> Vec<u8> {
    let mut h = b"\x8bKAPSEL\n".to_vec();
    h.push(version);
    h.extend_from_slice(&[0x00, 0x01, 14, 0, 0, 0, 0]);
    h.extend_from_slice(&T0.to_be_bytes());
    h.extend_from_slice(&rng.next_u64().to_be_bytes());
    h.push(0);
    h.extend_from_slice(&(stanzas.len() as u16).to_be_bytes());
    for (i, (kind, body)) in stanzas.iter().enumerate() {
        h.extend_from_slice(&kind.to_be_bytes());
        let len = lens.get(i).copied().flatten().unwrap_or(body.len() as u16);
        h.extend_from_slice(&len.to_be_bytes());
        h.extend_from_slice(body);
    }
    h.extend_from_slice(&[0, 0]);
    let n = h.len() as u32;
    h[12..16].copy_from_slice(&n.to_be_bytes());
    h
}

/// `header || salt || commitment || chunks` of an anonymous file.
fn seal_file(rng: &mut ChaCha20Rng, header: &[u8], file_key: &[u8; 32], pt: &[u8]) -> Vec<u8> {
    let mut salt = [0u8; 24];
    rng.fill_bytes(&mut salt);
    let (cipher, prefix) = ChunkCipher::for_encryption_with_salt(file_key, header, salt);
    let mut out = header.to_vec();
    out.extend_from_slice(&prefix);
    let full = pt.len() / CHUNK;
    for i in 0..=full {
        let piece = &pt[i * CHUNK..((i + 1) * CHUNK).min(pt.len())];
        let mut buf = piece.to_vec();
        let tag = cipher.seal(i as u64, &mut buf).expect("index");
        out.extend_from_slice(&buf);
        out.extend_from_slice(&tag);
    }
    out
}

fn file_key(rng: &mut ChaCha20Rng) -> [u8; 32] {
    let mut k = [0u8; 32];
    rng.fill_bytes(&mut k);
    k
}

/// Encoder output (`Encryptor::with_recipients`) to hybrid recipients.
fn encoder(
    name: &str,
    to: &[&HybridIdentity],
    p256: &[&Identity],
    len: usize,
    hide: bool,
    sender: Option<&Identity>,
) -> (Vec<u8>, Vec<u8>) {
    let mut rng = seeded(name);
    let pt = plaintext(&mut rng, len);
    let mut e = Encryptor::with_recipients(
        p256.iter().map(|i| i.to_recipient()),
        to.iter().map(|i| i.to_recipient()),
    )
    .expect("encryptor")
    .allow_classical_with_post_quantum(true)
    .hide_recipients(hide)
    .created_at(T0);
    if let Some(s) = sender {
        e = e.sender(s.clone()).serial(7);
    }
    let mut w = wrap_reproducible(e, sender, Vec::new(), &mut rng);
    std::io::Write::write_all(&mut w, &pt).expect("write");
    (w.finish().expect("finish"), pt)
}

/// Every version 2 vector, appended to `out`.
pub fn vectors(out: &mut Vec<Vector>) {
    let alice = hybrid_identity("alice");
    let bob = hybrid_identity("bob");
    let carol = hybrid_identity("carol");
    let dave = hybrid_identity("dave");
    let p_alice = identity("alice");
    let sam = identity("sam");
    let mut v: Vec<V> = Vec::new();

    // Encoder files.
    for len in [0usize, 1, CHUNK, 40_000] {
        let name = format!("pq_encoder_{len}_bytes");
        let (data, pt) = encoder(&name, &[&alice], &[], len, false, None);
        v.push(
            V::new(
                &name,
                Expect::Success,
                &format!("encoder: {len} bytes to one hybrid MLKEM768-P256 recipient (version 2)"),
                data,
            )
            .hybrid(&[&alice])
            .released(&pt),
        );
    }
    let (data, pt) = encoder(
        "pq_encoder_3_recipients",
        &[&alice, &bob, &carol],
        &[],
        1000,
        false,
        None,
    );
    v.push(
        V::new(
            "pq_encoder_3_recipients",
            Expect::Success,
            "encoder: three hybrid recipients, opened by the third",
            data.clone(),
        )
        .hybrid(&[&carol])
        .released(&pt),
    );
    v.push(
        V::new(
            "pq_encoder_3_recipients_stranger",
            Expect::NoMatch,
            "three hybrid recipients, a hybrid identity that is none of them",
            data.clone(),
        )
        .hybrid(&[&dave]),
    );
    v.push(
        V::new(
            "pq_encoder_3_recipients_p256_identity",
            Expect::NoMatch,
            "hybrid recipients only, a P-256 identity: never tried on hybrid stanzas",
            data,
        )
        .p256(&[&p_alice]),
    );
    let (data, pt) = encoder("pq_encoder_hidden", &[&alice, &bob], &[], 500, true, None);
    v.push(
        V::new(
            "pq_encoder_hidden",
            Expect::Success,
            "encoder: two hybrid recipients with zero hints, shuffled",
            data,
        )
        .hybrid(&[&bob])
        .released(&pt),
    );
    let (data, pt) = encoder(
        "pq_encoder_signed",
        &[&alice],
        &[],
        20_000,
        false,
        Some(&sam),
    );
    let mut signed = V::new(
        "pq_encoder_signed",
        Expect::Success,
        "encoder: signed by a P-256 sender, to a hybrid recipient",
        data,
    )
    .hybrid(&[&alice])
    .released(&pt);
    signed.sender = Some(sam.to_recipient().to_string());
    v.push(signed);
    let (data, pt) = encoder(
        "pq_mixed_with_p256",
        &[&alice],
        &[&p_alice],
        300,
        false,
        None,
    );
    v.push(V::new("pq_mixed_with_p256_opened_by_p256", Expect::Success, "classical and post-quantum recipients mixed (the encoder's override): the P-256 identity opens it", data.clone()).p256(&[&p_alice]).released(&pt));
    v.push(
        V::new(
            "pq_mixed_with_p256_opened_by_hybrid",
            Expect::Success,
            "classical and post-quantum recipients mixed: the hybrid identity opens it",
            data,
        )
        .hybrid(&[&alice])
        .released(&pt),
    );

    // Damage to an encoder file (header bytes: the commitment or the wrap fails).
    let (good, _) = encoder("pq_damage_base", &[&alice], &[], 100, false, None);
    let stanza = 16 + 16 + 1 + 2 + 4; // first stanza body
    let mut d = good.clone();
    d[stanza + 4 + 1153 + 5] ^= 1;
    v.push(V::new("pq_wrapped_key_flipped", Expect::HeaderAuthFailure, "a bit of the hybrid stanza's wrapped key flipped: its hint still matches, it does not open", d).hybrid(&[&alice]));
    let mut d = good.clone();
    d[stanza + 4 + 100] ^= 1;
    v.push(V::new("pq_mlkem_ciphertext_flipped", Expect::NoMatch, "a bit of the ML-KEM ciphertext flipped: implicit rejection gives another secret, the wrap does not open, and the hint (over enc) no longer matches", d).hybrid(&[&alice]));
    let mut d = good.clone();
    d[stanza + 4 + 1088 + 40] ^= 1;
    v.push(
        V::new(
            "pq_point_off_curve",
            Expect::MalformedHeader,
            "the P-256 point inside the hybrid enc is not on the curve",
            d,
        )
        .hybrid(&[&alice]),
    );
    let mut d = good.clone();
    d[stanza + 4 + 1088] = 0x02;
    v.push(
        V::new(
            "pq_point_compressed_prefix",
            Expect::MalformedHeader,
            "the P-256 point inside the hybrid enc starts with 0x02",
            d,
        )
        .hybrid(&[&alice]),
    );
    let mut d = good.clone();
    d[24] ^= 1;
    v.push(
        V::new(
            "pq_serial_flipped",
            Expect::HeaderAuthFailure,
            "the serial changed: the stanza opens, the commitment fails",
            d,
        )
        .hybrid(&[&alice]),
    );

    // Raw headers: lengths and versions.
    let mut rng = seeded("pq raw");
    let fk = file_key(&mut rng);
    let pt = plaintext(&mut rng, 77);
    let body = hybrid_body(&mut rng, &alice, &fk, true);
    let h = raw_header(&mut rng, 2, &[(2, body.clone())], &[]);
    v.push(
        V::new(
            "pq_raw_valid",
            Expect::Success,
            "a raw version 2 header with one hybrid stanza",
            seal_file(&mut rng, &h, &fk, &pt),
        )
        .hybrid(&[&alice])
        .released(&pt)
        .key(fk),
    );
    for (name, len, comment) in [
        (
            "pq_body_len_1204",
            1204u16,
            "hybrid stanza body_len 1204 (one short)",
        ),
        (
            "pq_body_len_1206",
            1206,
            "hybrid stanza body_len 1206 (one long)",
        ),
        ("pq_body_len_0", 0, "hybrid stanza body_len 0"),
        (
            "pq_body_len_2048",
            2048,
            "hybrid stanza body_len 2048 (the version 2 maximum, but not 1205)",
        ),
        (
            "pq_body_len_2049",
            2049,
            "hybrid stanza body_len 2049, above the version 2 maximum",
        ),
    ] {
        let mut b = body.clone();
        b.resize(usize::from(len), 0x5a);
        let h = raw_header(&mut rng, 2, &[(2, b)], &[]);
        v.push(
            V::new(
                name,
                Expect::MalformedHeader,
                comment,
                seal_file(&mut rng, &h, &fk, &pt),
            )
            .hybrid(&[&alice]),
        );
    }
    let h = raw_header(&mut rng, 1, &[(2, body.clone())], &[]);
    v.push(V::new("pq_stanza_in_version_1", Expect::MalformedHeader, "a 1205-byte type 0x0002 stanza in a version 1 header: above version 1's MAX_STANZA_BODY_LEN", seal_file(&mut rng, &h, &fk, &pt)).hybrid(&[&alice]));
    let p_body = p256_body(&mut rng, &p_alice, &fk);
    let h = raw_header(
        &mut rng,
        1,
        &[
            (2, vec![0x11; 100]),
            (3, vec![0x22; 73]),
            (1, p_body.clone()),
        ],
        &[],
    );
    v.push(V::new("v1_types_2_and_3_opaque", Expect::Success, "types 0x0002 and 0x0003 in a version 1 header are opaque (any length): the P-256 stanza opens", seal_file(&mut rng, &h, &fk, &pt)).p256(&[&p_alice]).released(&pt).key(fk));
    let h = raw_header(
        &mut rng,
        2,
        &[(2, body.clone()), (7, vec![0x33; 2048])],
        &[],
    );
    v.push(
        V::new(
            "pq_unknown_stanza_2048",
            Expect::Success,
            "version 2: an unknown stanza of 2048 bytes is opaque",
            seal_file(&mut rng, &h, &fk, &pt),
        )
        .hybrid(&[&alice])
        .released(&pt)
        .key(fk),
    );
    let h = raw_header(&mut rng, 2, &[(2, body.clone()), (2, body.clone())], &[]);
    v.push(
        V::new(
            "pq_duplicate_stanza",
            Expect::MalformedHeader,
            "two identical hybrid stanzas",
            seal_file(&mut rng, &h, &fk, &pt),
        )
        .hybrid(&[&alice]),
    );
    let mut short = raw_header(&mut rng, 2, &[(2, body.clone())], &[]);
    short.truncate(16 + 16 + 1 + 2 + 4 + 600);
    v.push(
        V::new(
            "pq_truncated_in_stanza",
            Expect::MalformedHeader,
            "input ends inside the hybrid stanza",
            short,
        )
        .hybrid(&[&alice]),
    );
    let mut big = raw_header(&mut rng, 2, &[(2, body.clone())], &[]);
    big[12..16].copy_from_slice(&327_681u32.to_be_bytes());
    v.push(
        V::new(
            "pq_header_len_327681",
            Expect::MalformedHeader,
            "version 2 header_len one above MAX_HEADER_LEN_V2",
            big,
        )
        .hybrid(&[&alice]),
    );
    let mut small = raw_header(&mut rng, 2, &[(2, body.clone())], &[]);
    small[12..16].copy_from_slice(&113u32.to_be_bytes());
    v.push(
        V::new(
            "pq_header_len_113",
            Expect::MalformedHeader,
            "version 2 header_len one below MIN_HEADER_LEN_V2",
            small,
        )
        .hybrid(&[&alice]),
    );
    // A header above version 1's maximum: 60 hybrid stanzas (72 560 bytes).
    let ids: Vec<HybridIdentity> = (0..60)
        .map(|i| hybrid_identity(&format!("many {i}")))
        .collect();
    let stanzas: Vec<(u16, Vec<u8>)> = ids
        .iter()
        .map(|id| (2, hybrid_body(&mut rng, id, &fk, true)))
        .collect();
    let h = raw_header(&mut rng, 2, &stanzas, &[]);
    assert!(h.len() > 65_536);
    v.push(V::new("pq_60_recipients", Expect::Success, "60 hybrid stanzas: a header of 72 560 bytes, above version 1's MAX_HEADER_LEN, opened by the last", seal_file(&mut rng, &h, &fk, &pt)).hybrid(&[&ids[59]]).released(&pt).key(fk));

    // Passphrase stanzas.
    let pass = |rng: &mut ChaCha20Rng, m: u32, t: u32, p: u8| {
        passphrase_body(rng, PASSPHRASE, m, t, p, &fk)
    };
    let b = pass(
        &mut rng,
        VECTOR_COST.memory_kib,
        VECTOR_COST.passes,
        VECTOR_COST.lanes,
    );
    let h = raw_header(&mut rng, 2, &[(3, b.clone())], &[]);
    let good_pass = seal_file(&mut rng, &h, &fk, &pt);
    v.push(
        V::new(
            "pass_valid",
            Expect::Success,
            "a passphrase stanza (Argon2id 64 KiB, 1 pass, 1 lane) and the right passphrase",
            good_pass.clone(),
        )
        .passphrase(PASSPHRASE)
        .released(&pt)
        .key(fk),
    );
    v.push(
        V::new(
            "pass_wrong_passphrase",
            Expect::NoMatch,
            "a passphrase stanza and a wrong passphrase",
            good_pass.clone(),
        )
        .passphrase(b"correct horse battery stapler"),
    );
    v.push(
        V::new(
            "pass_no_passphrase",
            Expect::NoMatch,
            "a passphrase stanza, and only an identity",
            good_pass.clone(),
        )
        .hybrid(&[&alice]),
    );
    let mut d = good_pass.clone();
    d[16 + 16 + 1 + 2 + 4 + 25 + 3] ^= 1;
    v.push(V::new("pass_wrapped_key_flipped", Expect::NoMatch, "a bit of the passphrase stanza's wrapped key flipped: indistinguishable from a wrong passphrase", d).passphrase(PASSPHRASE));
    let mut d = good_pass.clone();
    d[24] ^= 1;
    v.push(
        V::new(
            "pass_serial_flipped",
            Expect::HeaderAuthFailure,
            "the serial changed: the right passphrase opens the stanza, the commitment fails",
            d,
        )
        .passphrase(PASSPHRASE),
    );
    let b4 = pass(&mut rng, 256, 2, 4);
    let h = raw_header(&mut rng, 2, &[(3, b4)], &[]);
    v.push(
        V::new(
            "pass_four_lanes",
            Expect::Success,
            "Argon2id with 4 lanes, 256 KiB, 2 passes",
            seal_file(&mut rng, &h, &fk, &pt),
        )
        .passphrase(PASSPHRASE)
        .released(&pt)
        .key(fk),
    );
    for (name, m, t, p, expect, comment) in [
        (
            "pass_memory_above_limit",
            1_048_577u32,
            1u32,
            1u8,
            Expect::Unsupported,
            "memory 1 GiB + 1 KiB: above the decoder's work limit, refused before any derivation",
        ),
        (
            "pass_passes_above_limit",
            64,
            17,
            1,
            Expect::Unsupported,
            "17 passes: above the decoder's work limit",
        ),
        (
            "pass_cost_maximal",
            u32::MAX,
            u32::MAX,
            255,
            Expect::Unsupported,
            "4 TiB and 2^32-1 passes: a hostile cost, refused before any allocation",
        ),
        (
            "pass_zero_passes",
            64,
            0,
            1,
            Expect::MalformedHeader,
            "zero passes",
        ),
        (
            "pass_zero_lanes",
            64,
            1,
            0,
            Expect::MalformedHeader,
            "zero lanes",
        ),
        (
            "pass_memory_below_8_per_lane",
            31,
            1,
            4,
            Expect::MalformedHeader,
            "31 KiB for 4 lanes (below 8 KiB per lane)",
        ),
    ] {
        let b = pass(&mut rng, m, t, p);
        let h = raw_header(&mut rng, 2, &[(3, b)], &[]);
        v.push(
            V::new(name, expect, comment, seal_file(&mut rng, &h, &fk, &pt)).passphrase(PASSPHRASE),
        );
    }
    let h = raw_header(&mut rng, 2, &[(3, b.clone()), (1, p_body.clone())], &[]);
    v.push(
        V::new(
            "pass_not_alone",
            Expect::MalformedHeader,
            "a passphrase stanza beside a P-256 stanza",
            seal_file(&mut rng, &h, &fk, &pt),
        )
        .passphrase(PASSPHRASE)
        .p256(&[&p_alice]),
    );
    let h = raw_header(&mut rng, 2, &[(1, p_body.clone()), (3, b.clone())], &[]);
    v.push(
        V::new(
            "pass_not_alone_second",
            Expect::MalformedHeader,
            "a passphrase stanza after a P-256 stanza",
            seal_file(&mut rng, &h, &fk, &pt),
        )
        .passphrase(PASSPHRASE)
        .p256(&[&p_alice]),
    );
    let h = raw_header(&mut rng, 2, &[(3, b.clone()), (7, vec![1, 2, 3])], &[]);
    v.push(
        V::new(
            "pass_with_unknown_stanza",
            Expect::MalformedHeader,
            "a passphrase stanza beside an unknown stanza: still not alone",
            seal_file(&mut rng, &h, &fk, &pt),
        )
        .passphrase(PASSPHRASE),
    );
    for (name, len) in [("pass_body_len_72", 72u16), ("pass_body_len_74", 74)] {
        let mut bb = b.clone();
        bb.resize(usize::from(len), 0);
        let h = raw_header(&mut rng, 2, &[(3, bb)], &[]);
        v.push(
            V::new(
                name,
                Expect::MalformedHeader,
                &format!("passphrase stanza body_len {len}"),
                seal_file(&mut rng, &h, &fk, &pt),
            )
            .passphrase(PASSPHRASE),
        );
    }
    out.extend(v.into_iter().map(V::into_vector));
}
