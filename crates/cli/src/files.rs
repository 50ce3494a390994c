//! Files vigil creates: logs, exports, matches, graphs. Creating one must never destroy what the
//! user had, so:
//!
//! - An output that is one of the command's inputs (the same file: same device and inode,
//!   whatever the names, links or `>>` redirections) is refused before anything is opened.
//! - An output is written under a temporary name in its directory, created exclusively (O_EXCL,
//!   a random name: another user can neither predict nor pre-create it) and renamed over the
//!   destination only once complete (`NewFile::commit`). A command that fails half-way leaves
//!   the destination as it was and no temporary file behind. A log being recorded is renamed
//!   into place as soon as the traced command has started (`NewFile::publish`), so it can be
//!   followed while it is written, and a recording that fails to start leaves an existing file
//!   of that name untouched.
//! - Files hold whole command lines and every path a program touched: they are created
//!   readable by their owner only (0600), whatever the umask allows.
//! - A destination that is not a regular file (a device such as /dev/null, a pipe) is written
//!   in place, as is a name for an open file (/dev/stdout, /dev/fd/N, /proc/...): renaming
//!   over those would replace the device, or the file a `>>` redirection meant to append to.
//! - `-` means standard output where that is sensible (see `output_arg`).

use crate::exit::Failure;
use std::fs::File;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Writes `contents` to `path` like `std::fs::write`, mode 0600, in place (for vigil's own
/// files in a directory it just created).
pub fn write_private(path: &Path, contents: impl AsRef<[u8]>) -> std::io::Result<()> {
    use std::io::Write;
    open_private(path)?.write_all(contents.as_ref())
}

/// Opens `path` for writing in place, truncated; a regular file is made mode 0600, whatever
/// the umask or its old mode allowed.
fn open_private(path: &Path) -> std::io::Result<File> {
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

/// Whether an output argument is `-`, standard output.
pub fn is_dash(p: &Path) -> bool {
    p.as_os_str() == "-"
}

/// An optional output argument where `-` is standard output: `None` for standard output.
pub fn output_arg(p: Option<&Path>) -> Option<&Path> {
    p.filter(|p| !is_dash(p))
}

/// Refuses `-o -` for a command whose log cannot go to standard output: the traced command
/// writes there too.
pub fn refuse_dash_log(p: &Path, command: &str) -> Result<(), Failure> {
    if is_dash(p) {
        return Err(Failure::new(
            2,
            format!(
                "{command} -o -: the log cannot go to standard output, which the traced command writes to; give a file name"
            ),
        ));
    }
    Ok(())
}

/// A file (or standard stream) by device and inode.
type Identity = (u64, u64);

fn identity(p: &Path) -> Option<Identity> {
    std::fs::metadata(p).ok().map(|m| (m.dev(), m.ino()))
}

/// Standard input (0) or output (1) when it is a regular file: its identity.
fn std_identity(fd: std::os::fd::BorrowedFd<'_>) -> Option<Identity> {
    let f = File::from(fd.try_clone_to_owned().ok()?);
    let m = f.metadata().ok()?;
    m.is_file().then(|| (m.dev(), m.ino()))
}

/// Where a command reads from: a file, or standard input (`-`).
pub enum Input<'a> {
    File(&'a Path),
    Stdin,
}

impl Input<'_> {
    fn identity(&self) -> Option<Identity> {
        match self {
            Input::File(p) => identity(p),
            Input::Stdin => {
                use std::os::fd::AsFd;
                std_identity(std::io::stdin().as_fd())
            }
        }
    }

    fn name(&self) -> String {
        match self {
            Input::File(p) => p.display().to_string(),
            Input::Stdin => "standard input".into(),
        }
    }
}

/// Refuses an output (`None`: standard output) that is one of `inputs`: writing it would
/// destroy what the command reads (`export x.vlog -o x.vlog` left 0 bytes), or make it read
/// what it writes (`export x.vlog >> x.vlog`).
pub fn refuse_same(output: Option<&Path>, inputs: &[Input]) -> Result<(), Failure> {
    let (out, name) = match output {
        Some(p) => (identity(p), p.display().to_string()),
        None => {
            use std::os::fd::AsFd;
            (
                std_identity(std::io::stdout().as_fd()),
                "standard output".to_string(),
            )
        }
    };
    let Some(out) = out else {
        return Ok(());
    };
    for input in inputs {
        if input.identity() == Some(out) {
            let same = match (output, input) {
                (Some(p), Input::File(i)) if p == *i => String::new(),
                _ => format!(" (the same file as {})", input.name()),
            };
            return Err(Failure::new(
                2,
                format!(
                    "{name}{same} is an input of this command: writing it would destroy what is read; choose another output"
                ),
            ));
        }
    }
    Ok(())
}

/// A file being written: under a temporary name beside its destination until `commit` (or
/// `publish`) renames it into place; removed if dropped before that.
pub struct NewFile {
    file: File,
    /// The temporary name, until renamed; `None` when written in place.
    temp: Option<tempfile::TempPath>,
    dest: PathBuf,
}

impl NewFile {
    /// Creates the file that will become `dest` (see the module's rules).
    pub fn create(dest: &Path) -> Result<NewFile, Failure> {
        let fail = |e: std::io::Error| Failure::io(dest, "cannot create", e);
        // /dev/stdout and its kind name an open file through /proc: replacing the file they
        // reach would discard what a `>>` redirection meant to keep.
        let in_place = dest.starts_with("/proc")
            || dest.starts_with("/dev/fd")
            || ["/dev/stdout", "/dev/stderr", "/dev/stdin"]
                .iter()
                .any(|d| dest == Path::new(d));
        let real = match std::fs::metadata(dest) {
            Ok(m) if m.is_dir() => {
                return Err(Failure::new(
                    1,
                    format!("cannot create {}: it is a directory", dest.display()),
                ));
            }
            Ok(m) if !m.is_file() || in_place => None,
            // A symbolic link is followed: the file it names is replaced, not the link.
            Ok(_) => Some(std::fs::canonicalize(dest).map_err(fail)?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let dangling = std::fs::symlink_metadata(dest).is_ok();
                (!dangling && !in_place).then(|| dest.to_path_buf())
            }
            Err(e) => return Err(fail(e)),
        };
        let Some(real) = real else {
            return Ok(NewFile {
                file: open_private(dest).map_err(fail)?,
                temp: None,
                dest: dest.to_path_buf(),
            });
        };
        let dir = match real.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let base = real
            .file_name()
            .map_or_else(|| "vigil".into(), |n| n.to_string_lossy());
        let tmp = tempfile::Builder::new()
            .prefix(&format!(".{base}."))
            .suffix(".tmp")
            .rand_bytes(12)
            .permissions(std::fs::Permissions::from_mode(0o600))
            .tempfile_in(dir)
            .map_err(|e| {
                Failure::new(
                    1,
                    format!(
                        "cannot create {}: cannot create a temporary file in {} to write it: {e}",
                        dest.display(),
                        dir.display()
                    ),
                )
            })?;
        let (file, temp) = tmp.into_parts();
        // Exactly 0600, whatever the umask took away.
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(fail)?;
        Ok(NewFile {
            file,
            temp: Some(temp),
            dest: real,
        })
    }

    /// Another handle on the file, to write through.
    pub fn writer(&self) -> Result<File, Failure> {
        self.file
            .try_clone()
            .map_err(|e| Failure::io(&self.dest, "cannot write", e))
    }

    /// Where the file goes: the name the user gave; for an existing file, its canonical path
    /// (a symbolic link: the file it names).
    pub fn dest(&self) -> &Path {
        &self.dest
    }

    /// Where the file is now: its temporary name until renamed into place.
    pub fn path(&self) -> &Path {
        self.temp.as_deref().unwrap_or(&self.dest)
    }

    /// Renames the file into place now (it may still be written). Renaming again does nothing.
    pub fn publish(&mut self) -> Result<(), Failure> {
        let Some(temp) = self.temp.take() else {
            return Ok(());
        };
        temp.persist(&self.dest).map_err(|e| {
            // The temporary file is all there is: keep it, and say where.
            let at = e
                .path
                .keep()
                .map_or_else(|_| "?".into(), |p| p.display().to_string());
            Failure::new(
                1,
                format!(
                    "cannot rename {at} to {}: {}; the file is left at {at}",
                    self.dest.display(),
                    e.error
                ),
            )
        })
    }

    /// Writes the file to disk and renames it into place: the destination is either what it
    /// was or the whole new file, even if the machine stops.
    pub fn commit(mut self) -> Result<(), Failure> {
        if self.temp.is_some() {
            self.file
                .sync_all()
                .map_err(|e| Failure::io(&self.dest, "cannot write", e))?;
        }
        self.publish()
    }
}
