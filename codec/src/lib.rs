//! kapsel: files and streams encrypted to P-256 public keys.
//!
//! A file is `header || salt || commitment || chunks`. The header (see
//! `format-spec/SPEC.md`) carries one HPKE stanza per recipient, each sealing
//! the same random 32-byte file key: to a P-256 [`Recipient`], to a hybrid
//! post-quantum [`HybridRecipient`] (ML-KEM-768 + P-256; format
//! version 2), or, alone, under a [`Passphrase`] (Argon2id).
//! [`Keyring`] holds every kind of key a decoder may try. The payload is Cobblestone-256 with the
//! file key as input key and the header bytes as context, so the key
//! commitment authenticates the whole header before any chunk is decrypted.
//!
//! # The API in one screen
//!
//! - Keys: [`Identity`] (a private key) and [`Recipient`] (its public key),
//!   with their text forms (`KAPSEL-SECRET-KEY-1...`, `kapsel1...`) and PEM.
//! - Keys on hardware: [`IdentityKey`] is the Diffie-Hellman and signing
//!   of a private key wherever it lives; [`Decryptor::decrypt_with`]
//!   takes such keys.
//! - Encrypting: [`Encryptor`] builds the header for some recipients (and
//!   optionally a sender who signs); [`Encryptor::wrap_output`] gives a
//!   [`FileWriter`] (`Write`), whose [`FileWriter::finish`] ends the file, or
//!   [`FileWriter::encrypt_from`] does the whole job in parallel in one call.
//! - Decrypting: [`Decryptor::new`] reads exactly the header, which is not yet
//!   authenticated ([`Decryptor::unverified_header`]); [`Decryptor::decrypt`]
//!   finds the file key and checks the commitment, giving a
//!   [`PlaintextReader`] (`Read`) that releases only verified chunks, or
//!   [`PlaintextReader::decrypt_to`] in parallel in one call;
//!   [`Decryptor::decrypt_seekable`] gives a [`SeekableReader`] for random
//!   access.
//! - ASCII armor: [`ArmoredWriter`], [`ArmoredReader`], [`is_armored`].
//! - Receiving (SPEC section 12): [`ReceiverPolicy`] checks the expected
//!   sender, freshness and the challenge on the authenticated header before
//!   any plaintext leaves; [`ReplayLedger`] is the interface of the ledger of
//!   accepted files, keyed by [`replay_id`].
//! - Inspecting without a key: [`Decryptor::unverified_header`] and
//!   [`payload_shape`].
//! - Errors: [`EncryptError`], [`DecryptError`] with its SPEC outcome class
//!   ([`Outcome`]); [`DecryptError::from_io`] recovers the error behind an
//!   `io::Error` returned by a reader.
//! - The live exchange of SPEC section 13: the `exchange` module (feature `exchange`,
//!   on by default).
//! - Conformance vectors, benchmarks and fuzzing: the `hazmat` module
//!   (feature `hazmat`), which lets its caller choose nonces, salts and
//!   random generators. Not for applications.
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

/// Declares a method that is public only with the `hazmat` feature (and
/// crate-internal without it): `hazmat_fn! { /// docs\n fn name(..) {..} }`.
macro_rules! hazmat_fn {
    ($(#[$m:meta])* fn $($rest:tt)*) => {
        #[cfg(feature = "hazmat")]
        $(#[$m])*
        ///
        /// Only with the `hazmat` feature.
        pub fn $($rest)*
        #[cfg(not(feature = "hazmat"))]
        #[allow(dead_code)]
        $(#[$m])*
        pub(crate) fn $($rest)*
    };
}

mod aead;
mod armor;
pub mod backend;
mod decrypt;
mod ec;
mod encrypt;
mod error;
#[cfg_attr(not(feature = "exchange"), allow(dead_code))]
mod exchange_wire;
mod hpke;
mod hybrid;
mod identity;
mod keys;
mod parallel;
// Conformance-vector helpers are used only through `hazmat`.
#[cfg_attr(not(feature = "hazmat"), allow(dead_code))]
mod passphrase;
mod payload;
mod policy;
#[cfg_attr(not(feature = "hazmat"), allow(dead_code))]
mod pq;
mod seek;
mod segment;
pub mod ssh;

pub use armor::{
    is_armored, ArmorError, ArmoredReader, ArmoredWriter,
    DETECTION_WINDOW as ARMOR_DETECTION_WINDOW,
};
pub use decrypt::{passphrase_cost, ClaimedSender, Decryptor, Keyring, PlaintextReader};
pub use encrypt::{Encryptor, FileWriter};
pub use error::{DecryptError, EncryptError, Outcome};
pub use hybrid::{HybridIdentity, HybridRecipient};
pub use identity::{IdentityError, IdentityKey, SharedSecret};
pub use keys::{Identity, KeyKind, KeyParseError, Recipient};
pub use parallel::{CopyError, InputReady, ReleaseGate};
pub use passphrase::{
    Cost, Passphrase, PassphraseError, WorkLimit, AVAILABLE as PASSPHRASE_AVAILABLE,
};
pub use payload::{PayloadError, CHUNK_SIZE};
pub use policy::{replay_id, PolicyError, ReceiverPolicy, ReplayLedger, DEFAULT_MAX_SKEW};
pub use seek::{payload_shape, PayloadCursor, PayloadShape, SeekableReader};
pub use segment::SignatureError;

/// Length of the random per-file key.
const FILE_KEY_LEN: usize = 32;
/// HPKE `info` for every stanza of a v1 file.
const HPKE_INFO: &[u8] = b"kapsel/v1 file key";

#[cfg(feature = "exchange")]
pub mod exchange {
    //! The live exchange of SPEC.md section 13 (feature `exchange`, on by
    //! default): the receiver sends a fresh [`Challenge`], the sender answers
    //! with a message made for it, the receiver replies with a [`Receipt`]
    //! that only a holder of the file key who read the whole message in this
    //! session can make. Replay is impossible: a recorded message answers
    //! another challenge.
    //!
    //! The sender: [`read_hello`]; `Encryptor::challenge(challenge)`;
    //! `wrap_output(`[`MessageWriter`]`)` and write the message; keep
    //! `FileWriter::receipt_key`; [`MessageWriter::finish`]; [`read_reply`]
    //! and [`ReceiptKey::verify`] the receipt against the tail.
    //!
    //! The receiver: [`write_hello`] with [`Challenge::generate`];
    //! `Decryptor::new(`[`MessageReader`]`)`, `decrypt_live` with the
    //! challenge (which also gives the [`ReceiptKey`]), read the message to
    //! its end; then [`write_receipt`] of [`ReceiptKey::receipt`] over
    //! [`MessageReader::tail`], or [`write_refusal`].
    pub use crate::exchange_wire::{
        read_hello, read_reply, write_hello, write_receipt, write_refusal, Challenge,
        ChallengeMismatch, ChallengeParseError, ExchangeError, MessageReader, MessageTail,
        MessageWriter, Phase, Receipt, ReceiptKey, Reply, CHALLENGE_LEN,
    };
}

#[cfg(feature = "hazmat")]
pub mod hazmat {
    //! Hazardous materials: the building blocks under the safe API, for
    //! conformance vectors, benchmarks and fuzzing. Only with the `hazmat`
    //! feature; not for applications.
    //!
    //! Everything here lets its caller break the guarantees the rest of the
    //! crate keeps: a raw AES-256-GCM that takes the caller's nonce
    //! ([`aead`]), a stateless chunk cipher that reuses a nonce
    //! when asked twice for one index ([`payload::ChunkCipher`]),
    //! HPKE contexts that hand out their key bytes ([`hpke`]), an
    //! encryptor that takes the caller's random generator and salt, and the
    //! parallel payload functions without the file around them. Nothing here is
    //! covered by semantic versioning.

    /// AES-256-GCM with the caller's nonce (HPKE and the payload chunks use it).
    pub mod aead {
        pub use crate::aead::{Aes256Gcm, OpenError, KEY_LEN, NONCE_LEN, TAG_LEN};
    }
    /// P-256 keys as the backend holds them.
    pub mod ec {
        pub use crate::ec::{
            InvalidKey, PublicKey, SecretKey, COMPRESSED_LEN, SCALAR_LEN, UNCOMPRESSED_LEN,
        };
    }
    /// HPKE (RFC 9180) for kapsel's suite, with the key schedule's secrets readable.
    pub mod hpke {
        pub use crate::hpke::{
            decap, derive_key_pair, deserialize_public_key, diffie_hellman, encap,
            hkdf_sha256_expand, hkdf_sha256_extract, key_schedule_for_conformance, Context,
            Encapsulation, HpkeError, Mode, PublicKey, SecretKey, AEAD_ID, KDF_ID, KEM_ID, N_ENC,
            N_SECRET,
        };
    }
    /// The bare parallel payload paths, without the file around them.
    pub mod parallel {
        pub use crate::parallel::{
            decrypt_payload, default_threads, encrypt_payload, CopyError, InputReady, ReleaseGate,
            BATCH_CHUNKS, SEQUENTIAL_BELOW, WINDOW,
        };
    }
    /// The Cobblestone-256 chunk primitive and the bare payload reader and writer.
    pub mod payload {
        pub use crate::payload::{
            ChunkCipher, PayloadError, PayloadReader, PayloadWriter, StreamError, CHUNK_SIZE,
            COMMITMENT_LEN, ENCRYPTED_CHUNK_SIZE, MAX_CHUNKS, PAYLOAD_HEADER_LEN, SALT_LEN,
        };
    }
    /// The hybrid ML-KEM-768 + P-256 KEM (KEM `0x0050`) and its ML-KEM-768
    /// primitive, with derandomized encapsulation for vectors.
    pub mod pq {
        pub use crate::pq::*;
    }
    /// The live exchange's framing and wire constants, for its vectors.
    #[cfg(feature = "exchange")]
    pub mod exchange {
        pub use crate::exchange_wire::{
            FrameReader, FrameWriter, TailReader, TailWriter, ABORT_MARKER, END_MARKER, HELLO_LEN,
            HELLO_MAGIC, MAX_FRAME_LEN, RECEIPT_LEN, STATUS_ACCEPTED, TAIL_LEN,
        };
    }
    /// Argon2id with the caller's parameters (RFC 9106 vectors).
    pub mod passphrase {
        pub use crate::passphrase::{argon2id_for_conformance, Cost};
    }
    /// Random access over a bare payload.
    pub mod seek {
        pub use crate::seek::{
            payload_shape, PayloadCursor, PayloadShape, SeekablePayload, SeekableReader,
        };
    }
    /// Signed segments: the transcript, signer and verifier.
    pub mod segment {
        pub use crate::segment::{
            verify_p1363, ExternalSigner, SegmentHasher, SegmentSigner, SegmentVerifier,
            SignatureError, FULL_SEGMENT_LEN, MIN_FINAL_SEGMENT_LEN, SEGMENT_CHUNKS,
            SEGMENT_CHUNK_BYTES, SEGMENT_LABEL, SEGMENT_PLAINTEXT, SIGNATURE_LEN,
            SIGNED_MESSAGE_LEN,
        };
    }
    pub use crate::error::payload_error_of;
    /// Length of the random per-file key.
    pub const FILE_KEY_LEN: usize = crate::FILE_KEY_LEN;
    /// HPKE `info` for every stanza of a v1 file.
    pub const HPKE_INFO: &[u8] = crate::HPKE_INFO;
}
