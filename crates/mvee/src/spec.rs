//! The monitor's syscall table: for each call, how its arguments are compared across variants
//! (integers exactly, pointers as null / non-null, memory by content), who runs it (every
//! variant, the leader alone, or nobody), and which memory it writes (to copy the leader's
//! results into the variants that skipped it).
//!
//! Declarative, keyed by syscall identity (`Sysno`), like the recorder's table in
//! vigil-event: the monitor's loop reads these rows and never matches on a call's name.
//! A call that is not listed is run by every variant with its arguments compared as
//! integers, except those the event table calls pointers, compared null / non-null.

use syscalls::Sysno;
use vigil_event::syscall::{ArgKind, SyscallId};

/// How an argument is compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arg {
    /// Compared exactly (numbers, flags, sizes).
    Int,
    /// An fd: compared exactly (fd numbers are the same in every variant by construction).
    Fd,
    /// A pid or pgid: compared exactly (programs only see virtual pids) and translated to
    /// each variant's own process before the call runs.
    Pid,
    /// An address: only whether it is null.
    Ptr,
    /// Not compared (a value the kernel ignores here, or one that legitimately differs).
    Ignore,
}

/// How many bytes a memory argument covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Len {
    /// The value of argument N.
    Arg(u8),
    Fixed(u32),
    /// The call's return value (output buffers only).
    Ret,
    /// A NUL-terminated string.
    CStr,
    /// A `struct iovec` array at this argument with its count in argument N (outputs: filled
    /// up to the return value).
    Iov(u8),
    /// The u32 at the address in argument N (a socklen_t in/out).
    Deref(u8),
    /// Argument N times a fixed element size.
    ArgTimes(u8, u32),
    /// The return value times a fixed element size.
    RetTimes(u32),
    /// A NULL-terminated array of strings (argv, envp).
    StrArray,
    /// A `struct msghdr`: its payload (the iovecs), its name and control data.
    MsgHdr,
    /// An fd_set of argument N's bits.
    FdSet(u8),
    /// A `struct sockaddr` of argument N's length, compared on what it names (an AF_UNIX
    /// path up to its NUL, an AF_INET address and port), not on padding.
    SockAddr(u8),
}

/// A memory range an argument points at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mem {
    pub arg: u8,
    pub len: Len,
}

/// Who runs a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Run {
    /// Every variant, on its own state (memory, signal state, its fd table's shape).
    Each,
    /// Every variant, then the leader's result and outputs replace the others' (a wait's
    /// rusage, a time that must be equal).
    EachLeaderResult,
    /// The leader alone; the others skip the call and get its result and outputs.
    Leader,
    /// By the fd in argument N: every variant when all opened that fd themselves (a file
    /// opened read-only), the leader alone otherwise.
    ByFd(u8),
    /// An open: the leader first; then each variant opens the same file itself if it is a
    /// regular file or directory opened read-only, or takes a placeholder fd otherwise.
    Open,
    /// Nobody: every variant gets this result (a refused call).
    Refuse(i32),
    /// Decided by the monitor, never in the table: an mmap of a file only the leader opened.
    /// The leader maps the file; the others map anonymous memory that gets the file's bytes.
    MapCopy,
    /// Decided by the monitor: an mmap that lets the kernel choose the address. The leader
    /// maps first; every other variant maps at the leader's address moved by its own secret
    /// distance (a multiple of 1 GiB), so addresses differ between variants while their
    /// alignment does not (allocators that trim or count by alignment behave the same).
    MapPlaced,
    /// Process creation (fork, vfork, clone, clone3): every variant; the children form a new
    /// variant set and the parents see the leader's child pid.
    Spawn,
    /// execve / execveat: every variant; the new images are set up again after it.
    Exec,
    /// A signal sent to a pid or group: translated per variant when it names one of the
    /// variants' processes, the leader alone when it names something outside.
    Kill,
}

/// One row.
#[derive(Clone, Copy, Debug)]
pub struct Spec {
    pub run: Run,
    /// How each of the six registers is compared (absent: `Ignore`).
    pub args: &'static [Arg],
    /// Memory the call reads, compared by content.
    pub ins: &'static [Mem],
    /// Memory the call writes, copied from the leader when the others skip it.
    pub outs: &'static [Mem],
    /// The call creates fds in its result (open, accept, socket...) or in its outputs (pipe).
    pub new_fd: NewFd,
}

/// Where a call puts the fds it creates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NewFd {
    No,
    /// The return value.
    Ret,
    /// Two ints at the address in argument N (pipe, socketpair).
    Pair(u8),
}

use Arg::{Fd, Ignore as X, Int as I, Pid as P, Ptr as A};

/// A memory row (a macro, not a function, so the rows are promoted to statics).
macro_rules! m {
    ($arg:expr, $len:expr) => {
        Mem {
            arg: $arg,
            len: $len,
        }
    };
}

const fn each(args: &'static [Arg]) -> Spec {
    Spec {
        run: Run::Each,
        args,
        ins: &[],
        outs: &[],
        new_fd: NewFd::No,
    }
}

const fn leader(args: &'static [Arg], ins: &'static [Mem], outs: &'static [Mem]) -> Spec {
    Spec {
        run: Run::Leader,
        args,
        ins,
        outs,
        new_fd: NewFd::No,
    }
}

const fn by_fd(args: &'static [Arg], ins: &'static [Mem], outs: &'static [Mem]) -> Spec {
    Spec {
        run: Run::ByFd(0),
        args,
        ins,
        outs,
        new_fd: NewFd::No,
    }
}

const fn with(mut s: Spec, run: Run) -> Spec {
    s.run = run;
    s
}

const fn fds(mut s: Spec, new_fd: NewFd) -> Spec {
    s.new_fd = new_fd;
    s
}

const fn ins(mut s: Spec, ins: &'static [Mem]) -> Spec {
    s.ins = ins;
    s
}

const STAT: u32 = 144;
const STATX: u32 = 256;
const TIMESPEC: u32 = 16;
const TIMEVAL: u32 = 16;
const RUSAGE: u32 = 144;
const SIGINFO: u32 = 128;
const SIGSET: u32 = 8;
const SOCKLEN: u32 = 4;
const UTSNAME: u32 = 390;
const SYSINFO: u32 = 112;
const TMS: u32 = 32;
const STATFS: u32 = 120;
const RLIMIT: u32 = 16;
const ITIMERVAL: u32 = 32;
const EPOLL_EVENT: u32 = 12;
const POLLFD: u32 = 8;
/// struct kernel_sigaction: handler, flags, restorer, mask.
const SIGACTION: u32 = 32;

/// select's three fd sets (their size from nfds), read and written; then its timeout.
const FDSETS: &[Mem] = &[
    m!(1, Len::FdSet(0)),
    m!(2, Len::FdSet(0)),
    m!(3, Len::FdSet(0)),
];
const SELECT_OUT: &[Mem] = &[
    m!(1, Len::FdSet(0)),
    m!(2, Len::FdSet(0)),
    m!(3, Len::FdSet(0)),
    m!(4, Len::Fixed(TIMEVAL)),
];
const PSELECT_OUT: &[Mem] = &[
    m!(1, Len::FdSet(0)),
    m!(2, Len::FdSet(0)),
    m!(3, Len::FdSet(0)),
    m!(4, Len::Fixed(TIMESPEC)),
];

/// The row for a call (x86-64 identities; other ABIs are compared by number only and run by
/// every variant).
pub fn spec(call: SyscallId) -> Spec {
    match call.canonical() {
        Some(s) if call.abi == vigil_event::syscall::Abi::X86_64 => spec_of(s, call),
        _ => each(&[I, I, I, I, I, I]),
    }
}

fn spec_of(s: Sysno, call: SyscallId) -> Spec {
    use Sysno::*;
    match s {
        // Reading and writing through fds: the fd's kind decides who runs it.
        read => by_fd(&[Fd, A, I], &[], &[m!(1, Len::Ret)]),
        write => by_fd(&[Fd, A, I], &[m!(1, Len::Arg(2))], &[]),
        pread64 => by_fd(&[Fd, A, I, I], &[], &[m!(1, Len::Ret)]),
        pwrite64 => by_fd(&[Fd, A, I, I], &[m!(1, Len::Arg(2))], &[]),
        readv => by_fd(&[Fd, A, I], &[], &[m!(1, Len::Iov(2))]),
        preadv => by_fd(&[Fd, A, I, I, I], &[], &[m!(1, Len::Iov(2))]),
        preadv2 => by_fd(&[Fd, A, I, I, I, I], &[], &[m!(1, Len::Iov(2))]),
        writev => by_fd(&[Fd, A, I], &[m!(1, Len::Iov(2))], &[]),
        pwritev => by_fd(&[Fd, A, I, I, I], &[m!(1, Len::Iov(2))], &[]),
        pwritev2 => by_fd(&[Fd, A, I, I, I, I], &[m!(1, Len::Iov(2))], &[]),
        getdents64 | getdents => by_fd(&[Fd, A, I], &[], &[m!(1, Len::Ret)]),
        lseek => by_fd(&[Fd, I, I], &[], &[]),
        fstat => by_fd(&[Fd, A], &[], &[m!(1, Len::Fixed(STAT))]),
        fstatfs => by_fd(&[Fd, A], &[], &[m!(1, Len::Fixed(STATFS))]),
        fsync | fdatasync | syncfs => by_fd(&[Fd], &[], &[]),
        ftruncate => by_fd(&[Fd, I], &[], &[]),
        fallocate => by_fd(&[Fd, I, I, I], &[], &[]),
        fchmod => by_fd(&[Fd, I], &[], &[]),
        fchown => by_fd(&[Fd, I, I], &[], &[]),
        flock => by_fd(&[Fd, I], &[], &[]),
        fadvise64 => by_fd(&[Fd, I, I, I], &[], &[]),
        readahead => by_fd(&[Fd, I, I], &[], &[]),
        sendfile => leader(
            &[Fd, Fd, A, I],
            &[m!(2, Len::Fixed(8))],
            &[m!(2, Len::Fixed(8))],
        ),
        copy_file_range | splice => leader(&[Fd, A, Fd, A, I, I], &[], &[]),
        tee => leader(&[Fd, Fd, I, I], &[], &[]),
        ioctl => by_fd(&[Fd, I, A], &[], &[]),
        fcntl => by_fd(&[Fd, I, X], &[], &[]),

        // Opening: the leader first, then each variant or a placeholder.
        open => Spec {
            run: Run::Open,
            args: &[A, I, I],
            ins: &[m!(0, Len::CStr)],
            outs: &[],
            new_fd: NewFd::Ret,
        },
        openat => fds(
            Spec {
                run: Run::Open,
                args: &[Fd, A, I, I],
                ins: &[m!(1, Len::CStr)],
                outs: &[],
                new_fd: NewFd::No,
            },
            NewFd::Ret,
        ),
        openat2 => fds(
            Spec {
                run: Run::Open,
                args: &[Fd, A, A, I],
                ins: &[m!(1, Len::CStr), m!(2, Len::Arg(3))],
                outs: &[],
                new_fd: NewFd::No,
            },
            NewFd::Ret,
        ),
        creat => fds(leader(&[A, I], &[m!(0, Len::CStr)], &[]), NewFd::Ret),

        // The fd table's shape: every variant, so fd numbers stay equal.
        close => each(&[Fd]),
        close_range => each(&[Fd, Fd, I]),
        dup => each(&[Fd]),
        dup2 => each(&[Fd, Fd]),
        dup3 => each(&[Fd, Fd, I]),
        pipe => fds(each(&[A]), NewFd::Pair(0)),
        pipe2 => fds(each(&[A, I]), NewFd::Pair(0)),
        socket => fds(each(&[I, I, I]), NewFd::Ret),
        socketpair => fds(each(&[I, I, I, A]), NewFd::Pair(3)),
        eventfd => fds(each(&[I]), NewFd::Ret),
        eventfd2 => fds(each(&[I, I]), NewFd::Ret),
        memfd_create => fds(ins(each(&[A, I]), &[m!(0, Len::CStr)]), NewFd::Ret),
        epoll_create | epoll_create1 => fds(each(&[I]), NewFd::Ret),
        timerfd_create => fds(each(&[I, I]), NewFd::Ret),
        inotify_init => fds(each(&[]), NewFd::Ret),
        inotify_init1 => fds(each(&[I]), NewFd::Ret),
        signalfd => fds(
            ins(each(&[Fd, A, I]), &[m!(1, Len::Fixed(SIGSET))]),
            NewFd::Ret,
        ),
        signalfd4 => fds(
            ins(each(&[Fd, A, I, I]), &[m!(1, Len::Fixed(SIGSET))]),
            NewFd::Ret,
        ),
        pidfd_open => fds(each(&[P, I]), NewFd::Ret),

        // Sockets: the outside world.
        connect | bind => by_fd(&[Fd, A, I], &[m!(1, Len::SockAddr(2))], &[]),
        listen | shutdown => by_fd(&[Fd, I], &[], &[]),
        accept => fds(
            leader(
                &[Fd, A, A],
                &[],
                &[m!(1, Len::Deref(2)), m!(2, Len::Fixed(SOCKLEN))],
            ),
            NewFd::Ret,
        ),
        accept4 => fds(
            leader(
                &[Fd, A, A, I],
                &[],
                &[m!(1, Len::Deref(2)), m!(2, Len::Fixed(SOCKLEN))],
            ),
            NewFd::Ret,
        ),
        getsockname | getpeername => by_fd(
            &[Fd, A, A],
            &[],
            &[m!(1, Len::Deref(2)), m!(2, Len::Fixed(SOCKLEN))],
        ),
        setsockopt => by_fd(&[Fd, I, I, A, I], &[m!(3, Len::Arg(4))], &[]),
        getsockopt => by_fd(
            &[Fd, I, I, A, A],
            &[],
            &[m!(3, Len::Deref(4)), m!(4, Len::Fixed(SOCKLEN))],
        ),
        sendto => by_fd(
            &[Fd, A, I, I, A, I],
            &[m!(1, Len::Arg(2)), m!(4, Len::SockAddr(5))],
            &[],
        ),
        recvfrom => by_fd(
            &[Fd, A, I, I, A, A],
            &[],
            &[
                m!(1, Len::Ret),
                m!(4, Len::Deref(5)),
                m!(5, Len::Fixed(SOCKLEN)),
            ],
        ),
        sendmsg => by_fd(&[Fd, A, I], &[m!(1, Len::MsgHdr)], &[]),
        recvmsg => by_fd(&[Fd, A, I], &[], &[m!(1, Len::MsgHdr)]),

        // Waiting for fds: the leader's view of the outside world.
        poll => leader(
            &[A, I, I],
            &[m!(0, Len::ArgTimes(1, POLLFD))],
            &[m!(0, Len::ArgTimes(1, POLLFD))],
        ),
        ppoll => leader(
            &[A, I, A, A, I],
            &[m!(0, Len::ArgTimes(1, POLLFD)), m!(3, Len::Fixed(SIGSET))],
            &[m!(0, Len::ArgTimes(1, POLLFD)), m!(2, Len::Fixed(TIMESPEC))],
        ),
        select => leader(&[I, A, A, A, A], FDSETS, SELECT_OUT),
        pselect6 => leader(&[I, A, A, A, A, A], FDSETS, PSELECT_OUT),
        epoll_ctl => each(&[Fd, I, Fd, A]),
        epoll_wait => leader(&[Fd, A, I, I], &[], &[m!(1, Len::RetTimes(EPOLL_EVENT))]),
        epoll_pwait => leader(
            &[Fd, A, I, I, A, I],
            &[],
            &[m!(1, Len::RetTimes(EPOLL_EVENT))],
        ),
        epoll_pwait2 => leader(
            &[Fd, A, I, A, A, I],
            &[],
            &[m!(1, Len::RetTimes(EPOLL_EVENT))],
        ),

        // Paths: what is there is read by every variant, like a file opened read-only (the
        // leader's changes to the file system are done before the others pass the call that
        // made them); changes to it happen once, by the leader.
        stat | lstat => ins(each(&[A, A]), &[m!(0, Len::CStr)]),
        // Relative to a dirfd only the leader opened (an fd received, an empty path with
        // AT_EMPTY_PATH): the leader's answer.
        newfstatat => by_fd(
            &[Fd, A, A, I],
            &[m!(1, Len::CStr)],
            &[m!(2, Len::Fixed(STAT))],
        ),
        statx => by_fd(
            &[Fd, A, I, I, A],
            &[m!(1, Len::CStr)],
            &[m!(4, Len::Fixed(STATX))],
        ),
        statfs => ins(each(&[A, A]), &[m!(0, Len::CStr)]),
        access => ins(each(&[A, I]), &[m!(0, Len::CStr)]),
        faccessat => by_fd(&[Fd, A, I], &[m!(1, Len::CStr)], &[]),
        faccessat2 => by_fd(&[Fd, A, I, I], &[m!(1, Len::CStr)], &[]),
        readlink => ins(each(&[A, A, I]), &[m!(0, Len::CStr)]),
        readlinkat => by_fd(&[Fd, A, A, I], &[m!(1, Len::CStr)], &[m!(2, Len::Ret)]),
        getcwd => each(&[A, I]),
        chdir | chroot => each_path(),
        fchdir => each(&[Fd]),
        mkdir | chmod | truncate | swapon => leader(&[A, I], &[m!(0, Len::CStr)], &[]),
        rmdir | unlink | acct | swapoff => leader(&[A], &[m!(0, Len::CStr)], &[]),
        chown | lchown | mknod => leader(&[A, I, I], &[m!(0, Len::CStr)], &[]),
        utime | utimes => leader(&[A, A], &[m!(0, Len::CStr)], &[]),
        setxattr | lsetxattr => leader(
            &[A, A, A, I, I],
            &[m!(0, Len::CStr), m!(1, Len::CStr), m!(2, Len::Arg(3))],
            &[],
        ),
        removexattr | lremovexattr => leader(&[A, A], &[m!(0, Len::CStr), m!(1, Len::CStr)], &[]),
        mkdirat | unlinkat | fchmodat => leader(&[Fd, A, I], &[m!(1, Len::CStr)], &[]),
        fchmodat2 | mknodat => leader(&[Fd, A, I, I], &[m!(1, Len::CStr)], &[]),
        fchownat => leader(&[Fd, A, I, I, I], &[m!(1, Len::CStr)], &[]),
        futimesat => leader(&[Fd, A, A], &[m!(1, Len::CStr)], &[]),
        utimensat => leader(&[Fd, A, A, I], &[m!(1, Len::CStr)], &[]),
        rename | link | symlink => leader(&[A, A], &[m!(0, Len::CStr), m!(1, Len::CStr)], &[]),
        renameat => leader(&[Fd, A, Fd, A], &[m!(1, Len::CStr), m!(3, Len::CStr)], &[]),
        renameat2 | linkat => leader(
            &[Fd, A, Fd, A, I],
            &[m!(1, Len::CStr), m!(3, Len::CStr)],
            &[],
        ),
        symlinkat => leader(&[A, Fd, A], &[m!(0, Len::CStr), m!(2, Len::CStr)], &[]),
        getxattr | lgetxattr => ins(each(&[A, A, A, I]), &[m!(0, Len::CStr), m!(1, Len::CStr)]),
        fgetxattr => by_fd(&[Fd, A, A, I], &[m!(1, Len::CStr)], &[m!(2, Len::Ret)]),
        listxattr | llistxattr => ins(each(&[A, A, I]), &[m!(0, Len::CStr)]),
        flistxattr => by_fd(&[Fd, A, I], &[], &[m!(1, Len::Ret)]),
        mount => leader(
            &[A, A, A, I, A],
            &[m!(0, Len::CStr), m!(1, Len::CStr), m!(2, Len::CStr)],
            &[],
        ),
        umount2 => leader(&[A, I], &[m!(0, Len::CStr)], &[]),
        pivot_root => leader(&[A, A], &[m!(0, Len::CStr), m!(1, Len::CStr)], &[]),
        sync => leader(&[], &[], &[]),
        sethostname | setdomainname => leader(&[A, I], &[m!(0, Len::Arg(1))], &[]),
        reboot => leader(&[I, I, I, A], &[], &[]),

        // Memory: every variant, addresses compared null / non-null.
        mmap => each(&[A, I, I, I, Fd, I]),
        // How much of a mapping is trimmed depends on where ASLR put it (malloc's arenas
        // are aligned by unmapping the excess): the lengths are not compared.
        munmap => each(&[A, X]),
        mprotect => each(&[A, I, I]),
        pkey_mprotect => each(&[A, I, I, I]),
        mremap => each(&[A, I, I, I, A]),
        madvise => each(&[A, I, I]),
        msync | mlock2 => each(&[A, I, I]),
        mlock | munlock => each(&[A, I]),
        brk => each(&[A]),
        mincore => each(&[A, I, A]),

        // Signals and threads: every variant, on its own state.
        rt_sigaction => ins(each(&[I, A, A, I]), &[m!(1, Len::Fixed(SIGACTION))]),
        rt_sigprocmask => ins(each(&[I, A, A, I]), &[m!(1, Len::Fixed(SIGSET))]),
        rt_sigreturn => each(&[]),
        rt_sigsuspend => ins(each(&[A, I]), &[m!(0, Len::Fixed(SIGSET))]),
        rt_sigtimedwait => Spec {
            run: Run::EachLeaderResult,
            args: &[A, A, A, I],
            ins: &[m!(0, Len::Fixed(SIGSET))],
            outs: &[m!(1, Len::Fixed(SIGINFO))],
            new_fd: NewFd::No,
        },
        rt_sigpending => each(&[A, I]),
        sigaltstack => each(&[A, A]),
        pause => each(&[]),
        set_tid_address => with(each(&[A]), Run::Leader),
        set_robust_list => each(&[A, I]),
        get_robust_list => each(&[P, A, A]),
        arch_prctl => each(&[I, A]),
        prctl => each(&[I, X, X, X, X]),
        futex => each(&[A, I, X, X, X, X]),
        futex_waitv => each(&[A, I, I, A, I]),
        sched_yield => each(&[]),
        exit | exit_group => each(&[I]),
        umask => each(&[I]),
        setpgid => Spec {
            run: Run::Kill,
            args: &[P, P],
            ins: &[],
            outs: &[],
            new_fd: NewFd::No,
        },
        setsid => with(each(&[]), Run::EachLeaderResult),
        setuid | setgid | setfsuid | setfsgid | personality | unshare => each(&[I]),
        setreuid | setregid => each(&[I, I]),
        setresuid | setresgid => each(&[I, I, I]),
        setgroups => ins(each(&[I, A]), &[m!(1, Len::ArgTimes(0, 4))]),
        capset => ins(
            each(&[A, A]),
            &[m!(0, Len::Fixed(8)), m!(1, Len::Fixed(24))],
        ),
        getuid | geteuid | getgid | getegid => each(&[]),
        getresuid | getresgid => each(&[A, A, A]),
        getgroups => each(&[I, A]),
        capget => each(&[A, A]),

        // Identity of processes: the leader's (virtual) ids.
        getpid | gettid | getppid | getpgrp => leader(&[], &[], &[]),
        getpgid | getsid => Spec {
            run: Run::Kill,
            args: &[P],
            ins: &[],
            outs: &[],
            new_fd: NewFd::No,
        },
        kill => Spec {
            run: Run::Kill,
            args: &[P, I],
            ins: &[],
            outs: &[],
            new_fd: NewFd::No,
        },
        tgkill => Spec {
            run: Run::Kill,
            args: &[P, P, I],
            ins: &[],
            outs: &[],
            new_fd: NewFd::No,
        },
        tkill => Spec {
            run: Run::Kill,
            args: &[P, I],
            ins: &[],
            outs: &[],
            new_fd: NewFd::No,
        },
        rt_sigqueueinfo => Spec {
            run: Run::Kill,
            args: &[P, I, A],
            ins: &[],
            outs: &[],
            new_fd: NewFd::No,
        },
        wait4 => Spec {
            run: Run::EachLeaderResult,
            args: &[P, A, I, A],
            ins: &[],
            outs: &[m!(1, Len::Fixed(4)), m!(3, Len::Fixed(RUSAGE))],
            new_fd: NewFd::No,
        },
        waitid => Spec {
            run: Run::EachLeaderResult,
            args: &[I, P, A, I, A],
            ins: &[],
            outs: &[m!(2, Len::Fixed(SIGINFO)), m!(4, Len::Fixed(RUSAGE))],
            new_fd: NewFd::No,
        },
        fork | vfork => Spec {
            run: Run::Spawn,
            args: &[],
            ins: &[],
            outs: &[],
            new_fd: NewFd::No,
        },
        clone => Spec {
            run: Run::Spawn,
            args: &[I, A, A, A, A],
            ins: &[],
            outs: &[],
            new_fd: NewFd::No,
        },
        clone3 => Spec {
            run: Run::Spawn,
            args: &[A, I],
            ins: &[],
            outs: &[],
            new_fd: NewFd::No,
        },
        execve => Spec {
            run: Run::Exec,
            args: &[A, A, A],
            ins: &[m!(0, Len::CStr), m!(1, Len::StrArray), m!(2, Len::StrArray)],
            outs: &[],
            new_fd: NewFd::No,
        },
        execveat => Spec {
            run: Run::Exec,
            args: &[Fd, A, A, A, I],
            ins: &[m!(1, Len::CStr), m!(2, Len::StrArray), m!(3, Len::StrArray)],
            outs: &[],
            new_fd: NewFd::No,
        },

        // Non-determinism: what the leader saw, given to every variant.
        clock_gettime | clock_getres => leader(&[I, A], &[], &[m!(1, Len::Fixed(TIMESPEC))]),
        gettimeofday => leader(
            &[A, A],
            &[],
            &[m!(0, Len::Fixed(TIMEVAL)), m!(1, Len::Fixed(8))],
        ),
        time => leader(&[A], &[], &[m!(0, Len::Fixed(8))]),
        getcpu => leader(
            &[A, A, A],
            &[],
            &[m!(0, Len::Fixed(4)), m!(1, Len::Fixed(4))],
        ),
        getrandom => leader(&[A, I, I], &[], &[m!(0, Len::Ret)]),
        uname => leader(&[A], &[], &[m!(0, Len::Fixed(UTSNAME))]),
        sysinfo => leader(&[A], &[], &[m!(0, Len::Fixed(SYSINFO))]),
        times => leader(&[A], &[], &[m!(0, Len::Fixed(TMS))]),
        getrusage => leader(&[I, A], &[], &[m!(1, Len::Fixed(RUSAGE))]),
        getrlimit => leader(&[I, A], &[], &[m!(1, Len::Fixed(RLIMIT))]),
        prlimit64 => Spec {
            run: Run::EachLeaderResult,
            args: &[P, I, A, A],
            ins: &[m!(2, Len::Fixed(RLIMIT))],
            outs: &[m!(3, Len::Fixed(RLIMIT))],
            new_fd: NewFd::No,
        },
        setrlimit => ins(each(&[I, A]), &[m!(1, Len::Fixed(RLIMIT))]),
        sched_getaffinity => leader(&[P, I, A], &[], &[m!(2, Len::Ret)]),
        getitimer => leader(&[I, A], &[], &[m!(1, Len::Fixed(ITIMERVAL))]),
        setitimer => Spec {
            run: Run::EachLeaderResult,
            args: &[I, A, A],
            ins: &[m!(1, Len::Fixed(ITIMERVAL))],
            outs: &[m!(2, Len::Fixed(ITIMERVAL))],
            new_fd: NewFd::No,
        },
        alarm => with(each(&[I]), Run::EachLeaderResult),
        nanosleep => ins(each(&[A, A]), &[m!(0, Len::Fixed(TIMESPEC))]),
        clock_nanosleep => ins(each(&[I, I, A, A]), &[m!(2, Len::Fixed(TIMESPEC))]),
        timer_create => each(&[I, A, A]),
        timer_settime => ins(each(&[I, I, A, A]), &[m!(2, Len::Fixed(32))]),
        timer_gettime => each(&[I, A]),
        timer_delete | timer_getoverrun => each(&[I]),

        // Refused: a variant may not trace, and rseq's per-CPU data would differ.
        rseq => refuse(libc::ENOSYS),
        ptrace | process_vm_readv | process_vm_writev => refuse(libc::EPERM),
        io_uring_setup | io_uring_enter | io_uring_register => refuse(libc::ENOSYS),

        _ => fallback(call),
    }
}

const fn each_path() -> Spec {
    Spec {
        run: Run::Each,
        args: &[A],
        ins: &[m!(0, Len::CStr)],
        outs: &[],
        new_fd: NewFd::No,
    }
}

const fn refuse(errno: i32) -> Spec {
    Spec {
        run: Run::Refuse(errno),
        args: &[],
        ins: &[],
        outs: &[],
        new_fd: NewFd::No,
    }
}

/// A call the table does not list: every variant runs it; the event table's pointer kinds
/// are compared null / non-null, the rest as integers.
fn fallback(call: SyscallId) -> Spec {
    const INTS: [Arg; 6] = [I, I, I, I, I, I];
    const PTRS: [[Arg; 6]; 6] = {
        let mut t = [[I; 6]; 6];
        let mut i = 0;
        while i < 6 {
            t[i][i] = A;
            i += 1;
        }
        t
    };
    let sig = call.signature();
    // A call the event table does not know either: its arity is unknown, so no register
    // is compared (what is left in unused ones differs innocently).
    if std::ptr::eq(sig, &vigil_event::syscall::GENERIC) {
        return each(&[]);
    }
    let n = sig.args.len().min(6);
    let pointers: Vec<usize> = sig
        .args
        .iter()
        .enumerate()
        .filter(|(_, a)| a.kind.is_pointer() || a.kind == ArgKind::Hex)
        .map(|(i, _)| i)
        .collect();
    match pointers.as_slice() {
        [] => each(&INTS[..n]),
        [p] => each(&PTRS[*p][..n]),
        // Only one pointer column per row is expressed statically: with more, no register
        // is compared.
        _ => each(&[]),
    }
}
