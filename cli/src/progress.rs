//! A progress line on stderr for long work: bytes, percentage when the total
//! is known, and throughput. Drawn only when stderr is a terminal and
//! `--quiet` was not given, first after one second of work, then at most
//! five times a second; erased when the work ends, and before any other
//! message on stderr (see `output::stderr`). The line never reaches the
//! terminal's last column, so it cannot wrap and leave trails on a narrow
//! terminal: it drops the throughput, then the total, then is cut.

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
        let base = format!("kapsel: {} {}", self.label, bytes(self.done as f64));
        let total = self.total.filter(|t| *t > 0).map(|total| {
            let pct = (self.done as f64 * 100.0 / total as f64).min(100.0);
            (
                format!(" / {} ({pct:.0}%)", bytes(total as f64)),
                format!(" ({pct:.0}%)"),
            )
        });
        let rate = format!(", {}/s", bytes(rate));
        let (long_total, short_total) = total.unwrap_or_default();
        let candidates = [
            format!("{base}{long_total}{rate}"),
            format!("{base}{long_total}"),
            format!("{base}{short_total}"),
            base,
        ];
        let Some(line) = fit(&candidates, terminal_width()) else {
            return;
        };
        let mut err = io::stderr().lock();
        let _ = write!(err, "\r{line}\x1b[K");
        let _ = err.flush();
        self.drawn = true;
        crate::output::PROGRESS_SHOWN.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// The first candidate shorter than `width` columns (one column stays free,
/// so the cursor never wraps), else the last one cut to fit; `None` when
/// the terminal is too narrow for anything useful.
fn fit(candidates: &[String], width: usize) -> Option<String> {
    let room = width.checked_sub(1).filter(|r| *r >= 8)?;
    candidates
        .iter()
        .find(|c| c.chars().count() <= room)
        .cloned()
        .or_else(|| candidates.last().map(|c| c.chars().take(room).collect()))
}

/// Columns of the terminal on stderr: the kernel's window size, else
/// `$COLUMNS`, else 80.
fn terminal_width() -> usize {
    #[cfg(unix)]
    if let Ok(size) = rustix::termios::tcgetwinsize(io::stderr()) {
        if size.ws_col > 0 {
            return usize::from(size.ws_col);
        }
    }
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.parse().ok())
        .filter(|c| *c > 0)
        .unwrap_or(80)
}

impl<R> Drop for ProgressReader<R> {
    fn drop(&mut self) {
        if self.drawn {
            crate::output::erase_progress();
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

#[cfg(test)]
mod tests {
    use super::fit;

    #[test]
    fn progress_lines_fit_the_terminal_and_drop_detail_first() {
        let c = [
            "kapsel: encrypting 1.0 MiB / 2.0 MiB (50%), 3.0 MiB/s".to_string(),
            "kapsel: encrypting 1.0 MiB / 2.0 MiB (50%)".to_string(),
            "kapsel: encrypting 1.0 MiB (50%)".to_string(),
            "kapsel: encrypting 1.0 MiB".to_string(),
        ];
        assert_eq!(fit(&c, 200).as_deref(), Some(c[0].as_str()));
        assert_eq!(fit(&c, 50).as_deref(), Some(c[1].as_str()));
        assert_eq!(fit(&c, 34).as_deref(), Some(c[2].as_str()));
        assert_eq!(fit(&c, 20).unwrap().chars().count(), 19);
        assert_eq!(fit(&c, 5), None);
    }
}
