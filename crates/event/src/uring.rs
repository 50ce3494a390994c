//! io_uring operations as events.
//!
//! A program can open, read, write and connect through io_uring without making the matching
//! system calls: it writes submission queue entries (SQEs) into memory it shares with the
//! kernel and calls `io_uring_enter`. vigil records each submitted operation as a call of the
//! `io_uring` ABI (`io_uring:openat`), decoded into the signature of its system-call twin
//! (IORING_OP_OPENAT is `openat(dirfd, path, flags, mode)`), so every rule, summary and graph
//! rule written for the system call covers the operation too. Its completion (the CQE's result)
//! is its exit event, when vigil sees it.
//!
//! The table is declarative: for each opcode, the twin and which SQE field holds each of the
//! twin's arguments. Every backend decodes SQEs with it.

use syscalls::Sysno;

/// Where a twin's argument comes from in a submission queue entry (`struct io_uring_sqe`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SqeField {
    /// `fd` (s32): an fd, or with IOSQE_FIXED_FILE an index into the ring's registered files.
    Fd,
    /// `off` / `addr2` (u64).
    Off,
    /// `addr` (u64): a pointer (path, buffer, iovec, sockaddr).
    Addr,
    /// `len` (u32).
    Len,
    /// The per-opcode flags word (`open_flags`, `msg_flags`, `rename_flags`...), u32.
    OpFlags,
    /// `addr3` (u64).
    Addr3,
    /// `addr_len` (u16).
    AddrLen,
}

/// One io_uring opcode.
#[derive(Debug)]
pub struct UringOp {
    /// Lower-case name without the IORING_OP_ prefix.
    pub name: &'static str,
    /// The system call that does the same thing, whose signature the operation is decoded into.
    pub twin: Option<Sysno>,
    /// For the first arguments of the twin's signature, in order, the SQE field that holds
    /// each (arguments past the end have no SQE field and are absent).
    pub fields: &'static [SqeField],
}

use SqeField::*;

macro_rules! ops {
    ($( $name:literal => $twin:expr, [$($f:expr),*] ;)*) => {
        /// Indexed by opcode (Linux 6.18).
        pub static OPS: &[UringOp] = &[
            $(UringOp { name: $name, twin: $twin, fields: &[$($f),*] },)*
        ];
    };
}

ops! {
    "nop" => None, [];
    "readv" => Some(Sysno::preadv), [Fd, Addr, Len, Off];
    "writev" => Some(Sysno::pwritev), [Fd, Addr, Len, Off];
    "fsync" => Some(Sysno::fsync), [Fd];
    "read_fixed" => Some(Sysno::pread64), [Fd, Addr, Len, Off];
    "write_fixed" => Some(Sysno::pwrite64), [Fd, Addr, Len, Off];
    "poll_add" => None, [];
    "poll_remove" => None, [];
    "sync_file_range" => None, [];
    "sendmsg" => Some(Sysno::sendmsg), [Fd, Addr, OpFlags];
    "recvmsg" => Some(Sysno::recvmsg), [Fd, Addr, OpFlags];
    "timeout" => None, [];
    "timeout_remove" => None, [];
    "accept" => Some(Sysno::accept4), [Fd, Addr, Off, OpFlags];
    "async_cancel" => None, [];
    "link_timeout" => None, [];
    "connect" => Some(Sysno::connect), [Fd, Addr, Off];
    "fallocate" => None, [];
    "openat" => Some(Sysno::openat), [Fd, Addr, OpFlags, Len];
    "close" => Some(Sysno::close), [Fd];
    "files_update" => None, [];
    "statx" => None, [];
    "read" => Some(Sysno::pread64), [Fd, Addr, Len, Off];
    "write" => Some(Sysno::pwrite64), [Fd, Addr, Len, Off];
    "fadvise" => None, [];
    "madvise" => None, [];
    "send" => Some(Sysno::sendto), [Fd, Addr, Len, OpFlags, Off, AddrLen];
    "recv" => Some(Sysno::recvfrom), [Fd, Addr, Len, OpFlags];
    "openat2" => Some(Sysno::openat2), [Fd, Addr, Off, Len];
    "epoll_ctl" => None, [];
    "splice" => None, [];
    "provide_buffers" => None, [];
    "remove_buffers" => None, [];
    "tee" => None, [];
    "shutdown" => None, [];
    "renameat" => Some(Sysno::renameat2), [Fd, Addr, Len, Off, OpFlags];
    "unlinkat" => Some(Sysno::unlinkat), [Fd, Addr, OpFlags];
    "mkdirat" => Some(Sysno::mkdirat), [Fd, Addr, Len];
    "symlinkat" => Some(Sysno::symlinkat), [Addr, Fd, Off];
    "linkat" => Some(Sysno::linkat), [Fd, Addr, Len, Off, OpFlags];
    "msg_ring" => None, [];
    "fsetxattr" => Some(Sysno::fsetxattr), [Fd, Addr, Off, Len, OpFlags];
    "setxattr" => Some(Sysno::setxattr), [Addr3, Addr, Off, Len, OpFlags];
    "fgetxattr" => None, [];
    "getxattr" => None, [];
    "socket" => Some(Sysno::socket), [Fd, Off, Len];
    "uring_cmd" => None, [];
    "send_zc" => Some(Sysno::sendto), [Fd, Addr, Len, OpFlags, Off, AddrLen];
    "sendmsg_zc" => Some(Sysno::sendmsg), [Fd, Addr, OpFlags];
    "read_multishot" => Some(Sysno::pread64), [Fd, Addr, Len, Off];
    "waitid" => None, [];
    "futex_wait" => None, [];
    "futex_wake" => None, [];
    "futex_waitv" => None, [];
    "fixed_fd_install" => None, [];
    "ftruncate" => Some(Sysno::ftruncate), [Fd, Off];
    "bind" => Some(Sysno::bind), [Fd, Addr, Off];
    "listen" => Some(Sysno::listen), [Fd, Len];
    "recv_zc" => None, [];
    "epoll_wait" => None, [];
    "readv_fixed" => Some(Sysno::preadv), [Fd, Addr, Len, Off];
    "writev_fixed" => Some(Sysno::pwritev), [Fd, Addr, Len, Off];
    "pipe" => Some(Sysno::pipe2), [Addr, OpFlags];
}

/// The operation with this opcode, if this vigil knows it.
pub fn op(opcode: u32) -> Option<&'static UringOp> {
    OPS.get(opcode as usize)
}

/// The opcode of an operation name (`openat`).
pub fn opcode(name: &str) -> Option<u32> {
    OPS.iter().position(|o| o.name == name).map(|i| i as u32)
}

/// IORING_OP_OPENAT, IORING_OP_OPENAT2, IORING_OP_ACCEPT, IORING_OP_SOCKET: operations that
/// create an fd (or, with a file index, a registered "direct" descriptor).
pub fn creates_fd(opcode: u32) -> bool {
    matches!(
        op(opcode).map(|o| o.name),
        Some("openat" | "openat2" | "accept" | "socket")
    )
}

/// `IOSQE_FIXED_FILE`: the SQE's fd is an index into the ring's registered files.
pub const IOSQE_FIXED_FILE: u8 = 1;
/// `IORING_SETUP_SQPOLL`: a kernel thread polls the submission queue; submitting needs no
/// system call, so vigil cannot see the operations.
pub const IORING_SETUP_SQPOLL: u32 = 2;
/// `IORING_SETUP_SQE128`: 128-byte SQEs.
pub const IORING_SETUP_SQE128: u32 = 1 << 10;
/// `IORING_SETUP_CQE32`: 32-byte CQEs.
pub const IORING_SETUP_CQE32: u32 = 1 << 11;
/// `IORING_SETUP_NO_MMAP`: the rings live in memory the program provided.
pub const IORING_SETUP_NO_MMAP: u32 = 1 << 14;
/// `IORING_SETUP_REGISTERED_FD_ONLY`.
pub const IORING_SETUP_REGISTERED_FD_ONLY: u32 = 1 << 15;
/// `IORING_SETUP_NO_SQARRAY`: no index array; SQEs are taken in ring order.
pub const IORING_SETUP_NO_SQARRAY: u32 = 1 << 16;
/// `IORING_ENTER_REGISTERED_RING`: io_uring_enter's fd is an index into registered rings.
pub const IORING_ENTER_REGISTERED_RING: u32 = 1 << 4;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::syscall::signature_of;

    #[test]
    fn every_twin_takes_as_many_fields_as_its_signature_has_arguments() {
        for (i, o) in OPS.iter().enumerate() {
            match o.twin {
                Some(t) => {
                    let sig = signature_of(t).unwrap_or_else(|| panic!("{} has no signature", t));
                    assert!(sig.args.len() >= o.fields.len(), "opcode {i} {}", o.name);
                }
                None => assert!(o.fields.is_empty(), "{}", o.name),
            }
        }
        assert_eq!(opcode("openat"), Some(18));
        assert_eq!(opcode("socket"), Some(45));
        assert_eq!(opcode("pipe"), Some(62));
    }
}
