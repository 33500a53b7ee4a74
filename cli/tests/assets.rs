//! Man pages and shell completions from `kapsel generate-assets DIR`: one
//! page per command, each parsed by man(1); completions checked by their
//! shells' syntax checkers where those shells exist.

// Helpers outside `#[test]` functions unwrap too; clippy.toml allows it only
// inside them.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;

fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool} >/dev/null")])
        .status()
        .is_ok_and(|s| s.success())
}

/// Skips (returning false) when `tool` is missing, except under CI.
fn need(tool: &str) -> bool {
    if have(tool) {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{tool} is missing under CI (scripts/test installs it)"
    );
    eprintln!("skipping: no {tool}");
    false
}

fn generate() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_kapsel"))
        .arg("generate-assets")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    dir
}

/// The commands `kapsel --help` lists.
fn commands() -> Vec<String> {
    let out = Command::new(env!("CARGO_BIN_EXE_kapsel"))
        .arg("--help")
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let list = text
        .split("Commands:")
        .nth(1)
        .unwrap()
        .split("\n\n")
        .next()
        .unwrap();
    // Command lines are indented by two spaces; wrapped descriptions by more.
    list.lines()
        .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .map(str::to_string)
        .collect()
}

#[test]
fn every_command_has_a_man_page_that_man_parses() {
    let dir = generate();
    let man1 = dir.path().join("man/man1");
    let mut pages = vec!["kapsel".to_string()];
    pages.extend(commands().iter().map(|c| format!("kapsel-{c}")));
    pages.extend(["list", "check", "forget", "repair"].map(|c| format!("kapsel-ledger-{c}")));
    assert!(pages.contains(&"kapsel-ledger".to_string()), "{pages:?}");
    for page in &pages {
        let path = man1.join(format!("{page}.1"));
        assert!(path.is_file(), "no man page {}", path.display());
    }
    assert!(
        !man1.join("kapsel-generate-assets.1").exists(),
        "the hidden command has no page"
    );
    if !need("man") {
        return;
    }
    for page in &pages {
        let path = man1.join(format!("{page}.1"));
        let out = Command::new("man")
            .args(["--warnings", "-l"])
            .arg(&path)
            .env("MANPAGER", "cat")
            .env("MANWIDTH", "80")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{page}: {err}");
        assert!(err.trim().is_empty(), "{page}: {err}");
        assert!(text.contains("NAME"), "{page}: {text}");
    }
    // The pages carry the help text: options and exit codes.
    let decrypt = std::fs::read_to_string(man1.join("kapsel-decrypt.1")).unwrap();
    assert!(decrypt.contains("replay") && decrypt.contains("Exit codes"));
}

fn check_shell(shell: &str, args: &[&str], file: &Path) {
    if !have(shell) {
        eprintln!("skipping: no {shell}");
        return;
    }
    let out = Command::new(shell).args(args).arg(file).output().unwrap();
    assert!(
        out.status.success(),
        "{shell} {}: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn completions_for_bash_zsh_and_fish_are_valid_scripts() {
    let dir = generate();
    let c = dir.path().join("completions");
    for f in ["kapsel.bash", "_kapsel", "kapsel.fish"] {
        let text = std::fs::read_to_string(c.join(f)).unwrap();
        for command in commands() {
            assert!(text.contains(&command), "{f} lacks {command}");
        }
        assert!(text.contains("replay-db"), "{f}");
    }
    assert!(need("bash"));
    check_shell("bash", &["-n"], &c.join("kapsel.bash"));
    check_shell("zsh", &["-n"], &c.join("_kapsel"));
    check_shell("fish", &["--no-execute"], &c.join("kapsel.fish"));
}

#[test]
fn generate_assets_reports_an_unwritable_directory() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_kapsel"))
        .arg("generate-assets")
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("kapsel: error: cannot create"));
}
