//! Where kapsel keeps state by default: `$KAPSEL_STATE_DIR`, else
//! `$XDG_STATE_HOME/kapsel`, else `$HOME/.local/state/kapsel`.

use std::path::PathBuf;

/// The default state directory, if one can be determined.
pub fn default_state_dir() -> Option<PathBuf> {
    let non_empty = |name: &str| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    non_empty("KAPSEL_STATE_DIR")
        .or_else(|| non_empty("XDG_STATE_HOME").map(|p| p.join("kapsel")))
        .or_else(|| non_empty("HOME").map(|p| p.join(".local/state/kapsel")))
}

/// Creates the parent directory of `path` (mode 0700 on Unix) if missing.
pub fn create_parent(path: &std::path::Path) -> std::io::Result<()> {
    let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) else {
        return Ok(());
    };
    if parent.exists() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(parent)
}
