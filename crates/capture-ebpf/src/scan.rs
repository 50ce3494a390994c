//! Processes already running when the capture starts, read from /proc: their tree, exe,
//! argv, credentials, cwd and open fds, so they are known from the first event they make.

use crate::decode::ProcInfo;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::sync::Arc;
use vigil_event::value::{Socket, Target};
use vigil_event::{Creds, Str};
use vigil_procstate::{FdTable, FsState};

/// One running process as /proc showed it.
#[derive(Debug)]
pub struct Existing {
    pub pid: u32,
    pub ppid: u32,
    pub comm: Vec<u8>,
    /// Its start time in clock ticks since boot (parents start before their children).
    pub start: u64,
    pub info: ProcInfo,
    pub files: FdTable,
    pub fs: FsState,
    pub tids: Vec<u32>,
    /// Its cgroup (v2) path, as /proc/PID/cgroup gives it (`/system.slice/x.service`).
    pub cgroup: Option<Vec<u8>>,
}

pub fn link(path: &str) -> Option<Vec<u8>> {
    std::fs::read_link(path)
        .ok()
        .map(|p| p.as_os_str().as_bytes().to_vec())
}

/// pid, comm, ppid and start time from /proc/PID/stat (comm may hold spaces and parens).
pub fn stat(pid: u32) -> Option<(Vec<u8>, u32, u64)> {
    let s = std::fs::read(format!("/proc/{pid}/stat")).ok()?;
    let open = s.iter().position(|c| *c == b'(')?;
    let close = s.iter().rposition(|c| *c == b')')?;
    let comm = s.get(open + 1..close)?.to_vec();
    let rest = std::str::from_utf8(s.get(close + 2..)?).ok()?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    // After comm: state(0) ppid(1) ... starttime is field 22 of the line, 20 here.
    let ppid = f.get(1)?.parse().ok()?;
    let start = f.get(19)?.parse().ok()?;
    Some((comm, ppid, start))
}

fn creds(pid: u32) -> Creds {
    let mut c = Creds::default();
    if let Ok(s) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
        for l in s.lines() {
            let nums = |l: &str| -> Vec<u32> {
                l.split_whitespace()
                    .skip(1)
                    .filter_map(|x| x.parse().ok())
                    .collect()
            };
            if l.starts_with("Uid:") {
                let n = nums(l);
                c.uid = n.first().copied().unwrap_or(0);
                c.euid = n.get(1).copied().unwrap_or(0);
            } else if l.starts_with("Gid:") {
                let n = nums(l);
                c.gid = n.first().copied().unwrap_or(0);
                c.egid = n.get(1).copied().unwrap_or(0);
            }
        }
    }
    c
}

/// What fd `fd` of `pid` refers to, by its link and the object's identity.
pub fn fd_target(pid: u32, fd: i32) -> Option<Target> {
    let path = format!("/proc/{pid}/fd/{fd}");
    let l = link(&path)?;
    let md = std::fs::metadata(&path).ok();
    Some(label(
        &l,
        md.as_ref().map_or(0, |m| m.dev()),
        md.as_ref().map_or(0, |m| m.ino()),
    ))
}

/// An fd's target from its /proc link (`pipe:[N]`, `socket:[N]`, an absolute path, or an
/// anonymous inode's or memfd's label) and the object's identity.
pub fn label(link: &[u8], dev: u64, ino: u64) -> Target {
    if link.starts_with(b"pipe:[") {
        Target::Pipe { ino }
    } else if link.starts_with(b"socket:[") {
        Target::Socket(Socket {
            ino,
            family: 0,
            sock_type: 0,
            local: None,
            remote: None,
        })
    } else if link.first() == Some(&b'/') && !link.starts_with(b"/memfd:") {
        Target::File {
            path: Str::from(link),
            dev,
            ino,
        }
    } else {
        Target::Other {
            label: Str::from(link),
            ino,
        }
    }
}

fn dir_target(path: &str) -> Option<Target> {
    let l = link(path)?;
    let md = std::fs::metadata(path).ok();
    Some(Target::File {
        path: Str::from(l),
        dev: md.as_ref().map_or(0, |m| m.dev()),
        ino: md.as_ref().map_or(0, |m| m.ino()),
    })
}

/// The cgroup v2 path of a process (`0::/path` in /proc/PID/cgroup).
pub fn cgroup_of(pid: u32) -> Option<Vec<u8>> {
    let s = std::fs::read(format!("/proc/{pid}/cgroup")).ok()?;
    s.split(|c| *c == b'\n')
        .find_map(|l| l.strip_prefix(b"0::"))
        .map(<[u8]>::to_vec)
}

/// One process, or `None` when it is gone (or a kernel thread, which makes no syscalls).
pub fn read(pid: u32) -> Option<Existing> {
    let (comm, ppid, start) = stat(pid)?;
    let exe = link(&format!("/proc/{pid}/exe"))?; // kernel threads have none
    let argv: Vec<Str> = std::fs::read(format!("/proc/{pid}/cmdline"))
        .unwrap_or_default()
        .split(|c| *c == 0)
        .filter(|a| !a.is_empty())
        .map(Str::from)
        .collect();
    let mut files = FdTable::new();
    if let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) {
        for e in dir.flatten() {
            let Some(fd) = e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else {
                continue;
            };
            if let Some(t) = fd_target(pid, fd) {
                // Its close-on-exec flag (fdinfo) is not read: marked set, so exec forgets it.
                files.insert(fd, Arc::new(t), true);
            }
        }
    }
    let fs = FsState {
        cwd: dir_target(&format!("/proc/{pid}/cwd")).map(Arc::new),
        root: dir_target(&format!("/proc/{pid}/root")).map(Arc::new),
    };
    let tids = std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse().ok()))
                .collect()
        })
        .unwrap_or_default();
    Some(Existing {
        pid,
        ppid,
        comm,
        start,
        info: ProcInfo {
            exe: Str::from(exe),
            argv: argv.into(),
            creds: creds(pid),
        },
        files,
        fs,
        tids,
        cgroup: cgroup_of(pid),
    })
}

/// Every pid in /proc.
pub fn pids() -> Vec<u32> {
    std::fs::read_dir("/proc")
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse().ok()))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_reads_whole() {
        let me = read(std::process::id()).expect("our own /proc entry");
        assert_eq!(me.pid, std::process::id());
        assert!(
            me.files.get(0).is_some() || me.files.get(1).is_some() || me.files.get(2).is_some()
        );
        assert!(me.fs.cwd_path().is_some_and(|p| p.first() == Some(&b'/')));
        assert!(me.tids.contains(&me.pid));
        assert!(!me.info.argv.is_empty());
    }
}
