//! The receiver's replay ledger (SPEC.md section 9, "Receiver policy"): an
//! SQLite database of the messages this receiver has accepted.
//!
//! Each message has a replay identifier: `0x01 || SHA-256(sender point) ||
//! serial` for a file with a sender, `0x00 || SHA-256(header bytes)` for an
//! anonymous one. A decrypt *reserves* the identifier before it releases any
//! plaintext (one `INSERT` in an immediate transaction, so of several
//! concurrent decrypts of one message exactly one succeeds), *confirms* it
//! after the whole file verified, and *withdraws* it if verification failed.
//! A reservation left by a process that was killed stays, and counts as
//! accepted: a crash can refuse a genuine retransmission, but never lets a
//! replay through.
//!
//! Pruning deletes entries created before a cut-off and raises the ledger's
//! *horizon* to it; a message created before the horizon can no longer be
//! checked and is refused, whatever window a later caller asks for.
//!
//! Durability: WAL journal with `synchronous=FULL`; every change is one
//! transaction, so a SIGKILL at any point leaves the previous or the next
//! state, never a corrupt one.

use std::path::Path;

use rusqlite::{params, Connection, ErrorCode, OptionalExtension, TransactionBehavior};
use sha2::{Digest, Sha256};

/// Why the ledger refused a message, or failed.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// The message was already accepted (or is being accepted right now).
    #[error("message already accepted: this is a replay")]
    Replayed,
    /// The message was created before the ledger's horizon.
    #[error("message is older than the replay ledger's horizon ({horizon}); it cannot be checked")]
    BeforeHorizon {
        /// The horizon, Unix seconds.
        horizon: i64,
    },
    /// The database failed.
    #[error("replay ledger: {0}")]
    Database(#[from] rusqlite::Error),
    /// The ledger file could not be created.
    #[error("replay ledger: {0}")]
    Io(#[from] std::io::Error),
}

/// The replay identifier of a message (see the module documentation).
pub fn replay_id(sender_point: Option<&[u8]>, serial: u64, header_bytes: &[u8]) -> Vec<u8> {
    match sender_point {
        Some(point) => {
            let mut id = Vec::with_capacity(41);
            id.push(0x01);
            id.extend_from_slice(&Sha256::digest(point));
            id.extend_from_slice(&serial.to_be_bytes());
            id
        }
        None => {
            let mut id = Vec::with_capacity(33);
            id.push(0x00);
            id.extend_from_slice(&Sha256::digest(header_bytes));
            id
        }
    }
}

/// An open ledger.
#[derive(Debug)]
pub struct Ledger {
    conn: Connection,
}

/// A reserved identifier, to be confirmed or withdrawn.
#[derive(Debug)]
pub struct Reservation {
    id: Vec<u8>,
    owner: [u8; 16],
}

impl Ledger {
    /// Opens (creating if needed) the ledger at `path`.
    pub fn open(path: &Path) -> Result<Self, LedgerError> {
        let conn = crate::sqlite::open_durable(
            path,
            "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
             CREATE TABLE IF NOT EXISTS seen (
                 id BLOB PRIMARY KEY,
                 created_at INTEGER NOT NULL,
                 confirmed INTEGER NOT NULL,
                 owner BLOB NOT NULL,
                 recorded_at INTEGER NOT NULL
             ) WITHOUT ROWID;
             CREATE INDEX IF NOT EXISTS seen_by_created_at ON seen (created_at);",
        )?;
        Ok(Ledger { conn })
    }

    /// Reserves `id` for a message created at `created_at`, first pruning
    /// entries created before `prune_before` (if given) and raising the
    /// horizon to it.
    pub fn reserve(
        &mut self,
        id: &[u8],
        created_at: i64,
        prune_before: Option<i64>,
        now: i64,
    ) -> Result<Reservation, LedgerError> {
        let mut owner = [0u8; 16];
        getrandom_owner(&mut owner);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut horizon: i64 = tx
            .query_row("SELECT value FROM meta WHERE key = 'horizon'", [], |r| {
                r.get(0)
            })
            .optional()?
            .unwrap_or(i64::MIN);
        if let Some(cutoff) = prune_before.filter(|c| *c > horizon) {
            tx.execute("DELETE FROM seen WHERE created_at < ?1", params![cutoff])?;
            tx.execute("INSERT INTO meta (key, value) VALUES ('horizon', ?1) ON CONFLICT (key) DO UPDATE SET value = excluded.value", params![cutoff])?;
            horizon = cutoff;
        }
        if created_at < horizon {
            // Commit the pruning even though this message is refused.
            tx.commit()?;
            return Err(LedgerError::BeforeHorizon { horizon });
        }
        match tx.execute(
            "INSERT INTO seen (id, created_at, confirmed, owner, recorded_at) VALUES (?1, ?2, 0, ?3, ?4)",
            params![id, created_at, &owner[..], now],
        ) {
            Ok(_) => {}
            Err(rusqlite::Error::SqliteFailure(e, _)) if e.code == ErrorCode::ConstraintViolation => {
                tx.commit()?;
                return Err(LedgerError::Replayed);
            }
            Err(e) => return Err(e.into()),
        }
        tx.commit()?;
        Ok(Reservation {
            id: id.to_vec(),
            owner,
        })
    }

    /// Marks a reservation as a fully verified, accepted message.
    ///
    /// Not flushed to disk before returning: a confirmation lost in a crash
    /// leaves the reservation, which counts as accepted just the same, so
    /// only the reservation needs a synchronous commit.
    pub fn confirm(&mut self, r: Reservation) -> Result<(), LedgerError> {
        self.relaxed(|conn| {
            conn.execute(
                "UPDATE seen SET confirmed = 1 WHERE id = ?1 AND owner = ?2",
                params![r.id, &r.owner[..]],
            )
        })
    }

    /// Withdraws a reservation after the message failed verification, so a
    /// genuine copy can still be accepted later. Not flushed to disk either:
    /// if the withdrawal is lost, the file stays refused, the safe side.
    pub fn withdraw(&mut self, r: Reservation) -> Result<(), LedgerError> {
        self.relaxed(|conn| {
            conn.execute(
                "DELETE FROM seen WHERE id = ?1 AND owner = ?2 AND confirmed = 0",
                params![r.id, &r.owner[..]],
            )
        })
    }

    /// Runs one statement with `synchronous=NORMAL`: atomic, durable at the
    /// next synchronous commit or checkpoint.
    fn relaxed(
        &mut self,
        statement: impl FnOnce(&Connection) -> rusqlite::Result<usize>,
    ) -> Result<(), LedgerError> {
        self.conn.pragma_update(None, "synchronous", "NORMAL")?;
        let result = statement(&self.conn);
        self.conn.pragma_update(None, "synchronous", "FULL")?;
        result?;
        Ok(())
    }

    /// Number of entries (for tests and measurements).
    pub fn len(&self) -> Result<u64, LedgerError> {
        Ok(self
            .conn
            .query_row("SELECT count(*) FROM seen", [], |r| r.get::<_, i64>(0))? as u64)
    }

    /// Whether the ledger has no entries.
    pub fn is_empty(&self) -> Result<bool, LedgerError> {
        Ok(self.len()? == 0)
    }

    /// SQLite's own consistency check; `Ok(true)` when it reports "ok".
    pub fn integrity_ok(&self) -> Result<bool, LedgerError> {
        let result: String = self
            .conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
        Ok(result == "ok")
    }
}

fn getrandom_owner(out: &mut [u8; 16]) {
    use rand_core::RngCore;
    rand_core::OsRng.fill_bytes(out);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_reservation_of_one_id_is_a_replay_and_withdrawal_frees_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut l = Ledger::open(&dir.path().join("l.db")).unwrap();
        let id = replay_id(None, 0, b"header");
        let r = l.reserve(&id, 100, None, 100).unwrap();
        assert!(matches!(
            l.reserve(&id, 100, None, 100),
            Err(LedgerError::Replayed)
        ));
        l.withdraw(r).unwrap();
        let r = l.reserve(&id, 100, None, 100).unwrap();
        l.confirm(r).unwrap();
        assert!(matches!(
            l.reserve(&id, 100, None, 100),
            Err(LedgerError::Replayed)
        ));
    }

    #[test]
    fn pruning_raises_the_horizon() {
        let dir = tempfile::tempdir().unwrap();
        let mut l = Ledger::open(&dir.path().join("l.db")).unwrap();
        for i in 0..10 {
            let r = l
                .reserve(&replay_id(Some(b"s"), i, b""), i as i64 * 10, None, 0)
                .unwrap();
            l.confirm(r).unwrap();
        }
        assert_eq!(l.len().unwrap(), 10);
        let r = l
            .reserve(&replay_id(Some(b"s"), 99, b""), 95, Some(50), 100)
            .unwrap();
        l.confirm(r).unwrap();
        assert_eq!(l.len().unwrap(), 6, "entries created before 50 were pruned");
        // A replay of a pruned message is refused by the horizon, even with no window.
        assert!(matches!(
            l.reserve(&replay_id(Some(b"s"), 1, b""), 10, None, 100),
            Err(LedgerError::BeforeHorizon { horizon: 50 })
        ));
        assert!(l.integrity_ok().unwrap());
    }
}
