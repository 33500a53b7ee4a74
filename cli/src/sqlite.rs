//! Opening the SQLite databases kapsel keeps (replay ledger, serial store):
//! WAL journal, `synchronous=FULL`, a generous busy timeout, and a retry of
//! the set-up itself, because switching a new database to WAL can report
//! "busy" to concurrent openers without consulting the busy handler.
//!
//! On Unix the database and its `-wal` and `-shm` files are private to their
//! owner (mode 0600), whether or not their directory already existed: they
//! record which messages were received and which serials were issued.

use std::path::Path;
use std::time::{Duration, Instant};

use rusqlite::{Connection, ErrorCode};

/// How long a process waits for another one holding a database lock.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(60);

/// Opens `path` (creating it and its directory) and runs `schema`.
pub fn open_durable(path: &Path, schema: &str) -> rusqlite::Result<Connection> {
    let _ = crate::state_dir::create_parent(path);
    // SQLite gives the -wal and -shm files it creates the database file's
    // mode, so the database is made private before SQLite opens it, and
    // all three once more after, for files left by an earlier version.
    make_private(path);
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
            other => {
                make_private(path);
                return other;
            }
        }
    }
}

/// Creates the database file `path` with mode 0600 if it is missing, and
/// takes group and other permissions away from it and its `-wal` and
/// `-shm` files. Best effort, like creating the directory: a file this user
/// may not change (owned by another) is left as it is, and SQLite reports
/// whatever stops it from opening the database.
///
/// An existing file is only examined and changed by path (`stat`, `chmod`),
/// never opened: closing any descriptor of a file drops all of this
/// process's POSIX locks on it, including those of an open SQLite
/// connection, and another process could then take the database for
/// unused and delete its live WAL.
#[cfg(unix)]
fn make_private(path: &Path) {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    // `create_new` fails on an existing file without opening it.
    let _ = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path);
    for suffix in ["", "-wal", "-shm"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        let file = Path::new(&name);
        if let Ok(meta) = std::fs::metadata(file) {
            let mode = meta.permissions().mode();
            if meta.is_file() && mode & 0o077 != 0 {
                let _ =
                    std::fs::set_permissions(file, std::fs::Permissions::from_mode(mode & 0o700));
            }
        }
    }
}

#[cfg(not(unix))]
fn make_private(_path: &Path) {}

/// The files of the database at `path` (itself, `-wal`, `-shm`) that group
/// or others may access, with their permission bits: what opening it will
/// make private, for the caller to report.
pub fn exposed_files(path: &Path) -> Vec<(std::path::PathBuf, u32)> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        ["", "-wal", "-shm"]
            .iter()
            .filter_map(|suffix| {
                let mut name = path.as_os_str().to_owned();
                name.push(suffix);
                let file = std::path::PathBuf::from(name);
                let meta = std::fs::metadata(&file).ok()?;
                let mode = meta.permissions().mode() & 0o777;
                (meta.is_file() && mode & 0o077 != 0).then_some((file, mode))
            })
            .collect()
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        Vec::new()
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

#[cfg(test)]
#[cfg(unix)]
mod tests {
    use std::fs;
    use std::os::unix::fs::PermissionsExt;
    use std::path::Path;

    use super::open_durable;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn world_readable_database_files_become_private_when_opened() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let files = ["s.db", "s.db-wal", "s.db-shm"].map(|f| dir.path().join(f));
        // An earlier version's store, still open elsewhere so that its -wal
        // and -shm files exist, all readable by everyone.
        let earlier = rusqlite::Connection::open(&path).unwrap();
        earlier
            .execute_batch(
                "PRAGMA journal_mode = WAL; CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (1);",
            )
            .unwrap();
        for f in &files {
            fs::set_permissions(f, fs::Permissions::from_mode(0o644)).unwrap();
        }
        let conn = open_durable(&path, "CREATE TABLE IF NOT EXISTS t (x INTEGER);").unwrap();
        for f in &files {
            assert_eq!(mode(f), 0o600, "{}", f.display());
        }
        drop((earlier, conn));
    }

    #[test]
    fn a_new_database_in_an_existing_directory_is_private() {
        let dir = tempfile::tempdir().unwrap();
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let path = dir.path().join("n.db");
        let conn = open_durable(&path, "CREATE TABLE IF NOT EXISTS t (x INTEGER);").unwrap();
        conn.execute("INSERT INTO t VALUES (1)", []).unwrap();
        for f in ["n.db", "n.db-wal", "n.db-shm"] {
            assert_eq!(mode(&dir.path().join(f)), 0o600, "{f}");
        }
    }
}
