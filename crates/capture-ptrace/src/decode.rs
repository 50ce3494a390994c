//! Decoding a call's arguments at entry (paths resolved, fds labelled) and its outputs at exit,
//! and keeping the fd table and cwd in step with what the call did.

use crate::fs::Root;
use crate::inspect;
use crate::view::{Pending, View};
use crate::walk;
use smallvec::SmallVec;
use std::os::fd::{AsFd, OwnedFd};
use std::rc::Rc;
use std::sync::Arc;
use syscalls::Sysno;
use vigil_event::value::{AT_FDCWD, Fd, SockAddr, Socket, Target};
use vigil_event::*;

const O_CLOEXEC: u64 = 0o2000000;
const O_CREAT: u64 = 0o100;
const O_EXCL: u64 = 0o200;
const O_TRUNC: u64 = 0o1000;
const O_NOFOLLOW: u64 = 0o400000;
const O_TMPFILE: u64 = 0o20000000;
const AT_SYMLINK_NOFOLLOW: u64 = 0x100;
const AT_SYMLINK_FOLLOW: u64 = 0x400;
const AT_EMPTY_PATH: u64 = 0x1000;
const UMOUNT_NOFOLLOW: u64 = 8;

/// For each path argument of a call (its index), the device and inode of what it named when
/// vigil walked it at entry (`None`: nothing there yet, or not walkable).
pub type Walked = SmallVec<[(usize, Option<(u64, u64)>); 2]>;

impl View<'_> {
    /// The target of an fd in `tid`'s table. When not every fd-changing call stops the tracee,
    /// what the table says is checked against the kernel (device and inode) before it is
    /// believed; an fd vigil has no record of is looked up.
    pub(crate) fn fd_target(&mut self, pid: i32, tid: i32, fd: i32) -> Option<Arc<Target>> {
        self.fd_target_dup(pid, tid, fd).0
    }

    /// `fd_target`, and the duplicate of the fd vigil made to check it, if it made one (a
    /// dirfd's duplicate is where the path relative to it is walked from).
    pub(crate) fn fd_target_dup(
        &mut self,
        pid: i32,
        tid: i32,
        fd: i32,
    ) -> (Option<Arc<Target>>, Option<OwnedFd>) {
        if fd < 0 {
            return (None, None);
        }
        let Some(files) = self.thread_files(tid) else {
            return (None, None);
        };
        if !self.validate_fds
            && let Some(e) = files.borrow().get(fd)
        {
            return (Some(e.target.clone()), None);
        }
        let pidfd = self.procs.get_mut(&pid).and_then(|p| p.pidfd(pid));
        let Some((st, ours)) = inspect::fd_stat(pidfd, fd) else {
            files.borrow_mut().remove(fd); // not open (any more)
            return (None, None);
        };
        if let Some(e) = files.borrow().get(fd)
            && st.is(&e.target)
        {
            return (Some(e.target.clone()), Some(ours));
        }
        // A duplicate of an fd vigil knows (dup, F_DUPFD) takes that fd's label.
        let known = files.borrow().find(|t| st.is(t));
        let target = known.unwrap_or_else(|| Arc::new(inspect::probe_fd(st, &ours)));
        // Its close-on-exec flag is unknown: marked as if set, exec forgets the entry and the
        // fd is looked up again if it is used after exec.
        files.borrow_mut().insert(fd, target.clone(), true);
        (Some(target), Some(ours))
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

    /// The root and (for a relative path) the cwd of a thread, opened once and kept until
    /// they change.
    fn fs_handles(&mut self, tid: i32, want_cwd: bool) -> Option<(Rc<Root>, Option<Rc<OwnedFd>>)> {
        let fs = self.threads.get(&tid)?.fs.clone();
        let mut fs = fs.borrow_mut();
        let root = match &fs.root {
            Some(r) => r.clone(),
            None => {
                let r = Rc::new(inspect::root(tid)?);
                fs.root = Some(r.clone());
                r
            }
        };
        let cwd = if want_cwd {
            match &fs.cwd_fd {
                Some(c) => Some(c.clone()),
                None => {
                    let c = inspect::cwd_fd(tid).map(Rc::new);
                    fs.cwd_fd = c.clone();
                    c
                }
            }
        } else {
            None
        };
        Some((root, cwd))
    }

    /// An open (open, openat, or their io_uring twin) for reading only, creating nothing: its
    /// exit holds the kernel's answer for the path, and no guard concerns it.
    fn opens_for_reading(call: SyscallId, raw: &[u64; 6]) -> bool {
        if !matches!(call.canonical(), Some(Sysno::open | Sysno::openat)) {
            return false;
        }
        let sig = call.signature();
        let Some(f) = sig.args.iter().position(|a| a.kind == ArgKind::OpenFlags) else {
            return false;
        };
        raw[f] & (3 | O_CREAT | O_TRUNC | O_TMPFILE) == 0
    }

    /// Whether the kernel follows a symlink in the last component of the path argument at
    /// `index`, given the call's flags.
    fn follows(sig: &Signature, raw: &[u64; 6], index: usize, kind: ArgKind) -> bool {
        let first_path = sig.args.iter().position(|a| a.kind.is_path()) == Some(index);
        let mut follow = kind.follows_last();
        for (i, a) in sig.args.iter().enumerate() {
            let bits = raw[i];
            match a.kind {
                ArgKind::OpenFlags
                    if bits & O_NOFOLLOW != 0 || bits & (O_CREAT | O_EXCL) == O_CREAT | O_EXCL =>
                {
                    follow = false;
                }
                ArgKind::AtFlags | ArgKind::AccessAtFlags if first_path => {
                    if bits & AT_SYMLINK_NOFOLLOW != 0 {
                        follow = false;
                    }
                    if bits & AT_SYMLINK_FOLLOW != 0 {
                        follow = true;
                    }
                }
                ArgKind::UmountFlags if bits & UMOUNT_NOFOLLOW != 0 => follow = false,
                _ => {}
            }
        }
        follow
    }

    /// What a path argument names: walked as the kernel will walk it for this thread
    /// (walk.rs), with the program's own string beside it. Also the device and inode of what
    /// it names, when that exists.
    #[allow(clippy::too_many_arguments)]
    fn path_value(
        &mut self,
        pid: i32,
        tid: i32,
        args: &Args,
        sig: &Signature,
        raw: &[u64; 6],
        index: usize,
        kind: ArgKind,
        given: Vec<u8>,
        dir_dup: Option<&OwnedFd>,
        lazy: bool,
    ) -> (Value, Option<(u64, u64)>) {
        let given_v = Value::Str(Str::from(given.as_slice()));
        let dirfd = kind
            .dirfd_arg()
            .map(|d| raw[d] as i32)
            .filter(|&fd| fd != AT_FDCWD);
        let dir_target = kind
            .dirfd_arg()
            .and_then(|d| args.get(d))
            .and_then(|v| v.as_fd())
            .and_then(|fd| fd.target.clone());
        if given.is_empty() {
            let empty_path = sig
                .args
                .iter()
                .position(|a| matches!(a.kind, ArgKind::AtFlags | ArgKind::AccessAtFlags))
                .is_some_and(|f| raw[f] & AT_EMPTY_PATH != 0);
            // AT_EMPTY_PATH: the path names the dirfd's own object (fexecve of a memfd).
            return match (empty_path, &dir_target) {
                (true, Some(t)) => {
                    let name = match &**t {
                        Target::File { path, .. } => path.clone(),
                        other => Str::from(other.to_string()),
                    };
                    (
                        Value::resolved(Value::Str(name), given_v, Resolution::Exact),
                        Some((t.dev(), t.ino())).filter(|id| *id != (0, 0)),
                    )
                }
                _ => (
                    Value::resolved(given_v, Value::Absent, Resolution::Unknown),
                    None,
                ),
            };
        }
        let absolute = given[0] == b'/';
        if lazy {
            // Nothing decides on this path before the call, and the call's exit will hold the
            // kernel's own answer: the text folded onto what it is relative to, marked so.
            return (self.folded(tid, absolute, dirfd, &dir_target, given), None);
        }
        let follow = Self::follows(sig, raw, index, kind);
        let handles = self.fs_handles(tid, !absolute && dirfd.is_none());
        let walked = handles.and_then(|(root, cwd)| {
            let owned_dir;
            let base = if absolute {
                root.fd.as_fd()
            } else if let Some(fd) = dirfd {
                match dir_dup {
                    Some(d) => d.as_fd(),
                    None => {
                        let pidfd = self.procs.get_mut(&pid).and_then(|p| p.pidfd(pid));
                        owned_dir = inspect::fd_dup(pidfd, fd)?;
                        owned_dir.as_fd()
                    }
                }
            } else {
                cwd.as_ref()?.as_fd()
            };
            let ctx = walk::Ctx {
                root: root.fd.as_fd(),
                same_root: root.same_as_vigil,
                pid,
                tid,
                vigil_proc: &self.vigil_proc,
                top_symlinks: &self.top_symlinks,
            };
            Some(walk::resolve(&ctx, base, &given, follow))
        });
        match walked {
            Some(Ok(walk::Found {
                path: Some(path),
                id,
            })) => (
                Value::resolved(Value::Str(Str::from(path)), given_v, Resolution::Exact),
                id,
            ),
            Some(Ok(walk::Found { path: None, id })) => (
                Value::resolved(given_v, Value::Absent, Resolution::Unknown),
                id,
            ),
            // Not walkable (the call will fail): the text folded onto what it is relative to.
            _ => (self.folded(tid, absolute, dirfd, &dir_target, given), None),
        }
    }

    /// A path folded as text onto its cwd or dirfd (`.`, `..`, `//`), marked lexical; marked
    /// unknown when the directory it is relative to has no name vigil knows.
    fn folded(
        &self,
        tid: i32,
        absolute: bool,
        dirfd: Option<i32>,
        dir_target: &Option<Arc<Target>>,
        given: Vec<u8>,
    ) -> Value {
        let base: Option<Vec<u8>> = if absolute {
            Some(Vec::new())
        } else if dirfd.is_some() {
            dir_target
                .as_deref()
                .and_then(|t| t.path())
                .filter(|p| p.as_bytes().first() == Some(&b'/'))
                .map(|p| p.as_bytes().to_vec())
        } else {
            self.threads
                .get(&tid)
                .and_then(|t| t.fs.borrow().cwd_path().map(<[u8]>::to_vec))
        };
        let given_v = Value::Str(Str::from(given.as_slice()));
        match base {
            Some(b) => Value::resolved(
                Value::Str(Str::from(walk::fold(&b, &given))),
                given_v,
                Resolution::Lexical,
            ),
            None => Value::resolved(given_v, Value::Absent, Resolution::Unknown),
        }
    }

    /// Decodes a call's inputs as its signature describes them. Also returns, for each path
    /// argument, the device and inode of what it names (when that exists), for the checks at
    /// entry and the comparison with the kernel's answer at exit.
    pub(crate) fn decode_entry(
        &mut self,
        pid: i32,
        tid: i32,
        call: SyscallId,
        raw: &[u64; 6],
    ) -> (Args, Walked) {
        let sig = call.signature();
        let wide = call.abi != Abi::I386;
        let lazy = !self.exact_entry && Self::opens_for_reading(call, raw);
        let mut args = Args::new();
        let mut walked = Walked::new();
        // Duplicates of dirfd arguments made while checking them, to walk paths from.
        let mut dir_dups: SmallVec<[(usize, OwnedFd); 2]> = SmallVec::new();
        for (i, spec) in sig.args.iter().enumerate() {
            let r = raw[i];
            let r32 = if spec.kind.is_c_int() {
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
                        let (t, dup) = self.fd_target_dup(pid, tid, fd);
                        if let (Some(d), ArgKind::DirFd) = (dup, spec.kind) {
                            dir_dups.push((i, d));
                        }
                        t
                    };
                    Value::Fd(Fd::new(fd, target))
                }
                k if k.is_path() => match self.read_str(pid, r) {
                    Ok(p) => {
                        let dup = k
                            .dirfd_arg()
                            .and_then(|d| dir_dups.iter().find(|(j, _)| *j == d))
                            .map(|(_, f)| f);
                        let (v, id) =
                            self.path_value(pid, tid, &args, sig, raw, i, k, p, dup, lazy);
                        walked.push((i, id));
                        v
                    }
                    Err(v) => v,
                },
                ArgKind::Str => match self.read_str(pid, r) {
                    Ok(s) => Value::Str(Str::from(s)),
                    Err(v) => v,
                },
                ArgKind::Pid => self.pid_value(pid, r as i32),
                ArgKind::Int | ArgKind::Signal => {
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
                ArgKind::UringSetupFlags => {
                    // struct io_uring_params: sq_entries, cq_entries, flags.
                    match self.procs.get_mut(&pid).map(|p| p.mem.read_u32(r + 8)) {
                        Some(Ok(v)) => Value::Uint(v as u64),
                        _ => Value::Unreadable(r),
                    }
                }
                _ => Value::Uint(r32),
            };
            args.push(v);
        }
        // open's mode is garbage unless the call creates a file.
        if let Some(f) = sig.args.iter().position(|a| a.kind == ArgKind::OpenFlags)
            && sig.args.get(f + 1).is_some_and(|a| a.kind == ArgKind::Mode)
            && raw[f] & (O_CREAT | O_TMPFILE) == 0
        {
            args.truncate(f + 1);
        }
        (args, walked)
    }

    /// argv as the program passed it: whole up to the kernel's own limits (what the kernel can
    /// execute is recorded whole); past them (the call will fail with E2BIG) what was kept and
    /// exactly how much was not. envp (`count_only`) is stored as its number of entries.
    fn read_argv(&mut self, pid: i32, addr: u64, wide: bool, count_only: bool) -> Value {
        use crate::memory::{
            MAX_ARG_STRLEN, MAX_ARGV_BYTES, MEASURE_ARGV_BYTES, MEASURE_ARGV_ITEMS,
        };
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
        let Ok(ptrs) = p.mem.read_ptr_array(addr, wide, MEASURE_ARGV_ITEMS) else {
            return Value::Unreadable(addr);
        };
        if count_only {
            return Value::Uint(ptrs.len() as u64);
        }
        let ptr_size = if wide { 8 } else { 4 };
        let mut exact = ptrs.len() < MEASURE_ARGV_ITEMS;
        let mut items: Vec<Str> = Vec::new();
        let (mut used, mut cut_items, mut cut_bytes, mut measured) = (0usize, 0u64, 0u64, 0usize);
        let mut measure = |p: &mut crate::memory::Memory, a: u64, exact: &mut bool| -> u64 {
            match p.cstr_len(a, MEASURE_ARGV_BYTES.saturating_sub(measured)) {
                Some(n) => {
                    // Bytes of the strings, NULs not counted (the log's rule for a cut).
                    measured += n + 1;
                    n as u64
                }
                None => {
                    *exact = false;
                    0
                }
            }
        };
        for (i, &a) in ptrs.iter().enumerate() {
            let room = MAX_ARGV_BYTES.saturating_sub(used + ptr_size);
            if room == 0 {
                // Past what the kernel accepts: count the rest without keeping it.
                for &rest in &ptrs[i..] {
                    cut_items += 1;
                    cut_bytes += measure(&mut p.mem, rest, &mut exact);
                }
                break;
            }
            match p.mem.read_cstr_max(a, MAX_ARG_STRLEN.min(room)) {
                Ok((s, ended)) => {
                    used += s.len() + 1 + ptr_size;
                    if !ended {
                        // Longer than the kernel takes: the rest of it is not recorded.
                        cut_bytes += measure(&mut p.mem, a + s.len() as u64, &mut exact);
                    }
                    items.push(Str::from(s));
                }
                Err(_) => {
                    // An unreadable argument (the call fails with EFAULT): nothing after it.
                    cut_items += (ptrs.len() - i) as u64;
                    exact = false;
                    break;
                }
            }
        }
        let list = Value::List(items.into());
        if cut_items == 0 && cut_bytes == 0 && exact {
            return list;
        }
        Value::Cut(Arc::new(vigil_event::Cut {
            kept: list,
            items: cut_items,
            bytes: cut_bytes,
            exact,
        }))
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

    /// close and close_range release fds whatever the call returns: done at entry.
    pub(crate) fn close_fds(&mut self, tid: i32, call: Sysno, raw: &[u64; 6]) {
        let Some(files) = self.thread_files(tid) else {
            return;
        };
        if call == Sysno::close {
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

    /// What a newly created fd refers to, from the kernel's own answer: its kind and identity
    /// (fstat of a duplicate) and its name (the duplicate's link). `fallback` labels it if the
    /// process is gone before vigil can look.
    fn new_target(&mut self, pid: i32, fd: i32, fallback: Option<Str>) -> Target {
        let pidfd = self.procs.get_mut(&pid).and_then(|p| p.pidfd(pid));
        match (inspect::fd_stat(pidfd, fd), fallback) {
            (Some((st, ours)), _) => inspect::probe_fd(st, &ours),
            (None, Some(path)) => Target::File {
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

    /// `new_target` for an fd an open created: when the kernel opened the very object vigil's
    /// walk named at entry (same device and inode), that walk's name is the kernel's, and
    /// asking for it again is saved.
    fn new_target_known(
        &mut self,
        pid: i32,
        fd: i32,
        walked_path: Option<Str>,
        walked_id: Option<(u64, u64)>,
    ) -> Target {
        let pidfd = self.procs.get_mut(&pid).and_then(|p| p.pidfd(pid));
        match inspect::fd_stat(pidfd, fd) {
            Some((st, _)) if walked_id == Some((st.dev, st.ino)) && walked_path.is_some() => {
                match walked_path {
                    Some(path)
                        if matches!(st.kind(), libc::S_IFREG | libc::S_IFDIR)
                            && path.as_bytes().first() == Some(&b'/') =>
                    {
                        Target::File {
                            path,
                            dev: st.dev,
                            ino: st.ino,
                        }
                    }
                    _ => self.new_target(pid, fd, None),
                }
            }
            Some((st, ours)) => inspect::probe_fd(st, &ours),
            None => self.new_target(pid, fd, walked_path),
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

    /// Walks the path arguments of a call whose entry only folded them.
    fn walk_at_exit(&mut self, pid: i32, tid: i32, p: &Pending, args: &mut Args) {
        let sig = p.call.signature();
        for (i, spec) in sig.args.iter().enumerate() {
            if !spec.kind.is_path() {
                continue;
            }
            let Some(v) = p.args.get(i) else { continue };
            if v.resolution() == Resolution::Exact {
                continue;
            }
            let given = v.given().unwrap_or(v.plain());
            let Some(given) = given.as_str().map(|g| g.as_bytes().to_vec()) else {
                continue;
            };
            let (value, _) = self.path_value(
                pid, tid, &p.args, sig, &p.raw, i, spec.kind, given, None, false,
            );
            if let Some(slot) = args.get_mut(i) {
                *slot = value;
            }
        }
    }

    /// An open that succeeded: the fd it created as the kernel reports it, and the path
    /// argument replaced by the kernel's own answer (the name of what was opened), the
    /// program's string kept beside it. When vigil's walk at entry named another object, the
    /// path changed between vigil's look and the kernel's (a thread rewriting the buffer, a
    /// symlink swapped): that is reported as an action, and the kernel's answer stands.
    fn finish_open(
        &mut self,
        pid: i32,
        tid: i32,
        p: &Pending,
        args: &mut Args,
        fd: i32,
        flags: u64,
    ) -> Value {
        let sig = p.call.signature();
        let path_at = sig
            .args
            .iter()
            .enumerate()
            .find(|(_, a)| a.kind.is_path())
            .map(|(i, a)| (i, a.kind));
        let entry_path = path_at.and_then(|(i, _)| p.args.get(i));
        let fallback = entry_path.and_then(Value::as_str).cloned();
        let walked_id = path_at
            .and_then(|(i, _)| p.walked.iter().find(|(a, _)| *a == i))
            .and_then(|(_, id)| *id);
        let target = self.new_target_known(pid, fd, fallback, walked_id);
        if let Some((i, kind)) = path_at {
            let kernel_name = match &target {
                // Unnamed by the kernel: what vigil recorded at entry stands.
                Target::File { path, .. } if path.as_bytes() == inspect::UNNAMED.as_bytes() => None,
                Target::File { path, .. } => Some(path.clone()),
                Target::Pipe { .. } | Target::Socket(_) | Target::Other { .. } => {
                    Some(Str::from(target.to_string()))
                }
            };
            let kernel_id = match &target {
                Target::File { dev, ino, .. } if (*dev, *ino) != (0, 0) => Some((*dev, *ino)),
                _ => None,
            };
            let given = entry_path
                .and_then(Value::given)
                .cloned()
                .or_else(|| entry_path.map(|v| v.plain().clone()))
                .unwrap_or(Value::Absent);
            if let (Some(name), Some(slot)) = (kernel_name, args.get_mut(i)) {
                let entry_name = entry_path.and_then(Value::as_str);
                let tmpfile = flags & O_TMPFILE == O_TMPFILE;
                // An entry that was not walked (lazy, or not walkable) has no walk to compare.
                let walked_exact = entry_path.is_some_and(|v| v.resolution() == Resolution::Exact);
                let changed = if walked_exact {
                    !tmpfile
                        && match (walked_id, kernel_id) {
                            (Some(a), Some(b)) => a != b,
                            (Some(_), None) => true,
                            // Created by the call (nothing there at entry): the names must agree.
                            (None, _) => entry_name.is_some_and(|e| {
                                let k = name.as_bytes();
                                let k = k.strip_suffix(b" (deleted)").unwrap_or(k);
                                e.as_bytes() != k
                            }),
                        }
                } else {
                    // A lazy entry (nothing decided there): when asked, compare after the
                    // call. The folded name being the kernel's is the common case and costs
                    // nothing; otherwise the program's string is walked now.
                    !tmpfile
                        && self.report_path_changes
                        && kernel_id.is_some()
                        && entry_name.is_some_and(|e| e.as_bytes() != name.as_bytes())
                        && self.walks_elsewhere(pid, tid, p, i, kind, &given, kernel_id)
                };
                if changed {
                    let before = entry_name.map_or_else(|| "?".to_string(), |e| e.escaped());
                    self.generated_actions.push((
                        pid as u32,
                        tid as u32,
                        EventKind::Action(Action {
                            action: Str::from("path-changed"),
                            by: Str::from(""),
                            target_pid: pid as u32,
                            detail: Str::from(format!(
                                "{}: vigil resolved {before} at entry, the kernel opened {} (the path changed during the call)",
                                p.call,
                                name.escaped()
                            )),
                        }),
                    ));
                }
                *slot = Value::resolved(Value::Str(name), given, Resolution::Exact);
            }
        }
        self.new_fd(tid, fd, Arc::new(target), flags & O_CLOEXEC != 0)
    }

    /// Whether the program's string for path argument `i` (`given`), walked now, ends at an
    /// object other than `kernel_id`, the one the kernel opened: the path changed during the
    /// call. A string that cannot be walked says nothing.
    #[allow(clippy::too_many_arguments)]
    fn walks_elsewhere(
        &mut self,
        pid: i32,
        tid: i32,
        p: &Pending,
        i: usize,
        kind: ArgKind,
        given: &Value,
        kernel_id: Option<(u64, u64)>,
    ) -> bool {
        let Some(g) = given.as_str().map(|g| g.as_bytes().to_vec()) else {
            return false;
        };
        let sig = p.call.signature();
        let (_, id) = self.path_value(pid, tid, &p.args, sig, &p.raw, i, kind, g, None, false);
        id.is_some() && id != kernel_id
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
        let Some(call) = p.call.canonical() else {
            return args;
        };
        if !ok && !self.exact_entry && Self::opens_for_reading(p.call, raw) {
            // A failed open's path was not walked at entry (nothing decided there) and no fd
            // holds the kernel's answer: walk it now, so a refused attempt on a file is
            // recorded against that file.
            self.walk_at_exit(pid, tid, p, &mut args);
        }
        if ok {
            match call {
                Sysno::open | Sysno::openat | Sysno::openat2 | Sysno::creat => {
                    let flags = match call {
                        Sysno::open => raw[1],
                        Sysno::creat => O_CREAT | 1 | 0o1000,
                        Sysno::openat2 => arg(2).and_then(Value::as_uint).unwrap_or(0),
                        _ => raw[2],
                    };
                    let v = self.finish_open(pid, tid, p, &mut args, ret as i32, flags);
                    outputs.push(v);
                }
                Sysno::io_uring_setup => {
                    let fd = ret as i32;
                    let target = self.new_target(pid, fd, None);
                    outputs.push(self.new_fd(tid, fd, Arc::new(target), true));
                }
                Sysno::memfd_create => {
                    let fd = ret as i32;
                    let target = self.new_target(pid, fd, None);
                    outputs.push(self.new_fd(tid, fd, Arc::new(target), raw[1] & 1 != 0));
                }
                Sysno::dup | Sysno::dup2 | Sysno::dup3 => {
                    let cloexec = call == Sysno::dup3 && raw[2] & O_CLOEXEC != 0;
                    if let Some(files) = self.thread_files(tid) {
                        files.borrow_mut().dup(raw[0] as i32, ret as i32, cloexec);
                    }
                    let target = self.fd_target(pid, tid, ret as i32);
                    outputs.push(Value::Fd(Fd::new(ret as i32, target)));
                }
                Sysno::fcntl => match raw[1] as i32 {
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
                Sysno::pipe | Sysno::pipe2 => {
                    if let Some((r, w)) = self.read_fd_pair(pid, raw[0]) {
                        let pidfd = self.procs.get_mut(&pid).and_then(|p| p.pidfd(pid));
                        let ino = inspect::fd_stat(pidfd, r).map_or(0, |(s, _)| s.ino);
                        let target = Arc::new(Target::Pipe { ino });
                        let cloexec = call == Sysno::pipe2 && raw[1] & O_CLOEXEC != 0;
                        outputs.push(self.new_fd(tid, r, target.clone(), cloexec));
                        outputs.push(self.new_fd(tid, w, target, cloexec));
                    }
                }
                Sysno::socket => {
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
                Sysno::socketpair => {
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
                Sysno::accept | Sysno::accept4 => {
                    let fd = ret as i32;
                    let s = self.socket_target(pid, fd);
                    outputs.push(
                        s.remote
                            .clone()
                            .map_or(Value::Absent, |a| Value::Addr(Arc::new(a))),
                    );
                    let cloexec = call == Sysno::accept4 && raw[3] & O_CLOEXEC != 0;
                    outputs.push(self.new_fd(tid, fd, Arc::new(Target::Socket(s)), cloexec));
                }
                Sysno::readlink | Sysno::readlinkat => {
                    let buf = if call == Sysno::readlink {
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
                Sysno::recvfrom if raw[4] != 0 => {
                    let len = self
                        .procs
                        .get_mut(&pid)
                        .and_then(|pr| pr.mem.read_u32(raw[5]).ok())
                        .unwrap_or(0) as usize;
                    outputs.push(self.read_sockaddr(pid, raw[4], len.min(128)));
                }
                Sysno::chdir | Sysno::fchdir => {
                    // The kernel's own view: symlinks in the new cwd are resolved.
                    let cwd = Arc::new(inspect::cwd(tid));
                    if let Some(t) = self.threads.get(&tid) {
                        let mut fs = t.fs.borrow_mut();
                        fs.cwd = cwd;
                        fs.cwd_fd = None;
                    }
                }
                Sysno::chroot | Sysno::pivot_root | Sysno::setns | Sysno::unshare => {
                    // The root (or the mount namespace it is seen through) may have changed.
                    if let Some(t) = self.threads.get(&tid) {
                        let mut fs = t.fs.borrow_mut();
                        fs.root = None;
                        fs.cwd_fd = None;
                        fs.cwd = Arc::new(inspect::cwd(tid));
                    }
                }
                Sysno::setuid
                | Sysno::setreuid
                | Sysno::setresuid
                | Sysno::setfsuid
                | Sysno::setgid
                | Sysno::setregid
                | Sysno::setresgid
                | Sysno::setfsgid => {
                    if let (Some(c), Some(pr)) = (inspect::creds(pid), self.procs.get_mut(&pid)) {
                        pr.creds = c;
                    }
                }
                _ => {}
            }
        }
        // connect/bind change the socket: the exit event shows the socket as it is afterwards.
        let connecting = call == Sysno::connect && (ok || ret == -(libc::EINPROGRESS as i64));
        if connecting || (call == Sysno::bind && ok) {
            let fd = raw[0] as i32;
            if let Some(Target::Socket(old)) = self.fd_target(pid, tid, fd).as_deref() {
                let mut s = old.clone();
                let addr = match arg(1).map(Value::plain) {
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
