//! Helpers shared by the CLI integration tests. Each test file compiles its
//! own copy and uses only some of them.

// Helpers outside `#[test]` functions unwrap too; clippy.toml allows it only
// inside them.
#![allow(clippy::unwrap_used)]
#![allow(dead_code)]

use std::fs;
use std::path::Path;

use kapsel_codec::Identity;

/// Writes a new identity to `path` with mode 0600 (as `keygen` would) and
/// returns the path as a string and the identity.
pub fn write_identity_file(path: &Path) -> (String, Identity) {
    let id = Identity::generate();
    fs::write(path, format!("{}\n", &*id.to_secret_string())).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(path, fs::Permissions::from_mode(0o600)).unwrap();
    }
    (path.to_str().unwrap().to_string(), id)
}

/// Deterministic pseudo-random bytes (xorshift), different for each length.
pub fn random_bytes(len: usize) -> Vec<u8> {
    let mut state = 0x9e37_79b9_7f4a_7c15u64 ^ len as u64;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

/// Runs `command` with `stdin` written to it from another thread (so large
/// inputs cannot deadlock against its output); returns (exit code, stdout,
/// stderr).
pub fn run_with_stdin(
    command: &mut std::process::Command,
    stdin: &[u8],
) -> (Option<i32>, Vec<u8>, String) {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    let data = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(&data);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    (
        out.status.code(),
        out.stdout,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The `kapsel` binary with its serial store and default ledger kept under
/// `state_dir`, and no ledger or serial store inherited from the caller's
/// environment.
pub fn kapsel_in(state_dir: &Path) -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_kapsel"));
    c.env("KAPSEL_STATE_DIR", state_dir)
        .env_remove("KAPSEL_REPLAY_DB")
        .env_remove("KAPSEL_SERIAL_DB");
    c
}

/// Seconds since the Unix epoch, as the receiver's clock reads them.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A private directory for one test: key files, inputs, outputs, and the
/// state directory the `kapsel` commands it runs use.
pub struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    pub fn new() -> Self {
        Env {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn path(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join(name)
    }

    /// [`Env::path`] as a string, for command lines.
    pub fn p(&self, name: &str) -> String {
        self.path(name).to_str().unwrap().to_string()
    }

    /// The `kapsel` binary with this test's state directory.
    pub fn cmd(&self) -> std::process::Command {
        kapsel_in(&self.path("state"))
    }

    /// Writes an identity file; returns (path, identity).
    pub fn identity(&self, name: &str) -> (String, Identity) {
        write_identity_file(&self.path(name))
    }

    /// Writes `bytes` to `name`; returns its path.
    pub fn write(&self, name: &str, bytes: &[u8]) -> String {
        fs::write(self.path(name), bytes).unwrap();
        self.p(name)
    }

    /// Runs kapsel with `args` and an empty standard input; returns (exit
    /// code, stdout, stderr).
    pub fn run(&self, args: &[&str]) -> (Option<i32>, Vec<u8>, String) {
        let out = self
            .cmd()
            .args(args)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        (
            out.status.code(),
            out.stdout,
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Runs kapsel with `args` and `stdin`; returns (exit code, stdout, stderr).
    pub fn run_stdin(&self, args: &[&str], stdin: &[u8]) -> (Option<i32>, Vec<u8>, String) {
        run_with_stdin(self.cmd().args(args), stdin)
    }
}
