//! Resolving a path the way the kernel will for a traced process: from its root, its cwd or a
//! dirfd, through symlinks and `..`, in its own view of the file system.
//!
//! Folding a path as text records the wrong file as soon as a symlink is involved
//! (`/tmp/x/l/../shadow` with `l -> /etc/ssl` is /etc/shadow, not /tmp/x/shadow). vigil instead
//! asks the kernel: it opens the path with O_PATH from a duplicate of the tracee's own cwd,
//! dirfd or root, and reads back the opened object's name and identity.
//!
//! Two things differ when vigil, not the tracee, does the walk, and both are handled:
//! - `/proc/self` and `/proc/thread-self` (and `/dev/fd`, `/dev/stdin`..., symlinks into them)
//!   name the *walking* process. The fast walk refuses magic links (RESOLVE_NO_MAGICLINKS) and
//!   is checked for having ended in vigil's own /proc directory; either sends the path to the
//!   slow walk, which goes one component at a time and puts the tracee's pid and tid in place
//!   of `self` and `thread-self`, so `/dev/fd/63` reaches the tracee's fd 63 (a pipe, say).
//! - A tracee with another root (chroot) or mount namespace resolves absolute paths and
//!   absolute symlinks against its own root: the fast walk uses RESOLVE_IN_ROOT from the
//!   tracee's root for absolute paths, and the slow walk restarts from that root at every
//!   absolute symlink.
//!
//! The walk is done by vigil before the call (so rules can decide on the path, deny included)
//! and can race with the tracee changing its file system in between; calls that create an fd
//! are checked again at their exit against the kernel's own answer (the fd's link).

use std::ffi::CString;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// What a path names, as the kernel resolves it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    /// The absolute path in vigil's view of the file system (for a chrooted tracee, the path
    /// outside its root); `None` when it is too long for the kernel to name (PATH_MAX).
    /// Objects without a name (a pipe reached through /dev/fd/N) are named by their kind:
    /// `pipe:[1234]`.
    pub path: Option<Vec<u8>>,
    /// Device and inode of the object, when it exists (not for a name about to be created).
    pub id: Option<(u64, u64)>,
}

/// Where the tracee stands, for one walk.
pub struct Ctx<'a> {
    /// The tracee's root directory (O_PATH).
    pub root: BorrowedFd<'a>,
    /// Its root and mount namespace are vigil's: an absolute path means the same to both.
    pub same_root: bool,
    /// Substituted for `/proc/self` and `/proc/thread-self`.
    pub pid: i32,
    pub tid: i32,
    /// `/proc/<vigil's pid>`: a fast walk that ends below it went through `/proc/self`.
    pub vigil_proc: &'a [u8],
    /// First components of absolute paths seen to be symlinks (`/lib -> usr/lib` on a
    /// merged-/usr system): paths under them skip the symlink-free attempt, which would fail.
    /// Only which attempt comes first depends on it, never the answer.
    pub top_symlinks: &'a std::cell::RefCell<std::collections::HashSet<Vec<u8>>>,
}

const MAX_SYMLINKS: u32 = 40;
const PROC_SUPER_MAGIC: i64 = 0x9fa0;
const PROC_ROOT_INO: u64 = 1;

/// `struct open_how` (linux/openat2.h).
#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

fn errno() -> i32 {
    std::io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

fn openat2(dir: BorrowedFd, path: &[u8], flags: i32, resolve: u64) -> Result<OwnedFd, i32> {
    let c = CString::new(path).map_err(|_| libc::EINVAL)?;
    let how = OpenHow {
        flags: (flags | libc::O_CLOEXEC) as u64,
        mode: 0,
        resolve,
    };
    // SAFETY: `c` is a valid C string, `how` a valid open_how of the size passed.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            dir.as_raw_fd(),
            c.as_ptr(),
            &how as *const OpenHow,
            std::mem::size_of::<OpenHow>(),
        )
    };
    if fd < 0 {
        return Err(errno());
    }
    // SAFETY: the kernel returned a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

fn openat(dir: BorrowedFd, name: &[u8], flags: i32) -> Result<OwnedFd, i32> {
    let c = CString::new(name).map_err(|_| libc::EINVAL)?;
    // SAFETY: `c` is a valid C string; openat only reads it.
    let fd = unsafe { libc::openat(dir.as_raw_fd(), c.as_ptr(), flags | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(errno());
    }
    // SAFETY: the kernel returned a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn fstat(fd: BorrowedFd) -> Option<libc::stat> {
    // SAFETY: a zeroed stat is a valid out-buffer.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: valid fd and out-pointer.
    (unsafe { libc::fstat(fd.as_raw_fd(), &mut st) } == 0).then_some(st)
}

fn is_proc(fd: BorrowedFd) -> bool {
    // SAFETY: a zeroed statfs is a valid out-buffer.
    let mut sf: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: valid fd and out-pointer.
    unsafe { libc::fstatfs(fd.as_raw_fd(), &mut sf) == 0 && sf.f_type == PROC_SUPER_MAGIC }
}

/// The content of a symlink opened with O_PATH|O_NOFOLLOW.
fn readlink_fd(fd: BorrowedFd) -> Result<Vec<u8>, i32> {
    let mut buf = vec![0u8; libc::PATH_MAX as usize + 1];
    // SAFETY: `buf` is valid for writes of its length; "" with the fd reads the link itself.
    let n = unsafe {
        libc::readlinkat(
            fd.as_raw_fd(),
            c"".as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    if n < 0 {
        return Err(errno());
    }
    buf.truncate(n as usize);
    Ok(buf)
}

/// vigil's own /proc/self/fd, opened once: reading a link in it is one component of procfs to
/// walk instead of four.
fn own_fd_dir() -> Option<BorrowedFd<'static>> {
    static DIR: std::sync::OnceLock<Option<OwnedFd>> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let c = CString::new("/proc/self/fd").ok()?;
        // SAFETY: `c` is a valid C string.
        let fd = unsafe {
            libc::open(
                c.as_ptr(),
                libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
            )
        };
        // SAFETY: on success the kernel returned a new fd that nothing else owns.
        (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd) })
    })
    .as_ref()
    .map(|f| f.as_fd())
}

/// The kernel's name for an open fd of vigil's (`/proc/self/fd/N`): its path, or `pipe:[N]`
/// and the like. `None` when the name is longer than the kernel will give (PATH_MAX).
pub fn fd_name(fd: BorrowedFd) -> Option<Vec<u8>> {
    let dir = own_fd_dir()?;
    let name = CString::new(fd.as_raw_fd().to_string()).ok()?;
    let mut buf = vec![0u8; libc::PATH_MAX as usize];
    // SAFETY: `name` is a valid C string and `buf` is valid for writes of its length.
    let n = unsafe {
        libc::readlinkat(
            dir.as_raw_fd(),
            name.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    if n < 0 || n as usize >= buf.len() {
        return None;
    }
    buf.truncate(n as usize);
    Some(buf)
}

fn found(fd: BorrowedFd) -> Found {
    Found {
        path: fd_name(fd),
        id: fstat(fd).map(|st| (st.st_dev, st.st_ino)),
    }
}

fn dup(fd: BorrowedFd) -> Result<OwnedFd, i32> {
    fd.try_clone_to_owned()
        .map_err(|e| e.raw_os_error().unwrap_or(libc::EBADF))
}

/// Resolves `path` for the tracee, relative to `base` (its cwd or a dirfd; ignored for an
/// absolute path), following a symlink in the last component when `follow`. A last component
/// that does not exist (a name about to be created) resolves to its resolved parent plus the
/// name. `Err(errno)` when the path cannot be walked (a middle component missing, not a
/// directory, a symlink loop): the call will fail the same way, and the caller folds the text.
pub fn resolve(ctx: &Ctx, base: BorrowedFd, path: &[u8], follow: bool) -> Result<Found, i32> {
    if path.is_empty() {
        return Err(libc::ENOENT);
    }
    if let Some(f) = no_symlinks(ctx, base, path, follow) {
        return Ok(f);
    }
    match fast(ctx, base, path, follow) {
        Some(Ok(f)) => return Ok(f),
        Some(Err(e)) if e != libc::ENOENT => return Err(e),
        Some(Err(_)) => {
            // The last component may not exist yet, or be a dangling symlink that a following
            // call would create the target of: the slow walk tells them apart.
        }
        None => {}
    }
    slow(ctx, base, path, follow)
}

/// The common case: an absolute path that meets no symlink (RESOLVE_NO_SYMLINKS refuses any).
/// Then `..` and `.` mean what the text says, and the name is the text folded onto `/`: one
/// openat2 and one fstat, no readlink. (Not for a relative path: the name vigil holds for a cwd
/// or dirfd may be stale, the directory renamed since; the kernel names the result instead.)
fn no_symlinks(ctx: &Ctx, base: BorrowedFd, path: &[u8], follow: bool) -> Option<Found> {
    if !ctx.same_root || path[0] != b'/' {
        return None;
    }
    let top = path[1..].split(|&b| b == b'/').next().unwrap_or_default();
    if ctx.top_symlinks.borrow().contains(top) {
        return None;
    }
    let nofollow = if follow { 0 } else { libc::O_NOFOLLOW };
    let fd = match openat2(
        base,
        path,
        libc::O_PATH | nofollow,
        libc::RESOLVE_NO_SYMLINKS | libc::RESOLVE_NO_MAGICLINKS,
    ) {
        Ok(fd) => fd,
        Err(libc::ELOOP) => {
            // Remember a first component that is itself a symlink.
            if !top.is_empty()
                && openat(ctx.root, top, libc::O_PATH | libc::O_NOFOLLOW)
                    .ok()
                    .and_then(|f| fstat(f.as_fd()))
                    .is_some_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFLNK)
            {
                ctx.top_symlinks.borrow_mut().insert(top.to_vec());
            }
            return None;
        }
        Err(_) => return None,
    };
    let st = fstat(fd.as_fd())?;
    let name = fold(b"/", path);
    if name.len() >= libc::PATH_MAX as usize {
        return None;
    }
    Some(Found {
        path: Some(name),
        id: Some((st.st_dev, st.st_ino)),
    })
}

/// One openat2 for the whole path when it is exact; `None` when the slow walk must decide.
fn fast(ctx: &Ctx, base: BorrowedFd, path: &[u8], follow: bool) -> Option<Result<Found, i32>> {
    let absolute = path[0] == b'/';
    if !ctx.same_root && !absolute {
        // An absolute symlink inside would escape to vigil's root.
        return None;
    }
    let (dir, resolve) = if absolute && !ctx.same_root {
        (ctx.root, libc::RESOLVE_IN_ROOT)
    } else {
        (base, 0)
    };
    let nofollow = if follow { 0 } else { libc::O_NOFOLLOW };
    match openat2(
        dir,
        path,
        libc::O_PATH | nofollow,
        resolve | libc::RESOLVE_NO_MAGICLINKS,
    ) {
        Ok(fd) => {
            let f = found(fd.as_fd());
            // Ended in vigil's own /proc directory: the walk went through /proc/self.
            let own = f.path.as_deref().is_none_or(|p| {
                p.starts_with(ctx.vigil_proc)
                    && matches!(p.get(ctx.vigil_proc.len()), None | Some(b'/'))
            });
            if own { None } else { Some(Ok(f)) }
        }
        // A magic link (/proc/N/fd/M, cwd, root, exe) on the way, or a symlink loop.
        Err(libc::ELOOP) | Err(libc::EXDEV) => None,
        Err(e) => Some(Err(e)),
    }
}

use std::os::fd::AsFd;

/// The component-by-component walk, with `/proc/self` standing for the tracee.
fn slow(ctx: &Ctx, base: BorrowedFd, path: &[u8], follow: bool) -> Result<Found, i32> {
    let root_id = fstat(ctx.root).map(|st| (st.st_dev, st.st_ino));
    let mut comps: std::collections::VecDeque<Vec<u8>> = std::collections::VecDeque::new();
    push_front(&mut comps, path);
    let mut cur = if path[0] == b'/' {
        dup(ctx.root)?
    } else {
        dup(base)?
    };
    let mut links = 0u32;
    while let Some(mut c) = comps.pop_front() {
        if c.is_empty() || c == b"." {
            continue;
        }
        let last = comps.iter().all(|x| x.is_empty() || x == b".");
        if c == b".." {
            let at_root = fstat(cur.as_fd()).map(|st| (st.st_dev, st.st_ino)) == root_id;
            if !at_root {
                cur = openat(cur.as_fd(), b"..", libc::O_PATH | libc::O_DIRECTORY)?;
            }
            continue;
        }
        if is_proc(cur.as_fd()) && fstat(cur.as_fd()).is_some_and(|st| st.st_ino == PROC_ROOT_INO) {
            if c == b"self" {
                c = ctx.pid.to_string().into_bytes();
            } else if c == b"thread-self" {
                comps.push_front(ctx.tid.to_string().into_bytes());
                comps.push_front(b"task".to_vec());
                c = ctx.pid.to_string().into_bytes();
            }
        }
        let next = match openat(cur.as_fd(), &c, libc::O_PATH | libc::O_NOFOLLOW) {
            Ok(fd) => fd,
            Err(libc::ENOENT) if last => {
                // A name about to be created: its directory, resolved, and the name.
                let mut f = found(cur.as_fd());
                f.path = f.path.map(|mut p| {
                    if p != b"/" {
                        p.push(b'/');
                    }
                    p.extend_from_slice(&c);
                    p
                });
                f.id = None;
                return Ok(f);
            }
            Err(e) => return Err(e),
        };
        let st = fstat(next.as_fd()).ok_or(libc::EIO)?;
        if st.st_mode & libc::S_IFMT == libc::S_IFLNK && (!last || follow) {
            links += 1;
            if links > MAX_SYMLINKS {
                return Err(libc::ELOOP);
            }
            if is_proc(next.as_fd()) {
                // A magic link (/proc/PID/fd/N, cwd, root, exe): it jumps to an object, not to
                // a path. The directory is the tracee's (self was replaced), so following it
                // from vigil reaches the tracee's object.
                cur = openat(cur.as_fd(), &c, libc::O_PATH)?;
                continue;
            }
            let target = readlink_fd(next.as_fd())?;
            if target.first() == Some(&b'/') {
                cur = dup(ctx.root)?;
            }
            push_front(&mut comps, &target);
            continue;
        }
        cur = next;
    }
    Ok(found(cur.as_fd()))
}

fn push_front(comps: &mut std::collections::VecDeque<Vec<u8>>, path: &[u8]) {
    for c in path.split(|&b| b == b'/').rev() {
        comps.push_front(c.to_vec());
    }
}

/// Joins a path to a base directory and folds `.`, `..` and `//` as text: the fallback when
/// the walk is not possible (the call will fail), marked as such in the event.
pub fn fold(base: &[u8], path: &[u8]) -> Vec<u8> {
    let mut parts: Vec<&[u8]> = Vec::new();
    let start: &[u8] = if path.first() == Some(&b'/') {
        b""
    } else {
        base
    };
    for comp in start
        .split(|&b| b == b'/')
        .chain(path.split(|&b| b == b'/'))
    {
        match comp {
            b"" | b"." => {}
            b".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    let mut out = Vec::with_capacity(path.len() + base.len() + 1);
    for p in &parts {
        out.push(b'/');
        out.extend_from_slice(p);
    }
    if out.is_empty() {
        out.push(b'/');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn ctx<'a>(
        root: &'a OwnedFd,
        proc_dir: &'a [u8],
        top: &'a std::cell::RefCell<std::collections::HashSet<Vec<u8>>>,
    ) -> Ctx<'a> {
        Ctx {
            root: root.as_fd(),
            same_root: true,
            pid: std::process::id() as i32,
            tid: std::process::id() as i32,
            vigil_proc: proc_dir,
            top_symlinks: top,
        }
    }

    fn dir(p: &std::path::Path) -> OwnedFd {
        openat(
            std::fs::File::open("/").unwrap().as_fd(),
            p.as_os_str().as_encoded_bytes(),
            libc::O_PATH | libc::O_DIRECTORY,
        )
        .unwrap()
    }

    #[test]
    fn follows_symlinks_and_dotdot_as_the_kernel_does() {
        let t = std::env::temp_dir().join(format!("vigil-walk-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&t);
        std::fs::create_dir_all(t.join("real/sub")).unwrap();
        std::fs::write(t.join("real/secret"), b"x").unwrap();
        symlink(t.join("real/sub"), t.join("l")).unwrap();
        symlink("real/secret", t.join("s")).unwrap();
        symlink(t.join("real/new"), t.join("dangling")).unwrap();
        let root = dir(std::path::Path::new("/"));
        let base = dir(&t);
        // Another pid for /proc/self: this test's own /proc dir must not count as "vigil's".
        let top = Default::default();
        let c = ctx(&root, b"/proc/0", &top);
        let real = |p: &str| t.join(p).into_os_string().into_encoded_bytes();
        // `l/..` is real/, not the directory holding l.
        let f = resolve(&c, base.as_fd(), b"l/../secret", true).unwrap();
        assert_eq!(f.path.unwrap(), real("real/secret"));
        assert!(f.id.is_some());
        // A symlink as the last component: followed or named itself.
        assert_eq!(
            resolve(&c, base.as_fd(), b"s", true).unwrap().path.unwrap(),
            real("real/secret")
        );
        assert_eq!(
            resolve(&c, base.as_fd(), b"s", false)
                .unwrap()
                .path
                .unwrap(),
            real("s")
        );
        // A name to be created; through a dangling symlink when the call follows it.
        let f = resolve(&c, base.as_fd(), b"real/newfile", true).unwrap();
        assert_eq!(f.path.unwrap(), real("real/newfile"));
        assert_eq!(f.id, None);
        assert_eq!(
            resolve(&c, base.as_fd(), b"dangling", true)
                .unwrap()
                .path
                .unwrap(),
            real("real/new")
        );
        assert_eq!(
            resolve(&c, base.as_fd(), b"dangling", false)
                .unwrap()
                .path
                .unwrap(),
            real("dangling")
        );
        // An absolute symlink-free path is folded: the same answers as the kernel's names.
        let abs = |p: &str| format!("{}/{p}", t.display());
        assert_eq!(
            resolve(
                &c,
                base.as_fd(),
                abs("real/./sub/../secret").as_bytes(),
                true
            )
            .unwrap()
            .path
            .unwrap(),
            real("real/secret")
        );
        assert_eq!(
            resolve(&c, base.as_fd(), abs("l/../secret").as_bytes(), true)
                .unwrap()
                .path
                .unwrap(),
            real("real/secret")
        );
        // A missing directory on the way: not walkable.
        assert_eq!(
            resolve(&c, base.as_fd(), b"nodir/x", true),
            Err(libc::ENOENT)
        );
        std::fs::remove_dir_all(&t).unwrap();
    }

    #[test]
    fn proc_self_names_the_tracee_not_vigil() {
        // Pretend this process is the tracee and "vigil" is pid 1: /proc/self/fd/N must reach
        // this process's fd N, through the slow walk.
        let root = dir(std::path::Path::new("/"));
        let (r, _w) = nix::unistd::pipe().unwrap();
        let me = std::process::id();
        let proc_dir = format!("/proc/{me}").into_bytes();
        let c = Ctx {
            root: root.as_fd(),
            same_root: true,
            pid: me as i32,
            tid: me as i32,
            vigil_proc: &proc_dir,
            top_symlinks: &Default::default(),
        };
        let p = format!("/dev/fd/{}", r.as_raw_fd());
        let f = resolve(&c, root.as_fd(), p.as_bytes(), true).unwrap();
        let name = String::from_utf8(f.path.unwrap()).unwrap();
        assert!(name.starts_with("pipe:["), "{name}");
    }

    #[test]
    fn folds_as_text() {
        assert_eq!(fold(b"/home/u", b"a/../b/./c"), b"/home/u/b/c");
        assert_eq!(fold(b"/home/u", b"/etc//passwd"), b"/etc/passwd");
        assert_eq!(fold(b"/", b"../.."), b"/");
    }
}
