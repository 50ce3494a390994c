//! Names of flag bits and enumerated values, for rendering (`O_WRONLY|O_CREAT`) and for parsing
//! the same text back (JSON import, rule conditions).

use crate::syscall::ArgKind;

/// `(value, mask, name)`: a name applies when `bits & mask == value`. Multi-bit names come
/// before the single bits they contain (`O_SYNC` before `O_DSYNC`).
type Table = &'static [(u64, u64, &'static str)];

macro_rules! bits {
    ($($v:expr => $n:literal),* $(,)?) => { &[$(($v, $v, $n)),*] };
}

const OPEN: Table = &[
    (0o4010000, 0o4010000, "O_SYNC"),
    (0o20200000, 0o20200000, "O_TMPFILE"),
    (0o100, 0o100, "O_CREAT"),
    (0o200, 0o200, "O_EXCL"),
    (0o400, 0o400, "O_NOCTTY"),
    (0o1000, 0o1000, "O_TRUNC"),
    (0o2000, 0o2000, "O_APPEND"),
    (0o4000, 0o4000, "O_NONBLOCK"),
    (0o10000, 0o10000, "O_DSYNC"),
    (0o20000, 0o20000, "O_ASYNC"),
    (0o40000, 0o40000, "O_DIRECT"),
    (0o100000, 0o100000, "O_LARGEFILE"),
    (0o200000, 0o200000, "O_DIRECTORY"),
    (0o400000, 0o400000, "O_NOFOLLOW"),
    (0o1000000, 0o1000000, "O_NOATIME"),
    (0o2000000, 0o2000000, "O_CLOEXEC"),
    (0o10000000, 0o10000000, "O_PATH"),
];
const OPEN_ACCMODE: Table = &[(0, 3, "O_RDONLY"), (1, 3, "O_WRONLY"), (2, 3, "O_RDWR")];
const AT: Table = bits! {
    0x100 => "AT_SYMLINK_NOFOLLOW", 0x400 => "AT_SYMLINK_FOLLOW", 0x800 => "AT_NO_AUTOMOUNT",
    0x1000 => "AT_EMPTY_PATH", 0x200 => "AT_REMOVEDIR",
};
const ACCESS_AT: Table = bits! {
    0x100 => "AT_SYMLINK_NOFOLLOW", 0x200 => "AT_EACCESS", 0x1000 => "AT_EMPTY_PATH",
};
const UNLINK: Table = bits! { 0x200 => "AT_REMOVEDIR" };
const ACCESS: Table = bits! { 4 => "R_OK", 2 => "W_OK", 1 => "X_OK" };
const RENAME: Table =
    bits! { 1 => "RENAME_NOREPLACE", 2 => "RENAME_EXCHANGE", 4 => "RENAME_WHITEOUT" };
const PROT: Table = bits! {
    1 => "PROT_READ", 2 => "PROT_WRITE", 4 => "PROT_EXEC", 0x0100_0000 => "PROT_GROWSDOWN",
    0x0200_0000 => "PROT_GROWSUP",
};
const MMAP_TYPE: Table = &[
    (3, 0xf, "MAP_SHARED_VALIDATE"),
    (1, 0xf, "MAP_SHARED"),
    (2, 0xf, "MAP_PRIVATE"),
];
const MMAP: Table = bits! {
    0x10 => "MAP_FIXED", 0x20 => "MAP_ANONYMOUS", 0x40 => "MAP_32BIT", 0x100 => "MAP_GROWSDOWN",
    0x800 => "MAP_DENYWRITE", 0x1000 => "MAP_EXECUTABLE", 0x2000 => "MAP_LOCKED",
    0x4000 => "MAP_NORESERVE", 0x8000 => "MAP_POPULATE", 0x10000 => "MAP_NONBLOCK",
    0x20000 => "MAP_STACK", 0x40000 => "MAP_HUGETLB", 0x80000 => "MAP_SYNC",
    0x100000 => "MAP_FIXED_NOREPLACE",
};
const MREMAP: Table = bits! { 1 => "MREMAP_MAYMOVE", 2 => "MREMAP_FIXED", 4 => "MREMAP_DONTUNMAP" };
const CLONE: Table = bits! {
    0x100 => "CLONE_VM", 0x200 => "CLONE_FS", 0x400 => "CLONE_FILES", 0x800 => "CLONE_SIGHAND",
    0x1000 => "CLONE_PIDFD", 0x2000 => "CLONE_PTRACE", 0x4000 => "CLONE_VFORK",
    0x8000 => "CLONE_PARENT", 0x10000 => "CLONE_THREAD", 0x20000 => "CLONE_NEWNS",
    0x40000 => "CLONE_SYSVSEM", 0x80000 => "CLONE_SETTLS", 0x100000 => "CLONE_PARENT_SETTID",
    0x200000 => "CLONE_CHILD_CLEARTID", 0x400000 => "CLONE_DETACHED", 0x800000 => "CLONE_UNTRACED",
    0x1000000 => "CLONE_CHILD_SETTID", 0x2000000 => "CLONE_NEWCGROUP", 0x4000000 => "CLONE_NEWUTS",
    0x8000000 => "CLONE_NEWIPC", 0x10000000 => "CLONE_NEWUSER", 0x20000000 => "CLONE_NEWPID",
    0x40000000 => "CLONE_NEWNET", 0x80000000 => "CLONE_IO", 0x100000000 => "CLONE_CLEAR_SIGHAND",
    0x200000000 => "CLONE_INTO_CGROUP",
};
const SOCK_FLAGS: Table = bits! { 0o4000 => "SOCK_NONBLOCK", 0o2000000 => "SOCK_CLOEXEC" };
const SOCK_TYPE: Table = &[
    (1, 0xf, "SOCK_STREAM"),
    (2, 0xf, "SOCK_DGRAM"),
    (3, 0xf, "SOCK_RAW"),
    (4, 0xf, "SOCK_RDM"),
    (5, 0xf, "SOCK_SEQPACKET"),
    (10, 0xf, "SOCK_PACKET"),
];
const MSG: Table = bits! {
    1 => "MSG_OOB", 2 => "MSG_PEEK", 4 => "MSG_DONTROUTE", 8 => "MSG_CTRUNC", 0x20 => "MSG_TRUNC",
    0x40 => "MSG_DONTWAIT", 0x80 => "MSG_EOR", 0x100 => "MSG_WAITALL", 0x4000 => "MSG_NOSIGNAL",
    0x8000 => "MSG_MORE", 0x40000000 => "MSG_CMSG_CLOEXEC",
};
const CLOSE_RANGE: Table = bits! { 2 => "CLOSE_RANGE_UNSHARE", 4 => "CLOSE_RANGE_CLOEXEC" };
const MEMFD: Table = bits! {
    1 => "MFD_CLOEXEC", 2 => "MFD_ALLOW_SEALING", 4 => "MFD_HUGETLB", 8 => "MFD_NOEXEC_SEAL",
    0x10 => "MFD_EXEC",
};
const SHM: Table = bits! { 0o1000 => "IPC_CREAT", 0o2000 => "IPC_EXCL", 0o4000 => "SHM_HUGETLB" };
const SHMAT: Table = bits! {
    0o10000 => "SHM_RDONLY", 0o20000 => "SHM_RND", 0o40000 => "SHM_REMAP", 0o100000 => "SHM_EXEC",
};
const MOUNT: Table = bits! {
    1 => "MS_RDONLY", 2 => "MS_NOSUID", 4 => "MS_NODEV", 8 => "MS_NOEXEC", 16 => "MS_SYNCHRONOUS",
    32 => "MS_REMOUNT", 64 => "MS_MANDLOCK", 128 => "MS_DIRSYNC", 256 => "MS_NOSYMFOLLOW",
    1024 => "MS_NOATIME", 2048 => "MS_NODIRATIME", 4096 => "MS_BIND", 8192 => "MS_MOVE",
    16384 => "MS_REC", 32768 => "MS_SILENT", 0x10000 => "MS_POSIXACL", 0x20000 => "MS_UNBINDABLE",
    0x40000 => "MS_PRIVATE", 0x80000 => "MS_SLAVE", 0x100000 => "MS_SHARED",
    0x200000 => "MS_RELATIME", 0x400000 => "MS_KERNMOUNT", 0x800000 => "MS_I_VERSION",
    0x1000000 => "MS_STRICTATIME", 0x2000000 => "MS_LAZYTIME",
};
const URING_SETUP: Table = bits! {
    1 => "IORING_SETUP_IOPOLL", 2 => "IORING_SETUP_SQPOLL", 4 => "IORING_SETUP_SQ_AFF",
    8 => "IORING_SETUP_CQSIZE", 0x10 => "IORING_SETUP_CLAMP", 0x20 => "IORING_SETUP_ATTACH_WQ",
    0x40 => "IORING_SETUP_R_DISABLED", 0x80 => "IORING_SETUP_SUBMIT_ALL",
    0x100 => "IORING_SETUP_COOP_TASKRUN", 0x200 => "IORING_SETUP_TASKRUN_FLAG",
    0x400 => "IORING_SETUP_SQE128", 0x800 => "IORING_SETUP_CQE32",
    0x1000 => "IORING_SETUP_SINGLE_ISSUER", 0x2000 => "IORING_SETUP_DEFER_TASKRUN",
    0x4000 => "IORING_SETUP_NO_MMAP", 0x8000 => "IORING_SETUP_REGISTERED_FD_ONLY",
    0x10000 => "IORING_SETUP_NO_SQARRAY", 0x20000 => "IORING_SETUP_HYBRID_IOPOLL",
};
const URING_ENTER: Table = bits! {
    1 => "IORING_ENTER_GETEVENTS", 2 => "IORING_ENTER_SQ_WAKEUP", 4 => "IORING_ENTER_SQ_WAIT",
    8 => "IORING_ENTER_EXT_ARG", 0x10 => "IORING_ENTER_REGISTERED_RING",
    0x20 => "IORING_ENTER_ABS_TIMER", 0x40 => "IORING_ENTER_EXT_ARG_REG",
    0x80 => "IORING_ENTER_NO_IOWAIT",
};
const URING_REGISTER: &[(u64, &str)] = &[
    (0, "IORING_REGISTER_BUFFERS"),
    (1, "IORING_UNREGISTER_BUFFERS"),
    (2, "IORING_REGISTER_FILES"),
    (3, "IORING_UNREGISTER_FILES"),
    (4, "IORING_REGISTER_EVENTFD"),
    (5, "IORING_UNREGISTER_EVENTFD"),
    (6, "IORING_REGISTER_FILES_UPDATE"),
    (7, "IORING_REGISTER_EVENTFD_ASYNC"),
    (8, "IORING_REGISTER_PROBE"),
    (9, "IORING_REGISTER_PERSONALITY"),
    (10, "IORING_UNREGISTER_PERSONALITY"),
    (11, "IORING_REGISTER_RESTRICTIONS"),
    (12, "IORING_REGISTER_ENABLE_RINGS"),
    (13, "IORING_REGISTER_FILES2"),
    (14, "IORING_REGISTER_FILES_UPDATE2"),
    (15, "IORING_REGISTER_BUFFERS2"),
    (16, "IORING_REGISTER_BUFFERS_UPDATE"),
    (17, "IORING_REGISTER_IOWQ_AFF"),
    (18, "IORING_UNREGISTER_IOWQ_AFF"),
    (19, "IORING_REGISTER_IOWQ_MAX_WORKERS"),
    (20, "IORING_REGISTER_RING_FDS"),
    (21, "IORING_UNREGISTER_RING_FDS"),
    (22, "IORING_REGISTER_PBUF_RING"),
    (23, "IORING_UNREGISTER_PBUF_RING"),
    (24, "IORING_REGISTER_SYNC_CANCEL"),
    (25, "IORING_REGISTER_FILE_ALLOC_RANGE"),
    (26, "IORING_REGISTER_PBUF_STATUS"),
    (27, "IORING_REGISTER_NAPI"),
    (28, "IORING_UNREGISTER_NAPI"),
    (29, "IORING_REGISTER_CLOCK"),
    (30, "IORING_REGISTER_CLONE_BUFFERS"),
    (31, "IORING_REGISTER_SEND_MSG_RING"),
    (32, "IORING_REGISTER_ZCRX_IFQ"),
    (33, "IORING_REGISTER_RESIZE_RINGS"),
    (34, "IORING_REGISTER_MEM_REGION"),
];
const UMOUNT: Table =
    bits! { 1 => "MNT_FORCE", 2 => "MNT_DETACH", 4 => "MNT_EXPIRE", 8 => "UMOUNT_NOFOLLOW" };

const FCNTL: &[(u64, &str)] = &[
    (0, "F_DUPFD"),
    (1, "F_GETFD"),
    (2, "F_SETFD"),
    (3, "F_GETFL"),
    (4, "F_SETFL"),
    (5, "F_GETLK"),
    (6, "F_SETLK"),
    (7, "F_SETLKW"),
    (8, "F_SETOWN"),
    (9, "F_GETOWN"),
    (10, "F_SETSIG"),
    (11, "F_GETSIG"),
    (36, "F_OFD_GETLK"),
    (37, "F_OFD_SETLK"),
    (38, "F_OFD_SETLKW"),
    (1030, "F_DUPFD_CLOEXEC"),
    (1031, "F_SETPIPE_SZ"),
    (1032, "F_GETPIPE_SZ"),
    (1033, "F_ADD_SEALS"),
    (1034, "F_GET_SEALS"),
];
const DOMAIN: &[(u64, &str)] = &[
    (0, "AF_UNSPEC"),
    (1, "AF_UNIX"),
    (2, "AF_INET"),
    (10, "AF_INET6"),
    (16, "AF_NETLINK"),
    (17, "AF_PACKET"),
    (31, "AF_BLUETOOTH"),
    (38, "AF_ALG"),
    (40, "AF_VSOCK"),
    (44, "AF_XDP"),
];
const SIGNALS: [&str; 32] = [
    "0",
    "SIGHUP",
    "SIGINT",
    "SIGQUIT",
    "SIGILL",
    "SIGTRAP",
    "SIGABRT",
    "SIGBUS",
    "SIGFPE",
    "SIGKILL",
    "SIGUSR1",
    "SIGSEGV",
    "SIGUSR2",
    "SIGPIPE",
    "SIGALRM",
    "SIGTERM",
    "SIGSTKFLT",
    "SIGCHLD",
    "SIGCONT",
    "SIGSTOP",
    "SIGTSTP",
    "SIGTTIN",
    "SIGTTOU",
    "SIGURG",
    "SIGXCPU",
    "SIGXFSZ",
    "SIGVTALRM",
    "SIGPROF",
    "SIGWINCH",
    "SIGIO",
    "SIGPWR",
    "SIGSYS",
];

/// `SIGKILL` for 9, `SIGRT_5` for 37 (kernel numbering, as strace prints), the number otherwise.
pub fn signal_name(sig: i64) -> String {
    match sig {
        0..=31 => SIGNALS[sig as usize].to_string(),
        32..=64 => format!("SIGRT_{}", sig - 32),
        _ => sig.to_string(),
    }
}

pub fn signal_from_name(name: &str) -> Option<i64> {
    // What `signal_name` writes for a number no name stands for (0, 100, -1): that number.
    if let Ok(n) = name.parse::<i64>() {
        return Some(n);
    }
    let upper = name.to_ascii_uppercase();
    let with_prefix = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    if let Some(i) = SIGNALS.iter().position(|s| *s == with_prefix) {
        return Some(i as i64);
    }
    with_prefix
        .strip_prefix("SIGRT_")?
        .parse::<i64>()
        .ok()
        .filter(|n| *n <= 32)
        .map(|n| n + 32)
}

fn bit_tables(kind: ArgKind) -> Option<(Table, Table)> {
    // (enumerated field tables checked first, then bit tables)
    Some(match kind {
        ArgKind::OpenFlags | ArgKind::OpenHowFlags => (OPEN_ACCMODE, OPEN),
        ArgKind::FdFlags => (&[], OPEN),
        ArgKind::AtFlags => (&[], AT),
        ArgKind::AccessAtFlags => (&[], ACCESS_AT),
        ArgKind::UnlinkFlags => (&[], UNLINK),
        ArgKind::AccessMode => (&[], ACCESS),
        ArgKind::RenameFlags => (&[], RENAME),
        ArgKind::Prot => (&[], PROT),
        ArgKind::MmapFlags => (MMAP_TYPE, MMAP),
        ArgKind::MremapFlags => (&[], MREMAP),
        ArgKind::CloneFlags | ArgKind::Clone3Flags => (&[], CLONE),
        ArgKind::SockType => (SOCK_TYPE, SOCK_FLAGS),
        ArgKind::SockFlags => (&[], SOCK_FLAGS),
        ArgKind::MsgFlags => (&[], MSG),
        ArgKind::CloseRangeFlags => (&[], CLOSE_RANGE),
        ArgKind::MemfdFlags => (&[], MEMFD),
        ArgKind::ShmFlags => (&[], SHM),
        ArgKind::ShmatFlags => (&[], SHMAT),
        ArgKind::MountFlags => (&[], MOUNT),
        ArgKind::UmountFlags => (&[], UMOUNT),
        ArgKind::UringSetupFlags => (&[], URING_SETUP),
        ArgKind::UringEnterFlags => (&[], URING_ENTER),
        _ => return None,
    })
}

fn enum_table(kind: ArgKind) -> Option<&'static [(u64, &'static str)]> {
    match kind {
        ArgKind::FcntlCmd => Some(FCNTL),
        ArgKind::SockDomain => Some(DOMAIN),
        ArgKind::UringRegisterOp => Some(URING_REGISTER),
        _ => None,
    }
}

/// Renders a flag or enumerated argument by name; `None` for kinds that have no names.
pub fn render(kind: ArgKind, value: u64) -> Option<String> {
    if let Some(t) = enum_table(kind) {
        return Some(match t.iter().find(|(v, _)| *v == value) {
            Some((_, n)) => n.to_string(),
            None => value.to_string(),
        });
    }
    match kind {
        ArgKind::Signal => return Some(signal_name(value as i64)),
        ArgKind::Mode => return Some(format!("0{value:o}")),
        ArgKind::AccessMode if value == 0 => return Some("F_OK".into()),
        ArgKind::ShmFlags => {
            let mut s = render_bits(bit_tables(kind)?, value & !0o777);
            if value & 0o777 != 0 || s == "0" {
                s = if s == "0" {
                    format!("{:#o}", value & 0o777)
                } else {
                    format!("{s}|{:#o}", value & 0o777)
                };
            }
            return Some(s);
        }
        ArgKind::CloneFlags if value & 0xff != 0 => {
            // The low byte is the signal sent to the parent at exit.
            let rest = render_bits(bit_tables(kind)?, value & !0xff);
            let sig = signal_name((value & 0xff) as i64);
            return Some(if rest == "0" {
                sig
            } else {
                format!("{rest}|{sig}")
            });
        }
        _ => {}
    }
    Some(render_bits(bit_tables(kind)?, value))
}

fn render_bits((fields, bits): (Table, Table), value: u64) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut rest = value;
    for &(v, mask, name) in fields {
        if value & mask == v {
            parts.push(name.to_string());
            rest &= !mask;
            break;
        }
    }
    for &(v, mask, name) in bits {
        if rest & mask == v && v != 0 {
            parts.push(name.to_string());
            rest &= !mask;
        }
    }
    if rest != 0 {
        parts.push(format!("{rest:#x}"));
    }
    if parts.is_empty() {
        "0".to_string()
    } else {
        parts.join("|")
    }
}

/// Parses what `render` produced (or a plain number) back into the raw value.
pub fn parse(kind: ArgKind, text: &str) -> Option<u64> {
    let text = text.trim();
    if let Some(v) = parse_number(text) {
        return Some(v);
    }
    if let Some(t) = enum_table(kind) {
        return t.iter().find(|(_, n)| *n == text).map(|(v, _)| *v);
    }
    if kind == ArgKind::Signal {
        return signal_from_name(text).map(|v| v as u64);
    }
    if kind == ArgKind::AccessMode && text == "F_OK" {
        return Some(0);
    }
    let (fields, bits) = bit_tables(kind)?;
    let mut value = 0u64;
    for part in text.split('|') {
        let part = part.trim();
        if let Some(v) = parse_number(part) {
            value |= v;
        } else if let Some(sig) = (kind == ArgKind::CloneFlags)
            .then(|| signal_from_name(part))
            .flatten()
        {
            value |= sig as u64;
        } else if let Some(&(v, _, _)) = fields
            .iter()
            .chain(bits.iter())
            .find(|(_, _, n)| *n == part)
        {
            value |= v;
        } else {
            return None;
        }
    }
    Some(value)
}

fn parse_number(s: &str) -> Option<u64> {
    if let Some(h) = s.strip_prefix("0x") {
        u64::from_str_radix(h, 16).ok()
    } else if let Some(o) = s.strip_prefix("0o") {
        u64::from_str_radix(o, 8).ok()
    } else if s.len() > 1 && s.starts_with('0') && s.bytes().all(|b| b.is_ascii_digit()) {
        u64::from_str_radix(&s[1..], 8).ok()
    } else {
        s.parse().ok()
    }
}

/// Every flag name of a kind, for rule-language suggestions.
pub fn names(kind: ArgKind) -> Vec<&'static str> {
    if let Some(t) = enum_table(kind) {
        return t.iter().map(|(_, n)| *n).collect();
    }
    match bit_tables(kind) {
        Some((f, b)) => f.iter().chain(b.iter()).map(|(_, _, n)| *n).collect(),
        None => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn open_flags_render_like_strace() {
        assert_eq!(
            render(ArgKind::OpenFlags, 0o2000000).unwrap(),
            "O_RDONLY|O_CLOEXEC"
        );
        assert_eq!(
            render(ArgKind::OpenFlags, 577).unwrap(),
            "O_WRONLY|O_CREAT|O_TRUNC"
        );
        assert_eq!(
            render(ArgKind::OpenFlags, 0o4010001).unwrap(),
            "O_WRONLY|O_SYNC"
        );
        assert_eq!(
            render(ArgKind::MmapFlags, 0x22).unwrap(),
            "MAP_PRIVATE|MAP_ANONYMOUS"
        );
        assert_eq!(
            render(ArgKind::CloneFlags, 0x1200011).unwrap(),
            "CLONE_CHILD_CLEARTID|CLONE_CHILD_SETTID|SIGCHLD"
        );
        assert_eq!(render(ArgKind::Signal, 9).unwrap(), "SIGKILL");
        assert_eq!(render(ArgKind::FcntlCmd, 1030).unwrap(), "F_DUPFD_CLOEXEC");
        assert_eq!(render(ArgKind::Prot, 0).unwrap(), "0");
    }

    proptest! {
        #[test]
        fn render_then_parse_is_identity(v in any::<u64>(), k in 0usize..8) {
            let kind = [ArgKind::OpenFlags, ArgKind::MmapFlags, ArgKind::CloneFlags, ArgKind::Prot,
                        ArgKind::SockType, ArgKind::ShmFlags, ArgKind::MountFlags, ArgKind::AtFlags][k];
            let text = render(kind, v).unwrap();
            prop_assert_eq!(parse(kind, &text), Some(v), "{}", text);
        }
    }
}
