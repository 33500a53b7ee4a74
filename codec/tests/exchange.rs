//! The live exchange through the library: hello, framed message, receipt,
//! over a socket pair, with the sender and receiver on two threads.

// Helpers outside `#[test]` functions unwrap too; clippy.toml allows it only
// inside them.
#![allow(clippy::unwrap_used)]

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::thread;

use kapsel_codec::exchange::{
    self, Challenge, ChallengeMismatch, MessageReader, MessageWriter, Reply,
};
use kapsel_codec::{Decryptor, Encryptor, Identity};

/// Runs the sender's side: answers the hello with `plaintext`, returns
/// whether the receipt verified (or the refusal status).
fn send(
    stream: UnixStream,
    to: &Identity,
    sign_as: Option<Identity>,
    plaintext: &[u8],
) -> io::Result<Result<(), u8>> {
    let mut reader = stream.try_clone()?;
    let challenge = exchange::read_hello(&mut reader)?;
    let mut encryptor = Encryptor::new([to.to_recipient()])
        .unwrap()
        .challenge(challenge);
    if let Some(identity) = sign_as {
        encryptor = encryptor.sender(identity);
    }
    let mut writer = encryptor.wrap_output(MessageWriter::new(stream)).unwrap();
    let receipt_key = writer.receipt_key().cloned().expect("a challenge was set");
    writer.write_all(plaintext)?;
    let (_, tail) = writer.finish()?.finish()?;
    Ok(match exchange::read_reply(&mut reader)? {
        Reply::Accepted(receipt) => {
            assert!(
                receipt_key.verify(&tail, &receipt),
                "receipt does not verify"
            );
            Ok(())
        }
        Reply::Refused(status) => Err(status),
    })
}

/// Runs the receiver's side with `challenge`; returns the plaintext it
/// accepted, or the error it refused with (after replying).
fn receive(
    stream: UnixStream,
    identity: &Identity,
    challenge: Challenge,
) -> Result<Vec<u8>, String> {
    let mut writer = stream.try_clone().unwrap();
    exchange::write_hello(&mut writer, &challenge).unwrap();
    let mut input = MessageReader::new(stream);
    let outcome = (|| {
        let decryptor = Decryptor::new(&mut input).map_err(|e| e.to_string())?;
        challenge
            .check(decryptor.unverified_header())
            .map_err(|e| e.to_string())?;
        let (mut plaintext, key) = decryptor
            .decrypt_live(std::slice::from_ref(identity), &challenge)
            .map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        plaintext.read_to_end(&mut out).map_err(|e| e.to_string())?;
        Ok((out, key))
    })();
    match outcome {
        Ok((out, key)) => {
            assert!(input.ended());
            exchange::write_receipt(&mut writer, &key.receipt(&input.tail())).unwrap();
            Ok(out)
        }
        Err(e) => {
            exchange::write_refusal(&mut writer, 6).unwrap();
            Err(e)
        }
    }
}

#[test]
fn full_exchange_anonymous_and_signed_at_several_sizes() {
    let bob = Identity::generate();
    let alice = Identity::generate();
    for (len, signed) in [
        (0usize, false),
        (1, true),
        (16_384, false),
        (3_000_000, true),
    ] {
        let plaintext: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        let (a, b) = UnixStream::pair().unwrap();
        let challenge = Challenge::generate();
        let sign_as = signed.then(|| alice.clone());
        let (sent, received) = thread::scope(|s| {
            let sender = s.spawn(|| send(a, &bob, sign_as, &plaintext));
            let received = receive(b, &bob, challenge);
            (sender.join().unwrap(), received)
        });
        assert_eq!(sent.unwrap(), Ok(()), "len {len}");
        assert_eq!(received.unwrap(), plaintext, "len {len}");
    }
}

#[test]
fn a_message_recorded_for_one_challenge_is_refused_under_another() {
    let bob = Identity::generate();
    let first = Challenge::generate();
    let mut recorded = Vec::new();
    let mut writer = Encryptor::new([bob.to_recipient()])
        .unwrap()
        .challenge(first)
        .wrap_output(&mut recorded)
        .unwrap();
    writer.write_all(b"pay 100 to carol").unwrap();
    writer.finish().unwrap();

    let decryptor = Decryptor::new(&recorded[..]).unwrap();
    assert_eq!(first.check(decryptor.unverified_header()), Ok(()));
    let second = Challenge::generate();
    assert_eq!(
        second.check(decryptor.unverified_header()),
        Err(ChallengeMismatch::Different)
    );

    let mut plain = Vec::new();
    let mut w = Encryptor::new([bob.to_recipient()])
        .unwrap()
        .wrap_output(&mut plain)
        .unwrap();
    w.write_all(b"no challenge").unwrap();
    w.finish().unwrap();
    assert!(Encryptor::new([bob.to_recipient()])
        .unwrap()
        .wrap_output(Vec::new())
        .unwrap()
        .receipt_key()
        .is_none());
    let decryptor = Decryptor::new(&plain[..]).unwrap();
    assert_eq!(
        second.check(decryptor.unverified_header()),
        Err(ChallengeMismatch::Missing)
    );

    // Only a record of type 0x0020 holding exactly the 32 bytes matches.
    let mut header = decryptor.unverified_header().clone();
    let record = |kind: u16, value: Vec<u8>| kapsel_format::Extension { kind, value };
    let mut longer = second.as_bytes().to_vec();
    longer.push(0);
    for (extensions, expected) in [
        (
            vec![record(0x0021, second.as_bytes().to_vec())],
            ChallengeMismatch::Missing,
        ),
        (vec![record(0x0020, longer)], ChallengeMismatch::Different),
        (
            vec![record(0x0020, second.as_bytes()[..31].to_vec())],
            ChallengeMismatch::Different,
        ),
        (
            vec![record(0x0020, Vec::new())],
            ChallengeMismatch::Different,
        ),
    ] {
        header.extensions = extensions;
        assert_eq!(second.check(&header), Err(expected));
    }
    header.extensions = vec![record(0x0020, second.as_bytes().to_vec())];
    assert_eq!(second.check(&header), Ok(()));
}

#[test]
fn receipts_of_two_messages_do_not_cross() {
    let bob = Identity::generate();
    let challenge = Challenge::generate();
    let make = |text: &[u8]| {
        let mut framed = Vec::new();
        let mut w = Encryptor::new([bob.to_recipient()])
            .unwrap()
            .challenge(challenge)
            .wrap_output(MessageWriter::new(&mut framed))
            .unwrap();
        let key = w.receipt_key().cloned().unwrap();
        w.write_all(text).unwrap();
        let (_, tail) = w.finish().unwrap().finish().unwrap();
        (framed, key, tail)
    };
    let (file1, key1, tail1) = make(b"first message");
    let (_, key2, tail2) = make(b"first message");
    let receipt1 = key1.receipt(&tail1);
    assert!(key1.verify(&tail1, &receipt1));
    assert!(
        !key2.verify(&tail2, &receipt1),
        "same plaintext and challenge, other file"
    );

    // The receiver derives the same key from the file key it unwraps.
    let mut input = MessageReader::new(&file1[..]);
    let (mut reader, receiver_key) = Decryptor::new(&mut input)
        .unwrap()
        .decrypt_live(std::slice::from_ref(&bob), &challenge)
        .unwrap();
    io::copy(&mut reader, &mut io::sink()).unwrap();
    drop(reader);
    assert!(input.ended());
    assert_eq!(input.tail(), tail1);
    assert_eq!(receiver_key.receipt(&tail1), receipt1);
    // A receiver that expects another challenge refuses the message
    // outright: it derives no receipt key for it.
    let e = Decryptor::new(MessageReader::new(&file1[..]))
        .unwrap()
        .decrypt_live(std::slice::from_ref(&bob), &Challenge::generate())
        .unwrap_err();
    assert_eq!(e.outcome(), kapsel_codec::Outcome::Refused);
}

#[test]
fn a_receiver_cut_off_mid_message_releases_no_final_chunk_and_gives_no_receipt() {
    let bob = Identity::generate();
    let challenge = Challenge::generate();
    let mut framed = Vec::new();
    let mut w = Encryptor::new([bob.to_recipient()])
        .unwrap()
        .challenge(challenge)
        .wrap_output(MessageWriter::new(&mut framed))
        .unwrap();
    w.write_all(&[1u8; 100_000]).unwrap();
    w.finish().unwrap().finish().unwrap();
    // Cut before the end marker: the reader reports a closed connection,
    // never a clean end of input.
    let cut = &framed[..framed.len() - 4];
    let mut input = MessageReader::new(cut);
    let (mut reader, _) = Decryptor::new(&mut input)
        .unwrap()
        .decrypt_live(std::slice::from_ref(&bob), &challenge)
        .unwrap();
    let mut out = Vec::new();
    let err = reader.read_to_end(&mut out).unwrap_err();
    assert!(out.len() < 100_000, "released {} bytes", out.len());
    assert!(err.to_string().contains("closed the connection"), "{err}");
}
