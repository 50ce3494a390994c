//! What the kernel side reads for each syscall (the `specs` map), derived from the one
//! declarative syscall table (vigil-event's `Signature`s) so the two backends decode the same
//! arguments: strings and paths, socket addresses, fds, and the outputs read at exit.

use syscalls::Sysno;
use vigil_event::syscall::{self, ArgKind, Signature};

pub const AK_NONE: u8 = 0;
pub const AK_STR: u8 = 1;
pub const AK_SOCKADDR: u8 = 2;
pub const AK_FD: u8 = 3;
pub const AK_U64: u8 = 5;

pub const OUT_PAIR: u8 = 1;
pub const OUT_SOCKADDR: u8 = 2;
pub const OUT_STR: u8 = 3;

/// `struct argspec` of vigil.h.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ArgSpec {
    pub kind: [u8; 6],
    pub lenarg: [u8; 6],
    pub ret_fd: u8,
    pub out: u8,
    pub out_arg: u8,
    pub out_len: u8,
}

impl ArgSpec {
    pub fn to_bytes(self) -> [u8; 16] {
        let mut b = [0u8; 16];
        b[..6].copy_from_slice(&self.kind);
        b[6..12].copy_from_slice(&self.lenarg);
        b[12] = self.ret_fd;
        b[13] = self.out;
        b[14] = self.out_arg;
        b[15] = self.out_len;
        b
    }
}

/// The kernel side's reading of one call, from its signature.
pub fn argspec(call: Sysno, sig: &Signature) -> ArgSpec {
    let mut s = ArgSpec::default();
    for (i, a) in sig.args.iter().enumerate().take(6) {
        s.kind[i] = match a.kind {
            k if k.is_path() => AK_STR,
            ArgKind::Str => AK_STR,
            ArgKind::Fd | ArgKind::DirFd => AK_FD,
            ArgKind::SockAddr(len) => {
                s.lenarg[i] = len;
                AK_SOCKADDR
            }
            ArgKind::Clone3Flags | ArgKind::OpenHowFlags => AK_U64,
            _ => AK_NONE,
        };
    }
    s.ret_fd = u8::from(
        sig.outputs
            .iter()
            .any(|o| o.kind == ArgKind::Fd && matches!(o.name, "fd" | "newfd"))
            || call == Sysno::fcntl,
    );
    match call {
        Sysno::pipe | Sysno::pipe2 => {
            s.out = OUT_PAIR;
            s.out_arg = 0;
        }
        Sysno::socketpair => {
            s.out = OUT_PAIR;
            s.out_arg = 3;
        }
        Sysno::accept | Sysno::accept4 => {
            s.out = OUT_SOCKADDR;
            s.out_arg = 1;
            s.out_len = 2;
        }
        Sysno::recvfrom => {
            s.out = OUT_SOCKADDR;
            s.out_arg = 4;
            s.out_len = 5;
        }
        Sysno::readlink => {
            s.out = OUT_STR;
            s.out_arg = 1;
        }
        Sysno::readlinkat => {
            s.out = OUT_STR;
            s.out_arg = 2;
        }
        _ => {}
    }
    s
}

/// Every known call's spec, by x86_64 number.
pub fn all() -> impl Iterator<Item = (u32, ArgSpec)> {
    syscall::known().map(|(s, sig)| (s.id() as u32, argspec(s, sig)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(s: Sysno) -> ArgSpec {
        all()
            .find(|(nr, _)| *nr == s.id() as u32)
            .map(|(_, a)| a)
            .unwrap_or_else(|| panic!("{s} is known"))
    }

    #[test]
    fn the_specs_follow_the_signature_table() {
        let o = spec(Sysno::openat);
        assert_eq!(o.kind[..4], [AK_FD, AK_STR, AK_NONE, AK_NONE]);
        assert_eq!(o.ret_fd, 1);
        let c = spec(Sysno::connect);
        assert_eq!((c.kind[1], c.lenarg[1]), (AK_SOCKADDR, 2));
        let r = spec(Sysno::renameat2);
        assert_eq!(r.kind[..4], [AK_FD, AK_STR, AK_FD, AK_STR]);
        assert_eq!(spec(Sysno::pipe2).out, OUT_PAIR);
        assert_eq!(
            (spec(Sysno::accept4).out, spec(Sysno::accept4).out_len),
            (OUT_SOCKADDR, 2)
        );
        assert_eq!(spec(Sysno::read).ret_fd, 0);
        assert_eq!(spec(Sysno::clone3).kind[0], AK_U64);
    }

    /// The kernel side reads at most 3 strings and 2 fds per call (NSLOTS, NFDS in vigil.h):
    /// no call in the table has more, so none is silently left out.
    #[test]
    fn no_call_needs_more_slots_than_the_kernel_side_has() {
        for (nr, s) in all() {
            let strs = s
                .kind
                .iter()
                .filter(|k| matches!(**k, AK_STR | AK_SOCKADDR | AK_U64))
                .count();
            let fds = s.kind.iter().filter(|k| **k == AK_FD).count();
            assert!(strs <= 3, "syscall {nr}: {strs} strings");
            assert!(fds <= 2, "syscall {nr}: {fds} fds");
        }
    }
}
