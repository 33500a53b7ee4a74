//! `kapsel ledger`: look at and mend a replay ledger (SPEC.md section 12.3).
//!
//! - `list`: every entry (identifier, state, sender, serial, creation and
//!   recording time) and the horizon; `--json` for scripts, with 64-bit
//!   numbers as decimal strings.
//! - `check`: SQLite's integrity check, the schema, file modes, abandoned
//!   reservations and times in the future; exit 1 when something is wrong.
//! - `forget ID`: deletes one entry; that message can be accepted once more.
//! - `repair`: lowers a horizon that lies in the future.
//!
//! None of them creates a ledger: a missing file is an error.

use std::path::{Path, PathBuf};

use kapsel_cli::ledger::{Entry, EntryState, Ledger, LedgerError, Problem};
use serde_json::json;

use crate::commands::now;
use crate::error::CliError;
use crate::time::iso8601_utc;

/// What `kapsel ledger` was asked to do.
#[derive(Debug)]
pub enum Action {
    List { json: bool },
    Check { json: bool, max_skew: u64 },
    Forget { id: String },
    Repair { max_age: u64, max_skew: u64 },
}

impl From<LedgerError> for CliError {
    fn from(e: LedgerError) -> Self {
        CliError::other(e.to_string())
    }
}

/// Warns about, and (through opening) fixes, database files that group or
/// others may read: they tell which messages this receiver got, or which
/// serials a sender used. Called before opening the ledger or serial store.
pub fn warn_exposed(path: &Path, what: &str) {
    for (file, mode) in kapsel_cli::sqlite::exposed_files(path) {
        errln!(
            "kapsel: warning: {what} {} was accessible by other users (mode {mode:03o}); making it private (0600)",
            file.display()
        );
    }
}

fn ledger_path(flag: Option<PathBuf>) -> Result<PathBuf, CliError> {
    match crate::policy::replay_db_path(flag)? {
        Some(p) => Ok(p),
        None => kapsel_cli::state_dir::default_state_dir()
            .map(|d| d.join("replay.db"))
            .ok_or_else(|| {
                CliError::usage("cannot find a state directory for the default replay ledger")
                    .with_hint("pass --replay-db PATH, or set KAPSEL_STATE_DIR or HOME")
            }),
    }
}

fn secs(t: i64) -> String {
    u64::try_from(t).map_or_else(|_| t.to_string(), iso8601_utc)
}

fn state_name(state: EntryState) -> &'static str {
    match state {
        EntryState::Accepted => "accepted",
        EntryState::Abandoned => "abandoned",
        EntryState::Pending { .. } => "pending",
    }
}

fn entry_json(e: &Entry) -> serde_json::Value {
    json!({
        "id": hex::encode(&e.id),
        "state": state_name(e.state),
        "pid": match e.state { EntryState::Pending { pid } => Some(pid), _ => None },
        "signed": e.sender_key_sha256.is_some(),
        "sender_key_sha256": e.sender_key_sha256.map(hex::encode),
        "serial": e.serial.map(|s| s.to_string()),
        "created_at": e.created_at.to_string(),
        "created_at_utc": secs(e.created_at),
        "recorded_at": e.recorded_at.to_string(),
        "recorded_at_utc": secs(e.recorded_at),
    })
}

fn entry_line(e: &Entry) -> String {
    let state = match e.state {
        EntryState::Pending { pid } => format!("pending (pid {pid})"),
        other => state_name(other).to_string(),
    };
    let who = match (e.sender_key_sha256, e.serial) {
        (Some(key), Some(serial)) => {
            format!(
                "sender key sha256:{} serial {serial}",
                &hex::encode(key)[..16]
            )
        }
        _ => "anonymous (header sha256)".to_string(),
    };
    format!(
        "{}  {state}  created {}  recorded {}  {who}",
        hex::encode(&e.id),
        secs(e.created_at),
        secs(e.recorded_at)
    )
}

pub fn run(replay_db: Option<PathBuf>, action: Action) -> Result<(), CliError> {
    let path = ledger_path(replay_db)?;
    let name = path.display().to_string();
    if !path.is_file() {
        return Err(CliError::other(format!("no replay ledger at {name}"))
            .with_hint("decrypt --replay-db PATH creates one; pass the same PATH here"));
    }
    let exposed = kapsel_cli::sqlite::exposed_files(&path);
    warn_exposed(&path, "replay ledger");
    let mut ledger = Ledger::open_existing(&path)
        .map_err(|e| CliError::other(format!("replay ledger {name}: {e}")))?;
    let now = i64::try_from(now()).unwrap_or(i64::MAX);
    match action {
        Action::List { json: true } => {
            let mut entries = Vec::new();
            ledger.for_each_entry(|e| {
                entries.push(entry_json(&e));
                Ok::<_, CliError>(())
            })?;
            let horizon = ledger.horizon()?;
            let value = json!({
                "ledger": name,
                "horizon": horizon.map(|h| h.to_string()),
                "horizon_utc": horizon.map(secs),
                "entries": entries,
            });
            out!("{value:#}\n")
        }
        Action::List { json: false } => {
            outln!("ledger:  {name}")?;
            match ledger.horizon()? {
                Some(h) => outln!(
                    "horizon: {} ({h}): files created before it are refused",
                    secs(h)
                )?,
                None => outln!("horizon: none (never pruned)")?,
            }
            let mut count = 0u64;
            ledger.for_each_entry(|e| {
                count += 1;
                outln!("{}", entry_line(&e))
            })?;
            outln!("{count} entr{}", if count == 1 { "y" } else { "ies" })
        }
        Action::Check { json, max_skew } => {
            let skew = i64::try_from(max_skew).unwrap_or(i64::MAX);
            let mut problems: Vec<String> = ledger
                .check(now, skew)?
                .iter()
                .map(Problem::to_string)
                .collect();
            let mut notes = Vec::new();
            for (file, mode) in &exposed {
                notes.push(format!(
                    "{} was accessible by other users (mode {mode:03o}); made private (0600)",
                    file.display()
                ));
            }
            let mut abandoned = 0u64;
            ledger.for_each_entry(|e| {
                if e.state == EntryState::Abandoned {
                    abandoned += 1;
                }
                Ok::<_, CliError>(())
            })?;
            if abandoned > 0 {
                notes.push(format!(
                    "{abandoned} reservation(s) abandoned by a process that is gone; they count as accepted"
                ));
            }
            if ledger
                .horizon()?
                .is_some_and(|h| h > now.saturating_add(skew))
            {
                problems.push("repair it with kapsel ledger repair --max-age DURATION".into());
            }
            if json {
                out!(
                    "{:#}\n",
                    json!({ "ledger": name, "ok": problems.is_empty(), "problems": problems, "notes": notes })
                )?;
            } else {
                for n in &notes {
                    outln!("note: {n}")?;
                }
                for p in &problems {
                    outln!("problem: {p}")?;
                }
                if problems.is_empty() {
                    outln!("ok: {name}")?;
                }
            }
            if problems.is_empty() {
                Ok(())
            } else {
                Err(
                    CliError::other(format!("replay ledger {name} has problems"))
                        .with_hint("see the problem lines above"),
                )
            }
        }
        Action::Forget { id } => {
            let bytes = hex::decode(id.trim()).map_err(|_| {
                CliError::usage(format!("{id:?} is not a ledger entry identifier"))
                    .with_hint("copy the hexadecimal identifier from kapsel ledger list")
            })?;
            if !ledger.forget(&bytes)? {
                return Err(CliError::other(format!("no entry {id} in {name}"))
                    .with_hint("kapsel ledger list shows the entries"));
            }
            errln!("kapsel: forgot {id}: that message can be accepted once more");
            Ok(())
        }
        Action::Repair { max_age, max_skew } => {
            let limit = now.saturating_add(i64::try_from(max_skew).unwrap_or(i64::MAX));
            match ledger.horizon()? {
                Some(h) if h > limit => {
                    let to = now
                        .saturating_sub(i64::try_from(max_age).unwrap_or(i64::MAX))
                        .saturating_sub(i64::try_from(max_skew).unwrap_or(i64::MAX));
                    ledger.set_horizon(to)?;
                    errln!(
                        "kapsel: horizon lowered from {} to {}; files created in between that were pruned can be accepted once more",
                        secs(h),
                        secs(to)
                    );
                    Ok(())
                }
                _ => {
                    errln!("kapsel: the horizon is not in the future; nothing to repair");
                    Ok(())
                }
            }
        }
    }
}
