//! Asking the person at the terminal for a secret: the prompt goes to the
//! controlling terminal (`/dev/tty`), never to standard output, and the
//! answer is read from it with echo off, so a secret never lands in a pipe,
//! a file or the scrollback.
//!
//! Invariants: echo is restored before [`read_secret`] returns, whatever
//! happened; the answer lives in a zeroizing buffer; without a controlling
//! terminal nothing is read and the caller gets an error that says so.

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Write};

use rustix::termios::{self, LocalModes, OptionalActions, Termios};
use zeroize::Zeroizing;

use crate::error::CliError;

/// The longest answer accepted (a passphrase, a PIN).
const MAX_SECRET: usize = 1024;

/// Restores the terminal's modes when dropped.
struct EchoOff<'a> {
    tty: &'a File,
    saved: Termios,
}

impl Drop for EchoOff<'_> {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(self.tty, OptionalActions::Now, &self.saved);
    }
}

/// Asks `prompt` on the controlling terminal and reads one line with echo
/// off. `what` names the secret in errors ("the passphrase of id_ecdsa").
pub fn read_secret(prompt: &str, what: &str) -> Result<Zeroizing<String>, CliError> {
    let tty = OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .map_err(|e| CliError::io(format!("cannot ask for {what}: no terminal"), e))?;
    let saved = termios::tcgetattr(&tty)
        .map_err(|e| CliError::io(format!("cannot ask for {what}"), io::Error::from(e)))?;
    let mut quiet = saved.clone();
    quiet.local_modes.remove(LocalModes::ECHO);
    quiet.local_modes.insert(LocalModes::ECHONL);
    termios::tcsetattr(&tty, OptionalActions::Now, &quiet)
        .map_err(|e| CliError::io(format!("cannot ask for {what}"), io::Error::from(e)))?;
    let guard = EchoOff { tty: &tty, saved };
    (&tty)
        .write_all(prompt.as_bytes())
        .and_then(|()| (&tty).flush())
        .map_err(|e| CliError::io(format!("cannot ask for {what}"), e))?;
    let mut line = Zeroizing::new(Vec::new());
    BufReader::new(&tty)
        .take(MAX_SECRET as u64 + 2)
        .read_until(b'\n', &mut line)
        .map_err(|e| CliError::io(format!("cannot read {what}"), e))?;
    drop(guard);
    if line.last() == Some(&b'\n') {
        line.pop();
        if line.last() == Some(&b'\r') {
            line.pop();
        }
    } else if line.is_empty() {
        return Err(CliError::other(format!(
            "no answer for {what}: the terminal closed"
        )));
    }
    if line.len() > MAX_SECRET {
        return Err(CliError::usage(format!(
            "{what} is longer than {MAX_SECRET} bytes"
        )));
    }
    String::from_utf8(std::mem::take(&mut *line))
        .map(Zeroizing::new)
        .map_err(|e| {
            let mut bytes = e.into_bytes();
            zeroize::Zeroize::zeroize(&mut bytes);
            CliError::usage(format!("{what} is not UTF-8 text"))
        })
}
