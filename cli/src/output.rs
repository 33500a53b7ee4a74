//! Standard output and standard error for every command. Nothing in the
//! binary calls `print!`, `println!`, `eprint!` or `eprintln!` (they panic
//! when the write fails; `main.rs` denies them): text for standard output
//! goes through [`stdout`] (the `outln!` and `out!` macros), which
//! returns the failure as a [`CliError`], and diagnostics through
//! [`stderr`] (`errln!`), which drops a failed write, as there is nowhere
//! left to report it.
//!
//! A closed standard output (`EPIPE`, the reader of a pipe went away, as in
//! `kapsel pubkey k | head -1`) ends the command quietly with exit code 1,
//! as `cat` does when SIGPIPE is ignored; any other failure, such as `ENOSPC`
//! on `> /dev/full`, is an error with a message. The large writes of
//! `encrypt` and `decrypt` go through their own buffered writers and end the
//! same way, through [`CliError::io`].

use std::fmt;
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::CliError;

/// Whether a progress line (`progress.rs`) is on the terminal now.
pub static PROGRESS_SHOWN: AtomicBool = AtomicBool::new(false);

/// Erases the progress line, if one is shown, so that no message starts
/// after it or is overwritten by it.
pub fn erase_progress() {
    if PROGRESS_SHOWN.swap(false, Ordering::Relaxed) {
        let mut err = io::stderr().lock();
        let _ = err.write_all(b"\r\x1b[K").and_then(|()| err.flush());
    }
}

/// Writes `args` to standard output and flushes it.
pub fn stdout(args: fmt::Arguments<'_>) -> Result<(), CliError> {
    erase_progress();
    let mut out = io::stdout().lock();
    out.write_fmt(args)
        .and_then(|()| out.flush())
        .map_err(|e| CliError::output_io("cannot write to standard output", e))
}

/// Writes `args` to standard error; a failure is ignored.
pub fn stderr(args: fmt::Arguments<'_>) {
    erase_progress();
    let mut err = io::stderr().lock();
    let _ = err.write_fmt(args).and_then(|()| err.flush());
}

/// `print!` that returns `Result<(), CliError>` instead of panicking.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::output::stdout(format_args!($($arg)*))
    };
}

/// `println!` that returns `Result<(), CliError>` instead of panicking.
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::output::stdout(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// `eprintln!` that never panics.
macro_rules! errln {
    ($($arg:tt)*) => {
        $crate::output::stderr(format_args!("{}\n", format_args!($($arg)*)))
    };
}
