//! Files vigil creates: logs, exports, matches, graphs. They hold whole command lines and every
//! path a program touched, so they are created readable by their owner only (0600), whatever
//! the umask allows. (A file that already exists keeps its mode: it is truncated, not recreated.)

use std::fs::File;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Creates (or truncates) `path` for writing, mode 0600 when it is new.
pub fn create_private(path: &Path) -> std::io::Result<File> {
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
}

/// Writes `contents` to `path` like `std::fs::write`, mode 0600 when it is new.
pub fn write_private(path: &Path, contents: impl AsRef<[u8]>) -> std::io::Result<()> {
    use std::io::Write;
    create_private(path)?.write_all(contents.as_ref())
}
