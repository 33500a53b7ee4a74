//! Version 2 headers (SPEC.md section 14): hybrid and passphrase stanzas
//! round trip and fix the version; the rules of 14.1 and the limits of 14.7
//! are enforced by the parser and the serializer alike.

// Helpers outside `#[test]` functions unwrap too; clippy.toml allows it only
// inside them.
#![allow(clippy::unwrap_used)]

use kapsel_format::{
    read, write, Header, HeaderClass, HeaderError, HybridEnc, Malformation, Sender, Stanza, Suite,
    HYBRID_ENC_LEN, MAX_HEADER_LEN, MAX_HEADER_LEN_V2, MAX_STANZA_BODY_LEN_V2, MIN_HEADER_LEN_V2,
    VERSION_1, VERSION_2,
};

fn hybrid(tag: u8) -> Stanza {
    let mut enc = Box::new([tag; HYBRID_ENC_LEN]);
    enc[1088] = 0x04;
    Stanza::HybridPq {
        hint: [tag; 4],
        enc: HybridEnc(enc),
        wrapped_key: [tag; 48],
    }
}

fn passphrase() -> Stanza {
    Stanza::Passphrase {
        salt: [9; 16],
        memory_kib: 65536,
        passes: 3,
        lanes: 4,
        wrapped_key: [1; 48],
    }
}

fn header(stanzas: Vec<Stanza>) -> Header {
    Header {
        suite: Suite::P256HpkeCobblestone256,
        created_at: 1_767_225_600,
        serial: 42,
        sender: Sender::Anonymous,
        stanzas,
        extensions: Vec::new(),
    }
}

fn err(bytes: &[u8]) -> HeaderError {
    read::header_exact(bytes).unwrap_err()
}

#[test]
fn hybrid_and_passphrase_headers_round_trip_as_version_2() {
    for h in [
        header(vec![hybrid(1)]),
        header(vec![hybrid(1), hybrid(2)]),
        header(vec![passphrase()]),
    ] {
        assert_eq!(h.version(), VERSION_2);
        let b = write::header_to_vec(&h).unwrap();
        assert_eq!(b[8], VERSION_2);
        assert_eq!(read::header_exact(&b).unwrap(), h);
    }
    let b = write::header_to_vec(&header(vec![passphrase()])).unwrap();
    assert_eq!(b.len() as u32, MIN_HEADER_LEN_V2);
    let one = write::header_to_vec(&header(vec![hybrid(1)]))
        .unwrap()
        .len();
    let two = write::header_to_vec(&header(vec![hybrid(1), hybrid(2)]))
        .unwrap()
        .len();
    assert_eq!(two - one, 1209, "header bytes per hybrid recipient");
}

#[test]
fn a_version_2_header_without_a_version_2_stanza_is_malformed() {
    let h = header(vec![Stanza::Unknown {
        kind: 9,
        body: vec![0; 200],
    }]);
    let mut b = write::header_to_vec(&h).unwrap();
    assert_eq!(b[8], VERSION_1);
    b[8] = VERSION_2;
    assert_eq!(
        err(&b),
        HeaderError::Malformed(Malformation::NeedlessVersion2)
    );
}

#[test]
fn a_passphrase_stanza_must_be_alone() {
    let h = header(vec![passphrase(), hybrid(1)]);
    assert_eq!(
        write::header_to_vec(&h).unwrap_err(),
        HeaderError::Malformed(Malformation::PassphraseNotAlone)
    );
    // Written by hand: the parser refuses it at the passphrase stanza.
    let mut alone = write::header_to_vec(&header(vec![hybrid(1)])).unwrap();
    let p = write::header_to_vec(&header(vec![passphrase()])).unwrap();
    let p_stanza = &p[35..35 + 4 + 73];
    alone.truncate(alone.len() - 2);
    alone.extend_from_slice(p_stanza);
    alone.extend_from_slice(&[0, 0]);
    alone[33..35].copy_from_slice(&2u16.to_be_bytes());
    let n = alone.len() as u32;
    alone[12..16].copy_from_slice(&n.to_be_bytes());
    assert_eq!(
        err(&alone),
        HeaderError::Malformed(Malformation::PassphraseNotAlone)
    );
}

#[test]
fn argon2id_parameters_no_implementation_can_run_are_malformed() {
    for (m, t, p) in [(64u32, 0u32, 1u8), (64, 1, 0), (31, 1, 4)] {
        let h = header(vec![Stanza::Passphrase {
            salt: [0; 16],
            memory_kib: m,
            passes: t,
            lanes: p,
            wrapped_key: [0; 48],
        }]);
        assert_eq!(
            write::header_to_vec(&h).unwrap_err(),
            HeaderError::Malformed(Malformation::PassphraseParams)
        );
    }
    // Any cost is structurally valid: the work limit is the decoder's.
    let h = header(vec![Stanza::Passphrase {
        salt: [0; 16],
        memory_kib: u32::MAX,
        passes: u32::MAX,
        lanes: 255,
        wrapped_key: [0; 48],
    }]);
    assert!(read::header_exact(&write::header_to_vec(&h).unwrap()).is_ok());
}

#[test]
fn version_limits_are_those_of_section_14_7() {
    // 256 hybrid stanzas fit in a version 2 header and exceed version 1's limit.
    let h = header((0..=255u8).map(hybrid).collect());
    let b = write::header_to_vec(&h).unwrap();
    assert!(b.len() > MAX_HEADER_LEN as usize && b.len() <= MAX_HEADER_LEN_V2 as usize);
    assert_eq!(read::header_exact(&b).unwrap(), h);
    // An unknown stanza of the version 2 maximum is opaque; one byte more is not.
    let mut stanzas = vec![hybrid(1)];
    stanzas.push(Stanza::Unknown {
        kind: 7,
        body: vec![0; usize::from(MAX_STANZA_BODY_LEN_V2)],
    });
    assert!(write::header_to_vec(&header(stanzas.clone())).is_ok());
    stanzas[1] = Stanza::Unknown {
        kind: 7,
        body: vec![0; usize::from(MAX_STANZA_BODY_LEN_V2) + 1],
    };
    assert!(write::header_to_vec(&header(stanzas)).is_err());
    // header_len above the version 2 maximum, judged in the prefix.
    let mut b = write::header_to_vec(&header(vec![hybrid(1)])).unwrap();
    b[12..16].copy_from_slice(&(MAX_HEADER_LEN_V2 + 1).to_be_bytes());
    assert_eq!(
        err(&b),
        HeaderError::Malformed(Malformation::HeaderLength(MAX_HEADER_LEN_V2 + 1))
    );
    assert_eq!(err(&b).class(), HeaderClass::Malformed);
}

#[test]
fn types_2_and_3_are_opaque_in_version_1_and_known_in_version_2() {
    let mut h = header(vec![
        Stanza::Unknown {
            kind: Stanza::TYPE_HYBRID_PQ,
            body: vec![3; 10],
        },
        Stanza::Unknown {
            kind: Stanza::TYPE_PASSPHRASE,
            body: vec![4; 10],
        },
    ]);
    h.stanzas.push(Stanza::Unknown {
        kind: 9,
        body: vec![0; 150],
    });
    let b = write::header_to_vec(&h).unwrap();
    assert_eq!(b[8], VERSION_1);
    assert_eq!(read::header_exact(&b).unwrap(), h);
    // The same stanzas beside a hybrid stanza (version 2) have the wrong length.
    h.stanzas.insert(0, hybrid(5));
    assert!(matches!(
        write::header_to_vec(&h).unwrap_err(),
        HeaderError::Malformed(Malformation::StanzaLength(_))
    ));
}

#[test]
fn the_point_inside_a_hybrid_enc_must_be_uncompressed() {
    let mut s = hybrid(1);
    if let Stanza::HybridPq { enc, .. } = &mut s {
        enc.0[1088] = 0x02;
    }
    assert_eq!(
        write::header_to_vec(&header(vec![s])).unwrap_err(),
        HeaderError::Malformed(Malformation::PointEncoding)
    );
    let mut b = write::header_to_vec(&header(vec![hybrid(1)])).unwrap();
    b[35 + 4 + 4 + 1088] = 0x03;
    assert_eq!(err(&b), HeaderError::Malformed(Malformation::PointEncoding));
}
