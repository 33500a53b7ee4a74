//! The receiver's replay ledger (SPEC.md section 12, "Receiver policy"): an
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
//! Each reservation records its *holder*: the process id, that process's
//! start time and the boot id (on Linux, from `/proc`). An unconfirmed
//! reservation whose holder still runs is *pending* ([`LedgerError::Pending`]:
//! another process is receiving the message right now, try later); one whose
//! holder is gone was *abandoned* and counts as accepted. The start time and
//! boot id make a reused process id or a reboot look like a different
//! process; a holder that cannot be identified (rows from before the holder
//! columns, or a system without `/proc`) never counts as live. Either way the
//! message is refused: liveness only decides what the refusal says.
//!
//! Pruning deletes entries created before a cut-off and raises the ledger's
//! *horizon* to it; a message created before the horizon can no longer be
//! checked and is refused, whatever window a later caller asks for. The
//! cut-off never passes the newest creation time in the ledger, so a clock
//! that jumps forward cannot push the horizon past every genuine file.
//!
//! For `kapsel ledger`: [`Ledger::for_each_entry`] lists entries,
//! [`Ledger::forget`] deletes one (that message can then be accepted once
//! more), [`Ledger::set_horizon`] lowers a horizon set in the future, and
//! [`Ledger::check`] reports what is wrong with a ledger file.
//!
//! Durability: WAL journal with `synchronous=FULL`; every change is one
//! transaction, so a SIGKILL at any point leaves the previous or the next
//! state, never a corrupt one.

use std::path::Path;

use rusqlite::{params, Connection, ErrorCode, OptionalExtension, TransactionBehavior};

/// Why the ledger refused a message, or failed.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// The message was already accepted.
    #[error("message already accepted ({accepted}): this is a replay")]
    Replayed {
        /// Whether a receiver finished with it or stopped halfway.
        accepted: Accepted,
    },
    /// Another process, still running, holds an unconfirmed reservation of
    /// the message: it is being received right now.
    #[error("message is being received by another process (pid {pid})")]
    Pending {
        /// The process holding the reservation.
        pid: u32,
    },
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

/// How an already accepted message was accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Accepted {
    /// A receiver verified the whole message and confirmed it.
    Confirmed,
    /// A receiver reserved it and stopped (crashed, was killed, or released
    /// plaintext before failing) without confirming or withdrawing.
    Abandoned,
}

impl std::fmt::Display for Accepted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Accepted::Confirmed => "confirmed",
            Accepted::Abandoned => "abandoned by a receiver that stopped before finishing",
        })
    }
}

/// The SQLite ledger behind the receiver policy of `kapsel_codec`
/// ([`kapsel_codec::ReplayLedger`]); the replay identifiers are
/// [`kapsel_codec::replay_id`]'s.
impl kapsel_codec::ReplayLedger for Ledger {
    type Reservation = Reservation;
    type Error = LedgerError;

    fn reserve(
        &mut self,
        id: &[u8],
        created_at: u64,
        prune_before: Option<u64>,
        now: u64,
    ) -> Result<Reservation, LedgerError> {
        // SQLite integers are signed; times past i64::MAX cannot occur in a
        // header (SPEC.md section 3.4 caps them at year 9999).
        let signed = |t: u64| i64::try_from(t).unwrap_or(i64::MAX);
        Ledger::reserve(
            self,
            id,
            signed(created_at),
            prune_before.map(signed),
            signed(now),
        )
    }

    fn confirm(&mut self, reservation: Reservation) -> Result<(), LedgerError> {
        Ledger::confirm(self, reservation)
    }

    fn withdraw(&mut self, reservation: Reservation) -> Result<(), LedgerError> {
        Ledger::withdraw(self, reservation)
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

/// The columns that name a reservation's holder, added to ledgers created
/// before they existed; such old rows have none and never count as live.
const HOLDER_COLUMNS: [(&str, &str); 3] = [
    ("holder_pid", "INTEGER DEFAULT NULL"),
    ("holder_start", "INTEGER DEFAULT NULL"),
    ("holder_boot", "TEXT DEFAULT NULL"),
];

impl Ledger {
    /// Opens (creating if needed) the ledger at `path`, adding the holder
    /// columns to a ledger file that predates them.
    pub fn open(path: &Path) -> Result<Self, LedgerError> {
        let mut conn = crate::sqlite::open_durable(
            path,
            "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
             CREATE TABLE IF NOT EXISTS seen (
                 id BLOB PRIMARY KEY,
                 created_at INTEGER NOT NULL,
                 confirmed INTEGER NOT NULL,
                 owner BLOB NOT NULL,
                 recorded_at INTEGER NOT NULL,
                 holder_pid INTEGER DEFAULT NULL,
                 holder_start INTEGER DEFAULT NULL,
                 holder_boot TEXT DEFAULT NULL
             ) WITHOUT ROWID;
             CREATE INDEX IF NOT EXISTS seen_by_created_at ON seen (created_at);",
        )?;
        migrate(&mut conn)?;
        Ok(Ledger { conn })
    }

    /// Reserves `id` for a message created at `created_at`, first pruning
    /// entries created before `prune_before` (if given) and raising the
    /// horizon to it. The reservation is held by this process.
    pub fn reserve(
        &mut self,
        id: &[u8],
        created_at: i64,
        prune_before: Option<i64>,
        now: i64,
    ) -> Result<Reservation, LedgerError> {
        self.reserve_as(&Holder::current(), id, created_at, prune_before, now)
    }

    fn reserve_as(
        &mut self,
        holder: &Holder,
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
        // Never past the newest creation time already recorded, and not at
        // all in an empty ledger (there is nothing to prune): a cut-off from
        // a clock that jumped forward must not delete every entry and lock
        // out every file made before the jump.
        let newest: Option<i64> =
            tx.query_row("SELECT max(created_at) FROM seen", [], |r| r.get(0))?;
        let prune_before = prune_before.and_then(|c| newest.map(|n| c.min(n)));
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
            "INSERT INTO seen (id, created_at, confirmed, owner, recorded_at, holder_pid, holder_start, holder_boot)
             VALUES (?1, ?2, 0, ?3, ?4, ?5, ?6, ?7)",
            params![
                id,
                created_at,
                &owner[..],
                now,
                holder.pid,
                holder.start,
                holder.boot
            ],
        ) {
            Ok(_) => {}
            Err(rusqlite::Error::SqliteFailure(e, _)) if e.code == ErrorCode::ConstraintViolation => {
                let (confirmed, existing) = tx.query_row(
                    "SELECT confirmed, holder_pid, holder_start, holder_boot FROM seen WHERE id = ?1",
                    params![id],
                    |r| {
                        let holder = Holder {
                            pid: r.get(1)?,
                            start: r.get(2)?,
                            boot: r.get(3)?,
                        };
                        Ok((r.get::<_, i64>(0)? != 0, holder))
                    },
                )?;
                tx.commit()?;
                return Err(match (confirmed, existing.live_pid()) {
                    (true, _) => LedgerError::Replayed {
                        accepted: Accepted::Confirmed,
                    },
                    (false, Some(pid)) => LedgerError::Pending { pid },
                    (false, None) => LedgerError::Replayed {
                        accepted: Accepted::Abandoned,
                    },
                });
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

/// The state of a ledger entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryState {
    /// Confirmed: a receiver verified the whole message.
    Accepted,
    /// Reserved by a process that is gone: counts as accepted.
    Abandoned,
    /// Reserved by a process that is still running.
    Pending {
        /// The holder's process id.
        pid: u32,
    },
}

/// One entry of the ledger, as [`Ledger::for_each_entry`] reports it.
#[derive(Clone, Debug)]
pub struct Entry {
    /// The replay identifier (see [`kapsel_codec::replay_id`]).
    pub id: Vec<u8>,
    /// For a signed message: SHA-256 of the sender's public point.
    pub sender_key_sha256: Option<[u8; 32]>,
    /// For a signed message: its serial.
    pub serial: Option<u64>,
    /// The message's creation time, Unix seconds.
    pub created_at: i64,
    /// When this receiver recorded it, Unix seconds (its own clock).
    pub recorded_at: i64,
    pub state: EntryState,
}

impl Entry {
    fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        let id: Vec<u8> = r.get(0)?;
        let holder = Holder {
            pid: r.get(4)?,
            start: r.get(5)?,
            boot: r.get(6)?,
        };
        let state = match (r.get::<_, i64>(2)? != 0, holder.live_pid()) {
            (true, _) => EntryState::Accepted,
            (false, Some(pid)) => EntryState::Pending { pid },
            (false, None) => EntryState::Abandoned,
        };
        let (sender_key_sha256, serial) = match (id.first(), id.len()) {
            (Some(0x01), 41) => {
                let mut key = [0u8; 32];
                key.copy_from_slice(&id[1..33]);
                let mut serial = [0u8; 8];
                serial.copy_from_slice(&id[33..41]);
                (Some(key), Some(u64::from_be_bytes(serial)))
            }
            _ => (None, None),
        };
        Ok(Entry {
            id,
            sender_key_sha256,
            serial,
            created_at: r.get(1)?,
            recorded_at: r.get(3)?,
            state,
        })
    }
}

/// What [`Ledger::check`] found wrong; empty when the ledger is sound.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Problem {
    /// `PRAGMA integrity_check` did not report "ok".
    Corrupt(String),
    /// A table or column kapsel needs is missing.
    Schema(String),
    /// The horizon lies after `now` plus the allowed skew.
    HorizonInFuture {
        /// The horizon, Unix seconds.
        horizon: i64,
    },
    /// Entries created after `now` plus the allowed skew.
    EntriesInFuture {
        /// How many.
        count: u64,
    },
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Problem::Corrupt(m) => write!(f, "SQLite integrity check failed: {m}"),
            Problem::Schema(m) => write!(f, "unexpected schema: {m}"),
            Problem::HorizonInFuture { horizon } => {
                write!(f, "the horizon ({horizon}) lies in the future: every file created before it is refused")
            }
            Problem::EntriesInFuture { count } => {
                write!(f, "{count} entries were created in the future")
            }
        }
    }
}

impl Ledger {
    /// Opens an existing ledger, without creating one at `path`.
    pub fn open_existing(path: &Path) -> Result<Self, LedgerError> {
        if !path.is_file() {
            return Err(LedgerError::Io(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("no ledger at {}", path.display()),
            )));
        }
        Self::open(path)
    }

    /// Calls `f` with each entry, oldest creation time first.
    pub fn for_each_entry<E: From<LedgerError>>(
        &self,
        mut f: impl FnMut(Entry) -> Result<(), E>,
    ) -> Result<(), E> {
        let mut statement = self
            .conn
            .prepare(
                "SELECT id, created_at, confirmed, recorded_at, holder_pid, holder_start, holder_boot
                 FROM seen ORDER BY created_at, id",
            )
            .map_err(LedgerError::from)?;
        let mut rows = statement.query([]).map_err(LedgerError::from)?;
        while let Some(row) = rows.next().map_err(LedgerError::from)? {
            f(Entry::from_row(row).map_err(LedgerError::from)?)?;
        }
        Ok(())
    }

    /// The horizon, Unix seconds, if the ledger was ever pruned.
    pub fn horizon(&self) -> Result<Option<i64>, LedgerError> {
        Ok(self
            .conn
            .query_row("SELECT value FROM meta WHERE key = 'horizon'", [], |r| {
                r.get(0)
            })
            .optional()?)
    }

    /// The newest creation time recorded, if any entry exists.
    pub fn newest_created_at(&self) -> Result<Option<i64>, LedgerError> {
        Ok(self
            .conn
            .query_row("SELECT max(created_at) FROM seen", [], |r| r.get(0))?)
    }

    /// Deletes the entry `id`; whether there was one. The message it
    /// recorded can then be accepted once more (SPEC.md section 12.3).
    pub fn forget(&mut self, id: &[u8]) -> Result<bool, LedgerError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let n = tx.execute("DELETE FROM seen WHERE id = ?1", params![id])?;
        tx.commit()?;
        Ok(n > 0)
    }

    /// Lowers the horizon to `to` (never raises it); returns the horizon
    /// before, if there was one and it changed.
    pub fn set_horizon(&mut self, to: i64) -> Result<Option<i64>, LedgerError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let before: Option<i64> = tx
            .query_row("SELECT value FROM meta WHERE key = 'horizon'", [], |r| {
                r.get(0)
            })
            .optional()?;
        let changed = before.filter(|h| *h > to);
        if changed.is_some() {
            tx.execute(
                "UPDATE meta SET value = ?1 WHERE key = 'horizon'",
                params![to],
            )?;
        }
        tx.commit()?;
        Ok(changed)
    }

    /// Checks the file: SQLite's integrity check, the schema, and times in
    /// the future (beyond `now + skew`).
    pub fn check(&self, now: i64, skew: i64) -> Result<Vec<Problem>, LedgerError> {
        let mut problems = Vec::new();
        let mut statement = self.conn.prepare("PRAGMA integrity_check")?;
        let lines = statement
            .query_map([], |r| r.get::<_, String>(0))?
            .collect::<rusqlite::Result<Vec<String>>>()?;
        if lines != ["ok"] {
            problems.push(Problem::Corrupt(lines.join("; ")));
        }
        for (table, columns) in [
            ("meta", &["key", "value"][..]),
            (
                "seen",
                &[
                    "id",
                    "created_at",
                    "confirmed",
                    "owner",
                    "recorded_at",
                    "holder_pid",
                    "holder_start",
                    "holder_boot",
                ][..],
            ),
        ] {
            let mut statement = self
                .conn
                .prepare("SELECT name FROM pragma_table_info(?1)")?;
            let present = statement
                .query_map([table], |r| r.get::<_, String>(0))?
                .collect::<rusqlite::Result<Vec<String>>>()?;
            for c in columns {
                if !present.iter().any(|p| p == c) {
                    problems.push(Problem::Schema(format!("table {table} lacks column {c}")));
                }
            }
        }
        let limit = now.saturating_add(skew);
        if let Some(horizon) = self.horizon()?.filter(|h| *h > limit) {
            problems.push(Problem::HorizonInFuture { horizon });
        }
        let future: i64 = self.conn.query_row(
            "SELECT count(*) FROM seen WHERE created_at > ?1",
            params![limit],
            |r| r.get(0),
        )?;
        if future > 0 {
            problems.push(Problem::EntriesInFuture {
                count: future as u64,
            });
        }
        Ok(problems)
    }
}

fn getrandom_owner(out: &mut [u8; 16]) {
    kapsel_codec::backend::fill_random(out);
}

/// Adds the holder columns a ledger file lacks. The check runs again inside
/// an immediate transaction, so of several processes opening one old ledger
/// at once, one adds the columns and the others find them.
fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    fn missing(conn: &Connection) -> rusqlite::Result<Vec<(&'static str, &'static str)>> {
        let mut statement = conn.prepare("SELECT name FROM pragma_table_info('seen')")?;
        let present = statement
            .query_map([], |r| r.get::<_, String>(0))?
            .collect::<rusqlite::Result<Vec<String>>>()?;
        Ok(HOLDER_COLUMNS
            .into_iter()
            .filter(|(name, _)| !present.iter().any(|p| p == name))
            .collect())
    }
    if missing(conn)?.is_empty() {
        return Ok(());
    }
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    for (name, declaration) in missing(&tx)? {
        tx.execute_batch(&format!("ALTER TABLE seen ADD COLUMN {name} {declaration}"))?;
    }
    tx.commit()
}

/// The process holding a reservation: its id, and what tells this
/// incarnation of that id apart from a later process reusing it (start time
/// in clock ticks after boot, and the boot id). `None` where unknown; a
/// holder with an unknown part is never live.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Holder {
    pid: Option<u32>,
    start: Option<i64>,
    boot: Option<String>,
}

impl Holder {
    /// This process.
    fn current() -> Self {
        let pid = std::process::id();
        Holder {
            pid: Some(pid),
            start: running_since(pid),
            boot: boot_id().map(str::to_owned),
        }
    }

    /// The process id, if that very process is still running: same boot,
    /// same start time, and not a zombie that has already exited.
    fn live_pid(&self) -> Option<u32> {
        let (pid, start, boot) = (self.pid?, self.start?, self.boot.as_deref()?);
        (boot_id() == Some(boot) && running_since(pid) == Some(start)).then_some(pid)
    }
}

/// This boot's id (`/proc/sys/kernel/random/boot_id`), read once.
fn boot_id() -> Option<&'static str> {
    static BOOT_ID: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    BOOT_ID
        .get_or_init(|| {
            std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
                .ok()
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
        })
        .as_deref()
}

/// The start time of process `pid` (field 22 of `/proc/<pid>/stat`, clock
/// ticks after boot), if it exists and has not exited.
fn running_since(pid: u32) -> Option<i64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    start_time_of_stat(&stat)
}

/// Field 22 of a `/proc/<pid>/stat` line, unless field 3 (the state) says
/// the process has exited (zombie or dead). Field 2, the command name in
/// parentheses, may itself contain spaces and parentheses, so fields are
/// counted from the last `)`.
fn start_time_of_stat(stat: &str) -> Option<i64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace();
    let state = fields.next()?;
    if matches!(state, "Z" | "X" | "x") {
        return None;
    }
    // Fields 4 to 21 come before the start time.
    fields.nth(18)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use kapsel_codec::backend::sha256;

    use super::*;

    /// A replay identifier of the shape `kapsel_codec::replay_id` gives,
    /// from made-up parts: the ledger only needs distinct byte strings.
    fn replay_id(sender_point: Option<&[u8]>, serial: u64, header_bytes: &[u8]) -> Vec<u8> {
        match sender_point {
            Some(point) => [&[1u8][..], &sha256(point), &serial.to_be_bytes()].concat(),
            None => [&[0u8][..], &sha256(header_bytes)].concat(),
        }
    }

    #[test]
    fn second_reservation_of_one_id_is_refused_and_withdrawal_frees_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut l = Ledger::open(&dir.path().join("l.db")).unwrap();
        let id = replay_id(None, 0, b"header");
        let r = l.reserve(&id, 100, None, 100).unwrap();
        // Held by this process, which is running: pending, not accepted.
        assert!(matches!(
            l.reserve(&id, 100, None, 100),
            Err(LedgerError::Pending { pid }) if pid == std::process::id()
        ));
        l.withdraw(r).unwrap();
        let r = l.reserve(&id, 100, None, 100).unwrap();
        l.confirm(r).unwrap();
        assert!(matches!(
            l.reserve(&id, 100, None, 100),
            Err(LedgerError::Replayed {
                accepted: Accepted::Confirmed
            })
        ));
    }

    #[test]
    fn reservation_of_a_live_holder_is_pending() {
        let dir = tempfile::tempdir().unwrap();
        let mut l = Ledger::open(&dir.path().join("l.db")).unwrap();
        let id = replay_id(Some(b"s"), 1, b"");
        let me = Holder::current();
        assert!(me.start.is_some() && me.boot.is_some(), "{me:?}");
        let _held = l.reserve_as(&me, &id, 100, None, 100).unwrap();
        let second = l.reserve_as(&Holder::current(), &id, 100, None, 100);
        assert!(
            matches!(second, Err(LedgerError::Pending { pid }) if pid == std::process::id()),
            "{second:?}"
        );
        assert_eq!(l.len().unwrap(), 1);
    }

    #[test]
    fn reservation_of_a_dead_holder_counts_as_accepted() {
        let me = Holder::current();
        let dead = [
            // A process id that is not running (above any pid_max).
            Holder {
                pid: Some(i32::MAX as u32),
                ..me.clone()
            },
            // This process id, but another incarnation of it.
            Holder {
                start: me.start.map(|s| s + 1),
                ..me.clone()
            },
            // This process in a previous boot.
            Holder {
                boot: Some("00000000-0000-0000-0000-000000000000".into()),
                ..me.clone()
            },
            // Nothing known about the holder.
            Holder {
                pid: None,
                start: None,
                boot: None,
            },
        ];
        let dir = tempfile::tempdir().unwrap();
        let mut l = Ledger::open(&dir.path().join("l.db")).unwrap();
        for (serial, holder) in dead.iter().enumerate() {
            let id = replay_id(Some(b"s"), serial as u64, b"");
            l.reserve_as(holder, &id, 100, None, 100).unwrap();
            let again = l.reserve(&id, 100, None, 100);
            assert!(
                matches!(
                    again,
                    Err(LedgerError::Replayed {
                        accepted: Accepted::Abandoned
                    })
                ),
                "{holder:?}: {again:?}"
            );
        }
    }

    #[test]
    fn a_ledger_without_holder_columns_migrates_and_its_rows_are_not_live() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        let (confirmed, unconfirmed) =
            (replay_id(Some(b"s"), 1, b""), replay_id(Some(b"s"), 2, b""));
        {
            let old = Connection::open(&path).unwrap();
            old.execute_batch(
                "CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
                 CREATE TABLE seen (
                     id BLOB PRIMARY KEY,
                     created_at INTEGER NOT NULL,
                     confirmed INTEGER NOT NULL,
                     owner BLOB NOT NULL,
                     recorded_at INTEGER NOT NULL
                 ) WITHOUT ROWID;
                 CREATE INDEX seen_by_created_at ON seen (created_at);",
            )
            .unwrap();
            for (id, flag) in [(&confirmed, 1), (&unconfirmed, 0)] {
                old.execute(
                    "INSERT INTO seen VALUES (?1, 100, ?2, ?3, 100)",
                    params![id, flag, &[7u8; 16][..]],
                )
                .unwrap();
            }
        }
        let mut l = Ledger::open(&path).unwrap();
        assert_eq!(l.len().unwrap(), 2);
        assert!(matches!(
            l.reserve(&confirmed, 100, None, 100),
            Err(LedgerError::Replayed {
                accepted: Accepted::Confirmed
            })
        ));
        assert!(matches!(
            l.reserve(&unconfirmed, 100, None, 100),
            Err(LedgerError::Replayed {
                accepted: Accepted::Abandoned
            })
        ));
        // New reservations record their holder in the added columns.
        let fresh = replay_id(Some(b"s"), 3, b"");
        let r = l.reserve(&fresh, 100, None, 100).unwrap();
        assert!(matches!(
            l.reserve(&fresh, 100, None, 100),
            Err(LedgerError::Pending { .. })
        ));
        l.confirm(r).unwrap();
        drop(l);
        // Opening again finds the columns and changes nothing.
        let l = Ledger::open(&path).unwrap();
        assert_eq!(l.len().unwrap(), 3);
        assert!(l.integrity_ok().unwrap());
    }

    #[test]
    fn start_time_is_field_22_counted_after_the_command_name() {
        let line =
            "4242 (a) b (c)) S 1 4242 4242 0 -1 4194304 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 200";
        assert_eq!(start_time_of_stat(line), Some(987_654));
        let zombie = line.replace(") S ", ") Z ");
        assert_eq!(start_time_of_stat(&zombie), None);
        assert_eq!(start_time_of_stat("4242 (a) S 1 2"), None);
    }

    #[cfg(unix)]
    #[test]
    fn ledger_files_are_private_in_an_existing_directory() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l.db");
        let mut l = Ledger::open(&path).unwrap();
        let r = l
            .reserve(&replay_id(None, 0, b"h"), 100, None, 100)
            .unwrap();
        for suffix in ["", "-wal", "-shm"] {
            let file = dir.path().join(format!("l.db{suffix}"));
            let mode = std::fs::metadata(&file).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{}", file.display());
        }
        l.confirm(r).unwrap();
    }

    #[test]
    fn pruning_never_moves_the_horizon_past_the_newest_entry() {
        let dir = tempfile::tempdir().unwrap();
        let mut l = Ledger::open(&dir.path().join("l.db")).unwrap();
        let (day, year) = (86_400, 365 * 86_400);
        // An empty ledger has nothing to prune: no horizon.
        let r = l
            .reserve(&replay_id(Some(b"s"), 1, b""), 1000, Some(900), 1000)
            .unwrap();
        l.confirm(r).unwrap();
        assert_eq!(l.horizon().unwrap(), None);
        // The receiver's clock jumps a year ahead, and a file made on a
        // jumped clock too passes a one-day window: the cut-off stops at
        // the newest entry recorded before it.
        let r = l
            .reserve(
                &replay_id(Some(b"s"), 2, b""),
                1000 + year,
                Some(1000 + year - day),
                1000 + year,
            )
            .unwrap();
        l.confirm(r).unwrap();
        assert_eq!(l.horizon().unwrap(), Some(1000));
        // Back to the right time: a fresh file is not locked out.
        let r = l
            .reserve(&replay_id(Some(b"s"), 3, b""), 1020, Some(1020 - day), 1020)
            .unwrap();
        l.confirm(r).unwrap();
        assert_eq!(l.horizon().unwrap(), Some(1000));
        assert_eq!(l.len().unwrap(), 3);
    }

    #[test]
    fn forget_frees_one_entry_and_set_horizon_only_lowers() {
        let dir = tempfile::tempdir().unwrap();
        let mut l = Ledger::open(&dir.path().join("l.db")).unwrap();
        let id = replay_id(Some(b"s"), 7, b"");
        let r = l.reserve(&id, 100, None, 100).unwrap();
        l.confirm(r).unwrap();
        let mut seen = Vec::new();
        l.for_each_entry(|e| {
            seen.push(e);
            Ok::<_, LedgerError>(())
        })
        .unwrap();
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].serial, Some(7));
        assert_eq!(seen[0].state, EntryState::Accepted);
        assert!(l.forget(&id).unwrap());
        assert!(!l.forget(&id).unwrap());
        let r = l.reserve(&id, 100, None, 100).unwrap();
        l.confirm(r).unwrap();
        let r = l
            .reserve(&replay_id(None, 0, b"h"), 200, Some(150), 200)
            .unwrap();
        l.confirm(r).unwrap();
        // Capped at the newest entry before this one.
        assert_eq!(l.horizon().unwrap(), Some(100));
        assert_eq!(l.set_horizon(300).unwrap(), None, "never raised");
        assert_eq!(l.set_horizon(90).unwrap(), Some(100));
        assert_eq!(l.horizon().unwrap(), Some(90));
        assert!(l.check(200, 0).unwrap().is_empty());
        l.conn
            .execute("UPDATE meta SET value = 5000 WHERE key = 'horizon'", [])
            .unwrap();
        assert_eq!(
            l.check(150, 0).unwrap(),
            vec![
                Problem::HorizonInFuture { horizon: 5000 },
                Problem::EntriesInFuture { count: 1 }
            ]
        );
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
