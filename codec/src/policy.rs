//! The receiver policy of SPEC.md section 12: which files a receiver
//! accepts, checked on the authenticated header before any plaintext is
//! released. One implementation for every receiver (the `kapsel` CLI, a
//! library user, a later binding): [`ReceiverPolicy::check_header`] runs
//! checks 0 to 2 of section 12.1 (challenge, expected sender, freshness), and
//! [`ReplayLedger`] is the interface of the ledger behind check 3, keyed by
//! [`replay_id`] (section 12.2). The ledger's storage is the caller's: the
//! CLI keeps one in SQLite.

use kapsel_format::{Header, Sender, EXTENSION_CHALLENGE};

use crate::decrypt::ClaimedSender;
use crate::keys::Recipient;

/// What a receiver insists on before it releases a file's plaintext.
///
/// ```
/// use kapsel_codec::{Encryptor, Identity, Decryptor, ReceiverPolicy, PolicyError};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let (alice, bob) = (Identity::generate(), Identity::generate());
/// let file = Encryptor::new([bob.to_recipient()])?
///     .sender(alice.clone())
///     .created_at(1_800_000_000)
///     .wrap_output(Vec::new())?
///     .finish()?;
/// let reader = Decryptor::new(&file[..])?.decrypt(std::slice::from_ref(&bob))?;
/// let policy = ReceiverPolicy::new()
///     .expect_sender(alice.to_recipient())
///     .max_age(86_400);
/// let claimed = reader.claimed_sender();
/// policy.check_header(reader.header(), claimed.as_ref(), 1_800_000_100)?;
/// assert!(matches!(
///     policy.check_header(reader.header(), claimed.as_ref(), 1_900_000_000),
///     Err(PolicyError::TooOld { .. })
/// ));
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct ReceiverPolicy {
    expected_senders: Vec<Recipient>,
    max_age: Option<u64>,
    max_skew: u64,
    ledger: bool,
    #[cfg(feature = "exchange")]
    challenge: Option<crate::exchange_wire::Challenge>,
}

impl Default for ReceiverPolicy {
    fn default() -> Self {
        Self::new()
    }
}

/// Why a receiver refused a file (SPEC.md section 12.1).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// The file does not answer the challenge this receiver expects.
    #[cfg(feature = "exchange")]
    #[error(transparent)]
    Challenge(#[from] crate::exchange_wire::ChallengeMismatch),
    /// The file answers a live-exchange challenge, but this receiver checks
    /// no challenge while it guards against replays or checks senders: a
    /// captured live message must not replay into an offline receiver.
    #[error("the file answers a live-exchange challenge; only the receiver that checks that challenge accepts it")]
    LiveMessage,
    /// Senders are expected, but the file is anonymous.
    #[error("the file has no sender, but a sender is expected")]
    NoSender,
    /// The file names a sender that is not expected.
    #[error("the file names sender {sender}, which is not an expected sender")]
    UnexpectedSender {
        /// The sender the header names (its signatures are checked later).
        sender: Recipient,
    },
    /// The file was created after now plus the allowed skew.
    #[error("the file was created in the future (at {created_at}), beyond the allowed clock skew of {max_skew} s")]
    FromTheFuture {
        /// The header's creation time, Unix seconds.
        created_at: u64,
        /// The allowed skew, seconds.
        max_skew: u64,
    },
    /// The file is older than the maximum age.
    #[error("the file is too old: created at {created_at}, more than {max_age} s ago")]
    TooOld {
        /// The header's creation time, Unix seconds.
        created_at: u64,
        /// The maximum age, seconds.
        max_age: u64,
    },
}

/// The default allowed clock skew for files from the future: 5 minutes.
pub const DEFAULT_MAX_SKEW: u64 = 300;

impl ReceiverPolicy {
    /// A policy that accepts every file that decrypts.
    pub fn new() -> Self {
        ReceiverPolicy {
            expected_senders: Vec::new(),
            max_age: None,
            max_skew: DEFAULT_MAX_SKEW,
            ledger: false,
            #[cfg(feature = "exchange")]
            challenge: None,
        }
    }

    /// Accepts only files that name this sender (repeat for several). The
    /// signatures are checked by the decryptor, segment by segment.
    pub fn expect_sender(mut self, sender: Recipient) -> Self {
        self.expected_senders.push(sender);
        self
    }

    /// Refuses files created more than `seconds` before now.
    pub fn max_age(mut self, seconds: u64) -> Self {
        self.max_age = Some(seconds);
        self
    }

    /// The clock skew allowed for files from the future (default
    /// [`DEFAULT_MAX_SKEW`]); applies with a maximum age or a ledger.
    pub fn max_skew(mut self, seconds: u64) -> Self {
        self.max_skew = seconds;
        self
    }

    /// Declares that the caller records accepted files in a
    /// [`ReplayLedger`]: files from the future are then refused too, and so
    /// are live-exchange messages.
    pub fn with_ledger(mut self) -> Self {
        self.ledger = true;
        self
    }

    /// Accepts only files that answer `challenge` (SPEC.md section 13.4).
    #[cfg(feature = "exchange")]
    pub fn expect_challenge(mut self, challenge: crate::exchange_wire::Challenge) -> Self {
        self.challenge = Some(challenge);
        self
    }

    /// The maximum age, if any.
    pub fn max_age_seconds(&self) -> Option<u64> {
        self.max_age
    }

    /// The oldest creation time a ledger must still remember at `now`
    /// (SPEC.md section 12.3): entries before it may be pruned. `None`
    /// without a maximum age.
    pub fn prune_before(&self, now: u64) -> Option<u64> {
        self.max_age
            .map(|age| now.saturating_sub(age).saturating_sub(self.max_skew))
    }

    fn guards_replay_or_sender(&self) -> bool {
        self.ledger || self.max_age.is_some() || !self.expected_senders.is_empty()
    }

    /// Checks 0 to 2 of SPEC.md section 12.1 on the header, before any
    /// plaintext is released: the challenge, the expected sender, and
    /// freshness against `now` (Unix seconds). `sender` is the header's
    /// claimed sender ([`PlaintextReader::claimed_sender`](crate::PlaintextReader::claimed_sender));
    /// the decryptor verifies its signatures before it releases a byte.
    pub fn check_header(
        &self,
        header: &Header,
        sender: Option<&ClaimedSender>,
        now: u64,
    ) -> Result<(), PolicyError> {
        self.check(header, sender, now, false)
    }

    /// [`check_header`](Self::check_header) for a message of a live
    /// exchange whose challenge the caller already checked
    /// ([`Decryptor::decrypt_live`](crate::Decryptor::decrypt_live)).
    #[cfg(feature = "exchange")]
    pub fn check_live_header(
        &self,
        header: &Header,
        sender: Option<&ClaimedSender>,
        now: u64,
    ) -> Result<(), PolicyError> {
        self.check(header, sender, now, true)
    }

    fn check(
        &self,
        header: &Header,
        sender: Option<&ClaimedSender>,
        now: u64,
        live: bool,
    ) -> Result<(), PolicyError> {
        #[cfg(feature = "exchange")]
        let expects_challenge = match &self.challenge {
            Some(challenge) => {
                challenge.check(header)?;
                true
            }
            None => false,
        };
        #[cfg(not(feature = "exchange"))]
        let expects_challenge = false;
        if !expects_challenge
            && !live
            && self.guards_replay_or_sender()
            && header.extension(EXTENSION_CHALLENGE).is_some()
        {
            return Err(PolicyError::LiveMessage);
        }
        if !self.expected_senders.is_empty() {
            match sender {
                None => return Err(PolicyError::NoSender),
                Some(s) if !self.expected_senders.iter().any(|e| s.is(e)) => {
                    return Err(PolicyError::UnexpectedSender {
                        sender: s.unverified_key().clone(),
                    })
                }
                Some(_) => {}
            }
        }
        if self.ledger || self.max_age.is_some() {
            if header.created_at > now.saturating_add(self.max_skew) {
                return Err(PolicyError::FromTheFuture {
                    created_at: header.created_at,
                    max_skew: self.max_skew,
                });
            }
            if let Some(max_age) = self.max_age {
                if header.created_at < now.saturating_sub(max_age) {
                    return Err(PolicyError::TooOld {
                        created_at: header.created_at,
                        max_age,
                    });
                }
            }
        }
        Ok(())
    }
}

/// The replay identifier of a file (SPEC.md section 12.2): for a signed
/// file `0x01 || SHA-256(sender key) || serial` (41 bytes), for an anonymous
/// one `0x00 || SHA-256(header bytes)` (33 bytes).
pub fn replay_id(header: &Header, header_bytes: &[u8]) -> Vec<u8> {
    match &header.sender {
        Sender::P256(point) => {
            let mut id = Vec::with_capacity(41);
            id.push(0x01);
            id.extend_from_slice(&crate::backend::sha256(&point.0));
            id.extend_from_slice(&header.serial.to_be_bytes());
            id
        }
        Sender::Anonymous => {
            let mut id = Vec::with_capacity(33);
            id.push(0x00);
            id.extend_from_slice(&crate::backend::sha256(header_bytes));
            id
        }
    }
}

/// The ledger of accepted files behind check 3 of SPEC.md section 12.1:
/// a file counts as accepted once [`reserve`](Self::reserve) succeeded, just
/// before its first plaintext byte is released (section 12.2).
pub trait ReplayLedger {
    /// A reservation, confirmed or withdrawn later.
    type Reservation;
    /// Why the ledger refused or failed (`Replayed`, `Pending`, I/O ...).
    type Error: std::error::Error;

    /// Records `id` as being received, atomically refusing an `id` already
    /// recorded; may prune entries created before `prune_before` (see
    /// [`ReceiverPolicy::prune_before`]) and must refuse files created
    /// before what it pruned.
    fn reserve(
        &mut self,
        id: &[u8],
        created_at: u64,
        prune_before: Option<u64>,
        now: u64,
    ) -> Result<Self::Reservation, Self::Error>;

    /// The whole file verified: the entry stays for good.
    fn confirm(&mut self, reservation: Self::Reservation) -> Result<(), Self::Error>;

    /// The file failed before any plaintext left the receiver: the entry
    /// is removed, so the genuine file can still be accepted.
    fn withdraw(&mut self, reservation: Self::Reservation) -> Result<(), Self::Error>;
}
