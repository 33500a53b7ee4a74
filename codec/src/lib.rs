//! The kapsel codec: HPKE key wrap ([`hpke`]), the Cobblestone-256 chunk
//! primitive and streaming payload ([`payload`]), keys and their text forms
//! ([`keys`]), and the file-level [`Encryptor`] and [`Decryptor`].
//!
//! A file is `header || salt || commitment || chunks`. The header (see
//! `format-spec/SPEC.md`) carries one HPKE stanza per recipient, each sealing
//! the same random 32-byte file key: to a P-256 [`Recipient`], to a hybrid
//! post-quantum [`HybridRecipient`] (ML-KEM-768 + P-256, [`pq`]; format
//! version 2), or, alone, under a [`Passphrase`] ([`passphrase`], Argon2id).
//! [`Keyring`] holds every kind of key a decoder may try. The payload is Cobblestone-256 with the
//! file key as input key and the header bytes as context, so the key
//! commitment authenticates the whole header before any chunk is decrypted.
//!
//! ```
//! use std::io::{Read, Write};
//! use kapsel_codec::{Decryptor, Encryptor, Identity};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let alice = Identity::generate();
//! let mut writer = Encryptor::new([alice.to_recipient()])?.wrap_output(Vec::new())?;
//! writer.write_all(b"hello")?;
//! let file = writer.finish()?;
//!
//! let mut plaintext = Vec::new();
//! Decryptor::new(&file[..])?                        // reads exactly the header
//!     .decrypt(std::slice::from_ref(&alice))?       // unwraps the key, checks the commitment
//!     .read_to_end(&mut plaintext)?;                // releases only verified chunks
//! assert_eq!(plaintext, b"hello");
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]

pub mod aead;
pub mod armor;
pub mod backend;
pub mod decrypt;
pub mod ec;
pub mod encrypt;
pub mod error;
pub mod exchange;
pub mod hpke;
pub mod hybrid;
pub mod keys;
pub mod parallel;
pub mod passphrase;
pub mod payload;
pub mod pq;
pub mod seek;
pub mod segment;

pub use decrypt::{Decryptor, Keyring, PlaintextReader};
pub use encrypt::{Encryptor, FileWriter};
pub use error::{outcome_of_io_error, DecryptError, EncryptError, Outcome};
pub use hybrid::{HybridIdentity, HybridRecipient};
pub use keys::{Identity, KeyParseError, Recipient};
pub use passphrase::Passphrase;
pub use payload::{PayloadReader, PayloadWriter};
pub use seek::{SeekablePayload, SeekableReader};

/// Length of the random per-file key.
pub const FILE_KEY_LEN: usize = 32;
/// HPKE `info` for every stanza of a v1 file.
pub const HPKE_INFO: &[u8] = b"kapsel/v1 file key";
