//! A progress line on stderr for long work: bytes, percentage when the total
//! is known, and throughput. Drawn only when stderr is a terminal and
//! `--quiet` was not given, first after one second of work, then at most
//! five times a second; erased when the work ends.

use std::io::{self, IsTerminal, Read, Write};
use std::time::{Duration, Instant};

/// Wait before the first draw; `KAPSEL_PROGRESS_DELAY_MS` overrides it (tests).
fn first_draw_delay() -> Duration {
    std::env::var("KAPSEL_PROGRESS_DELAY_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map_or(Duration::from_secs(1), Duration::from_millis)
}

const REDRAW_EVERY: Duration = Duration::from_millis(200);

/// Counts bytes read through it and draws progress.
pub struct ProgressReader<R> {
    inner: R,
    label: &'static str,
    total: Option<u64>,
    done: u64,
    start: Instant,
    next_draw: Option<Instant>,
    drawn: bool,
}

impl<R: Read> ProgressReader<R> {
    /// `enabled` is false for `--quiet`; a non-terminal stderr disables it too.
    pub fn new(inner: R, label: &'static str, total: Option<u64>, enabled: bool) -> Self {
        let start = Instant::now();
        let next_draw = (enabled && io::stderr().is_terminal()).then(|| start + first_draw_delay());
        ProgressReader {
            inner,
            label,
            total,
            done: 0,
            start,
            next_draw,
            drawn: false,
        }
    }

    fn draw(&mut self, now: Instant) {
        let secs = now.duration_since(self.start).as_secs_f64().max(1e-3);
        let rate = self.done as f64 / secs;
        let mut line = format!("kapsel: {} {}", self.label, bytes(self.done as f64));
        if let Some(total) = self.total.filter(|t| *t > 0) {
            let pct = (self.done as f64 * 100.0 / total as f64).min(100.0);
            line += &format!(" / {} ({pct:.0}%)", bytes(total as f64));
        }
        line += &format!(", {}/s", bytes(rate));
        let mut err = io::stderr().lock();
        let _ = write!(err, "\r{line}\x1b[K");
        let _ = err.flush();
        self.drawn = true;
    }
}

impl<R> Drop for ProgressReader<R> {
    fn drop(&mut self) {
        if self.drawn {
            let mut err = io::stderr().lock();
            let _ = write!(err, "\r\x1b[K");
            let _ = err.flush();
        }
    }
}

impl<R: Read> ProgressReader<R> {
    fn count(&mut self, n: usize) {
        self.done += n as u64;
        if let Some(at) = self.next_draw {
            let now = Instant::now();
            if now >= at {
                self.draw(now);
                self.next_draw = Some(now + REDRAW_EVERY);
            }
        }
    }
}

impl<R: Read> Read for ProgressReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count(n);
        Ok(n)
    }

    /// Passed through: the parallel encryptor reads each batch straight into
    /// its chunk slots with one vectored read (see `kapsel_codec::parallel`).
    fn read_vectored(&mut self, bufs: &mut [io::IoSliceMut<'_>]) -> io::Result<usize> {
        let n = self.inner.read_vectored(bufs)?;
        self.count(n);
        Ok(n)
    }
}

/// `1.5 MiB`-style sizes.
fn bytes(n: f64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{v:.0} {}", UNITS[unit])
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}
