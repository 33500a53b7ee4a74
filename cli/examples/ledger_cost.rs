//! Measures the replay ledger: the cost of one accepted decrypt (reserve +
//! confirm, two durable transactions, the work `decrypt --replay-db` adds),
//! and the ledger's size after 100,000 messages.
//!
//! Run: `cargo run --release -p kapsel-cli --example ledger_cost -- [DIR] [COUNT]`
//! (DIR defaults to a temporary directory; use a tmpfs for the size run and a
//! real disk for the per-decrypt cost, which is dominated by fsync).

use std::time::Instant;

use kapsel_cli::ledger::Ledger;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = match args.next() {
        Some(d) => std::path::PathBuf::from(d),
        None => std::env::temp_dir(),
    };
    let count: u64 = args
        .next()
        .map(|c| c.parse())
        .transpose()?
        .unwrap_or(100_000);
    let path = dir.join(format!("kapsel-ledger-cost-{}.db", std::process::id()));
    let mut ledger = Ledger::open(&path)?;
    let sender = [4u8; 65];
    let start = Instant::now();
    let mut samples = Vec::with_capacity(count as usize);
    for serial in 0..count {
        let t = Instant::now();
        let r = ledger.reserve(
            // A signed file's identifier (0x01, the key's hash, the serial).
            &[&[1u8][..], &sender[..32], &serial.to_be_bytes()].concat(),
            1_800_000_000,
            None,
            1_800_000_000,
        )?;
        ledger.confirm(r)?;
        samples.push(t.elapsed().as_micros() as u64);
    }
    let total = start.elapsed();
    samples.sort_unstable();
    drop(ledger);
    // Fold the write-ahead log into the database before measuring it.
    let conn = rusqlite::Connection::open(&path)?;
    conn.pragma_update(None, "wal_checkpoint", "TRUNCATE")?;
    drop(conn);
    let size = std::fs::metadata(&path)?.len();
    let wal = std::fs::metadata(path.with_extension("db-wal"))
        .map(|m| m.len())
        .unwrap_or(0);
    println!("ledger {}: {count} accepted messages", path.display());
    println!(
        "per decrypt (reserve + confirm): median {} us, p99 {} us, mean {:.0} us",
        samples[samples.len() / 2],
        samples[samples.len() * 99 / 100],
        total.as_micros() as f64 / count as f64
    );
    println!(
        "size: {} bytes ({:.1} MiB), {:.0} bytes per message; WAL after checkpoint {} bytes",
        size,
        size as f64 / 1048576.0,
        size as f64 / count as f64,
        wal
    );
    let _ = std::fs::remove_file(&path);
    let _ = std::fs::remove_file(path.with_extension("db-wal"));
    let _ = std::fs::remove_file(path.with_extension("db-shm"));
    Ok(())
}
