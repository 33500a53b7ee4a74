//! Helpers shared by the CLI integration tests.

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
