//! The receiver's policy for `decrypt` and `verify`: expected senders,
//! freshness (`--max-age`, `--max-skew`) and the replay ledger. Refusals
//! exit with code 6; a message that another process is receiving right now
//! exits with code 8, as it may be accepted by a later try.

use std::path::{Path, PathBuf};

use kapsel_cli::ledger::{replay_id, Accepted, Ledger, LedgerError, Reservation};
use kapsel_codec::exchange::Challenge;
use kapsel_codec::ClaimedSender;
use kapsel_codec::Recipient;
use kapsel_format::{Header, Sender, EXTENSION_CHALLENGE};

use crate::error::{CliError, Exit};

/// What the receiver insists on.
#[derive(Clone, Debug, Default)]
pub struct Policy {
    /// The replay ledger, if one is in use.
    pub replay_db: Option<PathBuf>,
    /// Oldest acceptable message, in seconds before now.
    pub max_age: Option<u64>,
    /// Allowed clock skew for messages from the future, in seconds.
    pub max_skew: u64,
    /// If not empty, the file must name one of these senders (and its
    /// signature must verify, which the codec enforces).
    pub expect_senders: Vec<Recipient>,
    /// `--expect-challenge`: the file must answer this challenge (SPEC.md
    /// section 13); the receiver made it fresh, so no ledger is needed.
    pub expect_challenge: Option<Challenge>,
}

fn refuse(message: impl std::fmt::Display) -> CliError {
    CliError::new(Exit::Refused, message)
}

impl Policy {
    /// Whether any check other than the challenge applies.
    fn guards_replay_or_sender(&self) -> bool {
        self.replay_db.is_some() || self.max_age.is_some() || !self.expect_senders.is_empty()
    }

    /// Checks the (authenticated) header against the policy, before any
    /// chunk is read (SPEC.md section 12.1 checks 0 to 2). `live` is the
    /// challenge of a live exchange, which the caller already checked.
    pub fn check_header(
        &self,
        header: &Header,
        sender: Option<&ClaimedSender>,
        now: u64,
        live: Option<&Challenge>,
    ) -> Result<(), CliError> {
        if let Some(challenge) = &self.expect_challenge {
            challenge.check(header).map_err(|e| {
                refuse(e).with_hint(
                    "the sender must encrypt with --challenge and the challenge you gave it",
                )
            })?;
        } else if live.is_none()
            && self.guards_replay_or_sender()
            && header.extension(EXTENSION_CHALLENGE).is_some()
        {
            return Err(refuse(
                "the file answers a live-exchange challenge; it is accepted only by the receiver that checks that challenge",
            )
            .with_hint(
                "a captured live message must not replay into an offline decrypt; decrypt it with --expect-challenge, or without a replay or sender policy",
            ));
        }
        if !self.expect_senders.is_empty() {
            match sender {
                None => return Err(refuse(
                    "the file has no sender, but --expect-sender was given",
                )
                .with_hint(
                    "anyone can make an anonymous file; ask the sender to use encrypt --sign-as",
                )),
                Some(s) if !self.expect_senders.iter().any(|e| s.is(e)) => {
                    return Err(refuse(format!(
                        "the file names sender {s}, which is not an expected sender"
                    )))
                }
                Some(_) => {}
            }
        }
        if self.replay_db.is_some() || self.max_age.is_some() {
            if header.created_at > now.saturating_add(self.max_skew) {
                return Err(refuse(format!(
                    "the file was created in the future ({}), beyond the allowed clock skew of {} s",
                    crate::time::iso8601_utc(header.created_at),
                    self.max_skew
                ))
                .with_hint("check the sender's and this machine's clocks, or raise --max-skew"));
            }
            if let Some(max_age) = self.max_age {
                if header.created_at < now.saturating_sub(max_age) {
                    return Err(refuse(format!(
                        "the file is too old: created {}, more than {max_age} s ago",
                        crate::time::iso8601_utc(header.created_at)
                    )));
                }
            }
        }
        Ok(())
    }

    /// Opens the ledger and reserves this message's replay identifier.
    pub fn reserve(
        &self,
        header: &Header,
        header_bytes: &[u8],
        now: u64,
    ) -> Result<Option<(Ledger, Reservation)>, CliError> {
        let Some(path) = &self.replay_db else {
            return Ok(None);
        };
        let ledger_err = |e: LedgerError| ledger_error(e, path);
        crate::ledger_cmd::warn_exposed(path, "replay ledger");
        let mut ledger = Ledger::open(path).map_err(ledger_err)?;
        let point = match &header.sender {
            Sender::P256(p) => Some(&p.0[..]),
            Sender::Anonymous => None,
        };
        let id = replay_id(point, header.serial, header_bytes);
        let prune_before = self
            .max_age
            .map(|age| now.saturating_sub(age).saturating_sub(self.max_skew) as i64);
        let now_i = i64::try_from(now).unwrap_or(i64::MAX);
        let created = i64::try_from(header.created_at).unwrap_or(i64::MAX);
        let reservation = ledger
            .reserve(&id, created, prune_before, now_i)
            .map_err(ledger_err)?;
        Ok(Some((ledger, reservation)))
    }
}

/// The CLI error for a ledger refusal or failure; `path` is the ledger.
fn ledger_error(e: LedgerError, path: &Path) -> CliError {
    let path = path.display();
    match e {
        LedgerError::Replayed {
            accepted: Accepted::Confirmed,
        } => refuse("replay refused: this message was already accepted")
            .with_hint(format!("recorded in the replay ledger {path}")),
        LedgerError::Replayed {
            accepted: Accepted::Abandoned,
        } => refuse(
            "replay refused: this message was already accepted \
             (abandoned by a receiver that stopped before finishing)",
        )
        .with_hint(format!(
            "a receiver that stops after reserving a message may have released some of its \
             plaintext, so it counts as accepted; ask the sender to encrypt it again \
             (recorded in the replay ledger {path})"
        )),
        LedgerError::Pending { pid } => CliError::new(
            Exit::Pending,
            format!(
                "this message is being received by another kapsel process (pid {pid}); \
                 try again when it has finished"
            ),
        )
        .with_hint(format!("reserved in the replay ledger {path}")),
        LedgerError::BeforeHorizon { .. } => refuse(e.to_string()),
        other => CliError::other(other.to_string()),
    }
}

/// Resolves the ledger path: `--replay-db PATH`, else `$KAPSEL_REPLAY_DB`
/// (`default` meaning `<state dir>/replay.db`), else none.
pub fn replay_db_path(flag: Option<PathBuf>) -> Result<Option<PathBuf>, CliError> {
    let from_env = std::env::var_os("KAPSEL_REPLAY_DB").filter(|v| !v.is_empty());
    let chosen = flag.or_else(|| from_env.map(PathBuf::from));
    match chosen {
        Some(p) if p.as_os_str() == "default" => kapsel_cli::state_dir::default_state_dir()
            .map(|d| Some(d.join("replay.db")))
            .ok_or_else(|| {
                CliError::usage("cannot find a state directory for the default replay ledger")
                    .with_hint("set KAPSEL_STATE_DIR or HOME, or pass --replay-db PATH")
            }),
        other => Ok(other),
    }
}

/// Resolves the serial store path: `--serial-db PATH`, else
/// `$KAPSEL_SERIAL_DB`, else `<state dir>/serials.db`.
pub fn serial_db_path(flag: Option<PathBuf>) -> Result<PathBuf, CliError> {
    if let Some(p) = flag.or_else(|| {
        std::env::var_os("KAPSEL_SERIAL_DB")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    }) {
        return Ok(p);
    }
    kapsel_cli::state_dir::default_state_dir()
        .map(|d| d.join("serials.db"))
        .ok_or_else(|| {
            CliError::usage("cannot find a state directory for the serial store")
                .with_hint("set KAPSEL_STATE_DIR or HOME, or pass --serial-db PATH")
        })
}
