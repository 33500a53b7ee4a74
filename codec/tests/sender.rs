//! Sender signatures: round trips, and an insider recipient who knows the
//! file key trying to pass off a forged file as the sender's.

use std::io::{Read, Write};

use kapsel_codec::hpke::{self, Mode};
use kapsel_codec::payload::PayloadWriter;
use kapsel_codec::sender::SIGNATURE_LEN;
use kapsel_codec::{outcome_of_io_error, Decryptor, Encryptor, Identity, Outcome, HPKE_INFO};
use kapsel_format::{read, write, Sender, Stanza};

fn signed_file(
    sender: &Identity,
    recipients: &[&Identity],
    plaintext: &[u8],
    serial: u64,
) -> Vec<u8> {
    let enc = Encryptor::new(recipients.iter().map(|r| r.to_recipient()))
        .unwrap()
        .sender(sender.clone())
        .serial(serial);
    let mut w = enc.wrap_output(Vec::new()).unwrap();
    w.write_all(plaintext).unwrap();
    w.finish().unwrap()
}

/// Decrypts, returning what was released and the outcome.
fn open(identity: &Identity, file: &[u8]) -> (Vec<u8>, Result<(), Outcome>) {
    let mut released = Vec::new();
    let d = match Decryptor::new(file) {
        Ok(d) => d,
        Err(e) => return (released, Err(e.outcome())),
    };
    let mut r = match d.decrypt(std::slice::from_ref(identity)) {
        Ok(r) => r,
        Err(e) => return (released, Err(e.outcome())),
    };
    let mut buf = [0u8; 4096];
    loop {
        match r.read(&mut buf) {
            Ok(0) => return (released, Ok(())),
            Ok(n) => released.extend_from_slice(&buf[..n]),
            Err(e) => return (released, Err(outcome_of_io_error(&e))),
        }
    }
}

/// What an insider recipient learns: the file key, from its own stanza.
fn insider_file_key(insider: &Identity, file: &[u8]) -> ([u8; 32], Vec<u8>) {
    let (_, header) = read::header(file).unwrap();
    let header_len = header.encoded_len();
    let sender_pk = match header.sender {
        Sender::P256(p) => hpke::deserialize_public_key(&p.0).unwrap(),
        Sender::Anonymous => panic!("expected a sender"),
    };
    for stanza in &header.stanzas {
        if let Stanza::P256Hpke {
            enc, wrapped_key, ..
        } = stanza
        {
            let Ok(shared) = hpke::decap(&enc.0, insider.secret_key(), Some(&sender_pk)) else {
                continue;
            };
            let mut ctx = hpke::Context::new(Mode::Auth, &shared, HPKE_INFO);
            let mut key = [0u8; 32];
            if ctx.open_into(b"", wrapped_key, &mut key).is_ok() {
                return (key, file[..header_len].to_vec());
            }
        }
    }
    panic!("insider is not a recipient");
}

#[test]
fn signed_file_round_trips_and_reports_its_sender() {
    let (s, a) = (Identity::generate(), Identity::generate());
    let file = signed_file(&s, &[&a], &vec![7u8; 40_000], 42);
    let d = Decryptor::new(&file[..]).unwrap();
    assert_eq!(d.sender(), Some(s.to_recipient()));
    assert_eq!(d.header().serial, 42);
    let (released, outcome) = open(&a, &file);
    assert_eq!(outcome, Ok(()));
    assert_eq!(released, vec![7u8; 40_000]);
}

#[test]
fn insider_who_rewrites_the_payload_is_detected() {
    let (s, a, b) = (
        Identity::generate(),
        Identity::generate(),
        Identity::generate(),
    );
    let file = signed_file(&s, &[&a, &b], b"pay 10 to carol", 7);
    let (file_key, header) = insider_file_key(&b, &file);
    // B keeps S's header and signature and writes its own payload under the
    // same file key: header, commitment and every chunk authenticate.
    let mut forged = header.clone();
    let mut w = PayloadWriter::new(Vec::new(), &file_key, &header).unwrap();
    w.write_all(b"pay 10000 to bob").unwrap();
    forged.extend_from_slice(&w.finish().unwrap());
    forged.extend_from_slice(&file[file.len() - SIGNATURE_LEN..]);
    let (released, outcome) = open(&a, &forged);
    assert_eq!(outcome, Err(Outcome::SenderAuthFailed));
    assert!(
        released.is_empty(),
        "the final chunk must not be released before the signature verified"
    );
}

#[test]
fn insider_who_rewrites_the_header_is_detected() {
    let (s, a, b) = (
        Identity::generate(),
        Identity::generate(),
        Identity::generate(),
    );
    let file = signed_file(&s, &[&a, &b], &vec![1u8; 50_000], 7);
    let (file_key, header_bytes) = insider_file_key(&b, &file);
    // B drops its own stanza, bumps the serial (a "fresh" message), and
    // re-encrypts under the same file key with the new header as context.
    let mut header = read::header_exact(&header_bytes).unwrap();
    header.serial += 1;
    header.stanzas.retain(|st| match st {
        Stanza::P256Hpke { hint, .. } => *hint == a.to_recipient().hint(),
        _ => true,
    });
    let new_header = write::header_to_vec(&header).unwrap();
    let mut forged = new_header.clone();
    let mut w = PayloadWriter::new(Vec::new(), &file_key, &new_header).unwrap();
    w.write_all(&vec![1u8; 50_000]).unwrap();
    forged.extend_from_slice(&w.finish().unwrap());
    forged.extend_from_slice(&file[file.len() - SIGNATURE_LEN..]);
    let (released, outcome) = open(&a, &forged);
    assert_eq!(outcome, Err(Outcome::SenderAuthFailed));
    assert!(released.len() < 50_000, "the final chunk was released");
    // Signing with B's own key while claiming S fails the same way.
    let mut b_signed = forged[..forged.len() - SIGNATURE_LEN].to_vec();
    let mut signer = kapsel_codec::sender::SigningWriter::new(Vec::new(), Some(b.secret_key()));
    signer.write_all(&b_signed).unwrap();
    let with_sig = signer.finish().unwrap();
    b_signed = with_sig;
    assert_eq!(open(&a, &b_signed).1, Err(Outcome::SenderAuthFailed));
}

#[test]
fn damaged_or_missing_signature_fails() {
    let (s, a) = (Identity::generate(), Identity::generate());
    let file = signed_file(&s, &[&a], &vec![3u8; 20_000], 1);
    let mut flipped = file.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    assert_eq!(open(&a, &flipped).1, Err(Outcome::SenderAuthFailed));
    // The signature is checked at the end of input, before the final chunk
    // is opened: a cut file fails the signature (its last 64 bytes are taken
    // as one), and one shorter than a signature after the commitment is truncated.
    let cut = &file[..file.len() - SIGNATURE_LEN];
    assert_eq!(open(&a, cut).1, Err(Outcome::SenderAuthFailed));
    let header_len = Decryptor::new(&file[..]).unwrap().header_bytes().len();
    assert_eq!(
        open(&a, &file[..header_len + 30]).1,
        Err(Outcome::PayloadFailed)
    );
    let mut longer = file.clone();
    longer.push(0);
    assert!(open(&a, &longer).1.is_err());
    let (released, _) = open(&a, &flipped);
    assert_eq!(
        released.len(),
        16384,
        "only full chunks before the final one may be released"
    );
}

#[test]
fn signature_failure_keeps_its_class_on_every_later_read() {
    let (s, a) = (Identity::generate(), Identity::generate());
    let mut file = signed_file(&s, &[&a], b"short", 1);
    let last = file.len() - 1;
    file[last] ^= 1;
    let mut r = Decryptor::new(&file[..])
        .unwrap()
        .decrypt(std::slice::from_ref(&a))
        .unwrap();
    let mut buf = [0u8; 64];
    for _ in 0..3 {
        let e = r.read(&mut buf).unwrap_err();
        assert_eq!(outcome_of_io_error(&e), Outcome::SenderAuthFailed);
    }
}
