//! The listener's limits against hostile peers: deadlines and a minimum
//! rate on every connection's reads ([`Pace`], [`Paced`]), and the
//! connection slots ([`Slots`]).
//!
//! Invariants:
//! - A connection's read never waits past the earliest of: `--timeout`
//!   without a byte (the idle timeout), the header deadline (from accept
//!   until its message's header authenticated), the rate deadline (from
//!   accept, a grace of the longer of `--timeout` and `--header-timeout`,
//!   plus one second per `--min-rate` bytes
//!   received), and the drain deadline after a refusal.
//! - At most `--max-connections` connections are open. One more is accepted
//!   and closed at once, unless a connection that has not yet proved itself
//!   (its header authenticated) has been open for [`EVICT_AFTER`]: then that
//!   one is closed and the new one takes its slot.

use std::fmt;
use std::io::{self, Read};
use std::net::{Shutdown, TcpStream};
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// An unproven connection older than this gives its slot to a new one when
/// all slots are taken. Long against a genuine sender's first round trip
/// and header, short against the header deadline.
pub const EVICT_AFTER: Duration = Duration::from_secs(2);

/// Which limit a connection ran into.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limit {
    /// No byte for `--timeout`.
    Idle(Duration),
    /// The header did not authenticate within `--header-timeout`.
    Header(Duration),
    /// Fewer bytes than `--min-rate` asks for.
    Rate(u64),
    /// The time to read the rest of a refused message is up.
    Drain,
}

/// A deadline error inside an `io::Error` (kind `TimedOut`).
#[derive(Clone, Copy, Debug)]
pub struct Deadline(pub Limit);

impl fmt::Display for Deadline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Limit::Idle(d) => write!(f, "no progress for {} s (--timeout)", d.as_secs()),
            Limit::Header(d) => write!(
                f,
                "no authenticated header within {} s of connecting (--header-timeout)",
                d.as_secs()
            ),
            Limit::Rate(r) => write!(
                f,
                "the peer sent less than {r} bytes per second on average (--min-rate)"
            ),
            Limit::Drain => f.write_str("the refused message was not read to its end"),
        }
    }
}

impl std::error::Error for Deadline {}

/// The [`Limit`] inside `e`, if a deadline ended the read.
pub fn limit_of(e: &io::Error) -> Option<Limit> {
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<Deadline>())
        .map(|d| d.0)
}

/// The clock of one connection, shared by its reader and the code that
/// moves it from phase to phase.
#[derive(Debug)]
pub struct Pace {
    start: Instant,
    idle: Option<Duration>,
    header: Option<Duration>,
    min_rate: u64,
    received: AtomicU64,
    /// The header deadline until the header authenticated, then none; the
    /// drain deadline after a refusal.
    deadline: Mutex<Option<(Instant, Limit)>>,
}

impl Pace {
    /// A connection accepted now. `idle` and `header` of zero, and a
    /// `min_rate` of zero, mean no such limit.
    pub fn new(idle: Duration, header: Duration, min_rate: u64) -> Arc<Self> {
        let start = Instant::now();
        let header = (!header.is_zero()).then_some(header);
        Arc::new(Pace {
            start,
            idle: (!idle.is_zero()).then_some(idle),
            header,
            min_rate,
            received: AtomicU64::new(0),
            deadline: Mutex::new(header.map(|h| (start + h, Limit::Header(h)))),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Option<(Instant, Limit)>> {
        self.deadline.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The header authenticated: its deadline no longer applies.
    pub fn header_done(&self) {
        let mut d = self.lock();
        if matches!(*d, Some((_, Limit::Header(_)))) {
            *d = None;
        }
    }

    /// A refusal was sent: reads end at `now + for_at_most` at the latest.
    pub fn drain_for(&self, for_at_most: Duration) {
        let by = Instant::now() + for_at_most;
        let mut d = self.lock();
        if d.is_none_or(|(at, _)| by < at) {
            *d = Some((by, Limit::Drain));
        }
    }

    /// How long the next read may wait, and the limit that ends it; an
    /// error if a deadline has passed.
    fn next_wait(&self) -> io::Result<Option<(Duration, Limit)>> {
        let now = Instant::now();
        let mut wait: Option<(Duration, Limit)> = self.idle.map(|d| (d, Limit::Idle(d)));
        let mut consider = |at: Instant, limit: Limit| -> io::Result<()> {
            let left = at.checked_duration_since(now).unwrap_or_default();
            if left.is_zero() {
                return Err(io::Error::new(io::ErrorKind::TimedOut, Deadline(limit)));
            }
            if wait.is_none_or(|(w, _)| left < w) {
                wait = Some((left, limit));
            }
            Ok(())
        };
        if let Some((at, limit)) = *self.lock() {
            consider(at, limit)?;
        }
        if self.min_rate > 0 {
            let earned = self.received.load(Ordering::Relaxed) as f64 / self.min_rate as f64;
            // A sender may be as slow to start as the idle timeout allows.
            let grace = self
                .header
                .unwrap_or(Duration::ZERO)
                .max(self.idle.unwrap_or(Duration::ZERO));
            let at = self.start + grace + Duration::from_secs_f64(earned.min(1e9));
            consider(at, Limit::Rate(self.min_rate))?;
        }
        Ok(wait)
    }
}

/// A connection's input (a TCP socket, or standard input under `--stdio`)
/// whose reads keep to a [`Pace`]: each read first waits with `poll(2)`
/// for at most the time the earliest limit leaves. The input must be
/// unbuffered (a socket or a `File`), so that `poll` sees every byte still
/// to be read.
#[derive(Debug)]
pub struct Paced<R> {
    inner: R,
    pace: Arc<Pace>,
}

impl<R> Paced<R> {
    pub fn new(inner: R, pace: Arc<Pace>) -> Self {
        Paced { inner, pace }
    }
}

impl<R: Read + AsFd> Read for Paced<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        use rustix::event::{poll, PollFd, PollFlags, Timespec};
        if let Some((wait, limit)) = self.pace.next_wait()? {
            let timeout = Timespec {
                tv_sec: wait.as_secs() as _,
                tv_nsec: wait.subsec_nanos() as _,
            };
            loop {
                let mut fds = [PollFd::new(&self.inner, PollFlags::IN)];
                match poll(&mut fds, Some(&timeout)) {
                    Ok(0) => return Err(io::Error::new(io::ErrorKind::TimedOut, Deadline(limit))),
                    Ok(_) => break,
                    Err(rustix::io::Errno::INTR) => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        let n = self.inner.read(buf)?;
        self.pace.received.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// The listener's connection slots.
#[derive(Debug)]
pub struct Slots {
    limit: usize,
    open: Mutex<(u64, Vec<Slot>)>,
}

#[derive(Debug)]
struct Slot {
    id: u64,
    since: Instant,
    proven: bool,
    /// A handle to close it when it is evicted.
    stream: TcpStream,
}

/// What [`Slots::admit`] did.
#[derive(Debug)]
pub enum Admitted {
    /// A free slot.
    Free(u64),
    /// The slot of an unproven connection from this peer, now closed.
    Evicted(u64, String),
}

impl Slots {
    pub fn new(limit: usize) -> Self {
        Slots {
            limit: limit.max(1),
            open: Mutex::new((0, Vec::new())),
        }
    }

    fn lock(&self) -> MutexGuard<'_, (u64, Vec<Slot>)> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A slot for `stream`, or `None` when every slot is held by a proven
    /// connection or by one younger than [`EVICT_AFTER`]: then the caller
    /// closes `stream` at once.
    pub fn admit(&self, stream: &TcpStream) -> Option<Admitted> {
        let handle = stream.try_clone().ok()?;
        let mut open = self.lock();
        open.0 += 1;
        let id = open.0;
        let mut evicted = None;
        if open.1.len() >= self.limit {
            let oldest = open
                .1
                .iter()
                .enumerate()
                .filter(|(_, s)| !s.proven && s.since.elapsed() >= EVICT_AFTER)
                .min_by_key(|(_, s)| s.since)
                .map(|(i, _)| i)?;
            let gone = open.1.swap_remove(oldest);
            let _ = gone.stream.shutdown(Shutdown::Both);
            evicted = Some(
                gone.stream
                    .peer_addr()
                    .map_or_else(|_| "peer".into(), |a| a.to_string()),
            );
        }
        open.1.push(Slot {
            id,
            since: Instant::now(),
            proven: false,
            stream: handle,
        });
        Some(match evicted {
            Some(peer) => Admitted::Evicted(id, peer),
            None => Admitted::Free(id),
        })
    }

    /// The connection in slot `id` proved itself: it is never evicted.
    pub fn prove(&self, id: u64) {
        if let Some(s) = self.lock().1.iter_mut().find(|s| s.id == id) {
            s.proven = true;
        }
    }

    /// The connection in slot `id` ended (or was evicted before).
    pub fn release(&self, id: u64) {
        self.lock().1.retain(|s| s.id != id);
    }

    pub fn limit(&self) -> usize {
        self.limit
    }
}

/// Parses a rate: bytes per second, with an optional `K`/`KiB` (1024) or
/// `M`/`MiB` (1048576) and an optional `/s`; `0` for none.
pub fn parse_rate(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let t = t.strip_suffix("/s").unwrap_or(t);
    let (digits, unit) = t.split_at(t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len()));
    let scale: u64 = match unit {
        "" | "B" => 1,
        "K" | "k" | "KiB" => 1 << 10,
        "M" | "MiB" => 1 << 20,
        _ => {
            return Err(format!(
                "invalid rate {s:?}: give bytes per second, e.g. 512, 4KiB or 1MiB"
            ))
        }
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(scale))
        .ok_or_else(|| format!("invalid rate {s:?}: give bytes per second, e.g. 512, 4KiB or 1MiB"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_with_binary_units() {
        assert_eq!(parse_rate("0"), Ok(0));
        assert_eq!(parse_rate("512"), Ok(512));
        assert_eq!(parse_rate("4KiB"), Ok(4096));
        assert_eq!(parse_rate("1M/s"), Ok(1 << 20));
        for bad in ["", "x", "1G", "-1", "1.5K"] {
            assert!(parse_rate(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_earliest_deadline_bounds_a_read() {
        let pace = Pace::new(Duration::from_secs(60), Duration::from_secs(10), 0);
        let (w, limit) = pace.next_wait().unwrap().unwrap();
        assert!(w <= Duration::from_secs(10));
        assert_eq!(limit, Limit::Header(Duration::from_secs(10)));
        pace.header_done();
        assert_eq!(
            pace.next_wait().unwrap().unwrap().1,
            Limit::Idle(Duration::from_secs(60))
        );
        pace.drain_for(Duration::from_secs(2));
        assert_eq!(pace.next_wait().unwrap().unwrap().1, Limit::Drain);
        let none = Pace::new(Duration::ZERO, Duration::ZERO, 0);
        assert!(none.next_wait().unwrap().is_none());
        let slow = Pace::new(Duration::ZERO, Duration::from_millis(1), 1 << 20);
        std::thread::sleep(Duration::from_millis(5));
        let e = slow.next_wait().unwrap_err();
        assert!(limit_of(&e).is_some());
    }
}
