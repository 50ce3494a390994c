//! Files vigil creates: logs, exports, matches, graphs. They hold whole command lines and every
//! path a program touched, so they are created readable by their owner only (0600), whatever
//! the umask allows, and an existing regular file of that name is narrowed to 0600 too (a device
//! or a pipe such as /dev/stdout is left as it is).

use std::fs::File;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Creates (or truncates) `path` for writing, mode 0600.
pub fn create_private(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::PermissionsExt;
    let f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    if f.metadata()?.is_file() {
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(f)
}

/// Writes `contents` to `path` like `std::fs::write`, mode 0600.
pub fn write_private(path: &Path, contents: impl AsRef<[u8]>) -> std::io::Result<()> {
    use std::io::Write;
    create_private(path)?.write_all(contents.as_ref())
}
