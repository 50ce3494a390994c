//! Decoding a call's arguments at entry (paths resolved, fds labelled) and its outputs at exit,
//! and keeping the fd table and cwd in step with what the call did.

use crate::fdtable::resolve;
use crate::inspect;
use crate::tracer::{Pending, Tracer};
use std::sync::Arc;
use vigil_event::value::{AT_FDCWD, Fd, SockAddr, Socket, Target};
use vigil_event::*;

const O_CLOEXEC: u64 = 0o2000000;
const O_CREAT: u64 = 0o100;
const O_TMPFILE: u64 = 0o20000000;
const AT_EMPTY_PATH: u64 = 0x1000;

/// Arguments the kernel reads as 32-bit C ints/unsigned ints: only the low half counts.
fn is_32bit(kind: ArgKind) -> bool {
    !matches!(
        kind,
        ArgKind::Uint
            | ArgKind::Hex
            | ArgKind::Int
            | ArgKind::CloneFlags
            | ArgKind::MmapFlags
            | ArgKind::MountFlags
            | ArgKind::Prot
            | ArgKind::MremapFlags
    )
}

impl Tracer<'_> {
    /// The target of an fd in `tid`'s table. When not every fd-changing call stops the tracee,
    /// what the table says is checked against the kernel (device and inode) before it is
    /// believed; an fd vigil has no record of is looked up.
    pub(crate) fn fd_target(&mut self, pid: i32, tid: i32, fd: i32) -> Option<Arc<Target>> {
        if fd < 0 {
            return None;
        }
        let files = self.thread_files(tid)?;
        if !self.validate_fds
            && let Some(e) = files.borrow().get(fd)
        {
            return Some(e.target.clone());
        }
        let pidfd = self.procs.get_mut(&pid).and_then(|p| p.pidfd(pid));
        let Some((st, ours)) = inspect::fd_stat(pidfd, fd) else {
            files.borrow_mut().remove(fd); // not open (any more)
            return None;
        };
        if let Some(e) = files.borrow().get(fd)
            && st.is(&e.target)
        {
            return Some(e.target.clone());
        }
        // A duplicate of an fd vigil knows (dup, F_DUPFD) takes that fd's label.
        let known = files.borrow().find(|t| st.is(t));
        let target = known.unwrap_or_else(|| Arc::new(inspect::probe_fd(tid, fd, st, &ours)));
        // Its close-on-exec flag is unknown: marked as if set, exec forgets the entry and the
        // fd is looked up again if it is used after exec.
        files.borrow_mut().insert(fd, target.clone(), true);
        Some(target)
    }

    /// The directory a dirfd argument (already decoded) stands for.
    fn dir_path(&self, pid: i32, tid: i32, dirfd: Option<&Value>) -> Vec<u8> {
        match dirfd {
            Some(Value::Fd(Fd {
                target: Some(t), ..
            })) => match &**t {
                Target::File { path, .. } => path.as_bytes().to_vec(),
                _ => b"/".to_vec(),
            },
            Some(Value::Fd(Fd { num, .. })) => format!("/proc/{pid}/fd/{num}").into_bytes(),
            _ => self.cwd(tid),
        }
    }

    fn cwd(&self, tid: i32) -> Vec<u8> {
        self.threads
            .get(&tid)
            .map(|t| t.fs.borrow().cwd_path().to_vec())
            .unwrap_or_else(|| b"/".to_vec())
    }

    fn read_str(&mut self, pid: i32, addr: u64) -> Result<Vec<u8>, Value> {
        if addr == 0 {
            return Err(Value::Unreadable(0));
        }
        let Some(p) = self.procs.get_mut(&pid) else {
            return Err(Value::Unreadable(addr));
        };
        p.mem.read_cstr(addr).map_err(|_| Value::Unreadable(addr))
    }

    /// Decodes a call's inputs as its signature describes them.
    pub(crate) fn decode_entry(
        &mut self,
        pid: i32,
        tid: i32,
        call: SyscallId,
        raw: &[u64; 6],
    ) -> Args {
        let sig = call.signature();
        let wide = call.abi != Abi::I386;
        let mut args = Args::new();
        for (i, spec) in sig.args.iter().enumerate() {
            let r = raw[i];
            let r32 = if is_32bit(spec.kind) {
                r & 0xffff_ffff
            } else {
                r
            };
            let v = match spec.kind {
                ArgKind::Fd | ArgKind::DirFd => {
                    let fd = r as i32;
                    let target = if fd == AT_FDCWD && spec.kind == ArgKind::DirFd {
                        self.threads.get(&tid).map(|t| t.fs.borrow().cwd.clone())
                    } else {
                        self.fd_target(pid, tid, fd)
                    };
                    Value::Fd(Fd::new(fd, target))
                }
                ArgKind::Path => match self.read_str(pid, r) {
                    Ok(p) => {
                        let base = self.cwd(tid);
                        Value::Str(resolve(&base, &p))
                    }
                    Err(v) => v,
                },
                ArgKind::PathAt(d) => match self.read_str(pid, r) {
                    Ok(p) => {
                        // The dirfd argument comes first and is decoded already.
                        let dirfd = args.get(d as usize);
                        // AT_EMPTY_PATH: an empty path names the dirfd itself.
                        let empty_path_flag = sig
                            .args
                            .iter()
                            .position(|a| {
                                matches!(a.kind, ArgKind::AtFlags | ArgKind::AccessAtFlags)
                            })
                            .is_some_and(|f| raw[f] & AT_EMPTY_PATH != 0);
                        if p.is_empty() && empty_path_flag {
                            Value::Str(Str::from(self.dir_path(pid, tid, dirfd)))
                        } else if p.first() == Some(&b'/') {
                            Value::Str(resolve(b"/", &p))
                        } else {
                            let base = self.dir_path(pid, tid, dirfd);
                            Value::Str(resolve(&base, &p))
                        }
                    }
                    Err(v) => v,
                },
                ArgKind::Str => match self.read_str(pid, r) {
                    Ok(s) => Value::Str(Str::from(s)),
                    Err(v) => v,
                },
                ArgKind::Int | ArgKind::Pid | ArgKind::Signal => {
                    if matches!(spec.name, "offset" | "length" | "offset_high") {
                        Value::Int(r as i64)
                    } else {
                        Value::Int(r as i32 as i64)
                    }
                }
                ArgKind::Argv | ArgKind::Envp => {
                    self.read_argv(pid, r, wide, spec.kind == ArgKind::Envp)
                }
                ArgKind::SockAddr(len_idx) => {
                    let len = (raw[len_idx as usize] as usize).min(128);
                    self.read_sockaddr(pid, r, len)
                }
                ArgKind::Clone3Flags | ArgKind::OpenHowFlags => {
                    match self.procs.get_mut(&pid).map(|p| p.mem.read_u64(r)) {
                        Some(Ok(v)) => Value::Uint(v),
                        _ => Value::Unreadable(r),
                    }
                }
                _ => Value::Uint(r32),
            };
            args.push(v);
        }
        // open's mode is garbage unless the call creates a file.
        if matches!(sig.name, "open" | "openat") {
            let flags_at = if sig.name == "open" { 1 } else { 2 };
            if raw[flags_at] & (O_CREAT | O_TMPFILE) == 0 {
                args.truncate(flags_at + 1);
            }
        }
        args
    }

    fn read_argv(&mut self, pid: i32, addr: u64, wide: bool, count_only: bool) -> Value {
        if addr == 0 {
            return if count_only {
                Value::Uint(0)
            } else {
                Value::List(Arc::from(Vec::new()))
            };
        }
        let Some(p) = self.procs.get_mut(&pid) else {
            return Value::Unreadable(addr);
        };
        let Ok(ptrs) = p.mem.read_ptr_array(addr, wide) else {
            return Value::Unreadable(addr);
        };
        if count_only {
            return Value::Uint(ptrs.len() as u64);
        }
        let items: Vec<Str> = ptrs
            .iter()
            .map(|&a| {
                p.mem
                    .read_cstr(a)
                    .map(Str::from)
                    .unwrap_or_else(|_| Str::from("?"))
            })
            .collect();
        Value::List(items.into())
    }

    fn read_sockaddr(&mut self, pid: i32, addr: u64, len: usize) -> Value {
        if addr == 0 {
            return Value::Unreadable(0);
        }
        let mut buf = vec![0u8; len];
        let Some(p) = self.procs.get_mut(&pid) else {
            return Value::Unreadable(addr);
        };
        if p.mem.read(addr, &mut buf).is_err() {
            return Value::Unreadable(addr);
        }
        match SockAddr::from_raw(&buf) {
            Some(a) => Value::Addr(Arc::new(a)),
            None => Value::Unreadable(addr),
        }
    }

    pub(crate) fn close_fds(&mut self, tid: i32, name: &str, raw: &[u64; 6]) {
        let Some(files) = self.thread_files(tid) else {
            return;
        };
        if name == "close" {
            files.borrow_mut().remove(raw[0] as i32);
        } else {
            const CLOSE_RANGE_UNSHARE: u64 = 2;
            const CLOSE_RANGE_CLOEXEC: u64 = 4;
            if raw[2] & CLOSE_RANGE_UNSHARE != 0 {
                let copy = files.borrow().clone();
                if let Some(t) = self.threads.get_mut(&tid) {
                    t.files = std::rc::Rc::new(std::cell::RefCell::new(copy));
                }
            }
            if let Some(files) = self.thread_files(tid) {
                files.borrow_mut().close_range(
                    raw[0] as u32,
                    raw[1] as u32,
                    raw[2] & CLOSE_RANGE_CLOEXEC != 0,
                );
            }
        }
    }

    /// What a newly created fd refers to: a file labelled with the path it was opened by, or
    /// what the kernel says.
    fn new_target(&mut self, pid: i32, tid: i32, fd: i32, path: Option<Str>) -> Target {
        let pidfd = self.procs.get_mut(&pid).and_then(|p| p.pidfd(pid));
        match (path, inspect::fd_stat(pidfd, fd)) {
            (Some(path), Some((st, _))) if st.kind() != libc::S_IFSOCK => Target::File {
                path,
                dev: st.dev,
                ino: st.ino,
            },
            (_, Some((st, ours))) => inspect::probe_fd(tid, fd, st, &ours),
            (Some(path), None) => Target::File {
                path,
                dev: 0,
                ino: 0,
            },
            (None, None) => Target::Other {
                label: Str::from("?"),
                ino: 0,
            },
        }
    }

    fn new_fd(&mut self, tid: i32, fd: i32, target: Arc<Target>, cloexec: bool) -> Value {
        if let Some(files) = self.thread_files(tid) {
            files.borrow_mut().insert(fd, target.clone(), cloexec);
        }
        Value::Fd(Fd::new(fd, Some(target)))
    }

    fn read_fd_pair(&mut self, pid: i32, addr: u64) -> Option<(i32, i32)> {
        let p = self.procs.get_mut(&pid)?;
        let mut b = [0u8; 8];
        p.mem.read(addr, &mut b).ok()?;
        Some((
            i32::from_ne_bytes([b[0], b[1], b[2], b[3]]),
            i32::from_ne_bytes([b[4], b[5], b[6], b[7]]),
        ))
    }

    fn socket_target(&mut self, pid: i32, fd: i32) -> Socket {
        let pidfd = self.procs.get_mut(&pid).and_then(|p| p.pidfd(pid));
        match inspect::fd_stat(pidfd, fd) {
            Some((st, ours)) => inspect::socket_of(&ours, st.ino),
            None => Socket {
                ino: 0,
                family: 0,
                sock_type: 0,
                local: None,
                remote: None,
            },
        }
    }

    /// After the call: its outputs, and what it changed in vigil's view of the process.
    /// Returns the exit event's arguments (inputs then outputs).
    pub(crate) fn finish_call(&mut self, pid: i32, tid: i32, p: &Pending, ret: i64) -> Args {
        let mut args = p.args.clone();
        let sig = p.call.signature();
        let ok = errno_of(ret).is_none();
        let raw = &p.raw;
        let mut outputs: Vec<Value> = Vec::new();
        let arg = |i: usize| p.args.get(i);
        if ok {
            match sig.name {
                "open" | "openat" | "openat2" | "creat" => {
                    let (path_at, flags) = match sig.name {
                        "open" => (0, raw[1]),
                        "creat" => (0, 0),
                        "openat2" => (1, arg(2).and_then(Value::as_uint).unwrap_or(0)),
                        _ => (1, raw[2]),
                    };
                    let fd = ret as i32;
                    let path = match arg(path_at) {
                        Some(Value::Str(path)) => Some(path.clone()),
                        _ => None,
                    };
                    let target = self.new_target(pid, tid, fd, path);
                    outputs.push(self.new_fd(tid, fd, Arc::new(target), flags & O_CLOEXEC != 0));
                }
                "memfd_create" => {
                    let fd = ret as i32;
                    let target = self.new_target(pid, tid, fd, None);
                    outputs.push(self.new_fd(tid, fd, Arc::new(target), raw[1] & 1 != 0));
                }
                "dup" | "dup2" | "dup3" => {
                    let cloexec = sig.name == "dup3" && raw[2] & O_CLOEXEC != 0;
                    if let Some(files) = self.thread_files(tid) {
                        files.borrow_mut().dup(raw[0] as i32, ret as i32, cloexec);
                    }
                    let target = self.fd_target(pid, tid, ret as i32);
                    outputs.push(Value::Fd(Fd::new(ret as i32, target)));
                }
                "fcntl" => match raw[1] as i32 {
                    libc::F_DUPFD | libc::F_DUPFD_CLOEXEC => {
                        if let Some(files) = self.thread_files(tid) {
                            files.borrow_mut().dup(
                                raw[0] as i32,
                                ret as i32,
                                raw[1] as i32 == libc::F_DUPFD_CLOEXEC,
                            );
                        }
                    }
                    libc::F_SETFD => {
                        if let Some(files) = self.thread_files(tid) {
                            files
                                .borrow_mut()
                                .set_cloexec(raw[0] as i32, raw[2] & libc::FD_CLOEXEC as u64 != 0);
                        }
                    }
                    _ => {}
                },
                "pipe" | "pipe2" => {
                    if let Some((r, w)) = self.read_fd_pair(pid, raw[0]) {
                        let pidfd = self.procs.get_mut(&pid).and_then(|p| p.pidfd(pid));
                        let ino = inspect::fd_stat(pidfd, r).map_or(0, |(s, _)| s.ino);
                        let target = Arc::new(Target::Pipe { ino });
                        let cloexec = sig.name == "pipe2" && raw[1] & O_CLOEXEC != 0;
                        outputs.push(self.new_fd(tid, r, target.clone(), cloexec));
                        outputs.push(self.new_fd(tid, w, target, cloexec));
                    }
                }
                "socket" => {
                    let fd = ret as i32;
                    let mut s = self.socket_target(pid, fd);
                    if s.family == 0 {
                        s.family = raw[0] as u16;
                        s.sock_type = (raw[1] & 0xf) as u16;
                    }
                    outputs.push(self.new_fd(
                        tid,
                        fd,
                        Arc::new(Target::Socket(s)),
                        raw[1] & O_CLOEXEC != 0,
                    ));
                }
                "socketpair" => {
                    if let Some((a, b)) = self.read_fd_pair(pid, raw[3]) {
                        for fd in [a, b] {
                            let s = self.socket_target(pid, fd);
                            let v = self.new_fd(
                                tid,
                                fd,
                                Arc::new(Target::Socket(s)),
                                raw[1] & O_CLOEXEC != 0,
                            );
                            outputs.push(v);
                        }
                    }
                }
                "accept" | "accept4" => {
                    let fd = ret as i32;
                    let s = self.socket_target(pid, fd);
                    outputs.push(
                        s.remote
                            .clone()
                            .map_or(Value::Absent, |a| Value::Addr(Arc::new(a))),
                    );
                    let cloexec = sig.name == "accept4" && raw[3] & O_CLOEXEC != 0;
                    outputs.push(self.new_fd(tid, fd, Arc::new(Target::Socket(s)), cloexec));
                }
                "readlink" | "readlinkat" => {
                    let buf = if sig.name == "readlink" {
                        raw[1]
                    } else {
                        raw[2]
                    };
                    let mut b = vec![0u8; (ret as usize).min(4096)];
                    let v = match self.procs.get_mut(&pid).map(|pr| pr.mem.read(buf, &mut b)) {
                        Some(Ok(())) => Value::Str(Str::from(b)),
                        _ => Value::Unreadable(buf),
                    };
                    outputs.push(v);
                }
                "recvfrom" if raw[4] != 0 => {
                    let len = self
                        .procs
                        .get_mut(&pid)
                        .and_then(|pr| pr.mem.read_u32(raw[5]).ok())
                        .unwrap_or(0) as usize;
                    outputs.push(self.read_sockaddr(pid, raw[4], len.min(128)));
                }
                "chdir" | "fchdir" => {
                    // The kernel's own view: symlinks in the new cwd are resolved.
                    let cwd = Arc::new(inspect::cwd(tid));
                    if let Some(t) = self.threads.get(&tid) {
                        t.fs.borrow_mut().cwd = cwd;
                    }
                }
                "setuid" | "setreuid" | "setresuid" | "setfsuid" | "setgid" | "setregid"
                | "setresgid" | "setfsgid" => {
                    if let (Some(c), Some(pr)) = (inspect::creds(pid), self.procs.get_mut(&pid)) {
                        pr.creds = c;
                    }
                }
                _ => {}
            }
        }
        // connect/bind change the socket: the exit event shows the socket as it is afterwards.
        let connecting = sig.name == "connect" && (ok || ret == -(libc::EINPROGRESS as i64));
        if connecting || (sig.name == "bind" && ok) {
            let fd = raw[0] as i32;
            if let Some(Target::Socket(old)) = self.fd_target(pid, tid, fd).as_deref() {
                let mut s = old.clone();
                let addr = match arg(1) {
                    Some(Value::Addr(a)) => Some((**a).clone()),
                    _ => None,
                };
                let pidfd = self.procs.get_mut(&pid).and_then(|p| p.pidfd(pid));
                if connecting {
                    s.remote = addr;
                    s.local = inspect::socket_local(pidfd, fd).or(s.local);
                } else {
                    s.local = inspect::socket_local(pidfd, fd).or(addr);
                }
                let target = Arc::new(Target::Socket(s));
                if let Some(files) = self.thread_files(tid) {
                    let cloexec = files.borrow().get(fd).is_some_and(|e| e.cloexec);
                    files.borrow_mut().insert(fd, target.clone(), cloexec);
                }
                if let Some(v) = args.get_mut(0) {
                    *v = Value::Fd(Fd::new(fd, Some(target)));
                }
            }
        }
        if p.record && !outputs.is_empty() {
            // Outputs sit after all inputs, absent inputs included.
            args.resize(sig.args.len(), Value::Absent);
            args.extend(outputs);
        }
        while args.last() == Some(&Value::Absent) {
            args.pop();
        }
        args
    }
}
