//! Opening the SQLite databases kapsel keeps (replay ledger, serial store):
//! WAL journal, `synchronous=FULL`, a generous busy timeout, and a retry of
//! the set-up itself, because switching a new database to WAL can report
//! "busy" to concurrent openers without consulting the busy handler.

use std::path::Path;
use std::time::{Duration, Instant};

use rusqlite::{Connection, ErrorCode};

/// How long a process waits for another one holding a database lock.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(60);

/// Opens `path` (creating it and its directory) and runs `schema`.
pub fn open_durable(path: &Path, schema: &str) -> rusqlite::Result<Connection> {
    let _ = crate::state_dir::create_parent(path);
    let started = Instant::now();
    let mut pause = Duration::from_millis(2);
    loop {
        match try_open(path, schema) {
            Err(rusqlite::Error::SqliteFailure(e, _))
                if matches!(e.code, ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
                    && started.elapsed() < BUSY_TIMEOUT =>
            {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(200));
            }
            other => return other,
        }
    }
}

fn try_open(path: &Path, schema: &str) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.execute_batch(schema)?;
    Ok(conn)
}
