//! Secrets hygiene: formatting any key-carrying value never shows key bytes.

use std::io::Write;

use kapsel_codec::hazmat::hpke::{self, Mode};
use kapsel_codec::hazmat::payload::{ChunkCipher, PayloadReader, PayloadWriter};
use kapsel_codec::{Decryptor, Encryptor, Identity};

/// Hex and decimal-array renderings of `bytes`, as `Debug` would print them.
fn renderings(bytes: &[u8]) -> Vec<String> {
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let upper = hex.to_uppercase();
    let array = format!("{bytes:?}");
    // A shorter window catches partial dumps.
    vec![
        hex[..16].to_string(),
        upper[..16].to_string(),
        array[..20.min(array.len())].to_string(),
    ]
}

fn assert_hidden(label: &str, text: &str, secrets: &[&[u8]], strings: &[&str]) {
    for secret in secrets {
        for r in renderings(secret) {
            assert!(!text.contains(&r), "{label} shows secret bytes: {text}");
        }
    }
    for s in strings {
        assert!(!text.contains(s), "{label} shows a secret string: {text}");
    }
}

#[test]
fn no_key_type_formats_its_secret() {
    let id = Identity::generate();
    let scalar = id.secret_key().to_bytes();
    let secret_string = id.to_secret_string();
    let pem = id.to_pkcs8_pem();
    let strings: [&str; 2] = [&secret_string[..], "PRIVATE KEY"];
    assert_hidden(
        "Identity {:?}",
        &format!("{id:?}"),
        &[&scalar[..]],
        &strings,
    );
    assert_hidden(
        "Identity {:#?}",
        &format!("{id:#?}"),
        &[&scalar[..]],
        &strings,
    );
    assert!(!format!("{id:?}").contains(&pem[30..60]));

    let file_key = [0x5au8; 32];
    let (cipher, _) = ChunkCipher::for_encryption(&file_key, b"ctx");
    assert_hidden("ChunkCipher", &format!("{cipher:?}"), &[&file_key[..]], &[]);
    assert!(
        !format!("{cipher:?}").contains('['),
        "ChunkCipher shows an array"
    );

    let mut writer = PayloadWriter::new(Vec::new(), &file_key, b"ctx").unwrap();
    writer.write_all(b"plaintext that must not show").unwrap();
    let text = format!("{writer:?}");
    assert!(
        !text.contains("plaintext") && !text.contains('['),
        "PayloadWriter shows its buffer: {text}"
    );

    let payload = writer.finish().unwrap();
    let reader = PayloadReader::new(&payload[..], &file_key, b"ctx").unwrap();
    assert!(!format!("{reader:?}").contains('['));

    let recipient = Identity::generate();
    let encryptor = Encryptor::new([recipient.to_recipient()])
        .unwrap()
        .sender(id.clone());
    assert_hidden(
        "Encryptor",
        &format!("{encryptor:?}"),
        &[&scalar[..]],
        &strings,
    );
    let mut file_writer = encryptor.wrap_output(Vec::new()).unwrap();
    file_writer.write_all(b"secret words").unwrap();
    let text = format!("{file_writer:?}");
    assert!(!text.contains("secret words"), "{text}");
    let file = file_writer.finish().unwrap();

    let decryptor = Decryptor::new(&file[..]).unwrap();
    let plaintext = decryptor.decrypt(std::slice::from_ref(&recipient)).unwrap();
    assert_hidden(
        "PlaintextReader",
        &format!("{plaintext:?}"),
        &[&recipient.secret_key().to_bytes()[..]],
        &[],
    );

    let ephemeral = hpke::derive_key_pair(b"ephemeral seed for this test only").unwrap();
    let encap = hpke::encap(recipient.to_recipient().public_key(), None, &ephemeral);
    let text = format!("{encap:?}");
    assert_hidden(
        "Encapsulation",
        &text,
        &[&encap.shared_secret[..], &ephemeral.to_bytes()[..]],
        &[],
    );
    let ctx = hpke::Context::new(Mode::Base, &encap.shared_secret, b"info");
    assert_hidden(
        "hpke::Context",
        &format!("{ctx:?}"),
        &[
            &ctx.key_bytes_for_conformance()[..],
            &ctx.exporter_secret_for_conformance()[..],
        ],
        &[],
    );
}
