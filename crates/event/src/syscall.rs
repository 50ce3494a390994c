//! The syscall table: what vigil knows about each system call it decodes.
//!
//! A `Signature` names the arguments and says how each is decoded (a path, an fd, open flags...).
//! Events store argument values positionally; names come from here. Backends use the kinds to
//! decide what to read from the tracee; the renderer uses them to print flags by name.

use std::fmt;
use std::sync::OnceLock;
use syscalls::Sysno;

/// The system call ABI a call was made through. A 64-bit process can still make i386 calls
/// (`int 0x80`) with different numbers, a classic way to slip past a naive filter; vigil traces
/// and names them instead of missing them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum Abi {
    #[default]
    X86_64,
    I386,
    X32,
    /// An operation submitted through io_uring (`nr` is its opcode): see `crate::uring`.
    IoUring,
}

impl Abi {
    pub fn name(self) -> &'static str {
        match self {
            Abi::X86_64 => "x86_64",
            Abi::I386 => "i386",
            Abi::X32 => "x32",
            Abi::IoUring => "io_uring",
        }
    }

    pub fn from_name(s: &str) -> Option<Abi> {
        match s {
            "x86_64" => Some(Abi::X86_64),
            "i386" => Some(Abi::I386),
            "x32" => Some(Abi::X32),
            "io_uring" => Some(Abi::IoUring),
            _ => None,
        }
    }
}

/// Bit set of syscall classes, as used by `--syscalls`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Class(pub u8);

impl Class {
    pub const NONE: Class = Class(0);
    pub const PROCESS: Class = Class(1);
    pub const FILE: Class = Class(2);
    pub const NETWORK: Class = Class(4);
    pub const MEMORY: Class = Class(8);
    pub const IDENTITY: Class = Class(16);

    pub const NAMES: [(&'static str, Class); 5] = [
        ("process", Class::PROCESS),
        ("file", Class::FILE),
        ("network", Class::NETWORK),
        ("memory", Class::MEMORY),
        ("identity", Class::IDENTITY),
    ];

    pub fn contains(self, other: Class) -> bool {
        self.0 & other.0 == other.0 && other.0 != 0
    }

    pub fn intersects(self, other: Class) -> bool {
        self.0 & other.0 != 0
    }

    pub fn from_name(name: &str) -> Option<Class> {
        Class::NAMES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, c)| *c)
    }

    pub fn name(self) -> &'static str {
        Class::NAMES
            .iter()
            .find(|(_, c)| *c == self)
            .map(|(n, _)| *n)
            .unwrap_or("other")
    }
}

/// How an argument is decoded and shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ArgKind {
    /// An fd, resolved to what it refers to.
    Fd,
    /// A dirfd: an fd or `AT_FDCWD`.
    DirFd,
    /// A path relative to the cwd, stored resolved to an absolute path.
    Path,
    /// A path relative to the dirfd in argument N, stored resolved to an absolute path.
    PathAt(u8),
    /// A path naming a link itself, not what it points to (unlink, rename, lchown, a name
    /// being created): a symlink as its last component is not followed.
    LinkPath,
    /// `LinkPath` relative to the dirfd in argument N.
    LinkPathAt(u8),
    /// A C string that is not a path (a symlink's content, a memfd name, a filesystem type).
    Str,
    Int,
    Uint,
    Hex,
    Mode,
    OpenFlags,
    /// O_CLOEXEC/O_NONBLOCK/O_DIRECT of pipe2 and dup3 (no access mode).
    FdFlags,
    AtFlags,
    AccessAtFlags,
    UnlinkFlags,
    AccessMode,
    RenameFlags,
    Prot,
    MmapFlags,
    MremapFlags,
    CloneFlags,
    /// `struct clone_args *`: the flags member is decoded.
    Clone3Flags,
    /// `struct open_how *`: the flags member is decoded.
    OpenHowFlags,
    Signal,
    Pid,
    Uid,
    Gid,
    /// An input `struct sockaddr *` whose length is in argument N.
    SockAddr(u8),
    SockDomain,
    SockType,
    SockFlags,
    MsgFlags,
    FcntlCmd,
    CloseRangeFlags,
    MemfdFlags,
    /// `struct io_uring_params *`: the flags member is decoded.
    UringSetupFlags,
    UringEnterFlags,
    UringRegisterOp,
    ShmFlags,
    ShmatFlags,
    MountFlags,
    UmountFlags,
    /// An output `struct sockaddr *` (accept's peer, recvfrom's source).
    SockAddrOut,
    /// `char *const argv[]`.
    Argv,
    /// `char *const envp[]`: stored as the number of variables.
    Envp,
}

impl ArgKind {
    /// Whether the argument is an address the kernel reads or writes through (a path, a
    /// string, a struct, a buffer, an argv), not a number, a flag set or an fd.
    pub fn is_pointer(self) -> bool {
        matches!(
            self,
            ArgKind::Path
                | ArgKind::PathAt(_)
                | ArgKind::LinkPath
                | ArgKind::LinkPathAt(_)
                | ArgKind::Str
                | ArgKind::Hex
                | ArgKind::SockAddr(_)
                | ArgKind::SockAddrOut
                | ArgKind::Argv
                | ArgKind::Envp
        )
    }
}

impl ArgKind {
    /// Whether the kernel reads an argument of this kind as a 32-bit C int or unsigned int
    /// (an fd, flags, a mode, a pid...): only the low half of the register counts.
    pub fn is_c_int(self) -> bool {
        !matches!(
            self,
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

    /// Kinds that name a file system object by path.
    pub fn is_path(self) -> bool {
        matches!(
            self,
            ArgKind::Path | ArgKind::PathAt(_) | ArgKind::LinkPath | ArgKind::LinkPathAt(_)
        )
    }

    /// The dirfd argument a path is relative to.
    pub fn dirfd_arg(self) -> Option<usize> {
        match self {
            ArgKind::PathAt(d) | ArgKind::LinkPathAt(d) => Some(d as usize),
            _ => None,
        }
    }

    /// Whether the kernel follows a symlink in the last component of this path (before the
    /// call's flags say otherwise: O_NOFOLLOW, AT_SYMLINK_NOFOLLOW, AT_SYMLINK_FOLLOW).
    pub fn follows_last(self) -> bool {
        matches!(self, ArgKind::Path | ArgKind::PathAt(_))
    }
}

#[derive(Clone, Copy, Debug)]
pub struct Arg {
    pub name: &'static str,
    pub kind: ArgKind,
}

/// What vigil knows of one syscall. Exit events carry `args` followed by `outputs`.
#[derive(Debug)]
pub struct Signature {
    pub name: &'static str,
    pub class: Class,
    pub args: &'static [Arg],
    /// Values known only after the call: the new fd of open, pipe's two fds, accept's peer...
    pub outputs: &'static [Arg],
    /// Calls vigil also needs to keep its fd table and cwd right, whatever the user selected.
    pub bookkeeping: Bookkeeping,
}

/// What a call means for vigil's own view of a process, beyond being recorded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bookkeeping {
    No,
    /// Creates, replaces or closes fds. When every such call is selected, vigil's fd table is
    /// exact; otherwise these calls do not stop the tracee and vigil checks its table against
    /// /proc when an fd is used.
    Fd,
    /// Changes the cwd, the root, the credentials or a socket's addresses, or submits
    /// io_uring work: always traced (they are rare) and the result matters.
    Exit,
    /// Could blind vigil or escape it: a signal or ptrace aimed at vigil itself, a child
    /// created untraced. Always traced, and checked at entry.
    Guard,
}

impl Signature {
    /// The index of the named input or output (outputs follow inputs in exit events).
    pub fn field_index(&self, name: &str) -> Option<usize> {
        self.args
            .iter()
            .chain(self.outputs.iter())
            .position(|a| a.name == name)
    }

    pub fn field(&self, index: usize) -> Option<&'static Arg> {
        if index < self.args.len() {
            self.args.get(index)
        } else {
            self.outputs.get(index - self.args.len())
        }
    }
}

/// A syscall as seen by a tracer: the ABI and its number in that ABI.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct SyscallId {
    pub abi: Abi,
    pub nr: u32,
}

impl SyscallId {
    pub const fn x86_64(nr: u32) -> SyscallId {
        SyscallId {
            abi: Abi::X86_64,
            nr,
        }
    }

    pub fn from_sysno(s: Sysno) -> SyscallId {
        SyscallId::x86_64(s.id() as u32)
    }

    /// What the call does, as the x86_64 syscall a consumer matches on: `canonical`, and
    /// also i386 `mmap2` as `mmap` (same arguments but the offset, given in pages: the
    /// effects on files and memory are the same).
    pub fn meaning(self) -> Option<Sysno> {
        self.canonical().or_else(|| {
            (self.abi == Abi::I386
                && syscalls::x86::Sysno::new(self.nr as usize) == Some(syscalls::x86::Sysno::mmap2))
            .then_some(Sysno::mmap)
        })
    }

    /// The x86_64 syscall with the same meaning, when there is one (i386 `open` is x86_64
    /// `open`, io_uring's OPENAT is `openat`); calls whose arguments differ across ABIs (mmap,
    /// socketcall, clone) have none.
    pub fn canonical(self) -> Option<Sysno> {
        match self.abi {
            Abi::IoUring => crate::uring::op(self.nr).and_then(|o| o.twin),
            Abi::X86_64 => Sysno::new(self.nr as usize),
            Abi::X32 => Sysno::new((self.nr & !X32_BIT) as usize),
            Abi::I386 => {
                let name = syscalls::x86::Sysno::new(self.nr as usize)?.name();
                if matches!(name, "mmap" | "mmap2" | "socketcall" | "ipc" | "clone") {
                    return None;
                }
                let name = match name {
                    "fcntl64" => "fcntl",
                    "truncate64" => "truncate",
                    "ftruncate64" => "ftruncate",
                    "fchown32" => "fchown",
                    "lchown32" => "lchown",
                    "chown32" => "chown",
                    "setuid32" => "setuid",
                    "setreuid32" => "setreuid",
                    "setresuid32" => "setresuid",
                    "setfsuid32" => "setfsuid",
                    "setgid32" => "setgid",
                    "setregid32" => "setregid",
                    "setresgid32" => "setresgid",
                    "setfsgid32" => "setfsgid",
                    other => other,
                };
                name.parse::<Sysno>().ok()
            }
        }
    }

    /// The name in its own ABI (`openat`, or `i386:open`), `None` for numbers no table knows.
    pub fn base_name(self) -> Option<&'static str> {
        match self.abi {
            Abi::X86_64 | Abi::X32 => self.canonical().map(|s| s.name()),
            Abi::I386 => syscalls::x86::Sysno::new(self.nr as usize).map(|s| s.name()),
            Abi::IoUring => crate::uring::op(self.nr).map(|o| o.name),
        }
    }

    pub fn signature(self) -> &'static Signature {
        self.canonical().and_then(signature_of).unwrap_or(&GENERIC)
    }

    /// Parses `openat`, `i386:open`, `syscall_999`, `i386:syscall_400`.
    pub fn from_name(name: &str) -> Option<SyscallId> {
        let (abi, rest) = match name.split_once(':') {
            Some((a, rest)) => (Abi::from_name(a)?, rest),
            None => (Abi::X86_64, name),
        };
        let nr = match rest.strip_prefix("syscall_") {
            Some(num) => num.parse::<u32>().ok()?,
            None => match abi {
                Abi::I386 => rest.parse::<syscalls::x86::Sysno>().ok()?.id() as u32,
                Abi::X86_64 => rest.parse::<Sysno>().ok()?.id() as u32,
                Abi::X32 => rest.parse::<Sysno>().ok()?.id() as u32 | X32_BIT,
                Abi::IoUring => crate::uring::opcode(rest)?,
            },
        };
        Some(SyscallId { abi, nr })
    }
}

/// x32 syscalls are x86_64 numbers with this bit set.
pub const X32_BIT: u32 = 0x4000_0000;

impl fmt::Display for SyscallId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let prefix = match self.abi {
            Abi::X86_64 => "",
            Abi::I386 => "i386:",
            Abi::X32 => "x32:",
            Abi::IoUring => "io_uring:",
        };
        match self.base_name() {
            Some(n) => write!(f, "{prefix}{n}"),
            None => write!(f, "{prefix}syscall_{}", self.nr),
        }
    }
}

/// Syscalls without a signature: six raw arguments.
pub static GENERIC: Signature = Signature {
    name: "",
    class: Class::NONE,
    args: &[
        Arg {
            name: "arg0",
            kind: ArgKind::Hex,
        },
        Arg {
            name: "arg1",
            kind: ArgKind::Hex,
        },
        Arg {
            name: "arg2",
            kind: ArgKind::Hex,
        },
        Arg {
            name: "arg3",
            kind: ArgKind::Hex,
        },
        Arg {
            name: "arg4",
            kind: ArgKind::Hex,
        },
        Arg {
            name: "arg5",
            kind: ArgKind::Hex,
        },
    ],
    outputs: &[],
    bookkeeping: Bookkeeping::No,
};

macro_rules! args {
    ($($n:literal : $k:expr),* $(,)?) => { &[$(Arg { name: $n, kind: $k }),*] };
}

macro_rules! table {
    ($( $sys:ident $class:ident $bk:ident [$($an:literal : $ak:expr),*] => [$($on:literal : $ok:expr),*] ;)*) => {
        static TABLE: &[(Sysno, Signature)] = &[
            $((Sysno::$sys, Signature {
                name: stringify!($sys),
                class: Class::$class,
                args: args!($($an : $ak),*),
                outputs: args!($($on : $ok),*),
                bookkeeping: Bookkeeping::$bk,
            }),)*
        ];
    };
}

use ArgKind::*;

// The default set: docs/DESIGN.md part 1, plus the calls that change fds and the cwd (close, dup*,
// fcntl, pipe*, chdir...), which vigil needs anyway to resolve fds and relative paths.
table! {
    // process lifecycle
    fork      PROCESS No [] => [];
    vfork     PROCESS No [] => [];
    clone     PROCESS No ["flags": CloneFlags, "stack": Hex, "parent_tid": Hex, "child_tid": Hex, "tls": Hex] => [];
    clone3    PROCESS Guard ["flags": Clone3Flags, "size": Uint] => [];
    execve    PROCESS No ["path": Path, "argv": Argv, "envp": Envp] => [];
    execveat  PROCESS No ["dirfd": DirFd, "path": PathAt(0), "argv": Argv, "envp": Envp, "flags": AtFlags] => [];
    exit      PROCESS No ["status": Int] => [];
    exit_group PROCESS No ["status": Int] => [];
    kill      PROCESS Guard ["pid": Pid, "sig": Signal] => [];
    tkill     PROCESS Guard ["tid": Pid, "sig": Signal] => [];
    tgkill    PROCESS Guard ["tgid": Pid, "tid": Pid, "sig": Signal] => [];
    rt_sigqueueinfo   PROCESS Guard ["tgid": Pid, "sig": Signal, "info": Hex] => [];
    rt_tgsigqueueinfo PROCESS Guard ["tgid": Pid, "tid": Pid, "sig": Signal, "info": Hex] => [];
    pidfd_send_signal PROCESS Guard ["pidfd": Fd, "sig": Signal, "info": Hex, "flags": Uint] => [];
    ptrace    PROCESS Guard ["request": Int, "pid": Pid, "addr": Hex, "data": Hex] => [];
    process_vm_readv  PROCESS No ["pid": Pid, "local_iov": Hex, "liovcnt": Uint, "remote_iov": Hex, "riovcnt": Uint, "flags": Uint] => [];
    process_vm_writev PROCESS Guard ["pid": Pid, "local_iov": Hex, "liovcnt": Uint, "remote_iov": Hex, "riovcnt": Uint, "flags": Uint] => [];
    prlimit64 PROCESS Guard ["pid": Pid, "resource": Int, "new_limit": Hex, "old_limit": Hex] => [];
    unshare   PROCESS Exit ["flags": CloneFlags] => [];
    setns     PROCESS Exit ["fd": Fd, "nstype": CloneFlags] => [];
    // files
    open      FILE Fd ["path": Path, "flags": OpenFlags, "mode": Mode] => ["fd": Fd];
    openat    FILE Fd ["dirfd": DirFd, "path": PathAt(0), "flags": OpenFlags, "mode": Mode] => ["fd": Fd];
    openat2   FILE Fd ["dirfd": DirFd, "path": PathAt(0), "flags": OpenHowFlags, "size": Uint] => ["fd": Fd];
    creat     FILE Fd ["path": Path, "mode": Mode] => ["fd": Fd];
    close     FILE Fd ["fd": Fd] => [];
    close_range FILE Fd ["first": Uint, "last": Uint, "flags": CloseRangeFlags] => [];
    dup       FILE Fd ["oldfd": Fd] => ["fd": Fd];
    dup2      FILE Fd ["oldfd": Fd, "newfd": Int] => ["fd": Fd];
    dup3      FILE Fd ["oldfd": Fd, "newfd": Int, "flags": FdFlags] => ["fd": Fd];
    fcntl     FILE Fd ["fd": Fd, "cmd": FcntlCmd, "arg": Uint] => [];
    pipe      FILE Fd ["fds": Hex] => ["rfd": Fd, "wfd": Fd];
    pipe2     FILE Fd ["fds": Hex, "flags": FdFlags] => ["rfd": Fd, "wfd": Fd];
    chdir     FILE Exit ["path": Path] => [];
    chroot    FILE Exit ["path": Path] => [];
    pivot_root FILE Exit ["new_root": Path, "put_old": Path] => [];
    fchdir    FILE Exit ["fd": Fd] => [];
    read      FILE No ["fd": Fd, "buf": Hex, "count": Uint] => ["offset": Uint];
    pread64   FILE No ["fd": Fd, "buf": Hex, "count": Uint, "offset": Int] => [];
    readv     FILE No ["fd": Fd, "iov": Hex, "iovcnt": Uint] => ["offset": Uint];
    preadv    FILE No ["fd": Fd, "iov": Hex, "iovcnt": Uint, "offset": Int] => [];
    preadv2   FILE No ["fd": Fd, "iov": Hex, "iovcnt": Uint, "offset": Int, "offset_high": Int, "flags": Hex] => [];
    write     FILE No ["fd": Fd, "buf": Hex, "count": Uint] => ["offset": Uint];
    pwrite64  FILE No ["fd": Fd, "buf": Hex, "count": Uint, "offset": Int] => [];
    writev    FILE No ["fd": Fd, "iov": Hex, "iovcnt": Uint] => ["offset": Uint];
    pwritev   FILE No ["fd": Fd, "iov": Hex, "iovcnt": Uint, "offset": Int] => [];
    pwritev2  FILE No ["fd": Fd, "iov": Hex, "iovcnt": Uint, "offset": Int, "offset_high": Int, "flags": Hex] => [];
    sendfile  FILE No ["out_fd": Fd, "in_fd": Fd, "offset": Hex, "count": Uint] => [];
    copy_file_range FILE No ["fd_in": Fd, "off_in": Hex, "fd_out": Fd, "off_out": Hex, "len": Uint, "flags": Uint] => [];
    rename    FILE No ["oldpath": LinkPath, "newpath": LinkPath] => [];
    renameat  FILE No ["olddirfd": DirFd, "oldpath": LinkPathAt(0), "newdirfd": DirFd, "newpath": LinkPathAt(2)] => [];
    renameat2 FILE No ["olddirfd": DirFd, "oldpath": LinkPathAt(0), "newdirfd": DirFd, "newpath": LinkPathAt(2), "flags": RenameFlags] => [];
    link      FILE No ["oldpath": LinkPath, "newpath": LinkPath] => [];
    linkat    FILE No ["olddirfd": DirFd, "oldpath": LinkPathAt(0), "newdirfd": DirFd, "newpath": LinkPathAt(2), "flags": AtFlags] => [];
    unlink    FILE No ["path": LinkPath] => [];
    unlinkat  FILE No ["dirfd": DirFd, "path": LinkPathAt(0), "flags": UnlinkFlags] => [];
    rmdir     FILE No ["path": LinkPath] => [];
    mkdir     FILE No ["path": LinkPath, "mode": Mode] => [];
    mkdirat   FILE No ["dirfd": DirFd, "path": LinkPathAt(0), "mode": Mode] => [];
    symlink   FILE No ["target": Str, "linkpath": LinkPath] => [];
    symlinkat FILE No ["target": Str, "newdirfd": DirFd, "linkpath": LinkPathAt(1)] => [];
    chmod     FILE No ["path": Path, "mode": Mode] => [];
    fchmod    FILE No ["fd": Fd, "mode": Mode] => [];
    fchmodat  FILE No ["dirfd": DirFd, "path": PathAt(0), "mode": Mode] => [];
    fchmodat2 FILE No ["dirfd": DirFd, "path": PathAt(0), "mode": Mode, "flags": AtFlags] => [];
    chown     FILE No ["path": Path, "uid": Uid, "gid": Gid] => [];
    fchown    FILE No ["fd": Fd, "uid": Uid, "gid": Gid] => [];
    lchown    FILE No ["path": LinkPath, "uid": Uid, "gid": Gid] => [];
    fchownat  FILE No ["dirfd": DirFd, "path": PathAt(0), "uid": Uid, "gid": Gid, "flags": AtFlags] => [];
    truncate  FILE No ["path": Path, "length": Int] => [];
    ftruncate FILE No ["fd": Fd, "length": Int] => [];
    access    FILE No ["path": Path, "mode": AccessMode] => [];
    faccessat FILE No ["dirfd": DirFd, "path": PathAt(0), "mode": AccessMode] => [];
    faccessat2 FILE No ["dirfd": DirFd, "path": PathAt(0), "mode": AccessMode, "flags": AccessAtFlags] => [];
    readlink  FILE No ["path": LinkPath, "buf": Hex, "bufsiz": Uint] => ["target": Str];
    readlinkat FILE No ["dirfd": DirFd, "path": LinkPathAt(0), "buf": Hex, "bufsiz": Uint] => ["target": Str];
    mount     FILE No ["source": Str, "target": Path, "fstype": Str, "flags": MountFlags, "data": Hex] => [];
    umount2   FILE No ["target": Path, "flags": UmountFlags] => [];
    setxattr  FILE No ["path": Path, "name": Str, "value": Hex, "size": Uint, "flags": Uint] => [];
    lsetxattr FILE No ["path": LinkPath, "name": Str, "value": Hex, "size": Uint, "flags": Uint] => [];
    fsetxattr FILE No ["fd": Fd, "name": Str, "value": Hex, "size": Uint, "flags": Uint] => [];
    fsync     FILE No ["fd": Fd] => [];
    // io_uring: always traced, so operations submitted through a ring are seen and decoded
    io_uring_setup    FILE Exit ["entries": Uint, "flags": UringSetupFlags] => ["fd": Fd];
    io_uring_enter    FILE Exit ["fd": Fd, "to_submit": Uint, "min_complete": Uint, "flags": UringEnterFlags, "sig": Hex, "sigsz": Uint] => [];
    io_uring_register FILE Exit ["fd": Fd, "opcode": UringRegisterOp, "arg": Hex, "nr_args": Uint] => [];
    fdatasync FILE No ["fd": Fd] => [];
    // memory
    mmap      MEMORY No ["addr": Hex, "length": Uint, "prot": Prot, "flags": MmapFlags, "fd": Fd, "offset": Uint] => [];
    mremap    MEMORY No ["old_addr": Hex, "old_size": Uint, "new_size": Uint, "flags": MremapFlags, "new_addr": Hex] => [];
    munmap    MEMORY No ["addr": Hex, "length": Uint] => [];
    mprotect  MEMORY No ["addr": Hex, "length": Uint, "prot": Prot] => [];
    shmget    MEMORY No ["key": Hex, "size": Uint, "flags": ShmFlags] => [];
    shmat     MEMORY No ["shmid": Int, "addr": Hex, "flags": ShmatFlags] => [];
    shmdt     MEMORY No ["addr": Hex] => [];
    memfd_create MEMORY Fd ["name": Str, "flags": MemfdFlags] => ["fd": Fd];
    // identity
    setuid    IDENTITY Exit ["uid": Uid] => [];
    setreuid  IDENTITY Exit ["ruid": Uid, "euid": Uid] => [];
    setresuid IDENTITY Exit ["ruid": Uid, "euid": Uid, "suid": Uid] => [];
    setfsuid  IDENTITY Exit ["fsuid": Uid] => [];
    setgid    IDENTITY Exit ["gid": Gid] => [];
    setregid  IDENTITY Exit ["rgid": Gid, "egid": Gid] => [];
    setresgid IDENTITY Exit ["rgid": Gid, "egid": Gid, "sgid": Gid] => [];
    setfsgid  IDENTITY Exit ["fsgid": Gid] => [];
    ioperm    IDENTITY No ["from": Hex, "num": Uint, "turn_on": Int] => [];
    init_module   IDENTITY No ["module_image": Hex, "len": Uint, "param_values": Str] => [];
    finit_module  IDENTITY No ["fd": Fd, "param_values": Str, "flags": Uint] => [];
    delete_module IDENTITY No ["name": Str, "flags": Uint] => [];
    iopl      IDENTITY No ["level": Int] => [];
    // network
    socket    NETWORK Fd ["domain": SockDomain, "type": SockType, "protocol": Int] => ["fd": Fd];
    socketpair NETWORK Fd ["domain": SockDomain, "type": SockType, "protocol": Int, "sv": Hex] => ["fd0": Fd, "fd1": Fd];
    connect   NETWORK Exit ["fd": Fd, "addr": SockAddr(2), "addrlen": Uint] => [];
    bind      NETWORK Exit ["fd": Fd, "addr": SockAddr(2), "addrlen": Uint] => [];
    listen    NETWORK No ["fd": Fd, "backlog": Int] => [];
    accept    NETWORK Exit ["fd": Fd, "addr": Hex, "addrlen": Hex] => ["peer": SockAddrOut, "newfd": Fd];
    accept4   NETWORK Exit ["fd": Fd, "addr": Hex, "addrlen": Hex, "flags": SockFlags] => ["peer": SockAddrOut, "newfd": Fd];
    sendto    NETWORK No ["fd": Fd, "buf": Hex, "len": Uint, "flags": MsgFlags, "dest": SockAddr(5), "addrlen": Uint] => [];
    sendmsg   NETWORK No ["fd": Fd, "msg": Hex, "flags": MsgFlags] => [];
    recvfrom  NETWORK No ["fd": Fd, "buf": Hex, "len": Uint, "flags": MsgFlags, "src_addr": Hex, "addrlen": Hex] => ["src": SockAddrOut];
    recvmsg   NETWORK No ["fd": Fd, "msg": Hex, "flags": MsgFlags] => [];
}

/// Signatures indexed by x86_64 number.
fn index() -> &'static [Option<&'static Signature>] {
    static INDEX: OnceLock<Vec<Option<&'static Signature>>> = OnceLock::new();
    INDEX.get_or_init(|| {
        let max = TABLE
            .iter()
            .map(|(s, _)| s.id() as usize)
            .max()
            .unwrap_or(0);
        let mut v = vec![None; max + 1];
        for (s, sig) in TABLE {
            v[s.id() as usize] = Some(sig);
        }
        v
    })
}

pub fn signature_of(s: Sysno) -> Option<&'static Signature> {
    index().get(s.id() as usize).copied().flatten()
}

/// Every syscall vigil decodes: the default selection.
pub fn known() -> impl Iterator<Item = (Sysno, &'static Signature)> {
    TABLE.iter().map(|(s, sig)| (*s, sig))
}

/// Names of every x86_64 syscall, for suggestions.
pub fn all_names() -> impl Iterator<Item = &'static str> {
    Sysno::iter().map(|s| s.name())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for name in ["openat", "i386:open", "syscall_999", "x32:read"] {
            let id = SyscallId::from_name(name).unwrap_or_else(|| panic!("{name}"));
            assert_eq!(id.to_string(), name);
        }
    }

    #[test]
    fn i386_open_shares_the_x86_64_signature() {
        let id = SyscallId::from_name("i386:open").unwrap();
        assert_eq!(id.signature().name, "open");
        let mmap = SyscallId::from_name("i386:mmap").unwrap();
        assert!(std::ptr::eq(mmap.signature(), &GENERIC));
    }

    #[test]
    fn path_at_refers_to_a_dirfd() {
        for (_, sig) in known() {
            for a in sig.args {
                if let Some(i) = a.kind.dirfd_arg() {
                    assert_eq!(sig.args[i].kind, ArgKind::DirFd, "{}", sig.name);
                }
                if let ArgKind::SockAddr(i) = a.kind {
                    assert!((i as usize) < sig.args.len(), "{}", sig.name);
                }
            }
        }
    }
}
