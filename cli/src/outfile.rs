//! What `-o PATH` means, and output files that appear only when complete.
//!
//! - [`resolve`] decides where `-o PATH` writes: through `/dev/stdout` (or
//!   `/dev/fd/1`, `/proc/self/fd/1`) to standard output; to a character
//!   device, FIFO, socket or block device (and anything under `/proc` or
//!   `/dev/fd`) in place, since there is nothing to make atomic; through a
//!   symbolic link to the file it points to (the link stays); to a regular
//!   file, or a new one, by replacement. A directory and a read-only
//!   regular file (as `access(2)` judges it: `cp` refuses the same) are
//!   refused before anything is read.
//! - A replacement is written to an unnamed file in the target's directory
//!   (Linux `O_TMPFILE`), which the kernel removes whatever ends the
//!   process (SIGKILL included), and which is linked into place only by
//!   [`Pending::commit`]: after `fsync` of the file, then `fsync` of the
//!   directory, so the name survives a crash once a caller reports success.
//!   A new name is created with `linkat(2)`, which never overwrites; an
//!   existing target is replaced by `rename(2)` from a hidden name that
//!   exists only between those two calls.
//! - Where `O_TMPFILE` is missing (other systems, NFS, FUSE), the file is a
//!   named hidden `.NAME.PID.XXXXXX.kapsel-partial` in the same directory:
//!   removed when the output is dropped, by SIGINT, SIGTERM and SIGHUP (a
//!   signal thread removes every registered name, then lets the signal end
//!   the process as it would have), and, after a SIGKILL, by the next kapsel
//!   that writes into the directory (see [`remove_stale`]).
//! - A replaced regular file keeps its permission bits (without set-user-ID
//!   and set-group-ID) and, where allowed, its owner and group; a new file
//!   gets the mode the umask leaves of 0666, or of 0600 for key material.
//!   Hard links to a replaced file keep the old contents (a note says so).

use std::ffi::OsString;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::error::CliError;

/// The suffix of every named temporary file kapsel makes.
pub const PARTIAL_SUFFIX: &str = ".kapsel-partial";

/// Test-only: set to `1`, output files take the named fallback as if the
/// file system had no `O_TMPFILE` (the tests of the signal clean-up use it).
/// Not documented for users.
const FORCE_NAMED_ENV: &str = "KAPSEL_TEST_NAMED_TEMPFILE";

/// Where `-o PATH` writes.
#[derive(Debug, Clone)]
pub enum Target {
    /// `/dev/stdout` and its aliases: standard output itself.
    Stdout,
    /// A device, FIFO or socket, or a path under `/proc` or `/dev/fd`:
    /// opened and written in place.
    InPlace(PathBuf),
    /// A regular file (existing or new), replaced only when complete.
    Replace(Replacement),
}

/// A regular file to create or replace.
#[derive(Debug, Clone)]
pub struct Replacement {
    /// The directory the file is (or will be) in.
    pub dir: PathBuf,
    /// Its name in `dir`.
    pub name: OsString,
    /// `dir/name`, for messages.
    pub path: PathBuf,
    /// The file there now, if any.
    existing: Option<Existing>,
}

#[derive(Debug, Clone, Copy)]
struct Existing {
    mode: u32,
    uid: u32,
    gid: u32,
    nlink: u64,
}

/// Symbolic links followed before giving up (Linux's `MAXSYMLINKS`).
const MAX_LINKS: usize = 40;

/// Paths that name standard output.
fn is_stdout_alias(p: &Path) -> bool {
    let s = p.as_os_str().as_bytes();
    matches!(s, b"/dev/stdout" | b"/dev/fd/1" | b"/proc/self/fd/1")
        || s == format!("/proc/{}/fd/1", std::process::id()).as_bytes()
}

/// Paths whose symbolic links are the kernel's, not file names: written in
/// place, never followed or replaced.
fn is_magic(p: &Path) -> bool {
    p.starts_with("/proc") || p.starts_with("/dev/fd")
}

/// Decides where `-o path` writes (see the module documentation), and
/// checks that it can: the directory exists and is writable, the target is
/// not a directory and, if a regular file, is writable.
pub fn resolve(path: &Path) -> Result<Target, CliError> {
    let given = path.display().to_string();
    let mut p = path.to_path_buf();
    for _ in 0..MAX_LINKS {
        if is_stdout_alias(&p) {
            return Ok(Target::Stdout);
        }
        if is_magic(&p) {
            return Ok(Target::InPlace(p));
        }
        match p.symlink_metadata() {
            Ok(m) if m.file_type().is_symlink() => {
                let to = std::fs::read_link(&p).map_err(|e| {
                    CliError::io(format!("cannot read the link {}", p.display()), e)
                })?;
                p = if to.is_absolute() {
                    to
                } else {
                    parent_of(&p).join(to)
                };
            }
            Ok(_) => return classify(p),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
                ) =>
            {
                return classify(p)
            }
            Err(e) => return Err(CliError::io(format!("cannot examine {}", p.display()), e)),
        }
    }
    Err(CliError::other(format!(
        "{given}: too many levels of symbolic links"
    )))
}

/// The directory `p` is in (`.` for a bare name).
fn parent_of(p: &Path) -> PathBuf {
    match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Checks that a new file can be made in `dir`.
pub fn check_directory(dir: &Path) -> Result<(), CliError> {
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            return Err(CliError::other(format!(
                "{} is not a directory",
                dir.display()
            )))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(
                CliError::other(format!("the directory {} does not exist", dir.display()))
                    .with_hint("create it first (mkdir -p), or name another output"),
            )
        }
        Err(e) => return Err(CliError::io(format!("cannot examine {}", dir.display()), e)),
    }
    use rustix::fs::{access, Access};
    access(dir, Access::WRITE_OK | Access::EXEC_OK).map_err(|e| {
        CliError::io(
            format!("cannot create a file in {}", dir.display()),
            e.into(),
        )
    })
}

fn classify(p: PathBuf) -> Result<Target, CliError> {
    let meta = match std::fs::metadata(&p) {
        Ok(m) => Some(m),
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
            ) =>
        {
            None
        }
        Err(e) => return Err(CliError::io(format!("cannot examine {}", p.display()), e)),
    };
    match &meta {
        Some(m) if m.is_dir() => {
            return Err(CliError::usage(format!("{} is a directory", p.display()))
                .with_hint("-o names a file; give a file name inside the directory"))
        }
        Some(m) if !m.is_file() => return Ok(Target::InPlace(p)),
        _ => {}
    }
    let dir = parent_of(&p);
    let Some(name) = p.file_name().map(|n| n.to_os_string()) else {
        return Err(CliError::usage(format!("{} names no file", p.display())));
    };
    check_directory(&dir)?;
    let existing = meta.map(|m| Existing {
        mode: m.mode(),
        uid: m.uid(),
        gid: m.gid(),
        nlink: m.nlink(),
    });
    if existing.is_some() {
        use rustix::fs::{access, Access};
        if let Err(e) = access(&p, Access::WRITE_OK) {
            return Err(CliError::io(format!("cannot write {}", p.display()), e.into())
                .with_hint("the file is read-only for you; change its mode, remove it, or choose another name (as cp would, kapsel does not replace it)"));
        }
    }
    Ok(Target::Replace(Replacement {
        path: p,
        dir,
        name,
        existing,
    }))
}

impl Replacement {
    /// A new file named `name` in `dir` (the inbox of `listen --keep-going`).
    pub fn new_in(dir: &Path, name: OsString) -> Self {
        Replacement {
            path: dir.join(&name),
            dir: dir.to_path_buf(),
            name,
            existing: None,
        }
    }

    /// Creates the file that will replace (or become) the target: unnamed
    /// where the system allows, else named and registered for clean-up.
    /// `private` makes a new file mode 0600 (key material).
    pub fn create(&self, private: bool) -> Result<(File, Pending), CliError> {
        let dir_err = |e: io::Error| {
            CliError::io(format!("cannot create a file in {}", self.dir.display()), e)
        };
        let dir = File::open(&self.dir).map_err(dir_err)?;
        let mode = if private { 0o600 } else { 0o666 };
        let (file, how) = match unnamed(&dir, mode) {
            Some(file) => (file, How::Unnamed),
            None => {
                remove_stale(&self.dir);
                let (file, path) = named(&self.dir, &self.name, mode).map_err(dir_err)?;
                (file, How::Named(path))
            }
        };
        if let Some(old) = self.existing {
            // The new file takes the old one's owner (where allowed: root, or a
            // group of ours) and permission bits, never set-user-ID or
            // set-group-ID.
            use rustix::fs::{fchmod, fchown, Gid, Mode, Uid};
            let _ = fchown(
                &file,
                Some(Uid::from_raw(old.uid)),
                Some(Gid::from_raw(old.gid)),
            )
            .or_else(|_| fchown(&file, None, Some(Gid::from_raw(old.gid))));
            fchmod(&file, Mode::from_raw_mode(old.mode & 0o1777)).map_err(|e| {
                CliError::io(format!("cannot write {}", self.path.display()), e.into())
            })?;
            if old.nlink > 1 {
                errln!(
                    "kapsel: note: {} has {} hard links; it is replaced by a new file, and the other links keep the old contents",
                    self.path.display(),
                    old.nlink
                );
            }
        }
        Ok((
            file,
            Pending {
                dir,
                target: self.clone(),
                how,
            },
        ))
    }
}

/// An `O_TMPFILE` in `dir`, or `None` where the system or file system has
/// none (or `/proc/self/fd`, needed to link it, is missing).
fn unnamed(dir: &File, mode: u32) -> Option<File> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        use rustix::fs::{openat, statat, AtFlags, Mode, OFlags, CWD};
        if std::env::var_os(FORCE_NAMED_ENV).is_some_and(|v| v == "1") {
            return None;
        }
        let fd = openat(
            dir,
            ".",
            OFlags::WRONLY | OFlags::TMPFILE | OFlags::CLOEXEC,
            Mode::from_raw_mode(mode),
        )
        .ok()?;
        statat(CWD, proc_fd_path(&fd), AtFlags::empty()).ok()?;
        Some(File::from(fd))
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        let _ = (dir, mode);
        None
    }
}

fn proc_fd_path(fd: &impl AsRawFd) -> String {
    format!("/proc/self/fd/{}", fd.as_raw_fd())
}

/// A named temporary file `.NAME.PID.XXXXXX.kapsel-partial` in `dir`,
/// registered for removal on SIGINT, SIGTERM and SIGHUP.
fn named(dir: &Path, name: &OsString, mode: u32) -> io::Result<(File, tempfile::TempPath)> {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::Builder::new()
        .prefix(&format!(
            ".{}.{}.",
            name.to_string_lossy(),
            std::process::id()
        ))
        .suffix(PARTIAL_SUFFIX)
        .permissions(std::fs::Permissions::from_mode(mode))
        .tempfile_in(dir)?;
    let (file, path) = tmp.into_parts();
    register(&path);
    Ok((file, path))
}

/// How the file of a [`Pending`] output exists until it is committed.
enum How {
    /// `O_TMPFILE`: no name at all.
    Unnamed,
    /// A hidden name, removed when dropped.
    Named(tempfile::TempPath),
}

/// A complete output not yet in place; dropping it leaves nothing.
pub struct Pending {
    dir: File,
    target: Replacement,
    how: How,
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Pending({})", self.target.path.display())
    }
}

/// Whether a commit replaces what is at the target or never does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placement {
    /// Replace the target (`-o FILE`).
    Replace,
    /// Never replace: a taken name is an error ([`io::ErrorKind::AlreadyExists`]).
    NoClobber,
}

impl Pending {
    /// The path the output will have.
    pub fn path(&self) -> &Path {
        &self.target.path
    }

    /// Syncs `file`, gives it its name, and syncs the directory. With
    /// [`Placement::NoClobber`], a taken name fails with `AlreadyExists`
    /// and the output stays pending (retry with [`Pending::rename_target`]).
    pub fn commit(&mut self, file: &File, placement: Placement) -> io::Result<()> {
        file.sync_all()?;
        self.place(file, placement)?;
        // The new name is what a user and a receipt rely on.
        rustix::fs::fsync(&self.dir)?;
        Ok(())
    }

    /// Gives the pending output another name in the same directory.
    pub fn rename_target(&mut self, name: OsString) {
        self.target.path = self.target.dir.join(&name);
        self.target.name = name;
    }

    fn place(&mut self, file: &File, placement: Placement) -> io::Result<()> {
        use rustix::fs::{renameat, renameat_with, RenameFlags};
        let name = self.target.name.clone();
        match &self.how {
            How::Unnamed => {
                match link_unnamed(file, &self.dir, &name) {
                    Ok(()) => return Ok(()),
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                        if placement == Placement::NoClobber {
                            return Err(e);
                        }
                    }
                    Err(e) => return Err(e),
                }
                // Replace: a hidden name for the two calls between link and
                // rename, removed by a signal in between.
                let hidden = self.dir_hidden_name();
                let mut registry = lock_registry();
                link_unnamed(file, &self.dir, &hidden)?;
                let hidden_path = self.target.dir.join(&hidden);
                registry.push(hidden_path.clone());
                let renamed =
                    renameat(&self.dir, &hidden, &self.dir, &name).map_err(io::Error::from);
                if renamed.is_err() {
                    let _ = rustix::fs::unlinkat(&self.dir, &hidden, rustix::fs::AtFlags::empty());
                }
                registry.retain(|p| *p != hidden_path);
                renamed
            }
            How::Named(tmp) => {
                let from: &Path = tmp;
                let from = from.to_path_buf();
                let to = self.target.path.clone();
                let mut registry = lock_registry();
                let moved = match placement {
                    Placement::Replace => std::fs::rename(&from, &to),
                    Placement::NoClobber => {
                        match renameat_with(
                            &self.dir,
                            from.file_name().unwrap_or_default(),
                            &self.dir,
                            &name,
                            RenameFlags::NOREPLACE,
                        ) {
                            Ok(()) => Ok(()),
                            Err(rustix::io::Errno::INVAL | rustix::io::Errno::NOSYS) => {
                                // No RENAME_NOREPLACE here: a hard link never
                                // overwrites either.
                                std::fs::hard_link(&from, &to)
                                    .and_then(|()| std::fs::remove_file(&from))
                            }
                            Err(e) => Err(e.into()),
                        }
                    }
                };
                if moved.is_ok() {
                    registry.retain(|p| *p != from);
                    // The name is gone: nothing for TempPath to remove.
                    if let How::Named(tmp) = std::mem::replace(&mut self.how, How::Unnamed) {
                        let _ = tmp.keep();
                    }
                }
                moved
            }
        }
    }

    fn dir_hidden_name(&self) -> OsString {
        // Unique, not secret: the name exists for two system calls.
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
        );
        OsString::from(format!(
            ".{}.{}.{:012x}{PARTIAL_SUFFIX}",
            self.target.name.to_string_lossy(),
            std::process::id(),
            h.finish() & 0xffff_ffff_ffff
        ))
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if let How::Named(tmp) = std::mem::replace(&mut self.how, How::Unnamed) {
            // Removed first, then forgotten: a signal in between finds the
            // name registered and removes nothing more.
            let p: PathBuf = tmp.to_path_buf();
            let _ = tmp.close();
            lock_registry().retain(|r| *r != p);
        }
    }
}

/// Links the unnamed `file` as `name` in `dir`; never overwrites.
fn link_unnamed(file: &File, dir: &File, name: &OsString) -> io::Result<()> {
    use rustix::fs::{linkat, AtFlags, CWD};
    match linkat(
        CWD,
        proc_fd_path(file).as_str(),
        dir,
        name.as_os_str(),
        AtFlags::SYMLINK_FOLLOW,
    ) {
        Ok(()) => Ok(()),
        Err(rustix::io::Errno::EXIST) => Err(io::ErrorKind::AlreadyExists.into()),
        // Without /proc following: AT_EMPTY_PATH (needs CAP_DAC_READ_SEARCH).
        Err(first) => {
            linkat(file.as_fd(), "", dir, name.as_os_str(), AtFlags::EMPTY_PATH).map_err(|e| {
                if e == rustix::io::Errno::EXIST {
                    io::ErrorKind::AlreadyExists.into()
                } else {
                    io::Error::from(first)
                }
            })
        }
    }
}

// ---------------------------------------------------------------------------
// Named temporary files: signals and stale ones

/// Named temporary files to remove if SIGINT, SIGTERM or SIGHUP arrives.
static REGISTRY: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

fn lock_registry() -> std::sync::MutexGuard<'static, Vec<PathBuf>> {
    REGISTRY.lock().unwrap_or_else(|p| p.into_inner())
}

fn register(path: &Path) {
    watch_signals();
    lock_registry().push(path.to_path_buf());
}

/// Starts, once, the thread that removes the registered files when SIGINT,
/// SIGTERM or SIGHUP arrives and then lets the signal end the process as
/// its default action would (the exit status still says which signal).
fn watch_signals() {
    static STARTED: std::sync::Once = std::sync::Once::new();
    STARTED.call_once(|| {
        use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
        let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP]) else {
            return;
        };
        let _ = std::thread::Builder::new()
            .name("kapsel-signals".into())
            .spawn(move || {
                if let Some(signal) = signals.forever().next() {
                    // Held until the process ends: nothing is renamed after this.
                    let registry = lock_registry();
                    for p in registry.iter() {
                        let _ = std::fs::remove_file(p);
                    }
                    let _ = signal_hook::low_level::emulate_default_handler(signal);
                    std::process::exit(128 + signal);
                }
            });
    });
}

/// How long a named temporary file must have been left alone before
/// another kapsel removes it (with its process gone).
const STALE_AFTER: std::time::Duration = std::time::Duration::from_secs(60);

/// Removes `.*.PID.*.kapsel-partial` files in `dir` whose process is no
/// longer running on this machine and which nothing changed for
/// [`STALE_AFTER`]: what a SIGKILL left of a named temporary file.
pub fn remove_stale(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = partial_file_pid(&name.to_string_lossy()) else {
            continue;
        };
        if pid == std::process::id() || process_is_running(pid) {
            continue;
        }
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age >= STALE_AFTER);
        if old {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// The PID in `.NAME.PID.XXXXXX.kapsel-partial`.
fn partial_file_pid(name: &str) -> Option<u32> {
    let stem = name.strip_prefix('.')?.strip_suffix(PARTIAL_SUFFIX)?;
    let mut parts = stem.rsplitn(3, '.');
    let _random = parts.next()?;
    let pid = parts.next()?;
    let _name = parts.next()?;
    pid.parse().ok()
}

fn process_is_running(pid: u32) -> bool {
    match rustix::process::Pid::from_raw(pid as i32) {
        Some(pid) => !matches!(
            rustix::process::test_kill_process(pid),
            Err(rustix::io::Errno::SRCH)
        ),
        None => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_names_give_their_pid() {
        assert_eq!(
            partial_file_pid(".out.bin.1234.AbC123.kapsel-partial"),
            Some(1234)
        );
        assert_eq!(partial_file_pid(".x.99.q.kapsel-partial"), Some(99));
        assert_eq!(partial_file_pid(".x.kapsel-partial"), None);
        assert_eq!(partial_file_pid("x.1.2.kapsel-partial"), None);
    }

    #[test]
    fn stdout_aliases_and_magic_paths() {
        assert!(is_stdout_alias(Path::new("/dev/stdout")));
        assert!(is_stdout_alias(Path::new("/proc/self/fd/1")));
        assert!(!is_stdout_alias(Path::new("/dev/stderr")));
        assert!(is_magic(Path::new("/proc/self/fd/3")));
        assert!(!is_magic(Path::new("/procx")));
    }
}
