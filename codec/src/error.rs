//! Errors of the codec and the decoder outcome classes of SPEC.md.

use std::io;

use kapsel_format::{HeaderClass, HeaderError};

use crate::payload::PayloadError;

/// The decoder outcome classes of SPEC.md, section "Decoder outcomes".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Outcome {
    /// The input does not start with the kapsel magic.
    NotKapsel,
    /// Unknown version, suite or critical extension.
    Unsupported,
    /// The header is truncated or not a valid encoding, or carries an invalid public key.
    MalformedHeader,
    /// No identity opened any stanza.
    NoMatchingRecipient,
    /// A stanza addressed to an identity did not open, or the key commitment
    /// over the header did not match.
    HeaderAuthFailed,
    /// A chunk failed, or the payload was truncated or extended.
    PayloadFailed,
    /// ASCII armor around the file is malformed.
    ArmorFailed,
    /// A segment signature of a signed file did not verify.
    SenderAuthFailed,
    /// The file decodes, but the caller's policy refused it (here: it does
    /// not answer the expected challenge).
    Refused,
    /// Reading or writing failed for reasons outside the file.
    Io,
}

/// Why a file could not be decrypted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DecryptError {
    /// The header was refused.
    #[error(transparent)]
    Header(#[from] HeaderError),
    /// A stanza's encapsulated key or the sender key is not a valid P-256 point.
    #[error("malformed header: public key is not on the P-256 curve")]
    InvalidPublicKey,
    /// None of the given identities opened any stanza.
    #[error("no identity matches any recipient")]
    NoMatchingRecipient,
    /// The file is for a passphrase, and none was given.
    #[error("the file is encrypted with a passphrase, and none was given")]
    PassphraseRequired,
    /// The passphrase did not open the passphrase stanza: it is wrong, or
    /// the stanza was damaged (the two cannot be told apart).
    #[error("wrong passphrase (or a damaged passphrase stanza)")]
    WrongPassphrase,
    /// The passphrase stanza asks for more work than the decoder accepts.
    #[error(
        "the passphrase stanza asks for {} MiB and {} passes of Argon2id, more than the {} MiB and {} passes this decoder accepts",
        cost.memory_kib / 1024, cost.passes, limit.max_memory_kib / 1024, limit.max_passes
    )]
    PassphraseWorkTooHigh {
        /// What the stanza asks for.
        cost: crate::passphrase::Cost,
        /// What the decoder accepts.
        limit: crate::passphrase::WorkLimit,
    },
    /// This build (`fips`) cannot open passphrase stanzas.
    #[error(
        "passphrase stanzas are not available in the FIPS build (Argon2id is not FIPS-approved)"
    )]
    PassphraseUnavailable,
    /// A stanza addressed to one of the identities did not open, or the key
    /// commitment did not match: the header was modified.
    #[error("header authentication failed")]
    HeaderAuthFailed,
    /// The payload failed.
    #[error(transparent)]
    Payload(PayloadError),
    /// A segment of a signed file is not the sender's.
    #[error(transparent)]
    Signature(#[from] crate::segment::SignatureError),
    /// The file does not answer the challenge the caller expects (a message
    /// of the live exchange, SPEC.md section 13.4). Only with the
    /// `exchange` feature, which is the only way to expect one.
    #[cfg(feature = "exchange")]
    #[error(transparent)]
    Challenge(#[from] crate::exchange_wire::ChallengeMismatch),
    /// An identity's private-key operation failed (a token removed, a PIN
    /// refused); the file itself may be fine.
    #[error(transparent)]
    Identity(#[from] crate::identity::IdentityError),
    /// The ASCII armor around the file is malformed.
    #[error(transparent)]
    Armor(crate::armor::ArmorError),
    /// Reading failed.
    #[error(transparent)]
    Io(#[from] io::Error),
}

impl DecryptError {
    /// The error behind an `io::Error` that a decrypting reader returned
    /// (`Read` can only return `io::Error`): a payload, signature or armor
    /// failure comes back as its own variant, anything else as
    /// [`DecryptError::Io`]. Callers never need to look inside the
    /// `io::Error` themselves.
    pub fn from_io(e: io::Error) -> DecryptError {
        let Some(inner) = e.get_ref() else {
            return DecryptError::Io(e);
        };
        if let Some(a) = inner.downcast_ref::<crate::armor::ArmorError>() {
            return DecryptError::Armor(*a);
        }
        if let Some(s) = inner.downcast_ref::<crate::segment::SignatureError>() {
            return DecryptError::Signature(*s);
        }
        if let Some(p) = inner.downcast_ref::<PayloadError>() {
            return DecryptError::from(*p);
        }
        #[cfg(feature = "exchange")]
        if let Some(c) = inner.downcast_ref::<crate::exchange_wire::ChallengeMismatch>() {
            return DecryptError::Challenge(*c);
        }
        DecryptError::Io(e)
    }

    /// The outcome class of this error.
    pub fn outcome(&self) -> Outcome {
        match self {
            DecryptError::Header(h) => match h.class() {
                HeaderClass::NotKapsel => Outcome::NotKapsel,
                HeaderClass::Unsupported => Outcome::Unsupported,
                HeaderClass::Malformed => Outcome::MalformedHeader,
            },
            DecryptError::InvalidPublicKey => Outcome::MalformedHeader,
            DecryptError::NoMatchingRecipient
            | DecryptError::PassphraseRequired
            | DecryptError::WrongPassphrase => Outcome::NoMatchingRecipient,
            DecryptError::PassphraseWorkTooHigh { .. } | DecryptError::PassphraseUnavailable => {
                Outcome::Unsupported
            }
            DecryptError::HeaderAuthFailed => Outcome::HeaderAuthFailed,
            DecryptError::Payload(PayloadError::CommitmentMismatch) => Outcome::HeaderAuthFailed,
            DecryptError::Payload(_) => Outcome::PayloadFailed,
            DecryptError::Signature(_) => Outcome::SenderAuthFailed,
            #[cfg(feature = "exchange")]
            DecryptError::Challenge(_) => Outcome::Refused,
            DecryptError::Armor(_) => Outcome::ArmorFailed,
            DecryptError::Identity(_) => Outcome::Io,
            DecryptError::Io(e) => Outcome::of_io(e),
        }
    }
}

impl From<PayloadError> for DecryptError {
    fn from(e: PayloadError) -> Self {
        match e {
            PayloadError::CommitmentMismatch => DecryptError::HeaderAuthFailed,
            other => DecryptError::Payload(other),
        }
    }
}

impl From<crate::payload::StreamError> for DecryptError {
    fn from(e: crate::payload::StreamError) -> Self {
        match e {
            crate::payload::StreamError::Payload(p) => p.into(),
            crate::payload::StreamError::Signature(s) => DecryptError::Signature(s),
            crate::payload::StreamError::Io(e) => DecryptError::Io(e),
        }
    }
}

impl Outcome {
    /// The outcome class of an error returned by a decrypting reader's
    /// `read`, without taking the error: the class of
    /// [`DecryptError::from_io`] of it.
    pub fn of_io(e: &io::Error) -> Outcome {
        let Some(inner) = e.get_ref() else {
            return Outcome::Io;
        };
        if inner.is::<crate::armor::ArmorError>() {
            return Outcome::ArmorFailed;
        }
        if inner.is::<crate::segment::SignatureError>() {
            return Outcome::SenderAuthFailed;
        }
        #[cfg(feature = "exchange")]
        if inner.is::<crate::exchange_wire::ChallengeMismatch>() {
            return Outcome::Refused;
        }
        payload_error_of(e).map_or(Outcome::Io, |p| DecryptError::from(p).outcome())
    }
}

/// The payload failure inside an `io::Error`, if that is what it carries.
pub fn payload_error_of(e: &io::Error) -> Option<PayloadError> {
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<PayloadError>())
        .copied()
}

/// Why a file could not be encrypted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EncryptError {
    /// No recipient was given.
    #[error("no recipients")]
    NoRecipients,
    /// More recipients than one header can carry.
    #[error("too many recipients ({count}, at most {max})")]
    TooManyRecipients {
        /// The number given.
        count: usize,
        /// The limit.
        max: u16,
    },
    /// Post-quantum and P-256 recipients together, without
    /// [`Encryptor::allow_classical_with_post_quantum`](crate::Encryptor::allow_classical_with_post_quantum):
    /// the P-256 stanzas would leave the file open to a quantum computer.
    #[error("post-quantum and classical recipients mixed: the file would be only as strong as its P-256 stanzas")]
    MixedPostQuantum,
    /// An empty passphrase.
    #[error("empty passphrase")]
    EmptyPassphrase,
    /// This build (`fips`) cannot write passphrase stanzas.
    #[error(
        "passphrase stanzas are not available in the FIPS build (Argon2id is not FIPS-approved)"
    )]
    PassphraseUnavailable,
    /// A recipient key the backend refused.
    #[error("invalid recipient key")]
    InvalidRecipient,
    /// The header would be invalid (for example a creation time out of range).
    #[error(transparent)]
    Header(#[from] HeaderError),
    /// The sender's key (a token) failed to sign, or signed wrongly.
    #[error("cannot sign: {0}")]
    Identity(#[source] crate::identity::IdentityError),
    /// Writing failed.
    #[error(transparent)]
    Io(#[from] io::Error),
}

impl EncryptError {
    /// The typed error behind an `io::Error` returned by a
    /// [`FileWriter`](crate::FileWriter): a signing key's failure comes
    /// back as [`EncryptError::Identity`], anything else as
    /// [`EncryptError::Io`].
    pub fn from_io(e: io::Error) -> EncryptError {
        if e.get_ref().is_none() {
            return EncryptError::Io(e);
        }
        let kind = e.kind();
        match e
            .into_inner()
            .map(|inner| inner.downcast::<crate::identity::IdentityError>())
        {
            Some(Ok(identity)) => EncryptError::Identity(*identity),
            Some(Err(inner)) => EncryptError::Io(io::Error::new(kind, inner)),
            None => EncryptError::Io(io::Error::from(kind)),
        }
    }
}
