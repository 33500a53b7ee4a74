//! The receiver's policy for `decrypt` and `verify`: expected senders,
//! freshness (`--max-age`, `--max-skew`) and the replay ledger. Refusals
//! exit with code 6; a message that another process is receiving right now
//! exits with code 8, as it may be accepted by a later try.

use std::path::{Path, PathBuf};

use kapsel_cli::ledger::{Accepted, Ledger, LedgerError, Reservation};
use kapsel_codec::exchange::Challenge;
use kapsel_codec::{
    replay_id, ClaimedSender, PolicyError, ReceiverPolicy, Recipient, ReplayLedger,
};
use kapsel_format::Header;

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
    /// The library's receiver policy for these settings (SPEC.md section
    /// 12.1): one implementation for the CLI and every other receiver.
    fn receiver_policy(&self) -> ReceiverPolicy {
        let mut p = ReceiverPolicy::new().max_skew(self.max_skew);
        for sender in &self.expect_senders {
            p = p.expect_sender(sender.clone());
        }
        if let Some(age) = self.max_age {
            p = p.max_age(age);
        }
        if self.replay_db.is_some() {
            p = p.with_ledger();
        }
        if let Some(challenge) = self.expect_challenge {
            p = p.expect_challenge(challenge);
        }
        p
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
        let policy = self.receiver_policy();
        let checked = match live {
            Some(_) => policy.check_live_header(header, sender, now),
            None => policy.check_header(header, sender, now),
        };
        checked.map_err(policy_error)
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
        let id = replay_id(header, header_bytes);
        let prune_before = self.receiver_policy().prune_before(now);
        let reservation =
            ReplayLedger::reserve(&mut ledger, &id, header.created_at, prune_before, now)
                .map_err(ledger_err)?;
        Ok(Some((ledger, reservation)))
    }
}

/// The CLI error, with its hint, for a refusal by the receiver policy.
fn policy_error(e: PolicyError) -> CliError {
    match e {
        PolicyError::Challenge(c) => refuse(c).with_hint(
            "the sender must encrypt with --challenge and the challenge you gave it",
        ),
        PolicyError::LiveMessage => refuse(
            "the file answers a live-exchange challenge; it is accepted only by the receiver that checks that challenge",
        )
        .with_hint(
            "a captured live message must not replay into an offline decrypt; decrypt it with --expect-challenge, or without a replay or sender policy",
        ),
        PolicyError::NoSender => refuse("the file has no sender, but --expect-sender was given")
            .with_hint("anyone can make an anonymous file; ask the sender to use encrypt --sign-as"),
        PolicyError::UnexpectedSender { sender } => refuse(format!(
            "the file names sender {sender}, which is not an expected sender"
        )),
        PolicyError::FromTheFuture {
            created_at,
            max_skew,
        } => refuse(format!(
            "the file was created in the future ({}), beyond the allowed clock skew of {max_skew} s",
            crate::time::iso8601_utc(created_at),
        ))
        .with_hint("check the sender's and this machine's clocks, or raise --max-skew"),
        PolicyError::TooOld {
            created_at,
            max_age,
        } => refuse(format!(
            "the file is too old: created {}, more than {max_age} s ago",
            crate::time::iso8601_utc(created_at)
        )),
        other => refuse(other),
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
