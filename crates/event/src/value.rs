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
}

impl Value {
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(v) => Some(*v),
            Value::Uint(v) => Some(*v as i64),
            Value::Fd(fd) => Some(fd.num as i64),
            _ => None,
        }
    }

    pub fn as_uint(&self) -> Option<u64> {
        match self {
            Value::Uint(v) => Some(*v),
            Value::Int(v) => Some(*v as u64),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&Str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_fd(&self) -> Option<&Fd> {
        match self {
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
