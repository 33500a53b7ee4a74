//! The sender's serial store (SPEC.md section 3.4): an SQLite table of the
//! next serial number per sender key. Each issue is one immediate
//! transaction, so concurrent `kapsel encrypt` processes never get the same
//! serial, and a crash never rolls a committed serial back.
//!
//! A serial is `max(next, now in microseconds)`, and `next` becomes serial + 1:
//! serials increase strictly per key, and stay ahead of earlier ones even if
//! the store is lost, as long as the clock does not go backwards.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use kapsel_codec::backend::sha256;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

/// An open serial store.
#[derive(Debug)]
pub struct SerialStore {
    conn: Connection,
}

impl SerialStore {
    /// Opens (creating if needed) the store at `path`.
    pub fn open(path: &Path) -> rusqlite::Result<Self> {
        let conn = crate::sqlite::open_durable(
            path,
            "CREATE TABLE IF NOT EXISTS next_serial (sender BLOB PRIMARY KEY, next INTEGER NOT NULL) WITHOUT ROWID;",
        )?;
        Ok(SerialStore { conn })
    }

    /// Issues the next serial for the sender with public point `sender_point`.
    pub fn issue(&mut self, sender_point: &[u8]) -> rusqlite::Result<u64> {
        let key = sha256(sender_point).to_vec();
        let now_micros = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_micros() as i64)
            .unwrap_or(0);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let next: i64 = tx
            .query_row(
                "SELECT next FROM next_serial WHERE sender = ?1",
                params![key],
                |r| r.get(0),
            )
            .optional()?
            .unwrap_or(0);
        // SQLite integers are signed: serials stay below 2^63.
        let serial = next.max(now_micros);
        let following = serial
            .checked_add(1)
            .ok_or(rusqlite::Error::IntegralValueOutOfRange(0, serial))?;
        tx.execute(
            "INSERT INTO next_serial (sender, next) VALUES (?1, ?2) ON CONFLICT (sender) DO UPDATE SET next = excluded.next",
            params![key, following],
        )?;
        tx.commit()?;
        Ok(serial as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::SerialStore;

    #[test]
    fn serials_increase_strictly_per_sender() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = SerialStore::open(&dir.path().join("s.db")).unwrap();
        let a: Vec<u64> = (0..100).map(|_| s.issue(b"alice").unwrap()).collect();
        assert!(a.windows(2).all(|w| w[0] < w[1]));
        let b = s.issue(b"bob").unwrap();
        assert!(b > 0);
    }

    #[cfg(unix)]
    #[test]
    fn store_files_are_private_in_an_existing_directory() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let mut s = SerialStore::open(&dir.path().join("s.db")).unwrap();
        s.issue(b"alice").unwrap();
        for f in ["s.db", "s.db-wal", "s.db-shm"] {
            let mode = std::fs::metadata(dir.path().join(f))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{f}");
        }
    }
}
