//! Inputs and outputs: stdin/stdout or named files, buffers, and output
//! files that appear only when complete (see [`crate::outfile`]).
//!
//! The payload moves in batches of 2 MiB (`kapsel_codec::parallel`) that go
//! straight between the kernel and the batch buffers: the input's
//! `BufReader` only serves the header's small reads (a read at least as
//! large as its capacity, on an empty buffer, bypasses it), the output's
//! `BufWriter` likewise passes large writes through, and pipes on standard
//! input and output are enlarged (see [`enlarge_pipe`]).

use std::fs::File;
use std::io::{self, BufReader, BufWriter, IsTerminal, Read, Write};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use crate::error::CliError;

/// Output buffer size, and the armor's buffers: large pieces cost far less
/// per byte than `io::copy`'s 8 KiB.
pub const IO_BUFFER: usize = 1 << 20;

/// Input buffer size. Small on purpose: a batch read from a pipe ends with
/// reads shorter than a pipe's contents, and every read shorter than this
/// capacity refills the buffer and is copied out of it. At 1 MiB about half
/// of a pipe's data took that detour (an extra copy, 0.08 CPU-s/GiB); at
/// 16 KiB at most 16 KiB of each 2 MiB batch does.
pub const INPUT_BUFFER: usize = 16 << 10;

/// Pipe size asked for on standard input and output: 16 times Linux's
/// default, and the largest an unprivileged process may ask for by default
/// (`/proc/sys/fs/pipe-max-size`).
pub const PIPE_SIZE: usize = 1 << 20;

/// Enlarges `fd`'s pipe buffer to [`PIPE_SIZE`] if `fd` is a pipe smaller
/// than that; anything else (a file, a terminal, a socket, a refusal above
/// the system's limit, a non-Linux system) is left as it is, silently.
///
/// With the default 64 KiB, each 2 MiB batch crosses `kapsel encrypt |
/// kapsel decrypt` in 32 pieces, each a wake-up of the other side.
pub fn enlarge_pipe(fd: impl AsFd) {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    if rustix::pipe::fcntl_getpipe_size(&fd).is_ok_and(|size| size < PIPE_SIZE) {
        let _ = rustix::pipe::fcntl_setpipe_size(&fd, PIPE_SIZE);
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let _ = fd;
}

/// How long a live input's pause must last before the complete chunks read
/// so far are released (see [`LiveInput`]). Short against the 100 ms a
/// person notices, long against the microseconds between a fast producer's
/// writes, so fast inputs keep their 2 MiB batches.
pub const LIVE_PAUSE: std::time::Duration = std::time::Duration::from_millis(5);

/// An input that may pause: a pipe, socket, terminal or FIFO (anything but a
/// regular file or block device, whose reads never wait on a producer).
/// The codec asks it, after a short read, whether more bytes are coming;
/// when none arrive within [`LIVE_PAUSE`] the complete chunks read so far
/// are encrypted (or decrypted) and flushed at once.
#[derive(Debug)]
pub struct LiveInput {
    fd: std::os::fd::OwnedFd,
}

impl LiveInput {
    /// `None` for a regular file or block device (or an fd that cannot be
    /// examined: then batches wait, as before).
    pub fn of(fd: std::os::fd::BorrowedFd<'_>) -> Option<Self> {
        let st = rustix::fs::fstat(fd).ok()?;
        let kind = rustix::fs::FileType::from_raw_mode(st.st_mode);
        if matches!(
            kind,
            rustix::fs::FileType::RegularFile | rustix::fs::FileType::BlockDevice
        ) {
            return None;
        }
        Some(LiveInput {
            fd: fd.try_clone_to_owned().ok()?,
        })
    }

    /// Whether bytes (or the end of input) arrive within [`LIVE_PAUSE`]. A
    /// failed poll says yes: the batch then waits for its reads, as it
    /// would without this probe.
    pub fn ready(&self) -> bool {
        use rustix::event::{poll, PollFd, PollFlags, Timespec};
        let wait = Timespec {
            tv_sec: 0,
            tv_nsec: LIVE_PAUSE.as_nanos() as _,
        };
        let mut fds = [PollFd::new(&self.fd, PollFlags::IN)];
        loop {
            match poll(&mut fds, Some(&wait)) {
                Ok(n) => return n > 0,
                Err(rustix::io::Errno::INTR) => {}
                Err(_) => return true,
            }
        }
    }
}

/// An opened input.
pub struct Input {
    pub reader: Box<dyn Read>,
    /// Length in bytes, when the input is a regular file.
    pub len: Option<u64>,
    pub name: String,
    /// Set when the input may pause (see [`LiveInput`]).
    pub live: Option<LiveInput>,
}

impl Input {
    pub fn open(path: Option<&Path>) -> Result<Self, CliError> {
        match path {
            None if stdin_is_closed() => Err(closed_stdin_error("input")),
            None => Ok(Input {
                reader: {
                    enlarge_pipe(io::stdin());
                    Box::new(BufReader::with_capacity(INPUT_BUFFER, io::stdin()))
                },
                len: None,
                name: "standard input".into(),
                live: LiveInput::of(io::stdin().as_fd()),
            }),
            Some(p) if p == Path::new("-") => Self::open(None),
            Some(p) => {
                let f = File::open(p)
                    .map_err(|e| CliError::io(format!("cannot open {}", p.display()), e))?;
                let meta = f
                    .metadata()
                    .map_err(|e| CliError::io(format!("cannot read {}", p.display()), e))?;
                let len = meta.is_file().then_some(meta.len());
                Ok(Input {
                    live: LiveInput::of(f.as_fd()),
                    reader: Box::new(BufReader::with_capacity(INPUT_BUFFER, f)),
                    len,
                    name: p.display().to_string(),
                })
            }
        }
    }
}

/// Where output goes.
pub enum Output {
    Stdout(BufWriter<io::Stdout>),
    /// Nothing is kept (`verify`).
    Discard,
    /// A device, FIFO or socket written in place (see [`crate::outfile`]):
    /// like standard output, what was written stays written.
    InPlace {
        file: BufWriter<File>,
        name: String,
    },
    /// A file not yet in place; [`Output::commit`] links or renames it over
    /// the target, dropping it leaves nothing.
    Atomic {
        file: BufWriter<File>,
        pending: crate::outfile::Pending,
    },
}

impl Output {
    /// Opens the output. `binary` output refuses a terminal on stdout.
    pub fn open(path: Option<&Path>, binary: bool) -> Result<Self, CliError> {
        match path {
            None => Self::stdout(binary),
            Some(p) if p == Path::new("-") => Self::stdout(binary),
            Some(p) => Self::open_target(crate::outfile::resolve(p)?, binary),
        }
    }

    /// Opens an output resolved earlier (`listen` checks `-o` before it
    /// listens).
    pub fn open_target(target: crate::outfile::Target, binary: bool) -> Result<Self, CliError> {
        use crate::outfile::Target;
        match target {
            Target::Stdout => Self::stdout(binary),
            Target::InPlace(p) => {
                let file = std::fs::OpenOptions::new()
                    .write(true)
                    .open(&p)
                    .map_err(|e| CliError::io(format!("cannot open {}", p.display()), e))?;
                Ok(Output::InPlace {
                    file: BufWriter::with_capacity(IO_BUFFER, file),
                    name: p.display().to_string(),
                })
            }
            Target::Replace(r) => {
                let (file, pending) = r.create(false)?;
                Ok(Output::Atomic {
                    file: BufWriter::with_capacity(IO_BUFFER, file),
                    pending,
                })
            }
        }
    }

    /// A new file named `name` in `dir`, put in place by
    /// [`Output::commit_as`] (the inbox of `listen --keep-going`).
    pub fn new_file_in(dir: &Path, name: std::ffi::OsString) -> Result<Self, CliError> {
        let (file, pending) = crate::outfile::Replacement::new_in(dir, name).create(false)?;
        Ok(Output::Atomic {
            file: BufWriter::with_capacity(IO_BUFFER, file),
            pending,
        })
    }

    fn stdout(binary: bool) -> Result<Self, CliError> {
        if binary && io::stdout().is_terminal() {
            return Err(
                CliError::usage("refusing to write binary output to a terminal").with_hint(
                    "redirect the output to a file, or use -o FILE (or --armor when encrypting)",
                ),
            );
        }
        enlarge_pipe(io::stdout());
        Ok(Output::Stdout(BufWriter::with_capacity(
            IO_BUFFER,
            io::stdout(),
        )))
    }

    /// Whether what is written leaves the process before [`Output::commit`]
    /// (standard output, a device or FIFO), so a failure cannot take it back.
    pub fn releases_early(&self) -> bool {
        matches!(self, Output::Stdout(_) | Output::InPlace { .. })
    }

    /// Flushes and, for a file, puts it in place (synced, then the
    /// directory synced). Dropping an uncommitted `Output` leaves nothing.
    pub fn commit(self) -> Result<(), CliError> {
        self.commit_as(crate::outfile::Placement::Replace, |_| None)
            .map(drop)
    }

    /// [`Output::commit`] with a placement; under
    /// [`Placement::NoClobber`](crate::outfile::Placement::NoClobber), a
    /// taken name is retried under `next_name(attempt)` (from 1) until it
    /// returns `None`. Returns the path the output got (`None` for standard
    /// output and the like).
    pub fn commit_as(
        self,
        placement: crate::outfile::Placement,
        mut next_name: impl FnMut(u32) -> Option<std::ffi::OsString>,
    ) -> Result<Option<PathBuf>, CliError> {
        match self {
            Output::Stdout(mut w) => w
                .flush()
                .map(|()| None)
                .map_err(|e| CliError::output_io("cannot write to standard output", e)),
            Output::Discard => Ok(None),
            Output::InPlace { mut file, name } => {
                file.flush()
                    .map_err(|e| CliError::output_io(format!("cannot write {name}"), e))?;
                Ok(None)
            }
            Output::Atomic { file, mut pending } => {
                let write_err =
                    |p: &Path, e| CliError::io(format!("cannot write {}", p.display()), e);
                let file = file
                    .into_inner()
                    .map_err(|e| write_err(pending.path(), e.into_error()))?;
                let mut attempt = 0;
                loop {
                    match pending.commit(&file, placement) {
                        Ok(()) => return Ok(Some(pending.path().to_path_buf())),
                        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                            attempt += 1;
                            match next_name(attempt) {
                                Some(name) => pending.rename_target(name),
                                None => {
                                    return Err(CliError::io(
                                        format!("cannot create {}", pending.path().display()),
                                        e,
                                    ))
                                }
                            }
                        }
                        Err(e) => {
                            return Err(CliError::io(
                                format!("cannot put {} in place", pending.path().display()),
                                e,
                            ))
                        }
                    }
                }
            }
        }
    }
}

impl Write for Output {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Output::Stdout(w) => w.write(buf),
            Output::Discard => Ok(buf.len()),
            Output::InPlace { file, .. } | Output::Atomic { file, .. } => file.write(buf),
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self {
            Output::Stdout(w) => w.write_all(buf),
            Output::Discard => Ok(()),
            Output::InPlace { file, .. } | Output::Atomic { file, .. } => file.write_all(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Output::Stdout(w) => w.flush(),
            Output::Discard => Ok(()),
            Output::InPlace { file, .. } | Output::Atomic { file, .. } => file.flush(),
        }
    }
}

/// Whether standard input was closed when kapsel started. The Rust
/// runtime puts `/dev/null`, opened for reading and writing, in place of a
/// closed standard descriptor; a shell's `</dev/null` opens it for reading
/// only. So `/dev/null` open read-write on descriptor 0 counts as closed
/// (`<>/dev/null` too, which nobody uses to mean empty input).
pub fn stdin_is_closed() -> bool {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        use rustix::fs::{fcntl_getfl, fstat, major, minor, FileType, OFlags};
        let stdin = io::stdin();
        let Ok(st) = fstat(&stdin) else {
            return true;
        };
        let null = FileType::from_raw_mode(st.st_mode) == FileType::CharacterDevice
            && major(st.st_rdev) == 1
            && minor(st.st_rdev) == 3;
        null && fcntl_getfl(&stdin).is_ok_and(|f| f & OFlags::RWMODE == OFlags::RDWR)
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    false
}

/// The refusal for a closed standard input that should carry `what`.
pub fn closed_stdin_error(what: &str) -> CliError {
    CliError::other(format!("standard input is closed: no {what} to read"))
        .with_hint("for an empty input, redirect it from /dev/null (< /dev/null); otherwise name the input file")
}

/// Makes standard output safe for a private key: if it is a regular file
/// that others may read, its mode becomes 0600 (with a note on stderr), or,
/// where that is not allowed, kapsel refuses. A terminal, a pipe or a
/// device is left as it is.
pub fn protect_stdout_for_key() -> Result<(), CliError> {
    #[cfg(unix)]
    {
        use rustix::fs::{fchmod, fstat, FileType, Mode};
        let stdout = io::stdout();
        let Ok(st) = fstat(&stdout) else {
            return Ok(());
        };
        if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
            return Ok(());
        }
        let mode = st.st_mode & 0o7777;
        if mode & 0o077 == 0 {
            return Ok(());
        }
        fchmod(&stdout, Mode::from_raw_mode(0o600)).map_err(|e| {
            CliError::other(format!(
                "standard output is a file others may read (mode {mode:04o}), and kapsel cannot make it private: {}",
                io::Error::from(e)
            ))
            .with_hint("nothing was written; write the key with kapsel keygen -o FILE, or to a file you own")
        })?;
        errln!(
            "kapsel: note: standard output is a file; its mode was {mode:04o} and is now 0600, since it holds a private key"
        );
    }
    Ok(())
}

/// Writes a new file readable only by its owner, atomically: the text goes
/// to an unnamed file in the same directory (mode 0600; a hidden named one
/// where the system has no `O_TMPFILE`), which is synced and then linked as
/// `path` only if `path` does not exist, and the directory synced. On any
/// failure, a full disk or a kill included, nothing is left behind and
/// `path` is untouched.
pub fn write_private_file_atomically(path: &Path, text: &[u8]) -> Result<(), CliError> {
    let exists = || {
        CliError::other(format!("{} already exists", path.display())).with_hint(
            "refusing to overwrite an identity file; choose another name or remove it first",
        )
    };
    if path.symlink_metadata().is_ok() {
        return Err(exists());
    }
    let (dir, name) = dir_and_name(path);
    crate::outfile::check_directory(&dir)?;
    let write_err = |e| CliError::io(format!("cannot write {}", path.display()), e);
    let target = crate::outfile::Replacement::new_in(&dir, name);
    let (mut file, mut pending) = target.create(true)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = file.metadata().map_err(write_err)?.permissions().mode();
        if mode & 0o077 != 0 {
            return Err(CliError::other(format!(
                "the temporary file for {} is not private (mode {:04o})",
                path.display(),
                mode & 0o7777
            )));
        }
    }
    file.write_all(text).map_err(write_err)?;
    pending
        .commit(&file, crate::outfile::Placement::NoClobber)
        .map_err(|e| {
            if e.kind() == io::ErrorKind::AlreadyExists {
                exists()
            } else {
                CliError::io(format!("cannot create {}", path.display()), e)
            }
        })
}

/// The directory a temporary file for `path` goes in (where `path` will be
/// renamed into place: the same file system) and `path`'s file name.
fn dir_and_name(path: &Path) -> (PathBuf, std::ffi::OsString) {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    (dir, name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(target_os = "linux")]
    #[test]
    fn enlarge_pipe_grows_pipes_and_leaves_files_alone() {
        let (r, w) = rustix::pipe::pipe().expect("pipe");
        assert!(rustix::pipe::fcntl_getpipe_size(&r).expect("size") < PIPE_SIZE);
        enlarge_pipe(&w);
        // Refused only above /proc/sys/fs/pipe-max-size (1 MiB by default).
        let max: usize = std::fs::read_to_string("/proc/sys/fs/pipe-max-size")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(PIPE_SIZE);
        if max >= PIPE_SIZE {
            assert_eq!(
                rustix::pipe::fcntl_getpipe_size(&r).expect("size"),
                PIPE_SIZE
            );
        }
        // A file: no error, no change.
        let mut f = tempfile::tempfile().expect("temporary file");
        f.write_all(b"unchanged").expect("write");
        enlarge_pipe(&f);
        assert!(rustix::pipe::fcntl_getpipe_size(&f).is_err());
        assert_eq!(f.metadata().expect("metadata").len(), 9);
    }
}
