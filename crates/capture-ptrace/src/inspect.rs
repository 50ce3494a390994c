//! Asking the kernel about a tracee's objects: what an fd is (via /proc and pidfd_getfd), its
//! credentials, its executable. Used when an fd appears that vigil did not see being created
//! (inherited, passed over a socket) and to label new fds with device and inode.

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::Arc;
use vigil_event::value::{SockAddr, Socket};
use vigil_event::{Creds, Str, Target};

#[derive(Clone, Copy)]
pub struct Stat {
    pub dev: u64,
    pub ino: u64,
    pub mode: u32,
}

impl Stat {
    pub fn kind(&self) -> u32 {
        self.mode & libc::S_IFMT
    }

    /// Whether an fd whose stat is this still refers to what `target` describes.
    pub fn is(&self, target: &Target) -> bool {
        match target {
            Target::File { dev, ino, .. } => {
                (*dev, *ino) != (0, 0) && self.dev == *dev && self.ino == *ino
            }
            Target::Pipe { ino } => self.kind() == libc::S_IFIFO && self.ino == *ino,
            Target::Socket(s) => self.kind() == libc::S_IFSOCK && self.ino == s.ino,
            Target::Other { ino, .. } => {
                self.ino == *ino
                    && !matches!(self.kind(), libc::S_IFIFO | libc::S_IFSOCK | libc::S_IFREG)
            }
        }
    }
}

fn c_path(path: &str) -> Option<CString> {
    CString::new(path).ok()
}

pub fn stat(path: &str) -> Option<Stat> {
    let c = c_path(path)?;
    // SAFETY: all-zero bytes are a valid `stat` (integers only).
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid NUL-terminated path and `st` a valid out-pointer.
    if unsafe { libc::stat(c.as_ptr(), &mut st) } != 0 {
        return None;
    }
    Some(Stat {
        dev: st.st_dev,
        ino: st.st_ino,
        mode: st.st_mode,
    })
}

pub fn readlink(path: &str) -> Option<Vec<u8>> {
    std::fs::read_link(path)
        .ok()
        .map(|p| std::os::unix::ffi::OsStringExt::into_vec(p.into_os_string()))
}

/// A tracee's fd, duplicated into vigil with pidfd_getfd (closed on drop; the tracee's own fd
/// is untouched), and its stat. About 3x cheaper than a stat of /proc/PID/fd/N, which walks
/// procfs. `None`: the fd is not open (or the process is gone).
pub fn fd_stat(pidfd: Option<&OwnedFd>, fd: i32) -> Option<(Stat, OwnedFd)> {
    let pidfd = pidfd?;
    // SAFETY: plain syscall with integer arguments.
    let raw = unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), fd, 0) };
    if raw < 0 {
        return None;
    }
    // SAFETY: pidfd_getfd returned a new fd owned by us alone.
    let ours = unsafe { OwnedFd::from_raw_fd(raw as i32) };
    // SAFETY: all-zero bytes are a valid `stat` (integers only).
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: valid fd and out-pointer.
    if unsafe { libc::fstat(ours.as_raw_fd(), &mut st) } != 0 {
        return None;
    }
    Some((
        Stat {
            dev: st.st_dev,
            ino: st.st_ino,
            mode: st.st_mode,
        },
        ours,
    ))
}

/// A tracee's fd duplicated into vigil (pidfd_getfd), e.g. a dirfd to walk a path from.
pub fn fd_dup(pidfd: Option<&OwnedFd>, fd: i32) -> Option<OwnedFd> {
    let pidfd = pidfd?;
    // SAFETY: plain syscall with integer arguments.
    let raw = unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), fd, 0) };
    // SAFETY: on success pidfd_getfd returned a new fd owned by us alone.
    (raw >= 0).then(|| unsafe { OwnedFd::from_raw_fd(raw as i32) })
}

/// The path of a file the kernel cannot name (its path is longer than PATH_MAX). Never a real
/// path: those start with `/`.
pub const UNNAMED: &str = "(unknown: its path is longer than the kernel can name)";

/// What a tracee's fd refers to, as the kernel says: its kind from `st`, its name from the
/// link of `ours` (the duplicate fd_stat made: the same open file), a socket's addresses.
pub fn probe_fd(st: Stat, ours: &OwnedFd) -> Target {
    use std::os::fd::AsFd;
    let Some(link) = crate::walk::fd_name(ours.as_fd()) else {
        // The kernel cannot name it (longer than PATH_MAX): a file all the same, by identity.
        return match st.kind() {
            libc::S_IFSOCK => Target::Socket(socket_of(ours, st.ino)),
            libc::S_IFIFO => Target::Pipe { ino: st.ino },
            _ => Target::File {
                path: Str::from(UNNAMED),
                dev: st.dev,
                ino: st.ino,
            },
        };
    };
    match st.kind() {
        libc::S_IFIFO if link.starts_with(b"pipe:[") => Target::Pipe { ino: st.ino },
        libc::S_IFSOCK => Target::Socket(socket_of(ours, st.ino)),
        _ if link.first() == Some(&b'/') && !link.starts_with(b"/memfd:") => Target::File {
            path: Str::from(link),
            dev: st.dev,
            ino: st.ino,
        },
        _ => Target::Other {
            label: Str::from(link),
            ino: st.ino,
        },
    }
}

/// A pidfd for the process, used to look at its sockets (pidfd_getfd).
pub fn pidfd_open(pid: i32) -> Option<OwnedFd> {
    // SAFETY: plain syscall with integer arguments.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    // SAFETY: on success the kernel returned a new fd that nothing else owns.
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Family, type and addresses of a socket (a duplicate of the tracee's fd).
pub fn socket_of(ours: &OwnedFd, ino: u64) -> Socket {
    Socket {
        ino,
        family: sockopt(ours, libc::SO_DOMAIN).unwrap_or(0) as u16,
        sock_type: sockopt(ours, libc::SO_TYPE).unwrap_or(0) as u16,
        local: sockname(ours, false),
        remote: sockname(ours, true),
    }
}

/// The local address of a tracee's socket (after connect/bind).
pub fn socket_local(pidfd: Option<&OwnedFd>, fd: i32) -> Option<SockAddr> {
    let (_, ours) = fd_stat(pidfd, fd)?;
    sockname(&ours, false)
}

fn sockopt(fd: &OwnedFd, opt: libc::c_int) -> Option<i32> {
    let mut v: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `v`/`len` are valid out-pointers of the sizes given.
    let r = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            opt,
            (&mut v as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    (r == 0).then_some(v)
}

fn sockname(fd: &OwnedFd, peer: bool) -> Option<SockAddr> {
    let mut buf = [0u8; 128];
    let mut len = buf.len() as libc::socklen_t;
    let p = buf.as_mut_ptr().cast::<libc::sockaddr>();
    // SAFETY: `buf` is a valid buffer of `len` bytes for the address.
    let r = unsafe {
        if peer {
            libc::getpeername(fd.as_raw_fd(), p, &mut len)
        } else {
            libc::getsockname(fd.as_raw_fd(), p, &mut len)
        }
    };
    if r != 0 {
        return None;
    }
    let len = (len as usize).min(buf.len());
    match SockAddr::from_raw(&buf[..len]) {
        Some(SockAddr::Unix(p)) if p.is_empty() => None,
        a => a,
    }
}

/// Real and effective uid/gid from /proc/PID/status.
pub fn creds(pid: i32) -> Option<Creds> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let ids = |key: &str| -> Option<(u32, u32)> {
        let line = status.lines().find(|l| l.starts_with(key))?;
        let mut it = line[key.len()..]
            .split_whitespace()
            .filter_map(|x| x.parse().ok());
        Some((it.next()?, it.next()?))
    };
    let (uid, euid) = ids("Uid:")?;
    let (gid, egid) = ids("Gid:")?;
    Some(Creds {
        uid,
        euid,
        gid,
        egid,
    })
}

/// The executable a process runs: its path, device, inode, and whether it is set-uid or
/// set-gid (only then can exec change the process's credentials).
pub fn exe(pid: i32) -> (Str, u64, u64, bool) {
    let path = format!("/proc/{pid}/exe");
    let name = readlink(&path)
        .map(Str::from)
        .unwrap_or_else(|| Str::from("?"));
    match stat(&path) {
        Some(s) => (
            name,
            s.dev,
            s.ino,
            s.mode & (libc::S_ISUID | libc::S_ISGID) != 0,
        ),
        None => (name, 0, 0, true),
    }
}

/// The text of /proc/PID/maps, read into `buf` (emptied first, kept by the caller for the
/// next one): open, read to the end, close, with no stat to size it first (a /proc file has
/// no size). `None` if it cannot be read whole.
pub fn maps(pid: i32, buf: &mut Vec<u8>) -> Option<std::borrow::Cow<'_, str>> {
    use std::io::Read;
    buf.clear();
    let mut f = std::fs::File::open(format!("/proc/{pid}/maps")).ok()?;
    let mut chunk = [0u8; 8192];
    loop {
        match f.read(&mut chunk).ok()? {
            0 => break,
            n => buf.extend_from_slice(&chunk[..n]),
        }
    }
    Some(String::from_utf8_lossy(buf))
}

/// argv as the process now has it, from /proc/PID/cmdline (whole: the kernel bounds it).
pub fn cmdline(pid: i32) -> Option<Arc<[Str]>> {
    use std::io::Read;
    // open, read until a short read, close: no stat to size the buffer first.
    let mut f = std::fs::File::open(format!("/proc/{pid}/cmdline")).ok()?;
    let mut raw = vec![0u8; 64 * 1024];
    let mut n = 0;
    loop {
        let k = f.read(&mut raw[n..]).ok()?;
        n += k;
        if k == 0 || n < raw.len() {
            break;
        }
        raw.resize(raw.len() * 2, 0);
    }
    raw.truncate(n);
    let mut v: Vec<Str> = raw.split(|&b| b == 0).map(Str::from).collect();
    if v.last().is_some_and(|s| s.is_empty()) {
        v.pop();
    }
    Some(v.into())
}

/// The cwd of a process as a directory target. A cwd the kernel cannot name (longer than
/// PATH_MAX, or the process is gone) is `Other` with a label saying so, never a wrong path.
pub fn cwd(pid: i32) -> Target {
    let path = format!("/proc/{pid}/cwd");
    let (dev, ino) = stat(&path).map_or((0, 0), |s| (s.dev, s.ino));
    match readlink(&path) {
        Some(name) if name.first() == Some(&b'/') => Target::File {
            path: Str::from(name),
            dev,
            ino,
        },
        _ => Target::Other {
            label: Str::from("cwd:(unknown: its path is longer than the kernel can name)"),
            ino,
        },
    }
}

/// The process's root, for walking paths as it would.
pub fn root(tid: i32) -> Option<crate::fs::Root> {
    let c = CString::new(format!("/proc/{tid}/root")).ok()?;
    // SAFETY: `c` is a valid C string.
    let fd = unsafe {
        libc::open(
            c.as_ptr(),
            libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return None;
    }
    // SAFETY: the kernel returned a new fd that nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: a zeroed stat is a valid out-buffer.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `fd` is open and `st` a valid out-pointer.
    let same_dir = unsafe { libc::fstat(fd.as_raw_fd(), &mut st) } == 0
        && stat("/").is_some_and(|s| (s.dev, s.ino) == (st.st_dev, st.st_ino));
    let same_ns = readlink(&format!("/proc/{tid}/ns/mnt")) == readlink("/proc/self/ns/mnt");
    Some(crate::fs::Root {
        fd,
        same_as_vigil: same_dir && same_ns,
    })
}

/// The cwd opened with O_PATH (works however long its path is).
pub fn cwd_fd(tid: i32) -> Option<OwnedFd> {
    let c = CString::new(format!("/proc/{tid}/cwd")).ok()?;
    // SAFETY: `c` is a valid C string.
    let fd = unsafe {
        libc::open(
            c.as_ptr(),
            libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    // SAFETY: on success the kernel returned a new fd that nothing else owns.
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The pid a pidfd of vigil's refers to (from /proc/self/fdinfo; -1 once the process is gone).
pub fn pidfd_pid(fd: &OwnedFd) -> Option<i32> {
    let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{}", fd.as_raw_fd())).ok()?;
    let line = info.lines().find(|l| l.starts_with("Pid:"))?;
    line[4..].trim().parse().ok()
}

/// The pages of `[start, end)` in process `pid` that are present and anonymous: in a private
/// file mapping, the pages the process wrote (copied on write). From /proc/PID/pagemap (bit
/// 63 present, bit 61 file-backed or shared); empty when it cannot be read.
pub fn private_copies(pid: i32, start: u64, end: u64) -> Vec<u64> {
    use std::os::unix::fs::FileExt;
    let Ok(f) = std::fs::File::open(format!("/proc/{pid}/pagemap")) else {
        return Vec::new();
    };
    let pages = ((end.saturating_sub(start)) / 4096).min(1 << 20) as usize;
    let mut buf = vec![0u8; pages * 8];
    let Ok(n) = f.read_at(&mut buf, (start / 4096) * 8) else {
        return Vec::new();
    };
    buf[..n - n % 8]
        .chunks_exact(8)
        .enumerate()
        .filter_map(|(i, b)| {
            let e = u64::from_le_bytes(b.try_into().ok()?);
            (e & (1 << 63) != 0 && e & (1 << 61) == 0).then_some(start + 4096 * i as u64)
        })
        .collect()
}

/// The file position of a process's fd (`pos:` in /proc/PID/fdinfo/FD).
pub fn fd_pos(pid: i32, fd: i32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/fdinfo/{fd}")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("pos:"))
        .and_then(|v| v.trim().parse().ok())
}

/// The number of runnable tasks on the machine right now (the 4th field of /proc/loadavg,
/// `running/total`), or None if it cannot be read.
pub fn runnable_tasks() -> Option<u64> {
    let mut buf = [0u8; 128];
    let n = {
        use std::io::Read;
        let mut f = std::fs::File::open("/proc/loadavg").ok()?;
        f.read(&mut buf).ok()?
    };
    let text = std::str::from_utf8(buf.get(..n)?).ok()?;
    let field = text.split_ascii_whitespace().nth(3)?;
    field.split('/').next()?.parse().ok()
}
