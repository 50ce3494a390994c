//! Decoded syscall argument values and the objects an fd can refer to.

use crate::Str;
use std::fmt;
use std::net::{SocketAddrV4, SocketAddrV6};
use std::sync::Arc;

/// One decoded argument (or output) of a syscall. Its meaning (path, flags, size...) comes from
/// the syscall's signature; the value itself only says how it is stored.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub enum Value {
    /// Not captured: an output of a failed call, or a backend that does not decode this argument.
    #[default]
    Absent,
    /// A pointer the backend could not read (EFAULT, unmapped): kept as the raw address.
    Unreadable(u64),
    Int(i64),
    Uint(u64),
    Str(Str),
    Fd(Fd),
    List(Arc<[Str]>),
    Addr(Arc<SockAddr>),
    /// What the kernel acted on, beside what the program passed, when the two differ or the
    /// certainty needs saying: a path through symlinks or `..`, a pid inside a pid namespace.
    /// Consumers read `value` (through `plain`); `given` is the evidence of what was asked.
    Resolved(Arc<Resolved>),
    /// A value vigil could not record whole (an argv beyond the kernel's own limits, an
    /// oversized imported value): what was kept, and exactly how much was not.
    Cut(Arc<Cut>),
    /// Bytes as they were (a buffer compared byte for byte, memory contents).
    Bytes(Arc<[u8]>),
    /// A range of addresses in the process (a buffer, a mapping): start and length.
    Range(AddrRange),
}

/// See `Value::Range`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AddrRange {
    pub start: u64,
    pub len: u64,
}

/// See `Value::Resolved`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Resolved {
    /// What the kernel acted on: the absolute path it resolved, the pid in vigil's namespace.
    pub value: Value,
    /// The value exactly as the program passed it; `Absent` when it is `value` itself.
    pub given: Value,
    pub how: Resolution,
}

/// How sure vigil is that `Resolved::value` is what the kernel used.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Resolution {
    /// Established in the process's own view of the system: the kernel's answer after the
    /// call (the link of the fd it created), or a walk of the path through the process's
    /// root, cwd or dirfd as the kernel walks it (symlinks and `..` followed).
    Exact,
    /// The walk was not possible (a component that does not exist, no permission): `.` and
    /// `..` were folded as text, symlinks not followed. The call usually failed.
    Lexical,
    /// What it is relative to is unknown (a cwd longer than PATH_MAX, a pid no process has):
    /// `value` is the given value itself.
    Unknown,
}

impl Resolution {
    pub fn name(self) -> &'static str {
        match self {
            Resolution::Exact => "exact",
            Resolution::Lexical => "lexical",
            Resolution::Unknown => "unknown",
        }
    }

    pub fn from_name(s: &str) -> Option<Resolution> {
        match s {
            "exact" => Some(Resolution::Exact),
            "lexical" => Some(Resolution::Lexical),
            "unknown" => Some(Resolution::Unknown),
            _ => None,
        }
    }
}

/// See `Value::Cut`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Cut {
    /// What was recorded (a prefix of the list, a prefix of the string).
    pub kept: Value,
    /// Items not recorded (list entries); at least this many when `exact` is false.
    pub items: u64,
    /// Bytes not recorded (of the items cut and of items shortened); at least this many
    /// when `exact` is false.
    pub bytes: u64,
    /// Whether `items` and `bytes` are exact counts or lower bounds (vigil stopped counting).
    pub exact: bool,
}

impl Value {
    /// `value` as the kernel used it beside `given` as the program passed it, in the one form
    /// every backend, the log and JSON agree on: no wrapper when there is nothing to say
    /// (`given` equal to `value` or absent, and `how` exact).
    pub fn resolved(value: Value, given: Value, how: Resolution) -> Value {
        let given = if given == value { Value::Absent } else { given };
        if given == Value::Absent && how == Resolution::Exact {
            return value;
        }
        Value::Resolved(Arc::new(Resolved { value, given, how }))
    }

    /// The value itself, through any `Resolved` (what the kernel used) or `Cut` (what was
    /// kept) wrapper. Every reader of argument values goes through this.
    pub fn plain(&self) -> &Value {
        let mut v = self;
        loop {
            match v {
                Value::Resolved(r) => v = &r.value,
                Value::Cut(c) => v = &c.kept,
                other => return other,
            }
        }
    }

    /// The value as the program passed it, when it differs from what the kernel used.
    pub fn given(&self) -> Option<&Value> {
        match self {
            Value::Resolved(r) if r.given != Value::Absent => Some(&r.given),
            Value::Cut(c) => c.kept.given(),
            _ => None,
        }
    }

    /// How sure vigil is of the value (`Exact` for values that needed no resolution).
    pub fn resolution(&self) -> Resolution {
        match self {
            Value::Resolved(r) => r.how,
            Value::Cut(c) => c.kept.resolution(),
            _ => Resolution::Exact,
        }
    }

    /// The cut marker, when the value was not recorded whole.
    pub fn cut(&self) -> Option<&Cut> {
        match self {
            Value::Cut(c) => Some(c),
            Value::Resolved(r) => r.value.cut(),
            _ => None,
        }
    }

    pub fn as_list(&self) -> Option<&Arc<[Str]>> {
        match self.plain() {
            Value::List(l) => Some(l),
            _ => None,
        }
    }

    pub fn as_int(&self) -> Option<i64> {
        match self.plain() {
            Value::Int(v) => Some(*v),
            Value::Uint(v) => Some(*v as i64),
            Value::Fd(fd) => Some(fd.num as i64),
            _ => None,
        }
    }

    pub fn as_uint(&self) -> Option<u64> {
        match self.plain() {
            Value::Uint(v) => Some(*v),
            Value::Int(v) => Some(*v as u64),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&Str> {
        match self.plain() {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_fd(&self) -> Option<&Fd> {
        match self.plain() {
            Value::Fd(fd) => Some(fd),
            _ => None,
        }
    }
}

/// An fd number and, when known, what it referred to at the time of the call.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Fd {
    pub num: i32,
    pub target: Option<Arc<Target>>,
}

impl Fd {
    pub fn new(num: i32, target: Option<Arc<Target>>) -> Self {
        Fd { num, target }
    }
}

/// `AT_FDCWD`: "relative to the current directory" as a dirfd.
pub const AT_FDCWD: i32 = -100;

/// What an open file descriptor refers to.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Target {
    /// A file, directory or device node. `dev`/`ino` are 0 when the backend could not stat it.
    File {
        path: Str,
        dev: u64,
        ino: u64,
    },
    Pipe {
        ino: u64,
    },
    Socket(Socket),
    /// Anonymous inodes and other special files: `anon_inode:[eventfd]`, `memfd:name`, ...
    Other {
        label: Str,
        ino: u64,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Socket {
    pub ino: u64,
    /// AF_* family (0 when unknown).
    pub family: u16,
    /// SOCK_* type without the flag bits (0 when unknown).
    pub sock_type: u16,
    pub local: Option<SockAddr>,
    pub remote: Option<SockAddr>,
}

impl Target {
    pub fn path(&self) -> Option<&Str> {
        match self {
            Target::File { path, .. } => Some(path),
            _ => None,
        }
    }

    /// The device of a file (0 for other objects, or when unknown).
    pub fn dev(&self) -> u64 {
        match self {
            Target::File { dev, .. } => *dev,
            _ => 0,
        }
    }

    /// The inode number, the object's identity within its kind.
    pub fn ino(&self) -> u64 {
        match self {
            Target::File { ino, .. } | Target::Pipe { ino } | Target::Other { ino, .. } => *ino,
            Target::Socket(s) => s.ino,
        }
    }

    pub fn kind_name(&self) -> &'static str {
        match self {
            Target::File { .. } => "file",
            Target::Pipe { .. } => "pipe",
            Target::Socket(_) => "socket",
            Target::Other { .. } => "other",
        }
    }
}

impl fmt::Display for Target {
    /// The strace `-yy` style label: `/etc/passwd`, `pipe:[1234]`, `TCP:[127.0.0.1:5->127.0.0.1:6]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::File { path, .. } => write!(f, "{path}"),
            Target::Pipe { ino } => write!(f, "pipe:[{ino}]"),
            Target::Socket(s) => {
                let proto = match (s.family, s.sock_type) {
                    (AF_UNIX, _) => "UNIX",
                    (AF_INET | AF_INET6, 1) => "TCP",
                    (AF_INET | AF_INET6, 2) => "UDP",
                    (AF_NETLINK, _) => "NETLINK",
                    _ => "socket",
                };
                match (&s.local, &s.remote) {
                    (None, None) => write!(f, "{proto}:[{}]", s.ino),
                    (l, r) => {
                        write!(f, "{proto}:[")?;
                        match l {
                            Some(a) => write!(f, "{a}")?,
                            None => write!(f, "?")?,
                        }
                        if let Some(r) = r {
                            write!(f, "->{r}")?;
                        }
                        write!(f, "]")
                    }
                }
            }
            Target::Other { label, .. } => write!(f, "{label}"),
        }
    }
}

pub const AF_UNIX: u16 = 1;
pub const AF_INET: u16 = 2;
pub const AF_INET6: u16 = 10;
pub const AF_NETLINK: u16 = 16;

/// A socket address as passed to connect/bind/sendto or returned by accept/recvfrom.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum SockAddr {
    V4(SocketAddrV4),
    V6(SocketAddrV6),
    /// A path, or an abstract name (stored with a leading `@`); empty for unnamed.
    Unix(Str),
    Netlink {
        pid: u32,
        groups: u32,
    },
    Other {
        family: u16,
        data: Arc<[u8]>,
    },
}

impl SockAddr {
    pub fn family(&self) -> u16 {
        match self {
            SockAddr::V4(_) => AF_INET,
            SockAddr::V6(_) => AF_INET6,
            SockAddr::Unix(_) => AF_UNIX,
            SockAddr::Netlink { .. } => AF_NETLINK,
            SockAddr::Other { family, .. } => *family,
        }
    }

    pub fn port(&self) -> Option<u16> {
        match self {
            SockAddr::V4(a) => Some(a.port()),
            SockAddr::V6(a) => Some(a.port()),
            _ => None,
        }
    }

    /// Decodes a raw `struct sockaddr` as the kernel lays it out.
    pub fn from_raw(raw: &[u8]) -> Option<SockAddr> {
        if raw.len() < 2 {
            return None;
        }
        let family = u16::from_ne_bytes([raw[0], raw[1]]);
        Some(match family {
            AF_INET if raw.len() >= 8 => {
                let port = u16::from_be_bytes([raw[2], raw[3]]);
                SockAddr::V4(SocketAddrV4::new(
                    [raw[4], raw[5], raw[6], raw[7]].into(),
                    port,
                ))
            }
            AF_INET6 if raw.len() >= 28 => {
                let port = u16::from_be_bytes([raw[2], raw[3]]);
                let flow = u32::from_be_bytes([raw[4], raw[5], raw[6], raw[7]]);
                let mut ip = [0u8; 16];
                ip.copy_from_slice(&raw[8..24]);
                let scope = u32::from_ne_bytes([raw[24], raw[25], raw[26], raw[27]]);
                SockAddr::V6(SocketAddrV6::new(ip.into(), port, flow, scope))
            }
            AF_UNIX => {
                let path = &raw[2..];
                if path.first() == Some(&0) && path.len() > 1 {
                    let mut name = b"@".to_vec();
                    name.extend_from_slice(&path[1..]);
                    SockAddr::Unix(Str::from(name))
                } else {
                    let end = path.iter().position(|&b| b == 0).unwrap_or(path.len());
                    SockAddr::Unix(Str::new(&path[..end]))
                }
            }
            AF_NETLINK if raw.len() >= 12 => SockAddr::Netlink {
                pid: u32::from_ne_bytes([raw[4], raw[5], raw[6], raw[7]]),
                groups: u32::from_ne_bytes([raw[8], raw[9], raw[10], raw[11]]),
            },
            _ => SockAddr::Other {
                family,
                data: Arc::from(&raw[2..]),
            },
        })
    }
}

impl fmt::Display for SockAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SockAddr::V4(a) => write!(f, "{a}"),
            SockAddr::V6(a) => write!(f, "{a}"),
            SockAddr::Unix(p) if p.is_empty() => write!(f, "unix:(unnamed)"),
            SockAddr::Unix(p) => write!(f, "unix:{p}"),
            SockAddr::Netlink { pid, groups } => write!(f, "netlink:{pid}/{groups:#x}"),
            SockAddr::Other { family, data } => {
                write!(f, "af{family}:")?;
                for b in data.iter() {
                    write!(f, "{b:02x}")?;
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_inet_and_abstract_unix() {
        let mut raw = vec![2u8, 0, 0x1f, 0x90, 127, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(
            SockAddr::from_raw(&raw).map(|a| a.to_string()).as_deref(),
            Some("127.0.0.1:8080")
        );
        raw = vec![1, 0, 0, b'x', b'y'];
        assert_eq!(SockAddr::from_raw(&raw), Some(SockAddr::Unix("@xy".into())));
        assert_eq!(SockAddr::from_raw(&[1]), None);
    }
}
