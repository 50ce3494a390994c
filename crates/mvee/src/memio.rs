//! Reading a call's memory arguments out of a variant (to compare them by content) and
//! writing the leader's outputs into a variant that skipped the call.
//!
//! What a row of the table (`spec::Mem`) covers is turned into bytes here: a buffer of a
//! length given by another argument, a C string, an iovec array's payload, a msghdr's
//! name, payload and control data, an argv. Unreadable memory is not an error of the
//! monitor: it becomes a distinct value (`Unreadable`), so a variant whose pointer is bad
//! where the leader's is good diverges on it.

use crate::spec::{Len, Mem};
use vigil_tracee::{Memory, Stopped};

/// The most bytes of one argument compared or copied: more is cut and said so.
pub const MAX_BYTES: usize = 64 << 20;
const MAX_STRING: usize = 1 << 20;
const MAX_IOV: usize = 1024;
const MAX_ARRAY: usize = 1 << 16;
const MSGHDR_LEN: usize = 56;

/// What an argument's memory held.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Content {
    Null,
    Bytes(Vec<u8>),
    /// The pointer could not be read (EFAULT): the raw address is not compared, the fact is.
    Unreadable,
}

fn arg(args: &[u64; 6], n: u8) -> u64 {
    args.get(n as usize).copied().unwrap_or(0)
}

fn read(mem: &mut Memory, t: &Stopped, addr: u64, len: usize) -> Option<Vec<u8>> {
    let mut b = vec![0u8; len.min(MAX_BYTES)];
    mem.read(t, addr, &mut b).ok().map(|()| b)
}

fn read_u32(mem: &mut Memory, t: &Stopped, addr: u64) -> Option<u32> {
    mem.read_u32(t, addr).ok()
}

/// The iovecs at `addr` (at most MAX_IOV): (base, len) pairs.
fn iovecs(mem: &mut Memory, t: &Stopped, addr: u64, count: u64) -> Option<Vec<(u64, u64)>> {
    let n = (count as usize).min(MAX_IOV);
    let raw = read(mem, t, addr, n * 16)?;
    Some(
        raw.chunks_exact(16)
            .map(|c| {
                let mut b = [0u8; 8];
                b.copy_from_slice(&c[..8]);
                let base = u64::from_le_bytes(b);
                b.copy_from_slice(&c[8..]);
                (base, u64::from_le_bytes(b))
            })
            .collect(),
    )
}

fn gather(mem: &mut Memory, t: &Stopped, iov: &[(u64, u64)], limit: u64) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut left = limit.min(MAX_BYTES as u64);
    for &(base, len) in iov {
        if left == 0 {
            break;
        }
        let n = len.min(left);
        if n > 0 {
            out.extend(read(mem, t, base, n as usize)?);
        }
        left -= n;
    }
    Some(out)
}

/// A msghdr's fields: name, namelen, iov, iovlen, control, controllen, flags.
struct MsgHdr {
    name: u64,
    namelen: u32,
    iov: u64,
    iovlen: u64,
    control: u64,
    controllen: u64,
}

fn msghdr(mem: &mut Memory, t: &Stopped, addr: u64) -> Option<MsgHdr> {
    let b = read(mem, t, addr, MSGHDR_LEN)?;
    let w = |o: usize| {
        let mut x = [0u8; 8];
        x.copy_from_slice(&b[o..o + 8]);
        u64::from_le_bytes(x)
    };
    Some(MsgHdr {
        name: w(0),
        namelen: w(8) as u32,
        iov: w(16),
        iovlen: w(24),
        control: w(32),
        controllen: w(40),
    })
}

/// The content of an input argument, as compared.
pub fn read_in(mem: &mut Memory, t: &Stopped, args: &[u64; 6], m: &Mem) -> Content {
    let addr = arg(args, m.arg);
    if addr == 0 {
        return Content::Null;
    }
    let got = match m.len {
        Len::Arg(n) => read(mem, t, addr, arg(args, n) as usize),
        Len::Fixed(k) => read(mem, t, addr, k as usize),
        Len::ArgTimes(n, k) => read(
            mem,
            t,
            addr,
            (arg(args, n) as usize).saturating_mul(k as usize),
        ),
        Len::CStr => mem.read_cstr(t, addr, MAX_STRING).ok().map(|(b, _)| b),
        Len::Iov(n) => iovecs(mem, t, addr, arg(args, n)).and_then(|iov| {
            let total = iov.iter().map(|i| i.1).fold(0u64, u64::saturating_add);
            gather(mem, t, &iov, total)
        }),
        Len::Deref(n) => {
            let at = arg(args, n);
            if at == 0 {
                Some(Vec::new())
            } else {
                read_u32(mem, t, at).and_then(|len| read(mem, t, addr, len as usize))
            }
        }
        Len::StrArray => mem
            .read_ptr_array(t, addr, true, MAX_ARRAY)
            .ok()
            .and_then(|ptrs| {
                let mut out = Vec::new();
                for p in ptrs {
                    let (s, _) = mem.read_cstr(t, p, MAX_STRING).ok()?;
                    out.extend(s);
                    out.push(0);
                }
                Some(out)
            }),
        Len::MsgHdr => msghdr(mem, t, addr).and_then(|h| {
            let mut out = Vec::new();
            if h.name != 0 {
                out.extend(read(mem, t, h.name, h.namelen as usize)?);
            }
            out.push(0xff);
            let iov = iovecs(mem, t, h.iov, h.iovlen)?;
            out.extend(gather(mem, t, &iov, u64::MAX)?);
            out.push(0xff);
            if h.control != 0 {
                out.extend(read(mem, t, h.control, h.controllen as usize)?);
            }
            Some(out)
        }),
        Len::FdSet(n) => read(mem, t, addr, fdset_len(arg(args, n))),
        Len::SockAddr(n) => read(mem, t, addr, arg(args, n) as usize).map(sockaddr_key),
        Len::Ret | Len::RetTimes(_) => Some(Vec::new()),
    };
    got.map(Content::Bytes).unwrap_or(Content::Unreadable)
}

/// What a socket address names, without the padding a program may leave uninitialised.
fn sockaddr_key(mut b: Vec<u8>) -> Vec<u8> {
    let family = b.get(..2).map(|f| u16::from_le_bytes([f[0], f[1]]));
    match family.map(i32::from) {
        Some(libc::AF_UNIX) => {
            // A path ends at its NUL; an abstract name (first byte NUL) is all of the length.
            if b.get(2).is_some_and(|&c| c != 0)
                && let Some(end) = b[2..].iter().position(|&c| c == 0)
            {
                b.truncate(2 + end);
            }
        }
        Some(libc::AF_INET) => b.truncate(8),
        Some(libc::AF_INET6) => b.truncate(24),
        _ => {}
    }
    b
}

fn fdset_len(nfds: u64) -> usize {
    (nfds.min(1 << 20) as usize).div_ceil(64) * 8
}

/// An output the leader's call wrote, read at its exit stop to give to the others.
#[derive(Clone, Debug)]
pub struct Output {
    pub mem: Mem,
    pub bytes: Vec<u8>,
    /// For a msghdr: the leader's header after the call (namelen, controllen, flags).
    pub header: Option<Vec<u8>>,
}

/// Reads what the leader's call wrote (`ret` is its result).
pub fn read_out(
    mem: &mut Memory,
    t: &Stopped,
    args: &[u64; 6],
    m: &Mem,
    ret: i64,
) -> Option<Output> {
    let addr = arg(args, m.arg);
    if addr == 0 || ret < 0 {
        return None;
    }
    let r = ret as u64;
    let (bytes, header) = match m.len {
        Len::Ret => (read(mem, t, addr, r as usize)?, None),
        Len::RetTimes(k) => (
            read(mem, t, addr, (r as usize).saturating_mul(k as usize))?,
            None,
        ),
        Len::Arg(n) => (read(mem, t, addr, arg(args, n) as usize)?, None),
        Len::ArgTimes(n, k) => (
            read(
                mem,
                t,
                addr,
                (arg(args, n) as usize).saturating_mul(k as usize),
            )?,
            None,
        ),
        Len::Fixed(k) => (read(mem, t, addr, k as usize)?, None),
        Len::Deref(n) => {
            let at = arg(args, n);
            if at == 0 {
                return None;
            }
            let len = read_u32(mem, t, at)?;
            (read(mem, t, addr, len as usize)?, None)
        }
        Len::Iov(n) => {
            let iov = iovecs(mem, t, addr, arg(args, n))?;
            (gather(mem, t, &iov, r)?, None)
        }
        Len::FdSet(n) => (read(mem, t, addr, fdset_len(arg(args, n)))?, None),
        Len::SockAddr(n) => (read(mem, t, addr, arg(args, n) as usize)?, None),
        Len::MsgHdr => {
            let h = msghdr(mem, t, addr)?;
            let raw = read(mem, t, addr, MSGHDR_LEN)?;
            let mut out = Vec::new();
            let name = if h.name != 0 {
                read(mem, t, h.name, h.namelen as usize)?
            } else {
                Vec::new()
            };
            let control = if h.control != 0 {
                read(mem, t, h.control, h.controllen as usize)?
            } else {
                Vec::new()
            };
            let iov = iovecs(mem, t, h.iov, h.iovlen)?;
            let data = gather(mem, t, &iov, r)?;
            out.extend((name.len() as u32).to_le_bytes());
            out.extend(&name);
            out.extend((control.len() as u32).to_le_bytes());
            out.extend(&control);
            out.extend(&data);
            (out, Some(raw))
        }
        Len::CStr | Len::StrArray => return None,
    };
    Some(Output {
        mem: *m,
        bytes,
        header,
    })
}

/// Writes the leader's output into a variant whose own arguments are `args`; the variant's
/// pointers are its own (a buffer at another address, iovecs of its own).
pub fn write_out(
    mem: &mut Memory,
    t: &Stopped,
    args: &[u64; 6],
    out: &Output,
) -> Result<(), String> {
    let addr = arg(args, out.mem.arg);
    if addr == 0 {
        return Ok(());
    }
    let fail =
        |e: vigil_tracee::MemError| format!("cannot write the leader's result at {addr:#x}: {e}");
    match out.mem.len {
        Len::Iov(n) => {
            let iov = iovecs(mem, t, addr, arg(args, n)).ok_or("cannot read the iovecs")?;
            scatter(mem, t, &iov, &out.bytes)
        }
        Len::MsgHdr => {
            let h = msghdr(mem, t, addr).ok_or("cannot read the msghdr")?;
            let b = &out.bytes;
            let take = |at: usize| -> Option<(usize, &[u8])> {
                let mut l = [0u8; 4];
                l.copy_from_slice(b.get(at..at + 4)?);
                let n = u32::from_le_bytes(l) as usize;
                Some((at + 4 + n, b.get(at + 4..at + 4 + n)?))
            };
            let (next, name) = take(0).ok_or("a malformed msghdr copy")?;
            let (next, control) = take(next).ok_or("a malformed msghdr copy")?;
            let data = b.get(next..).unwrap_or(&[]);
            if h.name != 0 && !name.is_empty() {
                mem.write(t, h.name, name).map_err(fail)?;
            }
            if h.control != 0 && !control.is_empty() {
                mem.write(t, h.control, control).map_err(fail)?;
            }
            let iov = iovecs(mem, t, h.iov, h.iovlen).ok_or("cannot read the iovecs")?;
            scatter(mem, t, &iov, data)?;
            if let Some(head) = &out.header {
                // namelen (u32 at 8), controllen (u64 at 40), flags (i32 at 48).
                mem.write(t, addr + 8, &head[8..12]).map_err(fail)?;
                mem.write(t, addr + 40, &head[40..52]).map_err(fail)?;
            }
            Ok(())
        }
        _ => {
            if out.bytes.is_empty() {
                return Ok(());
            }
            mem.write(t, addr, &out.bytes).map_err(fail)
        }
    }
}

fn scatter(mem: &mut Memory, t: &Stopped, iov: &[(u64, u64)], data: &[u8]) -> Result<(), String> {
    let mut at = 0usize;
    for &(base, len) in iov {
        if at >= data.len() {
            break;
        }
        let n = (len as usize).min(data.len() - at);
        mem.write(t, base, &data[at..at + n])
            .map_err(|e| format!("cannot write the leader's result at {base:#x}: {e}"))?;
        at += n;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_addresses_compare_on_what_they_name() {
        let unix = |path: &[u8], junk: u8| {
            let mut b = (libc::AF_UNIX as u16).to_le_bytes().to_vec();
            b.extend(path);
            b.push(0);
            b.resize(110, junk);
            sockaddr_key(b)
        };
        assert_eq!(unix(b"/run/x", 0), unix(b"/run/x", 0xaa));
        assert_ne!(unix(b"/run/x", 0), unix(b"/run/y", 0));
        let inet = |port: u16, zero: u8| {
            let mut b = (libc::AF_INET as u16).to_le_bytes().to_vec();
            b.extend(port.to_be_bytes());
            b.extend([127, 0, 0, 1]);
            b.extend([zero; 8]);
            sockaddr_key(b)
        };
        assert_eq!(inet(80, 0), inet(80, 7));
        assert_ne!(inet(80, 0), inet(81, 0));
        // An abstract AF_UNIX name is all of its length.
        let abs = |tail: u8| {
            let mut b = (libc::AF_UNIX as u16).to_le_bytes().to_vec();
            b.extend([0, b'n', tail]);
            sockaddr_key(b)
        };
        assert_ne!(abs(1), abs(2));
    }
}
