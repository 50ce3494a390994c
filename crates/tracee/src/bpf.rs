//! The few classic-BPF pieces a seccomp filter for a tracee is written with: the opcodes, the
//! offsets of `struct seccomp_data`, the return actions and the x86-64 ABI markers, and two
//! instruction builders. The recorder's filter (capture-ptrace) and the multi-variant
//! monitor's (mvee) are both built from them; the filter is installed by [`crate::Command`]'s
//! pre-exec step. Written by hand: the filters are a dozen instructions each and seccompiler's
//! model (kill on another ABI) is not what a tracer wants.

pub const AUDIT_ARCH_X86_64: u32 = 0xC000_003E;
/// The bit x32 calls set in their number.
pub const X32_SYSCALL_BIT: u32 = 0x4000_0000;
pub const SECCOMP_RET_ALLOW: u32 = 0x7fff_0000;
pub const SECCOMP_RET_TRACE: u32 = 0x7ff0_0000;

pub const BPF_LD_W_ABS: u16 = 0x20;
pub const BPF_JEQ_K: u16 = 0x15;
pub const BPF_JGT_K: u16 = 0x25;
pub const BPF_JGE_K: u16 = 0x35;
pub const BPF_JSET_K: u16 = 0x45;
pub const BPF_JA: u16 = 0x05;
pub const BPF_RET_K: u16 = 0x06;

/// `struct seccomp_data`: the call's number, its architecture, the instruction pointer after
/// the call (low and high words), and `args[0]` (each argument is 8 bytes, low word first).
pub const OFFSET_NR: u32 = 0;
pub const OFFSET_ARCH: u32 = 4;
pub const OFFSET_IP_LO: u32 = 8;
pub const OFFSET_IP_HI: u32 = 12;
pub const OFFSET_ARGS: u32 = 16;

/// An instruction without jumps.
pub fn stmt(code: u16, k: u32) -> libc::sock_filter {
    libc::sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

/// A conditional jump: `jt` instructions ahead if true, `jf` if false.
pub fn jump(code: u16, k: u32, jt: u8, jf: u8) -> libc::sock_filter {
    libc::sock_filter { code, jt, jf, k }
}
