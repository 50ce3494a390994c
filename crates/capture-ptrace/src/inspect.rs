//! Asking the kernel about a tracee's objects: what an fd is (via /proc and pidfd_getfd), its
//! credentials, its executable. Used when an fd appears that vigil did not see being created
//! (inherited, passed over a socket) and to label new fds with device and inode.

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::Arc;
use vigil_event::value::{SockAddr, Socket};
use vigil_event::{Creds, Str, Target};

pub struct Stat {
    pub dev: u64,
    pub ino: u64,
}

fn c_path(path: &str) -> Option<CString> {
    CString::new(path).ok()
}

pub fn stat(path: &str) -> Option<Stat> {
    let c = c_path(path)?;
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid NUL-terminated path and `st` a valid out-pointer.
    if unsafe { libc::stat(c.as_ptr(), &mut st) } != 0 {
        return None;
    }
    Some(Stat {
        dev: st.st_dev,
        ino: st.st_ino,
    })
}

pub fn readlink(path: &str) -> Option<Vec<u8>> {
    std::fs::read_link(path)
        .ok()
        .map(|p| std::os::unix::ffi::OsStringExt::into_vec(p.into_os_string()))
}

pub fn fd_path(pid: i32, fd: i32) -> String {
    format!("/proc/{pid}/fd/{fd}")
}

/// A new fd opened by path: a file target labelled with the path vigil resolved.
pub fn file_target(pid: i32, fd: i32, path: Str) -> Target {
    match stat(&fd_path(pid, fd)) {
        Some(st) => Target::File {
            path,
            dev: st.dev,
            ino: st.ino,
        },
        None => Target::File {
            path,
            dev: 0,
            ino: 0,
        },
    }
}

/// What an fd vigil has no record of refers to, from /proc/PID/fd/N.
pub fn probe_fd(pid: i32, fd: i32, pidfd: Option<&OwnedFd>) -> Option<Target> {
    let link_path = fd_path(pid, fd);
    let link = readlink(&link_path)?;
    let ino_in = |prefix: &[u8]| -> Option<u64> {
        let rest = link.strip_prefix(prefix)?.strip_suffix(b"]")?;
        std::str::from_utf8(rest).ok()?.parse().ok()
    };
    if let Some(ino) = ino_in(b"pipe:[") {
        return Some(Target::Pipe { ino });
    }
    if let Some(ino) = ino_in(b"socket:[") {
        return Some(Target::Socket(probe_socket(pidfd, fd, ino)));
    }
    let st = stat(&link_path);
    let (dev, ino) = st.map_or((0, 0), |s| (s.dev, s.ino));
    if link.first() == Some(&b'/') && !link.starts_with(b"/memfd:") {
        Some(Target::File {
            path: Str::from(link),
            dev,
            ino,
        })
    } else {
        Some(Target::Other {
            label: Str::from(link),
            ino,
        })
    }
}

/// A pidfd for the process, used to look at its sockets (pidfd_getfd).
pub fn pidfd_open(pid: i32) -> Option<OwnedFd> {
    // SAFETY: plain syscall with integer arguments.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    // SAFETY: on success the kernel returned a new fd that nothing else owns.
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Family, type and addresses of a tracee's socket, by duplicating it into vigil with
/// pidfd_getfd (the tracee's fd table is untouched).
pub fn probe_socket(pidfd: Option<&OwnedFd>, fd: i32, ino: u64) -> Socket {
    let mut s = Socket {
        ino,
        family: 0,
        sock_type: 0,
        local: None,
        remote: None,
    };
    let Some(pidfd) = pidfd else { return s };
    // SAFETY: plain syscall with integer arguments.
    let raw = unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), fd, 0) };
    if raw < 0 {
        return s;
    }
    // SAFETY: pidfd_getfd returned a new fd owned by us alone.
    let ours = unsafe { OwnedFd::from_raw_fd(raw as i32) };
    s.family = sockopt(&ours, libc::SO_DOMAIN).unwrap_or(0) as u16;
    s.sock_type = sockopt(&ours, libc::SO_TYPE).unwrap_or(0) as u16;
    s.local = sockname(&ours, false);
    s.remote = sockname(&ours, true);
    s
}

/// The local address of a tracee's socket (after connect/bind).
pub fn socket_local(pidfd: Option<&OwnedFd>, fd: i32) -> Option<SockAddr> {
    let pidfd = pidfd?;
    // SAFETY: plain syscall with integer arguments.
    let raw = unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), fd, 0) };
    if raw < 0 {
        return None;
    }
    // SAFETY: pidfd_getfd returned a new fd owned by us alone.
    let ours = unsafe { OwnedFd::from_raw_fd(raw as i32) };
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

/// The executable a process runs, with its device and inode.
pub fn exe(pid: i32) -> (Str, u64, u64) {
    let path = format!("/proc/{pid}/exe");
    let name = readlink(&path)
        .map(Str::from)
        .unwrap_or_else(|| Str::from("?"));
    let (dev, ino) = stat(&path).map_or((0, 0), |s| (s.dev, s.ino));
    (name, dev, ino)
}

/// argv as the process now has it, from /proc/PID/cmdline.
pub fn cmdline(pid: i32) -> Arc<[Str]> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let mut v: Vec<Str> = raw.split(|&b| b == 0).map(Str::from).collect();
    if v.last().is_some_and(|s| s.is_empty()) {
        v.pop();
    }
    v.into()
}

/// The cwd of a process as a directory target.
pub fn cwd(pid: i32) -> Target {
    let path = format!("/proc/{pid}/cwd");
    let name = readlink(&path)
        .map(Str::from)
        .unwrap_or_else(|| Str::from("/"));
    let (dev, ino) = stat(&path).map_or((0, 0), |s| (s.dev, s.ino));
    Target::File {
        path: name,
        dev,
        ino,
    }
}
